/* The libk4a backend against the libk4a test double (fake_k4a.c, a shared library with libk4a's
 * symbols). Expected values are the SDK's numbers written as literals here (k4atypes.h), never the
 * backend's own constants, so a wrong enum value or struct offset in k4a_abi.h fails a check. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k4a/fake_k4a.h"
#include "kinsync/device.h"
#include "kinsync/k4a.h"
#include "ks_test.h"

#if !defined(KS_FAKE_K4A) || !defined(KS_FAKE_K4A_ORBBEC)
#error "KS_FAKE_K4A (path of the test double) must be defined by tests/CMakeLists.txt"
#endif

static fake_k4a_state *S;

static const char calib_json[] = "{\"CalibrationInformation\":{\"Cameras\":[]}}";

static void reset(int devices)
{
    memset(S, 0, sizeof *S);
    S->device_count = devices;
    for (int i = 0; i < devices; i++) {
        fake_device *d = &S->devices[i];
        snprintf(d->serial, sizeof d->serial, "00%04d512912", 1000 + i);
        uint32_t v[4][3] = {{1, 6, 110}, {1, 6, 79}, {1, 6, 14}, {6109, 7, 0}};
        memcpy(d->versions, v, sizeof v);
        d->calibration = calib_json;
        d->jack_in = i > 0;
        d->jack_out = i == 0;
    }
    setenv(KS_K4A_LIBRARY_ENV, KS_FAKE_K4A, 1);
}

static ks_backend *open_backend(void)
{
    ks_backend *b = NULL;
    ks_error e;
    ks_error_clear(&e);
    ks_status st = ks_backend_open_k4a(&b, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    return b;
}

static int32_t rd32(int off)
{
    int32_t v;
    memcpy(&v, S->last_config + off, 4);
    return v;
}

static void test_missing_library(void)
{
    ks_backend *b = NULL;
    ks_error e;
    setenv(KS_K4A_LIBRARY_ENV, "/nonexistent/libk4a.so.1.4", 1);
    KS_CHECK_INT(ks_backend_open_k4a(&b, &e), KS_ENOTFOUND);
    KS_CHECK(b == NULL);
    KS_CHECK_CONTAINS(e.message, "libk4a 1.4 not found");
    KS_CHECK_CONTAINS(e.message, "/nonexistent/libk4a.so.1.4");
    KS_CHECK_CONTAINS(e.message, "k4a-tools");
    KS_CHECK_CONTAINS(e.message, "KINSYNC_K4A_LIBRARY");

    /* The system search: this machine has no libk4a unless someone installed it. */
    unsetenv(KS_K4A_LIBRARY_ENV);
    void *h = dlopen("libk4a.so.1.4", RTLD_LAZY);
    if (!h) {
        KS_CHECK_INT(ks_backend_open_k4a(&b, &e), KS_ENOTFOUND);
        KS_CHECK_CONTAINS(e.message, "libk4a 1.4 not found");
        KS_CHECK_CONTAINS(e.message, "libk4a.so.1.4");
        KS_CHECK_CONTAINS(e.message, "install the Azure Kinect SDK");
        char path[256];
        KS_CHECK_INT(ks_k4a_library_probe(path, sizeof path, &e), KS_ENOTFOUND);
    } else {
        dlclose(h);
    }

    /* A library that is not libk4a. */
    setenv(KS_K4A_LIBRARY_ENV, "libm.so.6", 1);
    KS_CHECK_INT(ks_backend_open_k4a(&b, &e), KS_EUNSUPPORTED);
    KS_CHECK_CONTAINS(e.message, "k4a_device_get_installed_count");
    KS_CHECK_CONTAINS(e.message, "libk4a 1.4");
}

