/* The frame-set directory (kinsync/frameset.h, docs/frameset-dir.md): the one writer and the one
 * reader behind `kinsync capture`, `kinsync align --export` and `kinsync calibrate DIR`. */
#define _POSIX_C_SOURCE 200809L
#include "kinsync/frameset.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/png16.h"

#define KS_FRAMESET_MAX_FILE (512u << 20)

struct ks_frameset_writer {
    char dir[2048];
    int n;
    ks_frameset_device dev[KS_MATCH_MAX_DEVICES];
    ks_ts_convention conv;
    char written_by[32];
    json_t *sets;      /* array indexed by set: {"index", "dir", "key_us", "complete", "frames": {}} */
};

typedef struct fs_image {
    char file[160];               /* relative to the directory; "" = absent */
    ks_image_format format;
    int width, height;
    uint64_t device_ts_us, system_ts_ns, exposure_us;
} fs_image;

typedef struct fs_set {
    double key_us;
    bool complete;
    uint32_t present;
    fs_image img[KS_MATCH_MAX_DEVICES][3]; /* colour, depth, IR */
    uint64_t host_ns[KS_MATCH_MAX_DEVICES];
} fs_set;

struct ks_frameset_dir {
    char dir[2048];
    int n;
    ks_frameset_device dev[KS_MATCH_MAX_DEVICES];
    ks_ts_convention conv;
    size_t nsets;
    fs_set *sets;
};

static const char *const kind_name[3] = {"color", "depth", "ir"};

static void clean_name(const char *in, char *out, size_t n)
{
    snprintf(out, n, "%s", in && *in ? in : "device");
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            *p = '_';
}

static const char *color_ext(ks_image_format f)
{
    switch (f) {
    case KS_FORMAT_MJPG: return "jpg";
    case KS_FORMAT_BGRA32: return "bgra";
    case KS_FORMAT_NV12: return "nv12";
    case KS_FORMAT_YUY2: return "yuy2";
    default: return "raw";
    }
}

static json_t *device_json(const ks_frameset_device *d, const char *calib_file)
{
    const ks_device_config *c = &d->config;
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:i}", "name", d->name, "serial", d->serial,
                          "sync_mode", ks_wired_sync_mode_name(c->wired_sync_mode), "subordinate_delay_usec",
                          (int)c->subordinate_delay_off_master_usec, "depth_delay_usec",
                          (int)c->depth_delay_off_color_usec, "color_resolution",
                          ks_color_resolution_name(c->color_resolution), "color_format",
                          ks_image_format_name(c->color_format), "depth_mode", ks_depth_mode_name(c->depth_mode),
                          "fps", ks_fps_hz(c->camera_fps));
    json_object_set_new(j, "calibration", calib_file ? json_string(calib_file) : json_null());
    if (d->recording[0])
        json_object_set_new(j, "recording", json_string(d->recording));
    return j;
}

ks_status ks_frameset_writer_open(const char *dir, const ks_frameset_device *devices, int device_count,
                                  ks_ts_convention convention, const char *written_by, ks_frameset_writer **out,
                                  ks_error *err)
{
    if (out)
        *out = NULL;
    if (!dir || !*dir || !devices || device_count < 1 || device_count > KS_MATCH_MAX_DEVICES || !out)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_writer_open: a directory and 1 to %d devices are required",
                            KS_MATCH_MAX_DEVICES);
    if (strlen(dir) > 1800)
        return ks_error_set(err, KS_EINVAL, "frame-set directory name too long: %.60s...", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ks_error_set(err, KS_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ks_error_set(err, KS_EINVAL, "%s is not a directory; give a directory for the frame sets", dir);
    char path[2200];
    snprintf(path, sizeof path, "%s/index.json", dir);
    if (stat(path, &sb) == 0)
        return ks_error_set(err, KS_ESTATE, "%s already holds frame sets (index.json); choose another directory", dir);
    ks_frameset_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->sets = json_array())) {
        free(w);
        return ks_error_set(err, KS_ENOMEM, "out of memory writing frame sets");
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->written_by, sizeof w->written_by, "%s", written_by ? written_by : "");
    w->n = device_count;
    w->conv = convention;
    ks_status st = KS_OK;
    for (int d = 0; d < device_count && st == KS_OK; d++) {
        w->dev[d] = devices[d];
        clean_name(devices[d].name, w->dev[d].name, sizeof w->dev[d].name);
        for (int e = 0; e < d; e++)
            if (!strcmp(w->dev[e].name, w->dev[d].name))
                st = ks_error_set(err, KS_EINVAL, "two devices are named %s; frame-set files need distinct names",
                                  w->dev[d].name);
        if (st == KS_OK && devices[d].calibration_json && devices[d].calibration_len) {
            snprintf(path, sizeof path, "%s/%s-calibration.json", dir, w->dev[d].name);
            st = ks_file_write_atomic(path, devices[d].calibration_json, devices[d].calibration_len, err);
        } else {
            w->dev[d].calibration_len = 0;
        }
        w->dev[d].calibration_json = NULL; /* borrowed: only whether it was written is kept */
    }
    if (st != KS_OK) {
        ks_frameset_writer_abort(w);
        return st;
    }
    *out = w;
    return KS_OK;
}

