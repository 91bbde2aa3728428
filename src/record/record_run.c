/* Recording a rig (ks_record_run, kinsync/record.h) through the session (kinsync/session.h):
 * the session opens the devices, checks firmware and jacks, sets the exposure once, starts the
 * subordinates and the master last, waits for the first frames and runs one capture thread per
 * device. Every capture is written from its device's capture thread (the session's on_capture
 * hook), before and independently of frame-set matching, so a file holds every frame its device
 * delivered -- a late or unmatched frame is still recorded -- and no device's writing waits for
 * another's. The main thread only consumes the frame sets, watches the limits and the stop flag,
 * and reports progress. */
#include "kinsync/record.h"

#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "util/monotime.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- configurations and digest ---- */

static ks_role role_of(const ks_rig_device *d)
{
    return d->derived_role != KS_ROLE_AUTO ? d->derived_role : d->role;
}

void ks_record_rig_tags(const ks_rig *rig, ks_recorder_options *ro)
{
    if (!ro->rig_name[0])
        snprintf(ro->rig_name, sizeof ro->rig_name, "%s", rig->name);
    ro->color_exposure_us =
        rig->exposure.manual ? ks_exposure_round_up(rig->exposure.powerline, rig->exposure.exposure_us) : 0;
    snprintf(ro->timestamps, sizeof ro->timestamps, "%s", ks_ts_convention_name(rig->ts_convention));
}

void ks_record_plan_digest(const ks_rig *rig, const ks_device_config *configs, char digest[80])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    char line[512];
    int n = snprintf(line, sizeof line, "rig %s fps %d color %s %s depth %s\n", rig->name,
                     ks_fps_hz(rig->camera.fps), ks_image_format_name(rig->camera.color_format),
                     ks_color_resolution_name(rig->camera.color_resolution), ks_depth_mode_name(rig->camera.depth_mode));
    crypto_hash_sha256_update(&h, (const unsigned char *)line, (unsigned long long)n);
    for (int i = 0; i < rig->device_count; i++) {
        const ks_device_config *c = &configs[i];
        n = snprintf(line, sizeof line, "device %s role %s sync %s sub %u depth %d\n", rig->devices[i].serial,
                     ks_role_name(role_of(&rig->devices[i])), ks_wired_sync_mode_name(c->wired_sync_mode),
                     c->subordinate_delay_off_master_usec, c->depth_delay_off_color_usec);
        crypto_hash_sha256_update(&h, (const unsigned char *)line, (unsigned long long)n);
    }
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, out);
    int k = snprintf(digest, 80, "sha256:");
    for (int i = 0; i < (int)sizeof out && k + 2 < 80; i++)
        k += snprintf(digest + k, 80 - (size_t)k, "%02x", out[i]);
}

ks_status ks_record_configs_from_rig(const ks_rig *rig, const ks_plan *plan_in, ks_device_config *configs,
                                     char *digest, ks_error *err)
{
    if (!rig || !configs || rig->device_count < 1)
        return ks_error_set(err, KS_EINVAL, "the rig has no devices; add devices to the rig file");
    ks_plan *plan = NULL;
    ks_status st = KS_OK;
    if (!plan_in) {
        plan = malloc(sizeof *plan);
        if (!plan)
            return ks_error_set(err, KS_ENOMEM, "out of memory planning the rig");
        st = ks_plan_make(rig, NULL, plan, err);
        if (st != KS_OK)
            ks_error_prefix(err, st, "the rig %s cannot be planned (kinsync plan explains)", rig->name);
        plan_in = plan;
    }
    for (int i = 0; i < rig->device_count && st == KS_OK; i++) {
        configs[i] = plan_in->devices[i].config;
        configs[i].synchronized_images_only = rig->camera.synchronized_images_only;
        st = ks_device_config_check(&configs[i], err);
        if (st != KS_OK)
            ks_error_prefix(err, st, "device %s", rig->devices[i].serial);
    }
    free(plan);
    if (st == KS_OK && digest)
        ks_record_plan_digest(rig, configs, digest);
    return st;
}

/* ---- the run ---- */

typedef struct run_ctx {
    const ks_rig *rig;
    const ks_record_run_options *opts;
    ks_session *session;
    ks_recorder *rec;
    int rig_of[KS_RIG_MAX_DEVICES];   /* session device -> recorder (rig) index */
    int sess_of[KS_RIG_MAX_DEVICES];  /* rig index -> session device, -1 */
    volatile int imu_on;
    volatile int failed;              /* a write failed */
    ks_error fail_err;
    pthread_mutex_t mu;
} run_ctx;

