/* The rig file parser (kinsync/rig.h, docs/rig-file.md). Strict: every key is known, every value has
 * its type and range, every device reference resolves. Errors are "FILE:LINE: problem; fix" and list
 * the allowed values. Numbers about the hardware come from the tables (kinsync/timing.h). */
#include "kinsync/rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/yaml.h"

typedef struct parser {
    ks_yaml *y;
    ks_rig *rig;
    ks_error *err;
} parser;

#define TRY(expr)                                                                                         \
    do {                                                                                                  \
        ks_status st_ = (expr);                                                                           \
        if (st_ != KS_OK)                                                                                 \
            return st_;                                                                                   \
    } while (0)

/* ---- names ---- */

static const char *const role_names[KS_ROLE_COUNT] = {"auto", "standalone", "master", "subordinate"};
static const char *const topology_names[KS_TOPOLOGY_COUNT] = {"unknown", "standalone", "daisy-chain", "star"};
static const char *const aim_names[KS_AIM_COUNT] = {"simultaneous", "interleaved"};
static const char *const severity_names[] = {"info", "warning", "error"};

const char *ks_role_name(ks_role r)
{
    return (r >= 0 && r < KS_ROLE_COUNT) ? role_names[r] : "invalid";
}

bool ks_role_parse(const char *s, ks_role *out)
{
    if (!s)
        return false;
    for (int r = 0; r < KS_ROLE_COUNT; r++) {
        if (strcasecmp(s, role_names[r]) == 0) {
            *out = (ks_role)r;
            return true;
        }
    }
    return false;
}

const char *ks_topology_name(ks_topology t)
{
    return (t >= 0 && t < KS_TOPOLOGY_COUNT) ? topology_names[t] : "invalid";
}

const char *ks_aim_name(ks_aim a)
{
    return (a >= 0 && a < KS_AIM_COUNT) ? aim_names[a] : "invalid";
}

bool ks_aim_parse(const char *s, ks_aim *out)
{
    if (!s)
        return false;
    for (int a = 0; a < KS_AIM_COUNT; a++) {
        if (strcasecmp(s, aim_names[a]) == 0) {
            *out = (ks_aim)a;
            return true;
        }
    }
    return false;
}

const char *ks_severity_name(ks_severity s)
{
    return (s >= KS_SEV_INFO && s <= KS_SEV_ERROR) ? severity_names[s] : "invalid";
}

/* ---- defaults and look-ups ---- */

void ks_rig_init(ks_rig *rig)
{
    memset(rig, 0, sizeof *rig);
    snprintf(rig->name, sizeof rig->name, "rig");
    rig->trigger.to = -1;
    rig->camera.color_resolution = KS_COLOR_720P;
    rig->camera.color_format = KS_FORMAT_MJPG;
    rig->camera.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    rig->camera.fps = KS_FPS_30;
    rig->exposure.manual = true;
    rig->exposure.powerline = KS_POWERLINE_60HZ;
    /* the longest 60 Hz table entry within a quarter of a 30 fps frame period (8330 us) */
    int n;
    const int *t = ks_exposure_table(KS_POWERLINE_60HZ, &n);
    rig->exposure.exposure_us = t[0];
    for (int i = 0; i < n; i++)
        if (t[i] <= ks_frame_period_us(KS_FPS_30) / 4)
            rig->exposure.exposure_us = t[i];
    rig->ts_convention = KS_TS_MID_EXPOSURE; /* what the SDK documents and its multi-device test checks */
    rig->aim = KS_AIM_SIMULTANEOUS;
    rig->guard_us = 0;
    rig->topology = KS_TOPOLOGY_UNKNOWN;
    rig->master = -1;
}

