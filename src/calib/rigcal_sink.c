/* Calibration views from session frame sets (kinsync/rigcal_sink.h). Board detection, nearly all
 * of the time, runs on `threads` threads over the devices of a set, each with its own detector;
 * the detections then go to the collector in device order, so the result does not depend on the
 * thread count. The depth kept for the
 * cross-check is a bounded ring that halves itself (keep every other set, take every other new
 * one) when full, so a take of any length keeps an even spread of at most depth_sets sets. */
#include "kinsync/rigcal_sink.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KS_RIGCAL_MAX_THREADS 16

typedef struct kept {
    int frame;                               /* calibration frame set */
    ks_image *depth[KS_MATCH_MAX_DEVICES];   /* references, NULL when absent */
} kept;

struct ks_rigcal_sink {
    const ks_board *board;
    ks_rigcal_sink_options opt;
    int n;
    ks_rigcal_device dev[KS_MATCH_MAX_DEVICES];
    ks_intrinsics depth_in[KS_MATCH_MAX_DEVICES];   /* for the cross-check; width 0 = no depth */
    int images[KS_MATCH_MAX_DEVICES], with_board[KS_MATCH_MAX_DEVICES];
    ks_rigcal_collector *col;
    int threads;
    ks_detector *det[KS_RIGCAL_MAX_THREADS];   /* one per thread */
    bool started;           /* a complete set was seen */
    uint64_t offered;       /* sets from the first complete one */
    int used;
    kept *keep;
    int kept_n;
    int keep_stride, keep_seen;
};

ks_status ks_rigcal_sink_create_devices(const ks_frameset_device *devices, int n, const ks_board *b,
                                        const ks_rigcal_sink_options *opt, ks_rigcal_sink **out, ks_error *err)
{
    if (!devices || n < 1 || n > KS_MATCH_MAX_DEVICES || !b || !out)
        return ks_error_set(err, KS_EINVAL, "ks_rigcal_sink_create: devices (1 to %d), board and output are required",
                            KS_MATCH_MAX_DEVICES);
    ks_rigcal_sink *k = calloc(1, sizeof *k);
    if (!k)
        return ks_error_set(err, KS_ENOMEM, "out of memory collecting calibration views");
    k->board = b;
    if (opt)
        k->opt = *opt;
    if (k->opt.max_views <= 0)
        k->opt.max_views = 120;
    if (k->opt.depth_sets <= 0)
        k->opt.depth_sets = 24;
    if (k->opt.min_corners <= 0)
        k->opt.min_corners = 8;
    if (k->opt.step <= 0)
        k->opt.step = k->opt.expected_sets ? (int)((k->opt.expected_sets + (uint64_t)k->opt.max_views - 1) /
                                                   (uint64_t)k->opt.max_views)
                                           : 1;
    if (k->opt.step < 1)
        k->opt.step = 1;
    k->threads = k->opt.threads;
    if (k->threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        k->threads = cpus > 0 ? (int)cpus : 1;
    }
    if (k->threads > KS_RIGCAL_MAX_THREADS)
        k->threads = KS_RIGCAL_MAX_THREADS;
    k->keep_stride = 1;
    k->n = n;
    if (k->threads > k->n)
        k->threads = k->n > 0 ? k->n : 1;
    k->keep = calloc((size_t)k->opt.depth_sets, sizeof *k->keep);
    ks_status st = k->keep ? ks_rigcal_collector_create(b, NULL, &k->col, err)
                           : ks_error_set(err, KS_ENOMEM, "out of memory collecting calibration views");
    for (int t = 0; t < k->threads && st == KS_OK; t++)
        st = ks_detector_create(b, NULL, &k->det[t], err);
    for (int i = 0; i < k->n && st == KS_OK; i++) {
        const ks_frameset_device *dv = &devices[i];
        const ks_device_config *cfg = &dv->config;
        bool depth = cfg->depth_mode != KS_DEPTH_OFF;
        if (k->opt.use_ir ? !depth : cfg->color_resolution == KS_COLOR_OFF) {
            st = ks_error_set(err, KS_EINVAL, "device %s does not stream its %s camera; %s", dv->name,
                              k->opt.use_ir ? "depth/IR" : "colour",
                              k->opt.use_ir ? "give it a depth mode" : "search the IR images (--camera ir)");
            break;
        }
        ks_calibration cal;
        ks_status cs = dv->calibration_json
                           ? ks_calibration_from_json(dv->calibration_json, dv->calibration_len,
                                                      depth ? cfg->depth_mode : KS_DEPTH_NFOV_UNBINNED,
                                                      cfg->color_resolution != KS_COLOR_OFF ? cfg->color_resolution
                                                                                            : KS_COLOR_720P,
                                                      &cal, err)
                           : ks_error_set(err, KS_ENOTFOUND, "no factory calibration");
        if (cs != KS_OK) {
            st = ks_error_prefix(err, cs, "device %s: calibration", dv->name);
            break;
        }
        ks_rigcal_device *rd = &k->dev[i];
        snprintf(rd->serial, sizeof rd->serial, "%s", dv->serial);
        rd->intrinsics = k->opt.use_ir ? cal.depth : cal.color;
        rd->depth_to_color = cal.depth_to_color;
        if (k->opt.use_ir)
            ks_extrinsics_identity(&rd->depth_to_camera);
        else
            rd->depth_to_camera = cal.depth_to_color;
        if (depth && cfg->depth_mode != KS_DEPTH_PASSIVE_IR)
            k->depth_in[i] = cal.depth;
    }
    if (st != KS_OK) {
        ks_rigcal_sink_destroy(k);
        return st;
    }
    *out = k;
    return KS_OK;
}

