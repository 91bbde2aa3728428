/* kinsync/calibration.h: the device camera model. Parses the factory calibration JSON every
 * Azure Kinect carries (CalibrationInformation), derives the mode-specific intrinsics of the depth
 * and color cameras, and projects / unprojects with the Brown-Conrady lens model exactly as the
 * Sensor SDK does (see docs/camera-model.md). Units: millimetres for points and translations,
 * pixels with the k4a convention (the centre of pixel (0,0) is (0,0)). */
#ifndef KINSYNC_CALIBRATION_H
#define KINSYNC_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_lens_model {
    KS_LENS_UNKNOWN = 0,
    KS_LENS_THETA,
    KS_LENS_POLYNOMIAL_3K,
    KS_LENS_RATIONAL_6KT,    /* deprecated, older units */
    KS_LENS_BROWN_CONRADY,   /* retail units; OpenCV's rational model */
} ks_lens_model;

typedef struct ks_intrinsics {
    ks_lens_model model;
    int width, height;       /* image size of the mode */
    double cx, cy, fx, fy;   /* pixels, k4a convention */
    double k[6];             /* k1..k6 */
    double codx, cody;
    double p1, p2;
    double metric_radius;    /* normalized radius beyond which the model is invalid; 0 = none */
} ks_intrinsics;

/* Rigid transform x_target = R * x_source + t, R row-major, t in millimetres. */
typedef struct ks_extrinsics {
    double R[9];
    double t[3];
} ks_extrinsics;

typedef struct ks_calibration {
    ks_depth_mode depth_mode;
    ks_color_resolution color_resolution;
    ks_intrinsics depth;           /* valid when depth_mode != OFF */
    ks_intrinsics color;           /* valid when color_resolution != OFF */
    ks_extrinsics depth_to_color;
    ks_extrinsics color_to_depth;
    ks_extrinsics depth_to_accel, depth_to_gyro;
} ks_calibration;

/* Parses the raw calibration JSON (tolerates a UTF-8 byte-order mark) for a pair of modes.
 * Errors name the missing or malformed field. */
ks_status ks_calibration_from_json(const char *json, size_t len, ks_depth_mode depth,
                                   ks_color_resolution color, ks_calibration *out, ks_error *err);

/* Projects a 3-D point in the camera frame to a pixel. Returns false (uv still written when
 * finite) when the point is behind the camera or outside the metric radius: the SDK's valid flag. */
bool ks_project(const ks_intrinsics *in, const double p[3], double uv[2]);
/* Unprojects a pixel at depth z (along the optical axis, same unit as the result) with a
 * closed-form guess and up to 20 Newton steps. Returns false when it does not converge. */
bool ks_unproject(const ks_intrinsics *in, const double uv[2], double z, double p[3]);
/* Unit-depth ray for a pixel: (x, y, 1) with p = z * ray. Same validity as ks_unproject. */
bool ks_unproject_ray(const ks_intrinsics *in, const double uv[2], double xy[2]);

void ks_extrinsics_apply(const ks_extrinsics *e, const double in[3], double out[3]);
void ks_extrinsics_invert(const ks_extrinsics *e, ks_extrinsics *out);
void ks_extrinsics_compose(const ks_extrinsics *a_to_b, const ks_extrinsics *b_to_c, ks_extrinsics *a_to_c);
void ks_extrinsics_identity(ks_extrinsics *e);

/* Depth pixel + depth (mm) to color pixel, as k4a_calibration_2d_to_2d. */
bool ks_calibration_depth_to_color_pixel(const ks_calibration *c, const double uv_depth[2], double depth_mm,
                                         double uv_color[2]);

/* Makes a plausible factory calibration JSON (real file format: D0 depth, PV0 color, accelerometer
 * and gyro, Brown-Conrady, slightly different intrinsics and depth-to-color extrinsics per seed) for
 * the simulator. Returns a malloc'd NUL-terminated string, NULL on allocation failure. */
char *ks_calibration_json_synthesize(uint64_t seed, const char *serial);

#ifdef __cplusplus
}
#endif
#endif
