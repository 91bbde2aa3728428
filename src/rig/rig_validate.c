/* Whole-rig validation (kinsync/rig.h, docs/rules.md). Every rule runs; every problem becomes one
 * finding with a stable rule id, the device, the file line, a message naming the device(s) and a
 * fix. Roles, topology and the master are derived from the cables (and the external trigger).
 * Hardware numbers come from kinsync/timing.h; the SDK's own start rules from
 * ks_device_config_check (kinsync/device.h), never restated here. */
#include "kinsync/rig.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/device.h"

/* ---- findings ---- */

void ks_findings_init(ks_findings *f)
{
    memset(f, 0, sizeof *f);
}

void ks_findings_free(ks_findings *f)
{
    if (!f)
        return;
    free(f->items);
    memset(f, 0, sizeof *f);
}

bool ks_findings_add(ks_findings *f, ks_severity sev, const char *rule, int device, int line, const char *fix,
                     const char *fmt, ...)
{
    if (!f)
        return false;
    if (f->count >= f->capacity) {
        int cap = f->capacity ? f->capacity * 2 : 16;
        ks_finding *items = realloc(f->items, (size_t)cap * sizeof *items);
        if (!items)
            return false;
        f->items = items;
        f->capacity = cap;
    }
    ks_finding *x = &f->items[f->count++];
    memset(x, 0, sizeof *x);
    x->severity = sev;
    snprintf(x->rule, sizeof x->rule, "%s", rule ? rule : "");
    x->device = device;
    x->line = line;
    snprintf(x->fix, sizeof x->fix, "%s", fix ? fix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->message, sizeof x->message, fmt, ap);
    va_end(ap);
    return true;
}

int ks_findings_count(const ks_findings *f, ks_severity sev)
{
    int n = 0;
    for (int i = 0; f && i < f->count; i++)
        n += f->items[i].severity == sev;
    return n;
}

int ks_finding_format(const ks_rig *rig, const ks_finding *f, char *buf, size_t size)
{
    if (!buf || size == 0)
        return 0;
    if (!f) {
        buf[0] = '\0';
        return 0;
    }
    const char *where = !rig ? "rig" : rig->source[0] ? rig->source : rig->name[0] ? rig->name : "rig";
    char line[24] = "";
    if (f->line > 0)
        snprintf(line, sizeof line, ":%d", f->line);
    return snprintf(buf, size, "%s%s: %s [%s] %s; fix: %s", where, line, ks_severity_name(f->severity), f->rule,
                    f->message, f->fix);
}

/* ---- validation context ---- */

typedef struct vctx {
    ks_rig *rig;
    ks_findings *out;
    int n;                           /* devices considered */
    int ncab;                        /* cables considered */
    bool cable_ok[KS_RIG_MAX_CABLES];  /* both ends name a device */
    int in[KS_RIG_MAX_DEVICES];      /* Sync In cables from other devices */
    int out_deg[KS_RIG_MAX_DEVICES]; /* Sync Out cables */
    int in_cable[KS_RIG_MAX_DEVICES];  /* one cable entering, -1 if none */
    bool fed[KS_RIG_MAX_DEVICES];    /* the external trigger feeds its Sync In */
    bool in_cycle[KS_RIG_MAX_DEVICES];
    bool reach[KS_RIG_MAX_DEVICES];  /* reachable from the master */
    char label[KS_RIG_MAX_DEVICES][KS_NAME_MAX + KS_SERIAL_MAX + 4];
} vctx;

#define ERR(rule, dev, line, fix, ...) ks_findings_add(v->out, KS_SEV_ERROR, rule, dev, line, fix, __VA_ARGS__)
#define WARN(rule, dev, line, fix, ...) ks_findings_add(v->out, KS_SEV_WARNING, rule, dev, line, fix, __VA_ARGS__)
#define INFO(rule, dev, line, fix, ...) ks_findings_add(v->out, KS_SEV_INFO, rule, dev, line, fix, __VA_ARGS__)

static const char *L(const vctx *v, int i)
{
    return (i >= 0 && i < v->n) ? v->label[i] : "(no device)";
}

static int dev_line(const vctx *v, int i)
{
    return (i >= 0 && i < v->n) ? v->rig->devices[i].line : 0;
}

static int section_line(int line, int fallback)
{
    return line > 0 ? line : fallback;
}

static bool connected(const vctx *v, int i)
{
    return v->in[i] > 0 || v->out_deg[i] > 0 || v->fed[i];
}

/* ---- rules on the device list ---- */

