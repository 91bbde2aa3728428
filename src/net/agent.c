/* The agent (kinsync/net.h): one per host, owning that host's devices.
 *
 * The loop is deliberately simple: take commands, check them (signature, freshness, replay, rig,
 * target), run the verb through the caller's ops, answer with a Reply, and publish every device's
 * State and Stats twice a second. State is published even when nothing changed, because an idle
 * Cyclone writer may not regain liveliness after an outage: the heartbeat is what the coordinator
 * watches. Rejected commands are counted and logged to stderr with the reason. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "net/net_testing.h"
#include "net/transport.h"

#define KS_AGENT_MAX_DEVICES 16
#define PUBLISH_PERIOD_NS 500000000LL
#define CHUNK_BYTES (256 * 1024)
#define COMMAND_WINDOW_NS (30LL * 1000000000LL)
#define THUMB_MAX (64 * 1024)

struct ks_agent {
    ks_net_config cfg;
    ks_transport tr;
    char id[40];
    char host[64];
    char rig_digest[72];
    int device_count;
    char serials[KS_AGENT_MAX_DEVICES][32];
    uint64_t last_seq[KS_AGENT_MAX_DEVICES];
    const ks_agent_ops *ops;
    void *ctx;
    ks_replay_guard guard;
    uint64_t rejected;
    int64_t next_publish_ns;
    ks_agent_state published[KS_AGENT_MAX_DEVICES]; /* states last published: a change is sent at once */
    dds_entity_t ws; /* wakes the loop as soon as a command arrives */
    uint8_t *thumb_buf;
    int64_t test_clock_offset_ns; /* test hook: reported realtime moved by this */
};

void ks_agent_set_reported_clock_offset(ks_agent *a, int64_t offset_ns)
{
    a->test_clock_offset_ns = offset_ns;
}

static const char *const state_names[KS_AGENT_STATE_COUNT] = {"IDLE", "CONFIGURED", "ARMED",
                                                              "STREAMING", "STOPPED", "ERROR"};

const char *ks_agent_state_name(ks_agent_state s)
{
    return (s >= 0 && s < KS_AGENT_STATE_COUNT) ? state_names[s] : "UNKNOWN";
}

ks_status ks_agent_create(const ks_net_config *cfg, const char *host, const char *rig_digest,
                          const char *const *serials, int serial_count, const ks_agent_ops *ops, void *ctx,
                          ks_agent **out, ks_error *err)
{
    if (serial_count <= 0 || serial_count > KS_AGENT_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "an agent owns 1 to %d devices; host %s has %d in the rig",
                            KS_AGENT_MAX_DEVICES, host, serial_count);
    if (cfg->secret_len == 0)
        return ks_error_set(err, KS_EINVAL, "no rig secret: agents obey only coordinators that prove the shared "
                            "secret; pass --secret-file");
    if (sodium_init() < 0)
        return ks_error_set(err, KS_EIO, "libsodium failed to initialize");
    ks_agent *a = calloc(1, sizeof *a);
    if (!a)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    a->cfg = *cfg;
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < 8; i++)
        snprintf(a->id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(a->host, sizeof a->host, "%s", host);
    snprintf(a->rig_digest, sizeof a->rig_digest, "%s", rig_digest);
    a->device_count = serial_count;
    for (int i = 0; i < serial_count; i++)
        snprintf(a->serials[i], sizeof a->serials[i], "%s", serials[i]);
    a->ops = ops;
    a->ctx = ctx;
    a->thumb_buf = malloc(THUMB_MAX);
    ks_replay_guard_init(&a->guard, COMMAND_WINDOW_NS);
    ks_status st = ks_transport_open(&a->tr, cfg, true, err);
    if (st != KS_OK) {
        free(a->thumb_buf);
        free(a);
        return st;
    }
    a->ws = dds_create_waitset(a->tr.participant);
    dds_waitset_attach(a->ws, dds_create_readcondition(a->tr.r_command, DDS_ANY_STATE), 0);
    *out = a;
    return KS_OK;
}

void ks_agent_free(ks_agent *a)
{
    if (!a)
        return;
    ks_transport_close(&a->tr);
    sodium_memzero(a->cfg.secret, sizeof a->cfg.secret);
    free(a->thumb_buf);
    free(a);
}

uint64_t ks_agent_rejected(const ks_agent *a)
{
    return a->rejected;
}

static int device_index(const ks_agent *a, const char *serial)
{
    for (int i = 0; i < a->device_count; i++)
        if (strcmp(a->serials[i], serial) == 0)
            return i;
    return -1;
}

