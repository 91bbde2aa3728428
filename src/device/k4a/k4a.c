/* The libk4a backend (kinsync/k4a.h): libk4a 1.4 opened with dlopen and called through the ABI
 * declared in k4a_abi.h. Every enum crosses the boundary through an explicit switch (never a cast),
 * every k4a failure becomes a ks_error that says what to do. */
#define _GNU_SOURCE /* dladdr */
#include "kinsync/k4a.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/k4a/k4a_abi.h"

/* ---- the loaded library ---- */

typedef struct k4a_lib {
    void *handle;
    char path[PATH_MAX];
    int refcount; /* the backend and every image still wrapping a k4a image */
    bool orbbec;  /* Orbbec's K4A wrapper (over libOrbbecSDK), not Microsoft's libk4a */
    /* libk4a's own last error message (its logger would otherwise print to stdout and spoil
     * --json output); appended to our messages as "libk4a says: ...". */
    pthread_mutex_t log_lock;
    char last_log[256];

    kabi_device_get_installed_count_fn get_installed_count;
    kabi_device_open_fn device_open;
    kabi_device_close_fn device_close;
    kabi_device_get_serialnum_fn get_serialnum;
    kabi_device_get_version_fn get_version;
    kabi_device_get_raw_calibration_fn get_raw_calibration;
    kabi_device_get_sync_jack_fn get_sync_jack;                         /* optional */
    kabi_device_get_color_control_capabilities_fn get_control_caps;     /* optional (SDK >= 1.2) */
    kabi_device_get_color_control_fn get_color_control;
    kabi_device_set_color_control_fn set_color_control;
    kabi_device_start_cameras_fn start_cameras;
    kabi_device_stop_cameras_fn stop_cameras;
    kabi_device_get_capture_fn get_capture;
    kabi_device_start_imu_fn start_imu;
    kabi_device_stop_imu_fn stop_imu;
    kabi_device_get_imu_sample_fn get_imu_sample;
    kabi_capture_release_fn capture_release;
    kabi_capture_get_image_fn capture_get_color;
    kabi_capture_get_image_fn capture_get_depth;
    kabi_capture_get_image_fn capture_get_ir;
    kabi_capture_get_temperature_c_fn capture_get_temperature;
    kabi_image_get_buffer_fn image_get_buffer;
    kabi_image_get_size_fn image_get_size;
    kabi_image_get_format_fn image_get_format;
    kabi_image_get_int_fn image_get_width;
    kabi_image_get_int_fn image_get_height;
    kabi_image_get_int_fn image_get_stride;
    kabi_image_get_u64_fn image_get_device_ts;
    kabi_image_get_u64_fn image_get_system_ts;
    kabi_image_get_u64_fn image_get_exposure;
    kabi_image_get_u32_fn image_get_white_balance;
    kabi_image_get_u32_fn image_get_iso_speed;
    kabi_image_release_fn image_release;
} k4a_lib;

static const char *const k4a_sonames[] = {"libk4a.so.1.4", "libk4a.so.1.4.1", "libk4a.so"};

#define INSTALL_ADVICE                                                                                     \
    "install the Azure Kinect SDK (Ubuntu: add packages.microsoft.com and `apt install k4a-tools "         \
    "libk4a1.4`; for Orbbec Femto the OrbbecSDK-K4A-Wrapper, which installs libk4a.so.1.4) or set "       \
    KS_K4A_LIBRARY_ENV "=/path/to/libk4a.so.1.4"