static void check_devices(vctx *v)
{
    ks_rig *rig = v->rig;
    for (int i = 0; i < v->n; i++) {
        const ks_rig_device *d = &rig->devices[i];
        if (strcmp(d->name, d->serial) == 0 || !d->name[0])
            snprintf(v->label[i], sizeof v->label[i], "'%s'", d->serial);
        else
            snprintf(v->label[i], sizeof v->label[i], "'%s' (%s)", d->name, d->serial);
    }
    for (int j = 0; j < v->n; j++) {
        const ks_rig_device *b = &rig->devices[j];
        for (int i = 0; i < j; i++) {
            const ks_rig_device *a = &rig->devices[i];
            if (strcmp(a->serial, b->serial) == 0) {
                ERR("duplicate-serial", j, b->line,
                    "each physical device appears once; remove the repeated entry or correct its serial",
                    "devices %s and %s have the same serial %s", L(v, i), L(v, j), b->serial);
                break;
            }
            if (strcmp(a->name, b->name) == 0 || strcmp(a->name, b->serial) == 0 ||
                strcmp(a->serial, b->name) == 0) {
                ERR("duplicate-name", j, b->line,
                    "give every device a name that no other device uses as name or serial",
                    "device %s and device %s share the name '%s', so cables cannot tell them apart", L(v, i),
                    L(v, j), strcmp(a->name, b->name) == 0 ? b->name : (strcmp(a->name, b->serial) == 0 ? a->name
                                                                                                      : b->name));
                break;
            }
        }
    }
    if (v->n > ks_tested_max_devices())
        WARN("untested-device-count", -1, 0,
             "expect to be on your own; split the rig into groups of tested size if problems appear",
             "the rig has %d devices; Microsoft tested synchronized rigs of up to %d", v->n, ks_tested_max_devices());

    /* firmware: the same on every device that declares it */
    int first = -1;
    for (int i = 0; i < v->n; i++) {
        const ks_rig_device *d = &rig->devices[i];
        if (!d->firmware[0])
            continue;
        if (first < 0) {
            first = i;
            continue;
        }
        if (strcmp(d->firmware, rig->devices[first].firmware) != 0)
            ERR("firmware-mismatch", i, d->line,
                "update every device to the same (latest) firmware with AzureKinectFirmwareTool, then set "
                "'firmware:' to match",
                "device %s has firmware %s but %s has %s; sub-frame timing differs between firmware versions", L(v, i),
                d->firmware, L(v, first), rig->devices[first].firmware);
    }
}

/* ---- cables, jacks ---- */

static void check_cables(vctx *v)
{
    ks_rig *rig = v->rig;
    for (int i = 0; i < v->n; i++) {
        v->in_cable[i] = -1;
        v->fed[i] = false;
    }
    double max_len = ks_max_cable_length_m();
    for (int c = 0; c < v->ncab; c++) {
        const ks_rig_cable *k = &rig->cables[c];
        v->cable_ok[c] = k->from >= 0 && k->from < v->n && k->to >= 0 && k->to < v->n;
        if (!v->cable_ok[c]) {
            ERR("cable-device", -1, k->line, "make both ends of the cable name a device of the rig",
                "cable %d joins device index %d to %d, which are not both devices of the rig (it has %d)", c,
                k->from, k->to, v->n);
            continue;
        }
        if (k->length_m >= max_len)
            ERR("cable-too-long", k->to, k->line, "use a shorter 3.5 mm cable (or move the devices closer)",
                "the cable from %s to %s is %g m; sync cables must be shorter than %g m", L(v, k->from), L(v, k->to),
                k->length_m, max_len);
        if (k->from == k->to) {
            ERR("sync-cycle", k->from, k->line,
                "a device's Sync Out must go to another device's Sync In; remove this cable",
                "the cable from %s goes back into its own Sync In", L(v, k->from));
            continue;
        }
        v->out_deg[k->from]++;
        v->in[k->to]++;
        if (v->in_cable[k->to] < 0) {
            v->in_cable[k->to] = c;
        } else {
            const ks_rig_cable *prev = &rig->cables[v->in_cable[k->to]];
            ERR("sync-in-twice", k->to, k->line,
                "a Sync In jack takes one cable; keep the cable from the master's side of the chain and remove "
                "the other",
                "device %s has two cables into its Sync In (from %s and from %s)", L(v, k->to), L(v, prev->from),
                L(v, k->from));
        }
    }
    for (int i = 0; i < v->n; i++) {
        if (v->out_deg[i] < 2)
            continue;
        bool all_split = true;
        int line = 0;
        for (int c = 0; c < v->ncab; c++) {
            if (v->cable_ok[c] && rig->cables[c].from == i && rig->cables[c].to != i) {
                all_split &= rig->cables[c].splitter;
                if (!rig->cables[c].splitter || !line)
                    line = rig->cables[c].line;
            }
        }
        if (!all_split)
            ERR("sync-out-twice", i, line,
                "a Sync Out jack takes one cable: use a headphone splitter (star, 'splitter: true') or chain the "
                "devices one after the other",
                "device %s has %d cables leaving its Sync Out without a splitter", L(v, i), v->out_deg[i]);
    }

    /* the external trigger */
    ks_rig_trigger *t = &rig->trigger;
    if (!t->present)
        return;
    if (t->to < 0 || t->to >= v->n) {
        int root = -1, roots = 0;
        for (int i = 0; i < v->n; i++) {
            if (v->in[i] == 0 && v->out_deg[i] > 0) {
                root = i;
                roots++;
            }
        }
        if (roots == 1)
            t->to = root;
        else if (v->n == 1)
            t->to = 0;
        else {
            for (int i = 0; i < v->n; i++)
                if (rig->devices[i].role == KS_ROLE_MASTER && t->to < 0)
                    t->to = i;
        }
        if (t->to < 0 || t->to >= v->n) {
            t->to = -1;
            ERR("trigger-target", -1, t->line,
                "add 'to: DEVICE' to the trigger section naming the master whose Sync In it feeds",
                "the external trigger does not say which device it feeds, and the cables do not show a single "
                "master");
            return;
        }
    }
    v->fed[t->to] = true;
    if (v->in_cable[t->to] >= 0) {
        const ks_rig_cable *k = &rig->cables[v->in_cable[t->to]];
        ERR("sync-in-twice", t->to, t->line,
            "the trigger feeds the master's Sync In; remove the cable from the other device or feed the trigger "
            "to the device at the start of the chain",
            "device %s gets both the external trigger and the cable from %s in its Sync In", L(v, t->to),
            L(v, k->from));
    }
}

