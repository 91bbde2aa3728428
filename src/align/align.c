/* Aligning recordings (kinsync/align.h). Each file is read through the playback backend (one
 * backend per file, so two files of the same device can still be compared), which forms captures
 * exactly as a live consumer would see them; only timestamps are kept. Grouping is over the
 * files' frame keys: the earliest pending key opens a set and every file whose next key
 * lies within the tolerance of it joins -- done by the session's matcher (ks_match_frames), so
 * recordings are grouped exactly like a live rig. Statistics are computed in one pass over the
 * sets. */
#include "kinsync/align.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/matcher.h"
#include "kinsync/mkv.h"
#include "kinsync/playback.h"
#include "align/align_internal.h"

static const char *mode_lower(ks_wired_sync_mode m)
{
    return m == KS_SYNC_MASTER ? "master" : m == KS_SYNC_SUBORDINATE ? "subordinate" : "standalone";
}

static ks_status read_header(const char *path, ks_align_file *f, ks_error *err)
{
    ks_mkv_reader *r = NULL;
    ks_status st = ks_mkv_reader_open(path, &r, err);
    if (st != KS_OK)
        return st;
    const ks_mkv_info *in = ks_mkv_reader_info(r);
    const ks_mkv_desc *d = &in->desc;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->serial, sizeof f->serial, "%s", d->serial);
    snprintf(f->role, sizeof f->role, "%s", d->role[0] ? d->role : mode_lower(d->sync_mode));
    snprintf(f->rig_name, sizeof f->rig_name, "%s", d->rig_name);
    snprintf(f->plan_digest, sizeof f->plan_digest, "%s", d->plan_digest);
    f->sync_mode = d->sync_mode;
    f->subordinate_delay_us = d->subordinate_delay_us;
    f->depth_delay_us = d->depth_delay_us;
    f->fps = d->fps;
    f->color_resolution = d->color_resolution;
    f->color_format = d->color_format;
    f->depth_mode = d->depth_mode;
    f->start_offset_us = in->start_offset_us;
    f->color_exposure_us = d->color_exposure_us;
    snprintf(f->timestamps, sizeof f->timestamps, "%s", d->timestamps);
    ks_mkv_reader_close(r);
    return KS_OK;
}

static double sub_delay_eff(const ks_align_file *f)
{
    return f->sync_mode == KS_SYNC_SUBORDINATE ? ks_delay_effective_us(f->subordinate_delay_us) : 0.0;
}

static double depth_delay_eff(const ks_align_file *f)
{
    if (f->color_resolution == KS_COLOR_OFF || f->depth_mode == KS_DEPTH_OFF)
        return 0.0;
    return ks_delay_effective_us(f->depth_delay_us);
}

ks_status ks_align_open_recording(const char *path, ks_backend **b, ks_device **d, ks_error *err)
{
    ks_playback_options o;
    ks_playback_options_init(&o);
    o.pace = KS_PLAYBACK_FREE;
    const char *p[1] = {path};
    *b = NULL;
    *d = NULL;
    ks_status st = ks_backend_open_playback(p, 1, &o, b, err);
    if (st != KS_OK)
        return st;
    ks_device_config cfg;
    st = ks_device_open(*b, 0, d, err);
    if (st == KS_OK)
        st = ks_playback_recorded_config(*b, 0, &cfg, err);
    if (st == KS_OK)
        st = ks_device_start_cameras(*d, &cfg, err);
    return st;
}

static ks_status read_frames(ks_align_file *f, ks_error *err)
{
    ks_backend *b = NULL;
    ks_device *d = NULL;
    ks_status st = ks_align_open_recording(f->path, &b, &d, err);
    if (st != KS_OK && !b)
        return st;
    size_t cap = 0;
    const double sd = sub_delay_eff(f), dd = depth_delay_eff(f);
    while (st == KS_OK) {
        ks_capture *c = NULL;
        st = ks_device_get_capture(d, &c, 0, err);
        if (st != KS_OK)
            break;
        if (f->frame_count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            ks_align_frame *n = realloc(f->frames, ncap * sizeof *n);
            if (!n) {
                ks_capture_release(c);
                st = ks_error_set(err, KS_ENOMEM, "out of memory reading %s", f->path);
                break;
            }
            f->frames = n;
            cap = ncap;
        }
        ks_align_frame *fr = &f->frames[f->frame_count++];
        memset(fr, 0, sizeof *fr);
        if (c->color) {
            fr->has_color = true;
            fr->color_ts_us = c->color->device_ts_us;
        }
        if (c->depth) {
            fr->has_depth = true;
            fr->depth_ts_us = c->depth->device_ts_us;
        }
        if (c->ir) {
            fr->has_ir = true;
            fr->ir_ts_us = c->ir->device_ts_us;
        }
        if (fr->has_color)
            fr->key_us = (double)fr->color_ts_us - sd;
        else
            fr->key_us = (double)(fr->has_depth ? fr->depth_ts_us : fr->ir_ts_us) - dd - sd;
        ks_capture_release(c);
    }
    if (st == KS_EEOF)
        st = KS_OK;
    ks_device_close(d);
    ks_backend_free(b);
    return st;
}

