/* bench_plan: plans per second for random 9-device daisy-chain rigs (seeded): random depth mode,
 * fps, aim and groups; each plan includes the independent proof. Prints the figure.
 * Usage: bench_plan [RIGS] (default 20000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinsync/plan.h"
#include "kinsync/rig.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void make_rig(ks_rig *rig)
{
    static const ks_depth_mode modes[] = {KS_DEPTH_NFOV_2X2BINNED, KS_DEPTH_NFOV_UNBINNED, KS_DEPTH_WFOV_2X2BINNED,
                                          KS_DEPTH_WFOV_UNBINNED};
    ks_rig_init(rig);
    rig->device_count = 9;
    for (int i = 0; i < 9; i++) {
        ks_rig_device *d = &rig->devices[i];
        snprintf(d->serial, sizeof d->serial, "0000%08d", i + 1);
        snprintf(d->name, sizeof d->name, "d%d", i);
        snprintf(d->host, sizeof d->host, "h%d", i);
        d->group = next() % 4 == 0 ? (int)(next() % 2) : 0;
        if (i > 0) {
            ks_rig_cable *c = &rig->cables[rig->cable_count++];
            memset(c, 0, sizeof *c);
            c->from = i - 1;
            c->to = i;
            c->length_m = 2;
        }
    }
    rig->camera.depth_mode = modes[next() % 4];
    rig->camera.fps = rig->camera.depth_mode == KS_DEPTH_WFOV_UNBINNED ? (ks_fps)(next() % 2) : (ks_fps)(next() % 3);
    rig->exposure.exposure_us = ks_exposure_min_us();
    rig->aim = next() % 2 ? KS_AIM_INTERLEAVED : KS_AIM_SIMULTANEOUS;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n <= 0)
        n = 20000;
    ks_rig *rigs = malloc(sizeof *rigs * 64);
    ks_plan *plan = malloc(sizeof *plan);
    if (!rigs || !plan)
        return 1;
    for (int i = 0; i < 64; i++) {
        make_rig(&rigs[i]);
        ks_findings f;
        ks_findings_init(&f);
        if (ks_rig_validate(&rigs[i], &f) != KS_OK) {
            fprintf(stderr, "bench_plan: generated rig %d does not validate\n", i);
            return 1;
        }
        ks_findings_free(&f);
    }
    struct timespec t0, t1;
    int feasible = 0;
    double min_sep = 1e9;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        if (ks_plan_make(&rigs[i % 64], NULL, plan, NULL) == KS_OK)
            feasible++;
        if (plan->proof.device_a >= 0 && plan->proof.min_separation_us < min_sep)
            min_sep = plan->proof.min_separation_us;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("bench_plan: %d plans of random 9-device rigs (64 distinct, seeded) in %.3f s: %.0f plans/s "
           "(%.1f us per plan incl. proof); %d feasible, smallest separation %.1f us\n",
           n, s, n / s, s / n * 1e6, feasible, min_sep);
    free(rigs);
    free(plan);
    return 0;
}
