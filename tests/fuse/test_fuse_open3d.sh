#!/usr/bin/env bash
# Optional: the PLY files load in Open3D (python3-open3d) with the right counts, colors and normals.
# Skipped (exit 77, SKIP in ctest) when no Python with open3d is installed; it is not a dependency of
# the project.
set -euo pipefail
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import open3d' >/dev/null 2>&1; then py="$cand"; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: python3-open3d is not installed (apt-get install python3-open3d to run this check)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$KS_BINARY_DIR/tests/test_fuse_export" --write "$tmp"
"$py" - "$tmp" <<'PY'
import sys, os
import numpy as np
import open3d as o3d
d = sys.argv[1]
pc = o3d.io.read_point_cloud(os.path.join(d, 'full.ply'))
p = np.asarray(pc.points)
assert p.shape == (999, 3), p.shape
assert np.allclose(p[10], [10, 20, -5]), p[10]
assert pc.has_colors() and pc.has_normals()
c = np.asarray(pc.colors)
assert np.allclose(c[10] * 255, [10, 20, 30], atol=0.01), c[10]
assert np.allclose(np.asarray(pc.normals)[10], [0, 0.6, 0.8], atol=1e-6)
pc2 = o3d.io.read_point_cloud(os.path.join(d, 'xyz.ply'))
assert len(pc2.points) == 999 and not pc2.has_colors()
print('Open3D', o3d.__version__, 'reads the PLY files')
PY