static bool reached_limits(run_ctx *c, int ri)
{
    ks_record_stats st;
    if (ks_recorder_stats(c->rec, ri, &st, NULL) != KS_OK)
        return false;
    if (c->opts->frames && st.captures >= c->opts->frames)
        return true;
    if (c->opts->seconds > 0 && st.captures &&
        (double)(st.last_ts_us - st.first_ts_us) >= c->opts->seconds * 1e6 - ks_frame_period_us(c->rig->camera.fps) / 2)
        return true;
    return false;
}

/* In the device's capture thread: write the capture (and the IMU samples that arrived). */
static void on_capture(int d, ks_capture *cap, void *user)
{
    run_ctx *c = user;
    int ri = c->rig_of[d];
    if (c->failed || reached_limits(c, ri))
        return;
    ks_error e;
    if (ks_recorder_add_capture(c->rec, ri, cap, &e) != KS_OK) {
        pthread_mutex_lock(&c->mu);
        if (!c->failed) {
            c->failed = 1;
            c->fail_err = e;
        }
        pthread_mutex_unlock(&c->mu);
        ks_session_request_stop(c->session);
        return;
    }
    if (c->imu_on) {
        ks_device *dev = ks_session_device(c->session, d);
        ks_imu_sample s;
        ks_error ie;
        while (ks_device_get_imu_sample(dev, &s, 0, &ie) == KS_OK)
            if (ks_recorder_add_imu(c->rec, ri, &s, &ie) != KS_OK)
                break;
    }
}

/* True when a device that has not reached the limits delivered nothing for stall_ms (the session's
 * timed-out waits since its last frame): err names every such device with the backend's reason,
 * and their alive[] entries are cleared (their files end there). */
static bool stalled(run_ctx *c, const ks_session_progress *sp, int stall_ms, bool *silent, ks_error *err)
{
    char msg[KS_ERROR_MESSAGE_MAX];
    size_t k = 0;
    int count = 0;
    bool any = false;
    msg[0] = 0;
    for (int d = 0; d < sp->device_count; d++)
        if (sp->alive[d] && sp->silent_ms[d] >= stall_ms && !reached_limits(c, c->rig_of[d]))
            any = true;
    if (!any)
        return false;
    /* name every device silent for a second or more: one cause often silences several */
    for (int d = 0; d < sp->device_count; d++) {
        int ri = c->rig_of[d];
        if (!sp->alive[d] || sp->silent_ms[d] < (stall_ms < 1000 ? stall_ms : 1000) || reached_limits(c, ri))
            continue;
        ks_record_stats st;
        memset(&st, 0, sizeof st);
        ks_recorder_stats(c->rec, ri, &st, NULL);
        char reason[KS_ERROR_MESSAGE_MAX];
        ks_session_device_reason(c->session, d, reason, sizeof reason);
        if (k < sizeof msg)
            k += (size_t)snprintf(msg + k, sizeof msg - k, "%s%s stopped delivering frames after %llu captures (%s)",
                                  count ? "; " : "", ks_session_device_name(c->session, d),
                                  (unsigned long long)st.captures, reason[0] ? reason : "no reason given");
        silent[ri] = true;
        count++;
    }
    if (count)
        ks_error_set(err, KS_ENODEV, "%s; no frame for %.1f s, the recording stopped, every file is complete up to there",
                     msg, stall_ms / 1000.0);
    return count > 0;
}

static void fill_progress(run_ctx *c, ks_record_progress *p, const bool *alive)
{
    memset(p, 0, sizeof *p);
    p->device_count = c->rig->device_count;
    for (int i = 0; i < p->device_count; i++) {
        ks_record_stats st;
        if (ks_recorder_stats(c->rec, i, &st, NULL) != KS_OK)
            continue;
        p->captures[i] = st.captures;
        p->bytes[i] = st.bytes;
        p->rejected[i] = st.rejected;
        p->seconds[i] = st.captures ? (double)(st.last_ts_us - st.first_ts_us) / 1e6 : 0;
        p->running[i] = alive[i] && !reached_limits(c, i);
    }
}

