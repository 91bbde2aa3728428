/* fuse/fuse.c: the pipeline for one rig. Per frame set: (1) every device's depth becomes points in
 * the rig frame, with normals and color when asked, a few rows at a time, and goes straight into
 * the voxel grid's record store while those rows are still in L1/L2 (each chunk of rows its own
 * segment); the rows are made in the thread's own chunk buffer, or, when the organized points are
 * kept (keep_points, normals), in one buffer with a fixed slice per device; (2) the threads sum
 * the grid's partitions into voxels, one partition at a time, written straight into the
 * partition's blocks of the output (lay_out_blocks), a thread done with its own taking cells from
 * the back of the others' (voxel_worker, steal_copy); the output's few holes are then closed up.
 * Work split of phase 1: the rows of all devices are cut into 8 chunks per thread (a device's image
 * may be split between chunks; the thread of a chunk computes the row just outside it privately
 * for normals), and the threads take the chunks one after the other as they finish, so a thread on
 * a slower or busier core takes fewer (measured on the development VM: the same work took 35 % more
 * CPU on its second vCPU than on its first; equal shares left the first idle for that long). With
 * color, each device's MJPEG image is decoded once, into the device's own decoder, by tasks taken
 * from the same queue before the chunks (task d < ndev decodes device d; the chunks follow), so the
 * rows split as they do without color: giving each thread whole devices instead left one of two
 * threads 5 devices of 9 (55-60 % of the work), and a separate decoding phase left one thread idle
 * at its barrier while the other decoded the 9th image (one decode, ~1.4 ms per set). A chunk whose
 * device is still being decoded waits for it (rare: the chunks come after every decode was taken,
 * in device order) and never changes the result (each chunk its own segment, whatever thread).
 * The threads are a team (util/team.h) made at create time and kept: starting threads per phase
 * cost ~0.15 ms per phase, and a join ~0.3 ms of waking on the development VM (1 ms of a 35 ms set).
 * All buffers are made at create time or grow once, so a steady stream of frame sets does not
 * allocate. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"
#include "util/grow.h"
#include "util/team.h"

#define TEAM_SPIN_US 500 /* a thread done with a phase spins this long for the next before it sleeps */
/* Phase 2's partitions per thread. More would balance a slower core better, but every partition
 * passes over the whole record store for its runs, and lines of records shared by runs of two
 * partitions are fetched twice: measured (9 devices NFOV, colour from the real device's MJPEG, 2
 * threads), 2 per thread cost 5 % more CPU per set and 8 per thread 9 %, more than the balance won. */
#define PARTS_PER_THREAD 1
#define OUT_BLOCK 4096     /* phase 2 writes voxels in blocks of this many points (see ks_fuse_run) */
#define CHUNK_ROWS 8 /* rows of points made, then added to the grid, at a time (8 x 640 x 12 B = 60 KB) */

/* A range of the output: phase 2's block of a partition, and the points written in it. */
struct range {
    size_t start, count;
    int part;
};

typedef struct fdev {
    ks_fuse_device info;
    ks_unproject_table table;
    ks_extrinsics rig_to_color;
    float m[12];    /* depth_to_rig as floats */
    float view[3];  /* camera centre in the rig frame (normals face it) */
    size_t offset;  /* first point of this device in the shared buffer */
    size_t npix;
    size_t row0;    /* this device's first row in the rows of all devices */
} fdev;

struct ks_fuse {
    ks_fuse_options opt;
    int ndev;
    fdev *dev;
    size_t total;           /* points in the shared buffer */
    bool keep;              /* the organized buffer is kept (keep_points, or normals: they need neighbour rows) */
    float *x, *y, *z;       /* with keep, the shared organized buffer; else one chunk of rows per
                             * thread (chunk_slots apart), reused chunk after chunk */
    float *nx, *ny, *nz;    /* when normals */
    uint32_t *col;          /* when color: packed 0x01BBGGRR, 0 where no colour pixel saw the point (laid
                             * out as x) */
    size_t rows;            /* image rows of all devices */
    int max_width;
    float *halo;            /* normals: per thread two private rows of x, y, z (6 * max_width) */
    ks_voxel_grid *grid;
    ks_mjpeg_decoder **dec; /* with color, one per device */
    ks_color_image *img;    /* with color, per device: this run's image (decoding tasks) */
    bool *have_img;         /* whether device d has one */
    int nchunks;            /* phase 1's chunks of rows (see the file comment) */
    atomic_int next;        /* phase 1's next task: decode device `next` below ndev, then chunk next - ndev */
    atomic_bool ready[KS_FUSE_MAX_DEVICES]; /* device d's colour image is settled (img, have_img) */
    pthread_mutex_t ready_mu;               /* with ready_cv: a chunk waiting for its device's image */
    pthread_cond_t ready_cv;
    bool sync_made;
    ks_team *team;          /* the threads of the phases (see run_phase) */
    int nparts;             /* the grid's partitions: phase 2's tasks */
    atomic_int next_part;   /* phase 2's next partition */
    /* phase 2's cells: partition p's not yet taken are claim[p]'s [low 32 bits, high 32 bits): its
     * thread takes them from the front, a thread done with its own from the back (stealing) */
    _Atomic uint64_t claim[64];
    size_t own_cells;       /* at most this many cells of a partition summed by its own thread (tests) */
    atomic_bool sorted[64]; /* partition p's runs are in cell order: its cells may be taken */
    ks_voxel_out pout[64];  /* partition p's cursor in the output, its voxels written and shared */
    struct stolen_ref {       /* steal_copy's list in cell order: partition << 32 | cell, where */
        uint64_t key;
        uint32_t t, i;        /* thread t's stolen entry i */
    } *order;
    size_t order_cap;
    struct steal {          /* per thread: the cells it took from other partitions, in its staging */
        ks_cloud stage;
        struct stolen {
            int part;
            uint32_t cell;
            size_t at, n, shared; /* its voxels: stage[at .. at + n), shared of them seen by 2+ devices */
        } *list;
        size_t n, cap;
    } steal[64];
    /* phase 2's output blocks (see ks_fuse_run): partition p's k-th at blk[blk_first[p] + k]; and all
     * blocks in output order as ranges (start, partition, k) for closing the gaps */
    size_t *blk, blk_cap, blk_first[65];
    struct range *rng;
    size_t rng_cap;
    /* per run */
    const ks_fuse_input *in;
    ks_status thread_status[64];
    ks_error thread_error[64];
};

