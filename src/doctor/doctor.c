/* kinsync doctor's checks (kinsync/doctor.h). Everything is read through the sysfs/proc roots
 * and the captured command outputs given in the options, so tests run it against fake trees. */
#include "kinsync/doctor.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/k4a.h"
#include "kinsync/timing.h"
#include "doctor/clock_parse.h"

#define MAX_USB 64

/* USB ids (lsusb / the SDK's udev rules): Azure Kinect depth camera 045e:097c (one per device;
 * its color camera 097d and microphones 097e hang on the same hub), Orbbec Femto Bolt 2bc5:066b,
 * Femto Mega 2bc5:0669. */
static const struct {
    const char *vendor, *product, *kind;
} camera_ids[] = {
    {"045e", "097c", "Azure Kinect"},
    {"2bc5", "066b", "Orbbec Femto Bolt"},
    {"2bc5", "0669", "Orbbec Femto Mega"},
};

void ks_doctor_options_init(ks_doctor_options *o)
{
    memset(o, 0, sizeof *o);
    o->check_libraries = true;
}

void ks_doctor_report_init(ks_doctor_report *r)
{
    memset(r, 0, sizeof *r);
}

void ks_doctor_report_free(ks_doctor_report *r)
{
    if (!r)
        return;
    free(r->items);
    memset(r, 0, sizeof *r);
}

int ks_doctor_report_count(const ks_doctor_report *r, ks_severity sev)
{
    int n = 0;
    for (int i = 0; i < r->count; i++)
        n += r->items[i].severity == sev;
    return n;
}

const ks_doctor_finding *ks_doctor_report_find(const ks_doctor_report *r, const char *id, const char *subject)
{
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->items[i].id, id) && (!subject || !strcmp(r->items[i].subject, subject)))
            return &r->items[i];
    return NULL;
}

const char *ks_doctor_severity_name(ks_severity s)
{
    switch (s) {
    case KS_SEV_INFO: return "ok";
    case KS_SEV_WARNING: return "warning";
    case KS_SEV_ERROR: return "error";
    default: return "unknown";
    }
}

typedef struct run {
    const ks_doctor_options *o;
    ks_doctor_report *out;
    bool nomem;
    char sysfs[PATH_MAX], proc[PATH_MAX];
    char host[256];
} run;

