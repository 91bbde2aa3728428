/* The devices behind an agent (kinsync/net.h, ks_agent_host): the rig's devices on this host run as
 * one ks_session (kinsync/session.h, its host option), the same path as a single-host run: the
 * session opens the devices, compares firmware, checks the jacks against the rig's cables, sets the
 * exposure once in its order, starts subordinates confirming each armed, runs one capture thread per
 * device and matches frame sets. Each host only ever does its own share of the start sequence; the
 * order across hosts (every subordinate armed before the master) is the coordinator's job, hence
 * the session's two-phase start.
 *
 *   CONFIGURE  (the first of the host's devices) open the session and the recorder (one .mkv per
 *              device, the plan's delays in its tags)
 *   ARM        ks_session_arm: the host's subordinates start and wait for pulses; a master only
 *              reports ready
 *   SYNC       (simulator only) the master on another host starts at the agreed instant: its pulses
 *              reach this world's subordinates then, as through a real cable
 *   START      ks_session_start_master (at the agreed instant on the simulator)
 *   STOP       (the first of the host's devices) the session stops, every file is completed
 * The recorder is a sink of the session: every capture is written from its device's capture thread
 * (on_capture), as `kinsync record` does; a thread of the host consumes the frame sets. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <turbojpeg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/matcher.h"
#include "kinsync/net.h"
#include "net/net_testing.h"
#include "kinsync/syncstats.h"
#include "kinsync/plan.h"
#include "kinsync/record.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "net/transport.h"
#include "doctor/clock_parse.h"

#define HOST_MAX_DEVICES 16
#define THUMB_MAX_BYTES (64 * 1024)

#define RATE_WINDOW 16

typedef struct host_dev {
    int rig_index;
    ks_device_config config;
    /* guarded by host->mu (capture threads move ARMED -> STREAMING, or to ERROR) */
    ks_agent_state state;
    char message[160];
    char firmware[32];
    ks_jack_state jacks;
    uint64_t frames;
    int64_t last_ts_us, last_host_ns;
    struct ks_agent_host *host;
    int slot;                /* recorder and session index */
    uint8_t *thumb;          /* latest preview JPEG (1/8 scale), NULL until the first colour frame */
    size_t thumb_len;
    int64_t thumb_ts_us;
    double thumb_wall;       /* when it was made (capture thread only): one a second is plenty */
    /* host time: (colour start us, host realtime ns - fit_base_ns) of the last KS_HOST_FIT_WINDOW
     * colour frames, and the fit over them (recomputed at most every 0.4 s) */
    double fit_x[KS_HOST_FIT_WINDOW], fit_y[KS_HOST_FIT_WINDOW];
    int fit_n, fit_next;
    int64_t fit_base_ns;
    ks_host_time_fit fit;
    double fit_wall;
    uint64_t fit_frames_at; /* frames counted when the fit was made */
    /* device timestamps of the last RATE_WINDOW frames, for the frame rate in device time */
    int64_t rate_ts[RATE_WINDOW];
    int rate_n, rate_next;
} host_dev;

struct ks_agent_host {
    ks_rig rig;
    char host[KS_NAME_MAX];
    char out_dir[512];
    ks_backend *backend;
    ks_plan *plan;           /* the rig's plan with the recorded configurations (the session starts these) */
    ks_device_config configs[KS_RIG_MAX_DEVICES];
    char digest[80];
    int count;
    host_dev devs[HOST_MAX_DEVICES];
    /* one run: the session and its recorder, from the first CONFIGURE to the first STOP; only the
     * agent's thread opens, arms, starts and closes them */
    ks_session *session;
    ks_recorder *rec;
    bool armed;
    pthread_t consumer;      /* takes the session's frame sets (ks_session_next) */
    bool consumer_running;
    atomic_int ending;       /* set by the agent's thread to end the consumer */
    char paths[HOST_MAX_DEVICES][512];
    pthread_mutex_t mu;
    ks_clock_status clock;   /* this host's time sync, read at CONFIGURE */
    bool clock_known;
    ks_matcher_config mcfg;  /* the timestamp convention per device (slot), for the colour start */
    int64_t test_clock_offset_ns; /* test hook: reported realtime moved by this */
};

