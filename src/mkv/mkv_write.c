/* Matroska writer for Azure Kinect recordings (kinsync/mkv.h). The element order, sizes and
 * reserved Void areas follow what k4arecorder writes (docs/mkv.md): the header is written at open
 * with room reserved after SeekHead, Info and Tags, so that closing only rewrites those in place. */
#define _GNU_SOURCE /* sync_file_range */
#include "kinsync/mkv.h"
#include "kinsync/version.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mkv/ebml.h"
#include "mkv/mkv_internal.h"

struct pending {
    uint64_t ts;         /* device us (IMU: acc_ts_us) */
    int kind;
    ks_image *img;
    uint8_t imu[KS_MKV_IMU_SAMPLE_SIZE];
};

struct cue {
    uint64_t time, cluster_pos;
};

struct ks_mkv_writer {
    char *path, *part;
    int fd;
    ks_mkv_desc desc;
    char *calib;
    ks_mkv_writer_options opts;
    int track_num[KS_MKV_KIND_COUNT];   /* 0 = absent */
    uint64_t track_uid[KS_MKV_KIND_COUNT];
    uint64_t attach_uid;
    uint64_t rng;
    int cue_track_kind;                 /* kind of track number 1 */
    /* absolute offsets */
    uint64_t seg_size_pos, seg_data, seek_pos, info_pos, tracks_pos, attach_pos, tags_pos, tags_end;
    uint64_t file_pos;
    uint64_t synced_pos;                /* writeback started up to here */
    uint64_t dropped_pos;               /* written back and dropped from the page cache up to here */
    struct pending *pend;
    size_t npend, cappend;
    bool started;                       /* first cluster written */
    uint64_t offset_us;
    uint64_t last_written_ts;
    uint64_t newest_ts;
    bool any_data;
    struct cue *cues;
    size_t ncues, capcues;
    ks_buf cl;
    ks_mkv_writer_stats st;
    bool failed;
};

void ks_mkv_desc_init(ks_mkv_desc *d)
{
    memset(d, 0, sizeof *d);
    d->color_format = KS_FORMAT_MJPG;
    d->color_resolution = KS_COLOR_OFF;
    d->depth_mode = KS_DEPTH_OFF;
    d->fps = KS_FPS_30;
    d->sync_mode = KS_SYNC_STANDALONE;
}

const char *ks_mkv_track_kind_name(ks_mkv_track_kind k)
{
    static const char *const n[] = {"COLOR", "DEPTH", "IR", "IMU", "OTHER"};
    return (k >= 0 && k < KS_MKV_KIND_COUNT) ? n[k] : "OTHER";
}

static uint64_t next_uid(ks_mkv_writer *w)
{
    /* splitmix64, 60-bit non-zero like the SDK's UIDs */
    for (;;) {
        uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        z >>= 4;
        if (z)
            return z;
    }
}

static ks_status io_error(ks_mkv_writer *w, ks_error *err, const char *what)
{
    w->failed = true;
    return ks_error_set(err, KS_EIO, "%s: %s failed: %s; check free disk space and permissions", w->part, what,
                        strerror(errno));
}

static bool pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return true;
}

void ks_mkv_bitmap_header(uint8_t out[40], int width, int height, ks_image_format fmt)
{
    uint32_t bits = 0, size = 0;
    const char *cc = ks_image_format_fourcc(fmt);
    switch (fmt) {
    case KS_FORMAT_NV12: bits = 12; size = (uint32_t)width * (uint32_t)height * 3 / 2; break;
    case KS_FORMAT_YUY2: bits = 16; size = (uint32_t)width * (uint32_t)height * 2; break;
    case KS_FORMAT_MJPG: bits = 24; size = 0; break; /* variable size */
    case KS_FORMAT_BGRA32: bits = 32; size = (uint32_t)width * (uint32_t)height * 4; break;
    default: bits = 16; size = (uint32_t)width * (uint32_t)height * 2; break; /* b16g */
    }
    memset(out, 0, 40);
    ks_mkv_put_le32(out, 40);
    ks_mkv_put_le32(out + 4, (uint32_t)width);
    ks_mkv_put_le32(out + 8, (uint32_t)height);
    out[12] = 1;                      /* planes */
    out[14] = (uint8_t)bits;
    memcpy(out + 16, cc ? cc : "\0\0\0\0", 4);
    ks_mkv_put_le32(out + 20, size);
}

static void render_tag(ks_buf *b, const char *target, uint32_t target_id, uint64_t uid, const char *name,
                       const char *value)
{
    ks_buf_begin(b, ID_TAG);
    ks_buf_begin(b, ID_TARGETS);
    if (target) {
        ks_buf_put_str(b, ID_TARGETTYPE, target);
        ks_buf_put_uint_fixed(b, target_id, uid, 8);
    }
    ks_buf_end(b);
    ks_buf_begin(b, ID_SIMPLETAG);
    ks_buf_put_str(b, ID_TAGNAME, name);
    ks_buf_put_str(b, ID_TAGSTRING, value);
    ks_buf_end(b);
    ks_buf_end(b);
}

