/* Faults on a schedule: unplug a sync cable, disconnect a device, drop frames, stall a host. */
#include <math.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_unplug_sync_cable(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 81, false);
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_UNPLUG, .at_ms = 1000, .duration_ms = 1000, .cable = 0,
                                   .device = -1};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_jack_state j;
    KS_CHECK(ks_device_get_jacks(r.dev[1], &j, NULL) == KS_OK && j.sync_in);
    ks_capture *c = NULL;
    ks_error err;
    int got = 0;
    while (ks_device_get_capture(r.dev[2], &c, 200, &err) == KS_OK) {
        got++;
        ks_capture_release(c);
    }
    /* frames until the cable was pulled at 1 s (first frame at 0.1 s), then silence with a reason */
    KS_CHECK(got >= 25 && got <= 28);
    KS_CHECK_INT(err.code, KS_ETIMEOUT);
    KS_CHECK_CONTAINS(err.message, "unplugged");
    KS_CHECK(ks_device_get_jacks(r.dev[1], &j, NULL) == KS_OK && !j.sync_in);
    KS_CHECK(ks_device_get_jacks(r.dev[0], &j, NULL) == KS_OK && !j.sync_out);
    /* plugged back after a second: frames again, still on the clock zeroed by pulse 0 */
    KS_CHECK(ks_device_get_capture(r.dev[2], &c, 2000, &err) == KS_OK);
    ks_capture_release(c);
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 2, &s, NULL);
    KS_CHECK_INT(s.zeroed_at_pulse, 0);
    simt_close(&r);
}

/* SDK #1850 as an option: the subordinate whose Sync In cable is pulled keeps streaming on its own
 * oscillator, unsynchronized: frames keep coming and drift away from the master's; plugged back, it
 * follows the pulses again. */
static void test_unplug_free_run(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 84, false);
    cfg.clocks[0] = (ks_sim_clock){.set = true, .drift_ppm = 0};
    cfg.clocks[1] = (ks_sim_clock){.set = true, .drift_ppm = 100};
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_UNPLUG, .at_ms = 1000, .duration_ms = 2000, .cable = 0,
                                   .device = -1, .free_run = true};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    int got = 0;
    double last_gap_us = 0, gap_at_1s = -1;
    for (int k = 0; k < 80; k++) { /* 2.7 s: 0.9 s synchronized, then free-running */
        ks_capture *c0 = NULL, *c1 = NULL;
        ks_error err;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c0, 500, &err) == KS_OK);
        ks_status st = ks_device_get_capture(r.dev[1], &c1, 500, &err);
        KS_CHECK_MSG(st == KS_OK, "capture %d of the free-running subordinate: %s", k, err.message);
        if (st == KS_OK)
            got++;
        ks_sim_frame_truth t0, t1;
        ks_sim_last_truth(r.sim, 0, &t0, NULL);
        ks_sim_last_truth(r.sim, 1, &t1, NULL);
        double P = 1e9 / 30;
        double gap = fmod(fabs((double)t1.sync_ns - (double)t0.sync_ns), P);
        last_gap_us = fmin(gap, P - gap) / 1000.0;
        if (t0.sync_ns < 1000000000ull)
            gap_at_1s = last_gap_us;
        ks_capture_release(c0);
        ks_capture_release(c1);
    }
    printf("free run: %d frames of the subordinate; sync instants %.1f us apart before the unplug, %.1f us after "
           "1.7 s of free run at 100 ppm\n", got, gap_at_1s, last_gap_us);
    KS_CHECK_INT(got, 80);
    KS_CHECK(gap_at_1s >= 0 && gap_at_1s < 5);  /* synchronized (cable delay + hop only) */
    KS_CHECK(last_gap_us > 100);                /* ~170 us at 100 ppm: no longer synchronized */
    simt_close(&r);
    /* the option is off by default: the same unplug stops the subordinate's frames */
    cfg.faults[0].free_run = false;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c = NULL;
    int n = 0;
    while (ks_device_get_capture(r.dev[1], &c, 200, NULL) == KS_OK) {
        n++;
        ks_capture_release(c);
    }
    KS_CHECK(n < 32);
    simt_close(&r);
}

static void test_disconnect_device(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 82, false);
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_DISCONNECT, .at_ms = 500, .device = 1, .cable = -1};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c = NULL;
    ks_error err;
    ks_status st;
    int got = 0;
    while ((st = ks_device_get_capture(r.dev[1], &c, 1000, &err)) == KS_OK) {
        got++;
        ks_capture_release(c);
    }
    KS_CHECK_INT(st, KS_ENODEV);
    KS_CHECK(got >= 10 && got <= 13);
    KS_CHECK_CONTAINS(err.message, "SIM00001");
    /* the chain is broken behind it: device 2 runs dry with the reason */
    int got2 = 0;
    while ((st = ks_device_get_capture(r.dev[2], &c, 300, &err)) == KS_OK) {
        got2++;
        ks_capture_release(c);
    }
    KS_CHECK_INT(st, KS_ETIMEOUT);
    KS_CHECK_CONTAINS(err.message, "disconnected");
    KS_CHECK(ks_device_get_jacks(r.dev[1], &(ks_jack_state){0}, &err) == KS_ENODEV);
    simt_close(&r);
}

