/* The devices behind an agent (ks_agent_host, src/net/agent_host.c) driven in-process through their
 * ops, as the agent runs them on the coordinator's commands, without the network: one host holding
 * a simulated master and two subordinates. CONFIGURE, ARM (subordinates start and wait), START (the
 * master), frames flowing on every device (STREAMING, frame counts, a host-time fit), STOP with
 * complete recordings that read back with every device's frames, a second run on the same host,
 * and the start rules (ARM before CONFIGURE and START before ARM are refused). Runs under
 * ThreadSanitizer too (label tsan): the capture threads against the agent's thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "kinsync/net.h"
#include "kinsync/sim.h"
#include "ks_test.h"
#include "support/sim_rigs.h"

enum { NDEV = 3 };

static ks_rig rig;
static ks_backend *backend;
static ks_agent_host *host;
static const ks_agent_ops *ops;
static const char *serials[NDEV];
static char dir[128];

static ks_agent_device_status status_of(int i)
{
    ks_agent_device_status st;
    memset(&st, 0, sizeof st);
    ops->status(host, serials[i], &st);
    return st;
}

/* Waits (bounded, 60 s of wall time for slow sanitizer builds) until every device streams and has
 * delivered at least `frames` frames. */
static bool wait_streaming(uint64_t frames)
{
    for (int t = 0; t < 6000; t++) {
        bool all = true;
        for (int i = 0; i < NDEV; i++) {
            ks_agent_device_status st = status_of(i);
            all &= st.state == KS_AGENT_STREAMING && st.frames >= frames;
        }
        if (all)
            return true;
        usleep(10000);
    }
    return false;
}

/* Every device's recording: complete (.mkv, not .part), and it holds frames. */
static void check_recordings(const char *what)
{
    for (int i = 0; i < NDEV; i++) {
        char path[512];
        ops->recording_path(host, serials[i], path, sizeof path);
        size_t n = strlen(path);
        KS_CHECK_MSG(n > 4 && !strcmp(path + n - 4, ".mkv"), "%s: %s's recording is %s", what, serials[i], path);
        ks_mkv_reader *r = NULL;
        ks_error e;
        KS_CHECK_MSG(ks_mkv_reader_open(path, &r, &e) == KS_OK, "%s: %s reads back: %s", what, path, e.message);
        if (!r)
            continue;
        int got = 0;
        ks_capture *c = NULL;
        while (got < 5 && ks_mkv_reader_next_capture(r, &c, &e) == KS_OK) {
            ks_capture_release(c);
            c = NULL;
            got++;
        }
        KS_CHECK_MSG(got == 5, "%s: %s holds frames (%d read)", what, path, got);
        ks_mkv_reader_close(r);
    }
}

/* One run: CONFIGURE, ARM, START (the master), frames, STOP. */
static void run_once(const char *what)
{
    ks_error e;
    int master = -1;
    for (int i = 0; i < NDEV; i++) {
        KS_CHECK_MSG(ops->configure(host, serials[i], "{}", &e) == KS_OK, "%s: configure %s: %s", what, serials[i],
                     e.message);
        KS_CHECK_INT(status_of(i).state, KS_AGENT_CONFIGURED);
        if (!strcmp(status_of(i).role, "master"))
            master = i;
    }
    KS_CHECK_MSG(master >= 0, "%s: the host holds the master", what);
    if (master < 0)
        return;
    /* the master may not start before it is armed */
    KS_CHECK_INT(ops->start(host, serials[master], "", &e), KS_ESTATE);
    for (int i = 0; i < NDEV; i++) {
        KS_CHECK_MSG(ops->arm(host, serials[i], &e) == KS_OK, "%s: arm %s: %s", what, serials[i], e.message);
        ks_agent_state s = status_of(i).state;
        KS_CHECK_MSG(s == KS_AGENT_ARMED, "%s: %s is %s after ARM", what, serials[i], ks_agent_state_name(s));
    }
    /* nothing streams before the master starts: the subordinates wait for its pulses */
    usleep(200000);
    for (int i = 0; i < NDEV; i++)
        KS_CHECK_MSG(status_of(i).frames == 0, "%s: %s has no frames before START", what, serials[i]);
    /* the coordinator starts the master only; the subordinates follow its pulses */
    KS_CHECK_MSG(ops->start(host, serials[master], "", &e) == KS_OK, "%s: start %s: %s", what, serials[master],
                 e.message);
    KS_CHECK_MSG(wait_streaming(30), "%s: every device streams 30 frames after START", what);
    for (int i = 0; i < NDEV; i++) {
        ks_agent_device_status st = status_of(i);
        KS_CHECK_MSG(st.jack_supported && (i == master || st.sync_in), "%s: %s's jacks reported", what, serials[i]);
        KS_CHECK_MSG(st.firmware[0], "%s: %s's firmware reported", what, serials[i]);
        /* the rate the device delivers, in device time: the rig's 15 fps */
        KS_CHECK_MSG(st.fps > 13.5 && st.fps < 16.5, "%s: %s reports %.2f fps, expected 15", what, serials[i], st.fps);
    }
    for (int i = 0; i < NDEV; i++) {
        KS_CHECK_MSG(ops->stop(host, serials[i], &e) == KS_OK, "%s: stop %s: %s", what, serials[i], e.message);
        KS_CHECK_INT(status_of(i).state, KS_AGENT_STOPPED);
    }
    check_recordings(what);
}

static void test_runs(void)
{
    ks_error e;
    /* ARM before CONFIGURE is refused */
    KS_CHECK_INT(ops->arm(host, serials[1], &e), KS_ESTATE);
    KS_CHECK_CONTAINS(e.message, "CONFIGURED");
    run_once("first run");
    run_once("second run on the same host");
}

int main(void)
{
    simt_rig(&rig, NDEV, SIMT_DAISY, 2.0);
    rig.camera.fps = KS_FPS_15;
    rig.camera.depth_mode = KS_DEPTH_NFOV_2X2BINNED;
    for (int i = 0; i < NDEV; i++)
        snprintf(rig.devices[i].host, sizeof rig.devices[i].host, "h1");
    ks_sim_config sc;
    simt_config(&sc, 21, false);
    ks_error e;
    snprintf(dir, sizeof dir, "/tmp/ks-agent-host.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    KS_CHECK_MSG(ks_backend_open_sim(&rig, &sc, &backend, &e) == KS_OK, "%s", e.message);
    KS_CHECK_MSG(backend && ks_agent_host_create(&rig, "h1", backend, dir, &host, &e) == KS_OK, "%s", e.message);
    /* a host the rig does not name is refused with the fix */
    ks_agent_host *other = NULL;
    KS_CHECK(ks_agent_host_create(&rig, "h9", backend, dir, &other, &e) == KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "--host");
    if (host) {
        ops = ks_agent_host_ops();
        KS_CHECK_INT(ks_agent_host_serials(host, serials, NDEV), NDEV);
        KS_RUN(test_runs);
    }
    ks_agent_host_free(host);
    ks_backend_free(backend);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return KS_TEST_END();
}
