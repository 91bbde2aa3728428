/* The simulator's view cache (ks_sim_config.view_cache_dir, docs/simulator.md "View cache"): the
 * static depth views kept on disk give the very images of a run without it, bit for bit (depth and
 * IR over several frames, a moving board drawn over the view, the laser check's pair masks), the
 * first run (cold) included; a second run takes every depth view from the files (nothing ray-cast,
 * no rays solved: ks_sim_render_stats); a damaged, truncated, emptied, foreign or forged file is
 * refused and rebuilt (the images still the same), and the run after it uses the cache again; a
 * cache directory that cannot be written costs nothing but the cache; a hit refreshes the file's
 * time and the directory's size cap (KINSYNC_CACHE_MAX_MB) holds for the views. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ks_test.h"
#include "support/sim_rigs.h"
#include "util/cachefile.h"

static char cache_dir[256];

static uint64_t fnv(uint64_t h, const ks_image *img)
{
    if (!img)
        return (h ^ 0xffu) * 0x100000001b3ull;
    for (size_t i = 0; i < img->size; i++)
        h = (h ^ img->data[i]) * 0x100000001b3ull;
    return h;
}

typedef struct vc_case {
    const char *name;
    int devices;
    ks_depth_mode depth;
    bool moving, sensor, laser_shared;
    int captures;
} vc_case;

typedef struct vc_result {
    uint64_t hash;
    int from_cache, ray_tables, depth_views; /* summed over the devices */
} vc_result;

/* variant: 0 as the case says; 1 device 0 turned about its axis (rotation only); 2 one more box in
 * the scene; 3 the sensor model switched; 4 another board texture; 5 device 0 moved halfway to the
 * point it looks at (position only: the same direction, so bit for bit the same rotation). Device
 * 0's default pose: (2500, 0, 1500) looking at (0, 0, 750). */
static vc_result run_case_variant(const vc_case *k, const char *dir, int variant)
{
    vc_result res = {0xcbf29ce484222325ull, 0, 0, 0};
    ks_rig rig;
    simt_rig(&rig, k->devices, SIMT_DAISY, 1.0);
    rig.camera.depth_mode = k->depth;
    ks_sim_config cfg;
    simt_config(&cfg, 11, true);
    cfg.sensor = variant == 3 ? !k->sensor : k->sensor;
    if (variant == 1)
        cfg.poses[0] = (ks_sim_pose){true, {2500, 0, 1500}, {0, 0, 750}, 4.0};
    if (variant == 5)
        cfg.poses[0] = (ks_sim_pose){true, {1250, 0, 1125}, {0, 0, 750}, 0};
    if (variant == 2)
        cfg.objects[cfg.object_count++] = (ks_sim_object){KS_SIM_BOX, {-300, -300, 0}, {300, 300, 400}, 0.5, {90, 90, 90}};
    snprintf(cfg.view_cache_dir, sizeof cfg.view_cache_dir, "%s", dir);
    if (k->moving) {
        cfg.board_key_count = 2;
        cfg.board_keys[0] = (ks_sim_board_key){.t_ms = 0, .pos = {0, 0, 900}, .rotvec = {0, -1.5707963, 0}};
        cfg.board_keys[1] = (ks_sim_board_key){.t_ms = 2000, .pos = {600, 500, 1100}, .rotvec = {0.3, -1.3, 0}};
    }
    simt_run r;
    if (!simt_open(&r, &rig, &cfg)) {
        KS_CHECK_MSG(false, "%s: the simulator did not open", k->name);
        return res;
    }
    ks_error err;
    uint64_t h = res.hash;
    if (variant == 4) {
        uint8_t tex[64 * 64];
        for (int i = 0; i < 64 * 64; i++)
            tex[i] = (uint8_t)(((i / 64 / 8 + i % 64 / 8) & 1) ? 230 : 20);
        KS_CHECK(ks_sim_set_board_texture(r.sim, tex, 64, 64, 64, &err) == KS_OK);
    }
    if (k->laser_shared)
        for (int a = 0; a < k->devices; a++)
            for (int b = 0; b < k->devices; b++) {
                int px = -2;
                if (a != b) {
                    KS_CHECK(ks_sim_laser_shared(r.sim, a, b, k->depth, &px, &err) == KS_OK);
                    KS_CHECK_MSG(px > 0, "%s: %d pixels of device %d lit by device %d", k->name, px, a, b);
                    h = (h ^ (uint64_t)(uint32_t)px) * 0x100000001b3ull;
                }
            }
    for (int i = 0; i < k->devices; i++) {
        simt_device_config(&rig, i, &r.cfg[i], 0, k->laser_shared ? 0 : (uint32_t)(i * 160));
        r.cfg[i].depth_mode = k->depth;
        ks_device_set_streams(r.dev[i], KS_STREAM_DEPTH | KS_STREAM_IR); /* colour not rendered: faster */
    }
    bool ok = simt_start_all(&r, &rig);
    KS_CHECK(ok);
    for (int n = 0; ok && n < k->captures; n++)
        for (int i = 0; i < k->devices; i++) {
            ks_capture *c = NULL;
            if (ks_device_get_capture(r.dev[i], &c, 1000, &err) != KS_OK) {
                KS_CHECK_MSG(false, "%s: capture %d of device %d: %s", k->name, n, i, err.message);
                ok = false;
                break;
            }
            KS_CHECK(c->depth && c->ir);
            h = fnv(fnv(h, c->depth), c->ir);
            ks_capture_release(c);
        }
    for (int i = 0; i < k->devices; i++) {
        ks_sim_render_stats st;
        KS_CHECK(ks_sim_render_stats_get(r.sim, i, &st, &err) == KS_OK);
        res.from_cache += (int)st.views_from_cache;
        res.ray_tables += (int)st.ray_tables;
        res.depth_views += (int)st.depth_views;
    }
    simt_close(&r);
    res.hash = h;
    return res;
}

