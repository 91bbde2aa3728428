/* libFuzzer target for the playback backend and alignment: the input is written to a temporary
 * file, opened as a one-device rig (ks_playback_rig_build, ks_backend_open_playback), started with
 * its recorded configuration, read to the end (captures and IMU), then aligned and exported.
 * Any crash, hang, leak or sanitizer report is a bug. Seeds: fuzz/corpus/fuzz_playback (small
 * recordings; the same kind as fuzz_mkv's). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/align.h"
#include "kinsync/playback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], out[80];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_playback_%d.mkv", (int)getpid());
        snprintf(out, sizeof out, "/tmp/fuzz_playback_%d.export", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
    const char *p[1] = {path};
    ks_error err = {0};
    ks_rig rig;
    ks_playback_device pd;
    (void)ks_playback_rig_build(p, 1, &rig, &pd, NULL, &err);
    ks_playback_options o;
    ks_playback_options_init(&o);
    o.pace = KS_PLAYBACK_FREE;
    ks_backend *b = NULL;
    if (ks_backend_open_playback(p, 1, &o, &b, &err) == KS_OK) {
        ks_device *d = NULL;
        ks_device_config cfg;
        if (ks_device_open(b, 0, &d, &err) == KS_OK && ks_playback_recorded_config(b, 0, &cfg, &err) == KS_OK &&
            ks_device_start_cameras(d, &cfg, &err) == KS_OK) {
            (void)ks_device_start_imu(d, &err);
            ks_capture *c;
            for (int i = 0; i < 200 && ks_device_get_capture(d, &c, 0, &err) == KS_OK; i++)
                ks_capture_release(c);
            ks_imu_sample s;
            for (int i = 0; i < 200 && ks_device_get_imu_sample(d, &s, 0, &err) == KS_OK; i++)
                ;
        }
        ks_device_close(d);
        ks_backend_free(b);
    }
    ks_align_result *r = NULL;
    if (ks_align_files(p, 1, NULL, &r, &err) == KS_OK) {
        (void)ks_align_export(r, out, 3, &err);
        ks_align_free(r);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        if (system(cmd) != 0)
            abort();
    }
    unlink(path);
    return 0;
}
