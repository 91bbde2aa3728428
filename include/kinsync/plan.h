/* kinsync/plan.h: the rig planner. From a validated rig it computes, for every device, the wired
 * sync mode, subordinate_delay_off_master_usec, depth_delay_off_color_usec and the start order, so
 * that the depth lasers of devices in one interference group never fire within the guard of each
 * other, and either all color cameras capture together (aim simultaneous) or the captures are spread
 * evenly over the frame period (aim interleaved, effective N x fps).
 *
 * Time model (all numbers from kinsync/timing.h): the master's color capture starts at t = 0. A
 * device's color starts at its effective subordinate delay c; its first laser pulse starts at
 * c + effective depth delay; pulse k starts at that + k * pitch (k = 0 .. pulses-1, pitch = pulse
 * width + idle time), and the pattern repeats every frame period P = 1e6 / fps. Delays act as
 * 90 kHz ticks (usec * 9 / 100 truncated), so every requested usec is chosen such that its
 * EFFECTIVE value gives the separation. The separation of two pulses is the cyclic distance
 * between their start times; the plan requires it to be >= the guard (default pulse width + clock
 * margin) for every pair of pulses of different devices in the same interference group.
 *
 * The proof (ks_plan_check_lasers) is computed independently of the planner: brute force over every
 * pulse pair from the requested usec values of the device configurations. */
#ifndef KINSYNC_PLAN_H
#define KINSYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/rig.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_PLAN_MAX_ALTERNATIVES 8

typedef struct ks_plan_options {
    int guard_us;       /* > 0 overrides the rig's guard (and the table default) */
    bool override_aim;  /* true: use `aim` instead of rig->aim */
    ks_aim aim;
} ks_plan_options;

typedef struct ks_plan_device {
    int index;                        /* rig device index (plan->devices[i].index == i) */
    ks_wired_sync_mode sync_mode;     /* from the validated role */
    int group;                        /* interference group (rig) */
    bool laser;                       /* the depth mode fires a laser (not OFF/PASSIVE_IR) */
    bool synced;                      /* master, or a subordinate the master's signal reaches */
    int chain_depth;                  /* 0 master, 1 first subordinate, ...; -1 unsynced standalone */
    uint32_t subordinate_delay_usec;  /* requested subordinate_delay_off_master_usec */
    double subordinate_delay_effective_us; /* what the firmware applies (tick-truncated) */
    int32_t depth_delay_usec;         /* requested depth_delay_off_color_usec */
    double depth_delay_effective_us;
    int start_position;               /* 1 = start first; the master is started last */
    double color_offset_us;           /* color capture start relative to the master's color */
    double laser_start_us;            /* first laser pulse start relative to the master's color (laser only) */
    int exposure_us;                  /* color exposure the device applies (table-rounded), 0 = auto */
    ks_device_config config;          /* the complete configuration; passes ks_device_config_check */
    /* (added) */
    bool trigger_head;                /* the external trigger feeds its Sync In: it runs as subordinate
                                       * (a device in master mode ignores Sync In) and starts last */
} ks_plan_device;

/* Result of the independent pulse check. */
typedef struct ks_plan_proof {
    int pairs_checked;          /* device pairs (same group, both with laser) examined */
    long pulse_pairs_checked;   /* pulse pairs examined */
    double min_separation_us;   /* smallest cyclic start-to-start distance; -1 when no pair */
    int device_a, device_b;     /* the pair with the smallest separation; -1 when no pair */
    double guard_us;            /* required separation */
    bool lasers_ok;             /* no pair, or min_separation_us >= guard_us */
    double color_spread_us;     /* largest |color offset| of a synced device from the master (simultaneous) */
    bool color_ok;              /* simultaneous: spread <= ks_color_alignment_target_us(); interleaved: true */
    int unsynced_pairs;         /* pairs in one group where a device runs standalone: its timing is
                                 * unrelated to the other's, so the pair counts as separation 0 */
} ks_plan_proof;

typedef struct ks_plan_alternative {
    char kind[24];      /* "fewer-devices", "lower-fps", "interleaved", "split-groups" */
    int value;          /* devices that fit / fps in Hz / effective fps / number of groups */
    char text[256];     /* one sentence for a person */
} ks_plan_alternative;

/* (added) The audit of delays chosen by hand in the rig file (docs/plan.md). */
typedef struct ks_plan_audit_device {
    bool given;                            /* the rig file gives this device's delays */
    long long subordinate_delay_usec;      /* as given (0 when not) */
    long long depth_delay_usec;
    double subordinate_delay_effective_us; /* after the firmware's tick truncation */
    double depth_delay_effective_us;
    double laser_start_us;                 /* first pulse, from the master's color capture */
} ks_plan_audit_device;

typedef struct ks_plan_audit {
    bool present;                          /* some device gives delays: they were audited */
    bool pass;                             /* they keep the guard, align color and pass the SDK rules */
    ks_plan_proof proof;                   /* ks_plan_check_lasers on the given delays */
    char verdict[512];                     /* "PASS: ..." or "FAIL: ..." with the figures */
    ks_plan_audit_device devices[KS_RIG_MAX_DEVICES];
} ks_plan_audit;

