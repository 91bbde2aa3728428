/* bench_calib: the joint rig calibration against a pairwise-chained baseline on the same synthetic
 * data, the solve time for 9 devices x 100 frame sets, and tag detection time per 720p and 2160p
 * image (one thread). Run: build/bench/bench_calib [seeds]  (or cmake --build build --target bench). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "calib/synth_scene.h"
#include "kinsync/board.h"
#include "kinsync/rigcalib.h"
#include "bench_common.h"

typedef struct errs {
    double max_rot, mean_rot, max_tr, mean_tr;
} errs;

static void add_err(errs *e, double r, double t, int n)
{
    e->max_rot = fmax(e->max_rot, r);
    e->max_tr = fmax(e->max_tr, t);
    e->mean_rot += r / n;
    e->mean_tr += t / n;
}

/* Joint solve: errors of every device's depth camera pose. */
static int joint(const ks_synth_scene *sc, errs *e, double *secs)
{
    ks_rigcal_result r;
    ks_error err = {0};
    if (ks_rigcal_solve(&sc->problem, NULL, &r, &err) != KS_OK) {
        fprintf(stderr, "joint: %s\n", err.message);
        return -1;
    }
    int nd = sc->problem.device_count;
    for (int i = 1; i < nd; i++)
        add_err(e, ks_synth_rot_diff_deg(r.devices[i].depth_to_rig.R, sc->true_depth_to_rig[i].R),
                ks_synth_trans_diff_mm(r.devices[i].depth_to_rig.t, sc->true_depth_to_rig[i].t), nd - 1);
    *secs = r.solve_seconds;
    ks_rigcal_result_free(&r);
    return 0;
}

/* Baseline as the official two-device sample does it: calibrate device pairs (i, i+1) on the
 * frame sets both saw, with the same solver, and chain the relative poses from device 0. */
static int pairwise(const ks_synth_scene *sc, errs *e)
{
    int nd = sc->problem.device_count;
    ks_rigcal_obs *obs = malloc(sizeof(ks_rigcal_obs) * (size_t)sc->obs_count);
    ks_extrinsics chain; /* depth_i -> rig */
    ks_extrinsics_identity(&chain);
    for (int i = 0; i + 1 < nd; i++) {
        int n = 0;
        for (int k = 0; k < sc->obs_count; k++)
            if (sc->obs[k].device == i || sc->obs[k].device == i + 1) {
                obs[n] = sc->obs[k];
                obs[n].device = sc->obs[k].device - i;
                n++;
            }
        ks_rigcal_device devs[2] = {sc->devices[i], sc->devices[i + 1]};
        ks_rigcal_problem p = {&sc->board, 2, devs, sc->problem.frame_count, n, obs};
        ks_rigcal_result r;
        ks_error err = {0};
        if (ks_rigcal_solve(&p, NULL, &r, &err) != KS_OK) {
            fprintf(stderr, "pair %d-%d: %s\n", i, i + 1, err.message);
            free(obs);
            return -1;
        }
        ks_extrinsics next;
        ks_extrinsics_compose(&r.devices[1].depth_to_rig, &chain, &next); /* depth_{i+1} -> depth_i -> rig */
        chain = next;
        ks_rigcal_result_free(&r);
        add_err(e, ks_synth_rot_diff_deg(chain.R, sc->true_depth_to_rig[i + 1].R),
                ks_synth_trans_diff_mm(chain.t, sc->true_depth_to_rig[i + 1].t), nd - 1);
    }
    free(obs);
    return 0;
}

static void compare(double noise, int seeds)
{
    errs ej = {0}, ep = {0};
    double secs = 0, s;
    int ok = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        ks_synth_scene_options so;
        ks_synth_scene_options_default(&so);
        so.noise_px = noise;
        so.seed = (uint64_t)seed;
        ks_synth_scene sc;
        ks_error err = {0};
        if (ks_synth_scene_make(&so, &sc, &err) != KS_OK) {
            fprintf(stderr, "%s\n", err.message);
            continue;
        }
        errs a = {0}, b = {0};
        if (joint(&sc, &a, &s) == 0 && pairwise(&sc, &b) == 0) {
            ok++;
            ej.max_rot = fmax(ej.max_rot, a.max_rot);
            ej.max_tr = fmax(ej.max_tr, a.max_tr);
            ej.mean_rot += a.mean_rot;
            ej.mean_tr += a.mean_tr;
            ep.max_rot = fmax(ep.max_rot, b.max_rot);
            ep.max_tr = fmax(ep.max_tr, b.max_tr);
            ep.mean_rot += b.mean_rot;
            ep.mean_tr += b.mean_tr;
            secs += s;
        }
        ks_synth_scene_free(&sc);
    }
    if (!ok)
        return;
    ej.mean_rot /= ok;
    ej.mean_tr /= ok;
    ep.mean_rot /= ok;
    ep.mean_tr /= ok;
    printf("noise %.1f px, 9 devices x 60 frame sets, %d scenes:\n", noise, ok);
    printf("  joint     : rotation mean %.4f max %.4f deg, translation mean %.3f max %.3f mm (solve %.3f s)\n",
           ej.mean_rot, ej.max_rot, ej.mean_tr, ej.max_tr, secs / ok);
    printf("  pairwise  : rotation mean %.4f max %.4f deg, translation mean %.3f max %.3f mm\n", ep.mean_rot,
           ep.max_rot, ep.mean_tr, ep.max_tr);
    printf("  joint is %.1fx better in mean rotation, %.1fx in mean translation, %.1fx in max translation\n",
           ep.mean_rot / ej.mean_rot, ep.mean_tr / ej.mean_tr, ep.max_tr / ej.max_tr);
}

