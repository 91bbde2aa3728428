/* Matroska layer under damage: a file cut at many byte positions reads exactly its complete
 * blocks (those of a partly written last cluster too) and repairs; a writer process that dies before close leaves a readable, repairable
 * .part; the SDK-playback check names a refused file; corrupt input never crashes; writer
 * argument errors name the problem. */
#include "mkv_test_util.h"

/* A file cut at many byte positions reads every complete block, also those of the cluster it ends
 * in; repair makes it whole with the same blocks. */
/* The whole file p (malloc'd, *size bytes); NULL (a failed check) when it cannot be read. */
static uint8_t *slurp(const char *p, long *size)
{
    FILE *f = fopen(p, "rb");
    KS_CHECK_MSG(f != NULL, "cannot open %s", p);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)*size);
    KS_CHECK_INT(fread(all, 1, (size_t)*size, f), *size);
    fclose(f);
    return all;
}

static void test_truncation(void)
{
    const char *p = path_in("small.mkv");
    int n = 0;
    rec *truth = write_file(p, KS_DEPTH_NFOV_2X2BINNED, 12, 900000, &n, -1);
    long size;
    uint8_t *all = slurp(p, &size);
    if (!all) {
        free(truth);
        return;
    }
    FILE *f;
    /* the cluster boundaries, and the items wholly before each */
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    uint64_t first = r->info.first_cluster_offset;
    uint64_t ends[64];
    uint64_t item_end[4096]; /* where each block ends: a cut at or after it keeps the block */
    int nc = 0, items = 0;
    ks_mkv_cluster_loc loc;
    uint64_t off = first;
    while (nc < 64 && ks_mkv_locate_cluster(r, off, &loc, &e) == KS_OK && ks_mkv_load_cluster(r, &loc, &e) == KS_OK) {
        for (size_t i = 0; i < r->nframes && items < 4096; i++)
            item_end[items++] = loc.pos + (uint64_t)loc.hlen + r->frames[i].off + r->frames[i].size;
        ends[nc++] = loc.end;
        off = loc.end;
    }
    ks_mkv_reader_close(r);
    KS_CHECK_INT(items, n);
    /* cut positions: every 37 KB, and around every cluster start and end */
    long cuts[512];
    int ncut = 0;
    for (long c = 1; c < size && ncut < 300; c += 53 * 1024 + 11)
        cuts[ncut++] = c;
    for (int i = 0; i < nc && ncut < 500; i++) {
        cuts[ncut++] = (long)ends[i] - 1;
        cuts[ncut++] = (long)ends[i];
        cuts[ncut++] = (long)ends[i] + 1;
    }
    cuts[ncut++] = (long)first - 1;
    cuts[ncut++] = (long)first + 5;
    int wrong = 0, repaired_bad = 0, header_fail = 0;
    const char *q = path_in("cut.mkv");
    const char *o = path_in("cut-fixed.mkv");
    for (int k = 0; k < ncut; k++) {
        long c = cuts[k];
        if (c <= 0 || c > size)
            continue;
        f = fopen(q, "wb");
        fwrite(all, 1, (size_t)c, f);
        fclose(f);
        /* every complete block is kept, also those of a partly written last cluster (the SDK
         * reads them; before issue 20 only whole clusters were) */
        int expect = 0;
        for (int i = 0; i < items; i++)
            if ((long)item_end[i] <= c)
                expect++;
        int m = 0;
        ks_status end;
        rec *got = read_all(q, &m, &end, NULL);
        if ((uint64_t)c < first) {
            /* cut inside the header: a clean error or an empty recording, never a crash */
            if (end != KS_EPARSE && !(end == KS_EEOF && m == 0))
                header_fail++;
            free(got);
            continue;
        }
        if (end != KS_EEOF || m != expect) {
            wrong++;
            fprintf(stderr, "cut at %ld: %s, %d items, expected %d\n", c, ks_status_name(end), m, expect);
        } else {
            /* the items read are exactly the first ones written */
            for (int i = 0; i < m; i++)
                if (!same_rec(&got[i], &truth[i])) {
                    wrong++;
                    break;
                }
        }
        free(got);
        if (k % 4 == 0 || c == size) {
            ks_mkv_repair_report rep;
            if (expect == 0) { /* nothing to save: repair fails, writes nothing */
                if (ks_mkv_repair(q, o, &rep, &e) != KS_EPARSE)
                    repaired_bad++;
                continue;
            }
            if (ks_mkv_repair(q, o, &rep, &e) != KS_OK) {
                repaired_bad++;
                fprintf(stderr, "repair at cut %ld: %s\n", c, e.message);
                continue;
            }
            ks_mkv_reader *rr;
            if (ks_mkv_reader_open(o, &rr, &e) == KS_OK) {
                if (!rr->info.segment_size_known || rr->info.truncated || (expect > 0 && rr->ncues == 0)) {
                    repaired_bad++;
                    fprintf(stderr, "repair at cut %ld: size known %d, truncated %d, %zu cues, %d items\n", c,
                            rr->info.segment_size_known, rr->info.truncated, rr->ncues, expect);
                }
                ks_mkv_reader_close(rr);
            } else {
                repaired_bad++;
            }
            got = read_all(o, &m, &end, NULL);
            if (end != KS_EEOF || m != expect) {
                repaired_bad++;
                fprintf(stderr, "repair at cut %ld: %s, %d items, expected %d\n", c, ks_status_name(end), m, expect);
            }
            free(got);
        }
    }
    /* a header without any cluster (a .part killed before its first cluster): repair fails (exit 1
     * in the CLI) and writes nothing -- before issue 20 it wrote a file the SDK refuses */
    f = fopen(q, "wb");
    fwrite(all, 1, (size_t)first, f);
    fclose(f);
    unlink(o);
    ks_mkv_repair_report rep0;
    KS_CHECK_INT(ks_mkv_repair(q, o, &rep0, &e), KS_EPARSE);
    KS_CHECK_MSG(strstr(e.message, "no complete frame") != NULL, "message: %s", e.message);
    KS_CHECK_MSG(access(o, F_OK) != 0, "repair of a file without clusters wrote %s", o);
    KS_CHECK_INT(wrong, 0);
    KS_CHECK_INT(repaired_bad, 0);
    KS_CHECK_INT(header_fail, 0);
    KS_CHECK(ncut > 40);
    free(all);
    free(truth);
}

