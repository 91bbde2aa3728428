/* fuse/table_cache.c: unprojection tables kept on disk, one file per set of depth intrinsics, so
 * start-up reads 2.9 MB per NFOV device instead of solving the lens model for every pixel (the
 * bulk of `kinsync fuse`'s start-up, tens of ms of CPU per device).
 *
 * A file is never trusted blindly: it is used only when its size is exactly what its header says,
 * its magic and version match, it holds the very intrinsics asked for (compared field by field, so
 * a hash collision of file names cannot mix calibrations up), the checksum of its rays matches,
 * its valid-pixel count matches the rays, and 64 pixels spread over the image agree with
 * ks_unproject_ray (same valid mask, rays within a few float ulps). Anything else is rebuilt and the file
 * replaced. Files are written to a unique temporary name in the same directory and renamed, so a
 * reader (another process, another thread) sees the old file, the new one or none, never half of
 * one. The cache is an optimisation: a directory that cannot be created or written only costs the
 * build. The directory is kept under a size cap (util/cachefile.h: KINSYNC_CACHE_MAX_MB, least
 * recently used files evicted; a hit refreshes the file's time).
 *
 * A table read from the cache is the file itself, mapped read-only (MAP_PRIVATE, populated in one
 * system call), not a copy: reading the 2.9 MB of an NFOV table into fresh memory faulted its 720
 * pages in one by one, ~10 us each on a virtual machine (141-169 ms for 9 tables; mapped: 16 ms).
 * The planes start on 64-byte boundaries in the file (version 2), as they do in memory. Since files
 * are only ever replaced by a rename, a mapping keeps the file it was made from. The checksum is
 * util/cachefile.h's (version 3; 16 lanes of 32-bit sums, vectorized: ~4x faster than version 2's
 * four lanes of 64-bit multiplies, which were 20 ms of the simulated 9-device start-up). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinsync/fuse.h"
#include "util/cachefile.h"

#define CACHE_MAGIC "KSUPTBL\0"
#define CACHE_VERSION 3u /* file layout, checksum and table algorithm; bump when any changes */
#define KEY_DOUBLES 15
#define KEY_BYTES (4 * 3 + 8 * KEY_DOUBLES)
#define HEADER_BYTES (8 + 4 + 4 + KEY_BYTES + 8 + 8)
#define PLANES_AT ((HEADER_BYTES + 63) / 64 * 64) /* the x plane's offset; zeros pad the header */

/* Bytes of one plane in the file: n floats padded with zeros to a multiple of 64. */
static size_t plane_bytes(size_t n)
{
    return (n * sizeof(float) + 63) / 64 * 64;
}

/* The intrinsics as bytes, every field that the table depends on, in a fixed order. */
static void key_bytes(const ks_intrinsics *in, uint8_t key[KEY_BYTES])
{
    ks_cache_put_u32(key, (uint32_t)in->model);
    ks_cache_put_u32(key + 4, (uint32_t)in->width);
    ks_cache_put_u32(key + 8, (uint32_t)in->height);
    const double d[KEY_DOUBLES] = {in->cx,   in->cy,   in->fx,   in->fy, in->k[0], in->k[1], in->k[2],         in->k[3],
                                   in->k[4], in->k[5], in->codx, in->cody, in->p1, in->p2,   in->metric_radius};
    for (int i = 0; i < KEY_DOUBLES; i++) {
        uint64_t b;
        memcpy(&b, &d[i], sizeof b);
        ks_cache_put_u64(key + 12 + 8 * i, b);
    }
}

/* Checksum of the rays: the two planes (util/cachefile.h). */
static uint64_t rays_checksum(const float *x, const float *y, size_t n)
{
    const ks_cache_plane pl[2] = {{(void *)x, n * sizeof(float)}, {(void *)y, n * sizeof(float)}};
    return ks_cache_checksum(pl, 2);
}

bool ks_fuse_default_cache_dir(char *buf, size_t size)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (x && x[0] == '/')
        n = snprintf(buf, size, "%s/kinsync", x);
    else if (home && home[0] == '/')
        n = snprintf(buf, size, "%s/.cache/kinsync", home);
    else
        return false;
    return n > 0 && (size_t)n < size;
}

/* The file's path (false when it does not fit): util/cachefile.h's name, so the directory's size cap
 * counts it. */
static bool cache_path(const char *dir, const ks_intrinsics *in, const uint8_t key[KEY_BYTES], char *buf, size_t n)
{
    /* the version in the name: programs of two versions sharing a cache keep a file each instead of
     * replacing each other's */
    return ks_cache_path(buf, n, dir, "unproject", CACHE_VERSION, in->width, in->height,
                         ks_cache_fnv1a(key, KEY_BYTES, KS_CACHE_FNV_SEED));
}

