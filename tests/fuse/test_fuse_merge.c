/* Merging: the voxel grid's arithmetic, two devices fusing one wall, occlusion fill from another
 * device, the interleaved stream and the rig pose file. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "fuse/fuse_scene.h"
#include "kinsync/fuse.h"
#include "ks_test.h"
#include "support/sorted_cloud.h"

typedef struct add_job {
    ks_voxel_grid *g;
    int partition;
    const float *x, *y, *z;
    size_t n;
    ks_status st;
} add_job;

static void *add_thread(void *arg)
{
    add_job *j = arg;
    ks_error e;
    for (int d = 0; d < 3 && j->st == KS_OK; d++) /* three "devices" of the same points */
        j->st = ks_voxel_grid_add(j->g, j->partition, d, j->x, j->y, j->z, NULL, NULL, NULL, NULL, j->n, &e);
    return NULL;
}

static void test_voxel_average(void)
{
    ks_voxel_grid *g;
    ks_error err;
    KS_CHECK_INT(ks_voxel_grid_create(10, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, 1, &g, &err), KS_OK);
    float x[] = {1, 3, -1, NAN, 1e9f, 19.5f};
    float y[] = {1, 5, -1, 0, 0, 0};
    float z[] = {1, 7, -1, 0, 0, 0};
    uint8_t rgb[] = {10, 20, 30, 20, 41, 60, 0, 0, 0, 1, 1, 1, 1, 1, 1, 200, 100, 50};
    float nx[] = {1, 0, 0, 0, 0, 0}, ny[] = {0, 1, 0, 0, 0, 0}, nz[] = {0, 0, 1, 0, 0, 1};
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 0, x, y, z, rgb, nx, ny, nz, 6, &err), KS_OK);
    /* device 3 adds to the first voxel */
    float x2[] = {5}, y2[] = {6}, z2[] = {1};
    uint8_t rgb2[] = {30, 0, 0};
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 3, x2, y2, z2, rgb2, NULL, NULL, NULL, 1, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_count(g), 3);
    ks_cloud c = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g, 0, &c, &err), KS_OK);
    KS_CHECK_INT(c.count, 3);
    int seen = 0;
    for (size_t i = 0; i < c.count; i++) {
        /* positions are kept to 1/32768 voxel: 10 mm / 32768 = 3e-4 mm */
        if (c.weight[i] == 3) { /* (1,1,1) (3,5,7) (5,6,1) */
            seen |= 1;
            KS_CHECK_NEAR(c.x[i], 3, 3e-4);
            KS_CHECK_NEAR(c.y[i], 4, 3e-4);
            KS_CHECK_NEAR(c.z[i], 3, 3e-4);
            KS_CHECK_INT(c.devices[i], 1u | 8u);
            KS_CHECK_INT(c.rgb[3 * i], 20);     /* (10+20+30)/3 */
            KS_CHECK_INT(c.rgb[3 * i + 1], 20); /* (20+41+0)/3 = 20.3 */
            KS_CHECK_INT(c.rgb[3 * i + 2], 30);
            KS_CHECK_NEAR(c.nx[i], 1 / sqrt(2), 1e-5); /* (1,0,0)+(0,1,0), device 3 had none */
            KS_CHECK_NEAR(c.nz[i], 0, 1e-6);
        } else if (c.x[i] < 0) {
            seen |= 2;
            KS_CHECK_INT(c.weight[i], 1);
            KS_CHECK_NEAR(c.x[i], -1, 3e-4);
            KS_CHECK_NEAR(c.z[i], -1, 3e-4);
        } else {
            seen |= 4;
            KS_CHECK_NEAR(c.x[i], 19.5, 3e-4);
            KS_CHECK_INT(c.rgb[3 * i], 200);
        }
    }
    KS_CHECK_INT(seen, 7);
    KS_CHECK_INT(ks_voxel_grid_extract(g, 2, &c, &err), KS_OK);
    KS_CHECK_INT(c.count, 1);
    KS_CHECK_INT(ks_voxel_grid_add(g, 0, 32, x, y, z, NULL, NULL, NULL, NULL, 1, &err), KS_EINVAL);
    KS_CHECK_INT(ks_voxel_grid_add(g, 1, 0, x, y, z, NULL, NULL, NULL, NULL, 1, &err), KS_EINVAL);
    ks_voxel_grid_reset(g);
    KS_CHECK_INT(ks_voxel_grid_count(g), 0);
    ks_voxel_grid_destroy(g);

    /* many voxels (grows past the initial table) on 3 partitions == one partition */
    size_t n = 200000;
    float *px = malloc(n * 4), *py = malloc(n * 4), *pz = malloc(n * 4);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        px[i] = (float)((s >> 40) % 4000) - 2000.0f + 0.25f;
        py[i] = (float)((s >> 20) % 50) * 3.0f;
        pz[i] = (float)(i % 3) * 0.5f + 1000.0f;
    }
    ks_voxel_grid *g1, *g3;
    KS_CHECK_INT(ks_voxel_grid_create(2, 0, 1, &g1, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(2, 0, 3, &g3, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(g1, -1, 0, px, py, pz, NULL, NULL, NULL, NULL, n, &err), KS_OK);
    for (int p = 0; p < 3; p++)
        KS_CHECK_INT(ks_voxel_grid_add(g3, p, 0, px, py, pz, NULL, NULL, NULL, NULL, n, &err), KS_OK);
    KS_CHECK(ks_voxel_grid_count(g1) > 50000);
    KS_CHECK_INT(ks_voxel_grid_count(g3), ks_voxel_grid_count(g1));
    ks_cloud c1 = {0}, c3 = {0};
    ks_voxel_grid_extract(g1, 0, &c1, &err);
    ks_voxel_grid_extract(g3, 0, &c3, &err);
    double s1 = 0, s3 = 0;
    uint64_t w1 = 0, w3 = 0;
    for (size_t i = 0; i < c1.count; i++)
        s1 += c1.x[i] * (double)c1.weight[i], w1 += c1.weight[i];
    for (size_t i = 0; i < c3.count; i++)
        s3 += c3.x[i] * (double)c3.weight[i], w3 += c3.weight[i];
    KS_CHECK_INT(w1, n);
    KS_CHECK_INT(w3, n);
    KS_CHECK_NEAR(s1, s3, fabs(s1) * 1e-6 + 1);
    /* three threads, one partition each, at the same time: the same voxels */
    ks_voxel_grid *gt;
    KS_CHECK_INT(ks_voxel_grid_create(2, 0, 3, &gt, &err), KS_OK);
    pthread_t th[3];
    add_job jobs[3];
    for (int t = 0; t < 3; t++) {
        jobs[t] = (add_job){gt, t, px, py, pz, n, KS_OK};
        KS_CHECK(pthread_create(&th[t], NULL, add_thread, &jobs[t]) == 0);
    }
    for (int t = 0; t < 3; t++) {
        pthread_join(th[t], NULL);
        KS_CHECK_INT(jobs[t].st, KS_OK);
    }
    ks_cloud ct = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(gt, 0, &ct, &err), KS_OK);
    KS_CHECK_INT(ct.count, c1.count);
    uint64_t wt = 0;
    size_t all3 = 0;
    for (size_t i = 0; i < ct.count; i++) {
        wt += ct.weight[i];
        all3 += ct.devices[i] == 7u;
    }
    KS_CHECK_INT(wt, 3 * n);
    KS_CHECK_INT(all3, ct.count);
    ks_cloud_free(&ct);
    ks_voxel_grid_destroy(gt);
    ks_cloud_free(&c), ks_cloud_free(&c1), ks_cloud_free(&c3);
    ks_voxel_grid_destroy(g1), ks_voxel_grid_destroy(g3);
    free(px), free(py), free(pz);
    KS_CHECK_INT(ks_voxel_grid_create(0, 0, 1, &g1, &err), KS_EINVAL);
}

