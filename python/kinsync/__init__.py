"""kinsync: synchronized rigs of Azure Kinect devices from Python, over the C library (ctypes).

    import kinsync
    with kinsync.open("rig.yaml") as rig:              # the rig's simulation; backend="auto" for devices
        for fs in rig.frame_sets(10):
            for f in fs:                                # one Frame per device present in the set
                print(f.serial, f.role, f.depth_ts_us, f.depth.shape)

Images are numpy arrays over the library's own buffers (no copy); each keeps its image alive, so
arrays stay valid after the frame set is gone. See docs/python.md.
"""
import ctypes
import json
import math

import numpy as np

from . import _lib as L

__all__ = ["KinsyncError", "version", "open", "open_recordings", "Rig", "FrameSet", "Frame", "Fuser",
           "PointCloud", "plan", "read_rig_calibration"]


class KinsyncError(RuntimeError):
    """A call of the library failed; .status is its status name ("EINVAL", ...), str() its message."""

    def __init__(self, err):
        self.status = L.status_name(err.code).decode()
        super().__init__(err.message.decode(errors="replace") or self.status)


def _check(st, err):
    if st != L.KS_OK:
        raise KinsyncError(err)


def version():
    """The version of the C library loaded."""
    return L.version_string().decode()


class _ImageRef:
    """One reference to a ks_image, released when the last array over its memory goes."""

    def __init__(self, img):
        self.img = L.image_ref(img)

    def __del__(self):
        if self.img:
            L.image_release(self.img)
            self.img = None


def _array(img_p):
    """numpy view of a ks_image's pixels (no copy), or None."""
    if not img_p:
        return None
    img = img_p.contents
    if not img.data or img.size == 0:
        return None
    buf = (ctypes.c_uint8 * img.size).from_address(ctypes.addressof(img.data.contents))
    buf._ref = _ImageRef(img_p)  # keeps the image (and so buf's memory) alive as long as any view
    raw = np.frombuffer(buf, dtype=np.uint8)
    if img.format in (L.FORMAT_DEPTH16, L.FORMAT_IR16):
        rows = raw[: img.stride * img.height].reshape(img.height, img.stride)
        return rows.view(np.uint16)[:, : img.width]
    if img.format == L.FORMAT_BGRA32:
        rows = raw[: img.stride * img.height].reshape(img.height, img.stride)
        return rows[:, : img.width * 4].reshape(img.height, img.width, 4)
    return raw  # MJPG (compressed bytes), NV12, YUY2: the bytes as delivered


class Frame:
    """One device's capture in a frame set: colour, depth and IR as numpy arrays (None when the
    stream is off), their device timestamps (us) and formats, the device's serial, rig name and role,
    and key_us, the frame-set key the matcher gave it."""

    def __init__(self, rig, fs, d, cap):
        c = cap.contents
        self.device = d
        self.serial = rig.serials[d]
        self.name = rig.names[d]
        self.role = rig.roles[d]
        self.key_us = L.rigrun_set_key_us(fs, d)
        self.temperature_c = c.temperature_c
        for stream in ("color", "depth", "ir"):
            img = getattr(c, stream)
            setattr(self, stream, _array(img))
            setattr(self, stream + "_ts_us", img.contents.device_ts_us if img else None)
            setattr(self, stream + "_format", L.FORMAT_NAMES[img.contents.format] if img else None)
            setattr(self, stream + "_size", (img.contents.width, img.contents.height) if img else None)

    def __repr__(self):
        return "Frame(%s %s, depth@%s us)" % (self.serial, self.role, self.depth_ts_us)


class FrameSet:
    """A synchronized frame set: .index, .frames (list of Frame, devices present only), .present
    (device indices), .complete, .skew_us (spread of the devices' keys). Iterating gives the frames.
    The set holds its captures until close() (or garbage collection); the frames' arrays hold their
    own images and outlive it."""

    def __init__(self, rig, ptr):
        self._ptr = ptr
        self.index = L.rigrun_set_index(ptr)
        mask = L.rigrun_set_present(ptr)
        self.present = [d for d in range(rig.device_count) if mask & (1 << d)]
        self.complete = len(self.present) == rig.device_count
        self.frames = [Frame(rig, ptr, d, L.rigrun_set_capture(ptr, d)) for d in self.present]
        keys = [f.key_us for f in self.frames if not math.isnan(f.key_us)]
        self.skew_us = max(keys) - min(keys) if keys else 0.0

    def __iter__(self):
        return iter(self.frames)

    def __len__(self):
        return len(self.frames)

    def frame(self, serial):
        """The frame of the device with this serial, or None when it is missing from the set."""
        return next((f for f in self.frames if f.serial == serial), None)

    def close(self):
        if self._ptr:
            L.rigrun_set_free(self._ptr)
            self._ptr = None

    __del__ = close

    def __repr__(self):
        return "FrameSet(%d: %d devices, skew %.1f us)" % (self.index, len(self.frames), self.skew_us)


