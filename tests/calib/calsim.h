/* calsim.h: the end-to-end calibration check of test_calibrate_sim and test_calibrate_oblique: a
 * simulated rig (with a real AprilGrid painted on its moving board) is recorded by `kinsync record`
 * and calibrated by `kinsync calibrate` from the recordings; every device's depth-camera pose in
 * the rig frame is compared with the simulator's ground truth. */
#ifndef KS_TEST_CALSIM_H
#define KS_TEST_CALSIM_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/calibration.h"
#include "kinsync/rig.h"
#include "kinsync/sim.h"
#include "ks_test.h"

static double rot_angle_deg(const double A[9], const double B[9])
{
    /* angle of A^T B */
    double tr = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            tr += A[k * 3 + i] * B[k * 3 + i];
    double c = (tr - 1) / 2;
    c = c > 1 ? 1 : c < -1 ? -1 : c;
    return acos(c) * 180.0 / 3.14159265358979323846;
}

/* records rig_rel (relative to the source tree) for 3 s, calibrates it and checks every device's
 * pose against the simulator's truth */
static void calibrates_to_truth(const char *rig_rel, double max_rot_deg, double max_trans_mm)
{
    char rigp[1024], boardp[1024], dir[256], cmd[4096];
    snprintf(rigp, sizeof rigp, "%s/%s", KS_SOURCE_DIR, rig_rel);
    snprintf(boardp, sizeof boardp, "%s/examples/boards/aprilgrid-6x6.yaml", KS_SOURCE_DIR);
    snprintf(dir, sizeof dir, "/tmp/ks-calsim-%d", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s/kinsync record %s --backend sim --out %s/rec --seconds 3 >/dev/null 2>&1 && "
             "%s/kinsync calibrate %s/rec/*.mkv --board %s -o %s/cal.json >/dev/null 2>&1",
             KS_BINARY_DIR, rigp, dir, KS_BINARY_DIR, dir, boardp, dir);
    KS_CHECK_INT(system(cmd), 0);

    ks_rig rig;
    ks_sim_config cfg;
    ks_backend *b = NULL;
    ks_error e;
    KS_CHECK_INT(ks_rig_load(rigp, &rig, &e), KS_OK);
    ks_findings f;
    ks_findings_init(&f);
    ks_rig_validate(&rig, &f);
    ks_findings_free(&f);
    KS_CHECK_INT(ks_sim_config_load(rigp, &rig, &cfg, &e), KS_OK);
    KS_CHECK_INT(ks_backend_open_sim(&rig, &cfg, &b, &e), KS_OK);
    ks_sim *s = ks_sim_from_backend(b);
    ks_extrinsics truth[3], world_to_0;
    for (int i = 0; i < 3; i++)
        KS_CHECK_INT(ks_sim_device_pose(s, i, &truth[i], &e), KS_OK);
    ks_extrinsics_invert(&truth[0], &world_to_0);

    char calp[300];
    snprintf(calp, sizeof calp, "%s/cal.json", dir);
    json_error_t je;
    json_t *j = json_load_file(calp, 0, &je);
    KS_CHECK(j != NULL);
    json_t *devs = json_object_get(j, "devices");
    KS_CHECK_INT(json_array_size(devs), 3);
    for (size_t k = 0; k < json_array_size(devs); k++) {
        json_t *d = json_array_get(devs, k);
        int i = ks_rig_find_device(&rig, json_string_value(json_object_get(d, "serial")));
        KS_CHECK(i >= 0 && i < 3);
        if (i < 0 || i >= 3)
            continue;
        json_t *p = json_object_get(d, "depth_to_rig");
        ks_extrinsics got;
        for (int r = 0; r < 9; r++)
            got.R[r] = json_number_value(json_array_get(json_object_get(p, "R"), (size_t)r));
        for (int r = 0; r < 3; r++)
            got.t[r] = json_number_value(json_array_get(json_object_get(p, "t"), (size_t)r));
        ks_extrinsics want; /* depth_i -> world -> depth_0 */
        ks_extrinsics_compose(&truth[i], &world_to_0, &want);
        double ang = rot_angle_deg(got.R, want.R);
        double dt = sqrt(pow(got.t[0] - want.t[0], 2) + pow(got.t[1] - want.t[1], 2) + pow(got.t[2] - want.t[2], 2));
        printf("%s device %d: rotation error %.4f deg, translation error %.3f mm\n", rig.name, i, ang, dt);
        KS_CHECK_MSG(ang < max_rot_deg, "%s device %d rotation error %.4f deg (at most %g)", rig.name, i, ang,
                     max_rot_deg);
        KS_CHECK_MSG(dt < max_trans_mm, "%s device %d translation error %.3f mm (at most %g)", rig.name, i, dt,
                     max_trans_mm);
    }
    json_decref(j);
    ks_backend_free(b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    KS_CHECK_INT(system(cmd), 0);
}

#endif
