/* device/playback/playback_internal.h: what the playback backend knows about each recording,
 * shared by playback.c (the devices) and playback_rig.c (loading files, the rig). Internal. */
#ifndef KS_PLAYBACK_INTERNAL_H
#define KS_PLAYBACK_INTERNAL_H

#include "kinsync/playback.h"

typedef struct pb_file {
    char *path;
    char serial[32];            /* tag, else the file name without directory and extension */
    ks_mkv_desc desc;           /* calibration_json points at `calibration` */
    char *calibration;          /* owned copy, NULL if the file has none */
    size_t calibration_len;
    uint64_t first_ts_us;       /* K4A_START_OFFSET_NS / 1000 */
    ks_jack_state jacks;        /* derived from the sync mode and the chain order */
    int chain_pos;              /* 0 master, 1.. subordinates in chain order, -1 standalone */
} pb_file;

/* Reads the headers of `count` recordings into files[] (zeroed by the caller), checks serials are
 * unique, orders the chain and derives the jacks. On failure everything loaded is freed. */
ks_status ks_playback_files_load(const char *const *paths, int count, pb_file *files, ks_error *err);
void ks_playback_file_free(pb_file *f);
/* The recorded configuration as the device configuration that reproduces it. */
void ks_playback_config_from_desc(const ks_mkv_desc *desc, ks_device_config *cfg);

#endif
