/* kinsync/mkv.h: recordings in the Azure Kinect Matroska format (what k4arecorder writes and the
 * SDK playback API, pyk4a, Open3D and ffmpeg read).
 *
 * Layout written (the same as the Azure Kinect recorder, element for element; see docs/mkv.md):
 *   EBML header (DocType matroska, version 2) | Segment: SeekHead + Void | Info + Void | Tracks
 *   (COLOR, DEPTH, IR: V_MS/VFW/FOURCC with a 40-byte BITMAPINFOHEADER, depth and IR "b16g"
 *   16-bit big-endian; IMU: S_K4A/IMU, 40-byte samples in laced BlockGroups) | Attachments
 *   (calibration.json) | Tags (every K4A_* tag, plus KINSYNC_* project tags) + Void | Clusters
 *   (<= 32 ms each, one SimpleBlock per frame) | Cues (at most one per second).
 * TimecodeScale is 1000 ns: block times are microseconds, block time = device timestamp -
 * K4A_START_OFFSET_NS / 1000, the offset being the smallest timestamp of the first cluster.
 *
 * Crash safety: the writer writes PATH.part and renames it to PATH on close. Until then the file
 * is a valid Matroska file with an unknown-size Segment whose tags already hold the start offset;
 * each cluster is written with one write() call. A file cut at any byte is readable up to its last
 * complete cluster, and ks_mkv_repair() makes it a complete file again.
 *
 * Threading: a writer or reader is used by one thread at a time. */
#ifndef KINSYNC_MKV_H
#define KINSYNC_MKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a recording holds: written as tracks and tags by the writer, rebuilt from them by the reader. */
typedef struct ks_mkv_desc {
    char serial[32];                  /* K4A_DEVICE_SERIAL_NUMBER ("" = tag omitted) */
    ks_version color_fw;              /* K4A_COLOR_FIRMWARE_VERSION "1.6.110" */
    ks_version depth_fw;              /* K4A_DEPTH_FIRMWARE_VERSION */
    bool has_firmware;                /* false: both firmware tags omitted */
    ks_image_format color_format;     /* MJPG, NV12, YUY2 or BGRA32 */
    ks_color_resolution color_resolution; /* KS_COLOR_OFF: no COLOR track */
    ks_depth_mode depth_mode;         /* OFF: no DEPTH/IR; PASSIVE_IR: IR track only */
    ks_fps fps;
    ks_wired_sync_mode sync_mode;     /* K4A_WIRED_SYNC_MODE */
    uint32_t subordinate_delay_us;    /* K4A_SUBORDINATE_DELAY_NS (SUBORDINATE only) */
    int32_t depth_delay_us;           /* K4A_DEPTH_DELAY_NS (written when color and depth are on) */
    const char *calibration_json;     /* raw device calibration; NULL = no attachment. Reader: owned by it */
    size_t calibration_len;
    bool imu;                         /* IMU track (K4A_IMU_MODE ON) */
    /* Project tags (global tags other readers ignore); "" = omitted. */
    char rig_name[64];                /* KINSYNC_RIG */
    char role[64];                    /* KINSYNC_ROLE, e.g. "master", "sub1" */
    char plan_digest[80];             /* KINSYNC_PLAN_DIGEST */
    int32_t color_exposure_us;        /* KINSYNC_COLOR_EXPOSURE_US: the manual exposure applied, 0 = omitted */
    char timestamps[16];              /* KINSYNC_TIMESTAMPS: the rig's convention (ks_ts_convention_name) */
} ks_mkv_desc;

/* Sets every field to "nothing recorded": color/depth off, 30 fps, standalone, no IMU. */
void ks_mkv_desc_init(ks_mkv_desc *d);

typedef enum ks_mkv_track_kind {
    KS_MKV_COLOR = 0,
    KS_MKV_DEPTH,
    KS_MKV_IR,
    KS_MKV_IMU,
    KS_MKV_OTHER,      /* a custom track (reader only) */
    KS_MKV_KIND_COUNT
} ks_mkv_track_kind;

const char *ks_mkv_track_kind_name(ks_mkv_track_kind k); /* "COLOR", "DEPTH", "IR", "IMU", "OTHER" */

/* ---- writer ---- */