static void test_probe(void)
{
    reset(0);
    char path[512];
    ks_error e;
    KS_CHECK_INT(ks_k4a_library_probe(path, sizeof path, &e), KS_OK);
    KS_CHECK_CONTAINS(path, "fake_k4a");
    /* Depth engine: override through the environment; missing file is a clear ENOTFOUND. */
    setenv("KINSYNC_DEPTHENGINE_LIBRARY", KS_FAKE_K4A, 1);
    KS_CHECK_INT(ks_k4a_depthengine_probe(path, path, sizeof path, &e), KS_OK);
    setenv("KINSYNC_DEPTHENGINE_LIBRARY", "/nonexistent/libdepthengine.so.2.0", 1);
    KS_CHECK_INT(ks_k4a_depthengine_probe(NULL, path, sizeof path, &e), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(e.message, "KINSYNC_DEPTHENGINE_LIBRARY");
    unsetenv("KINSYNC_DEPTHENGINE_LIBRARY");
    if (ks_k4a_depthengine_probe(NULL, path, sizeof path, &e) != KS_OK)
        KS_CHECK_CONTAINS(e.message, "libdepthengine.so.2.0");
}

static void test_enumerate_and_info(void)
{
    reset(3);
    ks_backend *b = open_backend();
    if (!b)
        return;
    KS_CHECK_STR(ks_backend_name(b), "k4a");
    KS_CHECK_CONTAINS(ks_k4a_backend_library(b), "fake_k4a");
    KS_CHECK_INT(ks_backend_device_count(b), 3);
    ks_device *d = NULL;
    ks_error e;
    KS_CHECK_INT(ks_device_open(b, 1, &d, &e), KS_OK);
    if (d) {
        const ks_device_info *info = ks_device_info_get(d);
        KS_CHECK_STR(info->serial, "001001512912");
        KS_CHECK_STR(info->backend, "k4a");
        KS_CHECK_INT(info->rgb.major, 1);
        KS_CHECK_INT(info->rgb.minor, 6);
        KS_CHECK_INT(info->rgb.iteration, 110);
        KS_CHECK_INT(info->depth.iteration, 79);
        KS_CHECK_INT(info->audio.iteration, 14);
        KS_CHECK_INT(info->depth_sensor.major, 6109);
        KS_CHECK_INT(info->depth_sensor.minor, 7);
        KS_CHECK(S->devices[1].is_open);
        ks_device_close(d);
        KS_CHECK(!S->devices[1].is_open);
        KS_CHECK_INT(S->devices[1].close_count, 1);
    }
    /* By serial: the generic layer opens each device and keeps the match. */
    KS_CHECK_INT(ks_device_open_by_serial(b, "001002512912", &d, &e), KS_OK);
    if (d) {
        KS_CHECK_STR(ks_device_info_get(d)->serial, "001002512912");
        ks_device_close(d);
    }
    KS_CHECK_INT(ks_device_open_by_serial(b, "999999999999", &d, &e), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(e.message, "001000512912");
    for (int i = 0; i < 3; i++)
        KS_CHECK(!S->devices[i].is_open);
    ks_backend_free(b);
}

static void test_open_failures(void)
{
    reset(2);
    ks_backend *b = open_backend();
    if (!b)
        return;
    ks_device *d = NULL;
    ks_error e;
    KS_CHECK(S->log_handler_set);
    KS_CHECK_INT(S->log_min_level, 1); /* K4A_LOG_LEVEL_ERROR */
    S->devices[0].open_fails = true;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "(libk4a says: fake: device is already open in another process)");
    KS_CHECK_CONTAINS(e.message, "device 0");
    KS_CHECK_CONTAINS(e.message, "k4aviewer");
    KS_CHECK_CONTAINS(e.message, "udev");
    S->devices[0].open_fails = false;
    S->devices[0].serial_fails = true;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "serial number");
    KS_CHECK(strstr(e.message, "libk4a says") == NULL); /* stale log lines are not attached */
    KS_CHECK(!S->devices[0].is_open); /* closed again after the failure */
    S->devices[0].serial_fails = false;
    S->devices[0].version_fails = true;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "firmware versions of device 001000512912");
    KS_CHECK(!S->devices[0].is_open);
    S->devices[0].version_fails = false;
    /* Too long a serial is refused, not truncated. */
    memset(S->devices[1].serial, 'A', 40);
    S->devices[1].serial[40] = '\0';
    KS_CHECK_INT(ks_device_open(b, 1, &d, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "serial number of 41 bytes");
    KS_CHECK_INT(ks_device_open(b, 5, &d, &e), KS_ENOTFOUND);
    ks_backend_free(b);
}

static ks_device *open0(ks_backend *b)
{
    ks_device *d = NULL;
    ks_error e;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_OK);
    return d;
}

