/* kinsync calibrate on recordings: a 4-device synchronized rig (master + 3 subordinates with
 * different subordinate delays) is "recorded" as one .mkv per device with MJPG color frames of the
 * rendered board; the command forms frame sets from the device timestamps, calibrates, and the
 * result is compared with the truth. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "calib/synth_scene.h"
#include "kinsync/board.h"
#include "kinsync/mkv.h"
#include "ks_test.h"

/* Rays of every second depth pixel in x and y (x, y with z = 1); NAN elsewhere and where the model
 * is invalid (the command samples the depth image on an even grid, which keeps the test fast). */
static double *depth_rays(const ks_intrinsics *in)
{
    double *r = malloc(sizeof(double) * 2 * (size_t)in->width * in->height);
    for (int v = 0; v < in->height; v++)
        for (int u = 0; u < in->width; u++) {
            double uv[2] = {u, v}, *xy = r + 2 * ((size_t)v * in->width + u);
            if ((u | v) & 1 || !ks_unproject_ray(in, uv, xy))
                xy[0] = xy[1] = NAN;
        }
    return r;
}

/* DEPTH16 image of the board plane (0 off the sheet). */
static void render_depth(const ks_board *b, const ks_intrinsics *in, const double *rays, const ks_extrinsics *b2d,
                         uint16_t *img)
{
    ks_extrinsics d2b;
    ks_extrinsics_invert(b2d, &d2b);
    double n[3] = {b2d->R[2], b2d->R[5], b2d->R[8]};
    double c = n[0] * b2d->t[0] + n[1] * b2d->t[1] + n[2] * b2d->t[2];
    for (size_t i = 0; i < (size_t)in->width * in->height; i++) {
        const double *xy = rays + 2 * i;
        img[i] = 0;
        double den = n[0] * xy[0] + n[1] * xy[1] + n[2];
        if (!isfinite(den) || den == 0)
            continue;
        double s = c / den, p[3] = {s * xy[0], s * xy[1], s}, q[3];
        ks_extrinsics_apply(&d2b, p, q);
        if (s > 0 && s < 65535 && ks_board_intensity(b, q[0], q[1]) >= 0)
            img[i] = (uint16_t)lround(s);
    }
}

