/* calib/solver_pnp.c: planar PnP for one view of the board (initialization of the joint solver).
 * Corners are undistorted with the Newton unprojection, a homography board plane -> normalized
 * image plane is fitted linearly (DLT with h33 = 1 on centred, scaled board coordinates), the
 * rotation and translation are read from its columns, then refined by Gauss-Newton on the
 * reprojection error through the full lens model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/camera_model.h"
#include "calib/linalg.h"
#include "kinsync/rigcalib.h"

static void cross3(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

static double reproj_rms(const ks_intrinsics *in, const double (*P)[3], const double (*uv)[2], int n,
                         const ks_extrinsics *e, int *valid_out)
{
    double s = 0;
    int valid = 0;
    for (int i = 0; i < n; i++) {
        double q[3], p[2];
        ks_extrinsics_apply(e, P[i], q);
        if (!ks_project(in, q, p))
            continue;
        s += (p[0] - uv[i][0]) * (p[0] - uv[i][0]) + (p[1] - uv[i][1]) * (p[1] - uv[i][1]);
        valid++;
    }
    if (valid_out)
        *valid_out = valid;
    return valid ? sqrt(s / valid) : INFINITY;
}

bool ks_board_pnp(const ks_intrinsics *in, const double (*P)[3], const double (*uv)[2], int n, ks_extrinsics *out,
                  double *rms_px)
{
    if (!in || !P || !uv || n < 4 || !out)
        return false;
    double (*xy)[2] = malloc(sizeof(double[2]) * (size_t)n);
    int *ok = malloc(sizeof(int) * (size_t)n);
    if (!xy || !ok) {
        free(xy);
        free(ok);
        return false;
    }
    double mx = 0, my = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        ok[i] = ks_unproject_ray(in, uv[i], xy[i]);
        if (ok[i]) {
            mx += P[i][0];
            my += P[i][1];
            m++;
        }
    }
    bool result = false;
    if (m < 4)
        goto done;
    mx /= m;
    my /= m;
    double sc = 0;
    for (int i = 0; i < n; i++)
        if (ok[i])
            sc += hypot(P[i][0] - mx, P[i][1] - my) / m;
    if (!(sc > 0))
        goto done;
    sc = 1.0 / sc;
    /* normal equations of the 8-parameter DLT */
    double A[64] = {0}, b[8] = {0};
    for (int i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        double X = (P[i][0] - mx) * sc, Y = (P[i][1] - my) * sc, x = xy[i][0], y = xy[i][1];
        double r1[8] = {X, Y, 1, 0, 0, 0, -x * X, -x * Y};
        double r2[8] = {0, 0, 0, X, Y, 1, -y * X, -y * Y};
        for (int r = 0; r < 8; r++) {
            for (int c = 0; c < 8; c++)
                A[r * 8 + c] += r1[r] * r1[c] + r2[r] * r2[c];
            b[r] += r1[r] * x + r2[r] * y;
        }
    }
    if (!ks_chol(8, A))
        goto done;
    ks_chol_solve(8, A, b);
    double Hn[9] = {b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], 1.0};
    /* undo the board normalization: H = Hn * T, T = [sc 0 -sc mx; 0 sc -sc my; 0 0 1] */
    double T[9] = {sc, 0, -sc * mx, 0, sc, -sc * my, 0, 0, 1}, H[9];
    ks_mat3_mul(Hn, T, H);
    double h1[3] = {H[0], H[3], H[6]}, h2[3] = {H[1], H[4], H[7]}, h3[3] = {H[2], H[5], H[8]};
    double s = (sqrt(h1[0] * h1[0] + h1[1] * h1[1] + h1[2] * h1[2]) + sqrt(h2[0] * h2[0] + h2[1] * h2[1] + h2[2] * h2[2])) / 2;
    if (!(s > 0))
        goto done;
    if (h3[2] < 0)
        s = -s; /* the board is in front of the camera */
    double r1v[3], r2v[3], r3v[3], M[9];
    for (int k = 0; k < 3; k++) {
        r1v[k] = h1[k] / s;
        r2v[k] = h2[k] / s;
        out->t[k] = h3[k] / s;
    }
    cross3(r1v, r2v, r3v);
    for (int k = 0; k < 3; k++) {
        M[k * 3 + 0] = r1v[k];
        M[k * 3 + 1] = r2v[k];
        M[k * 3 + 2] = r3v[k];
    }
    ks_mat3_orthonormalize(M, out->R);

    /* Gauss-Newton (with a small Levenberg damping) on the reprojection error */
    double lambda = 1e-3;
    double cur = reproj_rms(in, P, uv, n, out, NULL);
    for (int it = 0; it < 30; it++) {
        double JtJ[36] = {0}, Jtr[6] = {0};
        for (int i = 0; i < n; i++) {
            double RX[3], Z[3], p[2], Jp[6];
            for (int r = 0; r < 3; r++)
                RX[r] = out->R[r * 3] * P[i][0] + out->R[r * 3 + 1] * P[i][1] + out->R[r * 3 + 2] * P[i][2];
            for (int r = 0; r < 3; r++)
                Z[r] = RX[r] + out->t[r];
            if (!ks_project_jac(in, Z, p, Jp))
                continue;
            double r0 = p[0] - uv[i][0], r1 = p[1] - uv[i][1];
            /* dZ/dphi = -[RX]x, dZ/dt = I */
            double dZ[18] = {0, RX[2], -RX[1], 1, 0, 0, -RX[2], 0, RX[0], 0, 1, 0, RX[1], -RX[0], 0, 0, 0, 1};
            double J[12];
            for (int rr = 0; rr < 2; rr++)
                for (int c = 0; c < 6; c++)
                    J[rr * 6 + c] = Jp[rr * 3] * dZ[c] + Jp[rr * 3 + 1] * dZ[6 + c] + Jp[rr * 3 + 2] * dZ[12 + c];
            for (int a = 0; a < 6; a++) {
                for (int c = 0; c < 6; c++)
                    JtJ[a * 6 + c] += J[a] * J[c] + J[6 + a] * J[6 + c];
                Jtr[a] += J[a] * r0 + J[6 + a] * r1;
            }
        }
        double Hd[36], dx[6];
        memcpy(Hd, JtJ, sizeof Hd);
        for (int a = 0; a < 6; a++) {
            Hd[a * 6 + a] *= 1.0 + lambda;
            dx[a] = -Jtr[a];
        }
        if (!ks_chol(6, Hd))
            break;
        ks_chol_solve(6, Hd, dx);
        ks_extrinsics trial = *out;
        double Rd[9];
        ks_rot_exp(dx, Rd);
        ks_mat3_mul(Rd, out->R, trial.R);
        for (int k = 0; k < 3; k++)
            trial.t[k] += dx[3 + k];
        double e = reproj_rms(in, P, uv, n, &trial, NULL);
        if (e < cur) {
            double gain = cur - e;
            *out = trial;
            cur = e;
            lambda = fmax(lambda * 0.1, 1e-9);
            if (gain < 1e-10 * (cur + 1e-12))
                break;
        } else {
            lambda *= 10;
            if (lambda > 1e6)
                break;
        }
    }
    int valid = 0;
    cur = reproj_rms(in, P, uv, n, out, &valid);
    if (rms_px)
        *rms_px = cur;
    result = valid >= 4 && isfinite(cur);
done:
    free(xy);
    free(ok);
    return result;
}
