/* util/bigmem.h: buffers of hundreds of KB and more that are written soon after they are made
 * (point buffers, the simulator's views, lens tables).
 *
 * A fresh page is expensive on a virtual machine: each 4 KiB page written for the first time costs
 * a page fault and the hypervisor's own bookkeeping, ~10 us of CPU on the development VM (80 MB
 * touched page by page: 215 ms). Populating the pages in one system call (MADV_POPULATE_WRITE)
 * saves the faults but not the bookkeeping per page (103 ms); 2 MB transparent huge pages populated
 * at once need 512 times fewer of both (80 MB: 4-8 ms). So a buffer of 1 MB or more is aligned to
 * 2 MB, advised as huge pages and populated; a smaller one (64 KiB or more) is populated. Both are
 * advice: a kernel without them (or a sanitizer's allocator) just faults the pages in later.
 * Freed with free(). */
#ifndef KS_UTIL_BIGMEM_H
#define KS_UTIL_BIGMEM_H

#include <stddef.h>

/* `bytes` (64-byte aligned, writable up to the next multiple of 64 past `bytes`), contents
 * undefined; NULL when out of memory. */
void *ks_big_alloc(size_t bytes);
/* The same, zeroed. */
void *ks_big_calloc(size_t bytes);

#endif
