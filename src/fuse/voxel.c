/* fuse/voxel.c: the voxel grid that merges all devices.
 *
 * Why not one big hash table: a 9-device NFOV frame set has ~3 M points and, with 5 mm voxels,
 * ~2 M occupied voxels, so a table keyed by voxel is far larger than the caches and every point
 * costs a DRAM miss (measured: ~70 ns per point, 5 frame sets/s). Instead the grid works in two
 * cache-friendly steps, all streaming:
 *   add:       each point's cell (a cube of 32^3 voxels), voxel inside the cell and offset inside the
 *              voxel are computed (vectorized); the point is appended as one packed 8-byte record
 *              to a record list (in the pipeline, one store with a segment per writer; see struct
 *              ks_voxel_grid). Points arrive in image order, so consecutive points of one cell (a
 *              stretch of an image row) form a run; the cell key is stored once per run, not per
 *              point. Each cell belongs to one partition (chosen by hashing the cell), so a cell's
 *              records are all summed by one thread and threads never share a cell.
 *   aggregate: per partition, runs are put in cell order (a counting sort of the runs: cheap, the
 *              records themselves never move), then each cell's records are summed in a dense 32^3
 *              scratch array that stays in L2 (512 KB), each voxel listed at its first record;
 *              the list is walked to gather the voxels (clearing the scratch), and they are written
 *              out by a loop without branches that vectorizes.
 * Sums are of offsets inside the voxel (rounded to 1/32768 voxel: 0.15 um for 5 mm voxels), so
 * they keep sub-micrometre precision at any distance from the origin; they are summed as integers
 * (exact, so the order of addition, i.e. the thread count, changes nothing) and turned into float
 * once per voxel (exact up to 512 points per voxel, one rounding beyond).
 * Every buffer is kept and reused: after the first frame sets a steady stream allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "util/bigmem.h"
#include "kinsync/fuse.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fuse/voxel.c reads a record's 64 bits as four 16-bit words: little-endian only"
#endif

#define KEY_BITS 21 /* voxel index bits per axis (bias 2^20) */
#define KEY_BIAS (1 << (KEY_BITS - 1))
#define KEY_MASK ((1u << KEY_BITS) - 1)
#define CELL_BITS 5 /* 32 voxels per cell edge. 16 was measured too (session 6, 9-device NFOV set, 5 mm):
                      * twice the runs, so 264 M instead of 242 M instructions and ~10 % more CPU
                      * per set; the 32^3 scratch (512 KB of sums) still fits the L2 */
#define CELL_N (1 << CELL_BITS)
#define CELL_VOX (CELL_N * CELL_N * CELL_N)
#define LOW_MASK ((uint32_t)(CELL_N - 1))
#define BLOCK 64
#define RECENT_CELLS 512 /* sort_runs' cache of recently seen cells (8 KB) */
#define PREFETCH_RUNS 16 /* runs fetched ahead while summing (a run is ~15 records, ~120 bytes) */
#define PREFETCH_RECS (8 * BLOCK) /* records ahead of the writer asked for (add_in_order) */
#define PREFETCH_OUT 1536 /* output points ahead asked for before a cell is summed (cells_into) */

/* A record: one point, 64 bits = four 16-bit words (so one interleave with zeros turns it into the
 * four 32-bit lanes it adds to, see sum_recs):
 *   bits  0..14  voxel inside the cell (x << 10 | y << 5 | z)
 *   bits 16..30, 32..46, 48..62  offset inside the voxel along x, y, z in 1/32768 voxel
 * The device is the run's (a run is one device's points). */
typedef uint64_t rec;
#define FRAC_BITS 15
#define FRAC_ONE 32768.0f
#define FRAC_MAX 32767
#define REC_FX_SHIFT 16
#define REC_FY_SHIFT 32
#define REC_FZ_SHIFT 48
/* run.len: bits 0..26 the record count, 27..31 the device */
#define RUN_DEV_SHIFT 27
#define RUN_LEN_MASK ((1u << RUN_DEV_SHIFT) - 1)
#define ADD_MAX_POINTS (1u << 26) /* points per add_core call, so a run's length fits its 27 bits */
/* A cell with fewer records than this sums in 32-bit lanes (sums < 2^31); larger ones (coarse
 * voxels) are summed in slices of this size, each added to 64-bit sums (see sum_cell). */
#define NARROW_MAX 65536u

/* A cell key: bit 63 set (0 = no point), then the cell index per axis (voxel index >> CELL_BITS,
 * biased) in 21-bit fields as the voxel keys were. */
#define CELL_VALID (1ull << 63)

typedef struct run {
    uint64_t cell;
    uint32_t start, len; /* records [start, start + (len & RUN_LEN_MASK)), device len >> RUN_DEV_SHIFT */
} run;

typedef struct part {
    rec *rec;
    float *nrm;    /* 3 per record when normals */
    uint32_t *col; /* per record when colored: 0 = no color, else 0x01BBGGRR */
    run *runs;     /* as many slots as records: a run has at least one record */
    uint8_t *rpart; /* the writers' store (parts[0], 2+ partitions), per run: the partition of its cell (count_runs) */
    size_t rec_cap;
    /* records and runs are kept in segments, one per writer thread (ks_voxel_grid_add uses 0) */
    int nseg;
    size_t seg_off[64], seg_n[64], seg_runs[64];
    /* writers' mode (see struct ks_voxel_grid): the records of this partition in writer w's
     * segment of partition 0's store */
    size_t shared_n[64], shared_runs[64];
    /* cell table: open addressing cell key -> cell index */
    struct cslot {
        uint64_t key; /* 0 = empty */
        uint64_t idx;
    } *ctab;
    size_t ccap, ncell;
    /* aggregation: every run's cell index, then the runs' start/length in cell order */
    uint32_t *run_cell, *run_at, *ord_start, *ord_len; /* run_at (with a filter): the run (in the store) of each */
    size_t run_cap;
    uint32_t *cstart;    /* per cell, ncell + 1 */
    uint64_t *cell_keys; /* per cell, in index order */
    size_t cell_list_cap;
    /* result cache for ks_voxel_grid_count */
    ks_cloud out;
    bool aggregated;
} part;

/* four 32-bit lanes: count and the offset sums along x, y, z of one voxel */
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef uint16_t v8h __attribute__((vector_size(16)));
typedef uint8_t v16b __attribute__((vector_size(16)));
static const v16b zero16 = {0};
typedef uint64_t v2r __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v8u __attribute__((vector_size(32))); /* a pair (struct vac) in one copy */

/* dense per-cell scratch, one per partition (threads aggregate different partitions) */
typedef struct scratch {
    /* per voxel: count, sx, sy, sz of the records summed since the last flush (< 2^31), and the colour
     * sums r, g, b and the count of coloured points. Where the colour is summed with the positions
     * (the pipeline), both sit in one 32-byte pair (ac): one cache line per record, not two. */
    union {
        struct {
            v4u a[CELL_VOX];
            v4u col[CELL_VOX];
        };
        struct vac {
            v4u a, col;
        } ac[CELL_VOX];
    };
    uint32_t dev[CELL_VOX]; /* devices seen */
    struct wide {         /* cells of NARROW_MAX records or more: the flushed sums */
        uint64_t count, sx, sy, sz;
    } *w;
    uint32_t gp[CELL_VOX]; /* the gathered voxels' mean colours, packed 0x00BBGGRR (emit_colors) */
    v4f nrm[CELL_VOX]; /* normal sums x, y, z (one cache line per voxel, as the other sums) */
    uint64_t occ[CELL_VOX / 64]; /* occupied voxels of a wide cell (sum_cell), in index order */
    /* The occupied voxels gathered: the voxel (gl), its lanes as summed (a narrow cell's positions,
     * see gather_list: ga without colour, else beside the colour lanes in the pairs gg, the layout of
     * ac; any cell's colour lanes in gg), the devices where they are not in the lanes (gd); a wide
     * cell's, and a narrow cell's for the general output loop, as count, devices and float sums (gn,
     * gd, gx, gy, gz). gl has one slot more than a cell has voxels: sum_recs writes every record's
     * voxel to the list's next free slot, whether or not it is a new voxel. */
    uint32_t gl[CELL_VOX + 1], gd[CELL_VOX];
    union {
        struct vac gg[CELL_VOX];
        v4u ga[CELL_VOX];
    };
    uint32_t gn[CELL_VOX];
    float gx[CELL_VOX], gy[CELL_VOX], gz[CELL_VOX];
} scratch;

/* Where the records are. By ks_voxel_grid_add, partition p's records are in parts[p] (each point
 * goes to its cell's partition as it is added). In the writers' mode (the pipeline,
 * ks_voxel_grid_writers, `shared`), every writer appends its points in their image order to its own
 * segment of parts[0]'s store, whatever their partition, so a record is written once, where it
 * lands, without looking at its partition (add_one_part); partition p then takes the runs of its
 * cells from that store when it is aggregated (sort_runs), and the writers count each partition's
 * records and runs as they go (count_runs). There may be more partitions than threads: the threads
 * take them one at a time, each summing in its own scratch (its slot). */
struct ks_voxel_grid {
    float voxel, inv;
    unsigned fields;
    bool shared;
    int nparts;
    part *parts;
    scratch *scr[64]; /* per aggregating thread (slot), made at its first use */
};

static inline uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static inline uint32_t part_of(uint64_t cell, uint32_t np)
{
    return np > 1 ? (uint32_t)(((mix(cell) & 0xffffffffu) * np) >> 32) : 0;
}

ks_status ks_voxel_grid_create(float voxel_mm, unsigned fields, int partitions, ks_voxel_grid **out, ks_error *err)
{
    *out = NULL;
    if (!(voxel_mm >= 0.01f && voxel_mm <= 1e5f))
        return ks_error_set(err, KS_EINVAL, "voxel grid: voxel size %g mm is out of range; use 0.01 to 100000 mm",
                            (double)voxel_mm);
    if (partitions < 1 || partitions > 64)
        return ks_error_set(err, KS_EINVAL, "voxel grid: %d partitions; use 1 to 64 (one per thread)", partitions);
    ks_voxel_grid *g = calloc(1, sizeof *g);
    part *ps = calloc((size_t)partitions, sizeof *ps);
    if (!g || !ps) {
        free(g);
        free(ps);
        return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
    }
    g->voxel = voxel_mm;
    g->inv = 1.0f / voxel_mm;
    g->fields = fields & (KS_CLOUD_COLOR | KS_CLOUD_NORMALS);
    g->nparts = partitions;
    g->parts = ps;
    for (int i = 0; i < partitions; i++) {
        ps[i].aggregated = true;
        ps[i].nseg = 1;
    }
    *out = g;
    return KS_OK;
}

