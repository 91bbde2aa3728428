/* kinsync/syncstats.h: how well a rig is synchronized, measured from its frame sets.
 *
 * An accumulator takes frame sets (kinsync/matcher.h) one by one and, at the end, produces figures
 * per device and for the rig plus a list of checks (PASS / WARN / FAIL with figures and a message
 * naming the device and the fix). It is backend independent: the live session feeds it, and so can
 * anything that has frame sets (recordings).
 * Ownership and threads: an accumulator is the caller's (or the session's, ks_session_stats) and is
 * used from one thread at a time.
 *
 * Definitions (all in us unless named otherwise):
 *  - colour skew of device d in a set: key_d - key_ref (matcher.h: colour start converted to one
 *    convention, the planned subordinate delay removed). Target: |skew| <= ks_color_alignment_target_us().
 *  - depth offset error: (depth centre - colour centre) - planned effective depth delay.
 *  - inter-device drift: slope of the skew series against time (Theil-Sen), ppm.
 *  - device-to-host clock fit: host_ns = a + b * device_us, Theil-Sen on up to 128 evenly spread
 *    samples, so every frame can carry host time.
 *  - frame offset: median over sets of (host_d - host_ref) / period, rounded. Non-zero means the
 *    device's clock was zeroed by a different sync pulse than the master's: the master was started
 *    before this subordinate. */
#ifndef KINSYNC_SYNCSTATS_H
#define KINSYNC_SYNCSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/matcher.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the content of a frame's images says (ks_match_frame.content). */
typedef enum ks_frame_content {
    KS_CONTENT_UNKNOWN = 0, /* not measured */
    KS_CONTENT_OK,
    KS_CONTENT_BLANK,       /* every sampled byte of the colour image is the same (black frame) */
    KS_CONTENT_CORRUPT      /* MJPG without its start/end markers: decoders show it pink/grey */
} ks_frame_content;
/* Measures a colour image (cheap: markers of an MJPG, 64 sampled bytes of a raw image). */
ks_frame_content ks_color_image_content(const ks_image *img);

typedef enum ks_check_status { KS_CHECK_PASS = 0, KS_CHECK_WARN, KS_CHECK_FAIL, KS_CHECK_SKIP } ks_check_status;
const char *ks_check_status_name(ks_check_status s); /* "PASS", "WARN", "FAIL", "SKIP" */

#define KS_SYNC_MAX_CHECKS 48

typedef struct ks_sync_check {
    char id[32];          /* stable: "signal", "start-order", "color-alignment", "depth-offsets", "dropped-frames",
                             "clock-drift", "auto-exposure", "exposure-set-once", "laser-overlap",
                             "laser-schedule", "laser-groups", "external-trigger", "firmware", "jacks",
                             "timestamps", "device-lost", "frame-content", "run-length" (docs/verify.md) */
    ks_check_status status;
    int device;           /* -1 for the rig */
    int other;            /* second device concerned, -1 if none */
    double value;         /* the figure the status was decided on */
    char unit[8];         /* "us", "ppm", "frames", "%" ... */
    char message[400];    /* what was measured, naming devices; the fix when not PASS */
} ks_sync_check;

/* What the accumulator needs to know besides the frames. */
typedef struct ks_sync_setup {
    int device_count;
    char names[KS_MATCH_MAX_DEVICES][64];
    ks_matcher_config match;       /* the matcher's configuration (offsets, convention, reference) */
    ks_depth_mode depth_mode;      /* for the laser timing check */
    int groups[KS_MATCH_MAX_DEVICES]; /* interference group per device */
    bool external_trigger;         /* the reference follows an external trigger */
    bool auto_exposure[KS_MATCH_MAX_DEVICES];  /* control read back in auto mode */
    int exposure_sets[KS_MATCH_MAX_DEVICES];   /* exposure control writes while streaming */
    bool streaming_failed[KS_MATCH_MAX_DEVICES]; /* e.g. disconnected */
    int host[KS_MATCH_MAX_DEVICES];  /* host id per device: host times are compared only within one host */
    /* added for truthful verdicts (additive; zero = unknown) */
    char failure[KS_MATCH_MAX_DEVICES][160]; /* why a device stopped during capture ("" = it did not) */
    int upstream[KS_MATCH_MAX_DEVICES];  /* device feeding its Sync In, -1 none (master, trigger-fed) */
    bool trigger_fed[KS_MATCH_MAX_DEVICES]; /* the external trigger goes into its Sync In */
    bool started_as_master[KS_MATCH_MAX_DEVICES]; /* wired sync mode it was started with is master */
    int usbfs_mb[KS_MATCH_MAX_DEVICES];  /* usbfs memory limit of its host, 0 unknown */
    int devices_on_host[KS_MATCH_MAX_DEVICES]; /* devices sharing its host (for the usbfs need) */
    double requested_seconds;            /* how long the caller meant to measure (0 unknown) */
    bool start_order_known_wrong;        /* the caller started the master before the subordinates */
    bool light_known;              /* shared_light was measured (a simulator knows the geometry) */
    int shared_light[KS_MATCH_MAX_DEVICES][KS_MATCH_MAX_DEVICES]; /* [a][b]: pixels of a that b's laser lights;
                                    * the session measures only pairs in different groups (0 for the others) */
} ks_sync_setup;

