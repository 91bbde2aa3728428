/* libFuzzer target: the board YAML reader, and the board geometry on what it accepts. */
#include <stddef.h>
#include <stdint.h>

#include "kinsync/board.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ks_board b;
    ks_error err;
    if (ks_board_load_string((const char *)data, size, "fuzz.yaml", &b, &err) != KS_OK)
        return 0;
    double p[3], w, h;
    for (int k = 0; k < 4; k++)
        (void)ks_board_corner(&b, b.first_id + ks_board_tag_count(&b) - 1, k, p);
    ks_board_sheet_size(&b, &w, &h);
    (void)ks_board_intensity(&b, w / 3, h / 3);
    return 0;
}
