/* calib/calibration.c: the factory calibration JSON (CalibrationInformation) to mode-specific
 * intrinsics and extrinsics. See docs/camera-model.md for the conventions. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "kinsync/calibration.h"

/* A MetricRadius of 0 in the file means the factory did not estimate it; the Sensor SDK then
 * uses this radius (about a 120 degree field of view). */
#define KS_METRIC_RADIUS_DEFAULT 1.7
/* The SDK compares in float with this threshold for "zero". */
#define KS_METRIC_RADIUS_ZERO 0.0001

#define LOC_DEPTH "CALIBRATION_CameraLocationD0"
#define LOC_COLOR "CALIBRATION_CameraLocationPV0"
#define IMU_ACCEL "CALIBRATION_InertialSensorType_Accelerometer"
#define IMU_GYRO "CALIBRATION_InertialSensorType_Gyro"

static const struct {
    const char *name;
    ks_lens_model model;
} lens_names[] = {
    {"CALIBRATION_LensDistortionModelTheta", KS_LENS_THETA},
    {"CALIBRATION_LensDistortionModelPolynomial3K", KS_LENS_POLYNOMIAL_3K},
    {"CALIBRATION_LensDistortionModelRational6KT", KS_LENS_RATIONAL_6KT},
    {"CALIBRATION_LensDistortionModelBrownConrady", KS_LENS_BROWN_CONRADY},
};

/* Raw (normalized, 0-cornered) camera entry of the file. */
typedef struct raw_camera {
    ks_lens_model model;
    double params[14]; /* cx cy fx fy k1..k6 codx cody p2 p1 */
    double metric_radius;
    int sensor_w, sensor_h;
    ks_extrinsics rt; /* depth (world) frame -> this camera, mm */
} raw_camera;

void ks_extrinsics_identity(ks_extrinsics *e)
{
    memset(e, 0, sizeof *e);
    e->R[0] = e->R[4] = e->R[8] = 1.0;
}

void ks_extrinsics_apply(const ks_extrinsics *e, const double in[3], double out[3])
{
    double x = in[0], y = in[1], z = in[2];
    for (int r = 0; r < 3; r++)
        out[r] = e->R[r * 3] * x + e->R[r * 3 + 1] * y + e->R[r * 3 + 2] * z + e->t[r];
}

void ks_extrinsics_invert(const ks_extrinsics *e, ks_extrinsics *out)
{
    ks_extrinsics r;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r.R[i * 3 + j] = e->R[j * 3 + i];
    for (int i = 0; i < 3; i++)
        r.t[i] = -(r.R[i * 3] * e->t[0] + r.R[i * 3 + 1] * e->t[1] + r.R[i * 3 + 2] * e->t[2]);
    *out = r;
}

void ks_extrinsics_compose(const ks_extrinsics *a_to_b, const ks_extrinsics *b_to_c, ks_extrinsics *a_to_c)
{
    /* x_c = Rbc (Rab x + tab) + tbc */
    ks_extrinsics r;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++)
                s += b_to_c->R[i * 3 + k] * a_to_b->R[k * 3 + j];
            r.R[i * 3 + j] = s;
        }
        r.t[i] = b_to_c->R[i * 3] * a_to_b->t[0] + b_to_c->R[i * 3 + 1] * a_to_b->t[1] +
                 b_to_c->R[i * 3 + 2] * a_to_b->t[2] + b_to_c->t[i];
    }
    *a_to_c = r;
}

static ks_status get_number(json_t *obj, const char *key, const char *where, double *out, ks_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s has no \"%s\"; the file is not a complete "
                            "Azure Kinect factory calibration (read it again from the device)", where, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s \"%s\" must be a finite number", where, key);
    *out = json_number_value(v);
    return KS_OK;
}

static ks_status get_numbers(json_t *arr, size_t n, const char *where, const char *key, double *out,
                             ks_error *err)
{
    if (!json_is_array(arr) || json_array_size(arr) < n)
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s \"%s\" must be an array of at least %zu numbers",
                            where, key, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return ks_error_set(err, KS_EPARSE, "calibration JSON: %s \"%s\"[%zu] must be a finite number", where,
                                key, i);
        out[i] = json_number_value(v);
    }
    return KS_OK;
}

