/* Command authentication for the multi-host protocol (kinsync/net.h).
 *
 * An agent must obey only coordinators that know the rig's shared secret. Each command carries an
 * HMAC-SHA256 (libsodium) over a canonical encoding of all its fields: every string is
 * length-prefixed, so no two different commands encode to the same bytes. Replays are refused by a
 * per-coordinator sequence number that must grow, and by the issue time, which must fall inside a
 * window around the agent's clock: a command captured yesterday is useless today even after the agent
 * restarted and forgot the sequence numbers. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/net.h"
#include "net/transport.h"

static void put_str(crypto_auth_hmacsha256_state *st, const char *s)
{
    uint8_t len[4];
    size_t n = s ? strlen(s) : 0;
    for (int i = 0; i < 4; i++)
        len[i] = (uint8_t)(n >> (24 - 8 * i));
    crypto_auth_hmacsha256_update(st, len, sizeof len);
    if (n)
        crypto_auth_hmacsha256_update(st, (const uint8_t *)s, n);
}

static void put_u64(crypto_auth_hmacsha256_state *st, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    crypto_auth_hmacsha256_update(st, b, sizeof b);
}

static void mac(const ks_net_command *cmd, const uint8_t *secret, size_t secret_len, uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    put_str(&st, "kinsync-command-v1");
    put_str(&st, cmd->coordinator_id);
    put_u64(&st, cmd->seq);
    put_str(&st, cmd->target);
    put_str(&st, cmd->verb);
    put_str(&st, cmd->args);
    put_str(&st, cmd->rig_digest);
    put_u64(&st, (uint64_t)cmd->issued_at_ns);
    crypto_auth_hmacsha256_final(&st, out);
}

void ks_net_command_sign(ks_net_command *cmd, const uint8_t *secret, size_t secret_len)
{
    mac(cmd, secret, secret_len, cmd->hmac);
}

bool ks_net_command_verify(const ks_net_command *cmd, const uint8_t *secret, size_t secret_len)
{
    uint8_t want[32];
    mac(cmd, secret, secret_len, want);
    return sodium_memcmp(want, cmd->hmac, sizeof want) == 0;
}

void ks_replay_guard_init(ks_replay_guard *g, int64_t window_ns)
{
    memset(g, 0, sizeof *g);
    g->window_ns = window_ns;
}

ks_status ks_replay_guard_check(ks_replay_guard *g, const ks_net_command *cmd, int64_t now_ns, ks_error *err)
{
    int64_t age = now_ns - cmd->issued_at_ns;
    if (age > g->window_ns || age < -g->window_ns)
        return ks_error_set(err, KS_EAUTH,
                            "command %s #%llu from coordinator %s was issued %.1f s %s this host's clock; "
                            "rejected as stale (synchronize the host clocks with chrony or PTP)",
                            cmd->verb, (unsigned long long)cmd->seq, cmd->coordinator_id,
                            (double)(age < 0 ? -age : age) / 1e9, age < 0 ? "ahead of" : "behind");
    int slot = -1, oldest = 0;
    for (int i = 0; i < g->count; i++) {
        if (strcmp(g->entries[i].coordinator_id, cmd->coordinator_id) == 0) {
            slot = i;
            break;
        }
        if (g->entries[i].last_used_ns < g->entries[oldest].last_used_ns)
            oldest = i;
    }
    if (slot >= 0 && cmd->seq <= g->entries[slot].last_seq)
        return ks_error_set(err, KS_EAUTH,
                            "command %s #%llu from coordinator %s replays an old sequence number (last accepted "
                            "#%llu); rejected",
                            cmd->verb, (unsigned long long)cmd->seq, cmd->coordinator_id,
                            (unsigned long long)g->entries[slot].last_seq);
    if (slot < 0) {
        const int cap = (int)(sizeof g->entries / sizeof g->entries[0]);
        slot = g->count < cap ? g->count++ : oldest;
        snprintf(g->entries[slot].coordinator_id, sizeof g->entries[slot].coordinator_id, "%s",
                 cmd->coordinator_id);
    }
    g->entries[slot].last_seq = cmd->seq;
    g->entries[slot].last_used_ns = now_ns;
    return KS_OK;
}

void ks_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t h[32];
    crypto_hash_sha256(h, data, len);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static ks_status copy_field(const char *what, const char *src, char *dst, size_t cap, ks_error *err)
{
    if (!src)
        return ks_error_set(err, KS_EPARSE, "command field %s is missing", what);
    size_t n = strlen(src);
    if (n >= cap)
        return ks_error_set(err, KS_EPARSE, "command field %s is %zu bytes long (at most %zu)", what, n, cap - 1);
    memcpy(dst, src, n + 1);
    return KS_OK;
}

ks_status ks_net_command_from_msg(const kinsync_msg_dds__Command_ *m, ks_net_command *out, ks_error *err)
{
    memset(out, 0, sizeof *out);
    ks_status st = KS_OK;
    if ((st = copy_field("coordinator_id", m->coordinator_id, out->coordinator_id, sizeof out->coordinator_id, err)) ||
        (st = copy_field("target", m->target, out->target, sizeof out->target, err)) ||
        (st = copy_field("verb", m->verb, out->verb, sizeof out->verb, err)) ||
        (st = copy_field("rig_digest", m->rig_digest, out->rig_digest, sizeof out->rig_digest, err)))
        return st;
    if (!m->args)
        return ks_error_set(err, KS_EPARSE, "command field args is missing");
    if (m->hmac._length != sizeof out->hmac || !m->hmac._buffer)
        return ks_error_set(err, KS_EPARSE, "command signature is %u bytes (HMAC-SHA256 has 32)", m->hmac._length);
    out->seq = m->seq;
    out->args = m->args;
    out->issued_at_ns = m->issued_at_ns;
    memcpy(out->hmac, m->hmac._buffer, sizeof out->hmac);
    return KS_OK;
}

ks_status ks_net_parse_start_args(const char *args, int64_t *at, char *master, size_t n, ks_error *err)
{
    json_error_t je;
    json_t *j = json_loads(args ? args : "", 0, &je);
    if (!j)
        return ks_error_set(err, KS_EPARSE, "command arguments are not JSON: %s", je.text);
    json_t *a = json_object_get(j, "at_realtime_ns");
    json_t *m = json_object_get(j, "master");
    ks_status st = KS_OK;
    if (!json_is_integer(a))
        st = ks_error_set(err, KS_EPARSE, "command arguments lack the integer 'at_realtime_ns'");
    else
        *at = (int64_t)json_integer_value(a);
    if (master && st == KS_OK) {
        const char *ms = json_string_value(m);
        if (!ms)
            st = ks_error_set(err, KS_EPARSE, "command arguments lack the string 'master'");
        else if (strlen(ms) >= n)
            st = ks_error_set(err, KS_EPARSE, "command argument 'master' is too long");
        else
            snprintf(master, n, "%s", ms);
    }
    json_decref(j);
    return st;
}
