/* device/sim/sim_config.c: defaults of the simulator and the `simulation:` section of a rig file.
 * Every key is optional; unknown keys are errors that name FILE:LINE and the allowed keys
 * (docs/simulator.md documents the section). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/sim/sim_internal.h"
#include "util/yaml.h"

void ks_sim_config_init(ks_sim_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->mode = KS_SIM_FAST;
    c->clock_default.offset_us = 0;     /* masters start their clocks at their first frame */
    c->clock_default.drift_ppm = 20;    /* each device draws a drift in +-20 ppm */
    c->clock_default.jitter_us = 1;
    c->propagation_ns_per_m = 5;        /* ~0.67 c in copper */
    c->hop_delay_ns = 50;
    c->default_cable_m = 2;
    c->usb_latency_us = 4000;
    c->usb_jitter_us = 300;
    c->start_latency_ms = 100;
    c->queue_frames = 8;
    c->device_buffer_frames = 2;
    c->usbfs_mb = ks_usbfs_default_mb(); /* the kernel's default: a stock host; 0 = not modelled */
    c->host_drift_ppm = 5;
    c->brightness_variation = 0.2;
    c->ring_radius_mm = 2500;
    c->ring_height_mm = 1500;
    snprintf(c->scene, sizeof c->scene, "room");
    c->board = true;
    c->board_width_mm = 600;
    c->board_height_mm = 600;
    c->render_color = c->render_depth = true;
    c->sensor = true;
    c->lockstep = true;
    c->startup_drop_max = 2;            /* frame counts differ by one or two at start, as on real rigs */
    c->device_timestamps = KS_TS_AUTO;  /* follow the rig file (mid-exposure when it says auto) */
    c->exposure_write_shift_us = 300;   /* model figure: SDK #471 reports the offset, not its size */
    c->exposure_write_settle_frames = 30;
}

typedef struct ctx {
    ks_yaml *y;
    const ks_rig *rig;
    ks_sim_config *c;
    ks_error *err;
} ctx;

static ks_status get_d(ctx *x, yaml_node_t *map, const char *key, double lo, double hi, double *out)
{
    yaml_node_t *n = ks_yaml_map_get(x->y, map, key);
    if (!n)
        return KS_OK;
    return ks_yaml_get_double(x->y, n, key, lo, hi, out, x->err);
}

static ks_status get_i(ctx *x, yaml_node_t *map, const char *key, long long lo, long long hi, int *out)
{
    yaml_node_t *n = ks_yaml_map_get(x->y, map, key);
    if (!n)
        return KS_OK;
    long long v;
    ks_status st = ks_yaml_get_int(x->y, n, key, lo, hi, &v, x->err);
    if (st == KS_OK)
        *out = (int)v;
    return st;
}

static ks_status get_b(ctx *x, yaml_node_t *map, const char *key, bool *out)
{
    yaml_node_t *n = ks_yaml_map_get(x->y, map, key);
    if (!n)
        return KS_OK;
    return ks_yaml_get_bool(x->y, n, key, out, x->err);
}

static ks_status get_vec3(ctx *x, yaml_node_t *map, const char *key, double out[3], bool *found)
{
    yaml_node_t *n = ks_yaml_map_get(x->y, map, key);
    if (found)
        *found = n != NULL;
    if (!n)
        return KS_OK;
    if (!ks_yaml_is_seq(n) || ks_yaml_seq_len(n) != 3)
        return ks_yaml_error(x->y, n, x->err, KS_EPARSE, "`%s` must be a list of 3 numbers in mm, e.g. [0, 0, 1000]",
                             key);
    for (int i = 0; i < 3; i++) {
        ks_status st = ks_yaml_get_double(x->y, ks_yaml_seq_item(x->y, n, i), key, -1e6, 1e6, &out[i], x->err);
        if (st != KS_OK)
            return st;
    }
    return KS_OK;
}

