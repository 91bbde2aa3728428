/* The view's HTTP server (kinsync/view.h): libmicrohttpd in thread-per-connection mode, the page's
 * embedded assets, libjs-three from the system, JSON/JPEG/binary reads, Server-Sent Events, and the
 * POST-only, token-checked control requests. Publishers swap reference-counted blobs under `mu`;
 * HTTP threads hold `mu` only to take a reference, so no client can ever hold up the session loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "kinsync/view.h"
#include "view/view_internal.h"

#define LOG_KEEP 200
#define MAX_BODY 4096
#define MAX_SSE_CLIENTS 8
#define CMD_QUEUE 16
#define ARRIVALS 64

typedef struct blob {
    atomic_int ref;
    size_t n;
    uint64_t seq;
    unsigned char data[];
} blob;

static blob *blob_new(const void *data, size_t n, uint64_t seq)
{
    blob *b = malloc(sizeof *b + n + 1);
    if (!b)
        return NULL;
    atomic_init(&b->ref, 1);
    b->n = n;
    b->seq = seq;
    if (n)
        memcpy(b->data, data, n);
    b->data[n] = 0;
    return b;
}

static blob *blob_ref(blob *b)
{
    if (b)
        atomic_fetch_add(&b->ref, 1);
    return b;
}

static void blob_unref(blob *b)
{
    if (b && atomic_fetch_sub(&b->ref, 1) == 1)
        free(b);
}

typedef struct arrival {
    const void *cap;
    uint64_t t_ns;
} arrival;

struct ks_view {
    struct MHD_Daemon *daemon;
    int port;
    char token[65];
    char listen[64];
    bool any_host;
    bool read_only;
    char three_dir[512];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closing;
    uint64_t version;                      /* bumped by every publish (SSE wake-up) */
    blob *state;
    uint64_t state_ver;
    blob *preview[KS_MATCH_MAX_DEVICES][3];
    uint64_t preview_seq, preview_t_ns, preview_ver;
    uint64_t preview_offer_ns, preview_done_ns; /* the set handed to the sink's worker; its JPEGs in place */
    blob *cloud;
    char *log[LOG_KEEP];
    uint64_t log_count;
    ks_view_command cmds[CMD_QUEUE];
    int cmd_head, cmd_count;
    int sse_clients;
    atomic_int watchers;                   /* open event streams (ks_view_watched) */
    atomic_uint_fast64_t last_api_ns;      /* CLOCK_MONOTONIC of the last /api/ request; 0: none */
    ks_view_counters counters;
    pthread_mutex_t arr_mu;
    arrival arr[KS_MATCH_MAX_DEVICES][ARRIVALS];
    int arr_next[KS_MATCH_MAX_DEVICES];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ks_view_options_init(ks_view_options *o)
{
    memset(o, 0, sizeof *o);
}

/* ---------------------------------------------------------------------------------------------
 * Responses */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned code, const char *type, const void *data, size_t n)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                            "connect-src 'self'; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON error body: {"error": "..."} (the message is ours, never the request's text). */
static enum MHD_Result send_error(ks_view *v, struct MHD_Connection *c, unsigned code, const char *msg)
{
    char body[512];
    snprintf(body, sizeof body, "{\"error\": \"%s\"}\n", msg);
    pthread_mutex_lock(&v->mu);
    if (code == 403)
        v->counters.refused++;
    else
        v->counters.bad_requests++;
    pthread_mutex_unlock(&v->mu);
    return send_buf(c, code, "application/json", body, strlen(body));
}

static enum MHD_Result send_blob(ks_view *v, struct MHD_Connection *c, blob **slot, const char *type)
{
    pthread_mutex_lock(&v->mu);
    blob *b = blob_ref(*slot);
    pthread_mutex_unlock(&v->mu);
    if (!b)
        return send_error(v, c, 404, "nothing published yet");
    enum MHD_Result r = send_buf(c, 200, type, b->data, b->n);
    blob_unref(b);
    return r;
}

