/* bench_view: what `kinsync view` costs and how fresh its page is, on a simulated rig in real time.
 *
 *   bench_view [RIG.yaml] [SECONDS]     (default examples/rigs/chain-9.yaml, 10 s per phase)
 *
 * Phase A runs the session alone (the loop only releases the sets); phase B runs the same session
 * with the view's sink (made right after the start, as `kinsync view` does) and server at 5
 * previews/s, and, from 1 s after the start, a browser stand-in in a child process (forked before
 * the simulator, the view and the session exist) that works as the page does: one thread follows the event stream, another
 * fetches the JPEGs of the newest announced set over a kept-alive connection; halfway through its
 * time it drops its connection without a word and comes back. Figures:
 *  - server-side CPU: process CPU of B minus A, in % of one core (it also holds what the simulator's
 *    threads spend more or less in B), and the view's threads measured per thread (the sink's
 *    worker and helper from ks_view_sink_get_stats, libmicrohttpd's threads from /proc); the
 *    client runs in its own process and is not counted;
 *  - the sink's CPU per previewed set by stage (colour decode, depth/IR + JPEGs) and per cloud;
 *  - frame-to-page latency: from the arrival of the newest capture of a set (capture thread) to the
 *    moment the client has the event, and to the moment it has all JPEGs of the set; and split by
 *    stage (capture -> offered to the sink -> JPEGs in place -> event at the client);
 *  - frames lost by the capture path in both phases, in the start's first second and from then on
 *    (the client's time), by where: the session's queue (its loop too slow; the session drops, not
 *    waits, on a full queue, as it does for real devices), the simulated devices' host queue (the
 *    capture thread, which also renders a simulated device's frames, too late: libk4a's queue for
 *    real devices), sets missing a device (after the first complete set); with the time and device
 *    of each loss after the first second.
 *
 *   bench_view --encode [RIG.yaml] [SETS]   (default chain-9, 20 sets)
 *
 * The preview work per frame set, the sink's first way (fresh handles per image, colour decoded
 * twice), its second (one encoder, colour decoded once straight to thumbnail size for the preview
 * and the cloud) and its way now (MJPEG colour passed through as the capture's JPEG, decoded only
 * for the 2 of 5 sets that get a cloud), on the same sets: see encode_bench. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kinsync/fuse.h"
#include "kinsync/plan.h"
#include "kinsync/rig.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "kinsync/view.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* CPU seconds of the process's threads still alive (/proc/self/task/N/stat utime + stime): the
 * process's CPU minus this is what threads that have ended used (the HTTP server's connection
 * threads: libmicrohttpd runs one per connection). */
static double cpu_live_threads(double *mhd)
{
    double sum = 0, tick = (double)sysconf(_SC_CLK_TCK);
    *mhd = 0;
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return NAN;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')'); /* after the name: state ppid ... utime (14th) stime (15th) */
        unsigned long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
            sum += (double)(ut + st) / tick;
            if (strstr(buf, "(MHD-")) /* libmicrohttpd names its threads MHD-listen, MHD-connection */
                *mhd += (double)(ut + st) / tick;
        }
    }
    closedir(dir);
    return sum;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One GET on a kept-alive connection *fd (opened or reopened as needed), the whole body read by its
 * Content-Length, as a browser fetches. Returns the body's size, -1 on error (the connection closed). */
static long http_get_keepalive(int port, int *fd, const char *path)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0 && (*fd = connect_port(port)) < 0)
            return -1;
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
        char head[4096];
        size_t hl = 0;
        char *eoh = NULL;
        if (write(*fd, req, (size_t)n) == n) {
            while (!eoh && hl < sizeof head - 1) {
                ssize_t r = read(*fd, head + hl, sizeof head - 1 - hl);
                if (r <= 0)
                    break;
                hl += (size_t)r;
                head[hl] = 0;
                eoh = strstr(head, "\r\n\r\n");
            }
        }
        if (!eoh) { /* the server closed the kept connection: once more on a new one */
            close(*fd);
            *fd = -1;
            continue;
        }
        const char *cl = strstr(head, "Content-Length: ");
        long want = cl ? atol(cl + 16) : 0, have = (long)(hl - (size_t)(eoh + 4 - head));
        char buf[65536];
        while (have < want) {
            ssize_t r = read(*fd, buf, sizeof buf);
            if (r <= 0) {
                close(*fd);
                *fd = -1;
                return -1;
            }
            have += r;
        }
        return want;
    }
    return -1;
}

