/* Depth lasers: overlapping pulses of devices whose views overlap corrupt depth; a plan that
 * staggers them by the guard gives zero corruption; interference groups never interact. */
#include <stdlib.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

typedef struct result {
    long corrupted_pixels;
    int corrupted_frames;
    int frames;
    int interfering;
} result;

/* Two devices facing each other across the room (ring of 2); depth only where allowed. */
static result run(uint32_t sub_delay, int32_t dd0, int32_t dd1, int group1, ks_depth_mode mode)
{
    result res = {0};
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    rig.camera.depth_mode = mode;
    rig.devices[1].group = group1;
    ks_sim_config cfg;
    simt_config(&cfg, 31, true);
    cfg.render_color = false;
    cfg.clock_default.jitter_us = 1;
    simt_run r;
    if (!simt_open(&r, &rig, &cfg))
        return res;
    r.cfg[1].subordinate_delay_off_master_usec = sub_delay;
    r.cfg[0].depth_delay_off_color_usec = dd0;
    r.cfg[1].depth_delay_off_color_usec = dd1;
    if (!simt_start_all(&r, &rig))
        return res;
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < 2; i++) {
            ks_capture *c = NULL;
            ks_sim_frame_truth t;
            if (ks_device_get_capture(r.dev[i], &c, 1000, NULL) != KS_OK)
                continue;
            ks_sim_last_truth(r.sim, i, &t, NULL);
            res.frames++;
            res.corrupted_pixels += t.corrupted_pixels;
            res.corrupted_frames += t.corrupted_pixels > 0;
            if (t.interfering_devices > res.interfering)
                res.interfering = t.interfering_devices;
            /* the damage is visible in the image: count zeros against a clean frame later */
            ks_capture_release(c);
        }
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 0, &s, NULL);
    if (res.corrupted_pixels)
        KS_CHECK(s.corrupted_pixels > 0);
    simt_close(&r);
    return res;
}

static void test_zero_delays_damage_depth(void)
{
    result r = run(0, 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK_INT(r.frames, 12);
    KS_CHECK_INT(r.corrupted_frames, 12);
    KS_CHECK_MSG(r.corrupted_pixels > 12 * 1000, "only %ld corrupted pixels", r.corrupted_pixels);
    KS_CHECK_INT(r.interfering, 1);
    printf("zero delays: %ld corrupted pixels in %d frames\n", r.corrupted_pixels, r.frames);
}

static void test_guard_spacing_gives_zero(void)
{
    /* subordinate delay of the default guard (pulse width + clock margin) */
    result r = run((uint32_t)ks_laser_default_guard_us(KS_DEPTH_NFOV_2X2BINNED), 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK_INT(r.frames, 12);
    KS_CHECK_INT(r.corrupted_pixels, 0);
    KS_CHECK_INT(r.interfering, 0);
    /* the same through depth delays (colour stays aligned), as the SDK's green screen sample does */
    int g = ks_laser_default_guard_us(KS_DEPTH_NFOV_2X2BINNED) / 2;
    r = run(0, -g, g, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK_INT(r.corrupted_pixels, 0);
}

static void test_partial_overlap_still_damages(void)
{
    /* 100 us apart: pulses 125 us wide still overlap */
    result r = run(100, 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK(r.corrupted_pixels > 0);
    /* a whole pulse pitch apart: pulse i of one meets pulse i+1 of the other (8 of 9 overlap) */
    r = run((uint32_t)ks_depth_pulse_pitch_us(KS_DEPTH_NFOV_2X2BINNED), 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK(r.corrupted_pixels > 0);
}

static void test_groups_never_interfere(void)
{
    result r = run(0, 0, 0, 1, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK_INT(r.corrupted_pixels, 0);
}

static void test_passive_ir_has_no_laser(void)
{
    result r = run(0, 0, 0, 0, KS_DEPTH_PASSIVE_IR);
    KS_CHECK_INT(r.frames, 12);
    KS_CHECK_INT(r.corrupted_pixels, 0);
}

int main(void)
{
    KS_RUN(test_zero_delays_damage_depth);
    KS_RUN(test_guard_spacing_gives_zero);
    KS_RUN(test_partial_overlap_still_damages);
    KS_RUN(test_groups_never_interfere);
    KS_RUN(test_passive_ir_has_no_laser);
    return KS_TEST_END();
}