static void add(run *r, const char *id, ks_severity sev, const char *subject, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void add(run *r, const char *id, ks_severity sev, const char *subject, const char *fix, const char *fmt, ...)
{
    ks_doctor_report *rep = r->out;
    if (rep->count == rep->capacity) {
        int cap = rep->capacity ? rep->capacity * 2 : 16;
        ks_doctor_finding *items = realloc(rep->items, (size_t)cap * sizeof *items);
        if (!items) {
            r->nomem = true;
            return;
        }
        rep->items = items;
        rep->capacity = cap;
    }
    ks_doctor_finding *f = &rep->items[rep->count++];
    memset(f, 0, sizeof *f);
    snprintf(f->id, sizeof f->id, "%s", id);
    f->severity = sev;
    snprintf(f->subject, sizeof f->subject, "%s", subject ? subject : "");
    snprintf(f->fix, sizeof f->fix, "%s", fix ? fix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

/* Reads a small text file into buf, trimmed; false if unreadable. */
static bool read_text(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    while (got && isspace((unsigned char)buf[got - 1]))
        buf[--got] = '\0';
    return true;
}

static bool read_attr(const char *dir, const char *name, char *buf, size_t n)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return read_text(p, buf, n);
}

/* The host controller of a USB device: the path component before "usbN" in its resolved sysfs
 * path (…/0000:00:14.0/usb2/2-1 -> 0000:00:14.0). USB 2 and USB 3 buses of one xHCI controller
 * share its PCI address, and so its bandwidth. */
static void controller_of(const char *devdir, char *out, size_t n)
{
    char real[PATH_MAX];
    snprintf(out, n, "unknown");
    if (!realpath(devdir, real))
        return;
    char *parts[128];
    int np = 0;
    char *save = NULL;
    for (char *tok = strtok_r(real, "/", &save); tok && np < 128; tok = strtok_r(NULL, "/", &save))
        parts[np++] = tok;
    for (int i = 1; i < np; i++) {
        const char *p = parts[i];
        if (!strncmp(p, "usb", 3) && p[3] && strspn(p + 3, "0123456789") == strlen(p + 3)) {
            snprintf(out, n, "%s", parts[i - 1]);
            return;
        }
    }
}

static int cmp_usb(const void *a, const void *b)
{
    const ks_doctor_usb_device *x = a, *y = b;
    return strcmp(x->sysfs_name, y->sysfs_name);
}

int ks_doctor_scan_usb(const char *sysfs_root, ks_doctor_usb_device *out, int max)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/bus/usb/devices", sysfs_root && sysfs_root[0] ? sysfs_root : "/sys");
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strchr(de->d_name, ':'))
            continue; /* interfaces ("2-1:1.0") carry no idVendor */
        char devdir[PATH_MAX + 256];
        snprintf(devdir, sizeof devdir, "%s/%s", dir, de->d_name);
        char vendor[16], product[16];
        if (!read_attr(devdir, "idVendor", vendor, sizeof vendor) ||
            !read_attr(devdir, "idProduct", product, sizeof product))
            continue;
        const char *kind = NULL;
        for (size_t i = 0; i < sizeof camera_ids / sizeof camera_ids[0]; i++)
            if (!strcasecmp(vendor, camera_ids[i].vendor) && !strcasecmp(product, camera_ids[i].product))
                kind = camera_ids[i].kind;
        if (!kind)
            continue;
        if (found < max && out) {
            ks_doctor_usb_device *u = &out[found];
            memset(u, 0, sizeof *u);
            snprintf(u->kind, sizeof u->kind, "%s", kind);
            snprintf(u->sysfs_name, sizeof u->sysfs_name, "%s", de->d_name);
            read_attr(devdir, "serial", u->serial, sizeof u->serial);
            char buf[32];
            if (read_attr(devdir, "busnum", buf, sizeof buf))
                u->busnum = atoi(buf);
            if (read_attr(devdir, "speed", buf, sizeof buf))
                u->speed_mbps = atoi(buf);
            controller_of(devdir, u->controller, sizeof u->controller);
        }
        found++;
    }
    closedir(d);
    if (out)
        qsort(out, (size_t)(found < max ? found : max), sizeof *out, cmp_usb);
    return found;
}

/* ---- the rig's view of this host ---- */

static bool is_this_host(const run *r, const char *h)
{
    return !h[0] || !strcmp(h, "localhost") || !strcmp(h, "127.0.0.1") || !strcmp(h, r->host);
}

static int rig_devices_here(const run *r)
{
    const ks_rig *rig = r->o->rig;
    int n = 0;
    for (int i = 0; rig && i < rig->device_count; i++)
        n += is_this_host(r, rig->devices[i].host);
    return n;
}

static int rig_host_count(const run *r)
{
    const ks_rig *rig = r->o->rig;
    if (!rig)
        return 1;
    const char *seen[KS_RIG_MAX_DEVICES];
    int n = 0;
    for (int i = 0; i < rig->device_count; i++) {
        const char *h = is_this_host(r, rig->devices[i].host) ? r->host : rig->devices[i].host;
        bool dup = false;
        for (int k = 0; k < n; k++)
            dup |= !strcmp(seen[k], h);
        if (!dup)
            seen[n++] = h;
    }
    return n ? n : 1;
}

/* ---- checks ---- */