static void reply(ks_agent *a, const kinsync_msg_dds__Command_ *c, const char *target, bool ok, const char *msg)
{
    kinsync_msg_dds__Reply_ r = {
        .agent_id = a->id,
        .coordinator_id = c->coordinator_id,
        .seq = c->seq,
        .target = (char *)target,
        .ok = ok,
        .message = (char *)msg,
    };
    dds_write(a->tr.w_reply, &r);
}

static void publish(ks_agent *a)
{
    for (int i = 0; i < a->device_count; i++) {
        ks_agent_device_status st;
        memset(&st, 0, sizeof st);
        if (a->ops->status)
            a->ops->status(a->ctx, a->serials[i], &st);
        a->published[i] = st.state;
        kinsync_msg_dds__DeviceState_ s = {
            .serial = a->serials[i],
            .host = a->host,
            .agent_id = a->id,
            .role = st.role,
            .state = (uint8_t)st.state,
            .firmware = st.firmware,
            .jack_supported = st.jack_supported,
            .sync_in = st.sync_in,
            .sync_out = st.sync_out,
            .clock_synced = st.clock_synced,
            .clock_offset_ns = st.clock_offset_ns,
            .host_time_ns = ks_now_realtime_ns() + a->test_clock_offset_ns,
            .last_command_seq = a->last_seq[i],
            .message = st.message,
        };
        dds_write(a->tr.w_state, &s);
        kinsync_msg_dds__DeviceStats_ x = {
            .serial = a->serials[i],
            .frames = st.frames,
            .dropped = st.dropped,
            .fps = st.fps,
            .last_device_ts_us = st.last_device_ts_us,
            .last_host_ts_ns = st.last_host_ts_ns,
            .bytes_recorded = st.bytes_recorded,
            .host_fit_ok = st.host_fit.ok,
            .host_fit_rate = st.host_fit.rate,
            .host_fit_offset_ns = st.host_fit.offset_ns,
            .host_fit_mad_us = st.host_fit.mad_us,
            .host_fit_frames = st.host_fit.frames,
            .host_fit_last_device_us = st.host_fit.last_device_us,
            .host_fit_first_device_us = st.host_fit.first_device_us,
            .realtime_minus_monotonic_ns = st.realtime_minus_monotonic_ns,
        };
        dds_write(a->tr.w_stats, &x);
        if (a->ops->thumbnail && a->thumb_buf) {
            int64_t ts = 0;
            size_t n = a->ops->thumbnail(a->ctx, a->serials[i], a->thumb_buf, THUMB_MAX, &ts);
            if (n > 0) {
                kinsync_msg_dds__Thumbnail_ t = {
                    .serial = a->serials[i],
                    .device_ts_us = ts,
                    .jpeg = {._maximum = (uint32_t)n, ._length = (uint32_t)n, ._buffer = a->thumb_buf},
                };
                dds_write(a->tr.w_thumb, &t);
            }
        }
    }
}

/* Streams a finished recording in chunks; the last carries the file's SHA-256. */
static ks_status send_file(ks_agent *a, const kinsync_msg_dds__Command_ *c, const char *serial, ks_error *err)
{
    char path[1024] = "";
    if (a->ops->recording_path)
        a->ops->recording_path(a->ctx, serial, path, sizeof path);
    if (!path[0])
        return ks_error_set(err, KS_ENOTFOUND, "device %s on host %s has no finished recording to gather", serial,
                            a->host);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ks_error_set(err, KS_EIO, "host %s: cannot open recording %s", a->host, path);
    struct stat sb;
    fstat(fileno(f), &sb);
    uint64_t total = (uint64_t)sb.st_size, off = 0;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    uint8_t *buf = malloc(CHUNK_BYTES);
    crypto_hash_sha256_state hs;
    crypto_hash_sha256_init(&hs);
    ks_status st = buf ? KS_OK : ks_error_set(err, KS_ENOMEM, "out of memory");
    while (st == KS_OK) {
        size_t n = fread(buf, 1, CHUNK_BYTES, f);
        crypto_hash_sha256_update(&hs, buf, n);
        bool last = off + n >= total || n == 0;
        uint8_t digest[32];
        if (last)
            crypto_hash_sha256_final(&hs, digest);
        kinsync_msg_dds__FileChunk_ ch = {
            .coordinator_id = c->coordinator_id,
            .serial = (char *)serial,
            .name = (char *)name,
            .offset = off,
            .total = total,
            .last = last,
            .sha256 = {._maximum = 32, ._length = last ? 32 : 0, ._buffer = last ? digest : NULL},
            .data = {._maximum = (uint32_t)n, ._length = (uint32_t)n, ._buffer = buf},
        };
        if (dds_write(a->tr.w_chunk, &ch) < 0)
            st = ks_error_set(err, KS_EIO, "host %s: sending %s failed", a->host, name);
        off += n;
        if (last)
            break;
    }
    free(buf);
    fclose(f);
    return st;
}

