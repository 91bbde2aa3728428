/* Images: depth reprojected with the device's own calibration lands on the scene within 1 mm;
 * colour through the colour camera model and the depth-to-colour extrinsics; MJPEG decodes;
 * per-serial calibrations differ; a moving board changes depth. */
#include <stdlib.h>
#include <turbojpeg.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_depth_reprojects_onto_scene(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 21, true);
    cfg.sensor = false; /* exact geometry (the sensor model's noise is test_sim_realism's) */
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    r.cfg[1].subordinate_delay_off_master_usec = 160; /* lasers apart: no interference damage */
    KS_CHECK(simt_start_all(&r, &rig));
    for (int dev = 0; dev < 2; dev++) {
        ks_capture *c = NULL;
        ks_error err;
        KS_CHECK(ks_device_get_capture(r.dev[dev], &c, 1000, &err) == KS_OK);
        if (!c)
            continue;
        char *json = NULL;
        size_t len = 0;
        KS_CHECK(ks_device_get_calibration_json(r.dev[dev], &json, &len, &err) == KS_OK);
        ks_calibration cal;
        KS_CHECK(ks_calibration_from_json(json, len, rig.camera.depth_mode, rig.camera.color_resolution, &cal,
                                          &err) == KS_OK);
        ks_extrinsics pose;
        KS_CHECK(ks_sim_device_pose(r.sim, dev, &pose, &err) == KS_OK);
        ks_sim_frame_truth t;
        KS_CHECK(ks_sim_last_truth(r.sim, dev, &t, &err) == KS_OK);
        const ks_image *d = c->depth;
        KS_CHECK(d && d->width == cal.depth.width && d->height == cal.depth.height);
        KS_CHECK(c->ir && c->ir->width == d->width);
        const uint16_t *px = (const uint16_t *)d->data;
        int valid = 0, far = 0;
        double worst = 0;
        for (int v = 0; v < d->height; v += 2)
            for (int u = 0; u < d->width; u += 2) {
                uint16_t z = px[v * (d->stride / 2) + u];
                if (!z)
                    continue;
                double uv[2] = {u, v}, p[3], wp[3];
                if (!ks_unproject(&cal.depth, uv, z, p))
                    continue;
                ks_extrinsics_apply(&pose, p, wp);
                double e = ks_sim_scene_distance(r.sim, wp, t.sync_ns);
                valid++;
                if (e > worst)
                    worst = e;
                if (e > 1.0)
                    far++;
            }
        KS_CHECK_MSG(valid > 20000, "only %d valid depth pixels", valid);
        KS_CHECK_MSG(far == 0, "%d of %d pixels farther than 1 mm from the scene (worst %.3f mm)", far, valid,
                     worst);
        printf("device %d: %d pixels, worst distance to the scene %.3f mm\n", dev, valid, worst);

        /* colour: a depth pixel on the green sphere maps (calibration) to a green colour pixel */
        KS_CHECK(c->color && c->color->format == KS_FORMAT_MJPG && c->color->size > 1000);
        tjhandle tj = tjInitDecompress();
        int w = 0, h = 0, ss = 0, cs = 0;
        KS_CHECK(tjDecompressHeader3(tj, c->color->data, c->color->size, &w, &h, &ss, &cs) == 0);
        KS_CHECK_INT(w, 1280);
        KS_CHECK_INT(h, 720);
        uint8_t *bgra = malloc((size_t)w * h * 4);
        KS_CHECK(tjDecompress2(tj, c->color->data, c->color->size, bgra, w, w * 4, h, TJPF_BGRA, 0) == 0);
        tjDestroy(tj);
        int green = 0, tested = 0;
        const double sc[3] = {1100, 900, 350}, rad = 350; /* the room's green sphere */
        for (int v = 0; v < d->height; v += 3)
            for (int u = 0; u < d->width; u += 3) {
                uint16_t z = px[v * (d->stride / 2) + u];
                double uv[2] = {u, v}, p[3], wp[3], cuv[2];
                if (!z || !ks_unproject(&cal.depth, uv, z, p))
                    continue;
                ks_extrinsics_apply(&pose, p, wp);
                double q[3] = {wp[0] - sc[0], wp[1] - sc[1], wp[2] - sc[2]};
                if (fabs(sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]) - rad) > 1.0)
                    continue;
                if (!ks_calibration_depth_to_color_pixel(&cal, uv, z, cuv))
                    continue;
                int cu = (int)lround(cuv[0]), cv = (int)lround(cuv[1]);
                if (cu < 2 || cv < 2 || cu >= w - 2 || cv >= h - 2)
                    continue;
                const uint8_t *o = bgra + ((size_t)cv * w + cu) * 4;
                tested++;
                if (o[1] > o[0] + 30 && o[1] > o[2] + 30)
                    green++;
            }
        if (tested > 0)
            KS_CHECK_MSG(green >= tested * 9 / 10, "%d of %d sphere pixels green in colour", green, tested);
        printf("device %d: %d sphere pixels, %d green in the colour image\n", dev, tested, green);
        free(bgra);
        free(json);
        ks_capture_release(c);
    }
    simt_close(&r);
}

