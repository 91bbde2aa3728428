/* Device interface of the simulator: serials, firmware, jacks, colour control capabilities, IMU,
 * concurrent readers (one thread per device), determinism under a seed, paced mode. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_info_firmware_jacks(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    snprintf(rig.devices[2].firmware, sizeof rig.devices[2].firmware, "1.5.92");
    ks_sim_config cfg;
    simt_config(&cfg, 91, false);
    ks_backend *b;
    KS_CHECK(ks_backend_open_sim(&rig, &cfg, &b, NULL) == KS_OK);
    KS_CHECK_STR(ks_backend_name(b), "sim");
    KS_CHECK_INT(ks_backend_device_count(b), 3);
    ks_device *d[3];
    for (int i = 0; i < 3; i++)
        KS_CHECK(ks_device_open(b, i, &d[i], NULL) == KS_OK);
    /* a device is open once */
    ks_device *again;
    ks_error err;
    KS_CHECK_INT(ks_device_open(b, 1, &again, &err), KS_ESTATE);
    KS_CHECK_STR(ks_device_info_get(d[1])->serial, "SIM00001");
    KS_CHECK_STR(ks_device_info_get(d[1])->backend, "sim");
    char v[32];
    ks_version_format(&ks_device_info_get(d[0])->rgb, v, sizeof v);
    KS_CHECK_STR(v, "1.6.110");
    ks_version_format(&ks_device_info_get(d[2])->rgb, v, sizeof v);
    KS_CHECK_STR(v, "1.5.92");
    ks_jack_state j[3];
    for (int i = 0; i < 3; i++)
        KS_CHECK(ks_device_get_jacks(d[i], &j[i], NULL) == KS_OK && j[i].supported);
    KS_CHECK(!j[0].sync_in && j[0].sync_out);
    KS_CHECK(j[1].sync_in && j[1].sync_out);
    KS_CHECK(j[2].sync_in && !j[2].sync_out);
    /* the generic layer's jack rule sees the simulated jacks: the last device cannot be master */
    ks_device_config c;
    simt_device_config(&rig, 2, &c, 0, 0);
    c.wired_sync_mode = KS_SYNC_MASTER;
    KS_CHECK_INT(ks_device_start_cameras(d[2], &c, &err), KS_ESYNC);
    for (int i = 0; i < 3; i++)
        ks_device_close(d[i]);
    /* open by serial through the generic layer */
    KS_CHECK(ks_device_open_by_serial(b, "SIM00002", &again, NULL) == KS_OK);
    ks_device_close(again);
    ks_backend_free(b);
}

static void test_color_control_caps(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 92, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_control_caps k;
    KS_CHECK(ks_device_get_color_control_caps(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, &k, NULL) == KS_OK);
    KS_CHECK(k.supports_auto);
    KS_CHECK_INT(k.min_value, ks_exposure_min_us());
    KS_CHECK_INT(k.default_mode, KS_CONTROL_MODE_AUTO);
    KS_CHECK(ks_device_get_color_control_caps(r.dev[0], KS_CONTROL_POWERLINE_FREQUENCY, &k, NULL) == KS_OK);
    KS_CHECK(!k.supports_auto && k.min_value == 1 && k.max_value == 2);
    ks_error err;
    KS_CHECK_INT(ks_device_set_color_control(r.dev[0], KS_CONTROL_BRIGHTNESS, KS_CONTROL_MODE_AUTO, 0, &err),
                 KS_EINVAL);
    ks_control_mode m;
    int32_t val;
    KS_CHECK(ks_device_set_color_control(r.dev[0], KS_CONTROL_GAIN, KS_CONTROL_MODE_MANUAL, 77, NULL) == KS_OK);
    KS_CHECK(ks_device_get_color_control(r.dev[0], KS_CONTROL_GAIN, &m, &val, NULL) == KS_OK);
    KS_CHECK_INT(val, 77);
    simt_close(&r);
}

static void test_imu(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 93, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_error err;
    KS_CHECK_INT(ks_device_start_imu(r.dev[0], &err), KS_ESTATE); /* needs running cameras */
    KS_CHECK(simt_start_all(&r, &rig));
    KS_CHECK(ks_device_start_imu(r.dev[0], NULL) == KS_OK);
    uint64_t first = 0, last = 0;
    int n = 0;
    for (; n < ks_imu_sample_rate_hz(); n++) {
        ks_imu_sample s;
        if (ks_device_get_imu_sample(r.dev[0], &s, 100, &err) != KS_OK)
            break;
        double g = sqrt(s.acc[0] * s.acc[0] + s.acc[1] * s.acc[1] + s.acc[2] * s.acc[2]);
        KS_CHECK_NEAR(g, 9.81, 0.35); /* gravity + the device's bias (<= 0.15 m/s^2 per axis) + noise */
        if (n == 0)
            first = s.acc_ts_us;
        last = s.acc_ts_us;
    }
    KS_CHECK_INT(n, ks_imu_sample_rate_hz());
    /* one second of samples spans one second of device time */
    KS_CHECK_NEAR((double)(last - first), 1e6 * (n - 1) / ks_imu_sample_rate_hz(), 100);
    simt_close(&r);
}

