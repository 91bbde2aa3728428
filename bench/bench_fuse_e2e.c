/* bench_fuse_e2e: `kinsync fuse` end to end, as the command runs it (source -> session -> fuse sink
 * -> one PLY per frame set), with its start-up split into phases. Issue 19's figures: start-up for
 * 9 devices and frame sets per second after start-up, writing every set.
 *
 * Usage: bench_fuse_e2e [--sets N] [--threads T] [--voxel MM] [--no-write] [--ply16] [--no-cache]
 *                       [--all-streams] [--calibration FILE] [RIG.yaml | RECORDING.mkv...]
 * --sets 0 stops after the first set (start-up alone, e.g. to profile it).
 * The session reads the fuse sink's streams only (depth), as `kinsync fuse` does: recordings skip
 * decoding colour and IR. --all-streams decodes every stream (the figure before that existed).
 * The unprojection tables and the simulator's static views go through the same cache as `kinsync
 * fuse` ($XDG_CACHE_HOME/kinsync); --no-cache builds them (run twice to see both: the first run fills
 * the cache).
 * Without inputs: the simulated 9-device chain (examples/rigs/chain-9.yaml) in fast mode, with
 * made-up poses (devices 300 mm apart; the geometry does not matter for the speed). A rig file runs
 * on the simulator in fast mode; recordings play back as `kinsync fuse` plays them. The PLYs go to a
 * temporary directory, removed at the end. Prints wall and CPU time per phase and per set, and the
 * load average: on a shared machine the wall-clock figures vary, the CPU figures less; and the page
 * faults per phase (each ~10 us of CPU on a virtual machine; their count hardly varies with load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kinsync/fuse.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/session.h"
#include "kinsync/source.h"
#include "bench_common.h"

/* Page faults of the process so far (minor and major): on a virtual machine each costs ~10 us of
 * CPU, and unlike the time their count hardly depends on the machine's load. */
static long faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt + ru.ru_majflt : 0;
}

static long faults_at_phase;

static void phase(const char *name, double w0, double c0, double *w, double *c)
{
    double wn = now_s(), cn = cpu_s();
    long f = faults();
    printf("  %-34s %7.1f ms wall, %7.1f ms CPU, %6ld page faults\n", name, (wn - w0) * 1e3, (cn - c0) * 1e3,
           f - faults_at_phase);
    faults_at_phase = f;
    *w = wn;
    *c = cn;
}

