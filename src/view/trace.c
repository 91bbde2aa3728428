/* A forwarding backend that reports each device's life cycle (kinsync/view.h): the view shows the
 * start sequence as the session performs it (subordinates armed first, the master last) without
 * the session knowing about the view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/view.h"

typedef struct trace {
    ks_backend *inner;
    ks_view_trace_fn fn;
    void *user;
    ks_backend_ops ops; /* trace_ops with the inner backend's caps (what the session asks of it) */
} trace;

typedef struct tdev {
    trace *t;
    ks_device *d;
    char serial[32];
} tdev;

static int t_count(void *ctx)
{
    return ks_backend_device_count(((trace *)ctx)->inner);
}

static ks_status t_open(void *ctx, int index, void **dev, ks_error *err)
{
    trace *t = ctx;
    tdev *td = calloc(1, sizeof *td);
    if (!td)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    ks_status st = ks_device_open(t->inner, index, &td->d, err);
    if (st != KS_OK) {
        free(td);
        return st;
    }
    td->t = t;
    snprintf(td->serial, sizeof td->serial, "%s", ks_device_info_get(td->d)->serial);
    *dev = td;
    return KS_OK;
}

static void t_close(void *dev)
{
    tdev *td = dev;
    if (td->t->fn)
        td->t->fn(td->serial, "close", NULL, td->t->user);
    ks_device_close(td->d);
    free(td);
}

static ks_status t_info(void *dev, ks_device_info *info, ks_error *err)
{
    (void)err;
    tdev *td = dev;
    *info = *ks_device_info_get(td->d);
    if (td->t->fn)
        td->t->fn(td->serial, "open", NULL, td->t->user);
    return KS_OK;
}

static ks_status t_calib(void *dev, char **json, size_t *len, ks_error *err)
{
    return ks_device_get_calibration_json(((tdev *)dev)->d, json, len, err);
}

static ks_status t_jacks(void *dev, ks_jack_state *j, ks_error *err)
{
    return ks_device_get_jacks(((tdev *)dev)->d, j, err);
}

static ks_status t_getc(void *dev, ks_color_control c, ks_control_mode *m, int32_t *v, ks_error *err)
{
    return ks_device_get_color_control(((tdev *)dev)->d, c, m, v, err);
}

static ks_status t_setc(void *dev, ks_color_control c, ks_control_mode m, int32_t v, ks_error *err)
{
    return ks_device_set_color_control(((tdev *)dev)->d, c, m, v, err);
}

static ks_status t_caps(void *dev, ks_color_control c, ks_control_caps *caps, ks_error *err)
{
    return ks_device_get_color_control_caps(((tdev *)dev)->d, c, caps, err);
}

static ks_status t_start(void *dev, const ks_device_config *cfg, ks_error *err)
{
    tdev *td = dev;
    ks_status st = ks_device_start_cameras(td->d, cfg, err);
    if (td->t->fn)
        td->t->fn(td->serial, st == KS_OK ? "start" : "start-failed", cfg, td->t->user);
    return st;
}

static void t_stop(void *dev)
{
    tdev *td = dev;
    ks_device_stop_cameras(td->d);
    if (td->t->fn)
        td->t->fn(td->serial, "stop", NULL, td->t->user);
}

static ks_status t_capture(void *dev, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    return ks_device_get_capture(((tdev *)dev)->d, out, timeout_ms, err);
}

static ks_status t_start_imu(void *dev, ks_error *err)
{
    return ks_device_start_imu(((tdev *)dev)->d, err);
}

static void t_stop_imu(void *dev)
{
    ks_device_stop_imu(((tdev *)dev)->d);
}

static ks_status t_imu(void *dev, ks_imu_sample *out, int32_t timeout_ms, ks_error *err)
{
    return ks_device_get_imu_sample(((tdev *)dev)->d, out, timeout_ms, err);
}

static void t_destroy(void *ctx)
{
    free(ctx); /* the inner backend stays the caller's */
}

static int t_usbfs(void *ctx)
{
    return ks_backend_usbfs_mb(((trace *)ctx)->inner);
}

static ks_status t_laser_shared(void *ctx, const char *serial_a, const char *serial_b, ks_depth_mode mode,
                                int *pixels, ks_error *err)
{
    return ks_backend_laser_shared(((trace *)ctx)->inner, serial_a, serial_b, mode, pixels, err);
}

static const ks_backend_ops trace_ops = {
    .name = "trace",
    .device_count = t_count,
    .open = t_open,
    .close = t_close,
    .get_info = t_info,
    .get_calibration_json = t_calib,
    .get_jacks = t_jacks,
    .get_color_control = t_getc,
    .set_color_control = t_setc,
    .get_color_control_caps = t_caps,
    .start_cameras = t_start,
    .stop_cameras = t_stop,
    .get_capture = t_capture,
    .start_imu = t_start_imu,
    .stop_imu = t_stop_imu,
    .get_imu_sample = t_imu,
    .destroy = t_destroy,
    .usbfs_mb = t_usbfs,
    .laser_shared = t_laser_shared,
};

ks_status ks_view_trace_backend(ks_backend *inner, ks_view_trace_fn fn, void *user, ks_backend **out, ks_error *err)
{
    *out = NULL;
    trace *t = calloc(1, sizeof *t);
    if (!t)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    t->inner = inner;
    t->fn = fn;
    t->user = user;
    /* the session decides by the caps (virtual time, a shared clock, a finite stream, jacks): the
     * forwarding backend is what the inner one is */
    t->ops = trace_ops;
    t->ops.caps = ks_backend_caps(inner);
    *out = ks_backend_create(&t->ops, t);
    if (!*out) {
        free(t);
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    }
    return KS_OK;
}
