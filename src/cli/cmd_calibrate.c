/* kinsync calibrate: joint calibration of all devices of a rig from synchronized views of a board.
 *
 * Inputs: synchronized recordings (one .mkv per device, as k4arecorder writes them: frame sets are
 * formed by matching device timestamps), or a frame-set directory (one subdirectory per device
 * with its calibration.json and one image per frame set named by the frame set number).
 * See docs/calibrate.md. */
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
#include "kinsync/rigcalib.h"
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
            "Frame sets are color (or IR) frames whose device timestamps agree (subordinate delay\n"
            "removed) within --match-us (default: the SDK's sync tolerance for the frame rate); every\n"
            "--step-th frame of the master's recording is used (default: about 120 frame sets).\n"
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
            "  --step N           recordings: use every N-th frame of the master\n"
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
    ks_rigcal_collector *col;
    /* recordings */
    bool use_ir;
    int step;
    int match_us;
    uint64_t *ts;          /* the master's frame times (normalized, sorted) */
    size_t nts, nsel;
    int used_step;
    uint64_t tol;
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

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Device timestamp on the master's timeline: a subordinate's frames come its delay later. */
static uint64_t normalized_ts(const ks_mkv_desc *d, uint64_t ts)
{
    if (d->sync_mode == KS_SYNC_SUBORDINATE && ts >= d->subordinate_delay_us)
        return ts - d->subordinate_delay_us;
    return ts;
}

/* The selected frame set nearest to a normalized timestamp, if within the tolerance. */
static bool nearest_frame_set(const calib_run *cr, uint64_t t, size_t *out)
{
    size_t step = (size_t)cr->used_step, nsel = cr->nsel;
    const uint64_t *ts = cr->ts;
    if (!ts || nsel == 0)
        return false;
    size_t lo = 0, hi = nsel;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (ts[mid * step] <= t)
            lo = mid;
        else
            hi = mid;
    }
    size_t best = lo;
    uint64_t dbest = t > ts[lo * step] ? t - ts[lo * step] : ts[lo * step] - t;
    if (lo + 1 < nsel) {
        uint64_t v = ts[(lo + 1) * step], dv = t > v ? t - v : v - t;
        if (dv < dbest) {
            best = lo + 1;
            dbest = dv;
        }
    }
    *out = best;
    return dbest <= cr->tol;
}

