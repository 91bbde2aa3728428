/* The session on the scripted fake backend: the start sequence, the checks before streaming, the
 * failure modes that need exact control of every device (stall, disconnect, no signal, skew). */
#include <stdlib.h>
#include <time.h>

#include "support/fake_backend.h"
#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

typedef struct run {
    ks_rig rig;
    ks_plan plan;
    fake_config fc;
    ks_backend *b;
    ks_session *s;
} run;

static void setup(run *r, int n)
{
    memset(r, 0, sizeof *r);
    simt_rig(&r->rig, n, SIMT_DAISY, 2);
    ks_plan_make(&r->rig, NULL, &r->plan, NULL);
    fake_config_init(&r->fc, n, &r->rig);
}

static ks_status open_session(run *r, const ks_session_options *opt, ks_error *err)
{
    r->b = fake_backend_create(&r->fc);
    ks_session_options o;
    ks_session_options_init(&o);
    if (opt)
        o = *opt;
    if (!o.first_frame_timeout_ms)
        o.first_frame_timeout_ms = 10000; /* wall clock: generous for a loaded CI machine */
    return ks_session_open(&r->rig, &r->plan, r->b, &o, &r->s, err);
}

static int read_sets(run *r, int want, ks_status *last)
{
    int got = 0;
    ks_session_set set;
    ks_error e;
    *last = KS_OK;
    while (got < want) {
        ks_status st = ks_session_next(r->s, &set, 10000, &e);
        if (st != KS_OK) {
            *last = st;
            break;
        }
        ks_session_set_release(&set);
        got++;
    }
    return got;
}

static void dump(ks_syncstats *q)
{
    for (int i = 0; i < ks_syncstats_check_count(q); i++) {
        const ks_sync_check *c = ks_syncstats_check(q, i);
        fprintf(stderr, "  %s %s: %s\n", ks_check_status_name(c->status), c->id, c->message);
    }
}

static void teardown(run *r)
{
    ks_session_close(r->s);
    ks_backend_free(r->b);
}

static void test_correct_start(void)
{
    run r;
    setup(&r, 3);
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    ks_status last;
    KS_CHECK_INT(read_sets(&r, 90, &last), 90);
    ks_session_stop(r.s);
    fake_counters c;
    fake_backend_counters(r.b, &c);
    /* subordinates first, the master (device 0) last; exposure written once per device, never while streaming */
    KS_CHECK_INT(c.start_seq[0], 3);
    for (int i = 0; i < 3; i++) {
        KS_CHECK_INT(c.exposure_sets[i], 1);
        KS_CHECK_INT(c.exposure_sets_streaming[i], 0);
    }
    ks_syncstats *q = ks_session_stats(r.s);
    KS_CHECK(ks_syncstats_passed(q));
    if (!ks_syncstats_passed(q))
        dump(q);
    const ks_sync_check *ca = ks_syncstats_find(q, "color-alignment", -2);
    KS_CHECK(ca && ca->status == KS_CHECK_PASS && ca->value < 2);
    KS_CHECK(ks_syncstats_find(q, "start-order", -1) && ks_syncstats_find(q, "start-order", -1)->status == KS_CHECK_PASS);
    const ks_sync_device *d1 = ks_syncstats_device(q, 1);
    KS_CHECK(d1->host_fit_ok);
    KS_CHECK_NEAR(d1->host_rate, 1000, 1);
    KS_CHECK(d1->depth_offset_err_max_us < 2);
    teardown(&r);
}

static void test_missing_cable_before_streaming(void)
{
    run r;
    setup(&r, 3);
    r.fc.dev[2].no_sync_in = true; /* cam1 -> cam2 unplugged at cam2 */
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_ESYNC);
    KS_CHECK_CONTAINS(e.message, "Sync In jack of cam2");
    KS_CHECK_CONTAINS(e.message, "cam1");
    fake_counters c;
    fake_backend_counters(r.b, &c);
    for (int i = 0; i < 3; i++)
        KS_CHECK_INT(c.starts[i], 0);
    KS_CHECK(r.s == NULL);
    ks_backend_free(r.b);
}

static void test_jacks_unsupported_noted(void)
{
    run r;
    setup(&r, 2);
    r.fc.dev[1].jacks_unsupported = true;
    r.fc.dev[1].no_sync_in = true; /* cannot be seen */
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    ks_status last;
    read_sets(&r, 20, &last);
    ks_session_stop(r.s);
    const ks_sync_check *j = ks_syncstats_find(ks_session_stats(r.s), "jacks", 1);
    KS_CHECK(j && j->status == KS_CHECK_WARN);
    KS_CHECK_CONTAINS(j ? j->message : "", "checked from its frames");
    teardown(&r);
}

