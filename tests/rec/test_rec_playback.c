/* The playback backend: recordings served through the device interface exactly as recorded. */
#include <pthread.h>
#include <stdlib.h>

#include "kinsync/plan.h"
#include "kinsync/playback.h"
#include "ks_test.h"
#include "recfix.h"

static char dir[256];
static char paths[3][300];
static const recfix_dev devs[3] = {
    {"000100000001", "master", KS_SYNC_MASTER, 0, -80, 12, -1, 1000000, 0},
    {"000100000003", "sub2", KS_SYNC_SUBORDINATE, 320, 80, 12, 5, 1000000, 0},
    {"000100000002", "sub1", KS_SYNC_SUBORDINATE, 160, 0, 11, -1, 1000000, 0},
};

static void write_rig(void)
{
    recfix_tmpdir(dir, sizeof dir, "pb");
    for (int d = 0; d < 3; d++) {
        snprintf(paths[d], sizeof paths[d], "%s/%s.mkv", dir, devs[d].role);
        ks_error e;
        ks_status st = recfix_write(paths[d], &devs[d], d, "lab", "sha256:abc", &e);
        KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    }
}

static const char *const *path_list(void)
{
    static const char *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = paths[i];
    return p;
}

static void test_device_identity(void)
{
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    KS_CHECK_STR(ks_backend_name(b), "playback");
    KS_CHECK_INT(ks_backend_device_count(b), 3);
    ks_device *d = NULL;
    KS_CHECK_INT(ks_device_open_by_serial(b, "000100000003", &d, &e), KS_OK);
    KS_CHECK_STR(ks_device_info_get(d)->serial, "000100000003");
    KS_CHECK_STR(ks_device_info_get(d)->backend, "playback");
    KS_CHECK_INT(ks_device_info_get(d)->rgb.iteration, 110);
    KS_CHECK_INT(ks_device_info_get(d)->depth.iteration, 79);
    char *json = NULL;
    size_t len = 0;
    KS_CHECK_INT(ks_device_get_calibration_json(d, &json, &len, &e), KS_OK);
    KS_CHECK_CONTAINS(json, "\"serial\":\"000100000003\"");
    KS_CHECK_INT(len, strlen(json));
    free(json);
    /* the chain is master -> sub1 (160 us) -> sub2 (320 us): sub2 is last, no Sync Out */
    ks_jack_state j;
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(j.supported && j.sync_in && !j.sync_out);
    ks_device_close(d);
    KS_CHECK_INT(ks_device_open(b, 2, &d, &e), KS_OK);
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(j.sync_in && j.sync_out);
    /* opening the same recording twice is refused */
    ks_device *d2 = NULL;
    KS_CHECK_INT(ks_device_open(b, 2, &d2, &e), KS_ESTATE);
    ks_device_close(d);
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_OK);
    KS_CHECK_INT(ks_device_get_jacks(d, &j, &e), KS_OK);
    KS_CHECK(!j.sync_in && j.sync_out);
    ks_device_close(d);
    KS_CHECK_STR(ks_playback_path(b, 1), paths[1]);
    KS_CHECK(ks_playback_path(b, 3) == NULL);
    ks_backend_free(b);
}