static ks_status run_verb(ks_agent *a, const kinsync_msg_dds__Command_ *c, const char *serial, ks_error *err)
{
    const char *v = c->verb;
    if (!strcmp(v, "CONFIGURE"))
        return a->ops->configure ? a->ops->configure(a->ctx, serial, c->args, err) : KS_OK;
    if (!strcmp(v, "ARM"))
        return a->ops->arm ? a->ops->arm(a->ctx, serial, err) : KS_OK;
    if (!strcmp(v, "START"))
        return a->ops->start ? a->ops->start(a->ctx, serial, c->args, err) : KS_OK;
    if (!strcmp(v, "SYNC"))
        return a->ops->sync ? a->ops->sync(a->ctx, serial, c->args, err) : KS_OK;
    if (!strcmp(v, "STOP"))
        return a->ops->stop ? a->ops->stop(a->ctx, serial, err) : KS_OK;
    if (!strcmp(v, "GATHER"))
        return send_file(a, c, serial, err);
    if (!strcmp(v, "PING"))
        return KS_OK;
    return ks_error_set(err, KS_EINVAL, "unknown command verb '%s'", v);
}

static void handle(ks_agent *a, const kinsync_msg_dds__Command_ *c)
{
    ks_net_command cmd;
    ks_error e;
    if (ks_net_command_from_msg(c, &cmd, &e) != KS_OK) {
        a->rejected++;
        fprintf(stderr, "kinsync agent %s: rejected a malformed command: %s\n", a->host, e.message);
        return;
    }
    bool mine = !strcmp(c->target, "*") || device_index(a, c->target) >= 0;
    if (!mine)
        return; /* addressed to another host: not ours to judge */
    if (!ks_net_command_verify(&cmd, a->cfg.secret, a->cfg.secret_len)) {
        a->rejected++;
        fprintf(stderr, "kinsync agent %s: rejected command %s #%llu from %s: bad signature (unknown peer or "
                "wrong rig secret)\n", a->host, c->verb, (unsigned long long)c->seq, c->coordinator_id);
        return;
    }
    if (ks_replay_guard_check(&a->guard, &cmd, ks_now_realtime_ns(), &e) != KS_OK) {
        a->rejected++;
        fprintf(stderr, "kinsync agent %s: %s\n", a->host, e.message);
        reply(a, c, c->target, false, e.message);
        return;
    }
    if (strcmp(c->rig_digest, a->rig_digest) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "host %s runs a different rig file (digest %.12s, coordinator %.12s); copy the "
                 "same rig file to every host", a->host, a->rig_digest, c->rig_digest);
        a->rejected++;
        fprintf(stderr, "kinsync agent %s: %s\n", a->host, msg);
        reply(a, c, c->target, false, msg);
        return;
    }
    for (int i = 0; i < a->device_count; i++) {
        if (strcmp(c->target, "*") && strcmp(c->target, a->serials[i]))
            continue;
        ks_error_clear(&e);
        ks_status st = run_verb(a, c, a->serials[i], &e);
        a->last_seq[i] = c->seq;
        reply(a, c, a->serials[i], st == KS_OK, st == KS_OK ? "" : e.message);
    }
    a->next_publish_ns = 0; /* publish the new state now */
}

void ks_agent_step(ks_agent *a)
{
    for (;;) {
        void *samples[8] = {0};
        dds_sample_info_t info[8];
        int n = dds_take(a->tr.r_command, samples, info, 8, 8);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++)
            if (info[i].valid_data)
                handle(a, samples[i]);
        dds_return_loan(a->tr.r_command, samples, n);
    }
    if (a->ops->poll)
        a->ops->poll(a->ctx);
    int64_t now = ks_now_monotonic_ns();
    for (int i = 0; i < a->device_count && a->ops->status; i++) {
        ks_agent_device_status st;
        memset(&st, 0, sizeof st);
        a->ops->status(a->ctx, a->serials[i], &st);
        if (st.state != a->published[i])
            a->next_publish_ns = 0;
    }
    if (now >= a->next_publish_ns) {
        publish(a);
        a->next_publish_ns = now + PUBLISH_PERIOD_NS;
    }
}

ks_status ks_agent_run(ks_agent *a, volatile int *stop, ks_error *err)
{
    (void)err;
    while (!*stop) {
        ks_agent_step(a);
        dds_waitset_wait(a->ws, NULL, 0, DDS_MSECS(20));
    }
    return KS_OK;
}
