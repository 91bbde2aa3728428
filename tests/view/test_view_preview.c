/* The view's preview encoder (kinsync/view.h): one encoder reused over images of every kind and
 * size gives the same JPEGs as a fresh one each time (ks_view_encode_preview); an MJPG colour image
 * the caller already decoded (as the sink decodes each colour image once per set) gives a preview of
 * the same size and colours as decoding it again; depth goes through the colour map and IR is a
 * greyscale JPEG; bad input is an error, never a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "kinsync/fuse.h"
#include "kinsync/view.h"
#include "ks_test.h"

/* JPEG header size */
static void jpeg_size(const uint8_t *j, size_t n, int *w, int *h)
{
    tjhandle t = tjInitDecompress();
    int sub, cs;
    *w = *h = 0;
    tjDecompressHeader3(t, j, (unsigned long)n, w, h, &sub, &cs);
    tjDestroy(t);
}

/* Mean RGB of a JPEG */
static void jpeg_mean(const uint8_t *j, size_t n, double m[3])
{
    int w, h;
    jpeg_size(j, n, &w, &h);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    tjhandle t = tjInitDecompress();
    tjDecompress2(t, j, (unsigned long)n, rgb, w, 0, h, TJPF_RGB, 0);
    tjDestroy(t);
    m[0] = m[1] = m[2] = 0;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            m[c] += rgb[i * 3 + c];
    for (int c = 0; c < 3; c++)
        m[c] /= w * h;
    free(rgb);
}

/* A 1280x720 MJPG: left half orange, right half blue, a grey band at the bottom */
static uint8_t *make_mjpg(size_t *n)
{
    int w = 1280, h = 720;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            if (y > 600)
                p[0] = p[1] = p[2] = 128;
            else if (x < w / 2)
                p[0] = 240, p[1] = 140, p[2] = 30;
            else
                p[0] = 30, p[1] = 80, p[2] = 220;
        }
    tjhandle t = tjInitCompress();
    unsigned char *out = NULL;
    unsigned long size = 0;
    tjCompress2(t, rgb, w, 0, h, TJPF_RGB, &out, &size, TJSAMP_422, 90, 0);
    tjDestroy(t);
    free(rgb);
    uint8_t *copy = malloc(size);
    memcpy(copy, out, size);
    tjFree(out);
    *n = size;
    return copy;
}

static void test_reuse_and_decoded(void)
{
    size_t mn;
    uint8_t *mj = make_mjpg(&mn);
    ks_image color = {.format = KS_FORMAT_MJPG, .width = 1280, .height = 720, .data = mj, .size = mn};
    int dw = 320, dh = 288;
    uint16_t *depth = malloc((size_t)dw * dh * 2);
    for (int i = 0; i < dw * dh; i++)
        depth[i] = (uint16_t)(500 + (i % dw) * 12);
    ks_image dimg = {.format = KS_FORMAT_DEPTH16, .width = dw, .height = dh, .stride = dw * 2,
                     .data = (uint8_t *)depth, .size = (size_t)dw * dh * 2};
    ks_image ir = dimg;
    ir.format = KS_FORMAT_IR16;
    ks_view_encoder *e = NULL;
    KS_CHECK(ks_view_encoder_create(&e, NULL) == KS_OK);
    /* the reused encoder against a fresh one per image, in an order that grows and shrinks its buffers */
    const ks_image *seq[] = {&dimg, &color, &ir, &dimg, &color};
    int widths[] = {64, 192, 320, 192, 640};
    for (int i = 0; i < 5; i++) {
        const uint8_t *a;
        size_t an;
        uint8_t *b = NULL;
        size_t bn;
        KS_CHECK(ks_view_encoder_preview(e, seq[i], NULL, widths[i], 500, 4500, &a, &an, NULL) == KS_OK);
        KS_CHECK(ks_view_encode_preview(seq[i], widths[i], 500, 4500, &b, &bn, NULL) == KS_OK);
        KS_CHECK_MSG(an == bn && b && !memcmp(a, b, an), "image %d: the reused encoder's JPEG equals a fresh one's", i);
        int w, h;
        jpeg_size(a, an, &w, &h);
        KS_CHECK_MSG(w > 0 && w <= widths[i] && h > 0, "image %d: %dx%d within %d wide", i, w, h, widths[i]);
        free(b);
    }
    /* colour decoded once by the caller at the cloud's scale (1/4: 320x180) vs decoded for the preview */
    ks_mjpeg_decoder *dec = NULL;
    ks_color_image ci;
    KS_CHECK(ks_mjpeg_decoder_create(&dec, NULL) == KS_OK);
    KS_CHECK(ks_mjpeg_decode(dec, mj, mn, 4, &ci, NULL) == KS_OK);
    KS_CHECK_INT(ci.width, 320);
    const uint8_t *a;
    size_t an;
    uint8_t *b = NULL;
    size_t bn;
    KS_CHECK(ks_view_encoder_preview(e, &color, &ci, 192, 500, 4500, &a, &an, NULL) == KS_OK);
    int aw, ah, bw, bh;
    jpeg_size(a, an, &aw, &ah);
    double ma[3], mb[3];
    jpeg_mean(a, an, ma);
    KS_CHECK(ks_view_encode_preview(&color, 192, 500, 4500, &b, &bn, NULL) == KS_OK);
    jpeg_size(b, bn, &bw, &bh);
    jpeg_mean(b, bn, mb);
    KS_CHECK_MSG(aw == bw && ah == bh, "pre-decoded preview %dx%d, decoded again %dx%d", aw, ah, bw, bh);
    for (int c = 0; c < 3; c++)
        KS_CHECK_NEAR(ma[c], mb[c], 4);
    /* the pre-decoded image is what is used: a different decoded picture gives a different preview */
    uint8_t *blue = malloc((size_t)320 * 180 * 4);
    for (int i = 0; i < 320 * 180; i++)
        blue[i * 4] = 255, blue[i * 4 + 1] = 0, blue[i * 4 + 2] = 0, blue[i * 4 + 3] = 255;
    ks_color_image other = {.width = 320, .height = 180, .stride = 320 * 4, .bgra = blue, .scale_denom = 4};
    KS_CHECK(ks_view_encoder_preview(e, &color, &other, 192, 500, 4500, &a, &an, NULL) == KS_OK);
    jpeg_mean(a, an, ma);
    KS_CHECK_MSG(ma[2] > 200 && ma[0] < 40, "the caller's decoded image is the preview's source (mean %.0f %.0f %.0f)",
                 ma[0], ma[1], ma[2]);
    /* bad input */
    ks_image bad = color;
    bad.size = 20;
    KS_CHECK(ks_view_encoder_preview(e, &bad, NULL, 192, 500, 4500, &a, &an, NULL) != KS_OK);
    ks_image small = dimg;
    small.size = 10;
    KS_CHECK(ks_view_encoder_preview(e, &small, NULL, 192, 500, 4500, &a, &an, NULL) != KS_OK);
    KS_CHECK(ks_view_encoder_preview(e, NULL, NULL, 192, 500, 4500, &a, &an, NULL) != KS_OK);
    free(blue);
    free(b);
    ks_mjpeg_decoder_destroy(dec);
    ks_view_encoder_destroy(e);
    free(depth);
    free(mj);
}

