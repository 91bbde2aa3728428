/* kinsync capture RIG.yaml --frames N --out DIR: run the rig like `kinsync verify` and write N frame
 * sets to DIR as raw images plus an index.json (docs/capture.md). Every file is written to a
 * temporary name and renamed when complete; index.json last. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/session_cli.h"
#include "kinsync/record.h"
#include "kinsync/session.h"
#include "kinsync/syncstats.h"
#include "util/fileio.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync capture [OPTIONS] (RIG.yaml | RECORDING.mkv...) --frames N --out DIR\n"
            "\n"
            "Starts the rig as `kinsync verify` does and writes N frame sets to DIR: for set i the\n"
            "directory DIR/NNNNNN/ holds NAME_color.jpg (MJPG; .bgra/.nv12/.yuy2 raw otherwise),\n"
            "NAME_depth.raw and NAME_ir.raw (uint16 little endian, width x height) per device, and\n"
            "DIR/index.json describes every set: device timestamps, host times from the device-to-host\n"
            "clock fit, exposure, which devices are missing, and the sync checks of the run\n"
            "(docs/capture.md). Writing starts with the first complete set; later partial sets (a device\n"
            "dropped a frame) are written and marked.\n"
            "Ctrl-C stops cleanly: the sets so far and a complete index.json stay.\n"
            "RECORDING.mkv...: one recording per device of a take; its frame sets, formed as `kinsync\n"
            "verify` forms them, are written the same way (the take ends the capture early).\n"
            "\n"
            "Options:\n"
            "  --frames N        frame sets to write (required)\n"
            "  --out DIR         output directory, created if missing; must not hold an index.json\n"
            "  --mkv             write one Azure Kinect .mkv per device (ROLE-SERIAL.mkv, through the\n"
            "                    recorder, docs/record.md) instead of raw image files; index.json stays\n"
            "  --backend NAME    auto (default), sim, k4a\n"
            "  --fast            simulator: virtual time as fast as possible\n"
            "  --json            print the summary as JSON\n"
            "  -h, --help        this text\n"
            "\n"
            "Exit status: 0 all sets written, 1 the rig failed to start or a device failed, 2 usage error.\n");
}

static bool write_file(const char *path, const void *data, size_t n)
{
    return ks_file_write_atomic(path, data, n, NULL) == KS_OK;
}

static const char *color_ext(ks_image_format f)
{
    switch (f) {
    case KS_FORMAT_MJPG: return "jpg";
    case KS_FORMAT_BGRA32: return "bgra";
    case KS_FORMAT_NV12: return "nv12";
    case KS_FORMAT_YUY2: return "yuy2";
    default: return "raw";
    }
}

static json_t *image_entry(const char *dir, const char *rel, const ks_image *img, ks_error *err, bool *ok)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (!write_file(path, img->data, img->size)) {
        ks_error_set(err, KS_EIO, "cannot write %s: %s; check free space and permissions", path, strerror(errno));
        *ok = false;
    }
    json_t *j = json_object();
    json_object_set_new(j, "file", json_string(rel));
    json_object_set_new(j, "format", json_string(ks_image_format_name(img->format)));
    json_object_set_new(j, "width", json_integer(img->width));
    json_object_set_new(j, "height", json_integer(img->height));
    json_object_set_new(j, "device_ts_us", json_integer((json_int_t)img->device_ts_us));
    json_object_set_new(j, "system_ts_ns", json_integer((json_int_t)img->system_ts_ns));
    json_object_set_new(j, "exposure_us", json_integer((json_int_t)img->exposure_us));
    return j;
}

/* --mkv: one recorder file per session device, with its configuration, firmware and calibration. */
static ks_status open_recorder(const ks_cli_rigrun *r, ks_session *s, const char *out, ks_recorder **rec,
                               ks_error *err)
{
    const int n = ks_session_device_count(s);
    ks_record_device rd[KS_MATCH_MAX_DEVICES];
    char roles[KS_RIG_MAX_DEVICES][64];
    char *calib[KS_MATCH_MAX_DEVICES] = {0};
    ks_record_role_names(&r->rig, roles);
    memset(rd, 0, sizeof rd);
    for (int d = 0; d < n; d++) {
        int ri = ks_session_rig_index(s, d);
        const ks_device_info *info = ks_device_info_get(ks_session_device(s, d));
        snprintf(rd[d].serial, sizeof rd[d].serial, "%s", r->rig.devices[ri].serial);
        snprintf(rd[d].role, sizeof rd[d].role, "%s", roles[ri]);
        rd[d].config = *ks_device_running_config(ks_session_device(s, d));
        rd[d].color_fw = info->rgb;
        rd[d].depth_fw = info->depth;
        rd[d].has_firmware = true;
        size_t len = 0;
        if (ks_device_get_calibration_json(ks_session_device(s, d), &calib[d], &len, NULL) == KS_OK) {
            rd[d].calibration_json = calib[d];
            rd[d].calibration_len = len;
        }
    }
    ks_recorder_options ro;
    memset(&ro, 0, sizeof ro);
    ks_record_rig_tags(&r->rig, &ro);
    ks_status st = ks_recorder_open(out, n, rd, &ro, rec, err);
    for (int d = 0; d < n; d++)
        free(calib[d]);
    return st;
}

