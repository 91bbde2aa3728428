/* kinsync fuse: synchronized recordings of a calibrated rig -> one point cloud per frame set.
 *
 * Frame sets are formed as kinsync calibrate does: depth frames of the devices whose timestamps
 * (subordinate delay removed) agree with the master's within a tolerance. Each set goes through
 * the fusion pipeline of kinsync/fuse.h (unprojection tables, rig poses from rig-calibration.json,
 * voxel grid) and is written as a binary PLY; --fill renders the fused cloud into one device's
 * depth view and writes its hole-filled depth as a 16-bit PNG. A rig file instead of recordings
 * runs the rig live (real devices or the simulator) through the session module and fuses its
 * frame sets as they arrive. See docs/fuse.md. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/calibration.h"
#include "kinsync/fuse.h"
#include "kinsync/mkv.h"
#include "kinsync/session.h"
#include "util/fileio.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync fuse (RIG.yaml | RECORDING.mkv...) --calibration rig-calibration.json --out DIR\n"
            "                    [--voxel MM] [--fill DEVICE] [--color] [--normals] [--frames N] [--step N]\n"
            "                    [--match-us US] [--threads N] [--json]\n"
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
            "depth. Frame sets are depth frames whose device timestamps agree (subordinate delay removed)\n"
            "within --match-us (default: the SDK's sync tolerance for the frame rate).\n"
            "\n"
            "  --calibration FILE  rig-calibration.json with a pose for every device (required)\n"
            "  --out DIR           output directory, created if missing (required)\n"
            "  --voxel MM          voxel size in millimetres (default 5)\n"
            "  --fill DEVICE       serial or index: render the fused cloud into that device's depth view,\n"
            "                      fill its holes from the other devices, write DIR/filled-SERIAL-NNNNNN.png\n"
            "  --color             color the points from the color track (MJPEG or BGRA)\n"
            "  --normals           normals from depth-image neighbours, averaged per voxel\n"
            "  --frames N          fuse N frame sets (default 1; 0 = all; --interleaved: all)\n"
            "  --step N            use every N-th frame of the master (default 1)\n"
            "  --match-us US       timestamp tolerance between devices, microseconds\n"
            "  --threads N         worker threads (default 2)\n"
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

typedef struct dev_in {
    const char *path;
    ks_mkv_reader *r;
    ks_mkv_desc desc;
    ks_calibration cal;
    ks_rig_pose pose;
    ks_image *depth, *color;
    uint64_t depth_ts, color_ts; /* on the master's colour timeline (see normalized_ts) */
    uint64_t depth_raw_ts;       /* the recording's device timestamp */
    bool eof;
    /* summary */
    int sets;
    double points;
} dev_in;

/* Device timestamp on the master's colour timeline: a subordinate's frames come its delay later,
 * and a device's depth comes its depth delay after its colour (the planner offsets the depth of
 * each device so the lasers never overlap), so both are removed before frames are matched. */
static uint64_t normalized_ts(const ks_mkv_desc *d, uint64_t ts, bool depth)
{
    if (depth && d->depth_delay_us != 0) {
        int64_t t = (int64_t)ts - d->depth_delay_us;
        ts = t > 0 ? (uint64_t)t : 0;
    }
    if (d->sync_mode == KS_SYNC_SUBORDINATE && ts >= d->subordinate_delay_us)
        return ts - d->subordinate_delay_us;
    return ts;
}

