/* Sensor realism (issue 15): simulated images of every depth mode against the device's own figures
 * and against the real recording ../shared/fixtures/k4a/real-recording-nfov-720p.mkv (a real device,
 * NFOV unbinned + 720p MJPEG, a desk-sized scene): the valid-pixel mask of the mode, nothing beyond
 * the mode's operating range, noise between neighbours and between frames, dropouts, IR levels and
 * saturation, and the MJPEG size. The simulated device stands in a comparable scene (a desk-sized
 * view: floor and objects 0.3-2.5 m away). docs/simulator.md gives the figures side by side. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "kinsync/mkv.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

typedef struct depth_stats {
    int w, h;
    double invalid_pct;        /* of every pixel */
    double centre_invalid_pct; /* of the middle half (inside any mask) */
    double corner_valid_pct;   /* valid pixels in the mode's masked-off region */
    int min_mm, max_mm;        /* of valid pixels */
    int nb_median, nb_p90;     /* |dz| of horizontal neighbours (both valid, < 200 mm apart) */
    double ir_median, ir_p95, ir_sat_pct; /* of IR pixels > 0 */
    double hist[6];            /* share of valid pixels per 500 mm bin (last: >= 2500) */
} depth_stats;

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* The region a mode's mask removes, tested loosely (well outside the simulator's own mask):
 * NFOV the four corner triangles, WFOV the four corners outside the circle. */
static bool masked_region(ks_depth_mode dm, int u, int v, int w, int h)
{
    double x = (u + 0.5 - w / 2.0) / (w / 2.0), y = (v + 0.5 - h / 2.0) / (h / 2.0);
    if (dm == KS_DEPTH_NFOV_UNBINNED || dm == KS_DEPTH_NFOV_2X2BINNED)
        return fabs(x) + 0.51 * fabs(y) > 1.10;
    return x * x + y * y > 1.05;
}

static void stats_of(ks_depth_mode dm, const ks_image *depth, const ks_image *ir, depth_stats *s)
{
    memset(s, 0, sizeof *s);
    int w = ir->width, h = ir->height;
    size_t n = (size_t)w * h;
    s->w = w;
    s->h = h;
    s->min_mm = 65535;
    if (depth) {
        const uint16_t *d = (const uint16_t *)depth->data;
        size_t inval = 0, cn = 0, ci = 0, corner = 0, corner_valid = 0;
        uint16_t *nb = malloc(n * sizeof *nb);
        size_t m = 0;
        for (int v = 0; v < h; v++)
            for (int u = 0; u < w; u++) {
                uint16_t z = d[(size_t)v * w + u];
                if (!z)
                    inval++;
                else {
                    s->hist[z / 500 < 5 ? z / 500 : 5]++;
                    if (z < s->min_mm)
                        s->min_mm = z;
                    if (z > s->max_mm)
                        s->max_mm = z;
                }
                if (u >= w / 4 && u < 3 * w / 4 && v >= h / 4 && v < 3 * h / 4) {
                    cn++;
                    ci += !z;
                }
                if (masked_region(dm, u, v, w, h)) {
                    corner++;
                    corner_valid += z != 0;
                }
                if (u + 1 < w && z && d[(size_t)v * w + u + 1]) {
                    int df = abs((int)z - (int)d[(size_t)v * w + u + 1]);
                    if (df < 200)
                        nb[m++] = (uint16_t)df;
                }
            }
        s->invalid_pct = 100.0 * inval / n;
        for (int b = 0; b < 6; b++)
            s->hist[b] = n > inval ? 100.0 * s->hist[b] / (double)(n - inval) : 0;
        s->centre_invalid_pct = cn ? 100.0 * ci / cn : 0;
        s->corner_valid_pct = corner ? 100.0 * corner_valid / corner : 0;
        if (m) {
            qsort(nb, m, sizeof *nb, cmp_u16);
            s->nb_median = nb[m / 2];
            s->nb_p90 = nb[m * 9 / 10];
        }
        free(nb);
    }
    const uint16_t *p = (const uint16_t *)ir->data;
    uint16_t *v = malloc(n * sizeof *v);
    size_t k = 0, sat = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i]) {
            v[k++] = p[i];
            sat += p[i] == 65535;
        }
    if (k) {
        qsort(v, k, sizeof *v, cmp_u16);
        s->ir_median = v[k / 2];
        s->ir_p95 = v[k * 95 / 100];
        s->ir_sat_pct = 100.0 * sat / k;
    }
    free(v);
}

