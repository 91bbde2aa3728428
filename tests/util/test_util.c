/* The util layer (src/util): whole-file reads with limits, writes through a temporary file that
 * leave no half-written file when a write fails, the JSON and 16-bit PNG writers built on them,
 * monotonic timed waits, growing arrays, big buffers made with their pages in place, the team of
 * persistent threads. */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <jansson.h>
#include <png.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ks_test.h"
#include "support/pages.h"
#include "util/bigmem.h"
#include "util/fileio.h"
#include "util/grow.h"
#include "util/monotime.h"
#include "util/png16.h"
#include "util/team.h"

static char dir[256];

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static int entries_containing(const char *needle)
{
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        k += strstr(e->d_name, needle) != NULL;
    if (d)
        closedir(d);
    return k;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_read_all(void)
{
    char p[512];
    path_in(p, sizeof p, "small.txt");
    put(p, "hello");
    char *b;
    size_t n;
    ks_error e;
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_OK);
    KS_CHECK_INT(n, 5);
    KS_CHECK_STR(b, "hello");
    free(b);
    /* exactly the limit is fine, one byte over is refused and names the file */
    KS_CHECK_INT(ks_file_read_all(p, 5, &b, &n, &e), KS_OK);
    free(b);
    KS_CHECK_INT(ks_file_read_all(p, 4, &b, &n, &e), KS_EINVAL);
    KS_CHECK(b == NULL);
    KS_CHECK_CONTAINS(e.message, p);
    /* empty file */
    path_in(p, sizeof p, "empty.txt");
    put(p, "");
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_OK);
    KS_CHECK(b && b[0] == 0 && n == 0);
    free(b);
    /* larger than the first buffer: grows, content intact */
    path_in(p, sizeof p, "big.bin");
    size_t big = 300000;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    KS_CHECK_INT(ks_file_write_atomic(p, data, big, &e), KS_OK);
    KS_CHECK_INT(ks_file_read_all(p, 1u << 20, &b, &n, &e), KS_OK);
    KS_CHECK_INT(n, big);
    KS_CHECK(b && memcmp(b, data, big) == 0 && b[big] == 0);
    free(b);
    KS_CHECK_INT(ks_file_read_all(p, big - 1, &b, &n, &e), KS_EINVAL);
    free(data);
    /* missing file, a directory */
    path_in(p, sizeof p, "missing.txt");
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(e.message, "missing.txt");
    KS_CHECK_INT(ks_file_read_all(dir, 100, &b, &n, &e), KS_EIO);
    KS_CHECK(b == NULL);
}

static void test_atomic_write(void)
{
    char p[512];
    path_in(p, sizeof p, "out.txt");
    ks_error e;
    KS_CHECK_INT(ks_file_write_atomic(p, "first", 5, &e), KS_OK);
    char *b;
    size_t n;
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_OK);
    KS_CHECK_STR(b, "first");
    free(b);
    KS_CHECK_INT(entries_containing(".tmp"), 0);
    /* the caller's own failure (ok = false): the old file stays, no temporary is left */
    ks_atomic_file af;
    KS_CHECK_INT(ks_atomic_open(&af, p, &e), KS_OK);
    fputs("half", af.f);
    KS_CHECK_INT(entries_containing(".tmp"), 1);
    KS_CHECK_INT(ks_atomic_commit(&af, false, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, p);
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_OK);
    KS_CHECK_STR(b, "first");
    free(b);
    KS_CHECK_INT(entries_containing(".tmp"), 0);
    /* abort */
    KS_CHECK_INT(ks_atomic_open(&af, p, &e), KS_OK);
    fputs("never", af.f);
    ks_atomic_abort(&af);
    KS_CHECK_INT(entries_containing(".tmp"), 0);
    /* a directory that does not exist: an error naming the file, nothing created */
    KS_CHECK_INT(ks_file_write_atomic("/nonexistent-dir/x.txt", "x", 1, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "/nonexistent-dir/x.txt");
}

/* A write that really fails half-way (the file size limit stands in for a full disk): the target
 * keeps its old content and no partial temporary stays behind. */
