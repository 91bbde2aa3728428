/* calib/depth_check.c: the depth camera against the calibrated board pose. The board pose comes
 * from the color detections and the solved poses; the depth camera measures the same plane
 * independently, so an error in the depth-to-color or device poses shows up as an offset or a
 * tilt of the depth points against the plane. */
#include <math.h>
#include <string.h>

#include "kinsync/rigcalib.h"

ks_status ks_depth_board_check(const ks_intrinsics *in, const uint8_t *depth16, int stride, const ks_board *b,
                               const ks_extrinsics *b2d, double max_dist_mm, int step, ks_depth_plane_stats *acc,
                               ks_error *err)
{
    if (!in || !depth16 || !b || !b2d || !acc || stride < in->width * 2 || step < 1 || !(max_dist_mm > 0))
        return ks_error_set(err, KS_EINVAL, "ks_depth_board_check: bad arguments");
    ks_status st = ks_board_validate(b, err);
    if (st)
        return st;
    double pitch = b->tag_size_mm * (1.0 + b->spacing);
    double gw = (b->columns - 1) * pitch + b->tag_size_mm, gh = (b->rows - 1) * pitch + b->tag_size_mm;
    /* stay a little inside the grid: edge pixels mix board and background */
    double inset = b->tag_size_mm * 0.25;
    const double *R = b2d->R, *t = b2d->t;
    for (int v = 0; v < in->height; v += step) {
        const uint8_t *row = depth16 + (size_t)v * stride;
        for (int u = 0; u < in->width; u += step) {
            int z = row[2 * u] | row[2 * u + 1] << 8;
            if (z == 0)
                continue;
            double uv[2] = {u, v}, p[3];
            if (!ks_unproject(in, uv, z, p))
                continue;
            double d[3] = {p[0] - t[0], p[1] - t[1], p[2] - t[2]}, q[3];
            for (int k = 0; k < 3; k++)
                q[k] = R[0 * 3 + k] * d[0] + R[1 * 3 + k] * d[1] + R[2 * 3 + k] * d[2];
            if (q[0] < inset || q[1] < inset || q[0] > gw - inset || q[1] > gh - inset || fabs(q[2]) > max_dist_mm)
                continue;
            acc->points++;
            acc->sum_mm += q[2];
            acc->sum_sq_mm2 += q[2] * q[2];
        }
    }
    return KS_OK;
}

void ks_rigcal_set_depth_check(ks_rigcal_result *r, int device, const ks_depth_plane_stats *acc)
{
    if (!r || !acc || device < 0 || device >= r->device_count)
        return;
    ks_rigcal_device_result *d = &r->devices[device];
    d->depth_plane_points = acc->points;
    d->depth_plane_mean_mm = acc->points ? acc->sum_mm / acc->points : NAN;
    d->depth_plane_rms_mm = acc->points ? sqrt(acc->sum_sq_mm2 / acc->points) : NAN;
}
