/* calib/solver.c: the joint rig calibration (see kinsync/rigcalib.h, docs/rig-calibration.md).
 *
 * Parameters: for every device but the reference the pose of its observed camera in the rig
 * frame (Rc, c: x_rig = Rc x_cam + c), updated as Rc <- exp(w) Rc, c <- c + dc; for every frame
 * set the board pose (Rb, tb: x_rig = Rb x_board + tb), updated as Rb <- exp(phi) Rb,
 * tb <- tb + dt. A corner X observed by device i in frame set f predicts
 * uv = project(Rc^T (Rb X + tb - c)). Each observation couples one device with one board, so the
 * normal matrix is an arrow: block-diagonal board part, block-diagonal device part, and the
 * device-board couplings. Board blocks (6x6) are eliminated per frame set (Schur complement) and
 * the reduced device system is solved with LAPACKE. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calib/camera_model.h"
#include "calib/linalg.h"
#include "kinsync/rigcalib.h"
#include "util/monotime.h"

#ifdef KS_HAVE_LAPACKE /* defined by CMake when liblapacke was found */
#include <lapacke.h>
#endif

void ks_rigcal_options_default(ks_rigcal_options *o)
{
    memset(o, 0, sizeof *o);
    o->reference_device = 0;
    o->loss = KS_LOSS_HUBER;
    o->loss_scale_px = 1.0;
    o->max_iterations = 50;
    o->min_corners_per_view = 8;
}

void ks_rigcal_result_free(ks_rigcal_result *r)
{
    if (!r)
        return;
    free(r->devices);
    free(r->board_to_rig);
    free(r->board_valid);
    memset(r, 0, sizeof *r);
}

typedef struct pose {
    double R[9], t[3]; /* x_rig = R x + t */
} pose;

typedef struct view {
    int start, count; /* range in the sorted observation index */
    bool usable;
    ks_extrinsics board_to_cam; /* from PnP */
    double pnp_rms;
} view;

typedef struct solver {
    const ks_rigcal_problem *p;
    ks_rigcal_options o;
    int nd, nf, ref;
    int *order;        /* obs indices sorted by (frame, device) */
    double (*X)[3];    /* board point of each obs (by obs index) */
    bool *obs_ok;      /* tag known */
    view *views;       /* nf * nd */
    int *pidx;         /* device -> parameter block index, -1 for the reference */
    pose *dev;         /* observed camera -> rig */
    pose *board;       /* board -> rig */
    bool *board_ok;
} solver;

static void pose_from_ext(const ks_extrinsics *e, pose *p)
{
    memcpy(p->R, e->R, sizeof p->R);
    memcpy(p->t, e->t, sizeof p->t);
}

static void ext_from_pose(const pose *p, ks_extrinsics *e)
{
    memcpy(e->R, p->R, sizeof p->R);
    memcpy(e->t, p->t, sizeof p->t);
}

/* Robust weight and cost of a squared residual norm. */
static void robust(const ks_rigcal_options *o, double e2, double *w, double *rho)
{
    double k = o->loss_scale_px > 0 ? o->loss_scale_px : 1.0;
    switch (o->loss) {
    case KS_LOSS_HUBER: {
        double e = sqrt(e2);
        if (e <= k) {
            *w = 1.0;
            *rho = e2;
        } else {
            *w = k / e;
            *rho = 2 * k * e - k * k;
        }
        break;
    }
    case KS_LOSS_CAUCHY:
        *w = 1.0 / (1.0 + e2 / (k * k));
        *rho = k * k * log1p(e2 / (k * k));
        break;
    default:
        *w = 1.0;
        *rho = e2;
    }
}

/* Residual (and, if J is given, the 2x6 Jacobians for the device and the board) of observation o. */
static bool residual(const solver *s, int oi, double r[2], double Jd[12], double Jb[12])
{
    const ks_rigcal_obs *ob = &s->p->obs[oi];
    const pose *C = &s->dev[ob->device], *B = &s->board[ob->frame];
    const double *X = s->X[oi];
    double RX[3], Y[3], v[3], Z[3];
    for (int k = 0; k < 3; k++)
        RX[k] = B->R[k * 3] * X[0] + B->R[k * 3 + 1] * X[1] + B->R[k * 3 + 2] * X[2];
    for (int k = 0; k < 3; k++) {
        Y[k] = RX[k] + B->t[k];
        v[k] = Y[k] - C->t[k];
    }
    for (int k = 0; k < 3; k++)
        Z[k] = C->R[0 * 3 + k] * v[0] + C->R[1 * 3 + k] * v[1] + C->R[2 * 3 + k] * v[2];
    double uv[2], Jp[6];
    const ks_intrinsics *in = &s->p->devices[ob->device].intrinsics;
    if (!Jd) {
        if (!ks_project(in, Z, uv))
            return false;
    } else if (!ks_project_jac(in, Z, uv, Jp)) {
        return false;
    }
    r[0] = uv[0] - ob->uv[0];
    r[1] = uv[1] - ob->uv[1];
    if (!Jd)
        return true;
    /* A = Jp * Rc^T (2x3) */
    double A[6];
    for (int rr = 0; rr < 2; rr++)
        for (int c = 0; c < 3; c++)
            A[rr * 3 + c] = Jp[rr * 3] * C->R[c * 3] + Jp[rr * 3 + 1] * C->R[c * 3 + 1] + Jp[rr * 3 + 2] * C->R[c * 3 + 2];
    /* device: dZ/dw = Rc^T [v]x, dZ/dc = -Rc^T;  board: dZ/dphi = -Rc^T [RX]x, dZ/dt = Rc^T */
    double vx[9] = {0, -v[2], v[1], v[2], 0, -v[0], -v[1], v[0], 0};
    double rx[9] = {0, -RX[2], RX[1], RX[2], 0, -RX[0], -RX[1], RX[0], 0};
    for (int rr = 0; rr < 2; rr++)
        for (int c = 0; c < 3; c++) {
            double a = 0, b = 0;
            for (int k = 0; k < 3; k++) {
                a += A[rr * 3 + k] * vx[k * 3 + c];
                b += A[rr * 3 + k] * rx[k * 3 + c];
            }
            Jd[rr * 6 + c] = a;
            Jd[rr * 6 + 3 + c] = -A[rr * 3 + c];
            Jb[rr * 6 + c] = -b;
            Jb[rr * 6 + 3 + c] = A[rr * 3 + c];
        }
    return true;
}

