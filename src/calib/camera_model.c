/* calib/camera_model.c: Brown-Conrady (and the deprecated Rational 6KT) projection and the
 * Newton unprojection, written from the model description in docs/camera-model.md. The
 * behaviour follows the Sensor SDK: a point outside the metric radius is invalid, unprojection
 * starts from a closed-form inverse of the radial and tangential terms and takes up to 20
 * Newton steps, keeping the best iterate; the pixel is valid when the squared pixel error of
 * the best iterate is at most 1e-6 px^2. Computation is in double precision (the SDK uses float). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* ks_unproject_row: ks_unproject_ray for ROW_LANES pixels at once, the same operations in the same
 * order per pixel (so the same doubles, bit for bit: IEEE +, -, *, / are exact per lane, and ISO C
 * mode keeps GCC from contracting to FMA), with the early exits turned into per-lane masks so the
 * compiler vectorizes the lanes (and their independent Newton chains overlap). A lane that has
 * finished keeps its state; the block ends when every lane has. */
#define ROW_LANES 4
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) /* target_clones: ifunc resolvers run before the sanitizer runtime */
#define KS_ROW_HOT __attribute__((optimize("O3", "no-trapping-math"), target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define KS_ROW_HOT __attribute__((optimize("O3", "no-trapping-math")))
#else
#define KS_ROW_HOT
#endif

typedef double ks_vd __attribute__((vector_size(ROW_LANES * 8)));
typedef long long ks_vl __attribute__((vector_size(ROW_LANES * 8)));

/* m ? a : b per lane (m all ones or all zeros); isfinite per lane (|v| <= DBL_MAX: false for NaN and
 * infinities). Macros, not functions: a 64-byte vector argument would change the calling ABI. */
#define VSEL(m, a, b) ((ks_vd)(((m) & (ks_vl)(a)) | (~(m) & (ks_vl)(b))))
#define VFINITE(v) ((ks_vd)((ks_vl)(v) & 0x7fffffffffffffffll) <= DBL_MAX)

