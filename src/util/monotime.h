/* util/monotime.h: time that only moves forward, and waits with deadlines on it. Deadlines and
 * timeouts use CLOCK_MONOTONIC so that a wall-clock step (NTP, a user setting the date) neither
 * ends a wait early nor stretches it to hours. A condition variable waited on with
 * ks_cond_wait_until / ks_cond_wait_ms must be initialised with ks_cond_init_monotonic.
 * Internal to the library and the command. */
#ifndef KS_UTIL_MONOTIME_H
#define KS_UTIL_MONOTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in nanoseconds and in seconds. */
int64_t ks_mono_ns(void);
double ks_mono_s(void);

/* The CLOCK_MONOTONIC instant ms milliseconds from now (ms < 0 counts as 0). */
struct timespec ks_mono_deadline_ms(int64_t ms);

/* The same for an absolute monotonic time in nanoseconds. */
struct timespec ks_mono_timespec(int64_t mono_ns);

/* pthread_cond_init with the condition's clock set to CLOCK_MONOTONIC; returns pthread's result. */
int ks_cond_init_monotonic(pthread_cond_t *cv);

/* pthread_cond_timedwait until the monotonic instant `deadline` (from ks_mono_deadline_ms);
 * returns true when it timed out. The caller holds mu and re-checks its predicate either way. */
bool ks_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *deadline);

/* Waits at most ms milliseconds; returns true when it timed out. */
bool ks_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* Sleeps ms milliseconds (restarting after signals). */
void ks_sleep_ms(int64_t ms);

#endif
