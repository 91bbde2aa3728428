/* fuse/fuse_internal.h: helpers shared by the files of src/fuse. Not part of the public API. */
#ifndef KS_FUSE_INTERNAL_H
#define KS_FUSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The hot loops are written as plain C that GCC vectorizes at -O3; the library builds at -O2
 * (whose "very cheap" vectorizer skips loops with a remainder), so they ask for O3 themselves and
 * get an AVX-512 and an AVX2 clone, the one the CPU runs picked at load time on x86-64 (the
 * AVX-512 clone took the depth-to-records phase of a 9-device NFOV set from 9.8 to 8.2 ms on the
 * AMD EPYC of the benchmarks). Sanitizer builds keep the plain version (an ifunc resolver runs
 * before the sanitizer runtime is up). */
/* KS_HOT_NANTEST is KS_HOT for loops that test for NaN: GCC keeps such comparisons as branches
 * unless told they cannot trap (no floating-point exception is ever unmasked here). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define KS_HOT __attribute__((optimize("O3"), target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define KS_HOT_NANTEST __attribute__((optimize("O3", "no-trapping-math"), target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define KS_HOT __attribute__((optimize("O3")))
#define KS_HOT_NANTEST __attribute__((optimize("O3", "no-trapping-math")))
#else
#define KS_HOT
#define KS_HOT_NANTEST
#endif

#include "kinsync/fuse.h"

/* Writer threads: after a reset, prepares one segment per writer in the grid's record store,
 * writer w adding at most max_points[w] points; then each writer thread calls
 * ks_voxel_grid_add_writer for its devices (its own segment: no locks), and the partitions are
 * aggregated by the threads, one partition at a time each. ks_voxel_grid_add cannot be mixed in
 * until the next reset. */
ks_status ks_voxel_grid_writers(ks_voxel_grid *g, int nwriters, const size_t *max_points, ks_error *err);
/* col (may be NULL: no colour) is each point's packed colour, 0x01BBGGRR (R in the low byte), or 0
 * when no colour pixel saw it: such a point adds no colour to its voxel, so a point no colour camera
 * saw never greys a coloured voxel. */
void ks_voxel_grid_add_writer(ks_voxel_grid *g, int writer, int device, const float *x, const float *y,
                              const float *z, const uint32_t *col, const float *nx, const float *ny, const float *nz,
                              size_t n);
/* ks_points_colorize with each point's colour packed as the voxel grid takes it: col[i] =
 * 0x01BBGGRR from the image, 0 when no colour pixel saw the point. Returns the points coloured. */
size_t ks_points_colorize_packed(const float *x, const float *y, const float *z, size_t n,
                                 const ks_extrinsics *rig_to_color, const ks_intrinsics *color,
                                 const ks_color_image *img, uint32_t *col);
/* A baseline JPEG frame straight to 1/2, 1/4 or 1/8 of its size (fuse/jpeg_lowres.c: what it takes,
 * and how the small image relates to the full decode). The state keeps the Huffman tables it built
 * between frames (a frame uses only the tables it defines). Decodes into *buf (grown to *cap as
 * needed) and describes the image in *out; KS_EPARSE, with the reason, for a frame it does not take
 * (libjpeg-turbo decodes those). */
typedef struct ks_jpeg_lowres ks_jpeg_lowres;
ks_jpeg_lowres *ks_jpeg_lowres_create(void);
void ks_jpeg_lowres_destroy(ks_jpeg_lowres *j);
ks_status ks_jpeg_lowres_decode(ks_jpeg_lowres *j, const uint8_t *data, size_t size, int scale, uint8_t **buf,
                                size_t *cap, ks_color_image *out, ks_error *err);
/* Records (points) held by partition p: an upper bound of its voxels. */
size_t ks_voxel_grid_part_records(const ks_voxel_grid *g, int partition);
/* Sums partition p into voxels, in the scratch of `slot` (0..63: threads aggregating at the same
 * time use different slots), written to out in blocks: the k-th `block` voxels at out[blocks[k]..],
 * nblocks * block at least ks_voxel_grid_part_records(g, p); out holds them with
 * ks_voxel_grid_fields(g). *written receives the number of voxels (those below min_weight are left
 * out), *shared (may be NULL) those seen by two or more devices. */
