/* calib/linalg.h: small dense linear algebra for the calibration code (rotations, Cholesky of
 * small blocks, symmetric eigen-decomposition, absolute orientation). Internal. */
#ifndef KS_CALIB_LINALG_H
#define KS_CALIB_LINALG_H

#include <stdbool.h>

/* Rotation vector (rad) <-> rotation matrix (row-major). */
void ks_rot_exp(const double w[3], double R[9]);
void ks_rot_log(const double R[9], double w[3]);
/* C = A * B (3x3); may alias. */
void ks_mat3_mul(const double A[9], const double B[9], double C[9]);
/* Nearest rotation to a 3x3 matrix (polar decomposition through the quaternion method). */
void ks_mat3_orthonormalize(const double M[9], double R[9]);
void ks_rot_to_quat(const double R[9], double q[4]);      /* w, x, y, z */
void ks_quat_to_rot(const double q[4], double R[9]);

/* In-place Cholesky of an n x n SPD matrix (row-major, lower factor); false if not positive definite. */
bool ks_chol(int n, double *A);
/* Solves with a factor from ks_chol; b is overwritten by x. */
void ks_chol_solve(int n, const double *L, double *b);
/* Inverse of an SPD matrix (A overwritten); false if not positive definite. */
bool ks_spd_inverse(int n, double *A);

/* Eigen-decomposition of a symmetric n x n matrix (n <= 16) by Jacobi rotations: eigenvalues in
 * ascending order, eigenvectors in the columns of V. A is destroyed. */
void ks_sym_eig(int n, double *A, double *evals, double *V);

/* Rigid transform (R, t) minimizing sum |R a_i + t - b_i|^2 (Horn, quaternions). n >= 3. */
bool ks_absolute_orientation(const double (*a)[3], const double (*b)[3], int n, double R[9], double t[3]);

#endif
