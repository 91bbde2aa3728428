/* net/transport.h: the DDS side of the multi-host protocol (internal). One participant per agent or
 * coordinator in its own Cyclone domain created from an explicit XML configuration, and the topics
 * with their QoS. */
#ifndef KS_NET_TRANSPORT_H
#define KS_NET_TRANSPORT_H

#include <dds/dds.h>

#include "kinsync/net.h"
#include "kinsync_msgs.h"

typedef struct ks_transport {
    dds_entity_t domain;
    dds_entity_t participant;
    dds_entity_t t_state, t_stats, t_command, t_reply, t_chunk, t_thumb;
    dds_entity_t w_state, w_stats, w_command, w_reply, w_chunk, w_thumb;
    dds_entity_t r_state, r_stats, r_command, r_reply, r_chunk, r_thumb;
} ks_transport;

/* role_agent: agents write state/stats/replies/chunks and read commands; coordinators the reverse. */
ks_status ks_transport_open(ks_transport *t, const ks_net_config *cfg, bool role_agent, ks_error *err);
void ks_transport_close(ks_transport *t);

/* Checks a received Command_ (field sizes, HMAC length, NUL-free strings) and copies it into *out
 * (out->args points into m). KS_EPARSE naming the bad field otherwise. */
ks_status ks_net_command_from_msg(const kinsync_msg_dds__Command_ *m, ks_net_command *out, ks_error *err);
/* Parses SYNC/START arguments {"at_realtime_ns": T[, "master": SERIAL]}; master may be NULL when
 * not wanted. KS_EPARSE naming the missing or malformed field. */
ks_status ks_net_parse_start_args(const char *args, int64_t *at, char *master, size_t n, ks_error *err);

/* Copies the host-time fit of a received DeviceStats_ into *out when it is usable (ok flag, rate
 * within 900..1100 ns/us, finite, at least 2 frames); false and out->ok false otherwise
 * (src/net/hosttime.c). */
bool ks_net_host_fit_from_msg(const kinsync_msg_dds__DeviceStats_ *m, ks_host_time_fit *out);

/* Forgets the host-time fits received so far (a new run starts; agents refit from its frames). */
void ks_coordinator_reset_fits(ks_coordinator *c);

int64_t ks_now_realtime_ns(void);
int64_t ks_now_monotonic_ns(void);

#endif
