/* kinsync/sim.h: the hardware simulator backend.
 *
 * One simulated world per backend: a virtual global clock (ns), an event queue (sync pulses,
 * exposures, frame deliveries, faults), a device oscillator per device, a monotonic clock per host,
 * the sync cables of the rig, the laser pulses of every depth capture and a ray-cast synthetic
 * scene. The backend implements ks_backend_ops (kinsync/device.h), so everything above the device
 * layer runs on it unchanged. docs/simulator.md says what is modelled, how, and what is not.
 *
 * Time: in KS_SIM_FAST mode virtual time advances only when a caller waits (get_capture /
 * get_imu_sample advance the world until the device has data or timeout_ms of VIRTUAL time
 * passed). In KS_SIM_PACED mode the same, but virtual time never runs ahead of the wall clock.
 * Thread safety: every function may be called from several threads (one mutex per world). */
#ifndef KINSYNC_SIM_H
#define KINSYNC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/calibration.h"
#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/rig.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_SIM_MAX_FAULTS 64
#define KS_SIM_MAX_OBJECTS 32
#define KS_SIM_MAX_BOARD_KEYS 32

typedef enum ks_sim_mode { KS_SIM_FAST = 0, KS_SIM_PACED } ks_sim_mode;

/* Per-device oscillator. */
typedef struct ks_sim_clock {
    bool set;            /* false: use the defaults (seeded) */
    double offset_us;    /* added to every device timestamp */
    double drift_ppm;    /* oscillator rate error: positive runs fast */
    double jitter_us;    /* standard deviation of the capture instant */
} ks_sim_clock;

typedef enum ks_sim_fault_kind {
    KS_SIM_FAULT_UNPLUG = 0,   /* sync cable `cable` pulled out at at_ms (back after duration_ms if > 0) */
    KS_SIM_FAULT_DISCONNECT,   /* device `device` disappears at at_ms: get_capture -> KS_ENODEV */
    KS_SIM_FAULT_DROP,         /* device `device` loses `count` captures from at_ms on */
    KS_SIM_FAULT_STALL_HOST,   /* host `host` reads nothing from at_ms for duration_ms */
    KS_SIM_FAULT_TRIGGER_STOP, /* the external trigger generator stops at at_ms (resumes after duration_ms if > 0) */
    KS_SIM_FAULT_BAD_FRAMES,   /* device `device` delivers `count` frames with invalid content from at_ms on: a
                                  truncated MJPG (pink) or blank colour and a black depth image (SDK #1227, #1404) */
    KS_SIM_FAULT_WRONG_JACK,   /* cable `cable` plugged Sync Out to Sync Out from at_ms (back right after duration_ms
                                  if > 0): its far end sits in the downstream device's Sync Out jack, so no pulse
                                  crosses it and both devices report a cable in Sync Out, none from it in Sync In */
    KS_SIM_FAULT_JACKS_UNKNOWN,/* device `device` cannot report its sync jacks from at_ms on (what kinsync reports
                                  for Orbbec's K4A wrapper, whose jack query always says "no cable"): get_jacks
                                  gives supported = false */
    KS_SIM_FAULT_KIND_COUNT
} ks_sim_fault_kind;

typedef struct ks_sim_fault {
    ks_sim_fault_kind kind;
    double at_ms;        /* virtual time since the world was created */
    double duration_ms;
    int device;          /* rig device index (DISCONNECT, DROP) */
    int cable;           /* rig cable index (UNPLUG) */
    int count;           /* DROP */
    char host[KS_NAME_MAX]; /* STALL_HOST */
    bool free_run;       /* UNPLUG: the subordinate behind the cable keeps streaming on its own clock, unsynchronized
                            (reported in Sensor SDK issue #1850), until the cable is plugged back */
} ks_sim_fault;

typedef enum ks_sim_object_kind { KS_SIM_BOX = 0, KS_SIM_SPHERE } ks_sim_object_kind;

/* Scene objects in world millimetres; the world frame has z up and the floor at z = 0. */
typedef struct ks_sim_object {
    ks_sim_object_kind kind;
    double a[3];         /* BOX: min corner; SPHERE: centre */
    double b[3];         /* BOX: max corner; SPHERE: b[0] = radius */
    double albedo;       /* 0..1 (grey level and IR reflectivity) */
    uint8_t rgb[3];      /* colour */
} ks_sim_object;

/* Calibration board pose keyframe: board centre position (mm) and orientation as a rotation
 * vector (rad) of board->world; the board lies in its local x/y plane, its normal is local +z. */
