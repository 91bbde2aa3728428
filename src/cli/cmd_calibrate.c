/* kinsync calibrate: joint calibration of all devices of a rig from synchronized views of a board.
 *
 * Inputs: synchronized recordings (one .mkv per device; a rig file is recorded first), which run
 * through ks_source -> ks_session into the calibration sink (kinsync/rigcal_sink.h), or a frame-set
 * directory (kinsync/frameset.h, as `kinsync capture` and `kinsync align --export` write it), whose
 * sets go into the same sink. See docs/calibrate.md. */
#include <errno.h>
#include <jansson.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/record.h"
#include "kinsync/board.h"
#include "kinsync/calibration.h"
#include "kinsync/mkv.h"
#include "kinsync/frameset.h"
#include "kinsync/rigcal_sink.h"
#include "kinsync/rigcalib.h"
#include "kinsync/source.h"
#include "util/fileio.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync calibrate (rig.yaml | RECORDING.mkv... | FRAMESET_DIR) --board BOARD.yaml\n"
            "                         [-o rig-calibration.json] [--reference SERIAL] [--camera color|ir]\n"
            "                         [--step N] [--match-us US] [--loss huber|cauchy|none] [--min-corners N] [--json]\n"
            "\n"
            "Calibrates every device of a rig at once from synchronized views of an AprilGrid board\n"
            "(kinsync board): tags are detected in every image, every device pose and every board pose\n"
            "are adjusted together (intrinsics fixed from each device's factory calibration), and the\n"
            "poses of the depth and color cameras in the rig frame (the reference device's depth camera)\n"
            "are written with their uncertainty. See docs/calibrate.md and docs/rig-calibration.md.\n"
            "\n"
            "rig.yaml: a live rig (real devices if attached, else its simulation): it is recorded for\n"
            "--seconds (default 5) into --recordings DIR (default calibration-recordings), then\n"
            "calibrated from those recordings.\n"
            "RECORDING.mkv: one synchronized recording per device (k4arecorder or kinsync record).\n"
            "The recordings run through the session like a live rig: the frame sets are those\n"
            "`kinsync verify` and `kinsync align` form (timestamp convention and planned delays removed,\n"
            "within --match-us, default a quarter frame period); every --step-th set from the first\n"
            "complete one is used (default: about 120 frame sets). With depth, the depth of the used\n"
            "sets is checked against the calibrated board plane (depth cross-check).\n"
            "\n"
            "FRAMESET_DIR: a frame-set directory as `kinsync capture --out DIR` and `kinsync align\n"
            "--export DIR` write it (index.json naming the devices and sets, each device's calibration,\n"
            "the images of every set; docs/frameset-dir.md). Its sets go through the same calibration\n"
            "(step, depth cross-check) as the recordings they came from.\n"
            "\n"
            "  --board FILE       board description (required)\n"
            "  -o, --output FILE  where to write the result (default rig-calibration.json)\n"
            "  --reference SERIAL device whose depth camera is the rig frame (default: the first)\n"
            "  --camera NAME      search the color (default) or the IR images\n"
            "  --step N           use every N-th frame set\n"
            "  --match-us US      recordings: timestamp tolerance between devices, microseconds\n"
            "  --loss NAME        robust loss: huber (default), cauchy, none\n"
            "  --min-corners N    corners a view needs to count (default 8)\n"
            "  --seconds N        rig.yaml: how long to record the live rig (default 5)\n"
            "  --recordings DIR   rig.yaml: where its recordings go (default calibration-recordings)\n"
            "  --json             machine-readable report on stdout\n"
            "  -h, --help         this text\n"
            "\n"
            "Exit status: 0 calibrated, 1 the data cannot calibrate the rig (e.g. a device never shares\n"
            "a frame set with the others; the message says which), 2 usage error or unreadable input.\n");
}

typedef struct dev_in {
    char dir[1024];
    char serial[64];
    bool ir;               /* observed camera is the depth/IR camera */
    int width, height;
    int images, with_board;
} dev_in;

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcasecmp(name + n - e, ext);
}

static void progress(void *ctx, int it, double rms)
{
    (void)ctx;
    if (ks_cli_is_tty(stderr))
        fprintf(stderr, "\rcalibrate: iteration %d, reprojection RMS %.4f px   ", it, rms);
}