void ks_agent_host_set_reported_clock_offset(ks_agent_host *h, int64_t offset_ns)
{
    h->test_clock_offset_ns = offset_ns;
}

/* The host's CLOCK_REALTIME (ns) at which a frame stamped system_ts_ns arrived: the simulated host
 * clocks map through the world, a real host's CLOCK_MONOTONIC through the current difference. */
static int64_t arrival_realtime_ns(ks_agent_host *h, uint64_t system_ts_ns)
{
    ks_sim *sim = ks_sim_from_backend(h->backend);
    int64_t t = sim ? ks_sim_realtime_from_host_ns(sim, h->host, system_ts_ns)
                    : (int64_t)system_ts_ns + (ks_now_realtime_ns() - ks_now_monotonic_ns());
    return t + h->test_clock_offset_ns;
}

/* One colour frame into the device's host-time window (called with h->mu held). */
static void fit_add(host_dev *d, const ks_image *color, int64_t arrival_ns)
{
    ks_match_frame f;
    memset(&f, 0, sizeof f);
    f.device = d->slot;
    f.has_color = true;
    f.color_ts_us = color->device_ts_us;
    f.color_exposure_us = color->exposure_us;
    ks_matcher_key(&d->host->mcfg, &f);
    if (d->fit_n == 0)
        d->fit_base_ns = arrival_ns;
    d->fit_x[d->fit_next] = f.color_start_us;
    d->fit_y[d->fit_next] = (double)(arrival_ns - d->fit_base_ns);
    d->fit_next = (d->fit_next + 1) % KS_HOST_FIT_WINDOW;
    if (d->fit_n < KS_HOST_FIT_WINDOW)
        d->fit_n++;
}

/* Refits the device's clock to host realtime when new frames came in (at most every 0.4 s): the
 * session's fit (ks_host_fit_compute) over the window, oldest first. */
static void fit_update(host_dev *d)
{
    ks_agent_host *h = d->host;
    double x[KS_HOST_FIT_WINDOW], y[KS_HOST_FIT_WINDOW], now = 0;
    int n;
    int64_t base;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    pthread_mutex_lock(&h->mu);
    bool due = d->fit_n >= 2 && d->frames != d->fit_frames_at && now - d->fit_wall >= 0.4;
    n = d->fit_n;
    base = d->fit_base_ns;
    double last = 0, first = 0;
    for (int i = 0; due && i < n; i++) {
        int k = (d->fit_next - n + i + KS_HOST_FIT_WINDOW) % KS_HOST_FIT_WINDOW;
        x[i] = d->fit_x[k];
        y[i] = d->fit_y[k];
        last = x[i];
        if (i == 0)
            first = x[i];
    }
    if (due) {
        d->fit_wall = now;
        d->fit_frames_at = d->frames;
    }
    pthread_mutex_unlock(&h->mu);
    if (!due)
        return;
    ks_host_fit hf;
    ks_host_fit_compute(x, y, (size_t)n, &hf);
    ks_host_time_fit out;
    memset(&out, 0, sizeof out);
    if (hf.ok) {
        out.ok = true;
        out.rate = hf.rate;
        out.offset_ns = base + (int64_t)llround(hf.offset_ns);
        out.mad_us = hf.mad_us;
        out.frames = hf.samples;
        out.last_device_us = (int64_t)llround(last);
        out.first_device_us = (int64_t)llround(first);
    }
    pthread_mutex_lock(&h->mu);
    d->fit = out;
    pthread_mutex_unlock(&h->mu);
}

