/* kinsync/timing.h: the hardware tables of the Azure Kinect DK, in one place.
 *
 * Every number about modes, frame periods, laser timing, exposure steps, sync wiring limits, the
 * external trigger spec and the firmware's 90 kHz delay quantum lives in src/timing/tables.c and is
 * reached through this header. No other file may repeat these numbers: ask the tables.
 * Sources: the Azure Kinect documentation and Sensor SDK 1.4 (see docs/hardware-tables.md).
 *
 * Enum values follow the order of the SDK's k4a enums (k4a_depth_mode_t, k4a_color_resolution_t,
 * k4a_image_format_t, k4a_fps_t, k4a_wired_sync_mode_t) but are the project's own; the libk4a
 * backend maps them explicitly. */
#ifndef KINSYNC_TIMING_H
#define KINSYNC_TIMING_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_depth_mode {
    KS_DEPTH_OFF = 0,
    KS_DEPTH_NFOV_2X2BINNED,
    KS_DEPTH_NFOV_UNBINNED,
    KS_DEPTH_WFOV_2X2BINNED,
    KS_DEPTH_WFOV_UNBINNED,
    KS_DEPTH_PASSIVE_IR,
    KS_DEPTH_MODE_COUNT
} ks_depth_mode;

typedef enum ks_color_resolution {
    KS_COLOR_OFF = 0,
    KS_COLOR_720P,
    KS_COLOR_1080P,
    KS_COLOR_1440P,
    KS_COLOR_1536P,
    KS_COLOR_2160P,
    KS_COLOR_3072P,
    KS_COLOR_RESOLUTION_COUNT
} ks_color_resolution;

typedef enum ks_image_format {
    KS_FORMAT_MJPG = 0,
    KS_FORMAT_NV12,
    KS_FORMAT_YUY2,
    KS_FORMAT_BGRA32,
    KS_FORMAT_DEPTH16,
    KS_FORMAT_IR16,
    KS_FORMAT_CUSTOM8,
    KS_FORMAT_CUSTOM16,
    KS_FORMAT_CUSTOM,
    KS_FORMAT_COUNT
} ks_image_format;

typedef enum ks_fps { KS_FPS_5 = 0, KS_FPS_15, KS_FPS_30, KS_FPS_COUNT } ks_fps;

typedef enum ks_wired_sync_mode {
    KS_SYNC_STANDALONE = 0,
    KS_SYNC_MASTER,
    KS_SYNC_SUBORDINATE,
    KS_SYNC_MODE_COUNT
} ks_wired_sync_mode;

typedef enum ks_powerline { KS_POWERLINE_50HZ = 1, KS_POWERLINE_60HZ = 2 } ks_powerline;

/* Which instant of a frame the device timestamp names. The seed document says master and
 * subordinate report Start of Frame and a standalone device Center of Frame; the SDK header
 * (k4a_image_get_device_timestamp_usec) documents mid-exposure in every mode and the SDK's
 * multi-device hardware test checks it. The choice is explicit everywhere a timestamp is
 * interpreted, and it is made by the ks_ts_* functions below only (docs/hardware-tables.md). */
typedef enum ks_ts_convention {
    KS_TS_SEED = 0,       /* start of frame when master/subordinate, center when standalone */
    KS_TS_MID_EXPOSURE,   /* center of exposure in every mode (SDK header): the default */
    KS_TS_AUTO,           /* measured from the frames (ks_ts_convention_detect); until measured it
                             reads timestamps as KS_TS_MID_EXPOSURE */
    KS_TS_CONVENTION_COUNT
} ks_ts_convention;

typedef struct ks_depth_mode_info {
    ks_depth_mode mode;
    const char *name;          /* "NFOV_UNBINNED" (SDK, k4arecorder -d and recording tag spelling) */
    int width, height;         /* output image size */
    unsigned fps_mask;         /* bit (1u << ks_fps) set when allowed */
    int exposure_us;           /* nominal exposure from the hardware spec (12800, 20300, 1600) */
    int laser_pulses;          /* 0 for passive IR */
    int pulse_width_us;
    int idle_periods;
    int idle_time_us;
    int binning;               /* 1 unbinned, 2 for 2x2 binned */
    int sensor_width, sensor_height; /* native sensor grid the calibration is normalized to (1024x1024) */
    int crop_x, crop_y;        /* crop of the binned sensor image, in output pixels */
    bool wide;                 /* wide field of view (WFOV) */
} ks_depth_mode_info;

typedef struct ks_color_resolution_info {
    ks_color_resolution resolution;
    const char *name;          /* "720P" (SDK spelling) */
    const char *recorder_name; /* "720p" (k4arecorder -c spelling) */
    int width, height;
    unsigned format_mask;      /* bit (1u << ks_image_format) set when allowed */
    unsigned fps_mask;
} ks_color_resolution_info;