static void render_tags(ks_mkv_writer *w, ks_buf *b, bool with_offset)
{
    const ks_mkv_desc *d = &w->desc;
    char v[64];
    ks_buf_begin(b, ID_TAGS);
    if (w->track_num[KS_MKV_COLOR]) {
        uint64_t uid = w->track_uid[KS_MKV_COLOR];
        snprintf(v, sizeof v, "%llu", (unsigned long long)uid);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_COLOR_TRACK", v);
        snprintf(v, sizeof v, "%s_%s", ks_image_format_name(d->color_format),
                 ks_color_resolution_name(d->color_resolution));
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_COLOR_MODE", v);
    }
    if (d->depth_mode == KS_DEPTH_PASSIVE_IR)
        render_tag(b, NULL, 0, 0, "K4A_DEPTH_MODE", ks_depth_mode_name(d->depth_mode));
    if (w->track_num[KS_MKV_DEPTH]) {
        uint64_t uid = w->track_uid[KS_MKV_DEPTH];
        snprintf(v, sizeof v, "%llu", (unsigned long long)uid);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_DEPTH_TRACK", v);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_DEPTH_MODE", ks_depth_mode_name(d->depth_mode));
    }
    if (w->track_num[KS_MKV_IR]) {
        uint64_t uid = w->track_uid[KS_MKV_IR];
        snprintf(v, sizeof v, "%llu", (unsigned long long)uid);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_IR_TRACK", v);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_IR_MODE",
                   d->depth_mode == KS_DEPTH_PASSIVE_IR ? "PASSIVE" : "ACTIVE");
    }
    if (d->color_resolution != KS_COLOR_OFF && d->depth_mode != KS_DEPTH_OFF) {
        snprintf(v, sizeof v, "%lld", (long long)d->depth_delay_us * 1000);
        render_tag(b, NULL, 0, 0, "K4A_DEPTH_DELAY_NS", v);
    }
    render_tag(b, NULL, 0, 0, "K4A_WIRED_SYNC_MODE", ks_wired_sync_mode_name(d->sync_mode));
    if (d->sync_mode == KS_SYNC_SUBORDINATE) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)d->subordinate_delay_us * 1000);
        render_tag(b, NULL, 0, 0, "K4A_SUBORDINATE_DELAY_NS", v);
    }
    if (d->has_firmware) {
        ks_version_format(&d->color_fw, v, sizeof v);
        render_tag(b, NULL, 0, 0, "K4A_COLOR_FIRMWARE_VERSION", v);
        ks_version_format(&d->depth_fw, v, sizeof v);
        render_tag(b, NULL, 0, 0, "K4A_DEPTH_FIRMWARE_VERSION", v);
    }
    if (d->serial[0])
        render_tag(b, NULL, 0, 0, "K4A_DEVICE_SERIAL_NUMBER", d->serial);
    if (w->calib)
        render_tag(b, "ATTACHMENT", ID_TAGATTACHMENTUID, w->attach_uid, "K4A_CALIBRATION_FILE", "calibration.json");
    if (w->track_num[KS_MKV_IMU]) {
        uint64_t uid = w->track_uid[KS_MKV_IMU];
        snprintf(v, sizeof v, "%llu", (unsigned long long)uid);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_IMU_TRACK", v);
        render_tag(b, "TRACK", ID_TAGTRACKUID, uid, "K4A_IMU_MODE", "ON");
    }
    if (d->rig_name[0])
        render_tag(b, NULL, 0, 0, "KINSYNC_RIG", d->rig_name);
    if (d->role[0])
        render_tag(b, NULL, 0, 0, "KINSYNC_ROLE", d->role);
    if (d->plan_digest[0])
        render_tag(b, NULL, 0, 0, "KINSYNC_PLAN_DIGEST", d->plan_digest);
    if (d->color_exposure_us > 0) {
        snprintf(v, sizeof v, "%ld", (long)d->color_exposure_us);
        render_tag(b, NULL, 0, 0, "KINSYNC_COLOR_EXPOSURE_US", v);
    }
    if (d->timestamps[0])
        render_tag(b, NULL, 0, 0, "KINSYNC_TIMESTAMPS", d->timestamps);
    if (with_offset) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)w->offset_us * 1000);
        render_tag(b, NULL, 0, 0, "K4A_START_OFFSET_NS", v);
    }
    ks_buf_end_crc(b);
}