/* Mean of one second of IMU samples of a standalone device posed at `pos` looking at `look`. */
static void imu_mean(const double pos[3], const double look[3], double roll_deg, double acc[3], double gyro[3],
                     double R_accel[9])
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 94, false);
    cfg.poses[0].set = true;
    memcpy(cfg.poses[0].position, pos, 3 * sizeof(double));
    memcpy(cfg.poses[0].look_at, look, 3 * sizeof(double));
    cfg.poses[0].roll_deg = roll_deg;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    KS_CHECK(ks_device_start_imu(r.dev[0], NULL) == KS_OK);
    char *json = NULL;
    size_t len = 0;
    ks_calibration cal;
    KS_CHECK(ks_device_get_calibration_json(r.dev[0], &json, &len, NULL) == KS_OK);
    KS_CHECK(ks_calibration_from_json(json, len, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, &cal, NULL) == KS_OK);
    memcpy(R_accel, cal.depth_to_accel.R, 9 * sizeof(double));
    free(json);
    int n = ks_imu_sample_rate_hz();
    for (int k = 0; k < 3; k++)
        acc[k] = gyro[k] = 0;
    for (int i = 0; i < n; i++) {
        ks_imu_sample s;
        KS_CHECK(ks_device_get_imu_sample(r.dev[0], &s, 100, NULL) == KS_OK);
        for (int k = 0; k < 3; k++) {
            acc[k] += s.acc[k] / n;
            gyro[k] += s.gyro[k] / n;
        }
    }
    simt_close(&r);
}

/* Gravity lies along the device's up axis, seen through the calibration's accelerometer extrinsics
 * (not along the optical axis or sideways), follows pitch and roll, and matches the real device. */
static void test_imu_direction(void)
{
    double acc[3], gyro[3], Ra[9];
    /* level: the depth camera looks horizontally, world up is the camera's -y */
    const double p0[3] = {0, 0, 1000}, l0[3] = {1000, 0, 1000};
    imu_mean(p0, l0, 0, acc, gyro, Ra);
    for (int k = 0; k < 3; k++) {
        double want = 9.81 * -Ra[k * 3 + 1];
        KS_CHECK_MSG(fabs(acc[k] - want) < 0.2, "level: accel axis %d reads %.3f, gravity through the "
                     "calibration gives %.3f", k, acc[k], want);
        KS_CHECK_MSG(fabs(gyro[k]) < 0.003, "gyro axis %d %.4f at rest", k, gyro[k]);
    }
    printf("level device: accel (%.3f, %.3f, %.3f) m/s^2, gyro (%.4f, %.4f, %.4f) rad/s\n", acc[0], acc[1], acc[2],
           gyro[0], gyro[1], gyro[2]);
    /* the Azure Kinect's accelerometer z is (minus) the housing's up: nearly all of g there, none sideways */
    KS_CHECK(acc[2] < -9.3);
    KS_CHECK(fabs(acc[1]) < 0.3);
    /* rolled 90 degrees: gravity moves to the accelerometer's sideways (y) axis */
    imu_mean(p0, l0, 90, acc, gyro, Ra);
    KS_CHECK_MSG(fabs(fabs(acc[1]) - 9.81) < 0.35 && fabs(acc[2]) < 1.5, "rolled: (%.2f, %.2f, %.2f)", acc[0],
                 acc[1], acc[2]);
    /* tilted up by 10.7 degrees: the real fixture's device read (-2.888, -0.194, -9.437) */
    const double l1[3] = {1000, 0, 1000 + 1000 * tan(10.7 * 3.141592653589793 / 180)};
    imu_mean(p0, l1, 0, acc, gyro, Ra);
    printf("tilted up 10.7 deg: accel (%.3f, %.3f, %.3f); the real fixture's first sample (-2.888, -0.194, "
           "-9.437)\n", acc[0], acc[1], acc[2]);
    KS_CHECK_MSG(fabs(acc[0] + 2.888) < 0.35 && fabs(acc[2] + 9.437) < 0.35, "tilted: (%.2f, %.2f, %.2f)", acc[0],
                 acc[1], acc[2]);
}

