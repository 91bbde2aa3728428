/* Matroska reader for Azure Kinect recordings (kinsync/mkv.h).
 *
 * Robustness rules: every element size is checked against its parent and the file before anything
 * is read or allocated; parsing is iterative with a fixed nesting per element type (no recursion);
 * each loop advances by at least one byte; unknown-size elements are accepted for the Segment and
 * Clusters only. Anything else malformed is KS_EPARSE naming the byte offset and the problem. A file
 * that ends inside a cluster ends the iteration after that cluster's complete blocks (info.truncated). */
#include "kinsync/mkv.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkv/ebml.h"
#include "mkv/mkv_internal.h"
#include "mkv/mkv_reader_internal.h"

#define MAX_HEADER_ELEMENT ((uint64_t)256 << 20)  /* Tracks/Tags/Attachments/Cues/SeekHead */
#define MAX_CLUSTER ((uint64_t)1 << 30)
#define MAX_TAGS 4096
#define MAX_ATTACHMENTS 64
#define MAX_CUES 10000000

static ks_status perr(ks_mkv_reader *r, ks_error *err, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ks_status perr(ks_mkv_reader *r, ks_error *err, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ks_status st = ks_mkv_parse_error(r, err, off,
                                      "the file is not a readable Azure Kinect recording (a recording cut off "
                                      "inside its header holds no frames to recover)",
                                      fmt, ap);
    va_end(ap);
    return st;
}

ks_status ks_mkv_parse_error(const ks_mkv_reader *r, ks_error *err, uint64_t off, const char *hint, const char *fmt,
                             va_list ap)
{
    char msg[300];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return ks_error_set(err, KS_EPARSE, "%s: at byte %llu: %s; %s", r->path, (unsigned long long)off, msg, hint);
}

static bool pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return true;
}

/* Reads an element header at off. Returns 1 ok, 0 = the file ends inside the header, -1 invalid. */
int ks_mkv_read_header(ks_mkv_reader *r, uint64_t off, uint32_t *id, uint64_t *size, int *hlen)
{
    uint8_t h[12];
    if (off >= r->file_size)
        return 0;
    size_t avail = (size_t)(r->file_size - off < 12 ? r->file_size - off : 12);
    if (!pread_all(r->fd, h, avail, off))
        return 0;
    int il = ebml_read_id(h, avail, id);
    if (il < 0)
        return 0;
    if (il == 0)
        return -1;
    int sl = ebml_read_size(h + il, avail - (size_t)il, size);
    if (sl < 0)
        return 0;
    if (sl == 0)
        return -1;
    *hlen = il + sl;
    return 1;
}

/* In-memory child iteration. */
typedef struct span {
    const uint8_t *p;
    size_t len;
    uint64_t base; /* absolute file offset of p[0] */
} span;

static ks_status child(ks_mkv_reader *r, const span *s, size_t *pos, uint32_t *id, span *out, ks_error *err)
{
    *out = (span){0}; /* defined on every return (GCC 12 -O3 -Wmaybe-uninitialized) */
    if (*pos >= s->len)
        return KS_EEOF;
    uint64_t at = s->base + *pos;
    uint64_t size;
    int il = ebml_read_id(s->p + *pos, s->len - *pos, id);
    if (il <= 0)
        return perr(r, err, at, il == 0 ? "invalid element ID 0x%02x" : "element header cut off (0x%02x)",
                    s->p[*pos]);
    int sl = ebml_read_size(s->p + *pos + il, s->len - *pos - (size_t)il, &size);
    if (sl <= 0)
        return perr(r, err, at, "invalid size of element 0x%x", *id);
    size_t h = (size_t)(il + sl);
    if (size == EBML_UNKNOWN_SIZE)
        return perr(r, err, at, "element 0x%x has an unknown size where only a known size is allowed", *id);
    if (size > s->len - *pos - h)
        return perr(r, err, at, "element 0x%x size %llu runs past the end of its parent (%zu bytes left)", *id,
                    (unsigned long long)size, s->len - *pos - h);
    out->p = s->p + *pos + h;
    out->len = (size_t)size;
    out->base = at + h;
    *pos += h + (size_t)size;
    return KS_OK;
}

static bool get_uint(const span *s, uint64_t *v)
{
    return ebml_read_uint(s->p, s->len, v);
}

static char *dup_str(const span *s)
{
    size_t n = s->len;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    memcpy(c, s->p, n);
    c[n] = 0;
    return c;
}

static void copy_str(char *dst, size_t cap, const span *s)
{
    size_t n = s->len < cap - 1 ? s->len : cap - 1;
    memcpy(dst, s->p, n);
    dst[n] = 0;
}

