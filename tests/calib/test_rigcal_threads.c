/* Board detection in the calibration sink runs on several threads (ks_rigcal_sink_options.threads);
 * the views it collects must not depend on that: the demo rig's simulated frame sets, offered to a
 * one-thread sink and a three-thread sink, give the same observations in the same order. */
#include <string.h>

#include "kinsync/board.h"
#include "kinsync/rigcal_sink.h"
#include "kinsync/session.h"
#include "kinsync/source.h"
#include "ks_test.h"

static void test_threads_same_views(void)
{
    const char *rig = KS_SOURCE_DIR "/examples/rigs/demo-studio.yaml";
    ks_source_options so;
    ks_source_options_init(&so);
    so.backend = "sim";
    so.fast = true;
    ks_source src;
    ks_error err;
    KS_CHECK_MSG(ks_source_open(&rig, 1, &so, &src, &err) == KS_OK, "%s", err.message);
    ks_session *s = NULL;
    KS_CHECK_MSG(ks_session_open(&src.rig, &src.plan, src.backend, NULL, &s, &err) == KS_OK &&
                     ks_session_start(s, &err) == KS_OK,
                 "%s", err.message);
    ks_board board;
    KS_CHECK_MSG(ks_board_load(KS_SOURCE_DIR "/examples/boards/aprilgrid-6x6.yaml", &board, &err) == KS_OK, "%s",
                 err.message);
    ks_rigcal_sink *one = NULL, *three = NULL;
    ks_rigcal_sink_options o1 = {.step = 3, .threads = 1}, o3 = {.step = 3, .threads = 3};
    KS_CHECK_MSG(s && ks_rigcal_sink_create(s, &board, &o1, &one, &err) == KS_OK, "%s", err.message);
    KS_CHECK_MSG(s && ks_rigcal_sink_create(s, &board, &o3, &three, &err) == KS_OK, "%s", err.message);
    int sets = 0;
    ks_session_set set;
    while (one && three && sets < 45 && ks_session_next(s, &set, 5000, &err) == KS_OK) {
        KS_CHECK_INT(ks_rigcal_sink_add(one, &set, &err), KS_OK);
        KS_CHECK_INT(ks_rigcal_sink_add(three, &set, &err), KS_OK);
        ks_session_set_release(&set);
        sets++;
    }
    KS_CHECK_INT(sets, 45);
    ks_rigcal_problem p1, p3;
    if (one && three) {
        ks_rigcal_sink_problem(one, &p1);
        ks_rigcal_sink_problem(three, &p3);
        /* the board is in view: the comparison is over real detections */
        KS_CHECK_MSG(p1.obs_count > 500, "%d corners detected", p1.obs_count);
        printf("%d corners in %d frame sets, equal with 1 and 3 threads\n", p1.obs_count, p1.frame_count);
        KS_CHECK_INT(p3.obs_count, p1.obs_count);
        KS_CHECK_INT(p3.frame_count, p1.frame_count);
        int same = p1.obs_count == p3.obs_count &&
                   memcmp(p1.obs, p3.obs, (size_t)p1.obs_count * sizeof *p1.obs) == 0;
        KS_CHECK_MSG(same, "the three-thread sink's observations differ from the one-thread sink's");
        for (int d = 0; d < ks_rigcal_sink_device_count(one); d++) {
            int i1, b1, i3, b3;
            ks_rigcal_sink_counts(one, d, &i1, &b1);
            ks_rigcal_sink_counts(three, d, &i3, &b3);
            KS_CHECK_INT(i3, i1);
            KS_CHECK_INT(b3, b1);
            KS_CHECK_MSG(b1 > 0, "device %d never saw the board", d);
        }
    }
    ks_rigcal_sink_destroy(one);
    ks_rigcal_sink_destroy(three);
    if (s) {
        ks_session_stop(s);
        ks_session_close(s);
    }
    ks_source_close(&src);
}

int main(void)
{
    KS_RUN(test_threads_same_views);
    return KS_TEST_END();
}
