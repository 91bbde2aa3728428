/* Matroska reader decoding (issue 19: the reader's cost per frame): image buffers come from a pool
 * and are reused once released (the stats count allocations), tracks left out of
 * ks_mkv_reader_set_decode are not decoded (items carry raw bytes only, captures header-only
 * images that still pair by time), and the fast byte swap gives the same pixels as the pair-by-pair
 * one -- on the k4arecorder fixture and on our own recordings. */
#include "mkv_test_util.h"

#include <fcntl.h>

#include "util/image_pool.h"

/* The plain definition of what ks_mkv_swap16 computes (dst and src apart). */
static void naive_swap16(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        dst[i] = src[i + 1];
        dst[i + 1] = src[i];
    }
    if (n & 1)
        dst[n - 1] = src[n - 1];
}

static void test_swap16(void)
{
    uint8_t src[80], a[80], b[80];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)rnd();
    int bad = 0;
    for (size_t off = 0; off < 8; off++)      /* unaligned source and destination */
        for (size_t n = 0; n + off <= 72; n++) {
            memset(a, 0xAA, sizeof a);
            memset(b, 0xAA, sizeof b);
            ks_mkv_swap16(a + (7 - off), src + off, n);
            naive_swap16(b + (7 - off), src + off, n);
            if (memcmp(a, b, sizeof a))
                bad++;
            memcpy(a, src, sizeof a); /* in place (dst == src), as the reader swaps a frame read into its image */
            ks_mkv_swap16(a + off, a + off, n);
            memcpy(b, src, sizeof b);
            naive_swap16(b + off, src + off, n);
            if (memcmp(a, b, sizeof a))
                bad++;
        }
    KS_CHECK_INT(bad, 0);
}

/* The stored bytes of the SimpleBlock at file offset off, by the test's own parse (ID A3, size,
 * track number, 2-byte time, flags, no lacing). */
static uint8_t *stored_frame(int fd, uint64_t off, size_t *n)
{
    uint8_t h[32];
    *n = 0;
    if (pread(fd, h, sizeof h, (off_t)off) != (ssize_t)sizeof h || h[0] != 0xA3)
        return NULL;
    uint64_t size, track;
    int sl = ebml_read_size(h + 1, sizeof h - 1, &size);
    if (sl <= 0)
        return NULL;
    int tl = ebml_read_size(h + 1 + sl, sizeof h - 1 - (size_t)sl, &track);
    if (tl <= 0 || size < (uint64_t)tl + 3 || (h[1 + sl + tl + 2] & 6))
        return NULL;
    *n = (size_t)size - (size_t)tl - 3;
    uint8_t *p = malloc(*n ? *n : 1);
    if (pread(fd, p, *n, (off_t)(off + 1 + (uint64_t)sl + (uint64_t)tl + 3)) != (ssize_t)*n) {
        free(p);
        return NULL;
    }
    return p;
}

/* Every COLOR/DEPTH/IR frame of a file: decoded equals the stored bytes (colour) or the stored
 * bytes swapped pair by pair (depth, IR); a reader told to decode nothing gives the same items
 * without images or bytes. */
