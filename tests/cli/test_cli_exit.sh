#!/usr/bin/env bash
# Exit status scripts can trust (docs/cli.md, issue 20): 0 ok, 1 failure, 2 usage error or
# unreadable input -- one rule (ks_cli_exit_status in src/cli/main.c), one case per command here.
# Read-only outputs are paths under /proc (not writable even by root).
set -uo pipefail
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir T
expect_rc() { # name expected-rc command...
  local name=$1 want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name (exit $rc)"; else bad "$name: exit $rc, expected $want"; cat "$T/err"; fi
}
rec="$KS_SOURCE_DIR/tests/data/k4a/real-recording-nfov-720p.mkv"
board="$KS_SOURCE_DIR/examples/boards/aprilgrid-6x6.yaml"
rig="$KS_SOURCE_DIR/examples/rigs/chain-3.yaml"
mkdir -p "$T/dir"
printf 'this: [is not, a board\n' > "$T/garbage.yaml"
: > "$T/empty.yaml"

# reading inputs: a directory, garbage, an empty file are unreadable input -> 2
expect_rc "info DIR" 2 "$KINSYNC" info "$T/dir"
expect_rc "repair DIR" 2 "$KINSYNC" repair "$T/dir"
expect_rc "info missing file" 2 "$KINSYNC" info "$T/nope.mkv"
expect_rc "board empty.yaml" 2 "$KINSYNC" board "$T/empty.yaml"
expect_rc "board garbage.yaml" 2 "$KINSYNC" board "$T/garbage.yaml"
expect_rc "calibrate --board garbage.yaml" 2 "$KINSYNC" calibrate "$rec" --board "$T/garbage.yaml" -o "$T/rc.json"
# a damaged recording is an answer about the file -> 1 (a header without a cluster: nothing to repair)
head -c 4000 "$rec" > "$T/cut.mkv.part"
expect_rc "repair of a file without clusters" 1 "$KINSYNC" repair "$T/cut.mkv.part"
[ -e "$T/cut.mkv" ] && bad "repair wrote a file without clusters" || ok "no file written"
# outputs that cannot be written -> 1 (docs/fuse.md, docs/board.md)
expect_rc "board --svg onto /proc" 1 "$KINSYNC" board "$board" --svg /proc/kinsync-test.svg
python3 - "$T/rc.json" <<'PY'
import json, sys
devs = [{"serial": s, "depth_to_rig": {"R": [1, 0, 0, 0, 1, 0, 0, 0, 1], "t": [500.0 * i, 0, 0]},
         "color_to_rig": {"R": [1, 0, 0, 0, 1, 0, 0, 0, 1], "t": [500.0 * i, 0, 0]}}
        for i, s in enumerate(["000100000001", "000100000002", "000100000003"])]
json.dump({"format": "kinsync-rig-calibration", "version": 1, "devices": devs}, open(sys.argv[1], "w"))
PY
expect_rc "fuse --out onto /proc" 1 "$KINSYNC" fuse "$rig" --backend sim --fast --calibration "$T/rc.json" \
  --out /proc/kinsync-test-out --frames 1
# capture --out FILE: refused before the rig runs (usage, 2), not after 3 s of capture
: > "$T/afile"
expect_rc "capture --out FILE" 2 "$KINSYNC" capture "$rig" --backend sim --fast --frames 1 --out "$T/afile"
grep -q "not a directory" "$T/err" && ok "capture names --out as not a directory" || bad "capture: $(cat "$T/err")"
grep -q "free space" "$T/err" && bad "capture ran the rig first" || ok "capture did not run the rig"
# verify --report that cannot be written: an error printed must not exit 0
expect_rc "verify --report onto /proc" 1 "$KINSYNC" verify "$rig" --backend sim --fast --seconds 1 \
  --report /proc/kinsync-test-r.html
grep -q "error" "$T/err" && ok "verify names the report error" || bad "verify: no error printed"

# multi-host: a secret file others can read is warned about; a private one is not
head -c 32 /dev/urandom | base64 > "$T/secret"
chmod 644 "$T/secret"
"$KINSYNC" record "$rig" --distributed --secret-file "$T/secret" --out "$T/d" --seconds 1 >/dev/null 2>"$T/err"
grep -q "can be read by other users.*chmod 600" "$T/err" && ok "world-readable secret warned about" \
  || bad "no warning for a world-readable secret: $(cat "$T/err")"
chmod 600 "$T/secret"
"$KINSYNC" record "$rig" --distributed --secret-file "$T/secret" --out "$T/d" --seconds 1 >/dev/null 2>"$T/err"
grep -q "can be read by other users" "$T/err" && bad "warning for a private secret" || ok "no warning for mode 600"
exit $fail
