/* kinsync view RIG.yaml | FILE.mkv...: the whole rig live in a browser (docs/view.md). One more
 * consumer of the session: the ks_session_next loop here feeds the view's sink (previews, cloud),
 * the recorder of a take when one is asked for, and publishes the state (devices, start sequence,
 * live checks, skew over time) a few times per second. The HTTP server runs on its own threads and
 * never holds this loop up. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net_cli.h"
#include "cli/session_cli.h"
#include "kinsync/fuse.h"
#include "kinsync/playback.h"
#include "kinsync/record.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "kinsync/syncstats.h"
#include "kinsync/view.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync view [OPTIONS] RIG.yaml\n"
            "       kinsync view [OPTIONS] FILE.mkv...\n"
            "\n"
            "Starts the rig through the session (as `kinsync verify` does) and shows it live on one page\n"
            "in the browser: every device with its role, host, serial, firmware, jacks against the\n"
            "wiring and state, the start sequence as it happens, colour/depth/IR previews from the same\n"
            "frame set, the verify checks updating live, colour skew against the master over time,\n"
            "drops and drift, the point cloud of the latest frame set in 3D, and controls to start,\n"
            "stop and record a take. Given recordings, it plays them in real time instead, with a time\n"
            "slider in place of record: moving it seeks every recording to that time and pauses at the\n"
            "frame set there (previews, cloud and checks of that set; Play continues). Without devices\n"
            "it runs the simulator on the rig file (paced: in real time).\n"
            "\n"
            "Options:\n"
            "  --port N          port to serve on (default 8765; 0: any free port); the address is printed\n"
            "  --listen ADDR     IPv4 address to bind (default 127.0.0.1; 0.0.0.0 serves every interface:\n"
            "                    then any Host header is accepted and only the token protects control)\n"
            "  --no-browser      do not open the page (it is opened with xdg-open only when a display exists)\n"
            "  --read-only       refuse start/stop/record from the page\n"
            "  --token T         the control token (16-64 characters; default: random, printed)\n"
            "  --calibration F   rig-calibration.json (`kinsync calibrate`): the cloud in the rig frame\n"
            "  --cloud-color C   camera (default: each point coloured from its device's colour image of\n"
            "                    the same capture; grey outside the colour camera's view) or device (one\n"
            "                    colour per device, shaded by distance)\n"
            "  --takes DIR       where recorded takes go, one directory per take (default takes)\n"
            "  --seconds N       stop after N seconds of wall time and exit (default: until Ctrl-C)\n"
            "  --no-start        wait for Start on the page instead of starting at once\n"
            "  --previews N      preview frame sets per second (default 5); the 3D view's point cloud is\n"
            "                    made for 2 of them per second (fewer when N < 2); while no page (or API\n"
            "                    client) is attached nothing is decoded or encoded\n"
            "  --backend NAME    auto (default), sim, k4a\n"
            "  --timeout-ms N    how long to wait for the first frames (default 5000)\n"
            "  --start-master-first  start the master before the subordinates (the classic mistake)\n"
            "  --distributed     the rig spans hosts: start it through their agents (`kinsync agent`) as\n"
            "                    `record --distributed` does; the page shows every device's state, host,\n"
            "                    frame rate and the preview thumbnail its agent publishes (about 1/s).\n"
            "                    The agents' recordings stay on their hosts. Needs:\n"
            KS_NET_CLI_HELP
            "  -h, --help        this text\n"
            "\n"
            "Control requests (POST /api/control/start|stop|record|seek?t=S) need the token printed at start\n"
            "(the printed address carries it). Exit status: 0 stopped by Ctrl-C or --seconds, 1 the\n"
            "server or the rig could not start, 2 usage error.\n");
}

static volatile sig_atomic_t quit_requested;
static ks_session *volatile current_session;

static void on_sigint(int sig)
{
    (void)sig;
    quit_requested = 1;
    ks_session *s = current_session;
    if (s)
        ks_session_request_stop(s);
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define SKEW_BUCKETS 240 /* 60 s at 4 per second */

typedef struct devstate {
    char state[24];       /* closed, opened, armed, started, streaming, lost, stopped, failed */
    bool jacks_known, jack_in, jack_out, jacks_supported;
    char firmware[64];
    char sync_mode[16];
    bool first_frame;
} devstate;

typedef struct take_file {
    char path[600];
    uint64_t bytes, captures;
} take_file;

typedef struct view_run {
    const char *cmd;
    ks_view *v;
    ks_cli_rigrun r;
    bool playback;
    ks_backend *traced;
    ks_session *s;
    ks_view_sink *sink;
    ks_view_sink_options sopt;
    ks_session_options sesopt;
    char run_state[16];   /* stopped, starting, running, failed */
    char run_message[600];
    double t_start;       /* wall time of the last start */
    devstate dev[KS_RIG_MAX_DEVICES];
    bool expect_in[KS_RIG_MAX_DEVICES], expect_out[KS_RIG_MAX_DEVICES];
    char roles[KS_RIG_MAX_DEVICES][64];
    json_t *sequence;     /* the start sequence of the last start */
    /* skew over time: per bucket the largest |skew| per device (us) */
    double skew_t[SKEW_BUCKETS];
    double skew_v[SKEW_BUCKETS][KS_MATCH_MAX_DEVICES];
    int skew_count, skew_next;
    double bucket_t0, bucket_max[KS_MATCH_MAX_DEVICES];
    bool bucket_any;
    char *verify_json;
    double last_stats;
    /* recording */
    ks_recorder *rec;
    char take_name[64], take_dir[4200];
    double take_seconds, take_first_key;
    uint64_t take_sets;
    const char *takes_root;
    json_t *takes;        /* finished takes: [{name, dir, files: [{path, bytes, captures}]}] */
    uint64_t previews_before, skipped_before; /* of the sinks of earlier runs */
    atomic_int first_frame_flag[KS_MATCH_MAX_DEVICES]; /* set by capture threads, read by the loop */
    /* over recordings: the time slider */
    double duration_s;    /* the longest recording */
    double position_s;    /* of the last previewed frame set, from the recordings' start; NAN: none */
    bool seek_pause;      /* after a seek: preview the first complete frame set there, then pause */
    int last_sd[KS_RIG_MAX_DEVICES]; /* session index + 1 of each rig device in the last session (0: none) */
} view_run;