/* Slots of a thread's chunk of rows (without keep): the widest device's CHUNK_ROWS rows, rounded
 * to 16 (64-byte aligned chunks). */
static size_t chunk_slots(const ks_fuse *f)
{
    return ((size_t)CHUNK_ROWS * (size_t)f->max_width + 15) / 16 * 16;
}

typedef struct job {
    ks_fuse *f;
    int t;
    double ms_color;
    size_t valid[KS_FUSE_MAX_DEVICES]; /* phase 1: valid points per device made by this thread */
    ks_cloud *out;
} job;

void ks_fuse_destroy(ks_fuse *f)
{
    if (!f)
        return;
    for (int d = 0; d < f->ndev; d++)
        ks_unproject_table_free(&f->dev[d].table);
    free(f->dev);
    free(f->x);
    free(f->y);
    free(f->z);
    free(f->nx);
    free(f->ny);
    free(f->nz);
    free(f->col);
    free(f->halo);
    free(f->blk);
    free(f->rng);
    free(f->order);
    for (int t = 0; t < 64; t++) {
        ks_cloud_free(&f->steal[t].stage);
        free(f->steal[t].list);
    }
    ks_voxel_grid_destroy(f->grid);
    ks_team_destroy(f->team);
    if (f->dec)
        for (int d = 0; d < f->ndev; d++)
            ks_mjpeg_decoder_destroy(f->dec[d]);
    free(f->dec);
    free(f->img);
    free(f->have_img);
    if (f->sync_made) {
        pthread_mutex_destroy(&f->ready_mu);
        pthread_cond_destroy(&f->ready_cv);
    }
    free(f);
}

/* Unprojection tables, the bulk of start-up (tens of ms per device unless cached): devices are
 * shared out round-robin over the fuse's threads. */
typedef struct table_job {
    ks_fuse *f;
    int first, step;
    ks_status st[KS_FUSE_MAX_DEVICES];
    ks_error err[KS_FUSE_MAX_DEVICES];
} table_job;

static void *build_tables(void *arg)
{
    table_job *j = arg;
    for (int d = j->first; d < j->f->ndev; d += j->step)
        j->st[d] = ks_unproject_table_get(&j->f->dev[d].info.calibration.depth, j->f->opt.table_cache_dir,
                                          &j->f->dev[d].table, NULL, &j->err[d]);
    return NULL;
}

static ks_status build_all_tables(ks_fuse *f, ks_error *err)
{
    int T = f->opt.threads < f->ndev ? f->opt.threads : f->ndev;
    table_job *jobs = calloc((size_t)T, sizeof *jobs);
    if (!jobs)
        return ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
    pthread_t th[64];
    bool started[64] = {false};
    for (int t = 0; t < T; t++) {
        jobs[t].f = f;
        jobs[t].first = t;
        jobs[t].step = T;
    }
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, build_tables, &jobs[t]) == 0;
    for (int t = 0; t < T; t++)
        if (!started[t])
            build_tables(&jobs[t]); /* thread 0, and any that could not start, run here */
    for (int t = 1; t < T; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    ks_status st = KS_OK;
    for (int d = 0; d < f->ndev && !st; d++) {
        table_job *j = &jobs[d % T];
        if (j->st[d]) {
            st = j->st[d];
            if (err)
                *err = j->err[d];
            ks_error_prefix(err, st, "fuse: device %d (%s)", d, f->dev[d].info.serial[0] ? f->dev[d].info.serial : "no serial");
        }
    }
    free(jobs);
    return st;
}

