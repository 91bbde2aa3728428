/* Monotonic time and timed waits (util/monotime.h). */
#include "util/monotime.h"

#include <errno.h>

int64_t ks_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double ks_mono_s(void)
{
    return (double)ks_mono_ns() * 1e-9;
}

struct timespec ks_mono_timespec(int64_t mono_ns)
{
    struct timespec ts;
    if (mono_ns < 0)
        mono_ns = 0;
    ts.tv_sec = (time_t)(mono_ns / 1000000000);
    ts.tv_nsec = (long)(mono_ns % 1000000000);
    return ts;
}

struct timespec ks_mono_deadline_ms(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    return ks_mono_timespec(ks_mono_ns() + ms * 1000000);
}

int ks_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

bool ks_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *deadline)
{
    return pthread_cond_timedwait(cv, mu, deadline) == ETIMEDOUT;
}

bool ks_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec d = ks_mono_deadline_ms(ms);
    return ks_cond_wait_until(cv, mu, &d);
}

void ks_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
