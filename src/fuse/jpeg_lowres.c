/* fuse/jpeg_lowres.c: a baseline JPEG frame decoded straight to 1/2, 1/4 or 1/8 of its size.
 *
 * Colouring a fused cloud samples a small colour image (docs/fuse.md, "The scaled MJPEG decoder").
 * libjpeg-turbo's scaled decode runs its whole pipeline: every coefficient Huffman-decoded into a
 * zeroed 64-coefficient block, a reduced IDCT, upsampling and colour conversion, block by block
 * through its buffers: 2.4 ms a frame at 1/2 on the Azure Kinect's 720P MJPEG (4:2:2, quantizers
 * 1-6, about 212 KB), most of it entropy decoding. A pixel of the 1/s image needs no IDCT: the mean
 * of a block over its s x s pixels is a weighted sum of the block's coefficients (comp_weights). So
 * each coefficient, once decoded, is multiplied into a 16-lane vector of its weights for the
 * block's output pixels (4 x 4 at 1/2, 2 x 2 at 1/4, 1 at 1/8) and added to a register; the
 * pixels' Y, Cb and Cr means are converted to BGRA a row at a time. The image is the box filter of
 * the full-size decode, within rounding and clamping (the full decode clamps each pixel before
 * the mean), not libjpeg's reduced IDCT; subsampled chroma is as coarse as in libjpeg's scaled
 * decode (an output pixel takes the chroma pixel that covers it).
 *
 * It takes what cameras write: baseline or extended sequential Huffman (SOF0, SOF1), 8 bits, one
 * scan holding every component, 1 (grey) or 3 components with sampling factors 1 or 2, restart
 * markers, Huffman tables in the frame. Anything else, and any inconsistency in the entropy-coded
 * data (a symbol no table has, a segment that ends early or late, a wrong restart marker), is
 * refused with KS_EPARSE and the reason; ks_mjpeg_decode then decodes the frame with libjpeg-turbo,
 * which reads every JPEG and conceals damage as it always has. Every read is bounds-checked: the
 * data is the camera's or a file's (fuzz/fuzz_jpeg_lowres.c). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/fuse_internal.h"
#include "util/grow.h"

#define FAST_BITS 11 /* a code (and its value bits) up to this long decodes with one table lookup */
#define EOB_RUN 64   /* the run of an end of block: takes k past 63 */
#define BLK_LEN 128  /* zigzag indices a block reaches: past 63 at an end of block, up to 63 + EOB_RUN */

/* zigzag index -> natural index (row * 8 + column) */
static const uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* One Huffman table. fast[] is indexed by the next FAST_BITS bits of the stream:
 * - bits 0-7 the bits the entry consumes, 0 when the code is longer than FAST_BITS (canonical
 *   decode with maxcode/valoff);
 * - bit 15 (COMPLETE) set: code and value fitted: bits 8-14 the run (AC; EOB_RUN for an end of
 *   block), bits 16-31 the signed value; and in an AC table, when the next symbol's code and value
 *   fitted in the bits left, that one too (two coefficients for one lookup: on the real frame 61 %
 *   of the AC symbols come in such pairs): bits 32-39 how far past the first coefficient the
 *   second is (1 + its run; EOB_RUN + 1 for an end of block), bits 40-47 the first's own bits,
 *   bits 48-63 the second's value; 0 when the entry holds one symbol (adding 0 to the coefficient
 *   where k stands changes nothing);
 * - bit 15 clear: only the code fitted: bits 16-23 the symbol, its value bits still to read. */
#define COMPLETE 0x8000u
typedef struct huff {
    bool defined;
    uint8_t spec[16 + 256]; /* the DHT's counts, then its symbols, as they came (the cache key) */
    int nspec;
    int32_t maxcode[17]; /* largest code of each length, -1 when none */
    int32_t valoff[17];  /* symbol index (in spec + 16) of a code of length l: valoff[l] + code */
    uint64_t fast[1 << FAST_BITS];
} huff;

/* A block's output pixels: m x m (m = 8 / scale, at most 4) in the first m * m lanes, row by row */
typedef float v16f __attribute__((vector_size(64)));

typedef struct comp {
    int id, h, v, tq, td, ta;
    int pred;            /* DC predictor */
    const v16f *w;       /* its weights (ks_jpeg_lowres.w) */
} comp;

