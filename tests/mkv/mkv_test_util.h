/* Helpers shared by the Matroska tests (test_mkv.c, test_mkv_truncate.c): a seeded generator,
 * a real JPEG for color frames, a writer of synthetic recordings that returns the truth, and a
 * reader that returns every item in the same form. */
#ifndef KS_MKV_TEST_UTIL_H
#define KS_MKV_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "ks_test.h"
#include "mkv/mkv_internal.h"
#include "mkv/mkv_reader_internal.h"

static char dir[256];

static uint64_t rng = 12345;
static inline uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

static uint8_t *jpeg;
static unsigned long jpeg_size;

static inline void make_jpeg(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)((x ^ y) & 0xFF);
        }
    tjhandle tj = tjInitCompress();
    tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, &jpeg_size, TJSAMP_422, 85, 0);
    tjDestroy(tj);
    free(rgb);
}

typedef struct rec {
    int kind;
    uint64_t ts;
    size_t size;
    uint32_t sum;     /* checksum of the (host-order) bytes */
    ks_imu_sample imu;
} rec;

static inline uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static inline int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->kind - y->kind;
}

static inline void desc_for(ks_mkv_desc *d, ks_depth_mode dm)
{
    ks_mkv_desc_init(d);
    d->color_resolution = KS_COLOR_720P;
    d->color_format = KS_FORMAT_MJPG;
    d->depth_mode = dm;
    d->fps = KS_FPS_30;
    d->imu = true;
    d->sync_mode = KS_SYNC_SUBORDINATE;
    d->subordinate_delay_us = 160;
    d->depth_delay_us = -80;
    snprintf(d->serial, sizeof d->serial, "000111222333");
    d->has_firmware = true;
    d->color_fw = (ks_version){1, 6, 110};
    d->depth_fw = (ks_version){1, 6, 79};
    static const char cal[] = "{\"CalibrationInformation\":{\"Cameras\":[]}}";
    d->calibration_json = cal;
    d->calibration_len = sizeof cal - 1;
    snprintf(d->rig_name, sizeof d->rig_name, "lab-rig");
    snprintf(d->role, sizeof d->role, "sub1");
    snprintf(d->plan_digest, sizeof d->plan_digest, "sha256:abcdef");
}

/* Writes nframes captures (+ 7 IMU samples per frame, some arriving early) and returns the truth,
 * sorted by time. If die_after >= 0 the process _exit()s after that many frames without closing. */
