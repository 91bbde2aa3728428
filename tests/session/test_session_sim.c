/* The session on the simulator (tests the "done when" list): correct start, master started
 * first, a subordinate without cable, auto exposure, repeated exposure writes, planned vs zero delays,
 * a device disconnecting mid-run; measured skews against the simulator's ground truth. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "ks_test.h"
#include "support/sim_rigs.h"
#include "util/monotime.h"

#define MAXF 4096

typedef struct truth_log {
    ks_sim *sim;
    int n;
    atomic_int count[8]; /* written by the capture threads after ts/start_ns, read by the main thread */
    uint64_t ts[8][MAXF];
    uint64_t start_ns[8][MAXF];
    int corrupted[8];
} truth_log;

static void on_capture(int device, ks_capture *cap, void *user)
{
    truth_log *t = user;
    ks_sim_frame_truth tr;
    if (!cap->color || ks_sim_last_truth(t->sim, device, &tr, NULL) != KS_OK)
        return;
    int k = t->count[device];
    if (k < MAXF) {
        t->ts[device][k] = cap->color->device_ts_us;
        t->start_ns[device][k] = tr.color_start_ns;
        t->count[device]++;
    }
    t->corrupted[device] += tr.corrupted_pixels > 0;
}

static uint64_t truth_start(const truth_log *t, int d, uint64_t ts)
{
    for (int k = t->count[d] - 1; k >= 0; k--)
        if (t->ts[d][k] == ts)
            return t->start_ns[d][k];
    return 0;
}

typedef struct simrun {
    ks_rig rig;
    ks_plan plan;
    ks_sim_config sc;
    ks_backend *b;
    ks_session *s;
    truth_log *truth;
    ks_session_options opt;
    bool keep_master;   /* start the trigger-fed device as master (the mistake; the plan says subordinate) */
} simrun;

static void sim_setup(simrun *r, int n, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    simt_rig(&r->rig, n, SIMT_DAISY, 2);
    simt_config(&r->sc, seed, false);
    r->sc.clock_default.jitter_us = 1;
    r->truth = calloc(1, sizeof *r->truth);
    ks_session_options_init(&r->opt);
    r->opt.first_frame_timeout_ms = 3000;
    r->opt.on_capture = on_capture;
    r->opt.user = r->truth;
}

/* The device the external trigger feeds runs as subordinate, as every device of a triggered rig
 * (docs/hardware-setup.md, SDK issue #366). The planner says so once it knows; until then (and
 * whatever it says) the tests start it that way unless they show the master-mode mistake. */
/* The planner starts a trigger-fed device as subordinate; keep_master makes the mistake a user
 * makes by hand (`--external-sync master` on the device the generator feeds). */
static void trigger_head_subordinate(simrun *r)
{
    int to = r->rig.trigger.present ? (r->rig.trigger.to >= 0 ? r->rig.trigger.to : r->rig.master) : -1;
    if (to < 0 || !r->keep_master)
        return;
    r->plan.devices[to].sync_mode = KS_SYNC_MASTER;
    r->plan.devices[to].config.wired_sync_mode = KS_SYNC_MASTER;
}

static ks_status sim_open(simrun *r, ks_error *err)
{
    ks_plan_make(&r->rig, NULL, &r->plan, NULL);
    trigger_head_subordinate(r);
    if (ks_backend_open_sim(&r->rig, &r->sc, &r->b, err) != KS_OK)
        return err->code;
    r->truth->sim = ks_sim_from_backend(r->b);
    r->truth->n = r->rig.device_count;
    return ks_session_open(&r->rig, &r->plan, r->b, &r->opt, &r->s, err);
}

static void dump(ks_syncstats *q)
{
    for (int i = 0; i < ks_syncstats_check_count(q); i++) {
        const ks_sync_check *c = ks_syncstats_check(q, i);
        fprintf(stderr, "  %s %s: %s\n", ks_check_status_name(c->status), c->id, c->message);
    }
}

/* Reads `want` sets; returns the largest |measured skew - true skew| over them. */
static double run_sets(simrun *r, int want, int *got, ks_status *last)
{
    ks_session_set set;
    ks_error e;
    double worst = 0;
    *got = 0;
    *last = KS_OK;
    int ref = ks_session_reference(r->s);
    const ks_matcher_config *mc = ks_session_matcher_config(r->s);
    while (*got < want) {
        ks_status st = ks_session_next(r->s, &set, 5000, &e);
        if (st != KS_OK) {
            *last = st;
            break;
        }
        (*got)++;
        for (int d = 0; d < r->rig.device_count; d++) {
            double m = ks_frame_set_skew_us(&set.set, d, ref);
            if (isnan(m) || d == ref)
                continue;
            uint64_t a = truth_start(r->truth, d, set.set.frames[d].color_ts_us);
            uint64_t b = truth_start(r->truth, ref, set.set.frames[ref].color_ts_us);
            if (!a || !b)
                continue;
            double t = ((double)a - (double)b) / 1000.0 - mc->devices[d].color_offset_us;
            if (fabs(m - t) > worst)
                worst = fabs(m - t);
        }
        ks_session_set_release(&set);
    }
    return worst;
}

