#!/usr/bin/env bash
# kinsync record onto a full disk (a 50 MB tmpfs as --out): exit 1, the error names the disk, and
# --json lists the .part files that remain (not .mkv files that do not exist), says they are not
# complete, ends them EIO and names `kinsync repair`, which completes each. Needs root to mount
# the tmpfs: SKIP (77) where mounting is not allowed.
set -uo pipefail
. "$(dirname "$0")/../support/lib.sh"
T=$(mktemp -d)
M="$T/disk"
mkdir -p "$M"
if ! mount -t tmpfs -o size=50m tmpfs "$M" 2>/dev/null; then
  rm -rf "$T"
  ks_skip "cannot mount a tmpfs here (needs root)"
fi
trap 'umount "$M" 2>/dev/null; rm -rf "$T"' EXIT
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# the demo rig renders real images (about 1.5 MB a capture): 50 MB fill up within a second
sed "s#\.\./boards/#$KS_SOURCE_DIR/examples/boards/#" "$KS_SOURCE_DIR/examples/rigs/demo-studio.yaml" > "$T/rig.yaml"
timeout 60 "$KINSYNC" record "$T/rig.yaml" --out "$M/rec" --seconds 4 --json >"$T/r.json" 2>"$T/r.err"
rc=$?
[ "$rc" = 1 ] && ok "full disk: exit 1" || { bad "full disk: exit $rc"; cat "$T/r.err"; }
grep -q "No space left on device" "$T/r.err" && ok "the error names the full disk" || bad "error: $(cat "$T/r.err")"
[ "$(j "$T/r.json" "d['ok']")" = False ] && ok "--json ok false" || bad "--json ok"
[ "$(j "$T/r.json" "all(f['path'].endswith('.mkv.part') for f in d['files'])")" = True ] \
  && ok "--json lists the .part files" || bad "--json paths: $(j "$T/r.json" "[f['path'] for f in d['files']]")"
[ "$(j "$T/r.json" "all(__import__('os').path.exists(f['path']) for f in d['files'])")" = True ] \
  && ok "every listed file exists" || bad "--json lists files that do not exist"
[ "$(j "$T/r.json" "all(not f['complete'] and f['end'] != 'OK' and f['repair'].startswith('kinsync repair ') for f in d['files'])")" = True ] \
  && ok "each named incomplete, not OK, with kinsync repair" || bad "--json: $(cat "$T/r.json")"
grep -q "kinsync repair" "$T/r.err" && ok "stderr names kinsync repair" || bad "stderr lacks kinsync repair"
# the repair completes each (written elsewhere: the tmpfs is full)
for p in $(j "$T/r.json" "' '.join(f['path'] for f in d['files'])"); do
  out="$T/$(basename "${p%.part}")"
  "$KINSYNC" repair "$p" -o "$out" >/dev/null 2>"$T/rep.err" && "$KINSYNC" info "$out" >/dev/null 2>&1 \
    && ok "kinsync repair completes $(basename "$p")" || { bad "repair of $p"; cat "$T/rep.err"; }
done
exit $fail
