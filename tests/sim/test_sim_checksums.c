/* The simulator's images, bit for bit: FNV-1a checksums of every image of a few captures per case,
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

int main(int argc, char **argv)
{
    print_only = argc > 1;
    KS_RUN(test_images_unchanged);
    return KS_TEST_END();
}
