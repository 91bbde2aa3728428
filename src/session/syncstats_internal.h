/* syncstats_internal.h: what the report writer reads from the accumulator. */
#ifndef KS_SYNCSTATS_INTERNAL_H
#define KS_SYNCSTATS_INTERNAL_H

#include "kinsync/syncstats.h"

/* Series of device d: which 0 = skew (x key us, y skew us), 1 = depth centre vs reference key,
 * 2 = depth centre - colour centre. Returns the number of points. */
int ks_syncstats_series(const ks_syncstats *s, int d, int which, const double **x, const double **y);
const ks_sync_setup *ks_syncstats_setup_get(const ks_syncstats *s);

#endif
