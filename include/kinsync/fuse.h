/* kinsync/fuse.h: one domain from many devices. Depth frames of a calibrated rig become points in
 * one rig frame, are merged in a voxel grid, re-rendered into any device's view to fill its
 * occlusions, interleaved into one time-ordered stream, and exported as PLY / 16-bit PNG.
 *
 * Units: millimetres. Depth images are DEPTH16: uint16 Z along the optical axis, 0 = no depth.
 * Points are stored as float planes (structure of arrays) so the hot loops vectorize; a point
 * whose coordinates are NaN is "no point" (invalid pixel or no depth). Nothing in the per-frame
 * path allocates once its buffers have reached the size of the largest frame set seen.
 * Design notes and the formats: docs/fuse.md. */
#ifndef KINSYNC_FUSE_H
#define KINSYNC_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/calibration.h"
#include "kinsync/error.h"
#include "kinsync/timing.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Rig poses (rig-calibration.json, written by the calibration solver). */

#define KS_FUSE_SERIAL_MAX 64
#define KS_FUSE_MAX_DEVICES 32 /* a voxel records which devices saw it in a 32-bit mask */

typedef struct ks_rig_pose {
    char serial[KS_FUSE_SERIAL_MAX];
    ks_extrinsics depth_to_rig;  /* depth camera frame -> rig frame (mm) */
    ks_extrinsics color_to_rig;  /* color camera frame -> rig frame (mm) */
} ks_rig_pose;

/* Parses rig-calibration.json text. `name` (may be NULL) is used in error messages. On success
 * *out is a malloc'd array of *count poses (free with free()). */
ks_status ks_rig_poses_parse(const char *json, size_t len, const char *name, ks_rig_pose **out, size_t *count,
                             ks_error *err);
/* Reads and parses a rig-calibration.json file; as ks_rig_poses_parse. */
ks_status ks_rig_poses_load(const char *path, ks_rig_pose **out, size_t *count, ks_error *err);
/* The pose of a serial, NULL when absent. */
const ks_rig_pose *ks_rig_pose_find(const ks_rig_pose *poses, size_t count, const char *serial);

/* ---------------------------------------------------------------------------------------------
 * Unprojection tables: ks_unproject_ray for every depth pixel, built once per device and mode. */

typedef struct ks_unproject_table {
    int width, height;
    float *x, *y;        /* per pixel (row-major): point = z * (x, y, 1); NaN when the pixel is invalid */
    size_t valid_count;  /* pixels whose ray converged */
    void *map;           /* read from the cache: the file's read-only mapping that x and y point into
                          * (map_bytes long; ks_unproject_table_free unmaps it); NULL: x, y malloc'd */
    size_t map_bytes;
} ks_unproject_table;

/* Builds the table of the depth intrinsics `depth` (mode size). *t is overwritten (free an old one
 * first); on failure it is left empty. */
ks_status ks_unproject_table_build(const ks_intrinsics *depth, ks_unproject_table *t, ks_error *err);
/* The same table through a cache directory (NULL or "": no cache, a plain build): read from
 * cache_dir when a file there holds exactly these intrinsics and passes its checks (size, version,
 * checksum, valid count, 64 pixels against ks_unproject_ray), else built and stored there (written
 * to a temporary file and renamed; a directory that cannot be written is not an error).
 * *from_cache (may be NULL) tells which. docs/fuse.md describes the file. */
ks_status ks_unproject_table_get(const ks_intrinsics *depth, const char *cache_dir, ks_unproject_table *t,
                                 bool *from_cache, ks_error *err);
/* The default cache directory: $XDG_CACHE_HOME/kinsync, else $HOME/.cache/kinsync; false when
 * neither is set (absolute) or buf is too small. */
bool ks_fuse_default_cache_dir(char *buf, size_t size);
void ks_unproject_table_free(ks_unproject_table *t);

/* Depth image (width*height of the table, row stride `stride` pixels; 0 means width) to points,
 * transformed by `to_rig` (NULL = identity: depth camera frame). Writes width*height points,
 * organized like the image, into x/y/z; pixels without depth or with an invalid ray get NaN.
 * Returns the number of valid points. Never allocates. */
size_t ks_depth_to_points(const ks_unproject_table *t, const uint16_t *depth, size_t stride,
                          const ks_extrinsics *to_rig, float *x, float *y, float *z);

/* Normals of an organized cloud (width*height, as written by ks_depth_to_points) from its image
 * neighbours: n = (P[u+1]-P[u-1]) x (P[v+1]-P[v-1]), unit length, turned to face `viewpoint` (the
 * camera centre in the same frame). NaN where a neighbour is missing or the neighbours are farther
 * apart than `max_gap_mm` (a depth edge). Returns the number of normals written. */