static void test_atomic_write_fails(void)
{
    char p[512];
    path_in(p, sizeof p, "limited.bin");
    ks_error e;
    KS_CHECK_INT(ks_file_write_atomic(p, "old", 3, &e), KS_OK);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    KS_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    size_t big = 1u << 20;
    char *data = calloc(1, big);
    ks_status st = ks_file_write_atomic(p, data, big, &e);
    /* the same through the JSON writer */
    json_t *arr = json_array();
    for (int i = 0; i < 40000; i++)
        json_array_append_new(arr, json_integer(1234567 + i));
    char jp[512];
    path_in(jp, sizeof jp, "limited.json");
    ks_status jst = ks_json_write_atomic(arr, jp, 0, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    KS_CHECK_INT(st, KS_EIO);
    KS_CHECK_INT(jst, KS_EIO);
    char *b;
    size_t n;
    KS_CHECK_INT(ks_file_read_all(p, 100, &b, &n, &e), KS_OK);
    KS_CHECK_STR(b, "old");
    free(b);
    KS_CHECK(access(jp, F_OK) != 0);
    KS_CHECK_INT(entries_containing(".tmp"), 0);
    /* without the limit both succeed */
    KS_CHECK_INT(ks_file_write_atomic(p, data, big, &e), KS_OK);
    KS_CHECK_INT(ks_json_write_atomic(arr, jp, 0, &e), KS_OK);
    json_error_t je;
    json_t *back = json_load_file(jp, 0, &je);
    KS_CHECK(back && json_equal(back, arr));
    json_decref(back);
    json_decref(arr);
    free(data);
}

static void test_png16(void)
{
    enum { W = 37, H = 5, STRIDE = W * 2 + 6 };
    uint8_t img[STRIDE * H];
    memset(img, 0xEE, sizeof img);
    for (int v = 0; v < H; v++)
        for (int u = 0; u < W; u++) {
            uint16_t x = (uint16_t)(u * 1000 + v * 7 + (u == 3 ? 60000 : 0));
            memcpy(img + v * STRIDE + 2 * u, &x, 2);
        }
    char p[512];
    path_in(p, sizeof p, "d.png");
    ks_error e;
    KS_CHECK_INT(ks_png16_write(p, img, W, H, STRIDE, 3, &e), KS_OK);
    KS_CHECK_INT(entries_containing(".tmp"), 0);
    /* read back through libpng */
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    KS_CHECK(png_image_begin_read_from_file(&pi, p) != 0);
    KS_CHECK_INT(pi.width, W);
    KS_CHECK_INT(pi.height, H);
    KS_CHECK(pi.format & PNG_FORMAT_FLAG_LINEAR);
    png_image_free(&pi);
    FILE *f = fopen(p, "rb");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int bad = 0;
    if (f && png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_info(png, info);
        KS_CHECK_INT(png_get_bit_depth(png, info), 16);
        KS_CHECK_INT(png_get_color_type(png, info), PNG_COLOR_TYPE_GRAY);
        uint8_t row[W * 2];
        for (int v = 0; v < H; v++) {
            png_read_row(png, row, NULL);
            for (int u = 0; u < W; u++) {
                uint16_t want;
                memcpy(&want, img + v * STRIDE + 2 * u, 2);
                bad += ((uint16_t)(row[2 * u] << 8 | row[2 * u + 1])) != want;
            }
        }
    } else {
        bad = -1;
    }
    png_destroy_read_struct(&png, &info, NULL);
    if (f)
        fclose(f);
    KS_CHECK_INT(bad, 0);
    KS_CHECK_INT(ks_png16_write(p, img, 0, H, 0, 3, &e), KS_EINVAL);
    KS_CHECK_INT(ks_png16_write("/nonexistent-dir/d.png", img, W, H, STRIDE, 3, &e), KS_EIO);
    KS_CHECK_CONTAINS(e.message, "/nonexistent-dir/d.png");
}

static void test_monotonic_wait(void)
{
    int64_t a = ks_mono_ns();
    int64_t b = ks_mono_ns();
    KS_CHECK(b >= a);
    struct timespec d = ks_mono_timespec(1500000001);
    KS_CHECK(d.tv_sec == 1 && d.tv_nsec == 500000001);
    /* a condition waited on with a monotonic deadline really waits (a CLOCK_REALTIME condition would
     * read the monotonic deadline as a date in 1970 and return at once) */
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    KS_CHECK_INT(ks_cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    int64_t t0 = ks_mono_ns();
    bool timed_out = ks_cond_wait_ms(&cv, &mu, 40);
    int64_t waited = ks_mono_ns() - t0;
    pthread_mutex_unlock(&mu);
    KS_CHECK(timed_out);
    KS_CHECK_MSG(waited >= 39 * 1000000LL, "waited %lld ns", (long long)waited);
    pthread_cond_destroy(&cv);
    t0 = ks_mono_ns();
    ks_sleep_ms(20);
    KS_CHECK(ks_mono_ns() - t0 >= 19 * 1000000LL);
}

static void test_grow(void)
{
    int *v = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        KS_CHECK(ks_grow((void **)&v, &cap, n + 1, sizeof *v));
        v[n++] = i;
    }
    KS_CHECK(cap >= 1000 && cap < 4000);
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    KS_CHECK_INT(sum, 999 * 1000 / 2);
    /* an impossible size is refused, the array stays as it was */
    int *keep = v;
    size_t kcap = cap;
    KS_CHECK(!ks_grow((void **)&v, &cap, SIZE_MAX / 2, sizeof *v));
    KS_CHECK(v == keep && cap == kcap);
    KS_CHECK(ks_grow((void **)&v, &cap, 10, sizeof *v)); /* already room */
    KS_CHECK(v == keep && cap == kcap);
    free(v);
}

/* ks_big_alloc: 64-byte aligned, a megabyte or more on a 2 MB boundary (huge pages), and its pages
 * already in memory when it returns (populated in one system call instead of a fault per page:
 * mincore counts them); ks_big_calloc zeroed; both freed with free(). Where the kernel cannot
 * populate (MADV_POPULATE_WRITE is Linux 5.14+) the residency is not checked, and says so. */
static void test_bigmem(void)
{
    const bool can_populate = ks_test_can_populate();
    if (!can_populate)
        printf("    (this kernel cannot populate pages: residency not checked)\n");
    const size_t sizes[] = {200 << 10, 3 << 20, (5 << 20) + 100};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k], total = 0;
        uint8_t *p = ks_big_alloc(n);
        KS_CHECK(p != NULL);
        if (!p)
            continue;
        KS_CHECK_MSG(((uintptr_t)p & 63) == 0, "%zu bytes at %p", n, (void *)p);
        if (n >= (1u << 20))
            KS_CHECK_MSG(((uintptr_t)p & ((2u << 20) - 1)) == 0, "%zu bytes at %p: not on a 2 MB boundary", n, (void *)p);
        size_t in = ks_test_resident_pages(p, n, &total);
        if (can_populate && n >= (1u << 20))
            KS_CHECK_MSG(in == total, "%zu bytes: %zu of %zu pages resident before any write", n, in, total);
        memset(p, 0xa5, (n + 63) / 64 * 64); /* writable up to the next multiple of 64 */
        free(p);
        uint8_t *z = ks_big_calloc(n);
        KS_CHECK(z != NULL);
        size_t nonzero = 0;
        for (size_t i = 0; z && i < n; i++)
            nonzero += z[i] != 0;
        KS_CHECK_MSG(nonzero == 0, "ks_big_calloc(%zu): %zu bytes not zero", n, nonzero);
        free(z);
    }
}

