/* The coordinator (kinsync/net.h): finds agents, sends signed commands, collects replies and
 * state, notices lost agents, gathers recordings.
 *
 * A device is "lost" when its agent's State heartbeat (2 Hz) has been silent for lost_after_ms, or
 * when DDS reports the writer's liveliness lost (the instance becomes NOT_ALIVE): whichever comes
 * first. Command replies are matched by (coordinator id, sequence number, target). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/transport.h"

#define KS_COORD_MAX_DEVICES 64

typedef struct pending_reply {
    uint64_t seq;
    char target[64];
    bool ok;
    char message[256];
} pending_reply;

struct ks_coordinator {
    ks_net_config cfg;
    ks_transport tr;
    char id[40];
    char rig_digest[72];
    uint64_t seq;
    int device_count;
    ks_remote_device devices[KS_COORD_MAX_DEVICES];
    int reply_count;
    pending_reply replies[KS_COORD_MAX_DEVICES * 2];
    dds_entity_t ws;
    dds_entity_t ws_chunk; /* wakes the gatherer as soon as a chunk arrives */
    /* the latest thumbnail of devices[i] (ks_coordinator_thumbnail), kept beside the table */
    uint8_t *thumb[KS_COORD_MAX_DEVICES];
    size_t thumb_len[KS_COORD_MAX_DEVICES];
    int64_t thumb_ts_us[KS_COORD_MAX_DEVICES];
    uint64_t thumb_count[KS_COORD_MAX_DEVICES];
};

const char *ks_coordinator_id(const ks_coordinator *c)
{
    return c->id;
}

ks_status ks_coordinator_create(const ks_net_config *cfg, const char *rig_digest, ks_coordinator **out,
                                ks_error *err)
{
    if (cfg->secret_len == 0)
        return ks_error_set(err, KS_EINVAL, "no rig secret: agents only obey a coordinator that proves the shared "
                            "secret; pass --secret-file");
    if (sodium_init() < 0)
        return ks_error_set(err, KS_EIO, "libsodium failed to initialize");
    ks_coordinator *c = calloc(1, sizeof *c);
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    c->cfg = *cfg;
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < 8; i++)
        snprintf(c->id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(c->rig_digest, sizeof c->rig_digest, "%s", rig_digest);
    ks_status st = ks_transport_open(&c->tr, cfg, false, err);
    if (st != KS_OK) {
        free(c);
        return st;
    }
    c->ws = dds_create_waitset(c->tr.participant);
    dds_waitset_attach(c->ws, dds_create_readcondition(c->tr.r_reply, DDS_ANY_STATE), 1);
    dds_waitset_attach(c->ws, dds_create_readcondition(c->tr.r_state, DDS_ANY_STATE), 2);
    c->ws_chunk = dds_create_waitset(c->tr.participant);
    dds_waitset_attach(c->ws_chunk, dds_create_readcondition(c->tr.r_chunk, DDS_ANY_STATE), 3);
    *out = c;
    return KS_OK;
}

void ks_coordinator_free(ks_coordinator *c)
{
    if (!c)
        return;
    ks_transport_close(&c->tr);
    for (int i = 0; i < KS_COORD_MAX_DEVICES; i++)
        free(c->thumb[i]);
    sodium_memzero(c->cfg.secret, sizeof c->cfg.secret);
    free(c);
}

static ks_remote_device *find(ks_coordinator *c, const char *serial, bool create)
{
    for (int i = 0; i < c->device_count; i++)
        if (!strcmp(c->devices[i].serial, serial))
            return &c->devices[i];
    if (!create || c->device_count >= KS_COORD_MAX_DEVICES)
        return NULL;
    ks_remote_device *d = &c->devices[c->device_count++];
    memset(d, 0, sizeof *d);
    snprintf(d->serial, sizeof d->serial, "%s", serial);
    return d;
}

const ks_remote_device *ks_coordinator_device(ks_coordinator *c, const char *serial)
{
    return find(c, serial, false);
}

size_t ks_coordinator_thumbnail(ks_coordinator *c, const char *serial, const uint8_t **jpeg, int64_t *device_ts_us,
                                uint64_t *count)
{
    ks_remote_device *d = find(c, serial, false);
    int k = d ? (int)(d - c->devices) : -1;
    *jpeg = k >= 0 ? c->thumb[k] : NULL;
    if (device_ts_us)
        *device_ts_us = k >= 0 ? c->thumb_ts_us[k] : 0;
    if (count)
        *count = k >= 0 ? c->thumb_count[k] : 0;
    return k >= 0 && c->thumb[k] ? c->thumb_len[k] : 0;
}