static bool obs_used(const solver *s, int oi)
{
    const ks_rigcal_obs *ob = &s->p->obs[oi];
    return s->obs_ok[oi] && s->views[ob->frame * s->nd + ob->device].usable && s->board_ok[ob->frame];
}

/* Robust cost and plain squared error over the used observations. */
static double total_cost(const solver *s, double *sq, int *n)
{
    double cost = 0, e = 0;
    int cnt = 0;
    for (int oi = 0; oi < s->p->obs_count; oi++) {
        if (!obs_used(s, oi))
            continue;
        double r[2], w, rho;
        if (!residual(s, oi, r, NULL, NULL)) {
            /* behind the camera or outside the lens model: a large constant penalty keeps LM away */
            robust(&s->o, 1e6, &w, &rho);
            cost += rho;
            continue;
        }
        double e2 = r[0] * r[0] + r[1] * r[1];
        robust(&s->o, e2, &w, &rho);
        cost += rho;
        e += e2;
        cnt++;
    }
    if (sq)
        *sq = e;
    if (n)
        *n = cnt;
    return cost;
}

static int cmp_obs(const void *a, const void *b, void *ctx)
{
    const ks_rigcal_obs *o = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (o[i].frame != o[j].frame)
        return o[i].frame - o[j].frame;
    if (o[i].device != o[j].device)
        return o[i].device - o[j].device;
    return i - j;
}

/* qsort_r is a GNU extension; a simple merge sort keeps this portable. */
static void sort_obs(int *idx, int n, const ks_rigcal_obs *o)
{
    if (n < 2)
        return;
    int *tmp = malloc(sizeof(int) * (size_t)n);
    if (!tmp) { /* insertion sort fallback */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && cmp_obs(&idx[j - 1], &idx[j], (void *)o) > 0; j--) {
                int t = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = t;
            }
        return;
    }
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = cmp_obs(&idx[a], &idx[b], (void *)o) <= 0 ? idx[a++] : idx[b++];
            while (a < mid)
                tmp[k++] = idx[a++];
            while (b < hi)
                tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, sizeof(int) * (size_t)n);
    }
    free(tmp);
}

/* Reduced solve S x = b (n x n, SPD expected). */
static bool solve_reduced(int n, double *S, double *b)
{
    if (n == 0)
        return true;
#ifdef KS_HAVE_LAPACKE
    double *copy = malloc(sizeof(double) * (size_t)n * n);
    double *bc = malloc(sizeof(double) * (size_t)n);
    if (!copy || !bc) {
        free(copy);
        free(bc);
        return false;
    }
    memcpy(copy, S, sizeof(double) * (size_t)n * n);
    memcpy(bc, b, sizeof(double) * (size_t)n);
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', n, 1, S, n, b, 1);
    if (info != 0) {
        /* not positive definite (degenerate geometry): general LU solve */
        lapack_int *piv = malloc(sizeof(lapack_int) * (size_t)n);
        memcpy(b, bc, sizeof(double) * (size_t)n);
        info = piv ? LAPACKE_dgesv(LAPACK_ROW_MAJOR, n, 1, copy, n, piv, b, 1) : -1;
        free(piv);
    }
    free(copy);
    free(bc);
    return info == 0;
#else
    if (!ks_chol(n, S))
        return false;
    ks_chol_solve(n, S, b);
    return true;
#endif
}

/* Inverse of the SPD reduced matrix (for the covariance). */
static bool invert_reduced(int n, double *S)
{
    if (n == 0)
        return true;
#ifdef KS_HAVE_LAPACKE
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, S, n) != 0)
        return false;
    if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', n, S, n) != 0)
        return false;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            S[i * n + j] = S[j * n + i];
    return true;
#else
    double *L = malloc(sizeof(double) * (size_t)n * n), *col = malloc(sizeof(double) * (size_t)n);
    bool ok = L && col;
    if (ok) {
        memcpy(L, S, sizeof(double) * (size_t)n * n);
        ok = ks_chol(n, L);
    }
    for (int j = 0; ok && j < n; j++) {
        for (int i = 0; i < n; i++)
            col[i] = i == j;
        ks_chol_solve(n, L, col);
        for (int i = 0; i < n; i++)
            S[i * n + j] = col[i];
    }
    free(L);
    free(col);
    return ok;
#endif
}

/* Builds and solves the damped normal equations; writes the steps into dd (devices) and db
 * (boards). With lambda < 0 only builds the undamped reduced matrix into S_out (for covariance). */