ks_status ks_fuse_create(const ks_fuse_device *devices, int count, const ks_fuse_options *opt, ks_fuse **out,
                         ks_error *err)
{
    *out = NULL;
    if (!devices || count < 1 || count > KS_FUSE_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "fuse: %d devices; a rig has 1 to %d", count, KS_FUSE_MAX_DEVICES);
    ks_fuse *f = calloc(1, sizeof *f);
    if (!f)
        return ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
    f->opt = opt ? *opt : (ks_fuse_options){0};
    if (f->opt.voxel_mm <= 0)
        f->opt.voxel_mm = 5.0f;
    if (f->opt.threads <= 0)
        f->opt.threads = 1;
    if (f->opt.threads > 64)
        f->opt.threads = 64;
    if (f->opt.color_scale <= 0)
        f->opt.color_scale = 1;
    f->nchunks = f->opt.threads > 1 ? (8 * f->opt.threads < 64 ? 8 * f->opt.threads : 64) : 1;
    f->ndev = count;
    f->dev = calloc((size_t)count, sizeof *f->dev);
    ks_status st = KS_OK;
    if (!f->dev) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
        goto fail;
    }
    for (int d = 0; d < count; d++) {
        f->dev[d].info = devices[d];
        f->dev[d].info.serial[KS_FUSE_SERIAL_MAX - 1] = 0;
    }
    st = build_all_tables(f, err);
    f->opt.table_cache_dir = NULL; /* the caller's string: used by the build only */
    if (st)
        goto fail;
    for (int d = 0; d < count; d++) {
        fdev *fd = &f->dev[d];
        ks_extrinsics rig_to_depth;
        ks_extrinsics_invert(&fd->info.depth_to_rig, &rig_to_depth);
        ks_extrinsics_compose(&rig_to_depth, &fd->info.calibration.depth_to_color, &fd->rig_to_color);
        ks_pose_matrix(&fd->info.depth_to_rig, fd->m);
        for (int i = 0; i < 3; i++)
            fd->view[i] = (float)fd->info.depth_to_rig.t[i];
        fd->npix = (size_t)fd->table.width * (size_t)fd->table.height;
        fd->row0 = f->rows;
        f->rows += (size_t)fd->table.height;
        f->max_width = fd->table.width > f->max_width ? fd->table.width : f->max_width;
        fd->offset = f->total;
        f->total += (fd->npix + 15) / 16 * 16; /* keep every slice 64-byte aligned */
    }
    /* without keep, a chunk of rows per thread: 8 x 640 x 16 B = 80 KB, in L2 while it is made, coloured
     * and added, instead of 40 MB of a 9-device NFOV set written out and read back */
    f->keep = f->opt.keep_points || f->opt.normals;
    const size_t slots = f->keep ? f->total : (size_t)f->opt.threads * chunk_slots(f);
    size_t bytes = slots * sizeof(float);
    f->x = ks_fuse_alloc_big(bytes);
    f->y = ks_fuse_alloc_big(bytes);
    f->z = ks_fuse_alloc_big(bytes);
    if (f->opt.normals) {
        f->nx = ks_fuse_alloc_big(bytes);
        f->ny = ks_fuse_alloc_big(bytes);
        f->nz = ks_fuse_alloc_big(bytes);
    }
    if (f->opt.color) {
        f->col = ks_fuse_alloc_big(slots * sizeof *f->col);
    }
    if (f->opt.normals)
        f->halo = malloc((size_t)f->opt.threads * 6 * (size_t)f->max_width * sizeof(float));
    f->dec = calloc((size_t)count, sizeof *f->dec);
    f->img = calloc((size_t)count, sizeof *f->img);
    f->have_img = calloc((size_t)count, sizeof *f->have_img);
    if (!f->x || !f->y || !f->z || (f->opt.normals && (!f->nx || !f->ny || !f->nz || !f->halo)) ||
        (f->opt.color && !f->col) || !f->dec || !f->img || !f->have_img) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: out of memory for %zu points", slots);
        goto fail;
    }
    /* unused tail slots of a slice stay NaN forever */
    for (size_t i = 0; f->keep && i < f->total; i++)
        f->x[i] = f->y[i] = f->z[i] = NAN;
    if (f->opt.color)
        for (int d = 0; d < count; d++)
            if ((st = ks_mjpeg_decoder_create(&f->dec[d], err)) != KS_OK)
                goto fail;
    if (pthread_mutex_init(&f->ready_mu, NULL) != 0) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: could not create a mutex");
        goto fail;
    }
    if (pthread_cond_init(&f->ready_cv, NULL) != 0) {
        pthread_mutex_destroy(&f->ready_mu);
        st = ks_error_set(err, KS_ENOMEM, "fuse: could not create a condition variable");
        goto fail;
    }
    f->sync_made = true;
    unsigned gf = (f->opt.color ? KS_CLOUD_COLOR : 0) | (f->opt.normals ? KS_CLOUD_NORMALS : 0);
    /* the partitions are taken one at a time (any thread, any order: the output's layout depends
     * only on the partitions' record counts) */
    f->nparts = f->opt.threads > 1 ? (PARTS_PER_THREAD * f->opt.threads < 64 ? PARTS_PER_THREAD * f->opt.threads : 64)
                                   : 1;
    if ((st = ks_voxel_grid_create(f->opt.voxel_mm, gf, f->nparts, &f->grid, err)) != KS_OK)
        goto fail;
    f->own_cells = SIZE_MAX;
    if (!(f->team = ks_team_create(f->opt.threads, TEAM_SPIN_US))) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
        goto fail;
    }
    *out = f;
    return KS_OK;
fail:
    ks_fuse_destroy(f);
    return st;
}

