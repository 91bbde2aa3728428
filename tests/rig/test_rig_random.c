/* Property test: thousands of random rigs written as YAML text. Valid daisy chains (1 master + up to
 * 8 subordinates) and stars (up to 2) with random names, hosts, lengths and declared roles that
 * agree with the cables always validate, with the derived master, roles and topology the generator
 * intended; one random mutation from a known list always produces its rule id. Seeded. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/rig.h"
#include "ks_test.h"
#include "rigtest.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int below(int n)
{
    return (int)(next() % (uint32_t)n);
}

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

typedef enum mutation {
    MUT_NONE = 0,
    MUT_LONG_CABLE,   /* cable-too-long */
    MUT_LOOP,         /* sync-cycle */
    MUT_DUP_SERIAL,   /* duplicate-serial */
    MUT_BAD_TRIGGER,  /* trigger-frequency */
    MUT_SUB_MASTER,   /* role-contradiction: the master declared subordinate */
    MUT_FIRMWARE,     /* firmware-mismatch */
    MUT_COUNT
} mutation;

static const char *const mutation_rule[MUT_COUNT] = {
    NULL, "cable-too-long", "sync-cycle", "duplicate-serial", "trigger-frequency", "role-contradiction",
    "firmware-mismatch",
};

static void one_rig(int iter, mutation mut)
{
    bool star = below(3) == 0;
    int subs = star ? 1 + below(ks_max_star_subordinates()) : below(ks_max_daisy_chain_subordinates() + 1);
    int n = 1 + subs;
    if (mut == MUT_LOOP && n < 2)
        n = 2, subs = 1;
    bool trigger = below(4) == 0 && subs > 0;
    static const int fps_hz[] = {5, 15, 30};
    int fps = fps_hz[below(3)];
    char text[8192] = "";
    append(text, sizeof text, "rig: random-%d\ndevices:\n", iter);
    for (int i = 0; i < n; i++) {
        const char *role = "auto";
        if (below(2) && subs > 0)
            role = i == 0 ? "master" : "subordinate";
        if (mut == MUT_SUB_MASTER && i == 0 && subs > 0)
            role = "subordinate";
        int serial = (mut == MUT_DUP_SERIAL && i == n - 1 && n > 1) ? 1000 : 1000 + i;
        append(text, sizeof text, "  - {serial: \"%06d\", name: dev%d, host: host%d, role: %s, firmware: \"%s\"}\n",
               serial, i, i, role, (mut == MUT_FIRMWARE && i == n - 1 && n > 1) ? "1.6.2" : "1.6.1");
    }
    if (subs > 0) {
        if (star) {
            append(text, sizeof text, "star: {master: dev0, subordinates: [");
            for (int i = 1; i < n; i++)
                append(text, sizeof text, "%sdev%d", i > 1 ? ", " : "", i);
            append(text, sizeof text, "], length_m: %d}\n", mut == MUT_LONG_CABLE ? 10 : 1 + below(9));
        } else {
            append(text, sizeof text, "cables:\n");
            for (int i = 1; i < n; i++)
                append(text, sizeof text, "  - {from: dev%d, to: dev%d, length_m: %.1f}\n", i - 1, i,
                       (mut == MUT_LONG_CABLE && i == n - 1) ? 10.0 : 0.5 + below(90) / 10.0);
        }
    }
    if (mut == MUT_LOOP)
        append(text, sizeof text, "%s  - {from: dev%d, to: dev0}\n", subs > 0 && !star ? "" : "cables:\n", n - 1);
    if (trigger)
        append(text, sizeof text, "trigger: {frequency_hz: %g, pulse_width_us: %d, voltage_v: 5, drive_ma: %d}\n",
               mut == MUT_BAD_TRIGGER ? fps * 0.999 : (double)fps, 9 + below(100), 8 + below(20));
    else if (mut == MUT_BAD_TRIGGER)
        append(text, sizeof text, "trigger: {frequency_hz: 24, pulse_width_us: 10, voltage_v: 5, drive_ma: 8, to: dev0}\n");
    append(text, sizeof text, "camera: {fps: %d, depth_mode: %s}\n", fps,
           fps == 30 ? "NFOV_UNBINNED" : (below(2) ? "WFOV_UNBINNED" : "PASSIVE_IR"));
    append(text, sizeof text, "exposure: {us: 2500, powerline: %d}\n", below(2) ? 50 : 60);

    ks_rig rig;
    ks_error e;
    char name[32];
    snprintf(name, sizeof name, "random-%d", iter);
    ks_status st = ks_rig_load_string(text, strlen(text), name, &rig, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    if (st != KS_OK)
        return;
    ks_findings f;
    ks_findings_init(&f);
    st = ks_rig_validate(&rig, &f);
    /* a trigger-fed head declared subordinate is right: with a trigger every device runs as
     * subordinate (docs/hardware-setup.md) */
    bool applies = mut != MUT_NONE && (subs > 0 || mut == MUT_BAD_TRIGGER || mut == MUT_LOOP) &&
                   !(mut == MUT_SUB_MASTER && trigger);
    if (!applies) {
        bool ok = st == KS_OK && ks_findings_count(&f, KS_SEV_ERROR) == 0;
        KS_CHECK_MSG(ok, "%s should be valid:\n%s", name, text);
        if (!ok)
            rigtest_dump(&f);
        if (subs > 0) {
            KS_CHECK_INT(rig.master, 0);
            KS_CHECK_INT(rig.topology, star && subs > 1 ? KS_TOPOLOGY_STAR : KS_TOPOLOGY_DAISY_CHAIN);
            for (int i = 1; i < n; i++)
                KS_CHECK_INT(rig.devices[i].derived_role, KS_ROLE_SUBORDINATE);
            KS_CHECK_INT(rig.devices[0].derived_role, KS_ROLE_MASTER);
            if (trigger)
                KS_CHECK_INT(rig.trigger.to, 0);
        } else {
            KS_CHECK_INT(rig.topology, KS_TOPOLOGY_STANDALONE);
        }
    } else {
        const ks_finding *x = rigtest_find(&f, mutation_rule[mut]);
        KS_CHECK_MSG(x && x->severity == KS_SEV_ERROR && st == KS_EINVAL, "%s: no %s in\n%s", name,
                     mutation_rule[mut], text);
        if (!x)
            rigtest_dump(&f);
    }
    for (int i = 0; i < f.count; i++)
        KS_CHECK(f.items[i].device >= -1 && f.items[i].device < rig.device_count && f.items[i].fix[0]);
    ks_findings_free(&f);
}

static void random_rigs(void)
{
    for (int i = 0; i < 3000; i++)
        one_rig(i, i % 2 ? (mutation)(1 + below(MUT_COUNT - 1)) : MUT_NONE);
}

int main(void)
{
    KS_RUN(random_rigs);
    return KS_TEST_END();
}