typedef struct reader {
    simt_run *r;
    int dev;
    int frames;
    int got;
    int64_t first_pulse;
    uint64_t pulse_sum;
} reader;

static void *read_thread(void *arg)
{
    reader *rd = arg;
    for (int k = 0; k < rd->frames; k++) {
        ks_capture *c = NULL;
        ks_sim_frame_truth t;
        if (ks_device_get_capture(rd->r->dev[rd->dev], &c, 1000, NULL) != KS_OK)
            continue;
        ks_sim_last_truth(rd->r->sim, rd->dev, &t, NULL);
        if (rd->got++ == 0)
            rd->first_pulse = t.pulse_index;
        rd->pulse_sum += (uint64_t)t.pulse_index;
        ks_capture_release(c);
    }
    return NULL;
}

static void test_concurrent_readers(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    ks_sim_config cfg;
    simt_config(&cfg, 94, true);
    cfg.render_color = false;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    pthread_t th[3];
    reader rd[3];
    for (int i = 0; i < 3; i++) {
        rd[i] = (reader){.r = &r, .dev = i, .frames = 60};
        pthread_create(&th[i], NULL, read_thread, &rd[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    int64_t first_min = INT64_MAX, first_max = 0;
    for (int i = 0; i < 3; i++) {
        KS_CHECK_INT(rd[i].got, 60);
        ks_sim_device_stats s;
        ks_sim_device_stats_get(r.sim, i, &s, NULL);
        KS_CHECK_INT(s.dropped_queue, 0); /* lockstep: a fast reader does not overflow a slower one */
        KS_CHECK_INT(s.delivered, 60);
        /* every device returned 60 pulses in a row from its first, which follows its startup drops
         * (0..2 captures lost right after it started, as users' devices do) */
        KS_CHECK_INT(rd[i].first_pulse, (int64_t)s.dropped_startup);
        KS_CHECK(rd[i].first_pulse >= 0 && rd[i].first_pulse <= cfg.startup_drop_max);
        KS_CHECK_INT(rd[i].pulse_sum, (uint64_t)(60 * rd[i].first_pulse + 59 * 60 / 2));
        first_min = rd[i].first_pulse < first_min ? rd[i].first_pulse : first_min;
        first_max = rd[i].first_pulse > first_max ? rd[i].first_pulse : first_max;
    }
    /* seed 94 starts the devices at different pulses: the readers were not lined up by index */
    KS_CHECK(first_max > first_min);
    simt_close(&r);
}

static uint64_t fingerprint(uint64_t seed)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, seed, false);
    cfg.clock_default.jitter_us = 3;
    cfg.usb_jitter_us = 200;
    simt_run r;
    simt_open(&r, &rig, &cfg);
    simt_start_all(&r, &rig);
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < 30; k++)
        for (int i = 0; i < 2; i++) {
            ks_capture *c = NULL;
            if (ks_device_get_capture(r.dev[i], &c, 1000, NULL) != KS_OK)
                continue;
            h = (h ^ c->color->device_ts_us) * 1099511628211ull;
            h = (h ^ c->depth->system_ts_ns) * 1099511628211ull;
            ks_capture_release(c);
        }
    simt_close(&r);
    return h;
}

static void test_deterministic_under_seed(void)
{
    KS_CHECK(fingerprint(5) == fingerprint(5));
    KS_CHECK(fingerprint(5) != fingerprint(6));
}

static void test_paced_tracks_wall_clock(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 95, false);
    cfg.mode = KS_SIM_PACED;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < 6; k++) {
        ks_capture *c = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        ks_capture_release(c);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double wall = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    double virt = (double)ks_sim_now_ns(r.sim) * 1e-9;
    /* 0.1 s start latency + 6 frames: about a quarter second of wall time, never less than virtual;
     * the upper bound only catches a hang (a loaded CI machine can be several times slower) */
    KS_CHECK_MSG(wall > 0.2 && wall < 5.0, "6 paced frames took %.3f s", wall);
    KS_CHECK(virt <= wall + 0.05);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_info_firmware_jacks);
    KS_RUN(test_color_control_caps);
    KS_RUN(test_imu);
    KS_RUN(test_imu_direction);
    KS_RUN(test_concurrent_readers);
    KS_RUN(test_deterministic_under_seed);
    KS_RUN(test_paced_tracks_wall_clock);
    return KS_TEST_END();
}
