/* Agent and coordinator in two processes over loopback only (interface lo, multicast off, unicast
 * peer 127.0.0.1): discovery, signed commands and state changes, a forged command, a replayed
 * command, gathering a file with its checksum, and noticing a killed agent. */
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinsync/net.h"
#include "ks_test.h"
#include "net/transport.h"

static const char SECRET[] = "loopback-test-secret-0123456789";
static char recording[256];

typedef struct fake_dev {
    ks_agent_state state;
} fake_dev;
static fake_dev devs[2];

static int idx(const char *serial)
{
    return strcmp(serial, "A1") == 0 ? 0 : 1;
}
static ks_status f_configure(void *ctx, const char *s, const char *args, ks_error *err)
{
    devs[idx(s)].state = KS_AGENT_CONFIGURED;
    return KS_OK;
}
static ks_status f_arm(void *ctx, const char *s, ks_error *err)
{
    if (devs[idx(s)].state != KS_AGENT_CONFIGURED)
        return ks_error_set(err, KS_ESTATE, "device %s is not configured", s);
    devs[idx(s)].state = KS_AGENT_ARMED;
    return KS_OK;
}
static ks_status f_start(void *ctx, const char *s, const char *args, ks_error *err)
{
    devs[idx(s)].state = KS_AGENT_STREAMING;
    return KS_OK;
}
static ks_status f_stop(void *ctx, const char *s, ks_error *err)
{
    devs[idx(s)].state = KS_AGENT_STOPPED;
    return KS_OK;
}
static void f_status(void *ctx, const char *s, ks_agent_device_status *st)
{
    st->state = devs[idx(s)].state;
    strcpy(st->role, idx(s) == 0 ? "master" : "subordinate");
    strcpy(st->firmware, "1.6.110");
    /* host time: A1 publishes a usable fit, A2 a broken one (the coordinator must drop it) */
    if (devs[idx(s)].state == KS_AGENT_STREAMING || devs[idx(s)].state == KS_AGENT_ARMED) {
        st->host_fit = (ks_host_time_fit){true, idx(s) == 0 ? 1000.02 : NAN, 1700000000123456789LL, 120.5, 64,
                                          2500000, 400000};
        st->realtime_minus_monotonic_ns = 1234567;
    }
}
static void f_path(void *ctx, const char *s, char *p, size_t n)
{
    snprintf(p, n, "%s", idx(s) == 0 ? recording : "");
}
static const ks_agent_ops ops = {.configure = f_configure, .arm = f_arm, .start = f_start, .stop = f_stop,
                                 .status = f_status, .recording_path = f_path};

static void config(ks_net_config *c, const char *secret)
{
    ks_net_config_init(c);
    c->domain_id = 60 + (int)(getpid() % 100); /* keep parallel test runs apart */
    ks_net_config_add_interfaces(c, "lo", NULL);
    ks_net_config_add_peers(c, "127.0.0.1", NULL);
    memcpy(c->secret, secret, strlen(secret));
    c->secret_len = strlen(secret);
}

static void run_agent(int domain)
{
    ks_net_config c;
    config(&c, SECRET);
    c.domain_id = domain;
    const char *serials[] = {"A1", "A2"};
    ks_agent *a;
    ks_error e;
    if (ks_agent_create(&c, "hostA", "digest-1", serials, 2, &ops, NULL, &a, &e) != KS_OK) {
        fprintf(stderr, "agent: %s\n", e.message);
        _exit(3);
    }
    volatile int stop = 0;
    alarm(60);
    ks_agent_run(a, &stop, &e);
    _exit(0);
}

static bool same_file(const char *p, const char *q)
{
    FILE *a = fopen(p, "rb"), *b = fopen(q, "rb");
    bool same = a && b;
    while (same) {
        int ca = fgetc(a), cb = fgetc(b);
        same = ca == cb;
        if (ca == EOF)
            break;
    }
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return same;
}

