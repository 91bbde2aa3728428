/* Camera model: calibration JSON parsing, mode-specific intrinsics, projection/unprojection,
 * against the Sensor SDK golden values of the facts page and the three real files. */
#include <stdlib.h>

#include "calib/camera_model.h"
#include "kinsync/calibration.h"
#include "support/calib_fixtures.h"
#include "ks_test.h"

static char *slurp(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "k4a/%s", name);
    return ks_calib_test_read_fixture(rel, len);
}

static bool load(const char *name, ks_depth_mode d, ks_color_resolution c, ks_calibration *cal)
{
    size_t len = 0;
    char *j = slurp(name, &len);
    KS_CHECK_MSG(j != NULL, "fixture %s missing", name);
    if (!j)
        return false;
    ks_error err = {0};
    ks_status st = ks_calibration_from_json(j, len, d, c, cal, &err);
    KS_CHECK_MSG(st == KS_OK, "%s: %s", name, err.message);
    free(j);
    return st == KS_OK;
}

static void test_golden_sdk_unittest(void)
{
    ks_calibration cal;
    if (!load("sdk-unittest-calibration.json", KS_DEPTH_WFOV_2X2BINNED, KS_COLOR_2160P, &cal))
        return;
    KS_CHECK_INT(cal.depth.width, 512);
    KS_CHECK_INT(cal.color.width, 3840);
    KS_CHECK_INT(cal.color.height, 2160);
    KS_CHECK_NEAR(cal.depth.cx, 256.619141, 1e-3);
    KS_CHECK_NEAR(cal.depth.cy, 256.419220, 1e-3);
    KS_CHECK_NEAR(cal.depth.fx, 252.323685, 1e-3);
    KS_CHECK_NEAR(cal.depth.fy, 252.378693, 1e-3);
    double uv[2] = {256, 256}, p[3];
    KS_CHECK(ks_unproject(&cal.depth, uv, 1000.0, p));
    KS_CHECK_NEAR(p[0], -2.45376134, 1e-3);
    KS_CHECK_NEAR(p[1], -1.66107690, 1e-3);
    KS_CHECK_NEAR(p[2], 1000.0, 1e-9);
    double uc[2];
    KS_CHECK(ks_calibration_depth_to_color_pixel(&cal, uv, 1000.0, uc));
    KS_CHECK_NEAR(uc[0], 1835.689453, 1e-3);
    KS_CHECK_NEAR(uc[1], 1206.290039, 1e-3);
    /* translation is converted to millimetres */
    KS_CHECK_NEAR(cal.depth_to_color.t[0], -31.942267, 1e-4);
    /* color_to_depth is the inverse (the file's rotation is orthonormal to float precision only) */
    double q[3], back[3];
    ks_extrinsics_apply(&cal.depth_to_color, p, q);
    ks_extrinsics_apply(&cal.color_to_depth, q, back);
    for (int i = 0; i < 3; i++)
        KS_CHECK_NEAR(back[i], p[i], 1e-3);
}

/* Project/unproject round trip over the whole image of every depth mode and a 16:9 and 4:3 color
 * mode of every fixture; the share of valid WFOV unbinned pixels matches the documented ~78%. */
static void roundtrip_image(const ks_intrinsics *in, int step, double *valid_share)
{
    int total = 0, valid = 0;
    for (int v = 0; v < in->height; v += step)
        for (int u = 0; u < in->width; u += step) {
            double uv[2] = {u, v}, p[3], back[2];
            total++;
            if (!ks_unproject(in, uv, 1500.0, p))
                continue;
            valid++;
            bool ok = ks_project(in, p, back);
            KS_CHECK(ok);
            if (ok && (fabs(back[0] - u) > 1e-3 || fabs(back[1] - v) > 1e-3)) {
                KS_CHECK_MSG(0, "pixel (%d,%d) comes back at (%.6f,%.6f)", u, v, back[0], back[1]);
                return;
            }
        }
    *valid_share = (double)valid / total;
}

static bool all_zero(const ks_extrinsics *e, bool with_t)
{
    for (int i = 0; i < 9; i++)
        if (e->R[i] != 0)
            return false;
    for (int i = 0; with_t && i < 3; i++)
        if (e->t[i] != 0)
            return false;
    return true;
}

/* One camera off (a recording or device that streams only depth or only color): the Sensor SDK
 * zeroes that camera's mode-specific calibration, extrinsics included, so every extrinsic to it
 * is all zero and every extrinsic from it keeps only the target's translation (k4a
 * transformation_get_mode_specific_calibration). The running camera's extrinsics are kept. */
