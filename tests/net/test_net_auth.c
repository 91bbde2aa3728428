/* Command signatures and the replay guard of the multi-host protocol. */
#include <stdlib.h>
#include <string.h>

#include "kinsync/net.h"
#include "ks_test.h"

static const uint8_t secret[] = "correct horse battery staple 42";

static ks_net_command make(void)
{
    ks_net_command c;
    memset(&c, 0, sizeof c);
    strcpy(c.coordinator_id, "c0ffee");
    c.seq = 7;
    strcpy(c.target, "000123456712");
    strcpy(c.verb, "START");
    c.args = "{\"fps\":30}";
    strcpy(c.rig_digest, "abc");
    c.issued_at_ns = 1000000000000LL;
    ks_net_command_sign(&c, secret, sizeof secret - 1);
    return c;
}

static void signature(void)
{
    ks_net_command c = make();
    KS_CHECK(ks_net_command_verify(&c, secret, sizeof secret - 1));
    KS_CHECK(!ks_net_command_verify(&c, (const uint8_t *)"another secret of some length", 29));
    ks_net_command t = c;
    t.seq++;
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    t = c;
    t.target[0] = '1';
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    t = c;
    strcpy(t.verb, "STOP");
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    t = c;
    t.args = "{\"fps\":15}";
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    t = c;
    t.issued_at_ns++;
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    t = c;
    strcpy(t.rig_digest, "abd");
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
    /* moving a character between fields must change the signature (length-prefixed encoding) */
    t = c;
    strcpy(t.target, "000123456712S");
    strcpy(t.verb, "TART");
    KS_CHECK(!ks_net_command_verify(&t, secret, sizeof secret - 1));
}

static void replay(void)
{
    ks_replay_guard g;
    ks_error e;
    const int64_t s = 1000000000LL;
    ks_replay_guard_init(&g, 30 * s);
    ks_net_command c = make();
    int64_t now = c.issued_at_ns + s;
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, now, &e), KS_OK);
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, now, &e), KS_EAUTH); /* the same command again */
    KS_CHECK_CONTAINS(e.message, "replays");
    c.seq = 6;
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, now, &e), KS_EAUTH); /* older */
    c.seq = 8;
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, now, &e), KS_OK);
    c.seq = 9;
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, c.issued_at_ns + 31 * s, &e), KS_EAUTH); /* stale */
    KS_CHECK_CONTAINS(e.message, "stale");
    KS_CHECK_INT(ks_replay_guard_check(&g, &c, c.issued_at_ns - 31 * s, &e), KS_EAUTH); /* from the future */
    /* another coordinator has its own sequence */
    ks_net_command d = make();
    strcpy(d.coordinator_id, "beef");
    d.seq = 1;
    KS_CHECK_INT(ks_replay_guard_check(&g, &d, now, &e), KS_OK);
    /* many coordinators: the guard stays bounded and keeps working */
    for (int i = 0; i < 200; i++) {
        ks_net_command x = make();
        snprintf(x.coordinator_id, sizeof x.coordinator_id, "coord-%d", i);
        x.seq = 1;
        KS_CHECK_INT(ks_replay_guard_check(&g, &x, now + i, &e), KS_OK);
        KS_CHECK_INT(ks_replay_guard_check(&g, &x, now + i, &e), KS_EAUTH);
    }
    KS_CHECK(g.count <= 64);
}

static void digest(void)
{
    char h[65];
    ks_sha256_hex("abc", 3, h);
    KS_CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void config_xml(void)
{
    ks_net_config c;
    ks_error e;
    ks_net_config_init(&c);
    KS_CHECK_INT(ks_net_config_add_interfaces(&c, "lo", &e), KS_OK);
    KS_CHECK_INT(ks_net_config_add_peers(&c, "127.0.0.1,127.0.0.2", &e), KS_OK);
    KS_CHECK_INT(ks_net_config_add_peers(&c, "bad\"peer", &e), KS_EINVAL);
    char *x = ks_net_config_xml(&c);
    KS_CHECK_CONTAINS(x, "<NetworkInterface name=\"lo\"/>");
    KS_CHECK_CONTAINS(x, "<AllowMulticast>false</AllowMulticast>");
    KS_CHECK_CONTAINS(x, "<Peer address=\"127.0.0.2\"/>");
    KS_CHECK_CONTAINS(x, "<MaxAutoParticipantIndex>64</MaxAutoParticipantIndex>");
    free(x);
}

int main(void)
{
    KS_RUN(signature);
    KS_RUN(replay);
    KS_RUN(digest);
    KS_RUN(config_xml);
    return KS_TEST_END();
}