static void check_content(const char *path, int expect_frames)
{
    int fd = open(path, O_RDONLY);
    KS_CHECK(fd >= 0);
    ks_mkv_reader *full = NULL, *raw = NULL;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(path, &full, &e), KS_OK);
    KS_CHECK_INT(ks_mkv_reader_open(path, &raw, &e), KS_OK);
    if (!full || !raw)
        return;
    ks_mkv_reader_set_decode(raw, 0);
    int frames = 0, bad = 0, odd = 0;
    uint8_t *want = NULL;
    ks_mkv_item a, b;
    for (;;) {
        ks_status sa = ks_mkv_reader_next(full, &a, &e), sb = ks_mkv_reader_next(raw, &b, &e);
        KS_CHECK_INT(sa, sb);
        if (sa != KS_OK || sb != KS_OK) {
            if (sa == KS_OK)
                ks_image_release(a.image);
            break;
        }
        if (a.kind != b.kind || a.device_ts_us != b.device_ts_us) {
            bad++;
        } else if (a.kind <= KS_MKV_IR) {
            frames++;
            size_t n = 0;
            uint8_t *stored = stored_frame(fd, a.file_offset, &n);
            if (!a.image || b.image || b.raw || !stored || a.image->size != n || b.raw_size != n) {
                odd++;
            } else {
                want = realloc(want, n ? n : 1);
                if (a.kind == KS_MKV_COLOR)
                    memcpy(want, stored, n);
                else
                    naive_swap16(want, stored, n);
                if (memcmp(want, a.image->data, n) || a.image->device_ts_us != a.device_ts_us)
                    bad++;
            }
            free(stored);
        }
        ks_image_release(a.image);
    }
    KS_CHECK_INT(frames, expect_frames);
    KS_CHECK_INT(odd, 0);
    KS_CHECK_INT(bad, 0);
    free(want);
    ks_mkv_reader_stats st;
    ks_mkv_reader_get_stats(raw, &st);
    KS_CHECK_INT(st.decoded[KS_MKV_DEPTH] + st.decoded[KS_MKV_IR] + st.decoded[KS_MKV_COLOR], 0);
    ks_mkv_reader_close(full);
    ks_mkv_reader_close(raw);
    if (fd >= 0)
        close(fd);
}

static void test_fixture_content(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/k4a/real-recording-nfov-720p.mkv", KS_FIXTURES);
    check_content(p, 3);
    /* and against an independent reading: FNV-1a of each frame as mkvextract extracts it (from the
     * AVI it writes), depth and IR swapped to little-endian in Python */
    ks_mkv_reader *r = NULL;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    if (!r)
        return;
    ks_mkv_item it;
    uint32_t sums[3] = {0};
    while (ks_mkv_reader_next(r, &it, &e) == KS_OK) {
        if (it.image && it.kind <= KS_MKV_IR)
            sums[it.kind] = checksum(it.image->data, it.image->size);
        ks_image_release(it.image);
    }
    KS_CHECK_INT(sums[KS_MKV_COLOR], 0x1eede15du);
    KS_CHECK_INT(sums[KS_MKV_DEPTH], 0xdcf173eeu);
    KS_CHECK_INT(sums[KS_MKV_IR], 0x95fafcd1u);
    ks_mkv_reader_close(r);
}

static void test_own_content(void)
{
    int n = 0;
    rec *truth = write_file(path_in("dec.mkv"), KS_DEPTH_NFOV_UNBINNED, 12, 5000000, &n, -1);
    free(truth);
    check_content(path_in("dec.mkv"), 36);
}

/* Buffers are reused: reading 3 x 35 frames one at a time allocates one buffer per size (colour,
 * depth = IR), not one per frame; frames held alive need buffers of their own; images outlive their
 * reader. */
static void test_pool_reuse(void)
{
    int n = 0;
    rec *truth = write_file(path_in("pool.mkv"), KS_DEPTH_NFOV_UNBINNED, 35, 5000000, &n, -1);
    int nt = n;
    ks_mkv_reader *r = NULL;
    ks_status end;
    rec *got = read_all(path_in("pool.mkv"), &n, &end, &r);
    KS_CHECK_INT(end, KS_EEOF);
    KS_CHECK_INT(n, nt);
    int same = 0;
    for (int i = 0; i < n && i < nt; i++)
        same += same_rec(&truth[i], &got[i]);
    KS_CHECK_INT(same, nt); /* every byte as written, with buffers reused */
    free(got);
    free(truth);
    if (!r)
        return;
    ks_mkv_reader_stats st;
    ks_mkv_reader_get_stats(r, &st);
    KS_CHECK_INT(st.decoded[KS_MKV_COLOR], 35);
    KS_CHECK_INT(st.decoded[KS_MKV_DEPTH], 35);
    KS_CHECK_INT(st.decoded[KS_MKV_IR], 35);
    KS_CHECK_MSG(st.buffers_allocated <= 2, "%llu buffers allocated for 105 frames read one at a time",
                 (unsigned long long)st.buffers_allocated);
    KS_CHECK_INT(st.buffers_allocated + st.buffers_reused, 105);
    ks_mkv_reader_close(r);

    /* 12 frames held at once: 12 buffers; released, the next 12 reuse them */
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(path_in("pool.mkv"), &r, &e), KS_OK);
    if (!r)
        return;
    ks_mkv_reader_set_decode(r, 1u << KS_MKV_DEPTH);
    ks_image *held[12];
    int h = 0;
    ks_mkv_item it;
    while (h < 12 && ks_mkv_reader_next(r, &it, &e) == KS_OK)
        if (it.image)
            held[h++] = it.image;
    KS_CHECK_INT(h, 12);
    ks_mkv_reader_get_stats(r, &st);
    KS_CHECK_INT(st.buffers_allocated, 12);
    for (int i = 0; i < h; i++)
        ks_image_release(held[i]);
    h = 0;
    while (h < 8 && ks_mkv_reader_next(r, &it, &e) == KS_OK)
        if (it.image)
            held[h++] = it.image;
    ks_mkv_reader_get_stats(r, &st);
    KS_CHECK_INT(st.buffers_allocated, 12);
    KS_CHECK_INT(st.buffers_reused, 8);
    /* images outlive the reader (ASan: no use after free, no leak) */
    ks_mkv_reader_close(r);
    int ok = 0;
    for (int i = 0; i < h; i++) {
        ok += held[i]->size == 640 * 576 * 2 && held[i]->format == KS_FORMAT_DEPTH16;
        ks_image_release(held[i]);
    }
    KS_CHECK_INT(ok, 8);
}

