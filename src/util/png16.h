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

/* Reads a 16-bit grey PNG into malloc'd host-order samples (*samples, w * 2 bytes per row).
 * KS_ENOTFOUND / KS_EPARSE name the file and what it is instead. */
ks_status ks_png16_read(const char *path, uint16_t **samples, int *w, int *h, ks_error *err);

#endif
