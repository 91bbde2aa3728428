/* Colouring points (ks_points_colorize, fuse/color.c): the fast projection (float, vectorized, the
 * checks as masks) samples the pixel the exact projection (ks_project in double) falls in, for a
 * point through every pixel of the colour image on every real calibration, at every decode scale,
 * except where the exact projection lies within EDGE_PX of a pixel border (where float rounding
 * may pick the neighbour); points behind the camera, outside the lens model's metric radius, off
 * the image or NaN get the fallback colour and are not marked seen. The fuse with colour gives the
 * same voxels and colours for any thread count, and a chunk of rows waits for its device's image
 * being decoded by another thread. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "fuse/fuse_internal.h"
#include "fuse/fuse_scene.h"
#include "kinsync/calibration.h"
#include "kinsync/fuse.h"
#include "ks_test.h"
#include "support/calib_fixtures.h"
#include "support/sorted_cloud.h"

/* The stated bound: the float projection is within EDGE_PX (scaled image pixels) of the exact one.
 * The largest distance from a border at which a sampled pixel differed is printed. */
#define EDGE_PX 2e-3

/* ks_points_colorize_packed (the fuse's colouring) read back as colours and marks: seen[i] = 1 and
 * rgb from the packed colour 0x01BBGGRR, or seen[i] = 0 and the fallback when it is 0; any other top
 * byte is reported as seen 2 (the packing broken). Returns what the function returned. */
