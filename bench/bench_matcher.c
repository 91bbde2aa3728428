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
    double *lat = malloc(sizeof(double) * (size_t)sets);
    long nlat = 0;
    int order[9];
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
            double tp = now();
            ks_matcher_push(m, &f, NULL);
            bool got = false;
            while (ks_matcher_pop(m, &out)) {
                popped++;
                complete += out.complete;
                got = true;
            }
            if (got && nlat < sets)
                lat[nlat++] = now() - tp;
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
    free(lat);
    ks_matcher_free(m);
    return 0;
}
