/* bench_matcher: frame-set matcher throughput for a 9-device rig (target >= 10000 sets/s) and the
 * latency matching adds per set (target < 1 ms): time from the push of a set's last frame to the
 * set being available to pop. Frames carry 1 us jitter, 0.5 % drops and device order shuffled per
 * period, as a live session feeds them. Run: build/bench/bench_matcher [sets]. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinsync/matcher.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: where it stays small while the wall clock jumps, the thread was not
 * running (preempted by the scheduler), not matching. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static double unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const int n = 9;
    long sets = argc > 1 ? atol(argv[1]) : 200000;
    ks_matcher_config c;
    ks_matcher_config_init(&c, n, KS_FPS_30, KS_TS_SEED);
    for (int d = 1; d < n; d++) {
        c.devices[d].color_offset_us = 160.0 * d; /* interleaved-ish subordinate delays */
        c.devices[d].depth_delay_us = 0;
    }
    ks_matcher *m;
    if (ks_matcher_create(&c, &m, NULL) != KS_OK)
        return 1;
    ks_match_frame f;
    memset(&f, 0, sizeof f);
    f.has_color = f.has_depth = true;
    f.color_exposure_us = 8330;
    f.depth_exposure_us = 12800;
    f.invalid_fraction = -1;
    ks_frame_set out;
    long popped = 0, complete = 0;
    double *lat = malloc(sizeof(double) * (size_t)sets), *cpus = malloc(sizeof(double) * (size_t)sets);
    long nlat = 0, over = 0;
    double max_cpu = 0, max_cpu_over = 0; /* CPU time of the slowest push+pop; of those over 1 ms wall */
    int order[9];
    char load[64] = "?";
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (!fgets(load, sizeof load, la))
            snprintf(load, sizeof load, "?");
        load[strcspn(load, " ")] = 0;
        fclose(la);
    }
    double t0 = now();
    for (long k = 0; k < sets; k++) {
        for (int i = 0; i < n; i++)
            order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(unit() * (i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < n; i++) {
            int d = order[i];
            if (unit() < 0.005)
                continue;
            double base = 33333.333 * (double)(k + 1) + c.devices[d].color_offset_us + (unit() - 0.5) * 2;
            f.device = d;
            f.color_ts_us = (uint64_t)base;
            f.depth_ts_us = (uint64_t)(base + 4165 - 6400);
            double tp = now(), cp = cpu_now();
            ks_matcher_push(m, &f, NULL);
            bool got = false;
            while (ks_matcher_pop(m, &out)) {
                popped++;
                complete += out.complete;
                got = true;
            }
            if (got && nlat < sets) {
                double wall = now() - tp, cpu = cpu_now() - cp;
                cpus[nlat] = cpu;
                lat[nlat++] = wall;
                max_cpu = cpu > max_cpu ? cpu : max_cpu;
                if (wall > 1e-3) {
                    over++;
                    max_cpu_over = cpu > max_cpu_over ? cpu : max_cpu_over;
                }
            }
        }
    }
    ks_matcher_flush(m);
    while (ks_matcher_pop(m, &out))
        popped++;
    double dt = now() - t0;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    printf("bench_matcher: %d devices, %ld periods, %ld sets (%ld complete), %.3f s\n", n, sets, popped, complete, dt);
    printf("  throughput: %.0f frame sets/s (target >= 10000)\n", (double)popped / dt);
    if (nlat)
        printf("  latency added by matching (push of the completing frame -> set ready): median %.2f us, "
               "p99 %.2f us, max %.2f us (target < 1000 us)\n",
               lat[nlat / 2] * 1e6, lat[(long)(nlat * 0.99)] * 1e6, lat[nlat - 1] * 1e6);
    if (nlat) {
        /* Wall latency includes time the thread spent not running; its own CPU time does not. */
        qsort(cpus, (size_t)nlat, sizeof *cpus, cmp);
        printf("  CPU time of the matcher in one push+pop (two clock reads included): median %.2f us, p99.99 %.2f us, "
               "max %.2f us\n", cpus[nlat / 2] * 1e6, cpus[(long)(nlat * 0.9999)] * 1e6, max_cpu * 1e6);
        if (over)
            printf("  %ld of %ld sets took over 1 ms of wall time, using at most %.2f us of CPU: the thread was "
                   "preempted (scheduler, load %s), not matching\n", over, nlat, max_cpu_over * 1e6, load);
        else
            printf("  no set took over 1 ms of wall time (load %s)\n", load);
    }
    free(lat);
    free(cpus);
    ks_matcher_free(m);
    return 0;
}
