/* Loading recordings for playback and rebuilding the rig they came from (kinsync/playback.h).
 * The chain order decided here (master, then subordinates by delay, then file order) is used both
 * for the jacks each virtual device reports and for the cables of the rebuilt rig, so that the
 * session's jack check agrees with the rig it is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/playback/playback_internal.h"
#include "kinsync/plan.h"

void ks_playback_file_free(pb_file *f)
{
    free(f->path);
    free(f->calibration);
    memset(f, 0, sizeof *f);
}

bool ks_playback_is_recording(const char *path)
{
    FILE *fp = path ? fopen(path, "rb") : NULL;
    if (!fp)
        return false;
    unsigned char m[4] = {0};
    size_t n = fread(m, 1, 4, fp);
    fclose(fp);
    return n == 4 && m[0] == 0x1A && m[1] == 0x45 && m[2] == 0xDF && m[3] == 0xA3;
}

static void basename_noext(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

static ks_status load_one(const char *path, pb_file *f, ks_error *err)
{
    ks_mkv_reader *r = NULL;
    ks_status st = ks_mkv_reader_open(path, &r, err);
    if (st != KS_OK)
        return st;
    const ks_mkv_info *in = ks_mkv_reader_info(r);
    f->path = strdup(path);
    f->desc = in->desc;
    f->desc.calibration_json = NULL;
    f->desc.calibration_len = 0;
    if (in->desc.calibration_json) {
        f->calibration = malloc(in->desc.calibration_len + 1);
        if (f->calibration) {
            memcpy(f->calibration, in->desc.calibration_json, in->desc.calibration_len);
            f->calibration[in->desc.calibration_len] = '\0';
            f->calibration_len = in->desc.calibration_len;
            f->desc.calibration_json = f->calibration;
            f->desc.calibration_len = f->calibration_len;
        }
    }
    f->first_ts_us = in->start_offset_us;
    if (in->desc.serial[0])
        snprintf(f->serial, sizeof f->serial, "%s", in->desc.serial);
    else
        basename_noext(path, f->serial, sizeof f->serial);
    bool oom = !f->path || (in->desc.calibration_json && !f->calibration);
    bool no_video = in->desc.color_resolution == KS_COLOR_OFF && in->desc.depth_mode == KS_DEPTH_OFF;
    ks_mkv_reader_close(r);
    if (oom)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading %s", path);
    if (no_video)
        return ks_error_set(err, KS_EPARSE,
                            "%s has neither a color nor a depth/IR track an Azure Kinect recording would have; "
                            "check that it is a k4arecorder or kinsync recording",
                            path);
    return KS_OK;
}

/* Chain order: the master first, then subordinates by delay, then by file index. */
static void order_chain(pb_file *files, int count)
{
    int order[KS_PLAYBACK_MAX_FILES];
    int n = 0;
    for (int i = 0; i < count; i++) {
        files[i].chain_pos = -1;
        if (files[i].desc.sync_mode == KS_SYNC_SUBORDINATE)
            order[n++] = i;
    }
    for (int a = 1; a < n; a++) /* insertion sort: stable */
        for (int b = a; b > 0; b--) {
            const pb_file *x = &files[order[b - 1]], *y = &files[order[b]];
            if (x->desc.subordinate_delay_us <= y->desc.subordinate_delay_us)
                break;
            int t = order[b - 1];
            order[b - 1] = order[b];
            order[b] = t;
        }
    for (int i = 0; i < count; i++) {
        ks_jack_state *j = &files[i].jacks;
        j->supported = true;
        j->sync_in = false;
        j->sync_out = false;
        if (files[i].desc.sync_mode == KS_SYNC_MASTER) {
            files[i].chain_pos = 0;
            j->sync_out = true;
        }
    }
    for (int k = 0; k < n; k++) {
        pb_file *f = &files[order[k]];
        f->chain_pos = k + 1;
        f->jacks.sync_in = true;
        f->jacks.sync_out = k + 1 < n;
    }
}

