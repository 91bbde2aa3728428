/* fuse/color.c: color for points. MJPEG frames are decoded once per frame into a buffer the decoder
 * keeps (no per-frame allocation), optionally scaled down by libjpeg-turbo's DCT scaling, which is
 * several times faster than a full decode when a point cloud only needs coarse color. Points are
 * colored by projecting them into the color camera with the camera model (exact lens model) and
 * sampling the nearest pixel of the (possibly scaled) image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

struct ks_mjpeg_decoder {
    tjhandle tj;
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
    if (!d->tj) {
        free(d);
        return ks_error_set(err, KS_ENOMEM, "MJPEG decoder: libturbojpeg could not create a decompressor: %s",
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
 * points, written to vectorize: uv is NaN where the point is behind the camera or outside the
 * metric radius. Float is ~1e-3 px here, far below the sampling's half pixel. */
enum { CB = 256 };
KS_HOT static void project_block(const float *restrict x, const float *restrict y, const float *restrict z, int n,
                                 const float *restrict m, const float *restrict k, float *restrict u,
                                 float *restrict v)
{
    const float cx = k[0], cy = k[1], fx = k[2], fy = k[3], k1 = k[4], k2 = k[5], k3 = k[6], k4 = k[7], k5 = k[8],
                k6 = k[9], codx = k[10], cody = k[11], p1 = k[12], p2 = k[13], c = k[14], mr2 = k[15];
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
        float xd = xp * d + (rs + 2.0f * x2) * p2 + c * xy * p1;
        float yd = yp * d + (rs + 2.0f * y2) * p1 + c * xy * p2;
        float uu = (xd + codx) * fx + cx, vv = (yd + cody) * fy + cy;
        uint32_t ok = (uint32_t)(__builtin_isgreater(qz, 0.0f) & __builtin_islessequal(rs, mr2));
        uint32_t bad = (ok ^ 1u) * 0x7fc00000u, bu, bv;
        memcpy(&bu, &uu, 4);
        memcpy(&bv, &vv, 4);
        bu |= bad;
        bv |= bad;
        memcpy(&u[i], &bu, 4);
        memcpy(&v[i], &bv, 4);
    }
}

size_t ks_points_colorize(const float *x, const float *y, const float *z, size_t n, const ks_extrinsics *rig_to_color,
                          const ks_intrinsics *color, const ks_color_image *img, const uint8_t fallback[3],
                          uint8_t *rgb)
{
    return ks_points_colorize_seen(x, y, z, n, rig_to_color, color, img, fallback, rgb, NULL);
}

size_t ks_points_colorize_seen(const float *x, const float *y, const float *z, size_t n,
                               const ks_extrinsics *rig_to_color, const ks_intrinsics *color,
                               const ks_color_image *img, const uint8_t fallback[3], uint8_t *rgb, uint8_t *seen)
{
    size_t colored = 0;
    if (seen)
        memset(seen, 0, n);
    int den = img && img->scale_denom > 0 ? img->scale_denom : 1;
    double s = 1.0 / den;
    if (img && img->bgra && (color->model == KS_LENS_BROWN_CONRADY || color->model == KS_LENS_RATIONAL_6KT) &&
        color->fx > 0 && color->fy > 0) {
        float m[12], k[16];
        for (int i = 0; i < 9; i++)
            m[i] = (float)rig_to_color->R[i];
        for (int i = 0; i < 3; i++)
            m[9 + i] = (float)rig_to_color->t[i];
        const double kk[16] = {color->cx, color->cy, color->fx, color->fy, color->k[0], color->k[1], color->k[2],
                               color->k[3], color->k[4], color->k[5], color->codx, color->cody, color->p1, color->p2,
                               color->model == KS_LENS_RATIONAL_6KT ? 1.0 : 2.0,
                               color->metric_radius > 0 ? color->metric_radius * color->metric_radius : INFINITY};
        for (int i = 0; i < 16; i++)
            k[i] = (float)kk[i];
        const float fs = (float)s, w = (float)img->width, h = (float)img->height;
        float u[CB], v[CB];
        for (size_t b = 0; b < n; b += CB) {
            int cnt = (int)(n - b < CB ? n - b : CB);
            project_block(x + b, y + b, z + b, cnt, m, k, u, v);
            for (int i = 0; i < cnt; i++) {
                uint8_t *o = rgb + 3 * (b + (size_t)i);
                /* pixel centres at integers: scaling maps the edge of pixel 0 (-0.5) to itself */
                float us = (u[i] + 0.5f) * fs, vs = (v[i] + 0.5f) * fs; /* +0.5 of the rounding included */
                if (!(us >= 0.0f && vs >= 0.0f && us < w && vs < h)) { /* NaN fails too */
                    o[0] = fallback[0];
                    o[1] = fallback[1];
                    o[2] = fallback[2];
                    continue;
                }
                const uint8_t *px = img->bgra + (size_t)vs * img->stride + (size_t)us * 4;
                o[0] = px[2];
                o[1] = px[1];
                o[2] = px[0];
                if (seen)
                    seen[b + (size_t)i] = 1;
                colored++;
            }
        }
        return colored;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *o = rgb + 3 * i;
        o[0] = fallback[0];
        o[1] = fallback[1];
        o[2] = fallback[2];
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
        o[0] = px[2];
        o[1] = px[1];
        o[2] = px[0];
        if (seen)
            seen[i] = 1;
        colored++;
    }
    return colored;
}