static void test_start_rules(void)
{
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    ks_device *d = NULL;
    KS_CHECK_INT(ks_device_open(b, 1, &d, &e), KS_OK);
    ks_device_config cfg;
    KS_CHECK_INT(ks_playback_recorded_config(b, 1, &cfg, &e), KS_OK);
    KS_CHECK_INT(cfg.wired_sync_mode, KS_SYNC_SUBORDINATE);
    KS_CHECK_INT(cfg.subordinate_delay_off_master_usec, 320);
    KS_CHECK_INT(cfg.depth_delay_off_color_usec, 80);
    ks_device_config bad = cfg;
    bad.subordinate_delay_off_master_usec = 160;
    KS_CHECK_INT(ks_device_start_cameras(d, &bad, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, paths[1]);
    KS_CHECK_CONTAINS(e.message, "320 us");
    bad = cfg;
    bad.camera_fps = KS_FPS_15;
    KS_CHECK_INT(ks_device_start_cameras(d, &bad, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "30 fps");
    bad = cfg;
    bad.color_resolution = KS_COLOR_1080P;
    KS_CHECK_INT(ks_device_start_cameras(d, &bad, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "720P");
    bad = cfg;
    bad.wired_sync_mode = KS_SYNC_STANDALONE;
    bad.subordinate_delay_off_master_usec = 0;
    KS_CHECK_INT(ks_device_start_cameras(d, &bad, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "SUBORDINATE");
    KS_CHECK(!ks_device_is_streaming(d));
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    ks_device_close(d);
    ks_backend_free(b);
}

/* Every frame comes back with its recorded timestamps and pixels, then KS_EEOF. */
static void test_frames_exact(void)
{
    ks_playback_options o;
    ks_playback_options_init(&o);
    o.pace = KS_PLAYBACK_FREE;
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, &o, &b, &e), KS_OK);
    const int period = ks_frame_period_us(KS_FPS_30);
    for (int di = 0; di < 3; di++) {
        ks_device *d = NULL;
        KS_CHECK_INT(ks_device_open(b, di, &d, &e), KS_OK);
        ks_device_config cfg;
        ks_playback_recorded_config(b, di, &cfg, &e);
        KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
        KS_CHECK_INT(ks_device_start_imu(d, &e), KS_OK);
        int got = 0;
        for (int i = 0; i < devs[di].frames; i++) {
            if (i == devs[di].skip)
                continue;
            ks_capture *c = NULL;
            ks_status st = ks_device_get_capture(d, &c, 100, &e);
            KS_CHECK_MSG(st == KS_OK, "device %d frame %d: %s", di, i, e.message);
            if (st)
                break;
            uint64_t t = devs[di].base_us + devs[di].sub_delay_us + (uint64_t)i * (uint64_t)period;
            KS_CHECK(c->color && c->depth && c->ir);
            if (c->color && c->depth && c->ir) {
                KS_CHECK_INT(c->color->device_ts_us, t);
                KS_CHECK_INT(c->depth->device_ts_us, (int64_t)t + devs[di].depth_delay_us);
                KS_CHECK_INT(c->ir->device_ts_us, (int64_t)t + devs[di].depth_delay_us);
                KS_CHECK_INT(c->color->format, KS_FORMAT_MJPG);
                KS_CHECK_INT(c->color->size, 16);
                KS_CHECK_INT(c->color->data[3], i);
                KS_CHECK_INT(c->depth->width, 640);
                KS_CHECK_INT(((uint16_t *)c->depth->data)[1234], recfix_px(di, i, 1));
                KS_CHECK_INT(((uint16_t *)c->ir->data)[999], recfix_px(di, i, 2));
                KS_CHECK_INT(c->color->system_ts_ns, t * 1000);
            }
            ks_capture_release(c);
            got++;
        }
        ks_capture *c = NULL;
        KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_EEOF);
        KS_CHECK_CONTAINS(e.message, paths[di]);
        KS_CHECK(c == NULL);
        /* IMU samples every 5 ms from the first frame, in order */
        ks_imu_sample s;
        int n = 0;
        uint64_t prev = 0;
        while (ks_device_get_imu_sample(d, &s, 0, &e) == KS_OK) {
            KS_CHECK(s.acc_ts_us > prev || n == 0);
            prev = s.acc_ts_us;
            n++;
        }
        KS_CHECK_INT(e.code, KS_EEOF);
        KS_CHECK(n >= 60);
        /* a restart plays from the beginning */
        ks_device_stop_cameras(d);
        KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
        KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_OK);
        KS_CHECK_INT(c->color->device_ts_us, devs[di].base_us + devs[di].sub_delay_us);
        ks_capture_release(c);
        ks_device_close(d);
        KS_CHECK_INT(got, devs[di].frames - (devs[di].skip >= 0));
    }
    ks_backend_free(b);
}

/* Starting with a stream off serves only the others; synchronized_images_only works. */
static void test_subset(void)
{
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    ks_device *d = NULL;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_OK);
    ks_device_config cfg;
    ks_playback_recorded_config(b, 0, &cfg, &e);
    cfg.depth_mode = KS_DEPTH_OFF;
    cfg.depth_delay_off_color_usec = 0;
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    ks_capture *c = NULL;
    KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_OK);
    KS_CHECK(c && c->color && !c->depth && !c->ir);
    ks_capture_release(c);
    ks_device_close(d);
    ks_backend_free(b);
}

