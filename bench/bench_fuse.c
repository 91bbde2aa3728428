/* bench_fuse: the speeds issue 7 names, on the same frames: a synthetic 9-device rig in
 * NFOV_UNBINNED (640x576) around a room with a floor and two spheres.
 *   1. depth to points (xyz float, rig frame), single thread, in pixels per second;
 *   2. the full fuse of a 9-device frame set with 5 mm voxels on 2 threads (and 1), frame sets/s;
 *   3. when python3-open3d is installed, Open3D on the same points (kinsync's lens rays, Open3D
 *      transform + voxel_down_sample, bench/bench_fuse_open3d.py), voxel counts on one grid.
 * Usage: bench_fuse [--quick] [--no-open3d] [--fuse-only N [--write] [--fuse-color bgra|1|2|4 [--real-mjpeg]]
 *                   [--threads T]] [--startup] [--color] [--color-parts].
 * --color: only the colour figures: the parts on one thread (MJPEG decoding at 1, 1/2, 1/4 and colouring
 * the points; then decoding the real device's frame, below), then the fuse on 2 threads without colour
 * and with colour (BGRA, MJPEG at 1, 1/2, 1/4, the real device's frame at 1/2). The real device's
 * frame is the first colour frame of KS_FIXTURES/k4a/real-recording-nfov-720p.mkv (4:2:2, ~212 KB,
 * as the Azure Kinect encodes it; the synthetic picture's JPEG is 4:2:0, 118 KB);
 * --color-parts: only the parts (for callgrind: --toggle-collect=ks_points_colorize_packed counts the
 * colouring's instructions).
 * --write (with --fuse-only): also the time to write the set as float PLY and as 16-bit PLY.
 * --startup: only the start-up figures (unprojection tables, ks_fuse_create built and cached).
 * --fuse-only N: only the one-thread full fuse, N frame sets, printing CPU time per set (for
 * profiling, e.g. under valgrind --tool=callgrind, and for A/B runs on a loaded machine); with
 * --fuse-color the set has colour too (from the BGRA picture, or its MJPEG decoded at 1/N; with
 * --real-mjpeg the real device's frame decoded at 1/N instead), with --threads T on T threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <turbojpeg.h>

#include "kinsync/calibration.h"
#include "kinsync/fuse.h"
#include "kinsync/mkv.h"
#include "bench_common.h"

enum { NDEV = 9 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void look_at(const double pos[3], const double target[3], ks_extrinsics *e)
{
    double z[3] = {target[0] - pos[0], target[1] - pos[1], target[2] - pos[2]};
    double l = sqrt(z[0] * z[0] + z[1] * z[1] + z[2] * z[2]);
    for (int i = 0; i < 3; i++)
        z[i] /= l;
    double x[3] = {z[2], 0, -z[0]}; /* (0,1,0) x z */
    l = sqrt(x[0] * x[0] + x[2] * x[2]);
    x[0] /= l, x[2] /= l;
    double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
    for (int i = 0; i < 3; i++) {
        e->R[3 * i] = x[i];
        e->R[3 * i + 1] = y[i];
        e->R[3 * i + 2] = z[i];
        e->t[i] = pos[i];
    }
}

/* Ray cast of the scene (rig frame, y down): a floor disc (y = 900, radius 3 m) with two spheres on
 * it and a backdrop cylinder (radius 3 m, 2.5 m high) around the capture volume; rays that leave
 * it see nothing (no depth), as a real depth camera past its range. */
static double hit(const double o[3], const double d[3])
{
    double best = INFINITY;
    if (d[1] > 1e-9) {
        double t = (900 - o[1]) / d[1];
        double px = o[0] + t * d[0], pz = o[2] + t * d[2];
        if (t > 0 && px * px + pz * pz < 3000.0 * 3000.0)
            best = t;
    }
    { /* backdrop: x^2 + z^2 = 3000^2, -1600 < y < 900, seen from inside */
        double a = d[0] * d[0] + d[2] * d[2], b = 2 * (o[0] * d[0] + o[2] * d[2]);
        double c = o[0] * o[0] + o[2] * o[2] - 3000.0 * 3000.0, disc = b * b - 4 * a * c;
        if (a > 0 && disc >= 0) {
            double t = (-b + sqrt(disc)) / (2 * a), y = o[1] + t * d[1];
            if (t > 0 && t < best && y > -1600 && y < 900)
                best = t;
        }
    }
    const double sph[2][4] = {{0, 400, 0, 500}, {700, 600, 300, 300}};
    for (int s = 0; s < 2; s++) {
        double oc[3] = {o[0] - sph[s][0], o[1] - sph[s][1], o[2] - sph[s][2]};
        double a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2], b = 2 * (oc[0] * d[0] + oc[1] * d[1] + oc[2] * d[2]);
        double c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - sph[s][3] * sph[s][3];
        double disc = b * b - 4 * a * c;
        if (disc < 0)
            continue;
        double t1 = (-b - sqrt(disc)) / (2 * a), t2 = (-b + sqrt(disc)) / (2 * a);
        double t = t1 > 0 ? t1 : t2;
        if (t > 0 && t < best)
            best = t;
    }
    return best;
}

static void render(const ks_unproject_table *t, const ks_extrinsics *pose, uint16_t *depth)
{
    for (size_t i = 0; i < (size_t)t->width * (size_t)t->height; i++) {
        depth[i] = 0;
        if (!(t->x[i] == t->x[i]))
            continue;
        double r[3] = {t->x[i], t->y[i], 1}, d[3];
        for (int k = 0; k < 3; k++)
            d[k] = pose->R[3 * k] * r[0] + pose->R[3 * k + 1] * r[1] + pose->R[3 * k + 2] * r[2];
        double z = hit(pose->t, d); /* parameter along (x, y, 1): camera Z */
        if (z > 250 && z < 6000)
            depth[i] = (uint16_t)lround(z);
    }
}