/* Reads until the next depth frame (keeping the newest color frame on the way). */
static ks_status next_depth(dev_in *d, ks_error *err)
{
    for (;;) {
        ks_mkv_item it;
        ks_status st = ks_mkv_reader_next(d->r, &it, err);
        if (st == KS_EEOF) {
            d->eof = true;
            if (d->depth)
                ks_image_release(d->depth);
            d->depth = NULL;
            return KS_EEOF;
        }
        if (st)
            return ks_error_prefix(err, st, "%s", d->path);
        if (!it.image)
            continue;
        if (it.kind == KS_MKV_DEPTH) {
            if (d->depth)
                ks_image_release(d->depth);
            d->depth = it.image;
            d->depth_ts = normalized_ts(&d->desc, it.device_ts_us, true);
            d->depth_raw_ts = it.device_ts_us;
            return KS_OK;
        }
        if (it.kind == KS_MKV_COLOR) {
            if (d->color)
                ks_image_release(d->color);
            d->color = it.image;
            d->color_ts = normalized_ts(&d->desc, it.device_ts_us, false);
            continue;
        }
        ks_image_release(it.image);
    }
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
    }
    return -1;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void json_extrinsics(json_t *o, const char *key, const ks_extrinsics *e)
{
    json_t *r = json_array(), *t = json_array();
    for (int i = 0; i < 9; i++)
        json_array_append_new(r, json_real(e->R[i]));
    for (int i = 0; i < 3; i++)
        json_array_append_new(t, json_real(e->t[i]));
    json_object_set_new(o, key, json_pack("{s:o, s:o}", "R", r, "t", t));
}

/* --interleaved: pass 1 reads every depth timestamp, ks_interleave orders them and attaches the
 * poses; pass 2 reads the frames again in that order (each recording is read front to back) and
 * writes each as points in the rig frame. */
static int run_interleaved(dev_in *devs, int n, const char *out_dir, long frames, bool json)
{
    ks_error err = {0};
    ks_stream_frame *in = NULL, *ord = NULL;
    size_t nf = 0, cap = 0;
    int rc = KS_EXIT_OK;
    ks_rig_pose *poses = calloc((size_t)n, sizeof *poses);
    ks_unproject_table *tab = calloc((size_t)n, sizeof *tab);
    ks_cloud c = {0};
    json_t *list = json_array();
    if (!poses || !tab || !list) {
        rc = KS_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        poses[i] = devs[i].pose;
        while (next_depth(&devs[i], &err) == KS_OK) {
            if (nf == cap) {
                cap = cap ? cap * 2 : 1024;
                ks_stream_frame *ni = realloc(in, cap * sizeof *in);
                if (!ni) {
                    rc = KS_EXIT_FAIL;
                    goto out;
                }
                in = ni;
            }
            /* raw device timestamps: in an interleaved rig the offsets ARE the subordinate delays */
            in[nf++] = (ks_stream_frame){i, (int64_t)devs[i].depth_raw_ts, NULL, {{0}, {0}}};
        }
        if (!devs[i].eof) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto out;
        }
        /* back to the start for pass 2 */
        ks_mkv_reader_close(devs[i].r);
        devs[i].r = NULL;
        devs[i].eof = false;
        if (ks_mkv_reader_open(devs[i].path, &devs[i].r, &err) ||
            ks_unproject_table_build(&devs[i].cal.depth, &tab[i], &err)) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto out;
        }
    }
    ord = malloc((nf ? nf : 1) * sizeof *ord);
    ks_interleave_stats st;
    if (!ord || ks_interleave(in, nf, poses, (size_t)n, ord, &st, &err)) {
        if (ord)
            ks_cli_print_error("fuse", &err);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    if (nf == 0) {
        fprintf(stderr, "kinsync fuse: the recordings have no depth frames\n");
        rc = KS_EXIT_FAIL;
        goto out;
    }
    size_t maxpix = 0;
    for (int i = 0; i < n; i++) {
        size_t np = (size_t)tab[i].width * (size_t)tab[i].height;
        maxpix = np > maxpix ? np : maxpix;
    }
    if (ks_cloud_reserve(&c, maxpix, 0, &err)) {
        ks_cli_print_error("fuse", &err);
        rc = KS_EXIT_FAIL;
        goto out;
    }
    size_t nout = frames > 0 && (size_t)frames < nf ? (size_t)frames : nf;
    bool tty = ks_cli_is_tty(stderr) && !json;
    for (size_t k = 0; k < nout; k++) {
        dev_in *d = &devs[ord[k].device];
        if (next_depth(d, &err) != KS_OK || (int64_t)d->depth_raw_ts != ord[k].timestamp_us) {
            fprintf(stderr, "kinsync fuse: %s changed while it was read (frame at %lld us)\n", d->path,
                    (long long)ord[k].timestamp_us);
            rc = KS_EXIT_FAIL;
            goto out;
        }
        const ks_unproject_table *t = &tab[ord[k].device];
        size_t valid = 0;
        if (d->depth->width == t->width && d->depth->height == t->height)
            valid = ks_depth_to_points(t, (const uint16_t *)d->depth->data,
                                       d->depth->stride > 0 ? (size_t)d->depth->stride / 2 : 0, &ord[k].pose, c.x,
                                       c.y, c.z);
        c.count = valid ? (size_t)t->width * (size_t)t->height : 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/stream-%06zu.ply", out_dir, k);
        if (ks_ply_write(path, &c, 0, &err)) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto out;
        }
        json_t *e = json_pack("{s:i, s:s, s:I, s:s, s:i}", "index", (int)k, "serial", d->desc.serial, "device_ts_us",
                              (json_int_t)ord[k].timestamp_us, "file", base_name(path), "points", (int)valid);
        json_extrinsics(e, "depth_to_rig", &ord[k].pose);
        json_array_append_new(list, e);
        if (tty)
            fprintf(stderr, "\rfuse: frame %zu/%zu  ", k + 1, nout);
    }
    if (tty)
        fputc('\n', stderr);
    json_t *root = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:o}", "format", "kinsync-stream", "version", 1,
                             "devices", n, "rate_hz", st.rate_hz, "mean_gap_us", st.mean_gap_us, "min_gap_us",
                             st.min_gap_us, "max_gap_us", st.max_gap_us, "frames", list);
    list = NULL;
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/stream.json", out_dir);
    if (ks_json_write_atomic(root, jpath, JSON_INDENT(1), &err) != KS_OK) {
        ks_cli_print_error("fuse", &err);
        rc = KS_EXIT_FAIL;
    } else if (json) {
        json_t *sum = json_pack("{s:i, s:i, s:f, s:f, s:f, s:s}", "frames", (int)nout, "devices", n, "rate_hz",
                                st.rate_hz, "min_gap_us", st.min_gap_us, "max_gap_us", st.max_gap_us, "index", jpath);
        char *txt = json_dumps(sum, JSON_INDENT(2));
        if (txt)
            printf("%s\n", txt);
        free(txt);
        json_decref(sum);
    } else {
        printf("interleaved stream: %zu frames of %d devices in timestamp order, %.1f frames/s (gaps %.0f..%.0f us) "
               "-> %s/stream-*.ply, %s\n",
               nout, n, st.rate_hz, st.min_gap_us, st.max_gap_us, out_dir, jpath);
    }
    json_decref(root);
