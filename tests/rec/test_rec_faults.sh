#!/usr/bin/env bash
# kinsync record under faults (issue 20): a subordinate that stops delivering (sync cable pulled
# for good, external trigger stopped), a 10 s host stall, a 1 s cable pull and dropped captures.
# Every run must end in bounded time (timeout 60 s: before the fix record spun forever), name the
# cause, leave complete files (no .part) and exit 1; every lost capture is counted per device in
# the summary and --json. Also: --frames that overflows, SIGTERM named as SIGTERM (not Ctrl-C).
# Simulator, images not rendered (timing only) to keep it short.
set -uo pipefail
. "$(dirname "$0")/../support/lib.sh"
ks_tmpdir T
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

rig() { # name 'faults' [base] -> $T/name.yaml (images not rendered; the users' default startup drops)
  sed -e "s/^rig: .*/rig: $1/" "$KS_SOURCE_DIR/examples/rigs/${3:-chain-3}.yaml" | grep -v '^simulation:' > "$T/$1.yaml"
  printf 'simulation:\n  usbfs_mb: 64\n  render: {color: false, depth: false}\n  faults: %s\n' "$2" >> "$T/$1.yaml"
}
# record NAME SECONDS: runs `record --json` under a 60 s timeout into $T/NAME, rc in $rc
record() {
  timeout 60 "$KINSYNC" record "$T/$1.yaml" --out "$T/$1" --seconds "$2" --json >"$T/$1.json" 2>"$T/$1.err"
  rc=$?
  [ "$rc" != 124 ] && ok "$1: ended in bounded time" || bad "$1: still running after 60 s (hang)"
  [ "$rc" = 1 ] && ok "$1: exit 1" || { bad "$1: exit $rc, expected 1"; cat "$T/$1.err"; }
  ls "$T/$1" | grep -q '\.part$' && bad "$1: .part left behind" || ok "$1: no .part"
  [ "$(ls "$T/$1"/*.mkv 2>/dev/null | wc -l)" = 3 ] && ok "$1: 3 complete files" || bad "$1: files: $(ls "$T/$1")"
  for f in "$T/$1"/*.mkv; do
    "$KINSYNC" info "$f" >/dev/null 2>&1 || bad "$1: kinsync info rejects $(basename "$f")"
  done
  [ "$(j "$T/$1.json" "d['ok']")" = False ] && ok "$1: --json ok false" || bad "$1: --json says ok"
}

# a subordinate's sync cable pulled for good at 1 s
rig unplug '[{kind: unplug, to: a, at_ms: 1000}]'
record unplug 4
grep -q "stopped delivering frames" "$T/unplug.err" && grep -q "unplugged" "$T/unplug.err" \
  && ok "unplug: the silent device and the unplugged cable named" || { bad "unplug: cause not named"; cat "$T/unplug.err"; }
[ "$(j "$T/unplug.json" "[f['end'] for f in d['files']]")" = "['OK', 'ENODEV', 'ENODEV']" ] \
  && ok "unplug: both subordinates ended ENODEV in --json" || bad "unplug: ends $(j "$T/unplug.json" "[f['end'] for f in d['files']]")"

# the external trigger stops at 1 s: no device gets pulses
rig trigger '[{kind: trigger-stop, at_ms: 1000}]' external-trigger
record trigger 4
grep -q "trigger generator stopped" "$T/trigger.err" && ok "trigger-stop: the stopped trigger named" \
  || { bad "trigger-stop: cause not named"; cat "$T/trigger.err"; }

# the host reads nothing for 10 s: it ends (either silent devices or the lost captures are named)
rig stall '[{kind: stall, host: studio, at_ms: 1000, duration_ms: 10000}]'
record stall 4
grep -Eq "host stall|captures were lost" "$T/stall.err" && ok "stall: the cause named" \
  || { bad "stall: cause not named"; cat "$T/stall.err"; }

# a 1 s cable pull: the recording goes on, the subordinates lose 1 s of captures (30 each at
# 30 fps, give or take the frame at each edge): counted per device, named, exit 1
rig pull '[{kind: unplug, to: a, at_ms: 1000, duration_ms: 1000}]'
record pull 4
[ "$(j "$T/pull.json" "[f['lost'] for f in d['files']][0] == 0 and all(28 <= f['lost'] <= 31 for f in d['files'][1:])")" = True ] \
  && ok "pull: lost per device $(j "$T/pull.json" "[f['lost'] for f in d['files']]")" \
  || bad "pull: lost $(j "$T/pull.json" "[f.get('lost') for f in d['files']]")"
[ "$(j "$T/pull.json" "d['lost'] == sum(f['lost'] for f in d['files'])")" = True ] && ok "pull: total lost" || bad "pull: total"
grep -q "captures were lost.*sub1 [0-9]*, sub2 [0-9]*" "$T/pull.err" && ok "pull: the loss named per device" \
  || { bad "pull: loss not named"; cat "$T/pull.err"; }
timeout 60 "$KINSYNC" record "$T/pull.yaml" --out "$T/pull2" --seconds 4 >"$T/pull2.out" 2>/dev/null
grep -q "sub1-.*LOST" "$T/pull2.out" && ok "pull: the summary names the loss" || { bad "pull: summary"; cat "$T/pull2.out"; }

# five captures of one device dropped: exactly five lost on that device
rig drop '[{kind: drop, device: b, at_ms: 1000, count: 5}]'
record drop 3
[ "$(j "$T/drop.json" "[f['lost'] for f in d['files']]")" = "[0, 0, 5]" ] && ok "drop: 5 lost on sub2" \
  || bad "drop: lost $(j "$T/drop.json" "[f.get('lost') for f in d['files']]")"

# no fault: exit 0, nothing lost
rig clean '[]'
timeout 60 "$KINSYNC" record "$T/clean.yaml" --out "$T/clean" --seconds 3 --json >"$T/clean.json" 2>"$T/clean.err"
rc=$?
[ "$rc" = 0 ] && [ "$(j "$T/clean.json" "d['ok'] and d['lost'] == 0")" = True ] && ok "clean: exit 0, nothing lost" \
  || { bad "clean: exit $rc"; cat "$T/clean.err"; }

# --frames beyond the range of a 64-bit count (strtoll saturates): a usage error
"$KINSYNC" record "$T/clean.yaml" --out "$T/x" --frames 99999999999999999999 >/dev/null 2>"$T/err"; rc=$?
[ "$rc" = 2 ] && ok "--frames 99999999999999999999: exit 2" || bad "--frames overflow: exit $rc"

# SIGTERM stops cleanly and is not called Ctrl-C
rig paced '[]'
"$KINSYNC" record "$T/paced.yaml" --out "$T/term" >"$T/term.out" 2>"$T/term.err" &
pid=$!
for _ in $(seq 50); do [ -e "$T/term" ] && break; sleep 0.1; done
sleep 1.5
kill -TERM $pid
wait $pid; rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] && ok "SIGTERM: stopped (exit $rc)" || bad "SIGTERM: exit $rc"
grep -q "Ctrl-C" "$T/term.out" && bad "SIGTERM reported as Ctrl-C" || ok "SIGTERM not called Ctrl-C"
grep -q "stopped by SIGTERM" "$T/term.out" && ok "SIGTERM named" || { bad "SIGTERM not named"; cat "$T/term.out"; }
ls "$T/term" | grep -q '\.part$' && bad "SIGTERM: .part left" || ok "SIGTERM: no .part"
exit $fail
