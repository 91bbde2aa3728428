/* Matroska layer: round trip, layout rules (clusters <= 32 ms, cues <= 1/s, start offset), seeking
 * with and without Cues, mkvinfo/ffprobe acceptance, truncation at many byte positions + repair,
 * a writer killed before close, corrupt input, writer argument errors, and the real k4arecorder
 * fixture with values verified with mkvinfo/ffprobe (see test_mkv_fixture.sh for the tool-driven
 * comparison). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "kinsync/mkv.h"
#include "ks_test.h"
#include "mkv/mkv_internal.h"
#include "mkv/mkv_reader_internal.h"

static char dir[256];

static uint64_t rng = 12345;
static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

static uint8_t *jpeg;
static unsigned long jpeg_size;

static void make_jpeg(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)((x ^ y) & 0xFF);
        }
    tjhandle tj = tjInitCompress();
    tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, &jpeg_size, TJSAMP_422, 85, 0);
    tjDestroy(tj);
    free(rgb);
}

typedef struct rec {
    int kind;
    uint64_t ts;
    size_t size;
    uint32_t sum;     /* checksum of the (host-order) bytes */
    ks_imu_sample imu;
} rec;

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->kind - y->kind;
}

static void desc_for(ks_mkv_desc *d, ks_depth_mode dm)
{
    ks_mkv_desc_init(d);
    d->color_resolution = KS_COLOR_720P;
    d->color_format = KS_FORMAT_MJPG;
    d->depth_mode = dm;
    d->fps = KS_FPS_30;
    d->imu = true;
    d->sync_mode = KS_SYNC_SUBORDINATE;
    d->subordinate_delay_us = 160;
    d->depth_delay_us = -80;
    snprintf(d->serial, sizeof d->serial, "000111222333");
    d->has_firmware = true;
    d->color_fw = (ks_version){1, 6, 110};
    d->depth_fw = (ks_version){1, 6, 79};
    static const char cal[] = "{\"CalibrationInformation\":{\"Cameras\":[]}}";
    d->calibration_json = cal;
    d->calibration_len = sizeof cal - 1;
    snprintf(d->rig_name, sizeof d->rig_name, "lab-rig");
    snprintf(d->role, sizeof d->role, "sub1");
    snprintf(d->plan_digest, sizeof d->plan_digest, "sha256:abcdef");
}

/* Writes nframes captures (+ 7 IMU samples per frame, some arriving early) and returns the truth,
 * sorted by time. If die_after >= 0 the process _exit()s after that many frames without closing. */
