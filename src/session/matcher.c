/* The frame-set matcher (kinsync/matcher.h). Per device a small sorted ring of pending frames; a set
 * is decided from the smallest pending key (the anchor) as soon as every device has answered for
 * it. Everything is bounded and nothing waits. */
#include "kinsync/matcher.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    ks_match_frame *f; /* ring of cap */
    int head, count;
    double last_key;   /* key of the newest frame ever pushed, -INF before */
    double prev_key;   /* key of the previous frame (for gap counting) */
    bool gone;
} pending;

struct ks_matcher {
    ks_matcher_config cfg;
    pending dev[KS_MATCH_MAX_DEVICES];
    ks_frame_set *out;   /* ring of max_output */
    int out_head, out_count;
    double emitted_key;  /* anchor of the last emitted set, -INF before */
    bool flushing;
    uint64_t next_index;
    ks_matcher_stats st;
};

void ks_matcher_config_init(ks_matcher_config *cfg, int n, ks_fps fps, ks_ts_convention conv)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->device_count = n;
    cfg->convention = conv;
    cfg->period_us = ks_frame_period_exact_us(fps);
    for (int i = 0; i < KS_MATCH_MAX_DEVICES; i++)
        cfg->devices[i].mode = KS_SYNC_SUBORDINATE;
    if (n > 0)
        cfg->devices[0].mode = KS_SYNC_MASTER;
}

void ks_matcher_key(const ks_matcher_config *cfg, ks_match_frame *f)
{
    const ks_match_device *d = &cfg->devices[f->device];
    f->color_start_us = NAN;
    f->depth_center_us = NAN;
    /* the convention is applied by the timing functions only (KS_TS_AUTO reads as mid-exposure) */
    if (f->has_color)
        f->color_start_us = ks_ts_color_start_us(cfg->convention, d->mode, (double)f->color_ts_us,
                                                 (double)f->color_exposure_us) + d->ts_offset_us;
    if (f->has_depth)
        f->depth_center_us = ks_ts_depth_center_us(cfg->convention, d->mode, (double)f->depth_ts_us,
                                                   (double)f->depth_exposure_us) + d->ts_offset_us;
    if (f->has_color)
        f->key_us = f->color_start_us - d->color_offset_us;
    else
        f->key_us = f->depth_center_us - d->depth_delay_us - d->color_offset_us - d->color_exposure_us / 2.0;
}

ks_status ks_matcher_create(const ks_matcher_config *cfg, ks_matcher **out, ks_error *err)
{
    if (!cfg || !out)
        return ks_error_set(err, KS_EINVAL, "ks_matcher_create: missing argument");
    if (cfg->device_count < 1 || cfg->device_count > KS_MATCH_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "matcher: device_count %d is outside 1..%d", cfg->device_count,
                            KS_MATCH_MAX_DEVICES);
    if (cfg->reference < 0 || cfg->reference >= cfg->device_count)
        return ks_error_set(err, KS_EINVAL, "matcher: reference device %d is not one of the %d devices",
                            cfg->reference, cfg->device_count);
    if (!(cfg->period_us > 0))
        return ks_error_set(err, KS_EINVAL, "matcher: frame period must be positive; pass the rig's fps");
    ks_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return ks_error_set(err, KS_ENOMEM, "matcher: out of memory");
    m->cfg = *cfg;
    if (m->cfg.tolerance_us <= 0)
        m->cfg.tolerance_us = m->cfg.period_us / 4;
    if (m->cfg.wait_us <= 0)
        m->cfg.wait_us = 3 * m->cfg.period_us;
    if (m->cfg.max_pending <= 0)
        m->cfg.max_pending = 16;
    if (m->cfg.max_output <= 0)
        m->cfg.max_output = 64;
    m->emitted_key = -INFINITY;
    m->out = calloc((size_t)m->cfg.max_output, sizeof *m->out);
    bool ok = m->out != NULL;
    for (int i = 0; i < cfg->device_count && ok; i++) {
        m->dev[i].f = calloc((size_t)m->cfg.max_pending, sizeof(ks_match_frame));
        m->dev[i].last_key = m->dev[i].prev_key = -INFINITY;
        ok = m->dev[i].f != NULL;
    }
    if (!ok) {
        ks_matcher_free(m);
        return ks_error_set(err, KS_ENOMEM, "matcher: out of memory");
    }
    *out = m;
    return KS_OK;
}

static void release(ks_matcher *m, ks_match_frame *f)
{
    if (m->cfg.release && f->user)
        m->cfg.release(f->user, m->cfg.release_ctx);
    f->user = NULL;
}

