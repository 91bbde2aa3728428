/* The hardware tables (kinsync/timing.h). This is the only file that holds Azure Kinect numbers.
 *
 * Laser timing and modes: Azure Kinect DK hardware specification, "depth sensor raw timing".
 * Sync rules and trigger spec: "Synchronize multiple Azure Kinect DK devices" and the recorder guide.
 * Exposure steps, 90 kHz delay ticks, SDK tolerances: Azure Kinect Sensor SDK 1.4 sources.
 * Values marked "project choice" are not from Microsoft and are documented in docs/hardware-tables.md. */
#include "kinsync/timing.h"

#include <math.h>
#include <stddef.h>
#include <strings.h>

#define FPS_BIT(f) (1u << (f))
#define ALL_FPS (FPS_BIT(KS_FPS_5) | FPS_BIT(KS_FPS_15) | FPS_BIT(KS_FPS_30))
#define FMT_BIT(f) (1u << (f))

static const ks_depth_mode_info depth_modes[KS_DEPTH_MODE_COUNT] = {
    [KS_DEPTH_NFOV_2X2BINNED] = {KS_DEPTH_NFOV_2X2BINNED, "NFOV_2X2BINNED", 320, 288, ALL_FPS, 12800,
                                 9, 125, 8, 1450, 2, 1024, 1024, 96, 90, false},
    [KS_DEPTH_NFOV_UNBINNED] = {KS_DEPTH_NFOV_UNBINNED, "NFOV_UNBINNED", 640, 576, ALL_FPS, 12800,
                                9, 125, 8, 1450, 1, 1024, 1024, 192, 180, false},
    [KS_DEPTH_WFOV_2X2BINNED] = {KS_DEPTH_WFOV_2X2BINNED, "WFOV_2X2BINNED", 512, 512, ALL_FPS, 12800,
                                 9, 125, 8, 1450, 2, 1024, 1024, 0, 0, true},
    [KS_DEPTH_WFOV_UNBINNED] = {KS_DEPTH_WFOV_UNBINNED, "WFOV_UNBINNED", 1024, 1024,
                                FPS_BIT(KS_FPS_5) | FPS_BIT(KS_FPS_15), 20300,
                                9, 125, 8, 2390, 1, 1024, 1024, 0, 0, true},
    [KS_DEPTH_PASSIVE_IR] = {KS_DEPTH_PASSIVE_IR, "PASSIVE_IR", 1024, 1024, ALL_FPS, 1600,
                             0, 0, 0, 0, 1, 1024, 1024, 0, 0, true},
};

#define FMT_720 (FMT_BIT(KS_FORMAT_MJPG) | FMT_BIT(KS_FORMAT_YUY2) | FMT_BIT(KS_FORMAT_NV12) | FMT_BIT(KS_FORMAT_BGRA32))
#define FMT_HI (FMT_BIT(KS_FORMAT_MJPG) | FMT_BIT(KS_FORMAT_BGRA32))

static const ks_color_resolution_info color_modes[KS_COLOR_RESOLUTION_COUNT] = {
    [KS_COLOR_720P] = {KS_COLOR_720P, "720P", "720p", 1280, 720, FMT_720, ALL_FPS},
    [KS_COLOR_1080P] = {KS_COLOR_1080P, "1080P", "1080p", 1920, 1080, FMT_HI, ALL_FPS},
    [KS_COLOR_1440P] = {KS_COLOR_1440P, "1440P", "1440p", 2560, 1440, FMT_HI, ALL_FPS},
    [KS_COLOR_1536P] = {KS_COLOR_1536P, "1536P", "1536p", 2048, 1536, FMT_HI, ALL_FPS},
    [KS_COLOR_2160P] = {KS_COLOR_2160P, "2160P", "2160p", 3840, 2160, FMT_HI, ALL_FPS},
    [KS_COLOR_3072P] = {KS_COLOR_3072P, "3072P", "3072p", 4096, 3072, FMT_HI,
                        FPS_BIT(KS_FPS_5) | FPS_BIT(KS_FPS_15)},
};

