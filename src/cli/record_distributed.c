/* `kinsync record rig.yaml --distributed`: the coordinator. Loads and validates the rig, proves it
 * is the same file the agents run (digest), and runs ks_distributed_record; Ctrl-C stops every host
 * cleanly. Prints where every recording ended up. */
#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/net_cli.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void progress(ks_coordinator *c, const ks_rig *rig, double el, void *user)
{
    if (!*(bool *)user)
        return;
    fprintf(stderr, "\r%6.1f s", el);
    for (int i = 0; i < rig->device_count; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
        if (d)
            fprintf(stderr, "  %s@%s %s %llu", rig->devices[i].name, d->host, ks_agent_state_name(d->status.state),
                    (unsigned long long)d->status.frames);
    }
    fprintf(stderr, "   ");
}

int ks_cli_record_distributed(const char *rig_path, const char *out, double seconds, const ks_net_config *net,
                              bool json)
{
    ks_error err;
    ks_rig *rig = calloc(1, sizeof *rig);
    ks_distributed_result *res = calloc(1, sizeof *res);
    char digest[65];
    int rc = KS_EXIT_FAIL;
    ks_coordinator *c = NULL;
    if (!rig || !res) {
        fprintf(stderr, "kinsync record: out of memory\n");
        goto done;
    }
    if ((rc = ks_cli_load_shared_rig("record", rig_path, rig, digest)) != KS_EXIT_OK)
        goto done;
    rc = KS_EXIT_FAIL;
    if (ks_coordinator_create(net, digest, &c, &err) != KS_OK) {
        ks_cli_print_error("record", &err);
        goto done;
    }
    bool tty = ks_cli_is_tty(stderr) && !json;
    ks_distributed_options o;
    memset(&o, 0, sizeof o);
    o.seconds = seconds;
    o.stop = &stop_flag;
    o.out_dir = out;
    o.progress = progress;
    o.user = &tty;
    stop_flag = 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ks_status st = KS_OK;
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        st = ks_error_set(&err, KS_EIO, "cannot create the output directory %s: %s", out, strerror(errno));
    if (st == KS_OK)
        st = ks_distributed_record(c, rig, &o, res, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (tty)
        fputs("\n", stderr);
    if (st != KS_OK)
        ks_cli_print_error("record", &err);
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "rig", json_string(rig->name));
        json_object_set_new(j, "ok", json_boolean(st == KS_OK));
        json_object_set_new(j, "interrupted", json_boolean(res->interrupted));
        json_object_set_new(j, "lost", json_string(res->lost));
        json_object_set_new(j, "max_clock_skew_ms", json_real(res->max_clock_skew_ms));
        json_object_set_new(j, "max_host_time_disagreement_ms", json_real(res->max_host_time_disagreement_ms));
        json_object_set_new(j, "start_to_streaming_ms", json_real(res->start_to_streaming_ms));
        json_t *files = json_array();
        for (int i = 0; i < rig->device_count; i++) {
            const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
            json_t *fe = json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:f}", "serial",
                                                   rig->devices[i].serial, "host", d ? d->host : "", "path",
                                                   res->paths[i], "frames", (json_int_t)(d ? d->status.frames : 0),
                                                   "thumbnail_bytes", (json_int_t)(d ? d->thumbnail_bytes : 0),
                                                   "thumbnail_is_jpeg", d && d->thumbnail_is_jpeg,
                                                   "host_clock_synced", d && d->status.clock_synced,
                                                   "host_clock_offset_ms",
                                                   d ? (double)d->status.clock_offset_ns / 1e6 : 0.0);
            json_object_set_new(fe, "host_time_disagreement_ms",
                                res->host_time_known[i] ? json_real(res->host_time_disagreement_ms[i]) : json_null());
            json_object_set_new(fe, "host_time_fit_mad_us",
                                res->host_time_known[i] ? json_real(res->host_time_fit_mad_us[i]) : json_null());
            json_array_append_new(files, fe);
        }
        json_object_set_new(j, "files", files);
        json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(j);
    } else {
        for (int i = 0; i < rig->device_count; i++)
            printf("%s: %s\n", rig->devices[i].serial, res->paths[i][0] ? res->paths[i] : "(not gathered)");
        if (res->interrupted)
            printf("stopped by Ctrl-C; every file is complete\n");
    }
    rc = st == KS_OK ? KS_EXIT_OK : KS_EXIT_FAIL;
done:
    ks_coordinator_free(c);
    free(rig);
    free(res);
    return rc;
}
