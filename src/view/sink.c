/* The view's session sink (kinsync/view.h): takes a frame set from the session loop a few times per
 * second without waiting (one reference per capture), and encodes previews and the decimated point
 * cloud on its own thread. A set that arrives while the worker is busy is not previewed; while
 * nobody watches (ks_view_watched) nothing is taken, decoded or encoded at all.
 *
 * Per previewed set the worker (with a helper thread taking every other device) publishes an MJPEG
 * colour image as the colour preview byte for byte (the capture's own JPEG, copied into the view's
 * blob while the worker still holds the capture: no decode, no re-encode; the page scales it with
 * CSS). The colour is decoded only for the sets that get a point cloud (clouds_per_second of the
 * previewed sets), where the cloud needs colours, with libjpeg-turbo's DCT scaling straight to
 * thumbnail size (720P: 1/8, 160x90). BGRA colour is downsampled and encoded as before. Depth and IR
 * are downsampled before mapping; the "preview" event goes out as soon as the JPEGs are in place,
 * and the point cloud is made after it. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinsync/calibration.h"
#include "kinsync/view.h"
#include "view/view_internal.h"

/* What one preview thread did with its share of a set's devices. */
typedef struct part {
    int tw[3], th[3], denom;
    int decodes, passed; /* MJPEG colour images decoded / published as the capture's own JPEG */
    double c_color, c_prev;
} part;

