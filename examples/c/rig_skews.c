/* rig_skews: open a rig (its simulation by default) and print the skew of each frame set, the
 * spread of the devices' frame-set keys (kinsync/matcher.h).
 *   rig_skews RIG.yaml [SETS [BACKEND]]      BACKEND: sim (default), auto, k4a
 *   rig_skews FILE.mkv...                     recordings work too
 * Build: cc rig_skews.c $(pkg-config --cflags --libs kinsync-sim) */
#include <kinsync.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s RIG.yaml [SETS [BACKEND]] | FILE.mkv...\n", argv[0]);
        return 2;
    }
    bool recordings = ks_playback_is_recording(argv[1]);
    int nsets = !recordings && argc > 2 ? atoi(argv[2]) : 10;
    const char *backend = !recordings && argc > 3 ? argv[3] : "sim";
    int npaths = recordings ? argc - 1 : 1;
    ks_error err;
    ks_rigrun *run;
    if (ks_rigrun_open((const char *const *)argv + 1, npaths, backend, true, &run, &err) != KS_OK) {
        fprintf(stderr, "rig_skews: %s\n", err.message);
        return 1;
    }
    printf("kinsync %s, %s, %d devices\n", ks_version_string(), ks_rigrun_kind(run), ks_rigrun_device_count(run));
    for (int d = 0; d < ks_rigrun_device_count(run); d++)
        printf("  device %d: %s (%s)\n", d, ks_rigrun_device_serial(run, d), ks_rigrun_device_role(run, d));
    int got = 0;
    ks_session_set *set;
    ks_status st;
    while (got < nsets && (st = ks_rigrun_next(run, 5000, &set, &err)) == KS_OK) {
        double lo = INFINITY, hi = -INFINITY;
        int present = 0;
        for (int d = 0; d < ks_rigrun_device_count(run); d++) {
            double k = ks_rigrun_set_key_us(set, d);
            if (isnan(k))
                continue;
            present++;
            lo = k < lo ? k : lo;
            hi = k > hi ? k : hi;
        }
        printf("set %llu: %d devices, skew %.1f us\n", (unsigned long long)ks_rigrun_set_index(set), present,
               present ? hi - lo : 0.0);
        ks_rigrun_set_free(set);
        got++;
    }
    if (got < nsets && st != KS_EEOF)
        fprintf(stderr, "rig_skews: %s\n", err.message);
    ks_rigrun_close(run);
    return got > 0 ? 0 : 1;
}
