/* The demo's coloured cloud, checked against the scene: the demo rig (examples/rigs/demo-studio.yaml,
 * the rig ./scripts/demo.sh fuses) runs on the simulator with two objects of known colour added to
 * its room -- a red box and a blue sphere in front of the rig -- and one frame set goes through the
 * session into the fuse sink with colour (the demo's fuse step, on one set, with the devices'
 * ground-truth poses instead of a calibration). The cloud must have many distinct colours, and the
 * coloured points on the red box must be red and those on the blue sphere blue (a point no colour
 * camera saw keeps the uncoloured grey 128,128,128; few may): a colour lookup that
 * returns grey, colour paired with depth of another instant, or colour taken from the wrong pixel
 * all fail it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/calibration.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "kinsync/source.h"
#include "ks_test.h"
#include "util/fileio.h"

/* the objects added to the demo's room (world frame, mm; z up, floor at 0) */
static const double box_min[3] = {250, 350, 0}, box_max[3] = {550, 650, 700};
static const double sph_c[3] = {400, -500, 450}, sph_r = 180;

static char *demo_rig_with_objects(void)
{
    size_t len = 0;
    char *text = NULL;
    ks_error err;
    if (ks_file_read_all(KS_SOURCE_DIR "/examples/rigs/demo-studio.yaml", 1u << 20, &text, &len, &err) != KS_OK)
        return NULL;
    /* the board's AprilGrid path is relative to the rig file: make it absolute; add the objects */
    const char *scene = "  scene: {name: room}";
    const char *board = "../boards/aprilgrid-6x6.yaml";
    char *s = strstr(text, scene), *b = strstr(text, board);
    if (!s || !b || b < s) {
        free(text);
        return NULL;
    }
    size_t cap = len + 4096;
    char *out = malloc(cap);
    int n = snprintf(out, cap,
                     "%.*s  scene:\n    name: room\n    objects:\n"
                     "      - {box: {min: [%g, %g, %g], max: [%g, %g, %g]}, color: [230, 25, 25]}\n"
                     "      - {sphere: {center: [%g, %g, %g], radius: %g}, color: [25, 25, 230]}"
                     "%.*s%s%s",
                     (int)(s - text), text, box_min[0], box_min[1], box_min[2], box_max[0], box_max[1], box_max[2],
                     sph_c[0], sph_c[1], sph_c[2], sph_r, (int)(b - (s + strlen(scene))), s + strlen(scene),
                     KS_SOURCE_DIR "/examples/boards/aprilgrid-6x6.yaml", b + strlen(board));
    free(text);
    if (n <= 0 || (size_t)n >= cap) {
        free(out);
        return NULL;
    }
    return out;
}

/* On the box's surface (within tol) / on the sphere's. */
static bool on_box(const double p[3], double tol)
{
    bool in_outer = true, in_inner = true;
    for (int k = 0; k < 3; k++) {
        in_outer = in_outer && p[k] > box_min[k] - tol && p[k] < box_max[k] + tol;
        in_inner = in_inner && p[k] > box_min[k] + tol && p[k] < box_max[k] - tol;
    }
    return in_outer && !in_inner && p[2] > 20; /* not the floor under it */
}

static bool on_sphere(const double p[3], double tol)
{
    double d = sqrt((p[0] - sph_c[0]) * (p[0] - sph_c[0]) + (p[1] - sph_c[1]) * (p[1] - sph_c[1]) +
                    (p[2] - sph_c[2]) * (p[2] - sph_c[2]));
    return fabs(d - sph_r) < tol;
}

static int cmp_rgb(const void *a, const void *b)
{
    return memcmp(a, b, 3);
}