static int rig_index_of_serial(const ks_rig *rig, const char *serial)
{
    for (int i = 0; i < rig->device_count; i++)
        if (!strcmp(rig->devices[i].serial, serial))
            return i;
    return -1;
}

static void logf_view(view_run *vr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_view(view_run *vr, const char *fmt, ...)
{
    char line[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ks_view_publish_log(vr->v, line);
}

static void publish_state(view_run *vr);

static void on_trace(const char *serial, const char *what, const ks_device_config *cfg, void *user)
{
    view_run *vr = user;
    int i = rig_index_of_serial(&vr->r.rig, serial);
    if (i < 0)
        return;
    const char *name = vr->r.rig.devices[i].name;
    devstate *ds = &vr->dev[i];
    const char *event = what;
    if (!strcmp(what, "open")) {
        snprintf(ds->state, sizeof ds->state, "opened");
    } else if (!strcmp(what, "start")) {
        snprintf(ds->sync_mode, sizeof ds->sync_mode, "%s", ks_wired_sync_mode_name(cfg->wired_sync_mode));
        bool sub = cfg->wired_sync_mode == KS_SYNC_SUBORDINATE;
        snprintf(ds->state, sizeof ds->state, "%s", sub ? "armed" : "started");
        event = sub ? "armed (waiting for sync pulses)" : cfg->wired_sync_mode == KS_SYNC_MASTER
                                                              ? "started (master: sync pulses out)"
                                                              : "started";
    } else if (!strcmp(what, "start-failed")) {
        snprintf(ds->state, sizeof ds->state, "failed");
        event = "failed to start";
    } else if (!strcmp(what, "stop")) {
        snprintf(ds->state, sizeof ds->state, "stopped");
        event = "stopped";
    } else if (!strcmp(what, "close")) {
        snprintf(ds->state, sizeof ds->state, "closed");
        return;
    }
    json_t *e = json_object();
    json_object_set_new(e, "t_ms", json_real(round((wall() - vr->t_start) * 1e4) / 10));
    json_object_set_new(e, "device", json_string(name));
    json_object_set_new(e, "role", json_string(vr->roles[i]));
    json_object_set_new(e, "event", json_string(event));
    if (vr->sequence && strcmp(what, "open"))
        json_array_append_new(vr->sequence, e);
    else
        json_decref(e);
    if (strcmp(what, "open"))
        logf_view(vr, "%s (%s): %s", name, vr->roles[i], event);
    publish_state(vr);
}

static void on_capture(int device, ks_capture *cap, void *user)
{
    view_run *vr = user;
    ks_view_on_capture(device, cap, vr->v);
    if (device >= 0 && device < KS_MATCH_MAX_DEVICES)
        atomic_store(&vr->first_frame_flag[device], 1);
}

static json_t *num(double x)
{
    return isfinite(x) ? json_real(round(x * 100) / 100) : json_null();
}

static void publish_state(view_run *vr)
{
    const ks_rig *rig = &vr->r.rig;
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("kinsync.view/1"));
    json_object_set_new(root, "rig", json_string(rig->name));
    json_object_set_new(root, "backend", json_string(vr->r.backend ? ks_backend_name(vr->r.backend) : ""));
    json_object_set_new(root, "simulated", json_boolean(vr->r.simulated));
    json_object_set_new(root, "playback", json_boolean(vr->playback));
    if (vr->playback) { /* the time slider replaces record */
        json_object_set_new(root, "duration_s", num(vr->duration_s));
        json_object_set_new(root, "position_s", isfinite(vr->position_s) ? json_real(round(vr->position_s * 1000) / 1000)
                                                                          : json_null());
        json_object_set_new(root, "controls", json_pack("[s,s,s]", "start", "stop", "seek"));
    }
    json_object_set_new(root, "note", json_string(vr->r.note));
    json_object_set_new(root, "calibrated", json_boolean(vr->sopt.poses != NULL));
    json_object_set_new(root, "target_us", json_integer(ks_color_alignment_target_us()));
    json_t *run = json_object();
    json_object_set_new(run, "state", json_string(vr->run_state));
    json_object_set_new(run, "message", json_string(vr->run_message));
    ks_session_progress p;
    memset(&p, 0, sizeof p);
    bool live = vr->s && !strcmp(vr->run_state, "running");
    if (live)
        ks_session_get_progress(vr->s, &p);
    json_object_set_new(run, "seconds", num(live ? p.seconds : 0));
    json_object_set_new(run, "sets", json_integer((json_int_t)p.sets));
    json_object_set_new(root, "run", run);
    json_t *devs = json_array();
    int ref = vr->s ? ks_session_reference(vr->s) : -1;
    for (int i = 0; i < rig->device_count; i++) {
        const ks_rig_device *rd = &rig->devices[i];
        devstate *ds = &vr->dev[i];
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(rd->name));
        json_object_set_new(j, "serial", json_string(rd->serial));
        json_object_set_new(j, "host", json_string(rd->host));
        json_object_set_new(j, "role", json_string(vr->roles[i]));
        json_object_set_new(j, "sync_mode", json_string(ds->sync_mode));
        json_object_set_new(j, "firmware", json_string(ds->firmware));
        json_t *jk = json_object();
        json_object_set_new(jk, "known", json_boolean(ds->jacks_known && ds->jacks_supported));
        json_object_set_new(jk, "sync_in", json_boolean(ds->jack_in));
        json_object_set_new(jk, "sync_out", json_boolean(ds->jack_out));
        json_object_set_new(jk, "expect_in", json_boolean(vr->expect_in[i]));
        json_object_set_new(jk, "expect_out", json_boolean(vr->expect_out[i]));
        json_object_set_new(jk, "ok", json_boolean(!ds->jacks_known || !ds->jacks_supported ||
                                                   (ds->jack_in == vr->expect_in[i] && ds->jack_out == vr->expect_out[i])));
        json_object_set_new(j, "jacks", jk);
        int sd = -1;
        for (int d = 0; vr->s && d < ks_session_device_count(vr->s); d++)
            if (ks_session_rig_index(vr->s, d) == i)
                sd = d;
        if (vr->s)
            vr->last_sd[i] = sd + 1;
        else if (!strcmp(vr->run_state, "paused")) { /* the previews of the paused set stay on the page */
            sd = vr->last_sd[i] - 1;
            if (sd >= 0)
                snprintf(ds->state, sizeof ds->state, "paused");
        }
        const char *state = ds->state[0] ? ds->state : "closed";
        if (sd >= 0 && atomic_load(&vr->first_frame_flag[sd]) && (!strcmp(state, "armed") || !strcmp(state, "started")))
            snprintf(ds->state, sizeof ds->state, "%s", state = "streaming");
        if (live && sd >= 0 && !p.alive[sd])
            state = "lost";
        json_object_set_new(j, "state", json_string(state));
        json_object_set_new(j, "index", json_integer(sd));
        json_object_set_new(j, "master", json_boolean(sd >= 0 && sd == ref));
        if (live && sd >= 0) {
            double secs = p.seconds > 1e-3 ? p.seconds : 1e-3;
            json_object_set_new(j, "frames", json_integer((json_int_t)p.frames[sd]));
            json_object_set_new(j, "fps", num((double)p.frames[sd] / secs));
            json_object_set_new(j, "queue_drops", json_integer((json_int_t)p.queue_drops[sd]));
            json_object_set_new(j, "missing", json_integer((json_int_t)p.missing[sd]));
        }
        json_array_append_new(devs, j);
    }
    json_object_set_new(root, "devices", devs);
    json_object_set_new(root, "sequence", json_deep_copy(vr->sequence));
    /* skew over time */
    json_t *sk = json_object(), *st = json_array(), *sv = json_array();
    int first = (vr->skew_next - vr->skew_count + SKEW_BUCKETS) % SKEW_BUCKETS;
    int n = vr->s ? ks_session_device_count(vr->s) : 0;
    for (int d = 0; d < n; d++)
        json_array_append_new(sv, json_array());
    for (int k = 0; k < vr->skew_count; k++) {
        int b = (first + k) % SKEW_BUCKETS;
        json_array_append_new(st, num(vr->skew_t[b]));
        for (int d = 0; d < n; d++)
            json_array_append_new(json_array_get(sv, (size_t)d), num(vr->skew_v[b][d]));
    }
    json_t *names = json_array();
    for (int d = 0; d < n; d++)
        json_array_append_new(names, json_string(ks_session_device_name(vr->s, d)));
    json_object_set_new(sk, "t", st);
    json_object_set_new(sk, "devices", names);
    json_object_set_new(sk, "abs_max_us", sv);
    json_object_set_new(root, "skew", sk);
    /* the planned laser timeline, drawn beside the measured one (verify's devices[].laser_start_us).
     * The plan fixes where the devices' trains lie relative to each other (colour offset + depth
     * delay); where they lie in the frame depends on the exposure and the timestamp convention, so
     * the page places the plan on the master's measured train and compares the others. */
    const ks_plan *pl = &vr->r.plan;
    if (pl->lasers) {
        json_t *lz = json_object(), *ld = json_array();
        json_object_set_new(lz, "period_us", num(pl->period_us));
        json_object_set_new(lz, "pulses", json_integer(pl->pulses));
        json_object_set_new(lz, "pulse_width_us", json_integer(pl->pulse_width_us));
        json_object_set_new(lz, "pitch_us", json_integer(pl->pitch_us));
        json_object_set_new(lz, "guard_us", json_integer(pl->guard_us));
        for (int i = 0; i < rig->device_count && i < pl->device_count; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(rig->devices[i].name));
            json_object_set_new(o, "planned_us", pl->devices[i].laser ? num(pl->devices[i].laser_start_us) : json_null());
            json_array_append_new(ld, o);
        }
        json_object_set_new(lz, "devices", ld);
        json_object_set_new(root, "laser", lz);
    }
    if (vr->verify_json) {
        json_t *vj = json_loads(vr->verify_json, 0, NULL);
        if (vj)
            json_object_set_new(root, "verify", vj);
    }
    json_t *rec = json_object();
    json_object_set_new(rec, "active", json_boolean(vr->rec != NULL));
    if (vr->rec) {
        json_object_set_new(rec, "name", json_string(vr->take_name));
        json_object_set_new(rec, "seconds", num(vr->take_seconds));
        json_object_set_new(rec, "sets", json_integer((json_int_t)vr->take_sets));
    }
    json_object_set_new(rec, "takes", json_deep_copy(vr->takes));
    json_object_set_new(root, "record", rec);
    json_t *vw = json_object();
    uint64_t enc = 0, skip = 0;
    size_t pts = 0;
    if (vr->sink)
        ks_view_sink_counters(vr->sink, &enc, &skip, &pts);
    ks_view_counters vc;
    ks_view_get_counters(vr->v, &vc);
    json_object_set_new(vw, "previews", json_integer((json_int_t)(enc + vr->previews_before)));
    json_object_set_new(vw, "previews_skipped", json_integer((json_int_t)(skip + vr->skipped_before)));
    json_object_set_new(vw, "points", json_integer((json_int_t)pts));
    ks_view_sink_stats ss = {0};
    if (vr->sink)
        ks_view_sink_get_stats(vr->sink, &ss);
    json_object_set_new(vw, "previews_unwatched", json_integer((json_int_t)ss.unwatched));
    json_object_set_new(vw, "clouds", json_integer((json_int_t)ss.clouds));
    json_object_set_new(vw, "previews_per_second", num(vr->sopt.previews_per_second));
    json_object_set_new(vw, "clouds_per_second",
                        num(vr->sopt.clouds_per_second < vr->sopt.previews_per_second ? vr->sopt.clouds_per_second
                                                                                      : vr->sopt.previews_per_second));
    json_object_set_new(vw, "refused", json_integer((json_int_t)vc.refused));
    json_object_set_new(root, "view", vw);
    char *text = json_dumps(root, JSON_COMPACT);
    if (text)
        ks_view_publish_state(vr->v, text);
    free(text);
    json_decref(root);
}

