/* bench_record: CPU cost of the recording path for a 3-device 720p MJPEG + NFOV_UNBINNED rig at
 * 30 fps, excluding JPEG encoding (done by the device, or the simulator): one color frame is
 * JPEG-encoded once with libturbojpeg from a textured synthetic image, depth and IR frames are
 * made once with plausible content; the timed loop wraps them in new images with new timestamps
 * (no copy) and feeds them to a ks_recorder writing three .mkv files (Matroska framing, big-endian
 * depth/IR conversion, cluster and cue bookkeeping, write() into the page cache, fsync and rename
 * at close). CPU time (user + system of this process, getrusage) is divided by the device time
 * recorded: "% of one core per device". Target: under 5 %.
 * The first figure writes as fast as it can (a burst far above the real data rate, so the kernel's
 * dirty-page throttling lands in this process); the second paces the captures at 30 fps like a
 * live rig (5 s), which is the situation the target is about. User time is the recording code
 * itself; system time is mostly the kernel copying into the page cache.
 * Usage: bench_record [SECONDS [DIR]]   (default 20 s of device time into a temporary directory) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "kinsync/record.h"

static double user_s, sys_s;

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    user_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    sys_s = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return user_s + sys_s;
}

static double wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void no_free(ks_image *img, void *ctx)
{
    (void)img;
    (void)ctx;
}

static ks_image *wrap(ks_image_format f, int w, int h, int stride, uint8_t *data, size_t size, uint64_t ts)
{
    ks_image *img = ks_image_wrap(f, w, h, stride, data, size, no_free, NULL);
    img->device_ts_us = ts;
    return img;
}

static int run(const char *dir, double seconds, bool paced, unsigned char *jpg, unsigned long jpg_size,
               uint16_t *depth, uint16_t *ir)
{
    const ks_color_resolution_info *ci = ks_color_resolution_get(KS_COLOR_720P);
    const ks_depth_mode_info *di = ks_depth_mode_get(KS_DEPTH_NFOV_UNBINNED);
    const int period = ks_frame_period_us(KS_FPS_30);
    const int cw = ci->width, ch = ci->height;
    const size_t dn = (size_t)di->width * di->height;
    ks_record_device devs[3];
    memset(devs, 0, sizeof devs);
    static const char *const roles[3] = {"master", "sub1", "sub2"};
    for (int d = 0; d < 3; d++) {
        snprintf(devs[d].serial, sizeof devs[d].serial, "00010000000%d", d + 1);
        snprintf(devs[d].role, sizeof devs[d].role, "%s", roles[d]);
        ks_device_config_init(&devs[d].config);
        devs[d].config.color_format = KS_FORMAT_MJPG;
        devs[d].config.color_resolution = KS_COLOR_720P;
        devs[d].config.depth_mode = KS_DEPTH_NFOV_UNBINNED;
        devs[d].config.camera_fps = KS_FPS_30;
        devs[d].config.wired_sync_mode = d == 0 ? KS_SYNC_MASTER : KS_SYNC_SUBORDINATE;
        devs[d].config.depth_delay_off_color_usec = (d - 1) * 167;
        devs[d].calibration_json = "{\"CalibrationInformation\":{}}";
        devs[d].calibration_len = strlen(devs[d].calibration_json);
        devs[d].has_firmware = true;
    }
    ks_recorder_options ro;
    memset(&ro, 0, sizeof ro);
    snprintf(ro.rig_name, sizeof ro.rig_name, "bench");
    ro.overwrite = true;
    ks_recorder *rec = NULL;
    ks_error err;
    if (ks_recorder_open(dir, 3, devs, &ro, &rec, &err) != KS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const int frames = (int)(seconds * 1e6 / period);
    double c0 = cpu_s(), u0 = user_s, s0 = sys_s, w0 = wall_s();
    for (int i = 0; i < frames; i++) {
        if (paced) {
            double due = w0 + i * (double)period / 1e6;
            double now = wall_s();
            if (due > now) {
                struct timespec ts = {(time_t)(due - now), (long)(fmod(due - now, 1.0) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        for (int d = 0; d < 3; d++) {
            uint64_t t = 1000000 + (uint64_t)i * (uint64_t)period;
            ks_capture *cap = ks_capture_create();
            cap->color = wrap(KS_FORMAT_MJPG, cw, ch, 0, jpg, jpg_size, t);
            uint64_t td = (uint64_t)((int64_t)t + devs[d].config.depth_delay_off_color_usec);
            cap->depth = wrap(KS_FORMAT_DEPTH16, di->width, di->height, di->width * 2, (uint8_t *)depth, dn * 2, td);
            cap->ir = wrap(KS_FORMAT_IR16, di->width, di->height, di->width * 2, (uint8_t *)ir, dn * 2, td);
            if (ks_recorder_add_capture(rec, d, cap, &err) != KS_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            ks_capture_release(cap);
        }
    }
    uint64_t bytes = 0;
    for (int d = 0; d < 3; d++) {
        ks_record_stats st;
        ks_recorder_stats(rec, d, &st, NULL);
        bytes += st.bytes;
    }
    double c_add = cpu_s() - c0;
    if (ks_recorder_close(rec, &err) != KS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double c1 = cpu_s() - c0, w1 = wall_s() - w0;
    double u1 = user_s - u0, s1 = sys_s - s0;
    double recorded = frames * (double)period / 1e6;
    printf("bench_record (%s): 3 devices, 720P MJPG (%lu-byte frames, pre-encoded) + NFOV_UNBINNED depth/IR, 30 fps\n",
           paced ? "paced at 30 fps" : "as fast as possible", jpg_size);
    printf("  recorded %.1f s of device time per device (%d captures each), %.1f MB in %.2f s wall\n", recorded,
           frames, bytes / 1e6, w1);
    printf("  CPU while adding: %.3f s; with close (cues, fsync, rename): %.3f s\n", c_add, c1);
    printf("  CPU cost: %.2f %% of one core per device (target < 5 %%); %.2f %% for the rig\n",
           100.0 * c1 / (recorded * 3), 100.0 * c1 / recorded);
    printf("  of which user (recording code) %.2f %%, system (kernel page cache) %.2f %% per device\n",
           100.0 * u1 / (recorded * 3), 100.0 * s1 / (recorded * 3));
    printf("  write throughput: %.0f MB/s of CPU time\n", bytes / 1e6 / c1);
    return 0;
}


int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 20.0;
    char dir[512];
    bool tmp = argc <= 2;
    if (tmp) {
        snprintf(dir, sizeof dir, "/tmp/ks-bench-record-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "%s", argv[2]);
    }
    const ks_color_resolution_info *ci = ks_color_resolution_get(KS_COLOR_720P);
    const ks_depth_mode_info *di = ks_depth_mode_get(KS_DEPTH_NFOV_UNBINNED);

    /* one MJPEG frame: a textured gradient with noise, quality 90 (what the device sends is similar) */
    int cw = ci->width, ch = ci->height;
    uint8_t *rgb = malloc((size_t)cw * ch * 3);
    uint64_t rng = 12345;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int n = (int)((rng >> 33) & 15);
            uint8_t *p = rgb + ((size_t)y * cw + x) * 3;
            p[0] = (uint8_t)((x * 255 / cw + n) & 255);
            p[1] = (uint8_t)((y * 255 / ch + ((x / 16 + y / 16) & 1) * 40 + n) & 255);
            p[2] = (uint8_t)(128 + 100 * sin(x * 0.05) * cos(y * 0.03));
        }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jpg_size = 0;
    if (tjCompress2(tj, rgb, cw, 0, ch, TJPF_RGB, &jpg, &jpg_size, TJSAMP_422, 90, TJFLAG_FASTDCT) != 0) {
        fprintf(stderr, "jpeg: %s\n", tjGetErrorStr2(tj));
        return 1;
    }
    tjDestroy(tj);
    free(rgb);
    /* depth and IR: a room-like gradient with noise */
    size_t dn = (size_t)di->width * di->height;
    uint16_t *depth = malloc(dn * 2), *ir = malloc(dn * 2);
    for (size_t i = 0; i < dn; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        depth[i] = (uint16_t)(1500 + (i % (size_t)di->width) + ((rng >> 40) & 7));
        ir[i] = (uint16_t)(200 + ((rng >> 33) & 255));
    }

    if (run(dir, seconds, false, jpg, jpg_size, depth, ir) != 0 || run(dir, 5.0, true, jpg, jpg_size, depth, ir) != 0)
        return 1;
    if (tmp) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    tjFree(jpg);
    free(depth);
    free(ir);
    return 0;
}
