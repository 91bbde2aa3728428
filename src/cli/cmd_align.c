/* kinsync align FILE... [--json] [--export DIR]: which recording is master and which subordinates,
 * start offsets, frame sets by device timestamp with the planned delays, drops, skew, drift,
 * partial sets and files that do not belong (docs/align.md). The partial sets of the ragged start and
 * stop are trimmed and counted. Exit 0 when every file belongs and every other frame set is
 * complete, 1 when some file does not belong, sets are partial or no set is complete, 2 on usage
 * or unreadable files. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/align.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync align FILE.mkv... [--json] [--export DIR] [--max-sets N]\n"
            "                     [--color-exposure-us US] [--timestamps seed|mid-exposure]\n"
            "\n"
            "Aligns recordings of one rig (one file per device, e.g. from several hosts):\n"
            "which file is the master and which are subordinates (from the K4A_WIRED_SYNC_MODE tag),\n"
            "their start offsets, frame sets grouped by device timestamp with the planned delays\n"
            "removed, per-device drops, color skew against the master, drift, frames present in some\n"
            "files only, and files that do not belong (another rig, plan, frame rate or mode).\n"
            "The partial sets of the ragged start and stop (before every device has started, after\n"
            "the first one stopped) are trimmed, and their number reported.\n"
            "\n"
            "  --json          machine-readable report on stdout\n"
            "  --export DIR    write the aligned frame sets as a frame-set directory (the format\n"
            "                  `kinsync capture` writes and `kinsync calibrate DIR` reads,\n"
            "                  docs/frameset-dir.md): DIR/NNNNNN/ROLE-SERIAL-color.jpg, -depth.png,\n"
            "                  -ir.png (16-bit), each device's calibration and DIR/index.json; a DIR\n"
            "                  that already holds an index.json is refused\n"
            "  --max-sets N    export at most N sets (default all)\n"
            "  --sets          list every frame set (text output)\n"
            "  --color-exposure-us US, --timestamps CONV\n"
            "                  for files without kinsync's tags (k4arecorder): the manual color\n"
            "                  exposure and timestamp convention they were recorded with, so that\n"
            "                  depth and color are compared by their centres (an exposure alone\n"
            "                  implies seed, the rig file's default)\n"
            "  -h, --help      this help\n"
            "\n"
            "Exit status: 0 all files belong and every set (edges trimmed) is complete, 1 a file does\n"
            "not belong, some sets are partial or no set is complete, 2 usage error, unreadable file\n"
            "or --export DIR already holding an index.json.\n");
}

static json_t *stats_json(const ks_align_stats *s)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)s->n, "mean", s->mean, "min", s->min, "max",
                     s->max, "stddev", s->stddev, "max_abs", s->max_abs);
}

static json_t *to_json(const ks_align_result *r, bool with_sets)
{
    json_t *root = json_object();
    json_object_set_new(root, "reference", json_string(r->files[r->reference].path));
    json_object_set_new(root, "frame_period_us", json_integer(r->period_us));
    json_object_set_new(root, "sets", json_integer((json_int_t)r->set_count));
    json_object_set_new(root, "complete_sets", json_integer((json_int_t)r->complete_sets));
    json_object_set_new(root, "partial_sets", json_integer((json_int_t)(r->set_count - r->complete_sets)));
    json_object_set_new(root, "trimmed_sets", json_pack("{s:I, s:I}", "start", (json_int_t)r->trimmed_leading, "end",
                                                        (json_int_t)r->trimmed_trailing));
    json_object_set_new(root, "worst_skew_us", json_real(r->worst_skew_us));
    json_t *files = json_array();
    for (int i = 0; i < r->file_count; i++) {
        const ks_align_file *f = &r->files[i];
        json_t *j = json_object();
        json_object_set_new(j, "path", json_string(f->path));
        json_object_set_new(j, "serial", json_string(f->serial));
        json_object_set_new(j, "role", json_string(f->role));
        json_object_set_new(j, "sync_mode", json_string(ks_wired_sync_mode_name(f->sync_mode)));
        json_object_set_new(j, "rig", json_string(f->rig_name));
        json_object_set_new(j, "color_exposure_us", json_integer(f->color_exposure_us));
        json_object_set_new(j, "timestamps", f->timestamps[0] ? json_string(f->timestamps) : json_null());
        json_object_set_new(j, "depth_offset_basis", json_string(f->depth_offset_centres ? "centres" : "timestamps"));
        json_object_set_new(j, "plan_digest", json_string(f->plan_digest));
        json_object_set_new(j, "subordinate_delay_us", json_integer(f->subordinate_delay_us));
        json_object_set_new(j, "depth_delay_us", json_integer(f->depth_delay_us));
        json_object_set_new(j, "fps", json_integer(ks_fps_hz(f->fps)));
        json_object_set_new(j, "member", json_boolean(f->member));
        if (!f->member) {
            json_object_set_new(j, "reason", json_string(f->reason));
        } else {
            json_object_set_new(j, "start_offset_us", json_integer((json_int_t)f->start_offset_us));
            json_object_set_new(j, "start_vs_master_us", json_integer(f->start_vs_reference_us));
            json_object_set_new(j, "frames", json_integer((json_int_t)f->frame_count));
            json_object_set_new(j, "frameless", json_boolean(f->frameless));
            json_object_set_new(j, "drops", json_integer((json_int_t)f->drops));
            json_object_set_new(j, "in_partial_sets", json_integer((json_int_t)f->in_partial_sets));
            json_object_set_new(j, "missing_from_sets", json_integer((json_int_t)f->missing_from_sets));
            json_object_set_new(j, "skew_us", stats_json(&f->skew_us));
            json_object_set_new(j, "depth_offset_us", stats_json(&f->depth_offset_us));
            json_object_set_new(j, "drift_ppm", json_real(f->drift_ppm));
        }
        json_array_append_new(files, j);
    }
    json_object_set_new(root, "files", files);
    /* partial sets: which files have the frame and which lack it */
    json_t *partial = json_array();
    for (size_t k = 0; k < r->set_count; k++) {
        const ks_align_set *s = &r->sets[k];
        if (!with_sets && s->members == r->member_count)
            continue;
        json_t *js = json_object();
        json_object_set_new(js, "index", json_integer((json_int_t)k));
        json_object_set_new(js, "time_us", json_real(s->time_us));
        json_t *have = json_array(), *lack = json_array();
        for (int i = 0; i < r->file_count; i++) {
            if (!r->files[i].member)
                continue;
            if (s->frame[i] >= 0) {
                const ks_align_frame *fr = &r->files[i].frames[s->frame[i]];
                json_array_append_new(have, json_pack("{s:s, s:I, s:I}", "serial", r->files[i].serial, "frame",
                                                      (json_int_t)s->frame[i], "color_ts_us",
                                                      (json_int_t)fr->color_ts_us));
            } else {
                json_array_append_new(lack, json_string(r->files[i].serial));
            }
        }
        json_object_set_new(js, "present", have);
        json_object_set_new(js, "missing", lack);
        json_array_append_new(partial, js);
    }
    json_object_set_new(root, with_sets ? "frame_sets" : "partial_frame_sets", partial);
    return root;
}

