/* The backend-independent half of the device interface (kinsync/device.h): argument checks, the
 * SDK's start rules, the jack rules, image and capture reference counts. Backends only do what is
 * specific to them, so every backend refuses the same configurations with the same message. */
#include "kinsync/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ks_backend {
    const ks_backend_ops *ops;
    void *ctx;
};

struct ks_device {
    ks_backend *backend;
    void *impl;
    ks_device_info info;
    bool streaming;
    bool imu_running;
    ks_device_config running;
};

/* ---- images and captures ---- */

static void free_owned(ks_image *img, void *ctx)
{
    (void)ctx;
    free(img->data);
}

ks_image *ks_image_create(ks_image_format fmt, int width, int height, int stride, size_t size)
{
    if (width < 0 || height < 0 || stride < 0)
        return NULL;
    size_t need = stride > 0 ? (size_t)stride * (size_t)height : size;
    uint8_t *data = malloc(need ? need : 1);
    if (!data)
        return NULL;
    ks_image *img = ks_image_wrap(fmt, width, height, stride, data, need, free_owned, NULL);
    if (!img)
        free(data);
    return img;
}

ks_image *ks_image_wrap(ks_image_format fmt, int width, int height, int stride, uint8_t *data,
                        size_t size, void (*destroy)(ks_image *, void *), void *ctx)
{
    ks_image *img = calloc(1, sizeof *img);
    if (!img)
        return NULL;
    img->format = fmt;
    img->width = width;
    img->height = height;
    img->stride = stride;
    img->data = data;
    img->size = size;
    img->refcount = 1;
    img->destroy = destroy;
    img->destroy_ctx = ctx;
    return img;
}

bool ks_image_is_header_only(const ks_image *img)
{
    return img && !img->data && !img->size;
}

ks_image *ks_image_ref(ks_image *img)
{
    if (img)
        __atomic_add_fetch(&img->refcount, 1, __ATOMIC_RELAXED);
    return img;
}

