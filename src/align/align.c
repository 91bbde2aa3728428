/* Aligning recordings (kinsync/align.h). The headers decide which files belong together; the
 * member files then run as one rig through the session (ks_source_open -> ks_session), exactly as
 * `kinsync verify` runs them: one matcher, one frame-set key (kinsync/matcher.h), one drift
 * estimator (Theil-Sen, kinsync/syncstats.h). Only timestamps and keys of the sets' frames are
 * kept; the statistics are computed in one pass over the sets. */
#include "kinsync/align.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/matcher.h"
#include "kinsync/mkv.h"
#include "kinsync/playback.h"
#include "kinsync/session.h"
#include "kinsync/source.h"
#include "kinsync/syncstats.h"
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
    /* one image is enough to know the file has frames (IMU samples alone do not make a capture) */
    f->frameless = true;
    ks_mkv_item it;
    ks_error e2;
    while (f->frameless && ks_mkv_reader_next(r, &it, &e2) == KS_OK) {
        if (it.image) {
            f->frameless = false;
            ks_image_release(it.image);
        }
    }
    ks_mkv_reader_close(r);
    return KS_OK;
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

static ks_status push_frame(ks_align_file *f, size_t *cap, const ks_match_frame *mf, const ks_capture *c,
                            ks_error *err)
{
    if (f->frame_count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        ks_align_frame *n = realloc(f->frames, ncap * sizeof *n);
        if (!n)
            return ks_error_set(err, KS_ENOMEM, "out of memory reading %s", f->path);
        f->frames = n;
        *cap = ncap;
    }
    ks_align_frame *fr = &f->frames[f->frame_count++];
    memset(fr, 0, sizeof *fr);
    if (c && c->color) {
        fr->has_color = true;
        fr->color_ts_us = c->color->device_ts_us;
    }
    if (c && c->depth) {
        fr->has_depth = true;
        fr->depth_ts_us = c->depth->device_ts_us;
    }
    if (c && c->ir) {
        fr->has_ir = true;
        fr->ir_ts_us = c->ir->device_ts_us;
    }
    fr->key_us = mf->key_us;
    fr->color_start_us = mf->color_start_us;
    fr->depth_center_us = mf->depth_center_us;
    fr->color_exposure_us = mf->color_exposure_us;
    fr->depth_exposure_us = mf->depth_exposure_us;
    return KS_OK;
}

/* The member files run as one rig through the session (kinsync/source.h, kinsync/session.h):
 * frame sets, keys and the drift estimate are exactly what `kinsync verify` gets from them. */
static ks_status run_session(ks_align_result *r, const ks_align_options *opts, ks_error *err)
{
    const char *paths[KS_ALIGN_MAX_FILES];
    int file_of[KS_ALIGN_MAX_FILES], m = 0;
    for (int i = 0; i < r->file_count; i++)
        if (r->files[i].member && !r->files[i].frameless) {
            file_of[m] = i;
            paths[m++] = r->files[i].path;
        }
    if (m == 0)
        return KS_OK; /* no frames at all: no sets */
    ks_source_options so;
    ks_source_options_init(&so);
    so.playback.color_exposure_us = opts ? opts->color_exposure_us : 0;
    if (opts && (opts->timestamps || opts->color_exposure_us > 0))
        so.timestamps = opts->timestamps ? opts->timestamps : ks_ts_convention_name(KS_TS_SEED);
    ks_source src;
    ks_status st = ks_source_open(paths, m, &so, &src, err);
    if (st != KS_OK)
        return st;
    ks_session_options o;
    ks_session_options_init(&o);
    o.tolerance_us = opts && opts->tolerance_us > 0 ? opts->tolerance_us : 0;
    o.allow_firmware_mismatch = true; /* align reports; it does not refuse a take */
    ks_session *s = NULL;
    st = ks_session_open(&src.rig, &src.plan, src.backend, &o, &s, err);
    if (st == KS_OK)
        st = ks_session_start(s, err);
    size_t cap[KS_ALIGN_MAX_FILES] = {0}, set_cap = 0;
    while (st == KS_OK) {
        ks_session_set set;
        ks_status ns = ks_session_next(s, &set, 5000, err);
        if (ns == KS_EEOF)
            break;
        if (ns == KS_ETIMEOUT) /* a loaded machine: recordings always progress */
            continue;
        if (ns != KS_OK) {
            st = ns;
            break;
        }
        if (r->set_count == set_cap) {
            size_t nc = set_cap ? set_cap * 2 : 256;
            ks_align_set *ns2 = realloc(r->sets, nc * sizeof *ns2);
            if (!ns2) {
                ks_session_set_release(&set);
                st = ks_error_set(err, KS_ENOMEM, "out of memory grouping frame sets");
                break;
            }
            r->sets = ns2;
            set_cap = nc;
        }
        ks_align_set *as = &r->sets[r->set_count];
        as->frame = malloc((size_t)r->file_count * sizeof *as->frame);
        if (!as->frame) {
            ks_session_set_release(&set);
            st = ks_error_set(err, KS_ENOMEM, "out of memory grouping frame sets");
            break;
        }
        r->set_count++;
        as->members = 0;
        as->time_us = set.set.key_us;
        for (int i = 0; i < r->file_count; i++)
            as->frame[i] = -1;
        for (int d = 0; d < ks_session_device_count(s) && st == KS_OK; d++) {
            if (!(set.set.present_mask & (1u << d)))
                continue;
            int fi = file_of[ks_session_rig_index(s, d)];
            st = push_frame(&r->files[fi], &cap[fi], &set.set.frames[d], set.set.frames[d].user, err);
            as->frame[fi] = (int32_t)(r->files[fi].frame_count - 1);
            as->members++;
        }
        ks_session_set_release(&set);
    }
    if (s) {
        ks_session_stop(s);
        if (st == KS_OK) {
            ks_syncstats *q = ks_session_stats(s);
            for (int d = 0; d < ks_session_device_count(s); d++)
                r->files[file_of[ks_session_rig_index(s, d)]].drift_ppm = ks_syncstats_device(q, d)->drift_vs_ref_ppm;
        }
        ks_session_close(s);
    }
    ks_source_close(&src);
    return st;
}