/* ks_device_set_streams: streams left out come header-only (timestamps as recorded, no data) and
 * are not decoded; asking for them again decodes them again. */
static void test_streams(void)
{
    ks_playback_options o;
    ks_playback_options_init(&o);
    o.pace = KS_PLAYBACK_FREE;
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, &o, &b, &e), KS_OK);
    ks_device *d = NULL;
    KS_CHECK_INT(ks_device_open(b, 0, &d, &e), KS_OK);
    ks_device_config cfg;
    ks_playback_recorded_config(b, 0, &cfg, &e);
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    ks_device_set_streams(d, KS_STREAM_DEPTH);
    const int period = ks_frame_period_us(KS_FPS_30);
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            ks_device_set_streams(d, 0); /* 0: everything again */
        ks_capture *c = NULL;
        KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_OK);
        if (!c)
            break;
        uint64_t t = devs[0].base_us + (uint64_t)i * (uint64_t)period;
        KS_CHECK(c->color && c->depth && c->ir);
        if (c->color && c->depth && c->ir) {
            KS_CHECK_INT(ks_image_is_header_only(c->color), i < 2);
            KS_CHECK_INT(ks_image_is_header_only(c->ir), i < 2);
            KS_CHECK(!ks_image_is_header_only(c->depth));
            KS_CHECK_INT(c->color->device_ts_us, t);
            KS_CHECK_INT(c->ir->device_ts_us, (int64_t)t + devs[0].depth_delay_us);
            KS_CHECK_INT(c->color->system_ts_ns, t * 1000);
            KS_CHECK_INT(c->ir->width, 640);
            KS_CHECK_INT(((uint16_t *)c->depth->data)[1234], recfix_px(0, i, 1));
            if (i >= 2) {
                KS_CHECK_INT(c->color->data[3], i);
                KS_CHECK_INT(((uint16_t *)c->ir->data)[999], recfix_px(0, i, 2));
            }
        }
        ks_capture_release(c);
    }
    ks_device_close(d);
    ks_backend_free(b);
}

typedef struct reader_arg {
    ks_backend *b;
    ks_device *d;
    int index;
    int frames;
    int64_t max_lead;    /* largest lead over the slowest device seen when a capture arrived */
} reader_arg;

static int64_t progress[3];
static pthread_mutex_t prog_mu = PTHREAD_MUTEX_INITIALIZER;

static void *reader_main(void *p)
{
    reader_arg *a = p;
    ks_error e;
    ks_device *d = a->d;
    ks_device_config cfg;
    ks_playback_recorded_config(a->b, a->index, &cfg, &e);
    /* subordinates first, the master last (a moment later) */
    if (a->index == 0) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (ks_device_start_cameras(d, &cfg, &e) == KS_OK) {
        ks_capture *c;
        while (ks_device_get_capture(d, &c, 2000, &e) == KS_OK) {
            int64_t t = (int64_t)c->color->device_ts_us - (int64_t)devs[a->index].base_us;
            pthread_mutex_lock(&prog_mu);
            progress[a->index] = t;
            int64_t lo = INT64_MAX;
            for (int k = 0; k < 3; k++)
                if (progress[k] < lo)
                    lo = progress[k];
            if (t - lo > a->max_lead)
                a->max_lead = t - lo;
            pthread_mutex_unlock(&prog_mu);
            a->frames++;
            ks_capture_release(c);
        }
        if (e.code != KS_EEOF)
            fprintf(stderr, "reader %d: %s\n", a->index, e.message);
    }
    return NULL;
}

