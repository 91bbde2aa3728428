/* Growing arrays (util/grow.h). */
#include "util/grow.h"

#include <stdint.h>
#include <stdlib.h>

bool ks_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap < 16 ? 16 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return false;
        ncap *= 2;
    }
    if (elem && ncap > SIZE_MAX / elem)
        return false;
    void *n = realloc(*p, ncap * elem);
    if (!n)
        return false;
    *p = n;
    *cap = ncap;
    return true;
}
