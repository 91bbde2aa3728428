/* sim_rigs.h: rigs and started simulated devices for the simulator tests (tests/sim). */
#ifndef KS_TEST_SIM_RIGS_H
#define KS_TEST_SIM_RIGS_H

#include "kinsync/device.h"
#include "kinsync/rig.h"
#include "kinsync/sim.h"

typedef enum { SIMT_STANDALONE, SIMT_DAISY, SIMT_STAR } simt_topology;

/* n devices "SIM0000i" on localhost, 720P MJPG + NFOV_UNBINNED 30 fps, manual 8330 us; DAISY: cables
 * i -> i+1 of cable_m metres; STAR: cables 0 -> 1 and 0 -> 2 through a splitter. Validated. */
void simt_rig(ks_rig *rig, int n, simt_topology topo, double cable_m);

/* Simulator defaults for tests: the given seed, no images unless render is true, no jitter; the
 * rest as users get it, startup drops included (each device loses 0..2 captures right after it
 * starts, so devices' first captures can be a pulse or two apart: pair them with
 * simt_grab_aligned, not by their index). */
void simt_config(ks_sim_config *cfg, uint64_t seed, bool render);

/* Device configuration for device i of rig (role from derived_role), depth_delay and sub delay given. */
void simt_device_config(const ks_rig *rig, int i, ks_device_config *cfg, int32_t depth_delay_us,
                        uint32_t sub_delay_us);

typedef struct simt_run {
    ks_backend *backend;
    ks_sim *sim;
    int n;
    ks_device *dev[KS_RIG_MAX_DEVICES];
    ks_device_config cfg[KS_RIG_MAX_DEVICES];
} simt_run;

/* Opens every device and sets manual exposure; returns false (and prints) on failure. */
bool simt_open(simt_run *r, const ks_rig *rig, const ks_sim_config *cfg);
/* Starts device i with r->cfg[i]. */
bool simt_start(simt_run *r, int i);
/* Starts subordinates first, then the master (the right order). */
bool simt_start_all(simt_run *r, const ks_rig *rig);
void simt_close(simt_run *r);
/* One capture of each of the n devices idx[0..n-1] of r (devices 0..n-1 when idx is NULL), all
 * taken at the same sync pulse, and their truth: the first capture of each, then the devices
 * behind the latest pulse read on (their captures released) until all are at one pulse, as the
 * matcher pairs captures by timestamp. False (and printed) when a read fails or 100 captures
 * of one device do not reach the others. */
bool simt_grab_aligned(simt_run *r, int n, const int *idx, ks_capture **c, ks_sim_frame_truth *t, int timeout_ms);

#endif