/* One frame set: its images (or into the recorder) and its entry of index.json. */
static json_t *write_set(ks_session *s, const ks_session_set *set, long index, const char *out, ks_recorder *rec,
                         ks_error *err, bool *ok)
{
    const int n = ks_session_device_count(s);
    char sub[64], dir[4200];
    snprintf(sub, sizeof sub, "%06ld", index);
    snprintf(dir, sizeof dir, "%s/%s", out, sub);
    if (!rec && mkdir(dir, 0777) != 0 && errno != EEXIST) {
        ks_error_set(err, KS_EIO, "cannot create %s: %s", dir, strerror(errno));
        *ok = false;
    }
    json_t *js = json_object(), *jf = json_object(), *miss = json_array();
    json_object_set_new(js, "index", json_integer(index));
    json_object_set_new(js, "key_us", json_real(set->set.key_us));
    json_object_set_new(js, "complete", json_boolean(set->set.complete));
    for (int d = 0; d < n && *ok; d++) {
        const char *name = ks_session_device_name(s, d);
        if (!(set->set.present_mask & (1u << d))) {
            json_array_append_new(miss, json_string(name));
            continue;
        }
        ks_capture *cap = set->set.frames[d].user;
        json_t *jd = json_object();
        char rel[256];
        if (rec) {
            if (ks_recorder_add_capture(rec, d, cap, err) != KS_OK)
                *ok = false;
            if (cap->color)
                json_object_set_new(jd, "color_ts_us", json_integer((json_int_t)cap->color->device_ts_us));
            if (cap->depth)
                json_object_set_new(jd, "depth_ts_us", json_integer((json_int_t)cap->depth->device_ts_us));
        } else if (cap->color) {
            snprintf(rel, sizeof rel, "%s/%s_color.%s", sub, name, color_ext(cap->color->format));
            json_object_set_new(jd, "color", image_entry(out, rel, cap->color, err, ok));
        }
        if (!rec && cap->depth) {
            snprintf(rel, sizeof rel, "%s/%s_depth.raw", sub, name);
            json_object_set_new(jd, "depth", image_entry(out, rel, cap->depth, err, ok));
        }
        if (!rec && cap->ir) {
            snprintf(rel, sizeof rel, "%s/%s_ir.raw", sub, name);
            json_object_set_new(jd, "ir", image_entry(out, rel, cap->ir, err, ok));
        }
        json_object_set_new(jd, "color_start_us", isfinite(set->set.frames[d].color_start_us)
                                                      ? json_real(set->set.frames[d].color_start_us)
                                                      : json_null());
        json_object_set_new(jf, name, jd);
    }
    json_object_set_new(js, "missing", miss);
    json_object_set_new(js, "frames", jf);
    return js;
}

/* index.json: the rig, every device, every set (with host times through the clock fit) and the
 * sync checks of the run; written through a temporary name. Takes `sets`. */