static void read_device_facts(view_run *vr)
{
    for (int d = 0; d < ks_session_device_count(vr->s); d++) {
        int i = ks_session_rig_index(vr->s, d);
        ks_device *dev = ks_session_device(vr->s, d);
        const ks_device_info *info = ks_device_info_get(dev);
        char a[32], b[32];
        ks_version_format(&info->rgb, a, sizeof a);
        ks_version_format(&info->depth, b, sizeof b);
        snprintf(vr->dev[i].firmware, sizeof vr->dev[i].firmware, "rgb %s, depth %s", a, b);
        ks_jack_state j;
        if (ks_device_get_jacks(dev, &j, NULL) == KS_OK) {
            vr->dev[i].jacks_known = true;
            vr->dev[i].jacks_supported = j.supported;
            vr->dev[i].jack_in = j.sync_in;
            vr->dev[i].jack_out = j.sync_out;
        }
    }
}

static void close_session(view_run *vr)
{
    if (!strcmp(vr->run_state, "running") || !strcmp(vr->run_state, "starting"))
        snprintf(vr->run_state, sizeof vr->run_state, "stopping");
    if (vr->sink) {
        uint64_t enc = 0, skip = 0;
        ks_view_sink_counters(vr->sink, &enc, &skip, NULL);
        vr->previews_before += enc;
        vr->skipped_before += skip;
        ks_view_sink_destroy(vr->sink);
        vr->sink = NULL;
    }
    if (vr->s) {
        current_session = NULL;
        ks_session_stop(vr->s);
        ks_syncstats *q = ks_session_stats(vr->s);
        free(vr->verify_json);
        vr->verify_json = ks_syncstats_to_json(q);
        ks_session_close(vr->s);
        vr->s = NULL;
    }
}

