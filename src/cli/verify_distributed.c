/* `kinsync verify rig.yaml --distributed`: the rig runs over its hosts exactly as
 * `record --distributed` runs it (every subordinate armed before the master, health watched), the
 * recordings are gathered, and their alignment is the proof: every device present on its host,
 * colour of every device within the 100 us budget of the master, no dropped frames; host clocks
 * within 1 ms of each other (two measurements, WARN above: docs/verify.md). PASS/WARN/FAIL per
 * check, --json for machines. */
#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/net_cli.h"
#include "kinsync/align.h"
#include "kinsync/timing.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct check_row {
    const char *name;
    bool pass;             /* false only for FAIL */
    char text[512];
    const char *status;    /* "PASS", "WARN" (passes, with a warning) or "FAIL"; NULL: from pass */
} check_row;

static const char *row_status(const check_row *r)
{
    return r->status ? r->status : r->pass ? "PASS" : "FAIL";
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The host-time row: per host, the median over its devices of the clock disagreement measured
 * through the frames against the master's host. WARN above the limit, SKIP when nothing was measured. */
static void host_time_row(const ks_rig *rig, ks_coordinator *c, const ks_distributed_result *res, check_row *row)
{
    double limit_ms = ks_host_clock_agreement_limit_us() / 1000.0;
    const ks_remote_device *m = ks_coordinator_device(c, rig->devices[rig->master].serial);
    char done[KS_RIG_MAX_DEVICES][64];
    int nh = 0, measured = 0;
    double worst = 0;
    size_t u = (size_t)snprintf(row->text, sizeof row->text, "host clocks against the master's host %s, measured "
                                "through the frames:", m ? m->host : "?");
    for (int i = 0; i < rig->device_count; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
        if (!d)
            continue;
        bool seen = false;
        for (int k = 0; k < nh; k++)
            seen |= !strcmp(done[k], d->host);
        if (seen || nh >= KS_RIG_MAX_DEVICES)
            continue;
        snprintf(done[nh++], sizeof done[0], "%s", d->host);
        double v[KS_RIG_MAX_DEVICES];
        int nv = 0;
        for (int j = 0; j < rig->device_count; j++) {
            const ks_remote_device *e = ks_coordinator_device(c, rig->devices[j].serial);
            if (e && !strcmp(e->host, d->host) && res->host_time_known[j])
                v[nv++] = res->host_time_disagreement_ms[j];
        }
        if (u >= sizeof row->text)
            continue;
        if (!nv) {
            u += (size_t)snprintf(row->text + u, sizeof row->text - u, " %s not measured;", d->host);
            continue;
        }
        qsort(v, (size_t)nv, sizeof v[0], cmp_double);
        double med = nv % 2 ? v[nv / 2] : (v[nv / 2 - 1] + v[nv / 2]) / 2;
        measured++;
        if (fabs(med) > worst)
            worst = fabs(med);
        u += (size_t)snprintf(row->text + u, sizeof row->text - u, " %s %+.3f ms;", d->host, med);
    }
    if (u < sizeof row->text)
        snprintf(row->text + u, sizeof row->text - u, " limit %g ms", limit_ms);
    row->name = "host-time";
    row->pass = true;
    row->status = !measured ? "SKIP" : worst > limit_ms ? "WARN" : "PASS";
}

int ks_cli_verify_distributed(const char *rig_path, const char *out, double seconds, const ks_net_config *net,
                              bool json)
{
    ks_error err;
    ks_rig *rig = calloc(1, sizeof *rig);
    ks_distributed_result *res = calloc(1, sizeof *res);
    ks_align_result *al = NULL;
    ks_coordinator *c = NULL;
    char digest[65];
    int rc = KS_EXIT_FAIL;
    check_row rows[8];
    int nrow = 0;
    if (!rig || !res)
        goto done;
    if ((rc = ks_cli_load_shared_rig("verify", rig_path, rig, digest)) != KS_EXIT_OK)
        goto done;
    rc = KS_EXIT_FAIL;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "kinsync verify: cannot create %s: %s\n", out, strerror(errno));
        rc = KS_EXIT_USAGE;
        goto done;
    }
    if (ks_coordinator_create(net, digest, &c, &err) != KS_OK) {
        ks_cli_print_error("verify", &err);
        goto done;
    }
    ks_distributed_options o;
    memset(&o, 0, sizeof o);
    o.seconds = seconds > 0 ? seconds : 5;
    o.stop = &stop_flag;
    o.out_dir = out;
    stop_flag = 0;
    signal(SIGINT, on_signal);
    ks_status st = ks_distributed_record(c, rig, &o, res, &err);
    signal(SIGINT, SIG_DFL);
    rows[nrow] = (check_row){"start", st == KS_OK, "", NULL};
    snprintf(rows[nrow].text, sizeof rows[nrow].text, "%s",
             st == KS_OK ? "every device found on its host, every subordinate armed before the master started"
                         : err.message);
    nrow++;
    const char *paths[KS_RIG_MAX_DEVICES];
    int np = 0;
    for (int i = 0; i < rig->device_count; i++)
        if (res->paths[i][0])
            paths[np++] = res->paths[i];
    if (np > 0 && ks_align_files(paths, np, NULL, &al, &err) == KS_OK) {
        int target = ks_color_alignment_target_us();
        rows[nrow] = (check_row){"color-alignment", al->worst_skew_us <= target, "", NULL};
        snprintf(rows[nrow].text, sizeof rows[nrow].text, "worst colour skew against the master %.1f us (target %d us) "
                 "over %zu frame sets", al->worst_skew_us, target, al->set_count);
        nrow++;
        uint64_t drops = 0;
        int members = 0;
        for (int i = 0; i < al->file_count; i++) {
            drops += al->files[i].drops;
            members += al->files[i].member;
        }
        rows[nrow] = (check_row){"dropped-frames", drops == 0, "", NULL};
        snprintf(rows[nrow].text, sizeof rows[nrow].text, "%llu frame(s) missing from the devices' own sequences",
                 (unsigned long long)drops);
        nrow++;
        rows[nrow] = (check_row){"recordings", members == rig->device_count, "", NULL};
        snprintf(rows[nrow].text, sizeof rows[nrow].text, "%d of %d devices' recordings gathered and belong to the rig",
                 members, rig->device_count);
        nrow++;
    } else if (np > 0) {
        rows[nrow] = (check_row){"recordings", false, "", NULL};
        snprintf(rows[nrow].text, sizeof rows[nrow].text, "%s", err.message);
        nrow++;
    }
    /* host clocks only decide whether host timestamps compare across hosts, not the sync: WARN */
    double limit_ms = ks_host_clock_agreement_limit_us() / 1000.0;
    rows[nrow] = (check_row){"host-clocks", true, "", res->max_clock_skew_ms <= limit_ms ? "PASS" : "WARN"};
    snprintf(rows[nrow].text, sizeof rows[nrow].text, "host clocks within %.2f ms of the coordinator's, from the "
             "agents' state messages (limit %g ms)", res->max_clock_skew_ms, limit_ms);
    nrow++;
    if (rig->master >= 0) {
        rows[nrow] = (check_row){"host-time", true, "", NULL};
        host_time_row(rig, c, res, &rows[nrow]);
        nrow++;
    }
    bool all = true;
    for (int i = 0; i < nrow; i++)
        all &= rows[i].pass;
    if (json) {
        json_t *j = json_object(), *arr = json_array();
        json_object_set_new(j, "rig", json_string(rig->name));
        json_object_set_new(j, "distributed", json_true());
        json_object_set_new(j, "pass", json_boolean(all));
        for (int i = 0; i < nrow; i++)
            json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s}", "check", rows[i].name, "pass", rows[i].pass,
                                                 "status", row_status(&rows[i]), "detail", rows[i].text));
        json_object_set_new(j, "checks", arr);
        json_t *ht = json_array();
        for (int i = 0; i < rig->device_count; i++) {
            const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
            json_t *e = json_pack("{s:s, s:s, s:b, s:i}", "serial", rig->devices[i].serial, "host", d ? d->host : "",
                                  "measured", res->host_time_known[i], "pairs", res->host_time_pairs[i]);
            json_object_set_new(e, "disagreement_ms", res->host_time_known[i]
                                                          ? json_real(res->host_time_disagreement_ms[i]) : json_null());
            json_object_set_new(e, "fit_mad_us", res->host_time_known[i] ? json_real(res->host_time_fit_mad_us[i])
                                                                         : json_null());
            json_array_append_new(ht, e);
        }
        json_object_set_new(j, "host_time", ht);
        json_object_set_new(j, "host_time_reference",
                            json_string(rig->master >= 0 ? rig->devices[rig->master].serial : ""));
        json_object_set_new(j, "max_host_time_disagreement_ms", json_real(res->max_host_time_disagreement_ms));
        json_object_set_new(j, "max_clock_skew_ms", json_real(res->max_clock_skew_ms));
        json_object_set_new(j, "host_clock_limit_ms", json_real(limit_ms));
        json_object_set_new(j, "start_to_streaming_ms", json_real(res->start_to_streaming_ms));
        json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(j);
    } else {
        printf("rig %s over its hosts, recordings in %s\n\n", rig->name, out);
        for (int i = 0; i < nrow; i++)
            printf("%-5s %-16s %s\n", row_status(&rows[i]), rows[i].name, rows[i].text);
        printf("\nresult: %s\n", all ? "PASS" : "FAIL");
    }
    rc = all ? KS_EXIT_OK : KS_EXIT_FAIL;
done:
    ks_align_free(al);
    ks_coordinator_free(c);
    free(rig);
    free(res);
    return rc;
}