static void solve_time(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.frames = 100;
    so.noise_px = 0.3;
    ks_synth_scene sc;
    ks_error err = {0};
    if (ks_synth_scene_make(&so, &sc, &err) != KS_OK)
        return;
    double best = 1e9;
    ks_rigcal_result r = {0};
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        if (ks_rigcal_solve(&sc.problem, NULL, &r, &err) != KS_OK) {
            fprintf(stderr, "%s\n", err.message);
            break;
        }
        best = fmin(best, now_s() - t0);
        if (rep < 2)
            ks_rigcal_result_free(&r);
    }
    printf("solve: 9 devices x 100 frame sets, %d corners, %d iterations: %.3f s (target < 1 s)\n", r.used_obs,
           r.iterations, best);
    ks_rigcal_result_free(&r);
    ks_synth_scene_free(&sc);
}

static void detect_time(ks_color_resolution res)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 1;
    so.frames = 1;
    so.color = res;
    ks_synth_scene sc;
    ks_error err = {0};
    if (ks_synth_scene_make(&so, &sc, &err) != KS_OK)
        return;
    const ks_intrinsics *in = &sc.devices[0].intrinsics;
    uint8_t *img = malloc((size_t)in->width * in->height);
    /* the board 1.5 m in front of the camera, slightly turned */
    ks_extrinsics pose;
    double eye[3] = {150, -100, -1500}, c[3] = {300, 300, 0}, down[3] = {0.05, 1, 0};
    ks_synth_look_at(eye, c, down, &pose);
    ks_board_render(&sc.board, in, &pose, 2, 120, img, in->width, &err);
    ks_detector *d = NULL;
    if (ks_detector_create(&sc.board, NULL, &d, &err) != KS_OK) {
        fprintf(stderr, "%s\n", err.message);
        free(img);
        ks_synth_scene_free(&sc);
        return;
    }
    ks_detections det = {0};
    int reps = res == KS_COLOR_720P ? 20 : 5, tags = 0;
    double t0 = now_s();
    for (int i = 0; i < reps; i++) {
        ks_detections_free(&det);
        ks_detect_gray(d, img, in->width, in->height, in->width, &det, &err);
        tags = det.tags;
    }
    double per = (now_s() - t0) / reps;
    printf("detection %s (%dx%d), 1 thread: %.1f ms per gray image, %d of %d tags%s\n",
           ks_color_resolution_name(res), in->width, in->height, per * 1e3, tags, ks_board_tag_count(&sc.board),
           res == KS_COLOR_720P ? " (target <= 30 ms)" : "");
    /* as recorded: an MJPG frame, decoded to gray by ks_detect_image */
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    if (tj && tjCompress2(tj, img, in->width, in->width, in->height, TJPF_GRAY, &jpg, &jlen, TJSAMP_GRAY, 90, 0) == 0) {
        ks_image *mj = ks_image_create(KS_FORMAT_MJPG, in->width, in->height, 0, jlen);
        memcpy(mj->data, jpg, jlen);
        mj->size = jlen;
        t0 = now_s();
        for (int i = 0; i < reps; i++) {
            ks_detections_free(&det);
            ks_detect_image(d, mj, &det, &err);
        }
        printf("detection %s from MJPG (decode included): %.1f ms per image, %d tags\n",
               ks_color_resolution_name(res), (now_s() - t0) / reps * 1e3, det.tags);
        ks_image_release(mj);
    }
    if (jpg)
        tjFree(jpg);
    if (tj)
        tjDestroy(tj);
    ks_detections_free(&det);
    ks_detector_destroy(d);
    free(img);
    ks_synth_scene_free(&sc);
}

int main(int argc, char **argv)
{
    int seeds = argc > 1 ? atoi(argv[1]) : 5;
    if (seeds < 1)
        seeds = 1;
    compare(0.1, seeds);
    compare(0.3, seeds);
    solve_time();
    detect_time(KS_COLOR_720P);
    detect_time(KS_COLOR_2160P);
    return 0;
}
