/* calib/camera_model.c: Brown-Conrady (and the deprecated Rational 6KT) projection and the
 * Newton unprojection, written from the model description in docs/camera-model.md. The
 * behaviour follows the Sensor SDK: a point outside the metric radius is invalid, unprojection
 * starts from a closed-form inverse of the radial and tangential terms and takes up to 20
 * Newton steps, keeping the best iterate; the pixel is valid when the squared pixel error of
 * the best iterate is at most 1e-6 px^2. Computation is in double precision (the SDK uses float). */
#include <float.h>
#include <math.h>

#include "calib/camera_model.h"

#define KS_UNPROJECT_MAX_STEPS 20
#define KS_UNPROJECT_TOL_PX2 1e-6

bool ks_distort_normalized(const ks_intrinsics *in, const double xy[2], double uv[2], double J[4])
{
    if (!in || (in->model != KS_LENS_BROWN_CONRADY && in->model != KS_LENS_RATIONAL_6KT))
        return false;
    if (!(in->fx > 0) || !(in->fy > 0))
        return false;
    /* Brown-Conrady has its centre of distortion at the principal point (codx = cody = 0 in
     * every file); Rational 6KT uses it. */
    double xp = xy[0] - in->codx, yp = xy[1] - in->cody;
    double x2 = xp * xp, y2 = yp * yp, xyp = xp * yp;
    double rs = x2 + y2;
    if (in->metric_radius > 0 && rs > in->metric_radius * in->metric_radius)
        return false;
    if (!isfinite(rs))
        return false;
    const double *k = in->k;
    double rs2 = rs * rs, rs3 = rs2 * rs;
    double a = 1.0 + k[0] * rs + k[1] * rs2 + k[2] * rs3;
    double b = 1.0 + k[3] * rs + k[4] * rs2 + k[5] * rs3;
    double bi = b != 0.0 ? 1.0 / b : 1.0;
    double d = a * bi;
    /* tangential cross-term factor: 2 for Brown-Conrady, 1 for Rational 6KT */
    double c = in->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0;
    double xd = xp * d + (rs + 2.0 * x2) * in->p2 + c * xyp * in->p1;
    double yd = yp * d + (rs + 2.0 * y2) * in->p1 + c * xyp * in->p2;
    uv[0] = (xd + in->codx) * in->fx + in->cx;
    uv[1] = (yd + in->cody) * in->fy + in->cy;
    if (J) {
        double da = k[0] + 2.0 * k[1] * rs + 3.0 * k[2] * rs2;
        double db = k[3] + 2.0 * k[4] * rs + 3.0 * k[5] * rs2;
        double dd = b != 0.0 ? (da * b - a * db) * bi * bi : da;
        double dxx = d + 2.0 * x2 * dd + 6.0 * xp * in->p2 + c * yp * in->p1;
        double dxy = 2.0 * xyp * dd + 2.0 * yp * in->p2 + c * xp * in->p1;
        double dyx = 2.0 * xyp * dd + 2.0 * xp * in->p1 + c * yp * in->p2;
        double dyy = d + 2.0 * y2 * dd + 6.0 * yp * in->p1 + c * xp * in->p2;
        J[0] = in->fx * dxx;
        J[1] = in->fx * dxy;
        J[2] = in->fy * dyx;
        J[3] = in->fy * dyy;
    }
    return isfinite(uv[0]) && isfinite(uv[1]);
}

bool ks_project(const ks_intrinsics *in, const double p[3], double uv[2])
{
    if (!in || !p || !uv)
        return false;
    if (!(p[2] > 0)) {
        if (p[2] != 0 && isfinite(p[0] / p[2]) && isfinite(p[1] / p[2])) {
            uv[0] = in->fx * p[0] / p[2] + in->cx;
            uv[1] = in->fy * p[1] / p[2] + in->cy;
        }
        return false;
    }
    double xy[2] = {p[0] / p[2], p[1] / p[2]};
    if (ks_distort_normalized(in, xy, uv, NULL))
        return true;
    /* outside the metric radius: still report where the pinhole part would put it */
    if (isfinite(xy[0]) && isfinite(xy[1])) {
        uv[0] = in->fx * xy[0] + in->cx;
        uv[1] = in->fy * xy[1] + in->cy;
    }
    return false;
}

