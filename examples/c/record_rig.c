/* record_rig: record every device of a rig (its simulation by default), one Azure Kinect .mkv per
 * device, for a number of seconds of device time.
 *   record_rig RIG.yaml OUTDIR [SECONDS [BACKEND]]
 * Build: cc record_rig.c $(pkg-config --cflags --libs kinsync-sim) */
#include <kinsync.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s RIG.yaml OUTDIR [SECONDS [BACKEND]]\n", argv[0]);
        return 2;
    }
    ks_source_options o;
    ks_source_options_init(&o);
    o.backend = argc > 4 ? argv[4] : "sim";
    ks_source *src = malloc(sizeof *src); /* holds a whole rig and plan: big for the stack */
    ks_device_config *configs = calloc(KS_RIG_MAX_DEVICES, sizeof *configs);
    ks_record_result *res = calloc(1, sizeof *res);
    ks_error err;
    int rc = 1;
    if (!src || !configs || !res) {
        fprintf(stderr, "record_rig: out of memory\n");
        goto out;
    }
    if (ks_source_open((const char *const *)argv + 1, 1, &o, src, &err) != KS_OK) {
        fprintf(stderr, "record_rig: %s\n", err.message);
        goto out;
    }
    ks_record_run_options ro = {0};
    ro.seconds = argc > 3 ? atof(argv[3]) : 1.0;
    if (ks_record_configs_from_rig(&src->rig, &src->plan, configs, NULL, &err) == KS_OK &&
        ks_record_run(src->backend, &src->rig, configs, argv[2], &ro, res, &err) == KS_OK) {
        for (int d = 0; d < res->device_count; d++)
            printf("%s: %llu captures\n", res->paths[d], (unsigned long long)res->stats[d].captures);
        rc = 0;
    } else {
        fprintf(stderr, "record_rig: %s\n", err.message);
    }
    ks_source_close(src);
out:
    free(src);
    free(configs);
    free(res);
    return rc;
}