static ks_status device_ref(ctx *x, yaml_node_t *n, const char *what, int *out)
{
    char buf[KS_NAME_MAX];
    ks_status st = ks_yaml_get_string(x->y, n, what, buf, sizeof buf, x->err);
    if (st != KS_OK)
        return st;
    int idx = x->rig ? ks_rig_find_device(x->rig, buf) : -1;
    if (idx < 0) {
        char *end;
        long v = strtol(buf, &end, 10);
        int count = x->rig ? x->rig->device_count : KS_RIG_MAX_DEVICES;
        if (*buf && !*end && v >= 0 && v < count)
            idx = (int)v;
    }
    if (idx < 0)
        return ks_yaml_error(x->y, n, x->err, KS_EINVAL,
                             "`%s: %s` names no device of the rig; use a device name, serial or index", what, buf);
    *out = idx;
    return KS_OK;
}

static ks_status parse_clock(ctx *x, yaml_node_t *n, ks_sim_clock *ck)
{
    static const char *const keys[] = {"offset_us", "drift_ppm", "jitter_us", NULL};
    ks_status st = ks_yaml_expect_map(x->y, n, "clock", x->err);
    if (st == KS_OK)
        st = ks_yaml_check_keys(x->y, n, keys, "clock", x->err);
    if (st == KS_OK)
        st = get_d(x, n, "offset_us", -1e12, 1e12, &ck->offset_us);
    if (st == KS_OK)
        st = get_d(x, n, "drift_ppm", -1e4, 1e4, &ck->drift_ppm);
    if (st == KS_OK)
        st = get_d(x, n, "jitter_us", 0, 1e5, &ck->jitter_us);
    ck->set = true;
    return st;
}

static ks_status parse_devices(ctx *x, yaml_node_t *seq)
{
    ks_status st = ks_yaml_expect_seq(x->y, seq, "devices", x->err);
    for (int i = 0; st == KS_OK && i < ks_yaml_seq_len(seq); i++) {
        yaml_node_t *m = ks_yaml_seq_item(x->y, seq, i);
        static const char *const keys[] = {"device", "clock", "pose", NULL};
        st = ks_yaml_expect_map(x->y, m, "devices item", x->err);
        if (st == KS_OK)
            st = ks_yaml_check_keys(x->y, m, keys, "simulation device", x->err);
        if (st != KS_OK)
            break;
        yaml_node_t *dn = ks_yaml_map_get(x->y, m, "device");
        if (!dn)
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE,
                                 "a simulation device entry needs `device:` (name, serial or index)");
        int idx;
        st = device_ref(x, dn, "device", &idx);
        if (st != KS_OK)
            break;
        yaml_node_t *cn = ks_yaml_map_get(x->y, m, "clock");
        if (cn) {
            x->c->clocks[idx] = x->c->clock_default;
            st = parse_clock(x, cn, &x->c->clocks[idx]);
        }
        yaml_node_t *pn = ks_yaml_map_get(x->y, m, "pose");
        if (st == KS_OK && pn) {
            static const char *const pk[] = {"position", "look_at", "roll_deg", NULL};
            ks_sim_pose *p = &x->c->poses[idx];
            bool has_pos = false;
            st = ks_yaml_expect_map(x->y, pn, "pose", x->err);
            if (st == KS_OK)
                st = ks_yaml_check_keys(x->y, pn, pk, "pose", x->err);
            p->look_at[0] = p->look_at[1] = 0;
            p->look_at[2] = x->c->ring_height_mm * 0.5;
            if (st == KS_OK)
                st = get_vec3(x, pn, "position", p->position, &has_pos);
            if (st == KS_OK)
                st = get_vec3(x, pn, "look_at", p->look_at, NULL);
            if (st == KS_OK)
                st = get_d(x, pn, "roll_deg", -360, 360, &p->roll_deg);
            if (st == KS_OK && !has_pos)
                return ks_yaml_error(x->y, pn, x->err, KS_EPARSE, "`pose` needs `position: [x, y, z]` in mm");
            p->set = true;
        }
    }
    return st;
}

