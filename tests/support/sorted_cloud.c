/* sorted_cloud.c: see sorted_cloud.h. */
#include "support/sorted_cloud.h"

#include <stdlib.h>

static int cmp_voxel(const void *a, const void *b)
{
    const ks_test_voxel *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    if (p->y != q->y)
        return p->y < q->y ? -1 : 1;
    return p->z < q->z ? -1 : p->z > q->z;
}

ks_test_voxel *ks_test_sorted_voxels(const ks_cloud *c)
{
    ks_test_voxel *v = calloc(c->count ? c->count : 1, sizeof *v);
    if (!v)
        abort();
    for (size_t i = 0; i < c->count; i++) {
        ks_test_voxel *o = &v[i];
        o->x = c->x[i], o->y = c->y[i], o->z = c->z[i];
        if (c->nx)
            o->nx = c->nx[i], o->ny = c->ny[i], o->nz = c->nz[i];
        if (c->weight)
            o->weight = c->weight[i];
        if (c->devices)
            o->devices = c->devices[i];
        if (c->rgb)
            o->rgb[0] = c->rgb[3 * i], o->rgb[1] = c->rgb[3 * i + 1], o->rgb[2] = c->rgb[3 * i + 2];
    }
    qsort(v, c->count, sizeof *v, cmp_voxel);
    return v;
}
