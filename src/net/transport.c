/* DDS transport (net/transport.h). Cyclone DDS gives brokerless discovery, reliable and durable
 * state and liveliness; this file pins everything it needs explicitly instead of trusting defaults:
 * which interfaces, multicast or unicast peers, how many participants a host may hold (Cyclone caps
 * loopback at 10 unless raised), and the QoS of each topic:
 *   rt/kinsync/state    reliable, transient-local, keep last 1 per device: a late coordinator sees
 *                        every device at once; liveliness lease so a killed agent is noticed
 *   rt/kinsync/stats    best effort, keep last: only the newest figures matter
 *   rt/kinsync/command  reliable, volatile, keep all: every command reaches every agent once
 *   rt/kinsync/reply    reliable, volatile, keep all
 *   rt/kinsync/file     reliable, keep all, large buffers: recordings gathered chunk by chunk
 *   rt/kinsync/thumbnail best effort, keep last */
#include "net/transport.h"
#include "util/monotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ks_now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ks_now_monotonic_ns(void)
{
    return ks_mono_ns();
}

void ks_net_config_init(ks_net_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->domain_id = 47;
    cfg->max_participants = 64;
    cfg->lease_ms = 1000;
    cfg->lost_after_ms = 3000;
}

static ks_status add_csv(char (*dst)[64], int *count, int cap, size_t width, const char *csv, const char *what,
                         ks_error *err)
{
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            if (*count >= cap)
                return ks_error_set(err, KS_EINVAL, "too many %s (at most %d)", what, cap);
            if (n >= width)
                return ks_error_set(err, KS_EINVAL, "%s '%.*s' is too long", what, (int)n, p);
            for (size_t i = 0; i < n; i++)
                if (p[i] == '<' || p[i] == '>' || p[i] == '"' || p[i] == '&' || p[i] == ' ')
                    return ks_error_set(err, KS_EINVAL, "%s '%.*s' contains a character that is not allowed",
                                        what, (int)n, p);
            memcpy(dst[*count], p, n);
            dst[*count][n] = '\0';
            (*count)++;
        }
        p = e ? e + 1 : NULL;
    }
    return KS_OK;
}

ks_status ks_net_config_add_interfaces(ks_net_config *cfg, const char *csv, ks_error *err)
{
    char tmp[KS_NET_MAX_INTERFACES][64];
    int n = 0;
    ks_status st = add_csv(tmp, &n, KS_NET_MAX_INTERFACES - cfg->interface_count, sizeof cfg->interfaces[0], csv,
                           "network interface", err);
    for (int i = 0; st == KS_OK && i < n; i++)
        snprintf(cfg->interfaces[cfg->interface_count++], sizeof cfg->interfaces[0], "%s", tmp[i]);
    return st;
}

ks_status ks_net_config_add_peers(ks_net_config *cfg, const char *csv, ks_error *err)
{
    int n = cfg->peer_count;
    ks_status st = add_csv(cfg->peers + n, &n, KS_NET_MAX_PEERS, sizeof cfg->peers[0], csv, "peer address", err);
    cfg->peer_count = n;
    return st;
}

ks_status ks_net_config_load_secret(ks_net_config *cfg, const char *path, ks_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ks_error_set(err, KS_ENOTFOUND, "secret file %s cannot be opened; create it with e.g. "
                            "'head -c 32 /dev/urandom | base64 > %s; chmod 600 %s' and copy it to every host",
                            path, path, path);
    size_t n = fread(cfg->secret, 1, sizeof cfg->secret, f);
    fclose(f);
    while (n && (cfg->secret[n - 1] == '\n' || cfg->secret[n - 1] == '\r'))
        n--;
    if (n < 16)
        return ks_error_set(err, KS_EINVAL, "secret file %s holds %zu bytes; use at least 16 random bytes", path, n);
    cfg->secret_len = n;
    return KS_OK;
}

char *ks_net_config_xml(const ks_net_config *cfg)
{
    size_t cap = 4096;
    char *x = malloc(cap);
    if (!x)
        return NULL;
    size_t u = 0;
#define OUT(...) u += (size_t)snprintf(x + u, u < cap ? cap - u : 0, __VA_ARGS__)
    OUT("<CycloneDDS><Domain><General><Interfaces>");
    for (int i = 0; i < cfg->interface_count; i++)
        OUT("<NetworkInterface name=\"%s\"/>", cfg->interfaces[i]);
    OUT("</Interfaces><AllowMulticast>%s</AllowMulticast><MaxMessageSize>65500B</MaxMessageSize></General>",
        cfg->multicast ? "true" : "false");
    /* recordings are gathered in 256 KiB chunks: bigger socket buffers and writer cache keep the pipe full */
    OUT("<Internal><SocketReceiveBufferSize min=\"default\" max=\"8MB\"/><SocketSendBufferSize min=\"default\" "
        "max=\"8MB\"/><Watermarks><WhcHigh>8MB</WhcHigh></Watermarks></Internal>");
    OUT("<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>%d</MaxAutoParticipantIndex>",
        cfg->max_participants);
    if (cfg->peer_count) {
        OUT("<Peers>");
        for (int i = 0; i < cfg->peer_count; i++)
            OUT("<Peer address=\"%s\"/>", cfg->peers[i]);
        OUT("</Peers>");
    }
    OUT("</Discovery></Domain></CycloneDDS>");
#undef OUT
    if (u >= cap) {
        free(x);
        return NULL;
    }
    return x;
}

