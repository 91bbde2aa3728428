/* Recordings run through the session exactly like a live rig: ks_playback_open_rig gives the rig,
 * a plan with the recorded delays and the backend; the session checks the jacks, starts the
 * subordinates and the master, and its matcher groups every frame set; the sync statistics agree
 * with the recorded timestamps. With ks_session_options.streams = depth only (what the fuse sink
 * reads) the sets are the same, keyed by the same colour timestamps, but colour and IR are
 * header-only: the readers did not decode them. */
#include <stdlib.h>

#include "kinsync/plan.h"
#include "kinsync/playback.h"
#include "kinsync/session.h"
#include "ks_test.h"
#include "recfix.h"

typedef struct set_rec {
    uint32_t present;
    bool complete;
    double key;
} set_rec;

static set_rec runs[2][40];

static void run(unsigned streams, set_rec *out)
{
    char dir[256], paths[3][300];
    recfix_tmpdir(dir, sizeof dir, "ses");
    const recfix_dev devs[3] = {
        {"000100000001", "master", KS_SYNC_MASTER, 0, -167, 30, -1, 700000, 0},
        {"000100000002", "sub1", KS_SYNC_SUBORDINATE, 0, 0, 30, -1, 700000, 0},
        {"000100000003", "sub2", KS_SYNC_SUBORDINATE, 0, 167, 30, 12, 700000, 0},
    };
    const char *p[3];
    ks_error e;
    for (int d = 0; d < 3; d++) {
        snprintf(paths[d], sizeof paths[d], "%s/%s.mkv", dir, devs[d].role);
        KS_CHECK_MSG(recfix_write(paths[d], &devs[d], d, "lab", "sha256:aa", &e) == KS_OK, "%s", e.message);
        p[d] = paths[d];
    }
    ks_rig rig;
    ks_plan *plan = malloc(sizeof *plan);
    ks_backend *b = NULL;
    ks_status st = ks_playback_open_rig(p, 3, NULL, &rig, plan, &b, NULL, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    KS_CHECK(plan->feasible);
    ks_session *s = NULL;
    if (st == KS_OK) {
        ks_session_options so;
        ks_session_options_init(&so);
        so.streams = streams;
        st = ks_session_open(&rig, plan, b, &so, &s, &e);
        KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    }
    if (st == KS_OK) {
        st = ks_session_start(s, &e);
        KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    }
    int sets = 0, complete = 0;
    double worst = 0;
    ks_status ns = KS_OK;
    while (st == KS_OK) {
        ks_session_set set;
        /* recordings run in virtual time: a slow host (sanitizers, load) delays sets, never loses them,
         * so the wait is long and the end must be the end of the recordings, not a timeout */
        ns = ks_session_next(s, &set, 60000, &e);
        if (ns != KS_OK)
            break;
        if (sets < 40)
            out[sets] = (set_rec){set.set.present_mask, set.set.complete, set.set.key_us};
        sets++;
        complete += set.set.complete;
        int m = ks_session_reference(s);
        for (int d = 0; d < 3; d++) {
            const ks_capture *c = (set.set.present_mask & (1u << d)) ? set.set.frames[d].user : NULL;
            if (!c)
                continue;
            /* depth always decoded (pixel values of recfix); colour and IR only when asked for */
            bool want_color = !streams || (streams & KS_STREAM_COLOR), want_ir = !streams || (streams & KS_STREAM_IR);
            KS_CHECK(c->depth && c->depth->data && c->depth->size == 640 * 576 * 2);
            KS_CHECK(c->color && ks_image_is_header_only(c->color) == !want_color);
            KS_CHECK(c->ir && ks_image_is_header_only(c->ir) == !want_ir);
            KS_CHECK(set.set.frames[d].has_color);
            if (c->ir && want_ir)
                KS_CHECK_INT(c->ir->size, 640 * 576 * 2);
        }
        for (int d = 0; d < 3; d++)
            if ((set.set.present_mask & (1u << d)) && (set.set.present_mask & (1u << m)) && set.set.frames[d].has_color) {
                double sk = set.set.frames[d].color_start_us - set.set.frames[m].color_start_us;
                if (fabs(sk) > worst)
                    worst = fabs(sk);
            }
        ks_session_set_release(&set);
    }
    /* 30 captures each, sub2 lost its frame 12: 29 complete sets and one partial; the recorded
     * color timestamps of all three are equal, so the skew is 0 */
    KS_CHECK_MSG(ns == KS_EEOF, "the session ended with %s (%s), not the end of the recordings",
                 ks_status_name(ns), e.message);
    KS_CHECK_INT(sets, 30);
    KS_CHECK_INT(complete, 29);
    KS_CHECK_NEAR(worst, 0, 1e-9);
    if (s) {
        ks_session_stop(s);
        ks_session_close(s);
    }
    ks_backend_free(b);
    free(plan);
    recfix_rmdir(dir);
}

static void test_session_on_recordings(void)
{
    run(0, runs[0]);
}

static void test_session_depth_only(void)
{
    run(KS_STREAM_DEPTH, runs[1]);
    int same = 0;
    for (int i = 0; i < 30; i++)
        same += runs[0][i].present == runs[1][i].present && runs[0][i].complete == runs[1][i].complete &&
                runs[0][i].key == runs[1][i].key;
    KS_CHECK_INT(same, 30);
}

int main(void)
{
    KS_RUN(test_session_on_recordings);
    KS_RUN(test_session_depth_only);
    return KS_TEST_END();
}