static void print_stats(const char *what, const depth_stats *s, size_t jpeg)
{
    printf("%-26s %4dx%-4d invalid %5.1f%% (centre %4.1f%%, masked region valid %4.1f%%) range %d-%d mm, "
           "neighbour |dz| median %d p90 %d; IR median %.0f p95 %.0f saturated %.1f%%; JPEG %zu bytes\n",
           what, s->w, s->h, s->invalid_pct, s->centre_invalid_pct, s->corner_valid_pct, s->min_mm, s->max_mm,
           s->nb_median, s->nb_p90, s->ir_median, s->ir_p95, s->ir_sat_pct, jpeg);
    printf("    valid depth per 500 mm: %.0f %.0f %.0f %.0f %.0f %.0f %%\n", s->hist[0], s->hist[1], s->hist[2], s->hist[3],
           s->hist[4], s->hist[5]);
}

/* The real fixture's figures; false (SKIP) when the fixture is missing. */
static bool real_stats(depth_stats *s, size_t *jpeg)
{
    const char *path = KS_FIXTURES "/k4a/real-recording-nfov-720p.mkv";
    ks_mkv_reader *r = NULL;
    ks_error err;
    if (ks_mkv_reader_open(path, &r, &err) != KS_OK)
        return false;
    ks_capture *c = NULL;
    bool ok = ks_mkv_reader_next_capture(r, &c, &err) == KS_OK && c && c->depth && c->ir && c->color;
    if (ok) {
        stats_of(KS_DEPTH_NFOV_UNBINNED, c->depth, c->ir, s);
        *jpeg = c->color->size;
    }
    ks_capture_release(c);
    ks_mkv_reader_close(r);
    return ok;
}

typedef struct sim_shot {
    depth_stats st;
    size_t jpeg;
    int jpeg_subsamp;
    double frame_diff_pct;  /* valid depth pixels that changed between two consecutive frames */
    bool beyond_range;      /* some valid pixel beyond the mode's range */
    bool color_differs;     /* consecutive MJPEG frames differ (sensor noise) */
} sim_shot;

/* One standalone device in the room, posed like the real recording (looking down at a desk-sized
 * scene), two consecutive captures in mode dm. */
static void sim_shots(ks_depth_mode dm, bool sensor, sim_shot *out)
{
    memset(out, 0, sizeof *out);
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 1.0);
    rig.camera.depth_mode = dm;
    if (dm == KS_DEPTH_WFOV_UNBINNED)
        rig.camera.fps = KS_FPS_15;
    ks_sim_config cfg;
    simt_config(&cfg, 151, true);
    cfg.sensor = sensor;
    cfg.board = false;
    cfg.poses[0].set = true;
    const double pos[3] = {-200, -2500, 1300}, look[3] = {-300, -1600, 0};
    memcpy(cfg.poses[0].position, pos, sizeof pos);
    memcpy(cfg.poses[0].look_at, look, sizeof look);
    /* a desk-like near object and a bright retro-reflective marker */
    cfg.objects[0] = (ks_sim_object){KS_SIM_BOX, {-500, -2450, 0}, {0, -2250, 800}, 0.5, {120, 100, 80}};
    cfg.objects[1] = (ks_sim_object){KS_SIM_SPHERE, {-300, -1900, 100}, {100, 0, 0}, 100.0, {250, 250, 250}};
    cfg.object_count = 2;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++)
        KS_CHECK(ks_device_get_capture(r.dev[0], &c[k], 1000, NULL) == KS_OK);
    if (c[0] && c[1] && c[0]->ir) {
        stats_of(dm, c[1]->depth, c[1]->ir, &out->st);
        if (c[1]->color && c[0]->color) {
            out->color_differs = c[0]->color->size != c[1]->color->size ||
                                 memcmp(c[0]->color->data, c[1]->color->data, c[0]->color->size) != 0;
            out->jpeg = c[1]->color->size;
            tjhandle tj = tjInitDecompress();
            int w, h, cs;
            tjDecompressHeader3(tj, c[1]->color->data, c[1]->color->size, &w, &h, &out->jpeg_subsamp, &cs);
            tjDestroy(tj);
        }
        int zmin = 0, zmax = 0;
        if (c[0]->depth && c[1]->depth && ks_depth_mode_range_mm(dm, &zmin, &zmax)) {
            const uint16_t *a = (const uint16_t *)c[0]->depth->data, *b = (const uint16_t *)c[1]->depth->data;
            size_t n = (size_t)c[0]->depth->width * c[0]->depth->height, both = 0, diff = 0;
            for (size_t i = 0; i < n; i++) {
                if (a[i] > zmax || b[i] > zmax)
                    out->beyond_range = true;
                if (a[i] && b[i]) {
                    both++;
                    diff += a[i] != b[i];
                }
            }
            out->frame_diff_pct = both ? 100.0 * diff / both : 0;
        }
    }
    ks_capture_release(c[0]);
    ks_capture_release(c[1]);
    simt_close(&r);
}

