/* Exact laser placement (plan_place.h): is there a set of `want` pulse-train starts, in whole delay
 * ticks modulo the frame period, that keep the guard pairwise?
 *
 * Two trains keep the guard exactly when the difference of their starts (ticks, modulo the period)
 * lies in an allowed set A (ks_laser_allowed). The question is then whether the graph on the tick
 * residues Z_N, with an edge between x and y when x - y is in A, has a clique of `want` vertices.
 * Every vertex looks alike (x -> x + 1 is an automorphism), which the search uses twice:
 *
 *   - c[i], the largest clique among the vertices i..N-1, equals the largest clique in any run of
 *     N - i consecutive residues; the vertices are processed from N-1 down to 0 and each c[i] is
 *     found by a depth-first search (Ostergard's "Russian dolls", the algorithm of Cliquer) that
 *     picks vertices in increasing order and abandons a branch when
 *         size + c[next candidate] < target   or   size + candidates < target;
 *     both bounds are exact upper bounds, so no clique is ever missed;
 *   - c[0] is the largest clique in Z_N, and a clique found at vertex i is moved to start at 0.
 *
 * Since c[i] <= c[i+1] + 1, each search only asks for one more vertex than the last; the search
 * stops as soon as `want` vertices are found. When c[0] < want, no placement exists: every tick
 * residue was a candidate and only the bounds above cut the search. */
#include "plan/plan_place.h"

#include <stdlib.h>
#include <string.h>