void ks_voxel_grid_destroy(ks_voxel_grid *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nparts; i++) {
        part *p = &g->parts[i];
        free(p->rec);
        free(p->nrm);
        free(p->col);
        free(p->runs);
        free(p->rpart);
        free(p->ctab);
        free(p->run_cell);
        free(p->run_at);
        free(p->ord_start);
        free(p->ord_len);
        free(p->cstart);
        free(p->cell_keys);
        ks_cloud_free(&p->out);
    }
    for (int i = 0; i < 64; i++) {
        if (g->scr[i])
            free(g->scr[i]->w);
        free(g->scr[i]);
    }
    free(g->parts);
    free(g);
}

void ks_voxel_grid_reset(ks_voxel_grid *g)
{
    g->shared = false;
    for (int i = 0; i < g->nparts; i++) {
        part *p = &g->parts[i];
        p->nseg = 1;
        p->seg_off[0] = p->seg_n[0] = p->seg_runs[0] = 0;
        p->shared_n[0] = 0;
        p->out.count = 0;
        p->aggregated = true;
    }
}

/* Keys of one point from its coordinates in 1/32768 voxel, q = floor(w + 1/2) (w = coordinate /
 * voxel x 32768): voxel index q >> 15, offset q & 32767. */
static inline void keys_of(const int64_t q[3], uint64_t *cell, rec *r)
{
    uint32_t ib[3], fr[3];
    for (int c = 0; c < 3; c++) {
        ib[c] = (uint32_t)((q[c] >> FRAC_BITS) + KEY_BIAS) & KEY_MASK;
        fr[c] = (uint32_t)q[c] & FRAC_MAX;
    }
    uint32_t l = (ib[0] & LOW_MASK) << (2 * CELL_BITS) | (ib[1] & LOW_MASK) << CELL_BITS | (ib[2] & LOW_MASK);
    *r = (uint64_t)l | (uint64_t)fr[0] << REC_FX_SHIFT | (uint64_t)fr[1] << REC_FY_SHIFT |
         (uint64_t)fr[2] << REC_FZ_SHIFT;
    *cell = CELL_VALID | (uint64_t)(ib[0] >> CELL_BITS) << 42 | (uint64_t)(ib[1] >> CELL_BITS) << 21 |
            (uint64_t)(ib[2] >> CELL_BITS);
}

/* The general case of block_keys, one point at a time in 64-bit integers: any coordinate. A point
 * within block_keys' range gets exactly the keys block_keys gives it (same float operations, then
 * the same floor), so which path a block takes never changes a result. */
static void block_keys_wide(const float *x, const float *y, const float *z, int n, float s, uint64_t *cell, rec *r)
{
    for (int i = 0; i < n; i++) {
        const float t[3] = {x[i] * s + 0.5f, y[i] * s + 0.5f, z[i] * s + 0.5f};
        int64_t q[3];
        bool ok = true;
        for (int c = 0; c < 3; c++) {
            /* voxel index within +-2^20 (the key's range): |t| below 2^35 */
            ok = ok && t[c] >= -34359738368.0f && t[c] < 34359738368.0f;
            q[c] = ok ? (int64_t)t[c] : 0;
            q[c] -= ok && t[c] < (float)q[c]; /* toward zero; floor */
            ok = ok && (q[c] >> FRAC_BITS) >= -KEY_BIAS && (q[c] >> FRAC_BITS) < KEY_BIAS;
        }
        keys_of(q, &cell[i], &r[i]);
        if (!ok)
            cell[i] = 0;
    }
}

/* A block of points to cell keys and records in fixed point: t = coordinate x 32768 / voxel + 1/2
 * (one float multiply-add), q = floor(t) as an integer gives the voxel (q >> 15) and the offset
 * inside it rounded to the nearest 1/32768 voxel (q & 32767): two integer operations instead of a
 * floor, a subtraction, a scale and a second rounding per axis. Branch-free so it vectorizes: NaN
 * points get cell 0 (skipped) through a mask, never a test. Coordinates of 2^30 / 32768 = 32768
 * voxels (164 m at 5 mm) or more do not fit the 32-bit integers: such a block (rare) is redone by
 * block_keys_wide. */
KS_HOT static void block_keys(const float *restrict x, const float *restrict y, const float *restrict z, int n,
                              float s, uint64_t *restrict cell, rec *restrict r)
{
    const float lim = 1073741824.0f; /* 2^30 */
    uint32_t far = 0;
    for (int i = 0; i < n; i++) {
        float t[3] = {x[i] * s + 0.5f, y[i] * s + 0.5f, z[i] * s + 0.5f};
        /* quiet comparisons (no branch, NaN -> 0); out-of-range coordinates are zeroed before the
         * conversion so it is always defined */
        uint32_t ok = 1;
        for (int c = 0; c < 3; c++) {
            /* |t| < lim is false for NaN; |t| >= lim only for a number too far (the wide path) */
            float a = fabsf(t[c]);
            ok &= (uint32_t)__builtin_isless(a, lim);
            far |= (uint32_t)__builtin_isgreaterequal(a, lim);
        }
        uint32_t m = 0 - ok;
        uint32_t ib[3], fr[3];
        for (int c = 0; c < 3; c++) {
            uint32_t bits;
            memcpy(&bits, &t[c], sizeof bits);
            bits &= m;
            float v;
            memcpy(&v, &bits, sizeof v);
            int32_t q = (int32_t)v; /* toward zero; floor below */
            q -= v < (float)q;
            ib[c] = (uint32_t)((q >> FRAC_BITS) + KEY_BIAS);
            fr[c] = (uint32_t)q & FRAC_MAX;
        }
        uint32_t lo = (ib[0] & LOW_MASK) << (2 * CELL_BITS) | (ib[1] & LOW_MASK) << CELL_BITS | (ib[2] & LOW_MASK) |
                      fr[0] << REC_FX_SHIFT;
        uint32_t hi = fr[1] | fr[2] << (REC_FZ_SHIFT - REC_FY_SHIFT);
        r[i] = (uint64_t)lo | (uint64_t)hi << 32;
        uint32_t clo = (ib[1] >> CELL_BITS) << 21 | (ib[2] >> CELL_BITS); /* cell fields fit 17 bits here */
        uint32_t chi = (ib[0] >> CELL_BITS) << 10 | (ib[1] >> CELL_BITS) >> 11;
        uint64_t k = CELL_VALID | (uint64_t)chi << 32 | clo;
        cell[i] = k & (0 - (uint64_t)ok);
    }
    if (far)
        block_keys_wide(x, y, z, n, s, cell, r);
}

/* Room for `need` records (and their normals, colours; with `rpart`, the writers' store's partition
 * of each run) in p. */
static int grow_records(part *p, size_t need, bool normals, bool color, bool rpart)
{
    if (rpart && !p->rpart && p->rec_cap && !(p->rpart = ks_fuse_alloc_big(p->rec_cap)))
        return -1;
    if (need <= p->rec_cap)
        return 0;
    size_t cap = need + need / 2 + 1024, old = p->rec_cap;
    rec *r = ks_fuse_realloc_big(p->rec, old * sizeof *r, cap * sizeof *r);
    if (!r)
        return -1;
    p->rec = r;
    run *rn = ks_fuse_realloc_big(p->runs, old * sizeof *rn, cap * sizeof *rn);
    if (!rn)
        return -1;
    p->runs = rn;
    if (rpart || p->rpart) {
        uint8_t *rp = ks_fuse_realloc_big(p->rpart, p->rpart ? old : 0, cap);
        if (!rp)
            return -1;
        p->rpart = rp;
    }
    if (normals) {
        float *n = ks_fuse_realloc_big(p->nrm, p->nrm ? old * 3 * sizeof *n : 0, cap * 3 * sizeof *n);
        if (!n)
            return -1;
        p->nrm = n;
    }
    if (color) {
        uint32_t *c = ks_fuse_realloc_big(p->col, p->col ? old * sizeof *c : 0, cap * sizeof *c);
        if (!c)
            return -1;
        p->col = c;
    }
    p->rec_cap = cap;
    return 0;
}

/* Appends the points of one device to segment `seg` of every partition (partition < 0) or of one.
 * The current run (partition, record position) lives in locals; it is written back when the cell
 * changes, so the common path is: load, compare, store, increment. Inlined with constant
 * `filtered` / `color` / `normals` (add_core below), so the pipeline's case (every partition,
 * positions only) compiles to that loop alone. */
