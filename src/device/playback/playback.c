/* The playback backend (kinsync/playback.h): one virtual device per recording.
 *
 * Design: every device owns one Matroska reader and takes its captures from
 * ks_mkv_reader_next_capture (the mkv layer groups color, depth and IR like the SDK playback);
 * streams the running configuration leaves off are dropped from each capture. The IMU has a
 * second reader of its own, opened by start_imu, so it can be read from another thread.
 *
 * Lockstep pacing lives in the backend context: a device that has formed its next capture
 * publishes its position (timestamp minus the file's first timestamp) and waits until it is no
 * more than a window ahead of every other streaming device's next (or last) position. The device
 * with the smallest next position can always go, so the rig never deadlocks; a waiting consumer's
 * timeout is honoured. */
#include "kinsync/playback.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/playback/playback_internal.h"
#include "util/monotime.h"

typedef struct pb_ctx pb_ctx;

typedef struct pb_dev {
    pb_ctx *ctx;
    int index;
    ks_mkv_reader *reader;       /* captures */
    ks_mkv_reader *imu_reader;   /* IMU samples, NULL until start_imu */
    pthread_mutex_t mu;          /* readers, pending, state */
    bool streaming, imu_on, eof;
    ks_status eof_status;        /* KS_EEOF, or the parse error that ended the stream */
    ks_error eof_err;
    ks_device_config cfg;
    ks_capture *pending;         /* formed, not yet served (lockstep/realtime wait) */
    int64_t pending_pos;
    ks_control_mode ctl_mode[KS_CONTROL_COUNT];
    int32_t ctl_value[KS_CONTROL_COUNT];
} pb_dev;

struct pb_ctx {
    int count;
    pb_file *files;
    ks_playback_options opts;
    pthread_mutex_t mu;          /* lockstep state below */
    pthread_cond_t cv;
    pb_dev **open;               /* per file, NULL if not open */
    int64_t *last_pos;           /* per file: position of the last served capture */
    int64_t *next_pos;           /* per file: position of the formed capture, INT64_MIN if none */
    bool *stream_on;             /* per file: streaming and not at EOF */
    bool realtime_started;
    struct timespec realtime_t0;
    int master;                  /* file index of the master recording, -1 */
    uint64_t start_at_us;        /* ks_playback_seek: where the next start_cameras begins */
};

/* ---- reading ---- */

static int frame_period_us(const pb_dev *d)
{
    return ks_frame_period_us(d->ctx->files[d->index].desc.fps);
}

/* Forms the next capture of the running configuration. KS_OK with *out set, or the status that
 * ended the stream (KS_EEOF, a parse error: d->eof is set). Called with d->mu held. */