static rec *write_file(const char *path, ks_depth_mode dm, int nframes, uint64_t t0, int *nrec, int die_after)
{
    ks_mkv_desc d;
    desc_for(&d, dm);
    const ks_depth_mode_info *di = ks_depth_mode_get(dm);
    ks_mkv_writer_options o = {.uid_seed = 42, .date_utc_s = 1700000000};
    ks_mkv_writer *w = NULL;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_writer_open(path, &d, &o, &w, &e), KS_OK);
    if (!w)
        return NULL;
    rec *truth = calloc((size_t)nframes * 10, sizeof *truth);
    int n = 0;
    int period = ks_frame_period_us(KS_FPS_30);
    for (int i = 0; i < nframes; i++) {
        if (i == die_after)
            _exit(0);
        uint64_t t = t0 + (uint64_t)i * (uint64_t)period;
        /* IMU: samples from this frame's interval, pushed before the capture (as a real IMU thread does) */
        for (int k = 0; k < 7; k++) {
            ks_imu_sample s = {0};
            s.acc_ts_us = t - 30000 + (uint64_t)k * 4167 + (rnd() % 5);
            s.gyro_ts_us = s.acc_ts_us + 3;
            for (int a = 0; a < 3; a++) {
                s.acc[a] = (float)(rnd() % 2000) / 100.0f - 10.0f;
                s.gyro[a] = (float)(rnd() % 2000) / 1000.0f - 1.0f;
            }
            KS_CHECK_INT(ks_mkv_writer_add_imu(w, &s, &e), KS_OK);
            truth[n++] = (rec){KS_MKV_IMU, s.acc_ts_us, KS_MKV_IMU_SAMPLE_SIZE, 0, s};
        }
        ks_capture *c = ks_capture_create();
        c->color = ks_image_create(KS_FORMAT_MJPG, 1280, 720, 0, jpeg_size);
        memcpy(c->color->data, jpeg, jpeg_size);
        c->color->data[jpeg_size / 2] = (uint8_t)i; /* make every frame different */
        c->color->device_ts_us = t;
        c->depth = ks_image_create(KS_FORMAT_DEPTH16, di->width, di->height, di->width * 2, 0);
        c->ir = ks_image_create(KS_FORMAT_IR16, di->width, di->height, di->width * 2, 0);
        uint16_t *dp = (uint16_t *)c->depth->data, *ip = (uint16_t *)c->ir->data;
        for (int p = 0; p < di->width * di->height; p++) {
            dp[p] = (uint16_t)(500 + (p * 7 + i * 13) % 4000);
            ip[p] = (uint16_t)(rnd() & 0xFFFF);
        }
        c->depth->device_ts_us = c->ir->device_ts_us = t - 80;
        KS_CHECK_INT(ks_mkv_writer_add_capture(w, c, &e), KS_OK);
        truth[n++] = (rec){KS_MKV_COLOR, t, c->color->size, checksum(c->color->data, c->color->size), {.acc_ts_us = 0}};
        truth[n++] = (rec){KS_MKV_DEPTH, t - 80, c->depth->size, checksum(c->depth->data, c->depth->size), {.acc_ts_us = 0}};
        truth[n++] = (rec){KS_MKV_IR, t - 80, c->ir->size, checksum(c->ir->data, c->ir->size), {.acc_ts_us = 0}};
        ks_capture_release(c);
    }
    KS_CHECK_INT(ks_mkv_writer_close(w, &e), KS_OK);
    qsort(truth, (size_t)n, sizeof *truth, cmp_rec);
    *nrec = n;
    return truth;
}

/* Reads every item; returns them (sorted like the truth). */
static rec *read_all(const char *path, int *n, ks_status *end, ks_mkv_reader **keep)
{
    ks_mkv_reader *r;
    ks_error e = {0};
    *n = 0;
    *end = ks_mkv_reader_open(path, &r, &e);
    if (*end)
        return NULL;
    int cap = 256;
    rec *out = malloc(sizeof *out * (size_t)cap);
    ks_mkv_item it;
    while ((*end = ks_mkv_reader_next(r, &it, &e)) == KS_OK) {
        if (*n == cap) {
            cap *= 2;
            out = realloc(out, sizeof *out * (size_t)cap);
        }
        rec x = {it.kind, it.device_ts_us, 0, 0, it.imu};
        if (it.image) {
            x.size = it.image->size;
            x.sum = checksum(it.image->data, it.image->size);
            if (it.image->device_ts_us != it.device_ts_us)
                x.sum ^= 1;
            ks_image_release(it.image);
        } else if (it.kind == KS_MKV_IMU) {
            x.size = KS_MKV_IMU_SAMPLE_SIZE;
        }
        out[(*n)++] = x;
    }
    if (keep)
        *keep = r;
    else
        ks_mkv_reader_close(r);
    qsort(out, (size_t)*n, sizeof *out, cmp_rec);
    return out;
}

