/* util/team.h: a team of persistent threads for per-frame work split in rounds (the fusion's
 * phases). Starting threads per round cost ~0.15 ms each on the development VM, and waking a
 * sleeping thread (a join, a condition variable) ~0.2-0.4 ms: a frame set of two rounds lost
 * ~1 ms of 35 to it. A team's threads stay alive between rounds and, for a short while after a
 * round, wait by spinning, so a round that follows soon (the next phase, the next frame set of a
 * steady stream) starts without a wake-up; after that they sleep on a condition variable.
 * Internal to the library. */
#ifndef KS_UTIL_TEAM_H
#define KS_UTIL_TEAM_H

typedef struct ks_team ks_team;

/* A team for `threads` shares (the caller runs share 0; threads - 1 threads are started). Threads
 * that cannot be started leave their shares to the caller (ks_team_run still runs every share).
 * spin_us: how long a waiting thread spins before it sleeps. NULL when out of memory. */
ks_team *ks_team_create(int threads, int spin_us);
/* Stops and joins the threads. NULL is allowed. */
void ks_team_destroy(ks_team *t);
/* Runs fn(arg, s) for every share s = 0 .. threads - 1, each share on its own thread where it
 * started, and returns when all are done (their writes visible to the caller). Not reentrant: one
 * caller at a time. */
void ks_team_run(ks_team *t, void (*fn)(void *arg, int share), void *arg);
/* A pause for a thread spinning on a flag another core will set. */
static inline void ks_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/* Threads actually started besides the caller. */
int ks_team_started(const ks_team *t);

#endif
