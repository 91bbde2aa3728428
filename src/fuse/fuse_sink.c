/* Fusion as a sink of session frame sets (kinsync/fuse_sink.h). Everything here is plumbing
 * between the session's captures and ks_fuse_run: the point of the module is that live rigs,
 * the simulator and recordings all reach the fusion through the same frame sets. */
#include "kinsync/fuse_sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ks_fuse_sink {
    int n;
    ks_fuse_device dev[KS_FUSE_MAX_DEVICES];
    ks_fuse_options opt;
    ks_matcher_config mcfg;     /* the session's, for pairing colour with depth by key */
    ks_fuse *fz;
    ks_fuse_input in[KS_FUSE_MAX_DEVICES];
    uint16_t *render;
};

static bool has_depth(ks_depth_mode m)
{
    return m != KS_DEPTH_OFF && m != KS_DEPTH_PASSIVE_IR;
}

ks_status ks_fuse_sink_create(ks_session *s, const ks_rig_pose *poses, size_t npose, const ks_fuse_options *opt,
                              ks_fuse_sink **out, ks_error *err)
{
    if (!s || !out)
        return ks_error_set(err, KS_EINVAL, "ks_fuse_sink_create: session and output are required");
    int n = ks_session_device_count(s);
    if (n < 1 || n > KS_FUSE_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "the rig has %d devices; 1 to %d can be fused", n, KS_FUSE_MAX_DEVICES);
    ks_fuse_sink *k = calloc(1, sizeof *k);
    if (!k)
        return ks_error_set(err, KS_ENOMEM, "out of memory creating the fusion");
    k->n = n;
    if (opt)
        k->opt = *opt;
    k->mcfg = *ks_session_matcher_config(s);
    ks_status st = KS_OK;
    for (int i = 0; i < n && st == KS_OK; i++) {
        ks_device *dv = ks_session_device(s, i);
        const ks_device_info *info = ks_device_info_get(dv);
        const ks_device_config *cfg = ks_device_running_config(dv);
        const char *name = ks_session_device_name(s, i);
        if (!cfg)
            st = ks_error_set(err, KS_ESTATE, "device %s is not streaming; start the session first", name);
        else if (!has_depth(cfg->depth_mode))
            st = ks_error_set(err, KS_EINVAL, "device %s runs without depth (%s); give it a depth mode (record "
                                              "with one, e.g. NFOV_UNBINNED)", name, ks_depth_mode_name(cfg->depth_mode));
        char *cj = NULL;
        size_t cl = 0;
        ks_status cs = KS_OK;
        if (st == KS_OK && ((cs = ks_device_get_calibration_json(dv, &cj, &cl, err)) != KS_OK ||
                            (cs = ks_calibration_from_json(cj, cl, cfg->depth_mode,
                                                           k->opt.color ? cfg->color_resolution : KS_COLOR_OFF,
                                                           &k->dev[i].calibration, err)) != KS_OK))
            st = ks_error_prefix(err, cs, "device %s (%s): calibration", name, info->serial);
        free(cj);
        const ks_rig_pose *p = st == KS_OK ? ks_rig_pose_find(poses, npose, info->serial) : NULL;
        if (st == KS_OK && !p)
            st = ks_error_set(err, KS_EINVAL, "device %s (%s) has no pose in the rig calibration; calibrate the rig "
                                              "with this device (kinsync calibrate) or leave it out", name, info->serial);
        if (st == KS_OK) {
            k->dev[i].depth_to_rig = p->depth_to_rig;
            snprintf(k->dev[i].serial, sizeof k->dev[i].serial, "%s", info->serial);
        }
    }
    if (st == KS_OK)
        st = ks_fuse_create(k->dev, n, &k->opt, &k->fz, err);
    if (st != KS_OK) {
        ks_fuse_sink_destroy(k);
        return st;
    }
    *out = k;
    return KS_OK;
}

void ks_fuse_sink_destroy(ks_fuse_sink *k)
{
    if (!k)
        return;
    ks_fuse_destroy(k->fz);
    free(k->render);
    free(k);
}

unsigned ks_fuse_sink_streams(const ks_fuse_options *opt)
{
    return KS_STREAM_DEPTH | (opt && opt->color ? KS_STREAM_COLOR : 0u);
}

int ks_fuse_sink_device_count(const ks_fuse_sink *k)
{
    return k ? k->n : 0;
}

const ks_fuse_device *ks_fuse_sink_device(const ks_fuse_sink *k, int d)
{
    return k && d >= 0 && d < k->n ? &k->dev[d] : NULL;
}

int ks_fuse_sink_find(const ks_fuse_sink *k, const char *s)
{
    if (!k || !s)
        return -1;
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->dev[i].serial, s))
            return i;
    char *end;
    long idx = strtol(s, &end, 10);
    return *s && !*end && idx >= 0 && idx < k->n ? (int)idx : -1;
}

