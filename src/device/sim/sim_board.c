/* A real calibration target on the simulated board: the AprilGrid of a board file (kinsync/board.h)
 * rasterized at 2 pixels per millimetre (at most 4096 pixels a side), so the simulator's images can
 * be calibrated with the same detector as real ones. The texture's columns run along the board's
 * +x and its rows along +y, the same frame ks_board_corner uses, so the rendered tags read the right
 * way round from the board's front. */
#include <stdlib.h>

#include "device/sim/sim_internal.h"
#include "kinsync/board.h"

ks_status sim_aprilgrid_texture(const char *board_path, sim_texture *out, ks_error *err)
{
    ks_board b;
    ks_status st = ks_board_load(board_path, &b, err);
    if (st != KS_OK)
        return ks_error_prefix(err, st, "simulation board.aprilgrid");
    double w_mm, h_mm, ox, oy;
    ks_board_sheet_size(&b, &w_mm, &h_mm);
    ks_board_sheet_origin(&b, &ox, &oy);
    double ppm = 2.0;
    if (w_mm * ppm > 4096 || h_mm * ppm > 4096)
        ppm = 4096 / (w_mm > h_mm ? w_mm : h_mm);
    int w = (int)(w_mm * ppm), h = (int)(h_mm * ppm);
    uint8_t *px = malloc((size_t)w * (size_t)h);
    if (!px)
        return ks_error_set(err, KS_ENOMEM, "out of memory painting the board %s", board_path);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int v = ks_board_intensity(&b, ox + (x + 0.5) / ppm, oy + (y + 0.5) / ppm);
            if (v == -2) {
                free(px);
                return ks_error_set(err, KS_EUNSUPPORTED, "painting %s needs libapriltag's tag families; "
                                    "install libapriltag-dev (scripts/setup.sh)", board_path);
            }
            px[(size_t)y * w + x] = (uint8_t)(v < 0 ? 255 : v);
        }
    }
    out->pixels = px;
    out->w = w;
    out->h = h;
    out->width_mm = w_mm;
    out->height_mm = h_mm;
    return KS_OK;
}
