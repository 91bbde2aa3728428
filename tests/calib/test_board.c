/* Board: YAML, geometry, drawing, and detection on rendered views with a known pose. */
#include <stdlib.h>
#include <unistd.h>

#include "kinsync/board.h"
#include "support/calib_fixtures.h"
#include "calib/synth_scene.h"
#include "ks_test.h"

static bool real_color(ks_color_resolution res, ks_calibration *cal)
{
    size_t len;
    char *j = ks_calib_test_read_fixture("k4a/real-device-calibration.json", &len);
    KS_CHECK(j != NULL);
    if (!j)
        return false;
    ks_error err = {0};
    ks_status st = ks_calibration_from_json(j, len, KS_DEPTH_NFOV_UNBINNED, res, cal, &err);
    free(j);
    KS_CHECK_MSG(st == KS_OK, "%s", err.message);
    return st == KS_OK;
}

/* Renders the board at a pose and checks every detected corner against the projection of the
 * board point. Returns the number of corners detected; *max_err and *mean the errors. */
static int render_and_detect(const ks_board *b, const ks_intrinsics *in, const ks_extrinsics *pose, double *max_err,
                             double *mean_dx, double *mean_dy)
{
    uint8_t *img = malloc((size_t)in->width * in->height);
    ks_error err = {0};
    KS_CHECK_INT(ks_board_render(b, in, pose, 3, 110, img, in->width, &err), KS_OK);
    ks_detector *d = NULL;
    KS_CHECK_INT(ks_detector_create(b, NULL, &d, &err), KS_OK);
    ks_detections det = {0};
    KS_CHECK_INT(ks_detect_gray(d, img, in->width, in->height, in->width, &det, &err), KS_OK);
    *max_err = 0;
    *mean_dx = *mean_dy = 0;
    for (int i = 0; i < det.count; i++) {
        double p[3], q[3], uv[2];
        KS_CHECK(ks_board_corner(b, det.corners[i].tag_id, det.corners[i].corner, p));
        ks_extrinsics_apply(pose, p, q);
        KS_CHECK(ks_project(in, q, uv));
        double dx = det.corners[i].uv[0] - uv[0], dy = det.corners[i].uv[1] - uv[1];
        double e = sqrt(dx * dx + dy * dy);
        if (e > *max_err)
            *max_err = e;
        *mean_dx += dx / det.count;
        *mean_dy += dy / det.count;
    }
    int n = det.count;
    ks_detections_free(&det);
    ks_detector_destroy(d);
    free(img);
    return n;
}

static void test_detect_rendered_views(void)
{
    ks_calibration cal;
    if (!real_color(KS_COLOR_720P, &cal))
        return;
    ks_board b;
    ks_board_default(&b);
    b.tag_size_mm = 60;
    double w, h;
    ks_board_sheet_size(&b, &w, &h);
    double centre[3] = {(5 * 60 * 1.3 + 60) / 2, (5 * 60 * 1.3 + 60) / 2, 0};
    ks_synth_rng rng = {42};
    for (int view = 0; view < 4; view++) {
        /* camera 1.0-1.4 m in front of the board, tilted up to ~35 degrees */
        double ang = (ks_synth_uniform(&rng) - 0.5) * 1.2, el = (ks_synth_uniform(&rng) - 0.5) * 0.8;
        double dist = 1000 + 400 * ks_synth_uniform(&rng);
        double eye[3] = {centre[0] + dist * sin(ang) * cos(el), centre[1] + dist * sin(el), -dist * cos(ang) * cos(el)};
        double down[3] = {0.1 * (ks_synth_uniform(&rng) - 0.5), 1, 0};
        ks_extrinsics pose;
        ks_synth_look_at(eye, centre, down, &pose);
        double maxe, mdx, mdy;
        int n = render_and_detect(&b, &cal.color, &pose, &maxe, &mdx, &mdy);
        KS_CHECK_MSG(n == 4 * 36, "view %d: %d corners of %d", view, n, 4 * 36);
        KS_CHECK_MSG(maxe < 0.5, "view %d: corner error up to %.3f px", view, maxe);
        KS_CHECK_MSG(fabs(mdx) < 0.1 && fabs(mdy) < 0.1, "view %d: corner bias (%.3f, %.3f) px", view, mdx, mdy);
        printf("view %d: %d corners, max error %.3f px, bias (%.3f, %.3f)\n", view, n, maxe, mdx, mdy);
    }
}