/* Colour and depth of one capture belong to the same instant when their keys agree: the key of
 * the colour alone and of the depth alone, through the session's matcher conversion. */
static bool same_instant(const ks_matcher_config *cfg, const ks_match_frame *f)
{
    if (!f->has_color || !f->has_depth)
        return false;
    ks_match_frame c = *f, d = *f;
    c.has_depth = false;
    d.has_color = false;
    ks_matcher_key(cfg, &c);
    ks_matcher_key(cfg, &d);
    double tol = cfg->tolerance_us > 0 ? cfg->tolerance_us : cfg->period_us / 4;
    return fabs(c.key_us - d.key_us) <= tol;
}

ks_status ks_fuse_sink_run(ks_fuse_sink *k, const ks_session_set *set, ks_cloud *out, ks_fuse_stats *stats,
                           ks_fuse_set_info *info, ks_error *err)
{
    if (!k || !set || !out)
        return ks_error_set(err, KS_EINVAL, "ks_fuse_sink_run: sink, set and cloud are required");
    ks_fuse_set_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    for (int i = 0; i < k->n; i++) {
        ks_fuse_input *in = &k->in[i];
        memset(in, 0, sizeof *in);
        const ks_match_frame *f = &set->set.frames[i];
        ks_capture *cap = (set->set.present_mask & (1u << i)) ? f->user : NULL;
        ks_image *di = cap ? cap->depth : NULL, *ci = cap ? cap->color : NULL;
        const ks_intrinsics *dm = &k->dev[i].calibration.depth;
        if (!di || di->format != KS_FORMAT_DEPTH16 || di->width != dm->width || di->height != dm->height)
            continue;
        in->depth = (const uint16_t *)di->data;
        in->depth_stride = di->stride > 0 ? (size_t)di->stride / 2 : 0;
        info->present++;
        info->depth_mask |= 1u << i;
        if (!k->opt.color || !ci || (ci->format != KS_FORMAT_MJPG && ci->format != KS_FORMAT_BGRA32))
            continue;
        if (!same_instant(&k->mcfg, f)) {
            info->color_unpaired |= 1u << i;
            continue;
        }
        in->color_format = ci->format;
        in->color = ci->data;
        in->color_size = ci->size;
        in->color_width = ci->width;
        in->color_height = ci->height;
        in->color_stride = ci->stride > 0 ? (size_t)ci->stride : 0;
        info->color_mask |= 1u << i;
    }
    if (!info->present)
        return ks_error_set(err, KS_EINVAL, "frame set %llu has no depth image of the calibrated mode",
                            (unsigned long long)set->set.index);
    ks_fuse_stats local_stats;
    return ks_fuse_run(k->fz, k->in, out, stats ? stats : &local_stats, err);
}

ks_status ks_fuse_sink_fill(ks_fuse_sink *k, const ks_session_set *set, const ks_cloud *cloud, int d, uint16_t *out,
                            size_t *filled, ks_error *err)
{
    if (!k || !set || !cloud || !out || d < 0 || d >= k->n)
        return ks_error_set(err, KS_EINVAL, "ks_fuse_sink_fill: bad argument");
    const ks_capture *cap = (set->set.present_mask & (1u << d)) ? set->set.frames[d].user : NULL;
    const ks_image *di = cap ? cap->depth : NULL;
    const ks_intrinsics *in = &k->dev[d].calibration.depth;
    if (!di || di->width != in->width || di->height != in->height)
        return ks_error_set(err, KS_EINVAL, "device %s has no depth in frame set %llu", k->dev[d].serial,
                            (unsigned long long)set->set.index);
    size_t np = (size_t)in->width * (size_t)in->height;
    if (!k->render && !(k->render = malloc(np * sizeof *k->render)))
        return ks_error_set(err, KS_ENOMEM, "out of memory rendering the fused cloud");
    ks_extrinsics rig_to_cam;
    ks_extrinsics_invert(&k->dev[d].depth_to_rig, &rig_to_cam);
    ks_render_depth(cloud, in, &rig_to_cam, k->opt.voxel_mm > 0 ? k->opt.voxel_mm : 5.0f, k->render, NULL);
    /* the device's own depth, packed (rows may be padded) */
    size_t stride = di->stride > 0 ? (size_t)di->stride / 2 : (size_t)in->width;
    for (int v = 0; v < in->height; v++)
        memcpy(out + (size_t)v * (size_t)in->width, (const uint16_t *)di->data + (size_t)v * stride,
               (size_t)in->width * sizeof *out);
    size_t nf = ks_depth_fill_holes(out, k->render, in->width, in->height, out);
    if (filled)
        *filled = nf;
    return KS_OK;
}
