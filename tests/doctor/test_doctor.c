/* kinsync doctor's checks against the fake sysfs/proc trees of tests/data/doctor (made by
 * make_trees.sh there): every finding, in its passing and its failing form. */
#include <stdlib.h>
#include <string.h>

#include "kinsync/doctor.h"
#include "kinsync/k4a.h"
#include "ks_test.h"

#ifndef KS_FAKE_K4A
#error "KS_FAKE_K4A must be defined by tests/CMakeLists.txt"
#endif

#define TREE(name, part) KS_TESTDATA "/doctor/" name "/" part

static ks_rig rig;

static void rig_device(int i, const char *serial, const char *host, const char *controller)
{
    ks_rig_device *d = &rig.devices[i];
    snprintf(d->serial, sizeof d->serial, "%s", serial);
    snprintf(d->name, sizeof d->name, "cam%d", i);
    snprintf(d->host, sizeof d->host, "%s", host);
    snprintf(d->usb_controller, sizeof d->usb_controller, "%s", controller);
    if (i + 1 > rig.device_count)
        rig.device_count = i + 1;
}

static void reset_rig(void)
{
    memset(&rig, 0, sizeof rig);
    rig.camera.fps = KS_FPS_30;
    rig.master = -1;
}

static void opts(ks_doctor_options *o, const char *tree)
{
    static char sys[512], proc[512], cmds[512];
    ks_doctor_options_init(o);
    snprintf(sys, sizeof sys, KS_TESTDATA "/doctor/%s/sys", tree);
    snprintf(proc, sizeof proc, KS_TESTDATA "/doctor/%s/proc", tree);
    snprintf(cmds, sizeof cmds, KS_TESTDATA "/doctor/%s/commands", tree);
    o->sysfs_root = sys;
    o->proc_root = proc;
    o->commands_dir = cmds;
    o->hostname = "hostA";
}

static const ks_doctor_finding *expect(const ks_doctor_report *r, const char *id, const char *subject,
                                       ks_severity sev)
{
    const ks_doctor_finding *f = NULL;
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->items[i].id, id) && (!subject || !strcmp(r->items[i].subject, subject)) &&
            r->items[i].severity == sev && !f)
            f = &r->items[i];
    KS_CHECK_MSG(f != NULL, "no %s finding '%s' (subject %s)", ks_doctor_severity_name(sev), id,
                 subject ? subject : "any");
    if (!f) {
        for (int i = 0; i < r->count; i++)
            fprintf(stderr, "   have: %s %s [%s] %s\n", ks_doctor_severity_name(r->items[i].severity),
                    r->items[i].id, r->items[i].subject, r->items[i].message);
    }
    return f;
}

static void test_scan_usb(void)
{
    ks_doctor_usb_device u[8];
    int n = ks_doctor_scan_usb(TREE("good", "sys"), u, 8);
    KS_CHECK_INT(n, 2); /* depth functions only: hubs, color, microphones, interfaces, the mouse are skipped */
    if (n == 2) {
        KS_CHECK_STR(u[0].serial, "000001112912");
        KS_CHECK_STR(u[0].controller, "0000:00:14.0");
        KS_CHECK_STR(u[0].sysfs_name, "2-1.1");
        KS_CHECK_INT(u[0].busnum, 2);
        KS_CHECK_INT(u[0].speed_mbps, 5000);
        KS_CHECK_STR(u[1].serial, "000002112912");
        KS_CHECK_STR(u[1].controller, "0000:03:00.0");
        KS_CHECK_STR(u[1].kind, "Azure Kinect");
    }
    n = ks_doctor_scan_usb(TREE("bad", "sys"), u, 8);
    KS_CHECK_INT(n, 4);
    if (n == 4) {
        KS_CHECK_STR(u[3].kind, "Orbbec Femto Bolt");
        KS_CHECK_STR(u[3].controller, "0000:06:00.0");
        KS_CHECK_INT(u[2].speed_mbps, 480);
    }
    KS_CHECK_INT(ks_doctor_scan_usb(TREE("empty", "sys"), u, 8), 0);
    KS_CHECK_INT(ks_doctor_scan_usb("/nonexistent", u, 8), 0);
}