struct ks_view_sink {
    ks_view *v;
    ks_view_sink_options opt;
    int n;
    /* the calibrations are read in ks_view_sink_create (the caller's thread: the device's); the
     * cloud's unprojection tables (~40 ms of CPU per NFOV device) are built by the worker, at its
     * low priority, for the first set that gets a cloud (so not at all while nobody watches), never
     * in the session loop: built in ks_view_sink_create they held the loop right after the start
     * long enough for the session's queues to overflow (issue 18) */
    bool have_cal[KS_MATCH_MAX_DEVICES];
    bool have_table[KS_MATCH_MAX_DEVICES]; /* worker's */
    ks_unproject_table table[KS_MATCH_MAX_DEVICES];
    ks_calibration cal[KS_MATCH_MAX_DEVICES]; /* valid where have_cal */
    bool tables_tried;                       /* worker's */
    int tables, worker_nice, helper_nice;    /* under mu */
    double cpu_tables;
    ks_mjpeg_decoder *dec[KS_MATCH_MAX_DEVICES]; /* worker's: each colour image decoded once per set */
    ks_view_encoder *enc;                          /* worker's: one JPEG compressor for every preview */
    /* the helper: a second preview thread taking every other device of the set (half the wall
     * time on two cores; on a loaded machine two threads' share of the CPU) */
    ks_view_encoder *henc;
    pthread_t helper;
    bool have_helper;
    pthread_mutex_t hmu;
    pthread_cond_t hcv;
    bool hgo, hquit;                 /* under hmu: a share is waiting for the helper / it must end */
    ks_capture **hcaps;              /* the share's set (the worker's arrays, valid while hgo) */
    ks_color_image *hci;
    bool *hhave;
    part hpart;
    bool want_ci[KS_MATCH_MAX_DEVICES]; /* worker-written before a share: the set's cloud needs device d's colours */
    bool have_pose[KS_MATCH_MAX_DEVICES];
    ks_extrinsics pose[KS_MATCH_MAX_DEVICES];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit, busy;
    ks_capture *job[KS_MATCH_MAX_DEVICES];
    uint64_t job_seq, job_t_ns, job_offer_ns;
    double last_offer;
    uint64_t encoded, skipped, unwatched, stale, clouds, seq;
    uint64_t color_decodes, color_decoded_sets, color_passthrough;
    double cloud_credit; /* worker's: a cloud is due when it reaches 1 */
    int thumb_w[3], thumb_h[3], color_denom;
    double cpu_color, cpu_previews, cpu_cloud;
    size_t points;
    bool calibrated;
    /* worker buffers */
    float *xyz;
    uint8_t *rgb;
    size_t cap;
    float *cx, *cy, *cz; /* one device's points in its depth camera, for coloring */
    uint8_t *crgb;
    size_t ccap;
    bool colored; /* the last cloud has camera colours */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ks_view_sink_options_init(ks_view_sink_options *o)
{
    memset(o, 0, sizeof *o);
}

/* A colour per device for the cloud (and the page's legend: web/view.js uses the same list). */
static const uint8_t palette[8][3] = {{0x4e, 0xa8, 0xff}, {0xff, 0x9f, 0x43}, {0x5c, 0xd8, 0x7a}, {0xf2, 0x6d, 0x8f},
                                      {0xb4, 0x8c, 0xff}, {0xf5, 0xd7, 0x4a}, {0x45, 0xd6, 0xd0}, {0xe0, 0xe0, 0xe0}};

/* The colour image of device d's capture, decoded once for the set: the colour preview and the
 * cloud's colours both. BGRA as is; MJPEG decoded by libjpeg-turbo's DCT scaling straight to the
 * thumbnail (ks_view_color_denom: 1/8 for 720P), which is plenty for the cloud too (one point per
 * 4x4 depth pixels, at most max_points/devices points per device). */
static bool decode_color(ks_view_sink *k, int d, const ks_image *im, ks_color_image *out)
{
    if (!im || !im->data)
        return false;
    if (im->format == KS_FORMAT_BGRA32) {
        size_t stride = im->stride ? (size_t)im->stride : (size_t)im->width * 4;
        if (im->width <= 0 || im->height <= 0 || im->size < stride * (size_t)(im->height - 1) + (size_t)im->width * 4)
            return false;
        *out = (ks_color_image){.width = im->width, .height = im->height, .stride = stride, .bgra = im->data,
                                .scale_denom = 1};
        return true;
    }
    if (im->format != KS_FORMAT_MJPG)
        return false;
    if (!k->dec[d] && ks_mjpeg_decoder_create(&k->dec[d], NULL) != KS_OK)
        return false;
    return ks_mjpeg_decode(k->dec[d], im->data, im->size, ks_view_color_denom(im->width, k->opt.preview_width), out,
                           NULL) == KS_OK;
}

static double cpu_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Room for n points of one device in the coloring buffers. */
static bool color_room(ks_view_sink *k, size_t n)
{
    if (n <= k->ccap)
        return true;
    float *x = realloc(k->cx, n * sizeof *x), *y = x ? realloc(k->cy, n * sizeof *y) : NULL;
    if (x)
        k->cx = x;
    if (y)
        k->cy = y;
    float *z = y ? realloc(k->cz, n * sizeof *z) : NULL;
    if (z)
        k->cz = z;
    uint8_t *c = z ? realloc(k->crgb, n * 3) : NULL;
    if (c)
        k->crgb = c;
    if (!c)
        return false;
    k->ccap = n;
    return true;
}

/* Binary cloud: "KSPC", u32 count, u32 devices, u32 flags (1: calibrated, rig frame; 2: coloured by
 * the colour cameras, else by device), then count*3 float32 (metres), then count*3 uint8 colours
 * (padded to 4 bytes). */
static void make_cloud(ks_view_sink *k, ks_capture **caps, const ks_color_image *cis, const bool *have_ci)
{
    bool any_camera_color = false;
    int step = k->opt.cloud_step;
    size_t total = 0;
    size_t per_dev_cap = (size_t)k->opt.max_points / (size_t)(k->n > 0 ? k->n : 1);
    for (int d = 0; d < k->n; d++) {
        ks_capture *c = caps[d];
        if (!c || !c->depth || !k->have_table[d])
            continue;
        const ks_unproject_table *t = &k->table[d];
        const ks_image *im = c->depth;
        if (im->width != t->width || im->height != t->height)
            continue;
        size_t stride = im->stride ? (size_t)im->stride / 2 : (size_t)im->width;
        int s = step;
        while ((size_t)(im->width / s) * (size_t)(im->height / s) > per_dev_cap * 2)
            s++;
        size_t need = total + (size_t)(im->width / s + 1) * (size_t)(im->height / s + 1);
        if (need > k->cap) {
            float *x = realloc(k->xyz, need * 3 * sizeof(float));
            if (!x)
                return;
            k->xyz = x;
            uint8_t *r = realloc(k->rgb, need * 3 + 4);
            if (!r)
                return;
            k->rgb = r;
            k->cap = need;
        }
        double offset = ((double)d - (k->n - 1) / 2.0) * 1500.0;
        const ks_color_image *ci = &cis[d];
        bool camera_color = !k->opt.device_colors && have_ci[d] && color_room(k, per_dev_cap);
        size_t kept = 0;
        for (int y = 0; y < im->height; y += s)
            for (int x = 0; x < im->width; x += s) {
                uint16_t z;
                memcpy(&z, im->data + ((size_t)y * stride + (size_t)x) * 2, 2);
                size_t i = (size_t)y * (size_t)t->width + (size_t)x;
                if (!z || isnan(t->x[i]) || kept >= per_dev_cap)
                    continue;
                double p[3] = {z * (double)t->x[i], z * (double)t->y[i], z}, q[3];
                if (camera_color) {
                    k->cx[kept] = (float)p[0];
                    k->cy[kept] = (float)p[1];
                    k->cz[kept] = (float)p[2];
                }
                if (k->have_pose[d]) {
                    ks_extrinsics_apply(&k->pose[d], p, q);
                } else { /* no rig calibration: each device in its own camera frame, side by side */
                    q[0] = p[0] + offset;
                    q[1] = p[1];
                    q[2] = p[2];
                }
                float *o = k->xyz + (total + kept) * 3;
                o[0] = (float)(q[0] / 1000);
                o[1] = (float)(q[1] / 1000);
                o[2] = (float)(q[2] / 1000);
                uint8_t *cc = k->rgb + (total + kept) * 3;
                const uint8_t *pc = palette[d % 8];
                double shade = 0.65 + 0.35 * (1 - fmin(1, fmax(0, (z - 500) / 4000.0)));
                for (int j = 0; j < 3; j++)
                    cc[j] = (uint8_t)(pc[j] * shade);
                kept++;
            }
        if (camera_color) { /* the points (depth camera) into the colour camera of the same capture */
            const uint8_t grey[3] = {128, 128, 128};
            ks_points_colorize(k->cx, k->cy, k->cz, kept, &k->cal[d].depth_to_color, &k->cal[d].color, ci, grey,
                               k->crgb);
            memcpy(k->rgb + total * 3, k->crgb, kept * 3);
            any_camera_color = true;
        }
        total += kept;
    }
    size_t rgb_bytes = (total * 3 + 3) & ~(size_t)3;
    size_t n = 16 + total * 12 + rgb_bytes;
    uint8_t *buf = calloc(1, n);
    if (!buf)
        return;
    uint32_t head[4] = {0, (uint32_t)total, (uint32_t)k->n,
                        (uint32_t)k->calibrated | (any_camera_color ? 2u : 0u)};
    memcpy(head, "KSPC", 4);
    memcpy(buf, head, 16);
    if (total) {
        memcpy(buf + 16, k->xyz, total * 12);
        memcpy(buf + 16 + total * 12, k->rgb, total * 3);
    }
    ks_view_publish_cloud(k->v, buf, n, k->job_seq);
    free(buf);
    pthread_mutex_lock(&k->mu);
    k->points = total;
    k->colored = any_camera_color;
    pthread_mutex_unlock(&k->mu);
}

/* Colour decode and the three previews of the devices first, first + stride, ... of the set. */
static void preview_devices(ks_view_sink *k, ks_view_encoder *enc, ks_capture **caps, ks_color_image *ci, bool *have_ci,
                            int first, int stride, part *r)
{
    memset(r, 0, sizeof *r);
    double t0 = cpu_thread();
    for (int d = first; d < k->n; d += stride) {
        if (!caps[d])
            continue;
        /* an MJPEG colour image is its own preview (the capture's JPEG as is); it is decoded only
         * when this set's cloud needs its colours (at thumbnail scale). Other colour formats are
         * read (BGRA: no copy) for the preview and the cloud alike. */
        const ks_image *cim = caps[d]->color;
        bool pass = cim && cim->format == KS_FORMAT_MJPG && cim->data && cim->size >= 4 && cim->data[0] == 0xFF &&
                    cim->data[1] == 0xD8;
        have_ci[d] = false;
        if (!pass || k->want_ci[d]) {
            have_ci[d] = decode_color(k, d, cim, &ci[d]);
            if (have_ci[d] && cim->format == KS_FORMAT_MJPG) {
                r->denom = ci[d].scale_denom;
                r->decodes++;
            }
        }
        double t1 = cpu_thread();
        r->c_color += t1 - t0;
        if (pass) { /* copied into the view's blob now: the capture goes back when the set is done */
            ks_view_publish_preview(k->v, d, 0, cim->data, cim->size);
            r->tw[0] = cim->width;
            r->th[0] = cim->height;
            r->passed++;
        }
        ks_image *imgs[3] = {caps[d]->color, caps[d]->depth, caps[d]->ir};
        for (int kind = pass ? 1 : 0; kind < 3; kind++) {
            const uint8_t *jpg = NULL;
            size_t len = 0;
            const ks_color_image *decoded = kind == 0 && have_ci[d] && imgs[0]->format == KS_FORMAT_MJPG ? &ci[d] : NULL;
            if (imgs[kind] && enc &&
                ks_view_encoder_preview(enc, imgs[kind], decoded, k->opt.preview_width, 500, 4500, &jpg, &len, NULL) ==
                    KS_OK) {
                ks_view_publish_preview(k->v, d, kind, jpg, len);
                ks_view_encoder_last_size(enc, &r->tw[kind], &r->th[kind]);
            }
        }
        t0 = cpu_thread();
        r->c_prev += t0 - t1;
    }
}

static void *helper(void *arg)
{
    ks_view_sink *k = arg;
    int nice = ks_view_thread_lower("ks-view-helper");
    pthread_mutex_lock(&k->mu);
    k->helper_nice = nice;
    pthread_mutex_unlock(&k->mu);
    pthread_mutex_lock(&k->hmu);
    for (;;) {
        while (!k->hquit && !k->hgo)
            pthread_cond_wait(&k->hcv, &k->hmu);
        if (!k->hgo)
            break;
        pthread_mutex_unlock(&k->hmu);
        part r;
        preview_devices(k, k->henc, k->hcaps, k->hci, k->hhave, 1, 2, &r);
        pthread_mutex_lock(&k->hmu);
        k->hpart = r;
        k->hgo = false;
        pthread_cond_broadcast(&k->hcv);
    }
    pthread_mutex_unlock(&k->hmu);
    return NULL;
}

/* The cloud's unprojection tables, on the worker at its low priority, for its first cloud, after
 * that set's preview event (the session loop does not wait: its offers return at once, sets due
 * meanwhile are skipped). */
static void build_tables(ks_view_sink *k)
{
    k->tables_tried = true;
    double t0 = cpu_thread();
    int built = 0;
    for (int d = 0; d < k->n; d++) {
        k->have_table[d] = k->have_cal[d] && ks_unproject_table_build(&k->cal[d].depth, &k->table[d], NULL) == KS_OK;
        built += k->have_table[d];
    }
    pthread_mutex_lock(&k->mu);
    k->tables = built;
    k->cpu_tables = cpu_thread() - t0;
    pthread_mutex_unlock(&k->mu);
}

static void *worker(void *arg)
{
    ks_view_sink *k = arg;
    int nice = ks_view_thread_lower("ks-view-worker");
    pthread_mutex_lock(&k->mu);
    k->worker_nice = nice;
    for (;;) {
        while (!k->quit && !k->busy)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->quit && !k->busy)
            break;
        ks_capture *caps[KS_MATCH_MAX_DEVICES];
        memcpy(caps, k->job, sizeof caps);
        uint64_t seq = k->job_seq, t_ns = k->job_t_ns, offer_ns = k->job_offer_ns;
        pthread_mutex_unlock(&k->mu);
        ks_color_image ci[KS_MATCH_MAX_DEVICES];
        bool have_ci[KS_MATCH_MAX_DEVICES] = {false};
        part mine, theirs;
        memset(&theirs, 0, sizeof theirs);
        /* does this set get a cloud? then (only then) its MJPEG colour is decoded, for the cloud */
        k->cloud_credit += k->opt.clouds_per_second / k->opt.previews_per_second;
        bool cloud = k->cloud_credit >= 1 - 1e-9;
        if (cloud)
            k->cloud_credit -= 1;
        for (int d = 0; d < k->n; d++)
            k->want_ci[d] = cloud && !k->opt.device_colors && k->have_cal[d] && caps[d] && caps[d]->depth;
        if (k->have_helper) { /* the odd devices to the helper, the even ones here */
            pthread_mutex_lock(&k->hmu);
            k->hcaps = caps;
            k->hci = ci;
            k->hhave = have_ci;
            k->hgo = true;
            pthread_cond_broadcast(&k->hcv);
            pthread_mutex_unlock(&k->hmu);
        }
        preview_devices(k, k->enc, caps, ci, have_ci, 0, k->have_helper ? 2 : 1, &mine);
        if (k->have_helper) {
            pthread_mutex_lock(&k->hmu);
            while (k->hgo)
                pthread_cond_wait(&k->hcv, &k->hmu);
            theirs = k->hpart;
            pthread_mutex_unlock(&k->hmu);
        }
        double c_cloud = 0, t0 = cpu_thread();
        /* the page hears of the set as soon as its JPEGs are in place: the cloud comes after */
        ks_view_publish_preview_done_at(k->v, seq, t_ns, offer_ns);
        if (cloud) {
            if (!k->tables_tried) { /* after the event: the first set's previews do not wait for them */
                build_tables(k);
                t0 = cpu_thread(); /* counted apart (cpu_tables_s) */
            }
            for (int d = 0; d < k->n; d++) /* the cloud takes camera colours where it has a table */
                have_ci[d] = have_ci[d] && k->want_ci[d];
            make_cloud(k, caps, ci, have_ci);
            c_cloud = cpu_thread() - t0;
        }
        for (int d = 0; d < k->n; d++)
            ks_capture_release(caps[d]);
        pthread_mutex_lock(&k->mu);
        memset(k->job, 0, sizeof k->job);
        k->encoded++;
        k->clouds += cloud;
        k->color_decodes += (uint64_t)(mine.decodes + theirs.decodes);
        k->color_decoded_sets += mine.decodes + theirs.decodes > 0;
        k->color_passthrough += (uint64_t)(mine.passed + theirs.passed);
        k->cpu_color += mine.c_color + theirs.c_color;
        k->cpu_previews += mine.c_prev + theirs.c_prev;
        k->cpu_cloud += c_cloud;
        int denom = mine.denom ? mine.denom : theirs.denom;
        if (denom)
            k->color_denom = denom;
        for (int i = 0; i < 3; i++) {
            const part *p = mine.tw[i] ? &mine : &theirs;
            if (p->tw[i]) {
                k->thumb_w[i] = p->tw[i];
                k->thumb_h[i] = p->th[i];
            }
        }
        k->busy = false;
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* Ends the helper thread (if it runs) and frees what it used. */
static void stop_helper(ks_view_sink *k)
{
    if (k->have_helper) {
        pthread_mutex_lock(&k->hmu);
        k->hquit = true;
        pthread_cond_broadcast(&k->hcv);
        pthread_mutex_unlock(&k->hmu);
        pthread_join(k->helper, NULL);
        k->have_helper = false;
    }
    ks_view_encoder_destroy(k->henc);
    k->henc = NULL;
    pthread_mutex_destroy(&k->hmu);
    pthread_cond_destroy(&k->hcv);
}

ks_status ks_view_sink_create(ks_view *v, ks_session *s, const ks_view_sink_options *opt, ks_view_sink **out,
                              ks_error *err)
{
    *out = NULL;
    ks_view_sink *k = calloc(1, sizeof *k);
    if (!k)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    if (opt)
        k->opt = *opt;
    if (!(k->opt.previews_per_second > 0))
        k->opt.previews_per_second = 5;
    if (k->opt.preview_width <= 0)
        k->opt.preview_width = 192;
    if (k->opt.cloud_step <= 0)
        k->opt.cloud_step = 4;
    if (k->opt.max_points <= 0)
        k->opt.max_points = 60000;
    if (!(k->opt.clouds_per_second > 0))
        k->opt.clouds_per_second = 2;
    if (k->opt.clouds_per_second > k->opt.previews_per_second)
        k->opt.clouds_per_second = k->opt.previews_per_second;
    /* the first previewed set makes a cloud */
    k->cloud_credit = 1 - k->opt.clouds_per_second / k->opt.previews_per_second;
    k->v = v;
    k->n = ks_session_device_count(s);
    for (int d = 0; d < k->n; d++) {
        ks_device *dev = ks_session_device(s, d);
        const ks_device_config *cfg = ks_device_running_config(dev);
        char *json = NULL;
        size_t len = 0;
        ks_calibration cal;
        if (cfg && cfg->depth_mode != KS_DEPTH_OFF &&
            ks_device_get_calibration_json(dev, &json, &len, NULL) == KS_OK &&
            ks_calibration_from_json(json, len, cfg->depth_mode, cfg->color_resolution, &cal, NULL) == KS_OK) {
            k->have_cal[d] = true;
            k->cal[d] = cal;
        }
        free(json);
        if (k->opt.poses) {
            const ks_rig_pose *p = ks_rig_pose_find(k->opt.poses, k->opt.pose_count, ks_device_info_get(dev)->serial);
            if (p) {
                k->pose[d] = p->depth_to_rig;
                k->have_pose[d] = true;
            }
        }
    }
    ks_status est = ks_view_encoder_create(&k->enc, err);
    if (est != KS_OK) {
        free(k);
        return est;
    }
    k->calibrated = k->opt.poses != NULL;
    k->opt.poses = NULL; /* not kept: the poses were copied */
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    pthread_mutex_init(&k->hmu, NULL);
    pthread_cond_init(&k->hcv, NULL);
    /* the helper thread, for two devices or more (without it the worker does every device) */
    if (k->n >= 2 && ks_view_encoder_create(&k->henc, NULL) == KS_OK)
        k->have_helper = pthread_create(&k->helper, NULL, helper, k) == 0;
    if (pthread_create(&k->thread, NULL, worker, k) != 0) {
        stop_helper(k);
        ks_view_encoder_destroy(k->enc);
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k);
        return ks_error_set(err, KS_ENOMEM, "cannot start the preview thread");
    }
    *out = k;
    return KS_OK;
}

static bool offer(ks_view_sink *k, const ks_session_set *set, bool always)
{
    double t = now_s();
    if (t - k->last_offer < 1.0 / k->opt.previews_per_second)
        return false;
    if (!always && !ks_view_watched(k->v)) { /* nobody would fetch them: no decoding, no encoding */
        pthread_mutex_lock(&k->mu);
        k->unwatched++;
        pthread_mutex_unlock(&k->mu);
        k->last_offer = t;
        return false;
    }
    if (!always && t - k->last_offer < 2.0 / k->opt.previews_per_second) {
        /* the loop is behind when every device of the set already delivered a newer capture: a
         * fresher set is queued, preview that one (its capture-to-page latency is the page's) */
        bool superseded = set->set.present_mask != 0;
        for (int d = 0; d < k->n && superseded; d++)
            if (set->set.present_mask & (1u << d))
                superseded = ks_view_capture_superseded(k->v, d, set->set.frames[d].user);
        if (superseded) {
            pthread_mutex_lock(&k->mu);
            k->stale++;
            pthread_mutex_unlock(&k->mu);
            return false;
        }
    }
    pthread_mutex_lock(&k->mu);
    bool busy = k->busy;
    if (busy) {
        k->skipped++;
    } else {
        uint64_t arrival = 0;
        for (int d = 0; d < k->n; d++) {
            ks_capture *c = (set->set.present_mask & (1u << d)) ? set->set.frames[d].user : NULL;
            k->job[d] = c ? ks_capture_ref(c) : NULL;
            uint64_t a = c ? ks_view_arrival_ns(k->v, d, c) : 0;
            if (a > arrival)
                arrival = a;
        }
        k->job_seq = ++k->seq;
        k->job_t_ns = arrival;
        k->job_offer_ns = (uint64_t)(t * 1e9);
        k->busy = true;
        /* the next preview falls due one period after this one was due (not after this set came:
         * sets come every frame period, so that would preview fewer than previews_per_second) */
        double period = 1.0 / k->opt.previews_per_second;
        k->last_offer = t - k->last_offer < 2 * period ? k->last_offer + period : t;
        pthread_cond_signal(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return !busy;
}

bool ks_view_sink_offer(ks_view_sink *k, const ks_session_set *set)
{
    return offer(k, set, false);
}

bool ks_view_sink_offer_always(ks_view_sink *k, const ks_session_set *set)
{
    return offer(k, set, true);
}

void ks_view_sink_get_stats(ks_view_sink *k, ks_view_sink_stats *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_lock(&k->mu);
    o->encoded = k->encoded;
    o->skipped = k->skipped;
    o->unwatched = k->unwatched;
    o->stale = k->stale;
    o->clouds = k->clouds;
    o->color_decodes = k->color_decodes;
    o->color_decoded_sets = k->color_decoded_sets;
    o->color_passthrough = k->color_passthrough;
    o->points = k->points;
    for (int i = 0; i < 3; i++) {
        o->thumb_w[i] = k->thumb_w[i];
        o->thumb_h[i] = k->thumb_h[i];
    }
    o->color_denom = k->color_denom;
    o->cpu_color_s = k->cpu_color;
    o->cpu_previews_s = k->cpu_previews;
    o->cpu_cloud_s = k->cpu_cloud;
    o->tables = k->tables;
    o->cpu_tables_s = k->cpu_tables;
    o->worker_nice = k->worker_nice;
    o->helper_nice = k->helper_nice;
    o->have_helper = k->have_helper;
    pthread_mutex_unlock(&k->mu);
}

void ks_view_sink_counters(ks_view_sink *k, uint64_t *encoded, uint64_t *skipped, size_t *points)
{
    pthread_mutex_lock(&k->mu);
    if (encoded)
        *encoded = k->encoded;
    if (skipped)
        *skipped = k->skipped;
    if (points)
        *points = k->points;
    pthread_mutex_unlock(&k->mu);
}

void ks_view_sink_destroy(ks_view_sink *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->quit = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    stop_helper(k);
    for (int d = 0; d < k->n; d++)
        if (k->have_table[d])
            ks_unproject_table_free(&k->table[d]);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->xyz);
    free(k->rgb);
    free(k->cx);
    free(k->cy);
    free(k->cz);
    free(k->crgb);
    for (int d = 0; d < KS_MATCH_MAX_DEVICES; d++)
        ks_mjpeg_decoder_destroy(k->dec[d]);
    ks_view_encoder_destroy(k->enc);
    free(k);
}
