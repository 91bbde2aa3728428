/* cli/cli.h: the kinsync command. One file per subcommand (cmd_NAME.c) with an entry point
 * int cmd_NAME(int argc, char **argv) where argv[0] is the subcommand name; main.c dispatches.
 *
 * Exit status, the same for every subcommand (docs/cli.md):
 *   0  success / valid / all checks passed
 *   1  the input is valid to parse but the answer is no: invalid rig, failed check, device error
 *   2  usage error: unknown flag, missing argument, unreadable file */
#ifndef KS_CLI_H
#define KS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "kinsync/error.h"

enum { KS_EXIT_OK = 0, KS_EXIT_FAIL = 1, KS_EXIT_USAGE = 2 };

typedef struct ks_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} ks_command;

/* What a failed call was doing: its exit status follows from that and the status, by one rule
 * (ks_cli_exit_status, docs/cli.md). */
typedef enum {
    KS_CLI_INPUT, /* reading a file the user named (rig, board, calibration, config): missing, not
                   * readable (a directory, no permission) or not of its format -> 2 */
    KS_CLI_DATA,  /* opening a recording: missing or not readable -> 2; damaged contents are an
                   * answer about the file -> 1 */
    KS_CLI_RUN    /* the work: devices, checks, writing outputs -> 1 */
} ks_cli_stage;

/* The exit status for status st (KS_OK -> 0) of a call at the given stage: 2 for a usage-level
 * problem with an input (KS_ENOTFOUND, KS_EIO, and KS_EPARSE for KS_CLI_INPUT), otherwise 1. */
int ks_cli_exit_status(ks_status st, ks_cli_stage stage);
/* Prints "kinsync CMD: error: message" and returns ks_cli_exit_status(err->code, stage). */
int ks_cli_fail(const char *cmd, const ks_error *err, ks_cli_stage stage);

/* Prints "kinsync NAME: message" to stderr and returns KS_EXIT_USAGE. */
int ks_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "kinsync NAME: error message" for a failed call. */
void ks_cli_print_error(const char *cmd, const ks_error *err);
/* True when stdout/stderr is a terminal (progress lines are drawn only then). */
bool ks_cli_is_tty(FILE *f);

int cmd_version(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_align(int argc, char **argv);
int cmd_board(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_fuse(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_view(int argc, char **argv);

#endif