/* The color image of device d for this run (decoded into the device's decoder when MJPEG); false
 * when there is none or it does not decode (the error is kept for the run's result). */
static bool color_image(ks_fuse *f, job *j, int d, ks_color_image *img)
{
    const ks_fuse_input *in = &f->in[d];
    *img = (ks_color_image){0};
    if (in->color && in->color_format == KS_FORMAT_MJPG) {
        ks_error e;
        ks_status st = ks_mjpeg_decode(f->dec[d], in->color, in->color_size, f->opt.color_scale, img, &e);
        if (st == KS_OK)
            return true;
        f->thread_status[j->t] = st;
        f->thread_error[j->t] = e;
        ks_error_prefix(&f->thread_error[j->t], st, "device %d (%s) color", d, f->dev[d].info.serial);
        return false;
    }
    if (in->color && in->color_format == KS_FORMAT_BGRA32) {
        *img = (ks_color_image){in->color_width, in->color_height,
                                in->color_stride ? in->color_stride : (size_t)in->color_width * 4, in->color, 1};
        return true;
    }
    return false;
}

/* Asks the caches for rows v0..v1-1 of device d's lens table and depth image, the next rows to be
 * made while the current ones are: the hardware prefetchers stop at each 4 KB page and start again
 * only after a few misses, and on the development VM a miss to memory takes 150-300 ns (alternated
 * runs, one thread: 1.0-2.3 % less CPU per 9-device set). */
static void prefetch_rows(const fdev *fd, const ks_fuse_input *in, int v0, int v1)
{
    const size_t W = (size_t)fd->table.width, ds = in->depth_stride ? in->depth_stride : W;
    const char *tx = (const char *)(fd->table.x + (size_t)v0 * W), *ty = (const char *)(fd->table.y + (size_t)v0 * W);
    for (size_t q = 0; q < (size_t)(v1 - v0) * W * sizeof(float); q += 64) {
        __builtin_prefetch(tx + q, 0, 3);
        __builtin_prefetch(ty + q, 0, 3);
    }
    const char *d = (const char *)(in->depth + (size_t)v0 * ds);
    for (size_t q = 0; q < (size_t)(v1 - v0) * ds * sizeof(uint16_t); q += 64)
        __builtin_prefetch(d + q, 0, 3);
}

/* Rows v0..v1-1 of device d: points, normals, color, then into the grid (writer `seg`, the chunk),
 * CHUNK_ROWS at a time. */
static void points_rows(ks_fuse *f, job *j, int seg, int d, int v0, int v1)
{
    fdev *fd = &f->dev[d];
    const ks_fuse_input *in = &f->in[d];
    const size_t W = (size_t)fd->table.width, o = fd->offset;
    const int H = fd->table.height;
    if (!in->depth) {
        for (size_t i = (size_t)v0 * W; f->keep && i < (size_t)v1 * W; i++)
            f->x[o + i] = f->y[o + i] = f->z[o + i] = NAN;
        return;
    }
    const bool have_color = f->opt.color && f->have_img[d]; /* decoded by its task (waited for) */
    const float gap = 4.0f * f->opt.voxel_mm + 20.0f;
    /* normals: the rows just outside [v0, v1) belong to another thread's share; make them privately */
    float *hp = NULL, *hn = NULL;
    if (f->opt.normals) {
        hp = f->halo + (size_t)j->t * 6 * (size_t)f->max_width;
        hn = hp + 3 * W;
        if (v0 > 0)
            ks_depth_rows_to_points(&fd->table, in->depth, in->depth_stride, fd->m, v0 - 1, v0, hp, hp + W, hp + 2 * W);
        if (v1 < H)
            ks_depth_rows_to_points(&fd->table, in->depth, in->depth_stride, fd->m, v1, v1 + 1, hn, hn + W, hn + 2 * W);
    }
    for (int v = v0; v < v1; v += CHUNK_ROWS) {
        int ve = v + CHUNK_ROWS < v1 ? v + CHUNK_ROWS : v1;
        if (ve < v1)
            prefetch_rows(fd, in, ve, ve + CHUNK_ROWS < v1 ? ve + CHUNK_ROWS : v1);
        /* where these rows' points go: their slots of the organized buffer, or the thread's chunk */
        size_t c = f->keep ? o + (size_t)v * W : (size_t)j->t * chunk_slots(f), n = (size_t)(ve - v) * W;
        j->valid[d] += ks_depth_rows_to_points(&fd->table, in->depth, in->depth_stride, fd->m, v, ve, f->x + c,
                                               f->y + c, f->z + c);
        if (f->opt.normals) {
            if (ve < v1) /* the next chunk's first row, made now (again by the next chunk, same values) */
                ks_depth_rows_to_points(&fd->table, in->depth, in->depth_stride, fd->m, ve, ve + 1, f->x + c + n,
                                        f->y + c + n, f->z + c + n);
            for (int r = v; r < ve; r++) {
                size_t ro = o + (size_t)r * W;
                const float *cur[3] = {f->x + ro, f->y + ro, f->z + ro};
                const float *prev[3] = {hp, hp + W, hp + 2 * W}, *next[3] = {hn, hn + W, hn + 2 * W};
                if (r > v0) /* inside the share: the shared buffer */
                    prev[0] = cur[0] - W, prev[1] = cur[1] - W, prev[2] = cur[2] - W;
                if (r < v1 - 1)
                    next[0] = cur[0] + W, next[1] = cur[1] + W, next[2] = cur[2] + W;
                ks_normals_row(r > 0 ? prev : NULL, cur, r < H - 1 ? next : NULL, (int)W, fd->view, gap, f->nx + ro,
                               f->ny + ro, f->nz + ro);
            }
        }
        if (f->opt.color) {
            double t0 = ks_fuse_now_ms();
            ks_points_colorize_packed(f->x + c, f->y + c, f->z + c, n, &fd->rig_to_color,
                                      &fd->info.calibration.color, have_color ? &f->img[d] : NULL, f->col + c);
            j->ms_color += ks_fuse_now_ms() - t0;
        }
        ks_voxel_grid_add_writer(f->grid, seg, d, f->x + c, f->y + c, f->z + c, f->opt.color ? f->col + c : NULL,
                                 f->opt.normals ? f->nx + c : NULL, f->opt.normals ? f->ny + c : NULL,
                                 f->opt.normals ? f->nz + c : NULL, n);
    }
}

