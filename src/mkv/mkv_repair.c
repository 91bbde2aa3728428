/* Repair of cut-off or unfinished recordings (kinsync/mkv.h, docs/repair.md).
 *
 * The output keeps the input's EBML header, Info (with a new Duration), Tracks, Attachments, Tags
 * and every complete cluster byte for byte (unknown-size clusters get their size written), and
 * adds a SeekHead, Cues (the writer's rule: the first track-1 block of a cluster, at most one per
 * second) and the Segment size. It is written to OUT.tmp and renamed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "mkv/ebml.h"
#include "mkv/mkv_internal.h"
#include "mkv/mkv_reader_internal.h"

typedef struct kept {
    ks_mkv_cluster_loc loc;
    bool cue;
    uint64_t cue_time;
    uint64_t out_rel;
} kept;

typedef struct out_file {
    int fd;
    uint64_t pos;
    bool failed;
    int err_no;
} out_file;

static void out_write(out_file *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n && !o->failed) {
        ssize_t k = pwrite(o->fd, b, n, (off_t)o->pos);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            o->failed = true;
            o->err_no = errno;
            return;
        }
        b += k;
        n -= (size_t)k;
        o->pos += (uint64_t)k;
    }
}

static bool copy_range(ks_mkv_reader *r, out_file *o, uint64_t from, uint64_t len, uint8_t *buf, size_t cap)
{
    while (len && !o->failed) {
        size_t n = len < cap ? (size_t)len : cap;
        ssize_t k = pread(r->fd, buf, n, (off_t)from);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        out_write(o, buf, (size_t)k);
        from += (uint64_t)k;
        len -= (uint64_t)k;
    }
    return !o->failed;
}

/* Reads a whole top-level element (header + body) into b. */
static bool read_element(ks_mkv_reader *r, uint64_t off, uint32_t *id, ks_buf *b, size_t *hlen)
{
    uint64_t size;
    int hl;
    if (ks_mkv_read_header(r, off, id, &size, &hl) != 1 || size == EBML_UNKNOWN_SIZE ||
        size > ((uint64_t)256 << 20) || off + (uint64_t)hl + size > r->seg_end)
        return false;
    b->len = 0;
    size_t n = (size_t)hl + (size_t)size;
    if (!ks_buf_reserve(b, n))
        return false;
    if (pread(r->fd, b->data, n, (off_t)off) != (ssize_t)n)
        return false;
    b->len = n;
    *hlen = (size_t)hl;
    return true;
}

/* Info with its Duration replaced. */
static void rebuild_info(const ks_buf *in, size_t hlen, double duration, ks_buf *out)
{
    ks_buf_begin(out, ID_INFO);
    size_t pos = hlen;
    while (pos < in->len) {
        uint32_t id;
        uint64_t size;
        int il = ebml_read_id(in->data + pos, in->len - pos, &id);
        if (il <= 0)
            break;
        int sl = ebml_read_size(in->data + pos + il, in->len - pos - (size_t)il, &size);
        if (sl <= 0 || size == EBML_UNKNOWN_SIZE || size > in->len - pos - (size_t)(il + sl))
            break;
        size_t tot = (size_t)(il + sl) + (size_t)size;
        if (id != ID_DURATION && id != ID_CRC32 && id != ID_VOID)
            ks_buf_put(out, in->data + pos, tot);
        pos += tot;
    }
    ks_buf_put_float(out, ID_DURATION, duration);
    ks_buf_end(out);
}