/* The manifest entry of set `set`, created (with those before it) on first use. */
static ks_status set_entry(ks_frameset_writer *w, long set, json_t **out, ks_error *err)
{
    if (set < 0 || set > 99999999)
        return ks_error_set(err, KS_EINVAL, "frame set number %ld out of range", set);
    while ((long)json_array_size(w->sets) <= set) {
        long k = (long)json_array_size(w->sets);
        char name[16];
        snprintf(name, sizeof name, "%06ld", k);
        json_array_append_new(w->sets, json_pack("{s:I, s:s, s:n, s:b, s:o}", "index", (json_int_t)k, "dir", name,
                                                 "key_us", "complete", 0, "frames", json_object()));
    }
    *out = json_array_get(w->sets, (size_t)set);
    return KS_OK;
}

static json_t *image_json(const char *rel, const ks_image *img)
{
    return json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I}", "file", rel, "format", ks_image_format_name(img->format),
                     "width", img->width, "height", img->height, "device_ts_us", (json_int_t)img->device_ts_us,
                     "system_ts_ns", (json_int_t)img->system_ts_ns, "exposure_us", (json_int_t)img->exposure_us);
}

static ks_status add_frame(ks_frameset_writer *w, long set, int device, const ks_capture *cap, uint64_t host_ns,
                           bool images, ks_error *err)
{
    if (!w || !cap || device < 0 || device >= (w ? w->n : 0))
        return ks_error_set(err, KS_EINVAL, "ks_frameset_writer_add: writer, device and capture are required");
    json_t *js = NULL;
    ks_status st = set_entry(w, set, &js, err);
    if (st != KS_OK)
        return st;
    json_t *jd = json_object();
    const ks_image *imgs[3] = {cap->color, cap->depth, cap->ir};
    if (images) { /* the set's directory (none when the images are elsewhere) */
        char sub[2100];
        snprintf(sub, sizeof sub, "%s/%06ld", w->dir, set);
        if (mkdir(sub, 0777) != 0 && errno != EEXIST)
            return ks_error_set(err, KS_EIO, "cannot create %s: %s; check free space and permissions", sub,
                                strerror(errno));
    }
    for (int k = 0; k < 3 && st == KS_OK; k++) {
        const ks_image *img = imgs[k];
        if (!img)
            continue;
        if (!images) {
            json_t *ji = image_json("", img);
            json_object_del(ji, "file");
            json_object_set_new(jd, kind_name[k], ji);
            continue;
        }
        char rel[200], path[2300];
        bool png = k > 0 && (img->format == KS_FORMAT_DEPTH16 || img->format == KS_FORMAT_IR16);
        snprintf(rel, sizeof rel, "%06ld/%s-%s.%s", set, w->dev[device].name, kind_name[k],
                 k == 0 ? color_ext(img->format) : png ? "png" : "raw");
        snprintf(path, sizeof path, "%s/%s", w->dir, rel);
        st = png ? ks_png16_write(path, img->data, img->width, img->height, (size_t)img->stride, 1, err)
                 : ks_file_write_atomic(path, img->data, img->size, err);
        if (st == KS_OK)
            json_object_set_new(jd, kind_name[k], image_json(rel, img));
    }
    if (host_ns)
        json_object_set_new(jd, "host_ns", json_integer((json_int_t)host_ns));
    json_object_set_new(json_object_get(js, "frames"), w->dev[device].name, jd);
    return st;
}

ks_status ks_frameset_writer_add(ks_frameset_writer *w, long set, int device, const ks_capture *cap,
                                 uint64_t host_ns, ks_error *err)
{
    return add_frame(w, set, device, cap, host_ns, true, err);
}

