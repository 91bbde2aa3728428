#!/usr/bin/env bash
# kinsync verify on the simulator checks the rig's interference groups against the geometry: two
# devices facing each other put in separate groups share laser light (FAIL naming both, and the
# zero-delay overlap the planner allowed is caught too); back to back in separate groups is right (PASS).
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
rig() { # name, front position, front look_at, back position, back look_at
  cat >"$tmp/$1.yaml" <<YAML
rig: $1
devices:
  - {serial: "001500000001", name: front, group: 0}
  - {serial: "001500000002", name: back, group: 1}
cables:
  - {from: front, to: back, length_m: 2}
camera: {color_resolution: 720P, color_format: MJPG, depth_mode: NFOV_2X2BINNED, fps: 30}
exposure: {mode: manual, us: 8330, powerline: 60}
simulation:
  seed: 15
  usbfs_mb: 32
  render: {color: false, depth: true}
  board: {present: false}
  devices:
    - {device: front, pose: {position: $2, look_at: $3}}
    - {device: back, pose: {position: $4, look_at: $5}}
YAML
}
# facing each other across the room, both looking at the floor between them
rig facing "[1800, 0, 1400]" "[0, 0, 300]" "[-1800, 0, 1400]" "[0, 0, 300]"
# back to back in the middle of the room, looking at opposite walls
rig backtoback "[100, 0, 1400]" "[3000, 0, 1100]" "[-100, 0, 1400]" "[-3000, 0, 1100]"
"$KINSYNC" verify --backend sim --fast --seconds 0.3 "$tmp/facing.yaml" >"$tmp/f" 2>&1; rc=$?
cat "$tmp/f" | grep -E "laser|result"
check "[ $rc -eq 1 ]"
check "grep -q '^FAIL  laser-groups.*front and back share laser light.*cannot be in separate groups' '$tmp/f'"
check "grep -q '^FAIL  laser-overlap.*front and back' '$tmp/f'"
"$KINSYNC" verify --backend sim --fast --seconds 0.3 "$tmp/backtoback.yaml" >"$tmp/b" 2>&1; rc=$?
cat "$tmp/b" | grep -E "laser|result"
check "[ $rc -eq 0 ]"
check "grep -q '^PASS  laser-groups' '$tmp/b'"
check "! grep -q 'share laser light' '$tmp/b'"
exit $fail
