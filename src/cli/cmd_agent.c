/* kinsync agent rig.yaml --host NAME ...: owns this host's devices of a rig and obeys a coordinator
 * (`kinsync record --distributed`) that proves the shared rig secret (docs/agent.md). */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net_cli.h"
#include "kinsync/k4a.h"
#include "kinsync/net.h"
#include "net/net_testing.h"
#include "kinsync/sim.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync agent rig.yaml --host NAME --interface IF --secret-file FILE [OPTIONS]\n"
            "\n"
            "Runs on every host of a rig: owns the rig's devices whose 'host:' is NAME, publishes their\n"
            "state and figures twice a second, and carries out the commands of a coordinator\n"
            "(kinsync record --distributed) that signs them with the shared rig secret. Commands\n"
            "from anyone else, replayed or stale commands, and commands for another rig file are\n"
            "rejected and logged. Recordings go to --out and are sent to the coordinator on request.\n"
            "Without libk4a devices the host's share of the rig runs on the simulator (paced).\n"
            "\n"
            "      --host NAME          this host's name in the rig file (default: the hostname)\n"
            "  -o, --out DIR            where this host's recordings go (default: kinsync-agent-NAME)\n"
            "      --backend B          auto (default), k4a or sim\n"
            "      --for SECONDS        exit after this long (default: until Ctrl-C or SIGTERM)\n"
            KS_NET_CLI_HELP
            "  -h, --help               this help\n"
            "\n"
            "Exit status: 0 stopped normally, 1 the agent failed, 2 usage error.\n");
}

static ks_status open_backend(const char *name, const char *rig_path, const ks_rig *rig, ks_backend **out,
                              ks_error *err)
{
    if (strcmp(name, "sim") != 0) {
        ks_status st = ks_backend_open_k4a(out, err);
        if (st == KS_OK && ks_backend_device_count(*out) > 0)
            return KS_OK;
        if (st == KS_OK)
            ks_backend_free(*out);
        *out = NULL;
        if (!strcmp(name, "k4a"))
            return st == KS_OK ? ks_error_set(err, KS_ENOTFOUND, "libk4a finds no device on this host") : st;
    }
    ks_sim_config cfg;
    ks_status st = ks_sim_config_load(rig_path, rig, &cfg, err);
    if (st != KS_OK)
        return st;
    cfg.mode = KS_SIM_PACED; /* hosts share one timeline: the wall clock */
    if (cfg.queue_frames < 32)
        cfg.queue_frames = 32; /* as kinsync record: a busy host catches up instead of dropping frames */
    return ks_backend_open_sim(rig, &cfg, out, err);
}

int cmd_agent(int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, NULL, 'H'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"backend", required_argument, NULL, 'b'},
                                         {"for", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         KS_NET_CLI_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    ks_net_config net;
    ks_net_config_init(&net);
    char host[KS_NAME_MAX] = "", outdir[512] = "";
    const char *backend_name = "auto";
    double for_s = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int r = ks_net_cli_option("agent", c, optarg, &net);
        if (r < 0)
            return KS_EXIT_USAGE;
        if (r > 0)
            continue;
        char *end;
        switch (c) {
        case 'H': snprintf(host, sizeof host, "%s", optarg); break;
        case 'o': snprintf(outdir, sizeof outdir, "%s", optarg); break;
        case 'b':
            if (strcmp(optarg, "auto") && strcmp(optarg, "k4a") && strcmp(optarg, "sim"))
                return ks_cli_usage_error("agent", "--backend is auto, k4a or sim, not '%s'", optarg);
            backend_name = optarg;
            break;
        case 'f':
            for_s = strtod(optarg, &end);
            if (!*optarg || *end || !(for_s > 0))
                return ks_cli_usage_error("agent", "--for takes a positive number of seconds, not '%s'", optarg);
            break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("agent", "unknown option");
        }
    }
    if (argc - optind != 1)
        return ks_cli_usage_error("agent", "give one rig file (the same file on every host)");
    if (!ks_net_cli_ready("agent", &net))
        return KS_EXIT_USAGE;
    const char *rig_path = argv[optind];
    if (!host[0] && gethostname(host, sizeof host - 1) != 0)
        return ks_cli_usage_error("agent", "cannot read the hostname; give --host NAME");
    if (!outdir[0])
        snprintf(outdir, sizeof outdir, "kinsync-agent-%s", host);

    ks_error err;
    ks_rig *rig = calloc(1, sizeof *rig);
    char digest[65];
    if (!rig) {
        fprintf(stderr, "kinsync agent: out of memory\n");
        return KS_EXIT_FAIL;
    }
    int lrc = ks_cli_load_shared_rig("agent", rig_path, rig, digest);
    if (lrc != KS_EXIT_OK) {
        free(rig);
        return lrc;
    }

    int rc = KS_EXIT_FAIL;
    ks_backend *backend = NULL;
    ks_agent_host *h = NULL;
    ks_agent *agent = NULL;
    const char *serials[32];
    if (open_backend(backend_name, rig_path, rig, &backend, &err) != KS_OK ||
        ks_agent_host_create(rig, host, backend, outdir, &h, &err) != KS_OK) {
        ks_cli_print_error("agent", &err);
        goto done;
    }
    int n = ks_agent_host_serials(h, serials, 32);
    if (ks_agent_create(&net, host, digest, serials, n, ks_agent_host_ops(), h, &agent, &err) != KS_OK) {
        ks_cli_print_error("agent", &err);
        goto done;
    }
    const char *test_off = getenv("KINSYNC_TEST_CLOCK_OFFSET_MS");
    if (test_off && test_off[0]) {
        /* test hook (docs/agent.md): this host reports its CLOCK_REALTIME off by N ms */
        char *end;
        double ms = strtod(test_off, &end);
        if (*end || !(fabs(ms) <= 1e6)) {
            fprintf(stderr, "kinsync agent: KINSYNC_TEST_CLOCK_OFFSET_MS must be a number of ms, not '%s'\n", test_off);
            goto done;
        }
        fprintf(stderr, "kinsync agent: TEST HOOK: reporting this host's CLOCK_REALTIME %+.3f ms off "
                "(KINSYNC_TEST_CLOCK_OFFSET_MS; never set it on a real rig)\n", ms);
        ks_agent_set_reported_clock_offset(agent, (int64_t)llround(ms * 1e6));
        ks_agent_host_set_reported_clock_offset(h, (int64_t)llround(ms * 1e6));
    }
    fprintf(stderr, "kinsync agent: host %s, %d device(s) on the %s backend, rig %s (%.12s), recordings in %s\n",
            host, n, ks_backend_name(backend), rig->name, digest, outdir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (for_s > 0) {
        signal(SIGALRM, on_signal);
        alarm((unsigned)ceil(for_s));
    }
    ks_agent_run(agent, &stop_flag, &err);
    rc = KS_EXIT_OK;
done:
    ks_agent_free(agent);
    ks_agent_host_free(h);
    ks_backend_free(backend);
    free(rig);
    return rc;
}