static void lib_unref(k4a_lib *lib)
{
    if (!lib || __atomic_sub_fetch(&lib->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (lib->handle)
        dlclose(lib->handle);
    pthread_mutex_destroy(&lib->log_lock);
    free(lib);
}

static void on_k4a_log(void *context, int level, const char *file, const int line, const char *message)
{
    (void)level;
    (void)file;
    (void)line;
    k4a_lib *lib = context;
    pthread_mutex_lock(&lib->log_lock);
    snprintf(lib->last_log, sizeof lib->last_log, "%s", message ? message : "");
    pthread_mutex_unlock(&lib->log_lock);
}

static void log_clear(k4a_lib *lib)
{
    pthread_mutex_lock(&lib->log_lock);
    lib->last_log[0] = '\0';
    pthread_mutex_unlock(&lib->log_lock);
}

/* Appends "; libk4a says: ..." to err's message when libk4a logged something for the failure. */
static ks_status with_log(k4a_lib *lib, ks_status st, ks_error *err)
{
    char msg[sizeof lib->last_log];
    pthread_mutex_lock(&lib->log_lock);
    snprintf(msg, sizeof msg, "%s", lib->last_log);
    pthread_mutex_unlock(&lib->log_lock);
    if (err && msg[0]) {
        size_t used = strlen(err->message);
        if (used + 20 < sizeof err->message)
            snprintf(err->message + used, sizeof err->message - used, " (libk4a says: %s)", msg);
    }
    return st;
}

static void lib_ref(k4a_lib *lib)
{
    __atomic_add_fetch(&lib->refcount, 1, __ATOMIC_RELAXED);
}

/* dlopen the first candidate; writes the loaded name and returns the handle, or NULL with the
 * attempts described in err. */
static void *open_first(char *loaded, size_t n, ks_error *err)
{
    const char *env = getenv(KS_K4A_LIBRARY_ENV);
    if (env && env[0]) {
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            ks_error_set(err, KS_ENOTFOUND,
                         "libk4a 1.4 not found: %s=%s could not be loaded (%s); fix the path in %s or unset it "
                         "to search the system, and " INSTALL_ADVICE,
                         KS_K4A_LIBRARY_ENV, env, why ? why : "unknown error", KS_K4A_LIBRARY_ENV);
            return NULL;
        }
        snprintf(loaded, n, "%s", env);
        return h;
    }
    char last[256] = "";
    for (size_t i = 0; i < sizeof k4a_sonames / sizeof k4a_sonames[0]; i++) {
        void *h = dlopen(k4a_sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            snprintf(loaded, n, "%s", k4a_sonames[i]);
            return h;
        }
        const char *why = dlerror();
        if (why)
            snprintf(last, sizeof last, "%s", why);
    }
    ks_error_set(err, KS_ENOTFOUND,
                 "libk4a 1.4 not found (tried libk4a.so.1.4, libk4a.so.1.4.1, libk4a.so%s%s); " INSTALL_ADVICE,
                 last[0] ? "; last error: " : "", last);
    return NULL;
}

static void fill_loaded_path(k4a_lib *lib)
{
    /* Resolve the soname to a file path for messages and the depth engine search. */
    uint32_t (*any)(void) = NULL;
    *(void **)&any = dlsym(lib->handle, "k4a_device_get_installed_count");
    Dl_info info;
    if (any && dladdr(*(void **)&any, &info) && info.dli_fname && info.dli_fname[0])
        snprintf(lib->path, sizeof lib->path, "%s", info.dli_fname);
}

static ks_status lib_load(k4a_lib **out, ks_error *err)
{
    k4a_lib *lib = calloc(1, sizeof *lib);
    if (!lib)
        return ks_error_set(err, KS_ENOMEM, "out of memory loading libk4a");
    lib->refcount = 1;
    pthread_mutex_init(&lib->log_lock, NULL);
    lib->handle = open_first(lib->path, sizeof lib->path, err);
    if (!lib->handle) {
        pthread_mutex_destroy(&lib->log_lock);
        free(lib);
        return err ? err->code : KS_ENOTFOUND;
    }
    fill_loaded_path(lib);

#define SYM(field, name, required)                                                                         \
    do {                                                                                                   \
        *(void **)&lib->field = dlsym(lib->handle, name);                                                  \
        if (!lib->field && (required)) {                                                                   \
            ks_error_set(err, KS_EUNSUPPORTED,                                                             \
                         "%s is not a usable libk4a 1.4: it has no %s; install libk4a 1.4 (the 1.4 ABI) or "   \
                         "point " KS_K4A_LIBRARY_ENV " at one",                                             \
                         lib->path, name);                                                                 \
            lib_unref(lib);                                                                                \
            return KS_EUNSUPPORTED;                                                                        \
        }                                                                                                  \
    } while (0)

    SYM(get_installed_count, "k4a_device_get_installed_count", true);
    SYM(device_open, "k4a_device_open", true);
    SYM(device_close, "k4a_device_close", true);
    SYM(get_serialnum, "k4a_device_get_serialnum", true);
    SYM(get_version, "k4a_device_get_version", true);
    SYM(get_raw_calibration, "k4a_device_get_raw_calibration", true);
    SYM(get_sync_jack, "k4a_device_get_sync_jack", false);
    SYM(get_control_caps, "k4a_device_get_color_control_capabilities", false);
    SYM(get_color_control, "k4a_device_get_color_control", true);
    SYM(set_color_control, "k4a_device_set_color_control", true);
    SYM(start_cameras, "k4a_device_start_cameras", true);
    SYM(stop_cameras, "k4a_device_stop_cameras", true);
    SYM(get_capture, "k4a_device_get_capture", true);
    SYM(start_imu, "k4a_device_start_imu", true);
    SYM(stop_imu, "k4a_device_stop_imu", true);
    SYM(get_imu_sample, "k4a_device_get_imu_sample", true);
    SYM(capture_release, "k4a_capture_release", true);
    SYM(capture_get_color, "k4a_capture_get_color_image", true);
    SYM(capture_get_depth, "k4a_capture_get_depth_image", true);
    SYM(capture_get_ir, "k4a_capture_get_ir_image", true);
    SYM(capture_get_temperature, "k4a_capture_get_temperature_c", true);
    SYM(image_get_buffer, "k4a_image_get_buffer", true);
    SYM(image_get_size, "k4a_image_get_size", true);
    SYM(image_get_format, "k4a_image_get_format", true);
    SYM(image_get_width, "k4a_image_get_width_pixels", true);
    SYM(image_get_height, "k4a_image_get_height_pixels", true);
    SYM(image_get_stride, "k4a_image_get_stride_bytes", true);
    SYM(image_get_device_ts, "k4a_image_get_device_timestamp_usec", true);
    SYM(image_get_system_ts, "k4a_image_get_system_timestamp_nsec", true);
    SYM(image_get_exposure, "k4a_image_get_exposure_usec", true);
    SYM(image_get_white_balance, "k4a_image_get_white_balance", true);
    SYM(image_get_iso_speed, "k4a_image_get_iso_speed", true);
    SYM(image_release, "k4a_image_release", true);
    /* Before any other call: route libk4a's error log to us instead of its stdout logger. */
    kabi_set_debug_message_handler_fn set_handler = NULL;
    *(void **)&set_handler = dlsym(lib->handle, "k4a_set_debug_message_handler");
    if (set_handler)
        (void)set_handler(on_k4a_log, lib, KABI_LOG_LEVEL_ERROR);
#undef SYM
    /* Orbbec's OrbbecSDK-K4A-Wrapper ships a libk4a.so.1.4 of its own that pulls in libOrbbecSDK:
     * dlsym on the handle searches its dependencies too. Its sync jack query is not trustworthy
     * (users report it always says "no cable"), so jacks are reported as unknown for it. */
    lib->orbbec = dlsym(lib->handle, "ob_create_context") != NULL;
    *out = lib;
    return KS_OK;
}

ks_status ks_k4a_library_probe(char *path, size_t n, ks_error *err)
{
    k4a_lib *lib = NULL;
    ks_status st = lib_load(&lib, err);
    if (st != KS_OK)
        return st;
    if (path && n)
        snprintf(path, n, "%s", lib->path);
    lib_unref(lib);
    return KS_OK;
}

ks_status ks_k4a_depthengine_probe(const char *k4a_path, char *path, size_t n, ks_error *err)
{
    static const char soname[] = "libdepthengine.so.2.0";
    const char *env = getenv("KINSYNC_DEPTHENGINE_LIBRARY");
    if (env && env[0]) {
        if (access(env, R_OK) == 0) {
            if (path && n)
                snprintf(path, n, "%s", env);
            return KS_OK;
        }
        return ks_error_set(err, KS_ENOTFOUND,
                            "depth engine not found: KINSYNC_DEPTHENGINE_LIBRARY=%s is not a readable file; fix "
                            "the path or unset it",
                            env);
    }
    /* Next to libk4a, then in its libk4a1.4/ subdirectory (Debian package layout). */
    if (k4a_path && k4a_path[0] && strchr(k4a_path, '/')) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", k4a_path);
        char *slash = strrchr(dir, '/');
        *slash = '\0';
        const char *subs[] = {"", "/libk4a1.4"};
        for (int i = 0; i < 2; i++) {
            char cand[PATH_MAX + 64];
            snprintf(cand, sizeof cand, "%s%s/%s", dir, subs[i], soname);
            if (access(cand, R_OK) == 0) {
                if (path && n)
                    snprintf(path, n, "%s", cand);
                return KS_OK;
            }
        }
    }
    /* By soname, as libk4a itself loads it. RTLD_LAZY: only presence matters here. */
    void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
    if (h) {
        Dl_info info;
        void *sym = dlsym(h, "k4a_register_plugin");
        if (path && n)
            snprintf(path, n, "%s", sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : soname);
        dlclose(h);
        return KS_OK;
    }
    return ks_error_set(err, KS_ENOTFOUND,
                        "depth engine %s not found (libk4a needs it to start the depth camera); install the "
                        "libk4a1.4 package, which ships it, or copy it next to libk4a.so.1.4",
                        soname);
}

