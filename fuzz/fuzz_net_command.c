/* libFuzzer target: what an agent does with a command received from the network, before and after
 * the signature check: the field checks (ks_net_command_from_msg), the HMAC verification, the replay
 * guard and the SYNC/START argument parser. The input is split into the message's fields at NUL
 * bytes. Nothing may crash, read out of bounds or accept a command signed with another secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data + 16, size - 16);
    buf[size - 16] = '\0';
    char *fields[5] = {buf, "", "", "", ""};
    int k = 1;
    for (size_t i = 0; i < size - 16 && k < 5; i++)
        if (buf[i] == '\0' && i + 1 <= size - 16)
            fields[k++] = buf + i + 1;
    uint8_t hmac[32];
    memset(hmac, 0, sizeof hmac);
    memcpy(hmac, data, 16);
    uint64_t seq;
    memcpy(&seq, data + 8, sizeof seq);
    kinsync_msg_dds__Command_ m = {
        .coordinator_id = fields[0],
        .seq = seq,
        .target = fields[1],
        .verb = fields[2],
        .args = fields[3],
        .rig_digest = fields[4],
        .issued_at_ns = (int64_t)seq,
        .hmac = {._maximum = 32, ._length = (uint32_t)(data[0] % 2 ? 32 : data[1] % 40), ._buffer = hmac},
    };
    ks_net_command cmd;
    ks_error e;
    if (ks_net_command_from_msg(&m, &cmd, &e) == KS_OK) {
        static const uint8_t secret[] = "fuzzing-secret-0123456789";
        /* a random 32-byte tag never verifies; a correctly signed copy always does */
        if (ks_net_command_verify(&cmd, secret, sizeof secret - 1) && memcmp(hmac + 16, "\0\0\0\0", 4) == 0)
            abort();
        ks_net_command_sign(&cmd, secret, sizeof secret - 1);
        if (!ks_net_command_verify(&cmd, secret, sizeof secret - 1))
            abort();
        static ks_replay_guard g;
        static int init;
        if (!init) {
            ks_replay_guard_init(&g, 30LL * 1000000000LL);
            init = 1;
        }
        ks_replay_guard_check(&g, &cmd, (int64_t)seq, &e);
        int64_t at;
        char master[64];
        ks_net_parse_start_args(cmd.args, &at, master, sizeof master, &e);
    }
    free(buf);
    return 0;
}