typedef struct calib_run {
    ks_board board;
    ks_rigcal_options ro;
    bool json;
    int nd;
    dev_in *devs;
    ks_rigcal_device *rdev;
    /* the session's (or a frame-set directory's) frame sets into the calibration sink */
    ks_cli_rigrun src;
    ks_session *sess;
    ks_rigcal_sink *sink;
    bool use_ir;
    int step;
    int match_us;
} calib_run;

static void report_device(const calib_run *cr, const dev_in *d)
{
    if (!cr->json)
        fprintf(stderr, "%scalibrate: device %s (%s %dx%d): %d images, board in %d\n",
                ks_cli_is_tty(stderr) ? "\r" : "", d->serial, d->ir ? "IR" : "color", d->width, d->height, d->images,
                d->with_board);
}

static void sink_progress(void *ctx, int sets, int device, int images, int with_board)
{
    const calib_run *cr = ctx;
    if (ks_cli_is_tty(stderr) && !cr->json)
        fprintf(stderr, "\rcalibrate: %d frame sets; %s: board in %d of %d   ", sets, cr->rdev[device].serial,
                with_board, images);
}

/* A frame-set directory (kinsync/frameset.h): its sets, in order, into the same calibration sink
 * the session's sets go to, so the directory of a take calibrates exactly as the take does. */
static int collect_dir(calib_run *cr, const char *root)
{
    ks_error err = {0};
    ks_frameset_dir *fd = NULL;
    if (ks_frameset_dir_open(root, &fd, &err) != KS_OK) {
        ks_cli_print_error("calibrate", &err);
        return KS_EXIT_USAGE;
    }
    int rc = KS_EXIT_OK;
    cr->nd = ks_frameset_dir_device_count(fd);
    cr->rdev = calloc((size_t)cr->nd, sizeof *cr->rdev);
    cr->devs = calloc((size_t)cr->nd, sizeof *cr->devs);
    ks_frameset_device dv[KS_MATCH_MAX_DEVICES];
    for (int i = 0; i < cr->nd; i++)
        dv[i] = *ks_frameset_dir_device(fd, i);
    ks_rigcal_sink_options o = {.use_ir = cr->use_ir, .step = cr->step, .min_corners = cr->ro.min_corners_per_view,
                                .progress = sink_progress, .progress_ctx = cr,
                                .expected_sets = ks_frameset_dir_set_count(fd)};
    if (!cr->rdev || !cr->devs)
        rc = KS_EXIT_FAIL;
    else if (cr->nd == 1) {
        fprintf(stderr, "kinsync calibrate: %s holds one device: a rig calibration places two or more devices in "
                        "one frame\n", root);
        rc = KS_EXIT_USAGE;
    } else if (ks_rigcal_sink_create_devices(dv, cr->nd, &cr->board, &o, &cr->sink, &err)) {
        ks_error_prefix(&err, err.code, "%s", root);
        ks_cli_print_error("calibrate", &err);
        rc = KS_EXIT_USAGE;
    }
    for (int i = 0; rc == KS_EXIT_OK && i < cr->nd; i++)
        cr->rdev[i] = *ks_rigcal_sink_device(cr->sink, i);
    for (size_t k = 0; rc == KS_EXIT_OK && k < ks_frameset_dir_set_count(fd); k++) {
        ks_session_set set;
        if (ks_frameset_dir_load(fd, k, &set, &err) != KS_OK || ks_rigcal_sink_add(cr->sink, &set, &err) != KS_OK) {
            ks_cli_print_error("calibrate", &err);
            rc = KS_EXIT_USAGE;
        }
        ks_session_set_release(&set);
    }
    for (int i = 0; rc == KS_EXIT_OK && i < cr->nd; i++) {
        dev_in *d = &cr->devs[i];
        snprintf(d->serial, sizeof d->serial, "%s", cr->rdev[i].serial);
        snprintf(d->dir, sizeof d->dir, "%s", root);
        d->ir = cr->use_ir;
        d->width = cr->rdev[i].intrinsics.width;
        d->height = cr->rdev[i].intrinsics.height;
        ks_rigcal_sink_counts(cr->sink, i, &d->images, &d->with_board);
        report_device(cr, d);
    }
    ks_frameset_dir_close(fd);
    return rc;
}