void ks_matcher_free(ks_matcher *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->cfg.device_count; i++) {
        pending *p = &m->dev[i];
        if (!p->f)
            continue;
        for (int k = 0; k < p->count; k++)
            release(m, &p->f[(p->head + k) % m->cfg.max_pending]);
        free(p->f);
    }
    if (m->out)
        for (int s = 0; s < m->out_count; s++) {
            ks_frame_set *set = &m->out[(m->out_head + s) % m->cfg.max_output];
            for (int d = 0; d < m->cfg.device_count; d++)
                if (set->present_mask & (1u << d))
                    release(m, &set->frames[d]);
        }
    free(m->out);
    free(m);
}

static ks_match_frame *head(ks_matcher *m, int d)
{
    pending *p = &m->dev[d];
    return p->count ? &p->f[p->head] : NULL;
}

static void pop_head(ks_matcher *m, int d)
{
    pending *p = &m->dev[d];
    p->head = (p->head + 1) % m->cfg.max_pending;
    p->count--;
}

static ks_frame_set *out_slot(ks_matcher *m)
{
    if (m->out_count == m->cfg.max_output) { /* nobody pops: drop the oldest set */
        ks_frame_set *old = &m->out[m->out_head];
        for (int d = 0; d < m->cfg.device_count; d++)
            if (old->present_mask & (1u << d))
                release(m, &old->frames[d]);
        m->out_head = (m->out_head + 1) % m->cfg.max_output;
        m->out_count--;
        m->st.sets_dropped++;
    }
    ks_frame_set *s = &m->out[(m->out_head + m->out_count) % m->cfg.max_output];
    m->out_count++;
    return s;
}

/* Tries to emit one set. force: undecided devices count as missing. Returns true if one went out. */
static bool emit_one(ks_matcher *m, bool force)
{
    const int n = m->cfg.device_count;
    const double tol = m->cfg.tolerance_us;
    double anchor = INFINITY;
    for (int d = 0; d < n; d++) {
        ks_match_frame *h = head(m, d);
        if (h && h->key_us < anchor)
            anchor = h->key_us;
    }
    if (anchor == INFINITY)
        return false;
    /* waited long enough: some device holds two frames beyond anchor + wait (two, so that one
     * garbage timestamp cannot make the matcher stop waiting for everybody) */
    bool waited = false;
    for (int d = 0; d < n && !waited; d++) {
        pending *p = &m->dev[d];
        waited = p->count >= 2 && p->f[(p->head + p->count - 2) % m->cfg.max_pending].key_us > anchor + m->cfg.wait_us;
    }
    uint32_t present = 0, missing = 0;
    for (int d = 0; d < n; d++) {
        ks_match_frame *h = head(m, d);
        if (h && h->key_us <= anchor + tol)
            present |= 1u << d;
        else if (h || m->dev[d].gone || m->dev[d].last_key > anchor + tol)
            missing |= 1u << d;
        else if (force || m->flushing || waited)
            missing |= 1u << d;
        else
            return false; /* still waiting for this device */
    }
    ks_frame_set *s = out_slot(m);
    memset(s, 0, offsetof(ks_frame_set, frames));
    s->index = m->next_index++;
    s->present_mask = present;
    s->missing_mask = missing;
    s->key_us = anchor;
    for (int d = 0; d < n; d++) {
        if (!(present & (1u << d)))
            continue;
        s->frames[d] = *head(m, d);
        pop_head(m, d);
        s->present++;
        if (d == m->cfg.reference)
            s->key_us = s->frames[d].key_us;
    }
    s->complete = missing == 0;
    for (int d = 0; d < n; d++)
        if (missing & (1u << d))
            m->st.missing[d]++;
    m->st.sets_out++;
    if (s->complete)
        m->st.sets_complete++;
    else
        m->st.sets_partial++;
    if (anchor > m->emitted_key)
        m->emitted_key = anchor;
    return true;
}

static void emit_ready(ks_matcher *m)
{
    while (emit_one(m, false))
        ;
}