int ks_rig_find_device(const ks_rig *rig, const char *serial_or_name)
{
    if (!rig || !serial_or_name)
        return -1;
    int n = rig->device_count < 0 ? 0 : rig->device_count > KS_RIG_MAX_DEVICES ? KS_RIG_MAX_DEVICES
                                                                              : rig->device_count;
    for (int i = 0; i < n; i++)
        if (strcmp(rig->devices[i].name, serial_or_name) == 0)
            return i;
    for (int i = 0; i < n; i++)
        if (strcmp(rig->devices[i].serial, serial_or_name) == 0)
            return i;
    return -1;
}

int ks_rig_guard_us(const ks_rig *rig)
{
    if (rig->guard_us > 0)
        return rig->guard_us;
    return ks_laser_default_guard_us(rig->camera.depth_mode);
}

/* ---- helpers ---- */

static void list_append(char *buf, size_t size, const char *item)
{
    size_t used = strlen(buf);
    if (used < size - 1)
        snprintf(buf + used, size - used, "%s%s", used ? ", " : "", item);
}

static ks_status bad_value(parser *p, const yaml_node_t *n, const char *what, const char *allowed)
{
    const char *s = ks_yaml_scalar(n);
    if (!s)
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE, "'%s' must be a single value; use one of: %s", what,
                             allowed);
    return ks_yaml_error(p->y, n, p->err, KS_EPARSE, "'%s' is '%s', which is not allowed; use one of: %s", what, s,
                         allowed);
}

static ks_status get_string(parser *p, const yaml_node_t *n, const char *what, char *buf, size_t size)
{
    TRY(ks_yaml_get_string(p->y, n, what, buf, size, p->err));
    if (!buf[0])
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE, "'%s' is empty; give it a value or remove the key", what);
    return KS_OK;
}

static ks_status get_device_ref(parser *p, const yaml_node_t *n, const char *what, int *out)
{
    char ref[KS_NAME_MAX];
    TRY(get_string(p, n, what, ref, sizeof ref));
    int i = ks_rig_find_device(p->rig, ref);
    if (i < 0) {
        char known[320] = "";
        for (int d = 0; d < p->rig->device_count; d++)
            list_append(known, sizeof known, p->rig->devices[d].name);
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                             "'%s' names device '%s', which is not in 'devices'; use a name or serial from: %s",
                             what, ref, known[0] ? known : "(no devices)");
    }
    *out = i;
    return KS_OK;
}

/* Line of `key` itself in a mapping (a block mapping value starts on the line after its key). */
static int key_line(parser *p, const yaml_node_t *map, const char *key)
{
    int n = ks_yaml_map_size(map);
    for (int i = 0; i < n; i++) {
        const char *k = ks_yaml_map_key(p->y, map, i);
        if (k && strcmp(k, key) == 0)
            return ks_yaml_line(yaml_document_get_node(&p->y->doc, map->data.mapping.pairs.start[i].key));
    }
    return 0;
}

/* ---- sections ---- */

/* recorder: "k4arecorder --external-sync sub --sync-delay 160 --depth-delay -80 ..." -- the delays of a
 * command line in use, imported for the audit. Other options are left to the camera section. */
static ks_status parse_recorder(parser *p, const yaml_node_t *n, ks_rig_device *d)
{
    char line[512];
    TRY(get_string(p, n, "recorder", line, sizeof line));
    char *save = NULL;
    bool any = false;
    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        long long *out = NULL;
        char *val = NULL;
        if (strncmp(tok, "--sync-delay", 12) == 0)
            out = &d->subordinate_delay_usec;
        else if (strncmp(tok, "--depth-delay", 13) == 0)
            out = &d->depth_delay_usec;
        else
            continue;
        val = strchr(tok, '=');
        val = val ? val + 1 : strtok_r(NULL, " \t", &save);
        char *end = NULL;
        long long x = val ? strtoll(val, &end, 10) : 0;
        if (!val || end == val || *end)
            return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                                 "'recorder': %s needs a whole number of microseconds, got '%s'; write e.g. "
                                 "\"%s 160\"",
                                 tok, val ? val : "", out == &d->subordinate_delay_usec ? "--sync-delay" : "--depth-delay");
        *out = x;
        any = true;
    }
    if (!any)
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                             "'recorder' has neither --sync-delay nor --depth-delay; give the k4arecorder command "
                             "line this device runs with (only its delays are read)");
    d->has_delays = true;
    d->delays_line = ks_yaml_line(n);
    return KS_OK;
}