static int collect_recordings(calib_run *cr, char **files, int n)
{
    ks_error err = {0};
    cr->devs = calloc((size_t)n, sizeof *cr->devs);
    cr->rdev = calloc((size_t)n, sizeof *cr->rdev);
    if (!cr->devs || !cr->rdev)
        return KS_EXIT_FAIL;
    ks_mkv_track_kind kind = cr->use_ir ? KS_MKV_IR : KS_MKV_COLOR;
    int master = 0;
    ks_fps fps = KS_FPS_30;
    /* pass 1: what each recording is, and the master's frame times */
    for (int i = 0; i < n; i++) {
        ks_mkv_reader *r = NULL;
        if (ks_mkv_reader_open(files[i], &r, &err)) {
            ks_cli_print_error("calibrate", &err);
            return KS_EXIT_USAGE;
        }
        const ks_mkv_info *info = ks_mkv_reader_info(r);
        dev_in *d = &cr->devs[i];
        snprintf(d->dir, sizeof d->dir, "%s", files[i]);
        const char *base = strrchr(files[i], '/');
        snprintf(d->serial, sizeof d->serial, "%s", info->desc.serial[0] ? info->desc.serial : base ? base + 1 : files[i]);
        if (!info->desc.calibration_json || !info->desc.calibration_len) {
            fprintf(stderr, "kinsync calibrate: %s: no calibration.json attachment; the recording does not say "
                            "how its cameras project\n", files[i]);
            ks_mkv_reader_close(r);
            return KS_EXIT_USAGE;
        }
        d->calib_json = malloc(info->desc.calibration_len + 1);
        if (!d->calib_json) {
            ks_mkv_reader_close(r);
            return KS_EXIT_FAIL;
        }
        memcpy(d->calib_json, info->desc.calibration_json, info->desc.calibration_len);
        d->calib_json[info->desc.calibration_len] = 0;
        d->calib_len = info->desc.calibration_len;
        cr->nd++; /* owns calib_json from here */
        if (!info->desc.serial[0])
            serial_from_calibration(d);
        const ks_mkv_track *t = ks_mkv_reader_track(r, kind);
        if (!t) {
            fprintf(stderr, "kinsync calibrate: %s has no %s track%s\n", files[i], cr->use_ir ? "IR" : "COLOR",
                    cr->use_ir ? "" : "; use --camera ir to search the IR images");
            ks_mkv_reader_close(r);
            return KS_EXIT_USAGE;
        }
        int rc = set_device_camera(cr, i, t->width, t->height, files[i]);
        if (info->desc.sync_mode == KS_SYNC_MASTER)
            master = i;
        if (i == 0 || info->desc.sync_mode == KS_SYNC_MASTER)
            fps = info->desc.fps;
        ks_mkv_reader_close(r);
        if (rc)
            return rc;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(cr->devs[i].serial, cr->devs[j].serial)) {
                fprintf(stderr, "kinsync calibrate: %s and %s are both from device %s; give one recording per device\n",
                        files[j], files[i], cr->devs[i].serial);
                return KS_EXIT_USAGE;
            }
    /* the master's timeline */
    uint64_t *ts = NULL;
    size_t nts = 0, cap = 0;
    ks_mkv_desc mdesc;
    {
        ks_mkv_reader *r = NULL;
        if (ks_mkv_reader_open(files[master], &r, &err)) {
            ks_cli_print_error("calibrate", &err);
            return KS_EXIT_USAGE;
        }
        mdesc = ks_mkv_reader_info(r)->desc;
        ks_mkv_item it;
        ks_status st;
        while ((st = ks_mkv_reader_next(r, &it, &err)) == KS_OK) {
            if (it.image)
                ks_image_release(it.image);
            if (it.kind != kind)
                continue;
            if (nts == cap) {
                cap = cap ? cap * 2 : 1024;
                uint64_t *nt = realloc(ts, cap * sizeof *ts);
                if (!nt)
                    break;
                ts = nt;
            }
            ts[nts++] = normalized_ts(&mdesc, it.device_ts_us);
        }
        ks_mkv_reader_close(r);
        if (st != KS_EEOF && st != KS_OK) {
            ks_error_prefix(&err, err.code, "%s", files[master]);
            ks_cli_print_error("calibrate", &err);
            free(ts);
            return KS_EXIT_USAGE;
        }
    }
    if (nts == 0) {
        fprintf(stderr, "kinsync calibrate: %s has no %s frames\n", files[master], cr->use_ir ? "IR" : "color");
        free(ts);
        return KS_EXIT_USAGE;
    }
    qsort(ts, nts, sizeof *ts, cmp_u64);
    int step = cr->step > 0 ? cr->step : (int)((nts + 119) / 120);
    if (step < 1)
        step = 1;
    size_t nsel = (nts + (size_t)step - 1) / (size_t)step;
    uint64_t tol = cr->match_us > 0 ? (uint64_t)cr->match_us : (uint64_t)ks_sdk_sync_tolerance_us(fps);
    cr->ts = ts;
    cr->nts = nts;
    cr->nsel = nsel;
    cr->used_step = step;
    cr->tol = tol;
    /* pass 2: detect in the frames that belong to a selected frame set */
    int rc = KS_EXIT_OK;
    for (int i = 0; i < n && rc == KS_EXIT_OK; i++) {
        dev_in *d = &cr->devs[i];
        ks_mkv_reader *r = NULL;
        if (ks_mkv_reader_open(files[i], &r, &err)) {
            ks_cli_print_error("calibrate", &err);
            rc = KS_EXIT_USAGE;
            break;
        }
        ks_mkv_desc desc = ks_mkv_reader_info(r)->desc;
        unsigned char *taken = calloc(nsel, 1);
        ks_mkv_item it;
        ks_status st;
        int matched = 0;
        while (taken && (st = ks_mkv_reader_next(r, &it, &err)) == KS_OK) {
            if (it.kind != kind || !it.image) {
                if (it.image)
                    ks_image_release(it.image);
                continue;
            }
            uint64_t t = normalized_ts(&desc, it.device_ts_us);
            size_t best;
            if (nearest_frame_set(cr, t, &best) && !taken[best]) {
                taken[best] = 1;
                matched++;
                int found = 0;
                if (ks_rigcal_collector_add_image(cr->col, i, (int)best, it.image, &found, &err)) {
                    ks_error_prefix(&err, err.code, "%s at %llu us", files[i], (unsigned long long)it.device_ts_us);
                    ks_cli_print_error("calibrate", &err);
                    /* one damaged frame is not fatal */
                } else {
                    d->with_board += found >= cr->ro.min_corners_per_view;
                }
                d->images++;
                if (ks_cli_is_tty(stderr))
                    fprintf(stderr, "\rcalibrate: %s: %d frame sets, board in %d   ", d->serial, d->images,
                            d->with_board);
            }
            ks_image_release(it.image);
        }
        free(taken);
        ks_mkv_reader_close(r);
        report_device(cr, d);
        if (matched == 0)
            fprintf(stderr, "kinsync calibrate: %s: no frame within %llu us of the master's (%s) frames: were the "
                            "devices recording synchronized? (--match-us widens the tolerance)\n",
                    files[i], (unsigned long long)tol, files[master]);
    }
    return rc;
}

