/* calib/board.c: AprilGrid board description (YAML), geometry and drawing (SVG, PNG). */
#include "kinsync/board.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib/board_family.h"
#include "util/fileio.h"
#include "util/yaml.h"

static const char *const family_names[KS_TAG_FAMILY_COUNT] = {"tag36h11", "tagStandard41h12"};

const char *ks_tag_family_name(ks_tag_family f)
{
    return (unsigned)f < KS_TAG_FAMILY_COUNT ? family_names[f] : "unknown";
}

bool ks_tag_family_parse(const char *s, ks_tag_family *out)
{
    for (int i = 0; s && i < KS_TAG_FAMILY_COUNT; i++)
        if (!strcasecmp(s, family_names[i])) {
            *out = (ks_tag_family)i;
            return true;
        }
    return false;
}

void ks_board_default(ks_board *b)
{
    memset(b, 0, sizeof *b);
    b->rows = 6;
    b->columns = 6;
    b->tag_size_mm = 80.0;
    b->spacing = 0.3;
    b->family = KS_TAG_36H11;
    b->first_id = 0;
    b->margin_mm = -1; /* automatic */
}

static double margin(const ks_board *b)
{
    if (b->margin_mm >= 0)
        return b->margin_mm;
    double gap = b->tag_size_mm * b->spacing;
    return gap > 10.0 ? gap : 10.0;
}

/* Quiet zone a family needs around the detected square, as a fraction of the tag size. */
static double min_spacing(ks_tag_family f)
{
    const ks_family_info *fi = ks_family_get(f);
    if (!fi)
        return 0.0;
    return (double)(fi->total_width - fi->border_width) / fi->border_width;
}

ks_status ks_board_validate(const ks_board *b, ks_error *err)
{
    if (!b)
        return ks_error_set(err, KS_EINVAL, "board: NULL");
    if (b->rows < 1 || b->columns < 1 || b->rows > 100 || b->columns > 100)
        return ks_error_set(err, KS_EINVAL, "board: %dx%d tags; rows and columns must be 1..100", b->rows,
                            b->columns);
    if (!(b->tag_size_mm >= 1.0 && b->tag_size_mm <= 2000.0))
        return ks_error_set(err, KS_EINVAL, "board: tag size %g mm; use 1 mm .. 2 m (tag_size is in metres)",
                            b->tag_size_mm);
    if ((unsigned)b->family >= KS_TAG_FAMILY_COUNT)
        return ks_error_set(err, KS_EINVAL, "board: unknown tag family %d", (int)b->family);
    const ks_family_info *fi = ks_family_get(b->family);
    if (!fi)
        return ks_error_set(err, KS_EUNSUPPORTED, "board: libapriltag is not available; install libapriltag-dev "
                            "(scripts/setup.sh) and rebuild");
    double ms = min_spacing(b->family);
    if (!(b->spacing >= ms - 1e-9 && b->spacing <= 10.0))
        return ks_error_set(err, KS_EINVAL,
                            "board: spacing %g is too small for %s: its tags need %d of %d modules of quiet zone, "
                            "so spacing must be at least %.3f (and at most 10)",
                            b->spacing, family_names[b->family], fi->total_width - fi->border_width,
                            fi->border_width, ms);
    if (b->first_id < 0 || (long)b->first_id + (long)b->rows * b->columns > fi->ncodes)
        return ks_error_set(err, KS_EINVAL, "board: ids %d..%ld do not exist in %s (it has %d tags); use a smaller "
                            "grid or first_id",
                            b->first_id, (long)b->first_id + (long)b->rows * b->columns - 1,
                            family_names[b->family], fi->ncodes);
    if (b->margin_mm > 1000.0)
        return ks_error_set(err, KS_EINVAL, "board: margin %g mm is larger than 1 m", b->margin_mm);
    return KS_OK;
}

