#!/usr/bin/env bash
# kinsync board: draws the example board, reports JSON, refuses bad input with the right exit code.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
ex="$KS_SOURCE_DIR/examples/boards/aprilgrid-6x6.yaml"
"$KINSYNC" board "$ex" --svg "$tmp/b.svg" --png "$tmp/b.png" --dpi 40 >"$tmp/out" 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '6x6 tag36h11' '$tmp/out'"
check "[ -s '$tmp/b.svg' ] && [ -s '$tmp/b.png' ]"
check "grep -c '<!-- tag' '$tmp/b.svg' | grep -qx 36"
"$KINSYNC" board "$ex" --json >"$tmp/j"; check "grep -q '\"tags\": 36' '$tmp/j'"
printf 'rows: 3\ncolumns: 3\ntag_size: 0.05\nspacing: 0.1\n' >"$tmp/bad.yaml"
"$KINSYNC" board "$tmp/bad.yaml" 2>"$tmp/err"; rc=$?
check "[ $rc -eq 1 ]"; check "grep -q spacing '$tmp/err'"
"$KINSYNC" board --bogus 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" board "$tmp/missing.yaml" 2>/dev/null; check "[ $? -eq 2 ]"
"$KINSYNC" board --help | grep -q -- --svg; check "[ $? -eq 0 ]"
exit $fail