/* Why file f does not belong with the reference, or false. */
static bool foreign(const ks_align_result *r, int i, char *why, size_t n)
{
    const ks_align_file *ref = &r->files[r->reference], *f = &r->files[i];
    if (f->sync_mode == KS_SYNC_MASTER && ref->sync_mode == KS_SYNC_MASTER) {
        snprintf(why, n, "a second master (the master is %s); it comes from another rig or session", ref->path);
        return true;
    }
    if (f->rig_name[0] && ref->rig_name[0] && strcmp(f->rig_name, ref->rig_name) != 0) {
        snprintf(why, n, "recorded by rig '%s', not '%s'", f->rig_name, ref->rig_name);
        return true;
    }
    if (f->plan_digest[0] && ref->plan_digest[0] && strcmp(f->plan_digest, ref->plan_digest) != 0) {
        snprintf(why, n, "recorded with another plan (digest %.20s..., the master's is %.20s...)", f->plan_digest,
                 ref->plan_digest);
        return true;
    }
    if (f->fps != ref->fps) {
        snprintf(why, n, "recorded at %d fps, the master at %d fps", ks_fps_hz(f->fps), ks_fps_hz(ref->fps));
        return true;
    }
    if (f->color_resolution != ref->color_resolution || f->color_format != ref->color_format ||
        f->depth_mode != ref->depth_mode) {
        snprintf(why, n, "color %s %s + depth %s, the master records color %s %s + depth %s",
                 ks_image_format_name(f->color_format), ks_color_resolution_name(f->color_resolution),
                 ks_depth_mode_name(f->depth_mode), ks_image_format_name(ref->color_format),
                 ks_color_resolution_name(ref->color_resolution), ks_depth_mode_name(ref->depth_mode));
        return true;
    }
    for (int j = 0; j < i; j++)
        if (r->files[j].member && f->serial[0] && !strcmp(r->files[j].serial, f->serial)) {
            snprintf(why, n, "the same device (%s) as %s; give one file per device", f->serial, r->files[j].path);
            return true;
        }
    return false;
}

typedef struct welford {
    uint64_t n;
    double mean, m2, min, max;
} welford;

static void wf_add(welford *w, double x)
{
    if (!w->n || x < w->min)
        w->min = x;
    if (!w->n || x > w->max)
        w->max = x;
    w->n++;
    double d = x - w->mean;
    w->mean += d / (double)w->n;
    w->m2 += d * (x - w->mean);
}

static void wf_out(const welford *w, ks_align_stats *s)
{
    s->n = w->n;
    s->mean = w->n ? w->mean : 0;
    s->min = w->n ? w->min : 0;
    s->max = w->n ? w->max : 0;
    s->stddev = w->n > 1 ? sqrt(w->m2 / (double)(w->n - 1)) : 0;
    s->max_abs = fabs(s->min) > fabs(s->max) ? fabs(s->min) : fabs(s->max);
}

typedef struct group_ctx {
    ks_align_result *r;
    const int *file_of;        /* matcher device -> file index */
    size_t cap;
    bool oom;
} group_ctx;

static void on_set(const ks_frame_set *fs, void *vctx)
{
    group_ctx *g = vctx;
    ks_align_result *r = g->r;
    if (g->oom)
        return;
    if (r->set_count == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        ks_align_set *ns = realloc(r->sets, ncap * sizeof *ns);
        if (!ns) {
            g->oom = true;
            return;
        }
        r->sets = ns;
        g->cap = ncap;
    }
    ks_align_set *s = &r->sets[r->set_count];
    s->frame = malloc((size_t)r->file_count * sizeof *s->frame);
    if (!s->frame) {
        g->oom = true;
        return;
    }
    r->set_count++;
    s->members = 0;
    s->time_us = fs->key_us;
    for (int i = 0; i < r->file_count; i++)
        s->frame[i] = -1;
    for (int d = 0; d < KS_MATCH_MAX_DEVICES; d++)
        if (fs->present_mask & (1u << d)) {
            int fi = g->file_of[d];
            s->frame[fi] = (int32_t)(intptr_t)fs->frames[d].user;
            s->members++;
            if (fi == r->reference)
                s->time_us = r->files[fi].frames[s->frame[fi]].key_us;
        }
}

