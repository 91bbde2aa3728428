/* The simulator's start-up work and its images. Each camera's rays and static view are built once per
 * mode (ks_sim_render_stats). The images, bit for bit: FNV-1a checksums of every image of a few captures per case,
 * compared with the values the renderer gave before its start-up was reworked (ray tables shared
 * between the depth and the colour half of a static render, batched unprojection, one board pixel
 * iterator). A speed-up must not change a single pixel; a changed model must update these values
 * knowingly (and say so in docs/simulator.md). The cases cover every render path: depth modes
 * (binned, unbinned, WFOV, passive IR, off), colour formats (MJPG, BGRA, NV12, YUY2, off), the
 * moving board (depth, colour over MJPG noise, colour over BGRA), exact geometry, laser damage
 * through the pair masks, and ks_sim_laser_shared's pixel counts.
 *
 * Run with an argument (`test_sim_checksums print`) to print the values instead of checking them. */
#include <stdlib.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static bool print_only;

static uint64_t fnv(uint64_t h, const ks_image *img)
{
    if (!img)
        return (h ^ 0xffu) * 0x100000001b3ull;
    for (size_t i = 0; i < img->size; i++)
        h = (h ^ img->data[i]) * 0x100000001b3ull;
    return h;
}

typedef struct checksum_case {
    const char *name;
    int devices;
    ks_depth_mode depth;
    ks_color_resolution color;
    ks_image_format format;
    bool moving, sensor, zero_delays, laser_shared;
    int captures;
    uint64_t expect;
} checksum_case;

static uint64_t run_case(const checksum_case *k)
{
    ks_rig rig;
    simt_rig(&rig, k->devices, SIMT_DAISY, 1.0);
    rig.camera.depth_mode = k->depth;
    rig.camera.color_resolution = k->color;
    rig.camera.color_format = k->format;
    ks_sim_config cfg;
    simt_config(&cfg, 7, true);
    cfg.sensor = k->sensor;
    if (k->moving) {
        cfg.board_key_count = 2;
        cfg.board_keys[0] = (ks_sim_board_key){.t_ms = 0, .pos = {0, 0, 900}, .rotvec = {0, -1.5707963, 0}};
        cfg.board_keys[1] = (ks_sim_board_key){.t_ms = 2000, .pos = {600, 500, 1100}, .rotvec = {0.3, -1.3, 0}};
    }
    simt_run r;
    uint64_t h = 0xcbf29ce484222325ull;
    if (!simt_open(&r, &rig, &cfg))
        return 0;
    ks_error err;
    if (k->laser_shared)
        for (int a = 0; a < k->devices; a++)
            for (int b = 0; b < k->devices; b++) {
                int px = -2;
                if (a != b) {
                    KS_CHECK(ks_sim_laser_shared(r.sim, a, b, k->depth, &px, &err) == KS_OK);
                    h = (h ^ (uint64_t)(uint32_t)px) * 0x100000001b3ull;
                }
            }
    for (int i = 0; i < k->devices; i++) {
        simt_device_config(&rig, i, &r.cfg[i], 0, k->zero_delays ? 0 : (uint32_t)(i * 160));
        r.cfg[i].depth_mode = k->depth;
        r.cfg[i].color_resolution = k->color;
        r.cfg[i].color_format = k->format;
    }
    KS_CHECK(simt_start_all(&r, &rig));
    for (int n = 0; n < k->captures; n++)
        for (int i = 0; i < k->devices; i++) {
            ks_capture *c = NULL;
            if (ks_device_get_capture(r.dev[i], &c, 1000, &err) != KS_OK) {
                KS_CHECK_MSG(false, "%s: capture %d of device %d: %s", k->name, n, i, err.message);
                simt_close(&r);
                return 0;
            }
            h = fnv(fnv(fnv(h, c->color), c->depth), c->ir);
            ks_capture_release(c);
        }
    simt_close(&r);
    return h;
}