typedef struct ks_plan {
    bool feasible;                  /* all constraints hold (then proof.lasers_ok and proof.color_ok) */
    char reason[512];               /* why not, when !feasible; "" otherwise */
    ks_aim aim;
    ks_fps fps;
    double period_us;               /* exact frame period 1e6 / fps */
    int period_limit_us;            /* the SDK's integer P: delays are limited to 0..P / -P..P */
    int guard_us;                   /* required separation between two devices' pulse starts */
    double guard_step_us;           /* guard rounded up to whole delay ticks (160 -> 166.7) */
    int slots_per_gap;              /* floor(pitch / guard_step): devices that fit in one idle gap */
    int pulses, pulse_width_us, pitch_us, window_us; /* 0 without laser */
    bool lasers;                    /* the depth mode fires a laser */
    int device_count;
    ks_plan_device devices[KS_RIG_MAX_DEVICES];
    int start_order[KS_RIG_MAX_DEVICES]; /* device indices, first to start first (master last) */
    double effective_fps;           /* interleaved: N x fps over the synced devices; else fps */
    double spacing_error_us;        /* interleaved: largest |color offset - i*P/N| */
    ks_plan_proof proof;            /* ks_plan_check_lasers on this plan */
    int alternative_count;
    ks_plan_alternative alternatives[KS_PLAN_MAX_ALTERNATIVES];
    /* (added) how the lasers were placed (docs/plan.md): the quick placement by smallest delays,
     * else the exact search over every tick position */
    bool exact_search_used;         /* the quick placement failed in some group */
    long search_nodes;              /* nodes the exact search visited */
    int fail_fit;                   /* infeasible lasers: devices that fit in the failing group */
    bool fail_proven;               /* infeasible lasers: it is proven that not all fit (false: the
                                     * exact search stopped at its budget without a proof) */
    int fail_upper;                 /* proven: at most this many fit in the failing group */
    char fail_proof[32];            /* "exhaustive search", "pulse count" or "disjoint windows" */
    /* (added) what the plan costs (docs/plan.md) */
    bool trigger;                   /* an external trigger drives the rig: every device subordinate */
    double max_depth_color_us;      /* largest |effective depth delay|: depth and color of one device
                                     * are captured that far apart */
    double capture_spacing_us;      /* interleaved: frame period / synced devices; else 0 */
    bool exposures_overlap;         /* interleaved: the color exposure is longer than the spacing */
    ks_plan_audit audit;            /* the rig's own delays, when it gives some */
} ks_plan;

void ks_plan_options_init(ks_plan_options *opt);  /* no overrides */

/* Plans a rig that passed ks_rig_validate (derived roles and master are read). opt may be NULL.
 * *plan is always fully written (unless rig or plan is NULL). Returns KS_OK when the plan is
 * feasible; KS_EINVAL when it is not, with plan->reason, plan->alternatives and err describing why
 * and what would work. Deterministic. */
ks_status ks_plan_make(const ks_rig *rig, const ks_plan_options *opt, ks_plan *plan, ks_error *err);

/* The independent proof: for every pair of devices in the same interference group whose depth
 * mode fires a laser, every pulse of one against every pulse of the other over a whole frame
 * period (cyclic), from the REQUESTED delays in plan->devices[i].config (converted to effective
 * tick-truncated values here), the frame period and laser timing tables, and `guard_us`. A pair
 * where one device runs standalone (no common clock) cannot be proven apart and counts as 0. Also the
 * color spread for simultaneous plans. Does not use any other planner result. Writes *out. */
void ks_plan_check_lasers(const ks_rig *rig, const ks_plan *plan, int guard_us, ks_plan_proof *out);

/* Cyclic distance between two instants on a circle of length period_us (>= 0, <= period/2). */
double ks_plan_cyclic_distance(double a_us, double b_us, double period_us);

/* The k4arecorder command line of device i ("k4arecorder --device N --external-sync Subordinate
 * --sync-delay 0 --depth-delay 167 -e 8330 -r 30 -c 720p -d NFOV_UNBINNED --imu OFF NAME.mkv").
 * --device is the device's position among the devices of its host in rig order (check it with
 * `k4arecorder --list`; the serial is in the comment that ks_plan_recorder_comment gives).
 * Writes at most size bytes (NUL-terminated, truncating); returns snprintf's result. */
int ks_plan_recorder_command(const ks_rig *rig, const ks_plan *plan, int i, char *buf, size_t size);
/* Comment for the same line: "serial 000100000001, start 1 of 3" plus format notes, e.g. when
 * k4arecorder cannot record the color format. */
int ks_plan_recorder_comment(const ks_rig *rig, const ks_plan *plan, int i, char *buf, size_t size);

/* (added) What the plan costs, as sentences for a person (text output and JSON "costs.notes"):
 * depth and color captured apart when depth delays are large (more than 1 ms), interleaved
 * exposures that overlap. Writes up to `max` notes of `size` bytes each; returns how many. */
int ks_plan_cost_notes(const ks_rig *rig, const ks_plan *plan, char (*notes)[320], int max);

/* The plan as a JSON document (schema in docs/plan.md, "schema": "kinsync.plan/1"), including the
 * rig's validation findings if f is not NULL. Returns a heap string (free()) or NULL on ENOMEM. */
char *ks_plan_to_json(const ks_rig *rig, const ks_plan *plan, const ks_findings *f);

/* Draws one frame period as SVG: a row per device with its color exposure bar and laser pulses,
 * a shared time axis, an inset zooming into the first idle gap, guard gaps marked. Writes to a
 * temporary name and renames it to `path` when complete. */
ks_status ks_plan_write_svg(const ks_rig *rig, const ks_plan *plan, const char *path, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
