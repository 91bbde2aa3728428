/* A recording made with `timestamps: auto` carries the convention measured from its captures in
 * KINSYNC_TIMESTAMPS (issue 14): captures with start-of-frame timestamps are tagged "seed", centred
 * ones "mid-exposure"; equal exposures cannot tell them apart and stay "auto". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "kinsync/record.h"
#include "ks_test.h"

static ks_capture *make_capture(uint64_t color_ts, uint64_t cexp, uint64_t depth_ts, uint64_t dexp)
{
    ks_capture *c = ks_capture_create();
    static const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xD9};
    c->color = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, sizeof jpeg);
    memcpy(c->color->data, jpeg, sizeof jpeg);
    c->color->size = sizeof jpeg;
    c->color->device_ts_us = color_ts;
    c->color->exposure_us = cexp;
    c->depth = ks_image_create(KS_FORMAT_DEPTH16, 640, 576, 640 * 2, 0);
    memset(c->depth->data, 0, (size_t)640 * 2 * 576);
    c->depth->device_ts_us = depth_ts;
    c->depth->exposure_us = dexp;
    return c;
}

/* Records 20 captures of a subordinate whose timestamps follow `conv` (colour exposure cexp, depth
 * exposure 12800 us, depth delay 0) and returns the tag read back. */
static void record(const char *dir, ks_ts_convention conv, uint64_t cexp, char *tag, size_t n)
{
    ks_record_device dev;
    memset(&dev, 0, sizeof dev);
    snprintf(dev.serial, sizeof dev.serial, "000100000001");
    snprintf(dev.role, sizeof dev.role, "sub1");
    ks_device_config_init(&dev.config);
    dev.config.color_resolution = KS_COLOR_720P;
    dev.config.color_format = KS_FORMAT_MJPG;
    dev.config.depth_mode = KS_DEPTH_NFOV_UNBINNED;
    dev.config.camera_fps = KS_FPS_30;
    dev.config.wired_sync_mode = KS_SYNC_SUBORDINATE;
    ks_recorder_options o;
    memset(&o, 0, sizeof o);
    snprintf(o.timestamps, sizeof o.timestamps, "auto");
    o.overwrite = true;
    ks_recorder *r = NULL;
    ks_error e;
    KS_CHECK_INT(ks_recorder_open(dir, 1, &dev, &o, &r, &e), KS_OK);
    const uint64_t dexp = 12800;
    for (int k = 0; k < 20 && r; k++) {
        uint64_t S = 1000000 + (uint64_t)k * 33333; /* the capture's centre */
        bool sof = ks_ts_is_start_of_frame(conv, KS_SYNC_SUBORDINATE);
        ks_capture *c = make_capture(sof ? S - cexp / 2 : S, cexp, sof ? S - dexp / 2 : S, dexp);
        KS_CHECK_INT(ks_recorder_add_capture(r, 0, c, &e), KS_OK);
        ks_capture_release(c);
    }
    KS_CHECK_INT(ks_recorder_close(r, &e), KS_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/sub1-000100000001.mkv", dir);
    ks_mkv_reader *rd = NULL;
    tag[0] = 0;
    KS_CHECK_MSG(ks_mkv_reader_open(path, &rd, &e) == KS_OK, "%s", e.message);
    if (rd)
        snprintf(tag, n, "%s", ks_mkv_reader_info(rd)->desc.timestamps);
    ks_mkv_reader_close(rd);
}

int main(void)
{
    char dir[] = "/tmp/ks_rec_ts_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char tag[32];
    record(dir, KS_TS_SEED, 8330, tag, sizeof tag);
    KS_CHECK_STR(tag, "seed");
    record(dir, KS_TS_MID_EXPOSURE, 8330, tag, sizeof tag);
    KS_CHECK_STR(tag, "mid-exposure");
    record(dir, KS_TS_SEED, 12800, tag, sizeof tag); /* equal exposures: both conventions look the same */
    KS_CHECK_STR(tag, "auto");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return KS_TEST_END();
}
