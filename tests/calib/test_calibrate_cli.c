/* kinsync calibrate end to end: a 4-device ring is rendered (board images through each device's
 * lens model), written as a frame-set directory (kinsync/frameset.h) with each device's
 * calibration, calibrated by the command, and the written rig-calibration.json is compared with the truth. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/synth_scene.h"
#include "kinsync/board.h"
#include "kinsync/frameset.h"
#include "ks_test.h"

static void test_calibrate_frameset_dir(void)
{
    ks_synth_scene_options so;
    ks_synth_scene_options_default(&so);
    so.devices = 4;
    so.frames = 10;
    so.seed = 1;
    so.color = KS_COLOR_720P;
    so.noise_px = 0;
    so.ring_radius_mm = 1500;
    ks_synth_scene sc;
    ks_error err = {0};
    KS_CHECK_INT(ks_synth_scene_make(&so, &sc, &err), KS_OK);
    char root[512];
    snprintf(root, sizeof root, "%s/test_calibrate_%d", KS_BINARY_DIR, (int)getpid());
    mkdir(root, 0755);
    int W = sc.devices[0].intrinsics.width, H = sc.devices[0].intrinsics.height;
    /* the frame-set directory, through the library's writer: every device's calibration (the one
     * the scene used) and a rendered 8-bit grey colour image per device and set */
    ks_frameset_device dv[4];
    memset(dv, 0, sizeof dv);
    for (int i = 0; i < so.devices; i++) {
        snprintf(dv[i].name, sizeof dv[i].name, "dev%d", i);
        snprintf(dv[i].serial, sizeof dv[i].serial, "%s", sc.devices[i].serial);
        dv[i].config.color_resolution = KS_COLOR_720P;
        dv[i].config.color_format = KS_FORMAT_CUSTOM8;
        dv[i].config.depth_mode = KS_DEPTH_OFF;
        dv[i].config.camera_fps = KS_FPS_30;
        dv[i].calibration_json = ks_calibration_json_synthesize(so.seed * 1000 + (uint64_t)i, sc.devices[i].serial);
        KS_CHECK(dv[i].calibration_json != NULL);
        dv[i].calibration_len = dv[i].calibration_json ? strlen(dv[i].calibration_json) : 0;
    }
    ks_frameset_writer *w = NULL;
    KS_CHECK_INT(ks_frameset_writer_open(root, dv, so.devices, KS_TS_SEED, "test", &w, &err), KS_OK);
    int rendered = 0;
    for (int fr = 0; fr < so.frames && w; fr++) {
        KS_CHECK_INT(ks_frameset_writer_set(w, fr, 1e5 * fr, true, &err), KS_OK);
        for (int i = 0; i < so.devices; i++) {
            ks_extrinsics rig_to_color, b2c;
            ks_extrinsics_invert(&sc.true_color_to_rig[i], &rig_to_color);
            ks_extrinsics_compose(&sc.true_board_to_rig[fr], &rig_to_color, &b2c);
            ks_capture *c = ks_capture_create();
            c->color = ks_image_create(KS_FORMAT_CUSTOM8, W, H, W, 0);
            c->color->device_ts_us = 100000 * (uint64_t)fr;
            KS_CHECK_INT(ks_board_render(&sc.board, &sc.devices[i].intrinsics, &b2c, 2, 128, c->color->data, W, &err),
                         KS_OK);
            KS_CHECK_INT(ks_frameset_writer_add(w, fr, i, c, 0, &err), KS_OK);
            ks_capture_release(c);
            rendered++;
        }
    }
    KS_CHECK_INT(ks_frameset_writer_close(w, NULL, &err), KS_OK);
    for (int i = 0; i < so.devices; i++)
        free(dv[i].calibration_json);
    printf("rendered %d views\n", rendered);
    char board_yaml[600], out[600], cmd[2400];
    snprintf(board_yaml, sizeof board_yaml, "%s/board.yaml", root);
    FILE *f = fopen(board_yaml, "w");
    if (f) {
        fprintf(f, "rows: %d\ncolumns: %d\ntag_size: %g\nspacing: %g\n", sc.board.rows, sc.board.columns,
                sc.board.tag_size_mm / 1000.0, sc.board.spacing);
        fclose(f);
    }
    snprintf(out, sizeof out, "%s/rig-calibration.json", root);
    snprintf(cmd, sizeof cmd, "%s/kinsync calibrate %s --board %s -o %s", KS_BINARY_DIR, root, board_yaml, out);
    int rc = system(cmd);
    KS_CHECK_INT(rc, 0);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    KS_CHECK_MSG(j != NULL, "%s: %s", out, je.text);
    json_t *devs = json_object_get(j, "devices");
    KS_CHECK_INT(json_array_size(devs), so.devices);
    for (size_t i = 0; i < json_array_size(devs); i++) {
        json_t *d = json_array_get(devs, i);
        KS_CHECK_STR(json_string_value(json_object_get(d, "serial")), sc.devices[i].serial);
        json_t *e = json_object_get(d, "depth_to_rig");
        double R[9], t[3];
        for (int k = 0; k < 9; k++)
            R[k] = json_number_value(json_array_get(json_object_get(e, "R"), k));
        for (int k = 0; k < 3; k++)
            t[k] = json_number_value(json_array_get(json_object_get(e, "t"), k));
        double er = ks_synth_rot_diff_deg(R, sc.true_depth_to_rig[i].R);
        double et = ks_synth_trans_diff_mm(t, sc.true_depth_to_rig[i].t);
        printf("device %zu: error %.4f deg %.3f mm (from rendered images)\n", i, er, et);
        KS_CHECK_MSG(er < 0.1, "device %zu rotation error %.4f deg", i, er);
        KS_CHECK_MSG(et < 2.0, "device %zu translation error %.3f mm", i, et);
    }
    json_decref(j);
    /* usage errors */
    snprintf(cmd, sizeof cmd, "%s/kinsync calibrate %s -o %s 2>/dev/null", KS_BINARY_DIR, root, out);
    KS_CHECK_INT(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s/kinsync calibrate %s/nothing --board %s 2>/dev/null", KS_BINARY_DIR, root,
             board_yaml);
    KS_CHECK_INT(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    KS_CHECK_INT(system(cmd), 0);
    ks_synth_scene_free(&sc);
}

int main(void)
{
    KS_RUN(test_calibrate_frameset_dir);
    return KS_TEST_END();
}
