/* fuse/points.c: depth images to points. The camera model's Newton unprojection costs microseconds
 * per pixel, so it runs once per device and mode into a table of unit-depth rays (x, y) per pixel;
 * a frame then needs only z * ray, the rigid pose and a store: a few FMAs per pixel in a loop the
 * compiler vectorizes. Invalid rays are NaN in the table and a missing depth becomes NaN z, so NaN
 * marks "no point" without a branch. Output is organized (one slot per pixel) so normals can use
 * image neighbours and every device owns a fixed slice of the shared buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"
#include "util/monotime.h"

double ks_fuse_now_ms(void)
{
    return (double)ks_mono_ns() * 1e-6;
}

void ks_unproject_table_free(ks_unproject_table *t)
{
    if (!t)
        return;
    free(t->x);
    free(t->y);
    memset(t, 0, sizeof *t);
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
    size_t valid = 0;
    for (int v = 0; v < depth->height; v++)
        for (int u = 0; u < depth->width; u++) {
            size_t i = (size_t)v * (size_t)depth->width + (size_t)u;
            double uv[2] = {u, v}, xy[2];
            if (ks_unproject_ray(depth, uv, xy) && isfinite(xy[0]) && isfinite(xy[1])) {
                x[i] = (float)xy[0];
                y[i] = (float)xy[1];
                valid++;
            } else {
                x[i] = NAN;
                y[i] = NAN;
            }
        }
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