/* Reads the host's time sync from chrony, else ptp4l (through their command-line clients). */
static void read_host_clock(ks_agent_host *h)
{
    static const char *const cmds[2] = {"chronyc -n tracking 2>/dev/null", "pmc -u -b 0 'GET TIME_STATUS_NP' 2>/dev/null"};
    h->clock_known = false;
    for (int k = 0; k < 2 && !h->clock_known; k++) {
        FILE *p = popen(cmds[k], "r");
        if (!p)
            continue;
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, p);
        buf[n] = '\0';
        pclose(p);
        ks_clock_status cs = k == 0 ? ks_parse_chronyc_tracking(buf) : ks_parse_pmc_time_status(buf);
        if (cs.have_offset || cs.unsynchronised) {
            h->clock = cs;
            h->clock_known = true;
        }
    }
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A small preview of an MJPEG colour frame: decoded at 1/8 scale and encoded again. */
static void make_thumbnail(host_dev *d, const ks_image *img)
{
    double now = wall_s();
    if (!img || img->format != KS_FORMAT_MJPG || now - d->thumb_wall < 1.0)
        return;
    d->thumb_wall = now;
    tjhandle dec = tjInitDecompress(), enc = tjInitCompress();
    int w = 0, h = 0, sub = 0, cs = 0;
    unsigned char *jpeg = NULL;
    unsigned long jlen = 0;
    uint8_t *rgb = NULL;
    if (dec && enc && tjDecompressHeader3(dec, img->data, (unsigned long)img->size, &w, &h, &sub, &cs) == 0) {
        int tw = (w + 7) / 8, th = (h + 7) / 8;
        rgb = malloc((size_t)tw * th * 3);
        if (rgb && tjDecompress2(dec, img->data, (unsigned long)img->size, rgb, tw, 0, th, TJPF_RGB, 0) == 0 &&
            tjCompress2(enc, rgb, tw, 0, th, TJPF_RGB, &jpeg, &jlen, TJSAMP_420, 70, 0) == 0 &&
            jlen <= THUMB_MAX_BYTES) {
            pthread_mutex_lock(&d->host->mu);
            uint8_t *copy = realloc(d->thumb, jlen);
            if (copy) {
                memcpy(copy, jpeg, jlen);
                d->thumb = copy;
                d->thumb_len = jlen;
                d->thumb_ts_us = (int64_t)img->device_ts_us;
            }
            pthread_mutex_unlock(&d->host->mu);
        }
    }
    free(rgb);
    tjFree(jpeg);
    if (dec)
        tjDestroy(dec);
    if (enc)
        tjDestroy(enc);
}

static host_dev *by_serial(ks_agent_host *h, const char *serial)
{
    for (int i = 0; i < h->count; i++)
        if (!strcmp(h->rig.devices[h->devs[i].rig_index].serial, serial))
            return &h->devs[i];
    return NULL;
}

/* The device's state as its capture thread may have moved it (ARMED -> STREAMING, ERROR). */
static ks_agent_state get_state(host_dev *d)
{
    pthread_mutex_lock(&d->host->mu);
    ks_agent_state s = d->state;
    pthread_mutex_unlock(&d->host->mu);
    return s;
}

static void set_state(host_dev *d, ks_agent_state s, const char *msg)
{
    pthread_mutex_lock(&d->host->mu);
    d->state = s;
    snprintf(d->message, sizeof d->message, "%s", msg ? msg : "");
    pthread_mutex_unlock(&d->host->mu);
}

/* Every device of the host into state s (a run of the host's session succeeds or fails as one). */
static void set_all(ks_agent_host *h, ks_agent_state s, const char *msg)
{
    for (int i = 0; i < h->count; i++)
        set_state(&h->devs[i], s, msg);
}

