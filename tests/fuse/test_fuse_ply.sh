#!/usr/bin/env bash
# PLY written by kinsync, read back by an independent strict parser (Python struct): header grammar,
# exact byte size, property order and a few values of the known cloud of test_fuse_export.c.
set -euo pipefail
prog="$KS_BINARY_DIR/tests/test_fuse_export"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$prog" --write "$tmp"
python3 - "$tmp" <<'PY'
import os, struct, sys
d = sys.argv[1]

def read_ply(path):
    data = open(path, 'rb').read()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    lines = data[:end].decode('ascii').split('\n')[:-1]
    assert lines[0] == 'ply', lines[0]
    assert lines[1] == 'format binary_little_endian 1.0', lines[1]
    props, count, seen_vertex, comments = [], None, False, {}
    for ln in lines[2:-1]:
        w = ln.split()
        if w[0] == 'comment':
            if len(w) > 2:
                comments[w[1]] = w[2:]
            continue
        if w[0] == 'element':
            assert w[1] == 'vertex' and not seen_vertex, ln
            seen_vertex, count = True, int(w[2])
        elif w[0] == 'property':
            assert seen_vertex and len(w) == 3 and w[1] in ('float', 'uchar', 'short', 'char'), ln
            props.append((w[1], w[2]))
        else:
            raise AssertionError('unexpected header line: ' + ln)
    assert lines[-1] == 'end_header'
    fmt = '<' + ''.join({'float': 'f', 'uchar': 'B', 'short': 'h', 'char': 'b'}[t] for t, _ in props)
    size = struct.calcsize(fmt)
    body = data[end:]
    assert len(body) == count * size, (path, len(body), count, size)
    rows = [struct.unpack_from(fmt, body, i * size) for i in range(count)]
    if path.endswith('quantized.ply'):
        return [n for _, n in props], rows, comments
    return [n for _, n in props], rows

names, rows = read_ply(os.path.join(d, 'full.ply'))
assert names == ['x', 'y', 'z', 'red', 'green', 'blue', 'nx', 'ny', 'nz'], names
assert len(rows) == 999, len(rows)  # point 500 is NaN and skipped
for i in (0, 1, 7, 499, 501, 999):
    r = rows[i if i < 500 else i - 1]
    assert r[0:3] == (float(i), 2.0 * i, -0.5 * i), (i, r)
    assert r[3:6] == (i % 256, (2 * i) % 256, (3 * i) % 256), (i, r)
    want_n = (0.0, 0.0, 0.0) if i == 7 else (0.0, struct.unpack('<f', struct.pack('<f', 0.6))[0],
                                                 struct.unpack('<f', struct.pack('<f', 0.8))[0])
    assert r[6:9] == want_n, (i, r)
names, rows = read_ply(os.path.join(d, 'xyz.ply'))
assert names == ['x', 'y', 'z'] and len(rows) == 999
names, rows = read_ply(os.path.join(d, 'color.ply'))
assert names == ['x', 'y', 'z', 'red', 'green', 'blue'] and rows[10][3:6] == (10, 20, 30)
# the quantized layout: point = origin + step * (x, y, z), normal = (nx, ny, nz) / 127
names, rows, com = read_ply(os.path.join(d, 'quantized.ply'))
assert names == ['x', 'y', 'z', 'red', 'green', 'blue', 'nx', 'ny', 'nz'], names
origin, step = [float(v) for v in com['origin_mm']], float(com['step_mm'][0])
assert len(rows) == 999 and 0 < step <= 5.0 / 64, (len(rows), step)
for i in range(1000):
    if i == 500:
        continue
    r = rows[i if i < 500 else i - 1]
    want = (float(i), 2.0 * i, -0.5 * i)
    for a in range(3):
        assert abs(origin[a] + step * r[a] - want[a]) <= step / 2 + 1e-9, (i, a, r, origin, step)
    assert r[3:6] == (i % 256, (2 * i) % 256, (3 * i) % 256), (i, r)
    assert r[6:9] == ((0, 0, 0) if i == 7 else (0, round(0.6 * 127), round(0.8 * 127))), (i, r)
assert not any('.tmp' in f for f in os.listdir(d))
print('PLY files pass the independent check')
PY
