/* kinsync repair FILE [-o OUT]: makes a cut-off or unfinished recording complete (docs/repair.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kinsync/mkv.h"

static void repair_usage(FILE *f)
{
    fprintf(f,
            "Usage: kinsync repair FILE [-o OUT] [--json]\n"
            "\n"
            "Rewrites a recording that was cut off (power loss, kill -9, full disk) or never closed\n"
            "(FILE.mkv.part) as a complete file: every complete block is kept (also those of a partly\n"
            "written last cluster), the incomplete tail is dropped, and the Cues, SeekHead, Info\n"
            "duration and Segment size are written anew. A file without a complete block is refused.\n"
            "The result is written to OUT.tmp and renamed, so FILE is never half-overwritten.\n"
            "\n"
            "  -o, --output OUT   write the repaired file here (default: FILE in place; a FILE\n"
            "                     ending in .part is written without the .part suffix)\n"
            "      --json         print the report as JSON\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit status: 0 repaired (or already complete), 1 the file cannot be read as a\n"
            "recording, 2 usage error.\n");
}

int cmd_repair(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'j': json = true; break;
        case 'h': repair_usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("repair", "unknown option");
        }
    }
    if (optind != argc - 1)
        return ks_cli_usage_error("repair", "expected exactly one FILE");
    const char *in = argv[optind];
    char def[4096];
    if (!out) {
        size_t n = strlen(in);
        if (n > 5 && !strcmp(in + n - 5, ".part") && n - 5 < sizeof def) {
            memcpy(def, in, n - 5);
            def[n - 5] = 0;
            out = def;
        } else {
            out = in;
        }
    }
    ks_error err = {0};
    ks_mkv_repair_report rep;
    ks_status st = ks_mkv_repair(in, out, &rep, &err);
    if (st) {
        /* an input that is missing or no readable file is the usage kind (2); a damaged recording
         * or an output that cannot be written is a failure (1) */
        struct stat sb;
        bool readable = stat(in, &sb) == 0 && S_ISREG(sb.st_mode) && access(in, R_OK) == 0;
        return ks_cli_fail("repair", &err, readable ? KS_CLI_RUN : KS_CLI_DATA);
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:b}", "input", in, "output", out, "input_bytes",
                              (json_int_t)rep.in_size, "output_bytes", (json_int_t)rep.out_size, "clusters",
                              (json_int_t)rep.clusters_kept, "bytes_dropped", (json_int_t)rep.bytes_dropped, "cues",
                              rep.cues_written, "was_complete", rep.was_complete);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s -> %s: %llu clusters kept, %llu bytes dropped, %d cues%s\n", in, out,
               (unsigned long long)rep.clusters_kept, (unsigned long long)rep.bytes_dropped, rep.cues_written,
               rep.was_complete ? " (the input was already complete)" : "");
    }
    return KS_EXIT_OK;
}
