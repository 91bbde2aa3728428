/* Completeness of the laser placement against a brute force that shares no code with the planner.
 *
 * For seeded random small rigs (2 to 4 devices in one interference group, every laser depth mode,
 * 30/15/5 fps, both aims, guards from 160 to 2600 us) the brute force below decides whether depth
 * delays exist -- whole 90 kHz ticks within the SDK's range -P..P -- that keep every pair of pulses of
 * different devices at least the guard apart, cyclically over the frame period. The planner must
 * agree: a plan when one exists (never "infeasible" then), "infeasible" only when none does, and
 * its "at most K fit" must hold. Its own tick arithmetic, pulse loop and search are written out
 * here: ticks = usec * 9 / 100 truncated, units of 1/9 us, all 9 x 9 pulse pairs.
 *
 * The brute force fixes the first device's laser at tick 0 and enumerates the others' positions in
 * increasing order over every tick of the frame period. Both reductions are checked, not assumed:
 * a delay range of 2T+1 >= N ticks reaches every position modulo the period (N ticks), so moving
 * every laser by the same number of ticks keeps a solution a solution, and the devices are alike. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/plan.h"
#include "ks_test.h"
#include "plan/plantest.h"

static uint64_t rng = 0x8c3f5a2b1d9e7f11ull;

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

typedef struct brute {
    int64_t n;          /* frame period in ticks */
    unsigned char *ok;  /* ok[d]: trains d ticks apart keep the guard */
    int pos[8];
    long visited;
} brute;

static void brute_init(brute *b, int fps_hz, int pulse_width, int idle, int pulses, int guard_us)
{
    int64_t period_u = 9000000LL / fps_hz; /* units of 1/9 us */
    int64_t pitch_u = 9LL * (pulse_width + idle), guard_u = 9LL * guard_us;
    b->n = period_u / 100;
    b->ok = malloc((size_t)b->n);
    b->visited = 0;
    for (int64_t d = 0; d < b->n; d++) {
        int good = d != 0;
        for (int k = 0; k < pulses && good; k++)
            for (int l = 0; l < pulses && good; l++) {
                int64_t x = (100 * d + k * pitch_u - l * pitch_u) % period_u;
                if (x < 0)
                    x += period_u;
                if (x > period_u - x)
                    x = period_u - x;
                if (x < guard_u)
                    good = 0;
            }
        b->ok[d] = (unsigned char)good;
    }
}

/* the largest number of trains (up to want) placeable with pos[0] = 0 and increasing positions */
static int brute_search(brute *b, int size, int want)
{
    if (size == want)
        return size;
    int best = size;
    for (int64_t x = b->pos[size - 1] + 1; x < b->n; x++) {
        b->visited++;
        int good = 1;
        for (int i = 0; i < size && good; i++)
            good = b->ok[x - b->pos[i]];
        if (!good)
            continue;
        b->pos[size] = (int)x;
        int got = brute_search(b, size + 1, want);
        if (got > best)
            best = got;
        if (best == want)
            return best;
    }
    return best;
}

static ks_rig rig;
static ks_plan plan;

static void test_agrees_with_brute_force(void)
{
    static const ks_depth_mode modes[] = {KS_DEPTH_NFOV_2X2BINNED, KS_DEPTH_NFOV_UNBINNED, KS_DEPTH_WFOV_2X2BINNED,
                                          KS_DEPTH_WFOV_UNBINNED};
    int feasible = 0, infeasible = 0, exact_used = 0, by_search = 0;
    for (int iter = 0; iter < 160; iter++) {
        int n = 2 + below(3);
        ks_depth_mode dm = modes[below(4)];
        ks_fps fps = dm == KS_DEPTH_WFOV_UNBINNED ? (ks_fps)below(2) : (ks_fps)below(3);
        if (below(3))
            fps = dm == KS_DEPTH_WFOV_UNBINNED ? KS_FPS_15 : KS_FPS_30; /* the tight periods, mostly */
        ks_aim aim = below(2) ? KS_AIM_INTERLEAVED : KS_AIM_SIMULTANEOUS;
        /* guards where trains can still interleave (below half the pitch) are where the exhaustive
         * search, not a counting argument, has to decide */
        int guard = below(2) ? 160 + below(2441) : 450 + below(340);
        plantest_rig(&rig, n, false, dm, fps, aim, false);
        ks_findings f;
        ks_findings_init(&f);
        ks_status vs = ks_rig_validate(&rig, &f);
        ks_findings_free(&f);
        KS_CHECK_MSG(vs == KS_OK, "iter %d: rig does not validate", iter);
        ks_plan_options o;
        ks_plan_options_init(&o);
        o.guard_us = guard;
        ks_status st = ks_plan_make(&rig, &o, &plan, NULL);

        const ks_depth_mode_info *mi = ks_depth_mode_get(dm);
        int hz = ks_fps_hz(fps);
        int64_t limit_us = 1000000 / hz;        /* the SDK's integer P */
        int64_t t_max = limit_us * 9 / 100;     /* ticks of the largest delay */
        brute b;
        brute_init(&b, hz, mi->pulse_width_us, mi->idle_time_us, mi->laser_pulses, guard);
        KS_CHECK_MSG(2 * t_max + 1 >= b.n, "delays of -%lld..%lld ticks do not reach every tick of %lld",
                     (long long)t_max, (long long)t_max, (long long)b.n);
        b.pos[0] = 0;
        int most = brute_search(&b, 1, n);
        free(b.ok);
        exact_used += plan.exact_search_used;
        if (most == n) {
            feasible++;
            KS_CHECK_MSG(st == KS_OK, "iter %d: %d devices %s %d fps guard %d %s: a placement exists but: %s", iter,
                         n, ks_depth_mode_name(dm), hz, guard, ks_aim_name(aim), plan.reason);
            if (st == KS_OK) {
                int a = -1, c = -1;
                int64_t sep = plantest_exact_min_separation(&rig, &plan, &a, &c);
                KS_CHECK_MSG(sep >= 9LL * guard, "iter %d: separation %.1f us below the guard %d", iter, sep / 9.0,
                             guard);
                for (int i = 0; i < n; i++)
                    KS_CHECK(llabs((long long)plan.devices[i].depth_delay_usec) <= limit_us);
            }
        } else {
            infeasible++;
            by_search += strcmp(plan.fail_proof, "exhaustive search") == 0;
            KS_CHECK_MSG(st != KS_OK, "iter %d: the planner found a plan the brute force says cannot exist", iter);
            KS_CHECK_MSG(plan.fail_proven, "iter %d: %d devices %s %d fps guard %d: not proven: %s", iter, n,
                         ks_depth_mode_name(dm), hz, guard, plan.reason);
            KS_CHECK_MSG(plan.fail_upper >= most && plan.fail_fit <= most,
                         "iter %d: the planner says %d..%d fit, the brute force %d", iter, plan.fail_fit,
                         plan.fail_upper, most);
        }
    }
    printf("160 random small rigs: %d feasible, %d infeasible (%d proven by the exhaustive search), exact search "
           "used in %d\n",
           feasible, infeasible, by_search, exact_used);
    KS_CHECK(feasible > 30 && infeasible > 15);
}

int main(void)
{
    KS_RUN(test_agrees_with_brute_force);
    return KS_TEST_END();
}
