/* device/k4a/k4a_abi.h: the part of the public libk4a 1.4 C ABI that the k4a backend uses.
 *
 * kinsync never includes the SDK's headers and never links libk4a: the library is opened at run
 * time with dlopen (src/device/k4a/k4a.c) and called through the function pointer types below.
 * Every layout and value here was written from the SDK's public headers (include/k4a/k4atypes.h
 * and include/k4a/k4a.h of Azure-Kinect-Sensor-SDK 1.4); the _Static_asserts pin the layouts the
 * 1.4 ABI promises on x86_64/aarch64 Linux, so a mistake fails the build, and the test double
 * (tests/k4a/fake_k4a.c) records what crosses the boundary so a wrong value fails a test.
 *
 * The names carry a kabi_ prefix (not k4a_) so that this header can be included next to the
 * test double, which exports the real k4a_* symbol names. */
#ifndef KS_DEVICE_K4A_ABI_H
#define KS_DEVICE_K4A_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque handles: pointers to a struct holding one size_t (K4A_DECLARE_HANDLE). */
typedef struct kabi_handle_s {
    size_t rsvd;
} *kabi_device_t, *kabi_capture_t, *kabi_image_t;

/* k4a_result_t */
enum { KABI_RESULT_SUCCEEDED = 0, KABI_RESULT_FAILED = 1 };
/* k4a_buffer_result_t */
enum { KABI_BUFFER_RESULT_SUCCEEDED = 0, KABI_BUFFER_RESULT_FAILED = 1, KABI_BUFFER_RESULT_TOO_SMALL = 2 };
/* k4a_wait_result_t */
enum { KABI_WAIT_RESULT_SUCCEEDED = 0, KABI_WAIT_RESULT_FAILED = 1, KABI_WAIT_RESULT_TIMEOUT = 2 };

/* C enums are int-sized in the SDK's ABI; the typedefs keep that explicit. */
typedef int kabi_result_t;
typedef int kabi_buffer_result_t;
typedef int kabi_wait_result_t;

/* k4a_depth_mode_t */
enum {
    KABI_DEPTH_MODE_OFF = 0,
    KABI_DEPTH_MODE_NFOV_2X2BINNED = 1,
    KABI_DEPTH_MODE_NFOV_UNBINNED = 2,
    KABI_DEPTH_MODE_WFOV_2X2BINNED = 3,
    KABI_DEPTH_MODE_WFOV_UNBINNED = 4,
    KABI_DEPTH_MODE_PASSIVE_IR = 5,
};

/* k4a_color_resolution_t */
enum {
    KABI_COLOR_RESOLUTION_OFF = 0,
    KABI_COLOR_RESOLUTION_720P = 1,
    KABI_COLOR_RESOLUTION_1080P = 2,
    KABI_COLOR_RESOLUTION_1440P = 3,
    KABI_COLOR_RESOLUTION_1536P = 4,
    KABI_COLOR_RESOLUTION_2160P = 5,
    KABI_COLOR_RESOLUTION_3072P = 6,
};

/* k4a_image_format_t */
enum {
    KABI_IMAGE_FORMAT_COLOR_MJPG = 0,
    KABI_IMAGE_FORMAT_COLOR_NV12 = 1,
    KABI_IMAGE_FORMAT_COLOR_YUY2 = 2,
    KABI_IMAGE_FORMAT_COLOR_BGRA32 = 3,
    KABI_IMAGE_FORMAT_DEPTH16 = 4,
    KABI_IMAGE_FORMAT_IR16 = 5,
    KABI_IMAGE_FORMAT_CUSTOM8 = 6,
    KABI_IMAGE_FORMAT_CUSTOM16 = 7,
    KABI_IMAGE_FORMAT_CUSTOM = 8,
};

/* k4a_fps_t */
enum { KABI_FRAMES_PER_SECOND_5 = 0, KABI_FRAMES_PER_SECOND_15 = 1, KABI_FRAMES_PER_SECOND_30 = 2 };

/* k4a_wired_sync_mode_t */
enum { KABI_WIRED_SYNC_MODE_STANDALONE = 0, KABI_WIRED_SYNC_MODE_MASTER = 1, KABI_WIRED_SYNC_MODE_SUBORDINATE = 2 };