/* Three capture threads: the subordinates wait for the master and nobody runs ahead. */
static void test_lockstep_threads(void)
{
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    pthread_t th[3];
    reader_arg args[3];
    /* like the session: every device is open before any starts */
    for (int i = 0; i < 3; i++) {
        progress[i] = 0;
        args[i] = (reader_arg){b, NULL, i, 0, 0};
        KS_CHECK_INT(ks_device_open(b, i, &args[i].d, &e), KS_OK);
    }
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader_main, &args[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ks_device_close(args[i].d);
    }
    for (int i = 0; i < 3; i++) {
        KS_CHECK_INT(args[i].frames, devs[i].frames - (devs[i].skip >= 0));
        /* window (2 periods) + the gap of a dropped frame (2 periods) + one capture the slowest
         * thread has received but not yet noted + the subordinate delay; without lockstep the
         * lead reaches the whole recording (12 periods) */
        KS_CHECK_MSG(args[i].max_lead <= 5 * ks_frame_period_us(KS_FPS_30) + 400, "device %d led by %lld us", i,
                     (long long)args[i].max_lead);
    }
    ks_backend_free(b);
}

static void test_subordinate_waits_for_master(void)
{
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    ks_device *m = NULL, *s = NULL;
    KS_CHECK_INT(ks_device_open(b, 0, &m, &e), KS_OK);
    KS_CHECK_INT(ks_device_open(b, 2, &s, &e), KS_OK);
    ks_device_config cfg;
    ks_playback_recorded_config(b, 2, &cfg, &e);
    KS_CHECK_INT(ks_device_start_cameras(s, &cfg, &e), KS_OK);
    ks_capture *c = NULL;
    KS_CHECK_INT(ks_device_get_capture(s, &c, 30, &e), KS_ETIMEOUT);
    ks_playback_recorded_config(b, 0, &cfg, &e);
    KS_CHECK_INT(ks_device_start_cameras(m, &cfg, &e), KS_OK);
    KS_CHECK_INT(ks_device_get_capture(s, &c, 30, &e), KS_OK);
    ks_capture_release(c);
    ks_device_close(s);
    ks_device_close(m);
    ks_backend_free(b);
}