/* Table lookups; NULL for OFF or out of range. */
const ks_depth_mode_info *ks_depth_mode_get(ks_depth_mode mode);
const ks_color_resolution_info *ks_color_resolution_get(ks_color_resolution res);

/* Name <-> enum, case-insensitive on parse; parse returns false when unknown. */
const char *ks_depth_mode_name(ks_depth_mode mode);            /* "OFF" for KS_DEPTH_OFF */
bool ks_depth_mode_parse(const char *s, ks_depth_mode *out);
const char *ks_color_resolution_name(ks_color_resolution res); /* "OFF" for KS_COLOR_OFF */
bool ks_color_resolution_parse(const char *s, ks_color_resolution *out); /* "720P", "720p", "1080p", "OFF" */
const char *ks_image_format_name(ks_image_format f);           /* "MJPG", "NV12", "YUY2", "BGRA32", "DEPTH16"... */
bool ks_image_format_parse(const char *s, ks_image_format *out);
const char *ks_image_format_fourcc(ks_image_format f);          /* "MJPG","NV12","YUY2","BGRA","b16g"; NULL if none */
const char *ks_wired_sync_mode_name(ks_wired_sync_mode m);      /* "STANDALONE", "MASTER", "SUBORDINATE" */
bool ks_wired_sync_mode_parse(const char *s, ks_wired_sync_mode *out);
const char *ks_ts_convention_name(ks_ts_convention c);          /* "seed", "mid-exposure", "auto" */
bool ks_ts_convention_parse(const char *s, ks_ts_convention *out);

/* The ONE place a device timestamp is read under a convention (the matcher, the statistics, align
 * and the simulator call these). ts_us is the device timestamp, exposure_us the image's exposure.
 * True when the timestamp names the start of the exposure (seed convention, synced device). */
bool ks_ts_is_start_of_frame(ks_ts_convention c, ks_wired_sync_mode mode);
double ks_ts_color_start_us(ks_ts_convention c, ks_wired_sync_mode mode, double ts_us, double exposure_us);
double ks_ts_depth_center_us(ks_ts_convention c, ks_wired_sync_mode mode, double ts_us, double exposure_us);
/* What (depth ts - colour ts) - planned depth delay is under convention c: 0 for mid-exposure (and
 * for standalone devices), (colour exposure - depth exposure) / 2 for the seed's start of frame. */
double ks_ts_depth_minus_color_residual_us(ks_ts_convention c, ks_wired_sync_mode mode, double color_exposure_us,
                                           double depth_exposure_us);
/* Decides which convention devices follow from the measured median of (depth ts - colour ts) -
 * planned depth delay (`measured_us`) and what the seed convention predicts for it
 * (`seed_residual_us`, the function above). Returns KS_TS_SEED or KS_TS_MID_EXPOSURE when the
 * measurement is within the SDK's tolerance (ks_sdk_sync_tolerance_us at 30 fps, 110 us) of one
 * prediction and clearly away from the other; KS_TS_AUTO (undecided) when the two predictions are
 * closer than twice the tolerance (equal exposures, standalone device) or the figure matches
 * neither. */
ks_ts_convention ks_ts_convention_detect(double measured_us, double seed_residual_us);

/* Frame rates. */
int ks_fps_hz(ks_fps fps);                 /* 5, 15, 30; 0 if invalid */
bool ks_fps_from_hz(int hz, ks_fps *out);
int ks_frame_period_us(ks_fps fps);        /* P: 200000, 66666, 33333 (integer us, as the SDK) */
double ks_frame_period_exact_us(ks_fps fps); /* 1e6 / hz */

/* Depth laser timing. */
int ks_depth_laser_window_us(ks_depth_mode mode);  /* pulses*width + idle_periods*idle_time; 0 passive/off */
int ks_depth_pulse_pitch_us(ks_depth_mode mode);   /* start-to-start distance of two pulses: width + idle time */
/* Extra margin the seed adds to the pulse width for camera-vs-firmware clock differences (35 us). */
int ks_laser_clock_margin_us(void);
/* Default guard between pulse starts of two devices: pulse width + clock margin (160 us for every laser mode). */
int ks_laser_default_guard_us(ks_depth_mode mode);

/* Manual color exposure. The device rounds a request up to the next table entry. */
const int *ks_exposure_table(ks_powerline pl, int *count);
/* Rounded-up exposure in us; a request above the largest entry gives the largest entry. */
int ks_exposure_round_up(ks_powerline pl, int requested_us);
int ks_exposure_min_us(void);
int ks_exposure_max_us(ks_powerline pl);

