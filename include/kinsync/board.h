/* kinsync/board.h: the calibration target (an AprilGrid: rows x columns of AprilTags with a gap
 * between them), its YAML description, its printable drawing, and tag detection in images.
 *
 * Board frame (docs/board.md): origin at the top-left corner of the black square of the top-left
 * tag as printed, x to the right, y down the page, z into the board (right-handed; a camera
 * looking straight at the printed face has the identity rotation). Units: millimetres. Tag ids
 * run row by row from the top-left: id = first_id + row * columns + column.
 * Corner index k of a tag follows libapriltag's detection order; ks_board_corner gives its
 * position, so detections and board points always agree. */
#ifndef KINSYNC_BOARD_H
#define KINSYNC_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinsync/calibration.h"
#include "kinsync/device.h"
#include "kinsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_tag_family {
    KS_TAG_36H11 = 0,        /* "tag36h11" (default; the AprilGrid of Kalibr) */
    KS_TAG_STANDARD41H12,    /* "tagStandard41h12" */
    KS_TAG_FAMILY_COUNT
} ks_tag_family;

typedef struct ks_board {
    int rows, columns;
    double tag_size_mm;      /* side of a tag's detected square (its black border), mm */
    double spacing;          /* gap between two tags as a fraction of tag_size */
    ks_tag_family family;
    int first_id;            /* id of the top-left tag */
    double margin_mm;        /* white margin around the grid in the drawing */
} ks_board;

/* Defaults: 6x6 tag36h11, 80 mm tags, spacing 0.3, first id 0, margin = one gap (at least 10 mm). */
void ks_board_default(ks_board *b);

/* Reads a board YAML file (docs/board.md): keys rows, columns, tag_size (metres), spacing (ratio),
 * family, first_id, margin (metres). Unknown keys, out-of-range values and a spacing too small for
 * the family's quiet zone are errors naming FILE:LINE, the key and the fix. */
ks_status ks_board_load(const char *path, ks_board *b, ks_error *err);
ks_status ks_board_load_string(const char *text, size_t len, const char *name, ks_board *b, ks_error *err);
/* Checks a board built in code (same rules as the loader). */
ks_status ks_board_validate(const ks_board *b, ks_error *err);

const char *ks_tag_family_name(ks_tag_family f);            /* "tag36h11", "tagStandard41h12" */
bool ks_tag_family_parse(const char *s, ks_tag_family *out);

int ks_board_tag_count(const ks_board *b);
/* True if id is one of the board's tags. */
bool ks_board_has_tag(const ks_board *b, int tag_id);
/* Board-frame position (mm, z = 0) of corner 0..3 of a tag; false for an unknown tag/corner. */
bool ks_board_corner(const ks_board *b, int tag_id, int corner, double p[3]);
/* Size of the printed sheet (grid plus margins), mm. */
void ks_board_sheet_size(const ks_board *b, double *width_mm, double *height_mm);
/* Board-frame coordinates of the sheet's top-left corner (negative: the margin). */
void ks_board_sheet_origin(const ks_board *b, double *x_mm, double *y_mm);

/* Printed intensity (0 black .. 255 white) at a board point; points off the sheet give -1.
 * Needs the family tables: returns -2 when libapriltag is not available. */
int ks_board_intensity(const ks_board *b, double x_mm, double y_mm);

/* Writes the printable target, true to scale (mm units in the SVG; `dpi` pixels per inch in the
 * PNG, grayscale). Written to a temporary name and renamed when complete. */
ks_status ks_board_write_svg(const ks_board *b, const char *path, ks_error *err);
ks_status ks_board_write_png(const ks_board *b, const char *path, double dpi, ks_error *err);

/* Renders what a camera sees of the printed board (synthetic views for tests, benchmarks and the
 * simulator): an 8-bit gray image of in->width x in->height with supersample^2 samples per pixel
 * (1..8), through the full lens model. board_to_camera maps board-frame mm into the camera frame.
 * Pixels that see no sheet get `background`. gray must hold stride * height bytes. */
ks_status ks_board_render(const ks_board *b, const ks_intrinsics *in, const ks_extrinsics *board_to_camera,
                          int supersample, uint8_t background, uint8_t *gray, int stride, ks_error *err);

/* ---- detection ---- */

typedef struct ks_corner_obs {
    int tag_id;
    int corner;              /* 0..3, as ks_board_corner */
    double uv[2];            /* pixel, k4a convention (centre of pixel (0,0) is (0,0)) */
} ks_corner_obs;

typedef struct ks_detections {
    ks_corner_obs *corners;  /* 4 per accepted tag, malloc'd; free with ks_detections_free */
    int count;               /* number of corners */
    int tags;                /* accepted tags */
    int rejected;            /* tags of the board's family rejected (hamming, margin, unknown id) */
} ks_detections;

typedef struct ks_detector_options {
    double min_decision_margin;  /* reject weaker decodes (default 30) */
    int max_hamming;             /* corrected bits allowed (default 0) */
    double quad_decimate;        /* 0 = automatic: 1 up to 1536 px wide, 2 above */
    int threads;                 /* default 1 */
} ks_detector_options;

typedef struct ks_detector ks_detector;

void ks_detector_options_default(ks_detector_options *o);
/* Creates a detector for the board's family. KS_EUNSUPPORTED when built without libapriltag. */
ks_status ks_detector_create(const ks_board *b, const ks_detector_options *o, ks_detector **out, ks_error *err);
void ks_detector_destroy(ks_detector *d);
/* Detects the board's tags in an 8-bit grayscale image. *out is overwritten (free it after). */
ks_status ks_detect_gray(ks_detector *d, const uint8_t *gray, int width, int height, int stride,
                         ks_detections *out, ks_error *err);
/* Same on a device image: MJPG (decoded with libturbojpeg), BGRA32, NV12, YUY2 (luma), IR16 (scaled
 * to 8 bits) or CUSTOM8 (gray). */
ks_status ks_detect_image(ks_detector *d, const ks_image *img, ks_detections *out, ks_error *err);
void ks_detections_free(ks_detections *det);

#ifdef __cplusplus
}
#endif
#endif