ks_status ks_playback_files_load(const char *const *paths, int count, pb_file *files, ks_error *err)
{
    if (count < 1 || count > KS_PLAYBACK_MAX_FILES)
        return ks_error_set(err, KS_EINVAL, "give 1 to %d recordings (got %d)", KS_PLAYBACK_MAX_FILES, count);
    ks_status st = KS_OK;
    int i = 0;
    for (; i < count && st == KS_OK; i++)
        st = load_one(paths[i], &files[i], err);
    for (int a = 0; a < count && st == KS_OK; a++)
        for (int b = a + 1; b < count; b++)
            if (!strcmp(files[a].serial, files[b].serial)) {
                st = ks_error_set(err, KS_EINVAL,
                                  "%s and %s both come from device %s; give one recording per device", files[a].path,
                                  files[b].path, files[a].serial);
                break;
            }
    if (st != KS_OK) {
        for (int k = 0; k < count; k++)
            ks_playback_file_free(&files[k]);
        return st;
    }
    order_chain(files, count);
    return KS_OK;
}

static ks_role role_of(ks_wired_sync_mode m)
{
    return m == KS_SYNC_MASTER ? KS_ROLE_MASTER : m == KS_SYNC_SUBORDINATE ? KS_ROLE_SUBORDINATE : KS_ROLE_STANDALONE;
}

