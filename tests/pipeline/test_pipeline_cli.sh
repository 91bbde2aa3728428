#!/usr/bin/env bash
# Recordings take the same path as live rigs, at the command line:
#  - `kinsync verify FILE.mkv...` gives the PASS/FAIL of the live run that wrote them (capture --mkv
#    reports the sync checks of its own run), for a good rig and for one whose simulation drops frames;
#  - on recordings of the demo rig, `calibrate` runs its depth cross-check (depth_plane_points > 0
#    for every device) and `fuse --color` writes a coloured cloud (many distinct colours, hardly any
#    of the uncoloured grey 128,128,128);
#  - the frame-set directories `capture` and `align --export` write from those recordings calibrate
#    (`calibrate DIR`) exactly as the recordings do.
set -u
. "$(dirname "$0")/../support/lib.sh"
K=$KINSYNC; SRC=$KS_SOURCE_DIR
ks_tmpdir W /tmp/ks-pipecli.XXXXXX
cd "$W"
rig="$SRC/tests/data/rigs/session-chain-3.yaml"
sed 's/^  render: {color: false, depth: false}$/  render: {color: false, depth: false}\n  faults:\n    - {kind: drop, device: a, at_ms: 300, count: 60}/' \
  "$rig" > drops.yaml
check "grep -q 'kind: drop' drops.yaml"
for r in good drops; do
  src=$rig; [ $r = drops ] && src=drops.yaml
  "$K" capture --backend sim --fast --mkv "$src" --frames 40 --out "cap-$r" --json > "cap-$r.json" 2>/dev/null
  live=$(python3 -c 'import json,sys; print("PASS" if json.load(open(sys.argv[1]))["sync_passed"] else "FAIL")' "cap-$r.json")
  "$K" verify "cap-$r"/*.mkv --json > "ver-$r.json" 2>/dev/null; rc=$?
  rec=$(python3 -c 'import json,sys; print("PASS" if json.load(open(sys.argv[1]))["passed"] else "FAIL")' "ver-$r.json")
  echo "$r: live run $live, verify over its recordings $rec (exit $rc)"
  check "[ '$live' = '$rec' ]"
  want=PASS; [ $r = drops ] && want=FAIL
  check "[ '$rec' = '$want' ]"
  check "[ $rc -eq \$([ $want = PASS ] && echo 0 || echo 1) ]"
done
# capture takes recordings too: the take's sets; a take shorter than --frames ends it without error
"$K" capture cap-good/*.mkv --frames 5 --out recap > recap.txt 2>&1; rc=$?
check "[ $rc -eq 0 ] && [ -s recap/index.json ] && [ \$(ls -d recap/0000* | wc -l) -eq 5 ]"
"$K" capture cap-good/*.mkv --frames 1000 --out recap-all --json > recap-all.json 2>/dev/null; rc=$?
check "[ $rc -eq 0 ] && python3 -c 'import json,sys; d=json.load(open(\"recap-all.json\")); sys.exit(0 if 35 <= d[\"sets\"] <= 41 else 1)'"
# the demo rig, recorded
"$K" record "$SRC/examples/rigs/demo-studio.yaml" --out rec --seconds 1.5 > /dev/null 2>&1
check "[ \$(ls rec/*.mkv | wc -l) -eq 3 ]"
"$K" calibrate rec/*.mkv --board "$SRC/examples/boards/aprilgrid-6x6.yaml" -o cal.json --json > calib.json 2> calib.err
check "[ $? -eq 0 ]"
check "python3 -c 'import json,sys; d=json.load(open(\"calib.json\"))[\"devices\"]; print([x[\"depth_plane_points\"] for x in d]); sys.exit(0 if len(d)==3 and all(x[\"depth_plane_points\"]>1000 and abs(x[\"depth_plane_mean_mm\"])<5 for x in d) else 1)'"
# one frame-set directory format: `capture` of the take and `align --export` of it, each given to
# `calibrate DIR`, calibrate exactly as the recordings do (same report, same poses), depth
# cross-check included
"$K" capture rec/*.mkv --frames 100000 --out fs-cap > /dev/null 2>&1
check "[ $? -eq 0 ] && [ -s fs-cap/index.json ]"
"$K" align rec/*.mkv --export fs-align > /dev/null 2>&1
check "[ $? -eq 0 ] && [ -s fs-align/index.json ]"
for d in fs-cap fs-align; do
  "$K" calibrate $d --board "$SRC/examples/boards/aprilgrid-6x6.yaml" -o cal-$d.json --json > calib-$d.json 2> calib-$d.err
  check "[ $? -eq 0 ]"
  python3 - calib.json calib-$d.json cal.json cal-$d.json <<'PY' || fail=1
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a.pop("output"); b.pop("output")
ca, cb = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
same = a == b and [d.get("depth_to_rig") for d in ca["devices"]] == [d.get("depth_to_rig") for d in cb["devices"]]
print("%s: %s (depth points %s)" % (sys.argv[2], "same as over the recordings" if same else "DIFFERS from the recordings",
                                     [x["depth_plane_points"] for x in b["devices"]]))
sys.exit(0 if same and all(x["depth_plane_points"] > 1000 for x in b["devices"]) else 1)
PY
done
"$K" fuse rec/*.mkv --calibration cal.json --out fused --color --voxel 10 --json > fuse.json 2> fuse.err
check "[ $? -eq 0 ]"
python3 - fused/fused-000000.ply <<'PY' || fail=1
import sys
f = open(sys.argv[1], 'rb')
n = 0
while True:
    l = f.readline()
    if l.startswith(b'element vertex'):
        n = int(l.split()[2])
    if l.startswith(b'end_header') or not l:
        break
data = f.read()
cols, grey = set(), 0
for i in range(0, n * 15, 15):
    c = data[i + 12:i + 15]
    cols.add(bytes(c))
    grey += c == b'\x80\x80\x80'
print("fused cloud: %d points, %d distinct colours, %d uncoloured grey" % (n, len(cols), grey))
ok = n > 10000 and len(cols) >= 1000 and grey < n * 0.05
print("ok: the cloud is coloured" if ok else "FAIL: the cloud is not coloured")
sys.exit(0 if ok else 1)
PY
echo "test_pipeline_cli: fail=$fail"
exit $fail