/* Depth-first search for cycles in the cable graph; each cycle is reported once. */
static void find_cycles(vctx *v)
{
    int color[KS_RIG_MAX_DEVICES] = {0}; /* 0 new, 1 on the stack, 2 done */
    int stack[KS_RIG_MAX_DEVICES + 1], edge[KS_RIG_MAX_DEVICES + 1];
    for (int s = 0; s < v->n; s++) {
        if (color[s])
            continue;
        int top = 0;
        stack[0] = s;
        edge[0] = 0;
        color[s] = 1;
        while (top >= 0) {
            int u = stack[top];
            int c = edge[top]++;
            if (c >= v->ncab) {
                color[u] = 2;
                top--;
                continue;
            }
            const ks_rig_cable *k = &v->rig->cables[c];
            if (!v->cable_ok[c] || k->from != u || k->to == u)
                continue;
            int w = k->to;
            if (color[w] == 0) {
                color[w] = 1;
                stack[++top] = w;
                edge[top] = 0;
            } else if (color[w] == 1 && !v->in_cycle[w]) {
                char names[200] = "";
                int start = top;
                while (start > 0 && stack[start] != w)
                    start--;
                for (int i = start; i <= top; i++) {
                    v->in_cycle[stack[i]] = true;
                    size_t used = strlen(names);
                    snprintf(names + used, sizeof names - used, "%s -> ", L(v, stack[i]));
                }
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s", L(v, w));
                ERR("sync-cycle", w, k->line,
                    "sync cables must run from the master outwards; remove the cable that closes the loop "
                    "(the last device's Sync Out stays empty)",
                    "the sync cables form a loop: %s", names);
            }
        }
    }
}

/* ---- roles, master, topology ---- */

