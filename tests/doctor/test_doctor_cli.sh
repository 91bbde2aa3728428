#!/bin/bash
# kinsync doctor on the fake trees of tests/data/doctor, with the libk4a test double.
set -u
D="$KS_SOURCE_DIR/tests/data/doctor"
FAKE="$KS_BINARY_DIR/tests/libfake_k4a.so"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok   $1"; fi; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
sev() { # json id subject -> severities of matching findings
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(f["severity"] for f in d["findings"] if f["id"]==sys.argv[1] and (sys.argv[2]=="*" or f["subject"]==sys.argv[2])))' "$1" "$2"
}
tree() { echo --sysfs "$D/$1/sys" --proc "$D/$1/proc" --commands "$D/$1/commands"; }

export KINSYNC_K4A_LIBRARY="$FAKE" KINSYNC_DEPTHENGINE_LIBRARY="$FAKE"
export FAKE_K4A_SCRIPT="000001112912,1.6.110,1.6.79,1.6.14,6109.7.0,-o;000002112912,1.6.110,1.6.79,1.6.14,6109.7.0,io"

# Good host, two-host rig: all checks pass, exit 0.
json=$("$KINSYNC" doctor "$D/two-hosts.yaml" $(tree good) --hostname hostA --json); rc=$?
check "good host exits 0" '[ $rc -eq 0 ]'
check "good: no errors" '[ "$(jget "d[\"errors\"]" <<<"$json")" = 0 ]'
check "good: usbfs ok" '[ "$(sev usbfs-memory "*" <<<"$json")" = ok ]'
check "good: firmware ok" '[ "$(sev firmware "*" <<<"$json")" = ok ]'
check "good: clock offset ok" '[ "$(sev clock-offset hostA <<<"$json")" = "ok ok" ]'
check "good: jacks as the rig says" '[ "$(sev sync-jacks "*" <<<"$json")" = "ok ok" ]'
check "good: depth engine ok" '[ "$(sev depthengine "*" <<<"$json")" = ok ]'

# Bad host: firmware differs, controllers shared, usbfs too small, clocks off: exit 1.
export FAKE_K4A_SCRIPT="000001112912,1.6.110,1.6.79,1.6.14,6109.7.0,-o;000002112912,1.6.102,1.6.79,1.6.14,6109.7.0,i-;000003112912,1.6.110,1.6.79,1.6.14,6109.7.0,i-"
json=$(KINSYNC_DEPTHENGINE_LIBRARY=/nonexistent "$KINSYNC" doctor "$D/two-hosts.yaml" $(tree bad) --hostname hostA --json); rc=$?
check "bad host exits 1" '[ $rc -eq 1 ]'
check "bad: usbfs error" '[ "$(sev usbfs-memory "*" <<<"$json")" = error ]'
check "bad: shared controller" '[ "$(sev usb-controller-shared 0000:00:14.0 <<<"$json")" = error ]'
check "bad: usb speed" '[ "$(sev usb-speed 000003112912 <<<"$json")" = error ]'
check "bad: firmware mismatch" '[ "$(sev firmware-mismatch 000002112912 <<<"$json")" = error ]'
check "bad: depth engine" '[ "$(sev depthengine "*" <<<"$json")" = error ]'
check "bad: clock offset" '[ "$(sev clock-offset hostA <<<"$json")" = error ]'
check "bad: sub1 Sync Out empty" '[ "$(sev sync-jacks 000002112912 <<<"$json")" = error ]'
text=$(KINSYNC_DEPTHENGINE_LIBRARY=/nonexistent "$KINSYNC" doctor "$D/two-hosts.yaml" $(tree bad) --hostname hostA)
check "bad: text has the grub line" 'grep -q "usbcore.usbfs_memory_mb=" <<<"$text" && grep -q "update-grub" <<<"$text"'

# No libk4a, empty host, no rig: warnings only, exit 0.
out=$(KINSYNC_K4A_LIBRARY=/nonexistent "$KINSYNC" doctor $(tree empty)); rc=$?
check "empty host without rig exits 0" '[ $rc -eq 0 ]'
check "empty host says libk4a missing" 'grep -q "libk4a 1.4 not found" <<<"$out"'

"$KINSYNC" doctor --bogus >/dev/null 2>&1; rc=$?
check "bad option exits 2" '[ $rc -eq 2 ]'
"$KINSYNC" doctor /nonexistent.yaml >/dev/null 2>&1; rc=$?
check "unreadable rig exits 2" '[ $rc -eq 2 ]'
exit $fail
