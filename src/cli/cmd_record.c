/* kinsync record rig.yaml --out DIR [--seconds N] [--frames N]: one Azure Kinect .mkv per device,
 * named ROLE-SERIAL.mkv, through the orchestrated start (subordinates first, master last), with a
 * progress line on a terminal; Ctrl-C stops cleanly with every file complete (docs/record.md).
 * Given recordings instead of a rig file (kinsync record FILE.mkv... --out DIR), it records them
 * again through the playback backend (same layout, new files), which is how the recorder is tested
 * without devices. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "cli/net_cli.h"
#include "kinsync/playback.h"
#include "kinsync/record.h"
#include "kinsync/sim.h"

static volatile int stop_flag;
static volatile sig_atomic_t stop_signal; /* the signal that stopped the recording */

static void on_sigint(int sig)
{
    stop_flag = 1;
    stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills; the .part files stay readable (kinsync repair) */
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync record rig.yaml --out DIR [--seconds N] [--frames N] [--paced] [--json]\n"
            "       kinsync record FILE.mkv... --out DIR [...]   (record recordings again)\n"
            "\n"
            "Records every device of the rig into DIR, one Azure Kinect recording per device named\n"
            "ROLE-SERIAL.mkv (master-000100000001.mkv, sub1-...). Subordinates are started first,\n"
            "the master last; every file carries the K4A tags (sync mode, delays, calibration) and\n"
            "the rig name, role and plan digest. Ctrl-C stops cleanly: every file is completed\n"
            "(written as NAME.mkv.part, renamed when complete). Without devices the rig runs on the\n"
            "simulator (fast when --seconds/--frames is given, paced otherwise).\n"
            "\n"
            "  -o, --out DIR     directory for the recordings (created if missing; must not hold them)\n"
            "  -s, --seconds N   stop after N seconds of device time on every device\n"
            "  -n, --frames N    stop after N captures on every device\n"
            "      --paced       run the simulator at wall-clock speed (default when no limit is given)\n"
            "  -b, --backend B   auto (default: real devices if attached, else the simulator), sim, k4a\n"
            "      --json        print a summary as JSON on stdout\n"
            "      --distributed the rig spans hosts: coordinate their agents (kinsync agent), then\n"
            "                    gather every recording into DIR (docs/multi-host.md)\n"
            KS_NET_CLI_HELP
            "  -h, --help        this help\n"
            "\n"
            "Exit status: 0 recorded (also when stopped by Ctrl-C) and nothing lost, 1 a device or the\n"
            "recording failed, a device stopped delivering (3 s without a frame) or captures were lost\n"
            "(counted per device), 2 usage error or unreadable rig file.\n");
}

typedef struct prog_ctx {
    const ks_rig *rig;
    char roles[KS_RIG_MAX_DEVICES][64];
    bool tty;
} prog_ctx;

static void progress(const ks_record_progress *p, void *user)
{
    prog_ctx *pc = user;
    if (!pc->tty)
        return;
    char line[1024];
    size_t k = (size_t)snprintf(line, sizeof line, "\rrecording:");
    double mb = 0;
    for (int i = 0; i < p->device_count && k < sizeof line; i++) {
        k += (size_t)snprintf(line + k, sizeof line - k, " %s %llu (%.1f s)%s", pc->roles[i],
                              (unsigned long long)p->captures[i], p->seconds[i], p->running[i] ? "" : " done");
        mb += (double)p->bytes[i] / 1e6;
    }
    if (k < sizeof line)
        snprintf(line + k, sizeof line - k, " | %.1f MB  (Ctrl-C stops)  ", mb);
    fputs(line, stderr);
    fflush(stderr);
}

typedef struct rec_args {
    ks_net_config net;
    bool distributed, paced, json, live;
    const char *out, *backend_name;
    double seconds;
    long long frames;
    const char *const *inputs;
    int nin;
} rec_args;

