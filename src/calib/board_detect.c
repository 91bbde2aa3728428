/* calib/board_detect.c: AprilTag detection of the board's tags with libapriltag. Corners come back
 * in libapriltag's order (see ks_board_corner) and are moved to the k4a pixel convention:
 * libapriltag puts the origin at the top-left corner of the top-left pixel, the SDK at its centre,
 * so 0.5 px is subtracted. Decodes with corrected bits or a low decision margin are rejected:
 * a wrong id would pull the solver far more than a missing view. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "calib/board_family.h"
#include "kinsync/board.h"

#ifdef KS_HAVE_APRILTAG
#include <apriltag/apriltag.h>
#endif

struct ks_detector {
    ks_board board;
    ks_detector_options opt;
#ifdef KS_HAVE_APRILTAG
    apriltag_detector_t *td;
#endif
    uint8_t *scratch;
    size_t scratch_size;
};

void ks_detector_options_default(ks_detector_options *o)
{
    memset(o, 0, sizeof *o);
    o->min_decision_margin = 30.0;
    o->max_hamming = 0;
    o->quad_decimate = 0.0;
    o->threads = 1;
}

void ks_detections_free(ks_detections *det)
{
    if (!det)
        return;
    free(det->corners);
    memset(det, 0, sizeof *det);
}

ks_status ks_detector_create(const ks_board *b, const ks_detector_options *o, ks_detector **out, ks_error *err)
{
    ks_status st = ks_board_validate(b, err);
    if (st)
        return st;
#ifndef KS_HAVE_APRILTAG
    (void)o;
    (void)out;
    return ks_error_set(err, KS_EUNSUPPORTED, "tag detection needs libapriltag; install libapriltag-dev "
                        "(scripts/setup.sh) and rebuild");
#else
    ks_detector *d = calloc(1, sizeof *d);
    if (!d)
        return ks_error_set(err, KS_ENOMEM, "ks_detector_create: out of memory");
    d->board = *b;
    if (o)
        d->opt = *o;
    else
        ks_detector_options_default(&d->opt);
    if (d->opt.threads < 1)
        d->opt.threads = 1;
    d->td = apriltag_detector_create();
    const ks_family_info *fi = ks_family_get(b->family);
    if (!d->td || !fi) {
        ks_detector_destroy(d);
        return ks_error_set(err, KS_ENOMEM, "ks_detector_create: cannot create the AprilTag detector");
    }
    int bits = d->opt.max_hamming < 0 ? 0 : d->opt.max_hamming > 2 ? 2 : d->opt.max_hamming;
    apriltag_detector_add_family_bits(d->td, (apriltag_family_t *)fi->family, bits);
    d->td->nthreads = d->opt.threads;
    d->td->quad_sigma = 0.0f;
    d->td->refine_edges = true;
    d->td->decode_sharpening = 0.25;
    *out = d;
    return KS_OK;
#endif
}

void ks_detector_destroy(ks_detector *d)
{
    if (!d)
        return;
#ifdef KS_HAVE_APRILTAG
    if (d->td) {
        apriltag_detector_clear_families(d->td); /* the family tables are shared, not ours to free */
        apriltag_detector_destroy(d->td);
    }
#endif
    free(d->scratch);
    free(d);
}

ks_status ks_detect_gray(ks_detector *d, const uint8_t *gray, int width, int height, int stride, ks_detections *out,
                         ks_error *err)
{
    if (!d || !gray || !out || width < 8 || height < 8 || stride < width)
        return ks_error_set(err, KS_EINVAL, "ks_detect_gray: bad image %dx%d stride %d", width, height, stride);
    memset(out, 0, sizeof *out);
#ifndef KS_HAVE_APRILTAG
    return ks_error_set(err, KS_EUNSUPPORTED, "tag detection needs libapriltag");
#else
    double dec = d->opt.quad_decimate > 0 ? d->opt.quad_decimate : (width > 1536 ? 2.0 : 1.0);
    d->td->quad_decimate = (float)dec;
    image_u8_t im = {.width = width, .height = height, .stride = stride, .buf = (uint8_t *)gray};
    zarray_t *dets = apriltag_detector_detect(d->td, &im);
    if (!dets)
        return ks_error_set(err, KS_ENOMEM, "ks_detect_gray: detector failed (out of memory)");
    int n = zarray_size(dets);
    out->corners = n ? malloc(sizeof(ks_corner_obs) * 4 * (size_t)n) : NULL;
    if (n && !out->corners) {
        apriltag_detections_destroy(dets);
        return ks_error_set(err, KS_ENOMEM, "ks_detect_gray: out of memory");
    }
    /* an id seen twice in one image is ambiguous: drop both */
    for (int i = 0; i < n; i++) {
        apriltag_detection_t *det;
        zarray_get(dets, i, &det);
        bool dup = false;
        for (int j = 0; j < n && !dup; j++) {
            apriltag_detection_t *o;
            zarray_get(dets, j, &o);
            dup = j != i && o->id == det->id;
        }
        if (dup || !ks_board_has_tag(&d->board, det->id) || det->hamming > d->opt.max_hamming ||
            det->decision_margin < d->opt.min_decision_margin) {
            out->rejected++;
            continue;
        }
        for (int k = 0; k < 4; k++) {
            ks_corner_obs *c = &out->corners[out->count++];
            c->tag_id = det->id;
            c->corner = k;
            c->uv[0] = det->p[k][0] - 0.5;
            c->uv[1] = det->p[k][1] - 0.5;
        }
        out->tags++;
    }
    apriltag_detections_destroy(dets);
    return KS_OK;
#endif
}