/* The browser stand-in, as the page works: one thread follows the event stream and notes when each
 * "preview" event arrives; another fetches the JPEGs of the newest announced set over a kept-alive
 * connection, skipping sets announced while it is still fetching (web/view.js does the same). */
typedef struct client_state {
    int port, devices;
    double t_end;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long long want_seq, want_t_ns; /* newest announced set */
    bool done;
    double fe[100000];
    int nfe;
} client_state;

static void *fetcher(void *arg)
{
    client_state *c = arg;
    int fd = -1;
    unsigned long long last = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->done && c->want_seq == last)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->done)
            break;
        last = c->want_seq;
        unsigned long long t_ns = c->want_t_ns;
        pthread_mutex_unlock(&c->mu);
        bool ok = t_ns > 0;
        for (int d = 0; d < c->devices && ok; d++)
            for (int k = 0; k < 3 && ok; k++) {
                static const char *kinds[] = {"color", "depth", "ir"};
                char path[96];
                snprintf(path, sizeof path, "/api/preview/%d/%s.jpg?s=%llu", d, kinds[k], last);
                ok = http_get_keepalive(c->port, &fd, path) > 0;
            }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double after_ns = (double)ts.tv_sec * 1e9 + ts.tv_nsec;
        pthread_mutex_lock(&c->mu);
        if (ok && c->nfe < 100000)
            c->fe[c->nfe++] = (after_ns - (double)t_ns) / 1e6;
    }
    pthread_mutex_unlock(&c->mu);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Prints "event_p50 p95 fetch_p50 p95 events offered_p50 p95 worker_p50 p95 delivery_p50 p95 fetched"
 * to the pipe. */
