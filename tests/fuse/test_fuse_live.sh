#!/usr/bin/env bash
# kinsync fuse on a live rig: the simulated 3-device chain runs through the session module and its
# frame sets are fused as they arrive (PLY per set, filled depth PNG, JSON summary); a device
# missing from the rig calibration is refused with exit 2. (Each device sees the room's far walls beyond
# NFOV unbinned's 3.86 m range, so ~60-80 k of its 368 k pixels have depth, as a real device would.)
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
rig="$KS_SOURCE_DIR/examples/rigs/chain-3.yaml"
python3 - "$tmp/rc.json" <<'PY'
import json, sys
devs = [{"serial": s, "depth_to_rig": {"R": [1, 0, 0, 0, 1, 0, 0, 0, 1], "t": [500.0 * i, 0, 0]},
         "color_to_rig": {"R": [1, 0, 0, 0, 1, 0, 0, 0, 1], "t": [500.0 * i, 0, 0]}}
        for i, s in enumerate(["000100000001", "000100000002", "000100000003"])]
json.dump({"format": "kinsync-rig-calibration", "version": 1, "devices": devs}, open(sys.argv[1], "w"))
PY
"$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$tmp/rc.json" --out "$tmp/out" --frames 2 \
  --fill 000100000001 --json >"$tmp/j"; rc=$?
check "[ $rc -eq 0 ]"
check "[ -s '$tmp/out/fused-000000.ply' ] && [ -s '$tmp/out/fused-000001.ply' ] && [ ! -e '$tmp/out/fused-000002.ply' ]"
check "[ -s '$tmp/out/filled-000100000001-000001.png' ]"
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/j\")); sys.exit(0 if d[\"frame_sets\"]==2 and len(d[\"devices\"])==3 and all(x[\"points_mean\"]>40000 for x in d[\"devices\"]) and d[\"voxels_mean\"]>100000 else 1)'"
check "! ls '$tmp'/out/*.tmp* 2>/dev/null"
python3 - "$tmp/rc.json" "$tmp/rc2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["devices"] = d["devices"][:2]; json.dump(d, open(sys.argv[2], "w"))
PY
"$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$tmp/rc2.json" --out "$tmp/out2" 2>"$tmp/e"; rc=$?
check "[ $rc -eq 2 ]"
check "grep -q '000100000003' '$tmp/e'"
# --format ply16: the same set in 16-bit coordinates (header comments give origin and step), about
# half the bytes of the float file
"$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$tmp/rc.json" --out "$tmp/out16" --frames 1 --format ply16 \
  --json >/dev/null; rc=$?
check "[ $rc -eq 0 ]"
check "grep -aq 'property short x' '$tmp/out16/fused-000000.ply' && grep -aq 'comment step_mm' '$tmp/out16/fused-000000.ply'"
check "[ \$(stat -c %s '$tmp/out16/fused-000000.ply') -lt \$(( \$(stat -c %s '$tmp/out/fused-000000.ply') * 6 / 10 )) ]"
"$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$tmp/rc.json" --out "$tmp/out5" --format ply32 2>"$tmp/e"
check "[ \$? -eq 2 ] && grep -q ply16 '$tmp/e'"
"$KINSYNC" fuse "$rig" "$rig" --calibration "$tmp/rc.json" --out "$tmp/out3" 2>/dev/null; check "[ \$? -eq 2 ]"
# the simulator's static views are cached beside the lens tables ($XDG_CACHE_HOME/kinsync,
# docs/simulator.md "View cache"): a cold and a warm run fuse the very bytes of the run above
for run in cold warm; do
  XDG_CACHE_HOME="$tmp/xdg" "$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$tmp/rc.json" \
    --out "$tmp/out-$run" --frames 1 >/dev/null; rc=$?
  check "[ $rc -eq 0 ] && cmp -s '$tmp/out/fused-000000.ply' '$tmp/out-$run/fused-000000.ply'"
  check "[ \$(ls '$tmp'/xdg/kinsync/simview-*.bin | wc -l) -eq 3 ]"
done
exit $fail