/* The writing process dies (like kill -9) before close: FILE.part is readable and repairable. */
static void test_killed_writer(void)
{
    const char *p = path_in("killed.mkv");
    pid_t pid = fork();
    if (pid == 0) {
        int n;
        write_file(p, KS_DEPTH_NFOV_2X2BINNED, 30, 2000000, &n, 20);
        _exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    KS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *part = path_in("killed.mkv.part");
    KS_CHECK(access(part, F_OK) == 0);
    KS_CHECK(access(p, F_OK) != 0);
    int m = 0;
    ks_status end;
    ks_mkv_reader *r = NULL;
    rec *got = read_all(part, &m, &end, &r);
    KS_CHECK_INT(end, KS_EEOF);
    KS_CHECK(m > 0);
    if (r) {
        KS_CHECK(!r->info.segment_size_known);
        /* the SDK's playback opens a file its writer never finished (checked with the SDK itself:
         * its SeekHead names no Cues yet) */
        ks_error pe = {0};
        KS_CHECK_INT(ks_mkv_check_playback(r, &pe), KS_OK);
        KS_CHECK(r->info.has_start_offset); /* written with the first cluster */
        KS_CHECK(r->info.start_offset_us >= 2000000 - 30000 && r->info.start_offset_us < 2000000 - 30000 + 5);
        ks_mkv_reader_close(r);
    }
    /* what was written is a prefix of 20 frames' worth of data, in order */
    for (int i = 1; i < m; i++)
        KS_CHECK(got[i].ts >= got[i - 1].ts);
    free(got);
    ks_mkv_repair_report rep;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_repair(part, p, &rep, &e), KS_OK);
    int m2 = 0;
    got = read_all(p, &m2, &end, &r);
    KS_CHECK_INT(m2, m);
    if (r) {
        KS_CHECK(r->info.segment_size_known);
        KS_CHECK(r->ncues >= 1);
        ks_mkv_reader_close(r);
    }
    free(got);
    unlink(part);
}

