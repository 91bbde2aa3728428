/* bench_common.h: what every bench program measures with: wall time (CLOCK_MONOTONIC), this
 * process's CPU time, and the machine's load average printed beside the figures. */
#ifndef KS_BENCH_COMMON_H
#define KS_BENCH_COMMON_H

#include <stdio.h>
#include <string.h>
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

#endif
