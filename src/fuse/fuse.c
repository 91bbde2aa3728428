/* fuse/fuse.c: the pipeline for one rig. Per frame set: (1) every device's depth becomes organized
 * points in the rig frame, in one buffer with a fixed slice per device (devices are spread over the
 * threads), with normals and color when asked, and goes straight into the voxel grid's record
 * lists while still in cache (each thread its own segment); (2) each thread sums one partition of
 * the grid into voxels, written straight into its range of the output, which is then closed up. Threads are
 * started per phase (two thread starts per frame set cost microseconds); all buffers are made at
 * create time or grow once, so a steady stream of frame sets does not allocate. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

typedef struct fdev {
    ks_fuse_device info;
    ks_unproject_table table;
    ks_extrinsics rig_to_color;
    size_t offset; /* first point of this device in the shared buffer */
    size_t npix;
    size_t valid;
} fdev;

struct ks_fuse {
    ks_fuse_options opt;
    int ndev;
    fdev *dev;
    size_t total;           /* points in the shared buffer */
    float *x, *y, *z;       /* shared organized buffer */
    float *nx, *ny, *nz;    /* when normals */
    uint8_t *rgb;           /* when color */
    ks_voxel_grid *grid;
    ks_mjpeg_decoder **dec; /* one per thread */
    /* per run */
    const ks_fuse_input *in;
    ks_status thread_status[64];
    ks_error thread_error[64];
};

typedef struct job {
    ks_fuse *f;
    int t;
    double ms_color;
    ks_cloud *out;
    size_t offset, written, shared; /* phase 2: where partition t goes, voxels written, shared */
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
    free(f->rgb);
    ks_voxel_grid_destroy(f->grid);
    if (f->dec)
        for (int t = 0; t < f->opt.threads; t++)
            ks_mjpeg_decoder_destroy(f->dec[t]);
    free(f->dec);
    free(f);
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
    f->ndev = count;
    f->dev = calloc((size_t)count, sizeof *f->dev);
    ks_status st = KS_OK;
    if (!f->dev) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: out of memory");
        goto fail;
    }
    for (int d = 0; d < count; d++) {
        fdev *fd = &f->dev[d];
        fd->info = devices[d];
        fd->info.serial[KS_FUSE_SERIAL_MAX - 1] = 0;
        st = ks_unproject_table_build(&fd->info.calibration.depth, &fd->table, err);
        if (st) {
            ks_error_prefix(err, "fuse: device %d (%s)", d, fd->info.serial[0] ? fd->info.serial : "no serial");
            goto fail;
        }
        ks_extrinsics rig_to_depth;
        ks_extrinsics_invert(&fd->info.depth_to_rig, &rig_to_depth);
        ks_extrinsics_compose(&rig_to_depth, &fd->info.calibration.depth_to_color, &fd->rig_to_color);
        fd->npix = (size_t)fd->table.width * (size_t)fd->table.height;
        fd->offset = f->total;
        f->total += (fd->npix + 15) / 16 * 16; /* keep every slice 64-byte aligned */
    }
    size_t bytes = (f->total * sizeof(float) + 63) / 64 * 64;
    f->x = aligned_alloc(64, bytes);
    f->y = aligned_alloc(64, bytes);
    f->z = aligned_alloc(64, bytes);
    if (f->opt.normals) {
        f->nx = aligned_alloc(64, bytes);
        f->ny = aligned_alloc(64, bytes);
        f->nz = aligned_alloc(64, bytes);
    }
    if (f->opt.color)
        f->rgb = malloc(f->total * 3);
    f->dec = calloc((size_t)f->opt.threads, sizeof *f->dec);
    if (!f->x || !f->y || !f->z || (f->opt.normals && (!f->nx || !f->ny || !f->nz)) || (f->opt.color && !f->rgb) ||
        !f->dec) {
        st = ks_error_set(err, KS_ENOMEM, "fuse: out of memory for %zu points", f->total);
        goto fail;
    }
    /* unused tail slots of a slice stay NaN forever */
    for (size_t i = 0; i < f->total; i++)
        f->x[i] = f->y[i] = f->z[i] = NAN;
    if (f->opt.color)
        for (int t = 0; t < f->opt.threads; t++)
            if ((st = ks_mjpeg_decoder_create(&f->dec[t], err)) != KS_OK)
                goto fail;
    unsigned gf = (f->opt.color ? KS_CLOUD_COLOR : 0) | (f->opt.normals ? KS_CLOUD_NORMALS : 0);
    if ((st = ks_voxel_grid_create(f->opt.voxel_mm, gf, f->opt.threads, &f->grid, err)) != KS_OK)
        goto fail;
    *out = f;
    return KS_OK;