static void finish_take(view_run *vr, bool abort_it)
{
    if (!vr->rec)
        return;
    json_t *take = json_object(), *files = json_array();
    json_object_set_new(take, "name", json_string(vr->take_name));
    json_object_set_new(take, "dir", json_string(vr->take_dir));
    int n = ks_recorder_device_count(vr->rec);
    for (int d = 0; d < n; d++) {
        ks_record_stats rs;
        memset(&rs, 0, sizeof rs);
        ks_recorder_stats(vr->rec, d, &rs, NULL);
        json_t *f = json_object();
        json_object_set_new(f, "path", json_string(ks_recorder_path(vr->rec, d)));
        json_object_set_new(f, "captures", json_integer((json_int_t)rs.captures));
        json_object_set_new(f, "bytes", json_integer((json_int_t)rs.bytes));
        json_array_append_new(files, f);
    }
    ks_error err;
    bool ok = true;
    if (abort_it) {
        ks_recorder_abort(vr->rec);
        ok = false;
    } else if (ks_recorder_close(vr->rec, &err) != KS_OK) {
        logf_view(vr, "take %s: %s", vr->take_name, err.message);
        ok = false;
    }
    vr->rec = NULL;
    /* the sizes once complete */
    for (size_t k = 0; k < json_array_size(files); k++) {
        json_t *f = json_array_get(files, k);
        struct stat sb;
        bool there = stat(json_string_value(json_object_get(f, "path")), &sb) == 0;
        json_object_set_new(f, "complete", json_boolean(ok && there));
        if (there)
            json_object_set_new(f, "bytes", json_integer((json_int_t)sb.st_size));
    }
    json_object_set_new(take, "files", files);
    json_object_set_new(take, "complete", json_boolean(ok));
    json_array_append_new(vr->takes, take);
    logf_view(vr, "take %s %s: %zu files in %s", vr->take_name, ok ? "complete" : "FAILED", json_array_size(files),
              vr->take_dir);
    fprintf(stderr, "kinsync view: take %s %s (%s)\n", vr->take_name, ok ? "complete" : "failed", vr->take_dir);
}

