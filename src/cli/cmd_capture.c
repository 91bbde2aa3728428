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
#include "kinsync/frameset.h"
#include "kinsync/record.h"
#include "kinsync/session.h"
#include "kinsync/syncstats.h"
#include "util/fileio.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync capture [OPTIONS] (RIG.yaml | RECORDING.mkv...) --frames N --out DIR\n"
            "\n"
            "Starts the rig as `kinsync verify` does and writes N frame sets to DIR as a frame-set\n"
            "directory (docs/frameset-dir.md; `kinsync calibrate DIR` reads it): for set i the\n"
            "directory DIR/NNNNNN/ holds NAME-color.jpg (MJPG; .bgra/.nv12/.yuy2 raw otherwise),\n"
            "NAME-depth.png and NAME-ir.png (16-bit grey PNG) per device, DIR/NAME-calibration.json\n"
            "each device's calibration, and DIR/index.json describes every set: frame-set key, device\n"
            "timestamps, host times from the device-to-host clock fit, exposure, which devices are\n"
            "missing, and the sync checks of the run. Writing starts with the first complete set; later\n"
            "partial sets (a device dropped a frame) are written and marked.\n"
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

/* The frame-set directory's description of the session's devices (with their calibrations,
 * freed by the caller). */
static void describe_devices(const ks_cli_rigrun *r, ks_session *s, ks_frameset_device *dv)
{
    const int n = ks_session_device_count(s);
    memset(dv, 0, sizeof(*dv) * (size_t)n);
    for (int d = 0; d < n; d++) {
        int ri = ks_session_rig_index(s, d);
        snprintf(dv[d].name, sizeof dv[d].name, "%s", ks_session_device_name(s, d));
        snprintf(dv[d].serial, sizeof dv[d].serial, "%s", r->rig.devices[ri].serial);
        dv[d].config = *ks_device_running_config(ks_session_device(s, d));
        if (ks_device_get_calibration_json(ks_session_device(s, d), &dv[d].calibration_json, &dv[d].calibration_len,
                                           NULL) != KS_OK)
            dv[d].calibration_json = NULL;
    }
}

/* One frame set: its images through the frame-set writer, or into the recorder. The colour start
 * of every frame is kept for the host times of the final clock fit. */
static ks_status write_set(ks_session *s, const ks_session_set *set, long index, ks_frameset_writer *w,
                           ks_recorder *rec, double *color_start, ks_error *err)
{
    const int n = ks_session_device_count(s);
    ks_status st = ks_frameset_writer_set(w, index, set->set.key_us, set->set.complete, err);
    for (int d = 0; d < n && st == KS_OK; d++) {
        color_start[d] = NAN;
        if (!(set->set.present_mask & (1u << d)))
            continue;
        ks_capture *cap = set->set.frames[d].user;
        color_start[d] = set->set.frames[d].color_start_us;
        if (rec) { /* the recorder holds the images; the index keeps their timestamps */
            st = ks_recorder_add_capture(rec, d, cap, err);
            if (st == KS_OK)
                st = ks_frameset_writer_add_timestamps(w, index, d, cap, set->host_ns[d], err);
        } else {
            st = ks_frameset_writer_add(w, index, d, cap, set->host_ns[d], err);
        }
    }
    return st;
}

typedef struct cap_args {
    long frames;
    const char *out, *backend;
    bool fast, json, mkv;
    const char *const *inputs;
    int nin;
} cap_args;

/* Flags into *a and --out checked (made if missing, writable, no capture in it yet); returns -1 to
 * go on, else the exit status (usage errors, --help). */
