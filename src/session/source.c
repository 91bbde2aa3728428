/* Opening a rig from a rig file or from recordings (kinsync/source.h). The one place that decides
 * which backend runs a rig; commands only say what the user gave them. */
#include "kinsync/source.h"

#include <stdio.h>
#include <string.h>

#include "kinsync/k4a.h"
#include "kinsync/sim.h"

void ks_source_options_init(ks_source_options *o)
{
    memset(o, 0, sizeof *o);
    o->backend = "auto";
    ks_playback_options_init(&o->playback);
}

bool ks_source_is_recordings(const char *const *paths, int count)
{
    if (!paths || count < 1)
        return false;
    for (int i = 0; i < count; i++)
        if (!ks_playback_is_recording(paths[i]))
            return false;
    return true;
}

static ks_status open_recordings(const char *const *paths, int count, const ks_source_options *o, ks_source *s,
                                 ks_error *err)
{
    ks_findings f;
    ks_findings_init(&f);
    ks_status st = ks_playback_open_rig(paths, count, &o->playback, &s->rig, &s->plan, &s->backend, &f, err);
    ks_findings_free(&f);
    if (st != KS_OK) {
        s->bad_input = true;
        return st;
    }
    s->kind = KS_SOURCE_RECORDINGS;
    s->path_count = count;
    bool tagged = false;
    for (int i = 0; i < count; i++) {
        ks_mkv_reader *r = NULL;
        ks_error e;
        if (ks_mkv_reader_open(paths[i], &r, &e) == KS_OK) {
            tagged |= ks_mkv_reader_info(r)->desc.timestamps[0] != '\0';
            ks_mkv_reader_close(r);
        }
    }
    if (!tagged && o->timestamps && !ks_ts_convention_parse(o->timestamps, &s->rig.ts_convention)) {
        ks_source_close(s);
        s->bad_input = true;
        return ks_error_set(err, KS_EINVAL, "unknown timestamp convention '%s'; use seed or mid-exposure",
                            o->timestamps);
    }
    if (!s->plan.feasible)
        snprintf(s->note, sizeof s->note, "%s", s->plan.reason);
    return KS_OK;
}

static ks_status open_rig_file(const char *path, const ks_source_options *o, ks_source *s, ks_error *err)
{
    ks_status st = ks_rig_load(path, &s->rig, err);
    if (st != KS_OK) {
        s->bad_input = true;
        return st;
    }
    ks_findings f;
    ks_findings_init(&f);
    st = ks_rig_validate(&s->rig, &f);
    if (st != KS_OK) {
        char line[600] = "";
        for (int i = 0; i < f.count; i++)
            if (f.items[i].severity == KS_SEV_ERROR) {
                ks_finding_format(&s->rig, &f.items[i], line, sizeof line);
                break;
            }
        ks_findings_free(&f);
        return ks_error_set(err, KS_EINVAL, "%s: the rig is invalid: %s (see `kinsync plan %s`)", path, line, path);
    }
    ks_findings_free(&f);
    ks_error perr;
    if (ks_plan_make(&s->rig, NULL, &s->plan, &perr) != KS_OK)
        snprintf(s->note, sizeof s->note, "the plan is not feasible (%s); running with its best effort", perr.message);
    const char *name = o->backend ? o->backend : "auto";
    bool want_sim = !strcmp(name, "sim");
    if (!want_sim && strcmp(name, "k4a") && strcmp(name, "auto")) {
        s->bad_input = true;
        return ks_error_set(err, KS_EINVAL, "unknown backend '%s'; use auto, sim or k4a", name);
    }
    if (!want_sim) {
        ks_error kerr;
        st = ks_backend_open_k4a(&s->backend, &kerr);
        if (st == KS_OK && ks_backend_device_count(s->backend) > 0) {
            s->kind = KS_SOURCE_DEVICES;
            return KS_OK;
        }
        ks_backend_free(s->backend);
        s->backend = NULL;
        if (!strcmp(name, "k4a")) {
            if (st != KS_OK) {
                if (err)
                    *err = kerr;
                return st;
            }
            return ks_error_set(err, KS_ENOTFOUND, "no Azure Kinect attached; connect the devices or use --backend sim");
        }
        size_t l = strlen(s->note);
        snprintf(s->note + l, sizeof s->note - l, "%s%s; using the simulator", l ? "; " : "",
                 st == KS_OK ? "no Azure Kinect attached" : "libk4a not installed");
    }
    ks_sim_config sc;
    if ((st = ks_sim_config_load(path, &s->rig, &sc, err)) != KS_OK) {
        s->bad_input = true;
        return st;
    }
    if (o->fast)
        sc.mode = KS_SIM_FAST;
    if (o->sim_cache_dir && strlen(o->sim_cache_dir) < sizeof sc.view_cache_dir)
        snprintf(sc.view_cache_dir, sizeof sc.view_cache_dir, "%s", o->sim_cache_dir);
    if ((st = ks_backend_open_sim(&s->rig, &sc, &s->backend, err)) != KS_OK)
        return st;
    s->kind = KS_SOURCE_SIMULATOR;
    return KS_OK;
}

ks_status ks_source_open(const char *const *paths, int count, const ks_source_options *opt, ks_source *out,
                         ks_error *err)
{
    if (!out)
        return ks_error_set(err, KS_EINVAL, "ks_source_open: no output given");
    memset(out, 0, sizeof *out);
    if (!paths || count < 1) {
        out->bad_input = true;
        return ks_error_set(err, KS_EINVAL, "give a rig file or one recording per device");
    }
    ks_source_options def;
    if (!opt) {
        ks_source_options_init(&def);
        opt = &def;
    }
    ks_status st;
    bool mkv_named = false;
    for (int i = 0; i < count; i++) {
        size_t l = strlen(paths[i]);
        mkv_named |= l > 4 && !strcmp(paths[i] + l - 4, ".mkv");
    }
    if (ks_source_is_recordings(paths, count) || mkv_named) { /* the playback backend names a bad file */
        st = open_recordings(paths, count, opt, out, err);
    } else if (count == 1) {
        st = open_rig_file(paths[0], opt, out, err);
    } else {
        int bad = 0;
        while (bad < count && ks_playback_is_recording(paths[bad]))
            bad++;
        out->bad_input = true;
        st = ks_error_set(err, KS_EINVAL,
                          "%s is not a recording (no Matroska header); give either one rig file or one recording "
                          "(.mkv) per device",
                          paths[bad < count ? bad : 0]);
    }
    if (st != KS_OK) {
        bool bad = out->bad_input;
        ks_source_close(out);
        out->bad_input = bad;
    }
    return st;
}

void ks_source_close(ks_source *s)
{
    if (!s)
        return;
    ks_backend_free(s->backend);
    s->backend = NULL;
}
