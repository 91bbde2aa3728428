/* Fusion on the simulator: a 3-device daisy chain renders the simulated room (exact depth, no
 * noise, no board); the devices' own factory calibrations and their ground-truth poses go into the
 * pipeline, and every fused point must lie on the true scene surfaces (ks_sim_scene_distance):
 * the correctness criterion, median error < 1 mm with exact depth and calibration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/calibration.h"
#include "kinsync/fuse.h"
#include "kinsync/sim.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

enum { NDEV = 3 };

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_fused_points_on_scene(void)
{
    ks_rig rig;
    simt_rig(&rig, NDEV, SIMT_DAISY, 2.0);
    ks_sim_config cfg;
    simt_config(&cfg, 11, true);
    cfg.depth_noise_mm = 0;
    cfg.sensor = false; /* exact geometry: this checks the fusion to the millimetre, not the sensor */
    cfg.board = false;
    cfg.render_color = false;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    for (int i = 0; i < NDEV; i++) /* subordinates offset by 160 us: no laser interference */
        simt_device_config(&rig, i, &r.cfg[i], 0, (uint32_t)(160 * i));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_fuse_device dev[NDEV];
    ks_capture *cap[NDEV] = {0};
    ks_error err;
    memset(dev, 0, sizeof dev);
    for (int i = 0; i < NDEV; i++) {
        char *js = NULL;
        size_t len = 0;
        KS_CHECK_INT(ks_device_get_calibration_json(r.dev[i], &js, &len, &err), KS_OK);
        KS_CHECK_INT(ks_calibration_from_json(js, len, r.cfg[i].depth_mode, KS_COLOR_OFF, &dev[i].calibration, &err),
                     KS_OK);
        free(js);
        KS_CHECK_INT(ks_sim_device_pose(r.sim, i, &dev[i].depth_to_rig, &err), KS_OK);
        /* the third capture: past any start-up effect */
        for (int k = 0; k < 3; k++) {
            if (cap[i])
                ks_capture_release(cap[i]);
            cap[i] = NULL;
            KS_CHECK_INT(ks_device_get_capture(r.dev[i], &cap[i], 5000, &err), KS_OK);
        }
        KS_CHECK(cap[i] && cap[i]->depth);
    }
    ks_fuse_options o = {.voxel_mm = 5, .threads = 2, .keep_points = true};
    ks_fuse *f = NULL;
    KS_CHECK_INT(ks_fuse_create(dev, NDEV, &o, &f, &err), KS_OK);
    ks_fuse_input in[NDEV];
    memset(in, 0, sizeof in);
    for (int i = 0; i < NDEV; i++)
        if (cap[i] && cap[i]->depth) {
            in[i].depth = (const uint16_t *)cap[i]->depth->data;
            in[i].depth_stride = (size_t)cap[i]->depth->stride / 2;
        }
    ks_cloud c = {0};
    ks_fuse_stats st;
    KS_CHECK_INT(ks_fuse_run(f, in, &c, &st, &err), KS_OK);
    uint64_t t = ks_sim_now_ns(r.sim);
    /* every device's points, then the merged voxels */
    for (int i = 0; i <= NDEV; i++) {
        const float *x, *y, *z;
        int w = 0, h = 0;
        size_t n;
        if (i < NDEV) {
            ks_fuse_points(f, i, &x, &y, &z, &w, &h);
            n = (size_t)w * (size_t)h;
        } else {
            x = c.x, y = c.y, z = c.z, n = c.count;
        }
        double *e = malloc((n ? n : 1) * sizeof *e);
        size_t m = 0;
        for (size_t k = 0; k < n; k += (i < NDEV ? 7 : 5)) { /* a sample: the scene query is not free */
            if (!(x[k] == x[k]))
                continue;
            double p[3] = {x[k], y[k], z[k]};
            e[m++] = ks_sim_scene_distance(r.sim, p, t);
        }
        qsort(e, m, sizeof *e, cmp_d);
        double med = m ? e[m / 2] : 1e9, p90 = m ? e[m * 9 / 10] : 1e9;
        printf("  %s: %zu sampled, distance to the scene median %.3f mm, 90%% %.3f mm\n",
               i < NDEV ? "device points" : "fused voxels", m, med, p90);
        KS_CHECK(m > 1000);
        KS_CHECK(med < 1.0);
        KS_CHECK(p90 < 3.0);
        free(e);
    }
    printf("  %zu + %zu + %zu points -> %zu voxels, %zu seen by 2+ devices\n", st.points[0], st.points[1],
           st.points[2], st.voxels, st.voxels_shared);
    KS_CHECK(st.voxels_shared > 0);
    ks_cloud_free(&c);
    ks_fuse_destroy(f);
    for (int i = 0; i < NDEV; i++)
        if (cap[i])
            ks_capture_release(cap[i]);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_fused_points_on_scene);
    return KS_TEST_END();
}