/* Loads a level-1 element's body at absolute off (header included in the check). */
static ks_status load_element(ks_mkv_reader *r, uint64_t off, uint32_t want, uint8_t **buf, span *body,
                              ks_error *err)
{
    uint32_t id;
    uint64_t size;
    int hl;
    int k = ks_mkv_read_header(r, off, &id, &size, &hl);
    if (k == 0)
        return perr(r, err, off, "the file ends inside an element header");
    if (k < 0)
        return perr(r, err, off, "invalid element header");
    if (want && id != want)
        return perr(r, err, off, "expected element 0x%x, found 0x%x (SeekHead points to the wrong place)", want, id);
    if (size == EBML_UNKNOWN_SIZE)
        return perr(r, err, off, "element 0x%x has an unknown size", id);
    if (size > MAX_HEADER_ELEMENT)
        return perr(r, err, off, "element 0x%x is %llu bytes, more than the %llu allowed", id,
                    (unsigned long long)size, (unsigned long long)MAX_HEADER_ELEMENT);
    if (off + (uint64_t)hl + size > r->seg_end)
        return perr(r, err, off, "element 0x%x size %llu runs past the end of the %s", id, (unsigned long long)size,
                    r->seg_end == r->file_size ? "file" : "Segment");
    *buf = malloc(size ? (size_t)size : 1);
    if (!*buf)
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory reading %llu bytes at %llu", r->path,
                            (unsigned long long)size, (unsigned long long)off);
    if (!pread_all(r->fd, *buf, (size_t)size, off + (uint64_t)hl)) {
        free(*buf);
        *buf = NULL;
        return ks_error_set(err, KS_EIO, "%s: read failed at byte %llu", r->path, (unsigned long long)off);
    }
    body->p = *buf;
    body->len = (size_t)size;
    body->base = off + (uint64_t)hl;
    return KS_OK;
}

static ks_status parse_seekhead(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        if (id != ID_SEEK)
            continue;
        size_t p2 = 0;
        uint32_t id2;
        span d = {0};
        uint64_t sid = 0, spos = UINT64_MAX;
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            if (id2 == ID_SEEKID && !ebml_read_uint(d.p, d.len, &sid))
                return perr(r, err, d.base, "SeekID of %zu bytes", d.len);
            if (id2 == ID_SEEKPOSITION && !get_uint(&d, &spos))
                return perr(r, err, d.base, "SeekPosition of %zu bytes", d.len);
        }
        if (st != KS_EEOF)
            return st;
        if (spos == UINT64_MAX)
            continue;
        if (spos >= r->file_size || r->seg_data + spos >= r->file_size) {
            const char *name = sid == ID_INFO ? "Info" : sid == ID_TRACKS ? "Tracks" : sid == ID_ATTACHMENTS ? "Attachments"
                               : sid == ID_TAGS ? "Tags" : sid == ID_CUES ? "Cues" : NULL;
            if (name && !r->seek_broken) {
                r->seek_broken = name;
                r->seek_broken_pos = r->seg_data + spos < spos ? UINT64_MAX : r->seg_data + spos; /* absolute */
            }
            continue;
        }
        uint64_t abs = r->seg_data + spos;
        switch (sid) {
        case ID_INFO: if (!r->pos_info) r->pos_info = abs; break;
        case ID_TRACKS: if (!r->pos_tracks) r->pos_tracks = abs; break;
        case ID_ATTACHMENTS: if (!r->pos_attach) r->pos_attach = abs; break;
        case ID_TAGS: if (!r->pos_tags) r->pos_tags = abs; break;
        case ID_CUES: if (!r->pos_cues) r->pos_cues = abs; break;
        default: break;
        }
    }
    return st == KS_EEOF ? KS_OK : st;
}

static ks_status parse_info(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        switch (id) {
        case ID_TIMECODESCALE:
            if (!get_uint(&c, &r->info.timecode_scale) || r->info.timecode_scale == 0 ||
                r->info.timecode_scale > 1000000000ull)
                return perr(r, err, c.base, "invalid TimecodeScale");
            break;
        case ID_DURATION:
            if (!ebml_read_float(c.p, c.len, &r->info.duration))
                return perr(r, err, c.base, "Duration of %zu bytes (must be 4 or 8)", c.len);
            break;
        case ID_MUXINGAPP: copy_str(r->info.muxing_app, sizeof r->info.muxing_app, &c); break;
        case ID_WRITINGAPP: copy_str(r->info.writing_app, sizeof r->info.writing_app, &c); break;
        case ID_TITLE: copy_str(r->info.title, sizeof r->info.title, &c); break;
        default: break;
        }
    }
    return st == KS_EEOF ? KS_OK : st;
}

