/* kinsync/frameset.h: the frame-set directory, one format for every command that writes or reads
 * frame sets as files (`kinsync capture`, `kinsync align --export`, `kinsync calibrate DIR`;
 * docs/frameset-dir.md).
 *
 *   DIR/index.json                    the manifest (schema "kinsync.framesets/1"), written last
 *   DIR/NAME-calibration.json         each device's factory calibration (as the device or recording has it)
 *   DIR/000000/NAME-color.jpg         MJPG as the device sent it (.bgra / .nv12 / .yuy2: raw bytes)
 *   DIR/000000/NAME-depth.png         16-bit grey PNG, millimetres (0 = invalid)
 *   DIR/000000/NAME-ir.png            16-bit grey PNG
 *
 * The manifest names the devices (name, serial, sync mode, planned delays, modes), the timestamp
 * convention, the frame-set key (what the session's matcher computes: device time with the
 * convention and the planned subordinate and depth delays removed) and every set: its key, whether
 * it is complete, and per device the files with their device timestamps. Every file is written
 * through a temporary name; index.json last, so a directory with an index.json is complete.
 *
 * Threads: a writer or a reader is used from one thread at a time. */
#ifndef KINSYNC_FRAMESET_H
#define KINSYNC_FRAMESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/session.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_FRAMESET_SCHEMA "kinsync.framesets/1"

typedef struct ks_frameset_device {
    char name[64];                    /* file stem: letters, digits, '-', '_', '.' (others become '_') */
    char serial[64];
    ks_device_config config;          /* modes and sync settings the images were taken with */
    char *calibration_json;           /* factory calibration; NULL if unknown. Writer: borrowed;
                                         reader: owned by the ks_frameset_dir */
    size_t calibration_len;
    char recording[160];              /* the device's recording in DIR when the images are there
                                         instead (capture --mkv); "" otherwise */
} ks_frameset_device;

/* ---- writing ---- */

typedef struct ks_frameset_writer ks_frameset_writer;

/* Creates DIR (one level) and writes every device's calibration. KS_ESTATE when DIR already holds
 * an index.json (a finished frame-set directory is never overwritten). `written_by` names the
 * command ("capture", "align"). */
ks_status ks_frameset_writer_open(const char *dir, const ks_frameset_device *devices, int device_count,
                                  ks_ts_convention convention, const char *written_by, ks_frameset_writer **out,
                                  ks_error *err);
/* Writes device `device`'s images of frame set `set` (sets are numbered 0, 1, ... in time order;
 * they may be written in any order, device by device). `host_ns` 0 = unknown. */
ks_status ks_frameset_writer_add(ks_frameset_writer *w, long set, int device, const ks_capture *cap,
                                 uint64_t host_ns, ks_error *err);
/* The same without images: only the frame's timestamps go into the manifest (capture --mkv, whose
 * images are in the devices' recordings). The reader refuses such a directory's images, naming the
 * recordings. */
ks_status ks_frameset_writer_add_timestamps(ks_frameset_writer *w, long set, int device, const ks_capture *cap,
                                            uint64_t host_ns, ks_error *err);
/* Replaces a frame's host time (e.g. through a clock fit known only at the end). */
ks_status ks_frameset_writer_set_host_ns(ks_frameset_writer *w, long set, int device, uint64_t host_ns,
                                         ks_error *err);
/* The set's key (microseconds, master time base) and whether every device has a frame in it. */
ks_status ks_frameset_writer_set(ks_frameset_writer *w, long set, double key_us, bool complete, ks_error *err);
/* Writes index.json (with the members of `extra_json`, a JSON object or NULL, added at the top
 * level) and frees the writer. The directory then holds the sets 0 .. highest set given. On
 * failure (or w NULL) nothing is left claiming to be complete. */
ks_status ks_frameset_writer_close(ks_frameset_writer *w, const char *extra_json, ks_error *err);
/* Frees the writer without writing index.json. */
void ks_frameset_writer_abort(ks_frameset_writer *w);

/* ---- reading ---- */

typedef struct ks_frameset_dir ks_frameset_dir;

/* Reads and checks DIR/index.json: a missing, unreadable or foreign manifest is KS_ENOTFOUND /
 * KS_EPARSE with a message naming the file and what to do. Images are read by _load. */
ks_status ks_frameset_dir_open(const char *dir, ks_frameset_dir **out, ks_error *err);
void ks_frameset_dir_close(ks_frameset_dir *d);
int ks_frameset_dir_device_count(const ks_frameset_dir *d);
const ks_frameset_device *ks_frameset_dir_device(const ks_frameset_dir *d, int i);
ks_ts_convention ks_frameset_dir_convention(const ks_frameset_dir *d);
size_t ks_frameset_dir_set_count(const ks_frameset_dir *d);
/* Loads frame set `set` as a session would deliver it: out->set.frames[d].user is the ks_capture of
 * device d (present_mask, complete, key_us and the timestamps set); release it with
 * ks_session_set_release. */
ks_status ks_frameset_dir_load(const ks_frameset_dir *d, size_t set, ks_session_set *out, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