static int parse_args(int argc, char **argv, cap_args *a)
{
    static const struct option opts[] = {{"frames", required_argument, 0, 'n'}, {"out", required_argument, 0, 'o'},
                                         {"backend", required_argument, 0, 'b'}, {"fast", no_argument, 0, 'f'},
                                         {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
                                         {"mkv", no_argument, 0, 'm'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->frames = -1;
    a->backend = "auto";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'n':
            a->frames = strtol(optarg, &end, 10);
            if (*end || a->frames <= 0 || a->frames > 10000000)
                return ks_cli_usage_error("capture", "--frames needs a positive count, got '%s'", optarg);
            break;
        case 'o': a->out = optarg; break;
        case 'b': a->backend = optarg; break;
        case 'f': a->fast = true; break;
        case 'j': a->json = true; break;
        case 'm': a->mkv = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("capture", "unknown option");
        }
    }
    a->inputs = (const char *const *)argv + optind;
    a->nin = argc - optind;
    if (optind >= argc)
        return ks_cli_usage_error("capture", "give one rig file or one recording per device");
    if (a->frames < 0)
        return ks_cli_usage_error("capture", "--frames N is required");
    if (!a->out)
        return ks_cli_usage_error("capture", "--out DIR is required");
    char index_path[4096];
    snprintf(index_path, sizeof index_path, "%s/index.json", a->out);
    if (mkdir(a->out, 0777) != 0 && errno != EEXIST)
        return ks_cli_usage_error("capture", "cannot create %s: %s", a->out, strerror(errno));
    struct stat osb;
    if (stat(a->out, &osb) != 0 || !S_ISDIR(osb.st_mode))
        return ks_cli_usage_error("capture", "--out %s is not a directory; give a directory for the frame sets", a->out);
    if (access(a->out, W_OK) != 0)
        return ks_cli_usage_error("capture", "--out %s is not writable: %s", a->out, strerror(errno));
    if (access(index_path, F_OK) == 0)
        return ks_cli_usage_error("capture", "%s already holds a capture (index.json); choose another --out", a->out);
    return -1;
}

/* Host times of every written frame through the device-to-host clock fit of the whole run, and the
 * run's sync figures, into the index; closes the writer. False when the index could not be written. */
static bool finish_index(ks_cli_rigrun *r, ks_syncstats *q, ks_frameset_writer *w, const double *starts, long written,
                         int nd)
{
    bool ok = true;
    for (long k = 0; k < written && starts; k++)
        for (int d = 0; d < nd; d++) {
            double cs = starts[(size_t)nd * (size_t)k + (size_t)d];
            uint64_t h = isfinite(cs) ? ks_syncstats_host_ns(q, d, cs) : 0;
            if (h)
                ks_frameset_writer_set_host_ns(w, k, d, h, NULL);
        }
    char *sync = ks_syncstats_to_json(q);
    json_t *extra = json_pack("{s:s, s:s}", "rig", r->rig.name, "backend", ks_backend_name(r->backend));
    json_t *jsync = sync ? json_loads(sync, 0, NULL) : NULL;
    free(sync);
    if (jsync)
        json_object_set_new(extra, "sync", jsync);
    char *extra_text = json_dumps(extra, 0);
    json_decref(extra);
    ks_error ierr;
    if (ks_frameset_writer_close(w, extra_text, &ierr) != KS_OK) {
        ks_cli_print_error("capture", &ierr);
        ok = false;
    }
    free(extra_text);
    return ok;
}

int cmd_capture(int argc, char **argv)
{
    cap_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    const long frames = a.frames;
    const char *out = a.out;
    const bool json = a.json, mkv = a.mkv;
    ks_cli_rigrun r;
    ks_error err;
    rc = ks_cli_source_open(a.inputs, a.nin, a.backend, a.fast, &r, &err);
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
    const int nd = ks_session_device_count(s);
    ks_frameset_device dv[KS_MATCH_MAX_DEVICES];
    describe_devices(&r, s, dv);
    if (mkv)
        for (int d = 0; d < nd; d++) {
            char roles[KS_RIG_MAX_DEVICES][64];
            int ri = ks_session_rig_index(s, d);
            ks_record_role_names(&r.rig, roles);
            ks_record_file_name(roles[ri], r.rig.devices[ri].serial, dv[d].recording, sizeof dv[d].recording);
        }
    ks_frameset_writer *w = NULL;
    ks_status st0 = ks_frameset_writer_open(out, dv, nd, r.rig.ts_convention, "capture", &w, &err);
    for (int d = 0; d < nd; d++)
        free(dv[d].calibration_json);
    if (st0 != KS_OK) {
        ks_cli_print_error("capture", &err);
        if (rec)
            ks_recorder_close(rec, NULL);
        ks_session_close(s);
        ks_cli_rigrun_close(&r);
        return KS_EXIT_FAIL;
    }
    ks_cli_stop_on_sigint(s);
    double *starts = NULL; /* colour start of every written frame, set-major, for the final clock fit */
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
        double *ns = realloc(starts, sizeof *starts * (size_t)nd * (size_t)(written + 1));
        if (ns)
            starts = ns;
        if (!ns || write_set(s, &set, written, w, rec, starts + (size_t)nd * (size_t)written, &err) != KS_OK)
            ok = false;
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
    ok = finish_index(&r, q, w, starts, written, nd) && ok;
    free(starts);
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