/* Frame sets the recordings hold (for the default step), from the first one's duration; 0 unknown. */
static uint64_t expected_sets(const char *path, ks_fps fps)
{
    ks_mkv_reader *r = NULL;
    ks_error e;
    if (ks_mkv_reader_open(path, &r, &e) != KS_OK)
        return 0;
    const ks_mkv_info *in = ks_mkv_reader_info(r);
    double us = in->duration * (double)(in->timecode_scale ? in->timecode_scale : 1000) / 1000.0;
    ks_mkv_reader_close(r);
    return us > 0 ? (uint64_t)(us / ks_frame_period_exact_us(fps)) + 1 : 0;
}

/* Recordings (or a live rig): its frame sets from the session into the calibration sink. */
static int collect_session(calib_run *cr, char **files, int n)
{
    ks_error err = {0};
    int rc = ks_cli_source_open((const char *const *)files, n, "auto", true, &cr->src, &err);
    ks_session_options so;
    ks_session_options_init(&so);
    so.tolerance_us = cr->match_us;
    so.allow_firmware_mismatch = true;
    if (rc == KS_EXIT_OK && (ks_session_open(&cr->src.rig, &cr->src.plan, cr->src.backend, &so, &cr->sess, &err) ||
                             ks_session_start(cr->sess, &err)))
        rc = err.code == KS_EINVAL ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    cr->nd = cr->sess ? ks_session_device_count(cr->sess) : 0;
    cr->rdev = calloc((size_t)(cr->nd ? cr->nd : 1), sizeof *cr->rdev);
    cr->devs = calloc((size_t)(cr->nd ? cr->nd : 1), sizeof *cr->devs);
    if (rc == KS_EXIT_OK && (!cr->rdev || !cr->devs))
        return KS_EXIT_FAIL;
    ks_rigcal_sink_options o = {.use_ir = cr->use_ir, .step = cr->step, .min_corners = cr->ro.min_corners_per_view,
                                .progress = sink_progress, .progress_ctx = cr};
    o.expected_sets = cr->src.recordings ? expected_sets(files[0], cr->src.rig.camera.fps) : 0;
    if (rc == KS_EXIT_OK && ks_rigcal_sink_create(cr->sess, &cr->board, &o, &cr->sink, &err))
        rc = err.code == KS_EINVAL || err.code == KS_ENOTFOUND ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    for (int i = 0; rc == KS_EXIT_OK && i < cr->nd; i++)
        cr->rdev[i] = *ks_rigcal_sink_device(cr->sink, i);
    if (rc == KS_EXIT_OK && ks_rigcal_sink_collect(cr->sink, cr->sess, &err))
        rc = KS_EXIT_FAIL;
    if (rc != KS_EXIT_OK) {
        ks_cli_print_error("calibrate", &err);
        return rc;
    }
    for (int i = 0; i < cr->nd; i++) {
        dev_in *d = &cr->devs[i];
        const ks_device_config *cfg = ks_device_running_config(ks_session_device(cr->sess, i));
        snprintf(d->serial, sizeof d->serial, "%s", cr->rdev[i].serial);
        snprintf(d->dir, sizeof d->dir, "%s", files[i < n ? i : 0]);
        d->ir = cr->use_ir;
        d->width = cr->rdev[i].intrinsics.width;
        d->height = cr->rdev[i].intrinsics.height;
        ks_rigcal_sink_counts(cr->sink, i, &d->images, &d->with_board);
        report_device(cr, d);
        if (!d->with_board && cfg)
            fprintf(stderr, "kinsync calibrate: %s: the board was found in none of its %d frame sets%s\n", d->serial,
                    d->images, d->images ? "" : "; were the devices recording synchronized? (`kinsync align`)");
    }
    return KS_EXIT_OK;
}

/* Records a live rig (real devices if attached, else the simulator in virtual time) for `seconds`
 * into dir, one .mkv per device, through the orchestrated start. Returns the number of files, or
 * minus an exit status. */