static void sim_close(simrun *r)
{
    ks_session_close(r->s);
    ks_backend_free(r->b);
    free(r->truth);
}

static void test_correct_start_truth(void)
{
    simrun r;
    sim_setup(&r, 3, 11);
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    double worst = run_sets(&r, 150, &got, &last);
    KS_CHECK_INT(got, 150);
    KS_CHECK_MSG(worst <= 5, "measured skew differs from the truth by %.2f us", worst);
    ks_session_progress p;
    ks_session_get_progress(r.s, &p);
    ks_session_stop(r.s);
    for (int d = 0; d < 3; d++) {
        ks_sim_device_stats st;
        ks_sim_device_stats_get(r.truth->sim, d, &st, NULL);
        printf("    cam%d: taken %llu delivered %llu qdrop %llu usb %llu session-queue-drops %llu\n", d,
               (unsigned long long)st.captures_taken, (unsigned long long)st.delivered,
               (unsigned long long)st.dropped_queue, (unsigned long long)st.dropped_usb,
               (unsigned long long)p.queue_drops[d]);
    }
    ks_syncstats *q = ks_session_stats(r.s);
    KS_CHECK(ks_syncstats_passed(q));
    const ks_sync_check *ca = ks_syncstats_find(q, "color-alignment", -2);
    KS_CHECK(ca && ca->status == KS_CHECK_PASS && ca->value <= ks_color_alignment_target_us());
    if (!ks_syncstats_passed(q))
        dump(q);
    printf("    correct start: worst colour skew %.1f us (p99), measured vs truth within %.2f us\n",
           ca ? ca->value : -1, worst);
    sim_close(&r);
}

/* Virtual time: a consumer slower than the simulated devices holds them back; it never loses the
 * finished sets it has not popped yet (they once overflowed the matcher's output and looked like a
 * pause of the whole rig, or a short run). Each pause lets the capture threads refill their queues. */
static void test_slow_consumer_loses_nothing(void)
{
    simrun r;
    sim_setup(&r, 3, 13);
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    const double P = ks_session_matcher_config(r.s)->period_us;
    double prev = NAN, worst_step = 0;
    int got = 0;
    for (int i = 0; i < 120; i++) {
        ks_session_set set;
        if (ks_session_next(r.s, &set, 5000, &e) != KS_OK)
            break;
        got++;
        if (!isnan(prev) && set.set.key_us - prev > worst_step)
            worst_step = set.set.key_us - prev;
        prev = set.set.key_us;
        ks_session_set_release(&set);
        struct timespec ts = {0, 3 * 1000000L}; /* the consumer is slow */
        nanosleep(&ts, NULL);
    }
    ks_session_stop(r.s);
    KS_CHECK_INT(got, 120);
    KS_CHECK_MSG(worst_step < 1.5 * P, "a step of %.0f us between consecutive sets (period %.0f us)", worst_step, P);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *c = ks_syncstats_find(q, "dropped-frames", -2);
    KS_CHECK(c && c->status == KS_CHECK_PASS);
    if (!c || c->status != KS_CHECK_PASS)
        dump(q);
    sim_close(&r);
}

/* The laser check at session open asks the simulator only about pairs in different interference
 * groups (the checks use no other; each pair is a mask of every pixel of one device projected into
 * the other): a rig in one group computes no mask, groups {0, 0, 1} the four pairs across. */
static void test_laser_check_cross_groups_only(void)
{
    for (int split = 0; split < 2; split++) {
        simrun r;
        sim_setup(&r, 3, 21);
        simt_config(&r.sc, 21, true);
        r.rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
        if (split)
            r.rig.devices[2].group = 1;
        ks_error e;
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        const uint64_t want[2][3] = {{0, 0, 0}, {1, 1, 2}};
        for (int d = 0; d < 3; d++) {
            ks_sim_render_stats st;
            KS_CHECK(ks_sim_render_stats_get(r.truth->sim, d, &st, &e) == KS_OK);
            KS_CHECK_MSG(st.pair_masks == want[split][d], "groups %s, device %d: %llu pair masks, expected %llu",
                         split ? "{0,0,1}" : "{0,0,0}", d, (unsigned long long)st.pair_masks,
                         (unsigned long long)want[split][d]);
        }
        sim_close(&r);
    }
}

