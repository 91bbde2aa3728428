#!/usr/bin/env bash
# scripts/manpages.sh KINSYNC OUTDIR: writes OUTDIR/kinsync.1 and one OUTDIR/kinsync-COMMAND.1 per
# command, each from the command's own --help (run at build time, so a man page says exactly what
# --help says). The command list is read from `kinsync --help` ("Commands:" section).
set -euo pipefail
K=$1 OUT=$2
mkdir -p "$OUT"
VERSION=$("$K" version | awk '{print $2}')
DATE=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%d 2>/dev/null || echo 1970-01-01)
[ -n "${SOURCE_DATE_EPOCH:-}" ] || DATE=""
# roff-escape a --help text: backslashes, leading dots/quotes; keep the layout (.nf).
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"; }
page() { # name section-title summary helptext-file see-also
  local name=$1 summary=$2 help=$3 see=$4 up
  up=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
  {
    printf '.TH %s 1 "%s" "kinsync %s" "kinsync manual"\n' "$up" "$DATE" "$VERSION"
    printf '.SH NAME\n%s \\- %s\n' "$name" "$(printf '%s' "$summary" | esc)"
    printf '.SH DESCRIPTION\n.nf\n'
    esc < "$help"
    printf '.fi\n.SH SEE ALSO\n%s\n' "$see"
    printf '.PP\nThe documentation pages in /usr/share/doc/kinsync (docs/ in the source tree).\n'
  } > "$OUT/$name.1"
}
"$K" --help > "$OUT/kinsync.help"
mapfile -t cmds < <(sed -n '/^Commands:/,/^$/p' "$OUT/kinsync.help" | awk 'NF>1 && $1 != "Commands:" {print $1}')
see=""
for c in "${cmds[@]}"; do see+="${see:+, }\\fBkinsync-$c\\fR(1)"; done
page kinsync "plan, run, check, record, calibrate and fuse rigs of synchronized Azure Kinect devices" \
  "$OUT/kinsync.help" "$see"
for c in "${cmds[@]}"; do
  summary=$(sed -n "s/^  $c  *//p" "$OUT/kinsync.help" | head -1)
  if [ "$c" = version ]; then printf 'Usage: kinsync version\n\nPrints the version of kinsync.\n' > "$OUT/$c.help"
  else "$K" "$c" --help > "$OUT/$c.help"; fi
  page "kinsync-$c" "$summary" "$OUT/$c.help" '\fBkinsync\fR(1)'
done
rm -f "$OUT"/*.help
