/* tests/rec/recfix.h: synthetic recordings for the recording tests, written with the mkv writer
 * (no simulator needed): frame i of device d has color/depth/IR at base + i * period (+ the
 * subordinate delay, + the depth delay for depth/IR), pixel values derived from (d, i) so a
 * reader can check it got the right frame, and IMU samples every 5 ms. Header-only. */
#ifndef KS_TEST_RECFIX_H
#define KS_TEST_RECFIX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/mkv.h"

typedef struct recfix_dev {
    const char *serial;
    const char *role;                 /* KINSYNC_ROLE */
    ks_wired_sync_mode mode;
    uint32_t sub_delay_us;
    int32_t depth_delay_us;
    int frames;
    int skip;                         /* a frame index to leave out (a drop), -1 for none, RECFIX_SKIP_ALL */
    uint64_t base_us;                 /* device timestamp of frame 0 (before delays) */
    int fps_hz;                       /* 0 = 30 */
} recfix_dev;

#define RECFIX_SKIP_ALL (-2)          /* skip: every capture (IMU samples only, a frameless file) */

static inline uint16_t recfix_px(int dev, int frame, int kind)
{
    return (uint16_t)(1000 + dev * 100 + frame * 3 + kind);
}

static inline ks_status recfix_write(const char *path, const recfix_dev *dv, int dev_index, const char *rig_name,
                                     const char *digest, ks_error *err)
{
    ks_mkv_desc desc;
    ks_mkv_desc_init(&desc);
    snprintf(desc.serial, sizeof desc.serial, "%s", dv->serial);
    desc.color_fw = (ks_version){1, 6, 110};
    desc.depth_fw = (ks_version){1, 6, 79};
    desc.has_firmware = true;
    desc.color_format = KS_FORMAT_MJPG;
    desc.color_resolution = KS_COLOR_720P;
    desc.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    desc.fps = KS_FPS_30;
    if (dv->fps_hz)
        ks_fps_from_hz(dv->fps_hz, &desc.fps);
    desc.sync_mode = dv->mode;
    desc.subordinate_delay_us = dv->sub_delay_us;
    desc.depth_delay_us = dv->depth_delay_us;
    char calib[128];
    snprintf(calib, sizeof calib, "{\"CalibrationInformation\":{\"serial\":\"%s\"}}", dv->serial);
    desc.calibration_json = calib;
    desc.calibration_len = strlen(calib);
    desc.imu = true;
    snprintf(desc.rig_name, sizeof desc.rig_name, "%s", rig_name ? rig_name : "");
    snprintf(desc.role, sizeof desc.role, "%s", dv->role ? dv->role : "");
    snprintf(desc.plan_digest, sizeof desc.plan_digest, "%s", digest ? digest : "");
    ks_mkv_writer_options o = {0};
    o.uid_seed = 42 + (uint64_t)dev_index;
    o.date_utc_s = 1700000000;
    ks_mkv_writer *w = NULL;
    ks_status st = ks_mkv_writer_open(path, &desc, &o, &w, err);
    if (st)
        return st;
    const int period = ks_frame_period_us(desc.fps);
    const ks_depth_mode_info *dm = ks_depth_mode_get(KS_DEPTH_NFOV_UNBINNED);
    uint64_t imu_ts = dv->base_us + dv->sub_delay_us;
    for (int i = 0; i < dv->frames && st == KS_OK; i++) {
        uint64_t t = dv->base_us + dv->sub_delay_us + (uint64_t)i * (uint64_t)period;
        while (imu_ts < t && st == KS_OK) {
            ks_imu_sample s = {0};
            s.acc_ts_us = s.gyro_ts_us = imu_ts;
            s.acc[2] = 9.81f;
            s.temperature_c = 30.0f;
            st = ks_mkv_writer_add_imu(w, &s, err);
            imu_ts += 5000;
        }
        if (i == dv->skip || dv->skip == RECFIX_SKIP_ALL)
            continue;
        ks_capture *cap = ks_capture_create();
        /* a tiny fake JPEG (SOI, payload, EOI): the recorder stores MJPEG as is */
        cap->color = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, 16);
        memset(cap->color->data, 0, 16);
        cap->color->data[0] = 0xFF, cap->color->data[1] = 0xD8;
        cap->color->data[2] = (uint8_t)dev_index, cap->color->data[3] = (uint8_t)i;
        cap->color->data[14] = 0xFF, cap->color->data[15] = 0xD9;
        cap->color->device_ts_us = t;
        cap->depth = ks_image_create(KS_FORMAT_DEPTH16, dm->width, dm->height, dm->width * 2, 0);
        cap->ir = ks_image_create(KS_FORMAT_IR16, dm->width, dm->height, dm->width * 2, 0);
        uint16_t *dp = (uint16_t *)cap->depth->data, *ip = (uint16_t *)cap->ir->data;
        for (int p = 0; p < dm->width * dm->height; p++) {
            dp[p] = recfix_px(dev_index, i, 1);
            ip[p] = recfix_px(dev_index, i, 2);
        }
        cap->depth->device_ts_us = cap->ir->device_ts_us = (uint64_t)((int64_t)t + dv->depth_delay_us);
        st = ks_mkv_writer_add_capture(w, cap, err);
        ks_capture_release(cap);
    }
    if (st) {
        ks_mkv_writer_abort(w);
        return st;
    }
    return ks_mkv_writer_close(w, err);
}

/* A temporary directory for a test; removed by recfix_rmdir. */
static inline void recfix_tmpdir(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/ks-%s-XXXXXX", tag);
    if (!mkdtemp(buf))
        buf[0] = '\0';
}

static inline void recfix_rmdir(const char *dir)
{
    char cmd[600];
    if (!dir[0] || strncmp(dir, "/tmp/ks-", 8) != 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