static void test_modes_against_the_device(void)
{
    depth_stats real;
    size_t real_jpeg = 0;
    bool have_real = real_stats(&real, &real_jpeg);
    if (have_real)
        print_stats("real NFOV_UNBINNED", &real, real_jpeg);
    else
        printf("SKIP part: the real fixture is missing; only the device figures are checked\n");
    for (int m = KS_DEPTH_NFOV_2X2BINNED; m < KS_DEPTH_MODE_COUNT; m++) {
        ks_depth_mode dm = (ks_depth_mode)m;
        sim_shot sh;
        sim_shots(dm, true, &sh);
        char name[64];
        snprintf(name, sizeof name, "sim %s", ks_depth_mode_name(dm));
        print_stats(name, &sh.st, sh.jpeg);
        printf("    consecutive frames: %.1f%% of valid depth pixels differ\n", sh.frame_diff_pct);
        const depth_stats *s = &sh.st;
        if (dm == KS_DEPTH_PASSIVE_IR) {
            /* no laser: ambient IR only, dim, never saturated; no depth image */
            KS_CHECK_MSG(s->ir_median > 10 && s->ir_median < 400, "passive IR median %.0f", s->ir_median);
            KS_CHECK(s->ir_sat_pct == 0);
            continue;
        }
        /* the mode's mask: nothing valid in the masked-off region (real: 5 % at the loose border used here) */
        KS_CHECK_MSG(s->corner_valid_pct == 0, "%s: %.1f%% valid in the masked region", name, s->corner_valid_pct);
        /* the operating range: nothing beyond it, and the scene does reach it */
        KS_CHECK_MSG(!sh.beyond_range, "%s: depth beyond the mode's range", name);
        int zmin, zmax;
        KS_CHECK(ks_depth_mode_range_mm(dm, &zmin, &zmax));
        KS_CHECK_MSG(s->max_mm <= zmax, "%s: max %d, range %d", name, s->max_mm, zmax);
        /* noise like the real device (median 1, p90 6 mm between neighbours), different every frame */
        KS_CHECK_MSG(s->nb_median >= 1 && s->nb_median <= 3, "%s: neighbour median %d", name, s->nb_median);
        KS_CHECK_MSG(s->nb_p90 >= 3 && s->nb_p90 <= 12, "%s: neighbour p90 %d", name, s->nb_p90);
        KS_CHECK_MSG(sh.frame_diff_pct > 20, "%s: only %.1f%% of pixels change between frames", name,
                     sh.frame_diff_pct);
        /* dropouts inside the image (real 9.4 % in the centre) */
        KS_CHECK_MSG(s->centre_invalid_pct > 2 && s->centre_invalid_pct < 25, "%s: centre invalid %.1f%%", name,
                     s->centre_invalid_pct);
        /* IR levels (real: median 357, p95 11770, 3.2 % saturated) */
        KS_CHECK_MSG(s->ir_median > 150 && s->ir_median < 1000, "%s: IR median %.0f", name, s->ir_median);
        KS_CHECK_MSG(s->ir_p95 > 2000 && s->ir_p95 < 40000, "%s: IR p95 %.0f", name, s->ir_p95);
        KS_CHECK_MSG(s->ir_sat_pct > 0.1 && s->ir_sat_pct < 10, "%s: IR saturated %.2f%%", name, s->ir_sat_pct);
        /* colour: the device's MJPEG (4:2:2, quality ~95) with sensor noise: the size of the real 720p
         * frame (217 kB) within 25 % */
        KS_CHECK_INT(sh.jpeg_subsamp, TJSAMP_422);
        double want_jpeg = have_real ? (double)real_jpeg : 217095.0;
        KS_CHECK_MSG(fabs((double)sh.jpeg - want_jpeg) < 0.25 * want_jpeg, "MJPEG %zu bytes vs real %.0f", sh.jpeg,
                     want_jpeg);
        KS_CHECK(sh.color_differs);
        if (have_real && dm == KS_DEPTH_NFOV_UNBINNED) {
            /* side by side with the real recording of the same mode */
            KS_CHECK_MSG(real.corner_valid_pct < 10, "real masked region %.1f%%", real.corner_valid_pct);
            KS_CHECK_MSG(fabs(s->invalid_pct - real.invalid_pct) < 12, "invalid %.1f%% vs real %.1f%%",
                         s->invalid_pct, real.invalid_pct);
            KS_CHECK_MSG(abs(s->nb_p90 - real.nb_p90) <= 3, "neighbour p90 %d vs real %d", s->nb_p90, real.nb_p90);
            KS_CHECK_MSG(s->ir_median > real.ir_median / 2 && s->ir_median < real.ir_median * 2,
                         "IR median %.0f vs real %.0f", s->ir_median, real.ir_median);
        }
    }
}