static void check_usbfs(run *r, int devices_here)
{
    char path[PATH_MAX + 64], buf[64];
    snprintf(path, sizeof path, "%s/module/usbcore/parameters/usbfs_memory_mb", r->sysfs);
    int need = ks_usbfs_recommended_mb(devices_here);
    char fix[1024];
    snprintf(fix, sizeof fix,
             "Now (until reboot): echo %d | sudo tee /sys/module/usbcore/parameters/usbfs_memory_mb. "
             "Permanently: in /etc/default/grub add usbcore.usbfs_memory_mb=%d to GRUB_CMDLINE_LINUX_DEFAULT "
             "(e.g. GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash usbcore.usbfs_memory_mb=%d\", keeping your other "
             "options), then run sudo update-grub and reboot.",
             need, need, need);
    if (!read_text(path, buf, sizeof buf)) {
        add(r, "usbfs-memory", KS_SEV_WARNING, "", fix,
            "cannot read %s, so the usbfs memory limit is unknown (the kernel default is %d MB, enough for one "
            "device); %d device%s on this host need%s %d MB",
            path, ks_usbfs_default_mb(), devices_here, devices_here == 1 ? "" : "s", devices_here == 1 ? "s" : "",
            need);
        return;
    }
    char *end = NULL;
    long mb = strtol(buf, &end, 10);
    if (end == buf || mb < 0) {
        add(r, "usbfs-memory", KS_SEV_WARNING, "", fix, "%s holds '%s', not a number of MB", path, buf);
        return;
    }
    if (mb == 0) {
        add(r, "usbfs-memory", KS_SEV_INFO, "", "",
            "usbfs memory is unlimited (usbcore.usbfs_memory_mb=0); enough for %d device%s", devices_here,
            devices_here == 1 ? "" : "s");
        return;
    }
    if (mb < need)
        add(r, "usbfs-memory", KS_SEV_ERROR, "", fix,
            "usbfs memory is %ld MB but %d device%s on this host need at least %d MB: frames will be dropped or "
            "the cameras fail to start",
            mb, devices_here, devices_here == 1 ? "" : "s", need);
    else
        add(r, "usbfs-memory", KS_SEV_INFO, "", "", "usbfs memory is %ld MB, enough for %d device%s (%d MB needed)",
            mb, devices_here, devices_here == 1 ? "" : "s", need);
}

static void check_usb(run *r, const ks_doctor_usb_device *usb, int n, int devices_here)
{
    const ks_rig *rig = r->o->rig;
    if (n == 0) {
        static const char fix[] =
            "Plug each device's power supply in first, then its USB cable into a USB 3 port of this computer; "
            "check with `lsusb -d 045e:097c` (Azure Kinect) or `lsusb -d 2bc5:` (Orbbec).";
        if (rig && devices_here > 0)
            add(r, "usb-devices", KS_SEV_ERROR, "", fix,
                "no Azure Kinect or Orbbec Femto camera found on USB, but the rig puts %d device%s on this host (%s)",
                devices_here, devices_here == 1 ? "" : "s", r->host);
        else
            add(r, "usb-devices", KS_SEV_WARNING, "", fix,
                "no Azure Kinect or Orbbec Femto camera found on USB (%s/bus/usb/devices)", r->sysfs);
        return;
    }
    for (int i = 0; i < n; i++) {
        const ks_doctor_usb_device *u = &usb[i];
        const char *subj = u->serial[0] ? u->serial : u->sysfs_name;
        add(r, "usb-device", KS_SEV_INFO, subj, "", "%s %s on USB controller %s (bus %d, port %s, %d Mbps)", u->kind,
            subj, u->controller, u->busnum, u->sysfs_name, u->speed_mbps);
        if (u->speed_mbps > 0 && u->speed_mbps < 5000)
            add(r, "usb-speed", KS_SEV_ERROR, subj,
                "Plug the device into a USB 3 port (SuperSpeed, often blue or marked SS) with the cable that came "
                "with it or a certified active USB 3 cable; avoid hubs and extension cables.",
                "%s %s runs at %d Mbps (USB 2): the depth and color streams need USB 3 (5000 Mbps)", u->kind, subj,
                u->speed_mbps);
    }
    /* Controllers shared by two or more cameras. */
    for (int i = 0; i < n; i++) {
        bool first = true;
        for (int k = 0; k < i; k++)
            first &= strcmp(usb[k].controller, usb[i].controller) != 0;
        if (!first)
            continue;
        char names[400] = "";
        size_t used = 0;
        int count = 0;
        for (int k = i; k < n; k++) {
            if (strcmp(usb[k].controller, usb[i].controller))
                continue;
            count++;
            if (used < sizeof names - 1)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                         usb[k].serial[0] ? usb[k].serial : usb[k].sysfs_name);
        }
        if (count > 1)
            add(r, "usb-controller-shared", KS_SEV_ERROR, usb[i].controller,
                "Give each device its own USB 3 host controller: move all but one to ports of another controller "
                "(`lsusb -t` shows which ports share a bus; a PCIe USB 3 card with one controller per port works), "
                "or run one device per host with `kinsync` on each (docs/multi-host.md).",
                "%d cameras share USB controller %s (%s): one controller cannot carry the bandwidth of several "
                "devices, so frames are dropped",
                count, usb[i].controller, names);
    }
    /* The rig: devices expected here vs found, declared controllers. */
    if (rig) {
        for (int d = 0; d < rig->device_count; d++) {
            const ks_rig_device *rd = &rig->devices[d];
            if (!is_this_host(r, rd->host))
                continue;
            const ks_doctor_usb_device *u = NULL;
            for (int i = 0; i < n; i++)
                if (!strcmp(usb[i].serial, rd->serial))
                    u = &usb[i];
            if (!u) {
                add(r, "usb-device-missing", KS_SEV_ERROR, rd->serial,
                    "Connect the device (power first, then USB 3), or fix its serial or host in the rig file.",
                    "rig device %s (%s) is not on this host's USB", rd->name, rd->serial);
                continue;
            }
            if (rd->usb_controller[0] && strcmp(rd->usb_controller, u->controller))
                add(r, "usb-controller-mismatch", KS_SEV_WARNING, rd->serial,
                    "Move the device to a port of the controller the rig file names, or update usb_controller in "
                    "the rig file.",
                    "rig device %s (%s) is declared on controller %s but hangs on %s", rd->name, rd->serial,
                    rd->usb_controller, u->controller);
        }
    }
}

