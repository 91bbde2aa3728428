#!/bin/bash
# kinsync devices with the libk4a test double (scripted through FAKE_K4A_SCRIPT) and without libk4a.
set -u
FAKE="$KS_BINARY_DIR/tests/libfake_k4a.so"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok   $1"; fi; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# No libk4a: friendly message naming the fix, exit 1.
out=$(KINSYNC_K4A_LIBRARY=/nonexistent/libk4a.so.1.4 "$KINSYNC" devices 2>&1); rc=$?
check "missing libk4a exits 1" '[ $rc -eq 1 ]'
check "missing libk4a says how to install" 'grep -q "install the Azure Kinect SDK" <<<"$out" && grep -q KINSYNC_K4A_LIBRARY <<<"$out"'

# libk4a present, no device: exit 1 with the checks to make.
out=$(KINSYNC_K4A_LIBRARY="$FAKE" FAKE_K4A_SCRIPT="" "$KINSYNC" devices 2>&1); rc=$?
check "no device exits 1" '[ $rc -eq 1 ]'
check "no device message" 'grep -q "No Azure Kinect device found" <<<"$out" && grep -q "lsusb -d 045e:097c" <<<"$out"'
json=$(KINSYNC_K4A_LIBRARY="$FAKE" FAKE_K4A_SCRIPT="" "$KINSYNC" devices --json)
check "no device json" '[ "$(jget "len(d[\"devices\"])" <<<"$json")" = 0 ] && [ "$(jget "\"message\" in d" <<<"$json")" = True ]'

# Three devices: serials, firmware, jacks; a busy one is listed with the reason.
export KINSYNC_K4A_LIBRARY="$FAKE"
export FAKE_K4A_SCRIPT="000001112912,1.6.110,1.6.79,1.6.14,6109.7.0,-o;000002112912,1.6.110,1.6.79,1.6.14,6109.7.0,i-;000003112912,1.6.108,1.6.79,1.6.14,6109.7.0,x;000004112912,1.6.110,1.6.79,1.6.14,6109.7.0,--,busy"
out=$("$KINSYNC" devices); rc=$?
check "devices exits 0" '[ $rc -eq 0 ]'
check "text lists serial and firmware" 'grep -E "^  0 +000001112912 .*1\.6\.110 +1\.6\.79 +1\.6\.14 +6109\.7\.0 +empty +cable" <<<"$out" >/dev/null'
check "text shows busy device" 'grep -q "cannot open: could not open Azure Kinect device 3" <<<"$out"'
json=$("$KINSYNC" devices --backend k4a --json)
check "json device count" '[ "$(jget "len(d[\"devices\"])" <<<"$json")" = 4 ]'
check "json serial" '[ "$(jget "d[\"devices\"][1][\"serial\"]" <<<"$json")" = 000002112912 ]'
check "json firmware" '[ "$(jget "d[\"devices\"][2][\"firmware\"][\"color\"]" <<<"$json")" = 1.6.108 ]'
check "json jacks in" '[ "$(jget "d[\"devices\"][1][\"jacks\"][\"sync_in\"]" <<<"$json")" = True ]'
check "json jacks unknown" '[ "$(jget "d[\"devices\"][2][\"jacks\"][\"supported\"]" <<<"$json")" = False ]'
check "json busy error" '[ "$(jget "\"busy\" in d[\"devices\"][3][\"error\"]" <<<"$json")" = True ]'

# With a rig: names and missing devices.
rig="$KS_SOURCE_DIR/tests/data/doctor/two-hosts.yaml"
json=$("$KINSYNC" devices --rig "$rig" --hostname hostA --json)
check "rig names devices" '[ "$(jget "d[\"devices\"][0][\"name\"]" <<<"$json")" = master ]'
check "rig device on another host is not missing" '[ "$(jget "d[\"rig_missing\"] == []" <<<"$json")" = True ]'
json=$(FAKE_K4A_SCRIPT="000001112912,1.6.110,1.6.79,1.6.14,6109.7.0,-o" "$KINSYNC" devices --rig "$rig" --hostname hostA --json)
check "rig missing device" '[ "$(jget "d[\"rig_missing\"] == [\"sub1 (000002112912)\"]" <<<"$json")" = True ]'

# The simulator: the rig's devices with their jacks as the cables make them.
unset KINSYNC_K4A_LIBRARY FAKE_K4A_SCRIPT
chain="$KS_SOURCE_DIR/examples/rigs/chain-3.yaml"
json=$("$KINSYNC" devices --backend sim --rig "$chain" --json); rc=$?
check "sim exits 0" '[ $rc -eq 0 ]'
check "sim backend" '[ "$(jget "d[\"backend\"]" <<<"$json")" = sim ]'
check "sim serials" '[ "$(jget "[x[\"serial\"] for x in d[\"devices\"]] == [\"000100000001\",\"000100000002\",\"000100000003\"]" <<<"$json")" = True ]'
check "sim jacks follow the chain" '[ "$(jget "[(x[\"jacks\"][\"sync_in\"], x[\"jacks\"][\"sync_out\"]) for x in d[\"devices\"]] == [(False,True),(True,True),(True,False)]" <<<"$json")" = True ]'
out=$(KINSYNC_K4A_LIBRARY=/nonexistent "$KINSYNC" devices --rig "$chain"); rc=$?
check "auto falls back to the simulator" '[ $rc -eq 0 ] && grep -q "libk4a not installed; showing the simulated devices" <<<"$out"'
out=$(KINSYNC_K4A_LIBRARY=/nonexistent "$KINSYNC" devices 2>&1)
check "no rig: hint at the simulator" 'grep -q "kinsync devices --rig RIG.yaml" <<<"$out"'
"$KINSYNC" devices --backend sim >/dev/null 2>&1; rc=$?
check "sim without rig exits 2" '[ $rc -eq 2 ]'

# Usage errors exit 2.
"$KINSYNC" devices --backend nope >/dev/null 2>&1; rc=$?
check "bad backend exits 2" '[ $rc -eq 2 ]'
"$KINSYNC" devices --rig /nonexistent.yaml >/dev/null 2>&1; rc=$?
check "unreadable rig exits 2" '[ $rc -eq 2 ]'
"$KINSYNC" devices --help | grep -q "Exit status"; rc=$?
check "help" '[ $rc -eq 0 ]'
exit $fail