/* Rows [*v0, *v1) of device d in chunk c of phase 1 (see the file comment): the part of global rows
 * [rows*c/K, rows*(c+1)/K) that is device d's. False when the chunk has none of it. */
static bool share_rows(const ks_fuse *f, int c, int d, int *v0, int *v1)
{
    const fdev *fd = &f->dev[d];
    const size_t K = (size_t)f->nchunks;
    size_t lo = f->rows * (size_t)c / K, hi = f->rows * (size_t)(c + 1) / K;
    size_t a = fd->row0, b = fd->row0 + (size_t)fd->table.height;
    a = a > lo ? a : lo;
    b = b < hi ? b : hi;
    *v0 = (int)(a - fd->row0);
    *v1 = (int)(b - fd->row0);
    return a < b;
}

/* Decoding task of phase 1: device d's colour image, then the chunks waiting for it are woken. */
static void decode_device(ks_fuse *f, job *j, int d)
{
    double t0 = ks_fuse_now_ms();
    f->have_img[d] = f->in[d].depth && color_image(f, j, d, &f->img[d]);
    j->ms_color += ks_fuse_now_ms() - t0;
    pthread_mutex_lock(&f->ready_mu);
    atomic_store_explicit(&f->ready[d], true, memory_order_release);
    pthread_cond_broadcast(&f->ready_cv);
    pthread_mutex_unlock(&f->ready_mu);
}

/* Waits until device d's colour image is settled (decoded by another task of this phase). */
static void wait_ready(ks_fuse *f, int d)
{
    if (atomic_load_explicit(&f->ready[d], memory_order_acquire))
        return;
    pthread_mutex_lock(&f->ready_mu);
    while (!atomic_load_explicit(&f->ready[d], memory_order_acquire))
        pthread_cond_wait(&f->ready_cv, &f->ready_mu);
    pthread_mutex_unlock(&f->ready_mu);
}

/* Phase 1: with colour the ndev decoding tasks first, then the chunks (see the file comment). */
static void *points_worker(void *arg)
{
    job *j = arg;
    ks_fuse *f = j->f;
    const int first = f->opt.color ? 0 : f->ndev; /* without colour no decoding task */
    int v0, v1;
    for (int k; (k = atomic_fetch_add(&f->next, 1) + first) < f->ndev + f->nchunks;) {
        if (k < f->ndev) {
            decode_device(f, j, k);
            continue;
        }
        int c = k - f->ndev;
        for (int d = 0; d < f->ndev; d++)
            if (share_rows(f, c, d, &v0, &v1)) {
                if (f->opt.color)
                    wait_ready(f, d);
                points_rows(f, j, c, d, v0, v1);
            }
    }
    return NULL;
}

/* Phase 2's claims (see ks_fuse.claim): up to `most` cells from the front of partition p, or one
 * from its back; false when none is left. */
static bool claim_front(ks_fuse *f, int p, uint32_t most, uint32_t *c0, uint32_t *c1)
{
    uint64_t v = atomic_load(&f->claim[p]), nv;
    uint32_t lo, hi, e;
    do {
        lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (lo >= hi)
            return false;
        e = hi - lo < most ? hi : lo + most;
        nv = (uint64_t)hi << 32 | e;
    } while (!atomic_compare_exchange_weak(&f->claim[p], &v, nv));
    *c0 = lo, *c1 = e;
    return true;
}

static bool claim_back(ks_fuse *f, int p, uint32_t *c)
{
    uint64_t v = atomic_load(&f->claim[p]), nv;
    uint32_t lo, hi;
    do {
        lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (lo >= hi)
            return false;
        nv = (uint64_t)(hi - 1) << 32 | lo;
    } while (!atomic_compare_exchange_weak(&f->claim[p], &v, nv));
    *c = hi - 1;
    return true;
}

#define FRONT_CELLS 8 /* cells a partition's own thread takes at a time */

/* Phase 2: the grid's partitions summed into voxels, one at a time, in this thread's scratch; then
 * cells taken from the back of partitions other threads are still summing, into this thread's
 * staging (copied after their partition's own cells by steal_copy: the output is the same
 * whichever thread summed a cell). A thread on a slower or busier core so sums fewer cells. */
