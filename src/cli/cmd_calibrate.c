/* kinsync calibrate: joint calibration of all devices of a rig from synchronized views of a board.
 *
 * Input (this version): a frame-set directory, one subdirectory per device holding the device's
 * factory calibration.json and its images of the board, one image per synchronized frame set,
 * named by the frame set number (0000.jpg, 0001.png, ...; the last run of digits in the name is
 * the number). See docs/calibrate.md. */
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
#include "kinsync/board.h"
#include "kinsync/calibration.h"
#include "kinsync/rigcalib.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync calibrate FRAMESET_DIR --board BOARD.yaml [-o rig-calibration.json]\n"
            "                         [--reference SERIAL] [--loss huber|cauchy|none] [--min-corners N] [--json]\n"
            "\n"
            "Calibrates every device of a rig at once from synchronized views of an AprilGrid board\n"
            "(kinsync board): tags are detected in every image, every device pose and every board pose\n"
            "are adjusted together (intrinsics fixed from each device's factory calibration), and the\n"
            "poses of the depth and color cameras in the rig frame (the reference device's depth camera)\n"
            "are written with their uncertainty. See docs/calibrate.md and docs/rig-calibration.md.\n"
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
            "  --loss NAME        robust loss: huber (default), cauchy, none\n"
            "  --min-corners N    corners a view needs to count (default 8)\n"
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
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        if (cap > (256u << 20)) {
            free(b);
            b = NULL;
            break;
        }
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = n;
    }
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

