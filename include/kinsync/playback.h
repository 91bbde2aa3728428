/* kinsync/playback.h: recordings as a rig of virtual devices.
 *
 * A set of Azure Kinect recordings (.mkv, one per device, from kinsync record or k4arecorder)
 * opens as a backend (kinsync/device.h) with one device per file, so the session, verify,
 * calibrate and fuse run on recordings exactly as on live or simulated devices:
 *   - serial and firmware from the K4A_DEVICE_SERIAL_NUMBER / K4A_*_FIRMWARE_VERSION tags (a file
 *     without a serial tag uses its file name without directory and extension);
 *   - the calibration JSON from the calibration.json attachment;
 *   - sync jacks derived from the recorded K4A_WIRED_SYNC_MODE: a master has Sync Out, a
 *     subordinate Sync In, and Sync Out too unless it is the last of the daisy chain that
 *     ks_playback_rig_build() derives (ordered by subordinate delay, then by file order);
 *   - start_cameras accepts the recorded configuration only (a stream may be left off); anything
 *     else fails with KS_EINVAL naming the file, the recorded value and the value asked for;
 *   - get_capture serves the recorded color/depth/IR with their device timestamps, grouped into
 *     captures like the SDK playback (ks_mkv_reader_next_capture: depth/IR belong to the color
 *     frame at their timestamp minus the recorded depth delay, within half a frame period), then
 *     KS_EEOF at the end;
 *   - the IMU serves the recorded samples from the start of the file, through a second reader
 *     (KS_EUNSUPPORTED when the file has no IMU track);
 *   - color controls are accepted and remembered but change nothing (the images are recorded).
 * Recordings keep no host timestamps: system_ts_ns is the device timestamp in ns. Nor per-frame
 * exposures: colour images carry the KINSYNC_COLOR_EXPOSURE_US tag (else the option), depth and IR
 * images the depth mode's exposure, so the session converts their timestamps as for live frames.
 * The end of a recording is KS_EEOF; the backend declares KS_BACKEND_CAP_FINITE, so the session
 * ends there without reporting a fault.
 *
 * Pacing: with KS_PLAYBACK_LOCKSTEP (default) no streaming device serves a capture more than a
 * window ahead of the others (progress is measured from each file's first timestamp), and a
 * subordinate serves nothing until the set's master device, if it is open, is streaming; so
 * consumers that read devices on separate threads see the devices advance together, as live; a
 * recording that has ended reports KS_EEOF only once no other device streams (KS_ETIMEOUT until
 * then), so the rig ends together.
 * KS_PLAYBACK_FREE serves as fast as asked; KS_PLAYBACK_REALTIME paces to the wall clock.
 *
 * Threading: the backend may be used from several threads, one device per thread (get_imu_sample
 * may come from another thread than get_capture). */
#ifndef KINSYNC_PLAYBACK_H
#define KINSYNC_PLAYBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/mkv.h"
#include "kinsync/rig.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_PLAYBACK_MAX_FILES KS_RIG_MAX_DEVICES

typedef enum ks_playback_pace {
    KS_PLAYBACK_LOCKSTEP = 0,
    KS_PLAYBACK_FREE,
    KS_PLAYBACK_REALTIME,
} ks_playback_pace;

typedef struct ks_playback_options {
    ks_playback_pace pace;
    uint32_t lockstep_window_us; /* how far a device may run ahead in LOCKSTEP; 0 = two frame periods */
    /* Colour exposure (us) given to the colour images of recordings without the
     * KINSYNC_COLOR_EXPOSURE_US tag (k4arecorder); 0 = unknown. A file's tag takes precedence. */
    int32_t color_exposure_us;
} ks_playback_options;

/* Defaults: LOCKSTEP, window two frame periods. */
void ks_playback_options_init(ks_playback_options *o);

/* True when the file starts with the EBML magic (a Matroska/WebM file); false for anything else,
 * including unreadable paths. Commands use it to tell `rig.yaml` from `FILE.mkv...`. */
bool ks_playback_is_recording(const char *path);

/* Opens `count` recordings (1..KS_PLAYBACK_MAX_FILES) as a backend with one device per file, in
 * the order given. Every file's header is read now: KS_ENOTFOUND/KS_EIO/KS_EPARSE name the file;
 * two files with the same serial fail with KS_EINVAL naming both. opts may be NULL (defaults).
 * On success *out owns the backend (free with ks_backend_free). */
