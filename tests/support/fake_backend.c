/* fake_backend.c: see fake_backend.h. */
#define _POSIX_C_SOURCE 200809L
#include "fake_backend.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fake_world fake_world;

typedef struct fake_dev {
    fake_world *w;
    int index;
    bool open, streaming;
    ks_device_config cfg;
    uint64_t k;               /* next frame number */
    int delivered;
    ks_control_mode exp_mode;
    int32_t exposure, powerline;
} fake_dev;

struct fake_world {
    fake_config cfg;
    fake_dev dev[FAKE_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fake_counters counters;
    int start_counter;
};

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

void fake_config_init(fake_config *c, int n, const ks_rig *rig)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->rig = rig;
    c->timestamps = rig && rig->ts_convention == KS_TS_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE;
    for (int i = 0; i < n; i++)
        snprintf(c->dev[i].serial, sizeof c->dev[i].serial, "%s",
                 rig && i < rig->device_count ? rig->devices[i].serial : "SIM00000");
}

static int f_count(void *ctx)
{
    return ((fake_world *)ctx)->cfg.n;
}

static ks_status f_open(void *ctx, int index, void **out, ks_error *err)
{
    fake_world *w = ctx;
    fake_dev *d = &w->dev[index];
    if (d->open)
        return ks_error_set(err, KS_ESTATE, "fake device %d is already open", index);
    d->open = true;
    d->exp_mode = KS_CONTROL_MODE_AUTO;
    d->exposure = 15625;
    d->powerline = 2;
    *out = d;
    return KS_OK;
}

static void f_close(void *dev)
{
    ((fake_dev *)dev)->open = false;
}

static ks_status f_info(void *dev, ks_device_info *info, ks_error *err)
{
    (void)err;
    fake_dev *d = dev;
    const fake_script *s = &d->w->cfg.dev[d->index];
    memset(info, 0, sizeof *info);
    snprintf(info->serial, sizeof info->serial, "%s", s->serial);
    info->rgb = s->rgb.major ? s->rgb : (ks_version){1, 6, 110};
    info->depth = s->depth.major ? s->depth : (ks_version){1, 6, 79};
    snprintf(info->backend, sizeof info->backend, "fake");
    return KS_OK;
}

static ks_status f_jacks(void *dev, ks_jack_state *j, ks_error *err)
{
    (void)err;
    fake_dev *d = dev;
    const fake_script *s = &d->w->cfg.dev[d->index];
    memset(j, 0, sizeof *j);
    j->supported = !s->jacks_unsupported;
    const ks_rig *rig = d->w->cfg.rig;
    for (int c = 0; rig && c < rig->cable_count; c++) {
        if (rig->cables[c].to == d->index)
            j->sync_in = true;
        if (rig->cables[c].from == d->index)
            j->sync_out = true;
    }
    if (s->no_sync_in)
        j->sync_in = false;
    if (s->no_sync_out)
        j->sync_out = false;
    return KS_OK;
}

static ks_status f_get_ctrl(void *dev, ks_color_control c, ks_control_mode *mode, int32_t *value, ks_error *err)
{
    fake_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    ks_status st = KS_OK;
    if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE) {
        *mode = d->exp_mode;
        *value = d->exposure;
    } else if (c == KS_CONTROL_POWERLINE_FREQUENCY) {
        *mode = KS_CONTROL_MODE_MANUAL;
        *value = d->powerline;
    } else {
        st = ks_error_set(err, KS_EUNSUPPORTED, "fake: control %d not modelled", (int)c);
    }
    pthread_mutex_unlock(&d->w->mu);
    return st;
}

static ks_status f_set_ctrl(void *dev, ks_color_control c, ks_control_mode mode, int32_t value, ks_error *err)
{
    fake_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    ks_status st = KS_OK;
    if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE) {
        d->exp_mode = mode;
        if (mode == KS_CONTROL_MODE_MANUAL)
            d->exposure = ks_exposure_round_up(d->powerline == 1 ? KS_POWERLINE_50HZ : KS_POWERLINE_60HZ, value);
        d->w->counters.exposure_sets[d->index]++;
        if (d->streaming)
            d->w->counters.exposure_sets_streaming[d->index]++;
    } else if (c == KS_CONTROL_POWERLINE_FREQUENCY) {
        d->powerline = value;
    } else {
        st = ks_error_set(err, KS_EUNSUPPORTED, "fake: control %d not modelled", (int)c);
    }
    pthread_mutex_unlock(&d->w->mu);
    return st;
}

static ks_status f_start(void *dev, const ks_device_config *cfg, ks_error *err)
{
    (void)err;
    fake_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    d->cfg = *cfg;
    d->streaming = true;
    d->k = 0;
    d->w->counters.starts[d->index]++;
    d->w->counters.start_seq[d->index] = ++d->w->start_counter;
    pthread_mutex_unlock(&d->w->mu);
    return KS_OK;
}

static void f_stop(void *dev)
{
    fake_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    d->streaming = false;
    pthread_cond_broadcast(&d->w->cv);
    pthread_mutex_unlock(&d->w->mu);
}