/* A file the SDK would refuse is named as such (here: K4A_DEPTH_MODE renamed). */
static void test_playback_check(void)
{
    const char *p = path_in("small.mkv");
    long size;
    uint8_t *all = slurp(p, &size);
    if (!all)
        return;
    FILE *f;
    int renamed = 0;
    for (long i = 0; i + 14 <= size && i < 65536; i++)
        if (!memcmp(all + i, "K4A_DEPTH_MODE", 14)) {
            all[i + 13] = 'X';
            renamed++;
        }
    KS_CHECK_INT(renamed, 1);
    const char *q = path_in("nodepthmode.mkv");
    f = fopen(q, "wb");
    fwrite(all, 1, (size_t)size, f);
    fclose(f);
    free(all);
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(q, &r, &e), KS_OK);
    if (r) {
        KS_CHECK_INT(ks_mkv_check_playback(r, &e), KS_EPARSE);
        KS_CHECK_CONTAINS(e.message, "K4A_DEPTH_MODE tag is missing");
        ks_mkv_reader_close(r);
    }
}

/* A finished file cut off later (an interrupted copy): its SeekHead names Cues past the end. The
 * SDK's playback refuses it (seen with the SDK: "Element not found at offset ... KaxCues"), so the
 * check must say so and name the fix; the repaired file passes. */
static void test_cut_after_finish(void)
{
    const char *p = path_in("small.mkv");
    long size;
    uint8_t *all = slurp(p, &size);
    if (!all)
        return;
    FILE *f;
    const char *q = path_in("copied-half.mkv"), *o = path_in("copied-half-fixed.mkv");
    f = fopen(q, "wb");
    fwrite(all, 1, (size_t)size / 2, f);
    fclose(f);
    free(all);
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(q, &r, &e), KS_OK);
    if (r) {
        KS_CHECK_INT(ks_mkv_check_playback(r, &e), KS_EPARSE);
        KS_CHECK_CONTAINS(e.message, "SeekHead points at the Cues");
        KS_CHECK_CONTAINS(e.message, "kinsync repair");
        ks_mkv_reader_close(r);
    }
    ks_mkv_repair_report rep;
    KS_CHECK_INT(ks_mkv_repair(q, o, &rep, &e), KS_OK);
    KS_CHECK_INT(ks_mkv_reader_open(o, &r, &e), KS_OK);
    if (r) {
        KS_CHECK_INT(ks_mkv_check_playback(r, &e), KS_OK);
        ks_mkv_reader_close(r);
    }
    unlink(q);
    unlink(o);
}

