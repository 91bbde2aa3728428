/* The simulator's frame buffers (sim_world.c "shared buffers"): a fresh NFOV unbinned depth-sized
 * block comes in a slab of 8 on 2 MB pages (768 KB apart from a 2 MB boundary), its pages in memory
 * before the first write, zeroed; the seven others are handed out next from the pool, in the slab;
 * a block released goes back to the pool and is handed out again. */
#include <stdint.h>
#include <stdlib.h>

#include "device/sim/sim_internal.h"
#include "ks_test.h"
#include "support/pages.h"

static void test_depth_blocks_in_a_slab(void)
{
    const bool can_populate = ks_test_can_populate();
    const size_t size = 640 * 576 * 2, stride = 768 << 10;
    sim_buf *b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = i ? sim_buf_new_uninit(size) : sim_buf_new(size);
        KS_CHECK(b[i] && b[i]->data);
    }
    if (!b[0] || !b[0]->data)
        return;
    uint8_t *base = b[0]->data;
    KS_CHECK_MSG(((uintptr_t)base & ((2u << 20) - 1)) == 0, "the slab at %p: not on a 2 MB boundary", (void *)base);
    size_t nonzero = 0;
    for (size_t i = 0; i < size; i++)
        nonzero += base[i] != 0;
    KS_CHECK_INT(nonzero, 0);
    /* the other seven blocks of the slab, handed out from the pool (in any order) */
    unsigned seen = 1;
    for (int i = 1; i < 8; i++) {
        if (!b[i])
            continue;
        ptrdiff_t off = b[i]->data - base;
        bool in_slab = off > 0 && off % (ptrdiff_t)stride == 0 && off / (ptrdiff_t)stride < 8;
        KS_CHECK_MSG(in_slab, "block %d at offset %td of the slab", i, off);
        if (in_slab)
            seen |= 1u << (off / (ptrdiff_t)stride);
        if (can_populate)
            KS_CHECK_MSG(ks_test_resident_pages(b[i]->data, size, NULL) == (size + 4095) / 4096,
                         "block %d: its pages are not in memory before the first write", i);
    }
    KS_CHECK_INT(seen, 0xff);
    for (int i = 0; i < 8; i++)
        memset(b[i]->data, i, size);
    /* released, a block is handed out again */
    uint8_t *d3 = b[3]->data;
    sim_buf_unref(b[3]);
    sim_buf *again = sim_buf_new_uninit(size);
    KS_CHECK(again && again->data == d3);
    b[3] = again;
    for (int i = 0; i < 8; i++)
        sim_buf_unref(b[i]);
}

int main(void)
{
    KS_RUN(test_depth_blocks_in_a_slab);
    return KS_TEST_END();
}