static void test_calibrations_differ_per_serial(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 22, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_calibration cal[2];
    for (int i = 0; i < 2; i++) {
        char *json = NULL;
        size_t len;
        KS_CHECK(ks_device_get_calibration_json(r.dev[i], &json, &len, NULL) == KS_OK);
        KS_CHECK(json && strstr(json, "CalibrationInformation"));
        KS_CHECK(ks_calibration_from_json(json, len, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal[i], NULL) == KS_OK);
        KS_CHECK_INT(cal[i].depth.model, KS_LENS_BROWN_CONRADY);
        free(json);
    }
    KS_CHECK(cal[0].depth.fx != cal[1].depth.fx);
    KS_CHECK(cal[0].depth_to_color.t[0] != cal[1].depth_to_color.t[0]);
    /* poses: a ring, both looking at the centre */
    ks_extrinsics p0, p1;
    ks_sim_device_pose(r.sim, 0, &p0, NULL);
    ks_sim_device_pose(r.sim, 1, &p1, NULL);
    KS_CHECK_NEAR(p0.t[0], cfg.ring_radius_mm, 1e-6);
    KS_CHECK_NEAR(p1.t[0], -cfg.ring_radius_mm, 1e-6);
    KS_CHECK(p0.R[2] < -0.8); /* optical axis (third column) points to -x */
    simt_close(&r);
}

static void test_moving_board_changes_depth(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    ks_sim_config cfg;
    simt_config(&cfg, 23, true);
    cfg.sensor = false; /* exact geometry: the board's depth is checked to the millimetre */
    cfg.render_color = false;
    cfg.board_key_count = 2;
    cfg.board_keys[0] = (ks_sim_board_key){.t_ms = 0, .pos = {0, 0, 900}, .rotvec = {0, 1.5707963, 0}};
    cfg.board_keys[1] = (ks_sim_board_key){.t_ms = 2000, .pos = {1200, 0, 900}, .rotvec = {0, 1.5707963, 0}};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *a = NULL, *b = NULL;
    KS_CHECK(ks_device_get_capture(r.dev[0], &a, 1000, NULL) == KS_OK);
    ks_sim_advance(r.sim, 1500);
    for (int k = 0; k < 12; k++) { /* drain what queued up, keep the newest */
        ks_capture_release(b);
        b = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[0], &b, 1000, NULL) == KS_OK);
    }
    if (a && b) {
        const uint16_t *da = (const uint16_t *)a->depth->data, *db = (const uint16_t *)b->depth->data;
        int diff = 0, n = a->depth->width * a->depth->height;
        for (int i = 0; i < n; i++)
            diff += abs((int)da[i] - (int)db[i]) > 20;
        KS_CHECK_MSG(diff > 500, "only %d pixels changed while the board moved", diff);
        /* and the new depth still lies on the scene at that time */
        ks_sim_frame_truth t;
        ks_sim_last_truth(r.sim, 0, &t, NULL);
        char *json;
        size_t len;
        ks_calibration cal;
        ks_device_get_calibration_json(r.dev[0], &json, &len, NULL);
        ks_calibration_from_json(json, len, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, &cal, NULL);
        free(json);
        ks_extrinsics pose;
        ks_sim_device_pose(r.sim, 0, &pose, NULL);
        int far = 0;
        for (int v = 0; v < b->depth->height; v++)
            for (int u = 0; u < b->depth->width; u++) {
                uint16_t z = db[v * b->depth->width + u];
                double uv[2] = {u, v}, p[3], wp[3];
                if (!z || !ks_unproject(&cal.depth, uv, z, p))
                    continue;
                ks_extrinsics_apply(&pose, p, wp);
                far += ks_sim_scene_distance(r.sim, wp, t.sync_ns) > 1.0;
            }
        KS_CHECK_INT(far, 0);
    }
    ks_capture_release(a);
    ks_capture_release(b);
    simt_close(&r);
}

