#!/usr/bin/env bash
# Reads the real k4arecorder fixture with `kinsync info --json` and checks every track parameter,
# tag, timestamp and the calibration attachment against what mkvinfo, mkvextract and ffprobe report
# for the same file (extracted here at run time, not hard-coded). Also checks that repair of a
# cut copy of the fixture gives a file mkvinfo and ffprobe accept.
set -euo pipefail
F="$KS_FIXTURES/k4a/real-recording-nfov-720p.mkv"
# worktrees sit one level deeper than the main checkout that ../shared is relative to
[ -r "$F" ] || F="$KS_SOURCE_DIR/../../shared/fixtures/k4a/real-recording-nfov-720p.mkv"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # name got expected
  if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', expected '$3'"; fail=1; else echo "ok   $1 = $2"; fi
}

"$KINSYNC" info --json "$F" > "$T/info.json"
mkvinfo -v "$F" > "$T/mkvinfo.txt"
ffprobe -v error -show_entries stream=index,codec_tag_string,width,height,start_time:stream_tags \
  -of json "$F" > "$T/ffprobe.json"

check complete "$(jq -r .complete "$T/info.json")" true
check writing_app "$(jq -r .writing_app "$T/info.json")" \
  "$(sed -n 's/.*Writing application: \(.*\)$/\1/p' "$T/mkvinfo.txt" | head -1)"
check timecode_scale "$(jq -r .timecode_scale_ns "$T/info.json")" \
  "$(sed -n 's/.*Timestamp scale: \([0-9]*\).*/\1/p' "$T/mkvinfo.txt" | head -1)"

# tracks: name, fourcc, size, frame duration from mkvinfo; uids from mkvinfo
sed -n '/^|+ Tracks/,/^|+ Attachments/p' "$T/mkvinfo.txt" > "$T/tracks.txt"
mapfile -t names < <(sed -n 's/.*+ Name: \(.*\)$/\1/p' "$T/tracks.txt")
mapfile -t uids < <(sed -n 's/.*+ Track UID: \([0-9]*\).*/\1/p' "$T/tracks.txt")
mapfile -t durs < <(sed -n 's/.*Default duration: 00:00:\([0-9.]*\) .*/\1/p' "$T/mkvinfo.txt")
check track_count "$(jq '.tracks|length' "$T/info.json")" "${#names[@]}"
for i in "${!names[@]}"; do
  check "track$i.name" "$(jq -r ".tracks[$i].name" "$T/info.json")" "${names[$i]}"
  check "track$i.uid" "$(jq -r ".tracks[$i].uid" "$T/info.json")" "${uids[$i]}"
done
for i in 0 1 2; do
  check "track$i.fourcc" "$(jq -r ".tracks[$i].fourcc" "$T/info.json")" \
    "$(jq -r ".streams[$i].codec_tag_string" "$T/ffprobe.json")"
  check "track$i.width" "$(jq -r ".tracks[$i].width" "$T/info.json")" "$(jq -r ".streams[$i].width" "$T/ffprobe.json")"
  check "track$i.height" "$(jq -r ".tracks[$i].height" "$T/info.json")" "$(jq -r ".streams[$i].height" "$T/ffprobe.json")"
  got=$(jq -r ".tracks[$i].default_duration_ns" "$T/info.json")
  check "track$i.default_duration" "$(awk -v d="${durs[$i]}" 'BEGIN{printf "%d", d*1e9+0.5}')" "$got"
  # first device timestamp = ffprobe start_time (block time, s) + K4A_START_OFFSET_NS
  off=$(jq -r '.tags[]|select(.name=="K4A_START_OFFSET_NS").value' "$T/info.json")
  st=$(jq -r ".streams[$i].start_time" "$T/ffprobe.json")
  check "track$i.first_ts_us" "$(jq -r ".tracks[$i].first_ts_us" "$T/info.json")" \
    "$(awk -v s="$st" -v o="$off" 'BEGIN{printf "%d", s*1e6 + o/1000 + 0.5}')"
done
check imu_codec "$(jq -r '.tracks[3].codec' "$T/info.json")" "$(sed -n 's/.*Codec ID: \(S_.*\)$/\1/p' "$T/mkvinfo.txt")"
check start_offset_ns "$(jq -r '.start_offset_us' "$T/info.json")000" \
  "$(jq -r '.tags[]|select(.name=="K4A_START_OFFSET_NS").value' "$T/info.json")"

# every tag: names and values in mkvinfo's order
mkvinfo "$F" | sed -n 's/.*+ Name: \(K4A_.*\)$/\1/p' > "$T/tagnames_mkvinfo"
mkvinfo "$F" | sed -n 's/.*+ String: \(.*\)$/\1/p' > "$T/tagvalues_mkvinfo"
jq -r '.tags[].name' "$T/info.json" > "$T/tagnames_ours"
jq -r '.tags[].value' "$T/info.json" > "$T/tagvalues_ours"
check tag_names "$(md5sum < "$T/tagnames_ours")" "$(md5sum < "$T/tagnames_mkvinfo")"
check tag_values "$(md5sum < "$T/tagvalues_ours")" "$(md5sum < "$T/tagvalues_mkvinfo")"
check tag_count "$(wc -l < "$T/tagnames_ours")" 15
# the ffprobe view of the per-track tags agrees too
check color_mode "$(jq -r '.streams[0].tags.K4A_COLOR_MODE' "$T/ffprobe.json")" \
  "$(jq -r '.tags[]|select(.name=="K4A_COLOR_MODE").value' "$T/info.json")"
check depth_mode "$(jq -r '.streams[1].tags.K4A_DEPTH_MODE' "$T/ffprobe.json")" \
  "$(jq -r '.tags[]|select(.name=="K4A_DEPTH_MODE").value' "$T/info.json")"

# calibration attachment: size as extracted by mkvextract
mkvextract attachments "$F" "1:$T/cal.json" > /dev/null
check calibration_bytes "$(jq -r '.attachments[0].bytes' "$T/info.json")" "$(stat -c %s "$T/cal.json")"
check calibration_name "$(jq -r '.attachments[0].name' "$T/info.json")" calibration.json

# cut the fixture inside its big cluster: readable (IMU cluster only), repair gives a valid file
head -c 1000000 "$F" > "$T/cut.mkv"
"$KINSYNC" info --json "$T/cut.mkv" > "$T/cut.json" || true
check cut_truncated "$(jq -r .truncated "$T/cut.json")" true
check cut_clusters "$(jq -r .clusters "$T/cut.json")" 1
"$KINSYNC" repair "$T/cut.mkv" -o "$T/fixed.mkv" > /dev/null
check repaired_complete "$(jq -r .complete < <("$KINSYNC" info --json "$T/fixed.mkv"))" true
if mkvinfo "$T/fixed.mkv" 2>&1 | grep -iE "warning|error"; then echo "FAIL mkvinfo complains"; fail=1; fi
exit $fail