/* A pool on its own: sizes in 64 KiB steps reuse each other's buffers, a much larger buffer is not
 * taken for a small frame, the free list is bounded. */
static void test_pool_rules(void)
{
    ks_image_pool *p = ks_image_pool_create(2, 0);
    ks_image *a = ks_image_pool_get(p, KS_FORMAT_MJPG, 1280, 720, 0, 200000);
    ks_image *b = ks_image_pool_get(p, KS_FORMAT_MJPG, 1280, 720, 0, 4000000);
    ks_image *c = ks_image_pool_get(p, KS_FORMAT_MJPG, 1280, 720, 0, 100);
    KS_CHECK(a && b && c);
    if (!a || !b || !c)
        return;
    memset(a->data, 1, a->size);
    memset(b->data, 2, b->size);
    ks_image_release(a);
    ks_image_release(b);
    ks_image_release(c); /* the list holds 2: c's buffer is freed */
    ks_image_pool_stats st;
    ks_image_pool_get_stats(p, &st);
    KS_CHECK_INT(st.allocated, 3);
    KS_CHECK_INT(st.free_buffers, 2);
    KS_CHECK_INT(st.freed, 1);
    KS_CHECK_INT(st.outstanding, 0);
    ks_image *d = ks_image_pool_get(p, KS_FORMAT_MJPG, 1280, 720, 0, 210000); /* a's buffer (256 KiB) */
    ks_image *f = ks_image_pool_get(p, KS_FORMAT_MJPG, 1280, 720, 0, 50000);  /* not b's 4 MB */
    ks_image_pool_get_stats(p, &st);
    KS_CHECK_INT(st.reused, 1);
    KS_CHECK_INT(st.allocated, 4);
    KS_CHECK_INT(st.outstanding, 2);
    ks_image_pool_release(p); /* the images keep it alive */
    if (d)
        memset(d->data, 3, d->size);
    ks_image_release(d);
    ks_image_release(f);
}

/* Tracks left out are not decoded: items carry their raw bytes only, the stats count them as
 * skipped, depth is unchanged; next_capture gives header-only colour and IR at the same times. */
