/* util/team.c: see team.h. A round is published by bumping `round` (under the mutex, so a sleeper
 * cannot miss it) and finished when `done` counts every started thread. Waiters first spin on the
 * atomic (a pause per check, the clock read every 256 checks) and sleep only when spin_us passes. */
#include "util/team.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/monotime.h"

struct member {
    ks_team *team;
    int share;
};

struct ks_team {
    int threads, started;
    int64_t spin_ns;
    pthread_t th[64];
    struct member mem[64];
    pthread_mutex_t mu;
    pthread_cond_t round_cv, done_cv;
    atomic_uint round; /* bumped per round (and to stop) */
    atomic_int done;   /* threads finished with the current round */
    bool stop;         /* written with the round's bump, as fn and arg */
    void (*fn)(void *, int);
    void *arg;
};

/* Spins until *a differs from `old` or spin_ns passes; true when it changed. */
static bool spin_uint(const atomic_uint *a, unsigned old, int64_t spin_ns)
{
    if (spin_ns <= 0)
        return atomic_load_explicit(a, memory_order_acquire) != old;
    int64_t end = ks_mono_ns() + spin_ns;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(a, memory_order_acquire) != old)
            return true;
        ks_cpu_relax();
        if (!(i & 255) && ks_mono_ns() > end)
            return false;
    }
}

/* Spins until *a reaches `want` or spin_ns passes; true when it did. */
static bool spin_int(const atomic_int *a, int want, int64_t spin_ns)
{
    if (spin_ns <= 0)
        return atomic_load_explicit(a, memory_order_acquire) >= want;
    int64_t end = ks_mono_ns() + spin_ns;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(a, memory_order_acquire) >= want)
            return true;
        ks_cpu_relax();
        if (!(i & 255) && ks_mono_ns() > end)
            return false;
    }
}

static void *member_main(void *p)
{
    struct member *m = p;
    ks_team *t = m->team;
    unsigned seen = 0; /* the team starts at round 0 */
    for (;;) {
        if (!spin_uint(&t->round, seen, t->spin_ns)) {
            pthread_mutex_lock(&t->mu);
            while (atomic_load_explicit(&t->round, memory_order_acquire) == seen)
                pthread_cond_wait(&t->round_cv, &t->mu);
            pthread_mutex_unlock(&t->mu);
        }
        /* stop, fn and arg were written before the round was bumped (release): this acquire sees them */
        seen = atomic_load_explicit(&t->round, memory_order_acquire);
        if (t->stop)
            return NULL;
        t->fn(t->arg, m->share);
        pthread_mutex_lock(&t->mu);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
        pthread_cond_signal(&t->done_cv);
        pthread_mutex_unlock(&t->mu);
    }
}

ks_team *ks_team_create(int threads, int spin_us)
{
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    ks_team *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->threads = threads;
    t->spin_ns = (int64_t)(spin_us > 0 ? spin_us : 0) * 1000;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return NULL;
    }
    if (pthread_cond_init(&t->round_cv, NULL) != 0) {
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    if (pthread_cond_init(&t->done_cv, NULL) != 0) {
        pthread_cond_destroy(&t->round_cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    atomic_init(&t->round, 0);
    atomic_init(&t->done, 0);
    /* shares 1 .. started run on threads; the rest, if a start fails, on the caller */
    for (int s = 1; s < threads; s++) {
        t->mem[s] = (struct member){t, s};
        if (pthread_create(&t->th[s], NULL, member_main, &t->mem[s]) != 0)
            break;
        t->started = s;
    }
    return t;
}

void ks_team_destroy(ks_team *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    atomic_fetch_add_explicit(&t->round, 1, memory_order_release);
    pthread_cond_broadcast(&t->round_cv);
    pthread_mutex_unlock(&t->mu);
    for (int s = 1; s <= t->started; s++)
        pthread_join(t->th[s], NULL);
    pthread_cond_destroy(&t->done_cv);
    pthread_cond_destroy(&t->round_cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int ks_team_started(const ks_team *t)
{
    return t ? t->started : 0;
}

void ks_team_run(ks_team *t, void (*fn)(void *arg, int share), void *arg)
{
    if (t->started > 0) {
        pthread_mutex_lock(&t->mu);
        t->fn = fn;
        t->arg = arg;
        atomic_store_explicit(&t->done, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->round, 1, memory_order_release);
        pthread_cond_broadcast(&t->round_cv);
        pthread_mutex_unlock(&t->mu);
    }
    for (int s = t->started + 1; s < t->threads; s++) /* shares whose thread did not start */
        fn(arg, s);
    fn(arg, 0);
    if (t->started > 0 && !spin_int(&t->done, t->started, t->spin_ns)) {
        pthread_mutex_lock(&t->mu);
        while (atomic_load_explicit(&t->done, memory_order_acquire) < t->started)
            pthread_cond_wait(&t->done_cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
    }
}
