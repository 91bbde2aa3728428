/* Clusters: finding them (known or unknown size, cut-off tails), parsing blocks and lacing,
 * iterating items in time order, seeking with Cues or by scanning cluster headers. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "mkv/ebml.h"
#include "mkv/mkv_internal.h"
#include "mkv/mkv_reader_internal.h"

#define MAX_CLUSTER ((uint64_t)1 << 30)

static ks_status cerr(ks_mkv_reader *r, ks_error *err, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ks_status cerr(ks_mkv_reader *r, ks_error *err, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ks_status st =
        ks_mkv_parse_error(r, err, off, "the data after the last good cluster can be dropped with 'kinsync repair'",
                           fmt, ap);
    va_end(ap);
    return st;
}

ks_status ks_mkv_locate_cluster(ks_mkv_reader *r, uint64_t off, ks_mkv_cluster_loc *loc, ks_error *err)
{
    for (;;) {
        uint32_t id;
        uint64_t size;
        int hl;
        if (off >= r->seg_end)
            return KS_EEOF;
        int k = ks_mkv_read_header(r, off, &id, &size, &hl);
        if (k == 0) {
            r->info.truncated = true;
            return KS_EEOF;
        }
        if (k < 0)
            return cerr(r, err, off, "invalid element header where a Cluster was expected");
        if (id == ID_CLUSTER && size == EBML_UNKNOWN_SIZE) {
            /* unknown size: the cluster ends at the next top-level element or the end of data */
            uint64_t p = off + (uint64_t)hl;
            while (p < r->seg_end) {
                uint32_t cid;
                uint64_t cs;
                int chl;
                int ck = ks_mkv_read_header(r, p, &cid, &cs, &chl);
                if (ck == 0) {
                    r->info.truncated = true;
                    break;
                }
                if (ck < 0)
                    return cerr(r, err, p, "invalid element inside an unknown-size Cluster");
                if (ebml_is_level1(cid) || cid == ID_EBML)
                    break;
                if (cs == EBML_UNKNOWN_SIZE)
                    return cerr(r, err, p, "element 0x%x of unknown size inside a Cluster", cid);
                if (cs > r->seg_end - p - (uint64_t)chl) {
                    r->info.truncated = true;
                    break;
                }
                p += (uint64_t)chl + cs;
                if (p - off > MAX_CLUSTER)
                    return cerr(r, err, off, "unknown-size Cluster longer than %llu bytes",
                                (unsigned long long)MAX_CLUSTER);
            }
            *loc = (ks_mkv_cluster_loc){off, p, hl, true, false};
            return KS_OK;
        }
        if (size == EBML_UNKNOWN_SIZE)
            return cerr(r, err, off, "top-level element 0x%x has an unknown size", id);
        if (size > r->seg_end - off - (uint64_t)hl) {
            r->info.truncated = true; /* the file ends inside this element */
            if (id != ID_CLUSTER)
                return KS_EEOF;
            /* a partly written last cluster: its complete blocks are still read (as the SDK does) */
            *loc = (ks_mkv_cluster_loc){off, r->seg_end, hl, false, true};
            return KS_OK;
        }
        if (id == ID_CLUSTER) {
            if (size > MAX_CLUSTER)
                return cerr(r, err, off, "Cluster of %llu bytes is larger than %llu", (unsigned long long)size,
                            (unsigned long long)MAX_CLUSTER);
            *loc = (ks_mkv_cluster_loc){off, off + (uint64_t)hl + size, hl, false, false};
            return KS_OK;
        }
        off += (uint64_t)hl + size; /* Cues, Tags, Void... between or after clusters */
    }
}

static bool add_frame(ks_mkv_reader *r, ks_mkv_frame f)
{
    if (r->nframes == r->capframes) {
        size_t cap = r->capframes ? r->capframes * 2 : 64;
        ks_mkv_frame *q = realloc(r->frames, cap * sizeof *q);
        if (!q)
            return false;
        r->frames = q;
        r->capframes = cap;
    }
    f.seq = (uint32_t)r->nframes;
    r->frames[r->nframes++] = f;
    return true;
}

