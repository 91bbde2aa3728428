/* kinsync fuse: a calibrated rig -> one point cloud per frame set.
 *
 * The command is a sink of the session like every other: the input (a rig file run live, or one
 * recording per device) opens through ks_source_open, the session forms the frame sets (one
 * matcher, one key), and the fuse sink (kinsync/fuse_sink.h) turns each set into a cloud with the
 * colour of the same instant. This file parses flags, writes files and prints. See docs/fuse.md. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/fuse.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/playback.h"
#include "kinsync/session.h"
#include "util/cachefile.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync fuse (RIG.yaml | RECORDING.mkv...) --calibration rig-calibration.json --out DIR\n"
            "                    [--voxel MM] [--fill DEVICE] [--color [--color-scale N]] [--normals]\n"
            "                    [--frames N] [--step N] [--match-us US] [--threads N] [--format ply|ply16]\n"
            "                    [--json]\n"
            "       kinsync fuse RECORDING.mkv... --calibration rig-calibration.json --out DIR --interleaved\n"
            "                    [--frames N] [--json]\n"
            "\n"
            "Fuses the depth of all devices of a calibrated rig into one point cloud per synchronized\n"
            "frame set: every depth pixel is unprojected with its device's factory lens model, moved\n"
            "into the rig frame with the pose from rig-calibration.json (kinsync calibrate), and the\n"
            "points of all devices are merged in a voxel grid (mean position, color and normal, point\n"
            "count per voxel). Each frame set is written as DIR/fused-NNNNNN.ply (binary PLY, mm).\n"
            "\n"
            "RIG.yaml: run the rig live (--backend auto|sim|k4a, --fast for the simulator in virtual time)\n"
            "and fuse its frame sets as they arrive; Ctrl-C stops (with --frames 0).\n"
            "RECORDING.mkv: one synchronized recording per device (k4arecorder or kinsync record) with\n"
            "depth; the rig is rebuilt from them. Either way the frame sets are the session's, as\n"
            "`kinsync verify` forms them: device timestamps with the timestamp convention and the planned\n"
            "delays removed, within --match-us (default a quarter frame period). Fusing starts with the\n"
            "first complete set. Lens tables (and on the simulator its static views) are cached in\n"
            "$XDG_CACHE_HOME/kinsync (else ~/.cache/kinsync), the least recently used deleted beyond\n"
            "KINSYNC_CACHE_MAX_MB megabytes (default 512; 0: no cache).\n"
            "\n"
            "  --calibration FILE  rig-calibration.json with a pose for every device (required)\n"
            "  --out DIR           output directory, created if missing (required)\n"
            "  --voxel MM          voxel size in millimetres (default 5)\n"
            "  --fill DEVICE       serial or index: render the fused cloud into that device's depth view,\n"
            "                      fill its holes from the other devices, write DIR/filled-SERIAL-NNNNNN.png\n"
            "  --color             color the points from the color image of the same instant (MJPEG or BGRA)\n"
            "  --color-scale N     decode MJPEG color at 1/N (1, 2, 4, 8; default 1): much faster, one color per\n"
            "                      voxel needs no more pixels than the depth image has (720P at 1/2 = 640x360);\n"
            "                      a pixel is the mean of the N x N it stands for (KINSYNC_MJPEG_LIBJPEG=1:\n"
            "                      libjpeg-turbo's scaled decode instead)\n"
            "  --normals           normals from depth-image neighbours, averaged per voxel\n"
            "  --frames N          fuse N frame sets (default 1; 0 = all; --interleaved: all)\n"
            "  --step N            use every N-th frame set (default 1)\n"
            "  --match-us US       timestamp tolerance between devices, microseconds\n"
            "  --threads N         worker threads (default 2)\n"
            "  --format F          ply: float x y z (default); ply16: 16-bit x y z in steps of step_mm from\n"
            "                      origin_mm (header comments), half the size, within voxel/64 at room scale\n"
            "  --backend NAME      RIG.yaml: auto (default), sim, k4a\n"
            "  --fast              RIG.yaml on the simulator: virtual time, as fast as possible\n"
            "  --interleaved       an interleaved rig (devices offset over the period): no merging; every\n"
            "                      depth frame of every device, in timestamp order, becomes\n"
            "                      DIR/stream-NNNNNN.ply in the rig frame, listed with its device, timestamp\n"
            "                      and pose in DIR/stream.json (N x fps; --frames limits the count)\n"
            "  --json              machine-readable summary on stdout\n"
            "  -h, --help          this text\n"
            "\n"
            "Exit status: 0 fused, 1 nothing could be fused (no complete frame set, I/O error),\n"
            "2 usage error or unusable input (unreadable recording, device missing from the calibration).\n");
}

typedef struct fuse_args {
    const char *calib_path, *out_dir, *fill_arg, *backend;
    bool fast, color, normals, json, interleaved, frames_given, ply16;
    double voxel;
    long frames, step, match_us, threads, color_scale;
    const char *const *inputs;
    int ninputs;
} fuse_args;

/* One run: the source, its session, the sink and what is summed for the report. */
typedef struct fuse_run {
    fuse_args a;
    ks_cli_rigrun src;
    ks_session *sess;
    ks_fuse_sink *sink;
    int n, fill;
    long sets;
    long dev_sets[KS_FUSE_MAX_DEVICES];
    double dev_points[KS_FUSE_MAX_DEVICES];
    long dev_colored[KS_FUSE_MAX_DEVICES];
    double sum_voxels, sum_shared, sum_ms;
    size_t filled_total;
    json_t *outputs;
} fuse_run;