static void test_color_formats(void)
{
    ks_image_format fmts[] = {KS_FORMAT_BGRA32, KS_FORMAT_NV12, KS_FORMAT_YUY2};
    for (int f = 0; f < 3; f++) {
        ks_rig rig;
        simt_rig(&rig, 1, SIMT_STANDALONE, 0);
        rig.camera.color_format = fmts[f];
        rig.camera.depth_mode = KS_DEPTH_OFF;
        ks_sim_config cfg;
        simt_config(&cfg, 24, false);
        simt_run r;
        KS_CHECK(simt_open(&r, &rig, &cfg));
        KS_CHECK(simt_start_all(&r, &rig));
        ks_capture *c = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        if (c) {
            KS_CHECK(c->color && c->color->format == fmts[f] && !c->depth && !c->ir);
            size_t want = fmts[f] == KS_FORMAT_BGRA32 ? 1280 * 720 * 4 : fmts[f] == KS_FORMAT_NV12 ? 1280 * 720 * 3 / 2 : 1280 * 720 * 2;
            KS_CHECK_INT(c->color->size, want);
        }
        ks_capture_release(c);
        simt_close(&r);
    }
}

static long color_sum(ks_sim *sim, ks_device *dev, const ks_device_config *cfg)
{
    (void)sim;
    long sum = 0;
    if (ks_device_start_cameras(dev, cfg, NULL) != KS_OK)
        return -1;
    ks_capture *c = NULL;
    if (ks_device_get_capture(dev, &c, 1000, NULL) == KS_OK && c->color) {
        for (size_t i = 0; i < c->color->size; i += 4)
            sum += c->color->data[i + 1];
    }
    ks_capture_release(c);
    ks_device_stop_cameras(dev);
    return sum;
}

static void test_board_texture_is_pluggable(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    rig.camera.color_format = KS_FORMAT_BGRA32;
    rig.camera.depth_mode = KS_DEPTH_OFF;
    ks_sim_config cfg;
    simt_config(&cfg, 25, true);
    cfg.sensor = false; /* no sensor noise: the pictures are compared to the unit */
    cfg.render_depth = false;
    cfg.brightness_variation = 0;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    long base = color_sum(r.sim, r.dev[0], &r.cfg[0]);
    static uint8_t white[64 * 64];
    memset(white, 255, sizeof white);
    KS_CHECK(ks_sim_set_board_texture(r.sim, white, 64, 64, 64, NULL) == KS_OK);
    long bright = color_sum(r.sim, r.dev[0], &r.cfg[0]);
    KS_CHECK(ks_sim_set_board_texture(r.sim, NULL, 0, 0, 0, NULL) == KS_OK);
    long again = color_sum(r.sim, r.dev[0], &r.cfg[0]);
    KS_CHECK_MSG(bright > base + 100000, "white board %ld vs tags %ld", bright, base);
    KS_CHECK_INT(again, base);
    /* not while streaming */
    KS_CHECK(simt_start(&r, 0));
    ks_error err;
    KS_CHECK_INT(ks_sim_set_board_texture(r.sim, white, 64, 64, 64, &err), KS_ESTATE);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_board_texture_is_pluggable);
    KS_RUN(test_depth_reprojects_onto_scene);
    KS_RUN(test_calibrations_differ_per_serial);
    KS_RUN(test_moving_board_changes_depth);
    KS_RUN(test_color_formats);
    return KS_TEST_END();
}
