/* Joint rig calibration on synthetic data with ground truth: 9 devices on a ring, 60 board
 * poses, exact intrinsics, 0.1 px and 0.3 px corner noise; disconnected graphs; PnP; output file. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "calib/synth_scene.h"
#include "kinsync/rigcalib.h"
#include "ks_test.h"

static void errors_vs_truth(const ks_synth_scene *sc, const ks_rigcal_result *r, double *max_rot, double *max_tr)
{
    *max_rot = *max_tr = 0;
    for (int i = 0; i < r->device_count; i++) {
        double er = ks_synth_rot_diff_deg(r->devices[i].depth_to_rig.R, sc->true_depth_to_rig[i].R);
        double et = ks_synth_trans_diff_mm(r->devices[i].depth_to_rig.t, sc->true_depth_to_rig[i].t);
        double ecr = ks_synth_rot_diff_deg(r->devices[i].color_to_rig.R, sc->true_color_to_rig[i].R);
        double ect = ks_synth_trans_diff_mm(r->devices[i].color_to_rig.t, sc->true_color_to_rig[i].t);
        *max_rot = fmax(*max_rot, fmax(er, ecr));
        *max_tr = fmax(*max_tr, fmax(et, ect));
    }
}

static void run_ring(double noise, double rot_limit, double tr_limit, uint64_t seed)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.noise_px = noise;
    so.seed = seed;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    ks_rigcal_result r;
    ks_status st = ks_rigcal_solve(&sc.problem, NULL, &r, &err);
    KS_CHECK_MSG(st == KS_OK, "%s", err.message);
    if (st) {
        ks_synth_scene_free(&sc);
        return;
    }
    double mr, mt;
    errors_vs_truth(&sc, &r, &mr, &mt);
    printf("noise %.1f px: %d obs, %d views, rms %.3f px (initial %.3f), %d iterations, %.3f s; max error %.4f deg "
           "%.3f mm; triangulated %d, board fit %.3f mm\n",
           noise, r.used_obs, r.used_views, r.rms_px, r.initial_rms_px, r.iterations, r.solve_seconds, mr, mt,
           r.triangulated_points, r.board_fit_rms_mm);
    for (int i = 0; i < r.device_count; i++) {
        double er = ks_synth_rot_diff_deg(r.devices[i].depth_to_rig.R, sc.true_depth_to_rig[i].R);
        double et = ks_synth_trans_diff_mm(r.devices[i].depth_to_rig.t, sc.true_depth_to_rig[i].t);
        printf("  device %d: %d views, rms %.3f px, error %.4f deg %.3f mm, sigma %.4f deg %.3f mm, rays %.3f mm\n", i,
               r.devices[i].views, r.devices[i].rms_px, er, et, r.devices[i].rotation_sigma_deg,
               r.devices[i].position_sigma_mm, r.devices[i].ray_rms_mm);
        KS_CHECK_MSG(er < rot_limit, "device %d rotation error %.4f deg >= %.3f", i, er, rot_limit);
        KS_CHECK_MSG(et < tr_limit, "device %d translation error %.3f mm >= %.1f", i, et, tr_limit);
        if (i != 0) {
            /* the reported uncertainty is meaningful: the error is within a few sigma */
            KS_CHECK_MSG(er < 6 * r.devices[i].rotation_sigma_deg + 1e-4, "device %d: error %.4f deg vs sigma %.4f", i,
                         er, r.devices[i].rotation_sigma_deg);
            KS_CHECK(r.devices[i].position_sigma_mm > 0);
        }
        KS_CHECK_NEAR(r.devices[i].rms_px, noise * sqrt(2.0), noise * 0.3);
    }
    KS_CHECK(r.used_views >= 60);
    KS_CHECK_INT(r.rejected_views, 0); /* clean data: nothing is thrown away */
    KS_CHECK(r.triangulated_points > 100);
    KS_CHECK_MSG(r.board_fit_rms_mm < 2.0, "board fit %.3f mm", r.board_fit_rms_mm);
    ks_rigcal_result_free(&r);
    ks_synth_scene_free(&sc);
}

static void test_ring_01px(void) { run_ring(0.1, 0.02, 1.0, 1); }
static void test_ring_03px(void) { run_ring(0.3, 0.05, 2.0, 2); }

