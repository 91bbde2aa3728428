/* fuse/color.c: color for points. MJPEG frames are decoded once per frame into a buffer the decoder
 * keeps (no per-frame allocation): at full size by libjpeg-turbo; scaled down (1/2, 1/4, 1/8: when
 * a point cloud only needs coarse color) by fuse/jpeg_lowres.c straight to the small image, or by
 * libjpeg-turbo's DCT scaling for a frame that decoder does not take. Points are
 * colored by projecting them into the color camera with the camera model (exact lens model) and
 * sampling the nearest pixel of the (possibly scaled) image. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

struct ks_mjpeg_decoder {
    tjhandle tj;
    ks_jpeg_lowres *lowres; /* scaled decodes of what it takes (fuse/jpeg_lowres.c); NULL when
                               KINSYNC_MJPEG_LIBJPEG is set: libjpeg-turbo for every frame */
    uint8_t *buf;
    size_t cap;
};

ks_status ks_mjpeg_decoder_create(ks_mjpeg_decoder **out, ks_error *err)
{
    *out = NULL;
    ks_mjpeg_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return ks_error_set(err, KS_ENOMEM, "MJPEG decoder: out of memory");
    d->tj = tjInitDecompress();
    bool lowres = !getenv("KINSYNC_MJPEG_LIBJPEG");
    d->lowres = lowres ? ks_jpeg_lowres_create() : NULL;
    if (!d->tj || (lowres && !d->lowres)) {
        if (d->tj)
            tjDestroy(d->tj);
        ks_jpeg_lowres_destroy(d->lowres);
        free(d);
        return ks_error_set(err, KS_ENOMEM,
                            "MJPEG decoder: out of memory, or libturbojpeg could not create a decompressor: %s",
                            tjGetErrorStr());
    }
    *out = d;
    return KS_OK;
}

void ks_mjpeg_decoder_destroy(ks_mjpeg_decoder *d)
{
    if (!d)
        return;
    tjDestroy(d->tj);
    ks_jpeg_lowres_destroy(d->lowres);
    free(d->buf);
    free(d);
}