static void test_calibrate_recordings(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 4;
    so.frames = 16;
    so.seed = 1;
    so.color = KS_COLOR_720P;
    so.noise_px = 0;
    so.ring_radius_mm = 1500;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    char root[512];
    snprintf(root, sizeof root, "%s/test_calibrate_mkv_%d", KS_BINARY_DIR, (int)getpid());
    mkdir(root, 0755);
    int W = sc.devices[0].intrinsics.width, H = sc.devices[0].intrinsics.height;
    uint8_t *gray = malloc((size_t)W * H);
    tjhandle tj = tjInitCompress();
    char files[4][700];
    const uint64_t start_us = 1000000, period_us = (uint64_t)ks_frame_period_us(KS_FPS_15);
    for (int i = 0; i < so.devices; i++) {
        snprintf(files[i], sizeof files[i], "%s/dev%d.mkv", root, i);
        char *json = ks_calibration_json_synthesize(so.seed * 1000 + (uint64_t)i, sc.devices[i].serial);
        ks_mkv_desc desc;
        ks_mkv_desc_init(&desc);
        snprintf(desc.serial, sizeof desc.serial, "%s", sc.devices[i].serial);
        desc.color_format = KS_FORMAT_MJPG;
        desc.color_resolution = KS_COLOR_720P;
        desc.depth_mode = KS_DEPTH_NFOV_UNBINNED;
        desc.depth_delay_us = i == 3 ? 160 : 0;
        desc.fps = KS_FPS_15;
        desc.sync_mode = i == 0 ? KS_SYNC_MASTER : KS_SYNC_SUBORDINATE;
        desc.subordinate_delay_us = i == 0 ? 0 : (uint32_t)(160 * i);
        desc.calibration_json = json;
        desc.calibration_len = json ? strlen(json) : 0;
        ks_mkv_writer_options wo = {0};
        wo.uid_seed = 42 + (uint64_t)i;
        ks_mkv_writer *w = NULL;
        ks_status st = ks_mkv_writer_open(files[i], &desc, &wo, &w, &err);
        KS_CHECK_MSG(st == KS_OK, "%s", err.message);
        if (st) {
            free(json);
            continue;
        }
        ks_extrinsics rig_to_color, rig_to_depth;
        ks_extrinsics_invert(&sc.true_color_to_rig[i], &rig_to_color);
        ks_extrinsics_invert(&sc.true_depth_to_rig[i], &rig_to_depth);
        ks_calibration cal;
        KS_CHECK_INT(ks_calibration_from_json(desc.calibration_json, desc.calibration_len, KS_DEPTH_NFOV_UNBINNED,
                                              KS_COLOR_720P, &cal, &err), KS_OK);
        double *rays = depth_rays(&cal.depth);
        /* a subordinate starts one frame late, as real ones may */
        for (int fr = i ? 1 : 0; fr < so.frames; fr++) {
            int n = 0;
            for (int k = 0; k < sc.obs_count; k++)
                n += sc.obs[k].device == i && sc.obs[k].frame == fr;
            if (n >= 8) {
                ks_extrinsics b2c;
                ks_extrinsics_compose(&sc.true_board_to_rig[fr], &rig_to_color, &b2c);
                ks_board_render(&sc.board, &sc.devices[i].intrinsics, &b2c, 2, 128, gray, W, &err);
            } else {
                memset(gray, 128, (size_t)W * H);
            }
            unsigned char *jpg = NULL;
            unsigned long jlen = 0;
            KS_CHECK(tjCompress2(tj, gray, W, W, H, TJPF_GRAY, &jpg, &jlen, TJSAMP_GRAY, 95, 0) == 0);
            ks_image *img = ks_image_create(KS_FORMAT_MJPG, W, H, 0, jlen);
            memcpy(img->data, jpg, jlen);
            img->size = jlen;
            /* small jitter well inside the sync tolerance */
            img->device_ts_us = start_us + (uint64_t)fr * period_us + desc.subordinate_delay_us + (uint64_t)(i * 7);
            tjFree(jpg);
            st = ks_mkv_writer_add_image(w, KS_MKV_COLOR, img, &err);
            KS_CHECK_MSG(st == KS_OK, "%s", err.message);
            if (n >= 8) {
                ks_image *dimg = ks_image_create(KS_FORMAT_DEPTH16, cal.depth.width, cal.depth.height,
                                                 cal.depth.width * 2, 0);
                ks_extrinsics b2d;
                ks_extrinsics_compose(&sc.true_board_to_rig[fr], &rig_to_depth, &b2d);
                render_depth(&sc.board, &cal.depth, rays, &b2d, (uint16_t *)dimg->data);
                dimg->device_ts_us = img->device_ts_us + (uint64_t)desc.depth_delay_us;
                st = ks_mkv_writer_add_image(w, KS_MKV_DEPTH, dimg, &err);
                KS_CHECK_MSG(st == KS_OK, "depth: %s", err.message);
                ks_image_release(dimg);
            }
            ks_image_release(img);
        }
        free(rays);
        free(json);
        KS_CHECK_INT(ks_mkv_writer_close(w, &err), KS_OK);
    }
    tjDestroy(tj);
    free(gray);
    char board_yaml[600], out[600], cmd[4096];
    snprintf(board_yaml, sizeof board_yaml, "%s/board.yaml", root);
    FILE *f = fopen(board_yaml, "w");
    if (f) {
        fprintf(f, "rows: 6\ncolumns: 6\ntag_size: %g\nspacing: %g\n", sc.board.tag_size_mm / 1000.0, sc.board.spacing);
        fclose(f);
    }
    snprintf(out, sizeof out, "%s/rig-calibration.json", root);
    /* subordinate first on the command line: the master is found by its sync mode */
    snprintf(cmd, sizeof cmd, "%s/kinsync calibrate %s %s %s %s --board %s -o %s --step 1", KS_BINARY_DIR, files[2],
             files[0], files[1], files[3], board_yaml, out);
    KS_CHECK_INT(system(cmd), 0);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    KS_CHECK_MSG(j != NULL, "%s: %s", out, je.text);
    json_t *devs = json_object_get(j, "devices");
    KS_CHECK_INT(json_array_size(devs), 4);
    int order[4] = {2, 0, 1, 3};
    for (size_t k = 0; k < json_array_size(devs); k++) {
        int i = order[k];
        json_t *d = json_array_get(devs, k);
        KS_CHECK_STR(json_string_value(json_object_get(d, "serial")), sc.devices[i].serial);
        json_t *e = json_object_get(d, "depth_to_rig");
        double R[9], t[3];
        for (int m = 0; m < 9; m++)
            R[m] = json_number_value(json_array_get(json_object_get(e, "R"), m));
        for (int m = 0; m < 3; m++)
            t[m] = json_number_value(json_array_get(json_object_get(e, "t"), m));
        /* the rig frame is the first file's device (2): compare relative poses */
        ks_extrinsics rig2 , truth;
        ks_extrinsics_invert(&sc.true_depth_to_rig[2], &rig2);
        ks_extrinsics_compose(&sc.true_depth_to_rig[i], &rig2, &truth);
        double er = ks_synth_rot_diff_deg(R, truth.R), et = ks_synth_trans_diff_mm(t, truth.t);
        printf("device %d: error %.4f deg %.3f mm (from recordings)\n", i, er, et);
        KS_CHECK_MSG(er < 0.1, "device %d rotation error %.4f deg", i, er);
        KS_CHECK_MSG(et < 2.0, "device %d translation error %.3f mm", i, et);
        /* depth cross-check: exact depth of the plane, so only rounding to 1 mm and pose error remain */
        json_t *cc = json_object_get(d, "cross_check");
        int dp = (int)json_integer_value(json_object_get(cc, "depth_plane_points"));
        double dm = json_number_value(json_object_get(cc, "depth_plane_mean_mm"));
        double dr = json_number_value(json_object_get(cc, "depth_plane_rms_mm"));
        printf("device %d: depth plane %d points, mean %.3f mm, rms %.3f mm\n", i, dp, dm, dr);
        KS_CHECK(dp > 1000);
        KS_CHECK(fabs(dm) < 1.0);
        KS_CHECK(dr < 2.0);
    }
    json_decref(j);
    /* two recordings of one device are refused */
    snprintf(cmd, sizeof cmd, "%s/kinsync calibrate %s %s --board %s -o %s 2>/dev/null", KS_BINARY_DIR, files[0],
             files[0], board_yaml, out);
    KS_CHECK_INT(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    KS_CHECK_INT(system(cmd), 0);
    ks_synth_scene_free(&sc);
}

int main(void)
{
    KS_RUN(test_calibrate_recordings);
    return KS_TEST_END();
}