/* ---- explicit enum mappings ---- */

static int map_format_to_k4a(ks_image_format f)
{
    switch (f) {
    case KS_FORMAT_MJPG: return KABI_IMAGE_FORMAT_COLOR_MJPG;
    case KS_FORMAT_NV12: return KABI_IMAGE_FORMAT_COLOR_NV12;
    case KS_FORMAT_YUY2: return KABI_IMAGE_FORMAT_COLOR_YUY2;
    case KS_FORMAT_BGRA32: return KABI_IMAGE_FORMAT_COLOR_BGRA32;
    case KS_FORMAT_DEPTH16: return KABI_IMAGE_FORMAT_DEPTH16;
    case KS_FORMAT_IR16: return KABI_IMAGE_FORMAT_IR16;
    case KS_FORMAT_CUSTOM8: return KABI_IMAGE_FORMAT_CUSTOM8;
    case KS_FORMAT_CUSTOM16: return KABI_IMAGE_FORMAT_CUSTOM16;
    default: return KABI_IMAGE_FORMAT_CUSTOM;
    }
}

static ks_image_format map_format_from_k4a(int f)
{
    switch (f) {
    case KABI_IMAGE_FORMAT_COLOR_MJPG: return KS_FORMAT_MJPG;
    case KABI_IMAGE_FORMAT_COLOR_NV12: return KS_FORMAT_NV12;
    case KABI_IMAGE_FORMAT_COLOR_YUY2: return KS_FORMAT_YUY2;
    case KABI_IMAGE_FORMAT_COLOR_BGRA32: return KS_FORMAT_BGRA32;
    case KABI_IMAGE_FORMAT_DEPTH16: return KS_FORMAT_DEPTH16;
    case KABI_IMAGE_FORMAT_IR16: return KS_FORMAT_IR16;
    case KABI_IMAGE_FORMAT_CUSTOM8: return KS_FORMAT_CUSTOM8;
    case KABI_IMAGE_FORMAT_CUSTOM16: return KS_FORMAT_CUSTOM16;
    default: return KS_FORMAT_CUSTOM;
    }
}