fail:
    ks_fuse_destroy(f);
    return st;
}

static const uint8_t no_color[3] = {128, 128, 128};

/* Phase 1 for the devices d with d % threads == t. */
static void *points_worker(void *arg)
{
    job *j = arg;
    ks_fuse *f = j->f;
    int T = f->opt.threads;
    for (int d = j->t; d < f->ndev; d += T) {
        fdev *fd = &f->dev[d];
        const ks_fuse_input *in = &f->in[d];
        size_t o = fd->offset;
        fd->valid = 0;
        if (!in->depth) {
            for (size_t i = 0; i < fd->npix; i++)
                f->x[o + i] = f->y[o + i] = f->z[o + i] = NAN;
            continue;
        }
        fd->valid = ks_depth_to_points(&fd->table, in->depth, in->depth_stride, &fd->info.depth_to_rig, f->x + o,
                                       f->y + o, f->z + o);
        if (f->opt.normals)
            ks_points_normals(f->x + o, f->y + o, f->z + o, fd->table.width, fd->table.height,
                              fd->info.depth_to_rig.t, 4.0f * f->opt.voxel_mm + 20.0f, f->nx + o, f->ny + o,
                              f->nz + o);
        if (f->opt.color) {
            double t0 = ks_fuse_now_ms();
            ks_color_image img = {0};
            bool have = false;
            if (in->color && in->color_format == KS_FORMAT_MJPG) {
                ks_error e;
                ks_status st = ks_mjpeg_decode(f->dec[j->t], in->color, in->color_size, f->opt.color_scale, &img, &e);
                if (st) {
                    f->thread_status[j->t] = st;
                    f->thread_error[j->t] = e;
                    ks_error_prefix(&f->thread_error[j->t], "device %d (%s) color", d, fd->info.serial);
                } else {
                    have = true;
                }
            } else if (in->color && in->color_format == KS_FORMAT_BGRA32) {
                img = (ks_color_image){in->color_width, in->color_height,
                                       in->color_stride ? in->color_stride : (size_t)in->color_width * 4, in->color,
                                       1};
                have = true;
            }
            ks_points_colorize(f->x + o, f->y + o, f->z + o, fd->npix, &fd->rig_to_color,
                               &fd->info.calibration.color, have ? &img : NULL, no_color, f->rgb + 3 * o);
            j->ms_color += ks_fuse_now_ms() - t0;
        }
        /* into the grid while the points are still in cache */
        if (fd->valid)
            ks_voxel_grid_add_writer(f->grid, j->t, d, f->x + o, f->y + o, f->z + o, f->opt.color ? f->rgb + 3 * o : NULL,
                                     f->opt.normals ? f->nx + o : NULL, f->opt.normals ? f->ny + o : NULL,
                                     f->opt.normals ? f->nz + o : NULL, fd->npix);
    }
    return NULL;
}