static void test_rig_build(void)
{
    ks_rig rig;
    ks_playback_device pd[3];
    ks_findings f;
    ks_findings_init(&f);
    ks_error e;
    ks_status st = ks_playback_rig_build(path_list(), 3, &rig, pd, &f, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    KS_CHECK_STR(rig.name, "lab");
    KS_CHECK_INT(rig.device_count, 3);
    KS_CHECK_STR(rig.devices[0].name, "master");
    KS_CHECK_STR(rig.devices[1].serial, "000100000003");
    KS_CHECK_INT(rig.devices[1].derived_role, KS_ROLE_SUBORDINATE);
    KS_CHECK_INT(rig.master, 0);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_DAISY_CHAIN);
    KS_CHECK_INT(rig.cable_count, 2);
    KS_CHECK(rig.cables[0].from == 0 && rig.cables[0].to == 2);
    KS_CHECK(rig.cables[1].from == 2 && rig.cables[1].to == 1);
    KS_CHECK_INT(rig.camera.depth_mode, KS_DEPTH_NFOV_UNBINNED);
    KS_CHECK_INT(rig.camera.color_resolution, KS_COLOR_720P);
    KS_CHECK(rig.camera.imu);
    KS_CHECK_INT(pd[1].config.subordinate_delay_off_master_usec, 320);
    KS_CHECK_INT(pd[0].config.depth_delay_off_color_usec, -80);
    KS_CHECK_STR(pd[2].plan_digest, "sha256:abc");
    ks_findings_free(&f);

    /* the plan of the recordings carries the recorded delays, and start_cameras accepts them */
    ks_plan plan;
    KS_CHECK_INT(ks_playback_plan(&rig, pd, &plan, &e), KS_OK);
    KS_CHECK_INT(plan.devices[1].config.subordinate_delay_off_master_usec, 320);
    KS_CHECK_INT(plan.devices[0].config.depth_delay_off_color_usec, -80);
    KS_CHECK_NEAR(plan.devices[1].color_offset_us, ks_delay_effective_us(320), 1e-9);
    /* master -80, sub1 160+0, sub2 320+80: lasers 240 us and more apart, colors 320 us apart */
    KS_CHECK(plan.proof.lasers_ok);
    KS_CHECK(!plan.feasible);
    KS_CHECK_CONTAINS(plan.reason, "color");
    ks_backend *b = NULL;
    KS_CHECK_INT(ks_backend_open_playback(path_list(), 3, NULL, &b, &e), KS_OK);
    for (int i = 0; i < 3 && b; i++) {
        ks_device *d = NULL;
        KS_CHECK_INT(ks_device_open_by_serial(b, rig.devices[i].serial, &d, &e), KS_OK);
        KS_CHECK_MSG(ks_device_start_cameras(d, &plan.devices[i].config, &e) == KS_OK, "%s", e.message);
        ks_device_close(d);
    }
    ks_backend_free(b);

    /* two masters are two rigs */
    const char *two[2] = {paths[0], paths[0]};
    KS_CHECK_INT(ks_playback_rig_build(two, 2, &rig, NULL, NULL, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "000100000001");
    /* subordinates without their master */
    const char *subs[2] = {paths[1], paths[2]};
    KS_CHECK_INT(ks_playback_rig_build(subs, 2, &rig, NULL, NULL, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "no master");
}

static void test_bad_files(void)
{
    ks_backend *b = NULL;
    ks_error e;
    char junk[300];
    snprintf(junk, sizeof junk, "%s/junk.mkv", dir);
    FILE *fp = fopen(junk, "wb");
    fputs("this is not a recording", fp);
    fclose(fp);
    const char *p[2] = {paths[0], junk};
    KS_CHECK(ks_backend_open_playback(p, 2, NULL, &b, &e) != KS_OK);
    KS_CHECK_CONTAINS(e.message, "junk.mkv");
    KS_CHECK(!ks_playback_is_recording(junk));
    KS_CHECK(ks_playback_is_recording(paths[0]));
    const char *missing[1] = {"/nonexistent/x.mkv"};
    KS_CHECK(ks_backend_open_playback(missing, 1, NULL, &b, &e) != KS_OK);
    KS_CHECK_CONTAINS(e.message, "/nonexistent/x.mkv");
}

/* The Azure Kinect recorder's own file plays as a standalone device. */
static void test_real_recording(void)
{
    /* tests/data/k4a (KS_FIXTURES), see tests/data/k4a/README.md */
    static char path[600];
    snprintf(path, sizeof path, "%s/k4a/real-recording-nfov-720p.mkv", KS_FIXTURES);
    const char *p[1] = {path};
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_playback(p, 1, NULL, &b, &e), KS_OK);
    if (!b)
        return;
    ks_device *d = NULL;
    KS_CHECK_INT(ks_device_open_by_serial(b, "001514394512", &d, &e), KS_OK);
    ks_jack_state j;
    ks_device_get_jacks(d, &j, &e);
    KS_CHECK(!j.sync_in && !j.sync_out);
    char *json = NULL;
    KS_CHECK_INT(ks_device_get_calibration_json(d, &json, NULL, &e), KS_OK);
    KS_CHECK_CONTAINS(json, "CalibrationInformation");
    free(json);
    ks_device_config cfg;
    ks_playback_recorded_config(b, 0, &cfg, &e);
    KS_CHECK_INT(cfg.camera_fps, KS_FPS_5);
    KS_CHECK_INT(ks_device_start_cameras(d, &cfg, &e), KS_OK);
    ks_capture *c = NULL;
    KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_OK);
    if (c) {
        KS_CHECK(c->color && c->depth && c->ir);
        KS_CHECK_INT(c->color->device_ts_us, 800222);
        KS_CHECK_INT(c->depth->device_ts_us, 800222);
        KS_CHECK_INT(c->color->width, 1280);
        KS_CHECK(c->color->data[0] == 0xFF && c->color->data[1] == 0xD8);
        ks_capture_release(c);
    }
    KS_CHECK_INT(ks_device_get_capture(d, &c, 100, &e), KS_EEOF);
    ks_device_close(d);
    ks_backend_free(b);
}

int main(void)
{
    write_rig();
    KS_RUN(test_device_identity);
    KS_RUN(test_start_rules);
    KS_RUN(test_frames_exact);
    KS_RUN(test_subset);
    KS_RUN(test_streams);
    KS_RUN(test_lockstep_threads);
    KS_RUN(test_subordinate_waits_for_master);
    KS_RUN(test_rig_build);
    KS_RUN(test_bad_files);
    KS_RUN(test_real_recording);
    recfix_rmdir(dir);
    return KS_TEST_END();
}