/* Parses one Block/SimpleBlock body at buf[off, off+len); `loaded`: the whole body is in cbuf (else
 * only its head: track, time, flags). */
static ks_status parse_block(ks_mkv_reader *r, size_t off, size_t len, uint64_t block_abs, bool loaded,
                             ks_error *err)
{
    const uint8_t *p = r->cbuf.data + off;
    uint64_t track;
    int tl = ebml_read_size(p, len, &track);
    if (tl <= 0 || track == EBML_UNKNOWN_SIZE)
        return cerr(r, err, block_abs, "invalid track number in a block");
    if (len < (size_t)tl + 3)
        return cerr(r, err, block_abs, "block of %zu bytes is too short", len);
    int16_t rel = (int16_t)((uint16_t)p[tl] << 8 | p[tl + 1]);
    uint8_t flags = p[tl + 2];
    size_t pos = (size_t)tl + 3;
    int lacing = (flags >> 1) & 3;
    ks_mkv_frame f = {.time = rel, .block_off = block_abs, .track = track < 128 ? (int)track : -1, .loaded = true};
    if (!lacing) {
        f.loaded = loaded;
        f.off = off + pos;
        f.size = len - pos;
        return add_frame(r, f) ? KS_OK : ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
    }
    if (pos >= len)
        return cerr(r, err, block_abs, "laced block without a frame count");
    size_t count = (size_t)p[pos++] + 1;
    size_t sizes[256];
    size_t total = 0;
    if (lacing == 2) { /* fixed */
        size_t rest = len - pos;
        if (rest % count)
            return cerr(r, err, block_abs, "fixed-size lacing: %zu bytes do not divide into %zu frames", rest, count);
        for (size_t i = 0; i < count; i++)
            sizes[i] = rest / count;
    } else {
        int64_t prev = 0;
        for (size_t i = 0; i + 1 < count; i++) {
            if (lacing == 1) { /* Xiph */
                size_t s = 0;
                for (;;) {
                    if (pos >= len)
                        return cerr(r, err, block_abs, "Xiph lace sizes run past the block");
                    uint8_t b = p[pos++];
                    s += b;
                    if (b != 255)
                        break;
                }
                sizes[i] = s;
            } else { /* EBML */
                uint64_t v;
                int n = ebml_read_size(p + pos, len - pos, &v);
                if (n <= 0 || v == EBML_UNKNOWN_SIZE)
                    return cerr(r, err, block_abs, "invalid EBML lace size");
                pos += (size_t)n;
                int64_t s;
                if (i == 0)
                    s = (int64_t)v;
                else
                    s = prev + ((int64_t)v - (((int64_t)1 << (7 * n - 1)) - 1));
                if (s < 0 || (uint64_t)s > len)
                    return cerr(r, err, block_abs, "EBML lace size out of range");
                sizes[i] = (size_t)s;
                prev = s;
            }
            total += sizes[i];
            if (total > len)
                return cerr(r, err, block_abs, "lace sizes exceed the block");
        }
        if (total > len - pos)
            return cerr(r, err, block_abs, "lace sizes exceed the block");
        sizes[count - 1] = len - pos - total;
    }
    size_t at = off + pos;
    for (size_t i = 0; i < count; i++) {
        f.off = at;
        f.size = sizes[i];
        at += sizes[i];
        if (!add_frame(r, f))
            return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
    }
    return KS_OK;
}

