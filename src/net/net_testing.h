/* net/net_testing.h: test hooks of the multi-host layer. Internal: not installed, not part of the
 * API (kinsync/net.h). `kinsync agent` calls them when KINSYNC_TEST_CLOCK_OFFSET_MS is set
 * (docs/agent.md), so the namespace tests can make one host's clock disagree. */
#ifndef KS_NET_TESTING_H
#define KS_NET_TESTING_H

#include <stdint.h>

#include "kinsync/net.h"

/* Every CLOCK_REALTIME value this agent reports (State host_time_ns) is moved by offset_ns. */
void ks_agent_set_reported_clock_offset(ks_agent *a, int64_t offset_ns);
/* The host-time fits this host publishes are moved by offset_ns, as if its CLOCK_REALTIME were
 * that far off. */
void ks_agent_host_set_reported_clock_offset(ks_agent_host *h, int64_t offset_ns);

#endif
