/* mkv/mkv_reader_internal.h: the reader's state, shared by mkv_read.c (header), mkv_cluster.c
 * (clusters, iteration, seeking) and mkv_repair.c. Internal. */
#ifndef KS_MKV_READER_INTERNAL_H
#define KS_MKV_READER_INTERNAL_H

#include <stdarg.h>

#include "kinsync/mkv.h"
#include "mkv/ebml.h"
#include "util/image_pool.h"

typedef struct ks_mkv_cue {
    uint64_t time;   /* ticks */
    uint64_t pos;    /* absolute offset of the cluster */
} ks_mkv_cue;

typedef struct ks_mkv_frame {
    size_t off, size;          /* in the cluster body (cbuf holds it when `loaded`) */
    bool loaded;               /* the bytes are in cbuf; else a video frame read on demand, straight
                                  into its image (or not at all for a kind not decoded) */
    int64_t time;              /* block time in ticks */
    uint64_t block_off;        /* absolute offset of the block element */
    int track;
    uint32_t seq;              /* file order, for a stable sort */
} ks_mkv_frame;

/* One cluster as found in the file. */
typedef struct ks_mkv_cluster_loc {
    uint64_t pos;              /* absolute offset of the Cluster element */
    uint64_t end;              /* absolute offset after it */
    int hlen;                  /* ID + size bytes */
    bool unknown_size;
    bool partial;              /* the file ends inside it: only its complete elements are read */
} ks_mkv_cluster_loc;

struct ks_mkv_reader {
    uint64_t loaded_end;       /* see ks_mkv_loaded_end */
    char *path;
    int fd;
    uint64_t file_size;
    ks_mkv_info info;
    int tag_cap;
    uint64_t seg_start, seg_data, seg_end;
    uint64_t pos_info, pos_tracks, pos_attach, pos_tags, pos_cues;
    /* the first element the SeekHead points at that the file does not hold there in full (a file cut
     * off after it was finished): the SDK's playback refuses such a file */
    const char *seek_broken;
    uint64_t seek_broken_pos;
    int8_t track_index[128];   /* track number -> index in info.tracks, -1 if none */
    ks_mkv_cue *cues;
    size_t ncues, capcues;
    ks_mkv_cue *cidx;          /* clusters seen so far (time, pos), in file order */
    size_t ncidx, capcidx;
    /* iteration */
    uint64_t next_cluster;
    ks_buf cbuf;               /* the cluster body; only the parts read (headers, small blocks) */
    uint64_t cbody_abs;        /* file offset of cbuf[0] */
    size_t cbuf_lo, cbuf_hi;   /* the range read last (load_cluster's window) */
    int64_t cluster_time;
    ks_mkv_frame *frames;
    size_t nframes, capframes, fi;
    bool has_min;
    uint64_t min_ts_us;
    bool has_held;             /* next_capture's one-item lookahead */
    ks_mkv_item held;
    /* decoding */
    unsigned decode_mask;      /* 1u << kind of the video tracks made into images (set_decode) */
    ks_image_pool *pool;       /* image buffers, created at the first decoded frame */
    ks_mkv_reader_stats stats; /* decoded/skipped; the buffer counts come from the pool */
};

/* Element header at off: 1 ok, 0 the file ends inside it, -1 invalid. */
int ks_mkv_read_header(ks_mkv_reader *r, uint64_t off, uint32_t *id, uint64_t *size, int *hlen);
ks_status ks_mkv_reader_open_header(ks_mkv_reader *r, ks_error *err);
/* Finds the cluster at or after off (skipping other top-level elements). KS_EEOF at the end of
 * data or when the file ends inside the cluster (info.truncated set); KS_EPARSE for garbage. */
ks_status ks_mkv_locate_cluster(ks_mkv_reader *r, uint64_t off, ks_mkv_cluster_loc *loc, ks_error *err);
/* Loads and parses the cluster at loc into r->frames (sorted by time). */
ks_status ks_mkv_load_cluster(ks_mkv_reader *r, const ks_mkv_cluster_loc *loc, ks_error *err);
/* After ks_mkv_load_cluster: the absolute offset after its last complete element (loc->end unless
 * the cluster is partial). */
uint64_t ks_mkv_loaded_end(const ks_mkv_reader *r);
/* KS_EPARSE "PATH: at byte OFF: MESSAGE; HINT" (the reader's one form of a parse error). */
ks_status ks_mkv_parse_error(const ks_mkv_reader *r, ks_error *err, uint64_t off, const char *hint, const char *fmt,
                             va_list ap) __attribute__((format(printf, 5, 0)));

#endif