static ks_status parse_objects(ctx *x, yaml_node_t *seq)
{
    ks_status st = ks_yaml_expect_seq(x->y, seq, "objects", x->err);
    for (int i = 0; st == KS_OK && i < ks_yaml_seq_len(seq); i++) {
        yaml_node_t *m = ks_yaml_seq_item(x->y, seq, i);
        static const char *const keys[] = {"box", "sphere", "albedo", "color", NULL};
        st = ks_yaml_expect_map(x->y, m, "objects item", x->err);
        if (st == KS_OK)
            st = ks_yaml_check_keys(x->y, m, keys, "object", x->err);
        if (st != KS_OK)
            break;
        if (x->c->object_count >= KS_SIM_MAX_OBJECTS)
            return ks_yaml_error(x->y, m, x->err, KS_EINVAL, "more than %d objects; remove some",
                                 KS_SIM_MAX_OBJECTS);
        ks_sim_object *o = &x->c->objects[x->c->object_count];
        memset(o, 0, sizeof *o);
        o->albedo = 0.6;
        o->rgb[0] = o->rgb[1] = o->rgb[2] = 160;
        yaml_node_t *bx = ks_yaml_map_get(x->y, m, "box"), *sp = ks_yaml_map_get(x->y, m, "sphere");
        if ((bx != NULL) == (sp != NULL))
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE,
                                 "an object is either `box: {min: [..], max: [..]}` or `sphere: {center: [..], "
                                 "radius: mm}`");
        if (bx) {
            static const char *const bk[] = {"min", "max", NULL};
            bool f1 = false, f2 = false;
            o->kind = KS_SIM_BOX;
            st = ks_yaml_expect_map(x->y, bx, "box", x->err);
            if (st == KS_OK)
                st = ks_yaml_check_keys(x->y, bx, bk, "box", x->err);
            if (st == KS_OK)
                st = get_vec3(x, bx, "min", o->a, &f1);
            if (st == KS_OK)
                st = get_vec3(x, bx, "max", o->b, &f2);
            if (st == KS_OK && (!f1 || !f2 || o->a[0] >= o->b[0] || o->a[1] >= o->b[1] || o->a[2] >= o->b[2]))
                return ks_yaml_error(x->y, bx, x->err, KS_EINVAL, "a box needs `min` below `max` on every axis");
        } else {
            static const char *const sk[] = {"center", "radius", NULL};
            bool f1 = false;
            o->kind = KS_SIM_SPHERE;
            o->b[0] = 0;
            st = ks_yaml_expect_map(x->y, sp, "sphere", x->err);
            if (st == KS_OK)
                st = ks_yaml_check_keys(x->y, sp, sk, "sphere", x->err);
            if (st == KS_OK)
                st = get_vec3(x, sp, "center", o->a, &f1);
            if (st == KS_OK)
                st = get_d(x, sp, "radius", 1, 1e5, &o->b[0]);
            if (st == KS_OK && (!f1 || o->b[0] <= 0))
                return ks_yaml_error(x->y, sp, x->err, KS_EINVAL, "a sphere needs `center` and `radius`");
        }
        if (st == KS_OK)
            st = get_d(x, m, "albedo", 0, 1000, &o->albedo);
        double rgb[3] = {o->rgb[0], o->rgb[1], o->rgb[2]};
        bool fc = false;
        if (st == KS_OK)
            st = get_vec3(x, m, "color", rgb, &fc);
        if (st == KS_OK && fc)
            for (int k = 0; k < 3; k++)
                o->rgb[k] = (uint8_t)fmin(255, fmax(0, rgb[k]));
        if (st == KS_OK)
            x->c->object_count++;
    }
    return st;
}