static int record_live(const char *rig_path, const char *dir, double seconds, bool quiet,
                       char paths[][512])
{
    ks_cli_rigrun r;
    ks_error err;
    int rc = ks_cli_rigrun_open(rig_path, "auto", true, &r, &err);
    if (rc != KS_EXIT_OK) {
        ks_cli_print_error("calibrate", &err);
        ks_cli_rigrun_close(&r);
        return -rc;
    }
    ks_device_config configs[KS_RIG_MAX_DEVICES];
    for (int i = 0; i < r.rig.device_count; i++)
        configs[i] = r.plan.devices[i].config;
    ks_record_run_options ro;
    memset(&ro, 0, sizeof ro);
    ro.seconds = seconds;
    ro.recorder.overwrite = true;
    ks_record_result *res = calloc(1, sizeof *res);
    if (!quiet)
        fprintf(stderr, "calibrate: recording %s for %.1f s into %s (%s)\n", r.rig.name, seconds, dir,
                r.simulated ? "simulator" : "devices");
    ks_status st = res ? ks_record_run(r.backend, &r.rig, configs, dir, &ro, res, &err)
                       : ks_error_set(&err, KS_ENOMEM, "out of memory");
    int n = 0;
    if (st == KS_OK)
        for (int i = 0; i < res->device_count; i++)
            snprintf(paths[n++], 512, "%s", res->paths[i]);
    else
        ks_cli_print_error("calibrate", &err);
    free(res);
    ks_cli_rigrun_close(&r);
    return st == KS_OK ? n : -KS_EXIT_FAIL;
}

typedef struct calib_args {
    double live_seconds;
    const char *live_dir, *board_path, *out_path, *ref_serial;
} calib_args;

