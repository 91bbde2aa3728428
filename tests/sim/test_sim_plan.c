/* The planner and the simulator agree: a rig started with the plan's configurations in the plan's
 * start order shows zero laser damage and colour aligned within the target; the same rig with zero
 * delays shows damage. */
#include <stdlib.h>

#include "kinsync/plan.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

typedef struct outcome {
    long corrupted;
    double color_spread_us;
    int sets;
} outcome;

static outcome run(bool planned)
{
    outcome o = {0};
    ks_rig rig;
    simt_rig(&rig, 5, SIMT_DAISY, 2.0);
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    ks_plan *plan = calloc(1, sizeof *plan);
    ks_error err;
    KS_CHECK_MSG(ks_plan_make(&rig, NULL, plan, &err) == KS_OK, "%s", err.message);
    KS_CHECK(plan->proof.lasers_ok);
    ks_sim_config cfg;
    simt_config(&cfg, 101, true);
    cfg.render_color = false;
    cfg.clock_default.jitter_us = 1;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    for (int k = 0; k < rig.device_count; k++) {
        int i = plan->start_order[k];
        if (planned)
            r.cfg[i] = plan->devices[i].config;
        KS_CHECK(simt_start(&r, i));
    }
    for (int s = 0; s < 5; s++) {
        double ts[KS_RIG_MAX_DEVICES] = {0};
        ks_capture *c[KS_RIG_MAX_DEVICES];
        ks_sim_frame_truth t[KS_RIG_MAX_DEVICES];
        /* one set: every device's capture of one pulse (their startup drops differ) */
        bool ok = simt_grab_aligned(&r, r.n, NULL, c, t, 1000);
        for (int i = 0; ok && i < r.n; i++) {
            o.corrupted += t[i].corrupted_pixels;
            ts[i] = (double)c[i]->color->device_ts_us;
            ks_capture_release(c[i]);
        }
        KS_CHECK(ok);
        for (int i = 1; ok && i < r.n; i++)
            if (fabs(ts[i] - ts[0]) > o.color_spread_us)
                o.color_spread_us = fabs(ts[i] - ts[0]);
        o.sets++;
    }
    simt_close(&r);
    free(plan);
    return o;
}

static void test_plan_gives_zero_damage(void)
{
    outcome good = run(true), bad = run(false);
    KS_CHECK_INT(good.sets, 5);
    KS_CHECK_INT(good.corrupted, 0);
    KS_CHECK(good.color_spread_us <= ks_color_alignment_target_us());
    KS_CHECK(bad.corrupted > 1000);
    printf("planned: %ld corrupted pixels, colour spread %.1f us; zero delays: %ld corrupted pixels\n",
           good.corrupted, good.color_spread_us, bad.corrupted);
}

int main(void)
{
    KS_RUN(test_plan_gives_zero_damage);
    return KS_TEST_END();
}
