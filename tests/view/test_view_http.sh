#!/usr/bin/env bash
# The HTTP API of `kinsync view` with curl: pages and assets, 4xx for bad requests (never a crash),
# the token on control requests, POST only, the Host header check (DNS rebinding), Origin, body
# size, --read-only, and bad command lines. The rig is not started (--no-start): only the server.
set -u
. "$(dirname "$0")/../support/lib.sh"
ks_need curl
RIG="$KS_SOURCE_DIR/examples/rigs/demo-studio.yaml"
TOKEN=0123456789abcdef0123456789
tmp=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
expect() { # expect CODE WHAT curl-args...
  local want=$1 what=$2; shift 2
  local got; got=$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 10 "$@")
  if [ "$got" = "$want" ]; then echo "ok   $what ($got)"; else echo "FAIL $what: got $got, want $want: $(head -c 200 "$tmp/body")"; fail=1; fi
}
start() { # start NAME args... -> sets PORT
  local name=$1; shift
  "$KINSYNC" view --no-browser --no-start --port 0 --token $TOKEN --takes "$tmp/takes" "$@" "$RIG" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do
    PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/$name.out" 2>/dev/null | head -1 | cut -d: -f2)
    [ -n "$PORT" ] && return 0; sleep 0.1
  done
  echo "FAIL kinsync view did not print its address"; cat "$tmp/$name.err"; exit 1
}
start main
U=http://127.0.0.1:$PORT
expect 200 "the page" $U/
expect 200 "the page's script" $U/view.js
expect 200 "the state" $U/api/state
grep -q '"schema":"kinsync.view/1"' "$tmp/body" && echo "ok   state is kinsync.view/1" || { echo "FAIL state schema"; fail=1; }
if [ -f /usr/share/javascript/three/three.min.js ]; then expect 200 "three.js from libjs-three" $U/three/three.min.js; fi
expect 404 "unknown path" $U/nope
expect 404 "path traversal" --path-as-is $U/three/../../../../etc/passwd
expect 404 "preview of a device out of range" $U/api/preview/99/color.jpg
expect 404 "preview with a bad index" $U/api/preview/abc/color.jpg
expect 404 "preview of an unknown kind" $U/api/preview/0/x.jpg
expect 404 "preview before any frame" $U/api/preview/0/color.jpg
expect 404 "cloud before any frame" $U/api/cloud.bin
expect 414 "a very long URL" "$U/$(head -c 40000 /dev/zero | tr "\\0" a)"
expect 405 "PUT" -X PUT $U/api/state
expect 405 "control by GET" -H "X-Kinsync-Token: $TOKEN" $U/api/control/stop
expect 403 "control without the token" -X POST $U/api/control/stop
expect 403 "control with a wrong token" -X POST -H "X-Kinsync-Token: ${TOKEN}x" $U/api/control/stop
expect 403 "control with a wrong token of the right length" -X POST -H "X-Kinsync-Token: ${TOKEN%?}Z" $U/api/control/stop
expect 403 "control with a token prefix" -X POST -H "X-Kinsync-Token: ${TOKEN:0:10}" $U/api/control/stop
expect 403 "control from another origin (token-less)" -X POST -H "Origin: http://evil.example" $U/api/control/stop
expect 403 "control from another origin (with the token)" -X POST -H "Origin: http://evil.example" -H "X-Kinsync-Token: $TOKEN" $U/api/control/stop
expect 403 "foreign Host header (DNS rebinding)" -H "Host: evil.example:$PORT" $U/api/state
expect 403 "Host without the port" -H "Host: 127.0.0.1" $U/api/state
expect 403 "no Host header" -H "Host:" $U/api/state
expect 202 "control with the token" -X POST -H "X-Kinsync-Token: $TOKEN" $U/api/control/stop
expect 202 "control from the page's own origin" -X POST -H "Origin: http://127.0.0.1:$PORT" -H "X-Kinsync-Token: $TOKEN" $U/api/control/stop
expect 200 "Host localhost:PORT" -H "Host: localhost:$PORT" $U/api/state
expect 400 "record without a name" -X POST -H "X-Kinsync-Token: $TOKEN" "$U/api/control/record?seconds=2"
expect 400 "record with a path as name" -X POST -H "X-Kinsync-Token: $TOKEN" "$U/api/control/record?name=../x&seconds=2"
expect 400 "record with bad seconds" -X POST -H "X-Kinsync-Token: $TOKEN" "$U/api/control/record?name=t&seconds=-1"
expect 400 "record with seconds not a number" -X POST -H "X-Kinsync-Token: $TOKEN" "$U/api/control/record?name=t&seconds=2x"
expect 404 "unknown control action" -X POST -H "X-Kinsync-Token: $TOKEN" $U/api/control/format-disk
expect 413 "a large body" -X POST -H "X-Kinsync-Token: $TOKEN" --data-binary @<(head -c 100000 /dev/zero) $U/api/control/stop
curl -s --max-time 5 -o /dev/null -H "Content-Length: 10" -X POST --data x $U/api/control/stop 2>/dev/null  # short body
printf 'GARBAGE\r\n\r\n' > "$tmp/garbage"; curl -s --max-time 3 -o /dev/null telnet://127.0.0.1:$PORT <"$tmp/garbage" 2>/dev/null
expect 200 "still serving after the bad requests" $U/api/state
timeout 3 curl -sN $U/api/events >"$tmp/sse" 2>/dev/null
grep -q '^event: state' "$tmp/sse" && grep -q '^retry: 1000' "$tmp/sse" && echo "ok   event stream sends the state" || { echo "FAIL event stream"; fail=1; }
# read-only
start ro --read-only
expect 403 "read-only refuses control even with the token" -X POST -H "X-Kinsync-Token: $TOKEN" http://127.0.0.1:$PORT/api/control/start
# bad command lines
"$KINSYNC" view --no-browser --listen not-an-ip "$RIG" >/dev/null 2>"$tmp/e1"; rc=$?
[ $rc = 2 ] && grep -q "IPv4" "$tmp/e1" && echo "ok   bad --listen: exit 2, says IPv4" || { echo "FAIL bad --listen: rc $rc $(cat "$tmp/e1")"; fail=1; }
"$KINSYNC" view --no-browser --port 70000 "$RIG" >/dev/null 2>"$tmp/e2"; rc=$?
[ $rc = 2 ] && echo "ok   bad --port: exit 2" || { echo "FAIL bad --port: rc $rc"; fail=1; }
"$KINSYNC" view --no-browser --token short "$RIG" >/dev/null 2>"$tmp/e3"; rc=$?
[ $rc = 2 ] && echo "ok   short --token: exit 2" || { echo "FAIL short token: rc $rc"; fail=1; }
"$KINSYNC" view --no-browser --port $PORT --no-start "$RIG" >/dev/null 2>"$tmp/e4"; rc=$?
[ $rc = 1 ] && grep -q "port" "$tmp/e4" && echo "ok   port in use: exit 1, names it" || { echo "FAIL port in use: rc $rc $(cat "$tmp/e4")"; fail=1; }
"$KINSYNC" view --help | grep -q -- "--read-only" && echo "ok   --help" || { echo "FAIL --help"; fail=1; }
# The cloud's colours, with the rig streaming: from the colour cameras (default) or one per device.
# A point coloured by device is its palette colour shaded by distance (sink.c); a camera-coloured
# cloud must not look like that, and its header says which it is.
cloud_colors() { # cloud_colors NAME args... -> prints "flags palette-fraction points"
  local name=$1; shift
  "$KINSYNC" view --no-browser --port 0 --token $TOKEN --takes "$tmp/takes" --seconds 300 "$@" "$RIG" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$!; pids+=($pid); local port=""
  for _ in $(seq 100); do
    port=$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/$name.out" 2>/dev/null | head -1 | cut -d: -f2)
    [ -n "$port" ] && break; sleep 0.1
  done
  for _ in $(seq 1200); do # the first cloud: seconds, minutes under a sanitizer on a loaded machine
    [ "$(curl -s -o "$tmp/$name.bin" -w '%{http_code}' --max-time 5 http://127.0.0.1:$port/api/cloud.bin)" = 200 ] && break
    sleep 0.1
  done
  kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null
  python3 - "$tmp/$name.bin" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
if len(b) < 16 or b[:4] != b'KSPC':
    print("0 1 0"); sys.exit()
n, devs, flags = struct.unpack_from('<III', b, 4)
rgb = b[16 + 12 * n:16 + 15 * n]
pal = [(0x4e, 0xa8, 0xff), (0xff, 0x9f, 0x43), (0x5c, 0xd8, 0x7a), (0xf2, 0x6d, 0x8f),
       (0xb4, 0x8c, 0xff), (0xf5, 0xd7, 0x4a), (0x45, 0xd6, 0xd0), (0xe0, 0xe0, 0xe0)]
def shaded(c):  # c == (uint8)(p * shade) per channel for one palette colour p and one shade in [0.65, 1]
    for p in pal:
        lo = max([0.65] + [c[j] / p[j] for j in range(3)]) - 1e-6
        hi = min([1.0 + 1e-6] + [(c[j] + 1) / p[j] for j in range(3)])
        if lo < hi:
            return True
    return False
k = sum(shaded(rgb[3 * i:3 * i + 3]) for i in range(0, n, 7))
print(flags, round(k / max(1, len(range(0, n, 7))), 3), n)
PY
}
read -r f frac npts < <(cloud_colors cam)
if [ "$npts" -gt 1000 ] && [ $((f & 2)) = 2 ] && python3 -c "import sys; sys.exit(not $frac < 0.2)"; then
  echo "ok   cloud coloured by the colour cameras ($npts points, flag 2, $frac of them device-palette shaped)"
