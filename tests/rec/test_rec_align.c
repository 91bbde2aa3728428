/* kinsync align on recordings with known content: master/subordinate from the tags, planned delays
 * removed, a dropped frame found, partial sets named, files of another rig / plan / frame rate
 * reported with the reason, and the export (16-bit PNG with the recorded values, JPEG as stored,
 * index.json). */
#include <jansson.h>
#include <png.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinsync/align.h"
#include "ks_test.h"
#include "recfix.h"

static char dir[256];

/* Runs `kinsync align ARGS` (stdout+stderr into dir/cli.out); returns its exit status and the output. */
static int align_cli(const char *args, char *out, size_t n)
{
    char cmd[2048], path[300];
    snprintf(path, sizeof path, "%s/cli.out", dir);
    snprintf(cmd, sizeof cmd, "%s/kinsync align %s >%s 2>&1", KS_BINARY_DIR, args, path);
    int rc = system(cmd);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t k = fread(out, 1, n - 1, f);
        out[k] = '\0';
        fclose(f);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
static char paths[6][300];
/* master, sub1 (delay 160, drops frame 5), sub2 (delay 320, one frame shorter), then three that
 * do not belong: another rig name, another plan digest, another frame rate */
static const recfix_dev devs[6] = {
    {"000100000001", "master", KS_SYNC_MASTER, 0, -160, 10, -1, 500000, 0},
    {"000100000002", "sub1", KS_SYNC_SUBORDINATE, 160, 0, 10, 5, 500000, 0},
    {"000100000003", "sub2", KS_SYNC_SUBORDINATE, 320, 160, 9, -1, 500000, 0},
    {"000200000001", "sub1", KS_SYNC_SUBORDINATE, 160, 0, 10, -1, 500000, 0},
    {"000300000001", "sub3", KS_SYNC_SUBORDINATE, 480, 0, 10, -1, 500000, 0},
    {"000400000001", "sub4", KS_SYNC_SUBORDINATE, 0, 0, 10, -1, 500000, 15},
};

static void write_files(void)
{
    recfix_tmpdir(dir, sizeof dir, "al");
    const char *rigs[6] = {"lab", "lab", "lab", "garage", "lab", "lab"};
    const char *digests[6] = {"sha256:aa", "sha256:aa", "sha256:aa", "sha256:aa", "sha256:bb", "sha256:aa"};
    for (int d = 0; d < 6; d++) {
        snprintf(paths[d], sizeof paths[d], "%s/%s-%s.mkv", dir, devs[d].role, devs[d].serial);
        ks_error e;
        KS_CHECK_MSG(recfix_write(paths[d], &devs[d], d, rigs[d], digests[d], &e) == KS_OK, "%s", e.message);
    }
}

static void test_roles_delays_drops(void)
{
    /* the master is not first on the command line: align finds it from the tags */
    const char *p[3] = {paths[2], paths[0], paths[1]};
    ks_align_result *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 3, NULL, &r, &e), KS_OK);
    if (!r)
        return;
    KS_CHECK_INT(r->reference, 1);
    KS_CHECK_INT(r->member_count, 3);
    KS_CHECK(!r->files[0].frameless && !r->files[1].frameless && !r->files[2].frameless);
    /* set 9 lacks sub2 (it stopped a frame early): the ragged stop, trimmed; set 5 lacks sub1 (a
     * drop in the middle of the take): partial, kept */
    KS_CHECK_INT(r->set_count, 9);
    KS_CHECK_INT(r->trimmed_leading, 0);
    KS_CHECK_INT(r->trimmed_trailing, 1);
    KS_CHECK_INT(r->complete_sets, 8);
    KS_CHECK_INT(r->files[2].drops, 1);  /* sub1 */
    KS_CHECK_INT(r->files[2].missing_from_sets, 1);
    KS_CHECK_INT(r->files[0].missing_from_sets, 0);
    KS_CHECK_INT(r->files[0].drops, 0);
    KS_CHECK_INT(r->sets[5].frame[2], -1);
    KS_CHECK_INT(r->files[1].in_partial_sets, 1);
    /* planned delays removed: the recorded offsets are exactly the planned ones, so the skew is
     * what the 90 kHz firmware quantum leaves: requested - effective */
    KS_CHECK_NEAR(r->files[0].skew_us.mean, 320 - ks_delay_effective_us(320), 1e-6);
    KS_CHECK_NEAR(r->files[2].skew_us.mean, 160 - ks_delay_effective_us(160), 1e-6);
    KS_CHECK_NEAR(r->files[2].skew_us.stddev, 0, 1e-9);
    KS_CHECK_NEAR(r->files[2].drift_ppm, 0, 1e-6);
    KS_CHECK_NEAR(r->files[0].depth_offset_us.mean, 160 - ks_delay_effective_us(160), 1e-6);
    KS_CHECK_INT(r->files[0].start_vs_reference_us, lround(320 - ks_delay_effective_us(320)));
    ks_align_free(r);
}