static int cmp_frame(const void *a, const void *b)
{
    const ks_mkv_frame *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* pread of exactly n bytes (fewer only at the end of the file); -1 on an error. */
static ssize_t pread_full(int fd, uint8_t *dst, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, dst + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

#define CLUSTER_WINDOW 4096

/* Makes cbuf[pos, pos + len) hold the cluster's bytes (len clipped to the cluster), reading a
 * window of at least CLUSTER_WINDOW bytes from pos. Returns how many bytes from pos are held (less
 * than len only when the file ends first), or -1 on a read error. */
static ssize_t cluster_fill(ks_mkv_reader *r, size_t n, size_t pos, size_t len)
{
    if (len > n - pos)
        len = n - pos;
    if (pos >= r->cbuf_lo && pos + len <= r->cbuf_hi)
        return (ssize_t)(r->cbuf_hi - pos);
    size_t start = pos >= r->cbuf_lo && pos < r->cbuf_hi ? r->cbuf_hi : pos; /* keep what is held */
    size_t want = pos + len - start;
    if (want < CLUSTER_WINDOW)
        want = CLUSTER_WINDOW;
    if (want > n - start)
        want = n - start;
    ssize_t k = pread_full(r->fd, r->cbuf.data + start, want, r->cbody_abs + start);
    if (k < 0)
        return -1;
    r->stats.bytes_read += (uint64_t)k;
    if (start == pos)
        r->cbuf_lo = pos;
    r->cbuf_hi = start + (size_t)k;
    return (ssize_t)(r->cbuf_hi - pos);
}

/* A video frame the reader reads on demand (into its image, or not at all): a SimpleBlock without
 * lacing on a COLOR/DEPTH/IR video track. head holds avail bytes of the block body. */
static bool lazy_block(const ks_mkv_reader *r, const uint8_t *head, size_t avail)
{
    uint64_t track;
    int tl = ebml_read_size(head, avail, &track);
    if (tl <= 0 || track >= 128 || avail < (size_t)tl + 3 || ((head[tl + 2] >> 1) & 3))
        return false;
    int idx = r->track_index[track];
    return idx >= 0 && r->info.tracks[idx].kind <= KS_MKV_IR && r->info.tracks[idx].type == 1;
}

/* Loads the cluster's structure: element headers, the Timecode, IMU and other small blocks. The
 * bodies of COLOR/DEPTH/IR frames are not read here: make_item reads a frame straight into its
 * image when it is decoded, and never when its kind is not (ks_mkv_reader_set_decode), so a
 * cluster costs no copy of the frames nobody reads and one copy of those read. */
ks_status ks_mkv_load_cluster(ks_mkv_reader *r, const ks_mkv_cluster_loc *loc, ks_error *err)
{
    r->nframes = 0;
    r->fi = 0;
    uint64_t body_abs = loc->pos + (uint64_t)loc->hlen;
    size_t n = (size_t)(loc->end - body_abs);
    ks_buf *b = &r->cbuf;
    b->len = 0;
    if (!ks_buf_reserve(b, n)) {
        b->oom = false;
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory for a %zu-byte cluster", r->path, n);
    }
    b->len = n;
    r->cbody_abs = body_abs;
    r->cbuf_lo = r->cbuf_hi = 0;
    r->cluster_time = 0;
    size_t pos = 0;
    while (pos < n) {
        uint32_t id;
        uint64_t size;
        uint64_t at = body_abs + pos;
        ssize_t av = cluster_fill(r, n, pos, 12);
        if (av < 0)
            return ks_error_set(err, KS_EIO, "%s: read failed at byte %llu", r->path, (unsigned long long)at);
        if ((size_t)av < (n - pos < 12 ? n - pos : 12))
            return ks_error_set(err, KS_EIO, "%s: the file ended at byte %llu while reading a Cluster (did it shrink?)",
                                r->path, (unsigned long long)(at + (uint64_t)av));
        size_t avail = (size_t)av;
        int il = ebml_read_id(b->data + pos, avail, &id);
        if (il < 0 && loc->partial)
            break; /* the file ends inside this element's header */
        if (il <= 0)
            return cerr(r, err, at, "invalid element ID inside a Cluster");
        int sl = ebml_read_size(b->data + pos + il, avail - (size_t)il, &size);
        if (sl < 0 && loc->partial)
            break;
        if (sl <= 0)
            return cerr(r, err, at, "invalid element size inside a Cluster");
        size_t h = (size_t)(il + sl);
        if (size != EBML_UNKNOWN_SIZE && size > n - pos - h && loc->partial)
            break; /* the file ends inside this element: the blocks before it are complete */
        if (size == EBML_UNKNOWN_SIZE || size > n - pos - h)
            return cerr(r, err, at, "element 0x%x size runs past the end of its Cluster", id);
        size_t body = pos + h;
        bool lazy = false;
        if (id == ID_TIMECODE || id == ID_SIMPLEBLOCK || id == ID_BLOCKGROUP) {
            ssize_t k = cluster_fill(r, n, body, id == ID_SIMPLEBLOCK ? 16 : (size_t)size);
            if (k < 0 || (size_t)k < (size < 16 || id != ID_SIMPLEBLOCK ? (size_t)size : 16))
                return ks_error_set(err, KS_EIO, "%s: read failed at byte %llu", r->path,
                                    (unsigned long long)(body_abs + body));
            if (id == ID_SIMPLEBLOCK) {
                lazy = lazy_block(r, b->data + body, (size_t)size < (size_t)k ? (size_t)size : (size_t)k);
                if (!lazy && cluster_fill(r, n, body, (size_t)size) < (ssize_t)size)
                    return ks_error_set(err, KS_EIO, "%s: read failed at byte %llu", r->path,
                                        (unsigned long long)(body_abs + body));
            }
        }
        if (id == ID_TIMECODE) {
            uint64_t t;
            if (!ebml_read_uint(b->data + body, size, &t) || t > ((uint64_t)1 << 62))
                return cerr(r, err, at, "invalid Cluster Timecode");
            r->cluster_time = (int64_t)t;
        } else if (id == ID_SIMPLEBLOCK) {
            ks_status st = parse_block(r, body, (size_t)size, at, !lazy, err);
            if (st)
                return st;
        } else if (id == ID_BLOCKGROUP) {
            size_t gp = body, gend = body + (size_t)size;
            while (gp < gend) {
                uint32_t gid;
                uint64_t gs;
                int gil = ebml_read_id(b->data + gp, gend - gp, &gid);
                if (gil <= 0)
                    return cerr(r, err, body_abs + gp, "invalid element ID inside a BlockGroup");
                int gsl = ebml_read_size(b->data + gp + gil, gend - gp - (size_t)gil, &gs);
                if (gsl <= 0 || gs == EBML_UNKNOWN_SIZE || gs > gend - gp - (size_t)(gil + gsl))
                    return cerr(r, err, body_abs + gp, "element size runs past the end of its BlockGroup");
                if (gid == ID_BLOCK) {
                    ks_status st = parse_block(r, gp + (size_t)(gil + gsl), (size_t)gs, body_abs + gp, true, err);
                    if (st)
                        return st;
                }
                gp += (size_t)(gil + gsl) + (size_t)gs;
            }
        }
        pos = body + (size_t)size;
    }
    r->loaded_end = body_abs + pos;
    for (size_t i = 0; i < r->nframes; i++)
        r->frames[i].time += r->cluster_time;
    if (r->nframes > 1)
        qsort(r->frames, r->nframes, sizeof *r->frames, cmp_frame);
    /* remember where clusters are, for seeking without Cues */
    if (!r->ncidx || loc->pos > r->cidx[r->ncidx - 1].pos) {
        if (r->ncidx == r->capcidx) {
            size_t cap = r->capcidx ? r->capcidx * 2 : 256;
            ks_mkv_cue *q = realloc(r->cidx, cap * sizeof *q);
            if (q) {
                r->cidx = q;
                r->capcidx = cap;
            }
        }
        if (r->ncidx < r->capcidx)
            r->cidx[r->ncidx++] = (ks_mkv_cue){(uint64_t)r->cluster_time, loc->pos};
    }
    return KS_OK;
}

uint64_t ks_mkv_loaded_end(const ks_mkv_reader *r)
{
    return r->loaded_end;
}

static uint64_t frame_ts_us(const ks_mkv_reader *r, int64_t time)
{
    /* ticks -> us, saturating; negative times clamp to the start offset minus what fits */
    __int128 ns = (__int128)time * (__int128)r->info.timecode_scale;
    __int128 us = ns / 1000 + (__int128)r->info.start_offset_us;
    if (us < 0)
        return 0;
    if (us > (__int128)UINT64_MAX)
        return UINT64_MAX;
    return (uint64_t)us;
}

/* Fills item from frame f; returns false when the frame belongs to no known track. */
static ks_status make_item(ks_mkv_reader *r, const ks_mkv_frame *f, ks_mkv_item *it, bool decode, ks_error *err)
{
    memset(it, 0, sizeof *it);
    int idx = f->track >= 0 ? r->track_index[f->track] : -1;
    it->track_number = f->track;
    it->block_time = f->time;
    it->file_offset = f->block_off;
    it->device_ts_us = frame_ts_us(r, f->time);
    const uint8_t *data = f->loaded ? r->cbuf.data + f->off : NULL; /* NULL: not read (yet) */
    if (idx < 0) {
        it->kind = KS_MKV_OTHER;
        it->raw = data;
        it->raw_size = f->size;
        return KS_OK;
    }
    const ks_mkv_track *t = &r->info.tracks[idx];
    it->kind = t->kind;
    if (t->kind == KS_MKV_IMU && f->size == KS_MKV_IMU_SAMPLE_SIZE) {
        ks_mkv_imu_decode(data, &it->imu);
        it->device_ts_us = it->imu.acc_ts_us;
        return KS_OK;
    }
    if (t->kind > KS_MKV_IR || t->type != 1) {
        it->kind = t->kind == KS_MKV_IMU ? KS_MKV_IMU : KS_MKV_OTHER;
        it->raw = data;
        it->raw_size = f->size;
        return KS_OK;
    }
    if (!decode) {
        it->raw = data;
        it->raw_size = f->size;
        return KS_OK;
    }
    size_t w = (size_t)t->width, h = (size_t)t->height;
    int stride = 0;
    switch (t->format) {
    case KS_FORMAT_DEPTH16: case KS_FORMAT_IR16: if (f->size == w * h * 2) stride = (int)(w * 2); break;
    case KS_FORMAT_NV12: if (f->size == w * h * 3 / 2) stride = (int)w; break;
    case KS_FORMAT_YUY2: if (f->size == w * h * 2) stride = (int)(w * 2); break;
    case KS_FORMAT_BGRA32: if (f->size == w * h * 4) stride = (int)(w * 4); break;
    default: break;
    }
    if (!(r->decode_mask & (1u << t->kind))) {
        /* a track nobody reads: not read, copied or converted */
        r->stats.skipped[t->kind]++;
        it->raw = data;
        it->raw_size = f->size;
        return KS_OK;
    }
    if (!r->pool && !(r->pool = ks_image_pool_create(0, 0)))
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
    ks_image *img = ks_image_pool_get(r->pool, t->format, t->width, t->height, stride, f->size);
    if (!img)
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory for a %zu-byte image", r->path, f->size);
    const bool swap = t->format == KS_FORMAT_DEPTH16 || t->format == KS_FORMAT_IR16;
    if (!data) { /* straight from the file into the image, swapped there */
        ssize_t k = pread_full(r->fd, img->data, f->size, r->cbody_abs + f->off);
        if (k > 0)
            r->stats.bytes_read += (uint64_t)k;
        if (k != (ssize_t)f->size) {
            ks_image_release(img);
            return ks_error_set(err, KS_EIO, "%s: read failed at byte %llu%s", r->path,
                                (unsigned long long)(r->cbody_abs + f->off), k >= 0 ? " (the file is shorter now)" : "");
        }
        if (swap)
            ks_mkv_swap16(img->data, img->data, f->size);
    } else if (swap) {
        ks_mkv_swap16(img->data, data, f->size);
    } else if (f->size) {
        memcpy(img->data, data, f->size);
    }
    img->device_ts_us = it->device_ts_us;
    it->image = img;
    r->stats.decoded[t->kind]++;
    return KS_OK;
}

void ks_mkv_reader_set_decode(ks_mkv_reader *r, unsigned kinds)
{
    r->decode_mask = kinds;
}

void ks_mkv_reader_get_stats(const ks_mkv_reader *r, ks_mkv_reader_stats *st)
{
    *st = r->stats;
    if (r->pool) {
        ks_image_pool_stats ps;
        ks_image_pool_get_stats(r->pool, &ps);
        st->buffers_allocated = ps.allocated;
        st->buffers_reused = ps.reused;
    }
}

/* A frame of a track not decoded, as the capture's image of its kind: what it says about time and
 * size, no pixels (data NULL, size 0). */
static ks_image *header_only_image(const ks_mkv_reader *r, const ks_mkv_item *it)
{
    int idx = it->track_number >= 0 && it->track_number < 128 ? r->track_index[it->track_number] : -1;
    const ks_mkv_track *t = idx >= 0 ? &r->info.tracks[idx] : NULL;
    ks_image *img = t ? ks_image_wrap(t->format, t->width, t->height, 0, NULL, 0, NULL, NULL) : NULL;
    if (img)
        img->device_ts_us = it->device_ts_us;
    return img;
}

static void drop_held(ks_mkv_reader *r)
{
    if (r->has_held)
        ks_image_release(r->held.image);
    r->has_held = false;
}

ks_status ks_mkv_reader_next(ks_mkv_reader *r, ks_mkv_item *item, ks_error *err)
{
    if (r->has_held) {
        *item = r->held;
        r->has_held = false;
        return KS_OK;
    }
    for (;;) {
        while (r->fi < r->nframes) {
            const ks_mkv_frame *f = &r->frames[r->fi++];
            if (r->has_min) {
                /* cheap pre-check: skip without decoding */
                ks_mkv_item probe;
                ks_status st = make_item(r, f, &probe, false, err);
                if (st)
                    return st;
                if (probe.device_ts_us < r->min_ts_us)
                    continue;
                r->has_min = false;
            }
            return make_item(r, f, item, true, err);
        }
        ks_mkv_cluster_loc loc;
        ks_status st = ks_mkv_locate_cluster(r, r->next_cluster, &loc, err);
        if (st == KS_EEOF) {
            r->next_cluster = r->seg_end;
            return ks_error_set(err, KS_EEOF, "%s: end of recording", r->path);
        }
        if (st)
            return st;
        r->next_cluster = loc.end;
        st = ks_mkv_load_cluster(r, &loc, err);
        if (st)
            return st;
    }
}

/* Reads a cluster's Timecode without loading it. */
static bool cluster_time_at(ks_mkv_reader *r, const ks_mkv_cluster_loc *loc, uint64_t *t)
{
    uint8_t buf[64];
    uint64_t body = loc->pos + (uint64_t)loc->hlen;
    size_t n = (size_t)((loc->end - body) < sizeof buf ? (loc->end - body) : sizeof buf);
    if (pread(r->fd, buf, n, (off_t)body) != (ssize_t)n)
        return false;
    size_t pos = 0;
    while (pos < n) {
        uint32_t id;
        uint64_t size;
        int il = ebml_read_id(buf + pos, n - pos, &id);
        if (il <= 0)
            return false;
        int sl = ebml_read_size(buf + pos + il, n - pos - (size_t)il, &size);
        if (sl <= 0 || size == EBML_UNKNOWN_SIZE || size > n - pos - (size_t)(il + sl))
            return false;
        if (id == ID_TIMECODE)
            return ebml_read_uint(buf + pos + il + sl, size, t);
        pos += (size_t)(il + sl) + (size_t)size;
    }
    return false;
}

static ks_status next_capture(ks_mkv_reader *r, ks_capture **out, ks_error *err);

/* After a seek, whole captures: one whose images are all older than the seek time is skipped; one
 * with any image at or after it is returned with all its images (as the SDK's playback does).
 * Skipping single items (ks_mkv_reader_next after a seek) could split a capture whose color and
 * depth timestamps straddle the seek time. */
ks_status ks_mkv_reader_next_capture(ks_mkv_reader *r, ks_capture **out, ks_error *err)
{
    if (!r->has_min)
        return next_capture(r, out, err);
    uint64_t min = r->min_ts_us;
    r->has_min = false;
    for (;;) {
        ks_status st = next_capture(r, out, err);
        if (st)
            return st;
        ks_capture *c = *out;
        uint64_t newest = 0;
        const ks_image *imgs[3] = {c->color, c->depth, c->ir};
        for (int k = 0; k < 3; k++)
            if (imgs[k] && imgs[k]->device_ts_us > newest)
                newest = imgs[k]->device_ts_us;
        if (newest >= min)
            return KS_OK;
        ks_capture_release(c);
        *out = NULL;
    }
}

static ks_status next_capture(ks_mkv_reader *r, ks_capture **out, ks_error *err)
{
    *out = NULL;
    const ks_mkv_track *any = ks_mkv_reader_track(r, KS_MKV_COLOR);
    if (!any) any = ks_mkv_reader_track(r, KS_MKV_DEPTH);
    if (!any) any = ks_mkv_reader_track(r, KS_MKV_IR);
    int64_t half = any && any->default_duration_ns ? (int64_t)(any->default_duration_ns / 2000) : 16666;
    int64_t delay = r->info.desc.depth_delay_us;
    ks_capture *c = NULL;
    int64_t base = 0; /* color-equivalent time of the capture */
    for (;;) {
        ks_mkv_item it;
        ks_status st = ks_mkv_reader_next(r, &it, err);
        if (st == KS_EEOF && c)
            break;
        if (st) {
            if (c)
                ks_capture_release(c);
            return st;
        }
        if (it.kind <= KS_MKV_IR && !it.image && !(r->decode_mask & (1u << it.kind))) {
            it.image = header_only_image(r, &it);
            if (!it.image) {
                if (c)
                    ks_capture_release(c);
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
            }
            it.raw = NULL;
            it.raw_size = 0;
        }
        if (!it.image || it.kind > KS_MKV_IR) {
            ks_image_release(it.image);
            continue;
        }
        int64_t t = (int64_t)it.device_ts_us - (it.kind == KS_MKV_COLOR ? 0 : delay);
        ks_image **slot = NULL;
        if (c)
            slot = it.kind == KS_MKV_COLOR ? &c->color : it.kind == KS_MKV_DEPTH ? &c->depth : &c->ir;
        if (c && (*slot || t - base > half || base - t > half)) {
            r->held = it; /* belongs to the next capture */
            r->has_held = true;
            break;
        }
        if (!c) {
            c = ks_capture_create();
            if (!c) {
                ks_image_release(it.image);
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
            }
            c->temperature_c = NAN; /* not recorded: the SDK's playback gives NaN too */
            base = t;
            slot = it.kind == KS_MKV_COLOR ? &c->color : it.kind == KS_MKV_DEPTH ? &c->depth : &c->ir;
        }
        *slot = it.image;
    }
    *out = c;
    return KS_OK;
}

ks_status ks_mkv_reader_seek(ks_mkv_reader *r, uint64_t ts_us, ks_error *err)
{
    drop_held(r);
    if (!r->info.first_cluster_offset)
        return ks_error_set(err, KS_EEOF, "%s: the recording has no clusters", r->path);
    uint64_t bt_us = ts_us > r->info.start_offset_us ? ts_us - r->info.start_offset_us : 0;
    uint64_t target = (uint64_t)((__int128)bt_us * 1000 / r->info.timecode_scale);
    uint64_t pos = r->info.first_cluster_offset;
    bool found = false;
    if (r->ncues) {
        size_t lo = 0, hi = r->ncues;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (r->cues[mid].time <= target)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* the cue time is a block inside the cluster: the one before may still hold earlier-track data */
        if (lo > 0) {
            uint32_t id;
            uint64_t size;
            int hl;
            uint64_t p = r->cues[lo - 1].pos;
            if (p >= r->info.first_cluster_offset && ks_mkv_read_header(r, p, &id, &size, &hl) == 1 &&
                id == ID_CLUSTER) {
                pos = p;
                found = true;
            }
        } else {
            found = true; /* before the first cue: start at the first cluster */
        }
    }
    if (!found) {
        /* scan cluster headers, continuing the index built so far */
        uint64_t off = r->info.first_cluster_offset;
        size_t i = 0;
        uint64_t best = off;
        while (i < r->ncidx && r->cidx[i].time <= target) {
            best = r->cidx[i].pos;
            i++;
        }
        if (i < r->ncidx) {
            pos = best;
        } else {
            if (r->ncidx)
                off = r->cidx[r->ncidx - 1].pos;
            pos = best;
            for (;;) {
                ks_mkv_cluster_loc loc;
                ks_status st = ks_mkv_locate_cluster(r, off, &loc, err);
                if (st == KS_EEOF)
                    break;
                if (st)
                    return st;
                uint64_t t;
                if (!cluster_time_at(r, &loc, &t))
                    t = r->ncidx ? r->cidx[r->ncidx - 1].time : 0;
                if (!r->ncidx || loc.pos > r->cidx[r->ncidx - 1].pos) {
                    if (r->ncidx == r->capcidx) {
                        size_t cap = r->capcidx ? r->capcidx * 2 : 256;
                        ks_mkv_cue *q = realloc(r->cidx, cap * sizeof *q);
                        if (!q)
                            return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
                        r->cidx = q;
                        r->capcidx = cap;
                    }
                    r->cidx[r->ncidx++] = (ks_mkv_cue){t, loc.pos};
                }
                if (t > target)
                    break;
                pos = loc.pos;
                off = loc.end;
            }
        }
    }
    r->next_cluster = pos;
    r->nframes = 0;
    r->fi = 0;
    r->has_min = true;
    r->min_ts_us = ts_us;
    return KS_OK;
}

ks_status ks_mkv_reader_scan(ks_mkv_reader *r, ks_error *err)
{
    drop_held(r);
    for (int i = 0; i < r->info.track_count; i++) {
        r->info.tracks[i].blocks = 0;
        r->info.tracks[i].first_ts_us = r->info.tracks[i].last_ts_us = 0;
    }
    r->info.clusters = 0;
    r->info.end_of_data = r->info.first_cluster_offset;
    uint64_t off = r->info.first_cluster_offset ? r->info.first_cluster_offset : r->seg_end;
    ks_status st = KS_OK;
    for (;;) {
        ks_mkv_cluster_loc loc;
        st = ks_mkv_locate_cluster(r, off, &loc, err);
        if (st)
            break;
        st = ks_mkv_load_cluster(r, &loc, err);
        if (st)
            break;
        for (size_t i = 0; i < r->nframes; i++) {
            const ks_mkv_frame *f = &r->frames[i];
            int idx = f->track >= 0 ? r->track_index[f->track] : -1;
            if (idx < 0)
                continue;
            ks_mkv_item it;
            make_item(r, f, &it, false, NULL);
            ks_mkv_track *t = &r->info.tracks[idx];
            if (!t->blocks || it.device_ts_us < t->first_ts_us)
                t->first_ts_us = it.device_ts_us;
            if (!t->blocks || it.device_ts_us > t->last_ts_us)
                t->last_ts_us = it.device_ts_us;
            t->blocks++;
        }
        r->info.clusters++;
        r->info.end_of_data = loc.end;
        off = loc.end;
    }
    r->next_cluster = r->info.first_cluster_offset ? r->info.first_cluster_offset : r->seg_end;
    r->nframes = r->fi = 0;
    r->has_min = false;
    return st == KS_EEOF ? KS_OK : st;
}
