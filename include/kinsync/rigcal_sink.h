/* kinsync/rigcal_sink.h: collecting calibration views as a sink of a session's frame sets.
 *
 * Threads: create/add/collect/destroy from one thread; detection inside add uses opt.threads
 * threads of its own.
 * Whatever the source (devices, the simulator, recordings: kinsync/source.h), the session forms
 * the frame sets (one matcher, one key) and this sink detects the board (kinsync/board.h) in every
 * device's colour (or IR) image of every step-th set, from the first complete set on; one frame
 * set of the session is one frame set of the calibration problem (kinsync/rigcalib.h). It keeps
 * the depth images of a bounded, evenly spread selection of the used sets, so that after the
 * solve the depth cross-check compares them with the board plane the solved poses place.
 *
 *   ks_rigcal_sink *k;
 *   ks_rigcal_sink_create(session, &board, &opt, &k, &err);
 *   ks_rigcal_sink_collect(k, session, &err);                  // to the end of the stream (or add sets yourself)
 *   ks_rigcal_problem p; ks_rigcal_sink_problem(k, &p);
 *   ks_rigcal_solve(&p, &ro, &res, &err); ks_rigcal_sink_depth_check(k, &res);
 *   ks_rigcal_sink_destroy(k); */
#ifndef KINSYNC_RIGCAL_SINK_H
#define KINSYNC_RIGCAL_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/board.h"
#include "kinsync/error.h"
#include "kinsync/frameset.h"
#include "kinsync/rigcalib.h"
#include "kinsync/session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_rigcal_sink_options {
    bool use_ir;                /* search the IR images (depth camera) instead of the colour images */
    int step;                   /* use every step-th frame set; 0: from expected_sets and max_views */
    uint64_t expected_sets;     /* frame sets the stream will hold (0: unknown, step 1) */
    int max_views;              /* frame sets to aim for when step is 0 (0: 120) */
    int depth_sets;             /* frame sets whose depth is kept for the cross-check (0: 24) */
    int min_corners;            /* corners a view needs to count as "board seen" (0: 8) */
    int threads;                /* board detection threads over a set's devices (0: one per CPU, at most
                                   16); the result does not depend on it */
    /* Called after every used frame set (may be NULL). */
    void (*progress)(void *ctx, int sets_used, int device, int images, int with_board);
    void *progress_ctx;
} ks_rigcal_sink_options;

typedef struct ks_rigcal_sink ks_rigcal_sink;

/* Reads every session device's calibration for its running mode: the observed camera's intrinsics
 * and depth-to-camera extrinsics. KS_EINVAL names a device that does not stream the camera asked
 * for (colour, or with use_ir a depth mode). The session must be started. */
ks_status ks_rigcal_sink_create(ks_session *s, const ks_board *b, const ks_rigcal_sink_options *opt,
                                ks_rigcal_sink **out, ks_error *err);
/* The same from device descriptions (serial, name, running configuration, factory calibration),
 * for frame sets that come from elsewhere, e.g. a frame-set directory (kinsync/frameset.h): the
 * sets given to _add then carry the devices in this order. */
ks_status ks_rigcal_sink_create_devices(const ks_frameset_device *devices, int device_count, const ks_board *b,
                                        const ks_rigcal_sink_options *opt, ks_rigcal_sink **out, ks_error *err);
void ks_rigcal_sink_destroy(ks_rigcal_sink *k);

/* Offers one frame set; it is used when it is at or after the first complete set and on the step.
 * A damaged image is skipped (not fatal). */
ks_status ks_rigcal_sink_add(ks_rigcal_sink *k, const ks_session_set *set, ks_error *err);
/* Runs the session to its end (KS_EEOF, or a stop request) offering every set. */
ks_status ks_rigcal_sink_collect(ks_rigcal_sink *k, ks_session *s, ks_error *err);

int ks_rigcal_sink_device_count(const ks_rigcal_sink *k);
const ks_rigcal_device *ks_rigcal_sink_device(const ks_rigcal_sink *k, int d);
/* Images searched and images with at least min_corners corners, per device. */
void ks_rigcal_sink_counts(const ks_rigcal_sink *k, int d, int *images, int *with_board);
int ks_rigcal_sink_sets_used(const ks_rigcal_sink *k);

/* The problem of the views collected so far (valid until the sink is destroyed or offered more). */
void ks_rigcal_sink_problem(const ks_rigcal_sink *k, ks_rigcal_problem *out);
/* The depth cross-check on the kept depth images against the solved board poses: fills every
 * device's depth_plane_* in res (ks_rigcal_set_depth_check). Returns the number of frame sets
 * checked. */
int ks_rigcal_sink_depth_check(ks_rigcal_sink *k, ks_rigcal_result *res);

#ifdef __cplusplus
}
#endif
#endif
