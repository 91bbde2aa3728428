/* 16-bit grayscale PNG (util/png16.h). */
#include "util/png16.h"

#include <png.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

/* libpng reports errors by longjmp: everything that must survive it is in this struct. */
typedef struct png_job {
    png_structp png;
    png_infop info;
    uint8_t *row;
} png_job;

static bool write_rows(png_job *j, FILE *f, const uint8_t *data, int w, int h, size_t stride, int level)
{
    if (setjmp(png_jmpbuf(j->png)))
        return false;
    png_init_io(j->png, f);
    png_set_IHDR(j->png, j->info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(j->png, level);
    png_write_info(j->png, j->info);
    for (int v = 0; v < h; v++) {
        const uint8_t *s = data + (size_t)v * stride;
        for (int u = 0; u < w; u++) { /* PNG stores 16-bit samples big-endian */
            uint16_t x;
            memcpy(&x, s + 2 * (size_t)u, 2);
            j->row[2 * u] = (uint8_t)(x >> 8);
            j->row[2 * u + 1] = (uint8_t)x;
        }
        png_write_row(j->png, j->row);
    }
    png_write_end(j->png, NULL);
    return true;
}

ks_status ks_png16_write(const char *path, const void *samples, int w, int h, size_t stride, int level, ks_error *err)
{
    if (!path || !path[0])
        return ks_error_set(err, KS_EINVAL, "PNG: no output path given");
    if (!samples || w <= 0 || h <= 0)
        return ks_error_set(err, KS_EINVAL, "PNG %s: no image or an empty size %dx%d", path, w, h);
    if (!stride)
        stride = (size_t)w * 2;
    png_job j = {NULL, NULL, NULL};
    j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    j.info = j.png ? png_create_info_struct(j.png) : NULL;
    j.row = malloc((size_t)w * 2);
    if (!j.png || !j.info || !j.row) {
        png_destroy_write_struct(&j.png, &j.info);
        free(j.row);
        return ks_error_set(err, KS_ENOMEM, "PNG %s: out of memory", path);
    }
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st == KS_OK) {
        bool ok = write_rows(&j, af.f, samples, w, h, stride, level < 0 ? 0 : level > 9 ? 9 : level);
        st = ks_atomic_commit(&af, ok, err);
    }
    png_destroy_write_struct(&j.png, &j.info);
    free(j.row);
    return st;
}

static bool read_rows(png_job *j, FILE *f, uint16_t **out, int *w, int *h, const char **why)
{
    if (setjmp(png_jmpbuf(j->png))) {
        *why = "damaged or truncated";
        return false;
    }
    png_init_io(j->png, f);
    png_read_info(j->png, j->info);
    png_uint_32 pw = png_get_image_width(j->png, j->info), ph = png_get_image_height(j->png, j->info);
    if (png_get_bit_depth(j->png, j->info) != 16 || png_get_color_type(j->png, j->info) != PNG_COLOR_TYPE_GRAY ||
        png_get_interlace_type(j->png, j->info) != PNG_INTERLACE_NONE) {
        *why = "not a 16-bit grey PNG (depth and IR images are)";
        return false;
    }
    if (pw == 0 || ph == 0 || pw > 16384 || ph > 16384) {
        *why = "an image size no camera has";
        return false;
    }
    *out = malloc((size_t)pw * ph * 2);
    j->row = malloc((size_t)pw * 2);
    if (!*out || !j->row) {
        *why = "out of memory";
        return false;
    }
    for (png_uint_32 v = 0; v < ph; v++) {
        png_read_row(j->png, j->row, NULL);
        for (png_uint_32 u = 0; u < pw; u++)
            (*out)[(size_t)v * pw + u] = (uint16_t)(j->row[2 * u] << 8 | j->row[2 * u + 1]);
    }
    *w = (int)pw;
    *h = (int)ph;
    return true;
}

ks_status ks_png16_read(const char *path, uint16_t **samples, int *w, int *h, ks_error *err)
{
    *samples = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ks_error_set(err, KS_ENOTFOUND, "PNG %s: cannot open (%s)", path, strerror(errno));
    uint8_t sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return ks_error_set(err, KS_EPARSE, "%s is not a PNG file", path);
    }
    png_job j = {NULL, NULL, NULL};
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    j.info = j.png ? png_create_info_struct(j.png) : NULL;
    const char *why = "out of memory";
    uint16_t *out = NULL;
    bool ok = j.png && j.info;
    if (ok) {
        png_set_sig_bytes(j.png, 8);
        ok = read_rows(&j, f, &out, w, h, &why);
    }
    png_destroy_read_struct(&j.png, &j.info, NULL);
    free(j.row);
    fclose(f);
    if (!ok) {
        free(out);
        return ks_error_set(err, KS_EPARSE, "PNG %s: %s", path, why);
    }
    *samples = out;
    return KS_OK;
}