static void check_libraries(run *r, bool devices_expected)
{
    char k4a[PATH_MAX], de[PATH_MAX];
    ks_error e;
    ks_error_clear(&e);
    if (ks_k4a_library_probe(k4a, sizeof k4a, &e) != KS_OK) {
        add(r, "libk4a", devices_expected ? KS_SEV_ERROR : KS_SEV_WARNING, "",
            "Install the Azure Kinect SDK 1.4: add the packages.microsoft.com repository, then `sudo apt install "
            "libk4a1.4 k4a-tools` (Orbbec Femto: install the OrbbecSDK-K4A-Wrapper); or set "
            "KINSYNC_K4A_LIBRARY=/path/to/libk4a.so.1.4. Without it only the simulator and recordings work.",
            "%s", e.message);
        return;
    }
    add(r, "libk4a", KS_SEV_INFO, k4a, "", "libk4a found: %s", k4a);
    ks_error_clear(&e);
    if (ks_k4a_depthengine_probe(k4a, de, sizeof de, &e) != KS_OK)
        add(r, "depthengine", KS_SEV_ERROR, "libdepthengine.so.2.0",
            "Install the libk4a1.4 package (it ships libdepthengine.so.2.0 and accepts its EULA during install), "
            "or copy libdepthengine.so.2.0 next to libk4a.so.1.4; set KINSYNC_DEPTHENGINE_LIBRARY to point at it.",
            "%s; without it the depth camera does not start", e.message);
    else
        add(r, "depthengine", KS_SEV_INFO, de, "", "depth engine found: %s", de);
}

static bool firmware_equal(const ks_device_info *a, const ks_device_info *b)
{
    return ks_version_equal(&a->rgb, &b->rgb) && ks_version_equal(&a->depth, &b->depth) &&
           ks_version_equal(&a->audio, &b->audio) && ks_version_equal(&a->depth_sensor, &b->depth_sensor);
}