static void derive_roles(vctx *v)
{
    ks_rig *rig = v->rig;
    /* Masters: where a sync signal starts (a Sync Out with nothing in Sync In, or the trigger), plus
     * devices declared master that nothing feeds. */
    int masters[KS_RIG_MAX_DEVICES], nm = 0;
    for (int i = 0; i < v->n; i++) {
        bool source = v->in[i] == 0 && !v->in_cycle[i] && (v->out_deg[i] > 0 || v->fed[i]);
        bool declared = rig->devices[i].role == KS_ROLE_MASTER && v->in[i] == 0;
        if (source || declared)
            masters[nm++] = i;
    }
    for (int i = 0; i < v->n; i++) {
        if (rig->devices[i].role == KS_ROLE_MASTER && v->in[i] > 0 && v->in_cable[i] >= 0 && !v->fed[i])
            ERR("master-sync-in", i, rig->cables[v->in_cable[i]].line,
                "unplug the cable from the master's Sync In (only an external trigger may feed a master), or "
                "declare the device a subordinate",
                "device %s is declared master but %s's Sync Out feeds its Sync In", L(v, i),
                L(v, rig->cables[v->in_cable[i]].from));
    }
    if (nm > 1) {
        char names[200] = "";
        for (int m = 0; m < nm; m++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", m ? ", " : "", L(v, masters[m]));
        }
        ERR("multiple-masters", masters[1], dev_line(v, masters[1]),
            "a rig has exactly one master: cable the Sync In of every other starting device from the end of the "
            "master's chain, or split the rig into separate rig files",
            "the rig has %d masters (%s): each starts its own sync signal", nm, names);
        /* keep the declared master if there is exactly one, for later messages */
        int declared = -1, count = 0;
        for (int m = 0; m < nm; m++)
            if (rig->devices[masters[m]].role == KS_ROLE_MASTER) {
                declared = masters[m];
                count++;
            }
        rig->master = count == 1 ? declared : -1;
    } else if (nm == 1) {
        rig->master = masters[0];
    }

    /* derived roles: from the cables */
    for (int i = 0; i < v->n; i++) {
        if (v->in[i] > 0)
            rig->devices[i].derived_role = KS_ROLE_SUBORDINATE;
        else if (v->out_deg[i] > 0 || v->fed[i] || i == rig->master)
            rig->devices[i].derived_role = KS_ROLE_MASTER;
        else
            rig->devices[i].derived_role = KS_ROLE_STANDALONE;
    }
    if (rig->master >= 0) {
        int queue[KS_RIG_MAX_DEVICES], qh = 0, qt = 0;
        queue[qt++] = rig->master;
        v->reach[rig->master] = true;
        while (qh < qt) {
            int u = queue[qh++];
            for (int c = 0; c < v->ncab; c++) {
                const ks_rig_cable *k = &rig->cables[c];
                if (v->cable_ok[c] && k->from == u && !v->reach[k->to]) {
                    v->reach[k->to] = true;
                    queue[qt++] = k->to;
                }
            }
        }
    }

    bool any_cable = false, any_declared_sub = false;
    for (int i = 0; i < v->n; i++) {
        any_cable |= connected(v, i);
        any_declared_sub |= rig->devices[i].role == KS_ROLE_SUBORDINATE;
    }
    if (nm == 0 && (any_cable || any_declared_sub))
        ERR("no-master", -1, 0,
            "declare one device 'role: master' and run a cable from its Sync Out to the first subordinate's Sync In",
            "the rig has no master: nothing starts the sync signal, so every subordinate would wait forever");

    /* declared roles against the cables */
    for (int i = 0; i < v->n; i++) {
        const ks_rig_device *d = &rig->devices[i];
        switch (d->role) {
        case KS_ROLE_SUBORDINATE:
            /* a device the external trigger feeds runs as subordinate (k4arecorder --external-sync
             * Subordinate): declaring it so is right */
            if (!v->fed[i] && v->in[i] == 0 && v->out_deg[i] > 0)
                ERR("role-contradiction", i, d->line,
                    "run a cable from the master's Sync Out (or the previous subordinate's) into its Sync In, or "
                    "declare it master",
                    "device %s is declared subordinate but nothing feeds its Sync In while its Sync Out feeds other "
                    "devices, which makes it a master",
                    L(v, i));
            break;
        case KS_ROLE_STANDALONE:
            if (connected(v, i))
                ERR("role-contradiction", i, d->line,
                    "unplug its sync cables, or set 'role: auto' so the cables decide",
                    "device %s is declared standalone but has sync cables (%d in, %d out%s)", L(v, i), v->in[i],
                    v->out_deg[i], v->fed[i] ? ", external trigger" : "");
            break;
        default:
            break;
        }
    }

    /* every subordinate reachable from the master */
    for (int i = 0; i < v->n; i++) {
        const ks_rig_device *d = &rig->devices[i];
        if (i == rig->master)
            continue;
        bool is_master = false;
        for (int m = 0; m < nm; m++)
            is_master |= masters[m] == i;
        if (is_master)
            continue; /* reported as multiple-masters */
        if (rig->master >= 0 && !v->reach[i] && (v->in[i] > 0 || d->role == KS_ROLE_SUBORDINATE))
            ERR("subordinate-unreachable", i, d->line,
                "connect its Sync In to the Sync Out of the master or of a subordinate of the master's chain",
                "subordinate %s cannot receive the sync signal from the master %s", L(v, i), L(v, rig->master));
        else if (rig->master < 0 && nm == 0 && d->role == KS_ROLE_SUBORDINATE && v->in[i] == 0)
            ERR("subordinate-unreachable", i, d->line,
                "connect its Sync In to the master's Sync Out (or the previous subordinate's)",
                "subordinate %s has no cable into its Sync In", L(v, i));
        else if (rig->master >= 0 && !connected(v, i) && d->role == KS_ROLE_AUTO)
            WARN("device-unsynced", i, d->line,
                 "connect its Sync In to the chain, or declare 'role: standalone' if it is meant to run alone",
                 "device %s has no sync cable and will run unsynchronized next to the master %s", L(v, i),
                 L(v, rig->master));
    }

    /* the master drives the chain through its Sync Out; a device fed by the external trigger is the
     * head of the chain but runs as subordinate, which needs only its Sync In */
    if (rig->master >= 0 && v->out_deg[rig->master] == 0 && v->n >= 1 && !v->fed[rig->master]) {
        int m = rig->master;
        ERR("master-no-sync-out", m, dev_line(v, m),
            "plug a cable into the master's Sync Out (to the first subordinate); a single device without "
            "subordinates runs as standalone",
            "master %s has no cable in its Sync Out; the SDK refuses to start a master without one", L(v, m));
    }
}