static void start_take(view_run *vr, const ks_view_command *c)
{
    if (!vr->s || strcmp(vr->run_state, "running")) {
        logf_view(vr, "record %s: the rig is not running; press Start first", c->name);
        return;
    }
    if (vr->rec) {
        logf_view(vr, "record %s: take %s is still recording", c->name, vr->take_name);
        return;
    }
    snprintf(vr->take_dir, sizeof vr->take_dir, "%s/%s", vr->takes_root, c->name);
    struct stat sb;
    if (stat(vr->take_dir, &sb) == 0) {
        logf_view(vr, "record %s: %s exists already; choose another take name", c->name, vr->take_dir);
        return;
    }
    mkdir(vr->takes_root, 0777);
    int n = ks_session_device_count(vr->s);
    ks_record_device rd[KS_MATCH_MAX_DEVICES];
    char *calib[KS_MATCH_MAX_DEVICES] = {0};
    memset(rd, 0, sizeof rd);
    for (int d = 0; d < n; d++) {
        int ri = ks_session_rig_index(vr->s, d);
        ks_device *dev = ks_session_device(vr->s, d);
        const ks_device_info *info = ks_device_info_get(dev);
        snprintf(rd[d].serial, sizeof rd[d].serial, "%s", vr->r.rig.devices[ri].serial);
        snprintf(rd[d].role, sizeof rd[d].role, "%s", vr->roles[ri]);
        rd[d].config = *ks_device_running_config(dev);
        rd[d].color_fw = info->rgb;
        rd[d].depth_fw = info->depth;
        rd[d].has_firmware = true;
        size_t len = 0;
        if (ks_device_get_calibration_json(dev, &calib[d], &len, NULL) == KS_OK) {
            rd[d].calibration_json = calib[d];
            rd[d].calibration_len = len;
        }
    }
    ks_recorder_options ro;
    memset(&ro, 0, sizeof ro);
    ks_record_rig_tags(&vr->r.rig, &ro);
    ks_error err;
    ks_status st = ks_recorder_open(vr->take_dir, n, rd, &ro, &vr->rec, &err);
    for (int d = 0; d < n; d++)
        free(calib[d]);
    if (st != KS_OK) {
        vr->rec = NULL;
        logf_view(vr, "record %s: %s", c->name, err.message);
        return;
    }
    snprintf(vr->take_name, sizeof vr->take_name, "%s", c->name);
    vr->take_seconds = c->seconds;
    vr->take_first_key = NAN;
    vr->take_sets = 0;
    logf_view(vr, "recording take %s for %.1f s into %s", c->name, c->seconds, vr->take_dir);
}

static bool start_session(view_run *vr)
{
    ks_error err;
    snprintf(vr->run_state, sizeof vr->run_state, "starting");
    vr->run_message[0] = 0;
    json_decref(vr->sequence);
    vr->sequence = json_array();
    for (int d = 0; d < KS_MATCH_MAX_DEVICES; d++)
        atomic_store(&vr->first_frame_flag[d], 0);
    for (int i = 0; i < vr->r.rig.device_count; i++)
        vr->dev[i].state[0] = 0;
    vr->skew_count = vr->skew_next = 0;
    vr->bucket_any = false;
    free(vr->verify_json);
    vr->verify_json = NULL;
    vr->t_start = wall();
    logf_view(vr, "starting the rig (%s)", vr->sesopt.wrong_order ? "master FIRST: the classic mistake" : "subordinates first, master last");
    publish_state(vr);
    if (ks_session_open(&vr->r.rig, &vr->r.plan, vr->traced, &vr->sesopt, &vr->s, &err) != KS_OK) {
        vr->s = NULL;
        goto fail;
    }
    read_device_facts(vr);
    current_session = vr->s;
    if (ks_session_start(vr->s, &err) != KS_OK)
        goto fail;
    if (ks_view_sink_create(vr->v, vr->s, &vr->sopt, &vr->sink, &err) != KS_OK)
        goto fail;
    snprintf(vr->run_state, sizeof vr->run_state, "running");
    vr->t_start = wall();
    vr->last_stats = 0;
    logf_view(vr, "every device streams; frame sets flowing");
    publish_state(vr);
    return true;
fail:
    snprintf(vr->run_state, sizeof vr->run_state, "failed");
    snprintf(vr->run_message, sizeof vr->run_message, "%s", err.message);
    logf_view(vr, "start failed: %s", err.message);
    fprintf(stderr, "kinsync %s: error: %s\n", vr->cmd, err.message);
    close_session(vr);
    publish_state(vr);
    return false;
}

static void add_skew(view_run *vr, const ks_session_set *set)
{
    int n = ks_session_device_count(vr->s), ref = ks_session_reference(vr->s);
    double t = wall() - vr->t_start;
    if (!vr->bucket_any) {
        vr->bucket_t0 = t;
        for (int d = 0; d < n; d++)
            vr->bucket_max[d] = NAN;
        vr->bucket_any = true;
    }
    for (int d = 0; d < n; d++) {
        double s = ks_frame_set_skew_us(&set->set, d, ref);
        if (isfinite(s) && !(fabs(s) <= vr->bucket_max[d]))
            vr->bucket_max[d] = fabs(s);
    }
    if (t - vr->bucket_t0 >= 0.25) {
        int b = vr->skew_next;
        vr->skew_t[b] = vr->bucket_t0;
        for (int d = 0; d < n; d++)
            vr->skew_v[b][d] = vr->bucket_max[d];
        vr->skew_next = (b + 1) % SKEW_BUCKETS;
        if (vr->skew_count < SKEW_BUCKETS)
            vr->skew_count++;
        vr->bucket_any = false;
    }
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(s, &end);
    if (*end || end == s || !(x >= lo && x <= hi))
        return false;
    *out = x;
    return true;
}

static bool display_present(void)
{
    const char *d = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");
    return (d && *d) || (w && *w);
}

static void open_browser(const char *url)
{
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("xdg-open", "xdg-open", url, (char *)NULL);
        _exit(127);
    }
}

/* The page's address and token said, the browser opened (when there is a display), and SIGINT /
 * SIGTERM made to end the loop (the old handlers kept for serve_end). */
typedef struct serve_signals {
    struct sigaction old_int, old_term;
} serve_signals;

