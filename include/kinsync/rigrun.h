/* kinsync/rigrun.h: a rig running as one handle -- for programs and bindings (the Python package
 * calls these through ctypes) that want frame sets without holding the library's big structs.
 *
 * ks_rigrun_open opens a source (kinsync/source.h: a rig file on its devices or its simulation,
 * or a set of recordings), opens its session (kinsync/session.h) and starts it; ks_rigrun_next hands
 * out frame sets one by one; ks_rigrun_close stops and frees everything.
 *
 *   ks_rigrun *r;
 *   const char *paths[] = {"rig.yaml"};
 *   if (ks_rigrun_open(paths, 1, "sim", true, &r, &err) != KS_OK) ...;
 *   ks_session_set *set;
 *   while (ks_rigrun_next(r, 2000, &set, &err) == KS_OK) {
 *       ks_capture *c = ks_rigrun_set_capture(set, 0);   // NULL when device 0 is missing
 *       ...
 *       ks_rigrun_set_free(set);
 *   }                                                    // KS_EEOF: the recordings ended
 *   ks_rigrun_close(r);
 *
 * Ownership: the ks_rigrun owns its source, session and backend; a set from ks_rigrun_next is the
 * caller's until ks_rigrun_set_free (it holds one reference to each capture, which a caller may
 * ks_capture_ref to keep beyond the set). Strings returned live as long as the ks_rigrun.
 * Threads: one thread at a time per ks_rigrun (sets may be freed from any thread). */
#ifndef KINSYNC_RIGRUN_H
#define KINSYNC_RIGRUN_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/session.h"
#include "kinsync/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_rigrun ks_rigrun;

/* paths: one rig file, or 1..KS_PLAYBACK_MAX_FILES recordings. backend (rig file only): "auto" or
 * NULL (devices when attached, else the simulator), "sim", "k4a". fast: the simulator runs in
 * virtual time as fast as possible (no effect elsewhere). On failure nothing stays open and err
 * says why (the source's or the session's message). */
ks_status ks_rigrun_open(const char *const *paths, int count, const char *backend, bool fast, ks_rigrun **out,
                         ks_error *err);
/* Stops the session and frees the run (sets still held stay valid until freed). NULL is a no-op. */
void ks_rigrun_close(ks_rigrun *r);

/* "devices", "simulator" or "recordings". */
const char *ks_rigrun_kind(const ks_rigrun *r);
/* What the user should know about the source (infeasible plan, simulator used ...), "" if nothing. */
const char *ks_rigrun_note(const ks_rigrun *r);
int ks_rigrun_device_count(const ks_rigrun *r);                 /* devices of the session */
const char *ks_rigrun_device_serial(const ks_rigrun *r, int d); /* NULL when d is out of range */
const char *ks_rigrun_device_name(const ks_rigrun *r, int d);   /* the rig's name for it */
const char *ks_rigrun_device_role(const ks_rigrun *r, int d);   /* "master", "subordinate", "standalone" */
/* The source (rig, plan, backend) and the session, for calls this header does not wrap. */
const ks_source *ks_rigrun_source(const ks_rigrun *r);
ks_session *ks_rigrun_session(ks_rigrun *r);

/* The next frame set into *out (allocated; free with ks_rigrun_set_free). KS_EEOF when the
 * recordings ended, KS_ETIMEOUT when nothing came within timeout_ms, else the session's error. */
ks_status ks_rigrun_next(ks_rigrun *r, int timeout_ms, ks_session_set **out, ks_error *err);
void ks_rigrun_set_free(ks_session_set *set);                   /* NULL is a no-op */
uint64_t ks_rigrun_set_index(const ks_session_set *set);        /* 0, 1, 2 ... */
uint32_t ks_rigrun_set_present(const ks_session_set *set);      /* bit d: device d has a frame */
/* Device d's capture in the set (borrowed from the set), NULL when missing. */
ks_capture *ks_rigrun_set_capture(const ks_session_set *set, int d);
/* Device d's frame-set key in us (the matcher's, kinsync/matcher.h), NAN when missing. The spread
 * of the keys of a set is its skew. */
double ks_rigrun_set_key_us(const ks_session_set *set, int d);

/* A fuse sink (kinsync/fuse_sink.h) on the run's session with the poses of rig_calibration_json
 * (written by `kinsync calibrate`). opt may be NULL (defaults). Destroy with ks_fuse_sink_destroy
 * before closing the run. */
ks_status ks_rigrun_fuse_sink(ks_rigrun *r, const char *rig_calibration_json, const ks_fuse_options *opt,
                              ks_fuse_sink **out, ks_error *err);

/* Loads, validates and plans the rig file at path (as `kinsync plan --json`): *json is the plan
 * as JSON text (malloc'd; free with free()). An invalid rig still gives its JSON (feasible false,
 * the findings) and returns KS_OK; an unreadable or malformed file is the error. */
ks_status ks_plan_file_json(const char *path, char **json, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
