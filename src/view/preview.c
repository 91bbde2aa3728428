/* Preview images for the view (kinsync/view.h): colour (MJPG decoded scaled down by libjpeg-turbo's
 * DCT scaling, or BGRA32), depth through a colour map, IR as grey, each downsampled to the preview's
 * size first (only the pixels kept are mapped) and JPEG-encoded: colour and depth as 4:2:0 RGB, IR
 * as a one-channel greyscale JPEG (a third of the encoding work). */
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

/* The depth colour map as a table over the [near, far] span (ks_view_depth_rgb per kept pixel was
 * a sixth-degree polynomial in doubles, three times per pixel). */
#define DEPTH_LUT 1024

struct ks_view_encoder {
    tjhandle tj;               /* compressor, kept for every image */
    uint8_t lut[DEPTH_LUT][3]; /* depth colour map over [lut_near, lut_far] */
    int lut_near, lut_far;     /* lut_far 0: not built */
    int last_w, last_h;        /* the last preview's size */
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

static ks_status encode_rgb(ks_view_encoder *e, const uint8_t *rgb, int w, int h, bool grey, const uint8_t **jpeg,
                            size_t *n, ks_error *err)
{
    /* a buffer of the worst-case size, kept: libturbojpeg never reallocates it (NOREALLOC) */
    unsigned long worst = tjBufSize(w, h, grey ? TJSAMP_GRAY : TJSAMP_420);
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
    if (tjCompress2(e->tj, rgb, w, 0, h, grey ? TJPF_GRAY : TJPF_RGB, &e->out, &size, grey ? TJSAMP_GRAY : TJSAMP_420,
                    75, TJFLAG_FASTDCT | TJFLAG_NOREALLOC) != 0)
        return ks_error_set(err, KS_EIO, "libturbojpeg: %s", tjGetErrorStr2(e->tj));
    *jpeg = e->out;
    *n = size;
    e->last_w = w;
    e->last_h = h;
    return KS_OK;
}

void ks_view_encoder_last_size(const ks_view_encoder *e, int *w, int *h)
{
    *w = e ? e->last_w : 0;
    *h = e ? e->last_h : 0;
}

/* The MJPEG scale for a preview max_width wide: libjpeg-turbo's DCT scaling (1/2, 1/4, 1/8) down to
 * the smallest image still at least 3/4 of the preview's width, so 720P decodes at 1/8 straight to
 * 160x90 for 192 (the DCT averages each 8x8 block: a better thumbnail than keeping every n-th pixel). */
int ks_view_color_denom(int width, int max_width)
{
    if (max_width < 16)
        max_width = 16;
    int denom = 1;
    while (denom < 8 && width / (denom * 2) >= max_width * 3 / 4)
        denom *= 2;
    return denom;
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
            ks_status st = ks_mjpeg_decode(e->dec, img->data, img->size, ks_view_color_denom(img->width, max_width),
                                           &ci, err);
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
    bool grey = img->format == KS_FORMAT_IR16;
    size_t need = (size_t)w * (size_t)h * 3;
    if (need > e->rgb_cap) {
        uint8_t *r = realloc(e->rgb, need);
        if (!r)
            return ks_error_set(err, KS_ENOMEM, "out of memory");
        e->rgb = r;
        e->rgb_cap = need;
    }
    uint8_t *rgb = e->rgb;
    int span = far_mm > near_mm ? far_mm - near_mm : 1;
    if (img->format == KS_FORMAT_DEPTH16 && (e->lut_far != far_mm || e->lut_near != near_mm)) {
        for (int i = 0; i < DEPTH_LUT; i++)
            turbo((double)i / (DEPTH_LUT - 1), e->lut[i]);
        e->lut_near = near_mm;
        e->lut_far = far_mm;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)(y * step) * sstride;
        if (!is16) {
            uint8_t *o = rgb + (size_t)y * w * 3;
            for (int x = 0; x < w; x++, o += 3) {
                const uint8_t *p = row + (size_t)x * step * 4;
                o[0] = p[2];
                o[1] = p[1];
                o[2] = p[0];
            }
        } else if (grey) { /* IR: 0..1000 is the useful range of the Azure Kinect's passive/active IR */
            uint8_t *o = rgb + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                uint16_t z;
                memcpy(&z, row + (size_t)x * step * 2, 2);
                o[x] = (uint8_t)(z >= 1000 ? 255 : z * 255u / 1000u);
            }
        } else {
            uint8_t *o = rgb + (size_t)y * w * 3;
            for (int x = 0; x < w; x++, o += 3) {
                uint16_t z;
                memcpy(&z, row + (size_t)x * step * 2, 2);
                if (!z) {
                    o[0] = o[1] = o[2] = 0;
                    continue;
                }
                int i = z <= near_mm ? 0 : z >= near_mm + span ? DEPTH_LUT - 1
                                                               : (int)((int64_t)(z - near_mm) * (DEPTH_LUT - 1) / span);
                memcpy(o, e->lut[i], 3);
            }
        }
    }
    return encode_rgb(e, rgb, w, h, grey, jpeg, n, err);
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
