/* libFuzzer target: the `simulation:` section reader on arbitrary bytes, resolved against the rig
 * in the same bytes when that loads. Must not crash, hang, leak or read out of bounds; what it
 * accepts must be in range, and a valid rig with it must run for a moment of virtual time.
 * Seed corpus: fuzz/corpus/fuzz_sim_config/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinsync/rig.h"
#include "kinsync/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ks_rig rig;
    static ks_sim_config cfg;
    ks_error err;
    bool have_rig = ks_rig_load_string((const char *)data, size, "fuzz.yaml", &rig, &err) == KS_OK;
    if (ks_sim_config_load_string((const char *)data, size, "fuzz.yaml", have_rig ? &rig : NULL, &cfg, &err) !=
        KS_OK)
        return 0;
    if (cfg.queue_frames < 1 || cfg.fault_count < 0 || cfg.fault_count > KS_SIM_MAX_FAULTS ||
        cfg.object_count < 0 || cfg.object_count > KS_SIM_MAX_OBJECTS || cfg.board_key_count < 0 ||
        cfg.board_key_count > KS_SIM_MAX_BOARD_KEYS)
        abort();
    if (!have_rig)
        return 0;
    for (int i = 0; i < cfg.fault_count; i++) {
        const ks_sim_fault *f = &cfg.faults[i];
        if (f->device >= rig.device_count || f->cable >= rig.cable_count)
            abort();
    }
    ks_findings fi;
    ks_findings_init(&fi);
    ks_status st = ks_rig_validate(&rig, &fi);
    ks_findings_free(&fi);
    if (st != KS_OK)
        return 0;
    cfg.render_color = cfg.render_depth = false;
    cfg.mode = KS_SIM_FAST;
    ks_backend *b;
    if (ks_backend_open_sim(&rig, &cfg, &b, &err) != KS_OK)
        return 0;
    ks_sim_advance(ks_sim_from_backend(b), 200);
    ks_backend_free(b);
    return 0;
}