/* A wall at Z = 2000 mm seen by two devices 600 mm apart, converging. */
typedef struct two_dev {
    ks_fuse_device dev[2];
    scene s;
    uint16_t *depth[2];
    size_t npix;
} two_dev;

static int two_dev_setup(two_dev *t)
{
    memset(t, 0, sizeof *t);
    t->s = (scene){{0, 0, 1}, 2000, 0, {0, 0, 0}, 0};
    double pos[2][3] = {{-300, 0, 0}, {300, 50, 100}}, target[3] = {0, 0, 2000};
    for (int d = 0; d < 2; d++) {
        if (!scene_calibration(20 + (uint64_t)d, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_OFF, &t->dev[d].calibration))
            return 0;
        scene_look_at(pos[d], target, &t->dev[d].depth_to_rig);
        snprintf(t->dev[d].serial, sizeof t->dev[d].serial, "dev%d", d);
        t->npix = (size_t)t->dev[d].calibration.depth.width * (size_t)t->dev[d].calibration.depth.height;
        t->depth[d] = malloc(t->npix * 2);
        scene_render(&t->s, &t->dev[d].calibration.depth, &t->dev[d].depth_to_rig, t->depth[d]);
    }
    return 1;
}

static void two_dev_free(two_dev *t)
{
    free(t->depth[0]);
    free(t->depth[1]);
}

static void test_two_devices_one_surface(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    for (int threads = 1; threads <= 2; threads++) {
        ks_fuse_options o = {.voxel_mm = 20, .threads = threads, .normals = true}; /* > pixel spacing at 2 m */
        ks_fuse *f;
        ks_error err;
        KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &f, &err), KS_OK);
        ks_fuse_input in[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
        ks_cloud c = {0};
        ks_fuse_stats st;
        KS_CHECK_INT(ks_fuse_run(f, in, &c, &st, &err), KS_OK);
        KS_CHECK(st.points[0] > t.npix * 95 / 100 && st.points[1] > t.npix * 95 / 100);
        KS_CHECK_INT(st.voxels, c.count);
        /* one surface: every voxel on the wall, none doubled in depth */
        double *e = malloc(c.count * sizeof *e);
        size_t shared = 0;
        for (size_t i = 0; i < c.count; i++) {
            e[i] = fabs(c.z[i] - 2000.0);
            shared += c.devices[i] == 3;
        }
        qsort(e, c.count, sizeof *e, cmp_double);
        printf("  threads %d: %zu + %zu points -> %zu voxels, %zu shared, error median %.3f max %.3f mm, %.1f ms\n",
               threads, st.points[0], st.points[1], c.count, st.voxels_shared, e[c.count / 2], e[c.count - 1],
               st.ms_total);
        KS_CHECK(e[c.count / 2] < 1.0);
        KS_CHECK(e[c.count - 1] < 5.0); /* inside the one voxel layer at the wall */
        KS_CHECK_INT(shared, st.voxels_shared);
        KS_CHECK(shared > c.count / 4); /* the views overlap substantially */
        /* the wall's voxel layer: at most 2 voxels thick in z (2000 is a voxel boundary) */
        size_t off = 0;
        for (size_t i = 0; i < c.count; i++)
            off += c.z[i] < 1995 || c.z[i] > 2005;
        KS_CHECK_INT(off, 0);
        size_t good_n = 0;
        for (size_t i = 0; i < c.count; i++)
            good_n += c.nz[i] < -0.99f; /* faces the cameras (at z < 2000) */
        KS_CHECK(good_n > c.count * 95 / 100);
        /* a second run with one device missing reuses everything */
        in[1].depth = NULL;
        KS_CHECK_INT(ks_fuse_run(f, in, &c, &st, &err), KS_OK);
        KS_CHECK_INT(st.points[1], 0);
        KS_CHECK_INT(st.voxels_shared, 0);
        free(e);
        ks_cloud_free(&c);
        ks_fuse_destroy(f);
    }
    two_dev_free(&t);
}

/* Threads change how the work is cut (rows of a device split between threads, partitions, the
 * gaps between the partitions' output ranges filled from the end) but never the result: every
 * thread count gives the same voxels as one thread, with and without normals. Position sums are
 * exact (integer offsets in float), so positions must be equal, not close. */
static void test_threads_agree(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    /* a band of missing depth across device 1 and a hole in device 0: NaN rows at share borders */
    int w = t.dev[1].calibration.depth.width;
    for (size_t i = (size_t)w * 100; i < (size_t)w * 140; i++)
        t.depth[1][i] = 0;
    for (size_t i = (size_t)w * 50 + 10; i < (size_t)w * 50 + 200; i++)
        t.depth[0][i] = 0;
    for (int normals = 0; normals <= 1; normals++) {
        ks_test_voxel *ref = NULL;
        size_t nref = 0;
        for (int threads = 1; threads <= 4; threads++) {
            ks_fuse_options o = {.voxel_mm = 4, .threads = threads, .normals = normals};
            ks_fuse *f;
            ks_error err;
            KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &f, &err), KS_OK);
            /* another frame set first (the devices' images swapped), so that stale points left in
             * the buffers by it would show */
            ks_fuse_input other[2] = {{.depth = t.depth[1]}, {.depth = t.depth[0]}};
            ks_fuse_input in[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
            ks_cloud c = {0};
            ks_fuse_stats st;
            KS_CHECK_INT(ks_fuse_run(f, other, &c, &st, &err), KS_OK);
            KS_CHECK_INT(ks_fuse_run(f, in, &c, &st, &err), KS_OK);
            ks_test_voxel *v = ks_test_sorted_voxels(&c);
            uint64_t wsum = 0;
            for (size_t i = 0; i < c.count; i++)
                wsum += c.weight[i];
            KS_CHECK_INT(wsum, st.points_total);
            if (threads == 1) {
                ref = v, nref = c.count;
                KS_CHECK(nref > 10000);
            } else {
                KS_CHECK_INT(c.count, nref);
                size_t pos_diff = 0, meta_diff = 0, normal_diff = 0;
                for (size_t i = 0; i < nref && i < c.count; i++) {
                    pos_diff += v[i].x != ref[i].x || v[i].y != ref[i].y || v[i].z != ref[i].z;
                    meta_diff += v[i].weight != ref[i].weight || v[i].devices != ref[i].devices;
                    if (normals) /* float sums of normals: the order of addition may differ */
                        normal_diff += !(fabsf(v[i].nx - ref[i].nx) < 1e-5f) && !(v[i].nx != v[i].nx && ref[i].nx != ref[i].nx);
                }
                printf("  normals %d, %d threads: %zu voxels, %zu differ in position, %zu in weight/devices, %zu in normal\n",
                       normals, threads, c.count, pos_diff, meta_diff, normal_diff);
                KS_CHECK_INT(pos_diff, 0);
                KS_CHECK_INT(meta_diff, 0);
                KS_CHECK_INT(normal_diff, 0);
                free(v);
            }
            ks_cloud_free(&c);
            ks_fuse_destroy(f);
        }
        free(ref);
    }
    two_dev_free(&t);
}

/* Phase 2's stealing: a thread done with its partitions takes cells from the back of others', into
 * its staging, copied after their partition's own cells. Forced (each partition's own thread sums
 * at most 3 of its cells: every other cell is taken by some thread from a back), the output must be
 * the same as without, byte for byte and in the same order, for 1 to 4 threads, with and without
 * normals and with a minimum weight (the per-voxel path). */
static bool clouds_identical(const ks_cloud *a, const ks_cloud *b)
{
    if (a->count != b->count || a->fields != b->fields)
        return false;
    size_t n = a->count;
    bool same = !memcmp(a->x, b->x, n * 4) && !memcmp(a->y, b->y, n * 4) && !memcmp(a->z, b->z, n * 4) &&
                !memcmp(a->weight, b->weight, n * 4) && !memcmp(a->devices, b->devices, n * 4);
    if (a->nx)
        for (size_t i = 0; i < n; i++) /* NaN normals: compare bits */
            same = same && !memcmp(&a->nx[i], &b->nx[i], 4) && !memcmp(&a->ny[i], &b->ny[i], 4) &&
                   !memcmp(&a->nz[i], &b->nz[i], 4);
    return same;
}

