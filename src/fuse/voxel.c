/* fuse/voxel.c: the voxel grid that merges all devices.
 *
 * Why not one big hash table: a 9-device NFOV frame set has ~3 M points and, with 5 mm voxels,
 * ~2 M occupied voxels, so a table keyed by voxel is far larger than the caches and every point
 * costs a DRAM miss (measured: ~70 ns per point, 5 frame sets/s). Instead the grid works in two
 * cache-friendly steps, all streaming:
 *   add:       each point's voxel key (21 bits per axis, bias 2^20) and in-voxel offset are
 *              computed (vectorized) and appended as a 24-byte record to the list of its partition;
 *              a partition is chosen by hashing the point's cell (a cube of 16^3 voxels), so a
 *              cell's points all land in one partition and threads never share a cell.
 *   aggregate: per partition, consecutive records of the same cell form runs (points arrive in
 *              image order, so a run is a stretch of an image row); runs are put in cell order (a
 *              counting sort of run indices: cheap, the records themselves never move), then each
 *              cell's runs are summed in a dense 16^3 scratch array that fits in L1/L2; touched
 *              entries are listed, emitted as voxels and cleared.
 * Sums are of offsets inside the voxel (voxel units), so float sums keep sub-micrometre precision
 * at any distance from the origin. Every buffer is kept and reused: after the first frame sets a
 * steady stream allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

#define KEY_BITS 21
#define KEY_BIAS (1 << (KEY_BITS - 1))
#define KEY_MASK ((1u << KEY_BITS) - 1)
#define CELL_BITS 4 /* 16 voxels per cell edge */
#define CELL_N (1 << CELL_BITS)
#define CELL_VOX (CELL_N * CELL_N * CELL_N)
#define LOW_MASK ((uint64_t)(CELL_N - 1))
#define CELL_KEY_MASK (~((LOW_MASK << 42) | (LOW_MASK << 21) | LOW_MASK))
#define BLOCK 64

typedef struct rec {
    uint64_t key;
    uint16_t fx, fy, fz; /* offset inside the voxel in 1/65536 voxel */
    uint16_t dev;        /* device index */
} rec;
#define FRAC_ONE 65536.0f

typedef struct part {
    rec *rec;
    float *nrm;   /* 3 per record when normals */
    uint32_t *col; /* per record when colored: 0 = no color, else 0x01BBGGRR */
    size_t run_cap;
    size_t rec_cap;
    /* records are kept in segments, one per writer thread (ks_voxel_grid_add uses segment 0) */
    int nseg;
    size_t seg_off[64], seg_n[64], seg_runs[64];
    /* runs (consecutive records of one cell) are found while adding: per segment, at seg_off */
    uint32_t *run_start, *run_len;
    uint64_t *run_ckey;
    /* cell table: open addressing cell key -> cell index */
    uint64_t *ckey;
    uint32_t *cidx;
    size_t ccap, ncell;
    /* aggregation: every run's cell index, then start/length of the runs in cell order */
    uint32_t *run_cell, *order, *slen;
    uint32_t *cstart;       /* per cell, ncell + 1 */
    uint64_t *cell_keys;    /* per cell, in index order */
    size_t cell_list_cap;
    /* result */
    ks_cloud out;
    bool aggregated;
} part;

/* dense per-cell scratch, one per partition (threads aggregate different partitions) */
typedef struct scratch {
    struct acc { /* the fields every point touches, together: one cache line per point */
        uint32_t count, dev;
        float sx, sy, sz;
    } a[CELL_VOX];
    uint32_t ccount[CELL_VOX];
    uint32_t r[CELL_VOX], g[CELL_VOX], b[CELL_VOX];
    float nx[CELL_VOX], ny[CELL_VOX], nz[CELL_VOX];
    uint16_t touched[CELL_VOX];
} scratch;