static ks_status parse_board(ctx *x, yaml_node_t *m)
{
    static const char *const keys[] = {"present", "width_mm", "height_mm", "motion", "aprilgrid", NULL};
    ks_status st = ks_yaml_expect_map(x->y, m, "board", x->err);
    if (st == KS_OK)
        st = ks_yaml_check_keys(x->y, m, keys, "board", x->err);
    if (st == KS_OK)
        st = get_b(x, m, "present", &x->c->board);
    if (st == KS_OK)
        st = get_d(x, m, "width_mm", 10, 1e5, &x->c->board_width_mm);
    if (st == KS_OK)
        st = get_d(x, m, "height_mm", 10, 1e5, &x->c->board_height_mm);
    yaml_node_t *ag = ks_yaml_map_get(x->y, m, "aprilgrid");
    if (st == KS_OK && ag) {
        char rel[256];
        st = ks_yaml_get_string(x->y, ag, "aprilgrid", rel, sizeof rel, x->err);
        if (st == KS_OK) {
            /* relative to the rig file's directory */
            const char *slash = strrchr(x->y->name, '/');
            if (rel[0] == '/' || !slash)
                snprintf(x->c->board_aprilgrid, sizeof x->c->board_aprilgrid, "%s", rel);
            else
                snprintf(x->c->board_aprilgrid, sizeof x->c->board_aprilgrid, "%.*s/%s", (int)(slash - x->y->name),
                         x->y->name, rel);
        }
    }
    yaml_node_t *mo = ks_yaml_map_get(x->y, m, "motion");
    if (st == KS_OK && mo) {
        st = ks_yaml_expect_seq(x->y, mo, "motion", x->err);
        int n = ks_yaml_seq_len(mo);
        if (st == KS_OK && n > KS_SIM_MAX_BOARD_KEYS)
            return ks_yaml_error(x->y, mo, x->err, KS_EINVAL, "more than %d board keyframes", KS_SIM_MAX_BOARD_KEYS);
        for (int i = 0; st == KS_OK && i < n; i++) {
            yaml_node_t *k = ks_yaml_seq_item(x->y, mo, i);
            static const char *const kk[] = {"t_ms", "position", "rotation_deg", NULL};
            ks_sim_board_key *key = &x->c->board_keys[i];
            memset(key, 0, sizeof *key);
            double deg[3] = {0, 0, 0};
            bool fp = false;
            st = ks_yaml_expect_map(x->y, k, "motion item", x->err);
            if (st == KS_OK)
                st = ks_yaml_check_keys(x->y, k, kk, "board keyframe", x->err);
            if (st == KS_OK)
                st = get_d(x, k, "t_ms", 0, 1e9, &key->t_ms);
            if (st == KS_OK)
                st = get_vec3(x, k, "position", key->pos, &fp);
            if (st == KS_OK)
                st = get_vec3(x, k, "rotation_deg", deg, NULL);
            if (st == KS_OK && !fp)
                return ks_yaml_error(x->y, k, x->err, KS_EPARSE, "a board keyframe needs `position: [x, y, z]`");
            if (st == KS_OK && i > 0 && key->t_ms <= x->c->board_keys[i - 1].t_ms)
                return ks_yaml_error(x->y, k, x->err, KS_EINVAL, "board keyframes must have increasing `t_ms`");
            for (int a = 0; a < 3; a++)
                key->rotvec[a] = deg[a] * 3.141592653589793 / 180.0;
        }
        if (st == KS_OK)
            x->c->board_key_count = n;
    }
    return st;
}

