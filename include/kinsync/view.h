/* kinsync/view.h: the live rig in a browser (`kinsync view`, docs/view.md).
 *
 * Two parts:
 *  - ks_view: an embedded HTTP server (libmicrohttpd, one thread per connection) serving one page,
 *    its assets, the latest state as JSON, preview JPEGs, the fused point cloud (binary) and a
 *    Server-Sent Events stream. Whatever the session loop publishes is copied into reference-counted
 *    blobs under a mutex that HTTP threads hold only to take a reference: a slow or vanished browser
 *    never blocks the publisher (it simply misses intermediate states).
 *  - ks_view_sink: one more consumer of a ks_session. ks_view_sink_offer() is called with every
 *    frame set from the ks_session_next loop and returns at once; a few times per second it hands
 *    the set (one reference per capture) to its own worker thread that encodes the previews
 *    (colour, colour-mapped depth, IR; downscaled JPEG) and the decimated point cloud. When the
 *    worker is still busy the preview is skipped (previews are dropped, frames never are).
 *
 * Security: binds 127.0.0.1 unless told otherwise; control requests are POST only and need the
 * token (header X-Kinsync-Token), the Host header must name the server (DNS rebinding), an Origin
 * header must match the Host; read_only refuses every control request. */
#ifndef KINSYNC_VIEW_H
#define KINSYNC_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/fuse.h"
#include "kinsync/session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_view ks_view;

typedef struct ks_view_options {
    const char *listen;        /* IPv4 address to bind; NULL: 127.0.0.1 */
    int port;                  /* 0: any free port (ks_view_port says which) */
    bool read_only;            /* refuse every control request (403) */
    const char *token;         /* NULL: 32 random hex characters */
    const char *three_dir;     /* libjs-three files; NULL: /usr/share/javascript/three */
    int max_connections;       /* 0: 32 */
} ks_view_options;

void ks_view_options_init(ks_view_options *o);

ks_status ks_view_create(const ks_view_options *opt, ks_view **out, ks_error *err);
void ks_view_destroy(ks_view *v);
int ks_view_port(const ks_view *v);
const char *ks_view_token(const ks_view *v);
/* "http://127.0.0.1:PORT/?token=TOKEN" (the address a browser opens). */
void ks_view_url(const ks_view *v, char *buf, size_t n);

/* Publishing (any thread; copies; never waits for a client). */
void ks_view_publish_state(ks_view *v, const char *json);      /* SSE event "state", GET /api/state */
void ks_view_publish_log(ks_view *v, const char *line);        /* SSE event "log" (last 200 kept) */
/* kind 0 colour, 1 depth, 2 IR. t_ns: CLOCK_MONOTONIC of the frame's arrival (latency figures). */
void ks_view_publish_preview(ks_view *v, int device, int kind, const uint8_t *jpeg, size_t n);
/* One event "preview" telling clients that every preview of the set `seq` is in place. */
void ks_view_publish_preview_done(ks_view *v, uint64_t seq, uint64_t t_ns);
/* The same with the moment (CLOCK_MONOTONIC) the set was handed to the worker: the event carries
 * t_ns (capture), offer_ns and done_ns (now), so a client sees where its latency comes from. */
void ks_view_publish_preview_done_at(ks_view *v, uint64_t seq, uint64_t t_ns, uint64_t offer_ns);
void ks_view_publish_cloud(ks_view *v, const void *data, size_t n, uint64_t seq);

/* Control requests accepted by the server, in order (non-blocking; false when none). */
typedef struct ks_view_command {
    char action[16];           /* "start", "stop", "record", "seek" */
    char name[64];             /* record: take name ([A-Za-z0-9._-]) */
    double seconds;            /* record: duration; seek: seconds from the start of the recordings */
} ks_view_command;
bool ks_view_poll_command(ks_view *v, ks_view_command *out);

typedef struct ks_view_counters {
    uint64_t requests, bad_requests, refused, sse_clients, sse_events_sent, sse_events_skipped;
    uint64_t previews_published;
} ks_view_counters;
void ks_view_get_counters(ks_view *v, ks_view_counters *c);
/* True while someone watches: an event stream is open, or an /api/ request came in the last
 * 3 seconds (a page, or a client polling with curl). The sink encodes nothing otherwise. */
bool ks_view_watched(ks_view *v);

/* ---- previews (also used by the sink's worker) ---- */

/* JPEG of an image downscaled to at most max_width pixels wide (colour MJPG/BGRA32, DEPTH16 with a
 * colour map over [near_mm, far_mm], IR16 grey). *jpeg is malloc'd. */
ks_status ks_view_encode_preview(const ks_image *img, int max_width, int near_mm, int far_mm, uint8_t **jpeg,
                                 size_t *n, ks_error *err);
/* The same with handles kept between images (one JPEG compressor, one MJPEG decoder, buffers): one
 * encoder per thread. `decoded` (may be NULL): the MJPG colour image img already decoded to BGRA by
 * the caller (at any scale), used instead of decoding it again. *jpeg points into the encoder,
 * valid until its next use. */
typedef struct ks_view_encoder ks_view_encoder;
ks_status ks_view_encoder_create(ks_view_encoder **out, ks_error *err);
void ks_view_encoder_destroy(ks_view_encoder *e);
ks_status ks_view_encoder_preview(ks_view_encoder *e, const ks_image *img, const ks_color_image *decoded,
                                  int max_width, int near_mm, int far_mm, const uint8_t **jpeg, size_t *n,
                                  ks_error *err);