static bool lm_step(solver *s, double lambda, double *dd, double *db, double *S_out)
{
    int nd = s->nd, nf = s->nf, D = 6 * (nd - 1);
    double *S = calloc((size_t)D * D + 1, sizeof(double));
    double *rhs = calloc((size_t)D + 1, sizeof(double));
    double *Hib = malloc(sizeof(double) * 36 * (size_t)nd); /* per device coupling with the current board */
    double *Hbb_all = malloc(sizeof(double) * 36 * (size_t)nf);
    double *gb_all = malloc(sizeof(double) * 6 * (size_t)nf);
    double *Hib_all = malloc(sizeof(double) * 36 * (size_t)nf * nd);
    bool *seen_all = calloc((size_t)nf * nd, sizeof(bool));
    bool ok = S && rhs && Hib && Hbb_all && gb_all && Hib_all && seen_all;
    if (!ok)
        goto out;
    /* device diagonal blocks are accumulated straight into S */
    for (int f = 0; f < nf; f++) {
        double *Hbb = Hbb_all + 36 * f, *gb = gb_all + 6 * f;
        memset(Hbb, 0, sizeof(double) * 36);
        memset(gb, 0, sizeof(double) * 6);
        bool *seen = seen_all + (size_t)f * nd;
        double *Hf = Hib_all + (size_t)36 * f * nd;
        if (!s->board_ok[f])
            continue;
        for (int i = 0; i < nd; i++) {
            view *v = &s->views[f * nd + i];
            if (!v->usable)
                continue;
            int pi = s->pidx[i];
            double *Hi = Hf + 36 * i;
            memset(Hi, 0, sizeof(double) * 36);
            for (int k = 0; k < v->count; k++) {
                int oi = s->order[v->start + k];
                if (!s->obs_ok[oi])
                    continue;
                double r[2], Jd[12], Jb[12], w, rho;
                if (!residual(s, oi, r, Jd, Jb))
                    continue;
                robust(&s->o, r[0] * r[0] + r[1] * r[1], &w, &rho);
                for (int a = 0; a < 6; a++) {
                    for (int c = 0; c < 6; c++)
                        Hbb[a * 6 + c] += w * (Jb[a] * Jb[c] + Jb[6 + a] * Jb[6 + c]);
                    gb[a] += w * (Jb[a] * r[0] + Jb[6 + a] * r[1]);
                }
                if (pi < 0)
                    continue;
                seen[i] = true;
                for (int a = 0; a < 6; a++) {
                    for (int c = 0; c < 6; c++) {
                        S[(6 * pi + a) * D + 6 * pi + c] += w * (Jd[a] * Jd[c] + Jd[6 + a] * Jd[6 + c]);
                        Hi[a * 6 + c] += w * (Jd[a] * Jb[c] + Jd[6 + a] * Jb[6 + c]); /* device row, board col */
                    }
                    rhs[6 * pi + a] += w * (Jd[a] * r[0] + Jd[6 + a] * r[1]);
                }
            }
        }
    }
    /* damping of the device blocks */
    if (lambda > 0)
        for (int a = 0; a < D; a++)
            S[a * D + a] += lambda * (S[a * D + a] + 1e-9);
    /* Schur complement over the boards */
    for (int f = 0; f < nf; f++) {
        if (!s->board_ok[f])
            continue;
        double L[36];
        memcpy(L, Hbb_all + 36 * f, sizeof L);
        if (lambda > 0)
            for (int a = 0; a < 6; a++)
                L[a * 6 + a] += lambda * (L[a * 6 + a] + 1e-9);
        else
            for (int a = 0; a < 6; a++)
                L[a * 6 + a] += 1e-12 * (L[a * 6 + a] + 1e-12);
        if (!ks_chol(6, L)) {
            s->board_ok[f] = false; /* degenerate board pose: drop the frame set */
            continue;
        }
        bool *seen = seen_all + (size_t)f * nd;
        double *Hf = Hib_all + (size_t)36 * f * nd;
        /* K_i = Hbb^-1 Hib_i^T (6x6), via columns */
        double *K = Hib; /* reuse: 36 per device */
        for (int i = 0; i < nd; i++) {
            if (!seen[i])
                continue;
            double *Hi = Hf + 36 * i;
            for (int c = 0; c < 6; c++) {
                double col[6];
                for (int a = 0; a < 6; a++)
                    col[a] = Hi[c * 6 + a]; /* column c of Hi^T = row c of Hi */
                ks_chol_solve(6, L, col);
                for (int a = 0; a < 6; a++)
                    K[i * 36 + a * 6 + c] = col[a];
            }
        }
        double gbs[6];
        memcpy(gbs, gb_all + 6 * f, sizeof gbs);
        ks_chol_solve(6, L, gbs); /* Hbb^-1 gb */
        for (int i = 0; i < nd; i++) {
            if (!seen[i])
                continue;
            int pi = s->pidx[i];
            double *Hi = Hf + 36 * i;
            for (int j = 0; j < nd; j++) {
                if (!seen[j])
                    continue;
                int pj = s->pidx[j];
                /* S_ij -= Hi * K_j */
                for (int a = 0; a < 6; a++)
                    for (int c = 0; c < 6; c++) {
                        double sum = 0;
                        for (int k = 0; k < 6; k++)
                            sum += Hi[a * 6 + k] * K[j * 36 + k * 6 + c];
                        S[(6 * pi + a) * D + 6 * pj + c] -= sum;
                    }
            }
            for (int a = 0; a < 6; a++) {
                double sum = 0;
                for (int k = 0; k < 6; k++)
                    sum += Hi[a * 6 + k] * gbs[k];
                rhs[6 * pi + a] -= sum;
            }
        }
        if (db) {
            /* keep L for the back-substitution: store factor in Hbb_all */
            memcpy(Hbb_all + 36 * f, L, sizeof L);
        }
    }
    if (S_out) {
        memcpy(S_out, S, sizeof(double) * (size_t)D * D);
        goto out;
    }
    for (int a = 0; a < D; a++)
        rhs[a] = -rhs[a];
    if (!solve_reduced(D, S, rhs)) {
        ok = false;
        goto out;
    }
    for (int i = 0; i < nd; i++) {
        if (s->pidx[i] < 0)
            memset(dd + 6 * i, 0, sizeof(double) * 6);
        else
            memcpy(dd + 6 * i, rhs + 6 * s->pidx[i], sizeof(double) * 6);
    }
    /* board steps: db = Hbb^-1 (-gb - sum_i Hib_i^T dd_i) */
    for (int f = 0; f < nf; f++) {
        double *x = db + 6 * f;
        memset(x, 0, sizeof(double) * 6);
        if (!s->board_ok[f])
            continue;
        bool *seen = seen_all + (size_t)f * nd;
        double *Hf = Hib_all + (size_t)36 * f * nd;
        for (int a = 0; a < 6; a++)
            x[a] = -gb_all[6 * f + a];
        for (int i = 0; i < nd; i++) {
            if (!seen[i])
                continue;
            double *Hi = Hf + 36 * i;
            for (int c = 0; c < 6; c++)
                for (int a = 0; a < 6; a++)
                    x[c] -= Hi[a * 6 + c] * dd[6 * i + a];
        }
        ks_chol_solve(6, Hbb_all + 36 * f, x);
    }
out:
    free(S);
    free(rhs);
    free(Hib);
    free(Hbb_all);
    free(gb_all);
    free(Hib_all);
    free(seen_all);
    return ok;
}

