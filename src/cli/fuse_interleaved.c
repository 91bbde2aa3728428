/* kinsync fuse --interleaved: for an interleaved rig (devices offset over the frame period) every
 * depth frame of every device, in device-timestamp order, becomes one PLY in the rig frame, listed
 * in stream.json. The frames come from the session's frame sets like every other sink's: within a
 * set they are ordered by their timestamps, and a set's frames all precede the next set's because
 * the offsets stay within one period (checked: a frame out of order is an error, not a reorder). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/fuse.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/session.h"
#include "util/fileio.h"

typedef struct stream {
    ks_stream_frame *f;
    size_t n, cap;
} stream;

static void json_extrinsics(json_t *o, const char *key, const ks_extrinsics *e)
{
    json_t *r = json_array(), *t = json_array();
    for (int i = 0; i < 9; i++)
        json_array_append_new(r, json_real(e->R[i]));
    for (int i = 0; i < 3; i++)
        json_array_append_new(t, json_real(e->t[i]));
    json_object_set_new(o, key, json_pack("{s:o, s:o}", "R", r, "t", t));
}

static int by_ts(const void *a, const void *b)
{
    const ks_stream_frame *x = a, *y = b;
    return x->timestamp_us < y->timestamp_us ? -1 : x->timestamp_us > y->timestamp_us ? 1 : x->device - y->device;
}

/* Writes frame f (a DEPTH16 image) as stream-NNNNNN.ply; false on error (printed). */
static bool write_frame(const char *out_dir, size_t k, const ks_unproject_table *t, const ks_stream_frame *f,
                        ks_cloud *c, size_t *valid)
{
    const ks_image *img = f->image;
    ks_error err = {0};
    *valid = 0;
    if (img->width == t->width && img->height == t->height)
        *valid = ks_depth_to_points(t, (const uint16_t *)img->data, img->stride > 0 ? (size_t)img->stride / 2 : 0,
                                    &f->pose, c->x, c->y, c->z);
    c->count = *valid ? (size_t)t->width * (size_t)t->height : 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/stream-%06zu.ply", out_dir, k);
    if (ks_ply_write(path, c, 0, &err)) {
        ks_cli_print_error("fuse", &err);
        return false;
    }
    return true;
}

static int write_index(const char *out_dir, stream *st, const ks_rig_pose *poses, int n, json_t *list, bool json)
{
    ks_error err = {0};
    ks_stream_frame *ord = malloc((st->n ? st->n : 1) * sizeof *ord);
    ks_interleave_stats is;
    if (!ord || ks_interleave(st->f, st->n, poses, (size_t)n, ord, &is, &err)) {
        free(ord);
        ks_cli_print_error("fuse", &err);
        return KS_EXIT_FAIL;
    }
    free(ord);
    json_t *root = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:O}", "format", "kinsync-stream", "version", 1,
                             "devices", n, "rate_hz", is.rate_hz, "mean_gap_us", is.mean_gap_us, "min_gap_us",
                             is.min_gap_us, "max_gap_us", is.max_gap_us, "frames", list);
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/stream.json", out_dir);
    int rc = KS_EXIT_OK;
    ks_error werr;
    if (ks_json_write_atomic(root, jpath, JSON_INDENT(1), &werr) != KS_OK) {
        ks_cli_print_error("fuse", &werr);
        rc = KS_EXIT_FAIL;
    } else if (json) {
        json_t *sum = json_pack("{s:i, s:i, s:f, s:f, s:f, s:s}", "frames", (int)st->n, "devices", n, "rate_hz",
                                is.rate_hz, "min_gap_us", is.min_gap_us, "max_gap_us", is.max_gap_us, "index", jpath);
        char *txt = json_dumps(sum, JSON_INDENT(2));
        if (txt)
            printf("%s\n", txt);
        free(txt);
        json_decref(sum);
    } else {
        printf("interleaved stream: %zu frames of %d devices in timestamp order, %.1f frames/s (gaps %.0f..%.0f us) "
               "-> %s/stream-*.ply, %s\n",
               st->n, n, is.rate_hz, is.min_gap_us, is.max_gap_us, out_dir, jpath);
    }
    json_decref(root);
    return rc;
}