static void test_stealing_same_output(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    for (int threads = 1; threads <= 4; threads++)
        for (int mode = 0; mode < 3; mode++) {
            ks_fuse_options o = {.voxel_mm = 4, .threads = threads, .normals = mode == 1,
                                 .min_weight = mode == 2 ? 2u : 0u};
            ks_fuse *f, *g;
            ks_error err;
            KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &f, &err), KS_OK);
            KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &g, &err), KS_OK);
            ks_fuse_set_own_cells(g, 3);
            ks_fuse_input in[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
            ks_cloud a = {0}, b = {0};
            ks_fuse_stats sa, sb;
            KS_CHECK_INT(ks_fuse_run(f, in, &a, &sa, &err), KS_OK);
            for (int rep = 0; rep < 2; rep++) /* twice: the staging and lists are reused */
                KS_CHECK_INT(ks_fuse_run(g, in, &b, &sb, &err), KS_OK);
            size_t stolen = ks_fuse_stolen_cells(g);
            printf("  %d thread(s), mode %d: %zu voxels, %zu cells taken from partitions' backs\n", threads, mode,
                   b.count, stolen);
            KS_CHECK(stolen > 10);
            KS_CHECK(a.count > (mode == 2 ? 5000u : 100000u));
            KS_CHECK(clouds_identical(&a, &b));
            KS_CHECK_INT(sb.voxels_shared, sa.voxels_shared);
            ks_cloud_free(&a);
            ks_cloud_free(&b);
            ks_fuse_destroy(f);
            ks_fuse_destroy(g);
        }
    two_dev_free(&t);
}

/* keep_points decides only whether the organized points stay readable (ks_fuse_points): the cloud
 * is the same byte for byte with and without it (the points then made a chunk of rows at a time in
 * a per-thread buffer), for 1 to 3 threads, with and without colour, and with a device missing;
 * ks_fuse_points gives the points only when they are kept (keep_points or normals). */
static void test_keep_points(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    for (int d = 0; d < 2; d++) /* the same devices with a colour camera */
        KS_CHECK(scene_calibration(20 + (uint64_t)d, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, &t.dev[d].calibration));
    const int cw = t.dev[0].calibration.color.width, ch = t.dev[0].calibration.color.height;
    uint8_t *bgra = malloc((size_t)cw * (size_t)ch * 4);
    for (size_t i = 0; i < (size_t)cw * (size_t)ch; i++) { /* a pattern no two nearby pixels share */
        bgra[4 * i] = (uint8_t)(i * 7), bgra[4 * i + 1] = (uint8_t)(i / (size_t)cw * 5);
        bgra[4 * i + 2] = (uint8_t)(i % (size_t)cw * 3), bgra[4 * i + 3] = 255;
    }
    for (int threads = 1; threads <= 3; threads++)
        for (int color = 0; color < 2; color++) {
            ks_fuse_options o = {.voxel_mm = 4, .threads = threads, .color = color, .keep_points = true};
            ks_fuse_options p = o;
            p.keep_points = false;
            ks_fuse *f, *g;
            ks_error err;
            KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &f, &err), KS_OK);
            KS_CHECK_INT(ks_fuse_create(t.dev, 2, &p, &g, &err), KS_OK);
            ks_fuse_input in[2];
            for (int d = 0; d < 2; d++)
                in[d] = (ks_fuse_input){.depth = t.depth[d], .color_format = KS_FORMAT_BGRA32,
                                        .color = color ? bgra : NULL, .color_width = cw, .color_height = ch};
            ks_cloud a = {0}, b = {0};
            for (int rep = 0; rep < 3; rep++) { /* the third run without device 1 */
                if (rep == 2)
                    in[1].depth = NULL;
                KS_CHECK_INT(ks_fuse_run(f, in, &a, NULL, &err), KS_OK);
                KS_CHECK_INT(ks_fuse_run(g, in, &b, NULL, &err), KS_OK);
                KS_CHECK(a.count > 20000);
                KS_CHECK(clouds_identical(&a, &b));
                KS_CHECK(!color || (a.rgb && b.rgb && !memcmp(a.rgb, b.rgb, 3 * a.count)));
            }
            if (color) { /* the pattern reached the voxels: colours vary */
                size_t differ = 0;
                for (size_t i = 1; i < a.count; i++)
                    differ += memcmp(a.rgb + 3 * i, a.rgb + 3 * (i - 1), 3) != 0;
                KS_CHECK(differ > a.count / 2);
            }
            const float *x = NULL, *y = NULL, *z = NULL;
            int w = -1, h = -1;
            ks_fuse_points(f, 0, &x, &y, &z, &w, &h);
            KS_CHECK(x && y && z && (size_t)w * (size_t)h == t.npix);
            size_t valid = 0;
            for (size_t i = 0; x && i < t.npix; i++)
                valid += x[i] == x[i];
            KS_CHECK(valid > t.npix * 95 / 100);
            ks_fuse_points(g, 0, &x, &y, &z, &w, &h);
            KS_CHECK(!x && !y && !z && w == 0 && h == 0);
            ks_cloud_free(&a);
            ks_cloud_free(&b);
            ks_fuse_destroy(f);
            ks_fuse_destroy(g);
        }
    /* normals keep the points whatever keep_points says (they need the neighbouring rows) */
    ks_fuse_options n = {.voxel_mm = 4, .threads = 2, .normals = true};
    ks_fuse *f;
    ks_error err;
    KS_CHECK_INT(ks_fuse_create(t.dev, 2, &n, &f, &err), KS_OK);
    ks_fuse_input in[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
    ks_cloud c = {0};
    KS_CHECK_INT(ks_fuse_run(f, in, &c, NULL, &err), KS_OK);
    const float *x = NULL, *y = NULL, *z = NULL;
    int w = 0, h = 0;
    ks_fuse_points(f, 1, &x, &y, &z, &w, &h);
    KS_CHECK(x && (size_t)w * (size_t)h == t.npix);
    ks_cloud_free(&c);
    ks_fuse_destroy(f);
    free(bgra);
    two_dev_free(&t);
}

/* Two pipelines fusing at the same time in one process (each with stealing forced, so both sort
 * their taken cells at once) give what each gives alone: nothing in a pipeline is shared with
 * another (ThreadSanitizer checks it in its run). */
typedef struct pair_job {
    ks_fuse *f;
    const ks_fuse_input *in;
    ks_cloud out;
    ks_status st;
} pair_job;

static void *pair_run(void *arg)
{
    pair_job *j = arg;
    ks_error e;
    for (int r = 0; r < 3 && j->st == KS_OK; r++)
        j->st = ks_fuse_run(j->f, j->in, &j->out, NULL, &e);
    return NULL;
}

static void test_two_pipelines_at_once(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    ks_fuse_input in[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
    ks_fuse_input swapped[2] = {{.depth = t.depth[1]}, {.depth = t.depth[0]}};
    ks_fuse_options o = {.voxel_mm = 4, .threads = 2};
    ks_error err;
    pair_job j[2] = {{.in = in}, {.in = swapped}};
    ks_cloud alone[2] = {{0}, {0}};
    for (int k = 0; k < 2; k++) {
        KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &j[k].f, &err), KS_OK);
        ks_fuse_set_own_cells(j[k].f, 3);
        KS_CHECK_INT(ks_fuse_run(j[k].f, j[k].in, &alone[k], NULL, &err), KS_OK);
    }
    pthread_t th[2];
    bool started[2];
    for (int k = 0; k < 2; k++)
        started[k] = pthread_create(&th[k], NULL, pair_run, &j[k]) == 0;
    for (int k = 0; k < 2; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            pair_run(&j[k]);
        KS_CHECK_INT(j[k].st, KS_OK);
        KS_CHECK(ks_fuse_stolen_cells(j[k].f) > 10);
        KS_CHECK(clouds_identical(&j[k].out, &alone[k]));
        ks_cloud_free(&j[k].out);
        ks_cloud_free(&alone[k]);
        ks_fuse_destroy(j[k].f);
    }
    two_dev_free(&t);
}

