/* `kinsync view rig.yaml --distributed`: the page over a rig whose devices sit on several hosts,
 * each behind a `kinsync agent`. The rig is started exactly as `record --distributed` starts it
 * (ks_distributed_record: every device found on its host, every subordinate armed before the
 * master, health watched); while it streams, the page shows every device's state, host, frame
 * rate and drops from the agents' state and stats messages, and as its colour preview the
 * thumbnail the agent publishes (rt/kinsync/thumbnail, about one a second). Nothing is gathered:
 * the recordings the agents make stay on their hosts. Start and Stop work from the page. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/net_cli.h"
#include "kinsync/record.h"
#include "kinsync/timing.h"
#include "kinsync/view.h"

typedef struct dview {
    ks_view *v;
    const ks_rig *rig;
    ks_coordinator *c;
    volatile sig_atomic_t *quit;
    volatile int stop;
    char roles[KS_RIG_MAX_DEVICES][64];
    bool expect_in[KS_RIG_MAX_DEVICES], expect_out[KS_RIG_MAX_DEVICES];
    uint64_t shown[KS_RIG_MAX_DEVICES]; /* thumbnails published per device */
    char last_state[KS_RIG_MAX_DEVICES][24];
    uint64_t preview_seq, previews;
    char run_state[16], run_message[600];
    double t_run, t_last_state;
    json_t *sequence;
    /* frame rate from the agents' frame counts (their stats carry no rate) */
    uint64_t rate_frames[KS_RIG_MAX_DEVICES];
    double rate_t[KS_RIG_MAX_DEVICES], rate_fps[KS_RIG_MAX_DEVICES];
} dview;

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The page's device states (web/view.js) from the agents' */
static const char *page_state(const ks_remote_device *d, bool lost)
{
    if (!d || !d->present)
        return "closed";
    if (lost)
        return "lost";
    switch (d->status.state) {
    case KS_AGENT_IDLE: return "idle";
    case KS_AGENT_CONFIGURED: return "opened";
    case KS_AGENT_ARMED: return "armed";
    case KS_AGENT_STREAMING: return "streaming";
    case KS_AGENT_STOPPED: return "stopped";
    default: return "failed";
    }
}

