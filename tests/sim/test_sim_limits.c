/* Host limits: USB controller bandwidth and the usbfs memory limit drop frames when exceeded; a
 * host that does not read loses the oldest frames of its bounded queue. */
#include <string.h>

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
    simt_rig(&rig, 4, SIMT_DAISY, 1.0); /* 720P MJPEG + NFOV_UNBINNED at 30 fps */
    double need = ks_stream_bandwidth_mbps(rig.camera.color_resolution, rig.camera.color_format,
                                           rig.camera.depth_mode, rig.camera.fps);
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

/* The bandwidth of a depth mode is the raw payload the depth camera sends per frame (the Sensor
 * SDK's SENSOR_MODE_*_SIZE), not the depth + IR images the host makes of it. */
static void test_usb_raw_payload_per_mode(void)
{
    static const struct {
        ks_depth_mode mode;
        ks_fps fps;
        double sdk_bytes;   /* Sensor SDK src/depth_mcu/depthcommands.h */
        double image_bytes; /* what the output images hold (depth + IR, or IR) */
    } m[] = {
        {KS_DEPTH_NFOV_2X2BINNED, KS_FPS_30, 5310760, 320 * 288 * 4},
        {KS_DEPTH_NFOV_UNBINNED, KS_FPS_30, 5310760, 640 * 576 * 4},
        {KS_DEPTH_WFOV_2X2BINNED, KS_FPS_30, 3777232, 512 * 512 * 4},
        {KS_DEPTH_WFOV_UNBINNED, KS_FPS_15, 9438664, 1024 * 1024 * 4},
        {KS_DEPTH_PASSIVE_IR, KS_FPS_30, 1678024, 1024 * 1024 * 2},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        double hz = ks_fps_hz(m[i].fps);
        double got = ks_stream_bandwidth_mbps(KS_COLOR_OFF, KS_FORMAT_MJPG, m[i].mode, m[i].fps);
        printf("%-15s %2.0f fps: %7.1f MB/s (SDK payload %.0f B/frame; output images %.0f B, %.1fx less)\n",
               ks_depth_mode_name(m[i].mode), hz, got, m[i].sdk_bytes, m[i].image_bytes,
               m[i].sdk_bytes / m[i].image_bytes);
        KS_CHECK_NEAR(got, m[i].sdk_bytes * hz / 1e6, 1e-6);
        KS_CHECK_INT(ks_depth_raw_payload_bytes(m[i].mode), (long)m[i].sdk_bytes);
    }
    /* colour adds on top: 720P MJPEG + NFOV unbinned is more than the depth payload alone */
    KS_CHECK(ks_stream_bandwidth_mbps(KS_COLOR_720P, KS_FORMAT_MJPG, KS_DEPTH_NFOV_UNBINNED, KS_FPS_30) >
             5310760 * 30 / 1e6);
}

/* usbfs: a stock host (the kernel's 16 MB, the default) loses frames with three devices; the same rig
 * with the host prepared as `kinsync doctor` says (usbfs_mb: 64) loses none. */
static void test_usbfs_limit(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    ks_sim_config_init(&cfg); /* the defaults, as a rig file without usbfs_mb */
    KS_CHECK_INT(cfg.usbfs_mb, ks_usbfs_default_mb());
    cfg.seed = 72;
    cfg.render_color = cfg.render_depth = false;
    ks_sim_device_stats st[3];
    run_counts(&rig, &cfg, 40, st);
    for (int i = 0; i < 3; i++)
        KS_CHECK_MSG(st[i].dropped_usbfs > 5, "device %d lost only %llu frames to usbfs", i,
                     (unsigned long long)st[i].dropped_usbfs);
    KS_CHECK_INT(ks_usbfs_recommended_mb(3), 64);
    const char *prepared = "simulation:\n  seed: 72\n  usbfs_mb: 64\n"
                           "  render: {color: false, depth: false}\n";
    ks_error err;
    KS_CHECK(ks_sim_config_load_string(prepared, strlen(prepared), "prepared.yaml", &rig, &cfg, &err) == KS_OK);
    KS_CHECK_INT(cfg.usbfs_mb, 64);
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
    KS_RUN(test_usb_raw_payload_per_mode);
    KS_RUN(test_usbfs_limit);
    KS_RUN(test_queue_overflow_drops_oldest);
    return KS_TEST_END();
}