static int write_open3d_input(const char *dir, const ks_fuse_device *dev, const ks_unproject_table *tab,
                              uint16_t *const *depth)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/rig.txt", dir);
    FILE *fp = fopen(p, "w");
    if (!fp)
        return -1;
    for (int d = 0; d < NDEV; d++) {
        const ks_intrinsics *in = &dev[d].calibration.depth;
        fprintf(fp, "%d %d %.9g %.9g %.9g %.9g", in->width, in->height, in->fx, in->fy, in->cx, in->cy);
        for (int k = 0; k < 9; k++)
            fprintf(fp, " %.12g", dev[d].depth_to_rig.R[k]);
        for (int k = 0; k < 3; k++)
            fprintf(fp, " %.12g", dev[d].depth_to_rig.t[k]);
        fprintf(fp, "\n");
        snprintf(p, sizeof p, "%s/depth%d.u16", dir, d);
        FILE *fd = fopen(p, "wb");
        if (!fd) {
            fclose(fp);
            return -1;
        }
        size_t npix = (size_t)in->width * (size_t)in->height;
        bool ok = fwrite(depth[d], 2, npix, fd) == npix;
        fclose(fd);
        /* the same lens model for Open3D: kinsync's rays (x plane, then y plane) */
        snprintf(p, sizeof p, "%s/rays%d.f32", dir, d);
        FILE *fr = fopen(p, "wb");
        ok = ok && fr && fwrite(tab[d].x, 4, npix, fr) == npix && fwrite(tab[d].y, 4, npix, fr) == npix;
        if (fr)
            fclose(fr);
        if (!ok) {
            fclose(fp);
            return -1;
        }
    }
    fclose(fp);
    return 0;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One 9-device set's fuse with options o, inputs in: after two warm-up runs, n runs; wall and CPU
 * per set, the mean of ks_fuse_stats.ms_color, and the calling thread's share of the CPU (it runs
 * thread 0's part of every phase: on 2 threads ~50 % when the work is split evenly, whatever the
 * load, as CPU time does not count waiting). */