struct ks_voxel_grid {
    float voxel, inv;
    unsigned fields;
    int nparts;
    part *parts;
    scratch **scr;
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

static inline uint32_t part_of(uint64_t h, uint32_t np)
{
    return (uint32_t)(((h & 0xffffffffu) * np) >> 32);
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
    scratch **scr = calloc((size_t)partitions, sizeof *scr);
    if (!g || !ps || !scr) {
        free(g);
        free(ps);
        free(scr);
        return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
    }
    g->voxel = voxel_mm;
    g->inv = 1.0f / voxel_mm;
    g->fields = fields & (KS_CLOUD_COLOR | KS_CLOUD_NORMALS);
    g->nparts = partitions;
    g->parts = ps;
    g->scr = scr;
    for (int i = 0; i < partitions; i++) {
        scr[i] = calloc(1, sizeof **scr);
        if (!scr[i]) {
            ks_voxel_grid_destroy(g);
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
        }
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
        free(p->ckey);
        free(p->cidx);
        free(p->run_start);
        free(p->run_len);
        free(p->run_ckey);
        free(p->run_cell);
        free(p->order);
        free(p->slen);
        free(p->cstart);
        free(p->cell_keys);
        ks_cloud_free(&p->out);
        free(g->scr[i]);
    }
    free(g->scr);
    free(g->parts);
    free(g);
}

void ks_voxel_grid_reset(ks_voxel_grid *g)
{
    for (int i = 0; i < g->nparts; i++) {
        g->parts[i].nseg = 1;
        g->parts[i].seg_off[0] = 0;
        g->parts[i].seg_n[0] = 0;
        g->parts[i].seg_runs[0] = 0;
        g->parts[i].out.count = 0;
        g->parts[i].aggregated = true;
    }
}

/* Voxel coordinates of a block of points: key and the in-voxel offsets. Branch-free so it
 * vectorizes: NaN and far-away points get key 0 (skipped) through a mask, never a test. */
KS_HOT static void block_keys(const float *restrict x, const float *restrict y, const float *restrict z, int n,
                              float inv, uint64_t *restrict key, uint16_t *restrict fx, uint16_t *restrict fy,
                              uint16_t *restrict fz)
{
    const float lo = (float)-KEY_BIAS, hi = (float)(KEY_BIAS - 1);
    for (int i = 0; i < n; i++) {
        float u[3] = {x[i] * inv, y[i] * inv, z[i] * inv};
        /* quiet comparisons (no branch, NaN -> 0); out-of-range coordinates are zeroed before the
         * conversion so it is always defined */
        uint32_t ok = 1;
        for (int c = 0; c < 3; c++)
            ok &= (uint32_t)(__builtin_isgreaterequal(u[c], lo) & __builtin_islessequal(u[c], hi));
        uint32_t m = 0 - ok;
        int32_t ib[3], fr[3];
        for (int c = 0; c < 3; c++) {
            uint32_t bits;
            memcpy(&bits, &u[c], sizeof bits);
            bits &= m;
            float v;
            memcpy(&v, &bits, sizeof v);
            int32_t iv = (int32_t)v; /* toward zero; floor below */
            iv -= v < (float)iv;
            ib[c] = iv;
            int32_t q = (int32_t)((v - (float)iv) * FRAC_ONE); /* 0..65536: the fraction may round up to 1 */
            fr[c] = q - (q >> 16);
        }
        fx[i] = (uint16_t)fr[0];
        fy[i] = (uint16_t)fr[1];
        fz[i] = (uint16_t)fr[2];
        uint64_t k = (1ull << 63) | ((uint64_t)((uint32_t)(ib[0] + KEY_BIAS) & KEY_MASK) << 42) |
                     ((uint64_t)((uint32_t)(ib[1] + KEY_BIAS) & KEY_MASK) << 21) |
                     (uint64_t)((uint32_t)(ib[2] + KEY_BIAS) & KEY_MASK);
        key[i] = k & (0 - (uint64_t)ok);
    }
}

static int grow_records(part *p, size_t need, bool normals, bool color)
{
    if (need <= p->rec_cap)
        return 0;
    size_t cap = need + need / 2 + 1024;
    rec *r = realloc(p->rec, cap * sizeof *r);
    if (!r)
        return -1;
    p->rec = r;
    uint32_t *rs = realloc(p->run_start, cap * sizeof *rs);
    if (!rs)
        return -1;
    p->run_start = rs;
    uint32_t *rl = realloc(p->run_len, cap * sizeof *rl);
    if (!rl)
        return -1;
    p->run_len = rl;
    uint64_t *rk = realloc(p->run_ckey, cap * sizeof *rk);
    if (!rk)
        return -1;
    p->run_ckey = rk;
    if (normals) {
        float *n = realloc(p->nrm, cap * 3 * sizeof *n);
        if (!n)
            return -1;
        p->nrm = n;
    }
    if (color) {
        uint32_t *c = realloc(p->col, cap * sizeof *c);
        if (!c)
            return -1;
        p->col = c;
    }
    p->rec_cap = cap;
    return 0;
}

/* Appends the points of one device to segment `seg` of every partition (partition < 0) or of one. */
static void add_core(ks_voxel_grid *g, int partition, int seg, int device, const float *x, const float *y,
                     const float *z, const uint8_t *rgb, const float *nx, const float *ny, const float *nz, size_t n)
{
    const bool color = (g->fields & KS_CLOUD_COLOR) && rgb;
    const bool normals = (g->fields & KS_CLOUD_NORMALS) != 0;
    const bool have_n = normals && nx && ny && nz;
    const uint32_t np = (uint32_t)g->nparts;
    uint64_t key[BLOCK];
    uint16_t fx[BLOCK], fy[BLOCK], fz[BLOCK];
    /* positions kept in registers/locals while adding, written back at the end */
    size_t next[64], nrun[64];
    for (int pi = 0; pi < g->nparts; pi++) { /* (reading another thread's counters is not needed) */
        if (partition >= 0 && pi != partition)
            continue;
        next[pi] = g->parts[pi].seg_off[seg] + g->parts[pi].seg_n[seg];
        nrun[pi] = g->parts[pi].seg_off[seg] + g->parts[pi].seg_runs[seg];
    }
    uint64_t last_cell = 0;
    uint32_t last_part = 0;
    bool new_run = true;
    uint32_t *run_len = NULL;
    part *p = &g->parts[0];
    for (size_t b = 0; b < n; b += BLOCK) {
        int m = (int)(n - b < BLOCK ? n - b : BLOCK);
        block_keys(x + b, y + b, z + b, m, g->inv, key, fx, fy, fz);
        for (int i = 0; i < m; i++) {
            uint64_t k = key[i];
            if (!k)
                continue;
            uint64_t cell = k & CELL_KEY_MASK;
            if (cell != last_cell) {
                last_cell = cell;
                last_part = np > 1 ? part_of(mix(cell), np) : 0;
                p = &g->parts[last_part];
                new_run = true;
            }
            if (partition >= 0 && last_part != (uint32_t)partition)
                continue;
            size_t pt = b + (size_t)i, at = next[last_part]++;
            if (new_run) { /* a run never spans a cell change: it is always its partition's last */
                size_t ri = nrun[last_part]++;
                p->run_start[ri] = (uint32_t)at;
                p->run_len[ri] = 0;
                p->run_ckey[ri] = cell;
                run_len = &p->run_len[ri];
                new_run = false;
            }
            (*run_len)++;
            rec *r = &p->rec[at];
            r->key = k;
            r->fx = fx[i];
            r->fy = fy[i];
            r->fz = fz[i];
            r->dev = (uint16_t)device;
            if (g->fields & KS_CLOUD_COLOR)
                p->col[at] = color ? 0x01000000u | (uint32_t)rgb[3 * pt] | (uint32_t)rgb[3 * pt + 1] << 8 |
                                         (uint32_t)rgb[3 * pt + 2] << 16
                                   : 0;
            if (normals) {
                float *q = &p->nrm[3 * at];
                q[0] = have_n ? nx[pt] : NAN;
                q[1] = have_n ? ny[pt] : NAN;
                q[2] = have_n ? nz[pt] : NAN;
            }
        }
    }
    /* only the partitions this call owns: with a partition filter, other threads own the others */
    for (int pi = 0; pi < g->nparts; pi++) {
        if (partition >= 0 && pi != partition)
            continue;
        g->parts[pi].seg_n[seg] = next[pi] - g->parts[pi].seg_off[seg];
        g->parts[pi].seg_runs[seg] = nrun[pi] - g->parts[pi].seg_off[seg];
    }
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
        if (p->nseg != 1)
            return ks_error_set(err, KS_ESTATE, "voxel grid: points were added by writer threads; reset first");
        if (grow_records(p, p->seg_n[0] + n, normals, colored) != 0)
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points", p->seg_n[0] + n);
        p->aggregated = false;
    }
    add_core(g, partition, 0, device, x, y, z, rgb, nx, ny, nz, n);
    return KS_OK;
}