struct ks_jpeg_lowres {
    huff dc[4], ac[4];
    uint16_t q[4][64]; /* quantizers in zigzag order */
    /* per component and zigzag index: the coefficient's dequantized weight in each output pixel
     * of the block (see comp_weights), zeros past 63 (where a corrupt block's end may land) */
    v16f w[3][BLK_LEN];
    uint8_t *data;     /* the scan's entropy-coded data, unstuffed, then PAD zero bytes */
    size_t cap;
    size_t *seg;       /* where each restart interval's data ends in data[] */
    size_t nseg, segcap;
    float *rows;       /* an MCU row of samples (see ks_jpeg_lowres_decode) */
    size_t rowcap;
};

/* Zero bytes after the unstuffed data: the refill reads 8 bytes at a time, and corrupt data is
 * caught at the start of an MCU once it has run OVERRUN bytes past the end of the scan; an MCU
 * (at most 6 blocks of 64 symbols of at most 31 bits) reads at most 1,496 bytes more. */
#define OVERRUN 256
#define PAD 2048

/* The decoder in an AVX-512, an AVX2 and a plain clone (KS_HOT's, without its O3: a helper
 * compiled at another optimization level is not inlined into it, and the decoding loop is all
 * helpers). BMI2's shifts by a register take a cycle off each symbol's chain. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define KS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KS_CLONES
#endif

/* The bit reader, over the unstuffed data (see unstuff): buf holds the next bits, most
 * significant first, n of them valid (56 to 63 after a refill); p is the next byte not in buf. */
typedef struct bitrd {
    const uint8_t *p;
    uint64_t buf;
    int n;
} bitrd;

ks_jpeg_lowres *ks_jpeg_lowres_create(void)
{
    /* the weights are 64-byte vectors: aligned as the type says (calloc gives 16) */
    size_t size = (sizeof(ks_jpeg_lowres) + 63) & ~(size_t)63;
    ks_jpeg_lowres *j = aligned_alloc(64, size);
    if (j)
        memset(j, 0, size);
    return j;
}

void ks_jpeg_lowres_destroy(ks_jpeg_lowres *j)
{
    if (!j)
        return;
    free(j->data);
    free(j->seg);
    free(j->rows);
    free(j);
}

static inline int extend(uint32_t bits, int s)
{
    return bits < (1u << (s - 1)) ? (int)bits - (1 << s) + 1 : (int)bits;
}

/* Builds table h from a DHT's counts (spec[0..15]) and symbols; false when the counts do not make
 * a prefix code. Unchanged tables (every frame of a camera carries the same) are not rebuilt. */
static bool huff_build(huff *h, const uint8_t *spec, int nspec, bool is_dc)
{
    if (h->defined && h->nspec == nspec && !memcmp(h->spec, spec, (size_t)nspec))
        return true;
    h->defined = false;
    memcpy(h->spec, spec, (size_t)nspec);
    h->nspec = nspec;
    memset(h->fast, 0, sizeof h->fast);
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        int cnt = spec[l - 1];
        if (code + cnt > (1 << l)) /* more codes of this length than the length has */
            return false;
        h->valoff[l] = k - code;
        for (int i = 0; i < cnt; i++, k++, code++) {
            int sym = h->spec[16 + k];
            if (is_dc && sym > 11)
                return false;
            if (l > FAST_BITS)
                continue;
            int r = sym >> 4, s = sym & 15, fill = FAST_BITS - l;
            for (int j = 0; j < 1 << fill; j++) {
                uint64_t e;
                if (is_dc ? s == 0 : s == 0 && r != 15) /* DC 0, or an end of block */
                    e = COMPLETE | (uint32_t)l | (uint32_t)(is_dc ? 0 : EOB_RUN) << 8;
                else if (!is_dc && s == 0) /* ZRL: fifteen zeros and a zero */
                    e = COMPLETE | (uint32_t)l | 15u << 8;
                else if (l + s <= FAST_BITS) {
                    int v = extend((uint32_t)j >> (fill - s) & ((1u << s) - 1), s);
                    e = COMPLETE | (uint32_t)(l + s) | (uint32_t)(is_dc ? 0 : r) << 8 |
                        (uint32_t)(uint16_t)(int16_t)v << 16;
                } else
                    e = (uint32_t)l | (uint32_t)sym << 16;
                h->fast[(uint32_t)code << fill | (uint32_t)j] = e;
            }
        }
        h->maxcode[l] = cnt ? code - 1 : -1;
        code <<= 1;
    }
    uint64_t single[1 << FAST_BITS]; /* the entries before pairing (the second symbol's come from here) */
    if (!is_dc)
        memcpy(single, h->fast, sizeof single);
    for (uint32_t i = 0; !is_dc && i < 1u << FAST_BITS; i++) { /* pairs: see the comment of huff */
        uint64_t e = single[i];
        int l = (int)(e & 0xff);
        if (!(e & COMPLETE) || (e >> 8 & 0x7f) == EOB_RUN || l >= FAST_BITS)
            continue;
        uint64_t e2 = single[(i << l) & ((1u << FAST_BITS) - 1)]; /* its unknown low bits are 0 */
        int l2 = (int)(e2 & 0xff);
        if (!(e2 & COMPLETE) || l + l2 > FAST_BITS)
            continue;
        h->fast[i] = (e & ~(uint64_t)0xff) | (uint64_t)(l + l2) | (uint64_t)(1 + (e2 >> 8 & 0x7f)) << 32 |
                     (uint64_t)l << 40 | (e2 >> 16 & 0xffff) << 48;
    }
    h->defined = true;
    return true;
}