/* Frame sets through the session's matcher (kinsync/matcher.h, batch form): the same grouping
 * the live session uses, with the planned delays of each file. */
static ks_status group(ks_align_result *r, double tol, ks_error *err)
{
    int file_of[KS_MATCH_MAX_DEVICES], dev_of[KS_ALIGN_MAX_FILES];
    for (int i = 0; i < KS_ALIGN_MAX_FILES; i++)
        dev_of[i] = -1;
    int m = 0;
    size_t total = 0;
    for (int i = 0; i < r->file_count; i++) {
        dev_of[i] = -1;
        if (r->files[i].member && m < KS_MATCH_MAX_DEVICES) {
            dev_of[i] = m;
            file_of[m++] = i;
            total += r->files[i].frame_count;
        }
    }
    ks_matcher_config cfg;
    ks_matcher_config_init(&cfg, m, r->files[r->reference].fps, KS_TS_SEED);
    cfg.reference = dev_of[r->reference] >= 0 ? dev_of[r->reference] : 0;
    cfg.period_us = ks_frame_period_exact_us(r->files[r->reference].fps);
    cfg.tolerance_us = tol;
    for (int k = 0; k < m; k++) {
        const ks_align_file *f = &r->files[file_of[k]];
        cfg.devices[k].mode = f->sync_mode;
        cfg.devices[k].color_offset_us = sub_delay_eff(f);
        cfg.devices[k].depth_delay_us = depth_delay_eff(f);
    }
    ks_match_frame *frames = calloc(total ? total : 1, sizeof *frames);
    if (!frames)
        return ks_error_set(err, KS_ENOMEM, "out of memory grouping frame sets");
    size_t n = 0;
    for (int k = 0; k < m; k++) {
        const ks_align_file *f = &r->files[file_of[k]];
        for (size_t j = 0; j < f->frame_count; j++) {
            const ks_align_frame *fr = &f->frames[j];
            ks_match_frame *mf = &frames[n++];
            mf->device = k;
            mf->has_color = fr->has_color;
            mf->color_ts_us = fr->color_ts_us;
            mf->has_depth = fr->has_depth || fr->has_ir;
            mf->depth_ts_us = fr->has_depth ? fr->depth_ts_us : fr->ir_ts_us;
            mf->invalid_fraction = -1;
            mf->user = (void *)(intptr_t)j;
        }
    }
    group_ctx g = {r, file_of, 0, false};
    ks_error me;
    ks_error_clear(&me);
    ks_match_frames(&cfg, frames, n, on_set, &g, &me);
    free(frames);
    if (me.code != KS_OK) {
        if (err)
            *err = me;
        return me.code;
    }
    if (g.oom)
        return ks_error_set(err, KS_ENOMEM, "out of memory grouping frame sets");
    return KS_OK;
}

/* What to add to depth ts - color ts - planned delay to compare centres (see depth_offset_centres);
 * NAN when the convention or a needed exposure is unknown. Same conversion as the matcher's. */
static double centre_adjust(const ks_align_file *f)
{
    bool seed;
    if (!strcmp(f->timestamps, ks_ts_convention_name(KS_TS_SEED)))
        seed = true;
    else if (!strcmp(f->timestamps, ks_ts_convention_name(KS_TS_MID_EXPOSURE)))
        seed = false;
    else
        return NAN;
    if (!seed || f->sync_mode == KS_SYNC_STANDALONE) /* both timestamps are already centres */
        return 0.0;
    const ks_depth_mode_info *m = ks_depth_mode_get(f->depth_mode);
    if (f->color_exposure_us <= 0 || !m)
        return NAN;
    return ((double)m->exposure_us - (double)f->color_exposure_us) / 2.0; /* both are starts of frame */
}