static bool same_rec(const rec *a, const rec *b)
{
    if (a->kind != b->kind || a->ts != b->ts || a->size != b->size)
        return false;
    if (a->kind == KS_MKV_IMU)
        return a->imu.acc_ts_us == b->imu.acc_ts_us && a->imu.gyro_ts_us == b->imu.gyro_ts_us &&
               !memcmp(a->imu.acc, b->imu.acc, sizeof a->imu.acc) && !memcmp(a->imu.gyro, b->imu.gyro, sizeof a->imu.gyro);
    return a->sum == b->sum;
}

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void test_round_trip(void)
{
    const char *p = path_in("rt.mkv");
    int n = 0;
    rec *truth = write_file(p, KS_DEPTH_NFOV_UNBINNED, 45, 5000000, &n, -1);
    struct stat sb;
    KS_CHECK(stat(p, &sb) == 0);
    KS_CHECK(access(path_in("rt.mkv.part"), F_OK) != 0);
    int m = 0;
    ks_status end;
    ks_mkv_reader *r = NULL;
    rec *got = read_all(p, &m, &end, &r);
    KS_CHECK_INT(end, KS_EEOF);
    KS_CHECK_INT(m, n);
    int bad = 0;
    for (int i = 0; i < n && i < m; i++)
        if (!same_rec(&truth[i], &got[i]))
            bad++;
    KS_CHECK_INT(bad, 0);
    if (r) {
        const ks_mkv_info *in = ks_mkv_reader_info(r);
        KS_CHECK(in->segment_size_known);
        KS_CHECK(!in->truncated);
        ks_error pe = {0};
        KS_CHECK_MSG(ks_mkv_check_playback(r, &pe) == KS_OK, "%s", pe.message);
        KS_CHECK_INT(in->timecode_scale, 1000);
        KS_CHECK_INT(in->track_count, 4);
        KS_CHECK(in->has_start_offset);
        KS_CHECK_INT(in->start_offset_us, truth[0].ts); /* smallest timestamp incl. IMU */
        KS_CHECK_INT(in->desc.color_resolution, KS_COLOR_720P);
        KS_CHECK_INT(in->desc.color_format, KS_FORMAT_MJPG);
        KS_CHECK_INT(in->desc.depth_mode, KS_DEPTH_NFOV_UNBINNED);
        KS_CHECK_INT(in->desc.fps, KS_FPS_30);
        KS_CHECK_INT(in->desc.sync_mode, KS_SYNC_SUBORDINATE);
        KS_CHECK_INT(in->desc.subordinate_delay_us, 160);
        KS_CHECK_INT(in->desc.depth_delay_us, -80);
        KS_CHECK_STR(in->desc.serial, "000111222333");
        KS_CHECK_INT(in->desc.color_fw.iteration, 110);
        KS_CHECK_INT(in->desc.depth_fw.iteration, 79);
        KS_CHECK_STR(in->desc.rig_name, "lab-rig");
        KS_CHECK_STR(in->desc.role, "sub1");
        KS_CHECK_STR(in->desc.plan_digest, "sha256:abcdef");
        KS_CHECK(in->desc.imu);
        KS_CHECK(in->desc.calibration_json && !strcmp(in->desc.calibration_json,
                                                      "{\"CalibrationInformation\":{\"Cameras\":[]}}"));
        KS_CHECK_STR(ks_mkv_reader_tag(r, "K4A_SUBORDINATE_DELAY_NS"), "160000");
        KS_CHECK_STR(ks_mkv_reader_tag(r, "K4A_DEPTH_DELAY_NS"), "-80000");
        KS_CHECK_STR(ks_mkv_reader_tag(r, "K4A_COLOR_MODE"), "MJPG_720P");
        KS_CHECK_STR(ks_mkv_reader_tag(r, "K4A_IR_MODE"), "ACTIVE");
        KS_CHECK_STR(ks_mkv_reader_tag(r, "K4A_IMU_MODE"), "ON");
        /* DefaultDuration equal on all video tracks, 1e9/fps */
        for (int k = KS_MKV_COLOR; k <= KS_MKV_IR; k++) {
            const ks_mkv_track *t = ks_mkv_reader_track(r, (ks_mkv_track_kind)k);
            KS_CHECK(t != NULL);
            if (t)
                KS_CHECK_INT(t->default_duration_ns, 33333333);
        }
        KS_CHECK_STR(ks_mkv_reader_track(r, KS_MKV_DEPTH)->fourcc, "b16g");
        KS_CHECK_INT(ks_mkv_reader_track(r, KS_MKV_DEPTH)->bit_count, 16);
        KS_CHECK_INT(ks_mkv_reader_track(r, KS_MKV_COLOR)->bit_count, 24);
        /* layout: clusters span <= 32 ms, cues at most one per second and pointing at clusters */
        ks_error e = {0};
        uint64_t off = in->first_cluster_offset;
        int clusters = 0, span_bad = 0;
        ks_mkv_cluster_loc loc;
        while (ks_mkv_locate_cluster(r, off, &loc, &e) == KS_OK && ks_mkv_load_cluster(r, &loc, &e) == KS_OK) {
            if (r->nframes && r->frames[r->nframes - 1].time - r->frames[0].time >= 32000)
                span_bad++;
            clusters++;
            off = loc.end;
        }
        KS_CHECK(clusters >= 45);
        KS_CHECK_INT(span_bad, 0);
        KS_CHECK(r->ncues >= 1);
        for (size_t i = 1; i < r->ncues; i++)
            KS_CHECK(r->cues[i].time >= r->cues[i - 1].time + 1000000);
        /* 45 frames at 30 fps = 1.47 s: two cues */
        KS_CHECK_INT(r->ncues, 2);
        ks_mkv_reader_close(r);
    }
    free(truth);
    free(got);
}