/* k4a_color_control_command_t */
enum {
    KABI_COLOR_CONTROL_EXPOSURE_TIME_ABSOLUTE = 0,
    KABI_COLOR_CONTROL_AUTO_EXPOSURE_PRIORITY = 1,
    KABI_COLOR_CONTROL_BRIGHTNESS = 2,
    KABI_COLOR_CONTROL_CONTRAST = 3,
    KABI_COLOR_CONTROL_SATURATION = 4,
    KABI_COLOR_CONTROL_SHARPNESS = 5,
    KABI_COLOR_CONTROL_WHITEBALANCE = 6,
    KABI_COLOR_CONTROL_BACKLIGHT_COMPENSATION = 7,
    KABI_COLOR_CONTROL_GAIN = 8,
    KABI_COLOR_CONTROL_POWERLINE_FREQUENCY = 9,
};

/* k4a_color_control_mode_t */
enum { KABI_COLOR_CONTROL_MODE_AUTO = 0, KABI_COLOR_CONTROL_MODE_MANUAL = 1 };

/* k4a_device_configuration_t: 36 bytes. */
typedef struct kabi_device_configuration {
    int color_format;                    /* k4a_image_format_t */
    int color_resolution;                /* k4a_color_resolution_t */
    int depth_mode;                      /* k4a_depth_mode_t */
    int camera_fps;                      /* k4a_fps_t */
    bool synchronized_images_only;
    int32_t depth_delay_off_color_usec;
    int wired_sync_mode;                 /* k4a_wired_sync_mode_t */
    uint32_t subordinate_delay_off_master_usec;
    bool disable_streaming_indicator;
} kabi_device_configuration;

_Static_assert(sizeof(kabi_device_configuration) == 36, "k4a_device_configuration_t is 36 bytes");
_Static_assert(offsetof(kabi_device_configuration, color_format) == 0, "color_format at 0");
_Static_assert(offsetof(kabi_device_configuration, color_resolution) == 4, "color_resolution at 4");
_Static_assert(offsetof(kabi_device_configuration, depth_mode) == 8, "depth_mode at 8");
_Static_assert(offsetof(kabi_device_configuration, camera_fps) == 12, "camera_fps at 12");
_Static_assert(offsetof(kabi_device_configuration, synchronized_images_only) == 16, "sync_images_only at 16");
_Static_assert(offsetof(kabi_device_configuration, depth_delay_off_color_usec) == 20, "depth_delay at 20");
_Static_assert(offsetof(kabi_device_configuration, wired_sync_mode) == 24, "wired_sync_mode at 24");
_Static_assert(offsetof(kabi_device_configuration, subordinate_delay_off_master_usec) == 28, "sub delay at 28");
_Static_assert(offsetof(kabi_device_configuration, disable_streaming_indicator) == 32, "indicator at 32");

/* k4a_version_t */
typedef struct kabi_version {
    uint32_t major, minor, iteration;
} kabi_version;

/* k4a_hardware_version_t: four versions, then firmware_build and firmware_signature enums. */
typedef struct kabi_hardware_version {
    kabi_version rgb;
    kabi_version depth;
    kabi_version audio;
    kabi_version depth_sensor;
    int firmware_build;      /* k4a_firmware_build_t: 0 release, 1 debug */
    int firmware_signature;  /* k4a_firmware_signature_t: 0 msft, 1 test, 2 unsigned */
} kabi_hardware_version;

_Static_assert(sizeof(kabi_version) == 12, "k4a_version_t is 12 bytes");
_Static_assert(sizeof(kabi_hardware_version) == 56, "k4a_hardware_version_t is 56 bytes");
_Static_assert(offsetof(kabi_hardware_version, depth) == 12, "depth version at 12");
_Static_assert(offsetof(kabi_hardware_version, audio) == 24, "audio version at 24");
_Static_assert(offsetof(kabi_hardware_version, depth_sensor) == 36, "depth_sensor version at 36");
_Static_assert(offsetof(kabi_hardware_version, firmware_build) == 48, "firmware_build at 48");

/* k4a_imu_sample_t: float temperature, float3 acc, u64 acc ts, float3 gyro, u64 gyro ts (48 bytes). */
typedef struct kabi_imu_sample {
    float temperature;
    float acc_sample[3];
    uint64_t acc_timestamp_usec;
    float gyro_sample[3];
    uint64_t gyro_timestamp_usec;
} kabi_imu_sample;

