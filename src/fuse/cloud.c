/* fuse/cloud.c: the point cloud container: float planes plus optional attribute arrays, grown only
 * when a frame needs more than any before. */
#include <stdlib.h>
#include <string.h>

#include "kinsync/fuse.h"

static int grow(void **p, size_t elem, size_t keep, size_t cap)
{
    void *n = realloc(*p, elem * (cap ? cap : 1));
    if (!n)
        return -1;
    (void)keep;
    *p = n;
    return 0;
}

ks_status ks_cloud_reserve(ks_cloud *c, size_t n, unsigned fields, ks_error *err)
{
    if (!c)
        return ks_error_set(err, KS_EINVAL, "cloud: no cloud given");
    unsigned want = fields | c->fields;
    if (n <= c->capacity && want == c->fields)
        return KS_OK;
    size_t cap = n > c->capacity ? n + n / 4 : c->capacity;
    int bad = 0;
    bad |= grow((void **)&c->x, sizeof(float), c->count, cap);
    bad |= grow((void **)&c->y, sizeof(float), c->count, cap);
    bad |= grow((void **)&c->z, sizeof(float), c->count, cap);
    if (want & KS_CLOUD_COLOR)
        bad |= grow((void **)&c->rgb, 3, c->count, cap);
    if (want & KS_CLOUD_NORMALS) {
        bad |= grow((void **)&c->nx, sizeof(float), c->count, cap);
        bad |= grow((void **)&c->ny, sizeof(float), c->count, cap);
        bad |= grow((void **)&c->nz, sizeof(float), c->count, cap);
    }
    if (want & KS_CLOUD_WEIGHT)
        bad |= grow((void **)&c->weight, sizeof(uint32_t), c->count, cap);
    if (want & KS_CLOUD_DEVICES)
        bad |= grow((void **)&c->devices, sizeof(uint32_t), c->count, cap);
    if (bad)
        return ks_error_set(err, KS_ENOMEM, "cloud: out of memory for %zu points", n);
    c->capacity = cap;
    c->fields = want;
    return KS_OK;
}

void ks_cloud_free(ks_cloud *c)
{
    if (!c)
        return;
    free(c->x);
    free(c->y);
    free(c->z);
    free(c->rgb);
    free(c->nx);
    free(c->ny);
    free(c->nz);
    free(c->weight);
    free(c->devices);
    memset(c, 0, sizeof *c);
}
