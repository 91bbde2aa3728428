/* Derived data kept on disk between runs (util/cachefile.h). */
#include "util/cachefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
    uint64_t cap;
    (void)ks_cache_max_bytes(&cap);
    if (!path || key_bytes > UINT32_MAX || count < 0 || cap == 0)
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
    ok = ok && ks_cache_checksum(planes, count) == sum;
    if (ok)
        (void)futimens(fd, NULL); /* a hit: the most recently used file now (ks_cache_evict) */
    close(fd);
    return ok;
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
    uint64_t cap, bytes = 0;
    (void)ks_cache_max_bytes(&cap);
    for (int p = 0; p < count; p++)
        bytes += pad64(parts[p].bytes);
    if (!dir || !path || count < 0 || bytes > cap || !make_dir(dir)) /* larger than the cap: never kept */
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
    const char *name = strrchr(path, '/');
    ks_cache_evict(dir, cap, name ? name + 1 : path);
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

/* ---- names, size cap, eviction (util/cachefile.h) ---- */

/* The kinds of file the cache holds: ks_cache_path names no other, eviction touches no other. */
static const char *const KINDS[] = {"simview", "unproject"};

bool ks_cache_max_bytes(uint64_t *bytes)
{
    const char *v = getenv(KS_CACHE_MAX_MB_ENV);
    *bytes = (uint64_t)KS_CACHE_MAX_MB_DEFAULT << 20;
    if (!v || !*v)
        return true;
    uint64_t mb = 0;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || mb > (UINT64_MAX >> 20) / 10)
            return false; /* not a whole number, or more bytes than 64 bits count */
        mb = mb * 10 + (uint64_t)(*c - '0');
    }
    if (mb > UINT64_MAX >> 20)
        return false;
    *bytes = mb << 20;
    return true;
}

bool ks_cache_path(char *buf, size_t size, const char *dir, const char *kind, uint32_t version, int width,
                   int height, uint64_t hash)
{
    bool known = false;
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        known = known || !strcmp(kind, KINDS[k]);
    if (!known || width < 0 || height < 0)
        return false;
    int n = snprintf(buf, size, "%s/%s-v%u-%dx%d-%016llx.bin", dir, kind, version, width, height,
                     (unsigned long long)hash);
    return n > 0 && (size_t)n < size;
}

/* Past one or more decimal digits at s, or NULL when there is none. */
static const char *digits(const char *s)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

int ks_cache_name_kind(const char *name)
{
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        size_t len = strlen(KINDS[k]);
        if (strncmp(name, KINDS[k], len) || strncmp(name + len, "-v", 2))
            continue;
        const char *p = digits(name + len + 2);
        if (!p || *p++ != '-' || !(p = digits(p)) || *p++ != 'x' || !(p = digits(p)) || *p++ != '-')
            return 0;
        for (int i = 0; i < 16; i++, p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return 0;
        if (strncmp(p, ".bin", 4))
            return 0;
        p += 4;
        if (!*p)
            return 1;
        if (strncmp(p, ".tmp.", 5) || !(p = digits(p + 5)) || *p++ != '.' || !(p = digits(p)))
            return 0;
        return *p ? 0 : 2;
    }
    return 0;
}

void ks_cache_touch(const char *path)
{
    (void)utimensat(AT_FDCWD, path, NULL, 0);
}

typedef struct cache_entry {
    char *name;
    uint64_t bytes;
    struct timespec mtime;
    ino_t ino;
} cache_entry;

/* a earlier than b */
static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec != b->tv_sec ? a->tv_sec < b->tv_sec : a->tv_nsec < b->tv_nsec;
}

/* Least recently used first; the name decides between equal times (the same order in every process). */
static int older_first(const void *pa, const void *pb)
{
    const cache_entry *a = pa, *b = pb;
    if (before(&a->mtime, &b->mtime) || before(&b->mtime, &a->mtime))
        return before(&a->mtime, &b->mtime) ? -1 : 1;
    return strcmp(a->name, b->name);
}

void ks_cache_evict(const char *dir, uint64_t max_bytes, const char *keep)
{
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cache_entry *e = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    bool complete = true; /* every cache file listed (else nothing is deleted: the total is unknown) */
    struct dirent *de;
    while ((de = readdir(d))) {
        int kind = ks_cache_name_kind(de->d_name);
        struct stat sb;
        /* gone since readdir (another process evicted or renamed it) or not a regular file: not ours */
        if (!kind || fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (kind == 2) { /* being written, unless its writer died long ago */
            if (now.tv_sec - sb.st_mtim.tv_sec > KS_CACHE_STALE_TMP_S)
                (void)unlinkat(dfd, de->d_name, 0);
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            cache_entry *ne = realloc(e, nc * sizeof *e);
            if (!ne) {
                complete = false;
                break;
            }
            e = ne;
            cap = nc;
        }
        if (!(e[n].name = strdup(de->d_name))) {
            complete = false;
            break;
        }
        e[n].bytes = (uint64_t)sb.st_size;
        e[n].mtime = sb.st_mtim;
        e[n].ino = sb.st_ino;
        total += e[n++].bytes;
    }
    if (complete && total > max_bytes) {
        qsort(e, n, sizeof *e, older_first);
        /* only files used before the one just written: a newer one is another writer's (another
         * thread or process), which evicts for itself. Its file gone: another evicted meanwhile. */
        size_t stop = n;
        if (keep) {
            size_t k = 0;
            while (k < n && strcmp(e[k].name, keep))
                k++;
            stop = k < n ? k : 0;
            while (stop > 0 && !before(&e[stop - 1].mtime, &e[k].mtime))
                stop--; /* the same time as the file just written: not used before it */
        }
        for (size_t i = 0; i < stop && total > max_bytes; i++) {
            struct stat sb;
            if (fstatat(dfd, e[i].name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
                total -= e[i].bytes; /* already gone (another process) */
                continue;
            }
            /* used (a hit) or replaced since the scan: recent now, kept */
            if (sb.st_ino != e[i].ino || sb.st_mtim.tv_sec != e[i].mtime.tv_sec ||
                sb.st_mtim.tv_nsec != e[i].mtime.tv_nsec)
                continue;
            if (unlinkat(dfd, e[i].name, 0) == 0 || errno == ENOENT)
                total -= e[i].bytes;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
    closedir(d);
}