/* Opens one recorder file per device of the session, with what each device reports. */
static ks_status open_recorder(run_ctx *c, const ks_device_config *configs, const char *dir, ks_error *err)
{
    const int n = c->rig->device_count;
    ks_record_device *rd = calloc((size_t)n, sizeof *rd);
    char **calib = calloc((size_t)n, sizeof *calib);
    char (*roles)[64] = calloc((size_t)n, sizeof *roles);
    ks_status st = KS_OK;
    if (!rd || !calib || !roles)
        st = ks_error_set(err, KS_ENOMEM, "out of memory starting the recording");
    if (st == KS_OK)
        ks_record_role_names(c->rig, roles);
    for (int i = 0; i < n && st == KS_OK; i++) {
        ks_device *dev = ks_session_device(c->session, c->sess_of[i]);
        const ks_device_info *info = ks_device_info_get(dev);
        snprintf(rd[i].serial, sizeof rd[i].serial, "%s", info->serial);
        snprintf(rd[i].role, sizeof rd[i].role, "%s", roles[i]);
        rd[i].config = configs[i];
        rd[i].color_fw = info->rgb;
        rd[i].depth_fw = info->depth;
        rd[i].has_firmware = true;
        rd[i].imu = c->rig->camera.imu;
        size_t len = 0;
        ks_error ce;
        if (ks_device_get_calibration_json(dev, &calib[i], &len, &ce) == KS_OK) {
            rd[i].calibration_json = calib[i];
            rd[i].calibration_len = len;
        }
    }
    ks_recorder_options ro = c->opts->recorder;
    if (!ro.rig_name[0])
        snprintf(ro.rig_name, sizeof ro.rig_name, "%s", c->rig->name);
    if (!ro.plan_digest[0])
        ks_record_plan_digest(c->rig, configs, ro.plan_digest);
    ks_record_rig_tags(c->rig, &ro);
    if (st == KS_OK)
        st = ks_recorder_open(dir, n, rd, &ro, &c->rec, err);
    for (int i = 0; calib && i < n; i++)
        free(calib[i]);
    free(calib);
    free(rd);
    free(roles);
    return st;
}

