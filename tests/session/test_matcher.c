/* The frame-set matcher on scripted frames: grouping, conventions, offsets, drops, partial sets,
 * late frames, a dead device, bounded memory, the batch form. */
#include <stdlib.h>

#include "kinsync/matcher.h"
#include "ks_test.h"

static int released;
static void count_release(void *user, void *ctx)
{
    (void)user;
    (void)ctx;
    released++;
}

static ks_match_frame frame(int dev, double color_start_us)
{
    ks_match_frame f;
    memset(&f, 0, sizeof f);
    f.device = dev;
    f.has_color = true;
    f.color_ts_us = (uint64_t)color_start_us;
    f.color_exposure_us = 8330;
    f.invalid_fraction = -1;
    f.user = (void *)1;
    return f;
}

static void test_groups_complete_sets(void)
{
    ks_matcher_config c;
    ks_matcher_config_init(&c, 3, KS_FPS_30, KS_TS_SEED);
    ks_matcher *m;
    KS_CHECK(ks_matcher_create(&c, &m, NULL) == KS_OK);
    ks_frame_set set;
    int sets = 0;
    for (int k = 0; k < 100; k++)
        for (int d = 0; d < 3; d++) {
            ks_match_frame f = frame(d, 33333.3 * (k + 1) + d * 7);
            KS_CHECK(ks_matcher_push(m, &f, NULL) == KS_OK);
            while (ks_matcher_pop(m, &set)) {
                KS_CHECK(set.complete);
                KS_CHECK_INT(set.present, 3);
                KS_CHECK_NEAR(set.frames[2].key_us - set.frames[0].key_us, 14, 1);
                sets++;
            }
        }
    KS_CHECK_INT(sets, 100); /* each set goes out as soon as its last frame arrives: no added latency */
    ks_matcher_free(m);
}

static void test_offsets_and_conventions(void)
{
    /* device 1 is a subordinate 200 us behind by plan; mid-exposure timestamps are centres */
    ks_matcher_config c;
    ks_matcher_config_init(&c, 2, KS_FPS_30, KS_TS_MID_EXPOSURE);
    c.devices[1].color_offset_us = 200;
    ks_match_frame a = frame(0, 100000 + 4165), b = frame(1, 100200 + 4165);
    ks_matcher_key(&c, &a);
    ks_matcher_key(&c, &b);
    KS_CHECK_NEAR(a.color_start_us, 100000, 1);
    KS_CHECK_NEAR(b.key_us - a.key_us, 0, 1);
    /* seed convention: standalone is centre, master/subordinate start of frame */
    ks_matcher_config s;
    ks_matcher_config_init(&s, 2, KS_FPS_30, KS_TS_SEED);
    s.devices[1].mode = KS_SYNC_STANDALONE;
    ks_match_frame x = frame(0, 100000), y = frame(1, 100000 + 4165);
    ks_matcher_key(&s, &x);
    ks_matcher_key(&s, &y);
    KS_CHECK_NEAR(y.key_us - x.key_us, 0, 1);
    /* depth-only frame keyed through the planned depth delay */
    s.devices[1].mode = KS_SYNC_SUBORDINATE;
    s.devices[1].depth_delay_us = 1000;
    s.devices[1].color_exposure_us = 8330;
    ks_match_frame z = frame(1, 0);
    z.has_color = false;
    z.has_depth = true;
    z.depth_exposure_us = 12800;
    z.depth_ts_us = (uint64_t)(100000 + 4165 + 1000 - 6400);
    ks_matcher_key(&s, &z);
    KS_CHECK_NEAR(z.key_us, 100000, 1);
}

/* The default tolerance is a quarter period (docs/verify.md): a device 0.2 P off its set still
 * joins it, one 0.3 P off never does (each frame goes out alone). A wider default (0.9 P) would
 * group frames a third of a period apart as synchronized -- this catches it. */
static int sets_with_offset(double frac, int *complete)
{
    ks_matcher_config c;
    ks_matcher_config_init(&c, 2, KS_FPS_30, KS_TS_SEED);
    ks_matcher *m;
    if (ks_matcher_create(&c, &m, NULL) != KS_OK)
        return -1;
    ks_frame_set set;
    int sets = 0;
    *complete = 0;
    for (int k = 0; k < 40; k++)
        for (int d = 0; d < 2; d++) {
            ks_match_frame f = frame(d, 33333.3 * (k + 1) + (d ? frac * 33333.3 : 0));
            ks_matcher_push(m, &f, NULL);
            while (ks_matcher_pop(m, &set)) {
                sets++;
                *complete += set.complete;
            }
        }
    ks_matcher_flush(m);
    while (ks_matcher_pop(m, &set)) {
        sets++;
        *complete += set.complete;
    }
    ks_matcher_free(m);
    return sets;
}

static void test_default_tolerance_quarter_period(void)
{
    int complete;
    KS_CHECK_INT(sets_with_offset(0.2, &complete), 40);
    KS_CHECK_INT(complete, 40);
    sets_with_offset(0.3, &complete);
    KS_CHECK_MSG(complete == 0, "frames 0.3 P apart were grouped into %d complete sets (default tolerance > P/4?)",
                 complete);
}

