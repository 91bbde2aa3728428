/* One set of recordings through every consumer: align, verify (the session's syncstats), calibrate
 * (its session sink) and fuse (its session sink) see the same frame sets, skews, depth offsets and
 * drift. The recordings are made by the simulator through the recorder with subordinate delays of
 * 160 and 320 us, once under each timestamp convention of the rig (`timestamps:` seed and
 * mid-exposure): the depth offsets are ~0 (centres compared, the convention and exposures taken
 * from the recordings' tags) and every device's colour pairs with its depth in every set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/align.h"
#include "kinsync/board.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/plan.h"
#include "kinsync/record.h"
#include "kinsync/rigcal_sink.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "kinsync/source.h"
#include "ks_test.h"
#include "rec/recfix.h"
#include "support/sim_rigs.h"

enum { NDEV = 3 };
static const uint32_t sub_delay[NDEV] = {0, 160, 320};

/* Records 1 s of a simulated 3-device daisy chain into dir; paths get the files (rig order). */
static bool record(const char *dir, ks_ts_convention conv, char paths[NDEV][512])
{
    ks_rig rig;
    simt_rig(&rig, NDEV, SIMT_DAISY, 2.0);
    rig.camera.fps = KS_FPS_15;
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    rig.ts_convention = conv;
    ks_plan plan;
    ks_error err;
    ks_plan_make(&rig, NULL, &plan, &err);
    ks_device_config cfg[NDEV];
    for (int i = 0; i < NDEV; i++) {
        cfg[i] = plan.devices[i].config;
        if (cfg[i].wired_sync_mode == KS_SYNC_SUBORDINATE)
            cfg[i].subordinate_delay_off_master_usec = sub_delay[i];
    }
    ks_sim_config sc;
    simt_config(&sc, 11, true);
    ks_backend *b = NULL;
    KS_CHECK_MSG(ks_backend_open_sim(&rig, &sc, &b, &err) == KS_OK, "%s", err.message);
    ks_record_run_options ro;
    memset(&ro, 0, sizeof ro);
    ro.seconds = 1.0;
    ks_record_result *res = calloc(1, sizeof *res);
    ks_status st = b && res ? ks_record_run(b, &rig, cfg, dir, &ro, res, &err) : KS_ENOMEM;
    KS_CHECK_MSG(st == KS_OK, "record: %s", err.message);
    for (int i = 0; st == KS_OK && i < res->device_count && i < NDEV; i++)
        snprintf(paths[i], 512, "%s", res->paths[i]);
    bool ok = st == KS_OK && res->device_count == NDEV;
    free(res);
    ks_backend_free(b);
    return ok;
}

typedef struct seen {
    size_t sets, complete;
    double keys[256];
    ks_sync_device dev[NDEV];
    double depth_delay_eff[NDEV];
    int rig_of[NDEV];
} seen;

/* verify's path: the source, the session, its syncstats; every set's key is kept. */
static void run_verify(const char *const *paths, seen *v)
{
    memset(v, 0, sizeof *v);
    ks_source src;
    ks_error err;
    KS_CHECK_MSG(ks_source_open(paths, NDEV, NULL, &src, &err) == KS_OK, "%s", err.message);
    ks_session *s = NULL;
    KS_CHECK_MSG(ks_session_open(&src.rig, &src.plan, src.backend, NULL, &s, &err) == KS_OK &&
                     ks_session_start(s, &err) == KS_OK, "%s", err.message);
    ks_session_set set;
    ks_status st;
    while (s && (st = ks_session_next(s, &set, 5000, &err)) == KS_OK) {
        if (v->sets < 256)
            v->keys[v->sets] = set.set.key_us;
        v->sets++;
        v->complete += set.set.complete;
        ks_session_set_release(&set);
    }
    KS_CHECK_INT(st, KS_EEOF);
    ks_syncstats *q = ks_session_stats(s);
    for (int d = 0; d < NDEV && q; d++) {
        v->dev[d] = *ks_syncstats_device(q, d);
        v->rig_of[d] = ks_session_rig_index(s, d);
        v->depth_delay_eff[d] = ks_session_matcher_config(s)->devices[d].depth_delay_us;
    }
    for (int i = 0; q && i < ks_syncstats_check_count(q); i++)
        if (ks_syncstats_check(q, i)->status == KS_CHECK_FAIL)
            printf("  verify: FAIL %s: %s\n", ks_syncstats_check(q, i)->id, ks_syncstats_check(q, i)->message);
    ks_session_close(s);
    ks_source_close(&src);
}

/* calibrate's and fuse's sinks on one more session over the same files: the sets they are offered,
 * the calibration sets used, and whether colour paired with depth in every fused set. */