static ks_status f_capture(void *dev, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    fake_dev *d = dev;
    fake_world *w = d->w;
    const fake_script *s = &w->cfg.dev[d->index];
    int pace = w->cfg.pace_us > 0 ? w->cfg.pace_us : 300;
    long wait_us = timeout_ms < 0 ? 20000 : (timeout_ms * 1000L < 20000 ? timeout_ms * 1000L : 20000);
    if (s->no_signal || (s->stall_after > 0 && d->delivered >= s->stall_after)) {
        nap_us(wait_us);
        return ks_error_set(err, KS_ETIMEOUT, "fake device %s: %s", s->serial,
                            s->no_signal ? "no sync pulses arrive at Sync In" : "stalled");
    }
    bool master_streams = false;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->cfg.n; i++)
        master_streams |= w->dev[i].streaming && w->dev[i].cfg.wired_sync_mode == KS_SYNC_MASTER;
    pthread_mutex_unlock(&w->mu);
    if (d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE && !master_streams) {
        nap_us(wait_us);
        return ks_error_set(err, KS_ETIMEOUT, "fake device %s: no sync pulses yet (the master is not streaming)",
                            s->serial);
    }
    if (s->disconnect_after > 0 && d->delivered >= s->disconnect_after)
        return ks_error_set(err, KS_ENODEV, "fake device %s was disconnected", s->serial);
    nap_us(pace);
    pthread_mutex_lock(&w->mu);
    /* lockstep like real time: no device gets more than 2 frames ahead of a live streaming one */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += wait_us * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (;;) {
        uint64_t lo = UINT64_MAX;
        for (int i = 0; i < w->cfg.n; i++) {
            const fake_dev *o = &w->dev[i];
            const fake_script *os = &w->cfg.dev[i];
            bool live = o->streaming && !os->no_signal && !(os->stall_after > 0 && o->delivered >= os->stall_after) &&
                        !(os->disconnect_after > 0 && o->delivered >= os->disconnect_after);
            if (live && o->k < lo)
                lo = o->k;
        }
        if (lo == UINT64_MAX || d->k <= lo + 2)
            break;
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) {
            pthread_mutex_unlock(&w->mu);
            return ks_error_set(err, KS_ETIMEOUT, "fake device %s: waiting for the others", s->serial);
        }
    }
    pthread_cond_broadcast(&w->cv);
    uint64_t k = d->k++;
    if (s->drop_every > 0)
        while ((int)(k % (uint64_t)s->drop_every) == s->drop_every - 1)
            k = d->k++;
    const double P = ks_frame_period_exact_us(d->cfg.camera_fps);
    bool sof = ks_ts_is_start_of_frame(w->cfg.timestamps, d->cfg.wired_sync_mode);
    double E = d->exp_mode == KS_CONTROL_MODE_MANUAL ? d->exposure : 10000 + 50.0 * (double)(k % 40);
    double sync = P * (double)(k + 1) + s->skew_us + s->skew_per_frame_us * (double)k;
    if (d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE)
        sync += ks_delay_effective_us(d->cfg.subordinate_delay_off_master_usec);
    const ks_depth_mode_info *m = ks_depth_mode_get(d->cfg.depth_mode);
    double dcenter = sync + ks_delay_effective_us(d->cfg.depth_delay_off_color_usec);
    d->delivered++;
    w->counters.frames[d->index]++;
    pthread_mutex_unlock(&w->mu);

    ks_capture *c = ks_capture_create();
    if (d->cfg.color_resolution != KS_COLOR_OFF) {
        c->color = ks_image_create(KS_FORMAT_BGRA32, 4, 4, 16, 0);
        memset(c->color->data, 128, c->color->size);
        c->color->exposure_us = (uint64_t)E;
        c->color->device_ts_us = (uint64_t)llround((sof ? sync - E / 2 : sync) + s->offset_us);
        c->color->system_ts_ns = (uint64_t)(1e12 + (sync + E / 2 + 3000) * 1000);
    }
    if (m) {
        c->depth = ks_image_create(KS_FORMAT_DEPTH16, 20, 50, 40, 0);
        uint16_t *px = (uint16_t *)c->depth->data;
        for (int i = 0; i < 1000; i++)
            px[i] = (uint16_t)(i * 7 % 1000 < s->depth_zero_permille ? 0 : 1500);
        c->depth->exposure_us = (uint64_t)m->exposure_us;
        c->depth->device_ts_us = (uint64_t)llround((sof ? dcenter - m->exposure_us / 2.0 : dcenter) + s->offset_us);
        c->depth->system_ts_ns = (uint64_t)(1e12 + (dcenter + 3000) * 1000);
    }
    *out = c;
    return KS_OK;
}

static void f_destroy(void *ctx)
{
    fake_world *w = ctx;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

static const ks_backend_ops fake_ops = {
    .name = "fake",
    .device_count = f_count,
    .open = f_open,
    .close = f_close,
    .get_info = f_info,
    .get_jacks = f_jacks,
    .get_color_control = f_get_ctrl,
    .set_color_control = f_set_ctrl,
    .start_cameras = f_start,
    .stop_cameras = f_stop,
    .get_capture = f_capture,
    .destroy = f_destroy,
};

ks_backend *fake_backend_create(const fake_config *c)
{
    fake_world *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cfg = *c;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    for (int i = 0; i < FAKE_MAX; i++) {
        w->dev[i].w = w;
        w->dev[i].index = i;
    }
    return ks_backend_create(&fake_ops, w);
}

void fake_backend_counters(ks_backend *b, fake_counters *out)
{
    fake_world *w = ks_backend_context(b);
    pthread_mutex_lock(&w->mu);
    *out = w->counters;
    pthread_mutex_unlock(&w->mu);
}