static void test_good_host(void)
{
    setenv(KS_K4A_LIBRARY_ENV, KS_FAKE_K4A, 1);
    setenv("KINSYNC_DEPTHENGINE_LIBRARY", KS_FAKE_K4A, 1);
    reset_rig();
    rig_device(0, "000001112912", "hostA", "0000:00:14.0");
    rig_device(1, "000002112912", "localhost", "");
    rig_device(2, "000009112912", "hostB", "");
    ks_device_info infos[2];
    memset(infos, 0, sizeof infos);
    for (int i = 0; i < 2; i++) {
        snprintf(infos[i].serial, sizeof infos[i].serial, "00000%d112912", i + 1);
        infos[i].rgb = (ks_version){1, 6, 110};
        infos[i].depth = (ks_version){1, 6, 79};
    }
    ks_doctor_options o;
    opts(&o, "good");
    o.rig = &rig;
    o.devices = infos;
    o.device_count = 2;
    ks_doctor_report r;
    ks_doctor_report_init(&r);
    ks_error e;
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    KS_CHECK_INT(ks_doctor_report_count(&r, KS_SEV_ERROR), 0);
    KS_CHECK_INT(ks_doctor_report_count(&r, KS_SEV_WARNING), 0);
    const ks_doctor_finding *f = expect(&r, "usbfs-memory", NULL, KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "64 MB");
    f = expect(&r, "usb-device", "000001112912", KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "0000:00:14.0");
    expect(&r, "usb-device", "000002112912", KS_SEV_INFO);
    KS_CHECK(ks_doctor_report_find(&r, "usb-controller-shared", NULL) == NULL);
    KS_CHECK(ks_doctor_report_find(&r, "usb-speed", NULL) == NULL);
    KS_CHECK(ks_doctor_report_find(&r, "usb-device-missing", NULL) == NULL);
    KS_CHECK(ks_doctor_report_find(&r, "usb-controller-mismatch", NULL) == NULL);
    f = expect(&r, "libk4a", NULL, KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "fake_k4a");
    expect(&r, "depthengine", NULL, KS_SEV_INFO);
    f = expect(&r, "firmware", NULL, KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "1.6.110");
    expect(&r, "clock-sync", "hostA", KS_SEV_INFO);
    f = expect(&r, "clock-offset", "hostA", KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "chrony: this host's clock is -4.0 us");
    ks_doctor_report_free(&r);

    /* One host only: clocks are not checked; the devices here decide the usbfs need. */
    reset_rig();
    rig_device(0, "000001112912", "hostA", "");
    opts(&o, "good");
    o.rig = &rig;
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    f = expect(&r, "clock-sync", "", KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "one host");
    f = expect(&r, "firmware", "", KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "not checked");
    ks_doctor_report_free(&r);
}

