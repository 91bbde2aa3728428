/* kinsync/rig.h: the rig model. A rig is the devices, the cables between their sync jacks, an
 * optional external trigger, one camera configuration for all, one manual exposure, and what the
 * plan should aim for. It is read from a YAML file a person writes (docs/rig-file.md).
 *
 * Lifecycle: ks_rig_load() parses a file into a caller-owned ks_rig (plain data, no heap), then
 * ks_rig_validate() checks every rule for the whole rig at once and derives roles and topology.
 * Findings are collected, never stopped at the first. */
#ifndef KINSYNC_RIG_H
#define KINSYNC_RIG_H

#include <stdbool.h>
#include <stddef.h>

#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KS_RIG_MAX_DEVICES 32
#define KS_RIG_MAX_CABLES 64
#define KS_NAME_MAX 64
#define KS_SERIAL_MAX 32

typedef enum ks_role {
    KS_ROLE_AUTO = 0,     /* derive from the cables */
    KS_ROLE_STANDALONE,
    KS_ROLE_MASTER,
    KS_ROLE_SUBORDINATE,
    KS_ROLE_COUNT
} ks_role;

typedef enum ks_topology {
    KS_TOPOLOGY_UNKNOWN = 0,
    KS_TOPOLOGY_STANDALONE,   /* one device, no cables */
    KS_TOPOLOGY_DAISY_CHAIN,  /* master -> sub -> sub ... */
    KS_TOPOLOGY_STAR,         /* master's Sync Out split to up to 2 subordinates */
    KS_TOPOLOGY_COUNT
} ks_topology;

typedef enum ks_aim {
    KS_AIM_SIMULTANEOUS = 0,  /* all color within 100 us, lasers staggered */
    KS_AIM_INTERLEAVED,       /* captures spread over the frame period: effective N x fps */
    KS_AIM_COUNT
} ks_aim;

typedef struct ks_rig_device {
    char serial[KS_SERIAL_MAX];
    char name[KS_NAME_MAX];     /* defaults to the serial */
    char host[KS_NAME_MAX];     /* defaults to "localhost" */
    ks_role role;               /* as declared (KS_ROLE_AUTO if not given) */
    ks_role derived_role;       /* after validation: what the cables make it */
    char firmware[KS_NAME_MAX]; /* optional declared firmware ("1.6.110079014"), "" if not given */
    char usb_controller[KS_NAME_MAX]; /* optional, e.g. "0000:00:14.0"; "" if unknown */
    int group;                  /* interference group; devices in different groups never see each other's laser; default 0 */
    int line;                   /* line in the rig file, 0 if built in code */
    /* (added) delays chosen by hand (subordinate_delay_us, depth_delay_us, or imported from a
     * k4arecorder command line under `recorder:`); `kinsync plan` audits them (docs/plan.md) */
    bool has_delays;
    long long subordinate_delay_usec;
    long long depth_delay_usec;
    int delays_line;
} ks_rig_device;

typedef struct ks_rig_cable {
    int from;          /* device index whose Sync Out the cable leaves */
    int to;            /* device index whose Sync In the cable enters */
    double length_m;   /* 0 if not given */
    bool splitter;     /* leaves through a headphone splitter on `from` (star wiring) */
    int line;
} ks_rig_cable;

typedef struct ks_rig_trigger {
    bool present;
    double frequency_hz;
    double pulse_width_us;
    double voltage_v;
    double drive_ma;
    int to;            /* device index whose Sync In the trigger feeds; -1 when the file does not say
                        * (ks_rig_validate then sets it to the device at the root of the cables) */
    int line;
} ks_rig_trigger;

typedef struct ks_rig_camera {
    ks_color_resolution color_resolution;
    ks_image_format color_format;
    ks_depth_mode depth_mode;
    ks_fps fps;
    bool synchronized_images_only;
    bool imu;
    int line;
} ks_rig_camera;

typedef struct ks_rig_exposure {
    bool manual;         /* false: auto exposure (warned against) */
    int exposure_us;     /* requested; the device rounds up to its table */
    ks_powerline powerline;
    int line;
} ks_rig_exposure;