void ks_image_release(ks_image *img)
{
    if (!img || __atomic_sub_fetch(&img->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (img->destroy)
        img->destroy(img, img->destroy_ctx);
    free(img);
}

ks_capture *ks_capture_create(void)
{
    ks_capture *c = calloc(1, sizeof *c);
    if (c)
        c->refcount = 1;
    return c;
}

ks_capture *ks_capture_ref(ks_capture *c)
{
    if (c)
        __atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
    return c;
}

void ks_capture_release(ks_capture *c)
{
    if (!c || __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    ks_image_release(c->color);
    ks_image_release(c->depth);
    ks_image_release(c->ir);
    free(c);
}

/* ---- versions ---- */

void ks_version_format(const ks_version *v, char *buf, size_t n)
{
    snprintf(buf, n, "%u.%u.%u", v->major, v->minor, v->iteration);
}

bool ks_version_equal(const ks_version *a, const ks_version *b)
{
    return a->major == b->major && a->minor == b->minor && a->iteration == b->iteration;
}

/* ---- configuration rules ---- */

void ks_device_config_init(ks_device_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->color_format = KS_FORMAT_MJPG;
    cfg->color_resolution = KS_COLOR_OFF;
    cfg->depth_mode = KS_DEPTH_OFF;
    cfg->camera_fps = KS_FPS_30;
    cfg->wired_sync_mode = KS_SYNC_STANDALONE;
}

ks_status ks_device_config_check(const ks_device_config *cfg, ks_error *err)
{
    if (!cfg)
        return ks_error_set(err, KS_EINVAL, "no device configuration given");
    if (cfg->camera_fps < 0 || cfg->camera_fps >= KS_FPS_COUNT)
        return ks_error_set(err, KS_EINVAL, "camera fps value %d is not 5, 15 or 30 fps", (int)cfg->camera_fps);
    if (cfg->wired_sync_mode < 0 || cfg->wired_sync_mode >= KS_SYNC_MODE_COUNT)
        return ks_error_set(err, KS_EINVAL, "wired sync mode %d is not standalone, master or subordinate",
                            (int)cfg->wired_sync_mode);
    if (cfg->depth_mode < 0 || cfg->depth_mode >= KS_DEPTH_MODE_COUNT)
        return ks_error_set(err, KS_EINVAL, "depth mode %d is unknown", (int)cfg->depth_mode);
    if (cfg->color_resolution < 0 || cfg->color_resolution >= KS_COLOR_RESOLUTION_COUNT)
        return ks_error_set(err, KS_EINVAL, "color resolution %d is unknown", (int)cfg->color_resolution);

    const int hz = ks_fps_hz(cfg->camera_fps);
    const int period = ks_frame_period_us(cfg->camera_fps);
    const ks_color_resolution_info *color = ks_color_resolution_get(cfg->color_resolution);
    const ks_depth_mode_info *depth = ks_depth_mode_get(cfg->depth_mode);

    if (!color && !depth)
        return ks_error_set(err, KS_EINVAL,
                            "both cameras are off; turn on the color camera, the depth camera or both");
    if (color) {
        if (cfg->color_format < 0 || cfg->color_format >= KS_FORMAT_COUNT ||
            !(color->format_mask & (1u << cfg->color_format)))
            return ks_error_set(err, KS_EINVAL,
                                "color format %s is not available at %s; use MJPG or BGRA32%s",
                                ks_image_format_name(cfg->color_format), color->name,
                                cfg->color_resolution == KS_COLOR_720P ? " (or NV12/YUY2 at 720P)" : "");
        if (!(color->fps_mask & (1u << cfg->camera_fps)))
            return ks_error_set(err, KS_EINVAL, "color %s does not run at %d fps; use 15 or 5 fps",
                                color->name, hz);
    }
    if (depth && !(depth->fps_mask & (1u << cfg->camera_fps)))
        return ks_error_set(err, KS_EINVAL, "depth mode %s does not run at %d fps; use 15 or 5 fps",
                            depth->name, hz);
    if (cfg->synchronized_images_only && !(color && depth))
        return ks_error_set(err, KS_EINVAL,
                            "synchronized_images_only needs both the color and the depth camera on");

    if (cfg->wired_sync_mode == KS_SYNC_SUBORDINATE) {
        if (cfg->subordinate_delay_off_master_usec > (uint32_t)period)
            return ks_error_set(err, KS_EINVAL,
                                "subordinate delay %u us exceeds the frame period of %d us at %d fps; "
                                "use 0..%d us",
                                cfg->subordinate_delay_off_master_usec, period, hz, period);
    } else if (cfg->subordinate_delay_off_master_usec != 0) {
        return ks_error_set(err, KS_EINVAL,
                            "subordinate delay %u us is only allowed in subordinate mode (this device is %s); "
                            "set it to 0",
                            cfg->subordinate_delay_off_master_usec, ks_wired_sync_mode_name(cfg->wired_sync_mode));
    }
    if (color && depth) {
        if (cfg->depth_delay_off_color_usec < -period || cfg->depth_delay_off_color_usec > period)
            return ks_error_set(err, KS_EINVAL,
                                "depth delay %d us is outside -%d..%d us (one frame period at %d fps)",
                                cfg->depth_delay_off_color_usec, period, period, hz);
    } else if (cfg->depth_delay_off_color_usec != 0) {
        return ks_error_set(err, KS_EINVAL,
                            "depth delay %d us needs both cameras on; set it to 0 or turn on the %s camera",
                            cfg->depth_delay_off_color_usec, color ? "depth" : "color");
    }
    if (cfg->wired_sync_mode == KS_SYNC_MASTER && !color)
        return ks_error_set(err, KS_EINVAL,
                            "a master must stream the color camera to drive the sync signal; turn color on");
    return KS_OK;
}

/* ---- backends and devices ---- */

ks_backend *ks_backend_create(const ks_backend_ops *ops, void *ctx)
{
    ks_backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ops = ops;
    b->ctx = ctx;
    return b;
}

void ks_backend_free(ks_backend *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->ctx);
    free(b);
}

const char *ks_backend_name(const ks_backend *b)
{
    return b ? b->ops->name : "none";
}

int ks_backend_usbfs_mb(ks_backend *b)
{
    return b && b->ops->usbfs_mb ? b->ops->usbfs_mb(b->ctx) : -1;
}

unsigned ks_backend_caps(const ks_backend *b)
{
    return b ? b->ops->caps : 0u;
}

ks_status ks_backend_laser_shared(ks_backend *b, const char *serial_a, const char *serial_b, ks_depth_mode mode,
                                  int *pixels, ks_error *err)
{
    if (pixels)
        *pixels = -1;
    if (!b || !pixels || !serial_a || !serial_b)
        return ks_error_set(err, KS_EINVAL, "no backend or device given");
    if (!b->ops->laser_shared)
        return ks_error_set(err, KS_EUNSUPPORTED, "backend %s does not know which lasers light which views",
                            b->ops->name);
    return b->ops->laser_shared(b->ctx, serial_a, serial_b, mode, pixels, err);
}

void *ks_backend_context_if(ks_backend *b, const ks_backend_ops *ops)
{
    return b && ops && b->ops == ops ? b->ctx : NULL;
}

void *ks_backend_context(ks_backend *b)
{
    return b ? b->ctx : NULL;
}

int ks_backend_device_count(ks_backend *b)
{
    return b && b->ops->device_count ? b->ops->device_count(b->ctx) : 0;
}

ks_status ks_device_open(ks_backend *b, int index, ks_device **out, ks_error *err)
{
    if (!b || !out)
        return ks_error_set(err, KS_EINVAL, "ks_device_open: no backend or output given");
    int n = ks_backend_device_count(b);
    if (index < 0 || index >= n)
        return ks_error_set(err, KS_ENOTFOUND, "no device %d on the %s backend (%d device%s present)", index,
                            b->ops->name, n, n == 1 ? "" : "s");
    ks_device *d = calloc(1, sizeof *d);
    if (!d)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening device %d", index);
    d->backend = b;
    ks_status st = b->ops->open(b->ctx, index, &d->impl, err);
    if (st == KS_OK)
        st = b->ops->get_info(d->impl, &d->info, err);
    if (st != KS_OK) {
        if (d->impl)
            b->ops->close(d->impl);
        free(d);
        return st;
    }
    if (!d->info.backend[0])
        snprintf(d->info.backend, sizeof d->info.backend, "%s", b->ops->name);
    *out = d;
    return KS_OK;
}

ks_status ks_device_open_by_serial(ks_backend *b, const char *serial, ks_device **out, ks_error *err)
{
    if (!b || !serial || !out)
        return ks_error_set(err, KS_EINVAL, "ks_device_open_by_serial: missing argument");
    int n = ks_backend_device_count(b);
    char present[256] = "";
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        ks_device *d = NULL;
        ks_error e;
        if (ks_device_open(b, i, &d, &e) != KS_OK)
            continue; /* busy or failing devices cannot be ours to match; keep looking */
        if (strcmp(d->info.serial, serial) == 0) {
            *out = d;
            return KS_OK;
        }
        if (used < sizeof present - 1)
            used += (size_t)snprintf(present + used, sizeof present - used, "%s%s", used ? ", " : "",
                                     d->info.serial);
        ks_device_close(d);
    }
    return ks_error_set(err, KS_ENOTFOUND,
                        "device %s not found on the %s backend (present: %s); check the serial in the rig "
                        "file and that the device is connected",
                        serial, b->ops->name, n ? present : "none");
}

void ks_device_close(ks_device *d)
{
    if (!d)
        return;
    ks_device_stop_imu(d);
    ks_device_stop_cameras(d);
    d->backend->ops->close(d->impl);
    free(d);
}

const ks_device_info *ks_device_info_get(const ks_device *d)
{
    return d ? &d->info : NULL;
}

#define NEED(op)                                                                                          \
    do {                                                                                                  \
        if (!d)                                                                                           \
            return ks_error_set(err, KS_EINVAL, "no device given");                                       \
        if (!d->backend->ops->op)                                                                         \
            return ks_error_set(err, KS_EUNSUPPORTED, "the %s backend cannot do " #op,                    \
                                d->backend->ops->name);                                                   \
    } while (0)

ks_status ks_device_get_calibration_json(ks_device *d, char **json, size_t *len, ks_error *err)
{
    NEED(get_calibration_json);
    return d->backend->ops->get_calibration_json(d->impl, json, len, err);
}

ks_status ks_device_get_jacks(ks_device *d, ks_jack_state *jacks, ks_error *err)
{
    NEED(get_jacks);
    return d->backend->ops->get_jacks(d->impl, jacks, err);
}

ks_status ks_device_get_color_control(ks_device *d, ks_color_control c, ks_control_mode *mode, int32_t *value,
                                      ks_error *err)
{
    NEED(get_color_control);
    return d->backend->ops->get_color_control(d->impl, c, mode, value, err);
}

ks_status ks_device_set_color_control(ks_device *d, ks_color_control c, ks_control_mode mode, int32_t value,
                                      ks_error *err)
{
    NEED(set_color_control);
    if (c < 0 || c >= KS_CONTROL_COUNT)
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    return d->backend->ops->set_color_control(d->impl, c, mode, value, err);
}

ks_status ks_device_get_color_control_caps(ks_device *d, ks_color_control c, ks_control_caps *caps, ks_error *err)
{
    NEED(get_color_control_caps);
    return d->backend->ops->get_color_control_caps(d->impl, c, caps, err);
}

ks_status ks_device_start_cameras(ks_device *d, const ks_device_config *cfg, ks_error *err)
{
    NEED(start_cameras);
    if (d->streaming)
        return ks_error_set(err, KS_ESTATE, "device %s is already streaming; stop it first", d->info.serial);
    ks_status st = ks_device_config_check(cfg, err);
    if (st != KS_OK)
        return ks_error_prefix(err, st, "device %s", d->info.serial);
    if (cfg->wired_sync_mode != KS_SYNC_STANDALONE && d->backend->ops->get_jacks) {
        ks_jack_state j;
        if (d->backend->ops->get_jacks(d->impl, &j, err) == KS_OK && j.supported) {
            if (cfg->wired_sync_mode == KS_SYNC_MASTER && !j.sync_out)
                return ks_error_set(err, KS_ESYNC,
                                    "device %s: master mode needs a cable in its Sync Out jack, none detected; "
                                    "plug the cable to the first subordinate into Sync Out",
                                    d->info.serial);
            if (cfg->wired_sync_mode == KS_SYNC_SUBORDINATE && !j.sync_in)
                return ks_error_set(err, KS_ESYNC,
                                    "device %s: subordinate mode needs a cable in its Sync In jack, none detected; "
                                    "plug the cable from the master (or previous device) into Sync In",
                                    d->info.serial);
        }
    }
    st = d->backend->ops->start_cameras(d->impl, cfg, err);
    if (st == KS_OK) {
        d->streaming = true;
        d->running = *cfg;
    }
    return st;
}

void ks_device_stop_cameras(ks_device *d)
{
    if (!d || !d->streaming)
        return;
    ks_device_stop_imu(d);
    if (d->backend->ops->stop_cameras)
        d->backend->ops->stop_cameras(d->impl);
    d->streaming = false;
}

bool ks_device_is_streaming(const ks_device *d)
{
    return d && d->streaming;
}

const ks_device_config *ks_device_running_config(const ks_device *d)
{
    return d && d->streaming ? &d->running : NULL;
}

ks_status ks_device_get_capture(ks_device *d, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    NEED(get_capture);
    if (!out)
        return ks_error_set(err, KS_EINVAL, "no output capture pointer given");
    *out = NULL;
    if (!d->streaming)
        return ks_error_set(err, KS_ESTATE, "device %s is not streaming; start the cameras first", d->info.serial);
    return d->backend->ops->get_capture(d->impl, out, timeout_ms, err);
}

void ks_device_set_streams(ks_device *d, unsigned streams)
{
    if (d && d->backend->ops->set_streams)
        d->backend->ops->set_streams(d->impl, streams ? streams & KS_STREAM_ALL : KS_STREAM_ALL);
}

ks_status ks_device_start_imu(ks_device *d, ks_error *err)
{
    NEED(start_imu);
    if (!d->streaming)
        return ks_error_set(err, KS_ESTATE, "device %s: the IMU needs a running camera; start the cameras first",
                            d->info.serial);
    if (d->imu_running)
        return KS_OK;
    ks_status st = d->backend->ops->start_imu(d->impl, err);
    if (st == KS_OK)
        d->imu_running = true;
    return st;
}

void ks_device_stop_imu(ks_device *d)
{
    if (!d || !d->imu_running)
        return;
    if (d->backend->ops->stop_imu)
        d->backend->ops->stop_imu(d->impl);
    d->imu_running = false;
}

ks_status ks_device_get_imu_sample(ks_device *d, ks_imu_sample *out, int32_t timeout_ms, ks_error *err)
{
    NEED(get_imu_sample);
    if (!d->imu_running)
        return ks_error_set(err, KS_ESTATE, "device %s: the IMU is not running; start it first", d->info.serial);
    return d->backend->ops->get_imu_sample(d->impl, out, timeout_ms, err);
}