static void serve_begin(ks_view *v, bool read_only, bool no_browser, serve_signals *ss)
{
    char url[256];
    ks_view_url(v, url, sizeof url);
    printf("serving on %s\n", url);
    printf("control token: %s%s\n", ks_view_token(v), read_only ? " (read-only: control is refused)" : "");
    printf("Ctrl-C stops.\n");
    fflush(stdout);
    if (!no_browser && display_present())
        open_browser(url);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &ss->old_int);
    sigaction(SIGTERM, &sa, &ss->old_term);
    signal(SIGCHLD, SIG_IGN); /* the browser opener is never waited for */
}

/* The server's counters said, the signal handlers put back. */
static void serve_end(ks_view *v, const serve_signals *ss)
{
    ks_view_counters vc;
    ks_view_get_counters(v, &vc);
    printf("kinsync view: stopped (%llu requests, %llu refused, %llu bad)\n", (unsigned long long)vc.requests,
           (unsigned long long)vc.refused, (unsigned long long)vc.bad_requests);
    sigaction(SIGINT, &ss->old_int, NULL);
    sigaction(SIGTERM, &ss->old_term, NULL);
}

/* view --distributed: the rig over its agents (src/cli/view_distributed.c) */
static int view_distributed(int argc, char **argv, const ks_view_options *vo, const ks_net_config *net,
                            bool no_browser, bool no_start, double seconds)
{
    if (argc - optind != 1 || ks_playback_is_recording(argv[optind]))
        return ks_cli_usage_error("view", "--distributed takes one rig file");
    if (!ks_net_cli_ready("view", net))
        return KS_EXIT_USAGE;
    ks_rig *rig = calloc(1, sizeof *rig);
    if (!rig)
        return KS_EXIT_FAIL;
    char digest[65];
    int rc = ks_cli_load_shared_rig("view", argv[optind], rig, digest);
    ks_view *v = NULL;
    ks_error err;
    if (rc == KS_EXIT_OK && ks_view_create(vo, &v, &err) != KS_OK) {
        ks_cli_print_error("view", &err);
        rc = strstr(err.message, "not an IPv4") || strstr(err.message, "token") ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    }
    if (rc != KS_EXIT_OK) {
        free(rig);
        return rc;
    }
    printf("kinsync view: rig %s (%d devices) over its hosts' agents\n", rig->name, rig->device_count);
    serve_signals ss;
    serve_begin(v, vo->read_only, no_browser, &ss);
    rc = ks_cli_view_distributed(v, rig, digest, net, seconds, no_start, &quit_requested);
    serve_end(v, &ss);
    ks_view_destroy(v);
    free(rig);
    return rc;
}

/* One request from the page: start, stop, record a take, or (over recordings) seek. */
static void handle_command(view_run *vr, const ks_view_command *cmd)
{
    logf_view(vr, "request: %s%s%s", cmd->action, cmd->name[0] ? " " : "", cmd->name);
    if (!strcmp(cmd->action, "start") && !vr->s)
        start_session(vr);
    else if (!strcmp(cmd->action, "stop") && vr->s) {
        finish_take(vr, false);
        close_session(vr);
        snprintf(vr->run_state, sizeof vr->run_state, "stopped");
        logf_view(vr, "stopped");
    } else if (!strcmp(cmd->action, "record") && vr->playback) {
        logf_view(vr, "record: not over recordings (they are recordings already)");
    } else if (!strcmp(cmd->action, "record")) {
        start_take(vr, cmd);
    } else if (!strcmp(cmd->action, "seek") && !vr->playback) {
        logf_view(vr, "seek: only over recordings (kinsync view FILE.mkv...)");
    } else if (!strcmp(cmd->action, "seek")) {
        /* every recording to that time: the session again from there, paused at its first set */
        close_session(vr);
        ks_error serr;
        if (ks_playback_seek(vr->r.backend, (uint64_t)llround(cmd->seconds * 1e6), &serr) != KS_OK) {
            logf_view(vr, "seek: %s", serr.message);
        } else {
            logf_view(vr, "seeking every recording to %.3f s", cmd->seconds);
            vr->position_s = NAN;
            vr->seek_pause = start_session(vr);
        }
    }
}

/* One frame set of the session: into the take being recorded, the skew chart and the page; over
 * recordings after a seek, the first complete set pauses the view. */
static void handle_set(view_run *vr, ks_session_set *set)
{
    ks_error err;
    add_skew(vr, set);
    if (vr->rec) {
        if (isnan(vr->take_first_key))
            vr->take_first_key = set->set.key_us;
        for (int d = 0; d < ks_session_device_count(vr->s); d++)
            if ((set->set.present_mask & (1u << d)) &&
                ks_recorder_add_capture(vr->rec, d, set->set.frames[d].user, &err) != KS_OK) {
                logf_view(vr, "take %s: %s", vr->take_name, err.message);
                finish_take(vr, false);
                break;
            }
        if (vr->rec) {
            vr->take_sets++;
            if ((set->set.key_us - vr->take_first_key) / 1e6 >= vr->take_seconds)
                finish_take(vr, false);
        }
    }
    int ndev = ks_session_device_count(vr->s);
    bool complete = set->set.present_mask == (ndev >= 32 ? 0xffffffffu : (1u << ndev) - 1);
    uint64_t enc0 = 0, skip0 = 0;
    ks_view_sink_counters(vr->sink, &enc0, &skip0, NULL);
    /* the paused set of a seek stays on the page: previewed even when nobody watches at that moment */
    bool taken = vr->seek_pause ? complete && ks_view_sink_offer_always(vr->sink, set) : ks_view_sink_offer(vr->sink, set);
    if (taken && vr->playback) {
        vr->position_s = (set->set.key_us - (double)ks_playback_first_ts_us(vr->r.backend)) / 1e6;
    }
    ks_session_set_release(set);
    if (taken && vr->seek_pause) { /* the frame set at the slider's time is on the page: pause */
        vr->seek_pause = false;
        for (int w = 0; w < 2000; w++) { /* its previews done (and counted), 10 s at most */
            uint64_t enc = 0, skip = 0;
            ks_view_sink_counters(vr->sink, &enc, &skip, NULL);
            if (enc + skip >= enc0 + skip0 + 1)
                break;
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
        }
        close_session(vr); /* waits for the previews of that set */
        snprintf(vr->run_state, sizeof vr->run_state, "paused");
        logf_view(vr, "paused at %.3f s", vr->position_s);
        publish_state(vr);
    }
}