static size_t colorize_seen(const float *x, const float *y, const float *z, size_t n, const ks_extrinsics *rig_to_color,
                            const ks_intrinsics *color, const ks_color_image *img, const uint8_t fallback[3],
                            uint8_t *rgb, uint8_t *seen)
{
    uint32_t *col = malloc(n * sizeof *col);
    if (!col)
        return 0;
    size_t colored = ks_points_colorize_packed(x, y, z, n, rig_to_color, color, img, col);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = col[i];
        seen[i] = c == 0 ? 0 : c >> 24 == 1 ? 1 : 2;
        rgb[3 * i] = c ? (uint8_t)c : fallback[0];
        rgb[3 * i + 1] = c ? (uint8_t)(c >> 8) : fallback[1];
        rgb[3 * i + 2] = c ? (uint8_t)(c >> 16) : fallback[2];
    }
    free(col);
    return colored;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rnd(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* An image whose pixel (u, v) holds its own coordinates: B = u & 255, G = u >> 8 | (v & 15) << 4,
 * R = v >> 4 (u, v < 4096); the fallback white decodes to v >= 4080, never a pixel. */
static void code_image(uint8_t *bgra, int w, int h, size_t stride)
{
    for (int v = 0; v < h; v++)
        for (int u = 0; u < w; u++) {
            uint8_t *p = bgra + (size_t)v * stride + 4 * (size_t)u;
            p[0] = (uint8_t)(u & 255);
            p[1] = (uint8_t)((u >> 8) | (v & 15) << 4);
            p[2] = (uint8_t)(v >> 4);
            p[3] = 255;
        }
}

static void decode_pixel(const uint8_t rgb[3], int *u, int *v)
{
    *u = rgb[2] | (rgb[1] & 15) << 8;
    *v = rgb[0] << 4 | rgb[1] >> 4;
}

/* Distance of a to the nearest integer. */
static double to_border(double a)
{
    return fabs(a - floor(a + 0.5));
}

typedef struct pts {
    size_t n, no_ray;      /* points; pixels the lens model has no ray for (NaN points) */
    float *x, *y, *z;      /* rig frame */
    double *us, *vs;       /* exact projection + 0.5 in full-resolution pixels (NaN when invalid) */
    uint8_t *near_radius;  /* within float rounding of the metric radius */
} pts;

/* One point through every `step`-th pixel of the colour image (a random sub-pixel position, a
 * random depth of 0.3-8 m), and among them points behind the camera, past the image edges (rays
 * stretched 1.6x, beyond the metric radius for the wide ones) and NaN. Given in the rig frame of
 * color_to_rig; the exact projection is made from the float points as stored. */
static int make_points(const ks_intrinsics *in, const ks_extrinsics *color_to_rig, int step, pts *p)
{
    ks_unproject_table t;
    ks_error err;
    if (ks_unproject_table_build(in, &t, &err) != KS_OK)
        return 0;
    size_t cap = (size_t)(in->width / step + 1) * (size_t)(in->height / step + 1);
    p->n = p->no_ray = 0;
    p->x = malloc(cap * 4), p->y = malloc(cap * 4), p->z = malloc(cap * 4);
    p->us = malloc(cap * 8), p->vs = malloc(cap * 8);
    p->near_radius = calloc(cap, 1);
    ks_extrinsics rig_to_color;
    ks_extrinsics_invert(color_to_rig, &rig_to_color);
    const double mr2 = in->metric_radius > 0 ? in->metric_radius * in->metric_radius : INFINITY;
    for (int v = 0; v < in->height; v += step)
        for (int u = 0; u < in->width; u += step) {
            size_t i = (size_t)v * (size_t)in->width + (size_t)u, k = p->n++;
            double rx = t.x[i], ry = t.y[i];
            if (!(rx == rx)) { /* no ray for this pixel: a NaN point */
                p->no_ray++;
                p->x[k] = p->y[k] = p->z[k] = NAN;
                p->us[k] = p->vs[k] = NAN;
                continue;
            }
            rx += (rnd() - 0.5) / in->fx;
            ry += (rnd() - 0.5) / in->fy;
            double z = 300 + 7700 * rnd(), kind = rnd();
            if (kind < 1.0 / 16) { /* past the edges */
                rx *= 1.6;
                ry *= 1.6;
            } else if (kind < 1.0 / 16 + 1.0 / 32) {
                z = -z; /* behind the camera */
            }
            double q[3] = {rx * z, ry * z, z}, r[3]; /* behind: x/z, y/z of a pixel all the same */
            ks_extrinsics_apply(color_to_rig, q, r);
            if (kind > 1 - 1.0 / 64)
                r[0] = r[1] = r[2] = NAN;
            p->x[k] = (float)r[0], p->y[k] = (float)r[1], p->z[k] = (float)r[2];
            double f[3] = {p->x[k], p->y[k], p->z[k]}, c[3], uv[2];
            ks_extrinsics_apply(&rig_to_color, f, c);
            bool ok = f[0] == f[0] && ks_project(in, c, uv);
            p->us[k] = ok ? uv[0] + 0.5 : NAN;
            p->vs[k] = ok ? uv[1] + 0.5 : NAN;
            if (c[2] > 0) {
                double xp = c[0] / c[2] - in->codx, yp = c[1] / c[2] - in->cody, rs = xp * xp + yp * yp;
                p->near_radius[k] = fabs(rs - mr2) <= 1e-5 * mr2;
            }
        }
    ks_unproject_table_free(&t);
    return 1;
}

static void free_points(pts *p)
{
    free(p->x), free(p->y), free(p->z), free(p->us), free(p->vs), free(p->near_radius);
}

static void check_calibration(const char *file, ks_color_resolution res, int step, double *closest_miss)
{
    size_t len;
    char *js = ks_calib_test_read_fixture(file, &len);
    KS_CHECK_MSG(js != NULL, "%s", file);
    if (!js)
        return;
    ks_calibration cal;
    ks_error err;
    KS_CHECK_INT(ks_calibration_from_json(js, len, KS_DEPTH_NFOV_UNBINNED, res, &cal, &err), KS_OK);
    free(js);
    /* the rig: the colour camera turned and moved, so the transform is exercised */
    ks_extrinsics color_to_rig;
    const double a = 0.4, b = -0.25; /* about y, then about x */
    const double R[9] = {cos(a), sin(a) * sin(b), sin(a) * cos(b), 0, cos(b), -sin(b), -sin(a), cos(a) * sin(b),
                         cos(a) * cos(b)};
    memcpy(color_to_rig.R, R, sizeof R);
    color_to_rig.t[0] = 850, color_to_rig.t[1] = -420, color_to_rig.t[2] = 1900;
    ks_extrinsics rig_to_color;
    ks_extrinsics_invert(&color_to_rig, &rig_to_color);
    pts p = {0};
    if (!make_points(&cal.color, &color_to_rig, step, &p)) {
        KS_CHECK_MSG(0, "%s: no rays for the colour camera", file);
        return;
    }
    const int W = cal.color.width, H = cal.color.height;
    uint8_t *rgb = malloc(p.n * 3), *seen = malloc(p.n);
    static const uint8_t white[3] = {255, 255, 255};
    for (int den = 1; den <= 8; den *= 2) {
        const int w = (W + den - 1) / den, h = (H + den - 1) / den; /* as the decoder scales */
        const size_t stride = (size_t)w * 4 + (den == 2 ? 36 : 0);  /* a padded row once */
        uint8_t *bgra = malloc(stride * (size_t)h);
        code_image(bgra, w, h, stride);
        ks_color_image img = {w, h, stride, bgra, den};
        memset(seen, 7, p.n);
        size_t colored = colorize_seen(p.x, p.y, p.z, p.n, &rig_to_color, &cal.color, &img, white, rgb, seen);
        size_t exact = 0, near = 0, off = 0, wrong = 0, nseen = 0;
        const double s = 1.0 / den;
        for (size_t i = 0; i < p.n; i++) {
            double us = p.us[i] * s, vs = p.vs[i] * s; /* in the scaled image, + 0.5: floor is the pixel */
            bool in = us >= 0 && vs >= 0 && us < w && vs < h; /* NaN: false */
            bool edge = p.near_radius[i] || (us == us && (to_border(us) < EDGE_PX || to_border(vs) < EDGE_PX));
            int iu = -1, iv = -1;
            if (seen[i] == 1)
                decode_pixel(rgb + 3 * i, &iu, &iv);
            else if (!(seen[i] == 0 && !memcmp(rgb + 3 * i, white, 3))) {
                wrong++; /* seen must be 0 or 1, and 0 exactly with the fallback colour */
                continue;
            }
            nseen += seen[i] == 1;
            bool got = seen[i] == 1;
            if (got && (iu >= w || iv >= h)) {
                wrong++;
                continue;
            }
            if (!edge) {
                if (got == in && (!in || (iu == (int)floor(us) && iv == (int)floor(vs))))
                    in ? exact++ : off++;
                else {
                    if (wrong < 5)
                        fprintf(stderr, "  %s %dx%d 1/%d point %zu: exact (%.4f, %.4f) %s, sampled %d %d\n", file, W,
                                H, den, i, us - 0.5, vs - 0.5, in ? "inside" : "outside", iu, iv);
                    wrong++;
                }
                continue;
            }
            near++; /* within EDGE_PX of a border: the pixel on either side (or none at the image edge) */
            bool ok = !got || (fabs(iu + 0.5 - us) < 0.5 + EDGE_PX && fabs(iv + 0.5 - vs) < 0.5 + EDGE_PX);
            wrong += !ok;
            if (us == us && got != in) { /* how close to the border a disagreement came */
                double dist = fmin(fmin(fabs(us), fabs(us - w)), fmin(fabs(vs), fabs(vs - h)));
                *closest_miss = dist > *closest_miss ? dist : *closest_miss;
            } else if (got && in && (iu != (int)floor(us) || iv != (int)floor(vs))) {
                double dist = fmax(iu != (int)floor(us) ? to_border(us) : 0, iv != (int)floor(vs) ? to_border(vs) : 0);
                *closest_miss = dist > *closest_miss ? dist : *closest_miss;
            }
        }
        printf("  %s %dx%d at 1/%d: %zu points (%zu pixels without a ray), %zu on their exact pixel, %zu off the "
               "image, %zu within %g px of a border\n", file, W, H, den, p.n, p.no_ray, exact, off, near, EDGE_PX);
        KS_CHECK_MSG(wrong == 0, "%s %dx%d at 1/%d: %zu points sampled the wrong pixel", file, W, H, den, wrong);
        KS_CHECK_INT(colored, nseen);
        KS_CHECK(exact > (p.n - p.no_ray) * 3 / 4); /* most points land on the image */
        KS_CHECK(off > p.n / 16);               /* and the outside ones are there */
        KS_CHECK(near < p.n * 4 * EDGE_PX * 2); /* the band is as narrow as stated */
        /* ks_points_colorize (no seen) gives the same colours */
        uint8_t *rgb2 = malloc(p.n * 3);
        KS_CHECK_INT(ks_points_colorize(p.x, p.y, p.z, p.n, &rig_to_color, &cal.color, &img, white, rgb2), colored);
        KS_CHECK(memcmp(rgb, rgb2, p.n * 3) == 0);
        free(rgb2);
        free(bgra);
    }
    free(rgb), free(seen);
    free_points(&p);
}

static void test_every_pixel(void)
{
    const char *files[] = {"k4a/real-device-calibration.json", "k4a/sdk-unittest-calibration.json",
                           "k4a/sdk-test-calibration-rational6kt.json"};
    double closest = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        check_calibration(files[f], KS_COLOR_720P, 1, &closest);  /* the bench's mode: every pixel */
        if (f == 0) /* 4:3, every third pixel */
            check_calibration(files[f], KS_COLOR_1536P, 3, &closest);
    }
    printf("  farthest from a border that a sampled pixel differed from the exact one: %.2g px (bound %g)\n", closest,
           EDGE_PX);
}

