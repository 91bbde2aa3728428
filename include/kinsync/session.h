/* kinsync/session.h: running a rig. A session opens every device of the rig on one backend, checks
 * firmware and sync jacks against the declared wiring, sets the same manual exposure and powerline
 * on every device once, starts the subordinates (confirming each is armed) and the master last,
 * waits for the first frames of every device (a timeout ends in a diagnosis), then runs one capture
 * thread per device into bounded queues and groups the frames into frame sets (kinsync/matcher.h)
 * while measuring the sync quality (kinsync/syncstats.h). It stops cleanly on request (Ctrl-C),
 * on a fault (a device gone) or when closed.
 *
 * Typical use:
 *   ks_session *s;
 *   ks_session_open(&rig, &plan, backend, NULL, &s, &err);   // opens, checks, sets exposure
 *   ks_session_start(s, &err);                               // start order, first frames
 *   ks_session_set set;
 *   while (ks_session_next(s, &set, 1000, &err) == KS_OK) { ...; ks_session_set_release(&set); }
 *   ks_session_stop(s); ks_syncstats *q = ks_session_stats(s); ... ks_session_close(s);
 * Threads: open/start/next/stop/close from one thread; ks_session_request_stop from anywhere
 * (also from a signal handler). A program may hand ks_session_next to a thread of its own once the
 * session is started, as long as that thread has returned before ks_session_stop/close.
 *
 * Across hosts (the multi-host agent, kinsync/net.h) the start is split in two, because the order
 * across hosts is the coordinator's: ks_session_arm starts this host's subordinates and their
 * capture threads; ks_session_start_master, on the coordinator's word once every host armed,
 * starts the master if it is here. Neither waits for first frames. */
#ifndef KINSYNC_SESSION_H
#define KINSYNC_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/matcher.h"
#include "kinsync/plan.h"
#include "kinsync/rig.h"
#include "kinsync/syncstats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_session_options {
    const char *host;              /* only the rig devices of this host; NULL: every device of the rig */
    int first_frame_timeout_ms;    /* 0: 5000 (backend time: virtual on the simulator) */
    int capture_timeout_ms;        /* one get_capture wait; 0: 100 */
    int queue_frames;              /* bounded queue per device between its thread and the matcher; 0: 8 */
    double tolerance_us;           /* matcher tolerance; 0: its default (period / 4) */
    bool wrong_order;              /* start the master FIRST and wait for its first frame (to show detection) */
    int reapply_exposure_every;    /* > 0: write the exposure every N frames in the capture loop (the mistake) */
    bool measure_invalid;          /* compute the invalid-pixel fraction of every depth image */
    bool allow_firmware_mismatch;  /* different firmware is a warning instead of an error */
    /* A full queue makes the capture thread wait for the consumer instead of dropping the oldest
     * frame. For backends in virtual time (the simulator's fast mode), where "too slow" does not
     * exist; real devices keep streaming, so there the default (drop and count) is right.
     * -1: auto (on for backends that declare KS_BACKEND_CAP_VIRTUAL_TIME: the simulator and
     * recordings), 0 off, 1 on. */
    int lossless;
    /* The streams the program's sinks read (KS_STREAM_*; 0: all), e.g. ks_fuse_sink_streams(). The
     * devices keep running their configuration (sync needs the master's colour), but backends that
     * can (recordings) skip producing the others: those come as header-only images (timestamps,
     * no data; kinsync/device.h), so frame sets form exactly as with every stream. measure_invalid
     * adds colour and depth. */
    unsigned streams;
    /* Called in the device's capture thread for every capture before it is queued (tests). */
    void (*on_capture)(int device, ks_capture *cap, void *user);
    void *user;
} ks_session_options;

void ks_session_options_init(ks_session_options *opt);

typedef struct ks_session ks_session;

/* A frame set handed out by ks_session_next: set.frames[d].user is the device's ks_capture (one
 * reference). device_index[d] is the rig index of session device d. */
typedef struct ks_session_set {
    ks_frame_set set;
    uint64_t host_ns[KS_MATCH_MAX_DEVICES];  /* host time of each frame (through the clock fit once
                                               it exists, else the frame's system timestamp) */
} ks_session_set;

