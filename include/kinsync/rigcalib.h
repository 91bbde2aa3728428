/* kinsync/rigcalib.h: joint calibration of every device of a rig from synchronized views of an
 * AprilGrid board (docs/rig-calibration.md).
 * Ownership and threads: a ks_rigcal_collector is the caller's from _create to _destroy, a result's
 * arrays until ks_rigcal_result_free; each is used from one thread at a time.
 *
 * Inputs: per device the factory intrinsics of the camera whose images were searched for tags
 * (normally the color camera) and its depth-to-camera extrinsics; per synchronized frame set the
 * detected corners of every device. Unknowns: the pose of every device but the reference (whose
 * depth camera defines the rig frame) and one board pose per frame set. Intrinsics stay fixed.
 * Initial poses come from per-view planar PnP linked through a covisibility spanning tree; then
 * Levenberg-Marquardt with a robust loss, board poses eliminated by the Schur complement.
 * Units: mm, pixels in the k4a convention; every R is row-major, x_to = R x_from + t. */
#ifndef KINSYNC_RIGCALIB_H
#define KINSYNC_RIGCALIB_H

#include <stdbool.h>
#include <stddef.h>

#include "kinsync/board.h"
#include "kinsync/calibration.h"
#include "kinsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_rigcal_device {
    char serial[64];               /* names the device in messages and in the output file */
    ks_intrinsics intrinsics;      /* mode-specific intrinsics of the observed camera */
    ks_extrinsics depth_to_camera; /* depth -> observed camera (factory depth_to_color; identity for IR) */
    ks_extrinsics depth_to_color;  /* factory depth_to_color, for color_to_rig; all-zero = same as depth_to_camera */
} ks_rigcal_device;

typedef struct ks_rigcal_obs {
    int device;                    /* index into devices */
    int frame;                     /* synchronized frame set, 0 .. frame_count-1 */
    int tag_id, corner;            /* as ks_board_corner */
    double uv[2];                  /* detected pixel */
} ks_rigcal_obs;

typedef struct ks_rigcal_problem {
    const ks_board *board;
    int device_count;
    const ks_rigcal_device *devices;
    int frame_count;
    int obs_count;
    const ks_rigcal_obs *obs;
} ks_rigcal_problem;

typedef enum ks_rigcal_loss { KS_LOSS_NONE = 0, KS_LOSS_HUBER, KS_LOSS_CAUCHY } ks_rigcal_loss;

typedef struct ks_rigcal_options {
    int reference_device;          /* its depth camera is the rig frame (default 0) */
    ks_rigcal_loss loss;           /* default Huber */
    double loss_scale_px;          /* residual norm where the robust loss starts (default 1.0 px) */
    int max_iterations;            /* LM iterations (default 50) */
    int min_corners_per_view;      /* a device's view of a frame set counts when it has this many (default 8) */
    /* Called after every LM iteration (may be NULL). */
    void (*progress)(void *ctx, int iteration, double rms_px);
    void *progress_ctx;
} ks_rigcal_options;

typedef struct ks_rigcal_device_result {
    ks_extrinsics camera_to_rig;   /* observed camera -> rig */
    ks_extrinsics depth_to_rig;
    ks_extrinsics color_to_rig;    /* = depth_to_rig * color_to_depth (needs depth_to_camera = depth_to_color) */
    double rotation_sigma_deg;     /* 1-sigma rotation uncertainty (sqrt of the trace of its covariance) */
    double position_sigma_mm;      /* 1-sigma position uncertainty of the camera centre in the rig frame */
    double covariance[36];         /* of (rotation vector rad, camera centre mm), rig frame; 0 for the reference */
    double rms_px;                 /* reprojection RMS of this device's corners */
    int views;                     /* frame sets in which the device saw the board */
    int corners;
    double ray_rms_mm;             /* cross-check: RMS distance of its rays to points triangulated by others */
    int ray_count;
    /* Cross-check with the depth camera (filled by ks_rigcal_add_depth_check; NaN/0 until then):
     * depth pixels on the board against the board plane placed by the solved poses. */
    int depth_plane_points;
    double depth_plane_mean_mm;    /* mean signed distance (positive: depth reads behind the board plane) */
    double depth_plane_rms_mm;
} ks_rigcal_device_result;

