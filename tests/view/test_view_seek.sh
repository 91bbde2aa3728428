#!/usr/bin/env bash
# The time slider of `kinsync view FILE.mkv...` through its HTTP API: the state of a view over
# recordings carries their duration and the seek control; POST /api/control/seek?t=S (with the
# token) moves every recording to S seconds and pauses at the first complete frame set there: the
# state reports that set's time (at or a few frames after S, under a second: the recordings' first
# complete set lies 0.13 s in, and frames are lost while a loaded machine starts the session), its
# previews and cloud are served, the checks are computed; seeking backwards works too. Bad seeks
# are 400, a seek without the token 403.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_need curl python3
K=$KINSYNC
RIG="$KS_SOURCE_DIR/examples/rigs/demo-studio.yaml"
TOKEN=0123456789abcdef0123456789
W=$(mktemp -d /tmp/ks-view-seek.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; [ -n "${KS_KEEP:-}" ] || rm -rf "$W"' EXIT
"$K" record "$RIG" --out "$W/rec" --seconds 3 > "$W/rec.log" 2>&1 || { echo "FAIL recording the demo rig: $(tail -3 "$W/rec.log")"; exit 1; }
# a generous first-frame bound: every seek starts the session again, on a loaded machine under sanitizers
"$K" view "$W"/rec/*.mkv --no-browser --no-start --port 0 --token $TOKEN --timeout-ms 60000 > "$W/view.out" 2> "$W/view.err" &
VIEW=$!
pids+=($VIEW)
PORT=
for _ in $(seq 200); do
  PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "$W/view.out" 2>/dev/null | head -1 | cut -d: -f2)
  [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL the view did not print its address: $(cat "$W/view.err")"; exit 1; }
U=http://127.0.0.1:$PORT
post() { curl -s -o "$W/body" -w '%{http_code}' --max-time 10 -X POST "$@"; }

curl -s --max-time 10 "$U/api/state" > "$W/s0.json"
python3 - "$W/s0.json" <<'PY' && ok "over recordings: duration and the seek control" || fail=1
import json, sys
j = json.load(open(sys.argv[1]))
if not (j["playback"] and 2.5 <= j["duration_s"] <= 3.5 and "seek" in j["controls"] and j["position_s"] is None):
    print("FAIL state:", j["playback"], j.get("duration_s"), j.get("controls"), j.get("position_s")); sys.exit(1)
PY
code=$(post "$U/api/control/seek?t=1")
[ "$code" = 403 ] && ok "seek without the token refused" || bad "seek without the token: $code"
for q in "t=-1" "t=abc" "t=" "" "t=1e9"; do
  code=$(post -H "X-Kinsync-Token: $TOKEN" "$U/api/control/seek?$q")
  [ "$code" = 400 ] && ok "seek?$q: 400" || bad "seek?$q: $code, want 400"
done

# seek_to T: waits (generously) for the view to pause there; prints the state to $W/s.json
seek_to() {
  local t=$1 before=$2
  code=$(post -H "X-Kinsync-Token: $TOKEN" "$U/api/control/seek?t=$t")
  [ "$code" = 202 ] || { bad "seek to $t: $code"; return 1; }
  local end=$((SECONDS + 150)) r
  while [ $SECONDS -lt $end ]; do
    curl -s --max-time 10 "$U/api/state" > "$W/s.json"
    python3 - "$W/s.json" "$before" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
if j["run"]["state"] == "failed":
    sys.exit(2)
sys.exit(0 if j["run"]["state"] == "paused" and j["position_s"] is not None and j["view"]["previews"] > int(sys.argv[2]) else 1)
PY
    r=$?
    [ $r -eq 0 ] && return 0
    [ $r -eq 2 ] && break
    sleep 0.5
  done
  bad "seek to $t: never paused with a new preview: $(cat "$W/s.json")"; return 1
}
check_at() { # T: the paused frame set is at T (the frame nearest it: 33 ms before at 15 fps, or up to 1 s after it: the frames lost while a loaded machine starts
            # the session again; a seek that did nothing pauses at 0.13 s), previews and checks there
  python3 - "$W/s.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); t = float(sys.argv[2])
p = j["position_s"]
ok = t - 0.04 <= p <= t + 1.0
print("%s  seek %.2f s: paused at %.3f s, %d previews, %d checks" % ("ok  " if ok else "FAIL", t, p, j["view"]["previews"],
      len((j.get("verify") or {}).get("checks", []))))
sys.exit(0 if ok and j.get("verify") and j["verify"]["checks"] else 1)
PY
}
seek_to 1.5 0 && { check_at 1.5 || fail=1; }
n1=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['view']['previews'])" "$W/s.json")
for d in 0 1 2; do
  code=$(curl -s -o "$W/p$d.jpg" -w '%{http_code}' "$U/api/preview/$d/color.jpg")
  [ "$code" = 200 ] && [ "$(head -c 2 "$W/p$d.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ] && ok "device $d's colour preview at 1.5 s" || bad "preview $d: $code"
done
code=$(curl -s -o "$W/cloud.bin" -w '%{http_code}' "$U/api/cloud.bin")
[ "$code" = 200 ] && [ "$(head -c 4 "$W/cloud.bin")" = KSPC ] && ok "the cloud at 1.5 s" || bad "cloud: $code"
seek_to 0.5 "$n1" && { check_at 0.5 || fail=1; }
seek_to 2.4 "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['view']['previews'])" "$W/s.json")" && { check_at 2.4 || fail=1; }
kill -INT $VIEW; wait $VIEW; rc=$?
[ $rc -eq 0 ] && ok "Ctrl-C: exit 0" || bad "view exit $rc: $(tail -3 "$W/view.err")"
exit $fail
