/* Derived data kept on disk between runs (util/cachefile.h). */
#include "util/cachefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES (8 + 4 + 4 + 8 + 8)

static size_t pad64(size_t n)
{
    return (n + 63) / 64 * 64;
}

uint64_t ks_cache_fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Fletcher-like: per lane of 32-bit words a running sum and a sum of the running sums (so a word
 * moved, not only changed, changes it), both modulo 2^32, 16 lanes of 64 bytes a step (plain 32-bit
 * additions over a constant trip count: GCC vectorizes them at -O2, ~5 GB/s with SSE2), the lanes
 * mixed at the end. Detects damage (flipped, zeroed, moved bytes), not forgery. */
uint64_t ks_cache_checksum(const ks_cache_plane *planes, int count)
{
    enum { LANES = 16 };
    uint32_t a[LANES] = {0}, c[LANES] = {0};
    uint64_t total = 0, tail = 0x9e3779b97f4a7c15ull;
    for (int p = 0; p < count; p++) {
        const uint8_t *b = planes[p].data;
        size_t bytes = planes[p].bytes, i = 0;
        for (; i + 4 * LANES <= bytes; i += 4 * LANES)
            for (int l = 0; l < LANES; l++) {
                uint32_t w;
                memcpy(&w, b + i + 4 * (size_t)l, sizeof w);
                a[l] += w;
                c[l] += a[l];
            }
        for (; i < bytes; i++) /* the tail, a byte at a time */
            tail = (tail ^ b[i]) * 0x100000001b3ull;
        tail = (tail ^ bytes) * 0x100000001b3ull; /* where one plane ends and the next begins */
        total += bytes;
    }
    uint64_t r = total ^ tail;
    for (int l = 0; l < LANES; l++) {
        r = (r ^ ((uint64_t)c[l] << 32 | a[l])) * 0xbf58476d1ce4e5b9ull;
        r ^= r >> 31;
    }
    return r;
}

/* The payload's bytes in the file: every plane padded to 64. */
static uint64_t payload_bytes(const ks_cache_plane *planes, int count)
{
    uint64_t n = 0;
    for (int p = 0; p < count; p++)
        n += pad64(planes[p].bytes);
    return n;
}

static bool read_all(int fd, void *buf, size_t n, off_t at)
{ /* n bytes at offset at; false on an error or the end of the file */
    uint8_t *b = buf;
    while (n > 0) {
        ssize_t r = pread(fd, b, n, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
        at += r;
    }
    return true;
}

bool ks_cache_file_read(const char *path, const char magic[8], uint32_t version, const void *key, size_t key_bytes,
                        const ks_cache_plane *planes, int count)
{
    if (!path || key_bytes > UINT32_MAX || count < 0)
        return false;
    size_t head = pad64(HEADER_BYTES + key_bytes);
    uint64_t payload = payload_bytes(planes, count);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    uint8_t *h = malloc(head);
    bool ok = h && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == head + payload &&
              read_all(fd, h, head, 0) && !memcmp(h, magic, 8) && ks_cache_get_u32(h + 8) == version &&
              ks_cache_get_u32(h + 12) == (uint32_t)key_bytes && ks_cache_get_u64(h + 16) == payload &&
              !memcmp(h + HEADER_BYTES, key, key_bytes);
    for (size_t i = HEADER_BYTES + key_bytes; ok && i < head; i++)
        ok = h[i] == 0; /* the padding too: every byte of the file is checked */
    uint64_t sum = ok ? ks_cache_get_u64(h + 24) : 0;
    free(h);
    off_t at = (off_t)head;
    for (int p = 0; ok && p < count; p++) {
        uint8_t pad[64] = {0};
        size_t pn = pad64(planes[p].bytes) - planes[p].bytes;
        ok = read_all(fd, planes[p].data, planes[p].bytes, at) &&
             read_all(fd, pad, pn, at + (off_t)planes[p].bytes);
        for (size_t i = 0; ok && i < pn; i++)
            ok = pad[i] == 0;
        at += (off_t)pad64(planes[p].bytes);
    }
    close(fd);
    return ok && ks_cache_checksum(planes, count) == sum;
}

/* dir exists (made, or its parent and then it). */
static bool make_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return true;
    char parent[4096];
    if (snprintf(parent, sizeof parent, "%s", dir) >= (int)sizeof parent)
        return false;
    char *s = strrchr(parent, '/');
    if (!s || s == parent)
        return false;
    *s = 0;
    return (mkdir(parent, 0700) == 0 || errno == EEXIST) && (mkdir(dir, 0700) == 0 || errno == EEXIST);
}

static bool write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *b = buf;
    while (n > 0) {
        ssize_t r = write(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

bool ks_cache_write_parts(const char *dir, const char *path, const ks_cache_plane *parts, int count)
{
    static atomic_uint seq;
    static const uint8_t zeros[64];
    if (!dir || !path || count < 0 || !make_dir(dir))
        return false;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1u));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = true;
    for (int p = 0; ok && p < count; p++)
        ok = write_all(fd, parts[p].data, parts[p].bytes) &&
             write_all(fd, zeros, pad64(parts[p].bytes) - parts[p].bytes);
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    return true;
}

bool ks_cache_file_write(const char *dir, const char *path, const char magic[8], uint32_t version, const void *key,
                         size_t key_bytes, const ks_cache_plane *planes, int count)
{
    if (key_bytes > UINT32_MAX || count < 0)
        return false;
    uint8_t *h = calloc(1, HEADER_BYTES + key_bytes);
    ks_cache_plane *parts = malloc((size_t)(1 + count) * sizeof *parts);
    if (!h || !parts) {
        free(h);
        free(parts);
        return false;
    }
    memcpy(h, magic, 8);
    ks_cache_put_u32(h + 8, version);
    ks_cache_put_u32(h + 12, (uint32_t)key_bytes);
    ks_cache_put_u64(h + 16, payload_bytes(planes, count));
    ks_cache_put_u64(h + 24, ks_cache_checksum(planes, count));
    memcpy(h + HEADER_BYTES, key, key_bytes);
    parts[0] = (ks_cache_plane){h, HEADER_BYTES + key_bytes}; /* the header, zeros to 64 bytes, the planes */
    for (int p = 0; p < count; p++)
        parts[1 + p] = planes[p];
    bool ok = ks_cache_write_parts(dir, path, parts, 1 + count);
    free(h);
    free(parts);
    return ok;
}