static int map_resolution(ks_color_resolution r)
{
    switch (r) {
    case KS_COLOR_720P: return KABI_COLOR_RESOLUTION_720P;
    case KS_COLOR_1080P: return KABI_COLOR_RESOLUTION_1080P;
    case KS_COLOR_1440P: return KABI_COLOR_RESOLUTION_1440P;
    case KS_COLOR_1536P: return KABI_COLOR_RESOLUTION_1536P;
    case KS_COLOR_2160P: return KABI_COLOR_RESOLUTION_2160P;
    case KS_COLOR_3072P: return KABI_COLOR_RESOLUTION_3072P;
    default: return KABI_COLOR_RESOLUTION_OFF;
    }
}

static int map_depth_mode(ks_depth_mode m)
{
    switch (m) {
    case KS_DEPTH_NFOV_2X2BINNED: return KABI_DEPTH_MODE_NFOV_2X2BINNED;
    case KS_DEPTH_NFOV_UNBINNED: return KABI_DEPTH_MODE_NFOV_UNBINNED;
    case KS_DEPTH_WFOV_2X2BINNED: return KABI_DEPTH_MODE_WFOV_2X2BINNED;
    case KS_DEPTH_WFOV_UNBINNED: return KABI_DEPTH_MODE_WFOV_UNBINNED;
    case KS_DEPTH_PASSIVE_IR: return KABI_DEPTH_MODE_PASSIVE_IR;
    default: return KABI_DEPTH_MODE_OFF;
    }
}

static int map_fps(ks_fps f)
{
    switch (f) {
    case KS_FPS_5: return KABI_FRAMES_PER_SECOND_5;
    case KS_FPS_15: return KABI_FRAMES_PER_SECOND_15;
    default: return KABI_FRAMES_PER_SECOND_30;
    }
}

static int map_sync_mode(ks_wired_sync_mode m)
{
    switch (m) {
    case KS_SYNC_MASTER: return KABI_WIRED_SYNC_MODE_MASTER;
    case KS_SYNC_SUBORDINATE: return KABI_WIRED_SYNC_MODE_SUBORDINATE;
    default: return KABI_WIRED_SYNC_MODE_STANDALONE;
    }
}

static bool map_control(ks_color_control c, int *out)
{
    switch (c) {
    case KS_CONTROL_EXPOSURE_TIME_ABSOLUTE: *out = KABI_COLOR_CONTROL_EXPOSURE_TIME_ABSOLUTE; return true;
    case KS_CONTROL_AUTO_EXPOSURE_PRIORITY: *out = KABI_COLOR_CONTROL_AUTO_EXPOSURE_PRIORITY; return true;
    case KS_CONTROL_BRIGHTNESS: *out = KABI_COLOR_CONTROL_BRIGHTNESS; return true;
    case KS_CONTROL_CONTRAST: *out = KABI_COLOR_CONTROL_CONTRAST; return true;
    case KS_CONTROL_SATURATION: *out = KABI_COLOR_CONTROL_SATURATION; return true;
    case KS_CONTROL_SHARPNESS: *out = KABI_COLOR_CONTROL_SHARPNESS; return true;
    case KS_CONTROL_WHITEBALANCE: *out = KABI_COLOR_CONTROL_WHITEBALANCE; return true;
    case KS_CONTROL_BACKLIGHT_COMPENSATION: *out = KABI_COLOR_CONTROL_BACKLIGHT_COMPENSATION; return true;
    case KS_CONTROL_GAIN: *out = KABI_COLOR_CONTROL_GAIN; return true;
    case KS_CONTROL_POWERLINE_FREQUENCY: *out = KABI_COLOR_CONTROL_POWERLINE_FREQUENCY; return true;
    default: return false;
    }
}

static const char *control_name(ks_color_control c)
{
    static const char *const names[] = {"exposure time",  "auto exposure priority",
                                        "brightness",     "contrast",
                                        "saturation",     "sharpness",
                                        "white balance",  "backlight compensation",
                                        "gain",           "powerline frequency"};
    return c >= 0 && c < KS_CONTROL_COUNT ? names[c] : "unknown control";
}

