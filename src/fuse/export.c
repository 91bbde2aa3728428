/* fuse/export.c: files for other tools. PLY is written as binary little-endian with the property
 * names Open3D, MeshLab and CloudCompare expect (x y z, red green blue, nx ny nz); depth views as
 * 16-bit grayscale PNG (millimetres, as DEPTH16). Both go through a temporary file that is
 * renamed when complete (util/fileio.h), so a reader never sees half a file. */
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

ks_status ks_ply_write(const char *path, const ks_cloud *c, unsigned fields, ks_error *err)
{
    if (!path || !*path)
        return ks_error_set(err, KS_EINVAL, "export: no output path given");
    if (!c)
        return ks_error_set(err, KS_EINVAL, "PLY %s: no cloud given", path);
    bool color = (fields & KS_CLOUD_COLOR) && c->rgb;
    bool normals = (fields & KS_CLOUD_NORMALS) && c->nx && c->ny && c->nz;
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        n += c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i];
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st)
        return st;
    FILE *fp = af.f;
    fprintf(fp,
            "ply\nformat binary_little_endian 1.0\ncomment written by kinsync fuse (units: millimetres)\n"
            "element vertex %zu\nproperty float x\nproperty float y\nproperty float z\n",
            n);
    if (color)
        fprintf(fp, "property uchar red\nproperty uchar green\nproperty uchar blue\n");
    if (normals)
        fprintf(fp, "property float nx\nproperty float ny\nproperty float nz\n");
    fprintf(fp, "end_header\n");
    size_t rec = 12 + (color ? 3 : 0) + (normals ? 12 : 0);
    enum { CHUNK = 4096 };
    uint8_t *buf = malloc(rec * CHUNK);
    if (!buf) {
        ks_atomic_abort(&af);
        return ks_error_set(err, KS_ENOMEM, "PLY %s: out of memory", path);
    }
    size_t fill = 0;
    bool ok = true;
    for (size_t i = 0; i < c->count && ok; i++) {
        if (!(c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i]))
            continue;
        uint8_t *p = buf + fill * rec;
        put_f32(p, c->x[i]);
        put_f32(p + 4, c->y[i]);
        put_f32(p + 8, c->z[i]);
        p += 12;
        if (color) {
            memcpy(p, c->rgb + 3 * i, 3);
            p += 3;
        }
        if (normals) {
            /* a point without a normal gets (0,0,0): readers want a number there */
            float a = c->nx[i], b = c->ny[i], d = c->nz[i];
            bool has = a == a && b == b && d == d;
            put_f32(p, has ? a : 0.0f);
            put_f32(p + 4, has ? b : 0.0f);
            put_f32(p + 8, has ? d : 0.0f);
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

ks_status ks_png_write_depth16(const char *path, const uint16_t *depth, int w, int h, ks_error *err)
{
    return ks_png16_write(path, depth, w, h, 0, 3, err);
}
