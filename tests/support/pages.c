/* tests/support/pages.c: see pages.h. */
#include "support/pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

size_t ks_test_resident_pages(const void *p, size_t n, size_t *total)
{
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + n) & ~(pg - 1);
    size_t np = e > a ? (size_t)((e - a) / pg) : 0, in = 0;
    unsigned char *v = malloc(np ? np : 1);
    if (v && np && mincore((void *)a, e - a, v) == 0)
        for (size_t i = 0; i < np; i++)
            in += v[i] & 1;
    free(v);
    if (total)
        *total = np;
    return in;
}

bool ks_test_can_populate(void)
{
    bool can = false;
#ifdef MADV_POPULATE_WRITE
    void *probe = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    can = probe != MAP_FAILED && madvise(probe, 65536, MADV_POPULATE_WRITE) == 0;
    if (probe != MAP_FAILED)
        munmap(probe, 65536);
#endif
    return can;
}
