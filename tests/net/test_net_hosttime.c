/* Host time across hosts (kinsync/net.h): the arithmetic the coordinator uses to measure how far two
 * hosts' clocks disagree through the frames of the same frame sets, on synthetic frames with known
 * clocks, latencies, subordinate delay and jitter, and the check of a received fit. Deterministic. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/net.h"
#include "kinsync/syncstats.h"
#include "ks_test.h"
#include "net/transport.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unit(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double normal(void)
{
    double u = unit(), v = unit();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

#define SETS 400
#define WINDOW 64
#define EVERY 8 /* a fit published every 8 frames (~2 Hz at 15 fps) */

typedef struct host_model {
    double clock_error_ns;   /* host realtime - true time */
    double latency_us;       /* USB arrival after the colour start */
    double jitter_us;        /* half-normal arrival jitter */
    double delay_us;         /* planned subordinate delay of the device on it */
    int late_every;          /* every Nth frame arrives 20 ms late (a busy host), 0 never */
} host_model;

/* The fits one agent would publish for its device over SETS frame sets: colour start on the common
 * device clock (the master's, 30 ppm fast; the subordinate's stamps carry its delay), arrival on
 * the host's realtime clock, the session's fit over the last WINDOW frames every EVERY frames. */
static int publish(const host_model *h, ks_host_time_fit *out, int max)
{
    const double R0 = 1.7e18, period_ns = 66666666.7, dev_rate = 1.0 + 30e-6;
    double x[SETS], y[SETS];
    int n = 0;
    int64_t base = 0;
    for (int k = 0; k < SETS; k++) {
        double start_ns = R0 + k * period_ns + h->delay_us * 1000.0; /* true time of the colour start */
        x[k] = 66666.7 + (start_ns - R0) / 1000.0 * dev_rate;        /* device us */
        double lat = h->latency_us + fabs(h->jitter_us * normal());
        if (h->late_every && k % h->late_every == 0)
            lat += 20000;
        int64_t arrival = (int64_t)llround(start_ns + lat * 1000.0 + h->clock_error_ns);
        if (k == 0)
            base = arrival;
        y[k] = (double)(arrival - base);
        if ((k + 1) % EVERY || n >= max)
            continue;
        int from = k + 1 > WINDOW ? k + 1 - WINDOW : 0;
        ks_host_fit hf;
        ks_host_fit_compute(x + from, y + from, (size_t)(k + 1 - from), &hf);
        ks_host_time_fit *f = &out[n++];
        memset(f, 0, sizeof *f);
        f->ok = hf.ok;
        f->rate = hf.rate;
        f->offset_ns = base + (int64_t)llround(hf.offset_ns);
        f->mad_us = hf.mad_us;
        f->frames = hf.samples;
        f->first_device_us = (int64_t)llround(x[from]);
        f->last_device_us = (int64_t)llround(x[k]);
    }
    return n;
}

static void fit_matches_session(void)
{
    /* the fit the agents use is the session's: rate, offset and MAD of a known line */
    double x[200], y[200];
    for (int i = 0; i < 200; i++) {
        x[i] = 1000.0 + i * 33333.3;
        y[i] = 5e12 + 1000.03 * x[i] + (i % 2 ? 150e3 : -150e3);
    }
    ks_host_fit f;
    ks_host_fit_compute(x, y, 200, &f);
    KS_CHECK(f.ok);
    KS_CHECK_NEAR(f.rate, 1000.03, 1e-6);
    KS_CHECK_NEAR(f.mad_us, 150.0, 1e-3);
    KS_CHECK_INT(f.samples, 200);
    ks_host_fit_compute(x, y, 1, &f);
    KS_CHECK(!f.ok);
}

static void measured_through_frames(void)
{
    static ks_host_time_fit m[64], s[64], s2[64];
    host_model master = {0, 4000, 300, 0, 0};
    host_model sub = {3.2e6, 4000, 300, 160, 0};     /* its clock 3.2 ms ahead, delay 160 us */
    host_model behind = {-0.4e6, 4250, 300, 320, 7}; /* 0.4 ms behind, 250 us slower USB, late frames */
    int nm = publish(&master, m, 64), ns = publish(&sub, s, 64), n2 = publish(&behind, s2, 64);
    KS_CHECK_INT(nm, SETS / EVERY);
    double d;
    int pairs;
    /* the subordinate delay cancels: what is left is the clock difference (+ latency difference) */
    KS_CHECK(ks_host_time_disagreement(s, ns, m, nm, &d, &pairs));
    printf("  injected +3.200 ms: measured %+.4f ms over %d pairs\n", d / 1e6, pairs);
    KS_CHECK_NEAR(d / 1e6, 3.2, 0.1);
    KS_CHECK(pairs >= nm - 2);
    KS_CHECK(ks_host_time_disagreement(s2, n2, m, nm, &d, &pairs));
    printf("  injected -0.400 ms, +0.250 ms USB, 1 frame in 7 late by 20 ms: measured %+.4f ms\n", d / 1e6);
    KS_CHECK_NEAR(d / 1e6, -0.4 + 0.25, 0.1);
    /* the master against itself: exactly 0 */
    KS_CHECK(ks_host_time_disagreement(m, nm, m, nm, &d, &pairs));
    KS_CHECK_NEAR(d, 0.0, 0.5);
    /* antisymmetric */
    double back;
    KS_CHECK(ks_host_time_disagreement(m, nm, s, ns, &back, &pairs));
    KS_CHECK_NEAR(back / 1e6, -3.2, 0.1);
}