ks_status ks_agent_host_create(const ks_rig *rig, const char *host, ks_backend *backend, const char *out_dir,
                               ks_agent_host **out, ks_error *err)
{
    ks_agent_host *h = calloc(1, sizeof *h);
    if (!h || !(h->plan = malloc(sizeof *h->plan))) {
        free(h);
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    }
    h->rig = *rig;
    snprintf(h->host, sizeof h->host, "%s", host);
    snprintf(h->out_dir, sizeof h->out_dir, "%s", out_dir);
    h->backend = backend;
    pthread_mutex_init(&h->mu, NULL);
    ks_matcher_config_init(&h->mcfg, HOST_MAX_DEVICES, rig->camera.fps, rig->ts_convention);
    ks_status st = ks_plan_make(&h->rig, NULL, h->plan, err);
    if (st != KS_OK)
        ks_error_prefix(err, st, "the rig %s cannot be planned (kinsync plan explains)", rig->name);
    if (st == KS_OK)
        st = ks_record_configs_from_rig(&h->rig, h->plan, h->configs, h->digest, err);
    /* the session starts each device with plan->devices[i].config: the recorded configurations */
    for (int i = 0; st == KS_OK && i < rig->device_count; i++)
        h->plan->devices[i].config = h->configs[i];
    for (int i = 0; st == KS_OK && i < rig->device_count; i++) {
        const char *dh = rig->devices[i].host[0] ? rig->devices[i].host : "localhost";
        if (strcmp(dh, host) != 0)
            continue;
        if (h->count >= HOST_MAX_DEVICES) {
            st = ks_error_set(err, KS_EINVAL, "host %s has more than %d devices in the rig", host, HOST_MAX_DEVICES);
            break;
        }
        host_dev *d = &h->devs[h->count];
        d->rig_index = i;
        d->config = h->configs[i];
        d->host = h;
        d->slot = h->count++;
        h->mcfg.devices[d->slot].mode = d->config.wired_sync_mode;
    }
    if (st == KS_OK && h->count == 0)
        st = ks_error_set(err, KS_EINVAL, "the rig has no device on host '%s'; name this host with --host (the "
                          "rig's hosts are the devices' 'host:' entries)", host);
    if (st != KS_OK) {
        pthread_mutex_destroy(&h->mu);
        free(h->plan);
        free(h);
        return st;
    }
    *out = h;
    return KS_OK;
}

int ks_agent_host_serials(const ks_agent_host *h, const char **serials, int max)
{
    int n = 0;
    for (int i = 0; i < h->count && n < max; i++)
        serials[n++] = h->rig.devices[h->devs[i].rig_index].serial;
    return n;
}

/* The recorder as the session's sink, in device d's capture thread: every capture is written, the
 * device's counters, preview and host-time window follow it. */
static void on_capture(int slot, ks_capture *cap, void *user)
{
    ks_agent_host *h = user;
    host_dev *d = &h->devs[slot];
    ks_error we;
    ks_status ws = ks_recorder_add_capture(h->rec, d->slot, cap, &we);
    const ks_image *img = cap->color ? cap->color : cap->depth ? cap->depth : cap->ir;
    make_thumbnail(d, cap->color);
    int64_t arrival = cap->color && cap->color->system_ts_ns ? arrival_realtime_ns(h, cap->color->system_ts_ns) : 0;
    pthread_mutex_lock(&h->mu);
    if (arrival)
        fit_add(d, cap->color, arrival);
    d->frames++;
    if (img) {
        d->last_ts_us = (int64_t)img->device_ts_us;
        d->last_host_ns = (int64_t)img->system_ts_ns;
        d->rate_ts[d->rate_next] = d->last_ts_us;
        d->rate_next = (d->rate_next + 1) % RATE_WINDOW;
        d->rate_n += d->rate_n < RATE_WINDOW;
    }
    if (ws != KS_OK) {
        d->state = KS_AGENT_ERROR;
        snprintf(d->message, sizeof d->message, "%s", we.message);
    } else if (d->state == KS_AGENT_ARMED || d->state == KS_AGENT_CONFIGURED) {
        d->state = KS_AGENT_STREAMING;
    }
    pthread_mutex_unlock(&h->mu);
    if (ws != KS_OK)
        ks_session_request_stop(h->session); /* a file that cannot be written ends the run, as in `record` */
}

/* Consumes the session's frame sets (the matcher, the sync statistics) until the run ends; a device
 * whose capture fails is reported ERROR with the session's reason. Ends when end_run says so (a
 * session whose master is on another host, or never started, has no end of its own). */
static void *consumer_main(void *arg)
{
    ks_agent_host *h = arg;
    while (!atomic_load(&h->ending)) {
        ks_session_set set;
        ks_error e;
        ks_status st = ks_session_next(h->session, &set, 100, &e);
        if (st == KS_OK)
            ks_session_set_release(&set);
        ks_session_progress p;
        ks_session_get_progress(h->session, &p);
        for (int i = 0; i < h->count; i++) {
            if (!p.failed[i] || get_state(&h->devs[i]) == KS_AGENT_ERROR)
                continue;
            char why[KS_ERROR_MESSAGE_MAX];
            ks_session_device_reason(h->session, i, why, sizeof why);
            set_state(&h->devs[i], KS_AGENT_ERROR, why[0] ? why : "capture failed");
        }
        if (st == KS_EEOF || st == KS_ENODEV)
            break;
    }
    return NULL;
}