/* Depth through the colour map (a table over [near, far]) and IR as grey: a uniform image's preview
 * has the colour ks_view_depth_rgb gives that depth, IR is a one-channel JPEG of z * 255 / 1000, and
 * both are downsampled to the preview's width (640x576 at 192: every 4th pixel, 160x144). */
static void test_depth_ir_maps(void)
{
    int w = 640, h = 576;
    uint16_t *px = malloc((size_t)w * h * 2);
    ks_image img = {.format = KS_FORMAT_DEPTH16, .width = w, .height = h, .stride = w * 2, .data = (uint8_t *)px,
                    .size = (size_t)w * h * 2};
    ks_view_encoder *e = NULL;
    KS_CHECK(ks_view_encoder_create(&e, NULL) == KS_OK);
    const uint16_t zs[] = {0, 400, 700, 1500, 2500, 3300, 4000, 6000};
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        for (int p = 0; p < w * h; p++)
            px[p] = zs[i];
        const uint8_t *j;
        size_t n;
        KS_CHECK(ks_view_encoder_preview(e, &img, NULL, 192, 500, 4500, &j, &n, NULL) == KS_OK);
        int jw, jh;
        jpeg_size(j, n, &jw, &jh);
        KS_CHECK_MSG(jw == 160 && jh == 144, "depth preview %dx%d, want 160x144", jw, jh);
        double m[3];
        jpeg_mean(j, n, m);
        uint8_t want[3];
        ks_view_depth_rgb(zs[i], 500, 4500, want);
        for (int c = 0; c < 3; c++)
            KS_CHECK_MSG(fabs(m[c] - want[c]) < 6, "depth %u mm: channel %d is %.1f, the colour map says %u", zs[i], c,
                         m[c], want[c]);
    }
    img.format = KS_FORMAT_IR16;
    for (int p = 0; p < w * h; p++)
        px[p] = 500;
    const uint8_t *j;
    size_t n;
    KS_CHECK(ks_view_encoder_preview(e, &img, NULL, 192, 500, 4500, &j, &n, NULL) == KS_OK);
    tjhandle t = tjInitDecompress();
    int jw = 0, jh = 0, sub = -1, cs = -1;
    tjDecompressHeader3(t, j, (unsigned long)n, &jw, &jh, &sub, &cs);
    tjDestroy(t);
    KS_CHECK_MSG(cs == TJCS_GRAY && sub == TJSAMP_GRAY && jw == 160 && jh == 144,
                 "IR preview: colour space %d, subsampling %d, %dx%d (want greyscale, 160x144)", cs, sub, jw, jh);
    double m[3];
    jpeg_mean(j, n, m);
    KS_CHECK_NEAR(m[0], 127, 3);
    KS_CHECK_NEAR(m[1], 127, 3);
    ks_view_encoder_destroy(e);
    free(px);
}

int main(void)
{
    KS_RUN(test_reuse_and_decoded);
    KS_RUN(test_depth_ir_maps);
    return KS_TEST_END();
}