static uint8_t *scratch(ks_detector *d, size_t n)
{
    if (d->scratch_size < n) {
        uint8_t *p = realloc(d->scratch, n);
        if (!p)
            return NULL;
        d->scratch = p;
        d->scratch_size = n;
    }
    return d->scratch;
}

ks_status ks_detect_image(ks_detector *d, const ks_image *img, ks_detections *out, ks_error *err)
{
    if (!d || !img || !img->data || !out || img->width < 8 || img->height < 8)
        return ks_error_set(err, KS_EINVAL, "ks_detect_image: no image");
    int W = img->width, H = img->height;
    size_t npx = (size_t)W * H;
    uint8_t *g;
    switch (img->format) {
    case KS_FORMAT_MJPG: {
        g = scratch(d, npx);
        if (!g)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: out of memory");
        tjhandle tj = tjInitDecompress();
        if (!tj)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: cannot start the JPEG decoder");
        int jw = 0, jh = 0, sub = 0, cs = 0;
        int rc = tjDecompressHeader3(tj, img->data, (unsigned long)img->size, &jw, &jh, &sub, &cs);
        if (rc == 0 && (jw != W || jh != H))
            rc = -2;
        if (rc == 0)
            rc = tjDecompress2(tj, img->data, (unsigned long)img->size, g, W, W, H, TJPF_GRAY, 0);
        tjDestroy(tj);
        if (rc == -2)
            return ks_error_set(err, KS_EPARSE, "ks_detect_image: the JPEG is %dx%d but the image says %dx%d", jw, jh,
                                W, H);
        if (rc != 0)
            return ks_error_set(err, KS_EPARSE, "ks_detect_image: MJPG frame does not decode; the frame is damaged");
        return ks_detect_gray(d, g, W, H, W, out, err);
    }
    case KS_FORMAT_BGRA32: {
        int stride = img->stride ? img->stride : W * 4;
        if (stride < W * 4 || img->size < (size_t)stride * (H - 1) + (size_t)W * 4)
            return ks_error_set(err, KS_EINVAL, "ks_detect_image: BGRA32 buffer too small");
        g = scratch(d, npx);
        if (!g)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: out of memory");
        for (int y = 0; y < H; y++) {
            const uint8_t *s = img->data + (size_t)y * stride;
            for (int x = 0; x < W; x++)
                g[(size_t)y * W + x] = (uint8_t)((29 * s[4 * x] + 150 * s[4 * x + 1] + 77 * s[4 * x + 2] + 128) >> 8);
        }
        return ks_detect_gray(d, g, W, H, W, out, err);
    }
    case KS_FORMAT_NV12:
    case KS_FORMAT_CUSTOM8: {
        int stride = img->stride ? img->stride : W;
        if (stride < W || img->size < (size_t)stride * H)
            return ks_error_set(err, KS_EINVAL, "ks_detect_image: luma plane too small");
        return ks_detect_gray(d, img->data, W, H, stride, out, err);
    }
    case KS_FORMAT_YUY2: {
        int stride = img->stride ? img->stride : W * 2;
        if (stride < W * 2 || img->size < (size_t)stride * H)
            return ks_error_set(err, KS_EINVAL, "ks_detect_image: YUY2 buffer too small");
        g = scratch(d, npx);
        if (!g)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: out of memory");
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                g[(size_t)y * W + x] = img->data[(size_t)y * stride + 2 * x];
        return ks_detect_gray(d, g, W, H, W, out, err);
    }
    case KS_FORMAT_IR16:
    case KS_FORMAT_CUSTOM16: {
        int stride = img->stride ? img->stride : W * 2;
        if (stride < W * 2 || img->size < (size_t)stride * H)
            return ks_error_set(err, KS_EINVAL, "ks_detect_image: 16-bit buffer too small");
        g = scratch(d, npx);
        if (!g)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: out of memory");
        /* scale so that the 99th percentile of the brightness becomes white */
        static const int bins = 4096;
        unsigned *hist = calloc(bins, sizeof *hist);
        if (!hist)
            return ks_error_set(err, KS_ENOMEM, "ks_detect_image: out of memory");
        for (int y = 0; y < H; y++) {
            const uint8_t *s = img->data + (size_t)y * stride;
            for (int x = 0; x < W; x++)
                hist[(s[2 * x] | s[2 * x + 1] << 8) >> 4]++;
        }
        size_t want = npx * 99 / 100, acc = 0;
        int top = bins - 1;
        for (int i = 0; i < bins; i++) {
            acc += hist[i];
            if (acc >= want) {
                top = i;
                break;
            }
        }
        free(hist);
        double scale = 255.0 / ((top + 1) * 16.0);
        for (int y = 0; y < H; y++) {
            const uint8_t *s = img->data + (size_t)y * stride;
            for (int x = 0; x < W; x++) {
                double v = (s[2 * x] | s[2 * x + 1] << 8) * scale;
                g[(size_t)y * W + x] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
        return ks_detect_gray(d, g, W, H, W, out, err);
    }
    default:
        return ks_error_set(err, KS_EUNSUPPORTED, "ks_detect_image: %s images carry no picture to detect tags in",
                            ks_image_format_name(img->format));
    }
}
