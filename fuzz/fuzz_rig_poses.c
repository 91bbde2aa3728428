/* libFuzzer target: the rig-calibration.json reader of the fusion module, and the interleaver on
 * the poses it yields. Seed corpus: fuzz/corpus/fuzz_rig_poses/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kinsync/fuse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ks_rig_pose *p = NULL;
    size_t n = 0;
    ks_error err;
    if (ks_rig_poses_parse((const char *)data, size, "fuzz", &p, &n, &err) != KS_OK)
        return 0;
    (void)ks_rig_pose_find(p, n, p[0].serial);
    ks_stream_frame in[2] = {{0, 5, NULL, {{0}, {0}}}, {(int)(n - 1), 3, NULL, {{0}, {0}}}}, out[2];
    (void)ks_interleave(in, 2, p, n, out, NULL, &err);
    free(p);
    return 0;
}