static void *voxel_worker(void *arg)
{
    job *j = arg;
    ks_fuse *f = j->f;
    ks_error *e = &f->thread_error[j->t];
    for (int p; (p = atomic_fetch_add(&f->next_part, 1)) < f->nparts;) {
        size_t cells;
        ks_status st = ks_voxel_grid_sort(f->grid, p, &cells, e);
        if (st == KS_OK && cells > UINT32_MAX)
            st = ks_error_set(e, KS_EINVAL, "fuse: %zu cells in one partition", cells);
        f->pout[p] = (ks_voxel_out){.blocks = f->blk + f->blk_first[p],
                                    .nblocks = f->blk_first[p + 1] - f->blk_first[p], .block = OUT_BLOCK};
        atomic_store(&f->claim[p], st == KS_OK ? (uint64_t)cells << 32 : 0);
        atomic_store_explicit(&f->sorted[p], true, memory_order_release);
        uint32_t c0, c1;
        for (size_t own = 0; st == KS_OK && own < f->own_cells; own += c1 - c0) {
            size_t most = f->own_cells - own < FRONT_CELLS ? f->own_cells - own : FRONT_CELLS;
            if (!claim_front(f, p, (uint32_t)most, &c0, &c1))
                break;
            st = ks_voxel_grid_cells_into(f->grid, p, j->t, c0, c1, f->opt.min_weight, j->out, &f->pout[p], e);
        }
        if (st) {
            f->thread_status[j->t] = st;
            return NULL;
        }
    }
    struct steal *sl = &f->steal[j->t];
    const unsigned fields = ks_voxel_grid_fields(f->grid);
    for (int q = 0; q < f->nparts; q++) {
        /* every partition was taken before this thread got here; wait for its cells to be listed */
        while (!atomic_load_explicit(&f->sorted[q], memory_order_acquire))
            ks_cpu_relax();
        uint32_t c;
        while (claim_back(f, q, &c)) {
            size_t at = sl->stage.count, room = ks_voxel_grid_cell_records(f->grid, q, c);
            ks_status st = ks_cloud_reserve(&sl->stage, at + room, fields, e);
            if (st == KS_OK && !ks_grow((void **)&sl->list, &sl->cap, sl->n + 1, sizeof *sl->list))
                st = ks_error_set(e, KS_ENOMEM, "fuse: out of memory");
            ks_voxel_out w = {.blocks = &at, .nblocks = 1, .block = room};
            if (st == KS_OK)
                st = ks_voxel_grid_cells_into(f->grid, q, j->t, c, c + 1, f->opt.min_weight, &sl->stage, &w, e);
            if (st) {
                f->thread_status[j->t] = st;
                return NULL;
            }
            sl->list[sl->n++] = (struct stolen){q, c, at, w.written, w.shared};
            sl->stage.count = at + w.written;
        }
    }
    return NULL;
}

/* Copies n points from src[si..] to dst[di..] (different clouds, or ranges that do not overlap). */
static void copy_between(ks_cloud *dst, size_t di, const ks_cloud *src, size_t si, size_t n, bool color,
                         bool normals)
{
    memcpy(dst->x + di, src->x + si, n * sizeof *dst->x);
    memcpy(dst->y + di, src->y + si, n * sizeof *dst->y);
    memcpy(dst->z + di, src->z + si, n * sizeof *dst->z);
    memcpy(dst->weight + di, src->weight + si, n * sizeof *dst->weight);
    memcpy(dst->devices + di, src->devices + si, n * sizeof *dst->devices);
    if (color)
        memcpy(dst->rgb + 3 * di, src->rgb + 3 * si, 3 * n);
    if (normals) {
        memcpy(dst->nx + di, src->nx + si, n * sizeof *dst->nx);
        memcpy(dst->ny + di, src->ny + si, n * sizeof *dst->ny);
        memcpy(dst->nz + di, src->nz + si, n * sizeof *dst->nz);
    }
}

/* Copies n points of out from src to dst (the ranges do not overlap). */
static void copy_points(ks_cloud *out, size_t dst, size_t src, size_t n, bool color, bool normals)
{
    copy_between(out, dst, out, src, n, color, normals);
}

/* Appends n points of src (from at) to out through a partition's cursor, as ks_voxel_grid_cells_into
 * writes them (blocks taken in order). */
static ks_status out_append(ks_cloud *out, ks_voxel_out *w, const ks_cloud *src, size_t at, size_t n, bool color,
                            bool normals, ks_error *err)
{
    while (n) {
        size_t room = ks_voxel_out_room(w);
        if (!room)
            return ks_error_set(err, KS_ESTATE, "fuse: a partition's voxels outgrew its room");
        size_t m = n < room ? n : room;
        copy_between(out, w->next, src, at, m, color, normals);
        w->next += m;
        at += m;
        n -= m;
        w->written += m;
    }
    return KS_OK;
}

static int stolen_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct stolen_ref *)a)->key, y = ((const struct stolen_ref *)b)->key;
    return x < y ? -1 : x > y; /* unique: a cell is taken once */
}

