/* kinsync/device.h: one device interface over every backend.
 *
 * The session, recorder and tools talk to devices through ks_backend / ks_device and never know
 * whether frames come from the simulator (sim), real hardware through libk4a loaded at run time
 * (k4a), or recordings (playback). A backend is a table of functions (ks_backend_ops) plus its
 * own context; src/device/device.c does the argument checks, the SDK's start rules and the
 * bookkeeping once for all backends.
 *
 * Ownership: images and captures are reference counted. ks_device_get_capture() hands the caller
 * one reference; release it with ks_capture_release(). Timestamps: device_ts_us on the device
 * clock (the convention is the rig's ks_ts_convention), system_ts_ns host CLOCK_MONOTONIC when the
 * frame arrived (for the simulator: the simulated host's clock).
 * A backend (ks_backend_open_*) is the caller's until ks_backend_free, which must come after every
 * device of it is closed; a device (ks_device_open*) until ks_device_close.
 * Threads: different devices of one backend may be used from different threads (the session runs
 * one capture thread per device); one device from one thread at a time. Images and captures may be
 * referenced and released from any thread. */
#ifndef KINSYNC_DEVICE_H
#define KINSYNC_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mirrors k4a_device_configuration_t field for field. */
typedef struct ks_device_config {
    ks_image_format color_format;
    ks_color_resolution color_resolution;
    ks_depth_mode depth_mode;
    ks_fps camera_fps;
    bool synchronized_images_only;
    int32_t depth_delay_off_color_usec;
    ks_wired_sync_mode wired_sync_mode;
    uint32_t subordinate_delay_off_master_usec;
    bool disable_streaming_indicator;
} ks_device_config;

typedef struct ks_version {
    uint32_t major, minor, iteration;
} ks_version;

typedef struct ks_device_info {
    char serial[32];
    ks_version rgb;          /* color camera firmware */
    ks_version depth;        /* depth camera firmware */
    ks_version audio;
    ks_version depth_sensor;
    char backend[16];        /* "sim", "k4a", "playback" */
} ks_device_info;

typedef struct ks_jack_state {
    bool supported;          /* false: the device cannot report jacks (e.g. some K4A wrappers) */
    bool sync_in;            /* a cable is plugged into Sync In */
    bool sync_out;           /* a cable is plugged into Sync Out */
} ks_jack_state;

typedef enum ks_color_control {
    KS_CONTROL_EXPOSURE_TIME_ABSOLUTE = 0,
    KS_CONTROL_AUTO_EXPOSURE_PRIORITY,
    KS_CONTROL_BRIGHTNESS,
    KS_CONTROL_CONTRAST,
    KS_CONTROL_SATURATION,
    KS_CONTROL_SHARPNESS,
    KS_CONTROL_WHITEBALANCE,
    KS_CONTROL_BACKLIGHT_COMPENSATION,
    KS_CONTROL_GAIN,
    KS_CONTROL_POWERLINE_FREQUENCY,
    KS_CONTROL_COUNT
} ks_color_control; /* same order and values as k4a_color_control_command_t */

typedef enum ks_control_mode { KS_CONTROL_MODE_AUTO = 0, KS_CONTROL_MODE_MANUAL = 1 } ks_control_mode;

typedef struct ks_control_caps {
    bool supports_auto;
    int32_t min_value, max_value, step_value, default_value;
    ks_control_mode default_mode;
} ks_control_caps;

typedef struct ks_image ks_image;

/* A refcounted image. Whoever holds a reference may read it; the last ks_image_release calls
 * destroy (ks_image_create's frees the data; the Matroska reader's gives the buffer back to the
 * reader's pool for the next frame, kinsync/mkv.h) and frees the struct.
 * Header-only images: a consumer that said which streams it reads (ks_device_set_streams,
 * ks_session_options.streams) may get the streams it left out as images with format, size,
 * timestamps and exposure but data NULL and size 0 -- so frames still pair and match by time as
 * with every stream -- from backends that can skip them (recordings skip decoding them). */
typedef struct ks_image {
    ks_image_format format;
    int width, height;
    int stride;                 /* bytes per row; 0 for compressed formats */
    uint8_t *data;
    size_t size;                /* bytes used in data */
    uint64_t device_ts_us;
    uint64_t system_ts_ns;
    uint64_t exposure_us;
    uint32_t white_balance;
    uint32_t iso_speed;
    /* bookkeeping: do not touch */
    int refcount;
    void (*destroy)(ks_image *img, void *ctx); /* frees data (and the image if it owns it) */
    void *destroy_ctx;
} ks_image;

typedef struct ks_capture {
    ks_image *color;            /* any of the three may be NULL */
    ks_image *depth;
    ks_image *ir;
    float temperature_c;
    int refcount;
} ks_capture;