static const char *const format_names[KS_FORMAT_COUNT] = {
    "MJPG", "NV12", "YUY2", "BGRA32", "DEPTH16", "IR16", "CUSTOM8", "CUSTOM16", "CUSTOM",
};
static const char *const format_fourcc[KS_FORMAT_COUNT] = {
    "MJPG", "NV12", "YUY2", "BGRA", "b16g", "b16g", NULL, NULL, NULL,
};
static const char *const sync_names[KS_SYNC_MODE_COUNT] = {"STANDALONE", "MASTER", "SUBORDINATE"};
static const char *const ts_names[KS_TS_CONVENTION_COUNT] = {"seed", "mid-exposure", "auto"};

static const int fps_hz[KS_FPS_COUNT] = {5, 15, 30};
static const int frame_period_us[KS_FPS_COUNT] = {200000, 66666, 33333};

static const int exposure_50hz[] = {500, 1250, 2500, 10000, 20000, 30000, 40000,
                                    50000, 60000, 80000, 100000, 120000, 130000};
static const int exposure_60hz[] = {500, 1250, 2500, 8330, 16670, 33330, 41670,
                                    50000, 66670, 83330, 100000, 116670, 133330};

enum {
    LASER_CLOCK_MARGIN_US = 35, /* seed: 160 us minimum offset = 125 us pulse + clock differences */
    DELAY_TICK_HZ = 90000,
    DAISY_MAX_SUBORDINATES = 8,
    STAR_MAX_SUBORDINATES = 2,
    TESTED_MAX_DEVICES = 10,
    RECORDER_SUB_WAIT_S = 360,
    RECORDER_WAIT_S = 60,
    COLOR_ALIGNMENT_US = 100,
    HOST_CLOCK_AGREEMENT_US = 1000, /* issue 8: host clocks of one rig within 1 ms */
    USBFS_DEFAULT_MB = 16,
};
static const double MAX_CABLE_M = 10.0;
static const int sdk_sync_tolerance_us[KS_FPS_COUNT] = {660, 220, 110};

static const ks_trigger_spec trigger_spec = {
    .min_pulse_width_us = 8.0,
    .voltage_v = 5.0,
    .voltage_tolerance_v = 0.5,       /* project choice: 5 V TTL/CMOS +-10% */
    .min_drive_ma = 8.0,
    .frequency_tolerance_ppm = 100.0, /* project choice: a good crystal; "almost 30 Hz" is far outside */
    .min_high_v = 3.5,                /* 0.7 x Vcc (5 V): Microsoft in SDK issue #1844 */
};

/* USB: usable bulk bandwidth of one USB 3.0 controller, and bytes per pixel on the wire.
 * BGRA32 travels as MJPG and is converted on the host by the SDK. (project estimates) */
static const double USB3_USABLE_MBPS = 400.0;
static const double MJPG_BYTES_PER_PIXEL = 0.4;

/* Operating ranges (hardware specification, "depth camera supported operating modes") and the raw
 * payload per frame (Sensor SDK src/depth_mcu/depthcommands.h, SENSOR_MODE_*_SIZE). */
static const int depth_range_mm[KS_DEPTH_MODE_COUNT][2] = {
    [KS_DEPTH_NFOV_2X2BINNED] = {500, 5460},
    [KS_DEPTH_NFOV_UNBINNED] = {500, 3860},
    [KS_DEPTH_WFOV_2X2BINNED] = {250, 2880},
    [KS_DEPTH_WFOV_UNBINNED] = {250, 2210},
};
static const long depth_raw_payload[KS_DEPTH_MODE_COUNT] = {
    [KS_DEPTH_NFOV_2X2BINNED] = 5310760,
    [KS_DEPTH_NFOV_UNBINNED] = 5310760,
    [KS_DEPTH_WFOV_2X2BINNED] = 3777232,
    [KS_DEPTH_WFOV_UNBINNED] = 9438664,
    [KS_DEPTH_PASSIVE_IR] = 1678024,
};

bool ks_depth_mode_range_mm(ks_depth_mode mode, int *min_mm, int *max_mm)
{
    if (mode <= KS_DEPTH_OFF || mode >= KS_DEPTH_MODE_COUNT || depth_range_mm[mode][1] == 0)
        return false;
    if (min_mm)
        *min_mm = depth_range_mm[mode][0];
    if (max_mm)
        *max_mm = depth_range_mm[mode][1];
    return true;
}

long ks_depth_raw_payload_bytes(ks_depth_mode mode)
{
    return (mode > KS_DEPTH_OFF && mode < KS_DEPTH_MODE_COUNT) ? depth_raw_payload[mode] : 0;
}

