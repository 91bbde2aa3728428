/* calib/rigcal_io.c: writes rig-calibration.json, the output of `kinsync calibrate` and the input of
 * the fusion step (format: docs/rig-calibration.md; the reader is fuse/rig_poses.c). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/rigcalib.h"
#include "util/fileio.h"

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
            "{s:s, s:i, s:b, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:i, s:i, s:{s:o, s:i, s:i, s:o, s:o}}", "serial",
            p->devices[i].serial, "index", i, "reference", i == r->reference_device, "depth_to_rig",
            ext_json(&d->depth_to_rig), "color_to_rig", ext_json(&d->color_to_rig), "uncertainty", "rotation_deg",
            num_or_null(d->rotation_sigma_deg), "position_mm", num_or_null(d->position_sigma_mm), "covariance",
            arr(d->covariance, 36), "reprojection_rms_px", num_or_null(d->rms_px), "views", d->views, "corners",
            d->corners, "cross_check", "ray_rms_mm", num_or_null(d->ray_rms_mm), "rays", d->ray_count,
            "depth_plane_points", d->depth_plane_points, "depth_plane_mean_mm", num_or_null(d->depth_plane_mean_mm),
            "depth_plane_rms_mm", num_or_null(d->depth_plane_rms_mm));
        json_array_append_new(devs, o);
    }
    const ks_board *b = p->board;
    json_t *root = json_pack(
        "{s:s, s:i, s:s, s:s, s:{s:i, s:i, s:f, s:f, s:s, s:i}, s:{s:o, s:o, s:i, s:i, s:i, s:i, s:f}, s:{s:i, s:o}, "
        "s:o}",
        "format", FORMAT_NAME, "version", FORMAT_VERSION, "rig_frame",
        "depth camera of the reference device (x right, y down, z forward; millimetres)", "reference_serial",
        p->devices[r->reference_device].serial, "board", "rows", b->rows, "columns", b->columns, "tag_size_mm",
        b->tag_size_mm, "spacing", b->spacing, "family", ks_tag_family_name(b->family), "first_id", b->first_id,
        "solve", "reprojection_rms_px", num_or_null(r->rms_px), "initial_rms_px", num_or_null(r->initial_rms_px),
        "iterations", r->iterations, "frame_sets", r->frame_count, "corners", r->used_obs, "rejected_views",
        r->rejected_views, "seconds", r->solve_seconds,
        "cross_check", "triangulated_points", r->triangulated_points, "board_fit_rms_mm",
        num_or_null(r->board_fit_rms_mm), "devices", devs);
    if (!root)
        return ks_error_set(err, KS_ENOMEM, "ks_rigcal_write_json: out of memory");
    ks_status st = ks_json_write_atomic(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(17), err);
    json_decref(root);
    return st;
}

