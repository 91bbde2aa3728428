/* device/sim/sim_internal.h: the simulated world shared by the simulator's files.
 * sim_world.c: events, clocks, sync, faults, queues and the backend ops;
 * sim_render.c: scene and images; sim_config.c: the `simulation:` section. */
#ifndef KS_DEVICE_SIM_INTERNAL_H
#define KS_DEVICE_SIM_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "kinsync/calibration.h"
#include "kinsync/device.h"
#include "kinsync/rig.h"
#include "kinsync/sim.h"

#define SIM_LASER_RING 16
#define SIM_MAX_INTERFERERS 8
#define SIM_MAX_HOSTS KS_RIG_MAX_DEVICES

/* Reference-counted pixel buffer shared by images (static renders are handed out without copies). */
typedef struct sim_buf {
    int refcount;
    size_t size;         /* bytes in use (an MJPEG frame is shorter than its buffer) */
    size_t alloc;        /* bytes allocated */
    uint8_t *data;
} sim_buf;

sim_buf *sim_buf_new(size_t size);          /* zeroed */
sim_buf *sim_buf_new_uninit(size_t size);   /* contents undefined (recycled): for buffers written in full */
sim_buf *sim_buf_ref(sim_buf *b);
void sim_buf_unref(sim_buf *b);
/* Image that holds a reference to b (taken here). */
ks_image *sim_buf_image(sim_buf *b, ks_image_format fmt, int w, int h, int stride);

/* One capture between its sync instant and the host. */
typedef struct sim_frame {
    int device;
    uint64_t gen;
    ks_sim_frame_truth truth;
    bool has_color, has_depth, has_ir;
    bool bad;                            /* BAD_FRAMES fault: deliver invalid content */
    uint64_t color_ts_us, depth_ts_us;   /* device clock */
    uint64_t system_ts_ns;
    uint64_t depth_exposure_us;
    double gain;                         /* colour brightness factor (scene brightness x exposure) */
    int n_interf;
    int interf_dev[SIM_MAX_INTERFERERS];
    int interf_pulses[SIM_MAX_INTERFERERS];   /* pulse pairs that overlapped */
    double interf_share[SIM_MAX_INTERFERERS]; /* overlapping pulse time / this capture's pulse time */
    ks_depth_mode interf_mode[SIM_MAX_INTERFERERS];
    int pulses;                          /* laser pulses of this capture */
    ks_depth_mode depth_mode;            /* configuration when the capture was taken */
    ks_color_resolution color_res;
    ks_image_format color_format;
    unsigned streams;                    /* KS_STREAM_* the host reads (0: all) when it was formed */
    uint64_t deliver_ns;
    struct sim_frame *next;              /* stall buffer list */
} sim_frame;

typedef struct sim_laser {
    uint64_t start_ns;
    uint64_t pitch_ns, width_ns;
    int pulses;
} sim_laser;

typedef struct sim_render_dev sim_render_dev;
typedef struct sim_world sim_world;

typedef struct sim_dev {
    sim_world *w;
    int index;
    int host, controller;
    char *calib_json;
    bool opened, streaming, disconnected;
    unsigned streams;                    /* ks_device_set_streams: KS_STREAM_* read (0: all, as at open) */
    ks_device_config cfg;
    uint64_t gen;
    /* oscillator */
    double offset_us, drift_ppm, jitter_us, rate_own;
    /* device clock: device_us = offset_us + (t - zero_ns)/1000 * clk_rate */
    uint64_t zero_ns;
    double clk_rate;
    bool zeroed;
    int64_t zero_pulse;
    uint64_t armed_ns;
    uint64_t arm_at_ns;      /* > 0: the next start arms at this virtual time (multi-host sim, ks_sim_arm_at) */
    /* own frame ticks (master / standalone) */
    uint64_t tick0_ns;
    double period_ns;
    bool triggered;          /* follows the external trigger */
    /* colour controls */
    ks_control_mode ctl_mode[KS_CONTROL_COUNT];
    int32_t ctl_value[KS_CONTROL_COUNT];
    bool disturb_next;
    int drop_remaining;
    int bad_remaining;       /* BAD_FRAMES fault: captures still to deliver with invalid content */
    int exp_shift_left;      /* SDK #471: captures still shifted after an exposure write */
    int startup_drops;
    double bright_phase, bright_period_s;
    /* queues */
    sim_frame **queue;
    int q_head, q_count;
    sim_frame *stall_head;
    int stall_count;
    pthread_t reader;
    bool has_reader;
    double reader_wall;      /* wall time of the last get_capture */
    /* laser windows */
    sim_laser laser[SIM_LASER_RING];
    int laser_next;
    /* drop probabilities from host limits */
    double p_usb, p_usbfs;
    /* IMU */
    bool imu_running;
    uint64_t imu_next_ns;
    uint64_t imu_dropped;
    uint64_t last_pulse_ns;   /* when the last accepted sync pulse arrived */
    double depth_to_accel[9], depth_to_gyro[9];   /* rotations from the device's calibration */
    double acc_bias[3], gyro_bias[3];             /* per device, drawn from the seed and serial */
    bool jacks_unknown;      /* fault jacks-unknown: get_jacks reports supported = false */
    bool free_run;           /* a subordinate streaming on its own clock after its Sync In cable was pulled */
    uint64_t free_runs;      /* free-run episodes (a new one invalidates the old ticks) */
    /* bookkeeping */
    uint64_t sequence;
    ks_sim_device_stats stats;
    ks_sim_frame_truth last_truth;
    bool has_last_truth;
    char reason[256];
    sim_render_dev *render;
    double pose_R[9], pose_t[3];   /* depth camera -> world */
} sim_dev;

