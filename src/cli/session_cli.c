/* Shared by the commands that run a rig (cli/session_cli.h). */
#include "cli/session_cli.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/source.h"

int ks_cli_rigrun_open(const char *rig_path, const char *name, bool fast, ks_cli_rigrun *r, ks_error *err)
{
    const char *p[1] = {rig_path};
    return ks_cli_source_open(p, 1, name, fast, r, err);
}

int ks_cli_source_open(const char *const *paths, int count, const char *name, bool fast, ks_cli_rigrun *r,
                       ks_error *err)
{
    return ks_cli_source_open_cached(paths, count, name, fast, NULL, r, err);
}

int ks_cli_source_open_cached(const char *const *paths, int count, const char *name, bool fast,
                              const char *sim_cache_dir, ks_cli_rigrun *r, ks_error *err)
{
    memset(r, 0, sizeof *r);
    ks_source_options o;
    ks_source_options_init(&o);
    o.backend = name;
    o.fast = fast;
    o.sim_cache_dir = sim_cache_dir;
    ks_source src;
    if (ks_source_open(paths, count, &o, &src, err) != KS_OK)
        return src.bad_input ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    r->rig = src.rig;
    r->plan = src.plan;
    r->backend = src.backend;
    r->simulated = src.kind == KS_SOURCE_SIMULATOR;
    r->recordings = src.kind == KS_SOURCE_RECORDINGS;
    snprintf(r->note, sizeof r->note, "%s", src.note);
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