ks_status ks_backend_open_playback(const char *const *paths, int count, const ks_playback_options *opts,
                                   ks_backend **out, ks_error *err);

/* The recording behind device `index` of a playback backend; NULL if b is not a playback backend
 * or index is out of range. Valid until the backend is freed. */
const char *ks_playback_path(ks_backend *b, int index);
/* Where the next start_cameras of every device begins: at the frame nearest `offset_us` after the
 * recordings' earliest first timestamp (K4A_START_OFFSET_NS; one instant for every recording,
 * found through the Cues); 0 is the beginning of each. Real-time pacing then runs from there. Streaming devices are not
 * moved: stop and start them (a session: close and open again). KS_EINVAL if b is not a playback
 * backend. */
ks_status ks_playback_seek(ks_backend *b, uint64_t offset_us, ks_error *err);
/* The earliest first device timestamp of the recordings (K4A_START_OFFSET_NS / 1000): the instant
 * ks_playback_seek offsets count from; 0 if b is not a playback backend. */
uint64_t ks_playback_first_ts_us(ks_backend *b);
/* The recorded configuration of file `index` as a device configuration (what start_cameras
 * accepts). KS_EINVAL if b is not a playback backend or index is out of range. */
ks_status ks_playback_recorded_config(ks_backend *b, int index, ks_device_config *cfg, ks_error *err);

/* Per-device result of ks_playback_rig_build, indexed like rig->devices. */
typedef struct ks_playback_device {
    char path[512];              /* the recording */
    ks_device_config config;     /* what it recorded: sync mode, subordinate and depth delay... */
    char role_tag[64];           /* KINSYNC_ROLE when present, else "" */
    char plan_digest[80];        /* KINSYNC_PLAN_DIGEST when present, else "" */
    uint64_t start_offset_us;    /* K4A_START_OFFSET_NS / 1000 */
} ks_playback_device;

/* Builds the rig a set of recordings came from: one device per file (serial as the playback
 * backend reports it, name = KINSYNC_ROLE or the serial), declared roles from K4A_WIRED_SYNC_MODE,
 * a daisy chain from the master through the subordinates ordered by subordinate delay (file order
 * breaks ties), the camera configuration from the tracks, the rig name from KINSYNC_RIG (else
 * "recordings"), the timestamp convention from KINSYNC_TIMESTAMPS and the manual exposure from
 * KINSYNC_COLOR_EXPOSURE_US (else the rig file defaults: seed, the default exposure), IMU on if
 * any file has it. The recorded delays are in devs[i].config (the rig
 * model has no place for them; pass them where a plan's delays are expected).
 * Fails with KS_EINVAL naming the file when the recordings cannot be one rig: more than one
 * master, duplicate serials, different fps / color / depth configuration, subordinates without
 * a master. ks_rig_validate() has been run on success; its findings are appended to `findings`
 * (may be NULL). devs (may be NULL) must hold `count` entries. */
ks_status ks_playback_rig_build(const char *const *paths, int count, ks_rig *rig, ks_playback_device *devs,
                                ks_findings *findings, ks_error *err);

/* The plan of a rig rebuilt from recordings, with the RECORDED delays: runs ks_plan_make() for
 * the structure (fps, guard, laser timing, start order), then replaces every device's
 * configuration and delays with devs[i].config (effective values, color offsets and laser starts
 * recomputed) and runs the independent pulse check on them; plan->feasible and plan->reason say
 * whether the recorded delays kept the lasers apart. Commands given recordings pass this plan
 * where they would pass a live rig's plan, so start_cameras gets exactly what was recorded.
 * KS_OK whether or not the recorded delays are feasible; KS_EINVAL for bad arguments. */
struct ks_plan;
ks_status ks_playback_plan(const ks_rig *rig, const ks_playback_device *devs, struct ks_plan *plan, ks_error *err);

/* One call for commands that take `rig.yaml | FILE.mkv...`: rebuilds the rig from the recordings
 * (ks_playback_rig_build), makes its plan with the recorded delays (ks_playback_plan) and opens
 * the playback backend (opts may be NULL). The caller then runs the session or its own loop on
 * (*rig, *plan, *backend) as for a live rig, and frees the backend with ks_backend_free. rig and
 * plan are caller-owned structs; findings may be NULL. Nothing is left open on failure. */
ks_status ks_playback_open_rig(const char *const *paths, int count, const ks_playback_options *opts, ks_rig *rig,
                               struct ks_plan *plan, ks_backend **backend, ks_findings *findings, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