static ks_status parse_tracks(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        if (id != ID_TRACKENTRY)
            continue;
        ks_mkv_track t;
        memset(&t, 0, sizeof t);
        t.kind = KS_MKV_OTHER;
        t.format = KS_FORMAT_CUSTOM;
        size_t p2 = 0;
        uint32_t id2;
        span d = {0};
        uint64_t v;
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            switch (id2) {
            case ID_TRACKNUMBER:
                if (!get_uint(&d, &v) || v == 0 || v > 127)
                    return perr(r, err, d.base, "TrackNumber must be 1..127");
                t.number = (int)v;
                break;
            case ID_TRACKUID: if (!get_uint(&d, &t.uid)) return perr(r, err, d.base, "TrackUID too long"); break;
            case ID_TRACKTYPE:
                if (!get_uint(&d, &v) || v > 255)
                    return perr(r, err, d.base, "invalid TrackType");
                t.type = (int)v;
                break;
            case ID_CODECID: copy_str(t.codec_id, sizeof t.codec_id, &d); break;
            case ID_NAME: copy_str(t.name, sizeof t.name, &d); break;
            case ID_DEFAULTDURATION:
                if (!get_uint(&d, &t.default_duration_ns))
                    return perr(r, err, d.base, "DefaultDuration too long");
                break;
            case ID_CODECPRIVATE:
                t.codec_private_size = (uint32_t)d.len;
                if (d.len >= 40) {
                    memcpy(t.fourcc, d.p + 16, 4);
                    t.fourcc[4] = 0;
                    for (int i = 0; i < 4; i++)
                        if (t.fourcc[i] < 32 || t.fourcc[i] > 126)
                            t.fourcc[i] = '?';
                    t.bit_count = (uint16_t)(d.p[14] | d.p[15] << 8);
                    t.size_image = ks_mkv_get_le32(d.p + 20);
                }
                break;
            case ID_VIDEO: {
                size_t p3 = 0;
                uint32_t id3;
                span e;
                while ((st = child(r, &d, &p3, &id3, &e, err)) == KS_OK) {
                    if ((id3 == ID_PIXELWIDTH || id3 == ID_PIXELHEIGHT) && (!get_uint(&e, &v) || v > 65536))
                        return perr(r, err, e.base, "invalid pixel size");
                    if (id3 == ID_PIXELWIDTH)
                        t.width = (int)v;
                    if (id3 == ID_PIXELHEIGHT)
                        t.height = (int)v;
                }
                if (st != KS_EEOF)
                    return st;
                break;
            }
            default: break;
            }
        }
        if (st != KS_EEOF)
            return st;
        if (!t.number)
            return perr(r, err, c.base, "TrackEntry without TrackNumber");
        if (r->info.track_count >= KS_MKV_MAX_TRACKS)
            continue;
        if (!strcmp(t.fourcc, "MJPG")) t.format = KS_FORMAT_MJPG;
        else if (!strcmp(t.fourcc, "NV12")) t.format = KS_FORMAT_NV12;
        else if (!strcmp(t.fourcc, "YUY2")) t.format = KS_FORMAT_YUY2;
        else if (!strcmp(t.fourcc, "BGRA")) t.format = KS_FORMAT_BGRA32;
        else if (!strcmp(t.fourcc, "b16g")) t.format = KS_FORMAT_DEPTH16;
        r->info.tracks[r->info.track_count++] = t;
    }
    return st == KS_EEOF ? KS_OK : st;
}

static ks_status parse_attachments(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        if (id != ID_ATTACHEDFILE || r->info.attachment_count >= MAX_ATTACHMENTS)
            continue;
        if (!r->info.attachments) {
            r->info.attachments = calloc(MAX_ATTACHMENTS, sizeof *r->info.attachments);
            if (!r->info.attachments)
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
        }
        ks_mkv_attachment *a = &r->info.attachments[r->info.attachment_count++];
        size_t p2 = 0;
        uint32_t id2;
        span d = {0};
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            if (id2 == ID_FILENAME && !a->name) a->name = dup_str(&d);
            else if (id2 == ID_FILEMIMETYPE && !a->mime) a->mime = dup_str(&d);
            else if (id2 == ID_FILEUID && !get_uint(&d, &a->uid)) return perr(r, err, d.base, "FileUID too long");
            else if (id2 == ID_FILEDATA && !a->data) {
                a->data = malloc(d.len + 1);
                if (!a->data)
                    return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
                memcpy(a->data, d.p, d.len);
                a->data[d.len] = 0;
                a->size = d.len;
            }
        }
        if (st != KS_EEOF)
            return st;
    }
    return st == KS_EEOF ? KS_OK : st;
}