else echo "FAIL cloud colours from the cameras: flags $f, palette fraction $frac, $npts points"; cat "$tmp/cam.err"; fail=1; fi
read -r f frac npts < <(cloud_colors dev --cloud-color device)
if [ "$npts" -gt 1000 ] && [ $((f & 2)) = 0 ] && python3 -c "import sys; sys.exit(not $frac > 0.99)"; then
  echo "ok   --cloud-color device: one colour per device ($frac palette shaped)"
else echo "FAIL --cloud-color device: flags $f, palette fraction $frac, $npts points"; fail=1; fi
"$KINSYNC" view --no-browser --cloud-color rainbow "$RIG" >/dev/null 2>"$tmp/e5"; rc=$?
[ $rc = 2 ] && grep -q "camera or device" "$tmp/e5" && echo "ok   bad --cloud-color: exit 2" || { echo "FAIL bad --cloud-color: rc $rc"; fail=1; }
# Ctrl-C ends it cleanly
kill -INT "${pids[0]}"; wait "${pids[0]}"; rc=$?
[ $rc = 0 ] && grep -q "refused" "$tmp/main.out" && echo "ok   Ctrl-C: exit 0 with the request summary" || { echo "FAIL Ctrl-C: rc $rc"; fail=1; }
[ $fail = 0 ] && echo PASS
exit $fail