static void test_outliers_robust(void)
{
    /* 2 % of the corners moved by 5..25 px: the robust loss keeps the answer */
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.seed = 3;
    so.frames = 60;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    ks_synth_rng rng = {99};
    for (int k = 0; k < sc.obs_count; k++)
        if (ks_synth_uniform(&rng) < 0.02) {
            sc.obs[k].uv[0] += 5 + 20 * ks_synth_uniform(&rng);
            sc.obs[k].uv[1] -= 5 + 20 * ks_synth_uniform(&rng);
        }
    ks_rigcal_options o;
    ks_rigcal_options_default(&o);
    o.loss = KS_LOSS_CAUCHY;
    ks_rigcal_result r;
    KS_CHECK_INT(ks_rigcal_solve(&sc.problem, &o, &r, &err), KS_OK);
    double mr, mt;
    errors_vs_truth(&sc, &r, &mr, &mt);
    printf("2%% outliers, Cauchy: max error %.4f deg %.3f mm\n", mr, mt);
    KS_CHECK(mr < 0.05);
    KS_CHECK(mt < 2.0);
    ks_rigcal_result_free(&r);
    ks_synth_scene_free(&sc);
}

/* One whole view is wrong (its corners shifted by 120 px: a consistent but false board pose, like
 * a mismatched frame): the initialization skips it and the Cauchy loss keeps it from pulling. */
static void test_bad_view(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.seed = 6;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    int dev = 4, frame = -1, moved = 0;
    for (int k = 0; k < sc.obs_count && frame < 0; k++)
        if (sc.obs[k].device == dev)
            frame = sc.obs[k].frame;
    for (int k = 0; k < sc.obs_count; k++)
        if (sc.obs[k].device == dev && sc.obs[k].frame == frame) {
            sc.obs[k].uv[0] += 120;
            moved++;
        }
    KS_CHECK(moved >= 8);
    for (int loss = KS_LOSS_HUBER; loss <= KS_LOSS_HUBER; loss++) { /* the default; Cauchy gives the same */
        ks_rigcal_options o;
        ks_rigcal_options_default(&o);
        o.loss = (ks_rigcal_loss)loss;
        ks_rigcal_result r;
        KS_CHECK_INT(ks_rigcal_solve(&sc.problem, &o, &r, &err), KS_OK);
        double mr, mt;
        errors_vs_truth(&sc, &r, &mr, &mt);
        printf("one view of device %d shifted by 120 px (%d corners), loss %d: %d views rejected, max error %.4f deg "
               "%.3f mm\n", dev, moved, loss, r.rejected_views, mr, mt);
        /* the bad view, and possibly its frame-set partner (with two views, either can be "the" outlier) */
        KS_CHECK(r.rejected_views >= 1 && r.rejected_views <= 2);
        KS_CHECK(mr < 0.02);
        KS_CHECK(mt < 1.0);
        ks_rigcal_result_free(&r);
    }
    ks_synth_scene_free(&sc);
}

static void test_disconnected(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.frames = 40;
    so.seed = 4;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    ks_rigcal_obs *all = malloc(sizeof(ks_rigcal_obs) * (size_t)sc.obs_count);
    memcpy(all, sc.obs, sizeof(ks_rigcal_obs) * (size_t)sc.obs_count);
    int total = sc.obs_count;
    /* 1. device 4 never sees the board: named with its serial */
    int n = 0;
    for (int k = 0; k < total; k++)
        if (all[k].device != 4)
            sc.obs[n++] = all[k];
    sc.problem.obs_count = n;
    ks_rigcal_result r;
    ks_status st = ks_rigcal_solve(&sc.problem, NULL, &r, &err);
    KS_CHECK_INT(st, KS_EINVAL);
    if (st == KS_OK)
        ks_rigcal_result_free(&r);
    printf("message: %s\n", err.message);
    KS_CHECK_CONTAINS(err.message, "device 4");
    KS_CHECK_CONTAINS(err.message, sc.devices[4].serial);
    /* 2. devices 0-4 only in even frame sets, 5-8 only in odd ones: two groups that never meet */
    n = 0;
    for (int k = 0; k < total; k++)
        if ((all[k].device <= 4) == (all[k].frame % 2 == 0))
            sc.obs[n++] = all[k];
    sc.problem.obs_count = n;
    st = ks_rigcal_solve(&sc.problem, NULL, &r, &err);
    KS_CHECK_INT(st, KS_EINVAL);
    if (st == KS_OK)
        ks_rigcal_result_free(&r);
    printf("message: %s\n", err.message);
    KS_CHECK_CONTAINS(err.message, "connected");
    KS_CHECK_CONTAINS(err.message, "8 (");
    KS_CHECK_CONTAINS(err.message, sc.devices[7].serial);
    KS_CHECK_CONTAINS(err.message, sc.devices[0].serial);
    /* 3. one bridging frame set restores the connection */
    for (int k = 0; k < total; k++)
        if (all[k].frame % 2 == 1 && all[k].device <= 4 && (all[k].device == 4 || all[k].device == 0))
            sc.obs[n++] = all[k];
    sc.problem.obs_count = n;
    st = ks_rigcal_solve(&sc.problem, NULL, &r, &err);
    KS_CHECK_MSG(st == KS_OK, "bridged: %s", err.message);
    if (st == KS_OK)
        ks_rigcal_result_free(&r);
    free(all);
    ks_synth_scene_free(&sc);
}