static inline rec *write_file(const char *path, ks_depth_mode dm, int nframes, uint64_t t0, int *nrec, int die_after)
{
    ks_mkv_desc d;
    desc_for(&d, dm);
    const ks_depth_mode_info *di = ks_depth_mode_get(dm);
    ks_mkv_writer_options o = {.uid_seed = 42, .date_utc_s = 1700000000};
    ks_mkv_writer *w = NULL;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_writer_open(path, &d, &o, &w, &e), KS_OK);
    if (!w)
        return NULL;
    rec *truth = calloc((size_t)nframes * 10, sizeof *truth);
    int n = 0;
    int period = ks_frame_period_us(KS_FPS_30);
    for (int i = 0; i < nframes; i++) {
        if (i == die_after)
            _exit(0);
        uint64_t t = t0 + (uint64_t)i * (uint64_t)period;
        /* IMU: samples from this frame's interval, pushed before the capture (as a real IMU thread does) */
        for (int k = 0; k < 7; k++) {
            ks_imu_sample s = {0};
            s.acc_ts_us = t - 30000 + (uint64_t)k * 4167 + (rnd() % 5);
            s.gyro_ts_us = s.acc_ts_us + 3;
            for (int a = 0; a < 3; a++) {
                s.acc[a] = (float)(rnd() % 2000) / 100.0f - 10.0f;
                s.gyro[a] = (float)(rnd() % 2000) / 1000.0f - 1.0f;
            }
            KS_CHECK_INT(ks_mkv_writer_add_imu(w, &s, &e), KS_OK);
            truth[n++] = (rec){KS_MKV_IMU, s.acc_ts_us, KS_MKV_IMU_SAMPLE_SIZE, 0, s};
        }
        ks_capture *c = ks_capture_create();
        c->color = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, jpeg_size);
        memcpy(c->color->data, jpeg, jpeg_size);
        c->color->data[jpeg_size / 2] = (uint8_t)i; /* make every frame different */
        c->color->device_ts_us = t;
        c->depth = ks_image_create(KS_FORMAT_DEPTH16, di->width, di->height, di->width * 2, 0);
        c->ir = ks_image_create(KS_FORMAT_IR16, di->width, di->height, di->width * 2, 0);
        uint16_t *dp = (uint16_t *)c->depth->data, *ip = (uint16_t *)c->ir->data;
        for (int p = 0; p < di->width * di->height; p++) {
            dp[p] = (uint16_t)(500 + (p * 7 + i * 13) % 4000);
            ip[p] = (uint16_t)(rnd() & 0xFFFF);
        }
        c->depth->device_ts_us = c->ir->device_ts_us = t - 80;
        KS_CHECK_INT(ks_mkv_writer_add_capture(w, c, &e), KS_OK);
        truth[n++] = (rec){KS_MKV_COLOR, t, c->color->size, checksum(c->color->data, c->color->size), {.acc_ts_us = 0}};
        truth[n++] = (rec){KS_MKV_DEPTH, t - 80, c->depth->size, checksum(c->depth->data, c->depth->size), {.acc_ts_us = 0}};
        truth[n++] = (rec){KS_MKV_IR, t - 80, c->ir->size, checksum(c->ir->data, c->ir->size), {.acc_ts_us = 0}};
        ks_capture_release(c);
    }
    KS_CHECK_INT(ks_mkv_writer_close(w, &e), KS_OK);
    qsort(truth, (size_t)n, sizeof *truth, cmp_rec);
    *nrec = n;
    return truth;
}

/* Reads every item; returns them (sorted like the truth). */
static inline rec *read_all(const char *path, int *n, ks_status *end, ks_mkv_reader **keep)
{
    ks_mkv_reader *r;
    ks_error e = {0};
    *n = 0;
    *end = ks_mkv_reader_open(path, &r, &e);
    if (*end)
        return NULL;
    int cap = 256;
    rec *out = malloc(sizeof *out * (size_t)cap);
    ks_mkv_item it;
    while ((*end = ks_mkv_reader_next(r, &it, &e)) == KS_OK) {
        if (*n == cap) {
            cap *= 2;
            out = realloc(out, sizeof *out * (size_t)cap);
        }
        rec x = {it.kind, it.device_ts_us, 0, 0, it.imu};
        if (it.image) {
            x.size = it.image->size;
            x.sum = checksum(it.image->data, it.image->size);
            if (it.image->device_ts_us != it.device_ts_us)
                x.sum ^= 1;
            ks_image_release(it.image);
        } else if (it.kind == KS_MKV_IMU) {
            x.size = KS_MKV_IMU_SAMPLE_SIZE;
        }
        out[(*n)++] = x;
    }
    if (keep)
        *keep = r;
    else
        ks_mkv_reader_close(r);
    qsort(out, (size_t)*n, sizeof *out, cmp_rec);
    return out;
}

static inline bool same_rec(const rec *a, const rec *b)
{
    if (a->kind != b->kind || a->ts != b->ts || a->size != b->size)
        return false;
    if (a->kind == KS_MKV_IMU)
        return a->imu.acc_ts_us == b->imu.acc_ts_us && a->imu.gyro_ts_us == b->imu.gyro_ts_us &&
               !memcmp(a->imu.acc, b->imu.acc, sizeof a->imu.acc) && !memcmp(a->imu.gyro, b->imu.gyro, sizeof a->imu.gyro);
    return a->sum == b->sum;
}

static inline char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static inline int run_count(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            lines++;
    pclose(f);
    return lines;
}


/* Creates the per-test temporary directory and the JPEG; returns false on failure. */
static inline bool mkv_test_setup(const char *name)
{
    snprintf(dir, sizeof dir, "/tmp/ks_%s_XXXXXX", name);
    if (!mkdtemp(dir))
        return false;
    make_jpeg(1280, 720);
    return true;
}

static inline void mkv_test_teardown(void)
{
    tjFree(jpeg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
