/* Exporting aligned frame sets (ks_align_export, kinsync/align.h): every member file is played
 * once more from the start and each capture that belongs to a set is written into that set's
 * directory; index.json is written last (through a temporary name) so a directory with an
 * index.json is a complete export. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kinsync/align.h"
#include "kinsync/playback.h"
#include "align/align_internal.h"
#include "util/fileio.h"
#include "util/png16.h"

static ks_status mkdir_p1(const char *dir, ks_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ks_error_set(err, KS_EIO, "cannot create %s: %s", dir, strerror(errno));
    return KS_OK;
}

static ks_status write_png16(const char *path, const ks_image *img, ks_error *err)
{
    return ks_png16_write(path, img->data, img->width, img->height, (size_t)img->stride, 1, err);
}

static ks_status write_raw(const char *path, const ks_image *img, ks_error *err)
{
    return ks_file_write_atomic(path, img->data, img->size, err);
}

static void stem(const ks_align_file *f, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%s", f->role, f->serial[0] ? f->serial : "unknown");
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            *p = '_';
}

static ks_status export_file(const ks_align_result *r, int fi, const int32_t *set_of, const char *dir, ks_error *err)
{
    const ks_align_file *f = &r->files[fi];
    ks_backend *b = NULL;
    ks_device *d = NULL;
    ks_status st = ks_align_open_recording(f->path, &b, &d, err);
    if (st != KS_OK && !b)
        return st;
    char base[128];
    stem(f, base, sizeof base);
    /* the aligned frames are the file's captures that joined a set, in order: find each by its
     * timestamps (a capture the matcher discarded has none) */
    size_t k = 0;
    while (st == KS_OK && k < f->frame_count) {
        ks_capture *c = NULL;
        st = ks_device_get_capture(d, &c, 0, err);
        if (st != KS_OK)
            break;
        const ks_align_frame *fr = &f->frames[k];
        bool same = (c->color ? fr->has_color && c->color->device_ts_us == fr->color_ts_us : !fr->has_color) &&
                    (c->depth ? fr->has_depth && c->depth->device_ts_us == fr->depth_ts_us : !fr->has_depth) &&
                    (c->ir ? fr->has_ir && c->ir->device_ts_us == fr->ir_ts_us : !fr->has_ir);
        if (!same) {
            ks_capture_release(c);
            continue;
        }
        if (set_of[k++] >= 0) {
            char path[1200];
            if (c->color) {
                snprintf(path, sizeof path, "%s/%06d/%s-color.%s", dir, set_of[k - 1], base,
                         c->color->format == KS_FORMAT_MJPG ? "jpg" : "raw");
                st = write_raw(path, c->color, err);
            }
            if (st == KS_OK && c->depth) {
                snprintf(path, sizeof path, "%s/%06d/%s-depth.png", dir, set_of[k - 1], base);
                st = write_png16(path, c->depth, err);
            }
            if (st == KS_OK && c->ir) {
                snprintf(path, sizeof path, "%s/%06d/%s-ir.png", dir, set_of[k - 1], base);
                st = write_png16(path, c->ir, err);
            }
        }
        ks_capture_release(c);
    }
    if (st == KS_EEOF)
        st = ks_error_set(err, KS_EIO, "%s ended before its frame %zu; was it changed since it was aligned?", f->path,
                          f->frame_count);
    ks_device_close(d);
    ks_backend_free(b);
    return st;
}

static json_t *image_entry(const char *name, uint64_t ts)
{
    return json_pack("{s:s, s:I}", "file", name, "device_ts_us", (json_int_t)ts);
}

ks_status ks_align_export(const ks_align_result *r, const char *dir, size_t max_sets, ks_error *err)
{
    if (!r || !dir)
        return ks_error_set(err, KS_EINVAL, "ks_align_export: result and directory are required");
    size_t nsets = max_sets && max_sets < r->set_count ? max_sets : r->set_count;
    ks_status st = mkdir_p1(dir, err);
    for (size_t k = 0; k < nsets && st == KS_OK; k++) {
        char sub[1100];
        snprintf(sub, sizeof sub, "%s/%06zu", dir, k);
        st = mkdir_p1(sub, err);
    }
    for (int i = 0; i < r->file_count && st == KS_OK; i++) {
        const ks_align_file *f = &r->files[i];
        if (!f->member)
            continue;
        int32_t *set_of = malloc((f->frame_count ? f->frame_count : 1) * sizeof *set_of);
        if (!set_of)
            return ks_error_set(err, KS_ENOMEM, "out of memory exporting");
        for (size_t k = 0; k < f->frame_count; k++)
            set_of[k] = -1;
        for (size_t k = 0; k < nsets; k++)
            if (r->sets[k].frame[i] >= 0)
                set_of[r->sets[k].frame[i]] = (int32_t)k;
        st = export_file(r, i, set_of, dir, err);
        free(set_of);
    }
    if (st != KS_OK)
        return st;
    json_t *root = json_object();
    json_t *files = json_array();
    for (int i = 0; i < r->file_count; i++) {
        const ks_align_file *f = &r->files[i];
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:b}", "path", f->path, "serial", f->serial, "role",
                                               f->role, "member", f->member));
    }
    json_object_set_new(root, "files", files);
    json_t *sets = json_array();
    for (size_t k = 0; k < nsets; k++) {
        const ks_align_set *s = &r->sets[k];
        json_t *js = json_pack("{s:I, s:f, s:b}", "index", (json_int_t)k, "time_us", s->time_us,
                               "complete", s->members == r->member_count);
        char name[16];
        snprintf(name, sizeof name, "%06zu", k);
        json_object_set_new(js, "dir", json_string(name));
        json_t *members = json_object();
        for (int i = 0; i < r->file_count; i++) {
            if (s->frame[i] < 0)
                continue;
            const ks_align_file *f = &r->files[i];
            const ks_align_frame *fr = &f->frames[s->frame[i]];
            char base[128], img[200];
            stem(f, base, sizeof base);
            json_t *m = json_object();
            json_object_set_new(m, "frame", json_integer(s->frame[i]));
            if (fr->has_color) {
                snprintf(img, sizeof img, "%s/%s-color.%s", name, base, f->color_format == KS_FORMAT_MJPG ? "jpg" : "raw");
                json_object_set_new(m, "color", image_entry(img, fr->color_ts_us));
            }
            if (fr->has_depth) {
                snprintf(img, sizeof img, "%s/%s-depth.png", name, base);
                json_object_set_new(m, "depth", image_entry(img, fr->depth_ts_us));
            }
            if (fr->has_ir) {
                snprintf(img, sizeof img, "%s/%s-ir.png", name, base);
                json_object_set_new(m, "ir", image_entry(img, fr->ir_ts_us));
            }
            json_object_set_new(members, base, m);
        }
        json_object_set_new(js, "members", members);
        json_array_append_new(sets, js);
    }
    json_object_set_new(root, "sets", sets);
    char fin[1100];
    snprintf(fin, sizeof fin, "%s/index.json", dir);
    st = ks_json_write_atomic(root, fin, JSON_INDENT(1), err);
    json_decref(root);
    return st;
}