KS_ROW_HOT static void unproject_lanes(const ks_intrinsics *in, double v, const double *restrict u_in,
                                       double *restrict xo, double *restrict yo, uint8_t *restrict ok)
{
    const double *k = in->k;
    const double fx = in->fx, fy = in->fy, cx = in->cx, cy = in->cy, codx = in->codx, cody = in->cody;
    const double p1 = in->p1, p2 = in->p2;
    const double c = in->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0;
    const ks_vl limited = (ks_vl){0} + (in->metric_radius > 0 ? -1ll : 0ll);
    const double mr2 = in->metric_radius * in->metric_radius;
    ks_vd u;
    memcpy(&u, u_in, sizeof u);
    const ks_vd zero = {0};
    ks_vd curx, cury, bx, by, be;
    ks_vl act, bad;
    {
        /* the closed-form guess of ks_unproject_ray */
        ks_vd xd = (u - cx) / fx - codx;
        ks_vd yd = zero + ((v - cy) / fy - cody);
        ks_vd rs = xd * xd + yd * yd, rs2 = rs * rs, rs3 = rs2 * rs;
        ks_vd a = 1.0 + k[0] * rs + k[1] * rs2 + k[2] * rs3;
        ks_vd b = 1.0 + k[3] * rs + k[4] * rs2 + k[5] * rs3;
        ks_vd inv = VSEL(a != 0.0, 1.0 / a, zero + 1.0) * b;
        ks_vd x = xd * inv, y = yd * inv;
        ks_vd txy = 2.0 * x * y, xx = x * x, yy = y * y;
        x -= (yy + 3.0 * xx) * p2 + txy * p1;
        y -= (xx + 3.0 * yy) * p1 + txy * p2;
        x += codx;
        y += cody;
        curx = bx = x;
        cury = by = y;
        be = zero + DBL_MAX;
        act = (ks_vl){0} - 1;
        bad = (ks_vl){0};
    }
    for (int it = 0; it < KS_UNPROJECT_MAX_STEPS; it++) {
        /* ks_distort_normalized(in, cur, p, J) */
        ks_vd xp = curx - codx, yp = cury - cody;
        ks_vd x2 = xp * xp, y2 = yp * yp, xyp = xp * yp;
        ks_vd rs = x2 + y2;
        ks_vl dok = ~(limited & (rs > mr2)) & VFINITE(rs);
        ks_vd rs2 = rs * rs, rs3 = rs2 * rs;
        ks_vd a = 1.0 + k[0] * rs + k[1] * rs2 + k[2] * rs3;
        ks_vd b = 1.0 + k[3] * rs + k[4] * rs2 + k[5] * rs3;
        ks_vl bnz = b != 0.0;
        ks_vd bi = VSEL(bnz, 1.0 / b, zero + 1.0);
        ks_vd d = a * bi;
        ks_vd xd = xp * d + (rs + 2.0 * x2) * p2 + c * xyp * p1;
        ks_vd yd = yp * d + (rs + 2.0 * y2) * p1 + c * xyp * p2;
        ks_vd pu = (xd + codx) * fx + cx;
        ks_vd pv = (yd + cody) * fy + cy;
        ks_vd da = k[0] + 2.0 * k[1] * rs + 3.0 * k[2] * rs2;
        ks_vd db = k[3] + 2.0 * k[4] * rs + 3.0 * k[5] * rs2;
        ks_vd dd = VSEL(bnz, (da * b - a * db) * bi * bi, da);
        ks_vd dxx = d + 2.0 * x2 * dd + 6.0 * xp * p2 + c * yp * p1;
        ks_vd dxy = 2.0 * xyp * dd + 2.0 * yp * p2 + c * xp * p1;
        ks_vd dyx = 2.0 * xyp * dd + 2.0 * xp * p1 + c * yp * p2;
        ks_vd dyy = d + 2.0 * y2 * dd + 6.0 * yp * p1 + c * xp * p2;
        ks_vd J0 = fx * dxx, J1 = fx * dxy, J2 = fy * dyx, J3 = fy * dyy;
        dok &= VFINITE(pu) & VFINITE(pv);
        /* the Newton step of ks_unproject_ray */
        ks_vd ex = u - pu, ey = v - pv;
        ks_vd e = ex * ex + ey * ey;
        bad |= act & ~dok;
        ks_vl better = act & dok & (e < be);
        be = VSEL(better, e, be);
        bx = VSEL(better, curx, bx);
        by = VSEL(better, cury, by);
        ks_vd det = J0 * J3 - J1 * J2;
        ks_vl step = better & ~(e < 1e-24) & (det != 0.0) & VFINITE(det);
        ks_vd dx = (J3 * ex - J1 * ey) / det;
        ks_vd dy = (-J2 * ex + J0 * ey) / det;
        curx = VSEL(step, curx + dx, curx);
        cury = VSEL(step, cury + dy, cury);
        act = step;
        long long any = 0;
        for (int l = 0; l < ROW_LANES; l++)
            any |= act[l];
        if (!any)
            break;
    }
    ks_vl good = ~bad & (be <= KS_UNPROJECT_TOL_PX2);
    for (int l = 0; l < ROW_LANES; l++) {
        ok[l] = (uint8_t)(good[l] != 0);
        xo[l] = bx[l];
        yo[l] = by[l];
    }
}

bool ks_unproject_row(const ks_intrinsics *in, int v, int u0, int n, double *x, double *y, uint8_t *ok)
{
    if (!in || !x || !y || !ok || n < 0 || !(in->fx > 0) || !(in->fy > 0) ||
        (in->model != KS_LENS_BROWN_CONRADY && in->model != KS_LENS_RATIONAL_6KT)) {
        if (ok && n > 0)
            memset(ok, 0, (size_t)n);
        return false;
    }
    for (int i = 0; i < n; i += ROW_LANES) {
        double u[ROW_LANES], bx[ROW_LANES], by[ROW_LANES];
        uint8_t bok[ROW_LANES];
        int m = n - i < ROW_LANES ? n - i : ROW_LANES;
        for (int l = 0; l < ROW_LANES; l++)
            u[l] = (double)(u0 + i + (l < m ? l : 0)); /* a short last block repeats its first pixel */
        unproject_lanes(in, (double)v, u, bx, by, bok);
        memcpy(x + i, bx, (size_t)m * sizeof *x);
        memcpy(y + i, by, (size_t)m * sizeof *y);
        memcpy(ok + i, bok, (size_t)m);
    }
    return true;
}

