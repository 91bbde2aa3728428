/* fuse/render.c: occlusion fill. A cloud (typically the merged voxel cloud) is drawn into one
 * camera's view with a z-buffer: every point is moved into the camera, projected with the exact lens
 * model and splatted as a square whose side is the point's footprint (the voxel size) at its depth,
 * the nearest point winning each pixel. Holes of that camera's own depth are then taken from the
 * rendering, which is what the other devices saw there. */
#include <math.h>
#include <string.h>

#include "kinsync/fuse.h"

size_t ks_render_depth(const ks_cloud *c, const ks_intrinsics *in, const ks_extrinsics *rig_to_cam, float splat_mm,
                       uint16_t *depth, uint8_t *bgra)
{
    int w = in->width, h = in->height;
    if (w <= 0 || h <= 0 || !depth)
        return 0;
    memset(depth, 0, (size_t)w * (size_t)h * sizeof *depth);
    if (bgra)
        memset(bgra, 0, (size_t)w * (size_t)h * 4);
    const bool color = bgra && c->rgb;
    for (size_t i = 0; i < c->count; i++) {
        if (!(c->x[i] == c->x[i]))
            continue;
        double p[3] = {c->x[i], c->y[i], c->z[i]}, q[3], uv[2];
        ks_extrinsics_apply(rig_to_cam, p, q);
        if (!(q[2] >= 1.0 && q[2] <= 65535.0) || !ks_project(in, q, uv))
            continue;
        long u0 = lround(uv[0]), v0 = lround(uv[1]);
        double foot = splat_mm * in->fx / q[2];
        int r = (int)ceil(foot * 0.5 - 0.5);
        if (r < 0)
            r = 0;
        if (r > 8)
            r = 8;
        if (u0 + r < 0 || v0 + r < 0 || u0 - r >= w || v0 - r >= h)
            continue;
        uint16_t zz = (uint16_t)lround(q[2]);
        for (long v = v0 - r; v <= v0 + r; v++) {
            if (v < 0 || v >= h)
                continue;
            for (long u = u0 - r; u <= u0 + r; u++) {
                if (u < 0 || u >= w)
                    continue;
                size_t k = (size_t)v * (size_t)w + (size_t)u;
                if (depth[k] == 0 || zz < depth[k]) {
                    depth[k] = zz;
                    if (color) {
                        bgra[4 * k] = c->rgb[3 * i + 2];
                        bgra[4 * k + 1] = c->rgb[3 * i + 1];
                        bgra[4 * k + 2] = c->rgb[3 * i];
                        bgra[4 * k + 3] = 255;
                    }
                }
            }
        }
    }
    size_t covered = 0;
    for (size_t k = 0; k < (size_t)w * (size_t)h; k++)
        covered += depth[k] != 0;
    return covered;
}

size_t ks_depth_fill_holes(const uint16_t *depth, const uint16_t *rendered, int w, int h, uint16_t *out)
{
    size_t filled = 0;
    for (size_t k = 0; k < (size_t)w * (size_t)h; k++) {
        uint16_t d = depth[k];
        if (d == 0 && rendered[k] != 0) {
            out[k] = rendered[k];
            filled++;
        } else {
            out[k] = d;
        }
    }
    return filled;
}