ks_status ks_voxel_grid_writers(ks_voxel_grid *g, int nwriters, const size_t *max_points, ks_error *err)
{
    if (nwriters < 1 || nwriters > 64)
        return ks_error_set(err, KS_EINVAL, "voxel grid: %d writers; use 1 to 64", nwriters);
    size_t total = 0;
    for (int w = 0; w < nwriters; w++)
        total += max_points[w];
    for (int pi = 0; pi < g->nparts; pi++) {
        part *p = &g->parts[pi];
        if (grow_records(p, total, (g->fields & KS_CLOUD_NORMALS) != 0, (g->fields & KS_CLOUD_COLOR) != 0) != 0)
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points", total);
        p->nseg = nwriters;
        size_t off = 0;
        for (int w = 0; w < nwriters; w++) {
            p->seg_off[w] = off;
            p->seg_n[w] = 0;
            p->seg_runs[w] = 0;
            off += max_points[w];
        }
        p->aggregated = false;
    }
    return KS_OK;
}

void ks_voxel_grid_add_writer(ks_voxel_grid *g, int writer, int device, const float *x, const float *y,
                              const float *z, const uint8_t *rgb, const float *nx, const float *ny, const float *nz,
                              size_t n)
{
    add_core(g, -1, writer, device, x, y, z, rgb, nx, ny, nz, n);
}