static ks_status form_capture(pb_dev *d, ks_capture **out, int64_t *anchor_out)
{
    const bool color = d->cfg.color_resolution != KS_COLOR_OFF;
    const bool depth = d->cfg.depth_mode != KS_DEPTH_OFF && d->cfg.depth_mode != KS_DEPTH_PASSIVE_IR;
    const bool ir = d->cfg.depth_mode != KS_DEPTH_OFF;
    const int64_t dd = d->ctx->files[d->index].desc.depth_delay_us;
    for (;;) {
        if (d->eof)
            return d->eof_status;
        ks_capture *cap = NULL;
        ks_error e;
        ks_status st = ks_mkv_reader_next_capture(d->reader, &cap, &e);
        if (st != KS_OK) {
            d->eof = true;
            d->eof_status = st;
            d->eof_err = e;
            return st;
        }
        if (!color) {
            ks_image_release(cap->color);
            cap->color = NULL;
        }
        if (!depth) {
            ks_image_release(cap->depth);
            cap->depth = NULL;
        }
        if (!ir) {
            ks_image_release(cap->ir);
            cap->ir = NULL;
        }
        bool empty = !cap->color && !cap->depth && !cap->ir;
        bool partial = d->cfg.synchronized_images_only && (!cap->color || !(cap->depth || cap->ir));
        if (empty || partial) {
            ks_capture_release(cap);
            continue;
        }
        /* recordings keep no per-frame exposure: the recorded (or given) manual colour exposure
         * and the depth mode's exposure, so that timestamps convert to centres as for live frames */
        const pb_file *pf = &d->ctx->files[d->index];
        const ks_depth_mode_info *dmi = ks_depth_mode_get(pf->desc.depth_mode);
        int32_t cexp = pf->desc.color_exposure_us > 0 ? pf->desc.color_exposure_us : d->ctx->opts.color_exposure_us;
        ks_image *imgs[3] = {cap->color, cap->depth, cap->ir};
        for (int k = 0; k < 3; k++)
            if (imgs[k]) {
                imgs[k]->system_ts_ns = imgs[k]->device_ts_us * 1000u;
                if (!imgs[k]->exposure_us)
                    imgs[k]->exposure_us = k == 0 ? (uint64_t)(cexp > 0 ? cexp : 0)
                                                  : (dmi ? (uint64_t)dmi->exposure_us : 0);
            }
        *anchor_out = cap->color ? (int64_t)cap->color->device_ts_us
                                 : (int64_t)(cap->depth ? cap->depth->device_ts_us : cap->ir->device_ts_us) - dd;
        *out = cap;
        return KS_OK;
    }
}