/* 64 pixels on an 8x8 grid over the image agree with ks_unproject_ray. */
static bool spot_check(const ks_intrinsics *in, const ks_unproject_table *t)
{
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 8; b++) {
            int u = (int)((double)(t->width - 1) * (a + 0.5) / 8), v = (int)((double)(t->height - 1) * (b + 0.5) / 8);
            size_t i = (size_t)v * (size_t)t->width + (size_t)u;
            double uv[2] = {u, v}, xy[2];
            bool ok = ks_unproject_ray(in, uv, xy) && isfinite(xy[0]) && isfinite(xy[1]);
            bool have = t->x[i] == t->x[i];
            if (ok != have)
                return false;
            double tol = 4e-7 * fmax(1.0, fmax(fabs(xy[0]), fabs(xy[1]))); /* the float table's rounding */
            if (ok && !(fabs(t->x[i] - xy[0]) <= tol && fabs(t->y[i] - xy[1]) <= tol))
                return false;
        }
    return true;
}

/* Valid pixels of the planes (x == x), or SIZE_MAX when a pixel is valid in one plane only or a
 * valid ray is absurd (|x| or |y| >= 1e6). No early exit: the loop vectorizes. */
static size_t count_valid(const float *x, const float *y, size_t n)
{
    size_t valid = 0;
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned vx = x[i] == x[i], vy = y[i] == y[i];
        bad |= (vx ^ vy) | (vx & !(fabsf(x[i]) < 1e6f && fabsf(y[i]) < 1e6f));
        valid += vx;
    }
    return bad ? SIZE_MAX : valid;
}

/* The table from the file, mapped (t->map), or false (nothing mapped) when the file is absent or
 * not usable. */
static bool cache_load(const char *path, const ks_intrinsics *in, const uint8_t key[KEY_BYTES], ks_unproject_table *t)
{
    size_t n = (size_t)in->width * (size_t)in->height, pb = plane_bytes(n), size = PLANES_AT + 2 * pb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    const uint8_t *m = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == (uint64_t)size) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        m = p == MAP_FAILED ? NULL : p;
    }
    close(fd); /* the mapping keeps the file */
    if (!m)
        return false;
    const float *x = (const float *)(m + PLANES_AT), *y = (const float *)(m + PLANES_AT + pb);
    bool ok = !memcmp(m, CACHE_MAGIC, 8) && ks_cache_get_u32(m + 8) == CACHE_VERSION && ks_cache_get_u32(m + 12) == KEY_BYTES &&
              !memcmp(m + 16, key, KEY_BYTES) && rays_checksum(x, y, n) == ks_cache_get_u64(m + 16 + KEY_BYTES + 8);
    size_t valid = ok ? count_valid(x, y, n) : SIZE_MAX;
    ok = ok && valid == ks_cache_get_u64(m + 16 + KEY_BYTES);
    if (ok) {
        *t = (ks_unproject_table){in->width, in->height, (float *)x, (float *)y, valid, (void *)m, size};
        if (spot_check(in, t)) {
            ks_cache_touch(path); /* a hit: the most recently used file now (the size cap's eviction) */
            return true;
        }
    }
    munmap((void *)m, size);
    memset(t, 0, sizeof *t);
    return false;
}

/* Writes the table through the cache files' writer (a unique temporary file beside path, renamed
 * over it). */
static void cache_store(const char *dir, const char *path, const uint8_t key[KEY_BYTES], const ks_unproject_table *t)
{
    size_t n = (size_t)t->width * (size_t)t->height;
    uint8_t h[PLANES_AT] = {0};
    memcpy(h, CACHE_MAGIC, 8);
    ks_cache_put_u32(h + 8, CACHE_VERSION);
    ks_cache_put_u32(h + 12, KEY_BYTES);
    memcpy(h + 16, key, KEY_BYTES);
    ks_cache_put_u64(h + 16 + KEY_BYTES, t->valid_count);
    ks_cache_put_u64(h + 16 + KEY_BYTES + 8, rays_checksum(t->x, t->y, n));
    /* each part padded with zeros to 64 bytes: the header to PLANES_AT, each plane to plane_bytes */
    const ks_cache_plane parts[3] = {{h, sizeof h}, {t->x, n * sizeof *t->x}, {t->y, n * sizeof *t->y}};
    (void)ks_cache_write_parts(dir, path, parts, 3);
}

ks_status ks_unproject_table_get(const ks_intrinsics *depth, const char *cache_dir, ks_unproject_table *t,
                                 bool *from_cache, ks_error *err)
{
    if (from_cache)
        *from_cache = false;
    uint64_t cap;
    (void)ks_cache_max_bytes(&cap);
    if (!cache_dir || !*cache_dir || !depth || !t || depth->width <= 0 || depth->height <= 0 ||
        depth->width > 8192 || depth->height > 8192 || cap == 0) /* KINSYNC_CACHE_MAX_MB=0: no cache */
        return ks_unproject_table_build(depth, t, err); /* which names any bad argument */
    uint8_t key[KEY_BYTES];
    key_bytes(depth, key);
    char path[4096];
    if (!cache_path(cache_dir, depth, key, path, sizeof path))
        return ks_unproject_table_build(depth, t, err);
    if (cache_load(path, depth, key, t)) {
        if (from_cache)
            *from_cache = true;
        return KS_OK;
    }
    ks_status st = ks_unproject_table_build(depth, t, err);
    if (st == KS_OK)
        cache_store(cache_dir, path, key, t);
    return st;
}
