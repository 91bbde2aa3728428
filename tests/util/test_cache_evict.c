/* util/cachefile: the cache directory's size cap (KINSYNC_CACHE_MAX_MB). After a cache file is
 * written, the least recently used cache files (oldest modification time) are deleted until the
 * directory's cache files fit the cap; a hit refreshes a file's time; the file just written and
 * files newer than it (another writer's), files being written (temporaries of a live writer) and
 * every file that is not one of the cache's names are never deleted; temporaries of a writer that
 * died long ago are. Files of known sizes (sparse) and modification times set explicitly:
 * deterministic; two processes writing and evicting at once: checked by what must hold whatever
 * their interleaving. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ks_test.h"
#include "util/cachefile.h"

static const char MAGIC[8] = "KSTEST\0";
static char dir[256];
static time_t now0;

/* dir/name as a file of bytes (sparse) modified at now0 - age seconds; false if it could not be made. */
static bool make_file(const char *name, off_t bytes, long age)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bool ok = fd >= 0 && ftruncate(fd, bytes) == 0;
    const struct timespec t[2] = {{now0 - age, 0}, {now0 - age, 0}};
    ok = ok && futimens(fd, t) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool exists(const char *name)
{
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &sb) == 0;
}

static time_t mtime_of(const char *name)
{
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? sb.st_mtime : 0;
}

static void set_age(const char *name, long age)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    const struct timespec t[2] = {{now0 - age, 0}, {now0 - age, 0}};
    KS_CHECK(utimensat(AT_FDCWD, p, t, 0) == 0);
}

/* The name (no directory) of the cache file of kind with hash h, as the caches name theirs. */
static const char *cache_name(char *buf, size_t n, const char *kind, uint64_t h)
{
    char p[600];
    if (!ks_cache_path(p, sizeof p, dir, kind, 1, 640, 576, h))
        return "";
    snprintf(buf, n, "%s", strrchr(p, '/') + 1);
    return buf;
}

/* Every entry of dir (but . and ..) removed, the subdirectory made below too. */
static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_names(void)
{
    char p[600], n1[128], n2[128];
    KS_CHECK(ks_cache_path(p, sizeof p, "/c", "simview", 1, 640, 576, 0x0123456789abcdefull));
    KS_CHECK_STR(p, "/c/simview-v1-640x576-0123456789abcdef.bin");
    KS_CHECK(ks_cache_path(p, sizeof p, "/c", "unproject", 3, 320, 288, 0xfull));
    KS_CHECK_STR(p, "/c/unproject-v3-320x288-000000000000000f.bin");
    KS_CHECK(!ks_cache_path(p, sizeof p, "/c", "other", 1, 640, 576, 1)); /* only the cache's kinds */
    KS_CHECK(!ks_cache_path(p, 20, "/c", "simview", 1, 640, 576, 1));     /* does not fit */
    KS_CHECK_INT(ks_cache_name_kind(cache_name(n1, sizeof n1, "simview", 42)), 1);
    KS_CHECK_INT(ks_cache_name_kind(cache_name(n2, sizeof n2, "unproject", ~0ull)), 1);
    snprintf(p, sizeof p, "%s.tmp.1234.0", n1); /* ks_cache_write_parts's temporary */
    KS_CHECK_INT(ks_cache_name_kind(p), 2);
    const char *others[] = {"notes.txt", "simview.bin", "simview-v1-640x576-0123456789ABCDEF.bin",
                            "simview-v1-640x576-0123456789abcde.bin", "simview-v1-640x576-0123456789abcdef.bin.bak",
                            "simview-v1-640x576-0123456789abcdef.bin.tmp.12", "simview-v1-640x576-0123456789abcdef.bin.tmp.1.2x",
                            "simview-vx-640x576-0123456789abcdef.bin", "xsimview-v1-640x576-0123456789abcdef.bin",
                            "unproject-v3-640-0123456789abcdef.bin", "unproject-v3-640x576-0123456789abcdef.bin.",
                            "simview-v1-640x576-0123456789abcdef.binx", ""};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        KS_CHECK_MSG(ks_cache_name_kind(others[i]) == 0, "\"%s\" taken for a cache file", others[i]);
}

