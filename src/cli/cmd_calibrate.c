/* kinsync calibrate: joint calibration of all devices of a rig from synchronized views of a board.
 *
 * Inputs: synchronized recordings (one .mkv per device; a rig file is recorded first), which run
 * through ks_source -> ks_session into the calibration sink (kinsync/rigcal_sink.h), or a frame-set
 * directory (one subdirectory per device with its calibration.json and one image per frame set
 * named by the frame set number). See docs/calibrate.md. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/record.h"
#include "kinsync/board.h"
#include "kinsync/calibration.h"
#include "kinsync/mkv.h"
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
            "FRAMESET_DIR holds one directory per device with its calibration.json and one image per\n"
            "synchronized frame set, named by the frame set number (0000.jpg, 0001.jpg, ...): color\n"
            "images (JPEG as recorded, or PNG) of any color mode, or IR images (8/16-bit PNG) of a depth\n"
            "mode; the mode is recognized from the image size. The same number in two directories\n"
            "means the same instant.\n"
            "\n"
            "  --board FILE       board description (required)\n"
            "  -o, --output FILE  where to write the result (default rig-calibration.json)\n"
            "  --reference SERIAL device whose depth camera is the rig frame (default: the first)\n"
            "  --camera NAME      recordings: search the color (default) or the IR images\n"
            "  --step N           recordings: use every N-th frame set\n"
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
    char *calib_json;
    size_t calib_len;
    bool have_mode;
    bool ir;               /* observed camera is the depth/IR camera */
    int width, height;
    int images, with_board;
} dev_in;

static char *read_file(const char *path, size_t *len)
{
    char *b = NULL;
    ks_file_read_all(path, 256u << 20, &b, len, NULL);
    return b;
}

static int frame_number(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *end = dot ? dot : name + strlen(name);
    const char *p = end;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == end || end - p > 8)
        return -1;
    return atoi(p);
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcasecmp(name + n - e, ext);
}

/* Loads a JPEG (kept compressed, as an MJPG frame) or a PNG (to 8-bit gray). */
static ks_status load_image(const char *path, ks_image *img, uint8_t **owned, ks_error *err)
{
    memset(img, 0, sizeof *img);
    *owned = NULL;
    if (has_ext(path, ".jpg") || has_ext(path, ".jpeg")) {
        size_t len;
        char *b = read_file(path, &len);
        if (!b)
            return ks_error_set(err, KS_EIO, "%s: cannot read (%s)", path, strerror(errno));
        tjhandle tj = tjInitDecompress();
        int w = 0, h = 0, sub = 0, cs = 0;
        int rc = tj ? tjDecompressHeader3(tj, (const unsigned char *)b, (unsigned long)len, &w, &h, &sub, &cs) : -1;
        if (tj)
            tjDestroy(tj);
        if (rc != 0) {
            free(b);
            return ks_error_set(err, KS_EPARSE, "%s: not a readable JPEG", path);
        }
        img->format = KS_FORMAT_MJPG;
        img->width = w;
        img->height = h;
        img->data = (uint8_t *)b;
        img->size = len;
        *owned = (uint8_t *)b;
        return KS_OK;
    }
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return ks_error_set(err, KS_EPARSE, "%s: not a readable PNG (%s)", path, pi.message);
    bool sixteen = (pi.format & PNG_FORMAT_FLAG_LINEAR) && !(pi.format & PNG_FORMAT_FLAG_COLOR);
    pi.format = sixteen ? PNG_FORMAT_LINEAR_Y : PNG_FORMAT_GRAY;
    size_t bytes = PNG_IMAGE_SIZE(pi);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf || !png_image_finish_read(&pi, NULL, buf, 0, NULL)) {
        free(buf);
        png_image_free(&pi);
        return ks_error_set(err, KS_EPARSE, "%s: PNG does not decode", path);
    }
    img->format = sixteen ? KS_FORMAT_IR16 : KS_FORMAT_CUSTOM8;
    img->width = (int)pi.width;
    img->height = (int)pi.height;
    img->stride = (int)PNG_IMAGE_ROW_STRIDE(pi) * (sixteen ? 2 : 1);
    img->data = buf;
    img->size = bytes;
    *owned = buf;
    return KS_OK;
}

