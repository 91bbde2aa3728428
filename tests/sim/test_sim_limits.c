/* Host limits: USB controller bandwidth and the usbfs memory limit drop frames when exceeded; a
 * host that does not read loses the oldest frames of its bounded queue. */
#include "ks_test.h"
#include "support/sim_rigs.h"

static void run_counts(const ks_rig *rig, ks_sim_config *cfg, int frames, ks_sim_device_stats *st)
{
    simt_run r;
    KS_CHECK(simt_open(&r, rig, cfg));
    KS_CHECK(simt_start_all(&r, rig));
    for (int k = 0; k < frames; k++)
        for (int i = 0; i < r.n; i++) {
            ks_capture *c = NULL;
            if (ks_device_get_capture(r.dev[i], &c, 1000, NULL) == KS_OK)
                ks_capture_release(c);
        }
    for (int i = 0; i < r.n; i++)
        ks_sim_device_stats_get(r.sim, i, &st[i], NULL);
    simt_close(&r);
}

static void test_usb_controller_bandwidth(void)
{
    ks_rig rig;
    simt_rig(&rig, 4, SIMT_DAISY, 1.0);
    rig.camera.color_resolution = KS_COLOR_2160P;
    rig.camera.depth_mode = KS_DEPTH_WFOV_2X2BINNED;
    double need = ks_stream_bandwidth_mbps(KS_COLOR_2160P, KS_FORMAT_MJPG, KS_DEPTH_WFOV_2X2BINNED, KS_FPS_30);
    KS_CHECK(4 * need > ks_usb3_controller_bandwidth_mbps()); /* the premise */
    KS_CHECK(2 * need < ks_usb3_controller_bandwidth_mbps());
    ks_sim_config cfg;
    simt_config(&cfg, 71, false);
    ks_sim_device_stats st[4];
    /* each on its own controller (unknown = own): nothing lost */
    run_counts(&rig, &cfg, 60, st);
    for (int i = 0; i < 4; i++)
        KS_CHECK_INT(st[i].dropped_usb, 0);
    /* all four on one controller: about 1 - cap/need of the frames are lost */
    for (int i = 0; i < 4; i++)
        snprintf(rig.devices[i].usb_controller, sizeof rig.devices[i].usb_controller, "0000:00:14.0");
    run_counts(&rig, &cfg, 60, st);
    double p = 1 - ks_usb3_controller_bandwidth_mbps() / (4 * need);
    for (int i = 0; i < 4; i++) {
        double frac = (double)st[i].dropped_usb / (double)st[i].captures_taken;
        KS_CHECK_MSG(frac > p * 0.4 && frac < p * 1.8, "device %d lost %.2f, expected about %.2f", i, frac, p);
    }
    /* two per controller fit */
    for (int i = 2; i < 4; i++)
        snprintf(rig.devices[i].usb_controller, sizeof rig.devices[i].usb_controller, "0000:03:00.0");
    run_counts(&rig, &cfg, 30, st);
    for (int i = 0; i < 4; i++)
        KS_CHECK_INT(st[i].dropped_usb, 0);
}

static void test_usbfs_limit(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 72, false);
    cfg.usbfs_mb = ks_usbfs_default_mb();
    ks_sim_device_stats st[3];
    run_counts(&rig, &cfg, 40, st);
    for (int i = 0; i < 3; i++)
        KS_CHECK_MSG(st[i].dropped_usbfs > 5, "device %d lost only %llu frames to usbfs", i,
                     (unsigned long long)st[i].dropped_usbfs);
    cfg.usbfs_mb = ks_usbfs_recommended_mb(3);
    run_counts(&rig, &cfg, 40, st);
    for (int i = 0; i < 3; i++)
        KS_CHECK_INT(st[i].dropped_usbfs, 0);
    /* one device per host is fine with the default */
    for (int i = 0; i < 3; i++)
        snprintf(rig.devices[i].host, sizeof rig.devices[i].host, "host%d", i);
    cfg.usbfs_mb = ks_usbfs_default_mb();
    run_counts(&rig, &cfg, 40, st);
    for (int i = 0; i < 3; i++)
        KS_CHECK_INT(st[i].dropped_usbfs, 0);
}

static void test_queue_overflow_drops_oldest(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 73, false);
    cfg.queue_frames = 4;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    /* read only device 0 for one second */
    for (int k = 0; k < 30; k++) {
        ks_capture *c = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, NULL) == KS_OK);
        ks_capture_release(c);
    }
    ks_sim_device_stats s;
    ks_sim_device_stats_get(r.sim, 1, &s, NULL);
    KS_CHECK(s.dropped_queue >= 20);
    /* what is left is the newest four */
    ks_capture *c = NULL;
    ks_sim_frame_truth t0, t1;
    KS_CHECK(ks_device_get_capture(r.dev[1], &c, 0, NULL) == KS_OK);
    ks_sim_last_truth(r.sim, 1, &t1, NULL);
    ks_sim_last_truth(r.sim, 0, &t0, NULL);
    KS_CHECK(t0.pulse_index - t1.pulse_index <= 4);
    ks_capture_release(c);
    simt_close(&r);
}

int main(void)
{
    KS_RUN(test_usb_controller_bandwidth);
    KS_RUN(test_usbfs_limit);
    KS_RUN(test_queue_overflow_drops_oldest);
    return KS_TEST_END();
}