static void render_track(ks_mkv_writer *w, ks_buf *b, int kind, const char *name, int width, int height,
                         ks_image_format fmt)
{
    ks_buf_begin(b, ID_TRACKENTRY);
    ks_buf_put_uint(b, ID_TRACKNUMBER, (uint64_t)w->track_num[kind]);
    ks_buf_put_uint_fixed(b, ID_TRACKUID, w->track_uid[kind], 8);
    if (kind == KS_MKV_IMU) {
        ks_buf_put_uint(b, ID_TRACKTYPE, 0x11);
        ks_buf_put_str(b, ID_CODECID, "S_K4A/IMU");
        ks_buf_put_str(b, ID_NAME, name);
    } else {
        uint8_t bih[40];
        ks_mkv_bitmap_header(bih, width, height, fmt);
        ks_buf_put_uint(b, ID_TRACKTYPE, 1);
        ks_buf_put_str(b, ID_CODECID, "V_MS/VFW/FOURCC");
        ks_buf_put_str(b, ID_NAME, name);
        ks_buf_put_bin(b, ID_CODECPRIVATE, bih, 40);
        ks_buf_put_uint(b, ID_DEFAULTDURATION, 1000000000ull / (uint64_t)ks_fps_hz(w->desc.fps));
        ks_buf_begin(b, ID_VIDEO);
        ks_buf_put_uint(b, ID_PIXELWIDTH, (uint64_t)width);
        ks_buf_put_uint(b, ID_PIXELHEIGHT, (uint64_t)height);
        ks_buf_end(b);
    }
    ks_buf_end(b);
}

static void render_seekhead(ks_mkv_writer *w, ks_buf *b, uint64_t cues_pos)
{
    struct { uint32_t id; uint64_t pos; } e[5] = {
        {ID_INFO, w->info_pos}, {ID_TRACKS, w->tracks_pos}, {ID_ATTACHMENTS, w->attach_pos},
        {ID_TAGS, w->tags_pos}, {ID_CUES, cues_pos}};
    ks_buf_begin(b, ID_SEEKHEAD);
    for (int i = 0; i < 5; i++) {
        if (!e[i].pos)
            continue;
        uint8_t id[4] = {(uint8_t)(e[i].id >> 24), (uint8_t)(e[i].id >> 16), (uint8_t)(e[i].id >> 8),
                         (uint8_t)e[i].id};
        ks_buf_begin(b, ID_SEEK);
        ks_buf_put_bin(b, ID_SEEKID, id, 4);
        ks_buf_put_uint(b, ID_SEEKPOSITION, e[i].pos - w->seg_data);
        ks_buf_end(b);
    }
    ks_buf_end(b);
}

static void render_info(ks_mkv_writer *w, ks_buf *b, bool with_duration, double duration)
{
    char app[64];
    snprintf(app, sizeof app, "kinsync-%s", ks_version_string());
    ks_buf_begin(b, ID_INFO);
    ks_buf_put_uint(b, ID_TIMECODESCALE, KS_MKV_TIMECODE_SCALE);
    ks_buf_put_str(b, ID_MUXINGAPP, "kinsync-mkv");
    ks_buf_put_str(b, ID_WRITINGAPP, w->opts.writing_app ? w->opts.writing_app : app);
    int64_t unix_s = w->opts.date_utc_s ? w->opts.date_utc_s : (int64_t)time(NULL);
    ks_buf_put_uint_fixed(b, ID_DATEUTC, (uint64_t)((unix_s - 978307200ll) * 1000000000ll), 8);
    ks_buf_put_str(b, ID_TITLE, "Azure Kinect");
    if (with_duration)
        ks_buf_put_float(b, ID_DURATION, duration);
    ks_buf_end(b);
}

static ks_status check_desc(const ks_mkv_desc *d, const char *path, ks_error *err)
{
    if (d->fps < 0 || d->fps >= KS_FPS_COUNT)
        return ks_error_set(err, KS_EINVAL, "%s: invalid fps %d; use 5, 15 or 30", path, (int)d->fps);
    if (d->color_resolution != KS_COLOR_OFF) {
        const ks_color_resolution_info *ci = ks_color_resolution_get(d->color_resolution);
        if (!ci)
            return ks_error_set(err, KS_EINVAL, "%s: invalid color resolution %d", path, (int)d->color_resolution);
        if (d->color_format < 0 || d->color_format >= KS_FORMAT_COUNT || !(ci->format_mask & (1u << d->color_format)))
            return ks_error_set(err, KS_EINVAL, "%s: color format %s is not available at %s; use MJPG", path,
                                ks_image_format_name(d->color_format), ci->name);
        if (!(ci->fps_mask & (1u << d->fps)))
            return ks_error_set(err, KS_EINVAL, "%s: %d fps is not available at color %s", path, ks_fps_hz(d->fps),
                                ci->name);
    }
    if (d->depth_mode != KS_DEPTH_OFF) {
        const ks_depth_mode_info *di = ks_depth_mode_get(d->depth_mode);
        if (!di)
            return ks_error_set(err, KS_EINVAL, "%s: invalid depth mode %d", path, (int)d->depth_mode);
        if (!(di->fps_mask & (1u << d->fps)))
            return ks_error_set(err, KS_EINVAL, "%s: %d fps is not available in depth mode %s; use 15 or 5", path,
                                ks_fps_hz(d->fps), di->name);
    }
    if (d->sync_mode < 0 || d->sync_mode >= KS_SYNC_MODE_COUNT)
        return ks_error_set(err, KS_EINVAL, "%s: invalid wired sync mode %d", path, (int)d->sync_mode);
    return KS_OK;
}

