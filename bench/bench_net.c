/* bench_net: the multi-host protocol's figures on this machine. An agent runs in a child process
 * (optionally inside a network namespace: run the whole program under `ip netns exec`, and pass the
 * interface and peer), the coordinator in the parent.
 * Prints: discovery time, command round trip (median, p99 over 1000 signed commands), time from the
 * START command to the device reporting STREAMING, and file gathering throughput (64 MiB).
 * Usage: bench_net [INTERFACE [PEERS [AGENT_NETNS]]]   (default lo 127.0.0.1)
 * With AGENT_NETNS (a name under /run/netns) the agent runs in that network namespace, so commands
 * cross a veth pair: scripts/bench-net.sh sets that up. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinsync/net.h"
#include "net/transport.h"

static const char SECRET[] = "bench-secret-0123456789abcdef";
static char path[256];
static ks_agent_state state = KS_AGENT_IDLE;

static ks_status b_start(void *ctx, const char *s, const char *args, ks_error *err)
{
    state = KS_AGENT_STREAMING;
    return KS_OK;
}
static void b_status(void *ctx, const char *s, ks_agent_device_status *st)
{
    st->state = state;
    strcpy(st->role, "master");
}
static void b_path(void *ctx, const char *s, char *p, size_t n)
{
    snprintf(p, n, "%s", path);
}
static const ks_agent_ops ops = {.start = b_start, .status = b_status, .recording_path = b_path};

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *iface = argc > 1 ? argv[1] : "lo", *peer = argc > 2 ? argv[2] : "127.0.0.1";
    ks_net_config c;
    ks_error e;
    ks_net_config_init(&c);
    c.domain_id = 90;
    ks_net_config_add_interfaces(&c, iface, NULL);
    ks_net_config_add_peers(&c, peer, NULL);
    memcpy(c.secret, SECRET, strlen(SECRET));
    c.secret_len = strlen(SECRET);

    snprintf(path, sizeof path, "/tmp/ks-bench-net-%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    char *block = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        block[i] = (char)(i * 31);
    for (int i = 0; i < 64; i++)
        fwrite(block, 1, 1 << 20, f);
    fclose(f);
    free(block);

    const char *agent_ns = argc > 3 ? argv[3] : NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (agent_ns) {
            char nsp[256];
            snprintf(nsp, sizeof nsp, "/run/netns/%s", agent_ns);
            int fd = open(nsp, O_RDONLY);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
                perror(nsp);
                _exit(3);
            }
            close(fd);
        }
        const char *serials[] = {"B1"};
        ks_agent *a;
        if (ks_agent_create(&c, "bench", "d", serials, 1, &ops, NULL, &a, &e) != KS_OK)
            _exit(3);
        volatile int stop = 0;
        alarm(120);
        ks_agent_run(a, &stop, &e);
        _exit(0);
    }
    ks_coordinator *co;
    if (ks_coordinator_create(&c, "d", &co, &e) != KS_OK) {
        fprintf(stderr, "%s\n", e.message);
        return 1;
    }
    const char *one[] = {"B1"};
    int64_t t = ks_now_monotonic_ns();
    if (ks_coordinator_discover(co, one, 1, 10000, &e) != KS_OK) {
        fprintf(stderr, "%s\n", e.message);
        return 1;
    }
    printf("discovery:                %8.2f ms\n", (ks_now_monotonic_ns() - t) / 1e6);

    enum { N = 1000 };
    static double rtt[N];
    for (int i = 0; i < N; i++) {
        int64_t s = ks_now_monotonic_ns();
        ks_coordinator_command(co, "B1", "PING", "", 2000, &e);
        rtt[i] = (ks_now_monotonic_ns() - s) / 1e6;
    }
    qsort(rtt, N, sizeof rtt[0], cmp);
    printf("command round trip:       %8.3f ms median, %.3f ms p99 (%d signed commands; target < 5 ms median)\n",
           rtt[N / 2], rtt[N * 99 / 100], N);

    t = ks_now_monotonic_ns();
    ks_coordinator_command(co, "B1", "START", "", 2000, &e);
    ks_coordinator_wait_state(co, one, 1, KS_AGENT_STREAMING, 5000, &e);
    printf("START to STREAMING seen:  %8.2f ms (state heartbeat published on change)\n",
           (ks_now_monotonic_ns() - t) / 1e6);

    char dir[128], got[1024];
    snprintf(dir, sizeof dir, "/tmp/ks-bench-net-dir-%d", (int)getpid());
    mkdir(dir, 0700);
    t = ks_now_monotonic_ns();
    if (ks_coordinator_gather(co, "B1", dir, 60000, got, sizeof got, &e) == KS_OK) {
        double s = (ks_now_monotonic_ns() - t) / 1e9;
        printf("file gathering:           %8.1f MB/s (64 MiB with SHA-256 check)\n", 64.0 * 1048576 / 1e6 / s);
        unlink(got);
    } else {
        printf("file gathering failed: %s\n", e.message);
    }
    rmdir(dir);
    unlink(path);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ks_coordinator_free(co);
    return 0;
}