/* Without the sensor model (render.sensor: false) the images are the exact geometry: this is what
 * the checks above tell apart. */
static void test_exact_geometry_without_sensor_model(void)
{
    sim_shot sh;
    sim_shots(KS_DEPTH_NFOV_UNBINNED, false, &sh);
    print_stats("sim NFOV_UNBINNED exact", &sh.st, sh.jpeg);
    KS_CHECK(sh.st.corner_valid_pct > 50);
    KS_CHECK(sh.st.max_mm > 3860 + 300); /* the scene reaches beyond NFOV unbinned's range: the cut is tested */
    KS_CHECK(sh.frame_diff_pct == 0);
    KS_CHECK(!sh.color_differs);
    KS_CHECK(sh.jpeg < 150000); /* without sensor noise a synthetic scene compresses far better than a real one */
}

/* Mean green of a BGRA frame at the given fps with the same manual exposure. */
static double mean_green(ks_fps fps)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    rig.camera.color_format = KS_FORMAT_BGRA32;
    rig.camera.depth_mode = KS_DEPTH_OFF;
    rig.camera.fps = fps;
    ks_sim_config cfg;
    simt_config(&cfg, 152, true);
    cfg.render_depth = false;
    cfg.brightness_variation = 0;
    simt_run r;
    double sum = 0;
    KS_CHECK(simt_open(&r, &rig, &cfg)); /* manual 8330 us */
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c = NULL;
    if (ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK && c->color) {
        for (size_t i = 0; i < c->color->size; i += 4)
            sum += c->color->data[i + 1];
        sum /= (double)(c->color->size / 4);
    }
    ks_capture_release(c);
    simt_close(&r);
    return sum;
}

/* The same exposure gives the same picture at every frame rate (the light does not change with fps). */
static void test_color_exposure_independent_of_fps(void)
{
    double g30 = mean_green(KS_FPS_30), g15 = mean_green(KS_FPS_15), g5 = mean_green(KS_FPS_5);
    printf("mean green at 8330 us: 30 fps %.2f, 15 fps %.2f, 5 fps %.2f\n", g30, g15, g5);
    KS_CHECK(g30 > 20);
    KS_CHECK_NEAR(g15, g30, 0.5);
    KS_CHECK_NEAR(g5, g30, 0.5);
}

int main(void)
{
    KS_RUN(test_modes_against_the_device);
    KS_RUN(test_exact_geometry_without_sensor_model);
    KS_RUN(test_color_exposure_independent_of_fps);
    return KS_TEST_END();
}