static void test_images_unchanged(void)
{
    static const checksum_case cases[] = {
        {"NFOV binned + 720P BGRA, moving board", 2, KS_DEPTH_NFOV_2X2BINNED, KS_COLOR_720P, KS_FORMAT_BGRA32, true,
         true, false, false, 3, 0x979af8e6715e5b7aull},
        {"NFOV unbinned + 720P MJPG, moving board", 2, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P, KS_FORMAT_MJPG, true,
         true, false, false, 5, 0xfc532752fd275e5bull},
        {"WFOV binned + 720P NV12, zero delays, laser_shared", 2, KS_DEPTH_WFOV_2X2BINNED, KS_COLOR_720P,
         KS_FORMAT_NV12, false, true, true, true, 3, 0x8bfb93fdcd5e1c51ull},
        {"NFOV unbinned, exact geometry, moving board, YUY2", 1, KS_DEPTH_NFOV_UNBINNED, KS_COLOR_720P,
         KS_FORMAT_YUY2, true, false, false, false, 3, 0x3877236718559b0aull},
        {"passive IR, colour off", 1, KS_DEPTH_PASSIVE_IR, KS_COLOR_OFF, KS_FORMAT_MJPG, false, true, false, false, 2,
         0xcd491dd6393ba834ull},
        {"depth off, 720P MJPG", 1, KS_DEPTH_OFF, KS_COLOR_720P, KS_FORMAT_MJPG, false, true, false, false, 5,
         0x34050a8ea897f9cfull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t h = run_case(&cases[i]);
        if (print_only)
            printf("%-55s 0x%016llxull\n", cases[i].name, (unsigned long long)h);
        else
            KS_CHECK_MSG(h == cases[i].expect, "%s: images 0x%016llx, expected 0x%016llx", cases[i].name,
                         (unsigned long long)h, (unsigned long long)cases[i].expect);
    }
}

static void check_stats(simt_run *r, int n, uint64_t rays, uint64_t depth, uint64_t color, const char *when)
{
    for (int i = 0; i < n; i++) {
        ks_sim_render_stats st;
        ks_error err;
        KS_CHECK(ks_sim_render_stats_get(r->sim, i, &st, &err) == KS_OK);
        KS_CHECK_MSG(st.ray_tables == rays && st.depth_views == depth && st.color_views == color,
                     "%s, device %d: %llu ray tables, %llu depth and %llu colour views; expected %llu, %llu, %llu",
                     when, i, (unsigned long long)st.ray_tables, (unsigned long long)st.depth_views,
                     (unsigned long long)st.color_views, (unsigned long long)rays, (unsigned long long)depth,
                     (unsigned long long)color);
    }
}

/* Each camera's rays and static view are built once per mode, however they are asked for: the
 * session's laser check (every pair, before anything streams) builds the depth views, the first
 * captures add the colour views and reuse the depth views; a new colour resolution adds one colour
 * view, going back to a known one adds nothing; images off build nothing. */
static void test_views_built_once(void)
{
    const int n = 3;
    ks_rig rig;
    simt_rig(&rig, n, SIMT_DAISY, 1.0);
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    ks_sim_config cfg;
    simt_config(&cfg, 5, true);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_error err;
    check_stats(&r, n, 0, 0, 0, "opened");
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            int px = 0;
            if (a != b)
                KS_CHECK(ks_sim_laser_shared(r.sim, a, b, rig.camera.depth_mode, &px, &err) == KS_OK);
        }
    check_stats(&r, n, 1, 1, 0, "after the laser check of every pair");
    for (int i = 0; i < n; i++) {
        simt_device_config(&rig, i, &r.cfg[i], 0, (uint32_t)(i * 160));
        r.cfg[i].depth_mode = rig.camera.depth_mode;
    }
    for (int round = 0; round < 3; round++) {
        /* 720P, then 1080P, then 720P again */
        for (int i = 0; i < n; i++)
            r.cfg[i].color_resolution = round == 1 ? KS_COLOR_1080P : KS_COLOR_720P;
        KS_CHECK(simt_start_all(&r, &rig));
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < n; i++) {
                ks_capture *c = NULL;
                KS_CHECK(ks_device_get_capture(r.dev[i], &c, 1000, &err) == KS_OK);
                KS_CHECK(c && c->color && c->depth);
                ks_capture_release(c);
            }
        check_stats(&r, n, round == 0 ? 2 : 3, 1, round == 0 ? 1 : 2, round == 0 ? "streaming 720P"
                                                                 : round == 1 ? "streaming 1080P"
                                                                              : "back at 720P");
        for (int i = 0; i < n; i++)
            ks_device_stop_cameras(r.dev[i]);
    }
    KS_CHECK(ks_sim_render_stats_get(r.sim, n, &(ks_sim_render_stats){0}, &err) == KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "not a device");
    simt_close(&r);

    /* timing only: no rays, no views */
    simt_config(&cfg, 5, false);
    KS_CHECK(simt_open(&r, &rig, &cfg));
    KS_CHECK(simt_start_all(&r, &rig));
    for (int i = 0; i < n; i++) {
        ks_capture *c = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[i], &c, 1000, &err) == KS_OK);
        ks_capture_release(c);
    }
    for (int i = 0; i < n; i++) {
        ks_sim_render_stats st;
        KS_CHECK(ks_sim_render_stats_get(r.sim, i, &st, &err) == KS_OK);
        KS_CHECK_INT(st.ray_tables, 0);
    }
    simt_close(&r);
}

