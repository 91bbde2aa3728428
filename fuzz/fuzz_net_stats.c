/* libFuzzer target: what a coordinator does with host-time fits received from the network
 * (DeviceStats_): the check of each fit (ks_net_host_fit_from_msg), then the cross-host comparison
 * (ks_host_time_disagreement) over the accepted ones. The input is cut into 56-byte records, one
 * message each (the fit fields, bit for bit); the first half of the records is one device's series,
 * the rest the reference's. Nothing may crash, overflow (UBSan) or accept a fit whose rate is not
 * finite, or return a median outside the range of the pairwise differences. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC 56

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ks_host_time_fit dev[KS_HOST_FIT_HISTORY], ref[KS_HOST_FIT_HISTORY];
    int nd = 0, nr = 0;
    size_t nrec = size / REC;
    if (nrec > 2 * KS_HOST_FIT_HISTORY)
        nrec = 2 * KS_HOST_FIT_HISTORY;
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *p = data + i * REC;
        kinsync_msg_dds__DeviceStats_ m;
        memset(&m, 0, sizeof m);
        m.serial = "fuzz";
        m.host_fit_ok = p[0] & 1;
        memcpy(&m.host_fit_rate, p + 1, 8);
        memcpy(&m.host_fit_offset_ns, p + 9, 8);
        memcpy(&m.host_fit_mad_us, p + 17, 8);
        memcpy(&m.host_fit_frames, p + 25, 8);
        memcpy(&m.host_fit_last_device_us, p + 33, 8);
        memcpy(&m.host_fit_first_device_us, p + 41, 8);
        memcpy(&m.realtime_minus_monotonic_ns, p + 49, 7);
        ks_host_time_fit f;
        bool ok = ks_net_host_fit_from_msg(&m, &f);
        if (ok != f.ok || (ok && !isfinite(f.rate)))
            abort();
        if (i < nrec / 2)
            dev[nd++] = f;
        else
            ref[nr++] = f;
    }
    double med;
    int pairs;
    if (ks_host_time_disagreement(dev, nd, ref, nr, &med, &pairs)) {
        if (pairs < 1 || pairs > nr || isnan(med))
            abort();
    } else if (pairs != 0) {
        abort();
    }
    return 0;
}
