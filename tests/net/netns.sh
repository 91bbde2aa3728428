# tests/net/netns.sh: test hosts as network namespaces on this machine (sourced by tests).
#
# ks_netns_up N   makes hosts h0..h(N-1): namespaces "<prefix>-h<i>" each with one interface eth0
#                 (10.77.<run>.<i+1>/24) joined to a bridge in namespace "<prefix>-sw". Nothing is
#                 connected to any real interface; the addresses exist only inside these namespaces.
# ks_netns_exec I CMD...  runs CMD on host I
# ks_netns_down   removes everything (also run from an EXIT trap)
# ks_netns_usable returns 0 when namespaces can be made here (root, iproute2), else prints why.
KS_NETNS_PREFIX="ks$$"
KS_NETNS_COUNT=0
KS_NETNS_SUBNET=$(( $$ % 200 + 20 ))

ks_netns_usable() {
  if [ "$(id -u)" -ne 0 ]; then echo "network namespaces need root"; return 1; fi
  if ! command -v ip >/dev/null; then echo "iproute2 (ip) is not installed"; return 1; fi
  if ! ip netns add "${KS_NETNS_PREFIX}-probe" 2>/dev/null; then echo "cannot create a network namespace"; return 1; fi
  ip netns del "${KS_NETNS_PREFIX}-probe"
  return 0
}

ks_netns_up() {
  local n=$1 sw="${KS_NETNS_PREFIX}-sw" i
  KS_NETNS_COUNT=$n
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for ((i = 0; i < n; i++)); do
    local h="${KS_NETNS_PREFIX}-h$i"
    ip netns add "$h"
    ip link add "${KS_NETNS_PREFIX}v$i" type veth peer name eth0 netns "$h"
    ip link set "${KS_NETNS_PREFIX}v$i" netns "$sw"
    ip -n "$sw" link set "${KS_NETNS_PREFIX}v$i" master br0 up
    ip -n "$h" addr add "10.77.${KS_NETNS_SUBNET}.$((i + 1))/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
  done
}

ks_netns_addr() { echo "10.77.${KS_NETNS_SUBNET}.$(( $1 + 1 ))"; }

ks_netns_peers() {
  local i out=""
  for ((i = 0; i < KS_NETNS_COUNT; i++)); do out="${out:+$out,}$(ks_netns_addr $i)"; done
  echo "$out"
}

ks_netns_exec() {
  local i=$1; shift
  ip netns exec "${KS_NETNS_PREFIX}-h$i" "$@"
}

ks_netns_down() {
  local i
  for ((i = 0; i < KS_NETNS_COUNT; i++)); do ip netns del "${KS_NETNS_PREFIX}-h$i" 2>/dev/null || true; done
  ip netns del "${KS_NETNS_PREFIX}-sw" 2>/dev/null || true
  KS_NETNS_COUNT=0
}
