/* The scaled MJPEG decoder (fuse/jpeg_lowres.c). Its image is the box filter of the full decode:
 * each pixel of the 1/2, 1/4 or 1/8 image is compared with the mean of the scale x scale pixels
 * libjpeg-turbo decodes at full size (accurate IDCT, chroma replicated as the decoder does), on the
 * real device's frame (4:2:2, restart markers) and on pictures encoded here with every sampling it
 * takes, with and without restart intervals, and with tables other than the standard ones. What
 * it does not take (4:1:1, progressive, full size) it refuses, and ks_mjpeg_decode decodes those
 * with libjpeg-turbo. Damaged frames (cut short, bytes changed, restart markers renumbered) are
 * refused or decoded, never read out of bounds (the sanitizer build runs this test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <turbojpeg.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"
#include "kinsync/mkv.h"
#include "ks_test.h"

/* The first colour frame of the real device's recording, or NULL. */
static uint8_t *real_frame(size_t *size)
{
    ks_mkv_reader *r = NULL;
    ks_error e;
    uint8_t *out = NULL;
    if (ks_mkv_reader_open(KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv", &r, &e) != KS_OK)
        return NULL;
    ks_mkv_item it;
    while (!out && ks_mkv_reader_next(r, &it, &e) == KS_OK) {
        if (it.kind == KS_MKV_COLOR && it.image && it.image->format == KS_FORMAT_MJPG &&
            (out = malloc(it.image->size)) != NULL) {
            memcpy(out, it.image->data, it.image->size);
            *size = it.image->size;
        }
        ks_image_release(it.image);
    }
    ks_mkv_reader_close(r);
    return out;
}

/* real_frame, or a SKIP of the running test part when the fixture cannot be read. */
static uint8_t *real_frame_or_skip(size_t *size)
{
    uint8_t *jpg = real_frame(size);
    if (!jpg)
        KS_SKIP("the real recording %s is not readable", KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv");
    return jpg;
}

/* A picture with smooth gradients, hard edges and fine texture (what colour frames hold). */
static uint8_t *picture(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 4);
    uint32_t s = 12345;
    for (int y = 0; y < h && p; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 4;
            s = s * 1664525u + 1013904223u;
            int noise = (int)(s >> 28) - 8;
            int box = (x / 37 + y / 23) & 1 ? 90 : 0;
            int v0 = x * 255 / w, v1 = y * 255 / h, v2 = ((x * x + y * 3) >> 3) & 255;
            q[0] = (uint8_t)((v0 + box + noise) & 255);
            q[1] = (uint8_t)(v1 / 2 + box + 30 + noise);
            q[2] = (uint8_t)(v2 / 2 + (x % 11 < 2 ? 100 : 0));
            q[3] = 255;
        }
    return p;
}

static int cb_h = 1; /* Cb's horizontal sampling factor in encode (1 but for one refused case) */

/* Encoded by libjpeg: sampling h x v for Y (chroma 1x1, Cb cb_h x 1), grey when grey, a restart interval of
 * `restart` MCUs (0: none), optimized (not the standard) Huffman tables when optimize. */
static uint8_t *encode(const uint8_t *bgra, int w, int h, int hs, int vs, bool grey, int quality, int restart,
                       bool optimize, size_t *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &out, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 4;
    c.in_color_space = JCS_EXT_BGRA;
    jpeg_set_defaults(&c);
    if (grey)
        jpeg_set_colorspace(&c, JCS_GRAYSCALE);
    jpeg_set_quality(&c, quality, TRUE);
    c.comp_info[0].h_samp_factor = hs;
    c.comp_info[0].v_samp_factor = vs;
    if (!grey)
        c.comp_info[1].h_samp_factor = cb_h;
    c.restart_interval = (unsigned)restart;
    c.optimize_coding = optimize;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(bgra + (size_t)c.next_scanline * w * 4);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *size = len;
    return out;
}

typedef struct cmp {
    double mean;    /* mean absolute difference, levels */
    double over3;   /* fraction of samples more than 3 levels apart */
    int max;
} cmp;

static uint8_t level(double x)
{
    x = x < 0 ? 0 : x > 255 ? 255 : x;
    return (uint8_t)(x + 0.5);
}

/* The image against the box filter of libjpeg-turbo's full decode (w x h a multiple of scale):
 * its Y, Cb and Cr planes decoded at full size (accurate IDCT); a pixel's Y is the mean over the
 * scale x scale pixels it covers, its chroma the mean over the scale x scale chroma samples of the
 * chroma pixel that covers it (with subsampled chroma a small image's chroma is as coarse as
 * libjpeg's scaled decode makes it), then converted to BGR. */
static cmp against_full(const uint8_t *jpg, size_t size, const ks_color_image *img, int scale)
{
    cmp r = {1e9, 1, 255};
    tjhandle tj = tjInitDecompress();
    int w = 0, h = 0, ss = -1, cs;
    if (!tj || tjDecompressHeader3(tj, jpg, (unsigned long)size, &w, &h, &ss, &cs) != 0) {
        if (tj)
            tjDestroy(tj);
        return r;
    }
    const int nc = ss == TJSAMP_GRAY ? 1 : 3;
    const int hd = ss == TJSAMP_422 || ss == TJSAMP_420 ? 2 : 1, vd = ss == TJSAMP_420 || ss == TJSAMP_440 ? 2 : 1;
    uint8_t *pl[3] = {0};
    int pw[3], ph[3];
    bool ok = true;
    for (int c = 0; c < nc; c++) {
        pw[c] = tjPlaneWidth(c, w, ss), ph[c] = tjPlaneHeight(c, h, ss);
        ok &= (pl[c] = malloc((size_t)pw[c] * ph[c])) != NULL;
    }
    if (ok && tjDecompressToYUVPlanes(tj, jpg, (unsigned long)size, pl, w, NULL, h, TJFLAG_ACCURATEDCT) == 0) {
        double sum = 0;
        long n = 0, over = 0;
        int mx = 0;
        for (int y = 0; y < h / scale; y++)
            for (int x = 0; x < w / scale; x++) {
                double m[3] = {0, 128, 128};
                for (int c = 0; c < nc; c++) {
                    int x0 = c ? x / hd * scale : x * scale, y0 = c ? y / vd * scale : y * scale, acc = 0, cnt = 0;
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                            if (x0 + dx < pw[c] && y0 + dy < ph[c])
                                acc += pl[c][(size_t)(y0 + dy) * pw[c] + x0 + dx], cnt++;
                    m[c] = cnt ? (double)acc / cnt : m[c];
                }
                double cb = m[1] - 128, cr = m[2] - 128;
                uint8_t ref[3] = {level(m[0] + 1.772 * cb), level(m[0] - 0.344136 * cb - 0.714136 * cr),
                                  level(m[0] + 1.402 * cr)};
                for (int c = 0; c < 3; c++) {
                    int d = abs((int)ref[c] - (int)img->bgra[(size_t)y * img->stride + (size_t)x * 4 + c]);
                    sum += d;
                    over += d > 3;
                    mx = d > mx ? d : mx;
                    n++;
                }
            }
        r = (cmp){n ? sum / n : 1e9, n ? (double)over / n : 1, mx};
    }
    for (int c = 0; c < 3; c++)
        free(pl[c]);
    tjDestroy(tj);
    return r;
}

/* Decodes at every scale and checks the box-filter bound; `what` names the frame in messages. */
static void check_frame(ks_jpeg_lowres *j, const uint8_t *jpg, size_t size, int w, int h, const char *what)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (int scale = 2; scale <= 8; scale *= 2) {
        ks_color_image img;
        ks_error e = {0};
        ks_status st = ks_jpeg_lowres_decode(j, jpg, size, scale, &buf, &cap, &img, &e);
        KS_CHECK_MSG(st == KS_OK, "%s at 1/%d: %s", what, scale, e.message);
        if (st != KS_OK)
            continue;
        KS_CHECK_INT(img.width, (w + scale - 1) / scale);
        KS_CHECK_INT(img.height, (h + scale - 1) / scale);
        KS_CHECK_INT(img.scale_denom, scale);
        KS_CHECK(img.stride == (size_t)img.width * 4 && img.bgra == buf);
        cmp c = against_full(jpg, size, &img, scale);
        printf("  %-34s 1/%d: mean %.3f levels from the full decode's box filter, %.4f%% over 3, max %d\n", what,
               scale, c.mean, 100 * c.over3, c.max);
        /* rounding (the reference rounds its planes to bytes first) and clamping; a wrong weight,
         * lane or sampling moves whole areas by tens of levels */
        KS_CHECK_MSG(c.mean < 0.35 && c.over3 < 0.001 && c.max <= 8,
                     "%s at 1/%d: mean %.3f, %.4f over 3 levels, max %d", what, scale, c.mean, c.over3, c.max);
        int alpha_ok = 1;
        for (int y = 0; y < img.height; y++)
            for (int x = 0; x < img.width; x++)
                alpha_ok &= img.bgra[(size_t)y * img.stride + (size_t)x * 4 + 3] == 255;
        KS_CHECK(alpha_ok);
    }
    free(buf);
}

/* j refuses the frame (KS_EPARSE) with `why` in its reason, decoding into a buffer of its own;
 * true when it allocated nothing for it (the image buffer untouched). */
static bool check_refused(ks_jpeg_lowres *j, const uint8_t *jpg, size_t size, int scale, const char *why)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    ks_color_image img;
    ks_error e = {0};
    KS_CHECK(ks_jpeg_lowres_decode(j, jpg, size, scale, &buf, &cap, &img, &e) == KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, why);
    bool none = buf == NULL && cap == 0;
    free(buf);
    return none;
}