ks_status ks_rigcal_sink_create(ks_session *s, const ks_board *b, const ks_rigcal_sink_options *opt,
                                ks_rigcal_sink **out, ks_error *err)
{
    if (!s)
        return ks_error_set(err, KS_EINVAL, "ks_rigcal_sink_create: session, board and output are required");
    ks_frameset_device dv[KS_MATCH_MAX_DEVICES];
    memset(dv, 0, sizeof dv);
    const int n = ks_session_device_count(s);
    ks_status st = KS_OK, cs;
    for (int i = 0; i < n && st == KS_OK; i++) {
        ks_device *d = ks_session_device(s, i);
        const ks_device_config *cfg = ks_device_running_config(d);
        snprintf(dv[i].name, sizeof dv[i].name, "%s", ks_session_device_name(s, i));
        snprintf(dv[i].serial, sizeof dv[i].serial, "%s", ks_device_info_get(d)->serial);
        if (!cfg)
            st = ks_error_set(err, KS_ESTATE, "device %s is not running; start the session first", dv[i].name);
        else
            dv[i].config = *cfg;
        if (st == KS_OK &&
            (cs = ks_device_get_calibration_json(d, &dv[i].calibration_json, &dv[i].calibration_len, err)) != KS_OK)
            st = ks_error_prefix(err, cs, "device %s: calibration", dv[i].name);
    }
    if (st == KS_OK)
        st = ks_rigcal_sink_create_devices(dv, n, b, opt, out, err);
    for (int i = 0; i < n; i++)
        free(dv[i].calibration_json);
    return st;
}

static void kept_free(kept *e)
{
    for (int d = 0; d < KS_MATCH_MAX_DEVICES; d++)
        ks_image_release(e->depth[d]);
    memset(e, 0, sizeof *e);
}

void ks_rigcal_sink_destroy(ks_rigcal_sink *k)
{
    if (!k)
        return;
    for (int i = 0; k->keep && i < k->kept_n; i++)
        kept_free(&k->keep[i]);
    free(k->keep);
    ks_rigcal_collector_destroy(k->col);
    for (int t = 0; t < KS_RIGCAL_MAX_THREADS; t++)
        ks_detector_destroy(k->det[t]);
    free(k);
}

/* Keeps the depth of calibration frame set `frame` when it falls on the ring's stride. */
static void keep_depth(ks_rigcal_sink *k, const ks_session_set *set, int frame)
{
    if (k->keep_seen++ % k->keep_stride)
        return;
    if (k->kept_n == k->opt.depth_sets) { /* full: keep every other, take every other from now on */
        int m = 0;
        for (int i = 0; i < k->kept_n; i++)
            if (i % 2 == 0)
                k->keep[m++] = k->keep[i];
            else
                kept_free(&k->keep[i]);
        for (int i = m; i < k->kept_n; i++)
            memset(&k->keep[i], 0, sizeof k->keep[i]);
        k->kept_n = m;
        k->keep_stride *= 2;
    }
    kept *e = &k->keep[k->kept_n++];
    e->frame = frame;
    for (int d = 0; d < k->n; d++) {
        const ks_capture *c = (set->set.present_mask & (1u << d)) ? set->set.frames[d].user : NULL;
        if (c && c->depth && k->depth_in[d].width)
            e->depth[d] = ks_image_ref(c->depth);
    }
}

/* One frame set's detections: thread t searches the images of devices t, t + T, ... */
typedef struct detect_job {
    ks_rigcal_sink *k;
    int t;
    const ks_image *img[KS_MATCH_MAX_DEVICES];
    ks_detections det[KS_MATCH_MAX_DEVICES];
    ks_status st[KS_MATCH_MAX_DEVICES];
} detect_job;

typedef struct detect_arg {
    detect_job *job;
    int t;
} detect_arg;

static void *detect_share(void *arg)
{
    detect_arg *a = arg;
    detect_job *j = a->job;
    for (int d = a->t; d < j->k->n; d += j->k->threads) {
        if (!j->img[d])
            continue;
        ks_error e;
        j->st[d] = ks_detect_image(j->k->det[a->t], j->img[d], &j->det[d], &e);
    }
    return NULL;
}

