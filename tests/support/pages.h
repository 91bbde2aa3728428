/* tests/support/pages.h: page residency for the tests of buffers made with their pages in place
 * (util/bigmem.c, the simulator's frame slabs). */
#ifndef KS_TEST_PAGES_H
#define KS_TEST_PAGES_H

#include <stdbool.h>
#include <stddef.h>

/* Whole pages inside [p, p + n) resident in memory, by mincore; *total (may be NULL) gets how many
 * whole pages there are. */
size_t ks_test_resident_pages(const void *p, size_t n, size_t *total);
/* Whether this kernel populates pages on request (MADV_POPULATE_WRITE, Linux 5.14+). */
bool ks_test_can_populate(void);

#endif
