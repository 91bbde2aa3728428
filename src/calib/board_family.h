/* calib/board_family.h: the AprilTag family tables (libapriltag) behind the board: geometry of a
 * family and the bit pattern of each tag. Internal. */
#ifndef KS_CALIB_BOARD_FAMILY_H
#define KS_CALIB_BOARD_FAMILY_H

#include <stdbool.h>
#include <stdint.h>

#include "kinsync/board.h"

/* KS_HAVE_APRILTAG is defined by CMake (option KS_WITH_APRILTAG, libapriltag found). */

typedef struct ks_family_info {
    int total_width;       /* modules of the tag image, quiet zone / data ring included */
    int border_width;      /* modules of the detected square */
    int ncodes;
    void *family;          /* apriltag_family_t * */
} ks_family_info;

/* Family tables, created once and kept for the process; NULL without libapriltag. */
const ks_family_info *ks_family_get(ks_tag_family f);
/* Module (mx, my) of tag `code_index` (0 .. total_width-1 each, row-major, row 0 at the top):
 * true when white. */
bool ks_family_module_white(const ks_family_info *fi, int code_index, int mx, int my);

#endif