static ks_status parse_faults(ctx *x, yaml_node_t *seq)
{
    ks_status st = ks_yaml_expect_seq(x->y, seq, "faults", x->err);
    for (int i = 0; st == KS_OK && i < ks_yaml_seq_len(seq); i++) {
        yaml_node_t *m = ks_yaml_seq_item(x->y, seq, i);
        static const char *const keys[] = {"kind", "at_ms", "duration_ms", "device", "cable", "from", "to",
                                           "count", "host", "free_run", NULL};
        st = ks_yaml_expect_map(x->y, m, "faults item", x->err);
        if (st == KS_OK)
            st = ks_yaml_check_keys(x->y, m, keys, "fault", x->err);
        if (st != KS_OK)
            break;
        if (x->c->fault_count >= KS_SIM_MAX_FAULTS)
            return ks_yaml_error(x->y, m, x->err, KS_EINVAL, "more than %d faults", KS_SIM_MAX_FAULTS);
        ks_sim_fault *f = &x->c->faults[x->c->fault_count];
        memset(f, 0, sizeof *f);
        f->device = f->cable = -1;
        f->count = 1;
        char kind[32] = "";
        yaml_node_t *kn = ks_yaml_map_get(x->y, m, "kind");
        if (!kn)
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE,
                                 "a fault needs `kind:` (unplug, disconnect, drop, stall, trigger-stop or bad-frames)");
        st = ks_yaml_get_string(x->y, kn, "kind", kind, sizeof kind, x->err);
        if (st != KS_OK)
            break;
        int k;
        for (k = 0; k < KS_SIM_FAULT_KIND_COUNT; k++)
            if (strcmp(kind, ks_sim_fault_kind_name((ks_sim_fault_kind)k)) == 0)
                break;
        if (k == KS_SIM_FAULT_KIND_COUNT)
            return ks_yaml_error(x->y, kn, x->err, KS_EINVAL,
                                 "unknown fault kind `%s`; use unplug, disconnect, drop, stall, trigger-stop or bad-frames",
                                 kind);
        f->kind = (ks_sim_fault_kind)k;
        if (!ks_yaml_map_get(x->y, m, "at_ms"))
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE, "a fault needs `at_ms:` (virtual ms since start)");
        st = get_d(x, m, "at_ms", 0, 1e10, &f->at_ms);
        if (st == KS_OK)
            st = get_d(x, m, "duration_ms", 0, 1e10, &f->duration_ms);
        if (st == KS_OK)
            st = get_i(x, m, "count", 1, 1000000, &f->count);
        yaml_node_t *dn = ks_yaml_map_get(x->y, m, "device");
        if (st == KS_OK && dn)
            st = device_ref(x, dn, "device", &f->device);
        if (st == KS_OK)
            st = get_b(x, m, "free_run", &f->free_run);
        if (st == KS_OK && f->free_run && f->kind != KS_SIM_FAULT_UNPLUG)
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE,
                                 "`free_run:` applies to unplug faults only (the subordinate behind the pulled cable)");
        yaml_node_t *hn = ks_yaml_map_get(x->y, m, "host");
        if (st == KS_OK && hn)
            st = ks_yaml_get_string(x->y, hn, "host", f->host, sizeof f->host, x->err);
        if (st == KS_OK && f->kind == KS_SIM_FAULT_UNPLUG) {
            yaml_node_t *cn = ks_yaml_map_get(x->y, m, "cable");
            yaml_node_t *fn = ks_yaml_map_get(x->y, m, "from"), *tn = ks_yaml_map_get(x->y, m, "to");
            if (cn) {
                st = get_i(x, m, "cable", 0, KS_RIG_MAX_CABLES - 1, &f->cable);
                if (st == KS_OK && x->rig && f->cable >= x->rig->cable_count)
                    return ks_yaml_error(x->y, cn, x->err, KS_EINVAL, "the rig has no cable %d (it has %d)",
                                         f->cable, x->rig->cable_count);
            } else if (tn) {
                int from = -1, to = -1;
                st = device_ref(x, tn, "to", &to);
                if (st == KS_OK && fn)
                    st = device_ref(x, fn, "from", &from);
                for (int c = 0; st == KS_OK && x->rig && c < x->rig->cable_count; c++)
                    if (x->rig->cables[c].to == to && (from < 0 || x->rig->cables[c].from == from))
                        f->cable = c;
                if (st == KS_OK && f->cable < 0)
                    return ks_yaml_error(x->y, m, x->err, KS_EINVAL, "no rig cable goes into that device's Sync In");
            } else {
                return ks_yaml_error(x->y, m, x->err, KS_EPARSE,
                                     "an unplug fault needs `cable: index` or `to: device` (and optionally `from:`)");
            }
        }
        if (st == KS_OK && (f->kind == KS_SIM_FAULT_DISCONNECT || f->kind == KS_SIM_FAULT_DROP ||
                            f->kind == KS_SIM_FAULT_BAD_FRAMES) && f->device < 0)
            return ks_yaml_error(x->y, m, x->err, KS_EPARSE, "a %s fault needs `device:`", kind);
        if (st == KS_OK && f->kind == KS_SIM_FAULT_STALL_HOST) {
            if (!f->host[0])
                snprintf(f->host, sizeof f->host, "localhost");
            if (f->duration_ms <= 0)
                return ks_yaml_error(x->y, m, x->err, KS_EPARSE, "a stall fault needs `duration_ms:` > 0");
        }
        if (st == KS_OK)
            x->c->fault_count++;
    }
    return st;
}

