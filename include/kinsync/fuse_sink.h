/* kinsync/fuse_sink.h: fusion as a sink of a session's frame sets.
 *
 * A session (kinsync/session.h) on any source -- devices, the simulator, recordings -- hands out
 * frame sets; the fuse sink turns each into one point cloud in the rig frame (kinsync/fuse.h):
 * every device's depth camera model from its own calibration JSON (ks_device_get_calibration_json),
 * its pose from rig-calibration.json, colour from the same capture as the depth. A capture's colour
 * is used only when its frame-set key agrees with the key of its depth (the matcher's conversion,
 * kinsync/matcher.h: timestamp convention, planned depth and subordinate delays removed), so colour
 * is never painted from another instant and the sink never computes a key of its own.
 *
 *   ks_fuse_sink *k;
 *   ks_fuse_sink_create(session, poses, npose, &fuse_options, &k, &err);
 *   while (ks_session_next(session, &set, ...) == KS_OK) {
 *       ks_fuse_sink_run(k, &set, &cloud, &stats, &info, &err); ... ks_session_set_release(&set);
 *   }
 *   ks_fuse_sink_destroy(k); */
#ifndef KINSYNC_FUSE_SINK_H
#define KINSYNC_FUSE_SINK_H

#include <stdint.h>

#include "kinsync/error.h"
#include "kinsync/fuse.h"
#include "kinsync/session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_fuse_sink ks_fuse_sink;

/* Reads every session device's calibration for its running mode and finds its pose by serial.
 * KS_EINVAL names a device without depth (or IR-only) or without a pose in `poses` (calibrate it,
 * or leave it out), or more devices than KS_FUSE_MAX_DEVICES. The session must stay open while the
 * sink is used; the sink keeps no reference to it after create. */
ks_status ks_fuse_sink_create(ks_session *s, const ks_rig_pose *poses, size_t npose, const ks_fuse_options *opt,
                              ks_fuse_sink **out, ks_error *err);
void ks_fuse_sink_destroy(ks_fuse_sink *k);

/* The streams (KS_STREAM_*) a fuse sink with these options reads: depth, and colour when
 * opt->color. A program ORs its sinks' streams into ks_session_options.streams, so recordings
 * decode nothing else (kinsync/session.h). */
unsigned ks_fuse_sink_streams(const ks_fuse_options *opt);

int ks_fuse_sink_device_count(const ks_fuse_sink *k);
/* Device d (session order): serial, calibration of its modes, depth_to_rig. */
const ks_fuse_device *ks_fuse_sink_device(const ks_fuse_sink *k, int d);
/* Session index of the device with this serial, or of index "N"; -1 if none. */
int ks_fuse_sink_find(const ks_fuse_sink *k, const char *serial_or_index);

typedef struct ks_fuse_set_info {
    int present;              /* devices whose depth went into the cloud */
    uint32_t depth_mask;      /* ... as a mask over session devices */
    uint32_t color_mask;      /* devices whose colour painted their points */
    uint32_t color_unpaired;  /* devices whose capture had colour of another instant (not used) */
} ks_fuse_set_info;

/* Fuses one frame set into *out (the cloud is reused between calls). Devices missing from the
 * set, or whose depth image does not have its mode's size, are left out (info says which).
 * KS_EINVAL when no device of the set has depth. */
ks_status ks_fuse_sink_run(ks_fuse_sink *k, const ks_session_set *set, ks_cloud *out, ks_fuse_stats *stats,
                           ks_fuse_set_info *info, ks_error *err);

/* Renders the last fused cloud into device d's depth view and fills the holes of its depth in
 * `set` from it: out gets width*height pixels of the depth mode; *filled the pixels filled.
 * KS_EINVAL when the device has no depth in the set. */
ks_status ks_fuse_sink_fill(ks_fuse_sink *k, const ks_session_set *set, const ks_cloud *cloud, int d, uint16_t *out,
                            size_t *filled, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
