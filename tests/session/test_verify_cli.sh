#!/usr/bin/env bash
# kinsync verify and capture on the simulated 3-device chain: PASS with figures, JSON, the HTML
# report, the master-first mistake detected (exit 1), capture writing sets and index.json, usage errors.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
rig="$KS_SOURCE_DIR/tests/data/rigs/session-chain-3.yaml"
"$KINSYNC" verify --backend sim --fast --seconds 0.5 --report "$tmp/r.html" "$rig" >"$tmp/out" 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '^PASS  color-alignment' '$tmp/out'"
check "grep -q '^result: PASS' '$tmp/out'"
"$KINSYNC" verify --backend sim --fast --seconds 0.3 --json "$rig" >"$tmp/j"; rc=$?
check "[ $rc -eq 0 ]"
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/j\")); sys.exit(0 if d[\"passed\"] and d[\"schema\"]==\"kinsync.verify/1\" and len(d[\"devices\"])==3 else 1)'"
check "[ \$(grep -c '<svg' '$tmp/r.html') -ge 3 ]"
check "! ls '$tmp'/r.html.tmp.* 2>/dev/null"
"$KINSYNC" verify --backend sim --fast --seconds 0.3 --start-master-first "$rig" >"$tmp/w" 2>&1; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q '^FAIL  start-order.*master was started before' '$tmp/w'"
"$KINSYNC" capture --backend sim --fast "$rig" --frames 3 --out "$tmp/cap" >"$tmp/c" 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "[ -s '$tmp/cap/index.json' ] && [ -s '$tmp/cap/000002/master-color.jpg' ] && [ -s '$tmp/cap/000000/b-depth.png' ] && [ -s '$tmp/cap/b-calibration.json' ]"
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/cap/index.json\")); s=d[\"sets\"]; sys.exit(0 if len(s)==3 and s[0][\"complete\"] and \"host_ns\" in s[0][\"frames\"][\"a\"] else 1)'"
check "! ls '$tmp'/cap/*/*.tmp* '$tmp'/cap/*.tmp* 2>/dev/null"
"$KINSYNC" capture --backend sim --fast "$rig" --frames 3 --out "$tmp/cap" 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" capture --backend sim --fast --mkv "$rig" --frames 4 --out "$tmp/mkv" >"$tmp/m" 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "[ \$(ls '$tmp'/mkv/*.mkv | wc -l) -eq 3 ] && [ -s '$tmp/mkv/index.json' ] && ! ls '$tmp'/mkv/*.part 2>/dev/null"
check "! ls -d '$tmp'/mkv/0000* 2>/dev/null"   # no empty set directories beside the recordings
# its index names the recordings; calibrate DIR says the images are there, not in the directory
"$KINSYNC" calibrate --board "$KS_SOURCE_DIR/examples/boards/aprilgrid-6x6.yaml" -o "$tmp/o.json" "$tmp/mkv" 2>"$tmp/e"
check "[ $? -eq 2 ] && grep -q 'give the recordings (.mkv) instead' '$tmp/e' && [ ! -e '$tmp/o.json' ]"
"$KINSYNC" info "$tmp"/mkv/master-*.mkv >"$tmp/i" 2>&1; check "grep -q 'complete' '$tmp/i' && grep -q 'COLOR .* 4 frames' '$tmp/i'"
"$KINSYNC" capture "$rig" --out "$tmp/x" 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" verify --seconds -1 "$rig" 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" verify "$tmp/missing.yaml" 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" verify --bogus 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" verify --help | grep -q -- --report; check "[ $? -eq 0 ]"
"$KINSYNC" capture --help | grep -q -- --frames; check "[ $? -eq 0 ]"
exit $fail