/* Points one by one: NaN, behind, off the image, beyond the metric radius get the fallback and are
 * not seen; a point on the optical axis samples the principal point's pixel. */
static void test_fallbacks(void)
{
    size_t len;
    char *js = ks_calib_test_read_fixture("k4a/real-device-calibration.json", &len);
    KS_CHECK(js != NULL);
    if (!js)
        return;
    ks_calibration cal;
    ks_error err;
    KS_CHECK_INT(ks_calibration_from_json(js, len, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, &err), KS_OK);
    free(js);
    const ks_intrinsics *in = &cal.color;
    int w = in->width, h = in->height;
    uint8_t *bgra = malloc((size_t)w * (size_t)h * 4);
    code_image(bgra, w, h, (size_t)w * 4);
    ks_color_image img = {w, h, (size_t)w * 4, bgra, 1};
    ks_extrinsics id;
    ks_extrinsics_identity(&id);
    double mr = in->metric_radius > 0 ? in->metric_radius : 2.0;
    /* 0 on axis; 1 NaN; 2 behind; 3 at z = 0; 4 far right (off the image); 5 beyond the metric radius */
    const float x[6] = {0, NAN, 0, 10, 5000, (float)(1000 * mr * 1.05)};
    const float y[6] = {0, 0, 0, 10, 0, 0};
    const float z[6] = {1000, 1000, -1000, 0, 1000, 1000};
    uint8_t rgb[18], seen[6];
    static const uint8_t grey[3] = {128, 129, 130};
    size_t colored = colorize_seen(x, y, z, 6, &id, in, &img, grey, rgb, seen);
    KS_CHECK_INT(colored, 1);
    int u, v;
    decode_pixel(rgb, &u, &v);
    double c[3] = {0, 0, 1000}, uv[2];
    KS_CHECK(ks_project(in, c, uv));
    KS_CHECK_INT(u, (int)floor(uv[0] + 0.5));
    KS_CHECK_INT(v, (int)floor(uv[1] + 0.5));
    KS_CHECK_INT(seen[0], 1);
    for (int i = 1; i < 6; i++) {
        KS_CHECK_MSG(seen[i] == 0 && !memcmp(rgb + 3 * i, grey, 3), "point %d: seen %d, rgb %d %d %d", i, seen[i],
                     rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    }
    /* no image: everything falls back */
    KS_CHECK_INT(colorize_seen(x, y, z, 6, &id, in, NULL, grey, rgb, seen), 0);
    KS_CHECK(seen[0] == 0 && !memcmp(rgb, grey, 3));
    free(bgra);
}

/* Three devices around a plane and a sphere, colour from BGRA (device 0), MJPEG (device 1, the
 * decoder) and none (device 2): 1 to 4 threads (devices shared out differently, each thread with
 * its own decoder and segments of the grid) give the same voxels, weights, devices and colours, bit
 * for bit. A corrupt MJPEG frame fails the run naming the device; the next run is
 * whole again. */
static void test_threads_agree(void)
{
    enum { ND = 3 };
    ks_fuse_device dev[ND];
    uint16_t *depth[ND];
    scene sc = {{0, 0, 1}, 2200, 1, {100, -50, 1700}, 300};
    const double pos[ND][3] = {{-500, 0, 0}, {400, 80, 100}, {0, -300, -200}}, target[3] = {0, 0, 2000};
    for (int d = 0; d < ND; d++) {
        memset(&dev[d], 0, sizeof dev[d]);
        KS_CHECK(scene_calibration(40 + (uint64_t)d, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, &dev[d].calibration));
        scene_look_at(pos[d], target, &dev[d].depth_to_rig);
        snprintf(dev[d].serial, sizeof dev[d].serial, "dev%d", d);
        const ks_intrinsics *in = &dev[d].calibration.depth;
        depth[d] = malloc((size_t)in->width * (size_t)in->height * 2);
        scene_render(&sc, in, &dev[d].depth_to_rig, depth[d]);
    }
    int cw = dev[0].calibration.color.width, ch = dev[0].calibration.color.height;
    uint8_t *bgra = malloc((size_t)cw * (size_t)ch * 4);
    for (int v = 0; v < ch; v++) /* a texture, so that points of one voxel differ in colour */
        for (int u = 0; u < cw; u++) {
            uint8_t *p = bgra + 4 * ((size_t)v * (size_t)cw + (size_t)u);
            p[0] = (uint8_t)(u * 7 + v), p[1] = (uint8_t)(v * 5), p[2] = (uint8_t)((u ^ v) * 3), p[3] = 255;
        }
    unsigned char *jpg = NULL;
    unsigned long jsize = 0;
    tjhandle tj = tjInitCompress();
    KS_CHECK(tj && tjCompress2(tj, bgra, cw, 0, ch, TJPF_BGRA, &jpg, &jsize, TJSAMP_420, 90, 0) == 0);
    if (tj)
        tjDestroy(tj);
    ks_fuse_input in[ND] = {
        {.depth = depth[0], .color_format = KS_FORMAT_BGRA32, .color = bgra, .color_width = cw, .color_height = ch},
        {.depth = depth[1], .color_format = KS_FORMAT_MJPG, .color = jpg, .color_size = jsize, .color_width = cw,
         .color_height = ch},
        {.depth = depth[2]}};
    ks_test_voxel *ref = NULL;
    size_t nref = 0;
    for (int threads = 1; threads <= 4; threads++) {
        ks_fuse_options o = {.voxel_mm = 4, .threads = threads, .color = true, .color_scale = 2};
        ks_fuse *f;
        ks_error err;
        KS_CHECK_INT(ks_fuse_create(dev, ND, &o, &f, &err), KS_OK);
        ks_cloud c = {0};
        ks_fuse_stats st;
        /* a corrupt frame of device 1 first: the run fails and names it */
        ks_fuse_input bad[ND];
        memcpy(bad, in, sizeof bad);
        uint8_t junk[64] = {0xff, 0xd8, 0xff, 0xe0};
        bad[1].color = junk, bad[1].color_size = sizeof junk;
        KS_CHECK_INT(ks_fuse_run(f, bad, &c, &st, &err), KS_EPARSE);
        KS_CHECK_CONTAINS(err.message, "dev1");
        KS_CHECK_INT(ks_fuse_run(f, in, &c, &st, &err), KS_OK);
        ks_test_voxel *v = ks_test_sorted_voxels(&c);
        size_t grey = 0, from2only = 0, alone[2] = {0, 0}, alone_grey[2] = {0, 0};
        for (size_t i = 0; i < c.count; i++) {
            bool g = v[i].rgb[0] == 128 && v[i].rgb[1] == 128 && v[i].rgb[2] == 128;
            grey += g;
            from2only += v[i].devices == 4;
            for (int d = 0; d < 2; d++) /* seen by device d (BGRA, MJPEG) alone */
                if (v[i].devices == 1u << d)
                    alone[d]++, alone_grey[d] += g;
        }
        /* every image was used: the voxels of device 0 or 1 alone are mostly coloured (grey only
         * where the depth camera sees past the colour camera's field of view) */
        for (int d = 0; d < 2; d++) {
            KS_CHECK(alone[d] > 1000);
            KS_CHECK(alone_grey[d] * 4 < alone[d]);
        }
        if (threads == 1) {
            ref = v, nref = c.count;
            printf("  %zu voxels, %zu grey, %zu seen by device 2 (no colour) alone; by device 0 alone %zu (%zu grey), "
                   "1 alone %zu (%zu grey)\n", nref, grey, from2only, alone[0], alone_grey[0], alone[1], alone_grey[1]);
            KS_CHECK(nref > 20000);
            KS_CHECK(from2only > 1000 && grey >= from2only); /* no colour camera saw those */
            KS_CHECK(grey < nref / 2);
        } else {
            KS_CHECK_INT(c.count, nref);
            size_t diff = 0;
            for (size_t i = 0; i < nref && i < c.count; i++)
                diff += memcmp(&v[i], &ref[i], sizeof v[i]) != 0;
            printf("  %d threads: %zu voxels, %zu differ\n", threads, c.count, diff);
            KS_CHECK_INT(diff, 0);
            free(v);
        }
        ks_cloud_free(&c);
        ks_fuse_destroy(f);
    }
    free(ref);
    tjFree(jpg);
    free(bgra);
    for (int d = 0; d < ND; d++)
        free(depth[d]);
}

/* Decoding tasks and chunks share one queue (fuse.c): a chunk whose device's MJPEG image another
 * thread is still decoding waits for it. Two devices, both MJPEG decoded in full (the slowest
 * decode, so that chunks of a device are taken while its image is being decoded: on 2 and 4
 * threads the first thread started takes device 0's decode and the thread after takes a chunk of
 * device 0 at once), two pictures given in turn (so an image of the previous set has other
 * colours): every set on 2 and 4 threads equals the same picture's set on 1 thread, bit for bit.
 * Repeated, so that one set that did not wait is enough to fail. */
static void test_decode_wait(void)
{
    enum { ND = 2, SETS = 6 };
    ks_fuse_device dev[ND];
    uint16_t *depth[ND];
    scene sc = {{0, 0, 1}, 2200, 1, {100, -50, 1700}, 300};
    const double pos[ND][3] = {{-300, 0, 0}, {300, 50, 100}}, target[3] = {0, 0, 2000};
    for (int d = 0; d < ND; d++) {
        memset(&dev[d], 0, sizeof dev[d]);
        KS_CHECK(scene_calibration(50 + (uint64_t)d, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, &dev[d].calibration));
        scene_look_at(pos[d], target, &dev[d].depth_to_rig);
        snprintf(dev[d].serial, sizeof dev[d].serial, "dev%d", d);
        const ks_intrinsics *in = &dev[d].calibration.depth;
        depth[d] = malloc((size_t)in->width * (size_t)in->height * 2);
        scene_render(&sc, in, &dev[d].depth_to_rig, depth[d]);
    }
    int cw = dev[0].calibration.color.width, ch = dev[0].calibration.color.height;
    uint8_t *bgra = malloc((size_t)cw * (size_t)ch * 4);
    unsigned char *jpg[2] = {NULL, NULL};
    unsigned long jsize[2] = {0, 0};
    tjhandle tj = tjInitCompress();
    KS_CHECK(tj != NULL);
    for (int pic = 0; pic < 2 && tj; pic++) {
        for (int v = 0; v < ch; v++)
            for (int u = 0; u < cw; u++) {
                uint8_t *p = bgra + 4 * ((size_t)v * (size_t)cw + (size_t)u);
                p[0] = (uint8_t)(pic ? 255 - u / 5 : u * 3 + v), p[1] = (uint8_t)(pic ? v / 3 : 255 - v / 3);
                p[2] = (uint8_t)(pic ? (u + v) / 8 : 40 + (u ^ v) % 90), p[3] = 255;
            }
        KS_CHECK(tjCompress2(tj, bgra, cw, 0, ch, TJPF_BGRA, &jpg[pic], &jsize[pic], TJSAMP_420, 90, 0) == 0);
    }
    if (tj)
        tjDestroy(tj);
    ks_fuse_input in[2][ND];
    for (int pic = 0; pic < 2; pic++)
        for (int d = 0; d < ND; d++)
            in[pic][d] = (ks_fuse_input){.depth = depth[d], .color_format = KS_FORMAT_MJPG, .color = jpg[pic],
                                         .color_size = jsize[pic], .color_width = cw, .color_height = ch};
    ks_test_voxel *ref[2] = {NULL, NULL};
    size_t nref[2] = {0, 0};
    const int threads[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        ks_fuse_options o = {.voxel_mm = 4, .threads = threads[k], .color = true, .color_scale = 1};
        ks_fuse *f;
        ks_error err;
        KS_CHECK_INT(ks_fuse_create(dev, ND, &o, &f, &err), KS_OK);
        ks_cloud c = {0};
        size_t differ = 0, sets_differ = 0;
        for (int s = 0; s < (threads[k] == 1 ? 2 : SETS); s++) {
            int pic = s % 2;
            KS_CHECK_INT(ks_fuse_run(f, in[pic], &c, NULL, &err), KS_OK);
            ks_test_voxel *v = ks_test_sorted_voxels(&c);
            if (threads[k] == 1) {
                ref[pic] = v, nref[pic] = c.count;
                continue;
            }
            size_t diff = c.count == nref[pic] ? 0 : c.count + nref[pic];
            for (size_t i = 0; i < nref[pic] && i < c.count; i++)
                diff += memcmp(&v[i], &ref[pic][i], sizeof v[i]) != 0;
            differ += diff;
            sets_differ += diff > 0;
            free(v);
        }
        if (threads[k] == 1) {
            size_t same = 0, coloured = 0;
            for (size_t i = 0; i < nref[0] && nref[0] == nref[1]; i++) {
                bool grey = ref[0][i].rgb[0] == 128 && ref[0][i].rgb[1] == 128 && ref[0][i].rgb[2] == 128;
                coloured += !grey;
                same += !grey && !memcmp(ref[0][i].rgb, ref[1][i].rgb, 3);
            }
            printf("  1 thread: %zu voxels, %zu coloured, %zu of them of the same colour in both pictures\n", nref[0],
                   coloured, same);
            KS_CHECK(nref[0] > 20000 && nref[0] == nref[1]);
            KS_CHECK(coloured > nref[0] * 3 / 4); /* the colour cameras see most of the scene */
            KS_CHECK(same < coloured / 20);       /* the pictures tell their sets apart */
        } else {
            printf("  %d threads: %d sets, %zu differ in %zu voxels\n", threads[k], SETS, sets_differ, differ);
            KS_CHECK_INT(differ, 0);
        }
        ks_cloud_free(&c);
        ks_fuse_destroy(f);
    }
    free(ref[0]);
    free(ref[1]);
    tjFree(jpg[0]);
    tjFree(jpg[1]);
    free(bgra);
    for (int d = 0; d < ND; d++)
        free(depth[d]);
}

int main(void)
{
    KS_RUN(test_every_pixel);
    KS_RUN(test_fallbacks);
    KS_RUN(test_threads_agree);
    KS_RUN(test_decode_wait);
    return KS_TEST_END();
}