ks_status ks_mjpeg_decode(ks_mjpeg_decoder *d, const uint8_t *jpeg, size_t size, int scale_denom,
                          ks_color_image *out, ks_error *err)
{
    if (!d || !jpeg || !out)
        return ks_error_set(err, KS_EINVAL, "MJPEG decode: no decoder, data or output given");
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
        return ks_error_set(err, KS_EINVAL, "MJPEG decode: scale 1/%d is not supported; use 1, 2, 4 or 8",
                            scale_denom);
    if (size < 4 || size > (size_t)0x7fffffff)
        return ks_error_set(err, KS_EPARSE, "MJPEG decode: frame of %zu bytes is not a JPEG image", size);
    /* scaled down, the frames cameras write are decoded straight to the small image; anything
     * that decoder does not take (or finds damaged) goes to libjpeg-turbo */
    if (scale_denom > 1 && d->lowres &&
        ks_jpeg_lowres_decode(d->lowres, jpeg, size, scale_denom, &d->buf, &d->cap, out, NULL) == KS_OK)
        return KS_OK;
    /* libjpeg-turbo can return success for a truncated header without writing the size: start at 0 */
    int w = 0, h = 0, subsamp = -1, colorspace = -1;
    if (tjDecompressHeader3(d->tj, jpeg, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0 || w <= 0 ||
        h <= 0)
        return ks_error_set(err, KS_EPARSE, "MJPEG decode: not a readable JPEG frame (%s); check the color format",
                            tjGetErrorStr2(d->tj));
    int sw = (w + scale_denom - 1) / scale_denom, sh = (h + scale_denom - 1) / scale_denom; /* TJSCALED */
    if (sw <= 0 || sh <= 0 || sw > 16384 || sh > 16384)
        return ks_error_set(err, KS_EPARSE, "MJPEG decode: implausible image size %dx%d", w, h);
    size_t need = (size_t)sw * (size_t)sh * 4;
    if (need > d->cap) {
        uint8_t *nb = realloc(d->buf, need);
        if (!nb)
            return ks_error_set(err, KS_ENOMEM, "MJPEG decode: out of memory for a %dx%d image", sw, sh);
        d->buf = nb;
        d->cap = need;
    }
    if (tjDecompress2(d->tj, jpeg, (unsigned long)size, d->buf, sw, sw * 4, sh, TJPF_BGRA, TJFLAG_FASTDCT) != 0 &&
        tjGetErrorCode(d->tj) == TJERR_FATAL)
        return ks_error_set(err, KS_EPARSE, "MJPEG decode: corrupt JPEG frame (%s)", tjGetErrorStr2(d->tj));
    out->width = sw;
    out->height = sh;
    out->stride = (size_t)sw * 4;
    out->bgra = d->buf;
    out->scale_denom = scale_denom;
    return KS_OK;
}

/* The lens model of docs/camera-model.md (the formula of ks_project) in float over a block of
 * points, written to vectorize (no branch: the checks are masks): off[i] is the byte offset in the
 * image of the pixel point i samples, or -1 when the point is NaN, behind the camera, outside the
 * lens model's metric radius or outside the image. Float is ~1e-3 px here, far below the
 * sampling's half pixel (test_fuse_points bounds it on every pixel of the real calibrations). */
enum { CB = 256 };
typedef struct color_proj {
    float m[12];    /* rig to colour camera: R row-major, then t */
    float k1, k2, k3, k4, k5, k6, codx, cody, p1, p2;
    float cp1, cp2; /* p1, p2 times the tangential cross-term factor (2 Brown-Conrady, 1 Rational 6KT) */
    float mr2;      /* the metric radius squared (infinite when there is none) */
    float fu, u0, fv, v0; /* pixel of the scaled image + 0.5: xd * fu + u0 (codx and the 1/scale folded in) */
    float w, h;     /* the image size */
    int32_t stride; /* bytes per image row */
} color_proj;

KS_HOT_NANTEST static void project_block(const float *restrict x, const float *restrict y, const float *restrict z,
                                         int n, const color_proj *restrict cp, int32_t *restrict off)
{
    const float *m = cp->m;
    const float k1 = cp->k1, k2 = cp->k2, k3 = cp->k3, k4 = cp->k4, k5 = cp->k5, k6 = cp->k6, codx = cp->codx,
                cody = cp->cody, p1 = cp->p1, p2 = cp->p2, cp1 = cp->cp1, cp2 = cp->cp2, mr2 = cp->mr2;
    const float fu = cp->fu, u0 = cp->u0, fv = cp->fv, v0 = cp->v0, w = cp->w, h = cp->h;
    const int32_t stride = cp->stride;
    for (int i = 0; i < n; i++) {
        float qx = m[0] * x[i] + m[1] * y[i] + m[2] * z[i] + m[9];
        float qy = m[3] * x[i] + m[4] * y[i] + m[5] * z[i] + m[10];
        float qz = m[6] * x[i] + m[7] * y[i] + m[8] * z[i] + m[11];
        float iz = 1.0f / qz;
        float xp = qx * iz - codx, yp = qy * iz - cody;
        float x2 = xp * xp, y2 = yp * yp, xy = xp * yp, rs = x2 + y2;
        float a = 1.0f + rs * (k1 + rs * (k2 + rs * k3));
        float b = 1.0f + rs * (k4 + rs * (k5 + rs * k6));
        b += (float)(b == 0.0f); /* a zero denominator counts as 1, as in ks_project */
        float d = a / b;
        float xd = xp * d + (rs + 2.0f * x2) * p2 + xy * cp1;
        float yd = yp * d + (rs + 2.0f * y2) * p1 + xy * cp2;
        /* the pixel of the scaled image, + 0.5 so that truncation rounds to the nearest (pixel
         * centres at integers: scaling maps the edge of pixel 0, -0.5, to itself) */
        float us = xd * fu + u0, vs = yd * fv + v0;
        int ok = __builtin_isgreater(qz, 0.0f) & __builtin_islessequal(rs, mr2) & __builtin_isgreaterequal(us, 0.0f) &
                 __builtin_isgreaterequal(vs, 0.0f) & __builtin_isless(us, w) & __builtin_isless(vs, h);
        int32_t iu = (int32_t)(ok ? us : 0.0f), iv = (int32_t)(ok ? vs : 0.0f); /* NaN never converted */
        off[i] = ok ? iv * stride + iu * 4 : -1;
    }
}

/* The pixels at off[] (see project_block) as packed colours 0x01BBGGRR (R in the low byte, the top
 * byte 1: a colour count the voxel grid sums as it is), 0 where off is -1 (no colour pixel). Returns
 * how many were sampled. */
typedef uint32_t u32_unaligned __attribute__((aligned(1), may_alias));
KS_HOT static size_t sample_block(const int32_t *restrict off, int n, const uint8_t *restrict img,
                                  uint32_t *restrict col)
{
    uint32_t colored = 0;
    for (int i = 0; i < n; i++) {
        int32_t o = off[i];
        int ok = o >= 0;
        uint32_t px = *(const u32_unaligned *)(img + (ok ? o : 0)); /* B G R A */
        uint32_t c = 0x01000000u | (px >> 16 & 0xffu) | (px & 0xff00u) | (px & 0xffu) << 16;
        col[i] = ok ? c : 0;
        colored += (uint32_t)ok;
    }
    return colored;
}

size_t ks_points_colorize(const float *x, const float *y, const float *z, size_t n, const ks_extrinsics *rig_to_color,
                          const ks_intrinsics *color, const ks_color_image *img, const uint8_t fallback[3],
                          uint8_t *rgb)
{
    size_t colored = 0;
    uint32_t col[CB];
    for (size_t b = 0; b < n; b += CB) {
        size_t m = n - b < CB ? n - b : CB;
        colored += ks_points_colorize_packed(x + b, y + b, z + b, m, rig_to_color, color, img, col);
        for (size_t i = 0; i < m; i++) {
            uint8_t *o = rgb + 3 * (b + i);
            uint32_t c = col[i];
            o[0] = c ? (uint8_t)c : fallback[0];
            o[1] = c ? (uint8_t)(c >> 8) : fallback[1];
            o[2] = c ? (uint8_t)(c >> 16) : fallback[2];
        }
    }
    return colored;
}

size_t ks_points_colorize_packed(const float *x, const float *y, const float *z, size_t n,
                                 const ks_extrinsics *rig_to_color, const ks_intrinsics *color,
                                 const ks_color_image *img, uint32_t *col)
{
    size_t colored = 0;
    int den = img && img->scale_denom > 0 ? img->scale_denom : 1;
    double s = 1.0 / den;
    /* byte offsets in int32: any real image (the largest colour mode is 4096x3072x4 = 48 MB) */
    if (img && img->bgra && (color->model == KS_LENS_BROWN_CONRADY || color->model == KS_LENS_RATIONAL_6KT) &&
        color->fx > 0 && color->fy > 0 && img->width > 0 && img->height > 0 && img->stride >= (size_t)img->width * 4 &&
        img->stride * (size_t)img->height <= (size_t)INT32_MAX) {
        color_proj cp;
        for (int i = 0; i < 9; i++)
            cp.m[i] = (float)rig_to_color->R[i];
        for (int i = 0; i < 3; i++)
            cp.m[9 + i] = (float)rig_to_color->t[i];
        const double *k = color->k, c = color->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0;
        cp.k1 = (float)k[0], cp.k2 = (float)k[1], cp.k3 = (float)k[2];
        cp.k4 = (float)k[3], cp.k5 = (float)k[4], cp.k6 = (float)k[5];
        cp.codx = (float)color->codx, cp.cody = (float)color->cody;
        cp.p1 = (float)color->p1, cp.p2 = (float)color->p2;
        cp.cp1 = (float)(c * color->p1), cp.cp2 = (float)(c * color->p2);
        cp.mr2 = color->metric_radius > 0 ? (float)(color->metric_radius * color->metric_radius) : INFINITY;
        /* u = (xd + codx) fx + cx in full-resolution pixels; (u + 0.5) s in the scaled image */
        cp.fu = (float)(color->fx * s), cp.u0 = (float)((color->codx * color->fx + color->cx + 0.5) * s);
        cp.fv = (float)(color->fy * s), cp.v0 = (float)((color->cody * color->fy + color->cy + 0.5) * s);
        cp.w = (float)img->width;
        cp.h = (float)img->height;
        cp.stride = (int32_t)img->stride;
        int32_t off[CB];
        for (size_t b = 0; b < n; b += CB) {
            int cnt = (int)(n - b < CB ? n - b : CB);
            project_block(x + b, y + b, z + b, cnt, &cp, off);
            colored += sample_block(off, cnt, img->bgra, col + b);
        }
        return colored;
    }
    for (size_t i = 0; i < n; i++) {
        col[i] = 0;
        if (!(x[i] == x[i]) || !img || !img->bgra)
            continue;
        double p[3] = {x[i], y[i], z[i]}, q[3], uv[2];
        ks_extrinsics_apply(rig_to_color, p, q);
        if (!ks_project(color, q, uv))
            continue;
        /* pixel centres at integers: scaling maps the edge of pixel 0 (-0.5) to itself */
        double us = (uv[0] + 0.5) * s - 0.5, vs = (uv[1] + 0.5) * s - 0.5;
        long iu = lround(us), iv = lround(vs);
        if (!(us > -0.5) || !(vs > -0.5) || iu < 0 || iv < 0 || iu >= img->width || iv >= img->height)
            continue;
        const uint8_t *px = img->bgra + (size_t)iv * img->stride + (size_t)iu * 4;
        col[i] = 0x01000000u | (uint32_t)px[2] | (uint32_t)px[1] << 8 | (uint32_t)px[0] << 16;
        colored++;
    }
    return colored;
}