static ks_status parse_tags(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        if (id != ID_TAG)
            continue;
        char ttype[16] = "";
        uint64_t tuid = 0, auid = 0;
        size_t p2 = 0;
        uint32_t id2;
        span d = {0};
        /* targets first (they may come after the SimpleTags: two passes) */
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            if (id2 != ID_TARGETS)
                continue;
            size_t p3 = 0;
            uint32_t id3;
            span e;
            while ((st = child(r, &d, &p3, &id3, &e, err)) == KS_OK) {
                if (id3 == ID_TARGETTYPE) copy_str(ttype, sizeof ttype, &e);
                else if (id3 == ID_TAGTRACKUID && !get_uint(&e, &tuid)) return perr(r, err, e.base, "TagTrackUID too long");
                else if (id3 == ID_TAGATTACHMENTUID && !get_uint(&e, &auid)) return perr(r, err, e.base, "TagAttachmentUID too long");
            }
            if (st != KS_EEOF)
                return st;
        }
        if (st != KS_EEOF)
            return st;
        p2 = 0;
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            if (id2 != ID_SIMPLETAG || r->info.tag_count >= MAX_TAGS)
                continue;
            span name = {0}, value = {0};
            bool has_name = false, has_value = false;
            size_t p3 = 0;
            uint32_t id3;
            span e;
            while ((st = child(r, &d, &p3, &id3, &e, err)) == KS_OK) {
                if (id3 == ID_TAGNAME) { name = e; has_name = true; }
                else if (id3 == ID_TAGSTRING) { value = e; has_value = true; }
            }
            if (st != KS_EEOF)
                return st;
            if (!has_name)
                continue;
            if (r->info.tag_count == r->tag_cap) {
                int cap = r->tag_cap ? r->tag_cap * 2 : 32;
                ks_mkv_tag *t = realloc(r->info.tags, (size_t)cap * sizeof *t);
                if (!t)
                    return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
                r->info.tags = t;
                r->tag_cap = cap;
            }
            ks_mkv_tag *t = &r->info.tags[r->info.tag_count];
            memset(t, 0, sizeof *t);
            t->name = dup_str(&name);
            t->value = has_value ? dup_str(&value) : strdup("");
            if (!t->name || !t->value) {
                free(t->name);
                free(t->value);
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
            }
            memcpy(t->target_type, ttype, sizeof ttype);
            t->track_uid = tuid;
            t->attachment_uid = auid;
            r->info.tag_count++;
        }
        if (st != KS_EEOF)
            return st;
    }
    return st == KS_EEOF ? KS_OK : st;
}

static ks_status parse_cues(ks_mkv_reader *r, const span *s, ks_error *err)
{
    size_t pos = 0;
    uint32_t id;
    span c;
    ks_status st;
    while ((st = child(r, s, &pos, &id, &c, err)) == KS_OK) {
        if (id != ID_CUEPOINT)
            continue;
        uint64_t time = UINT64_MAX, cpos = UINT64_MAX;
        size_t p2 = 0;
        uint32_t id2;
        span d = {0};
        while ((st = child(r, &c, &p2, &id2, &d, err)) == KS_OK) {
            if (id2 == ID_CUETIME && !get_uint(&d, &time))
                return perr(r, err, d.base, "CueTime too long");
            if (id2 == ID_CUETRACKPOSITIONS && cpos == UINT64_MAX) {
                size_t p3 = 0;
                uint32_t id3;
                span e = {0};
                while ((st = child(r, &d, &p3, &id3, &e, err)) == KS_OK)
                    if (id3 == ID_CUECLUSTERPOSITION && !get_uint(&e, &cpos))
                        return perr(r, err, e.base, "CueClusterPosition too long");
                if (st != KS_EEOF)
                    return st;
            }
        }
        if (st != KS_EEOF)
            return st;
        if (time == UINT64_MAX || cpos == UINT64_MAX || cpos >= r->file_size || r->ncues >= MAX_CUES)
            continue;
        if (r->ncues == r->capcues) {
            size_t cap = r->capcues ? r->capcues * 2 : 64;
            ks_mkv_cue *q = realloc(r->cues, cap * sizeof *q);
            if (!q)
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", r->path);
            r->cues = q;
            r->capcues = cap;
        }
        /* keep them sorted by time; drop out-of-order ones */
        if (r->ncues && time < r->cues[r->ncues - 1].time)
            continue;
        r->cues[r->ncues++] = (ks_mkv_cue){time, r->seg_data + cpos};
    }
    r->info.cue_count = (int)r->ncues;
    return st == KS_EEOF ? KS_OK : st;
}

typedef ks_status (*parse_fn)(ks_mkv_reader *, const span *, ks_error *);

static ks_status load_and_parse(ks_mkv_reader *r, uint64_t off, uint32_t id, parse_fn fn, ks_error *err)
{
    uint8_t *buf = NULL;
    span s;
    ks_status st = load_element(r, off, id, &buf, &s, err);
    if (!st)
        st = fn(r, &s, err);
    free(buf);
    return st;
}

const char *ks_mkv_reader_tag(const ks_mkv_reader *r, const char *name)
{
    for (int i = 0; i < r->info.tag_count; i++)
        if (!strcmp(r->info.tags[i].name, name))
            return r->info.tags[i].value;
    return NULL;
}

const ks_mkv_track *ks_mkv_reader_track(const ks_mkv_reader *r, ks_mkv_track_kind kind)
{
    for (int i = 0; i < r->info.track_count; i++)
        if (r->info.tracks[i].kind == kind)
            return &r->info.tracks[i];
    return NULL;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || *s == '-')
        return false;
    *v = x;
    return true;
}