static void statistics(ks_align_result *r)
{
    const int n = r->file_count;
    const double P = r->period_us;
    const ks_align_file *ref = &r->files[r->reference];
    for (int i = 0; i < n; i++) {
        ks_align_file *f = &r->files[i];
        if (!f->member)
            continue;
        welford skew = {0}, dep = {0};
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        double x0 = NAN;
        const double dd = depth_delay_eff(f);
        const double adj = centre_adjust(f);
        f->depth_offset_centres = !isnan(adj);
        for (size_t k = 0; k < r->set_count; k++) {
            const ks_align_set *s = &r->sets[k];
            int32_t fi = s->frame[i], ri = s->frame[r->reference];
            if (fi < 0) {
                f->missing_from_sets++;
                continue;
            }
            if (s->members < r->member_count)
                f->in_partial_sets++;
            const ks_align_frame *fr = &f->frames[fi];
            if (fr->has_color && fr->has_depth)
                wf_add(&dep, (double)fr->depth_ts_us - (double)fr->color_ts_us - dd + (isnan(adj) ? 0.0 : adj));
            if (ri < 0)
                continue;
            const ks_align_frame *rf = &ref->frames[ri];
            if (fr->has_color != rf->has_color)
                continue;
            double sk = fr->key_us - rf->key_us;
            wf_add(&skew, sk);
            if (isnan(x0))
                x0 = rf->key_us;
            double x = (rf->key_us - x0) / 1e6;
            sx += x;
            sy += sk;
            sxx += x * x;
            sxy += x * sk;
        }
        wf_out(&skew, &f->skew_us);
        wf_out(&dep, &f->depth_offset_us);
        double m = (double)skew.n;
        double den = m * sxx - sx * sx;
        f->drift_ppm = skew.n > 2 && den > 1e-12 ? (m * sxy - sx * sy) / den : 0; /* us per s = ppm */
        for (size_t k = 1; k < f->frame_count; k++) {
            double gap = f->frames[k].key_us - f->frames[k - 1].key_us;
            long miss = lround(gap / P) - 1;
            if (miss > 0)
                f->drops += (uint64_t)miss;
        }
        if (f->frame_count && ref->frame_count)
            f->start_vs_reference_us = (int64_t)llround(f->frames[0].key_us - ref->frames[0].key_us);
        if (f->skew_us.max_abs > r->worst_skew_us)
            r->worst_skew_us = f->skew_us.max_abs;
    }
    for (size_t k = 0; k < r->set_count; k++)
        if (r->sets[k].members == r->member_count)
            r->complete_sets++;
}

void ks_align_free(ks_align_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->file_count; i++)
        free(r->files[i].frames);
    for (size_t k = 0; k < r->set_count; k++)
        free(r->sets[k].frame);
    free(r->sets);
    free(r);
}

ks_status ks_align_files(const char *const *paths, int count, const ks_align_options *opts, ks_align_result **out,
                         ks_error *err)
{
    if (!paths || !out || count < 1 || count > KS_ALIGN_MAX_FILES)
        return ks_error_set(err, KS_EINVAL, "give 1 to %d recordings to align (got %d)", KS_ALIGN_MAX_FILES, count);
    ks_align_result *r = calloc(1, sizeof *r);
    if (!r)
        return ks_error_set(err, KS_ENOMEM, "out of memory aligning recordings");
    r->file_count = count;
    ks_status st = KS_OK;
    for (int i = 0; i < count && st == KS_OK; i++) {
        ks_align_file *f = &r->files[i];
        st = read_header(paths[i], f, err);
        if (opts && !f->color_exposure_us && opts->color_exposure_us > 0)
            f->color_exposure_us = opts->color_exposure_us;
        if (opts && !f->timestamps[0] && (opts->timestamps || opts->color_exposure_us > 0))
            snprintf(f->timestamps, sizeof f->timestamps, "%s",
                     opts->timestamps ? opts->timestamps : ks_ts_convention_name(KS_TS_SEED));
    }
    r->reference = 0;
    for (int i = 0; i < count; i++)
        if (r->files[i].sync_mode == KS_SYNC_MASTER) {
            r->reference = i;
            break;
        }
    if (st == KS_OK) {
        r->period_us = ks_frame_period_us(r->files[r->reference].fps);
        for (int i = 0; i < count; i++) {
            ks_align_file *f = &r->files[i];
            f->member = i == r->reference || !foreign(r, i, f->reason, sizeof f->reason);
            if (f->member)
                r->member_count++;
        }
    }
    for (int i = 0; i < count && st == KS_OK; i++)
        if (r->files[i].member)
            st = read_frames(&r->files[i], err);
    double tol = opts && opts->tolerance_us > 0 ? opts->tolerance_us : 0; /* 0: the matcher's default */
    if (st == KS_OK)
        st = group(r, tol, err);
    if (st != KS_OK) {
        ks_align_free(r);
        return st;
    }
    statistics(r);
    *out = r;
    return KS_OK;
}