static void print_text(const ks_align_result *r, bool list_sets)
{
    printf("reference (master): %s\n", r->files[r->reference].path);
    printf("frame sets: %zu, complete %zu, partial %zu; worst color skew %.1f us\n", r->set_count, r->complete_sets,
           r->set_count - r->complete_sets, r->worst_skew_us);
    if (r->trimmed_leading || r->trimmed_trailing)
        printf("trimmed %zu partial sets of the ragged start and stop (%zu before every device had started, %zu "
               "after the first stopped)\n",
               r->trimmed_leading + r->trimmed_trailing, r->trimmed_leading, r->trimmed_trailing);
    for (int i = 0; i < r->file_count; i++) {
        const ks_align_file *f = &r->files[i];
        if (!f->member) {
            printf("  %-12s %s: DOES NOT BELONG: %s\n", f->serial, f->path, f->reason);
            continue;
        }
        printf("  %-12s %-11s %s\n", f->serial, ks_wired_sync_mode_name(f->sync_mode), f->path);
        if (f->frameless) {
            printf("      NO FRAMES: the file holds no color, depth or IR image\n");
            continue;
        }
        printf("      delays: subordinate %u us, depth %d us; start %+lld us vs master\n", f->subordinate_delay_us,
               f->depth_delay_us, (long long)f->start_vs_reference_us);
        printf("      frames %zu, drops %llu, in partial sets %llu, missing from %llu sets\n", f->frame_count,
               (unsigned long long)f->drops, (unsigned long long)f->in_partial_sets,
               (unsigned long long)f->missing_from_sets);
        if (i != r->reference)
            printf("      color skew vs master: mean %.1f, min %.1f, max %.1f, sd %.2f us; drift %.2f ppm\n",
                   f->skew_us.mean, f->skew_us.min, f->skew_us.max, f->skew_us.stddev, f->drift_ppm);
        if (f->depth_offset_us.n && f->depth_offset_centres)
            printf("      depth vs color centres - planned delay: mean %.1f us (max |%.1f|)\n",
                   f->depth_offset_us.mean, f->depth_offset_us.max_abs);
        else if (f->depth_offset_us.n)
            printf("      depth ts - color ts - planned delay: mean %.1f us (max |%.1f|); under the seed convention\n"
                   "        this holds (color - depth exposure)/2: the file does not say its exposure, give\n"
                   "        --color-exposure-us (and --timestamps) to compare centres\n",
                   f->depth_offset_us.mean, f->depth_offset_us.max_abs);
    }
    int shown = 0;
    for (size_t k = 0; k < r->set_count; k++) {
        const ks_align_set *s = &r->sets[k];
        if (!list_sets && s->members == r->member_count)
            continue;
        if (!list_sets && shown == 10) {
            printf("  ... (--json lists every partial set)\n");
            break;
        }
        shown++;
        printf("  set %zu at %.0f us:", k, s->time_us);
        for (int i = 0; i < r->file_count; i++)
            if (r->files[i].member)
                printf(" %s%s", r->files[i].serial, s->frame[i] >= 0 ? "" : "(missing)");
        printf("\n");
    }
}