/* The rig to view: recordings through the playback backend (real time, with their duration for the
 * slider) or a rig file (the simulator paced to real time). Returns the exit status. */
static int open_source(view_run *vr, const char *const *inputs, int n, const char *backend, ks_error *err)
{
    if (ks_playback_is_recording(inputs[0])) {
        ks_playback_options po;
        ks_playback_options_init(&po);
        po.pace = KS_PLAYBACK_REALTIME;
        if (ks_playback_open_rig(inputs, n, &po, &vr->r.rig, &vr->r.plan, &vr->r.backend, NULL, err) != KS_OK) {
            ks_cli_print_error("view", err);
            return KS_EXIT_FAIL;
        }
        vr->playback = true;
        vr->position_s = NAN;
        for (int i = 0; i < n; i++) {
            ks_mkv_reader *rd = NULL;
            if (ks_mkv_reader_open(inputs[i], &rd, NULL) == KS_OK) {
                const ks_mkv_info *in = ks_mkv_reader_info(rd);
                double d = in->duration * (double)in->timecode_scale / 1e9;
                if (d > vr->duration_s)
                    vr->duration_s = d;
            }
            ks_mkv_reader_close(rd);
        }
    } else {
        if (n != 1)
            return ks_cli_usage_error("view", "give exactly one rig file (or recordings FILE.mkv...)");
        int rc = ks_cli_rigrun_open(inputs[0], backend, false, &vr->r, err);
        if (rc == KS_EXIT_OK && vr->r.simulated) { /* the view runs in real time: the simulator paced */
            ks_sim_config sc;
            ks_backend_free(vr->r.backend);
            vr->r.backend = NULL;
            if (ks_sim_config_load(inputs[0], &vr->r.rig, &sc, err) != KS_OK)
                rc = KS_EXIT_USAGE;
            else if (sc.mode = KS_SIM_PACED, ks_backend_open_sim(&vr->r.rig, &sc, &vr->r.backend, err) != KS_OK)
                rc = KS_EXIT_FAIL;
        }
        if (rc != KS_EXIT_OK) {
            ks_cli_print_error("view", err);
            ks_cli_rigrun_close(&vr->r);
            return rc;
        }
    }
    return KS_EXIT_OK;
}

typedef struct view_args {
    ks_net_config net;
    ks_view_options vo;
    bool distributed, no_browser, no_start, wrong, device_colors;
    const char *calibration, *backend, *takes;
    double seconds, previews, timeout_ms;
} view_args;

/* Flags into *a; returns -1 to go on, else the exit status (usage errors, --help). */
static int parse_args(int argc, char **argv, view_args *a)
{
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"no-browser", no_argument, 0, 'n'},
                                         {"read-only", no_argument, 0, 'R'},
                                         {"token", required_argument, 0, 'T'},
                                         {"calibration", required_argument, 0, 'c'},
                                         {"cloud-color", required_argument, 0, 'C'},
                                         {"takes", required_argument, 0, 'k'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"no-start", no_argument, 0, 'N'},
                                         {"previews", required_argument, 0, 'P'},
                                         {"backend", required_argument, 0, 'b'},
                                         {"timeout-ms", required_argument, 0, 't'},
                                         {"start-master-first", no_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {"distributed", no_argument, 0, 'D'},
                                         KS_NET_CLI_OPTIONS,
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    ks_net_config_init(&a->net);
    ks_view_options_init(&a->vo);
    a->vo.port = 8765;
    a->backend = "auto";
    a->takes = "takes";
    a->previews = 5;
    a->timeout_ms = 5000;
    double port = 8765;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int nr = ks_net_cli_option("view", c, optarg, &a->net);
        if (nr < 0)
            return KS_EXIT_USAGE;
        if (nr > 0)
            continue;
        switch (c) {
        case 'D': a->distributed = true; break;
        case 'p':
            if (!parse_double(optarg, 0, 65535, &port) || port != floor(port))
                return ks_cli_usage_error("view", "--port needs a port number 0..65535, got '%s'", optarg);
            a->vo.port = (int)port;
            break;
        case 'l': a->vo.listen = optarg; break;
        case 'n': a->no_browser = true; break;
        case 'R': a->vo.read_only = true; break;
        case 'T': a->vo.token = optarg; break;
        case 'c': a->calibration = optarg; break;
        case 'C':
            if (strcmp(optarg, "camera") && strcmp(optarg, "device"))
                return ks_cli_usage_error("view", "--cloud-color is camera or device, got '%s'", optarg);
            a->device_colors = !strcmp(optarg, "device");
            break;
        case 'k': a->takes = optarg; break;
        case 's':
            if (!parse_double(optarg, 0.001, 1e7, &a->seconds))
                return ks_cli_usage_error("view", "--seconds needs a positive number, got '%s'", optarg);
            break;
        case 'N': a->no_start = true; break;
        case 'P':
            if (!parse_double(optarg, 0.1, 30, &a->previews))
                return ks_cli_usage_error("view", "--previews needs a number between 0.1 and 30, got '%s'", optarg);
            break;
        case 'b': a->backend = optarg; break;
        case 't':
            if (!parse_double(optarg, 1, 1e7, &a->timeout_ms))
                return ks_cli_usage_error("view", "--timeout-ms needs a positive number, got '%s'", optarg);
            break;
        case 'w': a->wrong = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("view", "unknown option");
        }
    }
    return -1;
}

