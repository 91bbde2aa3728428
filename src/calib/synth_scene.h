/* calib/synth_scene.h: synthetic calibration scenes with ground truth, for the calibration tests
 * and benchmarks (and any tool that wants a known answer): devices on a ring looking at its
 * centre, random board poses, exact projections plus Gaussian corner noise. Internal. */
#ifndef KS_CALIB_SYNTH_SCENE_H
#define KS_CALIB_SYNTH_SCENE_H

#include <stdint.h>

#include "kinsync/rigcalib.h"

typedef struct ks_synth_rng {
    uint64_t s;
} ks_synth_rng;
double ks_synth_uniform(ks_synth_rng *r);  /* [0,1) */
double ks_synth_normal(ks_synth_rng *r);   /* N(0,1) */

/* Pose (world -> camera) of a camera at eye looking at target, image y roughly along `down`. */
void ks_synth_look_at(const double eye[3], const double target[3], const double down[3], ks_extrinsics *world_to_cam);
/* Rotation angle (deg) between two rotations; translation distance (mm). */
double ks_synth_rot_diff_deg(const double Ra[9], const double Rb[9]);
double ks_synth_trans_diff_mm(const double ta[3], const double tb[3]);

typedef struct ks_synth_scene_options {
    int devices;             /* default 9 */
    int frames;              /* board poses, default 60 */
    double noise_px;         /* Gaussian sigma per coordinate, default 0.1 */
    double ring_radius_mm;   /* default 1800 */
    double board_spread_mm;  /* board centres uniform in +-spread around the ring centre, default 250 */
    double max_view_angle_deg; /* a camera sees the board up to this angle off its normal, default 65 */
    ks_color_resolution color; /* observed camera mode, default 1080P */
    uint64_t seed;
} ks_synth_scene_options;

typedef struct ks_synth_scene {
    ks_board board;
    ks_rigcal_device *devices;       /* intrinsics/extrinsics from ks_calibration_json_synthesize */
    ks_extrinsics *true_depth_to_rig; /* rig = depth camera of device 0 */
    ks_extrinsics *true_color_to_rig;
    ks_extrinsics *true_board_to_rig;
    ks_rigcal_obs *obs;
    int obs_count;
    ks_rigcal_problem problem;       /* points into the arrays above */
} ks_synth_scene;

void ks_synth_scene_options_default(ks_synth_scene_options *o);
ks_status ks_synth_scene_make(const ks_synth_scene_options *o, ks_synth_scene *s, ks_error *err);
void ks_synth_scene_free(ks_synth_scene *s);

#endif
