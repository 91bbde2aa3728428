/* fuse/points.c: depth images to points. The camera model's Newton unprojection costs microseconds
 * per pixel, so it runs once per device and mode into a table of unit-depth rays (x, y) per pixel;
 * a frame then needs only z * ray, the rigid pose and a store: a few FMAs per pixel in a loop the
 * compiler vectorizes. Invalid rays are NaN in the table and a missing depth becomes NaN z, so NaN
 * marks "no point" without a branch. Output is organized (one slot per pixel) so normals can use
 * image neighbours and every device owns a fixed slice of the shared buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "calib/camera_model.h"
#include "calib/camera_model.h"
#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"
#include "util/monotime.h"

/* Where the table's Newton iteration stops: 1e-16 px^2 is 1e-8 px, a thousand times below what
 * the float table resolves (about 1e-5 px), so the table equals ks_unproject_ray's rays to the
 * last float bit except where a double lies within 1e-11 of a float rounding boundary. */
#define KS_TABLE_STOP_PX2 1e-16

/* A prediction this close (1e-3 px) is valid by ks_unproject_ray's own tolerance and one
 * Newton step from it is exact to the float table's precision (see ray_from_neighbours). */
#define KS_TABLE_GUESS_PX2 1e-6

double ks_fuse_now_ms(void)
{
    return (double)ks_mono_ns() * 1e-6;
}

void ks_unproject_table_free(ks_unproject_table *t)
{
    if (!t)
        return;
    if (t->map)
        munmap(t->map, t->map_bytes);
    else {
        free(t->x);
        free(t->y);
    }
    memset(t, 0, sizeof *t);
}

/* The rays of row v from the rays of the three rows above it (r3 points at row v-3, rows are w
 * apart): the quadratic through them predicts each ray to 1e-3..1e-5 px on every Azure Kinect
 * calibration we have. A prediction is an iterate of ks_unproject_ray's own Newton iteration:
 * when its pixel error is within that function's validity tolerance (1e-6 px^2) the pixel is
 * valid by the same rule, and one Newton step from there lands within about 1e-8 px of the
 * converged ray, a thousand times below what the float table resolves. So a pixel costs one
 * distortion evaluation (this loop has no dependence between pixels and vectorizes) instead of
 * the five or six from the closed-form guess. The distortion is ks_distort_normalized's, inlined.
 * Writes the rays and predicted[u] = 1 where the prediction holds; the caller solves the rest. */
KS_HOT_NANTEST static void predict_row(const ks_intrinsics *in, int v, int w, const float *restrict r3x,
                               const float *restrict r3y, float *restrict ox, float *restrict oy,
                               uint8_t *restrict predicted)
{
    const size_t W = (size_t)w;
    const float *r2x = r3x + W, *r2y = r3y + W, *r1x = r2x + W, *r1y = r2y + W;
    const double k0 = in->k[0], k1 = in->k[1], k2 = in->k[2], k3 = in->k[3], k4 = in->k[4], k5 = in->k[5];
    const double p1 = in->p1, p2 = in->p2, codx = in->codx, cody = in->cody;
    const double fx = in->fx, fy = in->fy, cx = in->cx, cy = in->cy;
    const double c = in->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0;
    const double mr2 = in->metric_radius > 0 ? in->metric_radius * in->metric_radius : INFINITY;
    const double pv = (double)v;
    for (int u = 0; u < w; u++) {
        double gx = 3.0 * ((double)r1x[u] - (double)r2x[u]) + (double)r3x[u];
        double gy = 3.0 * ((double)r1y[u] - (double)r2y[u]) + (double)r3y[u];
        double xp = gx - codx, yp = gy - cody;
        double x2 = xp * xp, y2 = yp * yp, xyp = xp * yp;
        double rs = x2 + y2, rs2 = rs * rs, rs3 = rs2 * rs;
        double a = 1.0 + k0 * rs + k1 * rs2 + k2 * rs3;
        double b = 1.0 + k3 * rs + k4 * rs2 + k5 * rs3;
        double bi = 1.0 / b;
        double d = a * bi;
        double xd = xp * d + (rs + 2.0 * x2) * p2 + c * xyp * p1;
        double yd = yp * d + (rs + 2.0 * y2) * p1 + c * xyp * p2;
        double ex = (double)u - ((xd + codx) * fx + cx);
        double ey = pv - ((yd + cody) * fy + cy);
        double da = k0 + 2.0 * k1 * rs + 3.0 * k2 * rs2;
        double db = k3 + 2.0 * k4 * rs + 3.0 * k5 * rs2;
        double dd = (da * b - a * db) * bi * bi;
        double j0 = fx * (d + 2.0 * x2 * dd + 6.0 * xp * p2 + c * yp * p1);
        double j1 = fx * (2.0 * xyp * dd + 2.0 * yp * p2 + c * xp * p1);
        double j2 = fy * (2.0 * xyp * dd + 2.0 * xp * p1 + c * yp * p2);
        double j3 = fy * (d + 2.0 * y2 * dd + 6.0 * yp * p1 + c * xp * p2);
        double idet = 1.0 / (j0 * j3 - j1 * j2);
        double rx = gx + (j3 * ex - j1 * ey) * idet;
        double ry = gy + (-j2 * ex + j0 * ey) * idet;
        /* NaN rays above (invalid pixels), b = 0 or a singular Jacobian all fail these tests */
        int ok = (ex * ex + ey * ey <= KS_TABLE_GUESS_PX2) & (rs <= mr2) & (fabs(rx) < 1e6) & (fabs(ry) < 1e6);
        ox[u] = ok ? (float)rx : NAN;
        oy[u] = ok ? (float)ry : NAN;
        predicted[u] = (uint8_t)ok;
    }
}