size_t ks_points_normals(const float *x, const float *y, const float *z, int width, int height,
                         const double viewpoint[3], float max_gap_mm, float *nx, float *ny, float *nz);

/* ---------------------------------------------------------------------------------------------
 * Color. */

/* A BGRA32 image (what the device gives for BGRA, what the MJPEG decoder writes). */
typedef struct ks_color_image {
    int width, height;
    size_t stride;         /* bytes per row */
    const uint8_t *bgra;
    int scale_denom;       /* 1 full resolution, 2/4/8 when decoded scaled down */
} ks_color_image;

/* A reusable MJPEG decoder (libturbojpeg handle + output buffer). */
typedef struct ks_mjpeg_decoder ks_mjpeg_decoder;

ks_status ks_mjpeg_decoder_create(ks_mjpeg_decoder **out, ks_error *err);
void ks_mjpeg_decoder_destroy(ks_mjpeg_decoder *d);
/* Decodes one MJPEG frame to BGRA, scaled down by scale_denom (1, 2, 4 or 8: the smaller image is
 * decoded directly, much faster, when coarse color is enough; a pixel is the mean of the
 * scale_denom x scale_denom it stands for, see docs/fuse.md). Full size is libjpeg-turbo's, and so is
 * any frame kinsync's scaled decoder does not take (and every frame with KINSYNC_MJPEG_LIBJPEG set
 * when the decoder is made). *out points into the decoder's buffer, valid until the next decode or
 * destroy. */
ks_status ks_mjpeg_decode(ks_mjpeg_decoder *d, const uint8_t *jpeg, size_t size, int scale_denom,
                          ks_color_image *out, ks_error *err);

/* Colors `n` points given in the rig frame: each is moved into the color camera with `rig_to_color`,
 * projected with `color` (full-resolution intrinsics of the color mode) and sampled (nearest pixel,
 * scaled by img->scale_denom) from img. Writes rgb[3*i..] (R, G, B); points that are NaN, behind the
 * camera or outside the image get `fallback` (3 bytes). Returns the number of points colored. */
size_t ks_points_colorize(const float *x, const float *y, const float *z, size_t n, const ks_extrinsics *rig_to_color,
                          const ks_intrinsics *color, const ks_color_image *img, const uint8_t fallback[3],
                          uint8_t *rgb);

/* ---------------------------------------------------------------------------------------------
 * Clouds: the merged result (and any cloud handed to the renderer or the PLY writer). */

enum {
    KS_CLOUD_COLOR = 1u << 0,    /* rgb */
    KS_CLOUD_NORMALS = 1u << 1,  /* nx, ny, nz */
    KS_CLOUD_WEIGHT = 1u << 2,   /* weight: points merged into the point */
    KS_CLOUD_DEVICES = 1u << 3,  /* devices: bit d set when device d contributed */
};

typedef struct ks_cloud {
    size_t count, capacity;
    unsigned fields;           /* KS_CLOUD_* present */
    float *x, *y, *z;
    uint8_t *rgb;              /* 3 per point, or NULL */
    float *nx, *ny, *nz;       /* or NULL */
    uint32_t *weight;          /* or NULL */
    uint32_t *devices;         /* or NULL */
} ks_cloud;

/* Makes room for `n` points with the given fields; keeps contents up to count. A zeroed ks_cloud
 * is a valid empty cloud. Reallocates only when growing. */
ks_status ks_cloud_reserve(ks_cloud *c, size_t n, unsigned fields, ks_error *err);
void ks_cloud_free(ks_cloud *c);

/* ---------------------------------------------------------------------------------------------
 * Voxel grid: averages position (and color / normals) of every point falling in the same cube of
 * `voxel_mm`, counts points and remembers the devices per voxel. Positions are kept to 1/32768 of a
 * voxel. Points are appended as compact 8-byte records and summed per 32^3-voxel cell when the
 * result is asked for (see src/fuse/voxel.c for
 * why: no voxel-keyed table larger than the caches). Buffers are kept across frames: after the
 * first frame sets nothing is allocated. Several threads can add at once when each owns one
 * partition (a point belongs to the partition of its cell). Voxel indices are 21-bit per axis:
 * points farther than 2^20 voxels from the origin are skipped like NaN points. */

typedef struct ks_voxel_grid ks_voxel_grid;