static void apply_step(const double d[6], pose *p)
{
    double Rd[9];
    ks_rot_exp(d, Rd);
    ks_mat3_mul(Rd, p->R, p->R);
    for (int k = 0; k < 3; k++)
        p->t[k] += d[3 + k];
}

/* ---- initialization ---- */

static ks_status init_views(solver *s, ks_error *err)
{
    int nd = s->nd;
    const ks_rigcal_problem *p = s->p;
    double (*P)[3] = malloc(sizeof(double[3]) * (size_t)(p->obs_count + 1));
    double (*uv)[2] = malloc(sizeof(double[2]) * (size_t)(p->obs_count + 1));
    if (!P || !uv) {
        free(P);
        free(uv);
        return ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
    }
    for (int k = 0; k < p->obs_count;) {
        int oi = s->order[k];
        int f = p->obs[oi].frame, d = p->obs[oi].device, start = k;
        while (k < p->obs_count && p->obs[s->order[k]].frame == f && p->obs[s->order[k]].device == d)
            k++;
        view *v = &s->views[f * nd + d];
        v->start = start;
        v->count = k - start;
        int n = 0;
        for (int j = start; j < k; j++) {
            int o2 = s->order[j];
            if (!s->obs_ok[o2])
                continue;
            memcpy(P[n], s->X[o2], sizeof P[n]);
            memcpy(uv[n], p->obs[o2].uv, sizeof uv[n]);
            n++;
        }
        if (n < s->o.min_corners_per_view || n < 4)
            continue;
        v->usable = ks_board_pnp(&p->devices[d].intrinsics, (const double(*)[3])P, (const double(*)[2])uv, n,
                                 &v->board_to_cam, &v->pnp_rms) &&
                    v->pnp_rms < 10.0;
    }
    free(P);
    free(uv);
    return KS_OK;
}

/* Links every device to the reference through the covisibility graph (maximum spanning tree on
 * the number of shared frame sets) and averages the relative poses along each tree edge. */
