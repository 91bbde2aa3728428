/* Exact laser placement of one interference group (plan_place.c), used by the planner (plan.c).
 *
 * Units: 1/9 us. A 90 kHz delay tick is 100 units, every frame period (9e6 / fps units) is a whole
 * number of ticks, a laser pitch (9 x pitch in us) is a whole number of units. Positions are pulse
 * train starts in ticks, modulo the frame period. */
#ifndef KS_PLAN_PLACE_H
#define KS_PLAN_PLACE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ks_laser_space {
    int64_t period_u; /* frame period in units (9e6 / fps) */
    int64_t pitch_u;  /* pulse start to pulse start, units */
    int64_t guard_u;  /* required separation between two devices' pulse starts, units */
    int pulses;       /* pulses per frame */
} ks_laser_space;

typedef enum ks_laser_status {
    KS_LASER_FOUND = 0,   /* pos[] holds `want` positions */
    KS_LASER_NONE,        /* proven: no set of `want` positions exists; max_fit is the exact maximum */
    KS_LASER_UNDECIDED    /* the search stopped at its node budget (or memory ran out) without a
                           * placement or a proof; max_fit is the most it found */
} ks_laser_status;

typedef struct ks_laser_result {
    ks_laser_status status;
    int max_fit;      /* devices known to fit (a placement was found for this many) */
    int upper;        /* proven: no more than this many fit (== max_fit when the search finished) */
    const char *proof;/* KS_LASER_NONE: which argument proved it: "exhaustive search", "pulse count",
                       * "disjoint windows" */
    long nodes;       /* search nodes visited */
} ks_laser_result;

/* Node budget of the exact search: about half a second here (docs/plan.md). */
#define KS_LASER_NODE_BUDGET 1000000L

/* True when two pulse trains whose starts differ by `delta` ticks keep the guard (every pulse pair,
 * cyclically). */
bool ks_laser_allowed(const ks_laser_space *s, int64_t delta_ticks);

/* Finds `want` tick positions (residues in [0, period ticks)) whose pulse trains keep the guard
 * pairwise, writing them to pos[0..want-1] (pos[0] == 0), or proves that no such set exists:
 * evenly spaced trains first (cheap), then an exact maximum-clique search over every tick residue
 * (see docs/plan.md) that visits at most `budget` nodes (<= 0: no limit). */
ks_laser_result ks_laser_place(const ks_laser_space *s, int want, long budget, int *pos);

#endif