/* A colour stream the host does not read (ks_device_set_streams) is not rendered: its images come
 * header-only (format, size, timestamps, exposure; no data) and no colour view is built, while depth
 * and IR are the very bytes of a run that reads everything and the timing is the same. Asking for
 * every stream again brings the colour back from the next capture formed. */
static void test_colour_not_read_not_rendered(void)
{
    const int n = 2, K = 4;
    ks_rig rig;
    simt_rig(&rig, n, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 9, true);
    uint64_t depth_sum[2] = {0, 0}, ts_sum[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        simt_run r;
        KS_CHECK(simt_open(&r, &rig, &cfg));
        for (int i = 0; i < n; i++) {
            simt_device_config(&rig, i, &r.cfg[i], 0, (uint32_t)(i * 160));
            if (pass == 1)
                ks_device_set_streams(r.dev[i], KS_STREAM_DEPTH | KS_STREAM_IR);
        }
        KS_CHECK(simt_start_all(&r, &rig));
        ks_error err;
        uint64_t h = 0xcbf29ce484222325ull, t = 0;
        for (int k = 0; k < K; k++)
            for (int i = 0; i < n; i++) {
                ks_capture *c = NULL;
                KS_CHECK(ks_device_get_capture(r.dev[i], &c, 1000, &err) == KS_OK);
                if (!c)
                    continue;
                KS_CHECK(c->color && c->depth && c->ir);
                if (c->color) {
                    KS_CHECK_INT(c->color->width, 1280);
                    KS_CHECK_INT(c->color->height, 720);
                    KS_CHECK_INT(c->color->format, KS_FORMAT_MJPG);
                    KS_CHECK_MSG(ks_image_is_header_only(c->color) == (pass == 1), "pass %d: colour %s", pass,
                                 ks_image_is_header_only(c->color) ? "header-only" : "rendered");
                    t = t * 31 + c->color->device_ts_us + (uint64_t)c->color->exposure_us;
                }
                h = fnv(fnv(h, c->depth), c->ir);
                ks_capture_release(c);
            }
        depth_sum[pass] = h;
        ts_sum[pass] = t;
        for (int i = 0; i < n; i++) {
            ks_sim_render_stats st;
            KS_CHECK(ks_sim_render_stats_get(r.sim, i, &st, &err) == KS_OK);
            KS_CHECK_INT(st.color_views, pass == 0 ? 1 : 0);
            KS_CHECK_INT(st.ray_tables, pass == 0 ? 2 : 1);
        }
        if (pass == 1) { /* every stream again: colour from the next capture formed (queued ones stay) */
            ks_device_set_streams(r.dev[0], 0);
            bool coloured = false;
            for (int k = 0; k < 20 && !coloured; k++) {
                ks_capture *c = NULL;
                KS_CHECK(ks_device_get_capture(r.dev[0], &c, 1000, &err) == KS_OK);
                coloured = c && c->color && !ks_image_is_header_only(c->color) && c->color->size > 1000;
                ks_capture_release(c);
                ks_capture *o = NULL; /* keep the other device read (lockstep) */
                ks_device_get_capture(r.dev[1], &o, 1000, &err);
                ks_capture_release(o);
            }
            KS_CHECK_MSG(coloured, "no rendered colour after asking for every stream again");
        }
        simt_close(&r);
    }
    KS_CHECK_MSG(depth_sum[0] == depth_sum[1], "depth and IR differ when colour is not read");
    KS_CHECK_MSG(ts_sum[0] == ts_sum[1], "colour timestamps differ when colour is not read");
}

int main(int argc, char **argv)
{
    print_only = argc > 1;
    KS_RUN(test_views_built_once);
    KS_RUN(test_colour_not_read_not_rendered);
    KS_RUN(test_images_unchanged);
    return KS_TEST_END();
}