/* Flags into *a; returns -1 to go on, else the exit status (usage errors, --help). */
static int parse_args(int argc, char **argv, rec_args *a)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"frames", required_argument, NULL, 'n'},
                                         {"paced", no_argument, NULL, 'p'},
                                         {"backend", required_argument, NULL, 'b'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"distributed", no_argument, NULL, 'D'},
                                         KS_NET_CLI_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    ks_net_config_init(&a->net);
    a->backend_name = "auto";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:s:n:h", opts, NULL)) != -1) {
        int r = ks_net_cli_option("record", c, optarg, &a->net);
        if (r < 0)
            return KS_EXIT_USAGE;
        if (r > 0)
            continue;
        char *end = NULL;
        switch (c) {
        case 'o': a->out = optarg; break;
        case 's':
            a->seconds = strtod(optarg, &end);
            if (!*optarg || *end || !(a->seconds > 0) || a->seconds > 1e6)
                return ks_cli_usage_error("record", "--seconds takes a positive number, not '%s'", optarg);
            break;
        case 'n':
            errno = 0;
            a->frames = strtoll(optarg, &end, 10);
            if (!*optarg || *end || a->frames <= 0 || errno == ERANGE)
                return ks_cli_usage_error("record", "--frames takes a positive whole number, not '%s'", optarg);
            break;
        case 'p': a->paced = true; break;
        case 'b': a->backend_name = optarg; break;
        case 'D': a->distributed = true; break;
        case 'j': a->json = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("record", "unknown option");
        }
    }
    a->nin = argc - optind;
    if (a->nin < 1)
        return ks_cli_usage_error("record", "give a rig file (rig.yaml) or recordings (FILE.mkv...)");
    if (!a->out)
        return ks_cli_usage_error("record", "give the output directory with --out DIR");
    a->inputs = (const char *const *)(argv + optind);
    a->live = a->paced || (a->seconds <= 0 && a->frames <= 0); /* the simulator at wall-clock speed */
    return -1;
}

/* Recordings to record again: the rig they make, their configurations and the playback backend. */
static int open_recordings(const rec_args *a, ks_rig *rig, ks_device_config *configs, ks_backend **backend,
                           ks_record_run_options *ro)
{
    ks_error err;
    ks_findings findings;
    ks_findings_init(&findings);
    ks_playback_device *pd = calloc(KS_PLAYBACK_MAX_FILES, sizeof *pd);
    ks_status st = pd ? ks_playback_rig_build(a->inputs, a->nin, rig, pd, &findings, &err)
                      : ks_error_set(&err, KS_ENOMEM, "out of memory");
    if (st == KS_OK) {
        for (int i = 0; i < rig->device_count; i++)
            configs[i] = pd[i].config;
        if (pd[0].plan_digest[0])
            snprintf(ro->recorder.plan_digest, sizeof ro->recorder.plan_digest, "%s", pd[0].plan_digest);
        ks_playback_options po;
        ks_playback_options_init(&po);
        po.pace = a->paced ? KS_PLAYBACK_REALTIME : KS_PLAYBACK_LOCKSTEP;
        st = ks_backend_open_playback(a->inputs, a->nin, &po, backend, &err);
    }
    free(pd);
    ks_findings_free(&findings);
    if (st != KS_OK) {
        ks_cli_print_error("record", &err);
        return st == KS_EINVAL ? KS_EXIT_FAIL : KS_EXIT_USAGE;
    }
    return KS_EXIT_OK;
}

/* A rig file: the rig, its plan and the backend exactly as `kinsync verify` opens them (*rr keeps
 * them open until the recording ends). */
static int open_rig(const rec_args *a, ks_rig *rig, ks_device_config *configs, ks_backend **backend,
                    ks_record_run_options *ro, ks_cli_rigrun **rrp)
{
    ks_error err;
    ks_cli_rigrun *rr = *rrp = calloc(1, sizeof *rr);
    int orc = rr ? ks_cli_rigrun_open(a->inputs[0], a->backend_name, !a->live, rr, &err)
                 : (ks_error_set(&err, KS_ENOMEM, "out of memory"), KS_EXIT_FAIL);
    if (orc != KS_EXIT_OK) {
        ks_cli_print_error("record", &err);
        return orc;
    }
    if (rr->note[0])
        fprintf(stderr, "kinsync record: %s\n", rr->note);
    *rig = rr->rig;
    *backend = rr->backend;
    rr->backend = NULL;
    if (!rr->plan.feasible && !rr->note[0])
        fprintf(stderr, "kinsync record: warning: the plan is not feasible (%s); recording with its best effort "
                        "(kinsync plan %s explains)\n",
                rr->plan.reason, a->inputs[0]);
    char digest[80];
    ks_status st = ks_record_configs_from_rig(rig, &rr->plan, configs, digest, &err);
    if (st == KS_OK && rr->simulated) {
        /* reopen the simulator paced for a recording without limits (it runs until Ctrl-C)
         * and with a deeper host queue than its default (8): the world catches up in bursts
         * of events and an 8-frame queue would drop frames of a reader that keeps up */
        ks_backend_free(*backend);
        *backend = NULL;
        ks_sim_config sc;
        st = ks_sim_config_load(a->inputs[0], rig, &sc, &err);
        if (st == KS_OK) {
            sc.mode = a->live ? KS_SIM_PACED : KS_SIM_FAST;
            if (sc.queue_frames < 32)
                sc.queue_frames = 32;
            st = ks_backend_open_sim(rig, &sc, backend, &err);
        }
    }
    if (st != KS_OK) {
        ks_cli_print_error("record", &err);
        return KS_EXIT_FAIL;
    }
    snprintf(ro->recorder.plan_digest, sizeof ro->recorder.plan_digest, "%s", digest);
    return KS_EXIT_OK;
}

/* What is on disk after the run, said on stderr (losses, incomplete files) and stdout (a line per
 * file, or --json); returns the exit status given the run's (rc). */
static int report(const rec_args *a, const ks_rig *rig, const prog_ctx *pc, const ks_record_run_options *ro,
                  const ks_record_result *res, ks_status st, const ks_error *err, int rc)
{
    /* a file whose writing failed stays NAME.mkv.part (kinsync repair completes it) */
    char (*paths)[520] = calloc(KS_RIG_MAX_DEVICES, sizeof *paths);
    if (!paths)
        return KS_EXIT_FAIL;
    bool part[KS_RIG_MAX_DEVICES] = {false};
    uint64_t lost = 0;
    char lost_msg[512] = "";
    size_t lk = 0;
    for (int i = 0; i < res->device_count; i++) {
        snprintf(paths[i], sizeof paths[i], "%s", res->paths[i]);
        if (res->paths[i][0] && access(res->paths[i], F_OK) != 0) {
            snprintf(paths[i], sizeof paths[i], "%s.part", res->paths[i]);
            part[i] = access(paths[i], F_OK) == 0;
            if (!part[i])
                paths[i][0] = 0;
        }
        if (res->stats[i].lost) {
            lost += res->stats[i].lost;
            if (lk < sizeof lost_msg)
                lk += (size_t)snprintf(lost_msg + lk, sizeof lost_msg - lk, "%s%s %llu", lk ? ", " : "", pc->roles[i],
                                       (unsigned long long)res->stats[i].lost);
        }
    }
    if (lost) {
        fprintf(stderr,
                "kinsync record: error: captures were lost (gaps in the device timestamps): %s; the files are "
                "complete but the take has holes (check the cables, USB bandwidth and host load: kinsync doctor)\n",
                lost_msg);
        rc = KS_EXIT_FAIL;
    }
    for (int i = 0; i < res->device_count; i++)
        if (part[i]) {
            fprintf(stderr, "kinsync record: %s was not completed; `kinsync repair %s` completes it\n", paths[i],
                    paths[i]);
            rc = KS_EXIT_FAIL;
        }
    if (res->device_count && res->paths[0][0] && a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "rig", json_string(rig->name));
        json_object_set_new(j, "ok", json_boolean(rc == KS_EXIT_OK));
        if (st != KS_OK)
            json_object_set_new(j, "error", json_string(err->message));
        json_object_set_new(j, "interrupted", json_boolean(res->interrupted));
        if (res->interrupted)
            json_object_set_new(j, "signal", json_string(stop_signal == SIGTERM ? "SIGTERM" : "SIGINT"));
        json_object_set_new(j, "lost", json_integer((json_int_t)lost));
        json_object_set_new(j, "plan_digest", json_string(ro->recorder.plan_digest));
        json_t *files = json_array();
        for (int i = 0; i < res->device_count; i++) {
            const ks_record_stats *s = &res->stats[i];
            json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "path", paths[i], "serial",
                                  rig->devices[i].serial, "role", pc->roles[i], "captures", (json_int_t)s->captures,
                                  "imu_samples", (json_int_t)s->imu_samples, "rejected", (json_int_t)s->rejected,
                                  "bytes", (json_int_t)s->bytes, "seconds",
                                  s->captures ? (double)(s->last_ts_us - s->first_ts_us) / 1e6 : 0.0);
            json_object_set_new(f, "end", json_string(ks_status_name(part[i] && res->device_status[i] == KS_OK
                                                                          ? KS_EIO
                                                                          : res->device_status[i])));
            json_object_set_new(f, "lost", json_integer((json_int_t)s->lost));
            json_object_set_new(f, "complete", json_boolean(paths[i][0] && !part[i]));
            if (part[i])
                json_object_set_new(f, "repair", json_sprintf("kinsync repair %s", paths[i]));
            json_array_append_new(files, f);
        }
        json_object_set_new(j, "files", files);
        json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(j);
    } else if (res->device_count && res->paths[0][0]) {
        for (int i = 0; i < res->device_count; i++) {
            const ks_record_stats *s = &res->stats[i];
            char lost_note[64] = "";
            if (s->lost)
                snprintf(lost_note, sizeof lost_note, ", %llu LOST", (unsigned long long)s->lost);
            printf("%s: %llu captures%s, %.2f s, %.1f MB%s%s\n", paths[i][0] ? paths[i] : res->paths[i],
                   (unsigned long long)s->captures, lost_note,
                   s->captures ? (double)(s->last_ts_us - s->first_ts_us) / 1e6 : 0.0, (double)s->bytes / 1e6,
                   s->rejected ? " (some frames out of order were not written)" : "",
                   part[i] ? " (incomplete: kinsync repair completes it)" : !paths[i][0] ? " (not written)" : "");
        }
        if (res->interrupted)
            printf("stopped by %s; %s\n", stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C",
                   rc == KS_EXIT_OK ? "every file is complete" : "see the errors above");
    }
    free(paths);
    return rc;
}