ks_status ks_mkv_writer_open(const char *path, const ks_mkv_desc *desc, const ks_mkv_writer_options *opts,
                             ks_mkv_writer **out, ks_error *err)
{
    *out = NULL;
    if (!path || !desc)
        return ks_error_set(err, KS_EINVAL, "ks_mkv_writer_open: path and description are required");
    ks_status st = check_desc(desc, path, err);
    if (st)
        return st;
    ks_mkv_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ks_error_set(err, KS_ENOMEM, "out of memory opening %s", path);
    w->fd = -1;
    w->desc = *desc;
    if (opts)
        w->opts = *opts;
    if (!w->opts.reorder_window_us)
        w->opts.reorder_window_us = 100000;
    w->path = strdup(path);
    w->part = malloc(strlen(path) + 6);
    if (w->part)
        sprintf(w->part, "%s.part", path);
    if (desc->calibration_json && desc->calibration_len) {
        size_t n = desc->calibration_len;
        while (n && desc->calibration_json[n - 1] == '\0')
            n--; /* the SDK drops the trailing NUL */
        w->calib = malloc(n + 1);
        if (w->calib) {
            memcpy(w->calib, desc->calibration_json, n);
            w->calib[n] = 0;
        }
        w->desc.calibration_len = n;
    }
    w->desc.calibration_json = w->calib;
    if (!w->path || !w->part || (desc->calibration_json && desc->calibration_len && !w->calib)) {
        ks_mkv_writer_abort(w);
        return ks_error_set(err, KS_ENOMEM, "out of memory opening %s", path);
    }
    if (w->opts.uid_seed) {
        w->rng = w->opts.uid_seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        w->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)w;
    }
    int num = 0;
    const ks_color_resolution_info *ci = ks_color_resolution_get(desc->color_resolution);
    const ks_depth_mode_info *di = ks_depth_mode_get(desc->depth_mode);
    w->cue_track_kind = -1;
    if (ci)
        w->track_num[KS_MKV_COLOR] = ++num;
    if (di && desc->depth_mode != KS_DEPTH_PASSIVE_IR)
        w->track_num[KS_MKV_DEPTH] = ++num;
    if (di)
        w->track_num[KS_MKV_IR] = ++num;
    if (desc->imu)
        w->track_num[KS_MKV_IMU] = ++num;
    for (int k = 0; k < KS_MKV_KIND_COUNT; k++) {
        if (w->track_num[k])
            w->track_uid[k] = next_uid(w);
        if (w->track_num[k] == 1)
            w->cue_track_kind = k;
    }
    if (w->calib)
        w->attach_uid = next_uid(w);

    /* ---- header ---- */
    ks_buf h = {0}, tracks = {0}, att = {0}, tags = {0}, tmp = {0};
    ks_buf_begin(&h, ID_EBML);
    ks_buf_put_uint(&h, ID_EBMLVERSION, 1);
    ks_buf_put_uint(&h, ID_EBMLREADVERSION, 1);
    ks_buf_put_uint(&h, ID_EBMLMAXIDLENGTH, 4);
    ks_buf_put_uint(&h, ID_EBMLMAXSIZELENGTH, 8);
    ks_buf_put_str(&h, ID_DOCTYPE, "matroska");
    ks_buf_put_uint(&h, ID_DOCTYPEVERSION, 2);
    ks_buf_put_uint(&h, ID_DOCTYPEREADVERSION, 2);
    ks_buf_end(&h);
    ks_buf_put_id(&h, ID_SEGMENT);
    w->seg_size_pos = h.len;
    static const uint8_t unknown8[8] = {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    ks_buf_put(&h, unknown8, 8);
    w->seg_data = h.len;
    w->seek_pos = h.len;
    w->info_pos = w->seek_pos + KS_MKV_SEEK_REGION;
    w->tracks_pos = w->info_pos + KS_MKV_INFO_REGION;

    ks_buf_begin(&tracks, ID_TRACKS);
    if (ci)
        render_track(w, &tracks, KS_MKV_COLOR, "COLOR", ci->width, ci->height, desc->color_format);
    if (w->track_num[KS_MKV_DEPTH])
        render_track(w, &tracks, KS_MKV_DEPTH, "DEPTH", di->width, di->height, KS_FORMAT_DEPTH16);
    if (w->track_num[KS_MKV_IR])
        render_track(w, &tracks, KS_MKV_IR, "IR", di->width, di->height, KS_FORMAT_IR16);
    if (w->track_num[KS_MKV_IMU])
        render_track(w, &tracks, KS_MKV_IMU, "IMU", 0, 0, KS_FORMAT_CUSTOM);
    ks_buf_end(&tracks);
    uint64_t pos = w->tracks_pos + tracks.len;
    if (w->calib) {
        w->attach_pos = pos;
        ks_buf_begin(&att, ID_ATTACHMENTS);
        ks_buf_begin(&att, ID_ATTACHEDFILE);
        ks_buf_put_str(&att, ID_FILENAME, "calibration.json");
        ks_buf_put_str(&att, ID_FILEMIMETYPE, "application/octet-stream");
        ks_buf_put_bin(&att, ID_FILEDATA, w->calib, w->desc.calibration_len);
        ks_buf_put_uint_fixed(&att, ID_FILEUID, w->attach_uid, 8);
        ks_buf_end(&att);
        ks_buf_end(&att);
        pos += att.len;
    }
    w->tags_pos = pos;
    render_tags(w, &tags, false);
    w->tags_end = w->tags_pos + tags.len + KS_MKV_TAGS_VOID;

    render_seekhead(w, &tmp, 0);
    ks_buf_put(&h, tmp.data, tmp.len);
    ks_buf_put_void(&h, KS_MKV_SEEK_REGION - tmp.len);
    tmp.len = 0;
    render_info(w, &tmp, false, 0);
    ks_buf_put(&h, tmp.data, tmp.len);
    ks_buf_put_void(&h, KS_MKV_INFO_REGION - tmp.len);
    ks_buf_put(&h, tracks.data, tracks.len);
    ks_buf_put(&h, att.data, att.len);
    ks_buf_put(&h, tags.data, tags.len);
    ks_buf_put_void(&h, KS_MKV_TAGS_VOID);
    bool oom = h.oom || tracks.oom || att.oom || tags.oom || tmp.oom;
    ks_buf_free(&tracks);
    ks_buf_free(&att);
    ks_buf_free(&tags);
    ks_buf_free(&tmp);
    if (oom) {
        ks_buf_free(&h);
        ks_mkv_writer_abort(w);
        return ks_error_set(err, KS_ENOMEM, "out of memory writing the header of %s", path);
    }
    w->fd = open(w->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        st = ks_error_set(err, errno == ENOENT ? KS_ENOTFOUND : KS_EIO,
                          "cannot create %s: %s; check that the directory exists and is writable", w->part,
                          strerror(errno));
        ks_buf_free(&h);
        ks_mkv_writer_abort(w);
        return st;
    }
    if (!pwrite_all(w->fd, h.data, h.len, 0)) {
        st = io_error(w, err, "writing the header");
        ks_buf_free(&h);
        ks_mkv_writer_abort(w);
        return st;
    }
    w->file_pos = h.len;
    w->st.bytes = h.len;
    ks_buf_free(&h);
    *out = w;
    return KS_OK;
}

