/* calib/rigcal_io.c: rig-calibration.json, the output of `kinsync calibrate` and the input of the
 * fusion step (format: docs/rig-calibration.md). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/rigcalib.h"

#define FORMAT_NAME "kinsync-rig-calibration"
#define FORMAT_VERSION 1

static json_t *arr(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(isfinite(v[i]) ? v[i] : 0.0));
    return a;
}

static json_t *ext_json(const ks_extrinsics *e)
{
    return json_pack("{s:o, s:o}", "R", arr(e->R, 9), "t", arr(e->t, 3));
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

ks_status ks_rigcal_write_json(const ks_rigcal_problem *p, const ks_rigcal_result *r, const char *path, ks_error *err)
{
    if (!p || !r || !path || !r->devices || r->device_count != p->device_count)
        return ks_error_set(err, KS_EINVAL, "ks_rigcal_write_json: result does not match the problem");
    json_t *devs = json_array();
    for (int i = 0; i < r->device_count; i++) {
        const ks_rigcal_device_result *d = &r->devices[i];
        json_t *o = json_pack(
            "{s:s, s:i, s:b, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:i, s:i, s:{s:o, s:i}}", "serial",
            p->devices[i].serial, "index", i, "reference", i == r->reference_device, "depth_to_rig",
            ext_json(&d->depth_to_rig), "color_to_rig", ext_json(&d->color_to_rig), "uncertainty", "rotation_deg",
            num_or_null(d->rotation_sigma_deg), "position_mm", num_or_null(d->position_sigma_mm), "covariance",
            arr(d->covariance, 36), "reprojection_rms_px", num_or_null(d->rms_px), "views", d->views, "corners",
            d->corners, "cross_check", "ray_rms_mm", num_or_null(d->ray_rms_mm), "rays", d->ray_count);
        json_array_append_new(devs, o);
    }
    const ks_board *b = p->board;
    json_t *root = json_pack(
        "{s:s, s:i, s:s, s:s, s:{s:i, s:i, s:f, s:f, s:s, s:i}, s:{s:o, s:o, s:i, s:i, s:i, s:f}, s:{s:i, s:o}, "
        "s:o}",
        "format", FORMAT_NAME, "version", FORMAT_VERSION, "rig_frame",
        "depth camera of the reference device (x right, y down, z forward; millimetres)", "reference_serial",
        p->devices[r->reference_device].serial, "board", "rows", b->rows, "columns", b->columns, "tag_size_mm",
        b->tag_size_mm, "spacing", b->spacing, "family", ks_tag_family_name(b->family), "first_id", b->first_id,
        "solve", "reprojection_rms_px", num_or_null(r->rms_px), "initial_rms_px", num_or_null(r->initial_rms_px),
        "iterations", r->iterations, "frame_sets", r->frame_count, "corners", r->used_obs, "seconds", r->solve_seconds,
        "cross_check", "triangulated_points", r->triangulated_points, "board_fit_rms_mm",
        num_or_null(r->board_fit_rms_mm), "devices", devs);
    if (!root)
        return ks_error_set(err, KS_ENOMEM, "ks_rigcal_write_json: out of memory");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ks_error_set(err, KS_EIO, "%s: cannot write the rig calibration (%s); check the directory", path,
                            strerror(e));
    }
    return KS_OK;
}

static ks_status read_ext(json_t *o, const char *name, const char *key, int i, ks_extrinsics *e, ks_error *err)
{
    json_t *x = json_object_get(o, key);
    json_t *R = json_object_get(x, "R"), *t = json_object_get(x, "t");
    if (!json_is_array(R) || json_array_size(R) != 9 || !json_is_array(t) || json_array_size(t) != 3)
        return ks_error_set(err, KS_EPARSE, "%s: devices[%d].%s must be {\"R\": [9 numbers], \"t\": [3 numbers]}", name,
                            i, key);
    for (int k = 0; k < 12; k++) {
        json_t *v = k < 9 ? json_array_get(R, k) : json_array_get(t, k - 9);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return ks_error_set(err, KS_EPARSE, "%s: devices[%d].%s has a non-number", name, i, key);
        if (k < 9)
            e->R[k] = json_number_value(v);
        else
            e->t[k - 9] = json_number_value(v);
    }
    /* the rotation must be one */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double s = e->R[a * 3] * e->R[b * 3] + e->R[a * 3 + 1] * e->R[b * 3 + 1] + e->R[a * 3 + 2] * e->R[b * 3 + 2];
            if (fabs(s - (a == b)) > 1e-6)
                return ks_error_set(err, KS_EPARSE, "%s: devices[%d].%s.R is not a rotation matrix", name, i, key);
        }
    return KS_OK;
}

