/* calib/camera_model.h: internal helpers of the camera model shared by the calibration solver,
 * the board renderer and the tests. Not part of the public API. */
#ifndef KS_CALIB_CAMERA_MODEL_H
#define KS_CALIB_CAMERA_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/calibration.h"

/* Distortion of a normalized point (x, y) = (X/Z, Y/Z) into pixels, with the 2x2 Jacobian
 * d(u,v)/d(x,y) (row-major) when J is not NULL. Returns false outside the metric radius
 * (uv/J not written then) or for an unsupported lens model. */
bool ks_distort_normalized(const ks_intrinsics *in, const double xy[2], double uv[2], double J[4]);

/* Projection of a camera-frame point with the Jacobian d(u,v)/d(X,Y,Z) (2x3 row-major). */
bool ks_project_jac(const ks_intrinsics *in, const double p[3], double uv[2], double J[6]);

/* ks_unproject_ray for the n pixels (u0 .. u0+n-1, v) of one image row: x[i], y[i] and ok[i] are
 * exactly (bit for bit) what ks_unproject_ray gives for (u0 + i, v), computed several pixels at a
 * time (vectorized). False (every ok 0) for intrinsics ks_unproject_ray refuses. */
bool ks_unproject_row(const ks_intrinsics *in, int v, int u0, int n, double *x, double *y, uint8_t *ok);

/* ks_project for n camera-frame points (X[i], Y[i], Z[i]): ok[i] is ks_project's result and, where it
 * is true, (u[i], v[i]) exactly (bit for bit) its pixel (undefined where ok[i] is 0), computed several
 * points at a time (vectorized). False (every ok 0) for intrinsics ks_project cannot use. */
bool ks_project_many(const ks_intrinsics *in, int n, const double *X, const double *Y, const double *Z, double *u,
                     double *v, uint8_t *ok);

#endif