typedef struct ks_sim_board_key {
    double t_ms;
    double pos[3];
    double rotvec[3];
} ks_sim_board_key;

/* Device pose: where the depth camera is and where it looks (world mm). */
typedef struct ks_sim_pose {
    bool set;
    double position[3];
    double look_at[3];
    double roll_deg;
} ks_sim_pose;

typedef struct ks_sim_config {
    uint64_t seed;
    ks_sim_mode mode;
    ks_sim_clock clock_default;             /* drift_ppm/jitter_us/offset_us: magnitudes of the seeded defaults */
    ks_sim_clock clocks[KS_RIG_MAX_DEVICES];/* explicit per device (set = true) */
    ks_sim_pose poses[KS_RIG_MAX_DEVICES];
    double propagation_ns_per_m;            /* signal speed in the sync cable */
    double hop_delay_ns;                    /* Sync In -> Sync Out mirroring delay of a subordinate */
    double default_cable_m;                 /* for cables whose length the rig does not give */
    double usb_latency_us;                  /* frame complete -> host arrival, mean */
    double usb_jitter_us;
    double start_latency_ms;                /* start_cameras -> first frame tick / armed */
    int queue_frames;                       /* host capture queue per device; oldest dropped */
    int device_buffer_frames;               /* frames a device holds while its host stalls */
    int usbfs_mb;                           /* usbfs memory limit of every host */
    double host_drift_ppm;                  /* magnitude of the seeded host clock drifts */
    double trigger_frequency_error_ppm;     /* actual external trigger frequency = rig's * (1 + e) */
    double brightness_variation;            /* relative amplitude of the per-device scene brightness swing */
    double ring_radius_mm, ring_height_mm;  /* default device poses: a ring looking at the centre */
    char scene[32];                         /* "room" (floor, walls, boxes, spheres, board) or "empty" */
    int object_count;                       /* extra objects */
    ks_sim_object objects[KS_SIM_MAX_OBJECTS];
    bool board;                             /* the calibration board is in the scene */
    double board_width_mm, board_height_mm;
    int board_key_count;                    /* 0: default pose; 1: static; more: piecewise linear motion */
    ks_sim_board_key board_keys[KS_SIM_MAX_BOARD_KEYS];
    int fault_count;
    ks_sim_fault faults[KS_SIM_MAX_FAULTS];
    bool render_color, render_depth;        /* false: images are allocated but left black (timing-only runs) */
    double depth_noise_mm;                  /* standard deviation of extra Gaussian depth noise, 0 = none */
    bool sensor;                            /* the devices' sensor model (YAML render.sensor, default true): depth
                                               mask and operating range per mode, range- and signal-dependent
                                               noise that differs per frame, dropouts, flying pixels, IR levels
                                               and saturation, colour sensor noise; false = exact geometry */
    bool lockstep;                          /* fast mode: wait (bounded) for a reading thread instead of overflowing its queue */
    char board_aprilgrid[512];              /* board description (kinsync/board.h) painted on the board, "" = built-in
                                               pattern; the board takes the sheet's size (YAML: board.aprilgrid,
                                               relative to the rig file) */
    int startup_drop_max;                   /* each device loses 0..this many captures right after it starts */
    /* added (additive) */
    ks_ts_convention device_timestamps;     /* which instant the simulated devices' timestamps name (YAML
                                               `timestamps: seed|mid-exposure`); KS_TS_AUTO (default): the rig's
                                               convention, mid-exposure when the rig says auto */
    double exposure_write_shift_us;         /* SDK #471: colour moves this far against depth after an exposure
                                               write, even of the same value (YAML exposure_write.shift_us) */
    int exposure_write_settle_frames;       /* ... for this many captures (exposure_write.settle_frames); writes
                                               more often than that leave the offset for good */
    char view_cache_dir[1024];              /* "" (default): none; else the static depth views (rays, ray-cast
                                               scene, sensor model) are kept in files there between runs
                                               (docs/simulator.md "View cache"; `kinsync fuse` sets it to
                                               $XDG_CACHE_HOME/kinsync). The images are the same bit for bit */
} ks_sim_config;

/* Fills *cfg with the defaults (docs/simulator.md lists them). */
void ks_sim_config_init(ks_sim_config *cfg);

/* Reads the optional `simulation:` section of a rig file into *cfg (starting from the defaults).
 * A file without the section gives the defaults. Device names/serials and cables are resolved
 * against `rig` (may be NULL: then only numeric indices are accepted). Errors: KS_EPARSE/KS_EINVAL
 * with FILE:LINE, the key and the fix; *cfg is written only on success. */