static inline __attribute__((always_inline)) void add_impl(ks_voxel_grid *g, int partition, int seg, int device,
                                                           const float *x, const float *y, const float *z,
                                                           const uint8_t *rgb, const uint32_t *col,
                                                           const float *nx, const float *ny,
                                                           const float *nz, size_t n, const bool filtered,
                                                           const bool color, const bool normals)
{
    const bool have_rgb = color && rgb, have_col = color && col, have_n = normals && nx && ny && nz;
    const uint32_t np = g->shared ? 1 : (uint32_t)g->nparts; /* shared: everything to parts[0] */
    const uint32_t devbits = (uint32_t)device << RUN_DEV_SHIFT;
    uint64_t cell[BLOCK];
    rec r[BLOCK];
    size_t next[64], nrun[64]; /* per partition: next record, next run (absolute positions) */
    for (uint32_t pi = 0; pi < np; pi++) {
        if (filtered && pi != (uint32_t)partition)
            continue; /* another thread's partition: not ours to read while it writes (never used here) */
        const part *p = &g->parts[pi];
        next[pi] = p->seg_off[seg] + p->seg_n[seg];
        nrun[pi] = p->seg_off[seg] + p->seg_runs[seg];
    }
    uint64_t cur = 1;  /* cell of the open run; 1 (not a cell key, nor "no point") before the first */
    uint32_t cp = 0;   /* its partition */
    bool keep = false; /* whether this call keeps the open run's points */
    size_t at = 0;     /* next record of partition cp */
    run *open = NULL;  /* the open run */
    part *p = NULL;
    rec *dst = NULL;   /* p->rec */
    for (size_t b = 0; b < n; b += BLOCK) {
        int m = (int)(n - b < BLOCK ? n - b : BLOCK);
        block_keys(x + b, y + b, z + b, m, g->inv * FRAC_ONE, cell, r);
        for (int i = 0; i < m; i++) {
            uint64_t c = cell[i];
            if (c != cur) {
                if (!c)
                    continue; /* no point: the open run stays open (nothing else is appended) */
                if (open) {
                    open->len = (uint32_t)(at - open->start) | devbits;
                    next[cp] = at;
                }
                cur = c;
                cp = part_of(c, np);
                keep = !filtered || cp == (uint32_t)partition;
                open = NULL;
                if (keep) {
                    p = &g->parts[cp];
                    dst = p->rec;
                    at = next[cp];
                    open = &p->runs[nrun[cp]++];
                    open->cell = c;
                    open->start = (uint32_t)at;
                }
            }
            if (filtered && !keep)
                continue;
            size_t pt = b + (size_t)i;
            if (color) /* packed 0x01BBGGRR; 0 (no colour) when not given */
                p->col[at] = have_col ? col[pt]
                             : have_rgb ? 0x01000000u | (uint32_t)rgb[3 * pt] | (uint32_t)rgb[3 * pt + 1] << 8 |
                                              (uint32_t)rgb[3 * pt + 2] << 16
                                        : 0;
            if (normals) {
                float *q = &p->nrm[3 * at];
                q[0] = have_n ? nx[pt] : NAN;
                q[1] = have_n ? ny[pt] : NAN;
                q[2] = have_n ? nz[pt] : NAN;
            }
            dst[at++] = r[i];
        }
    }
    if (open) {
        open->len = (uint32_t)(at - open->start) | devbits;
        next[cp] = at;
    }
    /* only the partitions this call owns: with a partition filter, other threads own the others */
    for (uint32_t pi = 0; pi < np; pi++) {
        if (filtered && pi != (uint32_t)partition)
            continue;
        part *q = &g->parts[pi];
        q->seg_n[seg] = next[pi] - q->seg_off[seg];
        q->seg_runs[seg] = nrun[pi] - q->seg_off[seg];
    }
}

/* Every point into parts[0] in its order (one partition, or the writers' shared store), positions
 * and, with `color`, the packed colours. Records then keep the points' order, so block_keys writes a
 * block's records straight into the record list (and its colours are one copy) and only the run
 * boundaries need a look: a vectorizable pass marks where the cell changes, and the marks are
 * scanned eight at a time. A block with a point without a cell (no depth) is compacted by the
 * general loop instead. Same records and runs as add_impl, so the same voxels. */
static inline __attribute__((always_inline)) void add_in_order(ks_voxel_grid *g, int seg, int device, const float *x,
                                                               const float *y, const float *z,
                                                               const uint32_t *col, size_t n, const bool color)
{
    part *p = &g->parts[0];
    const uint32_t devbits = (uint32_t)device << RUN_DEV_SHIFT;
    size_t at = p->seg_off[seg] + p->seg_n[seg], nr = p->seg_off[seg] + p->seg_runs[seg];
    uint64_t cell[BLOCK + 1];
    uint8_t change[BLOCK];
    run *open = NULL;
    cell[BLOCK] = 1; /* the cell before the first block: none (1 is not a cell key) */
    for (size_t b = 0; b < n; b += BLOCK) {
        const int m = (int)(n - b < BLOCK ? n - b : BLOCK);
        cell[0] = cell[BLOCK]; /* the previous block's last cell, at index 0; this block's at 1..m */
        rec *dst = p->rec + at;
        /* the record list eight blocks ahead (4 KB; and the colours', 2 KB) asked for, for writing:
         * the lines come from memory before the stores reach them, instead of each store's
         * read-for-ownership waiting (alternated runs: 1.9-3.3 % less CPU per 9-device set, one
         * thread without colour) */
        for (int q = 0; q < (int)(BLOCK * sizeof *dst / 64); q++)
            __builtin_prefetch((const char *)(dst + PREFETCH_RECS) + 64 * q, 1, 3);
        for (int q = 0; color && q < (int)(BLOCK * sizeof *p->col / 64); q++)
            __builtin_prefetch((const char *)(p->col + at + PREFETCH_RECS) + 64 * q, 1, 3);
        block_keys(x + b, y + b, z + b, m, g->inv * FRAC_ONE, cell + 1, dst);
        uint64_t none = 0;
        for (int i = 0; i < m; i++) {
            change[i] = cell[i + 1] != cell[i];
            none |= cell[i + 1] == 0;
        }
        if (!none) {
            /* every point has a cell: the records are in place; open a run at each change. The
             * block's change flags (bytes 0 or 1) become one 64-bit mask, eight at a time (a
             * multiply moves byte j's bit to bit 56 + j), so the runs are found by one loop over its
             * set bits, ~4 per block, one mispredicted exit (a loop per 8-byte word mispredicted
             * more: alternated runs, 3.0-3.6 % more CPU per set on one thread) */
            if (m < BLOCK)
                memset(change + m, 0, (size_t)(BLOCK - m));
            uint64_t mask = 0;
            for (int w = 0; w < BLOCK; w += 8) {
                uint64_t bits;
                memcpy(&bits, change + w, sizeof bits);
                mask |= ((bits * 0x0102040810204080ull) >> 56) << w;
            }
            for (; mask; mask &= mask - 1) {
                const int i = __builtin_ctzll(mask);
                const size_t pos = at + (size_t)i;
                if (open)
                    open->len = (uint32_t)(pos - open->start) | devbits;
                open = &p->runs[nr++];
                open->cell = cell[i + 1];
                open->start = (uint32_t)pos;
            }
            if (color)
                memcpy(p->col + at, col + b, (size_t)m * sizeof *col);
            at += (size_t)m;
            cell[BLOCK] = cell[m];
            continue;
        }
        /* some points have no cell: compact in place (a record moves only backwards) */
        uint64_t cur = cell[0];
        size_t k = at;
        for (int i = 0; i < m; i++) {
            uint64_t c = cell[i + 1];
            if (!c)
                continue; /* the open run stays open, as in add_impl */
            if (c != cur) {
                if (open)
                    open->len = (uint32_t)(k - open->start) | devbits;
                open = &p->runs[nr++];
                open->cell = c;
                open->start = (uint32_t)k;
                cur = c;
            }
            if (color)
                p->col[k] = col[b + (size_t)i];
            p->rec[k++] = dst[i];
        }
        at = k;
        cell[BLOCK] = cur;
    }
    if (open)
        open->len = (uint32_t)(at - open->start) | devbits;
    p->seg_n[seg] = at - p->seg_off[seg];
    p->seg_runs[seg] = nr - p->seg_off[seg];
}

KS_HOT static void add_one_part(ks_voxel_grid *g, int seg, int device, const float *x, const float *y,
                                const float *z, size_t n)
{
    add_in_order(g, seg, device, x, y, z, NULL, n, false);
}

KS_HOT static void add_one_part_color(ks_voxel_grid *g, int seg, int device, const float *x, const float *y,
                                      const float *z, const uint32_t *col, size_t n)
{
    add_in_order(g, seg, device, x, y, z, col, n, true);
}

/* Writers' mode: the partition of each of runs r0..r1 of writer seg's segment of parts[0] (the runs
 * a call just added, still in the cache), and each partition's records and runs among them. */
static void count_runs(ks_voxel_grid *g, int seg, size_t r0, size_t r1)
{
    const uint32_t np = (uint32_t)g->nparts;
    size_t cnt[64] = {0}, nr[64] = {0};
    const run *rs = g->parts[0].runs + g->parts[0].seg_off[seg];
    uint8_t *rp = g->parts[0].rpart + g->parts[0].seg_off[seg];
    for (size_t r = r0; r < r1; r++) {
        uint32_t t = part_of(rs[r].cell, np);
        rp[r] = (uint8_t)t;
        cnt[t] += rs[r].len & RUN_LEN_MASK;
        nr[t]++;
    }
    for (uint32_t t = 0; t < np; t++) {
        g->parts[t].shared_n[seg] += cnt[t];
        g->parts[t].shared_runs[seg] += nr[t];
    }
}

KS_HOT static void add_core(ks_voxel_grid *g, int partition, int seg, int device, const float *x, const float *y,
                     const float *z, const uint8_t *rgb, const uint32_t *col, const float *nx, const float *ny,
                     const float *nz, size_t n)
{
    const bool color = (g->fields & KS_CLOUD_COLOR) != 0, normals = (g->fields & KS_CLOUD_NORMALS) != 0;
    const bool in_order = partition < 0 && (g->shared || g->nparts == 1); /* everything to parts[0] */
    /* writers' mode only: with a partition filter, parts[0] is another thread's to write */
    const size_t runs0 = g->shared ? g->parts[0].seg_runs[seg] : 0;
    for (size_t b = 0; b < n; b += ADD_MAX_POINTS) { /* runs close at the end of a call: lengths fit */
        size_t m = n - b < ADD_MAX_POINTS ? n - b : ADD_MAX_POINTS;
        if (in_order && !color && !normals)
            add_one_part(g, seg, device, x + b, y + b, z + b, m);
        else if (in_order && color && col && !normals) /* the pipeline with colour */
            add_one_part_color(g, seg, device, x + b, y + b, z + b, col + b, m);
        else
            add_impl(g, partition, seg, device, x + b, y + b, z + b, rgb ? rgb + 3 * b : NULL,
                     col ? col + b : NULL, nx ? nx + b : NULL,
                     ny ? ny + b : NULL, nz ? nz + b : NULL, m, partition >= 0, color, normals);
    }
    if (g->shared && g->nparts > 1)
        count_runs(g, seg, runs0, g->parts[0].seg_runs[seg]);
}