/* Captures group color with the depth/IR of the same instant (depth delay -80 us). */
static void test_captures(void)
{
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(path_in("rt.mkv"), &r, &e), KS_OK);
    if (!r)
        return;
    int n = 0, full = 0, bad = 0;
    ks_capture *c;
    while (ks_mkv_reader_next_capture(r, &c, &e) == KS_OK) {
        n++;
        if (c->color && c->depth && c->ir) {
            full++;
            if (c->depth->device_ts_us != c->color->device_ts_us - 80 || c->ir->device_ts_us != c->depth->device_ts_us ||
                c->color->device_ts_us != 5000000 + (uint64_t)(n - 1) * 33333 || c->depth->format != KS_FORMAT_DEPTH16 ||
                c->ir->format != KS_FORMAT_IR16)
                bad++;
        }
        ks_capture_release(c);
    }
    KS_CHECK_INT(n, 45);
    KS_CHECK_INT(full, 45);
    KS_CHECK_INT(bad, 0);
    ks_mkv_reader_close(r);
}

static void check_seek(const char *p, const char *what)
{
    int m = 0;
    ks_status end;
    rec *all = read_all(p, &m, &end, NULL);
    ks_mkv_reader *r;
    ks_error e = {0};
    if (ks_mkv_reader_open(p, &r, &e) != KS_OK) {
        KS_CHECK_MSG(0, "%s: %s", what, e.message);
        free(all);
        return;
    }
    uint64_t targets[] = {0, all[0].ts, all[m / 3].ts, all[m / 2].ts + 1, all[m - 1].ts, all[m - 1].ts + 1};
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        KS_CHECK_INT(ks_mkv_reader_seek(r, targets[k], &e), KS_OK);
        ks_mkv_item it;
        ks_status st = ks_mkv_reader_next(r, &it, &e);
        /* expected: the smallest timestamp >= target */
        int want = -1;
        for (int i = 0; i < m; i++)
            if (all[i].ts >= targets[k]) {
                want = i;
                break;
            }
        if (want < 0) {
            KS_CHECK_MSG(st == KS_EEOF, "%s: seek past the end gave %s", what, ks_status_name(st));
        } else {
            KS_CHECK_MSG(st == KS_OK && it.device_ts_us == all[want].ts, "%s: seek %llu -> %llu, expected %llu", what,
                         (unsigned long long)targets[k], (unsigned long long)it.device_ts_us,
                         (unsigned long long)all[want].ts);
        }
        if (st == KS_OK)
            ks_image_release(it.image);
    }
    ks_mkv_reader_close(r);
    free(all);
}

static void test_seek(void)
{
    const char *p = path_in("rt.mkv");
    check_seek(p, "with cues");
    /* cut the Cues off: seeks scan the clusters */
    struct stat sb;
    stat(p, &sb);
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    uint64_t cues = r->pos_cues;
    ks_mkv_reader_close(r);
    KS_CHECK(cues > 0 && cues < (uint64_t)sb.st_size);
    const char *q = path_in("nocues.mkv");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c %llu '%s' > '%s'", (unsigned long long)cues, p, q);
    KS_CHECK_INT(system(cmd), 0);
    KS_CHECK_INT(ks_mkv_reader_open(q, &r, &e), KS_OK);
    KS_CHECK_INT(r->ncues, 0);
    ks_mkv_reader_close(r);
    check_seek(q, "without cues");
}