static vc_result run_case(const vc_case *k, const char *dir)
{
    return run_case_variant(k, dir, 0);
}

static int cache_files(char names[][512], int max)
{
    DIR *d = opendir(cache_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "simview-", 8) && n < max)
            snprintf(names[n++], 512, "%s/%s", cache_dir, e->d_name);
    if (d)
        closedir(d);
    return n;
}

static void clear_cache(void)
{
    char names[16][512];
    int n = cache_files(names, 16);
    for (int i = 0; i < n; i++)
        unlink(names[i]);
}

static const vc_case CASES[] = {
    {"2 x NFOV unbinned, sensor model, static board", 2, KS_DEPTH_NFOV_UNBINNED, false, true, false, 4},
    {"NFOV binned, moving board over the cached view", 1, KS_DEPTH_NFOV_2X2BINNED, true, true, false, 3},
    {"2 x WFOV binned, exact geometry, laser pair masks", 2, KS_DEPTH_WFOV_2X2BINNED, false, false, true, 2},
};

/* Without the cache, cold, warm: the same images; warm takes every depth view from the files. */
static void test_cached_views_same_images(void)
{
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const vc_case *k = &CASES[c];
        clear_cache();
        vc_result ref = run_case(k, "");
        vc_result cold = run_case(k, cache_dir);
        char names[16][512];
        KS_CHECK_MSG(cache_files(names, 16) == k->devices, "%s: %d cache files after the cold run", k->name,
                     cache_files(names, 16));
        time_t t0 = time(NULL);
        for (int i = 0; i < k->devices; i++) { /* made old: the warm run's hits refresh them */
            const struct timespec old[2] = {{t0 - 1000, 0}, {t0 - 1000, 0}};
            KS_CHECK(utimensat(AT_FDCWD, names[i], old, 0) == 0);
        }
        vc_result warm = run_case(k, cache_dir);
        for (int i = 0; i < k->devices; i++) {
            struct stat sb;
            KS_CHECK_MSG(stat(names[i], &sb) == 0 && sb.st_mtime >= t0, "%s: %s not refreshed by its hit", k->name,
                         names[i]);
        }
        KS_CHECK_MSG(ref.hash == cold.hash && ref.hash == warm.hash,
                     "%s: images 0x%016llx without the cache, 0x%016llx cold, 0x%016llx warm", k->name,
                     (unsigned long long)ref.hash, (unsigned long long)cold.hash, (unsigned long long)warm.hash);
        KS_CHECK_INT(ref.from_cache, 0);
        KS_CHECK_INT(cold.from_cache, 0);
        KS_CHECK_MSG(warm.from_cache == k->devices, "%s: %d depth views from the cache, expected %d", k->name,
                     warm.from_cache, k->devices);
        KS_CHECK_INT(warm.depth_views, k->devices);
        KS_CHECK_INT(cold.ray_tables, k->devices);
        KS_CHECK_MSG(warm.ray_tables == 0, "%s: %d ray tables solved in the warm run", k->name, warm.ray_tables);
    }
}