ks_status ks_rig_poses_parse(const char *text, size_t len, const char *name, ks_rig_pose **poses, int *count,
                             ks_error *err)
{
    if (!text || !poses || !count)
        return ks_error_set(err, KS_EINVAL, "ks_rig_poses_parse: NULL argument");
    name = name ? name : "rig-calibration.json";
    *poses = NULL;
    *count = 0;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ks_error_set(err, KS_EPARSE, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    ks_status st = KS_OK;
    json_t *fmt = json_object_get(root, "format"), *ver = json_object_get(root, "version");
    json_t *devs = json_object_get(root, "devices");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), FORMAT_NAME) != 0) {
        st = ks_error_set(err, KS_EPARSE, "%s: not a kinsync rig calibration (\"format\" is not \"%s\"); create one "
                          "with kinsync calibrate", name, FORMAT_NAME);
        goto out;
    }
    if (!json_is_integer(ver) || json_integer_value(ver) != FORMAT_VERSION) {
        st = ks_error_set(err, KS_EPARSE, "%s: version must be %d; this kinsync reads version %d only", name,
                          FORMAT_VERSION, FORMAT_VERSION);
        goto out;
    }
    size_t n = json_array_size(devs);
    if (!json_is_array(devs) || n == 0 || n > 1024) {
        st = ks_error_set(err, KS_EPARSE, "%s: \"devices\" must be a non-empty array", name);
        goto out;
    }
    ks_rig_pose *p = calloc(n, sizeof *p);
    if (!p) {
        st = ks_error_set(err, KS_ENOMEM, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < n && !st; i++) {
        json_t *d = json_array_get(devs, i);
        json_t *serial = json_object_get(d, "serial");
        if (!json_is_string(serial)) {
            st = ks_error_set(err, KS_EPARSE, "%s: devices[%zu].serial must be a string", name, i);
            break;
        }
        snprintf(p[i].serial, sizeof p[i].serial, "%s", json_string_value(serial));
        p[i].reference = json_is_true(json_object_get(d, "reference"));
        if ((st = read_ext(d, name, "depth_to_rig", (int)i, &p[i].depth_to_rig, err)) ||
            (st = read_ext(d, name, "color_to_rig", (int)i, &p[i].color_to_rig, err)))
            break;
    }
    if (st) {
        free(p);
        goto out;
    }
    *poses = p;
    *count = (int)n;
out:
    json_decref(root);
    return st;
}

ks_status ks_rig_poses_load(const char *path, ks_rig_pose **poses, int *count, ks_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ks_error_set(err, KS_ENOTFOUND, "%s: cannot open (%s); run kinsync calibrate to create it", path,
                            strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 131072;
            if (cap > (64u << 20)) {
                free(buf);
                fclose(f);
                return ks_error_set(err, KS_EPARSE, "%s: larger than 64 MiB; not a rig calibration", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return ks_error_set(err, KS_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r < 65536)
            break;
    }
    fclose(f);
    ks_status st = ks_rig_poses_parse(buf ? buf : "", n, path, poses, count, err);
    free(buf);
    return st;
}