typedef struct ks_sync_device {
    uint64_t frames;               /* frames seen in sets */
    uint64_t missing;              /* sets without this device */
    uint64_t gaps;                 /* frames missing from its own sequence (drops) */
    uint64_t skew_n;
    double skew_mean_us, skew_max_abs_us, skew_p99_abs_us;
    double skew_first_us, skew_last_us; /* mean of the first / last tenth of the run */
    uint64_t depth_n;
    double depth_offset_mean_us;   /* measured depth centre - colour centre */
    double depth_offset_err_max_us;/* largest |measured - planned| */
    double drift_vs_ref_ppm;       /* slope of the skew series */
    double host_rate;              /* b of the host fit (ns per device us; 1000 nominal) */
    double host_offset_ns;         /* a of the host fit */
    double host_fit_mad_us;        /* median absolute residual of the fit */
    bool host_fit_ok;
    int frame_offset;              /* see the header comment */
    int exposure_changes;          /* colour exposure value changed between consecutive frames */
    uint64_t exposure_min_us, exposure_max_us;
    double invalid_fraction_mean;  /* -1 unknown */
    double invalid_fraction_max;
    double period_ppm;             /* measured frame period vs nominal on the device clock */
    double laser_start_us;         /* measured first-pulse start relative to the reference colour start */
    /* added (additive) */
    double first_key_us, last_key_us; /* first / last frame of the device, reference time base */
    double ts_residual_us;         /* median (depth ts - colour ts) - planned depth delay, NAN unknown */
    double ts_seed_residual_us;    /* what the seed's start of frame predicts for it (0 mid-exposure) */
    double depth_offset_jump_us;   /* largest step of the colour-to-depth offset during the run */
    double depth_offset_jump_at_us;/* key where it happened */
    uint64_t longest_outage;       /* longest run of consecutive sets without this device */
    double outage_at_us;           /* key of the first set of that run */
    uint64_t bad_content;          /* frames whose image content is invalid (black / corrupt) */
    uint64_t blank_frames;         /* frames with a blank colour image */
} ks_sync_device;

typedef struct ks_syncstats ks_syncstats;

ks_status ks_syncstats_create(const ks_sync_setup *setup, ks_syncstats **out, ks_error *err);
void ks_syncstats_free(ks_syncstats *s);
/* Accumulates one set (memory stays bounded: series are decimated beyond a fixed size). */
void ks_syncstats_add(ks_syncstats *s, const ks_frame_set *set);
/* Adds matcher counters (gaps, late frames) to the figures. */
void ks_syncstats_set_matcher_stats(ks_syncstats *s, const ks_matcher_stats *ms);
/* Per-device exposure writes and failures known only to the session (updates the setup). */
ks_sync_setup *ks_syncstats_setup(ks_syncstats *s);
/* Adds a check computed outside (firmware, jacks, laser schedule ...). */
void ks_syncstats_add_check(ks_syncstats *s, const ks_sync_check *c);

/* Computes the figures and checks. Call after the last set; may be called again after more sets. */
void ks_syncstats_finish(ks_syncstats *s);
const ks_sync_device *ks_syncstats_device(const ks_syncstats *s, int d);
int ks_syncstats_check_count(const ks_syncstats *s);
const ks_sync_check *ks_syncstats_check(const ks_syncstats *s, int i);
/* The first check with this id (and device, or any device when device < -1), NULL if none. */
const ks_sync_check *ks_syncstats_find(const ks_syncstats *s, const char *id, int device);
/* True when no check is FAIL. The one verdict: the text result line, the JSON `passed` and
 * `result` and the exit status of verify all come from it. */
bool ks_syncstats_passed(const ks_syncstats *s);
/* The timestamp convention the devices follow as measured (KS_TS_SEED or KS_TS_MID_EXPOSURE), or
 * KS_TS_AUTO when the frames cannot tell (check "timestamps" says why). After finish. */
ks_ts_convention ks_syncstats_timestamps(const ks_syncstats *s);
/* The convention the figures were computed with: the rig's, or the measured one for `auto`. */
ks_ts_convention ks_syncstats_timestamps_used(const ks_syncstats *s);
uint64_t ks_syncstats_sets(const ks_syncstats *s);
/* Host monotonic ns of a device timestamp through the device's fit (0 if the fit failed). */
uint64_t ks_syncstats_host_ns(const ks_syncstats *s, int d, double device_us);

/* The skew of device d in a set (key_d - key_ref), NAN when either lacks the frame. */
double ks_frame_set_skew_us(const ks_frame_set *set, int d, int ref);

/* Robust line fit y = a + b x (Theil-Sen over at most 128 evenly spread points). False if n < 2. */
bool ks_theil_sen(const double *x, const double *y, size_t n, double *a, double *b);

/* JSON document (schema "kinsync.verify/1", docs/verify.md); heap string, free(). */
char *ks_syncstats_to_json(const ks_syncstats *s);
/* HTML report with inline SVG: per-device skew histograms over time, the skew timeline, the
 * measured laser/colour timeline of one frame period, the checks. Written to a temp name, renamed. */
ks_status ks_syncstats_write_html(const ks_syncstats *s, const char *title, const char *path, ks_error *err);

/* ---- multi-host host time ---- */

/* The device-to-host clock fit on its own, as the accumulator computes it for host_rate /
 * host_offset_ns / host_fit_mad_us: host_ns = offset_ns + rate * device_us by Theil-Sen
 * (ks_theil_sen), and the median absolute residual. The agents of a multi-host rig use it on their
 * own frames (kinsync/net.h). */
typedef struct ks_host_fit {
    bool ok;             /* false: fewer than 2 samples, or no two distinct device times */
    double rate;         /* host ns per device us (1000 nominal) */
    double offset_ns;    /* host ns at device time 0, in the caller's host time base */
    double mad_us;       /* median |host_ns - fit| over the samples, us */
    uint64_t samples;    /* n */
} ks_host_fit;

/* Fits host_ns[i] against device_us[i] for i < n; out->ok false when it cannot. Nothing is kept. */
void ks_host_fit_compute(const double *device_us, const double *host_ns, size_t n, ks_host_fit *out);

#ifdef __cplusplus
}
#endif
#endif
