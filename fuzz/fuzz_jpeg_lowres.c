/* libFuzzer target for the scaled MJPEG decoder (fuse/jpeg_lowres.c): the first byte picks the
 * scale (1/2, 1/4, 1/8), the rest is the frame. One decoder state serves every input, as a
 * device's does every frame, so tables cached from one input meet the next. Any crash, hang,
 * leak or sanitizer report is a bug; so is a result other than KS_OK or KS_EPARSE, an image of
 * an implausible size or with a pixel left unwritten. Seeds: fuzz/corpus/fuzz_jpeg_lowres (small frames of
 * every sampling the decoder takes, with restart markers and optimized tables, and ones it
 * refuses). */
#include <stdint.h>
#include <stdlib.h>

#include "fuse/fuse_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ks_jpeg_lowres *j;
    if (!j && !(j = ks_jpeg_lowres_create()))
        return 0;
    if (size < 1)
        return 0;
    int scale = 2 << (data[0] % 3);
    uint8_t *buf = NULL;
    size_t cap = 0;
    ks_color_image img;
    ks_error e;
    ks_status st = ks_jpeg_lowres_decode(j, data + 1, size - 1, scale, &buf, &cap, &img, &e);
    if (st != KS_OK && st != KS_EPARSE)
        abort();
    if (st == KS_OK) {
        /* every pixel of the image was written, opaque (and in bounds: AddressSanitizer) */
        for (int y = 0; y < img.height; y++)
            for (int x = 0; x < img.width; x++)
                if (img.bgra[(size_t)y * img.stride + (size_t)x * 4 + 3] != 255)
                    abort();
        if (img.width < 1 || img.height < 1 || img.width > 8192 || img.height > 8192 || img.scale_denom != scale)
            abort();
    }
    free(buf);
    return 0;
}
