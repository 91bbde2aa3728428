/* bench_mkv: the Matroska layer's speed figures (issue 5).
 *
 *   bench_mkv [DIR] [FRAMES]     (default DIR $TMPDIR or /tmp, FRAMES 150)
 *   bench_mkv --read FILE.mkv... reads existing recordings only (4 below)
 *
 * 1. Writer CPU cost: writes FRAMES captures of each of 3 devices (3 files, interleaved as a rig
 *    recorder would) at 30 fps -- 720p MJPEG (a real JPEG of
 *    about 150 KB, encoded once: JPEG encoding is the simulator's job, not the recorder's) plus
 *    NFOV_UNBINNED depth and IR and ~210 Hz IMU -- and reports the process CPU time (user+sys,
 *    including the write() calls into the page cache) per second of recording as a percent of one
 *    core. Also with libmatroska-style cluster CRC-32 on, for comparison.
 * 2. Read throughput from the page cache: ks_mkv_reader_next over the whole file (every frame
 *    copied into an image, depth/IR byte-swapped to host order), best of 5, in GB/s, after
 *    reading the file once to bring it into the page cache.
 * 3. ffmpeg's demuxer on the same file: `ffmpeg -v error -i F -map 0:v -c copy -f null -`, best
 *    of 3 (only the video streams: ffmpeg cannot copy the IMU track or the attachment).
 * 4. --read: each recording read through ks_mkv_reader_next three ways -- every track decoded, as
 *    a reader held 1 frame at a time; depth only (ks_mkv_reader_set_decode, what `kinsync fuse`
 *    asks for); and every track with 12 frames held at once (a session's queue) -- best of 3 after
 *    a warm-up read, wall and CPU (user+sys) per depth frame, bytes read from the file and the
 *    reader's image buffers allocated vs reused.
 * The generated files are deleted at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "kinsync/mkv.h"

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cpu_split(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double g_user, g_sys, g_close;

static uint8_t *make_jpeg(unsigned long *size)
{
    int w = 1280, h = 720;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    uint32_t s = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            int noise = (int)((s >> 16) % 13);
            p[0] = (uint8_t)((x * 255 / w + noise) & 0xFF);
            p[1] = (uint8_t)((y * 255 / h + noise) & 0xFF);
            p[2] = (uint8_t)(((x / 16 + y / 16) * 37 + noise) & 0xFF);
        }
    tjhandle tj = tjInitCompress();
    uint8_t *jpeg = NULL;
    tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, size, TJSAMP_422, 75, 0);
    tjDestroy(tj);
    free(rgb);
    return jpeg;
}

static int write_files(char paths[][512], int devices, int frames, bool crc, const uint8_t *jpeg,
                       unsigned long jpeg_size, double *cpu_s)
{
    ks_mkv_desc d;
    ks_mkv_desc_init(&d);
    d.color_resolution = KS_COLOR_720P;
    d.color_format = KS_FORMAT_MJPG;
    d.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    d.fps = KS_FPS_30;
    d.imu = true;
    snprintf(d.serial, sizeof d.serial, "000000000001");
    const ks_depth_mode_info *di = ks_depth_mode_get(d.depth_mode);
    /* images prepared once and referenced by the writer (as the recorder does with device images) */
    ks_image *color = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, jpeg_size);
    memcpy(color->data, jpeg, jpeg_size);
    ks_image *depth = ks_image_create(KS_FORMAT_DEPTH16, di->width, di->height, di->width * 2, 0);
    ks_image *ir = ks_image_create(KS_FORMAT_IR16, di->width, di->height, di->width * 2, 0);
    for (size_t i = 0; i < depth->size; i++) {
        depth->data[i] = (uint8_t)(i * 31);
        ir->data[i] = (uint8_t)(i * 17);
    }
    ks_mkv_writer_options o = {.cluster_crc = crc};
    ks_mkv_writer *ws[8];
    ks_error e = {0};
    double c0 = now(CLOCK_PROCESS_CPUTIME_ID), u0, s0, u1, s1;
    cpu_split(&u0, &s0);
    for (int dev = 0; dev < devices; dev++)
        if (ks_mkv_writer_open(paths[dev], &d, &o, &ws[dev], &e)) {
            fprintf(stderr, "%s\n", e.message);
            return 1;
        }
    int period = ks_frame_period_us(d.fps);
    for (int f = 0; f < frames; f++)
        for (int dev = 0; dev < devices; dev++) {
            ks_mkv_writer *w = ws[dev];
            uint64_t t = 1000000 + (uint64_t)f * (uint64_t)period + (uint64_t)dev * 160;
            for (int k = 0; k < 7; k++) {
                ks_imu_sample s = {.acc_ts_us = t + (uint64_t)k * 4761, .gyro_ts_us = t + (uint64_t)k * 4761};
                s.acc[2] = 9.81f;
                ks_mkv_writer_add_imu(w, &s, &e);
            }
            /* the writer holds a reference until the cluster is written; make fresh wrappers so
             * timestamps differ while the pixel memory is shared */
            ks_image *imgs[3] = {color, depth, ir};
            for (int k = 0; k < 3; k++) {
                ks_image *v = ks_image_wrap(imgs[k]->format, imgs[k]->width, imgs[k]->height, imgs[k]->stride,
                                            imgs[k]->data, imgs[k]->size, NULL, NULL);
                v->device_ts_us = k ? t - 80 : t;
                if (ks_mkv_writer_add_image(w, (ks_mkv_track_kind)k, v, &e)) {
                    fprintf(stderr, "%s\n", e.message);
                    return 1;
                }
                ks_image_release(v);
            }
        }
    double cc = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int dev = 0; dev < devices; dev++)
        if (ks_mkv_writer_close(ws[dev], &e)) {
            fprintf(stderr, "%s\n", e.message);
            return 1;
        }
    *cpu_s = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    cpu_split(&u1, &s1);
    g_user = u1 - u0;
    g_sys = s1 - s0;
    g_close = now(CLOCK_PROCESS_CPUTIME_ID) - cc;
    ks_image_release(color);
    ks_image_release(depth);
    ks_image_release(ir);
    return 0;
}