static void test_demo_cloud_colours_match_scene(void)
{
    char *yaml = demo_rig_with_objects();
    KS_CHECK_MSG(yaml != NULL, "cannot build the rig from examples/rigs/demo-studio.yaml");
    if (!yaml)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/test_pipeline_colors_%d.yaml", KS_BINARY_DIR, (int)getpid());
    FILE *f = fopen(path, "w");
    KS_CHECK(f != NULL);
    if (!f) {
        free(yaml);
        return;
    }
    fputs(yaml, f);
    fclose(f);
    free(yaml);

    ks_source src;
    ks_source_options so;
    ks_source_options_init(&so);
    so.backend = "sim";
    so.fast = true;
    ks_error err;
    const char *paths[1] = {path};
    KS_CHECK_INT(ks_source_open(paths, 1, &so, &src, &err), KS_OK);
    unlink(path);
    ks_session *s = NULL;
    KS_CHECK_INT(ks_session_open(&src.rig, &src.plan, src.backend, NULL, &s, &err), KS_OK);
    KS_CHECK_INT(ks_session_start(s, &err), KS_OK);
    ks_sim *sim = ks_sim_from_backend(src.backend);
    KS_CHECK(sim != NULL);
    const int n = ks_session_device_count(s);
    ks_rig_pose poses[KS_RIG_MAX_DEVICES];
    memset(poses, 0, sizeof poses);
    for (int i = 0; i < n && sim; i++) { /* ground truth: the rig frame is the world */
        ks_device *d = ks_session_device(s, i);
        snprintf(poses[i].serial, sizeof poses[i].serial, "%s", ks_device_info_get(d)->serial);
        KS_CHECK_INT(ks_sim_device_pose(sim, ks_session_rig_index(s, i), &poses[i].depth_to_rig, &err), KS_OK);
        char *js = NULL;
        size_t len = 0;
        ks_calibration cal;
        const ks_device_config *cfg = ks_device_running_config(d);
        KS_CHECK_INT(ks_device_get_calibration_json(d, &js, &len, &err), KS_OK);
        KS_CHECK_INT(ks_calibration_from_json(js, len, cfg->depth_mode, cfg->color_resolution, &cal, &err), KS_OK);
        free(js);
        ks_extrinsics c2d;
        ks_extrinsics_invert(&cal.depth_to_color, &c2d);
        ks_extrinsics_compose(&c2d, &poses[i].depth_to_rig, &poses[i].color_to_rig);
    }
    ks_fuse_options fo = {.voxel_mm = 5, .threads = 2, .color = true, .color_scale = 1};
    ks_fuse_sink *k = NULL;
    KS_CHECK_INT(ks_fuse_sink_create(s, poses, (size_t)n, &fo, &k, &err), KS_OK);
    /* the third complete set: past the start */
    ks_cloud cloud;
    memset(&cloud, 0, sizeof cloud);
    ks_fuse_set_info info = {0};
    int complete = 0;
    while (k && complete < 3) {
        ks_session_set set;
        ks_status st = ks_session_next(s, &set, 30000, &err);
        KS_CHECK_INT(st, KS_OK);
        if (st != KS_OK)
            break;
        if (set.set.complete && ++complete == 3) {
            ks_fuse_stats fs;
            KS_CHECK_INT(ks_fuse_sink_run(k, &set, &cloud, &fs, &info, &err), KS_OK);
        }
        ks_session_set_release(&set);
    }
    printf("fused %zu points; colour from devices 0x%x, unpaired 0x%x\n", cloud.count, info.color_mask,
           info.color_unpaired);
    KS_CHECK_INT(info.color_mask, (1u << n) - 1);
    KS_CHECK(cloud.rgb != NULL && cloud.count > 20000);
    size_t greyed = 0, box = 0, box_red = 0, sph = 0, sph_blue = 0, grey = 0;
    for (size_t i = 0; cloud.rgb && i < cloud.count; i++) {
        const uint8_t *c = cloud.rgb + 3 * i;
        const double p[3] = {cloud.x[i], cloud.y[i], cloud.z[i]};
        grey += c[0] == 128 && c[1] == 128 && c[2] == 128;
        bool uncoloured = c[0] == 128 && c[1] == 128 && c[2] == 128; /* no colour pixel saw it */
        if (on_box(p, 4) && !uncoloured) {
            box++;
            box_red += c[0] > c[1] + 20 && c[0] > c[2] + 20;
            greyed += c[1] >= 48; /* (230, 25, 25) averaged with a grey "no colour" (128) */
        } else if (on_sphere(p, 4) && !uncoloured) {
            sph++;
            sph_blue += c[2] > c[0] + 20 && c[2] > c[1] + 20;
            greyed += c[0] >= 48;
        }
    }
    /* distinct colours */
    size_t distinct = 0;
    if (cloud.rgb && cloud.count) {
        uint8_t *c = malloc(cloud.count * 3);
        memcpy(c, cloud.rgb, cloud.count * 3);
        qsort(c, cloud.count, 3, cmp_rgb);
        distinct = 1;
        for (size_t i = 1; i < cloud.count; i++)
            distinct += memcmp(c + 3 * i, c + 3 * (i - 1), 3) != 0;
        free(c);
    }
    printf("%zu distinct colours, %zu uncoloured grey; red box: %zu of its %zu coloured points red; blue sphere: "
           "%zu of %zu blue\n",
           distinct, grey, box_red, box, sph_blue, sph);
    printf("%zu box and sphere points greyed (their colour mixed with grey)\n", greyed);
    KS_CHECK(distinct >= 1000);
    /* a point no colour camera saw adds no colour to its voxel: the wall's colours stay pure (with
     * grey averaged in: 1,352 of 27,799) */
    KS_CHECK_MSG(greyed <= (box + sph) / 500, "%zu of %zu box and sphere points have grey mixed in", greyed, box + sph);
    KS_CHECK(grey < cloud.count / 10);
    KS_CHECK(box >= 500 && sph >= 500);
    KS_CHECK_MSG(box_red >= box * 9 / 10, "only %zu of %zu box points are red", box_red, box);
    KS_CHECK_MSG(sph_blue >= sph * 9 / 10, "only %zu of %zu sphere points are blue", sph_blue, sph);
    ks_cloud_free(&cloud);
    ks_fuse_sink_destroy(k);
    ks_session_stop(s);
    ks_session_close(s);
    ks_source_close(&src);
}

int main(void)
{
    KS_RUN(test_demo_cloud_colours_match_scene);
    return KS_TEST_END();
}