static void ts_add_ms(struct timespec *ts, int32_t ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int64_t lockstep_window(const pb_ctx *c, const pb_dev *d)
{
    if (c->opts.lockstep_window_us)
        return c->opts.lockstep_window_us;
    return 2 * (int64_t)frame_period_us(d);
}

/* Called with c->mu held: may device i serve its pending capture now? */
static bool lockstep_may_go(const pb_ctx *c, const pb_dev *d)
{
    const int i = d->index;
    /* a subordinate sees no pulses before its master streams */
    if (c->files[i].desc.sync_mode == KS_SYNC_SUBORDINATE && c->master >= 0 && c->open[c->master] &&
        !c->stream_on[c->master] && c->last_pos[c->master] == INT64_MIN)
        return false;
    const int64_t win = lockstep_window(c, d);
    for (int j = 0; j < c->count; j++) {
        if (j == i || !c->stream_on[j])
            continue;
        int64_t other = c->next_pos[j] != INT64_MIN ? c->next_pos[j] : c->last_pos[j];
        if (other == INT64_MIN)
            other = 0;
        if (c->next_pos[i] > other + win)
            return false;
    }
    return true;
}

static int64_t elapsed_us(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000000 + (now.tv_nsec - t0->tv_nsec) / 1000;
}

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Called with c->mu held: may the pending capture be served now? *wake_ms: when to look again
 * (realtime), -1 for "when something changes". */
static bool may_go(pb_ctx *c, const pb_dev *d, int64_t *wake_us)
{
    *wake_us = -1;
    if (c->opts.pace == KS_PLAYBACK_REALTIME) {
        int64_t ahead = d->pending_pos - elapsed_us(&c->realtime_t0);
        if (ahead > 0)
            *wake_us = ahead;
        return ahead <= 0;
    }
    if (c->opts.pace == KS_PLAYBACK_LOCKSTEP)
        return lockstep_may_go(c, d);
    return true;
}

/* Waits until the pending capture may be served. KS_OK or KS_ETIMEOUT. */
static ks_status pace_wait(pb_dev *d, int32_t timeout_ms)
{
    pb_ctx *c = d->ctx;
    const struct timespec deadline = ks_mono_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    c->next_pos[d->index] = d->pending_pos;
    pthread_cond_broadcast(&c->cv);
    ks_status st = KS_OK;
    for (;;) {
        int64_t wake_us;
        if (may_go(c, d, &wake_us))
            break;
        if (timeout_ms == 0 || (timeout_ms > 0 && past(&deadline))) {
            st = KS_ETIMEOUT;
            break;
        }
        bool timed = timeout_ms > 0;
        struct timespec until = deadline;
        if (wake_us >= 0) {
            struct timespec wake;
            clock_gettime(CLOCK_MONOTONIC, &wake);
            ts_add_ms(&wake, (int32_t)(wake_us / 1000 + 1));
            if (!timed || wake.tv_sec < until.tv_sec || (wake.tv_sec == until.tv_sec && wake.tv_nsec < until.tv_nsec))
                until = wake;
            timed = true;
        }
        if (timed)
            pthread_cond_timedwait(&c->cv, &c->mu, &until);
        else
            pthread_cond_wait(&c->cv, &c->mu);
    }
    if (st == KS_OK) {
        c->last_pos[d->index] = d->pending_pos;
        c->next_pos[d->index] = INT64_MIN;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return st;
}

static void set_streaming(pb_dev *d, bool on)
{
    pb_ctx *c = d->ctx;
    pthread_mutex_lock(&c->mu);
    c->stream_on[d->index] = on;
    if (on) {
        c->last_pos[d->index] = INT64_MIN;
        if (c->opts.pace == KS_PLAYBACK_REALTIME && !c->realtime_started) {
            clock_gettime(CLOCK_MONOTONIC, &c->realtime_t0);
            /* real time from the position seeked to: the clock started that long ago */
            c->realtime_t0.tv_sec -= (time_t)(c->start_at_us / 1000000);
            c->realtime_t0.tv_nsec -= (long)(c->start_at_us % 1000000) * 1000;
            if (c->realtime_t0.tv_nsec < 0) {
                c->realtime_t0.tv_nsec += 1000000000L;
                c->realtime_t0.tv_sec--;
            }
            c->realtime_started = true;
        }
    }
    c->next_pos[d->index] = INT64_MIN;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ---- backend operations ---- */

static int pb_device_count(void *vctx)
{
    return ((pb_ctx *)vctx)->count;
}

static ks_status pb_open(void *vctx, int index, void **out, ks_error *err)
{
    pb_ctx *c = vctx;
    const pb_file *f = &c->files[index];
    pthread_mutex_lock(&c->mu);
    bool busy = c->open[index] != NULL;
    pthread_mutex_unlock(&c->mu);
    if (busy)
        return ks_error_set(err, KS_ESTATE, "recording %s (device %s) is already open; close it first", f->path,
                            f->serial);
    pb_dev *d = calloc(1, sizeof *d);
    if (!d)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening %s", f->path);
    d->ctx = c;
    d->index = index;
    ks_status st = ks_mkv_reader_open(f->path, &d->reader, err);
    if (st != KS_OK) {
        free(d);
        return st;
    }
    pthread_mutex_init(&d->mu, NULL);
    for (int k = 0; k < KS_CONTROL_COUNT; k++)
        d->ctl_mode[k] = KS_CONTROL_MODE_AUTO;
    pthread_mutex_lock(&c->mu);
    c->open[index] = d;
    pthread_mutex_unlock(&c->mu);
    *out = d;
    return KS_OK;
}

static void drop_stream(pb_dev *d)
{
    ks_capture_release(d->pending);
    d->pending = NULL;
}

static void pb_close(void *vdev)
{
    pb_dev *d = vdev;
    pb_ctx *c = d->ctx;
    set_streaming(d, false);
    pthread_mutex_lock(&c->mu);
    c->open[d->index] = NULL;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    drop_stream(d);
    ks_mkv_reader_close(d->imu_reader);
    ks_mkv_reader_close(d->reader);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static ks_status pb_get_info(void *vdev, ks_device_info *info, ks_error *err)
{
    pb_dev *d = vdev;
    const pb_file *f = &d->ctx->files[d->index];
    memset(info, 0, sizeof *info);
    snprintf(info->serial, sizeof info->serial, "%s", f->serial);
    info->rgb = f->desc.color_fw;
    info->depth = f->desc.depth_fw;
    snprintf(info->backend, sizeof info->backend, "playback");
    return KS_OK;
}

static ks_status pb_get_calibration_json(void *vdev, char **json, size_t *len, ks_error *err)
{
    pb_dev *d = vdev;
    const pb_file *f = &d->ctx->files[d->index];
    if (!f->calibration)
        return ks_error_set(err, KS_ENOTFOUND,
                            "recording %s has no calibration.json attachment; record with kinsync record or "
                            "k4arecorder, which store it",
                            f->path);
    char *copy = malloc(f->calibration_len + 1);
    if (!copy)
        return ks_error_set(err, KS_ENOMEM, "out of memory copying the calibration of %s", f->path);
    memcpy(copy, f->calibration, f->calibration_len);
    copy[f->calibration_len] = '\0';
    *json = copy;
    if (len)
        *len = f->calibration_len;
    return KS_OK;
}

static ks_status pb_get_jacks(void *vdev, ks_jack_state *jacks, ks_error *err)
{
    pb_dev *d = vdev;
    *jacks = d->ctx->files[d->index].jacks;
    return KS_OK;
}

static ks_status pb_get_color_control(void *vdev, ks_color_control ctl, ks_control_mode *mode, int32_t *value,
                                      ks_error *err)
{
    pb_dev *d = vdev;
    if (ctl < 0 || ctl >= KS_CONTROL_COUNT)
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)ctl);
    pthread_mutex_lock(&d->mu);
    if (mode)
        *mode = d->ctl_mode[ctl];
    if (value)
        *value = d->ctl_value[ctl];
    pthread_mutex_unlock(&d->mu);
    return KS_OK;
}

static ks_status pb_set_color_control(void *vdev, ks_color_control ctl, ks_control_mode mode, int32_t value,
                                      ks_error *err)
{
    pb_dev *d = vdev;
    pthread_mutex_lock(&d->mu);
    d->ctl_mode[ctl] = mode;
    d->ctl_value[ctl] = value;
    pthread_mutex_unlock(&d->mu);
    return KS_OK;
}

static ks_status pb_get_color_control_caps(void *vdev, ks_color_control ctl, ks_control_caps *caps, ks_error *err)
{
    memset(caps, 0, sizeof *caps);
    if (ctl == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE) {
        caps->supports_auto = true;
        caps->min_value = ks_exposure_min_us();
        caps->max_value = ks_exposure_max_us(KS_POWERLINE_60HZ);
        caps->step_value = 1;
        caps->default_value = caps->min_value;
        caps->default_mode = KS_CONTROL_MODE_AUTO;
        return KS_OK;
    }
    if (ctl == KS_CONTROL_POWERLINE_FREQUENCY) {
        caps->min_value = KS_POWERLINE_50HZ;
        caps->max_value = KS_POWERLINE_60HZ;
        caps->step_value = 1;
        caps->default_value = KS_POWERLINE_60HZ;
        caps->default_mode = KS_CONTROL_MODE_MANUAL;
        return KS_OK;
    }
    return ks_error_set(err, KS_EUNSUPPORTED,
                        "color control %d has no capabilities on a recording; recordings keep the images, not "
                        "the controls",
                        (int)ctl);
}

void ks_playback_config_from_desc(const ks_mkv_desc *desc, ks_device_config *cfg)
{
    ks_device_config_init(cfg);
    cfg->color_format = desc->color_format;
    cfg->color_resolution = desc->color_resolution;
    cfg->depth_mode = desc->depth_mode;
    cfg->camera_fps = desc->fps;
    cfg->wired_sync_mode = desc->sync_mode;
    cfg->subordinate_delay_off_master_usec = desc->sync_mode == KS_SYNC_SUBORDINATE ? desc->subordinate_delay_us : 0;
    cfg->depth_delay_off_color_usec =
        desc->color_resolution != KS_COLOR_OFF && desc->depth_mode != KS_DEPTH_OFF ? desc->depth_delay_us : 0;
}

/* Checks a start configuration against the recording. */
static ks_status check_config(const pb_file *f, const ks_device_config *cfg, ks_error *err)
{
    ks_device_config rec;
    ks_playback_config_from_desc(&f->desc, &rec);
    const char *p = f->path;
    if (cfg->camera_fps != rec.camera_fps)
        return ks_error_set(err, KS_EINVAL, "recording %s was made at %d fps, not %d fps; start it at %d fps", p,
                            ks_fps_hz(rec.camera_fps), ks_fps_hz(cfg->camera_fps), ks_fps_hz(rec.camera_fps));
    if (cfg->color_resolution != KS_COLOR_OFF) {
        if (rec.color_resolution == KS_COLOR_OFF)
            return ks_error_set(err, KS_EINVAL, "recording %s has no color track; start it with color off", p);
        if (cfg->color_resolution != rec.color_resolution || cfg->color_format != rec.color_format)
            return ks_error_set(err, KS_EINVAL, "recording %s holds color %s %s, not %s %s; start it with %s %s", p,
                                ks_image_format_name(rec.color_format), ks_color_resolution_name(rec.color_resolution),
                                ks_image_format_name(cfg->color_format), ks_color_resolution_name(cfg->color_resolution),
                                ks_image_format_name(rec.color_format),
                                ks_color_resolution_name(rec.color_resolution));
    }
    if (cfg->depth_mode != KS_DEPTH_OFF && cfg->depth_mode != rec.depth_mode)
        return ks_error_set(err, KS_EINVAL, "recording %s holds depth mode %s, not %s; start it with %s (or depth off)",
                            p, ks_depth_mode_name(rec.depth_mode), ks_depth_mode_name(cfg->depth_mode),
                            ks_depth_mode_name(rec.depth_mode));
    if (cfg->wired_sync_mode != rec.wired_sync_mode)
        return ks_error_set(err, KS_EINVAL, "recording %s was made in %s sync mode, not %s; start it as %s", p,
                            ks_wired_sync_mode_name(rec.wired_sync_mode), ks_wired_sync_mode_name(cfg->wired_sync_mode),
                            ks_wired_sync_mode_name(rec.wired_sync_mode));
    if (cfg->subordinate_delay_off_master_usec != rec.subordinate_delay_off_master_usec)
        return ks_error_set(err, KS_EINVAL,
                            "recording %s was made with a subordinate delay of %u us, not %u us; use the recorded "
                            "delays (kinsync takes them from the files when given recordings)",
                            p, rec.subordinate_delay_off_master_usec, cfg->subordinate_delay_off_master_usec);
    if (cfg->color_resolution != KS_COLOR_OFF && cfg->depth_mode != KS_DEPTH_OFF &&
        cfg->depth_delay_off_color_usec != rec.depth_delay_off_color_usec)
        return ks_error_set(err, KS_EINVAL,
                            "recording %s was made with a depth delay of %d us, not %d us; use the recorded delays",
                            p, rec.depth_delay_off_color_usec, cfg->depth_delay_off_color_usec);
    return KS_OK;
}

static ks_status pb_start_cameras(void *vdev, const ks_device_config *cfg, ks_error *err)
{
    pb_dev *d = vdev;
    const pb_file *f = &d->ctx->files[d->index];
    ks_status st = check_config(f, cfg, err);
    if (st != KS_OK)
        return st;
    pthread_mutex_lock(&d->ctx->mu);
    uint64_t at = d->ctx->start_at_us;
    pthread_mutex_unlock(&d->ctx->mu);
    pthread_mutex_lock(&d->mu);
    drop_stream(d);
    /* Seek to half a frame period before the frame nearest the offset: between two frames, never
     * between one frame's colour and depth blocks (depth delays and subordinate delays are a few
     * hundred us), so the first capture read there is whole. */
    uint64_t target = 0;
    if (at) { /* one instant for every recording: the recordings start at different frames */
        uint64_t base = UINT64_MAX;
        for (int i = 0; i < d->ctx->count; i++)
            if (d->ctx->files[i].first_ts_us < base)
                base = d->ctx->files[i].first_ts_us;
        int64_t period = frame_period_us(d);
        int64_t k = period > 0 ? ((int64_t)at + period / 2) / period : 0;
        if (k > 0)
            target = base + (uint64_t)(k * period - period / 2);
    }
    st = ks_mkv_reader_seek(d->reader, target, err);
    if (st == KS_OK) {
        d->cfg = *cfg;
        d->streaming = true;
        d->eof = false;
    } else {
        ks_error_prefix(err, st, "recording %s", f->path);
    }
    pthread_mutex_unlock(&d->mu);
    if (st == KS_OK)
        set_streaming(d, true);
    return st;
}

static void pb_stop_cameras(void *vdev)
{
    pb_dev *d = vdev;
    set_streaming(d, false);
    pthread_mutex_lock(&d->mu);
    d->streaming = false;
    d->imu_on = false;
    ks_mkv_reader_close(d->imu_reader);
    d->imu_reader = NULL;
    drop_stream(d);
    pthread_mutex_unlock(&d->mu);
}

static ks_status end_status(pb_dev *d, ks_error *err)
{
    const pb_file *f = &d->ctx->files[d->index];
    if (d->eof_status == KS_EEOF)
        return ks_error_set(err, KS_EEOF, "recording %s (device %s) has no more frames", f->path, f->serial);
    if (err)
        *err = d->eof_err;
    return d->eof_status;
}

/* Lockstep: a recording that has ended reports its end only once no other device of the rig is
 * still streaming, so a consumer that stops the whole rig at the first end (as the session does
 * for a device that is gone) does not cut the other recordings short. false: timed out. */
static bool wait_rig_end(pb_dev *d, int32_t timeout_ms)
{
    pb_ctx *c = d->ctx;
    const struct timespec deadline = ks_mono_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    bool ok = true;
    for (;;) {
        bool others = false;
        for (int j = 0; j < c->count; j++)
            if (j != d->index && c->stream_on[j])
                others = true;
        if (!others)
            break;
        if (timeout_ms == 0 || (timeout_ms > 0 && past(&deadline))) {
            ok = false;
            break;
        }
        if (timeout_ms > 0)
            pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
        else
            pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static ks_status pb_get_capture(void *vdev, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    pb_dev *d = vdev;
    pthread_mutex_lock(&d->mu);
    if (!d->streaming) {
        pthread_mutex_unlock(&d->mu);
        return ks_error_set(err, KS_ESTATE, "device %s is not streaming", d->ctx->files[d->index].serial);
    }
    if (!d->pending) {
        int64_t anchor = 0;
        ks_status st = form_capture(d, &d->pending, &anchor);
        if (st != KS_OK) {
            st = end_status(d, err);
            pthread_mutex_unlock(&d->mu);
            set_streaming(d, false); /* at the end: no longer holds the others back */
            if (st == KS_EEOF && d->ctx->opts.pace == KS_PLAYBACK_LOCKSTEP && !wait_rig_end(d, timeout_ms))
                return ks_error_set(err, KS_ETIMEOUT,
                                    "device %s: its recording has ended, the other recordings have not yet",
                                    d->ctx->files[d->index].serial);
            return st;
        }
        d->pending_pos = anchor - (int64_t)d->ctx->files[d->index].first_ts_us;
    }
    pthread_mutex_unlock(&d->mu);
    ks_status st = pace_wait(d, timeout_ms);
    if (st != KS_OK)
        return ks_error_set(err, KS_ETIMEOUT, "device %s: no capture within %d ms (waiting for the other recordings)",
                            d->ctx->files[d->index].serial, (int)timeout_ms);
    pthread_mutex_lock(&d->mu);
    *out = d->pending;
    d->pending = NULL;
    pthread_mutex_unlock(&d->mu);
    if (!*out) /* stopped meanwhile */
        return ks_error_set(err, KS_ESTATE, "device %s was stopped", d->ctx->files[d->index].serial);
    return KS_OK;
}

/* Streams nobody reads are not decoded: the reader hands their frames over as header-only images
 * (ks_mkv_reader_set_decode; the track kinds' bits are the KS_STREAM_* bits). */
_Static_assert(KS_STREAM_COLOR == 1u << KS_MKV_COLOR && KS_STREAM_DEPTH == 1u << KS_MKV_DEPTH &&
                   KS_STREAM_IR == 1u << KS_MKV_IR,
               "stream bits are track-kind bits");
static void pb_set_streams(void *vdev, unsigned streams)
{
    pb_dev *d = vdev;
    pthread_mutex_lock(&d->mu);
    ks_mkv_reader_set_decode(d->reader, streams & KS_MKV_DECODE_ALL);
    pthread_mutex_unlock(&d->mu);
}

static ks_status pb_start_imu(void *vdev, ks_error *err)
{
    pb_dev *d = vdev;
    const pb_file *f = &d->ctx->files[d->index];
    if (!f->desc.imu)
        return ks_error_set(err, KS_EUNSUPPORTED, "recording %s has no IMU track; record with the IMU on", f->path);
    pthread_mutex_lock(&d->mu);
    ks_status st = KS_OK;
    if (!d->imu_reader)
        st = ks_mkv_reader_open(f->path, &d->imu_reader, err);
    if (st == KS_OK)
        d->imu_on = true;
    pthread_mutex_unlock(&d->mu);
    return st;
}

static void pb_stop_imu(void *vdev)
{
    pb_dev *d = vdev;
    pthread_mutex_lock(&d->mu);
    d->imu_on = false;
    ks_mkv_reader_close(d->imu_reader);
    d->imu_reader = NULL;
    pthread_mutex_unlock(&d->mu);
}

static ks_status pb_get_imu_sample(void *vdev, ks_imu_sample *out, int32_t timeout_ms, ks_error *err)
{
    pb_dev *d = vdev;
    pthread_mutex_lock(&d->mu);
    ks_status st = d->imu_reader ? KS_OK : ks_error_set(err, KS_ESTATE, "the IMU is not running");
    while (st == KS_OK) {
        ks_mkv_item it;
        st = ks_mkv_reader_next(d->imu_reader, &it, err);
        if (st != KS_OK)
            break;
        ks_image_release(it.image);
        if (it.kind == KS_MKV_IMU && !it.raw) {
            *out = it.imu;
            break;
        }
    }
    if (st == KS_EEOF)
        st = ks_error_set(err, KS_EEOF, "recording %s (device %s) has no more IMU samples", d->ctx->files[d->index].path,
                          d->ctx->files[d->index].serial);
    pthread_mutex_unlock(&d->mu);
    return st;
}

static void pb_destroy(void *vctx)
{
    pb_ctx *c = vctx;
    for (int i = 0; i < c->count; i++)
        ks_playback_file_free(&c->files[i]);
    free(c->files);
    free(c->open);
    free(c->last_pos);
    free(c->next_pos);
    free(c->stream_on);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static int pb_usbfs_mb(void *ctx)
{
    (void)ctx;
    return 0; /* the recording hosts' limit is not recorded; this host's says nothing about them */
}

static const ks_backend_ops pb_ops = {
    .name = "playback",
    .caps = KS_BACKEND_CAP_VIRTUAL_TIME | KS_BACKEND_CAP_FINITE | KS_BACKEND_CAP_JACKS,
    .device_count = pb_device_count,
    .open = pb_open,
    .close = pb_close,
    .get_info = pb_get_info,
    .get_calibration_json = pb_get_calibration_json,
    .get_jacks = pb_get_jacks,
    .get_color_control = pb_get_color_control,
    .set_color_control = pb_set_color_control,
    .get_color_control_caps = pb_get_color_control_caps,
    .start_cameras = pb_start_cameras,
    .stop_cameras = pb_stop_cameras,
    .get_capture = pb_get_capture,
    .start_imu = pb_start_imu,
    .stop_imu = pb_stop_imu,
    .get_imu_sample = pb_get_imu_sample,
    .destroy = pb_destroy,
    .usbfs_mb = pb_usbfs_mb,
    .set_streams = pb_set_streams,
};

void ks_playback_options_init(ks_playback_options *o)
{
    memset(o, 0, sizeof *o);
    o->pace = KS_PLAYBACK_LOCKSTEP;
}

static pb_ctx *ctx_of(ks_backend *b)
{
    return ks_backend_context_if(b, &pb_ops);
}

const char *ks_playback_path(ks_backend *b, int index)
{
    pb_ctx *c = ctx_of(b);
    if (!c || index < 0 || index >= c->count)
        return NULL;
    return c->files[index].path;
}

ks_status ks_playback_seek(ks_backend *b, uint64_t offset_us, ks_error *err)
{
    pb_ctx *c = ctx_of(b);
    if (!c)
        return ks_error_set(err, KS_EINVAL, "not a playback backend: only recordings can be seeked");
    pthread_mutex_lock(&c->mu);
    c->start_at_us = offset_us;
    c->realtime_started = false; /* real-time pacing restarts from there at the next start */
    pthread_mutex_unlock(&c->mu);
    return KS_OK;
}

uint64_t ks_playback_first_ts_us(ks_backend *b)
{
    pb_ctx *c = ctx_of(b);
    uint64_t base = 0;
    for (int i = 0; c && i < c->count; i++)
        if (!i || c->files[i].first_ts_us < base)
            base = c->files[i].first_ts_us;
    return base;
}

ks_status ks_playback_recorded_config(ks_backend *b, int index, ks_device_config *cfg, ks_error *err)
{
    pb_ctx *c = ctx_of(b);
    if (!c || index < 0 || index >= c->count)
        return ks_error_set(err, KS_EINVAL, "no recording %d in this backend", index);
    ks_playback_config_from_desc(&c->files[index].desc, cfg);
    return KS_OK;
}

ks_status ks_backend_open_playback(const char *const *paths, int count, const ks_playback_options *opts,
                                   ks_backend **out, ks_error *err)
{
    if (!paths || !out || count < 1 || count > KS_PLAYBACK_MAX_FILES)
        return ks_error_set(err, KS_EINVAL, "give 1 to %d recordings to play back (got %d)", KS_PLAYBACK_MAX_FILES,
                            count);
    pb_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening recordings");
    pthread_mutex_init(&c->mu, NULL);
    ks_cond_init_monotonic(&c->cv);
    if (opts)
        c->opts = *opts;
    else
        ks_playback_options_init(&c->opts);
    c->files = calloc((size_t)count, sizeof *c->files);
    c->open = calloc((size_t)count, sizeof *c->open);
    c->last_pos = calloc((size_t)count, sizeof *c->last_pos);
    c->next_pos = calloc((size_t)count, sizeof *c->next_pos);
    c->stream_on = calloc((size_t)count, sizeof *c->stream_on);
    if (!c->files || !c->open || !c->last_pos || !c->next_pos || !c->stream_on) {
        pb_destroy(c);
        return ks_error_set(err, KS_ENOMEM, "out of memory opening recordings");
    }
    c->count = count;
    ks_status st = ks_playback_files_load(paths, count, c->files, err);
    if (st != KS_OK) {
        c->count = 0; /* files_load cleans up after itself */
        pb_destroy(c);
        return st;
    }
    c->master = -1;
    for (int i = 0; i < count; i++) {
        c->last_pos[i] = INT64_MIN;
        c->next_pos[i] = INT64_MIN;
        if (c->files[i].desc.sync_mode == KS_SYNC_MASTER && c->master < 0)
            c->master = i;
    }
    ks_backend *b = ks_backend_create(&pb_ops, c);
    if (!b) {
        pb_destroy(c);
        return ks_error_set(err, KS_ENOMEM, "out of memory opening recordings");
    }
    *out = b;
    return KS_OK;
}