static void run_sinks(const char *const *paths, const seen *v)
{
    ks_source src;
    ks_error err;
    KS_CHECK_MSG(ks_source_open(paths, NDEV, NULL, &src, &err) == KS_OK, "%s", err.message);
    ks_session *s = NULL;
    KS_CHECK_MSG(ks_session_open(&src.rig, &src.plan, src.backend, NULL, &s, &err) == KS_OK &&
                     ks_session_start(s, &err) == KS_OK, "%s", err.message);
    ks_board board;
    ks_board_default(&board);
    ks_rigcal_sink *cal = NULL;
    ks_rigcal_sink_options co = {.step = 1};
    KS_CHECK_MSG(ks_rigcal_sink_create(s, &board, &co, &cal, &err) == KS_OK, "%s", err.message);
    ks_rig_pose poses[NDEV];
    memset(poses, 0, sizeof poses);
    for (int d = 0; d < NDEV; d++) {
        snprintf(poses[d].serial, sizeof poses[d].serial, "%s", ks_device_info_get(ks_session_device(s, d))->serial);
        ks_extrinsics_identity(&poses[d].depth_to_rig);
        ks_extrinsics_identity(&poses[d].color_to_rig);
    }
    ks_fuse_options fo = {.voxel_mm = 20, .threads = 1, .color = true, .color_scale = 8};
    ks_fuse_sink *fz = NULL;
    KS_CHECK_MSG(ks_fuse_sink_create(s, poses, NDEV, &fo, &fz, &err) == KS_OK, "%s", err.message);
    ks_cloud cloud = {0};
    size_t sets = 0, first_complete = SIZE_MAX, fused = 0, colored = 0;
    ks_session_set set;
    while (cal && fz && ks_session_next(s, &set, 5000, &err) == KS_OK) {
        KS_CHECK(sets < v->sets && fabs(set.set.key_us - v->keys[sets]) < 1e-9); /* the same sets, same keys */
        if (set.set.complete && first_complete == SIZE_MAX)
            first_complete = sets;
        KS_CHECK_INT(ks_rigcal_sink_add(cal, &set, &err), KS_OK);
        if (set.set.complete && fused < 4) {
            ks_fuse_set_info info;
            KS_CHECK_MSG(ks_fuse_sink_run(fz, &set, &cloud, NULL, &info, &err) == KS_OK, "%s", err.message);
            fused++;
            colored += info.color_mask == info.depth_mask && info.present == NDEV && !info.color_unpaired;
        }
        sets++;
        ks_session_set_release(&set);
    }
    KS_CHECK_INT(sets, v->sets);
    /* calibrate uses every set from the first complete one (step 1) */
    KS_CHECK_INT(ks_rigcal_sink_sets_used(cal), (int)(v->sets - first_complete));
    KS_CHECK_INT(fused, 4);
    KS_CHECK_MSG(colored == fused, "colour paired with depth in %zu of %zu fused sets", colored, fused);
    ks_cloud_free(&cloud);
    ks_fuse_sink_destroy(fz);
    ks_rigcal_sink_destroy(cal);
    ks_session_close(s);
    ks_source_close(&src);
}

static void one_convention(ks_ts_convention conv)
{
    char dir[256], paths[NDEV][512];
    recfix_tmpdir(dir, sizeof dir, "pipe");
    printf("convention %s, subordinate delays 160 / 320 us\n", ks_ts_convention_name(conv));
    if (!record(dir, conv, paths)) {
        recfix_rmdir(dir);
        return;
    }
    const char *p[NDEV] = {paths[0], paths[1], paths[2]};
    seen v;
    run_verify(p, &v);
    ks_align_result *r = NULL;
    ks_error err;
    ks_align_options ao = {.keep_edge_sets = true}; /* every set verify saw, the ragged edges too */
    KS_CHECK_MSG(ks_align_files(p, NDEV, &ao, &r, &err) == KS_OK, "%s", err.message);
    if (r) {
        KS_CHECK_INT(r->set_count, v.sets);
        KS_CHECK_INT(r->complete_sets, v.complete);
        KS_CHECK(v.sets >= 14 && v.complete >= 13);
        for (size_t k = 0; k < r->set_count && k < 256; k++)
            KS_CHECK(fabs(r->sets[k].time_us - v.keys[k]) < 1e-9);
        for (int d = 0; d < NDEV; d++) {
            const ks_align_file *f = &r->files[v.rig_of[d]];
            const ks_sync_device *o = &v.dev[d];
            printf("  %s: skew %.2f / %.2f us, depth offset %.2f / %.2f us, drift %.3f / %.3f ppm (align / verify)\n",
                   f->serial, f->skew_us.mean, o->skew_mean_us, f->depth_offset_us.mean,
                   o->depth_offset_mean_us - v.depth_delay_eff[d], f->drift_ppm, o->drift_vs_ref_ppm);
            KS_CHECK(f->depth_offset_centres);
            KS_CHECK_NEAR(f->skew_us.mean, o->skew_mean_us, 1e-6);
            KS_CHECK_NEAR(f->depth_offset_us.mean, o->depth_offset_mean_us - v.depth_delay_eff[d], 1e-6);
            KS_CHECK_NEAR(f->drift_ppm, o->drift_vs_ref_ppm, 1e-9);
            /* and they are right: the subordinate delays and the convention are removed */
            KS_CHECK_MSG(fabs(f->skew_us.mean) < 5, "%s skew %.1f us", f->serial, f->skew_us.mean);
            KS_CHECK_MSG(fabs(f->depth_offset_us.mean) < 5, "%s depth offset %.1f us", f->serial,
                         f->depth_offset_us.mean);
            KS_CHECK_MSG(fabs(f->drift_ppm) < 1, "%s drift %.2f ppm", f->serial, f->drift_ppm);
        }
        ks_align_free(r);
    }
    run_sinks(p, &v);
    recfix_rmdir(dir);
}

static void test_seed(void)
{
    one_convention(KS_TS_SEED);
}

static void test_mid_exposure(void)
{
    one_convention(KS_TS_MID_EXPOSURE);
}

int main(void)
{
    KS_RUN(test_seed);
    KS_RUN(test_mid_exposure);
    return KS_TEST_END();
}