/* near[u] = 1 where a pixel of this row within two columns of u has no ray. */
static void mark_near_invalid(const float *x, int w, uint8_t *near)
{
    memset(near, 0, (size_t)w);
    for (int u = 0; u < w; u++)
        if (isnan(x[u]))
            for (int i = u - 2; i <= u + 2; i++)
                if (i >= 0 && i < w)
                    near[i] = 1;
}

ks_status ks_unproject_table_build(const ks_intrinsics *depth, ks_unproject_table *t, ks_error *err)
{
    if (!t || !depth)
        return ks_error_set(err, KS_EINVAL, "unproject table: no intrinsics or no table given");
    memset(t, 0, sizeof *t);
    if (depth->width <= 0 || depth->height <= 0 || depth->width > 8192 || depth->height > 8192)
        return ks_error_set(err, KS_EINVAL,
                            "unproject table: depth image size %dx%d is not a depth mode; pass the intrinsics "
                            "of a depth mode from ks_calibration_from_json",
                            depth->width, depth->height);
    size_t n = (size_t)depth->width * (size_t)depth->height;
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    float *y = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!x || !y) {
        free(x);
        free(y);
        return ks_error_set(err, KS_ENOMEM, "unproject table: out of memory for %zu pixels", n);
    }
    uint8_t *predicted = calloc(n, 1);
    if (!predicted) {
        free(x);
        free(y);
        return ks_error_set(err, KS_ENOMEM, "unproject table: out of memory for %zu pixels", n);
    }
    const int w = depth->width;
    for (int v = 0; v < depth->height; v++) {
        float *xr = x + (size_t)v * (size_t)w, *yr = y + (size_t)v * (size_t)w;
        uint8_t *pr = predicted + (size_t)v * (size_t)w;
        if (v >= 3)
            predict_row(depth, v, w, xr - 3 * (size_t)w, yr - 3 * (size_t)w, xr, yr, pr);
        for (int u = 0; u < w; u++) {
            if (pr[u])
                continue;
            double uv[2] = {u, v}, xy[2];
            bool ok = ks_unproject_ray(depth, uv, xy) && isfinite(xy[0]) && isfinite(xy[1]);
            xr[u] = ok ? (float)xy[0] : NAN;
            yr[u] = ok ? (float)xy[1] : NAN;
        }
    }
    /* A prediction near the edge of the valid region (the WFOV metric radius) may converge where
     * the cold start of ks_unproject_ray does not: ask it for every predicted pixel with an
     * invalid pixel within two pixels, so the table's valid mask is exactly the SDK-style one.
     * near[] marks pixels with an invalid pixel within two columns; five rows of it give the
     * 5x5 neighbourhood. */
    uint8_t *near = malloc(n);
    if (!near) {
        free(predicted);
        free(x);
        free(y);
        return ks_error_set(err, KS_ENOMEM, "unproject table: out of memory for %zu pixels", n);
    }
    for (int v = 0; v < depth->height; v++)
        mark_near_invalid(x + (size_t)v * (size_t)w, w, near + (size_t)v * (size_t)w);
    for (int v = 0; v < depth->height; v++) {
        int v0 = v >= 2 ? v - 2 : 0, v1 = v + 2 < depth->height ? v + 2 : depth->height - 1;
        for (int u = 0; u < w; u++) {
            size_t i = (size_t)v * (size_t)w + (size_t)u;
            if (!predicted[i])
                continue;
            bool edge = false;
            for (int j = v0; j <= v1; j++)
                edge |= near[(size_t)j * (size_t)w + (size_t)u] != 0;
            if (!edge)
                continue;
            double uv[2] = {u, v}, xy[2];
            if (!(ks_unproject_ray(depth, uv, xy) && isfinite(xy[0]) && isfinite(xy[1])))
                x[i] = y[i] = NAN;
        }
    }
    free(near);
    free(predicted);
    size_t valid = 0;
    for (size_t i = 0; i < n; i++)
        valid += !isnan(x[i]);
    t->width = depth->width;
    t->height = depth->height;
    t->x = x;
    t->y = y;
    t->valid_count = valid;
    return KS_OK;
}