/* Cell index of a cell key, created when new. */
static int cell_lookup(part *p, uint64_t cell, uint32_t *idx)
{
    if ((p->ncell + 1) * 2 > p->ccap) {
        size_t cap = p->ccap ? p->ccap * 2 : 1024;
        uint64_t *nk = calloc(cap, sizeof *nk);
        uint32_t *ni = malloc(cap * sizeof *ni);
        if (!nk || !ni) {
            free(nk);
            free(ni);
            return -1;
        }
        for (size_t i = 0; i < p->ccap; i++)
            if (p->ckey[i]) {
                size_t j = (size_t)(mix(p->ckey[i]) & (cap - 1));
                while (nk[j])
                    j = (j + 1) & (cap - 1);
                nk[j] = p->ckey[i];
                ni[j] = p->cidx[i];
            }
        free(p->ckey);
        free(p->cidx);
        p->ckey = nk;
        p->cidx = ni;
        p->ccap = cap;
    }
    size_t j = (size_t)(mix(cell) & (p->ccap - 1));
    while (p->ckey[j]) {
        if (p->ckey[j] == cell) {
            *idx = p->cidx[j];
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
    p->ckey[j] = cell;
    p->cidx[j] = (uint32_t)p->ncell;
    p->cell_keys[p->ncell] = cell;
    *idx = (uint32_t)p->ncell++;
    return 0;
}

/* Sums partition p's records per voxel into p->out (see the file comment). */
/* Sums partition pi's records per voxel into o[off..] (o must hold off + the partition's record
 * count points with ks_voxel_grid_fields); voxels with fewer than min_weight points are left out.
 * *written gets the number of voxels written. */
static ks_status aggregate_into(ks_voxel_grid *g, int pi, uint32_t min_weight, ks_cloud *o, size_t off,
                                size_t *written, size_t *shared, ks_error *err)
{
    size_t nshared = 0;
    part *p = &g->parts[pi];
    scratch *s = g->scr[pi];
    *written = 0;
    const bool color = (g->fields & KS_CLOUD_COLOR) != 0, normals = (g->fields & KS_CLOUD_NORMALS) != 0;
    size_t n = 0;
    for (int sg = 0; sg < p->nseg; sg++)
        n += p->seg_n[sg];
    if (p->rec_cap > p->run_cap) {
        size_t cap = p->rec_cap;
        free(p->run_cell);
        free(p->order);
        free(p->slen);
        p->run_cell = malloc(cap * sizeof(uint32_t));
        p->order = malloc(cap * sizeof(uint32_t));
        p->slen = malloc(cap * sizeof(uint32_t));
        p->run_cap = (p->run_cell && p->order && p->slen) ? cap : 0;
        if (!p->run_cap)
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for %zu points", n);
    }
    /* 1: the cell index of every run (runs were found while adding) */
    if (p->ckey)
        memset(p->ckey, 0, p->ccap * sizeof *p->ckey);
    p->ncell = 0;
    uint64_t last = 0;
    uint32_t last_idx = 0;
    size_t nrun = 0;
    for (int sg = 0; sg < p->nseg; sg++)
        for (size_t r = p->seg_off[sg]; r < p->seg_off[sg] + p->seg_runs[sg]; r++) {
            uint64_t cell = p->run_ckey[r];
            if (cell != last || nrun == 0) {
                if (cell_lookup(p, cell, &last_idx) != 0)
                    return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory for cells");
                last = cell;
            }
            p->run_cell[r] = last_idx;
            nrun++;
        }
    uint32_t *cs = p->cstart;
    if (p->ncell) {
        memset(cs, 0, (p->ncell + 1) * sizeof *cs);
        for (int sg = 0; sg < p->nseg; sg++)
            for (size_t r = p->seg_off[sg]; r < p->seg_off[sg] + p->seg_runs[sg]; r++)
                cs[p->run_cell[r] + 1]++;
        for (size_t c = 0; c < p->ncell; c++)
            cs[c + 1] += cs[c];
        /* 2: runs in cell order (cs[c] walks to the end of cell c, restored below) */
        for (int sg = 0; sg < p->nseg; sg++)
            for (size_t r = p->seg_off[sg]; r < p->seg_off[sg] + p->seg_runs[sg]; r++) {
                uint32_t dst = cs[p->run_cell[r]]++;
                p->order[dst] = p->run_start[r];
                p->slen[dst] = p->run_len[r];
            }
        for (size_t c = p->ncell; c > 0; c--)
            cs[c] = cs[c - 1];
        cs[0] = 0;
    }
    /* 3: per cell, dense sums */
    size_t no = off;
    const float v = g->voxel;
    for (size_t c = 0; c < p->ncell; c++) {
        int nt = 0;
        for (uint32_t ri = cs[c]; ri < cs[c + 1]; ri++) {
          /* runs are scattered over the record list: fetch a few runs ahead */
          if (ri + 8 < nrun) {
              const char *b0 = (const char *)&p->rec[p->order[ri + 8]];
              const char *b1 = (const char *)&p->rec[p->order[ri + 8] + p->slen[ri + 8]];
              for (const char *q = b0; q < b1; q += 64)
                  __builtin_prefetch(q, 0, 3);
              if (normals)
                  __builtin_prefetch(&p->nrm[3 * (size_t)p->order[ri + 8]], 0, 3);
          }
          uint32_t start = p->order[ri], end = start + p->slen[ri];
          for (uint32_t i = start; i < end; i++) {
            const rec *r = &p->rec[i];
            uint32_t l = (uint32_t)(((r->key >> 42) & LOW_MASK) << (2 * CELL_BITS) |
                                    ((r->key >> 21) & LOW_MASK) << CELL_BITS | (r->key & LOW_MASK));
            if (s->a[l].count == 0)
                s->touched[nt++] = (uint16_t)l;
            s->a[l].count++;
            s->a[l].dev |= 1u << r->dev;
            s->a[l].sx += (float)r->fx;
            s->a[l].sy += (float)r->fy;
            s->a[l].sz += (float)r->fz;
            if (color && p->col[i]) {
                uint32_t cv = p->col[i];
                s->ccount[l]++;
                s->r[l] += cv & 255u;
                s->g[l] += (cv >> 8) & 255u;
                s->b[l] += (cv >> 16) & 255u;
            }
            if (normals) {
                const float *q = &p->nrm[3 * (size_t)i];
                if (q[0] == q[0]) {
                    s->nx[l] += q[0];
                    s->ny[l] += q[1];
                    s->nz[l] += q[2];
                }
            }
          }
        }
        uint64_t ck = p->cell_keys[c];
        int32_t bx = (int32_t)((ck >> 42) & KEY_MASK) - KEY_BIAS, by = (int32_t)((ck >> 21) & KEY_MASK) - KEY_BIAS,
                bz = (int32_t)(ck & KEY_MASK) - KEY_BIAS;
        for (int t = 0; t < nt; t++) {
            uint32_t l = s->touched[t];
            int lx = (int)(l >> (2 * CELL_BITS)), ly = (int)((l >> CELL_BITS) & LOW_MASK), lz = (int)(l & LOW_MASK);
            if (s->a[l].count < min_weight) {
                memset(&s->a[l], 0, sizeof s->a[l]);
                if (color)
                    s->ccount[l] = s->r[l] = s->g[l] = s->b[l] = 0;
                if (normals)
                    s->nx[l] = s->ny[l] = s->nz[l] = 0;
                continue;
            }
            float inv_n = 1.0f / ((float)s->a[l].count * FRAC_ONE);
            o->x[no] = ((float)(bx + lx) + s->a[l].sx * inv_n) * v;
            o->y[no] = ((float)(by + ly) + s->a[l].sy * inv_n) * v;
            o->z[no] = ((float)(bz + lz) + s->a[l].sz * inv_n) * v;
            o->weight[no] = s->a[l].count;
            o->devices[no] = s->a[l].dev;
            nshared += (s->a[l].dev & (s->a[l].dev - 1)) != 0;
            if (color) {
                uint32_t cc = s->ccount[l];
                o->rgb[3 * no] = cc ? (uint8_t)((s->r[l] + cc / 2) / cc) : 0;
                o->rgb[3 * no + 1] = cc ? (uint8_t)((s->g[l] + cc / 2) / cc) : 0;
                o->rgb[3 * no + 2] = cc ? (uint8_t)((s->b[l] + cc / 2) / cc) : 0;
                s->ccount[l] = s->r[l] = s->g[l] = s->b[l] = 0;
            }
            if (normals) {
                float a = s->nx[l], b = s->ny[l], d = s->nz[l], len = sqrtf(a * a + b * b + d * d);
                o->nx[no] = len > 0 ? a / len : NAN;
                o->ny[no] = len > 0 ? b / len : NAN;
                o->nz[no] = len > 0 ? d / len : NAN;
                s->nx[l] = s->ny[l] = s->nz[l] = 0;
            }
            s->a[l].count = 0;
            s->a[l].dev = 0;
            s->a[l].sx = s->a[l].sy = s->a[l].sz = 0;
            no++;
        }
    }
    *written = no - off;
    if (shared)
        *shared = nshared;
    return KS_OK;
}

size_t ks_voxel_grid_part_records(const ks_voxel_grid *g, int partition)
{
    const part *p = &g->parts[partition];
    size_t n = 0;
    for (int sg = 0; sg < p->nseg; sg++)
        n += p->seg_n[sg];
    return n;
}

ks_status ks_voxel_grid_aggregate_into(ks_voxel_grid *g, int partition, uint32_t min_weight, ks_cloud *out,
                                       size_t offset, size_t *written, size_t *shared, ks_error *err)
{
    return aggregate_into(g, partition, min_weight, out, offset, written, shared, err);
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
    size_t w;
    if ((st = aggregate_into(g, pi, 0, &p->out, 0, &w, NULL, err)) != KS_OK)
        return st;
    p->out.count = w;
    p->aggregated = true;
    return KS_OK;
}

static ks_status aggregate_all(const ks_voxel_grid *cg, ks_error *err)
{
    ks_voxel_grid *g = (ks_voxel_grid *)cg; /* aggregation is a cache of the records */
    for (int i = 0; i < g->nparts; i++) {
        ks_status st = aggregate_part(g, i, err);
        if (st)
            return st;
    }
    return KS_OK;
}

size_t ks_voxel_grid_count(const ks_voxel_grid *g)
{
    if (aggregate_all(g, NULL) != KS_OK)
        return 0;
    size_t n = 0;
    for (int i = 0; i < g->nparts; i++)
        n += g->parts[i].out.count;
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
        if ((st = aggregate_into(g, pi, min_weight, out, o, &w, NULL, err)) != KS_OK)
            return st;
        o += w;
    }
    out->count = o;
    return KS_OK;
}
