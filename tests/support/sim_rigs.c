/* sim_rigs.c: see sim_rigs.h. */
#include "sim_rigs.h"

#include <stdio.h>
#include <string.h>

void simt_rig(ks_rig *rig, int n, simt_topology topo, double cable_m)
{
    ks_rig_init(rig);
    snprintf(rig->name, sizeof rig->name, "sim-test");
    rig->device_count = n;
    for (int i = 0; i < n; i++) {
        snprintf(rig->devices[i].serial, sizeof rig->devices[i].serial, "SIM%05d", i);
        snprintf(rig->devices[i].name, sizeof rig->devices[i].name, "cam%d", i);
        snprintf(rig->devices[i].host, sizeof rig->devices[i].host, "localhost");
    }
    rig->cable_count = 0;
    if (topo == SIMT_DAISY) {
        for (int i = 0; i + 1 < n; i++)
            rig->cables[rig->cable_count++] = (ks_rig_cable){.from = i, .to = i + 1, .length_m = cable_m};
    } else if (topo == SIMT_STAR) {
        for (int i = 1; i < n; i++)
            rig->cables[rig->cable_count++] =
                (ks_rig_cable){.from = 0, .to = i, .length_m = cable_m, .splitter = true};
    }
    ks_findings f;
    ks_findings_init(&f);
    if (ks_rig_validate(rig, &f) != KS_OK)
        for (int i = 0; i < f.count; i++)
            fprintf(stderr, "rig finding: %s: %s\n", f.items[i].rule, f.items[i].message);
    ks_findings_free(&f);
}

void simt_config(ks_sim_config *cfg, uint64_t seed, bool render)
{
    ks_sim_config_init(cfg);
    cfg->seed = seed;
    cfg->render_color = cfg->render_depth = render;
    cfg->clock_default.jitter_us = 0;
    cfg->usb_jitter_us = 0;
    cfg->usbfs_mb = ks_usbfs_recommended_mb(KS_RIG_MAX_DEVICES); /* a host prepared as `kinsync doctor` says;
                                                                    test_sim_limits checks the stock default */
}

void simt_device_config(const ks_rig *rig, int i, ks_device_config *cfg, int32_t depth_delay_us,
                        uint32_t sub_delay_us)
{
    ks_device_config_init(cfg);
    cfg->color_format = rig->camera.color_format;
    cfg->color_resolution = rig->camera.color_resolution;
    cfg->depth_mode = rig->camera.depth_mode;
    cfg->camera_fps = rig->camera.fps;
    cfg->depth_delay_off_color_usec = depth_delay_us;
    ks_role role = rig->devices[i].derived_role;
    cfg->wired_sync_mode = role == KS_ROLE_MASTER        ? KS_SYNC_MASTER
                           : role == KS_ROLE_SUBORDINATE ? KS_SYNC_SUBORDINATE
                                                         : KS_SYNC_STANDALONE;
    if (cfg->wired_sync_mode == KS_SYNC_SUBORDINATE)
        cfg->subordinate_delay_off_master_usec = sub_delay_us;
}

bool simt_open(simt_run *r, const ks_rig *rig, const ks_sim_config *cfg)
{
    memset(r, 0, sizeof *r);
    ks_error err;
    if (ks_backend_open_sim(rig, cfg, &r->backend, &err) != KS_OK) {
        fprintf(stderr, "open sim: %s\n", err.message);
        return false;
    }
    r->sim = ks_sim_from_backend(r->backend);
    r->n = rig->device_count;
    for (int i = 0; i < r->n; i++) {
        if (ks_device_open(r->backend, i, &r->dev[i], &err) != KS_OK) {
            fprintf(stderr, "open device %d: %s\n", i, err.message);
            return false;
        }
        if (ks_device_set_color_control(r->dev[i], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL,
                                        rig->exposure.exposure_us, &err) != KS_OK) {
            fprintf(stderr, "exposure %d: %s\n", i, err.message);
            return false;
        }
        simt_device_config(rig, i, &r->cfg[i], 0, 0);
    }
    return true;
}

bool simt_start(simt_run *r, int i)
{
    ks_error err;
    if (ks_device_start_cameras(r->dev[i], &r->cfg[i], &err) != KS_OK) {
        fprintf(stderr, "start %d: %s\n", i, err.message);
        return false;
    }
    return true;
}

bool simt_start_all(simt_run *r, const ks_rig *rig)
{
    (void)rig;
    for (int i = 0; i < r->n; i++)
        if (r->cfg[i].wired_sync_mode != KS_SYNC_MASTER && !simt_start(r, i))
            return false;
    for (int i = 0; i < r->n; i++)
        if (r->cfg[i].wired_sync_mode == KS_SYNC_MASTER && !simt_start(r, i))
            return false;
    return true;
}

void simt_close(simt_run *r)
{
    for (int i = 0; i < r->n; i++)
        ks_device_close(r->dev[i]);
    ks_backend_free(r->backend);
    memset(r, 0, sizeof *r);
}

static bool grab_one(simt_run *r, int i, ks_capture **c, ks_sim_frame_truth *t, int timeout_ms)
{
    ks_error err;
    if (ks_device_get_capture(r->dev[i], c, timeout_ms, &err) != KS_OK) {
        fprintf(stderr, "capture %d: %s\n", i, err.message);
        return false;
    }
    if (ks_sim_last_truth(r->sim, i, t, &err) != KS_OK) {
        fprintf(stderr, "truth %d: %s\n", i, err.message);
        ks_capture_release(*c);
        *c = NULL;
        return false;
    }
    return true;
}

bool simt_grab_aligned(simt_run *r, int n, const int *idx, ks_capture **c, ks_sim_frame_truth *t, int timeout_ms)
{
    for (int k = 0; k < n; k++)
        c[k] = NULL;
    bool ok = true;
    for (int k = 0; ok && k < n; k++)
        ok = grab_one(r, idx ? idx[k] : k, &c[k], &t[k], timeout_ms);
    for (int reads = 0; ok;) {
        int64_t latest = t[0].pulse_index;
        for (int k = 1; k < n; k++)
            if (t[k].pulse_index > latest)
                latest = t[k].pulse_index;
        int behind = -1;
        for (int k = 0; k < n && behind < 0; k++)
            if (t[k].pulse_index < latest)
                behind = k;
        if (behind < 0)
            return true;
        if (++reads > 100 * n) {
            fprintf(stderr, "devices not at one pulse after %d captures\n", reads);
            ok = false;
            break;
        }
        ks_capture_release(c[behind]);
        c[behind] = NULL;
        ok = grab_one(r, idx ? idx[behind] : behind, &c[behind], &t[behind], timeout_ms);
    }
    for (int k = 0; k < n; k++) {
        ks_capture_release(c[k]);
        c[k] = NULL;
    }
    return false;
}
