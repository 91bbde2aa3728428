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
# the axis says ms like its ticks, and the main timeline shows the busy part of the period, not a
# page half empty: the rightmost pulse of the main rows ends near the right edge
assert "capture (ms, modulo the frame period)" in text, text
assert "(us, modulo" not in text
assert "-0 ms" not in text
width = float(root.get("width"))
main = [r for r in pulses if float(r.get("y")) < 60 + 9 * 26]
right = max(float(r.get("x")) + float(r.get("width")) for r in main)
assert right > 0.8 * width, (right, width)
assert "of the 33.3 ms frame period" in text and "nothing happens in the rest" in text, text[:300]
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


# external trigger (issue 14): every device, the head included, planned and started as subordinate
expect_exit 0 "external trigger" "$KINSYNC" plan "$SRC/examples/rigs/external-trigger.yaml"
[ "$(grep -c -- '--external-sync Subordinate' "$TMP/out")" = 3 ] || fail "trigger: not every device is Subordinate"
grep -q -- '--external-sync Master' "$TMP/out" && fail "trigger: a device is planned as Master"
grep -q "step 4: switch the trigger on" "$TMP/out" || fail "trigger: no step switching the trigger on last"
grep -q "step 3: host lab-1: start master (subordinate), fed by the trigger" "$TMP/out" || fail "trigger: head not last"
expect_exit 0 "external trigger json" "$KINSYNC" plan --json "$SRC/examples/rigs/external-trigger.yaml"
python3 - "$TMP/out" <<'PY' || fail "trigger --json: wired_sync_mode not subordinate for every device"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["trigger"] is True
assert [x["wired_sync_mode"] for x in d["devices"]] == ["subordinate"] * 3, d["devices"]
assert [x["trigger_fed"] for x in d["devices"]] == [True, False, False]
assert d["start_order"][-1] == "master"
PY
# a single device fed by a trigger needs only its Sync In
printf 'rig: one\ndevices:\n  - {serial: "1", name: solo}\ntrigger: {frequency_hz: 30, pulse_width_us: 10, voltage_v: 5, drive_ma: 8, to: solo}\n' >"$TMP/solo.yaml"
expect_exit 0 "single triggered device" "$KINSYNC" plan "$TMP/solo.yaml"
grep -q "master-no-sync-out" "$TMP/out" && fail "single triggered device: rejected with master-no-sync-out"
grep -q -- "--external-sync Subordinate" "$TMP/out" || fail "single triggered device: not subordinate"
# trigger voltage: refused below 3.5 V, warned below the 5 V level
sed -e 's/voltage_v: 5/voltage_v: 3.3/' "$TMP/solo.yaml" >"$TMP/v33.yaml"
expect_exit 1 "trigger at 3.3 V" "$KINSYNC" plan "$TMP/v33.yaml"
grep -q "error \[trigger-voltage\].*below the Sync In threshold of 3.5 V (0.7 x Vcc, SDK issue #1844)" "$TMP/out" ||
    fail "3.3 V trigger: no error naming the 3.5 V threshold"
sed -e 's/voltage_v: 5/voltage_v: 4/' "$TMP/solo.yaml" >"$TMP/v4.yaml"
expect_exit 0 "trigger at 4 V" "$KINSYNC" plan "$TMP/v4.yaml"
grep -q "warning \[trigger-voltage-low\].*above the 3.5 V threshold" "$TMP/out" || fail "4 V trigger: no warning"

# audit of hand-chosen delays: green_screen's -80/+80 us truncate to 77.8 us, 155.6 us apart
cat >"$TMP/green.yaml" <<'Y'
rig: green
devices:
  - {serial: "1", name: main, depth_delay_us: -80}
  - {serial: "2", name: second, depth_delay_us: 80, subordinate_delay_us: 0}
chain: [main, second]
Y
expect_exit 1 "audit green_screen" "$KINSYNC" plan "$TMP/green.yaml"
grep -q "second .*80 -> 77.8" "$TMP/out" || fail "audit: effective 77.8 us not shown"
grep -q "audit: FAIL: after the firmware's 90 kHz tick truncation the lasers of main and second are 155.6 us apart, below the guard of 160 us" "$TMP/out" ||
    fail "audit: green_screen not failed with 155.6 us"
grep -q "the corrected plan kinsync computes" "$TMP/out" || fail "audit: no corrected plan"
grep -q -- "--depth-delay 167" "$TMP/out" || fail "audit: corrected plan lacks the 167 us delay"
expect_exit 1 "audit green_screen json" "$KINSYNC" plan --json "$TMP/green.yaml"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert not a["pass"] and a["min_separation_us"]==155.556, a' "$TMP/out" ||
    fail "audit --json: pass/min_separation_us"
# pyk4a's 200/400 us (as depth delays of two subordinates, imported from k4arecorder command lines)
cat >"$TMP/pyk4a.yaml" <<'Y'
rig: pyk4a
devices:
  - {serial: "1", name: m}
  - {serial: "2", name: s1, recorder: "k4arecorder --external-sync Subordinate --sync-delay 0 --depth-delay 200 s1.mkv"}
  - {serial: "3", name: s2, recorder: "k4arecorder --external-sync=Subordinate --sync-delay=0 --depth-delay=400 s2.mkv"}