/* keep_edge_sets: every set the session formed, the ragged stop included */
static void test_keep_edges(void)
{
    const char *p[3] = {paths[2], paths[0], paths[1]};
    ks_align_options o = {.keep_edge_sets = true};
    ks_align_result *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 3, &o, &r, &e), KS_OK);
    if (!r)
        return;
    KS_CHECK_INT(r->set_count, 10);
    KS_CHECK_INT(r->complete_sets, 8); /* set 5 lacks sub1, set 9 lacks sub2 */
    KS_CHECK_INT(r->trimmed_leading + r->trimmed_trailing, 0);
    KS_CHECK_INT(r->sets[9].frame[0], -1);
    KS_CHECK_INT(r->files[0].missing_from_sets, 1);
    KS_CHECK_INT(r->files[1].in_partial_sets, 2);
    ks_align_free(r);
}

/* The ragged start and stop of a take: a subordinate that starts two frames late and one that
 * stops a frame early give partial sets at the edges only; they are trimmed and counted, the rest
 * is complete. A drop right after the late start is still a partial set (it is kept). */
static void test_ragged_edges(void)
{
    const int P = ks_frame_period_us(KS_FPS_30);
    const recfix_dev rd[4] = {
        {"000100000001", "master", KS_SYNC_MASTER, 0, 0, 12, -1, 500000, 0},
        {"000100000002", "sub1", KS_SYNC_SUBORDINATE, 160, 0, 10, -1, 500000 + 2 * (uint64_t)P, 0},
        {"000100000003", "sub2", KS_SYNC_SUBORDINATE, 320, 0, 11, -1, 500000, 0},
        {"000100000003", "sub2", KS_SYNC_SUBORDINATE, 320, 0, 11, 2, 500000, 0}, /* drops frame 2 */
    };
    char rp[4][300];
    for (int d = 0; d < 4; d++) {
        snprintf(rp[d], sizeof rp[d], "%s/ragged%d.mkv", dir, d);
        ks_error e;
        KS_CHECK_MSG(recfix_write(rp[d], &rd[d], d, "ragged", "sha256:cc", &e) == KS_OK, "%s", e.message);
    }
    const char *p[3] = {rp[0], rp[1], rp[2]};
    ks_align_result *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 3, NULL, &r, &e), KS_OK);
    if (r) {
        /* master 0..11, sub1 2..11, sub2 0..10: sets 2..10 hold every device */
        KS_CHECK_INT(r->trimmed_leading, 2);
        KS_CHECK_INT(r->trimmed_trailing, 1);
        KS_CHECK_INT(r->set_count, 9);
        KS_CHECK_INT(r->complete_sets, 9);
        KS_CHECK_INT(r->files[1].start_vs_reference_us, 2 * P + lround(160 - ks_delay_effective_us(160)));
        ks_align_free(r);
    }
    /* the command: a good take with ragged edges succeeds and says what it trimmed */
    char args[1024], out[8192];
    snprintf(args, sizeof args, "%s %s %s", rp[0], rp[1], rp[2]);
    KS_CHECK_INT(align_cli(args, out, sizeof out), 0);
    KS_CHECK_CONTAINS(out, "trimmed 3 partial sets of the ragged start and stop (2 before every device had started, 1");
    KS_CHECK_CONTAINS(out, "frame sets: 9, complete 9, partial 0");
    p[2] = rp[3];
    KS_CHECK_INT(ks_align_files(p, 3, NULL, &r, &e), KS_OK);
    if (r) {
        KS_CHECK_INT(r->trimmed_leading, 2);
        KS_CHECK_INT(r->complete_sets, 8);
        KS_CHECK_INT(r->set_count, 9);
        KS_CHECK_INT(r->sets[0].frame[2], -1); /* sub2's drop in the first set after every device started */
        KS_CHECK_INT(r->files[2].drops, 1);
        ks_align_free(r);
    }
    /* a drop inside the take is a loss: exit 1, named */
    snprintf(args, sizeof args, "%s %s %s", rp[0], rp[1], rp[3]);
    KS_CHECK_INT(align_cli(args, out, sizeof out), 1);
    KS_CHECK_CONTAINS(out, "1 of 9 frame sets are partial");
}