static void client(int port, int devices, double seconds, int out)
{
    static double ev[100000], qo[100000], wk[100000], sd[100000];
    static client_state c;
    c.port = port;
    c.devices = devices;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    pthread_t th;
    pthread_create(&th, NULL, fetcher, &c);
    int n = 0;
    double t_end = mono() + seconds;
    bool dropped = false;
    while (mono() < t_end) {
        int fd = connect_port(port);
        if (fd < 0) {
            usleep(100000);
            continue;
        }
        char req[160];
        int m = snprintf(req, sizeof req, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
        if (write(fd, req, (size_t)m) != m) {
            close(fd);
            continue;
        }
        static char buf[1 << 20];
        size_t len = 0;
        while (mono() < t_end) {
            if (!dropped && mono() > t_end - seconds / 2) { /* vanish without a word, come back */
                dropped = true;
                break;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 200) == 0)
                continue;
            ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
            if (r <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double now_ns = (double)ts.tv_sec * 1e9 + ts.tv_nsec;
            len += (size_t)r;
            buf[len] = 0;
            char *p;
            while ((p = strstr(buf, "event: preview\ndata: ")) != NULL) {
                char *end = strstr(p, "\n\n");
                if (!end)
                    break;
                unsigned long long seq = 0, t_ns = 0, offer_ns = 0, done_ns = 0;
                sscanf(p, "event: preview\ndata: {\"seq\": %llu, \"t_ns\": %llu, \"offer_ns\": %llu, \"done_ns\": %llu}",
                       &seq, &t_ns, &offer_ns, &done_ns);
                if (t_ns > 0 && n < 100000) {
                    ev[n] = (now_ns - (double)t_ns) / 1e6;
                    qo[n] = ((double)offer_ns - (double)t_ns) / 1e6;    /* capture -> the set offered to the sink */
                    wk[n] = ((double)done_ns - (double)offer_ns) / 1e6; /* -> its JPEGs in place */
                    sd[n] = (now_ns - (double)done_ns) / 1e6;           /* -> the event at the client */
                    n++;
                    pthread_mutex_lock(&c.mu);
                    c.want_seq = seq;
                    c.want_t_ns = t_ns;
                    pthread_cond_signal(&c.cv);
                    pthread_mutex_unlock(&c.mu);
                }
                size_t consumed = (size_t)(end + 2 - buf);
                memmove(buf, buf + consumed, len - consumed + 1);
                len -= consumed;
            }
            if (len > sizeof buf / 2) { /* states are large; keep only the tail */
                memmove(buf, buf + len - 4096, 4097);
                len = 4096;
            }
        }
        close(fd);
    }
    pthread_mutex_lock(&c.mu);
    c.done = true;
    pthread_cond_signal(&c.cv);
    pthread_mutex_unlock(&c.mu);
    pthread_join(th, NULL);
    int nf = c.nfe;
    double *all[4] = {ev, qo, wk, sd};
    for (int i = 0; i < 4; i++)
        qsort(all[i], (size_t)n, sizeof ev[0], cmp_d);
    qsort(c.fe, (size_t)nf, sizeof c.fe[0], cmp_d);
    char line[300];
    int m = n && nf ? snprintf(line, sizeof line, "%.1f %.1f %.1f %.1f %d %.1f %.1f %.1f %.1f %.1f %.1f %d\n", ev[n / 2],
                               ev[n * 95 / 100], c.fe[nf / 2], c.fe[nf * 95 / 100], n, qo[n / 2], qo[n * 95 / 100],
                               wk[n / 2], wk[n * 95 / 100], sd[n / 2], sd[n * 95 / 100], nf)
                    : snprintf(line, sizeof line, "nan nan nan nan 0 nan nan nan nan nan nan 0\n");
    if (write(out, line, (size_t)m) != m)
        perror("write");
}

#define LOSS_KEEP 24
#define SETTLE_S 1.0 /* the client attaches this long after the start (the start's own losses before) */

/* Frames lost, by where: the session's queue (its loop too slow), the simulated devices' host queue
 * (libk4a's for real devices: the capture thread did not take a capture in time; a simulated
 * capture thread also renders its frames), sets missing a device (counted from the first complete
 * set: the start sequence's gaps are not losses). */
enum { LOST_QUEUE, LOST_HOST, LOST_MISSING };

typedef struct phase {
    double wall, cpu;
    uint64_t sets, frames;
    uint64_t lost[2][3];       /* [0]: the start (before SETTLE_S), [1]: after it (the client attached); by kind */
    uint64_t start_incomplete; /* sets before the first complete one (the start sequence) */
    int nloss;                 /* the first LOSS_KEEP losses after SETTLE_S: when (s after the start), device, kind */
    double loss_t[LOSS_KEEP];
    int loss_dev[LOSS_KEEP], loss_kind[LOSS_KEEP];
    uint64_t previews, skipped;
    ks_view_sink_stats st;
    double cpu_ended; /* CPU of threads that ended during the phase (HTTP connections) */
    double cpu_mhd;   /* CPU of the server's threads alive at the end (listen, event streams) */
} phase;

static void note_loss(phase *ph, double t, int d, int kind, uint64_t n)
{
    bool after = t >= SETTLE_S;
    ph->lost[after][kind] += n;
    for (uint64_t i = 0; after && i < n && ph->nloss < LOSS_KEEP; i++, ph->nloss++) {
        ph->loss_t[ph->nloss] = t;
        ph->loss_dev[ph->nloss] = d;
        ph->loss_kind[ph->nloss] = kind;
    }
}

static int run(const ks_rig *rig, const ks_plan *plan, const char *rig_path, bool with_view, double seconds, phase *ph,
               char *client_line, size_t client_len)
{
    ks_error err;
    int pfd[2] = {-1, -1}, go[2] = {-1, -1};
    pid_t child = -1;
    if (with_view) {
        /* the browser stand-in is its own process, as a browser is: forked first, before this
         * process has the simulator, the view or the session (a fork of the running session stalls
         * its loop for the page-table copy, and every page it then writes is copied once: the
         * simulator's start lost frames to that); it starts when told the port, SETTLE_S after the
         * session's start */
        if (pipe(pfd) != 0 || pipe(go) != 0)
            return 1;
        child = fork();
        if (child == 0) {
            close(pfd[0]);
            close(go[1]);
            int port;
            if (read(go[0], &port, sizeof port) == (ssize_t)sizeof port)
                client(port, rig->device_count, seconds - SETTLE_S, pfd[1]);
            _exit(0);
        }
        close(pfd[1]);
        close(go[0]);
    }
    ks_sim_config sc;
    ks_backend *b = NULL;
    if (ks_sim_config_load(rig_path, rig, &sc, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    sc.mode = KS_SIM_PACED;
    if (ks_backend_open_sim(rig, &sc, &b, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    ks_view *v = NULL;
    if (with_view) {
        ks_view_options vo;
        ks_view_options_init(&vo);
        if (ks_view_create(&vo, &v, &err) != KS_OK)
            return fprintf(stderr, "%s\n", err.message), 1;
    }
    ks_session_options so;
    ks_session_options_init(&so);
    so.lossless = 0; /* drop on a full queue, as with real devices: losses become visible */
    so.first_frame_timeout_ms = 60000;
    if (v) {
        so.on_capture = ks_view_on_capture;
        so.user = v;
    }
    ks_session *s = NULL;
    if (ks_session_open(rig, plan, b, &so, &s, &err) != KS_OK || ks_session_start(s, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    ks_view_sink *k = NULL;
    /* the phase (and the losses' times) begin when the session has started: the sink's creation
     * counts, as in `kinsync view` (the sink is made right after the start) */
    double m0 = 0, m1 = 0;
    double t0 = mono(), c0 = cpu_self(), e0 = c0 - cpu_live_threads(&m0);
    ks_sim *sim = ks_sim_from_backend(b);
    int ndev = ks_session_device_count(s);
    uint64_t host_seen[KS_MATCH_MAX_DEVICES] = {0}, drops_seen[KS_MATCH_MAX_DEVICES] = {0};
    for (int d = 0; d < ndev && sim; d++) { /* rig device d is session device d here */
        ks_sim_device_stats ds;
        if (ks_sim_device_stats_get(sim, d, &ds, NULL) == KS_OK)
            host_seen[d] = ds.dropped_queue;
        note_loss(ph, 0, d, LOST_HOST, host_seen[d]); /* during the start itself */
    }
    if (v) {
        ks_view_sink_options o;
        ks_view_sink_options_init(&o);
        o.previews_per_second = 5;
        if (ks_view_sink_create(v, s, &o, &k, &err) != KS_OK)
            return fprintf(stderr, "%s\n", err.message), 1;
    }
    ks_session_set set;
    ks_status st;
    bool measuring = false, told = false;
    while (mono() - t0 < seconds && ((st = ks_session_next(s, &set, 200, &err)) == KS_OK || st == KS_ETIMEOUT)) {
        double t = mono() - t0;
        if (go[1] >= 0 && !told && t >= SETTLE_S) { /* the browser comes */
            told = true;
            int port = ks_view_port(v);
            if (write(go[1], &port, sizeof port) != (ssize_t)sizeof port)
                return 1;
            close(go[1]);
        }
        ks_session_progress p;
        ks_session_get_progress(s, &p);
        for (int d = 0; d < ndev; d++) {
            ks_sim_device_stats ds;
            if (sim && ks_sim_device_stats_get(sim, d, &ds, NULL) == KS_OK) {
                note_loss(ph, t, d, LOST_HOST, ds.dropped_queue - host_seen[d]);
                host_seen[d] = ds.dropped_queue;
            }
            note_loss(ph, t, d, LOST_QUEUE, p.queue_drops[d] - drops_seen[d]);
            drops_seen[d] = p.queue_drops[d];
        }
        if (st != KS_OK)
            continue;
        measuring |= set.set.complete;
        ph->start_incomplete += !measuring;
        for (int d = 0; d < ndev && measuring; d++)
            if (!(set.set.present_mask & (1u << d)))
                note_loss(ph, t, d, LOST_MISSING, 1);
        if (k)
            ks_view_sink_offer(k, &set);
        ks_session_set_release(&set);
        ph->sets++;
    }
    ph->wall = mono() - t0;
    ph->cpu = cpu_self() - c0;
    ph->cpu_ended = (ph->cpu + c0) - cpu_live_threads(&m1) - e0;
    ph->cpu_mhd = m1 - m0; /* event-stream threads started during the phase count from 0 */
    ks_session_progress p;
    ks_session_get_progress(s, &p);
    for (int d = 0; d < p.device_count; d++)
        ph->frames += p.frames[d];
    if (k) {
        ks_view_sink_counters(k, &ph->previews, &ph->skipped, NULL);
        ks_view_sink_get_stats(k, &ph->st); /* CPU figures and counts of the same completed sets */
        ks_view_sink_destroy(k);
    }
    ks_session_stop(s);
    ks_session_close(s);
    if (child > 0) {
        ssize_t r = read(pfd[0], client_line, client_len - 1);
        client_line[r > 0 ? r : 0] = 0;
        close(pfd[0]);
        waitpid(child, NULL, 0);
    }
    ks_view_destroy(v);
    ks_backend_free(b);
    return 0;
}

static double cpu_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The colour scale the sink decoded at for the cloud before (a quarter of 720P) */
static int cloud_denom(int width)
{
    int denom = 1;
    while (denom < 8 && width / (denom * 2) >= 320)
        denom *= 2;
    return denom;
}

/* The previews of one frame set as the sink made them first (noinline: callgrind --toggle-collect):
 * a fresh libturbojpeg compressor (and, for MJPG, decompressor) per image, the colour decoded for
 * the preview and decoded again for the cloud's colours. */
static __attribute__((noinline)) size_t previews_separate(ks_capture **caps, int n, ks_mjpeg_decoder *cloud_dec)
{
    size_t bytes = 0;
    for (int d = 0; d < n; d++) {
        ks_image *imgs[3] = {caps[d]->color, caps[d]->depth, caps[d]->ir};
        for (int k = 0; k < 3; k++) {
            uint8_t *j = NULL;
            size_t len = 0;
            if (imgs[k] && ks_view_encode_preview(imgs[k], 192, 500, 4500, &j, &len, NULL) == KS_OK)
                bytes += len;
            free(j);
        }
        ks_color_image ci;
        if (imgs[0] && imgs[0]->format == KS_FORMAT_MJPG &&
            ks_mjpeg_decode(cloud_dec, imgs[0]->data, imgs[0]->size, cloud_denom(imgs[0]->width), &ci, NULL) == KS_OK)
            bytes += (size_t)ci.width;
    }
    return bytes;
}

/* The same as the sink makes them now: one encoder kept, the colour decoded once, by DCT scaling
 * straight to thumbnail size (ks_view_color_denom: 1/8 for 720P; the cloud's colours use that image
 * too), the preview made from that image. */
static __attribute__((noinline)) size_t previews_shared(ks_capture **caps, int n, ks_mjpeg_decoder **decs,
                                                         ks_view_encoder *enc)
{
    size_t bytes = 0;
    for (int d = 0; d < n; d++) {
        ks_image *imgs[3] = {caps[d]->color, caps[d]->depth, caps[d]->ir};
        ks_color_image ci;
        bool have = imgs[0] && imgs[0]->format == KS_FORMAT_MJPG &&
                    ks_mjpeg_decode(decs[d], imgs[0]->data, imgs[0]->size, ks_view_color_denom(imgs[0]->width, 192), &ci,
                                    NULL) == KS_OK;
        if (have)
            bytes += (size_t)ci.width;
        for (int k = 0; k < 3; k++) {
            const uint8_t *j;
            size_t len = 0;
            if (imgs[k] && ks_view_encoder_preview(enc, imgs[k], k == 0 && have ? &ci : NULL, 192, 500, 4500, &j, &len,
                                                   NULL) == KS_OK)
                bytes += len;
        }
    }
    return bytes;
}

/* The sink's way now: the MJPEG colour image copied as it is (the view's blob), depth and IR
 * encoded, the colour decoded at thumbnail scale only when the set gets a cloud (decode). */
static __attribute__((noinline)) size_t previews_passthrough(ks_capture **caps, int n, ks_mjpeg_decoder **decs,
                                                              ks_view_encoder *enc, bool decode)
{
    size_t bytes = 0;
    for (int d = 0; d < n; d++) {
        ks_image *imgs[3] = {caps[d]->color, caps[d]->depth, caps[d]->ir};
        ks_color_image ci;
        bool mjpg = imgs[0] && imgs[0]->format == KS_FORMAT_MJPG;
        if (mjpg && decode &&
            ks_mjpeg_decode(decs[d], imgs[0]->data, imgs[0]->size, ks_view_color_denom(imgs[0]->width, 192), &ci,
                            NULL) == KS_OK)
            bytes += (size_t)ci.width;
        if (mjpg) { /* ks_view_publish_preview's copy */
            uint8_t *copy = malloc(imgs[0]->size);
            if (copy) {
                memcpy(copy, imgs[0]->data, imgs[0]->size);
                bytes += copy[imgs[0]->size / 2];
            }
            free(copy);
        }
        for (int k = mjpg ? 1 : 0; k < 3; k++) {
            const uint8_t *j;
            size_t len = 0;
            if (imgs[k] && ks_view_encoder_preview(enc, imgs[k], NULL, 192, 500, 4500, &j, &len, NULL) == KS_OK)
                bytes += len;
        }
    }
    return bytes;
}

/* bench_view --encode [RIG] [SETS]: the preview work per frame set (the sink worker's previews and
 * colour decoding, without the cloud's geometry), the old way and the new way on the same sets from
 * the simulator (virtual time: no pacing), in thread CPU time (meaningful on a loaded machine; for
 * instruction counts run it under valgrind --tool=callgrind --toggle-collect=previews_separate or
 * --toggle-collect=previews_shared). */
static int encode_bench(const char *path, int sets)
{
    ks_rig rig;
    ks_plan plan;
    ks_error err;
    ks_sim_config sc;
    ks_backend *b = NULL;
    ks_session *s = NULL;
    if (ks_rig_load(path, &rig, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    ks_findings f;
    ks_findings_init(&f);
    ks_rig_validate(&rig, &f);
    ks_findings_free(&f);
    if (ks_plan_make(&rig, NULL, &plan, &err) != KS_OK ||
        ks_sim_config_load(path, &rig, &sc, &err) != KS_OK || ks_backend_open_sim(&rig, &sc, &b, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    ks_session_options so;
    ks_session_options_init(&so);
    so.first_frame_timeout_ms = 600000; /* under valgrind the simulator is slow */
    if (ks_session_open(&rig, &plan, b, &so, &s, &err) != KS_OK || ks_session_start(s, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    int n = ks_session_device_count(s);
    ks_mjpeg_decoder *decs[KS_MATCH_MAX_DEVICES] = {0}, *cloud_dec = NULL;
    ks_view_encoder *enc = NULL;
    ks_mjpeg_decoder_create(&cloud_dec, NULL);
    for (int d = 0; d < n; d++)
        ks_mjpeg_decoder_create(&decs[d], NULL);
    ks_view_encoder_create(&enc, NULL);
    double t_sep = 0, t_shared = 0, t_pass = 0;
    size_t color_bytes = 0;
    int done = 0;
    size_t check = 0;
    while (done < sets) {
        ks_session_set set;
        ks_status st = ks_session_next(s, &set, 5000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st != KS_OK)
            return fprintf(stderr, "%s\n", err.message), 1;
        ks_capture *caps[KS_MATCH_MAX_DEVICES];
        bool complete = true;
        for (int d = 0; d < n; d++) {
            caps[d] = (set.set.present_mask & (1u << d)) ? set.set.frames[d].user : NULL;
            complete &= caps[d] != NULL;
        }
        if (complete) { /* alternate the order so neither gets the warmer caches */
            double t0 = cpu_thread();
            check += done % 2 ? previews_shared(caps, n, decs, enc) : previews_separate(caps, n, cloud_dec);
            double t1 = cpu_thread();
            check += done % 2 ? previews_separate(caps, n, cloud_dec) : previews_shared(caps, n, decs, enc);
            double t2 = cpu_thread();
            t_shared += done % 2 ? t1 - t0 : t2 - t1;
            t_sep += done % 2 ? t2 - t1 : t1 - t0;
            /* the sink's cloud credit at 2 clouds of 5 previews/s: sets 0, 3, 5, 8, ... decode */
            bool decode = (done * 2) % 5 < 2;
            check += previews_passthrough(caps, n, decs, enc, decode);
            t_pass += cpu_thread() - t2;
            for (int d = 0; d < n; d++)
                if (caps[d]->color && caps[d]->color->format == KS_FORMAT_MJPG)
                    color_bytes += caps[d]->color->size;
            done++;
        }
        ks_session_set_release(&set);
    }
    printf("bench_view --encode: %s, %d devices, %d frame sets (%zu)\n", rig.name, n, done, check % 10);
    printf("  previews + colour decode, separate (first):    %6.2f ms CPU per frame set\n", t_sep / done * 1e3);
    printf("  previews + colour decode, shared (previous):   %6.2f ms CPU per frame set (%.0f %% less)\n",
           t_shared / done * 1e3, (1 - t_shared / t_sep) * 100);
    printf("  MJPEG colour passed through, decoded for 2 of 5 sets (now): %6.2f ms CPU per frame set\n",
           t_pass / done * 1e3);
    printf("  at 5 previews/s: %.1f %% -> %.1f %% -> %.1f %% of one core\n", t_sep / done * 500, t_shared / done * 500,
           t_pass / done * 500);
    printf("  colour JPEGs to the page: %.0f bytes per frame set (%d devices), %.2f MB/s at 5 previews/s\n",
           (double)color_bytes / done, n, (double)color_bytes / done * 5 / 1e6);
    for (int d = 0; d < n; d++)
        ks_mjpeg_decoder_destroy(decs[d]);
    ks_mjpeg_decoder_destroy(cloud_dec);
    ks_view_encoder_destroy(enc);
    ks_session_stop(s);
    ks_session_close(s);
    ks_backend_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--encode"))
        return encode_bench(argc > 2 ? argv[2] : KS_SOURCE_DIR "/examples/rigs/chain-9.yaml", argc > 3 ? atoi(argv[3]) : 20);
    const char *path = argc > 1 ? argv[1] : KS_SOURCE_DIR "/examples/rigs/chain-9.yaml";
    double seconds = argc > 2 ? atof(argv[2]) : 10;
    signal(SIGPIPE, SIG_IGN);
    ks_rig rig;
    ks_plan plan;
    ks_error err;
    if (ks_rig_load(path, &rig, &err) != KS_OK)
        return fprintf(stderr, "%s\n", err.message), 1;
    ks_findings f;
    ks_findings_init(&f);
    ks_rig_validate(&rig, &f);
    ks_findings_free(&f);
    if (ks_plan_make(&rig, NULL, &plan, &err) != KS_OK)
        fprintf(stderr, "note: %s\n", err.message);
    phase a = {0}, bph = {0};
    char line[300] = "";
    if (run(&rig, &plan, path, false, seconds, &a, NULL, 0) || run(&rig, &plan, path, true, seconds, &bph, line, sizeof line))
        return 1;
    double ev50 = NAN, ev95 = NAN, fe50 = NAN, fe95 = NAN, q50 = NAN, q95 = NAN, w50 = NAN, w95 = NAN, s50 = NAN,
           s95 = NAN;
    int n = 0, nf = 0;
    sscanf(line, "%lf %lf %lf %lf %d %lf %lf %lf %lf %lf %lf %d", &ev50, &ev95, &fe50, &fe95, &n, &q50, &q95, &w50, &w95,
           &s50, &s95, &nf);
    double server = (bph.cpu / bph.wall - a.cpu / a.wall) * 100;
    printf("bench_view: %s, %d devices, %.0f s per phase, 5 previews/s per device\n", rig.name, rig.device_count, seconds);
    const phase *ps[2] = {&a, &bph};
    for (int i = 0; i < 2; i++) {
        const phase *x = ps[i];
        printf("  %s %5.1f %% CPU, %llu sets, %llu frames\n", i ? "with the view:  " : "session alone:  ",
               x->cpu / x->wall * 100, (unsigned long long)x->sets, (unsigned long long)x->frames);
        for (int w = 0; w < 2; w++)
            printf("    lost %s: %llu (session queue) + %llu (simulator's host queue) + %llu (missing in sets)%s\n",
                   w ? (i ? "from 1 s on, the client attached, dropping its connection halfway"
                          : "from 1 s on (the client's time in phase B)")
                     : "in the start's first second",
                   (unsigned long long)x->lost[w][LOST_QUEUE], (unsigned long long)x->lost[w][LOST_HOST],
                   (unsigned long long)x->lost[w][LOST_MISSING],
                   w ? "" : x->start_incomplete ? " (sets before the first complete one not counted)" : "");
        if (x->nloss) {
            printf("    losses from 1 s on (s after the start, device, where): ");
            for (int j = 0; j < x->nloss; j++)
                printf("%s%.2f d%d %s", j ? ", " : "", x->loss_t[j], x->loss_dev[j],
                       x->loss_kind[j] == LOST_QUEUE ? "queue" : x->loss_kind[j] == LOST_HOST ? "host" : "missing");
            printf("%s\n", x->nloss == LOSS_KEEP ? ", ..." : "");
        }
    }
    printf("  server side:     %5.1f %% of one core (difference)\n", server);
    double watched = bph.wall - SETTLE_S; /* the client's time */
    printf("  previews:        %llu sets previewed (%.1f/s while the client was there), %llu skipped (worker busy), "
           "%llu passed over for a newer set (loop behind)\n",
           (unsigned long long)bph.previews, bph.previews / watched, (unsigned long long)bph.skipped,
           (unsigned long long)bph.st.stale);
    const ks_view_sink_stats *w = &bph.st;
    double per = w->encoded ? 1e3 / (double)w->encoded : 0;
    printf("  sink worker:     %.2f ms CPU per previewed set: colour decode %.2f, depth/IR mapping + %d JPEGs %.2f; "
           "%.2f ms per cloud (%llu clouds, %.1f/s)\n",
           (w->cpu_color_s + w->cpu_previews_s + w->cpu_cloud_s) * per, w->cpu_color_s * per, rig.device_count * 3,
           w->cpu_previews_s * per, w->clouds ? w->cpu_cloud_s * 1e3 / (double)w->clouds : 0,
           (unsigned long long)w->clouds, w->clouds / watched);
    printf("  sink start:      %d unprojection tables built by the worker for its first cloud, %.1f ms CPU; worker "
           "and helper at nice %d and %d\n",
           w->tables, w->cpu_tables_s * 1e3, w->worker_nice, w->helper_nice);
    /* the view's threads work while the client is there (before it, nobody watches: nothing) */
    double view_cpu =
        w->cpu_color_s + w->cpu_previews_s + w->cpu_cloud_s + w->cpu_tables_s + bph.cpu_ended + bph.cpu_mhd;
    printf("  HTTP threads:    %.1f %% of one core while the client was there (%.1f %% ended connections, "
           "%.1f %% alive: listen, event stream)\n",
           (bph.cpu_ended + bph.cpu_mhd) / watched * 100, bph.cpu_ended / watched * 100, bph.cpu_mhd / watched * 100);
    printf("  view's threads:  %.1f %% of one core while the client was there (sink worker, its tables + HTTP threads, "
           "measured per thread; the difference above, over the whole phase, also holds what the simulator's threads "
           "spend more in phase B)\n",
           view_cpu / watched * 100);
    printf("  thumbnails:      colour %dx%d, depth %dx%d, IR %dx%d\n", w->thumb_w[0], w->thumb_h[0], w->thumb_w[1],
           w->thumb_h[1], w->thumb_w[2], w->thumb_h[2]);
    printf("  frame to page:   event p50 %.1f ms p95 %.1f ms (%d sets); all %d JPEGs fetched p50 %.1f ms p95 %.1f ms (%d sets "
           "fetched, one kept-alive connection; client dropped and reconnected once)\n",
           ev50, ev95, n, rig.device_count * 3, fe50, fe95, nf);
    printf("  event latency:   capture -> set offered to the sink p50 %.1f p95 %.1f ms; -> JPEGs in place p50 %.1f p95 %.1f "
           "ms; -> event at the client p50 %.1f p95 %.1f ms\n",
           q50, q95, w50, w95, s50, s95);
    return 0;
}