/* Oldest first until under the cap: exactly which files remain. */
static void test_evict_oldest_first(void)
{
    char a[128], b[128], c[128], d[128], sub[128], tmp_live[160], tmp_dead[160];
    cache_name(a, sizeof a, "simview", 1);
    cache_name(b, sizeof b, "unproject", 2);
    cache_name(c, sizeof c, "simview", 3);
    cache_name(d, sizeof d, "unproject", 4);
    cache_name(sub, sizeof sub, "simview", 5);
    snprintf(tmp_live, sizeof tmp_live, "%s.tmp.99.0", c);
    snprintf(tmp_dead, sizeof tmp_dead, "%s.tmp.98.1", d);
    KS_CHECK(make_file(a, 300000, 500) && make_file(b, 300000, 400) && make_file(c, 300000, 300) &&
             make_file(d, 300000, 200));
    /* not the cache's: never touched, whatever their age and size */
    KS_CHECK(make_file("notes.txt", 5000000, 100000) && make_file("simview-v1-old.bin", 1000000, 100000));
    char subp[600];
    snprintf(subp, sizeof subp, "%s/%s", dir, sub);
    KS_CHECK(mkdir(subp, 0700) == 0); /* a directory with a cache file's name */
    /* a temporary being written (just now, large) stays; one untouched for two hours goes */
    KS_CHECK(make_file(tmp_live, 4000000, 0) && make_file(tmp_dead, 100, 7200));

    ks_cache_evict(dir, 1200000, NULL); /* at the cap exactly: nothing but the dead temporary */
    KS_CHECK(exists(a) && exists(b) && exists(c) && exists(d));
    KS_CHECK(exists(tmp_live) && !exists(tmp_dead));
    ks_cache_evict(dir, 700000, NULL); /* 1.2 MB -> a and b go (0.6 MB) */
    KS_CHECK(!exists(a) && !exists(b) && exists(c) && exists(d));
    KS_CHECK(exists("notes.txt") && exists("simview-v1-old.bin") && exists(sub) && exists(tmp_live));
    /* with the file just written (keep): only files older than it go; c is older than d, so d,
     * written or used since, is another writer's to evict: nothing is deleted for c's write */
    ks_cache_evict(dir, 300000, c);
    KS_CHECK(exists(c) && exists(d));
    ks_cache_evict(dir, 0, d); /* d's write: c, older, goes; never d itself */
    KS_CHECK(!exists(c) && exists(d));
    ks_cache_evict(dir, 0, c); /* the file just written gone (another eviction took it): nothing to do */
    KS_CHECK(exists(d));
    ks_cache_evict(dir, 0, NULL);
    KS_CHECK(!exists(d));
    KS_CHECK_INT(count_entries(), 4); /* notes.txt, simview-v1-old.bin, the directory, the live temporary */
    /* no directory, no error */
    ks_cache_evict("/nonexistent/kinsync-cache", 0, NULL);
    ks_cache_evict(NULL, 0, NULL);
    clear_dir();
}

/* Equal times: the name decides (the same order in every process); a file of the same time as the
 * one just written is not older than it: kept. */
static void test_equal_times(void)
{
    char a[128], b[128], c[128];
    cache_name(a, sizeof a, "simview", 1);
    cache_name(b, sizeof b, "simview", 2);
    cache_name(c, sizeof c, "simview", 3);
    KS_CHECK(make_file(b, 1000, 50) && make_file(a, 1000, 50) && make_file(c, 1000, 50));
    ks_cache_evict(dir, 0, c);
    KS_CHECK(exists(a) && exists(b) && exists(c));
    ks_cache_evict(dir, 2000, NULL);
    KS_CHECK(!exists(a) && exists(b) && exists(c)); /* ...01 sorts before ...02 */
    clear_dir();
}