ks_status ks_frameset_writer_add_timestamps(ks_frameset_writer *w, long set, int device, const ks_capture *cap,
                                            uint64_t host_ns, ks_error *err)
{
    return add_frame(w, set, device, cap, host_ns, false, err);
}

ks_status ks_frameset_writer_set_host_ns(ks_frameset_writer *w, long set, int device, uint64_t host_ns,
                                         ks_error *err)
{
    json_t *jd = w && set >= 0 && device >= 0 && device < w->n
                     ? json_object_get(json_object_get(json_array_get(w->sets, (size_t)set), "frames"), w->dev[device].name)
                     : NULL;
    if (!jd)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_writer_set_host_ns: no frame of device %d in set %ld", device,
                            set);
    json_object_set_new(jd, "host_ns", json_integer((json_int_t)host_ns));
    return KS_OK;
}

ks_status ks_frameset_writer_set(ks_frameset_writer *w, long set, double key_us, bool complete, ks_error *err)
{
    if (!w)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_writer_set: no writer");
    json_t *js = NULL;
    ks_status st = set_entry(w, set, &js, err);
    if (st != KS_OK)
        return st;
    json_object_set_new(js, "key_us", isfinite(key_us) ? json_real(key_us) : json_null());
    json_object_set_new(js, "complete", json_boolean(complete));
    return KS_OK;
}

void ks_frameset_writer_abort(ks_frameset_writer *w)
{
    if (!w)
        return;
    json_decref(w->sets);
    free(w);
}

ks_status ks_frameset_writer_close(ks_frameset_writer *w, const char *extra_json, ks_error *err)
{
    if (!w)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_writer_close: no writer");
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string(KS_FRAMESET_SCHEMA));
    json_object_set_new(root, "written_by", json_string(w->written_by));
    json_object_set_new(root, "timestamp_convention", json_string(ks_ts_convention_name(w->conv)));
    json_object_set_new(root, "key",
                        json_string("device time of the colour exposure start with the timestamp convention and the "
                                    "planned subordinate and depth delays removed, master time base, microseconds "
                                    "(the session's matcher)"));
    json_t *devs = json_array();
    for (int d = 0; d < w->n; d++) {
        char cf[100];
        snprintf(cf, sizeof cf, "%s-calibration.json", w->dev[d].name);
        json_array_append_new(devs, device_json(&w->dev[d], w->dev[d].calibration_len ? cf : NULL));
    }
    json_object_set_new(root, "devices", devs);
    size_t i;
    json_t *js;
    json_array_foreach(w->sets, i, js)
    {
        json_t *miss = json_array(), *fr = json_object_get(js, "frames");
        for (int d = 0; d < w->n; d++)
            if (!json_object_get(fr, w->dev[d].name))
                json_array_append_new(miss, json_string(w->dev[d].name));
        json_object_set_new(js, "missing", miss);
    }
    json_object_set(root, "sets", w->sets);
    ks_status st = KS_OK;
    if (extra_json) {
        json_error_t je;
        json_t *x = json_loads(extra_json, 0, &je);
        if (!json_is_object(x))
            st = ks_error_set(err, KS_EINVAL, "ks_frameset_writer_close: extra_json is not a JSON object");
        else
            json_object_update_missing(root, x);
        json_decref(x);
    }
    if (st == KS_OK) {
        char path[2100];
        snprintf(path, sizeof path, "%s/index.json", w->dir);
        st = ks_json_write_atomic(root, path, JSON_INDENT(1), err);
    }
    json_decref(root);
    ks_frameset_writer_abort(w);
    return st;
}

/* ---- reading ---- */

void ks_frameset_dir_close(ks_frameset_dir *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        free(d->dev[i].calibration_json);
    free(d->sets);
    free(d);
}

static ks_status bad(ks_error *err, const char *index, const char *what)
{
    return ks_error_set(err, KS_EPARSE,
                        "%s: %s; a frame-set directory is written by `kinsync capture` or `kinsync align "
                        "--export` (docs/frameset-dir.md)",
                        index, what);
}

