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

/* Series that depend on the timestamp convention are kept under both readings (index 0 seed,
 * 1 mid-exposure) so that `timestamps: auto` can pick the one the devices follow at the end. */
enum { CONV_SEED = 0, CONV_MID = 1 };

typedef struct dev_acc {
    series skew;      /* x: reference key (us), y: skew */
    series host;      /* x: device colour start (us), y: host ns (minus any exposure change since the first) */
    series hostdiff;  /* x: key, y: host_d - host_ref (us) */
    series depthc[2]; /* x: key, y: depth centre - colour centre, per convention */
    series laserc[2]; /* x: key, y: depth centre - reference colour start, per convention */
    series keys;      /* x: key, y: key (for the period) */
    series tsres;     /* x: key, y: (depth ts - colour ts) - planned depth delay (raw timestamps) */
    double seed_pred_sum;
    uint64_t seed_pred_n;
    uint64_t first_exposure;
    double first_key, last_key;
    uint64_t run, longest_run;   /* consecutive sets without the device */
    double run_start, longest_at;
    double prev_key;             /* previous frame's key (own sequence gaps) */
    uint64_t longest_gap;        /* frames missing between two consecutive own frames */
    double gap_at;
    uint64_t prev_host;          /* host arrival of the previous frame */
    double gap_host_us;          /* host arrival difference across the longest gap (0 unknown) */
    bool gap_pending;            /* the frame after the longest gap's end is next */
    double gap_next_host_us;     /* host interval of the two frames after the gap (< P/2: a burst) */
    uint64_t corrupt, blank, black_depth, depth_frames, color_checked;
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
    ks_ts_convention ts_measured, ts_used;
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
    s->ts_measured = KS_TS_AUTO;
    s->ts_used = setup->match.convention == KS_TS_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE;
    for (int d = 0; d < setup->device_count; d++) {
        s->acc[d].exp_min = UINT64_MAX;
        s->acc[d].first_key = s->acc[d].last_key = s->acc[d].prev_key = NAN;
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

/* Colour start of a frame under convention c (device time base + ts_offset), NAN without colour. */
static double color_start_as(const ks_matcher_config *m, const ks_match_frame *f, ks_ts_convention c)
{
    const ks_match_device *md = &m->devices[f->device];
    if (!f->has_color)
        return NAN;
    return ks_ts_color_start_us(c, md->mode, (double)f->color_ts_us, (double)f->color_exposure_us) + md->ts_offset_us;
}

static double depth_center_as(const ks_matcher_config *m, const ks_match_frame *f, ks_ts_convention c)
{
    const ks_match_device *md = &m->devices[f->device];
    if (!f->has_depth)
        return NAN;
    return ks_ts_depth_center_us(c, md->mode, (double)f->depth_ts_us, (double)f->depth_exposure_us) + md->ts_offset_us;
}

void ks_syncstats_add(ks_syncstats *s, const ks_frame_set *set)
{
    const int ref = s->setup.match.reference;
    const ks_matcher_config *mc = &s->setup.match;
    const double P = mc->period_us;
    s->sets++;
    const ks_match_frame *rf = (set->present_mask & (1u << ref)) ? &set->frames[ref] : NULL;
    for (int d = 0; d < s->setup.device_count; d++) {
        dev_acc *a = &s->acc[d];
        if (!(set->present_mask & (1u << d))) {
            a->missing++;
            if (!a->run++)
                a->run_start = set->key_us;
            if (a->run > a->longest_run) {
                a->longest_run = a->run;
                a->longest_at = a->run_start;
            }
            continue;
        }
        a->run = 0;
        const ks_match_frame *f = &set->frames[d];
        a->frames++;
        if (isnan(a->first_key))
            a->first_key = f->key_us;
        bool new_gap = false;
        if (!isnan(a->prev_key) && f->key_us - a->prev_key > 1.5 * P) {
            uint64_t g = (uint64_t)llround((f->key_us - a->prev_key) / P) - 1;
            if (g > a->longest_gap) {
                a->longest_gap = g;
                a->gap_at = a->prev_key + P;
                a->gap_host_us = f->host_ns && a->prev_host ? ((double)f->host_ns - (double)a->prev_host) / 1000.0 : 0;
                new_gap = true;
            }
        }
        if (a->gap_pending && !new_gap)
            a->gap_next_host_us = f->host_ns && a->prev_host ? ((double)f->host_ns - (double)a->prev_host) / 1000.0 : 0;
        a->gap_pending = new_gap;
        if (new_gap)
            a->gap_next_host_us = 0;
        a->prev_host = f->host_ns;
        a->prev_key = a->last_key = f->key_us;
        series_add(&a->keys, f->key_us, f->key_us);
        double skew = ks_frame_set_skew_us(set, d, ref);
        if (!isnan(skew) && d != ref) {
            series_add(&a->skew, set->key_us, skew);
            a->skew_sum += skew;
            a->skew_n++;
            if (fabs(skew) > a->skew_max)
                a->skew_max = fabs(skew);
        }
        if (f->has_color && !a->first_exposure)
            a->first_exposure = f->color_exposure_us;
        /* the frame leaves the device a fixed time after its centre (the sync instant), not after its start:
         * remove the half of any exposure change (auto exposure) so the fit sees the clock, not the exposure */
        if (f->has_color && f->host_ns)
            series_add(&a->host, f->color_start_us,
                       (double)f->host_ns - ((double)f->color_exposure_us - (double)a->first_exposure) * 500.0);
        if (rf && d != ref && f->host_ns && rf->host_ns && s->setup.host[d] == s->setup.host[ref])
            series_add(&a->hostdiff, set->key_us, ((double)f->host_ns - (double)rf->host_ns) / 1000.0);
        for (int c = 0; c < 2; c++) {
            ks_ts_convention conv = c == CONV_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE;
            double dc = depth_center_as(mc, f, conv);
            if (f->has_color && f->has_depth)
                series_add(&a->depthc[c], set->key_us,
                           dc - (color_start_as(mc, f, conv) + (double)f->color_exposure_us / 2.0));
            if (f->has_depth && rf && rf->has_color)
                series_add(&a->laserc[c], set->key_us, dc - color_start_as(mc, rf, conv));
        }
        if (f->has_color && f->has_depth && mc->devices[d].mode != KS_SYNC_STANDALONE) {
            series_add(&a->tsres, set->key_us,
                       (double)f->depth_ts_us - (double)f->color_ts_us - mc->devices[d].depth_delay_us);
            a->seed_pred_sum += ks_ts_depth_minus_color_residual_us(KS_TS_SEED, mc->devices[d].mode,
                                                                    (double)f->color_exposure_us,
                                                                    (double)f->depth_exposure_us);
            a->seed_pred_n++;
        }
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
            a->depth_frames++;
            if (f->invalid_fraction >= 0.999)
                a->black_depth++;
        }
        if (f->content != KS_CONTENT_UNKNOWN) {
            a->color_checked++;
            if (f->content == KS_CONTENT_CORRUPT)
                a->corrupt++;
            else if (f->content == KS_CONTENT_BLANK)
                a->blank++;
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

ks_frame_content ks_color_image_content(const ks_image *img)
{
    if (!img || !img->data || !img->size)
        return KS_CONTENT_UNKNOWN;
    const uint8_t *p = img->data;
    size_t n = img->size;
    if (img->format == KS_FORMAT_MJPG) {
        if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
            return KS_CONTENT_CORRUPT;
        /* the end-of-image marker, allowing a little padding after it */
        for (size_t i = n - 1; i >= 1 && i + 64 >= n; i--)
            if (p[i - 1] == 0xFF && p[i] == 0xD9)
                return KS_CONTENT_OK;
        return KS_CONTENT_CORRUPT;
    }
    if (img->format == KS_FORMAT_BGRA32 || img->format == KS_FORMAT_NV12 || img->format == KS_FORMAT_YUY2) {
        size_t step = n / 64 ? n / 64 : 1;
        for (size_t i = step; i < n; i += step)
            if (p[i] != p[0] && !(img->format == KS_FORMAT_BGRA32 && i % 4 == 3))
                return KS_CONTENT_OK;
        return KS_CONTENT_BLANK;
    }
    return KS_CONTENT_UNKNOWN;
}

/* Median of y[from..to) of a series (copied into tmp). */
static double median_range(const series *sr, int from, int to, double *tmp)
{
    int k = 0;
    for (int i = from < 0 ? 0 : from; i < to && i < sr->n; i++)
        tmp[k++] = sr->y[i];
    return median(tmp, (size_t)k);
}

/* Largest step of a series that should be constant: windows of 5 points against the median of the
 * first tenth (at least 5 points). */
static double series_jump(const series *sr, double *tmp, double *at)
{
    *at = NAN;
    if (sr->n < 10)
        return 0;
    int base_n = sr->n / 10 > 5 ? sr->n / 10 : 5;
    double base = median_range(sr, 0, base_n, tmp), worst = 0;
    for (int i = base_n; i + 5 <= sr->n; i += 5) {
        double m = median_range(sr, i, i + 5, tmp);
        if (fabs(m - base) > fabs(worst)) {
            worst = m - base;
            *at = sr->x[i];
        }
    }
    return worst;
}

static const char *conv_words(ks_ts_convention c)
{
    return c == KS_TS_SEED ? "start of frame (the seed's convention)" : "mid-exposure (as the SDK documents)";
}

/* Which convention the devices follow, from (depth ts - colour ts) - planned delay. */
static void check_timestamps(ks_syncstats *s, double *tmp)
{
    const ks_sync_setup *su = &s->setup;
    const int n = su->device_count;
    int seed = 0, mid = 0, undecided = 0, measured = 0, best = -1;
    for (int d = 0; d < n; d++) {
        dev_acc *a = &s->acc[d];
        ks_sync_device *o = &s->dev[d];
        o->ts_residual_us = NAN;
        o->ts_seed_residual_us = NAN;
        if (!a->tsres.n || !a->seed_pred_n)
            continue;
        measured++;
        o->ts_residual_us = median_range(&a->tsres, 0, a->tsres.n, tmp);
        o->ts_seed_residual_us = a->seed_pred_sum / (double)a->seed_pred_n;
        ks_ts_convention c = ks_ts_convention_detect(o->ts_residual_us, o->ts_seed_residual_us);
        if (c == KS_TS_SEED)
            seed++;
        else if (c == KS_TS_MID_EXPOSURE)
            mid++;
        else
            undecided++;
        if (best < 0 || fabs(o->ts_seed_residual_us) > fabs(s->dev[best].ts_seed_residual_us))
            best = d;
    }
    s->ts_measured = seed && !mid ? KS_TS_SEED : mid && !seed ? KS_TS_MID_EXPOSURE : KS_TS_AUTO;
    ks_ts_convention cfg = su->match.convention;
    s->ts_used = cfg == KS_TS_AUTO ? (s->ts_measured == KS_TS_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE)
                                   : (cfg == KS_TS_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE);
    const double tol = ks_sdk_sync_tolerance_us(KS_FPS_30);
    if (!measured) {
        add_check(s, "timestamps", KS_CHECK_SKIP, -1, -1, NAN, "us",
                  "cannot tell which instant the timestamps name: no synchronized device delivered colour and depth "
                  "in one capture; the rig's setting (%s) is used",
                  ks_ts_convention_name(cfg));
        return;
    }
    const ks_sync_device *b = &s->dev[best];
    if (seed && mid) {
        add_check(s, "timestamps", KS_CHECK_WARN, best, -1, b->ts_residual_us, "us",
                  "devices disagree on the timestamp convention (%d follow start of frame, %d mid-exposure): "
                  "update every device to the same firmware; figures use %s",
                  seed, mid, ks_ts_convention_name(s->ts_used));
        return;
    }
    if (s->ts_measured == KS_TS_AUTO) {
        add_check(s, "timestamps", KS_CHECK_SKIP, best, -1, b->ts_residual_us, "us",
                  "cannot tell which instant the timestamps name: depth minus colour timestamp minus the planned "
                  "depth delay is %.1f us on %s, and start of frame would make it %.1f us, mid-exposure 0 us; with "
                  "these exposures the two conventions are closer than 2 x %.0f us (or the figure fits neither); "
                  "the rig's setting (%s) is used",
                  b->ts_residual_us, su->names[best], b->ts_seed_residual_us, tol, ks_ts_convention_name(cfg));
        return;
    }
    char fig[200];
    snprintf(fig, sizeof fig,
             "depth minus colour timestamp minus the planned depth delay is %.1f us on %s (mid-exposure predicts "
             "0 us, start of frame %.1f us; %d device%s measured)",
             b->ts_residual_us, su->names[best], b->ts_seed_residual_us, measured, measured == 1 ? "" : "s");
    if (cfg == KS_TS_AUTO)
        add_check(s, "timestamps", KS_CHECK_PASS, best, -1, b->ts_residual_us, "us",
                  "measured: the devices' timestamps name the %s; %s", conv_words(s->ts_measured), fig);
    else if (cfg == s->ts_measured)
        add_check(s, "timestamps", KS_CHECK_PASS, best, -1, b->ts_residual_us, "us",
                  "the devices' timestamps name the %s, as the rig file says; %s", conv_words(s->ts_measured), fig);
    else
        add_check(s, "timestamps", KS_CHECK_FAIL, best, -1, b->ts_residual_us, "us",
                  "the rig file says `timestamps: %s` but the devices' timestamps name the %s; %s; set "
                  "`timestamps: %s` (or auto) in the rig file",
                  ks_ts_convention_name(cfg), conv_words(s->ts_measured), fig, ks_ts_convention_name(s->ts_measured));
}

/* The frames after a device's longest gap reached the host in a burst (closer than half a period):
 * they had been captured and waited, i.e. the host (or the USB path) stalled, the capture did not. */
static bool burst_after_gap(const dev_acc *a, double P)
{
    return a->longest_gap && a->gap_next_host_us > 0 && a->gap_next_host_us < P / 2;
}

/* Frames that stopped, paused or never came: device-lost, run-length, outages, dropped frames. */
static void check_continuity(ks_syncstats *s)
{
    const ks_sync_setup *su = &s->setup;
    const int n = su->device_count, ref = su->match.reference;
    const double P = su->match.period_us;
    double t0 = INFINITY, t1 = -INFINITY;
    for (int d = 0; d < n; d++)
        if (s->dev[d].frames) {
            t0 = fmin(t0, s->dev[d].first_key_us);
            t1 = fmax(t1, s->dev[d].last_key_us);
        }
    bool any = isfinite(t0);
    bool handled[KS_MATCH_MAX_DEVICES] = {false};
    /* devices that failed (disconnected) */
    bool lost = false;
    for (int d = 0; d < n; d++)
        if (su->failure[d][0]) {
            lost = handled[d] = true;
            double at = s->dev[d].frames && any ? (s->dev[d].last_key_us - t0) / 1e6 : 0;
            add_check(s, "device-lost", KS_CHECK_FAIL, d, -1, at, "s",
                      "%s stopped delivering frames %.2f s into the run because it failed: %s", su->names[d], at,
                      su->failure[d]);
        }
    /* no frames at all */
    for (int d = 0; d < n; d++)
        if (s->dev[d].frames == 0 && !handled[d]) {
            handled[d] = true;
            if (su->trigger_fed[d] && su->started_as_master[d])
                continue; /* external-trigger names the cause */
            add_check(s, "signal", KS_CHECK_FAIL, d, -1, 0, "frames",
                      "%s delivered no frames; %s", su->names[d],
                      su->trigger_fed[d] ? "it gets no pulses from the external trigger: check the generator and "
                                           "its cable into this device's Sync In"
                      : su->upstream[d] >= 0 ? "it gets no sync pulses: check the sync cable into its Sync In and "
                                               "that the master streams colour"
                                             : "check its USB connection and that it streams colour");
        }
    /* the whole rig stopped before the end of the run */
    double span = any ? (t1 - t0) / 1e6 + P / 1e6 : 0;
    /* slack: measurement starts at the first complete set and a stop cuts the last ones */
    double slack = fmax(0.1 * su->requested_seconds, 10 * P / 1e6);
    if (any && su->requested_seconds > 0 && span < su->requested_seconds - slack && !lost) {
        bool together = true;
        for (int d = 0; d < n; d++)
            if (s->dev[d].frames && t1 - s->dev[d].last_key_us > 3 * P)
                together = false;
        if (together)
            add_check(s, "run-length", KS_CHECK_FAIL, ref, -1, span, "s",
                      "every device stopped delivering frames at the same instant, %.2f s into the %.1f s run: %s",
                      span, su->requested_seconds,
                      su->external_trigger ? "the external trigger stopped sending pulses; check the generator, its "
                                             "output and its cable"
                                           : "the master stopped capturing or lost its connection; check its USB "
                                             "cable and power");
        else
            add_check(s, "run-length", KS_CHECK_FAIL, -1, -1, span, "s",
                      "frames covered only %.2f s of the %.1f s run; see the checks above for which device stopped",
                      span, su->requested_seconds);
    }
    /* a pause of the sync source: every device misses the same frames of its own sequence */
    /* Only a trigger pauses a whole rig: without one, the same frames missing everywhere are a host or
     * session stall (a master does not pause); those are counted as dropped frames below. */
    const dev_acc *ra = &s->acc[ref];
    if (su->external_trigger && ra->longest_gap >= 3 && !(s->have_mstats && s->mstats.sets_dropped)) {
        bool all = true;
        for (int d = 0; d < n; d++) {
            const dev_acc *a = &s->acc[d];
            if (!s->dev[d].frames || handled[d])
                continue;
            if (a->longest_gap + 1 < ra->longest_gap || fabs(a->gap_at - ra->gap_at) > 2 * P)
                all = false;
        }
        if (all) {
            for (int d = 0; d < n; d++)
                handled[d] = handled[d] || s->acc[d].longest_gap + 2 >= s->dev[d].gaps + s->dev[d].missing;
            double at = (ra->gap_at - t0) / 1e6, ms = (double)ra->longest_gap * P / 1000.0;
            add_check(s, "sync-pause", KS_CHECK_FAIL, ref, -1, ms, "ms",
                      "every device missed the same %llu frames %.2f s into the run (%.0f ms without captures): %s",
                      (unsigned long long)ra->longest_gap, at, ms,
                      "the external trigger paused; check the generator and its output");
        }
    }
    /* a device (and the ones behind it) out for a stretch while the master kept capturing: its sync signal */
    for (int d = 0; d < n; d++) {
        const dev_acc *a = &s->acc[d];
        /* an outage is one stretch that holds most of the device's losses; scattered losses are drops */
        if (d == ref || handled[d] || a->longest_run < 3 || a->longest_run * 10 < s->dev[d].missing * 8)
            continue;
        /* the devices not behind it lost (almost) nothing: otherwise the losses are the host's */
        bool others_quiet = true;
        for (int e = 0; e < n; e++) {
            int w = e, guard = 0;
            while (w >= 0 && w != d && guard++ < n)
                w = su->upstream[w];
            if (w != d && (double)(s->dev[e].gaps + s->dev[e].missing) > 0.02 * (double)s->sets + 1)
                others_quiet = false;
        }
        if (!others_quiet)
            continue;
        if (burst_after_gap(a, P) && fabs(a->gap_at - a->longest_at) <= 2 * P) {
            handled[d] = true; /* captured but not taken: the host stalled */
            add_check(s, "dropped-frames", KS_CHECK_FAIL, d, -1, (double)s->dev[d].missing, "frames",
                      "%s: %llu frames lost %.2f s into the run, the next ones reached the host in a burst: its "
                      "host stopped reading for %.0f ms (CPU, USB or disk stall); check the host load",
                      su->names[d], (unsigned long long)a->longest_run, (a->longest_at - t0) / 1e6,
                      a->gap_host_us);
            continue;
        }
        int u = su->upstream[d];
        if (u >= 0 && u != ref && s->acc[u].longest_run >= 3 && fabs(s->acc[u].longest_at - a->longest_at) <= 2 * P)
            continue; /* named at the device further up */
        /* The sync signal into d feeds every device behind d: a cable fault stops them all at once. One
         * that kept capturing through d's outage clears the cable; d's frames were lost on its USB path
         * or host (counted as dropped frames below). */
        bool downstream[KS_MATCH_MAX_DEVICES] = {false}, all_behind = true;
        int n_behind = 0;
        for (int e = 0; e < n; e++) {
            int w = su->upstream[e], guard = 0;
            while (w >= 0 && w != d && guard++ < n)
                w = su->upstream[w];
            if (w != d || e == d || su->failure[e][0] || !s->dev[e].frames)
                continue; /* not behind d, or its own fault (device-lost, no frames) is named already */
            downstream[e] = true;
            n_behind++;
            if (!(s->acc[e].longest_run >= 3 && fabs(s->acc[e].longest_at - a->longest_at) <= 2 * P))
                all_behind = false;
        }
        if (!all_behind)
            continue;
        char behind[200] = "";
        size_t k = 0;
        for (int e = 0; e < n; e++) { /* devices downstream with the same outage */
            if (!downstream[e])
                continue;
            handled[e] = true;
            k += (size_t)snprintf(behind + k, k < sizeof behind ? sizeof behind - k : 0, "%s%s", k ? ", " : "",
                                  su->names[e]);
            if (k >= sizeof behind)
                k = sizeof behind - 1;
        }
        handled[d] = true;
        double at = (a->longest_at - t0) / 1e6, ms = (double)a->longest_run * P / 1000.0;
        bool to_end = a->run > 0 && a->run == a->longest_run && a->last_key < a->longest_at;
        char where[120];
        if (to_end)
            snprintf(where, sizeof where, "from %.2f s to the end of the run", at);
        else
            snprintf(where, sizeof where, "for %.0f ms from %.2f s", ms, at);
        const char *up = u >= 0 && !su->trigger_fed[d] ? su->names[u] : NULL;
        char also[240] = "";
        if (behind[0])
            snprintf(also, sizeof also, " (and behind it %s)", behind);
        add_check(s, "sync-signal", KS_CHECK_FAIL, d, u, (double)a->longest_run, "frames",
                  "%s%s got no frames %s while %s (the master) kept capturing: the sync signal stopped reaching %s; "
                  "%s%s%s into %s's Sync In is unplugged or loose%s",
                  su->names[d], also, where, su->names[ref], su->names[d],
                  su->trigger_fed[d] ? "the external trigger's cable" : "the sync cable", up ? " from " : "",
                  up ? up : "", su->names[d],
                  n_behind ? ""
                           : " (no device is daisy-chained behind it to tell this from frames lost on its USB "
                             "path; if its cable is firm, check its USB controller and host load)");
    }
    /* scattered losses */
    bool dropped = false;
    for (int d = 0; d < n; d++) {
        uint64_t g = s->dev[d].gaps + s->dev[d].missing;
        if (!g || handled[d])
            continue;
        dropped = true;
        double pct = s->sets ? 100.0 * (double)s->dev[d].missing / (double)s->sets : 0;
        int need = ks_usbfs_recommended_mb(su->devices_on_host[d] > 0 ? su->devices_on_host[d] : 1);
        char cause[240];
        if (su->usbfs_mb[d] > 0 && su->usbfs_mb[d] < need)
            snprintf(cause, sizeof cause,
                     "its host allows %d MB of usbfs memory but its %d device%s need %d MB: raise "
                     "usbcore.usbfs_memory_mb to %d (kinsync doctor shows how)",
                     su->usbfs_mb[d], su->devices_on_host[d], su->devices_on_host[d] == 1 ? "" : "s", need, need);
        else
            snprintf(cause, sizeof cause,
                     "frames lost on the way to the host: check the USB bandwidth of its controller and the host "
                     "load%s",
                     su->usbfs_mb[d] > 0 ? " (usbfs memory is sufficient)" : " and usbfs memory (kinsync doctor)");
        add_check(s, "dropped-frames", pct > 2.0 ? KS_CHECK_FAIL : KS_CHECK_WARN, d, -1, (double)s->dev[d].missing,
                  "frames", "%s: missing from %llu of %llu sets (%.1f %%), %llu gaps in its own sequence; %s",
                  su->names[d], (unsigned long long)s->dev[d].missing, (unsigned long long)s->sets, pct,
                  (unsigned long long)s->dev[d].gaps, cause);
    }
    if (!dropped && any) {
        bool clean = true;
        for (int d = 0; d < n; d++)
            if (s->dev[d].gaps + s->dev[d].missing)
                clean = false;
        if (clean)
            add_check(s, "dropped-frames", KS_CHECK_PASS, -1, -1, 0, "frames", "no frame missing in %llu sets",
                      (unsigned long long)s->sets);
    }
    if (!any)
        add_check(s, "dropped-frames", KS_CHECK_SKIP, -1, -1, NAN, "frames", "no frames, nothing to count");
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
    check_timestamps(s, tmp);
    const int ci = s->ts_used == KS_TS_SEED ? CONV_SEED : CONV_MID;

    for (int d = 0; d < n; d++) {
        dev_acc *a = &s->acc[d];
        ks_sync_device *o = &s->dev[d];
        double tr = o->ts_residual_us, tp = o->ts_seed_residual_us;
        memset(o, 0, sizeof *o);
        o->ts_residual_us = tr;
        o->ts_seed_residual_us = tp;
        o->frames = a->frames;
        o->missing = a->missing;
        o->first_key_us = a->first_key;
        o->last_key_us = a->last_key;
        o->longest_outage = a->longest_run;
        o->outage_at_us = a->longest_run ? a->longest_at : NAN;
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
        const series *dep = &a->depthc[ci];
        o->depth_n = (uint64_t)dep->n;
        double dsum = 0, derr = 0;
        for (int i = 0; i < dep->n; i++) {
            dsum += dep->y[i];
            double e = fabs(dep->y[i] - su->match.devices[d].depth_delay_us);
            if (e > derr)
                derr = e;
        }
        o->depth_offset_mean_us = dep->n ? dsum / dep->n : 0;
        o->depth_offset_err_max_us = derr;
        o->depth_offset_jump_us = series_jump(dep, tmp, &o->depth_offset_jump_at_us);
        o->exposure_changes = a->exposure_changes;
        o->exposure_min_us = a->exp_min == UINT64_MAX ? 0 : a->exp_min;
        o->exposure_max_us = a->exp_max;
        o->invalid_fraction_mean = a->inv_n ? a->inv_sum / (double)a->inv_n : -1;
        o->invalid_fraction_max = a->inv_n ? a->inv_max : -1;
        o->blank_frames = a->blank;
        o->bad_content = a->corrupt + (a->black_depth < a->depth_frames ? a->black_depth : 0);
        /* frame period on the device clock: keys against their frame numbers */
        if (a->keys.n >= 2) {
            for (int i = 0; i < a->keys.n; i++)
                tmp[i] = round((a->keys.x[i] - a->keys.x[0]) / P);
            double pa, pb;
            if (ks_theil_sen(tmp, a->keys.y, (size_t)a->keys.n, &pa, &pb))
                o->period_ppm = (pb / P - 1) * 1e6;
        }
        /* laser window start relative to the reference's colour start (window centred on depth centre) */
        const series *las = &a->laserc[ci];
        for (int i = 0; i < las->n; i++)
            tmp[i] = las->y[i];
        double lc = median(tmp, (size_t)las->n);
        o->laser_start_us = isnan(lc) ? NAN : lc - ks_depth_laser_window_us(su->depth_mode) / 2.0;
    }

    check_continuity(s);
    /* start order: host arrival times are compared only between devices on the master's host */
    bool order_ok = true;
    int compared = 0, other_host = 0;
    char others[200] = "";
    size_t ok_len = 0;
    for (int d = 0; d < n; d++) {
        if (d == ref || !s->dev[d].frames)
            continue;
        if (su->host[d] != su->host[ref]) {
            other_host++;
            ok_len += (size_t)snprintf(others + ok_len, ok_len < sizeof others ? sizeof others - ok_len : 0, "%s%s",
                                       ok_len ? ", " : "", su->names[d]);
            if (ok_len >= sizeof others)
                ok_len = sizeof others - 1;
            continue;
        }
        if (!s->acc[d].hostdiff.n)
            continue;
        compared++;
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
    if (order_ok && compared)
        add_check(s, "start-order", KS_CHECK_PASS, -1, -1, 0, "frames",
                  "the timestamps of %d device%s on the master's host agree with their host arrival times (no frame "
                  "offset)",
                  compared, compared == 1 ? "" : "s");
    if (other_host)
        add_check(s, "start-order", KS_CHECK_SKIP, -1, -1, NAN, "frames",
                  "not judged for %s: on another host than the master, and frames are matched by device timestamps, "
                  "which a master started first shifts by whole frame periods; run `kinsync verify --distributed`, "
                  "which compares the hosts' synchronized clocks",
                  others);
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
    } else if (n > 1) {
        add_check(s, "color-alignment", KS_CHECK_SKIP, -1, ref, NAN, "us",
                  "not measured: no set held colour from the master %s and another device", su->names[ref]);
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
                  "depth of %s is %.1f us from its planned depth delay %.1f us at worst (measured mean %.1f us, "
                  "timestamps read as %s)%s",
                  su->names[dworst_d], dworst, su->match.devices[dworst_d].depth_delay_us,
                  s->dev[dworst_d].depth_offset_mean_us, ks_ts_convention_name(s->ts_used),
                  dworst <= target / 2 ? "" : "; check the depth delay each device was started with and the "
                                              "`timestamps` check");
    else
        add_check(s, "depth-offsets", KS_CHECK_SKIP, -1, -1, NAN, "us",
                  "not measured: no capture held both colour and depth");
    /* drift between devices */
    double drift = 0;
    int drift_d = -1;
    for (int d = 0; d < n; d++)
        if (d != ref && s->acc[d].skew.n >= 10 && fabs(s->dev[d].drift_vs_ref_ppm) >= drift) {
            drift = fabs(s->dev[d].drift_vs_ref_ppm);
            drift_d = d;
        }
    if (drift_d >= 0) {
        bool ae = su->auto_exposure[drift_d] || su->auto_exposure[ref];
        add_check(s, "clock-drift", drift <= 5 ? KS_CHECK_PASS : KS_CHECK_WARN, drift_d, ref, drift, "ppm",
                  "largest drift of a device's colour against the master: %s %.2f ppm%s", su->names[drift_d],
                  s->dev[drift_d].drift_vs_ref_ppm,
                  drift <= 5 ? ""
                  : ae       ? "; auto exposure moves the start of every colour frame (see auto-exposure), so this "
                               "is not a clock: set the same manual exposure everywhere"
                             : "; a wired subordinate should follow the master: check its sync cable");
    } else if (n > 1) {
        add_check(s, "clock-drift", KS_CHECK_SKIP, -1, ref, NAN, "ppm",
                  "not measured: no device has 10 colour sets with the master");
    }
    /* exposure: auto, writes while streaming, and what the frames show (SDK issue #471) */
    const double jump_limit = target / 2;
    bool any_color = false;
    for (int d = 0; d < n; d++) {
        const ks_sync_device *o = &s->dev[d];
        if (o->exposure_max_us)
            any_color = true;
        bool jumped = fabs(o->depth_offset_jump_us) > jump_limit;
        if (su->auto_exposure[d] || (o->exposure_changes > 5 && o->frames && o->exposure_changes * 10 > (int)o->frames)) {
            char skew[120] = "";
            if (d != ref && s->acc[d].skew.n)
                snprintf(skew, sizeof skew, " and its skew against the master grows (first %.1f us, last %.1f us)",
                         o->skew_first_us, o->skew_last_us);
            else if (d == ref)
                snprintf(skew, sizeof skew, " and every subordinate's skew against it moves");
            add_check(s, "auto-exposure", KS_CHECK_WARN, d, -1, (double)o->exposure_changes, "changes",
                      "%s runs auto exposure (%d exposure changes, %llu..%llu us): its start of frame moves with the "
                      "exposure%s; set the same manual exposure on every device",
                      su->names[d], o->exposure_changes, (unsigned long long)o->exposure_min_us,
                      (unsigned long long)o->exposure_max_us, skew);
        } else if (su->exposure_sets[d] > 0 || o->exposure_changes > 0 || jumped) {
            char jump[200] = "";
            if (jumped)
                snprintf(jump, sizeof jump,
                         "; its colour-to-depth offset jumped by %+.1f us %.2f s into the run and stayed off: every "
                         "exposure write, even of the same value, leaves such an offset (SDK issue #471)",
                         o->depth_offset_jump_us,
                         isfinite(o->depth_offset_jump_at_us) && isfinite(o->first_key_us)
                             ? (o->depth_offset_jump_at_us - o->first_key_us) / 1e6
                             : 0.0);
            add_check(s, "exposure-set-once", KS_CHECK_FAIL, d, -1,
                      jumped ? o->depth_offset_jump_us
                             : (double)(su->exposure_sets[d] > o->exposure_changes ? su->exposure_sets[d]
                                                                                   : o->exposure_changes),
                      jumped ? "us" : "sets",
                      "%s: the exposure was set %d time%s while streaming (%d value changes seen in frames)%s; set "
                      "exposure once before starting, never in the capture loop",
                      su->names[d], su->exposure_sets[d], su->exposure_sets[d] == 1 ? "" : "s", o->exposure_changes,
                      jump);
        }
    }
    if (!ks_syncstats_find(s, "auto-exposure", -2) && !ks_syncstats_find(s, "exposure-set-once", -2)) {
        if (any_color)
            add_check(s, "exposure", KS_CHECK_PASS, -1, -1, 0, "",
                      "manual exposure on every device, set once; the colour-to-depth offsets held steady");
        else
            add_check(s, "exposure", KS_CHECK_SKIP, -1, -1, NAN, "", "not judged: no colour frame arrived");
    }
    /* image content: black / pink frames (SDK issues #1227, #1404) */
    {
        uint64_t checked = 0, blank = 0, total = 0;
        int bad_d = -1;
        for (int d = 0; d < n; d++) {
            checked += s->acc[d].color_checked + s->acc[d].depth_frames;
            blank += s->acc[d].blank + s->acc[d].black_depth;
            total += s->acc[d].color_checked + s->acc[d].depth_frames;
            if (s->dev[d].bad_content && (bad_d < 0 || s->dev[d].bad_content > s->dev[bad_d].bad_content))
                bad_d = d;
        }
        for (int d = 0; d < n; d++) {
            const ks_sync_device *o = &s->dev[d];
            if (!o->bad_content)
                continue;
            add_check(s, "frame-content", KS_CHECK_FAIL, d, -1, (double)o->bad_content, "frames",
                      "%s delivered %llu of %llu frames with invalid content (%llu colour images corrupt, %llu depth "
                      "images black): black/pink frames%s",
                      su->names[d], (unsigned long long)o->bad_content, (unsigned long long)o->frames,
                      (unsigned long long)s->acc[d].corrupt,
                      (unsigned long long)(s->acc[d].black_depth < s->acc[d].depth_frames ? s->acc[d].black_depth : 0),
                      su->trigger_fed[d] || (su->external_trigger && su->upstream[d] >= 0)
                          ? "; on an externally triggered rig they follow a trigger out of spec (pulse width, "
                            "voltage, a frequency not exactly the camera fps) or pulses during readout: check the "
                            "generator"
                          : "; check the USB connection and the host load");
        }
        if (bad_d < 0) {
            if (!checked)
                add_check(s, "frame-content", KS_CHECK_SKIP, -1, -1, NAN, "frames",
                          "not judged: image content was not measured");
            else if (blank == total)
                add_check(s, "frame-content", KS_CHECK_SKIP, -1, -1, NAN, "frames",
                          "not judged: every image is blank (a timing-only simulation renders no pictures)");
            else
                add_check(s, "frame-content", KS_CHECK_PASS, -1, -1, 0, "frames",
                          "no black or corrupt frame among %llu images", (unsigned long long)checked);
        }
    }
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
                    isnan(s->dev[b].laser_start_us) || !s->acc[a].laserc[ci].n || !s->acc[b].laserc[ci].n)
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
            if (s->dev[ba].invalid_fraction_mean >= 0 && s->dev[ba].invalid_fraction_mean < 0.999)
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
        } else {
            bool shared = false;
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                    shared |= su->groups[a] == su->groups[b] || lights_shared(su, a, b);
            if (shared)
                add_check(s, "laser-overlap", KS_CHECK_SKIP, -1, -1, NAN, "us",
                          "not measured: no two devices of one interference group delivered depth in the same sets");
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
    if (su->external_trigger) {
        int fed = -1;
        for (int d = 0; d < n; d++)
            if (su->trigger_fed[d])
                fed = d;
        if (fed >= 0 && su->started_as_master[fed])
            add_check(s, "external-trigger", KS_CHECK_FAIL, fed, -1, s->dev[fed].period_ppm, "ppm",
                      "%s is fed by the external trigger but was started as master: a master makes its own pulses "
                      "and ignores Sync In, so no frame follows the generator (%llu frames at its own rate); start it "
                      "as subordinate (k4arecorder --external-sync Subordinate)",
                      su->names[fed], (unsigned long long)s->dev[fed].frames);
        else if (s->dev[ref].frames > 10) {
            double ppm = s->dev[ref].period_ppm, tol = ks_trigger_spec_get()->frequency_tolerance_ppm;
            add_check(s, "external-trigger", fabs(ppm) <= tol / 2 ? KS_CHECK_PASS : KS_CHECK_FAIL, ref, -1, ppm,
                      "ppm", "the external trigger's period on %s's clock is %+.1f ppm off nominal%s", su->names[ref],
                      ppm, fabs(ppm) <= tol / 2 ? "" : ": the trigger drifts; use a generator locked to exactly the camera fps");
        } else
            add_check(s, "external-trigger", KS_CHECK_SKIP, ref, -1, NAN, "ppm",
                      "not measured: %s delivered %llu frames, 11 are needed to measure the trigger's period",
                      su->names[ref], (unsigned long long)s->dev[ref].frames);
    }
    free(tmp);
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

ks_ts_convention ks_syncstats_timestamps(const ks_syncstats *s)
{
    return s ? s->ts_measured : KS_TS_AUTO;
}

ks_ts_convention ks_syncstats_timestamps_used(const ks_syncstats *s)
{
    return s ? s->ts_used : KS_TS_MID_EXPOSURE;
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
    const int ci = s->ts_used == KS_TS_SEED ? CONV_SEED : CONV_MID;
    const series *sr = which == 0 ? &a->skew : which == 1 ? &a->laserc[ci] : &a->depthc[ci];
    *x = sr->x;
    *y = sr->y;
    return sr->n;
}

const ks_sync_setup *ks_syncstats_setup_get(const ks_syncstats *s)
{
    return &s->setup;
}
