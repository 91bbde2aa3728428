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

double ks_fuse_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
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

size_t ks_depth_to_points(const ks_unproject_table *t, const uint16_t *depth, size_t stride,
                          const ks_extrinsics *to_rig, float *x, float *y, float *z)
{
    if (!t || !t->x || !depth || !x || !y || !z)
        return 0;
    float m[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    if (to_rig) {
        for (int i = 0; i < 9; i++)
            m[i] = (float)to_rig->R[i];
        for (int i = 0; i < 3; i++)
            m[9 + i] = (float)to_rig->t[i];
    }
    size_t w = (size_t)t->width;
    if (stride == 0)
        stride = w;
    size_t valid = 0;
    for (int v = 0; v < t->height; v++) {
        size_t o = (size_t)v * w;
        valid += row_to_points(t->x + o, t->y + o, depth + (size_t)v * stride, t->width, m, x + o, y + o, z + o);
    }
    return valid;
}

size_t ks_points_normals(const float *x, const float *y, const float *z, int width, int height,
                         const double viewpoint[3], float max_gap_mm, float *nx, float *ny, float *nz)
{
    size_t written = 0;
    float g2 = max_gap_mm > 0 ? max_gap_mm * max_gap_mm : INFINITY;
    for (int v = 0; v < height; v++)
        for (int u = 0; u < width; u++) {
            size_t i = (size_t)v * (size_t)width + (size_t)u;
            nx[i] = ny[i] = nz[i] = NAN;
            if (u == 0 || v == 0 || u == width - 1 || v == height - 1 || !(x[i] == x[i]))
                continue;
            size_t l = i - 1, r = i + 1, up = i - (size_t)width, dn = i + (size_t)width;
            float ax = x[r] - x[l], ay = y[r] - y[l], az = z[r] - z[l];
            float bx = x[dn] - x[up], by = y[dn] - y[up], bz = z[dn] - z[up];
            float a2 = ax * ax + ay * ay + az * az, b2 = bx * bx + by * by + bz * bz;
            if (!(a2 <= 4 * g2) || !(b2 <= 4 * g2)) /* NaN neighbour or a depth edge */
                continue;
            float cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
            float len = sqrtf(cx * cx + cy * cy + cz * cz);
            if (!(len > 0))
                continue;
            float vx = (float)viewpoint[0] - x[i], vy = (float)viewpoint[1] - y[i], vz = (float)viewpoint[2] - z[i];
            if (cx * vx + cy * vy + cz * vz < 0)
                len = -len;
            nx[i] = cx / len;
            ny[i] = cy / len;
            nz[i] = cz / len;
            written++;
        }
    return written;
}
