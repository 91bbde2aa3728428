/* calib_synth.h: synthetic calibration scenes for the calibration tests and benchmarks: poses
 * looking at a point, random board poses, exact projections with Gaussian noise. */
#ifndef KS_CALIB_SYNTH_H
#define KS_CALIB_SYNTH_H

#include <stdint.h>

#include "kinsync/calibration.h"

/* Rotation from a rotation vector (rad), row-major. */
void ks_synth_rotvec(const double w[3], double R[9]);
/* Camera pose (world -> camera) for a camera at `eye` looking at `target` with image-y roughly
 * along `down` (all in world mm). */
void ks_synth_look_at(const double eye[3], const double target[3], const double down[3], ks_extrinsics *world_to_cam);
/* Deterministic generator: uniform [0,1) and standard normal. */
typedef struct ks_synth_rng {
    uint64_t s;
} ks_synth_rng;
double ks_synth_uniform(ks_synth_rng *r);
double ks_synth_normal(ks_synth_rng *r);
/* Rotation angle (deg) of Ra * Rb^T. */
double ks_synth_rot_diff_deg(const double Ra[9], const double Rb[9]);

#endif