static int map_mode_to_k4a(ks_control_mode m)
{
    return m == KS_CONTROL_MODE_AUTO ? KABI_COLOR_CONTROL_MODE_AUTO : KABI_COLOR_CONTROL_MODE_MANUAL;
}

static ks_control_mode map_mode_from_k4a(int m)
{
    return m == KABI_COLOR_CONTROL_MODE_AUTO ? KS_CONTROL_MODE_AUTO : KS_CONTROL_MODE_MANUAL;
}

/* ---- backend and devices ---- */

typedef struct k4a_dev {
    k4a_lib *lib;
    kabi_device_t handle;
    int index;
    char serial[32];
} k4a_dev;

static int k4a_device_count(void *ctx)
{
    k4a_lib *lib = ctx;
    uint32_t n = lib->get_installed_count();
    return n > (uint32_t)INT_MAX ? INT_MAX : (int)n;
}

static ks_status k4a_open(void *ctx, int index, void **out, ks_error *err)
{
    k4a_lib *lib = ctx;
    k4a_dev *d = calloc(1, sizeof *d);
    if (!d)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening Azure Kinect device %d", index);
    d->lib = lib;
    d->index = index;
    log_clear(lib);
    if (lib->device_open((uint32_t)index, &d->handle) != KABI_RESULT_SUCCEEDED || !d->handle) {
        free(d);
        return with_log(lib,
                        ks_error_set(err, KS_EIO,
                                     "could not open Azure Kinect device %d: it is busy (another program such as "
                                     "k4aviewer, k4arecorder or a second kinsync has it open) or this user may not "
                                     "access it; close the other program, and on Linux install the udev rules "
                                     "(99-k4a.rules from the SDK into /etc/udev/rules.d/, then unplug and replug)",
                                     index),
                        err);
    }
    /* Serial now, so every later message can name the device. */
    size_t size = sizeof d->serial;
    int br = lib->get_serialnum(d->handle, d->serial, &size);
    if (br != KABI_BUFFER_RESULT_SUCCEEDED) {
        lib->device_close(d->handle);
        free(d);
        if (br == KABI_BUFFER_RESULT_TOO_SMALL)
            return ks_error_set(err, KS_EIO,
                                "Azure Kinect device %d reports a serial number of %zu bytes, longer than any real "
                                "device's; the library at hand is not a genuine libk4a 1.4 -- reinstall libk4a1.4",
                                index, size);
        return ks_error_set(err, KS_EIO,
                            "could not read the serial number of Azure Kinect device %d; unplug and replug it "
                            "(power first, then USB) and try again",
                            index);
    }
    d->serial[sizeof d->serial - 1] = '\0';
    *out = d;
    return KS_OK;
}

static void k4a_close(void *dev)
{
    k4a_dev *d = dev;
    if (!d)
        return;
    d->lib->device_close(d->handle);
    free(d);
}

static void copy_version(ks_version *dst, const kabi_version *src)
{
    dst->major = src->major;
    dst->minor = src->minor;
    dst->iteration = src->iteration;
}

static ks_status k4a_get_info(void *dev, ks_device_info *info, ks_error *err)
{
    k4a_dev *d = dev;
    memset(info, 0, sizeof *info);
    snprintf(info->serial, sizeof info->serial, "%s", d->serial);
    snprintf(info->backend, sizeof info->backend, "k4a");
    kabi_hardware_version hv;
    memset(&hv, 0, sizeof hv);
    log_clear(d->lib);
    if (d->lib->get_version(d->handle, &hv) != KABI_RESULT_SUCCEEDED)
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "could not read the firmware versions of device %s; unplug and replug it, and update "
                            "the firmware with AzureKinectFirmwareTool if this persists",
                            d->serial), err);
    copy_version(&info->rgb, &hv.rgb);
    copy_version(&info->depth, &hv.depth);
    copy_version(&info->audio, &hv.audio);
    copy_version(&info->depth_sensor, &hv.depth_sensor);
    return KS_OK;
}

static ks_status k4a_get_calibration_json(void *dev, char **json, size_t *len, ks_error *err)
{
    k4a_dev *d = dev;
    if (!json)
        return ks_error_set(err, KS_EINVAL, "no output pointer for the calibration of device %s", d->serial);
    *json = NULL;
    size_t size = 0;
    log_clear(d->lib);
    int br = d->lib->get_raw_calibration(d->handle, NULL, &size);
    if ((br != KABI_BUFFER_RESULT_TOO_SMALL && br != KABI_BUFFER_RESULT_SUCCEEDED) || size == 0 ||
        size > (64u << 20))
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "could not read the factory calibration of device %s (libk4a result %d, %zu bytes); "
                            "unplug and replug the device and try again",
                            d->serial, br, size), err);
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading the calibration of device %s", d->serial);
    size_t got = size;
    br = d->lib->get_raw_calibration(d->handle, buf, &got);
    if (br != KABI_BUFFER_RESULT_SUCCEEDED || got > size) {
        free(buf);
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "could not read the factory calibration of device %s (libk4a result %d); unplug and "
                            "replug the device and try again",
                            d->serial, br), err);
    }
    buf[got] = '\0';
    size_t n = strnlen((char *)buf, got); /* the SDK's buffer includes the terminating NUL */
    *json = (char *)buf;
    if (len)
        *len = n;
    return KS_OK;
}