static ks_status from_yaml(ks_yaml *y, ks_board *b, ks_error *err)
{
    ks_board_default(b);
    yaml_node_t *root = ks_yaml_root(y);
    if (!root)
        return ks_error_set(err, KS_EPARSE, "%s: empty board file; see examples/boards/aprilgrid-6x6.yaml", y->name);
    ks_status st = ks_yaml_expect_map(y, root, "board", err);
    if (st)
        return st;
    /* accept an optional top-level `board:` wrapper */
    yaml_node_t *inner = ks_yaml_map_get(y, root, "board");
    if (inner && ks_yaml_map_size(root) == 1) {
        if ((st = ks_yaml_expect_map(y, inner, "board", err)))
            return st;
        root = inner;
    }
    static const char *const keys[] = {"rows", "columns", "tag_size", "spacing", "family", "first_id", "margin",
                                       NULL};
    if ((st = ks_yaml_check_keys(y, root, keys, "board", err)))
        return st;
    yaml_node_t *n;
    long long v;
    double d;
    if ((n = ks_yaml_map_get(y, root, "rows"))) {
        if ((st = ks_yaml_get_int(y, n, "rows", 1, 100, &v, err)))
            return st;
        b->rows = (int)v;
    }
    if ((n = ks_yaml_map_get(y, root, "columns"))) {
        if ((st = ks_yaml_get_int(y, n, "columns", 1, 100, &v, err)))
            return st;
        b->columns = (int)v;
    }
    if ((n = ks_yaml_map_get(y, root, "tag_size"))) {
        if ((st = ks_yaml_get_double(y, n, "tag_size (metres)", 0.001, 2.0, &d, err)))
            return st;
        b->tag_size_mm = d * 1000.0;
    }
    if ((n = ks_yaml_map_get(y, root, "spacing"))) {
        if ((st = ks_yaml_get_double(y, n, "spacing (gap / tag size)", 0.0, 10.0, &d, err)))
            return st;
        b->spacing = d;
    }
    if ((n = ks_yaml_map_get(y, root, "margin"))) {
        if ((st = ks_yaml_get_double(y, n, "margin (metres)", 0.0, 1.0, &d, err)))
            return st;
        b->margin_mm = d * 1000.0;
    }
    if ((n = ks_yaml_map_get(y, root, "first_id"))) {
        if ((st = ks_yaml_get_int(y, n, "first_id", 0, 100000, &v, err)))
            return st;
        b->first_id = (int)v;
    }
    if ((n = ks_yaml_map_get(y, root, "family"))) {
        char name[64];
        if ((st = ks_yaml_get_string(y, n, "family", name, sizeof name, err)))
            return st;
        if (!ks_tag_family_parse(name, &b->family))
            return ks_yaml_error(y, n, err, KS_EPARSE, "family \"%s\" is not supported; use tag36h11 (default) or "
                                 "tagStandard41h12", name);
    }
    st = ks_board_validate(b, err);
    if (st)
        return ks_error_prefix(err, st, "%s", y->name);
    return KS_OK;
}

ks_status ks_board_load(const char *path, ks_board *b, ks_error *err)
{
    ks_yaml y;
    ks_status st = ks_yaml_load_file(path, &y, err);
    if (st)
        return st;
    st = from_yaml(&y, b, err);
    ks_yaml_free(&y);
    return st;
}

ks_status ks_board_load_string(const char *text, size_t len, const char *name, ks_board *b, ks_error *err)
{
    ks_yaml y;
    ks_status st = ks_yaml_load_string(text, len, name ? name : "board", &y, err);
    if (st)
        return st;
    st = from_yaml(&y, b, err);
    ks_yaml_free(&y);
    return st;
}

int ks_board_tag_count(const ks_board *b)
{
    return b->rows * b->columns;
}

bool ks_board_has_tag(const ks_board *b, int tag_id)
{
    return tag_id >= b->first_id && tag_id < b->first_id + b->rows * b->columns;
}

/* libapriltag reports corners in the order (-1,+1), (+1,+1), (+1,-1), (-1,-1) of its tag frame,
 * whose y axis points up the printed tag: bottom-left, bottom-right, top-right, top-left as printed. */
static const int corner_dx[4] = {0, 1, 1, 0};
static const int corner_dy[4] = {1, 1, 0, 0};

bool ks_board_corner(const ks_board *b, int tag_id, int corner, double p[3])
{
    if (!ks_board_has_tag(b, tag_id) || corner < 0 || corner > 3)
        return false;
    int i = tag_id - b->first_id, r = i / b->columns, c = i % b->columns;
    double pitch = b->tag_size_mm * (1.0 + b->spacing);
    p[0] = c * pitch + corner_dx[corner] * b->tag_size_mm;
    p[1] = r * pitch + corner_dy[corner] * b->tag_size_mm;
    p[2] = 0.0;
    return true;
}

void ks_board_sheet_size(const ks_board *b, double *w, double *h)
{
    double pitch = b->tag_size_mm * (1.0 + b->spacing), m = margin(b);
    *w = (b->columns - 1) * pitch + b->tag_size_mm + 2 * m;
    *h = (b->rows - 1) * pitch + b->tag_size_mm + 2 * m;
}

void ks_board_sheet_origin(const ks_board *b, double *x, double *y)
{
    *x = -margin(b);
    *y = -margin(b);
}

int ks_board_intensity(const ks_board *b, double x, double y)
{
    const ks_family_info *fi = ks_family_get(b->family);
    if (!fi)
        return -2;
    double m = margin(b), sw, sh;
    ks_board_sheet_size(b, &sw, &sh);
    if (!(x >= -m && y >= -m && x < sw - m && y < sh - m))
        return -1;
    double pitch = b->tag_size_mm * (1.0 + b->spacing);
    double module = b->tag_size_mm / fi->border_width;
    double off = (fi->total_width - fi->border_width) / 2.0 * module; /* tag image starts this far before the square */
    /* nearest tag whose image may contain the point */
    int c = (int)floor((x + off) / pitch), r = (int)floor((y + off) / pitch);
    if (c < 0 || r < 0 || c >= b->columns || r >= b->rows)
        return 255;
    double lx = x - c * pitch + off, ly = y - r * pitch + off;
    int mx = (int)floor(lx / module), my = (int)floor(ly / module);
    if (mx < 0 || my < 0 || mx >= fi->total_width || my >= fi->total_width)
        return 255;
    return ks_family_module_white(fi, b->first_id + r * b->columns + c, mx, my) ? 255 : 0;
}