/* Delivered captures of device d (get_capture calls that returned one). */
static uint64_t delivered(simrun *r, int d)
{
    ks_sim_device_stats st;
    ks_sim_device_stats_get(r->truth->sim, d, &st, NULL);
    return st.delivered;
}

/* A lossless session's start-up reads one frame ahead per device, not its queue depth: when the
 * first complete set is taken, no device has delivered more than a few captures beyond the frames
 * of the sets taken (one queued, one in the capture thread's hand, one set waiting, the matcher's
 * pending frame, the subordinate's arming poll: 2-3 seen, at most 6 allowed, however the threads are
 * scheduled; with the full depth from the start 9-11 more were read before the first set). Once the consumer comes back for the next set
 * the queues deepen (waited for, generously bounded). */
static void test_lossless_startup_reads_one_ahead(void)
{
    simrun r;
    sim_setup(&r, 3, 23);
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    uint64_t taken[3] = {0, 0, 0};
    bool complete = false;
    for (int i = 0; i < 20 && !complete; i++) {
        ks_session_set set;
        KS_CHECK(ks_session_next(r.s, &set, 5000, &e) == KS_OK);
        complete = set.set.complete;
        for (int d = 0; d < 3; d++)
            taken[d] += (set.set.present_mask >> d) & 1u;
        ks_session_set_release(&set);
    }
    KS_CHECK(complete);
    struct timespec ts = {0, 200 * 1000000L}; /* time to run ahead, if they could */
    nanosleep(&ts, NULL);
    printf("    start-up: captures delivered beyond the sets taken: %lld %lld %lld\n",
           (long long)(delivered(&r, 0) - taken[0]), (long long)(delivered(&r, 1) - taken[1]),
           (long long)(delivered(&r, 2) - taken[2]));
    for (int d = 0; d < 3; d++)
        KS_CHECK_MSG(delivered(&r, d) <= taken[d] + 6, "device %d delivered %llu captures, %llu of them taken in sets",
                     d, (unsigned long long)delivered(&r, d), (unsigned long long)taken[d]);
    ks_session_set set;
    KS_CHECK(ks_session_next(r.s, &set, 5000, &e) == KS_OK);
    ks_session_set_release(&set);
    bool deeper = false;
    for (int k = 0; k < 500 && !deeper; k++) {
        for (int d = 0; d < 3; d++)
            deeper |= delivered(&r, d) >= taken[d] + 9;
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    KS_CHECK_MSG(deeper, "the queues did not deepen after start-up");
    ks_session_stop(r.s);
    sim_close(&r);
}

/* Lossless sets do not depend on how far the readers run ahead: the same rig and seed through a
 * session with the default depth (one frame ahead during start-up, then 8) and one that stays at
 * one frame give the same 60 sets (key, devices, every device's timestamps). */
static void test_lossless_sets_same_any_depth(void)
{
    enum { SETS = 60 };
    static ks_frame_set sets[2][SETS];
    for (int run = 0; run < 2; run++) {
        simrun r;
        sim_setup(&r, 3, 29);
        r.opt.queue_frames = run ? 1 : 0;
        ks_error e;
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        for (int i = 0; i < SETS; i++) {
            ks_session_set set;
            KS_CHECK(ks_session_next(r.s, &set, 5000, &e) == KS_OK);
            sets[run][i] = set.set;
            ks_session_set_release(&set);
        }
        ks_session_stop(r.s);
        sim_close(&r);
    }
    int same = 0;
    for (int i = 0; i < SETS; i++) {
        const ks_frame_set *a = &sets[0][i], *b = &sets[1][i];
        bool eq = a->key_us == b->key_us && a->present_mask == b->present_mask && a->complete == b->complete;
        for (int d = 0; d < 3 && eq; d++)
            if (a->present_mask & (1u << d))
                eq = a->frames[d].color_ts_us == b->frames[d].color_ts_us &&
                     a->frames[d].depth_ts_us == b->frames[d].depth_ts_us;
        same += eq;
    }
    KS_CHECK_MSG(same == SETS, "%d of %d sets the same", same, SETS);
}

static void test_master_first(void)
{
    simrun r;
    sim_setup(&r, 3, 12);
    r.opt.wrong_order = true;
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    run_sets(&r, 60, &got, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    KS_CHECK(!ks_syncstats_passed(q));
    const ks_sync_check *so = ks_syncstats_find(q, "start-order", -2);
    KS_CHECK(so && so->status == KS_CHECK_FAIL);
    KS_CHECK_CONTAINS(so ? so->message : "", "the master was started before this subordinate");
    KS_CHECK_CONTAINS(so ? so->message : "", "cam");
    if (so)
        printf("    master first: %s\n", so->message);
    sim_close(&r);
}

static void test_missing_cable(void)
{
    simrun r;
    sim_setup(&r, 3, 13);
    /* the cable cam1 -> cam2 is pulled out from the start */
    r.sc.fault_count = 1;
    r.sc.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_UNPLUG, .at_ms = 0, .cable = 1};
    ks_error e;
    ks_plan_make(&r.rig, NULL, &r.plan, NULL);
    KS_CHECK(ks_backend_open_sim(&r.rig, &r.sc, &r.b, &e) == KS_OK);
    r.truth->sim = ks_sim_from_backend(r.b);
    ks_sim_advance(r.truth->sim, 1); /* the fault is in effect */
    KS_CHECK(ks_session_open(&r.rig, &r.plan, r.b, &r.opt, &r.s, &e) == KS_ESYNC);
    KS_CHECK_CONTAINS(e.message, "Sync In jack of cam2");
    KS_CHECK_CONTAINS(e.message, "cam1");
    KS_CHECK_CONTAINS(e.message, "nothing was started");
    ks_sim_device_stats st;
    for (int i = 0; i < 3; i++) {
        ks_sim_device_stats_get(r.truth->sim, i, &st, NULL);
        KS_CHECK(!st.streaming);
    }
    sim_close(&r);
}

static void test_no_signal_diagnosis(void)
{
    /* the cable into cam2 comes out right after the checks: cam2 never gets a pulse, the start ends
     * in a diagnosis naming it, the upstream device and the simulator's reason */
    simrun r;
    sim_setup(&r, 3, 18);
    r.opt.first_frame_timeout_ms = 1000;
    r.sc.fault_count = 1;
    r.sc.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_UNPLUG, .at_ms = 1, .cable = 1};
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_ETIMEOUT);
    KS_CHECK_CONTAINS(e.message, "no frames from cam2");
    KS_CHECK_CONTAINS(e.message, "cam1 Sync Out -> cam2 Sync In");
    KS_CHECK_CONTAINS(e.message, "(1) the cable");
    KS_CHECK_CONTAINS(e.message, "unplugged");
    printf("    diagnosis: %.300s...\n", e.message);
    ks_sim_device_stats st;
    ks_sim_device_stats_get(r.truth->sim, 0, &st, NULL);
    KS_CHECK(!st.streaming); /* everything stopped again */
    sim_close(&r);
}