/* Ends the host's run: the session stops (capture threads, then cameras, master first), the
 * recorder completes every file, the devices are closed. Safe to call when nothing runs. */
static ks_status end_run(ks_agent_host *h, ks_error *err)
{
    ks_status st = KS_OK;
    if (h->session) {
        atomic_store(&h->ending, 1);
        ks_session_request_stop(h->session);
        if (h->consumer_running) {
            pthread_join(h->consumer, NULL);
            h->consumer_running = false;
        }
        ks_session_stop(h->session);
    }
    ks_sim *sim = ks_sim_from_backend(h->backend);
    if (h->armed && sim && h->rig.master >= 0)
        ks_sim_stop_remote(sim, h->rig.master); /* no-op when the master is ours */
    h->armed = false;
    if (h->rec) {
        for (int i = 0; i < h->count; i++)
            snprintf(h->paths[i], sizeof h->paths[i], "%s", ks_recorder_path(h->rec, i));
        st = ks_recorder_close(h->rec, err);
        h->rec = NULL;
    }
    ks_session_close(h->session);
    h->session = NULL;
    return st;
}

/* Opens the host's session (devices, firmware, jacks, exposure) and its recorder. */
static ks_status open_run(ks_agent_host *h, ks_error *err)
{
    ks_session_options so;
    ks_session_options_init(&so);
    so.host = h->host;
    so.on_capture = on_capture;
    so.user = h;
    so.lossless = 0; /* the hosts run in real time (the simulator paced): a slow consumer drops, counted */
    ks_status st = ks_session_open(&h->rig, h->plan, h->backend, &so, &h->session, err);
    if (st == KS_OK && ks_session_device_count(h->session) != h->count)
        st = ks_error_set(err, KS_EINVAL, "the session runs %d of host %s's %d devices",
                          ks_session_device_count(h->session), h->host, h->count);
    for (int i = 0; st == KS_OK && i < h->count; i++)
        if (ks_session_rig_index(h->session, i) != h->devs[i].rig_index)
            st = ks_error_set(err, KS_EINVAL, "session device %d is not host device %d", i, i);
    ks_record_device rdev[HOST_MAX_DEVICES];
    char roles[KS_RIG_MAX_DEVICES][64];
    char *cal[HOST_MAX_DEVICES] = {0};
    memset(rdev, 0, sizeof rdev);
    if (st == KS_OK)
        ks_record_role_names(&h->rig, roles);
    for (int i = 0; st == KS_OK && i < h->count; i++) {
        host_dev *x = &h->devs[i];
        ks_device *dev = ks_session_device(h->session, i);
        const ks_device_info *info = ks_device_info_get(dev);
        snprintf(rdev[i].serial, sizeof rdev[i].serial, "%s", info->serial);
        snprintf(rdev[i].role, sizeof rdev[i].role, "%s", roles[x->rig_index]);
        rdev[i].config = x->config;
        rdev[i].color_fw = info->rgb;
        rdev[i].depth_fw = info->depth;
        rdev[i].has_firmware = true;
        size_t len = 0;
        if (ks_device_get_calibration_json(dev, &cal[i], &len, NULL) == KS_OK) {
            rdev[i].calibration_json = cal[i];
            rdev[i].calibration_len = len;
        }
        ks_jack_state j;
        if (ks_device_get_jacks(dev, &j, NULL) != KS_OK)
            j.supported = false;
        pthread_mutex_lock(&h->mu);
        x->jacks = j;
        ks_version_format(&info->rgb, x->firmware, sizeof x->firmware);
        x->fit_n = x->fit_next = 0; /* a new run: a new fit */
        memset(&x->fit, 0, sizeof x->fit);
        x->frames = 0;
        x->rate_n = x->rate_next = 0;
        pthread_mutex_unlock(&h->mu);
    }
    if (st == KS_OK) {
        ks_recorder_options ro;
        memset(&ro, 0, sizeof ro);
        snprintf(ro.rig_name, sizeof ro.rig_name, "%s", h->rig.name);
        snprintf(ro.plan_digest, sizeof ro.plan_digest, "%s", h->digest);
        ks_record_rig_tags(&h->rig, &ro);
        ro.overwrite = true;
        st = ks_recorder_open(h->out_dir, h->count, rdev, &ro, &h->rec, err);
    }
    for (int i = 0; i < h->count; i++)
        free(cal[i]);
    if (st != KS_OK) {
        ks_session_close(h->session);
        h->session = NULL;
        return st;
    }
    read_host_clock(h);
    return KS_OK;
}

