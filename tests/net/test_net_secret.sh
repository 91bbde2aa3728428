#!/usr/bin/env bash
# Multi-host on loopback (issue 20): a coordinator whose secret differs from its agent's is told
# that the secret may differ (not only "is its agent running?"), while the agent logs "bad
# signature" for every command; an agent given a secret file other users can read warns about it.
# One agent (two simulated devices, images not rendered) and one coordinator, both on lo, in a DDS
# domain of their own; everything ends by itself (agent --for, coordinator deadlines).
set -uo pipefail
. "$(dirname "$0")/../support/lib.sh"
T=$(mktemp -d)
apid=
trap '[ -n "$apid" ] && kill "$apid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
dom=$((120 + $$ % 100)) # apart from parallel runs and the other net tests
cat > "$T/rig.yaml" <<'YAML'
rig: secret-test
devices:
  - serial: "000100000001"
    name: master
    host: studio
  - serial: "000100000002"
    name: sub
    host: studio
chain: {devices: [master, sub], length_m: 1}
camera: {color_resolution: 720P, color_format: MJPG, depth_mode: NFOV_UNBINNED, fps: 30}
simulation: {render: {color: false, depth: false}}
YAML
head -c 32 /dev/urandom | base64 > "$T/agent.secret"
chmod 644 "$T/agent.secret"
head -c 32 /dev/urandom | base64 > "$T/other.secret"
chmod 600 "$T/other.secret"
net=(--interface lo --peer 127.0.0.1 --domain "$dom")

"$KINSYNC" agent "$T/rig.yaml" --host studio "${net[@]}" --secret-file "$T/agent.secret" --backend sim \
  -o "$T/agent" --for 90 >"$T/agent.out" 2>"$T/agent.err" &
apid=$!
# the agent warns as it reads its secret (before it joins the network)
for _ in $(seq 100); do grep -q "secret file" "$T/agent.err" && break; sleep 0.1; done
grep -q "can be read by other users (mode 0644).*chmod 600" "$T/agent.err" && ok "agent: world-readable secret warned about" \
  || bad "agent: no warning for a secret file of mode 644: $(cat "$T/agent.err")"

# a coordinator with another secret: discovery works (state is public), every command is refused
timeout 120 "$KINSYNC" record "$T/rig.yaml" --distributed "${net[@]}" --secret-file "$T/other.secret" \
  --out "$T/takes" --seconds 1 >"$T/coord.out" 2>"$T/coord.err"
rc=$?
[ "$rc" = 1 ] && ok "coordinator: exit 1" || bad "coordinator: exit $rc, expected 1 ($(cat "$T/coord.err"))"
grep -q "same --secret-file" "$T/coord.err" && ok "coordinator: says the secret may differ" \
  || bad "coordinator: the message does not name the secret: $(cat "$T/coord.err")"
grep -q "can be read by other users" "$T/coord.err" && bad "coordinator: warned about its mode 600 secret" \
  || ok "coordinator: no warning for a mode 600 secret"
grep -q "bad signature" "$T/agent.err" && ok "agent: logged bad signature" \
  || bad "agent: no 'bad signature' in its log: $(cat "$T/agent.err")"
kill "$apid" 2>/dev/null
wait "$apid" 2>/dev/null
apid=
exit $fail