/* ks_project for ROW_LANES points: the pinhole division and ks_distort_normalized's operations in
 * the same order per lane (the same doubles as ks_project, bit for bit). */
KS_ROW_HOT static void project_lanes(const ks_intrinsics *in, const double *restrict X, const double *restrict Y,
                                     const double *restrict Z, double *restrict uo, double *restrict vo,
                                     uint8_t *restrict ok)
{
    const double *k = in->k;
    const double fx = in->fx, fy = in->fy, cx = in->cx, cy = in->cy, codx = in->codx, cody = in->cody;
    const double p1 = in->p1, p2 = in->p2;
    const double c = in->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0;
    const ks_vl limited = (ks_vl){0} + (in->metric_radius > 0 ? -1ll : 0ll);
    const double mr2 = in->metric_radius * in->metric_radius;
    const ks_vd zero = {0};
    ks_vd px, py, pz;
    memcpy(&px, X, sizeof px);
    memcpy(&py, Y, sizeof py);
    memcpy(&pz, Z, sizeof pz);
    ks_vl front = pz > 0.0;
    pz = VSEL(front, pz, zero + 1.0); /* lanes behind the camera are refused; keep their arithmetic tame */
    ks_vd x = px / pz, y = py / pz;
    ks_vd xp = x - codx, yp = y - cody;
    ks_vd x2 = xp * xp, y2 = yp * yp, xyp = xp * yp;
    ks_vd rs = x2 + y2;
    ks_vl good = front & ~(limited & (rs > mr2)) & VFINITE(rs);
    ks_vd rs2 = rs * rs, rs3 = rs2 * rs;
    ks_vd a = 1.0 + k[0] * rs + k[1] * rs2 + k[2] * rs3;
    ks_vd b = 1.0 + k[3] * rs + k[4] * rs2 + k[5] * rs3;
    ks_vd bi = VSEL(b != 0.0, 1.0 / b, zero + 1.0);
    ks_vd d = a * bi;
    ks_vd xd = xp * d + (rs + 2.0 * x2) * p2 + c * xyp * p1;
    ks_vd yd = yp * d + (rs + 2.0 * y2) * p1 + c * xyp * p2;
    ks_vd u = (xd + codx) * fx + cx;
    ks_vd v = (yd + cody) * fy + cy;
    good &= VFINITE(u) & VFINITE(v);
    for (int l = 0; l < ROW_LANES; l++) {
        ok[l] = (uint8_t)(good[l] != 0);
        uo[l] = u[l];
        vo[l] = v[l];
    }
}

bool ks_project_many(const ks_intrinsics *in, int n, const double *X, const double *Y, const double *Z, double *u,
                     double *v, uint8_t *ok)
{
    if (!in || !X || !Y || !Z || !u || !v || !ok || n < 0 || !(in->fx > 0) || !(in->fy > 0) ||
        (in->model != KS_LENS_BROWN_CONRADY && in->model != KS_LENS_RATIONAL_6KT)) {
        if (ok && n > 0)
            memset(ok, 0, (size_t)n);
        return false;
    }
    for (int i = 0; i < n; i += ROW_LANES) {
        double bx[ROW_LANES], by[ROW_LANES], bz[ROW_LANES], bu[ROW_LANES], bv[ROW_LANES];
        uint8_t bok[ROW_LANES];
        int m = n - i < ROW_LANES ? n - i : ROW_LANES;
        for (int l = 0; l < ROW_LANES; l++) {
            int j = i + (l < m ? l : 0); /* a short last block repeats its first point */
            bx[l] = X[j];
            by[l] = Y[j];
            bz[l] = Z[j];
        }
        project_lanes(in, bx, by, bz, bu, bv, bok);
        memcpy(u + i, bu, (size_t)m * sizeof *u);
        memcpy(v + i, bv, (size_t)m * sizeof *v);
        memcpy(ok + i, bok, (size_t)m);
    }
    return true;
}