int cmd_align(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"export", required_argument, NULL, 'e'},
                                         {"max-sets", required_argument, NULL, 'm'},
                                         {"sets", no_argument, NULL, 's'},
                                         {"color-exposure-us", required_argument, NULL, 'E'},
                                         {"timestamps", required_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool json = false, list_sets = false;
    const char *export_dir = NULL;
    long max_sets = 0;
    ks_align_options ao = {0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'e': export_dir = optarg; break;
        case 's': list_sets = true; break;
        case 'm': {
            char *end;
            max_sets = strtol(optarg, &end, 10);
            if (*end || max_sets < 0)
                return ks_cli_usage_error("align", "--max-sets takes a number >= 0, not '%s'", optarg);
            break;
        }
        case 'E': {
            char *end;
            long e = strtol(optarg, &end, 10);
            if (end == optarg || *end || e < ks_exposure_min_us() || e > 1000000)
                return ks_cli_usage_error("align", "--color-exposure-us takes the exposure in us (%d to 1000000), not '%s'",
                                          ks_exposure_min_us(), optarg);
            ao.color_exposure_us = (int)e;
            break;
        }
        case 'T':
            if (strcmp(optarg, ks_ts_convention_name(KS_TS_SEED)) && strcmp(optarg, ks_ts_convention_name(KS_TS_MID_EXPOSURE)))
                return ks_cli_usage_error("align", "--timestamps is '%s' or '%s', not '%s'", ks_ts_convention_name(KS_TS_SEED),
                                          ks_ts_convention_name(KS_TS_MID_EXPOSURE), optarg);
            ao.timestamps = optarg;
            break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("align", "unknown option");
        }
    }
    int n = argc - optind;
    if (n < 1)
        return ks_cli_usage_error("align", "give the recordings to align (FILE.mkv...)");
    if (n > KS_ALIGN_MAX_FILES)
        return ks_cli_usage_error("align", "at most %d recordings", KS_ALIGN_MAX_FILES);
    ks_align_result *r = NULL;
    ks_error err;
    ks_status st = ks_align_files((const char *const *)(argv + optind), n, &ao, &r, &err);
    if (st != KS_OK) {
        ks_cli_print_error("align", &err);
        return st == KS_ENOMEM ? KS_EXIT_FAIL : KS_EXIT_USAGE;
    }
    if (export_dir) {
        st = ks_align_export(r, export_dir, (size_t)max_sets, &err);
        if (st != KS_OK) {
            ks_cli_print_error("align", &err);
            ks_align_free(r);
            return st == KS_ESTATE ? KS_EXIT_USAGE : KS_EXIT_FAIL;
        }
    }
    if (json) {
        json_t *j = to_json(r, list_sets);
        if (export_dir)
            json_object_set_new(j, "export", json_string(export_dir));
        json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(j);
    } else {
        print_text(r, list_sets);
        if (export_dir)
            printf("exported %zu frame sets to %s (index.json)\n",
                   max_sets && (size_t)max_sets < r->set_count ? (size_t)max_sets : r->set_count, export_dir);
    }
    bool ok = r->member_count == r->file_count && r->complete_sets == r->set_count && r->complete_sets > 0;
    int frameless = 0;
    for (int i = 0; i < r->file_count; i++)
        frameless += r->files[i].member && r->files[i].frameless;
    if (frameless)
        fprintf(stderr, "kinsync align: %d of the %d recordings hold no frame (cut before their first capture?): "
                        "no frame set can be complete\n", frameless, r->member_count);
    else if (!r->complete_sets)
        fprintf(stderr, "kinsync align: no frame set holds a frame of every recording (%zu sets): the files were "
                        "not recorded at the same time\n", r->set_count);
    else if (!ok && r->complete_sets < r->set_count)
        fprintf(stderr, "kinsync align: %zu of %zu frame sets are partial: frames were lost (see the drops per file)\n",
                r->set_count - r->complete_sets, r->set_count);
    ks_align_free(r);
    return ok ? KS_EXIT_OK : KS_EXIT_FAIL;
}