static void build_desc(ks_mkv_reader *r)
{
    ks_mkv_info *in = &r->info;
    ks_mkv_desc *d = &in->desc;
    ks_mkv_desc_init(d);
    static const char *const track_tags[] = {"K4A_COLOR_TRACK", "K4A_DEPTH_TRACK", "K4A_IR_TRACK", "K4A_IMU_TRACK"};
    static const char *const names[] = {"COLOR", "DEPTH", "IR", "IMU"};
    for (int k = 0; k < 4; k++) {
        uint64_t uid;
        const char *v = ks_mkv_reader_tag(r, track_tags[k]);
        bool found = false;
        if (v && parse_u64(v, &uid))
            for (int i = 0; i < in->track_count; i++)
                if (in->tracks[i].uid == uid && in->tracks[i].kind == KS_MKV_OTHER) {
                    in->tracks[i].kind = (ks_mkv_track_kind)k;
                    found = true;
                    break;
                }
        if (!found && !v)
            for (int i = 0; i < in->track_count; i++)
                if (!strcmp(in->tracks[i].name, names[k]) && in->tracks[i].kind == KS_MKV_OTHER) {
                    in->tracks[i].kind = (ks_mkv_track_kind)k;
                    break;
                }
    }
    for (int i = 0; i < in->track_count; i++) {
        ks_mkv_track *t = &in->tracks[i];
        if (t->number < 128)
            r->track_index[t->number] = (int8_t)i;
        if (t->kind == KS_MKV_IR && t->format == KS_FORMAT_DEPTH16)
            t->format = KS_FORMAT_IR16;
    }
    const ks_mkv_track *c = ks_mkv_reader_track(r, KS_MKV_COLOR);
    const ks_mkv_track *any = c;
    if (c) {
        d->color_format = c->format;
        for (int res = 1; res < KS_COLOR_RESOLUTION_COUNT; res++) {
            const ks_color_resolution_info *ci = ks_color_resolution_get((ks_color_resolution)res);
            if (ci && ci->width == c->width && ci->height == c->height)
                d->color_resolution = (ks_color_resolution)res;
        }
    }
    if (!any) any = ks_mkv_reader_track(r, KS_MKV_DEPTH);
    if (!any) any = ks_mkv_reader_track(r, KS_MKV_IR);
    if (any && any->default_duration_ns) {
        for (int f = 0; f < KS_FPS_COUNT; f++) {
            uint64_t want = 1000000000ull / (uint64_t)ks_fps_hz((ks_fps)f);
            if (any->default_duration_ns + 1000 >= want && any->default_duration_ns <= want + 1000)
                d->fps = (ks_fps)f;
        }
    }
    ks_depth_mode dm;
    if (ks_depth_mode_parse(ks_mkv_reader_tag(r, "K4A_DEPTH_MODE") ? ks_mkv_reader_tag(r, "K4A_DEPTH_MODE") : "",
                            &dm))
        d->depth_mode = dm;
    ks_wired_sync_mode sm;
    const char *v = ks_mkv_reader_tag(r, "K4A_WIRED_SYNC_MODE");
    if (v && ks_wired_sync_mode_parse(v, &sm))
        d->sync_mode = sm;
    uint64_t u;
    if (parse_u64(ks_mkv_reader_tag(r, "K4A_SUBORDINATE_DELAY_NS"), &u))
        d->subordinate_delay_us = (uint32_t)(u / 1000);
    v = ks_mkv_reader_tag(r, "K4A_DEPTH_DELAY_NS");
    if (v) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (!*end && x > -1000000000ll && x < 1000000000ll)
            d->depth_delay_us = (int32_t)(x / 1000);
    }
    if (parse_u64(ks_mkv_reader_tag(r, "K4A_START_OFFSET_NS"), &u)) {
        in->start_offset_us = u / 1000;
        in->has_start_offset = true;
    }
    v = ks_mkv_reader_tag(r, "K4A_DEVICE_SERIAL_NUMBER");
    if (v)
        snprintf(d->serial, sizeof d->serial, "%s", v);
    const char *cf = ks_mkv_reader_tag(r, "K4A_COLOR_FIRMWARE_VERSION");
    const char *df = ks_mkv_reader_tag(r, "K4A_DEPTH_FIRMWARE_VERSION");
    if (cf && df) {
        unsigned a = 0, b = 0, cc = 0;
        if (sscanf(cf, "%u.%u.%u", &a, &b, &cc) == 3)
            d->color_fw = (ks_version){a, b, cc};
        if (sscanf(df, "%u.%u.%u", &a, &b, &cc) == 3)
            d->depth_fw = (ks_version){a, b, cc};
        d->has_firmware = true;
    }
    d->imu = ks_mkv_reader_track(r, KS_MKV_IMU) != NULL;
    v = ks_mkv_reader_tag(r, "KINSYNC_RIG");
    if (v) snprintf(d->rig_name, sizeof d->rig_name, "%s", v);
    v = ks_mkv_reader_tag(r, "KINSYNC_ROLE");
    if (v) snprintf(d->role, sizeof d->role, "%s", v);
    v = ks_mkv_reader_tag(r, "KINSYNC_PLAN_DIGEST");
    if (v) snprintf(d->plan_digest, sizeof d->plan_digest, "%s", v);
    v = ks_mkv_reader_tag(r, "KINSYNC_COLOR_EXPOSURE_US");
    if (v) {
        char *end;
        long e = strtol(v, &end, 10);
        if (end != v && !*end && e > 0 && e <= 1000000) /* anything else is ignored like an unknown tag */
            d->color_exposure_us = (int32_t)e;
    }
    v = ks_mkv_reader_tag(r, "KINSYNC_TIMESTAMPS");
    if (v) snprintf(d->timestamps, sizeof d->timestamps, "%s", v);
    /* calibration: the attachment named by K4A_CALIBRATION_FILE, else calibration.json */
    const ks_mkv_attachment *cal = NULL;
    for (int i = 0; i < in->tag_count && !cal; i++)
        if (!strcmp(in->tags[i].name, "K4A_CALIBRATION_FILE"))
            for (int j = 0; j < in->attachment_count; j++)
                if ((in->tags[i].attachment_uid && in->attachments[j].uid == in->tags[i].attachment_uid) ||
                    (in->attachments[j].name && !strcmp(in->attachments[j].name, in->tags[i].value))) {
                    cal = &in->attachments[j];
                    break;
                }
    for (int j = 0; j < in->attachment_count && !cal; j++)
        if (in->attachments[j].name && !strcmp(in->attachments[j].name, "calibration.json"))
            cal = &in->attachments[j];
    if (cal && cal->data) {
        d->calibration_json = (const char *)cal->data;
        d->calibration_len = cal->size;
    }
}