static void test_decode_mask(void)
{
    int n = 0;
    rec *truth = write_file(path_in("mask.mkv"), KS_DEPTH_NFOV_UNBINNED, 20, 5000000, &n, -1);
    ks_mkv_reader *r = NULL, *all = NULL;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(path_in("mask.mkv"), &r, &e), KS_OK);
    KS_CHECK_INT(ks_mkv_reader_open(path_in("mask.mkv"), &all, &e), KS_OK);
    if (!r || !all) {
        free(truth);
        return;
    }
    ks_mkv_reader_set_decode(r, 1u << KS_MKV_DEPTH);
    ks_mkv_item it;
    int depth_ok = 0, raw_only = 0, bad = 0;
    while (ks_mkv_reader_next(r, &it, &e) == KS_OK) {
        if (it.kind == KS_MKV_DEPTH && it.image) {
            for (int i = 0; i < n; i++)
                if (truth[i].kind == KS_MKV_DEPTH && truth[i].ts == it.device_ts_us)
                    depth_ok += truth[i].sum == checksum(it.image->data, it.image->size);
        } else if (it.kind == KS_MKV_COLOR || it.kind == KS_MKV_IR) {
            if (!it.image && !it.raw && it.raw_size == (it.kind == KS_MKV_IR ? 640u * 576 * 2 : jpeg_size))
                raw_only++;
            else
                bad++;
        }
        ks_image_release(it.image);
    }
    KS_CHECK_INT(depth_ok, 20);
    KS_CHECK_INT(raw_only, 40);
    KS_CHECK_INT(bad, 0);
    ks_mkv_reader_stats st;
    ks_mkv_reader_get_stats(r, &st);
    KS_CHECK_INT(st.decoded[KS_MKV_DEPTH], 20);
    KS_CHECK_INT(st.decoded[KS_MKV_COLOR], 0);
    KS_CHECK_INT(st.decoded[KS_MKV_IR], 0);
    KS_CHECK_INT(st.skipped[KS_MKV_COLOR], 20);
    KS_CHECK_INT(st.skipped[KS_MKV_IR], 20);
    KS_CHECK(st.buffers_allocated <= 1);
    /* colour and IR not even read: the depth frames and the clusters' small parts (headers, IMU in
     * 4 KiB windows), well under one IR frame over the depth */
    uint64_t depth_bytes = 20ull * 640 * 576 * 2;
    KS_CHECK_MSG(st.bytes_read >= depth_bytes && st.bytes_read < depth_bytes + 640 * 576 * 2,
                 "%llu bytes read for %llu bytes of depth", (unsigned long long)st.bytes_read,
                 (unsigned long long)depth_bytes);

    /* captures: the same grouping, colour and IR header-only */
    KS_CHECK_INT(ks_mkv_reader_seek(r, 0, &e), KS_OK);
    int caps = 0, same = 0;
    ks_capture *c, *ca;
    while (ks_mkv_reader_next_capture(r, &c, &e) == KS_OK) {
        caps++;
        if (ks_mkv_reader_next_capture(all, &ca, &e) != KS_OK) {
            ks_capture_release(c);
            break;
        }
        if (c->color && c->ir && c->depth && ca->color && ca->ir && ca->depth && ks_image_is_header_only(c->color) &&
            ks_image_is_header_only(c->ir) && !ks_image_is_header_only(c->depth) &&
            c->color->device_ts_us == ca->color->device_ts_us && c->ir->device_ts_us == ca->ir->device_ts_us &&
            c->color->format == KS_FORMAT_MJPG && c->ir->width == 640 && c->ir->height == 576 &&
            c->depth->size == ca->depth->size && !memcmp(c->depth->data, ca->depth->data, c->depth->size))
            same++;
        ks_capture_release(c);
        ks_capture_release(ca);
    }
    KS_CHECK_INT(caps, 20);
    KS_CHECK_INT(same, 20);
    /* decoding everything again from here on */
    ks_mkv_reader_set_decode(r, KS_MKV_DECODE_ALL);
    KS_CHECK_INT(ks_mkv_reader_seek(r, 0, &e), KS_OK);
    KS_CHECK_INT(ks_mkv_reader_next_capture(r, &c, &e), KS_OK);
    if (c) {
        KS_CHECK(c->color && c->color->size == jpeg_size && !ks_image_is_header_only(c->color));
        ks_capture_release(c);
    }
    ks_mkv_reader_close(r);
    ks_mkv_reader_close(all);
    free(truth);
}

int main(void)
{
    if (!mkv_test_setup("test_mkv_decode"))
        return 1;
    KS_RUN(test_swap16);
    KS_RUN(test_fixture_content);
    KS_RUN(test_own_content);
    KS_RUN(test_pool_rules);
    KS_RUN(test_pool_reuse);
    KS_RUN(test_decode_mask);
    mkv_test_teardown();
    return KS_TEST_END();
}
