/* libFuzzer target: the rig parser and the whole-rig validator on arbitrary bytes. Neither may
 * crash, hang, leak or read out of bounds; a rig that loads must validate and every finding must
 * name a device in range (or -1). Seed corpus: fuzz/corpus/fuzz_rig/ (the example rigs). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinsync/rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ks_rig rig;
    ks_error err;
    if (ks_rig_load_string((const char *)data, size, "fuzz.yaml", &rig, &err) != KS_OK)
        return 0;
    ks_findings f;
    ks_findings_init(&f);
    ks_status st = ks_rig_validate(&rig, &f);
    int errors = ks_findings_count(&f, KS_SEV_ERROR);
    if ((st == KS_OK) != (errors == 0))
        abort();
    for (int i = 0; i < f.count; i++) {
        if (f.items[i].device < -1 || f.items[i].device >= rig.device_count || !f.items[i].rule[0])
            abort();
        char line[1024];
        ks_finding_format(&rig, &f.items[i], line, sizeof line);
    }
    if (rig.master < -1 || rig.master >= rig.device_count)
        abort();
    ks_findings_free(&f);
    (void)ks_rig_guard_us(&rig);
    return 0;
}