static int parse_args(int argc, char **argv, calib_run *cr, calib_args *a)
{
    static const struct option opts[] = {{"board", required_argument, 0, 'b'},    {"output", required_argument, 0, 'o'},
                                         {"reference", required_argument, 0, 'r'}, {"loss", required_argument, 0, 'l'},
                                         {"min-corners", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
                                         {"camera", required_argument, 0, 'c'},   {"step", required_argument, 0, 's'},
                                         {"match-us", required_argument, 0, 'u'},  {"help", no_argument, 0, 'h'},
                                         {"seconds", required_argument, 0, 'S'},   {"recordings", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    *a = (calib_args){5, "calibration-recordings", NULL, "rig-calibration.json", NULL};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end;
        long v = 0;
        if (strchr("msu", c)) {
            v = strtol(optarg, &end, 10);
            long lo = c == 'm' ? 4 : 1, hi = c == 'u' ? 10000000 : c == 's' ? 1000000 : 100000;
            if (*end || v < lo || v > hi)
                return ks_cli_usage_error("calibrate", "--%s %s: give a number from %ld to %ld",
                                          c == 'm' ? "min-corners" : c == 's' ? "step" : "match-us", optarg, lo, hi);
        }
        switch (c) {
        case 'b': a->board_path = optarg; break;
        case 'o': a->out_path = optarg; break;
        case 'r': a->ref_serial = optarg; break;
        case 'l':
            if (!strcmp(optarg, "huber"))
                cr->ro.loss = KS_LOSS_HUBER;
            else if (!strcmp(optarg, "cauchy"))
                cr->ro.loss = KS_LOSS_CAUCHY;
            else if (!strcmp(optarg, "none"))
                cr->ro.loss = KS_LOSS_NONE;
            else
                return ks_cli_usage_error("calibrate", "--loss %s: use huber, cauchy or none", optarg);
            break;
        case 'm': cr->ro.min_corners_per_view = (int)v; break;
        case 's': cr->step = (int)v; break;
        case 'u': cr->match_us = (int)v; break;
        case 'c':
            if (strcmp(optarg, "color") && strcmp(optarg, "ir"))
                return ks_cli_usage_error("calibrate", "--camera %s: use color or ir", optarg);
            cr->use_ir = !strcmp(optarg, "ir");
            break;
        case 'S':
            a->live_seconds = strtod(optarg, &end);
            if (*end || !(a->live_seconds > 0) || a->live_seconds > 3600)
                return ks_cli_usage_error("calibrate", "--seconds %s: give a positive number of seconds", optarg);
            break;
        case 'R': a->live_dir = optarg; break;
        case 'j': cr->json = true; break;
        case 'h': usage(stdout); return -1;
        default: return ks_cli_usage_error("calibrate", "unknown option");
        }
    }
    if (!a->board_path)
        return ks_cli_usage_error("calibrate", "--board BOARD.yaml is required (see kinsync board)");
    if (optind >= argc)
        return ks_cli_usage_error("calibrate", "expected recordings (one .mkv per device) or a frame-set directory");
    return KS_EXIT_OK;
}

/* JSON has no NaN: a figure that cannot be computed (no views, nothing triangulated) is -1 */
static double fin(double x)
{
    return isfinite(x) ? x : -1.0;
}

static void print_result(const calib_run *cr, const ks_rigcal_result *res, const char *out_path)
{
    const int nd = cr->nd;
    if (cr->json) {
        json_t *arr = json_array();
        for (int i = 0; i < nd; i++) {
            const ks_rigcal_device_result *d = &res->devices[i];
            json_t *o = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:i}", "serial", cr->rdev[i].serial, "views",
                                  d->views, "corners", d->corners, "rms_px", fin(d->rms_px),
                                  "rotation_sigma_deg", fin(d->rotation_sigma_deg), "position_sigma_mm",
                                  fin(d->position_sigma_mm), "ray_rms_mm", fin(d->ray_rms_mm),
                                  "depth_plane_points", d->depth_plane_points);
            if (d->depth_plane_points > 0) {
                json_object_set_new(o, "depth_plane_mean_mm", json_real(fin(d->depth_plane_mean_mm)));
                json_object_set_new(o, "depth_plane_rms_mm", json_real(fin(d->depth_plane_rms_mm)));
            }
            json_array_append_new(arr, o);
        }
        json_t *o = json_pack("{s:s, s:f, s:i, s:i, s:i, s:f, s:o}", "output", out_path, "rms_px", fin(res->rms_px),
                              "frame_sets", res->frame_count, "rejected_views", res->rejected_views,
                              "triangulated_points", res->triangulated_points, "board_fit_rms_mm",
                              fin(res->board_fit_rms_mm), "devices", arr);
        char *js = json_dumps(o, JSON_INDENT(2));
        if (js)
            printf("%s\n", js);
        free(js);
        json_decref(o);
        return;
    }
    printf("rig calibration: %d devices, %d frame sets, %d corners, reprojection RMS %.3f px (from %.3f), "
           "%d iterations, %.2f s\n",
           nd, res->frame_count, res->used_obs, res->rms_px, res->initial_rms_px, res->iterations, res->solve_seconds);
    if (res->rejected_views)
        printf("%d views disagreed with the rest (a wrong detection or a frame set that is not synchronized) and "
               "were left out\n", res->rejected_views);
    printf("%-16s %5s %7s %8s %10s %9s %8s\n", "device", "views", "corners", "rms px", "sigma deg", "sigma mm",
           "rays mm");
    for (int i = 0; i < nd; i++) {
        const ks_rigcal_device_result *d = &res->devices[i];
        char rms[16] = "       -", rays[16] = "       -"; /* a device without views has no RMS */
        if (isfinite(d->rms_px))
            snprintf(rms, sizeof rms, "%8.3f", d->rms_px);
        if (isfinite(d->ray_rms_mm))
            snprintf(rays, sizeof rays, "%8.3f", d->ray_rms_mm);
        printf("%-16s %5d %7d %s %10.4f %9.3f %s%s\n", cr->rdev[i].serial, d->views, d->corners, rms,
               d->rotation_sigma_deg, d->position_sigma_mm, rays, i == res->reference_device ? "  (reference: rig frame)" : "");
    }
    if (res->triangulated_points > 0 && isfinite(res->board_fit_rms_mm))
        printf("cross-check: %d corners triangulated from several devices fit the board model to %.3f mm RMS\n",
               res->triangulated_points, res->board_fit_rms_mm);
    else
        printf("cross-check: no corner was seen by two devices at once (nothing to triangulate)\n");
    for (int i = 0; i < nd; i++)
        if (res->devices[i].depth_plane_points > 0)
            printf("depth check %s: %d depth pixels on the board, %.2f mm behind the calibrated board plane "
                   "on average, RMS %.2f mm\n",
                   cr->rdev[i].serial, res->devices[i].depth_plane_points, res->devices[i].depth_plane_mean_mm,
                   res->devices[i].depth_plane_rms_mm);
    printf("wrote %s\n", out_path);
}