ks_status ks_voxel_grid_add(ks_voxel_grid *g, int partition, int device, const float *x, const float *y,
                            const float *z, const uint8_t *rgb, const float *nx, const float *ny, const float *nz,
                            size_t n, ks_error *err)
{
    if (device < 0 || device >= KS_FUSE_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "voxel grid: device index %d is outside 0..%d", device,
                            KS_FUSE_MAX_DEVICES - 1);
    if (partition < -1 || partition >= g->nparts)
        return ks_error_set(err, KS_EINVAL, "voxel grid: partition %d is outside -1..%d", partition, g->nparts - 1);
    const bool normals = (g->fields & KS_CLOUD_NORMALS) != 0, colored = (g->fields & KS_CLOUD_COLOR) != 0;
    /* room for every point in the partitions this call may write (grows once, then reused) */
    for (int pi = 0; pi < g->nparts; pi++) {
        part *p = &g->parts[pi];
        if (partition >= 0 && pi != partition)
            continue;
        if (p->nseg != 1 || g->shared)
            return ks_error_set(err, KS_ESTATE, "voxel grid: points were added by writer threads; reset first");
        if (p->seg_n[0] + n > UINT32_MAX)
            return ks_error_set(err, KS_EINVAL, "voxel grid: more than %u points in one partition; use more "
                                "partitions or reset between frame sets", UINT32_MAX);
        if (grow_records(p, p->seg_n[0] + n, normals, colored, false) != 0)
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points", p->seg_n[0] + n);
        p->aggregated = false;
    }
    add_core(g, partition, 0, device, x, y, z, rgb, NULL, nx, ny, nz, n);
    return KS_OK;
}

/* One empty segment per writer in p's records and runs, writer w's starting where the previous
 * writers' maxima end. */
static void lay_segments(part *p, int nwriters, const size_t *max_points)
{
    size_t off = 0;
    p->nseg = nwriters;
    for (int w = 0; w < nwriters; w++) {
        p->seg_off[w] = off;
        p->seg_n[w] = p->seg_runs[w] = 0;
        off += max_points[w];
    }
}

ks_status ks_voxel_grid_writers(ks_voxel_grid *g, int nwriters, const size_t *max_points, ks_error *err)
{
    if (nwriters < 1 || nwriters > 64)
        return ks_error_set(err, KS_EINVAL, "voxel grid: %d writers; use 1 to 64", nwriters);
    size_t total = 0;
    for (int w = 0; w < nwriters; w++)
        total += max_points[w];
    if (total > UINT32_MAX)
        return ks_error_set(err, KS_EINVAL, "voxel grid: %zu points in one frame set; at most %u", total, UINT32_MAX);
    const bool normals = (g->fields & KS_CLOUD_NORMALS) != 0, color = (g->fields & KS_CLOUD_COLOR) != 0;
    /* one store, parts[0], a segment per writer; the other partitions hold no records: every point
     * is written once, in its image order, without looking at its partition (add_one_part), and
     * partition p takes the runs of its cells from the store when it is aggregated (sort_runs).
     * Each partition its own lists (each point hashed to its cell's partition as it is added) was
     * measured against it twice: with colour the store gave 22 % more sets/s from BGRA on 2 threads;
     * without, the lists were 10 % cheaper in session 5 but no better in session 9 (the points
     * phase's in-order add got faster since), and lists cannot serve many partitions per thread
     * (each partition would need room for every writer's points). */
    part *p0 = &g->parts[0];
    if (grow_records(p0, total, normals, color, g->nparts > 1) != 0)
        return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points", total);
    g->shared = true;
    for (int pi = 0; pi < g->nparts; pi++) {
        part *p = &g->parts[pi];
        p->nseg = 1;
        p->seg_off[0] = p->seg_n[0] = p->seg_runs[0] = 0;
        for (int w = 0; w < nwriters; w++)
            p->shared_n[w] = p->shared_runs[w] = 0;
        p->aggregated = false;
    }
    lay_segments(p0, nwriters, max_points);
    return KS_OK;
}

void ks_voxel_grid_add_writer(ks_voxel_grid *g, int writer, int device, const float *x, const float *y,
                              const float *z, const uint32_t *col, const float *nx, const float *ny, const float *nz,
                              size_t n)
{
    add_core(g, -1, writer, device, x, y, z, NULL, col, nx, ny, nz, n);
}

/* Cell index of a cell key, created when new. The table is open addressing, key and index side
 * by side (one cache line per probe). */
static int cell_lookup(part *p, uint64_t cell, uint32_t *idx)
{
    if ((p->ncell + 1) * 2 > p->ccap) {
        size_t cap = p->ccap ? p->ccap * 2 : 1024;
        struct cslot *nt = calloc(cap, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < p->ccap; i++)
            if (p->ctab[i].key) {
                size_t j = (size_t)(mix(p->ctab[i].key) & (cap - 1));
                while (nt[j].key)
                    j = (j + 1) & (cap - 1);
                nt[j] = p->ctab[i];
            }
        free(p->ctab);
        p->ctab = nt;
        p->ccap = cap;
    }
    size_t j = (size_t)(mix(cell) & (p->ccap - 1));
    while (p->ctab[j].key) {
        if (p->ctab[j].key == cell) {
            *idx = (uint32_t)p->ctab[j].idx;
            return 0;
        }
        j = (j + 1) & (p->ccap - 1);
    }
    if (p->ncell + 1 > p->cell_list_cap) {
        size_t cap = p->cell_list_cap ? p->cell_list_cap * 2 : 1024;
        uint64_t *ck = realloc(p->cell_keys, cap * sizeof *ck);
        if (!ck)
            return -1;
        p->cell_keys = ck;
        uint32_t *cs = realloc(p->cstart, (cap + 1) * sizeof *cs);
        if (!cs)
            return -1;
        p->cstart = cs;
        p->cell_list_cap = cap;
    }
    p->ctab[j].key = cell;
    p->ctab[j].idx = p->ncell;
    p->cell_keys[p->ncell] = cell;
    *idx = (uint32_t)p->ncell++;
    return 0;
}

/* sort_runs' second pass: run rn (of cell ci) to the next place of its cell */
static inline void place_run(part *p, const run *rn, uint32_t ci)
{
    uint32_t dst = p->cstart[ci]++;
    p->ord_start[dst] = rn->start;
    p->ord_len[dst] = rn->len; /* with the device */
}

/* sort_runs' first pass: the cells of the runs seen so far, through a small direct-mapped cache of
 * recent cells (see sort_runs) */
struct cell_seen {
    struct {
        uint64_t key;
        uint32_t idx;
    } recent[RECENT_CELLS];
    uint64_t last;
    uint32_t last_idx;
};

/* The cell index of run r of src as run k of partition p (listed in p->run_at with a filter). */
static inline int note_run(part *p, struct cell_seen *cs, const part *src, size_t r, size_t k, bool filter)
{
    uint64_t c = src->runs[r].cell;
    if (c != cs->last) {
        uint32_t h = (uint32_t)(c ^ c >> 19 ^ c >> 37) & (RECENT_CELLS - 1);
        if (cs->recent[h].key == c) {
            cs->last_idx = cs->recent[h].idx;
        } else {
            if (cell_lookup(p, c, &cs->last_idx) != 0)
                return -1;
            cs->recent[h].key = c;
            cs->recent[h].idx = cs->last_idx;
        }
        cs->last = c;
    }
    if (filter)
        p->run_at[k] = (uint32_t)r;
    p->run_cell[k] = cs->last_idx;
    return 0;
}

/* Puts partition pi's runs in cell order: p->cstart[c]..p->cstart[c+1] index ord_start/ord_len, which
 * index the records of src (parts[0] in the writers' mode, where the runs of other partitions'
 * cells are passed over; else the partition itself). */
static int sort_runs(ks_voxel_grid *g, int pi, const part *src)
{
    part *p = &g->parts[pi];
    const bool filter = g->shared && g->nparts > 1;
    const uint8_t mine = (uint8_t)pi;
    size_t nrun = 0; /* the runs of this partition */
    for (int sg = 0; sg < src->nseg; sg++)
        nrun += filter ? p->shared_runs[sg] : src->seg_runs[sg];
    if (nrun > p->run_cap) {
        size_t cap = nrun + nrun / 2 + 1024;
        free(p->run_cell);
        free(p->run_at);
        free(p->ord_start);
        free(p->ord_len);
        p->run_cell = ks_fuse_alloc_big(cap * sizeof(uint32_t));
        p->run_at = ks_fuse_alloc_big(cap * sizeof(uint32_t));
        p->ord_start = ks_fuse_alloc_big(cap * sizeof(uint32_t));
        p->ord_len = ks_fuse_alloc_big(cap * sizeof(uint32_t));
        p->run_cap = (p->run_cell && p->run_at && p->ord_start && p->ord_len) ? cap : 0;
        if (!p->run_cap)
            return -1;
    }
    if (p->ctab)
        memset(p->ctab, 0, p->ccap * sizeof *p->ctab);
    p->ncell = 0;
    /* 1: the cell index of every run. Consecutive runs often share a cell (one row crossing back),
     * and the next rows of an image cross the same cells again (a cell spans ~16-30 rows), so a small
     * direct-mapped cache of recent cells, which stays in L1, answers most runs before the cell
     * table is probed. It only returns cells already in the table, so the cell indices (their
     * first-seen order) are the same with or without it. With a filter, the runs of other
     * partitions' cells (their partition noted by count_runs) are passed over eight at a time (the
     * bytes equal to this partition's found without a branch per run); the runs kept are listed
     * (run_at) for the pass that places them. */
    struct cell_seen seen;
    memset(&seen, 0, sizeof seen);
    size_t k = 0;
    const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
    for (int sg = 0; sg < src->nseg; sg++) {
        size_t r = src->seg_off[sg];
        const size_t r1 = r + src->seg_runs[sg];
        if (filter) {
            for (; r + 8 <= r1; r += 8) {
                uint64_t w;
                memcpy(&w, src->rpart + r, sizeof w);
                uint64_t x = w ^ ones * mine;                   /* 0 in the bytes of this partition */
                uint64_t z = ~(((x & low7) + low7) | x | low7); /* their high bits, exactly */
                for (; z; z &= z - 1)
                    if (note_run(p, &seen, src, r + (size_t)__builtin_ctzll(z) / 8, k++, true) != 0)
                        return -1;
            }
        }
        for (; r < r1; r++)
            if (!filter || src->rpart[r] == mine)
                if (note_run(p, &seen, src, r, k++, filter) != 0)
                    return -1;
    }
    if (!p->ncell)
        return 0;
    const size_t nmine = k;
    uint32_t *cs = p->cstart;
    memset(cs, 0, (p->ncell + 1) * sizeof *cs);
    for (size_t r = 0; r < nmine; r++)
        cs[p->run_cell[r] + 1]++;
    for (size_t c = 0; c < p->ncell; c++)
        cs[c + 1] += cs[c];
    /* 2: runs in cell order (cs[c] walks to the end of cell c, restored below); the runs kept are
     * listed with a filter, else they are every run of the segments in order */
    if (filter) {
        for (size_t j = 0; j < nmine; j++)
            place_run(p, &src->runs[p->run_at[j]], p->run_cell[j]);
    } else {
        size_t j = 0;
        for (int sg = 0; sg < src->nseg; sg++)
            for (size_t r = src->seg_off[sg], r1 = r + src->seg_runs[sg]; r < r1; r++)
                place_run(p, &src->runs[r], p->run_cell[j++]);
    }
    for (size_t c = p->ncell; c > 0; c--)
        cs[c] = cs[c - 1];
    cs[0] = 0;
    return 0;
}

