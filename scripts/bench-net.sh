#!/usr/bin/env bash
# Runs bench_net across two network namespaces joined by a veth pair (needs root): the coordinator
# in one, the agent in the other, so every command and chunk crosses a (virtual) link. Nothing
# touches a real interface.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/bench/bench_net
. tests/net/netns.sh
ks_netns_usable >/dev/null || { echo "bench-net: needs root and iproute2 (network namespaces)"; exit 1; }
trap ks_netns_down EXIT
ks_netns_up 2
echo "bench_net: coordinator in ${KS_NETNS_PREFIX}-h0 ($(ks_netns_addr 0)), agent in ${KS_NETNS_PREFIX}-h1 ($(ks_netns_addr 1))"
ks_netns_exec 0 "$B" eth0 "$(ks_netns_peers)" "${KS_NETNS_PREFIX}-h1"
