/* util/cachefile.h: derived data kept on disk between runs (the simulator's static views,
 * docs/simulator.md "View cache", and the lens tables, docs/fuse.md), one file per key, the
 * directory kept under a size cap (below).
 *
 * A file is [magic (8 bytes), version (u32), key length (u32), payload bytes (u64), checksum of
 * the payload (u64), the key, zeros to a 64-byte boundary, then the planes, each padded with zeros
 * to a multiple of 64 bytes]. It is read only when all of that matches exactly what the caller
 * asks for: the same magic, version and key bytes (compared in full, so a hash collision of file
 * names cannot mix keys up), a file size that is exactly the header, the key and the planes the
 * caller expects, zeros in the padding, and the checksum of the planes as read. Anything else
 * (absent, truncated, longer, corrupt, another key or version) is "not usable": the caller
 * rebuilds and writes the file again. Files are written to a unique temporary name in the same
 * directory and renamed over the old one, so a reader (another process, another thread) sees the
 * old file, the new one or none, never half of one. The cache is an optimisation: a directory that
 * cannot be made or written only costs the rebuild, never an error. The checksum guards against
 * damage, not forgery: a caller whose data could be forged to harm it validates the content too. */
#ifndef KS_UTIL_CACHEFILE_H
#define KS_UTIL_CACHEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Little-endian fields of a file's header and key, byte by byte (any host order). */
static inline void ks_cache_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ks_cache_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t ks_cache_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t ks_cache_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

typedef struct ks_cache_plane {
    void *data;   /* read: where the plane goes (bytes writable); write: the plane */
    size_t bytes;
} ks_cache_plane;

/* 64-bit FNV-1a of n bytes, continuing from h (start with KS_CACHE_FNV_SEED): for file names. */
#define KS_CACHE_FNV_SEED 0xcbf29ce484222325ull
uint64_t ks_cache_fnv1a(const void *p, size_t n, uint64_t h);

/* Checksum of the planes in order, at memory speed (16 lanes of 32-bit sums; see cachefile.c). */
uint64_t ks_cache_checksum(const ks_cache_plane *planes, int count);

/* Reads the file at path into the planes when it is usable (see above); false otherwise (the
 * planes' contents are then undefined). */
bool ks_cache_file_read(const char *path, const char magic[8], uint32_t version, const void *key, size_t key_bytes,
                        const ks_cache_plane *planes, int count);

/* The file layout's writing step, for a cache with a header of its own (the lens tables, which are
 * mapped): the parts in order, each followed by zeros to a multiple of 64 bytes, to a unique
 * temporary file in dir (made if missing, and its parent one level up) renamed over path. False
 * when it could not (nothing is left behind). */
bool ks_cache_write_parts(const char *dir, const char *path, const ks_cache_plane *parts, int count);

/* Writes the planes to path (in dir, made if missing, and its parent one level up) through a
 * temporary file renamed over path. False when it could not (nothing is left behind). */
bool ks_cache_file_write(const char *dir, const char *path, const char magic[8], uint32_t version, const void *key,
                         size_t key_bytes, const ks_cache_plane *planes, int count);

/* ---- names, size cap, eviction ----
 * The cache's files are named KIND-vVERSION-WxH-HASH.bin (HASH: 16 lowercase hex digits), KIND one
 * of "simview" (the simulator's views) and "unproject" (the lens tables); a temporary file being
 * written is that name followed by .tmp.PID.SEQ. Nothing else in a cache directory is ever touched.
 *
 * The files of a directory are kept under a size cap, KINSYNC_CACHE_MAX_MB megabytes (2^20 bytes;
 * default 512; 0 turns the cache off: no file is read or written): after a file is written, the
 * least recently used files (oldest modification time; a hit sets it to the present) are deleted
 * until the sizes of the directory's cache files add up to the cap at most. A file larger than the
 * cap is not written. Temporary files are left alone unless untouched for KS_CACHE_STALE_TMP_S (a
 * writer that died). Another process evicting at the same time, or files vanishing under the scan,
 * are expected; eviction never fails the caller (it only costs a rebuild later). */
#define KS_CACHE_MAX_MB_ENV "KINSYNC_CACHE_MAX_MB"
#define KS_CACHE_MAX_MB_DEFAULT 512u
#define KS_CACHE_STALE_TMP_S 3600

/* The cap in bytes: KINSYNC_CACHE_MAX_MB's megabytes; the default when it is unset or empty. False
 * when it is set to something else than a whole number of megabytes (*bytes is then the default). */
bool ks_cache_max_bytes(uint64_t *bytes);

/* dir/KIND-vVERSION-WxH-HASH.bin into buf; false when kind is not one of the cache's kinds (above)
 * or the path does not fit. */
bool ks_cache_path(char *buf, size_t size, const char *dir, const char *kind, uint32_t version, int width,
                   int height, uint64_t hash);

/* What a directory entry's name is: 1 a cache file (as ks_cache_path names them), 2 a cache file's
 * temporary (ks_cache_write_parts), 0 anything else. */
int ks_cache_name_kind(const char *name);

/* A hit: the file's modification time set to the present (it is then the most recently used). */
void ks_cache_touch(const char *path);

/* Deletes the least recently used cache files of dir until their sizes (st_size) add up to
 * max_bytes at most, and the temporary files untouched for KS_CACHE_STALE_TMP_S. With keep (the
 * name in dir of the file just written; NULL: none) only files older than it go: keep itself, and
 * files written or used since (by another thread or process, whose own write evicts for them), are
 * never deleted; nothing is when keep is gone (another eviction took it). Errors are ignored. */
void ks_cache_evict(const char *dir, uint64_t max_bytes, const char *keep);

#endif
