/* util/cachefile: files of derived data read back only when every byte is what was written for the
 * same magic, version and key; anything else (a flipped byte anywhere, truncated, longer, another
 * key, version or plane layout, absent) is refused, never trusted. Written through a temporary
 * file and a rename, into a directory made when missing. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ks_test.h"
#include "util/cachefile.h"

static const char MAGIC[8] = "KSTEST\0";

static char dir[256], path[300];

static size_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (size_t)sb.st_size : 0;
}

static bool read_back(const char *key, uint32_t version, uint8_t *a, size_t na, uint8_t *b, size_t nb)
{
    ks_cache_plane pl[2] = {{a, na}, {b, nb}};
    return ks_cache_file_read(path, MAGIC, version, key, strlen(key), pl, 2);
}

static void test_round_trip_and_every_byte(void)
{
    uint8_t a[100], b[37], ra[100], rb[37];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(200 - i);
    ks_cache_plane pl[2] = {{a, sizeof a}, {b, sizeof b}};
    const char *key = "device 1, NFOV";
    KS_CHECK(ks_cache_file_write(dir, path, MAGIC, 3, key, strlen(key), pl, 2));
    /* header 32 + key 14 -> 64, planes 100 -> 128 and 37 -> 64 */
    KS_CHECK_INT(file_size(path), 64 + 128 + 64);
    memset(ra, 0, sizeof ra);
    memset(rb, 0, sizeof rb);
    KS_CHECK(read_back(key, 3, ra, sizeof ra, rb, sizeof rb));
    KS_CHECK(!memcmp(a, ra, sizeof a) && !memcmp(b, rb, sizeof b));
    /* another key (same length, one letter), version, plane sizes, magic: refused */
    KS_CHECK(!read_back("device 2, NFOV", 3, ra, sizeof ra, rb, sizeof rb));
    KS_CHECK(!read_back(key, 4, ra, sizeof ra, rb, sizeof rb));
    KS_CHECK(!read_back(key, 3, ra, 99, rb, sizeof rb));
    KS_CHECK(!read_back(key, 3, ra, sizeof ra, rb, 36));
    {
        ks_cache_plane q[2] = {{ra, sizeof ra}, {rb, sizeof rb}};
        KS_CHECK(!ks_cache_file_read(path, "KSOTHER", 3, key, strlen(key), q, 2));
        KS_CHECK(!ks_cache_file_read(path, MAGIC, 3, key, strlen(key), q, 1));
    }
    /* every single byte of the file flipped (header, key, padding, planes): refused */
    size_t n = file_size(path);
    uint8_t *f = malloc(n);
    int fd = open(path, O_RDONLY);
    KS_CHECK(f && fd >= 0 && read(fd, f, n) == (ssize_t)n);
    close(fd);
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        f[i] ^= 0x10;
        fd = open(path, O_WRONLY | O_TRUNC);
        KS_CHECK(fd >= 0 && write(fd, f, n) == (ssize_t)n);
        close(fd);
        accepted += read_back(key, 3, ra, sizeof ra, rb, sizeof rb);
        f[i] ^= 0x10;
    }
    KS_CHECK_MSG(accepted == 0, "%d of %zu files with one flipped byte accepted", accepted, n);
    /* two words of a plane 64 bytes apart swapped (the same lane of the checksum, the same sum,
     * another order): refused */
    memcpy(f + 64, a + 64, 4);
    memcpy(f + 128, a, 4);
    fd = open(path, O_WRONLY | O_TRUNC);
    KS_CHECK(fd >= 0 && write(fd, f, n) == (ssize_t)n);
    close(fd);
    KS_CHECK(!read_back(key, 3, ra, sizeof ra, rb, sizeof rb));
    /* truncated by one byte, one byte longer, empty: refused */
    for (int t = 0; t < 3; t++) {
        size_t len = t == 0 ? n - 1 : t == 1 ? n : 0;
        fd = open(path, O_WRONLY | O_TRUNC);
        KS_CHECK(fd >= 0 && write(fd, f, len) == (ssize_t)len);
        if (t == 1)
            KS_CHECK(write(fd, "x", 1) == 1);
        close(fd);
        KS_CHECK_MSG(!read_back(key, 3, ra, sizeof ra, rb, sizeof rb), "case %d", t);
    }
    /* written again over it: usable again */
    KS_CHECK(ks_cache_file_write(dir, path, MAGIC, 3, key, strlen(key), pl, 2));
    KS_CHECK(read_back(key, 3, ra, sizeof ra, rb, sizeof rb));
    free(f);
    unlink(path);
    KS_CHECK(!read_back(key, 3, ra, sizeof ra, rb, sizeof rb)); /* absent */
}

/* A missing directory (and its missing parent) is made; one that cannot be made costs nothing but
 * the write, and leaves no temporary file. */
static void test_directories(void)
{
    uint8_t a[10] = {1, 2, 3};
    ks_cache_plane pl[1] = {{a, sizeof a}};
    char sub[300], p2[400];
    snprintf(sub, sizeof sub, "%s/parent/cache", dir);
    snprintf(p2, sizeof p2, "%s/f.bin", sub);
    KS_CHECK(ks_cache_file_write(sub, p2, MAGIC, 1, "k", 1, pl, 1));
    KS_CHECK(ks_cache_file_read(p2, MAGIC, 1, "k", 1, pl, 1));
    unlink(p2);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/parent", dir);
    rmdir(sub);
    KS_CHECK(!ks_cache_file_write("/dev/null/cache", "/dev/null/cache/f.bin", MAGIC, 1, "k", 1, pl, 1));
    /* the checksum changes with a moved word, not only a changed one (64 bytes on: the same lane) */
    uint8_t w[128] = {0};
    w[0] = 1;
    ks_cache_plane c1 = {w, sizeof w};
    uint64_t h1 = ks_cache_checksum(&c1, 1);
    w[0] = 0;
    w[64] = 1;
    KS_CHECK(ks_cache_checksum(&c1, 1) != h1);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_cachefile_%ld", (long)getpid());
    snprintf(path, sizeof path, "%s/t.bin", dir);
    KS_RUN(test_round_trip_and_every_byte);
    KS_RUN(test_directories);
    rmdir(dir);
    return KS_TEST_END();
}
