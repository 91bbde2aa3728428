/* read_recordings: read the recordings of one rig as frame sets (the same matcher as live) and
 * print, per set, each device's depth timestamp and image size.
 *   read_recordings FILE.mkv...
 * Build: cc read_recordings.c $(pkg-config --cflags --libs kinsync-sim) */
#include <kinsync.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.mkv...\n", argv[0]);
        return 2;
    }
    ks_error err;
    ks_rigrun *run;
    if (ks_rigrun_open((const char *const *)argv + 1, argc - 1, NULL, false, &run, &err) != KS_OK) {
        fprintf(stderr, "read_recordings: %s\n", err.message);
        return 1;
    }
    int n = ks_rigrun_device_count(run), sets = 0;
    ks_session_set *set;
    ks_status st;
    while ((st = ks_rigrun_next(run, 5000, &set, &err)) == KS_OK) {
        printf("set %llu:", (unsigned long long)ks_rigrun_set_index(set));
        for (int d = 0; d < n; d++) {
            ks_capture *c = ks_rigrun_set_capture(set, d);
            if (c && c->depth)
                printf("  %s depth %dx%d @%llu us", ks_rigrun_device_serial(run, d), c->depth->width,
                       c->depth->height, (unsigned long long)c->depth->device_ts_us);
            else
                printf("  %s -", ks_rigrun_device_serial(run, d));
        }
        printf("\n");
        ks_rigrun_set_free(set);
        sets++;
    }
    if (st != KS_EEOF)
        fprintf(stderr, "read_recordings: %s\n", err.message);
    printf("%d frame sets from %d recordings\n", sets, n);
    ks_rigrun_close(run);
    return st == KS_EEOF && sets > 0 ? 0 : 1;
}