int cmd_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {{"board", required_argument, 0, 'b'},    {"output", required_argument, 0, 'o'},
                                         {"reference", required_argument, 0, 'r'}, {"loss", required_argument, 0, 'l'},
                                         {"min-corners", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *board_path = NULL, *out_path = "rig-calibration.json", *ref_serial = NULL;
    bool json = false;
    ks_rigcal_options ro;
    ks_rigcal_options_default(&ro);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': board_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'r': ref_serial = optarg; break;
        case 'l':
            if (!strcmp(optarg, "huber"))
                ro.loss = KS_LOSS_HUBER;
            else if (!strcmp(optarg, "cauchy"))
                ro.loss = KS_LOSS_CAUCHY;
            else if (!strcmp(optarg, "none"))
                ro.loss = KS_LOSS_NONE;
            else
                return ks_cli_usage_error("calibrate", "--loss %s: use huber, cauchy or none", optarg);
            break;
        case 'm': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 4 || v > 100000)
                return ks_cli_usage_error("calibrate", "--min-corners %s: give a number >= 4", optarg);
            ro.min_corners_per_view = (int)v;
            break;
        }
        case 'j': json = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("calibrate", "unknown option");
        }
    }
    if (!board_path)
        return ks_cli_usage_error("calibrate", "--board BOARD.yaml is required (see kinsync board)");
    if (optind != argc - 1)
        return ks_cli_usage_error("calibrate", "expected one FRAMESET_DIR");
    const char *root = argv[optind];
    struct stat stt;
    if (stat(root, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
        size_t n = strlen(root);
        if ((n > 4 && !strcasecmp(root + n - 4, ".mkv")) || (n > 5 && !strcasecmp(root + n - 5, ".yaml")))
            fprintf(stderr, "kinsync calibrate: %s: recordings and live rigs are not read by this version yet; "
                            "export the synchronized board images into a frame-set directory (docs/calibrate.md)\n",
                    root);
        else
            fprintf(stderr, "kinsync calibrate: %s is not a directory (%s)\n", root, strerror(errno));
        return KS_EXIT_USAGE;
    }
    ks_error err = {0};
    ks_board board;
    ks_status st = ks_board_load(board_path, &board, &err);
    if (st) {
        ks_cli_print_error("calibrate", &err);
        return st == KS_ENOTFOUND || st == KS_EIO ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    }
    int nsub = 0;
    char **subs = list_dir(root, &nsub);
    dev_in *devs = calloc((size_t)(nsub ? nsub : 1), sizeof *devs);
    ks_rigcal_device *rdev = calloc((size_t)(nsub ? nsub : 1), sizeof *rdev);
    ks_rigcal_collector *col = NULL;
    int nd = 0, rc = KS_EXIT_OK;
    if (!devs || !rdev) {
        rc = KS_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < nsub; i++) {
        dev_in *d = &devs[nd];
        snprintf(d->dir, sizeof d->dir, "%s/%s", root, subs[i]);
        char cpath[1100];
        snprintf(cpath, sizeof cpath, "%s/calibration.json", d->dir);
        if (stat(d->dir, &stt) != 0 || !S_ISDIR(stt.st_mode))
            continue;
        d->calib_json = read_file(cpath, &d->calib_len);
        if (!d->calib_json) {
            fprintf(stderr, "kinsync calibrate: %s: no calibration.json; copy the device's factory calibration "
                            "there (k4arecorder attaches it to every recording)\n", d->dir);
            rc = KS_EXIT_USAGE;
            goto out;
        }
        snprintf(d->serial, sizeof d->serial, "%s", subs[i]);
        json_t *j = json_loadb(d->calib_json, d->calib_len, 0, NULL);
        if (!j && d->calib_len > 3) /* byte-order mark */
            j = json_loadb(d->calib_json + 3, d->calib_len - 3, 0, NULL);
        const char *sid = json_string_value(json_object_get(json_object_get(json_object_get(j, "CalibrationInformation"),
                                                                            "Metadata"), "SerialId"));
        if (sid && *sid)
            snprintf(d->serial, sizeof d->serial, "%s", sid);
        json_decref(j);
        nd++;
    }
    if (nd == 0) {
        fprintf(stderr, "kinsync calibrate: %s has no device directories (DIR/<serial>/calibration.json + images)\n",
                root);
        rc = KS_EXIT_USAGE;
        goto out;
    }
    if ((st = ks_rigcal_collector_create(&board, NULL, &col, &err))) {
        ks_cli_print_error("calibrate", &err);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < nd; i++) {
        dev_in *d = &devs[i];
        int nf = 0;
        char **files = list_dir(d->dir, &nf);
        for (int k = 0; k < nf; k++) {
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
            if ((st = load_image(path, &img, &owned, &err))) {
                ks_cli_print_error("calibrate", &err);
                rc = KS_EXIT_USAGE;
                free_list(files, nf);
                goto out;
            }
            if (!d->have_mode) {
                ks_color_resolution cr;
                ks_depth_mode dm;
                if (!mode_for_size(img.width, img.height, &d->ir, &cr, &dm)) {
                    fprintf(stderr, "kinsync calibrate: %s: %dx%d is not the size of an Azure Kinect color or depth "
                                    "mode\n", path, img.width, img.height);
                    free(owned);
                    free_list(files, nf);
                    rc = KS_EXIT_USAGE;
                    goto out;
                }
                ks_calibration cal;
                if ((st = ks_calibration_from_json(d->calib_json, d->calib_len, dm, cr, &cal, &err))) {
                    ks_error_prefix(&err, "%s/calibration.json", d->dir);
                    ks_cli_print_error("calibrate", &err);
                    free(owned);
                    free_list(files, nf);
                    rc = KS_EXIT_USAGE;
                    goto out;
                }
                snprintf(rdev[i].serial, sizeof rdev[i].serial, "%s", d->serial);
                rdev[i].intrinsics = d->ir ? cal.depth : cal.color;
                rdev[i].depth_to_color = cal.depth_to_color;
                if (d->ir)
                    ks_extrinsics_identity(&rdev[i].depth_to_camera);
                else
                    rdev[i].depth_to_camera = cal.depth_to_color;
                d->have_mode = true;
                d->width = img.width;
                d->height = img.height;
            } else if (img.width != d->width || img.height != d->height) {
                fprintf(stderr, "kinsync calibrate: %s: %dx%d, but the other images of this device are %dx%d; one "
                                "camera and mode per device\n", path, img.width, img.height, d->width, d->height);
                free(owned);
                free_list(files, nf);
                rc = KS_EXIT_USAGE;
                goto out;
            }
            int found = 0;
            st = ks_rigcal_collector_add_image(col, i, fnum, &img, &found, &err);
            free(owned);
            if (st) {
                ks_error_prefix(&err, "%s", path);
                ks_cli_print_error("calibrate", &err);
                rc = KS_EXIT_USAGE;
                free_list(files, nf);
                goto out;
            }
            d->images++;
            d->with_board += found >= ro.min_corners_per_view;
            if (ks_cli_is_tty(stderr))
                fprintf(stderr, "\rcalibrate: device %d/%d (%s): %d images, board in %d   ", i + 1, nd, d->serial,
                        d->images, d->with_board);
        }
        free_list(files, nf);
        if (!json)
            fprintf(stderr, "%scalibrate: device %s (%s %dx%d): %d images, board in %d\n",
                    ks_cli_is_tty(stderr) ? "\r" : "", d->serial, d->ir ? "IR" : "color", d->width, d->height,
                    d->images, d->with_board);
        if (!d->have_mode) {
            fprintf(stderr, "kinsync calibrate: %s: no images (0000.jpg, 0001.png, ...)\n", d->dir);
            rc = KS_EXIT_USAGE;
            goto out;
        }
    }
    if (ref_serial) {
        ro.reference_device = -1;
        for (int i = 0; i < nd; i++)
            if (!strcmp(devs[i].serial, ref_serial))
                ro.reference_device = i;
        if (ro.reference_device < 0) {
            rc = ks_cli_usage_error("calibrate", "--reference %s: no such device in %s", ref_serial, root);
            goto out;
        }
    }
    ro.progress = progress;
    ks_rigcal_problem prob;
    ks_rigcal_collector_problem(col, &board, rdev, nd, &prob);
    ks_rigcal_result res;
    st = prob.frame_count > 0 ? ks_rigcal_solve(&prob, &ro, &res, &err)
                              : ks_error_set(&err, KS_EINVAL, "the board was found in no image; check the board "
                                                              "file matches the printed board (family, first_id)");
    if (ks_cli_is_tty(stderr))
        fprintf(stderr, "\r%60s\r", "");
    if (st) {
        ks_cli_print_error("calibrate", &err);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    if ((st = ks_rigcal_write_json(&prob, &res, out_path, &err))) {
        ks_cli_print_error("calibrate", &err);
        ks_rigcal_result_free(&res);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    if (json) {
        json_t *arr = json_array();
        for (int i = 0; i < nd; i++) {
            const ks_rigcal_device_result *d = &res.devices[i];
            json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f}", "serial", devs[i].serial,
                                                 "views", d->views, "corners", d->corners, "rms_px",
                                                 isfinite(d->rms_px) ? d->rms_px : -1.0, "rotation_sigma_deg",
                                                 d->rotation_sigma_deg, "position_sigma_mm", d->position_sigma_mm,
                                                 "ray_rms_mm", isfinite(d->ray_rms_mm) ? d->ray_rms_mm : -1.0));
        }
        json_t *o = json_pack("{s:s, s:f, s:i, s:i, s:f, s:o}", "output", out_path, "rms_px", res.rms_px,
                              "frame_sets", res.frame_count, "triangulated_points", res.triangulated_points,
                              "board_fit_rms_mm", isfinite(res.board_fit_rms_mm) ? res.board_fit_rms_mm : -1.0,
                              "devices", arr);
        char *s = json_dumps(o, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("rig calibration: %d devices, %d frame sets, %d corners, reprojection RMS %.3f px (from %.3f), "
               "%d iterations, %.2f s\n",
               nd, res.frame_count, res.used_obs, res.rms_px, res.initial_rms_px, res.iterations, res.solve_seconds);
        printf("%-16s %5s %7s %8s %10s %9s %8s\n", "device", "views", "corners", "rms px", "sigma deg", "sigma mm",
               "rays mm");
        for (int i = 0; i < nd; i++) {
            const ks_rigcal_device_result *d = &res.devices[i];
            printf("%-16s %5d %7d %8.3f %10.4f %9.3f %8.3f%s\n", devs[i].serial, d->views, d->corners, d->rms_px,
                   d->rotation_sigma_deg, d->position_sigma_mm, d->ray_rms_mm,
                   i == res.reference_device ? "  (reference: rig frame)" : "");
        }
        printf("cross-check: %d corners triangulated from several devices fit the board model to %.3f mm RMS\n",
               res.triangulated_points, res.board_fit_rms_mm);
        printf("wrote %s\n", out_path);
    }
    ks_rigcal_result_free(&res);
out:
    ks_rigcal_collector_destroy(col);
    for (int i = 0; i < nd; i++)
        free(devs[i].calib_json);
    free(devs);
    free(rdev);
    free_list(subs, nsub);
    return rc;
}
