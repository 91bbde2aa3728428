/* fuse/voxel.c: the voxel grid that merges all devices.
 *
 * A sparse grid: open addressing (linear probing) on a 64-bit voxel key, one table per partition so
 * threads can insert without locks (a voxel's partition is a function of its key, so every thread
 * scans all points and keeps the ones of its partition). A slot is 32 bytes: key, point count,
 * device mask and the sum of the points' offsets inside the voxel (in voxel units, so float sums
 * keep sub-micrometre precision whatever the distance from the origin). Color and normal sums live
 * in side arrays touched only when enabled. Points arrive in image order, so consecutive points
 * often share a voxel: the last voxel is remembered. Other lookups are batched: keys of a block of
 * points are hashed and their slots prefetched before the block is inserted, which hides most of
 * the cache misses of a table larger than the cache. Reset is a memset of the keys; the table
 * doubles (rehash) only when it gets half full, so steady-state frames do not allocate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

#define KEY_BITS 21
#define KEY_BIAS (1 << (KEY_BITS - 1))
#define KEY_MASK ((1u << KEY_BITS) - 1)
#define BLOCK 64

typedef struct slot {
    uint64_t key; /* 0 = empty; the top bit is set in every key */
    uint32_t count;
    uint32_t devices;
    float sx, sy, sz; /* sums of offsets in voxel units, [0,1) each */
    uint32_t ccount;  /* points that brought a color */
} slot;

typedef struct part {
    slot *slots;
    uint32_t *csum;  /* 3 per slot (r, g, b) when colored */
    float *nsum;     /* 3 per slot when normals */
    size_t cap, used;
    int bits;
} part;

struct ks_voxel_grid {
    float voxel, inv;
    unsigned fields;
    int nparts;
    part *parts;
};

static inline uint64_t mix(uint64_t k)
{
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ull;
    k ^= k >> 29;
    return k;
}

static int part_alloc(part *p, int bits, unsigned fields)
{
    size_t cap = (size_t)1 << bits;
    slot *s = calloc(cap, sizeof *s);
    uint32_t *c = (fields & KS_CLOUD_COLOR) ? malloc(cap * 3 * sizeof *c) : NULL;
    float *n = (fields & KS_CLOUD_NORMALS) ? malloc(cap * 3 * sizeof *n) : NULL;
    if (!s || ((fields & KS_CLOUD_COLOR) && !c) || ((fields & KS_CLOUD_NORMALS) && !n)) {
        free(s);
        free(c);
        free(n);
        return -1;
    }
    p->slots = s;
    p->csum = c;
    p->nsum = n;
    p->cap = cap;
    p->bits = bits;
    p->used = 0;
    return 0;
}

static void part_free(part *p)
{
    free(p->slots);
    free(p->csum);
    free(p->nsum);
    memset(p, 0, sizeof *p);
}

static inline size_t slot_of(uint64_t h, int bits)
{
    return (size_t)(h >> (64 - bits));
}

