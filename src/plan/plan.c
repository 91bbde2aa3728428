/* The rig planner (kinsync/plan.h): delays, start order, alternatives for infeasible rigs.
 *
 * Lasers are placed per interference group by a greedy search over delay ticks: every candidate
 * depth delay is a whole number of 90 kHz ticks, tried in order of increasing |delay| (positive
 * first), and the first one whose pulses keep the guard to every already placed device of the
 * group is taken. The search is bounded by the SDK's delay range -P..P. The proof is computed
 * afterwards by the independent ks_plan_check_lasers (plan_check.c). */
#include "kinsync/plan.h"

#include "plan/plan_place.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6

void ks_plan_options_init(ks_plan_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->aim = KS_AIM_SIMULTANEOUS;
}

/* Smallest requested usec (away from zero) whose effective delay is exactly `ticks` ticks. */
static int64_t usec_for_ticks(int64_t ticks)
{
    if (ticks >= 0)
        return ks_delay_usec_at_least(ks_delay_ticks_to_us(ticks));
    return -ks_delay_usec_at_least(ks_delay_ticks_to_us(-ticks));
}

static double cyclic(double x, double period)
{
    double r = fmod(x, period);
    if (r < 0)
        r += period;
    return r < period - r ? r : period - r;
}

/* Smallest separation of the pulse trains starting at a and b (planner's fast form: only the
 * 2*pulses-1 distinct index differences). */
static double train_separation(double a, double b, int pulses, double pitch, double period)
{
    double best = period;
    for (int d = -(pulses - 1); d <= pulses - 1; d++) {
        double x = cyclic(a - b + d * pitch, period);
        if (x < best)
            best = x;
    }
    return best;
}

typedef struct planner {
    const ks_rig *rig;
    ks_plan *plan;
    int order[KS_RIG_MAX_DEVICES];    /* placement order: master, then by chain depth, then index */
    int placed_pos_count;
    /* per-group result */
    int fail_group;                   /* first group where a device did not fit, -1 none */
    int fail_group_size;              /* laser devices in that group */
    int fail_group_fit;               /* how many of them were placed */
    int unsynced_group;               /* a group with an unsynchronized laser device and others, -1 none */
    int unsynced_device;
} planner;

static void chain_depths(const ks_rig *rig, ks_plan *plan)
{
    for (int i = 0; i < rig->device_count; i++)
        plan->devices[i].chain_depth = -1;
    if (rig->master < 0 || rig->master >= rig->device_count)
        return;
    plan->devices[rig->master].chain_depth = 0;
    /* breadth-first over the cables; at most device_count rounds */
    for (int round = 0; round < rig->device_count; round++) {
        bool changed = false;
        for (int c = 0; c < rig->cable_count; c++) {
            int from = rig->cables[c].from, to = rig->cables[c].to;
            if (from < 0 || to < 0 || from >= rig->device_count || to >= rig->device_count)
                continue;
            int df = plan->devices[from].chain_depth;
            if (df >= 0 && plan->devices[to].chain_depth < 0 && to != rig->master) {
                plan->devices[to].chain_depth = df + 1;
                changed = true;
            }
        }
        if (!changed)
            break;
    }
}

static int cmp_key(const ks_plan *plan, int a, int b)
{
    int da = plan->devices[a].chain_depth, db = plan->devices[b].chain_depth;
    if (da < 0)
        da = 1 << 20;
    if (db < 0)
        db = 1 << 20;
    if (da != db)
        return da < db ? -1 : 1;
    return a < b ? -1 : (a > b);
}

/* rank for the start order: subordinates deepest first, then unsynced devices, the master last */
static int start_rank(const ks_plan_device *d)
{
    if (d->sync_mode == KS_SYNC_MASTER)
        return 3 << 20;
    if (d->sync_mode == KS_SYNC_SUBORDINATE)
        return (1 << 20) - (d->chain_depth < 0 ? 0 : d->chain_depth);
    return 2 << 20;
}

