#!/usr/bin/env bash
# kinsync verify and the sync jacks (issue 15), on the simulator's faults:
#  - a cable in the wrong jack (Sync Out to Sync Out, fault wrong-jack): the jack check names it before
#    anything streams (error, JSON error, exit 1); the simulator's own reason names it too;
#  - jack detection unknown (fault jacks-unknown, what kinsync reports for Orbbec's K4A wrapper): the
#    device is noted (WARN), its cable is not checked at the jacks (SKIP with the reason, never PASS), the
#    run is judged from the frames (PASS with a good cable: result line, JSON, exit 0);
#  - unknown detection on both ends and the cable pulled: the jacks cannot see it, the frames do (exit 1,
#    the reason names the unplugged cable), the jack check never passed it.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
rig() { # name, faults (YAML flow items, one per line)
  cat >"$tmp/$1.yaml" <<YAML
rig: $1
devices:
  - {serial: "001500000001", name: front}
  - {serial: "001500000002", name: back}
cables:
  - {from: front, to: back, length_m: 2}
camera: {color_resolution: 720P, color_format: MJPG, depth_mode: NFOV_2X2BINNED, fps: 30}
exposure: {mode: manual, us: 8330, powerline: 60}
simulation:
  seed: 15
  usbfs_mb: 64
  render: {color: false, depth: false}
  faults:
$2
YAML
}
rig wrongjack "    - {kind: wrong-jack, cable: 0, at_ms: 0}"
rig unknown "    - {kind: jacks-unknown, device: back, at_ms: 0}"
rig unknown_pulled "    - {kind: jacks-unknown, device: front, at_ms: 0}
    - {kind: jacks-unknown, device: back, at_ms: 0}
    - {kind: unplug, cable: 0, at_ms: 0}"
V() { "$KINSYNC" verify --backend sim --fast --seconds 0.4 "$@"; }

# 1. Sync Out to Sync Out
V "$tmp/wrongjack.yaml" >"$tmp/wj" 2>&1; rc=$?
cat "$tmp/wj"
check "[ $rc -eq 1 ]"
check "grep -q \"error: the cable from front ends in the wrong jack of back: back reports a cable in its Sync Out (the rig declares none from it) and none in its Sync In (cable 1.*line 6 of the rig file). Sync Out to Sync Out carries no pulses.*move that end to back's Sync In, nothing was started\" '$tmp/wj'"
check "! grep -q '^PASS  jacks' '$tmp/wj'"
V --json "$tmp/wrongjack.yaml" >"$tmp/wj.json" 2>/dev/null; rc=$?
check "[ $rc -eq 1 ]"
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/wj.json\")); sys.exit(0 if d[\"passed\"] is False and d[\"error\"]==\"ESYNC\" and \"wrong jack of back\" in d[\"message\"] else 1)'"

# 2. jack detection unknown on one end, the cable good: SKIP with the reason, judged from the frames
V "$tmp/unknown.yaml" >"$tmp/u" 2>&1; rc=$?
grep -E "jacks|signal|start-order|result" "$tmp/u"
check "[ $rc -eq 0 ]"
check "grep -q '^WARN  jacks *back cannot report its sync jacks (its jack detection is unknown' '$tmp/u'"
check "grep -q '^SKIP  jacks *cable 1 (front -> back) not checked at the jacks: a device it joins cannot report its jacks' '$tmp/u'"
check "! grep -q '^PASS  jacks' '$tmp/u'"
check "! grep -q '^FAIL' '$tmp/u'"
check "grep -q '^result: PASS' '$tmp/u'"
V --json "$tmp/unknown.yaml" >"$tmp/u.json" 2>/dev/null; rc=$?
check "[ $rc -eq 0 ]"
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/u.json\")); j=[c for c in d[\"checks\"] if c[\"id\"]==\"jacks\"]; sys.exit(0 if d[\"passed\"] is True and sorted(c[\"status\"] for c in j)==[\"SKIP\",\"WARN\"] else 1)'"

# 3. unknown on both ends and the cable pulled: only the frames can tell, and they do
V "$tmp/unknown_pulled.yaml" >"$tmp/up" 2>&1; rc=$?
cat "$tmp/up"
check "[ $rc -eq 1 ]"
check "grep -q 'no frames from back.*the sync cable from 001500000001.s Sync Out to 001500000002.s Sync In is unplugged' '$tmp/up'"
check "! grep -q '^PASS  jacks' '$tmp/up'"
exit $fail
