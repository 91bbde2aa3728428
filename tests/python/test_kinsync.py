"""Checks of the kinsync Python package (run by test_python.sh with the recordings, rig-calibration
and the command's PLY in WORKDIR)."""
import glob
import os
import sys

import numpy as np

import kinsync

SRC, W = sys.argv[1], sys.argv[2]
fails = 0


def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += 0 if cond else 1


# every struct python/kinsync/_lib.py mirrors, against the compiler's layout (struct_layout.c): the
# same fields at the same offsets, and, for the structs Python allocates and hands to the library,
# the same size (the library reads and writes the whole struct); and the constants it copies
def check_layouts(path):
    import ctypes
    from kinsync import _lib as L
    allocated = {"Error", "Capture", "FuseOptions", "Cloud", "FuseSetInfo", "Extrinsics", "RigPose"}
    seen = set()
    for line in open(path):
        if line.startswith("const "):
            _, cname, value = line.split()
            check(getattr(L, cname, None) == int(value), "_lib.%s is %s, as in C" % (cname, value))
            continue
        if line.startswith("formats "):
            names = line.split()[1:]
            check(L.FORMAT_NAMES == names, "_lib.FORMAT_NAMES %s in the C enum's order %s" % (L.FORMAT_NAMES, names))
            continue
        name, size, *fields = line.split()
        cls = getattr(L, name, None)
        check(cls is not None, "_lib.%s mirrors a C struct" % name)
        if cls is None:
            continue
        seen.add(name)
        c_fields = [f.split(":")[0] for f in fields]
        c_offsets = {f.split(":")[0]: int(f.split(":")[1]) for f in fields}
        py_fields = [f[0] for f in cls._fields_]
        check(py_fields == c_fields, "_lib.%s fields %s are the C struct's %s" % (name, py_fields, c_fields))
        bad = [f for f in py_fields if f in c_offsets and getattr(cls, f).offset != c_offsets[f]]
        check(not bad, "_lib.%s field offsets match C%s" % (name, (": not " + ", ".join(
            "%s (%d, C %d)" % (f, getattr(cls, f).offset, c_offsets[f]) for f in bad)) if bad else ""))
        if name in allocated:
            check(ctypes.sizeof(cls) == int(size), "_lib.%s is %d bytes, the C struct %s" % (name, ctypes.sizeof(cls), size))
    check(seen == allocated | {"Image"}, "every mirrored struct compared (%s)" % sorted(seen))


check_layouts(os.environ["KS_STRUCT_LAYOUT"])

check(kinsync.version() == open(os.path.join(SRC, "CMakeLists.txt")).read().split("project(kinsync VERSION ")[1].split()[0],
      "version() is the project's")

# a simulated rig
with kinsync.open(os.path.join(SRC, "examples/rigs/chain-3.yaml")) as rig:
    check(rig.kind == "simulator" and rig.device_count == 3, "chain-3 opens on the simulator with 3 devices")
    check(rig.roles == ["master", "subordinate", "subordinate"], "roles %s" % rig.roles)
    sets = list(rig.frame_sets(8))
    check(len(sets) == 8 and [s.index for s in sets] == list(range(8)), "8 frame sets in order")
    full = [s for s in sets if s.complete]
    check(len(full) >= 6, "%d of 8 sets complete" % len(full))
    f = full[0].frames[1]
    check(f.serial == rig.serials[1] and f.role == "subordinate", "a frame says its serial and role")
    check(f.depth.dtype == np.uint16 and f.depth.shape == (f.depth_size[1], f.depth_size[0]), "depth %s uint16" % (f.depth.shape,))
    check(not f.depth.flags.owndata, "depth is a view of the library's image (no copy)")
    check(all(s.skew_us < 100 for s in full), "skews of complete sets < 100 us: %s" % [round(s.skew_us, 1) for s in full])
    ts = [s.frames[0].depth_ts_us for s in full]
    check(all(b > a for a, b in zip(ts, ts[1:])), "device timestamps increase")
    keep = f.depth
    for s in sets:
        s.close()
check(int(keep[keep > 0].size) > 0 and keep.shape[0] > 0, "an array outlives its set and its rig")

# plan
p = kinsync.plan(os.path.join(SRC, "examples/rigs/chain-3.yaml"))
check(p["schema"] == "kinsync.plan/1" and p["feasible"], "plan(): feasible kinsync.plan/1")
try:
    kinsync.plan(os.path.join(W, "missing.yaml"))
    check(False, "plan of a missing file raises")
except kinsync.KinsyncError as e:
    check("missing.yaml" in str(e) and e.status == "ENOTFOUND", "plan of a missing file: %s: %s" % (e.status, e))

# recordings
files = sorted(glob.glob(os.path.join(W, "rec", "*.mkv")))
cal = kinsync.read_rig_calibration(os.path.join(W, "cal.json"))
with kinsync.open_recordings(files) as rig:
    check(rig.kind == "recordings" and rig.device_count == 3, "3 recordings open as a rig")
    check(sorted(cal) == sorted(rig.serials), "read_rig_calibration: a pose per recorded serial")
    check(all(m["depth_to_rig"].shape == (4, 4) for m in cal.values()), "poses as 4x4 matrices")
    n, complete = 0, 0
    for fs in rig.frame_sets():
        n += 1
        complete += fs.complete
        for fr in fs:
            assert fr.color_format == "MJPG" and fr.color[:2].tobytes() == b"\xff\xd8", "colour is JPEG"
            assert fr.ir.dtype == np.uint16
        fs.close()
    check(n >= 15 and complete >= 15, "recordings: %d frame sets, %d complete, to the end" % (n, complete))

# fusion, compared with the command's PLY of the same (first complete) set
with kinsync.open_recordings(files) as rig:
    fu = rig.fuser(os.path.join(W, "cal.json"), voxel_mm=10, color=True)
    fs = next(rig.frame_sets(complete_only=True))
    pc = fu.fuse(fs)
    fu.close()
ply = open(os.path.join(W, "fused", "fused-000000.ply"), "rb").read()
head, body = ply.split(b"end_header\n", 1)
count = int(head.split(b"element vertex ")[1].split()[0])
props = [l.split()[-1].decode() for l in head.splitlines() if l.startswith(b"property")]
check(props == ["x", "y", "z", "red", "green", "blue"], "the command's PLY: %s" % props)
dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
v = np.frombuffer(body, dtype=dt, count=count)
# the sensor model keeps only what lies in each depth mode's mask and range: ~80 k points per set
check(len(pc) == count and count > 50000, "fused cloud: %d points, the command's PLY: %d" % (len(pc), count))
if len(pc) == count:
    a = np.column_stack([pc.points, pc.colors.astype(np.float32)])
    b = np.column_stack([v["x"], v["y"], v["z"], v["r"], v["g"], v["b"]]).astype(np.float32)
    a = a[np.lexsort(a.T[::-1])]
    b = b[np.lexsort(b.T[::-1])]
    check(np.array_equal(a, b), "every point and colour equals the command's PLY")
check(pc.colors is not None and len(np.unique(pc.colors, axis=0)) > 1000, "the cloud is coloured")
try:
    import open3d  # noqa: F401
    o3 = pc.to_open3d()
    check(len(o3.points) == len(pc) and o3.has_colors(), "to_open3d(): %d points with colours" % len(o3.points))
except ImportError:
    print("SKIP to_open3d: Open3D is not installed (python3-open3d)")

print("test_kinsync.py: %d failed" % fails)
sys.exit(1 if fails else 0)
