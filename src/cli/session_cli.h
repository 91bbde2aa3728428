/* cli/session_cli.h: what the commands that run a rig share: opening the source (a rig file on real
 * devices or the simulator, or recordings; kinsync/source.h), and the live progress line. */
#ifndef KS_CLI_SESSION_CLI_H
#define KS_CLI_SESSION_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "kinsync/plan.h"
#include "kinsync/rig.h"
#include "kinsync/session.h"

typedef struct ks_cli_rigrun {
    ks_rig rig;
    ks_plan plan;
    ks_backend *backend;
    bool simulated;
    bool recordings;     /* opened from recordings (playback backend) */
    char note[256];
} ks_cli_rigrun;

/* Loads and validates the rig (KS_EXIT_USAGE on unreadable/invalid YAML, KS_EXIT_FAIL when the rig
 * has errors), plans it, opens backend `name` ("auto", "sim", "k4a"; fast forces the simulator's
 * fast mode). Prints nothing; err says why. */
int ks_cli_rigrun_open(const char *rig_path, const char *name, bool fast, ks_cli_rigrun *r, ks_error *err);
/* The same for `rig.yaml | FILE.mkv...` (ks_source_open): recordings open as the rig that made
 * them; KS_EXIT_USAGE when the input is unusable, KS_EXIT_FAIL when it cannot run. */
int ks_cli_source_open(const char *const *paths, int count, const char *name, bool fast, ks_cli_rigrun *r,
                       ks_error *err);
/* The same, with the simulator's static views cached in sim_cache_dir (ks_source_options). */
int ks_cli_source_open_cached(const char *const *paths, int count, const char *name, bool fast,
                              const char *sim_cache_dir, ks_cli_rigrun *r, ks_error *err);
void ks_cli_rigrun_close(ks_cli_rigrun *r);

/* Ctrl-C asks session s to stop (ks_session_request_stop from a SIGINT handler); NULL restores the
 * previous handler. Call with NULL before closing the session. The library installs no signal
 * handlers: this is the command's business. */
void ks_cli_stop_on_sigint(ks_session *s);

/* kinsync fuse --interleaved over a started session and its fuse sink (cli/fuse_interleaved.c). */
struct ks_fuse_sink;
int ks_cli_fuse_interleaved(ks_session *s, struct ks_fuse_sink *k, const char *out_dir, long frames, bool json);

/* One progress line ("\r" when a terminal): sets/s per device, drops, worst skew. */
void ks_cli_progress_line(FILE *out, ks_session *s);

#endif
