#!/usr/bin/env bash
# `kinsync view --distributed` over loopback only (interface lo, unicast peer 127.0.0.1, no
# multicast), as test_net_loopback does: three `kinsync agent`s (hosts h1..h3 of the three-host rig,
# simulated) and the view as their coordinator. The page's state lists every device on its host,
# streaming; every device's thumbnail, published by its agent over DDS, is fetched from the page
# as a JPEG; Stop from the page (with the token; refused without) stops every host and their
# recordings complete. Bad command lines exit 2.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_need curl python3
K=$KINSYNC
RIG="$KS_SOURCE_DIR/tests/data/net/three-hosts.yaml"
TOKEN=0123456789abcdef0123456789
W=$(mktemp -d /tmp/ks-view-dist.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; [ -n "${KS_KEEP:-}" ] || rm -rf "$W"' EXIT
head -c 32 /dev/urandom | base64 > "$W/secret"; chmod 600 "$W/secret"
NET=(--interface lo --peer 127.0.0.1)
DOMAIN=$(( $$ % 150 + 60 ))

# bad command lines
"$K" view --distributed --no-browser --secret-file "$W/secret" "$RIG" > /dev/null 2> "$W/err"; rc=$?
[ $rc -eq 2 ] && grep -q interface "$W/err" && ok "--distributed without --interface: exit 2, says so" || bad "no --interface: rc $rc: $(cat "$W/err")"
"$K" view --distributed --no-browser "${NET[@]}" --secret-file "$W/secret" "$RIG" "$RIG" > /dev/null 2> "$W/err"; rc=$?
[ $rc -eq 2 ] && ok "--distributed with two files: exit 2" || bad "two files: rc $rc"

for h in 1 2 3; do
  "$K" agent "$RIG" --host "h$h" "${NET[@]}" --domain "$DOMAIN" --secret-file "$W/secret" --out "$W/agent-h$h" \
    --for 240 > "$W/agent-h$h.log" 2>&1 &
  pids+=($!)
done
"$K" view "$RIG" --distributed "${NET[@]}" --domain "$DOMAIN" --secret-file "$W/secret" --no-browser --port 0 \
  --token $TOKEN --seconds 200 > "$W/view.out" 2> "$W/view.err" &
VIEW=$!
pids+=($VIEW)
PORT=
for _ in $(seq 200); do
  PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "$W/view.out" 2>/dev/null | head -1 | cut -d: -f2)
  [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL the view did not print its address: $(cat "$W/view.err")"; exit 1; }
U=http://127.0.0.1:$PORT

# wait (generously: sanitizers, a loaded machine) until every device streams and has a thumbnail
state_ok() {
  curl -s --max-time 10 "$U/api/state" > "$W/state.json" || return 1
  python3 - "$W/state.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ds = j["devices"]
sys.exit(0 if j.get("distributed") and j["run"]["state"] == "running" and len(ds) == 3 and
         all(d["state"] == "streaming" and d["thumbnails"] >= 1 for d in ds) else 1)
PY
}
up=0
for _ in $(seq 240); do
  if state_ok; then up=1; break; fi
  kill -0 $VIEW 2>/dev/null || break
  sleep 0.5
done
if [ $up -eq 1 ]; then ok "every device streams with a thumbnail"; else
  bad "not every device streamed with a thumbnail: $(cat "$W/state.json"; tail -5 "$W/view.err")"; fi
python3 - "$W/state.json" <<'PY' && ok "every device on the host the rig names, colour previews only" || fail=1
import json, sys
j = json.load(open(sys.argv[1]))
want = {"front": "h1", "left": "h2", "right": "h3"}
got = {d["name"]: d["host"] for d in j["devices"]}
if got != want:
    print("FAIL hosts", got); sys.exit(1)
if j.get("preview_kinds") != ["color"] or "record" in j.get("controls", []):
    print("FAIL preview kinds / controls", j.get("preview_kinds"), j.get("controls")); sys.exit(1)
PY

# every device's thumbnail, from the page
for i in 0 1 2; do
  code=$(curl -s -o "$W/thumb$i.jpg" -w '%{http_code}' --max-time 10 "$U/api/preview/$i/color.jpg")
  if [ "$code" = 200 ] && python3 - "$W/thumb$i.jpg" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
if not (b[:2] == b"\xff\xd8" and b[-2:] == b"\xff\xd9"):
    sys.exit(1)
# the frame header (SOF0..SOF2): a picture of a few dozen pixels or more
i = 2
while i + 9 < len(b):
    if b[i] != 0xFF: sys.exit(1)
    m, n = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        h, w = struct.unpack(">HH", b[i + 5:i + 9])
        print("thumbnail %dx%d, %d bytes" % (w, h, len(b)))
        sys.exit(0 if w >= 32 and h >= 18 else 1)
    i += 2 + n
sys.exit(1)
PY
  then ok "device $i: its agent's thumbnail is served as a JPEG"; else bad "device $i thumbnail: HTTP $code"; fi
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/api/preview/0/depth.jpg")
[ "$code" = 404 ] && ok "no depth preview over agents (404)" || bad "depth preview over agents: $code"
# the thumbnails keep coming (about one a second per device)
n0=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['view']['previews'])" "$W/state.json")
more=0
for _ in $(seq 60); do
  curl -s --max-time 10 "$U/api/state" > "$W/state2.json"
  n1=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['view']['previews'])" "$W/state2.json" 2>/dev/null || echo 0)
  [ "$n1" -gt "$n0" ] && { more=1; break; }
  sleep 0.5
done
[ $more -eq 1 ] && ok "new thumbnails keep arriving ($n0 -> $n1)" || bad "no new thumbnail after $n0"

# Stop from the page
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/api/control/stop")
[ "$code" = 403 ] && ok "stop without the token refused" || bad "stop without the token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Kinsync-Token: $TOKEN" "$U/api/control/stop")
[ "$code" = 202 ] && ok "stop with the token accepted" || bad "stop with the token: $code"
stopped=0
for _ in $(seq 120); do
  curl -s --max-time 10 "$U/api/state" > "$W/state3.json"
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j['run']['state']=='stopped' and all(d['state']=='stopped' for d in j['devices']) else 1)" "$W/state3.json" 2>/dev/null && { stopped=1; break; }
  sleep 0.5
done
[ $stopped -eq 1 ] && ok "the page shows the rig stopped on every host" || bad "not stopped: $(cat "$W/state3.json")"
for h in 1 2 3; do
  f=$(ls "$W/agent-h$h"/*.mkv 2>/dev/null | head -1)
  if [ -n "$f" ] && "$K" info "$f" > /dev/null 2>&1; then ok "h$h's recording completed"; else bad "h$h has no complete recording"; fi
done
kill -INT $VIEW; wait $VIEW; rc=$?
[ $rc -eq 0 ] && ok "Ctrl-C: exit 0" || bad "view exit $rc: $(tail -3 "$W/view.err")"
exit $fail
