/* align/align_internal.h: what align.c and align_export.c share (internal). */
#ifndef KS_ALIGN_INTERNAL_H
#define KS_ALIGN_INTERNAL_H

#include "kinsync/device.h"

/* Opens one recording as a playback device and starts it with its recorded configuration. On
 * failure *b and *d hold whatever was opened (the caller closes both, as after success). */
ks_status ks_align_open_recording(const char *path, ks_backend **b, ks_device **d, ks_error *err);

#endif
