/* Depth to points: unprojection tables against an independent inverse of ks_project, the golden
 * values of the SDK test calibration, normals, and color from BGRA and MJPEG. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "fuse/fuse_scene.h"
#include "kinsync/fuse.h"
#include "ks_test.h"
#include "support/calib_fixtures.h"

/* Plane and sphere seen by one camera with a pose: unprojected points lie on the true surfaces. */
static void test_points_on_surface(void)
{
    ks_calibration cal;
    KS_CHECK(scene_calibration(7, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_OFF, &cal));
    const ks_intrinsics *in = &cal.depth;
    ks_unproject_table t;
    ks_error err;
    KS_CHECK_INT(ks_unproject_table_build(in, &t, &err), KS_OK);
    size_t npix = (size_t)in->width * (size_t)in->height;
    KS_CHECK_INT(t.width, 640);
    KS_CHECK_INT(t.height, 576);
    KS_CHECK(t.valid_count > npix * 99 / 100);

    scene s = {{0.1, -0.05, 0.99}, 0, 1, {150, -80, 1400}, 250};
    double l = sqrt(s.n[0] * s.n[0] + s.n[1] * s.n[1] + s.n[2] * s.n[2]);
    for (int i = 0; i < 3; i++)
        s.n[i] /= l;
    ks_extrinsics pose;
    double pos[3] = {-300, 200, -100}, target[3] = {0, 0, 1800};
    scene_look_at(pos, target, &pose);
    s.d = 2000;
    uint16_t *depth = malloc(npix * sizeof *depth);
    float *x = malloc(npix * 4), *y = malloc(npix * 4), *z = malloc(npix * 4);
    size_t rendered = scene_render(&s, in, &pose, depth);
    KS_CHECK(rendered > npix * 95 / 100);
    size_t valid = ks_depth_to_points(&t, depth, 0, &pose, x, y, z);
    KS_CHECK(valid >= rendered * 99 / 100 && valid <= rendered);
    double *errs = malloc(npix * sizeof *errs);
    size_t m = 0, on_sphere = 0;
    for (size_t i = 0; i < npix; i++) {
        if (!(x[i] == x[i])) {
            KS_CHECK(depth[i] == 0 || !(t.x[i] == t.x[i]));
            continue;
        }
        double p[3] = {x[i], y[i], z[i]};
        errs[m++] = scene_distance(&s, p);
        double q[3] = {p[0] - s.c[0], p[1] - s.c[1], p[2] - s.c[2]};
        on_sphere += fabs(sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]) - s.r) < 2;
    }
    qsort(errs, m, sizeof *errs, cmp_double);
    double med = errs[m / 2], p99 = errs[m * 99 / 100];
    printf("  %zu points, surface error median %.3f mm, p99 %.3f mm, %zu on the sphere\n", m, med, p99, on_sphere);
    KS_CHECK(med < 1.0);
    KS_CHECK(p99 < 2.0);
    KS_CHECK(on_sphere > 10000);

    /* stride: the same image inside a wider buffer gives the same points */
    uint16_t *wide = calloc(npix + 64 * (size_t)in->height, sizeof *wide);
    for (int v = 0; v < in->height; v++)
        memcpy(wide + (size_t)v * (size_t)(in->width + 64), depth + (size_t)v * (size_t)in->width,
               (size_t)in->width * 2);
    float *x2 = malloc(npix * 4), *y2 = malloc(npix * 4), *z2 = malloc(npix * 4);
    KS_CHECK_INT(ks_depth_to_points(&t, wide, (size_t)in->width + 64, &pose, x2, y2, z2), valid);
    KS_CHECK(memcmp(x, x2, npix * 4) == 0 && memcmp(z, z2, npix * 4) == 0);

    /* normals of the plane face the camera and are parallel to n */
    float *nx = malloc(npix * 4), *ny = malloc(npix * 4), *nz = malloc(npix * 4);
    size_t nn = ks_points_normals(x, y, z, in->width, in->height, pose.t, 20, nx, ny, nz);
    KS_CHECK(nn > valid * 9 / 10);
    size_t plane_pts = 0, good = 0;
    for (size_t i = 0; i < npix; i++) {
        if (!(nx[i] == nx[i]) || !(x[i] == x[i]))
            continue;
        double p[3] = {x[i], y[i], z[i]};
        if (fabs(s.n[0] * p[0] + s.n[1] * p[1] + s.n[2] * p[2] - s.d) > 2)
            continue;
        plane_pts++;
        double dot = nx[i] * s.n[0] + ny[i] * s.n[1] + nz[i] * s.n[2]; /* camera is on the -n side */
        good += dot < -0.98;
    }
    KS_CHECK(plane_pts > 100000);
    KS_CHECK_MSG(good > plane_pts * 95 / 100, "%zu of %zu plane normals within 11 degrees", good, plane_pts);
    free(nx), free(ny), free(nz), free(wide), free(x2), free(y2), free(z2);
    free(errs), free(depth), free(x), free(y), free(z);
    ks_unproject_table_free(&t);
}