ks_status ks_record_run(ks_backend *backend, const ks_rig *rig, const ks_device_config *configs, const char *dir,
                        const ks_record_run_options *opts, ks_record_result *result, ks_error *err)
{
    if (!backend || !rig || !configs || !dir || !opts)
        return ks_error_set(err, KS_EINVAL, "ks_record_run: backend, rig, configurations, directory and options are required");
    const int n = rig->device_count;
    if (n < 1 || n > KS_RIG_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "the rig has %d devices; give it 1 to %d", n, KS_RIG_MAX_DEVICES);
    run_ctx *c = calloc(1, sizeof *c);
    ks_plan *plan = malloc(sizeof *plan);
    if (!c || !plan) {
        free(c);
        free(plan);
        return ks_error_set(err, KS_ENOMEM, "out of memory starting the recording");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->rig = rig;
    c->opts = opts;
    /* the session starts each device with plan->devices[i].config: give it ours */
    ks_error pe;
    (void)ks_plan_make(rig, NULL, plan, &pe);
    for (int i = 0; i < n; i++)
        plan->devices[i].config = configs[i];
    ks_session_options so;
    ks_session_options_init(&so);
    so.on_capture = on_capture;
    so.user = c;
    if (opts->first_frame_timeout_ms > 0)
        so.first_frame_timeout_ms = opts->first_frame_timeout_ms;
    if (opts->get_capture_timeout_ms > 0)
        so.capture_timeout_ms = opts->get_capture_timeout_ms;
    ks_status st = ks_session_open(rig, plan, backend, &so, &c->session, err);
    if (st == KS_OK && ks_session_device_count(c->session) != n)
        st = ks_error_set(err, KS_EINVAL, "the session runs %d of the rig's %d devices; record every device",
                          ks_session_device_count(c->session), n);
    if (st == KS_OK) {
        for (int i = 0; i < n; i++)
            c->sess_of[i] = -1;
        for (int d = 0; d < n; d++) {
            c->rig_of[d] = ks_session_rig_index(c->session, d);
            c->sess_of[c->rig_of[d]] = d;
        }
        st = open_recorder(c, configs, dir, err);
    }
    if (st == KS_OK) {
        st = ks_session_start(c->session, err);
        if (st != KS_OK) { /* the rig never ran: leave no files behind */
            ks_recorder_abort(c->rec);
            c->rec = NULL;
        }
    }
    ks_status end = KS_OK;
    ks_error end_err;
    ks_error_clear(&end_err);
    bool alive[KS_RIG_MAX_DEVICES];
    for (int i = 0; i < n; i++)
        alive[i] = true;
    bool silent[KS_RIG_MAX_DEVICES] = {false}; /* stopped delivering (the end names them) */
    bool interrupted = false;
    if (st == KS_OK) {
        if (rig->camera.imu) {
            for (int d = 0; d < n; d++) {
                ks_error ie;
                ks_device_start_imu(ks_session_device(c->session, d), &ie);
            }
            c->imu_on = 1;
        }
        const int pms = opts->progress_ms > 0 ? opts->progress_ms : 500;
        const int stall_ms = opts->stall_ms > 0 ? opts->stall_ms : KS_RECORD_STALL_MS;
        double next_progress = (ks_mono_s() * 1e3) + pms;
        bool stopping = false;
        for (;;) {
            ks_session_set set;
            ks_error ne;
            ks_status ns = ks_session_next(c->session, &set, 50, &ne);
            if (ns == KS_OK)
                ks_session_set_release(&set);
            else if (ns == KS_EEOF)
                break;
            if (ns != KS_OK && ns != KS_ETIMEOUT) {
                end = ns;
                end_err = ne;
                /* the session stops every device on a fault and names the one that failed
                 * ("NAME failed during capture: ...") */
                for (int d = 0; d < n; d++) {
                    const char *name = ks_session_device_name(c->session, d);
                    size_t len = strlen(name);
                    alive[c->rig_of[d]] = !(len && !strncmp(ne.message, name, len) &&
                                            !strncmp(ne.message + len, " failed", 7));
                }
                break;
            }
            ks_session_progress sp;
            ks_session_get_progress(c->session, &sp);
            for (int d = 0; d < n; d++)
                alive[c->rig_of[d]] = sp.alive[d];
            if (!stopping && end == KS_OK && stalled(c, &sp, stall_ms, silent, &end_err)) {
                /* a device that stopped delivering would hold the recording forever: end it,
                 * naming the device and the backend's reason; every file is still completed */
                end = KS_ENODEV;
                ks_session_request_stop(c->session);
                stopping = true;
            }
            if (!stopping) {
                bool all_done = true;
                for (int i = 0; i < n; i++)
                    if (alive[i] && !reached_limits(c, i))
                        all_done = false;
                if (opts->stop && *opts->stop)
                    interrupted = true;
                if (all_done || interrupted || c->failed) {
                    ks_session_request_stop(c->session);
                    stopping = true;
                }
            }
            if (opts->progress && (ks_mono_s() * 1e3) >= next_progress) {
                next_progress = (ks_mono_s() * 1e3) + pms;
                ks_record_progress p;
                fill_progress(c, &p, alive);
                opts->progress(&p, opts->progress_user);
            }
        }
        if (opts->progress) {
            ks_record_progress p;
            fill_progress(c, &p, alive);
            opts->progress(&p, opts->progress_user);
        }
    }
    if (c->session)
        ks_session_stop(c->session);
    bool any_silent = false;
    for (int i = 0; i < n; i++)
        any_silent = any_silent || silent[i];
    if (result) {
        memset(result, 0, sizeof *result);
        result->device_count = n;
        result->interrupted = interrupted;
        for (int i = 0; i < n && c->rec; i++) {
            snprintf(result->paths[i], sizeof result->paths[i], "%s", ks_recorder_path(c->rec, i));
            ks_recorder_stats(c->rec, i, &result->stats[i], NULL);
            result->device_status[i] = silent[i] ? KS_ENODEV
                                       : end != KS_OK && !alive[i] && !any_silent ? end
                                       : result->stats[i].failed ? KS_EIO : KS_OK;
        }
    }
    if (c->rec) {
        ks_error ce;
        ks_status cst = ks_recorder_close(c->rec, &ce);
        /* the first write failure is the cause; close then only repeats that a file failed */
        if (st == KS_OK && end == KS_OK && cst != KS_OK && !c->failed) {
            st = cst;
            if (err)
                *err = ce;
        }
    }
    /* the writers flush their last clusters on close: report the final sizes */
    for (int i = 0; result && i < result->device_count; i++) {
        struct stat sb;
        if (result->paths[i][0] && stat(result->paths[i], &sb) == 0)
            result->stats[i].bytes = (uint64_t)sb.st_size;
    }
    if (st == KS_OK && end != KS_OK) {
        st = end;
        if (err)
            *err = end_err;
    }
    if (st == KS_OK && c->failed) {
        st = c->fail_err.code;
        if (err)
            *err = c->fail_err;
    }
    ks_session_close(c->session);
    pthread_mutex_destroy(&c->mu);
    free(plan);
    free(c);
    return st;
}