static void test_auto_exposure(void)
{
    simrun r;
    sim_setup(&r, 3, 14);
    r.rig.exposure.manual = false;
    r.sc.brightness_variation = 0.5;
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    run_sets(&r, 240, &got, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *ae = ks_syncstats_find(q, "auto-exposure", -2);
    KS_CHECK(ae && ae->status == KS_CHECK_WARN);
    KS_CHECK_CONTAINS(ae ? ae->message : "", "auto exposure");
    double grow = 0;
    for (int d = 1; d < 3; d++) {
        const ks_sync_device *o = ks_syncstats_device(q, d);
        double g = fabs(o->skew_last_us) - fabs(o->skew_first_us);
        if (fabs(o->skew_max_abs_us) > grow)
            grow = o->skew_max_abs_us;
        (void)g;
    }
    KS_CHECK_MSG(grow > ks_color_alignment_target_us(), "largest skew under auto exposure %.1f us", grow);
    printf("    auto exposure: largest skew %.1f us\n", grow);
    sim_close(&r);
}

static void test_repeated_exposure(void)
{
    simrun r;
    sim_setup(&r, 2, 15);
    r.opt.reapply_exposure_every = 15;
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    run_sets(&r, 90, &got, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *x = ks_syncstats_find(q, "exposure-set-once", -2);
    KS_CHECK(x && x->status == KS_CHECK_FAIL);
    ks_sim_device_stats st;
    ks_sim_device_stats_get(r.truth->sim, 0, &st, NULL);
    KS_CHECK_CONTAINS(x ? x->message : "", "cam0");
    sim_close(&r);
}

static void test_planned_vs_zero_delays(void)
{
    double inv[2];
    int corrupted[2];
    for (int zero = 0; zero < 2; zero++) {
        simrun r;
        sim_setup(&r, 2, 16);
        r.sc.render_depth = true;
        r.opt.measure_invalid = true;
        ks_plan_make(&r.rig, NULL, &r.plan, NULL);
        ks_error e;
        if (zero)
            for (int i = 0; i < 2; i++) {
                r.plan.devices[i].config.depth_delay_off_color_usec = 0;
                r.plan.devices[i].config.subordinate_delay_off_master_usec = 0;
                r.plan.devices[i].depth_delay_usec = 0;
                r.plan.devices[i].depth_delay_effective_us = 0;
                r.plan.devices[i].subordinate_delay_usec = 0;
                r.plan.devices[i].subordinate_delay_effective_us = 0;
            }
        KS_CHECK(ks_backend_open_sim(&r.rig, &r.sc, &r.b, &e) == KS_OK);
        r.truth->sim = ks_sim_from_backend(r.b);
        KS_CHECK(ks_session_open(&r.rig, &r.plan, r.b, &r.opt, &r.s, &e) == KS_OK);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        int got;
        ks_status last;
        run_sets(&r, 20, &got, &last);
        ks_session_stop(r.s);
        ks_syncstats *q = ks_session_stats(r.s);
        const ks_sync_check *lo = ks_syncstats_find(q, "laser-overlap", -2);
        const ks_sync_check *ls = ks_syncstats_find(q, "laser-schedule", -2);
        KS_CHECK(lo && lo->status == (zero ? KS_CHECK_FAIL : KS_CHECK_PASS));
        KS_CHECK(ls && ls->status == (zero ? KS_CHECK_FAIL : KS_CHECK_PASS));
        inv[zero] = ks_syncstats_device(q, 0)->invalid_fraction_mean;
        corrupted[zero] = r.truth->corrupted[0] + r.truth->corrupted[1];
        if (lo)
            printf("    %s delays: %s\n", zero ? "zero" : "planned", lo->message);
        sim_close(&r);
    }
    KS_CHECK_INT(corrupted[0], 0);
    KS_CHECK(corrupted[1] > 0);
    KS_CHECK_MSG(inv[1] > inv[0] + 0.01, "invalid fraction planned %.3f zero %.3f", inv[0], inv[1]);
}

static void test_disconnect(void)
{
    simrun r;
    sim_setup(&r, 3, 17);
    r.sc.fault_count = 1;
    r.sc.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_DISCONNECT, .at_ms = 1500, .device = 2};
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    run_sets(&r, 1000, &got, &last);
    KS_CHECK_INT(last, KS_ENODEV);
    KS_CHECK(got > 20 && got < 1000);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    /* the data of the others is intact: colour alignment of cam1 measured and within target */
    const ks_sync_device *d1 = ks_syncstats_device(q, 1);
    KS_CHECK(d1->frames > 20);
    KS_CHECK(d1->skew_p99_abs_us <= ks_color_alignment_target_us());
    sim_close(&r);
}

static void test_stalled_host(void)
{
    /* cam2 sits alone on host "b", which stalls for 1 s of the run: no deadlock, the session goes on,
     * memory stays bounded, the lost frames are counted, and cam2 comes back. (Which device loses
     * frames varies from run to run: in virtual time the stall also holds back the world the other
     * readers advance.) */
    simrun r;
    sim_setup(&r, 3, 19);
    snprintf(r.rig.devices[2].host, sizeof r.rig.devices[2].host, "b");
    r.sc.fault_count = 1;
    r.sc.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_STALL_HOST, .at_ms = 3000, .duration_ms = 1000};
    snprintf(r.sc.faults[0].host, sizeof r.sc.faults[0].host, "b");
    r.sc.lockstep = false; /* the session's own fairness keeps the readers together */
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    ks_session_set set;
    int got = 0, partial = 0, max_held = 0, back = 0;
    while (got < 300 && ks_session_next(r.s, &set, 5000, &e) == KS_OK) {
        got++;
        if (!set.set.complete)
            partial++;
        else if (partial)
            back++;
        ks_session_set_release(&set);
        ks_session_progress p;
        ks_session_get_progress(r.s, &p);
        if (p.matcher_held > max_held)
            max_held = p.matcher_held;
    }
    KS_CHECK_INT(got, 300);
    KS_CHECK_MSG(partial == 0 || back > 0, "cam2 never came back");
    KS_CHECK_MSG(max_held <= 3 * (4 * 8 + 16) + 64 * 3, "matcher held %d frames", max_held);
    printf("    stalled host: %d of %d sets partial, at most %d frames held by the matcher\n", partial, got, max_held);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *dr = ks_syncstats_find(q, "dropped-frames", -2);
    KS_CHECK(dr && dr->status != KS_CHECK_PASS);
    if (dr) /* named as the host's (a stall, or frames lost on the way), never the sync cable */
        KS_CHECK_CONTAINS(dr->message, "host");
    KS_CHECK(!ks_syncstats_find(q, "sync-signal", -2));
    KS_CHECK(!ks_syncstats_find(q, "sync-pause", -2));
    if (!ks_syncstats_passed(q) && getenv("KS_DUMP"))
        dump(q);
    if (dr)
        printf("    %s\n", dr->message);
    sim_close(&r);
}

