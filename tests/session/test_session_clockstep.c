/* A wall-clock step neither stalls nor spins the session: its timed waits run on CLOCK_MONOTONIC.
 * This program's clock_gettime (it interposes on the C library's for the whole process) reports
 * CLOCK_REALTIME one hour in the past, as after NTP or a user setting the date back. A session on
 * the scripted fake backend whose devices stall then waits in ks_session_next for 1 s: with
 * deadlines on the wall clock every wait would end at once (the deadline already passed) and the
 * loop would spin, reading the monotonic clock thousands of times; on the monotonic clock it wakes
 * when the stalled devices' capture threads time out. A step forward would instead make each wait last until a
 * broadcast (an hour without one): the wait returns in its time here whichever way. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "ks_test.h"
#include "support/fake_backend.h"
#include "support/sim_rigs.h"

static _Thread_local int counting;   /* only the test's own thread counts */
static _Thread_local long mono_reads;
static long long realtime_step_s = -3600;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && id == CLOCK_REALTIME)
        ts->tv_sec += (time_t)realtime_step_s;
    if (counting && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_RAW))
        mono_reads++;
    return rc;
}

static void test_wait_through_step(long long step_s)
{
    realtime_step_s = step_s;
    ks_rig rig;
    ks_plan plan;
    simt_rig(&rig, 2, SIMT_DAISY, 2);
    ks_plan_make(&rig, NULL, &plan, NULL);
    fake_config fc;
    fake_config_init(&fc, 2, &rig);
    fc.dev[0].stall_after = fc.dev[1].stall_after = 5; /* frames to start with, then silence */
    ks_backend *b = fake_backend_create(&fc);
    ks_session_options o;
    ks_session_options_init(&o);
    o.first_frame_timeout_ms = 10000;
    ks_session *s = NULL;
    ks_error e;
    KS_CHECK_MSG(ks_session_open(&rig, &plan, b, &o, &s, &e) == KS_OK, "%s", e.message);
    KS_CHECK_MSG(s && ks_session_start(s, &e) == KS_OK, "%s", e.message);
    ks_session_set set;
    int sets = 0;
    while (s && sets < 10 && ks_session_next(s, &set, 1000, &e) == KS_OK) {
        ks_session_set_release(&set);
        sets++;
    }
    KS_CHECK_INT(e.code, KS_ETIMEOUT); /* both devices stalled after their frames */
    struct timespec t0, t1;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
    mono_reads = 0;
    counting = 1;
    ks_status st = s ? ks_session_next(s, &set, 1000, &e) : KS_EINVAL;
    counting = 0;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    KS_CHECK_INT(st, KS_ETIMEOUT);
    /* returned in its time (bounded generously for a loaded machine: never the hour of the step) */
    KS_CHECK_MSG(waited >= 0.99 && waited < 30, "waited %.3f s for a 1 s timeout", waited);
    /* woken by the stalled devices' timeouts (every 20 ms each): ~150 clock reads; a spinning loop
     * makes thousands even on a loaded machine (3000 measured at load 16) */
    KS_CHECK_MSG(mono_reads < 600, "ks_session_next read the clock %ld times in 1 s (wall clock stepped %+lld s)",
                 mono_reads, step_s);
    printf("  wall clock stepped %+lld s: 1 s wait took %.3f s, %ld clock reads\n", step_s, waited, mono_reads);
    ks_session_close(s);
    ks_backend_free(b);
}

static void test_step_back(void)
{
    test_wait_through_step(-3600);
}

static void test_step_forward(void)
{
    test_wait_through_step(3600);
}

int main(void)
{
    KS_RUN(test_step_back);
    KS_RUN(test_step_forward);
    return KS_TEST_END();
}
