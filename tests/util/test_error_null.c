/* A failure is a failure whatever `err` is: every fallible call returns the same status with an
 * error record and with err == NULL. These are the calls that pass a callee's failure up through
 * ks_error_prefix (which once returned KS_OK when err was NULL). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kinsync/board.h"
#include "kinsync/error.h"
#include "kinsync/mkv.h"
#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

static void test_prefix(void)
{
    KS_CHECK_INT(ks_error_prefix(NULL, KS_EIO, "file %s", "x"), KS_EIO);
    KS_CHECK_INT(ks_error_prefix(NULL, KS_OK, "nothing"), KS_OK);
    ks_error e;
    ks_error_set(&e, KS_ENOTFOUND, "no such thing");
    KS_CHECK_INT(ks_error_prefix(&e, KS_ENOTFOUND, "device %d", 3), KS_ENOTFOUND);
    KS_CHECK_STR(e.message, "device 3: no such thing");
    KS_CHECK_INT(e.code, KS_ENOTFOUND);
}

static void test_device_start_bad_config(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config cfg;
    simt_config(&cfg, 7, false);
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &cfg));
    ks_device_config c = r.cfg[0];
    c.camera_fps = (ks_fps)77; /* not a frame rate */
    ks_error e;
    ks_status with = ks_device_start_cameras(r.dev[0], &c, &e);
    KS_CHECK(with != KS_OK);
    KS_CHECK_CONTAINS(e.message, "SIM00000");
    KS_CHECK_INT(ks_device_start_cameras(r.dev[0], &c, NULL), with);
    simt_close(&r);
}

static void test_mkv_repair_missing(void)
{
    ks_error e;
    ks_status with = ks_mkv_repair("/nonexistent/take.mkv", "/nonexistent/out.mkv", NULL, &e);
    KS_CHECK(with != KS_OK);
    KS_CHECK_CONTAINS(e.message, "cannot repair");
    KS_CHECK_INT(ks_mkv_repair("/nonexistent/take.mkv", "/nonexistent/out.mkv", NULL, NULL), with);
}

static void test_board_invalid(void)
{
    /* parses, but a 5 m tag fails validation, which is passed up with the file name */
    char path[] = "/tmp/ks_test_board_XXXXXX";
    int fd = mkstemp(path);
    KS_CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char *text = "rows: 4\ncolumns: 4\ntag_size: 5.0\nspacing: 0.3\n";
    KS_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    ks_board b;
    ks_error e;
    ks_status with = ks_board_load(path, &b, &e);
    KS_CHECK(with != KS_OK);
    KS_CHECK_CONTAINS(e.message, path);
    KS_CHECK_INT(ks_board_load(path, &b, NULL), with);
    unlink(path);
}

static void test_session_unknown_serial(void)
{
    ks_rig rig;
    simt_rig(&rig, 2, SIMT_DAISY, 1.0);
    ks_sim_config cfg;
    simt_config(&cfg, 8, false);
    ks_backend *b;
    KS_CHECK(ks_backend_open_sim(&rig, &cfg, &b, NULL) == KS_OK);
    static ks_plan plan;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    ks_rig other = rig;
    snprintf(other.devices[1].serial, sizeof other.devices[1].serial, "NOPE0001");
    ks_session *s = NULL;
    ks_error e;
    ks_status with = ks_session_open(&other, &plan, b, NULL, &s, &e);
    KS_CHECK(with != KS_OK);
    KS_CHECK(s == NULL);
    if (s)
        ks_session_close(s);
    s = NULL;
    KS_CHECK_INT(ks_session_open(&other, &plan, b, NULL, &s, NULL), with);
    KS_CHECK(s == NULL);
    if (s)
        ks_session_close(s);
    ks_backend_free(b);
}

int main(void)
{
    KS_RUN(test_prefix);
    KS_RUN(test_device_start_bad_config);
    KS_RUN(test_mkv_repair_missing);
    KS_RUN(test_board_invalid);
    KS_RUN(test_session_unknown_serial);
    return KS_TEST_END();
}