static ks_status parse_device(ks_frameset_dir *d, int i, json_t *jd, const char *index, ks_error *err)
{
    ks_frameset_device *dv = &d->dev[i];
    const char *name = json_string_value(json_object_get(jd, "name"));
    const char *serial = json_string_value(json_object_get(jd, "serial"));
    const char *sm = json_string_value(json_object_get(jd, "sync_mode"));
    const char *cr = json_string_value(json_object_get(jd, "color_resolution"));
    const char *cf = json_string_value(json_object_get(jd, "color_format"));
    const char *dm = json_string_value(json_object_get(jd, "depth_mode"));
    ks_device_config *c = &dv->config;
    if (!name || !*name || !serial || (sm && !ks_wired_sync_mode_parse(sm, &c->wired_sync_mode)) ||
        (cr && !ks_color_resolution_parse(cr, &c->color_resolution)) || (cf && !ks_image_format_parse(cf, &c->color_format)) ||
        (dm && !ks_depth_mode_parse(dm, &c->depth_mode)))
        return bad(err, index, "a device without a name or serial, or with an unknown mode");
    clean_name(name, dv->name, sizeof dv->name);
    snprintf(dv->serial, sizeof dv->serial, "%s", serial);
    c->subordinate_delay_off_master_usec = (uint32_t)json_integer_value(json_object_get(jd, "subordinate_delay_usec"));
    c->depth_delay_off_color_usec = (int32_t)json_integer_value(json_object_get(jd, "depth_delay_usec"));
    int hz = (int)json_integer_value(json_object_get(jd, "fps"));
    c->camera_fps = hz == 5 ? KS_FPS_5 : hz == 15 ? KS_FPS_15 : KS_FPS_30;
    const char *rec = json_string_value(json_object_get(jd, "recording"));
    snprintf(dv->recording, sizeof dv->recording, "%s", rec ? rec : "");
    const char *calib = json_string_value(json_object_get(jd, "calibration"));
    if (calib) {
        char path[2300];
        if (strchr(calib, '/'))
            return bad(err, index, "a calibration file outside the directory");
        snprintf(path, sizeof path, "%s/%s", d->dir, calib);
        if (ks_file_read_all(path, 16u << 20, &dv->calibration_json, &dv->calibration_len, err) != KS_OK)
            return ks_error_prefix(err, KS_ENOTFOUND, "frame-set directory %s: device %s's calibration", d->dir, name);
    }
    return KS_OK;
}

static bool parse_image(json_t *ji, fs_image *im)
{
    const char *file = json_string_value(json_object_get(ji, "file"));

    const char *fmt = json_string_value(json_object_get(ji, "format"));
    if (!file || !fmt || strlen(file) >= sizeof im->file || strstr(file, "..") || file[0] == '/' ||
        !ks_image_format_parse(fmt, &im->format))
        return false;
    snprintf(im->file, sizeof im->file, "%s", file);
    im->width = (int)json_integer_value(json_object_get(ji, "width"));
    im->height = (int)json_integer_value(json_object_get(ji, "height"));
    im->device_ts_us = (uint64_t)json_integer_value(json_object_get(ji, "device_ts_us"));
    im->system_ts_ns = (uint64_t)json_integer_value(json_object_get(ji, "system_ts_ns"));
    im->exposure_us = (uint64_t)json_integer_value(json_object_get(ji, "exposure_us"));
    return im->width > 0 && im->height > 0 && im->width <= 16384 && im->height <= 16384;
}

static ks_status parse_sets(ks_frameset_dir *d, json_t *sets, const char *index, ks_error *err)
{
    d->nsets = json_array_size(sets);
    d->sets = calloc(d->nsets ? d->nsets : 1, sizeof *d->sets);
    if (!d->sets)
        return ks_error_set(err, KS_ENOMEM, "out of memory reading %s", index);
    for (size_t k = 0; k < d->nsets; k++) {
        json_t *js = json_array_get(sets, k), *fr = json_object_get(js, "frames");
        fs_set *s = &d->sets[k];
        json_t *key = json_object_get(js, "key_us");
        s->key_us = json_is_number(key) ? json_number_value(key) : NAN;
        s->complete = json_is_true(json_object_get(js, "complete"));
        if (!json_is_object(fr))
            return bad(err, index, "a frame set without its \"frames\"");
        for (int i = 0; i < d->n; i++) {
            json_t *jd = json_object_get(fr, d->dev[i].name);
            if (!jd)
                continue;
            s->present |= 1u << i;
            s->host_ns[i] = (uint64_t)json_integer_value(json_object_get(jd, "host_ns"));
            for (int t = 0; t < 3; t++) {
                json_t *ji = json_object_get(jd, kind_name[t]);
                if (ji && !json_object_get(ji, "file") && json_object_get(ji, "device_ts_us"))
                    return ks_error_set(err, KS_EINVAL,
                                        "%s: the images of these frame sets are in the devices' recordings (%s: %s), "
                                        "not in the directory (capture --mkv); give the recordings (.mkv) instead",
                                        index, d->dev[i].name, d->dev[i].recording[0] ? d->dev[i].recording : "?");
                if (ji && !parse_image(ji, &s->img[i][t])) {
                    char what[200];
                    snprintf(what, sizeof what, "set %zu, device %s: a %s image without file, format or size", k,
                             d->dev[i].name, kind_name[t]);
                    return bad(err, index, what);
                }
            }
        }
    }
    return KS_OK;
}