typedef struct sim_host {
    char name[KS_NAME_MAX];
    double offset_ns, rate;
    bool stalled;
    uint64_t stall_end_ns;
} sim_host;

typedef struct sim_event sim_event;

/* Scene description used by the renderer (read-only after creation, except the board texture). */
typedef struct sim_scene {
    int object_count;
    ks_sim_object objects[KS_SIM_MAX_OBJECTS + 8];
    double bound[KS_SIM_MAX_OBJECTS + 8][4]; /* per box: centre and squared radius of a sphere around it */
    bool room;
    double room_half[2], room_height;
    bool board;
    double board_w, board_h;
    int key_count;
    ks_sim_board_key keys[KS_SIM_MAX_BOARD_KEYS];
    uint8_t *tex;
    int tex_w, tex_h;
    pthread_mutex_t tex_mu;
    uint64_t tex_version;
} sim_scene;

struct sim_world {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    ks_rig rig;
    ks_sim_config cfg;
    uint64_t now_ns;
    uint64_t rng;
    double wall0;           /* paced mode: wall time at virtual 0 */
    sim_event *heap;
    int heap_n, heap_cap;
    uint64_t seq;
    int host_count;
    sim_host hosts[SIM_MAX_HOSTS];
    int controller_count;
    sim_dev devs[KS_RIG_MAX_DEVICES];
    bool cable_unplugged[KS_RIG_MAX_CABLES];
    bool cable_wrong_jack[KS_RIG_MAX_CABLES]; /* Sync Out to Sync Out (fault wrong-jack) */
    double trigger_hz;      /* actual generator frequency */
    bool trigger_electrical_ok;
    char trigger_reason[200];
    bool trigger_stopped;   /* TRIGGER_STOP fault in effect */
    double trigger_stop_ms;
    uint64_t lag_ns;        /* interference settles this long after a depth window ends */
    sim_scene scene;
};

/* sim_render.c */
void sim_scene_init(sim_scene *sc, const ks_sim_config *cfg, const ks_rig *rig);
void sim_scene_free(sim_scene *sc);
void sim_board_pose(const sim_scene *sc, uint64_t t_ns, double R[9], double t[3]);
double sim_scene_distance(const sim_scene *sc, const double p[3], uint64_t t_ns);
void sim_render_free(sim_render_dev *r);
/* Builds the images of frame f (outside the world lock). Fills the capture's images. */
ks_status sim_render_capture(sim_world *w, sim_frame *f, ks_capture *cap, ks_error *err);
/* Default device pose (ring) and look-at helper. */
void sim_pose_look_at(const double pos[3], const double look[3], double roll_deg, double R[9], double t[3]);

/* sim_world.c helpers used by the renderer */
double sim_rand_normal(uint64_t *state);
uint64_t sim_rand_u64(uint64_t *state);

/* An AprilGrid board description rasterized for the simulated board (sim_board.c). */
typedef struct sim_texture {
    uint8_t *pixels;       /* w x h grey, row 0 at the board's -y edge */
    int w, h;
    double width_mm, height_mm;
} sim_texture;
ks_status sim_aprilgrid_texture(const char *board_path, sim_texture *out, ks_error *err);

#endif