static ks_status init_devices(solver *s, ks_error *err)
{
    int nd = s->nd, nf = s->nf;
    int *shared = calloc((size_t)nd * nd, sizeof(int));
    int *vcount = calloc((size_t)nd, sizeof(int));
    bool *known = calloc((size_t)nd, sizeof(bool));
    int *parent = malloc(sizeof(int) * (size_t)nd);
    double (*cq)[4] = malloc(sizeof(double[4]) * (size_t)nf), (*cc)[3] = malloc(sizeof(double[3]) * (size_t)nf);
    ks_status st = KS_OK;
    if (!shared || !vcount || !known || !parent || !cq || !cc) {
        st = ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
        goto out;
    }
    for (int f = 0; f < nf; f++)
        for (int a = 0; a < nd; a++) {
            if (!s->views[f * nd + a].usable)
                continue;
            vcount[a]++;
            for (int b = a + 1; b < nd; b++)
                if (s->views[f * nd + b].usable) {
                    shared[a * nd + b]++;
                    shared[b * nd + a]++;
                }
        }
    for (int i = 0; i < nd; i++)
        if (vcount[i] == 0) {
            st = ks_error_set(err, KS_EINVAL,
                              "rig calibration: device %d (%s) saw the board in none of the %d frame sets (at least "
                              "%d corners of the board per view are needed); check its view of the board, its "
                              "exposure, and that its images were searched",
                              i, s->p->devices[i].serial, nf, s->o.min_corners_per_view);
            goto out;
        }
    /* camera -> rig of the reference: inverse of depth_to_camera (the rig frame is its depth camera) */
    ks_extrinsics inv;
    ks_extrinsics_invert(&s->p->devices[s->ref].depth_to_camera, &inv);
    pose_from_ext(&inv, &s->dev[s->ref]);
    known[s->ref] = true;
    for (int added = 1; added < nd; added++) {
        int best = -1, bp = -1, bw = 0;
        for (int a = 0; a < nd; a++) {
            if (!known[a])
                continue;
            for (int b = 0; b < nd; b++)
                if (!known[b] && shared[a * nd + b] > bw) {
                    bw = shared[a * nd + b];
                    best = b;
                    bp = a;
                }
        }
        if (best < 0) {
            char linked[256] = "", missing[256] = "";
            for (int i = 0; i < nd; i++) {
                char *dst = known[i] ? linked : missing;
                size_t len = strlen(dst);
                if (len < sizeof linked - 40)
                    snprintf(dst + len, sizeof linked - len, "%s%d (%s)", len ? ", " : "", i,
                             s->p->devices[i].serial);
            }
            st = ks_error_set(err, KS_EINVAL,
                              "rig calibration: the devices do not form one connected group: %s never saw the board "
                              "in the same frame set as any of %s. Record frame sets in which the board is seen at "
                              "the same time by one of the first group and one of the second (hold it between them)",
                              missing, linked);
            goto out;
        }
        parent[best] = bp;
        /* cam_b -> rig from every shared frame set; a single view's PnP can be wrong (the planar
         * pose ambiguity of a small or distant board), so the candidates are filtered around their
         * medoid before they are averaged */
        int n = 0;
        for (int f = 0; f < nf; f++) {
            view *va = &s->views[f * nd + bp], *vb = &s->views[f * nd + best];
            if (!va->usable || !vb->usable)
                continue;
            ks_extrinsics a2r, b2board, b2r, tmp;
            ext_from_pose(&s->dev[bp], &a2r);
            ks_extrinsics_invert(&vb->board_to_cam, &b2board);
            ks_extrinsics_compose(&b2board, &va->board_to_cam, &tmp); /* cam_b -> cam_a */
            ks_extrinsics_compose(&tmp, &a2r, &b2r);
            ks_rot_to_quat(b2r.R, cq[n]);
            memcpy(cc[n], b2r.t, sizeof cc[n]);
            n++;
        }
        int med = 0;
        double med_cost = INFINITY;
        for (int i = 0; i < n; i++) {
            double cost = 0;
            for (int j = 0; j < n; j++) {
                double dot = fabs(cq[i][0] * cq[j][0] + cq[i][1] * cq[j][1] + cq[i][2] * cq[j][2] + cq[i][3] * cq[j][3]);
                cost += 2.0 * acos(fmin(dot, 1.0)) * 180.0 / M_PI +
                        sqrt((cc[i][0] - cc[j][0]) * (cc[i][0] - cc[j][0]) + (cc[i][1] - cc[j][1]) * (cc[i][1] - cc[j][1]) +
                             (cc[i][2] - cc[j][2]) * (cc[i][2] - cc[j][2])) / 50.0;
            }
            if (cost < med_cost) {
                med_cost = cost;
                med = i;
            }
        }
        double qsum[4] = {0, 0, 0, 0}, csum[3] = {0, 0, 0};
        int used = 0;
        for (int i = 0; i < n; i++) {
            double dot = cq[i][0] * cq[med][0] + cq[i][1] * cq[med][1] + cq[i][2] * cq[med][2] + cq[i][3] * cq[med][3];
            double ang = 2.0 * acos(fmin(fabs(dot), 1.0)) * 180.0 / M_PI;
            double dist = sqrt((cc[i][0] - cc[med][0]) * (cc[i][0] - cc[med][0]) +
                               (cc[i][1] - cc[med][1]) * (cc[i][1] - cc[med][1]) +
                               (cc[i][2] - cc[med][2]) * (cc[i][2] - cc[med][2]));
            if (ang > 3.0 || dist > 100.0)
                continue; /* an outlying view */
            for (int k = 0; k < 4; k++)
                qsum[k] += dot < 0 ? -cq[i][k] : cq[i][k];
            for (int k = 0; k < 3; k++)
                csum[k] += cc[i][k];
            used++;
        }
        ks_quat_to_rot(qsum, s->dev[best].R);
        for (int k = 0; k < 3; k++)
            s->dev[best].t[k] = csum[k] / used;
        known[best] = true;
    }
out:
    free(shared);
    free(vcount);
    free(known);
    free(parent);
    free(cq);
    free(cc);
    return st;
}

static void init_boards(solver *s)
{
    int nd = s->nd;
    for (int f = 0; f < s->nf; f++) {
        int best = -1;
        for (int i = 0; i < nd; i++) {
            view *v = &s->views[f * nd + i];
            if (v->usable && (best < 0 || v->count > s->views[f * nd + best].count))
                best = i;
        }
        s->board_ok[f] = best >= 0;
        if (best < 0)
            continue;
        ks_extrinsics c2r, b2r;
        ext_from_pose(&s->dev[best], &c2r);
        ks_extrinsics_compose(&s->views[f * nd + best].board_to_cam, &c2r, &b2r);
        pose_from_ext(&b2r, &s->board[f]);
    }
}

/* ---- cross-check ---- */

