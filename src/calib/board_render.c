/* calib/board_render.c: synthetic views of the board through the camera model. Rays are computed
 * with the Newton unprojection on a 4-pixel grid and interpolated bilinearly in between (the lens
 * is smooth: the interpolation error is far below 0.01 px), each sample ray is intersected with
 * the board plane and the printed pattern is sampled there; supersampling gives the edges the
 * partial coverage a real sensor integrates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/board.h"

#define GRID 4

ks_status ks_board_render(const ks_board *b, const ks_intrinsics *in, const ks_extrinsics *b2c, int ss,
                          uint8_t background, uint8_t *gray, int stride, ks_error *err)
{
    ks_status st = ks_board_validate(b, err);
    if (st)
        return st;
    if (!in || !b2c || !gray || in->width < 1 || in->height < 1 || stride < in->width || ss < 1 || ss > 8)
        return ks_error_set(err, KS_EINVAL, "ks_board_render: bad image (%dx%d, stride %d) or supersample %d (1..8)",
                            in ? in->width : 0, in ? in->height : 0, stride, ss);
    int W = in->width, H = in->height;
    int gw = W / GRID + 2, gh = H / GRID + 2;
    double *rays = malloc(sizeof(double) * 2 * (size_t)gw * gh);
    unsigned char *ok = malloc((size_t)gw * gh);
    if (!rays || !ok) {
        free(rays);
        free(ok);
        return ks_error_set(err, KS_ENOMEM, "ks_board_render: out of memory");
    }
    for (int j = 0; j < gh; j++)
        for (int i = 0; i < gw; i++) {
            double uv[2] = {i * GRID - 0.5, j * GRID - 0.5};
            ok[j * gw + i] = ks_unproject_ray(in, uv, rays + 2 * (j * gw + i));
        }
    /* camera centre and axes in the board frame: X_b = R^T (X_c - t) */
    const double *R = b2c->R, *t = b2c->t;
    double C[3];
    for (int k = 0; k < 3; k++)
        C[k] = -(R[0 * 3 + k] * t[0] + R[1 * 3 + k] * t[1] + R[2 * 3 + k] * t[2]);
    int total = ss * ss;
    for (int y = 0; y < H; y++) {
        uint8_t *row = gray + (size_t)y * stride;
        for (int x = 0; x < W; x++) {
            int acc = 0, n = 0;
            for (int sy = 0; sy < ss; sy++)
                for (int sx = 0; sx < ss; sx++) {
                    double u = x - 0.5 + (sx + 0.5) / ss, v = y - 0.5 + (sy + 0.5) / ss;
                    double fu = (u + 0.5) / GRID, fv = (v + 0.5) / GRID;
                    int i0 = (int)floor(fu), j0 = (int)floor(fv);
                    if (i0 < 0 || j0 < 0 || i0 + 1 >= gw || j0 + 1 >= gh)
                        continue;
                    int a = j0 * gw + i0;
                    if (!ok[a] || !ok[a + 1] || !ok[a + gw] || !ok[a + gw + 1])
                        continue;
                    double ax = fu - i0, ay = fv - j0;
                    double w00 = (1 - ax) * (1 - ay), w10 = ax * (1 - ay), w01 = (1 - ax) * ay, w11 = ax * ay;
                    double rx = w00 * rays[2 * a] + w10 * rays[2 * (a + 1)] + w01 * rays[2 * (a + gw)] +
                                w11 * rays[2 * (a + gw + 1)];
                    double ry = w00 * rays[2 * a + 1] + w10 * rays[2 * (a + 1) + 1] + w01 * rays[2 * (a + gw) + 1] +
                                w11 * rays[2 * (a + gw + 1) + 1];
                    double d[3];
                    for (int k = 0; k < 3; k++)
                        d[k] = R[0 * 3 + k] * rx + R[1 * 3 + k] * ry + R[2 * 3 + k];
                    if (fabs(d[2]) < 1e-12)
                        continue;
                    double s = -C[2] / d[2];
                    if (!(s > 0))
                        continue;
                    int val = ks_board_intensity(b, C[0] + s * d[0], C[1] + s * d[1]);
                    if (val < 0)
                        continue;
                    acc += val;
                    n++;
                }
            acc += (total - n) * background;
            row[x] = (uint8_t)((acc + total / 2) / total);
        }
    }
    free(rays);
    free(ok);
    return KS_OK;
}