static void derive_topology(vctx *v)
{
    ks_rig *rig = v->rig;
    int m = rig->master;
    bool any = false;
    for (int i = 0; i < v->n; i++)
        any |= connected(v, i);
    if (!any) {
        rig->topology = KS_TOPOLOGY_STANDALONE;
        if (v->n > 1) {
            bool all_declared = true;
            for (int i = 0; i < v->n; i++)
                all_declared &= rig->devices[i].role == KS_ROLE_STANDALONE;
            ks_findings_add(v->out, all_declared ? KS_SEV_INFO : KS_SEV_WARNING, "standalone-rig", -1, 0,
                            "to synchronize them, add a 'chain:' or 'star:' (or 'cables:') section; see "
                            "docs/rig-file.md",
                            "the rig has %d devices but no sync cables: they run unsynchronized and their frames "
                            "cannot be matched by device time",
                            v->n);
        }
        return;
    }
    if (m < 0 || v->out_deg[m] == 0)
        return;
    if (v->out_deg[m] > 1) {
        rig->topology = KS_TOPOLOGY_STAR;
        int subs = 0;
        for (int c = 0; c < v->ncab; c++) {
            const ks_rig_cable *k = &rig->cables[c];
            if (!v->cable_ok[c] || k->from != m || k->to == m)
                continue;
            if (++subs == ks_max_star_subordinates() + 1) {
                char fix[160];
                snprintf(fix, sizeof fix,
                         "a star takes the master and %d subordinates (one headphone splitter); use a daisy chain "
                         "for more devices",
                         ks_max_star_subordinates());
                ERR("star-size", k->to, k->line, fix,
                    "the master %s's splitter feeds %d subordinates; a star supports at most %d (%s is one too many)",
                    L(v, m), v->out_deg[m], ks_max_star_subordinates(), L(v, k->to));
            }
            if (v->out_deg[k->to] > 0)
                ERR("unsupported-topology", k->to, k->line,
                    "use either a star (master + splitter + subordinates with empty Sync Out) or one daisy chain",
                    "subordinate %s of the star around %s passes the signal on to further devices; chains behind "
                    "a splitter are not a supported wiring",
                    L(v, k->to), L(v, m));
        }
        return;
    }
    rig->topology = KS_TOPOLOGY_DAISY_CHAIN;
    int u = m, subs = 0;
    bool seen[KS_RIG_MAX_DEVICES] = {false};
    seen[m] = true;
    while (true) {
        int next = -1, line = 0;
        for (int c = 0; c < v->ncab; c++) {
            const ks_rig_cable *k = &rig->cables[c];
            if (v->cable_ok[c] && k->from == u && k->to != u) {
                next = k->to;
                line = k->line;
                break;
            }
        }
        if (next < 0 || seen[next])
            break;
        seen[next] = true;
        if (++subs == ks_max_daisy_chain_subordinates() + 1) {
            char fix[160];
            snprintf(fix, sizeof fix,
                     "a daisy chain carries at most %d subordinates: move the extra devices to a second rig (with "
                     "its own master) or drop them",
                     ks_max_daisy_chain_subordinates());
            ERR("daisy-chain-length", next, line, fix,
                "the daisy chain from %s reaches %s as subordinate number %d; at most %d are supported", L(v, m),
                L(v, next), subs, ks_max_daisy_chain_subordinates());
        }
        if (v->out_deg[next] > 1)
            ERR("unsupported-topology", next, line,
                "only the master's Sync Out may be split (star); chain the devices one after the other",
                "subordinate %s splits its Sync Out to %d devices; a split after the master is not a supported "
                "wiring",
                L(v, next), v->out_deg[next]);
        u = next;
    }
}

/* ---- camera configuration, through the SDK's rules ---- */

static void config_from_rig(const ks_rig *rig, ks_device_config *cfg, ks_wired_sync_mode mode)
{
    ks_device_config_init(cfg);
    cfg->color_format = rig->camera.color_format;
    cfg->color_resolution = rig->camera.color_resolution;
    cfg->depth_mode = rig->camera.depth_mode;
    cfg->camera_fps = rig->camera.fps;
    cfg->synchronized_images_only = rig->camera.synchronized_images_only;
    cfg->wired_sync_mode = mode;
}

