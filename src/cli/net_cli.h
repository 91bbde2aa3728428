/* cli/net_cli.h: the multi-host flags shared by `kinsync agent` and `kinsync record --distributed`:
 * --interface, --peer, --multicast, --domain, --secret-file. Nothing network-related is guessed:
 * the interface must be named. */
#ifndef KS_CLI_NET_CLI_H
#define KS_CLI_NET_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>

#include "kinsync/net.h"
#include "kinsync/view.h"

/* Long options (ids 1000..1004) to append to a command's option table. */
#define KS_NET_CLI_OPTIONS                                                                                \
    {"interface", required_argument, NULL, 1000}, {"peer", required_argument, NULL, 1001},             \
        {"multicast", no_argument, NULL, 1002}, {"domain", required_argument, NULL, 1003},                \
        {"secret-file", required_argument, NULL, 1004}

#define KS_NET_CLI_HELP                                                                                   \
    "      --interface IF[,IF]  network interface(s) the rig's hosts share (required; never guessed)\n"  \
    "      --peer ADDR[,ADDR]   unicast discovery peers (the other hosts' addresses)\n"                  \
    "      --multicast          allow multicast discovery on the named interfaces\n"                     \
    "      --domain N           DDS domain id (default 47); rigs on one network need different ids\n"    \
    "      --secret-file FILE   the shared rig secret (same file on every host; chmod 600)\n"

/* Handles one option id; returns 1 if it was a net option, 0 if not, -1 on a bad value (printed). */
int ks_net_cli_option(const char *cmd, int id, const char *arg, ks_net_config *cfg);
/* Checks the configuration is complete (interface, secret); prints and returns false if not. */
bool ks_net_cli_ready(const char *cmd, const ks_net_config *cfg);
/* Hex SHA-256 of a file's bytes (the rig digest both sides compare). */
ks_status ks_file_digest(const char *path, char out[65], ks_error *err);

/* Loads and validates the rig file every host must share, and its SHA-256 (what agents and the
 * coordinator compare). Prints the problem (findings with FILE:LINE) as `cmd`; returns KS_EXIT_OK,
 * KS_EXIT_USAGE (unreadable or malformed file) or KS_EXIT_FAIL (invalid rig). */
int ks_cli_load_shared_rig(const char *cmd, const char *path, ks_rig *rig, char digest[65]);

/* `kinsync record rig.yaml --distributed`: the coordinator side (src/cli/record_distributed.c). */
int ks_cli_record_distributed(const char *rig_path, const char *out, double seconds, const ks_net_config *net,
                              bool json);
/* `kinsync verify rig.yaml --distributed`: run over the hosts, gather, prove sync from the
 * recordings (src/cli/verify_distributed.c). */
int ks_cli_verify_distributed(const char *rig_path, const char *out, double seconds, const ks_net_config *net,
                              bool json);
/* `kinsync view rig.yaml --distributed`: serves the rig over its agents on the view v until *quit or
 * `seconds` (0: no limit); started at once unless no_start (src/cli/view_distributed.c). */
int ks_cli_view_distributed(ks_view *v, const ks_rig *rig, const char *digest, const ks_net_config *net,
                            double seconds, bool no_start, volatile sig_atomic_t *quit);

#endif