static void test_drops_partial_late(void)
{
    ks_matcher_config c;
    ks_matcher_config_init(&c, 3, KS_FPS_30, KS_TS_SEED);
    released = 0;
    c.release = count_release;
    ks_matcher *m;
    ks_matcher_create(&c, &m, NULL);
    ks_frame_set set;
    int partial = 0, complete = 0, missing1 = 0;
    for (int k = 0; k < 60; k++)
        for (int d = 0; d < 3; d++) {
            if (d == 1 && k % 10 == 5)
                continue; /* dropped */
            ks_match_frame f = frame(d, 33333.3 * (k + 1));
            ks_matcher_push(m, &f, NULL);
            while (ks_matcher_pop(m, &set)) {
                if (set.complete)
                    complete++;
                else {
                    partial++;
                    missing1 += (set.missing_mask & 2u) != 0;
                }
            }
        }
    ks_matcher_flush(m);
    while (ks_matcher_pop(m, &set))
        set.complete ? complete++ : partial++;
    KS_CHECK_INT(complete, 54);
    KS_CHECK_INT(partial, 6);
    KS_CHECK_INT(missing1, 6);
    ks_matcher_stats st;
    ks_matcher_get_stats(m, &st);
    KS_CHECK_INT(st.gaps[1], 6);
    KS_CHECK_INT(st.missing[1], 6);
    KS_CHECK_INT(st.gaps[0], 0);
    /* a frame for a set that is already out is late: discarded and released */
    ks_match_frame late = frame(1, 33333.3 * 5);
    ks_matcher_push(m, &late, NULL);
    ks_matcher_get_stats(m, &st);
    KS_CHECK_INT(st.late[1], 1);
    KS_CHECK_INT(released, 1);
    ks_matcher_free(m);
}

static void test_dead_device_bounded(void)
{
    /* device 2 stops after 10 frames and never says so: sets go out partial after the wait, the
     * pending queues never exceed max_pending, and nothing is held beyond that */
    ks_matcher_config c;
    ks_matcher_config_init(&c, 3, KS_FPS_30, KS_TS_SEED);
    c.max_pending = 8;
    c.max_output = 4;
    released = 0;
    c.release = count_release;
    ks_matcher *m;
    ks_matcher_create(&c, &m, NULL);
    ks_frame_set set;
    int partial = 0, popped_frames = 0, pushed = 0;
    for (int k = 0; k < 10000; k++)
        for (int d = 0; d < 3; d++) {
            if (d == 2 && k >= 10)
                continue;
            ks_match_frame f = frame(d, 33333.3 * (k + 1));
            ks_matcher_push(m, &f, NULL);
            pushed++;
            KS_CHECK(ks_matcher_held(m) <= 3 * 8 + 4 * 3);
            if (k % 3 == 0) /* a slow consumer: pops only sometimes */
                while (ks_matcher_pop(m, &set)) {
                    partial += !set.complete;
                    popped_frames += set.present;
                }
        }
    ks_matcher_stats st;
    ks_matcher_get_stats(m, &st);
    KS_CHECK(st.max_pending_seen <= 8);
    KS_CHECK(partial > 1000);
    KS_CHECK_MSG(popped_frames + released + ks_matcher_held(m) == pushed, "popped %d released %d held %d pushed %d",
                 popped_frames, released, ks_matcher_held(m), pushed);
    ks_matcher_mark_gone(m, 2);
    ks_matcher_free(m);
}

static void test_stalled_device_forces(void)
{
    /* device 1 delivers nothing while 0 runs 100 frames ahead: waiting is bounded by wait_us */
    ks_matcher_config c;
    ks_matcher_config_init(&c, 2, KS_FPS_30, KS_TS_SEED);
    ks_matcher *m;
    ks_matcher_create(&c, &m, NULL);
    ks_frame_set set;
    int out = 0;
    for (int k = 0; k < 100; k++) {
        ks_match_frame f = frame(0, 33333.3 * (k + 1));
        ks_matcher_push(m, &f, NULL);
        while (ks_matcher_pop(m, &set))
            out++;
    }
    KS_CHECK(out >= 100 - 5);
    ks_matcher_free(m);
}

static int batch_sets, batch_complete;
static void on_set(const ks_frame_set *s, void *ctx)
{
    (void)ctx;
    batch_sets++;
    batch_complete += s->complete;
}

static void test_batch(void)
{
    /* recordings: frames in any order (device by device), matched the same way */
    ks_matcher_config c;
    ks_matcher_config_init(&c, 3, KS_FPS_15, KS_TS_SEED);
    ks_match_frame fr[300];
    int n = 0;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 100; k++)
            fr[n++] = frame(d, 66666.7 * (k + 3) + d * 30);
    batch_sets = batch_complete = 0;
    size_t sets = ks_match_frames(&c, fr, (size_t)n, on_set, NULL, NULL);
    KS_CHECK_INT(sets, 100);
    KS_CHECK_INT(batch_complete, 100);
    ks_error e;
    ks_matcher *m;
    c.device_count = 0;
    KS_CHECK(ks_matcher_create(&c, &m, &e) == KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "device_count");
}

int main(void)
{
    KS_RUN(test_groups_complete_sets);
    KS_RUN(test_default_tolerance_quarter_period);
    KS_RUN(test_offsets_and_conventions);
    KS_RUN(test_drops_partial_late);
    KS_RUN(test_dead_device_bounded);
    KS_RUN(test_stalled_device_forces);
    KS_RUN(test_batch);
    return KS_TEST_END();
}