static void test_trigger_drift(void)
{
    /* an external trigger 80 ppm off (accepted by the spec's tolerance, but drifting against the
     * camera's idea of 15 fps) is named; an exact one passes */
    double ppm[2];
    for (int bad = 0; bad < 2; bad++) {
        simrun r;
        memset(&r, 0, sizeof r);
        ks_error e;
        KS_CHECK(ks_rig_load(KS_SOURCE_DIR "/examples/rigs/external-trigger.yaml", &r.rig, &e) == KS_OK);
        ks_findings f;
        ks_findings_init(&f);
        ks_rig_validate(&r.rig, &f);
        ks_findings_free(&f);
        simt_config(&r.sc, 21, false);
        r.sc.trigger_frequency_error_ppm = bad ? 80 : 0;
        r.truth = calloc(1, sizeof *r.truth);
        ks_session_options_init(&r.opt);
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        int got;
        ks_status last;
        run_sets(&r, 45, &got, &last);
        ks_session_stop(r.s);
        ks_syncstats *q = ks_session_stats(r.s);
        const ks_sync_check *t = ks_syncstats_find(q, "external-trigger", -2);
        KS_CHECK(t && t->status == (bad ? KS_CHECK_FAIL : KS_CHECK_PASS));
        ppm[bad] = t ? t->value : 0;
        if (t)
            printf("    trigger %s: %s\n", bad ? "+80 ppm" : "exact", t->message);
        sim_close(&r);
    }
    KS_CHECK(fabs(ppm[1] - ppm[0]) > 60);
}