static void test_real_frame(void)
{
    size_t size = 0;
    uint8_t *jpg = real_frame_or_skip(&size);
    if (!jpg)
        return;
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    KS_CHECK(j != NULL);
    check_frame(j, jpg, size, 1280, 720, "the real device's frame");
    ks_jpeg_lowres_destroy(j);
    free(jpg);
}

static void test_samplings_and_restarts(void)
{
    const int w = 320, h = 240;
    uint8_t *pic = picture(w, h);
    KS_CHECK(pic != NULL);
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    struct {
        int hs, vs;
        bool grey;
        int quality, restart;
        bool optimize;
    } cases[] = {
        {1, 1, false, 90, 0, false}, {2, 1, false, 90, 0, false}, {2, 2, false, 90, 0, false},
        {1, 2, false, 90, 0, false}, {1, 1, true, 90, 0, false},  {2, 2, false, 40, 0, false},
        {2, 1, false, 97, 1, false}, {2, 2, false, 90, 7, true},  {1, 1, true, 75, 3, true},
        {2, 1, false, 90, 450, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases && pic && j; i++) {
        size_t size = 0;
        uint8_t *jpg = encode(pic, w, h, cases[i].hs, cases[i].vs, cases[i].grey, cases[i].quality,
                              cases[i].restart, cases[i].optimize, &size);
        char what[96];
        snprintf(what, sizeof what, "%s %dx%d q%d restart %d%s", cases[i].grey ? "grey" : "colour", cases[i].hs,
                 cases[i].vs, cases[i].quality, cases[i].restart, cases[i].optimize ? " optimized" : "");
        check_frame(j, jpg, size, w, h, what);
        free(jpg);
    }
    /* an odd size: the image is ceil(size / scale) and its inner pixels keep the bound */
    {
        size_t size = 0;
        uint8_t *jpg = encode(pic, 203, 117, 2, 2, false, 90, 2, false, &size);
        uint8_t *buf = NULL;
        size_t cap = 0;
        ks_color_image img;
        KS_CHECK(ks_jpeg_lowres_decode(j, jpg, size, 4, &buf, &cap, &img, NULL) == KS_OK);
        KS_CHECK(img.width == 51 && img.height == 30);
        free(buf);
        free(jpg);
    }
    ks_jpeg_lowres_destroy(j);
    free(pic);
}

/* The frame without its DHT segments (the markers before the scan walked; the rest copied). */
static size_t without_dht(const uint8_t *in, size_t size, uint8_t *out)
{
    size_t i = 2, o = 2;
    memcpy(out, in, 2);
    while (i + 4 <= size && in[i] == 0xFF && in[i + 1] != 0xDA) {
        size_t len = (size_t)in[i + 2] << 8 | in[i + 3];
        if (in[i + 1] != 0xC4) {
            memcpy(out + o, in + i, 2 + len);
            o += 2 + len;
        }
        i += 2 + len;
    }
    memcpy(out + o, in + i, size - i);
    return o + size - i;
}

/* Tables cached between frames are rebuilt when a frame brings others, and serve only the frame
 * that defines them. */
static void test_tables_change(void)
{
    const int w = 160, h = 128;
    uint8_t *pic = picture(w, h);
    size_t sa = 0, sb = 0;
    uint8_t *a = encode(pic, w, h, 2, 1, false, 90, 0, false, &sa);
    uint8_t *b = encode(pic, w, h, 2, 1, false, 60, 0, true, &sb);
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    check_frame(j, a, sa, w, h, "standard tables");
    check_frame(j, b, sb, w, h, "then optimized tables, quality 60");
    check_frame(j, a, sa, w, h, "then the standard ones again");
    /* the same frame without Huffman tables (MJPEG as some webcams send it): not decoded with the
     * tables kept from the frame before; libjpeg-turbo decodes it with the standard ones */
    uint8_t *c = malloc(sa);
    size_t sc = c ? without_dht(a, sa, c) : 0;
    KS_CHECK(sc > 0 && sc < sa);
    check_refused(j, c, sc, 2, "not defined in the frame");
    ks_color_image img;
    ks_mjpeg_decoder *dec = NULL, *lib = NULL;
    KS_CHECK(ks_mjpeg_decoder_create(&dec, NULL) == KS_OK);
    setenv("KINSYNC_MJPEG_LIBJPEG", "1", 1);
    KS_CHECK(ks_mjpeg_decoder_create(&lib, NULL) == KS_OK);
    unsetenv("KINSYNC_MJPEG_LIBJPEG");
    ks_color_image ref;
    if (dec && lib && c && ks_mjpeg_decode(dec, c, sc, 2, &img, NULL) == KS_OK &&
        ks_mjpeg_decode(lib, a, sa, 2, &ref, NULL) == KS_OK) /* its tables are the standard ones */
        KS_CHECK(img.width == ref.width && img.height == ref.height &&
                 !memcmp(img.bgra, ref.bgra, (size_t)img.height * img.stride));
    else
        KS_CHECK(!"the frame without tables or its original not decoded");
    ks_mjpeg_decoder_destroy(dec);
    ks_mjpeg_decoder_destroy(lib);
    free(c);
    ks_jpeg_lowres_destroy(j);
    free(a);
    free(b);
    free(pic);
}

/* What it does not take is refused with the reason; ks_mjpeg_decode decodes it with libjpeg-turbo. */
static void test_refused_frames_still_decode(void)
{
    const int w = 96, h = 64;
    uint8_t *pic = picture(w, h);
    tjhandle tj = tjInitCompress();
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    ks_mjpeg_decoder *dec = NULL;
    KS_CHECK(ks_mjpeg_decoder_create(&dec, NULL) == KS_OK);
    struct {
        int samp, flags;
        const char *why;
    } cases[] = {{TJSAMP_411, 0, "sampling 4x1"}, {TJSAMP_420, TJFLAG_PROGRESSIVE, "not baseline"}};
    for (size_t i = 0; i < 2 && tj && pic && j && dec; i++) {
        unsigned char *jpg = NULL;
        unsigned long size = 0;
        KS_CHECK(tjCompress2(tj, pic, w, 0, h, TJPF_BGRA, &jpg, &size, cases[i].samp, 90, cases[i].flags) == 0);
        check_refused(j, jpg, size, 2, cases[i].why);
        ks_color_image img;
        KS_CHECK(ks_mjpeg_decode(dec, jpg, size, 2, &img, NULL) == KS_OK && img.width == w / 2 && img.height == h / 2);
        tjFree(jpg);
    }
    /* Y narrower than Cb (legal, never written by a camera): refused, not decoded wrong */
    if (pic && j && dec) {
        cb_h = 2;
        size_t size = 0;
        uint8_t *jpg = encode(pic, w, h, 1, 1, false, 90, 0, false, &size);
        cb_h = 1;
        KS_CHECK(check_refused(j, jpg, size, 2, "sampling 1x1, 2x1, 1x1 is not decoded here"));
        ks_color_image img;
        ks_error e = {0};
        ks_status st = ks_mjpeg_decode(dec, jpg, size, 2, &img, &e); /* TurboJPEG names no such sampling */
        KS_CHECK(st == KS_OK || st == KS_EPARSE);
        free(jpg);
    }
    /* full size is libjpeg-turbo's */
    size_t size = 0;
    uint8_t *jpg = encode(pic, w, h, 2, 1, false, 90, 0, false, &size);
    check_refused(j, jpg, size, 1, "scale 1/1");
    free(jpg);
    ks_mjpeg_decoder_destroy(dec);
    ks_jpeg_lowres_destroy(j);
    if (tj)
        tjDestroy(tj);
    free(pic);
}

/* ks_mjpeg_decode scaled down gives this decoder's image; with KINSYNC_MJPEG_LIBJPEG set,
 * libjpeg-turbo's (its reduced IDCT: close to the box filter, not equal). */
static void test_mjpeg_decode_uses_it(void)
{
    size_t size = 0;
    uint8_t *jpg = real_frame_or_skip(&size);
    if (!jpg)
        return;
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    ks_mjpeg_decoder *dec = NULL, *lib = NULL;
    KS_CHECK(ks_mjpeg_decoder_create(&dec, NULL) == KS_OK);
    setenv("KINSYNC_MJPEG_LIBJPEG", "1", 1);
    KS_CHECK(ks_mjpeg_decoder_create(&lib, NULL) == KS_OK);
    unsetenv("KINSYNC_MJPEG_LIBJPEG");
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (int scale = 2; scale <= 8 && dec && lib && j; scale *= 2) {
        ks_color_image a, b, c;
        KS_CHECK(ks_mjpeg_decode(dec, jpg, size, scale, &a, NULL) == KS_OK);
        KS_CHECK(ks_jpeg_lowres_decode(j, jpg, size, scale, &buf, &cap, &b, NULL) == KS_OK);
        KS_CHECK(ks_mjpeg_decode(lib, jpg, size, scale, &c, NULL) == KS_OK);
        KS_CHECK(a.width == b.width && a.height == b.height && a.width == c.width && a.height == c.height);
        KS_CHECK_MSG(!memcmp(a.bgra, b.bgra, (size_t)a.height * a.stride), "1/%d: not the scaled decoder's image",
                     scale);
        double sum = 0;
        for (size_t i = 0; i < (size_t)a.height * a.stride; i++)
            sum += abs((int)a.bgra[i] - (int)c.bgra[i]);
        double mean = sum / ((double)a.height * a.stride);
        printf("  1/%d: mean %.2f levels from libjpeg-turbo's scaled decode\n", scale, mean);
        KS_CHECK(mean > 0.0 && mean < 3.0);
    }
    free(buf);
    ks_mjpeg_decoder_destroy(dec);
    ks_mjpeg_decoder_destroy(lib);
    ks_jpeg_lowres_destroy(j);
    free(jpg);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Cut short, bytes changed, restart markers renumbered: refused (or decoded), never a crash;
 * ks_mjpeg_decode still answers for each. */
static void test_damaged_frames(void)
{
    size_t size = 0;
    uint8_t *jpg = real_frame_or_skip(&size);
    if (!jpg)
        return;
    ks_jpeg_lowres *j = ks_jpeg_lowres_create();
    ks_mjpeg_decoder *dec = NULL;
    KS_CHECK(ks_mjpeg_decoder_create(&dec, NULL) == KS_OK);
    uint8_t *buf = NULL, *bad = malloc(size);
    size_t cap = 0;
    ks_color_image img;
    int refused = 0, cuts = 0;
    for (size_t cut = 2; cut + 64 < size && bad; cut += size / 150, cuts++) {
        memcpy(bad, jpg, cut);
        ks_error e = {0};
        refused += ks_jpeg_lowres_decode(j, bad, cut, 2, &buf, &cap, &img, &e) == KS_EPARSE;
        ks_status st = ks_mjpeg_decode(dec, bad, cut, 2, &img, NULL);
        KS_CHECK(st == KS_OK || st == KS_EPARSE);
    }
    KS_CHECK_INT(refused, cuts); /* every cut before the last 64 bytes loses blocks */
    int changed_ok = 0;
    for (int k = 0; k < 300 && bad; k++) {
        memcpy(bad, jpg, size);
        for (int m = 0; m < 1 + k % 4; m++)
            bad[700 + next() % (size - 700)] = (uint8_t)next();
        ks_status st = ks_jpeg_lowres_decode(j, bad, size, 2 << (k % 3), &buf, &cap, &img, NULL);
        KS_CHECK(st == KS_OK || st == KS_EPARSE);
        changed_ok += st == KS_OK;
        st = ks_mjpeg_decode(dec, bad, size, 2, &img, NULL);
        KS_CHECK(st == KS_OK || st == KS_EPARSE);
    }
    printf("  %d of 300 frames with changed bytes decoded, the others refused\n", changed_ok);
    /* the third restart marker renumbered */
    if (bad) {
        memcpy(bad, jpg, size);
        int seen = 0;
        for (size_t i = 700; i + 1 < size; i++)
            if (bad[i] == 0xFF && bad[i + 1] >= 0xD0 && bad[i + 1] <= 0xD7 && ++seen == 3) {
                bad[i + 1] = 0xD7;
                break;
            }
        KS_CHECK_INT(seen, 3);
        check_refused(j, bad, size, 2, "restart");
        KS_CHECK(ks_mjpeg_decode(dec, bad, size, 2, &img, NULL) == KS_OK && img.width == 640);
    }
    /* the last interval 16 bytes short (EOI kept), and 16 bytes more in the fifth: the blocks
     * decode (zeros are fed past the end) but the data does not end where they do */
    uint8_t *more = malloc(size + 16);
    if (bad && more) {
        memcpy(bad, jpg, size - 18);
        memcpy(bad + size - 18, jpg + size - 2, 2);
        check_refused(j, bad, size - 16, 2, "ends before the last block");
        size_t at = 0;
        for (size_t i = 700, seen = 0; i + 1 < size && !at; i++)
            if (jpg[i] == 0xFF && jpg[i + 1] >= 0xD0 && jpg[i + 1] <= 0xD7 && ++seen == 5)
                at = i;
        KS_CHECK(at > 0);
        memcpy(more, jpg, at);
        memset(more + at, 0x5A, 16);
        memcpy(more + at + 16, jpg + at, size - at);
        check_refused(j, more, size + 16, 2, "restart interval 4 does not end where its marker is");
        KS_CHECK(ks_mjpeg_decode(dec, more, size + 16, 2, &img, NULL) == KS_OK);
    }
    /* a small frame (no restart markers) whose header claims 16384 x 16384: refused before the
     * image is allocated */
    uint8_t *pic = picture(96, 64);
    size_t psize = 0;
    uint8_t *big = pic ? encode(pic, 96, 64, 2, 1, false, 90, 0, false, &psize) : NULL;
    for (size_t i = 2; big && i + 9 < psize; i++)
        if (big[i] == 0xFF && big[i + 1] == 0xC0) {
            big[i + 5] = big[i + 7] = 0x40, big[i + 6] = big[i + 8] = 0x00;
            break;
        }
    if (big)
        KS_CHECK(check_refused(j, big, psize, 2, "cannot hold the 8388608 blocks of a 16384x16384 image"));
    free(big);
    free(pic);
    free(more);
    free(bad);
    free(buf);
    ks_mjpeg_decoder_destroy(dec);
    ks_jpeg_lowres_destroy(j);
    free(jpg);
}

int main(void)
{
    KS_RUN(test_real_frame);
    KS_RUN(test_samplings_and_restarts);
    KS_RUN(test_tables_change);
    KS_RUN(test_refused_frames_still_decode);
    KS_RUN(test_mjpeg_decode_uses_it);
    KS_RUN(test_damaged_frames);
    return KS_TEST_END();
}
