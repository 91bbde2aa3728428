/* calib/board_family.c: family tables from libapriltag, and the tag bit layout. The module image
 * of a tag is built from the family's code and bit positions the same way libapriltag's own
 * tag renderer lays it out, so printed tags decode. */
#include "calib/board_family.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef KS_HAVE_APRILTAG
#include <apriltag/apriltag.h>
#include <apriltag/tag36h11.h>
#include <apriltag/tagStandard41h12.h>
#endif

typedef struct family_cache {
    ks_family_info info;
    uint8_t *modules; /* ncodes * total_width^2, 1 = white */
} family_cache;

static family_cache caches[KS_TAG_FAMILY_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#ifdef KS_HAVE_APRILTAG
static void build(family_cache *c, apriltag_family_t *fam)
{
    if (!fam)
        return;
    int T = fam->total_width, W = fam->width_at_border;
    c->info.total_width = T;
    c->info.border_width = W;
    c->info.ncodes = (int)fam->ncodes;
    c->info.family = fam;
    c->modules = calloc((size_t)fam->ncodes * T * T, 1);
    if (!c->modules) {
        c->info.family = NULL;
        return;
    }
    /* Layout: a 1-module ring of white around the black border square (normal border) or the
     * border square white inside a black outer ring (reversed border); data bits placed by the
     * family's bit_x/bit_y relative to the border square's corner. */
    int white_w = W + (fam->reversed_border ? 0 : 2);
    int white_start = (T - white_w) / 2;
    int border_start = (T - W) / 2;
    for (uint32_t id = 0; id < fam->ncodes; id++) {
        uint8_t *m = c->modules + (size_t)id * T * T;
        for (int i = 0; i < white_w; i++) {
            m[white_start * T + white_start + i] = 1;
            m[(white_start + white_w - 1) * T + white_start + i] = 1;
            m[(white_start + i) * T + white_start] = 1;
            m[(white_start + i) * T + white_start + white_w - 1] = 1;
        }
        uint64_t code = fam->codes[id];
        for (uint32_t b = 0; b < fam->nbits; b++)
            if (code & ((uint64_t)1 << (fam->nbits - b - 1))) {
                int x = (int)fam->bit_x[b] + border_start, y = (int)fam->bit_y[b] + border_start;
                if (x >= 0 && x < T && y >= 0 && y < T)
                    m[y * T + x] = 1;
            }
    }
}
#endif

static void init(void)
{
#ifdef KS_HAVE_APRILTAG
    build(&caches[KS_TAG_36H11], tag36h11_create());
    build(&caches[KS_TAG_STANDARD41H12], tagStandard41h12_create());
#endif
}

const ks_family_info *ks_family_get(ks_tag_family f)
{
    if ((unsigned)f >= KS_TAG_FAMILY_COUNT)
        return NULL;
    pthread_once(&once, init);
    return caches[f].info.family ? &caches[f].info : NULL;
}

bool ks_family_module_white(const ks_family_info *fi, int code_index, int mx, int my)
{
    const family_cache *c = (const family_cache *)fi; /* info is the first member */
    int T = fi->total_width;
    if (code_index < 0 || code_index >= fi->ncodes || mx < 0 || my < 0 || mx >= T || my >= T)
        return true;
    return c->modules[(size_t)code_index * T * T + my * T + mx] != 0;
}