static void test_camera_off_zeroes_extrinsics(void)
{
    ks_calibration both, no_color, no_depth;
    if (!load("sdk-unittest-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &both) ||
        !load("sdk-unittest-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_OFF, &no_color) ||
        !load("sdk-unittest-calibration.json", KS_DEPTH_OFF, KS_COLOR_720P, &no_depth))
        return;
    KS_CHECK(!all_zero(&both.depth_to_color, true) && !all_zero(&both.color_to_depth, true));
    /* color off: depth -> color and color -> depth (the depth camera is the world: zero translation) */
    KS_CHECK(all_zero(&no_color.depth_to_color, true));
    KS_CHECK(all_zero(&no_color.color_to_depth, true));
    for (int i = 0; i < 9; i++) { /* the depth camera still runs: its IMU extrinsics are kept */
        KS_CHECK_NEAR(no_color.depth_to_accel.R[i], both.depth_to_accel.R[i], 1e-12);
        KS_CHECK_NEAR(no_color.depth_to_gyro.R[i], both.depth_to_gyro.R[i], 1e-12);
    }
    /* depth off: from depth, the rotation is zero and the target's translation stays (mm) */
    KS_CHECK(all_zero(&no_depth.depth_to_color, false));
    KS_CHECK_NEAR(no_depth.depth_to_color.t[0], -31.942267, 1e-4);
    KS_CHECK_NEAR(no_depth.depth_to_color.t[1], -2.4762286, 1e-4);
    KS_CHECK(all_zero(&no_depth.color_to_depth, true));
    KS_CHECK(all_zero(&no_depth.depth_to_accel, false));
    KS_CHECK_NEAR(no_depth.depth_to_accel.t[0], -50.794426, 1e-4);
    KS_CHECK(all_zero(&no_depth.depth_to_gyro, true));
    /* the running camera's intrinsics are those of the full calibration */
    KS_CHECK_NEAR(no_depth.color.fx, both.color.fx, 1e-12);
    KS_CHECK_NEAR(no_color.depth.fx, both.depth.fx, 1e-12);
}

static void test_roundtrip_all_fixtures(void)
{
    const char *files[] = {"sdk-unittest-calibration.json", "real-device-calibration.json",
                           "sdk-test-calibration-rational6kt.json"};
    for (int f = 0; f < 3; f++) {
        for (int d = KS_DEPTH_NFOV_2X2BINNED; d <= KS_DEPTH_PASSIVE_IR; d++) {
            ks_calibration cal;
            ks_color_resolution c = d % 2 ? KS_COLOR_720P : KS_COLOR_1536P;
            if (!load(files[f], (ks_depth_mode)d, c, &cal))
                continue;
            double share = 0;
            roundtrip_image(&cal.depth, d == KS_DEPTH_WFOV_UNBINNED || d == KS_DEPTH_PASSIVE_IR ? 8 : 4, &share);
            if (d == KS_DEPTH_WFOV_UNBINNED && f < 2)
                KS_CHECK_MSG(share > 0.70 && share < 0.86, "%s WFOV unbinned valid share %.3f", files[f], share);
            if (d == KS_DEPTH_NFOV_UNBINNED)
                KS_CHECK_MSG(share > 0.99, "%s NFOV valid share %.3f", files[f], share);
            roundtrip_image(&cal.color, 16, &share);
            /* the SDK unit-test file has a color MetricRadius of 0.656: its image corners are invalid */
            KS_CHECK_MSG(share > (f == 0 ? 0.4 : 0.95), "%s color valid share %.3f", files[f], share);
        }
    }
}

static void test_mode_relations(void)
{
    /* NFOV unbinned is the 1024 sensor cropped by (192,180); 2x2 binned halves the scale. */
    ks_calibration a, b, w;
    if (!load("real-device-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &a) ||
        !load("real-device-calibration.json", KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_3072P, &b) ||
        !load("real-device-calibration.json", KS_DEPTH_WFOV_UNBINNED, KS_COLOR_1080P, &w))
        return;
    KS_CHECK_INT(a.depth.width, 640);
    KS_CHECK_INT(a.depth.height, 576);
    KS_CHECK_NEAR(a.depth.cx, w.depth.cx - 192, 1e-9);
    KS_CHECK_NEAR(a.depth.cy, w.depth.cy - 180, 1e-9);
    KS_CHECK_NEAR(b.depth.fx * 2, a.depth.fx, 1e-9);
    KS_CHECK_NEAR((b.depth.cx + 0.5) * 2, a.depth.cx + 0.5, 1e-9);
    /* 720p is the 4:3 sensor scaled to 1280x960 with 120 rows cropped at the top */
    KS_CHECK_NEAR(a.color.fx, b.color.fx * 1280.0 / 4096.0, 1e-9);
    KS_CHECK_NEAR(a.color.cy + 0.5, (b.color.cy + 0.5) * 1280.0 / 4096.0 - 120, 1e-9);
    KS_CHECK_NEAR(w.color.cy + 0.5, (b.color.cy + 0.5) * 1920.0 / 4096.0 - 180, 1e-9);
    /* metric radius 0 in the file (PV0) becomes the SDK default */
    KS_CHECK_NEAR(a.color.metric_radius, 1.7, 1e-12);
    KS_CHECK_NEAR(a.depth.metric_radius, 1.739999771118164, 1e-12);
    KS_CHECK_INT(a.depth.model, KS_LENS_BROWN_CONRADY);
    /* IMU extrinsics are parsed (accelerometer ~51 mm from the depth camera) */
    double n = sqrt(a.depth_to_accel.t[0] * a.depth_to_accel.t[0] + a.depth_to_accel.t[1] * a.depth_to_accel.t[1] +
                    a.depth_to_accel.t[2] * a.depth_to_accel.t[2]);
    KS_CHECK_NEAR(n, 51.0, 1.0);
}

static void test_rational6kt_and_bom(void)
{
    size_t len = 0;
    char *j = slurp("sdk-test-calibration-rational6kt.json", &len);
    if (!j)
        return;
    KS_CHECK((unsigned char)j[0] == 0xEF); /* the fixture really carries the BOM */
    ks_calibration cal;
    ks_error err = {0};
    KS_CHECK_INT(ks_calibration_from_json(j, len, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, &err), KS_OK);
    KS_CHECK_INT(cal.depth.model, KS_LENS_RATIONAL_6KT);
    KS_CHECK(cal.color.codx != 0.0);
    free(j);
}

static void test_jacobian(void)
{
    ks_calibration cal;
    if (!load("real-device-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_1080P, &cal))
        return;
    double p[3] = {180.0, -120.0, 900.0}, uv[2], J[6];
    KS_CHECK(ks_project_jac(&cal.color, p, uv, J));
    for (int k = 0; k < 3; k++) {
        double h = 1e-4, pp[3] = {p[0], p[1], p[2]}, pm[3] = {p[0], p[1], p[2]}, a[2], b[2];
        pp[k] += h;
        pm[k] -= h;
        ks_project(&cal.color, pp, a);
        ks_project(&cal.color, pm, b);
        KS_CHECK_NEAR(J[k], (a[0] - b[0]) / (2 * h), 1e-5);
        KS_CHECK_NEAR(J[3 + k], (a[1] - b[1]) / (2 * h), 1e-5);
    }
}

static void test_validity(void)
{
    ks_calibration cal;
    if (!load("real-device-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal))
        return;
    double uv[2];
    double behind[3] = {0, 0, -100};
    KS_CHECK(!ks_project(&cal.depth, behind, uv));
    double wide[3] = {3000, 0, 1000}; /* r = 3 > metric radius */
    KS_CHECK(!ks_project(&cal.depth, wide, uv));
    double far_px[2] = {-5000, -5000}, p[3];
    KS_CHECK(!ks_unproject(&cal.depth, far_px, 1000, p));
    double nan_px[2] = {NAN, 0};
    KS_CHECK(!ks_unproject(&cal.depth, nan_px, 1000, p));
}

static void test_errors_name_the_field(void)
{
    ks_calibration cal;
    ks_error err = {0};
    const char *bad = "{\"CalibrationInformation\":{\"Cameras\":[]}}";
    KS_CHECK_INT(ks_calibration_from_json(bad, strlen(bad), KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, &err),
                 KS_EPARSE);
    KS_CHECK_CONTAINS(err.message, "CALIBRATION_CameraLocationD0");
    KS_CHECK_INT(ks_calibration_from_json("{", 1, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, &err), KS_EPARSE);
    KS_CHECK_CONTAINS(err.message, "line 1");
    size_t len = 0;
    char *j = slurp("real-device-calibration.json", &len);
    if (!j)
        return;
    char *fx = strstr(j, "\"MetricRadius\"");
    if (fx) {
        memcpy(fx, "\"MetricRadiuz\"", 14);
        KS_CHECK_INT(ks_calibration_from_json(j, len, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, &err), KS_EPARSE);
        KS_CHECK_CONTAINS(err.message, "MetricRadius");
        KS_CHECK_CONTAINS(err.message, "D0");
    }
    free(j);
}

static void test_synthesize(void)
{
    ks_calibration a, b;
    char *ja = ks_calibration_json_synthesize(1, "000111222333");
    char *jb = ks_calibration_json_synthesize(2, "000111222334");
    KS_CHECK(ja && jb);
    if (!ja || !jb)
        return;
    KS_CHECK(strstr(ja, "000111222333") != NULL);
    KS_CHECK(strstr(ja, "CALIBRATION_InertialSensorType_Accelerometer") != NULL);
    ks_error err = {0};
    KS_CHECK_INT(ks_calibration_from_json(ja, strlen(ja), KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &a, &err), KS_OK);
    KS_CHECK_INT(ks_calibration_from_json(jb, strlen(jb), KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &b, &err), KS_OK);
    /* plausible: close to a real unit, but not identical between seeds */
    ks_calibration real;
    if (load("real-device-calibration.json", KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &real)) {
        KS_CHECK_NEAR(a.depth.fx, real.depth.fx, 3.0);
        KS_CHECK_NEAR(a.color.fx, real.color.fx, 3.0);
        KS_CHECK_NEAR(a.depth_to_color.t[0], real.depth_to_color.t[0], 1.0);
    }
    KS_CHECK(a.depth.fx != b.depth.fx);
    KS_CHECK(a.depth.cx != b.depth.cx);
    /* deterministic */
    char *ja2 = ks_calibration_json_synthesize(1, "000111222333");
    KS_CHECK(ja2 && strcmp(ja, ja2) == 0);
    /* rotation is orthonormal */
    double *R = a.depth_to_color.R;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = R[i * 3] * R[j * 3] + R[i * 3 + 1] * R[j * 3 + 1] + R[i * 3 + 2] * R[j * 3 + 2];
            KS_CHECK_NEAR(s, i == j ? 1.0 : 0.0, 1e-12);
        }
    double share = 0;
    roundtrip_image(&a.depth, 8, &share);
    KS_CHECK(share > 0.99);
    free(ja);
    free(jb);
    free(ja2);
}

/* ks_unproject_row gives exactly ks_unproject_ray's doubles (bit for bit) and validity, over whole
 * images: the three fixtures in every depth mode and two colour resolutions (the SDK unit-test
 * file's colour metric radius leaves invalid corners; WFOV has its invalid ring; Rational 6KT has a
 * centre of distortion), a synthesized calibration, and rows that do not fill the last block. */
static int row_mismatches(const ks_intrinsics *in, int step)
{
    int bad = 0, w = in->width;
    double *x = malloc((size_t)w * sizeof *x), *y = malloc((size_t)w * sizeof *y);
    uint8_t *ok = malloc((size_t)w);
    for (int v = 0; x && y && ok && v < in->height; v += step) {
        int u0 = v % 5, n = w - u0 - v % 3; /* odd starts and lengths */
        KS_CHECK(ks_unproject_row(in, v, u0, n, x, y, ok));
        for (int i = 0; i < n; i++) {
            double uv[2] = {u0 + i, v}, xy[2] = {0, 0};
            bool r = ks_unproject_ray(in, uv, xy);
            if (r != (ok[i] != 0) || (r && (memcmp(&xy[0], &x[i], sizeof(double)) != 0 ||
                                           memcmp(&xy[1], &y[i], sizeof(double)) != 0)))
                bad++;
        }
    }
    free(x);
    free(y);
    free(ok);
    return bad;
}

static void test_unproject_row_is_exact(void)
{
    const char *files[] = {"sdk-unittest-calibration.json", "real-device-calibration.json",
                           "sdk-test-calibration-rational6kt.json"};
    int images = 0;
    for (int f = 0; f < 3; f++)
        for (int d = KS_DEPTH_NFOV_2X2BINNED; d <= KS_DEPTH_PASSIVE_IR; d++) {
            ks_calibration cal;
            if (!load(files[f], (ks_depth_mode)d, d % 2 ? KS_COLOR_720P : KS_COLOR_1536P, &cal))
                continue;
            int bd = row_mismatches(&cal.depth, 1), bc = row_mismatches(&cal.color, 7);
            KS_CHECK_MSG(bd == 0 && bc == 0, "%s mode %d: %d depth and %d colour pixels differ", files[f], d, bd, bc);
            images += 2;
        }
    char *js = ks_calibration_json_synthesize(3, "000200000001");
    ks_calibration syn;
    ks_error err = {0};
    if (js && ks_calibration_from_json(js, strlen(js), KS_DEPTH_WFOV_UNBINNED, KS_COLOR_720P, &syn, &err) == KS_OK) {
        KS_CHECK_INT(row_mismatches(&syn.depth, 3), 0);
        KS_CHECK_INT(row_mismatches(&syn.color, 5), 0);
        images += 2;
    }
    free(js);
    KS_CHECK_INT(images, 32);
    /* refused like ks_unproject_ray: every pixel invalid */
    ks_intrinsics none = syn.depth;
    none.fx = 0;
    double x[3], y[3];
    uint8_t ok[3] = {1, 1, 1};
    KS_CHECK(!ks_unproject_row(&none, 10, 10, 3, x, y, ok));
    KS_CHECK(!ok[0] && !ok[1] && !ok[2]);
}

/* ks_project_many gives ks_project's validity and, where valid, its pixel bit for bit: points all
 * around each camera (behind it, on its plane, far outside the view and the metric radius, inside
 * it), in counts that do not fill the last block. */
static void test_project_many_is_exact(void)
{
    const char *files[] = {"sdk-unittest-calibration.json", "real-device-calibration.json",
                           "sdk-test-calibration-rational6kt.json"};
    enum { N = 20001 };
    double *X = malloc(N * sizeof *X), *Y = malloc(N * sizeof *Y), *Z = malloc(N * sizeof *Z);
    double *u = malloc(N * sizeof *u), *v = malloc(N * sizeof *v);
    uint8_t *ok = malloc(N);
    uint64_t rs = 99;
    for (int i = 0; X && Y && Z && i < N; i++) {
        double r[3];
        for (int k = 0; k < 3; k++) {
            rs = rs * 6364136223846793005ull + 1442695040888963407ull;
            r[k] = (double)(rs >> 11) / 9007199254740992.0 * 2 - 1;
        }
        X[i] = r[0] * 3000;
        Y[i] = r[1] * 3000;
        Z[i] = i % 97 == 0 ? 0 : r[2] * 1000 + 900; /* mostly in front, some behind, some on the plane */
    }
    int cams = 0;
    for (int f = 0; X && Y && Z && u && v && ok && f < 3; f++)
        for (int d = KS_DEPTH_NFOV_2X2BINNED; d <= KS_DEPTH_PASSIVE_IR; d++) {
            ks_calibration cal;
            if (!load(files[f], (ks_depth_mode)d, KS_COLOR_720P, &cal))
                continue;
            const ks_intrinsics *ins[2] = {&cal.depth, &cal.color};
            for (int c = 0; c < 2; c++) {
                int n = N - d - c, bad = 0, valid = 0;
                KS_CHECK(ks_project_many(ins[c], n, X, Y, Z, u, v, ok));
                for (int i = 0; i < n; i++) {
                    double p[3] = {X[i], Y[i], Z[i]}, uv[2];
                    bool r = ks_project(ins[c], p, uv);
                    valid += r;
                    if (r != (ok[i] != 0) ||
                        (r && (memcmp(&uv[0], &u[i], sizeof(double)) != 0 || memcmp(&uv[1], &v[i], sizeof(double)) != 0)))
                        bad++;
                }
                KS_CHECK_MSG(bad == 0, "%s mode %d camera %d: %d of %d points differ", files[f], d, c, bad, n);
                KS_CHECK_MSG(valid > n / 50 && valid < n, /* the SDK unit-test colour camera: radius 0.656 */
                             "%s mode %d camera %d: %d of %d valid", files[f], d, c,
                             valid, n);
                cams++;
            }
        }
    KS_CHECK_INT(cams, 30);
    free(X);
    free(Y);
    free(Z);
    free(u);
    free(v);
    free(ok);
}

int main(void)
{
    KS_RUN(test_golden_sdk_unittest);
    KS_RUN(test_camera_off_zeroes_extrinsics);
    KS_RUN(test_roundtrip_all_fixtures);
    KS_RUN(test_mode_relations);
    KS_RUN(test_rational6kt_and_bom);
    KS_RUN(test_jacobian);
    KS_RUN(test_validity);
    KS_RUN(test_errors_name_the_field);
    KS_RUN(test_synthesize);
    KS_RUN(test_unproject_row_is_exact);
    KS_RUN(test_project_many_is_exact);
    return KS_TEST_END();
}