ks_status ks_rigcal_sink_add(ks_rigcal_sink *k, const ks_session_set *set, ks_error *err)
{
    if (!k || !set)
        return ks_error_set(err, KS_EINVAL, "ks_rigcal_sink_add: sink and set are required");
    k->started |= set->set.complete;
    if (!k->started || k->offered++ % (uint64_t)k->opt.step)
        return KS_OK;
    const int frame = k->used++;
    detect_job *j = calloc(1, sizeof *j);
    if (!j)
        return ks_error_set(err, KS_ENOMEM, "out of memory collecting calibration views");
    j->k = k;
    int images = 0;
    for (int d = 0; d < k->n; d++) {
        const ks_capture *c = (set->set.present_mask & (1u << d)) ? set->set.frames[d].user : NULL;
        j->img[d] = c ? (k->opt.use_ir ? c->ir : c->color) : NULL;
        images += j->img[d] != NULL;
    }
    /* threads that could not start leave their share to this one */
    detect_arg args[KS_RIGCAL_MAX_THREADS];
    pthread_t th[KS_RIGCAL_MAX_THREADS];
    bool started[KS_RIGCAL_MAX_THREADS] = {false};
    int T = images > 1 ? k->threads : 1;
    for (int t = 0; t < k->threads; t++)
        args[t] = (detect_arg){j, t};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, detect_share, &args[t]) == 0;
    for (int t = 0; t < k->threads; t++)
        if (!started[t])
            detect_share(&args[t]);
    for (int t = 1; t < T; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    int seen = 0;
    for (int d = 0; d < k->n; d++) {
        if (!j->img[d])
            continue;
        int found = 0;
        ks_error e;
        if (j->st[d] == KS_OK && /* a damaged frame: skipped */
            ks_rigcal_collector_add_detections(k->col, d, frame, &j->det[d], &e) == KS_OK) {
            found = j->det[d].count;
            k->with_board[d] += found >= k->opt.min_corners;
        }
        ks_detections_free(&j->det[d]);
        seen += found >= k->opt.min_corners;
        k->images[d]++;
        if (k->opt.progress)
            k->opt.progress(k->opt.progress_ctx, k->used, d, k->images[d], k->with_board[d]);
    }
    free(j);
    if (seen)
        keep_depth(k, set, frame);
    return KS_OK;
}

ks_status ks_rigcal_sink_collect(ks_rigcal_sink *k, ks_session *s, ks_error *err)
{
    for (;;) {
        ks_session_set set;
        ks_status st = ks_session_next(s, &set, 2000, err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st == KS_EEOF)
            return KS_OK;
        if (st != KS_OK)
            return st;
        st = ks_rigcal_sink_add(k, &set, err);
        ks_session_set_release(&set);
        if (st != KS_OK)
            return st;
    }
}

int ks_rigcal_sink_device_count(const ks_rigcal_sink *k)
{
    return k ? k->n : 0;
}

const ks_rigcal_device *ks_rigcal_sink_device(const ks_rigcal_sink *k, int d)
{
    return k && d >= 0 && d < k->n ? &k->dev[d] : NULL;
}

void ks_rigcal_sink_counts(const ks_rigcal_sink *k, int d, int *images, int *with_board)
{
    bool ok = k && d >= 0 && d < k->n;
    if (images)
        *images = ok ? k->images[d] : 0;
    if (with_board)
        *with_board = ok ? k->with_board[d] : 0;
}

int ks_rigcal_sink_sets_used(const ks_rigcal_sink *k)
{
    return k ? k->used : 0;
}

void ks_rigcal_sink_problem(const ks_rigcal_sink *k, ks_rigcal_problem *out)
{
    ks_rigcal_collector_problem(k->col, k->board, k->dev, k->n, out);
}

int ks_rigcal_sink_depth_check(ks_rigcal_sink *k, ks_rigcal_result *res)
{
    if (!k || !res)
        return 0;
    ks_depth_plane_stats acc[KS_MATCH_MAX_DEVICES];
    memset(acc, 0, sizeof acc);
    int checked = 0;
    for (int i = 0; i < k->kept_n; i++) {
        const kept *e = &k->keep[i];
        if (e->frame >= res->frame_count || !res->board_valid[e->frame])
            continue;
        checked++;
        for (int d = 0; d < k->n && d < res->device_count; d++) {
            const ks_image *img = e->depth[d];
            const ks_intrinsics *in = &k->depth_in[d];
            if (!img || img->format != KS_FORMAT_DEPTH16 || img->width != in->width || img->height != in->height)
                continue;
            ks_extrinsics rig_to_depth, b2d;
            ks_extrinsics_invert(&res->devices[d].depth_to_rig, &rig_to_depth);
            ks_extrinsics_compose(&res->board_to_rig[e->frame], &rig_to_depth, &b2d);
            ks_error err;
            ks_depth_board_check(in, img->data, img->stride ? img->stride : img->width * 2, k->board, &b2d, 50.0, 4,
                                 &acc[d], &err);
        }
    }
    for (int d = 0; d < k->n && d < res->device_count; d++)
        if (k->depth_in[d].width)
            ks_rigcal_set_depth_check(res, d, &acc[d]);
    return checked;
}