/* Tops buf up to 56-63 valid bits without a branch: the 8 bytes at p go in below the valid bits
 * (bits past the whole bytes counted are the stream's own next bits, put in again, unchanged, by
 * the next refill). */
static inline __attribute__((always_inline)) void refill(bitrd *b)
{
    uint64_t x;
    memcpy(&x, b->p, 8);
    b->buf |= __builtin_bswap64(x) >> b->n;
    b->p += (63 - b->n) >> 3;
    b->n |= 56;
}

static inline __attribute__((always_inline)) void consume(bitrd *b, int l)
{
    b->buf <<= l;
    b->n -= l;
}

/* The symbol of a code longer than FAST_BITS; -1 when no code of the table matches. */
static inline int slow_symbol(bitrd *b, const huff *h)
{
    for (int l = FAST_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(b->buf >> (64 - l));
        if (code <= h->maxcode[l]) {
            int32_t i = h->valoff[l] + code;
            if (i < 0 || i >= h->nspec - 16) /* not a code of this length (cannot happen: canonical) */
                return -1;
            consume(b, l);
            return h->spec[16 + i];
        }
    }
    return -1;
}

/* The symbol of an entry that is not COMPLETE (its code consumed, its value bits not), -1 when no
 * code of the table matches. */
static inline int code_symbol(bitrd *b, uint64_t e, const huff *h)
{
    if (!(e & 0xff))
        return slow_symbol(b, h);
    consume(b, (int)(e & 0xff));
    return (int)(e >> 16 & 0xff);
}

/* One block of component c: each coefficient (the DC with the prediction added) times its weight
 * added into the lanes of *sums (a register: the sums' additions run beside the decoding, which
 * waits on each symbol's table lookup); false on a code no table has. The reader's state is worked
 * on in locals (registers): through the struct, each symbol's shift would wait on a store and a
 * load. Not inlined: in the MCU loop, short of registers, the real frame took 15-20 % longer. */
static KS_CLONES __attribute__((noinline)) bool decode_block(bitrd *rd, comp *c, const huff *dc, const huff *ac,
                                                              v16f *sums)
{
    bitrd b = *rd;
    bool ok = false;
    refill(&b);
    uint64_t e = dc->fast[b.buf >> (64 - FAST_BITS)];
    int diff;
    if (e & COMPLETE) {
        consume(&b, (int)(e & 0xff));
        diff = (int16_t)(e >> 16);
    } else {
        int s = code_symbol(&b, e, dc);
        if (s < 0)
            goto out;
        diff = s ? extend((uint32_t)(b.buf >> (64 - s)), s) : 0;
        consume(&b, s);
    }
    c->pred += diff;
    v16f acc = (float)c->pred * c->w[0];
    const uint64_t *fast = ac->fast;
    for (int k = 1; k < 64; k++) {
        refill(&b);
        e = fast[b.buf >> (64 - FAST_BITS)];
        int v;
        if (e & COMPLETE) {
            k += (int)(e >> 8 & 0x7f);
            /* a block whose last coefficient is 63 has no end of block: what follows is the next
             * block's DC, not the pair's second symbol */
            bool last = k >= 63;
            consume(&b, last && (e >> 32 & 0xff) ? (int)(e >> 40 & 0xff) : (int)(e & 0xff));
            acc += (float)(int16_t)(e >> 16) * c->w[k];
            k += last ? 0 : (int)(e >> 32 & 0xff); /* the second coefficient, or 0 added where k is */
            v = last ? 0 : (int16_t)(e >> 48);
        } else {
            int sym = code_symbol(&b, e, ac);
            if (sym < 0)
                goto out;
            int r = sym >> 4, s = sym & 15;
            if (!s) {
                if (r != 15)
                    break;
                k += 15;
                continue;
            }
            k += r;
            v = extend((uint32_t)(b.buf >> (64 - s)), s);
            consume(&b, s);
        }
        acc += (float)v * c->w[k];
    }
    ok = true;
    *sums = acc;
out:
    *rd = b;
    return ok;
}