/* Third pass over recordings with depth: the depth images of the calibrated frame sets against
 * the board plane placed by the solved poses. */
static void depth_check_recordings(calib_run *cr, char **files, int n, ks_rigcal_result *res)
{
    for (int i = 0; i < n; i++) {
        ks_error err = {0};
        ks_mkv_reader *r = NULL;
        if (ks_mkv_reader_open(files[i], &r, &err))
            continue;
        ks_mkv_desc desc = ks_mkv_reader_info(r)->desc;
        ks_calibration cal;
        if (desc.depth_mode == KS_DEPTH_OFF || desc.depth_mode == KS_DEPTH_PASSIVE_IR ||
            !ks_mkv_reader_track(r, KS_MKV_DEPTH) ||
            ks_calibration_from_json(cr->devs[i].calib_json, cr->devs[i].calib_len, desc.depth_mode, KS_COLOR_OFF,
                                     &cal, &err)) {
            ks_mkv_reader_close(r);
            continue;
        }
        ks_extrinsics rig_to_depth;
        ks_extrinsics_invert(&res->devices[i].depth_to_rig, &rig_to_depth);
        ks_depth_plane_stats acc = {0};
        unsigned char *done = calloc(cr->nsel, 1);
        ks_mkv_item it;
        while (done && ks_mkv_reader_next(r, &it, &err) == KS_OK) {
            if (it.kind == KS_MKV_DEPTH && it.image && it.image->format == KS_FORMAT_DEPTH16) {
                /* depth frames come depth_delay after the color frames they belong to */
                uint64_t t = normalized_ts(&desc, it.device_ts_us) - (uint64_t)(int64_t)desc.depth_delay_us;
                size_t fs;
                if (nearest_frame_set(cr, t, &fs) && !done[fs] && (int)fs < res->frame_count && res->board_valid[fs]) {
                    done[fs] = 1;
                    ks_extrinsics b2d;
                    ks_extrinsics_compose(&res->board_to_rig[fs], &rig_to_depth, &b2d);
                    int stride = it.image->stride ? it.image->stride : it.image->width * 2;
                    if (it.image->width == cal.depth.width && it.image->height == cal.depth.height)
                        ks_depth_board_check(&cal.depth, it.image->data, stride, &cr->board, &b2d, 50.0, 4, &acc,
                                             &err);
                }
            }
            if (it.image)
                ks_image_release(it.image);
        }
        free(done);
        ks_mkv_reader_close(r);
        ks_rigcal_set_depth_check(res, i, &acc);
    }
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

int cmd_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {{"board", required_argument, 0, 'b'},    {"output", required_argument, 0, 'o'},
                                         {"reference", required_argument, 0, 'r'}, {"loss", required_argument, 0, 'l'},
                                         {"min-corners", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
                                         {"camera", required_argument, 0, 'c'},   {"step", required_argument, 0, 's'},
                                         {"match-us", required_argument, 0, 'u'},  {"help", no_argument, 0, 'h'},
                                         {"seconds", required_argument, 0, 'S'},   {"recordings", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    double live_seconds = 5;
    const char *live_dir = "calibration-recordings";
    const char *board_path = NULL, *out_path = "rig-calibration.json", *ref_serial = NULL;
    calib_run cr;
    memset(&cr, 0, sizeof cr);
    ks_rigcal_options_default(&cr.ro);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end;
        long v;
        switch (c) {
        case 'b': board_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'r': ref_serial = optarg; break;
        case 'l':
            if (!strcmp(optarg, "huber"))
                cr.ro.loss = KS_LOSS_HUBER;
            else if (!strcmp(optarg, "cauchy"))
                cr.ro.loss = KS_LOSS_CAUCHY;
            else if (!strcmp(optarg, "none"))
                cr.ro.loss = KS_LOSS_NONE;
            else
                return ks_cli_usage_error("calibrate", "--loss %s: use huber, cauchy or none", optarg);
            break;
        case 'm':
            v = strtol(optarg, &end, 10);
            if (*end || v < 4 || v > 100000)
                return ks_cli_usage_error("calibrate", "--min-corners %s: give a number >= 4", optarg);
            cr.ro.min_corners_per_view = (int)v;
            break;
        case 'c':
            if (!strcmp(optarg, "color"))
                cr.use_ir = false;
            else if (!strcmp(optarg, "ir"))
                cr.use_ir = true;
            else
                return ks_cli_usage_error("calibrate", "--camera %s: use color or ir", optarg);
            break;
        case 's':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000)
                return ks_cli_usage_error("calibrate", "--step %s: give a number >= 1", optarg);
            cr.step = (int)v;
            break;
        case 'u':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 10000000)
                return ks_cli_usage_error("calibrate", "--match-us %s: give microseconds >= 1", optarg);
            cr.match_us = (int)v;
            break;
        case 'S':
            live_seconds = strtod(optarg, &end);
            if (*end || !(live_seconds > 0) || live_seconds > 3600)
                return ks_cli_usage_error("calibrate", "--seconds %s: give a positive number of seconds", optarg);
            break;
        case 'R': live_dir = optarg; break;
        case 'j': cr.json = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("calibrate", "unknown option");
        }
    }
    if (!board_path)
        return ks_cli_usage_error("calibrate", "--board BOARD.yaml is required (see kinsync board)");
    if (optind >= argc)
        return ks_cli_usage_error("calibrate", "expected recordings (one .mkv per device) or a frame-set directory");
    /* a live rig (devices or the simulator): record it first, then calibrate the recordings */
    char live_paths[KS_RIG_MAX_DEVICES][512];
    char *live_argv[KS_RIG_MAX_DEVICES] = {0};
    if (argc - optind == 1 && (has_ext(argv[optind], ".yaml") || has_ext(argv[optind], ".yml"))) {
        int n = record_live(argv[optind], live_dir, live_seconds, cr.json, live_paths);
        if (n < 0)
            return -n;
        for (int i = 0; i < n; i++)
            live_argv[i] = live_paths[i];
        argv = live_argv;
        argc = n;
        optind = 0;
    }
    bool mkv = has_ext(argv[optind], ".mkv");
    for (int i = optind; i < argc; i++)
        if (has_ext(argv[i], ".mkv") != mkv || (!mkv && argc - optind != 1))
            return ks_cli_usage_error("calibrate", "give either .mkv recordings (one per device) or one frame-set "
                                                   "directory");
    if (!mkv) {
        const char *root = argv[optind];
        struct stat stt;
        if (stat(root, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
            fprintf(stderr, "kinsync calibrate: %s is not a directory or a recording\n", root);
            return KS_EXIT_USAGE;
        }
    }
    ks_error err = {0};
    ks_status st = ks_board_load(board_path, &cr.board, &err);
    if (st) {
        ks_cli_print_error("calibrate", &err);
        return st == KS_ENOTFOUND || st == KS_EIO ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    }
    int rc;
    if ((st = ks_rigcal_collector_create(&cr.board, NULL, &cr.col, &err))) {
        ks_cli_print_error("calibrate", &err);
        return KS_EXIT_FAIL;
    }
    rc = mkv ? collect_recordings(&cr, argv + optind, argc - optind) : collect_dir(&cr, argv[optind]);
    if (rc != KS_EXIT_OK)
        goto out;
    int nd = cr.nd;
    if (ref_serial) {
        cr.ro.reference_device = -1;
        for (int i = 0; i < nd; i++)
            if (!strcmp(cr.devs[i].serial, ref_serial))
                cr.ro.reference_device = i;
        if (cr.ro.reference_device < 0) {
            rc = ks_cli_usage_error("calibrate", "--reference %s: no such device in the input", ref_serial);
            goto out;
        }
    }
    cr.ro.progress = progress;
    ks_rigcal_problem prob;
    ks_rigcal_collector_problem(cr.col, &cr.board, cr.rdev, nd, &prob);
    ks_rigcal_result res;
    st = prob.frame_count > 0 ? ks_rigcal_solve(&prob, &cr.ro, &res, &err)
                              : ks_error_set(&err, KS_EINVAL, "the board was found in no image; check the board "
                                                              "file matches the printed board (family, first_id)");
    if (ks_cli_is_tty(stderr))
        fprintf(stderr, "\r%60s\r", "");
    if (st) {
        ks_cli_print_error("calibrate", &err);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    if (mkv)
        depth_check_recordings(&cr, argv + optind, argc - optind, &res);
    if ((st = ks_rigcal_write_json(&prob, &res, out_path, &err))) {
        ks_cli_print_error("calibrate", &err);
        ks_rigcal_result_free(&res);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    if (cr.json) {
        json_t *arr = json_array();
        for (int i = 0; i < nd; i++) {
            const ks_rigcal_device_result *d = &res.devices[i];
            json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f}", "serial", cr.devs[i].serial,
                                                 "views", d->views, "corners", d->corners, "rms_px",
                                                 isfinite(d->rms_px) ? d->rms_px : -1.0, "rotation_sigma_deg",
                                                 d->rotation_sigma_deg, "position_sigma_mm", d->position_sigma_mm,
                                                 "ray_rms_mm", isfinite(d->ray_rms_mm) ? d->ray_rms_mm : -1.0));
        }
        json_t *o = json_pack("{s:s, s:f, s:i, s:i, s:i, s:f, s:o}", "output", out_path, "rms_px", res.rms_px,
                              "frame_sets", res.frame_count, "rejected_views", res.rejected_views,
                              "triangulated_points", res.triangulated_points,
                              "board_fit_rms_mm", isfinite(res.board_fit_rms_mm) ? res.board_fit_rms_mm : -1.0,
                              "devices", arr);
        char *js = json_dumps(o, JSON_INDENT(2));
        if (js)
            printf("%s\n", js);
        free(js);
        json_decref(o);
    } else {
        printf("rig calibration: %d devices, %d frame sets, %d corners, reprojection RMS %.3f px (from %.3f), "
               "%d iterations, %.2f s\n",
               nd, res.frame_count, res.used_obs, res.rms_px, res.initial_rms_px, res.iterations, res.solve_seconds);
        if (res.rejected_views)
            printf("%d views disagreed with the rest (a wrong detection or a frame set that is not synchronized) and "
                   "were left out\n", res.rejected_views);
        printf("%-16s %5s %7s %8s %10s %9s %8s\n", "device", "views", "corners", "rms px", "sigma deg", "sigma mm",
               "rays mm");
        for (int i = 0; i < nd; i++) {
            const ks_rigcal_device_result *d = &res.devices[i];
            printf("%-16s %5d %7d %8.3f %10.4f %9.3f %8.3f%s\n", cr.devs[i].serial, d->views, d->corners, d->rms_px,
                   d->rotation_sigma_deg, d->position_sigma_mm, d->ray_rms_mm,
                   i == res.reference_device ? "  (reference: rig frame)" : "");
        }
        printf("cross-check: %d corners triangulated from several devices fit the board model to %.3f mm RMS\n",
               res.triangulated_points, res.board_fit_rms_mm);
        for (int i = 0; i < nd; i++)
            if (res.devices[i].depth_plane_points > 0)
                printf("depth check %s: %d depth pixels on the board, %.2f mm behind the calibrated board plane "
                       "on average, RMS %.2f mm\n",
                       cr.devs[i].serial, res.devices[i].depth_plane_points, res.devices[i].depth_plane_mean_mm,
                       res.devices[i].depth_plane_rms_mm);
        printf("wrote %s\n", out_path);
    }
    ks_rigcal_result_free(&res);
out:
    ks_rigcal_collector_destroy(cr.col);
    for (int i = 0; i < cr.nd; i++)
        free(cr.devs[i].calib_json);
    free(cr.devs);
    free(cr.rdev);
    free(cr.ts);
    return rc;
}