/* fields: KS_CLOUD_COLOR and/or KS_CLOUD_NORMALS to accumulate those. partitions >= 1. */
ks_status ks_voxel_grid_create(float voxel_mm, unsigned fields, int partitions, ks_voxel_grid **out, ks_error *err);
void ks_voxel_grid_destroy(ks_voxel_grid *g);
/* Empties the grid (keeps its memory). */
void ks_voxel_grid_reset(ks_voxel_grid *g);
/* Adds n points of device `device` (0..31). partition -1 keeps every point (only valid while no
 * other thread adds); partition p >= 0 keeps only the points of partition p, so T threads can each
 * pass all points with their own p. rgb / normals may be NULL (then that point's color / normal is
 * not accumulated). NaN points are skipped. Fails on a device/partition out of range (KS_EINVAL),
 * out of memory, or KS_ESTATE when the pipeline's writer threads filled the grid since the last
 * reset. */
ks_status ks_voxel_grid_add(ks_voxel_grid *g, int partition, int device, const float *x, const float *y,
                            const float *z, const uint8_t *rgb, const float *nx, const float *ny, const float *nz,
                            size_t n, ks_error *err);
/* Number of occupied voxels. Sums pending points first (so not while another thread adds). */
size_t ks_voxel_grid_count(const ks_voxel_grid *g);
/* Writes one point per voxel (mean position, mean color / normalized mean normal when accumulated,
 * weight = point count, devices mask) into out (grown as needed, count overwritten). Voxels whose
 * weight is below min_weight are dropped. Sums pending points first, like ks_voxel_grid_count.
 * Order: by partition, then by cell, not sorted. */
ks_status ks_voxel_grid_extract(const ks_voxel_grid *g, uint32_t min_weight, ks_cloud *out, ks_error *err);

/* ---------------------------------------------------------------------------------------------
 * The whole pipeline for a rig: per-device tables, one point buffer for all devices, voxel merge on
 * a few threads. */

typedef struct ks_fuse_device {
    ks_calibration calibration;   /* depth (and color, when colored) intrinsics of the mode */
    ks_extrinsics depth_to_rig;   /* the device's pose */
    char serial[KS_FUSE_SERIAL_MAX];
} ks_fuse_device;

typedef struct ks_fuse_options {
    float voxel_mm;       /* > 0; 0 means 5 mm */
    int threads;          /* >= 1; 0 means 1 */
    bool color;           /* color the points (needs color frames) */
    int color_scale;      /* MJPEG decode scale denominator: 1, 2, 4, 8 (0 means 1) */
    bool normals;         /* normals from depth-image neighbours, averaged per voxel */
    uint32_t min_weight;  /* voxels with fewer points are dropped (0 or 1 keeps all) */
    const char *table_cache_dir; /* ks_fuse_create reads/keeps the unprojection tables there
                                  * (ks_unproject_table_get); NULL: built every time */
    bool keep_points;     /* keep every device's organized points of the last run for ks_fuse_points
                           * (40 MB for 9 NFOV devices, written every run); without it (and without
                           * normals, which keep them) the points are made a few rows at a time in a
                           * per-thread buffer and only the merged cloud is kept */
} ks_fuse_options;

/* One device's images of a frame set. depth NULL = device missing from this set. */
typedef struct ks_fuse_input {
    const uint16_t *depth;       /* width*height of the depth mode */
    size_t depth_stride;         /* pixels per row, 0 means width */
    ks_image_format color_format; /* KS_FORMAT_MJPG or KS_FORMAT_BGRA32 */
    const uint8_t *color;        /* NULL = no color for this device */
    size_t color_size;           /* bytes (MJPEG) */
    int color_width, color_height; /* BGRA only */
    size_t color_stride;          /* BGRA bytes per row, 0 means 4*width */
} ks_fuse_input;

typedef struct ks_fuse_stats {
    int devices;
    size_t points[KS_FUSE_MAX_DEVICES];  /* valid points per device in this set */
    size_t points_total;
    size_t voxels;                       /* points of the merged cloud */
    size_t voxels_shared;                /* voxels seen by two or more devices (overlap) */
    /* wall time: phase 1 (depth to points, normals, color, appending to the grid), of which the
     * slowest thread's coloring; phase 2 (summing voxels into the output); the whole run */
    double ms_points, ms_color, ms_voxel, ms_total;
} ks_fuse_stats;

typedef struct ks_fuse ks_fuse;

/* Builds the unprojection tables and buffers for `count` devices (1..KS_FUSE_MAX_DEVICES). The
 * device records are copied. */
ks_status ks_fuse_create(const ks_fuse_device *devices, int count, const ks_fuse_options *opt, ks_fuse **out,
                         ks_error *err);