static ks_status parse_device(parser *p, const yaml_node_t *n, int index)
{
    static const char *const keys[] = {"serial", "name", "host", "role", "firmware", "usb_controller", "group",
                                       "subordinate_delay_us", "depth_delay_us", "recorder", NULL};
    /* keys of the camera, exposure and plan sections written into a device */
    static const char *const rig_wide[] = {"color_resolution", "color_format", "depth_mode", "fps",
                                           "synchronized_images_only", "imu", "exposure", "us", "powerline",
                                           "mode", "aim", "guard_us", "camera", NULL};
    char where[48];
    snprintf(where, sizeof where, "devices[%d]", index);
    TRY(ks_yaml_expect_map(p->y, n, where, p->err));
    for (int k = 0; rig_wide[k]; k++) {
        yaml_node_t *bad = ks_yaml_map_get(p->y, n, rig_wide[k]);
        if (bad)
            return ks_yaml_error(p->y, bad, p->err, KS_EPARSE,
                                 "%s has '%s', but camera settings apply to the whole rig (every device must run "
                                 "the same configuration); move it to the '%s:' section",
                                 where, rig_wide[k],
                                 k < 6 || k == 12 ? "camera" : k < 10 ? "exposure" : "plan");
    }
    TRY(ks_yaml_check_keys(p->y, n, keys, where, p->err));
    ks_rig_device *d = &p->rig->devices[index];
    memset(d, 0, sizeof *d);
    d->line = ks_yaml_line(n);
    d->role = KS_ROLE_AUTO;
    d->derived_role = KS_ROLE_AUTO;
    snprintf(d->host, sizeof d->host, "localhost");

    yaml_node_t *v = ks_yaml_map_get(p->y, n, "serial");
    if (!v)
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                             "%s has no 'serial'; add the serial number printed on the device "
                             "(or shown by 'k4arecorder --list')",
                             where);
    TRY(get_string(p, v, "serial", d->serial, sizeof d->serial));
    if ((v = ks_yaml_map_get(p->y, n, "name")))
        TRY(get_string(p, v, "name", d->name, sizeof d->name));
    else
        memcpy(d->name, d->serial, strlen(d->serial) + 1); /* KS_SERIAL_MAX < KS_NAME_MAX */
    if ((v = ks_yaml_map_get(p->y, n, "host")))
        TRY(get_string(p, v, "host", d->host, sizeof d->host));
    if ((v = ks_yaml_map_get(p->y, n, "role")) && !ks_role_parse(ks_yaml_scalar(v), &d->role))
        return bad_value(p, v, "role", "auto, master, subordinate, standalone");
    if ((v = ks_yaml_map_get(p->y, n, "firmware")))
        TRY(get_string(p, v, "firmware", d->firmware, sizeof d->firmware));
    if ((v = ks_yaml_map_get(p->y, n, "usb_controller")))
        TRY(get_string(p, v, "usb_controller", d->usb_controller, sizeof d->usb_controller));
    if ((v = ks_yaml_map_get(p->y, n, "group"))) {
        long long g;
        TRY(ks_yaml_get_int(p->y, v, "group", 0, KS_RIG_MAX_DEVICES - 1, &g, p->err));
        d->group = (int)g;
    }
    /* hand-chosen delays, audited by the planner; any whole number parses so that the audit (not
     * the parser) can say what the SDK would do with it */
    if ((v = ks_yaml_map_get(p->y, n, "recorder")))
        TRY(parse_recorder(p, v, d));
    if ((v = ks_yaml_map_get(p->y, n, "subordinate_delay_us"))) {
        TRY(ks_yaml_get_int(p->y, v, "subordinate_delay_us", -10000000, 10000000, &d->subordinate_delay_usec,
                            p->err));
        d->has_delays = true;
        d->delays_line = ks_yaml_line(v);
    }
    if ((v = ks_yaml_map_get(p->y, n, "depth_delay_us"))) {
        TRY(ks_yaml_get_int(p->y, v, "depth_delay_us", -10000000, 10000000, &d->depth_delay_usec, p->err));
        d->has_delays = true;
        d->delays_line = ks_yaml_line(v);
    }
    return KS_OK;
}