static bool write_index(const ks_cli_rigrun *r, ks_session *s, ks_syncstats *q, json_t *sets, bool mkv,
                        const char *index_path)
{
    const int n = ks_session_device_count(s);
    bool ok = true;
    /* host time of every frame through the device-to-host clock fit */
    size_t i;
    json_t *js;
    json_array_foreach(sets, i, js)
    {
        json_t *jf = json_object_get(js, "frames");
        for (int d = 0; d < n; d++) {
            json_t *jd = json_object_get(jf, ks_session_device_name(s, d));
            json_t *cs = jd ? json_object_get(jd, "color_start_us") : NULL;
            if (cs && json_is_real(cs)) {
                uint64_t h = ks_syncstats_host_ns(q, d, json_real_value(cs));
                if (h)
                    json_object_set_new(jd, "host_ns", json_integer((json_int_t)h));
            }
        }
    }
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("kinsync.capture/1"));
    json_object_set_new(root, "rig", json_string(r->rig.name));
    json_object_set_new(root, "backend", json_string(ks_backend_name(r->backend)));
    json_object_set_new(root, "timestamp_convention", json_string(ks_ts_convention_name(r->rig.ts_convention)));
    json_t *devs = json_array();
    for (int d = 0; d < n; d++) {
        json_t *jd = json_object();
        int ri = ks_session_rig_index(s, d);
        json_object_set_new(jd, "name", json_string(ks_session_device_name(s, d)));
        json_object_set_new(jd, "serial", json_string(r->rig.devices[ri].serial));
        json_object_set_new(jd, "sync_mode", json_string(ks_wired_sync_mode_name(r->plan.devices[ri].sync_mode)));
        json_object_set_new(jd, "subordinate_delay_usec", json_integer(r->plan.devices[ri].subordinate_delay_usec));
        json_object_set_new(jd, "depth_delay_usec", json_integer(r->plan.devices[ri].depth_delay_usec));
        if (mkv) {
            char roles[KS_RIG_MAX_DEVICES][64], file[160];
            ks_record_role_names(&r->rig, roles);
            ks_record_file_name(roles[ri], r->rig.devices[ri].serial, file, sizeof file);
            json_object_set_new(jd, "mkv", json_string(file));
        }
        json_array_append_new(devs, jd);
    }
    json_object_set_new(root, "devices", devs);
    json_object_set_new(root, "sets", sets);
    char *sync = ks_syncstats_to_json(q);
    json_t *jsync = sync ? json_loads(sync, 0, NULL) : NULL;
    free(sync);
    if (jsync)
        json_object_set_new(root, "sync", jsync);
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (!text || !write_file(index_path, text, strlen(text))) {
        fprintf(stderr, "kinsync capture: error: cannot write %s; check free space\n", index_path);
        ok = false;
    }
    free(text);
    return ok;
}

