/* Helpers of the planner tests: rigs built in code, and an exact integer pulse check.
 *
 * exact_min_separation works in units of 1/9 us, where a delay tick (1/90000 s) is 100 units and
 * every frame period and laser pitch of the tables is a whole number of units, so it needs no
 * floating point. It is a third, separate implementation of the laser rule (planner, proof, this):
 * it converts requested delays to ticks itself (plantest_ticks, the SDK's usec * 9 / 100 truncated
 * toward zero) and calls no planner or timing function but the tables' numbers. */
#ifndef KS_TESTS_PLANTEST_H
#define KS_TESTS_PLANTEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/plan.h"
#include "kinsync/rig.h"

/* A rig of n devices named d0..d(n-1), d0 the master, daisy chain (or star) cables, camera config
 * given. Roles are derived by ks_rig_validate (valid rigs) or set directly when `raw` (rigs beyond
 * the wiring limits, to exercise the planner's arithmetic alone). */
static inline void plantest_rig(ks_rig *rig, int n, bool star, ks_depth_mode dm, ks_fps fps, ks_aim aim, bool raw)
{
    ks_rig_init(rig);
    snprintf(rig->name, sizeof rig->name, "test-%d", n);
    rig->device_count = n;
    for (int i = 0; i < n; i++) {
        ks_rig_device *d = &rig->devices[i];
        snprintf(d->serial, sizeof d->serial, "0000%08d", i + 1);
        snprintf(d->name, sizeof d->name, "d%d", i);
        snprintf(d->host, sizeof d->host, "h%d", i);
        d->role = KS_ROLE_AUTO;
        if (i > 0) {
            ks_rig_cable *c = &rig->cables[rig->cable_count++];
            memset(c, 0, sizeof *c);
            c->from = star ? 0 : i - 1;
            c->to = i;
            c->length_m = 1;
            c->splitter = star && n > 2;
        }
    }
    rig->camera.depth_mode = dm;
    rig->camera.fps = fps;
    rig->aim = aim;
    if (raw) {
        rig->master = n > 1 ? 0 : -1;
        rig->topology = n > 1 ? (star ? KS_TOPOLOGY_STAR : KS_TOPOLOGY_DAISY_CHAIN) : KS_TOPOLOGY_STANDALONE;
        for (int i = 0; i < n; i++)
            rig->devices[i].derived_role = n == 1 ? KS_ROLE_STANDALONE : i == 0 ? KS_ROLE_MASTER : KS_ROLE_SUBORDINATE;
    }
}

/* The firmware's delay quantum, written out here so that the tests do not check the code under test
 * with itself: 90 kHz ticks, usec * 9 / 100, truncated toward zero (C division does that). */
static inline int64_t plantest_ticks(int64_t usec)
{
    return usec * 9 / 100;
}

static inline int64_t plantest_mod(int64_t a, int64_t m)
{
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

/* Smallest cyclic distance (in 1/9 us units) between pulse starts of two devices of one group, over
 * every pulse pair; -1 if no pair. *a, *b receive the pair. */
static inline int64_t plantest_exact_min_separation(const ks_rig *rig, const ks_plan *plan, int *pa, int *pb)
{
    int64_t best = -1;
    for (int i = 0; i < plan->device_count; i++) {
        const ks_device_config *ci = &plan->devices[i].config;
        const ks_depth_mode_info *m = ks_depth_mode_get(ci->depth_mode);
        if (!m || !m->laser_pulses)
            continue;
        int64_t period = 9LL * 1000000 / ks_fps_hz(ci->camera_fps);
        int64_t pitch = 9LL * (m->pulse_width_us + m->idle_time_us);
        for (int j = i + 1; j < plan->device_count; j++) {
            if (rig->devices[i].group != rig->devices[j].group)
                continue;
            const ks_device_config *cj = &plan->devices[j].config;
            int64_t si = 100 * (plantest_ticks(ci->depth_delay_off_color_usec) +
                                (ci->wired_sync_mode == KS_SYNC_SUBORDINATE
                                     ? plantest_ticks(ci->subordinate_delay_off_master_usec) : 0));
            int64_t sj = 100 * (plantest_ticks(cj->depth_delay_off_color_usec) +
                                (cj->wired_sync_mode == KS_SYNC_SUBORDINATE
                                     ? plantest_ticks(cj->subordinate_delay_off_master_usec) : 0));
            for (int k = 0; k < m->laser_pulses; k++)
                for (int l = 0; l < m->laser_pulses; l++) {
                    int64_t r = plantest_mod(si + k * pitch - sj - l * pitch, period);
                    int64_t d = r < period - r ? r : period - r;
                    if (best < 0 || d < best) {
                        best = d;
                        *pa = i;
                        *pb = j;
                    }
                }
        }
    }
    return best;
}

#endif
