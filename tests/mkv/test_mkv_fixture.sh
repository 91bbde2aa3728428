#!/usr/bin/env bash
# Reads the real k4arecorder fixture with `kinsync info --json` and checks every track parameter,
# tag, timestamp and the calibration attachment against what mkvinfo, mkvextract and ffprobe report
# for the same file (extracted here at run time, not hard-coded). Also checks that repair of a
# cut copy of the fixture gives a file mkvinfo and ffprobe accept.
set -euo pipefail
F="$KS_FIXTURES/k4a/real-recording-nfov-720p.mkv"   # tests/data/k4a, see its README.md
for tool in mkvinfo mkvextract ffprobe python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (scripts/setup.sh installs mkvtoolnix, ffmpeg and python3)"
    exit 77
  fi
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
# JSON lookups: each JSON file is flattened once by python3 (in scripts/setup.sh; exact for
# 64-bit UIDs) into "path=value" lines (tracks.0.name, streams.1.tags.K4A_DEPTH_MODE, and tag.NAME
# for our tag list); q FILE PATH prints one value.
flat() {
  python3 -c 'import json,sys
def walk(p, v):
    if isinstance(v, dict):
        for k, x in v.items(): walk(p + [str(k)], x)
    elif isinstance(v, list):
        for i, x in enumerate(v): walk(p + [str(i)], x)
    else:
        print(".".join(p) + "=" + (json.dumps(v) if isinstance(v, (bool, type(None))) else str(v)))
d = json.load(open(sys.argv[1]))
walk([], d)
for t in d.get("tags", []) if isinstance(d, dict) else []:
    if isinstance(t, dict) and "name" in t: print("tag." + t["name"] + "=" + t["value"])' "$1" > "$1.flat"
}
q() { [ -f "$1.flat" ] || flat "$1"; grep -m1 "^$2=" "$1.flat" | cut -d= -f2-; }
tag() { q "$T/info.json" "tag.$1"; }
check() { # name got expected
  if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', expected '$3'"; fail=1; else echo "ok   $1 = $2"; fi
}

"$KINSYNC" info --json "$F" > "$T/info.json"
flat "$T/info.json"
mkvinfo -v "$F" > "$T/mkvinfo.txt"
ffprobe -v error -show_entries stream=index,codec_tag_string,width,height,start_time:stream_tags \
  -of json "$F" > "$T/ffprobe.json"

check complete "$(q "$T/info.json" complete)" true
check sdk_playback_ok "$(q "$T/info.json" sdk_playback_ok)" true
check writing_app "$(q "$T/info.json" writing_app)" \
  "$(sed -n 's/.*Writing application: \(.*\)$/\1/p' "$T/mkvinfo.txt" | head -1)"
check timecode_scale "$(q "$T/info.json" timecode_scale_ns)" \
  "$(sed -n 's/.*Timestamp scale: \([0-9]*\).*/\1/p' "$T/mkvinfo.txt" | head -1)"

# tracks: name, fourcc, size, frame duration from mkvinfo; uids from mkvinfo
sed -n '/^|+ Tracks/,/^|+ Attachments/p' "$T/mkvinfo.txt" > "$T/tracks.txt"
mapfile -t names < <(sed -n 's/.*+ Name: \(.*\)$/\1/p' "$T/tracks.txt")
mapfile -t uids < <(sed -n 's/.*+ Track UID: \([0-9]*\).*/\1/p' "$T/tracks.txt")
mapfile -t durs < <(sed -n 's/.*Default duration: 00:00:\([0-9.]*\) .*/\1/p' "$T/mkvinfo.txt")
check track_count "$(grep -c '^tracks\.[0-9]*\.number=' "$T/info.json.flat")" "${#names[@]}"
for i in "${!names[@]}"; do
  check "track$i.name" "$(q "$T/info.json" "tracks.$i.name")" "${names[$i]}"
  check "track$i.uid" "$(q "$T/info.json" "tracks.$i.uid")" "${uids[$i]}"