/* After phase 2: the cells threads took from other partitions' backs (each thread's list), copied
 * after their partition's own cells in cell order, through its cursor: each partition's output is
 * then exactly what one thread summing all its cells writes, whoever summed which cell. */
static ks_status steal_copy(ks_fuse *f, ks_cloud *out, ks_error *err)
{
    size_t n = 0;
    for (int t = 0; t < f->opt.threads; t++)
        n += f->steal[t].n;
    if (!n)
        return KS_OK;
    if (!ks_grow((void **)&f->order, &f->order_cap, n, sizeof *f->order))
        return ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
    size_t k = 0;
    for (int t = 0; t < f->opt.threads; t++)
        for (size_t i = 0; i < f->steal[t].n; i++) {
            const struct stolen *c = &f->steal[t].list[i];
            f->order[k++] = (struct stolen_ref){(uint64_t)c->part << 32 | c->cell, (uint32_t)t, (uint32_t)i};
        }
    qsort(f->order, n, sizeof *f->order, stolen_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct steal *sl = &f->steal[f->order[i].t];
        const struct stolen *c = &sl->list[f->order[i].i];
        ks_status st = out_append(out, &f->pout[c->part], &sl->stage, c->at, c->n, f->opt.color, f->opt.normals, err);
        if (st)
            return st;
        f->pout[c->part].shared += c->shared;
    }
    return KS_OK;
}

/* The partitions wrote rng[i].count points at rng[i].start (n ranges, ascending, each sized by an
 * upper bound), leaving holes. The cloud's order is unspecified, so the holes below the total are filled
 * with the points that lie above it: a copy as large as the holes, not a shift of whole ranges.
 * Returns the total. */
static size_t close_gaps(ks_cloud *out, size_t n, const struct range *rng, bool color, bool normals)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += rng[i].count;
    if (!n)
        return 0;
    size_t ht = 0;                                        /* the range whose hole is being filled */
    size_t hole = rng[0].start + rng[0].count;            /* next free slot */
    size_t st = n;                                        /* one past the range points are taken from */
    size_t src_end = rng[n - 1].start + rng[n - 1].count; /* one past the last point not yet moved */
    for (;;) {
        /* the next hole below the total */
        while (ht < n && (hole >= (ht + 1 < n ? rng[ht + 1].start : SIZE_MAX) || hole >= total)) {
            if (++ht < n)
                hole = rng[ht].start + rng[ht].count;
        }
        if (ht >= n || hole >= total)
            break;
        size_t hole_end = ht + 1 < n ? rng[ht + 1].start : total;
        hole_end = hole_end < total ? hole_end : total;
        /* the last point at or above the total still to move */
        while (st > 0 && (src_end <= rng[st - 1].start || src_end <= total)) {
            if (--st > 0)
                src_end = rng[st - 1].start + rng[st - 1].count;
        }
        if (st == 0)
            break;
        size_t src_begin = rng[st - 1].start > total ? rng[st - 1].start : total;
        size_t m = hole_end - hole, k = src_end - src_begin;
        m = m < k ? m : k;
        copy_points(out, hole, src_end - m, m, color, normals);
        hole += m;
        src_end -= m;
    }
    return total;
}

/* Phase 2's output layout. Each partition writes its voxels in blocks of OUT_BLOCK points, with
 * room for its records (an upper bound of its voxels): ceil(records / OUT_BLOCK) blocks. The blocks
 * are dealt out in rounds (round k: the k-th block of every partition that has one, in partition
 * order), so the blocks the partitions fill come first and the room they leave lies at the end:
 * every partition turns about the same share of its records into voxels, so only the last, partly
 * filled blocks leave holes below the total, and closing them moves a few blocks of points per
 * partition, not the third of the cloud that one range per partition left (0.6-0.8 ms per set with
 * 2 threads, on one thread while the other waited). The layout depends only on the record counts:
 * the cloud's order depends on the inputs and the thread count, never on which thread took which
 * partition. Sets *room to the points out must hold. */
static ks_status lay_out_blocks(ks_fuse *f, size_t *room, ks_error *err)
{
    const int P = f->nparts;
    size_t nb[64], n = 0, maxnb = 0;
    for (int p = 0; p < P; p++) {
        nb[p] = (ks_voxel_grid_part_records(f->grid, p) + OUT_BLOCK - 1) / OUT_BLOCK;
        n += nb[p];
        maxnb = nb[p] > maxnb ? nb[p] : maxnb;
    }
    if (!ks_grow((void **)&f->blk, &f->blk_cap, n, sizeof *f->blk) ||
        !ks_grow((void **)&f->rng, &f->rng_cap, n, sizeof *f->rng))
        return ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
    f->blk_first[0] = 0;
    for (int p = 0; p < P; p++)
        f->blk_first[p + 1] = f->blk_first[p] + nb[p];
    size_t r = 0;
    for (size_t k = 0; k < maxnb; k++)
        for (int p = 0; p < P; p++)
            if (k < nb[p]) {
                f->blk[f->blk_first[p] + k] = r * OUT_BLOCK;
                f->rng[r] = (struct range){r * OUT_BLOCK, 0, p};
                r++;
            }
    *room = n * OUT_BLOCK;
    return KS_OK;
}

struct phase {
    void *(*fn)(void *);
    job *jobs;
};