typedef struct ks_mkv_writer_options {
    /* Data may arrive out of order (IMU before the capture of the same instant): a cluster is
     * written once the newest timestamp is this far past its end. Default (0) 100000 us. */
    uint32_t reorder_window_us;
    bool cluster_crc;        /* CRC-32 in each cluster like libmatroska (costs CPU); default off */
    uint64_t uid_seed;       /* 0: random track/attachment UIDs; else deterministic (tests) */
    int64_t date_utc_s;      /* Info DateUTC as Unix seconds; 0 = now */
    const char *writing_app; /* NULL = "kinsync-VERSION" */
    /* Default (false): every 16 MB the writer starts writeback and drops the previous 16 MB from
     * the page cache once it is on disk, so a long recording does not fill the cache with dirty
     * pages (cheaper, keeps the disk current). true: leave it all to the kernel. */
    bool keep_page_cache;
} ks_mkv_writer_options;

typedef struct ks_mkv_writer ks_mkv_writer;

/* Creates PATH.part and writes the header (SeekHead, Info, Tracks, Attachments, Tags). The
 * description is copied (including the calibration). opts may be NULL. KS_EINVAL names a bad
 * field (format not allowed for the resolution, fps not allowed for the depth mode...); KS_EIO
 * names the path. On success *out owns the open file. */
ks_status ks_mkv_writer_open(const char *path, const ks_mkv_desc *desc, const ks_mkv_writer_options *opts,
                             ks_mkv_writer **out, ks_error *err);

/* Adds one image to the COLOR, DEPTH or IR track at img->device_ts_us. The writer takes a
 * reference (the caller keeps its own); depth/IR are stored big-endian. KS_EINVAL for a track
 * the recording does not have or a wrong format/size; KS_ESTATE if the timestamp is older than
 * data already written (arrived later than the reorder window); KS_EIO on a write failure. */
ks_status ks_mkv_writer_add_image(ks_mkv_writer *w, ks_mkv_track_kind kind, ks_image *img, ks_error *err);
/* Adds every image of a capture (color, depth, ir; NULL ones skipped). */
ks_status ks_mkv_writer_add_capture(ks_mkv_writer *w, const ks_capture *cap, ks_error *err);
/* Adds one IMU sample at sample->acc_ts_us (stored as the 40-byte k4a sample). */
ks_status ks_mkv_writer_add_imu(ks_mkv_writer *w, const ks_imu_sample *sample, ks_error *err);

typedef struct ks_mkv_writer_stats {
    uint64_t frames[KS_MKV_KIND_COUNT];
    uint64_t clusters, cues, bytes;
    uint64_t start_offset_us;         /* valid once the first cluster is written */
    uint64_t first_ts_us, last_ts_us; /* device timestamps of all data added */
} ks_mkv_writer_stats;
void ks_mkv_writer_get_stats(const ks_mkv_writer *w, ks_mkv_writer_stats *st);

/* Writes pending clusters, Cues, the final SeekHead, Info duration and the Segment size, fsyncs
 * and renames PATH.part to PATH. Frees w in every case. On failure PATH.part is left for repair. */
ks_status ks_mkv_writer_close(ks_mkv_writer *w, ks_error *err);
/* Replaces the KINSYNC_TIMESTAMPS tag (e.g. "auto" by the convention measured while recording); the
 * tags are rewritten in their reserved space now if clusters were written, else with the first. */
ks_status ks_mkv_writer_set_timestamps(ks_mkv_writer *w, const char *name, ks_error *err);
/* Stops without finishing: closes and deletes PATH.part, frees w. */
void ks_mkv_writer_abort(ks_mkv_writer *w);

/* ---- reader ---- */

typedef struct ks_mkv_track {
    int number;
    uint64_t uid;
    ks_mkv_track_kind kind;          /* from the K4A_*_TRACK tags, else from the track name */
    int type;                        /* Matroska TrackType: 1 video, 0x11 subtitle */
    char name[32];
    char codec_id[32];
    char fourcc[5];                  /* V_MS/VFW/FOURCC tracks: compression from CodecPrivate */
    ks_image_format format;          /* KS_FORMAT_CUSTOM if unknown */
    int width, height;
    uint16_t bit_count;
    uint32_t size_image;             /* biSizeImage */
    uint64_t default_duration_ns;
    uint64_t blocks;                 /* frames counted by ks_mkv_reader_scan (0 before) */
    uint64_t first_ts_us, last_ts_us;/* device timestamps, set by ks_mkv_reader_scan */
    uint32_t codec_private_size;     /* bytes of CodecPrivate (40 for a BITMAPINFOHEADER) */
} ks_mkv_track;

