/* kinsync/align.h: aligning a set of recordings made by one rig (one file per device, possibly on
 * different hosts) after the fact.
 *
 * From the tags of each file: which is the master and which are subordinates, their planned
 * subordinate and depth delays, the rig and plan they belong to. The member files then run as one
 * rig through the session (kinsync/source.h, kinsync/session.h) exactly as `kinsync verify` runs
 * them: captures formed by the playback backend, frame sets by the matcher's key (the timestamp
 * convention and the planned delays removed, as the firmware applies them in 90 kHz ticks;
 * tolerance a quarter frame period by default), drift by syncstats' Theil-Sen fit.
 * Reported per file: start offset against the master, frames, drops (gaps in its own timestamps),
 * frames that ended up in partial sets, sets it is missing from, color skew against the master
 * (mean, min, max, standard deviation, largest magnitude), depth offset against the plan, and
 * drift (the slope of the skew over time, ppm). Files that do not belong (another rig name or plan
 * digest, another fps or camera mode, a second master) are named with the reason and left out.
 *
 * Files that belong must form one rig (ks_playback_rig_build): subordinates need their master. */
#ifndef KINSYNC_ALIGN_H
#define KINSYNC_ALIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_ALIGN_MAX_FILES 32

/* One capture of one file, as the playback backend forms it. */
typedef struct ks_align_frame {
    uint64_t color_ts_us, depth_ts_us, ir_ts_us;   /* 0 when the capture lacks the image */
    bool has_color, has_depth, has_ir;
    double key_us;                                 /* the matcher's frame-set key (kinsync/matcher.h) */
    double color_start_us, depth_center_us;        /* the matcher's converted times (NAN when absent) */
    uint64_t color_exposure_us;                    /* as the session saw it (recorded tag or option) */
    uint64_t depth_exposure_us;                    /* the depth image's exposure (0 when absent) */
} ks_align_frame;

typedef struct ks_align_stats {
    uint64_t n;
    double mean, min, max, stddev, max_abs;
} ks_align_stats;

typedef struct ks_align_file {
    char path[512];
    char serial[32];
    char role[64];               /* KINSYNC_ROLE, else the sync mode in lower case */
    char rig_name[64];
    char plan_digest[80];
    ks_wired_sync_mode sync_mode;
    uint32_t subordinate_delay_us;
    int32_t depth_delay_us;
    ks_fps fps;
    ks_color_resolution color_resolution;
    ks_image_format color_format;
    ks_depth_mode depth_mode;
    bool member;                 /* false: the file does not belong (see reason) */
    char reason[256];
    uint64_t start_offset_us;    /* K4A_START_OFFSET_NS / 1000 */
    int64_t start_vs_reference_us; /* first frame key minus the reference's first frame key */
    size_t frame_count;
    ks_align_frame *frames;      /* frame_count captures in time order */
    uint64_t drops;              /* frames missing from its own sequence (gaps of more than 1.5 periods) */
    uint64_t in_partial_sets;    /* its frames in sets that lack some file */
    uint64_t missing_from_sets;  /* sets it has no frame in */
    ks_align_stats skew_us;      /* color key - reference color key, per set with both */
    ks_align_stats depth_offset_us; /* see depth_offset_centres */
    double drift_ppm;            /* slope of the skew against reference time: Theil-Sen, as verify (syncstats) */
    /* How depth_offset_us is measured. With the timestamp convention and (under the seed convention,
     * for a master or subordinate) the color exposure known, from the file's KINSYNC_TIMESTAMPS /
     * KINSYNC_COLOR_EXPOSURE_US tags or the options: depth ts - color ts - planned depth delay minus
     * what the convention adds (ks_ts_depth_minus_color_residual_us), i.e. depth centre - color
     * centre - planned delay, 0 when the firmware does what the plan says (as `kinsync verify`
     * measures it). Else the raw depth ts - color ts - planned depth delay, which under the seed
     * convention also holds (color exposure - depth exposure) / 2. */
    bool depth_offset_centres;
    int32_t color_exposure_us;   /* as used (tag or option), 0 = unknown */
    char timestamps[16];         /* convention as used (tag or option), "" = unknown */
    bool frameless;              /* a member without a single color, depth or IR frame (e.g. repaired from a
                                    recording cut before its first capture): no set can be complete */
} ks_align_file;

typedef struct ks_align_set {
    double time_us;              /* the reference's key, else the earliest key in the set */
    int members;                 /* files with a frame in this set */
    int32_t *frame;              /* per file (file_count): index into frames, -1 if absent */
} ks_align_set;

typedef struct ks_align_result {
    int file_count;
    ks_align_file files[KS_ALIGN_MAX_FILES];
    int reference;               /* file index of the master (or the first member) */
    int member_count;
    size_t set_count;
    ks_align_set *sets;
    size_t complete_sets;        /* sets with every member file */
    /* The ragged start and stop of a take: devices start and stop a frame or two apart (start
     * order, frames lost right after start), so the first and last sets lack the devices not yet
     * started or already stopped. Those edge sets, before the last member's first frame or after
     * the first member's last frame, are left out of sets (unless keep_edge_sets) and counted
     * here. A partial set between them is a loss and stays. */
    size_t trimmed_leading, trimmed_trailing;
    double worst_skew_us;        /* largest |skew| of any member in any set */
    int period_us;
} ks_align_result;

typedef struct ks_align_options {
    double tolerance_us;         /* grouping tolerance; 0 = the matcher's default (a quarter period) */
    /* For files without kinsync's tags (e.g. from k4arecorder): the manual color exposure in us (0 =
     * unknown) and the timestamp convention name ("seed", "mid-exposure"; NULL = unknown, or "seed"
     * when an exposure is given, the rig file's default). A file's own tags take precedence. */
    int color_exposure_us;
    const char *timestamps;
    bool keep_edge_sets;         /* keep the partial sets of the ragged start and stop (default: trimmed) */
} ks_align_options;

/* Reads every file and aligns them. A file that cannot be read fails the call (KS_EIO/KS_EPARSE
 * naming it); files that can be read but do not belong are kept with member = false and a reason.
 * One file aligns trivially. A take whose member files never share a set has complete_sets 0 (and
 * nothing trimmed). opts may be NULL. On success
 * *out is owned by the caller (ks_align_free). */
ks_status ks_align_files(const char *const *paths, int count, const ks_align_options *opts, ks_align_result **out,
                         ks_error *err);
void ks_align_free(ks_align_result *r);

/* Writes the aligned frame sets to dir as a frame-set directory (kinsync/frameset.h): one device
 * per member file, named ROLE-SERIAL (dir/NNNNNN/ROLE-SERIAL-color.jpg as stored, -depth.png and
 * -ir.png as 16-bit grey PNG, ROLE-SERIAL-calibration.json), and index.json with every set, each
 * member's images and timestamps, plus "files": every file given and whether it is a member.
 * max_sets 0 = all. KS_EIO names the path; KS_ESTATE when dir already holds an index.json. */
ks_status ks_align_export(const ks_align_result *r, const char *dir, size_t max_sets, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
