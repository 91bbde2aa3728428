#!/usr/bin/env python3
"""Open3D on the frames of bench_fuse, on the same points: Open3D has no Brown-Conrady unprojection,
so every device's depth becomes points through kinsync's unprojection table (rays x, y per pixel,
written by bench_fuse; numpy computes z * (x, y, 1)), then Open3D moves them into the rig frame,
merges them and voxel_down_sample(5 mm)s the merged cloud. The timed work is the same as kinsync's
fuse without colour and normals: unprojection, pose, merge, voxel means.

Open3D's voxel_down_sample puts its grid at the cloud's minimum corner minus half a voxel, kinsync's
at the origin; the voxel count on kinsync's grid comes from voxel_down_sample_and_trace with a
minimum bound on a multiple of the voxel size (not timed: it also builds the trace).
Prints 'open3d: <ms> ms per frame set (...)'. Usage: bench_fuse_open3d.py DIR [REPS]."""
import os
import sys
import time

import numpy as np
import open3d as o3d

VOXEL = 5.0
d = sys.argv[1]
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
devs = []
for i, line in enumerate(open(os.path.join(d, 'rig.txt'))):
    v = line.split()
    w, h = int(v[0]), int(v[1])
    R = np.array(list(map(float, v[6:15]))).reshape(3, 3)
    t = np.array(list(map(float, v[15:18])))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = R, t
    depth = np.fromfile(os.path.join(d, 'depth%d.u16' % i), dtype=np.uint16).astype(np.float64)
    rays = np.fromfile(os.path.join(d, 'rays%d.f32' % i), dtype=np.float32).reshape(2, h * w).astype(np.float64)
    devs.append((depth, rays, pose))


def points():
    merged = o3d.geometry.PointCloud()
    for depth, rays, pose in devs:
        ok = (depth > 0) & np.isfinite(rays[0])
        z = depth[ok]
        xyz = np.stack((z * rays[0][ok], z * rays[1][ok], z), axis=1)
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
        pc.transform(pose)
        merged += pc
    return merged


def fuse():
    return points().voxel_down_sample(VOXEL)


out = fuse()
best = best_vox = 1e9
for _ in range(reps):
    s = time.perf_counter()
    merged = points()
    m = time.perf_counter()
    out = merged.voxel_down_sample(VOXEL)
    e = time.perf_counter()
    best = min(best, e - s)
    best_vox = min(best_vox, e - m)
lo = np.floor(merged.get_min_bound() / VOXEL) * VOXEL - VOXEL
hi = merged.get_max_bound() + VOXEL
aligned = merged.voxel_down_sample_and_trace(VOXEL, lo, hi)[0]
print('open3d: %.1f ms per frame set (voxel_down_sample alone %.1f ms; %d points -> %d voxels on its own grid, '
      '%d on kinsync\'s; best of %d, Open3D %s)' % (best * 1e3, best_vox * 1e3, len(merged.points), len(out.points),
                                                 len(aligned.points), reps, o3d.__version__))
print('open3d-voxels-on-kinsync-grid: %d' % len(aligned.points))