static int64_t mod64(int64_t a, int64_t m)
{
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

bool ks_laser_allowed(const ks_laser_space *s, int64_t delta_ticks)
{
    for (int d = -(s->pulses - 1); d <= s->pulses - 1; d++) {
        int64_t x = mod64(100 * delta_ticks + d * s->pitch_u, s->period_u);
        int64_t cyc = x < s->period_u - x ? x : s->period_u - x;
        if (cyc < s->guard_u)
            return false;
    }
    return true;
}

typedef struct clq {
    int n, words, target;
    const uint64_t *a;  /* allowed differences, bit z = ks_laser_allowed(z) */
    const int *c;       /* c[i] for i > current vertex */
    uint64_t *scratch;  /* (target + 1) * words */
    int cur[64];
    long nodes, budget;
    bool stopped;       /* the budget ran out */
} clq;

/* 64 bits of the allowed set starting at bit `start` (bits outside 0..n-1 are 0) */
static uint64_t window64(const clq *q, int start)
{
    if (start <= -64 || start >= q->n)
        return 0;
    if (start < 0)
        return q->a[0] << (-start);
    int w = start >> 6, b = start & 63;
    uint64_t lo = q->a[w] >> b;
    if (b && w + 1 < q->words)
        lo |= q->a[w + 1] << (64 - b);
    return lo;
}

static int popcount_set(const uint64_t *set, int words)
{
    int k = 0;
    for (int w = 0; w < words; w++)
        k += __builtin_popcountll(set[w]);
    return k;
}

/* Bits of word w that name vertices (the last word's bits at n and above name none). */
static uint64_t live_bits(const clq *q, int w)
{
    int rest = q->n - w * 64;
    return rest >= 64 ? ~0ull : rest <= 0 ? 0 : (1ull << rest) - 1;
}

/* cliques extending cur[0..size-1] by vertices of `cand` (all greater than cur[size-1]) */
static bool expand(clq *q, uint64_t *cand, int size)
{
    for (;;) {
        int first = -1;
        for (int w = 0; w < q->words; w++)
            if (cand[w]) {
                first = w * 64 + __builtin_ctzll(cand[w]);
                break;
            }
        if (first < 0)
            return false;
        if (q->budget > 0 && ++q->nodes > q->budget) {
            q->stopped = true;
            return false;
        }
        if (q->budget <= 0)
            q->nodes++;
        if (size + q->c[first] < q->target)
            return false; /* every candidate is >= first: at most c[first] more */
        if (size + popcount_set(cand, q->words) < q->target)
            return false;
        q->cur[size] = first;
        if (size + 1 == q->target)
            return true;
        uint64_t *next = q->scratch + (size_t)(size + 1) * q->words;
        int fw = first >> 6;
        for (int w = 0; w < q->words; w++) {
            if (w < fw) {
                next[w] = 0;
                continue;
            }
            uint64_t m = cand[w] & window64(q, w * 64 - first) & live_bits(q, w);
            if (w == fw)
                m &= (first & 63) == 63 ? 0 : ~0ull << ((first & 63) + 1);
            next[w] = m;
        }
        if (expand(q, next, size + 1))
            return true;
        if (q->stopped)
            return false;
        cand[first >> 6] &= ~(1ull << (first & 63));
    }
}

/* Evenly spaced trains: positions k * step for k = 0..want-1 keep the guard when every multiple
 * m * step (m = 1..want-1) is an allowed difference. Tries every step; returns the largest run. */
static int arithmetic(const ks_laser_space *s, int n, int want, int *pos)
{
    int best = 1, best_step = 0;
    for (int step = 1; step < n; step++) {
        int m = 1;
        while (m < want && ks_laser_allowed(s, (int64_t)m * step % n))
            m++;
        if (m > best) {
            best = m;
            best_step = step;
            if (m >= want)
                break;
        }
    }
    for (int k = 0; k < best && k < want; k++)
        pos[k] = (int)((int64_t)k * best_step % n);
    return best;
}

/* Upper bounds that need no search. Pulse count: the pulses*k pulse starts of k trains lie on the
 * circle of one frame period, and two that follow each other are at least min(guard, pitch, period -
 * (pulses-1) * pitch) apart (different trains: the guard; one train: its pitch, or the gap from its
 * last pulse to its first of the next frame). Disjoint windows: when pitch < 2 * guard no pulse of
 * one train fits between two pulses of another, so the trains' windows ((pulses-1) * pitch long)
 * follow each other at least a guard apart, starts in whole ticks. */
static int upper_bound(const ks_laser_space *s, int n, const char **why)
{
    int64_t span = (s->pulses - 1) * s->pitch_u;
    int64_t gap = s->guard_u;
    if (s->pulses > 1 && s->pitch_u < gap)
        gap = s->pitch_u;
    if (s->period_u - span < gap)
        gap = s->period_u - span;
    int64_t ub = gap > 0 ? s->period_u / (s->pulses * gap) : n;
    *why = "pulse count";
    if (s->pulses > 1 && s->pitch_u < 2 * s->guard_u) {
        int64_t step = (span + s->guard_u + 99) / 100; /* ticks from one start to the next, at least */
        int64_t w = step > 0 ? n / step : n;
        if (w < ub) {
            ub = w;
            *why = "disjoint windows";
        }
    }
    if (ub < 1)
        ub = 1;
    return ub > 1000000 ? 1000000 : (int)ub;
}

ks_laser_result ks_laser_place(const ks_laser_space *s, int want, long budget, int *pos)
{
    ks_laser_result r = {KS_LASER_FOUND, 0, 0, "", 0};
    int n = (int)(s->period_u / 100);
    if (want > 63)
        want = 63;
    if (want <= 0 || n <= 0) {
        r.max_fit = r.upper = n > 0;
        return r;
    }
    pos[0] = 0;
    r.max_fit = 1;
    r.upper = upper_bound(s, n, &r.proof);
    if (want == 1)
        return r;
    int lower = arithmetic(s, n, want, pos);
    if (lower >= want) {
        r.max_fit = want;
        return r;
    }
    if (r.upper < want) {
        r.status = KS_LASER_NONE;
        r.max_fit = lower;
        return r;
    }
    int words = (n + 63) / 64;
    uint64_t *a = calloc((size_t)words, sizeof *a);
    uint64_t *scratch = calloc((size_t)(want + 1) * (size_t)words, sizeof *scratch);
    int *c = calloc((size_t)n + 1, sizeof *c);
    clq *q = malloc(sizeof *q);
    if (!a || !scratch || !c || !q) {
        free(a);
        free(scratch);
        free(c);
        free(q);
        r.status = KS_LASER_UNDECIDED;
        r.max_fit = lower;
        return r;
    }
    r.proof = "exhaustive search";
    for (int z = 1; z < n; z++)
        if (ks_laser_allowed(s, z))
            a[z >> 6] |= 1ull << (z & 63);
    memset(q, 0, sizeof *q);
    q->n = n;
    q->words = words;
    q->a = a;
    q->c = c;
    q->scratch = scratch;
    q->budget = budget;
    c[n] = 0;
    int best = 0;
    for (int i = n - 1; i >= 0 && !q->stopped; i--) {
        c[i] = best;
        q->target = best + 1;
        q->cur[0] = i;
        bool found;
        if (q->target == 1) {
            found = true;
        } else {
            uint64_t *cand = scratch;
            int iw = i >> 6;
            for (int w = 0; w < words; w++) {
                uint64_t m = w < iw ? 0 : window64(q, w * 64 - i) & live_bits(q, w);
                if (w == iw)
                    m &= (i & 63) == 63 ? 0 : ~0ull << ((i & 63) + 1);
                cand[w] = m;
            }
            found = expand(q, cand, 1);
        }
        if (found) {
            best++;
            c[i] = best;
            if (best >= want) {
                for (int k = 0; k < want; k++)
                    pos[k] = q->cur[k] - i;
                break;
            }
        }
    }
    r.nodes = q->nodes;
    if (best >= want) {
        r.status = KS_LASER_FOUND;
        r.max_fit = want;
    } else if (q->stopped) {
        r.status = KS_LASER_UNDECIDED;
        r.max_fit = best > lower ? best : lower;
        /* keep the evenly spaced run in pos[] (best effort, not used for a plan) */
    } else {
        r.status = KS_LASER_NONE;
        r.max_fit = r.upper = best;
    }
    free(a);
    free(scratch);
    free(c);
    free(q);
    return r;
}
