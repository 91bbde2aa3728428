/* Host time across hosts (kinsync/net.h): every agent fits its devices' clocks to its host's
 * CLOCK_REALTIME (the session's fit, kinsync/syncstats.h) and publishes the fit; the coordinator
 * evaluates the fits of two devices at the same frame-set instant and so measures how far the two
 * hosts' clocks disagree, through the frames themselves (docs/multi-host.md, "Host time").
 *
 * Pure arithmetic plus the check of a received fit; no DDS calls. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/transport.h"

int64_t ks_host_time_fit_eval(const ks_host_time_fit *f, double device_us)
{
    double v = f->rate * device_us;
    if (!(fabs(v) < 9e18))
        return v > 0 ? INT64_MAX : INT64_MIN;
    int64_t r;
    if (__builtin_add_overflow(f->offset_ns, (int64_t)llround(v), &r))
        return f->offset_ns > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* a - b in ns, exactly when it fits (realtime values do not fit a double's 53 bits to the ns) */
static double diff_ns(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? (double)a - (double)b : (double)r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fits over fewer frames are noisy (a USB arrival jitter of a few hundred us over a handful of
 * frames): a fit takes part when it has KS_HOST_FIT_MIN_FRAMES, or as many as the best of its
 * series when none has that many yet. */
#define KS_HOST_FIT_MIN_FRAMES 16

static uint64_t min_frames(const ks_host_time_fit *f, int n)
{
    uint64_t best = 0;
    for (int i = 0; i < n; i++)
        if (f[i].ok && f[i].frames > best)
            best = f[i].frames;
    return best < KS_HOST_FIT_MIN_FRAMES ? best : KS_HOST_FIT_MIN_FRAMES;
}

bool ks_host_time_disagreement(const ks_host_time_fit *dev, int ndev, const ks_host_time_fit *ref, int nref,
                               double *median_ns, int *pairs)
{
    uint64_t dmin = min_frames(dev, ndev), rmin = min_frames(ref, nref);
    const double window_us = 10e6; /* a fit is used within 10 s of its newest frame */
    double d[KS_HOST_FIT_HISTORY * 4];
    int n = 0;
    *pairs = 0;
    for (int i = 0; i < nref && n < (int)(sizeof d / sizeof d[0]); i++) {
        const ks_host_time_fit *r = &ref[i];
        if (!r->ok || r->frames < rmin)
            continue;
        const ks_host_time_fit *best = NULL;
        double best_gap = window_us;
        for (int j = 0; j < ndev; j++) {
            double gap = fabs((double)dev[j].last_device_us - (double)r->last_device_us);
            if (dev[j].ok && dev[j].frames >= dmin && gap <= best_gap) {
                best = &dev[j];
                best_gap = gap;
            }
        }
        if (!best)
            continue;
        double lo = (double)(r->first_device_us > best->first_device_us ? r->first_device_us : best->first_device_us);
        double hi = (double)(r->last_device_us < best->last_device_us ? r->last_device_us : best->last_device_us);
        if (lo > hi)
            continue;
        double T = (lo + hi) / 2;
        d[n++] = diff_ns(ks_host_time_fit_eval(best, T), ks_host_time_fit_eval(r, T));
    }
    if (!n)
        return false;
    qsort(d, (size_t)n, sizeof d[0], cmp_double);
    *median_ns = n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
    *pairs = n;
    return true;
}

bool ks_net_host_fit_from_msg(const kinsync_msg_dds__DeviceStats_ *m, ks_host_time_fit *out)
{
    memset(out, 0, sizeof *out);
    /* a device clock runs within a few hundred ppm of a host's: anything far from 1000 ns/us is a
     * broken fit or a forged message, and would only poison the median */
    if (!m->host_fit_ok || !isfinite(m->host_fit_rate) || m->host_fit_rate < 900.0 || m->host_fit_rate > 1100.0 ||
        !isfinite(m->host_fit_mad_us) || m->host_fit_mad_us < 0 || m->host_fit_frames < 2 ||
        m->host_fit_last_device_us < 0 || m->host_fit_last_device_us > (int64_t)1e15 ||
        m->host_fit_first_device_us < 0 || m->host_fit_first_device_us > m->host_fit_last_device_us)
        return false;
    out->ok = true;
    out->rate = m->host_fit_rate;
    out->offset_ns = m->host_fit_offset_ns;
    out->mad_us = m->host_fit_mad_us;
    out->frames = m->host_fit_frames;
    out->last_device_us = m->host_fit_last_device_us;
    out->first_device_us = m->host_fit_first_device_us;
    return true;
}