static void check_firmware(run *r)
{
    const ks_doctor_options *o = r->o;
    if (o->device_count <= 0) {
        add(r, "firmware", KS_SEV_INFO, "",
            "Connect the devices and run `kinsync doctor` again (with libk4a installed) to compare firmware.",
            "firmware not checked: no device could be opened%s%s", o->devices_note && o->devices_note[0] ? " -- " : "",
            o->devices_note ? o->devices_note : "");
        return;
    }
    /* The most common firmware is the reference; every device that differs gets a finding. */
    int best = 0, best_count = 0;
    for (int i = 0; i < o->device_count; i++) {
        int same = 0;
        for (int k = 0; k < o->device_count; k++)
            same += firmware_equal(&o->devices[i], &o->devices[k]);
        if (same > best_count) {
            best = i;
            best_count = same;
        }
    }
    const ks_device_info *ref = &o->devices[best];
    char v[4][48], rv[4][48];
    ks_version_format(&ref->rgb, rv[0], sizeof rv[0]);
    ks_version_format(&ref->depth, rv[1], sizeof rv[1]);
    ks_version_format(&ref->audio, rv[2], sizeof rv[2]);
    ks_version_format(&ref->depth_sensor, rv[3], sizeof rv[3]);
    if (best_count == o->device_count) {
        add(r, "firmware", KS_SEV_INFO, "", "", "%d device%s run the same firmware (color %s, depth %s, audio %s, "
            "depth sensor %s)", o->device_count, o->device_count == 1 ? "" : "s", rv[0], rv[1], rv[2], rv[3]);
        return;
    }
    for (int i = 0; i < o->device_count; i++) {
        const ks_device_info *d = &o->devices[i];
        if (firmware_equal(d, ref))
            continue;
        ks_version_format(&d->rgb, v[0], sizeof v[0]);
        ks_version_format(&d->depth, v[1], sizeof v[1]);
        ks_version_format(&d->audio, v[2], sizeof v[2]);
        ks_version_format(&d->depth_sensor, v[3], sizeof v[3]);
        add(r, "firmware-mismatch", KS_SEV_ERROR, d->serial,
            "Update every device to the same (latest) firmware: `AzureKinectFirmwareTool -u <firmware.bin>` from "
            "k4a-tools, one device at a time, then unplug and replug it; check with `AzureKinectFirmwareTool -q`.",
            "device %s runs firmware color %s, depth %s, audio %s, depth sensor %s but %d of the %d devices run "
            "color %s, depth %s, audio %s, depth sensor %s (e.g. %s): a synchronized rig needs the same firmware "
            "on every device",
            d->serial, v[0], v[1], v[2], v[3], best_count, o->device_count, rv[0], rv[1], rv[2], rv[3], ref->serial);
    }
}

/* The rig's cables against the jacks of the opened devices. */
static void check_jacks(run *r)
{
    const ks_doctor_options *o = r->o;
    const ks_rig *rig = o->rig;
    if (!rig || !o->jacks)
        return;
    for (int i = 0; i < o->device_count; i++) {
        const ks_device_info *info = &o->devices[i];
        const ks_jack_state *j = &o->jacks[i];
        int idx = -1;
        for (int d = 0; d < rig->device_count; d++)
            if (!strcmp(rig->devices[d].serial, info->serial))
                idx = d;
        if (idx < 0)
            continue;
        const ks_rig_device *rd = &rig->devices[idx];
        bool want_in = rig->trigger.present && rig->trigger.to == idx, want_out = false;
        for (int c = 0; c < rig->cable_count; c++) {
            want_in |= rig->cables[c].to == idx;
            want_out |= rig->cables[c].from == idx;
        }
        if (!j->supported) {
            add(r, "sync-jacks", KS_SEV_WARNING, info->serial,
                "Check the cables by eye, then let `kinsync verify` check the sync from the frame timestamps.",
                "device %s (%s) cannot report its sync jacks (e.g. Orbbec's K4A wrapper): cabling not checked",
                rd->name, info->serial);
            continue;
        }
        int before = r->out->count;
        if (want_in && !j->sync_in)
            add(r, "sync-jacks", KS_SEV_ERROR, info->serial,
                "Plug the cable from the previous device's Sync Out (or the trigger) fully into this device's Sync "
                "In; the jacks sit under the rear cover.",
                "device %s (%s): the rig has a cable into its Sync In but none is detected", rd->name, info->serial);
        if (want_out && !j->sync_out)
            add(r, "sync-jacks", KS_SEV_ERROR, info->serial,
                "Plug the cable to the next device (or the star splitter) fully into this device's Sync Out.",
                "device %s (%s): the rig has a cable out of its Sync Out but none is detected", rd->name,
                info->serial);
        if (!want_in && j->sync_in)
            add(r, "sync-jacks", rd->derived_role == KS_ROLE_MASTER ? KS_SEV_ERROR : KS_SEV_WARNING, info->serial,
                "Unplug the cable from Sync In, or add it to the rig file (a master takes Sync In only from an "
                "external trigger).",
                "device %s (%s): a cable is plugged into Sync In that the rig does not have%s", rd->name,
                info->serial, rd->derived_role == KS_ROLE_MASTER ? " -- a master must not have one" : "");
        if (!want_out && j->sync_out)
            add(r, "sync-jacks", KS_SEV_WARNING, info->serial,
                "Unplug the cable from Sync Out (the last device of a chain has an empty Sync Out), or add it to the "
                "rig file.",
                "device %s (%s): a cable is plugged into Sync Out that the rig does not have", rd->name, info->serial);
        if (r->out->count == before)
            add(r, "sync-jacks", KS_SEV_INFO, info->serial, "", "device %s (%s): Sync In %s, Sync Out %s, as the rig "
                "says", rd->name, info->serial, j->sync_in ? "cable" : "empty", j->sync_out ? "cable" : "empty");
    }
}