static void check_camera(vctx *v)
{
    ks_rig *rig = v->rig;
    ks_device_config cfg;
    ks_error e;
    config_from_rig(rig, &cfg, KS_SYNC_STANDALONE);
    int line = rig->camera.line;
    if (ks_device_config_check(&cfg, &e) != KS_OK) {
        /* say which setting to change: an fps that works, or a format that works, else the SDK's words */
        char fps_ok[32] = "";
        for (int f = 0; f < KS_FPS_COUNT; f++) {
            ks_device_config alt = cfg;
            alt.camera_fps = (ks_fps)f;
            ks_error scratch;
            if (f != (int)cfg.camera_fps && ks_device_config_check(&alt, &scratch) == KS_OK) {
                size_t used = strlen(fps_ok);
                snprintf(fps_ok + used, sizeof fps_ok - used, "%s%d", used ? " or " : "", ks_fps_hz((ks_fps)f));
            }
        }
        char fmt_ok[64] = "";
        for (int f = 0; f < KS_FORMAT_COUNT; f++) {
            ks_device_config alt = cfg;
            alt.color_format = (ks_image_format)f;
            ks_error scratch;
            if (f != (int)cfg.color_format && ks_device_config_check(&alt, &scratch) == KS_OK) {
                size_t used = strlen(fmt_ok);
                snprintf(fmt_ok + used, sizeof fmt_ok - used, "%s%s", used ? ", " : "",
                         ks_image_format_name((ks_image_format)f));
            }
        }
        char fix[200];
        if (fps_ok[0]) {
            snprintf(fix, sizeof fix, "set camera.fps to %s, or choose modes that run at %d fps", fps_ok,
                     ks_fps_hz(cfg.camera_fps));
            ERR("camera-fps", -1, line, fix, "camera: %s", e.message);
        } else if (fmt_ok[0]) {
            snprintf(fix, sizeof fix, "set camera.color_format to one of: %s", fmt_ok);
            ERR("color-format", -1, line, fix, "camera: %s", e.message);
        } else {
            ERR("camera-config", -1, line, "change the camera section as the message says (docs/rig-file.md)",
                "camera: %s", e.message);
        }
        return;
    }
    if (rig->master >= 0 && !(rig->trigger.present && rig->trigger.to == rig->master)) {
        config_from_rig(rig, &cfg, KS_SYNC_MASTER);
        if (ks_device_config_check(&cfg, &e) != KS_OK)
            ERR("master-color", rig->master, section_line(line, dev_line(v, rig->master)),
                "turn the color camera on (camera.color_resolution, e.g. 720P): the master's color camera drives "
                "the sync signal",
                "master %s: %s", L(v, rig->master), e.message);
    }
}

/* ---- external trigger ---- */

static void check_trigger(vctx *v)
{
    const ks_rig *rig = v->rig;
    const ks_rig_trigger *t = &rig->trigger;
    if (!t->present)
        return;
    const ks_trigger_spec *s = ks_trigger_spec_get();
    int dev = t->to;
    ks_fps fps;
    char allowed[48] = "";
    for (int f = KS_FPS_COUNT - 1; f >= 0; f--) {
        size_t used = strlen(allowed);
        snprintf(allowed + used, sizeof allowed - used, "%s%d", used ? ", " : "", ks_fps_hz((ks_fps)f));
    }
    if (!ks_trigger_frequency_supported(t->frequency_hz, &fps)) {
        char fix[200];
        snprintf(fix, sizeof fix,
                 "use a generator locked to exactly %d Hz (the camera fps; within %g ppm); an 'almost' right "
                 "frequency drifts against the device",
                 ks_fps_hz(rig->camera.fps), s->frequency_tolerance_ppm);
        ERR("trigger-frequency", dev, t->line, fix,
            "the external trigger into %s runs at %.6g Hz; a master accepts only exactly %s Hz", L(v, dev), t->frequency_hz,
            allowed);
    } else if (fps != rig->camera.fps) {
        char fix[160];
        snprintf(fix, sizeof fix, "set the trigger to %d Hz or camera.fps to %d", ks_fps_hz(rig->camera.fps),
                 ks_fps_hz(fps));
        ERR("trigger-fps-mismatch", dev, t->line, fix,
            "the external trigger into %s runs at %d Hz but the cameras are set to %d fps; they must be equal",
            L(v, dev), ks_fps_hz(fps), ks_fps_hz(rig->camera.fps));
    }
    if (!(t->pulse_width_us > s->min_pulse_width_us)) {
        char fix[160];
        snprintf(fix, sizeof fix, "widen the trigger's high pulse to more than %g us", s->min_pulse_width_us);
        ERR("trigger-pulse-width", dev, t->line, fix,
            "the trigger pulse into %s is %g us wide; a master needs a pulse wider than %g us", L(v, dev),
            t->pulse_width_us, s->min_pulse_width_us);
    }
    if (t->voltage_v < s->min_high_v) {
        char fix[160];
        snprintf(fix, sizeof fix, "drive the trigger at %g V TTL/CMOS (a level shifter fixes 3.3 V outputs)",
                 s->voltage_v);
        ERR("trigger-voltage", dev, t->line, fix,
            "the trigger into %s has a high level of %g V, below the Sync In threshold of %g V (0.7 x Vcc, "
            "SDK issue #1844): the device would not see the pulses",
            L(v, dev), t->voltage_v, s->min_high_v);
    } else if (t->voltage_v > s->voltage_v + s->voltage_tolerance_v) {
        char fix[160];
        snprintf(fix, sizeof fix, "drive the trigger at %g V TTL/CMOS (at most %g V)", s->voltage_v,
                 s->voltage_v + s->voltage_tolerance_v);
        ERR("trigger-voltage", dev, t->line, fix,
            "the trigger into %s has a high level of %g V, above the %g V TTL/CMOS level Sync In is made for "
            "(+-%g V)",
            L(v, dev), t->voltage_v, s->voltage_v, s->voltage_tolerance_v);
    } else if (t->voltage_v < s->voltage_v - s->voltage_tolerance_v) {
        char fix[160];
        snprintf(fix, sizeof fix, "drive the trigger at %g V TTL/CMOS (a level shifter fixes 3.3-4.5 V outputs)",
                 s->voltage_v);
        WARN("trigger-voltage-low", dev, t->line, fix,
             "the trigger into %s has a high level of %g V: above the %g V threshold (0.7 x Vcc, SDK issue #1844), "
             "so it should be seen, but below the %g V TTL/CMOS level the sync documentation specifies, with "
             "little margin for noise and cable loss",
             L(v, dev), t->voltage_v, s->min_high_v, s->voltage_v);
    }
    if (t->drive_ma < s->min_drive_ma) {
        char fix[160];
        snprintf(fix, sizeof fix, "use a driver (buffer) that sources at least %g mA", s->min_drive_ma);
        ERR("trigger-drive", dev, t->line, fix, "the trigger into %s drives %g mA; Sync In needs at least %g mA", L(v, dev), t->drive_ma,
            s->min_drive_ma);
    }
}