ks_status ks_sim_config_load(const char *path, const ks_rig *rig, ks_sim_config *cfg, ks_error *err);
/* Same from a buffer holding a whole rig file (or only the simulation section). */
ks_status ks_sim_config_load_string(const char *text, size_t len, const char *name, const ks_rig *rig,
                                    ks_sim_config *cfg, ks_error *err);

/* Opens a simulator backend for the devices of `rig` (copied; roles come from the configuration
 * each device is started with, cables and trigger from the rig). cfg NULL = defaults. On success
 * *out owns the world; free it with ks_backend_free. */
ks_status ks_backend_open_sim(const ks_rig *rig, const ks_sim_config *cfg, ks_backend **out, ks_error *err);

/* Convenience: loads the rig file at path (ks_rig_load, then ks_rig_validate only to derive roles and
 * topology: a rig with errors is still simulated, so its failures can be shown), reads its
 * simulation section and opens the backend. `mode_override` >= 0 replaces the section's mode
 * (e.g. KS_SIM_FAST for batch commands). On success *out owns the world and, when rig_out is not
 * NULL, *rig_out is the loaded rig. */
ks_status ks_backend_open_sim_file(const char *path, int mode_override, ks_backend **out, ks_rig *rig_out,
                                   ks_error *err);

/* ---- ground truth and diagnosis (for tests, demos and `kinsync verify --explain`) ---- */

typedef struct ks_sim ks_sim;

/* The world behind a backend opened by ks_backend_open_sim, NULL for any other backend. */
ks_sim *ks_sim_from_backend(ks_backend *b);

/* The usbfs memory limit the simulated hosts have (simulation usbfs_mb), 0 when not modelled. */
int ks_sim_usbfs_mb(ks_sim *s);

/* Virtual global time of the world, ns since creation. */
uint64_t ks_sim_now_ns(ks_sim *s);
/* Advances the world by ms of virtual time (processing every event; frames queue up). */
void ks_sim_advance(ks_sim *s, double ms);

typedef struct ks_sim_frame_truth {
    uint64_t sequence;           /* per device, counts captures the device took (delivered or not) */
    uint64_t sync_ns;            /* global time of the capture's sync instant */
    uint64_t color_start_ns;     /* true global start of the colour exposure (0 if colour off) */
    uint64_t color_center_ns;
    uint64_t depth_start_ns;     /* true global start of the laser window / depth exposure */
    uint64_t depth_center_ns;
    uint64_t arrival_ns;         /* global time the frame reached the host */
    int64_t pulse_index;         /* index of the sync pulse (or tick) that triggered it */
    uint32_t color_exposure_us;
    int corrupted_pixels;        /* depth pixels damaged by another device's laser */
    int interfering_devices;     /* number of devices whose pulses overlapped this capture's */
} ks_sim_frame_truth;

/* Truth of the capture returned by the last successful get_capture on rig device `device`. */
ks_status ks_sim_last_truth(ks_sim *s, int device, ks_sim_frame_truth *out, ks_error *err);

typedef struct ks_sim_device_stats {
    uint64_t captures_taken;     /* sync instants that produced a capture */
    uint64_t delivered;          /* captures handed to get_capture */
    uint64_t dropped_queue;      /* host queue full: oldest dropped */
    uint64_t dropped_usb;        /* USB controller bandwidth exceeded */
    uint64_t dropped_usbfs;      /* usbfs memory limit of the host exceeded */
    uint64_t dropped_fault;      /* DROP faults */
    uint64_t dropped_stall;      /* host stalled and the device buffer overflowed */
    uint64_t dropped_exposure;   /* exposure changed while streaming: the next capture is lost */
    uint64_t dropped_startup;    /* first captures after start that never reached the host */
    uint64_t pulses_seen;        /* sync pulses that reached Sync In while streaming */
    uint64_t corrupted_frames;   /* depth frames with laser damage */
    uint64_t corrupted_pixels;
    int64_t zeroed_at_pulse;     /* pulse index that zeroed the clock, -1 if none yet */
    bool streaming, disconnected;
    bool waiting_for_sync;       /* streaming subordinate (or triggered master) without pulses */
    char reason[256];            /* why the device has no frames, "" when it has */
} ks_sim_device_stats;

ks_status ks_sim_device_stats_get(ks_sim *s, int device, ks_sim_device_stats *out, ks_error *err);