ks_status ks_frameset_dir_open(const char *dir, ks_frameset_dir **out, ks_error *err)
{
    if (!dir || !out)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_dir_open: directory and output are required");
    *out = NULL;
    char index[2100];
    snprintf(index, sizeof index, "%s/index.json", dir);
    struct stat sb;
    if (stat(index, &sb) != 0)
        return ks_error_set(err, KS_ENOTFOUND,
                            "%s has no index.json, so it is not a frame-set directory (or its writing was "
                            "interrupted); write one with `kinsync capture ... --out DIR` or `kinsync align ... "
                            "--export DIR` (docs/frameset-dir.md)",
                            dir);
    json_error_t je;
    json_t *root = json_load_file(index, 0, &je);
    if (!root) {
        char what[300];
        snprintf(what, sizeof what, "not valid JSON (line %d: %s)", je.line, je.text);
        return bad(err, index, what);
    }
    ks_status st = KS_OK;
    const char *schema = json_string_value(json_object_get(root, "schema"));
    json_t *devs = json_object_get(root, "devices"), *sets = json_object_get(root, "sets");
    const char *conv = json_string_value(json_object_get(root, "timestamp_convention"));
    ks_frameset_dir *d = calloc(1, sizeof *d);
    if (!d)
        st = ks_error_set(err, KS_ENOMEM, "out of memory reading %s", index);
    else if (!schema || strcmp(schema, KS_FRAMESET_SCHEMA)) {
        char what[200];
        snprintf(what, sizeof what, "schema is %s%.60s%s, not \"%s\"", schema ? "\"" : "", schema ? schema : "missing",
                 schema ? "\"" : "", KS_FRAMESET_SCHEMA);
        st = bad(err, index, what);
    } else if (!json_is_array(devs) || json_array_size(devs) < 1 || json_array_size(devs) > KS_MATCH_MAX_DEVICES ||
               !json_is_array(sets))
        st = bad(err, index, "no \"devices\" (1 to 32) or no \"sets\"");
    if (st == KS_OK) {
        snprintf(d->dir, sizeof d->dir, "%s", dir);
        d->n = (int)json_array_size(devs);
        if (!conv || !ks_ts_convention_parse(conv, &d->conv))
            d->conv = KS_TS_SEED;
        for (int i = 0; i < d->n && st == KS_OK; i++)
            st = parse_device(d, i, json_array_get(devs, (size_t)i), index, err);
        for (int i = 0; i < d->n && st == KS_OK; i++)
            for (int e = 0; e < i && st == KS_OK; e++)
                if (!strcmp(d->dev[i].name, d->dev[e].name))
                    st = bad(err, index, "two devices with one name");
        if (st == KS_OK)
            st = parse_sets(d, sets, index, err);
    }
    json_decref(root);
    if (st != KS_OK) {
        ks_frameset_dir_close(d);
        return st;
    }
    *out = d;
    return KS_OK;
}

int ks_frameset_dir_device_count(const ks_frameset_dir *d)
{
    return d ? d->n : 0;
}

const ks_frameset_device *ks_frameset_dir_device(const ks_frameset_dir *d, int i)
{
    return d && i >= 0 && i < d->n ? &d->dev[i] : NULL;
}

ks_ts_convention ks_frameset_dir_convention(const ks_frameset_dir *d)
{
    return d ? d->conv : KS_TS_SEED;
}

size_t ks_frameset_dir_set_count(const ks_frameset_dir *d)
{
    return d ? d->nsets : 0;
}

static void free_data(ks_image *img, void *ctx)
{
    (void)img;
    free(ctx);
}