static ks_status parse_devices(parser *p, const yaml_node_t *root)
{
    yaml_node_t *n = ks_yaml_map_get(p->y, root, "devices");
    if (!n)
        return ks_yaml_error(p->y, root, p->err, KS_EPARSE,
                             "the rig has no 'devices' list; add 'devices:' with one '- serial: ...' entry per "
                             "device");
    TRY(ks_yaml_expect_seq(p->y, n, "devices", p->err));
    int count = ks_yaml_seq_len(n);
    if (count > KS_RIG_MAX_DEVICES)
        return ks_yaml_error(p->y, ks_yaml_seq_item(p->y, n, KS_RIG_MAX_DEVICES), p->err, KS_EPARSE,
                             "the rig lists %d devices; at most %d are supported, split it into several rigs",
                             count, KS_RIG_MAX_DEVICES);
    for (int i = 0; i < count; i++) {
        TRY(parse_device(p, ks_yaml_seq_item(p->y, n, i), i));
        p->rig->device_count = i + 1;
    }
    return KS_OK;
}

static ks_status add_cable(parser *p, const yaml_node_t *at, int from, int to, double length, bool splitter)
{
    ks_rig *rig = p->rig;
    if (rig->cable_count >= KS_RIG_MAX_CABLES)
        return ks_yaml_error(p->y, at, p->err, KS_EPARSE, "more than %d cables; a rig needs at most one per device",
                             KS_RIG_MAX_CABLES);
    ks_rig_cable *c = &rig->cables[rig->cable_count++];
    c->from = from;
    c->to = to;
    c->length_m = length;
    c->splitter = splitter;
    c->line = ks_yaml_line(at);
    return KS_OK;
}

/* Cable length: 0 means "not given"; anything up to a kilometre parses so that the validator (not
 * the parser) can say the cable is too long and what the limit is. */
static ks_status get_length(parser *p, const yaml_node_t *map, double *out)
{
    yaml_node_t *v = ks_yaml_map_get(p->y, map, "length_m");
    *out = 0;
    if (v)
        TRY(ks_yaml_get_double(p->y, v, "length_m", 0.0, 1000.0, out, p->err));
    return KS_OK;
}

static ks_status parse_cables(parser *p, const yaml_node_t *n)
{
    static const char *const keys[] = {"from", "to", "length_m", "splitter", NULL};
    TRY(ks_yaml_expect_seq(p->y, n, "cables", p->err));
    for (int i = 0; i < ks_yaml_seq_len(n); i++) {
        yaml_node_t *c = ks_yaml_seq_item(p->y, n, i);
        char where[32];
        snprintf(where, sizeof where, "cables[%d]", i);
        TRY(ks_yaml_expect_map(p->y, c, where, p->err));
        TRY(ks_yaml_check_keys(p->y, c, keys, where, p->err));
        yaml_node_t *from = ks_yaml_map_get(p->y, c, "from"), *to = ks_yaml_map_get(p->y, c, "to");
        if (!from || !to)
            return ks_yaml_error(p->y, c, p->err, KS_EPARSE,
                                 "%s needs 'from' (the device whose Sync Out it leaves) and 'to' (the device whose "
                                 "Sync In it enters)",
                                 where);
        int a, b;
        TRY(get_device_ref(p, from, "from", &a));
        TRY(get_device_ref(p, to, "to", &b));
        double len;
        TRY(get_length(p, c, &len));
        bool splitter = false;
        yaml_node_t *v = ks_yaml_map_get(p->y, c, "splitter");
        if (v)
            TRY(ks_yaml_get_bool(p->y, v, "splitter", &splitter, p->err));
        TRY(add_cable(p, c, a, b, len, splitter));
    }
    return KS_OK;
}

