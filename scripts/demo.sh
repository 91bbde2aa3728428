#!/usr/bin/env bash
# The demo: builds kinsync and runs the main job on a demo rig with the simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
K=build/kinsync
mkdir -p out/demo
echo "== kinsync version"
$K version
echo "== kinsync plan examples/rigs/chain-3.yaml (timeline picture: out/demo/chain-3.svg)"
$K plan --svg out/demo/chain-3.svg examples/rigs/chain-3.yaml
echo "== kinsync verify examples/rigs/simulated-studio.yaml (report: out/demo/verify.html)"
$K verify --fast --seconds 3 --report out/demo/verify.html examples/rigs/simulated-studio.yaml
echo "== the classic mistake: the master started first (verify names it and exits 1)"
$K verify --fast --seconds 1 --start-master-first examples/rigs/simulated-studio.yaml | grep -E '^FAIL|^result' || true