/* The trigger-fed head started as subordinate follows the generator (an 80 ppm trigger shows on its
 * clock); started as master it runs on its own oscillator: no frame follows the generator, and
 * verify names it. A trigger stop then stops every device (run-length / signal) only when the head
 * follows the trigger. */
static void test_trigger_head_mode(void)
{
    for (int master = 0; master < 2; master++) {
        simrun r;
        memset(&r, 0, sizeof r);
        ks_error e;
        KS_CHECK(ks_rig_load(KS_SOURCE_DIR "/examples/rigs/external-trigger.yaml", &r.rig, &e) == KS_OK);
        ks_findings f;
        ks_findings_init(&f);
        ks_rig_validate(&r.rig, &f);
        ks_findings_free(&f);
        simt_config(&r.sc, 23, false);
        r.sc.trigger_frequency_error_ppm = 80;
        r.keep_master = master;
        r.truth = calloc(1, sizeof *r.truth);
        ks_session_options_init(&r.opt);
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        if (!master) /* no device of the rig is master */
            for (int i = 0; i < r.rig.device_count; i++)
                KS_CHECK(r.plan.devices[i].config.wired_sync_mode == KS_SYNC_SUBORDINATE);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        int got;
        ks_status last;
        run_sets(&r, 45, &got, &last);
        ks_session_stop(r.s);
        ks_syncstats *q = ks_session_stats(r.s);
        KS_CHECK_INT(ks_session_reference(r.s), r.rig.trigger.to >= 0 ? r.rig.trigger.to : r.rig.master);
        const ks_sync_check *t = ks_syncstats_find(q, "external-trigger", -2);
        KS_CHECK(t && t->status == KS_CHECK_FAIL);
        if (t && master)
            KS_CHECK_CONTAINS(t->message, "started as master");
        if (t && !master)
            KS_CHECK_CONTAINS(t->message, "drifts"); /* it follows the 80 ppm generator */
        if (t)
            printf("    head as %s: %s\n", master ? "master" : "subordinate", t->message);
        ks_sim_device_stats ds;
        ks_sim_device_stats_get(ks_sim_from_backend(r.b), r.rig.trigger.to >= 0 ? r.rig.trigger.to : 0, &ds, NULL);
        if (master)
            KS_CHECK_INT(ds.pulses_seen, 0); /* the master ignored every trigger pulse */
        else
            KS_CHECK(ds.pulses_seen > 40);
        sim_close(&r);
    }
}

