/* Backend selection shared by `kinsync devices` and `kinsync doctor` (cli/devices_backend.h). */
#include "cli/devices_backend.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/k4a.h"
#include "kinsync/sim.h"

int ks_cli_load_rig(const char *path, ks_rig *rig, ks_error *err)
{
    if (ks_rig_load(path, rig, err) != KS_OK)
        return KS_EXIT_USAGE;
    /* Derive roles and topology; the rules themselves are the business of the planning commands. */
    ks_findings f;
    ks_findings_init(&f);
    (void)ks_rig_validate(rig, &f);
    ks_findings_free(&f);
    return KS_EXIT_OK;
}

/* The simulator for the rig, configured by the rig file's optional `simulation:` section. */
static ks_status open_sim(const ks_rig *rig, const char *rig_path, ks_backend **out, ks_error *err)
{
    *out = NULL;
    ks_sim_config cfg;
    ks_status st = ks_sim_config_load(rig_path, rig, &cfg, err);
    if (st != KS_OK)
        return st;
    return ks_backend_open_sim(rig, &cfg, out, err);
}

int ks_cli_backend_open(const char *name, const char *rig_path, ks_cli_backend *out, ks_error *err)
{
    memset(out, 0, sizeof *out);
    if (rig_path) {
        int rc = ks_cli_load_rig(rig_path, &out->rig, err);
        if (rc != KS_EXIT_OK)
            return rc;
        out->have_rig = true;
    }
    if (!strcmp(name, "sim")) {
        if (!out->have_rig) {
            ks_error_set(err, KS_EINVAL, "--backend sim needs --rig RIG.yaml: the simulator simulates that rig");
            return KS_EXIT_USAGE;
        }
        ks_status st = open_sim(&out->rig, rig_path, &out->backend, err);
        if (st == KS_EPARSE || st == KS_EINVAL)
            return KS_EXIT_USAGE; /* the rig's simulation section or the rig itself is unusable */
        return st == KS_OK ? KS_EXIT_OK : KS_EXIT_FAIL;
    }
    ks_error k4a_err;
    ks_error_clear(&k4a_err);
    ks_status st = ks_backend_open_k4a(&out->backend, &k4a_err);
    if (!strcmp(name, "k4a")) {
        if (st != KS_OK) {
            if (err)
                *err = k4a_err;
            return KS_EXIT_FAIL;
        }
        return KS_EXIT_OK;
    }
    /* auto: real devices when there are any, else the simulator for a rig, else explain. */
    if (st == KS_OK && ks_backend_device_count(out->backend) > 0)
        return KS_EXIT_OK;
    if (out->have_rig) {
        ks_backend *sim = NULL;
        ks_error sim_err;
        if (open_sim(&out->rig, rig_path, &sim, &sim_err) == KS_OK) {
            snprintf(out->note, sizeof out->note, "%s; showing the simulated devices of %s",
                     st == KS_OK ? "no Azure Kinect attached" : "libk4a not installed", rig_path);
            ks_backend_free(out->backend);
            out->backend = sim;
            return KS_EXIT_OK;
        }
    }
    if (st != KS_OK) {
        if (err)
            *err = k4a_err;
        return KS_EXIT_FAIL;
    }
    return KS_EXIT_OK; /* k4a with zero devices: the caller explains */
}

void ks_cli_backend_close(ks_cli_backend *cb)
{
    if (!cb)
        return;
    ks_backend_free(cb->backend);
    cb->backend = NULL;
}

void ks_cli_backend_device_name(const ks_cli_backend *cb, const char *serial, char *name, size_t n)
{
    if (n)
        name[0] = '\0';
    if (!cb->have_rig)
        return;
    for (int i = 0; i < cb->rig.device_count; i++)
        if (!strcmp(cb->rig.devices[i].serial, serial)) {
            snprintf(name, n, "%s", cb->rig.devices[i].name);
            return;
        }
}
