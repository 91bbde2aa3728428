/* PLY export: layout and size checked here; the shell tests (test_fuse_ply.sh, test_fuse_open3d.sh)
 * run this program with --write DIR and check the files with independent readers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinsync/fuse.h"
#include "ks_test.h"

enum { NPTS = 1000 };

/* The known cloud: point i = (i, 2i, -i/2) mm, color (i, 2i, 3i) mod 256, normal (0, 0.6, 0.8);
 * point 500 is NaN (must be skipped), point 7 has no normal (written as 0,0,0). */
static void known_cloud(ks_cloud *c)
{
    ks_error err;
    memset(c, 0, sizeof *c);
    ks_cloud_reserve(c, NPTS, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, &err);
    for (int i = 0; i < NPTS; i++) {
        c->x[i] = (float)i;
        c->y[i] = 2.0f * (float)i;
        c->z[i] = -0.5f * (float)i;
        c->rgb[3 * i] = (uint8_t)i;
        c->rgb[3 * i + 1] = (uint8_t)(2 * i);
        c->rgb[3 * i + 2] = (uint8_t)(3 * i);
        c->nx[i] = 0;
        c->ny[i] = 0.6f;
        c->nz[i] = 0.8f;
    }
    c->x[500] = NAN;
    c->nx[7] = NAN;
    c->count = NPTS;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static long header_size(const char *p)
{
    FILE *fp = fopen(p, "rb");
    if (!fp)
        return -1;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    char *e = strstr(buf, "end_header\n");
    return e ? (long)(e - buf) + 11 : -1;
}

static int write_files(const char *dir)
{
    ks_cloud c;
    known_cloud(&c);
    char p[1024];
    ks_error err;
    int bad = 0;
    snprintf(p, sizeof p, "%s/full.ply", dir);
    bad |= ks_ply_write(p, &c, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, &err) != KS_OK;
    snprintf(p, sizeof p, "%s/xyz.ply", dir);
    bad |= ks_ply_write(p, &c, 0, &err) != KS_OK;
    snprintf(p, sizeof p, "%s/color.ply", dir);
    bad |= ks_ply_write(p, &c, KS_CLOUD_COLOR, &err) != KS_OK;
    snprintf(p, sizeof p, "%s/quantized.ply", dir);
    bad |= ks_ply_write_quantized(p, &c, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, 5.0, &err) != KS_OK;
    ks_cloud_free(&c);
    if (bad)
        fprintf(stderr, "write failed: %s\n", err.message);
    return bad;
}

static void test_ply_layout(void)
{
    ks_cloud c;
    known_cloud(&c);
    char p[1024];
    snprintf(p, sizeof p, "%s/fuse-test-export.ply", KS_BINARY_DIR);
    ks_error err;
    KS_CHECK_INT(ks_ply_write(p, &c, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, &err), KS_OK);
    long hs = header_size(p);
    KS_CHECK(hs > 0);
    KS_CHECK_INT(file_size(p), hs + (NPTS - 1) * (12 + 3 + 12));
    /* first record: point 0 */
    FILE *fp = fopen(p, "rb");
    uint8_t rec[27 * 2];
    KS_CHECK(fp && fseek(fp, hs, SEEK_SET) == 0 && fread(rec, 1, sizeof rec, fp) == sizeof rec);
    if (fp)
        fclose(fp);
    float f;
    memcpy(&f, rec + 27 + 4, 4); /* second record's y = 2 */
    KS_CHECK_NEAR(f, 2.0, 0);
    KS_CHECK_INT(rec[27 + 12 + 2], 3);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    KS_CHECK(access(tmp, F_OK) != 0);
    remove(p);
    /* failure leaves nothing behind and names the path */
    KS_CHECK_INT(ks_ply_write("/nonexistent-dir/out.ply", &c, 0, &err), KS_EIO);
    KS_CHECK_CONTAINS(err.message, "/nonexistent-dir/out.ply");
    /* empty cloud is a valid file */
    ks_cloud e = {0};
    KS_CHECK_INT(ks_ply_write(p, &e, KS_CLOUD_COLOR, &err), KS_OK);
    KS_CHECK_INT(file_size(p), header_size(p));
    remove(p);
    ks_cloud_free(&c);
}

/* The quantized layout: 12 bytes per point with colour and normals (6 + 3 + 3), coordinates back
 * from the header's origin and step within half a step, the step voxel / 2^k; a cloud too wide
 * for 16 bits is refused and leaves no file. */
static void test_ply_quantized(void)
{
    ks_cloud c;
    known_cloud(&c);
    char p[1024];
    snprintf(p, sizeof p, "%s/fuse-test-export-q.ply", KS_BINARY_DIR);
    ks_error err;
    KS_CHECK_INT(ks_ply_write_quantized(p, &c, KS_CLOUD_COLOR | KS_CLOUD_NORMALS, 5.0, &err), KS_OK);
    long hs = header_size(p);
    KS_CHECK(hs > 0);
    KS_CHECK_INT(file_size(p), hs + (NPTS - 1) * (6 + 3 + 3));
    FILE *fp = fopen(p, "rb");
    char hdr[2048] = {0};
    uint8_t body[12 * 1000];
    KS_CHECK(fp && fread(hdr, 1, (size_t)hs, fp) == (size_t)hs && fread(body, 12, 999, fp) == 999);
    if (fp)
        fclose(fp);
    double o[3] = {NAN, NAN, NAN}, step = NAN;
    const char *q = strstr(hdr, "comment origin_mm ");
    KS_CHECK(q && sscanf(q, "comment origin_mm %lf %lf %lf", &o[0], &o[1], &o[2]) == 3);
    q = strstr(hdr, "comment step_mm ");
    KS_CHECK(q && sscanf(q, "comment step_mm %lf", &step) == 1);
    KS_CHECK_NEAR(step, 5.0 / 128, 1e-12); /* +-1000 mm from the origin: 5 mm / 2^7 */
    KS_CHECK(strstr(hdr, "property short x\nproperty short y\nproperty short z\nproperty uchar red") != NULL);
    double worst = 0;
    for (int k = 0; k < 999; k++) {
        int i = k < 500 ? k : k + 1; /* point 500 is NaN, skipped */
        const uint8_t *r = body + 12 * k;
        double want[3] = {c.x[i], c.y[i], c.z[i]};
        for (int a = 0; a < 3; a++) {
            int16_t v = (int16_t)(uint16_t)(r[2 * a] | r[2 * a + 1] << 8);
            double e = fabs(o[a] + step * v - want[a]);
            worst = e > worst ? e : worst;
        }
        KS_CHECK(r[6] == c.rgb[3 * i] && r[7] == c.rgb[3 * i + 1] && r[8] == c.rgb[3 * i + 2]);
        KS_CHECK(i == 7 ? (r[9] == 0 && r[10] == 0 && r[11] == 0) : (r[9] == 0 && r[10] == 76 && r[11] == 102));
    }
    KS_CHECK_MSG(worst <= step / 2 + 1e-9, "worst error %.6f mm, step %.6f", worst, step);
    remove(p);
    /* 1e6 mm from the rest: more than 2 x 32767 voxels of 5 mm */
    c.x[3] = 1e6f;
    KS_CHECK_INT(ks_ply_write_quantized(p, &c, 0, 5.0, &err), KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "--format ply");
    KS_CHECK(access(p, F_OK) != 0);
    KS_CHECK_INT(ks_ply_write_quantized(p, &c, 0, 0.0, &err), KS_EINVAL);
    ks_cloud_free(&c);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write"))
        return write_files(argv[2]);
    KS_RUN(test_ply_layout);
    KS_RUN(test_ply_quantized);
    return KS_TEST_END();
}
