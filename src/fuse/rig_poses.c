/* fuse/rig_poses.c: reads rig-calibration.json, the calibration solver's result, into one pose per
 * device. Kept apart from the rest of the fusion code so that it follows the solver's format alone.
 *
 * The format is the calibration module's (docs/rig-calibration.md): "format":
 * "kinsync-rig-calibration", "version": 1, and an array "devices", each entry with "serial" and the
 * transforms "depth_to_rig" and "color_to_rig" (x_rig = R x_camera + t), each an object with a
 * row-major rotation "R" (9 numbers) and a translation "t" (3 numbers, millimetres). Everything else
 * (uncertainties, solve statistics) is ignored here. Tolerated for hand-written files: "rotation" /
 * "translation" spellings, "translation_m" in metres, and a missing color_to_rig (identity). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/fuse.h"
#include "util/fileio.h"

static json_t *get_any(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return v ? v : (b ? json_object_get(o, b) : NULL);
}

static int read_numbers(json_t *a, double *out, size_t n)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_number(v))
            return -1;
        out[i] = json_number_value(v);
        if (!isfinite(out[i]))
            return -1;
    }
    return 0;
}

static ks_status read_extrinsics(json_t *o, const char *name, const char *dev, const char *key, ks_extrinsics *e,
                                 ks_error *err)
{
    if (!json_is_object(o))
        return ks_error_set(err, KS_EPARSE, "%s: device %s: \"%s\" must be an object with R (9 numbers) and t (3)",
                            name, dev, key);
    json_t *r = get_any(o, "R", "rotation");
    if (read_numbers(r, e->R, 9) != 0)
        return ks_error_set(err, KS_EPARSE, "%s: device %s: %s.R must be 9 numbers (row-major rotation)", name, dev,
                            key);
    double scale = 1.0;
    json_t *t = get_any(o, "t", "translation");
    if (!t && (t = json_object_get(o, "translation_m")))
        scale = 1000.0;
    if (read_numbers(t, e->t, 3) != 0)
        return ks_error_set(err, KS_EPARSE, "%s: device %s: %s.t must be 3 numbers (translation, mm)", name, dev,
                            key);
    for (int i = 0; i < 3; i++)
        e->t[i] *= scale;
    /* a rotation must be orthonormal to ~1e-3; anything else is a corrupt or foreign file */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double d = 0;
            for (int k = 0; k < 3; k++)
                d += e->R[3 * i + k] * e->R[3 * j + k];
            if (fabs(d - (i == j)) > 1e-3)
                return ks_error_set(err, KS_EPARSE, "%s: device %s: %s.R is not a rotation (rows not orthonormal)",
                                    name, dev, key);
        }
    return KS_OK;
}

ks_status ks_rig_poses_parse(const char *json, size_t len, const char *name, ks_rig_pose **out, size_t *count,
                             ks_error *err)
{
    *out = NULL;
    *count = 0;
    if (!name)
        name = "rig calibration";
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ks_error_set(err, KS_EPARSE,
                            "%s: not valid JSON (line %d: %s); give the rig-calibration.json that 'kinsync "
                            "calibrate' writes",
                            name, je.line, je.text);
    ks_status st = KS_OK;
    const char *format = json_string_value(json_object_get(root, "format"));
    json_t *version = json_object_get(root, "version");
    if (!format || strcmp(format, "kinsync-rig-calibration") != 0) {
        st = ks_error_set(err, KS_EPARSE,
                          "%s: \"format\" is not \"kinsync-rig-calibration\"; give the rig-calibration.json that "
                          "'kinsync calibrate' writes",
                          name);
        goto done;
    }
    if (!json_is_integer(version) || json_integer_value(version) != 1) {
        st = ks_error_set(err, KS_EUNSUPPORTED,
                          "%s: rig calibration \"version\" %s is not supported (this kinsync reads version 1); "
                          "update kinsync or re-run 'kinsync calibrate'",
                          name, json_is_integer(version) ? "other than 1" : "missing");
        goto done;
    }
    json_t *devs = get_any(root, "devices", "cameras");
    size_t n = json_array_size(devs);
    if (!json_is_array(devs) || n == 0) {
        st = ks_error_set(err, KS_EPARSE, "%s: no \"devices\" array; is this the rig-calibration.json that "
                                          "'kinsync calibrate' writes?", name);
        goto done;
    }
    ks_rig_pose *p = calloc(n, sizeof *p);
    if (!p) {
        st = ks_error_set(err, KS_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    for (size_t i = 0; i < n && !st; i++) {
        json_t *d = json_array_get(devs, i);
        const char *serial = json_string_value(json_object_get(d, "serial"));
        if (!serial || !*serial || strlen(serial) >= KS_FUSE_SERIAL_MAX) {
            st = ks_error_set(err, KS_EPARSE, "%s: devices[%zu] has no \"serial\" string (1..%d characters)", name, i,
                              KS_FUSE_SERIAL_MAX - 1);
            break;
        }
        snprintf(p[i].serial, sizeof p[i].serial, "%s", serial);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p[j].serial, serial)) {
                st = ks_error_set(err, KS_EPARSE, "%s: device %s appears twice", name, serial);
                break;
            }
        if (st)
            break;
        json_t *dr = json_object_get(d, "depth_to_rig");
        if (!dr) {
            st = ks_error_set(err, KS_EPARSE, "%s: device %s has no \"depth_to_rig\" pose", name, serial);
            break;
        }
        st = read_extrinsics(dr, name, serial, "depth_to_rig", &p[i].depth_to_rig, err);
        json_t *cr = json_object_get(d, "color_to_rig");
        if (!st) {
            if (cr)
                st = read_extrinsics(cr, name, serial, "color_to_rig", &p[i].color_to_rig, err);
            else
                ks_extrinsics_identity(&p[i].color_to_rig);
        }
    }
    if (st) {
        free(p);
        goto done;
    }
    *out = p;
    *count = n;
done:
    json_decref(root);
    return st;
}

ks_status ks_rig_poses_load(const char *path, ks_rig_pose **out, size_t *count, ks_error *err)
{
    *out = NULL;
    *count = 0;
    char *buf;
    size_t len;
    ks_status st = ks_file_read_all(path, 64u << 20, &buf, &len, err);
    if (st == KS_ENOTFOUND)
        return ks_error_set(err, KS_ENOTFOUND, "%s: cannot open the rig calibration; run 'kinsync calibrate' first",
                            path);
    if (st != KS_OK)
        return st;
    st = ks_rig_poses_parse(buf, len, path, out, count, err);
    free(buf);
    return st;
}

const ks_rig_pose *ks_rig_pose_find(const ks_rig_pose *poses, size_t count, const char *serial)
{
    for (size_t i = 0; i < count && serial; i++)
        if (!strcmp(poses[i].serial, serial))
            return &poses[i];
    return NULL;
}
