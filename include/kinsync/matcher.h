/* kinsync/matcher.h: grouping frames of several devices into frame sets by device timestamp.
 *
 * The matcher is a pure streaming function: timestamped frames in (ks_match_frame), frame sets out
 * (ks_frame_set). It knows nothing about devices, threads or files, so the live session and
 * `kinsync align` over recordings use the same code.
 *
 * Every frame is reduced to a KEY: the instant, in the reference device's (the master's) time base,
 * at which the master's colour exposure of the same sync pulse started. From the frame:
 *   colour start   = ts                 (convention seed, master/subordinate: start of frame)
 *                  = ts - exposure / 2  (seed standalone, or mid-exposure: the centre)
 *   depth centre   = ts + exposure / 2  (seed, master/subordinate)   or ts (otherwise)
 *   key            = colour start + ts_offset - colour_offset           (colour present)
 *                  = depth centre + ts_offset - depth_delay - colour_offset - colour_exposure/2
 * with colour_offset the planned subordinate delay (effective), depth_delay the planned depth delay
 * (effective) and ts_offset an optional per-device clock correction (0 for a wired rig).
 *
 * A set is emitted when every device has either contributed its frame within `tolerance_us` of the
 * set's anchor (the smallest pending key), or provably has none (its next frame is later), or has
 * been waited for long enough (another device is `wait_us` past the anchor), or is gone. Memory is
 * bounded: at most max_pending frames per device and max_output sets waiting to be popped; overflow
 * forces sets out or drops the oldest set, and it is counted. Nothing blocks.
 * Not thread safe: one caller at a time (the session serializes). */
#ifndef KINSYNC_MATCHER_H
#define KINSYNC_MATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_MATCH_MAX_DEVICES 32

/* One capture of one device, reduced to what matching needs. `user` is passed through untouched
 * (the session puts its ks_capture there). */
typedef struct ks_match_frame {
    int device;                  /* 0 .. device_count-1 */
    bool has_color, has_depth;
    uint64_t color_ts_us, color_exposure_us;
    uint64_t depth_ts_us, depth_exposure_us;
    uint64_t host_ns;            /* system timestamp (host monotonic), 0 if unknown */
    double invalid_fraction;     /* depth pixels that are 0, -1 if not measured */
    int content;                 /* image content as measured (ks_frame_content), 0 = not measured */
    void *user;
    /* written by the matcher */
    double key_us;               /* see the header comment */
    double color_start_us;       /* converted, device time base + ts_offset; NAN without colour */
    double depth_center_us;      /* converted, device time base + ts_offset; NAN without depth */
} ks_match_frame;

typedef struct ks_match_device {
    ks_wired_sync_mode mode;     /* decides the seed convention's start/centre */
    double color_offset_us;      /* expected colour start after the master's (effective subordinate delay) */
    double depth_delay_us;       /* expected depth centre - colour centre (effective depth delay) */
    double color_exposure_us;    /* used only to key depth-only frames */
    double ts_offset_us;         /* added to every timestamp of this device (0 for a wired rig) */
} ks_match_device;

typedef struct ks_matcher_config {
    int device_count;            /* 1 .. KS_MATCH_MAX_DEVICES */
    int reference;               /* the device whose time base keys are in (the master) */
    ks_ts_convention convention;
    double period_us;            /* frame period */
    double tolerance_us;         /* 0: period / 4 */
    double wait_us;              /* 0: 3 periods */
    int max_pending;             /* frames held per device; 0: 16 */
    int max_output;              /* sets held for the caller; 0: 64 */
    ks_match_device devices[KS_MATCH_MAX_DEVICES];
    /* Called for every frame the matcher discards (late, or in a set dropped on output overflow)
     * so the owner can free `user`. May be NULL. */
    void (*release)(void *user, void *ctx);
    void *release_ctx;
} ks_matcher_config;

/* Fills *cfg for n devices, reference 0, the given fps and convention, everything else default. */
void ks_matcher_config_init(ks_matcher_config *cfg, int n, ks_fps fps, ks_ts_convention conv);

typedef struct ks_frame_set {
    uint64_t index;              /* 0, 1, 2 ... in emission order */
    double key_us;               /* reference device's key if present, else the anchor */
    int present;                 /* devices with a frame */
    uint32_t present_mask;
    uint32_t missing_mask;       /* devices without (partial set when non-zero) */
    bool complete;
    ks_match_frame frames[KS_MATCH_MAX_DEVICES]; /* valid where present_mask has the bit */
} ks_frame_set;

typedef struct ks_matcher_stats {
    uint64_t frames_in[KS_MATCH_MAX_DEVICES];
    uint64_t gaps[KS_MATCH_MAX_DEVICES];      /* frames missing from the device's own sequence (key gaps) */
    uint64_t late[KS_MATCH_MAX_DEVICES];      /* arrived after their set had been emitted: discarded */
    uint64_t missing[KS_MATCH_MAX_DEVICES];   /* sets emitted without this device */
    uint64_t sets_out, sets_complete, sets_partial;
    uint64_t sets_dropped;                    /* output overflow */
    uint64_t forced;                          /* sets forced out by a full pending queue */
    int max_pending_seen;                     /* high-water mark of any device's pending queue */
} ks_matcher_stats;

typedef struct ks_matcher ks_matcher;

/* Creates a matcher; KS_EINVAL names the bad field. */
ks_status ks_matcher_create(const ks_matcher_config *cfg, ks_matcher **out, ks_error *err);
void ks_matcher_free(ks_matcher *m);     /* releases every frame still held */

/* Computes key_us, color_start_us and depth_center_us of *f with the matcher's conventions. */
void ks_matcher_key(const ks_matcher_config *cfg, ks_match_frame *f);

/* Adds a frame (copied). A frame with a bad device index or neither colour nor depth is refused
 * (KS_EINVAL, nothing released). A frame of a device marked gone is released. */
ks_status ks_matcher_push(ks_matcher *m, const ks_match_frame *f, ks_error *err);
/* The device delivers no more frames (disconnected, stopped): sets no longer wait for it. */
void ks_matcher_mark_gone(ks_matcher *m, int device);
/* End of input: every pending frame goes out in (partial) sets. */
void ks_matcher_flush(ks_matcher *m);
/* Takes the oldest finished set; false when none. The frames (and their `user`) now belong to the
 * caller. */
bool ks_matcher_pop(ks_matcher *m, ks_frame_set *out);
/* Finished sets waiting to be popped. */
int ks_matcher_ready(const ks_matcher *m);
/* Frames currently held (pending + in output sets). */
int ks_matcher_held(const ks_matcher *m);
void ks_matcher_get_stats(const ks_matcher *m, ks_matcher_stats *out);

/* Batch form for recordings: matches `n` frames (any order per device is sorted by key first;
 * `frames` is reordered) and calls fn for every set in order. Returns the number of sets. */
size_t ks_match_frames(const ks_matcher_config *cfg, ks_match_frame *frames, size_t n,
                       void (*fn)(const ks_frame_set *set, void *ctx), void *ctx, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