/* chain: [a, b, c]  or  chain: {devices: [a, b, c], length_m: 2} */
static ks_status parse_chain(parser *p, const yaml_node_t *n)
{
    static const char *const keys[] = {"devices", "length_m", NULL};
    const yaml_node_t *list = n;
    double len = 0;
    if (ks_yaml_is_map(n)) {
        TRY(ks_yaml_check_keys(p->y, n, keys, "chain", p->err));
        list = ks_yaml_map_get(p->y, n, "devices");
        if (!list)
            return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                                 "'chain' needs 'devices: [master, first subordinate, ...]'");
        TRY(get_length(p, n, &len));
    }
    if (!ks_yaml_is_seq(list))
        return ks_yaml_error(p->y, list, p->err, KS_EPARSE,
                             "'chain' must be a list of devices in cable order, e.g. chain: [master, sub1, sub2]");
    int count = ks_yaml_seq_len(list);
    if (count < 2)
        return ks_yaml_error(p->y, list, p->err, KS_EPARSE,
                             "'chain' lists %d device; a chain needs the master and at least one subordinate",
                             count);
    int prev;
    TRY(get_device_ref(p, ks_yaml_seq_item(p->y, list, 0), "chain", &prev));
    for (int i = 1; i < count; i++) {
        yaml_node_t *item = ks_yaml_seq_item(p->y, list, i);
        int cur;
        TRY(get_device_ref(p, item, "chain", &cur));
        TRY(add_cable(p, item, prev, cur, len, false));
        prev = cur;
    }
    return KS_OK;
}

/* star: {master: a, subordinates: [b, c], length_m: 2} -- cables through a splitter on a's Sync Out */
static ks_status parse_star(parser *p, const yaml_node_t *n)
{
    static const char *const keys[] = {"master", "subordinates", "length_m", NULL};
    TRY(ks_yaml_expect_map(p->y, n, "star", p->err));
    TRY(ks_yaml_check_keys(p->y, n, keys, "star", p->err));
    yaml_node_t *m = ks_yaml_map_get(p->y, n, "master"), *subs = ks_yaml_map_get(p->y, n, "subordinates");
    if (!m || !subs)
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                             "'star' needs 'master: DEVICE' and 'subordinates: [DEVICE, DEVICE]'");
    int master;
    TRY(get_device_ref(p, m, "star.master", &master));
    TRY(ks_yaml_expect_seq(p->y, subs, "star.subordinates", p->err));
    double len;
    TRY(get_length(p, n, &len));
    for (int i = 0; i < ks_yaml_seq_len(subs); i++) {
        yaml_node_t *item = ks_yaml_seq_item(p->y, subs, i);
        int s;
        TRY(get_device_ref(p, item, "star.subordinates", &s));
        TRY(add_cable(p, item, master, s, len, true));
    }
    return KS_OK;
}