/* Which camera took an image of this size. */
static bool mode_for_size(int w, int h, bool *ir, ks_color_resolution *color, ks_depth_mode *depth)
{
    for (int r = KS_COLOR_720P; r < KS_COLOR_RESOLUTION_COUNT; r++) {
        const ks_color_resolution_info *ci = ks_color_resolution_get((ks_color_resolution)r);
        if (ci && ci->width == w && ci->height == h) {
            *ir = false;
            *color = (ks_color_resolution)r;
            *depth = KS_DEPTH_NFOV_UNBINNED;
            return true;
        }
    }
    for (int d = KS_DEPTH_NFOV_2X2BINNED; d < KS_DEPTH_MODE_COUNT; d++) {
        const ks_depth_mode_info *di = ks_depth_mode_get((ks_depth_mode)d);
        if (di && di->width == w && di->height == h) {
            *ir = true;
            *depth = (ks_depth_mode)d;
            *color = KS_COLOR_720P;
            return true;
        }
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory (names only, malloc'd). */
static char **list_dir(const char *path, int *n)
{
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, sizeof(char *) * (size_t)cap);
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, (size_t)*n, sizeof(char *), cmp_str);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
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
    ks_rigcal_collector *col;      /* frame-set directory */
    /* recordings / live: the session's frame sets into the calibration sink */
    ks_cli_rigrun src;
    ks_session *sess;
    ks_rigcal_sink *sink;
    bool use_ir;
    int step;
    int match_us;
} calib_run;

/* Sets the observed camera of device i from its calibration and the image size. */
static int set_device_camera(calib_run *cr, int i, int w, int h, const char *what)
{
    dev_in *d = &cr->devs[i];
    ks_color_resolution res;
    ks_depth_mode dm;
    ks_error err = {0};
    if (!mode_for_size(w, h, &d->ir, &res, &dm)) {
        fprintf(stderr, "kinsync calibrate: %s: %dx%d is not the size of an Azure Kinect color or depth mode\n", what,
                w, h);
        return KS_EXIT_USAGE;
    }
    ks_calibration cal;
    if (ks_calibration_from_json(d->calib_json, d->calib_len, dm, res, &cal, &err)) {
        ks_error_prefix(&err, err.code, "%s: calibration", what);
        ks_cli_print_error("calibrate", &err);
        return KS_EXIT_USAGE;
    }
    snprintf(cr->rdev[i].serial, sizeof cr->rdev[i].serial, "%s", d->serial);
    cr->rdev[i].intrinsics = d->ir ? cal.depth : cal.color;
    cr->rdev[i].depth_to_color = cal.depth_to_color;
    if (d->ir)
        ks_extrinsics_identity(&cr->rdev[i].depth_to_camera);
    else
        cr->rdev[i].depth_to_camera = cal.depth_to_color;
    d->have_mode = true;
    d->width = w;
    d->height = h;
    return KS_EXIT_OK;
}

static void serial_from_calibration(dev_in *d)
{
    json_t *j = json_loadb(d->calib_json, d->calib_len, 0, NULL);
    if (!j && d->calib_len > 3) /* byte-order mark */
        j = json_loadb(d->calib_json + 3, d->calib_len - 3, 0, NULL);
    const char *sid = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "CalibrationInformation"), "Metadata"), "SerialId"));
    if (sid && *sid)
        snprintf(d->serial, sizeof d->serial, "%s", sid);
    json_decref(j);
}

static void report_device(const calib_run *cr, const dev_in *d)
{
    if (!cr->json)
        fprintf(stderr, "%scalibrate: device %s (%s %dx%d): %d images, board in %d\n",
                ks_cli_is_tty(stderr) ? "\r" : "", d->serial, d->ir ? "IR" : "color", d->width, d->height, d->images,
                d->with_board);
}