static int parse_args(int argc, char **argv, fuse_args *a)
{
    static const struct option opts[] = {
        {"calibration", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
        {"voxel", required_argument, 0, 'v'},       {"fill", required_argument, 0, 'f'},
        {"color", no_argument, 0, 'C'},             {"normals", no_argument, 0, 'N'},
        {"frames", required_argument, 0, 'n'},      {"step", required_argument, 0, 's'},
        {"match-us", required_argument, 0, 'm'},    {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},              {"help", no_argument, 0, 'h'},
        {"interleaved", no_argument, 0, 'I'},       {"backend", required_argument, 0, 'B'},
        {"fast", no_argument, 0, 'F'},              {"format", required_argument, 0, 'P'},
        {"color-scale", required_argument, 0, 'S'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->backend = "auto";
    a->voxel = 5.0;
    a->frames = 1;
    a->step = 1;
    a->threads = 2;
    a->color_scale = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'c': a->calib_path = optarg; break;
        case 'o': a->out_dir = optarg; break;
        case 'f': a->fill_arg = optarg; break;
        case 'C': a->color = true; break;
        case 'N': a->normals = true; break;
        case 'j': a->json = true; break;
        case 'I': a->interleaved = true; break;
        case 'B': a->backend = optarg; break;
        case 'F': a->fast = true; break;
        case 'S':
            a->color_scale = strtol(optarg, &end, 10);
            if (!end || *end || (a->color_scale != 1 && a->color_scale != 2 && a->color_scale != 4 && a->color_scale != 8))
                return ks_cli_usage_error("fuse", "--color-scale %s: give 1, 2, 4 or 8 (decode the color at 1/N)", optarg);
            break;
        case 'P':
            if (strcmp(optarg, "ply") && strcmp(optarg, "ply16"))
                return ks_cli_usage_error("fuse", "--format %s: give ply (float coordinates) or ply16 (16-bit)", optarg);
            a->ply16 = !strcmp(optarg, "ply16");
            break;
        case 'v':
            a->voxel = strtod(optarg, &end);
            if (!end || *end || !(a->voxel >= 0.1 && a->voxel <= 10000))
                return ks_cli_usage_error("fuse", "--voxel %s: give a size in millimetres from 0.1 to 10000", optarg);
            break;
        case 'n':
        case 's':
        case 'm':
        case 't': {
            long v = strtol(optarg, &end, 10);
            long lo = c == 's' || c == 't' ? 1 : 0, hi = c == 't' ? 64 : 1000000000L;
            if (!end || *end || v < lo || v > hi)
                return ks_cli_usage_error("fuse", "--%s %s: give a whole number from %ld to %ld",
                                          c == 'n' ? "frames" : c == 's' ? "step" : c == 'm' ? "match-us" : "threads",
                                          optarg, lo, hi);
            *(c == 'n' ? &a->frames : c == 's' ? &a->step : c == 'm' ? &a->match_us : &a->threads) = v;
            a->frames_given |= c == 'n';
            break;
        }
        case 'h': usage(stdout); return -1;
        default: return ks_cli_usage_error("fuse", "unknown option");
        }
    }
    a->inputs = (const char *const *)argv + optind;
    a->ninputs = argc - optind;
    if (a->ninputs < 1)
        return ks_cli_usage_error("fuse", "give a rig file or one recording (.mkv) per device");
    if (a->ninputs > KS_FUSE_MAX_DEVICES)
        return ks_cli_usage_error("fuse", "%d recordings; at most %d devices can be fused", a->ninputs,
                                  KS_FUSE_MAX_DEVICES);
    if (!a->calib_path)
        return ks_cli_usage_error("fuse", "--calibration rig-calibration.json is required (kinsync calibrate writes it)");
    if (!a->out_dir)
        return ks_cli_usage_error("fuse", "--out DIR is required");
    return KS_EXIT_OK;
}

static int fail(const char *what, ks_error *err, int rc)
{
    (void)what;
    ks_cli_print_error("fuse", err);
    return rc;
}

static const char *input_name(fuse_run *r, int i)
{
    const char *p = ks_playback_path(r->src.backend, ks_session_rig_index(r->sess, i));
    return p ? p : ks_session_device_name(r->sess, i);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Opens the input, the session (started) and the sink; KS_EXIT_* */
static int open_run(fuse_run *r)
{
    ks_error err = {0};
    ks_rig_pose *poses = NULL;
    size_t npose = 0;
    if (ks_rig_poses_load(r->a.calib_path, &poses, &npose, &err))
        return fail("fuse", &err, KS_EXIT_USAGE);
    char cache_dir[4096]; /* lens tables and the simulator's views: docs/fuse.md, docs/simulator.md */
    bool cached = ks_fuse_default_cache_dir(cache_dir, sizeof cache_dir);
    uint64_t cap;
    if (cached && !ks_cache_max_bytes(&cap)) /* the cache keeps working, under the default cap */
        fprintf(stderr,
                "kinsync fuse: warning: %s=%s is not a whole number of megabytes (e.g. 512; 0 turns the cache "
                "off): the cache is kept under the default %u MB\n",
                KS_CACHE_MAX_MB_ENV, getenv(KS_CACHE_MAX_MB_ENV), KS_CACHE_MAX_MB_DEFAULT);
    int rc = ks_cli_source_open_cached(r->a.inputs, r->a.ninputs, r->a.backend, r->a.fast, cached ? cache_dir : NULL,
                                       &r->src, &err);
    if (rc == KS_EXIT_OK && r->a.interleaved && !r->src.recordings) {
        free(poses);
        return ks_cli_usage_error("fuse", "--interleaved works on recordings; record the rig first");
    }
    ks_fuse_options fo = {.voxel_mm = (float)r->a.voxel, .threads = (int)r->a.threads, .color = r->a.color,
                          .color_scale = (int)r->a.color_scale, .normals = r->a.normals};
    ks_session_options so;
    ks_session_options_init(&so);
    so.tolerance_us = (double)r->a.match_us;
    so.allow_firmware_mismatch = r->src.recordings; /* a finished take is what it is */
    so.streams = ks_fuse_sink_streams(&fo); /* recordings decode depth (and colour with --color) only */
    if (rc == KS_EXIT_OK && (ks_session_open(&r->src.rig, &r->src.plan, r->src.backend, &so, &r->sess, &err) ||
                             ks_session_start(r->sess, &err)))
        rc = KS_EXIT_FAIL;
    if (cached)
        fo.table_cache_dir = cache_dir;
    if (rc == KS_EXIT_OK && ks_fuse_sink_create(r->sess, poses, npose, &fo, &r->sink, &err))
        rc = err.code == KS_EINVAL ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    free(poses);
    if (rc != KS_EXIT_OK)
        return fail("fuse", &err, rc);
    r->n = ks_fuse_sink_device_count(r->sink);
    r->fill = -1;
    if (r->a.fill_arg && (r->fill = ks_fuse_sink_find(r->sink, r->a.fill_arg)) < 0)
        return ks_cli_usage_error("fuse", "--fill %s: no such device in the rig (give a serial or an index 0..%d)",
                                  r->a.fill_arg, r->n - 1);
    if (mkdir(r->a.out_dir, 0777) != 0 && errno != EEXIST) {
        ks_error e;
        ks_error_set(&e, KS_EIO, "cannot create the output directory %s: %s", r->a.out_dir, strerror(errno));
        return ks_cli_fail("fuse", &e, KS_CLI_RUN); /* an output that cannot be written: 1 (docs/cli.md) */
    }
    return KS_EXIT_OK;
}

/* Writes one fused set (PLY, and the filled depth with --fill) and sums its figures. */
static int write_set(fuse_run *r, const ks_session_set *set, ks_cloud *cloud, const ks_fuse_stats *fs,
                     const ks_fuse_set_info *info, uint16_t *filled)
{
    ks_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/fused-%06ld.ply", r->a.out_dir, r->sets);
    unsigned fields = (r->a.color ? KS_CLOUD_COLOR : 0) | (r->a.normals ? KS_CLOUD_NORMALS : 0);
    if (r->a.ply16 ? ks_ply_write_quantized(path, cloud, fields, r->a.voxel, &err) : ks_ply_write(path, cloud, fields, &err))
        return fail("fuse", &err, KS_EXIT_FAIL);
    json_array_append_new(r->outputs, json_string(path));
    if (r->fill >= 0 && (info->depth_mask & (1u << r->fill))) {
        size_t nf = 0;
        const ks_intrinsics *di = &ks_fuse_sink_device(r->sink, r->fill)->calibration.depth;
        snprintf(path, sizeof path, "%s/filled-%s-%06ld.png", r->a.out_dir, ks_fuse_sink_device(r->sink, r->fill)->serial,
                 r->sets);
        if (ks_fuse_sink_fill(r->sink, set, cloud, r->fill, filled, &nf, &err) ||
            ks_png_write_depth16(path, filled, di->width, di->height, &err))
            return fail("fuse", &err, KS_EXIT_FAIL);
        r->filled_total += nf;
        json_array_append_new(r->outputs, json_string(path));
    }
    for (int i = 0; i < r->n; i++)
        if (info->depth_mask & (1u << i)) {
            r->dev_sets[i]++;
            r->dev_points[i] += (double)fs->points[i];
            r->dev_colored[i] += (info->color_mask >> i) & 1u;
        }
    r->sum_voxels += (double)fs->voxels;
    r->sum_shared += (double)fs->voxels_shared;
    r->sum_ms += fs->ms_total;
    r->sets++;
    return KS_EXIT_OK;
}

/* The frame sets of the session through the sink, from the first complete one. */
static int fuse_sets(fuse_run *r)
{
    ks_error err = {0};
    ks_cloud cloud = {0};
    const ks_intrinsics *d0 = r->a.fill_arg ? &ks_fuse_sink_device(r->sink, r->fill)->calibration.depth : NULL;
    uint16_t *filled = d0 ? malloc((size_t)d0->width * (size_t)d0->height * sizeof *filled) : NULL;
    bool tty = ks_cli_is_tty(stderr) && !r->a.json, seen_complete = false;
    long taken = 0, skipped = 0;
    int rc = d0 && !filled ? KS_EXIT_FAIL : KS_EXIT_OK;
    ks_cli_stop_on_sigint(r->sess);
    while (rc == KS_EXIT_OK && (r->a.frames == 0 || r->sets < r->a.frames)) {
        ks_session_set set;
        ks_status st = ks_session_next(r->sess, &set, 2000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st == KS_EEOF)
            break;
        if (st) {
            rc = fail("fuse", &err, KS_EXIT_FAIL);
            break;
        }
        seen_complete |= set.set.complete;
        if (!seen_complete) /* warm-up: devices drop frames right after start */
            skipped++;
        else if (taken++ % r->a.step == 0) {
            ks_fuse_stats fs;
            ks_fuse_set_info info;
            if (ks_fuse_sink_run(r->sink, &set, &cloud, &fs, &info, &err))
                rc = fail("fuse", &err, KS_EXIT_FAIL);
            else
                rc = write_set(r, &set, &cloud, &fs, &info, filled);
            if (tty)
                fprintf(stderr, "\rfuse: frame set %ld: %d of %d devices, %zu points -> %zu voxels   ", r->sets,
                        info.present, r->n, fs.points_total, fs.voxels);
        }
        ks_session_set_release(&set);
    }
    if (tty)
        fputc('\n', stderr);
    ks_cli_stop_on_sigint(NULL);
    free(filled);
    ks_cloud_free(&cloud);
    if (rc == KS_EXIT_OK && r->sets == 0) {
        fprintf(stderr, "kinsync fuse: no complete frame set (%ld partial sets): do the recordings overlap in time, "
                        "and were the devices synchronized? (`kinsync align` shows the sets; --match-us widens the "
                        "tolerance)\n", skipped);
        rc = KS_EXIT_FAIL;
    }
    return rc;
}

static void print_summary(fuse_run *r)
{
    double ds = (double)r->sets;
    if (r->a.json) {
        json_t *jd = json_array();
        for (int i = 0; i < r->n; i++)
            json_array_append_new(jd, json_pack("{s:s, s:s, s:i, s:f, s:i}", "serial",
                                                ks_fuse_sink_device(r->sink, i)->serial, "recording", input_name(r, i),
                                                "frame_sets", (int)r->dev_sets[i], "points_mean",
                                                r->dev_sets[i] ? r->dev_points[i] / (double)r->dev_sets[i] : 0.0,
                                                "colored_sets", (int)r->dev_colored[i]));
        json_t *root = json_pack("{s:i, s:f, s:o, s:f, s:f, s:f, s:f, s:O}", "frame_sets", (int)r->sets, "voxel_mm",
                                 r->a.voxel, "devices", jd, "voxels_mean", r->sum_voxels / ds, "shared_voxels_mean",
                                 r->sum_shared / ds, "overlap_fraction",
                                 r->sum_voxels > 0 ? r->sum_shared / r->sum_voxels : 0.0, "ms_per_frame_set",
                                 r->sum_ms / ds, "outputs", r->outputs);
        if (r->fill >= 0) {
            json_object_set_new(root, "fill_device", json_string(ks_fuse_sink_device(r->sink, r->fill)->serial));
            json_object_set_new(root, "filled_pixels", json_integer((json_int_t)r->filled_total));
        }
        char *s = json_dumps(root, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(root);
        return;
    }
    printf("fused %ld frame set%s of %d devices, %.3g mm voxels -> %s/fused-*.ply\n", r->sets, r->sets == 1 ? "" : "s",
           r->n, r->a.voxel, r->a.out_dir);
    for (int i = 0; i < r->n; i++)
        printf("  %-14s %6ld frame sets, %9.0f points per set%s  (%s)\n", ks_fuse_sink_device(r->sink, i)->serial,
               r->dev_sets[i], r->dev_sets[i] ? r->dev_points[i] / (double)r->dev_sets[i] : 0.0,
               !r->a.color ? "" : r->dev_colored[i] == r->dev_sets[i] ? ", colored" : ", NOT all colored",
               base_name(input_name(r, i)));
    printf("  merged: %.0f voxels per set, %.0f seen by 2+ devices (overlap %.1f%%), %.1f ms per set\n",
           r->sum_voxels / ds, r->sum_shared / ds, r->sum_voxels > 0 ? 100.0 * r->sum_shared / r->sum_voxels : 0.0,
           r->sum_ms / ds);
    if (r->fill >= 0)
        printf("  fill: %zu pixels of %s's depth filled from the other devices (%.0f per set) -> %s/filled-%s-*.png\n",
               r->filled_total, ks_fuse_sink_device(r->sink, r->fill)->serial, (double)r->filled_total / ds,
               r->a.out_dir, ks_fuse_sink_device(r->sink, r->fill)->serial);
}

int cmd_fuse(int argc, char **argv)
{
    fuse_run r;
    memset(&r, 0, sizeof r);
    int rc = parse_args(argc, argv, &r.a);
    if (rc != KS_EXIT_OK)
        return rc < 0 ? KS_EXIT_OK : rc;
    r.outputs = json_array();
    rc = r.outputs ? open_run(&r) : KS_EXIT_FAIL;
    if (rc == KS_EXIT_OK && r.a.interleaved)
        rc = ks_cli_fuse_interleaved(r.sess, r.sink, r.a.out_dir, r.a.frames_given ? r.a.frames : 0, r.a.json);
    else if (rc == KS_EXIT_OK && (rc = fuse_sets(&r)) == KS_EXIT_OK)
        print_summary(&r);
    ks_fuse_sink_destroy(r.sink);
    if (r.sess) {
        ks_session_stop(r.sess);
        ks_session_close(r.sess);
    }
    ks_cli_rigrun_close(&r.src);
    json_decref(r.outputs);
    return rc;
}
