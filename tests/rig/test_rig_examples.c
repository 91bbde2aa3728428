/* Every example rig in examples/rigs/ loads and validates without errors, and derives the roles and
 * topology its comments describe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinsync/rig.h"
#include "ks_test.h"

static void dump(const ks_findings *f)
{
    for (int i = 0; i < f->count; i++)
        fprintf(stderr, "  %s %s dev=%d line=%d: %s; fix: %s\n", ks_severity_name(f->items[i].severity),
                f->items[i].rule, f->items[i].device, f->items[i].line, f->items[i].message, f->items[i].fix);
}

static const ks_rig *load_valid(const char *file, ks_rig *rig)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples/rigs/%s", KS_SOURCE_DIR, file);
    ks_error e;
    ks_status st = ks_rig_load(path, rig, &e);
    KS_CHECK_MSG(st == KS_OK, "%s: %s", file, e.message);
    if (st != KS_OK)
        return NULL;
    ks_findings f;
    ks_findings_init(&f);
    st = ks_rig_validate(rig, &f);
    KS_CHECK_MSG(st == KS_OK && ks_findings_count(&f, KS_SEV_ERROR) == 0, "%s has errors", file);
    if (getenv("KS_VERBOSE") || st != KS_OK) {
        fprintf(stderr, "%s:\n", file);
        dump(&f);
    }
    ks_findings_free(&f);
    return rig;
}

static int count_role(const ks_rig *rig, ks_role r)
{
    int n = 0;
    for (int i = 0; i < rig->device_count; i++)
        n += rig->devices[i].derived_role == r;
    return n;
}

static void star_2(void)
{
    ks_rig rig;
    if (!load_valid("star-2.yaml", &rig))
        return;
    KS_CHECK_STR(rig.name, "star-2");
    KS_CHECK_INT(rig.device_count, 3);
    KS_CHECK_INT(rig.cable_count, 2);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_STAR);
    KS_CHECK_INT(rig.master, ks_rig_find_device(&rig, "front"));
    KS_CHECK_INT(count_role(&rig, KS_ROLE_SUBORDINATE), 2);
    KS_CHECK(rig.cables[0].splitter && rig.cables[1].splitter);
    KS_CHECK_NEAR(rig.cables[0].length_m, 3.0, 0);
    KS_CHECK_INT(rig.camera.color_resolution, KS_COLOR_1080P);
    KS_CHECK(rig.camera.synchronized_images_only);
}

static void chain_3(void)
{
    ks_rig rig;
    if (!load_valid("chain-3.yaml", &rig))
        return;
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_DAISY_CHAIN);
    KS_CHECK_INT(rig.master, 0);
    KS_CHECK_INT(rig.devices[0].derived_role, KS_ROLE_MASTER);
    KS_CHECK_INT(rig.devices[0].role, KS_ROLE_AUTO);
    KS_CHECK_INT(rig.devices[2].derived_role, KS_ROLE_SUBORDINATE);
    KS_CHECK_INT(rig.cables[1].from, 1);
    KS_CHECK_INT(rig.cables[1].to, 2);
    KS_CHECK_STR(rig.devices[1].usb_controller, "0000:03:00.0");
}

static void chain_9(void)
{
    ks_rig rig;
    if (!load_valid("chain-9.yaml", &rig))
        return;
    KS_CHECK_INT(rig.device_count, 9);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_DAISY_CHAIN);
    KS_CHECK_INT(count_role(&rig, KS_ROLE_SUBORDINATE), 8);
    KS_CHECK_INT(rig.guard_us, 160);
    KS_CHECK_INT(ks_rig_guard_us(&rig), 160);
    KS_CHECK_INT(rig.camera.depth_mode, KS_DEPTH_NFOV_2X2BINNED);
}

static void external_trigger(void)
{
    ks_rig rig;
    if (!load_valid("external-trigger.yaml", &rig))
        return;
    KS_CHECK(rig.trigger.present);
    KS_CHECK_INT(rig.trigger.to, 0);
    KS_CHECK_INT(rig.master, 0);
    KS_CHECK_INT(rig.camera.fps, KS_FPS_15);
    KS_CHECK_INT(rig.exposure.powerline, KS_POWERLINE_50HZ);
    KS_CHECK_INT(rig.ts_convention, KS_TS_MID_EXPOSURE);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_DAISY_CHAIN);
}

static void interleaved(void)
{
    ks_rig rig;
    if (!load_valid("interleaved.yaml", &rig))
        return;
    KS_CHECK_INT(rig.aim, KS_AIM_INTERLEAVED);
    KS_CHECK(rig.has_simulation);
    KS_CHECK_INT(rig.exposure.exposure_us, 2500);
}

/* The complete example of docs/rig-file.md (its first yaml block) loads and is valid. */
static void doc_example(void)
{
    FILE *fp = fopen(KS_SOURCE_DIR "/docs/rig-file.md", "rb");
    KS_CHECK(fp != NULL);
    if (!fp)
        return;
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    char *start = strstr(doc, "```yaml\n");
    KS_CHECK(start != NULL);
    if (!start)
        return;
    start += strlen("```yaml\n");
    char *end = strstr(start, "```");
    KS_CHECK(end != NULL);
    if (!end)
        return;
    ks_rig rig;
    ks_error e;
    ks_status st = ks_rig_load_string(start, (size_t)(end - start), "rig-file.md", &rig, &e);
    KS_CHECK_MSG(st == KS_OK, "%s", e.message);
    if (st != KS_OK)
        return;
    ks_findings f;
    ks_findings_init(&f);
    KS_CHECK_INT(ks_rig_validate(&rig, &f), KS_OK);
    KS_CHECK_INT(f.count, 0);
    dump(&f);
    KS_CHECK_STR(rig.name, "studio");
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_DAISY_CHAIN);
    KS_CHECK(rig.trigger.present && rig.trigger.to == 0);
    KS_CHECK(rig.has_simulation);
    ks_findings_free(&f);
}

int main(void)
{
    KS_RUN(doc_example);
    KS_RUN(star_2);
    KS_RUN(chain_3);
    KS_RUN(chain_9);
    KS_RUN(external_trigger);
    KS_RUN(interleaved);
    return KS_TEST_END();
}