static void test_bad_host(void)
{
    setenv(KS_K4A_LIBRARY_ENV, KS_FAKE_K4A, 1);
    setenv("KINSYNC_DEPTHENGINE_LIBRARY", "/nonexistent/libdepthengine.so.2.0", 1);
    reset_rig();
    rig_device(0, "000001112912", "hostA", "");
    rig_device(1, "000002112912", "hostA", "");
    rig_device(2, "000003112912", "hostA", "");
    rig_device(3, "CL8F0000001", "hostA", "0000:00:14.0");
    rig_device(4, "000004112912", "hostA", "");
    rig_device(5, "000005112912", "hostB", "");
    ks_device_info infos[3];
    memset(infos, 0, sizeof infos);
    for (int i = 0; i < 3; i++) {
        snprintf(infos[i].serial, sizeof infos[i].serial, "00000%d112912", i + 1);
        infos[i].rgb = (ks_version){1, 6, 110};
    }
    infos[1].rgb = (ks_version){1, 6, 102};
    ks_doctor_options o;
    opts(&o, "bad");
    o.rig = &rig;
    o.devices = infos;
    o.device_count = 3;
    ks_doctor_report r;
    ks_doctor_report_init(&r);
    ks_error e;
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    /* 5 devices on hostA need ks_usbfs_recommended_mb(5) MB; 16 is set. */
    const ks_doctor_finding *f = expect(&r, "usbfs-memory", NULL, KS_SEV_ERROR);
    if (f) {
        char want[64];
        snprintf(want, sizeof want, "need at least %d MB", ks_usbfs_recommended_mb(5));
        KS_CHECK_CONTAINS(f->message, "usbfs memory is 16 MB");
        KS_CHECK_CONTAINS(f->message, want);
        snprintf(want, sizeof want, "usbcore.usbfs_memory_mb=%d", ks_usbfs_recommended_mb(5));
        KS_CHECK_CONTAINS(f->fix, want);
        KS_CHECK_CONTAINS(f->fix, "GRUB_CMDLINE_LINUX_DEFAULT");
        KS_CHECK_CONTAINS(f->fix, "update-grub");
        KS_CHECK_CONTAINS(f->fix, "sudo tee /sys/module/usbcore/parameters/usbfs_memory_mb");
    }
    f = expect(&r, "usb-controller-shared", "0000:00:14.0", KS_SEV_ERROR);
    if (f) {
        KS_CHECK_CONTAINS(f->message, "2 cameras");
        KS_CHECK_CONTAINS(f->message, "000001112912, 000002112912");
        KS_CHECK_CONTAINS(f->fix, "own USB 3 host controller");
    }
    KS_CHECK(ks_doctor_report_find(&r, "usb-controller-shared", "0000:05:00.0") == NULL);
    f = expect(&r, "usb-speed", "000003112912", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "480 Mbps");
    expect(&r, "usb-device", "CL8F0000001", KS_SEV_INFO);
    f = expect(&r, "usb-device-missing", "000004112912", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "cam4");
    KS_CHECK(ks_doctor_report_find(&r, "usb-device-missing", "000005112912") == NULL); /* on hostB */
    f = expect(&r, "usb-controller-mismatch", "CL8F0000001", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "declared on controller 0000:00:14.0 but hangs on 0000:06:00.0");
    expect(&r, "libk4a", NULL, KS_SEV_INFO);
    f = expect(&r, "depthengine", NULL, KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->fix, "libk4a1.4");
    f = expect(&r, "firmware-mismatch", "000002112912", KS_SEV_ERROR);
    if (f) {
        KS_CHECK_CONTAINS(f->message, "runs firmware color 1.6.102");
        KS_CHECK_CONTAINS(f->message, "2 of the 3 devices run color 1.6.110");
        KS_CHECK_CONTAINS(f->fix, "AzureKinectFirmwareTool");
    }
    KS_CHECK(ks_doctor_report_find(&r, "firmware-mismatch", "000001112912") == NULL); /* the majority */
    KS_CHECK(ks_doctor_report_find(&r, "firmware", NULL) == NULL);
    expect(&r, "clock-sync", "hostA", KS_SEV_ERROR);
    /* chrony not synchronised, ptp4l without phc2sys, ptp 25 ms off. */
    int chrony_err = 0, ptp_warn = 0;
    for (int i = 0; i < r.count; i++) {
        if (!strcmp(r.items[i].id, "clock-sync") && strstr(r.items[i].message, "Not synchronised"))
            chrony_err++;
        if (!strcmp(r.items[i].id, "clock-sync") && strstr(r.items[i].message, "phc2sys does not"))
            ptp_warn += r.items[i].severity == KS_SEV_WARNING;
    }
    KS_CHECK_INT(chrony_err, 1);
    KS_CHECK_INT(ptp_warn, 1);
    f = expect(&r, "clock-offset", "hostA", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "25000 us");
    ks_doctor_report_free(&r);
}

static void test_empty_host(void)
{
    setenv(KS_K4A_LIBRARY_ENV, "/nonexistent/libk4a.so.1.4", 1);
    reset_rig();
    rig_device(0, "000001112912", "hostA", "");
    rig_device(1, "000002112912", "hostB", "");
    ks_doctor_options o;
    opts(&o, "empty");
    o.rig = &rig;
    o.devices_note = "libk4a is not installed";
    ks_doctor_report r;
    ks_doctor_report_init(&r);
    ks_error e;
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    const ks_doctor_finding *f = expect(&r, "usbfs-memory", NULL, KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "cannot read");
    f = expect(&r, "usb-devices", NULL, KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "the rig puts 1 device on this host");
    f = expect(&r, "libk4a", NULL, KS_SEV_ERROR);
    if (f) {
        KS_CHECK_CONTAINS(f->message, "libk4a 1.4 not found");
        KS_CHECK_CONTAINS(f->fix, "libk4a1.4 k4a-tools");
    }
    KS_CHECK(ks_doctor_report_find(&r, "depthengine", NULL) == NULL);
    f = expect(&r, "firmware", NULL, KS_SEV_INFO);
    if (f)
        KS_CHECK_CONTAINS(f->message, "libk4a is not installed");
    f = expect(&r, "clock-sync", "hostA", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "spans 2 hosts but no clock synchronization");
    ks_doctor_report_free(&r);

    /* No rig, no devices: warnings only. */
    opts(&o, "empty");
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    KS_CHECK_INT(ks_doctor_report_count(&r, KS_SEV_ERROR), 0);
    expect(&r, "usb-devices", NULL, KS_SEV_WARNING);
    expect(&r, "libk4a", NULL, KS_SEV_WARNING);
    ks_doctor_report_free(&r);
}