static ks_status build(pb_file *files, int count, ks_rig *rig, ks_playback_device *devs, ks_findings *findings,
                       ks_error *err)
{
    int master = -1, subs = 0;
    for (int i = 0; i < count; i++) {
        if (files[i].desc.sync_mode == KS_SYNC_MASTER) {
            if (master >= 0)
                return ks_error_set(err, KS_EINVAL,
                                    "%s and %s were both recorded as master; a rig has one master (are they from "
                                    "two different rigs?)",
                                    files[master].path, files[i].path);
            master = i;
        } else if (files[i].desc.sync_mode == KS_SYNC_SUBORDINATE) {
            subs++;
        }
    }
    if (subs && master < 0)
        return ks_error_set(err, KS_EINVAL,
                            "the recordings hold %d subordinate%s but no master; add the master's recording", subs,
                            subs == 1 ? "" : "s");
    const pb_file *ref = &files[master >= 0 ? master : 0];
    for (int i = 0; i < count; i++) {
        const ks_mkv_desc *a = &ref->desc, *b = &files[i].desc;
        /* the tags kinsync record writes (as `kinsync align` checks them): another rig, another take */
        if (a->rig_name[0] && b->rig_name[0] && strcmp(a->rig_name, b->rig_name))
            return ks_error_set(err, KS_EINVAL,
                                "%s was recorded by rig '%s' but %s by rig '%s': the recordings come from different "
                                "rigs; give one rig's recordings (`kinsync align` names the files that belong)",
                                files[i].path, b->rig_name, ref->path, a->rig_name);
        if (a->plan_digest[0] && b->plan_digest[0] && strcmp(a->plan_digest, b->plan_digest))
            return ks_error_set(err, KS_EINVAL,
                                "%s and %s were recorded with different plans (%.20s..., %.20s...): they come from "
                                "different takes or rigs; give the recordings of one take (`kinsync align` names the "
                                "files that belong)",
                                files[i].path, ref->path, b->plan_digest, a->plan_digest);
        if (a->fps != b->fps)
            return ks_error_set(err, KS_EINVAL, "%s runs at %d fps but %s at %d fps; a rig runs one frame rate",
                                files[i].path, ks_fps_hz(b->fps), ref->path, ks_fps_hz(a->fps));
        if (a->color_resolution != b->color_resolution || a->color_format != b->color_format ||
            a->depth_mode != b->depth_mode)
            return ks_error_set(err, KS_EINVAL,
                                "%s holds color %s %s + depth %s but %s color %s %s + depth %s; a rig uses one camera "
                                "configuration",
                                files[i].path, ks_image_format_name(b->color_format),
                                ks_color_resolution_name(b->color_resolution), ks_depth_mode_name(b->depth_mode),
                                ref->path, ks_image_format_name(a->color_format),
                                ks_color_resolution_name(a->color_resolution), ks_depth_mode_name(a->depth_mode));
    }
    ks_rig_init(rig);
    snprintf(rig->name, sizeof rig->name, "recordings");
    for (int i = 0; i < count; i++)
        if (files[i].desc.rig_name[0]) {
            snprintf(rig->name, sizeof rig->name, "%s", files[i].desc.rig_name);
            break;
        }
    snprintf(rig->source, sizeof rig->source, "%s", count == 1 ? files[0].path : "recordings");
    for (int i = 0; i < count; i++) /* the convention and exposure the rig recorded with */
        if (files[i].desc.timestamps[0]) {
            ks_ts_convention_parse(files[i].desc.timestamps, &rig->ts_convention);
            break;
        }
    for (int i = 0; i < count; i++)
        if (files[i].desc.color_exposure_us > 0) {
            rig->exposure.manual = true;
            rig->exposure.exposure_us = files[i].desc.color_exposure_us;
            break;
        }
    rig->camera.fps = ref->desc.fps;
    rig->camera.color_resolution = ref->desc.color_resolution;
    rig->camera.color_format = ref->desc.color_format;
    rig->camera.depth_mode = ref->desc.depth_mode;
    rig->device_count = count;
    for (int i = 0; i < count; i++) {
        ks_rig_device *d = &rig->devices[i];
        snprintf(d->serial, sizeof d->serial, "%s", files[i].serial);
        const char *name = files[i].desc.role[0] ? files[i].desc.role : files[i].serial;
        for (int j = 0; j < i; j++)
            if (!strcmp(rig->devices[j].name, name))
                name = files[i].serial;
        snprintf(d->name, sizeof d->name, "%s", name);
        snprintf(d->host, sizeof d->host, "localhost");
        d->role = role_of(files[i].desc.sync_mode);
        if (files[i].desc.has_firmware) {
            char c[24];
            ks_version_format(&files[i].desc.color_fw, c, sizeof c);
            snprintf(d->firmware, sizeof d->firmware, "%s", c);
        }
        if (files[i].desc.imu)
            rig->camera.imu = true;
    }
    /* the master's recording alone (the subordinates' files not given): as a rig of its own it is
     * a single device, which the rule "a master needs a cable in Sync Out" would refuse; it keeps
     * its recorded master configuration (ks_playback_plan), only the declared role is standalone */
    if (master >= 0 && subs == 0)
        rig->devices[master].role = KS_ROLE_STANDALONE;
    /* cables along the chain */
    int by_pos[KS_PLAYBACK_MAX_FILES + 1];
    int maxpos = 0;
    for (int i = 0; i < count; i++)
        if (files[i].chain_pos >= 0) {
            by_pos[files[i].chain_pos] = i;
            if (files[i].chain_pos > maxpos)
                maxpos = files[i].chain_pos;
        }
    for (int p = 1; master >= 0 && p <= maxpos; p++) {
        ks_rig_cable *c = &rig->cables[rig->cable_count++];
        memset(c, 0, sizeof *c);
        c->from = by_pos[p - 1];
        c->to = by_pos[p];
    }
    if (devs)
        for (int i = 0; i < count; i++) {
            ks_playback_device *pd = &devs[i];
            memset(pd, 0, sizeof *pd);
            snprintf(pd->path, sizeof pd->path, "%s", files[i].path);
            ks_playback_config_from_desc(&files[i].desc, &pd->config);
            snprintf(pd->role_tag, sizeof pd->role_tag, "%s", files[i].desc.role);
            snprintf(pd->plan_digest, sizeof pd->plan_digest, "%s", files[i].desc.plan_digest);
            pd->start_offset_us = files[i].first_ts_us;
        }
    ks_findings local;
    ks_findings_init(&local);
    ks_status st = ks_rig_validate(rig, &local);
    if (st != KS_OK) {
        for (int k = 0; k < local.count; k++)
            if (local.items[k].severity == KS_SEV_ERROR) {
                ks_error_set(err, KS_EINVAL, "the recordings do not form a valid rig: %s; %s",
                             local.items[k].message, local.items[k].fix);
                break;
            }
    }
    if (findings)
        for (int k = 0; k < local.count; k++) {
            const ks_finding *f = &local.items[k];
            ks_findings_add(findings, f->severity, f->rule, f->device, f->line, f->fix, "%s", f->message);
        }
    ks_findings_free(&local);
    return st;
}