ks_status ks_mkv_reader_open(const char *path, ks_mkv_reader **out, ks_error *err)
{
    *out = NULL;
    ks_mkv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening %s", path);
    memset(r->track_index, -1, sizeof r->track_index);
    r->decode_mask = KS_MKV_DECODE_ALL;
    r->path = strdup(path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || !r->path) {
        ks_status st = ks_error_set(err, errno == ENOENT ? KS_ENOTFOUND : KS_EIO, "cannot open %s: %s", path,
                                    strerror(errno));
        ks_mkv_reader_close(r);
        return st;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ks_status st = ks_error_set(err, KS_EIO, "%s: not a regular file", path);
        ks_mkv_reader_close(r);
        return st;
    }
    r->file_size = (uint64_t)sb.st_size;
    r->info.file_size = r->file_size;
    r->info.timecode_scale = 1000000; /* Matroska default */
    r->seg_end = r->file_size;
    ks_status st = ks_mkv_reader_open_header(r, err);
    if (st) {
        ks_mkv_reader_close(r);
        return st;
    }
    *out = r;
    return KS_OK;
}

ks_status ks_mkv_reader_open_header(ks_mkv_reader *r, ks_error *err)
{
    uint32_t id;
    uint64_t size;
    int hl;
    int k = ks_mkv_read_header(r, 0, &id, &size, &hl);
    if (k <= 0 || id != ID_EBML)
        return perr(r, err, 0, "no EBML header: this is not a Matroska file");
    if (size > 4096)
        return perr(r, err, 0, "EBML header of %llu bytes is too large", (unsigned long long)size);
    if ((uint64_t)hl + size > r->file_size)
        return perr(r, err, 0, "the file ends inside the EBML header");
    uint8_t hb[4096];
    if (!pread_all(r->fd, hb, (size_t)size, (uint64_t)hl))
        return ks_error_set(err, KS_EIO, "%s: read failed", r->path);
    span s = {hb, (size_t)size, (uint64_t)hl}, c;
    size_t pos = 0;
    ks_status st;
    char doctype[32] = "";
    uint64_t readver = 1;
    while ((st = child(r, &s, &pos, &id, &c, err)) == KS_OK) {
        if (id == ID_DOCTYPE)
            copy_str(doctype, sizeof doctype, &c);
        if (id == ID_DOCTYPEREADVERSION && !get_uint(&c, &readver))
            return perr(r, err, c.base, "invalid DocTypeReadVersion");
        if (id == ID_DOCTYPEVERSION && !get_uint(&c, &r->info.doctype_version))
            return perr(r, err, c.base, "invalid DocTypeVersion");
    }
    if (st != KS_EEOF)
        return st;
    if (strcmp(doctype, "matroska") && strcmp(doctype, "webm"))
        return perr(r, err, 0, "DocType is \"%s\", not \"matroska\"", doctype);
    snprintf(r->info.doctype, sizeof r->info.doctype, "%s", doctype);
    r->info.doctype_read_version = readver;
    if (readver > 4)
        return perr(r, err, 0, "DocTypeReadVersion %llu is newer than this reader", (unsigned long long)readver);
    uint64_t off = (uint64_t)hl + size;
    k = ks_mkv_read_header(r, off, &id, &size, &hl);
    if (k <= 0 || id != ID_SEGMENT)
        return perr(r, err, off, k == 0 ? "the file ends before the Segment" : "expected the Segment element");
    r->seg_start = off;
    r->seg_data = off + (uint64_t)hl;
    if (size != EBML_UNKNOWN_SIZE) {
        r->info.segment_size_known = true;
        if (r->seg_data + size < r->file_size)
            r->seg_end = r->seg_data + size;
        else if (r->seg_data + size > r->file_size)
            r->info.truncated = true;
    }
    /* walk level-1 elements up to the first cluster */
    off = r->seg_data;
    bool have_info = false, have_tracks = false, have_tags = false, have_att = false, have_cues = false;
    while (off < r->seg_end) {
        k = ks_mkv_read_header(r, off, &id, &size, &hl);
        if (k == 0) {
            r->info.truncated = true;
            break;
        }
        if (k < 0)
            return perr(r, err, off, "invalid element header in the Segment");
        if (id == ID_CLUSTER) {
            r->info.first_cluster_offset = off;
            break;
        }
        if (size == EBML_UNKNOWN_SIZE)
            return perr(r, err, off, "top-level element 0x%x has an unknown size", id);
        uint64_t end = off + (uint64_t)hl + size;
        if (end > r->seg_end || end < off) {
            if (id == ID_VOID || id == ID_CRC32) {
                r->info.truncated = true;
                break;
            }
            return perr(r, err, off, "element 0x%x size %llu runs past the end of the %s", id,
                        (unsigned long long)size, r->seg_end == r->file_size ? "file" : "Segment");
        }
        switch (id) {
        case ID_SEEKHEAD:
            st = load_and_parse(r, off, ID_SEEKHEAD, parse_seekhead, err);
            break;
        case ID_INFO: st = load_and_parse(r, off, id, parse_info, err); have_info = true; break;
        case ID_TRACKS: st = load_and_parse(r, off, id, parse_tracks, err); have_tracks = true; break;
        case ID_ATTACHMENTS: st = load_and_parse(r, off, id, parse_attachments, err); have_att = true; break;
        case ID_TAGS: st = load_and_parse(r, off, id, parse_tags, err); have_tags = true; break;
        case ID_CUES: st = load_and_parse(r, off, id, parse_cues, err); have_cues = true; break;
        default: st = KS_OK; break;
        }
        if (st)
            return st;
        off = end;
    }
    /* elements after the clusters, found through the SeekHead */
    if (!have_info && r->pos_info && r->pos_info < r->file_size) {
        if ((st = load_and_parse(r, r->pos_info, ID_INFO, parse_info, err)))
            return st;
        have_info = true;
    }
    if (!have_tracks && r->pos_tracks && r->pos_tracks < r->file_size) {
        if ((st = load_and_parse(r, r->pos_tracks, ID_TRACKS, parse_tracks, err)))
            return st;
        have_tracks = true;
    }
    if (!have_att && r->pos_attach && r->pos_attach < r->file_size &&
        (st = load_and_parse(r, r->pos_attach, ID_ATTACHMENTS, parse_attachments, err)))
        return st;
    if (!have_tags && r->pos_tags && r->pos_tags < r->file_size &&
        (st = load_and_parse(r, r->pos_tags, ID_TAGS, parse_tags, err)))
        return st;
    if (!have_cues && r->pos_cues && r->pos_cues < r->seg_end) {
        /* Cues that are cut off or corrupt are not fatal: seeks fall back to scanning */
        ks_error ignored = {0};
        if (load_and_parse(r, r->pos_cues, ID_CUES, parse_cues, &ignored)) {
            r->ncues = 0;
            r->info.cue_count = 0;
            if (!r->seek_broken) {
                r->seek_broken = "Cues";
                r->seek_broken_pos = r->pos_cues;
            }
        }
    }
    if (!have_tracks)
        return perr(r, err, r->seg_data, "no Tracks element");
    build_desc(r);
    r->next_cluster = r->info.first_cluster_offset;
    if (!r->next_cluster)
        r->next_cluster = r->seg_end;
    return KS_OK;
}