/* The size of the encoder's last preview. */
void ks_view_encoder_last_size(const ks_view_encoder *e, int *w, int *h);
/* The MJPEG decode scale (1, 2, 4, 8) for a colour image `width` wide previewed at most max_width
 * wide: libjpeg-turbo's DCT scaling straight to thumbnail size (720P at 192: 1/8, 160x90). */
int ks_view_color_denom(int width, int max_width);
/* The colour of depth z (mm) on the page's colour map; 0 (no depth) is black. */
void ks_view_depth_rgb(uint16_t z, int near_mm, int far_mm, uint8_t rgb[3]);

/* ---- the session sink ---- */

typedef struct ks_view_sink ks_view_sink;

typedef struct ks_view_sink_options {
    double previews_per_second;  /* 0: 5 */
    int preview_width;           /* 0: 192 (depth, IR, BGRA colour; MJPEG colour is served as captured) */
    int cloud_step;              /* depth pixels per cloud point along each axis; 0: 4 */
    int max_points;              /* 0: 60000 */
    const ks_rig_pose *poses;    /* rig calibration (--calibration); NULL: devices side by side */
    size_t pose_count;
    bool device_colors;          /* cloud coloured by device (a palette) instead of by the colour camera */
    double clouds_per_second;    /* the 3D view's point cloud, from a previewed set; 0: 2 (the page fetches
                                    at most two a second); at most previews_per_second */
} ks_view_sink_options;
void ks_view_sink_options_init(ks_view_sink_options *o);

/* Reads each device's calibration (for the cloud) from the session's devices. */
ks_status ks_view_sink_create(ks_view *v, ks_session *s, const ks_view_sink_options *opt, ks_view_sink **out,
                              ks_error *err);
/* Loop thread: returns at once. Hands the set to the worker when it is idle, a preview is due and
 * someone watches (ks_view_watched: no page or API client, no encoding at all). A due set whose
 * every capture already has a newer one (ks_view_capture_superseded: the loop is behind and a
 * fresher set is queued) is passed over for the next, for up to one preview period. Returns true
 * when it was taken. */
bool ks_view_sink_offer(ks_view_sink *k, const ks_session_set *set);
/* The same, taken even when nobody watches (the paused set of a seek stays on the page). */
bool ks_view_sink_offer_always(ks_view_sink *k, const ks_session_set *set);
/* Worker counters: previews encoded, skipped (worker busy), cloud points of the last set. */
void ks_view_sink_counters(ks_view_sink *k, uint64_t *encoded, uint64_t *skipped, size_t *points);
typedef struct ks_view_sink_stats {
    uint64_t encoded;            /* frame sets previewed */
    uint64_t skipped;            /* due but the worker was busy */
    uint64_t unwatched;          /* due but nobody watched: nothing decoded or encoded */
    uint64_t stale;              /* due but passed over: every device already had a newer capture (the
                                    loop was behind; a fresher set follows) */
    uint64_t clouds;             /* point clouds made */
    uint64_t color_decodes;      /* MJPEG colour images decoded: only for the sets that get a cloud */
    uint64_t color_decoded_sets; /* ... the sets they belong to (at most clouds) */
    uint64_t color_passthrough;  /* colour previews published as the capture's own JPEG (MJPEG) */
    size_t points;               /* of the last cloud */
    int thumb_w[3], thumb_h[3];  /* the last previews' sizes: colour (MJPEG: the capture's), depth, IR */
    int color_denom;             /* the scale the last MJPEG colour image was decoded at for a cloud (8: 1/8) */
    double cpu_color_s;          /* worker thread CPU: colour decoding (MJPEG: for the clouds only) */
    double cpu_previews_s;       /* ... depth/IR mapping and JPEG encoding */
    double cpu_cloud_s;          /* ... the point cloud */
    int tables;                  /* the cloud's unprojection tables built (by the worker, for its first cloud) */
    double cpu_tables_s;         /* worker thread CPU building them (not the session loop's) */
    int worker_nice, helper_nice; /* the worker's and its helper's nice values: 10 above the thread that
                                     made the sink (at most 19), below the session's capture threads */
    bool have_helper;            /* the helper thread runs (two devices or more) */
} ks_view_sink_stats;
void ks_view_sink_get_stats(ks_view_sink *k, ks_view_sink_stats *out);
/* Waits for the worker and frees it (the view stays). */
void ks_view_sink_destroy(ks_view_sink *k);

/* For ks_session_options.on_capture with user = the ks_view: remembers in the capture thread when
 * each capture arrived (CLOCK_MONOTONIC), so the previews carry their capture-to-page latency. */
void ks_view_on_capture(int device, ks_capture *cap, void *view);
/* The arrival time remembered for a capture (0 when unknown). */
uint64_t ks_view_arrival_ns(ks_view *v, int device, const ks_capture *cap);
/* True when a newer capture of the device has arrived since cap (false when cap is unknown). */
bool ks_view_capture_superseded(ks_view *v, int device, const ks_capture *cap);

/* ---- the start sequence as it happens ---- */

/* what: "open", "start" (cameras started; cfg says master/subordinate), "start-failed", "stop",
 * "close". Called in the thread that calls the device (the session's). */
typedef void (*ks_view_trace_fn)(const char *serial, const char *what, const ks_device_config *cfg, void *user);
/* A backend that forwards every call to `inner` (which stays the caller's: free it after the
 * trace backend) and reports the device life cycle to fn. */
ks_status ks_view_trace_backend(ks_backend *inner, ks_view_trace_fn fn, void *user, ks_backend **out, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
