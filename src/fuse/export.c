/* fuse/export.c: files for other tools. PLY is written as binary little-endian with the property
 * names Open3D, MeshLab and CloudCompare expect (x y z, red green blue, nx ny nz); depth views as
 * 16-bit grayscale PNG (millimetres, as DEPTH16). Both go through a temporary file that is
 * renamed when complete (util/fileio.h), so a reader never sees half a file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/fuse.h"
#include "util/fileio.h"
#include "util/png16.h"

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

/* d (|d| <= 32767.5 here) rounded to the nearest integer (halves up) into 2 bytes; shifted positive
 * so the conversion's truncation is a floor, without a branch on the sign */
static void put_i16(uint8_t *p, double d)
{
    uint16_t u = (uint16_t)(int16_t)((int32_t)(d + 32768.5) - 32768);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
}

/* The quantization of ks_ply_write_quantized: origin (a multiple of the voxel size at the centre
 * of the valid points' bounding box) and step (voxel / 2^k, the finest with every point within
 * 32767 steps of the origin). False when even a whole voxel is too fine. */
static bool quantization(const ks_cloud *c, double voxel, double origin[3], double *step, size_t *valid)
{
    size_t n = 0;
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    const float *v[3] = {c->x, c->y, c->z};
    for (size_t i = 0; i < c->count; i++) {
        if (!(c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i]))
            continue;
        n++;
        for (int k = 0; k < 3; k++) {
            lo[k] = v[k][i] < lo[k] ? v[k][i] : lo[k];
            hi[k] = v[k][i] > hi[k] ? v[k][i] : hi[k];
        }
    }
    *valid = n;
    double half = 0;
    for (int k = 0; k < 3; k++) {
        origin[k] = lo[k] <= hi[k] ? round((lo[k] + hi[k]) / 2 / voxel) * voxel : 0;
        if (lo[k] <= hi[k]) {
            double e = fmax(fabs(hi[k] - origin[k]), fabs(lo[k] - origin[k]));
            half = e > half ? e : half;
        }
    }
    for (int k = 8; k >= 0; k--) {
        *step = voxel / (double)(1 << k);
        if (half / *step <= 32766.5) /* rounds to at most 32767 */
            return true;
    }
    return false;
}