static enum MHD_Result send_file(ks_view *v, struct MHD_Connection *c, const char *path, const char *type)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return send_error(v, c, 404, "not installed: the 3D view needs Debian's libjs-three (apt-get install libjs-three)");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n > 0 && n < (64l << 20) ? malloc((size_t)n) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return send_error(v, c, 404, "cannot read the libjs-three file");
    }
    fclose(f);
    struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=3600");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Server-Sent Events */

typedef struct sse {
    ks_view *v;
    uint64_t seen_version, state_ver, preview_ver, cloud_seq, log_sent;
    char *buf;
    size_t len, off, cap;
    bool started;
} sse;

static bool sse_append(sse *s, const char *text, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *nb = realloc(s->buf, cap);
        if (!nb)
            return false;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = 0;
    return true;
}

static void sse_event(sse *s, const char *event, const char *data)
{
    char head[64];
    snprintf(head, sizeof head, "event: %s\ndata: ", event);
    sse_append(s, head, strlen(head));
    sse_append(s, data, strlen(data));
    sse_append(s, "\n\n", 2);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse *s = cls;
    ks_view *v = s->v;
    if (s->off >= s->len) {
        s->off = s->len = 0;
        blob *state = NULL;
        char *logs[LOG_KEEP];
        int nlogs = 0;
        char preview[160] = "", cloud[96] = "";
        pthread_mutex_lock(&v->mu);
        if (s->started && v->version == s->seen_version && !v->closing) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 10;
            while (v->version == s->seen_version && !v->closing)
                if (pthread_cond_timedwait(&v->cv, &v->mu, &until) == ETIMEDOUT)
                    break;
        }
        if (v->closing) {
            pthread_mutex_unlock(&v->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        s->seen_version = v->version;
        if (v->log_count - s->log_sent > LOG_KEEP)
            s->log_sent = v->log_count - LOG_KEEP;
        for (; s->log_sent < v->log_count; s->log_sent++)
            logs[nlogs++] = strdup(v->log[s->log_sent % LOG_KEEP]);
        if (v->state && v->state_ver != s->state_ver) {
            if (s->state_ver && v->state_ver > s->state_ver + 1)
                v->counters.sse_events_skipped += v->state_ver - s->state_ver - 1;
            state = blob_ref(v->state);
            s->state_ver = v->state_ver;
        }
        if (v->preview_ver != s->preview_ver) {
            snprintf(preview, sizeof preview, "{\"seq\": %llu, \"t_ns\": %llu, \"offer_ns\": %llu, \"done_ns\": %llu}",
                     (unsigned long long)v->preview_seq, (unsigned long long)v->preview_t_ns,
                     (unsigned long long)v->preview_offer_ns, (unsigned long long)v->preview_done_ns);
            s->preview_ver = v->preview_ver;
        }
        if (v->cloud && v->cloud->seq != s->cloud_seq) {
            s->cloud_seq = v->cloud->seq;
            snprintf(cloud, sizeof cloud, "{\"seq\": %llu, \"bytes\": %zu}", (unsigned long long)v->cloud->seq,
                     v->cloud->n);
        }
        pthread_mutex_unlock(&v->mu);
        if (!s->started) {
            sse_append(s, "retry: 1000\n\n", 13);
            s->started = true;
        }
        for (int i = 0; i < nlogs; i++) {
            if (logs[i])
                sse_event(s, "log", logs[i]);
            free(logs[i]);
        }
        if (state)
            sse_event(s, "state", (const char *)state->data);
        blob_unref(state);
        if (preview[0])
            sse_event(s, "preview", preview);
        if (cloud[0])
            sse_event(s, "cloud", cloud);
        if (s->len == 0)
            sse_append(s, ": keep-alive\n\n", 14);
        pthread_mutex_lock(&v->mu);
        v->counters.sse_events_sent++;
        pthread_mutex_unlock(&v->mu);
    }
    size_t n = s->len - s->off;
    if (n > max)
        n = max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse *s = cls;
    atomic_fetch_sub(&s->v->watchers, 1);
    pthread_mutex_lock(&s->v->mu);
    s->v->sse_clients--;
    pthread_mutex_unlock(&s->v->mu);
    free(s->buf);
    free(s);
}

static enum MHD_Result start_sse(ks_view *v, struct MHD_Connection *c)
{
    pthread_mutex_lock(&v->mu);
    bool full = v->sse_clients >= MAX_SSE_CLIENTS;
    if (!full) {
        v->sse_clients++;
        v->counters.sse_clients++;
    }
    pthread_mutex_unlock(&v->mu);
    if (full)
        return send_error(v, c, 503, "too many event streams open; close a tab");
    sse *s = calloc(1, sizeof *s);
    if (!s) {
        pthread_mutex_lock(&v->mu);
        v->sse_clients--;
        pthread_mutex_unlock(&v->mu);
        return MHD_NO;
    }
    s->v = v;
    atomic_fetch_add(&v->watchers, 1); /* undone by sse_free */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
    if (!r) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Requests */

typedef struct request {
    size_t body;
} request;

static bool host_allowed(const ks_view *v, const char *host)
{
    if (!host)
        return false;
    if (v->any_host)
        return true;
    char want[96];
    const char *names[] = {"127.0.0.1", "localhost", v->listen};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(want, sizeof want, "%s:%d", names[i], v->port);
        if (!strcmp(host, want))
            return true;
    }
    return false;
}

static bool token_ok(const ks_view *v, const char *given)
{
    size_t n = strlen(v->token);
    if (!given || strlen(given) != n)
        return false;
    return sodium_memcmp(given, v->token, n) == 0;
}

static bool take_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static enum MHD_Result control(ks_view *v, struct MHD_Connection *c, const char *action)
{
    if (v->read_only)
        return send_error(v, c, 403, "this view is read-only (started with --read-only)");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (origin) {
        char want[160];
        snprintf(want, sizeof want, "http://%s", host ? host : "");
        if (strcmp(origin, want))
            return send_error(v, c, 403, "cross-origin control request refused");
    }
    if (!token_ok(v, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Kinsync-Token")))
        return send_error(v, c, 403, "missing or wrong token: use the address printed by kinsync view (?token=...)");
    ks_view_command cmd;
    memset(&cmd, 0, sizeof cmd);
    if (!strcmp(action, "start") || !strcmp(action, "stop")) {
        snprintf(cmd.action, sizeof cmd.action, "%s", action);
    } else if (!strcmp(action, "record")) {
        const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
        const char *secs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");
        if (!name || !take_name_ok(name))
            return send_error(v, c, 400, "record needs name=TAKE (1-63 of A-Z a-z 0-9 . _ -, not starting with .)");
        char *end = NULL;
        double s = secs ? strtod(secs, &end) : 0;
        if (!secs || *end || !(s > 0) || s > 3600)
            return send_error(v, c, 400, "record needs seconds=N with 0 < N <= 3600");
        snprintf(cmd.action, sizeof cmd.action, "record");
        snprintf(cmd.name, sizeof cmd.name, "%s", name);
        cmd.seconds = s;
    } else if (!strcmp(action, "seek")) {
        const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "t");
        char *end = NULL;
        double x = t ? strtod(t, &end) : -1;
        if (!t || end == t || *end || !(x >= 0) || x > 1e6)
            return send_error(v, c, 400, "seek needs t=SECONDS from the start of the recordings (0 or more)");
        snprintf(cmd.action, sizeof cmd.action, "seek");
        cmd.seconds = x;
    } else {
        return send_error(v, c, 404, "unknown control action (start, stop, record, seek)");
    }
    pthread_mutex_lock(&v->mu);
    bool full = v->cmd_count >= CMD_QUEUE;
    if (!full) {
        v->cmds[(v->cmd_head + v->cmd_count) % CMD_QUEUE] = cmd;
        v->cmd_count++;
    }
    pthread_mutex_unlock(&v->mu);
    if (full)
        return send_error(v, c, 503, "too many control requests waiting");
    const char *ok = "{\"accepted\": true}\n";
    return send_buf(c, 202, "application/json", ok, strlen(ok));
}

static const ks_view_asset *find_asset(const char *url)
{
    if (!strcmp(url, "/"))
        url = "/index.html";
    for (int i = 0; i < ks_view_asset_count; i++)
        if (!strcmp(ks_view_assets[i].path, url))
            return &ks_view_assets[i];
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    ks_view *v = cls;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) { /* bodies are not used; count them to refuse big ones */
        rq->body += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&v->mu);
    v->counters.requests++;
    pthread_mutex_unlock(&v->mu);
    if (rq->body > MAX_BODY)
        return send_error(v, c, 413, "request body too large");
    if (!host_allowed(v, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
        return send_error(v, c, 403, "Host header not allowed (open the address kinsync view printed)");
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strncmp(url, "/api/", 5))
        atomic_store(&v->last_api_ns, now_ns());
    if (!strncmp(url, "/api/control/", 13)) {
        if (strcmp(method, "POST"))
            return send_error(v, c, 405, "control requests are POST only");
        return control(v, c, url + 13);
    }
    if (!get)
        return send_error(v, c, 405, "method not allowed");
    if (!strcmp(url, "/api/events"))
        return start_sse(v, c);
    if (!strcmp(url, "/api/state"))
        return send_blob(v, c, &v->state, "application/json");
    if (!strcmp(url, "/api/cloud.bin"))
        return send_blob(v, c, &v->cloud, "application/octet-stream");
    if (!strncmp(url, "/api/preview/", 13)) {
        /* /api/preview/D/KIND.jpg with KIND color|depth|ir */
        const char *p = url + 13;
        char *end;
        long d = strtol(p, &end, 10);
        static const char *kinds[] = {"/color.jpg", "/depth.jpg", "/ir.jpg"};
        if (end == p || d < 0 || d >= KS_MATCH_MAX_DEVICES)
            return send_error(v, c, 404, "no such device");
        for (int k = 0; k < 3; k++)
            if (!strcmp(end, kinds[k]))
                return send_blob(v, c, &v->preview[d][k], "image/jpeg");
        return send_error(v, c, 404, "no such preview (color.jpg, depth.jpg, ir.jpg)");
    }
    if (!strcmp(url, "/three/three.min.js") || !strcmp(url, "/three/OrbitControls.js")) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", v->three_dir,
                 url[7] == 't' ? "three.min.js" : "examples/js/controls/OrbitControls.js");
        return send_file(v, c, path, "text/javascript; charset=utf-8");
    }
    const ks_view_asset *a = find_asset(url);
    if (!a)
        return send_error(v, c, 404, "not found");
    return send_buf(c, 200, a->type, a->data, a->size);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Life cycle */

typedef struct daemon_start {
    ks_view *v;
    struct sockaddr_in *sa;
    int port;
    unsigned maxc;
    struct MHD_Daemon *daemon;
    int err;
    int nice; /* the starter's nice value: its listen and connection threads inherit it */
} daemon_start;

static void *start_daemon(void *arg)
{
    daemon_start *ds = arg;
    ds->nice = ks_view_thread_lower(NULL);
    errno = 0;
    ds->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                  (uint16_t)ds->port, NULL, NULL, handle, ds->v, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)ds->sa, MHD_OPTION_CONNECTION_LIMIT, ds->maxc,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, ds->maxc, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, completed, ds->v, MHD_OPTION_END);
    ds->err = errno;
    return NULL;
}