chain: [m, s1, s2]
Y
expect_exit 0 "audit pyk4a" "$KINSYNC" plan "$TMP/pyk4a.yaml"
grep -q "audit: PASS: smallest laser separation 200.0 us" "$TMP/out" || fail "audit: 200/400 us does not pass"
printf 'devices:\n  - {serial: "1", name: m, recorder: "k4arecorder --depth-delay abc"}\n' >"$TMP/badrec.yaml"
expect_exit 2 "bad recorder line" "$KINSYNC" plan "$TMP/badrec.yaml"
grep -q "needs a whole number of microseconds" "$TMP/err" || fail "bad recorder line: message"

# one start order across hosts: three hosts, the master's host listed first in the file
cat >"$TMP/hosts3.yaml" <<'Y'
rig: hosts3
devices:
  - {serial: "1", name: master, host: alpha}
  - {serial: "2", name: a, host: beta}
  - {serial: "3", name: b, host: gamma}
chain: [master, a, b]
Y
expect_exit 0 "steps on three hosts" "$KINSYNC" plan "$TMP/hosts3.yaml"
python3 - "$TMP/out" <<'PY' || fail "three hosts: global start steps"
import re, sys
t = open(sys.argv[1]).read()
steps = re.findall(r"^  step (\d+): host (\S+): start (\S+)", t, re.M)
assert [s[0] for s in steps] == ["1", "2", "3"], steps
assert [s[2] for s in steps] == ["b", "a", "master"], steps
assert len({s[1] for s in steps}) == 3, steps
assert "[step 3] k4arecorder" in t and "--external-sync Master" in t.split("[step 3]")[1].split("\n")[0]
PY

# the cost of a plan: depth delays of about 14 ms, overlapping interleaved exposures
expect_exit 0 "cost depth-color" "$KINSYNC" plan --guard 300 "$SRC/examples/rigs/chain-9.yaml"
grep -q "^cost: depth delays up to 14.1 ms: the depth and color images of s5, s6, s7, s8 are captured up to 14.1 ms apart" "$TMP/out" ||
    fail "cost: no depth/color note"
expect_exit 0 "cost depth-color json" "$KINSYNC" plan --json --guard 300 "$SRC/examples/rigs/chain-9.yaml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["costs"]; assert c["max_depth_color_us"]>13000 and c["notes"] and max(abs(x["depth_color_offset_us"]) for x in d["devices"])>13000' "$TMP/out" ||
    fail "cost --json: depth/color"
sed -e 's/^  us: .*/  us: 16670/' "$SRC/examples/rigs/chain-9.yaml" >"$TMP/long-exposure.yaml"
grep -q "us: 16670" "$TMP/long-exposure.yaml" || fail "test setup: chain-9 has no exposure us line"
expect_exit 0 "interleaved overlap" "$KINSYNC" plan --aim interleaved "$TMP/long-exposure.yaml"
grep -q "^cost: interleaved captures are 3703.7 us apart but each color exposure lasts 16670 us: the exposures of successive devices overlap, so the effective 270 fps" "$TMP/out" ||
    fail "interleaved overlap: no warning"
sed -e 's/^  us: .*/  us: 2500/' "$SRC/examples/rigs/chain-9.yaml" >"$TMP/short-exposure.yaml"
expect_exit 0 "interleaved no overlap" "$KINSYNC" plan --aim interleaved "$TMP/short-exposure.yaml"
grep -q "exposures of successive devices overlap" "$TMP/out" && fail "interleaved: overlap warned without overlap"

# smaller items: color off header and no -e; --guard named in the fix; camera keys on a device;
# no topology for an invalid rig
printf 'rig: nocolor\ndevices:\n  - {serial: "1", name: a}\n  - {serial: "2", name: b}\nchain: [a, b]\ncamera: {color_resolution: "OFF", depth_mode: NFOV_UNBINNED}\n' >"$TMP/nocolor.yaml"
"$KINSYNC" plan "$TMP/nocolor.yaml" >"$TMP/out" 2>&1
grep -q "color OFF MJPG" "$TMP/out" && fail "color off: header says OFF MJPG"
grep -q " -e " "$TMP/out" && fail "color off: -e printed"
grep -q "auto exposure" "$TMP/out" && fail "color off: auto-exposure comment"
expect_exit 1 "guard 100 via --guard" "$KINSYNC" plan --guard 100 "$SRC/examples/rigs/chain-3.yaml"
grep -q "\[guard-too-small\] --guard 100 us .*fix: leave out --guard" "$TMP/out" || fail "--guard 100: fix names guard_us, not --guard"
printf 'devices:\n  - {serial: "1", name: a}\n  - {serial: "2", name: b, fps: 15}\n' >"$TMP/devfps.yaml"
expect_exit 2 "camera key on a device" "$KINSYNC" plan "$TMP/devfps.yaml"
grep -q "devices\[1\] has 'fps', but camera settings apply to the whole rig" "$TMP/err" || fail "device fps: message"
expect_exit 1 "invalid header" "$KINSYNC" plan "$TMP/long.yaml"
head -1 "$TMP/out" | grep -q "unknown" && fail "invalid rig: header says topology unknown"
head -1 "$TMP/out" | grep -q "wiring not derived (invalid rig)" || fail "invalid rig: header"

[ $fails = 0 ] && echo "test_plan_cli: all passed" || echo "test_plan_cli: $fails failed"
[ $fails = 0 ]