/* A hit (ks_cache_file_read of a usable file, ks_cache_touch) makes a file the most recently used. */
static void test_hit_refreshes(void)
{
    char a[128], b[128], c[128], pa[600], pc[600];
    cache_name(a, sizeof a, "simview", 1);
    cache_name(b, sizeof b, "unproject", 2);
    cache_name(c, sizeof c, "unproject", 3);
    snprintf(pa, sizeof pa, "%s/%s", dir, a);
    snprintf(pc, sizeof pc, "%s/%s", dir, c);
    uint8_t plane[1000], back[1000];
    for (size_t i = 0; i < sizeof plane; i++)
        plane[i] = (uint8_t)(i * 13);
    ks_cache_plane pl = {plane, sizeof plane}, rp = {back, sizeof back};
    KS_CHECK(ks_cache_file_write(dir, pa, MAGIC, 1, "k", 1, &pl, 1));
    set_age(a, 1000);
    KS_CHECK(make_file(b, 1000, 500) && make_file(c, 1000, 600));
    /* a refused file (another key) is no hit: its time stays */
    KS_CHECK(!ks_cache_file_read(pa, MAGIC, 1, "x", 1, &rp, 1));
    KS_CHECK_INT(mtime_of(a), now0 - 1000);
    KS_CHECK(ks_cache_file_read(pa, MAGIC, 1, "k", 1, &rp, 1) && !memcmp(plane, back, sizeof plane));
    KS_CHECK_MSG(mtime_of(a) >= now0, "the hit's time %lld, not refreshed (now %lld)", (long long)mtime_of(a),
                 (long long)now0);
    ks_cache_touch(pc);
    KS_CHECK(mtime_of(c) >= now0);
    size_t fa = 0;
    struct stat sb;
    if (stat(pa, &sb) == 0)
        fa = (size_t)sb.st_size;
    ks_cache_evict(dir, fa + 1000, NULL); /* room for a and c: b, now the oldest, goes */
    KS_CHECK(exists(a) && !exists(b) && exists(c));
    clear_dir();
}

/* Through the writer, with KINSYNC_CACHE_MAX_MB: the oldest go after a write, the new file stays; a
 * file larger than the cap is not written; 0 turns the cache off (nothing written or read). */
static void test_write_evicts(void)
{
    char a[128], b[128], c[128], n[128], big[128], p[600], pbig[600];
    cache_name(a, sizeof a, "simview", 1);
    cache_name(b, sizeof b, "simview", 2);
    cache_name(c, sizeof c, "unproject", 3);
    cache_name(n, sizeof n, "simview", 4);
    cache_name(big, sizeof big, "simview", 5);
    snprintf(p, sizeof p, "%s/%s", dir, n);
    snprintf(pbig, sizeof pbig, "%s/%s", dir, big);
    KS_CHECK(setenv(KS_CACHE_MAX_MB_ENV, "1", 1) == 0);
    /* 3 x 400000 bytes > 1 MiB once the new file is in: the oldest (a) goes, 800000 + the new fit */
    KS_CHECK(make_file(a, 400000, 300) && make_file(b, 400000, 200) && make_file(c, 400000, 100) &&
             make_file("notes.txt", 3000000, 1000));
    uint8_t plane[5000] = {1, 2, 3}, back[5000];
    ks_cache_plane pl = {plane, sizeof plane}, rp = {back, sizeof back};
    KS_CHECK(ks_cache_file_write(dir, p, MAGIC, 1, "k", 1, &pl, 1));
    KS_CHECK(!exists(a) && exists(b) && exists(c) && exists(n) && exists("notes.txt"));
    /* larger than the cap (1 MiB): not written, nothing evicted for it */
    uint8_t *huge = calloc(1, 1100000);
    ks_cache_plane hp = {huge, 1100000};
    KS_CHECK(huge && !ks_cache_file_write(dir, pbig, MAGIC, 1, "k", 1, &hp, 1));
    KS_CHECK(!exists(big) && exists(b) && exists(c) && exists(n));
    KS_CHECK_INT(count_entries(), 4); /* no temporary left behind either */
    /* the cap raised: the same file written, nothing evicted */
    KS_CHECK(setenv(KS_CACHE_MAX_MB_ENV, "3", 1) == 0);
    KS_CHECK(huge && ks_cache_file_write(dir, pbig, MAGIC, 1, "k", 1, &hp, 1));
    KS_CHECK(exists(big) && exists(b) && exists(c) && exists(n));
    free(huge);
    /* 0: the cache off, a usable file is not read, nothing is written */
    KS_CHECK(setenv(KS_CACHE_MAX_MB_ENV, "0", 1) == 0);
    KS_CHECK(!ks_cache_file_read(p, MAGIC, 1, "k", 1, &rp, 1));
    unlink(p);
    KS_CHECK(!ks_cache_file_write(dir, p, MAGIC, 1, "k", 1, &pl, 1));
    KS_CHECK(!exists(n) && exists(b) && exists(c) && exists(big));
    KS_CHECK(setenv(KS_CACHE_MAX_MB_ENV, "", 1) == 0); /* empty: the default, on again */
    KS_CHECK(ks_cache_file_write(dir, p, MAGIC, 1, "k", 1, &pl, 1) && ks_cache_file_read(p, MAGIC, 1, "k", 1, &rp, 1));
    unsetenv(KS_CACHE_MAX_MB_ENV);
    clear_dir();
}