/* ---- exposure ---- */

static void check_exposure(vctx *v)
{
    const ks_rig *rig = v->rig;
    const ks_rig_exposure *x = &rig->exposure;
    int line = x->line;
    int pl_hz = x->powerline == KS_POWERLINE_50HZ ? 50 : 60;
    if (rig->camera.color_resolution == KS_COLOR_OFF)
        return; /* the exposure is the color camera's */
    if (!x->manual) {
        int rounded = ks_exposure_round_up(x->powerline, x->exposure_us);
        char fix[160];
        snprintf(fix, sizeof fix, "set 'exposure: {mode: manual, us: %d, powerline: %d}' (the same on every device)",
                 rounded, pl_hz);
        WARN("auto-exposure", -1, line, fix,
             "auto exposure lets each color camera change its exposure, which moves its capture timing and "
             "breaks sync");
        return;
    }
    int rounded = ks_exposure_round_up(x->powerline, x->exposure_us);
    if (x->exposure_us > ks_exposure_max_us(x->powerline)) {
        char fix[160];
        snprintf(fix, sizeof fix, "set exposure.us to at most %d", ks_exposure_max_us(x->powerline));
        WARN("exposure-rounded", -1, line, fix,
             "exposure %d us is above the longest %d Hz table entry; the devices will use %d us", x->exposure_us,
             pl_hz, rounded);
    } else if (rounded != x->exposure_us) {
        char fix[160];
        snprintf(fix, sizeof fix, "write exposure.us: %d so the file says what the devices do", rounded);
        WARN("exposure-rounded", -1, line, fix,
             "exposure %d us is not in the %d Hz table; the devices round it up and will use %d us", x->exposure_us,
             pl_hz, rounded);
    }
    int period = ks_frame_period_us(rig->camera.fps);
    if (rounded > period) {
        int n, best = 0;
        const int *t = ks_exposure_table(x->powerline, &n);
        for (int i = 0; i < n; i++)
            if (t[i] <= period)
                best = t[i];
        char fix[160];
        snprintf(fix, sizeof fix, "use at most %d us at %d fps, or a lower fps", best, ks_fps_hz(rig->camera.fps));
        ERR("exposure-exceeds-frame", -1, line, fix,
            "the color exposure of %d us is longer than the %d us frame period at %d fps; frames would be "
            "dropped and sync lost",
            rounded, period, ks_fps_hz(rig->camera.fps));
    }
}

/* ---- plan settings ---- */

static void check_plan(vctx *v)
{
    const ks_rig *rig = v->rig;
    int line = rig->plan_line;
    const ks_depth_mode_info *dm = ks_depth_mode_get(rig->camera.depth_mode);
    if (rig->guard_us > 0 && dm && dm->laser_pulses > 0) {
        int def = ks_laser_default_guard_us(rig->camera.depth_mode);
        char fix[160], what[48];
        const char *opt = rig->guard_option;
        if (opt[0]) {
            snprintf(fix, sizeof fix, "leave out %s (default %d us) or give it at least %d", opt, def, def);
            snprintf(what, sizeof what, "%s", opt);
            line = 0;
        } else {
            snprintf(fix, sizeof fix, "remove guard_us (default %d us) or set it to at least %d us", def, def);
            snprintf(what, sizeof what, "plan.guard_us");
        }
        if (rig->guard_us <= dm->pulse_width_us)
            ERR("guard-too-small", -1, line, fix,
                "%s %d us is not more than the %d us laser pulse: pulses of two devices could overlap", what,
                rig->guard_us, dm->pulse_width_us);
        else if (rig->guard_us < def)
            WARN("guard-below-default", -1, line, fix,
                 "%s %d us leaves less than the %d us clock margin between camera and firmware clocks "
                 "after the %d us pulse",
                 what, rig->guard_us, ks_laser_clock_margin_us(), dm->pulse_width_us);
    }
    if (rig->aim == KS_AIM_INTERLEAVED && v->n > 1)
        INFO("interleaved-untested", -1, line, "verify the rig with 'kinsync verify' before relying on it",
             "interleaving devices for a higher effective frame rate was described by Microsoft but never tested");
}

