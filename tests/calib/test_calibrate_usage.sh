#!/usr/bin/env bash
# kinsync calibrate: help, usage errors (exit 2) and the messages for inputs it cannot read.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
trap 'rm -rf "$tmp" "$tmp.rec"' EXIT
board="$KS_SOURCE_DIR/examples/boards/aprilgrid-6x6.yaml"
"$KINSYNC" calibrate --help >"$tmp/h"; check "[ $? -eq 0 ]"
check "grep -q -- '--board' '$tmp/h' && grep -q 'RECORDING.mkv' '$tmp/h'"
"$KINSYNC" calibrate "$tmp" 2>/dev/null; check "[ $? -eq 2 ]"                    # no --board
"$KINSYNC" calibrate --board "$board" 2>/dev/null; check "[ $? -eq 2 ]"          # no input
"$KINSYNC" calibrate --board "$board" --loss l2 "$tmp" 2>/dev/null; check "[ $? -eq 2 ]"
# a live rig whose simulation has no AprilGrid on its board: recorded, then no board found (exit 1)
"$KINSYNC" calibrate --board "$board" --seconds 0.5 --recordings "$tmp.rec" -o "$tmp.rec/live.json" \
  "$KS_SOURCE_DIR/examples/rigs/chain-3.yaml" 2>"$tmp/e"; check "[ $? -eq 1 ]"
check "grep -q 'found in no image' '$tmp/e'"
check "[ ! -e '$tmp.rec/live.json' ]"
"$KINSYNC" calibrate --board "$board" "$tmp/missing-rig.yaml" 2>/dev/null; check "[ $? -eq 2 ]"
# frame-set directories (docs/frameset-dir.md): no manifest, a foreign one, a damaged one, a
# manifest whose image is missing: each named, exit 2, nothing written
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp" 2>"$tmp/e"; check "[ $? -eq 2 ]"    # no index.json
check "grep -q 'has no index.json, so it is not a frame-set directory' '$tmp/e' && grep -q 'kinsync capture' '$tmp/e'"
echo '{"schema": "kinsync.capture/1", "devices": [], "sets": []}' > "$tmp/index.json"
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp" 2>"$tmp/e"; check "[ $? -eq 2 ]"    # foreign schema
check "grep -q 'schema is \"kinsync.capture/1\", not \"kinsync.framesets/1\"' '$tmp/e'"
echo '{"schema": "kinsync.framesets/1", "devices": [' > "$tmp/index.json"
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp" 2>"$tmp/e"; check "[ $? -eq 2 ]"    # truncated
check "grep -q 'index.json: not valid JSON' '$tmp/e'"
cat > "$tmp/index.json" <<'EOF'
{"schema": "kinsync.framesets/1", "timestamp_convention": "seed",
 "devices": [{"name": "a", "serial": "1", "color_resolution": "720P", "color_format": "MJPG", "depth_mode": "OFF", "fps": 30, "calibration": "a-calibration.json"},
             {"name": "b", "serial": "2", "color_resolution": "720P", "color_format": "MJPG", "depth_mode": "OFF", "fps": 30, "calibration": "b-calibration.json"}],
 "sets": [{"index": 0, "key_us": 0, "complete": true, "frames": {"a": {"color": {"file": "000000/a-color.jpg", "format": "MJPG", "width": 1280, "height": 720}}}}]}
EOF
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp" 2>"$tmp/e"; check "[ $? -eq 2 ]"    # calibration missing
check "grep -q \"device a's calibration\" '$tmp/e'"
cp "$KS_FIXTURES/k4a/real-device-calibration.json" "$tmp/a-calibration.json"
cp "$KS_FIXTURES/k4a/real-device-calibration.json" "$tmp/b-calibration.json"
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp" 2>"$tmp/e"; check "[ $? -eq 2 ]"    # image missing
check "grep -q '000000/a-color.jpg' '$tmp/e'"
check "[ ! -e '$tmp/o.json' ]"
rm -f "$tmp"/index.json "$tmp"/*-calibration.json
# one recording: nothing to place a device against; said before any work, never a nan
"$KINSYNC" calibrate --board "$board" "$KS_FIXTURES/k4a/real-recording-nfov-720p.mkv" -o "$tmp/o.json" >"$tmp/out" 2>"$tmp/e"
rc=$?
check "[ $rc -eq 2 ]"; check "grep -q 'is one recording: a rig calibration places two or more devices' '$tmp/e'"
check "! grep -qi nan '$tmp/out' '$tmp/e'"; check "[ ! -e '$tmp/o.json' ]"
# recordings of two different rigs (the subordinate of another take): named as such, as align does,
# not paired until "the board was found in none" of one rig's frames
sed -e 's/^rig: chain-3/rig: other-rig/' "$KS_SOURCE_DIR/examples/rigs/chain-3.yaml" > "$tmp/other.yaml"
printf 'simulation:\n  usbfs_mb: 64\n  render: {color: false, depth: false}\n' >> "$tmp/other.yaml"
sed -i '/^simulation: {usbfs_mb: 64}$/d' "$tmp/other.yaml"
"$KINSYNC" record "$tmp/other.yaml" --out "$tmp/other" --frames 3 >/dev/null 2>&1; check "[ $? -eq 0 ]"
"$KINSYNC" calibrate --board "$board" -o "$tmp/o.json" "$tmp.rec/master-000100000001.mkv" \
  "$tmp.rec/sub1-000100000002.mkv" "$tmp/other/sub2-000100000003.mkv" >"$tmp/out" 2>"$tmp/e"
rc=$?
check "[ $rc -eq 2 ]"; check "grep -q \"by rig 'other-rig' but .* by rig 'chain-3': the recordings come from different rigs\" '$tmp/e'"
check "! grep -q 'board was found' '$tmp/e'"; check "[ ! -e '$tmp/o.json' ]"
exit $fail