static void test_pnp(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 1;
    so.frames = 5;
    so.noise_px = 0.0;
    so.max_view_angle_deg = 80;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    double P[144][3], uv[144][2];
    int tested = 0;
    for (int f = 0; f < so.frames; f++) {
        int n = 0;
        for (int k = 0; k < sc.obs_count && n < 144; k++)
            if (sc.obs[k].frame == f) {
                ks_board_corner(&sc.board, sc.obs[k].tag_id, sc.obs[k].corner, P[n]);
                uv[n][0] = sc.obs[k].uv[0];
                uv[n][1] = sc.obs[k].uv[1];
                n++;
            }
        if (n < 8)
            continue;
        ks_extrinsics e, truth, r2c;
        double rms;
        KS_CHECK(ks_board_pnp(&sc.devices[0].intrinsics, (const double(*)[3])P, (const double(*)[2])uv, n, &e, &rms));
        ks_extrinsics_invert(&sc.true_color_to_rig[0], &r2c);
        ks_extrinsics_compose(&sc.true_board_to_rig[f], &r2c, &truth);
        KS_CHECK_NEAR(ks_synth_rot_diff_deg(e.R, truth.R), 0, 1e-6);
        KS_CHECK_NEAR(ks_synth_trans_diff_mm(e.t, truth.t), 0, 1e-4);
        KS_CHECK(rms < 1e-6);
        tested++;
    }
    KS_CHECK(tested >= 1);
    ks_synth_scene_free(&sc);
}

