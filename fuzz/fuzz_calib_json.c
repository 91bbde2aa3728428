/* libFuzzer target: the factory calibration JSON parser and the camera model on what it yields.
 * Seed corpus: the three real calibration files (fuzz/corpus/fuzz_calib_json/). */
#include <stddef.h>
#include <stdint.h>

#include "kinsync/calibration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte picks the modes */
    ks_depth_mode d = (ks_depth_mode)(data[0] % KS_DEPTH_MODE_COUNT);
    ks_color_resolution c = (ks_color_resolution)((data[0] / KS_DEPTH_MODE_COUNT) % KS_COLOR_RESOLUTION_COUNT);
    ks_calibration cal;
    ks_error err;
    if (ks_calibration_from_json((const char *)data + 1, size - 1, d, c, &cal, &err) != KS_OK)
        return 0;
    double uv[2] = {cal.depth.width / 2.0, cal.depth.height / 3.0}, uc[2], p[3];
    (void)ks_calibration_depth_to_color_pixel(&cal, uv, 1234.0, uc);
    double corner[2] = {0, 0};
    if (ks_unproject(&cal.color, corner, 1000.0, p))
        (void)ks_project(&cal.color, p, uc);
    return 0;
}