/* The facts page's golden value: SDK test calibration, WFOV_2X2BINNED, pixel (256,256) at 1000 mm. */
static void test_golden_unprojection(void)
{
    size_t len;
    char *js = ks_calib_test_read_fixture("k4a/sdk-unittest-calibration.json", &len);
    KS_CHECK(js != NULL);
    if (!js)
        return;
    ks_calibration cal;
    ks_error err;
    KS_CHECK_INT(ks_calibration_from_json(js, len, KS_DEPTH_WFOV_2X2BINNED, KS_COLOR_2160P, &cal, &err), KS_OK);
    free(js);
    ks_unproject_table t;
    KS_CHECK_INT(ks_unproject_table_build(&cal.depth, &t, &err), KS_OK);
    size_t npix = (size_t)t.width * (size_t)t.height;
    uint16_t *depth = malloc(npix * 2);
    for (size_t i = 0; i < npix; i++)
        depth[i] = 1000;
    float *x = malloc(npix * 4), *y = malloc(npix * 4), *z = malloc(npix * 4);
    ks_depth_to_points(&t, depth, 0, NULL, x, y, z);
    size_t i = 256 * (size_t)t.width + 256;
    KS_CHECK_NEAR(x[i], -2.45376134, 1e-3);
    KS_CHECK_NEAR(y[i], -1.66107690, 1e-3);
    KS_CHECK_NEAR(z[i], 1000, 1e-6);
    /* WFOV corners are outside the lens model: NaN, not garbage */
    KS_CHECK(!(x[0] == x[0]));
    KS_CHECK(t.valid_count < npix);
    /* color of that point lands on the facts page's color pixel */
    double p[3] = {x[i], y[i], z[i]}, q[3], uv[2];
    ks_extrinsics_apply(&cal.depth_to_color, p, q);
    KS_CHECK(ks_project(&cal.color, q, uv));
    KS_CHECK_NEAR(uv[0], 1835.689453, 1e-2);
    KS_CHECK_NEAR(uv[1], 1206.290039, 1e-2);
    free(depth), free(x), free(y), free(z);
    ks_unproject_table_free(&t);
}

/* The table is built from neighbouring rays (one distortion evaluation per pixel) but must equal
 * ks_unproject_ray pixel for pixel: the same valid mask (the WFOV edge of the metric radius
 * included) and the same rays to a float ulp, on every real calibration and depth mode. */