static ks_status rewrite_tags(ks_mkv_writer *w, ks_error *err)
{
    ks_buf t = {0};
    render_tags(w, &t, true);
    size_t region = (size_t)(w->tags_end - w->tags_pos);
    if (t.oom || t.len + 2 > region) {
        ks_buf_free(&t);
        w->failed = true;
        return ks_error_set(err, KS_ENOMEM, "%s: tags do not fit the reserved space", w->part);
    }
    ks_buf_put_void(&t, region - t.len);
    bool ok = !t.oom && pwrite_all(w->fd, t.data, t.len, w->tags_pos);
    ks_buf_free(&t);
    return ok ? KS_OK : io_error(w, err, "rewriting the tags");
}

ks_status ks_mkv_writer_set_timestamps(ks_mkv_writer *w, const char *name, ks_error *err)
{
    if (!w || !name)
        return ks_error_set(err, KS_EINVAL, "ks_mkv_writer_set_timestamps: missing argument");
    snprintf(w->desc.timestamps, sizeof w->desc.timestamps, "%s", name);
    return w->started && !w->failed ? rewrite_tags(w, err) : KS_OK;
}

static void put_block_header(ks_buf *b, int track, int16_t rel, uint8_t flags)
{
    uint8_t h[4] = {(uint8_t)(0x80 | track), (uint8_t)((uint16_t)rel >> 8), (uint8_t)((uint16_t)rel & 0xFF), flags};
    ks_buf_put(b, h, 4);
}

static void put_swapped16(ks_buf *b, const uint8_t *src, size_t n)
{
    if (!ks_buf_reserve(b, n))
        return;
    ks_mkv_swap16(b->data + b->len, src, n);
    b->len += n;
}