ks_status ks_view_create(const ks_view_options *opt, ks_view **out, ks_error *err)
{
    *out = NULL;
    ks_view_options defaults;
    if (!opt) {
        ks_view_options_init(&defaults);
        opt = &defaults;
    }
    if (opt->port < 0 || opt->port > 65535)
        return ks_error_set(err, KS_EINVAL, "port %d is out of range (0..65535)", opt->port);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt->port);
    const char *listen = opt->listen ? opt->listen : "127.0.0.1";
    if (inet_pton(AF_INET, listen, &sa.sin_addr) != 1)
        return ks_error_set(err, KS_EINVAL, "--listen '%s' is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)", listen);
    if (opt->token && (strlen(opt->token) < 16 || strlen(opt->token) > 64))
        return ks_error_set(err, KS_EINVAL, "the token must have 16 to 64 characters");
    if (sodium_init() < 0)
        return ks_error_set(err, KS_EIO, "libsodium failed to initialise (no random source)");
    ks_view *v = calloc(1, sizeof *v);
    if (!v)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    pthread_mutex_init(&v->arr_mu, NULL);
    atomic_init(&v->watchers, 0);
    atomic_init(&v->last_api_ns, 0);
    snprintf(v->listen, sizeof v->listen, "%s", listen);
    v->any_host = !strcmp(listen, "0.0.0.0");
    v->read_only = opt->read_only;
    snprintf(v->three_dir, sizeof v->three_dir, "%s", opt->three_dir ? opt->three_dir : "/usr/share/javascript/three");
    if (opt->token) {
        snprintf(v->token, sizeof v->token, "%s", opt->token);
    } else {
        unsigned char rnd[16];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(v->token, sizeof v->token, rnd, sizeof rnd);
    }
    /* started from a thread that lowered itself first: the listen thread and every connection
     * thread inherit its priority (below the session's threads, view_internal.h) */
    daemon_start ds = {.v = v, .sa = &sa, .port = opt->port,
                       .maxc = opt->max_connections > 0 ? (unsigned)opt->max_connections : 32};
    pthread_t starter;
    if (pthread_create(&starter, NULL, start_daemon, &ds) == 0)
        pthread_join(starter, NULL);
    else
        start_daemon(&ds); /* no thread to spare: the server at the caller's priority */
    v->daemon = ds.daemon;
    if (!v->daemon) {
        int e = ds.err;
        ks_view_destroy(v);
        return ks_error_set(err, KS_EIO, "cannot serve on %s:%d: %s (another program on that port? try --port 0)",
                            listen, opt->port, e ? strerror(e) : "libmicrohttpd refused");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(v->daemon, MHD_DAEMON_INFO_BIND_PORT);
    v->port = info ? info->port : opt->port;
    *out = v;
    return KS_OK;
}