bool ks_project_jac(const ks_intrinsics *in, const double p[3], double uv[2], double J[6])
{
    if (!(p[2] > 0))
        return false;
    double iz = 1.0 / p[2];
    double xy[2] = {p[0] * iz, p[1] * iz};
    double Jd[4];
    if (!ks_distort_normalized(in, xy, uv, Jd))
        return false;
    /* d(x,y)/d(X,Y,Z) = [iz 0 -x*iz; 0 iz -y*iz] */
    for (int r = 0; r < 2; r++) {
        J[r * 3 + 0] = Jd[r * 2 + 0] * iz;
        J[r * 3 + 1] = Jd[r * 2 + 1] * iz;
        J[r * 3 + 2] = -(Jd[r * 2 + 0] * xy[0] + Jd[r * 2 + 1] * xy[1]) * iz;
    }
    return true;
}

bool ks_unproject_ray(const ks_intrinsics *in, const double uv[2], double xy_out[2])
{
    if (!in || !uv || !xy_out || !(in->fx > 0) || !(in->fy > 0))
        return false;
    if (in->model != KS_LENS_BROWN_CONRADY && in->model != KS_LENS_RATIONAL_6KT)
        return false;
    if (!isfinite(uv[0]) || !isfinite(uv[1]))
        return false;
    /* Closed-form guess: invert the radial factor evaluated at the distorted radius, then remove
     * a first-order approximation of the tangential terms. */
    const double *k = in->k;
    double xd = (uv[0] - in->cx) / in->fx - in->codx;
    double yd = (uv[1] - in->cy) / in->fy - in->cody;
    double rs = xd * xd + yd * yd, rs2 = rs * rs, rs3 = rs2 * rs;
    double a = 1.0 + k[0] * rs + k[1] * rs2 + k[2] * rs3;
    double b = 1.0 + k[3] * rs + k[4] * rs2 + k[5] * rs3;
    double inv = (a != 0.0 ? 1.0 / a : 1.0) * b;
    double x = xd * inv, y = yd * inv;
    double txy = 2.0 * x * y, xx = x * x, yy = y * y;
    x -= (yy + 3.0 * xx) * in->p2 + txy * in->p1;
    y -= (xx + 3.0 * yy) * in->p1 + txy * in->p2;
    x += in->codx;
    y += in->cody;

    double best[2] = {x, y};
    double best_err = DBL_MAX;
    double cur[2] = {x, y};
    for (int it = 0; it < KS_UNPROJECT_MAX_STEPS; it++) {
        double p[2], J[4];
        if (!ks_distort_normalized(in, cur, p, J))
            return false;
        double ex = uv[0] - p[0], ey = uv[1] - p[1];
        double e = ex * ex + ey * ey;
        if (!(e < best_err))
            break; /* no improvement: keep the best iterate */
        best_err = e;
        best[0] = cur[0];
        best[1] = cur[1];
        if (e < 1e-24)
            break;
        double det = J[0] * J[3] - J[1] * J[2];
        if (det == 0.0 || !isfinite(det))
            break;
        double dx = (J[3] * ex - J[1] * ey) / det;
        double dy = (-J[2] * ex + J[0] * ey) / det;
        cur[0] += dx;
        cur[1] += dy;
    }
    if (!(best_err <= KS_UNPROJECT_TOL_PX2))
        return false;
    xy_out[0] = best[0];
    xy_out[1] = best[1];
    return true;
}

bool ks_unproject(const ks_intrinsics *in, const double uv[2], double z, double p[3])
{
    double xy[2];
    if (!p || !ks_unproject_ray(in, uv, xy))
        return false;
    p[0] = xy[0] * z;
    p[1] = xy[1] * z;
    p[2] = z;
    return true;
}
