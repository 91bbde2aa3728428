"""ctypes declarations of the C library (libkinsync-sim, which loads libkinsync).

Only what the package uses is declared. Struct layouts mirror the public headers named beside
each class; the tests compare them, and the constants below, with the compiler's
(tests/python/struct_layout.c, run by tests/python/test_python.sh): a field added to a header must
be added here too.
"""
import ctypes
import ctypes.util
import os

c_char_p, c_int, c_void_p, c_double, c_bool = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_double, ctypes.c_bool
c_uint32, c_uint64, c_size_t, c_float = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t, ctypes.c_float

SONAME = "libkinsync-sim.so.0.1"


def _load():
    tried = []
    env = os.environ.get("KINSYNC_LIBRARY")
    names = [env] if env else []
    names += [SONAME, ctypes.util.find_library("kinsync-sim") or "", "libkinsync-sim.so"]
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s (%s)" % (name, e))
    raise ImportError("kinsync: cannot load the C library libkinsync-sim; tried " + "; ".join(tried) +
                      ". Install it (cmake --install build) or set KINSYNC_LIBRARY to its path.")


lib = _load()
libc = ctypes.CDLL(None)
libc.free.argtypes = [c_void_p]
libc.free.restype = None


class Error(ctypes.Structure):  # kinsync/error.h ks_error
    _fields_ = [("code", c_int), ("message", ctypes.c_char * 512)]


class Image(ctypes.Structure):  # kinsync/device.h ks_image (the fields a user reads)
    _fields_ = [("format", c_int), ("width", c_int), ("height", c_int), ("stride", c_int),
                ("data", ctypes.POINTER(ctypes.c_uint8)), ("size", c_size_t), ("device_ts_us", c_uint64),
                ("system_ts_ns", c_uint64), ("exposure_us", c_uint64), ("white_balance", c_uint32),
                ("iso_speed", c_uint32)]


class Capture(ctypes.Structure):  # kinsync/device.h ks_capture
    _fields_ = [("color", ctypes.POINTER(Image)), ("depth", ctypes.POINTER(Image)), ("ir", ctypes.POINTER(Image)),
                ("temperature_c", c_float), ("refcount", c_int)]


class FuseOptions(ctypes.Structure):  # kinsync/fuse.h ks_fuse_options
    _fields_ = [("voxel_mm", c_float), ("threads", c_int), ("color", c_bool), ("color_scale", c_int),
                ("normals", c_bool), ("min_weight", c_uint32), ("table_cache_dir", c_char_p),
                ("keep_points", c_bool)]


class Cloud(ctypes.Structure):  # kinsync/fuse.h ks_cloud
    _fields_ = [("count", c_size_t), ("capacity", c_size_t), ("fields", ctypes.c_uint),
                ("x", ctypes.POINTER(c_float)), ("y", ctypes.POINTER(c_float)), ("z", ctypes.POINTER(c_float)),
                ("rgb", ctypes.POINTER(ctypes.c_uint8)),
                ("nx", ctypes.POINTER(c_float)), ("ny", ctypes.POINTER(c_float)), ("nz", ctypes.POINTER(c_float)),
                ("weight", ctypes.POINTER(c_uint32)), ("devices", ctypes.POINTER(c_uint32))]


class FuseSetInfo(ctypes.Structure):  # kinsync/fuse_sink.h ks_fuse_set_info
    _fields_ = [("present", c_int), ("depth_mask", c_uint32), ("color_mask", c_uint32),
                ("color_unpaired", c_uint32)]


class Extrinsics(ctypes.Structure):  # kinsync/calibration.h ks_extrinsics
    _fields_ = [("R", c_double * 9), ("t", c_double * 3)]


class RigPose(ctypes.Structure):  # kinsync/fuse.h ks_rig_pose
    _fields_ = [("serial", ctypes.c_char * 64), ("depth_to_rig", Extrinsics), ("color_to_rig", Extrinsics)]


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


E = ctypes.POINTER(Error)
version_string = _fn("ks_version_string", c_char_p)
status_name = _fn("ks_status_name", c_char_p, c_int)
rigrun_open = _fn("ks_rigrun_open", c_int, ctypes.POINTER(c_char_p), c_int, c_char_p, c_bool,
                  ctypes.POINTER(c_void_p), E)
rigrun_close = _fn("ks_rigrun_close", None, c_void_p)
rigrun_kind = _fn("ks_rigrun_kind", c_char_p, c_void_p)
rigrun_note = _fn("ks_rigrun_note", c_char_p, c_void_p)
rigrun_device_count = _fn("ks_rigrun_device_count", c_int, c_void_p)
rigrun_device_serial = _fn("ks_rigrun_device_serial", c_char_p, c_void_p, c_int)
rigrun_device_name = _fn("ks_rigrun_device_name", c_char_p, c_void_p, c_int)
rigrun_device_role = _fn("ks_rigrun_device_role", c_char_p, c_void_p, c_int)
rigrun_next = _fn("ks_rigrun_next", c_int, c_void_p, c_int, ctypes.POINTER(c_void_p), E)
rigrun_set_free = _fn("ks_rigrun_set_free", None, c_void_p)
rigrun_set_index = _fn("ks_rigrun_set_index", c_uint64, c_void_p)
rigrun_set_present = _fn("ks_rigrun_set_present", c_uint32, c_void_p)
rigrun_set_capture = _fn("ks_rigrun_set_capture", ctypes.POINTER(Capture), c_void_p, c_int)
rigrun_set_key_us = _fn("ks_rigrun_set_key_us", c_double, c_void_p, c_int)
rigrun_fuse_sink = _fn("ks_rigrun_fuse_sink", c_int, c_void_p, c_char_p, ctypes.POINTER(FuseOptions),
                       ctypes.POINTER(c_void_p), E)
fuse_sink_destroy = _fn("ks_fuse_sink_destroy", None, c_void_p)
fuse_sink_run = _fn("ks_fuse_sink_run", c_int, c_void_p, c_void_p, ctypes.POINTER(Cloud), c_void_p,
                    ctypes.POINTER(FuseSetInfo), E)
cloud_free = _fn("ks_cloud_free", None, ctypes.POINTER(Cloud))
image_ref = _fn("ks_image_ref", ctypes.POINTER(Image), ctypes.POINTER(Image))
image_release = _fn("ks_image_release", None, ctypes.POINTER(Image))
plan_file_json = _fn("ks_plan_file_json", c_int, c_char_p, ctypes.POINTER(c_void_p), E)
rig_poses_load = _fn("ks_rig_poses_load", c_int, c_char_p, ctypes.POINTER(ctypes.POINTER(RigPose)),
                     ctypes.POINTER(c_size_t), E)

KS_OK, KS_ETIMEOUT, KS_EEOF = 0, 6, 11
FORMAT_MJPG, FORMAT_NV12, FORMAT_YUY2, FORMAT_BGRA32, FORMAT_DEPTH16, FORMAT_IR16 = 0, 1, 2, 3, 4, 5
FORMAT_NAMES = ["MJPG", "NV12", "YUY2", "BGRA32", "DEPTH16", "IR16", "CUSTOM8", "CUSTOM16", "CUSTOM"]
CLOUD_COLOR, CLOUD_NORMALS = 1, 2
