/* kinsync verify RIG.yaml | FILE.mkv...: start the rig (or the recordings of a take) the right way,
 * measure how well it is synchronized, stop; PASS/FAIL per check with figures (docs/verify.md). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/net_cli.h"
#include "cli/session_cli.h"
#include "kinsync/session.h"
#include "kinsync/syncstats.h"
#include "util/monotime.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync verify [OPTIONS] (RIG.yaml | RECORDING.mkv...)\n"
            "\n"
            "Runs the rig as planned (`kinsync plan`): opens every device, checks firmware and the sync\n"
            "jacks against the declared cables, sets the same manual exposure once, starts the\n"
            "subordinates and then the master, groups the frames into frame sets and measures: colour\n"
            "alignment against the master (target %d us), depth offsets against the plan, dropped frames,\n"
            "clock drift, the device-to-host clock fit, and the known failure modes (master started before\n"
            "a subordinate, auto exposure, exposure set repeatedly, laser overlap, a drifting external\n"
            "trigger, a device lost, a sync cable or trigger that stops, black/pink frames) and which\n"
            "instant the timestamps name. Prints PASS/WARN/FAIL/SKIP per check with its figures (SKIP:\n"
            "could not be judged, with the reason). Without devices it runs the simulator on the rig\n"
            "file (and its `simulation:` section), which also checks the interference groups against the\n"
            "geometry (devices that light each other's view cannot be in separate groups).\n"
            "RECORDING.mkv...: one recording per device of a finished take (kinsync record, k4arecorder):\n"
            "the rig is rebuilt from them (roles, recorded delays, timestamp convention) and its frames\n"
            "run through exactly the same session and checks as a live run, to the end of the take.\n"
            "\n"
            "Options:\n"
            "  --seconds N       measure for N seconds of device time (default 3; recordings: all)\n"
            "  --json            print the result as JSON (schema kinsync.verify/1)\n"
            "  --report FILE     also write an HTML report with pictures (skew histograms over time per\n"
            "                    device, the measured timeline of one frame period)\n"
            "  --backend NAME    auto (default: real devices if attached, else the simulator), sim, k4a\n"
            "  --fast            simulator: run in virtual time as fast as possible (ignore mode: paced)\n"
            "  --timeout-ms N    how long to wait for the first frames (default 5000)\n"
            "  --start-master-first  start the master before the subordinates, the classic mistake, to\n"
            "                    see how verify detects it\n"
            "  --distributed     the rig spans hosts: run it through their agents (kinsync agent), gather\n"
            "                    the recordings into --out DIR and prove the sync from them\n"
            "  --out DIR         with --distributed: where the gathered recordings go (default verify-out)\n"
            KS_NET_CLI_HELP
            "  -h, --help        this text\n"
            "\n"
            "Exit status: 0 every check passed, 1 a check failed or the rig could not be started,\n"
            "2 usage error (unknown option, unreadable or malformed rig file).\n",
            ks_color_alignment_target_us());
}

static void print_text(const ks_cli_rigrun *r, ks_session *s, ks_syncstats *q, double seconds)
{
    printf("rig %s: %d device%s on the %s backend, %.1f s, %llu frame sets\n", r->rig.name, r->rig.device_count,
           r->rig.device_count == 1 ? "" : "s", ks_backend_name(r->backend), seconds,
           (unsigned long long)ks_syncstats_sets(q));
    if (r->note[0])
        printf("note: %s\n", r->note);
    printf("\n");
    for (int i = 0; i < ks_syncstats_check_count(q); i++) {
        const ks_sync_check *c = ks_syncstats_check(q, i);
        printf("%-4s  %-18s %s\n", ks_check_status_name(c->status), c->id, c->message);
    }
    printf("\ntimestamps: read as %s (rig file: %s; measured: %s)\n",
           ks_ts_convention_name(ks_syncstats_timestamps_used(q)), ks_ts_convention_name(r->rig.ts_convention),
           ks_syncstats_timestamps(q) == KS_TS_AUTO ? "undecided" : ks_ts_convention_name(ks_syncstats_timestamps(q)));
    printf("\n%-12s %7s %7s %10s %10s %12s %10s %12s\n", "device", "frames", "missing", "skew mean", "skew p99",
           "depth offset", "drift", "host fit");
    for (int d = 0; d < ks_session_device_count(s); d++) {
        const ks_sync_device *o = ks_syncstats_device(q, d);
        char fit[32] = "-";
        if (o->host_fit_ok)
            snprintf(fit, sizeof fit, "%+.1f ppm", (o->host_rate / 1000.0 - 1) * 1e6);
        printf("%-12s %7llu %7llu %8.1f us %8.1f us %9.1f us %6.2f ppm %12s%s\n", ks_session_device_name(s, d),
               (unsigned long long)o->frames, (unsigned long long)o->missing, o->skew_mean_us, o->skew_p99_abs_us,
               o->depth_offset_mean_us, o->drift_vs_ref_ppm, fit, d == ks_session_reference(s) ? "  (master)" : "");
    }
    printf("\nresult: %s\n", ks_syncstats_passed(q) ? "PASS" : "FAIL");
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"seconds", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"report", required_argument, 0, 'r'},
                                         {"backend", required_argument, 0, 'b'},
                                         {"fast", no_argument, 0, 'f'},
                                         {"timeout-ms", required_argument, 0, 't'},
                                         {"start-master-first", no_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {"distributed", no_argument, 0, 'D'},
                                         {"out", required_argument, 0, 'o'},
                                         KS_NET_CLI_OPTIONS,
                                         {0, 0, 0, 0}};
    ks_net_config net;
    ks_net_config_init(&net);
    bool distributed = false;
    const char *outdir = "verify-out";
    double seconds = 3;
    bool json = false, fast = false, wrong = false, seconds_given = false;
    const char *report = NULL, *backend = "auto";
    int timeout_ms = 5000;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int nr = ks_net_cli_option("verify", c, optarg, &net);
        if (nr < 0)
            return KS_EXIT_USAGE;
        if (nr > 0)
            continue;
        char *end;
        switch (c) {
        case 's':
            seconds = strtod(optarg, &end);
            if (*end || !(seconds > 0) || seconds > 86400)
                return ks_cli_usage_error("verify", "--seconds needs a positive number of seconds, got '%s'", optarg);
            seconds_given = true;
            break;
        case 'j': json = true; break;
        case 'r': report = optarg; break;
        case 'b': backend = optarg; break;
        case 'f': fast = true; break;
        case 'w': wrong = true; break;
        case 'D': distributed = true; break;
        case 'o': outdir = optarg; break;
        case 't':
            timeout_ms = (int)strtol(optarg, &end, 10);
            if (*end || timeout_ms <= 0)
                return ks_cli_usage_error("verify", "--timeout-ms needs a positive number, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("verify", "unknown option");
        }
    }
    if (optind >= argc)
        return ks_cli_usage_error("verify", "give one rig file or one recording per device");
    const char *path = argv[optind];
    if (distributed) {
        if (optind != argc - 1)
            return ks_cli_usage_error("verify", "--distributed takes one rig file");
        if (!ks_net_cli_ready("verify", &net))
            return KS_EXIT_USAGE;
        return ks_cli_verify_distributed(path, outdir, seconds, &net, json);
    }
    ks_cli_rigrun r;
    ks_error err;
    int rc = ks_cli_source_open((const char *const *)argv + optind, argc - optind, backend, fast, &r, &err);
    if (rc != KS_EXIT_OK) {
        ks_cli_print_error("verify", &err);
        ks_cli_rigrun_close(&r);
        return rc;
    }
    ks_session_options opt;
    ks_session_options_init(&opt);
    opt.wrong_order = wrong;
    opt.first_frame_timeout_ms = timeout_ms;
    opt.measure_invalid = true;
    ks_session *s = NULL;
    if (ks_session_open(&r.rig, &r.plan, r.backend, &opt, &s, &err) != KS_OK ||
        ks_session_start(s, &err) != KS_OK) {
        ks_cli_print_error("verify", &err);
        if (json) {
            printf("{\"schema\": \"kinsync.verify/1\", \"passed\": false, \"error\": \"%s\", \"message\": \"",
                   ks_status_name(err.code));
            for (const char *p = err.message; *p; p++) /* minimal JSON string escaping */
                if (*p == '"' || *p == '\\')
                    printf("\\%c", *p);
                else
                    putchar(*p);
            printf("\"}\n");
        }
        ks_session_close(s);
        ks_cli_rigrun_close(&r);
        return KS_EXIT_FAIL;
    }
    ks_cli_stop_on_sigint(s);
    bool tty = !json && ks_cli_is_tty(stderr);
    double t0 = ks_mono_s(), last_print = 0, first_key = NAN, span = 0;
    /* recordings run to their end unless --seconds says otherwise; they set their own pace */
    bool limit = !r.recordings || seconds_given;
    double wall_limit = r.recordings ? 1e12 : seconds * 4 + 30;
    ks_session_set set;
    ks_status st;
    while ((st = ks_session_next(s, &set, 1000, &err)) == KS_OK || st == KS_ETIMEOUT) {
        if (st == KS_OK) {
            if (isnan(first_key))
                first_key = set.set.key_us;
            span = (set.set.key_us - first_key) / 1e6;
            ks_session_set_release(&set);
            if (limit && span >= seconds)
                ks_session_request_stop(s);
        }
        if (st == KS_ETIMEOUT && limit && !isnan(first_key)) {
            /* every device silent for the rest of the run (backend time: virtual on the simulator):
             * the rig stopped (a trigger that stopped, a master gone); waiting longer shows nothing */
            ks_session_progress p;
            ks_session_get_progress(s, &p);
            bool silent = true;
            for (int i = 0; i < p.device_count; i++)
                if (p.alive[i] && p.silent_ms[i] < 1000.0 * (seconds - span) + 500)
                    silent = false;
            if (silent)
                ks_session_request_stop(s);
        }
        if (ks_mono_s() - t0 > wall_limit)
            ks_session_request_stop(s);
        if (tty && ks_mono_s() - last_print > 0.5) {
            ks_cli_progress_line(stderr, s);
            last_print = ks_mono_s();
        }
    }
    if (tty)
        fputc('\n', stderr);
    bool fault = st == KS_ENODEV;
    ks_session_stop(s);
    /* what was asked for: a run that ends early is a finding, not a shorter PASS */
    ks_syncstats_setup(ks_session_stats(s))->requested_seconds = limit ? seconds : 0;
    ks_syncstats *q = ks_session_stats(s); /* a device that failed is a FAIL check (device-lost) */
    if (fault)
        ks_cli_print_error("verify", &err);
    if (json) {
        char *j = ks_syncstats_to_json(q);
        if (j)
            printf("%s\n", j);
        free(j);
    } else {
        print_text(&r, s, q, span);
    }
    int report_rc = KS_EXIT_OK;
    if (report) {
        ks_error rerr;
        if (ks_syncstats_write_html(q, r.rig.name, report, &rerr) != KS_OK)
            report_rc = ks_cli_fail("verify", &rerr, KS_CLI_RUN); /* the report asked for is not written */
        else if (!json)
            printf("report: %s\n", report);
    }
    bool passed = ks_syncstats_passed(q); /* the one verdict: result line, JSON and exit status */
    ks_cli_stop_on_sigint(NULL);
    ks_session_close(s);
    ks_cli_rigrun_close(&r);
    return passed && report_rc == KS_EXIT_OK ? KS_EXIT_OK : KS_EXIT_FAIL;
}
