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
#include "kinsync/timing.h"
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

/* Host time through the frames: every device's host clock against the master's host clock
 * (ks_host_time_disagreement over the fits the agents published during the run). */
static void host_time(ks_coordinator *c, const ks_rig *rig, ks_distributed_result *res)
{
    const ks_remote_device *m = ks_coordinator_device(c, rig->devices[rig->master].serial);
    double limit_ms = ks_host_clock_agreement_limit_us() / 1000.0;
    for (int i = 0; m && i < rig->device_count; i++) {
        const ks_remote_device *d = ks_coordinator_device(c, rig->devices[i].serial);
        double med;
        int pairs;
        if (!d || !ks_host_time_disagreement(d->fit_history, d->fit_count, m->fit_history, m->fit_count, &med, &pairs))
            continue;
        res->host_time_known[i] = true;
        res->host_time_disagreement_ms[i] = med / 1e6;
        res->host_time_pairs[i] = pairs;
        res->host_time_fit_mad_us[i] = d->status.host_fit.mad_us;
        if (fabs(med / 1e6) > res->max_host_time_disagreement_ms)
            res->max_host_time_disagreement_ms = fabs(med / 1e6);
        if (fabs(med / 1e6) > limit_ms)
            fprintf(stderr, "kinsync: warning: measured through the frames, the clock of host %s (device %s) is %+.2f ms "
                    "off the master's host %s (more than %g ms): host timestamps of the two cannot be compared; "
                    "synchronize the hosts with chrony or PTP\n", d->host, d->serial, med / 1e6, m->host, limit_ms);
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
        (st = ks_coordinator_wait_state(c, all, n, KS_AGENT_CONFIGURED, arm, err)) != KS_OK) {
        /* a host's session checks its jacks when it opens: a missing cable ends the run here */
        ks_error_prefix(err, st, "not every device configured, so the master %s was not started", master);
        goto fail;
    }
    if ((st = ks_coordinator_command(c, "*", "ARM", "", 10000, err)) != KS_OK ||
        (st = ks_coordinator_wait_state(c, all, n, KS_AGENT_ARMED, arm, err)) != KS_OK) {
        ks_error_prefix(err, st, "not every device armed, so the master %s was not started", master);
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
    ks_coordinator_reset_fits(c); /* host time: only fits made from this run's frames */

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
    double limit_ms = ks_host_clock_agreement_limit_us() / 1000.0;
    if (res->max_clock_skew_ms > limit_ms)
        fprintf(stderr, "kinsync: warning: host clocks disagree by up to %.1f ms (more than %g ms); host timestamps "
                "of different hosts cannot be compared: synchronize the hosts with chrony or PTP\n",
                res->max_clock_skew_ms, limit_ms);
    host_time(c, rig, res);
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