_Static_assert(sizeof(kabi_imu_sample) == 48, "k4a_imu_sample_t is 48 bytes");
_Static_assert(offsetof(kabi_imu_sample, acc_sample) == 4, "acc_sample at 4");
_Static_assert(offsetof(kabi_imu_sample, acc_timestamp_usec) == 16, "acc_timestamp_usec at 16");
_Static_assert(offsetof(kabi_imu_sample, gyro_sample) == 24, "gyro_sample at 24");
_Static_assert(offsetof(kabi_imu_sample, gyro_timestamp_usec) == 40, "gyro_timestamp_usec at 40");

/* k4a_log_level_t */
enum {
    KABI_LOG_LEVEL_CRITICAL = 0,
    KABI_LOG_LEVEL_ERROR = 1,
    KABI_LOG_LEVEL_WARNING = 2,
    KABI_LOG_LEVEL_INFO = 3,
    KABI_LOG_LEVEL_TRACE = 4,
    KABI_LOG_LEVEL_OFF = 5,
};

/* k4a_logging_message_cb_t: (context, level, file, line, message). */
typedef void kabi_logging_message_cb(void *context, int level, const char *file, const int line,
                                     const char *message);

/* Function types, one per libk4a entry point used (same parameters as k4a.h). */
typedef kabi_result_t (*kabi_set_debug_message_handler_fn)(kabi_logging_message_cb *cb, void *context,
                                                           int min_level);
typedef uint32_t (*kabi_device_get_installed_count_fn)(void);
typedef kabi_result_t (*kabi_device_open_fn)(uint32_t index, kabi_device_t *device);
typedef void (*kabi_device_close_fn)(kabi_device_t device);
typedef kabi_buffer_result_t (*kabi_device_get_serialnum_fn)(kabi_device_t device, char *serial, size_t *size);
typedef kabi_result_t (*kabi_device_get_version_fn)(kabi_device_t device, kabi_hardware_version *version);
typedef kabi_buffer_result_t (*kabi_device_get_raw_calibration_fn)(kabi_device_t device, uint8_t *data,
                                                                   size_t *size);
typedef kabi_result_t (*kabi_device_get_sync_jack_fn)(kabi_device_t device, bool *sync_in, bool *sync_out);
typedef kabi_result_t (*kabi_device_get_color_control_capabilities_fn)(kabi_device_t device, int command,
                                                                       bool *supports_auto, int32_t *min_value,
                                                                       int32_t *max_value, int32_t *step_value,
                                                                       int32_t *default_value, int *default_mode);
typedef kabi_result_t (*kabi_device_get_color_control_fn)(kabi_device_t device, int command, int *mode,
                                                          int32_t *value);
typedef kabi_result_t (*kabi_device_set_color_control_fn)(kabi_device_t device, int command, int mode,
                                                          int32_t value);
typedef kabi_result_t (*kabi_device_start_cameras_fn)(kabi_device_t device, const kabi_device_configuration *cfg);
typedef void (*kabi_device_stop_cameras_fn)(kabi_device_t device);
typedef kabi_wait_result_t (*kabi_device_get_capture_fn)(kabi_device_t device, kabi_capture_t *capture,
                                                         int32_t timeout_ms);
typedef kabi_result_t (*kabi_device_start_imu_fn)(kabi_device_t device);
typedef void (*kabi_device_stop_imu_fn)(kabi_device_t device);
typedef kabi_wait_result_t (*kabi_device_get_imu_sample_fn)(kabi_device_t device, kabi_imu_sample *sample,
                                                            int32_t timeout_ms);
typedef void (*kabi_capture_release_fn)(kabi_capture_t capture);
typedef kabi_image_t (*kabi_capture_get_image_fn)(kabi_capture_t capture); /* color, depth and ir getters */
typedef float (*kabi_capture_get_temperature_c_fn)(kabi_capture_t capture);
typedef uint8_t *(*kabi_image_get_buffer_fn)(kabi_image_t image);
typedef size_t (*kabi_image_get_size_fn)(kabi_image_t image);
typedef int (*kabi_image_get_format_fn)(kabi_image_t image);
typedef int (*kabi_image_get_int_fn)(kabi_image_t image);        /* width, height, stride */
typedef uint64_t (*kabi_image_get_u64_fn)(kabi_image_t image);   /* timestamps, exposure */
typedef uint32_t (*kabi_image_get_u32_fn)(kabi_image_t image);   /* white balance, iso speed */
typedef void (*kabi_image_release_fn)(kabi_image_t image);

#endif