static int run_count(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            lines++;
    pclose(f);
    return lines;
}

static void test_tools(void)
{
    if (system("command -v mkvinfo >/dev/null && command -v ffprobe >/dev/null") != 0) {
        printf("skip: mkvinfo/ffprobe not installed\n");
        return;
    }
    const char *p = path_in("rt.mkv");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkvinfo -v '%s' 2>&1 | grep -iE 'warning|error|unknown|invalid'", p);
    KS_CHECK_INT(run_count(cmd), 0);
    snprintf(cmd, sizeof cmd, "mkvinfo '%s' >/dev/null 2>&1", p);
    KS_CHECK_INT(system(cmd), 0);
    /* ffprobe: only the two notes every k4arecorder file gets (IMU track and attachment) */
    snprintf(cmd, sizeof cmd,
             "ffprobe -v warning -show_streams -count_packets '%s' 2>&1 >/dev/null | grep -vE "
             "'Could not find codec parameters for stream (3 \\(Subtitle|4 \\(Attachment)|Consider increasing the "
             "value|Unsupported codec with id 0 for input stream [34]'",
             p);
    KS_CHECK_INT(run_count(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v -count_packets -show_entries stream=nb_read_packets,codec_tag_string "
             "-of csv=p=0 '%s' | tr '\\n' ' '",
             p);
    FILE *f = popen(cmd, "r");
    char out[256] = "";
    if (f) {
        if (!fgets(out, sizeof out, f))
            out[0] = 0;
        pclose(f);
    }
    KS_CHECK_STR(out, "MJPG,45 b16g,45 b16g,45 ");
    /* ffmpeg decodes our depth as big-endian 16-bit: the first frame equals what we wrote */
    snprintf(cmd, sizeof cmd,
             "ffmpeg -v error -y -i '%s' -map 0:1 -frames:v 1 -f rawvideo -pix_fmt gray16le '%s/d.raw'", p, dir);
    KS_CHECK_INT(system(cmd), 0);
    FILE *raw = fopen(path_in("d.raw"), "rb");
    KS_CHECK(raw != NULL);
    if (raw) {
        uint16_t px[4];
        KS_CHECK_INT(fread(px, 2, 4, raw), 4);
        fclose(raw);
        for (int k = 0; k < 4; k++)
            KS_CHECK_INT(px[k], 500 + (k * 7) % 4000); /* frame 0 pattern */
    }
}

/* A file cut at many byte positions reads up to its last complete cluster; repair makes it whole. */
static void test_truncation(void)
{
    const char *p = path_in("small.mkv");
    int n = 0;
    rec *truth = write_file(p, KS_DEPTH_NFOV_2X2BINNED, 12, 900000, &n, -1);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)size);
    KS_CHECK_INT(fread(all, 1, (size_t)size, f), size);
    fclose(f);
    /* the cluster boundaries, and the items wholly before each */
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    uint64_t first = r->info.first_cluster_offset;
    uint64_t ends[64];
    int items_before[64];
    int nc = 0, items = 0;
    ks_mkv_cluster_loc loc;
    uint64_t off = first;
    while (nc < 64 && ks_mkv_locate_cluster(r, off, &loc, &e) == KS_OK && ks_mkv_load_cluster(r, &loc, &e) == KS_OK) {
        items += (int)r->nframes;
        ends[nc] = loc.end;
        items_before[nc++] = items;
        off = loc.end;
    }
    ks_mkv_reader_close(r);
    KS_CHECK_INT(items, n);
    /* cut positions: every 37 KB, and around every cluster start and end */
    long cuts[512];
    int ncut = 0;
    for (long c = 1; c < size && ncut < 300; c += 37 * 1024 + 11)
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
        int expect = 0;
        for (int i = 0; i < nc; i++)
            if ((long)ends[i] <= c)
                expect = items_before[i];
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
        if (k % 3 == 0 || c == size) {
            ks_mkv_repair_report rep;
            if (ks_mkv_repair(q, o, &rep, &e) != KS_OK) {
                repaired_bad++;
                fprintf(stderr, "repair at cut %ld: %s\n", c, e.message);
                continue;
            }
            ks_mkv_reader *rr;
            if (ks_mkv_reader_open(o, &rr, &e) == KS_OK) {
                if (!rr->info.segment_size_known || rr->info.truncated || (expect > 0 && rr->ncues == 0))
                    repaired_bad++;
                ks_mkv_reader_close(rr);
            } else {
                repaired_bad++;
            }
            got = read_all(o, &m, &end, NULL);
            if (end != KS_EEOF || m != expect)
                repaired_bad++;
            free(got);
        }
    }
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