ks_status ks_mkv_repair(const char *in, const char *out, ks_mkv_repair_report *report, ks_error *err)
{
    ks_mkv_repair_report rep;
    memset(&rep, 0, sizeof rep);
    ks_mkv_reader *r;
    ks_status st = ks_mkv_reader_open(in, &r, err);
    if (st)
        return ks_error_prefix(err, st, "cannot repair");
    rep.in_size = r->file_size;
    bool was_complete = r->info.segment_size_known && r->info.cue_count > 0 && !r->info.truncated;

    /* 1. walk the clusters, keep the complete ones */
    kept *kc = NULL;
    size_t nk = 0, capk = 0;
    int64_t last_time = 0;
    bool any_time = false;
    uint64_t last_cue = 0;
    bool have_cue = false;
    uint64_t first_time = 0;
    uint64_t off = r->info.first_cluster_offset ? r->info.first_cluster_offset : r->seg_end;
    uint64_t good_end = off;
    for (;;) {
        ks_mkv_cluster_loc loc;
        ks_error e2 = {0};
        st = ks_mkv_locate_cluster(r, off, &loc, &e2);
        if (st)
            break; /* EEOF or garbage: everything after good_end is dropped */
        st = ks_mkv_load_cluster(r, &loc, &e2);
        if (st)
            break;
        if (loc.partial) {
            /* the file ends inside this cluster: keep its complete blocks, with a size written anew */
            if (!r->nframes)
                break;
            loc.end = ks_mkv_loaded_end(r);
            loc.unknown_size = true;
        }
        if (nk == capk) {
            size_t cap = capk ? capk * 2 : 256;
            kept *q = realloc(kc, cap * sizeof *q);
            if (!q) {
                free(kc);
                ks_mkv_reader_close(r);
                return ks_error_set(err, KS_ENOMEM, "out of memory repairing %s", in);
            }
            kc = q;
            capk = cap;
        }
        kept k = {.loc = loc};
        if (!nk && r->nframes)
            first_time = r->frames[0].time > 0 ? (uint64_t)r->frames[0].time : 0;
        for (size_t i = 0; i < r->nframes; i++) {
            const ks_mkv_frame *f = &r->frames[i];
            if (!any_time || f->time > last_time)
                last_time = f->time;
            any_time = true;
            if (!k.cue && f->track == 1 && f->time >= 0) {
                uint64_t t = (uint64_t)f->time;
                uint64_t gap = (uint64_t)KS_MKV_CUE_GAP_US * 1000 / r->info.timecode_scale;
                if (!have_cue || t >= last_cue + gap) {
                    k.cue = true;
                    k.cue_time = t;
                    last_cue = t;
                    have_cue = true;
                }
                if (!k.cue)
                    break;
            }
        }
        kc[nk++] = k;
        good_end = loc.end;
        off = loc.end;
    }
    if (!nk) {
        /* a header without a single complete block: the SDK refuses such a file, so none is written */
        ks_error_set(err, KS_EPARSE,
                     "cannot repair %s: it holds no complete frame (the file ends %s); nothing to save, record again",
                     in, r->info.first_cluster_offset ? "inside its first cluster's header" : "before its first cluster");
        free(kc);
        ks_mkv_reader_close(r);
        return KS_EPARSE;
    }
    st = KS_OK;
    rep.clusters_kept = nk;
    if (nk && !have_cue) {
        /* no color block was kept (a partly written first cluster): the first cluster still gets a
         * cue, so the file has its index */
        kc[0].cue = true;
        kc[0].cue_time = first_time;
    }

    /* 2. header elements to keep (in file order before the first cluster, then any found through
     *    the SeekHead after the clusters) */
    uint64_t elems[64];
    int ne = 0;
    uint64_t p = r->seg_data;
    uint64_t stop = r->info.first_cluster_offset ? r->info.first_cluster_offset : r->seg_end;
    while (p < stop && ne < 60) {
        uint32_t id;
        uint64_t size;
        int hl;
        if (ks_mkv_read_header(r, p, &id, &size, &hl) != 1 || size == EBML_UNKNOWN_SIZE ||
            size > r->seg_end - p - (uint64_t)hl)
            break;
        if (id == ID_INFO || id == ID_TRACKS || id == ID_ATTACHMENTS || id == ID_TAGS || id == ID_CHAPTERS)
            elems[ne++] = p;
        p += (uint64_t)hl + size;
    }
    uint64_t late[4] = {r->pos_info, r->pos_tracks, r->pos_attach, r->pos_tags};
    for (int i = 0; i < 4; i++) {
        /* elements the walk did not reach (after the clusters, or past a damaged element) */
        bool seen = false;
        for (int j = 0; j < ne; j++)
            seen = seen || elems[j] == late[i];
        if (!seen && late[i] && late[i] < r->seg_end)
            elems[ne++] = late[i];
    }

    char *tmp = malloc(strlen(out) + 5);
    uint8_t *cbuf = malloc((size_t)8 << 20);
    ks_buf eb = {0}, ob = {0};
    out_file o = {.fd = -1};
    if (!tmp || !cbuf) {
        st = ks_error_set(err, KS_ENOMEM, "out of memory repairing %s", in);
        goto done;
    }
    sprintf(tmp, "%s.tmp", out);
    o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0) {
        st = ks_error_set(err, KS_EIO, "cannot create %s: %s; check that the directory is writable", tmp,
                          strerror(errno));
        goto done;
    }
    /* EBML header as it was */
    if (!copy_range(r, &o, 0, r->seg_start, cbuf, (size_t)8 << 20))
        goto ioerr;
    uint64_t seg_size_pos = o.pos + 4;
    static const uint8_t seg_hdr[12] = {0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    out_write(&o, seg_hdr, 12);
    uint64_t seg_data = o.pos;
    /* SeekHead placeholder: up to 5 entries of 21 bytes with 8-byte positions */
    uint64_t seek_pos = o.pos;
    size_t seek_len = 5 + 5 * 21;
    ks_buf_put_void(&ob, seek_len);
    out_write(&o, ob.data, ob.len);
    uint64_t pos_of[5] = {0}; /* info, tracks, attachments, tags, cues */
    double duration = any_time ? (double)last_time : 0;
    for (int i = 0; i < ne; i++) {
        uint32_t id;
        size_t hl;
        if (!read_element(r, elems[i], &id, &eb, &hl))
            continue;
        int slot = id == ID_INFO ? 0 : id == ID_TRACKS ? 1 : id == ID_ATTACHMENTS ? 2 : id == ID_TAGS ? 3 : -1;
        if (slot >= 0) {
            if (pos_of[slot])
                continue; /* keep the first of each */
            pos_of[slot] = o.pos;
        }
        if (id == ID_INFO) {
            ob.len = 0;
            ob.depth = 0;
            rebuild_info(&eb, hl, duration, &ob);
            out_write(&o, ob.data, ob.len);
        } else {
            out_write(&o, eb.data, eb.len);
        }
    }
    /* clusters, byte for byte (unknown sizes made known) */
    for (size_t i = 0; i < nk && !o.failed; i++) {
        const ks_mkv_cluster_loc *l = &kc[i].loc;
        kc[i].out_rel = o.pos - seg_data;
        if (l->unknown_size) {
            ob.len = 0;
            ks_buf_put_id(&ob, ID_CLUSTER);
            ks_buf_put_size(&ob, l->end - l->pos - (uint64_t)l->hlen, 8);
            out_write(&o, ob.data, ob.len);
            if (!copy_range(r, &o, l->pos + (uint64_t)l->hlen, l->end - l->pos - (uint64_t)l->hlen, cbuf,
                            (size_t)8 << 20))
                goto ioerr;
        } else if (!copy_range(r, &o, l->pos, l->end - l->pos, cbuf, (size_t)8 << 20)) {
            goto ioerr;
        }
    }
    /* Cues */
    ob.len = 0;
    ob.depth = 0;
    for (size_t i = 0; i < nk; i++) {
        if (!kc[i].cue)
            continue;
        if (!rep.cues_written)
            ks_buf_begin(&ob, ID_CUES);
        ks_buf_begin(&ob, ID_CUEPOINT);
        ks_buf_put_uint(&ob, ID_CUETIME, kc[i].cue_time);
        ks_buf_begin(&ob, ID_CUETRACKPOSITIONS);
        ks_buf_put_uint(&ob, ID_CUETRACK, 1);
        ks_buf_put_uint(&ob, ID_CUECLUSTERPOSITION, kc[i].out_rel);
        ks_buf_end(&ob);
        ks_buf_end(&ob);
        rep.cues_written++;
    }
    if (rep.cues_written) {
        ks_buf_end(&ob);
        pos_of[4] = o.pos;
        out_write(&o, ob.data, ob.len);
    }
    uint64_t end_pos = o.pos;
    /* SeekHead into its reserved place, with 8-byte positions so its size is known in advance */
    {
        static const uint32_t ids[5] = {ID_INFO, ID_TRACKS, ID_ATTACHMENTS, ID_TAGS, ID_CUES};
        ob.len = 0;
        ob.depth = 0;
        ks_buf_begin(&ob, ID_SEEKHEAD);
        for (int i = 0; i < 5; i++) {
            if (!pos_of[i])
                continue;
            uint8_t idb[4] = {(uint8_t)(ids[i] >> 24), (uint8_t)(ids[i] >> 16), (uint8_t)(ids[i] >> 8),
                              (uint8_t)ids[i]};
            ks_buf_begin(&ob, ID_SEEK);
            ks_buf_put_bin(&ob, ID_SEEKID, idb, 4);
            ks_buf_put_uint_fixed(&ob, ID_SEEKPOSITION, pos_of[i] - seg_data, 8);
            ks_buf_end(&ob);
        }
        ks_buf_end(&ob);
        if (ob.len + 2 <= seek_len)
            ks_buf_put_void(&ob, seek_len - ob.len);
        else if (ob.len != seek_len)
            ob.len = 0; /* cannot happen: 5 entries fit */
        uint64_t save = o.pos;
        o.pos = seek_pos;
        out_write(&o, ob.data, ob.len);
        uint8_t sz[8];
        uint64_t size = end_pos - seg_data;
        for (int k = 0; k < 8; k++)
            sz[k] = (uint8_t)(size >> (8 * (7 - k)));
        sz[0] = 0x01;
        o.pos = seg_size_pos;
        out_write(&o, sz, 8);
        o.pos = save;
    }
    if (o.failed || ob.oom || eb.oom)
        goto ioerr;
    if (fsync(o.fd) != 0)
        goto ioerr;
    close(o.fd);
    o.fd = -1;
    if (rename(tmp, out) != 0) {
        st = ks_error_set(err, KS_EIO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rep.out_size = end_pos;
    rep.bytes_dropped = rep.in_size > good_end ? rep.in_size - good_end : 0;
    rep.was_complete = was_complete;
    if (was_complete)
        rep.bytes_dropped = 0;
    st = KS_OK;
done:
    if (o.fd >= 0)
        close(o.fd);
    free(tmp);
    free(cbuf);
    ks_buf_free(&eb);
    ks_buf_free(&ob);
    free(kc);
    ks_mkv_reader_close(r);
    if (report)
        *report = rep;
    return st;
ioerr:
    st = ks_error_set(err, KS_EIO, "writing %s failed: %s; check free disk space", tmp,
                      strerror(o.err_no ? o.err_no : errno));
    if (o.fd >= 0) {
        close(o.fd);
        o.fd = -1;
    }
    unlink(tmp);
    goto done;
}
