#!/usr/bin/env bash
# The Python package (python/kinsync): installed from the repository with Debian's pip (no index,
# no downloads) into a temporary directory, then tests/python/test_kinsync.py runs against the
# built library: frame sets of a simulated rig and of recordings, plan, rig calibration, and a
# fused cloud compared point for point with the PLY `kinsync fuse` writes for the same set.
set -u
B=${KS_BINARY_DIR:?}; SRC=${KS_SOURCE_DIR:?}; K=${KINSYNC:?}
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
  echo "SKIP: Debian's python3-numpy is not installed for $PY (scripts/setup.sh installs it)"; exit 77
fi
if [ "${KS_SANITIZE:-OFF}" = ON ]; then
  echo "SKIP: the library is built with ASan here; an uninstrumented python3 cannot load it (the plain build runs this test)"
  exit 77
fi
if [ "${KS_TSAN:-OFF}" = ON ]; then
  echo "SKIP: the library is built with ThreadSanitizer here; an uninstrumented python3 cannot load it (the plain build runs this test)"
  exit 77
fi
T=$(mktemp -d /tmp/ks-py.XXXXXX); trap 'rm -rf "$T"' EXIT
# the C layouts of the structs the package mirrors (tests/python/struct_layout.c), for test_kinsync.py
"$B/tests/py_struct_layout" > "$T/layout.txt" || { echo "FAIL: $B/tests/py_struct_layout did not run"; exit 1; }
export KS_STRUCT_LAYOUT="$T/layout.txt"
if $PY -m pip --version >/dev/null 2>&1; then
  $PY -m pip install --quiet --no-build-isolation --no-index --no-deps --target "$T/site" "$SRC/python" > "$T/pip.log" 2>&1 ||
    { cat "$T/pip.log"; echo "FAIL: pip install of python/ (Debian's pip, no downloads)"; exit 1; }
  echo "ok   pip install --no-build-isolation --no-index ./python"
  export PYTHONPATH="$T/site"
  [ -f "$T/site/kinsync/__init__.py" ] || { echo "FAIL: the package was not installed"; exit 1; }
else
  echo "SKIP: python3-pip is not installed: the package is tested from the source tree instead"
  export PYTHONPATH="$SRC/python"
fi
export KINSYNC_LIBRARY="$B/libkinsync-sim.so"
cd "$T"
# a recorded, calibrated demo rig and the command's fused cloud of its first complete set
"$K" record "$SRC/examples/rigs/demo-studio.yaml" --out rec --seconds 1.5 > rec.log 2>&1 || { cat rec.log; exit 1; }
"$K" calibrate rec/*.mkv --board "$SRC/examples/boards/aprilgrid-6x6.yaml" -o cal.json > cal.log 2>&1 || { cat cal.log; exit 1; }
"$K" fuse rec/*.mkv --calibration cal.json --out fused --voxel 10 --color --frames 1 > fuse.log 2>&1 || { cat fuse.log; exit 1; }
$PY "$SRC/tests/python/test_kinsync.py" "$SRC" "$T"; rc=$?
# the README's Python program and docs/python.md's example, as shown there (from the repository root,
# the docs example with the recordings and rig-calibration.json it makes beforehand)
awk '/^## Use the library/{u=1} u&&/^```python$/{c=1;next} c&&/^```$/{exit} c' "$SRC/README.md" > readme.py
out=$(cd "$SRC" && $PY "$T/readme.py" 2>&1)
if [ "$(echo "$out" | grep -cE '^[0-9]+ skew [0-9.]+ us')" = 5 ]; then echo "ok   the README's Python program runs as shown"
else echo "FAIL the README's Python program: $out"; rc=1; fi
awk '/^## A complete example/{u=1} u&&/^```python$/{c=1;next} c&&/^```$/{exit} c' "$SRC/docs/python.md" > example.py
mkdir -p ex/examples && cp -r "$SRC/examples/rigs" "$SRC/examples/boards" ex/examples/ && cp -r rec ex/ && cp cal.json ex/rig-calibration.json
out=$(cd ex && $PY ../example.py 2>&1)
if echo "$out" | grep -qE '^[0-9]+ points; first:' && echo "$out" | grep -q '^feasible: True'; then echo "ok   docs/python.md's example runs"
else echo "FAIL docs/python.md's example: $out"; rc=1; fi
exit $rc
