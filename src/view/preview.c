/* Preview images for the view (kinsync/view.h): colour (MJPG decoded scaled down by libjpeg-turbo,
 * or BGRA32), depth through a colour map, IR as grey, each downscaled and JPEG-encoded. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "kinsync/fuse.h"
#include "kinsync/view.h"

/* Turbo colour map (Google's polynomial approximation), t in [0, 1]. */
static void turbo(double t, uint8_t rgb[3])
{
    if (t < 0)
        t = 0;
    if (t > 1)
        t = 1;
    double r = 0.13572138 + t * (4.61539260 + t * (-42.66032258 + t * (132.13108234 + t * (-152.94239396 + t * 59.28637943))));
    double g = 0.09140261 + t * (2.19418839 + t * (4.84296658 + t * (-14.18503333 + t * (4.27729857 + t * 2.82956604))));
    double b = 0.10667330 + t * (12.64194608 + t * (-60.58204836 + t * (110.36276771 + t * (-89.90310912 + t * 27.34824973))));
    double c[3] = {r, g, b};
    for (int i = 0; i < 3; i++)
        rgb[i] = (uint8_t)(c[i] < 0 ? 0 : c[i] > 1 ? 255 : c[i] * 255 + 0.5);
}

void ks_view_depth_rgb(uint16_t z, int near_mm, int far_mm, uint8_t rgb[3])
{
    if (z == 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    double span = far_mm > near_mm ? far_mm - near_mm : 1;
    turbo((z - near_mm) / span, rgb);
}

struct ks_view_encoder {
    tjhandle tj;               /* compressor, kept for every image */
    ks_mjpeg_decoder *dec;     /* for MJPG colour not decoded by the caller */
    uint8_t *rgb;              /* downscaled RGB scratch */
    size_t rgb_cap;
    unsigned char *out;        /* JPEG output (tjAlloc'd, grown by libturbojpeg) */
    unsigned long out_cap;
};

ks_status ks_view_encoder_create(ks_view_encoder **out, ks_error *err)
{
    *out = NULL;
    ks_view_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    e->tj = tjInitCompress();
    if (!e->tj) {
        free(e);
        return ks_error_set(err, KS_ENOMEM, "libturbojpeg: cannot create a compressor");
    }
    *out = e;
    return KS_OK;
}

void ks_view_encoder_destroy(ks_view_encoder *e)
{
    if (!e)
        return;
    tjDestroy(e->tj);
    ks_mjpeg_decoder_destroy(e->dec);
    free(e->rgb);
    tjFree(e->out);
    free(e);
}

static ks_status encode_rgb(ks_view_encoder *e, const uint8_t *rgb, int w, int h, const uint8_t **jpeg, size_t *n,
                            ks_error *err)
{
    /* a buffer of the worst-case size, kept: libturbojpeg never reallocates it (NOREALLOC) */
    unsigned long worst = tjBufSize(w, h, TJSAMP_420);
    if (worst == (unsigned long)-1)
        return ks_error_set(err, KS_EINVAL, "libturbojpeg: %s", tjGetErrorStr2(e->tj));
    if (worst > e->out_cap) {
        tjFree(e->out);
        e->out = tjAlloc((int)worst);
        e->out_cap = e->out ? worst : 0;
        if (!e->out)
            return ks_error_set(err, KS_ENOMEM, "out of memory");
    }
    unsigned long size = e->out_cap;
    if (tjCompress2(e->tj, rgb, w, 0, h, TJPF_RGB, &e->out, &size, TJSAMP_420, 75,
                    TJFLAG_FASTDCT | TJFLAG_NOREALLOC) != 0)
        return ks_error_set(err, KS_EIO, "libturbojpeg: %s", tjGetErrorStr2(e->tj));
    *jpeg = e->out;
    *n = size;
    return KS_OK;
}

ks_status ks_view_encoder_preview(ks_view_encoder *e, const ks_image *img, const ks_color_image *decoded,
                                  int max_width, int near_mm, int far_mm, const uint8_t **jpeg, size_t *n,
                                  ks_error *err)
{
    *jpeg = NULL;
    *n = 0;
    if (!img || !img->data || img->width <= 0 || img->height <= 0)
        return ks_error_set(err, KS_EINVAL, "no image");
    if (max_width < 16)
        max_width = 16;
    const uint8_t *src = NULL; /* 4 bytes per pixel BGRA, or 16-bit */
    int sw = img->width, sh = img->height;
    size_t sstride = (size_t)img->stride;
    bool is16 = img->format == KS_FORMAT_DEPTH16 || img->format == KS_FORMAT_IR16;
    if (img->format == KS_FORMAT_MJPG) {
        ks_color_image ci;
        if (decoded) { /* decoded once by the caller (the sink decodes each colour image once per set) */
            ci = *decoded;
        } else {
            if (!e->dec) {
                ks_status st = ks_mjpeg_decoder_create(&e->dec, err);
                if (st != KS_OK)
                    return st;
            }
            int denom = 1;
            while (denom < 8 && img->width / denom > max_width)
                denom *= 2;
            ks_status st = ks_mjpeg_decode(e->dec, img->data, img->size, denom, &ci, err);
            if (st != KS_OK)
                return st;
        }
        src = ci.bgra;
        sw = ci.width;
        sh = ci.height;
        sstride = ci.stride;
    } else if (img->format == KS_FORMAT_BGRA32 || is16) {
        src = img->data;
        if (!sstride)
            sstride = (size_t)sw * (is16 ? 2 : 4);
        if (img->size < sstride * (size_t)(sh - 1) + (size_t)sw * (is16 ? 2 : 4))
            return ks_error_set(err, KS_EINVAL, "image smaller than its size says");
    } else {
        return ks_error_set(err, KS_EINVAL, "no preview for this image format");
    }
    int step = (sw + max_width - 1) / max_width;
    if (step < 1)
        step = 1;
    int w = sw / step, h = sh / step;
    if (w < 1 || h < 1)
        return ks_error_set(err, KS_EINVAL, "image too small for a preview");
    size_t need = (size_t)w * (size_t)h * 3;
    if (need > e->rgb_cap) {
        uint8_t *r = realloc(e->rgb, need);
        if (!r)
            return ks_error_set(err, KS_ENOMEM, "out of memory");
        e->rgb = r;
        e->rgb_cap = need;
    }
    uint8_t *rgb = e->rgb;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)(y * step) * sstride;
        uint8_t *o = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, o += 3) {
            if (!is16) {
                const uint8_t *p = row + (size_t)x * step * 4;
                o[0] = p[2];
                o[1] = p[1];
                o[2] = p[0];
            } else {
                uint16_t z;
                memcpy(&z, row + (size_t)x * step * 2, 2);
                if (img->format == KS_FORMAT_DEPTH16) {
                    ks_view_depth_rgb(z, near_mm, far_mm, o);
                } else { /* IR: 0..1000 is the useful range of the Azure Kinect's passive/active IR */
                    unsigned g = z >= 1000 ? 255 : z * 255u / 1000u;
                    o[0] = o[1] = o[2] = (uint8_t)g;
                }
            }
        }
    }
    return encode_rgb(e, rgb, w, h, jpeg, n, err);
}

ks_status ks_view_encode_preview(const ks_image *img, int max_width, int near_mm, int far_mm, uint8_t **jpeg,
                                 size_t *n, ks_error *err)
{
    *jpeg = NULL;
    *n = 0;
    ks_view_encoder *e;
    ks_status st = ks_view_encoder_create(&e, err);
    if (st != KS_OK)
        return st;
    const uint8_t *out;
    st = ks_view_encoder_preview(e, img, NULL, max_width, near_mm, far_mm, &out, n, err);
    if (st == KS_OK) {
        *jpeg = malloc(*n);
        if (*jpeg)
            memcpy(*jpeg, out, *n);
        else
            st = ks_error_set(err, KS_ENOMEM, "out of memory");
    }
    ks_view_encoder_destroy(e);
    return st;
}