/* ---- hosts and USB ---- */

static void check_usb(vctx *v)
{
    const ks_rig *rig = v->rig;
    bool done[KS_RIG_MAX_DEVICES] = {false};
    double per_device = ks_stream_bandwidth_mbps(rig->camera.color_resolution, rig->camera.color_format,
                                                 rig->camera.depth_mode, rig->camera.fps);
    double controller = ks_usb3_controller_bandwidth_mbps();
    for (int i = 0; i < v->n; i++) {
        if (done[i])
            continue;
        const ks_rig_device *a = &rig->devices[i];
        int count = 1, last = i;
        bool unknown = !a->usb_controller[0];
        char names[200];
        snprintf(names, sizeof names, "%s", L(v, i));
        for (int j = i + 1; j < v->n; j++) {
            if (strcmp(rig->devices[j].host, a->host) != 0)
                continue;
            done[j] = true;
            count++;
            last = j;
            unknown |= !rig->devices[j].usb_controller[0];
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, ", %s", L(v, j));
        }
        if (count < 2)
            continue;
        char fix[200];
        snprintf(fix, sizeof fix,
                 "on Linux set usbcore.usbfs_memory_mb=%d on the kernel command line (default %d MB); or use one "
                 "host per device",
                 ks_usbfs_recommended_mb(count), ks_usbfs_default_mb());
        WARN("usbfs-memory", last, rig->devices[last].line, fix,
             "host %s drives %d devices (%s); the default USB memory carries one device", a->host, count, names);
        if (unknown)
            INFO("usb-controller-unknown", last, rig->devices[last].line,
                 "add 'usb_controller:' (the PCI address, from lsusb -t / lspci) to each device on the host",
                 "host %s drives %d devices but not all declare their USB controller; each needs its own", a->host,
                 count);
    }
    /* devices sharing one controller of one host */
    bool seen[KS_RIG_MAX_DEVICES] = {false};
    for (int i = 0; i < v->n; i++) {
        const ks_rig_device *a = &rig->devices[i];
        if (seen[i] || !a->usb_controller[0])
            continue;
        int count = 1, last = i;
        char names[200];
        snprintf(names, sizeof names, "%s", L(v, i));
        for (int j = i + 1; j < v->n; j++) {
            const ks_rig_device *b = &rig->devices[j];
            if (strcmp(b->host, a->host) == 0 && strcmp(b->usb_controller, a->usb_controller) == 0) {
                seen[j] = true;
                count++;
                last = j;
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, ", %s", L(v, j));
            }
        }
        if (count < 2)
            continue;
        WARN("usb-controller-shared", last, rig->devices[last].line,
             "give each device its own USB 3 controller (a PCIe USB card adds controllers)",
             "devices %s share USB controller %s on host %s", names, a->usb_controller, a->host);
        if (per_device * count > controller) {
            char fix[200];
            snprintf(fix, sizeof fix,
                     "move devices to other controllers (at most %d per controller with these modes) or lower the "
                     "resolution/fps",
                     (int)floor(controller / per_device));
            ERR("usb-bandwidth", last, rig->devices[last].line, fix,
                "devices %s on controller %s of host %s need about %.0f MB/s together; a USB 3 controller "
                "carries about %.0f MB/s",
                names, a->usb_controller, a->host, per_device * count, controller);
        }
    }
}

/* ---- entry point ---- */

ks_status ks_rig_validate(ks_rig *rig, ks_findings *out)
{
    if (!rig || !out)
        return KS_EINVAL;
    int before = ks_findings_count(out, KS_SEV_ERROR);
    vctx *v = calloc(1, sizeof *v);
    if (!v) {
        ks_findings_add(out, KS_SEV_ERROR, "out-of-memory", -1, 0, "free memory and retry",
                        "out of memory validating the rig");
        return KS_ENOMEM;
    }
    v->rig = rig;
    v->out = out;
    v->n = rig->device_count < 0 ? 0 : rig->device_count > KS_RIG_MAX_DEVICES ? KS_RIG_MAX_DEVICES
                                                                              : rig->device_count;
    v->ncab = rig->cable_count < 0 ? 0 : rig->cable_count > KS_RIG_MAX_CABLES ? KS_RIG_MAX_CABLES
                                                                             : rig->cable_count;
    rig->topology = KS_TOPOLOGY_UNKNOWN;
    rig->master = -1;
    for (int i = 0; i < v->n; i++)
        rig->devices[i].derived_role = KS_ROLE_AUTO;

    if (v->n == 0) {
        ERR("no-devices", -1, 0, "list the devices under 'devices:' with their serial numbers",
            "the rig has no devices");
    } else {
        check_devices(v);
        check_cables(v);
        find_cycles(v);
        derive_roles(v);
        derive_topology(v);
    }
    check_camera(v);
    check_trigger(v);
    check_exposure(v);
    check_plan(v);
    check_usb(v);
    free(v);
    return ks_findings_count(out, KS_SEV_ERROR) > before ? KS_EINVAL : KS_OK;
}