/* One row: the pose is applied as R * (z*rx, z*ry, z) + t. */
KS_HOT static size_t row_to_points(const float *restrict tx, const float *restrict ty, const uint16_t *restrict d,
                                   int w, const float m[12], float *restrict x, float *restrict y,
                                   float *restrict z)
{
    const float r0 = m[0], r1 = m[1], r2 = m[2], r3 = m[3], r4 = m[4], r5 = m[5], r6 = m[6], r7 = m[7], r8 = m[8];
    const float t0 = m[9], t1 = m[10], t2 = m[11];
    size_t valid = 0;
    for (int i = 0; i < w; i++) {
        /* z = NaN when there is no depth, without a branch: 0.0f has all bits 0, OR in a quiet NaN */
        float zf = (float)d[i];
        uint32_t bits;
        memcpy(&bits, &zf, sizeof bits);
        bits |= (uint32_t)(d[i] == 0) * 0x7fc00000u;
        memcpy(&zf, &bits, sizeof zf);
        float px = zf * tx[i], py = zf * ty[i];
        x[i] = r0 * px + r1 * py + r2 * zf + t0;
        y[i] = r3 * px + r4 * py + r5 * zf + t1;
        z[i] = r6 * px + r7 * py + r8 * zf + t2;
        valid += (px == px);
    }
    return valid;
}

void ks_pose_matrix(const ks_extrinsics *to_rig, float m[12])
{
    static const float identity[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    memcpy(m, identity, sizeof identity);
    if (!to_rig)
        return;
    for (int i = 0; i < 9; i++)
        m[i] = (float)to_rig->R[i];
    for (int i = 0; i < 3; i++)
        m[9 + i] = (float)to_rig->t[i];
}

size_t ks_depth_rows_to_points(const ks_unproject_table *t, const uint16_t *depth, size_t stride, const float m[12],
                               int v0, int v1, float *x, float *y, float *z)
{
    size_t w = (size_t)t->width, valid = 0;
    if (stride == 0)
        stride = w;
    for (int v = v0; v < v1; v++) {
        size_t o = (size_t)(v - v0) * w, src = (size_t)v * w;
        valid += row_to_points(t->x + src, t->y + src, depth + (size_t)v * stride, t->width, m, x + o, y + o, z + o);
    }
    return valid;
}

size_t ks_depth_to_points(const ks_unproject_table *t, const uint16_t *depth, size_t stride,
                          const ks_extrinsics *to_rig, float *x, float *y, float *z)
{
    if (!t || !t->x || !depth || !x || !y || !z)
        return 0;
    float m[12];
    ks_pose_matrix(to_rig, m);
    return ks_depth_rows_to_points(t, depth, stride, m, 0, t->height, x, y, z);
}

size_t ks_normals_row(const float *const prev[3], const float *const cur[3], const float *const next[3], int width,
                      const float view[3], float max_gap_mm, float *nx, float *ny, float *nz)
{
    size_t written = 0;
    for (int u = 0; u < width; u++)
        nx[u] = ny[u] = nz[u] = NAN;
    if (!prev || !next)
        return 0; /* first or last image row: no vertical neighbour */
    const float *x = cur[0], *y = cur[1], *z = cur[2];
    const float g4 = max_gap_mm > 0 ? 4 * max_gap_mm * max_gap_mm : INFINITY;
    for (int u = 1; u < width - 1; u++) {
        if (!(x[u] == x[u]))
            continue;
        float ax = x[u + 1] - x[u - 1], ay = y[u + 1] - y[u - 1], az = z[u + 1] - z[u - 1];
        float bx = next[0][u] - prev[0][u], by = next[1][u] - prev[1][u], bz = next[2][u] - prev[2][u];
        float a2 = ax * ax + ay * ay + az * az, b2 = bx * bx + by * by + bz * bz;
        if (!(a2 <= g4) || !(b2 <= g4)) /* NaN neighbour or a depth edge */
            continue;
        float cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
        float len = sqrtf(cx * cx + cy * cy + cz * cz);
        if (!(len > 0))
            continue;
        float vx = view[0] - x[u], vy = view[1] - y[u], vz = view[2] - z[u];
        if (cx * vx + cy * vy + cz * vz < 0)
            len = -len;
        nx[u] = cx / len;
        ny[u] = cy / len;
        nz[u] = cz / len;
        written++;
    }
    return written;
}

size_t ks_points_normals(const float *x, const float *y, const float *z, int width, int height,
                         const double viewpoint[3], float max_gap_mm, float *nx, float *ny, float *nz)
{
    size_t written = 0, w = (size_t)width;
    const float view[3] = {(float)viewpoint[0], (float)viewpoint[1], (float)viewpoint[2]};
    for (int v = 0; v < height; v++) {
        size_t o = (size_t)v * w;
        const float *cur[3] = {x + o, y + o, z + o};
        size_t po = v > 0 ? o - w : o, no = v < height - 1 ? o + w : o; /* (only used when they exist) */
        const float *prev[3] = {x + po, y + po, z + po}, *next[3] = {x + no, y + no, z + no};
        written += ks_normals_row(v > 0 ? prev : NULL, cur, v < height - 1 ? next : NULL, width, view, max_gap_mm,
                                  nx + o, ny + o, nz + o);
    }
    return written;
}