void ks_view_destroy(ks_view *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->mu);
    v->closing = true;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    if (v->daemon)
        MHD_stop_daemon(v->daemon);
    blob_unref(v->state);
    blob_unref(v->cloud);
    for (int d = 0; d < KS_MATCH_MAX_DEVICES; d++)
        for (int k = 0; k < 3; k++)
            blob_unref(v->preview[d][k]);
    for (int i = 0; i < LOG_KEEP; i++)
        free(v->log[i]);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->arr_mu);
    free(v);
}

int ks_view_port(const ks_view *v)
{
    return v ? v->port : 0;
}

const char *ks_view_token(const ks_view *v)
{
    return v ? v->token : "";
}

void ks_view_url(const ks_view *v, char *buf, size_t n)
{
    snprintf(buf, n, "http://%s:%d/?token=%s", v->any_host ? "127.0.0.1" : v->listen, v->port, v->token);
}

/* ---------------------------------------------------------------------------------------------
 * Publishing */

static void swap_blob(ks_view *v, blob **slot, blob *b)
{
    pthread_mutex_lock(&v->mu);
    blob *old = *slot;
    *slot = b;
    v->version++;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    blob_unref(old);
}

void ks_view_publish_state(ks_view *v, const char *json)
{
    blob *b = blob_new(json, strlen(json), 0);
    if (!b)
        return;
    pthread_mutex_lock(&v->mu);
    blob *old = v->state;
    v->state = b;
    v->state_ver++;
    v->version++;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    blob_unref(old);
}