static void test_output_file(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 4;
    so.frames = 30;
    so.seed = 5;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    ks_rigcal_result r;
    if (ks_rigcal_solve(&sc.problem, NULL, &r, &err) != KS_OK) {
        KS_CHECK_MSG(0, "%s", err.message);
        ks_synth_scene_free(&sc);
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/test_rigcal_%d.json", KS_BINARY_DIR, (int)getpid());
    KS_CHECK_INT(ks_rigcal_write_json(&sc.problem, &r, path, &err), KS_OK);
    /* the layout the fusion step reads: devices[].serial, depth_to_rig / color_to_rig {R[9], t[3] mm} */
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    KS_CHECK_MSG(root != NULL, "%s", je.text);
    KS_CHECK_STR(json_string_value(json_object_get(root, "format")), "kinsync-rig-calibration");
    KS_CHECK_INT(json_integer_value(json_object_get(root, "version")), 1);
    json_t *devs = json_object_get(root, "devices");
    KS_CHECK_INT(json_array_size(devs), 4);
    for (size_t i = 0; i < json_array_size(devs); i++) {
        json_t *d = json_array_get(devs, i);
        KS_CHECK_STR(json_string_value(json_object_get(d, "serial")), sc.devices[i].serial);
        KS_CHECK(json_is_true(json_object_get(d, "reference")) == (i == 0));
        const char *keys[2] = {"depth_to_rig", "color_to_rig"};
        const ks_extrinsics *want[2] = {&r.devices[i].depth_to_rig, &r.devices[i].color_to_rig};
        for (int k = 0; k < 2; k++) {
            json_t *e = json_object_get(d, keys[k]);
            json_t *R = json_object_get(e, "R"), *t = json_object_get(e, "t");
            KS_CHECK_INT(json_array_size(R), 9);
            KS_CHECK_INT(json_array_size(t), 3);
            for (int m = 0; m < 9; m++)
                KS_CHECK_NEAR(json_number_value(json_array_get(R, m)), want[k]->R[m], 1e-12);
            for (int m = 0; m < 3; m++)
                KS_CHECK_NEAR(json_number_value(json_array_get(t, m)), want[k]->t[m], 1e-9);
        }
    }
    json_decref(root);
    unlink(path);
    /* an unwritable place is an error naming the file, and leaves nothing behind */
    KS_CHECK_INT(ks_rigcal_write_json(&sc.problem, &r, "/nonexistent-dir/rig.json", &err), KS_EIO);
    KS_CHECK_CONTAINS(err.message, "/nonexistent-dir/rig.json");
    ks_rigcal_result_free(&r);
    ks_synth_scene_free(&sc);
}

/* Depth image of the board plane seen by a depth camera, the plane moved `offset` mm back along
 * its normal (0 off the sheet). */
static void render_depth(const ks_board *b, const ks_intrinsics *in, const ks_extrinsics *b2d, double offset,
                         uint8_t *img)
{
    ks_extrinsics d2b;
    ks_extrinsics_invert(b2d, &d2b);
    double n[3] = {b2d->R[2], b2d->R[5], b2d->R[8]}; /* board z axis in the depth frame */
    double c = n[0] * b2d->t[0] + n[1] * b2d->t[1] + n[2] * b2d->t[2];
    for (int v = 0; v < in->height; v++)
        for (int u = 0; u < in->width; u++) {
            double uv[2] = {u, v}, xy[2];
            uint16_t z = 0;
            if (ks_unproject_ray(in, uv, xy)) {
                double den = n[0] * xy[0] + n[1] * xy[1] + n[2];
                double s0 = den != 0 ? c / den : -1; /* point on the plane = s0 * (x, y, 1) */
                double p[3] = {s0 * xy[0], s0 * xy[1], s0}, q[3];
                ks_extrinsics_apply(&d2b, p, q);
                if (s0 > 0 && ks_board_intensity(b, q[0], q[1]) >= 0)
                    z = (uint16_t)lround((c + offset) / den);
            }
            img[2 * ((size_t)v * in->width + u)] = (uint8_t)(z & 0xff);
            img[2 * ((size_t)v * in->width + u) + 1] = (uint8_t)(z >> 8);
        }
}

static void test_depth_plane_check(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 3;
    so.frames = 12;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    int dev = 1, frame = -1;
    for (int k = 0; k < sc.obs_count && frame < 0; k++)
        if (sc.obs[k].device == dev)
            frame = sc.obs[k].frame;
    KS_CHECK(frame >= 0);
    char *json = ks_calibration_json_synthesize(so.seed * 1000 + (uint64_t)dev, sc.devices[dev].serial);
    ks_calibration cal;
    KS_CHECK_INT(ks_calibration_from_json(json, strlen(json), KS_DEPTH_NFOV_UNBINNED, so.color, &cal, &err), KS_OK);
    free(json);
    ks_extrinsics rig_to_depth, b2d;
    ks_extrinsics_invert(&sc.true_depth_to_rig[dev], &rig_to_depth);
    ks_extrinsics_compose(&sc.true_board_to_rig[frame], &rig_to_depth, &b2d);
    uint8_t *img = malloc((size_t)cal.depth.width * cal.depth.height * 2);
    const double offsets[2] = {0.0, 5.0};
    for (int k = 0; k < 2; k++) {
        render_depth(&sc.board, &cal.depth, &b2d, offsets[k], img);
        ks_depth_plane_stats acc = {0};
        KS_CHECK_INT(ks_depth_board_check(&cal.depth, img, cal.depth.width * 2, &sc.board, &b2d, 50.0, 2, &acc, &err),
                     KS_OK);
        double mean = acc.points ? acc.sum_mm / acc.points : NAN;
        printf("depth plane check, offset %.1f mm: %d points, mean %.3f mm\n", offsets[k], acc.points, mean);
        KS_CHECK(acc.points > 1000);
        KS_CHECK_NEAR(mean, offsets[k], 0.2);
    }
    free(img);
    ks_synth_scene_free(&sc);
}

int main(void)
{
    KS_RUN(test_depth_plane_check);
    KS_RUN(test_pnp);
    KS_RUN(test_ring_01px);
    KS_RUN(test_ring_03px);
    KS_RUN(test_outliers_robust);
    KS_RUN(test_bad_view);
    KS_RUN(test_disconnected);
    KS_RUN(test_output_file);
    return KS_TEST_END();
}
