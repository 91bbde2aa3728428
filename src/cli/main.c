/* kinsync: the command. Dispatches to one subcommand per file; `kinsync --help` lists them grouped
 * by task, `kinsync CMD --help` explains one. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "kinsync/version.h"

static const ks_command commands[] = {
    /* plan the rig */
    {"plan", "validate a rig file and compute delays, start order and recorder commands", cmd_plan},
    /* run it */
    {"verify", "start the rig, measure its sync (skews, drops, drift, failure modes), PASS/FAIL", cmd_verify},
    {"capture", "start the rig and write N frame sets to a directory (raw images + index.json)", cmd_capture},
    {"view", "the whole rig live in a browser: devices, previews, checks, 3D cloud, record takes", cmd_view},
    /* recordings */
    {"record", "record every device of a rig, one Azure Kinect .mkv per device", cmd_record},
    {"align", "align recordings of one rig: frame sets, skew, drops, files that don't belong", cmd_align},
    {"info", "show what a recording holds (tracks, tags, frames, timestamps)", cmd_info},
    {"repair", "make a cut-off or unfinished recording complete", cmd_repair},
    /* calibrate */
    {"board", "check a calibration board and draw the printable target", cmd_board},
    {"calibrate", "calibrate all devices of a rig at once from views of the board", cmd_calibrate},
    /* fuse */
    {"fuse", "fuse the depth of a calibrated rig into one point cloud per frame set (PLY)", cmd_fuse},
    {"devices", "list attached devices: serial, firmware, sync jacks", cmd_devices},
    {"doctor", "check this host for the rig: USB, usbfs, libk4a, firmware, clocks", cmd_doctor},
    /* many hosts */
    {"agent", "run this host's devices of a rig for a coordinator on another host", cmd_agent},
    /* misc */
    {"version", "print the version", cmd_version},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

int ks_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kinsync %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'kinsync %s --help'.\n", cmd);
    return KS_EXIT_USAGE;
}

void ks_cli_print_error(const char *cmd, const ks_error *err)
{
    fprintf(stderr, "kinsync %s: error: %s\n", cmd, err->message[0] ? err->message : ks_status_string(err->code));
}

int ks_cli_exit_status(ks_status st, ks_cli_stage stage)
{
    if (st == KS_OK)
        return KS_EXIT_OK;
    switch (stage) {
    case KS_CLI_INPUT: return st == KS_ENOTFOUND || st == KS_EIO || st == KS_EPARSE ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    case KS_CLI_DATA: return st == KS_ENOTFOUND || st == KS_EIO ? KS_EXIT_USAGE : KS_EXIT_FAIL;
    case KS_CLI_RUN: break;
    }
    return KS_EXIT_FAIL;
}

int ks_cli_fail(const char *cmd, const ks_error *err, ks_cli_stage stage)
{
    ks_cli_print_error(cmd, err);
    return ks_cli_exit_status(err->code, stage);
}

bool ks_cli_is_tty(FILE *f)
{
    return isatty(fileno(f));
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("kinsync %s\n", ks_version_string());
    return KS_EXIT_OK;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync COMMAND [ARGS...]\n"
            "\n"
            "Plan, run, check, record, calibrate and fuse rigs of synchronized Azure Kinect DK\n"
            "devices. Without hardware every command runs on the built-in simulator.\n"
            "\n"
            "Commands:\n");
    for (int i = 0; i < command_count; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'kinsync COMMAND --help' explains one command; docs/ has a page for each.\n"
                 "Exit status: 0 success, 1 the answer is no (invalid rig, failed check), 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return KS_EXIT_OK;
    }
    if (!strcmp(name, "--version"))
        return cmd_version(argc - 1, argv + 1);
    for (int i = 0; i < command_count; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kinsync: unknown command '%s'\nTry 'kinsync --help'.\n", name);
    return KS_EXIT_USAGE;
}