static void test_calibration_and_jacks(void)
{
    reset(2);
    ks_backend *b = open_backend();
    ks_device *d = b ? open0(b) : NULL;
    if (!d) {
        ks_backend_free(b);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    ks_error e;
    KS_CHECK_INT(ks_device_get_calibration_json(d, &json, &len, &e), KS_OK);
    KS_CHECK_STR(json, calib_json);
    KS_CHECK_INT(len, strlen(calib_json));
    free(json);
    S->devices[0].calibration_fails = true;
    KS_CHECK_INT(ks_device_get_calibration_json(d, &json, &len, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "calibration of device 001000512912");

    ks_jack_state j;
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(j.supported && !j.sync_in && j.sync_out);
    S->devices[0].jack_in = true;
    S->devices[0].jack_out = false;
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(j.supported && j.sync_in && !j.sync_out);
    S->devices[0].jack_fails = true;
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(!j.supported);
    ks_device_close(d);
    ks_backend_free(b);
}

static void test_color_controls(void)
{
    reset(1);
    ks_backend *b = open_backend();
    ks_device *d = b ? open0(b) : NULL;
    if (!d) {
        ks_backend_free(b);
        return;
    }
    ks_error e;
    /* k4a_color_control_command_t values from k4atypes.h, in ks_color_control order. */
    static const int k4a_cmd[KS_CONTROL_COUNT] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int c = 0; c < KS_CONTROL_COUNT; c++) {
        KS_CHECK_INT(ks_device_set_color_control(d, (ks_color_control)c, KS_CONTROL_MODE_MANUAL, 100 + c, &e), KS_OK);
        KS_CHECK_INT(S->last_control_command, k4a_cmd[c]);
        KS_CHECK_INT(S->last_control_mode, 1); /* K4A_COLOR_CONTROL_MODE_MANUAL */
        KS_CHECK_INT(S->last_control_value, 100 + c);
        ks_control_caps caps;
        KS_CHECK_INT(ks_device_get_color_control_caps(d, (ks_color_control)c, &caps, &e), KS_OK);
        KS_CHECK_INT(S->last_caps_command, k4a_cmd[c]);
        KS_CHECK_INT(caps.min_value, k4a_cmd[c] * 10);
        KS_CHECK_INT(caps.max_value, k4a_cmd[c] * 10 + 100);
        KS_CHECK_INT(caps.step_value, k4a_cmd[c] + 1);
        KS_CHECK_INT(caps.default_value, k4a_cmd[c] * 10 + 5);
        KS_CHECK_INT(caps.supports_auto, c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE || c == KS_CONTROL_WHITEBALANCE);
        KS_CHECK_INT(caps.default_mode, caps.supports_auto ? KS_CONTROL_MODE_AUTO : KS_CONTROL_MODE_MANUAL);
    }
    KS_CHECK_INT(ks_device_set_color_control(d, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_AUTO, 0, &e),
                 KS_OK);
    KS_CHECK_INT(S->last_control_mode, 0); /* K4A_COLOR_CONTROL_MODE_AUTO */
    ks_control_mode mode = KS_CONTROL_MODE_MANUAL;
    int32_t value = -1;
    S->devices[0].control_mode[6] = 1;
    S->devices[0].control_value[6] = 4500;
    KS_CHECK_INT(ks_device_get_color_control(d, KS_CONTROL_WHITEBALANCE, &mode, &value, &e), KS_OK);
    KS_CHECK_INT(S->last_control_command, 6);
    KS_CHECK_INT(mode, KS_CONTROL_MODE_MANUAL);
    KS_CHECK_INT(value, 4500);
    KS_CHECK_INT(ks_device_get_color_control(d, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, &mode, &value, &e), KS_OK);
    KS_CHECK_INT(mode, KS_CONTROL_MODE_AUTO);

    /* Failures say which control and what to do. */
    S->devices[0].control_fails = true;
    KS_CHECK_INT(ks_device_set_color_control(d, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, 7, &e),
                 KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "manual exposure 7 us");
    KS_CHECK_CONTAINS(e.message, "exposure table");
    KS_CHECK_INT(ks_device_set_color_control(d, KS_CONTROL_POWERLINE_FREQUENCY, KS_CONTROL_MODE_MANUAL, 3, &e),
                 KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "1 (50 Hz) or 2 (60 Hz)");
    KS_CHECK_INT(ks_device_set_color_control(d, KS_CONTROL_GAIN, KS_CONTROL_MODE_MANUAL, 3, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "gain");
    KS_CHECK_INT(ks_device_get_color_control(d, KS_CONTROL_GAIN, &mode, &value, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "001000512912");
    ks_control_caps caps;
    KS_CHECK_INT(ks_device_get_color_control_caps(d, KS_CONTROL_BRIGHTNESS, &caps, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "brightness");
    ks_device_close(d);
    ks_backend_free(b);
}

/* Configuration bytes at the SDK's offsets: format 0, resolution 4, depth 8, fps 12, sync-only 16,
 * depth delay 20, sync mode 24, subordinate delay 28, indicator 32. */
static void test_start_config_layout(void)
{
    reset(2);
    ks_backend *b = open_backend();
    ks_device *d = b ? open0(b) : NULL;
    if (!d) {
        ks_backend_free(b);
        return;
    }
    ks_error e;
    ks_device_config cfg;
    ks_device_config_init(&cfg);
    cfg.color_format = KS_FORMAT_BGRA32;
    cfg.color_resolution = KS_COLOR_1080P;
    cfg.depth_mode = KS_DEPTH_WFOV_2X2BINNED;
    cfg.camera_fps = KS_FPS_15;
    cfg.synchronized_images_only = true;
    cfg.depth_delay_off_color_usec = -80;
    cfg.wired_sync_mode = KS_SYNC_MASTER;
    cfg.subordinate_delay_off_master_usec = 0;
    cfg.disable_streaming_indicator = true;
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    KS_CHECK_INT(rd32(0), 3);   /* K4A_IMAGE_FORMAT_COLOR_BGRA32 */
    KS_CHECK_INT(rd32(4), 2);   /* K4A_COLOR_RESOLUTION_1080P */
    KS_CHECK_INT(rd32(8), 3);   /* K4A_DEPTH_MODE_WFOV_2X2BINNED */
    KS_CHECK_INT(rd32(12), 1);  /* K4A_FRAMES_PER_SECOND_15 */
    KS_CHECK_INT(S->last_config[16], 1);
    KS_CHECK_INT(rd32(20), -80);
    KS_CHECK_INT(rd32(24), 1);  /* K4A_WIRED_SYNC_MODE_MASTER */
    KS_CHECK_INT(rd32(28), 0);
    KS_CHECK_INT(S->last_config[32], 1);
    ks_device_stop_cameras(d);
    KS_CHECK_INT(S->devices[0].stop_count, 1);
    ks_device_close(d);

    /* A subordinate with a delay (device 1 has a Sync In cable). */
    ks_device *d1 = NULL;
    KS_CHECK_INT(ks_device_open(b, 1, &d1, &e), KS_OK);
    if (d1) {
        ks_device_config_init(&cfg);
        cfg.color_format = KS_FORMAT_MJPG;
        cfg.color_resolution = KS_COLOR_720P;
        cfg.depth_mode = KS_DEPTH_NFOV_UNBINNED;
        cfg.camera_fps = KS_FPS_30;
        cfg.wired_sync_mode = KS_SYNC_SUBORDINATE;
        cfg.subordinate_delay_off_master_usec = 160;
        cfg.depth_delay_off_color_usec = 0;
        KS_CHECK_INT(ks_device_start_cameras(d1, &cfg, &e), KS_OK);
        KS_CHECK_INT(rd32(0), 0);   /* MJPG */
        KS_CHECK_INT(rd32(4), 1);   /* 720P */
        KS_CHECK_INT(rd32(8), 2);   /* NFOV_UNBINNED */
        KS_CHECK_INT(rd32(12), 2);  /* 30 fps */
        KS_CHECK_INT(S->last_config[16], 0);
        KS_CHECK_INT(rd32(24), 2);  /* SUBORDINATE */
        KS_CHECK_INT(rd32(28), 160);
        KS_CHECK_INT(S->last_config[32], 0);
        ks_device_close(d1);
        KS_CHECK_INT(S->devices[1].stop_count, 1); /* close stops the cameras */
    }

    /* Every depth mode, color resolution and format maps to the SDK's value. */
    d = open0(b);
    if (d) {
        static const ks_depth_mode dm[] = {KS_DEPTH_NFOV_2X2BINNED, KS_DEPTH_NFOV_UNBINNED, KS_DEPTH_WFOV_2X2BINNED,
                                           KS_DEPTH_WFOV_UNBINNED, KS_DEPTH_PASSIVE_IR};
        static const int dm_k4a[] = {1, 2, 3, 4, 5};
        for (int i = 0; i < 5; i++) {
            ks_device_config_init(&cfg);
            cfg.depth_mode = dm[i];
            cfg.camera_fps = KS_FPS_5;
            KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
            KS_CHECK_INT(rd32(8), dm_k4a[i]);
            KS_CHECK_INT(rd32(4), 0); /* color off */
            KS_CHECK_INT(rd32(12), 0); /* K4A_FRAMES_PER_SECOND_5 */
            KS_CHECK_INT(rd32(24), 0); /* STANDALONE */
            ks_device_stop_cameras(d);
        }
        static const ks_color_resolution cr[] = {KS_COLOR_720P,  KS_COLOR_1080P, KS_COLOR_1440P,
                                                 KS_COLOR_1536P, KS_COLOR_2160P, KS_COLOR_3072P};
        for (int i = 0; i < 6; i++) {
            ks_device_config_init(&cfg);
            cfg.color_resolution = cr[i];
            cfg.color_format = KS_FORMAT_MJPG;
            cfg.camera_fps = KS_FPS_15;
            KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
            KS_CHECK_INT(rd32(4), i + 1);
            KS_CHECK_INT(rd32(8), 0);
            ks_device_stop_cameras(d);
        }
        static const ks_image_format fm[] = {KS_FORMAT_MJPG, KS_FORMAT_NV12, KS_FORMAT_YUY2, KS_FORMAT_BGRA32};
        for (int i = 0; i < 4; i++) {
            ks_device_config_init(&cfg);
            cfg.color_resolution = KS_COLOR_720P;
            cfg.color_format = fm[i];
            KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
            KS_CHECK_INT(rd32(0), i);
            ks_device_stop_cameras(d);
        }
        /* Failures: the role decides the advice. */
        S->devices[0].start_fails = true;
        ks_device_config_init(&cfg);
        cfg.color_resolution = KS_COLOR_720P;
        cfg.depth_mode = KS_DEPTH_NFOV_UNBINNED;
        KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_EIO);
        KS_CHECK_CONTAINS(e.message, "001000512912");
        KS_CHECK_CONTAINS(e.message, "libdepthengine.so.2.0");
        KS_CHECK_CONTAINS(e.message, "kinsync doctor");
        KS_CHECK_CONTAINS(e.message, "libk4a says: fake: depth engine failed");
        KS_CHECK(!ks_device_is_streaming(d));
        S->devices[0].jack_out = true;
        cfg.wired_sync_mode = KS_SYNC_MASTER;
        KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_ESYNC);
        KS_CHECK_CONTAINS(e.message, "Sync Out");
        ks_device_close(d);
    }
    ks_backend_free(b);
}

static void script_capture(fake_capture_script *c, uint64_t ts)
{
    memset(c, 0, sizeof *c);
    c->color = (fake_image_script){true, 0, 1280, 720, 0, 4000, ts, ts * 1000 + 7, 8330, 4500, 200};
    c->depth = (fake_image_script){true, 4, 640, 576, 1280, 640 * 576 * 2, ts + 80, ts * 1000 + 9, 12800, 0, 0};
    c->ir = (fake_image_script){true, 5, 640, 576, 1280, 640 * 576 * 2, ts + 80, ts * 1000 + 9, 12800, 0, 0};
    c->temperature_c = 31.5f;
}

static void test_captures(void)
{
    reset(1);
    fake_device *fd = &S->devices[0];
    script_capture(&fd->captures[0], 1000000);
    fd->captures[1].wait_result = 2; /* timeout */
    script_capture(&fd->captures[2], 1033333);
    fd->captures[2].color.present = false; /* a depth-only capture */
    fd->captures[3].wait_result = 1; /* failed: unplugged */
    fd->capture_count = 4;

    ks_backend *b = open_backend();
    ks_device *d = b ? open0(b) : NULL;
    if (!d) {
        ks_backend_free(b);
        return;
    }
    ks_error e;
    ks_capture *c = NULL;
    KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_ESTATE); /* not started: generic layer */
    ks_device_config cfg;
    ks_device_config_init(&cfg);
    cfg.color_resolution = KS_COLOR_720P;
    cfg.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);

    KS_CHECK_INT(ks_device_get_capture(d, &c, 250, &e), KS_OK);
    KS_CHECK_INT(S->last_capture_timeout, 250);
    if (c) {
        KS_CHECK(c->color && c->depth && c->ir);
        KS_CHECK_NEAR(c->temperature_c, 31.5, 1e-6);
        if (c->color) {
            KS_CHECK_INT(c->color->format, KS_FORMAT_MJPG);
            KS_CHECK_INT(c->color->width, 1280);
            KS_CHECK_INT(c->color->height, 720);
            KS_CHECK_INT(c->color->stride, 0);
            KS_CHECK_INT(c->color->size, 4000);
            KS_CHECK_INT(c->color->device_ts_us, 1000000);
            KS_CHECK_INT(c->color->system_ts_ns, 1000000007ull);
            KS_CHECK_INT(c->color->exposure_us, 8330);
            KS_CHECK_INT(c->color->white_balance, 4500);
            KS_CHECK_INT(c->color->iso_speed, 200);
            KS_CHECK_INT(c->color->data[3], (uint8_t)(3 * 7 + 0)); /* the double's buffer, not a copy */
        }
        if (c->depth) {
            KS_CHECK_INT(c->depth->format, KS_FORMAT_DEPTH16);
            KS_CHECK_INT(c->depth->stride, 1280);
            KS_CHECK_INT(c->depth->size, 640 * 576 * 2);
            KS_CHECK_INT(c->depth->device_ts_us, 1000080);
            KS_CHECK_INT(c->depth->data[5], (uint8_t)(5 * 7 + 4));
        }
        if (c->ir)
            KS_CHECK_INT(c->ir->format, KS_FORMAT_IR16);
        KS_CHECK_INT(S->live_captures, 0); /* the backend released the k4a capture, images live on */
        KS_CHECK_INT(S->live_images, 3);
        ks_image *keep = ks_image_ref(c->depth);
        ks_capture_release(c);
        KS_CHECK_INT(S->live_images, 1);
        ks_image_release(keep);
        KS_CHECK_INT(S->live_images, 0);
        KS_CHECK_INT(S->image_releases, 3);
    }

    KS_CHECK_INT(ks_device_get_capture(d, &c, -1, &e), KS_ETIMEOUT);
    KS_CHECK_INT(S->last_capture_timeout, -1); /* K4A_WAIT_INFINITE */
    KS_CHECK_CONTAINS(e.message, "001000512912");
    KS_CHECK_CONTAINS(e.message, "master");

    KS_CHECK_INT(ks_device_get_capture(d, &c, 0, &e), KS_OK);
    if (c) {
        KS_CHECK(c->color == NULL);
        KS_CHECK(c->depth != NULL);
        /* Free the backend (and close the device) while the capture is alive: the library must
         * stay loaded until the last image goes. */
        ks_device_close(d);
        d = NULL;
        ks_backend_free(b);
        b = NULL;
        KS_CHECK_INT(S->live_images, 2);
        ks_capture_release(c);
        KS_CHECK_INT(S->live_images, 0);
    }
    if (!b) {
        b = open_backend();
        d = b ? open0(b) : NULL;
        if (d)
            KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    }
    if (d) {
        KS_CHECK_INT(ks_device_get_capture(d, &c, 10, &e), KS_ENODEV);
        KS_CHECK_CONTAINS(e.message, "unplugged");
        ks_device_close(d);
    }
    ks_backend_free(b);
}

