/* Round trip: a simulated 3-device daisy chain is recorded with ks_record_run (through the session:
 * subordinates first, master last, one file per device), then the files are aligned. A proxy backend between the
 * recorder and the simulator logs every capture the recorder received with the simulator's ground
 * truth for it, so the test can check: every frame set the simulator produced is recovered (the
 * frames of one sync pulse end up in one set, and every pulse all devices captured is a complete
 * set), the timestamps in the files are exactly those delivered, and the skews align reports equal
 * the true capture-time differences. */
#include <stdlib.h>
#include <unistd.h>

#include "kinsync/align.h"
#include "kinsync/playback.h"
#include "kinsync/record.h"
#include "kinsync/sim.h"
#include "ks_test.h"
#include "recfix.h"
#include "support/sim_rigs.h"

#define MAXLOG 512

typedef struct truth_log {
    int n;
    uint64_t color_ts[MAXLOG], depth_ts[MAXLOG];
    ks_sim_frame_truth truth[MAXLOG];
} truth_log;

typedef struct proxy_ctx {
    ks_backend *inner;
    ks_sim *sim;
    truth_log log[3];
} proxy_ctx;

typedef struct proxy_dev {
    proxy_ctx *ctx;
    int index;
    ks_device *dev;
} proxy_dev;

static int p_count(void *c) { return ks_backend_device_count(((proxy_ctx *)c)->inner); }
static ks_status p_open(void *c, int index, void **out, ks_error *err)
{
    proxy_dev *d = calloc(1, sizeof *d);
    d->ctx = c;
    d->index = index;
    ks_status st = ks_device_open(d->ctx->inner, index, &d->dev, err);
    if (st) {
        free(d);
        return st;
    }
    *out = d;
    return KS_OK;
}
static void p_close(void *v)
{
    proxy_dev *d = v;
    ks_device_close(d->dev);
    free(d);
}
static ks_status p_info(void *v, ks_device_info *i, ks_error *err)
{
    *i = *ks_device_info_get(((proxy_dev *)v)->dev);
    return KS_OK;
}
static ks_status p_calib(void *v, char **j, size_t *l, ks_error *e) { return ks_device_get_calibration_json(((proxy_dev *)v)->dev, j, l, e); }
static ks_status p_jacks(void *v, ks_jack_state *j, ks_error *e) { return ks_device_get_jacks(((proxy_dev *)v)->dev, j, e); }
static ks_status p_set(void *v, ks_color_control c, ks_control_mode m, int32_t x, ks_error *e)
{
    return ks_device_set_color_control(((proxy_dev *)v)->dev, c, m, x, e);
}
static ks_status p_start(void *v, const ks_device_config *c, ks_error *e) { return ks_device_start_cameras(((proxy_dev *)v)->dev, c, e); }
static void p_stop(void *v) { ks_device_stop_cameras(((proxy_dev *)v)->dev); }
static ks_status p_get(void *v, ks_capture **out, int32_t t, ks_error *e)
{
    proxy_dev *d = v;
    ks_status st = ks_device_get_capture(d->dev, out, t, e);
    if (st == KS_OK) {
        truth_log *l = &d->ctx->log[d->index];
        if (l->n < MAXLOG) {
            l->color_ts[l->n] = (*out)->color ? (*out)->color->device_ts_us : 0;
            l->depth_ts[l->n] = (*out)->depth ? (*out)->depth->device_ts_us : 0;
            ks_sim_last_truth(d->ctx->sim, d->index, &l->truth[l->n], NULL);
            l->n++;
        }
    }
    return st;
}
static ks_status p_start_imu(void *v, ks_error *e) { return ks_device_start_imu(((proxy_dev *)v)->dev, e); }
static void p_stop_imu(void *v) { ks_device_stop_imu(((proxy_dev *)v)->dev); }
static ks_status p_imu(void *v, ks_imu_sample *s, int32_t t, ks_error *e)
{
    return ks_device_get_imu_sample(((proxy_dev *)v)->dev, s, t, e);
}
static void p_destroy(void *c) { free(c); }

static const ks_backend_ops proxy_ops = {
    .name = "truth-proxy", .device_count = p_count, .open = p_open, .close = p_close, .get_info = p_info,
    .get_calibration_json = p_calib, .get_jacks = p_jacks, .set_color_control = p_set, .start_cameras = p_start,
    .stop_cameras = p_stop, .get_capture = p_get, .start_imu = p_start_imu, .stop_imu = p_stop_imu,
    .get_imu_sample = p_imu, .destroy = p_destroy,
};