int main(int argc, char **argv)
{
    int sets = 60, threads = 2, write = 1, cache = 1, ply16 = 0, all_streams = 0;
    double voxel = 5;
    const char *calib = NULL, *inputs[KS_FUSE_MAX_DEVICES];
    int ninputs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sets") && i + 1 < argc)
            sets = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--voxel") && i + 1 < argc)
            voxel = atof(argv[++i]);
        else if (!strcmp(argv[i], "--calibration") && i + 1 < argc)
            calib = argv[++i];
        else if (!strcmp(argv[i], "--no-write"))
            write = 0;
        else if (!strcmp(argv[i], "--no-cache"))
            cache = 0;
        else if (!strcmp(argv[i], "--ply16"))
            ply16 = 1;
        else if (!strcmp(argv[i], "--all-streams"))
            all_streams = 1;
        else if (argv[i][0] == '-' || ninputs == KS_FUSE_MAX_DEVICES) {
            fprintf(stderr, "usage: bench_fuse_e2e [--sets N] [--threads T] [--voxel MM] [--no-write] [--ply16] [--no-cache] "
                            "[--all-streams] [--calibration FILE] [RIG.yaml | RECORDING.mkv...]\n");
            return 2;
        } else
            inputs[ninputs++] = argv[i];
    }
    if (sets < 0 || threads < 1 || !(voxel > 0)) {
        fprintf(stderr, "bench_fuse_e2e: --sets must be 0 or more, --threads and --voxel positive\n");
        return 2;
    }
    if (!ninputs)
        inputs[ninputs++] = KS_SOURCE_DIR "/examples/rigs/chain-9.yaml";
    char load[128], dir[] = "/tmp/bench_fuse_e2e_XXXXXX";
    if (write && !mkdtemp(dir)) {
        perror("bench_fuse_e2e: mkdtemp");
        return 1;
    }
    loadavg(load, sizeof load);
    printf("bench_fuse_e2e: %s%s, %d sets, %d threads, %.3g mm voxels, %s (%ld CPUs, load %s)\n", inputs[0],
           ninputs > 1 ? " ..." : "", sets, threads, voxel,
           !write ? "no files" : ply16 ? "a 16-bit PLY per set" : "a PLY per set",
           sysconf(_SC_NPROCESSORS_ONLN), load);
    ks_error err = {0};
    long f0 = faults_at_phase = faults();
    double w0 = now_s(), c0 = cpu_s(), w = w0, c = c0;
    printf("start-up:\n");
    ks_source src;
    ks_source_options so;
    ks_source_options_init(&so);
    so.backend = "sim";
    so.fast = true;
    char cache_dir[4096];
    if (cache && ks_fuse_default_cache_dir(cache_dir, sizeof cache_dir)) /* as kinsync fuse does */
        so.sim_cache_dir = cache_dir;
    if (ks_source_open(inputs, ninputs, &so, &src, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
        return 1;
    }
    phase("source open (rig / recordings)", w, c, &w, &c);
    ks_session *sess = NULL;
    ks_session_options sopt;
    ks_session_options_init(&sopt);
    sopt.allow_firmware_mismatch = src.kind == KS_SOURCE_RECORDINGS;
    ks_fuse_options fo = {.voxel_mm = (float)voxel, .threads = threads};
    sopt.streams = all_streams ? 0 : ks_fuse_sink_streams(&fo); /* as kinsync fuse does */
    if (ks_session_open(&src.rig, &src.plan, src.backend, &sopt, &sess, &err) != KS_OK ||
        ks_session_start(sess, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
        return 1;
    }
    phase("session open + start", w, c, &w, &c);
    ks_rig_pose *poses = NULL;
    size_t npose = 0;
    ks_status st;
    if (calib) {
        st = ks_rig_poses_load(calib, &poses, &npose, &err);
    } else { /* made-up poses: every device of the rig, 300 mm apart */
        size_t cap = 256 + (size_t)src.rig.device_count * 256, len = 0;
        char *js = malloc(cap);
        len += (size_t)snprintf(js + len, cap - len, "{\"format\": \"kinsync-rig-calibration\", \"version\": 1, "
                                                     "\"devices\": [");
        for (int i = 0; i < src.rig.device_count; i++)
            len += (size_t)snprintf(js + len, cap - len,
                                    "%s{\"serial\": \"%s\", \"depth_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": "
                                    "[%d,0,0]}, \"color_to_rig\": {\"R\": [1,0,0,0,1,0,0,0,1], \"t\": [%d,0,0]}}",
                                    i ? ", " : "", src.rig.devices[i].serial, 300 * i, 300 * i);
        snprintf(js + len, cap - len, "]}");
        st = ks_rig_poses_parse(js, strlen(js), "made-up poses", &poses, &npose, &err);
        free(js);
    }
    if (st != KS_OK) {
        fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
        return 1;
    }
    if (so.sim_cache_dir)
        fo.table_cache_dir = cache_dir;
    ks_fuse_sink *sink = NULL;
    if (ks_fuse_sink_create(sess, poses, npose, &fo, &sink, &err) != KS_OK) {
        fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
        return 1;
    }
    free(poses);
    phase(fo.table_cache_dir ? "fuse sink (tables via the cache)" : "fuse sink (tables built)", w, c, &w, &c);
    ks_cloud cloud = {0};
    int done = 0, rc = 0;
    bool seen_complete = false;
    long f_first = 0;
    double t_first = 0, c_first = 0, sum_next = 0, sum_fuse = 0, sum_write = 0, voxels = 0;
    while (done <= sets) { /* the first fused set ends start-up; `sets` more are timed */
        ks_session_set set;
        double a = now_s();
        st = ks_session_next(sess, &set, 5000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st != KS_OK) {
            if (st != KS_EEOF)
                fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
            break;
        }
        double b = now_s();
        seen_complete |= set.set.complete;
        if (seen_complete) {
            ks_fuse_stats fs;
            if (ks_fuse_sink_run(sink, &set, &cloud, &fs, NULL, &err) != KS_OK) {
                fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
                rc = 1;
                ks_session_set_release(&set);
                break;
            }
            double f = now_s();
            if (write) {
                char path[256];
                snprintf(path, sizeof path, "%s/fused-%06d.ply", dir, done);
                if ((ply16 ? ks_ply_write_quantized(path, &cloud, 0, voxel, &err) : ks_ply_write(path, &cloud, 0, &err)) !=
                    KS_OK) {
                    fprintf(stderr, "bench_fuse_e2e: %s\n", err.message);
                    rc = 1;
                    ks_session_set_release(&set);
                    break;
                }
                unlink(path); /* keep the disk use flat; the write is what is timed */
            }
            double e = now_s();
            if (done == 0) {
                phase("first frame set fused and written", w, c, &w, &c);
                t_first = w;
                c_first = c;
                f_first = faults_at_phase;
            } else {
                sum_next += b - a;
                sum_fuse += f - b;
                sum_write += e - f;
                voxels += (double)cloud.count;
            }
            done++;
        }
        ks_session_set_release(&set);
    }
    double wt = now_s() - t_first, ct = cpu_s() - c_first;
    long f_after = faults() - faults_at_phase;
    printf("  %-34s %7.1f ms wall, %7.1f ms CPU, %6ld page faults\n", "start-up total", (t_first - w0) * 1e3,
           (c_first - c0) * 1e3, f_first - f0);
    int n = done - 1;
    loadavg(load, sizeof load);
    if (n > 0)
        printf("after start-up: %d sets in %.2f s: %.1f frame sets/s, %.1f ms CPU per set (wall per set: next set "
               "%.1f, fuse %.1f, write %.1f ms); %.0f voxels per set, %ld page faults (load %s)\n",
               n, wt, n / wt, ct / n * 1e3, sum_next / n * 1e3, sum_fuse / n * 1e3, sum_write / n * 1e3, voxels / n,
               f_after, load);
    else
        printf("after start-up: %s\n", sets ? "no set (the input ended)" : "not measured (--sets 0)");
    ks_cloud_free(&cloud);
    ks_fuse_sink_destroy(sink);
    ks_session_stop(sess);
    ks_session_close(sess);
    ks_source_close(&src);
    if (write)
        rmdir(dir);
    return rc;
}
