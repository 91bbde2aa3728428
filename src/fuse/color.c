/* fuse/color.c: color for points. MJPEG frames are decoded once per frame into a buffer the decoder
 * keeps (no per-frame allocation), optionally scaled down by libjpeg-turbo's DCT scaling, which is
 * several times faster than a full decode when a point cloud only needs coarse color. Points are
 * colored by projecting them into the color camera with the camera model (exact lens model) and
 * sampling the nearest pixel of the (possibly scaled) image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

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
    int w, h, subsamp, colorspace;
    if (tjDecompressHeader3(d->tj, jpeg, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0)
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

size_t ks_points_colorize(const float *x, const float *y, const float *z, size_t n, const ks_extrinsics *rig_to_color,
                          const ks_intrinsics *color, const ks_color_image *img, const uint8_t fallback[3],
                          uint8_t *rgb)
{
    size_t colored = 0;
    int den = img && img->scale_denom > 0 ? img->scale_denom : 1;
    double s = 1.0 / den;
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
        colored++;
    }
    return colored;
}