static ks_status k4a_get_jacks(void *dev, ks_jack_state *jacks, ks_error *err)
{
    k4a_dev *d = dev;
    memset(jacks, 0, sizeof *jacks);
    if (!d->lib->get_sync_jack || d->lib->orbbec)
        return KS_OK; /* supported = false: this libk4a cannot report jacks (reliably) */
    bool in = false, out = false;
    if (d->lib->get_sync_jack(d->handle, &in, &out) != KABI_RESULT_SUCCEEDED) {
        /* Some K4A wrappers implement the call as a failure; report "unknown", not an error. */
        return KS_OK;
    }
    jacks->supported = true;
    jacks->sync_in = in;
    jacks->sync_out = out;
    (void)err;
    return KS_OK;
}

static ks_status k4a_get_color_control(void *dev, ks_color_control c, ks_control_mode *mode, int32_t *value,
                                       ks_error *err)
{
    k4a_dev *d = dev;
    int cmd;
    if (!map_control(c, &cmd))
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    int m = KABI_COLOR_CONTROL_MODE_MANUAL;
    int32_t v = 0;
    log_clear(d->lib);
    if (d->lib->get_color_control(d->handle, cmd, &m, &v) != KABI_RESULT_SUCCEEDED)
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "device %s did not report its color %s; the color camera may be unplugged or busy -- "
                            "replug the device and try again",
                            d->serial, control_name(c)), err);
    if (mode)
        *mode = map_mode_from_k4a(m);
    if (value)
        *value = v;
    return KS_OK;
}

static ks_status k4a_set_color_control(void *dev, ks_color_control c, ks_control_mode mode, int32_t value,
                                       ks_error *err)
{
    k4a_dev *d = dev;
    int cmd;
    if (!map_control(c, &cmd))
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    log_clear(d->lib);
    if (d->lib->set_color_control(d->handle, cmd, map_mode_to_k4a(mode), value) != KABI_RESULT_SUCCEEDED) {
        if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE && mode == KS_CONTROL_MODE_MANUAL)
            return with_log(d->lib, ks_error_set(err, KS_EINVAL,
                                "device %s refused manual exposure %d us; use a value from the exposure table "
                                "(kinsync rounds up to it) within the frame period of the chosen fps",
                                d->serial, (int)value), err);
        if (c == KS_CONTROL_POWERLINE_FREQUENCY)
            return with_log(d->lib, ks_error_set(err, KS_EINVAL,
                                "device %s refused powerline frequency %d; use 1 (50 Hz) or 2 (60 Hz) in manual mode",
                                d->serial, (int)value), err);
        return with_log(d->lib, ks_error_set(err, KS_EINVAL,
                            "device %s refused color %s = %d (%s); check the range with the control's capabilities "
                            "(auto mode is only allowed for exposure and white balance)",
                            d->serial, control_name(c), (int)value, mode == KS_CONTROL_MODE_AUTO ? "auto" : "manual"), err);
    }
    return KS_OK;
}

static ks_status k4a_get_color_control_caps(void *dev, ks_color_control c, ks_control_caps *caps, ks_error *err)
{
    k4a_dev *d = dev;
    int cmd;
    if (!map_control(c, &cmd))
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    if (!d->lib->get_control_caps)
        return with_log(d->lib, ks_error_set(err, KS_EUNSUPPORTED,
                            "this libk4a (%s) cannot report color control capabilities; install libk4a 1.4",
                            d->lib->path), err);
    bool supports_auto = false;
    int32_t mn = 0, mx = 0, step = 0, def = 0;
    int def_mode = KABI_COLOR_CONTROL_MODE_MANUAL;
    log_clear(d->lib);
    if (d->lib->get_control_caps(d->handle, cmd, &supports_auto, &mn, &mx, &step, &def, &def_mode) !=
        KABI_RESULT_SUCCEEDED)
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "device %s did not report the capabilities of its color %s; replug the device and try "
                            "again",
                            d->serial, control_name(c)), err);
    caps->supports_auto = supports_auto;
    caps->min_value = mn;
    caps->max_value = mx;
    caps->step_value = step;
    caps->default_value = def;
    caps->default_mode = map_mode_from_k4a(def_mode);
    return KS_OK;
}