/* Phase 2: partition t of the grid summed into voxels. */
static void *voxel_worker(void *arg)
{
    job *j = arg;
    ks_fuse *f = j->f;
    ks_status st = ks_voxel_grid_aggregate_into(f->grid, j->t, f->opt.min_weight, j->out, j->offset, &j->written,
                                                &j->shared, &f->thread_error[j->t]);
    if (st)
        f->thread_status[j->t] = st;
    return NULL;
}

static ks_status run_phase(ks_fuse *f, void *(*fn)(void *), job *jobs, ks_error *err)
{
    int T = f->opt.threads;
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < T; t++) {
        if (pthread_create(&th[t], NULL, fn, &jobs[t]) != 0)
            break;
        started = t;
    }
    /* threads that could not start: their share runs here */
    for (int t = started + 1; t < T; t++)
        fn(&jobs[t]);
    fn(&jobs[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
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
        jobs[t] = (job){f, t, 0, out, 0, 0, 0};
        f->thread_status[t] = KS_OK;
    }
    f->in = inputs;
    /* phase 1 writes the grid's records: thread t its own segment, sized for its devices */
    size_t maxpts[64] = {0};
    for (int d = 0; d < f->ndev; d++)
        maxpts[d % T] += f->dev[d].npix;
    ks_voxel_grid_reset(f->grid);
    ks_status st = ks_voxel_grid_writers(f->grid, T, maxpts, err);
    if (st)
        return st;
    st = run_phase(f, points_worker, jobs, err);
    double t1 = ks_fuse_now_ms();
    if (st)
        return st;
    /* phase 2: partition t summed straight into its range of the output (sized by its records, an
     * upper bound of its voxels); the ranges are closed up below */
    size_t total = 0;
    for (int t = 0; t < T; t++) {
        jobs[t].offset = total;
        total += ks_voxel_grid_part_records(f->grid, t);
    }
    if ((st = ks_cloud_reserve(out, total, ks_voxel_grid_fields(f->grid), err)) != KS_OK)
        return st;
    if ((st = run_phase(f, voxel_worker, jobs, err)) != KS_OK)
        return st;
    size_t o = jobs[0].written; /* close the gaps between the partitions' ranges */
    for (int t = 1; t < T; t++) {
        size_t s0 = jobs[t].offset, n = jobs[t].written;
        if (o != s0 && n) {
            memmove(out->x + o, out->x + s0, n * sizeof *out->x);
            memmove(out->y + o, out->y + s0, n * sizeof *out->y);
            memmove(out->z + o, out->z + s0, n * sizeof *out->z);
            memmove(out->weight + o, out->weight + s0, n * sizeof *out->weight);
            memmove(out->devices + o, out->devices + s0, n * sizeof *out->devices);
            if (out->rgb && (out->fields & KS_CLOUD_COLOR) && f->opt.color)
                memmove(out->rgb + 3 * o, out->rgb + 3 * s0, 3 * n);
            if (f->opt.normals) {
                memmove(out->nx + o, out->nx + s0, n * sizeof *out->nx);
                memmove(out->ny + o, out->ny + s0, n * sizeof *out->ny);
                memmove(out->nz + o, out->nz + s0, n * sizeof *out->nz);
            }
        }
        o += n;
    }
    out->count = o;
    double t2 = ks_fuse_now_ms();
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->devices = f->ndev;
        for (int d = 0; d < f->ndev; d++) {
            stats->points[d] = f->dev[d].valid;
            stats->points_total += f->dev[d].valid;
        }
        stats->voxels = out->count;
        for (int t = 0; t < T; t++)
            stats->voxels_shared += jobs[t].shared;
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

void ks_fuse_points(const ks_fuse *f, int d, const float **x, const float **y, const float **z, int *width,
                    int *height)
{
    if (!f || d < 0 || d >= f->ndev)
        return;
    const fdev *fd = &f->dev[d];
    *x = f->x + fd->offset;
    *y = f->y + fd->offset;
    *z = f->z + fd->offset;
    *width = fd->table.width;
    *height = fd->table.height;
}