static void unusable_fits(void)
{
    static ks_host_time_fit m[64], s[64];
    host_model master = {0, 4000, 300, 0, 0}, sub = {2e6, 4000, 300, 0, 0};
    int nm = publish(&master, m, 64), ns = publish(&sub, s, 64);
    double d = 123;
    int pairs = 9;
    /* nothing to pair */
    KS_CHECK(!ks_host_time_disagreement(s, 0, m, nm, &d, &pairs));
    KS_CHECK_INT(pairs, 0);
    /* failed fits are skipped */
    ks_host_time_fit bad[2];
    memset(bad, 0, sizeof bad);
    KS_CHECK(!ks_host_time_disagreement(bad, 2, m, nm, &d, &pairs));
    /* spans that do not overlap (another run) are never compared */
    ks_host_time_fit far = s[ns - 1];
    far.first_device_us += 20000000;
    far.last_device_us += 20000000;
    KS_CHECK(!ks_host_time_disagreement(&far, 1, m, nm, &d, &pairs));
    /* an early fit over a few frames, badly off, does not move the median once better ones exist */
    ks_host_time_fit mixed[65];
    memcpy(mixed, s, sizeof s[0] * (size_t)ns);
    for (int i = 0; i < 3; i++) {
        mixed[i].frames = 4;
        mixed[i].offset_ns += 50000000;
    }
    KS_CHECK(ks_host_time_disagreement(mixed, ns, m, nm, &d, &pairs));
    KS_CHECK_NEAR(d / 1e6, 2.0, 0.1);
    /* absurd values: no overflow, no crash (UBSan), some answer */
    ks_host_time_fit huge = {true, 1100.0, INT64_MAX, 0, 100, (int64_t)1e15, 0};
    ks_host_time_fit tiny = {true, 900.0, INT64_MIN, 0, 100, (int64_t)1e15, 0};
    KS_CHECK(ks_host_time_disagreement(&huge, 1, &tiny, 1, &d, &pairs));
    KS_CHECK(d > 0);
    KS_CHECK(ks_host_time_fit_eval(&huge, 1e15) == INT64_MAX);
}

static void received_fit_checked(void)
{
    kinsync_msg_dds__DeviceStats_ m;
    memset(&m, 0, sizeof m);
    m.serial = "X";
    m.host_fit_ok = true;
    m.host_fit_rate = 1000.01;
    m.host_fit_offset_ns = 1700000000000000000LL;
    m.host_fit_mad_us = 120;
    m.host_fit_frames = 64;
    m.host_fit_first_device_us = 1000;
    m.host_fit_last_device_us = 5000000;
    ks_host_time_fit f;
    KS_CHECK(ks_net_host_fit_from_msg(&m, &f));
    KS_CHECK(f.ok && f.frames == 64 && f.offset_ns == m.host_fit_offset_ns && f.first_device_us == 1000);
    kinsync_msg_dds__DeviceStats_ b = m;
    b.host_fit_rate = NAN;
    KS_CHECK(!ks_net_host_fit_from_msg(&b, &f) && !f.ok);
    b = m;
    b.host_fit_rate = 2000; /* no device clock runs twice as fast */
    KS_CHECK(!ks_net_host_fit_from_msg(&b, &f));
    b = m;
    b.host_fit_first_device_us = b.host_fit_last_device_us + 1;
    KS_CHECK(!ks_net_host_fit_from_msg(&b, &f));
    b = m;
    b.host_fit_mad_us = -1;
    KS_CHECK(!ks_net_host_fit_from_msg(&b, &f));
    b = m;
    b.host_fit_ok = false;
    KS_CHECK(!ks_net_host_fit_from_msg(&b, &f));
}

int main(void)
{
    KS_RUN(fit_matches_session);
    KS_RUN(measured_through_frames);
    KS_RUN(unusable_fits);
    KS_RUN(received_fit_checked);
    return KS_TEST_END();
}