typedef struct ks_rigcal_result {
    int device_count;
    ks_rigcal_device_result *devices;   /* malloc'd */
    int frame_count;
    ks_extrinsics *board_to_rig;        /* per frame set, malloc'd */
    bool *board_valid;                  /* frame set had at least one usable view */
    double initial_rms_px, rms_px;      /* reprojection RMS before and after the adjustment */
    int iterations;
    int used_obs, used_views;
    int rejected_views;                 /* views dropped as inconsistent with the rest (RMS > max(3 px, 10x median view)) */
    int reference_device;
    /* Cross-check without the reprojection residual: corners seen by >= 2 devices are triangulated
     * from the solved camera poses, then a rigid board model is fitted per frame set. */
    int triangulated_points;
    double board_fit_rms_mm;            /* RMS distance triangulated corner - fitted board model */
    double solve_seconds;
} ks_rigcal_result;

void ks_rigcal_options_default(ks_rigcal_options *o);

/* Solves the problem. On success *out holds the result (free with ks_rigcal_result_free).
 * Refuses (KS_EINVAL) a covisibility graph that is not connected, naming the devices that cannot
 * be linked to the reference and what views are missing; a device without any usable view; a bad
 * index in an observation. */
ks_status ks_rigcal_solve(const ks_rigcal_problem *p, const ks_rigcal_options *o, ks_rigcal_result *out,
                          ks_error *err);
void ks_rigcal_result_free(ks_rigcal_result *r);

/* Planar PnP of one view: board corners and their pixels (n >= 4 corners not on a line) ->
 * board_to_camera. Homography initial guess refined by Gauss-Newton on the reprojection error.
 * Returns false when it fails. Used for initialization; exposed for tests and tools. */
bool ks_board_pnp(const ks_intrinsics *in, const double (*board_pts)[3], const double (*uv)[2], int n,
                  ks_extrinsics *board_to_camera, double *rms_px);

/* Writes rig-calibration.json (format in docs/rig-calibration.md) atomically. */
ks_status ks_rigcal_write_json(const ks_rigcal_problem *p, const ks_rigcal_result *r, const char *path,
                               ks_error *err);

/* ---- depth cross-check ---- */

typedef struct ks_depth_plane_stats {
    int points;                    /* depth pixels on the board */
    double sum_mm, sum_sq_mm2;     /* of the signed distance to the board plane */
} ks_depth_plane_stats;

/* Compares a DEPTH16 image (mm, `stride` bytes per row) of the depth camera with a board pose:
 * every `step`-th pixel is unprojected, moved into the board frame, and kept when it lies on the
 * printed grid within max_dist_mm of the plane; its signed distance (positive: behind the board)
 * is added to *acc. */
ks_status ks_depth_board_check(const ks_intrinsics *depth, const uint8_t *depth16, int stride, const ks_board *b,
                               const ks_extrinsics *board_to_depth, double max_dist_mm, int step,
                               ks_depth_plane_stats *acc, ks_error *err);
/* Stores accumulated depth statistics of device `device` in the result (mean and RMS). */
void ks_rigcal_set_depth_check(ks_rigcal_result *r, int device, const ks_depth_plane_stats *acc);

/* ---- collecting observations from images ---- */

/* Accumulates detected corners per (device, frame set) for ks_rigcal_solve. */
typedef struct ks_rigcal_collector ks_rigcal_collector;

/* detector options may be NULL (defaults). */
ks_status ks_rigcal_collector_create(const ks_board *b, const ks_detector_options *o, ks_rigcal_collector **out,
                                     ks_error *err);
void ks_rigcal_collector_destroy(ks_rigcal_collector *c);
/* Detects the board in device `device`'s image of frame set `frame` (both >= 0) and keeps the
 * corners. *corners (may be NULL) gets the number found. */
ks_status ks_rigcal_collector_add_image(ks_rigcal_collector *c, int device, int frame, const ks_image *img,
                                        int *corners, ks_error *err);
/* Keeps already detected corners. */
ks_status ks_rigcal_collector_add_detections(ks_rigcal_collector *c, int device, int frame,
                                             const ks_detections *det, ks_error *err);
/* Fills a problem over the collected corners (valid until the next add or destroy). The frame
 * count is one more than the largest frame set index seen. */
void ks_rigcal_collector_problem(const ks_rigcal_collector *c, const ks_board *b, const ks_rigcal_device *devices,
                                 int device_count, ks_rigcal_problem *out);

/* The reader of rig-calibration.json is the fusion module's ks_rig_poses_load (kinsync/fuse.h). */

#ifdef __cplusplus
}
#endif
#endif
