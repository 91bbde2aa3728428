/* Colour exposure: manual values rounded up to the table; auto exposure follows per-device scene
 * brightness and shifts capture timing; setting the exposure while streaming loses a frame and moves
 * the timing; timestamp conventions (seed: start of frame in master/subordinate, centre standalone;
 * or mid-exposure everywhere). */
#include <stdlib.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_manual_rounding_and_powerline(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 61, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_control_mode m;
    int32_t v;
    KS_CHECK(ks_device_set_color_control(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, 8000,
                                         NULL) == KS_OK);
    KS_CHECK(ks_device_get_color_control(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, &m, &v, NULL) == KS_OK);
    KS_CHECK_INT(m, KS_CONTROL_MODE_MANUAL);
    KS_CHECK_INT(v, ks_exposure_round_up(KS_POWERLINE_60HZ, 8000));
    KS_CHECK(ks_device_set_color_control(r.dev[0], KS_CONTROL_POWERLINE_FREQUENCY, KS_CONTROL_MODE_MANUAL,
                                         KS_POWERLINE_50HZ, NULL) == KS_OK);
    KS_CHECK(ks_device_set_color_control(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, 8000,
                                         NULL) == KS_OK);
    KS_CHECK(ks_device_get_color_control(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, &m, &v, NULL) == KS_OK);
    KS_CHECK_INT(v, ks_exposure_round_up(KS_POWERLINE_50HZ, 8000));
    KS_CHECK(v != ks_exposure_round_up(KS_POWERLINE_60HZ, 8000));
    /* the frames carry it */
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c = NULL;
    KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
    if (c)
        KS_CHECK_INT(c->color->exposure_us, v);
    ks_capture_release(c);
    /* out of range is refused with the range */
    ks_error err;
    KS_CHECK_INT(ks_device_set_color_control(r.dev[0], KS_CONTROL_BRIGHTNESS, KS_CONTROL_MODE_MANUAL, 999, &err),
                 KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "0..255");
    simt_close(&r);
}

static void test_auto_exposure_breaks_sync(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 62, false);
    cfg.brightness_variation = 0.5;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    for (int i = 0; i < 2; i++)
        KS_CHECK(ks_device_set_color_control(r.dev[i], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_AUTO, 0,
                                             NULL) == KS_OK);
    KS_CHECK(simt_start_all(&r, &rig));
    double worst = 0;
    uint32_t emin = UINT32_MAX, emax = 0;
    for (int k = 0; k < 600; k++) {
        ks_capture *c[2] = {NULL, NULL};
        ks_sim_frame_truth t[2];
        /* both devices' captures of one pulse (their startup drops differ: not by index) */
        KS_CHECK(simt_grab_aligned(&r, 2, NULL, c, t, 1000));
        ks_capture *a = c[0], *b = c[1];
        if (!a || !b)
            break;
        /* the exposures' starts, read under the rig's convention (mid-exposure by default) */
        double d = fabs(ks_ts_color_start_us(rig.ts_convention, KS_SYNC_MASTER, (double)a->color->device_ts_us,
                                             (double)a->color->exposure_us) -
                        ks_ts_color_start_us(rig.ts_convention, KS_SYNC_SUBORDINATE, (double)b->color->device_ts_us,
                                             (double)b->color->exposure_us));
        if (d > worst)
            worst = d;
        if (a->color->exposure_us < emin)
            emin = (uint32_t)a->color->exposure_us;
        if (a->color->exposure_us > emax)
            emax = (uint32_t)a->color->exposure_us;
        ks_capture_release(a);
        ks_capture_release(b);
    }
    KS_CHECK_MSG(emax > emin + 1000, "auto exposure stayed within %u..%u us", emin, emax);
    /* the exposures of the two devices start apart beyond the 100 us alignment target */
    KS_CHECK_MSG(worst > ks_color_alignment_target_us(), "worst colour offset %.0f us", worst);
    printf("auto exposure: %u..%u us, worst colour offset %.0f us\n", emin, emax, worst);
    simt_close(&r);
}

