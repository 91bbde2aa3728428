/* The session (kinsync/session.h): orchestrated start, capture threads, bounded queues, matcher,
 * sync statistics. One mutex guards the queues, the matcher and the statistics; capture threads
 * only hold it to queue a frame, so a stalled or dead device never blocks the others. */
#define _POSIX_C_SOURCE 200809L
#include "kinsync/session.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/monotime.h"

/* Finished sets the session lets wait for its consumer in virtual time (lossless) before it stops
 * feeding the matcher. Every set waiting holds a capture of every device: at 32 a 9-device NFOV
 * unbinned rig from recordings kept ~40 captures per device in flight (~0.3 GB of depth alone,
 * each frame a fresh buffer that page-faulted in); 4 is slack enough for a consumer's jitter, and
 * the capture threads wait on their full queues as before (issue 19). */
#define KS_LOSSLESS_READY 4

/* Until its consumer has taken the first complete set and come back for the next (start-up: the first
 * set is fused and written), a lossless session reads one frame ahead per device, not queue_frames,
 * and lets one finished set wait, not KS_LOSSLESS_READY: the first set waits only for its own frames,
 * and the readers do not compete with the consumer's work on it. With the full depth from the start, 9 devices from recordings
 * read ~14 depth frames each (~100 MB of fresh buffers) and the simulator rendered ~20 captures per
 * device before the first set could be fused. Lossless sessions lose nothing whatever the depth, so
 * the sets are the same; the depth only decides how far the readers run ahead. After
 * KS_WARM_AFTER_SETS sets without a complete one (a device missing from the start) the queues
 * deepen anyway. */
#define KS_WARM_AFTER_SETS 8

typedef struct qitem {
    ks_match_frame f;
} qitem;

typedef struct sdev {
    ks_session *s;
    int index;               /* session index */
    int rig_index;
    ks_device *dev;
    ks_device_config cfg;
    pthread_t thread;
    bool thread_running;
    /* guarded by s->mu */
    qitem *q;
    int q_head, q_count, q_max, q_high;
    uint64_t frames, queue_drops;
    uint64_t waited_ms;      /* time spent in timed-out waits before the first frame */
    bool first_frame;
    int timeouts_in_row;     /* get_capture timeouts since the last frame */
    double last_key;         /* matcher key of the newest frame (fairness in virtual time) */
    bool dead;               /* thread ended (fault or stop) */
    bool fault;              /* ended by an error other than a stop */
    bool ended;              /* its finite stream (a recording) ended */
    bool gone_marked;
    char last_error[KS_ERROR_MESSAGE_MAX];
    int exposure_sets;
} sdev;

struct ks_session {
    ks_rig rig;
    ks_plan plan;
    ks_session_options opt;
    ks_backend *backend;
    int n;
    int ref;
    sdev d[KS_MATCH_MAX_DEVICES];
    int start_order[KS_MATCH_MAX_DEVICES];
    ks_matcher_config mcfg;
    ks_matcher *matcher;
    ks_syncstats *stats;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop_requested; /* set by any thread or a signal handler (lock-free: async-signal-safe) */
    bool started, stopped, fault_reported, flushed;
    bool armed;                /* started by ks_session_arm (the master by ks_session_start_master) */
    struct timespec t0;
    uint64_t sets;
    double recent_worst;
    bool stats_dirty;
    bool lossless;
    bool warming;              /* the consumer took a complete set (or KS_WARM_AFTER_SETS sets) */
    bool warm;                 /* and asked for the next: lossless read-ahead at full depth */
    bool measuring;
};