static void test_roundtrip(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 2.0);
    snprintf(rig.name, sizeof rig.name, "roundtrip");
    rig.camera.imu = true;
    ks_sim_config sc;
    simt_config(&sc, 7, false);
    sc.clock_default.drift_ppm = 20; /* the master's oscillator drifts; subordinates follow its pulses */
    ks_backend *sim = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_sim(&rig, &sc, &sim, &e), KS_OK);
    if (!sim)
        return;
    proxy_ctx *pc = calloc(1, sizeof *pc);
    pc->inner = sim;
    pc->sim = ks_sim_from_backend(sim);
    ks_backend *proxy = ks_backend_create(&proxy_ops, pc);

    ks_device_config cfg[3];
    char digest[80];
    KS_CHECK_INT(ks_record_configs_from_rig(&rig, NULL, cfg, digest, &e), KS_OK);
    cfg[1].subordinate_delay_off_master_usec = 0;
    cfg[2].subordinate_delay_off_master_usec = 1000; /* a visible planned offset that align must remove */
    ks_record_plan_digest(&rig, cfg, digest);
    char dir[256];
    recfix_tmpdir(dir, sizeof dir, "rt");
    ks_record_run_options ro;
    memset(&ro, 0, sizeof ro);
    ro.frames = 60;
    ks_record_result res;
    ks_status st = ks_record_run(proxy, &rig, cfg, dir, &ro, &res, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    for (int i = 0; i < 3; i++) {
        KS_CHECK_INT(res.stats[i].captures, 60);
        /* the IMU (1.6 kHz) is recorded alongside: 2 s of samples, of which the simulator keeps about
         * one second when the world runs ahead of a reader in fast mode (thread timing decides how
         * many): at least a second's worth must be there */
        KS_CHECK_MSG(res.stats[i].imu_samples > 1600, "device %d: %llu IMU samples", i,
                     (unsigned long long)res.stats[i].imu_samples);
        char part[600];
        snprintf(part, sizeof part, "%s.part", res.paths[i]);
        KS_CHECK(access(res.paths[i], F_OK) == 0 && access(part, F_OK) != 0);
    }
    KS_CHECK(strstr(res.paths[0], "/master-SIM00000.mkv") != NULL);
    KS_CHECK(strstr(res.paths[2], "/sub2-SIM00002.mkv") != NULL);

    const char *paths[3] = {res.paths[0], res.paths[1], res.paths[2]};
    ks_align_result *ar = NULL;
    st = ks_align_files(paths, 3, NULL, &ar, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    if (!ar)
        goto out;
    KS_CHECK_INT(ar->reference, 0);
    KS_CHECK_INT(ar->member_count, 3);
    KS_CHECK_STR(ar->files[1].plan_digest, digest);
    KS_CHECK_STR(ar->files[2].rig_name, "roundtrip");
    KS_CHECK_INT(ar->files[2].subordinate_delay_us, 1000);
    /* the session reads on after a device has its 60 frames until every device has them: the
     * files hold the first 60 captures each device delivered */
    for (int i = 0; i < 3; i++) {
        KS_CHECK(pc->log[i].n >= 60);
        if (pc->log[i].n > 60)
            pc->log[i].n = 60;
    }
    /* no frame lost on the way: 60 consecutive sync pulses per device */
    for (int i = 0; i < 3; i++)
        for (int k = 1; k < pc->log[i].n; k++)
            KS_CHECK_INT(pc->log[i].truth[k].pulse_index, pc->log[i].truth[k - 1].pulse_index + 1);
    /* timestamps exact: the files hold what the devices delivered, frame for frame */
    for (int i = 0; i < 3; i++) {
        const truth_log *l = &pc->log[i];
        KS_CHECK_INT(ar->files[i].frame_count, l->n);
        for (int k = 0; k < l->n && k < (int)ar->files[i].frame_count; k++) {
            KS_CHECK_INT(ar->files[i].frames[k].color_ts_us, l->color_ts[k]);
            KS_CHECK_INT(ar->files[i].frames[k].depth_ts_us, l->depth_ts[k]);
        }
    }
    /* every frame set recovered: one pulse per set, and every pulse all three captured is complete */
    size_t pulses_all = 0;
    for (int k = 0; k < pc->log[0].n; k++) {
        int64_t p = pc->log[0].truth[k].pulse_index;
        int have = 1;
        for (int i = 1; i < 3; i++)
            for (int q = 0; q < pc->log[i].n; q++)
                if (pc->log[i].truth[q].pulse_index == p)
                    have++;
        pulses_all += have == 3;
    }
    KS_CHECK_INT(ar->complete_sets, pulses_all);
    /* the devices lose 0..2 captures right after they start (the default users get): their 60
     * captures begin a pulse or two apart, and the pulses all three captured are 60 less that spread */
    int64_t first_lo = INT64_MAX, first_hi = INT64_MIN;
    for (int i = 0; i < 3; i++) {
        int64_t p = pc->log[i].n > 0 ? pc->log[i].truth[0].pulse_index : 0;
        first_lo = p < first_lo ? p : first_lo;
        first_hi = p > first_hi ? p : first_hi;
    }
    KS_CHECK(first_hi - first_lo <= sc.startup_drop_max);
    KS_CHECK_INT(pulses_all, (size_t)(60 - (first_hi - first_lo)));
    double worst = 0;
    for (size_t s = 0; s < ar->set_count; s++) {
        const ks_align_set *set = &ar->sets[s];
        int m = set->frame[0];
        for (int i = 1; i < 3; i++) {
            int f = set->frame[i];
            if (f < 0 || m < 0)
                continue;
            KS_CHECK_INT(pc->log[i].truth[f].pulse_index, pc->log[0].truth[m].pulse_index);
            /* skew: what align measured against the true difference of the exposure starts,
             * minus the planned delay as the firmware applies it */
            double measured = ar->files[i].frames[f].key_us - ar->files[0].frames[m].key_us;
            double truth = ((double)pc->log[i].truth[f].color_start_ns - (double)pc->log[0].truth[m].color_start_ns) /
                               1000.0 - ks_delay_effective_us(cfg[i].subordinate_delay_off_master_usec);
            double d = fabs(measured - truth);
            if (d > worst)
                worst = d;
        }
    }
    /* device timestamps are whole microseconds and the cable adds nanoseconds: within 2 us */
    KS_CHECK_MSG(worst <= 2.0, "skew differs from the truth by %.3f us", worst);
    /* depth vs color: the recorder wrote the exposure and the timestamp convention, so align compares
     * centres, as verify does: the true centre difference minus the planned depth delay */
    for (int i = 0; i < 3; i++) {
        const truth_log *l = &pc->log[i];
        double tsum = 0;
        for (int k = 0; k < l->n; k++)
            tsum += ((double)l->truth[k].depth_center_ns - (double)l->truth[k].color_center_ns) / 1000.0;
        double tmean = tsum / l->n - ks_delay_effective_us(cfg[i].depth_delay_off_color_usec);
        KS_CHECK(ar->files[i].depth_offset_centres);
        KS_CHECK_STR(ar->files[i].timestamps, "mid-exposure"); /* the default (SDK) */
        KS_CHECK(ar->files[i].color_exposure_us > 0);
        KS_CHECK_MSG(fabs(ar->files[i].depth_offset_us.mean - tmean) < 1.0,
                     "file %d: depth offset %.2f us, truth %.2f us", i, ar->files[i].depth_offset_us.mean, tmean);
        printf("file %d: depth vs color centres - planned delay %.2f us (truth %.2f us)\n", i,
               ar->files[i].depth_offset_us.mean, tmean);
    }
    for (int i = 0; i < 3; i++)
        printf("file %d: frames %zu drops %llu start %+lld us, first pulse %lld last %lld\n", i, ar->files[i].frame_count,
               (unsigned long long)ar->files[i].drops, (long long)ar->files[i].start_vs_reference_us,
               (long long)pc->log[i].truth[0].pulse_index, (long long)pc->log[i].truth[pc->log[i].n - 1].pulse_index);
    printf("round trip: %zu sets, %zu complete, skew vs truth within %.3f us, sub2 skew mean %.2f us\n",
           ar->set_count, ar->complete_sets, worst, ar->files[2].skew_us.mean);
    ks_align_free(ar);
out:
    ks_backend_free(proxy);
    ks_backend_free(sim);
    recfix_rmdir(dir);
}

int main(void)
{
    KS_RUN(test_roundtrip);
    return KS_TEST_END();
}
