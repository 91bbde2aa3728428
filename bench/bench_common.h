/* bench_common.h: what every bench program measures with: wall time (CLOCK_MONOTONIC), this
 * process's CPU time, and the machine's load average and memory latency printed beside the
 * figures. */
#ifndef KS_BENCH_COMMON_H
#define KS_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The first line of /proc/loadavg ("?" when it cannot be read). */
static inline void loadavg(char *buf, size_t n)
{
    snprintf(buf, n, "?");
    FILE *la = fopen("/proc/loadavg", "r");
    if (!la)
        return;
    if (!fgets(buf, (int)n, la))
        snprintf(buf, n, "?");
    buf[strcspn(buf, "\n")] = 0;
    fclose(la);
}

/* The host's memory latency: ns per dependent read, chasing a random cycle through `bytes` of
 * cache lines (allocated 2 MB-aligned and advised as huge pages, as the fusion's buffers are, so
 * that page walks weigh little). On a shared virtual machine the figures of memory-bound code move
 * with it: on the development VM it ranged from 157 to 251 ns (64 MB) within an hour while a
 * dependent ALU chain did not move by 10 % (docs/fuse.md, session 11). Printed beside the figures
 * so that runs can be compared. -1 when the buffer cannot be had. */
static inline double host_memory_latency_ns(size_t bytes, long steps)
{
    size_t n = bytes / 64;
    size_t *a = aligned_alloc(2u << 20, (n * 64 + (2u << 20) - 1) / (2u << 20) * (2u << 20));
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!a || !perm || n < 2) {
        free(a);
        free(perm);
        return -1;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(a, (n * 64 + (2u << 20) - 1) / (2u << 20) * (2u << 20), MADV_HUGEPAGE);
#endif
    uint64_t x = 0x9e3779b97f4a7c15ull; /* seeded: the same cycle every run */
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = (size_t)(x % (i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) /* line perm[i] points to line perm[i + 1]: one cycle through all */
        a[(size_t)perm[i] * 8] = (size_t)perm[(i + 1) % n] * 8;
    free(perm);
    size_t p = 0;
    for (size_t i = 0; i < n; i++) /* once round: every page touched, the TLB and caches warm */
        p = a[p];
    double t0 = now_s();
    for (long i = 0; i < steps; i++)
        p = a[p];
    double ns = (now_s() - t0) * 1e9 / (double)steps;
    volatile size_t sink = p;
    (void)sink;
    free(a);
    return ns;
}

#endif