static dds_qos_t *qos_reliable(bool durable, bool keep_all, int lease_ms)
{
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(2));
    dds_qset_durability(q, durable ? DDS_DURABILITY_TRANSIENT_LOCAL : DDS_DURABILITY_VOLATILE);
    if (keep_all)
        dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    else
        dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 1);
    if (lease_ms > 0)
        dds_qset_liveliness(q, DDS_LIVELINESS_AUTOMATIC, DDS_MSECS(lease_ms));
    return q;
}

static dds_qos_t *qos_best_effort(void)
{
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_BEST_EFFORT, 0);
    dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 1);
    return q;
}

#define CHECK(e, what)                                                                                    \
    do {                                                                                                  \
        if ((e) < 0) {                                                                                    \
            ks_error_set(err, KS_EIO, "DDS: cannot create %s: %s", what, dds_strretcode(e));              \
            goto fail;                                                                                    \
        }                                                                                                 \
    } while (0)

ks_status ks_transport_open(ks_transport *t, const ks_net_config *cfg, bool role_agent, ks_error *err)
{
    memset(t, 0, sizeof *t);
    if (cfg->interface_count == 0)
        return ks_error_set(err, KS_EINVAL, "no network interface given; name the interface(s) the rig uses "
                            "(e.g. --interface eth1), kinsync never picks one by itself");
    char *xml = ks_net_config_xml(cfg);
    if (!xml)
        return ks_error_set(err, KS_ENOMEM, "out of memory building the DDS configuration");
    t->domain = dds_create_domain((dds_domainid_t)cfg->domain_id, xml);
    free(xml);
    if (t->domain == DDS_RETCODE_PRECONDITION_NOT_MET)
        t->domain = 0; /* this process already has the domain (a second participant): share it */
    else if (t->domain < 0)
        return ks_error_set(err, KS_EIO, "DDS: cannot create domain %d on interface(s) %s...: %s; check the "
                            "interface names (ip link)", cfg->domain_id, cfg->interfaces[0],
                            dds_strretcode(t->domain));
    t->participant = dds_create_participant((dds_domainid_t)cfg->domain_id, NULL, NULL);
    CHECK(t->participant, "participant");

    dds_qos_t *q_state = qos_reliable(true, false, cfg->lease_ms);
    dds_qos_t *q_cmd = qos_reliable(false, true, 0);
    dds_qos_t *q_be = qos_best_effort();
    t->t_state = dds_create_topic(t->participant, &kinsync_msg_dds__DeviceState__desc, "rt/kinsync/state", q_state, NULL);
    t->t_stats = dds_create_topic(t->participant, &kinsync_msg_dds__DeviceStats__desc, "rt/kinsync/stats", q_be, NULL);
    t->t_command = dds_create_topic(t->participant, &kinsync_msg_dds__Command__desc, "rt/kinsync/command", q_cmd, NULL);
    t->t_reply = dds_create_topic(t->participant, &kinsync_msg_dds__Reply__desc, "rt/kinsync/reply", q_cmd, NULL);
    t->t_chunk = dds_create_topic(t->participant, &kinsync_msg_dds__FileChunk__desc, "rt/kinsync/file", q_cmd, NULL);
    t->t_thumb = dds_create_topic(t->participant, &kinsync_msg_dds__Thumbnail__desc, "rt/kinsync/thumbnail", q_be, NULL);
    bool ok = t->t_state > 0 && t->t_stats > 0 && t->t_command > 0 && t->t_reply > 0 && t->t_chunk > 0 && t->t_thumb > 0;
    if (ok) {
        if (role_agent) {
            t->w_state = dds_create_writer(t->participant, t->t_state, q_state, NULL);
            t->w_stats = dds_create_writer(t->participant, t->t_stats, q_be, NULL);
            t->w_reply = dds_create_writer(t->participant, t->t_reply, q_cmd, NULL);
            t->w_chunk = dds_create_writer(t->participant, t->t_chunk, q_cmd, NULL);
            t->w_thumb = dds_create_writer(t->participant, t->t_thumb, q_be, NULL);
            t->r_command = dds_create_reader(t->participant, t->t_command, q_cmd, NULL);
            ok = t->w_state > 0 && t->w_stats > 0 && t->w_reply > 0 && t->w_chunk > 0 && t->w_thumb > 0 &&
                 t->r_command > 0;
        } else {
            t->w_command = dds_create_writer(t->participant, t->t_command, q_cmd, NULL);
            t->r_state = dds_create_reader(t->participant, t->t_state, q_state, NULL);
            t->r_stats = dds_create_reader(t->participant, t->t_stats, q_be, NULL);
            t->r_reply = dds_create_reader(t->participant, t->t_reply, q_cmd, NULL);
            t->r_chunk = dds_create_reader(t->participant, t->t_chunk, q_cmd, NULL);
            t->r_thumb = dds_create_reader(t->participant, t->t_thumb, q_be, NULL);
            ok = t->w_command > 0 && t->r_state > 0 && t->r_stats > 0 && t->r_reply > 0 && t->r_chunk > 0 &&
                 t->r_thumb > 0;
        }
    }
    dds_delete_qos(q_state);
    dds_delete_qos(q_cmd);
    dds_delete_qos(q_be);
    if (!ok) {
        ks_error_set(err, KS_EIO, "DDS: cannot create the kinsync topics, readers or writers");
        goto fail;
    }
    return KS_OK;
fail:
    ks_transport_close(t);
    return err ? err->code : KS_EIO;
}

void ks_transport_close(ks_transport *t)
{
    if (t->participant > 0)
        dds_delete(t->participant);
    if (t->domain > 0)
        dds_delete(t->domain);
    memset(t, 0, sizeof *t);
}
