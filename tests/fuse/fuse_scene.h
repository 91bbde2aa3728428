/* fuse_scene.h: synthetic depth frames for the fusion tests, made with the forward camera model
 * only (ks_project): for every pixel the normalized ray whose projection is the pixel centre is
 * found by Newton's method on ks_project (numeric Jacobian), then intersected with the scene. So the
 * unprojection tables under test (ks_unproject_ray) are checked against an independent inverse. */
#ifndef KS_TEST_FUSE_SCENE_H
#define KS_TEST_FUSE_SCENE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/calibration.h"
#include "kinsync/fuse.h"

/* Scene in the rig frame: a plane n.P = d (n unit) and optionally a sphere in front of it. */
typedef struct scene {
    double n[3], d;
    int has_sphere;
    double c[3], r;
} scene;

static inline int scene_ray_for_pixel(const ks_intrinsics *in, double u, double v, double xy[2])
{
    double x = (u - in->cx) / in->fx, y = (v - in->cy) / in->fy;
    for (int it = 0; it < 30; it++) {
        double p[3] = {x, y, 1}, uv[2];
        ks_project(in, p, uv);
        double eu = uv[0] - u, ev = uv[1] - v;
        if (eu * eu + ev * ev < 1e-14)
            break;
        const double h = 1e-7;
        double px[3] = {x + h, y, 1}, py[3] = {x, y + h, 1}, ux[2], uy[2];
        ks_project(in, px, ux);
        ks_project(in, py, uy);
        double a = (ux[0] - uv[0]) / h, b = (uy[0] - uv[0]) / h, c = (ux[1] - uv[1]) / h, dd = (uy[1] - uv[1]) / h;
        double det = a * dd - b * c;
        if (fabs(det) < 1e-12)
            return 0;
        x -= (dd * eu - b * ev) / det;
        y -= (-c * eu + a * ev) / det;
    }
    double p[3] = {x, y, 1}, uv[2];
    if (!ks_project(in, p, uv) || fabs(uv[0] - u) > 1e-4 || fabs(uv[1] - v) > 1e-4)
        return 0;
    xy[0] = x;
    xy[1] = y;
    return 1;
}

/* Distance of a camera-frame ray parameter: returns Z (along the optical axis) of the nearest hit. */
static inline double scene_hit_z(const scene *s, const ks_extrinsics *cam_to_rig, const double ray_cam[3])
{
    double o[3] = {cam_to_rig->t[0], cam_to_rig->t[1], cam_to_rig->t[2]}, dir[3];
    for (int i = 0; i < 3; i++)
        dir[i] = cam_to_rig->R[3 * i] * ray_cam[0] + cam_to_rig->R[3 * i + 1] * ray_cam[1] +
                 cam_to_rig->R[3 * i + 2] * ray_cam[2];
    /* ray_cam has z = 1, so the parameter along it is the camera Z */
    double best = INFINITY;
    double nd = s->n[0] * dir[0] + s->n[1] * dir[1] + s->n[2] * dir[2];
    if (fabs(nd) > 1e-12) {
        double t = (s->d - (s->n[0] * o[0] + s->n[1] * o[1] + s->n[2] * o[2])) / nd;
        if (t > 0)
            best = t;
    }
    if (s->has_sphere) {
        double oc[3] = {o[0] - s->c[0], o[1] - s->c[1], o[2] - s->c[2]};
        double a = dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2];
        double b = 2 * (oc[0] * dir[0] + oc[1] * dir[1] + oc[2] * dir[2]);
        double c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - s->r * s->r;
        double disc = b * b - 4 * a * c;
        if (disc >= 0) {
            double t = (-b - sqrt(disc)) / (2 * a);
            if (t > 0 && t < best)
                best = t;
        }
    }
    return best;
}

/* Distance of a rig-frame point from the scene surface. */
static inline double scene_distance(const scene *s, const double p[3])
{
    double dp = fabs(s->n[0] * p[0] + s->n[1] * p[1] + s->n[2] * p[2] - s->d);
    if (s->has_sphere) {
        double q[3] = {p[0] - s->c[0], p[1] - s->c[1], p[2] - s->c[2]};
        double ds = fabs(sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]) - s->r);
        if (ds < dp)
            dp = ds;
    }
    return dp;
}

/* Renders the DEPTH16 image of a camera (intrinsics in, pose cam_to_rig); 0 where no hit, no valid
 * ray or beyond 65535 mm. Returns the number of pixels with depth. */
static inline size_t scene_render(const scene *s, const ks_intrinsics *in, const ks_extrinsics *cam_to_rig, uint16_t *depth)
{
    size_t n = 0;
    for (int v = 0; v < in->height; v++)
        for (int u = 0; u < in->width; u++) {
            double xy[2];
            uint16_t d = 0;
            if (scene_ray_for_pixel(in, u, v, xy)) {
                double ray[3] = {xy[0], xy[1], 1};
                double z = scene_hit_z(s, cam_to_rig, ray);
                if (z > 0 && z < 65535)
                    d = (uint16_t)lround(z);
            }
            depth[(size_t)v * (size_t)in->width + (size_t)u] = d;
            n += d != 0;
        }
    return n;
}

/* Pose of a camera at `pos` (rig frame, mm) looking at `target`, image y down (world up = -y). */
static inline void scene_look_at(const double pos[3], const double target[3], ks_extrinsics *cam_to_rig)
{
    double z[3] = {target[0] - pos[0], target[1] - pos[1], target[2] - pos[2]};
    double l = sqrt(z[0] * z[0] + z[1] * z[1] + z[2] * z[2]);
    for (int i = 0; i < 3; i++)
        z[i] /= l;
    double down[3] = {0, 1, 0};
    /* x = down x z ... choose x = y_down cross z so that (x, y, z) is right-handed with y ~ down */
    double x[3] = {down[1] * z[2] - down[2] * z[1], down[2] * z[0] - down[0] * z[2], down[0] * z[1] - down[1] * z[0]};
    l = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
    for (int i = 0; i < 3; i++)
        x[i] /= l;
    double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
    for (int i = 0; i < 3; i++) {
        cam_to_rig->R[3 * i] = x[i];
        cam_to_rig->R[3 * i + 1] = y[i];
        cam_to_rig->R[3 * i + 2] = z[i];
        cam_to_rig->t[i] = pos[i];
    }
}

/* A synthesized factory calibration for a mode pair. */
static inline int scene_calibration(uint64_t seed, ks_depth_mode dm, ks_color_resolution cr, ks_calibration *cal)
{
    char serial[32];
    snprintf(serial, sizeof serial, "%012llu", (unsigned long long)(100000 + seed));
    char *js = ks_calibration_json_synthesize(seed, serial);
    if (!js)
        return 0;
    ks_error e;
    ks_status st = ks_calibration_from_json(js, strlen(js), dm, cr, cal, &e);
    free(js);
    if (st)
        fprintf(stderr, "calibration: %s\n", e.message);
    return st == KS_OK;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
