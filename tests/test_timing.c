/* The hardware tables against the facts page (shared/reference/azure-kinect-facts.md). */
#include "kinsync/device.h"
#include "kinsync/timing.h"
#include "ks_test.h"

static void laser_timing(void)
{
    KS_CHECK_INT(ks_depth_laser_window_us(KS_DEPTH_NFOV_UNBINNED), 9 * 125 + 8 * 1450);
    KS_CHECK_INT(ks_depth_laser_window_us(KS_DEPTH_NFOV_UNBINNED), 12725);
    KS_CHECK_INT(ks_depth_laser_window_us(KS_DEPTH_WFOV_UNBINNED), 9 * 125 + 8 * 2390);
    KS_CHECK_INT(ks_depth_laser_window_us(KS_DEPTH_PASSIVE_IR), 0);
    KS_CHECK_INT(ks_depth_pulse_pitch_us(KS_DEPTH_WFOV_2X2BINNED), 1575);
    KS_CHECK_INT(ks_laser_default_guard_us(KS_DEPTH_NFOV_2X2BINNED), 160);
    KS_CHECK_INT(ks_laser_default_guard_us(KS_DEPTH_PASSIVE_IR), 0);
}

static void periods_and_modes(void)
{
    KS_CHECK_INT(ks_frame_period_us(KS_FPS_30), 33333);
    KS_CHECK_INT(ks_frame_period_us(KS_FPS_15), 66666);
    KS_CHECK_INT(ks_frame_period_us(KS_FPS_5), 200000);
    const ks_depth_mode_info *w = ks_depth_mode_get(KS_DEPTH_WFOV_UNBINNED);
    KS_CHECK(w && !(w->fps_mask & (1u << KS_FPS_30)));
    KS_CHECK(ks_depth_mode_get(KS_DEPTH_OFF) == NULL);
    const ks_color_resolution_info *c = ks_color_resolution_get(KS_COLOR_1080P);
    KS_CHECK(c && !(c->format_mask & (1u << KS_FORMAT_NV12)) && (c->format_mask & (1u << KS_FORMAT_BGRA32)));
    ks_depth_mode m;
    KS_CHECK(ks_depth_mode_parse("nfov_unbinned", &m) && m == KS_DEPTH_NFOV_UNBINNED);
    ks_color_resolution r;
    KS_CHECK(ks_color_resolution_parse("2160p", &r) && r == KS_COLOR_2160P);
    KS_CHECK_STR(ks_image_format_fourcc(KS_FORMAT_DEPTH16), "b16g");
}

static void exposure(void)
{
    KS_CHECK_INT(ks_exposure_round_up(KS_POWERLINE_60HZ, 8000), 8330);
    KS_CHECK_INT(ks_exposure_round_up(KS_POWERLINE_50HZ, 8000), 10000);
    KS_CHECK_INT(ks_exposure_round_up(KS_POWERLINE_50HZ, 500), 500);
    KS_CHECK_INT(ks_exposure_round_up(KS_POWERLINE_60HZ, 999999), 133330);
}

static void delay_ticks(void)
{
    KS_CHECK_INT(ks_delay_us_to_ticks(160), 14); /* 160 us really is 155.6 us after truncation */
    KS_CHECK_NEAR(ks_delay_effective_us(160), 155.5556, 1e-3);
    KS_CHECK_INT(ks_delay_us_to_ticks(-80), -7);
    int64_t u = ks_delay_usec_at_least(160);
    KS_CHECK(ks_delay_effective_us(u) >= 160 && ks_delay_effective_us(u - 1) < 160);
    for (int want = 1; want < 3000; want += 7) {
        int64_t v = ks_delay_usec_at_least(want);
        KS_CHECK(ks_delay_effective_us(v) >= want - 1e-9);
        KS_CHECK(ks_delay_effective_us(v - 1) < want);
    }
}

static void trigger(void)
{
    ks_fps f;
    KS_CHECK(ks_trigger_frequency_supported(30.0, &f) && f == KS_FPS_30);
    KS_CHECK(ks_trigger_frequency_supported(15.0005, &f) && f == KS_FPS_15);
    KS_CHECK(!ks_trigger_frequency_supported(29.97, &f));
    KS_CHECK(!ks_trigger_frequency_supported(25.0, &f));
    KS_CHECK_NEAR(ks_trigger_spec_get()->min_pulse_width_us, 8.0, 0);
}

static void sdk_start_rules(void)
{
    ks_device_config c;
    ks_error e;
    ks_device_config_init(&c);
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL); /* both cameras off */
    KS_CHECK_CONTAINS(e.message, "both cameras are off");
    c.color_resolution = KS_COLOR_720P;
    c.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_OK);
    c.depth_mode = KS_DEPTH_WFOV_UNBINNED;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "WFOV_UNBINNED");
    c.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    c.subordinate_delay_off_master_usec = 100;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    c.wired_sync_mode = KS_SYNC_SUBORDINATE;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_OK);
    c.subordinate_delay_off_master_usec = 33334;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    c.subordinate_delay_off_master_usec = 0;
    c.depth_delay_off_color_usec = -33333;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_OK);
    c.depth_delay_off_color_usec = -33334;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    c.depth_delay_off_color_usec = 0;
    c.color_format = KS_FORMAT_NV12;
    c.color_resolution = KS_COLOR_1080P;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    c.color_format = KS_FORMAT_MJPG;
    c.color_resolution = KS_COLOR_OFF;
    c.wired_sync_mode = KS_SYNC_MASTER;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "master must stream the color camera");
    c.wired_sync_mode = KS_SYNC_STANDALONE;
    c.synchronized_images_only = true;
    KS_CHECK_INT(ks_device_config_check(&c, &e), KS_EINVAL);
}

int main(void)
{
    KS_RUN(laser_timing);
    KS_RUN(periods_and_modes);
    KS_RUN(exposure);
    KS_RUN(delay_ticks);
    KS_RUN(trigger);
    KS_RUN(sdk_start_rules);
    return KS_TEST_END();
}