int cmd_record(int argc, char **argv)
{
    rec_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.distributed) {
        if (a.nin != 1 || a.frames > 0)
            return ks_cli_usage_error("record", "--distributed takes one rig file and --seconds (not --frames)");
        if (!ks_net_cli_ready("record", &a.net))
            return KS_EXIT_USAGE;
        return ks_cli_record_distributed(a.inputs[0], a.out, a.seconds, &a.net, a.json);
    }
    bool from_recordings = ks_playback_is_recording(a.inputs[0]);
    if (!from_recordings && a.nin > 1)
        return ks_cli_usage_error("record", "give one rig file (got %d arguments)", a.nin);

    ks_rig *rig = calloc(1, sizeof *rig);
    ks_device_config *configs = calloc(KS_RIG_MAX_DEVICES, sizeof *configs);
    ks_backend *backend = NULL;
    ks_cli_rigrun *rr = NULL;
    ks_record_run_options ro;
    memset(&ro, 0, sizeof ro);
    if (!rig || !configs) {
        fprintf(stderr, "kinsync record: out of memory\n");
        free(rig);
        free(configs);
        return KS_EXIT_FAIL;
    }
    rc = from_recordings ? open_recordings(&a, rig, configs, &backend, &ro)
                         : open_rig(&a, rig, configs, &backend, &ro, &rr);
    if (rc == KS_EXIT_OK) {
        prog_ctx pc;
        memset(&pc, 0, sizeof pc);
        pc.rig = rig;
        pc.tty = ks_cli_is_tty(stderr) && !a.json;
        ks_record_role_names(rig, pc.roles);
        ro.seconds = a.seconds;
        ro.frames = (uint64_t)a.frames;
        ro.stop = &stop_flag;
        ro.progress = progress;
        ro.progress_user = &pc;
        stop_flag = 0;
        stop_signal = 0;
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old);
        sigaction(SIGTERM, &sa, NULL);
        ks_error err;
        ks_record_result *res = calloc(1, sizeof *res);
        ks_status st = res ? ks_record_run(backend, rig, configs, a.out, &ro, res, &err)
                           : ks_error_set(&err, KS_ENOMEM, "out of memory");
        sigaction(SIGINT, &old, NULL);
        signal(SIGTERM, SIG_DFL);
        if (pc.tty)
            fputs("\n", stderr);
        if (st != KS_OK) {
            ks_cli_print_error("record", &err);
            rc = KS_EXIT_FAIL;
        }
        if (res)
            rc = report(&a, rig, &pc, &ro, res, st, &err, rc);
        free(res);
    }
    if (rr)
        ks_cli_rigrun_close(rr);
    free(rr);
    ks_backend_free(backend);
    free(configs);
    free(rig);
    return rc;
}