/* Finds or creates the slot of key in p (not full: callers keep the load <= 1/2). */
static inline size_t find_slot(part *p, uint64_t key, uint64_t h, unsigned fields)
{
    size_t mask = p->cap - 1, i = slot_of(h, p->bits);
    for (;;) {
        slot *s = &p->slots[i];
        if (s->key == key)
            return i;
        if (s->key == 0) {
            s->key = key;
            s->count = 0;
            s->devices = 0;
            s->sx = s->sy = s->sz = 0;
            s->ccount = 0;
            if (fields & KS_CLOUD_COLOR)
                p->csum[3 * i] = p->csum[3 * i + 1] = p->csum[3 * i + 2] = 0;
            if (fields & KS_CLOUD_NORMALS)
                p->nsum[3 * i] = p->nsum[3 * i + 1] = p->nsum[3 * i + 2] = 0;
            p->used++;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int part_grow(part *p, unsigned fields)
{
    part np;
    if (part_alloc(&np, p->bits + 1, fields) != 0)
        return -1;
    for (size_t i = 0; i < p->cap; i++) {
        slot *s = &p->slots[i];
        if (!s->key)
            continue;
        size_t j = find_slot(&np, s->key, mix(s->key), 0);
        np.slots[j] = *s;
        if (fields & KS_CLOUD_COLOR)
            memcpy(&np.csum[3 * j], &p->csum[3 * i], 3 * sizeof *np.csum);
        if (fields & KS_CLOUD_NORMALS)
            memcpy(&np.nsum[3 * j], &p->nsum[3 * i], 3 * sizeof *np.nsum);
    }
    part_free(p);
    *p = np;
    return 0;
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
    for (int i = 0; i < partitions; i++)
        if (part_alloc(&ps[i], 12, g->fields) != 0) {
            ks_voxel_grid_destroy(g);
            return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory");
        }
    *out = g;
    return KS_OK;
}

void ks_voxel_grid_destroy(ks_voxel_grid *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nparts; i++)
        part_free(&g->parts[i]);
    free(g->parts);
    free(g);
}

void ks_voxel_grid_reset(ks_voxel_grid *g)
{
    for (int i = 0; i < g->nparts; i++) {
        part *p = &g->parts[i];
        if (p->used)
            memset(p->slots, 0, p->cap * sizeof *p->slots);
        p->used = 0;
    }
}

size_t ks_voxel_grid_count(const ks_voxel_grid *g)
{
    size_t n = 0;
    for (int i = 0; i < g->nparts; i++)
        n += g->parts[i].used;
    return n;
}

/* Voxel coordinates of a block of points: key, hash and the in-voxel offsets. Vectorizable. */
KS_HOT static void block_keys(const float *restrict x, const float *restrict y, const float *restrict z, int n,
                              float inv, uint64_t *restrict key, float *restrict fx, float *restrict fy,
                              float *restrict fz)
{
    for (int i = 0; i < n; i++) {
        float ux = x[i] * inv, uy = y[i] * inv, uz = z[i] * inv;
        float bx = floorf(ux), by = floorf(uy), bz = floorf(uz);
        fx[i] = ux - bx;
        fy[i] = uy - by;
        fz[i] = uz - bz;
        /* NaN and far-away points fail this test and get key 0 (skipped) */
        int ok = bx >= (float)-KEY_BIAS && bx < (float)KEY_BIAS && by >= (float)-KEY_BIAS && by < (float)KEY_BIAS &&
                 bz >= (float)-KEY_BIAS && bz < (float)KEY_BIAS;
        int32_t ix = ok ? (int32_t)bx : 0, iy = ok ? (int32_t)by : 0, iz = ok ? (int32_t)bz : 0;
        uint64_t k = (1ull << 63) | ((uint64_t)((uint32_t)(ix + KEY_BIAS) & KEY_MASK) << 42) |
                     ((uint64_t)((uint32_t)(iy + KEY_BIAS) & KEY_MASK) << 21) |
                     (uint64_t)((uint32_t)(iz + KEY_BIAS) & KEY_MASK);
        key[i] = ok ? k : 0;
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
    const unsigned fields = g->fields;
    const bool use_color = (fields & KS_CLOUD_COLOR) && rgb;
    const bool use_normals = (fields & KS_CLOUD_NORMALS) && nx && ny && nz;
    const uint32_t dbit = 1u << device;
    const uint32_t np = (uint32_t)g->nparts;
    uint64_t key[BLOCK], hsh[BLOCK];
    float fx[BLOCK], fy[BLOCK], fz[BLOCK];
    uint32_t idx[BLOCK];

    uint64_t last_key = 0;
    part *last_part = NULL;
    size_t last_slot = 0;

    for (size_t b = 0; b < n; b += BLOCK) {
        int m = (int)(n - b < BLOCK ? n - b : BLOCK);
        block_keys(x + b, y + b, z + b, m, g->inv, key, fx, fy, fz);
        /* select this partition's points, hash them, prefetch their slots */
        int sel = 0;
        for (int i = 0; i < m; i++) {
            uint64_t k = key[i];
            if (!k)
                continue;
            uint64_t h = mix(k);
            uint32_t pi = np > 1 ? (uint32_t)(h & 0xffff) % np : 0;
            if (partition >= 0 && pi != (uint32_t)partition)
                continue;
            key[sel] = k;
            hsh[sel] = h;
            fx[sel] = fx[i];
            fy[sel] = fy[i];
            fz[sel] = fz[i];
            idx[sel] = (uint32_t)i;
            if (k != last_key) {
                part *p = &g->parts[pi];
                __builtin_prefetch(&p->slots[slot_of(h, p->bits)], 1, 0);
            }
            sel++;
        }
        for (int j = 0; j < sel; j++) {
            uint64_t k = key[j];
            part *p;
            size_t si;
            if (k == last_key) {
                p = last_part;
                si = last_slot;
            } else {
                uint32_t pi = np > 1 ? (uint32_t)(hsh[j] & 0xffff) % np : 0;
                p = &g->parts[pi];
                if ((p->used + 1) * 2 > p->cap && part_grow(p, fields) != 0)
                    return ks_error_set(err, KS_ENOMEM, "voxel grid: out of memory growing to %zu voxels",
                                        p->cap * 2);
                si = find_slot(p, k, hsh[j], fields);
                last_key = k;
                last_part = p;
                last_slot = si;
            }
            slot *s = &p->slots[si];
            s->count++;
            s->devices |= dbit;
            s->sx += fx[j];
            s->sy += fy[j];
            s->sz += fz[j];
            size_t pt = b + idx[j];
            if (use_color) {
                uint32_t *c = &p->csum[3 * si];
                c[0] += rgb[3 * pt];
                c[1] += rgb[3 * pt + 1];
                c[2] += rgb[3 * pt + 2];
                s->ccount++;
            }
            if (use_normals && nx[pt] == nx[pt]) {
                float *q = &p->nsum[3 * si];
                q[0] += nx[pt];
                q[1] += ny[pt];
                q[2] += nz[pt];
            }
        }
    }
    return KS_OK;
}

ks_status ks_voxel_grid_extract(const ks_voxel_grid *g, uint32_t min_weight, ks_cloud *out, ks_error *err)
{
    unsigned fields = KS_CLOUD_WEIGHT | KS_CLOUD_DEVICES | g->fields;
    ks_status st = ks_cloud_reserve(out, ks_voxel_grid_count(g), fields, err);
    if (st)
        return st;
    size_t o = 0;
    const double v = g->voxel;
    for (int pi = 0; pi < g->nparts; pi++) {
        const part *p = &g->parts[pi];
        for (size_t i = 0; i < p->cap && p->used; i++) {
            const slot *s = &p->slots[i];
            if (!s->key || s->count < min_weight || s->count == 0)
                continue;
            int32_t ix = (int32_t)((s->key >> 42) & KEY_MASK) - KEY_BIAS;
            int32_t iy = (int32_t)((s->key >> 21) & KEY_MASK) - KEY_BIAS;
            int32_t iz = (int32_t)(s->key & KEY_MASK) - KEY_BIAS;
            double inv_n = 1.0 / s->count;
            out->x[o] = (float)((ix + s->sx * inv_n) * v);
            out->y[o] = (float)((iy + s->sy * inv_n) * v);
            out->z[o] = (float)((iz + s->sz * inv_n) * v);
            out->weight[o] = s->count;
            out->devices[o] = s->devices;
            if (g->fields & KS_CLOUD_COLOR) {
                const uint32_t *c = &p->csum[3 * i];
                for (int k = 0; k < 3; k++)
                    out->rgb[3 * o + k] = s->ccount ? (uint8_t)((c[k] + s->ccount / 2) / s->ccount) : 0;
            }
            if (g->fields & KS_CLOUD_NORMALS) {
                const float *q = &p->nsum[3 * i];
                float len = sqrtf(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
                if (len > 0) {
                    out->nx[o] = q[0] / len;
                    out->ny[o] = q[1] / len;
                    out->nz[o] = q[2] / len;
                } else {
                    out->nx[o] = out->ny[o] = out->nz[o] = NAN;
                }
            }
            o++;
        }
    }
    out->count = o;
    return KS_OK;
}