/* ---- drawing ---- */


ks_status ks_board_write_svg(const ks_board *b, const char *path, ks_error *err)
{
    ks_status st = ks_board_validate(b, err);
    if (st)
        return st;
    const ks_family_info *fi = ks_family_get(b->family);
    double sw, sh, ox, oy;
    ks_board_sheet_size(b, &sw, &sh);
    ks_board_sheet_origin(b, &ox, &oy);
    ks_atomic_file af;
    if ((st = ks_atomic_open(&af, path, err)))
        return st;
    FILE *f = af.f;
    double pitch = b->tag_size_mm * (1.0 + b->spacing), module = b->tag_size_mm / fi->border_width;
    int T = fi->total_width;
    double off = (T - fi->border_width) / 2.0 * module;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<!-- kinsync AprilGrid: %dx%d %s, tag %.3f mm, spacing %.3f, first id %d. Print at 100%% scale. -->\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.4fmm\" height=\"%.4fmm\" viewBox=\"%.4f %.4f %.4f "
            "%.4f\" shape-rendering=\"crispEdges\">\n"
            "<rect x=\"%.4f\" y=\"%.4f\" width=\"%.4f\" height=\"%.4f\" fill=\"#fff\"/>\n<g fill=\"#000\">\n",
            b->rows, b->columns, family_names[b->family], b->tag_size_mm, b->spacing, b->first_id, sw, sh, ox, oy,
            sw, sh, ox, oy, sw, sh);
    for (int r = 0; r < b->rows; r++)
        for (int c = 0; c < b->columns; c++) {
            int id = b->first_id + r * b->columns + c;
            double tx = c * pitch - off, ty = r * pitch - off;
            fprintf(f, "<!-- tag %d -->\n", id);
            for (int my = 0; my < T; my++)
                for (int mx = 0; mx < T;) {
                    if (ks_family_module_white(fi, id, mx, my)) {
                        mx++;
                        continue;
                    }
                    int run = 1;
                    while (mx + run < T && !ks_family_module_white(fi, id, mx + run, my))
                        run++;
                    fprintf(f, "<rect x=\"%.4f\" y=\"%.4f\" width=\"%.4f\" height=\"%.4f\"/>\n", tx + mx * module,
                            ty + my * module, run * module, module);
                    mx += run;
                }
        }
    fprintf(f, "</g>\n<text x=\"%.4f\" y=\"%.4f\" font-size=\"%.2f\" font-family=\"sans-serif\" fill=\"#888\">"
            "kinsync %dx%d %s tag %.1f mm spacing %.2f first id %d</text>\n</svg>\n",
            ox + 2, oy + sh - 2, fmin(margin(b) * 0.5, 6.0), b->rows, b->columns, family_names[b->family],
            b->tag_size_mm, b->spacing, b->first_id);
    return ks_atomic_commit(&af, true, err);
}

ks_status ks_board_write_png(const ks_board *b, const char *path, double dpi, ks_error *err)
{
    ks_status st = ks_board_validate(b, err);
    if (st)
        return st;
    if (!(dpi >= 10 && dpi <= 1200))
        return ks_error_set(err, KS_EINVAL, "board PNG: %g dpi; use 10..1200", dpi);
    double sw, sh, ox, oy;
    ks_board_sheet_size(b, &sw, &sh);
    ks_board_sheet_origin(b, &ox, &oy);
    double px_per_mm = dpi / 25.4;
    long W = lround(sw * px_per_mm), H = lround(sh * px_per_mm);
    if (W < 1 || H < 1 || W > 60000 || H > 60000)
        return ks_error_set(err, KS_EINVAL, "board PNG: %ldx%ld pixels; lower --dpi", W, H);
    ks_atomic_file af;
    if ((st = ks_atomic_open(&af, path, err)))
        return st;
    FILE *f = af.f;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *row = malloc((size_t)W);
    bool ok = png && info && row;
    if (ok && setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_uint_32 ppm = (png_uint_32)lround(px_per_mm * 1000.0);
        png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
        png_write_info(png, info);
        for (long y = 0; y < H; y++) {
            double by = oy + (y + 0.5) / px_per_mm;
            for (long x = 0; x < W; x++) {
                int v = ks_board_intensity(b, ox + (x + 0.5) / px_per_mm, by);
                row[x] = (uint8_t)(v < 0 ? 255 : v);
            }
            png_write_row(png, row);
        }
        png_write_end(png, NULL);
    } else {
        ok = false;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(row);
    return ks_atomic_commit(&af, ok, err);
}
