/* bench_sim: simulated frame sets per second on one thread.
 *   1. 3 devices, NFOV_UNBINNED + 720P MJPEG, daisy chain, rendered images (target >= 30 sets/s)
 *      - static scene (cached renders and JPEG), and with a moving board (re-render + re-encode)
 *   2. 9 devices (1 master + 8 subordinates), same modes, lasers staggered by the guard, virtual
 *      time (target >= 10 sets/s); and the same with zero delays (every frame damaged by 8 lasers)
 * A "set" is one capture from every device. Start-up (ray tables and static renders) is timed apart.
 * KS_BENCH_CHECKSUM=1 adds a checksum of every image (its CPU time is not counted).
 * Run: ./build/bench/bench_sim [sets] [case]  (case 1-5 runs that one alone with `sets` sets, e.g. under
 *      valgrind --tool=callgrind; the cases are in the order above) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinsync/device.h"
#include "kinsync/rig.h"
#include "kinsync/sim.h"
#include "bench_common.h"

/* FNV-1a over an image's bytes: the printed checksum shows that a run repeats bit for bit (seeded) and
 * that a speed-up left the images as they were. */
static uint64_t fnv(uint64_t h, const ks_image *img)
{
    if (!img)
        return h;
    for (size_t i = 0; i < img->size; i++)
        h = (h ^ img->data[i]) * 0x100000001b3ull;
    return h;
}

static bool checksum; /* KS_BENCH_CHECKSUM=1 */

static int run(int n, bool moving, bool stagger, int sets, const char *label)
{
    ks_rig rig;
    ks_rig_init(&rig);
    rig.device_count = n;
    for (int i = 0; i < n; i++) {
        snprintf(rig.devices[i].serial, sizeof rig.devices[i].serial, "BENCH%03d", i);
        snprintf(rig.devices[i].host, sizeof rig.devices[i].host, "localhost");
    }
    for (int i = 0; i + 1 < n; i++)
        rig.cables[rig.cable_count++] = (ks_rig_cable){.from = i, .to = i + 1, .length_m = 2};
    rig.camera.color_resolution = KS_COLOR_720P;
    rig.camera.color_format = KS_FORMAT_MJPG;
    rig.camera.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    ks_findings f;
    ks_findings_init(&f);
    ks_rig_validate(&rig, &f);
    ks_findings_free(&f);
    ks_sim_config cfg;
    ks_sim_config_init(&cfg);
    cfg.seed = 1;
    cfg.usbfs_mb = ks_usbfs_recommended_mb(n); /* the host prepared as `kinsync doctor` says (a stock
                                                  host loses 3 frames in 4 with three devices) */
    if (moving) {
        cfg.board_key_count = 2;
        cfg.board_keys[0] = (ks_sim_board_key){.t_ms = 0, .pos = {0, 0, 900}, .rotvec = {0, -1.5707963, 0}};
        cfg.board_keys[1] = (ks_sim_board_key){.t_ms = 60000, .pos = {600, 500, 1100}, .rotvec = {0.3, -1.3, 0}};
    }
    ks_backend *b;
    ks_error err;
    if (ks_backend_open_sim(&rig, &cfg, &b, &err) != KS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ks_device *d[KS_RIG_MAX_DEVICES];
    int guard = ks_laser_default_guard_us(rig.camera.depth_mode);
    for (int i = 0; i < n; i++) {
        ks_device_open(b, i, &d[i], NULL);
        ks_device_set_color_control(d[i], KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, 8330, NULL);
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            bool master = i == 0;
            if ((pass == 0) == master)
                continue; /* subordinates first, then the master */
            ks_device_config c;
            ks_device_config_init(&c);
            c.color_resolution = KS_COLOR_720P;
            c.color_format = KS_FORMAT_MJPG;
            c.depth_mode = KS_DEPTH_NFOV_UNBINNED;
            c.wired_sync_mode = master ? KS_SYNC_MASTER : KS_SYNC_SUBORDINATE;
            c.subordinate_delay_off_master_usec = master || !stagger ? 0 : (uint32_t)(i * guard);
            if (ks_device_start_cameras(d[i], &c, &err) != KS_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
        }
    double t0 = now_s();
    for (int i = 0; i < n; i++) { /* first set: builds ray tables and static renders */
        ks_capture *c;
        if (ks_device_get_capture(d[i], &c, 1000, &err) != KS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        ks_capture_release(c);
    }
    double t1 = now_s(), c1 = cpu_s();
    size_t bytes = 0;
    long corrupted = 0;
    uint64_t sum = 0xcbf29ce484222325ull;
    double csum_s = 0;
    for (int s = 0; s < sets; s++)
        for (int i = 0; i < n; i++) {
            ks_capture *c;
            if (ks_device_get_capture(d[i], &c, 1000, &err) != KS_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            bytes += c->color->size;
            if (checksum) {
                double q = cpu_s();
                sum = fnv(fnv(fnv(sum, c->color), c->depth), c->ir);
                csum_s += cpu_s() - q;
            }
            ks_capture_release(c);
        }
    double t2 = now_s(), c2 = cpu_s() - csum_s;
    for (int i = 0; i < n; i++) {
        ks_sim_device_stats st;
        ks_sim_device_stats_get(ks_sim_from_backend(b), i, &st, NULL);
        corrupted += (long)st.corrupted_pixels;
    }
    double virt = (double)ks_sim_now_ns(ks_sim_from_backend(b)) * 1e-9;
    printf("%-44s start-up %.2f s | %d sets in %.2f s = %.1f sets/s (%.1f x real time) | CPU %.1f ms/set | "
           "mean MJPEG %.0f kB | corrupted pixels %ld | virtual %.1f s",
           label, t1 - t0, sets, t2 - t1, sets / (t2 - t1), sets / (t2 - t1) / 30.0, (c2 - c1) * 1e3 / sets,
           bytes / 1024.0 / ((double)sets * n), corrupted, virt);
    if (checksum)
        printf(" | images %016llx", (unsigned long long)sum);
    printf("\n");
    for (int i = 0; i < n; i++)
        ks_device_close(d[i]);
    ks_backend_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    int sets = argc > 1 ? atoi(argv[1]) : 300;
    int only = argc > 2 ? atoi(argv[2]) : 0;
    checksum = getenv("KS_BENCH_CHECKSUM") && atoi(getenv("KS_BENCH_CHECKSUM")); /* 1-5: run that case alone (e.g. under callgrind) */
    if (sets < 1)
        sets = 300;
    int rc = 0;
    if (!only || only == 1)
        rc |= run(3, false, true, sets, "3 x NFOV_UNBINNED + 720P MJPEG, static");
    if (!only || only == 2)
        rc |= run(3, true, true, only ? sets : sets / 3, "3 x NFOV_UNBINNED + 720P MJPEG, moving board");
    if (!only || only == 3)
        rc |= run(9, false, true, only ? sets : sets / 3, "9 x NFOV_UNBINNED + 720P MJPEG, static");
    if (!only || only == 4)
        rc |= run(9, true, true, only ? sets : sets / 10, "9 x NFOV_UNBINNED + 720P MJPEG, moving board");
    if (!only || only == 5)
        rc |= run(9, false, false, only ? sets : sets / 10, "9 x ..., static, zero delays (interference)");
    return rc;
}