/* The team: every round runs every share exactly once, on the team's threads, and ks_team_run
 * returns only when all are done, their plain writes visible (ThreadSanitizer checks the ordering
 * in its run). Rounds follow at once (the threads spinning), after pauses longer than the spin (the
 * threads asleep, woken), and with a share slower than the spin (the caller asleep, woken). */
struct team_job {
    int round;
    long sum[4];      /* plain: written by share s only, read by the caller after the round */
    int last[4];      /* the round each share last ran */
    pthread_t who[4]; /* the thread that ran share s */
};

static void team_share(void *arg, int s)
{
    struct team_job *j = arg;
    if (s == 1 && j->round % 97 == 5)
        ks_sleep_ms(3); /* longer than the spin: the caller sleeps */
    j->sum[s] += (long)j->round * (s + 1);
    j->last[s] = j->round;
    j->who[s] = pthread_self();
}

static void test_team(void)
{
    for (int threads = 1; threads <= 4; threads++)
        for (int spin = 0; spin <= 200; spin += 200) {
            ks_team *t = ks_team_create(threads, spin);
            KS_CHECK(t != NULL);
            if (!t)
                continue;
            KS_CHECK_INT(ks_team_started(t), threads - 1);
            struct team_job j;
            memset(&j, 0, sizeof j);
            long want[4] = {0};
            int late = 0, distinct = 1;
            for (j.round = 1; j.round <= 600; j.round++) {
                if (j.round % 150 == 0)
                    ks_sleep_ms(3); /* the threads fall asleep */
                ks_team_run(t, team_share, &j);
                for (int s = 0; s < threads; s++) {
                    want[s] += (long)j.round * (s + 1);
                    late += j.last[s] != j.round;
                }
            }
            for (int s = 0; s < threads; s++) {
                KS_CHECK(j.sum[s] == want[s]);
                for (int o = 0; o < s; o++)
                    distinct &= !pthread_equal(j.who[s], j.who[o]);
            }
            KS_CHECK(pthread_equal(j.who[0], pthread_self()));
            KS_CHECK_INT(late, 0);
            KS_CHECK_INT(distinct, 1);
            ks_team_destroy(t);
        }
    ks_team_destroy(NULL);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ks_test_util_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    KS_RUN(test_read_all);
    KS_RUN(test_atomic_write);
    KS_RUN(test_atomic_write_fails);
    KS_RUN(test_png16);
    KS_RUN(test_monotonic_wait);
    KS_RUN(test_grow);
    KS_RUN(test_bigmem);
    KS_RUN(test_team);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return KS_TEST_END();
}