/* Opens the devices (by serial), compares firmware, checks the jacks against the rig's cables
 * (KS_ESYNC before anything streams, naming both devices and the jack), and sets exposure and
 * powerline once. `plan` must come from ks_plan_make on the same rig (feasible or not: its device
 * configurations are used as they are). On failure nothing stays open. */
ks_status ks_session_open(const ks_rig *rig, const ks_plan *plan, ks_backend *backend, const ks_session_options *opt,
                          ks_session **out, ks_error *err);

/* Starts every subordinate and confirms it armed, then the master (unless wrong_order), starts the
 * capture threads and waits for the first frame of every device. KS_ETIMEOUT with a diagnosis
 * (which device, the likely causes in order: cable, jack, master colour off, trigger out of spec,
 * and what the backend said) when a device stays silent; everything is stopped then. */
ks_status ks_session_start(ks_session *s, ks_error *err);

/* The two halves of a start for a rig spread over hosts (the agent). ks_session_arm: every device
 * other than the master, in the plan's order, each subordinate confirmed armed; their capture
 * threads run from here on (frames come once a master anywhere pulses). ks_session_start_master:
 * the master and its capture thread (nothing when the master is on another host). Neither waits for
 * first frames (ks_session_get_progress shows them). On failure everything is stopped. After arm,
 * ks_session_next/stop/close work as after ks_session_start. */
ks_status ks_session_arm(ks_session *s, ks_error *err);
ks_status ks_session_start_master(ks_session *s, ks_error *err);

/* Next frame set. KS_OK: *out filled (release with ks_session_set_release); KS_ETIMEOUT: nothing
 * within timeout_ms (wall clock); KS_EEOF: stopped and drained, or every stream of a finite
 * backend (recordings, KS_BACKEND_CAP_FINITE) ended and was drained; KS_ENODEV: a device failed (the
 * message names it) -- the sets before it were delivered; call ks_session_stop. */
ks_status ks_session_next(ks_session *s, ks_session_set *out, int timeout_ms, ks_error *err);
void ks_session_set_release(ks_session_set *set);

/* Asks the session to stop; async-signal-safe and callable from any thread, so a program's own
 * SIGINT handler may call it (the library installs no signal handlers). ks_session_next then
 * drains and returns KS_EEOF. */
void ks_session_request_stop(ks_session *s);
/* Stops the threads and the cameras (subordinates... master in reverse start order). Idempotent. */
void ks_session_stop(ks_session *s);
void ks_session_close(ks_session *s);

/* Sync quality so far (ks_syncstats_finish applied); owned by the session. */
ks_syncstats *ks_session_stats(ks_session *s);

typedef struct ks_session_progress {
    int device_count;
    uint64_t sets;
    double seconds;                               /* wall time since start */
    uint64_t frames[KS_MATCH_MAX_DEVICES];
    uint64_t queue_drops[KS_MATCH_MAX_DEVICES];   /* dropped by the bounded queue (consumer too slow) */
    uint64_t missing[KS_MATCH_MAX_DEVICES];       /* sets without the device */
    double worst_skew_us;                         /* largest |skew| of the recent sets */
    bool alive[KS_MATCH_MAX_DEVICES];
    int silent_ms[KS_MATCH_MAX_DEVICES];          /* waited since the device's last frame (timed-out
                                                   * get_capture calls, backend time) */
    int max_queue_seen;                           /* high-water mark of any device queue */
    int matcher_held;                             /* frames inside the matcher */
    bool failed[KS_MATCH_MAX_DEVICES];            /* its capture ended by an error (not a stop, not the
                                                   * end of a recording); ks_session_device_reason says why */
} ks_session_progress;
void ks_session_get_progress(ks_session *s, ks_session_progress *p);

/* The last error or timeout message of session device d's get_capture ("" if none): for a
 * silent device the backend's reason (the simulator names an unplugged cable or stopped trigger). */
void ks_session_device_reason(ks_session *s, int d, char *buf, size_t n);

int ks_session_device_count(const ks_session *s);
int ks_session_rig_index(const ks_session *s, int d);     /* rig device index of session device d */
ks_device *ks_session_device(ks_session *s, int d);
const char *ks_session_device_name(const ks_session *s, int d);
int ks_session_reference(const ks_session *s);            /* session index of the master */
const ks_matcher_config *ks_session_matcher_config(const ks_session *s);

#ifdef __cplusplus
}
#endif
#endif