static void test_corrupt(void)
{
    const char *p = path_in("rt.mkv");
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

/* Other configurations: IR only (PASSIVE_IR), color only (NV12, 15 fps, master), WFOV 2x2 +
 * 1080p at 5 fps without IMU or calibration. Each must satisfy the SDK's open checks, read back
 * its description, and pass mkvinfo. */
static void test_configs(void)
{
    struct cfg {
        ks_color_resolution res;
        ks_image_format fmt;
        ks_depth_mode dm;
        ks_fps fps;
        ks_wired_sync_mode sync;
        bool imu;
        int tracks;
    } cfgs[] = {
        {KS_COLOR_OFF, KS_FORMAT_MJPG, KS_DEPTH_PASSIVE_IR, KS_FPS_30, KS_SYNC_STANDALONE, false, 1},
        {KS_COLOR_720P, KS_FORMAT_NV12, KS_DEPTH_OFF, KS_FPS_15, KS_SYNC_MASTER, true, 2},
        {KS_COLOR_1080P, KS_FORMAT_MJPG, KS_DEPTH_WFOV_2X2BINNED, KS_FPS_5, KS_SYNC_STANDALONE, false, 3},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct cfg *c = &cfgs[k];
        ks_mkv_desc d;
        ks_mkv_desc_init(&d);
        d.color_resolution = c->res;
        d.color_format = c->fmt;
        d.depth_mode = c->dm;
        d.fps = c->fps;
        d.sync_mode = c->sync;
        d.imu = c->imu;
        char name[64];
        snprintf(name, sizeof name, "cfg%zu.mkv", k);
        const char *p = path_in(name);
        ks_mkv_writer *w;
        ks_error e = {0};
        KS_CHECK_INT(ks_mkv_writer_open(p, &d, NULL, &w, &e), KS_OK);
        if (!w)
            continue;
        const ks_color_resolution_info *ci = ks_color_resolution_get(c->res);
        const ks_depth_mode_info *di = ks_depth_mode_get(c->dm);
        for (int f = 0; f < 3; f++) {
            uint64_t t = 100000 + (uint64_t)f * (uint64_t)ks_frame_period_us(c->fps);
            if (ci) {
                ks_image *img = c->fmt == KS_FORMAT_MJPG
                                    ? ks_image_create(KS_FORMAT_MJPG, ci->width, ci->height, 0, jpeg_size)
                                    : ks_image_create(c->fmt, ci->width, ci->height, ci->width, (size_t)0);
                if (c->fmt == KS_FORMAT_MJPG)
                    memcpy(img->data, jpeg, jpeg_size);
                else {
                    ks_image_release(img);
                    img = ks_image_create(c->fmt, ci->width, ci->height, 0, (size_t)ci->width * ci->height * 3 / 2);
                    memset(img->data, 128, img->size);
                }
                img->device_ts_us = t;
                KS_CHECK_INT(ks_mkv_writer_add_image(w, KS_MKV_COLOR, img, &e), KS_OK);
                ks_image_release(img);
            }
            if (di) {
                for (int kind = KS_MKV_DEPTH; kind <= KS_MKV_IR; kind++) {
                    if (kind == KS_MKV_DEPTH && c->dm == KS_DEPTH_PASSIVE_IR)
                        continue;
                    ks_image *img = ks_image_create(kind == KS_MKV_DEPTH ? KS_FORMAT_DEPTH16 : KS_FORMAT_IR16,
                                                    di->width, di->height, di->width * 2, 0);
                    memset(img->data, f, img->size);
                    img->device_ts_us = t;
                    KS_CHECK_INT(ks_mkv_writer_add_image(w, (ks_mkv_track_kind)kind, img, &e), KS_OK);
                    ks_image_release(img);
                }
            }
            if (c->imu) {
                ks_imu_sample s = {.acc_ts_us = t + 10, .gyro_ts_us = t + 10};
                KS_CHECK_INT(ks_mkv_writer_add_imu(w, &s, &e), KS_OK);
            }
        }
        KS_CHECK_INT(ks_mkv_writer_close(w, &e), KS_OK);
        ks_mkv_reader *r;
        KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
        if (!r)
            continue;
        const ks_mkv_info *in = ks_mkv_reader_info(r);
        KS_CHECK_MSG(ks_mkv_check_playback(r, &e) == KS_OK, "config %zu: %s", k, e.message);
        KS_CHECK_INT(in->track_count, c->tracks);
        KS_CHECK_INT(in->desc.color_resolution, c->res);
        if (ci)
            KS_CHECK_INT(in->desc.color_format, c->fmt);
        KS_CHECK_INT(in->desc.depth_mode, c->dm);
        KS_CHECK_INT(in->desc.fps, c->fps);
        KS_CHECK_INT(in->desc.sync_mode, c->sync);
        KS_CHECK_INT(in->desc.imu, c->imu);
        KS_CHECK(ks_mkv_reader_tag(r, "K4A_DEPTH_DELAY_NS") == NULL || (ci && di));
        int items = 0;
        ks_mkv_item it;
        while (ks_mkv_reader_next(r, &it, &e) == KS_OK) {
            if (it.image && it.kind == KS_MKV_COLOR && c->fmt == KS_FORMAT_NV12)
                KS_CHECK_INT(it.image->stride, ci->width);
            ks_image_release(it.image);
            items++;
        }
        KS_CHECK_INT(items, 3 * (c->tracks));
        ks_mkv_reader_close(r);
        if (system("command -v mkvinfo >/dev/null") == 0) {
            char cmd[700];
            snprintf(cmd, sizeof cmd, "mkvinfo -v '%s' 2>&1 | grep -iE 'warning|error|unknown|invalid'", p);
            KS_CHECK_INT(run_count(cmd), 0);
        }
        unlink(p);
    }
}

/* A file the SDK would refuse is named as such (here: K4A_DEPTH_MODE renamed). */
static void test_playback_check(void)
{
    const char *p = path_in("small.mkv");
    FILE *f = fopen(p, "rb");
    if (!f) {
        KS_CHECK(0);
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)size);
    KS_CHECK_INT(fread(all, 1, (size_t)size, f), size);
    fclose(f);
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

/* Values verified with mkvinfo -v -v / ffprobe / mkvextract on the fixture. */
static void test_fixture(void)
{
    /* the fixtures sit next to the main checkout (../shared); worktrees are one level deeper */
    char p[1024];
    snprintf(p, sizeof p, "%s/k4a/real-recording-nfov-720p.mkv", KS_FIXTURES);
    if (access(p, R_OK) != 0)
        snprintf(p, sizeof p, "%s/../../shared/fixtures/k4a/real-recording-nfov-720p.mkv", KS_SOURCE_DIR);
    ks_mkv_reader *r;
    ks_error e = {0};
    KS_CHECK_INT(ks_mkv_reader_open(p, &r, &e), KS_OK);
    if (!r)
        return;
    const ks_mkv_info *in = ks_mkv_reader_info(r);
    KS_CHECK_MSG(ks_mkv_check_playback(r, &e) == KS_OK, "%s", e.message);
    KS_CHECK_INT(in->track_count, 4);
    KS_CHECK_INT(in->tag_count, 15);
    KS_CHECK_INT(in->start_offset_us, 336277);
    KS_CHECK_INT(in->first_cluster_offset, 7481);
    KS_CHECK_INT(in->cue_count, 1);
    KS_CHECK_STR(in->writing_app, "k4arecord-1.4.1");
    KS_CHECK_INT(in->desc.color_resolution, KS_COLOR_720P);
    KS_CHECK_INT(in->desc.color_format, KS_FORMAT_MJPG);
    KS_CHECK_INT(in->desc.depth_mode, KS_DEPTH_NFOV_UNBINNED);
    KS_CHECK_INT(in->desc.fps, KS_FPS_5);
    KS_CHECK_INT(in->desc.sync_mode, KS_SYNC_STANDALONE);
    KS_CHECK_STR(in->desc.serial, "001514394512");
    KS_CHECK_INT(in->desc.color_fw.major, 1);
    KS_CHECK_INT(in->desc.color_fw.minor, 6);
    KS_CHECK_INT(in->desc.color_fw.iteration, 110);
    KS_CHECK_INT(in->desc.depth_fw.iteration, 79);
    KS_CHECK(in->desc.imu);
    KS_CHECK_INT(in->desc.calibration_len, 3900);
    KS_CHECK(in->desc.calibration_json && !strncmp(in->desc.calibration_json, "{\"CalibrationInformation\"", 25));
    KS_CHECK_INT(ks_mkv_reader_track(r, KS_MKV_COLOR)->uid, 226376802450399186ull);
    KS_CHECK_INT(ks_mkv_reader_track(r, KS_MKV_IMU)->uid, 368432896645948698ull);
    KS_CHECK_INT(ks_mkv_reader_track(r, KS_MKV_IR)->format, KS_FORMAT_IR16);
    ks_mkv_item it;
    KS_CHECK_INT(ks_mkv_reader_next(r, &it, &e), KS_OK);
    KS_CHECK_INT(it.kind, KS_MKV_IMU);
    KS_CHECK_INT(it.device_ts_us, 336277);
    KS_CHECK_INT(it.imu.acc_ts_us, 336277);
    KS_CHECK_INT(it.imu.gyro_ts_us, 336277);
    KS_CHECK_NEAR(sqrt(it.imu.acc[0] * it.imu.acc[0] + it.imu.acc[1] * it.imu.acc[1] + it.imu.acc[2] * it.imu.acc[2]),
                  9.8, 0.6); /* gravity */
    const ks_mkv_track_kind order[3] = {KS_MKV_COLOR, KS_MKV_DEPTH, KS_MKV_IR};
    const size_t sizes[3] = {217095, 737280, 737280};
    for (int k = 0; k < 3; k++) {
        KS_CHECK_INT(ks_mkv_reader_next(r, &it, &e), KS_OK);
        KS_CHECK_INT(it.kind, order[k]);
        KS_CHECK_INT(it.device_ts_us, 336277 + 463945);
        KS_CHECK(it.image != NULL);
        if (it.image) {
            KS_CHECK_INT(it.image->size, sizes[k]);
            if (k == 0)
                KS_CHECK(it.image->data[0] == 0xFF && it.image->data[1] == 0xD8);
            else
                KS_CHECK_INT(it.image->stride, 1280);
            ks_image_release(it.image);
        }
    }
    KS_CHECK_INT(ks_mkv_reader_next(r, &it, &e), KS_EEOF);
    KS_CHECK_INT(ks_mkv_reader_seek(r, 800000, &e), KS_OK);
    KS_CHECK_INT(ks_mkv_reader_next(r, &it, &e), KS_OK);
    KS_CHECK_INT(it.kind, KS_MKV_COLOR);
    ks_image_release(it.image);
    ks_mkv_reader_close(r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ks_test_mkv_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    make_jpeg(1280, 720);
    KS_RUN(test_fixture);
    KS_RUN(test_round_trip);
    KS_RUN(test_seek);
    KS_RUN(test_captures);
    KS_RUN(test_tools);
    KS_RUN(test_truncation);
    KS_RUN(test_killed_writer);
    KS_RUN(test_playback_check);
    KS_RUN(test_configs);
    KS_RUN(test_corrupt);
    KS_RUN(test_writer_errors);
    tjFree(jpeg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return KS_TEST_END();
}
