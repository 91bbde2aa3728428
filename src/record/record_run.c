/* Recording a rig (ks_record_run, kinsync/record.h).
 *
 * This is a stand-in for the session module (orchestrated start, capture threads), which does not
 * exist on this branch yet: it follows the same rules (firmware equal,
 * exposure set once before streaming, subordinates started before the master, one capture thread
 * per device) and keeps its own state in one context, so switching to the session later changes
 * this file only. A capture thread never blocks on another device: each writes its own file. */
#include "kinsync/record.h"

#include "kinsync/plan.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- configurations and digest ---- */

static ks_role role_of(const ks_rig_device *d)
{
    return d->derived_role != KS_ROLE_AUTO ? d->derived_role : d->role;
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
            ks_error_prefix(err, "the rig %s cannot be planned (kinsync plan explains)", rig->name);
        plan_in = plan;
    }
    for (int i = 0; i < rig->device_count && st == KS_OK; i++) {
        configs[i] = plan_in->devices[i].config;
        configs[i].synchronized_images_only = rig->camera.synchronized_images_only;
        st = ks_device_config_check(&configs[i], err);
        if (st != KS_OK)
            ks_error_prefix(err, "device %s", rig->devices[i].serial);
    }
    free(plan);
    if (st == KS_OK && digest)
        ks_record_plan_digest(rig, configs, digest);
    return st;
}

/* ---- the run ---- */

typedef struct run_dev {
    struct run_ctx *ctx;
    int index;
    ks_device *dev;
    pthread_t thread;
    bool thread_started;
    volatile int done;           /* the thread has ended */
    ks_status end;               /* how */
    ks_error end_err;
    volatile int got_first;
    struct timespec started;
} run_dev;

typedef struct run_ctx {
    const ks_rig *rig;
    ks_recorder *rec;
    const ks_record_run_options *opts;
    volatile int stop_all;
    bool imu;
    run_dev devs[KS_RIG_MAX_DEVICES];
} run_ctx;

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static bool device_reached_limits(run_ctx *c, int i)
{
    ks_record_stats st;
    if (ks_recorder_stats(c->rec, i, &st, NULL) != KS_OK)
        return false;
    if (c->opts->frames && st.captures >= c->opts->frames)
        return true;
    if (c->opts->seconds > 0 && st.captures &&
        (double)(st.last_ts_us - st.first_ts_us) >= c->opts->seconds * 1e6 - ks_frame_period_us(c->rig->camera.fps) / 2)
        return true;
    return false;
}