static ks_status k4a_start_cameras(void *dev, const ks_device_config *cfg, ks_error *err)
{
    k4a_dev *d = dev;
    kabi_device_configuration kc;
    memset(&kc, 0, sizeof kc);
    kc.color_format = map_format_to_k4a(cfg->color_format);
    kc.color_resolution = map_resolution(cfg->color_resolution);
    kc.depth_mode = map_depth_mode(cfg->depth_mode);
    kc.camera_fps = map_fps(cfg->camera_fps);
    kc.synchronized_images_only = cfg->synchronized_images_only;
    kc.depth_delay_off_color_usec = cfg->depth_delay_off_color_usec;
    kc.wired_sync_mode = map_sync_mode(cfg->wired_sync_mode);
    kc.subordinate_delay_off_master_usec = cfg->subordinate_delay_off_master_usec;
    kc.disable_streaming_indicator = cfg->disable_streaming_indicator;
    log_clear(d->lib);
    if (d->lib->start_cameras(d->handle, &kc) == KABI_RESULT_SUCCEEDED)
        return KS_OK;
    const char *role = ks_wired_sync_mode_name(cfg->wired_sync_mode);
    if (cfg->wired_sync_mode == KS_SYNC_MASTER)
        return with_log(d->lib, ks_error_set(err, KS_ESYNC,
                            "libk4a refused to start device %s as %s: the master needs a cable in Sync Out (and none "
                            "in Sync In) and the color camera on; check the cable, or run `kinsync doctor` for the "
                            "depth engine and USB",
                            d->serial, role), err);
    if (cfg->wired_sync_mode == KS_SYNC_SUBORDINATE)
        return with_log(d->lib, ks_error_set(err, KS_ESYNC,
                            "libk4a refused to start device %s as %s: a subordinate needs a cable in Sync In from "
                            "the master or the previous device; check the cable, or run `kinsync doctor` for the "
                            "depth engine and USB",
                            d->serial, role), err);
    return with_log(d->lib, ks_error_set(err, KS_EIO,
                        "libk4a could not start the cameras of device %s (%s %s, depth %s, %d fps): the usual causes "
                        "are a missing depth engine (libdepthengine.so.2.0), no OpenGL context for it, a USB 2 port "
                        "or too little usbfs memory; run `kinsync doctor`",
                        d->serial, ks_color_resolution_name(cfg->color_resolution),
                        ks_image_format_name(cfg->color_format), ks_depth_mode_name(cfg->depth_mode),
                        ks_fps_hz(cfg->camera_fps)), err);
}

static void k4a_stop_cameras(void *dev)
{
    k4a_dev *d = dev;
    d->lib->stop_cameras(d->handle);
}

typedef struct wrapped_image {
    k4a_lib *lib;
    kabi_image_t image;
} wrapped_image;

static void release_wrapped(ks_image *img, void *ctx)
{
    (void)img;
    wrapped_image *w = ctx;
    w->lib->image_release(w->image);
    lib_unref(w->lib);
    free(w);
}

/* Takes over the reference the capture getter returned; releases it on failure. */
static ks_image *wrap_image(k4a_lib *lib, kabi_image_t h)
{
    if (!h)
        return NULL;
    wrapped_image *w = malloc(sizeof *w);
    if (!w) {
        lib->image_release(h);
        return NULL;
    }
    w->lib = lib;
    w->image = h;
    int fmt = lib->image_get_format(h);
    ks_image *img = ks_image_wrap(map_format_from_k4a(fmt), lib->image_get_width(h), lib->image_get_height(h),
                                  lib->image_get_stride(h), lib->image_get_buffer(h), lib->image_get_size(h),
                                  release_wrapped, w);
    if (!img) {
        lib->image_release(h);
        free(w);
        return NULL;
    }
    lib_ref(lib);
    img->device_ts_us = lib->image_get_device_ts(h);
    img->system_ts_ns = lib->image_get_system_ts(h);
    img->exposure_us = lib->image_get_exposure(h);
    img->white_balance = lib->image_get_white_balance(h);
    img->iso_speed = lib->image_get_iso_speed(h);
    return img;
}

static ks_status k4a_get_capture(void *dev, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    k4a_dev *d = dev;
    k4a_lib *lib = d->lib;
    kabi_capture_t cap = NULL;
    int32_t t = timeout_ms < 0 ? -1 : timeout_ms; /* K4A_WAIT_INFINITE is -1 */
    log_clear(lib);
    int wr = lib->get_capture(d->handle, &cap, t);
    if (wr == KABI_WAIT_RESULT_TIMEOUT)
        return ks_error_set(err, KS_ETIMEOUT,
                            "no capture from device %s within %d ms; a subordinate streams only once the master "
                            "sends sync pulses (start subordinates first, then the master, and check the sync "
                            "cables), otherwise check the USB connection",
                            d->serial, (int)timeout_ms);
    if (wr != KABI_WAIT_RESULT_SUCCEEDED || !cap)
        return with_log(d->lib, ks_error_set(err, KS_ENODEV,
                            "device %s stopped delivering captures (libk4a reports a failure: usually the device "
                            "was unplugged, lost power or hit a USB error); check its cables and power, then stop "
                            "and reopen it",
                            d->serial), err);
    ks_capture *c = ks_capture_create();
    if (!c) {
        lib->capture_release(cap);
        return ks_error_set(err, KS_ENOMEM, "out of memory receiving a capture from device %s", d->serial);
    }
    kabi_image_t hc = lib->capture_get_color(cap);
    kabi_image_t hd = lib->capture_get_depth(cap);
    kabi_image_t hi = lib->capture_get_ir(cap);
    c->temperature_c = lib->capture_get_temperature(cap);
    c->color = wrap_image(lib, hc);
    c->depth = wrap_image(lib, hd);
    c->ir = wrap_image(lib, hi);
    lib->capture_release(cap); /* the images keep their own references */
    if ((hc && !c->color) || (hd && !c->depth) || (hi && !c->ir)) {
        ks_capture_release(c);
        return ks_error_set(err, KS_ENOMEM, "out of memory receiving a capture from device %s", d->serial);
    }
    *out = c;
    return KS_OK;
}

