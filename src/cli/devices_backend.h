/* cli/devices_backend.h: picking and opening the device backend for the commands that talk to
 * devices (devices, doctor): --backend auto|k4a|sim and an optional rig file. */
#ifndef KS_CLI_DEVICES_BACKEND_H
#define KS_CLI_DEVICES_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/rig.h"

typedef struct ks_cli_backend {
    ks_backend *backend;   /* NULL when none could be opened (err says why) */
    bool have_rig;
    ks_rig rig;
    char note[512];        /* e.g. "libk4a not found; using the simulator for rig.yaml" */
} ks_cli_backend;

/* Loads the rig (if rig_path) and opens the backend `name` ("auto", "k4a", "sim").
 * Returns KS_EXIT_OK with out->backend set; KS_EXIT_FAIL with out->backend NULL and err telling
 * why (libk4a missing, ...); KS_EXIT_USAGE for an unreadable/invalid rig file or a backend that
 * needs a rig. *out is always initialized (close it with ks_cli_backend_close). */
int ks_cli_backend_open(const char *name, const char *rig_path, ks_cli_backend *out, ks_error *err);
void ks_cli_backend_close(ks_cli_backend *cb);
/* Rig name of the device with this serial ("" if no rig or not in it). */
void ks_cli_backend_device_name(const ks_cli_backend *cb, const char *serial, char *name, size_t n);
/* Loads a rig file (ks_rig_load + ks_rig_validate findings ignored). KS_EXIT_OK or KS_EXIT_USAGE. */
int ks_cli_load_rig(const char *path, ks_rig *rig, ks_error *err);

#endif