/* The voxel sums' two special paths. (1) A cell of 65536 records or more (coarse voxels) is summed
 * in slices into 64-bit sums: 200 000 points in two voxels of one cell, offsets near the top of
 * the voxel, sum past 2^32 (32-bit lanes would wrap). (2) Coordinates of 32768 voxels or more
 * leave the 32-bit fixed-point keys for the 64-bit ones: points within range get the same keys
 * either way, so the same points give the same voxels, bit for bit, whether or not far points
 * share their blocks. */
static void test_voxel_sum_paths(void)
{
    ks_error err;
    ks_voxel_grid *g;
    KS_CHECK_INT(ks_voxel_grid_create(1000, 0, 1, &g, &err), KS_OK);
    size_t n = 200000;
    float *px = malloc(n * 4), *py = malloc(n * 4), *pz = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        px[i] = i % 2 ? 1500.0f : 999.969482421875f; /* 32767/32768 of the voxel; 1.5 voxels */
        py[i] = 10.0f;
        pz[i] = 500.0f;
    }
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 0, px, py, pz, NULL, NULL, NULL, NULL, n / 2, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 5, px + n / 2, py + n / 2, pz + n / 2, NULL, NULL, NULL, NULL, n / 2, &err),
                 KS_OK);
    ks_cloud c = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g, 0, &c, &err), KS_OK);
    KS_CHECK_INT(c.count, 2);
    for (size_t i = 0; i < c.count; i++) {
        KS_CHECK_INT(c.weight[i], n / 2);
        KS_CHECK_INT(c.devices[i], 1u | 32u);
        KS_CHECK_NEAR(c.x[i], c.x[i] < 1200 ? 999.9695 : 1500.0, 1e-3);
        KS_CHECK_NEAR(c.y[i], 10.0, 0.02);
        KS_CHECK_NEAR(c.z[i], 500.0, 0.02);
    }
    ks_cloud_free(&c);
    ks_voxel_grid_destroy(g);
    free(px), free(py), free(pz);

    /* near points alone, and the same near points with far ones (and NaN, and out of the key's
     * range) between them in every block */
    enum { NEAR = 3000, STRIDE = 7 };
    float nx[NEAR], ny[NEAR], nz[NEAR];
    float mx[NEAR * 2], my[NEAR * 2], mz[NEAR * 2];
    uint64_t s = 99;
    size_t m = 0, nfar = 0;
    for (int i = 0; i < NEAR; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        nx[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 65000.0 - 32500.0); /* within +-32768 voxels */
        ny[i] = (float)((s >> 20) % 1000) * -0.37f;
        nz[i] = (float)((s >> 30) % 3000) * 0.731f - 1000.0f;
        mx[m] = nx[i], my[m] = ny[i], mz[m] = nz[i], m++;
        if (i % STRIDE == 0) {
            float far[] = {-50000.37f, 41234.567f, 3e6f, NAN};
            mx[m] = far[(i / STRIDE) % 4], my[m] = 5.5f, mz[m] = -7.25f;
            nfar += (i / STRIDE) % 4 < 2;
            m++;
        }
    }
    ks_voxel_grid *gn, *gm;
    KS_CHECK_INT(ks_voxel_grid_create(1, 0, 1, &gn, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(1, 0, 1, &gm, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(gn, -1, 0, nx, ny, nz, NULL, NULL, NULL, NULL, NEAR, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(gm, -1, 0, mx, my, mz, NULL, NULL, NULL, NULL, m, &err), KS_OK);
    ks_cloud cn = {0}, cm = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(gn, 0, &cn, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_extract(gm, 0, &cm, &err), KS_OK);
    /* far voxels: where the points are, then left out of the comparison */
    ks_cloud near = {0};
    KS_CHECK_INT(ks_cloud_reserve(&near, cm.count, cm.fields, &err), KS_OK);
    size_t far_weight = 0;
    for (size_t i = 0; i < cm.count; i++) {
        if (fabsf(cm.x[i]) > 40000) {
            far_weight += cm.weight[i];
            KS_CHECK_MSG(fabsf(cm.x[i] + 50000.37f) < 2e-3f || fabsf(cm.x[i] - 41234.567f) < 2e-3f, "far x %.4f",
                         (double)cm.x[i]);
            KS_CHECK_NEAR(cm.y[i], 5.5, 1e-4);
            KS_CHECK_NEAR(cm.z[i], -7.25, 1e-4);
            continue;
        }
        size_t k = near.count++;
        near.x[k] = cm.x[i], near.y[k] = cm.y[i], near.z[k] = cm.z[i];
        near.weight[k] = cm.weight[i], near.devices[k] = cm.devices[i];
    }
    KS_CHECK_INT(far_weight, nfar);
    KS_CHECK_INT(near.count, cn.count);
    ks_test_voxel *a = ks_test_sorted_voxels(&cn), *b = ks_test_sorted_voxels(&near);
    size_t diff = 0;
    for (size_t i = 0; i < cn.count && i < near.count; i++)
        diff += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    KS_CHECK_INT(diff, 0);
    free(a), free(b);
    ks_cloud_free(&cn), ks_cloud_free(&cm), ks_cloud_free(&near);
    ks_voxel_grid_destroy(gn), ks_voxel_grid_destroy(gm);
}

/* A cell with every voxel occupied (32768 at 1 mm), then some of them a second time by device 20 (a
 * device of 16 or more: the devices' second place), with and without colour. With 1000 repeats the
 * cell is narrow: its voxels are gathered from its records, each record written to the next free
 * slot, so the last records, all repeats, write one slot past a full cell (the room for it is
 * checked by UBSan's bounds check in the sanitizer build). With every voxel repeated the cell has
 * 65536 records, so it is summed in 64 bits and gathered through its bitmap, down to the last word.
 * Every voxel once, its weight, devices, mean position and colour; with a minimum weight (the
 * general output loop), exactly the repeated ones. */
static void test_full_cell(void)
{
    enum { NV = 32768 };
    float *x = malloc(2 * NV * sizeof *x), *y = malloc(2 * NV * sizeof *y), *z = malloc(2 * NV * sizeof *z);
    uint8_t *rgb = malloc(2 * NV * 3);
    for (int i = 0; i < 2 * NV; i++) {
        int v = i < NV ? i : (i - NV) * 31 % NV; /* the repeats spread over the cell (31 is prime to NV) */
        float o = i < NV ? 0.25f : 0.75f;
        x[i] = (float)(v >> 10) + o, y[i] = (float)((v >> 5) & 31) + o, z[i] = (float)(v & 31) + o;
        rgb[3 * i] = i < NV ? 10 : 30, rgb[3 * i + 1] = i < NV ? 20 : 40, rgb[3 * i + 2] = i < NV ? 30 : 50;
    }
    for (int mode = 0; mode < 4; mode++) {
        const bool color = mode & 1;
        const size_t rep = mode & 2 ? NV : 1000;
        ks_error err;
        ks_voxel_grid *g;
        KS_CHECK_INT(ks_voxel_grid_create(1, color ? KS_CLOUD_COLOR : 0, 1, &g, &err), KS_OK);
        KS_CHECK_INT(ks_voxel_grid_add(g, -1, 3, x, y, z, color ? rgb : NULL, NULL, NULL, NULL, NV, &err), KS_OK);
        KS_CHECK_INT(ks_voxel_grid_add(g, -1, 20, x + NV, y + NV, z + NV, color ? rgb + 3 * NV : NULL, NULL, NULL, NULL,
                                       rep, &err),
                     KS_OK);
        for (uint32_t minw = 0; minw < 3; minw += 2) {
            ks_cloud c = {0};
            KS_CHECK_INT(ks_voxel_grid_extract(g, minw, &c, &err), KS_OK);
            KS_CHECK_INT(c.count, minw ? rep : NV);
            uint8_t *seen = calloc(NV, 1);
            size_t bad = 0, twice = 0;
            for (size_t i = 0; i < c.count; i++) {
                int ix = (int)floorf(c.x[i]), iy = (int)floorf(c.y[i]), iz = (int)floorf(c.z[i]);
                if (ix < 0 || ix > 31 || iy < 0 || iy > 31 || iz < 0 || iz > 31) {
                    bad++;
                    continue;
                }
                int v = ix << 10 | iy << 5 | iz;
                bool again = c.weight[i] == 2;
                float o = again ? 0.5f : 0.25f;
                twice += again;
                bad += seen[v]++ != 0;
                bad += c.weight[i] < 1 || c.weight[i] > 2;
                bad += c.devices[i] != (again ? (1u << 3 | 1u << 20) : 1u << 3);
                bad += fabsf(c.x[i] - (float)ix - o) > 1e-4f || fabsf(c.y[i] - (float)iy - o) > 1e-4f ||
                       fabsf(c.z[i] - (float)iz - o) > 1e-4f;
                if (color)
                    bad += c.rgb[3 * i] != (again ? 20 : 10) || c.rgb[3 * i + 1] != (again ? 30 : 20) ||
                           c.rgb[3 * i + 2] != (again ? 40 : 30);
            }
            KS_CHECK_MSG(bad == 0, "mode %d, minimum weight %u: %zu voxels wrong", mode, minw, bad);
            KS_CHECK_INT(twice, rep);
            free(seen);
            ks_cloud_free(&c);
        }
        ks_voxel_grid_destroy(g);
    }
    free(x), free(y), free(z), free(rgb);
}

static void test_occlusion_fill(void)
{
    two_dev t;
    KS_CHECK(two_dev_setup(&t));
    const ks_intrinsics *in0 = &t.dev[0].calibration.depth;
    int w = in0->width, h = in0->height;
    uint16_t *truth = malloc(t.npix * 2);
    memcpy(truth, t.depth[0], t.npix * 2);
    /* a 40x30 hole in the middle of device 0's depth, where device 1 sees the wall too */
    size_t hole = 0;
    for (int v = h / 2 - 15; v < h / 2 + 15; v++)
        for (int u = w / 2 - 20; u < w / 2 + 20; u++) {
            t.depth[0][(size_t)v * (size_t)w + (size_t)u] = 0;
            hole++;
        }
    size_t holes_before = 0;
    for (size_t i = 0; i < t.npix; i++)
        holes_before += t.depth[0][i] == 0;
    ks_fuse_options o = {.voxel_mm = 5, .threads = 1};
    ks_fuse *f;
    ks_error err;
    KS_CHECK_INT(ks_fuse_create(t.dev, 2, &o, &f, &err), KS_OK);
    ks_fuse_input inp[2] = {{.depth = t.depth[0]}, {.depth = t.depth[1]}};
    ks_cloud c = {0};
    KS_CHECK_INT(ks_fuse_run(f, inp, &c, NULL, &err), KS_OK);
    uint16_t *rend = malloc(t.npix * 2), *filled = malloc(t.npix * 2);
    ks_extrinsics rig_to_cam;
    ks_extrinsics_invert(&t.dev[0].depth_to_rig, &rig_to_cam);
    size_t covered = ks_render_depth(&c, in0, &rig_to_cam, 5, rend, NULL);
    KS_CHECK(covered > t.npix * 9 / 10);
    size_t nfill = ks_depth_fill_holes(t.depth[0], rend, w, h, filled);
    size_t in_hole = 0, close = 0;
    double maxe = 0;
    for (int v = h / 2 - 15; v < h / 2 + 15; v++)
        for (int u = w / 2 - 20; u < w / 2 + 20; u++) {
            size_t k = (size_t)v * (size_t)w + (size_t)u;
            if (!filled[k])
                continue;
            in_hole++;
            double e = fabs((double)filled[k] - truth[k]);
            close += e <= 3;
            maxe = e > maxe ? e : maxe;
        }
    printf("  hole %zu px: %zu filled (of %zu filled overall), %zu within 3 mm, max error %.0f mm\n", hole, in_hole,
           nfill, close, maxe);
    KS_CHECK_INT(in_hole, hole);
    KS_CHECK(close >= hole * 98 / 100);
    KS_CHECK(nfill >= hole && nfill <= holes_before);
    /* pixels with depth are never changed */
    size_t changed = 0;
    for (size_t i = 0; i < t.npix; i++)
        changed += t.depth[0][i] && filled[i] != t.depth[0][i];
    KS_CHECK_INT(changed, 0);
    /* the filled view survives a PNG round trip size-wise */
    char path[512];
    snprintf(path, sizeof path, "%s/fuse-test-fill.png", KS_BINARY_DIR);
    KS_CHECK_INT(ks_png_write_depth16(path, filled, w, h, &err), KS_OK);
    FILE *fp = fopen(path, "rb");
    unsigned char sig[24] = {0};
    KS_CHECK(fp && fread(sig, 1, 24, fp) == 24);
    if (fp)
        fclose(fp);
    KS_CHECK(memcmp(sig + 1, "PNG", 3) == 0);
    KS_CHECK_INT((sig[16] << 24 | sig[17] << 16 | sig[18] << 8 | sig[19]), w);
    KS_CHECK_INT((sig[20] << 24 | sig[21] << 16 | sig[22] << 8 | sig[23]), h);
    remove(path);
    KS_CHECK_INT(ks_png_write_depth16("/nonexistent-dir/x.png", filled, w, h, &err), KS_EIO);
    KS_CHECK_CONTAINS(err.message, "/nonexistent-dir/x.png");
    free(truth), free(rend), free(filled);
    ks_cloud_free(&c);
    ks_fuse_destroy(f);
    two_dev_free(&t);
}

/* z-buffer: of points on one ray the nearest wins, in depth and in color; splats cover neighbours. */
static void test_render_zbuffer(void)
{
    ks_calibration cal;
    KS_CHECK(scene_calibration(3, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_OFF, &cal));
    const ks_intrinsics *in = &cal.depth;
    ks_extrinsics id;
    ks_extrinsics_identity(&id);
    double xy[2] = {0, 0};
    KS_CHECK(scene_ray_for_pixel(in, 100, 80, xy)); /* the ray through pixel (100, 80) */
    ks_cloud c = {0};
    ks_error err;
    KS_CHECK_INT(ks_cloud_reserve(&c, 3, KS_CLOUD_COLOR, &err), KS_OK);
    const double zs[3] = {1500, 900, 2500};
    const uint8_t cols[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    for (int i = 0; i < 3; i++) {
        c.x[i] = (float)(xy[0] * zs[i]);
        c.y[i] = (float)(xy[1] * zs[i]);
        c.z[i] = (float)zs[i];
        memcpy(c.rgb + 3 * i, cols[i], 3);
    }
    c.count = 3;
    size_t np = (size_t)in->width * (size_t)in->height;
    uint16_t *d = malloc(np * 2);
    uint8_t *bgra = malloc(np * 4);
    size_t covered = ks_render_depth(&c, in, &id, 0, d, bgra);
    size_t k = 80 * (size_t)in->width + 100;
    KS_CHECK_INT(covered, 1);
    KS_CHECK_INT(d[k], 900);
    KS_CHECK(bgra[4 * k] == 0 && bgra[4 * k + 1] == 255 && bgra[4 * k + 2] == 0 && bgra[4 * k + 3] == 255);
    /* a 20 mm splat at 900 mm covers a square of pixels around it, nearest still wins */
    covered = ks_render_depth(&c, in, &id, 20, d, bgra);
    KS_CHECK(covered >= 9);
    KS_CHECK_INT(d[k], 900);
    KS_CHECK_INT(d[k + 1], 900);
    KS_CHECK_INT(d[k + (size_t)in->width], 900);
    /* behind the camera: nothing */
    c.z[0] = c.z[1] = c.z[2] = -1000;
    KS_CHECK_INT(ks_render_depth(&c, in, &id, 5, d, NULL), 0);
    free(d);
    free(bgra);
    ks_cloud_free(&c);
}

static void test_interleave(void)
{
    /* 3 devices at 30 fps offset by a third of the period: 90 frames/s in one stream */
    ks_rig_pose poses[3];
    memset(poses, 0, sizeof poses);
    for (int d = 0; d < 3; d++) {
        ks_extrinsics_identity(&poses[d].depth_to_rig);
        poses[d].depth_to_rig.t[0] = 100.0 * d;
    }
    enum { N = 30 };
    ks_stream_frame in[3 * N], out[3 * N];
    static int images[3 * N];
    size_t k = 0;
    for (int d = 2; d >= 0; d--) /* device-major input order, newest device first */
        for (int i = 0; i < N; i++) {
            images[k] = d * 1000 + i;
            in[k] = (ks_stream_frame){d, 1000000 + (int64_t)i * 33333 + d * 11111, &images[k], {{0}, {0}}};
            k++;
        }
    ks_interleave_stats st;
    ks_error err;
    KS_CHECK_INT(ks_interleave(in, k, poses, 3, out, &st, &err), KS_OK);
    int ordered = 1, cycle = 1;
    for (size_t i = 0; i < k; i++) {
        if (i && out[i].timestamp_us <= out[i - 1].timestamp_us)
            ordered = 0;
        if (out[i].device != (int)(i % 3) || *(const int *)out[i].image != out[i].device * 1000 + (int)(i / 3))
            cycle = 0;
        KS_CHECK_NEAR(out[i].pose.t[0], 100.0 * out[i].device, 0);
    }
    KS_CHECK(ordered);
    KS_CHECK(cycle);
    KS_CHECK_INT(st.frames, 90);
    KS_CHECK_NEAR(st.min_gap_us, 11111, 0.5);
    KS_CHECK_NEAR(st.max_gap_us, 11111, 0.5);
    KS_CHECK_NEAR(st.rate_hz, 90, 0.01);
    /* equal timestamps: device order */
    ks_stream_frame tie[2] = {{1, 5, NULL, {{0}, {0}}}, {0, 5, NULL, {{0}, {0}}}}, tout[2];
    KS_CHECK_INT(ks_interleave(tie, 2, poses, 3, tout, NULL, &err), KS_OK);
    KS_CHECK_INT(tout[0].device, 0);
    tie[0].device = 7;
    KS_CHECK_INT(ks_interleave(tie, 2, poses, 3, tout, NULL, &err), KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "device 7");
}

static void test_rig_poses(void)
{
    const char *good = "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [\n"
                       " {\"serial\": \"000123\", \"depth_to_rig\": {\"R\": [1,0,0, 0,1,0, 0,0,1], \"t\": [0,0,0]}},\n"
                       " {\"serial\": \"000456\", \"depth_to_rig\": {\"R\": [0,-1,0, 1,0,0, 0,0,1], \"t\": [500,0,10]},\n"
                       "  \"color_to_rig\": {\"rotation\": [1,0,0, 0,1,0, 0,0,1], \"translation_m\": [0.032,0,0]}}]}";
    ks_rig_pose *p;
    size_t n;
    ks_error err;
    KS_CHECK_INT(ks_rig_poses_parse(good, strlen(good), "rc.json", &p, &n, &err), KS_OK);
    KS_CHECK_INT(n, 2);
    const ks_rig_pose *q = ks_rig_pose_find(p, n, "000456");
    KS_CHECK(q != NULL);
    if (q) {
        KS_CHECK_NEAR(q->depth_to_rig.t[0], 500, 0);
        KS_CHECK_NEAR(q->depth_to_rig.R[1], -1, 0);
        KS_CHECK_NEAR(q->color_to_rig.t[0], 32, 1e-9);
    }
    KS_CHECK(ks_rig_pose_find(p, n, "nope") == NULL);
    KS_CHECK_NEAR(p[0].color_to_rig.R[0], 1, 0);
    free(p);
    const char *bad[] = {
        "{",
        "{\"devices\": []}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": []}",
        "{\"format\": \"other\", \"version\": 1, \"devices\": [{\"serial\": \"a\", \"depth_to_rig\": "
        "{\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [0,0,0]}}]}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [{\"depth_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [0,0,0]}}]}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [{\"serial\": \"a\", \"depth_to_rig\": {\"R\": [2,0,0,0,1,0,0,0,1], \"t\": [0,0,0]}}]}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [{\"serial\": \"a\", \"depth_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [0,0]}}]}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [{\"serial\": \"a\"}]}",
        "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, \"devices\": [{\"serial\": \"a\", \"depth_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [0,0,0]}},"
        " {\"serial\": \"a\", \"depth_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [0,0,0]}}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KS_CHECK_MSG(ks_rig_poses_parse(bad[i], strlen(bad[i]), "rc.json", &p, &n, &err) == KS_EPARSE, "case %zu", i);
        KS_CHECK_CONTAINS(err.message, "rc.json");
        KS_CHECK(p == NULL && n == 0);
    }
    KS_CHECK_INT(ks_rig_poses_load("/nonexistent/rig-calibration.json", &p, &n, &err), KS_ENOTFOUND);
    const char *v2 = "{\"format\": \"kinsync-rig-calibration\", \"version\": 2, \"devices\": []}";
    KS_CHECK_INT(ks_rig_poses_parse(v2, strlen(v2), "rc.json", &p, &n, &err), KS_EUNSUPPORTED);
    KS_CHECK_CONTAINS(err.message, "version");
}

/* One partition takes its own add path (records in place, runs from a pass marking cell
 * changes); two partitions the general one, every partition at once and one partition at a time (a
 * partition filter, as threads adding to their own partitions would). All must give
 * the same voxels bit for bit, on rows of points with holes (no depth) of 1, 3 and 70 points placed
 * across the 64-point blocks, runs that continue from one block into the next, and several
 * devices. */
static void test_one_partition_path(void)
{
    ks_error err;
    const size_t W = 640, H = 40, n = W * H;
    float *px = malloc(n * sizeof *px), *py = malloc(n * sizeof *py), *pz = malloc(n * sizeof *pz);
    ks_voxel_grid *g1, *g2, *g3;
    KS_CHECK_INT(ks_voxel_grid_create(5, 0, 1, &g1, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(5, 0, 2, &g2, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(5, 0, 2, &g3, &err), KS_OK);
    size_t holes = 0;
    for (int dev = 0; dev < 3; dev++) {
        for (size_t v = 0; v < H; v++)
            for (size_t u = 0; u < W; u++) {
                size_t i = v * W + u;
                /* an oblique surface: a row crosses a cell every ~16-40 points, rows revisit cells */
                px[i] = (float)u * 4.3f - 1300.0f + (float)dev * 0.7f;
                py[i] = (float)v * 5.3f + (float)u * 0.05f;
                pz[i] = 1500.0f + (float)u * 0.9f + (float)(v % 7) * 0.3f;
                size_t in_block = i % 64;
                bool hole = (v % 5 == 1 && in_block == 63) ||          /* last point of a block */
                            (v % 5 == 2 && in_block == 0) ||           /* first point of a block */
                            (v % 5 == 3 && u >= 126 && u < 129) ||     /* 3 points across a block boundary */
                            (v % 5 == 4 && u >= 300 && u < 370) ||     /* a whole block without depth */
                            (dev == 1 && u % 97 == 5);
                if (hole) {
                    px[i] = py[i] = pz[i] = NAN;
                    holes++;
                }
            }
        KS_CHECK_INT(ks_voxel_grid_add(g1, -1, dev, px, py, pz, NULL, NULL, NULL, NULL, n, &err), KS_OK);
        KS_CHECK_INT(ks_voxel_grid_add(g2, -1, dev, px, py, pz, NULL, NULL, NULL, NULL, n, &err), KS_OK);
        for (int part = 0; part < 2; part++)
            KS_CHECK_INT(ks_voxel_grid_add(g3, part, dev, px, py, pz, NULL, NULL, NULL, NULL, n, &err), KS_OK);
    }
    ks_cloud c1 = {0}, c2 = {0}, c3 = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g1, 0, &c1, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_extract(g2, 0, &c2, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_extract(g3, 0, &c3, &err), KS_OK);
    KS_CHECK(c1.count > 20000);
    KS_CHECK_INT(c1.count, c2.count);
    KS_CHECK_INT(c1.count, c3.count);
    uint64_t w = 0;
    for (size_t i = 0; i < c1.count; i++)
        w += c1.weight[i];
    KS_CHECK_INT(w, 3 * n - holes);
    if (c1.count == c2.count && c1.count == c3.count) {
        ks_test_voxel *a = ks_test_sorted_voxels(&c1), *b = ks_test_sorted_voxels(&c2), *c = ks_test_sorted_voxels(&c3);
        size_t differ = 0, differ3 = 0;
        for (size_t i = 0; i < c1.count; i++) {
            differ += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
            differ3 += memcmp(&a[i], &c[i], sizeof a[i]) != 0;
        }
        KS_CHECK_INT(differ, 0);
        KS_CHECK_INT(differ3, 0);
        free(a);
        free(b);
        free(c);
    }
    ks_cloud_free(&c1);
    ks_cloud_free(&c2);
    ks_cloud_free(&c3);
    ks_voxel_grid_destroy(g1);
    ks_voxel_grid_destroy(g2);
    ks_voxel_grid_destroy(g3);
    free(px);
    free(py);
    free(pz);
}

/* The pipeline's output in blocks (ks_voxel_grid_aggregate_into): the writers' store, three
 * partitions summed in two scratch slots, each written in blocks of 37 voxels (so cells are cut
 * where a block ends) placed in reverse order of a round-robin deal, must give the voxels of one
 * partition extracted at once, bit for bit, colours included; a partition given one block too few
 * is refused (an error, never a write past its room). The devices (0, 7, 8, 23, 24 and 31: where
 * the colour path keeps them in its colour lanes, every lane and both ends of each) give the same
 * positions, weights and device masks as a grid without colour, whose devices have their own array. */
static void test_blocked_output(void)
{
    ks_error err;
    const size_t W = 640, H = 40, n = W * H, B = 37;
    float *px = malloc(n * sizeof *px), *py = malloc(n * sizeof *py), *pz = malloc(n * sizeof *pz);
    uint32_t *col = malloc(n * sizeof *col);
    ks_voxel_grid *g1, *g3, *g0;
    KS_CHECK_INT(ks_voxel_grid_create(5, 0, 1, &g0, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(5, KS_CLOUD_COLOR, 1, &g1, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_create(5, KS_CLOUD_COLOR, 3, &g3, &err), KS_OK);
    size_t maxpts[2] = {2 * n, 2 * n};
    KS_CHECK_INT(ks_voxel_grid_writers(g0, 2, maxpts, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_writers(g1, 2, maxpts, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_writers(g3, 2, maxpts, &err), KS_OK);
    const int devs[6] = {0, 7, 8, 23, 24, 31};
    for (int di = 0; di < 6; di++) {
        const int dev = devs[di];
        for (size_t v = 0; v < H; v++)
            for (size_t u = 0; u < W; u++) {
                size_t i = v * W + u;
                /* each device sees its own part of the surface, overlapping its neighbours' */
                bool seen = u >= (size_t)di * 80 && u < (size_t)di * 80 + 260;
                px[i] = seen ? (float)u * 4.3f - 1300.0f + (float)di * 0.7f : NAN;
                py[i] = (float)v * 5.3f + (float)u * 0.05f;
                pz[i] = 1500.0f + (float)u * 0.9f + (float)(v % 7) * 0.3f;
                col[i] = u % 11 == 3 ? 0 : 0x01000000u | (uint32_t)((u * 7 + v) & 255) | (uint32_t)(dev * 40) << 8 |
                                                (uint32_t)(v * 5 & 255) << 16;
            }
        ks_voxel_grid_add_writer(g0, di % 2, dev, px, py, pz, NULL, NULL, NULL, NULL, n);
        ks_voxel_grid_add_writer(g1, di % 2, dev, px, py, pz, col, NULL, NULL, NULL, n);
        ks_voxel_grid_add_writer(g3, di % 2, dev, px, py, pz, col, NULL, NULL, NULL, n);
    }
    ks_cloud ref = {0}, blk = {0}, got = {0}, plain = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g1, 0, &ref, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_extract(g0, 0, &plain, &err), KS_OK);
    KS_CHECK(ref.count > 10000);
    KS_CHECK_INT(plain.count, ref.count);
    if (plain.count == ref.count) { /* the colour path's devices and positions against the plain path's */
        ks_test_voxel *a = ks_test_sorted_voxels(&plain), *b = ks_test_sorted_voxels(&ref);
        size_t differ = 0, multi = 0;
        uint32_t all = 0;
        for (size_t i = 0; i < ref.count; i++) {
            differ += a[i].x != b[i].x || a[i].y != b[i].y || a[i].z != b[i].z || a[i].weight != b[i].weight ||
                      a[i].devices != b[i].devices;
            multi += (b[i].devices & (b[i].devices - 1)) != 0;
            all |= b[i].devices;
        }
        printf("  colour path against plain: %zu voxels, %zu differ; %zu seen by 2+ devices, mask %08x\n", ref.count,
               differ, multi, all);
        KS_CHECK_INT(differ, 0);
        KS_CHECK(multi > 1000);
        KS_CHECK_INT(all, 1u << 0 | 1u << 7 | 1u << 8 | 1u << 23 | 1u << 24 | 1u << 31);
        free(a);
        free(b);
    }
    /* the blocks: round-robin over the partitions, then placed in reverse order */
    size_t nb[3], total_blocks = 0;
    for (int p = 0; p < 3; p++) {
        nb[p] = (ks_voxel_grid_part_records(g3, p) + B - 1) / B;
        total_blocks += nb[p];
    }
    size_t *at[3];
    for (int p = 0; p < 3; p++)
        at[p] = malloc(nb[p] * sizeof *at[p]);
    size_t r = 0;
    for (size_t k = 0; r < total_blocks; k++)
        for (int p = 0; p < 3; p++)
            if (k < nb[p])
                at[p][k] = (total_blocks - 1 - r++) * B;
    unsigned fields = ks_voxel_grid_fields(g3);
    KS_CHECK_INT(ks_cloud_reserve(&blk, total_blocks * B, fields, &err), KS_OK);
    KS_CHECK_INT(ks_cloud_reserve(&got, ref.count, fields, &err), KS_OK);
    for (int p = 0; p < 3; p++) {
        size_t w = 0;
        KS_CHECK_INT(ks_voxel_grid_aggregate_into(g3, p, p % 2, 0, &blk, at[p], nb[p], B, &w, NULL, &err), KS_OK);
        KS_CHECK(w > 500);
        KS_CHECK(got.count + w <= ref.count);
        for (size_t k = 0; k < w && got.count + w <= ref.count; k++) {
            size_t src = at[p][k / B] + k % B, dst = got.count + k;
            got.x[dst] = blk.x[src];
            got.y[dst] = blk.y[src];
            got.z[dst] = blk.z[src];
            got.weight[dst] = blk.weight[src];
            got.devices[dst] = blk.devices[src];
            memcpy(got.rgb + 3 * dst, blk.rgb + 3 * src, 3);
        }
        got.count += w;
        /* one block fewer than its voxels fill: refused */
        size_t need = (w + B - 1) / B, w2 = 0;
        KS_CHECK_INT(ks_voxel_grid_aggregate_into(g3, p, 0, 0, &blk, at[p], need - 1, B, &w2, NULL, &err), KS_ESTATE);
    }
    KS_CHECK_INT(got.count, ref.count);
    if (got.count == ref.count) {
        ks_test_voxel *a = ks_test_sorted_voxels(&ref), *b = ks_test_sorted_voxels(&got);
        size_t differ = 0;
        for (size_t i = 0; i < ref.count; i++)
            differ += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
        printf("  %zu voxels in blocks of %zu, %zu differ from one partition\n", got.count, B, differ);
        KS_CHECK_INT(differ, 0);
        free(a);
        free(b);
    }
    for (int p = 0; p < 3; p++)
        free(at[p]);
    ks_cloud_free(&ref);
    ks_cloud_free(&blk);
    ks_cloud_free(&got);
    ks_cloud_free(&plain);
    ks_voxel_grid_destroy(g0);
    ks_voxel_grid_destroy(g1);
    ks_voxel_grid_destroy(g3);
    free(px);
    free(py);
    free(pz);
    free(col);
}

/* A voxel's colour is the rounded mean of its points' colours, (sum + n / 2) / n, on the pipeline's
 * path (colour without normals, every voxel): two points 10 and 11 give 11, not 10; 999 points of
 * one voxel give the integer formula's value for each channel. */
static void test_color_mean_rounding(void)
{
    ks_error err;
    enum { N = 999 };
    float x[N + 2], y[N + 2], z[N + 2];
    uint8_t rgb[3 * (N + 2)];
    uint64_t sum[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) { /* one voxel at (0, 0, 0) */
        x[i] = 1.0f, y[i] = 1.5f, z[i] = 2.0f;
        for (int c = 0; c < 3; c++) {
            rgb[3 * i + c] = (uint8_t)((i * (7 + 13 * c)) % 256);
            sum[c] += rgb[3 * i + c];
        }
    }
    for (int i = N; i < N + 2; i++) { /* another voxel, 10 mm away: colours 10/20/30 and 11/21/31 */
        x[i] = 11.0f, y[i] = 1.5f, z[i] = 2.0f;
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)(10 * (c + 1) + (i - N));
    }
    ks_voxel_grid *g;
    KS_CHECK_INT(ks_voxel_grid_create(5, KS_CLOUD_COLOR, 1, &g, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 0, x, y, z, rgb, NULL, NULL, NULL, N + 2, &err), KS_OK);
    ks_cloud c = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g, 0, &c, &err), KS_OK);
    KS_CHECK_INT(c.count, 2);
    for (size_t k = 0; k < c.count && c.rgb; k++) {
        if (c.weight[k] == N) {
            for (int ch = 0; ch < 3; ch++)
                KS_CHECK_INT(c.rgb[3 * k + ch], (int)((sum[ch] + N / 2) / N));
        } else {
            KS_CHECK_INT(c.weight[k], 2);
            KS_CHECK_INT(c.rgb[3 * k], 11);
            KS_CHECK_INT(c.rgb[3 * k + 1], 21);
            KS_CHECK_INT(c.rgb[3 * k + 2], 31);
        }
    }
    ks_cloud_free(&c);
    ks_voxel_grid_destroy(g);
}

/* Voxels of counts[0..nv) points (voxel v at x = x0 + pitch v), each channel's sums chosen so that
 * the dividend sum + n / 2 is k n + n - 1 (just below the next integer: the case a float quotient
 * can round up), k n (exact) and k n - 1: every voxel's mean colour must be the integer formula. */
static void check_color_means(const uint32_t *counts, int nv, float x0, float pitch)
{
    size_t total = 0;
    for (int v = 0; v < nv; v++)
        total += counts[v];
    float *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y), *z = malloc(total * sizeof *z);
    uint8_t *rgb = malloc(total * 3), (*want)[3] = malloc((size_t)nv * sizeof *want);
    size_t at = 0;
    for (int v = 0; v < nv; v++) {
        const uint32_t n = counts[v], h = n / 2, k = 1 + n % 250;
        const uint64_t a[3] = {(uint64_t)k * n + n - 1, (uint64_t)k * n, (uint64_t)k * n - 1};
        for (int ch = 0; ch < 3; ch++)
            want[v][ch] = (uint8_t)(a[ch] / n);
        for (uint32_t i = 0; i < n; i++, at++) {
            x[at] = x0 + pitch * (float)v, y[at] = 1.5f, z[at] = 2.0f;
            for (int ch = 0; ch < 3; ch++) { /* sum a - h: n points of (a - h) / n, (a - h) % n of them one more */
                uint64_t t = a[ch] - h;
                rgb[3 * at + ch] = (uint8_t)(t / n + (i < t % n));
            }
        }
    }
    ks_error err;
    ks_voxel_grid *g;
    KS_CHECK_INT(ks_voxel_grid_create(5, KS_CLOUD_COLOR, 1, &g, &err), KS_OK);
    KS_CHECK_INT(ks_voxel_grid_add(g, -1, 0, x, y, z, rgb, NULL, NULL, NULL, total, &err), KS_OK);
    ks_cloud c = {0};
    KS_CHECK_INT(ks_voxel_grid_extract(g, 0, &c, &err), KS_OK);
    KS_CHECK_INT(c.count, nv);
    int bad = 0;
    for (size_t j = 0; j < c.count && c.rgb; j++) {
        int v = (int)lroundf((c.x[j] - x0) / pitch);
        KS_CHECK_MSG(v >= 0 && v < nv && c.weight[j] == counts[v], "voxel %zu: weight %u", j, c.weight[j]);
        if (v < 0 || v >= nv)
            continue;
        for (int ch = 0; ch < 3; ch++)
            if (c.rgb[3 * j + ch] != want[v][ch] && bad++ < 10)
                KS_CHECK_MSG(0, "%u points, channel %d: %d, want %d", counts[v], ch, c.rgb[3 * j + ch], want[v][ch]);
    }
    KS_CHECK_INT(bad, 0);
    ks_cloud_free(&c);
    ks_voxel_grid_destroy(g);
    free(x), free(y), free(z), free(rgb), free(want);
}

/* The rounded mean of every voxel's colour is exactly the integer formula (sum + n / 2) / n at the
 * hardest sums (check_color_means), for counts from 1 to 70000 points: first each voxel in its own
 * cell (70000 makes its cell wide: summed in 64 bits, the double path; the others one voxel a cell),
 * then the counts up to 4097 as 24 voxels of one narrow cell, so that the means are computed by the
 * vectorized loop over a cell's voxels (8 or 16 at a time) and its remainder. */
static void test_color_mean_exact(void)
{
    static const uint32_t counts[] = {1,    2,    3,    4,     5,     6,     7,     9,     15,    16,   17,
                                      31,   63,   64,   100,   127,   255,   256,   257,   999,   1000, 1023,
                                      4095, 4097, 8191, 12345, 30001, 32767, 40000, 65000, 65535, 70000};
    enum { NV = sizeof counts / sizeof counts[0] };
    check_color_means(counts, NV, 1.0f, 200.0f); /* 200 mm apart: one cell each */
    check_color_means(counts, 24, 2.5f, 5.0f);   /* voxels 0..23 of the cell at the origin */
}

int main(void)
{
    KS_RUN(test_voxel_average);
    KS_RUN(test_two_devices_one_surface);
    KS_RUN(test_threads_agree);
    KS_RUN(test_stealing_same_output);
    KS_RUN(test_keep_points);
    KS_RUN(test_two_pipelines_at_once);
    KS_RUN(test_voxel_sum_paths);
    KS_RUN(test_one_partition_path);
    KS_RUN(test_blocked_output);
    KS_RUN(test_color_mean_rounding);
    KS_RUN(test_color_mean_exact);
    KS_RUN(test_full_cell);
    KS_RUN(test_occlusion_fill);
    KS_RUN(test_render_zbuffer);
    KS_RUN(test_interleave);
    KS_RUN(test_rig_poses);
    return KS_TEST_END();
}
