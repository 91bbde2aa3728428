/* kinsync board: check a board description and draw the printable target. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/board.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync board BOARD.yaml [--svg FILE] [--png FILE] [--dpi N] [--json]\n"
            "\n"
            "Reads an AprilGrid description (rows, columns, tag_size in metres, spacing, family,\n"
            "first_id, margin; see docs/board.md), checks it, prints its size and writes the\n"
            "printable target. Print at 100%% scale, then measure a tag's black square and put the\n"
            "measured size into tag_size.\n"
            "\n"
            "  --svg FILE   write a true-to-scale SVG (mm units)\n"
            "  --png FILE   write a grayscale PNG at --dpi (default 150) with its resolution set\n"
            "  --dpi N      PNG resolution, 10..1200\n"
            "  --json       machine-readable summary on stdout\n"
            "  -h, --help   this text\n"
            "\n"
            "Exit status: 0 written/valid, 1 the board is invalid or a file could not be written,\n"
            "2 usage error.\n");
}

int cmd_board(int argc, char **argv)
{
    static const struct option opts[] = {{"svg", required_argument, 0, 's'}, {"png", required_argument, 0, 'p'},
                                         {"dpi", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    const char *svg = NULL, *png = NULL;
    double dpi = 150;
    bool json = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': svg = optarg; break;
        case 'p': png = optarg; break;
        case 'd': {
            char *end;
            dpi = strtod(optarg, &end);
            if (*end || !(dpi >= 10 && dpi <= 1200))
                return ks_cli_usage_error("board", "--dpi %s: give a number from 10 to 1200", optarg);
            break;
        }
        case 'j': json = true; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("board", "unknown option");
        }
    }
    if (optind != argc - 1)
        return ks_cli_usage_error("board", "expected exactly one BOARD.yaml");
    const char *path = argv[optind];
    ks_board b;
    ks_error err = {0};
    ks_status st = ks_board_load(path, &b, &err);
    if (st)
        return ks_cli_fail("board", &err, KS_CLI_INPUT);
    if (svg && (st = ks_board_write_svg(&b, svg, &err))) {
        ks_cli_print_error("board", &err);
        return KS_EXIT_FAIL;
    }
    if (png && (st = ks_board_write_png(&b, png, dpi, &err))) {
        ks_cli_print_error("board", &err);
        return KS_EXIT_FAIL;
    }
    double w, h;
    ks_board_sheet_size(&b, &w, &h);
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:f, s:f, s:s, s:i, s:i, s:f, s:f, s:s?, s:s?}", "board", path, "rows",
                              b.rows, "columns", b.columns, "tag_size_mm", b.tag_size_mm, "spacing", b.spacing,
                              "family", ks_tag_family_name(b.family), "first_id", b.first_id, "tags",
                              ks_board_tag_count(&b), "sheet_width_mm", w, "sheet_height_mm", h, "svg", svg, "png", png);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %dx%d %s tags (ids %d..%d), tag %.1f mm, gap %.1f mm, sheet %.0f x %.0f mm\n", path, b.rows,
               b.columns, ks_tag_family_name(b.family), b.first_id, b.first_id + ks_board_tag_count(&b) - 1,
               b.tag_size_mm, b.tag_size_mm * b.spacing, w, h);
        if (svg)
            printf("wrote %s\n", svg);
        if (png)
            printf("wrote %s (%.0f dpi)\n", png, dpi);
    }
    return KS_EXIT_OK;
}
