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

static ks_status encode_rgb(const uint8_t *rgb, int w, int h, uint8_t **jpeg, size_t *n, ks_error *err)
{
    tjhandle t = tjInitCompress();
    if (!t)
        return ks_error_set(err, KS_ENOMEM, "libturbojpeg: cannot create a compressor");
    unsigned char *out = NULL;
    unsigned long size = 0;
    int rc = tjCompress2(t, rgb, w, 0, h, TJPF_RGB, &out, &size, TJSAMP_420, 75, TJFLAG_FASTDCT);
    if (rc != 0) {
        ks_status st = ks_error_set(err, KS_EIO, "libturbojpeg: %s", tjGetErrorStr2(t));
        tjFree(out);
        tjDestroy(t);
        return st;
    }
    *jpeg = malloc(size);
    if (*jpeg)
        memcpy(*jpeg, out, size);
    *n = size;
    tjFree(out);
    tjDestroy(t);
    return *jpeg ? KS_OK : ks_error_set(err, KS_ENOMEM, "out of memory");
}

ks_status ks_view_encode_preview(const ks_image *img, int max_width, int near_mm, int far_mm, uint8_t **jpeg,
                                 size_t *n, ks_error *err)
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
    ks_mjpeg_decoder *dec = NULL;
    bool is16 = img->format == KS_FORMAT_DEPTH16 || img->format == KS_FORMAT_IR16;
    if (img->format == KS_FORMAT_MJPG) {
        ks_status st = ks_mjpeg_decoder_create(&dec, err);
        if (st != KS_OK)
            return st;
        int denom = 1;
        while (denom < 8 && img->width / denom > max_width)
            denom *= 2;
        ks_color_image ci;
        st = ks_mjpeg_decode(dec, img->data, img->size, denom, &ci, err);
        if (st != KS_OK) {
            ks_mjpeg_decoder_destroy(dec);
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
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        ks_mjpeg_decoder_destroy(dec);
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    }
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
    ks_mjpeg_decoder_destroy(dec);
    ks_status st = encode_rgb(rgb, w, h, jpeg, n, err);
    free(rgb);
    return st;
}