/* Three recordings without a frame, only IMU samples (e.g. repaired from a recording interrupted
 * before the first capture): no set holds every file; nothing is trimmed and complete_sets is 0
 * (the command fails on it). */
static void test_frameless(void)
{
    char fp[3][300];
    const char *p[3];
    for (int d = 0; d < 3; d++) {
        recfix_dev fd = devs[d];
        fd.skip = RECFIX_SKIP_ALL;
        snprintf(fp[d], sizeof fp[d], "%s/empty%d.mkv", dir, d);
        p[d] = fp[d];
        ks_error e;
        KS_CHECK_MSG(recfix_write(fp[d], &fd, d, "lab", "sha256:aa", &e) == KS_OK, "%s", e.message);
    }
    ks_align_result *r = NULL;
    ks_error e;
    ks_status st = ks_align_files(p, 3, NULL, &r, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    if (r) {
        KS_CHECK_INT(r->member_count, 3);
        KS_CHECK_INT(r->complete_sets, 0);
        KS_CHECK_INT(r->set_count, 0);
        KS_CHECK(r->files[0].frameless && r->files[1].frameless && r->files[2].frameless);
        KS_CHECK_INT(r->trimmed_leading + r->trimmed_trailing, 0);
        ks_align_free(r);
    }
    /* the command fails on them (it said success before) and says why */
    char args[1024], out[8192];
    snprintf(args, sizeof args, "%s %s %s", p[0], p[1], p[2]);
    KS_CHECK_INT(align_cli(args, out, sizeof out), 1);
    KS_CHECK_CONTAINS(out, "3 of the 3 recordings hold no frame");
    KS_CHECK_CONTAINS(out, "NO FRAMES");
}

/* Files without kinsync's exposure/convention tags (like k4arecorder's): the depth offset is the raw
 * timestamp difference; given the exposure, align compares centres, moving it by (depth exposure -
 * color exposure) / 2 under the seed convention and not at all under mid-exposure. */
static void test_depth_offset_basis(void)
{
    const char *p[2] = {paths[0], paths[1]};
    ks_align_result *raw = NULL, *seed = NULL, *mid = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 2, NULL, &raw, &e), KS_OK);
    ks_align_options o = {.color_exposure_us = 8330};
    KS_CHECK_INT(ks_align_files(p, 2, &o, &seed, &e), KS_OK);
    o.timestamps = "mid-exposure";
    KS_CHECK_INT(ks_align_files(p, 2, &o, &mid, &e), KS_OK);
    if (raw && seed && mid) {
        KS_CHECK(!raw->files[0].depth_offset_centres);
        KS_CHECK(seed->files[0].depth_offset_centres);
        KS_CHECK_STR(seed->files[0].timestamps, "seed");
        double ed = ks_depth_mode_get(raw->files[0].depth_mode)->exposure_us;
        KS_CHECK_NEAR(seed->files[0].depth_offset_us.mean - raw->files[0].depth_offset_us.mean, (ed - 8330) / 2, 1e-6);
        KS_CHECK(mid->files[0].depth_offset_centres);
        KS_CHECK_NEAR(mid->files[0].depth_offset_us.mean, raw->files[0].depth_offset_us.mean, 1e-9);
    }
    ks_align_free(raw);
    ks_align_free(seed);
    ks_align_free(mid);
}

