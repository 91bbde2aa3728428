/* Sync quality from frame sets (kinsync/syncstats.h). Series are kept in fixed-size buffers that
 * halve themselves (keep every other point, double the stride) when full, so a run of any length
 * costs the same memory. */
#include "kinsync/syncstats.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/plan.h"
#include "session/syncstats_internal.h"

#define SERIES_CAP 4096

typedef struct series {
    double x[SERIES_CAP], y[SERIES_CAP];
    int n;
    uint64_t stride, seen;
} series;

/* Two devices light each other's view (known on the simulator): enough pixels either way. */
enum { LIGHT_SHARED_MIN_PIXELS = 100 };
static bool lights_shared(const ks_sync_setup *su, int a, int b)
{
    return su->light_known && (su->shared_light[a][b] >= LIGHT_SHARED_MIN_PIXELS ||
                               su->shared_light[b][a] >= LIGHT_SHARED_MIN_PIXELS);
}

static void series_add(series *s, double x, double y)
{
    if (s->stride == 0)
        s->stride = 1;
    if (s->seen++ % s->stride)
        return;
    if (s->n == SERIES_CAP) {
        for (int i = 0; i < SERIES_CAP / 2; i++) {
            s->x[i] = s->x[2 * i];
            s->y[i] = s->y[2 * i];
        }
        s->n = SERIES_CAP / 2;
        s->stride *= 2;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

typedef struct dev_acc {
    series skew;      /* x: reference key (us), y: skew */
    series host;      /* x: device colour start (us), y: host ns */
    series hostdiff;  /* x: key, y: host_d - host_ref (us) */
    series depth;     /* x: key, y: depth centre - colour centre */
    series laser;     /* x: key, y: depth centre - reference key */
    series keys;      /* x: key, y: key (for the period) */
    uint64_t frames, missing;
    double skew_sum;
    uint64_t skew_n;
    double skew_max;
    uint64_t last_exposure;
    int exposure_changes;
    uint64_t exp_min, exp_max;
    double inv_sum, inv_max;
    uint64_t inv_n;
} dev_acc;

struct ks_syncstats {
    ks_sync_setup setup;
    dev_acc *acc;
    ks_sync_device dev[KS_MATCH_MAX_DEVICES];
    ks_matcher_stats mstats;
    bool have_mstats;
    uint64_t sets;
    ks_sync_check checks[KS_SYNC_MAX_CHECKS];
    int check_count;
    ks_sync_check extra[KS_SYNC_MAX_CHECKS];
    int extra_count;
};

const char *ks_check_status_name(ks_check_status s)
{
    switch (s) {
    case KS_CHECK_PASS: return "PASS";
    case KS_CHECK_WARN: return "WARN";
    case KS_CHECK_FAIL: return "FAIL";
    default: return "SKIP";
    }
}

ks_status ks_syncstats_create(const ks_sync_setup *setup, ks_syncstats **out, ks_error *err)
{
    if (!setup || !out || setup->device_count < 1 || setup->device_count > KS_MATCH_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "syncstats: need 1..%d devices", KS_MATCH_MAX_DEVICES);
    ks_syncstats *s = calloc(1, sizeof *s);
    if (!s)
        return ks_error_set(err, KS_ENOMEM, "syncstats: out of memory");
    s->acc = calloc((size_t)setup->device_count, sizeof *s->acc);
    if (!s->acc) {
        free(s);
        return ks_error_set(err, KS_ENOMEM, "syncstats: out of memory");
    }
    s->setup = *setup;
    for (int d = 0; d < setup->device_count; d++) {
        s->acc[d].exp_min = UINT64_MAX;
        if (!s->setup.names[d][0])
            snprintf(s->setup.names[d], sizeof s->setup.names[d], "device %d", d);
    }
    *out = s;
    return KS_OK;
}

void ks_syncstats_free(ks_syncstats *s)
{
    if (!s)
        return;
    free(s->acc);
    free(s);
}

double ks_frame_set_skew_us(const ks_frame_set *set, int d, int ref)
{
    if (!(set->present_mask & (1u << d)) || !(set->present_mask & (1u << ref)))
        return NAN;
    const ks_match_frame *a = &set->frames[d], *b = &set->frames[ref];
    if (!a->has_color || !b->has_color)
        return NAN;
    return a->key_us - b->key_us;
}

void ks_syncstats_add(ks_syncstats *s, const ks_frame_set *set)
{
    const int ref = s->setup.match.reference;
    s->sets++;
    const ks_match_frame *rf = (set->present_mask & (1u << ref)) ? &set->frames[ref] : NULL;
    for (int d = 0; d < s->setup.device_count; d++) {
        if (!(set->present_mask & (1u << d))) {
            s->acc[d].missing++;
            continue;
        }
        const ks_match_frame *f = &set->frames[d];
        dev_acc *a = &s->acc[d];
        a->frames++;
        series_add(&a->keys, f->key_us, f->key_us);
        double skew = ks_frame_set_skew_us(set, d, ref);
        if (!isnan(skew) && d != ref) {
            series_add(&a->skew, set->key_us, skew);
            a->skew_sum += skew;
            a->skew_n++;
            if (fabs(skew) > a->skew_max)
                a->skew_max = fabs(skew);
        }
        if (f->has_color && f->host_ns)
            series_add(&a->host, f->color_start_us, (double)f->host_ns);
        if (rf && d != ref && f->host_ns && rf->host_ns && s->setup.host[d] == s->setup.host[ref])
            series_add(&a->hostdiff, set->key_us, ((double)f->host_ns - (double)rf->host_ns) / 1000.0);
        if (f->has_color && f->has_depth) {
            double cc = f->color_start_us + (double)f->color_exposure_us / 2.0;
            series_add(&a->depth, set->key_us, f->depth_center_us - cc);
        }
        if (f->has_depth && rf)
            series_add(&a->laser, set->key_us, f->depth_center_us - rf->key_us);
        if (f->has_color) {
            if (a->frames > 1 && a->last_exposure && f->color_exposure_us != a->last_exposure)
                a->exposure_changes++;
            a->last_exposure = f->color_exposure_us;
            if (f->color_exposure_us < a->exp_min)
                a->exp_min = f->color_exposure_us;
            if (f->color_exposure_us > a->exp_max)
                a->exp_max = f->color_exposure_us;
        }
        if (f->invalid_fraction >= 0) {
            a->inv_sum += f->invalid_fraction;
            a->inv_n++;
            if (f->invalid_fraction > a->inv_max)
                a->inv_max = f->invalid_fraction;
        }
    }
}

void ks_syncstats_set_matcher_stats(ks_syncstats *s, const ks_matcher_stats *ms)
{
    s->mstats = *ms;
    s->have_mstats = true;
}

ks_sync_setup *ks_syncstats_setup(ks_syncstats *s)
{
    return &s->setup;
}

void ks_syncstats_add_check(ks_syncstats *s, const ks_sync_check *c)
{
    if (s->extra_count < KS_SYNC_MAX_CHECKS)
        s->extra[s->extra_count++] = *c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool ks_theil_sen(const double *x, const double *y, size_t n, double *a, double *b)
{
    if (n < 2)
        return false;
    enum { K = 128 };
    double px[K], py[K];
    size_t m = n < K ? n : K;
    for (size_t i = 0; i < m; i++) {
        size_t j = m == n ? i : (size_t)((double)i * (double)(n - 1) / (double)(m - 1));
        px[i] = x[j];
        py[i] = y[j];
    }
    double *slopes = malloc(sizeof(double) * m * (m - 1) / 2);
    if (!slopes)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            if (px[j] != px[i])
                slopes[k++] = (py[j] - py[i]) / (px[j] - px[i]);
    if (!k) {
        free(slopes);
        return false;
    }
    double bb = median(slopes, k);
    free(slopes);
    double r[K];
    for (size_t i = 0; i < m; i++)
        r[i] = py[i] - bb * px[i];
    *a = median(r, m);
    *b = bb;
    return true;
}

void ks_host_fit_compute(const double *device_us, const double *host_ns, size_t n, ks_host_fit *out)
{
    memset(out, 0, sizeof *out);
    out->samples = n;
    if (n < 2 || !ks_theil_sen(device_us, host_ns, n, &out->offset_ns, &out->rate))
        return;
    double *res = malloc(n * sizeof *res);
    if (!res)
        return;
    for (size_t i = 0; i < n; i++)
        res[i] = fabs(host_ns[i] - (out->offset_ns + out->rate * device_us[i])) / 1000.0;
    out->mad_us = median(res, n);
    free(res);
    out->ok = true;
}

static void add_check(ks_syncstats *s, const char *id, ks_check_status st, int dev, int other, double value,
                      const char *unit, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void add_check(ks_syncstats *s, const char *id, ks_check_status st, int dev, int other, double value,
                      const char *unit, const char *fmt, ...)
{
    if (s->check_count >= KS_SYNC_MAX_CHECKS)
        return;
    ks_sync_check *c = &s->checks[s->check_count++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->status = st;
    c->device = dev;
    c->other = other;
    c->value = value;
    snprintf(c->unit, sizeof c->unit, "%s", unit);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
}

static double mean_range(const series *sr, int from, int to)
{
    double sum = 0;
    int n = 0;
    if (from < 0)
        from = 0;
    for (int i = from; i < to && i < sr->n; i++, n++)
        sum += sr->y[i];
    return n ? sum / n : NAN;
}

void ks_syncstats_finish(ks_syncstats *s)
{
    const ks_sync_setup *su = &s->setup;
    const int n = su->device_count, ref = su->match.reference;
    const double P = su->match.period_us;
    const double target = ks_color_alignment_target_us();
    double *tmp = malloc(sizeof(double) * SERIES_CAP);
    if (!tmp)
        return;
    s->check_count = 0;
    for (int i = 0; i < s->extra_count; i++)
        s->checks[s->check_count++] = s->extra[i];

    for (int d = 0; d < n; d++) {
        dev_acc *a = &s->acc[d];
        ks_sync_device *o = &s->dev[d];
        memset(o, 0, sizeof *o);
        o->frames = a->frames;
        o->missing = a->missing;
        if (s->have_mstats)
            o->gaps = s->mstats.gaps[d];
        o->skew_n = a->skew_n;
        o->skew_mean_us = a->skew_n ? a->skew_sum / (double)a->skew_n : 0;
        o->skew_max_abs_us = a->skew_max;
        for (int i = 0; i < a->skew.n; i++)
            tmp[i] = fabs(a->skew.y[i]);
        qsort(tmp, (size_t)a->skew.n, sizeof *tmp, cmp_double);
        o->skew_p99_abs_us = a->skew.n ? tmp[(int)floor(0.99 * (a->skew.n - 1))] : 0;
        int tenth = a->skew.n / 10 > 0 ? a->skew.n / 10 : 1;
        o->skew_first_us = mean_range(&a->skew, 0, tenth);
        o->skew_last_us = mean_range(&a->skew, a->skew.n - tenth, a->skew.n);
        double ia, ib;
        o->drift_vs_ref_ppm = a->skew.n >= 2 && ks_theil_sen(a->skew.x, a->skew.y, (size_t)a->skew.n, &ia, &ib)
                                  ? ib * 1e6
                                  : 0;
        ks_host_fit hf;
        ks_host_fit_compute(a->host.x, a->host.y, (size_t)a->host.n, &hf);
        o->host_fit_ok = hf.ok;
        if (hf.ok) {
            o->host_offset_ns = hf.offset_ns;
            o->host_rate = hf.rate;
            o->host_fit_mad_us = hf.mad_us;
        }
        for (int i = 0; i < a->hostdiff.n; i++)
            tmp[i] = a->hostdiff.y[i];
        double hd = median(tmp, (size_t)a->hostdiff.n);
        o->frame_offset = isnan(hd) ? 0 : (int)lround(hd / P);
        o->depth_n = (uint64_t)a->depth.n;
        double dsum = 0, derr = 0;
        for (int i = 0; i < a->depth.n; i++) {
            dsum += a->depth.y[i];
            double e = fabs(a->depth.y[i] - su->match.devices[d].depth_delay_us);
            if (e > derr)
                derr = e;
        }
        o->depth_offset_mean_us = a->depth.n ? dsum / a->depth.n : 0;
        o->depth_offset_err_max_us = derr;
        o->exposure_changes = a->exposure_changes;
        o->exposure_min_us = a->exp_min == UINT64_MAX ? 0 : a->exp_min;
        o->exposure_max_us = a->exp_max;
        o->invalid_fraction_mean = a->inv_n ? a->inv_sum / (double)a->inv_n : -1;
        o->invalid_fraction_max = a->inv_n ? a->inv_max : -1;
        /* frame period on the device clock: keys against their frame numbers */
        if (a->keys.n >= 2) {
            for (int i = 0; i < a->keys.n; i++)
                tmp[i] = round((a->keys.x[i] - a->keys.x[0]) / P);
            double pa, pb;
            if (ks_theil_sen(tmp, a->keys.y, (size_t)a->keys.n, &pa, &pb))
                o->period_ppm = (pb / P - 1) * 1e6;
        }
        /* laser window start relative to the reference's colour start (window centred on depth centre) */
        for (int i = 0; i < a->laser.n; i++)
            tmp[i] = a->laser.y[i];
        double lc = median(tmp, (size_t)a->laser.n);
        o->laser_start_us = isnan(lc) ? NAN : lc - ks_depth_laser_window_us(su->depth_mode) / 2.0;
    }
    free(tmp);

    /* signal */
    for (int d = 0; d < n; d++)
        if (s->dev[d].frames == 0)
            add_check(s, "signal", KS_CHECK_FAIL, d, -1, 0, "frames",
                      "%s delivered no frames; check its sync cable and jack, that the master streams colour, and "
                      "the trigger", su->names[d]);
    /* start order */
    bool order_ok = true;
    int other_host = 0;
    for (int d = 0; d < n; d++) {
        if (d != ref && su->host[d] != su->host[ref])
            other_host++;
        if (d == ref || !s->dev[d].frames || !s->acc[d].hostdiff.n)
            continue;
        int k = s->dev[d].frame_offset;
        if (k != 0) {
            order_ok = false;
            add_check(s, "start-order", KS_CHECK_FAIL, d, ref, k, "frames",
                      "%s's timestamps are %d frame%s (%.0f us) off the master %s's for the same instant: the master "
                      "was started before this subordinate, so its clock was zeroed by a later sync pulse; stop "
                      "all, start every subordinate first and the master last",
                      su->names[d], abs(k), abs(k) == 1 ? "" : "s", k * P, su->names[ref]);
        }
    }
    if (order_ok && n > 1)
        add_check(s, "start-order", KS_CHECK_PASS, -1, -1, 0, "frames",
                  "every device's timestamps agree with the master's host arrival times (no frame offset)%s",
                  other_host ? "; devices on other hosts than the master's are not compared (separate clocks)" : "");
    /* colour alignment */
    double worst = 0;
    int worst_d = -1;
    for (int d = 0; d < n; d++)
        if (d != ref && s->dev[d].skew_n && s->dev[d].skew_p99_abs_us >= worst) {
            worst = s->dev[d].skew_p99_abs_us;
            worst_d = d;
        }
    if (worst_d >= 0) {
        if (worst <= target)
            add_check(s, "color-alignment", KS_CHECK_PASS, worst_d, ref, worst, "us",
                      "colour of every device within %.1f us of the master (99th percentile, worst %s; target %d us)",
                      worst, su->names[worst_d], (int)target);
        else
            add_check(s, "color-alignment", KS_CHECK_FAIL, worst_d, ref, worst, "us",
                      "%s's colour is %.1f us off the master %s's (99th percentile; target %d us, max %.1f us, first "
                      "%.1f us, last %.1f us); use the same manual exposure everywhere and start subordinates first",
                      su->names[worst_d], worst, su->names[ref], (int)target, s->dev[worst_d].skew_max_abs_us,
                      s->dev[worst_d].skew_first_us, s->dev[worst_d].skew_last_us);
    }
    /* depth offsets */
    double dworst = 0;
    int dworst_d = -1;
    for (int d = 0; d < n; d++)
        if (s->dev[d].depth_n && s->dev[d].depth_offset_err_max_us >= dworst) {
            dworst = s->dev[d].depth_offset_err_max_us;
            dworst_d = d;
        }
    if (dworst_d >= 0)
        add_check(s, "depth-offsets", dworst <= target / 2 ? KS_CHECK_PASS : KS_CHECK_FAIL, dworst_d, -1, dworst, "us",
                  "depth of %s is %.1f us from its planned depth delay %.1f us at worst (measured mean %.1f us)%s",
                  su->names[dworst_d], dworst, su->match.devices[dworst_d].depth_delay_us,
                  s->dev[dworst_d].depth_offset_mean_us,
                  dworst <= target / 2 ? "" : "; check the depth delay each device was started with");
    /* drops */
    uint64_t drops = 0;
    int drop_d = -1;
    for (int d = 0; d < n; d++) {
        uint64_t g = s->dev[d].gaps + s->dev[d].missing;
        if (g > drops) {
            drops = g;
            drop_d = d;
        }
    }
    if (drop_d < 0)
        add_check(s, "dropped-frames", KS_CHECK_PASS, -1, -1, 0, "frames", "no frame missing in %llu sets",
                  (unsigned long long)s->sets);
    else
        for (int d = 0; d < n; d++) {
            uint64_t g = s->dev[d].gaps + s->dev[d].missing;
            if (!g)
                continue;
            double pct = s->sets ? 100.0 * (double)s->dev[d].missing / (double)s->sets : 0;
            add_check(s, "dropped-frames", pct > 2.0 ? KS_CHECK_FAIL : KS_CHECK_WARN, d, -1, (double)s->dev[d].missing,
                      "frames",
                      "%s: missing from %llu of %llu sets (%.1f %%), %llu gaps in its own sequence; check USB "
                      "bandwidth, usbfs memory and the host load",
                      su->names[d], (unsigned long long)s->dev[d].missing, (unsigned long long)s->sets, pct,
                      (unsigned long long)s->dev[d].gaps);
        }
    /* drift between devices */
    double drift = 0;
    int drift_d = -1;
    for (int d = 0; d < n; d++)
        if (d != ref && s->acc[d].skew.n >= 10 && fabs(s->dev[d].drift_vs_ref_ppm) >= drift) {
            drift = fabs(s->dev[d].drift_vs_ref_ppm);
            drift_d = d;
        }
    if (drift_d >= 0)
        add_check(s, "clock-drift", drift <= 5 ? KS_CHECK_PASS : KS_CHECK_WARN, drift_d, ref, drift, "ppm",
                  "largest drift of a device clock against the master: %s %.2f ppm%s", su->names[drift_d],
                  s->dev[drift_d].drift_vs_ref_ppm,
                  drift <= 5 ? "" : "; a wired subordinate should follow the master: check its sync cable");
    /* exposure */
    for (int d = 0; d < n; d++) {
        const ks_sync_device *o = &s->dev[d];
        if (su->auto_exposure[d] || (o->exposure_changes > 5 && o->frames && o->exposure_changes * 10 > (int)o->frames))
            add_check(s, "auto-exposure", KS_CHECK_WARN, d, -1, (double)o->exposure_changes, "changes",
                      "%s runs auto exposure (%d exposure changes, %llu..%llu us): its start of frame moves with the "
                      "exposure and skew grows (first %.1f us, last %.1f us); set the same manual exposure on every "
                      "device",
                      su->names[d], o->exposure_changes, (unsigned long long)o->exposure_min_us,
                      (unsigned long long)o->exposure_max_us, o->skew_first_us, o->skew_last_us);
        else if (su->exposure_sets[d] > 0 || o->exposure_changes > 0)
            add_check(s, "exposure-set-once", KS_CHECK_FAIL, d, -1,
                      (double)(su->exposure_sets[d] > o->exposure_changes ? su->exposure_sets[d] : o->exposure_changes),
                      "sets",
                      "%s: the exposure was set %d time%s while streaming (%d value changes seen in frames); each "
                      "write disturbs the stream and costs frames: set exposure once before starting, never in the "
                      "capture loop",
                      su->names[d], su->exposure_sets[d], su->exposure_sets[d] == 1 ? "" : "s", o->exposure_changes);
    }
    if (!ks_syncstats_find(s, "auto-exposure", -2) && !ks_syncstats_find(s, "exposure-set-once", -2))
        add_check(s, "exposure", KS_CHECK_PASS, -1, -1, 0, "", "manual exposure on every device, set once");
    /* laser overlap from measured depth timing */
    int pulses = 0;
    const ks_depth_mode_info *mi = ks_depth_mode_get(su->depth_mode);
    if (mi)
        pulses = mi->laser_pulses;
    if (pulses > 0 && n > 1) {
        double pitch = ks_depth_pulse_pitch_us(su->depth_mode), width = mi->pulse_width_us;
        double best = INFINITY;
        int ba = -1, bb = -1;
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                if ((su->groups[a] != su->groups[b] && !lights_shared(su, a, b)) || isnan(s->dev[a].laser_start_us) ||
                    isnan(s->dev[b].laser_start_us) || !s->acc[a].laser.n || !s->acc[b].laser.n)
                    continue;
                for (int i = 0; i < pulses; i++)
                    for (int j = 0; j < pulses; j++) {
                        double dist = ks_plan_cyclic_distance(s->dev[a].laser_start_us + i * pitch,
                                                              s->dev[b].laser_start_us + j * pitch, P);
                        if (dist < best) {
                            best = dist;
                            ba = a;
                            bb = b;
                        }
                    }
            }
        if (ba >= 0) {
            char evidence[160] = "";
            if (s->dev[ba].invalid_fraction_mean >= 0)
                snprintf(evidence, sizeof evidence, "; invalid depth pixels %.1f %% (%s) and %.1f %% (%s)",
                         100 * s->dev[ba].invalid_fraction_mean, su->names[ba], 100 * s->dev[bb].invalid_fraction_mean,
                         su->names[bb]);
            if (best < width)
                add_check(s, "laser-overlap", KS_CHECK_FAIL, ba, bb, best, "us",
                          "the depth lasers of %s and %s fire %.1f us apart (pulse width %.0f us): they overlap and "
                          "corrupt each other's depth%s; use the depth and subordinate delays of `kinsync plan`",
                          su->names[ba], su->names[bb], best, width, evidence);
            else
                add_check(s, "laser-overlap", KS_CHECK_PASS, ba, bb, best, "us",
                          "closest laser pulses of two devices (%s, %s) are %.1f us apart (pulse width %.0f us)%s",
                          su->names[ba], su->names[bb], best, width, evidence);
        }
    }
    /* declared interference groups against the geometry (known on the simulator): two devices whose
     * lasers light what the other sees cannot be in separate groups */
    if (pulses > 0 && n > 1 && su->light_known) {
        int contradictions = 0, separate = 0;
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                if (su->groups[a] == su->groups[b])
                    continue;
                separate++;
                if (!lights_shared(su, a, b))
                    continue;
                contradictions++;
                add_check(s, "laser-groups", KS_CHECK_FAIL, a, b,
                          (double)(su->shared_light[a][b] > su->shared_light[b][a] ? su->shared_light[a][b]
                                                                                  : su->shared_light[b][a]),
                          "px",
                          "%s and %s share laser light (%d pixels of %s lit by %s's laser, %d the other way): they "
                          "cannot be in separate groups (%d and %d); put them in one group and plan again",
                          su->names[a], su->names[b], su->shared_light[a][b], su->names[a], su->names[b],
                          su->shared_light[b][a], su->groups[a], su->groups[b]);
            }
        if (separate > 0 && contradictions == 0)
            add_check(s, "laser-groups", KS_CHECK_PASS, -1, -1, 0, "px",
                      "devices in separate interference groups do not light each other's view");
    }
    /* external trigger */
    if (su->external_trigger && s->dev[ref].frames > 10) {
        double ppm = s->dev[ref].period_ppm, tol = ks_trigger_spec_get()->frequency_tolerance_ppm;
        add_check(s, "external-trigger", fabs(ppm) <= tol / 2 ? KS_CHECK_PASS : KS_CHECK_FAIL, ref, -1, ppm, "ppm",
                  "the external trigger's period on %s's clock is %+.1f ppm off nominal%s", su->names[ref], ppm,
                  fabs(ppm) <= tol / 2 ? "" : ": the trigger drifts; use a generator locked to exactly the camera fps");
    }
}

const ks_sync_device *ks_syncstats_device(const ks_syncstats *s, int d)
{
    return s && d >= 0 && d < s->setup.device_count ? &s->dev[d] : NULL;
}

int ks_syncstats_check_count(const ks_syncstats *s)
{
    return s ? s->check_count : 0;
}

const ks_sync_check *ks_syncstats_check(const ks_syncstats *s, int i)
{
    return s && i >= 0 && i < s->check_count ? &s->checks[i] : NULL;
}

const ks_sync_check *ks_syncstats_find(const ks_syncstats *s, const char *id, int device)
{
    for (int i = 0; s && i < s->check_count; i++)
        if (!strcmp(s->checks[i].id, id) && (device < -1 || s->checks[i].device == device))
            return &s->checks[i];
    return NULL;
}

bool ks_syncstats_passed(const ks_syncstats *s)
{
    for (int i = 0; i < s->check_count; i++)
        if (s->checks[i].status == KS_CHECK_FAIL)
            return false;
    return true;
}

uint64_t ks_syncstats_sets(const ks_syncstats *s)
{
    return s ? s->sets : 0;
}

uint64_t ks_syncstats_host_ns(const ks_syncstats *s, int d, double device_us)
{
    const ks_sync_device *o = ks_syncstats_device(s, d);
    if (!o || !o->host_fit_ok)
        return 0;
    double v = o->host_offset_ns + o->host_rate * device_us;
    return v > 0 ? (uint64_t)v : 0;
}

/* ---- for the report writer (syncstats_internal.h) ---- */

int ks_syncstats_series(const ks_syncstats *s, int d, int which, const double **x, const double **y)
{
    const dev_acc *a = &s->acc[d];
    const series *sr = which == 0 ? &a->skew : which == 1 ? &a->laser : &a->depth;
    *x = sr->x;
    *y = sr->y;
    return sr->n;
}

const ks_sync_setup *ks_syncstats_setup_get(const ks_syncstats *s)
{
    return &s->setup;
}