int cmd_capture(int argc, char **argv)
{
    static const struct option opts[] = {{"frames", required_argument, 0, 'n'}, {"out", required_argument, 0, 'o'},
                                         {"backend", required_argument, 0, 'b'}, {"fast", no_argument, 0, 'f'},
                                         {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
                                         {"mkv", no_argument, 0, 'm'},
                                         {0, 0, 0, 0}};
    long frames = -1;
    const char *out = NULL, *backend = "auto";
    bool fast = false, json = false, mkv = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'n':
            frames = strtol(optarg, &end, 10);
            if (*end || frames <= 0 || frames > 10000000)
                return ks_cli_usage_error("capture", "--frames needs a positive count, got '%s'", optarg);
            break;
        case 'o': out = optarg; break;
        case 'b': backend = optarg; break;
        case 'f': fast = true; break;
        case 'j': json = true; break;
        case 'm': mkv = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("capture", "unknown option");
        }
    }
    if (optind >= argc)
        return ks_cli_usage_error("capture", "give one rig file or one recording per device");
    if (frames < 0)
        return ks_cli_usage_error("capture", "--frames N is required");
    if (!out)
        return ks_cli_usage_error("capture", "--out DIR is required");
    char index_path[4096];
    snprintf(index_path, sizeof index_path, "%s/index.json", out);
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return ks_cli_usage_error("capture", "cannot create %s: %s", out, strerror(errno));
    struct stat osb;
    if (stat(out, &osb) != 0 || !S_ISDIR(osb.st_mode))
        return ks_cli_usage_error("capture", "--out %s is not a directory; give a directory for the frame sets", out);
    if (access(out, W_OK) != 0)
        return ks_cli_usage_error("capture", "--out %s is not writable: %s", out, strerror(errno));
    if (access(index_path, F_OK) == 0)
        return ks_cli_usage_error("capture", "%s already holds a capture (index.json); choose another --out", out);

    ks_cli_rigrun r;
    ks_error err;
    int rc = ks_cli_source_open((const char *const *)argv + optind, argc - optind, backend, fast, &r, &err);
    if (rc != KS_EXIT_OK) {
        ks_cli_print_error("capture", &err);
        ks_cli_rigrun_close(&r);
        return rc;
    }
    ks_session_options opt;
    ks_session_options_init(&opt);
    opt.allow_firmware_mismatch = r.recordings; /* a finished take is what it is */
    ks_session *s = NULL;
    if (ks_session_open(&r.rig, &r.plan, r.backend, &opt, &s, &err) != KS_OK || ks_session_start(s, &err) != KS_OK) {
        ks_cli_print_error("capture", &err);
        ks_session_close(s);
        ks_cli_rigrun_close(&r);
        return KS_EXIT_FAIL;
    }
    ks_recorder *rec = NULL;
    if (mkv && open_recorder(&r, s, out, &rec, &err) != KS_OK) {
        ks_cli_print_error("capture", &err);
        ks_session_close(s);
        ks_cli_rigrun_close(&r);
        return KS_EXIT_FAIL;
    }
    ks_cli_stop_on_sigint(s);
    json_t *sets = json_array();
    bool ok = true, tty = !json && ks_cli_is_tty(stderr);
    long written = 0;
    bool seen_complete = false;
    ks_session_set set;
    ks_status st = KS_OK;
    struct timespec last = {0, 0};
    while (written < frames && ok) {
        st = ks_session_next(s, &set, 2000, &err);
        if (st == KS_ETIMEOUT)
            continue;
        if (st != KS_OK)
            break;
        if (!seen_complete && !set.set.complete) { /* warm-up: devices drop a few frames right after start */
            ks_session_set_release(&set);
            continue;
        }
        seen_complete = true;
        json_t *js = write_set(s, &set, written, out, rec, &err, &ok);
        json_array_append_new(sets, js);
        ks_session_set_release(&set);
        written++;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (tty && (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 > 500) {
            ks_cli_progress_line(stderr, s);
            last = now;
        }
    }
    if (tty)
        fputc('\n', stderr);
    /* a take shorter than --frames ends the capture; live, an early end is a fault */
    bool fault = st == KS_ENODEV || (st == KS_EEOF && !r.recordings) ? written < frames : false;
    if (!ok || (st != KS_OK && st != KS_EEOF && st != KS_ETIMEOUT))
        ks_cli_print_error("capture", &err);
    ks_session_stop(s);
    if (rec) {
        ks_error cerr;
        if (ks_recorder_close(rec, &cerr) != KS_OK) {
            ks_cli_print_error("capture", &cerr);
            ok = false;
        }
        rec = NULL;
    }
    ks_syncstats *q = ks_session_stats(s);
    if (!write_index(&r, s, q, sets, mkv, index_path))
        ok = false;
    if (json)
        printf("{\"schema\": \"kinsync.capture-summary/1\", \"sets\": %ld, \"requested\": %ld, \"out\": \"%s\", "
               "\"sync_passed\": %s}\n",
               written, frames, out, ks_syncstats_passed(q) ? "true" : "false");
    else
        printf("wrote %ld of %ld frame sets to %s (index.json); sync %s\n", written, frames, out,
               ks_syncstats_passed(q) ? "PASS" : "FAIL (run `kinsync verify` for the figures)");
    ks_cli_stop_on_sigint(NULL);
    ks_session_close(s);
    ks_cli_rigrun_close(&r);
    return ok && !fault ? KS_EXIT_OK : KS_EXIT_FAIL;
}