static void test_corrupt(void)
{
    const char *p = path_in("small.mkv");
    FILE *f = fopen(p, "rb");
    uint8_t head[8192];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    ks_error e = {0};
    ks_mkv_reader *r;
    const char *q = path_in("bad.mkv");
    /* empty file */
    f = fopen(q, "wb");
    fclose(f);
    KS_CHECK_INT(ks_mkv_reader_open(q, &r, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "at byte 0");
    /* Tracks size made huge: named with its byte offset */
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    uint64_t tracks = r->pos_tracks;
    ks_mkv_reader_close(r);
    uint8_t bad[8192];
    memcpy(bad, head, n);
    bad[tracks + 4] = 0x08; /* 4-byte size 0x08xxxxxx... */
    bad[tracks + 5] = 0xFF;
    f = fopen(q, "wb");
    fwrite(bad, 1, n, f);
    fclose(f);
    KS_CHECK_INT(ks_mkv_reader_open(q, &r, &e), KS_EPARSE);
    char want[64];
    snprintf(want, sizeof want, "at byte %llu", (unsigned long long)tracks);
    KS_CHECK_CONTAINS(e.message, want);
    KS_CHECK_CONTAINS(e.message, q);
    /* random byte flips in the header and first clusters: never a crash, hang or leak */
    int ok = 0, parse = 0;
    for (int k = 0; k < 300; k++) {
        memcpy(bad, head, n);
        for (int j = 0; j < 4; j++)
            bad[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
        f = fopen(q, "wb");
        fwrite(bad, 1, n, f);
        fclose(f);
        ks_status st = ks_mkv_reader_open(q, &r, &e);
        if (st == KS_OK) {
            ok++;
            ks_mkv_item it;
            for (int j = 0; j < 100 && ks_mkv_reader_next(r, &it, &e) == KS_OK; j++)
                ks_image_release(it.image);
            ks_mkv_reader_close(r);
        } else if (st == KS_EPARSE) {
            parse++;
        }
    }
    KS_CHECK_INT(ok + parse, 300);
}

static void test_writer_errors(void)
{
    ks_mkv_desc d;
    desc_for(&d, KS_DEPTH_OFF);
    ks_error e = {0};
    ks_mkv_writer *w;
    KS_CHECK_INT(ks_mkv_writer_open("/nonexistent-dir/x.mkv", &d, NULL, &w, &e), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(e.message, "/nonexistent-dir/x.mkv.part");
    ks_mkv_desc bad = d;
    bad.color_resolution = KS_COLOR_1080P;
    bad.color_format = KS_FORMAT_NV12;
    KS_CHECK_INT(ks_mkv_writer_open(path_in("e.mkv"), &bad, NULL, &w, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "NV12");
    bad = d;
    bad.depth_mode = KS_DEPTH_WFOV_UNBINNED;
    KS_CHECK_INT(ks_mkv_writer_open(path_in("e.mkv"), &bad, NULL, &w, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "WFOV_UNBINNED");
    KS_CHECK_INT(ks_mkv_writer_open(path_in("e.mkv"), &d, NULL, &w, &e), KS_OK);
    ks_image *img = ks_image_create(KS_FORMAT_DEPTH16, 640, 576, 1280, 0);
    KS_CHECK_INT(ks_mkv_writer_add_image(w, KS_MKV_DEPTH, img, &e), KS_EINVAL);
    KS_CHECK_CONTAINS(e.message, "no DEPTH track");
    ks_image_release(img);
    ks_image *c = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, jpeg_size);
    memcpy(c->data, jpeg, jpeg_size);
    c->device_ts_us = 10000000;
    KS_CHECK_INT(ks_mkv_writer_add_image(w, KS_MKV_COLOR, c, &e), KS_OK);
    c->device_ts_us = 12000000; /* pushes the first cluster out */
    KS_CHECK_INT(ks_mkv_writer_add_image(w, KS_MKV_COLOR, c, &e), KS_OK);
    c->device_ts_us = 9000000;  /* older than written data */
    KS_CHECK_INT(ks_mkv_writer_add_image(w, KS_MKV_COLOR, c, &e), KS_ESTATE);
    KS_CHECK_CONTAINS(e.message, "reorder_window_us");
    ks_image_release(c);
    ks_mkv_writer_abort(w);
    KS_CHECK(access(path_in("e.mkv.part"), F_OK) != 0);
    KS_CHECK(access(path_in("e.mkv"), F_OK) != 0);
}


int main(void)
{
    if (!mkv_test_setup("test_mkv_truncate"))
        return 1;
    KS_RUN(test_truncation);
    KS_RUN(test_killed_writer);
    KS_RUN(test_playback_check);
    KS_RUN(test_cut_after_finish);
    KS_RUN(test_corrupt);
    KS_RUN(test_writer_errors);
    mkv_test_teardown();
    return KS_TEST_END();
}