void ks_view_publish_log(ks_view *v, const char *line)
{
    /* the SSE data must be one line: JSON-quote it */
    size_t n = strlen(line);
    char *q = malloc(n * 6 + 3);
    if (!q)
        return;
    char *p = q;
    *p++ = '"';
    for (const unsigned char *s = (const unsigned char *)line; *s; s++) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
            *p++ = (char)*s;
        } else if (*s < 0x20) {
            p += sprintf(p, "\\u%04x", *s);
        } else {
            *p++ = (char)*s;
        }
    }
    *p++ = '"';
    *p = 0;
    pthread_mutex_lock(&v->mu);
    char **slot = &v->log[v->log_count % LOG_KEEP];
    char *old = *slot;
    *slot = q;
    v->log_count++;
    v->version++;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    free(old);
}

void ks_view_publish_preview(ks_view *v, int device, int kind, const uint8_t *jpeg, size_t n)
{
    if (device < 0 || device >= KS_MATCH_MAX_DEVICES || kind < 0 || kind > 2)
        return;
    blob *b = blob_new(jpeg, n, 0);
    if (!b)
        return;
    pthread_mutex_lock(&v->mu);
    blob *old = v->preview[device][kind];
    v->preview[device][kind] = b;
    v->counters.previews_published++;
    pthread_mutex_unlock(&v->mu);
    blob_unref(old);
}

