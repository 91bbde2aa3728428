/* Shared by verify and capture (cli/session_cli.h). */
#include "cli/session_cli.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/k4a.h"
#include "kinsync/sim.h"

int ks_cli_rigrun_open(const char *rig_path, const char *name, bool fast, ks_cli_rigrun *r, ks_error *err)
{
    memset(r, 0, sizeof *r);
    if (ks_rig_load(rig_path, &r->rig, err) != KS_OK)
        return KS_EXIT_USAGE;
    ks_findings f;
    ks_findings_init(&f);
    ks_status vst = ks_rig_validate(&r->rig, &f);
    if (vst != KS_OK) {
        char line[600] = "";
        for (int i = 0; i < f.count; i++)
            if (f.items[i].severity == KS_SEV_ERROR) {
                ks_finding_format(&r->rig, &f.items[i], line, sizeof line);
                break;
            }
        ks_findings_free(&f);
        ks_error_set(err, KS_EINVAL, "%s: the rig is invalid: %s (see `kinsync plan %s`)", rig_path, line, rig_path);
        return KS_EXIT_FAIL;
    }
    ks_findings_free(&f);
    ks_error perr;
    if (ks_plan_make(&r->rig, NULL, &r->plan, &perr) != KS_OK)
        snprintf(r->note, sizeof r->note, "the plan is not feasible (%s); running with its best effort", perr.message);
    bool want_sim = !strcmp(name, "sim");
    if (!want_sim && strcmp(name, "k4a") && strcmp(name, "auto")) {
        ks_error_set(err, KS_EINVAL, "unknown backend '%s'; use auto, sim or k4a", name);
        return KS_EXIT_USAGE;
    }
    if (!want_sim) {
        ks_error kerr;
        ks_status st = ks_backend_open_k4a(&r->backend, &kerr);
        if (st == KS_OK && ks_backend_device_count(r->backend) > 0)
            return KS_EXIT_OK;
        ks_backend_free(r->backend);
        r->backend = NULL;
        if (!strcmp(name, "k4a")) {
            if (st != KS_OK) {
                if (err)
                    *err = kerr;
            } else {
                ks_error_set(err, KS_ENOTFOUND, "no Azure Kinect attached; connect the devices or use --backend sim");
            }
            return KS_EXIT_FAIL;
        }
        snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note), "%s%s; using the simulator",
                 r->note[0] ? "; " : "", st == KS_OK ? "no Azure Kinect attached" : "libk4a not installed");
    }
    ks_sim_config sc;
    if (ks_sim_config_load(rig_path, &r->rig, &sc, err) != KS_OK)
        return KS_EXIT_USAGE;
    if (fast)
        sc.mode = KS_SIM_FAST;
    if (ks_backend_open_sim(&r->rig, &sc, &r->backend, err) != KS_OK)
        return KS_EXIT_FAIL;
    r->simulated = true;
    return KS_EXIT_OK;
}

void ks_cli_rigrun_close(ks_cli_rigrun *r)
{
    ks_backend_free(r->backend);
    r->backend = NULL;
}

void ks_cli_progress_line(FILE *out, ks_session *s)
{
    ks_session_progress p;
    ks_session_get_progress(s, &p);
    double secs = p.seconds > 1e-3 ? p.seconds : 1e-3;
    fprintf(out, "\r%6.1f s  %llu sets |", p.seconds, (unsigned long long)p.sets);
    for (int i = 0; i < p.device_count; i++)
        fprintf(out, " %s %.1f/s drop %llu%s |", ks_session_device_name(s, i), (double)p.frames[i] / secs,
                (unsigned long long)(p.queue_drops[i] + p.missing[i]), p.alive[i] ? "" : " GONE");
    fprintf(out, " worst skew %.0f us  ", p.worst_skew_us);
    fflush(out);
}

/* The handler only reads an atomic pointer and makes an atomic store: async-signal-safe. */
static _Atomic(ks_session *) sigint_session;
static struct sigaction sigint_old;
static bool sigint_installed;

static void on_sigint(int sig)
{
    (void)sig;
    ks_session *s = atomic_load(&sigint_session);
    if (s)
        ks_session_request_stop(s);
}

void ks_cli_stop_on_sigint(ks_session *s)
{
    atomic_store(&sigint_session, s);
    if (s && !sigint_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &sigint_old);
        sigint_installed = true;
    } else if (!s && sigint_installed) {
        sigaction(SIGINT, &sigint_old, NULL);
        sigint_installed = false;
    }
}