const ks_depth_mode_info *ks_depth_mode_get(ks_depth_mode mode)
{
    if (mode <= KS_DEPTH_OFF || mode >= KS_DEPTH_MODE_COUNT)
        return NULL;
    return &depth_modes[mode];
}

const ks_color_resolution_info *ks_color_resolution_get(ks_color_resolution res)
{
    if (res <= KS_COLOR_OFF || res >= KS_COLOR_RESOLUTION_COUNT)
        return NULL;
    return &color_modes[res];
}

const char *ks_depth_mode_name(ks_depth_mode mode)
{
    const ks_depth_mode_info *m = ks_depth_mode_get(mode);
    return m ? m->name : (mode == KS_DEPTH_OFF ? "OFF" : "INVALID");
}

bool ks_depth_mode_parse(const char *s, ks_depth_mode *out)
{
    if (!s)
        return false;
    if (strcasecmp(s, "OFF") == 0) {
        *out = KS_DEPTH_OFF;
        return true;
    }
    for (int m = 1; m < KS_DEPTH_MODE_COUNT; m++) {
        if (strcasecmp(s, depth_modes[m].name) == 0) {
            *out = (ks_depth_mode)m;
            return true;
        }
    }
    return false;
}

const char *ks_color_resolution_name(ks_color_resolution res)
{
    const ks_color_resolution_info *c = ks_color_resolution_get(res);
    return c ? c->name : (res == KS_COLOR_OFF ? "OFF" : "INVALID");
}

bool ks_color_resolution_parse(const char *s, ks_color_resolution *out)
{
    if (!s)
        return false;
    if (strcasecmp(s, "OFF") == 0) {
        *out = KS_COLOR_OFF;
        return true;
    }
    for (int r = 1; r < KS_COLOR_RESOLUTION_COUNT; r++) {
        if (strcasecmp(s, color_modes[r].name) == 0) {
            *out = (ks_color_resolution)r;
            return true;
        }
    }
    return false;
}

const char *ks_image_format_name(ks_image_format f)
{
    return (f >= 0 && f < KS_FORMAT_COUNT) ? format_names[f] : "INVALID";
}

bool ks_image_format_parse(const char *s, ks_image_format *out)
{
    if (!s)
        return false;
    for (int f = 0; f < KS_FORMAT_COUNT; f++) {
        if (strcasecmp(s, format_names[f]) == 0) {
            *out = (ks_image_format)f;
            return true;
        }
    }
    if (strcasecmp(s, "MJPEG") == 0 || strcasecmp(s, "BGRA") == 0) {
        *out = strcasecmp(s, "BGRA") == 0 ? KS_FORMAT_BGRA32 : KS_FORMAT_MJPG;
        return true;
    }
    return false;
}

const char *ks_image_format_fourcc(ks_image_format f)
{
    return (f >= 0 && f < KS_FORMAT_COUNT) ? format_fourcc[f] : NULL;
}

const char *ks_wired_sync_mode_name(ks_wired_sync_mode m)
{
    return (m >= 0 && m < KS_SYNC_MODE_COUNT) ? sync_names[m] : "INVALID";
}

bool ks_wired_sync_mode_parse(const char *s, ks_wired_sync_mode *out)
{
    if (!s)
        return false;
    for (int m = 0; m < KS_SYNC_MODE_COUNT; m++) {
        if (strcasecmp(s, sync_names[m]) == 0) {
            *out = (ks_wired_sync_mode)m;
            return true;
        }
    }
    return false;
}

const char *ks_ts_convention_name(ks_ts_convention c)
{
    return (c >= 0 && c < KS_TS_CONVENTION_COUNT) ? ts_names[c] : "invalid";
}

bool ks_ts_convention_parse(const char *s, ks_ts_convention *out)
{
    if (!s)
        return false;
    for (int c = 0; c < KS_TS_CONVENTION_COUNT; c++) {
        if (strcasecmp(s, ts_names[c]) == 0) {
            *out = (ks_ts_convention)c;
            return true;
        }
    }
    return false;
}

bool ks_ts_is_start_of_frame(ks_ts_convention c, ks_wired_sync_mode mode)
{
    return c == KS_TS_SEED && mode != KS_SYNC_STANDALONE;
}

double ks_ts_color_start_us(ks_ts_convention c, ks_wired_sync_mode mode, double ts_us, double exposure_us)
{
    return ks_ts_is_start_of_frame(c, mode) ? ts_us : ts_us - exposure_us / 2.0;
}