ks_status ks_voxel_grid_aggregate_into(ks_voxel_grid *g, int partition, int slot, uint32_t min_weight, ks_cloud *out,
                                       const size_t *blocks, size_t nblocks, size_t block, size_t *written,
                                       size_t *shared, ks_error *err);
/* A partition's aggregation in pieces, for threads that share its cells (ks_fuse: a thread done
 * with its partitions takes cells from the end of another's). ks_voxel_grid_sort puts partition p's
 * runs in cell order and gives its number of cells; ks_voxel_grid_cells_into then sums cells
 * c0..c1-1 (any thread, its own slot, each cell once) and writes their voxels through a cursor:
 * into blocks of `block` points at out[blocks[k]..], taken in order, each cell's voxels after the
 * previous call's. Cells written through one cursor in increasing order give exactly what
 * ks_voxel_grid_aggregate_into writes. */
typedef struct ks_voxel_out {
    const size_t *blocks;
    size_t nblocks, block;
    size_t taken, next, end; /* blocks taken, the next slot, the end of the current block (start: 0) */
    size_t written, shared;  /* voxels written, of which seen by 2+ devices (added to) */
} ks_voxel_out;
/* The room left in w's current block, the next block taken when it is full; 0 when every block is
 * taken and full. */
static inline size_t ks_voxel_out_room(ks_voxel_out *w)
{
    if (w->next == w->end) {
        if (w->taken == w->nblocks)
            return 0;
        w->next = w->blocks[w->taken++];
        w->end = w->next + w->block;
    }
    return w->end - w->next;
}
ks_status ks_voxel_grid_sort(ks_voxel_grid *g, int partition, size_t *cells, ks_error *err);
/* Records of cell c of a sorted partition: an upper bound of its voxels. */
size_t ks_voxel_grid_cell_records(const ks_voxel_grid *g, int partition, size_t cell);
ks_status ks_voxel_grid_cells_into(ks_voxel_grid *g, int partition, int slot, size_t c0, size_t c1,
                                   uint32_t min_weight, ks_cloud *out, ks_voxel_out *w, ks_error *err);
unsigned ks_voxel_grid_fields(const ks_voxel_grid *g);

/* Tests: a partition's own thread sums at most `cells` of its cells (the rest are left to the
 * threads that take cells from other partitions' backs), and the cells so taken in the last run. */
void ks_fuse_set_own_cells(ks_fuse *f, size_t cells);
size_t ks_fuse_stolen_cells(const ks_fuse *f);

/* The pose as a float row-major 3x3 rotation then translation (NULL: identity). */
void ks_pose_matrix(const ks_extrinsics *to_rig, float m[12]);
/* Rows v0..v1-1 of a depth image to points with pose m; row v0 is written at x/y/z[0] (the image's
 * organized layout from there). Returns the valid points. */
size_t ks_depth_rows_to_points(const ks_unproject_table *t, const uint16_t *depth, size_t stride, const float m[12],
                               int v0, int v1, float *x, float *y, float *z);
/* Normals of one row of an organized cloud from its neighbours (as ks_points_normals); prev / next
 * are the rows above and below ({x, y, z} each), NULL at the image border (the row gets NaN). */
size_t ks_normals_row(const float *const prev[3], const float *const cur[3], const float *const next[3], int width,
                      const float view[3], float max_gap_mm, float *nx, float *ny, float *nz);

/* The fusion's big buffers (points, records, clouds: megabytes, allocated once and reused). Each
 * fresh 4 KB page costs a fault (tens of microseconds on a virtual machine: faulting in the 40 MB
 * of a 9-device frame set's points took 270-520 ms), so buffers of a megabyte or more are aligned
 * to 2 MB and advised as transparent huge pages (one fault per 2 MB where the kernel allows it).
 * Freed with free(). realloc_big keeps the first keep_bytes (a copy; the old block is freed). */
void *ks_fuse_alloc_big(size_t bytes);
void *ks_fuse_realloc_big(void *p, size_t keep_bytes, size_t bytes);

/* Milliseconds on the monotonic clock. */
double ks_fuse_now_ms(void);

#endif
