/* One rig simulated by two worlds, as two hosts' agents do: world A opens the master, world B the
 * subordinate; both agree on a start instant in realtime. The master's pulses must reach B's
 * subordinate at that instant: its captures line up with A's master within the sync budget, and
 * its clock is zeroed by the master's first pulse. A start instant already in the past is refused. */
#include <stdlib.h>
#include <time.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void two_worlds_one_rig(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 7, false);
    cfg.mode = KS_SIM_PACED;
    ks_backend *ba = NULL, *bb = NULL;
    ks_error e;
    KS_CHECK_INT(ks_backend_open_sim(&rig, &cfg, &ba, &e), KS_OK);
    struct timespec pause = {0, 30 * 1000000}; /* the worlds are created at different times */
    nanosleep(&pause, NULL);
    KS_CHECK_INT(ks_backend_open_sim(&rig, &cfg, &bb, &e), KS_OK);
    ks_sim *sa = ks_sim_from_backend(ba), *sb = ks_sim_from_backend(bb);
    ks_device *master = NULL, *sub = NULL;
    KS_CHECK_INT(ks_device_open(ba, 0, &master, &e), KS_OK);
    KS_CHECK_INT(ks_device_open(bb, 1, &sub, &e), KS_OK);
    KS_CHECK_INT(ks_device_set_color_control(master, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL,
                                             8330, &e), KS_OK);
    KS_CHECK_INT(ks_device_set_color_control(sub, KS_CONTROL_EXPOSURE_TIME_ABSOLUTE, KS_CONTROL_MODE_MANUAL, 8330,
                                             &e), KS_OK);
    ks_device_config mc, sc;
    simt_device_config(&rig, 0, &mc, 0, 0);
    simt_device_config(&rig, 1, &sc, 0, 0);

    /* B's subordinate is armed first and gets nothing */
    KS_CHECK_INT(ks_device_start_cameras(sub, &sc, &e), KS_OK);
    ks_capture *c = NULL;
    KS_CHECK_INT(ks_device_get_capture(sub, &c, 50, &e), KS_ETIMEOUT);

    int64_t at = realtime_ns() + 150 * 1000000LL;
    KS_CHECK_INT(ks_sim_arm_at(sa, 0, ks_sim_virtual_from_realtime(sa, at), &e), KS_OK);
    KS_CHECK_INT(ks_device_start_cameras(master, &mc, &e), KS_OK);
    KS_CHECK_INT(ks_sim_start_remote(sb, 0, &mc, ks_sim_virtual_from_realtime(sb, at), &e), KS_OK);
    /* the master is opened in A: starting it remotely there is a mistake */
    KS_CHECK_INT(ks_sim_start_remote(sa, 0, &mc, ks_sim_virtual_from_realtime(sa, at), &e), KS_ESTATE);

    ks_sim_frame_truth ta, tb;
    ks_capture *cm = NULL, *cs = NULL;
    KS_CHECK_INT(ks_device_get_capture(master, &cm, 2000, &e), KS_OK);
    KS_CHECK_INT(ks_device_get_capture(sub, &cs, 2000, &e), KS_OK);
    KS_CHECK_INT(ks_sim_last_truth(sa, 0, &ta, &e), KS_OK);
    KS_CHECK_INT(ks_sim_last_truth(sb, 1, &tb, &e), KS_OK);
    /* each device loses 0..2 captures at start (the default): read on the one behind to one pulse */
    for (int k = 0; k < 4 && cm && cs && ta.pulse_index != tb.pulse_index; k++) {
        bool a_behind = ta.pulse_index < tb.pulse_index;
        ks_capture_release(a_behind ? cm : cs);
        if (a_behind) {
            cm = NULL;
            KS_CHECK_INT(ks_device_get_capture(master, &cm, 2000, &e), KS_OK);
            KS_CHECK_INT(ks_sim_last_truth(sa, 0, &ta, &e), KS_OK);
        } else {
            cs = NULL;
            KS_CHECK_INT(ks_device_get_capture(sub, &cs, 2000, &e), KS_OK);
            KS_CHECK_INT(ks_sim_last_truth(sb, 1, &tb, &e), KS_OK);
        }
    }
    KS_CHECK_INT(ta.pulse_index, tb.pulse_index);
    /* both worlds' global times map to realtime: the same instant within the 100 us budget */
    int64_t a_rt = (int64_t)ta.color_start_ns - (int64_t)ks_sim_virtual_from_realtime(sa, at) + at;
    int64_t b_rt = (int64_t)tb.color_start_ns - (int64_t)ks_sim_virtual_from_realtime(sb, at) + at;
    KS_CHECK_MSG(llabs(a_rt - b_rt) < 100000, "master %lld ns, subordinate %lld ns", (long long)a_rt,
                 (long long)b_rt);
    ks_sim_device_stats st;
    KS_CHECK_INT(ks_sim_device_stats_get(sb, 1, &st, &e), KS_OK);
    KS_CHECK_INT(st.zeroed_at_pulse, 0);
    ks_capture_release(cm);
    ks_capture_release(cs);

    /* an instant in the past cannot be honoured */
    KS_CHECK_INT(ks_sim_arm_at(sb, 1, ks_sim_virtual_from_realtime(sb, realtime_ns() - 1000000000LL), &e),
                 KS_ETIMEOUT);
    KS_CHECK_CONTAINS(e.message, "already passed");
    ks_device_close(master);
    ks_device_close(sub);
    ks_backend_free(ba);
    ks_backend_free(bb);
}

int main(void)
{
    KS_RUN(two_worlds_one_rig);
    return KS_TEST_END();
}
