/* calib/linalg.c: see linalg.h. */
#include "calib/linalg.h"

#include <math.h>
#include <string.h>

void ks_rot_exp(const double w[3], double R[9])
{
    double th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2], th = sqrt(th2);
    double a, b;
    if (th < 1e-8) {
        a = 1.0 - th2 / 6.0;
        b = 0.5 - th2 / 24.0;
    } else {
        a = sin(th) / th;
        b = (1.0 - cos(th)) / th2;
    }
    /* R = I + a [w]x + b [w]x^2 */
    double x = w[0], y = w[1], z = w[2];
    R[0] = 1 - b * (y * y + z * z);
    R[1] = -a * z + b * x * y;
    R[2] = a * y + b * x * z;
    R[3] = a * z + b * x * y;
    R[4] = 1 - b * (x * x + z * z);
    R[5] = -a * x + b * y * z;
    R[6] = -a * y + b * x * z;
    R[7] = a * x + b * y * z;
    R[8] = 1 - b * (x * x + y * y);
}

void ks_rot_to_quat(const double R[9], double q[4])
{
    double tr = R[0] + R[4] + R[8];
    if (tr > 0) {
        double s = sqrt(tr + 1.0) * 2;
        q[0] = 0.25 * s;
        q[1] = (R[7] - R[5]) / s;
        q[2] = (R[2] - R[6]) / s;
        q[3] = (R[3] - R[1]) / s;
    } else if (R[0] > R[4] && R[0] > R[8]) {
        double s = sqrt(1.0 + R[0] - R[4] - R[8]) * 2;
        q[0] = (R[7] - R[5]) / s;
        q[1] = 0.25 * s;
        q[2] = (R[1] + R[3]) / s;
        q[3] = (R[2] + R[6]) / s;
    } else if (R[4] > R[8]) {
        double s = sqrt(1.0 + R[4] - R[0] - R[8]) * 2;
        q[0] = (R[2] - R[6]) / s;
        q[1] = (R[1] + R[3]) / s;
        q[2] = 0.25 * s;
        q[3] = (R[5] + R[7]) / s;
    } else {
        double s = sqrt(1.0 + R[8] - R[0] - R[4]) * 2;
        q[0] = (R[3] - R[1]) / s;
        q[1] = (R[2] + R[6]) / s;
        q[2] = (R[5] + R[7]) / s;
        q[3] = 0.25 * s;
    }
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    for (int i = 0; i < 4; i++)
        q[i] /= n;
}

void ks_quat_to_rot(const double q[4], double R[9])
{
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double w = q[0] / n, x = q[1] / n, y = q[2] / n, z = q[3] / n;
    R[0] = 1 - 2 * (y * y + z * z);
    R[1] = 2 * (x * y - w * z);
    R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z);
    R[4] = 1 - 2 * (x * x + z * z);
    R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y);
    R[7] = 2 * (y * z + w * x);
    R[8] = 1 - 2 * (x * x + y * y);
}

void ks_rot_log(const double R[9], double w[3])
{
    double q[4];
    ks_rot_to_quat(R, q);
    if (q[0] < 0)
        for (int i = 0; i < 4; i++)
            q[i] = -q[i];
    double s = sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double th = 2.0 * atan2(s, q[0]);
    double f = s > 1e-12 ? th / s : 2.0;
    for (int i = 0; i < 3; i++)
        w[i] = q[i + 1] * f;
}

void ks_mat3_mul(const double A[9], const double B[9], double C[9])
{
    double T[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            T[i * 3 + j] = A[i * 3] * B[j] + A[i * 3 + 1] * B[3 + j] + A[i * 3 + 2] * B[6 + j];
    memcpy(C, T, sizeof T);
}

bool ks_chol(int n, double *A)
{
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++)
            s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0))
            return false;
        double d = sqrt(s);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++)
                v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / d;
        }
    }
    return true;
}

void ks_chol_solve(int n, const double *L, double *b)
{
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= L[i * n + k] * b[k];
        b[i] = s / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int k = i + 1; k < n; k++)
            s -= L[k * n + i] * b[k];
        b[i] = s / L[i * n + i];
    }
}

bool ks_spd_inverse(int n, double *A)
{
    double L[16 * 16], col[16];
    if (n > 16)
        return false;
    memcpy(L, A, sizeof(double) * n * n);
    if (!ks_chol(n, L))
        return false;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++)
            col[i] = i == j;
        ks_chol_solve(n, L, col);
        for (int i = 0; i < n; i++)
            A[i * n + j] = col[i];
    }
    return true;
}

void ks_sym_eig(int n, double *A, double *evals, double *V)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            V[i * n + j] = i == j;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                off += A[p * n + q] * A[p * n + q];
        if (off < 1e-30)
            break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = A[p * n + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++)
        evals[i] = A[i * n + i];
    /* sort ascending */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (evals[j] < evals[i]) {
                double t = evals[i];
                evals[i] = evals[j];
                evals[j] = t;
                for (int k = 0; k < n; k++) {
                    t = V[k * n + i];
                    V[k * n + i] = V[k * n + j];
                    V[k * n + j] = t;
                }
            }
}

/* Horn's quaternion solution for a cross-covariance S (sum a b^T). */
static void horn_rotation(const double S[9], double R[9])
{
    double Sxx = S[0], Sxy = S[1], Sxz = S[2], Syx = S[3], Syy = S[4], Syz = S[5], Szx = S[6], Szy = S[7], Szz = S[8];
    double N[16] = {Sxx + Syy + Szz, Syz - Szy,        Szx - Sxz,         Sxy - Syx,
                    Syz - Szy,       Sxx - Syy - Szz,  Sxy + Syx,         Szx + Sxz,
                    Szx - Sxz,       Sxy + Syx,        -Sxx + Syy - Szz,  Syz + Szy,
                    Sxy - Syx,       Szx + Sxz,        Syz + Szy,         -Sxx - Syy + Szz};
    double ev[4], V[16];
    ks_sym_eig(4, N, ev, V);
    double q[4] = {V[0 * 4 + 3], V[1 * 4 + 3], V[2 * 4 + 3], V[3 * 4 + 3]};
    ks_quat_to_rot(q, R);
}

void ks_mat3_orthonormalize(const double M[9], double R[9])
{
    /* nearest rotation to M maximizes trace(R^T M): Horn with S = M^T-like cross-covariance */
    double S[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            S[i * 3 + j] = M[j * 3 + i];
    horn_rotation(S, R);
}

bool ks_absolute_orientation(const double (*a)[3], const double (*b)[3], int n, double R[9], double t[3])
{
    if (n < 3)
        return false;
    double ca[3] = {0, 0, 0}, cb[3] = {0, 0, 0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            ca[k] += a[i][k] / n;
            cb[k] += b[i][k] / n;
        }
    double S[9] = {0};
    for (int i = 0; i < n; i++)
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                S[r * 3 + c] += (a[i][r] - ca[r]) * (b[i][c] - cb[c]);
    horn_rotation(S, R);
    for (int k = 0; k < 3; k++)
        t[k] = cb[k] - (R[k * 3] * ca[0] + R[k * 3 + 1] * ca[1] + R[k * 3 + 2] * ca[2]);
    return true;
}