static void sort_indices(int *idx, int n, int (*less)(const ks_plan *, int, int), const ks_plan *plan)
{
    for (int i = 1; i < n; i++) { /* insertion sort: n <= 32, stable */
        int v = idx[i], j = i - 1;
        while (j >= 0 && less(plan, idx[j], v) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

static int cmp_start(const ks_plan *plan, int a, int b)
{
    int ra = start_rank(&plan->devices[a]), rb = start_rank(&plan->devices[b]);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    return a < b ? -1 : (a > b);
}

/* Places device j's depth delay; returns false if no tick in -P..P keeps the guard. */
static bool place_laser(planner *pl, int j, const int *placed, int nplaced)
{
    ks_plan *plan = pl->plan;
    ks_plan_device *d = &plan->devices[j];
    const double guard = plan->guard_us;
    /* the smallest usec giving t ticks is within -P..P exactly when |t| <= ticks(P) (monotone) */
    const int64_t max_ticks = ks_delay_us_to_ticks(plan->period_limit_us);
    for (int64_t m = 0;; m++) {
        if (m > max_ticks)
            return false;
        for (int s = 0; s < (m ? 2 : 1); s++) {
            int64_t ticks = s ? -m : m;
            double pos = d->color_offset_us + ks_delay_ticks_to_us(ticks);
            bool ok = true;
            for (int p = 0; p < nplaced && ok; p++) {
                double other = plan->devices[placed[p]].laser_start_us;
                if (train_separation(pos, other, plan->pulses, plan->pitch_us, plan->period_us) < guard - EPS)
                    ok = false;
            }
            if (ok) {
                int64_t usec = usec_for_ticks(ticks);
                d->depth_delay_usec = (int32_t)usec;
                d->depth_delay_effective_us = ks_delay_effective_us(usec);
                d->laser_start_us = pos;
                return true;
            }
        }
    }
}

static int64_t wrap_ticks(int64_t t, int64_t n)
{
    int64_t r = t % n;
    if (r < 0)
        r += n;
    return r > n / 2 ? r - n : r; /* (-n/2, n/2] */
}

/* The exact search (plan_place.c) for the group's members: positions modulo the frame period, then
 * the rotation that keeps the largest |depth delay| smallest. Every residue is reachable by a
 * depth delay within -P..P (P = 33333 us is 2999 ticks of a 3000-tick period), so the colour offsets
 * do not restrict where a laser can go: the laser problem is the same in both aims. */
static bool place_exact(planner *pl, const int *mem, int m)
{
    ks_plan *plan = pl->plan;
    ks_laser_space sp = {9000000LL / ks_fps_hz(plan->fps), 9LL * plan->pitch_us, 9LL * plan->guard_us, plan->pulses};
    int64_t n = sp.period_u / 100;
    int pos[64];
    plan->exact_search_used = true;
    ks_laser_result r = ks_laser_place(&sp, m, KS_LASER_NODE_BUDGET, pos);
    plan->search_nodes += r.nodes;
    if (r.status != KS_LASER_FOUND) {
        if (pl->fail_group < 0) {
            plan->fail_fit = r.max_fit;
            plan->fail_proven = r.status == KS_LASER_NONE;
            plan->fail_upper = r.upper;
            snprintf(plan->fail_proof, sizeof plan->fail_proof, "%s", r.proof);
        }
        return false;
    }
    int64_t color[KS_RIG_MAX_DEVICES];
    for (int j = 0; j < m; j++)
        color[j] = ks_delay_us_to_ticks(plan->devices[mem[j]].subordinate_delay_usec);
    int64_t best_tau = 0, best_max = INT64_MAX, best_sum = INT64_MAX;
    for (int j = 0; j < m; j++)
        for (int k = 0; k < m; k++) {
            int64_t tau = color[j] - pos[k], mx = 0, sum = 0;
            for (int q = 0; q < m; q++) {
                int64_t t = wrap_ticks(pos[q] + tau - color[q], n);
                t = t < 0 ? -t : t;
                mx = t > mx ? t : mx;
                sum += t;
            }
            if (mx < best_max || (mx == best_max && sum < best_sum)) {
                best_max = mx;
                best_sum = sum;
                best_tau = tau;
            }
        }
    for (int q = 0; q < m; q++) {
        ks_plan_device *d = &plan->devices[mem[q]];
        int64_t t = wrap_ticks(pos[q] + best_tau - color[q], n);
        int64_t usec = usec_for_ticks(t);
        d->depth_delay_usec = (int32_t)usec;
        d->depth_delay_effective_us = ks_delay_effective_us(usec);
        d->laser_start_us = d->color_offset_us + d->depth_delay_effective_us;
    }
    return true;
}

static void place_group(planner *pl, int group)
{
    ks_plan *plan = pl->plan;
    int placed[KS_RIG_MAX_DEVICES], nplaced = 0, members = 0, mem[KS_RIG_MAX_DEVICES];
    for (int k = 0; k < plan->device_count; k++) {
        int j = pl->order[k];
        ks_plan_device *d = &plan->devices[j];
        if (d->group != group || !d->laser)
            continue;
        if (!d->synced && pl->unsynced_group >= 0)
            continue; /* no common clock: reported as unsynchronized, not placed */
        mem[members++] = j;
        if (place_laser(pl, j, placed, nplaced)) {
            placed[nplaced++] = j;
        } else {
            d->depth_delay_usec = 0;
            d->depth_delay_effective_us = 0;
            d->laser_start_us = d->color_offset_us;
        }
    }
    if (nplaced == members || place_exact(pl, mem, members))
        return;
    if (pl->fail_group < 0) {
        pl->fail_group = group;
        pl->fail_group_size = members;
        pl->fail_group_fit = plan->fail_fit;
    }
}

static void interleave(planner *pl)
{
    ks_plan *plan = pl->plan;
    int synced[KS_RIG_MAX_DEVICES], n = 0;
    for (int k = 0; k < plan->device_count; k++)
        if (plan->devices[pl->order[k]].synced)
            synced[n++] = pl->order[k];
    plan->effective_fps = n > 0 ? (double)n * ks_fps_hz(plan->fps) : ks_fps_hz(plan->fps);
    plan->spacing_error_us = 0;
    for (int s = 1; s < n; s++) {
        ks_plan_device *d = &plan->devices[synced[s]];
        if (d->sync_mode != KS_SYNC_SUBORDINATE)
            continue;
        double ideal = s * plan->period_us / n;
        int64_t ticks = llround(ideal * ks_delay_ticks_hz() / 1e6);
        int64_t usec = usec_for_ticks(ticks);
        while (usec > plan->period_limit_us && ticks > 0)
            usec = usec_for_ticks(--ticks);
        d->subordinate_delay_usec = (uint32_t)usec;
        d->subordinate_delay_effective_us = ks_delay_effective_us(usec);
        d->color_offset_us = d->subordinate_delay_effective_us;
        double e = fabs(d->color_offset_us - ideal);
        if (e > plan->spacing_error_us)
            plan->spacing_error_us = e;
    }
}

static void add_alt(ks_plan *plan, const char *kind, int value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_alt(ks_plan *plan, const char *kind, int value, const char *fmt, ...)
{
    if (plan->alternative_count >= KS_PLAN_MAX_ALTERNATIVES)
        return;
    ks_plan_alternative *a = &plan->alternatives[plan->alternative_count++];
    snprintf(a->kind, sizeof a->kind, "%s", kind);
    a->value = value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->text, sizeof a->text, fmt, ap);
    va_end(ap);
}

static bool fps_possible(const ks_rig *rig, ks_fps f)
{
    const ks_depth_mode_info *dm = ks_depth_mode_get(rig->camera.depth_mode);
    const ks_color_resolution_info *cm = ks_color_resolution_get(rig->camera.color_resolution);
    if (dm && !(dm->fps_mask & (1u << f)))
        return false;
    if (cm && !(cm->fps_mask & (1u << f)))
        return false;
    if (rig->exposure.manual &&
        ks_exposure_round_up(rig->exposure.powerline, rig->exposure.exposure_us) > ks_frame_period_us(f))
        return false;
    return true;
}

static ks_status plan_inner(const ks_rig *rig, const ks_plan_options *opt, ks_plan *plan, ks_error *err,
                            bool alternatives);

static void find_alternatives(const ks_rig *rig, const ks_plan_options *opt, ks_plan *plan, const planner *pl)
{
    ks_rig *copy = malloc(sizeof *copy);
    ks_plan *alt = malloc(sizeof *alt);
    if (!copy || !alt) {
        free(copy);
        free(alt);
        return;
    }
    if (pl->unsynced_group >= 0) {
        add_alt(plan, "split-groups", 0,
                "cable %s into the master's chain, or give it an interference group of its own if its view "
                "does not overlap the others",
                rig->devices[pl->unsynced_device].name);
    }
    if (pl->fail_group >= 0) {
        int fit = pl->fail_group_fit;
        if (plan->fail_proven && plan->fail_upper == fit)
            add_alt(plan, "fewer-devices", fit,
                    "keep at most %d overlapping depth cameras in group %d at %d fps (it has %d)", fit,
                    pl->fail_group, ks_fps_hz(plan->fps), pl->fail_group_size);
        else
            add_alt(plan, "fewer-devices", fit,
                    "%d overlapping depth cameras in group %d are known to fit at %d fps (it has %d)", fit,
                    pl->fail_group, ks_fps_hz(plan->fps), pl->fail_group_size);
        for (int f = (int)plan->fps - 1; f >= 0; f--) {
            if (!fps_possible(rig, (ks_fps)f))
                continue;
            *copy = *rig;
            copy->camera.fps = (ks_fps)f;
            if (plan_inner(copy, opt, alt, NULL, false) == KS_OK) {
                add_alt(plan, "lower-fps", ks_fps_hz((ks_fps)f),
                        "lower camera.fps to %d: all %d devices then fit%s", ks_fps_hz((ks_fps)f),
                        rig->device_count, rig->trigger.present ? " (set the trigger to the same frequency)" : "");
                break;
            }
        }
        /* no "interleaved" alternative: a depth delay reaches every tick of the frame period in both
         * aims, so the laser problem is the same whatever the colour offsets are */
        if (fit > 0) {
            int groups = (pl->fail_group_size + fit - 1) / fit;
            add_alt(plan, "split-groups", groups,
                    "if the views allow, declare %d interference groups of at most %d devices each "
                    "(devices whose views cannot overlap)",
                    groups, fit);
        }
    }
    free(copy);
    free(alt);
}

/* The delays a person chose (rig file), checked like a plan: the same configurations with the given
 * delays, the independent pulse check, color alignment and the SDK's start rules. */
static void audit_given(const ks_rig *rig, const ks_plan *plan, ks_plan_audit *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < rig->device_count; i++)
        a->present |= rig->devices[i].has_delays;
    if (!a->present)
        return;
    ks_plan *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        snprintf(a->verdict, sizeof a->verdict, "FAIL: out of memory auditing the delays");
        return;
    }
    *tmp = *plan;
    char problem[400] = "";
    for (int i = 0; i < rig->device_count; i++) {
        const ks_rig_device *rd = &rig->devices[i];
        ks_plan_audit_device *ad = &a->devices[i];
        ks_device_config *c = &tmp->devices[i].config;
        ad->given = rd->has_delays;
        ad->subordinate_delay_usec = rd->has_delays ? rd->subordinate_delay_usec : 0;
        ad->depth_delay_usec = rd->has_delays ? rd->depth_delay_usec : 0;
        if (!problem[0] && (ad->subordinate_delay_usec < 0 || ad->subordinate_delay_usec > plan->period_limit_us))
            snprintf(problem, sizeof problem, "device %s: subordinate delay %lld us is outside 0..%d us", rd->name,
                     ad->subordinate_delay_usec, plan->period_limit_us);
        c->subordinate_delay_off_master_usec =
            ad->subordinate_delay_usec < 0 ? 0 : (uint32_t)(ad->subordinate_delay_usec > INT32_MAX ? INT32_MAX
                                                                                     : ad->subordinate_delay_usec);
        c->depth_delay_off_color_usec = (int32_t)(ad->depth_delay_usec > INT32_MAX   ? INT32_MAX
                                                  : ad->depth_delay_usec < -INT32_MAX ? -INT32_MAX
                                                                                      : ad->depth_delay_usec);
        ad->subordinate_delay_effective_us =
            c->wired_sync_mode == KS_SYNC_SUBORDINATE ? ks_delay_effective_us(c->subordinate_delay_off_master_usec) : 0;
        ad->depth_delay_effective_us = ks_delay_effective_us(c->depth_delay_off_color_usec);
        ad->laser_start_us = ad->subordinate_delay_effective_us + ad->depth_delay_effective_us;
        ks_error e;
        ks_error_clear(&e);
        if (!problem[0] && ks_device_config_check(c, &e) != KS_OK)
            snprintf(problem, sizeof problem, "device %s: %s", rd->name, e.message);
    }
    ks_plan_check_lasers(rig, tmp, plan->guard_us, &a->proof);
    const ks_plan_proof *p = &a->proof;
    if (problem[0]) {
        snprintf(a->verdict, sizeof a->verdict, "FAIL: %s", problem);
    } else if (!p->lasers_ok) {
        snprintf(a->verdict, sizeof a->verdict,
                 "FAIL: after the firmware's 90 kHz tick truncation the lasers of %s and %s are %.1f us apart, "
                 "below the guard of %d us",
                 rig->devices[p->device_a].name, rig->devices[p->device_b].name, p->min_separation_us,
                 plan->guard_us);
    } else if (!p->color_ok) {
        snprintf(a->verdict, sizeof a->verdict,
                 "FAIL: the color captures spread %.1f us, more than the %d us of simultaneous capture",
                 p->color_spread_us, ks_color_alignment_target_us());
    } else {
        a->pass = true;
        if (p->device_a >= 0)
            snprintf(a->verdict, sizeof a->verdict,
                     "PASS: smallest laser separation %.1f us (between %s and %s) >= guard %d us; color within %.1f us",
                     p->min_separation_us, rig->devices[p->device_a].name, rig->devices[p->device_b].name,
                     plan->guard_us, p->color_spread_us);
        else
            snprintf(a->verdict, sizeof a->verdict, "PASS: no two laser devices share an interference group");
    }
    free(tmp);
}

static ks_status plan_inner(const ks_rig *rig, const ks_plan_options *opt, ks_plan *plan, ks_error *err,
                            bool alternatives)
{
    memset(plan, 0, sizeof *plan);
    planner pl = {.rig = rig, .plan = plan, .fail_group = -1, .unsynced_group = -1, .unsynced_device = -1};
    plan->aim = opt && opt->override_aim ? opt->aim : rig->aim;
    plan->fps = rig->camera.fps;
    plan->period_us = ks_frame_period_exact_us(plan->fps);
    plan->period_limit_us = ks_frame_period_us(plan->fps);
    plan->effective_fps = ks_fps_hz(plan->fps);
    ks_depth_mode dm = rig->camera.depth_mode;
    const ks_depth_mode_info *dinfo = ks_depth_mode_get(dm);
    plan->lasers = dinfo && dinfo->laser_pulses > 0;
    plan->guard_us = opt && opt->guard_us > 0 ? opt->guard_us : ks_rig_guard_us(rig);
    if (plan->lasers) {
        plan->pulses = dinfo->laser_pulses;
        plan->pulse_width_us = dinfo->pulse_width_us;
        plan->pitch_us = ks_depth_pulse_pitch_us(dm);
        plan->window_us = ks_depth_laser_window_us(dm);
        plan->guard_step_us = ks_delay_effective_us(ks_delay_usec_at_least(plan->guard_us));
        plan->slots_per_gap = (int)floor(plan->pitch_us / plan->guard_step_us + EPS);
    }
    plan->device_count = rig->device_count;
    if (rig->device_count <= 0 || rig->device_count > KS_RIG_MAX_DEVICES) {
        snprintf(plan->reason, sizeof plan->reason, "the rig has no devices; list them under devices:");
        return ks_error_set(err, KS_EINVAL, "%s", plan->reason);
    }

    chain_depths(rig, plan);
    /* the exposure is the color camera's: none without color */
    int exposure = rig->exposure.manual && rig->camera.color_resolution != KS_COLOR_OFF
                       ? ks_exposure_round_up(rig->exposure.powerline, rig->exposure.exposure_us)
                       : 0;
    for (int i = 0; i < rig->device_count; i++) {
        ks_plan_device *d = &plan->devices[i];
        d->index = i;
        ks_role r = rig->devices[i].derived_role;
        d->sync_mode = r == KS_ROLE_MASTER ? KS_SYNC_MASTER : r == KS_ROLE_SUBORDINATE ? KS_SYNC_SUBORDINATE
                                                                                      : KS_SYNC_STANDALONE;
        /* with an external trigger every device runs as subordinate, the head of the chain too: a
         * device in master mode makes its own pulses and ignores Sync In (docs/hardware-setup.md) */
        if (rig->trigger.present && i == rig->trigger.to && r == KS_ROLE_MASTER) {
            d->sync_mode = KS_SYNC_SUBORDINATE;
            d->trigger_head = true;
        }
        if (d->sync_mode == KS_SYNC_STANDALONE)
            d->chain_depth = -1;
        d->synced = d->chain_depth >= 0 && d->sync_mode != KS_SYNC_STANDALONE;
        d->group = rig->devices[i].group;
        d->laser = plan->lasers;
        d->exposure_us = exposure;
        pl.order[i] = i;
    }
    sort_indices(pl.order, rig->device_count, cmp_key, plan);

    if (plan->aim == KS_AIM_INTERLEAVED)
        interleave(&pl);

    /* unsynchronized devices cannot be staggered against anything in their group */
    if (plan->lasers) {
        for (int i = 0; i < rig->device_count && pl.unsynced_group < 0; i++) {
            if (plan->devices[i].synced)
                continue;
            for (int j = 0; j < rig->device_count; j++)
                if (j != i && plan->devices[j].group == plan->devices[i].group) {
                    pl.unsynced_group = plan->devices[i].group;
                    pl.unsynced_device = i;
                    break;
                }
        }
    }

    /* depth delays only when both cameras run (the SDK requires 0 otherwise) */
    bool both = rig->camera.color_resolution != KS_COLOR_OFF && rig->camera.depth_mode != KS_DEPTH_OFF;
    if (plan->lasers && both) {
        int groups[KS_RIG_MAX_DEVICES], ng = 0;
        for (int k = 0; k < rig->device_count; k++) {
            int g = plan->devices[pl.order[k]].group, seen = 0;
            for (int q = 0; q < ng; q++)
                seen |= groups[q] == g;
            if (!seen)
                groups[ng++] = g;
        }
        for (int q = 0; q < ng; q++)
            place_group(&pl, groups[q]);
    } else {
        for (int i = 0; i < rig->device_count; i++)
            plan->devices[i].laser_start_us = plan->devices[i].color_offset_us;
    }

    for (int i = 0; i < rig->device_count; i++) {
        ks_plan_device *d = &plan->devices[i];
        ks_device_config *c = &d->config;
        ks_device_config_init(c);
        c->color_format = rig->camera.color_format;
        c->color_resolution = rig->camera.color_resolution;
        c->depth_mode = rig->camera.depth_mode;
        c->camera_fps = rig->camera.fps;
        c->synchronized_images_only = rig->camera.synchronized_images_only;
        c->depth_delay_off_color_usec = d->depth_delay_usec;
        c->wired_sync_mode = d->sync_mode;
        c->subordinate_delay_off_master_usec = d->subordinate_delay_usec;
        pl.order[i] = i;
    }
    sort_indices(pl.order, rig->device_count, cmp_start, plan);
    for (int k = 0; k < rig->device_count; k++) {
        plan->start_order[k] = pl.order[k];
        plan->devices[pl.order[k]].start_position = k + 1;
    }

    ks_plan_check_lasers(rig, plan, plan->guard_us, &plan->proof);

    /* what the plan costs */
    plan->trigger = rig->trigger.present;
    int nsynced = 0;
    for (int i = 0; i < rig->device_count; i++) {
        double g = fabs(plan->devices[i].depth_delay_effective_us);
        if (g > plan->max_depth_color_us)
            plan->max_depth_color_us = g;
        nsynced += plan->devices[i].synced;
    }
    if (plan->aim == KS_AIM_INTERLEAVED && nsynced > 1) {
        plan->capture_spacing_us = plan->period_us / nsynced;
        plan->exposures_overlap = exposure > plan->capture_spacing_us;
    }

    /* reasons, first one wins */
    if (pl.unsynced_group >= 0) {
        snprintf(plan->reason, sizeof plan->reason,
                 "device %s is not synchronized (no sync cable from the master) and shares interference group "
                 "%d with other devices: its laser cannot be kept apart from theirs",
                 rig->devices[pl.unsynced_device].name, pl.unsynced_group);
    } else if (pl.fail_group >= 0 && plan->fail_proven) {
        char most[96];
        if (plan->fail_upper == pl.fail_group_fit)
            snprintf(most, sizeof most, "at most %d fit", pl.fail_group_fit);
        else
            snprintf(most, sizeof most, "at most %d fit (placements for %d were found)", plan->fail_upper,
                     pl.fail_group_fit);
        snprintf(plan->reason, sizeof plan->reason,
                 "group %d has %d overlapping depth cameras but %s at %d fps with a guard of %d us; proof by %s "
                 "over every placement of their lasers in whole 90 kHz delay ticks (%d pulses %d us apart, frame "
                 "period %.0f us, docs/plan.md)",
                 pl.fail_group, pl.fail_group_size, most, ks_fps_hz(plan->fps), plan->guard_us, plan->fail_proof,
                 plan->pulses, plan->pitch_us, plan->period_us);
    } else if (pl.fail_group >= 0) {
        snprintf(plan->reason, sizeof plan->reason,
                 "group %d has %d overlapping depth cameras; kinsync found placements for %d at %d fps with a "
                 "guard of %d us but neither a placement for all %d nor a proof that none exists: the exact "
                 "search stopped after %ld nodes",
                 pl.fail_group, pl.fail_group_size, pl.fail_group_fit, ks_fps_hz(plan->fps), plan->guard_us,
                 pl.fail_group_size, plan->search_nodes);
    } else if (!plan->proof.lasers_ok) {
        snprintf(plan->reason, sizeof plan->reason,
                 "the proof failed: lasers of %s and %s are %.1f us apart, below the guard of %d us",
                 rig->devices[plan->proof.device_a].name, rig->devices[plan->proof.device_b].name,
                 plan->proof.min_separation_us, plan->guard_us);
    } else if (!plan->proof.color_ok) {
        snprintf(plan->reason, sizeof plan->reason, "color captures spread %.1f us, more than %d us",
                 plan->proof.color_spread_us, ks_color_alignment_target_us());
    } else {
        for (int i = 0; i < rig->device_count; i++) {
            ks_error e;
            ks_error_clear(&e);
            if (ks_device_config_check(&plan->devices[i].config, &e) != KS_OK) {
                snprintf(plan->reason, sizeof plan->reason, "device %s: %s", rig->devices[i].name, e.message);
                break;
            }
        }
    }
    plan->feasible = plan->reason[0] == 0;
    if (alternatives)
        audit_given(rig, plan, &plan->audit);
    if (plan->feasible)
        return KS_OK;
    if (alternatives)
        find_alternatives(rig, opt, plan, &pl);
    return ks_error_set(err, KS_EINVAL, "%s", plan->reason);
}

ks_status ks_plan_make(const ks_rig *rig, const ks_plan_options *opt, ks_plan *plan, ks_error *err)
{
    if (!rig || !plan)
        return ks_error_set(err, KS_EINVAL, "ks_plan_make needs a rig and a plan to write");
    return plan_inner(rig, opt, plan, err, true);
}

int ks_plan_cost_notes(const ks_rig *rig, const ks_plan *plan, char (*notes)[320], int max)
{
    int k = 0;
    if (!rig || !plan || !notes || max <= 0)
        return 0;
    if (plan->max_depth_color_us > 1000.0 && k < max) {
        char names[160] = "";
        int count = 0;
        for (int i = 0; i < plan->device_count; i++)
            if (fabs(plan->devices[i].depth_delay_effective_us) > 1000.0) {
                size_t used = strlen(names);
                if (count < 4)
                    snprintf(names + used, sizeof names - used, "%s%s", count ? ", " : "", rig->devices[i].name);
                else if (count == 4)
                    snprintf(names + used, sizeof names - used, ", ...");
                count++;
            }
        snprintf(notes[k++], 320,
                 "depth delays up to %.1f ms: the depth and color images of %s are captured up to %.1f ms apart, "
                 "so a moving subject is seen at two instants (the lasers needed the room)",
                 plan->max_depth_color_us / 1000.0, names, plan->max_depth_color_us / 1000.0);
    }
    if (plan->exposures_overlap && k < max) {
        int exposure = plan->device_count ? plan->devices[0].exposure_us : 0;
        snprintf(notes[k++], 320,
                 "interleaved captures are %.1f us apart but each color exposure lasts %d us: the exposures of "
                 "successive devices overlap, so the effective %.0f fps are not %.0f distinct instants; use an "
                 "exposure of at most %d us for separate instants",
                 plan->capture_spacing_us, exposure, plan->effective_fps, plan->effective_fps,
                 (int)floor(plan->capture_spacing_us));
    }
    return k;
}