static ks_status parse_rt(json_t *obj, const char *where, ks_extrinsics *e, ks_error *err)
{
    json_t *rt = json_object_get(obj, "Rt");
    if (!json_is_object(rt))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s has no \"Rt\" object (Rotation, Translation)",
                            where);
    ks_status st = get_numbers(json_object_get(rt, "Rotation"), 9, where, "Rt.Rotation", e->R, err);
    if (st)
        return st;
    st = get_numbers(json_object_get(rt, "Translation"), 3, where, "Rt.Translation", e->t, err);
    if (st)
        return st;
    for (int i = 0; i < 3; i++)
        e->t[i] *= 1000.0; /* metres -> millimetres */
    return KS_OK;
}

static ks_status parse_camera(json_t *cam, const char *where, raw_camera *rc, ks_error *err)
{
    memset(rc, 0, sizeof *rc);
    json_t *intr = json_object_get(cam, "Intrinsics");
    if (!json_is_object(intr))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s has no \"Intrinsics\" object", where);
    json_t *type = json_object_get(intr, "ModelType");
    if (!json_is_string(type))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s \"Intrinsics.ModelType\" must be a string", where);
    rc->model = KS_LENS_UNKNOWN;
    for (size_t i = 0; i < sizeof lens_names / sizeof lens_names[0]; i++)
        if (strcmp(json_string_value(type), lens_names[i].name) == 0)
            rc->model = lens_names[i].model;
    if (rc->model != KS_LENS_BROWN_CONRADY && rc->model != KS_LENS_RATIONAL_6KT)
        return ks_error_set(err, KS_EUNSUPPORTED,
                            "calibration JSON: %s lens model \"%.80s\" is not supported; only "
                            "CALIBRATION_LensDistortionModelBrownConrady (retail devices) and the deprecated "
                            "Rational6KT can be projected, as in the Sensor SDK",
                            where, json_string_value(type));
    ks_status st = get_numbers(json_object_get(intr, "ModelParameters"), 14, where, "Intrinsics.ModelParameters",
                               rc->params, err);
    if (st)
        return st;
    double w = 0, h = 0;
    if ((st = get_number(cam, "SensorWidth", where, &w, err)) || (st = get_number(cam, "SensorHeight", where, &h, err)) ||
        (st = get_number(cam, "MetricRadius", where, &rc->metric_radius, err)))
        return st;
    if (w < 1 || h < 1 || w > 65536 || h > 65536 || w != floor(w) || h != floor(h))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s SensorWidth/SensorHeight %gx%g is not an image size",
                            where, w, h);
    rc->sensor_w = (int)w;
    rc->sensor_h = (int)h;
    if (rc->metric_radius <= KS_METRIC_RADIUS_ZERO)
        rc->metric_radius = KS_METRIC_RADIUS_DEFAULT;
    if (!(rc->params[2] > 0) || !(rc->params[3] > 0))
        return ks_error_set(err, KS_EPARSE, "calibration JSON: %s focal lengths fx=%g fy=%g must be positive", where,
                            rc->params[2], rc->params[3]);
    return parse_rt(cam, where, &rc->rt, err);
}

/* Applies mode info: normalized * binned size - crop, optionally -0.5 for the k4a pixel centre. */
static void mode_scale(double p[4], double binned_w, double binned_h, double crop_x, double crop_y, bool pixel,
                       double out_w, double out_h)
{
    double cx = p[0] * binned_w - crop_x, cy = p[1] * binned_h - crop_y;
    double fx = p[2] * binned_w, fy = p[3] * binned_h;
    if (pixel) {
        p[0] = cx - 0.5;
        p[1] = cy - 0.5;
        p[2] = fx;
        p[3] = fy;
    } else {
        p[0] = cx / out_w;
        p[1] = cy / out_h;
        p[2] = fx / out_w;
        p[3] = fy / out_h;
    }
}

static void fill_intrinsics(const raw_camera *rc, const double p4[4], int w, int h, ks_intrinsics *in)
{
    memset(in, 0, sizeof *in);
    in->model = rc->model;
    in->width = w;
    in->height = h;
    in->cx = p4[0];
    in->cy = p4[1];
    in->fx = p4[2];
    in->fy = p4[3];
    for (int i = 0; i < 6; i++)
        in->k[i] = rc->params[4 + i];
    in->codx = rc->params[10];
    in->cody = rc->params[11];
    in->p2 = rc->params[12];
    in->p1 = rc->params[13];
    in->metric_radius = rc->metric_radius;
}