typedef struct ks_rig {
    char name[KS_NAME_MAX];
    char path[512];                  /* file it was loaded from, "" if built in code */
    int device_count;
    ks_rig_device devices[KS_RIG_MAX_DEVICES];
    int cable_count;
    ks_rig_cable cables[KS_RIG_MAX_CABLES];
    ks_rig_trigger trigger;
    ks_rig_camera camera;
    ks_rig_exposure exposure;
    ks_ts_convention ts_convention;
    ks_aim aim;
    int guard_us;                    /* laser guard between pulse starts; 0 = the table's default */
    bool has_simulation;             /* the file has a `simulation:` section (read by the simulator) */
    /* derived by ks_rig_validate */
    ks_topology topology;
    int master;                      /* device index of the master, -1 if none */
    int plan_line;                   /* line of the `plan:` section, 0 if absent */
    char source[256];                /* name used in messages: the path, or the name given to
                                      * ks_rig_load_string; "" if built in code */
    char guard_option[32];           /* (added) guard_us came from a command-line option of this
                                      * name (e.g. "--guard"), not from plan.guard_us; "" if not */
} ks_rig;

/* Fills *rig with defaults: no devices, 720P MJPG + NFOV_UNBINNED at 30 fps, manual 8330 us at 60 Hz,
 * mid-exposure timestamp convention (the SDK's), simultaneous aim, default guard. */
void ks_rig_init(ks_rig *rig);

/* Parses a rig file. Bad YAML, unknown keys, wrong types and out-of-range values fail with
 * KS_EPARSE and a message "FILE:LINE: problem; fix". *rig is fully written only on success. */
ks_status ks_rig_load(const char *path, ks_rig *rig, ks_error *err);
/* Same from a buffer; `name` is used in messages in place of the file name (and kept in rig->source;
 * rig->path stays "", and the rig's default name is `name` without directory and extension). */
ks_status ks_rig_load_string(const char *text, size_t len, const char *name, ks_rig *rig, ks_error *err);

typedef enum ks_severity { KS_SEV_INFO = 0, KS_SEV_WARNING, KS_SEV_ERROR } ks_severity;

typedef struct ks_finding {
    ks_severity severity;
    char rule[48];        /* stable rule id, e.g. "daisy-chain-length" (docs/rules.md lists them) */
    int device;           /* device index concerned, -1 for the whole rig */
    int line;             /* line in the rig file, 0 if unknown */
    char message[256];    /* what is wrong, naming the device(s) */
    char fix[256];        /* what to do */
} ks_finding;

typedef struct ks_findings {
    int count;
    int capacity;
    ks_finding *items;    /* heap; free with ks_findings_free */
} ks_findings;

void ks_findings_init(ks_findings *f);
void ks_findings_free(ks_findings *f);
/* Appends a finding (message and fix are printf formats sharing the argument list is not
 * possible in C, so fix is a plain string). Returns false on allocation failure. */
bool ks_findings_add(ks_findings *f, ks_severity sev, const char *rule, int device, int line,
                     const char *fix, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int ks_findings_count(const ks_findings *f, ks_severity sev);

/* Checks every rule for the whole rig (docs/rules.md), derives derived_role, topology and master.
 * Appends to *out; returns KS_OK if no ERROR finding was added, KS_EINVAL otherwise. */
ks_status ks_rig_validate(ks_rig *rig, ks_findings *out);

/* Names. */
const char *ks_role_name(ks_role r);           /* "auto", "standalone", "master", "subordinate" */
bool ks_role_parse(const char *s, ks_role *out);
const char *ks_topology_name(ks_topology t);   /* "standalone", "daisy-chain", "star" */
const char *ks_aim_name(ks_aim a);             /* "simultaneous", "interleaved" */
bool ks_aim_parse(const char *s, ks_aim *out);
const char *ks_severity_name(ks_severity s);   /* "info", "warning", "error" */

/* Index of the device with this serial or name, -1 if none. */
int ks_rig_find_device(const ks_rig *rig, const char *serial_or_name);
/* Effective laser guard in us (rig->guard_us or the table default for the depth mode). */
int ks_rig_guard_us(const ks_rig *rig);

/* One finding as a line of text, the same in every command:
 *   "PATH:LINE: SEVERITY [RULE] MESSAGE; fix: FIX"
 * PATH is rig->source (the file, or the name given to ks_rig_load_string), else rig->name, else "rig";
 * ":LINE" is left out when the line is 0. Writes at most `size` bytes including the NUL (truncating)
 * and returns what snprintf returns. */
int ks_finding_format(const ks_rig *rig, const ks_finding *f, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
