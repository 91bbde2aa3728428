/* mkv/mkv_internal.h: constants of the Azure Kinect recording layout and helpers shared by the
 * writer, reader and repair. The constants are file-format facts (the SDK's matroska_common.h and
 * what k4arecorder writes), not hardware numbers. */
#ifndef KS_MKV_INTERNAL_H
#define KS_MKV_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kinsync/mkv.h"

#define KS_MKV_TIMECODE_SCALE 1000u        /* ns per tick: block times in us */
#define KS_MKV_MAX_CLUSTER_US 32000u       /* a cluster spans at most 32 ms */
#define KS_MKV_CUE_GAP_US 1000000u         /* at most one cue per second */
#define KS_MKV_IMU_SAMPLE_SIZE 40          /* u64 acc_ts_ns, f32 acc[3], u64 gyro_ts_ns, f32 gyro[3] */
/* Reserved areas (element + Void), the sizes k4arecorder reserves: SeekHead 1024-byte Void (+3
 * header bytes), Info 256 (+3), Void of 1024 (+3) after Tags. */
#define KS_MKV_SEEK_REGION 1027u
#define KS_MKV_INFO_REGION 259u
#define KS_MKV_TAGS_VOID 1027u
#define KS_MKV_WRITEBACK_CHUNK ((uint64_t)16 << 20) /* writer: start writeback every 16 MB */

static inline void ks_mkv_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t ks_mkv_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void ks_mkv_put_le64(uint8_t *p, uint64_t v)
{
    ks_mkv_put_le32(p, (uint32_t)v);
    ks_mkv_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t ks_mkv_get_le64(const uint8_t *p)
{
    return (uint64_t)ks_mkv_get_le32(p) | (uint64_t)ks_mkv_get_le32(p + 4) << 32;
}
static inline void ks_mkv_put_lef(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    ks_mkv_put_le32(p, u);
}
static inline float ks_mkv_get_lef(const uint8_t *p)
{
    uint32_t u = ks_mkv_get_le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void ks_mkv_imu_encode(uint8_t out[KS_MKV_IMU_SAMPLE_SIZE], const ks_imu_sample *s)
{
    ks_mkv_put_le64(out, s->acc_ts_us * 1000);
    for (int i = 0; i < 3; i++)
        ks_mkv_put_lef(out + 8 + 4 * i, s->acc[i]);
    ks_mkv_put_le64(out + 20, s->gyro_ts_us * 1000);
    for (int i = 0; i < 3; i++)
        ks_mkv_put_lef(out + 28 + 4 * i, s->gyro[i]);
}
static inline void ks_mkv_imu_decode(const uint8_t *in, ks_imu_sample *s)
{
    memset(s, 0, sizeof *s);
    s->temperature_c = NAN; /* not recorded: the SDK's playback gives NaN too */
    s->acc_ts_us = ks_mkv_get_le64(in) / 1000;
    for (int i = 0; i < 3; i++)
        s->acc[i] = ks_mkv_get_lef(in + 8 + 4 * i);
    s->gyro_ts_us = ks_mkv_get_le64(in + 20) / 1000;
    for (int i = 0; i < 3; i++)
        s->gyro[i] = ks_mkv_get_lef(in + 28 + 4 * i);
}

/* Copies n bytes swapping each 16-bit pair (little <-> big endian); an odd last byte is copied.
 * dst == src swaps in place (the reader swaps a frame it read straight into its image); other
 * overlaps are not allowed. Eight bytes per step with 64-bit shifts and masks (no alignment
 * needed: memcpy loads): GCC 12 keeps the eight bytes in a register at -O2 and vectorizes the loop
 * at -O3 (checking at run time that the buffers are the same or apart: both take the vector loop).
 * A 640x576 depth frame in cache: ~50 us at -O2, where the pair-by-pair loop takes ~160 us; ~25 us
 * at -O3 (its memcpy ~10 us). */
static inline void ks_mkv_swap16(uint8_t *dst, const uint8_t *src, size_t n)
{
    const uint64_t lo = 0x00FF00FF00FF00FFull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v = (v & lo) << 8 | (v >> 8 & lo);
        memcpy(dst + i, &v, 8);
    }
    for (; i + 2 <= n; i += 2) { /* both bytes read before either is written: safe in place */
        uint8_t a = src[i], b = src[i + 1];
        dst[i] = b;
        dst[i + 1] = a;
    }
    if (n & 1)
        dst[n - 1] = src[n - 1];
}

/* The 40-byte BITMAPINFOHEADER k4arecorder puts in CodecPrivate. */
void ks_mkv_bitmap_header(uint8_t out[40], int width, int height, ks_image_format fmt);

#endif
