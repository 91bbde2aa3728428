/* kinsync/record.h: the recording sink. One Azure Kinect .mkv per device of a rig, written through
 * the Matroska writer (kinsync/mkv.h) into one directory, named ROLE-SERIAL.mkv
 * (master-000100000001.mkv, sub1-000100000002.mkv, ...). Each file carries what the SDK tools
 * expect (K4A_* tags: sync mode, subordinate and depth delay, serial, firmware, calibration.json)
 * plus the project tags tying it to its rig and plan (KINSYNC_RIG, KINSYNC_ROLE,
 * KINSYNC_PLAN_DIGEST) that `kinsync align` reads.
 *
 * Every file is written as NAME.mkv.part and renamed when complete (ks_recorder_close), so a
 * directory never shows a half-written NAME.mkv; a .part left by a crash is readable up to its last
 * complete cluster and `kinsync repair` completes it.
 *
 * Threading: different devices may be fed from different threads at the same time; one device's
 * captures and IMU samples may come from two threads (a mutex per device). */
#ifndef KINSYNC_RECORD_H
#define KINSYNC_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/mkv.h"
#include "kinsync/rig.h"

struct ks_plan;

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_record_device {
    char serial[32];
    char role[64];                  /* file prefix and KINSYNC_ROLE: "master", "sub1", "standalone"... */
    ks_device_config config;        /* as started: sync mode and delays go to the K4A_* tags */
    ks_version color_fw, depth_fw;
    bool has_firmware;
    const char *calibration_json;   /* raw device calibration (copied); NULL = no attachment */
    size_t calibration_len;
    bool imu;                       /* an IMU track */
} ks_record_device;

typedef struct ks_recorder_options {
    char rig_name[64];              /* KINSYNC_RIG, "" = omitted */
    char plan_digest[80];           /* KINSYNC_PLAN_DIGEST, "" = omitted */
    int32_t color_exposure_us;      /* KINSYNC_COLOR_EXPOSURE_US (manual exposure applied), 0 = omitted */
    char timestamps[16];            /* KINSYNC_TIMESTAMPS (the rig's timestamp convention), "" = omitted; "auto":
                                       measured from the captures and written at close ("auto" if undecided) */
    ks_mkv_writer_options mkv;      /* passed to every writer (uid_seed is offset per device) */
    bool overwrite;                 /* replace existing files; otherwise an existing NAME.mkv is KS_EINVAL */
} ks_recorder_options;

typedef struct ks_recorder ks_recorder;

/* Role names for the devices of a validated rig, indexed like rig->devices: "master", subordinates
 * "sub1".."subN" in rig order, "standalone" (or "standalone1".. when there are several). */
void ks_record_role_names(const ks_rig *rig, char names[][64]);

/* File name for a device: "ROLE-SERIAL.mkv" (characters outside [A-Za-z0-9._-] become '_'). */
void ks_record_file_name(const char *role, const char *serial, char *buf, size_t n);

/* Creates `dir` if needed and opens one writer per device (DIR/ROLE-SERIAL.mkv.part). Fails with
 * KS_EINVAL naming the file when it exists (unless opts->overwrite), KS_EIO naming the directory,
 * or the writer's error naming the device; nothing is left behind on failure. opts may be NULL. */
ks_status ks_recorder_open(const char *dir, int count, const ks_record_device *devs, const ks_recorder_options *opts,
                           ks_recorder **out, ks_error *err);

/* Adds a capture (color, depth, IR) of device `device`. A capture older than what the file already
 * holds (a device clock reset) is not written and counted in stats.rejected; that is not an
 * error. KS_EIO on a write failure (the recording of that device is then failed). */
ks_status ks_recorder_add_capture(ks_recorder *r, int device, const ks_capture *cap, ks_error *err);
/* Adds an IMU sample of device `device`. Samples newer than the newest capture written are held
 * (up to about 5 s) and written once a capture at least as new is written, or at close: a device's
 * IMU runs ahead of its images, and the file must stay in time order. */
ks_status ks_recorder_add_imu(ks_recorder *r, int device, const ks_imu_sample *s, ks_error *err);

typedef struct ks_record_stats {
    uint64_t captures;              /* captures written */
    uint64_t images;                /* color + depth + IR images written */
    uint64_t imu_samples;
    uint64_t rejected;              /* captures/samples refused (out of order) */
    uint64_t lost;                  /* captures the device skipped: gaps of more than one frame period in
                                     * its color or depth/IR timestamps (the larger count) */
    uint64_t bytes;                 /* written so far */
    uint64_t first_ts_us, last_ts_us;
    bool failed;                    /* a write failed; the file is incomplete */
} ks_record_stats;

ks_status ks_recorder_stats(ks_recorder *r, int device, ks_record_stats *st, ks_error *err);
int ks_recorder_device_count(const ks_recorder *r);
/* Final path (DIR/ROLE-SERIAL.mkv) of a device; NULL if out of range. */
const char *ks_recorder_path(const ks_recorder *r, int device);