static ks_status depth_intrinsics(const raw_camera *rc, ks_depth_mode mode, ks_intrinsics *out, ks_error *err)
{
    const ks_depth_mode_info *mi = ks_depth_mode_get(mode);
    if (!mi)
        return ks_error_set(err, KS_EINVAL, "calibration: depth mode %d is not a depth mode", (int)mode);
    if (rc->sensor_w != mi->sensor_width || rc->sensor_h != mi->sensor_height)
        return ks_error_set(err, KS_EPARSE,
                            "calibration JSON: depth camera (D0) SensorWidth/SensorHeight %dx%d, expected %dx%d; "
                            "the file does not describe an Azure Kinect depth camera",
                            rc->sensor_w, rc->sensor_h, mi->sensor_width, mi->sensor_height);
    double p[4] = {rc->params[0], rc->params[1], rc->params[2], rc->params[3]};
    mode_scale(p, (double)mi->sensor_width / mi->binning, (double)mi->sensor_height / mi->binning, mi->crop_x,
               mi->crop_y, true, mi->width, mi->height);
    fill_intrinsics(rc, p, mi->width, mi->height, out);
    return KS_OK;
}

static ks_status color_intrinsics(const raw_camera *rc, ks_color_resolution res, ks_intrinsics *out, ks_error *err)
{
    const ks_color_resolution_info *ri = ks_color_resolution_get(res);
    /* The full 4:3 sensor is the largest mode; every other mode scales it and 16:9 modes crop rows. */
    const ks_color_resolution_info *full = ks_color_resolution_get(KS_COLOR_3072P);
    if (!ri || !full)
        return ks_error_set(err, KS_EINVAL, "calibration: color resolution %d is not a color mode", (int)res);
    double p[4] = {rc->params[0], rc->params[1], rc->params[2], rc->params[3]};
    int fw = full->width, fh = full->height;
    if ((long)rc->sensor_w * 9 / 16 == rc->sensor_h) {
        /* Older files are normalized to the 16:9 image: map them onto the 4:3 sensor first
         * (the 16:9 band is centred vertically on the sensor). */
        double band_h = (double)fw * 9.0 / 16.0;
        mode_scale(p, fw, band_h, 0, -(fh - band_h) / 2.0, false, fw, fh);
    } else if ((long)rc->sensor_w * 3 / 4 != rc->sensor_h) {
        return ks_error_set(err, KS_EPARSE,
                            "calibration JSON: color camera (PV0) SensorWidth/SensorHeight %dx%d is neither 16:9 "
                            "nor 4:3; the file does not describe an Azure Kinect color camera",
                            rc->sensor_w, rc->sensor_h);
    }
    double scale = (double)ri->width / fw;
    double bw = ri->width, bh = fh * scale;
    mode_scale(p, bw, bh, 0, (bh - ri->height) / 2.0, true, ri->width, ri->height);
    fill_intrinsics(rc, p, ri->width, ri->height, out);
    return KS_OK;
}