typedef struct ks_mkv_tag {
    char *name, *value;
    char target_type[16];            /* "" (global), "TRACK", "ATTACHMENT" */
    uint64_t track_uid, attachment_uid;
} ks_mkv_tag;

typedef struct ks_mkv_attachment {
    char *name, *mime;
    uint64_t uid;
    uint8_t *data;
    size_t size;
} ks_mkv_attachment;

#define KS_MKV_MAX_TRACKS 16

typedef struct ks_mkv_info {
    ks_mkv_desc desc;                /* rebuilt from tracks and tags; calibration points into an attachment */
    uint64_t timecode_scale;         /* ns per tick (1000 in Azure Kinect files) */
    uint64_t start_offset_us;        /* K4A_START_OFFSET_NS / 1000 (0 if absent) */
    bool has_start_offset;
    double duration;                 /* Info Duration in ticks; 0 if absent */
    char writing_app[64], muxing_app[64], title[64];
    int track_count;
    ks_mkv_track tracks[KS_MKV_MAX_TRACKS];
    int tag_count;
    ks_mkv_tag *tags;
    int attachment_count;
    ks_mkv_attachment *attachments;
    int cue_count;                   /* Cue points found (0: seeks scan clusters) */
    bool segment_size_known;         /* false: unknown-size Segment (still being written or cut) */
    bool truncated;                  /* the file ends inside an element (known after a scan/EOF) */
    uint64_t file_size;
    uint64_t first_cluster_offset;   /* absolute byte offset */
    uint64_t end_of_data;            /* absolute offset after the last complete cluster (after a scan) */
    uint64_t clusters;               /* complete clusters (after a scan) */
    char doctype[16];                /* "matroska" */
    uint64_t doctype_version, doctype_read_version;
} ks_mkv_info;

typedef struct ks_mkv_reader ks_mkv_reader;

/* Opens a recording and reads everything but the clusters. KS_ENOTFOUND/KS_EIO name the path;
 * KS_EPARSE gives the byte offset and what is wrong ("at byte 1338: Tracks size 9999999 runs past
 * the end of the Segment"). On success *out owns the file. */
ks_status ks_mkv_reader_open(const char *path, ks_mkv_reader **out, ks_error *err);
void ks_mkv_reader_close(ks_mkv_reader *r);
const ks_mkv_info *ks_mkv_reader_info(const ks_mkv_reader *r);
/* Value of the first tag with that name, NULL if absent. */
const char *ks_mkv_reader_tag(const ks_mkv_reader *r, const char *name);
/* The track of a kind, NULL if the recording has none. */
const ks_mkv_track *ks_mkv_reader_track(const ks_mkv_reader *r, ks_mkv_track_kind kind);

/* The checks the Azure Kinect SDK playback (k4a_playback_open, v1.4) makes on open, applied to
 * an open reader: DocType matroska with DocTypeReadVersion <= 2 <= DocTypeVersion order, at least
 * one cluster, video COLOR/DEPTH/IR tracks with a 40-byte BITMAPINFOHEADER of a known FOURCC,
 * K4A_DEPTH_MODE present and known when a DEPTH or IR track exists, depth/IR sizes matching the
 * mode, equal DefaultDuration on every video track giving 5, 15 or 30 fps, integer delay and
 * offset tags, a known K4A_WIRED_SYNC_MODE. KS_OK when the SDK would open the file, else
 * KS_EPARSE naming the first failed check. */
ks_status ks_mkv_check_playback(const ks_mkv_reader *r, ks_error *err);

/* One item of the recording, in time order. */
typedef struct ks_mkv_item {
    ks_mkv_track_kind kind;
    int track_number;
    uint64_t device_ts_us;   /* block time + start offset (IMU: acc_ts_us of the sample) */
    int64_t block_time;      /* in timecode_scale ticks, relative to the start offset */
    ks_image *image;         /* COLOR/DEPTH/IR: one reference for the caller (release it); depth/IR
                                in host (little-endian) order, device_ts_us set. NULL for a kind
                                ks_mkv_reader_set_decode leaves out (raw NULL too, raw_size set) */
    ks_imu_sample imu;       /* IMU */
    const uint8_t *raw;      /* OTHER/IMU tracks: payload, valid until the next call */
    size_t raw_size;
    uint64_t file_offset;    /* of the block element */
} ks_mkv_item;