static void phase_share(void *arg, int t)
{
    struct phase *ph = arg;
    ph->fn(&ph->jobs[t]);
}

/* One phase: fn on every job, job t on the team's thread t (the caller's is 0). */
static ks_status run_phase(ks_fuse *f, void *(*fn)(void *), job *jobs, ks_error *err)
{
    int T = f->opt.threads;
    struct phase ph = {fn, jobs};
    ks_team_run(f->team, phase_share, &ph);
    for (int t = 0; t < T; t++)
        if (f->thread_status[t]) {
            if (err)
                *err = f->thread_error[t];
            return f->thread_status[t];
        }
    return KS_OK;
}

ks_status ks_fuse_run(ks_fuse *f, const ks_fuse_input *inputs, ks_cloud *out, ks_fuse_stats *stats, ks_error *err)
{
    if (!f || !inputs || !out)
        return ks_error_set(err, KS_EINVAL, "fuse: no pipeline, inputs or output cloud given");
    double t0 = ks_fuse_now_ms();
    int T = f->opt.threads;
    job jobs[64];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){.f = f, .t = t, .out = out};
        f->thread_status[t] = KS_OK;
    }
    f->in = inputs;
    /* phase 1 writes the grid's records: chunk c its own segment, sized for its rows */
    size_t maxpts[64] = {0};
    for (int c = 0; c < f->nchunks; c++)
        for (int d = 0; d < f->ndev; d++) {
            int v0, v1;
            if (share_rows(f, c, d, &v0, &v1))
                maxpts[c] += (size_t)(v1 - v0) * (size_t)f->dev[d].table.width;
        }
    ks_voxel_grid_reset(f->grid);
    ks_status st = ks_voxel_grid_writers(f->grid, f->nchunks, maxpts, err);
    if (st)
        return st;
    for (int d = 0; d < f->ndev; d++)
        atomic_store_explicit(&f->ready[d], false, memory_order_relaxed);
    atomic_store(&f->next, 0); /* the threads start after this: pthread_create orders it */
    st = run_phase(f, points_worker, jobs, err);
    double t1 = ks_fuse_now_ms();
    if (st)
        return st;
    /* phase 2: the partitions summed straight into their blocks of the output (lay_out_blocks), the
     * holes closed up below */
    size_t room = 0;
    if ((st = lay_out_blocks(f, &room, err)) != KS_OK)
        return st;
    if ((st = ks_cloud_reserve(out, room, ks_voxel_grid_fields(f->grid), err)) != KS_OK)
        return st;
    atomic_store(&f->next_part, 0); /* the team's threads see it: ks_team_run publishes the round */
    for (int p = 0; p < f->nparts; p++)
        atomic_store_explicit(&f->sorted[p], false, memory_order_relaxed);
    for (int t = 0; t < T; t++)
        f->steal[t].n = f->steal[t].stage.count = 0;
    if ((st = run_phase(f, voxel_worker, jobs, err)) != KS_OK)
        return st;
    if ((st = steal_copy(f, out, err)) != KS_OK)
        return st;
    size_t seen[64] = {0}, nr = f->blk_first[f->nparts];
    for (size_t r = 0; r < nr; r++) { /* block k of partition p holds its voxels k * OUT_BLOCK .. */
        int p = f->rng[r].part;
        size_t done = seen[p]++ * OUT_BLOCK, w = f->pout[p].written;
        f->rng[r].count = w > done ? (w - done < OUT_BLOCK ? w - done : OUT_BLOCK) : 0;
    }
    out->count = close_gaps(out, nr, f->rng, f->opt.color, f->opt.normals);
    double t2 = ks_fuse_now_ms();
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->devices = f->ndev;
        for (int d = 0; d < f->ndev; d++) {
            for (int t = 0; t < T; t++)
                stats->points[d] += jobs[t].valid[d];
            stats->points_total += stats->points[d];
        }
        stats->voxels = out->count;
        for (int p = 0; p < f->nparts; p++)
            stats->voxels_shared += f->pout[p].shared;
        double mc = 0;
        for (int t = 0; t < T; t++)
            mc = jobs[t].ms_color > mc ? jobs[t].ms_color : mc;
        stats->ms_color = mc;
        stats->ms_points = t1 - t0;
        stats->ms_voxel = t2 - t1;
        stats->ms_total = t2 - t0;
    }
    f->in = NULL;
    return KS_OK;
}

void ks_fuse_set_own_cells(ks_fuse *f, size_t cells)
{
    f->own_cells = cells;
}

size_t ks_fuse_stolen_cells(const ks_fuse *f)
{
    size_t n = 0;
    for (int t = 0; t < f->opt.threads; t++)
        n += f->steal[t].n;
    return n;
}

void ks_fuse_points(const ks_fuse *f, int d, const float **x, const float **y, const float **z, int *width,
                    int *height)
{
    if (!f || d < 0 || d >= f->ndev)
        return;
    const fdev *fd = &f->dev[d];
    if (!f->keep) {
        *x = *y = *z = NULL;
        *width = *height = 0;
        return;
    }
    *x = f->x + fd->offset;
    *y = f->y + fd->offset;
    *z = f->z + fd->offset;
    *width = fd->table.width;
    *height = fd->table.height;
}