static void *capture_main(void *p)
{
    run_dev *d = p;
    run_ctx *c = d->ctx;
    const int timeout = c->opts->get_capture_timeout_ms > 0 ? c->opts->get_capture_timeout_ms : 100;
    const int first_timeout = c->opts->first_frame_timeout_ms > 0 ? c->opts->first_frame_timeout_ms : 10000;
    ks_status end = KS_OK;
    ks_error e;
    ks_error_clear(&e);
    while (!c->stop_all && !(c->opts->stop && *c->opts->stop)) {
        if (device_reached_limits(c, d->index))
            break;
        ks_capture *cap = NULL;
        ks_status st = ks_device_get_capture(d->dev, &cap, timeout, &e);
        if (st == KS_ETIMEOUT) {
            if (!d->got_first && ms_since(&d->started) > first_timeout) {
                end = ks_error_set(&e, KS_ETIMEOUT,
                                   "device %s (%s) delivered no frame within %d ms; check in order: the sync cable "
                                   "into its Sync In, the jack, that the master streams color, the trigger",
                                   c->rig->devices[d->index].serial, c->rig->devices[d->index].name, first_timeout);
                break;
            }
            continue;
        }
        if (st != KS_OK) {
            end = st;
            break;
        }
        d->got_first = 1;
        st = ks_recorder_add_capture(c->rec, d->index, cap, &e);
        ks_capture_release(cap);
        if (st != KS_OK) {
            end = st;
            break;
        }
        if (c->imu) {
            ks_imu_sample s;
            ks_error ie;
            while (ks_device_get_imu_sample(d->dev, &s, 0, &ie) == KS_OK)
                if (ks_recorder_add_imu(c->rec, d->index, &s, &ie) != KS_OK)
                    break;
        }
    }
    /* stopped (by the user, a limit elsewhere or another device's failure): keep what this device
     * has already delivered to the host, without waiting for more */
    while (end == KS_OK && !device_reached_limits(c, d->index)) {
        ks_capture *cap = NULL;
        ks_error de;
        if (ks_device_get_capture(d->dev, &cap, 0, &de) != KS_OK)
            break;
        ks_status st = ks_recorder_add_capture(c->rec, d->index, cap, &de);
        ks_capture_release(cap);
        if (st != KS_OK)
            break;
    }
    d->end = end;
    d->end_err = e;
    __atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void fill_progress(run_ctx *c, ks_record_progress *p)
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
        p->running[i] = c->devs[i].thread_started && !__atomic_load_n(&c->devs[i].done, __ATOMIC_ACQUIRE);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ks_status start_device(run_ctx *c, int i, const ks_device_config *cfg, ks_error *err)
{
    run_dev *d = &c->devs[i];
    ks_status st = ks_device_start_cameras(d->dev, cfg, err);
    if (st != KS_OK)
        return st;
    if (c->imu && (st = ks_device_start_imu(d->dev, err)) != KS_OK)
        return ks_error_prefix(err, "device %s", c->rig->devices[i].serial);
    return KS_OK;
}

static ks_status start_thread(run_ctx *c, int i, ks_error *err)
{
    run_dev *d = &c->devs[i];
    clock_gettime(CLOCK_MONOTONIC, &d->started);
    if (pthread_create(&d->thread, NULL, capture_main, d) != 0)
        return ks_error_set(err, KS_ENOMEM, "cannot start the capture thread of device %s", c->rig->devices[i].serial);
    d->thread_started = true;
    return KS_OK;
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
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "out of memory starting the recording");
    c->rig = rig;
    c->opts = opts;
    c->imu = rig->camera.imu;
    ks_status st = KS_OK;
    ks_record_device *rd = calloc((size_t)n, sizeof *rd);
    char **calib = calloc((size_t)n, sizeof *calib);
    char (*roles)[64] = calloc((size_t)n, sizeof *roles);
    if (!rd || !calib || !roles)
        st = ks_error_set(err, KS_ENOMEM, "out of memory starting the recording");
    if (st == KS_OK)
        ks_record_role_names(rig, roles);
    /* open every device by serial and read what goes into the files */
    for (int i = 0; i < n && st == KS_OK; i++) {
        c->devs[i].ctx = c;
        c->devs[i].index = i;
        st = ks_device_open_by_serial(backend, rig->devices[i].serial, &c->devs[i].dev, err);
        if (st != KS_OK)
            break;
        const ks_device_info *info = ks_device_info_get(c->devs[i].dev);
        snprintf(rd[i].serial, sizeof rd[i].serial, "%s", info->serial);
        snprintf(rd[i].role, sizeof rd[i].role, "%s", roles[i]);
        rd[i].config = configs[i];
        rd[i].color_fw = info->rgb;
        rd[i].depth_fw = info->depth;
        rd[i].has_firmware = true;
        rd[i].imu = c->imu;
        size_t len = 0;
        ks_error ce;
        if (ks_device_get_calibration_json(c->devs[i].dev, &calib[i], &len, &ce) == KS_OK) {
            rd[i].calibration_json = calib[i];
            rd[i].calibration_len = len;
        }
        if (i > 0) {
            const ks_device_info *i0 = ks_device_info_get(c->devs[0].dev);
            if (!ks_version_equal(&i0->rgb, &info->rgb) || !ks_version_equal(&i0->depth, &info->depth)) {
                char a[32], b[32];
                ks_version_format(&i0->rgb, a, sizeof a);
                ks_version_format(&info->rgb, b, sizeof b);
                st = ks_error_set(err, KS_EINVAL,
                                  "devices %s (color firmware %s) and %s (color firmware %s) run different firmware; "
                                  "update every device to the same firmware before recording",
                                  i0->serial, a, info->serial, b);
            }
        }
    }
    /* exposure and powerline once, never while streaming */
    for (int i = 0; i < n && st == KS_OK; i++) {
        ks_error ee;
        if (rig->exposure.manual) {
            ks_device_set_color_control(c->devs[i].dev, KS_CONTROL_POWERLINE_FREQUENCY, KS_CONTROL_MODE_MANUAL,
                                        (int32_t)rig->exposure.powerline, &ee);
            ks_device_set_color_control(c->devs[i].dev, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL,
                                        rig->exposure.exposure_us, &ee);
        }
    }
    ks_recorder_options ro = opts->recorder;
    if (!ro.rig_name[0])
        snprintf(ro.rig_name, sizeof ro.rig_name, "%s", rig->name);
    if (!ro.plan_digest[0])
        ks_record_plan_digest(rig, configs, ro.plan_digest);
    if (st == KS_OK)
        st = ks_recorder_open(dir, n, rd, &ro, &c->rec, err);
    /* subordinates first, standalone devices next, the master last */
    static const ks_wired_sync_mode order[3] = {KS_SYNC_SUBORDINATE, KS_SYNC_STANDALONE, KS_SYNC_MASTER};
    for (int o = 0; o < 3 && st == KS_OK; o++)
        for (int i = 0; i < n && st == KS_OK; i++)
            if (configs[i].wired_sync_mode == order[o])
                st = start_device(c, i, &configs[i], err);
    /* the capture threads start once every device runs: a device queues its first frames
     * meanwhile, and a simulator's virtual time does not run ahead while subordinates wait */
    for (int i = 0; i < n && st == KS_OK; i++)
        st = start_thread(c, i, err);
    const bool started = st == KS_OK;
    /* wait for the limits, a stop, or every device to end */
    if (st == KS_OK) {
        const int pms = opts->progress_ms > 0 ? opts->progress_ms : 500;
        int64_t since_progress = 0;
        for (;;) {
            int running = 0;
            bool failed = false;
            for (int i = 0; i < n; i++) {
                if (!__atomic_load_n(&c->devs[i].done, __ATOMIC_ACQUIRE))
                    running++;
                else if (c->devs[i].end != KS_OK && c->devs[i].end != KS_EEOF)
                    failed = true;
            }
            if (!running)
                break;
            if (failed)
                c->stop_all = 1; /* a device failed: stop the others, keep what they recorded */
            sleep_ms(20);
            since_progress += 20;
            if (opts->progress && since_progress >= pms) {
                since_progress = 0;
                ks_record_progress p;
                fill_progress(c, &p);
                opts->progress(&p, opts->progress_user);
            }
        }
        if (opts->progress) {
            ks_record_progress p;
            fill_progress(c, &p);
            opts->progress(&p, opts->progress_user);
        }
    }
    c->stop_all = 1;
    for (int i = 0; i < n; i++)
        if (c->devs[i].thread_started)
            pthread_join(c->devs[i].thread, NULL);
    /* stop the master first so no subordinate sees a half pulse train, then the others */
    for (int i = 0; i < n; i++)
        if (c->devs[i].dev && configs[i].wired_sync_mode == KS_SYNC_MASTER)
            ks_device_stop_cameras(c->devs[i].dev);
    for (int i = 0; i < n; i++)
        ks_device_close(c->devs[i].dev);
    if (result) {
        memset(result, 0, sizeof *result);
        result->device_count = n;
        result->interrupted = opts->stop && *opts->stop;
        for (int i = 0; i < n && c->rec; i++) {
            snprintf(result->paths[i], sizeof result->paths[i], "%s", ks_recorder_path(c->rec, i));
            ks_recorder_stats(c->rec, i, &result->stats[i], NULL);
            result->device_status[i] = c->devs[i].end;
        }
    }
    if (c->rec && !started) {
        ks_recorder_abort(c->rec); /* the rig never ran: leave no files behind */
        c->rec = NULL;
    }
    if (c->rec) {
        ks_error ce;
        ks_status cst = ks_recorder_close(c->rec, &ce);
        if (st == KS_OK && cst != KS_OK) {
            st = cst;
            if (err)
                *err = ce;
        }
    }
    /* a device that failed (not a plain end of stream) fails the run, after every file is closed */
    for (int i = 0; i < n && st == KS_OK; i++)
        if (c->devs[i].end != KS_OK && c->devs[i].end != KS_EEOF) {
            st = c->devs[i].end;
            if (err)
                *err = c->devs[i].end_err;
        }
    for (int i = 0; calib && i < n; i++)
        free(calib[i]);
    free(calib);
    free(rd);
    free(roles);
    free(c);
    return st;
}
