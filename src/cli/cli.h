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