void ks_fuse_destroy(ks_fuse *f);
/* Fuses one frame set (inputs[count] in device order) into `out` (merged cloud, grown as needed;
 * the order of its voxels is unspecified). stats may be NULL. With keep_points (or normals) the
 * per-device organized points stay readable with ks_fuse_points until the next run. */
ks_status ks_fuse_run(ks_fuse *f, const ks_fuse_input *inputs, ks_cloud *out, ks_fuse_stats *stats, ks_error *err);
/* Organized points (rig frame) of device d from the last run: width*height each, NaN = none. Only
 * with keep_points or normals: else NULL and a size of 0. */
void ks_fuse_points(const ks_fuse *f, int d, const float **x, const float **y, const float **z, int *width,
                    int *height);

/* ---------------------------------------------------------------------------------------------
 * Occlusion fill: render a cloud into one camera's view, z-buffered (nearest wins). */

/* Renders `c` (rig frame) into a camera with intrinsics `in` placed by `rig_to_cam`. Each point
 * covers a square of side splat_mm (at least one pixel) so a voxel cloud renders without gaps.
 * depth (in->width*in->height, uint16 Z mm) is overwritten (0 = nothing); bgra (4 bytes per pixel,
 * may be NULL) receives the color of the winning point when c has color. Returns the pixels covered. */
size_t ks_render_depth(const ks_cloud *c, const ks_intrinsics *in, const ks_extrinsics *rig_to_cam, float splat_mm,
                       uint16_t *depth, uint8_t *bgra);

/* Fills the holes (0) of `depth` from `rendered` (both w*h): out = depth where depth > 0, else
 * rendered. out may alias depth. Returns the number of pixels filled. */
size_t ks_depth_fill_holes(const uint16_t *depth, const uint16_t *rendered, int w, int h, uint16_t *out);

/* ---------------------------------------------------------------------------------------------
 * Interleaved rigs: one time-ordered stream from devices offset over the period. */

typedef struct ks_stream_frame {
    int device;              /* index into the poses */
    int64_t timestamp_us;    /* device timestamp, on the common clock */
    const void *image;       /* caller's image, passed through */
    ks_extrinsics pose;      /* written by ks_interleave: that device's depth_to_rig */
} ks_stream_frame;

typedef struct ks_interleave_stats {
    size_t frames;
    double mean_gap_us, min_gap_us, max_gap_us;  /* between consecutive output frames */
    double rate_hz;                              /* frames per second of the stream */
} ks_interleave_stats;

/* Orders the n frames by timestamp (ties: device index, then input order) into out[n] with each
 * frame's pose from poses[device] (depth_to_rig). out may not alias in. stats may be NULL.
 * Fails (naming the frame) when a device index is outside 0..pose_count-1. */
ks_status ks_interleave(const ks_stream_frame *in, size_t n, const ks_rig_pose *poses, size_t pose_count,
                        ks_stream_frame *out, ks_interleave_stats *stats, ks_error *err);

/* ---------------------------------------------------------------------------------------------
 * Export. */

/* Writes c as binary little-endian PLY: x y z float, then uchar red green blue when `fields` has
 * KS_CLOUD_COLOR and c has rgb, then float nx ny nz when KS_CLOUD_NORMALS and c has normals. NaN
 * points are skipped. Written to "<path>.tmp" then renamed: the file is complete or absent. */
ks_status ks_ply_write(const char *path, const ks_cloud *c, unsigned fields, ks_error *err);
/* The same points in half the bytes (6 per point instead of 12; 9 with colour): binary PLY with
 * `short` x y z counting steps of step_mm from origin_mm, both given in header comments
 * ("comment origin_mm X Y Z", "comment step_mm S"): point = origin + step * (x, y, z). origin is
 * the multiple of voxel_mm nearest the centre of the points' bounding box; step is voxel_mm / 2^k,
 * the finest (k <= 8) that keeps every point within 32767 steps (a 6 m wide cloud of 5 mm voxels:
 * 0.156 mm, so every coordinate is within 0.08 mm). Normals become `char` nx ny nz (x 127). A cloud
 * wider than 2 x 32767 voxels is refused (KS_EINVAL). Tools that ignore the comments read the
 * geometry scaled and shifted (its shape unchanged). docs/fuse.md says why this format. */
ks_status ks_ply_write_quantized(const char *path, const ks_cloud *c, unsigned fields, double voxel_mm, ks_error *err);

/* Writes a 16-bit grayscale PNG of a depth image (w*h, values in mm), temp file + rename. */
ks_status ks_png_write_depth16(const char *path, const uint16_t *depth, int w, int h, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