static void publish(dview *dv)
{
    const ks_rig *rig = dv->rig;
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("kinsync.view/1"));
    json_object_set_new(root, "rig", json_string(rig->name));
    json_object_set_new(root, "backend", json_string("agents"));
    json_object_set_new(root, "simulated", json_false());
    json_object_set_new(root, "playback", json_false());
    json_object_set_new(root, "distributed", json_true());
    json_object_set_new(root, "note", json_string("over the hosts' agents: previews are the thumbnails they publish "
                                                  "(about one a second); the recordings stay on the hosts"));
    json_object_set_new(root, "calibrated", json_false());
    json_object_set_new(root, "target_us", json_integer(ks_color_alignment_target_us()));
    json_object_set_new(root, "preview_kinds", json_pack("[s]", "color"));
    json_object_set_new(root, "controls", json_pack("[s,s]", "start", "stop"));
    json_t *run = json_object();
    bool running = !strcmp(dv->run_state, "running");
    json_object_set_new(run, "state", json_string(dv->run_state));
    json_object_set_new(run, "message", json_string(dv->run_message));
    json_object_set_new(run, "seconds", json_real(running ? round((wall() - dv->t_run) * 100) / 100 : 0));
    json_object_set_new(run, "sets", json_integer(0));
    json_object_set_new(root, "run", run);
    const char *serials[KS_RIG_MAX_DEVICES];
    for (int i = 0; i < rig->device_count; i++)
        serials[i] = rig->devices[i].serial;
    json_t *devs = json_array();
    for (int i = 0; i < rig->device_count; i++) {
        const ks_rig_device *rd = &rig->devices[i];
        const ks_remote_device *d = dv->c ? ks_coordinator_device(dv->c, rd->serial) : NULL;
        bool lost = running && d && ks_coordinator_lost(dv->c, &serials[i], 1) != NULL;
        const char *state = page_state(d, lost);
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(rd->name));
        json_object_set_new(j, "serial", json_string(rd->serial));
        json_object_set_new(j, "host", json_string(d && d->host[0] ? d->host : rd->host));
        json_object_set_new(j, "role", json_string(dv->roles[i]));
        json_object_set_new(j, "sync_mode", json_string(d ? d->status.role : ""));
        json_object_set_new(j, "firmware", json_string(d ? d->status.firmware : ""));
        bool known = d && d->status.jack_supported;
        json_t *jk = json_object();
        json_object_set_new(jk, "known", json_boolean(known));
        json_object_set_new(jk, "sync_in", json_boolean(known && d->status.sync_in));
        json_object_set_new(jk, "sync_out", json_boolean(known && d->status.sync_out));
        json_object_set_new(jk, "expect_in", json_boolean(dv->expect_in[i]));
        json_object_set_new(jk, "expect_out", json_boolean(dv->expect_out[i]));
        json_object_set_new(jk, "ok", json_boolean(!known || (d->status.sync_in == dv->expect_in[i] &&
                                                              d->status.sync_out == dv->expect_out[i])));
        json_object_set_new(j, "jacks", jk);
        json_object_set_new(j, "state", json_string(state));
        json_object_set_new(j, "index", json_integer(i));
        json_object_set_new(j, "master", json_boolean(i == rig->master));
        if (d && d->present) {
            json_object_set_new(j, "frames", json_integer((json_int_t)d->status.frames));
            double now = wall();
            if (d->status.frames < dv->rate_frames[i] || dv->rate_t[i] == 0) {
                dv->rate_frames[i] = d->status.frames;
                dv->rate_t[i] = now;
                dv->rate_fps[i] = 0;
            } else if (now - dv->rate_t[i] >= 3.0) { /* the agents count at 2 Hz: a few seconds for a steady rate */
                dv->rate_fps[i] = (double)(d->status.frames - dv->rate_frames[i]) / (now - dv->rate_t[i]);
                dv->rate_frames[i] = d->status.frames;
                dv->rate_t[i] = now;
            }
            double fps = d->status.fps > 0 ? d->status.fps : running ? dv->rate_fps[i] : 0;
            json_object_set_new(j, "fps", json_real(round(fps * 100) / 100));
            json_object_set_new(j, "queue_drops", json_integer((json_int_t)d->status.dropped));
            json_object_set_new(j, "missing", json_integer(0));
            json_object_set_new(j, "message", json_string(d->status.message));
        }
        json_object_set_new(j, "thumbnails", json_integer((json_int_t)dv->shown[i]));
        json_array_append_new(devs, j);
        /* the sequence: every change of a device's state the coordinator heard */
        if (strcmp(dv->last_state[i], state)) {
            snprintf(dv->last_state[i], sizeof dv->last_state[i], "%s", state);
            if (d && d->present && dv->sequence && strcmp(state, "idle"))
                json_array_append_new(dv->sequence,
                                      json_pack("{s:f, s:s, s:s, s:s}", "t_ms", round((wall() - dv->t_run) * 1e4) / 10,
                                                "device", rd->name, "role", dv->roles[i], "event", state));
        }
    }
    json_object_set_new(root, "devices", devs);
    json_object_set_new(root, "sequence", dv->sequence ? json_deep_copy(dv->sequence) : json_array());
    json_object_set_new(root, "skew", json_pack("{s:[], s:[], s:[]}", "t", "devices", "abs_max_us"));
    json_object_set_new(root, "record", json_pack("{s:b, s:[]}", "active", 0, "takes"));
    ks_view_counters vc;
    ks_view_get_counters(dv->v, &vc);
    json_object_set_new(root, "view", json_pack("{s:I, s:I, s:I, s:I}", "previews", (json_int_t)dv->previews,
                                                "previews_skipped", (json_int_t)0, "points", (json_int_t)0,
                                                "refused", (json_int_t)vc.refused));
    char *text = json_dumps(root, JSON_COMPACT);
    if (text)
        ks_view_publish_state(dv->v, text);
    free(text);
    json_decref(root);
}

/* Every new thumbnail as the device's colour preview; one "preview" event per batch. */
static void publish_thumbnails(dview *dv)
{
    bool any = false;
    for (int i = 0; i < dv->rig->device_count; i++) {
        const uint8_t *jpeg;
        uint64_t count;
        size_t n = ks_coordinator_thumbnail(dv->c, dv->rig->devices[i].serial, &jpeg, NULL, &count);
        if (n && count != dv->shown[i]) {
            ks_view_publish_preview(dv->v, i, 0, jpeg, n);
            dv->shown[i] = count;
            any = true;
        }
    }
    if (any) {
        ks_view_publish_preview_done(dv->v, ++dv->preview_seq, (uint64_t)(wall() * 1e9));
        dv->previews++;
    }
}

static void poll_page(dview *dv)
{
    ks_view_command cmd;
    while (ks_view_poll_command(dv->v, &cmd)) {
        if (!strcmp(cmd.action, "stop")) {
            dv->stop = 1;
            ks_view_publish_log(dv->v, "request: stop");
        } else if (!strcmp(cmd.action, "record")) {
            ks_view_publish_log(dv->v, "request: record: not over agents (the agents record while the rig runs; "
                                       "`kinsync record --distributed` gathers the files)");
        }
    }
}