static void test_exposure_change_disturbs_stream(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    rig.ts_convention = KS_TS_SEED; /* start-of-frame timestamps show the exposure change */
    ks_sim_config cfg;
    simt_config(&cfg, 63, false);
    cfg.brightness_variation = 0;
    cfg.exposure_write_shift_us = 0; /* the SDK #471 offset has its own test */
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    ks_capture *c[2] = {NULL, NULL}, *a = NULL, *b = NULL;
    ks_sim_frame_truth t[2], t1, t2;
    KS_CHECK(simt_grab_aligned(&r, 2, NULL, c, t, 1000)); /* one pulse (startup drops differ) */
    if (!c[0] || !c[1]) {
        simt_close(&r);
        return;
    }
    KS_CHECK_NEAR((double)c[0]->color->device_ts_us, (double)c[1]->color->device_ts_us, 1);
    t1 = t[0];
    ks_capture_release(c[0]);
    ks_capture_release(c[1]);
    int e2 = ks_exposure_round_up(KS_POWERLINE_60HZ, 16000);
    KS_CHECK(ks_device_set_color_control(r.dev[0], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, e2,
                                         NULL) == KS_OK);
    /* drain what was already in flight on both, then compare the next matching pulse */
    KS_CHECK(ks_device_get_capture(r.dev[0], &a, 1000, NULL) == KS_OK);
    ks_sim_last_truth(r.sim, 0, &t2, NULL);
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 0, &s, NULL);
    KS_CHECK_INT(s.dropped_exposure, 1);
    KS_CHECK(t2.pulse_index >= t1.pulse_index + 2); /* one capture lost in between */
    KS_CHECK_INT(a->color->exposure_us, e2);
    for (;;) {
        KS_CHECK(ks_device_get_capture(r.dev[1], &b, 1000, NULL) == KS_OK);
        ks_sim_frame_truth tb;
        ks_sim_last_truth(r.sim, 1, &tb, NULL);
        if (tb.pulse_index >= t2.pulse_index || !b)
            break;
        ks_capture_release(b);
    }
    /* start of frame moved earlier by half the exposure change: the devices are out of step */
    double shift = (double)b->color->device_ts_us - (double)a->color->device_ts_us;
    KS_CHECK_NEAR(shift, (e2 - rig.exposure.exposure_us) / 2.0, 2);
    ks_capture_release(a);
    ks_capture_release(b);
    simt_close(&r);
}

/* Device timestamp expected from the truth for an instant t. */
static double expect_ts(simt_run *r, int dev, uint64_t t)
{
    double rate, off;
    uint64_t zero;
    ks_sim_device_clock(r->sim, dev, &rate, &off, &zero, NULL);
    return off + ks_frame_period_exact_us(KS_FPS_30) + ((double)t - (double)zero) / 1000.0 * rate;
}

static void test_timestamp_conventions(void)
{
    for (int conv = 0; conv < KS_TS_CONVENTION_COUNT; conv++) {
        ks_rig rig;
        simt_rig(&rig, 2, SIMT_DAISY, 1.0);
        rig.ts_convention = (ks_ts_convention)conv;
        ks_sim_config cfg;
        simt_config(&cfg, 64, false);
        simt_run r;
        KS_CHECK(simt_open(&r, &rig, &cfg));
        KS_CHECK(simt_start_all(&r, &rig));
        ks_capture *c = NULL;
        ks_sim_frame_truth t;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        ks_sim_last_truth(r.sim, 0, &t, NULL);
        uint64_t want = conv == KS_TS_SEED ? t.color_start_ns : t.color_center_ns;
        KS_CHECK_NEAR((double)c->color->device_ts_us, expect_ts(&r, 0, want), 1);
        ks_capture_release(c);
        simt_close(&r);

        /* standalone: centre of frame in both conventions */
        simt_rig(&rig, 1, SIMT_STANDALONE, 0);
        rig.ts_convention = (ks_ts_convention)conv;
        KS_CHECK(simt_open(&r, &rig, &cfg));
        KS_CHECK(simt_start_all(&r, &rig));
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        ks_sim_last_truth(r.sim, 0, &t, NULL);
        KS_CHECK_NEAR((double)c->color->device_ts_us, expect_ts(&r, 0, t.color_center_ns), 1);
        ks_capture_release(c);
        simt_close(&r);
    }
}

int main(void)
{
    KS_RUN(test_manual_rounding_and_powerline);
    KS_RUN(test_auto_exposure_breaks_sync);
    KS_RUN(test_exposure_change_disturbs_stream);
    KS_RUN(test_timestamp_conventions);
    return KS_TEST_END();
}