static int time_fuse(const ks_fuse_device *dev, const ks_fuse_options *o, const ks_fuse_input *in, int n,
                     double *wall_ms, double *cpu_ms, double *color_ms, double *share0)
{
    ks_fuse *f;
    ks_error err;
    if (ks_fuse_create(dev, NDEV, o, &f, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse: %s\n", err.message);
        return -1;
    }
    ks_cloud c = {0};
    ks_fuse_stats st;
    int rc = 0;
    for (int r = 0; r < 2 && !rc; r++) /* warm up: grows the grid */
        rc = ks_fuse_run(f, in, &c, &st, &err) == KS_OK ? 0 : -1;
    double s = now_s(), c0 = cpu_s(), t0 = thread_cpu_s(), mc = 0;
    for (int r = 0; r < n && !rc; r++) {
        rc = ks_fuse_run(f, in, &c, &st, &err) == KS_OK ? 0 : -1;
        mc += st.ms_color;
    }
    *share0 = (thread_cpu_s() - t0) / (cpu_s() - c0);
    if (rc)
        fprintf(stderr, "bench_fuse: %s\n", err.message);
    *wall_ms = (now_s() - s) / n * 1e3;
    *cpu_ms = (cpu_s() - c0) / n * 1e3;
    *color_ms = mc / n;
    ks_cloud_free(&c);
    ks_fuse_destroy(f);
    return rc;
}

/* Colour (issue 19: >= 30 sets/s with colour from 720P MJPEG on 2 idle threads). First the parts on
 * one thread, CPU per 9-device set: decoding the nine MJPEG frames at 1/1, 1/2, 1/4, and colouring
 * the set's points (projection through the full lens model and sampling, ks_points_colorize) from
 * the BGRA image and from the images decoded at 1/2 and 1/4. Then the full fuse on 2 threads
 * without colour (the baseline), with colour from BGRA frames and from 720P MJPEG frames (the same
 * picture, JPEG quality 90) decoded in full and scaled down 1/2 and 1/4 by libjpeg-turbo
 * (ks_fuse_options.color_scale); "colour costs" is the CPU per set above the baseline. */
/* The colour picture of every device: a cw x ch BGRA image (smooth with some texture, as a room is)
 * and its JPEG (quality 90, 4:2:0, as the Azure Kinect's MJPEG); *jsize 0 when it cannot be encoded. */
static uint8_t *make_picture(int cw, int ch, unsigned char **jpeg, unsigned long *jsize)
{
    uint8_t *bgra = malloc((size_t)cw * (size_t)ch * 4);
    for (int v = 0; v < ch; v++)
        for (int u = 0; u < cw; u++) {
            uint8_t *p = bgra + 4 * ((size_t)v * (size_t)cw + (size_t)u);
            p[0] = (uint8_t)(u / 5 + ((u / 16 + v / 16) % 2) * 40);
            p[1] = (uint8_t)(v / 3);
            p[2] = (uint8_t)((u + v) / 8 + (u * v % 7) * 3);
            p[3] = 255;
        }
    *jpeg = NULL;
    *jsize = 0;
    tjhandle tj = tjInitCompress();
    if (!tj || tjCompress2(tj, bgra, cw, 0, ch, TJPF_BGRA, jpeg, jsize, TJSAMP_420, 90, 0) != 0) {
        printf("color: could not encode the test picture\n");
        *jsize = 0;
    }
    if (tj)
        tjDestroy(tj);
    return bgra;
}

/* The first colour frame of the real device's recording (KS_FIXTURES/k4a/real-recording-nfov-720p.mkv:
 * 1280x720 MJPEG as the Azure Kinect writes it, 4:2:2 with restart markers, ~212 KB; the synthetic
 * picture's is 4:2:0, 118 KB, and decodes in about half the time). NULL when the fixture is absent. */
static unsigned char *real_frame(unsigned long *size)
{
    ks_mkv_reader *r = NULL;
    ks_error e;
    unsigned char *out = NULL;
    *size = 0;
    if (ks_mkv_reader_open(KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv", &r, &e) != KS_OK)
        return NULL;
    ks_mkv_item it;
    while (!out && ks_mkv_reader_next(r, &it, &e) == KS_OK) {
        if (it.kind == KS_MKV_COLOR && it.image && it.image->format == KS_FORMAT_MJPG && it.image->width == 1280 &&
            (out = malloc(it.image->size)) != NULL) {
            memcpy(out, it.image->data, it.image->size);
            *size = it.image->size;
        }
        ks_image_release(it.image);
    }
    ks_mkv_reader_close(r);
    return out;
}

/* The fuse input of device d: depth, and colour from the BGRA picture (scale 0) or its JPEG (scale
 * 1, 2, 4: decoded at 1/scale) when color. */
static ks_fuse_input color_input(const uint16_t *depth, bool color, int scale, const uint8_t *bgra,
                                 const unsigned char *jpeg, unsigned long jsize, int cw, int ch)
{
    if (!color)
        return (ks_fuse_input){.depth = depth};
    if (scale == 0)
        return (ks_fuse_input){.depth = depth, .color_format = KS_FORMAT_BGRA32, .color = bgra, .color_width = cw,
                               .color_height = ch};
    return (ks_fuse_input){.depth = depth, .color_format = KS_FORMAT_MJPG, .color = jpeg, .color_size = jsize,
                           .color_width = cw, .color_height = ch};
}

static void color_bench(const ks_fuse_device *dev, const ks_unproject_table *tab, uint16_t *const *depth, int quick,
                        int parts_only)
{
    int cw = dev[0].calibration.color.width, ch = dev[0].calibration.color.height;
    unsigned char *jpeg;
    unsigned long jsize;
    uint8_t *bgra = make_picture(cw, ch, &jpeg, &jsize);
    int n = quick ? 4 : 12;

    /* the parts, one thread; the points are made and coloured 8 rows at a time as the fuse does (so
     * they are in the cache when coloured), the colouring's time is that of both less that of the
     * points alone */
    {
        enum { ROWS = 8 };
        size_t W = (size_t)tab[0].width, chunk = W * ROWS, pts = 0;
        float *x = malloc(chunk * 4), *y = malloc(chunk * 4), *z = malloc(chunk * 4);
        uint8_t *rgb = malloc(chunk * 3);
        ks_extrinsics r2c[NDEV];
        for (int d = 0; d < NDEV; d++) {
            ks_extrinsics rig_to_depth;
            ks_extrinsics_invert(&dev[d].depth_to_rig, &rig_to_depth);
            ks_extrinsics_compose(&rig_to_depth, &dev[d].calibration.depth_to_color, &r2c[d]);
        }
        ks_mjpeg_decoder *dec = NULL;
        ks_error err;
        if (jsize && ks_mjpeg_decoder_create(&dec, &err) != KS_OK)
            dec = NULL;
        static const uint8_t grey[3] = {128, 128, 128};
        printf("colour parts, 1 thread, CPU per 9-device set, best and mean of %d:\n", n);
        for (int mode = 0; mode < 4; mode++) { /* 0: BGRA; 1, 2, 3: MJPEG at 1/1, 1/2, 1/4 */
            int scale = mode == 0 ? 1 : 1 << (mode - 1);
            ks_color_image img = {cw, ch, (size_t)cw * 4, bgra, 1};
            double best[3] = {1e9, 1e9, 1e9}, sum[3] = {0}; /* decode, points, points + colour */
            size_t colored = 0;
            if (mode > 0 && !dec)
                break;
            for (int r = 0; r <= 2 * n; r++) { /* run 0 warms up; then points alone and with colour in turn */
                int with = r % 2, k = with ? 2 : 1;
                double c0 = cpu_s(), dec_s = 0;
                pts = 0;
                colored = with ? 0 : colored;
                for (int d = 0; d < NDEV; d++) { /* as the fuse does: decode, then the device's points */
                    if (with && mode > 0) {
                        double c1 = cpu_s();
                        if (ks_mjpeg_decode(dec, jpeg, jsize, scale, &img, &err) != KS_OK) {
                            fprintf(stderr, "bench_fuse: %s\n", err.message);
                            break;
                        }
                        dec_s += cpu_s() - c1;
                    }
                    for (int v = 0; v + ROWS <= tab[d].height; v += ROWS) {
                        ks_unproject_table t8 = {.width = tab[d].width, .height = ROWS, .x = tab[d].x + (size_t)v * W,
                                                 .y = tab[d].y + (size_t)v * W};
                        pts += ks_depth_to_points(&t8, depth[d] + (size_t)v * W, 0, &dev[d].depth_to_rig, x, y, z);
                        if (with)
                            colored += ks_points_colorize(x, y, z, chunk, &r2c[d], &dev[d].calibration.color, &img,
                                                          grey, rgb);
                    }
                }
                double all = cpu_s() - c0 - dec_s;
                if (r == 0)
                    continue;
                if (with) {
                    best[0] = dec_s < best[0] ? dec_s : best[0];
                    sum[0] += dec_s;
                }
                best[k] = all < best[k] ? all : best[k];
                sum[k] += all;
            }
            if (mode > 0)
                printf("  decode 9 MJPEG 720P (%lu KB) at 1/%d: %.1f ms (mean %.1f)\n", jsize / 1024, scale,
                       best[0] * 1e3, sum[0] / n * 1e3);
            printf("  colour %zu points from %s %dx%d: %.1f ms (mean %.1f; points alone %.1f); %zu coloured\n", pts,
                   mode ? "the decoded image" : "BGRA", img.width, img.height, (best[2] - best[1]) * 1e3,
                   (sum[2] - sum[1]) / n * 1e3, best[1] * 1e3, colored);
        }
        unsigned long rsize = 0;
        unsigned char *real = dec ? real_frame(&rsize) : NULL;
        /* decode variants at 1/2 not taken (docs/fuse.md, session 8), straight through libturbojpeg */
        tjhandle tj = tjInitDecompress();
        uint8_t *vbuf = malloc((size_t)cw * (size_t)ch * 4);
        for (int src = 0; src < 2 && tj && vbuf && jsize; src++) {
            const unsigned char *jp = src ? real : jpeg;
            unsigned long js = src ? rsize : jsize;
            if (!jp)
                continue;
            const char *name[3] = {"BGRA", "BGRA with TJFLAG_FASTUPSAMPLE", "planar YUV (no colour conversion)"};
            double best[3] = {1e9, 1e9, 1e9};
            int w2 = (cw + 1) / 2, h2 = (ch + 1) / 2;
            for (int r = 0; r <= n; r++)
                for (int k = 0; k < 3; k++) {
                    double c0 = cpu_s();
                    for (int d = 0; d < NDEV; d++) {
                        int bad = k < 2 ? tjDecompress2(tj, jp, js, vbuf, w2, 0, h2, TJPF_BGRA,
                                                        TJFLAG_FASTDCT | (k ? TJFLAG_FASTUPSAMPLE : 0))
                                        : tjDecompressToYUV2(tj, jp, js, vbuf, w2, 1, h2, TJFLAG_FASTDCT);
                        if (bad && tjGetErrorCode(tj) == TJERR_FATAL)
                            r = n + 1;
                    }
                    double c = cpu_s() - c0;
                    if (r > 0)
                        best[k] = c < best[k] ? c : best[k];
                }
            for (int k = 0; k < 3; k++)
                printf("  decode 9 %s at 1/2 to %s: %.1f ms\n", src ? "of the real device's frame" : "MJPEG 720P",
                       name[k], best[k] * 1e3);
        }
        if (tj)
            tjDestroy(tj);
        free(vbuf);
        /* the frames as the fuse decodes them (ks_mjpeg_decode: scaled down, fuse/jpeg_lowres.c) beside
         * libjpeg-turbo's scaled decode (a decoder made with KINSYNC_MJPEG_LIBJPEG set) */
        ks_mjpeg_decoder *lib = NULL;
        setenv("KINSYNC_MJPEG_LIBJPEG", "1", 1);
        if (dec && ks_mjpeg_decoder_create(&lib, &err) != KS_OK)
            lib = NULL;
        unsetenv("KINSYNC_MJPEG_LIBJPEG");
        for (int src = 0; src < 2 && lib; src++) {
            const unsigned char *jp = src ? real : jpeg;
            unsigned long js = src ? rsize : jsize;
            for (int scale = 1; jp && scale <= 8; scale *= 2) {
                ks_color_image img;
                double best[2] = {1e9, 1e9}, sum[2] = {0};
                for (int r = 0; r <= n; r++)
                    for (int k = 0; k < 2; k++) {
                        double c0 = cpu_s();
                        for (int d = 0; d < NDEV; d++)
                            if (ks_mjpeg_decode(k ? lib : dec, jp, js, scale, &img, &err) != KS_OK) {
                                fprintf(stderr, "bench_fuse: decode: %s\n", err.message);
                                r = n + 1;
                                break;
                            }
                        double c = cpu_s() - c0;
                        if (r > 0) /* run 0 warms up */
                            best[k] = c < best[k] ? c : best[k], sum[k] += c;
                    }
                printf("  decode 9 of %s at 1/%d: %.1f ms (mean %.1f)%s; libjpeg-turbo's scaled decode %.1f ms (mean "
                       "%.1f)\n",
                       src ? "the real device's MJPEG 720P frame (4:2:2)" : "the bench picture's MJPEG (4:2:0)", scale,
                       best[0] * 1e3, sum[0] / n * 1e3, scale > 1 ? " as the fuse decodes" : " (libjpeg-turbo)",
                       best[1] * 1e3, sum[1] / n * 1e3);
            }
        }
        ks_mjpeg_decoder_destroy(lib);
        if (!real)
            printf("  (the real device's frame: fixture %s not readable, skipped)\n",
                   KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv");
        free(real);
        ks_mjpeg_decoder_destroy(dec);
        free(x), free(y), free(z), free(rgb);
    }

    if (parts_only) {
        tjFree(jpeg);
        free(bgra);
        return;
    }
    /* the full fuse, 2 threads */
    ks_fuse_input in[NDEV];
    memset(in, 0, sizeof in);
    for (int d = 0; d < NDEV; d++)
        in[d].depth = depth[d];
    ks_fuse_options o = {.voxel_mm = 5, .threads = 2};
    double wall0, cpu0, mc, share;
    if (time_fuse(dev, &o, in, n, &wall0, &cpu0, &mc, &share) != 0)
        return;
    printf("full fuse without color, 5 mm voxels, 2 threads: %.1f frame sets/s (%.1f ms wall, %.1f ms CPU, "
           "%.0f %% of it on thread 0)\n", 1e3 / wall0, wall0, cpu0, share * 100);
    for (int mode = 0; mode < 4; mode++) { /* BGRA, then MJPEG at 1, 1/2, 1/4 */
        if (mode > 0 && !jsize)
            break;
        int scale = mode == 0 ? 1 : 1 << (mode - 1);
        o = (ks_fuse_options){.voxel_mm = 5, .threads = 2, .color = true, .color_scale = scale};
        for (int d = 0; d < NDEV; d++)
            in[d] = color_input(depth[d], true, mode == 0 ? 0 : scale, bgra, jpeg, jsize, cw, ch);
        double wall, cpu;
        if (time_fuse(dev, &o, in, n, &wall, &cpu, &mc, &share) != 0)
            break;
        if (mode == 0)
            printf("full fuse with color (BGRA 720P), 5 mm voxels, 2 threads: %.1f frame sets/s (%.1f ms wall, %.1f ms "
                   "CPU, colour costs %.1f, %.0f %% on thread 0; coloring %.1f ms per thread)\n", 1e3 / wall, wall, cpu,
                   cpu - cpu0, share * 100, mc);
        else
            printf("full fuse with color (MJPEG 720P, %lu KB, decoded at 1/%d), 5 mm voxels, 2 threads: %.1f frame "
                   "sets/s (%.1f ms wall, %.1f ms CPU, colour costs %.1f, %.0f %% on thread 0; decoding and coloring "
                   "%.1f ms per thread)%s\n", jsize / 1024, scale, 1e3 / wall, wall, cpu, cpu - cpu0, share * 100, mc,
                   scale == 2 ? " (target >= 30)" : "");
    }
    unsigned long rsize = 0;
    unsigned char *real = real_frame(&rsize);
    if (real) { /* the real device's frame, at 1/2: the decode as a rig's MJPEG costs it */
        o = (ks_fuse_options){.voxel_mm = 5, .threads = 2, .color = true, .color_scale = 2};
        for (int d = 0; d < NDEV; d++)
            in[d] = color_input(depth[d], true, 2, bgra, real, rsize, cw, ch);
        double wall, cpu;
        if (time_fuse(dev, &o, in, n, &wall, &cpu, &mc, &share) == 0)
            printf("full fuse with color (the real device's MJPEG 720P frame, %lu KB, decoded at 1/2), 5 mm voxels, 2 "
                   "threads: %.1f frame sets/s (%.1f ms wall, %.1f ms CPU, colour costs %.1f, %.0f %% on thread 0; "
                   "decoding and coloring %.1f ms per thread)\n", rsize / 1024, 1e3 / wall, wall, cpu, cpu - cpu0,
                   share * 100, mc);
        free(real);
    }
    tjFree(jpeg);
    free(bgra);
}

static size_t sink_sz; /* keeps results alive */

/* One point of a cloud as the bytes that define it (position bits, weight, devices, colour), for
 * cloud_digest's sort. */
typedef struct {
    uint32_t w[6];
} point_key;

static int cmp_point_key(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(point_key));
}

/* A digest of the cloud that does not depend on its points' order (FNV-1a over the points sorted by
 * their bytes): two versions of the grid that emit the same voxels in another order agree. */
static uint64_t cloud_digest(const ks_cloud *c)
{
    point_key *k = calloc(c->count ? c->count : 1, sizeof *k);
    if (!k)
        return 0;
    for (size_t i = 0; i < c->count; i++) {
        memcpy(&k[i].w[0], &c->x[i], 4);
        memcpy(&k[i].w[1], &c->y[i], 4);
        memcpy(&k[i].w[2], &c->z[i], 4);
        k[i].w[3] = c->weight[i];
        k[i].w[4] = c->devices[i];
        if (c->rgb)
            memcpy(&k[i].w[5], &c->rgb[3 * i], 3);
    }
    qsort(k, c->count, sizeof *k, cmp_point_key);
    uint64_t h = 1469598103934665603ull;
    const unsigned char *b = (const unsigned char *)k;
    for (size_t i = 0; i < c->count * sizeof *k; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    free(k);
    return h;
}

/* --vs-keep-points: n sets on a pipeline that keeps the organized points (keep_points) and n on one
 * that does not (the default), alternated A B B A A B ... so that the host's speed, which drifts by
 * tens of percent within minutes on the development VM, weighs on both alike; CPU per set (mean,
 * median) of each, and whether both give the same cloud (ref: the first pipeline's warm-up set). */
static int alternate_keep(const ks_fuse_device *dev, const ks_fuse_options *o, const ks_fuse_input *in,
                          const ks_cloud *ref, int n)
{
    ks_fuse_options oa = *o, ob = *o;
    oa.keep_points = true;
    ob.keep_points = false;
    ks_fuse *fa = NULL, *fb = NULL;
    ks_error err;
    ks_cloud ca = {0}, cb = {0};
    double *ta = malloc((size_t)n * sizeof *ta), *tb = malloc((size_t)n * sizeof *tb);
    int rc = 1;
    if (!ta || !tb || ks_fuse_create(dev, NDEV, &oa, &fa, &err) != KS_OK ||
        ks_fuse_create(dev, NDEV, &ob, &fb, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse: %s\n", ta && tb ? err.message : "out of memory");
        goto out;
    }
    if (ks_fuse_run(fa, in, &ca, NULL, &err) != KS_OK || ks_fuse_run(fb, in, &cb, NULL, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse: %s\n", err.message);
        goto out;
    }
    for (int r = 0; r < 2 * n; r++) {
        bool b = ((r & 1) ^ ((r >> 1) & 1)) != 0; /* A B B A A B B A ... */
        double c1 = cpu_s();
        if (ks_fuse_run(b ? fb : fa, in, b ? &cb : &ca, NULL, &err) != KS_OK) {
            fprintf(stderr, "bench_fuse: %s\n", err.message);
            goto out;
        }
        (b ? tb : ta)[r / 2] = (cpu_s() - c1) * 1e3;
    }
    double sa = 0, sb = 0;
    for (int i = 0; i < n; i++)
        sa += ta[i], sb += tb[i];
    qsort(ta, (size_t)n, sizeof *ta, cmp_double);
    qsort(tb, (size_t)n, sizeof *tb, cmp_double);
    bool same = true;
    for (int q = 0; q < 2; q++) {
        const ks_cloud *x = q ? &cb : &ca;
        size_t m = ref->count;
        same = same && x->count == m && !memcmp(x->x, ref->x, m * 4) && !memcmp(x->y, ref->y, m * 4) &&
               !memcmp(x->z, ref->z, m * 4) && !memcmp(x->weight, ref->weight, m * 4) &&
               (!ref->rgb || !memcmp(x->rgb, ref->rgb, m * 3));
    }
    printf("alternated, %d thread(s), %d sets each: keep_points %.1f ms CPU per set (median %.1f), without %.1f "
           "(median %.1f): %+.1f %% (medians); the same cloud: %s\n",
           o->threads, n, sa / n, ta[n / 2], sb / n, tb[n / 2], 100.0 * (tb[n / 2] / ta[n / 2] - 1.0),
           same ? "yes" : "NO");
    rc = same ? 0 : 1;
out:
    free(ta);
    free(tb);
    ks_cloud_free(&ca);
    ks_cloud_free(&cb);
    ks_fuse_destroy(fa);
    ks_fuse_destroy(fb);
    return rc;
}

/* The first n devices' unprojection tables and depth images, freed at exit. */
static void free_devices(ks_unproject_table *tab, uint16_t **depth, int n)
{
    for (int d = 0; d < n; d++) {
        free(depth[d]);
        ks_unproject_table_free(&tab[d]);
    }
}

int main(int argc, char **argv)
{
    int quick = 0, open3d = 1, fuse_only = 0, startup_only = 0, write_too = 0, color_only = 0;
    int fuse_scale = 0, fuse_threads = 1;
    bool fuse_color = false, real_mjpeg = false, vs_keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--fuse-only") && i + 1 < argc)
            fuse_only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fuse-color") && i + 1 < argc) {
            const char *m = argv[++i];
            fuse_color = true;
            fuse_scale = !strcmp(m, "bgra") ? 0 : atoi(m);
            if (fuse_scale != 0 && fuse_scale != 1 && fuse_scale != 2 && fuse_scale != 4) {
                fprintf(stderr, "bench_fuse: --fuse-color takes bgra, 1, 2 or 4 (MJPEG decoded at 1/N)\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            fuse_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-open3d"))
            open3d = 0;
        else if (!strcmp(argv[i], "--startup"))
            startup_only = 1;
        else if (!strcmp(argv[i], "--write"))
            write_too = 1;
        else if (!strcmp(argv[i], "--color"))
            color_only = color_only ? color_only : 1;
        else if (!strcmp(argv[i], "--color-parts"))
            color_only = 2;
        else if (!strcmp(argv[i], "--real-mjpeg"))
            real_mjpeg = true;
        else if (!strcmp(argv[i], "--vs-keep-points"))
            vs_keep = true;
    }
    ks_fuse_device dev[NDEV];
    ks_unproject_table tab[NDEV];
    uint16_t *depth[NDEV];
    ks_error err;
    double t0 = now_s();
    for (int d = 0; d < NDEV; d++) {
        memset(&dev[d], 0, sizeof dev[d]);
        snprintf(dev[d].serial, sizeof dev[d].serial, "%012d", 1000 + d);
        char *js = ks_calibration_json_synthesize(100 + (uint64_t)d, dev[d].serial);
        if (!js || ks_calibration_from_json(js, strlen(js), KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &dev[d].calibration,
                                            &err) != KS_OK) {
            fprintf(stderr, "bench_fuse: calibration: %s\n", js ? err.message : "out of memory");
            free(js);
            free_devices(tab, depth, d);
            return 1;
        }
        free(js);
        double a = 2 * M_PI * d / NDEV;
        double pos[3] = {2200 * cos(a), -600 - 100 * (d % 3), 2200 * sin(a)}, target[3] = {0, 400, 0};
        look_at(pos, target, &dev[d].depth_to_rig);
        if (ks_unproject_table_build(&dev[d].calibration.depth, &tab[d], &err) != KS_OK) {
            fprintf(stderr, "bench_fuse: %s\n", err.message);
            free_devices(tab, depth, d);
            return 1;
        }
        depth[d] = malloc((size_t)tab[d].width * (size_t)tab[d].height * 2);
        render(&tab[d], &dev[d].depth_to_rig, depth[d]);
    }
    int W = tab[0].width, H = tab[0].height;
    size_t npix = (size_t)W * (size_t)H, valid_pix = 0;
    for (int d = 0; d < NDEV; d++)
        for (size_t i = 0; i < npix; i++)
            valid_pix += depth[d][i] != 0;
    char load[64] = "?";
    loadavg(load, sizeof load);
    printf("bench_fuse: %d devices, NFOV_UNBINNED %dx%d, %.1f%% pixels with depth (setup %.1f s; %ld CPUs, load %s)\n",
           NDEV, W, H, 100.0 * (double)valid_pix / (double)(npix * NDEV), now_s() - t0, sysconf(_SC_NPROCESSORS_ONLN),
           load);

    if (color_only) {
        color_bench(dev, tab, depth, quick, color_only == 2);
        free_devices(tab, depth, NDEV);
        return 0;
    }
    if (fuse_only > 0) {
        ks_fuse_options o = {.voxel_mm = 5, .threads = fuse_threads, .color = fuse_color,
                             .color_scale = fuse_scale ? fuse_scale : 1};
        int cw = dev[0].calibration.color.width, ch = dev[0].calibration.color.height;
        unsigned char *jpeg = NULL;
        unsigned long jsize = 0;
        uint8_t *bgra = fuse_color ? make_picture(cw, ch, &jpeg, &jsize) : NULL;
        unsigned char *real = NULL;
        if (fuse_color && fuse_scale && real_mjpeg) { /* the real device's frame instead of the picture's JPEG */
            unsigned long rsize = 0;
            if (!(real = real_frame(&rsize))) {
                fprintf(stderr, "bench_fuse: --real-mjpeg: the fixture %s is not readable\n",
                        KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv");
                return 1;
            }
            tjFree(jpeg);
            jpeg = NULL;
            jsize = rsize;
        }
        ks_fuse *f;
        if (ks_fuse_create(dev, NDEV, &o, &f, &err) != KS_OK) {
            fprintf(stderr, "bench_fuse: %s\n", err.message);
            return 1;
        }
        ks_fuse_input in[NDEV];
        memset(in, 0, sizeof in);
        for (int d = 0; d < NDEV; d++)
            in[d] = color_input(depth[d], fuse_color, fuse_scale, bgra, real ? real : jpeg, jsize, cw, ch);
        ks_cloud c = {0};
        ks_fuse_stats st;
        ks_fuse_run(f, in, &c, &st, &err); /* warm up: grows the grid */
        int rc = 0;
        double sp = 0, sv = 0, c0 = cpu_s(), best = 1e9;
        if (vs_keep) /* two pipelines alternated set by set: the host's drift hits both alike */
            rc = alternate_keep(dev, &o, in, &c, fuse_only) != 0;
        for (int r = 0; !vs_keep && r < fuse_only; r++) {
            double c1 = cpu_s();
            if (ks_fuse_run(f, in, &c, &st, &err) != KS_OK) {
                fprintf(stderr, "bench_fuse: %s\n", err.message);
                return 1;
            }
            double cc = cpu_s() - c1;
            best = cc < best ? cc : best;
            sp += st.ms_points;
            sv += st.ms_voxel;
        }
        if (!vs_keep)
            printf("fuse-only, %d thread(s), %s, %d sets: %.1f ms CPU per set (best %.1f; wall phases: points %.1f, "
                   "voxels %.1f ms); %zu points -> %zu voxels\n", fuse_threads,
                   !fuse_color ? "no colour" : !fuse_scale ? "colour from BGRA" : real ? "colour from the real device's MJPEG"
                                                                              : "colour from MJPEG", fuse_only,
                   (cpu_s() - c0) / fuse_only * 1e3, best * 1e3, sp / fuse_only, sv / fuse_only, st.points_total,
                   st.voxels);
        if (!vs_keep)
            printf("the cloud's digest (order-free): %016llx\n", (unsigned long long)cloud_digest(&c));
        if (write_too && !vs_keep) { /* writing the set: float PLY and 16-bit PLY, best of 3, to /tmp (page cache) */
            char path[64];
            snprintf(path, sizeof path, "/tmp/bench_fuse_%ld.ply", (long)getpid());
            for (int q = 0; q < 2; q++) {
                double bw = 1e9, bc = 1e9;
                for (int r = 0; r < 3; r++) {
                    double w0 = now_s(), c1 = cpu_s();
                    ks_status ws = q ? ks_ply_write_quantized(path, &c, 0, 5.0, &err) : ks_ply_write(path, &c, 0, &err);
                    if (ws != KS_OK) {
                        fprintf(stderr, "bench_fuse: %s\n", err.message);
                        return 1;
                    }
                    bw = now_s() - w0 < bw ? now_s() - w0 : bw;
                    bc = cpu_s() - c1 < bc ? cpu_s() - c1 : bc;
                }
                struct stat sb;
                printf("write one set, %s: %.1f ms wall, %.1f ms CPU (best of 3), %.1f MB\n",
                       q ? "16-bit PLY (ks_ply_write_quantized)" : "float PLY (ks_ply_write)", bw * 1e3, bc * 1e3,
                       stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : -1.0);
                unlink(path);
            }
        }
        ks_cloud_free(&c);
        ks_fuse_destroy(f);
        tjFree(jpeg);
        free(real);
        free(bgra);
        free_devices(tab, depth, NDEV);
        return rc;
    }

    /* 0. start-up: unprojection tables. The reference is the per-pixel Newton solve from the
     * closed-form guess (ks_unproject_ray for every pixel), which is what the table build did
     * before and costs about what the SDK's k4a_transformation_create does (0.88-1.06x, issue 19). */
    {
        const ks_depth_mode modes[] = {KS_DEPTH_NFOV_UNBINNED, KS_DEPTH_WFOV_UNBINNED};
        for (size_t m = 0; m < 2; m++) {
            ks_calibration cal;
            char *js = ks_calibration_json_synthesize(100, "bench");
            if (!js || ks_calibration_from_json(js, strlen(js), modes[m], KS_COLOR_720P, &cal, &err) != KS_OK)
                return 1;
            free(js);
            double c0 = cpu_s();
            size_t ok = 0;
            for (int v = 0; v < cal.depth.height; v++)
                for (int u = 0; u < cal.depth.width; u++) {
                    double uv[2] = {u, v}, xy[2];
                    ok += ks_unproject_ray(&cal.depth, uv, xy);
                }
            double ref = cpu_s() - c0, tb = 1e9;
            for (int r = 0; r < (quick ? 1 : 5); r++) {
                ks_unproject_table t;
                c0 = cpu_s();
                if (ks_unproject_table_build(&cal.depth, &t, &err) != KS_OK)
                    return 1;
                double c = cpu_s() - c0;
                tb = c < tb ? c : tb;
                sink_sz += t.valid_count - ok;
                ks_unproject_table_free(&t);
            }
            printf("unprojection table %s %dx%d: %.1f ms CPU (per-pixel solve %.1f ms: %.1fx faster)\n",
                   ks_depth_mode_name(modes[m]), cal.depth.width, cal.depth.height, tb * 1e3, ref * 1e3, ref / tb);
        }
        for (int T = 1; T <= 2; T++) {
            ks_fuse_options o = {.voxel_mm = 5, .threads = T};
            ks_fuse *f;
            double s = now_s(), c0 = cpu_s();
            if (ks_fuse_create(dev, NDEV, &o, &f, &err) != KS_OK) {
                fprintf(stderr, "bench_fuse: %s\n", err.message);
                return 1;
            }
            printf("start-up, ks_fuse_create for %d devices NFOV, %d thread%s: %.0f ms (%.0f ms CPU)\n", NDEV, T,
                   T > 1 ? "s" : "", (now_s() - s) * 1e3, (cpu_s() - c0) * 1e3);
            ks_fuse_destroy(f);
        }
        /* the same with the tables read from a cache directory (as kinsync fuse does), filled first */
        char dir[] = "/tmp/bench_fuse_cache_XXXXXX";
        if (mkdtemp(dir)) {
            for (int T = 1; T <= 2; T++) {
                ks_fuse_options o = {.voxel_mm = 5, .threads = T, .table_cache_dir = dir};
                ks_fuse *f;
                double s = 0, c0 = 0;
                for (int r = 0; r < 2; r++) { /* run 0 fills the cache, run 1 is timed */
                    s = now_s(), c0 = cpu_s();
                    if (ks_fuse_create(dev, NDEV, &o, &f, &err) != KS_OK) {
                        fprintf(stderr, "bench_fuse: %s\n", err.message);
                        return 1;
                    }
                    if (r == 0)
                        ks_fuse_destroy(f);
                }
                printf("start-up, ks_fuse_create for %d devices NFOV, %d thread%s, tables from the cache: %.0f ms (%.0f "
                       "ms CPU)\n", NDEV, T, T > 1 ? "s" : "", (now_s() - s) * 1e3, (cpu_s() - c0) * 1e3);
                ks_fuse_destroy(f);
            }
            char cmd[128];
            snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_fuse: could not remove %s\n", dir);
        }
    }

    if (startup_only) {
        free_devices(tab, depth, NDEV);
        return 0;
    }

    /* 1. depth to points, one thread, into one buffer for all devices */
    float *x = aligned_alloc(64, npix * NDEV * 4), *y = aligned_alloc(64, npix * NDEV * 4),
          *z = aligned_alloc(64, npix * NDEV * 4);
    int reps = quick ? 5 : 40;
    size_t sink = 0;
    for (int d = 0; d < NDEV; d++) /* warm up */
        sink += ks_depth_to_points(&tab[d], depth[d], 0, &dev[d].depth_to_rig, x + npix * d, y + npix * d,
                                   z + npix * d);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double s = now_s();
        for (int d = 0; d < NDEV; d++)
            sink += ks_depth_to_points(&tab[d], depth[d], 0, &dev[d].depth_to_rig, x + npix * d, y + npix * d,
                                       z + npix * d);
        double e = now_s() - s;
        best = e < best ? e : best;
    }
    printf("depth to points (1 thread, xyz float, rig frame): %.2f G pixels/s  (%.2f ms per 9-device set, best of "
           "%d; target >= 1 G pixels/s)\n",
           (double)(npix * NDEV) / best * 1e-9, best * 1e3, reps);

    /* 2. the full fuse, 5 mm voxels */
    double fps2 = 0, fps1 = 0;
    size_t voxels = 0;
    for (int threads = 2; threads >= 1; threads--) {
        ks_fuse_options o = {.voxel_mm = 5, .threads = threads};
        ks_fuse *f;
        if (ks_fuse_create(dev, NDEV, &o, &f, &err) != KS_OK) {
            fprintf(stderr, "bench_fuse: %s\n", err.message);
            return 1;
        }
        ks_fuse_input in[NDEV];
        memset(in, 0, sizeof in);
        for (int d = 0; d < NDEV; d++)
            in[d].depth = depth[d];
        ks_cloud c = {0};
        ks_fuse_stats st;
        ks_fuse_run(f, in, &c, &st, &err); /* warm up: grows the grid */
        ks_fuse_run(f, in, &c, &st, &err);
        enum { MAXREP = 30 };
        int n = quick ? 5 : MAXREP;
        double sp = 0, sv = 0, s = now_s(), c0 = cpu_s();
        double best_ms = 1e9, ms[MAXREP];
        for (int r = 0; r < n; r++) {
            if (ks_fuse_run(f, in, &c, &st, &err) != KS_OK) {
                fprintf(stderr, "bench_fuse: %s\n", err.message);
                return 1;
            }
            sp += st.ms_points;
            sv += st.ms_voxel;
            ms[r] = st.ms_total;
            best_ms = st.ms_total < best_ms ? st.ms_total : best_ms;
        }
        double e = (now_s() - s) / n, cpu = (cpu_s() - c0) / n;
        qsort(ms, (size_t)n, sizeof *ms, cmp_double);
        double median_ms = ms[n / 2];
        if (threads == 2)
            fps2 = 1 / e;
        else
            fps1 = 1 / e;
        voxels = st.voxels;
        printf("full fuse, 5 mm voxels, %d thread%s: %.1f frame sets/s (mean %.1f ms wall: points %.1f, voxels %.1f; "
               "%.1f ms CPU; median %.1f ms = %.1f/s; best %.1f ms = %.1f/s); %zu points -> %zu voxels, %zu seen by 2+ "
               "devices%s\n",
               threads, threads > 1 ? "s" : "", 1 / e, e * 1e3, sp / n, sv / n, cpu * 1e3, median_ms, 1e3 / median_ms,
               best_ms, 1e3 / best_ms,
               st.points_total, st.voxels,
               st.voxels_shared, threads == 2 ? " (target >= 30)" : "");
        ks_cloud_free(&c);
        ks_fuse_destroy(f);
    }

    /* 2b. with color */
    color_bench(dev, tab, depth, quick, 0);

    /* 3. Open3D, when installed */
    if (open3d) {
        const char *py = NULL;
        if (system("python3 -c 'import open3d' >/dev/null 2>&1") == 0)
            py = "python3";
        else if (system("/usr/bin/python3 -c 'import open3d' >/dev/null 2>&1") == 0)
            py = "/usr/bin/python3";
        if (!py) {
            printf("open3d: not installed (apt-get install python3-open3d), no comparison\n");
        } else {
            char dir[] = "/tmp/bench_fuse_XXXXXX";
            if (mkdtemp(dir) && write_open3d_input(dir, dev, tab, depth) == 0) {
                char cmd[2048], line[512];
                snprintf(cmd, sizeof cmd, "%s %s/bench/bench_fuse_open3d.py %s %d", py, KS_SOURCE_DIR, dir,
                         quick ? 2 : 5);
                FILE *p = popen(cmd, "r");
                double ms = 0;
                size_t o3d_voxels = 0;
                while (p && fgets(line, sizeof line, p)) {
                    if (sscanf(line, "open3d-voxels-on-kinsync-grid: %zu", &o3d_voxels) == 1)
                        continue;
                    fputs(line, stdout);
                    sscanf(line, "open3d: %lf ms", &ms);
                }
                if (p)
                    pclose(p);
                printf("voxels on the same grid: kinsync %zu, Open3D %zu\n", voxels, o3d_voxels);
                if (ms > 0 && fps2 > 0)
                    printf("ratio: kinsync is %.1fx (2 threads), %.1fx (1 thread) faster than Open3D on the same "
                           "points\n", ms * 1e-3 * fps2, ms * 1e-3 * fps1);
                snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
                if (system(cmd) != 0)
                    fprintf(stderr, "bench_fuse: could not remove %s\n", dir);
            }
        }
    }
    free_devices(tab, depth, NDEV);
    free(x), free(y), free(z);
    return sink == 0;
}