static void test_table_equals_rays(void)
{
    const char *files[] = {"k4a/real-device-calibration.json", "k4a/sdk-unittest-calibration.json",
                           "k4a/sdk-test-calibration-rational6kt.json"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *js = ks_calib_test_read_fixture(files[f], &len);
        KS_CHECK_MSG(js != NULL, "%s", files[f]);
        if (!js)
            continue;
        for (int m = KS_DEPTH_NFOV_2X2BINNED; m <= KS_DEPTH_WFOV_UNBINNED; m++) {
            ks_calibration cal;
            ks_error err;
            KS_CHECK_INT(ks_calibration_from_json(js, len, (ks_depth_mode)m, KS_COLOR_720P, &cal, &err), KS_OK);
            ks_unproject_table t;
            KS_CHECK_INT(ks_unproject_table_build(&cal.depth, &t, &err), KS_OK);
            size_t mask_diff = 0, valid = 0;
            double worst = 0;
            for (int v = 0; v < t.height; v++)
                for (int u = 0; u < t.width; u++) {
                    size_t i = (size_t)v * (size_t)t.width + (size_t)u;
                    double uv[2] = {u, v}, xy[2];
                    bool ok = ks_unproject_ray(&cal.depth, uv, xy);
                    if (ok != !isnan(t.x[i]) || ok != !isnan(t.y[i])) {
                        mask_diff++;
                        continue;
                    }
                    if (!ok)
                        continue;
                    valid++;
                    double d = fmax(fabs(t.x[i] - xy[0]), fabs(t.y[i] - xy[1]));
                    worst = d > worst ? d : worst;
                }
            KS_CHECK_MSG(mask_diff == 0, "%s mode %d: %zu pixels valid in one, not the other", files[f], m, mask_diff);
            KS_CHECK_INT(t.valid_count, valid);
            KS_CHECK_MSG(worst <= 2.5e-7, "%s mode %d: ray off by %g", files[f], m, worst);
            ks_unproject_table_free(&t);
        }
        free(js);
    }
}

/* Color: a BGRA image whose left half is red and right half blue; a wall seen by the depth camera is
 * colored accordingly; the same image through MJPEG (full and 1/4 scale) gives the same answer. */