class Rig:
    """A running rig: a rig file on its devices or its simulation, or a set of recordings (one per
    device), with its session started. Use kinsync.open() / kinsync.open_recordings(). One thread
    at a time. .kind is "devices", "simulator" or "recordings"; .serials/.names/.roles per device."""

    def __init__(self, paths, backend="sim", fast=True):
        if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
            paths = [paths]
        enc = [str(p).encode() for p in paths]
        arr = (ctypes.c_char_p * len(enc))(*enc)
        err = L.Error()
        h = ctypes.c_void_p()
        _check(L.rigrun_open(arr, len(enc), backend.encode() if backend else None, fast, ctypes.byref(h),
                             ctypes.byref(err)), err)
        self._h = h
        self.kind = L.rigrun_kind(h).decode()
        self.note = L.rigrun_note(h).decode()
        self.device_count = L.rigrun_device_count(h)
        self.serials = [L.rigrun_device_serial(h, d).decode() for d in range(self.device_count)]
        self.names = [L.rigrun_device_name(h, d).decode() for d in range(self.device_count)]
        self.roles = [L.rigrun_device_role(h, d).decode() for d in range(self.device_count)]

    def next(self, timeout_ms=5000):
        """The next FrameSet; None at the end of recordings. KinsyncError on a failure or timeout."""
        if not self._h:
            raise ValueError("the rig is closed")
        err = L.Error()
        p = ctypes.c_void_p()
        st = L.rigrun_next(self._h, timeout_ms, ctypes.byref(p), ctypes.byref(err))
        if st == L.KS_EEOF:
            return None
        _check(st, err)
        return FrameSet(self, p.value)

    def frame_sets(self, count=None, timeout_ms=5000, complete_only=False):
        """Iterates frame sets (at most `count`; to the end of recordings when None)."""
        n = 0
        while count is None or n < count:
            fs = self.next(timeout_ms)
            if fs is None:
                return
            if complete_only and not fs.complete:
                fs.close()
                continue
            n += 1
            yield fs

    __iter__ = frame_sets

    def fuser(self, rig_calibration, voxel_mm=5.0, color=True, normals=False, threads=1, color_scale=1,
              min_weight=0):
        """A Fuser for this rig's frame sets with the poses of rig_calibration (the
        rig-calibration.json `kinsync calibrate` writes)."""
        return Fuser(self, rig_calibration, voxel_mm, color, normals, threads, color_scale, min_weight)

    def close(self):
        if getattr(self, "_h", None):
            L.rigrun_close(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __repr__(self):
        return "Rig(%s, %d devices)" % (self.kind, self.device_count)


def open(path, backend="sim", fast=True):
    """Opens a rig file (backend "sim": its simulation, the default; "auto": the attached devices
    when there are, else the simulation; "k4a": the devices) or recordings (a list of .mkv paths)."""
    return Rig(path, backend, fast)


def open_recordings(paths):
    """Opens recordings of one rig (one .mkv per device) as a Rig whose frame sets end with the files."""
    return Rig(list(paths), None, False)


class PointCloud:
    """A fused cloud in the rig frame, millimetres: .x .y .z (float32 arrays over the library's
    buffers), .points (N x 3 float32), .colors (N x 3 uint8 RGB or None), .normals (N x 3 or None),
    .devices_present (devices fused), .set_index."""

    def __init__(self, cloud, info, set_index):
        self._cloud = cloud
        n = cloud.count
        self.count = n

        def view(ptr, ctype, k=1):
            if not ptr or n == 0:
                return None
            buf = (ctype * (n * k)).from_address(ctypes.addressof(ptr.contents))
            buf._owner = self  # the cloud's memory lives as long as the PointCloud
            return np.frombuffer(buf, dtype=np.dtype(ctype))

        self.x, self.y, self.z = view(cloud.x, ctypes.c_float), view(cloud.y, ctypes.c_float), view(cloud.z, ctypes.c_float)
        rgb = view(cloud.rgb, ctypes.c_uint8, 3)
        self.colors = rgb.reshape(n, 3) if rgb is not None else None
        nx = view(cloud.nx, ctypes.c_float)
        self.normals = np.stack([nx, view(cloud.ny, ctypes.c_float), view(cloud.nz, ctypes.c_float)], axis=1) \
            if nx is not None else None
        self.devices_present = info.present
        self.set_index = set_index

    @property
    def points(self):
        if self.count == 0:
            return np.zeros((0, 3), np.float32)
        return np.stack([self.x, self.y, self.z], axis=1)

    def __len__(self):
        return self.count

    def to_open3d(self):
        """An open3d.geometry.PointCloud (metres are NOT applied: the points stay in millimetres).
        Needs Open3D (Debian: python3-open3d)."""
        try:
            import open3d as o3d
        except ImportError as e:
            raise ImportError("to_open3d needs Open3D (apt-get install python3-open3d)") from e
        pc = o3d.geometry.PointCloud()
        pc.points = o3d.utility.Vector3dVector(self.points.astype(np.float64))
        if self.colors is not None:
            pc.colors = o3d.utility.Vector3dVector(self.colors.astype(np.float64) / 255.0)
        if self.normals is not None:
            pc.normals = o3d.utility.Vector3dVector(self.normals.astype(np.float64))
        return pc

    def __del__(self):
        c = getattr(self, "_cloud", None)
        if c is not None:
            L.cloud_free(ctypes.byref(c))
            self._cloud = None


class Fuser:
    """Fuses frame sets of a Rig into PointClouds (the library's fuse sink: every device's depth
    model from its calibration, its pose from rig-calibration.json, colour from the same instant)."""

    def __init__(self, rig, rig_calibration, voxel_mm, color, normals, threads, color_scale, min_weight):
        self._rig = rig
        opt = L.FuseOptions(voxel_mm, threads, color, color_scale, normals, min_weight)
        err = L.Error()
        h = ctypes.c_void_p()
        _check(L.rigrun_fuse_sink(rig._h, str(rig_calibration).encode(), ctypes.byref(opt), ctypes.byref(h),
                                  ctypes.byref(err)), err)
        self._h = h

    def fuse(self, frame_set):
        """One PointCloud from a FrameSet (devices missing from the set are left out)."""
        if frame_set._ptr is None:
            raise ValueError("the frame set is closed")
        cloud = L.Cloud()
        info = L.FuseSetInfo()
        err = L.Error()
        st = L.fuse_sink_run(self._h, frame_set._ptr, ctypes.byref(cloud), None, ctypes.byref(info), ctypes.byref(err))
        if st != L.KS_OK:
            L.cloud_free(ctypes.byref(cloud))
            raise KinsyncError(err)
        return PointCloud(cloud, info, frame_set.index)

    def close(self):
        if getattr(self, "_h", None):
            L.fuse_sink_destroy(self._h)
            self._h = None

    __del__ = close


def plan(rig_file):
    """Validates and plans a rig file: the plan as `kinsync plan --json` gives it (a dict)."""
    err = L.Error()
    p = ctypes.c_void_p()
    _check(L.plan_file_json(str(rig_file).encode(), ctypes.byref(p), ctypes.byref(err)), err)
    try:
        return json.loads(ctypes.string_at(p.value).decode())
    finally:
        L.libc.free(p.value)


def _matrix(e):
    m = np.eye(4)
    m[:3, :3] = np.array(e.R[:]).reshape(3, 3)
    m[:3, 3] = e.t[:]
    return m


def read_rig_calibration(path):
    """The poses of rig-calibration.json: {serial: {"depth_to_rig": 4x4, "color_to_rig": 4x4}}
    (rig frame, millimetres)."""
    err = L.Error()
    poses = ctypes.POINTER(L.RigPose)()
    n = ctypes.c_size_t()
    _check(L.rig_poses_load(str(path).encode(), ctypes.byref(poses), ctypes.byref(n), ctypes.byref(err)), err)
    try:
        return {poses[i].serial.decode(): {"depth_to_rig": _matrix(poses[i].depth_to_rig),
                                            "color_to_rig": _matrix(poses[i].color_to_rig)} for i in range(n.value)}
    finally:
        L.libc.free(ctypes.cast(poses, ctypes.c_void_p))