ks_status ks_playback_rig_build(const char *const *paths, int count, ks_rig *rig, ks_playback_device *devs,
                                ks_findings *findings, ks_error *err)
{
    if (!paths || !rig)
        return ks_error_set(err, KS_EINVAL, "ks_playback_rig_build: no recordings or rig given");
    pb_file *files = calloc((size_t)(count > 0 ? count : 1), sizeof *files);
    if (!files)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading recordings");
    ks_status st = ks_playback_files_load(paths, count, files, err);
    if (st == KS_OK) {
        ks_rig *tmp = malloc(sizeof *tmp);
        if (!tmp) {
            st = ks_error_set(err, KS_ENOMEM, "out of memory building the rig");
        } else {
            st = build(files, count, tmp, devs, findings, err);
            if (st == KS_OK)
                *rig = *tmp;
            free(tmp);
        }
        for (int i = 0; i < count; i++)
            ks_playback_file_free(&files[i]);
    }
    free(files);
    return st;
}

ks_status ks_playback_plan(const ks_rig *rig, const ks_playback_device *devs, ks_plan *plan, ks_error *err)
{
    if (!rig || !devs || !plan)
        return ks_error_set(err, KS_EINVAL, "ks_playback_plan: rig, recordings and plan are required");
    ks_error ignore;
    (void)ks_plan_make(rig, NULL, plan, &ignore); /* structure; its own delays are replaced below */
    for (int i = 0; i < rig->device_count && i < plan->device_count; i++) {
        ks_plan_device *d = &plan->devices[i];
        const ks_device_config *c = &devs[i].config;
        d->config = *c;
        d->sync_mode = c->wired_sync_mode;
        d->subordinate_delay_usec = c->subordinate_delay_off_master_usec;
        d->subordinate_delay_effective_us = ks_delay_effective_us(c->subordinate_delay_off_master_usec);
        d->depth_delay_usec = c->depth_delay_off_color_usec;
        d->depth_delay_effective_us = ks_delay_effective_us(c->depth_delay_off_color_usec);
        d->color_offset_us = c->wired_sync_mode == KS_SYNC_SUBORDINATE ? d->subordinate_delay_effective_us : 0.0;
        d->laser_start_us = d->color_offset_us + d->depth_delay_effective_us;
    }
    ks_plan_check_lasers(rig, plan, plan->guard_us, &plan->proof);
    plan->feasible = plan->proof.lasers_ok && plan->proof.color_ok;
    plan->alternative_count = 0;
    if (plan->feasible) {
        plan->reason[0] = '\0';
    } else if (!plan->proof.lasers_ok && plan->proof.device_a >= 0) {
        snprintf(plan->reason, sizeof plan->reason,
                 "the recorded delays put the lasers of %s and %s %.1f us apart, closer than the guard of %.0f us",
                 rig->devices[plan->proof.device_a].name, rig->devices[plan->proof.device_b].name,
                 plan->proof.min_separation_us, plan->proof.guard_us);
    } else {
        snprintf(plan->reason, sizeof plan->reason,
                 "the recorded subordinate delays spread the color captures over %.1f us (target %d us)",
                 plan->proof.color_spread_us, ks_color_alignment_target_us());
    }
    return KS_OK;
}

ks_status ks_playback_open_rig(const char *const *paths, int count, const ks_playback_options *opts, ks_rig *rig,
                               ks_plan *plan, ks_backend **backend, ks_findings *findings, ks_error *err)
{
    if (!paths || !rig || !plan || !backend)
        return ks_error_set(err, KS_EINVAL, "ks_playback_open_rig: recordings, rig, plan and backend are required");
    if (count < 1 || count > KS_PLAYBACK_MAX_FILES)
        return ks_error_set(err, KS_EINVAL, "give 1 to %d recordings (got %d)", KS_PLAYBACK_MAX_FILES, count);
    ks_playback_device *devs = calloc((size_t)count, sizeof *devs);
    if (!devs)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading recordings");
    ks_status st = ks_playback_rig_build(paths, count, rig, devs, findings, err);
    if (st == KS_OK)
        st = ks_playback_plan(rig, devs, plan, err);
    if (st == KS_OK)
        st = ks_backend_open_playback(paths, count, opts, backend, err);
    free(devs);
    return st;
}
