/* fuse/interleave.c: interleaved rigs. Devices of an interleaved rig are offset over the frame
 * period, so their frames, taken together in timestamp order, form one stream at N times the frame
 * rate. Ordering is a stable sort on (timestamp, device, input position) so equal timestamps come
 * out the same way every time; each output frame carries its device's pose so a consumer can place
 * it in the rig frame. */
#include <stdlib.h>
#include <string.h>

#include "kinsync/fuse.h"

typedef struct item {
    int64_t ts;
    int device;
    size_t pos;
} item;

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

ks_status ks_interleave(const ks_stream_frame *in, size_t n, const ks_rig_pose *poses, size_t pose_count,
                        ks_stream_frame *out, ks_interleave_stats *stats, ks_error *err)
{
    if (n && (!in || !out))
        return ks_error_set(err, KS_EINVAL, "interleave: no input or output frames given");
    for (size_t i = 0; i < n; i++)
        if (in[i].device < 0 || (size_t)in[i].device >= pose_count)
            return ks_error_set(err, KS_EINVAL,
                                "interleave: frame %zu (timestamp %lld us) names device %d but only %zu poses are "
                                "known; pass the pose of every device of the rig",
                                i, (long long)in[i].timestamp_us, in[i].device, pose_count);
    item *it = malloc((n ? n : 1) * sizeof *it);
    if (!it)
        return ks_error_set(err, KS_ENOMEM, "interleave: out of memory for %zu frames", n);
    for (size_t i = 0; i < n; i++)
        it[i] = (item){in[i].timestamp_us, in[i].device, i};
    qsort(it, n, sizeof *it, cmp_item);
    for (size_t i = 0; i < n; i++) {
        out[i] = in[it[i].pos];
        out[i].pose = poses[out[i].device].depth_to_rig;
    }
    free(it);
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->frames = n;
        if (n >= 2) {
            double mn = 1e300, mx = 0;
            for (size_t i = 1; i < n; i++) {
                double g = (double)(out[i].timestamp_us - out[i - 1].timestamp_us);
                mn = g < mn ? g : mn;
                mx = g > mx ? g : mx;
            }
            double span = (double)(out[n - 1].timestamp_us - out[0].timestamp_us);
            stats->mean_gap_us = span / (double)(n - 1);
            stats->min_gap_us = mn;
            stats->max_gap_us = mx;
            stats->rate_hz = span > 0 ? 1e6 * (double)(n - 1) / span : 0;
        }
    }
    return KS_OK;
}