static void test_imu(void)
{
    reset(1);
    fake_device *fd = &S->devices[0];
    fd->imu[0] = (fake_imu_script){0, 30.25f, {0.1f, -9.8f, 0.3f}, {0.01f, 0.02f, -0.03f}, 123456, 123460};
    fd->imu[1] = (fake_imu_script){2, 0, {0}, {0}, 0, 0};
    fd->imu[2] = (fake_imu_script){1, 0, {0}, {0}, 0, 0};
    fd->imu_count = 3;
    ks_backend *b = open_backend();
    ks_device *d = b ? open0(b) : NULL;
    if (!d) {
        ks_backend_free(b);
        return;
    }
    ks_error e;
    ks_device_config cfg;
    ks_device_config_init(&cfg);
    cfg.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    fd->imu_fails = true;
    KS_CHECK_INT(ks_device_start_imu(d, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "IMU");
    fd->imu_fails = false;
    KS_CHECK_INT(ks_device_start_imu(d, &e), KS_OK);
    ks_imu_sample s;
    KS_CHECK_INT(ks_device_get_imu_sample(d, &s, 50, &e), KS_OK);
    KS_CHECK_INT(S->last_imu_timeout, 50);
    KS_CHECK_NEAR(s.temperature_c, 30.25, 1e-6);
    KS_CHECK_NEAR(s.acc[1], -9.8, 1e-6);
    KS_CHECK_NEAR(s.acc[2], 0.3, 1e-6);
    KS_CHECK_NEAR(s.gyro[2], -0.03, 1e-6);
    KS_CHECK_INT(s.acc_ts_us, 123456);
    KS_CHECK_INT(s.gyro_ts_us, 123460);
    KS_CHECK_INT(ks_device_get_imu_sample(d, &s, 5, &e), KS_ETIMEOUT);
    KS_CHECK_INT(ks_device_get_imu_sample(d, &s, 5, &e), KS_ENODEV);
    ks_device_close(d); /* stops the IMU, then the cameras, then closes */
    KS_CHECK_INT(fd->imu_stop_count, 1);
    KS_CHECK_INT(fd->stop_count, 1);
    KS_CHECK_INT(fd->close_count, 1);
    ks_backend_free(b);
}

/* Orbbec's wrapper: jacks are reported as unknown even though its query "succeeds". */
static void test_orbbec_wrapper(void)
{
    void *h = dlopen(KS_FAKE_K4A_ORBBEC, RTLD_NOW | RTLD_LOCAL);
    KS_CHECK(h != NULL);
    if (!h)
        return;
    fake_k4a_state_fn get = NULL;
    *(void **)&get = dlsym(h, "fake_k4a_get_state");
    fake_k4a_state *saved = S;
    S = get();
    reset(1);
    S->devices[0].jack_in = true;
    setenv(KS_K4A_LIBRARY_ENV, KS_FAKE_K4A_ORBBEC, 1);
    ks_backend *b = open_backend();
    if (b) {
        KS_CHECK(ks_k4a_backend_is_orbbec(b));
        ks_device *d = open0(b);
        if (d) {
            ks_jack_state j;
            ks_error e;
            KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
            KS_CHECK(!j.supported);
            /* Unknown jacks do not block a subordinate start. */
            ks_device_config cfg;
            ks_device_config_init(&cfg);
            cfg.color_resolution = KS_COLOR_720P;
            cfg.wired_sync_mode = KS_SYNC_SUBORDINATE;
            KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
            ks_device_close(d);
        }
        ks_backend_free(b);
    }
    S = saved;
    reset(1);
    b = open_backend();
    if (b)
        KS_CHECK(!ks_k4a_backend_is_orbbec(b));
    ks_backend_free(b);
    dlclose(h);
}

int main(void)
{
    void *h = dlopen(KS_FAKE_K4A, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "cannot load the test double %s: %s\n", KS_FAKE_K4A, dlerror());
        return 1;
    }
    fake_k4a_state_fn get = NULL;
    *(void **)&get = dlsym(h, "fake_k4a_get_state");
    if (!get) {
        fprintf(stderr, "the test double has no fake_k4a_get_state\n");
        return 1;
    }
    S = get();
    KS_RUN(test_missing_library);
    KS_RUN(test_probe);
    KS_RUN(test_enumerate_and_info);
    KS_RUN(test_open_failures);
    KS_RUN(test_calibration_and_jacks);
    KS_RUN(test_color_controls);
    KS_RUN(test_start_config_layout);
    KS_RUN(test_captures);
    KS_RUN(test_imu);
    KS_RUN(test_orbbec_wrapper);
    return KS_TEST_END();
}