/* A packed colour 0x01BBGGRR (0: none) as the lanes r, g, b, count: its bytes interleaved with zeros
 * by one constant shuffle (GCC writes __builtin_convertvector of four bytes as scalar inserts). */
static inline v4u color_lanes(uint32_t cv)
{
    v4u t = {cv, 0, 0, 0};
    v16b b;
    memcpy(&b, &t, sizeof b);
    v16b w = __builtin_shufflevector(b, zero16, 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3, 16, 16, 16);
    v4u out;
    memcpy(&out, &w, sizeof out);
    return out;
}

/* In a cell of fewer than NARROW_MAX records the devices that saw a voxel ride in free high bits of
 * its lanes instead of the separate dev[] array (one cache line fewer per record, and none to read
 * and clear in the gather; measured: 1.3 ms less per colour set on one thread, 1.7 ms without):
 *   - where the colour is summed with the positions (the pipeline's colour path), in the colour
 *     lanes: r, g, b sum at most 65535 x 255 < 2^24 and their count stays below 2^16, so devices
 *     0-23 take the top bytes of r, g, b (bit 24 + d % 8 of lane d / 8) and devices 24-31 bits
 *     16-23 of the count lane (dev_lanes); DEV_LANE_MASK keeps the sums;
 *   - else in the position lanes' count, below 2^16 too: devices 0-15 in its bits 16-31
 *     (DEV_COUNT_SHIFT); devices 16-31 (rigs of more than 16) keep dev[], and a cell where one was
 *     seen reads it in its gather.
 * Adding a record never carries into these bits. */
#define DEV_COUNT_SHIFT 16
#define DEV_IN_COUNT 16 /* devices 0..15 in the count lane */
static const v4u DEV_LANE_MASK = {0xffffffu, 0xffffffu, 0xffffffu, 0xffffu};

/* The device bit of device d (0..31) in the colour lanes. */
static inline v4u dev_lanes(uint32_t d)
{
    const uint32_t lane = d < 24 ? d >> 3 : 3, bit = d < 24 ? 24 + (d & 7) : d - 8;
    const v4u which = {0, 1, 2, 3};
    return (v4u)(which == lane) & (1u << bit);
}

/* The device mask of a voxel from its colour lanes (dev_lanes' bits gathered): each lane's device
 * byte shifted to its low byte, the four low bytes taken by one byte shuffle. */
static inline uint32_t lanes_dev(v4u c)
{
    v4u t = c >> (v4u){24, 24, 24, 16}; /* lane 3: bits 24-31 are 0 (the count is below 2^16) */
    v16b b;
    memcpy(&b, &t, sizeof b);
    v16b g = __builtin_shufflevector(b, b, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12);
    uint32_t m;
    memcpy(&m, &g, sizeof m);
    return m;
}

/* One record into the cell's scratch: its four 16-bit words (voxel, offsets x, y, z) zero-extended
 * to 32-bit lanes, the first replaced by 1 (the count), added to the voxel's lanes in one vector
 * addition; the run's device is or-ed in (devl into the colour or count lane with `in_lanes`, see
 * dev_lanes; else devbit into dev[]). With `mark` (a wide cell: its slices are flushed voxel by
 * voxel) the voxel's bit is set in the occupancy bitmap. Else (a narrow cell) the voxel is listed
 * at its first record: every record writes its voxel to the list's next free slot, gl[*nv], and the
 * slot advances when the count the record found was 0, without a branch. The list is what the
 * cell's gather walks (gather_list): the voxels in the order of their first record.
 * History: until session 12 every record set its voxel's bit in the bitmap (a read-modify-write of
 * a word that consecutive records mostly share, so they chained through store-to-load forwarding)
 * and the gather scanned it; reading the cell's records a second time instead was 11-15 % faster
 * per set, and this list 9-11 % faster again (alternated runs, one thread). The list's length
 * depends on each record's load, but no load depends on it, so it chains nothing. */
static inline __attribute__((always_inline)) void sum_recs(scratch *restrict s, const rec *restrict rp,
                                                           const uint32_t *restrict cp, uint32_t e, uint32_t devbit,
                                                           v4u devl, const bool color, const bool in_lanes,
                                                           const bool mark, size_t *nv)
{
    size_t k = mark ? 0 : *nv;
    for (uint32_t i = 0; i < e; i++) {
        /* the voxel (word 0; bit 15 is 0), and the four words zero-extended to 32-bit lanes straight
         * from memory (one instruction from SSE4.1 on), word 0 then replaced by the count 1 */
        uint16_t l16;
        memcpy(&l16, &rp[i], sizeof l16);
        const uint32_t l = l16;
        v2r t = {rp[i], 0};
        v8h h;
        memcpy(&h, &t, sizeof h);
        v8h il = __builtin_shufflevector(h, (v8h){0}, 0, 8, 1, 8, 2, 8, 3, 8); /* GCC 12+, clang */
        v4u w;
        memcpy(&w, &il, sizeof w);
        w = __builtin_shufflevector(w, (v4u){1, 1, 1, 1}, 4, 1, 2, 3);
        uint32_t count; /* the voxel's count lane before this record (0: its first) */
        if (color) { /* the pair ac[l] */
            struct vac *pv = &s->ac[l];
            count = pv->a[0];
            pv->a += w;
            pv->col = in_lanes ? (pv->col + color_lanes(cp[i])) | devl : pv->col + color_lanes(cp[i]);
        } else {
            const v4u a = s->a[l];
            count = a[0];
            s->a[l] = in_lanes ? (a + w) | devl : a + w;
        }
        if (!in_lanes)
            s->dev[l] |= devbit;
        if (mark) {
            s->occ[l >> 6] |= 1ull << (l & 63);
        } else {
            s->gl[k] = l;
            k += count == 0;
        }
    }
    if (!mark)
        *nv = k;
}

/* The per-record loop of a cell of fewer than NARROW_MAX records (every lane stays below 2^31),
 * positions, and colours with `color` (the pipeline's case: normals are a second pass); its voxels
 * listed in gl, *nv of them. */
static inline __attribute__((always_inline)) bool sum_runs_impl(scratch *restrict s, const rec *restrict recs,
                                                                const uint32_t *restrict col,
                                                                const uint32_t *restrict ord_start,
                                                                const uint32_t *restrict ord_len, uint32_t r0,
                                                                uint32_t r1, uint32_t nrun, const bool color,
                                                                size_t *nv)
{
    bool high = false; /* a device of 16 or more seen: in dev[] */
    *nv = 0;
    for (uint32_t ri = r0; ri < r1; ri++) {
        if (ri + PREFETCH_RUNS < nrun) { /* runs are scattered over the record list: fetch ahead */
            /* a run's first, second and last cache lines without a test (a run is ~15 records, 2 or 3
             * lines; a prefetch past its end is harmless), a loop only for the lines between */
            uint32_t st = ord_start[ri + PREFETCH_RUNS], len = ord_len[ri + PREFETCH_RUNS] & RUN_LEN_MASK;
            uintptr_t b = (uintptr_t)&recs[st], e = b + 8 * (uintptr_t)len - 1;
            __builtin_prefetch((const void *)b, 0, 3);
            __builtin_prefetch((const void *)(b + 64), 0, 3);
            __builtin_prefetch((const void *)e, 0, 3);
            for (uintptr_t q = (b & ~(uintptr_t)63) + 128; q < (e & ~(uintptr_t)63); q += 64)
                __builtin_prefetch((const void *)q, 0, 3);
            if (color) /* their colour records too: without, ~60 % of the cycles waited for them */
                for (uintptr_t q = (uintptr_t)&col[st] & ~(uintptr_t)63; q < (uintptr_t)&col[st + len]; q += 64)
                    __builtin_prefetch((const void *)q, 0, 3);
        }
        const uint32_t dev = ord_len[ri] >> RUN_DEV_SHIFT, len = ord_len[ri] & RUN_LEN_MASK;
        if (color) {
            sum_recs(s, recs + ord_start[ri], col + ord_start[ri], len, 0, dev_lanes(dev), true, true, false, nv);
        } else if (dev < DEV_IN_COUNT) {
            sum_recs(s, recs + ord_start[ri], NULL, len, 0, (v4u){1u << (DEV_COUNT_SHIFT + dev), 0, 0, 0}, false,
                     true, false, nv);
        } else {
            sum_recs(s, recs + ord_start[ri], NULL, len, 1u << dev, (v4u){0, 0, 0, 0}, false, false, false, nv);
            high = true;
        }
    }
    return high;
}

KS_HOT static bool sum_runs(scratch *restrict s, const rec *restrict recs, const uint32_t *restrict ord_start,
                            const uint32_t *restrict ord_len, uint32_t r0, uint32_t r1, uint32_t nrun, size_t *nv)
{
    return sum_runs_impl(s, recs, NULL, ord_start, ord_len, r0, r1, nrun, false, nv);
}