static void test_detect_41h12(void)
{
    ks_calibration cal;
    if (!real_color(KS_COLOR_720P, &cal))
        return;
    ks_board b;
    ks_board_default(&b);
    b.family = KS_TAG_STANDARD41H12;
    b.rows = 4;
    b.columns = 5;
    b.tag_size_mm = 50;
    b.spacing = 0.9;
    b.first_id = 100;
    double eye[3] = {250, 150, -900}, c[3] = {230, 160, 0}, down[3] = {0, 1, 0};
    ks_extrinsics pose;
    ks_synth_look_at(eye, c, down, &pose);
    double maxe, mdx, mdy;
    int n = render_and_detect(&b, &cal.color, &pose, &maxe, &mdx, &mdy);
    KS_CHECK_INT(n, 4 * 20);
    KS_CHECK_MSG(maxe < 0.5, "max error %.3f", maxe);
}

/* The same view through ks_detect_image as BGRA32, IR16 and MJPG gives the same corners. */
static void test_detect_image_formats(void)
{
    ks_calibration cal;
    if (!real_color(KS_COLOR_720P, &cal))
        return;
    ks_board b;
    ks_board_default(&b);
    b.tag_size_mm = 60;
    double eye[3] = {200, 150, -1100}, c[3] = {250, 250, 0}, down[3] = {0, 1, 0};
    ks_extrinsics pose;
    ks_synth_look_at(eye, c, down, &pose);
    int W = cal.color.width, H = cal.color.height;
    uint8_t *g = malloc((size_t)W * H);
    ks_error err = {0};
    KS_CHECK_INT(ks_board_render(&b, &cal.color, &pose, 2, 120, g, W, &err), KS_OK);
    ks_detector *d = NULL;
    KS_CHECK_INT(ks_detector_create(&b, NULL, &d, &err), KS_OK);
    ks_detections ref = {0};
    KS_CHECK_INT(ks_detect_gray(d, g, W, H, W, &ref, &err), KS_OK);
    KS_CHECK_INT(ref.tags, 36);
    ks_image *bgra = ks_image_create(KS_FORMAT_BGRA32, W, H, W * 4, 0);
    ks_image *ir = ks_image_create(KS_FORMAT_IR16, W, H, W * 2, 0);
    for (size_t i = 0; i < (size_t)W * H; i++) {
        bgra->data[4 * i] = bgra->data[4 * i + 1] = bgra->data[4 * i + 2] = g[i];
        bgra->data[4 * i + 3] = 255;
        uint16_t v = (uint16_t)(g[i] * 7 + 30); /* IR: another brightness scale */
        ir->data[2 * i] = (uint8_t)(v & 0xff);
        ir->data[2 * i + 1] = (uint8_t)(v >> 8);
    }
    ks_image *imgs[2] = {bgra, ir};
    for (int k = 0; k < 2; k++) {
        ks_detections det = {0};
        KS_CHECK_INT(ks_detect_image(d, imgs[k], &det, &err), KS_OK);
        KS_CHECK_INT(det.tags, 36);
        double maxd = 0;
        for (int i = 0; i < det.count; i++)
            for (int j = 0; j < ref.count; j++)
                if (det.corners[i].tag_id == ref.corners[j].tag_id && det.corners[i].corner == ref.corners[j].corner)
                    maxd = fmax(maxd, hypot(det.corners[i].uv[0] - ref.corners[j].uv[0],
                                            det.corners[i].uv[1] - ref.corners[j].uv[1]));
        KS_CHECK_MSG(maxd < 0.1, "format %d: corners differ by %.3f px", k, maxd);
        ks_detections_free(&det);
    }
    /* a damaged MJPG frame is an error, not a crash */
    ks_image *bad = ks_image_create(KS_FORMAT_MJPG, W, H, 0, 100);
    memset(bad->data, 0xab, 100);
    bad->size = 100;
    ks_detections det = {0};
    KS_CHECK_INT(ks_detect_image(d, bad, &det, &err), KS_EPARSE);
    ks_image_release(bad);
    ks_image_release(bgra);
    ks_image_release(ir);
    ks_detections_free(&ref);
    ks_detector_destroy(d);
    free(g);
}