static void test_drop_frames(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 83, false);
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_DROP, .at_ms = 500, .device = 0, .count = 5, .cable = -1};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    int64_t prev = -1, gaps = 0;
    for (int k = 0; k < 40; k++) {
        ks_capture *c = NULL;
        ks_sim_frame_truth t;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        ks_sim_last_truth(r.sim, 0, &t, NULL);
        if (prev >= 0)
            gaps += t.pulse_index - prev - 1;
        prev = t.pulse_index;
        ks_capture_release(c);
    }
    KS_CHECK_INT(gaps, 5);
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 0, &s, NULL);
    KS_CHECK_INT(s.dropped_fault, 5);
    simt_close(&r);
}

static void test_stall_host(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    snprintf(rig.devices[1].host, sizeof rig.devices[1].host, "slow");
    ks_sim_config cfg;
    simt_config(&cfg, 84, false);
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_STALL_HOST, .at_ms = 500, .duration_ms = 300,
                                   .device = -1, .cable = -1};
    snprintf(cfg.faults[0].host, sizeof cfg.faults[0].host, "slow");
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    uint64_t prev_sys = 0, max_gap = 0;
    int64_t prev_pulse = -1, pulse_gap = 0;
    for (int k = 0; k < 40; k++) {
        ks_capture *c = NULL;
        ks_sim_frame_truth t;
        KS_CHECK(ks_device_get_capture(r.dev[1], &c, 1000, NULL) == KS_OK);
        if (!c)
            break;
        ks_sim_last_truth(r.sim, 1, &t, NULL);
        if (prev_sys && c->color->system_ts_ns - prev_sys > max_gap)
            max_gap = c->color->system_ts_ns - prev_sys;
        if (prev_pulse >= 0 && t.pulse_index - prev_pulse > pulse_gap)
            pulse_gap = t.pulse_index - prev_pulse;
        prev_sys = c->color->system_ts_ns;
        prev_pulse = t.pulse_index;
        ks_capture_release(c);
    }
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 1, &s, NULL);
    /* 300 ms at 30 fps = 9 frames; the device keeps 2 of them */
    KS_CHECK(s.dropped_stall >= 6 && s.dropped_stall <= 8);
    KS_CHECK(pulse_gap >= 7);
    KS_CHECK(max_gap > 250000000ull); /* the host saw nothing for most of the stall */
    ks_sim_device_stats_get(r.sim, 0, &s, NULL);
    KS_CHECK_INT(s.dropped_stall, 0); /* the other host is unaffected */
    simt_close(&r);
}

static void test_trigger_stops(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    const ks_trigger_spec *sp = ks_trigger_spec_get();
    rig.trigger = (ks_rig_trigger){.present = true, .frequency_hz = 30, .pulse_width_us = 20,
                                   .voltage_v = sp->voltage_v, .drive_ma = sp->min_drive_ma, .to = 0};
    ks_sim_config cfg;
    simt_config(&cfg, 85, false);
    cfg.fault_count = 1;
    cfg.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_TRIGGER_STOP, .at_ms = 1000, .device = -1, .cable = -1};
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    r.cfg[0].wired_sync_mode = KS_SYNC_SUBORDINATE;
    KS_CHECK(simt_start(&r, 1) && simt_start(&r, 0));
    ks_capture *c = NULL;
    ks_error err;
    int got = 0;
    while (ks_device_get_capture(r.dev[1], &c, 300, &err) == KS_OK) {
        got++;
        ks_capture_release(c);
    }
    KS_CHECK(got >= 25 && got <= 28);
    KS_CHECK_CONTAINS(err.message, "trigger generator stopped");
    ks_status st;
    while ((st = ks_device_get_capture(r.dev[0], &c, 300, &err)) == KS_OK) /* what queued up meanwhile */
        ks_capture_release(c);
    KS_CHECK_INT(st, KS_ETIMEOUT);
    KS_CHECK_CONTAINS(err.message, "trigger generator stopped");
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_trigger_stops);
    KS_RUN(test_unplug_sync_cable);
    KS_RUN(test_unplug_free_run);
    KS_RUN(test_disconnect_device);
    KS_RUN(test_drop_frames);
    KS_RUN(test_stall_host);
    return KS_TEST_END();
}