/* Frames a device's queue may hold before a lossless capture thread waits. Caller holds mu. */
static int lossless_queue_cap(const ks_session *s, const sdev *d)
{
    return s->warm ? d->q_max : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ks_session_options_init(ks_session_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->lossless = -1;
}

static void release_capture(void *user, void *ctx)
{
    (void)ctx;
    ks_capture_release(user);
}

static const char *dname(const ks_session *s, int d)
{
    return s->rig.devices[s->d[d].rig_index].name[0] ? s->rig.devices[s->d[d].rig_index].name
                                                      : s->rig.devices[s->d[d].rig_index].serial;
}

const char *ks_session_device_name(const ks_session *s, int d)
{
    return s && d >= 0 && d < s->n ? dname(s, d) : "";
}

static int session_index_of_rig(const ks_session *s, int rig_index)
{
    for (int i = 0; i < s->n; i++)
        if (s->d[i].rig_index == rig_index)
            return i;
    return -1;
}

static void close_devices(ks_session *s)
{
    for (int i = 0; i < s->n; i++) {
        ks_device_close(s->d[i].dev);
        s->d[i].dev = NULL;
    }
}

/* ---- open: devices, firmware, jacks, exposure ---- */

/* Does the rig declare a cable into rig device r's Sync In (in) or out of its Sync Out (!in)? */
static bool rig_declares_cable(const ks_rig *rig, int r, bool in)
{
    for (int c = 0; c < rig->cable_count; c++)
        if ((in ? rig->cables[c].to : rig->cables[c].from) == r)
            return true;
    return false;
}

/* The declared cables against the jacks the devices report. A missing cable, or one in the wrong jack
 * (Sync Out to Sync Out: the device reports a cable in its Sync Out though the rig declares none from
 * it, and none in its Sync In), is an error before anything streams. A cable with an end at a device
 * that cannot report its jacks is not checked (SKIP, with the reason): its wiring shows in the frames. */
static ks_status check_jacks(ks_session *s, ks_error *err)
{
    ks_jack_state j[KS_MATCH_MAX_DEVICES];
    for (int i = 0; i < s->n; i++) {
        ks_error e;
        if (ks_device_get_jacks(s->d[i].dev, &j[i], &e) != KS_OK)
            j[i].supported = false;
        if (!j[i].supported) {
            ks_sync_check c = {.status = KS_CHECK_WARN, .device = i, .other = -1};
            snprintf(c.id, sizeof c.id, "jacks");
            snprintf(c.message, sizeof c.message,
                     "%s cannot report its sync jacks (its jack detection is unknown, e.g. Orbbec's K4A wrapper); "
                     "its wiring is checked from its frames instead",
                     dname(s, i));
            ks_syncstats_add_check(s->stats, &c);
        }
    }
    int checked = 0, unchecked = 0;
    char skipped[256] = "";
    for (int c = 0; c < s->rig.cable_count; c++) {
        const ks_rig_cable *cb = &s->rig.cables[c];
        int a = session_index_of_rig(s, cb->from), b = session_index_of_rig(s, cb->to);
        const char *an = s->rig.devices[cb->from].name, *bn = s->rig.devices[cb->to].name;
        if (b >= 0 && j[b].supported && !j[b].sync_in) {
            if (j[b].sync_out && !rig_declares_cable(&s->rig, cb->to, false))
                return ks_error_set(err, KS_ESYNC,
                                    "the cable from %s ends in the wrong jack of %s: %s reports a cable in its Sync "
                                    "Out (the rig declares none from it) and none in its Sync In (cable %d: from %s's "
                                    "Sync Out to %s's Sync In, declared at line %d of the rig file). Sync Out to Sync "
                                    "Out carries no pulses to either device; move that end to %s's Sync In, nothing "
                                    "was started",
                                    an, bn, bn, c + 1, an, bn, cb->line, bn);
            return ks_error_set(err, KS_ESYNC,
                                "no cable detected in the Sync In jack of %s (cable %d: from %s's Sync Out to %s's "
                                "Sync In, declared at line %d of the rig file); plug the cable from %s into %s's Sync "
                                "In (not the Sync Out next to it), nothing was started",
                                bn, c + 1, an, bn, cb->line, an, bn);
        }
        if (a >= 0 && j[a].supported && !j[a].sync_out) {
            if (j[a].sync_in && !rig_declares_cable(&s->rig, cb->from, true))
                return ks_error_set(err, KS_ESYNC,
                                    "the cable to %s starts in the wrong jack of %s: %s reports a cable in its Sync "
                                    "In (the rig declares none into it) and none in its Sync Out (cable %d, line %d "
                                    "of the rig file). Sync In to Sync In carries no pulses; move that end to %s's "
                                    "Sync Out, nothing was started",
                                    bn, an, an, c + 1, cb->line, an);
            return ks_error_set(err, KS_ESYNC,
                                "no cable detected in the Sync Out jack of %s (cable %d: from %s's Sync Out to %s's "
                                "Sync In); plug the cable to %s into %s's Sync Out, nothing was started",
                                an, c + 1, an, bn, bn, an);
        }
        if ((a >= 0 && !j[a].supported) || (b >= 0 && !j[b].supported)) {
            unchecked++;
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%d (%s -> %s)", len ? ", " : "", c + 1, an, bn);
        } else {
            checked++;
        }
    }
    if (unchecked > 0) {
        ks_sync_check sk = {.status = KS_CHECK_SKIP, .device = -1, .other = -1};
        snprintf(sk.id, sizeof sk.id, "jacks");
        snprintf(sk.message, sizeof sk.message,
                 "cable%s %s not checked at the jacks: a device it joins cannot report its jacks; the signal and "
                 "start-order checks test it from the frames",
                 unchecked > 1 ? "s" : "", skipped);
        ks_syncstats_add_check(s->stats, &sk);
    }
    if (checked > 0 || unchecked == 0) {
        ks_sync_check ok = {.status = KS_CHECK_PASS, .device = -1, .other = -1};
        snprintf(ok.id, sizeof ok.id, "jacks");
        snprintf(ok.message, sizeof ok.message, "every declared cable%s (%d) is detected at both jacks it joins",
                 unchecked ? " that could be checked" : "", checked);
        ks_syncstats_add_check(s->stats, &ok);
    }
    return KS_OK;
}

static ks_status check_firmware(ks_session *s, ks_error *err)
{
    const ks_device_info *a = ks_device_info_get(s->d[0].dev);
    for (int i = 1; i < s->n; i++) {
        const ks_device_info *b = ks_device_info_get(s->d[i].dev);
        if (!ks_version_equal(&a->rgb, &b->rgb) || !ks_version_equal(&a->depth, &b->depth)) {
            char va[32], vb[32], da[32], db[32];
            ks_version_format(&a->rgb, va, sizeof va);
            ks_version_format(&b->rgb, vb, sizeof vb);
            ks_version_format(&a->depth, da, sizeof da);
            ks_version_format(&b->depth, db, sizeof db);
            ks_sync_check c = {.status = KS_CHECK_WARN, .device = i, .other = 0};
            snprintf(c.id, sizeof c.id, "firmware");
            snprintf(c.message, sizeof c.message,
                     "%s has firmware colour %s / depth %s but %s has %s / %s; update every device to the same "
                     "firmware (AzureKinectFirmwareTool)",
                     dname(s, i), vb, db, dname(s, 0), va, da);
            if (!s->opt.allow_firmware_mismatch)
                return ks_error_set(err, KS_EINVAL, "%s", c.message);
            ks_syncstats_add_check(s->stats, &c);
            return KS_OK;
        }
    }
    ks_sync_check c = {.status = KS_CHECK_PASS, .device = -1, .other = -1};
    snprintf(c.id, sizeof c.id, "firmware");
    char v[32];
    ks_version_format(&a->rgb, v, sizeof v);
    snprintf(c.message, sizeof c.message, "every device runs colour firmware %s", v);
    ks_syncstats_add_check(s->stats, &c);
    return KS_OK;
}

static ks_status set_exposure(ks_session *s, ks_error *err)
{
    ks_sync_setup *su = ks_syncstats_setup(s->stats);
    for (int i = 0; i < s->n; i++) {
        ks_device *dv = s->d[i].dev;
        if (s->rig.exposure.manual) {
            ks_status st = ks_device_set_color_control(dv, KS_CONTROL_POWERLINE_FREQUENCY, KS_CONTROL_MODE_MANUAL,
                                                       (int32_t)s->rig.exposure.powerline, err);
            if (st == KS_OK)
                st = ks_device_set_color_control(dv, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL,
                                                 s->rig.exposure.exposure_us, err);
            if (st != KS_OK && st != KS_EUNSUPPORTED)
                return ks_error_prefix(err, st, "setting the exposure of %s", dname(s, i));
        }
        ks_control_mode mode = KS_CONTROL_MODE_MANUAL;
        int32_t v = 0;
        ks_error e;
        if (ks_device_get_color_control(dv, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, &mode, &v, &e) == KS_OK)
            su->auto_exposure[i] = mode == KS_CONTROL_MODE_AUTO;
        else
            su->auto_exposure[i] = !s->rig.exposure.manual;
    }
    return KS_OK;
}

/* usbcore.usbfs_memory_mb of this host, 0 when unknown or unlimited. */
static int ks_session_host_usbfs_mb(void)
{
    FILE *f = fopen("/sys/module/usbcore/parameters/usbfs_memory_mb", "r");
    int mb = 0;
    if (f) {
        if (fscanf(f, "%d", &mb) != 1)
            mb = 0;
        fclose(f);
    }
    return mb > 0 ? mb : 0;
}

ks_status ks_session_open(const ks_rig *rig, const ks_plan *plan, ks_backend *backend, const ks_session_options *opt,
                          ks_session **out, ks_error *err)
{
    if (!rig || !plan || !backend || !out)
        return ks_error_set(err, KS_EINVAL, "ks_session_open: missing argument");
    ks_session *s = calloc(1, sizeof *s);
    if (!s)
        return ks_error_set(err, KS_ENOMEM, "session: out of memory");
    s->rig = *rig;
    s->plan = *plan;
    if (opt)
        s->opt = *opt;
    else
        ks_session_options_init(&s->opt);
    if (s->opt.first_frame_timeout_ms <= 0)
        s->opt.first_frame_timeout_ms = 5000;
    if (s->opt.capture_timeout_ms <= 0)
        s->opt.capture_timeout_ms = 100;
    if (s->opt.queue_frames <= 0)
        s->opt.queue_frames = 8;
    s->backend = backend;
    s->lossless = s->opt.lossless > 0 ||
                  (s->opt.lossless < 0 && (ks_backend_caps(backend) & KS_BACKEND_CAP_VIRTUAL_TIME));
    pthread_mutex_init(&s->mu, NULL);
    ks_cond_init_monotonic(&s->cv); /* deadlines on CLOCK_MONOTONIC: a wall-clock step neither stalls nor spins a wait */
    s->ref = 0;
    for (int i = 0; i < rig->device_count; i++) {
        if (s->opt.host && strcmp(rig->devices[i].host[0] ? rig->devices[i].host : "localhost", s->opt.host))
            continue;
        if (s->n == KS_MATCH_MAX_DEVICES)
            break;
        sdev *d = &s->d[s->n];
        d->s = s;
        d->index = s->n;
        d->rig_index = i;
        d->cfg = plan->devices[i].config;
        d->q_max = s->opt.queue_frames;
        d->q = calloc((size_t)d->q_max, sizeof *d->q);
        if (!d->q) {
            ks_session_close(s);
            return ks_error_set(err, KS_ENOMEM, "session: out of memory");
        }
        if (plan->devices[i].sync_mode == KS_SYNC_MASTER)
            s->ref = s->n;
        s->n++;
    }
    bool have_master = false;
    for (int i = 0; i < s->n; i++)
        have_master |= plan->devices[s->d[i].rig_index].sync_mode == KS_SYNC_MASTER;
    int trig_to = rig->trigger.present ? (rig->trigger.to >= 0 ? rig->trigger.to : rig->master) : -1;
    if (!have_master && trig_to >= 0) /* every device subordinate, fed by an external trigger: the head is the reference */
        for (int i = 0; i < s->n; i++)
            if (s->d[i].rig_index == trig_to)
                s->ref = i;
    if (!s->n) {
        ks_session_close(s);
        return ks_error_set(err, KS_EINVAL, "the rig has no device on host %s; check the devices' host: keys",
                            s->opt.host ? s->opt.host : "(any)");
    }
    /* matcher and statistics */
    ks_matcher_config *m = &s->mcfg;
    ks_matcher_config_init(m, s->n, rig->camera.fps, rig->ts_convention);
    m->reference = s->ref;
    m->tolerance_us = s->opt.tolerance_us;
    m->release = release_capture;
    if (s->lossless) {
        /* virtual time: devices' threads may be far apart in keys without anything being lost, so
         * wait for a device until its pending queue overflows (still bounded) */
        m->wait_us = 1e12;
        m->max_pending = 4 * s->opt.queue_frames + 16;
        /* and never drop a finished set: feed() stops at KS_LOSSLESS_READY sets waiting, and one
         * push emits at most every pending frame as a set of its own */
        m->max_output = KS_LOSSLESS_READY + s->n * m->max_pending + 1;
    }
    for (int i = 0; i < s->n; i++) {
        const ks_plan_device *pd = &plan->devices[s->d[i].rig_index];
        m->devices[i].mode = pd->sync_mode;
        m->devices[i].color_offset_us = pd->sync_mode == KS_SYNC_SUBORDINATE ? pd->subordinate_delay_effective_us : 0;
        m->devices[i].depth_delay_us = pd->depth_delay_effective_us;
        m->devices[i].color_exposure_us = pd->exposure_us > 0 ? pd->exposure_us : rig->exposure.exposure_us;
    }
    ks_sync_setup su;
    memset(&su, 0, sizeof su);
    su.device_count = s->n;
    su.match = *m;
    su.depth_mode = rig->camera.depth_mode;
    su.external_trigger = rig->trigger.present;
    su.start_order_known_wrong = s->opt.wrong_order;
    int usbfs = ks_backend_usbfs_mb(backend); /* the simulated hosts' own, else this host's */
    if (usbfs < 0)
        usbfs = ks_session_host_usbfs_mb();
    for (int i = 0; i < s->n; i++) {
        int ri = s->d[i].rig_index;
        su.upstream[i] = -1;
        for (int c = 0; c < rig->cable_count; c++)
            if (rig->cables[c].to == ri)
                su.upstream[i] = session_index_of_rig(s, rig->cables[c].from);
        su.trigger_fed[i] = ri == trig_to;
        su.started_as_master[i] = plan->devices[ri].sync_mode == KS_SYNC_MASTER;
        su.usbfs_mb[i] = usbfs;
        for (int k = 0; k < rig->device_count; k++)
            su.devices_on_host[i] += !strcmp(rig->devices[k].host, rig->devices[ri].host);
    }
    for (int i = 0; i < s->n; i++) {
        snprintf(su.names[i], sizeof su.names[i], "%s", dname(s, i));
        su.groups[i] = rig->devices[s->d[i].rig_index].group;
        const char *h = rig->devices[s->d[i].rig_index].host;
        su.host[i] = i;
        for (int k = 0; k < i; k++)
            if (!strcmp(rig->devices[s->d[k].rig_index].host, h)) {
                su.host[i] = su.host[k];
                break;
            }
    }
    /* when the backend knows the geometry (the simulator): which lasers light which views (for the
     * laser-groups check). Only pairs in different interference groups: the checks look at no other,
     * and each pair costs the simulator a mask (every pixel of a projected into b; a 9-device rig in
     * one group asked for 72 of them here, a third of its start-up). */
    if (s->n > 1) {
        bool measured = false;
        su.light_known = true;
        for (int a = 0; a < s->n && su.light_known; a++)
            for (int b = 0; b < s->n && su.light_known; b++) {
                if (a == b || su.groups[a] == su.groups[b])
                    continue;
                int px = 0;
                if (ks_backend_laser_shared(backend, rig->devices[s->d[a].rig_index].serial,
                                            rig->devices[s->d[b].rig_index].serial, rig->camera.depth_mode, &px,
                                            NULL) != KS_OK ||
                    px < 0)
                    su.light_known = false;
                else
                    su.shared_light[a][b] = px;
                measured = true;
            }
        su.light_known = su.light_known && measured;
    }
    ks_status st = ks_matcher_create(m, &s->matcher, err);
    if (st == KS_OK)
        st = ks_syncstats_create(&su, &s->stats, err);
    if (st != KS_OK) {
        ks_session_close(s);
        return st;
    }
    /* devices */
    for (int i = 0; i < s->n; i++) {
        st = ks_device_open_by_serial(backend, rig->devices[s->d[i].rig_index].serial, &s->d[i].dev, err);
        if (st != KS_OK) {
            ks_error_prefix(err, st, "rig device %s", dname(s, i));
            ks_session_close(s);
            return st;
        }
        unsigned streams = s->opt.streams & KS_STREAM_ALL;
        if (streams && s->opt.measure_invalid)
            streams |= KS_STREAM_COLOR | KS_STREAM_DEPTH;
        if (streams && streams != KS_STREAM_ALL)
            ks_device_set_streams(s->d[i].dev, streams);
    }
    if ((st = check_firmware(s, err)) != KS_OK || (st = check_jacks(s, err)) != KS_OK ||
        (st = set_exposure(s, err)) != KS_OK) {
        ks_session_close(s);
        return st;
    }
    /* the laser schedule the devices will run (independent check of the configurations) */
    ks_plan_proof proof;
    ks_plan_check_lasers(rig, plan, ks_rig_guard_us(rig), &proof);
    if (proof.pairs_checked > 0) {
        ks_sync_check c = {.status = proof.lasers_ok ? KS_CHECK_PASS : KS_CHECK_FAIL, .other = -1,
                           .value = proof.min_separation_us};
        int a = session_index_of_rig(s, proof.device_a), b = session_index_of_rig(s, proof.device_b);
        c.device = a;
        c.other = b;
        snprintf(c.id, sizeof c.id, "laser-schedule");
        snprintf(c.unit, sizeof c.unit, "us");
        snprintf(c.message, sizeof c.message,
                 "configured delays put the closest laser pulses of %s and %s %.1f us apart (guard %.0f us)%s",
                 a >= 0 ? dname(s, a) : "?", b >= 0 ? dname(s, b) : "?", proof.min_separation_us, proof.guard_us,
                 proof.lasers_ok ? "" : "; use the delays of `kinsync plan`");
        ks_syncstats_add_check(s->stats, &c);
    }
    *out = s;
    return KS_OK;
}

/* ---- capture threads ---- */

static double invalid_fraction(const ks_image *img)
{
    if (!img || img->format != KS_FORMAT_DEPTH16 || !img->data || img->width <= 0 || img->height <= 0)
        return -1;
    uint64_t zero = 0, total = 0;
    for (int y = 0; y < img->height; y += 2) {
        const uint16_t *row = (const uint16_t *)(img->data + (size_t)y * (size_t)img->stride);
        for (int x = 0; x < img->width; x += 2, total++)
            zero += row[x] == 0;
    }
    return total ? (double)zero / (double)total : -1;
}

/* Virtual time on one shared clock (KS_BACKEND_CAP_SHARED_CLOCK, the simulator): the reader of one
 * device must not run the world ahead of the others, or their backend queues overflow. Not for
 * recordings: their playback paces the files by each file's own progress, and a file that starts
 * later in device time (another take, a late start) would then wait here, 200 ms per frame, for a
 * device the playback holds back (align over such takes waited seconds doing nothing). A thread whose newest frame is more than 2 periods ahead (in
 * keys, i.e. device time) of the slowest device that is delivering waits (at most 200 ms of wall time, so a pathological case slows down, never hangs).
 * Devices that time out, stall or died do not hold the others back. Called without the lock. */
static void fair_wait(ks_session *s, sdev *d)
{
    pthread_mutex_lock(&s->mu);
    double give_up = now_s() + 0.2;
    const double lead = 2 * s->mcfg.period_us;
    while (!s->stop_requested && now_s() < give_up && d->first_frame) {
        double lo = INFINITY;
        for (int i = 0; i < s->n; i++) {
            const sdev *o = &s->d[i];
            if (o == d || o->dead || o->timeouts_in_row * s->opt.capture_timeout_ms >= 1000)
                continue;
            double k = o->first_frame ? o->last_key : -INFINITY; /* not started delivering yet: wait for it */
            if (k < lo)
                lo = k;
        }
        if (lo == INFINITY || (lo > -INFINITY && d->last_key <= lo + lead))
            break;
        ks_cond_wait_ms(&s->cv, &s->mu, 10);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *capture_main(void *arg)
{
    sdev *d = arg;
    ks_session *s = d->s;
    uint64_t count = 0;
    for (;;) {
        if (s->stop_requested)
            break;
        if (s->lossless && (ks_backend_caps(s->backend) & KS_BACKEND_CAP_SHARED_CLOCK))
            fair_wait(s, d);
        ks_capture *cap = NULL;
        ks_error e;
        ks_status st = ks_device_get_capture(d->dev, &cap, s->opt.capture_timeout_ms, &e);
        if (st == KS_ETIMEOUT) {
            pthread_mutex_lock(&s->mu);
            if (!d->first_frame)
                d->waited_ms += (uint64_t)s->opt.capture_timeout_ms;
            d->timeouts_in_row++;
            snprintf(d->last_error, sizeof d->last_error, "%s", e.message);
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (st != KS_OK) {
            pthread_mutex_lock(&s->mu);
            /* the end of a finite stream (a recording) ends the device, it is not a fault */
            d->ended = st == KS_EEOF && (ks_backend_caps(s->backend) & KS_BACKEND_CAP_FINITE);
            d->fault = !s->stop_requested && !d->ended;
            snprintf(d->last_error, sizeof d->last_error, "%s", e.message);
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (s->opt.on_capture)
            s->opt.on_capture(d->index, cap, s->opt.user);
        count++;
        if (s->opt.reapply_exposure_every > 0 && count % (uint64_t)s->opt.reapply_exposure_every == 0) {
            ks_device_set_color_control(d->dev, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL,
                                        s->rig.exposure.exposure_us, NULL);
            pthread_mutex_lock(&s->mu);
            d->exposure_sets++;
            pthread_mutex_unlock(&s->mu);
        }
        ks_match_frame f;
        memset(&f, 0, sizeof f);
        f.device = d->index;
        f.invalid_fraction = -1;
        if (cap->color) {
            f.has_color = true;
            f.color_ts_us = cap->color->device_ts_us;
            f.color_exposure_us = cap->color->exposure_us;
            f.host_ns = cap->color->system_ts_ns;
        }
        const ks_image *dimg = cap->depth ? cap->depth : cap->ir;
        if (dimg) {
            f.has_depth = true;
            f.depth_ts_us = dimg->device_ts_us;
            f.depth_exposure_us = dimg->exposure_us;
            if (!f.host_ns)
                f.host_ns = dimg->system_ts_ns;
            if (s->opt.measure_invalid && cap->depth)
                f.invalid_fraction = invalid_fraction(cap->depth);
        }
        if (s->opt.measure_invalid && cap->color)
            f.content = ks_color_image_content(cap->color);
        if (!f.has_color && !f.has_depth) {
            ks_capture_release(cap);
            continue;
        }
        f.user = cap;
        pthread_mutex_lock(&s->mu);
        while (s->lossless && d->q_count >= lossless_queue_cap(s, d) && !s->stop_requested) {
            ks_cond_wait_ms(&s->cv, &s->mu, 20);
        }
        if (s->lossless && d->q_count >= lossless_queue_cap(s, d)) {
            /* stopping in virtual time: this capture came after the run; dropping the oldest
             * instead would leave a gap in the frames the run still delivers */
            ks_capture_release(cap);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (d->q_count == d->q_max) { /* consumer too slow: drop the oldest, count it */
            ks_capture_release(d->q[d->q_head].f.user);
            d->q_head = (d->q_head + 1) % d->q_max;
            d->q_count--;
            d->queue_drops++;
        }
        d->q[(d->q_head + d->q_count) % d->q_max].f = f;
        d->q_count++;
        if (d->q_count > d->q_high)
            d->q_high = d->q_count;
        ks_matcher_key(&s->mcfg, &f);
        d->last_key = f.key_us;
        d->frames++;
        d->first_frame = true;
        d->timeouts_in_row = 0;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    d->dead = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static ks_status start_device(ks_session *s, int i, ks_error *err)
{
    ks_status st = ks_device_start_cameras(s->d[i].dev, &s->d[i].cfg, err);
    if (st != KS_OK)
        return ks_error_prefix(err, st, "starting %s (%s)", dname(s, i), ks_wired_sync_mode_name(s->d[i].cfg.wired_sync_mode));
    return KS_OK;
}

static void join_threads(ks_session *s)
{
    s->stop_requested = 1;
    for (int i = 0; i < s->n; i++)
        if (s->d[i].thread_running) {
            pthread_join(s->d[i].thread, NULL);
            s->d[i].thread_running = false;
        }
}

static void diagnose(ks_session *s, int i, ks_error *err)
{
    const ks_rig *rig = &s->rig;
    int ri = s->d[i].rig_index;
    char cable[160];
    snprintf(cable, sizeof cable, "the cable into %s's Sync In", dname(s, i));
    for (int c = 0; c < rig->cable_count; c++)
        if (rig->cables[c].to == ri)
            snprintf(cable, sizeof cable, "the cable %s Sync Out -> %s Sync In", rig->devices[rig->cables[c].from].name,
                     dname(s, i));
    /* kept short: the whole diagnosis must fit one error message */
    ks_error_set(err, KS_ETIMEOUT,
                 "no frames from %s (%s) within %d ms; it says: %.240s. Likely causes, in order: (1) %s missing, "
                 "loose or over %.0f m; (2) wrong jack (Sync In/Out swapped); (3) master %s not streaming colour; "
                 "(4) external trigger out of spec",
                 dname(s, i), ks_wired_sync_mode_name(s->d[i].cfg.wired_sync_mode), s->opt.first_frame_timeout_ms,
                 s->d[i].last_error[0] ? s->d[i].last_error : "nothing", cable, ks_max_cable_length_m(),
                 dname(s, s->ref));
}

static void start_order(ks_session *s)
{
    int k = 0;
    for (int j = 0; j < s->rig.device_count && k < s->n; j++) {
        int i = session_index_of_rig(s, s->plan.start_order[j]);
        if (i >= 0)
            s->start_order[k++] = i;
    }
    for (int i = 0; i < s->n && k < s->n; i++) { /* anything the plan left out: subordinates first */
        bool have = false;
        for (int m = 0; m < k; m++)
            have |= s->start_order[m] == i;
        if (!have)
            s->start_order[k++] = i;
    }
    /* the master last */
    for (int m = 0; m < s->n - 1; m++)
        if (s->d[s->start_order[m]].cfg.wired_sync_mode == KS_SYNC_MASTER) {
            int t = s->start_order[m];
            memmove(&s->start_order[m], &s->start_order[m + 1], sizeof(int) * (size_t)(s->n - 1 - m));
            s->start_order[s->n - 1] = t;
            break;
        }
    if (s->opt.wrong_order) /* the mistake: the master first */
        for (int m = 1; m < s->n; m++)
            if (s->d[s->start_order[m]].cfg.wired_sync_mode == KS_SYNC_MASTER) {
                int t = s->start_order[m];
                memmove(&s->start_order[1], &s->start_order[0], sizeof(int) * (size_t)m);
                s->start_order[0] = t;
                break;
            }
}

static void feed(ks_session *s);

/* Starts session device i's cameras; a subordinate must then stream and not be gone (armed). */
static ks_status start_and_confirm(ks_session *s, int i, ks_error *err)
{
    ks_status st = start_device(s, i, err);
    if (st != KS_OK || s->d[i].cfg.wired_sync_mode != KS_SYNC_SUBORDINATE)
        return st;
    /* armed: streaming, and not gone (a poll must not report the device missing) */
    ks_capture *c = NULL;
    ks_error e;
    ks_status ps = ks_device_get_capture(s->d[i].dev, &c, 0, &e);
    ks_capture_release(c);
    if (!ks_device_is_streaming(s->d[i].dev) || (ps != KS_OK && ps != KS_ETIMEOUT))
        return ks_error_set(err, KS_ESYNC, "%s did not arm as a subordinate: %s; check the device and restart",
                            dname(s, i), e.message);
    return KS_OK;
}

static ks_status spawn_thread(ks_session *s, int i, ks_error *err)
{
    if (s->d[i].thread_running)
        return KS_OK;
    if (pthread_create(&s->d[i].thread, NULL, capture_main, &s->d[i]) != 0)
        return ks_error_set(err, KS_ENOMEM, "cannot create the capture thread of %s", dname(s, i));
    s->d[i].thread_running = true;
    return KS_OK;
}

static bool is_master(const ks_session *s, int i)
{
    return s->d[i].cfg.wired_sync_mode == KS_SYNC_MASTER;
}

/* The first step of a start: the start order, the start time. */
static ks_status begin_start(ks_session *s, ks_error *err)
{
    if (!s)
        return ks_error_set(err, KS_EINVAL, "no session");
    if (s->started)
        return ks_error_set(err, KS_ESTATE, "the session is already started");
    start_order(s);
    s->started = true;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
    return KS_OK;
}

/* Starts, in start order, the devices other than the master (`others`), the master (`master`), or
 * both: each subordinate confirmed armed; with wrong_order the master, first, waited for until it
 * streams (the mistake as users make it). Capture threads start with each device (spawn_each) or
 * once every device is started. On failure everything is stopped. */
static ks_status start_devices(ks_session *s, bool others, bool master, bool spawn_each, ks_error *err)
{
    ks_status st = KS_OK;
    for (int k = 0; k < s->n && st == KS_OK; k++) {
        int i = s->start_order[k];
        if (!(is_master(s, i) ? master : others) || s->d[i].thread_running)
            continue;
        st = start_and_confirm(s, i, err);
        if (st == KS_OK && s->opt.wrong_order && k == 0 && is_master(s, i) && s->n > 1) {
            ks_capture *c = NULL;
            for (int t = 0; t < 10 && !c; t++)
                ks_device_get_capture(s->d[i].dev, &c, s->opt.capture_timeout_ms, NULL);
            ks_capture_release(c);
        }
        if (st == KS_OK && spawn_each)
            st = spawn_thread(s, i, err);
    }
    for (int i = 0; i < s->n && st == KS_OK && !spawn_each; i++)
        st = spawn_thread(s, i, err);
    if (st != KS_OK)
        ks_session_stop(s);
    return st;
}

ks_status ks_session_arm(ks_session *s, ks_error *err)
{
    ks_status st = begin_start(s, err);
    if (st != KS_OK)
        return st;
    s->armed = true;
    return start_devices(s, true, false, true, err);
}

ks_status ks_session_start_master(ks_session *s, ks_error *err)
{
    if (!s || !s->armed)
        return ks_error_set(err, KS_ESTATE, "the session is not armed; call ks_session_arm first");
    if (s->stopped)
        return ks_error_set(err, KS_ESTATE, "the session has stopped");
    return start_devices(s, false, true, true, err);
}

ks_status ks_session_start(ks_session *s, ks_error *err)
{
    ks_status st = begin_start(s, err);
    if (st == KS_OK)
        st = start_devices(s, true, true, false, err);
    if (st != KS_OK)
        return st;
    /* first frames */
    /* the timeout is in backend time (timed-out waits add up); the wall clock is a safety net, far
     * wider for virtual-time backends whose frames may cost more CPU than real time */
    double t_end = now_s() + s->opt.first_frame_timeout_ms / 1000.0 * (s->lossless ? 10 : 1);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        feed(s); /* keep the queues moving (lossless capture threads would wait for us) */
        int silent = -1;
        bool all = true;
        for (int i = 0; i < s->n; i++) {
            if (s->d[i].first_frame)
                continue;
            all = false;
            if (s->d[i].dead || s->d[i].waited_ms >= (uint64_t)s->opt.first_frame_timeout_ms || now_s() >= t_end)
                if (silent < 0)
                    silent = i;
        }
        if (all)
            break;
        if (silent >= 0) {
            diagnose(s, silent, err);
            pthread_mutex_unlock(&s->mu);
            ks_session_stop(s);
            return KS_ETIMEOUT;
        }
        ks_cond_wait_ms(&s->cv, &s->mu, 20);
    }
    pthread_mutex_unlock(&s->mu);
    return KS_OK;
}

/* ---- consuming ---- */

/* Moves queued frames into the matcher; marks ended devices gone. Caller holds mu. */
static void feed(ks_session *s)
{
    pthread_cond_broadcast(&s->cv); /* room in the queues for lossless capture threads */
    /* in key order across the devices, so that one device's backlog does not look like the others
     * being late */
    for (;;) {
        /* virtual time: a consumer slower than the devices holds them back (their queues fill and
         * the capture threads wait) instead of losing the finished sets it has not popped yet */
        if (s->lossless && ks_matcher_ready(s->matcher) >= (s->warm ? KS_LOSSLESS_READY : 1))
            break;
        int best = -1;
        double best_key = 0;
        for (int i = 0; i < s->n; i++) {
            sdev *d = &s->d[i];
            if (!d->q_count)
                continue;
            ks_match_frame *f = &d->q[d->q_head].f;
            ks_matcher_key(&s->mcfg, f);
            if (best < 0 || f->key_us < best_key) {
                best = i;
                best_key = f->key_us;
            }
        }
        if (best < 0)
            break;
        sdev *d = &s->d[best];
        ks_match_frame f = d->q[d->q_head].f;
        d->q_head = (d->q_head + 1) % d->q_max;
        d->q_count--;
        if (ks_matcher_push(s->matcher, &f, NULL) != KS_OK)
            ks_capture_release(f.user);
    }
    for (int i = 0; i < s->n; i++) {
        sdev *d = &s->d[i];
        /* gone once its last queued frame is in the matcher: a lossless feed stops with frames still
         * queued, and a device marked gone before them would see its sets completed without it */
        if (d->dead && !d->q_count && !d->gone_marked) {
            d->gone_marked = true;
            ks_matcher_mark_gone(s->matcher, i);
        }
    }
}

static bool all_dead(const ks_session *s)
{
    for (int i = 0; i < s->n; i++)
        if (!s->d[i].dead)
            return false;
    return true;
}

static int faulted(const ks_session *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->d[i].fault)
            return i;
    return -1;
}

static void account(ks_session *s, ks_session_set *out)
{
    /* Measurement starts with the first complete set (devices drop a few frames right after
     * start, each a different number); sets cut short by the stop itself, or by the end of a
     * recording (the files of one take end a frame apart), are delivered too, but neither is
     * evidence of drops. */
    if (out->set.complete)
        s->measuring = true;
    if (out->set.complete || s->sets + 1 >= KS_WARM_AFTER_SETS)
        s->warming = true; /* deepened when the consumer comes back for the next set */
    /* Cut by the end of the take: every device missing from it ended its recording at most a frame
     * or two before the set. A recording that ended long before the others is evidence (its device
     * lost its frames), counted as a live run counts the same frames. */
    bool cut = !out->set.complete;
    for (int i = 0; cut && i < s->n; i++)
        if (!(out->set.present_mask & (1u << i)) &&
            !(s->d[i].ended && out->set.key_us - s->d[i].last_key <= 2.5 * s->mcfg.period_us))
            cut = false;
    if (s->measuring && !((s->stop_requested || cut) && !out->set.complete))
        ks_syncstats_add(s->stats, &out->set);
    s->stats_dirty = true;
    s->sets++;
    double worst = 0;
    for (int i = 0; i < s->n; i++) {
        double k = ks_frame_set_skew_us(&out->set, i, s->ref);
        if (!isnan(k) && fabs(k) > worst)
            worst = fabs(k);
        out->host_ns[i] = (out->set.present_mask & (1u << i)) ? out->set.frames[i].host_ns : 0;
    }
    s->recent_worst = s->recent_worst * 0.9 > worst ? s->recent_worst * 0.9 : worst;
}

ks_status ks_session_next(ks_session *s, ks_session_set *out, int timeout_ms, ks_error *err)
{
    if (!s || !out)
        return ks_error_set(err, KS_EINVAL, "ks_session_next: missing argument");
    if (!s->started)
        return ks_error_set(err, KS_ESTATE, "the session is not started; call ks_session_start first");
    double t_end = now_s() + (timeout_ms < 0 ? 1e9 : timeout_ms / 1000.0);
    pthread_mutex_lock(&s->mu);
    if (s->warming && !s->warm)
        s->warm = true; /* start-up is over: the readers may run ahead now (feed wakes them) */
    for (;;) {
        feed(s);
        int bad = faulted(s);
        if (bad >= 0 || s->stop_requested) {
            if (!s->flushed) {
                /* stop the others too: a fault or a request ends the session */
                s->stop_requested = 1;
                ks_matcher_flush(s->matcher);
                s->flushed = all_dead(s);
            }
        }
        if (ks_matcher_pop(s->matcher, &out->set)) {
            account(s, out);
            pthread_mutex_unlock(&s->mu);
            return KS_OK;
        }
        if (all_dead(s)) {
            ks_matcher_flush(s->matcher);
            if (ks_matcher_pop(s->matcher, &out->set)) {
                account(s, out);
                pthread_mutex_unlock(&s->mu);
                return KS_OK;
            }
            if (bad >= 0 && !s->fault_reported) {
                s->fault_reported = true;
                ks_error_set(err, KS_ENODEV, "%s failed during capture: %s; the session stopped, the sets before "
                                             "the failure were delivered",
                             dname(s, bad), s->d[bad].last_error);
                pthread_mutex_unlock(&s->mu);
                return KS_ENODEV;
            }
            pthread_mutex_unlock(&s->mu);
            return ks_error_set(err, KS_EEOF, "the session has stopped");
        }
        double left = t_end - now_s();
        if (left <= 0) {
            pthread_mutex_unlock(&s->mu);
            return ks_error_set(err, KS_ETIMEOUT, "no frame set within %d ms", timeout_ms);
        }
        struct timespec until = ks_mono_timespec(ks_mono_ns() + (int64_t)((left < 0.05 ? left : 0.05) * 1e9));
        ks_cond_wait_until(&s->cv, &s->mu, &until);
    }
}

void ks_session_set_release(ks_session_set *set)
{
    if (!set)
        return;
    for (int i = 0; i < KS_MATCH_MAX_DEVICES; i++)
        if (set->set.present_mask & (1u << i)) {
            ks_capture_release(set->set.frames[i].user);
            set->set.frames[i].user = NULL;
        }
    set->set.present_mask = 0;
}

void ks_session_request_stop(ks_session *s)
{
    if (s)
        s->stop_requested = 1;
}

void ks_session_stop(ks_session *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = true;
    join_threads(s);
    /* stop in reverse start order: the master first, so subordinates see no half frame */
    for (int k = s->n - 1; k >= 0; k--)
        ks_device_stop_cameras(s->d[s->start_order[k]].dev);
    pthread_mutex_lock(&s->mu);
    feed(s);
    pthread_mutex_unlock(&s->mu);
}

void ks_session_close(ks_session *s)
{
    if (!s)
        return;
    if (s->started)
        ks_session_stop(s);
    for (int i = 0; i < s->n; i++) {
        sdev *d = &s->d[i];
        for (int k = 0; d->q && k < d->q_count; k++)
            ks_capture_release(d->q[(d->q_head + k) % d->q_max].f.user);
        free(d->q);
    }
    close_devices(s);
    ks_matcher_free(s->matcher);
    ks_syncstats_free(s->stats);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

ks_syncstats *ks_session_stats(ks_session *s)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    ks_matcher_stats ms;
    ks_matcher_get_stats(s->matcher, &ms);
    ks_syncstats_set_matcher_stats(s->stats, &ms);
    ks_sync_setup *su = ks_syncstats_setup(s->stats);
    for (int i = 0; i < s->n; i++) {
        su->exposure_sets[i] = s->d[i].exposure_sets;
        su->streaming_failed[i] = s->d[i].fault;
        if (s->d[i].fault)
            snprintf(su->failure[i], sizeof su->failure[i], "%.159s", s->d[i].last_error);
    }
    ks_syncstats_finish(s->stats);
    pthread_mutex_unlock(&s->mu);
    return s->stats;
}

void ks_session_get_progress(ks_session *s, ks_session_progress *p)
{
    memset(p, 0, sizeof *p);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    ks_matcher_stats ms;
    ks_matcher_get_stats(s->matcher, &ms);
    p->device_count = s->n;
    p->sets = s->sets;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    p->seconds = (double)(ts.tv_sec - s->t0.tv_sec) + (ts.tv_nsec - s->t0.tv_nsec) * 1e-9;
    for (int i = 0; i < s->n; i++) {
        p->frames[i] = s->d[i].frames;
        p->queue_drops[i] = s->d[i].queue_drops;
        p->missing[i] = ms.missing[i];
        p->alive[i] = !s->d[i].dead;
        p->failed[i] = s->d[i].fault;
        p->silent_ms[i] = s->d[i].timeouts_in_row * s->opt.capture_timeout_ms;
        if (s->d[i].q_high > p->max_queue_seen)
            p->max_queue_seen = s->d[i].q_high;
    }
    p->worst_skew_us = s->recent_worst;
    p->matcher_held = ks_matcher_held(s->matcher);
    pthread_mutex_unlock(&s->mu);
}

void ks_session_device_reason(ks_session *s, int d, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    buf[0] = 0;
    if (!s || d < 0 || d >= s->n)
        return;
    pthread_mutex_lock(&s->mu);
    snprintf(buf, n, "%s", s->d[d].last_error);
    pthread_mutex_unlock(&s->mu);
}

int ks_session_device_count(const ks_session *s)
{
    return s ? s->n : 0;
}

int ks_session_rig_index(const ks_session *s, int d)
{
    return s && d >= 0 && d < s->n ? s->d[d].rig_index : -1;
}

ks_device *ks_session_device(ks_session *s, int d)
{
    return s && d >= 0 && d < s->n ? s->d[d].dev : NULL;
}

int ks_session_reference(const ks_session *s)
{
    return s ? s->ref : -1;
}

const ks_matcher_config *ks_session_matcher_config(const ks_session *s)
{
    return s ? &s->mcfg : NULL;
}