static void test_firmware_mismatch(void)
{
    run r;
    setup(&r, 2);
    r.fc.dev[1].rgb = (ks_version){1, 6, 102};
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "1.6.102");
    KS_CHECK_CONTAINS(e.message, "cam1");
    ks_backend_free(r.b);
}

static void test_no_signal_diagnosis(void)
{
    run r;
    setup(&r, 3);
    r.fc.dev[2].no_signal = true;
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_ETIMEOUT);
    KS_CHECK_CONTAINS(e.message, "no frames from cam2");
    KS_CHECK_CONTAINS(e.message, "cam1 Sync Out -> cam2 Sync In");
    KS_CHECK_CONTAINS(e.message, "(1) the cable");
    KS_CHECK_CONTAINS(e.message, "(3) master cam0");
    KS_CHECK_CONTAINS(e.message, "no sync pulses");
    teardown(&r);
}

static void test_disconnect_mid_run(void)
{
    run r;
    setup(&r, 3);
    r.fc.dev[1].disconnect_after = 40;
    ks_error e;
    /* what is asserted is which sets the disconnect leaves complete, not the host keeping up: the
     * capture threads wait for the consumer (a loaded CI machine otherwise drops frames of the others,
     * and those sets are partial for a reason this test is not about) */
    ks_session_options o;
    ks_session_options_init(&o);
    o.lossless = 1;
    KS_CHECK(open_session(&r, &o, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int complete = 0, total = 0, first_partial = -1, cam1_frames = 0;
    ks_session_set set;
    ks_status st;
    while ((st = ks_session_next(r.s, &set, 3000, &e)) == KS_OK) {
        if (!set.set.complete && first_partial < 0)
            first_partial = total;
        cam1_frames += (set.set.present_mask & 2u) != 0;
        total++;
        complete += set.set.complete;
        ks_session_set_release(&set);
    }
    /* every frame cam1 delivered before it went is in a set; the sets before the end are complete
     * (the last ones may lack the frames the others had not taken yet when the session stopped) */
    KS_CHECK_INT(cam1_frames, 40);
    KS_CHECK_MSG(first_partial < 0 || first_partial >= 36, "first partial set %d", first_partial);
    KS_CHECK_INT(st, KS_ENODEV);
    KS_CHECK_CONTAINS(e.message, "cam1");
    KS_CHECK_MSG(complete >= 36 && complete <= 40, "complete %d of %d", complete, total);
    KS_CHECK(total < 200);
    KS_CHECK(ks_session_next(r.s, &set, 100, &e) == KS_EEOF);
    teardown(&r);
}

/* A lossless session starts shallow (a capture thread waits once one frame is queued) until its
 * consumer has taken a complete set; when none ever completes (cam2 half a period off the others)
 * the queues still deepen after 8 sets: with the consumer away they then fill past one frame
 * (waited for, generously bounded), instead of staying one frame deep for the whole run. */
static void test_lossless_deepens_without_complete_set(void)
{
    run r;
    setup(&r, 3);
    r.fc.dev[2].offset_us = 1e6 / r.rig.camera.fps / 2;
    ks_session_options o;
    ks_session_options_init(&o);
    o.lossless = 1;
    ks_error e;
    KS_CHECK(open_session(&r, &o, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int complete = 0;
    ks_session_progress p;
    for (int i = 0; i < 10; i++) { /* the 9th call comes back after 8 sets: deepened from there */
        ks_session_set set;
        KS_CHECK(ks_session_next(r.s, &set, 10000, &e) == KS_OK);
        complete += set.set.complete;
        ks_session_set_release(&set);
        if (i == 7) {
            ks_session_get_progress(r.s, &p);
            KS_CHECK_MSG(p.max_queue_seen <= 1, "%d frames queued before the queues deepen", p.max_queue_seen);
        }
    }
    KS_CHECK_INT(complete, 0);
    for (int k = 0; k < 500; k++) {
        ks_session_get_progress(r.s, &p);
        if (p.max_queue_seen > 1)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    KS_CHECK_MSG(p.max_queue_seen > 1, "one frame deep for good: at most %d queued", p.max_queue_seen);
    ks_session_stop(r.s);
    teardown(&r);
}

static void test_stalled_device(void)
{
    /* cam2 stalls after 10 frames: no deadlock, sets keep coming partial, memory stays bounded */
    run r;
    setup(&r, 3);
    r.fc.dev[2].stall_after = 10;
    ks_session_options o;
    ks_session_options_init(&o);
    o.queue_frames = 4;
    ks_error e;
    KS_CHECK(open_session(&r, &o, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    int partial = 0, got = 0, max_held = 0;
    ks_session_set set;
    for (int i = 0; i < 300; i++) {
        if (ks_session_next(r.s, &set, 2000, &e) != KS_OK)
            break;
        got++;
        partial += !set.set.complete;
        ks_session_set_release(&set);
        ks_session_progress p;
        ks_session_get_progress(r.s, &p);
        if (p.matcher_held > max_held)
            max_held = p.matcher_held;
        KS_CHECK(p.max_queue_seen <= 4);
    }
    KS_CHECK_INT(got, 300);
    KS_CHECK(partial >= 280);
    KS_CHECK_MSG(max_held <= 3 * 16 + 64 * 3, "matcher held %d frames", max_held);
    ks_session_request_stop(r.s);
    while (ks_session_next(r.s, &set, 2000, &e) == KS_OK)
        ks_session_set_release(&set);
    KS_CHECK_INT(e.code, KS_EEOF);
    ks_syncstats *q = ks_session_stats(r.s);
    /* cam2 went silent for good while the master kept capturing: an outage of its sync signal, not
     * drops. That reading needs the other devices to have lost (almost) nothing; this backend runs
     * on the wall clock with 4-frame queues, so on a loaded machine (or under TSan) cam0/cam1 can
     * drop frames too, and then the losses are rightly the host's: only the verdict is checked. */
    const ks_sync_device *d0 = ks_syncstats_device(q, 0), *d1 = ks_syncstats_device(q, 1);
    uint64_t sets = ks_syncstats_sets(q);
    bool others_quiet = (double)(d0->gaps + d0->missing) <= 0.02 * (double)sets + 1 &&
                        (double)(d1->gaps + d1->missing) <= 0.02 * (double)sets + 1;
    const ks_sync_check *dr = ks_syncstats_find(q, "sync-signal", 2);
    if (others_quiet) {
        KS_CHECK(dr && dr->status == KS_CHECK_FAIL);
        KS_CHECK(dr && strstr(dr->message, "to the end of the run"));
    } else {
        printf("note: cam0/cam1 lost %llu/%llu frames (loaded machine): sync-signal not asserted\n",
               (unsigned long long)(d0->gaps + d0->missing), (unsigned long long)(d1->gaps + d1->missing));
    }
    KS_CHECK(!ks_syncstats_passed(q));
    teardown(&r);
}

static void test_skew_and_wrong_zero(void)
{
    /* cam1 skewed by 300 us: colour alignment fails naming it; cam2's clock a whole frame behind the
     * master (as after a wrong start): start-order fails naming it */
    run r;
    setup(&r, 3);
    r.fc.dev[1].skew_us = 300;
    r.fc.dev[2].offset_us = ks_frame_period_exact_us(KS_FPS_30);
    ks_error e;
    KS_CHECK(open_session(&r, NULL, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    ks_status last;
    read_sets(&r, 60, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    KS_CHECK(!ks_syncstats_passed(q));
    const ks_sync_check *ca = ks_syncstats_find(q, "color-alignment", -2);
    KS_CHECK(ca && ca->status == KS_CHECK_FAIL && ca->device == 1);
    KS_CHECK_NEAR(ca ? ca->value : 0, 300, 2);
    const ks_sync_check *so = ks_syncstats_find(q, "start-order", 2);
    KS_CHECK(so && so->status == KS_CHECK_FAIL);
    KS_CHECK_CONTAINS(so ? so->message : "", "master was started before");
    char *json = ks_syncstats_to_json(q);
    KS_CHECK_CONTAINS(json, "\"schema\": \"kinsync.verify/1\"");
    free(json);
    teardown(&r);
}

static void test_repeated_exposure(void)
{
    run r;
    setup(&r, 2);
    ks_session_options o;
    ks_session_options_init(&o);
    o.reapply_exposure_every = 10;
    ks_error e;
    KS_CHECK(open_session(&r, &o, &e) == KS_OK);
    KS_CHECK(ks_session_start(r.s, &e) == KS_OK);
    ks_status last;
    read_sets(&r, 45, &last);
    ks_session_stop(r.s);
    ks_syncstats *q = ks_session_stats(r.s);
    const ks_sync_check *x = ks_syncstats_find(q, "exposure-set-once", -2);
    KS_CHECK(x && x->status == KS_CHECK_FAIL && x->value >= 4);
    KS_CHECK_CONTAINS(x ? x->message : "", "never in the capture loop");
    teardown(&r);
}

int main(void)
{
    KS_RUN(test_correct_start);
    KS_RUN(test_missing_cable_before_streaming);
    KS_RUN(test_jacks_unsupported_noted);
    KS_RUN(test_firmware_mismatch);
    KS_RUN(test_no_signal_diagnosis);
    KS_RUN(test_disconnect_mid_run);
    KS_RUN(test_lossless_deepens_without_complete_set);
    KS_RUN(test_stalled_device);
    KS_RUN(test_skew_and_wrong_zero);
    KS_RUN(test_repeated_exposure);
    return KS_TEST_END();
}