/* Two processes writing (and reading back) 40 files each into one directory under a 1 MB cap at
 * the same time: files vanish under each other's scans and reads, and that is no error. Whatever
 * the interleaving: every write succeeds, the other file is untouched, no temporary is left, and
 * the cache files left fit the cap (the last eviction saw every file). */
static void test_concurrent_writers(void)
{
    KS_CHECK(make_file("notes.txt", 2000000, 1000));
    KS_CHECK(setenv(KS_CACHE_MAX_MB_ENV, "1", 1) == 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            static uint8_t plane[100000], back[100000];
            int bad = 0;
            for (int i = 0; i < 40; i++) {
                char p[600], q[600];
                memset(plane, k * 40 + i, sizeof plane);
                ks_cache_plane pl = {plane, sizeof plane}, rp = {back, sizeof back};
                ks_cache_path(p, sizeof p, dir, i % 2 ? "simview" : "unproject", 1, 10, 10, (uint64_t)(k * 100 + i));
                bad += !ks_cache_file_write(dir, p, MAGIC, 1, "k", 1, &pl, 1);
                /* the other process's previous file: read when still there (a hit), else gone */
                ks_cache_path(q, sizeof q, dir, i % 2 ? "unproject" : "simview", 1, 10, 10,
                              (uint64_t)((1 - k) * 100 + (i ? i - 1 : 0)));
                if (ks_cache_file_read(q, MAGIC, 1, "k", 1, &rp, 1))
                    bad += back[0] != (uint8_t)((1 - k) * 40 + (i ? i - 1 : 0));
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st = -1;
        KS_CHECK(kids[k] > 0 && waitpid(kids[k], &st, 0) == kids[k]);
        KS_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d: a write failed or a read was wrong", k);
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t total = 0;
    int files = 0, others = 0;
    while (d && (e = readdir(d))) {
        struct stat sb;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int kind = ks_cache_name_kind(e->d_name);
        if (kind == 1 && stat(p, &sb) == 0) {
            total += (uint64_t)sb.st_size;
            files++;
        }
        KS_CHECK_MSG(kind != 2, "temporary %s left", e->d_name);
        others += kind == 0 && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    }
    if (d)
        closedir(d);
    KS_CHECK_MSG(files >= 1 && total <= 1u << 20, "%d files, %llu bytes under a 1 MB cap", files,
                 (unsigned long long)total);
    KS_CHECK(others == 1 && exists("notes.txt"));
    unsetenv(KS_CACHE_MAX_MB_ENV);
    clear_dir();
}

static void test_cap_variable(void)
{
    uint64_t bytes = 0;
    unsetenv(KS_CACHE_MAX_MB_ENV);
    KS_CHECK(ks_cache_max_bytes(&bytes));
    KS_CHECK_INT(bytes, (uint64_t)KS_CACHE_MAX_MB_DEFAULT << 20);
    KS_CHECK_INT(KS_CACHE_MAX_MB_DEFAULT, 512);
    const char *good[] = {"0", "1", "1024", "17592186044415"}; /* the last: 2^44 - 1 MB, 64 bits of bytes */
    const uint64_t want[] = {0, 1u << 20, 1ull << 30, (uint64_t)17592186044415ull << 20};
    for (int i = 0; i < 4; i++) {
        setenv(KS_CACHE_MAX_MB_ENV, good[i], 1);
        KS_CHECK_MSG(ks_cache_max_bytes(&bytes) && bytes == want[i], "%s", good[i]);
    }
    const char *bad[] = {"abc", "-1", "12MB", " 5", "1.5", "17592186044416", "99999999999999999999999"};
    for (int i = 0; i < 7; i++) {
        setenv(KS_CACHE_MAX_MB_ENV, bad[i], 1);
        KS_CHECK_MSG(!ks_cache_max_bytes(&bytes) && bytes == (uint64_t)KS_CACHE_MAX_MB_DEFAULT << 20, "%s", bad[i]);
    }
    unsetenv(KS_CACHE_MAX_MB_ENV);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_cache_evict_XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot make a temporary directory\n");
        return 1;
    }
    unsetenv(KS_CACHE_MAX_MB_ENV);
    now0 = time(NULL);
    KS_RUN(test_names);
    KS_RUN(test_evict_oldest_first);
    KS_RUN(test_equal_times);
    KS_RUN(test_hit_refreshes);
    KS_RUN(test_write_evicts);
    KS_RUN(test_concurrent_writers);
    KS_RUN(test_cap_variable);
    clear_dir();
    rmdir(dir);
    return KS_TEST_END();
}
