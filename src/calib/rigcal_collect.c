/* calib/rigcal_collect.c: detected corners per (device, frame set), for the joint solver. */
#include <stdlib.h>
#include <string.h>

#include "kinsync/rigcalib.h"

struct ks_rigcal_collector {
    ks_detector *det;
    ks_rigcal_obs *obs;
    int count, cap;
    int max_frame;
};

ks_status ks_rigcal_collector_create(const ks_board *b, const ks_detector_options *o, ks_rigcal_collector **out,
                                     ks_error *err)
{
    ks_rigcal_collector *c = calloc(1, sizeof *c);
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
    c->max_frame = -1;
    ks_status st = ks_detector_create(b, o, &c->det, err);
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    return KS_OK;
}

void ks_rigcal_collector_destroy(ks_rigcal_collector *c)
{
    if (!c)
        return;
    ks_detector_destroy(c->det);
    free(c->obs);
    free(c);
}

ks_status ks_rigcal_collector_add_detections(ks_rigcal_collector *c, int device, int frame, const ks_detections *det,
                                             ks_error *err)
{
    if (!c || !det || device < 0 || frame < 0)
        return ks_error_set(err, KS_EINVAL, "rig calibration: bad device %d / frame set %d", device, frame);
    if (c->count + det->count > c->cap) {
        int cap = c->cap ? c->cap : 1024;
        while (cap < c->count + det->count)
            cap *= 2;
        ks_rigcal_obs *n = realloc(c->obs, sizeof(ks_rigcal_obs) * (size_t)cap);
        if (!n)
            return ks_error_set(err, KS_ENOMEM, "rig calibration: out of memory");
        c->obs = n;
        c->cap = cap;
    }
    for (int i = 0; i < det->count; i++) {
        ks_rigcal_obs *o = &c->obs[c->count++];
        o->device = device;
        o->frame = frame;
        o->tag_id = det->corners[i].tag_id;
        o->corner = det->corners[i].corner;
        o->uv[0] = det->corners[i].uv[0];
        o->uv[1] = det->corners[i].uv[1];
    }
    if (det->count && frame > c->max_frame)
        c->max_frame = frame;
    return KS_OK;
}

ks_status ks_rigcal_collector_add_image(ks_rigcal_collector *c, int device, int frame, const ks_image *img,
                                        int *corners, ks_error *err)
{
    if (!c)
        return ks_error_set(err, KS_EINVAL, "rig calibration: no collector");
    ks_detections det = {0};
    ks_status st = ks_detect_image(c->det, img, &det, err);
    if (!st)
        st = ks_rigcal_collector_add_detections(c, device, frame, &det, err);
    if (corners)
        *corners = st ? 0 : det.count;
    ks_detections_free(&det);
    return st;
}

void ks_rigcal_collector_problem(const ks_rigcal_collector *c, const ks_board *b, const ks_rigcal_device *devices,
                                 int device_count, ks_rigcal_problem *out)
{
    memset(out, 0, sizeof *out);
    out->board = b;
    out->devices = devices;
    out->device_count = device_count;
    out->frame_count = c->max_frame + 1;
    out->obs = c->obs;
    out->obs_count = c->count;
}
