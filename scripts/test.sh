#!/usr/bin/env bash
# Builds kinsync three times and runs every test in each: a plain -Werror build (build/), an
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/) and a ThreadSanitizer build
# (build-tsan/; any data race fails the test that shows it); then each fuzz target for a short
# bounded time (FUZZ_SECONDS, default 10). Deterministic: every test is seeded.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}

echo "== build (warnings are errors)"
cmake -S . -B build -DKS_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== build with ASan + UBSan"
cmake -S . -B build-asan -DKS_WERROR=ON -DKS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$JOBS"
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"

echo "== build with ThreadSanitizer"
cmake -S . -B build-tsan -DKS_WERROR=ON -DKS_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan -j"$JOBS"
echo "== tests under ThreadSanitizer"
# scripts/tsan.supp: only races inside libraries we do not build (Cyclone DDS), which TSan cannot see
# synchronise. A report fails the test (exit code 66). Tests labelled tsan_slow (tests/CMakeLists.txt
# says which and why) are left out: they run the simulator in real time and miss its deadlines there.
TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp:halt_on_error=1:second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure -j"$JOBS" -LE tsan_slow

if ls fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== fuzz targets, ${FUZZ_SECONDS}s each"
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi
