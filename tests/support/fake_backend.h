/* fake_backend.h: a small scripted device backend for the session tests (tests/session). Each
 * device produces frames from a script: timestamps on a nominal grid plus an offset, a constant
 * skew and a skew that grows per frame, drops, a stall (get_capture times out forever after N
 * frames), a disconnect (KS_ENODEV after N frames), or no signal at all. No threads of its own:
 * frames are made when get_capture is called, paced by a short real sleep so that the capture
 * threads of the session interleave like real devices. */
#ifndef KS_TEST_FAKE_BACKEND_H
#define KS_TEST_FAKE_BACKEND_H

#include <stdbool.h>

#include "kinsync/device.h"
#include "kinsync/rig.h"

#define FAKE_MAX 16

typedef struct fake_script {
    char serial[32];
    ks_version rgb, depth;       /* firmware; 0.0.0 = 1.6.110 / 1.6.79 */
    bool jacks_unsupported;
    bool no_sync_in, no_sync_out;/* override what the rig's cables say */
    double offset_us;            /* added to every device timestamp */
    double skew_us;              /* added to colour and depth timestamps */
    double skew_per_frame_us;    /* grows by this every frame */
    int drop_every;              /* frame k is lost when k % drop_every == drop_every - 1 */
    int stall_after;             /* > 0: after this many frames nothing more arrives (timeouts) */
    int disconnect_after;        /* > 0: after this many frames KS_ENODEV */
    bool no_signal;              /* never delivers */
    int depth_zero_permille;     /* invalid depth pixels per 1000 */
} fake_script;

typedef struct fake_config {
    int n;
    fake_script dev[FAKE_MAX];
    int pace_us;                 /* real sleep per get_capture; 0 = 300 */
    const ks_rig *rig;           /* jacks follow its cables when given */
    ks_ts_convention timestamps; /* instant the device timestamps name: the rig's (mid-exposure if auto or no rig) */
} fake_config;

/* Fills n devices with serials "SIM00000".. (as simt_rig names them) and defaults. */
void fake_config_init(fake_config *c, int n, const ks_rig *rig);
ks_backend *fake_backend_create(const fake_config *c);

typedef struct fake_counters {
    int starts[FAKE_MAX];        /* start_cameras calls */
    int exposure_sets[FAKE_MAX]; /* exposure writes (any time) */
    int exposure_sets_streaming[FAKE_MAX];
    int frames[FAKE_MAX];        /* delivered */
    int start_seq[FAKE_MAX];     /* 1 = started first */
} fake_counters;
void fake_backend_counters(ks_backend *b, fake_counters *out);

#endif