/* Solves the collected views, runs the depth cross-check, writes and prints the result. */
static int solve(calib_run *cr, const calib_args *a)
{
    ks_error err = {0};
    if (a->ref_serial) {
        cr->ro.reference_device = -1;
        for (int i = 0; i < cr->nd; i++)
            if (!strcmp(cr->rdev[i].serial, a->ref_serial))
                cr->ro.reference_device = i;
        if (cr->ro.reference_device < 0)
            return ks_cli_usage_error("calibrate", "--reference %s: no such device in the input", a->ref_serial);
    }
    cr->ro.progress = progress;
    ks_rigcal_problem prob;
    ks_rigcal_sink_problem(cr->sink, &prob);
    ks_rigcal_result res;
    ks_status st = prob.frame_count > 0 ? ks_rigcal_solve(&prob, &cr->ro, &res, &err)
                                        : ks_error_set(&err, KS_EINVAL, "the board was found in no image; check the "
                                                                        "board file matches the printed board (family, "
                                                                        "first_id)");
    if (ks_cli_is_tty(stderr))
        fprintf(stderr, "\r%60s\r", "");
    if (st) {
        ks_cli_print_error("calibrate", &err);
        return KS_EXIT_FAIL;
    }
    ks_rigcal_sink_depth_check(cr->sink, &res);
    if ((st = ks_rigcal_write_json(&prob, &res, a->out_path, &err)))
        ks_cli_print_error("calibrate", &err);
    else
        print_result(cr, &res, a->out_path);
    ks_rigcal_result_free(&res);
    return st ? KS_EXIT_FAIL : KS_EXIT_OK;
}

int cmd_calibrate(int argc, char **argv)
{
    calib_run cr;
    memset(&cr, 0, sizeof cr);
    ks_rigcal_options_default(&cr.ro);
    calib_args a;
    int rc = parse_args(argc, argv, &cr, &a);
    if (rc != KS_EXIT_OK)
        return rc < 0 ? KS_EXIT_OK : rc;
    char **in = argv + optind;
    int nin = argc - optind;
    /* a live rig (devices or the simulator): record it first, then calibrate the recordings */
    char live_paths[KS_RIG_MAX_DEVICES][512];
    char *live_argv[KS_RIG_MAX_DEVICES] = {0};
    if (nin == 1 && (has_ext(in[0], ".yaml") || has_ext(in[0], ".yml"))) {
        int n = record_live(in[0], a.live_dir, a.live_seconds, cr.json, live_paths);
        if (n < 0)
            return -n;
        for (int i = 0; i < n; i++)
            live_argv[i] = live_paths[i];
        in = live_argv;
        nin = n;
    }
    struct stat stt;
    bool dir = nin == 1 && stat(in[0], &stt) == 0 && S_ISDIR(stt.st_mode);
    if (!dir && !ks_source_is_recordings((const char *const *)in, nin) && !has_ext(in[0], ".mkv"))
        return ks_cli_usage_error("calibrate", "%s is not a recording or a frame-set directory; give either .mkv "
                                               "recordings (one per device) or one frame-set directory", in[0]);
    /* one device has nothing to be placed against: say so before any work (it printed nan) */
    if (!dir && nin == 1)
        return ks_cli_usage_error("calibrate", "%s is one recording: a rig calibration places two or more devices in "
                                               "one frame; give one recording per device of the rig (one device's "
                                               "cameras are related by its factory calibration already)", in[0]);
    ks_error err = {0};
    ks_status st = ks_board_load(a.board_path, &cr.board, &err);
    if (st)
        return ks_cli_fail("calibrate", &err, KS_CLI_INPUT);
    rc = dir ? collect_dir(&cr, in[0]) : collect_session(&cr, in, nin);
    if (rc == KS_EXIT_OK)
        rc = solve(&cr, &a);
    ks_rigcal_sink_destroy(cr.sink);
    if (cr.sess) {
        ks_session_stop(cr.sess);
        ks_session_close(cr.sess);
    }
    ks_cli_rigrun_close(&cr.src);
    free(cr.devs);
    free(cr.rdev);
    return rc;
}
