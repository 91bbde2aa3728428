/* Depth lasers: overlapping pulses of devices whose views overlap corrupt depth; a plan that
 * staggers them by the guard gives zero corruption; the damage grows with the time the pulses
 * overlap; whether one laser lights what another device sees is geometry, not the rig's groups. */
#include <stdlib.h>
#include <string.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

typedef struct result {
    uint16_t *last_depth0; /* copy of device 0's last depth image */
    int last_corrupted0;
    long corrupted_pixels;
    int corrupted_frames;
    int frames;
    int interfering;
} result;

static bool keep_depth; /* run() keeps device 0's last depth image only when asked */

/* Two devices facing each other across the room (ring of 2); depth only where allowed. */
static bool back_to_back; /* run() poses the two devices back to back instead of facing each other */

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
    if (back_to_back) { /* in the middle of the room, looking at opposite walls */
        const double p0[3] = {100, 0, 1500}, l0[3] = {2000, 0, 1200}, p1[3] = {-100, 0, 1500}, l1[3] = {-2000, 0, 1200};
        cfg.poses[0].set = cfg.poses[1].set = true;
        memcpy(cfg.poses[0].position, p0, sizeof p0);
        memcpy(cfg.poses[0].look_at, l0, sizeof l0);
        memcpy(cfg.poses[1].position, p1, sizeof p1);
        memcpy(cfg.poses[1].look_at, l1, sizeof l1);
        cfg.board = false;
    }
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
            if (i == 0 && c->depth) {
                free(res.last_depth0);
                res.last_depth0 = malloc(c->depth->size);
                memcpy(res.last_depth0, c->depth->data, c->depth->size);
                res.last_corrupted0 = t.corrupted_pixels;
            }
            ks_capture_release(c);
        }
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 0, &s, NULL);
    if (res.corrupted_pixels)
        KS_CHECK(s.corrupted_pixels > 0);
    simt_close(&r);
    if (!keep_depth) {
        free(res.last_depth0);
        res.last_depth0 = NULL;
    }
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

static void test_damage_is_in_the_image(void)
{
    keep_depth = true;
    result bad = run(0, 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    result good = run((uint32_t)ks_laser_default_guard_us(KS_DEPTH_NFOV_2X2BINNED), 0, 0, 0,
                      KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK(bad.last_depth0 && good.last_depth0);
    if (bad.last_depth0 && good.last_depth0) {
        int differ = 0, zeros_bad = 0, zeros_good = 0;
        for (int i = 0; i < 320 * 288; i++) {
            differ += bad.last_depth0[i] != good.last_depth0[i];
            zeros_bad += bad.last_depth0[i] == 0;
            zeros_good += good.last_depth0[i] == 0;
        }
        KS_CHECK_INT(differ, bad.last_corrupted0);
        KS_CHECK(zeros_bad > zeros_good + bad.last_corrupted0 / 3);
        printf("one damaged frame: %d pixels differ from the clean one, %d more invalid\n", differ,
               zeros_bad - zeros_good);
    }
    free(bad.last_depth0);
    free(good.last_depth0);
    /* partial overlap (a pulse pitch apart: 8 of 9 pulses meet) damages less than full overlap */
    result part = run((uint32_t)ks_depth_pulse_pitch_us(KS_DEPTH_NFOV_2X2BINNED), 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    result full = run(0, 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    KS_CHECK(part.corrupted_pixels > 0 && part.corrupted_pixels < full.corrupted_pixels);
    free(part.last_depth0);
    free(full.last_depth0);
    keep_depth = false;
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

/* Groups do not stop light: two devices facing each other in separate groups still damage each
 * other at zero delay (the geometry decides); back to back, nothing at zero delay. */
static void test_geometry_decides_not_groups(void)
{
    result r = run(0, 0, 0, 1, KS_DEPTH_NFOV_2X2BINNED);
    printf("facing, separate groups, zero delay: %ld corrupted pixels in %d frames\n", r.corrupted_pixels, r.frames);
    KS_CHECK_INT(r.corrupted_frames, 12);
    KS_CHECK(r.corrupted_pixels > 12 * 1000);
    back_to_back = true;
    r = run(0, 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
    back_to_back = false;
    printf("back to back, one group, zero delay: %ld corrupted pixels in %d frames (lasers overlapping in time: %d)\n",
           r.corrupted_pixels, r.frames, r.interfering);
    KS_CHECK_INT(r.frames, 12);
    KS_CHECK_INT(r.interfering, 1); /* the pulses do overlap in time ... */
    KS_CHECK_INT(r.corrupted_pixels, 0); /* ... but neither laser lights what the other sees */
}

/* The damage grows with the time the pulses overlap: 0, 40, 80, 110 us apart damage less and less. */
static void test_damage_grows_with_overlap(void)
{
    const uint32_t apart[] = {0, 40, 80, 110};
    long prev = -1;
    for (int i = 3; i >= 0; i--) {
        result r = run(apart[i], 0, 0, 0, KS_DEPTH_NFOV_2X2BINNED);
        printf("%3u us apart (overlap %3u of 125 us): %ld corrupted pixels\n", apart[i], 125 - apart[i],
               r.corrupted_pixels);
        KS_CHECK_MSG(r.corrupted_pixels > prev, "%u us apart: %ld corrupted, not more than %ld at less overlap",
                     apart[i], r.corrupted_pixels, prev);
        prev = r.corrupted_pixels;
    }
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
    KS_RUN(test_damage_is_in_the_image);
    KS_RUN(test_partial_overlap_still_damages);
    KS_RUN(test_geometry_decides_not_groups);
    KS_RUN(test_damage_grows_with_overlap);
    KS_RUN(test_passive_ir_has_no_laser);
    return KS_TEST_END();
}
