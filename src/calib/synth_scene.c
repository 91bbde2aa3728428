/* calib/synth_scene.c: see synth_scene.h. */
#include "calib/synth_scene.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/linalg.h"

double ks_synth_uniform(ks_synth_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

double ks_synth_normal(ks_synth_rng *r)
{
    double u1 = ks_synth_uniform(r), u2 = ks_synth_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void normalize3(double v[3])
{
    double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int i = 0; i < 3; i++)
        v[i] /= n;
}

static void cross3(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

void ks_synth_look_at(const double eye[3], const double target[3], const double down[3], ks_extrinsics *e)
{
    double z[3] = {target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]}, x[3], y[3];
    normalize3(z);
    cross3(down, z, x);
    normalize3(x);
    cross3(z, x, y);
    for (int i = 0; i < 3; i++) {
        e->R[0 * 3 + i] = x[i];
        e->R[1 * 3 + i] = y[i];
        e->R[2 * 3 + i] = z[i];
    }
    for (int r = 0; r < 3; r++)
        e->t[r] = -(e->R[r * 3] * eye[0] + e->R[r * 3 + 1] * eye[1] + e->R[r * 3 + 2] * eye[2]);
}

double ks_synth_rot_diff_deg(const double Ra[9], const double Rb[9])
{
    double tr = 0;
    for (int i = 0; i < 9; i++)
        tr += Ra[i] * Rb[i];
    double c = (tr - 1.0) / 2.0;
    c = c > 1 ? 1 : c < -1 ? -1 : c;
    /* acos loses precision near 0: use the skew part as well */
    double M[9], Rbt[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            Rbt[i * 3 + j] = Rb[j * 3 + i];
    ks_mat3_mul(Ra, Rbt, M);
    double s = 0.5 * sqrt((M[7] - M[5]) * (M[7] - M[5]) + (M[2] - M[6]) * (M[2] - M[6]) + (M[3] - M[1]) * (M[3] - M[1]));
    return atan2(s, c) * 180.0 / M_PI;
}

double ks_synth_trans_diff_mm(const double ta[3], const double tb[3])
{
    return sqrt((ta[0] - tb[0]) * (ta[0] - tb[0]) + (ta[1] - tb[1]) * (ta[1] - tb[1]) + (ta[2] - tb[2]) * (ta[2] - tb[2]));
}

void ks_synth_scene_options_default(ks_synth_scene_options *o)
{
    memset(o, 0, sizeof *o);
    o->devices = 9;
    o->frames = 60;
    o->noise_px = 0.1;
    o->ring_radius_mm = 1800;
    o->board_spread_mm = 250;
    o->max_view_angle_deg = 65;
    o->color = KS_COLOR_1080P;
    o->seed = 1;
}

void ks_synth_scene_free(ks_synth_scene *s)
{
    if (!s)
        return;
    free(s->devices);
    free(s->true_depth_to_rig);
    free(s->true_color_to_rig);
    free(s->true_board_to_rig);
    free(s->obs);
    memset(s, 0, sizeof *s);
}

ks_status ks_synth_scene_make(const ks_synth_scene_options *opt, ks_synth_scene *s, ks_error *err)
{
    ks_synth_scene_options o;
    if (opt)
        o = *opt;
    else
        ks_synth_scene_options_default(&o);
    memset(s, 0, sizeof *s);
    int nd = o.devices, nf = o.frames;
    if (nd < 1 || nf < 1 || nd > 64 || nf > 100000)
        return ks_error_set(err, KS_EINVAL, "synthetic scene: %d devices, %d frames", nd, nf);
    ks_board_default(&s->board);
    ks_synth_rng rng = {o.seed * 7919 + 17};
    s->devices = calloc((size_t)nd, sizeof *s->devices);
    s->true_depth_to_rig = calloc((size_t)nd, sizeof(ks_extrinsics));
    s->true_color_to_rig = calloc((size_t)nd, sizeof(ks_extrinsics));
    s->true_board_to_rig = calloc((size_t)nf, sizeof(ks_extrinsics));
    int ntags = ks_board_tag_count(&s->board);
    size_t cap = (size_t)nd * nf * ntags * 4;
    s->obs = malloc(sizeof(ks_rigcal_obs) * (cap ? cap : 1));
    ks_extrinsics *color_to_world = calloc((size_t)nd, sizeof(ks_extrinsics));
    ks_extrinsics *world_to_color = calloc((size_t)nd, sizeof(ks_extrinsics));
    if (!s->devices || !s->true_depth_to_rig || !s->true_color_to_rig || !s->true_board_to_rig || !s->obs ||
        !color_to_world || !world_to_color) {
        free(color_to_world);
        free(world_to_color);
        ks_synth_scene_free(s);
        return ks_error_set(err, KS_ENOMEM, "synthetic scene: out of memory");
    }
    ks_status st = KS_OK;
    ks_extrinsics world_to_rig;
    for (int i = 0; i < nd; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "%012d", 100000 + i);
        char *json = ks_calibration_json_synthesize(o.seed * 1000 + (uint64_t)i, serial);
        ks_calibration cal;
        st = json ? ks_calibration_from_json(json, strlen(json), KS_DEPTH_NFOV_UNBINNED, o.color, &cal, err)
                  : ks_error_set(err, KS_ENOMEM, "synthetic scene: out of memory");
        free(json);
        if (st)
            goto fail;
        ks_rigcal_device *d = &s->devices[i];
        snprintf(d->serial, sizeof d->serial, "%s", serial);
        d->intrinsics = cal.color;
        d->depth_to_camera = cal.depth_to_color;
        d->depth_to_color = cal.depth_to_color;
        /* colour camera on the ring, looking at the centre, heights varying a little */
        double th = 2 * M_PI * i / nd + (ks_synth_uniform(&rng) - 0.5) * 0.1;
        double eye[3] = {o.ring_radius_mm * sin(th), -400 + 200 * ks_synth_uniform(&rng), -o.ring_radius_mm * cos(th)};
        double target[3] = {(ks_synth_uniform(&rng) - 0.5) * 200, (ks_synth_uniform(&rng) - 0.5) * 200, 0};
        double down[3] = {0.05 * (ks_synth_uniform(&rng) - 0.5), 1, 0};
        ks_synth_look_at(eye, target, down, &world_to_color[i]);
        ks_extrinsics_invert(&world_to_color[i], &color_to_world[i]);
    }
    /* rig frame = depth camera of device 0 */
    {
        ks_extrinsics d0_to_world;
        ks_extrinsics_compose(&s->devices[0].depth_to_color, &color_to_world[0], &d0_to_world);
        ks_extrinsics_invert(&d0_to_world, &world_to_rig);
    }
    for (int i = 0; i < nd; i++) {
        ks_extrinsics_compose(&color_to_world[i], &world_to_rig, &s->true_color_to_rig[i]);
        ks_extrinsics_compose(&s->devices[i].depth_to_color, &s->true_color_to_rig[i], &s->true_depth_to_rig[i]);
    }
    double bw, bh;
    {
        double pitch = s->board.tag_size_mm * (1 + s->board.spacing);
        bw = (s->board.columns - 1) * pitch + s->board.tag_size_mm;
        bh = (s->board.rows - 1) * pitch + s->board.tag_size_mm;
    }
    double cos_max = cos(o.max_view_angle_deg * M_PI / 180.0);
    for (int f = 0; f < nf; f++) {
        /* board facing a random direction around the ring, tilted and rolled */
        double az = 2 * M_PI * ks_synth_uniform(&rng), el = (ks_synth_uniform(&rng) - 0.5) * 0.6;
        double roll = (ks_synth_uniform(&rng) - 0.5) * 0.8;
        double centre[3] = {(ks_synth_uniform(&rng) - 0.5) * 2 * o.board_spread_mm,
                            (ks_synth_uniform(&rng) - 0.5) * 2 * o.board_spread_mm,
                            (ks_synth_uniform(&rng) - 0.5) * 2 * o.board_spread_mm};
        double n[3] = {sin(az) * cos(el), sin(el), -cos(az) * cos(el)}; /* towards the viewers */
        double viewer[3] = {centre[0] + n[0], centre[1] + n[1], centre[2] + n[2]};
        double down[3] = {0, 1, 0};
        ks_extrinsics w2b0;
        ks_synth_look_at(viewer, centre, down, &w2b0); /* z axis = -n: into the board */
        double Rz[9], wr[3] = {0, 0, roll}, Rbw[9], Rt[9];
        ks_rot_exp(wr, Rz);
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                Rt[a * 3 + b] = w2b0.R[b * 3 + a];
        ks_mat3_mul(Rt, Rz, Rbw); /* board -> world rotation */
        ks_extrinsics b2w;
        memcpy(b2w.R, Rbw, sizeof Rbw);
        for (int k = 0; k < 3; k++)
            b2w.t[k] = centre[k] - (Rbw[k * 3] * bw / 2 + Rbw[k * 3 + 1] * bh / 2);
        ks_extrinsics_compose(&b2w, &world_to_rig, &s->true_board_to_rig[f]);
        for (int i = 0; i < nd; i++) {
            const ks_intrinsics *in = &s->devices[i].intrinsics;
            /* viewing angle */
            double cc[3] = {color_to_world[i].t[0] - centre[0], color_to_world[i].t[1] - centre[1],
                            color_to_world[i].t[2] - centre[2]};
            normalize3(cc);
            if (cc[0] * n[0] + cc[1] * n[1] + cc[2] * n[2] < cos_max)
                continue;
            ks_extrinsics b2c;
            ks_extrinsics_compose(&b2w, &world_to_color[i], &b2c);
            for (int t = 0; t < ntags; t++) {
                double uv[4][2];
                bool ok = true;
                for (int k = 0; k < 4 && ok; k++) {
                    double P[3], Q[3];
                    ks_board_corner(&s->board, s->board.first_id + t, k, P);
                    ks_extrinsics_apply(&b2c, P, Q);
                    ok = ks_project(in, Q, uv[k]) && uv[k][0] >= 0 && uv[k][1] >= 0 && uv[k][0] <= in->width - 1 &&
                         uv[k][1] <= in->height - 1;
                }
                if (!ok)
                    continue;
                for (int k = 0; k < 4; k++) {
                    ks_rigcal_obs *ob = &s->obs[s->obs_count++];
                    ob->device = i;
                    ob->frame = f;
                    ob->tag_id = s->board.first_id + t;
                    ob->corner = k;
                    ob->uv[0] = uv[k][0] + o.noise_px * ks_synth_normal(&rng);
                    ob->uv[1] = uv[k][1] + o.noise_px * ks_synth_normal(&rng);
                }
            }
        }
    }
    s->problem.board = &s->board;
    s->problem.device_count = nd;
    s->problem.devices = s->devices;
    s->problem.frame_count = nf;
    s->problem.obs_count = s->obs_count;
    s->problem.obs = s->obs;
    free(color_to_world);
    free(world_to_color);
    return KS_OK;
fail:
    free(color_to_world);
    free(world_to_color);
    ks_synth_scene_free(s);
    return st;
}
