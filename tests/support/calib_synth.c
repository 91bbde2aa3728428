/* calib_synth.c: see calib_synth.h. */
#include "calib_synth.h"

#include <math.h>
#include <string.h>

void ks_synth_rotvec(const double w[3], double R[9])
{
    double th = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    double k[3] = {1, 0, 0};
    if (th > 1e-15)
        for (int i = 0; i < 3; i++)
            k[i] = w[i] / th;
    double c = cos(th), s = sin(th), v = 1 - c;
    R[0] = c + k[0] * k[0] * v;
    R[1] = k[0] * k[1] * v - k[2] * s;
    R[2] = k[0] * k[2] * v + k[1] * s;
    R[3] = k[1] * k[0] * v + k[2] * s;
    R[4] = c + k[1] * k[1] * v;
    R[5] = k[1] * k[2] * v - k[0] * s;
    R[6] = k[2] * k[0] * v - k[1] * s;
    R[7] = k[2] * k[1] * v + k[0] * s;
    R[8] = c + k[2] * k[2] * v;
}

static void normalize(double v[3])
{
    double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int i = 0; i < 3; i++)
        v[i] /= n;
}

static void cross(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

void ks_synth_look_at(const double eye[3], const double target[3], const double down[3], ks_extrinsics *e)
{
    double z[3] = {target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]}, x[3], y[3];
    normalize(z);
    cross(down, z, x); /* x = down x z  -> with y = z x x, y is close to down */
    normalize(x);
    cross(z, x, y);
    for (int i = 0; i < 3; i++) {
        e->R[0 * 3 + i] = x[i];
        e->R[1 * 3 + i] = y[i];
        e->R[2 * 3 + i] = z[i];
    }
    for (int r = 0; r < 3; r++)
        e->t[r] = -(e->R[r * 3] * eye[0] + e->R[r * 3 + 1] * eye[1] + e->R[r * 3 + 2] * eye[2]);
}

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

double ks_synth_rot_diff_deg(const double Ra[9], const double Rb[9])
{
    double tr = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            tr += Ra[i * 3 + k] * Rb[i * 3 + k];
    double c = (tr - 1.0) / 2.0;
    if (c > 1)
        c = 1;
    if (c < -1)
        c = -1;
    return acos(c) * 180.0 / M_PI;
}