static ks_status h_configure(void *ctx, const char *serial, const char *args, ks_error *err)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    if (!d)
        return ks_error_set(err, KS_ENOTFOUND, "device %s is not on host %s", serial, h->host);
    ks_agent_state now = get_state(d);
    if (now != KS_AGENT_IDLE && now != KS_AGENT_STOPPED)
        return ks_error_set(err, KS_ESTATE, "device %s is %s; stop it before configuring again", serial,
                            ks_agent_state_name(now));
    /* the session holds every device of this host: opened with the first */
    ks_status st = h->session ? KS_OK : open_run(h, err);
    if (st != KS_OK) {
        set_state(d, KS_AGENT_ERROR, err ? err->message : "configure failed");
        return st;
    }
    set_state(d, KS_AGENT_CONFIGURED, "");
    return KS_OK;
}

static ks_status h_arm(void *ctx, const char *serial, ks_error *err)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    if (!d || get_state(d) != KS_AGENT_CONFIGURED || !h->session)
        return ks_error_set(err, KS_ESTATE, "device %s must be CONFIGURED (every device of host %s) before ARM",
                            serial, h->host);
    if (!h->armed) { /* every subordinate of the host, with the first ARM */
        ks_error e;
        ks_status st = ks_session_arm(h->session, &e);
        atomic_store(&h->ending, 0);
        if (st == KS_OK) {
            if (pthread_create(&h->consumer, NULL, consumer_main, h) == 0)
                h->consumer_running = true;
            else
                st = ks_error_set(&e, KS_ENOMEM, "cannot start the frame-set thread of host %s", h->host);
        }
        if (st != KS_OK) {
            set_all(h, KS_AGENT_ERROR, e.message);
            if (err)
                *err = e;
            return st;
        }
        h->armed = true;
    }
    pthread_mutex_lock(&h->mu);
    if (d->state == KS_AGENT_CONFIGURED) /* its frames may already have made it STREAMING */
        d->state = KS_AGENT_ARMED;
    pthread_mutex_unlock(&h->mu);
    return KS_OK;
}

static ks_status h_sync(void *ctx, const char *serial, const char *args, ks_error *err)
{
    ks_agent_host *h = ctx;
    ks_sim *sim = ks_sim_from_backend(h->backend);
    char master[64];
    int64_t at;
    ks_status st = ks_net_parse_start_args(args, &at, master, sizeof master, err);
    if (st != KS_OK || !sim || by_serial(h, master))
        return st; /* real devices: the cable carries the pulses; the master's own host starts it */
    /* once per host, however many of its devices the command named */
    host_dev *first = &h->devs[0];
    if (strcmp(serial, h->rig.devices[first->rig_index].serial) != 0)
        return KS_OK;
    int mi = ks_rig_find_device(&h->rig, master);
    if (mi < 0)
        return ks_error_set(err, KS_ENOTFOUND, "master %s is not in the rig", master);
    return ks_sim_start_remote(sim, mi, &h->configs[mi], ks_sim_virtual_from_realtime(sim, at), err);
}

static ks_status h_start(void *ctx, const char *serial, const char *args, ks_error *err)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    if (!d || get_state(d) != KS_AGENT_ARMED || !h->armed)
        return ks_error_set(err, KS_ESTATE, "device %s must be ARMED before START", serial);
    if (d->config.wired_sync_mode != KS_SYNC_MASTER)
        return KS_OK; /* already running, waiting for pulses */
    ks_sim *sim = ks_sim_from_backend(h->backend);
    int64_t at = 0;
    if (sim && args && args[0]) {
        ks_status st = ks_net_parse_start_args(args, &at, NULL, 0, err);
        if (st == KS_OK)
            st = ks_sim_arm_at(sim, d->rig_index, ks_sim_virtual_from_realtime(sim, at), err);
        if (st != KS_OK)
            return st;
    }
    ks_error e;
    ks_status st = ks_session_start_master(h->session, &e);
    if (st != KS_OK) {
        set_all(h, KS_AGENT_ERROR, e.message);
        if (err)
            *err = e;
    }
    return st;
}