/* Whether depth and colour centres are known (see depth_offset_centres): the convention is known
 * and, under the seed convention for a master or subordinate, the colour exposure too. */
static bool centres_known(const ks_align_file *f)
{
    if (!strcmp(f->timestamps, ks_ts_convention_name(KS_TS_MID_EXPOSURE)))
        return true;
    if (strcmp(f->timestamps, ks_ts_convention_name(KS_TS_SEED)))
        return false;
    return f->sync_mode == KS_SYNC_STANDALONE || f->color_exposure_us > 0;
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
        const double dd = depth_delay_eff(f);
        f->depth_offset_centres = centres_known(f);
        ks_ts_convention conv = KS_TS_MID_EXPOSURE;
        if (f->depth_offset_centres)
            ks_ts_convention_parse(f->timestamps, &conv);
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
            /* the depth offset as syncstats measures it: the convention's part of depth ts - colour ts
             * comes from the one definition of it (kinsync/timing.h) */
            if (fr->has_color && fr->has_depth)
                wf_add(&dep, (double)fr->depth_ts_us - (double)fr->color_ts_us - dd -
                                 (f->depth_offset_centres
                                      ? ks_ts_depth_minus_color_residual_us(conv, f->sync_mode,
                                                                            (double)fr->color_exposure_us,
                                                                            (double)fr->depth_exposure_us)
                                      : 0.0));
            if (ri < 0)
                continue;
            const ks_align_frame *rf = &ref->frames[ri];
            if (fr->has_color != rf->has_color)
                continue;
            wf_add(&skew, fr->key_us - rf->key_us);
        }
        wf_out(&skew, &f->skew_us);
        wf_out(&dep, &f->depth_offset_us);
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

/* The ragged start and stop (see trimmed_leading): keeps the sets from the last member's first
 * frame to the first member's last frame. Nothing is trimmed when some member has no frame or the
 * members never overlap (no complete set: the caller reports the take as a failure). */
static void trim_edges(ks_align_result *r)
{
    size_t lo = 0, hi = r->set_count;
    for (int i = 0; i < r->file_count; i++) {
        if (!r->files[i].member)
            continue;
        size_t first = r->set_count, last = 0;
        for (size_t k = 0; k < r->set_count; k++)
            if (r->sets[k].frame[i] >= 0) {
                if (first == r->set_count)
                    first = k;
                last = k;
            }
        if (first == r->set_count)
            return;
        if (first > lo)
            lo = first;
        if (last + 1 < hi)
            hi = last + 1;
    }
    if (lo >= hi)
        return;
    for (size_t k = 0; k < r->set_count; k++)
        if (k < lo || k >= hi)
            free(r->sets[k].frame);
    memmove(r->sets, r->sets + lo, (hi - lo) * sizeof *r->sets);
    r->trimmed_leading = lo;
    r->trimmed_trailing = r->set_count - hi;
    r->set_count = hi - lo;
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
    if (st == KS_OK)
        st = run_session(r, opts, err);
    if (st != KS_OK) {
        ks_align_free(r);
        return st;
    }
    if (!(opts && opts->keep_edge_sets))
        trim_edges(r);
    statistics(r);
    *out = r;
    return KS_OK;
}
