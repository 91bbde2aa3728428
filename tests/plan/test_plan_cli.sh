#!/bin/bash
# kinsync plan: exit codes, --help, golden JSON for examples/rigs/*.yaml, --svg writes a valid SVG,
# infeasible and invalid rigs. Env: KINSYNC (the command), KS_SOURCE_DIR.
# Regenerate the golden files after an intended change: KS_UPDATE_GOLDEN=1 bash tests/plan/test_plan_cli.sh
set -u
KINSYNC=${KINSYNC:-kinsync}
SRC=${KS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
GOLDEN=$SRC/tests/data/golden
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_exit() { # expected-code description command...
    local want=$1 what=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    [ "$got" = "$want" ] || { fail "$what: exit $got, expected $want"; cat "$TMP/out" "$TMP/err" | head -20; }
}

# help and usage errors
expect_exit 0 "--help" "$KINSYNC" plan --help
for flag in --json --svg --guard --aim --help "Exit status"; do
    grep -q -- "$flag" "$TMP/out" || fail "--help does not mention $flag"
done
"$KINSYNC" --help | grep -q "plan" || fail "kinsync --help does not list plan"
expect_exit 2 "no rig file" "$KINSYNC" plan
expect_exit 2 "two rig files" "$KINSYNC" plan "$SRC/examples/rigs/chain-3.yaml" "$SRC/examples/rigs/star-2.yaml"
expect_exit 2 "unknown option" "$KINSYNC" plan --frobnicate "$SRC/examples/rigs/chain-3.yaml"
expect_exit 2 "--svg without a file" "$KINSYNC" plan "$SRC/examples/rigs/chain-3.yaml" --svg
expect_exit 2 "bad --aim" "$KINSYNC" plan --aim sideways "$SRC/examples/rigs/chain-3.yaml"
grep -q "simultaneous or interleaved" "$TMP/err" || fail "bad --aim message does not name the choices"
expect_exit 2 "bad --guard" "$KINSYNC" plan --guard -5 "$SRC/examples/rigs/chain-3.yaml"
expect_exit 2 "missing file" "$KINSYNC" plan "$TMP/nope.yaml"
printf 'rig: x\ndevices: [\n' >"$TMP/bad.yaml"
expect_exit 2 "bad YAML" "$KINSYNC" plan "$TMP/bad.yaml"

# golden JSON for every example rig
for rig in "$SRC"/examples/rigs/*.yaml; do
    name=$(basename "$rig" .yaml)
    expect_exit 0 "plan $name" "$KINSYNC" plan --json "$rig"
    if [ "${KS_UPDATE_GOLDEN:-0}" = 1 ]; then
        cp "$TMP/out" "$GOLDEN/plan-$name.json"
    elif ! diff -u "$GOLDEN/plan-$name.json" "$TMP/out" >"$TMP/diff"; then
        fail "plan --json $name differs from tests/data/golden/plan-$name.json"
        head -40 "$TMP/diff"
    fi
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["schema"]=="kinsync.plan/1" and d["feasible"] and d["proof"]["lasers_ok"]' "$TMP/out" ||
        fail "plan --json $name is not a feasible kinsync.plan/1 document"
    expect_exit 0 "plan text $name" "$KINSYNC" plan "$rig"
    grep -q "start order:" "$TMP/out" || fail "$name: no start order line"
    grep -q "k4arecorder " "$TMP/out" || fail "$name: no k4arecorder line"
done

# the text output of the 3-device chain: proof line and commands grouped by host
expect_exit 0 "plan chain-3" "$KINSYNC" plan "$SRC/examples/rigs/chain-3.yaml"
grep -q "proof: smallest laser separation 166.7 us between master and a >= guard 160 us" "$TMP/out" ||
    fail "chain-3: proof line missing"
grep -q "start order: b, a, master" "$TMP/out" || fail "chain-3: start order"
grep -q -- "--external-sync Subordinate --sync-delay 0 --depth-delay 167" "$TMP/out" || fail "chain-3: sub command"
grep -q "usbfs-memory" "$TMP/out" || fail "chain-3: validation warning not shown"

# --svg writes a valid SVG with one frame period
expect_exit 0 "svg" "$KINSYNC" plan --svg "$TMP/t.svg" "$SRC/examples/rigs/chain-9.yaml"
python3 - "$TMP/t.svg" <<'PY' || fail "--svg output is not a valid SVG timeline"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
rects = root.iter(ns + "rect")
pulses = [r for r in root.iter(ns + "rect") if r.get("class") == "pulse"]
exposures = [r for r in root.iter(ns + "rect") if r.get("class") == "exposure"]
guards = [p for p in root.iter(ns + "path") if p.get("class") == "guard"]
text = " ".join(t.text or "" for t in root.iter(ns + "text"))
assert len(pulses) >= 9 * 9, len(pulses)      # 9 devices x 9 pulses in the main timeline (+ inset)
assert len(exposures) >= 9, len(exposures)
assert len(guards) >= 8, len(guards)            # staggered pulses in the inset, guard gaps marked
assert "166.7" in text and "inset" in text and "ms" in text, text[:200]
PY
ls "$TMP"/t.svg.tmp.* >/dev/null 2>&1 && fail "--svg left a temporary file"
expect_exit 0 "svg with json" "$KINSYNC" plan --json --svg "$TMP/j.svg" "$SRC/examples/rigs/interleaved.yaml"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/out" || fail "--json with --svg: stdout is not JSON"
[ -s "$TMP/j.svg" ] || fail "--json --svg wrote no SVG"
expect_exit 1 "svg into a missing directory" "$KINSYNC" plan --svg "$TMP/no/dir/t.svg" "$SRC/examples/rigs/chain-3.yaml"

# infeasible: a guard that leaves one device per laser window; alternatives named, exit 1
expect_exit 1 "infeasible guard" "$KINSYNC" plan --guard 1000 "$SRC/examples/rigs/chain-9.yaml"
grep -q "INFEASIBLE" "$TMP/out" || fail "infeasible: no INFEASIBLE line"
grep -q "lower-fps: lower camera.fps to 5" "$TMP/out" || fail "infeasible: no lower-fps alternative"
grep -q "fewer-devices" "$TMP/out" || fail "infeasible: no fewer-devices alternative"
expect_exit 1 "infeasible json" "$KINSYNC" plan --json --guard 1000 "$SRC/examples/rigs/chain-9.yaml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["feasible"] and d["alternatives"] and d["reason"]' "$TMP/out" ||
    fail "infeasible --json: feasible/alternatives/reason"

# --aim override
expect_exit 0 "aim interleaved" "$KINSYNC" plan --aim interleaved "$SRC/examples/rigs/chain-3.yaml"
grep -q "interleaved: effective 90 fps" "$TMP/out" || fail "--aim interleaved: effective fps"

# passive IR: no lasers, said so
sed -e 's/NFOV_UNBINNED/PASSIVE_IR/' "$SRC/examples/rigs/chain-3.yaml" >"$TMP/passive.yaml"
expect_exit 0 "passive" "$KINSYNC" plan "$TMP/passive.yaml"
grep -q "fires no laser" "$TMP/out" || fail "passive IR: no 'fires no laser' line"

# two unsynchronized devices in one interference group: infeasible; in two groups: fine
printf 'rig: two\ndevices:\n  - {serial: "1", name: a}\n  - {serial: "2", name: b}\n' >"$TMP/two.yaml"
expect_exit 1 "unsynced pair" "$KINSYNC" plan "$TMP/two.yaml"
grep -q "not synchronized" "$TMP/out" || fail "unsynced pair: reason missing"
printf 'rig: two\ndevices:\n  - {serial: "1", name: a}\n  - {serial: "2", name: b, group: 1}\n' >"$TMP/two-groups.yaml"
expect_exit 0 "unsynced pair in two groups" "$KINSYNC" plan "$TMP/two-groups.yaml"
grep -q "no two laser devices share an interference group" "$TMP/out" || fail "two groups: proof line"

# an invalid rig: exit 1 with the finding
sed -e 's/length_m: 2/length_m: 12/' "$SRC/examples/rigs/chain-3.yaml" >"$TMP/long.yaml"
expect_exit 1 "invalid rig" "$KINSYNC" plan "$TMP/long.yaml"
grep -q "cable-too-long" "$TMP/out" || fail "invalid rig: finding not printed"
expect_exit 1 "invalid rig json" "$KINSYNC" plan --json "$TMP/long.yaml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["valid"] and d["findings"]' "$TMP/out" ||
    fail "invalid rig --json: valid/findings"

[ $fails = 0 ] && echo "test_plan_cli: all passed" || echo "test_plan_cli: $fails failed"
[ $fails = 0 ]
