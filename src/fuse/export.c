/* fuse/export.c: files for other tools. PLY is written as binary little-endian with the property
 * names Open3D, MeshLab and CloudCompare expect (x y z, red green blue, nx ny nz); depth views as
 * 16-bit grayscale PNG (millimetres, as DEPTH16). Both go to "<path>.tmp" and are renamed when
 * complete, so a reader never sees half a file. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/fuse.h"

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

static ks_status tmp_name(const char *path, char *tmp, size_t cap, ks_error *err)
{
    if (!path || !*path)
        return ks_error_set(err, KS_EINVAL, "export: no output path given");
    if ((size_t)snprintf(tmp, cap, "%s.tmp", path) >= cap)
        return ks_error_set(err, KS_EINVAL, "export: path too long: %s", path);
    return KS_OK;
}

ks_status ks_ply_write(const char *path, const ks_cloud *c, unsigned fields, ks_error *err)
{
    char tmp[4096];
    ks_status st = tmp_name(path, tmp, sizeof tmp, err);
    if (st)
        return st;
    if (!c)
        return ks_error_set(err, KS_EINVAL, "PLY %s: no cloud given", path);
    bool color = (fields & KS_CLOUD_COLOR) && c->rgb;
    bool normals = (fields & KS_CLOUD_NORMALS) && c->nx && c->ny && c->nz;
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        n += c->x[i] == c->x[i] && c->y[i] == c->y[i] && c->z[i] == c->z[i];
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return ks_error_set(err, KS_EIO, "PLY %s: cannot create %s: %s; check the output directory exists and is writable",
                            path, tmp, strerror(errno));
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
        fclose(fp);
        remove(tmp);
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
    ok = (fflush(fp) == 0) && ok;
    ok = (fclose(fp) == 0) && ok;
    if (!ok) {
        remove(tmp);
        return ks_error_set(err, KS_EIO, "PLY %s: write failed (%s); check free disk space", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ks_error_set(err, KS_EIO, "PLY %s: cannot rename %s into place: %s", path, tmp, strerror(e));
    }
    return KS_OK;
}

ks_status ks_png_write_depth16(const char *path, const uint16_t *depth, int w, int h, ks_error *err)
{
    char tmp[4096];
    ks_status st = tmp_name(path, tmp, sizeof tmp, err);
    if (st)
        return st;
    if (!depth || w <= 0 || h <= 0)
        return ks_error_set(err, KS_EINVAL, "PNG %s: no image or an empty size %dx%d", path, w, h);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return ks_error_set(err, KS_EIO, "PNG %s: cannot create %s: %s; check the output directory exists and is writable",
                            path, tmp, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *row = malloc((size_t)w * 2);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        remove(tmp);
        return ks_error_set(err, KS_ENOMEM, "PNG %s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        remove(tmp);
        return ks_error_set(err, KS_EIO, "PNG %s: libpng failed while writing; check free disk space", path);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 3);
    png_write_info(png, info);
    for (int v = 0; v < h; v++) {
        const uint16_t *s = depth + (size_t)v * (size_t)w;
        for (int u = 0; u < w; u++) { /* PNG stores 16-bit samples big-endian */
            row[2 * u] = (uint8_t)(s[u] >> 8);
            row[2 * u + 1] = (uint8_t)s[u];
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(fp) != 0) {
        remove(tmp);
        return ks_error_set(err, KS_EIO, "PNG %s: write failed: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ks_error_set(err, KS_EIO, "PNG %s: cannot rename %s into place: %s", path, tmp, strerror(e));
    }
    return KS_OK;
}