/* Writes one cluster with the pending items in [t0, t0 + 32 ms). */
static ks_status flush_cluster(ks_mkv_writer *w, ks_error *err)
{
    if (!w->npend)
        return KS_OK;
    uint64_t t0 = w->pend[0].ts;
    size_t n = 0;
    while (n < w->npend && w->pend[n].ts < t0 + KS_MKV_MAX_CLUSTER_US)
        n++;
    if (!w->started) {
        w->started = true;
        w->offset_us = t0;
        w->st.start_offset_us = t0;
        ks_status st = rewrite_tags(w, err);
        if (st)
            return st;
    }
    ks_buf *b = &w->cl;
    b->len = 0;
    b->depth = 0;
    static const uint8_t zero[18];
    size_t prefix = 12 + (w->opts.cluster_crc ? 6 : 0);
    ks_buf_put(b, zero, prefix);
    uint64_t ctime = t0 - w->offset_us;
    ks_buf_put_uint(b, ID_TIMECODE, ctime);
    bool cue_done = false;
    uint64_t cluster_rel = w->file_pos - w->seg_data;
    for (size_t i = 0; i < n;) {
        struct pending *p = &w->pend[i];
        int tn = w->track_num[p->kind];
        int16_t rel = (int16_t)(p->ts - t0);
        if (p->kind == KS_MKV_IMU) {
            size_t j = i;
            while (j < n && w->pend[j].kind == KS_MKV_IMU && j - i < 256)
                j++;
            size_t cnt = j - i;
            size_t data = cnt * KS_MKV_IMU_SAMPLE_SIZE + (cnt > 1 ? 1 : 0);
            ks_buf b2 = {0};
            (void)b2;
            uint64_t dur = w->pend[j - 1].ts - p->ts + 1;
            /* BlockGroup = Block + BlockDuration */
            size_t blk = 4 + data;
            size_t durlen = 1;
            while (durlen < 8 && (dur >> (8 * durlen)))
                durlen++;
            size_t grp = 1 + (size_t)ebml_size_len(blk) + blk + 2 + durlen;
            ks_buf_put_id(b, ID_BLOCKGROUP);
            ks_buf_put_size(b, grp, 0);
            ks_buf_put_id(b, ID_BLOCK);
            ks_buf_put_size(b, blk, 0);
            put_block_header(b, tn, rel, cnt > 1 ? 0x04 : 0x00);
            if (cnt > 1) {
                uint8_t c = (uint8_t)(cnt - 1);
                ks_buf_put(b, &c, 1);
            }
            for (size_t k = i; k < j; k++)
                ks_buf_put(b, w->pend[k].imu, KS_MKV_IMU_SAMPLE_SIZE);
            ks_buf_put_uint(b, ID_BLOCKDURATION, dur);
            w->st.frames[KS_MKV_IMU] += cnt;
            i = j;
            continue;
        }
        ks_image *img = p->img;
        ks_buf_put_id(b, ID_SIMPLEBLOCK);
        ks_buf_put_size(b, 4 + img->size, 0);
        put_block_header(b, tn, rel, 0x80);
        if (p->kind == KS_MKV_DEPTH || p->kind == KS_MKV_IR)
            put_swapped16(b, img->data, img->size);
        else
            ks_buf_put(b, img->data, img->size);
        w->st.frames[p->kind]++;
        if (!cue_done && tn == 1) {
            cue_done = true;
            uint64_t bt = p->ts - w->offset_us;
            if (!w->ncues || bt >= w->cues[w->ncues - 1].time + KS_MKV_CUE_GAP_US) {
                if (w->ncues == w->capcues) {
                    size_t cap = w->capcues ? w->capcues * 2 : 64;
                    struct cue *c = realloc(w->cues, cap * sizeof *c);
                    if (c) {
                        w->cues = c;
                        w->capcues = cap;
                    }
                }
                if (w->ncues < w->capcues)
                    w->cues[w->ncues++] = (struct cue){bt, cluster_rel};
            }
        }
        i++;
    }
    if (b->oom) {
        w->failed = true;
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory building a cluster", w->part);
    }
    uint64_t size = b->len - 12;
    int sl = ebml_size_len(size);
    size_t start = 12 - 4 - (size_t)sl;
    uint8_t *h = b->data + start;
    h[0] = 0x1F; h[1] = 0x43; h[2] = 0xB6; h[3] = 0x75;
    for (int k = 0; k < sl; k++)
        h[4 + k] = (uint8_t)(size >> (8 * (sl - 1 - k)));
    h[4] |= (uint8_t)(0x80 >> (sl - 1));
    if (w->opts.cluster_crc) {
        uint32_t c = ks_crc32(b->data + 18, b->len - 18);
        uint8_t *q = b->data + 12;
        q[0] = ID_CRC32;
        q[1] = 0x84;
        for (int k = 0; k < 4; k++)
            q[2 + k] = (uint8_t)(c >> (8 * k));
    }
    if (!pwrite_all(w->fd, b->data + start, b->len - start, w->file_pos))
        return io_error(w, err, "writing a cluster");
    w->file_pos += b->len - start;
    w->st.bytes = w->file_pos;
    /* Start writeback every 16 MB and drop what was written back before, so a long recording
     * neither piles up dirty pages (the kernel would then make this thread write them back)
     * nor evicts the rest of the page cache; it also keeps the data on disk current. */
    if (!w->opts.keep_page_cache && w->file_pos - w->synced_pos >= KS_MKV_WRITEBACK_CHUNK) {
#ifdef __linux__
        (void)sync_file_range(w->fd, (off64_t)w->synced_pos, (off64_t)(w->file_pos - w->synced_pos),
                              SYNC_FILE_RANGE_WRITE);
        if (w->synced_pos > w->dropped_pos) {
            (void)sync_file_range(w->fd, (off64_t)w->dropped_pos, (off64_t)(w->synced_pos - w->dropped_pos),
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            (void)posix_fadvise(w->fd, (off_t)w->dropped_pos, (off_t)(w->synced_pos - w->dropped_pos),
                                POSIX_FADV_DONTNEED);
            w->dropped_pos = w->synced_pos;
        }
#endif
        w->synced_pos = w->file_pos;
    }
    w->st.clusters++;
    w->st.cues = w->ncues;
    w->last_written_ts = w->pend[n - 1].ts;
    for (size_t k = 0; k < n; k++)
        ks_image_release(w->pend[k].img);
    memmove(w->pend, w->pend + n, (w->npend - n) * sizeof *w->pend);
    w->npend -= n;
    /* keep the cluster buffer from growing without bound after a huge cluster */
    if (w->cl.cap > ((size_t)64 << 20)) {
        ks_buf_free(&w->cl);
    }
    return KS_OK;
}

static ks_status add_pending(ks_mkv_writer *w, struct pending *p, ks_error *err)
{
    if (w->failed)
        return ks_error_set(err, KS_ESTATE, "%s: an earlier write failed; the file can be fixed with kinsync repair",
                            w->part);
    if (w->started && p->ts < w->last_written_ts) {
        ks_image_release(p->img);
        return ks_error_set(err, KS_ESTATE,
                            "%s: %s data at %llu us arrived after the cluster holding %llu us was written; "
                            "raise reorder_window_us",
                            w->part, ks_mkv_track_kind_name((ks_mkv_track_kind)p->kind), (unsigned long long)p->ts,
                            (unsigned long long)w->last_written_ts);
    }
    if (w->npend == w->cappend) {
        size_t cap = w->cappend ? w->cappend * 2 : 256;
        struct pending *q = realloc(w->pend, cap * sizeof *q);
        if (!q) {
            ks_image_release(p->img);
            return ks_error_set(err, KS_ENOMEM, "%s: out of memory queueing a frame", w->part);
        }
        w->pend = q;
        w->cappend = cap;
    }
    size_t i = w->npend;
    while (i > 0 && w->pend[i - 1].ts > p->ts)
        i--;
    memmove(w->pend + i + 1, w->pend + i, (w->npend - i) * sizeof *w->pend);
    w->pend[i] = *p;
    w->npend++;
    if (!w->any_data || p->ts < w->st.first_ts_us)
        w->st.first_ts_us = p->ts;
    if (!w->any_data || p->ts > w->newest_ts)
        w->newest_ts = p->ts;
    w->st.last_ts_us = w->newest_ts;
    w->any_data = true;
    while (w->npend && w->newest_ts >= w->pend[0].ts + KS_MKV_MAX_CLUSTER_US + w->opts.reorder_window_us) {
        ks_status st = flush_cluster(w, err);
        if (st)
            return st;
    }
    return KS_OK;
}

ks_status ks_mkv_writer_add_image(ks_mkv_writer *w, ks_mkv_track_kind kind, ks_image *img, ks_error *err)
{
    if (!w || !img || kind < 0 || kind > KS_MKV_IR)
        return ks_error_set(err, KS_EINVAL, "ks_mkv_writer_add_image: writer, image and a video track are required");
    if (!w->track_num[kind])
        return ks_error_set(err, KS_EINVAL, "%s: the recording has no %s track (check the description's modes)",
                            w->part, ks_mkv_track_kind_name(kind));
    if (!img->data || !img->size)
        return ks_error_set(err, KS_EINVAL, "%s: empty %s image at %llu us", w->part, ks_mkv_track_kind_name(kind),
                            (unsigned long long)img->device_ts_us);
    if (img->size > ((size_t)1 << 30))
        return ks_error_set(err, KS_EINVAL, "%s: %s image of %zu bytes is too large", w->part,
                            ks_mkv_track_kind_name(kind), img->size);
    if (kind == KS_MKV_COLOR) {
        if (img->format != w->desc.color_format)
            return ks_error_set(err, KS_EINVAL, "%s: color image is %s but the recording is %s", w->part,
                                ks_image_format_name(img->format), ks_image_format_name(w->desc.color_format));
    } else {
        const ks_depth_mode_info *di = ks_depth_mode_get(w->desc.depth_mode);
        size_t need = (size_t)di->width * (size_t)di->height * 2;
        if ((img->format != KS_FORMAT_DEPTH16 && img->format != KS_FORMAT_IR16) || img->size != need)
            return ks_error_set(err, KS_EINVAL, "%s: %s image must be 16-bit %dx%d (%zu bytes), got %s of %zu bytes",
                                w->part, ks_mkv_track_kind_name(kind), di->width, di->height, need,
                                ks_image_format_name(img->format), img->size);
    }
    struct pending p = {.ts = img->device_ts_us, .kind = kind, .img = ks_image_ref(img)};
    return add_pending(w, &p, err);
}

ks_status ks_mkv_writer_add_capture(ks_mkv_writer *w, const ks_capture *cap, ks_error *err)
{
    if (!w || !cap)
        return ks_error_set(err, KS_EINVAL, "ks_mkv_writer_add_capture: writer and capture are required");
    ks_image *imgs[3] = {cap->color, cap->depth, cap->ir};
    for (int k = 0; k < 3; k++) {
        if (!imgs[k])
            continue;
        ks_status st = ks_mkv_writer_add_image(w, (ks_mkv_track_kind)k, imgs[k], err);
        if (st)
            return st;
    }
    return KS_OK;
}

ks_status ks_mkv_writer_add_imu(ks_mkv_writer *w, const ks_imu_sample *s, ks_error *err)
{
    if (!w || !s)
        return ks_error_set(err, KS_EINVAL, "ks_mkv_writer_add_imu: writer and sample are required");
    if (!w->track_num[KS_MKV_IMU])
        return ks_error_set(err, KS_EINVAL, "%s: the recording has no IMU track (set imu in the description)",
                            w->part);
    struct pending p = {.ts = s->acc_ts_us, .kind = KS_MKV_IMU};
    ks_mkv_imu_encode(p.imu, s);
    return add_pending(w, &p, err);
}

void ks_mkv_writer_get_stats(const ks_mkv_writer *w, ks_mkv_writer_stats *st)
{
    *st = w->st;
}

static void writer_free(ks_mkv_writer *w)
{
    for (size_t k = 0; k < w->npend; k++)
        ks_image_release(w->pend[k].img);
    free(w->pend);
    free(w->cues);
    ks_buf_free(&w->cl);
    free(w->calib);
    free(w->path);
    free(w->part);
    free(w);
}

void ks_mkv_writer_abort(ks_mkv_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->part);
    }
    writer_free(w);
}