/* 4. --read: see the header. */
static int read_mode(int argc, char **argv)
{
    static const char *names[3] = {"all tracks", "depth only", "all, 12 held"};
    for (int fi = 2; fi < argc; fi++) {
        printf("%s\n", argv[fi]);
        for (int mode = 0; mode < 3; mode++) {
            double best_w = 1e9, best_c = 1e9;
            ks_mkv_reader_stats st = {0};
            for (int rep = 0; rep < 4; rep++) { /* the first brings the file into the page cache */
                ks_mkv_reader *r;
                ks_error e = {0};
                if (ks_mkv_reader_open(argv[fi], &r, &e)) {
                    fprintf(stderr, "%s\n", e.message);
                    return 1;
                }
                if (mode == 1)
                    ks_mkv_reader_set_decode(r, 1u << KS_MKV_DEPTH);
                ks_image *held[12] = {0};
                int h = 0;
                double u0, s0, w0 = now(CLOCK_MONOTONIC);
                cpu_split(&u0, &s0);
                ks_mkv_item it;
                while (ks_mkv_reader_next(r, &it, &e) == KS_OK) {
                    if (mode == 2 && it.image) {
                        ks_image_release(held[h]);
                        held[h] = it.image;
                        h = (h + 1) % 12;
                    } else {
                        ks_image_release(it.image);
                    }
                }
                for (int k = 0; k < 12; k++)
                    ks_image_release(held[k]);
                double u1, s1, w1 = now(CLOCK_MONOTONIC);
                cpu_split(&u1, &s1);
                ks_mkv_reader_get_stats(r, &st);
                ks_mkv_reader_close(r);
                if (rep && w1 - w0 < best_w)
                    best_w = w1 - w0;
                if (rep && (u1 - u0) + (s1 - s0) < best_c)
                    best_c = (u1 - u0) + (s1 - s0);
            }
            double frames = st.decoded[KS_MKV_DEPTH] ? (double)st.decoded[KS_MKV_DEPTH] : 1;
            printf("  %-13s %6.3f ms wall, %6.3f ms CPU per depth frame; %.1f MB read per depth frame; image "
                   "buffers %llu allocated, %llu reused\n",
                   names[mode], best_w / frames * 1e3, best_c / frames * 1e3, (double)st.bytes_read / frames / 1e6,
                   (unsigned long long)st.buffers_allocated, (unsigned long long)st.buffers_reused);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--read"))
        return read_mode(argc, argv);
    const char *dir = argc > 1 ? argv[1] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int frames = argc > 2 ? atoi(argv[2]) : 150;
    int devices = 3;
    char paths[3][512], crc_path[1][512];
    for (int dev = 0; dev < devices; dev++)
        snprintf(paths[dev], sizeof paths[dev], "%s/bench_mkv_%d_dev%d.mkv", dir, (int)getpid(), dev);
    snprintf(crc_path[0], sizeof crc_path[0], "%s/bench_mkv_crc_%d.mkv", dir, (int)getpid());
    const char *path = paths[0];
    unsigned long jpeg_size;
    uint8_t *jpeg = make_jpeg(&jpeg_size);
    double cpu = 0, cpu_crc = 0;
    if (write_files(paths, devices, frames, false, jpeg, jpeg_size, &cpu))
        return 1;
    double user = g_user, sys = g_sys, closing = g_close;
    int crc_frames = frames / 4 > 30 ? frames / 4 : 30;
    if (write_files(crc_path, 1, crc_frames, true, jpeg, jpeg_size, &cpu_crc))
        return 1;
    unlink(crc_path[0]);
    for (int dev = 1; dev < devices; dev++)
        unlink(paths[dev]);
    tjFree(jpeg);
    struct stat sb;
    stat(path, &sb);
    double seconds = frames / 30.0;
    printf("rig: %d devices, %d frames each (%.1f s at 30 fps), MJPEG 720p frame %lu bytes + NFOV_UNBINNED "
           "depth+IR + IMU; one file %.1f MB\n",
           devices, frames, seconds, jpeg_size, (double)sb.st_size / 1e6);
    printf("writer CPU: %.3f s for %d x %.1f s of recording = %.2f%% of one core per device "
           "(cluster CRC on: %.2f%%)\n",
           cpu, devices, seconds, 100.0 * cpu / seconds / devices, 100.0 * cpu_crc / (crc_frames / 30.0));
    printf("  of which user %.3f s, kernel %.3f s (write() into the page cache, writeback), close+fsync %.3f s\n",
           user, sys, closing);

    /* the writer drops written data from the page cache: read it back in before timing readers */
    {
        FILE *wf = fopen(path, "rb");
        static char wbuf[1 << 20];
        while (wf && fread(wbuf, 1, sizeof wbuf, wf) == sizeof wbuf)
            ;
        if (wf)
            fclose(wf);
    }
    double best = 1e9;
    long items = 0;
    for (int rep = 0; rep < 5; rep++) {
        ks_mkv_reader *r;
        ks_error e = {0};
        double t0 = now(CLOCK_MONOTONIC);
        if (ks_mkv_reader_open(path, &r, &e)) {
            fprintf(stderr, "%s\n", e.message);
            return 1;
        }
        ks_mkv_item it;
        items = 0;
        while (ks_mkv_reader_next(r, &it, &e) == KS_OK) {
            ks_image_release(it.image);
            items++;
        }
        ks_mkv_reader_close(r);
        double dt = now(CLOCK_MONOTONIC) - t0;
        if (dt < best)
            best = dt;
    }
    printf("kinsync reader: %ld items in %.3f s = %.2f GB/s (page cache, frames copied into images)\n", items, best,
           (double)sb.st_size / best / 1e9);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -i '%s' -map 0:v -c copy -f null - 2>&1", path);
    double fbest = 1e9;
    int ok = 1;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now(CLOCK_MONOTONIC);
        FILE *p = popen(cmd, "r");
        char line[512];
        int lines = 0;
        while (p && fgets(line, sizeof line, p))
            if (lines++ < 3)
                fprintf(stderr, "ffmpeg: %s", line);
        int st = p ? pclose(p) : -1;
        double dt = now(CLOCK_MONOTONIC) - t0;
        if (st != 0)
            ok = 0;
        if (dt < fbest)
            fbest = dt;
    }
    if (ok)
        printf("ffmpeg demux (-c copy -f null): %.3f s = %.2f GB/s (includes process start)\n", fbest,
               (double)sb.st_size / fbest / 1e9);
    else
        printf("ffmpeg demux: ffmpeg failed or is not installed\n");
    unlink(path);
    return 0;
}