static void test_foreign_files(void)
{
    const char *p[6] = {paths[0], paths[1], paths[2], paths[3], paths[4], paths[5]};
    ks_align_result *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 6, NULL, &r, &e), KS_OK);
    if (!r)
        return;
    KS_CHECK_INT(r->member_count, 3);
    KS_CHECK(!r->files[3].member);
    KS_CHECK_CONTAINS(r->files[3].reason, "garage");
    KS_CHECK(!r->files[4].member);
    KS_CHECK_CONTAINS(r->files[4].reason, "another plan");
    KS_CHECK(!r->files[5].member);
    KS_CHECK_CONTAINS(r->files[5].reason, "15 fps");
    KS_CHECK_INT(r->set_count, 9); /* the foreign files change nothing */
    ks_align_free(r);
    /* a second master */
    const char *two[2] = {paths[0], paths[0]};
    KS_CHECK_INT(ks_align_files(two, 2, NULL, &r, &e), KS_OK);
    if (r) {
        KS_CHECK(!r->files[1].member);
        KS_CHECK_CONTAINS(r->files[1].reason, "second master");
        ks_align_free(r);
    }
}

static int png_pixel(const char *path, int x, int y, int *w, int *h)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        return -1;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    png_bytep row = malloc(png_get_rowbytes(png, info));
    int v = -1;
    for (int r = 0; r <= y; r++)
        png_read_row(png, row, NULL);
    if (depth == 16)
        v = (row[2 * x] << 8) | row[2 * x + 1];
    free(row);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return v;
}

static void test_export(void)
{
    const char *p[3] = {paths[0], paths[1], paths[2]};
    ks_align_result *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_align_files(p, 3, NULL, &r, &e), KS_OK);
    if (!r)
        return;
    char out[300];
    snprintf(out, sizeof out, "%s/export", dir);
    KS_CHECK_MSG(ks_align_export(r, out, 0, &e) == KS_OK, "%s", e.message);
    char f[600];
    int w = 0, h = 0;
    /* set 7: the master's frame 7, sub1's frame 6 (it dropped frame 5) */
    snprintf(f, sizeof f, "%s/000007/sub1-000100000002-depth.png", out);
    KS_CHECK_INT(png_pixel(f, 100, 10, &w, &h), recfix_px(1, 7, 1));
    KS_CHECK(w == 640 && h == 576);
    snprintf(f, sizeof f, "%s/000007/master-000100000001-ir.png", out);
    KS_CHECK_INT(png_pixel(f, 5, 5, &w, &h), recfix_px(0, 7, 2));
    snprintf(f, sizeof f, "%s/000003/sub2-000100000003-color.jpg", out);
    FILE *fp = fopen(f, "rb");
    unsigned char jpg[16] = {0};
    KS_CHECK(fp && fread(jpg, 1, 16, fp) == 16);
    if (fp)
        fclose(fp);
    KS_CHECK(jpg[0] == 0xFF && jpg[1] == 0xD8 && jpg[2] == 2 && jpg[3] == 3);
    snprintf(f, sizeof f, "%s/000005/sub1-000100000002-depth.png", out);
    KS_CHECK(access(f, F_OK) != 0); /* sub1 has no frame in set 5 */
    snprintf(f, sizeof f, "%s/index.json", out);
    json_error_t je;
    json_t *idx = json_load_file(f, 0, &je);
    KS_CHECK(idx != NULL);
    if (idx) {
        json_t *sets = json_object_get(idx, "sets");
        KS_CHECK_INT(json_array_size(sets), 9); /* the ragged stop (set 9) trimmed */
        json_t *s5 = json_array_get(sets, 5);
        KS_CHECK(json_is_false(json_object_get(s5, "complete")));
        json_t *m = json_object_get(json_object_get(json_array_get(sets, 7), "frames"), "sub1-000100000002");
        KS_CHECK_STR(json_string_value(json_object_get(json_object_get(m, "depth"), "file")),
                     "000007/sub1-000100000002-depth.png");
        KS_CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "color"), "device_ts_us")),
                     500000 + 160 + 7 * ks_frame_period_us(KS_FPS_30));
        json_decref(idx);
    }
    ks_align_free(r);
}

int main(void)
{
    write_files();
    KS_RUN(test_roles_delays_drops);
    KS_RUN(test_keep_edges);
    KS_RUN(test_ragged_edges);
    KS_RUN(test_frameless);
    KS_RUN(test_depth_offset_basis);
    KS_RUN(test_foreign_files);
    KS_RUN(test_export);
    recfix_rmdir(dir);
    return KS_TEST_END();
}