static ks_status parse_section(ctx *x, yaml_node_t *s)
{
    static const char *const keys[] = {"seed", "mode", "clock", "devices", "propagation_ns_per_m", "hop_delay_ns",
                                       "default_cable_m", "usb", "start_latency_ms", "queue_frames",
                                       "device_buffer_frames", "usbfs_mb", "host_drift_ppm",
                                       "trigger_frequency_error_ppm", "brightness_variation", "scene", "board",
                                       "faults", "render", "lockstep", "startup_drop_max", "timestamps",
                                       "exposure_write", NULL};
    ks_sim_config *c = x->c;
    ks_status st = ks_yaml_expect_map(x->y, s, "simulation", x->err);
    if (st == KS_OK)
        st = ks_yaml_check_keys(x->y, s, keys, "simulation", x->err);
    if (st != KS_OK)
        return st;
    yaml_node_t *n;
    if ((n = ks_yaml_map_get(x->y, s, "seed"))) {
        long long v;
        if ((st = ks_yaml_get_int(x->y, n, "seed", 0, (long long)9e18, &v, x->err)) != KS_OK)
            return st;
        c->seed = (uint64_t)v;
    }
    if ((n = ks_yaml_map_get(x->y, s, "mode"))) {
        char m[16];
        if ((st = ks_yaml_get_string(x->y, n, "mode", m, sizeof m, x->err)) != KS_OK)
            return st;
        if (strcmp(m, "fast") == 0)
            c->mode = KS_SIM_FAST;
        else if (strcmp(m, "paced") == 0)
            c->mode = KS_SIM_PACED;
        else
            return ks_yaml_error(x->y, n, x->err, KS_EINVAL, "`mode: %s` is unknown; use fast or paced", m);
    }
    if ((n = ks_yaml_map_get(x->y, s, "clock"))) {
        if ((st = parse_clock(x, n, &c->clock_default)) != KS_OK)
            return st;
        c->clock_default.set = false;
    }
    /* scalars first so that per-device poses default to the ring height given here */
    if ((st = get_d(x, s, "propagation_ns_per_m", 0, 1e6, &c->propagation_ns_per_m)) != KS_OK ||
        (st = get_d(x, s, "hop_delay_ns", 0, 1e9, &c->hop_delay_ns)) != KS_OK ||
        (st = get_d(x, s, "default_cable_m", 0, 1000, &c->default_cable_m)) != KS_OK ||
        (st = get_d(x, s, "start_latency_ms", 0, 1e6, &c->start_latency_ms)) != KS_OK ||
        (st = get_i(x, s, "queue_frames", 1, 1000, &c->queue_frames)) != KS_OK ||
        (st = get_i(x, s, "device_buffer_frames", 0, 1000, &c->device_buffer_frames)) != KS_OK ||
        (st = get_i(x, s, "usbfs_mb", 0, 1 << 20, &c->usbfs_mb)) != KS_OK ||
        (st = get_d(x, s, "host_drift_ppm", 0, 1e4, &c->host_drift_ppm)) != KS_OK ||
        (st = get_d(x, s, "trigger_frequency_error_ppm", -1e6, 1e6, &c->trigger_frequency_error_ppm)) != KS_OK ||
        (st = get_d(x, s, "brightness_variation", 0, 0.95, &c->brightness_variation)) != KS_OK ||
        (st = get_b(x, s, "lockstep", &c->lockstep)) != KS_OK ||
        (st = get_i(x, s, "startup_drop_max", 0, 100, &c->startup_drop_max)) != KS_OK)
        return st;
    if ((n = ks_yaml_map_get(x->y, s, "timestamps"))) {
        ks_ts_convention tc;
        if (!ks_ts_convention_parse(ks_yaml_scalar(n), &tc) || tc == KS_TS_AUTO)
            return ks_yaml_error(x->y, n, x->err, KS_EINVAL,
                                 "`timestamps:` of the simulated devices is seed (start of frame when synced) or "
                                 "mid-exposure (as the SDK documents)");
        c->device_timestamps = tc;
    }
    if ((n = ks_yaml_map_get(x->y, s, "exposure_write"))) {
        static const char *const ek[] = {"shift_us", "settle_frames", NULL};
        if ((st = ks_yaml_expect_map(x->y, n, "exposure_write", x->err)) != KS_OK ||
            (st = ks_yaml_check_keys(x->y, n, ek, "exposure_write", x->err)) != KS_OK ||
            (st = get_d(x, n, "shift_us", -1e5, 1e5, &c->exposure_write_shift_us)) != KS_OK ||
            (st = get_i(x, n, "settle_frames", 0, 1000000, &c->exposure_write_settle_frames)) != KS_OK)
            return st;
    }
    if ((n = ks_yaml_map_get(x->y, s, "usb"))) {
        static const char *const uk[] = {"latency_us", "jitter_us", NULL};
        if ((st = ks_yaml_expect_map(x->y, n, "usb", x->err)) != KS_OK ||
            (st = ks_yaml_check_keys(x->y, n, uk, "usb", x->err)) != KS_OK ||
            (st = get_d(x, n, "latency_us", 0, 1e7, &c->usb_latency_us)) != KS_OK ||
            (st = get_d(x, n, "jitter_us", 0, 1e7, &c->usb_jitter_us)) != KS_OK)
            return st;
    }
    if ((n = ks_yaml_map_get(x->y, s, "scene"))) {
        static const char *const sk[] = {"name", "objects", "ring_radius_mm", "ring_height_mm", NULL};
        if ((st = ks_yaml_expect_map(x->y, n, "scene", x->err)) != KS_OK ||
            (st = ks_yaml_check_keys(x->y, n, sk, "scene", x->err)) != KS_OK ||
            (st = get_d(x, n, "ring_radius_mm", 100, 1e5, &c->ring_radius_mm)) != KS_OK ||
            (st = get_d(x, n, "ring_height_mm", -1e5, 1e5, &c->ring_height_mm)) != KS_OK)
            return st;
        yaml_node_t *nm = ks_yaml_map_get(x->y, n, "name");
        if (nm) {
            if ((st = ks_yaml_get_string(x->y, nm, "name", c->scene, sizeof c->scene, x->err)) != KS_OK)
                return st;
            if (strcmp(c->scene, "room") != 0 && strcmp(c->scene, "empty") != 0)
                return ks_yaml_error(x->y, nm, x->err, KS_EINVAL, "`scene: name: %s` is unknown; use room or empty",
                                     c->scene);
        }
        yaml_node_t *ob = ks_yaml_map_get(x->y, n, "objects");
        if (ob && (st = parse_objects(x, ob)) != KS_OK)
            return st;
    }
    if ((n = ks_yaml_map_get(x->y, s, "board")) && (st = parse_board(x, n)) != KS_OK)
        return st;
    if ((n = ks_yaml_map_get(x->y, s, "devices")) && (st = parse_devices(x, n)) != KS_OK)
        return st;
    if ((n = ks_yaml_map_get(x->y, s, "faults")) && (st = parse_faults(x, n)) != KS_OK)
        return st;
    if ((n = ks_yaml_map_get(x->y, s, "render"))) {
        static const char *const rk[] = {"color", "depth", "depth_noise_mm", "sensor", NULL};
        if ((st = ks_yaml_expect_map(x->y, n, "render", x->err)) != KS_OK ||
            (st = ks_yaml_check_keys(x->y, n, rk, "render", x->err)) != KS_OK ||
            (st = get_b(x, n, "color", &c->render_color)) != KS_OK ||
            (st = get_b(x, n, "depth", &c->render_depth)) != KS_OK ||
            (st = get_d(x, n, "depth_noise_mm", 0, 1000, &c->depth_noise_mm)) != KS_OK ||
            (st = get_b(x, n, "sensor", &c->sensor)) != KS_OK)
            return st;
    }
    return KS_OK;
}

