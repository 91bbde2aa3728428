/* sorted_cloud.h: a cloud's voxels in an order independent of how the cloud was produced (threads,
 * partitions, key widths), for comparing two clouds voxel by voxel (tests/fuse). */
#ifndef KS_TEST_SORTED_CLOUD_H
#define KS_TEST_SORTED_CLOUD_H

#include <stdint.h>

#include "kinsync/fuse.h"

/* One voxel with every field; a field the cloud lacks is 0. No padding (rgb[3] is always 0), so
 * two voxels can be compared with memcmp. */
typedef struct ks_test_voxel {
    float x, y, z, nx, ny, nz;
    uint32_t weight, devices;
    uint8_t rgb[4];
} ks_test_voxel;
_Static_assert(sizeof(ks_test_voxel) == 36, "ks_test_voxel has no padding: it is compared with memcmp");

/* The voxels of c sorted by x, then y, then z; malloc'd (free it), never NULL for an empty cloud. */
ks_test_voxel *ks_test_sorted_voxels(const ks_cloud *c);

#endif