/* Ground-truth pose of the depth camera: depth camera -> world (mm). */
ks_status ks_sim_device_pose(ks_sim *s, int device, ks_extrinsics *depth_to_world, ks_error *err);
/* Board -> world at global time t_ns (board centre at the origin of its frame, mm). */
void ks_sim_board_pose(ks_sim *s, uint64_t t_ns, ks_extrinsics *board_to_world);
/* Distance (mm) from a world point to the nearest scene surface (static scene plus the board at t_ns). */
double ks_sim_scene_distance(ks_sim *s, const double p[3], uint64_t t_ns);
/* Host clock (CLOCK_MONOTONIC of the simulated host) at global time t_ns; host NULL = "localhost". */
uint64_t ks_sim_host_time_ns(ks_sim *s, const char *host, uint64_t t_ns);
/* Device clock now: device_us = offset_us + P + (t_ns - zero_ns) / 1000 * rate, P the frame period in us of
 * the running configuration (the clock reads one period at the instant that zeroed it). */
ks_status ks_sim_device_clock(ks_sim *s, int device, double *rate, double *offset_us, uint64_t *zero_ns,
                              ks_error *err);

/* Depth pixels of device a that device b's laser lights: a's 3-D point (static scene) lies inside b's
 * depth view and b sees it (the pixels b's laser can corrupt). Geometry only, not timing; each device
 * in the depth mode it streams, else `mode`. 0 when either has no laser (passive IR, depth off) or
 * images are not rendered (render.depth false: *pixels = -1, unknown). Builds the static renders it
 * needs (costly the first time). */
ks_status ks_sim_laser_shared(ks_sim *s, int a, int b, ks_depth_mode mode, int *pixels, ks_error *err);

/* Render work done for device `device` so far (diagnostics for tests and benches): lens ray tables
 * computed (one per camera and mode: the depth camera's per depth mode, the colour camera's per
 * colour resolution; none when images are off) and static views rendered (depth views per depth
 * mode, colour views per resolution). Each is built once and kept until the backend is freed or
 * the board texture changes (ks_sim_set_board_texture starts the counts again). pair_masks: masks of
 * the pixels of this device that another device's laser lights, computed (ks_sim_laser_shared, or a
 * frame damaged by another laser), each once per pair of views. */
typedef struct ks_sim_render_stats {
    uint64_t ray_tables;
    uint64_t depth_views;
    uint64_t color_views;
    uint64_t pair_masks;
    uint64_t views_from_cache;   /* depth views (counted in depth_views) read from view_cache_dir with their
                                    rays (not counted in ray_tables) instead of being rendered */
} ks_sim_render_stats;
ks_status ks_sim_render_stats_get(ks_sim *s, int device, ks_sim_render_stats *out, ks_error *err);

/* Replaces the board texture (8-bit grey, row-major, copied): it is stretched over the board's front
 * (row 0 along the board's -y edge, column 0 along its -x edge). NULL restores the built-in
 * AprilGrid-like pattern. Only while no simulated device streams (KS_ESTATE otherwise): cached
 * renders are dropped. */
ks_status ks_sim_set_board_texture(ks_sim *s, const uint8_t *gray, int width, int height, int stride,
                                   ks_error *err);

/* ---- one rig simulated by several processes (multi-host, docs/multi-host.md) ---- */

/* Virtual time of this world at a CLOCK_REALTIME instant (paced worlds; 0 if before creation). */
uint64_t ks_sim_virtual_from_realtime(ks_sim *s, int64_t realtime_ns);
/* The CLOCK_REALTIME instant (ns) of a simulated host's clock
 * reading (a frame's system_ts_ns on host `host`, NULL = the first host) in a paced world: the
 * simulated host clocks map back to virtual time, which the world keeps on the wall clock. */
int64_t ks_sim_realtime_from_host_ns(ks_sim *s, const char *host, uint64_t host_ns);
/* The next start_cameras of rig device `device` arms at virtual time at_ns instead of after the start
 * latency. KS_ETIMEOUT when at_ns has already passed in this world. */
ks_status ks_sim_arm_at(ks_sim *s, int device, uint64_t at_ns, ks_error *err);
/* Starts a device that streams in another process's world (e.g. the master on another host) so that
 * its sync pulses reach this world's subordinates from at_ns on. Its frames are never rendered here. */
ks_status ks_sim_start_remote(ks_sim *s, int device, const ks_device_config *cfg, uint64_t at_ns, ks_error *err);
/* Stops a device started with ks_sim_start_remote (the run on the other host ended). */
void ks_sim_stop_remote(ks_sim *s, int device);

/* Names. */
const char *ks_sim_fault_kind_name(ks_sim_fault_kind k); /* "unplug", "disconnect", "drop", "stall", "trigger-stop",
                                                           "bad-frames", "wrong-jack", "jacks-unknown" */

#ifdef __cplusplus
}
#endif
#endif