static ks_status load(ks_yaml *y, const ks_rig *rig, ks_sim_config *out, ks_error *err)
{
    ks_sim_config *c = malloc(sizeof *c);
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading the simulation section");
    ks_sim_config_init(c);
    ks_status st = KS_OK;
    yaml_node_t *root = ks_yaml_root(y);
    if (root && ks_yaml_is_map(root)) {
        yaml_node_t *s = ks_yaml_map_get(y, root, "simulation");
        if (s) {
            ctx x = {y, rig, c, err};
            st = parse_section(&x, s);
        }
    } else if (root && !ks_yaml_is_map(root)) {
        st = ks_yaml_error(y, root, err, KS_EPARSE, "the file must be a mapping (a rig file)");
    }
    if (st == KS_OK)
        *out = *c;
    free(c);
    return st;
}

ks_status ks_sim_config_load(const char *path, const ks_rig *rig, ks_sim_config *cfg, ks_error *err)
{
    if (!path || !cfg)
        return ks_error_set(err, KS_EINVAL, "ks_sim_config_load: no path or output given");
    ks_yaml y;
    ks_status st = ks_yaml_load_file(path, &y, err);
    if (st != KS_OK)
        return st;
    st = load(&y, rig, cfg, err);
    ks_yaml_free(&y);
    return st;
}

