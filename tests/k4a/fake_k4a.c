/* fake_k4a.c: a libk4a 1.4 test double, built by the tests as a shared library and loaded by the
 * k4a backend through KINSYNC_K4A_LIBRARY. It exports the SDK's symbol names with the SDK's
 * parameter lists, serves the devices, captures, jacks and failures a test scripts in the state
 * (fake_k4a.h), and records what crosses the boundary. Not thread-safe: tests call it from one
 * thread. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_k4a.h"

static fake_k4a_state state;

/* Shell tests script the double through the environment, since the command loads it itself:
 *   FAKE_K4A_SCRIPT="SERIAL,RGB,DEPTH,AUDIO,SENSOR,JACKS[,busy];..."
 * versions as "1.6.110", JACKS one of "--" (none), "i-" (Sync In), "-o" (Sync Out), "io", "x"
 * (the jack query fails); "busy" makes k4a_device_open fail. */
static void parse_version(const char *s, uint32_t v[3])
{
    unsigned a = 0, b = 0, c = 0;
    if (sscanf(s, "%u.%u.%u", &a, &b, &c) >= 1) {
        v[0] = a;
        v[1] = b;
        v[2] = c;
    }
}

__attribute__((constructor)) static void load_script(void)
{
    const char *env = getenv("FAKE_K4A_SCRIPT");
    if (!env)
        return;
    char buf[2048];
    strncpy(buf, env, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    char *save_dev = NULL;
    for (char *dev = strtok_r(buf, ";", &save_dev); dev && state.device_count < FAKE_MAX_DEVICES;
         dev = strtok_r(NULL, ";", &save_dev)) {
        fake_device *d = &state.devices[state.device_count++];
        d->calibration = "{\"CalibrationInformation\":{}}";
        char *save = NULL;
        int field = 0;
        for (char *f = strtok_r(dev, ",", &save); f; f = strtok_r(NULL, ",", &save), field++) {
            if (field == 0)
                strncpy(d->serial, f, sizeof d->serial - 1);
            else if (field >= 1 && field <= 4)
                parse_version(f, d->versions[field - 1]);
            else if (field == 5) {
                d->jack_fails = !strcmp(f, "x");
                d->jack_in = f[0] == 'i';
                d->jack_out = f[0] && f[1] == 'o';
            } else if (field == 6 && !strcmp(f, "busy"))
                d->open_fails = true;
        }
    }
}

fake_k4a_state *fake_k4a_get_state(void);
fake_k4a_state *fake_k4a_get_state(void)
{
    return &state;
}

/* Handles: the SDK's handles point at a struct starting with a size_t. */
typedef struct fimage {
    size_t rsvd;
    int refs;
    int format, width, height, stride;
    uint8_t *buf;
    size_t size;
    uint64_t dts, sts, exposure;
    uint32_t wb, iso;
} fimage;

typedef struct fcapture {
    size_t rsvd;
    int refs;
    fimage *color, *depth, *ir;
    float temperature;
} fcapture;

typedef struct fdevice {
    size_t rsvd;
    int index;
} fdevice;

static fdevice handles[FAKE_MAX_DEVICES];

static fake_device *dev_of(void *h)
{
    fdevice *d = h;
    if (!d || d->index < 0 || d->index >= FAKE_MAX_DEVICES)
        return NULL;
    return &state.devices[d->index];
}

/* The SDK's prototypes, written from k4a.h with plain C types for its enums. */
uint32_t k4a_device_get_installed_count(void);
int k4a_device_open(uint32_t index, void **device_handle);
void k4a_device_close(void *device_handle);
int k4a_device_get_serialnum(void *device_handle, char *serial_number, size_t *serial_number_size);
int k4a_device_get_version(void *device_handle, void *version);
int k4a_device_get_raw_calibration(void *device_handle, uint8_t *data, size_t *data_size);
int k4a_device_get_sync_jack(void *device_handle, bool *sync_in, bool *sync_out);
int k4a_device_get_color_control_capabilities(void *device_handle, int command, bool *supports_auto,
                                              int32_t *min_value, int32_t *max_value, int32_t *step_value,
                                              int32_t *default_value, int *default_mode);
int k4a_device_get_color_control(void *device_handle, int command, int *mode, int32_t *value);
int k4a_device_set_color_control(void *device_handle, int command, int mode, int32_t value);
int k4a_device_start_cameras(void *device_handle, const void *config);
void k4a_device_stop_cameras(void *device_handle);
int k4a_device_get_capture(void *device_handle, void **capture_handle, int32_t timeout_in_ms);
int k4a_device_start_imu(void *device_handle);
void k4a_device_stop_imu(void *device_handle);
int k4a_device_get_imu_sample(void *device_handle, void *imu_sample, int32_t timeout_in_ms);
void k4a_capture_release(void *capture_handle);
void *k4a_capture_get_color_image(void *capture_handle);
void *k4a_capture_get_depth_image(void *capture_handle);
void *k4a_capture_get_ir_image(void *capture_handle);
float k4a_capture_get_temperature_c(void *capture_handle);
uint8_t *k4a_image_get_buffer(void *image_handle);
size_t k4a_image_get_size(void *image_handle);
int k4a_image_get_format(void *image_handle);
int k4a_image_get_width_pixels(void *image_handle);
int k4a_image_get_height_pixels(void *image_handle);
int k4a_image_get_stride_bytes(void *image_handle);
uint64_t k4a_image_get_device_timestamp_usec(void *image_handle);
uint64_t k4a_image_get_system_timestamp_nsec(void *image_handle);
uint64_t k4a_image_get_exposure_usec(void *image_handle);
uint32_t k4a_image_get_white_balance(void *image_handle);
uint32_t k4a_image_get_iso_speed(void *image_handle);
void k4a_image_release(void *image_handle);

int k4a_set_debug_message_handler(void (*cb)(void *, int, const char *, const int, const char *), void *ctx,
                                  int min_level);
int k4a_set_debug_message_handler(void (*cb)(void *, int, const char *, const int, const char *), void *ctx,
                                  int min_level)
{
    state.log_handler_set = true;
    state.log_min_level = min_level;
    state.log_cb = cb;
    state.log_ctx = ctx;
    return 0;
}

/* Logs an error the way libk4a does: through the registered handler at K4A_LOG_LEVEL_ERROR (1). */
static void log_error(const char *msg)
{
    if (state.log_cb && state.log_min_level >= 1)
        state.log_cb(state.log_ctx, 1, "fake_k4a.c", __LINE__, msg);
}

uint32_t k4a_device_get_installed_count(void)
{
    return (uint32_t)state.device_count;
}

int k4a_device_open(uint32_t index, void **device_handle)
{
    if (!device_handle || index >= (uint32_t)state.device_count || index >= FAKE_MAX_DEVICES)
        return 1;
    fake_device *d = &state.devices[index];
    if (d->open_fails || d->is_open) {
        log_error("fake: device is already open in another process");
        return 1;
    }
    d->is_open = true;
    d->open_count++;
    handles[index].index = (int)index;
    *device_handle = &handles[index];
    return 0;
}

void k4a_device_close(void *device_handle)
{
    fake_device *d = dev_of(device_handle);
    if (!d)
        return;
    d->is_open = false;
    d->close_count++;
}

int k4a_device_get_serialnum(void *device_handle, char *serial_number, size_t *serial_number_size)
{
    fake_device *d = dev_of(device_handle);
    if (!d || !serial_number_size || d->serial_fails)
        return 1;
    size_t need = strlen(d->serial) + 1;
    if (!serial_number || *serial_number_size < need) {
        *serial_number_size = need;
        return 2;
    }
    memcpy(serial_number, d->serial, need);
    *serial_number_size = need;
    return 0;
}

int k4a_device_get_version(void *device_handle, void *version)
{
    fake_device *d = dev_of(device_handle);
    if (!d || !version || d->version_fails)
        return 1;
    /* k4a_hardware_version_t: 4 x {u32 major, minor, iteration}, then two int enums: 56 bytes. */
    unsigned char *p = version;
    for (int v = 0; v < 4; v++)
        memcpy(p + v * 12, d->versions[v], 12);
    memcpy(p + 48, &d->firmware_build, 4);
    memcpy(p + 52, &d->firmware_signature, 4);
    return 0;
}

int k4a_device_get_raw_calibration(void *device_handle, uint8_t *data, size_t *data_size)
{
    fake_device *d = dev_of(device_handle);
    if (!d || !data_size || d->calibration_fails || !d->calibration)
        return 1;
    size_t need = strlen(d->calibration) + 1;
    if (!data || *data_size < need) {
        *data_size = need;
        return 2;
    }
    memcpy(data, d->calibration, need);
    *data_size = need;
    return 0;
}

int k4a_device_get_sync_jack(void *device_handle, bool *sync_in, bool *sync_out)
{
    fake_device *d = dev_of(device_handle);
    if (!d || d->jack_fails)
        return 1;
    if (sync_in)
        *sync_in = d->jack_in;
    if (sync_out)
        *sync_out = d->jack_out;
    return 0;
}

int k4a_device_get_color_control_capabilities(void *device_handle, int command, bool *supports_auto,
                                              int32_t *min_value, int32_t *max_value, int32_t *step_value,
                                              int32_t *default_value, int *default_mode)
{
    fake_device *d = dev_of(device_handle);
    state.last_caps_command = command;
    if (!d || d->control_fails || command < 0 || command > 9)
        return 1;
    /* A pattern per command so a test can tell which command the backend asked for. */
    bool au = command == 0 || command == 6;
    *supports_auto = au;
    *min_value = command * 10;
    *max_value = command * 10 + 100;
    *step_value = command + 1;
    *default_value = command * 10 + 5;
    *default_mode = au ? 0 : 1;
    return 0;
}

int k4a_device_get_color_control(void *device_handle, int command, int *mode, int32_t *value)
{
    fake_device *d = dev_of(device_handle);
    state.last_control_command = command;
    if (!d || d->control_fails || command < 0 || command > 9)
        return 1;
    *mode = d->control_mode[command];
    *value = d->control_value[command];
    return 0;
}

int k4a_device_set_color_control(void *device_handle, int command, int mode, int32_t value)
{
    fake_device *d = dev_of(device_handle);
    state.last_control_command = command;
    state.last_control_mode = mode;
    state.last_control_value = value;
    if (!d || d->control_fails || command < 0 || command > 9 || (mode != 0 && mode != 1))
        return 1;
    d->control_mode[command] = mode;
    d->control_value[command] = value;
    return 0;
}

int k4a_device_start_cameras(void *device_handle, const void *config)
{
    fake_device *d = dev_of(device_handle);
    if (!d || !config)
        return 1;
    memset(state.last_config, 0xEE, sizeof state.last_config);
    memcpy(state.last_config, config, 36); /* sizeof(k4a_device_configuration_t) */
    d->start_count++;
    if (d->start_fails) {
        log_error("fake: depth engine failed to initialize");
        return 1;
    }
    d->streaming = true;
    return 0;
}

void k4a_device_stop_cameras(void *device_handle)
{
    fake_device *d = dev_of(device_handle);
    if (!d)
        return;
    d->streaming = false;
    d->stop_count++;
}

static fimage *make_image(const fake_image_script *s)
{
    if (!s->present)
        return NULL;
    fimage *im = calloc(1, sizeof *im);
    im->refs = 1;
    im->format = s->format;
    im->width = s->width;
    im->height = s->height;
    im->stride = s->stride;
    im->size = s->size;
    im->buf = malloc(s->size ? s->size : 1);
    for (size_t i = 0; i < s->size; i++)
        im->buf[i] = (uint8_t)(i * 7 + (size_t)s->format);
    im->dts = s->device_ts_usec;
    im->sts = s->system_ts_nsec;
    im->exposure = s->exposure_usec;
    im->wb = s->white_balance;
    im->iso = s->iso_speed;
    state.live_images++;
    return im;
}

static void image_unref(fimage *im)
{
    if (!im)
        return;
    if (--im->refs == 0) {
        free(im->buf);
        free(im);
        state.live_images--;
    }
}

void k4a_image_release(void *image_handle)
{
    if (image_handle)
        state.image_releases++;
    image_unref(image_handle);
}

int k4a_device_get_capture(void *device_handle, void **capture_handle, int32_t timeout_in_ms)
{
    fake_device *d = dev_of(device_handle);
    state.last_capture_timeout = timeout_in_ms;
    if (!d || !capture_handle || !d->streaming)
        return 1;
    if (d->capture_next >= d->capture_count)
        return 2; /* nothing scripted: time out */
    const fake_capture_script *s = &d->captures[d->capture_next++];
    if (s->wait_result != 0)
        return s->wait_result;
    fcapture *c = calloc(1, sizeof *c);
    c->refs = 1;
    c->color = make_image(&s->color);
    c->depth = make_image(&s->depth);
    c->ir = make_image(&s->ir);
    c->temperature = s->temperature_c;
    state.live_captures++;
    *capture_handle = c;
    return 0;
}

void k4a_capture_release(void *capture_handle)
{
    fcapture *c = capture_handle;
    if (!c || --c->refs)
        return;
    image_unref(c->color);
    image_unref(c->depth);
    image_unref(c->ir);
    free(c);
    state.live_captures--;
}

static void *get_image(fimage *im)
{
    if (im)
        im->refs++; /* like the SDK: the caller owns a new reference */
    return im;
}

void *k4a_capture_get_color_image(void *capture_handle)
{
    return capture_handle ? get_image(((fcapture *)capture_handle)->color) : NULL;
}

void *k4a_capture_get_depth_image(void *capture_handle)
{
    return capture_handle ? get_image(((fcapture *)capture_handle)->depth) : NULL;
}

void *k4a_capture_get_ir_image(void *capture_handle)
{
    return capture_handle ? get_image(((fcapture *)capture_handle)->ir) : NULL;
}

float k4a_capture_get_temperature_c(void *capture_handle)
{
    return capture_handle ? ((fcapture *)capture_handle)->temperature : 0.0f;
}

uint8_t *k4a_image_get_buffer(void *h) { return h ? ((fimage *)h)->buf : NULL; }
size_t k4a_image_get_size(void *h) { return h ? ((fimage *)h)->size : 0; }
int k4a_image_get_format(void *h) { return h ? ((fimage *)h)->format : 8; }
int k4a_image_get_width_pixels(void *h) { return h ? ((fimage *)h)->width : 0; }
int k4a_image_get_height_pixels(void *h) { return h ? ((fimage *)h)->height : 0; }
int k4a_image_get_stride_bytes(void *h) { return h ? ((fimage *)h)->stride : 0; }
uint64_t k4a_image_get_device_timestamp_usec(void *h) { return h ? ((fimage *)h)->dts : 0; }
uint64_t k4a_image_get_system_timestamp_nsec(void *h) { return h ? ((fimage *)h)->sts : 0; }
uint64_t k4a_image_get_exposure_usec(void *h) { return h ? ((fimage *)h)->exposure : 0; }
uint32_t k4a_image_get_white_balance(void *h) { return h ? ((fimage *)h)->wb : 0; }
uint32_t k4a_image_get_iso_speed(void *h) { return h ? ((fimage *)h)->iso : 0; }

int k4a_device_start_imu(void *device_handle)
{
    fake_device *d = dev_of(device_handle);
    if (!d || !d->streaming || d->imu_fails || d->imu_running)
        return 1;
    d->imu_running = true;
    d->imu_start_count++;
    return 0;
}

void k4a_device_stop_imu(void *device_handle)
{
    fake_device *d = dev_of(device_handle);
    if (!d)
        return;
    d->imu_running = false;
    d->imu_stop_count++;
}

int k4a_device_get_imu_sample(void *device_handle, void *imu_sample, int32_t timeout_in_ms)
{
    fake_device *d = dev_of(device_handle);
    state.last_imu_timeout = timeout_in_ms;
    if (!d || !imu_sample || !d->imu_running)
        return 1;
    if (d->imu_next >= d->imu_count)
        return 2;
    const fake_imu_script *s = &d->imu[d->imu_next++];
    if (s->wait_result != 0)
        return s->wait_result;
    /* k4a_imu_sample_t: f32 temperature @0, f32[3] acc @4, u64 acc ts @16, f32[3] gyro @24, u64 gyro ts @40. */
    unsigned char *p = imu_sample;
    memset(p, 0, 48);
    memcpy(p + 0, &s->temperature, 4);
    memcpy(p + 4, s->acc, 12);
    memcpy(p + 16, &s->acc_ts, 8);
    memcpy(p + 24, s->gyro, 12);
    memcpy(p + 40, &s->gyro_ts, 8);
    return 0;
}

#ifdef FAKE_ORBBEC
/* Built a second time with FAKE_ORBBEC: stands for Orbbec's wrapper, which pulls in libOrbbecSDK. */
void *ob_create_context(void *error);
void *ob_create_context(void *error)
{
    (void)error;
    return NULL;
}
#endif
