/* util/grow.h: growing arrays. ks_grow makes room for `need` elements of `elem` bytes in *p whose
 * capacity is *cap elements, doubling (at least 16), and checks the size arithmetic for overflow.
 * On failure *p and *cap are unchanged (the old array is still valid and owned by the caller).
 *
 *   if (!ks_grow((void **)&v, &cap, n + 1, sizeof *v)) return ENOMEM;
 *   v[n++] = x;
 *
 * Internal to the library and the command. */
#ifndef KS_UTIL_GROW_H
#define KS_UTIL_GROW_H

#include <stdbool.h>
#include <stddef.h>

bool ks_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