/* One writer for both layouts: float coordinates (step == 0) or 16-bit steps from origin. */
static ks_status ply_write(const char *path, const ks_cloud *c, unsigned fields, double voxel_mm, ks_error *err)
{
    if (!path || !*path)
        return ks_error_set(err, KS_EINVAL, "export: no output path given");
    if (!c)
        return ks_error_set(err, KS_EINVAL, "PLY %s: no cloud given", path);
    const bool quant = voxel_mm > 0;
    if (voxel_mm < 0 || voxel_mm != voxel_mm)
        return ks_error_set(err, KS_EINVAL, "PLY %s: voxel size %g mm; give the grid's voxel size (> 0)", path,
                            voxel_mm);
    double origin[3] = {0, 0, 0}, step = 0;
    size_t n = 0;
    if (quant && !quantization(c, voxel_mm, origin, &step, &n))
        return ks_error_set(err, KS_EINVAL,
                            "PLY %s: the cloud spans more than 2 x 32767 voxels of %g mm; 16-bit coordinates "
                            "cannot hold it: write float coordinates (kinsync fuse --format ply)",
                            path, voxel_mm);
    bool color = (fields & KS_CLOUD_COLOR) && c->rgb;
    bool normals = (fields & KS_CLOUD_NORMALS) && c->nx && c->ny && c->nz;
    for (size_t i = 0; !quant && i < c->count; i++) /* (counted by quantization otherwise) */
        n += c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i];
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st)
        return st;
    FILE *fp = af.f;
    fprintf(fp, "ply\nformat binary_little_endian 1.0\ncomment written by kinsync fuse (units: millimetres)\n");
    if (quant)
        fprintf(fp,
                "comment kinsync-quantized: point_mm = origin_mm + step_mm * (x, y, z); normal = (nx, ny, nz) / 127\n"
                "comment origin_mm %.17g %.17g %.17g\ncomment step_mm %.17g\n",
                origin[0], origin[1], origin[2], step);
    const char *ct = quant ? "short" : "float", *nt = quant ? "char" : "float";
    fprintf(fp, "element vertex %zu\nproperty %s x\nproperty %s y\nproperty %s z\n", n, ct, ct, ct);
    if (color)
        fprintf(fp, "property uchar red\nproperty uchar green\nproperty uchar blue\n");
    if (normals)
        fprintf(fp, "property %s nx\nproperty %s ny\nproperty %s nz\n", nt, nt, nt);
    fprintf(fp, "end_header\n");
    size_t rec = (quant ? 6 : 12) + (color ? 3 : 0) + (normals ? (quant ? 3 : 12) : 0);
    enum { CHUNK = 4096 };
    uint8_t *buf = malloc(rec * CHUNK);
    if (!buf) {
        ks_atomic_abort(&af);
        return ks_error_set(err, KS_ENOMEM, "PLY %s: out of memory", path);
    }
    const double inv = quant ? 1.0 / step : 0;
    size_t fill = 0;
    bool ok = true;
    for (size_t i = 0; i < c->count && ok; i++) {
        if (!(c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i]))
            continue;
        uint8_t *p = buf + fill * rec;
        if (quant) {
            put_i16(p, ((double)c->x[i] - origin[0]) * inv);
            put_i16(p + 2, ((double)c->y[i] - origin[1]) * inv);
            put_i16(p + 4, ((double)c->z[i] - origin[2]) * inv);
            p += 6;
        } else {
            put_f32(p, c->x[i]);
            put_f32(p + 4, c->y[i]);
            put_f32(p + 8, c->z[i]);
            p += 12;
        }
        if (color) {
            memcpy(p, c->rgb + 3 * i, 3);
            p += 3;
        }
        if (normals) {
            /* a point without a normal gets (0,0,0): readers want a number there */
            float a = c->nx[i], b = c->ny[i], d = c->nz[i];
            bool has = a == a && b == b && d == d;
            if (quant) {
                p[0] = (uint8_t)(int8_t)(has ? lrintf(fmaxf(-1.0f, fminf(1.0f, a)) * 127.0f) : 0);
                p[1] = (uint8_t)(int8_t)(has ? lrintf(fmaxf(-1.0f, fminf(1.0f, b)) * 127.0f) : 0);
                p[2] = (uint8_t)(int8_t)(has ? lrintf(fmaxf(-1.0f, fminf(1.0f, d)) * 127.0f) : 0);
            } else {
                put_f32(p, has ? a : 0.0f);
                put_f32(p + 4, has ? b : 0.0f);
                put_f32(p + 8, has ? d : 0.0f);
            }
        }
        if (++fill == CHUNK) {
            ok = fwrite(buf, rec, fill, fp) == fill;
            fill = 0;
        }
    }
    if (ok && fill)
        ok = fwrite(buf, rec, fill, fp) == fill;
    free(buf);
    return ks_atomic_commit(&af, ok, err);
}

ks_status ks_ply_write(const char *path, const ks_cloud *c, unsigned fields, ks_error *err)
{
    return ply_write(path, c, fields, 0, err);
}

ks_status ks_ply_write_quantized(const char *path, const ks_cloud *c, unsigned fields, double voxel_mm, ks_error *err)
{
    if (!(voxel_mm > 0))
        return ks_error_set(err, KS_EINVAL, "PLY %s: voxel size %g mm; give the grid's voxel size (> 0)",
                            path ? path : "", voxel_mm);
    return ply_write(path, c, fields, voxel_mm, err);
}

ks_status ks_png_write_depth16(const char *path, const uint16_t *depth, int w, int h, ks_error *err)
{
    return ks_png16_write(path, depth, w, h, 0, 3, err);
}