static ks_status parse_trigger(parser *p, const yaml_node_t *n, int line)
{
    static const char *const keys[] = {"frequency_hz", "pulse_width_us", "voltage_v", "drive_ma", "to", NULL};
    TRY(ks_yaml_expect_map(p->y, n, "trigger", p->err));
    TRY(ks_yaml_check_keys(p->y, n, keys, "trigger", p->err));
    ks_rig_trigger *t = &p->rig->trigger;
    t->present = true;
    t->line = line;
    t->to = -1;
    struct {
        const char *key;
        double *out;
        const char *what;
    } fields[] = {
        {"frequency_hz", &t->frequency_hz, "the generator's pulse frequency in Hz"},
        {"pulse_width_us", &t->pulse_width_us, "the width of its high pulse in microseconds"},
        {"voltage_v", &t->voltage_v, "its high level in volts"},
        {"drive_ma", &t->drive_ma, "the current it can drive in milliamps"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        yaml_node_t *v = ks_yaml_map_get(p->y, n, fields[i].key);
        if (!v)
            return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                                 "'trigger' has no '%s'; add %s (from the generator's data sheet) so the rig can "
                                 "be checked against the trigger spec",
                                 fields[i].key, fields[i].what);
        TRY(ks_yaml_get_double(p->y, v, fields[i].key, 0.0, 1e6, fields[i].out, p->err));
    }
    yaml_node_t *v = ks_yaml_map_get(p->y, n, "to");
    if (v)
        TRY(get_device_ref(p, v, "trigger.to", &t->to));
    return KS_OK;
}

static ks_status parse_camera(parser *p, const yaml_node_t *n, int line)
{
    static const char *const keys[] = {"color_resolution", "color_format", "depth_mode", "fps",
                                       "synchronized_images_only", "imu", NULL};
    TRY(ks_yaml_expect_map(p->y, n, "camera", p->err));
    TRY(ks_yaml_check_keys(p->y, n, keys, "camera", p->err));
    ks_rig_camera *c = &p->rig->camera;
    c->line = line;
    char allowed[256];
    yaml_node_t *v;
    if ((v = ks_yaml_map_get(p->y, n, "color_resolution")) &&
        !ks_color_resolution_parse(ks_yaml_scalar(v), &c->color_resolution)) {
        allowed[0] = '\0';
        for (int r = 0; r < KS_COLOR_RESOLUTION_COUNT; r++)
            list_append(allowed, sizeof allowed, ks_color_resolution_name((ks_color_resolution)r));
        return bad_value(p, v, "camera.color_resolution", allowed);
    }
    if ((v = ks_yaml_map_get(p->y, n, "color_format"))) {
        ks_image_format f;
        /* only formats some color resolution streams are color formats */
        unsigned color_formats = 0;
        for (int r = 1; r < KS_COLOR_RESOLUTION_COUNT; r++)
            color_formats |= ks_color_resolution_get((ks_color_resolution)r)->format_mask;
        if (!ks_image_format_parse(ks_yaml_scalar(v), &f) || !(color_formats & (1u << f))) {
            allowed[0] = '\0';
            for (int i = 0; i < KS_FORMAT_COUNT; i++)
                if (color_formats & (1u << i))
                    list_append(allowed, sizeof allowed, ks_image_format_name((ks_image_format)i));
            return bad_value(p, v, "camera.color_format", allowed);
        }
        c->color_format = f;
    }
    if ((v = ks_yaml_map_get(p->y, n, "depth_mode")) && !ks_depth_mode_parse(ks_yaml_scalar(v), &c->depth_mode)) {
        allowed[0] = '\0';
        for (int m = 0; m < KS_DEPTH_MODE_COUNT; m++)
            list_append(allowed, sizeof allowed, ks_depth_mode_name((ks_depth_mode)m));
        return bad_value(p, v, "camera.depth_mode", allowed);
    }
    if ((v = ks_yaml_map_get(p->y, n, "fps"))) {
        allowed[0] = '\0';
        for (int f = 0; f < KS_FPS_COUNT; f++) {
            char hz[16];
            snprintf(hz, sizeof hz, "%d", ks_fps_hz((ks_fps)f));
            list_append(allowed, sizeof allowed, hz);
        }
        long long hz;
        ks_error scratch;
        if (ks_yaml_get_int(p->y, v, "camera.fps", 0, 1000, &hz, &scratch) != KS_OK ||
            !ks_fps_from_hz((int)hz, &c->fps))
            return bad_value(p, v, "camera.fps", allowed);
    }
    if ((v = ks_yaml_map_get(p->y, n, "synchronized_images_only")))
        TRY(ks_yaml_get_bool(p->y, v, "camera.synchronized_images_only", &c->synchronized_images_only, p->err));
    if ((v = ks_yaml_map_get(p->y, n, "imu")))
        TRY(ks_yaml_get_bool(p->y, v, "camera.imu", &c->imu, p->err));
    return KS_OK;
}

