/* Exporting aligned frame sets (ks_align_export, kinsync/align.h) as a frame-set directory
 * (kinsync/frameset.h, the format `kinsync capture` writes and `kinsync calibrate DIR` reads): every
 * member file is played once more from the start and each capture that belongs to a set goes to
 * the writer; index.json is written last, so a directory with an index.json is a complete export. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/align.h"
#include "kinsync/frameset.h"
#include "kinsync/playback.h"
#include "align/align_internal.h"

static void stem(const ks_align_file *f, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%s", f->role, f->serial[0] ? f->serial : "unknown");
}

/* The captures of member file fi (writer device wd) that joined a set, into the writer: they are
 * the file's captures in order, found by their timestamps (a capture the matcher discarded has no
 * frame). */
static ks_status export_file(const ks_align_result *r, int fi, ks_device *d, int wd, const int32_t *set_of,
                             ks_frameset_writer *w, ks_error *err)
{
    const ks_align_file *f = &r->files[fi];
    ks_status st = KS_OK;
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
        if (same && set_of[k++] >= 0)
            st = ks_frameset_writer_add(w, set_of[k - 1], wd, c, 0, err);
        ks_capture_release(c);
    }
    if (st == KS_EEOF)
        st = ks_error_set(err, KS_EIO, "%s ended before its frame %zu; was it changed since it was aligned?", f->path,
                          f->frame_count);
    return st;
}

ks_status ks_align_export(const ks_align_result *r, const char *dir, size_t max_sets, ks_error *err)
{
    if (!r || !dir)
        return ks_error_set(err, KS_EINVAL, "ks_align_export: result and directory are required");
    size_t nsets = max_sets && max_sets < r->set_count ? max_sets : r->set_count;
    /* the member files, each opened once: the devices of the frame-set directory */
    int member[KS_ALIGN_MAX_FILES], m = 0;
    ks_backend *b[KS_ALIGN_MAX_FILES] = {0};
    ks_device *d[KS_ALIGN_MAX_FILES] = {0};
    ks_frameset_device *dv = calloc(KS_ALIGN_MAX_FILES, sizeof *dv);
    ks_status st = dv ? KS_OK : ks_error_set(err, KS_ENOMEM, "out of memory exporting");
    ks_ts_convention conv = KS_TS_SEED;
    for (int i = 0; i < r->file_count && st == KS_OK; i++) {
        const ks_align_file *f = &r->files[i];
        if (!f->member)
            continue;
        if (m == KS_MATCH_MAX_DEVICES) {
            st = ks_error_set(err, KS_EINVAL, "more than %d member recordings to export", KS_MATCH_MAX_DEVICES);
            break;
        }
        st = ks_align_open_recording(f->path, &b[m], &d[m], err);
        ks_frameset_device *v = &dv[m];
        stem(f, v->name, sizeof v->name);
        snprintf(v->serial, sizeof v->serial, "%s", f->serial);
        v->config = (ks_device_config){.color_format = f->color_format, .color_resolution = f->color_resolution,
                                       .depth_mode = f->depth_mode, .camera_fps = f->fps,
                                       .depth_delay_off_color_usec = f->depth_delay_us,
                                       .wired_sync_mode = f->sync_mode,
                                       .subordinate_delay_off_master_usec = f->subordinate_delay_us};
        if (st == KS_OK && ks_device_get_calibration_json(d[m], &v->calibration_json, &v->calibration_len, NULL))
            v->calibration_json = NULL;
        if (i == r->reference && f->timestamps[0])
            ks_ts_convention_parse(f->timestamps, &conv);
        member[m++] = i;
    }
    ks_frameset_writer *w = NULL;
    if (st == KS_OK)
        st = m ? ks_frameset_writer_open(dir, dv, m, conv, "align", &w, err)
               : ks_error_set(err, KS_EINVAL, "no member recording to export");
    for (size_t k = 0; k < nsets && st == KS_OK; k++)
        st = ks_frameset_writer_set(w, (long)k, r->sets[k].time_us, r->sets[k].members == r->member_count, err);
    for (int j = 0; j < m && st == KS_OK; j++) {
        const ks_align_file *f = &r->files[member[j]];
        int32_t *set_of = malloc((f->frame_count ? f->frame_count : 1) * sizeof *set_of);
        if (!set_of) {
            st = ks_error_set(err, KS_ENOMEM, "out of memory exporting");
            break;
        }
        for (size_t k = 0; k < f->frame_count; k++)
            set_of[k] = -1;
        for (size_t k = 0; k < nsets; k++)
            if (r->sets[k].frame[member[j]] >= 0)
                set_of[r->sets[k].frame[member[j]]] = (int32_t)k;
        st = export_file(r, member[j], d[j], j, set_of, w, err);
        free(set_of);
    }
    for (int j = 0; j < m; j++) {
        ks_device_close(d[j]);
        ks_backend_free(b[j]);
        free(dv[j].calibration_json);
    }
    free(dv);
    if (st != KS_OK) {
        ks_frameset_writer_abort(w);
        return st;
    }
    /* every file given, members or not, and why a file was set aside */
    json_t *extra = json_object(), *files = json_array();
    for (int i = 0; i < r->file_count; i++) {
        const ks_align_file *f = &r->files[i];
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:b, s:s}", "path", f->path, "serial", f->serial,
                                               "role", f->role, "member", f->member, "reason", f->reason));
    }
    json_object_set_new(extra, "files", files);
    char *text = json_dumps(extra, 0);
    json_decref(extra);
    st = ks_frameset_writer_close(w, text, err);
    free(text);
    return st;
}