void ks_coordinator_poll(ks_coordinator *c)
{
    void *s[16];
    dds_sample_info_t in[16];
    int n;
    int64_t now = ks_now_monotonic_ns();
    while (memset(s, 0, sizeof s), (n = dds_take(c->tr.r_state, s, in, 16, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            kinsync_msg_dds__DeviceState_ *m = s[i];
            if (!in[i].valid_data) {
                /* liveliness lost or writer gone: the key fields are still filled in */
                ks_remote_device *gone = in[i].instance_state != DDS_IST_ALIVE ? find(c, m->serial, false) : NULL;
                if (gone)
                    gone->last_seen_ns = 0;
                continue;
            }
            ks_remote_device *d = find(c, m->serial, true);
            if (!d)
                continue;
            d->present = true;
            snprintf(d->host, sizeof d->host, "%s", m->host);
            snprintf(d->agent_id, sizeof d->agent_id, "%s", m->agent_id);
            d->status.state = m->state < KS_AGENT_STATE_COUNT ? (ks_agent_state)m->state : KS_AGENT_ERROR;
            snprintf(d->status.role, sizeof d->status.role, "%s", m->role);
            snprintf(d->status.firmware, sizeof d->status.firmware, "%s", m->firmware);
            snprintf(d->status.message, sizeof d->status.message, "%s", m->message);
            d->status.jack_supported = m->jack_supported;
            d->status.sync_in = m->sync_in;
            d->status.sync_out = m->sync_out;
            d->status.clock_synced = m->clock_synced;
            d->status.clock_offset_ns = m->clock_offset_ns;
            d->last_seen_ns = now;
            d->host_time_ns = m->host_time_ns;
            /* host_time was read when the state was published, so receipt - host_time = latency -
             * skew: the largest (host_time - receipt) over many samples is the skew less the
             * smallest latency. Durable samples read late only lower it, never raise it. */
            int64_t est = m->host_time_ns - ks_now_realtime_ns();
            if (!d->skew_known || est > d->clock_skew_ns)
                d->clock_skew_ns = est;
            d->skew_known = true;
        }
        dds_return_loan(c->tr.r_state, s, n);
    }
    while (memset(s, 0, sizeof s), (n = dds_take(c->tr.r_stats, s, in, 16, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            kinsync_msg_dds__DeviceStats_ *m = s[i];
            ks_remote_device *d = in[i].valid_data ? find(c, m->serial, false) : NULL;
            if (!d)
                continue;
            d->status.frames = m->frames;
            d->status.dropped = m->dropped;
            d->status.fps = m->fps;
            d->status.last_device_ts_us = m->last_device_ts_us;
            d->status.last_host_ts_ns = m->last_host_ts_ns;
            d->status.bytes_recorded = m->bytes_recorded;
            d->status.realtime_minus_monotonic_ns = m->realtime_minus_monotonic_ns;
            ks_host_time_fit fit;
            if (ks_net_host_fit_from_msg(m, &fit)) {
                d->status.host_fit = fit;
                /* a new fit only when the agent refitted (its newest frame moved on) */
                const ks_host_time_fit *prev =
                    d->fit_count ? &d->fit_history[(d->fit_next + KS_HOST_FIT_HISTORY - 1) % KS_HOST_FIT_HISTORY]
                                 : NULL;
                if (!prev || prev->last_device_us != fit.last_device_us || prev->frames != fit.frames) {
                    d->fit_history[d->fit_next] = fit;
                    d->fit_next = (d->fit_next + 1) % KS_HOST_FIT_HISTORY;
                    if (d->fit_count < KS_HOST_FIT_HISTORY)
                        d->fit_count++;
                }
            }
        }
        dds_return_loan(c->tr.r_stats, s, n);
    }
    while (memset(s, 0, sizeof s), (n = dds_take(c->tr.r_thumb, s, in, 16, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            kinsync_msg_dds__Thumbnail_ *m = s[i];
            ks_remote_device *d = in[i].valid_data ? find(c, m->serial, false) : NULL;
            if (!d)
                continue;
            d->thumbnail_bytes = m->jpeg._length;
            d->thumbnail_is_jpeg = m->jpeg._length > 2 && m->jpeg._buffer[0] == 0xFF && m->jpeg._buffer[1] == 0xD8;
            int k = (int)(d - c->devices);
            /* agents repeat their latest thumbnail with every state: a new one only when the frame is new */
            bool fresh = !c->thumb[k] || m->device_ts_us != c->thumb_ts_us[k] || m->jpeg._length != c->thumb_len[k];
            uint8_t *copy = d->thumbnail_is_jpeg && fresh ? realloc(c->thumb[k], m->jpeg._length) : NULL;
            if (copy) {
                memcpy(copy, m->jpeg._buffer, m->jpeg._length);
                c->thumb[k] = copy;
                c->thumb_len[k] = m->jpeg._length;
                c->thumb_ts_us[k] = m->device_ts_us;
                c->thumb_count[k]++;
            }
        }
        dds_return_loan(c->tr.r_thumb, s, n);
    }
    while (memset(s, 0, sizeof s), (n = dds_take(c->tr.r_reply, s, in, 16, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            kinsync_msg_dds__Reply_ *m = s[i];
            if (!in[i].valid_data || strcmp(m->coordinator_id, c->id) != 0)
                continue;
            const int cap = (int)(sizeof c->replies / sizeof c->replies[0]);
            pending_reply *r = &c->replies[c->reply_count < cap ? c->reply_count++ : cap - 1];
            r->seq = m->seq;
            snprintf(r->target, sizeof r->target, "%s", m->target);
            r->ok = m->ok;
            snprintf(r->message, sizeof r->message, "%s", m->message);
        }
        dds_return_loan(c->tr.r_reply, s, n);
    }
}

static void wait_a_little(ks_coordinator *c, int ms)
{
    dds_waitset_wait(c->ws, NULL, 0, DDS_MSECS(ms));
}

ks_status ks_coordinator_discover(ks_coordinator *c, const char *const *serials, int n, int timeout_ms,
                                  ks_error *err)
{
    int64_t end = ks_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        ks_coordinator_poll(c);
        int missing = 0;
        char names[512] = "";
        size_t u = 0;
        for (int i = 0; i < n; i++) {
            const ks_remote_device *d = find(c, serials[i], false);
            if (!d || !d->present) {
                missing++;
                if (u < sizeof names - 1)
                    u += (size_t)snprintf(names + u, sizeof names - u, "%s%s", u ? ", " : "", serials[i]);
            }
        }
        /* Seeing an agent's Status proves only that its writers found our readers. A command written before
         * our command writer has matched that agent's reader is lost (volatile, like every command), so the
         * agents are discovered only when every host's command reader and reply writer are matched too. */
        int hosts = 0;
        for (int i = 0; i < n && !missing; i++) {
            const ks_remote_device *d = find(c, serials[i], false);
            bool first = true;
            for (int j = 0; j < i && first; j++)
                first = strcmp(find(c, serials[j], false)->host, d->host) != 0;
            hosts += first;
        }
        dds_publication_matched_status_t pm = {0};
        dds_subscription_matched_status_t sm = {0};
        dds_get_publication_matched_status(c->tr.w_command, &pm);
        dds_get_subscription_matched_status(c->tr.r_reply, &sm);
        if (!missing && (int)pm.current_count >= hosts && (int)sm.current_count >= hosts)
            return KS_OK;
        if (!missing && ks_now_monotonic_ns() >= end)
            return ks_error_set(err, KS_ETIMEOUT,
                                "the agents of %d host(s) report their devices, but only %u command reader(s) and "
                                "%u reply writer(s) were matched within %d ms; check that UDP unicast between the "
                                "hosts is not filtered", hosts, (unsigned)pm.current_count,
                                (unsigned)sm.current_count, timeout_ms);
        if (ks_now_monotonic_ns() >= end)
            return ks_error_set(err, KS_ETIMEOUT,
                                "no agent reported device(s) %s within %d ms; start 'kinsync agent' on their hosts "
                                "with the same rig file, secret and --interface, and check the network between "
                                "the hosts", names, timeout_ms);
        wait_a_little(c, 20);
    }
}

static int count_replies(ks_coordinator *c, uint64_t seq)
{
    int k = 0;
    for (int i = 0; i < c->reply_count; i++)
        k += c->replies[i].seq == seq;
    return k;
}

ks_status ks_coordinator_command(ks_coordinator *c, const char *target, const char *verb, const char *args,
                                 int timeout_ms, ks_error *err)
{
    ks_net_command cmd;
    memset(&cmd, 0, sizeof cmd);
    snprintf(cmd.coordinator_id, sizeof cmd.coordinator_id, "%s", c->id);
    cmd.seq = ++c->seq;
    snprintf(cmd.target, sizeof cmd.target, "%s", target);
    snprintf(cmd.verb, sizeof cmd.verb, "%s", verb);
    cmd.args = args ? args : "";
    snprintf(cmd.rig_digest, sizeof cmd.rig_digest, "%s", c->rig_digest);
    cmd.issued_at_ns = ks_now_realtime_ns();
    ks_net_command_sign(&cmd, c->cfg.secret, c->cfg.secret_len);

    kinsync_msg_dds__Command_ m = {
        .coordinator_id = cmd.coordinator_id,
        .seq = cmd.seq,
        .target = cmd.target,
        .verb = cmd.verb,
        .args = (char *)cmd.args,
        .rig_digest = cmd.rig_digest,
        .issued_at_ns = cmd.issued_at_ns,
        .hmac = {._maximum = 32, ._length = 32, ._buffer = cmd.hmac},
    };
    c->reply_count = 0;
    if (dds_write(c->tr.w_command, &m) < 0)
        return ks_error_set(err, KS_EIO, "sending %s to %s failed", verb, target);
    int expect = 1;
    if (!strcmp(target, "*")) {
        expect = 0;
        for (int i = 0; i < c->device_count; i++)
            expect += c->devices[i].present;
    }
    int64_t end = ks_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    while (count_replies(c, cmd.seq) < expect) {
        if (ks_now_monotonic_ns() >= end) {
            const ks_remote_device *d = strcmp(target, "*") ? find(c, target, false) : NULL;
            return ks_error_set(err, KS_ETIMEOUT, "%s: no answer from %s%s%s within %d ms (%d of %d replies); is "
                                "its agent running, and with the same --secret-file? (an agent that logs \"bad "
                                "signature\" was given a different secret)", verb, target, d ? " on host " : "",
                                d ? d->host : "",
                                timeout_ms, count_replies(c, cmd.seq), expect);
        }
        wait_a_little(c, 10);
        ks_coordinator_poll(c);
    }
    for (int i = 0; i < c->reply_count; i++)
        if (c->replies[i].seq == cmd.seq && !c->replies[i].ok)
            return ks_error_set(err, KS_EIO, "%s failed on %s: %s", verb, c->replies[i].target, c->replies[i].message);
    return KS_OK;
}

void ks_coordinator_reset_fits(ks_coordinator *c)
{
    for (int i = 0; i < c->device_count; i++) {
        c->devices[i].fit_count = c->devices[i].fit_next = 0;
        memset(&c->devices[i].status.host_fit, 0, sizeof c->devices[i].status.host_fit);
    }
}

const ks_remote_device *ks_coordinator_lost(ks_coordinator *c, const char *const *serials, int n)
{
    int64_t now = ks_now_monotonic_ns();
    for (int i = 0; i < n; i++) {
        const ks_remote_device *d = find(c, serials[i], false);
        if (!d || now - d->last_seen_ns > (int64_t)c->cfg.lost_after_ms * 1000000)
            return d;
    }
    return NULL;
}

ks_status ks_coordinator_wait_state(ks_coordinator *c, const char *const *serials, int n, ks_agent_state state,
                                    int timeout_ms, ks_error *err)
{
    int64_t end = ks_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        ks_coordinator_poll(c);
        int ready = 0;
        for (int i = 0; i < n; i++) {
            const ks_remote_device *d = find(c, serials[i], false);
            if (d && d->status.state == KS_AGENT_ERROR)
                return ks_error_set(err, KS_EIO, "device %s on host %s reports ERROR: %s", d->serial, d->host,
                                    d->status.message);
            ready += d && d->status.state == state;
        }
        if (ready == n)
            return KS_OK;
        const ks_remote_device *lost = ks_coordinator_lost(c, serials, n);
        if (lost)
            return ks_error_set(err, KS_ENODEV, "the agent of device %s on host %s was lost (silent for %d ms)", lost->serial,
                                lost->host, c->cfg.lost_after_ms);
        if (ks_now_monotonic_ns() >= end) {
            for (int i = 0; i < n; i++) {
                const ks_remote_device *d = find(c, serials[i], false);
                if (!d || d->status.state != state)
                    return ks_error_set(err, KS_ETIMEOUT, "device %s on host %s did not reach %s within %d ms (it "
                                        "is %s%s%s)", serials[i], d ? d->host : "?", ks_agent_state_name(state),
                                        timeout_ms, d ? ks_agent_state_name(d->status.state) : "unknown",
                                        d && d->status.message[0] ? ": " : "", d ? d->status.message : "");
            }
        }
        wait_a_little(c, 20);
    }
}

ks_status ks_coordinator_gather(ks_coordinator *c, const char *serial, const char *dir, int timeout_ms,
                                char *path_out, size_t n, ks_error *err)
{
    ks_status st = ks_coordinator_command(c, serial, "GATHER", "", timeout_ms, err);
    if (st != KS_OK)
        return st;
    char tmp[1024] = "", final[1024] = "";
    FILE *f = NULL;
    uint64_t expect_off = 0;
    crypto_hash_sha256_state hs;
    crypto_hash_sha256_init(&hs);
    int64_t end = ks_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        void *s[4] = {0};
        dds_sample_info_t in[4];
        int k = dds_take(c->tr.r_chunk, s, in, 4, 4);
        if (k <= 0) {
            if (ks_now_monotonic_ns() >= end) {
                st = ks_error_set(err, KS_ETIMEOUT, "gathering the recording of %s timed out after %llu bytes",
                                  serial, (unsigned long long)expect_off);
                break;
            }
            dds_waitset_wait(c->ws_chunk, NULL, 0, DDS_MSECS(50));
            continue;
        }
        bool done = false;
        for (int i = 0; i < k && st == KS_OK && !done; i++) {
            kinsync_msg_dds__FileChunk_ *ch = s[i];
            if (!in[i].valid_data || strcmp(ch->coordinator_id, c->id) || strcmp(ch->serial, serial))
                continue;
            if (!f) {
                const char *base = strrchr(ch->name, '/');
                base = base ? base + 1 : ch->name;
                if (!base[0] || !strcmp(base, "..") || !strcmp(base, ".")) {
                    st = ks_error_set(err, KS_EPARSE, "agent sent a recording with an invalid name");
                    break;
                }
                snprintf(final, sizeof final, "%s/%s", dir, base);
                snprintf(tmp, sizeof tmp, "%s.part", final);
                f = fopen(tmp, "wb");
                if (!f) {
                    st = ks_error_set(err, KS_EIO, "cannot write %s", tmp);
                    break;
                }
            }
            if (ch->offset != expect_off) {
                st = ks_error_set(err, KS_EIO, "recording of %s: chunk at offset %llu, expected %llu", serial,
                                  (unsigned long long)ch->offset, (unsigned long long)expect_off);
                break;
            }
            fwrite(ch->data._buffer, 1, ch->data._length, f);
            crypto_hash_sha256_update(&hs, ch->data._buffer, ch->data._length);
            expect_off += ch->data._length;
            if (ch->last) {
                uint8_t digest[32];
                crypto_hash_sha256_final(&hs, digest);
                if (ch->sha256._length != 32 || memcmp(digest, ch->sha256._buffer, 32) != 0)
                    st = ks_error_set(err, KS_EIO, "recording of %s arrived with a wrong SHA-256; gather it again",
                                      serial);
                else if (expect_off != ch->total)
                    st = ks_error_set(err, KS_EIO, "recording of %s: %llu bytes arrived, %llu announced", serial,
                                      (unsigned long long)expect_off, (unsigned long long)ch->total);
                done = true;
            }
        }
        dds_return_loan(c->tr.r_chunk, s, k);
        if (st != KS_OK || done)
            break;
    }
    if (f) {
        bool wrote = fclose(f) == 0;
        if (st == KS_OK && wrote && rename(tmp, final) == 0) {
            if (path_out)
                snprintf(path_out, n, "%s", final);
            return KS_OK;
        }
        unlink(tmp);
        if (st == KS_OK)
            st = ks_error_set(err, KS_EIO, "cannot finish writing %s", final);
    }
    return st;
}
