#!/usr/bin/env bash
# kinsync verify names every fault the simulator injects by its cause, and the text result line, the
# JSON (passed, result, the check) and the exit status agree (issue 14). Timing-only 3-device chain
# in virtual time; each fault is one rig file written here.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir tmp
head='devices:
  - {serial: "000700000001", name: master}
  - {serial: "000700000002", name: a}
  - {serial: "000700000003", name: b}
cables:
  - {from: master, to: a, length_m: 2}
  - {from: a, to: b, length_m: 2}
camera: {color_resolution: 720P, color_format: MJPG, depth_mode: NFOV_UNBINNED, fps: 30}'
manual='exposure: {mode: manual, us: 8330, powerline: 60}'
sim='simulation:
  seed: 7
  mode: fast
  render: {color: false, depth: false}'
# every host prepared for its devices (usbfs_mb: 64, as kinsync doctor says) unless the case sets it
mk() {
  local extra="$3"
  case "$extra" in *usbfs_mb*) ;; *) extra="  usbfs_mb: 64
$extra" ;; esac
  printf 'rig: %s\n%s\n%s\n%s\n%s\n' "$1" "$head" "$2" "$sim" "$extra" > "$tmp/$1.yaml"
}
mk disconnect "$manual" '  faults: [{kind: disconnect, device: b, at_ms: 1500}]'
mk unplug "$manual" '  faults: [{kind: unplug, to: a, at_ms: 1500}]'
mk unplug-back "$manual" '  faults: [{kind: unplug, to: a, at_ms: 1500, duration_ms: 400}]'
mk drop "$manual" '  faults: [{kind: drop, device: a, at_ms: 1500, count: 20}]'
mk usbfs "$manual" '  usbfs_mb: 16'
mk badframes "$manual" '  faults: [{kind: bad-frames, device: a, at_ms: 1200, count: 4}]'
mk autoexp 'exposure: {mode: auto}' ''
# the external-trigger example (one device per host), its generator stopping / pausing at 1.5 s
for t in stop pause; do
  d=; [ $t = pause ] && d=', duration_ms: 400'
  { cat "$KS_SOURCE_DIR/examples/rigs/external-trigger.yaml"; printf '%s\n  faults: [{kind: trigger-stop, at_ms: 1500%s}]\n' "$sim" "$d"; } \
    > "$tmp/trigger-$t.yaml"
done
mk clean "$manual" ''

# run NAME CHECK-ID STATUS PATTERN: text and JSON runs; the named check, the result line, passed,
# result and the exit status must agree (FAIL -> exit 1, result FAIL; otherwise per the verdict)
run() {
    local name=$1 id=$2 status=$3 pattern=$4 want_rc=$5
    "$KINSYNC" verify --backend sim --fast --seconds 3 "$tmp/$name.yaml" >"$tmp/$name.out" 2>&1; local rc=$?
    "$KINSYNC" verify --backend sim --fast --seconds 3 --json "$tmp/$name.yaml" >"$tmp/$name.json" 2>/dev/null
    local jrc=$?
    check "[ $rc -eq $want_rc ] # $name: exit status"
    check "[ $jrc -eq $want_rc ] # $name: exit status with --json"
    check "grep -Eq '^$status  $id +.*$pattern' '$tmp/$name.out' # $name: named cause"
    local word=PASS; [ "$want_rc" -eq 1 ] && word=FAIL
    check "grep -q '^result: $word\$' '$tmp/$name.out' # $name: result line"
    check "python3 - '$tmp/$name.json' '$id' '$status' '$pattern' '$word' <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
cs = [c for c in d['checks'] if c['id'] == sys.argv[2] and c['status'] == sys.argv[3] and re.search(sys.argv[4], c['message'])]
fails = [c for c in d['checks'] if c['status'] == 'FAIL']
ok = cs and d['result'] == sys.argv[5] and d['passed'] == (sys.argv[5] == 'PASS') and (not fails) == d['passed']
sys.exit(0 if ok else 1)
PY"
}
run disconnect device-lost FAIL "b stopped delivering frames .* disconnected" 1
check "! grep -q '^FAIL  dropped-frames' '$tmp/disconnect.out'"
run unplug sync-signal FAIL "a .and behind it b. got no frames from .* to the end of the run .* sync cable from master into a.s Sync In is unplugged" 1
check "! grep -q 'USB bandwidth' '$tmp/unplug.out'"
run unplug-back sync-signal FAIL "a .and behind it b. got no frames for 400 ms from .* sync cable from master into a.s Sync In" 1
# frames of a lost while b, behind a's Sync In, kept capturing: not the cable, the USB path/host
run drop dropped-frames FAIL "a: missing from 2[0-9] of .* frames lost on the way to the host" 1
check "! grep -q 'sync-signal' '$tmp/drop.out'"
run usbfs dropped-frames FAIL "allows 16 MB of usbfs memory but its 3 devices need 64 MB" 1
check "! grep -q 'sync cable' '$tmp/usbfs.out'"
run badframes frame-content FAIL "a delivered 4 of .* invalid content .4 colour images corrupt" 1
run autoexp auto-exposure WARN "master runs auto exposure .* every subordinate.s skew against it moves" 1
check "! grep -q 'nan' '$tmp/autoexp.out'"
check "! grep -q '^WARN  clock-drift.*sync cable' '$tmp/autoexp.out'"
check "grep -q '^WARN  clock-drift.*auto exposure' '$tmp/autoexp.out'"
# the host fit is the clock's, not the exposure's: every device within 100 ppm
check "python3 -c 'import json,sys; d=json.load(open(\"$tmp/autoexp.json\")); sys.exit(0 if all(abs(x[\"host_clock_fit\"][\"rate_ns_per_us\"]/1000-1)*1e6 < 100 for x in d[\"devices\"]) else 1)'"
run trigger-stop run-length FAIL "every device stopped delivering frames at the same instant, 1.[0-9]+ s into the 3.0 s run: the external trigger stopped" 1
run trigger-pause sync-pause FAIL "every device missed the same [5-7] frames .*: the external trigger paused" 1
check "! grep -q '^FAIL  \(sync-signal\|dropped-frames\)' '$tmp/trigger-pause.out' '$tmp/trigger-stop.out'"
run clean exposure PASS "manual exposure on every device, set once" 0
check "grep -q '^PASS  frame-content .*no black or corrupt frame' '$tmp/clean.out'"
check "grep -q '^PASS  timestamps .*mid-exposure' '$tmp/clean.out'"

# a multi-host rig (one device per host) started master-first: start order is not judged (SKIP with
# the reason), never PASS
sed -e 's/name: master}/name: master, host: h1}/' -e 's/name: a}/name: a, host: h2}/' -e 's/name: b}/name: b, host: h3}/' \
    "$tmp/clean.yaml" > "$tmp/hosts.yaml"
"$KINSYNC" verify --backend sim --fast --seconds 1 --start-master-first "$tmp/hosts.yaml" >"$tmp/hosts.out" 2>&1
check "grep -q '^SKIP  start-order .*not judged for a, b: on another host' '$tmp/hosts.out'"
check "! grep -q '^PASS  start-order' '$tmp/hosts.out'"
exit $fail
