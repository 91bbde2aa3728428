/* calib/calib_synth.c: plausible factory calibrations for simulated devices, in the exact JSON
 * layout a retail Azure Kinect stores (CalibrationInformation: Cameras D0/PV0 with 14
 * Brown-Conrady parameters, InertialSensors gyro/accelerometer, Metadata). The nominal values are
 * those of a typical retail unit; each seed moves principal points, focal lengths, distortion and
 * the depth-to-color mounting by small amounts, as units differ on the production line. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "calib/linalg.h"
#include "kinsync/calibration.h"

static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static double urand(uint64_t *s)
{
    return (double)(sm64(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static json_t *num_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n && a; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *rt_json(const double R[9], const double t_m[3])
{
    return json_pack("{s:o, s:o}", "Rotation", num_array(R, 9), "Translation", num_array(t_m, 3));
}

static json_t *camera_json(const char *loc, const char *purpose, const double params[14], double metric_radius,
                           int w, int h, const double R[9], const double t_m[3])
{
    double zeros[12] = {0};
    return json_pack("{s:{s:i, s:o, s:s}, s:s, s:s, s:f, s:o, s:i, s:i, s:s, s:{s:o}}", "Intrinsics",
                     "ModelParameterCount", 14, "ModelParameters", num_array(params, 14), "ModelType",
                     "CALIBRATION_LensDistortionModelBrownConrady", "Location", loc, "Purpose", purpose,
                     "MetricRadius", metric_radius, "Rt", rt_json(R, t_m), "SensorHeight", h, "SensorWidth", w,
                     "Shutter", "CALIBRATION_ShutterTypeUndefined", "ThermalAdjustmentParams", "Params",
                     num_array(zeros, 12));
}

static json_t *imu_json(const char *type, const double R[9], const double t_m[3], double noise, double bias_unc,
                        int mask, uint64_t *s)
{
    double bias[12] = {0}, mix[36] = {0}, noise6[6] = {noise, noise, noise, 0, 0, 0};
    double unc[3] = {bias_unc, bias_unc, bias_unc}, sos[9] = {0}, bounds[2] = {5, 60};
    for (int i = 0; i < 3; i++)
        bias[i * 4] = urand(s) * bias_unc * 20;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            mix[(i * 3 + j) * 4] = (i == j ? 1.0 : 0.0) + urand(s) * (i == j ? 5e-3 : 2e-3);
    return json_pack("{s:o, s:o, s:s, s:o, s:i, s:o, s:o, s:o, s:s, s:o, s:i}", "BiasTemperatureModel",
                     num_array(bias, 12), "BiasUncertainty", num_array(unc, 3), "Id",
                     "CALIBRATION_InertialSensorId_LSM6DSM", "MixingMatrixTemperatureModel", num_array(mix, 36),
                     "ModelTypeMask", mask, "Noise", num_array(noise6, 6), "Rt", rt_json(R, t_m),
                     "SecondOrderScaling", num_array(sos, 9), "SensorType", type, "TemperatureBounds",
                     num_array(bounds, 2), "TemperatureC", 0);
}

char *ks_calibration_json_synthesize(uint64_t seed, const char *serial)
{
    uint64_t s = seed ^ 0x6b696e73796e63ull; /* "kinsync" */
    const ks_depth_mode_info *dm = ks_depth_mode_get(KS_DEPTH_WFOV_UNBINNED);
    const ks_color_resolution_info *cm = ks_color_resolution_get(KS_COLOR_3072P);
    if (!dm || !cm)
        return NULL;
    /* Nominal retail depth lens (normalized to the 1024x1024 sensor). */
    double d[14] = {0.5130, 0.5169, 0.49278, 0.49290, 0.54794, -0.02097, -0.00265,
                    0.88968, 0.08613, -0.01391, 0, 0, -7.2e-05, 2.06e-05};
    /* Nominal retail color lens (normalized to the 4:3 sensor). */
    double c[14] = {0.49985, 0.50662, 0.47797, 0.63742, 0.33012, -2.48940, 1.45367,
                    0.20891, -2.30292, 1.37513, 0, 0, -1.29e-04, -1.62e-04};
    d[0] += urand(&s) * 4e-3;
    d[1] += urand(&s) * 4e-3;
    double fd = 1.0 + urand(&s) * 3e-3;
    d[2] *= fd;
    d[3] *= fd * (1.0 + urand(&s) * 2e-4);
    for (int i = 4; i < 10; i++)
        d[i] *= 1.0 + urand(&s) * 5e-3; /* same relative change in numerator and denominator keeps it sane */
    d[12] += urand(&s) * 3e-5;
    d[13] += urand(&s) * 3e-5;
    c[0] += urand(&s) * 3e-3;
    c[1] += urand(&s) * 3e-3;
    double fc = 1.0 + urand(&s) * 3e-3;
    c[2] *= fc;
    c[3] *= fc * (1.0 + urand(&s) * 2e-4);
    for (int i = 4; i < 10; i++)
        c[i] *= 1.0 + urand(&s) * 2e-3;
    c[12] += urand(&s) * 5e-5;
    c[13] += urand(&s) * 5e-5;
    double depth_radius = 1.74 + urand(&s) * 0.003;

    double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, zero[3] = {0, 0, 0};
    /* The color camera sits ~32 mm beside the depth camera, tilted ~5-6 degrees about x. */
    double wc[3] = {-0.0865 + urand(&s) * 0.01, urand(&s) * 0.002, -0.0012 + urand(&s) * 0.002};
    double Rc[9];
    ks_rot_exp(wc, Rc);
    double tc[3] = {-0.0321 + urand(&s) * 3e-4, -0.0022 + urand(&s) * 3e-4, 0.0039 + urand(&s) * 3e-4};
    /* IMU: axes permuted relative to the depth camera (x_imu = -z..., as on real units). */
    double Ri[9] = {0.0019, 0.1085, -0.9941, -1.0, -0.0026, -0.0022, -0.0029, 0.9941, 0.1085};
    double wi[3] = {urand(&s) * 1e-3, urand(&s) * 1e-3, urand(&s) * 1e-3}, Rp[9], Rg[9], Ra[9];
    ks_rot_exp(wi, Rp);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double sg = 0;
            for (int k = 0; k < 3; k++)
                sg += Rp[i * 3 + k] * Ri[k * 3 + j];
            Rg[i * 3 + j] = sg;
            Ra[i * 3 + j] = sg;
        }
    double ta[3] = {-0.0510 + urand(&s) * 2e-4, 0.0035 + urand(&s) * 2e-4, 0.0013 + urand(&s) * 2e-4};

    char date[64];
    snprintf(date, sizeof date, "%u/%u/2019 10:%02u:%02u AM GMT", (unsigned)(1 + sm64(&s) % 12),
             (unsigned)(1 + sm64(&s) % 28), (unsigned)(sm64(&s) % 60), (unsigned)(sm64(&s) % 60));
    json_t *root = json_pack(
        "{s:{s:[o,o], s:[o,o], s:{s:s, s:s, s:{s:i, s:i}, s:s, s:s}}}", "CalibrationInformation", "Cameras",
        camera_json("CALIBRATION_CameraLocationD0", "CALIBRATION_CameraPurposeDepth", d, depth_radius,
                    dm->sensor_width, dm->sensor_height, I, zero),
        camera_json("CALIBRATION_CameraLocationPV0", "CALIBRATION_CameraPurposePhotoVideo", c, 0.0, cm->width,
                    cm->height, Rc, tc),
        "InertialSensors", imu_json("CALIBRATION_InertialSensorType_Gyro", Rg, zero, 0.00095, 1e-4, 16, &s),
        imu_json("CALIBRATION_InertialSensorType_Accelerometer", Ra, ta, 0.0107, 0.01, 56, &s), "Metadata",
        "SerialId", serial ? serial : "000000000000", "FactoryCalDate", date, "Version", "Major", 1, "Minor", 2,
        "DeviceName", "AzureKinect-PV", "Notes", "PV0_max_radius_invalid");
    if (!root)
        return NULL;
    char *out = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return out;
}
