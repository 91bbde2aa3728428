/* Property test: 3000 random valid rigs of 1 to 10 devices (daisy chains, stars, a lone device, a
 * standalone tenth device in its own interference group; random depth and color modes, fps, groups,
 * aims, exposures and guards), seeded. Every plan must be feasible when the guard is the default;
 * every feasible plan's proof is re-checked by an exact integer pulse check (plantest.h) that
 * shares no code with the planner or ks_plan_check_lasers; every device configuration passes
 * ks_device_config_check; the start order puts every subordinate before the device feeding it. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinsync/plan.h"
#include "ks_test.h"
#include "plan/plantest.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int below(int n)
{
    return (int)(next() % (uint32_t)n);
}

static ks_rig rig;
static ks_plan plan;
static int feasible_count, infeasible_count, interleaved_count, laser_pairs;

static void random_camera(ks_rig *r, bool color_required)
{
    for (;;) {
        ks_depth_mode dm = (ks_depth_mode)below(KS_DEPTH_MODE_COUNT);
        ks_fps fps = (ks_fps)below(KS_FPS_COUNT);
        ks_color_resolution cr = (ks_color_resolution)below(KS_COLOR_RESOLUTION_COUNT);
        if (cr == KS_COLOR_OFF && (color_required || dm == KS_DEPTH_OFF))
            continue;
        const ks_depth_mode_info *di = ks_depth_mode_get(dm);
        const ks_color_resolution_info *ci = ks_color_resolution_get(cr);
        if (di && !(di->fps_mask & (1u << fps)))
            continue;
        if (ci && !(ci->fps_mask & (1u << fps)))
            continue;
        ks_image_format fmt = KS_FORMAT_MJPG;
        if (ci) {
            do
                fmt = (ks_image_format)below(KS_FORMAT_BGRA32 + 1);
            while (!(ci->format_mask & (1u << fmt)));
        }
        r->camera.depth_mode = dm;
        r->camera.fps = fps;
        r->camera.color_resolution = cr;
        r->camera.color_format = fmt;
        r->camera.synchronized_images_only = ci && di && below(2);
        r->camera.imu = below(2);
        /* a manual exposure from the table that fits the frame */
        r->exposure.powerline = below(2) ? KS_POWERLINE_50HZ : KS_POWERLINE_60HZ;
        int count;
        const int *table = ks_exposure_table(r->exposure.powerline, &count);
        int e;
        do
            e = table[below(count)];
        while (e > ks_frame_period_us(fps));
        r->exposure.manual = true;
        r->exposure.exposure_us = e;
        return;
    }
}

static void one_rig(int iter)
{
    int n = 1 + below(10);
    bool star = n <= 3 && below(2);
    int chained = n == 10 ? 9 : n;
    plantest_rig(&rig, chained, star, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, below(2) ? KS_AIM_INTERLEAVED
                                                                                  : KS_AIM_SIMULTANEOUS, false);
    if (n == 10) { /* a tenth device, declared standalone, alone in its interference group */
        ks_rig_device *d = &rig.devices[9];
        memset(d, 0, sizeof *d);
        snprintf(d->serial, sizeof d->serial, "000099999999");
        snprintf(d->name, sizeof d->name, "lone");
        snprintf(d->host, sizeof d->host, "hx");
        d->role = KS_ROLE_STANDALONE;
        d->group = 7;
        rig.device_count = 10;
    }
    random_camera(&rig, n > 1);
    for (int i = 0; i < chained; i++)
        rig.devices[i].group = below(4) == 0 ? below(3) : 0;
    bool default_guard = below(5) != 0;
    if (!default_guard)
        rig.guard_us = 160 + below(241);
    ks_findings f;
    ks_findings_init(&f);
    ks_status vs = ks_rig_validate(&rig, &f);
    KS_CHECK_MSG(vs == KS_OK, "iter %d: generated rig does not validate (%s)", iter,
                 f.count ? f.items[0].message : "");
    ks_findings_free(&f);
    if (vs != KS_OK)
        return;

    ks_status st = ks_plan_make(&rig, NULL, &plan, NULL);
    if (plan.aim == KS_AIM_INTERLEAVED)
        interleaved_count++;
    if (default_guard)
        KS_CHECK_MSG(st == KS_OK, "iter %d (%d devices, %s, %d fps, %s): %s", iter, n,
                     ks_depth_mode_name(rig.camera.depth_mode), ks_fps_hz(rig.camera.fps), ks_aim_name(plan.aim),
                     plan.reason);
    if (st != KS_OK) {
        infeasible_count++;
        KS_CHECK(!plan.feasible);
        KS_CHECK(plan.reason[0] != 0);
        KS_CHECK_MSG(plan.alternative_count > 0, "iter %d: infeasible without alternatives: %s", iter, plan.reason);
        return;
    }
    feasible_count++;
    KS_CHECK(plan.feasible && plan.proof.lasers_ok && plan.proof.color_ok);

    /* the proof, re-checked exactly */
    int a = -1, b = -1;
    int64_t exact = plantest_exact_min_separation(&rig, &plan, &a, &b);
    if (exact >= 0) {
        laser_pairs++;
        KS_CHECK_MSG(exact >= 9LL * plan.guard_us, "iter %d: pulses of %d and %d only %.3f us apart", iter, a, b,
                     exact / 9.0);
        KS_CHECK_MSG(fabs(plan.proof.min_separation_us - exact / 9.0) < 1e-6, "iter %d: proof %.6f exact %.6f", iter,
                     plan.proof.min_separation_us, exact / 9.0);
    } else {
        KS_CHECK_INT(plan.proof.device_a, -1);
    }

    for (int i = 0; i < plan.device_count; i++) {
        ks_error e;
        ks_error_clear(&e);
        KS_CHECK_MSG(ks_device_config_check(&plan.devices[i].config, &e) == KS_OK, "iter %d device %d: %s", iter, i,
                     e.message);
        if (plan.aim == KS_AIM_SIMULTANEOUS)
            KS_CHECK_INT(plan.devices[i].subordinate_delay_usec, 0);
    }
    if (plan.aim == KS_AIM_INTERLEAVED)
        KS_CHECK(plan.spacing_error_us <= ks_delay_ticks_to_us(1) + 1e-9);
    /* start order: every subordinate before the device whose Sync Out feeds it; master last */
    for (int c = 0; c < rig.cable_count; c++)
        KS_CHECK(plan.devices[rig.cables[c].to].start_position < plan.devices[rig.cables[c].from].start_position);
    if (rig.master >= 0)
        KS_CHECK_INT(plan.devices[rig.master].start_position, plan.device_count);

    if (iter % 50 == 0) {
        char *s = ks_plan_to_json(&rig, &plan, NULL);
        json_error_t je;
        json_t *root = s ? json_loads(s, 0, &je) : NULL;
        KS_CHECK(root != NULL);
        json_decref(root);
        free(s);
    }
}

static void test_random_rigs(void)
{
    for (int i = 0; i < 3000; i++)
        one_rig(i);
    printf("3000 random rigs: %d feasible (%d with laser pairs), %d infeasible (large guards), %d interleaved\n",
           feasible_count, laser_pairs, infeasible_count, interleaved_count);
    KS_CHECK(feasible_count > 2000);
    KS_CHECK(laser_pairs > 1000);
}

int main(void)
{
    KS_RUN(test_random_rigs);
    return KS_TEST_END();
}