KS_HOT static void sum_runs_color(scratch *restrict s, const rec *restrict recs, const uint32_t *restrict col,
                                  const uint32_t *restrict ord_start, const uint32_t *restrict ord_len, uint32_t r0,
                                  uint32_t r1, uint32_t nrun, size_t *nv)
{
    (void)sum_runs_impl(s, recs, col, ord_start, ord_len, r0, r1, nrun, true, nv);
}

/* The mean colours of the nv gathered voxels of a cell (s->gg[k].col: lanes r, g, b, count), packed
 * 0x00BBGGRR into s->gp: the rounded mean (sum + n / 2) / n of each lane, exactly the integer
 * division; grey (128) where no colour pixel saw the voxel. In a cell of fewer than NARROW_MAX
 * records (every cell of a frame set but with huge voxels) n is below 2^16 and a = sum + n / 2 below
 * 2^24, exact in float, and a / n divided in float then truncated is floor(a / n): a quotient that
 * is not an integer lies at least 1 / n > 2^-16 from the integers, and the division (correctly
 * rounded) moves it by at most half an ulp, 2^-17 below 256. The loop over the voxels vectorizes
 * (8 or 16 voxels' divisions at once). Wider cells use doubles: with inv = 1 / n, (a + 0.5) inv lies
 * strictly between floor(a / n) and the next integer for any n below 2^40 (checked against the
 * integer division for every sum of counts up to 1000 and 2e8 random counts below 1.6e7).
 * test_color_mean_exact checks both at the hardest sums. */
KS_HOT_NANTEST static void mean_colors(scratch *restrict s, size_t nv, bool wide)
{
    /* the colour lanes of voxel k at 8 k + 4 .. 8 k + 7 of the pairs */
    const uint32_t *restrict gc = (const uint32_t *)s->gg + 4;
    uint32_t *restrict gp = s->gp;
    if (!wide) { /* the lanes as summed: the devices' bits (see DEV_LANE_MASK) masked off here */
        for (size_t k = 0; k < nv; k++) {
            int32_t c = (int32_t)(gc[8 * k + 3] & 0xffffu), h = c >> 1;
            float cz = (float)(c + (c == 0));
            uint32_t r = (uint32_t)(int32_t)((float)((int32_t)(gc[8 * k] & 0xffffffu) + h) / cz);
            uint32_t g = (uint32_t)(int32_t)((float)((int32_t)(gc[8 * k + 1] & 0xffffffu) + h) / cz);
            uint32_t b = (uint32_t)(int32_t)((float)((int32_t)(gc[8 * k + 2] & 0xffffffu) + h) / cz);
            gp[k] = c ? r | g << 8 | b << 16 : 0x808080u;
        }
        return;
    }
    for (size_t k = 0; k < nv; k++) {
        uint32_t cc = gc[8 * k + 3], px = 0;
        double inv = 1.0 / (double)(cc + (cc == 0)), h = (double)(cc / 2) + 0.5;
        for (int ch = 0; ch < 3; ch++)
            px |= (uint32_t)(((double)gc[8 * k + ch] + h) * inv) << (8 * ch);
        gp[k] = cc ? px : 0x808080u;
    }
}

/* n packed mean colours (mean_colors) as R, G, B. */
static void emit_colors(const uint32_t *restrict gp, size_t n, uint8_t *restrict rgb)
{
    if (!n)
        return;
    for (size_t k = 0; k + 1 < n; k++)
        memcpy(rgb + 3 * k, &gp[k], 4); /* the 4th byte is the next voxel's, written next */
    memcpy(rgb + 3 * (n - 1), &gp[n - 1], 2); /* the last voxel: 3 bytes (the next may be another thread's) */
    rgb[3 * (n - 1) + 2] = (uint8_t)(gp[n - 1] >> 16);
}

/* Adds the 32-bit lanes of the occupied voxels to the 64-bit sums and clears them (bits stay). */
static void flush_wide(scratch *s, bool paired)
{
    for (uint32_t wd = 0; wd < CELL_VOX / 64; wd++)
        for (uint64_t bits = s->occ[wd]; bits; bits &= bits - 1) {
            uint32_t l = wd * 64 + (uint32_t)__builtin_ctzll(bits);
            struct wide *w = &s->w[l];
            v4u *a = paired ? &s->ac[l].a : &s->a[l];
            w->count += (*a)[0];
            w->sx += (*a)[1];
            w->sy += (*a)[2];
            w->sz += (*a)[3];
            *a = (v4u){0, 0, 0, 0};
        }
}

#define CELL_WIDE 1 /* sum_cell: summed in 64 bits */
#define CELL_HIGH 2 /* sum_cell: narrow, devices 16-31 seen (in dev[], the others in the count lane) */

/* Sums the records of runs r0..r1 (one cell) into the scratch, and their colours with `color`.
 * Returns CELL_WIDE when the cell has NARROW_MAX records or more: then they were summed in slices
 * of fewer, each flushed into the 64-bit sums (s->w), so no 32-bit lane can overflow, the devices
 * are in dev[] and the voxels marked in the bitmap; else 0 or CELL_HIGH, the 32-bit lanes holding
 * the sums and the devices (see DEV_COUNT_SHIFT), the *nv voxels listed in gl; -1 when the 64-bit
 * sums cannot be allocated. */
static int sum_cell(scratch *restrict s, const part *p, const part *src, uint32_t r0, uint32_t r1, uint32_t nrun,
                    bool color, size_t *nv)
{
    uint64_t total = 0;
    for (uint32_t ri = r0; ri < r1; ri++)
        total += p->ord_len[ri] & RUN_LEN_MASK;
    if (total < NARROW_MAX) {
        if (color) {
            sum_runs_color(s, src->rec, src->col, p->ord_start, p->ord_len, r0, r1, nrun, nv);
            return 0;
        }
        return sum_runs(s, src->rec, p->ord_start, p->ord_len, r0, r1, nrun, nv) ? CELL_HIGH : 0;
    }
    if (!s->w && !(s->w = calloc(CELL_VOX, sizeof *s->w)))
        return -1;
    uint32_t in_slice = 0;
    for (uint32_t ri = r0; ri < r1; ri++) {
        const rec *rp = src->rec + p->ord_start[ri];
        const uint32_t *cp = color ? src->col + p->ord_start[ri] : NULL;
        uint32_t left = p->ord_len[ri] & RUN_LEN_MASK, devbit = 1u << (p->ord_len[ri] >> RUN_DEV_SHIFT);
        while (left) {
            uint32_t m = NARROW_MAX - 1 - in_slice;
            m = m < left ? m : left;
            if (color)
                sum_recs(s, rp, cp, m, devbit, (v4u){0, 0, 0, 0}, true, false, true, NULL); /* sums may pass 2^24 */
            else
                sum_recs(s, rp, NULL, m, devbit, (v4u){0, 0, 0, 0}, false, false, true, NULL);
            rp += m;
            cp = color ? cp + m : NULL;
            left -= m;
            in_slice += m;
            if (in_slice == NARROW_MAX - 1) {
                flush_wide(s, color);
                in_slice = 0;
            }
        }
    }
    flush_wide(s, color);
    return CELL_WIDE;
}

/* A narrow cell's nv voxels, listed by sum_recs in gl: each voxel's lanes (and colour lanes with
 * `color`; the pair ac with `paired`, else a and col) copied to its slot k (ga or, with colour, the
 * pair gg) and cleared for the next cell; with `high` (devices 16-31 seen, see DEV_COUNT_SHIFT)
 * dev[] too (to gd). The lanes stay as summed (count and devices in one lane, or devices in the
 * colour lanes): emit_list_impl and mean_colors take them apart in loops that vectorize. */
static inline __attribute__((always_inline)) size_t gather_list_impl(scratch *restrict s, size_t nv,
                                                                     const bool color, const bool paired,
                                                                     const bool high)
{
    for (size_t k = 0; k < nv; k++) {
        const uint32_t l = s->gl[k];
        if (paired) { /* the pair in one 32-byte copy */
            v8u t;
            memcpy(&t, &s->ac[l], sizeof t);
            memcpy(&s->gg[k], &t, sizeof t);
            s->ac[l] = (struct vac){{0, 0, 0, 0}, {0, 0, 0, 0}};
        } else {
            *(color ? &s->gg[k].a : &s->ga[k]) = s->a[l];
            s->a[l] = (v4u){0, 0, 0, 0};
            if (color) {
                s->gg[k].col = s->col[l];
                s->col[l] = (v4u){0, 0, 0, 0};
            }
        }
        if (high) {
            s->gd[k] = s->dev[l];
            s->dev[l] = 0;
        }
    }
    return nv;
}

KS_HOT static size_t gather_list_pos(scratch *restrict s, size_t nv, bool high)
{
    return high ? gather_list_impl(s, nv, false, false, true) : gather_list_impl(s, nv, false, false, false);
}

KS_HOT static size_t gather_list_paired(scratch *restrict s, size_t nv)
{
    return gather_list_impl(s, nv, true, true, false);
}

/* gather_list_impl for a narrow cell as sum_cell left it (CELL_HIGH in flags), `paired` when its
 * colour was summed with the positions (then its devices are in the colour lanes, never dev[]) */
static size_t gather_list(scratch *restrict s, size_t nv, int flags, bool color, bool paired)
{
    const bool high = (flags & CELL_HIGH) != 0;
    if (!color)
        return gather_list_pos(s, nv, high);
    if (paired)
        return gather_list_paired(s, nv);
    return high ? gather_list_impl(s, nv, true, false, true) : gather_list_impl(s, nv, true, false, false);
}

/* The mean position of voxel l of the cell whose first voxel is `base` (voxel size v): the voxel's
 * corner plus its offset sums (in 1/32768 voxel) times inv_n = 1 / (count x 32768). */
static inline __attribute__((always_inline)) void voxel_point(const float base[3], float v, uint32_t l, float inv_n,
                                                              float sx, float sy, float sz, float *x, float *y,
                                                              float *z)
{
    *x = (base[0] + (float)(l >> (2 * CELL_BITS)) + sx * inv_n) * v;
    *y = (base[1] + (float)((l >> CELL_BITS) & LOW_MASK) + sy * inv_n) * v;
    *z = (base[2] + (float)(l & LOW_MASK) + sz * inv_n) * v;
}

