/* kinsync/source.h: opening a rig from whatever the user has -- a rig file (real devices through
 * libk4a when attached, else the rig's simulation) or a set of recordings (the playback backend).
 *
 * This is the first step of every command that takes `rig.yaml | FILE.mkv...`: it yields a rig, the
 * plan to run it with and a backend, and the caller runs a session (kinsync/session.h) on them and
 * attaches its sinks. Recordings come back as the rig they were made by, with the recorded delays,
 * timestamp convention and exposure (ks_playback_open_rig), so a sink never knows where its frames
 * came from.
 *
 *   ks_source src;
 *   ks_source_options o; ks_source_options_init(&o);
 *   if (ks_source_open(paths, n, &o, &src, &err) == KS_OK) {
 *       ks_session_open(&src.rig, &src.plan, src.backend, NULL, &s, &err); ...
 *       ks_source_close(&src);
 *   } */
#ifndef KINSYNC_SOURCE_H
#define KINSYNC_SOURCE_H

#include <stdbool.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/plan.h"
#include "kinsync/playback.h"
#include "kinsync/rig.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_source_kind { KS_SOURCE_DEVICES = 0, KS_SOURCE_SIMULATOR, KS_SOURCE_RECORDINGS } ks_source_kind;

typedef struct ks_source_options {
    const char *backend;          /* rig file: "auto" (default: devices if attached, else the simulator), "sim", "k4a" */
    bool fast;                    /* rig file on the simulator: virtual time, as fast as possible */
    ks_playback_options playback; /* recordings: pacing (default lockstep) and the exposure fallback */
    /* Recordings without the KINSYNC_TIMESTAMPS tag (k4arecorder): the convention they follow
     * ("seed", "mid-exposure"); NULL = the rig file default (seed). */
    const char *timestamps;
    /* rig file on the simulator: where its static views are cached between runs (ks_sim_config
     * view_cache_dir; NULL = none, the default) */
    const char *sim_cache_dir;
} ks_source_options;

void ks_source_options_init(ks_source_options *o);

typedef struct ks_source {
    ks_source_kind kind;
    ks_rig rig;
    ks_plan plan;
    ks_backend *backend;
    int path_count;               /* recordings given */
    char note[256];               /* what the user should know (plan not feasible, simulator used ...) */
    /* On failure: true when the input itself is unusable (unreadable or malformed file, unknown
     * backend name): a usage error for a command; false when it is well-formed but cannot run. */
    bool bad_input;
} ks_source;

/* True when the paths are recordings (every one starts with the Matroska magic). */
bool ks_source_is_recordings(const char *const *paths, int count);

/* Opens one rig file, or 1..KS_PLAYBACK_MAX_FILES recordings (one per device). A rig file is
 * loaded, validated (an invalid rig fails with KS_EINVAL naming the first error) and planned (an
 * infeasible plan runs with its best effort and says so in note); recordings are rebuilt into
 * their rig with ks_playback_open_rig. On failure nothing stays open. */
ks_status ks_source_open(const char *const *paths, int count, const ks_source_options *opt, ks_source *out,
                         ks_error *err);
void ks_source_close(ks_source *s);

#ifdef __cplusplus
}
#endif
#endif