double ks_ts_depth_center_us(ks_ts_convention c, ks_wired_sync_mode mode, double ts_us, double exposure_us)
{
    return ks_ts_is_start_of_frame(c, mode) ? ts_us + exposure_us / 2.0 : ts_us;
}

double ks_ts_depth_minus_color_residual_us(ks_ts_convention c, ks_wired_sync_mode mode, double color_exposure_us,
                                           double depth_exposure_us)
{
    /* depth centre - colour centre = planned delay; subtract what each conversion adds */
    return ks_ts_is_start_of_frame(c, mode) ? (color_exposure_us - depth_exposure_us) / 2.0 : 0.0;
}

ks_ts_convention ks_ts_convention_detect(double measured_us, double seed_residual_us)
{
    const double tol = ks_sdk_sync_tolerance_us(KS_FPS_30);
    if (!isfinite(measured_us) || !isfinite(seed_residual_us) || fabs(seed_residual_us) < 2 * tol)
        return KS_TS_AUTO;
    bool mid = fabs(measured_us) <= tol, seed = fabs(measured_us - seed_residual_us) <= tol;
    if (mid == seed)
        return KS_TS_AUTO;
    return mid ? KS_TS_MID_EXPOSURE : KS_TS_SEED;
}

int ks_fps_hz(ks_fps fps)
{
    return (fps >= 0 && fps < KS_FPS_COUNT) ? fps_hz[fps] : 0;
}

bool ks_fps_from_hz(int hz, ks_fps *out)
{
    for (int f = 0; f < KS_FPS_COUNT; f++) {
        if (fps_hz[f] == hz) {
            *out = (ks_fps)f;
            return true;
        }
    }
    return false;
}

int ks_frame_period_us(ks_fps fps)
{
    return (fps >= 0 && fps < KS_FPS_COUNT) ? frame_period_us[fps] : 0;
}

double ks_frame_period_exact_us(ks_fps fps)
{
    int hz = ks_fps_hz(fps);
    return hz ? 1e6 / hz : 0.0;
}

int ks_depth_laser_window_us(ks_depth_mode mode)
{
    const ks_depth_mode_info *m = ks_depth_mode_get(mode);
    if (!m || m->laser_pulses == 0)
        return 0;
    return m->laser_pulses * m->pulse_width_us + m->idle_periods * m->idle_time_us;
}

int ks_depth_pulse_pitch_us(ks_depth_mode mode)
{
    const ks_depth_mode_info *m = ks_depth_mode_get(mode);
    if (!m || m->laser_pulses == 0)
        return 0;
    return m->pulse_width_us + m->idle_time_us;
}

int ks_laser_clock_margin_us(void)
{
    return LASER_CLOCK_MARGIN_US;
}

int ks_laser_default_guard_us(ks_depth_mode mode)
{
    const ks_depth_mode_info *m = ks_depth_mode_get(mode);
    if (!m || m->laser_pulses == 0)
        return 0;
    return m->pulse_width_us + LASER_CLOCK_MARGIN_US;
}

const int *ks_exposure_table(ks_powerline pl, int *count)
{
    if (pl == KS_POWERLINE_60HZ) {
        *count = (int)(sizeof exposure_60hz / sizeof exposure_60hz[0]);
        return exposure_60hz;
    }
    *count = (int)(sizeof exposure_50hz / sizeof exposure_50hz[0]);
    return exposure_50hz;
}

int ks_exposure_round_up(ks_powerline pl, int requested_us)
{
    int n;
    const int *t = ks_exposure_table(pl, &n);
    for (int i = 0; i < n; i++)
        if (t[i] >= requested_us)
            return t[i];
    return t[n - 1];
}

int ks_exposure_min_us(void)
{
    return exposure_50hz[0];
}

int ks_exposure_max_us(ks_powerline pl)
{
    int n;
    const int *t = ks_exposure_table(pl, &n);
    return t[n - 1];
}

int ks_delay_ticks_hz(void)
{
    return DELAY_TICK_HZ;
}

int64_t ks_delay_us_to_ticks(int64_t usec)
{
    return usec * (DELAY_TICK_HZ / 10000) / 100; /* usec*9/100, C division truncates toward zero */
}

double ks_delay_ticks_to_us(int64_t ticks)
{
    return (double)ticks * 1e6 / DELAY_TICK_HZ;
}