void ks_mkv_reader_close(ks_mkv_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->has_held)
        ks_image_release(r->held.image);
    for (int i = 0; i < r->info.tag_count; i++) {
        free(r->info.tags[i].name);
        free(r->info.tags[i].value);
    }
    free(r->info.tags);
    for (int i = 0; i < r->info.attachment_count; i++) {
        free(r->info.attachments[i].name);
        free(r->info.attachments[i].mime);
        free(r->info.attachments[i].data);
    }
    free(r->info.attachments);
    free(r->cues);
    free(r->cidx);
    free(r->frames);
    ks_buf_free(&r->cbuf);
    ks_image_pool_release(r->pool); /* images still held keep their buffers until released */
    free(r->path);
    free(r);
}

const ks_mkv_info *ks_mkv_reader_info(const ks_mkv_reader *r)
{
    return &r->info;
}

static bool tag_int(const ks_mkv_reader *r, const char *name, bool allow_negative)
{
    const char *v = ks_mkv_reader_tag(r, name);
    if (!v)
        return true;
    char *end;
    errno = 0;
    if (allow_negative)
        (void)strtoll(v, &end, 10);
    else
        (void)strtoull(v, &end, 10);
    return *v && !*end && !errno && (allow_negative || *v != '-');
}

static ks_status sdk_refuses(const ks_mkv_reader *r, ks_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ks_status sdk_refuses(const ks_mkv_reader *r, ks_error *err, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ks_error_set(err, KS_EPARSE, "%s: the Azure Kinect SDK playback would refuse this file: %s", r->path, msg);
}

ks_status ks_mkv_check_playback(const ks_mkv_reader *r, ks_error *err)
{
    const ks_mkv_info *in = &r->info;
    if (strcmp(in->doctype, "matroska"))
        return sdk_refuses(r, err, "DocType is \"%s\", not \"matroska\"", in->doctype);
    if (in->doctype_read_version > 2)
        return sdk_refuses(r, err, "DocTypeReadVersion %llu > 2", (unsigned long long)in->doctype_read_version);
    if (in->doctype_version < in->doctype_read_version)
        return sdk_refuses(r, err, "DocTypeVersion < DocTypeReadVersion");
    if (!in->first_cluster_offset)
        return sdk_refuses(r, err, "the recording contains no clusters (no frames)");
    if (r->seek_broken) /* the SDK reads every element the SeekHead names, at that offset */
        return sdk_refuses(r, err,
                           "its SeekHead points at the %s at byte %llu, which the file does not hold (cut off after "
                           "it was finished, e.g. an interrupted copy); run 'kinsync repair'",
                           r->seek_broken, (unsigned long long)r->seek_broken_pos);
    const ks_mkv_track *vt[3] = {ks_mkv_reader_track(r, KS_MKV_COLOR), ks_mkv_reader_track(r, KS_MKV_DEPTH),
                                 ks_mkv_reader_track(r, KS_MKV_IR)};
    uint64_t period = 0;
    const char *dm_str = ks_mkv_reader_tag(r, "K4A_DEPTH_MODE");
    ks_depth_mode dm = KS_DEPTH_OFF;
    if ((vt[1] || vt[2]) && !dm_str)
        return sdk_refuses(r, err, "K4A_DEPTH_MODE tag is missing but the file has a DEPTH or IR track");
    if (dm_str && (!ks_depth_mode_parse(dm_str, &dm) || dm == KS_DEPTH_OFF))
        return sdk_refuses(r, err, "unsupported depth mode \"%s\"", dm_str);
    const ks_depth_mode_info *di = ks_depth_mode_get(dm);
    for (int k = 0; k < 3; k++) {
        const ks_mkv_track *t = vt[k];
        if (!t)
            continue;
        const char *name = ks_mkv_track_kind_name((ks_mkv_track_kind)k);
        if (t->type != 1)
            return sdk_refuses(r, err, "%s track is not a video track", name);
        if (!period)
            period = t->default_duration_ns;
        else if (period != t->default_duration_ns)
            return sdk_refuses(r, err, "track frame durations don't match (%s): %llu ns != %llu ns", name,
                               (unsigned long long)t->default_duration_ns, (unsigned long long)period);
        if (k > 0 && (!di || t->width != di->width || t->height != di->height))
            return sdk_refuses(r, err, "%s track is %dx%d, which is not depth mode %s", name, t->width, t->height,
                               dm_str ? dm_str : "?");
        if (strcmp(t->codec_id, "V_MS/VFW/FOURCC"))
            return sdk_refuses(r, err, "unsupported codec id %s on track %s", t->codec_id, t->name);
        if (t->codec_private_size != 40)
            return sdk_refuses(r, err, "%s CodecPrivate is %u bytes, not a 40-byte BITMAPINFOHEADER", name,
                               t->codec_private_size);
        if (strcmp(t->fourcc, "NV12") && strcmp(t->fourcc, "YUY2") && strcmp(t->fourcc, "MJPG") &&
            strcmp(t->fourcc, "b16g") && strcmp(t->fourcc, "BGRA"))
            return sdk_refuses(r, err, "unsupported FOURCC %s on track %s", t->fourcc, t->name);
    }
    if (period) {
        uint64_t hz = 1000000000ull / period;
        if (hz != 5 && hz != 15 && hz != 30)
            return sdk_refuses(r, err, "unsupported frame period %llu ns", (unsigned long long)period);
    }
    if (!tag_int(r, "K4A_DEPTH_DELAY_NS", true))
        return sdk_refuses(r, err, "K4A_DEPTH_DELAY_NS is not an integer");
    const char *sm = ks_mkv_reader_tag(r, "K4A_WIRED_SYNC_MODE");
    ks_wired_sync_mode mode;
    if (sm && (!ks_wired_sync_mode_parse(sm, &mode) || strcmp(sm, ks_wired_sync_mode_name(mode))))
        return sdk_refuses(r, err, "unsupported wired sync mode \"%s\"", sm);
    if (sm && mode == KS_SYNC_SUBORDINATE && !tag_int(r, "K4A_SUBORDINATE_DELAY_NS", false))
        return sdk_refuses(r, err, "K4A_SUBORDINATE_DELAY_NS is not an integer");
    if (!tag_int(r, "K4A_START_OFFSET_NS", false))
        return sdk_refuses(r, err, "K4A_START_OFFSET_NS is not an integer");
    return KS_OK;
}