/* Next item. KS_EEOF after the last complete cluster (a truncated tail is not an error: see
 * info->truncated). KS_EPARSE with the byte offset for a corrupt cluster. */
ks_status ks_mkv_reader_next(ks_mkv_reader *r, ks_mkv_item *item, ks_error *err);
/* Which video tracks ks_mkv_reader_next makes into images: a mask of (1u << ks_mkv_track_kind),
 * KS_MKV_DECODE_ALL when opened. A COLOR/DEPTH/IR frame of a kind left out comes as an item with
 * image NULL, raw NULL and raw_size its stored size: its bytes are not even read from the file
 * (a cluster is read as its element headers and small blocks; each decoded frame is read straight
 * into its image). ks_mkv_reader_next_capture puts such a frame into its capture as a header-only
 * image -- format, width, height, device_ts_us, but data NULL and size 0 -- so captures group
 * exactly as with every track decoded. Applies from the next frame read. */
#define KS_MKV_DECODE_ALL ((1u << KS_MKV_COLOR) | (1u << KS_MKV_DEPTH) | (1u << KS_MKV_IR))
void ks_mkv_reader_set_decode(ks_mkv_reader *r, unsigned kinds);

/* What a reader did. Image buffers come from a small pool of the reader's: an image's buffer goes
 * back to it when the image's last reference is released (on any thread; images may outlive the
 * reader), and the next frame reuses it instead of allocating (and page-faulting) a new one. */
typedef struct ks_mkv_reader_stats {
    uint64_t decoded[KS_MKV_KIND_COUNT];  /* video frames made into images, per kind */
    uint64_t skipped[KS_MKV_KIND_COUNT];  /* video frames of kinds not decoded (set_decode) */
    uint64_t buffers_allocated;           /* image buffers malloc'd */
    uint64_t buffers_reused;              /* image buffers taken back from released images */
    uint64_t bytes_read;                  /* from the file, clusters only (headers, blocks, frames) */
} ks_mkv_reader_stats;
void ks_mkv_reader_get_stats(const ks_mkv_reader *r, ks_mkv_reader_stats *st);

/* Next capture, like k4a_playback_get_next_capture: the COLOR, DEPTH and IR frames of one
 * instant -- device timestamps within half a frame period of each other once the depth delay
 * (K4A_DEPTH_DELAY_NS: depth = color + delay) is taken out. A frame with no partner gives a capture
 * with the other images NULL. IMU samples and other tracks are skipped (open a second reader for
 * them). *out holds one reference (ks_capture_release). KS_EEOF at the end. */
ks_status ks_mkv_reader_next_capture(ks_mkv_reader *r, ks_capture **out, ks_error *err);
/* Positions the reader so that the next item is the first with device_ts_us >= ts_us. Uses the
 * Cues when present, otherwise scans cluster headers. */
ks_status ks_mkv_reader_seek(ks_mkv_reader *r, uint64_t ts_us, ks_error *err);
/* Walks every cluster without decoding images: fills per-track blocks/first/last, info->clusters,
 * end_of_data and truncated. Leaves the read position at the start. */
ks_status ks_mkv_reader_scan(ks_mkv_reader *r, ks_error *err);

/* ---- repair ---- */

typedef struct ks_mkv_repair_report {
    uint64_t in_size, out_size;
    uint64_t clusters_kept;
    uint64_t bytes_dropped;      /* incomplete tail removed */
    int cues_written;
    bool was_complete;           /* the input already had a known Segment size and Cues */
} ks_mkv_repair_report;

/* Rewrites a cut or unfinished recording as a complete file: header elements kept, every complete
 * cluster copied, a new SeekHead, Info duration, Cues and Segment size. Writes OUT via OUT.tmp +
 * rename; out may equal in (in-place repair). report may be NULL. */
ks_status ks_mkv_repair(const char *in, const char *out, ks_mkv_repair_report *report, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