double ks_delay_effective_us(int64_t usec)
{
    return ks_delay_ticks_to_us(ks_delay_us_to_ticks(usec));
}

int64_t ks_delay_usec_at_least(double want_us)
{
    if (want_us <= 0)
        return 0;
    int64_t ticks = (int64_t)ceil(want_us * DELAY_TICK_HZ / 1e6 - 1e-9);
    /* smallest usec with usec*9/100 >= ticks is ceil(ticks*100/9) */
    int64_t usec = (ticks * 100 + 8) / 9;
    while (ks_delay_ticks_to_us(ks_delay_us_to_ticks(usec)) < want_us - 1e-9)
        usec++;
    return usec;
}

int ks_max_daisy_chain_subordinates(void) { return DAISY_MAX_SUBORDINATES; }
int ks_max_star_subordinates(void) { return STAR_MAX_SUBORDINATES; }
double ks_max_cable_length_m(void) { return MAX_CABLE_M; }
int ks_tested_max_devices(void) { return TESTED_MAX_DEVICES; }

const ks_trigger_spec *ks_trigger_spec_get(void)
{
    return &trigger_spec;
}

bool ks_trigger_frequency_supported(double hz, ks_fps *fps_out)
{
    for (int f = 0; f < KS_FPS_COUNT; f++) {
        double nominal = fps_hz[f];
        if (fabs(hz - nominal) <= nominal * trigger_spec.frequency_tolerance_ppm * 1e-6) {
            if (fps_out)
                *fps_out = (ks_fps)f;
            return true;
        }
    }
    return false;
}

int ks_recorder_subordinate_wait_s(void) { return RECORDER_SUB_WAIT_S; }
int ks_recorder_default_wait_s(void) { return RECORDER_WAIT_S; }
int ks_color_alignment_target_us(void) { return COLOR_ALIGNMENT_US; }
int ks_host_clock_agreement_limit_us(void) { return HOST_CLOCK_AGREEMENT_US; }

int ks_sdk_sync_tolerance_us(ks_fps fps)
{
    return (fps >= 0 && fps < KS_FPS_COUNT) ? sdk_sync_tolerance_us[fps] : 0;
}

int ks_usbfs_default_mb(void) { return USBFS_DEFAULT_MB; }

int ks_usbfs_recommended_mb(int devices_on_host)
{
    /* The seed: the 16 MB default carries one device; 32 MB (twice) is its example for more.
     * Project choice: 32 MB per device beyond the first pair keeps headroom for 4K MJPEG. */
    if (devices_on_host <= 1)
        return USBFS_DEFAULT_MB;
    return 2 * USBFS_DEFAULT_MB * (devices_on_host > 2 ? devices_on_host - 1 : 1);
}

double ks_stream_bandwidth_mbps(ks_color_resolution res, ks_image_format fmt, ks_depth_mode depth, ks_fps fps)
{
    double hz = ks_fps_hz(fps), bytes = 0;
    const ks_color_resolution_info *c = ks_color_resolution_get(res);
    if (c) {
        double px = (double)c->width * c->height, bpp;
        switch (fmt) {
        case KS_FORMAT_NV12: bpp = 1.5; break;
        case KS_FORMAT_YUY2: bpp = 2.0; break;
        default: bpp = MJPG_BYTES_PER_PIXEL; break; /* MJPG, and BGRA32 (decoded on the host) */
        }
        bytes += px * bpp;
    }
    /* depth: the raw sensor payload the depth camera sends (the host's depth engine makes depth and
     * IR of it), not the size of the output images */
    bytes += (double)ks_depth_raw_payload_bytes(depth);
    return bytes * hz / 1e6;
}

double ks_usb3_controller_bandwidth_mbps(void)
{
    return USB3_USABLE_MBPS;
}

static const ks_imu_spec imu_spec = {
    .gravity_mps2 = 9.81,
    .accel_noise_mps2 = 0.0107,
    .gyro_noise_rads = 0.00095,
    .accel_bias_mps2 = 0.15,
    .gyro_bias_rads = 0.002,
};

const ks_imu_spec *ks_imu_spec_get(void)
{
    return &imu_spec;
}

int ks_imu_sample_rate_hz(void)
{
    return 1600; /* the IMU's sample rate (Azure Kinect hardware specification: 1.6 kHz) */
}