static int collect_dir(calib_run *cr, const char *root)
{
    struct stat stt;
    ks_error err = {0};
    int nsub = 0, rc = KS_EXIT_OK;
    char **subs = list_dir(root, &nsub);
    cr->devs = calloc((size_t)(nsub ? nsub : 1), sizeof *cr->devs);
    cr->rdev = calloc((size_t)(nsub ? nsub : 1), sizeof *cr->rdev);
    if (!cr->devs || !cr->rdev) {
        free_list(subs, nsub);
        return KS_EXIT_FAIL;
    }
    for (int i = 0; i < nsub; i++) {
        dev_in *d = &cr->devs[cr->nd];
        snprintf(d->dir, sizeof d->dir, "%s/%s", root, subs[i]);
        if (stat(d->dir, &stt) != 0 || !S_ISDIR(stt.st_mode))
            continue;
        char cpath[1100];
        snprintf(cpath, sizeof cpath, "%s/calibration.json", d->dir);
        d->calib_json = read_file(cpath, &d->calib_len);
        if (!d->calib_json) {
            fprintf(stderr, "kinsync calibrate: %s: no calibration.json; copy the device's factory calibration "
                            "there (k4arecorder attaches it to every recording)\n", d->dir);
            free_list(subs, nsub);
            return KS_EXIT_USAGE;
        }
        snprintf(d->serial, sizeof d->serial, "%s", subs[i]);
        serial_from_calibration(d);
        cr->nd++;
    }
    free_list(subs, nsub);
    if (cr->nd == 0) {
        fprintf(stderr, "kinsync calibrate: %s has no device directories (DIR/<serial>/calibration.json + images)\n",
                root);
        return KS_EXIT_USAGE;
    }
    if (cr->nd == 1) {
        fprintf(stderr, "kinsync calibrate: %s holds one device directory: a rig calibration places two or more "
                        "devices in one frame; add a directory per device of the rig\n", root);
        return KS_EXIT_USAGE;
    }
    for (int i = 0; i < cr->nd && rc == KS_EXIT_OK; i++) {
        dev_in *d = &cr->devs[i];
        int nf = 0;
        char **files = list_dir(d->dir, &nf);
        for (int k = 0; k < nf && rc == KS_EXIT_OK; k++) {
            const char *name = files[k];
            if (!has_ext(name, ".jpg") && !has_ext(name, ".jpeg") && !has_ext(name, ".png"))
                continue;
            int fnum = frame_number(name);
            char path[2200];
            snprintf(path, sizeof path, "%s/%s", d->dir, name);
            if (fnum < 0) {
                fprintf(stderr, "kinsync calibrate: %s: no frame set number in the name; skipped\n", path);
                continue;
            }
            ks_image img;
            uint8_t *owned;
            if (load_image(path, &img, &owned, &err)) {
                ks_cli_print_error("calibrate", &err);
                rc = KS_EXIT_USAGE;
                break;
            }
            if (!d->have_mode) {
                rc = set_device_camera(cr, i, img.width, img.height, path);
            } else if (img.width != d->width || img.height != d->height) {
                fprintf(stderr, "kinsync calibrate: %s: %dx%d, but the other images of this device are %dx%d; one "
                                "camera and mode per device\n", path, img.width, img.height, d->width, d->height);
                rc = KS_EXIT_USAGE;
            }
            int found = 0;
            if (rc == KS_EXIT_OK && ks_rigcal_collector_add_image(cr->col, i, fnum, &img, &found, &err)) {
                ks_error_prefix(&err, err.code, "%s", path);
                ks_cli_print_error("calibrate", &err);
                rc = KS_EXIT_USAGE;
            }
            free(owned);
            d->images++;
            d->with_board += found >= cr->ro.min_corners_per_view;
            if (ks_cli_is_tty(stderr))
                fprintf(stderr, "\rcalibrate: device %d/%d (%s): %d images, board in %d   ", i + 1, cr->nd, d->serial,
                        d->images, d->with_board);
        }
        free_list(files, nf);
        if (rc != KS_EXIT_OK)
            break;
        report_device(cr, d);
        if (!d->have_mode) {
            fprintf(stderr, "kinsync calibrate: %s: no images (0000.jpg, 0001.png, ...)\n", d->dir);
            rc = KS_EXIT_USAGE;
        }
    }
    return rc;
}

static void sink_progress(void *ctx, int sets, int device, int images, int with_board)
{
    const calib_run *cr = ctx;
    if (ks_cli_is_tty(stderr) && !cr->json)
        fprintf(stderr, "\rcalibrate: %d frame sets; %s: board in %d of %d   ", sets, cr->rdev[device].serial,
                with_board, images);
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
    if (cr->sink)
        ks_rigcal_sink_problem(cr->sink, &prob);
    else
        ks_rigcal_collector_problem(cr->col, &cr->board, cr->rdev, cr->nd, &prob);
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
    if (cr->sink)
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
    if (dir && (st = ks_rigcal_collector_create(&cr.board, NULL, &cr.col, &err))) {
        ks_cli_print_error("calibrate", &err);
        return KS_EXIT_FAIL;
    }
    rc = dir ? collect_dir(&cr, in[0]) : collect_session(&cr, in, nin);
    if (rc == KS_EXIT_OK)
        rc = solve(&cr, &a);
    ks_rigcal_sink_destroy(cr.sink);
    if (cr.sess) {
        ks_session_stop(cr.sess);
        ks_session_close(cr.sess);
    }
    ks_cli_rigrun_close(&cr.src);
    ks_rigcal_collector_destroy(cr.col);
    for (int i = 0; cr.devs && i < cr.nd; i++)
        free(cr.devs[i].calib_json);
    free(cr.devs);
    free(cr.rdev);
    return rc;
}
