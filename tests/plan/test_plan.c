/* Planner and proof on known rigs: 2, 3, 9, 10, 18 devices at 30/15/5 fps, interference groups,
 * interleaved N = 2, 3, 4, passive IR, unsynchronized devices, guard overrides, infeasible rigs
 * with their alternatives, the independent check catching a collision, recorder lines, JSON. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "kinsync/plan.h"
#include "ks_test.h"
#include "plan/plantest.h"

static ks_rig rig;
static ks_plan plan;

static double tick_us(void)
{
    return ks_delay_ticks_to_us(1);
}

static void check_valid(int n, bool star, ks_depth_mode dm, ks_fps fps, ks_aim aim)
{
    plantest_rig(&rig, n, star, dm, fps, aim, false);
    ks_findings f;
    ks_findings_init(&f);
    ks_status vs = ks_rig_validate(&rig, &f);
    KS_CHECK_MSG(vs == KS_OK, "rig of %d devices should validate", n);
    ks_findings_free(&f);
}

/* every plan property that must hold for a feasible plan */
static void check_feasible_plan(void)
{
    KS_CHECK_MSG(plan.feasible, "%s", plan.reason);
    KS_CHECK(plan.proof.lasers_ok);
    KS_CHECK(plan.proof.color_ok);
    int a = -1, b = -1;
    int64_t exact = plantest_exact_min_separation(&rig, &plan, &a, &b);
    if (exact >= 0) {
        KS_CHECK(exact * 1.0 / 9 >= plan.guard_us - 1e-9);
        KS_CHECK_NEAR(plan.proof.min_separation_us, exact / 9.0, 1e-6);
    } else {
        KS_CHECK_INT(plan.proof.device_a, -1);
    }
    for (int i = 0; i < plan.device_count; i++) {
        ks_error e;
        KS_CHECK(ks_device_config_check(&plan.devices[i].config, &e) == KS_OK);
        KS_CHECK(abs(plan.devices[i].depth_delay_usec) <= plan.period_limit_us);
        KS_CHECK_NEAR(plan.devices[i].depth_delay_effective_us,
                      ks_delay_effective_us(plan.devices[i].depth_delay_usec), 1e-9);
    }
    /* the master starts last, subordinates before it */
    if (rig.master >= 0)
        KS_CHECK_INT(plan.start_order[plan.device_count - 1], rig.master);
}

