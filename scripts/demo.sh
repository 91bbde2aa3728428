#!/usr/bin/env bash
# The demo: a simulated three-device rig (examples/rigs/demo-studio.yaml) planned, verified,
# recorded, calibrated and fused into one point cloud, end to end, without hardware.
# Everything it writes goes to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
echo "== building kinsync ($BUILD/)"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
K=$BUILD/kinsync
RIG=examples/rigs/demo-studio.yaml
BOARD=examples/boards/aprilgrid-6x6.yaml
OUT=out/demo
rm -rf "$OUT"
mkdir -p "$OUT"

echo
echo "== 1. plan: roles, delays that keep every laser apart, start order, recorder commands"
$K plan "$RIG" --svg "$OUT/timeline.svg"

echo
echo "== 2. verify: start the rig (subordinates first, master last) and prove the frames line up"
$K verify "$RIG" --fast --seconds 3 --report "$OUT/verify.html"

echo
echo "== the classic mistake, for contrast: the master started first (verify names it and fails)"
$K verify "$RIG" --fast --seconds 1 --start-master-first | grep -E '^FAIL|^result' || true

echo
echo "== 3. record: one Azure Kinect .mkv per device while the board is waved in front of the rig"
$K record "$RIG" --out "$OUT/recordings" --seconds 5
$K align "$OUT"/recordings/*.mkv | head -n 12 || true

echo
echo "== 4. calibrate: all devices at once from the recordings (AprilGrid board)"
$K board "$BOARD" --svg "$OUT/board.svg" >/dev/null
$K calibrate "$OUT"/recordings/*.mkv --board "$BOARD" -o "$OUT/rig-calibration.json"

echo
echo "== 5. fuse: the depth of all devices in one frame, one point cloud (binary PLY)"
$K fuse "$OUT"/recordings/*.mkv --calibration "$OUT/rig-calibration.json" --out "$OUT/fused" --color

echo
echo "== done. Look at:"
echo "   $OUT/timeline.svg           one frame period: color exposures and laser pulses of every device"
echo "   $OUT/verify.html            sync report with skew histograms"
echo "   $OUT/recordings/*.mkv       open in Azure Kinect Viewer, pyk4a, ffprobe, kinsync info"
echo "   $OUT/rig-calibration.json   every device's pose in the rig frame"
echo "   $OUT/fused/                 the fused point cloud (Open3D, MeshLab, CloudCompare)"
echo
echo "== see it live: the whole rig in the browser (devices, previews, checks, 3D cloud in the rig frame, record takes)"
echo "   $K view $RIG --calibration $OUT/rig-calibration.json"