int ks_cli_fuse_interleaved(ks_session *s, ks_fuse_sink *k, const char *out_dir, long frames, bool json)
{
    const int n = ks_fuse_sink_device_count(k);
    ks_error err = {0};
    ks_rig_pose poses[KS_FUSE_MAX_DEVICES];
    ks_unproject_table tab[KS_FUSE_MAX_DEVICES];
    memset(tab, 0, sizeof tab);
    size_t maxpix = 0;
    int rc = KS_EXIT_OK;
    for (int i = 0; i < n && rc == KS_EXIT_OK; i++) {
        const ks_fuse_device *d = ks_fuse_sink_device(k, i);
        memset(&poses[i], 0, sizeof poses[i]);
        poses[i].depth_to_rig = d->depth_to_rig;
        snprintf(poses[i].serial, sizeof poses[i].serial, "%s", d->serial);
        if (ks_unproject_table_build(&d->calibration.depth, &tab[i], &err))
            rc = KS_EXIT_FAIL;
        size_t np = (size_t)tab[i].width * (size_t)tab[i].height;
        maxpix = np > maxpix ? np : maxpix;
    }
    ks_cloud c = {0};
    stream st = {0};
    json_t *list = json_array();
    if (rc == KS_EXIT_OK && ks_cloud_reserve(&c, maxpix, 0, &err))
        rc = KS_EXIT_FAIL;
    if (rc != KS_EXIT_OK)
        ks_cli_print_error("fuse", &err);
    int64_t last = INT64_MIN;
    while (rc == KS_EXIT_OK && (frames == 0 || st.n < (size_t)frames)) {
        ks_session_set set;
        ks_status ns = ks_session_next(s, &set, 2000, &err);
        if (ns == KS_ETIMEOUT)
            continue;
        if (ns != KS_OK) {
            if (ns != KS_EEOF)
                rc = (ks_cli_print_error("fuse", &err), KS_EXIT_FAIL);
            break;
        }
        ks_stream_frame in[KS_FUSE_MAX_DEVICES];
        int m = 0;
        for (int i = 0; i < n; i++) {
            ks_capture *cap = (set.set.present_mask & (1u << i)) ? set.set.frames[i].user : NULL;
            if (cap && cap->depth)
                in[m++] = (ks_stream_frame){i, (int64_t)cap->depth->device_ts_us, cap->depth, {{0}, {0}}};
        }
        qsort(in, (size_t)m, sizeof *in, by_ts);
        for (int j = 0; j < m && rc == KS_EXIT_OK && (frames == 0 || st.n < (size_t)frames); j++) {
            if (in[j].timestamp_us < last) {
                fprintf(stderr, "kinsync fuse: frame of %s at %lld us comes before the previous set's last frame: the "
                                "devices' offsets exceed one frame period; this is not an interleaved rig\n",
                        poses[in[j].device].serial, (long long)in[j].timestamp_us);
                rc = KS_EXIT_FAIL;
                break;
            }
            last = in[j].timestamp_us;
            in[j].pose = poses[in[j].device].depth_to_rig;
            size_t valid = 0;
            if (st.n == st.cap) {
                st.cap = st.cap ? st.cap * 2 : 1024;
                ks_stream_frame *nf = realloc(st.f, st.cap * sizeof *nf);
                if (!nf) {
                    rc = KS_EXIT_FAIL;
                    break;
                }
                st.f = nf;
            }
            if (!write_frame(out_dir, st.n, &tab[in[j].device], &in[j], &c, &valid)) {
                rc = KS_EXIT_FAIL;
                break;
            }
            char file[64];
            snprintf(file, sizeof file, "stream-%06zu.ply", st.n);
            json_t *e = json_pack("{s:i, s:s, s:I, s:s, s:i}", "index", (int)st.n, "serial", poses[in[j].device].serial,
                                  "device_ts_us", (json_int_t)in[j].timestamp_us, "file", file, "points", (int)valid);
            json_extrinsics(e, "depth_to_rig", &in[j].pose);
            json_array_append_new(list, e);
            st.f[st.n] = in[j];
            st.f[st.n++].image = NULL;
        }
        ks_session_set_release(&set);
    }
    if (rc == KS_EXIT_OK && st.n == 0) {
        fprintf(stderr, "kinsync fuse: the recordings have no depth frames\n");
        rc = KS_EXIT_FAIL;
    }
    if (rc == KS_EXIT_OK)
        rc = write_index(out_dir, &st, poses, n, list, json);
    json_decref(list);
    for (int i = 0; i < n; i++)
        ks_unproject_table_free(&tab[i]);
    free(st.f);
    ks_cloud_free(&c);
    return rc;
}
