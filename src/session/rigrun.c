/* session/rigrun.c: a source and its running session behind one handle (kinsync/rigrun.h). It adds
 * nothing to the pipeline: ks_source_open, ks_session_open/start/next and the fuse sink do the work;
 * this file only keeps them together and hands frame sets out on the heap, which is what a binding
 * (python/kinsync) can hold without knowing the library's struct layouts. */
#include "kinsync/rigrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/plan.h"
#include "kinsync/rig.h"

struct ks_rigrun {
    ks_source src;
    bool src_open;
    ks_session *session;
};

ks_status ks_rigrun_open(const char *const *paths, int count, const char *backend, bool fast, ks_rigrun **out,
                         ks_error *err)
{
    if (!paths || count < 1 || !out)
        return ks_error_set(err, KS_EINVAL, "ks_rigrun_open: give a rig file or recordings");
    *out = NULL;
    ks_rigrun *r = calloc(1, sizeof *r);
    if (!r)
        return ks_error_set(err, KS_ENOMEM, "ks_rigrun_open: out of memory");
    ks_source_options o;
    ks_source_options_init(&o);
    if (backend)
        o.backend = backend;
    o.fast = fast;
    ks_status st = ks_source_open(paths, count, &o, &r->src, err);
    if (st != KS_OK) {
        free(r);
        return st;
    }
    r->src_open = true;
    st = ks_session_open(&r->src.rig, &r->src.plan, r->src.backend, NULL, &r->session, err);
    if (st == KS_OK)
        st = ks_session_start(r->session, err);
    if (st != KS_OK) {
        ks_rigrun_close(r);
        return st;
    }
    *out = r;
    return KS_OK;
}

void ks_rigrun_close(ks_rigrun *r)
{
    if (!r)
        return;
    if (r->session) {
        ks_session_stop(r->session);
        ks_session_close(r->session);
    }
    if (r->src_open)
        ks_source_close(&r->src);
    free(r);
}

const char *ks_rigrun_kind(const ks_rigrun *r)
{
    switch (r->src.kind) {
    case KS_SOURCE_DEVICES: return "devices";
    case KS_SOURCE_SIMULATOR: return "simulator";
    case KS_SOURCE_RECORDINGS: return "recordings";
    }
    return "?";
}

const char *ks_rigrun_note(const ks_rigrun *r)
{
    return r->src.note;
}

int ks_rigrun_device_count(const ks_rigrun *r)
{
    return ks_session_device_count(r->session);
}

static const ks_rig_device *rig_device(const ks_rigrun *r, int d)
{
    if (d < 0 || d >= ks_session_device_count(r->session))
        return NULL;
    int i = ks_session_rig_index(r->session, d);
    return i >= 0 && i < r->src.rig.device_count ? &r->src.rig.devices[i] : NULL;
}

const char *ks_rigrun_device_serial(const ks_rigrun *r, int d)
{
    const ks_rig_device *dev = rig_device(r, d);
    return dev ? dev->serial : NULL;
}

const char *ks_rigrun_device_name(const ks_rigrun *r, int d)
{
    const ks_rig_device *dev = rig_device(r, d);
    return dev ? dev->name : NULL;
}

const char *ks_rigrun_device_role(const ks_rigrun *r, int d)
{
    const ks_rig_device *dev = rig_device(r, d);
    return dev ? ks_role_name(dev->derived_role) : NULL;
}

const ks_source *ks_rigrun_source(const ks_rigrun *r)
{
    return &r->src;
}

ks_session *ks_rigrun_session(ks_rigrun *r)
{
    return r->session;
}

ks_status ks_rigrun_next(ks_rigrun *r, int timeout_ms, ks_session_set **out, ks_error *err)
{
    if (!r || !out)
        return ks_error_set(err, KS_EINVAL, "ks_rigrun_next: missing argument");
    *out = NULL;
    ks_session_set *set = calloc(1, sizeof *set);
    if (!set)
        return ks_error_set(err, KS_ENOMEM, "ks_rigrun_next: out of memory");
    ks_status st = ks_session_next(r->session, set, timeout_ms, err);
    if (st != KS_OK) {
        free(set);
        return st;
    }
    *out = set;
    return KS_OK;
}

void ks_rigrun_set_free(ks_session_set *set)
{
    if (!set)
        return;
    ks_session_set_release(set);
    free(set);
}

uint64_t ks_rigrun_set_index(const ks_session_set *set)
{
    return set->set.index;
}

uint32_t ks_rigrun_set_present(const ks_session_set *set)
{
    return set->set.present_mask;
}

ks_capture *ks_rigrun_set_capture(const ks_session_set *set, int d)
{
    if (d < 0 || d >= KS_MATCH_MAX_DEVICES || !(set->set.present_mask & (1u << d)))
        return NULL;
    return set->set.frames[d].user;
}

double ks_rigrun_set_key_us(const ks_session_set *set, int d)
{
    if (d < 0 || d >= KS_MATCH_MAX_DEVICES || !(set->set.present_mask & (1u << d)))
        return NAN;
    return set->set.frames[d].key_us;
}

ks_status ks_rigrun_fuse_sink(ks_rigrun *r, const char *rig_calibration_json, const ks_fuse_options *opt,
                              ks_fuse_sink **out, ks_error *err)
{
    ks_rig_pose *poses = NULL;
    size_t n = 0;
    ks_status st = ks_rig_poses_load(rig_calibration_json, &poses, &n, err);
    if (st != KS_OK)
        return st;
    ks_fuse_options o = {0};
    if (opt)
        o = *opt;
    st = ks_fuse_sink_create(r->session, poses, n, &o, out, err);
    free(poses);
    return st;
}

ks_status ks_plan_file_json(const char *path, char **json, ks_error *err)
{
    if (!path || !json)
        return ks_error_set(err, KS_EINVAL, "ks_plan_file_json: missing argument");
    *json = NULL;
    ks_rig *rig = malloc(sizeof *rig);
    ks_plan *plan = calloc(1, sizeof *plan);
    if (!rig || !plan) {
        free(rig);
        free(plan);
        return ks_error_set(err, KS_ENOMEM, "ks_plan_file_json: out of memory");
    }
    ks_status st = ks_rig_load(path, rig, err);
    if (st == KS_OK) {
        ks_findings f;
        ks_findings_init(&f);
        if (ks_rig_validate(rig, &f) == KS_OK) {
            ks_plan_make(rig, NULL, plan, NULL);
        } else {
            plan->aim = rig->aim;
            plan->fps = rig->camera.fps;
            snprintf(plan->reason, sizeof plan->reason, "the rig is invalid: %d validation error(s)",
                     ks_findings_count(&f, KS_SEV_ERROR));
        }
        *json = ks_plan_to_json(rig, plan, &f);
        ks_findings_free(&f);
        if (!*json)
            st = ks_error_set(err, KS_ENOMEM, "ks_plan_file_json: out of memory");
    }
    free(rig);
    free(plan);
    return st;
}