static void everything(void)
{
    snprintf(recording, sizeof recording, "/tmp/ks-net-rec-%d.mkv", (int)getpid());
    FILE *f = fopen(recording, "wb");
    for (int i = 0; i < 700000; i++)
        fputc((int)(((unsigned)i * 7919u) & 0xffu), f);
    fclose(f);

    ks_net_config c;
    config(&c, SECRET);
    pid_t pid = fork();
    if (pid == 0)
        run_agent(c.domain_id);

    ks_coordinator *co;
    ks_error e;
    KS_CHECK_INT(ks_coordinator_create(&c, "digest-1", &co, &e), KS_OK);
    const char *both[] = {"A1", "A2"};
    int64_t t0 = ks_now_monotonic_ns();
    KS_CHECK_INT(ks_coordinator_discover(co, both, 2, 10000, &e), KS_OK);
    printf("discovery %.1f ms\n", (ks_now_monotonic_ns() - t0) / 1e6);
    const ks_remote_device *a1 = ks_coordinator_device(co, "A1");
    KS_CHECK(a1 && !strcmp(a1->host, "hostA") && !strcmp(a1->status.role, "master"));

    /* state machine through signed commands */
    KS_CHECK_INT(ks_coordinator_command(co, "A2", "ARM", "", 2000, &e), KS_EIO); /* not configured yet */
    KS_CHECK_CONTAINS(e.message, "not configured");
    KS_CHECK_INT(ks_coordinator_command(co, "*", "CONFIGURE", "{}", 2000, &e), KS_OK);
    KS_CHECK_INT(ks_coordinator_command(co, "A2", "ARM", "", 2000, &e), KS_OK);
    const char *sub[] = {"A2"};
    KS_CHECK_INT(ks_coordinator_wait_state(co, sub, 1, KS_AGENT_ARMED, 3000, &e), KS_OK);
    KS_CHECK_INT(ks_coordinator_command(co, "A1", "START", "", 2000, &e), KS_OK);
    const char *m[] = {"A1"};
    KS_CHECK_INT(ks_coordinator_wait_state(co, m, 1, KS_AGENT_STREAMING, 3000, &e), KS_OK);

    /* host time: the fit travels in the Stats; a broken one is not taken */
    int64_t fit_end = ks_now_monotonic_ns() + 3000000000LL;
    while (!(a1->fit_count > 0) && ks_now_monotonic_ns() < fit_end) {
        ks_coordinator_poll(co);
        dds_sleepfor(DDS_MSECS(20));
    }
    KS_CHECK(a1->fit_count >= 1 && a1->status.host_fit.ok);
    KS_CHECK(a1->status.host_fit.offset_ns == 1700000000123456789LL && a1->status.host_fit.frames == 64);
    KS_CHECK(a1->status.host_fit.first_device_us == 400000 && a1->status.host_fit.last_device_us == 2500000);
    KS_CHECK_NEAR(a1->status.host_fit.rate, 1000.02, 1e-9);
    KS_CHECK_INT(a1->status.realtime_minus_monotonic_ns, 1234567);
    KS_CHECK_INT(a1->fit_count, 1); /* the same fit published again is not a new one */
    const ks_remote_device *a2 = ks_coordinator_device(co, "A2");
    KS_CHECK(a2 && a2->fit_count == 0 && !a2->status.host_fit.ok);

    /* round trip */
    int64_t best = INT64_MAX;
    for (int i = 0; i < 20; i++) {
        int64_t s = ks_now_monotonic_ns();
        KS_CHECK_INT(ks_coordinator_command(co, "A1", "PING", "", 2000, &e), KS_OK);
        int64_t d = ks_now_monotonic_ns() - s;
        best = d < best ? d : best;
    }
    printf("best command round trip %.2f ms\n", best / 1e6);

    /* a forger without the secret: ignored, nothing changes */
    ks_net_config bad;
    config(&bad, "not-the-rig-secret-at-all-xxxx");
    bad.domain_id = c.domain_id;
    ks_coordinator *forger;
    KS_CHECK_INT(ks_coordinator_create(&bad, "digest-1", &forger, &e), KS_OK);
    KS_CHECK_INT(ks_coordinator_discover(forger, m, 1, 5000, &e), KS_OK);
    KS_CHECK_INT(ks_coordinator_command(forger, "A1", "STOP", "", 1000, &e), KS_ETIMEOUT);
    KS_CHECK_CONTAINS(e.message, "same --secret-file"); /* the secret may differ: said, not only "running?" */
    ks_coordinator_free(forger);
    KS_CHECK_INT(ks_coordinator_wait_state(co, m, 1, KS_AGENT_STREAMING, 1500, &e), KS_OK);

    /* a replay: a validly signed command whose sequence number was already used */
    ks_transport raw;
    KS_CHECK_INT(ks_transport_open(&raw, &c, false, &e), KS_OK);
    ks_net_command cmd;
    memset(&cmd, 0, sizeof cmd);
    snprintf(cmd.coordinator_id, sizeof cmd.coordinator_id, "%s", ks_coordinator_id(co));
    cmd.seq = 1; /* the coordinator used 1 already */
    strcpy(cmd.target, "A1");
    strcpy(cmd.verb, "STOP");
    cmd.args = "";
    strcpy(cmd.rig_digest, "digest-1");
    cmd.issued_at_ns = ks_now_realtime_ns();
    ks_net_command_sign(&cmd, (const uint8_t *)SECRET, strlen(SECRET));
    kinsync_msg_dds__Command_ msg = {cmd.coordinator_id, cmd.seq, cmd.target, cmd.verb, (char *)cmd.args,
                                     cmd.rig_digest, cmd.issued_at_ns, {32, 32, cmd.hmac, false}};
    /* wait until the raw writer and reader are matched with the agent's (a command written before is lost) */
    for (int i = 0; i < 500; i++) {
        dds_publication_matched_status_t pm = {0};
        dds_subscription_matched_status_t sm = {0};
        dds_get_publication_matched_status(raw.w_command, &pm);
        dds_get_subscription_matched_status(raw.r_reply, &sm);
        if (pm.current_count >= 1 && sm.current_count >= 1)
            break;
        dds_sleepfor(DDS_MSECS(20));
    }
    KS_CHECK(dds_write(raw.w_command, &msg) >= 0);
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++) {
        void *s[4] = {0};
        dds_sample_info_t in[4];
        int n = dds_take(raw.r_reply, s, in, 4, 4);
        for (int k = 0; k < n; k++) {
            kinsync_msg_dds__Reply_ *r = s[k];
            if (in[k].valid_data && r->seq == 1 && !r->ok && strstr(r->message, "replays"))
                refused = true;
        }
        if (n > 0)
            dds_return_loan(raw.r_reply, s, n);
        dds_sleepfor(DDS_MSECS(20));
    }
    KS_CHECK(refused);
    ks_transport_close(&raw);
    KS_CHECK_INT(ks_coordinator_wait_state(co, m, 1, KS_AGENT_STREAMING, 1500, &e), KS_OK);

    /* gather the recording */
    char dir[128], got[1024];
    snprintf(dir, sizeof dir, "/tmp/ks-net-gather-%d", (int)getpid());
    mkdir(dir, 0700);
    KS_CHECK_INT(ks_coordinator_gather(co, "A1", dir, 10000, got, sizeof got, &e), KS_OK);
    KS_CHECK(same_file(recording, got));
    KS_CHECK_INT(ks_coordinator_gather(co, "A2", dir, 2000, got, sizeof got, &e), KS_EIO); /* has none */
    KS_CHECK_CONTAINS(e.message, "no finished recording");
    unlink(got);
    rmdir(dir);

    /* kill the agent: noticed within 3 s */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int64_t k0 = ks_now_monotonic_ns();
    const ks_remote_device *lost = NULL;
    while (!lost && ks_now_monotonic_ns() - k0 < 5000000000LL) {
        ks_coordinator_poll(co);
        lost = ks_coordinator_lost(co, both, 2);
        dds_sleepfor(DDS_MSECS(20));
    }
    double lost_s = (ks_now_monotonic_ns() - k0) / 1e9;
    printf("killed agent noticed after %.2f s\n", lost_s);
    KS_CHECK(lost != NULL);
    KS_CHECK(lost_s < 3.0);
    ks_coordinator_free(co);
    unlink(recording);
}

int main(void)
{
    KS_RUN(everything);
    return KS_TEST_END();
}