static void test_colorize(void)
{
    ks_calibration cal;
    KS_CHECK(scene_calibration(11, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, &cal));
    int cw = cal.color.width, ch = cal.color.height;
    KS_CHECK_INT(cw, 1280);
    uint8_t *bgra = malloc((size_t)cw * (size_t)ch * 4);
    for (int v = 0; v < ch; v++)
        for (int u = 0; u < cw; u++) {
            uint8_t *p = bgra + ((size_t)v * (size_t)cw + (size_t)u) * 4;
            int left = u < cw / 2;
            p[0] = left ? 0 : 255; /* B */
            p[1] = 0;
            p[2] = left ? 255 : 0; /* R */
            p[3] = 255;
        }
    ks_unproject_table t;
    ks_error err;
    KS_CHECK_INT(ks_unproject_table_build(&cal.depth, &t, &err), KS_OK);
    size_t npix = (size_t)t.width * (size_t)t.height;
    uint16_t *depth = malloc(npix * 2);
    for (size_t i = 0; i < npix; i++)
        depth[i] = 1500;
    float *x = malloc(npix * 4), *y = malloc(npix * 4), *z = malloc(npix * 4);
    ks_depth_to_points(&t, depth, 0, NULL, x, y, z);
    uint8_t *rgb = malloc(npix * 3);
    const uint8_t grey[3] = {1, 2, 3};
    ks_color_image img = {cw, ch, (size_t)cw * 4, bgra, 1};
    size_t colored = ks_points_colorize(x, y, z, npix, &cal.depth_to_color, &cal.color, &img, grey, rgb);
    KS_CHECK(colored > npix / 2);
    /* classify each point by where it projects */
    size_t right = 0, wrong = 0;
    for (size_t i = 0; i < npix; i++) {
        double p[3] = {x[i], y[i], z[i]}, q[3], uv[2];
        ks_extrinsics_apply(&cal.depth_to_color, p, q);
        if (!ks_project(&cal.color, q, uv) || uv[0] < 2 || uv[0] > cw - 3 || uv[1] < 0 || uv[1] > ch - 1 ||
            fabs(uv[0] - cw / 2.0) < 2)
            continue;
        int left = uv[0] < cw / 2.0;
        const uint8_t *c = rgb + 3 * i;
        if ((left && c[0] == 255 && c[2] == 0) || (!left && c[0] == 0 && c[2] == 255))
            right++;
        else
            wrong++;
    }
    KS_CHECK(right > npix / 3);
    KS_CHECK_INT(wrong, 0);

    /* MJPEG */
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jsize = 0;
    KS_CHECK(tjCompress2(tj, bgra, cw, cw * 4, ch, TJPF_BGRA, &jpg, &jsize, TJSAMP_422, 90, 0) == 0);
    tjDestroy(tj);
    ks_mjpeg_decoder *dec;
    KS_CHECK_INT(ks_mjpeg_decoder_create(&dec, &err), KS_OK);
    for (int den = 1; den <= 4; den *= 4) {
        ks_color_image di;
        KS_CHECK_INT(ks_mjpeg_decode(dec, jpg, jsize, den, &di, &err), KS_OK);
        KS_CHECK_INT(di.width, cw / den);
        KS_CHECK_INT(di.height, ch / den);
        uint8_t *rgb2 = malloc(npix * 3);
        ks_points_colorize(x, y, z, npix, &cal.depth_to_color, &cal.color, &di, grey, rgb2);
        size_t agree = 0, total = 0;
        for (size_t i = 0; i < npix; i++) {
            if (rgb[3 * i] == 1)
                continue;
            total++;
            agree += abs(rgb2[3 * i] - rgb[3 * i]) < 40 && abs(rgb2[3 * i + 2] - rgb[3 * i + 2]) < 40;
        }
        KS_CHECK_MSG(agree > total * 97 / 100, "scale 1/%d: %zu of %zu agree", den, agree, total);
        free(rgb2);
    }
    /* garbage is refused, not crashed on */
    ks_color_image di;
    uint8_t junk[100] = {0xff, 0xd8, 1, 2, 3};
    KS_CHECK_INT(ks_mjpeg_decode(dec, junk, sizeof junk, 1, &di, &err), KS_EPARSE);
    KS_CHECK_INT(ks_mjpeg_decode(dec, jpg, jsize, 3, &di, &err), KS_EINVAL);
    ks_mjpeg_decoder_destroy(dec);
    tjFree(jpg);
    free(bgra), free(depth), free(x), free(y), free(z), free(rgb);
    ks_unproject_table_free(&t);
}

/* Two tables are the same table: size, valid count, every ray bit for bit (NaN included). */
static int same_table(const ks_unproject_table *a, const ks_unproject_table *b)
{
    size_t n = (size_t)a->width * (size_t)a->height;
    return a->width == b->width && a->height == b->height && a->valid_count == b->valid_count &&
           !memcmp(a->x, b->x, n * sizeof *a->x) && !memcmp(a->y, b->y, n * sizeof *a->y);
}

/* The one cache file in dir (its path into buf); 0 when there is not exactly one. */
static int cache_file(const char *dir, char *buf, size_t n)
{
    DIR *d = opendir(dir);
    int found = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "unproject-", 10)) {
            snprintf(buf, n, "%s/%s", dir, e->d_name);
            found++;
        }
    if (d)
        closedir(d);
    return found == 1;
}

/* Unprojection tables through the cache directory: the first call builds and stores, the second
 * reads the same table bit for bit; a corrupted, truncated or foreign file (another calibration's
 * table under this calibration's name) is never used but rebuilt and replaced; a directory that
 * cannot be written only costs the build; ks_fuse_create fuses the same with and without it. */
