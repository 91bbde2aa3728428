/* The plan as a JSON document, schema "kinsync.plan/1" (docs/plan.md). Reals are rounded to
 * 0.001 us and printed with a fixed precision so the document is byte-stable (golden tests). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/plan.h"

static json_t *real3(double x)
{
    double r = round(x * 1000.0) / 1000.0;
    if (r == 0)
        r = 0; /* no "-0.0" */
    return json_real(r);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static const char *sync_name(ks_wired_sync_mode m)
{
    return m == KS_SYNC_MASTER ? "master" : m == KS_SYNC_SUBORDINATE ? "subordinate" : "standalone";
}

char *ks_plan_to_json(const ks_rig *rig, const ks_plan *plan, const ks_findings *f)
{
    if (!rig || !plan)
        return NULL;
    json_t *root = json_object();
    if (!root)
        return NULL;
    const char *src = rig->path[0] ? rig->path : rig->source;
    json_object_set_new(root, "schema", json_string("kinsync.plan/1"));
    json_object_set_new(root, "rig", json_string(rig->name));
    json_object_set_new(root, "file", src[0] ? json_string(base_name(src)) : json_null());
    json_object_set_new(root, "valid", json_boolean(!f || ks_findings_count(f, KS_SEV_ERROR) == 0));
    json_object_set_new(root, "feasible", json_boolean(plan->feasible));
    json_object_set_new(root, "reason", plan->feasible ? json_null() : json_string(plan->reason));
    json_object_set_new(root, "aim", json_string(ks_aim_name(plan->aim)));
    json_object_set_new(root, "topology", json_string(ks_topology_name(rig->topology)));
    json_object_set_new(root, "fps", json_integer(ks_fps_hz(plan->fps)));
    json_object_set_new(root, "frame_period_us", real3(plan->period_us));
    json_object_set_new(root, "delay_limit_us", json_integer(plan->period_limit_us));
    json_object_set_new(root, "effective_fps", real3(plan->effective_fps));
    json_object_set_new(root, "spacing_error_us", real3(plan->spacing_error_us));

    json_t *cam = json_object();
    json_object_set_new(cam, "color_resolution", json_string(ks_color_resolution_name(rig->camera.color_resolution)));
    json_object_set_new(cam, "color_format", json_string(ks_image_format_name(rig->camera.color_format)));
    json_object_set_new(cam, "depth_mode", json_string(ks_depth_mode_name(rig->camera.depth_mode)));
    json_object_set_new(cam, "exposure_us", json_integer(plan->device_count ? plan->devices[0].exposure_us : 0));
    json_object_set_new(root, "camera", cam);

    json_t *las = json_object();
    json_object_set_new(las, "fires", json_boolean(plan->lasers));
    json_object_set_new(las, "pulses", json_integer(plan->pulses));
    json_object_set_new(las, "pulse_width_us", json_integer(plan->pulse_width_us));
    json_object_set_new(las, "pitch_us", json_integer(plan->pitch_us));
    json_object_set_new(las, "window_us", json_integer(plan->window_us));
    json_object_set_new(las, "guard_us", json_integer(plan->guard_us));
    json_object_set_new(las, "guard_step_us", real3(plan->guard_step_us));
    json_object_set_new(las, "slots_per_gap", json_integer(plan->slots_per_gap));
    json_object_set_new(root, "laser", las);

    json_t *devs = json_array();
    for (int i = 0; i < plan->device_count; i++) {
        const ks_plan_device *d = &plan->devices[i];
        const ks_rig_device *rd = &rig->devices[i];
        json_t *o = json_object();
        char cmd[512], comment[512];
        ks_plan_recorder_command(rig, plan, i, cmd, sizeof cmd);
        ks_plan_recorder_comment(rig, plan, i, comment, sizeof comment);
        json_object_set_new(o, "name", json_string(rd->name));
        json_object_set_new(o, "serial", json_string(rd->serial));
        json_object_set_new(o, "host", json_string(rd->host));
        json_object_set_new(o, "group", json_integer(d->group));
        json_object_set_new(o, "role", json_string(ks_role_name(rd->derived_role)));
        json_object_set_new(o, "trigger_fed", json_boolean(d->trigger_head));
        json_object_set_new(o, "wired_sync_mode", json_string(sync_name(d->sync_mode)));
        json_object_set_new(o, "chain_depth", json_integer(d->chain_depth));
        json_object_set_new(o, "start_position", json_integer(d->start_position));
        json_object_set_new(o, "subordinate_delay_off_master_usec", json_integer(d->subordinate_delay_usec));
        json_object_set_new(o, "subordinate_delay_effective_us", real3(d->subordinate_delay_effective_us));
        json_object_set_new(o, "depth_delay_off_color_usec", json_integer(d->depth_delay_usec));
        json_object_set_new(o, "depth_delay_effective_us", real3(d->depth_delay_effective_us));
        json_object_set_new(o, "color_offset_us", real3(d->color_offset_us));
        json_object_set_new(o, "laser_start_us", d->laser ? real3(d->laser_start_us) : json_null());
        json_object_set_new(o, "depth_color_offset_us", real3(d->depth_delay_effective_us));
        json_object_set_new(o, "exposure_us", json_integer(d->exposure_us));
        json_object_set_new(o, "recorder_command", json_string(cmd));
        json_object_set_new(o, "recorder_comment", json_string(comment));
        json_array_append_new(devs, o);
    }
    json_object_set_new(root, "devices", devs);

    json_t *order = json_array();
    for (int k = 0; k < plan->device_count; k++)
        json_array_append_new(order, json_string(rig->devices[plan->start_order[k]].name));
    json_object_set_new(root, "start_order", order);

    const ks_plan_proof *p = &plan->proof;
    json_t *proof = json_object();
    json_object_set_new(proof, "pairs_checked", json_integer(p->pairs_checked));
    json_object_set_new(proof, "pulse_pairs_checked", json_integer(p->pulse_pairs_checked));
    json_object_set_new(proof, "min_separation_us", p->device_a >= 0 ? real3(p->min_separation_us) : json_null());
    json_object_set_new(proof, "device_a", p->device_a >= 0 ? json_string(rig->devices[p->device_a].name) : json_null());
    json_object_set_new(proof, "device_b", p->device_b >= 0 ? json_string(rig->devices[p->device_b].name) : json_null());
    json_object_set_new(proof, "guard_us", real3(p->guard_us));
    json_object_set_new(proof, "lasers_ok", json_boolean(p->lasers_ok));
    json_object_set_new(proof, "color_spread_us", real3(p->color_spread_us));
    json_object_set_new(proof, "color_ok", json_boolean(p->color_ok));
    json_object_set_new(proof, "unsynced_pairs", json_integer(p->unsynced_pairs));
    json_object_set_new(root, "proof", proof);

    json_t *costs = json_object();
    json_object_set_new(costs, "max_depth_color_us", real3(plan->max_depth_color_us));
    json_object_set_new(costs, "capture_spacing_us", real3(plan->capture_spacing_us));
    json_object_set_new(costs, "exposures_overlap", json_boolean(plan->exposures_overlap));
    char notes[4][320];
    int nn = ks_plan_cost_notes(rig, plan, notes, 4);
    json_t *na = json_array();
    for (int k = 0; k < nn; k++)
        json_array_append_new(na, json_string(notes[k]));
    json_object_set_new(costs, "notes", na);
    json_object_set_new(root, "costs", costs);

    json_t *steps = json_array();
    for (int k = 0; k < plan->device_count; k++) {
        int i = plan->start_order[k];
        json_t *o = json_object();
        json_object_set_new(o, "step", json_integer(k + 1));
        json_object_set_new(o, "host", json_string(rig->devices[i].host));
        json_object_set_new(o, "device", json_string(rig->devices[i].name));
        json_array_append_new(steps, o);
    }
    json_object_set_new(root, "start_steps", steps);

    const ks_plan_audit *au = &plan->audit;
    if (au->present) {
        json_t *a = json_object();
        json_object_set_new(a, "pass", json_boolean(au->pass));
        json_object_set_new(a, "verdict", json_string(au->verdict));
        json_object_set_new(a, "min_separation_us",
                            au->proof.device_a >= 0 ? real3(au->proof.min_separation_us) : json_null());
        json_object_set_new(a, "device_a", au->proof.device_a >= 0 ? json_string(rig->devices[au->proof.device_a].name)
                                                                   : json_null());
        json_object_set_new(a, "device_b", au->proof.device_b >= 0 ? json_string(rig->devices[au->proof.device_b].name)
                                                                   : json_null());
        json_object_set_new(a, "color_spread_us", real3(au->proof.color_spread_us));
        json_t *ds = json_array();
        for (int i = 0; i < plan->device_count; i++) {
            const ks_plan_audit_device *ad = &au->devices[i];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(rig->devices[i].name));
            json_object_set_new(o, "given", json_boolean(ad->given));
            json_object_set_new(o, "subordinate_delay_off_master_usec", json_integer(ad->subordinate_delay_usec));
            json_object_set_new(o, "subordinate_delay_effective_us", real3(ad->subordinate_delay_effective_us));
            json_object_set_new(o, "depth_delay_off_color_usec", json_integer(ad->depth_delay_usec));
            json_object_set_new(o, "depth_delay_effective_us", real3(ad->depth_delay_effective_us));
            json_object_set_new(o, "laser_start_us", real3(ad->laser_start_us));
            json_array_append_new(ds, o);
        }
        json_object_set_new(a, "devices", ds);
        json_object_set_new(root, "audit", a);
    } else {
        json_object_set_new(root, "audit", json_null());
    }
    json_object_set_new(root, "trigger", json_boolean(plan->trigger));
    json_object_set_new(root, "exact_search", json_boolean(plan->exact_search_used));

    json_t *alts = json_array();
    for (int k = 0; k < plan->alternative_count; k++) {
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(plan->alternatives[k].kind));
        json_object_set_new(o, "value", json_integer(plan->alternatives[k].value));
        json_object_set_new(o, "text", json_string(plan->alternatives[k].text));
        json_array_append_new(alts, o);
    }
    json_object_set_new(root, "alternatives", alts);

    json_t *fs = json_array();
    for (int k = 0; f && k < f->count; k++) {
        const ks_finding *x = &f->items[k];
        json_t *o = json_object();
        json_object_set_new(o, "severity", json_string(ks_severity_name(x->severity)));
        json_object_set_new(o, "rule", json_string(x->rule));
        json_object_set_new(o, "device", x->device >= 0 && x->device < rig->device_count
                                             ? json_string(rig->devices[x->device].name)
                                             : json_null());
        json_object_set_new(o, "line", json_integer(x->line));
        json_object_set_new(o, "message", json_string(x->message));
        json_object_set_new(o, "fix", json_string(x->fix));
        json_array_append_new(fs, o);
    }
    json_object_set_new(root, "findings", fs);

    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(root);
    return s;
}