/* Finishes every file (Cues, sizes, fsync, rename .part -> .mkv) and frees r. Returns the first
 * error, after trying every file; a file that failed stays as .part for `kinsync repair`. */
ks_status ks_recorder_close(ks_recorder *r, ks_error *err);
/* Stops without finishing: deletes every .part, frees r. */
void ks_recorder_abort(ks_recorder *r);

/* ---- recording a rig ---- */

/* Per-device start configurations of a validated rig from its plan (kinsync/plan.h): plan may be
 * NULL, then ks_plan_make() is run with default options (an infeasible plan fails with KS_EINVAL
 * and the planner's reason). configs (rig->device_count entries) gets plan->devices[i].config with
 * the rig's synchronized_images_only. digest (>= 80 bytes, may be NULL) receives
 * ks_record_plan_digest() of the result. */
ks_status ks_record_configs_from_rig(const ks_rig *rig, const struct ks_plan *plan, ks_device_config *configs,
                                     char *digest, ks_error *err);

/* The plan digest written to KINSYNC_PLAN_DIGEST: "sha256:HEX" (71 characters) over a canonical
 * text of the rig name, camera configuration and every device's serial, role, sync mode and both
 * delays. Files recorded under the same plan carry the same digest; `kinsync align` uses it to
 * find files that do not belong. */
void ks_record_plan_digest(const ks_rig *rig, const ks_device_config *configs, char digest[80]);

/* The rig's project tags for a recorder: rig name (when ro->rig_name is empty), the manual color
 * exposure as the device applies it (table-rounded; 0 under auto exposure) and the timestamp
 * convention. `kinsync align` uses the last two to compare depth and color by their centres. */
void ks_record_rig_tags(const ks_rig *rig, ks_recorder_options *ro);

typedef struct ks_record_progress {
    int device_count;
    uint64_t captures[KS_RIG_MAX_DEVICES];
    uint64_t bytes[KS_RIG_MAX_DEVICES];
    uint64_t rejected[KS_RIG_MAX_DEVICES];
    double seconds[KS_RIG_MAX_DEVICES];   /* device time recorded (last - first timestamp) */
    bool running[KS_RIG_MAX_DEVICES];
} ks_record_progress;

#define KS_RECORD_STALL_MS 3000

typedef struct ks_record_run_options {
    double seconds;                /* stop after this much device time on every device; 0 = no limit */
    uint64_t frames;               /* stop after this many captures on every device; 0 = no limit */
    volatile int *stop;            /* set non-zero (e.g. from a SIGINT handler) to stop; may be NULL */
    int first_frame_timeout_ms;    /* a device with no frame after this long is an error; 0 = the session's (5000) */
    int get_capture_timeout_ms;    /* per get_capture call (lets the threads see a stop); 0 = the session's (100) */
    void (*progress)(const ks_record_progress *p, void *user); /* every progress_ms, may be NULL */
    void *progress_user;
    int progress_ms;               /* 0 = 500 */
    int stall_ms;                  /* a device that delivers no frame for this long (before reaching the
                                    * limits) ends the recording with KS_ENODEV naming it and the
                                    * backend's reason; 0 = KS_RECORD_STALL_MS */
    ks_recorder_options recorder;  /* rig name and plan digest (filled from the rig when "") */
} ks_record_run_options;

typedef struct ks_record_result {
    int device_count;
    char paths[KS_RIG_MAX_DEVICES][512];
    ks_record_stats stats[KS_RIG_MAX_DEVICES];
    ks_status device_status[KS_RIG_MAX_DEVICES]; /* KS_OK, or the error of the device that failed (KS_ENODEV) */
    bool interrupted;              /* stopped through opts.stop */
} ks_record_result;

/* Records a rig through the session (kinsync/session.h): ks_session_open opens every device of
 * `rig` on `backend` by serial, compares firmware, checks the jacks against the cables and sets
 * the exposure and powerline once; ks_session_start starts the subordinates, then the master, and
 * waits for every device's first frame (a silent device fails with the session's diagnosis).
 * Each device's capture thread writes every capture (and IMU sample, when rig->camera.imu) to its
 * file in `dir` through a ks_recorder, until every device reached the limits, *opts->stop is set,
 * a write fails or a device fails. Then the session is stopped and every file completed (.mkv,
 * none left as .part); a rig that never started leaves no files. configs: one per rig device (the
 * plan's, or a playback rig's recorded ones); they replace the plan's configurations in the
 * session. result may be NULL. Errors name the device. On the playback backend the end of a
 * recording ends the run normally. Fields of opts not used with the session:
 * get_capture_timeout_ms is the session's capture_timeout_ms, first_frame_timeout_ms its own. */
ks_status ks_record_run(ks_backend *backend, const ks_rig *rig, const ks_device_config *configs, const char *dir,
                        const ks_record_run_options *opts, ks_record_result *result, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