out:
    json_decref(list);
    if (tab)
        for (int i = 0; i < n; i++)
            ks_unproject_table_free(&tab[i]);
    free(tab);
    free(poses);
    free(in);
    free(ord);
    ks_cloud_free(&c);
    return rc;
}

int cmd_fuse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"calibration", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
        {"voxel", required_argument, 0, 'v'},       {"fill", required_argument, 0, 'f'},
        {"color", no_argument, 0, 'C'},             {"normals", no_argument, 0, 'N'},
        {"frames", required_argument, 0, 'n'},      {"step", required_argument, 0, 's'},
        {"match-us", required_argument, 0, 'm'},    {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},              {"help", no_argument, 0, 'h'},
        {"interleaved", no_argument, 0, 'I'},       {"backend", required_argument, 0, 'B'},
        {"fast", no_argument, 0, 'F'},
        {0, 0, 0, 0}};
    const char *calib_path = NULL, *out_dir = NULL, *fill_arg = NULL, *backend = "auto";
    bool fast = false;
    double voxel = 5.0;
    long frames = 1, step = 1, match_us = 0, threads = 2;
    bool color = false, normals = false, json = false, interleaved = false, frames_given = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'c': calib_path = optarg; break;
        case 'o': out_dir = optarg; break;
        case 'f': fill_arg = optarg; break;
        case 'C': color = true; break;
        case 'N': normals = true; break;
        case 'j': json = true; break;
        case 'I': interleaved = true; break;
        case 'B': backend = optarg; break;
        case 'F': fast = true; break;
        case 'v':
            voxel = strtod(optarg, &end);
            if (!end || *end || !(voxel >= 0.1 && voxel <= 10000))
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
            if (c == 'n') {
                frames = v;
                frames_given = true;
            }
            else if (c == 's')
                step = v;
            else if (c == 'm')
                match_us = v;
            else
                threads = v;
            break;
        }
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("fuse", "unknown option");
        }
    }
    int n = argc - optind;
    if (n < 1)
        return ks_cli_usage_error("fuse", "give one recording (.mkv) per device");
    if (n > KS_FUSE_MAX_DEVICES)
        return ks_cli_usage_error("fuse", "%d recordings; at most %d devices can be fused", n, KS_FUSE_MAX_DEVICES);
    bool live = false;
    for (int i = optind; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if ((l > 5 && !strcasecmp(argv[i] + l - 5, ".yaml")) || (l > 4 && !strcasecmp(argv[i] + l - 4, ".yml")))
            live = true;
    }
    if (live && n != 1)
        return ks_cli_usage_error("fuse", "give either one rig file or one recording per device, not both");
    if (live && interleaved)
        return ks_cli_usage_error("fuse", "--interleaved works on recordings; record the rig first");
    if (!calib_path)
        return ks_cli_usage_error("fuse", "--calibration rig-calibration.json is required (kinsync calibrate writes it)");
    if (!out_dir)
        return ks_cli_usage_error("fuse", "--out DIR is required");

    ks_error err = {0};
    ks_rig_pose *poses = NULL;
    size_t npose = 0;
    if (ks_rig_poses_load(calib_path, &poses, &npose, &err)) {
        ks_cli_print_error("fuse", &err);
        return KS_EXIT_USAGE;
    }
    int rc = KS_EXIT_OK;
    ks_cli_rigrun rr;
    memset(&rr, 0, sizeof rr);
    bool rr_open = false, have_lset = false, seen_complete = false;
    ks_session *sess = NULL;
    ks_session_set lset;
    dev_in *devs = calloc(KS_FUSE_MAX_DEVICES, sizeof *devs);
    ks_fuse_device *fdev = calloc(KS_FUSE_MAX_DEVICES, sizeof *fdev);
    ks_fuse_input *in = calloc(KS_FUSE_MAX_DEVICES, sizeof *in);
    ks_fuse *fz = NULL;
    ks_cloud cloud = {0};
    uint16_t *render = NULL, *filled = NULL;
    json_t *outputs = json_array();
    if (!devs || !fdev || !in || !outputs) {
        rc = KS_EXIT_FAIL;
        goto done;
    }
    int master = 0, fill = -1;
    ks_fps fps = KS_FPS_30;
    if (live) {
        int orc = ks_cli_rigrun_open(argv[optind], backend, fast, &rr, &err);
        rr_open = true;
        if (orc != KS_EXIT_OK) {
            ks_cli_print_error("fuse", &err);
            rc = orc;
            goto done;
        }
        ks_session_options sopt;
        ks_session_options_init(&sopt);
        if (ks_session_open(&rr.rig, &rr.plan, rr.backend, &sopt, &sess, &err) != KS_OK) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto done;
        }
        n = ks_session_device_count(sess);
        if (n < 1 || n > KS_FUSE_MAX_DEVICES) {
            fprintf(stderr, "kinsync fuse: the rig has %d devices on this host; 1 to %d can be fused\n", n,
                    KS_FUSE_MAX_DEVICES);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        for (int i = 0; i < n; i++) {
            dev_in *d = &devs[i];
            int ri = ks_session_rig_index(sess, i);
            const ks_device_config *cfg = &rr.plan.devices[ri].config;
            d->path = ks_session_device_name(sess, i);
            snprintf(d->desc.serial, sizeof d->desc.serial, "%s", rr.rig.devices[ri].serial);
            char *cj = NULL;
            size_t cl = 0;
            if (cfg->depth_mode == KS_DEPTH_OFF || cfg->depth_mode == KS_DEPTH_PASSIVE_IR) {
                fprintf(stderr, "kinsync fuse: device %s runs without depth (%s); give it a depth mode in the rig\n",
                        d->path, ks_depth_mode_name(cfg->depth_mode));
                rc = KS_EXIT_USAGE;
                goto done;
            }
            if (ks_device_get_calibration_json(ks_session_device(sess, i), &cj, &cl, &err) ||
                ks_calibration_from_json(cj, cl, cfg->depth_mode, color ? cfg->color_resolution : KS_COLOR_OFF,
                                         &d->cal, &err)) {
                free(cj);
                ks_error_prefix(&err, err.code, "device %s", d->path);
                ks_cli_print_error("fuse", &err);
                rc = KS_EXIT_FAIL;
                goto done;
            }
            free(cj);
            const ks_rig_pose *p = ks_rig_pose_find(poses, npose, d->desc.serial);
            if (!p) {
                fprintf(stderr, "kinsync fuse: device %s (%s) has no pose in %s; calibrate the rig (kinsync calibrate)\n",
                        d->path, d->desc.serial, calib_path);
                rc = KS_EXIT_USAGE;
                goto done;
            }
            d->pose = *p;
            fdev[i].calibration = d->cal;
            fdev[i].depth_to_rig = d->pose.depth_to_rig;
            snprintf(fdev[i].serial, sizeof fdev[i].serial, "%s", d->desc.serial);
        }
    }
    for (int i = 0; i < n && !live; i++) {
        dev_in *d = &devs[i];
        d->path = argv[optind + i];
        if (ks_mkv_reader_open(d->path, &d->r, &err)) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        d->desc = ks_mkv_reader_info(d->r)->desc;
        if (d->desc.depth_mode == KS_DEPTH_OFF || d->desc.depth_mode == KS_DEPTH_PASSIVE_IR ||
            !ks_mkv_reader_track(d->r, KS_MKV_DEPTH)) {
            fprintf(stderr, "kinsync fuse: %s has no depth track; record with a depth mode (e.g. NFOV_UNBINNED)\n",
                    d->path);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        if (!d->desc.calibration_json) {
            fprintf(stderr, "kinsync fuse: %s: no calibration.json attachment; the recording does not say how its "
                            "cameras project\n", d->path);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        ks_color_resolution cres = color ? d->desc.color_resolution : KS_COLOR_OFF;
        if (ks_calibration_from_json(d->desc.calibration_json, d->desc.calibration_len, d->desc.depth_mode, cres,
                                     &d->cal, &err)) {
            ks_error_prefix(&err, err.code, "%s: calibration.json", d->path);
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        const ks_rig_pose *p = d->desc.serial[0] ? ks_rig_pose_find(poses, npose, d->desc.serial) : NULL;
        if (!p) {
            fprintf(stderr, "kinsync fuse: %s: device %s has no pose in %s; calibrate the rig with this device (kinsync "
                            "calibrate) or leave its recording out\n",
                    d->path, d->desc.serial[0] ? d->desc.serial : "(no serial tag)", calib_path);
            rc = KS_EXIT_USAGE;
            goto done;
        }
        d->pose = *p;
        for (int j = 0; j < i; j++)
            if (!strcmp(devs[j].desc.serial, d->desc.serial)) {
                fprintf(stderr, "kinsync fuse: %s and %s are both from device %s; give one recording per device\n",
                        devs[j].path, d->path, d->desc.serial);
                rc = KS_EXIT_USAGE;
                goto done;
            }
        if (d->desc.sync_mode == KS_SYNC_MASTER) {
            master = i;
            fps = d->desc.fps;
        } else if (i == 0) {
            fps = d->desc.fps;
        }
        fdev[i].calibration = d->cal;
        fdev[i].depth_to_rig = d->pose.depth_to_rig;
        snprintf(fdev[i].serial, sizeof fdev[i].serial, "%s", d->desc.serial);
    }
    if (fill_arg) {
        char *end;
        long idx = strtol(fill_arg, &end, 10);
        for (int i = 0; i < n; i++)
            if (!strcmp(devs[i].desc.serial, fill_arg))
                fill = i;
        if (fill < 0 && *end == 0 && idx >= 0 && idx < n)
            fill = (int)idx;
        if (fill < 0) {
            rc = ks_cli_usage_error("fuse", "--fill %s: no such device among the recordings (give a serial or an "
                                            "index 0..%d)", fill_arg, n - 1);
            goto done;
        }
    }
    if (make_dir(out_dir) != 0) {
        fprintf(stderr, "kinsync fuse: cannot create the output directory %s: %s\n", out_dir, strerror(errno));
        rc = KS_EXIT_USAGE;
        goto done;
    }
    if (interleaved) {
        rc = run_interleaved(devs, n, out_dir, frames_given ? frames : 0, json);
        goto done;
    }
    ks_fuse_options fo = {.voxel_mm = (float)voxel, .threads = (int)threads, .color = color, .normals = normals};
    if (ks_fuse_create(fdev, n, &fo, &fz, &err)) {
        ks_cli_print_error("fuse", &err);
        rc = KS_EXIT_FAIL;
        goto done;
    }
    if (fill >= 0) {
        size_t np = (size_t)devs[fill].cal.depth.width * (size_t)devs[fill].cal.depth.height;
        render = malloc(np * sizeof *render);
        filled = malloc(np * sizeof *filled);
        if (!render || !filled) {
            rc = KS_EXIT_FAIL;
            goto done;
        }
    }
    if (live) {
        if (ks_session_start(sess, &err) != KS_OK) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto done;
        }
        ks_cli_stop_on_sigint(sess);
    }
    uint64_t tol = match_us > 0 ? (uint64_t)match_us : (uint64_t)ks_sdk_sync_tolerance_us(fps);
    bool tty = ks_cli_is_tty(stderr) && !json;
    long sets = 0, master_frames = 0, skipped_partial = 0;
    double sum_voxels = 0, sum_shared = 0, sum_ms = 0;
    size_t filled_total = 0;
    unsigned ply_fields = (color ? KS_CLOUD_COLOR : 0) | (normals ? KS_CLOUD_NORMALS : 0);
    while (frames == 0 || sets < frames) {
        int present = 0;
        if (live) {
            ks_status st = ks_session_next(sess, &lset, 2000, &err);
            if (st == KS_ETIMEOUT)
                continue;
            if (st == KS_EEOF)
                break;
            if (st) {
                ks_cli_print_error("fuse", &err);
                rc = KS_EXIT_FAIL;
                break;
            }
            have_lset = true;
            if (!seen_complete && !lset.set.complete) { /* warm-up: devices drop frames right after start */
                ks_session_set_release(&lset);
                have_lset = false;
                continue;
            }
            seen_complete = true;
            for (int i = 0; i < n; i++) {
                memset(&in[i], 0, sizeof in[i]);
                ks_capture *cap = (lset.set.present_mask & (1u << i)) ? lset.set.frames[i].user : NULL;
                ks_image *di = cap ? cap->depth : NULL, *ci = cap ? cap->color : NULL;
                if (!di || di->width != devs[i].cal.depth.width || di->height != devs[i].cal.depth.height)
                    continue;
                in[i].depth = (const uint16_t *)di->data;
                in[i].depth_stride = di->stride > 0 ? (size_t)di->stride / 2 : 0;
                present++;
                if (color && ci && (ci->format == KS_FORMAT_MJPG || ci->format == KS_FORMAT_BGRA32)) {
                    in[i].color_format = ci->format;
                    in[i].color = ci->data;
                    in[i].color_size = ci->size;
                    in[i].color_width = ci->width;
                    in[i].color_height = ci->height;
                    in[i].color_stride = ci->stride > 0 ? (size_t)ci->stride : 0;
                }
            }
            goto fuse_set;
        }
        dev_in *m = &devs[master];
        ks_status st = next_depth(m, &err);
        if (st == KS_EEOF)
            break;
        if (st) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            break;
        }
        if (master_frames++ % step)
            continue;
        uint64_t t0 = m->depth_ts;
        for (int i = 0; i < n; i++) {
            dev_in *d = &devs[i];
            if (i != master)
                while (!d->eof && (!d->depth || d->depth_ts + tol < t0))
                    if ((st = next_depth(d, &err)) != KS_OK && st != KS_EEOF) {
                        ks_cli_print_error("fuse", &err);
                        rc = KS_EXIT_FAIL;
                        goto done;
                    }
            memset(&in[i], 0, sizeof in[i]);
            uint64_t dt = d->depth ? (d->depth_ts > t0 ? d->depth_ts - t0 : t0 - d->depth_ts) : UINT64_MAX;
            if (!d->depth || dt > tol || d->depth->width != d->cal.depth.width ||
                d->depth->height != d->cal.depth.height)
                continue;
            in[i].depth = (const uint16_t *)d->depth->data;
            in[i].depth_stride = d->depth->stride > 0 ? (size_t)d->depth->stride / 2 : 0;
            present++;
            if (color && d->color) {
                uint64_t ct = d->color_ts > d->depth_ts ? d->color_ts - d->depth_ts : d->depth_ts - d->color_ts;
                uint64_t ctol = tol; /* both on the colour timeline */
                if (ct <= ctol) {
                    in[i].color_format = d->color->format;
                    in[i].color = d->color->data;
                    in[i].color_size = d->color->size;
                    in[i].color_width = d->color->width;
                    in[i].color_height = d->color->height;
                    in[i].color_stride = d->color->stride > 0 ? (size_t)d->color->stride : 0;
                    if (d->color->format != KS_FORMAT_MJPG && d->color->format != KS_FORMAT_BGRA32)
                        in[i].color = NULL; /* NV12/YUY2: not decoded here */
                }
            }
        }
        if (present < n && !seen_complete) { /* a device started late: begin with the first complete set */
            skipped_partial++;
            continue;
        }
        seen_complete = true;
    fuse_set:;
        ks_fuse_stats fs;
        if (ks_fuse_run(fz, in, &cloud, &fs, &err)) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/fused-%06ld.ply", out_dir, sets);
        if (ks_ply_write(path, &cloud, ply_fields, &err)) {
            ks_cli_print_error("fuse", &err);
            rc = KS_EXIT_FAIL;
            goto done;
        }
        json_array_append_new(outputs, json_string(path));
        if (fill >= 0 && in[fill].depth) {
            const ks_intrinsics *di = &devs[fill].cal.depth;
            ks_extrinsics rig_to_cam;
            ks_extrinsics_invert(&devs[fill].pose.depth_to_rig, &rig_to_cam);
            ks_render_depth(&cloud, di, &rig_to_cam, (float)voxel, render, NULL);
            /* the device's own depth, packed (the recording's rows may be padded) */
            for (int v = 0; v < di->height; v++)
                memcpy(filled + (size_t)v * (size_t)di->width,
                       in[fill].depth + (size_t)v * (in[fill].depth_stride ? in[fill].depth_stride : (size_t)di->width),
                       (size_t)di->width * sizeof *filled);
            size_t nf = ks_depth_fill_holes(filled, render, di->width, di->height, filled);
            filled_total += nf;
            snprintf(path, sizeof path, "%s/filled-%s-%06ld.png", out_dir, devs[fill].desc.serial, sets);
            if (ks_png_write_depth16(path, filled, di->width, di->height, &err)) {
                ks_cli_print_error("fuse", &err);
                rc = KS_EXIT_FAIL;
                goto done;
            }
            json_array_append_new(outputs, json_string(path));
        }
        for (int i = 0; i < n; i++)
            if (in[i].depth) {
                devs[i].sets++;
                devs[i].points += (double)fs.points[i];
            }
        sum_voxels += (double)fs.voxels;
        sum_shared += (double)fs.voxels_shared;
        sum_ms += fs.ms_total;
        sets++;
        if (tty)
            fprintf(stderr, "\rfuse: frame set %ld%s%ld: %d of %d devices, %zu points -> %zu voxels   ", sets,
                    frames ? "/" : "", frames ? frames : sets, present, n, fs.points_total, fs.voxels);
        if (have_lset) {
            ks_session_set_release(&lset);
            have_lset = false;
        }
    }
    if (tty)
        fputc('\n', stderr);
    if (rc != KS_EXIT_OK)
        goto done;
    if (sets == 0 && skipped_partial) {
        fprintf(stderr, "kinsync fuse: no frame set with all %d devices (%ld partial sets skipped): do the recordings "
                        "overlap in time, and were the devices synchronized? (--match-us widens the tolerance)\n",
                n, skipped_partial);
        rc = KS_EXIT_FAIL;
        goto done;
    }
    if (sets == 0) {
        fprintf(stderr, "kinsync fuse: no frame set: %s has no depth frames\n", live ? argv[optind] : devs[master].path);
        rc = KS_EXIT_FAIL;
        goto done;
    }
    double ds = (double)sets;
    if (json) {
        json_t *jd = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(jd, json_pack("{s:s, s:s, s:i, s:f}", "serial", devs[i].desc.serial, "recording",
                                                devs[i].path, "frame_sets", devs[i].sets, "points_mean",
                                                devs[i].sets ? devs[i].points / devs[i].sets : 0.0));
        json_t *root = json_pack("{s:i, s:f, s:o, s:f, s:f, s:f, s:f, s:o}", "frame_sets", (int)sets, "voxel_mm",
                                 voxel, "devices", jd, "voxels_mean", sum_voxels / ds, "shared_voxels_mean",
                                 sum_shared / ds, "overlap_fraction", sum_voxels > 0 ? sum_shared / sum_voxels : 0.0,
                                 "ms_per_frame_set", sum_ms / ds, "outputs", outputs);
        outputs = NULL;
        if (fill >= 0) {
            json_object_set_new(root, "fill_device", json_string(devs[fill].desc.serial));
            json_object_set_new(root, "filled_pixels", json_integer((json_int_t)filled_total));
        }
        char *s = json_dumps(root, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(root);
    } else {
        printf("fused %ld frame set%s of %d devices, %.3g mm voxels -> %s/fused-*.ply\n", sets, sets == 1 ? "" : "s",
               n, voxel, out_dir);
        for (int i = 0; i < n; i++)
            printf("  %-14s %6d frame sets, %9.0f points per set  (%s)\n", devs[i].desc.serial, devs[i].sets,
                   devs[i].sets ? devs[i].points / devs[i].sets : 0.0, base_name(devs[i].path));
        printf("  merged: %.0f voxels per set, %.0f seen by 2+ devices (overlap %.1f%%), %.1f ms per set\n",
               sum_voxels / ds, sum_shared / ds, sum_voxels > 0 ? 100.0 * sum_shared / sum_voxels : 0.0, sum_ms / ds);
        if (fill >= 0)
            printf("  fill: %zu pixels of %s's depth filled from the other devices (%.0f per set) -> "
                   "%s/filled-%s-*.png\n",
                   filled_total, devs[fill].desc.serial, (double)filled_total / ds, out_dir, devs[fill].desc.serial);
    }
done:
    if (have_lset)
        ks_session_set_release(&lset);
    if (sess) {
        ks_cli_stop_on_sigint(NULL);
        ks_session_stop(sess);
        ks_session_close(sess);
    }
    if (rr_open)
        ks_cli_rigrun_close(&rr);
    if (devs)
        for (int i = 0; i < n; i++) {
            if (devs[i].depth)
                ks_image_release(devs[i].depth);
            if (devs[i].color)
                ks_image_release(devs[i].color);
            if (devs[i].r)
                ks_mkv_reader_close(devs[i].r);
        }
    json_decref(outputs);
    ks_fuse_destroy(fz);
    ks_cloud_free(&cloud);
    free(render);
    free(filled);
    free(devs);
    free(fdev);
    free(in);
    free(poses);
    return rc;
}