void ks_view_publish_preview_done(ks_view *v, uint64_t seq, uint64_t t_ns)
{
    ks_view_publish_preview_done_at(v, seq, t_ns, 0);
}

void ks_view_publish_preview_done_at(ks_view *v, uint64_t seq, uint64_t t_ns, uint64_t offer_ns)
{
    uint64_t now = now_ns();
    pthread_mutex_lock(&v->mu);
    v->preview_seq = seq;
    v->preview_t_ns = t_ns;
    v->preview_offer_ns = offer_ns;
    v->preview_done_ns = now;
    v->preview_ver++;
    v->version++;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
}

void ks_view_publish_cloud(ks_view *v, const void *data, size_t n, uint64_t seq)
{
    blob *b = blob_new(data, n, seq ? seq : 1);
    if (b)
        swap_blob(v, &v->cloud, b);
}

bool ks_view_poll_command(ks_view *v, ks_view_command *out)
{
    pthread_mutex_lock(&v->mu);
    bool any = v->cmd_count > 0;
    if (any) {
        *out = v->cmds[v->cmd_head];
        v->cmd_head = (v->cmd_head + 1) % CMD_QUEUE;
        v->cmd_count--;
    }
    pthread_mutex_unlock(&v->mu);
    return any;
}

void ks_view_get_counters(ks_view *v, ks_view_counters *c)
{
    pthread_mutex_lock(&v->mu);
    *c = v->counters;
    pthread_mutex_unlock(&v->mu);
}

bool ks_view_watched(ks_view *v)
{
    if (!v)
        return false;
    if (atomic_load(&v->watchers) > 0)
        return true;
    uint64_t last = atomic_load(&v->last_api_ns);
    return last && now_ns() - last < 3000000000ull;
}

void ks_view_on_capture(int device, ks_capture *cap, void *view)
{
    ks_view *v = view;
    if (!v || device < 0 || device >= KS_MATCH_MAX_DEVICES)
        return;
    uint64_t t = now_ns();
    pthread_mutex_lock(&v->arr_mu);
    v->arr[device][v->arr_next[device]] = (arrival){cap, t};
    v->arr_next[device] = (v->arr_next[device] + 1) % ARRIVALS;
    pthread_mutex_unlock(&v->arr_mu);
}

uint64_t ks_view_arrival_ns(ks_view *v, int device, const ks_capture *cap)
{
    if (!v || device < 0 || device >= KS_MATCH_MAX_DEVICES)
        return 0;
    uint64_t t = 0;
    pthread_mutex_lock(&v->arr_mu);
    for (int i = 0; i < ARRIVALS; i++) /* newest match wins: walk back from the last written */
        if (v->arr[device][(v->arr_next[device] + ARRIVALS - 1 - i) % ARRIVALS].cap == cap) {
            t = v->arr[device][(v->arr_next[device] + ARRIVALS - 1 - i) % ARRIVALS].t_ns;
            break;
        }
    pthread_mutex_unlock(&v->arr_mu);
    return t;
}

bool ks_view_capture_superseded(ks_view *v, int device, const ks_capture *cap)
{
    if (!v || !cap || device < 0 || device >= KS_MATCH_MAX_DEVICES)
        return false;
    bool newer = false;
    pthread_mutex_lock(&v->arr_mu);
    for (int i = 0; i < ARRIVALS; i++) { /* from the newest arrival back */
        const arrival *a = &v->arr[device][(v->arr_next[device] + ARRIVALS - 1 - i) % ARRIVALS];
        if (!a->cap)
            break;
        if (a->cap == cap) {
            newer = i > 0;
            break;
        }
    }
    pthread_mutex_unlock(&v->arr_mu);
    return newer;
}