/* Both timestamp conventions of the simulated devices: read with the right setting the depth offsets
 * pass; read with `auto` the session measures which one it is and says so with the figure; read
 * with the wrong setting `timestamps` FAILs naming the convention to set. */
static void test_timestamp_conventions(void)
{
    for (int dev = 0; dev < 2; dev++)
        for (int rigc = 0; rigc < 3; rigc++) {
            ks_ts_convention devc = dev ? KS_TS_MID_EXPOSURE : KS_TS_SEED;
            ks_ts_convention rc = rigc == 0 ? KS_TS_SEED : rigc == 1 ? KS_TS_MID_EXPOSURE : KS_TS_AUTO;
            simrun r;
            sim_setup(&r, 3, 31);
            r.sc.device_timestamps = devc;
            r.rig.ts_convention = rc;
            ks_error e;
            KS_CHECK(sim_open(&r, &e) == KS_OK);
            KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
            int got;
            ks_status last;
            run_sets(&r, 40, &got, &last);
            ks_session_stop(r.s);
            ks_syncstats *q = ks_session_stats(r.s);
            const ks_sync_check *t = ks_syncstats_find(q, "timestamps", -2);
            const ks_sync_check *dep = ks_syncstats_find(q, "depth-offsets", -2);
            KS_CHECK(t && dep);
            KS_CHECK_INT(ks_syncstats_timestamps(q), devc);
            bool right = rc == KS_TS_AUTO || rc == devc;
            if (t && dep) {
                KS_CHECK_INT(t->status, right ? KS_CHECK_PASS : KS_CHECK_FAIL);
                KS_CHECK_INT(dep->status, right ? KS_CHECK_PASS : KS_CHECK_FAIL);
                KS_CHECK_CONTAINS(t->message, devc == KS_TS_SEED ? "start of frame" : "mid-exposure");
                if (rc == KS_TS_AUTO)
                    KS_CHECK_CONTAINS(t->message, "measured");
                if (!right)
                    KS_CHECK_CONTAINS(t->message, devc == KS_TS_SEED ? "`timestamps: seed`" : "`timestamps: mid-exposure`");
                /* the figure: seed predicts (colour exposure - depth exposure) / 2 = -2235 us at 8330 us */
                KS_CHECK_NEAR(t->value, devc == KS_TS_SEED ? -2235 : 0, 3);
                printf("    devices %s, rig %s: %s %s\n", ks_ts_convention_name(devc), ks_ts_convention_name(rc),
                       ks_check_status_name(t->status), t->message);
            }
            KS_CHECK_INT(ks_syncstats_timestamps_used(q), rc == KS_TS_AUTO ? devc : rc);
            sim_close(&r);
        }
}

/* SDK #471: writing the exposure again while streaming, even the same value, shifts colour against
 * depth; verify's exposure check sees it in the frames (the colour-to-depth offset jumps), also when
 * the writes are not counted by the session. */