static void test_yaml(void)
{
    ks_board b;
    ks_error err = {0};
    const char *y = "rows: 4\ncolumns: 7\ntag_size: 0.05\nspacing: 0.25\nfamily: tag36h11\nfirst_id: 3\n";
    KS_CHECK_INT(ks_board_load_string(y, strlen(y), "b.yaml", &b, &err), KS_OK);
    KS_CHECK_INT(b.rows, 4);
    KS_CHECK_INT(b.columns, 7);
    KS_CHECK_NEAR(b.tag_size_mm, 50.0, 1e-9);
    double p[3];
    KS_CHECK(ks_board_corner(&b, 3 + 7 + 1, 3, p)); /* row 1, column 1, top-left corner */
    KS_CHECK_NEAR(p[0], 62.5, 1e-9);
    KS_CHECK_NEAR(p[1], 62.5, 1e-9);
    KS_CHECK(!ks_board_corner(&b, 2, 0, p));
    const char *bad = "rows: 4\ncolumns: 7\ntag_size: 0.05\nspacing: 0.1\n";
    KS_CHECK_INT(ks_board_load_string(bad, strlen(bad), "b.yaml", &b, &err), KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "spacing");
    KS_CHECK_CONTAINS(err.message, "0.250");
    const char *typo = "rows: 4\ncolums: 7\n";
    KS_CHECK(ks_board_load_string(typo, strlen(typo), "b.yaml", &b, &err) != KS_OK);
    KS_CHECK_CONTAINS(err.message, "colums");
    const char *fam = "family: tag25h9\n";
    KS_CHECK(ks_board_load_string(fam, strlen(fam), "b.yaml", &b, &err) != KS_OK);
    KS_CHECK_CONTAINS(err.message, "tagStandard41h12");
    char path[512];
    snprintf(path, sizeof path, "%s/examples/boards/aprilgrid-6x6.yaml", KS_SOURCE_DIR);
    KS_CHECK_INT(ks_board_load(path, &b, &err), KS_OK);
    /* hostile nesting (issue 20): 100,000 nested '{' are refused before libyaml parses them (it is
     * quadratic in flow depth: hours), as in every YAML reader (test_rig_parse, test_sim_config) */
    const size_t n = 100000;
    char *deep = malloc(n + 16);
    if (deep) {
        memcpy(deep, "rows: ", 6);
        memset(deep + 6, '{', n);
        KS_CHECK_INT(ks_board_load_string(deep, n + 6, "deep.yaml", &b, &err), KS_EPARSE);
        KS_CHECK_CONTAINS(err.message, "deep.yaml:1: brackets nested more than 64 levels");
        free(deep);
    }
}

static void test_drawing(void)
{
    ks_board b;
    ks_board_default(&b);
    b.rows = 2;
    b.columns = 3;
    b.tag_size_mm = 40;
    char svg[256], png[256];
    snprintf(svg, sizeof svg, "%s/test_board_%d.svg", KS_BINARY_DIR, (int)getpid());
    snprintf(png, sizeof png, "%s/test_board_%d.png", KS_BINARY_DIR, (int)getpid());
    ks_error err = {0};
    KS_CHECK_INT(ks_board_write_svg(&b, svg, &err), KS_OK);
    KS_CHECK_INT(ks_board_write_png(&b, png, 100, &err), KS_OK);
    FILE *f = fopen(svg, "rb");
    KS_CHECK(f != NULL);
    if (f) {
        char buf[1024] = {0};
        KS_CHECK(fread(buf, 1, sizeof buf - 1, f) > 0);
        KS_CHECK_CONTAINS(buf, "<svg");
        KS_CHECK_CONTAINS(buf, "mm\"");
        fclose(f);
    }
    f = fopen(png, "rb");
    KS_CHECK(f != NULL);
    if (f) {
        unsigned char sig[8];
        KS_CHECK(fread(sig, 1, 8, f) == 8 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
        fclose(f);
    }
    unlink(svg);
    unlink(png);
    KS_CHECK(ks_board_write_svg(&b, "/nonexistent-dir/x.svg", &err) == KS_EIO);
    KS_CHECK_CONTAINS(err.message, "/nonexistent-dir/x.svg");
    /* the tag border is black, the quiet zone white */
    KS_CHECK_INT(ks_board_intensity(&b, 0.5, 0.5), 0);
    KS_CHECK_INT(ks_board_intensity(&b, -2.0, 20.0), 255);
    KS_CHECK_INT(ks_board_intensity(&b, -1000.0, 20.0), -1);
}

int main(void)
{
    KS_RUN(test_yaml);
    KS_RUN(test_drawing);
    KS_RUN(test_detect_rendered_views);
    KS_RUN(test_detect_41h12);
    KS_RUN(test_detect_image_formats);
    return KS_TEST_END();
}
