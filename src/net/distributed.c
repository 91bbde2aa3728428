/* A recording across hosts (kinsync/net.h, ks_distributed_record): the single-host start sequence
 * (kinsync/session.h) stretched over the network, with the same guarantees:
 *   1. every device of the rig is present, on the host the rig names;
 *   2. every device configured (exposure once), every subordinate armed, and all confirmed ARMED
 *      before the master starts: a host that never arms means the master is never started;
 *   3. the master starts at an instant agreed in advance (so simulated worlds on several hosts see
 *      its first pulse at the same moment);
 *   4. health is watched: an agent silent for lost_after_ms stops the run, everyone else is stopped
 *      at once and their files are completed;
 *   5. recordings are gathered with a checksum each. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/net.h"
#include "net/transport.h"

static void stop_all(ks_coordinator *c, const ks_rig *rig, const char *except)
{
    for (int i = 0; i < rig->device_count; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
        if (!d || (except && !strcmp(except, d->serial)))
            continue;
        ks_error e;
        if (ks_coordinator_command(c, d->serial, "STOP", "", 5000, &e) != KS_OK)
            fprintf(stderr, "kinsync: stopping %s: %s\n", d->serial, e.message);
    }
}

ks_status ks_distributed_record(ks_coordinator *c, const ks_rig *rig, const ks_distributed_options *opt,
                                ks_distributed_result *res, ks_error *err)
{
    memset(res, 0, sizeof *res);
    res->device_count = rig->device_count;
    const char *all[KS_RIG_MAX_DEVICES];
    int n = rig->device_count;
    for (int i = 0; i < n; i++)
        all[i] = rig->devices[i].serial;
    if (rig->master < 0)
        return ks_error_set(err, KS_EINVAL, "the rig has no master; a distributed recording needs a synchronized rig");
    const char *master = rig->devices[rig->master].serial;
    int disc = opt->discover_timeout_ms ? opt->discover_timeout_ms : 10000;
    int arm = opt->arm_timeout_ms ? opt->arm_timeout_ms : 10000;
    int lead = opt->start_lead_ms ? opt->start_lead_ms : 500;

    ks_status st = ks_coordinator_discover(c, all, n, disc, err);
    if (st != KS_OK)
        return st;
    for (int i = 0; i < rig->device_count; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
        const char *want = rig->devices[i].host[0] ? rig->devices[i].host : "localhost";
        if (strcmp(d->host, want) != 0)
            return ks_error_set(err, KS_EINVAL, "device %s is reported by host '%s' but the rig puts it on '%s'; fix "
                                "the rig file or start the agent with --host %s", d->serial, d->host, want, want);
    }
    if ((st = ks_coordinator_command(c, "*", "CONFIGURE", "{}", 10000, err)) != KS_OK ||
        (st = ks_coordinator_wait_state(c, all, n, KS_AGENT_CONFIGURED, arm, err)) != KS_OK)
        goto fail;
    if ((st = ks_coordinator_command(c, "*", "ARM", "", 10000, err)) != KS_OK ||
        (st = ks_coordinator_wait_state(c, all, n, KS_AGENT_ARMED, arm, err)) != KS_OK) {
        ks_error_prefix(err, "not every device armed, so the master %s was not started", master);
        goto fail;
    }

    char args[128];
    snprintf(args, sizeof args, "{\"master\":\"%s\",\"at_realtime_ns\":%lld}", master,
             (long long)(ks_now_realtime_ns() + (int64_t)lead * 1000000));
    int64_t t_start = ks_now_monotonic_ns();
    if ((st = ks_coordinator_command(c, "*", "SYNC", args, 5000, err)) != KS_OK ||
        (st = ks_coordinator_command(c, master, "START", args, 5000, err)) != KS_OK)
        goto fail;
    st = ks_coordinator_wait_state(c, all, n, KS_AGENT_STREAMING, lead + arm, err);
    if (st != KS_OK)
        goto fail;
    res->start_to_streaming_ms = (ks_now_monotonic_ns() - t_start) / 1e6;

    int64_t t0 = ks_now_monotonic_ns();
    for (;;) {
        ks_coordinator_poll(c);
        double el = (ks_now_monotonic_ns() - t0) / 1e9;
        if (opt->progress)
            opt->progress(c, rig, el, opt->user);
        const ks_remote_device *lost = ks_coordinator_lost(c, all, n);
        if (lost) {
            snprintf(res->lost, sizeof res->lost, "%s", lost->serial);
            break;
        }
        bool failed = false;
        for (int i = 0; i < n && !failed; i++) {
            const ks_remote_device *d = ks_coordinator_device(c, all[i]);
            if (d->status.state == KS_AGENT_ERROR) {
                st = ks_error_set(err, KS_EIO, "device %s on host %s failed: %s", d->serial, d->host, d->status.message);
                failed = true;
            }
        }
        if (failed)
            goto fail;
        if (opt->stop && *opt->stop) {
            res->interrupted = true;
            break;
        }
        if (opt->seconds > 0 && el >= opt->seconds)
            break;
        dds_sleepfor(DDS_MSECS(50));
    }
    /* host clocks, judged from every state heard during the run */
    for (int i = 0; i < n; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, all[i]);
        double skew = fabs((double)d->clock_skew_ns) / 1e6;
        if (d->skew_known && skew > res->max_clock_skew_ms)
            res->max_clock_skew_ms = skew;
    }
    if (res->max_clock_skew_ms > 1.0)
        fprintf(stderr, "kinsync: warning: host clocks disagree by up to %.1f ms (more than 1 ms); host timestamps "
                "of different hosts cannot be compared: synchronize the hosts with chrony or PTP\n",
                res->max_clock_skew_ms);
    stop_all(c, rig, res->lost[0] ? res->lost : NULL);
    if (opt->out_dir) {
        for (int i = 0; i < rig->device_count; i++) {
            if (res->lost[0] && !strcmp(rig->devices[i].serial, res->lost))
                continue;
            ks_error e;
            if (ks_coordinator_gather(c, rig->devices[i].serial, opt->out_dir, 60000, res->paths[i],
                                      sizeof res->paths[i], &e) != KS_OK)
                fprintf(stderr, "kinsync: gathering %s: %s\n", rig->devices[i].serial, e.message);
        }
    }
    if (res->lost[0]) {
        const ks_remote_device *d = ks_coordinator_device(c, res->lost);
        return ks_error_set(err, KS_ENODEV, "the agent of device %s on host %s was lost; every other device was "
                            "stopped and its recording completed", res->lost, d ? d->host : "?");
    }
    return KS_OK;
fail:
    stop_all(c, rig, NULL);
    return st;
}