static ks_status h_stop(void *ctx, const char *serial, ks_error *err)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    if (!d)
        return ks_error_set(err, KS_ENOTFOUND, "device %s is not on host %s", serial, h->host);
    /* the host's devices run as one session: they stop together, with the first STOP */
    ks_status st = end_run(h, err);
    for (int i = 0; i < h->count; i++)
        if (get_state(&h->devs[i]) != KS_AGENT_ERROR)
            set_state(&h->devs[i], KS_AGENT_STOPPED, "");
    return st;
}

static void h_status(void *ctx, const char *serial, ks_agent_device_status *st)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    if (!d)
        return;
    fit_update(d);
    pthread_mutex_lock(&h->mu);
    st->state = d->state;
    snprintf(st->role, sizeof st->role, "%s", d->config.wired_sync_mode == KS_SYNC_MASTER ? "master"
                                             : d->config.wired_sync_mode == KS_SYNC_SUBORDINATE ? "subordinate"
                                                                                                 : "standalone");
    snprintf(st->firmware, sizeof st->firmware, "%s", d->firmware);
    st->jack_supported = d->jacks.supported;
    st->sync_in = d->jacks.sync_in;
    st->sync_out = d->jacks.sync_out;
    st->frames = d->frames;
    /* what the device delivers: its last frames over their span in device time */
    st->fps = 0;
    if (d->state == KS_AGENT_STREAMING && d->rate_n >= 2) {
        int64_t newest = d->rate_ts[(d->rate_next + RATE_WINDOW - 1) % RATE_WINDOW];
        int64_t oldest = d->rate_ts[(d->rate_next + RATE_WINDOW - d->rate_n) % RATE_WINDOW];
        if (newest > oldest)
            st->fps = (double)(d->rate_n - 1) * 1e6 / (double)(newest - oldest);
    }
    st->last_device_ts_us = d->last_ts_us;
    st->last_host_ts_ns = d->last_host_ns;
    snprintf(st->message, sizeof st->message, "%s", d->message);
    st->clock_known = h->clock_known;
    st->clock_synced = h->clock_known && !h->clock.unsynchronised;
    st->clock_offset_ns = h->clock.have_offset ? (int64_t)(h->clock.offset_us * 1000.0) : 0;
    st->host_fit = d->fit;
    st->realtime_minus_monotonic_ns = ks_now_realtime_ns() - ks_now_monotonic_ns() + h->test_clock_offset_ns;
    pthread_mutex_unlock(&h->mu);
}

static size_t h_thumbnail(void *ctx, const char *serial, uint8_t *buf, size_t cap, int64_t *ts_us)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    size_t n = 0;
    if (!d)
        return 0;
    pthread_mutex_lock(&h->mu);
    if (d->thumb && d->thumb_len <= cap) {
        memcpy(buf, d->thumb, d->thumb_len);
        n = d->thumb_len;
        *ts_us = d->thumb_ts_us;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

static void h_path(void *ctx, const char *serial, char *path, size_t n)
{
    ks_agent_host *h = ctx;
    host_dev *d = by_serial(h, serial);
    snprintf(path, n, "%s", d && !h->rec ? h->paths[d->slot] : "");
}

static const ks_agent_ops host_ops = {
    .configure = h_configure,
    .arm = h_arm,
    .sync = h_sync,
    .start = h_start,
    .stop = h_stop,
    .status = h_status,
    .recording_path = h_path,
    .thumbnail = h_thumbnail,
};

const ks_agent_ops *ks_agent_host_ops(void)
{
    return &host_ops;
}

void ks_agent_host_free(ks_agent_host *h)
{
    if (!h)
        return;
    end_run(h, NULL);
    for (int i = 0; i < h->count; i++)
        free(h->devs[i].thumb);
    pthread_mutex_destroy(&h->mu);
    free(h->plan);
    free(h);
}