int cmd_view(int argc, char **argv)
{
    view_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc >= 0)
        return prc;
    ks_view_options vo = a.vo;
    const bool no_browser = a.no_browser, no_start = a.no_start;
    const double seconds = a.seconds;
    if (optind >= argc)
        return ks_cli_usage_error("view", "give a rig file or recordings (FILE.mkv...)");
    if (a.distributed)
        return view_distributed(argc, argv, &vo, &a.net, no_browser, no_start, seconds);
    static view_run vr; /* large; one per process */
    memset(&vr, 0, sizeof vr);
    vr.cmd = "view";
    vr.takes_root = a.takes;
    vr.takes = json_array();
    ks_error err;
    int rc = KS_EXIT_OK;
    ks_rig_pose *poses = NULL;
    size_t pose_count = 0;
    if (a.calibration && ks_rig_poses_load(a.calibration, &poses, &pose_count, &err) != KS_OK) {
        ks_cli_print_error("view", &err);
        json_decref(vr.takes);
        return KS_EXIT_USAGE;
    }
    rc = open_source(&vr, (const char *const *)argv + optind, argc - optind, a.backend, &err);
    if (rc != KS_EXIT_OK) {
        free(poses);
        json_decref(vr.takes);
        return rc;
    }
    ks_record_role_names(&vr.r.rig, vr.roles);
    for (int k = 0; k < vr.r.rig.cable_count; k++) {
        vr.expect_out[vr.r.rig.cables[k].from] = true;
        vr.expect_in[vr.r.rig.cables[k].to] = true;
    }
    if (vr.r.rig.trigger.present && vr.r.rig.trigger.to >= 0)
        vr.expect_in[vr.r.rig.trigger.to] = true;
    if (ks_view_create(&vo, &vr.v, &err) != KS_OK) {
        ks_cli_print_error("view", &err);
        ks_backend_free(vr.r.backend);
        free(poses);
        json_decref(vr.takes);
        return strstr(err.message, "not an IPv4") || strstr(err.message, "token") ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    }
    ks_view_sink_options_init(&vr.sopt);
    vr.sopt.previews_per_second = a.previews;
    vr.sopt.clouds_per_second = 2; /* the page fetches at most two clouds a second */
    vr.sopt.poses = poses;
    vr.sopt.pose_count = pose_count;
    vr.sopt.device_colors = a.device_colors;
    ks_session_options_init(&vr.sesopt);
    vr.sesopt.wrong_order = a.wrong;
    vr.sesopt.first_frame_timeout_ms = (int)a.timeout_ms;
    vr.sesopt.measure_invalid = true;
    vr.sesopt.on_capture = on_capture;
    /* The simulator behind the trace backend: keep its virtual-time semantics (a capture thread
     * waits for the consumer rather than dropping, first frames waited for in virtual time), as
     * the session does for the bare simulator backend. */
    vr.sesopt.lossless = vr.r.simulated ? 1 : -1;
    vr.sesopt.user = &vr;
    ks_view_trace_backend(vr.r.backend, on_trace, &vr, &vr.traced, &err);
    snprintf(vr.run_state, sizeof vr.run_state, "stopped");
    printf("kinsync view: rig %s (%d devices, %s backend%s)\n", vr.r.rig.name, vr.r.rig.device_count,
           ks_backend_name(vr.r.backend), vr.r.simulated ? ", simulated in real time" : "");
    if (vr.r.note[0])
        printf("note: %s\n", vr.r.note);
    serve_signals ss;
    serve_begin(vr.v, vo.read_only, no_browser, &ss);
    publish_state(&vr);
    if (!no_start)
        start_session(&vr);
    double t0 = wall(), last_state = 0;
    while (!quit_requested && !(seconds > 0 && wall() - t0 >= seconds)) {
        ks_view_command cmd;
        while (ks_view_poll_command(vr.v, &cmd))
            handle_command(&vr, &cmd);
        if (vr.s) {
            ks_session_set set;
            ks_status st = ks_session_next(vr.s, &set, 100, &err);
            if (st == KS_OK) {
                handle_set(&vr, &set);
            } else if (st != KS_ETIMEOUT) {
                bool fault = st == KS_ENODEV;
                finish_take(&vr, false);
                close_session(&vr);
                snprintf(vr.run_state, sizeof vr.run_state, "%s", fault ? "failed" : "stopped");
                snprintf(vr.run_message, sizeof vr.run_message, "%s",
                         fault ? err.message : vr.playback ? "the recordings ended" : "");
                logf_view(&vr, "%s%s", fault ? "device lost: " : "stream ended", fault ? err.message : "");
            }
        } else {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        double now = wall();
        if (vr.s && now - vr.last_stats >= 1.0) { /* the live checks, once a second */
            ks_syncstats *q = ks_session_stats(vr.s);
            free(vr.verify_json);
            vr.verify_json = ks_syncstats_to_json(q);
            vr.last_stats = now;
        }
        if (now - last_state >= 0.25) {
            publish_state(&vr);
            last_state = now;
        }
    }
    finish_take(&vr, false);
    close_session(&vr);
    snprintf(vr.run_state, sizeof vr.run_state, "stopped");
    publish_state(&vr);
    serve_end(vr.v, &ss);
    ks_view_destroy(vr.v);
    ks_backend_free(vr.traced);
    ks_backend_free(vr.r.backend);
    json_decref(vr.sequence);
    json_decref(vr.takes);
    free(vr.verify_json);
    free(poses);
    return KS_EXIT_OK;
}