static void test_clock_variants(void)
{
    setenv(KS_K4A_LIBRARY_ENV, KS_FAKE_K4A, 1);
    unsetenv("KINSYNC_DEPTHENGINE_LIBRARY");
    reset_rig();
    rig_device(0, "000001112912", "hostA", "");
    rig_device(1, "000002112912", "hostB", "");
    ks_doctor_options o;
    ks_doctor_report r;
    ks_error e;

    opts(&o, "timesyncd");
    o.rig = &rig;
    o.check_libraries = false;
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    const ks_doctor_finding *f = expect(&r, "clock-sync", "hostA", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "systemd-timesyncd");
    KS_CHECK(ks_doctor_report_find(&r, "libk4a", NULL) == NULL);
    ks_doctor_report_free(&r);

    /* 250 us fast: above the color alignment target, below half a frame period. */
    opts(&o, "warn");
    o.rig = &rig;
    o.check_libraries = false;
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    f = expect(&r, "clock-offset", "hostA", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "250 us");
    ks_doctor_report_free(&r);

    /* A daemon runs but its status output is missing. */
    opts(&o, "warn");
    o.commands_dir = KS_TESTDATA "/doctor/empty";
    o.rig = &rig;
    o.check_libraries = false;
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    f = expect(&r, "clock-sync", "hostA", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "could not be read");
    ks_doctor_report_free(&r);
}

static void test_sync_jacks(void)
{
    reset_rig();
    rig_device(0, "000001112912", "hostA", "");
    rig_device(1, "000002112912", "hostA", "");
    rig_device(2, "000003112912", "hostA", "");
    rig_device(3, "000004112912", "hostA", "");
    rig.devices[0].derived_role = KS_ROLE_MASTER;
    rig.devices[1].derived_role = KS_ROLE_SUBORDINATE;
    rig.devices[2].derived_role = KS_ROLE_SUBORDINATE;
    rig.devices[3].derived_role = KS_ROLE_SUBORDINATE;
    rig.cable_count = 3;
    rig.cables[0] = (ks_rig_cable){.from = 0, .to = 1};
    rig.cables[1] = (ks_rig_cable){.from = 1, .to = 2};
    rig.cables[2] = (ks_rig_cable){.from = 2, .to = 3};
    ks_device_info infos[4];
    ks_jack_state jacks[4] = {
        {true, true, true},   /* master with a Sync In cable: error */
        {true, true, true},   /* as the rig says */
        {true, true, false},  /* Sync Out missing: error */
        {false, false, false} /* cannot tell */
    };
    memset(infos, 0, sizeof infos);
    for (int i = 0; i < 4; i++)
        snprintf(infos[i].serial, sizeof infos[i].serial, "00000%d112912", i + 1);
    ks_doctor_options o;
    opts(&o, "good");
    o.rig = &rig;
    o.check_libraries = false;
    o.devices = infos;
    o.device_count = 4;
    o.jacks = jacks;
    ks_doctor_report r;
    ks_doctor_report_init(&r);
    ks_error e;
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    const ks_doctor_finding *f = expect(&r, "sync-jacks", "000001112912", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "a master must not have one");
    expect(&r, "sync-jacks", "000002112912", KS_SEV_INFO);
    f = expect(&r, "sync-jacks", "000003112912", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "out of its Sync Out but none is detected");
    f = expect(&r, "sync-jacks", "000004112912", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->fix, "kinsync verify");
    ks_doctor_report_free(&r);

    /* Sync In missing on a subordinate, an extra Sync Out on the last device. */
    jacks[0] = (ks_jack_state){true, false, true};
    jacks[1] = (ks_jack_state){true, false, true};
    jacks[3] = (ks_jack_state){true, true, true};
    ks_doctor_report_init(&r);
    KS_CHECK_INT(ks_doctor_run(&o, &r, &e), KS_OK);
    expect(&r, "sync-jacks", "000001112912", KS_SEV_INFO);
    f = expect(&r, "sync-jacks", "000002112912", KS_SEV_ERROR);
    if (f)
        KS_CHECK_CONTAINS(f->message, "into its Sync In but none is detected");
    f = expect(&r, "sync-jacks", "000004112912", KS_SEV_WARNING);
    if (f)
        KS_CHECK_CONTAINS(f->message, "Sync Out that the rig does not have");
    ks_doctor_report_free(&r);
}

int main(void)
{
    KS_RUN(test_scan_usb);
    KS_RUN(test_good_host);
    KS_RUN(test_bad_host);
    KS_RUN(test_empty_host);
    KS_RUN(test_clock_variants);
    KS_RUN(test_sync_jacks);
    return KS_TEST_END();
}