/* Firmware delay quantum: delays reach the firmware as 90 kHz ticks, usec*9/100 truncated. */
int ks_delay_ticks_hz(void);                  /* 90000 */
int64_t ks_delay_us_to_ticks(int64_t usec);   /* truncated toward zero, like the SDK */
double ks_delay_ticks_to_us(int64_t ticks);   /* exact effective delay in us */
double ks_delay_effective_us(int64_t usec);   /* what the firmware really applies for a requested usec */
/* Smallest usec whose effective delay is >= want_us (for want_us >= 0). */
int64_t ks_delay_usec_at_least(double want_us);

/* Sync wiring limits. */
int ks_max_daisy_chain_subordinates(void);  /* 8 */
int ks_max_star_subordinates(void);         /* 2 */
double ks_max_cable_length_m(void);         /* 10 (cables must be shorter) */
int ks_tested_max_devices(void);            /* 10, what Microsoft tested */

/* External trigger spec. */
typedef struct ks_trigger_spec {
    double min_pulse_width_us;  /* pulse must be strictly wider: 8 */
    double voltage_v;           /* 5 V TTL/CMOS */
    double voltage_tolerance_v; /* accepted deviation from voltage_v (TTL high threshold margin) */
    double min_drive_ma;        /* >= 8 mA */
    double frequency_tolerance_ppm; /* "precisely": deviation accepted as crystal error (project choice) */
    /* (added) the input threshold: 0.7 x Vcc = 3.5 V (a Microsoft engineer, SDK issue #1844); a high
     * level below it is not seen, between it and voltage_v - tolerance it works with little margin */
    double min_high_v;
} ks_trigger_spec;
const ks_trigger_spec *ks_trigger_spec_get(void);
/* True if hz is one of the trigger frequencies the master accepts (30, 15, 5) within the ppm tolerance. */
bool ks_trigger_frequency_supported(double hz, ks_fps *fps_out);

/* Waits and tolerances of the SDK tools. */
int ks_recorder_subordinate_wait_s(void);   /* 360 */
int ks_recorder_default_wait_s(void);       /* 60 */
int ks_color_alignment_target_us(void);     /* 100: color of all devices within this of the master */
int ks_sdk_sync_tolerance_us(ks_fps fps);   /* 110, 220, 660: the SDK's two-device hardware test */
int ks_usbfs_default_mb(void);              /* 16 */
int ks_usbfs_recommended_mb(int devices_on_host); /* 16 for one device, 32 and up for more */

/* USB bandwidth a device needs for a configuration, in MB/s: colour (uncompressed planes or MJPEG
 * estimate) + the depth camera's raw payload per frame (ks_depth_raw_payload_bytes), times the fps. */
double ks_stream_bandwidth_mbps(ks_color_resolution res, ks_image_format fmt, ks_depth_mode depth, ks_fps fps);
/* Usable bandwidth of one USB 3 controller, MB/s. */
double ks_usb3_controller_bandwidth_mbps(void);

/* The operating range of a depth mode in mm (hardware specification: NFOV unbinned 500-3860, NFOV
 * 2x2 binned 500-5460, WFOV 2x2 binned 250-2880, WFOV unbinned 250-2210). false for PASSIVE_IR and OFF. */
bool ks_depth_mode_range_mm(ks_depth_mode mode, int *min_mm, int *max_mm);
/* Bytes per frame the depth camera sends over USB for a mode (the raw sensor payload the host's depth
 * engine turns into depth and IR; Sensor SDK depthcommands.h: NFOV modes 5310760, WFOV 2x2 binned
 * 3777232, WFOV unbinned 9438664, passive IR 1678024). 0 for OFF. */
long ks_depth_raw_payload_bytes(ks_depth_mode mode);

/* IMU samples per second the device reports (accelerometer and
 * gyroscope sampled together at 1.6 kHz). */
int ks_imu_sample_rate_hz(void);

/* The IMU's noise and bias. Noise: the standard deviations an Azure Kinect's factory calibration states
 * (InertialSensors Noise: accelerometer 0.0107 m/s^2, gyro 0.00095 rad/s, the same in the real fixture
 * and the synthesized calibrations); bias: magnitudes of a real device's calibrated bias (accelerometer
 * 0.141 m/s^2, gyro 0.00039 rad/s), rounded up as bounds for a per-device draw (project choice). */
typedef struct ks_imu_spec {
    double gravity_mps2;       /* 9.81 */
    double accel_noise_mps2;   /* per sample, standard deviation */
    double gyro_noise_rads;
    double accel_bias_mps2;    /* bound of the per-axis bias */
    double gyro_bias_rads;
} ks_imu_spec;
const ks_imu_spec *ks_imu_spec_get(void);

/* Hosts of one rig whose clocks disagree by more than
 * this (us) get a warning (issue 8: host timestamps of different hosts then cannot be compared). */
int ks_host_clock_agreement_limit_us(void); /* 1000 */

#ifdef __cplusplus
}
#endif
#endif