static void cross_check(solver *s, ks_rigcal_result *r)
{
    int nd = s->nd, nf = s->nf;
    const ks_rigcal_problem *p = s->p;
    int ntags = ks_board_tag_count(p->board);
    int npts = ntags * 4;
    /* per frame: for each corner, the observations that see it */
    int *first = malloc(sizeof(int) * (size_t)npts), *next = malloc(sizeof(int) * (size_t)(p->obs_count + 1));
    double (*tri)[3] = malloc(sizeof(double[3]) * (size_t)npts), (*mod)[3] = malloc(sizeof(double[3]) * (size_t)npts);
    double *ray_sq = calloc((size_t)nd, sizeof(double));
    int *ray_n = calloc((size_t)nd, sizeof(int));
    double fit_sq = 0;
    int fit_n = 0, tri_n = 0;
    if (!first || !next || !tri || !mod || !ray_sq || !ray_n)
        goto out;
    for (int f = 0; f < nf; f++) {
        if (!r->board_valid[f])
            continue;
        for (int k = 0; k < npts; k++)
            first[k] = -1;
        for (int i = 0; i < nd; i++) {
            view *v = &s->views[f * nd + i];
            if (!v->usable)
                continue;
            for (int k = 0; k < v->count; k++) {
                int oi = s->order[v->start + k];
                if (!s->obs_ok[oi])
                    continue;
                int pt = (p->obs[oi].tag_id - p->board->first_id) * 4 + p->obs[oi].corner;
                next[oi] = first[pt];
                first[pt] = oi;
            }
        }
        int m = 0;
        for (int pt = 0; pt < npts; pt++) {
            double A[9] = {0}, b[3] = {0};
            int devs = 0, last_dev = -1;
            double dirs[16][3], orig[16][3];
            int dev_of[16];
            for (int oi = first[pt]; oi >= 0 && devs < 16; oi = next[oi]) {
                int d = p->obs[oi].device;
                if (d == last_dev)
                    continue;
                double xy[2];
                if (!ks_unproject_ray(&p->devices[d].intrinsics, p->obs[oi].uv, xy))
                    continue;
                double cam[3] = {xy[0], xy[1], 1}, dir[3];
                const pose *C = &s->dev[d];
                for (int k = 0; k < 3; k++)
                    dir[k] = C->R[k * 3] * cam[0] + C->R[k * 3 + 1] * cam[1] + C->R[k * 3 + 2] * cam[2];
                double nrm = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
                for (int k = 0; k < 3; k++)
                    dir[k] /= nrm;
                for (int a = 0; a < 3; a++) {
                    for (int c = 0; c < 3; c++) {
                        double q = (a == c) - dir[a] * dir[c];
                        A[a * 3 + c] += q;
                        b[a] += q * C->t[c];
                    }
                }
                memcpy(dirs[devs], dir, sizeof dir);
                memcpy(orig[devs], C->t, sizeof orig[devs]);
                dev_of[devs] = d;
                devs++;
                last_dev = d;
            }
            if (devs < 2 || !ks_chol(3, A))
                continue;
            ks_chol_solve(3, A, b);
            /* reject near-parallel rays: the point must be in front of every camera */
            bool good = true;
            for (int k = 0; k < devs; k++) {
                double v[3] = {b[0] - orig[k][0], b[1] - orig[k][1], b[2] - orig[k][2]};
                if (v[0] * dirs[k][0] + v[1] * dirs[k][1] + v[2] * dirs[k][2] <= 0)
                    good = false;
            }
            if (!good)
                continue;
            for (int k = 0; k < devs; k++) {
                double v[3] = {b[0] - orig[k][0], b[1] - orig[k][1], b[2] - orig[k][2]};
                double along = v[0] * dirs[k][0] + v[1] * dirs[k][1] + v[2] * dirs[k][2];
                double d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - along * along;
                ray_sq[dev_of[k]] += d2 > 0 ? d2 : 0;
                ray_n[dev_of[k]]++;
            }
            memcpy(tri[m], b, sizeof tri[m]);
            ks_board_corner(p->board, p->board->first_id + pt / 4, pt % 4, mod[m]);
            m++;
        }
        tri_n += m;
        if (m >= 6) {
            double R[9], t[3];
            if (ks_absolute_orientation((const double(*)[3])mod, (const double(*)[3])tri, m, R, t)) {
                for (int k = 0; k < m; k++) {
                    double q[3];
                    for (int a = 0; a < 3; a++)
                        q[a] = R[a * 3] * mod[k][0] + R[a * 3 + 1] * mod[k][1] + R[a * 3 + 2] * mod[k][2] + t[a];
                    fit_sq += (q[0] - tri[k][0]) * (q[0] - tri[k][0]) + (q[1] - tri[k][1]) * (q[1] - tri[k][1]) +
                              (q[2] - tri[k][2]) * (q[2] - tri[k][2]);
                    fit_n++;
                }
            }
        }
    }
    r->triangulated_points = tri_n;
    r->board_fit_rms_mm = fit_n ? sqrt(fit_sq / fit_n) : NAN;
    for (int i = 0; i < nd; i++) {
        r->devices[i].ray_count = ray_n[i];
        r->devices[i].ray_rms_mm = ray_n[i] ? sqrt(ray_sq[i] / ray_n[i]) : NAN;
    }
out:
    free(first);
    free(next);
    free(tri);
    free(mod);
    free(ray_sq);
    free(ray_n);
}

/* ---- driver ---- */

static ks_status check_problem(const ks_rigcal_problem *p, const ks_rigcal_options *o, ks_error *err)
{
    if (!p || !p->board || !p->devices || p->device_count < 1 || p->frame_count < 1 || (p->obs_count > 0 && !p->obs))
        return ks_error_set(err, KS_EINVAL, "rig calibration: empty problem (need a board, devices and frame sets)");
    ks_status st = ks_board_validate(p->board, err);
    if (st)
        return st;
    if (o->reference_device < 0 || o->reference_device >= p->device_count)
        return ks_error_set(err, KS_EINVAL, "rig calibration: reference device %d out of range 0..%d",
                            o->reference_device, p->device_count - 1);
    for (int i = 0; i < p->device_count; i++) {
        const ks_intrinsics *in = &p->devices[i].intrinsics;
        if (!(in->fx > 0 && in->fy > 0) ||
            (in->model != KS_LENS_BROWN_CONRADY && in->model != KS_LENS_RATIONAL_6KT))
            return ks_error_set(err, KS_EINVAL, "rig calibration: device %d (%s) has no usable intrinsics; load its "
                                "factory calibration first", i, p->devices[i].serial);
    }
    for (int k = 0; k < p->obs_count; k++) {
        const ks_rigcal_obs *ob = &p->obs[k];
        if (ob->device < 0 || ob->device >= p->device_count || ob->frame < 0 || ob->frame >= p->frame_count ||
            !isfinite(ob->uv[0]) || !isfinite(ob->uv[1]))
            return ks_error_set(err, KS_EINVAL, "rig calibration: observation %d names device %d / frame set %d "
                                "(have %d devices, %d frame sets) or has a non-finite pixel",
                                k, ob->device, ob->frame, p->device_count, p->frame_count);
    }
    return KS_OK;
}