static void test_same_value_exposure_writes(void)
{
    for (int counted = 0; counted < 2; counted++) {
        simrun r;
        sim_setup(&r, 2, 41);
        r.opt.reapply_exposure_every = 20; /* same value, every 20 frames: more often than it settles */
        ks_error e;
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        int got;
        ks_status last;
        run_sets(&r, 90, &got, &last);
        ks_session_stop(r.s);
        ks_syncstats *q = ks_session_stats(r.s);
        if (!counted)
            for (int d = 0; d < 2; d++)
                ks_syncstats_setup(q)->exposure_sets[d] = 0; /* as if another program wrote it */
        ks_syncstats_finish(q);
        const ks_sync_check *x = ks_syncstats_find(q, "exposure-set-once", -2);
        KS_CHECK(x && x->status == KS_CHECK_FAIL);
        if (x) {
            KS_CHECK_CONTAINS(x->message, "#471");
            KS_CHECK_CONTAINS(x->message, "jumped by -300.0 us"); /* colour 300 us later */
            printf("    %s\n", x->message);
        }
        const ks_sync_device *o = ks_syncstats_device(q, 0);
        KS_CHECK_NEAR(o->depth_offset_jump_us, -300, 5); /* the modelled shift: colour later, depth - colour smaller */
        KS_CHECK(!ks_syncstats_passed(q));
        sim_close(&r);
    }
    /* no write: the offset holds and the exposure check passes */
    simrun r;
    sim_setup(&r, 2, 41);
    ks_error e;
    KS_CHECK(sim_open(&r, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int got;
    ks_status last;
    run_sets(&r, 90, &got, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *x = ks_syncstats_find(q, "exposure", -2);
    KS_CHECK(x && x->status == KS_CHECK_PASS);
    KS_CHECK(fabs(ks_syncstats_device(q, 1)->depth_offset_jump_us) < 5);
    sim_close(&r);
}

/* An external trigger that stops (or pauses) mid-run on an all-subordinate triggered rig: verify's
 * checks name the trigger, and the verdict is FAIL. */
static void test_trigger_stop_and_pause(void)
{
    for (int pause = 0; pause < 2; pause++) {
        simrun r;
        memset(&r, 0, sizeof r);
        ks_error e;
        KS_CHECK(ks_rig_load(KS_SOURCE_DIR "/examples/rigs/external-trigger.yaml", &r.rig, &e) == KS_OK);
        ks_findings f;
        ks_findings_init(&f);
        ks_rig_validate(&r.rig, &f);
        ks_findings_free(&f);
        simt_config(&r.sc, 25, false);
        r.sc.fault_count = 1;
        r.sc.faults[0] = (ks_sim_fault){.kind = KS_SIM_FAULT_TRIGGER_STOP, .at_ms = 1500,
                                        .duration_ms = pause ? 400 : 0, .device = -1, .cable = -1};
        r.truth = calloc(1, sizeof *r.truth);
        ks_session_options_init(&r.opt);
        KS_CHECK(sim_open(&r, &e) == KS_OK);
        KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
        /* Read 3 s of device time. After a trigger stop no set ends the loop: it ends when the
         * simulator's clock has run 3.5 s past the first set (every frame of the 3 s was captured by
         * then) and the session has nothing more; waits are events, the wall clock only bounds. */
        ks_session_set set;
        double first = NAN, span = 0, t_wall = ks_mono_s();
        uint64_t v0 = 0;
        ks_status st = KS_OK;
        while (span < 3.0 && ks_mono_s() - t_wall < 120) {
            st = ks_session_next(r.s, &set, 200, &e);
            if (st == KS_ETIMEOUT) {
                if (v0 && ks_sim_now_ns(r.truth->sim) - v0 > 3500000000ull)
                    break; /* the devices' clocks are past the run: nothing more will come */
                continue;
            }
            if (st != KS_OK)
                break;
            if (isnan(first)) {
                first = set.set.key_us;
                v0 = ks_sim_now_ns(r.truth->sim);
            }
            span = (set.set.key_us - first) / 1e6;
            ks_session_set_release(&set);
        }
        KS_CHECK(st == KS_OK || st == KS_ETIMEOUT);
        KS_CHECK(v0 != 0);
        ks_session_stop(r.s);
        ks_syncstats_setup(ks_session_stats(r.s))->requested_seconds = 3;
        ks_syncstats *q = ks_session_stats(r.s);
        const ks_sync_check *c = ks_syncstats_find(q, pause ? "sync-pause" : "run-length", -2);
        KS_CHECK(c && c->status == KS_CHECK_FAIL);
        if (c) {
            KS_CHECK_CONTAINS(c->message, pause ? "the external trigger paused" : "the external trigger stopped");
            printf("    trigger %s: %s\n", pause ? "pause" : "stop", c->message);
        }
        KS_CHECK(!ks_syncstats_passed(q));
        if (!c || c->status != KS_CHECK_FAIL)
            dump(q);
        char *j = ks_syncstats_to_json(q);
        KS_CHECK(j && strstr(j, "\"result\": \"FAIL\"") && strstr(j, "\"passed\": false"));
        free(j);
        KS_CHECK(!ks_syncstats_find(q, "dropped-frames", -2) ||
                 ks_syncstats_find(q, "dropped-frames", -2)->status == KS_CHECK_PASS);
        sim_close(&r);
    }
}

int main(void)
{
    KS_RUN(test_correct_start_truth);
    KS_RUN(test_slow_consumer_loses_nothing);
    KS_RUN(test_laser_check_cross_groups_only);
    KS_RUN(test_lossless_startup_reads_one_ahead);
    KS_RUN(test_lossless_sets_same_any_depth);
    KS_RUN(test_master_first);
    KS_RUN(test_missing_cable);
    KS_RUN(test_no_signal_diagnosis);
    KS_RUN(test_auto_exposure);
    KS_RUN(test_repeated_exposure);
    KS_RUN(test_planned_vs_zero_delays);
    KS_RUN(test_disconnect);
    KS_RUN(test_stalled_host);
    KS_RUN(test_trigger_drift);
    KS_RUN(test_trigger_head_mode);
    KS_RUN(test_timestamp_conventions);
    KS_RUN(test_same_value_exposure_writes);
    KS_RUN(test_trigger_stop_and_pause);
    return KS_TEST_END();
}