done
for i in 0 1 2; do
  check "track$i.fourcc" "$(q "$T/info.json" "tracks.$i.fourcc")" \
    "$(q "$T/ffprobe.json" "streams.$i.codec_tag_string")"
  check "track$i.width" "$(q "$T/info.json" "tracks.$i.width")" "$(q "$T/ffprobe.json" "streams.$i.width")"
  check "track$i.height" "$(q "$T/info.json" "tracks.$i.height")" "$(q "$T/ffprobe.json" "streams.$i.height")"
  got=$(q "$T/info.json" "tracks.$i.default_duration_ns")
  check "track$i.default_duration" "$(awk -v d="${durs[$i]}" 'BEGIN{printf "%d", d*1e9+0.5}')" "$got"
  # first device timestamp = ffprobe start_time (block time, s) + K4A_START_OFFSET_NS
  off=$(tag K4A_START_OFFSET_NS)
  st=$(q "$T/ffprobe.json" "streams.$i.start_time")
  check "track$i.first_ts_us" "$(q "$T/info.json" "tracks.$i.first_ts_us")" \
    "$(awk -v s="$st" -v o="$off" 'BEGIN{printf "%d", s*1e6 + o/1000 + 0.5}')"
done
check imu_codec "$(q "$T/info.json" tracks.3.codec)" "$(sed -n 's/.*Codec ID: \(S_.*\)$/\1/p' "$T/mkvinfo.txt")"
check start_offset_ns "$(q "$T/info.json" start_offset_us)000" \
  "$(tag K4A_START_OFFSET_NS)"

# every tag: names and values in mkvinfo's order
mkvinfo "$F" | sed -n 's/.*+ Name: \(K4A_.*\)$/\1/p' > "$T/tagnames_mkvinfo"
mkvinfo "$F" | sed -n 's/.*+ String: \(.*\)$/\1/p' > "$T/tagvalues_mkvinfo"
sed -n 's/^tags\.[0-9]*\.name=//p' "$T/info.json.flat" > "$T/tagnames_ours"
sed -n 's/^tags\.[0-9]*\.value=//p' "$T/info.json.flat" > "$T/tagvalues_ours"
check tag_names "$(md5sum < "$T/tagnames_ours")" "$(md5sum < "$T/tagnames_mkvinfo")"
check tag_values "$(md5sum < "$T/tagvalues_ours")" "$(md5sum < "$T/tagvalues_mkvinfo")"
check tag_count "$(wc -l < "$T/tagnames_ours")" 15
# the ffprobe view of the per-track tags agrees too
check color_mode "$(q "$T/ffprobe.json" "streams.0.tags.K4A_COLOR_MODE")" \
  "$(tag K4A_COLOR_MODE)"
check depth_mode "$(q "$T/ffprobe.json" "streams.1.tags.K4A_DEPTH_MODE")" \
  "$(tag K4A_DEPTH_MODE)"

# calibration attachment: size as extracted by mkvextract
mkvextract attachments "$F" "1:$T/cal.json" > /dev/null
check calibration_bytes "$(q "$T/info.json" attachments.0.bytes)" "$(stat -c %s "$T/cal.json")"
check calibration_name "$(q "$T/info.json" attachments.0.name)" calibration.json

# cut the fixture inside its big cluster (after its color and depth blocks, inside the IR block):
# the IMU cluster and the complete blocks of the cut one are read (as the SDK does; before issue 20
# only the IMU cluster), repair keeps them in a valid file
head -c 1000000 "$F" > "$T/cut.mkv"
"$KINSYNC" info --json "$T/cut.mkv" > "$T/cut.json" || true
check cut_truncated "$(q "$T/cut.json" truncated)" true
check cut_clusters "$(q "$T/cut.json" clusters)" 2
check cut_color "$(q "$T/cut.json" tracks.0.frames)" 1
check cut_depth "$(q "$T/cut.json" tracks.1.frames)" 1
check cut_ir "$(q "$T/cut.json" tracks.2.frames)" 0
"$KINSYNC" repair "$T/cut.mkv" -o "$T/fixed.mkv" > /dev/null
"$KINSYNC" info --json "$T/fixed.mkv" > "$T/fixed.json"
check repaired_complete "$(q "$T/fixed.json" complete)" true
check repaired_depth "$(q "$T/fixed.json" tracks.1.frames)" 1
if mkvinfo "$T/fixed.mkv" 2>&1 | grep -iE "warning|error"; then echo "FAIL mkvinfo complains"; fail=1; fi
exit $fail