/* ---- clocks ---- */

typedef struct procs {
    bool chronyd, ptp4l, phc2sys, ntpd, timesyncd;
} procs;

static procs scan_procs(const run *r)
{
    procs p = {0};
    DIR *d = opendir(r->proc);
    if (!d)
        return p;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[PATH_MAX + 300], comm[64];
        snprintf(path, sizeof path, "%s/%s/comm", r->proc, de->d_name);
        if (!read_text(path, comm, sizeof comm))
            continue;
        p.chronyd |= !strcmp(comm, "chronyd");
        p.ptp4l |= !strcmp(comm, "ptp4l");
        p.phc2sys |= !strcmp(comm, "phc2sys");
        p.ntpd |= !strcmp(comm, "ntpd");
        p.timesyncd |= !strcmp(comm, "systemd-timesyn"); /* comm is cut at 15 characters */
    }
    closedir(d);
    return p;
}

/* Captured output of a command: from commands_dir, or by running it (on the real host only). */
static char *command_output(const run *r, const char *name, const char *command)
{
    const ks_doctor_options *o = r->o;
    FILE *f = NULL;
    bool is_pipe = false;
    if (o->commands_dir) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", o->commands_dir, name);
        f = fopen(path, "r");
    } else if (!o->sysfs_root && !o->proc_root) {
        f = popen(command, "r");
        is_pipe = true;
    }
    if (!f)
        return NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (buf) {
        size_t got;
        while (len < cap - 1 && (got = fread(buf + len, 1, cap - 1 - len, f)) > 0)
            len += got;
        buf[len] = '\0';
    }
    if (is_pipe)
        pclose(f);
    else
        fclose(f);
    if (buf && len == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void judge_offset(run *r, const char *source, double offset_us, int warn_us, int error_us, const char *fix)
{
    double a = fabs(offset_us);
    if (a > error_us)
        add(r, "clock-offset", KS_SEV_ERROR, r->host, fix,
            "%s: this host's clock is %.0f us off its reference, more than %d us (half a frame period): frame sets "
            "from different hosts cannot be matched",
            source, offset_us, error_us);
    else if (a > warn_us)
        add(r, "clock-offset", KS_SEV_WARNING, r->host, fix,
            "%s: this host's clock is %.0f us off its reference, more than %d us: host timestamps of different "
            "hosts will not line up within the color alignment target",
            source, offset_us, warn_us);
    else
        add(r, "clock-offset", KS_SEV_INFO, r->host, "", "%s: this host's clock is %.1f us off its reference",
            source, offset_us);
}

static void check_clocks(run *r, int hosts)
{
    if (hosts <= 1) {
        add(r, "clock-sync", KS_SEV_INFO, "", "",
            r->o->rig ? "the rig runs on one host: host clock synchronization is not needed"
                      : "no rig file given: host clock synchronization is only checked for rigs spanning hosts");
        return;
    }
    const ks_rig *rig = r->o->rig;
    ks_fps fps = rig ? rig->camera.fps : KS_FPS_30;
    int error_us = ks_frame_period_us(fps) / 2;
    int warn_us = ks_color_alignment_target_us();
    procs p = scan_procs(r);
    static const char chrony_fix[] =
        "Point every host of the rig at the same time source (one host as the local server: `allow` in "
        "/etc/chrony/chrony.conf there, `server <that host> iburst` on the others), restart chronyd and wait "
        "until `chronyc tracking` shows an offset of a few microseconds; on a LAN with hardware timestamping "
        "PTP (ptp4l + phc2sys) does better.";
    static const char ptp_fix[] =
        "Run ptp4l on the NIC of every host (one grandmaster) and phc2sys -s <iface> -w to steer the system "
        "clock from it; check with `pmc -u -b 0 'GET TIME_STATUS_NP'`.";
    bool checked = false;
    if (p.chronyd) {
        char *t = command_output(r, "chronyc-tracking", "chronyc -n tracking 2>/dev/null");
        if (t) {
            checked = true;
            ks_clock_status cs = ks_parse_chronyc_tracking(t);
            if (cs.unsynchronised)
                add(r, "clock-sync", KS_SEV_ERROR, r->host, chrony_fix,
                    "chronyd runs but is not synchronised (chronyc tracking: Leap status Not synchronised)");
            else if (cs.have_offset) {
                add(r, "clock-sync", KS_SEV_INFO, r->host, "", "chronyd synchronises this host's clock");
                judge_offset(r, "chrony", cs.offset_us, warn_us, error_us, chrony_fix);
            } else {
                add(r, "clock-sync", KS_SEV_WARNING, r->host, chrony_fix,
                    "chronyd runs but `chronyc tracking` gave no System time line");
            }
            free(t);
        }
    }
    if (p.ptp4l) {
        if (!p.phc2sys)
            add(r, "clock-sync", KS_SEV_WARNING, r->host, ptp_fix,
                "ptp4l runs but phc2sys does not: the NIC clock follows PTP, the system clock (which stamps the "
                "frames) does not");
        char *t = command_output(r, "pmc-time-status", "pmc -u -b 0 'GET TIME_STATUS_NP' 2>/dev/null");
        if (t) {
            checked = true;
            ks_clock_status cs = ks_parse_pmc_time_status(t);
            if (cs.unsynchronised)
                add(r, "clock-sync", KS_SEV_ERROR, r->host, ptp_fix,
                    "ptp4l runs but sees no grandmaster (pmc: gmPresent false)");
            else if (cs.have_offset) {
                if (p.phc2sys)
                    add(r, "clock-sync", KS_SEV_INFO, r->host, "", "ptp4l and phc2sys synchronise this host's clock");
                judge_offset(r, "ptp4l", cs.offset_us, warn_us, error_us, ptp_fix);
            } else {
                add(r, "clock-sync", KS_SEV_WARNING, r->host, ptp_fix,
                    "ptp4l runs but pmc gave no master_offset");
            }
            free(t);
        }
    }
    if (!p.chronyd && !p.ptp4l) {
        if (p.ntpd || p.timesyncd)
            add(r, "clock-sync", KS_SEV_WARNING, r->host, chrony_fix,
                "only %s keeps the clock: its millisecond accuracy is too coarse to match frame sets across hosts",
                p.ntpd ? "ntpd" : "systemd-timesyncd");
        else
            add(r, "clock-sync", KS_SEV_ERROR, r->host, chrony_fix,
                "the rig spans %d hosts but no clock synchronization (chronyd, ptp4l, ntpd) runs on this host", hosts);
    } else if (!checked) {
        add(r, "clock-sync", KS_SEV_WARNING, r->host,
            "Run `chronyc tracking` or `pmc -u -b 0 'GET TIME_STATUS_NP'` yourself and check the offset.",
            "a clock daemon runs (%s) but its status could not be read", p.chronyd ? "chronyd" : "ptp4l");
    }
}

ks_status ks_doctor_run(const ks_doctor_options *o, ks_doctor_report *out, ks_error *err)
{
    if (!o || !out)
        return ks_error_set(err, KS_EINVAL, "ks_doctor_run: missing options or report");
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.out = out;
    snprintf(r.sysfs, sizeof r.sysfs, "%s", o->sysfs_root ? o->sysfs_root : "/sys");
    snprintf(r.proc, sizeof r.proc, "%s", o->proc_root ? o->proc_root : "/proc");
    if (o->hostname)
        snprintf(r.host, sizeof r.host, "%s", o->hostname);
    else if (gethostname(r.host, sizeof r.host) != 0)
        snprintf(r.host, sizeof r.host, "localhost");
    r.host[sizeof r.host - 1] = '\0';

    ks_doctor_usb_device usb[MAX_USB];
    int n = ks_doctor_scan_usb(r.sysfs, usb, MAX_USB);
    if (n > MAX_USB)
        n = MAX_USB;
    int here = o->rig ? rig_devices_here(&r) : n;
    if (here < 1)
        here = 1;
    check_usbfs(&r, here);
    check_usb(&r, usb, n, o->rig ? rig_devices_here(&r) : n);
    if (o->check_libraries)
        check_libraries(&r, n > 0 || (o->rig && rig_devices_here(&r) > 0));
    check_firmware(&r);
    check_jacks(&r);
    check_clocks(&r, rig_host_count(&r));
    if (r.nomem)
        return ks_error_set(err, KS_ENOMEM, "out of memory collecting doctor findings");
    return KS_OK;
}