/* Component c's weights for the output scale into w (see the file comment): output pixel (qx, qy)
 * of a block is the mean of the full decode over its scale x scale pixels, so a coefficient (u, v)
 * adds F(u, v) b(u, qx) b(v, qy) / 4 to it, b(u, q) the mean of C(u) cos((2x + 1) u pi / 16) over
 * the pixels x of column q. */
static void comp_weights(comp *c, const uint16_t *q, int scale, v16f *w)
{
    const int m = 8 / scale;
    double b[8][4];
    for (int u = 0; u < 8; u++)
        for (int qx = 0; qx < m; qx++) {
            double sum = 0;
            for (int x = qx * scale; x < (qx + 1) * scale; x++)
                sum += (u ? 1.0 : sqrt(0.5)) * cos((2 * x + 1) * u * M_PI / 16);
            b[u][qx] = fabs(sum) < 1e-9 ? 0.0 : sum / scale; /* even u over a half: exactly 0 */
        }
    memset(w, 0, BLK_LEN * sizeof *w);
    for (int k = 0; k < 64; k++) {
        int u = zigzag[k] & 7, v = zigzag[k] >> 3;
        for (int qy = 0; qy < m; qy++)
            for (int qx = 0; qx < m; qx++)
                w[k][qy * m + qx] = (float)(q[k] * b[u][qx] * b[v][qy] / 4);
    }
    c->w = w;
}

/* x + 128 (a sample is its area's mean less 128) rounded to 0..255 (macros: a helper function
 * compiled at -O2 is not inlined into the O3 loops below) */
#define LEVEL8(x) ((uint32_t)(clamp255((x) + 128.5f)))

#define clamp255(v) ((v) < 0.0f ? 0.0f : (v) > 255.0f ? 255.0f : (v))

/* One output row, BGRA, from its Y, Cb and Cr (each less 128); cb and cr hold n samples, or
 * (n + 1) / 2 when half (horizontally subsampled chroma: each sample covers two pixels). */
KS_HOT_NANTEST static void color_row(const float *restrict y, const float *restrict cb, const float *restrict cr,
                                     int n, bool half, uint32_t *restrict out)
{
#define BGRA(Y, B, R)                                                                                             \
    (LEVEL8((Y) + 1.772f * (B)) | LEVEL8((Y) - 0.344136f * (B) - 0.714136f * (R)) << 8 |                          \
     LEVEL8((Y) + 1.402f * (R)) << 16 | 0xFF000000u)
    if (half) {
        for (int x = 0; x < n / 2; x++) {
            float B = cb[x], R = cr[x];
            out[2 * x] = BGRA(y[2 * x], B, R);
            out[2 * x + 1] = BGRA(y[2 * x + 1], B, R);
        }
        if (n & 1)
            out[n - 1] = BGRA(y[n - 1], cb[n / 2], cr[n / 2]);
    } else
        for (int x = 0; x < n; x++)
            out[x] = BGRA(y[x], cb[x], cr[x]);
#undef BGRA
}