static void test_table_cache(void)
{
    ks_calibration cal, cal2;
    KS_CHECK(scene_calibration(31, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_OFF, &cal));
    KS_CHECK(scene_calibration(32, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_OFF, &cal2));
    char dir[] = "/tmp/test_fuse_cache_XXXXXX";
    KS_CHECK(mkdtemp(dir) != NULL);
    char sub[128], path[512], path2[512];
    snprintf(sub, sizeof sub, "%s/kinsync", dir); /* created by the first store */
    ks_error err;
    ks_unproject_table ref, t;
    bool hit = true;
    KS_CHECK_INT(ks_unproject_table_build(&cal.depth, &ref, &err), KS_OK);
    KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
    KS_CHECK(!hit && same_table(&ref, &t));
    ks_unproject_table_free(&t);
    KS_CHECK(cache_file(sub, path, sizeof path));
    KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
    KS_CHECK(hit && same_table(&ref, &t));
    /* read from the cache, the table is the file mapped, not a copy (freed by unmapping it) */
    KS_CHECK(t.map != NULL && (const char *)t.x > (const char *)t.map && ((uintptr_t)t.x & 63) == 0 &&
             ((uintptr_t)t.y & 63) == 0);
    ks_unproject_table_free(&t);
    KS_CHECK(t.map == NULL && t.x == NULL);
    /* a hit makes the file the most recently used (util/cachefile.h's size cap evicts the oldest) */
    {
        struct stat sb;
        time_t t0 = time(NULL);
        const struct timespec old[2] = {{t0 - 1000, 0}, {t0 - 1000, 0}};
        KS_CHECK(utimensat(AT_FDCWD, path, old, 0) == 0);
        KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
        KS_CHECK(hit && stat(path, &sb) == 0 && sb.st_mtime >= t0);
        ks_unproject_table_free(&t);
    }
    /* KINSYNC_CACHE_MAX_MB=0: no cache, the file not read (the table built), nothing written */
    setenv("KINSYNC_CACHE_MAX_MB", "0", 1);
    KS_CHECK_INT(ks_unproject_table_get(&cal2.depth, sub, &t, &hit, &err), KS_OK);
    KS_CHECK(!hit);
    ks_unproject_table_free(&t);
    KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
    KS_CHECK(!hit && same_table(&ref, &t));
    ks_unproject_table_free(&t);
    unsetenv("KINSYNC_CACHE_MAX_MB");
    KS_CHECK(cache_file(sub, path, sizeof path)); /* still only cal's */
    /* the lowest bit of one ray flipped, in each of four neighbouring 8-byte words of the x plane
     * (four of the checksum's sixteen 4-byte lanes): an ulp, invisible to the valid count and the
     * 64-pixel spot check, so only the checksum can reject it; each time rebuilt, then read again */
    for (int lane = 0; lane < 4; lane++) {
        size_t npx = (size_t)cal.depth.width * (size_t)cal.depth.height, plane = (npx * 4 + 63) / 64 * 64;
        FILE *f = fopen(path, "r+b");
        KS_CHECK(f != NULL);
        if (!f)
            break;
        fseek(f, 0, SEEK_END);
        long at = ftell(f) - 2 * (long)plane + (long)(npx / 2 * 4 / 32 * 32) + 8 * lane;
        fseek(f, at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 1, f);
        fclose(f);
        KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
        KS_CHECK_MSG(!hit && same_table(&ref, &t), "lane %d", lane);
        ks_unproject_table_free(&t);
        KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
        KS_CHECK_MSG(hit && same_table(&ref, &t), "lane %d, rewritten", lane);
        ks_unproject_table_free(&t);
    }
    /* one flipped bit in the rays, then a truncated file: rebuilt, then read again */
    for (int damage = 0; damage < 2; damage++) {
        FILE *f = fopen(path, "r+b");
        KS_CHECK(f != NULL);
        if (!f)
            break;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        if (damage == 0) {
            fseek(f, size - 1000, SEEK_SET);
            int c = fgetc(f);
            fseek(f, size - 1000, SEEK_SET);
            fputc(c ^ 4, f);
            fclose(f);
        } else {
            fclose(f);
            KS_CHECK(truncate(path, size - 8) == 0);
        }
        KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
        KS_CHECK_MSG(!hit && same_table(&ref, &t), "damage %d", damage);
        ks_unproject_table_free(&t);
        KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
        KS_CHECK_MSG(hit && same_table(&ref, &t), "damage %d, rewritten", damage);
        ks_unproject_table_free(&t);
    }
    /* another calibration's valid file under this calibration's name */
    char other[] = "/tmp/test_fuse_cache2_XXXXXX";
    KS_CHECK(mkdtemp(other) != NULL);
    KS_CHECK_INT(ks_unproject_table_get(&cal2.depth, other, &t, &hit, &err), KS_OK);
    ks_unproject_table_free(&t);
    KS_CHECK(cache_file(other, path2, sizeof path2));
    KS_CHECK(rename(path2, path) == 0);
    KS_CHECK_INT(ks_unproject_table_get(&cal.depth, sub, &t, &hit, &err), KS_OK);
    KS_CHECK(!hit && same_table(&ref, &t));
    ks_unproject_table_free(&t);
    rmdir(other);
    /* a cache "directory" below a regular file: no cache, same table, no error */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/x", path);
    KS_CHECK_INT(ks_unproject_table_get(&cal.depth, bad, &t, &hit, &err), KS_OK);
    KS_CHECK(!hit && same_table(&ref, &t));
    ks_unproject_table_free(&t);
    /* bad intrinsics are still named by the build */
    ks_intrinsics none = cal.depth;
    none.width = 0;
    KS_CHECK_INT(ks_unproject_table_get(&none, sub, &t, &hit, &err), KS_EINVAL);
    /* the pipeline with the cache (now filled for cal) gives the same points as without */
    ks_fuse_device dev = {.calibration = cal, .depth_to_rig = {.R = {1, 0, 0, 0, 1, 0, 0, 0, 1}}};
    ks_fuse *f1, *f2;
    ks_fuse_options o1 = {.voxel_mm = 5, .keep_points = true},
                    o2 = {.voxel_mm = 5, .table_cache_dir = sub, .keep_points = true};
    KS_CHECK_INT(ks_fuse_create(&dev, 1, &o1, &f1, &err), KS_OK);
    KS_CHECK_INT(ks_fuse_create(&dev, 1, &o2, &f2, &err), KS_OK);
    size_t npix = (size_t)cal.depth.width * (size_t)cal.depth.height;
    uint16_t *depth = malloc(npix * 2);
    for (size_t i = 0; i < npix; i++)
        depth[i] = (uint16_t)(800 + i % 1500);
    ks_fuse_input in = {.depth = depth};
    ks_cloud c1 = {0}, c2 = {0};
    KS_CHECK_INT(ks_fuse_run(f1, &in, &c1, NULL, &err), KS_OK);
    KS_CHECK_INT(ks_fuse_run(f2, &in, &c2, NULL, &err), KS_OK);
    const float *x1, *y1, *z1, *x2, *y2, *z2;
    int w, h;
    ks_fuse_points(f1, 0, &x1, &y1, &z1, &w, &h);
    ks_fuse_points(f2, 0, &x2, &y2, &z2, &w, &h);
    KS_CHECK_MSG(c1.count == c2.count && c1.count > 1000, "%zu %zu voxels", c1.count, c2.count);
    KS_CHECK(!memcmp(x1, x2, npix * 4) && !memcmp(y1, y2, npix * 4) && !memcmp(z1, z2, npix * 4));
    ks_cloud_free(&c1), ks_cloud_free(&c2);
    ks_fuse_destroy(f1), ks_fuse_destroy(f2);
    free(depth);
    ks_unproject_table_free(&ref);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    KS_RUN(test_points_on_surface);
    KS_RUN(test_golden_unprojection);
    KS_RUN(test_table_equals_rays);
    KS_RUN(test_colorize);
    KS_RUN(test_table_cache);
    return KS_TEST_END();
}