static ks_status parse_exposure(parser *p, const yaml_node_t *n, int line)
{
    static const char *const keys[] = {"mode", "us", "powerline", NULL};
    TRY(ks_yaml_expect_map(p->y, n, "exposure", p->err));
    TRY(ks_yaml_check_keys(p->y, n, keys, "exposure", p->err));
    ks_rig_exposure *e = &p->rig->exposure;
    e->line = line;
    yaml_node_t *v;
    if ((v = ks_yaml_map_get(p->y, n, "mode"))) {
        const char *s = ks_yaml_scalar(v);
        if (s && strcasecmp(s, "manual") == 0)
            e->manual = true;
        else if (s && strcasecmp(s, "auto") == 0)
            e->manual = false;
        else
            return bad_value(p, v, "exposure.mode", "manual, auto");
    }
    if ((v = ks_yaml_map_get(p->y, n, "powerline"))) {
        long long hz = 0;
        ks_error scratch;
        if (ks_yaml_get_int(p->y, v, "exposure.powerline", 0, 1000, &hz, &scratch) != KS_OK ||
            (hz != 50 && hz != 60))
            return bad_value(p, v, "exposure.powerline", "50, 60 (the mains frequency in Hz where the rig stands)");
        e->powerline = hz == 50 ? KS_POWERLINE_50HZ : KS_POWERLINE_60HZ;
    }
    if ((v = ks_yaml_map_get(p->y, n, "us"))) {
        long long us;
        /* any positive request parses; the validator says what the device rounds it to */
        TRY(ks_yaml_get_int(p->y, v, "exposure.us", 1, 10000000, &us, p->err));
        e->exposure_us = (int)us;
    } else if (e->manual && ks_yaml_map_get(p->y, n, "mode")) {
        return ks_yaml_error(p->y, n, p->err, KS_EPARSE,
                             "manual exposure needs 'us: MICROSECONDS'; add it (e.g. a value from the %d Hz table)",
                             e->powerline == KS_POWERLINE_50HZ ? 50 : 60);
    } else {
        /* no request: the default moved onto this powerline's table */
        e->exposure_us = ks_exposure_round_up(e->powerline, e->exposure_us);
    }
    return KS_OK;
}

static ks_status parse_plan(parser *p, const yaml_node_t *n, int line)
{
    static const char *const keys[] = {"aim", "guard_us", NULL};
    TRY(ks_yaml_expect_map(p->y, n, "plan", p->err));
    TRY(ks_yaml_check_keys(p->y, n, keys, "plan", p->err));
    p->rig->plan_line = line;
    yaml_node_t *v;
    if ((v = ks_yaml_map_get(p->y, n, "aim")) && !ks_aim_parse(ks_yaml_scalar(v), &p->rig->aim))
        return bad_value(p, v, "plan.aim", "simultaneous, interleaved");
    if ((v = ks_yaml_map_get(p->y, n, "guard_us"))) {
        long long g;
        int max = ks_frame_period_us(KS_FPS_5);
        TRY(ks_yaml_get_int(p->y, v, "plan.guard_us", 0, max, &g, p->err));
        p->rig->guard_us = (int)g;
    }
    return KS_OK;
}

