/* EBML primitives: variable-length integers, element IDs, a byte buffer that builds elements. */
#include "mkv/ebml.h"

#include <stdlib.h>
#include <string.h>

bool ebml_is_level1(uint32_t id)
{
    switch (id) {
    case ID_SEEKHEAD: case ID_INFO: case ID_TRACKS: case ID_ATTACHMENTS: case ID_TAGS: case ID_CLUSTER:
    case ID_CUES: case ID_CHAPTERS:
        return true;
    default:
        return false;
    }
}

int ebml_read_id(const uint8_t *p, size_t avail, uint32_t *id)
{
    if (avail < 1)
        return -1;
    int len;
    if (p[0] & 0x80) len = 1;
    else if (p[0] & 0x40) len = 2;
    else if (p[0] & 0x20) len = 3;
    else if (p[0] & 0x10) len = 4;
    else return 0;
    if (avail < (size_t)len)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < len; i++)
        v = (v << 8) | p[i];
    *id = v;
    return len;
}

int ebml_read_size(const uint8_t *p, size_t avail, uint64_t *size)
{
    if (avail < 1)
        return -1;
    if (p[0] == 0)
        return 0;
    int len = 1;
    while (!(p[0] & (0x80 >> (len - 1))))
        len++;
    if (avail < (size_t)len)
        return -1;
    uint64_t v = p[0] & (0xFF >> len);
    bool all_ones = v == (uint64_t)(0xFF >> len);
    for (int i = 1; i < len; i++) {
        v = (v << 8) | p[i];
        if (p[i] != 0xFF)
            all_ones = false;
    }
    *size = all_ones ? EBML_UNKNOWN_SIZE : v;
    return len;
}

bool ebml_read_uint(const uint8_t *p, uint64_t len, uint64_t *out)
{
    if (len > 8)
        return false;
    uint64_t v = 0;
    for (uint64_t i = 0; i < len; i++)
        v = (v << 8) | p[i];
    *out = v;
    return true;
}

bool ebml_read_float(const uint8_t *p, uint64_t len, double *out)
{
    uint64_t v;
    if (len == 0) {
        *out = 0;
        return true;
    }
    if ((len != 4 && len != 8) || !ebml_read_uint(p, len, &v))
        return false;
    if (len == 4) {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, 4);
        *out = f;
    } else {
        memcpy(out, &v, 8);
    }
    return true;
}

int ebml_id_len(uint32_t id)
{
    return id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1;
}

int ebml_size_len(uint64_t size)
{
    int len = 1;
    /* a length-n vint holds values up to 2^(7n) - 2 (all ones is reserved for unknown) */
    while (len < 8 && size >= ((uint64_t)1 << (7 * len)) - 1)
        len++;
    return len;
}

void ks_buf_free(ks_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

bool ks_buf_reserve(ks_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void ks_buf_put(ks_buf *b, const void *p, size_t n)
{
    if (!n || !ks_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void ks_buf_put_id(ks_buf *b, uint32_t id)
{
    uint8_t t[4];
    int n = ebml_id_len(id);
    for (int i = 0; i < n; i++)
        t[i] = (uint8_t)(id >> (8 * (n - 1 - i)));
    ks_buf_put(b, t, (size_t)n);
}

void ks_buf_put_size(ks_buf *b, uint64_t size, int len)
{
    uint8_t t[8];
    if (len == 0)
        len = ebml_size_len(size);
    for (int i = 0; i < len; i++)
        t[i] = (uint8_t)(size >> (8 * (len - 1 - i)));
    t[0] |= (uint8_t)(0x80 >> (len - 1));
    ks_buf_put(b, t, (size_t)len);
}

void ks_buf_put_uint_fixed(ks_buf *b, uint32_t id, uint64_t v, int len)
{
    uint8_t t[8];
    ks_buf_put_id(b, id);
    ks_buf_put_size(b, (uint64_t)len, 0);
    for (int i = 0; i < len; i++)
        t[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    ks_buf_put(b, t, (size_t)len);
}

void ks_buf_put_uint(ks_buf *b, uint32_t id, uint64_t v)
{
    int len = 1;
    while (len < 8 && (v >> (8 * len)))
        len++;
    ks_buf_put_uint_fixed(b, id, v, len);
}

void ks_buf_put_sint(ks_buf *b, uint32_t id, int64_t v)
{
    int len = 1;
    while (len < 8 && !(v >= -((int64_t)1 << (8 * len - 1)) && v < ((int64_t)1 << (8 * len - 1))))
        len++;
    ks_buf_put_uint_fixed(b, id, (uint64_t)v, len);
}

void ks_buf_put_float(ks_buf *b, uint32_t id, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    ks_buf_put_uint_fixed(b, id, u, 8);
}

void ks_buf_put_bin(ks_buf *b, uint32_t id, const void *p, size_t n)
{
    ks_buf_put_id(b, id);
    ks_buf_put_size(b, n, 0);
    ks_buf_put(b, p, n);
}

void ks_buf_put_str(ks_buf *b, uint32_t id, const char *s)
{
    ks_buf_put_bin(b, id, s, strlen(s));
}

void ks_buf_put_void(ks_buf *b, size_t total)
{
    if (total < 2)
        return;
    /* pick the size length so that 1 (ID) + len + data == total */
    int len = 1;
    while (len < 8 && total - 1 - (size_t)len > (((size_t)1 << (7 * len)) - 2))
        len++;
    size_t data = total - 1 - (size_t)len;
    ks_buf_put_id(b, ID_VOID);
    ks_buf_put_size(b, data, len);
    if (!ks_buf_reserve(b, data))
        return;
    memset(b->data + b->len, 0, data);
    b->len += data;
}

void ks_buf_begin(ks_buf *b, uint32_t id)
{
    ks_buf_put_id(b, id);
    if (b->depth >= 16) {
        b->oom = true;
        return;
    }
    b->stack[b->depth++] = b->len;
    static const uint8_t zero[8];
    ks_buf_put(b, zero, 8);
}

static void end_common(ks_buf *b, bool crc)
{
    if (b->oom || b->depth <= 0) {
        b->oom = true;
        return;
    }
    size_t at = b->stack[--b->depth];
    size_t body = b->len - at - 8;
    size_t crc_len = crc ? 6 : 0;
    uint64_t size = body + crc_len;
    int n = ebml_size_len(size);
    uint8_t hdr[8 + 6] = {0};
    for (int i = 0; i < n; i++)
        hdr[i] = (uint8_t)(size >> (8 * (n - 1 - i)));
    hdr[0] |= (uint8_t)(0x80 >> (n - 1));
    if (crc) {
        uint32_t c = ks_crc32(b->data + at + 8, body);
        hdr[n] = ID_CRC32;
        hdr[n + 1] = 0x84;
        for (int i = 0; i < 4; i++)
            hdr[n + 2 + i] = (uint8_t)(c >> (8 * i)); /* little-endian */
    }
    size_t hlen = (size_t)n + crc_len;
    if (hlen > 8) {
        if (!ks_buf_reserve(b, hlen - 8))
            return;
        memmove(b->data + at + hlen, b->data + at + 8, body);
        b->len += hlen - 8;
    } else if (hlen < 8) {
        memmove(b->data + at + hlen, b->data + at + 8, body);
        b->len -= 8 - hlen;
    }
    memcpy(b->data + at, hdr, hlen);
}

void ks_buf_end(ks_buf *b)
{
    end_common(b, false);
}

void ks_buf_end_crc(ks_buf *b)
{
    end_common(b, true);
}

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint32_t ks_crc32(const uint8_t *p, size_t n)
{
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init();
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}
