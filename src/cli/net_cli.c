/* The multi-host flags (cli/net_cli.h). */
#include "cli/net_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "util/fileio.h"

int ks_net_cli_option(const char *cmd, int id, const char *arg, ks_net_config *cfg)
{
    ks_error e;
    char *end;
    switch (id) {
    case 1000:
        if (ks_net_config_add_interfaces(cfg, arg, &e) != KS_OK)
            return ks_cli_usage_error(cmd, "--interface: %s", e.message), -1;
        return 1;
    case 1001:
        if (ks_net_config_add_peers(cfg, arg, &e) != KS_OK)
            return ks_cli_usage_error(cmd, "--peer: %s", e.message), -1;
        return 1;
    case 1002: cfg->multicast = true; return 1;
    case 1003: {
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 0 || v > 230)
            return ks_cli_usage_error(cmd, "--domain takes a DDS domain id 0..230, not '%s'", arg), -1;
        cfg->domain_id = (int)v;
        return 1;
    }
    case 1004:
        if (ks_net_config_load_secret(cfg, arg, &e) != KS_OK)
            return ks_cli_usage_error(cmd, "--secret-file: %s", e.message), -1;
        struct stat sb;
        if (stat(arg, &sb) == 0 && (sb.st_mode & 077))
            fprintf(stderr, "kinsync %s: warning: the secret file %s can be read by other users (mode %04o); anyone "
                            "who reads it can command the rig: chmod 600 %s\n",
                    cmd, arg, (unsigned)(sb.st_mode & 07777), arg);
        return 1;
    default: return 0;
    }
}

bool ks_net_cli_ready(const char *cmd, const ks_net_config *cfg)
{
    if (cfg->interface_count == 0) {
        ks_cli_usage_error(cmd, "name the network interface the hosts share with --interface (e.g. eth1); "
                                "kinsync never picks one by itself");
        return false;
    }
    if (cfg->secret_len == 0) {
        ks_cli_usage_error(cmd, "give the shared rig secret with --secret-file FILE (the same file on every host)");
        return false;
    }
    if (!cfg->multicast && cfg->peer_count == 0) {
        ks_cli_usage_error(cmd, "without --multicast, list the hosts' addresses with --peer ADDR[,ADDR...]");
        return false;
    }
    return true;
}

ks_status ks_file_digest(const char *path, char out[65], ks_error *err)
{
    char *buf;
    size_t n;
    ks_status st = ks_file_read_all(path, 8u << 20, &buf, &n, err);
    if (st == KS_EINVAL)
        return ks_error_set(err, KS_EINVAL, "%s is too large for a rig file", path);
    if (st != KS_OK)
        return st;
    ks_sha256_hex(buf, n, out);
    free(buf);
    return KS_OK;
}

int ks_cli_load_shared_rig(const char *cmd, const char *path, ks_rig *rig, char digest[65])
{
    ks_error err;
    if (ks_rig_load(path, rig, &err) != KS_OK || ks_file_digest(path, digest, &err) != KS_OK) {
        ks_cli_print_error(cmd, &err);
        return KS_EXIT_USAGE;
    }
    ks_findings f;
    ks_findings_init(&f);
    int rc = KS_EXIT_OK;
    if (ks_rig_validate(rig, &f) != KS_OK) {
        for (int i = 0; i < f.count; i++) {
            char line[1024];
            if (f.items[i].severity != KS_SEV_ERROR)
                continue;
            ks_finding_format(rig, &f.items[i], line, sizeof line);
            fprintf(stderr, "%s\n", line);
        }
        fprintf(stderr, "kinsync %s: the rig is not valid; fix the errors above (kinsync plan %s)\n", cmd, path);
        rc = KS_EXIT_FAIL;
    }
    ks_findings_free(&f);
    return rc;
}
