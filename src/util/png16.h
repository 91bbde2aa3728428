/* util/png16.h: 16-bit grayscale PNG (depth in millimetres, IR), the format DEPTH16 and IR16
 * images are exported in. Written through a temporary file (util/fileio.h): a failed write leaves
 * no file behind. Internal to the library. */
#ifndef KS_UTIL_PNG16_H
#define KS_UTIL_PNG16_H

#include <stddef.h>
#include <stdint.h>

#include "kinsync/error.h"

/* Writes w x h 16-bit samples in host byte order, rows `stride` bytes apart (0: w * 2), with
 * zlib compression level `level` (0..9). KS_EINVAL for an empty image, KS_EIO naming the file. */
ks_status ks_png16_write(const char *path, const void *samples, int w, int h, size_t stride, int level, ks_error *err);

#endif