ks_status ks_calibration_from_json(const char *json, size_t len, ks_depth_mode depth, ks_color_resolution color,
                                   ks_calibration *out, ks_error *err)
{
    if (!json || !out)
        return ks_error_set(err, KS_EINVAL, "ks_calibration_from_json: json and out must not be NULL");
    if ((unsigned)depth >= KS_DEPTH_MODE_COUNT || (unsigned)color >= KS_COLOR_RESOLUTION_COUNT)
        return ks_error_set(err, KS_EINVAL, "ks_calibration_from_json: depth mode %d / color resolution %d out of range",
                            (int)depth, (int)color);
    if (len >= 3 && (unsigned char)json[0] == 0xEF && (unsigned char)json[1] == 0xBB && (unsigned char)json[2] == 0xBF) {
        json += 3;
        len -= 3;
    }
    /* Some readers hand over the attachment with its trailing NUL. */
    while (len > 0 && json[len - 1] == '\0')
        len--;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ks_error_set(err, KS_EPARSE, "calibration JSON: line %d column %d: %s; the file is damaged (read "
                            "the calibration from the device or recording again)",
                            jerr.line, jerr.column, jerr.text);
    ks_status st = KS_OK;
    raw_camera rd, rcol;
    bool have_d = false, have_c = false;
    ks_extrinsics accel, gyro;
    bool have_a = false, have_g = false;
    json_t *ci = json_object_get(root, "CalibrationInformation");
    json_t *cams = json_object_get(ci, "Cameras");
    if (!json_is_object(ci) || !json_is_array(cams)) {
        st = ks_error_set(err, KS_EPARSE, "calibration JSON: no \"CalibrationInformation.Cameras\" array; this is "
                          "not an Azure Kinect factory calibration");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(cams) && !st; i++) {
        json_t *cam = json_array_get(cams, i);
        json_t *loc = json_object_get(cam, "Location");
        if (!json_is_string(loc))
            continue;
        if (!have_d && strcmp(json_string_value(loc), LOC_DEPTH) == 0) {
            st = parse_camera(cam, "depth camera (D0)", &rd, err);
            have_d = true;
        } else if (!have_c && strcmp(json_string_value(loc), LOC_COLOR) == 0) {
            st = parse_camera(cam, "color camera (PV0)", &rcol, err);
            have_c = true;
        }
    }
    if (st)
        goto done;
    if (!have_d || !have_c) {
        st = ks_error_set(err, KS_EPARSE, "calibration JSON: no camera with Location \"%s\"; a device calibration "
                          "holds both the depth (D0) and the color (PV0) camera", have_d ? LOC_COLOR : LOC_DEPTH);
        goto done;
    }
    json_t *imus = json_object_get(ci, "InertialSensors");
    for (size_t i = 0; json_is_array(imus) && i < json_array_size(imus) && !st; i++) {
        json_t *s = json_array_get(imus, i);
        json_t *type = json_object_get(s, "SensorType");
        if (!json_is_string(type))
            continue;
        if (!have_a && strcmp(json_string_value(type), IMU_ACCEL) == 0) {
            st = parse_rt(s, "accelerometer", &accel, err);
            have_a = true;
        } else if (!have_g && strcmp(json_string_value(type), IMU_GYRO) == 0) {
            st = parse_rt(s, "gyroscope", &gyro, err);
            have_g = true;
        }
    }
    if (st)
        goto done;

    ks_calibration c;
    memset(&c, 0, sizeof c);
    c.depth_mode = depth;
    c.color_resolution = color;
    if (depth != KS_DEPTH_OFF && (st = depth_intrinsics(&rd, depth, &c.depth, err)))
        goto done;
    if (color != KS_COLOR_OFF && (st = color_intrinsics(&rcol, color, &c.color, err)))
        goto done;
    /* Every Rt maps the depth (world) frame into its sensor: source -> target = Rt_t * inv(Rt_s).
     * A camera that is off has an all-zero Rt, as in the Sensor SDK (the mode-specific calibration
     * of a camera that does not run is zeroed): every extrinsic to it is zero, every extrinsic from
     * it keeps only the target's translation. */
    if (depth == KS_DEPTH_OFF)
        memset(&rd.rt, 0, sizeof rd.rt);
    if (color == KS_COLOR_OFF)
        memset(&rcol.rt, 0, sizeof rcol.rt);
    ks_extrinsics inv_d, inv_c;
    ks_extrinsics_invert(&rd.rt, &inv_d);
    ks_extrinsics_invert(&rcol.rt, &inv_c);
    ks_extrinsics_compose(&inv_d, &rcol.rt, &c.depth_to_color);
    ks_extrinsics_compose(&inv_c, &rd.rt, &c.color_to_depth);
    if (have_a)
        ks_extrinsics_compose(&inv_d, &accel, &c.depth_to_accel);
    else
        ks_extrinsics_identity(&c.depth_to_accel);
    if (have_g)
        ks_extrinsics_compose(&inv_d, &gyro, &c.depth_to_gyro);
    else
        ks_extrinsics_identity(&c.depth_to_gyro);
    *out = c;
done:
    json_decref(root);
    return st;
}

bool ks_calibration_depth_to_color_pixel(const ks_calibration *c, const double uv_depth[2], double depth_mm,
                                         double uv_color[2])
{
    if (!c || c->depth_mode == KS_DEPTH_OFF || c->color_resolution == KS_COLOR_OFF || !(depth_mm > 0))
        return false;
    double p[3], q[3];
    if (!ks_unproject(&c->depth, uv_depth, depth_mm, p))
        return false;
    ks_extrinsics_apply(&c->depth_to_color, p, q);
    return ks_project(&c->color, q, uv_color);
}