typedef struct ks_imu_sample {
    float temperature_c;
    float acc[3];               /* m/s^2 */
    uint64_t acc_ts_us;
    float gyro[3];              /* rad/s */
    uint64_t gyro_ts_us;
} ks_imu_sample;

/* Images and captures. ks_image_create allocates width/height/stride bytes (or size bytes when
 * stride is 0) that the image owns. */
ks_image *ks_image_create(ks_image_format fmt, int width, int height, int stride, size_t size);
/* Wraps foreign memory; destroy(img, ctx) is called when the last reference goes and must free
 * what the wrapper owns (not the ks_image itself, which the library frees). */
ks_image *ks_image_wrap(ks_image_format fmt, int width, int height, int stride, uint8_t *data,
                        size_t size, void (*destroy)(ks_image *, void *), void *ctx);
ks_image *ks_image_ref(ks_image *img);
/* True for a header-only image (data NULL, size 0: its stream was not asked for). */
bool ks_image_is_header_only(const ks_image *img);
void ks_image_release(ks_image *img);
ks_capture *ks_capture_create(void);
ks_capture *ks_capture_ref(ks_capture *c);
void ks_capture_release(ks_capture *c);   /* releases its images with it */

/* ---- backend interface ---- */

/* What a backend is, declared in its function table (ks_backend_ops.caps) so that the session,
 * the recorder and the commands never ask for a backend by name. */
enum {
    /* Time is the backend's own: frames cost what they cost and nothing is "too slow" (the
     * simulator, recordings). The session then waits for its consumer instead of dropping frames. */
    KS_BACKEND_CAP_VIRTUAL_TIME = 1u << 0,
    /* The stream ends by itself: get_capture reports KS_EEOF at the end (recordings). The session
     * ends cleanly there, it is not a device fault. */
    KS_BACKEND_CAP_FINITE = 1u << 1,
    /* get_jacks reports the sync jacks (real devices, simulator, recordings' derived wiring). */
    KS_BACKEND_CAP_JACKS = 1u << 2,
    /* Reading one device advances the time of all of them (the simulator's one world): a reader
     * that runs ahead fills the others' queues, so the session keeps its readers within two frame
     * periods of each other. Recordings do not declare it: each file is read on its own (their
     * pacing, kinsync/playback.h, keeps the devices together by each file's own progress). */
    KS_BACKEND_CAP_SHARED_CLOCK = 1u << 3,
};

/* Streams a consumer reads (ks_device_set_streams, ks_session_options.streams); the bits are
 * those of the Matroska track kinds (1u << KS_MKV_COLOR/DEPTH/IR). */
enum { KS_STREAM_COLOR = 1u << 0, KS_STREAM_DEPTH = 1u << 1, KS_STREAM_IR = 1u << 2, KS_STREAM_ALL = 7u };

typedef struct ks_backend_ops {
    const char *name;
    unsigned caps;              /* KS_BACKEND_CAP_* */
    int (*device_count)(void *ctx);
    ks_status (*open)(void *ctx, int index, void **dev, ks_error *err);
    void (*close)(void *dev);
    ks_status (*get_info)(void *dev, ks_device_info *info, ks_error *err);
    /* malloc'd NUL-terminated copy of the raw calibration JSON; caller frees */
    ks_status (*get_calibration_json)(void *dev, char **json, size_t *len, ks_error *err);
    ks_status (*get_jacks)(void *dev, ks_jack_state *jacks, ks_error *err);
    ks_status (*get_color_control)(void *dev, ks_color_control c, ks_control_mode *mode, int32_t *value, ks_error *err);
    ks_status (*set_color_control)(void *dev, ks_color_control c, ks_control_mode mode, int32_t value, ks_error *err);
    ks_status (*get_color_control_caps)(void *dev, ks_color_control c, ks_control_caps *caps, ks_error *err);
    ks_status (*start_cameras)(void *dev, const ks_device_config *cfg, ks_error *err);
    void (*stop_cameras)(void *dev);
    /* timeout_ms < 0: wait forever; 0: poll. KS_ETIMEOUT when nothing arrived, KS_ENODEV when gone,
     * KS_EEOF at the end of a finite stream (KS_BACKEND_CAP_FINITE). */
    ks_status (*get_capture)(void *dev, ks_capture **out, int32_t timeout_ms, ks_error *err);
    ks_status (*start_imu)(void *dev, ks_error *err);
    void (*stop_imu)(void *dev);
    ks_status (*get_imu_sample)(void *dev, ks_imu_sample *out, int32_t timeout_ms, ks_error *err);
    void (*destroy)(void *ctx);
    /* Optional: the usbfs memory limit (MB) of the hosts the devices are on, 0 when not limited or
     * not known (recordings), -1 or NULL to let the caller read this host's (real devices); the
     * simulator models its own hosts. */
    int (*usbfs_mb)(void *ctx);
    /* Optional (NULL: unknown). Depth pixels of device serial_a that device serial_b's laser lights,
     * from the scene's geometry (the simulator knows it; real devices do not): each device in the
     * depth mode it streams, else `mode`. *pixels < 0 when the backend cannot tell. */
    ks_status (*laser_shared)(void *ctx, const char *serial_a, const char *serial_b, ks_depth_mode mode, int *pixels,
                              ks_error *err);
    /* Optional (NULL: every stream is delivered in full). The streams (KS_STREAM_*) the consumer
     * reads; the backend may deliver the others as header-only images (kinsync/device.h, ks_image)
     * instead of producing their pixels. Takes effect from the next capture formed. */
    void (*set_streams)(void *dev, unsigned streams);
} ks_backend_ops;

