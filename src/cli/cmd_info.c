/* kinsync info FILE [--json]: what a recording holds (docs/info.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/mkv.h"

static void info_usage(FILE *f)
{
    fprintf(f,
            "Usage: kinsync info FILE [--json]\n"
            "\n"
            "Prints what an Azure Kinect recording (.mkv, ours or k4arecorder's) holds: tracks with\n"
            "codec, size and frame rate; every tag (K4A_* and KINSYNC_*); attachments; per-track frame\n"
            "counts and first/last device timestamps (us); whether the file is complete or was cut\n"
            "off (then 'kinsync repair' fixes it). Reads the whole file once.\n"
            "\n"
            "  --json      machine-readable output\n"
            "  -h, --help  this help\n"
            "\n"
            "Exit status: 0 read, 1 the file is corrupt (the message gives the byte offset), 2 usage\n"
            "error or missing file.\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'h': info_usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("info", "unknown option");
        }
    }
    if (optind != argc - 1)
        return ks_cli_usage_error("info", "expected exactly one FILE");
    const char *path = argv[optind];
    ks_error err = {0};
    ks_mkv_reader *r;
    ks_status st = ks_mkv_reader_open(path, &r, &err);
    if (st)
        return ks_cli_fail("info", &err, KS_CLI_DATA);
    ks_status scan = ks_mkv_reader_scan(r, &err);
    const ks_mkv_info *in = ks_mkv_reader_info(r);
    bool complete = in->segment_size_known && !in->truncated && scan == KS_OK;
    ks_error perr = {0};
    bool sdk_ok = ks_mkv_check_playback(r, &perr) == KS_OK;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "bytes", json_integer((json_int_t)in->file_size));
        json_object_set_new(o, "complete", json_boolean(complete));
        json_object_set_new(o, "truncated", json_boolean(in->truncated));
        if (scan)
            json_object_set_new(o, "error", json_string(err.message));
        json_object_set_new(o, "sdk_playback_ok", json_boolean(sdk_ok));
        if (!sdk_ok)
            json_object_set_new(o, "sdk_playback_error", json_string(perr.message));
        json_object_set_new(o, "writing_app", json_string(in->writing_app));
        json_object_set_new(o, "timecode_scale_ns", json_integer((json_int_t)in->timecode_scale));
        json_object_set_new(o, "start_offset_us", json_integer((json_int_t)in->start_offset_us));
        json_object_set_new(o, "clusters", json_integer((json_int_t)in->clusters));
        json_object_set_new(o, "cues", json_integer(in->cue_count));
        json_t *tr = json_array();
        for (int i = 0; i < in->track_count; i++) {
            const ks_mkv_track *t = &in->tracks[i];
            char uidbuf[24];
            snprintf(uidbuf, sizeof uidbuf, "%llu", (unsigned long long)t->uid);
            json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "number", t->number, "name", t->name, "kind",
                                  ks_mkv_track_kind_name(t->kind), "codec", t->codec_id, "uid", uidbuf,
                                  "frames", (json_int_t)t->blocks);
            if (t->fourcc[0])
                json_object_set_new(j, "fourcc", json_string(t->fourcc));
            if (t->width) {
                json_object_set_new(j, "width", json_integer(t->width));
                json_object_set_new(j, "height", json_integer(t->height));
            }
            if (t->default_duration_ns)
                json_object_set_new(j, "default_duration_ns", json_integer((json_int_t)t->default_duration_ns));
            if (t->blocks) {
                json_object_set_new(j, "first_ts_us", json_integer((json_int_t)t->first_ts_us));
                json_object_set_new(j, "last_ts_us", json_integer((json_int_t)t->last_ts_us));
            }
            json_array_append_new(tr, j);
        }
        json_object_set_new(o, "tracks", tr);
        json_t *tags = json_array();
        for (int i = 0; i < in->tag_count; i++) {
            json_t *j = json_pack("{s:s, s:s}", "name", in->tags[i].name, "value", in->tags[i].value);
            if (in->tags[i].target_type[0])
                json_object_set_new(j, "target", json_string(in->tags[i].target_type));
            json_array_append_new(tags, j);
        }
        json_object_set_new(o, "tags", tags);
        json_t *att = json_array();
        for (int i = 0; i < in->attachment_count; i++)
            json_array_append_new(att, json_pack("{s:s, s:s, s:I}", "name",
                                                 in->attachments[i].name ? in->attachments[i].name : "", "mime",
                                                 in->attachments[i].mime ? in->attachments[i].mime : "", "bytes",
                                                 (json_int_t)in->attachments[i].size));
        json_object_set_new(o, "attachments", att);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %llu bytes, %s\n", path, (unsigned long long)in->file_size,
               complete ? "complete" : in->truncated ? "CUT OFF (run 'kinsync repair')" : "not finished (no Segment size; run 'kinsync repair')");
        if (scan)
            printf("  error: %s\n", err.message);
        printf("  Azure Kinect SDK playback: %s\n", sdk_ok ? "opens it" : perr.message);
        printf("  written by %s, timecode scale %llu ns, start offset %llu us, %llu clusters, %d cues\n",
               in->writing_app[0] ? in->writing_app : "?", (unsigned long long)in->timecode_scale,
               (unsigned long long)in->start_offset_us, (unsigned long long)in->clusters, in->cue_count);
        printf("  tracks:\n");
        for (int i = 0; i < in->track_count; i++) {
            const ks_mkv_track *t = &in->tracks[i];
            printf("    %d %-6s %-16s", t->number, t->name, t->codec_id);
            if (t->fourcc[0])
                printf(" %s", t->fourcc);
            if (t->width)
                printf(" %dx%d", t->width, t->height);
            if (t->default_duration_ns)
                printf(" %.3f fps", 1e9 / (double)t->default_duration_ns);
            printf("  %llu frames", (unsigned long long)t->blocks);
            if (t->blocks)
                printf(", %llu..%llu us", (unsigned long long)t->first_ts_us, (unsigned long long)t->last_ts_us);
            printf("\n");
        }
        printf("  tags:\n");
        for (int i = 0; i < in->tag_count; i++)
            printf("    %s = %s%s%s\n", in->tags[i].name, in->tags[i].value, in->tags[i].target_type[0] ? "  @" : "",
                   in->tags[i].target_type);
        if (in->attachment_count)
            printf("  attachments:\n");
        for (int i = 0; i < in->attachment_count; i++)
            printf("    %s (%s, %zu bytes)\n", in->attachments[i].name ? in->attachments[i].name : "?",
                   in->attachments[i].mime ? in->attachments[i].mime : "?", in->attachments[i].size);
    }
    ks_mkv_reader_close(r);
    return scan ? KS_EXIT_FAIL : KS_EXIT_OK;
}