KS_HOT_NANTEST static void grey_row(const float *restrict y, int n, uint32_t *restrict out)
{
    for (int x = 0; x < n; x++)
        out[x] = LEVEL8(y[x]) * 0x010101u | 0xFF000000u;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

#define FAIL(...) return ks_error_set(err, KS_EPARSE, "JPEG: " __VA_ARGS__)

/* The scan's entropy-coded data from p into j->data without its stuffed zero bytes, the end of
 * each restart interval in j->seg; false when a restart marker is out of sequence or memory runs
 * out. The data ends at the first other marker (EOI) or the end of the frame. */
static bool unstuff(ks_jpeg_lowres *j, const uint8_t *p, const uint8_t *end)
{
    size_t need = (size_t)(end - p) + PAD;
    if (need > j->cap) {
        uint8_t *nd = realloc(j->data, need);
        if (!nd)
            return false;
        j->data = nd;
        j->cap = need;
    }
    uint8_t *o = j->data;
    j->nseg = 0;
    for (;;) {
        const uint8_t *ff = memchr(p, 0xFF, (size_t)(end - p));
        size_t run = (size_t)((ff ? ff : end) - p);
        memcpy(o, p, run);
        o += run;
        if (!ff || end - ff < 2)
            break;
        p = ff + 2;
        if (ff[1] == 0x00)
            *o++ = 0xFF;
        else if (ff[1] == 0xFF) /* fill byte */
            p = ff + 1;
        else if (ff[1] >= 0xD0 && ff[1] <= 0xD7) {
            if (ff[1] != 0xD0 + (j->nseg & 7))
                return false;
            if (!ks_grow((void **)&j->seg, &j->segcap, j->nseg + 2, sizeof *j->seg))
                return false;
            j->seg[j->nseg++] = (size_t)(o - j->data);
        } else
            break;
    }
    if (!ks_grow((void **)&j->seg, &j->segcap, j->nseg + 1, sizeof *j->seg))
        return false;
    j->seg[j->nseg++] = (size_t)(o - j->data);
    memset(o, 0, PAD);
    return true;
}

/* Whether the reader stopped at the end of restart interval i's data, give or take its padding
 * (at most 7 bits). */
static bool at_interval_end(const ks_jpeg_lowres *j, const bitrd *b, size_t i)
{
    size_t pos = (size_t)(b->p - j->data) * 8 - (size_t)b->n, e = j->seg[i] * 8;
    return pos <= e && pos + 7 >= e;
}

KS_CLONES ks_status ks_jpeg_lowres_decode(ks_jpeg_lowres *j, const uint8_t *data, size_t size, int scale,
                                       uint8_t **buf, size_t *cap, ks_color_image *out, ks_error *err)
{
    if (scale != 2 && scale != 4 && scale != 8)
        FAIL("scale 1/%d is not decoded here (1/2, 1/4 or 1/8)", scale);
    if (size < 4 || data[0] != 0xFF || data[1] != 0xD8)
        FAIL("no start of image");
    const uint8_t *p = data + 2, *end = data + size;
    comp cs[3];
    int nc = 0, width = 0, height = 0, ri = 0;
    bool sof = false;
    /* the tables this frame defines (bit per table id): another frame's never count, even where
     * their built form is kept (a frame without them is refused: libjpeg-turbo gives MJPEG without
     * Huffman tables the standard ones) */
    unsigned has_q = 0, has_dc = 0, has_ac = 0;
    for (;;) { /* markers up to the scan */
        while (p < end && *p == 0xFF && end - p >= 2 && p[1] == 0xFF)
            p++;
        if (end - p < 4 || p[0] != 0xFF)
            FAIL("a marker is missing or the header is cut short");
        int m = p[1];
        size_t len = be16(p + 2);
        if (len < 2 || (size_t)(end - p) - 2 < len)
            FAIL("marker 0x%02X has a length past the end", m);
        const uint8_t *s = p + 4, *se = p + 2 + len;
        p = se;
        if (m == 0xDB) { /* DQT */
            while (s < se) {
                int pq = *s >> 4, tq = *s & 15;
                size_t need = 1 + 64 * (size_t)(pq + 1);
                if (pq > 1 || tq > 3 || (size_t)(se - s) < need)
                    FAIL("bad quantization table");
                for (int k = 0; k < 64; k++)
                    j->q[tq][k] = pq ? be16(s + 1 + 2 * k) : s[1 + k];
                has_q |= 1u << tq;
                s += need;
            }
        } else if (m == 0xC4) { /* DHT */
            while (s < se) {
                if (se - s < 17)
                    FAIL("bad Huffman table");
                int tc = *s >> 4, th = *s & 15, total = 0;
                for (int i = 0; i < 16; i++)
                    total += s[1 + i];
                if (tc > 1 || th > 3 || total > 256 || se - s < 17 + total)
                    FAIL("bad Huffman table");
                if (!huff_build(tc ? &j->ac[th] : &j->dc[th], s + 1, 16 + total, tc == 0))
                    FAIL("Huffman table %d/%d is not a prefix code", tc, th);
                *(tc ? &has_ac : &has_dc) |= 1u << th;
                s += 17 + total;
            }
        } else if (m == 0xC0 || m == 0xC1) { /* baseline, extended sequential Huffman */
            if (sof || len < 8)
                FAIL("bad frame header");
            sof = true;
            height = be16(s + 1), width = be16(s + 3), nc = s[5];
            if (s[0] != 8)
                FAIL("%d-bit samples are not decoded here", s[0]);
            if (nc != 1 && nc != 3)
                FAIL("%d components are not decoded here", nc);
            if (len != 8 + 3 * (size_t)nc || width <= 0 || height <= 0 || width > 16384 || height > 16384)
                FAIL("bad frame header");
            for (int i = 0; i < nc; i++) {
                cs[i] = (comp){.id = s[6 + 3 * i], .h = s[7 + 3 * i] >> 4, .v = s[7 + 3 * i] & 15,
                               .tq = s[8 + 3 * i]};
                if (cs[i].h < 1 || cs[i].h > 2 || cs[i].v < 1 || cs[i].v > 2 || cs[i].tq > 3)
                    FAIL("sampling %dx%d or table %d not decoded here", cs[i].h, cs[i].v, cs[i].tq);
                if (nc == 1) /* one component: blocks in raster order whatever its factors */
                    cs[i].h = cs[i].v = 1;
            }
        } else if (m == 0xDD) { /* DRI */
            if (len != 4)
                FAIL("bad restart interval");
            ri = be16(s);
        } else if (m == 0xDA) { /* SOS */
            if (!sof || len < 6 || s[0] != nc || len != 6 + 2 * (size_t)nc)
                FAIL("the scan does not hold every component");
            for (int i = 0; i < nc; i++) {
                if (s[1 + 2 * i] != cs[i].id)
                    FAIL("the scan's components are not the frame's, in order");
                cs[i].td = s[2 + 2 * i] >> 4, cs[i].ta = s[2 + 2 * i] & 15;
                if (cs[i].td > 3 || cs[i].ta > 3 || !(has_dc >> cs[i].td & 1) || !(has_ac >> cs[i].ta & 1) ||
                    !(has_q >> cs[i].tq & 1))
                    FAIL("a table the scan uses is not defined in the frame");
            }
            const uint8_t *t = s + 1 + 2 * nc;
            if (t[0] != 0 || t[1] != 63 || t[2] != 0)
                FAIL("not a sequential scan");
            break;
        } else if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) { /* APPn, COM */
        } else
            FAIL("marker 0x%02X (not baseline sequential Huffman) is not decoded here", m);
    }
    int hmax = 1, vmax = 1;
    for (int i = 0; i < nc; i++) {
        hmax = cs[i].h > hmax ? cs[i].h : hmax;
        vmax = cs[i].v > vmax ? cs[i].v : vmax;
        comp_weights(&cs[i], j->q[cs[i].tq], scale, j->w[i]);
    }
    /* Y as wide as the MCU, Cb and Cr alike, as wide or half as wide (any heights) */
    if (nc == 3 && (cs[0].h != hmax || cs[1].h != cs[2].h))
        FAIL("sampling %dx%d, %dx%d, %dx%d is not decoded here", cs[0].h, cs[0].v, cs[1].h, cs[1].v, cs[2].h,
             cs[2].v);
    const int sw = (width + scale - 1) / scale, sh = (height + scale - 1) / scale;
    const int mw = hmax * 8, mh = vmax * 8, oh = mh / scale; /* MCU in pixels; its height in output pixels */
    const int mcux = (width + mw - 1) / mw, mcuy = (height + mh - 1) / mh;
    if (!unstuff(j, p, end))
        FAIL("restart markers out of sequence, or out of memory");
    const long per = ri ? ri : (long)mcux * mcuy; /* MCUs in a restart interval */
    if ((long)j->nseg != ((long)mcux * mcuy + per - 1) / per)
        FAIL("%zu restart intervals where the image has %ld", j->nseg, ((long)mcux * mcuy + per - 1) / per);
    long blocks = 0; /* every block takes 2 bits at least (a DC code, an end of block): before the image
                        is allocated, a header whose size the data cannot hold is refused */
    for (int i = 0; i < nc; i++)
        blocks += (long)mcux * mcuy * cs[i].h * cs[i].v;
    if ((long)(j->seg[j->nseg - 1] * 4) < blocks)
        FAIL("the scan's %zu bytes cannot hold the %ld blocks of a %dx%d image", j->seg[j->nseg - 1], blocks, width,
             height);
    size_t need = (size_t)sw * (size_t)sh * 4;
    if (need > *cap) {
        uint8_t *nb = realloc(*buf, need);
        if (!nb)
            return ks_error_set(err, KS_ENOMEM, "JPEG: out of memory for a %dx%d image", sw, sh);
        *buf = nb;
        *cap = need;
    }
    uint8_t *img = *buf;
    const size_t stride = (size_t)sw * 4;
    const int bs = 8 / scale; /* output pixels per block side */
    /* an MCU row's samples per component: rw[i] wide, cs[i].v * bs rows */
    size_t rw[3], off[3], nf = 0;
    for (int i = 0; i < nc; i++) {
        rw[i] = (size_t)mcux * (size_t)cs[i].h * (size_t)bs;
        off[i] = nf;
        nf += rw[i] * (size_t)(cs[i].v * bs);
    }
    if (!ks_grow((void **)&j->rows, &j->rowcap, nf, sizeof *j->rows))
        return ks_error_set(err, KS_ENOMEM, "JPEG: out of memory for a %dx%d image", sw, sh);
    bitrd b = {.p = j->data};
    v16f acc;
    long mcu = 0, total = (long)mcux * mcuy;
    for (int my = 0; my < mcuy; my++) {
        for (int mx = 0; mx < mcux; mx++, mcu++) {
            if (mcu && mcu % per == 0) {
                size_t i = (size_t)(mcu / per);
                if (!at_interval_end(j, &b, i - 1))
                    FAIL("restart interval %zu does not end where its marker is", i - 1);
                b = (bitrd){.p = j->data + j->seg[i - 1]};
                for (int k = 0; k < nc; k++)
                    cs[k].pred = 0;
            }
            if (b.p > j->data + j->seg[j->nseg - 1] + OVERRUN)
                FAIL("corrupt data: blocks run past the end of the scan");
            for (int i = 0; i < nc; i++) {
                comp *c = &cs[i];
                for (int by = 0; by < c->v; by++)
                    for (int bx = 0; bx < c->h; bx++) {
                        if (!decode_block(&b, c, &j->dc[c->td], &j->ac[c->ta], &acc))
                            FAIL("corrupt data: a code no Huffman table has (MCU %ld of %ld)", mcu, total);
                        float *o = j->rows + off[i] + (size_t)(by * bs) * rw[i] + (size_t)((mx * c->h + bx) * bs);
                        float px[16];
                        memcpy(px, &acc, sizeof px);
                        if (bs == 4) /* the block's rows of output pixels, at their places in the MCU row */
                            for (int qy = 0; qy < 4; qy++)
                                memcpy(o + (size_t)qy * rw[i], px + 4 * qy, 4 * sizeof *px);
                        else if (bs == 2)
                            memcpy(o, px, 2 * sizeof *px), memcpy(o + rw[i], px + 2, 2 * sizeof *px);
                        else
                            o[0] = px[0];
                    }
            }
        }
        for (int oy = 0; oy < oh && my * oh + oy < sh; oy++) {
            const float *src[3];
            for (int i = 0; i < nc; i++)
                src[i] = j->rows + off[i] + (size_t)(oy * cs[i].v / vmax) * rw[i];
            uint32_t *o = (uint32_t *)(void *)(img + (size_t)(my * oh + oy) * stride);
            if (nc == 1)
                grey_row(src[0], sw, o);
            else
                color_row(src[0], src[1], src[2], sw, cs[1].h < hmax, o);
        }
    }
    if (!at_interval_end(j, &b, j->nseg - 1))
        FAIL("the data ends %s the last block (a truncated or corrupt frame)",
             (size_t)(b.p - j->data) * 8 - (size_t)b.n > j->seg[j->nseg - 1] * 8 ? "before" : "well after");
    *out = (ks_color_image){sw, sh, stride, img, scale};
    return KS_OK;
}