static bool file_bytes(const char *p, uint8_t **data, size_t *n)
{
    struct stat sb;
    int fd = open(p, O_RDONLY);
    *data = NULL;
    bool ok = fd >= 0 && fstat(fd, &sb) == 0 && (*data = malloc((size_t)sb.st_size + 1)) &&
              read(fd, *data, (size_t)sb.st_size) == sb.st_size;
    *n = ok ? (size_t)sb.st_size : 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool put_bytes(const char *p, const uint8_t *data, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bool ok = fd >= 0 && write(fd, data, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Every way a file can be wrong: refused (the view rendered, the same images), rebuilt. */
static void test_bad_files_rebuilt(void)
{
    const vc_case *k = &CASES[0]; /* 2 x NFOV unbinned 640 x 576, sensor model */
    const size_t n = 640 * 576;
    clear_cache();
    vc_result ref = run_case(k, "");
    run_case(k, cache_dir); /* fills the cache */
    const char *kinds[] = {"a flipped byte", "truncated", "empty", "one byte longer", "another device's",
                           "forged (a pixel of a checked row changed, checksum made to match)"};
    for (int kind = 0; kind < 6; kind++) {
        char names[16][512];
        int nf = cache_files(names, 16);
        KS_CHECK_INT(nf, 2);
        uint8_t *d[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        for (int f = 0; f < nf && f < 2; f++)
            KS_CHECK(file_bytes(names[f], &d[f], &len[f]));
        for (int f = 0; f < nf && f < 2 && d[f]; f++) {
            uint8_t *b = d[f];
            size_t m = len[f];
            size_t head = m - n * 4 - n * 2 * 2 - n * 4; /* dz, depth, IR, four sensor planes */
            switch (kind) {
            case 0: b[head + n * 4 + 2 * 12345] ^= 0x04; break;
            case 1: m -= 100; break;
            case 2: m = 0; break;
            case 3: b[m++] = 0; break;
            case 4: b = d[1 - f]; m = len[1 - f]; break;
            case 5: {
                /* depth of pixel (320, 35): row 35 is the spot check's first row */
                uint16_t *depth = (uint16_t *)(b + head + n * 4);
                depth[35 * 640 + 320] += 7;
                const ks_cache_plane pl[7] = {{b + head, n * 4},
                                              {b + head + n * 4, n * 2},
                                              {b + head + n * 6, n * 2},
                                              {b + head + n * 8, n},
                                              {b + head + n * 9, n},
                                              {b + head + n * 10, n},
                                              {b + head + n * 11, n}};
                uint64_t sum = ks_cache_checksum(pl, 7);
                for (int i = 0; i < 8; i++)
                    b[24 + i] = (uint8_t)(sum >> (8 * i));
                break;
            }
            }
            KS_CHECK(put_bytes(names[f], b, m));
        }
        vc_result r = run_case(k, cache_dir);
        KS_CHECK_MSG(r.hash == ref.hash, "%s file: images 0x%016llx, expected 0x%016llx", kinds[kind],
                     (unsigned long long)r.hash, (unsigned long long)ref.hash);
        KS_CHECK_MSG(r.from_cache == 0, "%s file: %d views taken from it", kinds[kind], r.from_cache);
        free(d[0]);
        free(d[1]);
        vc_result again = run_case(k, cache_dir); /* the files were written again */
        KS_CHECK_MSG(again.from_cache == 2 && again.hash == ref.hash, "after %s file: %d views from the cache",
                     kinds[kind], again.from_cache);
    }
    /* a directory that cannot be made: no cache, the same images */
    vc_result r = run_case(k, "/dev/null/kinsync");
    KS_CHECK(r.hash == ref.hash && r.from_cache == 0);
}

/* The key holds every input of a view: a changed input makes a new file (the old one stays for the
 * old input) and the view is rendered, never taken from the file of another input. (The spot check
 * would refuse most such files too; the count of files shows the key alone tells them apart.) */
static void test_key_follows_inputs(void)
{
    const vc_case *k = &CASES[0];
    const char *what[] = {"", "device 0 turned", "a box added to the scene", "the sensor model switched",
                          "another board texture", "device 0 moved along its axis"};
    const int changed[] = {0, 1, 2, 2, 2, 1};
    clear_cache();
    run_case(k, cache_dir);
    char names[16][512];
    int files = cache_files(names, 16);
    KS_CHECK_INT(files, 2);
    for (int v = 1; v <= 5; v++) {
        vc_result ref = run_case_variant(k, "", v);
        vc_result r = run_case_variant(k, cache_dir, v);
        int now = cache_files(names, 16);
        KS_CHECK_MSG(r.hash == ref.hash, "%s: images 0x%016llx, expected 0x%016llx", what[v],
                     (unsigned long long)r.hash, (unsigned long long)ref.hash);
        KS_CHECK_MSG(r.from_cache == 2 - changed[v], "%s: %d views from the cache, expected %d", what[v], r.from_cache,
                     2 - changed[v]);
        KS_CHECK_MSG(now == files + changed[v], "%s: %d cache files, expected %d (a new file per changed view)",
                     what[v], now, files + changed[v]);
        files = now;
        vc_result again = run_case_variant(k, cache_dir, v);
        KS_CHECK_MSG(again.from_cache == 2 && again.hash == ref.hash, "%s, again: %d views from the cache", what[v],
                     again.from_cache);
    }
}

/* The directory's size cap (KINSYNC_CACHE_MAX_MB, util/cachefile.h) holds for the views: with room
 * for one of the two views' files (2 MiB each) only one is kept, run after run, the images the same;
 * with room for both, both are kept and used. */
static void test_size_cap(void)
{
    const vc_case *k = &CASES[2];
    clear_cache();
    vc_result ref = run_case(k, "");
    char names[16][512];
    setenv("KINSYNC_CACHE_MAX_MB", "3", 1);
    for (int run = 0; run < 2; run++) {
        vc_result r = run_case(k, cache_dir);
        int n = cache_files(names, 16);
        off_t total = 0;
        for (int i = 0; i < n; i++) {
            struct stat sb;
            total += stat(names[i], &sb) == 0 ? sb.st_size : 0;
        }
        KS_CHECK_MSG(n == 1 && total <= 3 << 20, "run %d: %d files, %lld bytes kept under a 3 MB cap", run, n,
                     (long long)total);
        KS_CHECK_MSG(r.hash == ref.hash, "run %d: other images", run);
    }
    setenv("KINSYNC_CACHE_MAX_MB", "5", 1);
    run_case(k, cache_dir);
    vc_result warm = run_case(k, cache_dir);
    KS_CHECK_INT(cache_files(names, 16), 2);
    KS_CHECK_INT(warm.from_cache, 2);
    KS_CHECK(warm.hash == ref.hash);
    unsetenv("KINSYNC_CACHE_MAX_MB");
}

int main(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/test_sim_view_cache_%ld", (long)getpid());
    KS_RUN(test_cached_views_same_images);
    KS_RUN(test_bad_files_rebuilt);
    KS_RUN(test_key_follows_inputs);
    KS_RUN(test_size_cap);
    clear_cache();
    rmdir(cache_dir);
    return KS_TEST_END();
}
