/* fuse_ply: fuse the first complete frame set of a calibrated rig into one coloured point cloud (PLY).
 *   fuse_ply RIG-CALIBRATION.json OUT.ply RIG.yaml | FILE.mkv...
 * (rig-calibration.json comes from `kinsync calibrate`; a rig file runs its simulation.)
 * Build: cc fuse_ply.c $(pkg-config --cflags --libs kinsync-sim) */
#include <kinsync.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s RIG-CALIBRATION.json OUT.ply RIG.yaml | FILE.mkv...\n", argv[0]);
        return 2;
    }
    ks_error err;
    ks_rigrun *run;
    if (ks_rigrun_open((const char *const *)argv + 3, argc - 3, "sim", true, &run, &err) != KS_OK) {
        fprintf(stderr, "fuse_ply: %s\n", err.message);
        return 1;
    }
    ks_fuse_options fo = {.voxel_mm = 10, .color = true};
    ks_fuse_sink *sink = NULL;
    ks_session_set *set = NULL;
    ks_cloud cloud = {0};
    ks_fuse_set_info info;
    int rc = 1;
    uint32_t all = (1u << ks_rigrun_device_count(run)) - 1;
    ks_status st = ks_rigrun_fuse_sink(run, argv[1], &fo, &sink, &err);
    while (st == KS_OK && (st = ks_rigrun_next(run, 5000, &set, &err)) == KS_OK && ks_rigrun_set_present(set) != all) {
        ks_rigrun_set_free(set); /* a partial set (the rig starting): take the first complete one */
        set = NULL;
    }
    if (st == KS_OK && ks_fuse_sink_run(sink, set, &cloud, NULL, &info, &err) == KS_OK &&
        ks_ply_write(argv[2], &cloud, KS_CLOUD_COLOR, &err) == KS_OK) {
        printf("%s: %zu points from %d devices (set %llu)\n", argv[2], cloud.count, info.present,
               (unsigned long long)ks_rigrun_set_index(set));
        rc = 0;
    } else {
        fprintf(stderr, "fuse_ply: %s\n", err.message);
    }
    ks_cloud_free(&cloud);
    ks_rigrun_set_free(set);
    ks_fuse_sink_destroy(sink);
    ks_rigrun_close(run);
    return rc;
}