ks_status ks_mkv_writer_close(ks_mkv_writer *w, ks_error *err)
{
    if (!w)
        return KS_OK;
    ks_status st = KS_OK;
    if (w->failed) {
        st = ks_error_set(err, KS_EIO, "%s: an earlier write failed; the file was left for 'kinsync repair'",
                          w->part);
        close(w->fd);
        writer_free(w);
        return st;
    }
    while (!st && w->npend)
        st = flush_cluster(w, err);
    uint64_t cues_pos = 0;
    ks_buf b = {0};
    if (!st && w->ncues) {
        cues_pos = w->file_pos;
        ks_buf_begin(&b, ID_CUES);
        for (size_t i = 0; i < w->ncues; i++) {
            ks_buf_begin(&b, ID_CUEPOINT);
            ks_buf_put_uint(&b, ID_CUETIME, w->cues[i].time);
            ks_buf_begin(&b, ID_CUETRACKPOSITIONS);
            ks_buf_put_uint(&b, ID_CUETRACK, 1);
            ks_buf_put_uint(&b, ID_CUECLUSTERPOSITION, w->cues[i].cluster_pos);
            ks_buf_end(&b);
            ks_buf_end(&b);
        }
        ks_buf_end(&b);
        if (b.oom)
            st = ks_error_set(err, KS_ENOMEM, "%s: out of memory writing Cues", w->part);
        else if (!pwrite_all(w->fd, b.data, b.len, w->file_pos))
            st = io_error(w, err, "writing Cues");
        else
            w->file_pos += b.len;
    }
    if (!st) {
        b.len = 0;
        b.depth = 0;
        render_seekhead(w, &b, cues_pos);
        ks_buf_put_void(&b, KS_MKV_SEEK_REGION - b.len);
        if (b.oom || !pwrite_all(w->fd, b.data, b.len, w->seek_pos))
            st = io_error(w, err, "writing the SeekHead");
    }
    if (!st) {
        b.len = 0;
        b.depth = 0;
        double dur = w->started ? (double)(w->newest_ts - w->offset_us) : 0;
        render_info(w, &b, true, dur);
        ks_buf_put_void(&b, KS_MKV_INFO_REGION - b.len);
        if (b.oom || !pwrite_all(w->fd, b.data, b.len, w->info_pos))
            st = io_error(w, err, "writing Info");
    }
    if (!st) {
        uint8_t sz[8];
        uint64_t size = w->file_pos - w->seg_data;
        for (int k = 0; k < 8; k++)
            sz[k] = (uint8_t)(size >> (8 * (7 - k)));
        sz[0] = 0x01;
        if (!pwrite_all(w->fd, sz, 8, w->seg_size_pos))
            st = io_error(w, err, "writing the Segment size");
    }
    ks_buf_free(&b);
    if (!st && fsync(w->fd) != 0)
        st = io_error(w, err, "fsync");
    if (close(w->fd) != 0 && !st)
        st = io_error(w, err, "close");
    w->fd = -1;
    if (!st && rename(w->part, w->path) != 0)
        st = ks_error_set(err, KS_EIO, "cannot rename %s to %s: %s", w->part, w->path, strerror(errno));
    writer_free(w);
    return st;
}
