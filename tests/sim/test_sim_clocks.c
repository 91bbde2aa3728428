/* Clocks: per-device oscillator offset, drift and jitter; a subordinate's clock locked to the sync
 * signal; host clocks per host; system timestamps = host clock at arrival (USB latency). */
#include <stdlib.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_drift_against_host(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 51, false);
    cfg.host_drift_ppm = 0;
    cfg.clocks[0] = (ks_sim_clock){.set = true, .drift_ppm = 100};
    cfg.clocks[1] = (ks_sim_clock){.set = true, .drift_ppm = -50, .offset_us = 5000};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    uint64_t d0[2], s0[2], d1[2];
    for (int k = 0; k < 301; k++) {
        ks_capture *c[2] = {NULL, NULL};
        ks_sim_frame_truth t[2];
        KS_CHECK(simt_grab_aligned(&r, 2, NULL, c, t, 1000)); /* a pair of one pulse (startup drops differ) */
        ks_capture *a = c[0], *b = c[1];
        if (!a || !b)
            break;
        if (k == 0 || k == 300) {
            d0[k ? 1 : 0] = a->color->device_ts_us;
            s0[k ? 1 : 0] = a->color->system_ts_ns;
            d1[k ? 1 : 0] = b->color->device_ts_us;
        }
        if (k == 0) /* the subordinate's offset shows as a constant difference */
            KS_CHECK_NEAR((double)b->color->device_ts_us - (double)a->color->device_ts_us, 5000, 1);
        ks_capture_release(a);
        ks_capture_release(b);
    }
    double dd = (double)(d0[1] - d0[0]), ds = (double)(s0[1] - s0[0]) / 1000.0;
    /* 300 frames of the master's oscillator: 300 nominal periods on its own clock */
    KS_CHECK_NEAR(dd, 300 * ks_frame_period_exact_us(KS_FPS_30), 1);
    /* the host sees them take 100 ppm less time: the device clock runs fast against the host */
    KS_CHECK_NEAR((dd - ds) / ds * 1e6, 100, 3);
    /* the subordinate (own drift -50 ppm) is locked to the master: same elapsed device time */
    KS_CHECK_NEAR((double)(d1[1] - d1[0]), dd, 1);
    simt_close(&r);
}

static void test_jitter(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 52, false);
    cfg.clocks[0] = (ks_sim_clock){.set = true, .jitter_us = 10};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    double prev = 0, sum = 0, sum2 = 0;
    int n = 0;
    for (int k = 0; k < 200; k++) {
        ks_capture *c = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        if (!c)
            break;
        double ts = (double)c->color->device_ts_us;
        if (k > 0) {
            double dlt = ts - prev - ks_frame_period_exact_us(KS_FPS_30);
            sum += dlt;
            sum2 += dlt * dlt;
            n++;
        }
        prev = ts;
        ks_capture_release(c);
    }
    double sd = sqrt(sum2 / n - (sum / n) * (sum / n));
    /* the difference of two independent instants: sqrt(2) x 10 us */
    KS_CHECK_MSG(sd > 10 && sd < 18, "interval standard deviation %.2f us", sd);
    simt_close(&r);
}

static void test_subordinate_jitter_unbiased(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 54, false);
    cfg.propagation_ns_per_m = 0;
    cfg.hop_delay_ns = 0;
    cfg.clocks[0] = (ks_sim_clock){.set = true, .jitter_us = 5};
    cfg.clocks[1] = (ks_sim_clock){.set = true, .jitter_us = 5};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    double sum = 0, sum2 = 0;
    int n = 0;
    for (int k = 0; k < 400; k++) {
        ks_capture *c[2] = {NULL, NULL};
        ks_sim_frame_truth t[2];
        KS_CHECK(simt_grab_aligned(&r, 2, NULL, c, t, 1000)); /* a pair of one pulse (startup drops differ) */
        ks_capture *a = c[0], *b = c[1];
        if (!a || !b)
            break;
        ks_sim_frame_truth ta = t[0], tb = t[1];
        double d = ((double)tb.sync_ns - (double)ta.sync_ns) / 1000.0;
        sum += d;
        sum2 += d * d;
        n++;
        ks_capture_release(a);
        ks_capture_release(b);
    }
    double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    /* the subordinate's detection jitter is symmetric around the pulse: no systematic offset */
    KS_CHECK_MSG(fabs(mean) < 1.5, "mean subordinate offset %.2f us", mean);
    KS_CHECK_MSG(sd > 3 && sd < 7, "subordinate offset spread %.2f us", sd);
    simt_close(&r);
}

static void test_hosts_and_usb_latency(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    snprintf(rig.devices[1].host, sizeof rig.devices[1].host, "hostb");
    ks_sim_config cfg;
    simt_config(&cfg, 53, false);
    cfg.usb_latency_us = 3000;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c[2] = {NULL, NULL};
    ks_sim_frame_truth t[2];
    KS_CHECK(simt_grab_aligned(&r, 2, NULL, c, t, 1000)); /* the same pulse (startup drops differ) */
    if (!c[0] || !c[1]) {
        simt_close(&r);
        return;
    }
    ks_capture *a = c[0], *b = c[1];
    ks_sim_frame_truth ta = t[0], tb = t[1];
    KS_CHECK_INT(ta.pulse_index, tb.pulse_index);
    /* same instant, different hosts: their monotonic clocks are unrelated (far more than a frame) */
    double diff_ms = fabs((double)a->color->system_ts_ns - (double)b->color->system_ts_ns) / 1e6;
    KS_CHECK_MSG(diff_ms > 100, "hosts only %.3f ms apart", diff_ms);
    /* system timestamp = that host's clock when the frame arrived = end of exposure + USB latency */
    KS_CHECK_INT(a->color->system_ts_ns, ks_sim_host_time_ns(r.sim, "localhost", ta.arrival_ns));
    KS_CHECK_INT(b->color->system_ts_ns, ks_sim_host_time_ns(r.sim, "hostb", tb.arrival_ns));
    uint64_t end = ta.color_center_ns + ta.color_exposure_us * 500ull;
    uint64_t dend = ta.depth_center_ns + (uint64_t)ks_depth_laser_window_us(rig.camera.depth_mode) * 500ull;
    if (dend > end)
        end = dend;
    KS_CHECK_NEAR((double)(ta.arrival_ns - end) / 1000.0, 3000, 1);
    ks_capture_release(a);
    ks_capture_release(b);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_drift_against_host);
    KS_RUN(test_jitter);
    KS_RUN(test_subordinate_jitter_unbiased);
    KS_RUN(test_hosts_and_usb_latency);
    return KS_TEST_END();
}
