/* Start order: a subordinate streams nothing until pulses arrive; its clock is zeroed by the first
 * pulse it sees, so starting the master first misaligns timestamps by whole frame periods, and
 * restarting a subordinate mid-run loses sync. */
#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_subordinate_waits_for_pulses(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 41, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start(&r, 1)); /* subordinate only */
    ks_capture *c = NULL;
    ks_error err;
    KS_CHECK_INT(ks_device_get_capture(r.dev[1], &c, 2000, &err), KS_ETIMEOUT);
    KS_CHECK_CONTAINS(err.message, "not streaming");
    KS_CHECK_CONTAINS(err.message, "SIM00000"); /* names the master */
    ks_sim_device_stats s;
    KS_CHECK(ks_sim_device_stats_get(r.sim, 1, &s, NULL) == KS_OK);
    KS_CHECK(s.waiting_for_sync);
    KS_CHECK_INT(s.captures_taken, 0);
    KS_CHECK_INT(s.zeroed_at_pulse, -1);
    /* the master starts: frames arrive, the clock was zeroed by pulse 0 */
    KS_CHECK(simt_start(&r, 0));
    KS_CHECK(ks_device_get_capture(r.dev[1], &c, 1000, &err) == KS_OK);
    ks_capture_release(c);
    KS_CHECK(ks_sim_device_stats_get(r.sim, 1, &s, NULL) == KS_OK);
    KS_CHECK(!s.waiting_for_sync);
    KS_CHECK_INT(s.zeroed_at_pulse, 0);
    KS_CHECK_STR(s.reason, "");
    simt_close(&r);
}

/* Reads both devices until they return the same pulse; returns sub ts - master ts (colour). */
static int64_t offset_same_pulse(simt_run *r, int64_t *pulse)
{
    ks_capture *c0 = NULL, *c1 = NULL;
    ks_sim_frame_truth t0, t1;
    int64_t result = INT64_MIN;
    for (int guard = 0; guard < 50; guard++) {
        if (!c0) {
            if (ks_device_get_capture(r->dev[0], &c0, 1000, NULL) != KS_OK)
                break;
            ks_sim_last_truth(r->sim, 0, &t0, NULL);
        }
        if (!c1) {
            if (ks_device_get_capture(r->dev[1], &c1, 1000, NULL) != KS_OK)
                break;
            ks_sim_last_truth(r->sim, 1, &t1, NULL);
        }
        if (t0.pulse_index == t1.pulse_index) {
            result = (int64_t)c1->color->device_ts_us - (int64_t)c0->color->device_ts_us;
            *pulse = t0.pulse_index;
            break;
        }
        if (t0.pulse_index < t1.pulse_index) {
            ks_capture_release(c0);
            c0 = NULL;
        } else {
            ks_capture_release(c1);
            c1 = NULL;
        }
    }
    ks_capture_release(c0);
    ks_capture_release(c1);
    return result;
}

static void test_master_first_misaligns_by_whole_periods(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 42, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start(&r, 0)); /* wrong order: master first */
    ks_sim_advance(r.sim, 1000);
    KS_CHECK(simt_start(&r, 1));
    int64_t pulse = -1;
    int64_t off = offset_same_pulse(&r, &pulse);
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 1, &s, NULL);
    KS_CHECK(s.zeroed_at_pulse > 25); /* ~1 s of pulses went by before the subordinate listened */
    double P = ks_frame_period_exact_us(KS_FPS_30);
    /* same pulse, different clocks: the subordinate is behind by exactly the pulses it missed */
    KS_CHECK_NEAR((double)off, -(double)s.zeroed_at_pulse * P, 2.0 + 20e-6 * s.zeroed_at_pulse * P);
    printf("master first: subordinate zeroed at pulse %lld, offset %lld us (%.2f frames)\n",
           (long long)s.zeroed_at_pulse, (long long)off, off / P);
    simt_close(&r);
}

static void test_right_order_aligned(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 43, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    int64_t pulse = -1;
    KS_CHECK_NEAR((double)offset_same_pulse(&r, &pulse), 0, 1);
    simt_close(&r);
}

static void test_restarting_subordinate_loses_sync(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 44, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    int64_t pulse = -1;
    KS_CHECK_NEAR((double)offset_same_pulse(&r, &pulse), 0, 1);
    ks_device_stop_cameras(r.dev[1]);
    ks_sim_advance(r.sim, 500);
    KS_CHECK(simt_start(&r, 1));
    int64_t off = offset_same_pulse(&r, &pulse);
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 1, &s, NULL);
    KS_CHECK(s.zeroed_at_pulse > 10);
    KS_CHECK_MSG(off < -300000, "offset after restart %lld us", (long long)off);
    simt_close(&r);
}

static void test_first_frames_lost_but_clocks_agree(void)
{
    ks_rig rig;
    simt_rig(&rig, 5, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 45, false);
    cfg.startup_drop_max = 2; /* the default: frame counts differ by one or two at start */
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    uint64_t lost = 0;
    uint64_t ts_at_pulse2[5];
    for (int i = 0; i < 5; i++) {
        ks_capture *c = NULL;
        ks_sim_frame_truth t;
        ks_sim_device_stats s;
        for (;;) {
            KS_CHECK(ks_device_get_capture(r.dev[i], &c, 1000, NULL) == KS_OK);
            if (!c)
                break;
            ks_sim_last_truth(r.sim, i, &t, NULL);
            if (t.pulse_index >= 2)
                break;
            ks_capture_release(c);
        }
        ks_sim_device_stats_get(r.sim, i, &s, NULL);
        KS_CHECK(s.dropped_startup <= 2);
        lost += s.dropped_startup;
        KS_CHECK_INT(s.zeroed_at_pulse, 0); /* the clock does not care: zeroed by the first pulse */
        KS_CHECK_INT(t.pulse_index, 2);
        ts_at_pulse2[i] = c ? c->color->device_ts_us : 0;
        ks_capture_release(c);
    }
    KS_CHECK(lost > 0);
    for (int i = 1; i < 5; i++)
        KS_CHECK_NEAR((double)ts_at_pulse2[i], (double)ts_at_pulse2[0], 1);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_first_frames_lost_but_clocks_agree);
    KS_RUN(test_subordinate_waits_for_pulses);
    KS_RUN(test_master_first_misaligns_by_whole_periods);
    KS_RUN(test_right_order_aligned);
    KS_RUN(test_restarting_subordinate_loses_sync);
    return KS_TEST_END();
}