static void test_two_devices_30fps(void)
{
    check_valid(2, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    KS_CHECK_INT(plan.devices[0].sync_mode, KS_SYNC_MASTER);
    KS_CHECK_INT(plan.devices[1].sync_mode, KS_SYNC_SUBORDINATE);
    KS_CHECK_INT(plan.devices[0].depth_delay_usec, 0);
    /* 160 us would be 14 ticks = 155.6 us: the planner asks for 167 us = 15 ticks = 166.7 us */
    KS_CHECK_INT(plan.devices[1].depth_delay_usec, 167);
    KS_CHECK_NEAR(plan.devices[1].depth_delay_effective_us, 15 * tick_us(), 1e-9);
    KS_CHECK_INT(plan.devices[1].subordinate_delay_usec, 0);
    KS_CHECK_NEAR(plan.proof.min_separation_us, 15 * tick_us(), 1e-6);
    KS_CHECK_INT(plan.guard_us, 160);
    KS_CHECK_NEAR(plan.guard_step_us, 15 * tick_us(), 1e-9);
    KS_CHECK_INT(plan.slots_per_gap, 9);
    KS_CHECK_INT(plan.start_order[0], 1);
    KS_CHECK_INT(plan.start_order[1], 0);
    KS_CHECK_INT(plan.proof.pulse_pairs_checked, 81);
}

static void test_three_devices_each_fps(void)
{
    for (int f = 0; f < KS_FPS_COUNT; f++) {
        check_valid(3, false, KS_DEPTH_NFOV_2X2BINNED, (ks_fps)f, KS_AIM_SIMULTANEOUS);
        KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
        check_feasible_plan();
        KS_CHECK_NEAR(plan.period_us, ks_frame_period_exact_us((ks_fps)f), 1e-9);
        KS_CHECK_INT(plan.devices[1].depth_delay_usec, 167);
        KS_CHECK_INT(plan.devices[2].depth_delay_usec, -167);
        /* chain: deepest subordinate first */
        KS_CHECK_INT(plan.start_order[0], 2);
        KS_CHECK_INT(plan.start_order[1], 1);
        KS_CHECK_INT(plan.start_order[2], 0);
        KS_CHECK_INT(plan.devices[2].chain_depth, 2);
    }
}

static void test_nine_devices_one_gap(void)
{
    check_valid(9, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    /* all nine fit in one idle gap: every depth delay within 4 guard steps of 0 */
    for (int i = 0; i < 9; i++)
        KS_CHECK(fabs(plan.devices[i].depth_delay_effective_us) <= 4 * plan.guard_step_us + 1e-6);
    /* the proof covers all 36 pairs of 81 pulse pairs */
    KS_CHECK_INT(plan.proof.pairs_checked, 36);
    KS_CHECK_INT(plan.proof.pulse_pairs_checked, 36 * 81);
}

static void test_ten_and_eighteen_devices(void)
{
    /* beyond the daisy-chain limit: roles set directly, the planner's arithmetic alone */
    plantest_rig(&rig, 10, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    /* the tenth does not fit into the idle gap: its whole window is placed after the others */
    double far = 0;
    for (int i = 0; i < 10; i++)
        far = fmax(far, fabs(plan.devices[i].depth_delay_effective_us));
    KS_CHECK(far > plan.window_us);

    plantest_rig(&rig, 18, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();

    /* 18 at 15 fps and 5 fps: also fine */
    rig.camera.fps = KS_FPS_5;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
}

static const ks_plan_alternative *alt(const char *kind)
{
    for (int k = 0; k < plan.alternative_count; k++)
        if (!strcmp(plan.alternatives[k].kind, kind))
            return &plan.alternatives[k];
    return NULL;
}

static void test_infeasible_with_alternatives(void)
{
    /* 24 overlapping depth cameras at 30 fps do not fit: their 216 pulses need 216 x 160 us > 33333 us
     * (pulse count: at most 23); 20 fit, evenly spaced 157 ticks (1744.4 us) apart */
    plantest_rig(&rig, 24, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
    ks_error e;
    ks_error_clear(&e);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, &e) == KS_EINVAL);
    KS_CHECK(!plan.feasible);
    KS_CHECK_CONTAINS(plan.reason, "group 0 has 24 overlapping depth cameras");
    KS_CHECK_CONTAINS(e.message, "at most 23 fit (placements for 20 were found)");
    KS_CHECK_CONTAINS(e.message, "proof by pulse count");
    KS_CHECK(plan.fail_proven);
    KS_CHECK_INT(plan.fail_upper, 23);
    const ks_plan_alternative *a = alt("fewer-devices");
    KS_CHECK(a != NULL);
    int fit = a ? a->value : 0;
    KS_CHECK_INT(fit, 20);
    a = alt("lower-fps");
    KS_CHECK(a && a->value == 15);
    KS_CHECK(alt("interleaved") == NULL); /* the laser problem is the same in both aims */
    a = alt("split-groups");
    KS_CHECK(a && a->value == (24 + fit - 1) / fit);
    /* the fit figure is true: that many devices plan, 19 and 20 too (the old greedy stopped at 18) */
    for (int k = 18; k <= fit; k++) {
        plantest_rig(&rig, k, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
        KS_CHECK_MSG(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK, "%d devices: %s", k, plan.reason);
        check_feasible_plan();
    }

    /* a large guard: 9 devices no longer fit at 30 fps, but at a lower fps */
    check_valid(9, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    ks_plan_options o;
    ks_plan_options_init(&o);
    o.guard_us = 1000;
    KS_CHECK(ks_plan_make(&rig, &o, &plan, NULL) == KS_EINVAL);
    KS_CHECK_INT(plan.slots_per_gap, 1);
    KS_CHECK(alt("fewer-devices") != NULL);
    /* guard 1000 > half the pitch: one device per laser window; 9 windows need 5 fps */
    a = alt("lower-fps");
    KS_CHECK(a && a->value == 5);
    KS_CHECK(plan.fail_proven);
    KS_CHECK_CONTAINS(plan.reason, "at most 2 fit");
    KS_CHECK_CONTAINS(plan.reason, "proof by disjoint windows");
    KS_CHECK(alt("split-groups") != NULL);
}

/* The three rigs of issue 16 that the greedy placement declared infeasible although plans exist. */
static void test_issue_rigs(void)
{
    ks_plan_options o;
    ks_plan_options_init(&o);
    /* 4 devices NFOV unbinned 30 fps interleaved, guard 600 (greedy: "only 3 fit") */
    check_valid(4, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
    o.guard_us = 600;
    KS_CHECK_MSG(ks_plan_make(&rig, &o, &plan, NULL) == KS_OK, "%s", plan.reason);
    check_feasible_plan();
    KS_CHECK(plan.proof.min_separation_us >= 600);
    KS_CHECK(plan.exact_search_used);
    /* 9 devices interleaved, guard 300 (greedy: 7) */
    check_valid(9, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
    o.guard_us = 300;
    KS_CHECK_MSG(ks_plan_make(&rig, &o, &plan, NULL) == KS_OK, "%s", plan.reason);
    check_feasible_plan();
    KS_CHECK(plan.proof.min_separation_us >= 300);
    /* 8 devices WFOV unbinned 15 fps, guard 787 (greedy: 7); evenly spaced delays give 788.3 us */
    check_valid(8, false, KS_DEPTH_WFOV_UNBINNED, KS_FPS_15, KS_AIM_SIMULTANEOUS);
    o.guard_us = 787;
    KS_CHECK_MSG(ks_plan_make(&rig, &o, &plan, NULL) == KS_OK, "%s", plan.reason);
    check_feasible_plan();
    KS_CHECK(plan.proof.min_separation_us >= 787);
    /* the same rigs with one device more are proven infeasible or kinsync says it has no proof */
    check_valid(5, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
    o.guard_us = 1000;
    KS_CHECK(ks_plan_make(&rig, &o, &plan, NULL) == KS_EINVAL);
    KS_CHECK(plan.fail_proven);
}

static void test_guard_override(void)
{
    check_valid(5, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    ks_plan_options o;
    ks_plan_options_init(&o);
    o.guard_us = 300;
    KS_CHECK(ks_plan_make(&rig, &o, &plan, NULL) == KS_OK);
    check_feasible_plan();
    KS_CHECK(plan.proof.min_separation_us >= 300);
    KS_CHECK_INT(plan.slots_per_gap, 5);
    /* the rig's own guard_us is read too */
    rig.guard_us = 250;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    KS_CHECK_INT(plan.guard_us, 250);
    KS_CHECK(plan.proof.min_separation_us >= 250);
}

static void test_groups(void)
{
    plantest_rig(&rig, 18, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
    for (int i = 0; i < 18; i++)
        rig.devices[i].group = i % 2;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    /* two groups of nine: each fits in one idle gap, and the groups reuse the same delays */
    for (int i = 0; i < 18; i++)
        KS_CHECK(fabs(plan.devices[i].depth_delay_effective_us) <= 4 * plan.guard_step_us + 1e-6);
    KS_CHECK_INT(plan.devices[1].depth_delay_usec, 0); /* first of group 1 */
    KS_CHECK_INT(plan.proof.pairs_checked, 2 * 36);
    /* a different group never constrains: the smallest separation is within a group */
    KS_CHECK(rig.devices[plan.proof.device_a].group == rig.devices[plan.proof.device_b].group);
}

static void test_interleaved(void)
{
    for (int n = 2; n <= 4; n++) {
        check_valid(n, false, KS_DEPTH_NFOV_2X2BINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
        KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
        check_feasible_plan();
        KS_CHECK_NEAR(plan.effective_fps, 30.0 * n, 1e-9);
        KS_CHECK(plan.spacing_error_us <= tick_us());
        for (int i = 1; i < n; i++) {
            double ideal = i * plan.period_us / n;
            KS_CHECK(fabs(plan.devices[i].subordinate_delay_effective_us - ideal) <= tick_us());
            KS_CHECK(plan.devices[i].subordinate_delay_usec <= (uint32_t)plan.period_limit_us);
            KS_CHECK_NEAR(plan.devices[i].color_offset_us, plan.devices[i].subordinate_delay_effective_us, 1e-9);
        }
    }
    /* N = 2: the windows are already disjoint, no depth delay needed */
    check_valid(2, false, KS_DEPTH_NFOV_2X2BINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
    ks_plan_make(&rig, NULL, &plan, NULL);
    KS_CHECK_INT(plan.devices[1].depth_delay_usec, 0);
    /* N = 3 at 30 fps: 11111 us spacing puts pulses 86 us apart without a depth delay: adjusted */
    check_valid(3, false, KS_DEPTH_NFOV_2X2BINNED, KS_FPS_30, KS_AIM_INTERLEAVED);
    ks_plan_make(&rig, NULL, &plan, NULL);
    KS_CHECK(plan.devices[1].depth_delay_usec != 0);
    KS_CHECK(plan.proof.lasers_ok);
    /* the --aim override */
    check_valid(3, false, KS_DEPTH_NFOV_2X2BINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    ks_plan_options o;
    ks_plan_options_init(&o);
    o.override_aim = true;
    o.aim = KS_AIM_INTERLEAVED;
    KS_CHECK(ks_plan_make(&rig, &o, &plan, NULL) == KS_OK);
    KS_CHECK_INT(plan.aim, KS_AIM_INTERLEAVED);
    KS_CHECK(plan.devices[2].subordinate_delay_usec > 20000);
}

static void test_no_lasers(void)
{
    check_valid(3, false, KS_DEPTH_PASSIVE_IR, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    KS_CHECK(!plan.lasers);
    KS_CHECK_INT(plan.proof.pairs_checked, 0);
    KS_CHECK_INT(plan.proof.device_a, -1);
    for (int i = 0; i < 3; i++)
        KS_CHECK_INT(plan.devices[i].depth_delay_usec, 0);
    check_valid(3, false, KS_DEPTH_OFF, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
}

static void test_wfov_unbinned(void)
{
    check_valid(9, false, KS_DEPTH_WFOV_UNBINNED, KS_FPS_15, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    KS_CHECK_INT(plan.pitch_us, ks_depth_pulse_pitch_us(KS_DEPTH_WFOV_UNBINNED));
    KS_CHECK_INT(plan.window_us, ks_depth_laser_window_us(KS_DEPTH_WFOV_UNBINNED));
    KS_CHECK_INT(plan.slots_per_gap, 15);
}

static void test_unsynced_devices(void)
{
    /* two standalone devices in one group: their lasers cannot be kept apart */
    plantest_rig(&rig, 2, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS, true);
    rig.cable_count = 0;
    rig.master = -1;
    rig.devices[0].derived_role = rig.devices[1].derived_role = KS_ROLE_STANDALONE;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_EINVAL);
    KS_CHECK_CONTAINS(plan.reason, "not synchronized");
    KS_CHECK_INT(plan.proof.unsynced_pairs, 1);
    KS_CHECK(!plan.proof.lasers_ok);
    KS_CHECK_NEAR(plan.proof.min_separation_us, 0, 1e-12);
    KS_CHECK(alt("split-groups") != NULL);
    /* in separate groups they are fine */
    rig.devices[1].group = 1;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    check_feasible_plan();
    KS_CHECK_INT(plan.devices[0].sync_mode, KS_SYNC_STANDALONE);
    /* a single device */
    check_valid(1, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    KS_CHECK_INT(plan.devices[0].sync_mode, KS_SYNC_STANDALONE);
    KS_CHECK_INT(plan.start_order[0], 0);
}

static void test_check_catches_collisions(void)
{
    check_valid(3, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    ks_plan_proof p;
    /* 160 us requested is 14 ticks = 155.6 us effective: below the guard */
    plan.devices[1].config.depth_delay_off_color_usec = 160;
    plan.devices[2].config.depth_delay_off_color_usec = 1000;
    ks_plan_check_lasers(&rig, &plan, 160, &p);
    KS_CHECK(!p.lasers_ok);
    KS_CHECK_NEAR(p.min_separation_us, 14 * tick_us(), 1e-6);
    KS_CHECK_INT(p.device_a, 0);
    KS_CHECK_INT(p.device_b, 1);
    /* a collision one pitch later (pulse k of one on pulse k+1 of the other) */
    plan.devices[1].config.depth_delay_off_color_usec = (int32_t)ks_delay_usec_at_least(ks_depth_pulse_pitch_us(KS_DEPTH_NFOV_UNBINNED) + 5 * tick_us());
    ks_plan_check_lasers(&rig, &plan, 160, &p);
    KS_CHECK(!p.lasers_ok);
    KS_CHECK_NEAR(p.min_separation_us,
                  ks_delay_effective_us(plan.devices[1].config.depth_delay_off_color_usec) -
                      ks_depth_pulse_pitch_us(KS_DEPTH_NFOV_UNBINNED),
                  1e-6);
    KS_CHECK(p.min_separation_us < 6 * tick_us());
    /* a collision across the frame boundary (cyclic) */
    plan.devices[1].config.depth_delay_off_color_usec = 0;
    plan.devices[1].config.wired_sync_mode = KS_SYNC_SUBORDINATE;
    plan.devices[1].config.subordinate_delay_off_master_usec = 33333;
    plan.devices[2].config.depth_delay_off_color_usec = 5000;
    ks_plan_check_lasers(&rig, &plan, 160, &p);
    KS_CHECK(!p.lasers_ok);
    /* 33333 us = 2999 ticks = 33322.2 us: one tick before the next frame's pulse */
    KS_CHECK_NEAR(p.min_separation_us, ks_frame_period_exact_us(KS_FPS_30) - 2999 * tick_us(), 1e-6);
    /* subordinate delays that spread color break the simultaneous color check */
    plan.devices[1].config.subordinate_delay_off_master_usec = 200;
    ks_plan_check_lasers(&rig, &plan, 160, &p);
    KS_CHECK(!p.color_ok);
    KS_CHECK_NEAR(ks_plan_cyclic_distance(10, 33323.3333333, 1e6 / 30), 20, 1e-6);
    KS_CHECK_NEAR(ks_plan_cyclic_distance(-5, 5, 100), 10, 1e-9);
}

static void test_recorder_lines(void)
{
    check_valid(3, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_15, KS_AIM_SIMULTANEOUS);
    rig.camera.color_format = KS_FORMAT_NV12;
    strcpy(rig.devices[2].host, "h0");
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    char buf[512];
    ks_plan_recorder_command(&rig, &plan, 0, buf, sizeof buf);
    KS_CHECK_CONTAINS(buf, "--external-sync Master");
    KS_CHECK(strstr(buf, "--sync-delay") == NULL);
    KS_CHECK_CONTAINS(buf, "-r 15");
    KS_CHECK_CONTAINS(buf, "-c 720p_NV12");
    KS_CHECK_CONTAINS(buf, "-d NFOV_UNBINNED");
    KS_CHECK_CONTAINS(buf, "-e 8330");
    KS_CHECK_CONTAINS(buf, "--device 0");
    ks_plan_recorder_command(&rig, &plan, 2, buf, sizeof buf);
    KS_CHECK_CONTAINS(buf, "--external-sync Subordinate --sync-delay 0 --depth-delay -167");
    KS_CHECK_CONTAINS(buf, "--device 1"); /* second device on host h0 */
    ks_plan_recorder_comment(&rig, &plan, 2, buf, sizeof buf);
    KS_CHECK_CONTAINS(buf, "serial 000000000003");
    KS_CHECK_CONTAINS(buf, "start 1 of 3");
    rig.camera.color_format = KS_FORMAT_BGRA32;
    ks_plan_recorder_comment(&rig, &plan, 2, buf, sizeof buf);
    KS_CHECK_CONTAINS(buf, "MJPG");
}

static void test_json(void)
{
    check_valid(3, false, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, KS_AIM_SIMULTANEOUS);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    char *s = ks_plan_to_json(&rig, &plan, NULL);
    KS_CHECK(s != NULL);
    json_error_t je;
    json_t *root = s ? json_loads(s, 0, &je) : NULL;
    KS_CHECK(root != NULL);
    if (root) {
        KS_CHECK_STR(json_string_value(json_object_get(root, "schema")), "kinsync.plan/1");
        KS_CHECK(json_is_true(json_object_get(root, "feasible")));
        json_t *devs = json_object_get(root, "devices");
        KS_CHECK_INT(json_array_size(devs), 3);
        json_t *d1 = json_array_get(devs, 1);
        KS_CHECK_INT(json_integer_value(json_object_get(d1, "depth_delay_off_color_usec")), 167);
        KS_CHECK_NEAR(json_real_value(json_object_get(d1, "depth_delay_effective_us")), 166.667, 1e-9);
        json_t *proof = json_object_get(root, "proof");
        KS_CHECK_NEAR(json_real_value(json_object_get(proof, "min_separation_us")), 166.667, 1e-9);
        KS_CHECK_STR(json_string_value(json_array_get(json_object_get(root, "start_order"), 2)), "d0");
        KS_CHECK(strstr(s, "166.667") != NULL);
        json_decref(root);
    }
    free(s);
}

static void test_bad_arguments(void)
{
    ks_error e;
    ks_error_clear(&e);
    KS_CHECK(ks_plan_make(NULL, NULL, &plan, &e) == KS_EINVAL);
    ks_rig_init(&rig);
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, &e) == KS_EINVAL);
    KS_CHECK(!plan.feasible);
}

int main(void)
{
    KS_RUN(test_two_devices_30fps);
    KS_RUN(test_three_devices_each_fps);
    KS_RUN(test_nine_devices_one_gap);
    KS_RUN(test_ten_and_eighteen_devices);
    KS_RUN(test_infeasible_with_alternatives);
    KS_RUN(test_issue_rigs);
    KS_RUN(test_guard_override);
    KS_RUN(test_groups);
    KS_RUN(test_interleaved);
    KS_RUN(test_no_lasers);
    KS_RUN(test_wfov_unbinned);
    KS_RUN(test_unsynced_devices);
    KS_RUN(test_check_catches_collisions);
    KS_RUN(test_recorder_lines);
    KS_RUN(test_json);
    KS_RUN(test_bad_arguments);
    return KS_TEST_END();
}