/* One image file as the manifest describes it. */
static ks_status load_image(const ks_frameset_dir *d, const fs_image *im, ks_image **out, ks_error *err)
{
    char path[2300];
    snprintf(path, sizeof path, "%s/%s", d->dir, im->file);
    size_t len = strlen(im->file);
    uint8_t *data = NULL;
    size_t size = 0;
    int stride = 0, w = im->width, h = im->height;
    ks_status st;
    if (len > 4 && !strcmp(im->file + len - 4, ".png")) {
        uint16_t *px = NULL;
        st = ks_png16_read(path, &px, &w, &h, err);
        if (st == KS_OK && (w != im->width || h != im->height)) {
            free(px);
            return ks_error_set(err, KS_EPARSE, "%s is %dx%d, index.json says %dx%d", path, w, h, im->width,
                                im->height);
        }
        data = (uint8_t *)px;
        stride = w * 2;
        size = (size_t)stride * (size_t)h;
    } else {
        char *b = NULL;
        st = ks_file_read_all(path, KS_FRAMESET_MAX_FILE, &b, &size, err);
        data = (uint8_t *)b;
        size_t want = 0;
        switch (im->format) {
        case KS_FORMAT_MJPG: break;
        case KS_FORMAT_NV12: want = (size_t)w * (size_t)h * 3 / 2, stride = w; break;
        case KS_FORMAT_YUY2: want = (size_t)w * (size_t)h * 2, stride = w * 2; break;
        case KS_FORMAT_BGRA32: want = (size_t)w * (size_t)h * 4, stride = w * 4; break;
        case KS_FORMAT_CUSTOM8: want = (size_t)w * (size_t)h, stride = w; break;
        default: want = (size_t)w * (size_t)h * 2, stride = w * 2; break;
        }
        if (st == KS_OK && want && size != want) {
            free(data);
            return ks_error_set(err, KS_EPARSE, "%s holds %zu bytes, a %dx%d %s image has %zu; truncated?", path, size,
                                w, h, ks_image_format_name(im->format), want);
        }
    }
    if (st != KS_OK)
        return ks_error_prefix(err, st, "frame-set directory %s", d->dir);
    ks_image *img = ks_image_wrap(im->format, w, h, stride, data, size, free_data, data);
    if (!img) {
        free(data);
        return ks_error_set(err, KS_ENOMEM, "out of memory reading %s", path);
    }
    img->device_ts_us = im->device_ts_us;
    img->system_ts_ns = im->system_ts_ns;
    img->exposure_us = im->exposure_us;
    *out = img;
    return KS_OK;
}

ks_status ks_frameset_dir_load(const ks_frameset_dir *d, size_t set, ks_session_set *out, ks_error *err)
{
    if (!d || !out || set >= d->nsets)
        return ks_error_set(err, KS_EINVAL, "ks_frameset_dir_load: no frame set %zu", set);
    memset(out, 0, sizeof *out);
    const fs_set *s = &d->sets[set];
    out->set.index = set;
    out->set.key_us = s->key_us;
    out->set.complete = s->complete;
    ks_status st = KS_OK;
    for (int i = 0; i < d->n && st == KS_OK; i++) {
        if (!(s->present & (1u << i)))
            continue;
        ks_capture *c = ks_capture_create();
        if (!c) {
            st = ks_error_set(err, KS_ENOMEM, "out of memory reading frame set %zu", set);
            break;
        }
        ks_image **slot[3] = {&c->color, &c->depth, &c->ir};
        for (int t = 0; t < 3 && st == KS_OK; t++)
            if (s->img[i][t].file[0])
                st = load_image(d, &s->img[i][t], slot[t], err);
        ks_match_frame *f = &out->set.frames[i];
        f->device = i;
        f->user = c;
        f->has_color = c->color != NULL;
        f->has_depth = c->depth != NULL;
        f->color_ts_us = c->color ? c->color->device_ts_us : 0;
        f->depth_ts_us = c->depth ? c->depth->device_ts_us : 0;
        f->key_us = s->key_us;
        f->color_start_us = NAN;
        f->depth_center_us = NAN;
        out->set.present_mask |= 1u << i;
        out->set.present++;
        out->host_ns[i] = s->host_ns[i];
    }
    out->set.missing_mask = ((d->n == 32 ? 0u : 1u << d->n) - 1u) & ~out->set.present_mask;
    if (st != KS_OK)
        ks_session_set_release(out);
    return st;
}
