/* The view's sink on a simulated rig (chain-3: three devices, 720P MJPG colour, NFOV unbinned depth,
 * virtual time): while nobody watches (no event stream open, no /api/ request in the last 3 s) it
 * takes no set and encodes nothing; with an event stream open it previews: the MJPEG colour served
 * as the capture's own JPEG (1280x720, byte for byte) and decoded (by DCT scaling to 1/8: 160x90)
 * only for the sets that get a cloud, depth and IR 160x144, IR as a greyscale JPEG,
 * every device's (the worker takes the even devices, its helper thread the odd ones),
 * and it makes a point cloud for clouds_per_second of the previewed sets (the first one included);
 * once the page has gone it stops encoding again. A due set whose captures all have newer ones (the
 * loop behind) is passed over for the newer set. The view's own threads (the sink's worker and helper,
 * libmicrohttpd's listen and connection threads) run 10 nice levels below the session's threads,
 * and the cloud's unprojection tables are built on the worker, not in ks_view_sink_create (the
 * session loop's thread). Waits are for events (bounded), never timed. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "kinsync/session.h"
#include "kinsync/source.h"
#include "kinsync/view.h"
#include "ks_test.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static char last_head[2048]; /* the response head of the last http_get */

/* GET path (Connection: close); the body into a malloc'd buffer, the head into last_head. */
static uint8_t *http_get(int port, const char *path, size_t *n)
{
    last_head[0] = 0;
    *n = 0;
    int fd = connect_port(port);
    if (fd < 0)
        return NULL;
    char req[256];
    int m = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
    if (write(fd, req, (size_t)m) != m) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    ssize_t r;
    while (buf && (r = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)r;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    close(fd);
    if (buf)
        buf[len] = 0; /* len < cap: a terminated head for strstr */
    uint8_t *body = buf ? (uint8_t *)strstr((char *)buf, "\r\n\r\n") : NULL;
    if (body)
        snprintf(last_head, sizeof last_head, "%.*s", (int)(body - buf), (char *)buf);
    if (!body || strncmp((char *)buf, "HTTP/1.1 200", 12)) {
        free(buf);
        return NULL;
    }
    body += 4;
    *n = len - (size_t)(body - buf);
    memmove(buf, body, *n);
    return buf;
}

/* Feeds the sink sets from the session until done(k) or the bound (seconds) passes. */
static bool pump(ks_session *s, ks_view_sink *k, double bound, bool (*done)(ks_view_sink *, ks_view *), ks_view *v)
{
    double end = mono() + bound;
    while (mono() < end) {
        ks_session_set set;
        ks_error err;
        ks_status st = ks_session_next(s, &set, 1000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st != KS_OK) {
            fprintf(stderr, "session: %s\n", err.message);
            return false;
        }
        ks_view_sink_offer(k, &set);
        ks_session_set_release(&set);
        if (done && done(k, v))
            return true;
    }
    return !done;
}

static bool some_unwatched(ks_view_sink *k, ks_view *v)
{
    (void)v;
    ks_view_sink_stats st;
    ks_view_sink_get_stats(k, &st);
    return st.unwatched >= 5 || st.encoded > 0; /* encoded: the check below says what went wrong */
}

static bool eight_previewed(ks_view_sink *k, ks_view *v)
{
    (void)v;
    ks_view_sink_stats st;
    ks_view_sink_get_stats(k, &st);
    return st.encoded >= 8;
}

static bool unwatched(ks_view_sink *k, ks_view *v)
{
    (void)k;
    return !ks_view_watched(v);
}

static bool watched_3_5_s(ks_view_sink *k, ks_view *v)
{
    (void)k;
    static double start;
    if (!start)
        start = mono();
    if (!ks_view_watched(v))
        return true; /* stops early: checked by the caller */
    return mono() - start > 3.5;
}

static void jpeg_info(const uint8_t *j, size_t n, int *w, int *h, int *cs)
{
    tjhandle t = tjInitDecompress();
    int sub;
    *w = *h = *cs = -1;
    if (j)
        tjDecompressHeader3(t, j, (unsigned long)n, w, h, &sub, cs);
    tjDestroy(t);
}

/* The simulated 3-device chain in fast mode, started, with a view and a sink of options o. */
typedef struct rig_view {
    ks_source src;
    ks_session *s;
    ks_view *v;
    ks_view_sink *k;
    int port;
    double create_cpu_s; /* the calling thread's CPU time in ks_view_sink_create */
} rig_view;

static double cpu_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool rig_view_open(rig_view *f, const ks_view_sink_options *o)
{
    memset(f, 0, sizeof *f);
    ks_source_options so;
    ks_source_options_init(&so);
    so.backend = "sim";
    so.fast = true;
    ks_error err;
    const char *paths[1] = {KS_SOURCE_DIR "/examples/rigs/chain-3.yaml"};
    KS_CHECK_INT(ks_source_open(paths, 1, &so, &f->src, &err), KS_OK);
    KS_CHECK_INT(ks_session_open(&f->src.rig, &f->src.plan, f->src.backend, NULL, &f->s, &err), KS_OK);
    KS_CHECK_INT(ks_session_start(f->s, &err), KS_OK);
    KS_CHECK_INT(ks_view_create(NULL, &f->v, &err), KS_OK);
    double c0 = cpu_thread();
    KS_CHECK_INT(ks_view_sink_create(f->v, f->s, o, &f->k, &err), KS_OK);
    f->create_cpu_s = cpu_thread() - c0;
    f->port = f->v ? ks_view_port(f->v) : -1;
    return f->s && f->v && f->k;
}

static void rig_view_close(rig_view *f)
{
    if (f->k)
        ks_view_sink_destroy(f->k);
    if (f->s) {
        ks_session_stop(f->s);
        ks_session_close(f->s);
    }
    if (f->v)
        ks_view_destroy(f->v);
    ks_source_close(&f->src);
}

static void test_sink_watched_thumbnails_cloud_rate(void)
{
    ks_view_sink_options o;
    ks_view_sink_options_init(&o);
    o.previews_per_second = 20;
    o.clouds_per_second = 5; /* one cloud per four previewed sets */
    rig_view f;
    if (!rig_view_open(&f, &o)) {
        rig_view_close(&f);
        return;
    }
    ks_session *s = f.s;
    ks_view *v = f.v;
    ks_view_sink *k = f.k;
    int port = f.port;

    /* nobody watches: previews fall due, nothing is taken, decoded or encoded */
    KS_CHECK(!ks_view_watched(v));
    KS_CHECK_MSG(pump(s, k, 120, some_unwatched, v), "the sink never found a preview due");
    ks_view_sink_stats st;
    ks_view_sink_get_stats(k, &st);
    ks_view_counters vc;
    ks_view_get_counters(v, &vc);
    KS_CHECK_MSG(st.encoded == 0 && st.clouds == 0 && vc.previews_published == 0 && st.cpu_color_s == 0,
                 "no client attached: encoded %llu sets, %llu clouds, published %llu previews (must be 0)",
                 (unsigned long long)st.encoded, (unsigned long long)st.clouds,
                 (unsigned long long)vc.previews_published);

    /* a page opens its event stream: previews and clouds flow */
    int sse = connect_port(port);
    KS_CHECK(sse >= 0);
    char req[160];
    int m = snprintf(req, sizeof req, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
    KS_CHECK(write(sse, req, (size_t)m) == m);
    double until = mono() + 60;
    while (!ks_view_watched(v) && mono() < until)
        usleep(10000);
    KS_CHECK_MSG(ks_view_watched(v), "an open event stream is a watcher");
    KS_CHECK_MSG(pump(s, k, 300, eight_previewed, v), "8 sets previewed with a page attached");
    ks_view_sink_get_stats(k, &st);
    /* the first previewed set makes a cloud, then one per 20/5 = 4 sets */
    uint64_t want = (uint64_t)floor(1 - 0.25 + (double)st.encoded * 0.25 + 1e-9);
    KS_CHECK_MSG(st.clouds == want, "%llu sets previewed: %llu clouds, want %llu (5 clouds/s of 20 previews/s)",
                 (unsigned long long)st.encoded, (unsigned long long)st.clouds, (unsigned long long)want);
    KS_CHECK_MSG(st.points > 0, "the cloud has points");
    KS_CHECK_MSG(st.color_denom == 8, "720P MJPEG decoded at 1/%d for the cloud, want 1/8 (DCT scaling)",
                 st.color_denom);
    /* MJPEG colour: the capture's JPEG is the preview; decoded only for the sets with a cloud */
    KS_CHECK_MSG(st.color_decoded_sets == st.clouds && st.color_decodes == 3 * st.clouds,
                 "colour decoded in %llu sets (%llu images), want the %llu clouds' sets (%llu previewed)",
                 (unsigned long long)st.color_decoded_sets, (unsigned long long)st.color_decodes,
                 (unsigned long long)st.clouds, (unsigned long long)st.encoded);
    KS_CHECK_MSG(st.color_passthrough == 3 * st.encoded, "%llu colour previews passed through, want 3 x %llu",
                 (unsigned long long)st.color_passthrough, (unsigned long long)st.encoded);
    KS_CHECK_MSG(st.thumb_w[0] == 1280 && st.thumb_h[0] == 720, "colour preview %dx%d, want the capture's 1280x720",
                 st.thumb_w[0], st.thumb_h[0]);
    KS_CHECK_MSG(st.thumb_w[1] == 160 && st.thumb_h[1] == 144, "depth thumbnail %dx%d, want 160x144", st.thumb_w[1],
                 st.thumb_h[1]);
    KS_CHECK_MSG(st.thumb_w[2] == 160 && st.thumb_h[2] == 144, "IR thumbnail %dx%d, want 160x144", st.thumb_w[2],
                 st.thumb_h[2]);
    /* what the page fetches: the same sizes; IR one greyscale channel, colour and depth YCbCr */
    static const char *kinds[3] = {"color", "depth", "ir"};
    for (int i = 0; i < 9; i++) { /* every device: the worker's (0, 2) and its helper thread's (1) */
        int kind = i % 3;
        char path[64];
        snprintf(path, sizeof path, "/api/preview/%d/%s.jpg", i / 3, kinds[kind]);
        size_t n;
        uint8_t *j = http_get(port, path, &n);
        int w, h, cs;
        jpeg_info(j, n, &w, &h, &cs);
        KS_CHECK_MSG(w == st.thumb_w[kind] && h == st.thumb_h[kind], "%s: %dx%d served", path, w, h);
        KS_CHECK_MSG(kind == 2 ? cs == TJCS_GRAY : cs == TJCS_YCbCr, "%s: JPEG colour space %d", path, cs);
        free(j);
    }
    /* the event stream alone keeps the page a watcher (no other request for 3.5 s) */
    KS_CHECK(pump(s, k, 60, watched_3_5_s, v));
    KS_CHECK_MSG(ks_view_watched(v), "an event stream open without other requests for 3.5 s still watches");

    /* the page goes: once the last request is 3 s old the sink stops encoding */
    close(sse);
    KS_CHECK_MSG(pump(s, k, 120, unwatched, v), "the view noticed the page gone");
    ks_view_sink_get_stats(k, &st);
    uint64_t enc0 = st.encoded, unw0 = st.unwatched;
    double end = mono() + 0.6;
    while (mono() < end)
        pump(s, k, 0.1, NULL, v);
    ks_view_sink_get_stats(k, &st);
    KS_CHECK_MSG(st.encoded <= enc0 + 1 && st.unwatched > unw0,
                 "page gone: %llu more sets encoded (at most the one in flight), %llu more unwatched",
                 (unsigned long long)(st.encoded - enc0), (unsigned long long)(st.unwatched - unw0));

    rig_view_close(&f);
}

/* MJPEG colour: the colour preview served is the capture's JPEG byte for byte (copied: the set is
 * released before it is fetched), image/jpeg and never cached; the colour is decoded only for a
 * set that gets a cloud. Sets offered by hand, one at a time. */
static void test_mjpeg_color_passthrough(void)
{
    ks_error err;
    ks_view_sink_options o;
    ks_view_sink_options_init(&o);
    o.previews_per_second = 1000; /* always due */
    o.clouds_per_second = 1;      /* the first set gets a cloud, the next few do not */
    rig_view f;
    if (!rig_view_open(&f, &o)) {
        rig_view_close(&f);
        return;
    }
    ks_session *s = f.s;
    ks_view_sink *k = f.k;
    int port = f.port;
    int n = ks_session_device_count(s);
    double deadline = mono() + 120;
    for (int round = 0; round < 2; round++) {
        if (mono() > deadline) {
            KS_CHECK_MSG(false, "no complete frame set within 120 s");
            break;
        }
        ks_session_set set;
        ks_status st = ks_session_next(s, &set, 5000, &err);
        if (st == KS_ETIMEOUT) {
            round--;
            continue;
        }
        KS_CHECK_INT(st, KS_OK);
        if (st != KS_OK)
            break;
        if (set.set.present_mask != (1u << n) - 1) { /* the start: sets without every device yet */
            ks_session_set_release(&set);
            round--;
            continue;
        }
        /* a copy of the capture's colour JPEGs, then the set back to the session before the fetch */
        uint8_t *want[KS_MATCH_MAX_DEVICES] = {0};
        size_t want_n[KS_MATCH_MAX_DEVICES] = {0};
        for (int d = 0; d < n; d++) {
            ks_capture *c = (set.set.present_mask & (1u << d)) ? set.set.frames[d].user : NULL;
            if (c && c->color && c->color->format == KS_FORMAT_MJPG) {
                want[d] = malloc(c->color->size);
                memcpy(want[d], c->color->data, c->color->size);
                want_n[d] = c->color->size;
            }
        }
        KS_CHECK_MSG(ks_view_sink_offer_always(k, &set), "set %d taken", round);
        ks_session_set_release(&set);
        double t0 = mono();
        ks_view_sink_stats vs;
        do {
            usleep(2000);
            ks_view_sink_get_stats(k, &vs);
        } while (vs.encoded < (uint64_t)round + 1 && mono() < t0 + 120);
        KS_CHECK_INT((int)vs.encoded, round + 1);
        KS_CHECK_INT((int)vs.clouds, 1);
        KS_CHECK_MSG(vs.color_decodes == (uint64_t)n, "round %d: %llu colour images decoded, want %d (the cloud's set only)",
                     round, (unsigned long long)vs.color_decodes, n);
        for (int d = 0; d < n; d++) {
            KS_CHECK_MSG(want[d] != NULL, "device %d: an MJPEG colour image", d);
            char path[64];
            snprintf(path, sizeof path, "/api/preview/%d/color.jpg", d);
            size_t got_n;
            uint8_t *got = http_get(port, path, &got_n);
            KS_CHECK_MSG(got && want[d] && got_n == want_n[d] && !memcmp(got, want[d], got_n),
                         "round %d, %s: %zu bytes served, the capture's JPEG has %zu (must be equal, byte for byte)",
                         round, path, got_n, want_n[d]);
            KS_CHECK_MSG(strstr(last_head, "Content-Type: image/jpeg") && strstr(last_head, "Cache-Control: no-store"),
                         "%s: head %s", path, last_head);
            free(got);
            free(want[d]);
        }
    }
    rig_view_close(&f);
}

/* Waits until the sink has encoded `n` previews or `until` (mono()) has passed; whether it has. */
static bool wait_encoded(ks_view_sink *k, uint64_t n, double until)
{
    ks_view_sink_stats st;
    for (;;) {
        ks_view_sink_get_stats(k, &st);
        if (st.encoded >= n || mono() > until)
            return st.encoded >= n;
        usleep(5000);
    }
}

/* The loop behind: a due set whose every capture already has a newer one is passed over, and the
 * newer set is previewed. Arrivals are recorded here by hand (ks_view_on_capture), in order. The
 * sink's clock (sink.c, offer): a set is due one period after the last preview fell due, and a
 * superseded set is passed over until two periods after it. The first preview builds the worker's
 * tables (seconds under the sanitizers on a loaded machine: a test that timed from it failed
 * there), so the timed part starts at the second preview, when the worker is warm. */
static void test_stale_set_passed_over(void)
{
    ks_error err;
    ks_view_sink_options o;
    ks_view_sink_options_init(&o);
    o.previews_per_second = 0.25; /* due every 4 s; a stale set passed over until 8 s */
    const double period = 4.0;
    rig_view f;
    if (!rig_view_open(&f, &o)) {
        rig_view_close(&f);
        return;
    }
    ks_session *s = f.s;
    ks_view *v = f.v;
    ks_view_sink *k = f.k;
    int port = f.port;
    size_t n;
    ks_session_set sets[4];
    int got = 0;
    while (got < 4) {
        ks_status st = ks_session_next(s, &sets[got], 5000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        KS_CHECK_INT(st, KS_OK);
        if (st != KS_OK)
            break;
        got++;
    }
    if (got == 4) {
        free(http_get(port, "/api/state", &n)); /* a client: the view is watched for 3 s */
        double t0 = mono();
        KS_CHECK_MSG(ks_view_sink_offer(k, &sets[0]), "the first set is taken");
        KS_CHECK_MSG(wait_encoded(k, 1, t0 + 120), "the first preview is made");
        /* set 1 is taken when it falls due: then the sink's last due time is t0 + period, or the
         * time it was taken if that is more than two periods after t0 */
        double ta = 0, refreshed = 0;
        bool taken = false;
        while (!taken && mono() < t0 + 120) {
            if (mono() - refreshed > 1.0) {
                free(http_get(port, "/api/state", &n));
                refreshed = mono();
            }
            ta = mono();
            taken = ks_view_sink_offer(k, &sets[1]);
            if (!taken)
                usleep(5000);
        }
        KS_CHECK_MSG(taken, "the second set is taken when due");
        const double due = ta - t0 < 2 * period ? t0 + period : ta;
        /* its preview done before the checks (a busy worker takes nothing) */
        const bool ready = wait_encoded(k, 2, due + 1.7 * period);
        for (int i = 2; i < 4; i++) /* set 3's captures arrived after set 2's */
            for (int d = 0; d < ks_session_device_count(s); d++)
                if (sets[i].set.present_mask & (1u << d))
                    ks_view_on_capture(d, sets[i].set.frames[d].user, v);
        while (mono() < due + period + 0.05)
            usleep(10000);
        free(http_get(port, "/api/state", &n));
        if (!ready || mono() > due + 1.8 * period) {
            KS_SKIP("the machine is too slow here: the second preview took %s, the stale window (%.0f-%.0f s "
                    "after it fell due) cannot be checked", ready ? "less than a period" : "over 1.7 periods",
                    period, 2 * period);
        } else {
            KS_CHECK_MSG(!ks_view_sink_offer(k, &sets[2]), "a set whose every capture has a newer one is passed over");
            ks_view_sink_stats st;
            ks_view_sink_get_stats(k, &st);
            KS_CHECK_INT((int)st.stale, 1);
            KS_CHECK_MSG(ks_view_sink_offer(k, &sets[3]), "the newer set is previewed (still due)");
        }
    }
    for (int i = 0; i < got; i++)
        ks_session_set_release(&sets[i]);
    rig_view_close(&f);
}

/* The threads of this process: name and nice value (/proc/self/task/TID/stat: the name in
 * parentheses, then state ... nice, the 17th field after it). Returns how many (at most max). */
static int read_threads(char names[][32], int *nices, int max)
{
    int n = 0;
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    while (dir && n < max && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue; /* ended meanwhile */
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[len] = 0;
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        int nice;
        if (!lp || !rp || rp < lp ||
            sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %d", &nice) != 1)
            continue;
        snprintf(names[n], 32, "%.*s", (int)(rp - lp - 1), lp + 1);
        nices[n++] = nice;
    }
    if (dir)
        closedir(dir);
    return n;
}

static bool a_cloud(ks_view_sink *k, ks_view *v)
{
    (void)v;
    ks_view_sink_stats st;
    ks_view_sink_get_stats(k, &st);
    return st.clouds >= 1;
}

/* The capture path comes first (issue 18): the view's threads run 10 nice levels below the thread
 * that made the sink and the server (the session loop's, whose capture threads keep its priority),
 * so that on a busy host the capture threads get the CPU when frames are due; and the cloud's
 * unprojection tables are built by the worker for its first cloud, not by ks_view_sink_create in
 * the session loop (they held it long enough right after the start for the queues to overflow). */
static void test_view_threads_below_capture(void)
{
    ks_view_sink_options o;
    ks_view_sink_options_init(&o);
    o.previews_per_second = 20;
    rig_view f;
    if (!rig_view_open(&f, &o)) {
        rig_view_close(&f);
        return;
    }
    char names[256][32];
    int nices[256];
    int base = nices[0] = 0;
    FILE *fp = fopen("/proc/self/stat", "r"); /* the main thread: this one, which made the session */
    char buf[1024];
    size_t len = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[len] = 0;
    char *paren = strrchr(buf, ')');
    KS_CHECK(paren &&
             sscanf(paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %d", &base) == 1);
    int want = base + 10 > 19 ? 19 : base + 10;
    /* a page attached: an event stream (a connection thread), previews and a cloud */
    int sse = connect_port(f.port);
    KS_CHECK(sse >= 0);
    char req[160];
    int m = snprintf(req, sizeof req, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", f.port);
    KS_CHECK(write(sse, req, (size_t)m) == m);
    double until = mono() + 60;
    while (!ks_view_watched(f.v) && mono() < until)
        usleep(10000);
    KS_CHECK_MSG(pump(f.s, f.k, 300, a_cloud, f.v), "a cloud made with a page attached");
    ks_view_sink_stats st;
    ks_view_sink_get_stats(f.k, &st);
    if (want == base) {
        KS_SKIP("the test runs at nice %d: no lower priority to check", base);
    } else {
        int n = read_threads(names, nices, 256), worker = 0, helper = 0, mhd = 0, others = 0;
        for (int i = 0; i < n; i++) {
            bool view = !strncmp(names[i], "ks-view-", 8) || !strncmp(names[i], "MHD-", 4);
            worker += !strcmp(names[i], "ks-view-worker");
            helper += !strcmp(names[i], "ks-view-helper");
            mhd += !strncmp(names[i], "MHD-", 4);
            others += !view;
            KS_CHECK_MSG(nices[i] == (view ? want : base), "thread %s runs at nice %d, want %d (%s)", names[i],
                         nices[i], view ? want : base,
                         view ? "the view's: below the session's" : "the session's, as it was made");
        }
        KS_CHECK_MSG(worker == 1 && helper == 1 && mhd >= 2 && others >= 4,
                     "threads seen: %d sink worker, %d helper, %d libmicrohttpd (listen + the event stream's), "
                     "%d others (main + 3 capture threads at least)",
                     worker, helper, mhd, others);
        KS_CHECK_MSG(st.worker_nice == want && st.helper_nice == want && st.have_helper,
                     "the sink says: worker at nice %d, helper at %d (want %d)", st.worker_nice, st.helper_nice, want);
    }
    /* the tables: built by the worker, for its first cloud; ks_view_sink_create did not build them */
    printf("  ks_view_sink_create: %.2f ms CPU of the calling thread; the worker's tables: %.2f ms CPU\n",
           f.create_cpu_s * 1e3, st.cpu_tables_s * 1e3);
    KS_CHECK_MSG(st.tables == 3 && st.cpu_tables_s > 0, "%d unprojection tables built by the worker in %.1f ms CPU, want 3",
                 st.tables, st.cpu_tables_s * 1e3);
    KS_CHECK_MSG(f.create_cpu_s < st.cpu_tables_s / 4,
                 "ks_view_sink_create took %.1f ms of the session loop's CPU, the tables %.1f ms: it must not build them",
                 f.create_cpu_s * 1e3, st.cpu_tables_s * 1e3);
    close(sse);
    rig_view_close(&f);
}

static void test_color_denom(void)
{
    KS_CHECK_INT(ks_view_color_denom(1280, 192), 8);  /* 720P: 160 */
    KS_CHECK_INT(ks_view_color_denom(3840, 192), 8);  /* 2160P: 480, kept every 3rd: 160 */
    KS_CHECK_INT(ks_view_color_denom(640, 192), 4);   /* 160 */
    KS_CHECK_INT(ks_view_color_denom(1280, 640), 2);  /* 640 */
    KS_CHECK_INT(ks_view_color_denom(100, 192), 1);
}

int main(void)
{
    KS_RUN(test_color_denom);
    KS_RUN(test_sink_watched_thumbnails_cloud_rate);
    KS_RUN(test_mjpeg_color_passthrough);
    KS_RUN(test_stale_set_passed_over);
    KS_RUN(test_view_threads_below_capture);
    return KS_TEST_END();
}
