#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for SECONDS (default 60) on
# its seed corpus in fuzz/corpus/NAME. Crashes are written to build-fuzz/crashes/.
# -max_len 256 KiB: hostile inputs are long (a YAML file of thousands of nested brackets, issue 20;
# the default, the largest seed or 4 KiB, keeps the fuzzers from reaching them).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
CC=clang cmake -S . -B build-fuzz -DKS_FUZZ=ON -DKS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(for f in fuzz/fuzz_*.c; do basename "$f" .c; done)
mkdir -p build-fuzz/crashes
for f in fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  work=build-fuzz/corpus-$name
  mkdir -p "$work"
  [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${SECONDS_EACH}s"
  ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz/"$name" -max_total_time="$SECONDS_EACH" -timeout=5 -max_len=262144 \
    -seed=1 -print_final_stats=0 -artifact_prefix=build-fuzz/crashes/"$name"- "$work" 2>&1 | tail -n 2
done