/* The devices of gathered voxel k of a narrow cell (gathered with `color` or not): from its colour
 * lanes with `col_lanes` (see lanes_dev), else the count lane's high half and, with `high`, gd. */
static inline uint32_t list_dev(const scratch *restrict s, size_t k, bool color, bool col_lanes, bool high)
{
    if (col_lanes)
        return lanes_dev(s->gg[k].col);
    return (color ? s->gg[k].a : s->ga[k])[0] >> DEV_COUNT_SHIFT | (high ? s->gd[k] : 0);
}

/* Writes n gathered voxels of a narrow cell (gather_list) from the k0-th (first voxel of the cell
 * `base`, voxel size v) as points: count, devices and offset sums taken from the lanes as summed, in
 * a loop without branches that vectorizes. Returns how many were seen by two or more devices. */
static inline __attribute__((always_inline)) size_t emit_list_impl(const scratch *restrict s, size_t k0, size_t n,
                                                                   const float base[3], float v, float *restrict x,
                                                                   float *restrict y, float *restrict z,
                                                                   uint32_t *restrict weight,
                                                                   uint32_t *restrict devices, const bool col_lanes,
                                                                   const bool high)
{
    size_t shared = 0;
    const uint32_t *gl = s->gl + k0, *gd = s->gd + k0;
    /* the position lanes of voxel k at st k .. st k + 3 (the colour lanes at st k + 4 ..): in the
     * pairs gg with colour, else in ga. The devices as list_dev takes them, written out on these
     * pointers: through s, GCC does not vectorize the loop (measured: the whole set 10 % slower). */
    const size_t st = col_lanes ? 8 : 4;
    const uint32_t *ga = col_lanes ? (const uint32_t *)(s->gg + k0) : (const uint32_t *)(s->ga + k0);
    for (size_t k = 0; k < n; k++) {
        const uint32_t l = gl[k], cnt = col_lanes ? ga[st * k] : ga[st * k] & ((1u << DEV_COUNT_SHIFT) - 1);
        const uint32_t dev = col_lanes ? ga[st * k + 4] >> 24 | (ga[st * k + 5] >> 24) << 8 |
                                             (ga[st * k + 6] >> 24) << 16 | ((ga[st * k + 7] >> 16) & 0xffu) << 24
                                       : ga[st * k] >> DEV_COUNT_SHIFT | (high ? gd[k] : 0);
        const float inv_n = 1.0f / ((float)cnt * FRAC_ONE);
        voxel_point(base, v, l, inv_n, (float)(int32_t)ga[st * k + 1], (float)(int32_t)ga[st * k + 2],
                    (float)(int32_t)ga[st * k + 3], &x[k], &y[k], &z[k]);
        weight[k] = cnt;
        devices[k] = dev;
        shared += (dev & (dev - 1)) != 0;
    }
    return shared;
}

KS_HOT static size_t emit_list_pos(const scratch *restrict s, size_t k0, size_t n, const float base[3], float v,
                                   float *restrict x, float *restrict y, float *restrict z, uint32_t *restrict weight,
                                   uint32_t *restrict devices, bool high)
{
    return high ? emit_list_impl(s, k0, n, base, v, x, y, z, weight, devices, false, true)
                : emit_list_impl(s, k0, n, base, v, x, y, z, weight, devices, false, false);
}

KS_HOT static size_t emit_list_paired(const scratch *restrict s, size_t k0, size_t n, const float base[3], float v,
                                      float *restrict x, float *restrict y, float *restrict z,
                                      uint32_t *restrict weight, uint32_t *restrict devices)
{
    return emit_list_impl(s, k0, n, base, v, x, y, z, weight, devices, true, false);
}

/* A narrow cell's nv gathered voxels (gather_list) as count, devices and float sums (gn, gd, gx, gy,
 * gz) and their colour lanes without the devices' bits, for cells_into's general loop (a minimum
 * weight, normals). */
static void unpack_list(scratch *restrict s, size_t nv, bool color, bool col_lanes, bool high)
{
    for (size_t k = 0; k < nv; k++) {
        const v4u a = color ? s->gg[k].a : s->ga[k];
        const v4f f = __builtin_convertvector((v4i)a, v4f);
        const uint32_t dev = list_dev(s, k, color, col_lanes, high);
        s->gn[k] = col_lanes ? a[0] : a[0] & ((1u << DEV_COUNT_SHIFT) - 1);
        s->gd[k] = dev;
        s->gx[k] = f[1];
        s->gy[k] = f[2];
        s->gz[k] = f[3];
        if (col_lanes)
            s->gg[k].col &= DEV_LANE_MASK;
    }
}

/* A wide cell's occupied voxels (sum_cell marked them, its 32-bit lanes flushed into the 64-bit sums
 * w), in index order, into gn, gd, gx, gy, gz (and the colour lanes of gg with `color`), clearing
 * the sums, dev[] and the bitmap for the next cell. Returns their number. The sums become float once
 * (exact up to 512 points per voxel, rounded once beyond; 32-bit and 64-bit sums of the same integer
 * give the same float). */
static size_t gather_wide(scratch *restrict s, bool color, bool paired)
{
    size_t k = 0;
    for (uint32_t wd = 0; wd < CELL_VOX / 64; wd++) {
        for (uint64_t bits = s->occ[wd]; bits; bits &= bits - 1) {
            uint32_t l = wd * 64 + (uint32_t)__builtin_ctzll(bits);
            struct wide *w = &s->w[l];
            s->gl[k] = l;
            s->gd[k] = s->dev[l];
            s->dev[l] = 0;
            s->gn[k] = (uint32_t)w->count;
            s->gx[k] = (float)(int64_t)w->sx;
            s->gy[k] = (float)(int64_t)w->sy;
            s->gz[k] = (float)(int64_t)w->sz;
            *w = (struct wide){0, 0, 0, 0};
            if (color) {
                v4u *pc = paired ? &s->ac[l].col : &s->col[l];
                s->gg[k].col = *pc;
                *pc = (v4u){0, 0, 0, 0};
            }
            k++;
        }
        s->occ[wd] = 0;
    }
    return k;
}

/* Writes n gathered voxels of a wide cell (gather_wide) from the k0-th (first voxel of the cell
 * `base`, voxel size v) as points. Returns how many were seen by two or more devices. */
static size_t emit_wide(const scratch *restrict s, size_t k0, size_t n, const float base[3], float v,
                        float *restrict x, float *restrict y, float *restrict z, uint32_t *restrict weight,
                        uint32_t *restrict devices)
{
    size_t shared = 0;
    const uint32_t *gl = s->gl + k0, *gd = s->gd + k0, *gn = s->gn + k0;
    const float *gx = s->gx + k0, *gy = s->gy + k0, *gz = s->gz + k0;
    for (size_t k = 0; k < n; k++) {
        uint32_t l = gl[k], dev = gd[k];
        float inv_n = 1.0f / ((float)gn[k] * FRAC_ONE);
        voxel_point(base, v, l, inv_n, gx[k], gy[k], gz[k], &x[k], &y[k], &z[k]);
        weight[k] = gn[k];
        devices[k] = dev;
        shared += (dev & (dev - 1)) != 0;
    }
    return shared;
}

/* A caller gave fewer blocks than the partition's records need (a bug, not bad input). */
static ks_status out_of_room(ks_error *err, int pi)
{
    return ks_error_set(err, KS_ESTATE, "voxel grid: partition %d has more voxels than the room given for it", pi);
}

/* Partition pi's runs in cell order (sort_runs); *cells gets its number of cells. */
static ks_status sort_part(ks_voxel_grid *g, int pi, size_t *cells, ks_error *err)
{
    part *p = &g->parts[pi];
    const part *src = g->shared ? &g->parts[0] : p; /* where the records are */
    *cells = 0;
    if (sort_runs(g, pi, src) != 0)
        return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points",
                            ks_voxel_grid_part_records(g, pi));
    *cells = p->ncell;
    return KS_OK;
}

/* Sums cells c0..c1-1 of partition pi (sorted by sort_part) per voxel in the scratch of `slot` (one
 * per thread) and writes their voxels to o through the cursor w (see ks_voxel_out: blocks, the next
 * slot; written and shared counted); voxels with fewer than min_weight points are left out. */
