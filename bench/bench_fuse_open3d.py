#!/usr/bin/env python3
"""Open3D on the frames of bench_fuse: per device create_from_depth_image (pinhole intrinsics; Open3D
has no Brown-Conrady unprojection) + transform into the rig frame, then voxel_down_sample(5 mm) of
the merged cloud. Prints 'open3d: <ms> ms per frame set'. Usage: bench_fuse_open3d.py DIR [REPS]."""
import os
import sys
import time

import numpy as np
import open3d as o3d

d = sys.argv[1]
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
devs = []
for i, line in enumerate(open(os.path.join(d, 'rig.txt'))):
    v = line.split()
    w, h = int(v[0]), int(v[1])
    fx, fy, cx, cy = map(float, v[2:6])
    R = np.array(list(map(float, v[6:15]))).reshape(3, 3)
    t = np.array(list(map(float, v[15:18])))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = R, t
    depth = np.fromfile(os.path.join(d, 'depth%d.u16' % i), dtype=np.uint16).reshape(h, w)
    intr = o3d.camera.PinholeCameraIntrinsic(w, h, fx, fy, cx, cy)
    devs.append((o3d.geometry.Image(depth), intr, pose))

def fuse():
    merged = o3d.geometry.PointCloud()
    for img, intr, pose in devs:
        pc = o3d.geometry.PointCloud.create_from_depth_image(img, intr, depth_scale=1.0, depth_trunc=1e6)
        pc.transform(pose)
        merged += pc
    return merged.voxel_down_sample(5.0)

out = fuse()
best = 1e9
for _ in range(reps):
    s = time.perf_counter()
    out = fuse()
    best = min(best, time.perf_counter() - s)
print('open3d: %.1f ms per frame set (%d voxels, best of %d, Open3D %s)' % (best * 1e3, len(out.points), reps,
                                                                           o3d.__version__))