/* An empty value (`cables:` with nothing after it), `~` or `null`. */
static bool is_null(const yaml_node_t *n)
{
    const char *s = ks_yaml_scalar(n);
    return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

static ks_status parse_root(parser *p, const yaml_node_t *root)
{
    static const char *const keys[] = {"rig", "devices", "cables", "chain", "star", "trigger", "camera",
                                       "exposure", "timestamps", "plan", "simulation", NULL};
    if (!root)
        return ks_error_set(p->err, KS_EPARSE,
                            "%s: the file is empty; a rig file needs at least a 'devices:' list (see "
                            "docs/rig-file.md)",
                            p->y->name);
    TRY(ks_yaml_expect_map(p->y, root, "the rig file", p->err));
    TRY(ks_yaml_check_keys(p->y, root, keys, "the rig file", p->err));
    yaml_node_t *v;
    if ((v = ks_yaml_map_get(p->y, root, "rig")))
        TRY(get_string(p, v, "rig", p->rig->name, sizeof p->rig->name));
    TRY(parse_devices(p, root));
    if ((v = ks_yaml_map_get(p->y, root, "cables")) && !is_null(v))
        TRY(parse_cables(p, v));
    if ((v = ks_yaml_map_get(p->y, root, "chain")))
        TRY(parse_chain(p, v));
    if ((v = ks_yaml_map_get(p->y, root, "star")))
        TRY(parse_star(p, v));
    if ((v = ks_yaml_map_get(p->y, root, "trigger")))
        TRY(parse_trigger(p, v, key_line(p, root, "trigger")));
    if ((v = ks_yaml_map_get(p->y, root, "camera")))
        TRY(parse_camera(p, v, key_line(p, root, "camera")));
    if ((v = ks_yaml_map_get(p->y, root, "exposure")))
        TRY(parse_exposure(p, v, key_line(p, root, "exposure")));
    if ((v = ks_yaml_map_get(p->y, root, "timestamps")) &&
        !ks_ts_convention_parse(ks_yaml_scalar(v), &p->rig->ts_convention))
        return bad_value(p, v, "timestamps", "mid-exposure (the default, as the SDK header says), seed (start of "
                                             "frame when synced, as the sync article says) or auto (measured from "
                                             "the frames)");
    if ((v = ks_yaml_map_get(p->y, root, "plan")))
        TRY(parse_plan(p, v, key_line(p, root, "plan")));
    /* simulation: belongs to the simulator, which reads it from the same file with its own parser */
    if (ks_yaml_map_get(p->y, root, "simulation"))
        p->rig->has_simulation = true;
    return KS_OK;
}

static void default_name(ks_rig *rig, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len == 0)
        return;
    if (len >= sizeof rig->name)
        len = sizeof rig->name - 1;
    memcpy(rig->name, base, len);
    rig->name[len] = '\0';
}

static ks_status load_from(ks_yaml *y, const char *path, ks_rig *rig, ks_error *err)
{
    ks_rig *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        ks_yaml_free(y);
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory reading the rig", y->name);
    }
    ks_rig_init(tmp);
    if (path)
        snprintf(tmp->path, sizeof tmp->path, "%s", path);
    snprintf(tmp->source, sizeof tmp->source, "%s", y->name);
    default_name(tmp, y->name);
    parser p = {y, tmp, err};
    ks_status st = parse_root(&p, ks_yaml_root(y));
    ks_yaml_free(y);
    if (st == KS_OK)
        *rig = *tmp;
    free(tmp);
    return st;
}

ks_status ks_rig_load(const char *path, ks_rig *rig, ks_error *err)
{
    if (!path || !rig)
        return ks_error_set(err, KS_EINVAL, "ks_rig_load: no path or rig given");
    ks_yaml y;
    TRY(ks_yaml_load_file(path, &y, err));
    return load_from(&y, path, rig, err);
}

ks_status ks_rig_load_string(const char *text, size_t len, const char *name, ks_rig *rig, ks_error *err)
{
    if (!text || !rig)
        return ks_error_set(err, KS_EINVAL, "ks_rig_load_string: no text or rig given");
    ks_yaml y;
    TRY(ks_yaml_load_string(text, len, name ? name : "<rig>", &y, err));
    return load_from(&y, NULL, rig, err);
}