ks_status ks_matcher_push(ks_matcher *m, const ks_match_frame *in, ks_error *err)
{
    if (!m || !in)
        return ks_error_set(err, KS_EINVAL, "ks_matcher_push: missing argument");
    if (in->device < 0 || in->device >= m->cfg.device_count)
        return ks_error_set(err, KS_EINVAL, "matcher: frame of device %d, but the matcher has %d devices",
                            in->device, m->cfg.device_count);
    if (!in->has_color && !in->has_depth)
        return ks_error_set(err, KS_EINVAL, "matcher: frame of device %d has neither colour nor depth",
                            in->device);
    ks_match_frame f = *in;
    ks_matcher_key(&m->cfg, &f);
    pending *p = &m->dev[f.device];
    m->st.frames_in[f.device]++;
    if (p->gone || f.key_us <= m->emitted_key + m->cfg.tolerance_us) {
        m->st.late[f.device]++;
        release(m, &f);
        return KS_OK;
    }
    /* gaps in the device's own sequence */
    if (p->last_key > -INFINITY && f.key_us > p->last_key) {
        double frames = (f.key_us - p->last_key) / m->cfg.period_us;
        if (frames > 1.5)
            m->st.gaps[f.device] += (uint64_t)llround(frames) - 1;
    }
    while (p->count == m->cfg.max_pending) {
        if (!emit_one(m, true))
            break;
        m->st.forced++;
    }
    if (p->count == m->cfg.max_pending) { /* cannot happen: forcing always frees the anchor device */
        m->st.late[f.device]++;
        release(m, &f);
        return KS_OK;
    }
    /* insert sorted (frames of one device normally arrive in order) */
    int pos = p->count;
    while (pos > 0 && p->f[(p->head + pos - 1) % m->cfg.max_pending].key_us > f.key_us) {
        p->f[(p->head + pos) % m->cfg.max_pending] = p->f[(p->head + pos - 1) % m->cfg.max_pending];
        pos--;
    }
    p->f[(p->head + pos) % m->cfg.max_pending] = f;
    p->count++;
    if (p->count > m->st.max_pending_seen)
        m->st.max_pending_seen = p->count;
    p->prev_key = p->last_key;
    if (f.key_us > p->last_key)
        p->last_key = f.key_us;
    emit_ready(m);
    return KS_OK;
}

void ks_matcher_mark_gone(ks_matcher *m, int device)
{
    if (!m || device < 0 || device >= m->cfg.device_count)
        return;
    m->dev[device].gone = true;
    emit_ready(m);
}

void ks_matcher_flush(ks_matcher *m)
{
    if (!m)
        return;
    m->flushing = true;
    emit_ready(m);
    m->flushing = false;
}

bool ks_matcher_pop(ks_matcher *m, ks_frame_set *out)
{
    if (!m || !m->out_count)
        return false;
    ks_frame_set *s = &m->out[m->out_head];
    memcpy(out, s, sizeof *out);
    m->out_head = (m->out_head + 1) % m->cfg.max_output;
    m->out_count--;
    return true;
}

int ks_matcher_ready(const ks_matcher *m)
{
    return m ? m->out_count : 0;
}

int ks_matcher_held(const ks_matcher *m)
{
    if (!m)
        return 0;
    int n = 0;
    for (int d = 0; d < m->cfg.device_count; d++)
        n += m->dev[d].count;
    for (int s = 0; s < m->out_count; s++)
        n += m->out[(m->out_head + s) % m->cfg.max_output].present;
    return n;
}

void ks_matcher_get_stats(const ks_matcher *m, ks_matcher_stats *out)
{
    if (m && out)
        *out = m->st;
}

static int by_key(const void *a, const void *b)
{
    const ks_match_frame *x = a, *y = b;
    double kx = x->key_us, ky = y->key_us;
    return kx < ky ? -1 : kx > ky ? 1 : x->device - y->device;
}

size_t ks_match_frames(const ks_matcher_config *cfg, ks_match_frame *frames, size_t n,
                       void (*fn)(const ks_frame_set *set, void *ctx), void *ctx, ks_error *err)
{
    ks_matcher *m;
    if (ks_matcher_create(cfg, &m, err) != KS_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (frames[i].device >= 0 && frames[i].device < cfg->device_count &&
            (frames[i].has_color || frames[i].has_depth))
            ks_matcher_key(cfg, &frames[i]);
    qsort(frames, n, sizeof *frames, by_key);
    size_t sets = 0;
    ks_frame_set *set = malloc(sizeof *set);
    if (!set) {
        ks_matcher_free(m);
        ks_error_set(err, KS_ENOMEM, "matcher: out of memory");
        return 0;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i < n)
            ks_matcher_push(m, &frames[i], NULL);
        else
            ks_matcher_flush(m);
        while (ks_matcher_pop(m, set)) {
            if (fn)
                fn(set, ctx);
            sets++;
        }
    }
    free(set);
    ks_matcher_free(m);
    return sets;
}