/* Levenberg-Marquardt from the current state; returns the iterations taken. */
static int run_lm(solver *s, const ks_rigcal_options *o, double *dd, double *db, pose *dev_save, pose *board_save,
                  double *cost)
{
    double lambda = 1e-4, sq;
    int n, it;
    for (it = 0; it < o->max_iterations; it++) {
        if (!lm_step(s, lambda, dd, db, NULL)) {
            lambda *= 10;
            if (lambda > 1e8)
                break;
            continue;
        }
        memcpy(dev_save, s->dev, sizeof(pose) * (size_t)s->nd);
        memcpy(board_save, s->board, sizeof(pose) * (size_t)s->nf);
        double step = 0;
        for (int i = 0; i < s->nd; i++) {
            apply_step(dd + 6 * i, &s->dev[i]);
            for (int k = 0; k < 6; k++)
                step = fmax(step, fabs(dd[6 * i + k]));
        }
        for (int f = 0; f < s->nf; f++)
            if (s->board_ok[f])
                apply_step(db + 6 * f, &s->board[f]);
        double nc = total_cost(s, &sq, &n);
        if (nc < *cost) {
            double rel = (*cost - nc) / (*cost + 1e-300);
            *cost = nc;
            lambda = fmax(lambda * 0.2, 1e-12);
            if (o->progress)
                o->progress(o->progress_ctx, it + 1, n ? sqrt(sq / n) : NAN);
            if (rel < 1e-12 || step < 1e-12)
                break;
        } else {
            memcpy(s->dev, dev_save, sizeof(pose) * (size_t)s->nd);
            memcpy(s->board, board_save, sizeof(pose) * (size_t)s->nf);
            lambda *= 10;
            if (lambda > 1e8)
                break;
        }
    }
    return it;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Marks views whose RMS is far above the typical view (> max(3 px, 10 x median)) and among the
 * worst of this round (> half the largest) unusable, keeping at least two views per device; frame
 * sets left without a view lose their board. Returns the number of views dropped. */
static int reject_bad_views(solver *s)
{
    int nd = s->nd, nf = s->nf, nv = 0;
    double *rms = malloc(sizeof(double) * (size_t)nd * nf), *sorted = malloc(sizeof(double) * (size_t)nd * nf);
    int *views = calloc((size_t)nd, sizeof(int));
    int rejected = 0;
    if (!rms || !sorted || !views)
        goto out;
    for (int f = 0; f < nf; f++)
        for (int i = 0; i < nd; i++) {
            view *v = &s->views[f * nd + i];
            rms[f * nd + i] = -1;
            if (!v->usable || !s->board_ok[f])
                continue;
            double sum = 0;
            int n = 0;
            for (int k = 0; k < v->count; k++) {
                int oi = s->order[v->start + k];
                double r[2];
                if (!s->obs_ok[oi])
                    continue;
                if (residual(s, oi, r, NULL, NULL))
                    sum += r[0] * r[0] + r[1] * r[1];
                else
                    sum += 1e6;
                n++;
            }
            if (n) {
                rms[f * nd + i] = sqrt(sum / n);
                sorted[nv++] = rms[f * nd + i];
                views[i]++;
            }
        }
    if (nv < 3)
        goto out;
    qsort(sorted, (size_t)nv, sizeof(double), cmp_double);
    /* only the worst views of this round: a bad view inflates its frame-set partners until the
     * adjustment is repeated without it */
    double limit = fmax(fmax(3.0, 10.0 * sorted[nv / 2]), 0.5 * sorted[nv - 1]);
    for (int f = 0; f < nf; f++)
        for (int i = 0; i < nd; i++)
            if (rms[f * nd + i] > limit && views[i] > 2) {
                s->views[f * nd + i].usable = false;
                views[i]--;
                rejected++;
            }
    for (int f = 0; f < nf && rejected; f++) {
        bool any = false;
        for (int i = 0; i < nd; i++)
            any |= s->views[f * nd + i].usable;
        if (!any)
            s->board_ok[f] = false;
    }
out:
    free(rms);
    free(sorted);
    free(views);
    return rejected;
}

ks_status ks_rigcal_solve(const ks_rigcal_problem *p, const ks_rigcal_options *opt, ks_rigcal_result *out,
                          ks_error *err)
{
    double t0 = ks_mono_s();
    ks_rigcal_options o;
    if (opt)
        o = *opt;
    else
        ks_rigcal_options_default(&o);
    if (o.max_iterations <= 0)
        o.max_iterations = 50;
    if (o.min_corners_per_view < 4)
        o.min_corners_per_view = 4;
    if (!out)
        return ks_error_set(err, KS_EINVAL, "ks_rigcal_solve: out is NULL");
    memset(out, 0, sizeof *out);
    ks_status st = check_problem(p, &o, err);
    if (st)
        return st;
    solver s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.o = o;
    s.nd = p->device_count;
    s.nf = p->frame_count;
    s.ref = o.reference_device;
    int nobs = p->obs_count;
    s.order = malloc(sizeof(int) * (size_t)(nobs + 1));
    s.X = malloc(sizeof(double[3]) * (size_t)(nobs + 1));
    s.obs_ok = calloc((size_t)nobs + 1, sizeof(bool));
    s.views = calloc((size_t)s.nf * s.nd, sizeof(view));
    s.pidx = malloc(sizeof(int) * (size_t)s.nd);
    s.dev = calloc((size_t)s.nd, sizeof(pose));
    s.board = calloc((size_t)s.nf, sizeof(pose));
    s.board_ok = calloc((size_t)s.nf, sizeof(bool));
    double *dd = calloc((size_t)s.nd * 6, sizeof(double)), *db = calloc((size_t)s.nf * 6, sizeof(double));
    pose *dev_save = calloc((size_t)s.nd, sizeof(pose)), *board_save = calloc((size_t)s.nf, sizeof(pose));
    int D = 6 * (s.nd - 1);
    double *S = calloc((size_t)D * D + 1, sizeof(double));
    if (!s.order || !s.X || !s.obs_ok || !s.views || !s.pidx || !s.dev || !s.board || !s.board_ok || !dd || !db ||
        !dev_save || !board_save || !S) {
        st = ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
        goto done;
    }
    for (int k = 0; k < nobs; k++) {
        s.order[k] = k;
        s.obs_ok[k] = ks_board_corner(p->board, p->obs[k].tag_id, p->obs[k].corner, s.X[k]);
    }
    sort_obs(s.order, nobs, p->obs);
    for (int i = 0, k = 0; i < s.nd; i++)
        s.pidx[i] = i == s.ref ? -1 : k++;
    if ((st = init_views(&s, err)) || (st = init_devices(&s, err)))
        goto done;
    init_boards(&s);

    double sq;
    int n;
    double cost = total_cost(&s, &sq, &n);
    out->initial_rms_px = n ? sqrt(sq / n) : NAN;
    int it = run_lm(&s, &o, dd, db, dev_save, board_save, &cost);
    /* Views that disagree with everything else (a mismatched frame, a wrong decode) are dropped
     * and the adjustment repeated: a whole wrong view is more than a robust loss should carry. */
    for (int round = 0; round < 8; round++) {
        int rej = reject_bad_views(&s);
        if (!rej)
            break;
        out->rejected_views += rej;
        cost = total_cost(&s, NULL, NULL);
        it += run_lm(&s, &o, dd, db, dev_save, board_save, &cost);
    }

    out->iterations = it;
    /* results */
    out->device_count = s.nd;
    out->frame_count = s.nf;
    out->reference_device = s.ref;
    out->devices = calloc((size_t)s.nd, sizeof(ks_rigcal_device_result));
    out->board_to_rig = calloc((size_t)s.nf, sizeof(ks_extrinsics));
    out->board_valid = calloc((size_t)s.nf, sizeof(bool));
    if (!out->devices || !out->board_to_rig || !out->board_valid) {
        ks_rigcal_result_free(out);
        st = ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
        goto done;
    }
    for (int f = 0; f < s.nf; f++) {
        out->board_valid[f] = s.board_ok[f];
        ext_from_pose(&s.board[f], &out->board_to_rig[f]);
    }
    double wsq = 0;
    int used = 0;
    double *dsq = calloc((size_t)s.nd, sizeof(double));
    for (int oi = 0; dsq && oi < nobs; oi++) {
        if (!obs_used(&s, oi))
            continue;
        double r[2], w, rho;
        if (!residual(&s, oi, r, NULL, NULL))
            continue;
        double e2 = r[0] * r[0] + r[1] * r[1];
        robust(&o, e2, &w, &rho);
        wsq += w * e2;
        dsq[p->obs[oi].device] += e2;
        out->devices[p->obs[oi].device].corners++;
        used++;
    }
    out->used_obs = used;
    double all = 0;
    for (int i = 0; i < s.nd; i++) {
        ks_rigcal_device_result *dr = &out->devices[i];
        all += dsq ? dsq[i] : 0;
        dr->rms_px = dr->corners && dsq ? sqrt(dsq[i] / dr->corners) : NAN;
        for (int f = 0; f < s.nf; f++)
            if (s.views[f * s.nd + i].usable && s.board_ok[f]) {
                dr->views++;
                out->used_views++;
            }
        dr->depth_plane_mean_mm = NAN;
        dr->depth_plane_rms_mm = NAN;
        ext_from_pose(&s.dev[i], &dr->camera_to_rig);
        ks_extrinsics cam_from_depth = p->devices[i].depth_to_camera;
        ks_extrinsics_compose(&cam_from_depth, &dr->camera_to_rig, &dr->depth_to_rig);
        /* color_to_rig = depth_to_rig * color_to_depth */
        const ks_extrinsics *d2c = &p->devices[i].depth_to_color;
        bool have_d2c = false;
        for (int k = 0; k < 9; k++)
            have_d2c |= d2c->R[k] != 0.0;
        if (!have_d2c)
            d2c = &p->devices[i].depth_to_camera;
        ks_extrinsics c2d;
        ks_extrinsics_invert(d2c, &c2d);
        ks_extrinsics_compose(&c2d, &dr->depth_to_rig, &dr->color_to_rig);
    }
    free(dsq);
    out->rms_px = used ? sqrt(all / used) : NAN;
    /* covariance from the undamped reduced normal matrix, scaled by the residual variance */
    int nboards = 0;
    for (int f = 0; f < s.nf; f++)
        nboards += s.board_ok[f];
    int dof = 2 * used - D - 6 * nboards;
    double s2 = dof > 0 ? wsq / dof : 1.0;
    if (D > 0 && lm_step(&s, -1, NULL, NULL, S) && invert_reduced(D, S)) {
        for (int i = 0; i < s.nd; i++) {
            int pi = s.pidx[i];
            if (pi < 0)
                continue;
            ks_rigcal_device_result *dr = &out->devices[i];
            for (int a = 0; a < 6; a++)
                for (int c = 0; c < 6; c++)
                    dr->covariance[a * 6 + c] = s2 * S[(6 * pi + a) * D + 6 * pi + c];
            double tr = dr->covariance[0] + dr->covariance[7] + dr->covariance[14];
            double tc = dr->covariance[21] + dr->covariance[28] + dr->covariance[35];
            dr->rotation_sigma_deg = sqrt(fmax(tr, 0)) * 180.0 / M_PI;
            dr->position_sigma_mm = sqrt(fmax(tc, 0));
        }
    }
    cross_check(&s, out);
    out->solve_seconds = ks_mono_s() - t0;
done:
    free(s.order);
    free(s.X);
    free(s.obs_ok);
    free(s.views);
    free(s.pidx);
    free(s.dev);
    free(s.board);
    free(s.board_ok);
    free(dd);
    free(db);
    free(dev_save);
    free(board_save);
    free(S);
    return st;
}