static ks_status cells_into(ks_voxel_grid *g, int pi, int slot, size_t c0, size_t c1, uint32_t min_weight,
                            ks_cloud *o, ks_voxel_out *w, ks_error *err)
{
    part *p = &g->parts[pi];
    const part *src = g->shared ? &g->parts[0] : p; /* where the records are */
    /* ks_big_calloc: on a cache line at least (calloc's 16-byte alignment, a block this size being
     * mapped 16 bytes past a page, put every other 32-byte pair, ac and gg, across two lines) */
    if (!g->scr[slot] && !(g->scr[slot] = ks_big_calloc(sizeof *g->scr[slot])))
        return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
    scratch *s = g->scr[slot];
    const bool color = (g->fields & KS_CLOUD_COLOR) != 0, normals = (g->fields & KS_CLOUD_NORMALS) != 0;
    const uint32_t *cs = p->cstart;
    uint32_t nrun = p->ncell ? cs[p->ncell] : 0;
    ks_voxel_out cur = *w; /* a local copy (registers) while the cells are written */
    size_t nw = 0, nshared = 0;
    const float v = g->voxel;
    ks_status st = KS_OK;
    for (size_t c = c0; c < c1; c++) {
        if (min_weight <= 1 && !normals) {
            /* where this cell's voxels will be written (up to the block's end; a cell has ~1500 at
             * 5 mm), asked for, for writing, while it is summed: 5 or 6 output streams per cell
             * otherwise each wait for their first lines (alternated runs, with the records'
             * prefetch above: 3.1-4.4 % less CPU per set on one thread without colour, 2.5-8.9 %
             * with the real device's MJPEG on one and two threads) */
            const size_t no = cur.next, left = cur.end - cur.next, m = left < PREFETCH_OUT ? left : PREFETCH_OUT;
            for (size_t q = 0; q < m * sizeof(float); q += 64) {
                __builtin_prefetch((char *)(o->x + no) + q, 1, 3);
                __builtin_prefetch((char *)(o->y + no) + q, 1, 3);
                __builtin_prefetch((char *)(o->z + no) + q, 1, 3);
                __builtin_prefetch((char *)(o->weight + no) + q, 1, 3);
                __builtin_prefetch((char *)(o->devices + no) + q, 1, 3);
            }
            for (size_t q = 0; color && q < m * 3; q += 64)
                __builtin_prefetch((char *)(o->rgb + 3 * no) + q, 1, 3);
        }
        size_t nv = 0; /* a narrow cell's voxels, listed as they are summed */
        const int flags = sum_cell(s, p, src, cs[c], cs[c + 1], nrun, color && !normals, &nv);
        const bool wide = flags == CELL_WIDE;
        if (flags < 0) {
            st = ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
            break;
        }
        if (normals) /* the rarer field (with colour), in a second pass over the same (cached) records */
            for (uint32_t ri = cs[c]; ri < cs[c + 1]; ri++)
                for (uint32_t i = p->ord_start[ri], e = i + (p->ord_len[ri] & RUN_LEN_MASK); i < e; i++) {
                    uint32_t l = (uint32_t)src->rec[i] & (CELL_VOX - 1);
                    if (color) {
                        /* 0x01BBGGRR (0 when unseen) byte by byte into the lanes r, g, b, count: one
                         * vector addition, no branch, one cache line of the scratch */
                        s->col[l] += color_lanes(src->col[i]);
                    }
                    if (normals) {
                        const float *q = &src->nrm[3 * (size_t)i];
                        if (q[0] == q[0]) {
                            s->nrm[l] += (v4f){q[0], q[1], q[2], 0.0f};
                        }
                    }
                }
        /* the cell's voxels: gathered (and cleared), then written out */
        const bool paired = color && !normals;
        nv = wide ? gather_wide(s, color, paired) : gather_list(s, nv, flags, color, paired);
        uint64_t ck = p->cell_keys[c];
        const float base[3] = {(float)((int32_t)((((ck >> 42) & KEY_MASK) << CELL_BITS)) - KEY_BIAS),
                               (float)((int32_t)((((ck >> 21) & KEY_MASK) << CELL_BITS)) - KEY_BIAS),
                               (float)((int32_t)(((ck & KEY_MASK) << CELL_BITS)) - KEY_BIAS)};
        if (min_weight <= 1 && !normals) { /* the pipeline's case: every voxel, positions (and colours) */
            if (color && nv)
                mean_colors(s, nv, wide != 0);
            for (size_t k0 = 0; k0 < nv;) { /* a cell's voxels split where a block ends */
                size_t room = ks_voxel_out_room(&cur), no = cur.next;
                if (!room) {
                    st = out_of_room(err, pi);
                    goto done;
                }
                size_t m = nv - k0 < room ? nv - k0 : room;
                if (wide)
                    nshared += emit_wide(s, k0, m, base, v, o->x + no, o->y + no, o->z + no, o->weight + no,
                                         o->devices + no);
                else if (paired)
                    nshared += emit_list_paired(s, k0, m, base, v, o->x + no, o->y + no, o->z + no,
                                                o->weight + no, o->devices + no);
                else
                    nshared += emit_list_pos(s, k0, m, base, v, o->x + no, o->y + no, o->z + no, o->weight + no,
                                             o->devices + no, (flags & CELL_HIGH) != 0);
                if (color)
                    emit_colors(s->gp + k0, m, o->rgb + 3 * no);
                cur.next += m;
                k0 += m;
            }
            nw += nv;
            continue;
        }
        if (!wide)
            unpack_list(s, nv, color, paired, (flags & CELL_HIGH) != 0);
        for (size_t k = 0; k < nv; k++) {
            uint32_t l = s->gl[k], n = s->gn[k], dev = s->gd[k];
            if (n >= min_weight) {
                if (!ks_voxel_out_room(&cur)) {
                    st = out_of_room(err, pi);
                    goto done;
                }
                const size_t no = cur.next++;
                float inv_n = 1.0f / ((float)n * FRAC_ONE);
                voxel_point(base, v, l, inv_n, s->gx[k], s->gy[k], s->gz[k], &o->x[no], &o->y[no], &o->z[no]);
                o->weight[no] = n;
                o->devices[no] = dev;
                nshared += (dev & (dev - 1)) != 0;
                if (color) {
                    v4u cs4 = s->gg[k].col;
                    uint32_t cc = cs4[3];
                    /* a voxel no colour pixel saw is grey (128), as fuse.md says */
                    o->rgb[3 * no] = cc ? (uint8_t)((cs4[0] + cc / 2) / cc) : 128;
                    o->rgb[3 * no + 1] = cc ? (uint8_t)((cs4[1] + cc / 2) / cc) : 128;
                    o->rgb[3 * no + 2] = cc ? (uint8_t)((cs4[2] + cc / 2) / cc) : 128;
                }
                if (normals) {
                    v4f ns = s->nrm[l];
                    float a0 = ns[0], a1 = ns[1], a2 = ns[2], len = sqrtf(a0 * a0 + a1 * a1 + a2 * a2);
                    o->nx[no] = len > 0 ? a0 / len : NAN;
                    o->ny[no] = len > 0 ? a1 / len : NAN;
                    o->nz[no] = len > 0 ? a2 / len : NAN;
                }
                nw++;
            }
            if (normals)
                s->nrm[l] = (v4f){0, 0, 0, 0};
        }
    }
done:
    cur.written += nw;
    cur.shared += nshared;
    *w = cur;
    return st;
}

/* Partition pi summed per voxel into o's blocks (see cells_into): the whole partition at once. */
static ks_status aggregate_into(ks_voxel_grid *g, int pi, int slot, uint32_t min_weight, ks_cloud *o,
                                const size_t *blk, size_t nblk, size_t bsize, size_t *written, size_t *shared,
                                ks_error *err)
{
    size_t cells;
    ks_voxel_out w = {.blocks = blk, .nblocks = nblk, .block = bsize};
    ks_status st = sort_part(g, pi, &cells, err);
    if (st == KS_OK)
        st = cells_into(g, pi, slot, 0, cells, min_weight, o, &w, err);
    *written = w.written;
    if (shared)
        *shared = w.shared;
    return st;
}

size_t ks_voxel_grid_part_records(const ks_voxel_grid *g, int partition)
{
    const part *p = &g->parts[partition];
    size_t n = 0;
    if (g->shared && g->nparts > 1) {
        for (int sg = 0; sg < g->parts[0].nseg; sg++)
            n += p->shared_n[sg];
        return n;
    }
    for (int sg = 0; sg < p->nseg; sg++)
        n += p->seg_n[sg];
    return n;
}

ks_status ks_voxel_grid_aggregate_into(ks_voxel_grid *g, int partition, int slot, uint32_t min_weight, ks_cloud *out,
                                       const size_t *blocks, size_t nblocks, size_t block, size_t *written,
                                       size_t *shared, ks_error *err)
{
    return aggregate_into(g, partition, slot, min_weight, out, blocks, nblocks, block, written, shared, err);
}

ks_status ks_voxel_grid_sort(ks_voxel_grid *g, int partition, size_t *cells, ks_error *err)
{
    return sort_part(g, partition, cells, err);
}

size_t ks_voxel_grid_cell_records(const ks_voxel_grid *g, int partition, size_t cell)
{
    const part *p = &g->parts[partition];
    size_t n = 0;
    for (uint32_t ri = p->cstart[cell]; ri < p->cstart[cell + 1]; ri++)
        n += p->ord_len[ri] & RUN_LEN_MASK;
    return n;
}

ks_status ks_voxel_grid_cells_into(ks_voxel_grid *g, int partition, int slot, size_t c0, size_t c1,
                                   uint32_t min_weight, ks_cloud *out, ks_voxel_out *w, ks_error *err)
{
    return cells_into(g, partition, slot, c0, c1, min_weight, out, w, err);
}

/* For ks_voxel_grid_count: the partition's voxels in its own cloud, computed once per content. */
static ks_status aggregate_part(ks_voxel_grid *g, int pi, ks_error *err)
{
    part *p = &g->parts[pi];
    if (p->aggregated)
        return KS_OK;
    ks_status st = ks_cloud_reserve(&p->out, ks_voxel_grid_part_records(g, pi), ks_voxel_grid_fields(g), err);
    if (st)
        return st;
    size_t w, at = 0;
    if ((st = aggregate_into(g, pi, 0, 0, &p->out, &at, 1, ks_voxel_grid_part_records(g, pi), &w, NULL, err)) !=
        KS_OK)
        return st;
    p->out.count = w;
    p->aggregated = true;
    return KS_OK;
}

size_t ks_voxel_grid_count(const ks_voxel_grid *cg)
{
    ks_voxel_grid *g = (ks_voxel_grid *)cg; /* aggregation is a cache of the records */
    size_t n = 0;
    for (int i = 0; i < g->nparts; i++) {
        if (aggregate_part(g, i, NULL) != KS_OK)
            return 0;
        n += g->parts[i].out.count;
    }
    return n;
}

unsigned ks_voxel_grid_fields(const ks_voxel_grid *g)
{
    return KS_CLOUD_WEIGHT | KS_CLOUD_DEVICES | g->fields;
}

ks_status ks_voxel_grid_extract(const ks_voxel_grid *cg, uint32_t min_weight, ks_cloud *out, ks_error *err)
{
    ks_voxel_grid *g = (ks_voxel_grid *)cg; /* the records are only read; the scratch is the grid's */
    size_t total = 0;
    for (int i = 0; i < g->nparts; i++)
        total += ks_voxel_grid_part_records(g, i);
    ks_status st = ks_cloud_reserve(out, total, ks_voxel_grid_fields(g), err);
    if (st)
        return st;
    size_t o = 0;
    for (int pi = 0; pi < g->nparts; pi++) {
        size_t w;
        if ((st = aggregate_into(g, pi, 0, min_weight, out, &o, 1, ks_voxel_grid_part_records(g, pi), &w, NULL,
                                 err)) != KS_OK)
            return st;
        o += w;
    }
    out->count = o;
    return KS_OK;
}
