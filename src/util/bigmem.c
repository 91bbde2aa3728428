/* Big buffers made with their pages in place (util/bigmem.h). */
#include "util/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define SMALL_PAGE ((size_t)4096)

/* The whole pages of [p, p + n) faulted in writable, in one system call (advice only). */
static void populate(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = ((uintptr_t)p + SMALL_PAGE - 1) & ~(uintptr_t)(SMALL_PAGE - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(SMALL_PAGE - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

void *ks_big_alloc(size_t bytes)
{
    if (bytes > SIZE_MAX - HUGE_PAGE)
        return NULL;
    if (bytes < HUGE_PAGE / 2) {
        size_t n = (bytes + 63) / 64 * 64 + 64;
        void *p = aligned_alloc(64, n);
        if (p && n >= ((size_t)64 << 10))
            populate(p, n);
        return p;
    }
    size_t n = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, n);
    if (!p)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE); /* before populating: the pages come as 2 MB ones */
#endif
    populate(p, n);
    return p;
}

void *ks_big_calloc(size_t bytes)
{
    void *p = ks_big_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}