ks_status ks_sim_config_load_string(const char *text, size_t len, const char *name, const ks_rig *rig,
                                    ks_sim_config *cfg, ks_error *err)
{
    if (!text || !cfg)
        return ks_error_set(err, KS_EINVAL, "ks_sim_config_load_string: no text or output given");
    ks_yaml y;
    ks_status st = ks_yaml_load_string(text, len, name ? name : "<simulation>", &y, err);
    if (st != KS_OK)
        return st;
    st = load(&y, rig, cfg, err);
    ks_yaml_free(&y);
    return st;
}

ks_status ks_backend_open_sim_file(const char *path, int mode_override, ks_backend **out, ks_rig *rig_out,
                                   ks_error *err)
{
    if (!path || !out)
        return ks_error_set(err, KS_EINVAL, "ks_backend_open_sim_file: no path or output given");
    ks_rig *rig = malloc(sizeof *rig);
    ks_sim_config *cfg = malloc(sizeof *cfg);
    ks_status st = KS_OK;
    if (!rig || !cfg)
        st = ks_error_set(err, KS_ENOMEM, "out of memory loading %s", path);
    if (st == KS_OK)
        st = ks_rig_load(path, rig, err);
    if (st == KS_OK) {
        ks_findings f;
        ks_findings_init(&f);
        (void)ks_rig_validate(rig, &f); /* roles and topology; findings are the planner's business */
        ks_findings_free(&f);
        st = ks_sim_config_load(path, rig, cfg, err);
    }
    if (st == KS_OK) {
        if (mode_override == KS_SIM_FAST || mode_override == KS_SIM_PACED)
            cfg->mode = (ks_sim_mode)mode_override;
        st = ks_backend_open_sim(rig, cfg, out, err);
    }
    if (st == KS_OK && rig_out)
        *rig_out = *rig;
    free(rig);
    free(cfg);
    return st;
}
