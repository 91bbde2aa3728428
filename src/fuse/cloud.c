/* fuse/cloud.c: the point cloud container: float planes plus optional attribute arrays, grown only
 * when a frame needs more than any before; and the allocation of the fusion's big buffers. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuse/fuse_internal.h"
#include "kinsync/fuse.h"

#define HUGE_PAGE ((size_t)2 << 20)

void *ks_fuse_alloc_big(size_t bytes)
{
    if (bytes < HUGE_PAGE / 2)
        return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    size_t n = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, n);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, n, MADV_HUGEPAGE); /* advice only: without it, 4 KB pages */
#endif
    return p;
}

void *ks_fuse_realloc_big(void *p, size_t keep_bytes, size_t bytes)
{
    void *n = ks_fuse_alloc_big(bytes);
    if (!n)
        return NULL;
    if (p && keep_bytes)
        memcpy(n, p, keep_bytes < bytes ? keep_bytes : bytes);
    free(p);
    return n;
}

static int grow(void **p, size_t elem, size_t keep, size_t cap)
{
    void *n = ks_fuse_realloc_big(*p, elem * keep, elem * (cap ? cap : 1));
    if (!n)
        return -1;
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