typedef struct ks_backend ks_backend;
typedef struct ks_device ks_device;

/* Wraps a backend implementation; takes ownership of ctx (ops->destroy is called on free). */
ks_backend *ks_backend_create(const ks_backend_ops *ops, void *ctx);
void ks_backend_free(ks_backend *b);
const char *ks_backend_name(const ks_backend *b);
/* The backend's KS_BACKEND_CAP_* flags (0 for NULL). */
unsigned ks_backend_caps(const ks_backend *b);
void *ks_backend_context(ks_backend *b);
/* The context when b was made from exactly these ops (ks_backend_create), else NULL: how a backend
 * module recognizes its own backends (never by name). */
void *ks_backend_context_if(ks_backend *b, const ks_backend_ops *ops);
/* The backend's usbfs_mb op: the devices' hosts' usbfs memory limit in MB (0 not limited/unknown),
 * -1 when the backend does not say (the caller reads this host's). */
int ks_backend_usbfs_mb(ks_backend *b);
int ks_backend_device_count(ks_backend *b);
/* ops->laser_shared: KS_EUNSUPPORTED (and *pixels = -1) when the backend does not know the geometry. */
ks_status ks_backend_laser_shared(ks_backend *b, const char *serial_a, const char *serial_b, ks_depth_mode mode,
                                  int *pixels, ks_error *err);

ks_status ks_device_open(ks_backend *b, int index, ks_device **out, ks_error *err);
/* Opens the device whose serial matches; KS_ENOTFOUND names the serials that are present. */
ks_status ks_device_open_by_serial(ks_backend *b, const char *serial, ks_device **out, ks_error *err);
void ks_device_close(ks_device *d);     /* stops cameras and IMU if running */
const ks_device_info *ks_device_info_get(const ks_device *d);
ks_status ks_device_get_calibration_json(ks_device *d, char **json, size_t *len, ks_error *err);
ks_status ks_device_get_jacks(ks_device *d, ks_jack_state *jacks, ks_error *err);
ks_status ks_device_get_color_control(ks_device *d, ks_color_control c, ks_control_mode *mode, int32_t *value, ks_error *err);
ks_status ks_device_set_color_control(ks_device *d, ks_color_control c, ks_control_mode mode, int32_t value, ks_error *err);
ks_status ks_device_get_color_control_caps(ks_device *d, ks_color_control c, ks_control_caps *caps, ks_error *err);
/* Checks cfg with ks_device_config_check (and the jacks for MASTER/SUBORDINATE) before the backend sees it. */
ks_status ks_device_start_cameras(ks_device *d, const ks_device_config *cfg, ks_error *err);
void ks_device_stop_cameras(ks_device *d);
bool ks_device_is_streaming(const ks_device *d);
const ks_device_config *ks_device_running_config(const ks_device *d); /* NULL when stopped */
ks_status ks_device_get_capture(ks_device *d, ks_capture **out, int32_t timeout_ms, ks_error *err);
/* The streams (KS_STREAM_*, 0 = all) the caller reads from this device from now on: a backend that
 * can (recordings) then delivers the others as header-only images and spends nothing on them;
 * others deliver everything. Does not change the running configuration (a master's colour camera
 * keeps running for the sync pulses): only what is decoded and handed over. */
void ks_device_set_streams(ks_device *d, unsigned streams);
ks_status ks_device_start_imu(ks_device *d, ks_error *err);   /* needs running cameras */
void ks_device_stop_imu(ks_device *d);
ks_status ks_device_get_imu_sample(ks_device *d, ks_imu_sample *out, int32_t timeout_ms, ks_error *err);

/* The SDK's start rules (k4a_device_start_cameras) for one device configuration: format and fps
 * allowed by the modes, delays within range for the sync mode, at least one camera,
 * synchronized_images_only needs both. Does not look at jacks. */
ks_status ks_device_config_check(const ks_device_config *cfg, ks_error *err);
/* SDK defaults: everything off, 30 fps, standalone. */
void ks_device_config_init(ks_device_config *cfg);

void ks_version_format(const ks_version *v, char *buf, size_t n);   /* "1.6.110" */
bool ks_version_equal(const ks_version *a, const ks_version *b);

#ifdef __cplusplus
}
#endif
#endif