static ks_status k4a_start_imu(void *dev, ks_error *err)
{
    k4a_dev *d = dev;
    log_clear(d->lib);
    if (d->lib->start_imu(d->handle) != KABI_RESULT_SUCCEEDED)
        return with_log(d->lib, ks_error_set(err, KS_EIO,
                            "libk4a could not start the IMU of device %s: the cameras must be running and the IMU "
                            "not already started by another program; restart the cameras and try again",
                            d->serial), err);
    return KS_OK;
}

static void k4a_stop_imu(void *dev)
{
    k4a_dev *d = dev;
    d->lib->stop_imu(d->handle);
}

static ks_status k4a_get_imu_sample(void *dev, ks_imu_sample *out, int32_t timeout_ms, ks_error *err)
{
    k4a_dev *d = dev;
    kabi_imu_sample s;
    memset(&s, 0, sizeof s);
    log_clear(d->lib);
    int wr = d->lib->get_imu_sample(d->handle, &s, timeout_ms < 0 ? -1 : timeout_ms);
    if (wr == KABI_WAIT_RESULT_TIMEOUT)
        return ks_error_set(err, KS_ETIMEOUT,
                            "no IMU sample from device %s within %d ms; check that the cameras and the IMU are "
                            "running",
                            d->serial, (int)timeout_ms);
    if (wr != KABI_WAIT_RESULT_SUCCEEDED)
        return with_log(d->lib, ks_error_set(err, KS_ENODEV,
                            "the IMU of device %s failed (usually the device was unplugged or lost power); check "
                            "its cables, then stop and reopen it",
                            d->serial), err);
    out->temperature_c = s.temperature;
    for (int i = 0; i < 3; i++) {
        out->acc[i] = s.acc_sample[i];
        out->gyro[i] = s.gyro_sample[i];
    }
    out->acc_ts_us = s.acc_timestamp_usec;
    out->gyro_ts_us = s.gyro_timestamp_usec;
    return KS_OK;
}

static void k4a_destroy(void *ctx)
{
    lib_unref(ctx);
}

static const ks_backend_ops k4a_ops = {
    .name = "k4a",
    .caps = KS_BACKEND_CAP_JACKS,
    .device_count = k4a_device_count,
    .open = k4a_open,
    .close = k4a_close,
    .get_info = k4a_get_info,
    .get_calibration_json = k4a_get_calibration_json,
    .get_jacks = k4a_get_jacks,
    .get_color_control = k4a_get_color_control,
    .set_color_control = k4a_set_color_control,
    .get_color_control_caps = k4a_get_color_control_caps,
    .start_cameras = k4a_start_cameras,
    .stop_cameras = k4a_stop_cameras,
    .get_capture = k4a_get_capture,
    .start_imu = k4a_start_imu,
    .stop_imu = k4a_stop_imu,
    .get_imu_sample = k4a_get_imu_sample,
    .destroy = k4a_destroy,
};

ks_status ks_backend_open_k4a(ks_backend **out, ks_error *err)
{
    if (!out)
        return ks_error_set(err, KS_EINVAL, "ks_backend_open_k4a: no output pointer given");
    *out = NULL;
    k4a_lib *lib = NULL;
    ks_status st = lib_load(&lib, err);
    if (st != KS_OK)
        return st;
    ks_backend *b = ks_backend_create(&k4a_ops, lib);
    if (!b) {
        lib_unref(lib);
        return ks_error_set(err, KS_ENOMEM, "out of memory creating the k4a backend");
    }
    *out = b;
    return KS_OK;
}

const char *ks_k4a_backend_library(ks_backend *b)
{
    k4a_lib *lib = ks_backend_context_if(b, &k4a_ops);
    return lib ? lib->path : "";
}

bool ks_k4a_backend_is_orbbec(ks_backend *b)
{
    k4a_lib *lib = ks_backend_context_if(b, &k4a_ops);
    return lib && lib->orbbec;
}