static void on_progress(ks_coordinator *c, const ks_rig *rig, double el, void *user)
{
    (void)c;
    (void)rig;
    (void)el;
    dview *dv = user;
    if (strcmp(dv->run_state, "running")) {
        snprintf(dv->run_state, sizeof dv->run_state, "running");
        dv->run_message[0] = 0;
        ks_view_publish_log(dv->v, "every device streams on its host");
    }
    poll_page(dv);
    if (*dv->quit)
        dv->stop = 1;
    publish_thumbnails(dv);
    double now = wall();
    if (now - dv->t_last_state >= 0.25) {
        publish(dv);
        dv->t_last_state = now;
    }
}

int ks_cli_view_distributed(ks_view *v, const ks_rig *rig, const char *digest, const ks_net_config *net,
                            double seconds, bool no_start, volatile sig_atomic_t *quit)
{
    static dview dv; /* one per process */
    memset(&dv, 0, sizeof dv);
    dv.v = v;
    dv.rig = rig;
    dv.quit = quit;
    ks_record_role_names(rig, dv.roles);
    for (int k = 0; k < rig->cable_count; k++) {
        dv.expect_out[rig->cables[k].from] = true;
        dv.expect_in[rig->cables[k].to] = true;
    }
    ks_error err;
    if (ks_coordinator_create(net, digest, &dv.c, &err) != KS_OK) {
        ks_cli_print_error("view", &err);
        return KS_EXIT_FAIL;
    }
    snprintf(dv.run_state, sizeof dv.run_state, "stopped");
    publish(&dv);
    double t0 = wall();
    bool start = !no_start;
    while (!*quit && !(seconds > 0 && wall() - t0 >= seconds)) {
        ks_view_command cmd;
        while (ks_view_poll_command(v, &cmd))
            if (!strcmp(cmd.action, "start"))
                start = true;
            else if (!strcmp(cmd.action, "record"))
                ks_view_publish_log(v, "request: record: not over agents");
        ks_coordinator_poll(dv.c); /* the agents' states while stopped */
        if (!start) {
            double now = wall();
            if (now - dv.t_last_state >= 0.25) {
                publish(&dv);
                dv.t_last_state = now;
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        start = false;
        snprintf(dv.run_state, sizeof dv.run_state, "starting");
        snprintf(dv.run_message, sizeof dv.run_message, "finding every device on its host, arming every subordinate "
                 "before the master");
        json_decref(dv.sequence);
        dv.sequence = json_array();
        memset(dv.last_state, 0, sizeof dv.last_state);
        dv.t_run = wall();
        dv.stop = 0;
        ks_view_publish_log(v, "starting the rig over its agents (subordinates armed first, master last)");
        publish(&dv);
        ks_distributed_options o;
        memset(&o, 0, sizeof o);
        o.seconds = seconds > 0 ? fmax(0.001, seconds - (wall() - t0)) : 0;
        o.stop = &dv.stop;
        o.progress = on_progress;
        o.user = &dv;
        ks_distributed_result *res = calloc(1, sizeof *res);
        ks_status st = res ? ks_distributed_record(dv.c, rig, &o, res, &err)
                           : ks_error_set(&err, KS_ENOMEM, "out of memory");
        free(res);
        dv.run_message[0] = 0;
        if (st != KS_OK) {
            snprintf(dv.run_state, sizeof dv.run_state, "failed");
            snprintf(dv.run_message, sizeof dv.run_message, "%s", err.message);
            ks_view_publish_log(v, err.message);
            fprintf(stderr, "kinsync view: error: %s\n", err.message);
        } else {
            snprintf(dv.run_state, sizeof dv.run_state, "stopped");
            ks_view_publish_log(v, "stopped; every host's recording completed");
        }
        /* every host's STOPPED state, heard within a second (the page shows it) */
        for (int k = 0; k < 20; k++) {
            ks_coordinator_poll(dv.c);
            bool streaming = false;
            for (int i = 0; i < rig->device_count; i++) {
                const ks_remote_device *d = ks_coordinator_device(dv.c, rig->devices[i].serial);
                streaming |= d && d->status.state == KS_AGENT_STREAMING;
            }
            if (!streaming)
                break;
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        publish(&dv);
    }
    snprintf(dv.run_state, sizeof dv.run_state, "stopped");
    publish(&dv);
    json_decref(dv.sequence);
    ks_coordinator_free(dv.c);
    return KS_EXIT_OK;
}
