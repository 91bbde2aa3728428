/* The rig file parser: every key and value of docs/rig-file.md, defaults, and the errors for bad
 * YAML, unknown keys, wrong types and bad values: KS_EPARSE, "NAME:LINE: problem; fix", with the
 * allowed values listed. A failed load leaves the caller's rig untouched. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/rig.h"
#include "ks_test.h"
#include "rigtest.h"

typedef struct parse_case {
    const char *text;      /* the line with "#<" is where the error must point */
    const char *needle1;   /* the message must contain these */
    const char *needle2;
} parse_case;

static const parse_case bad[] = {
    {"devices:\n  - serial: A\n    rolle: master #<\n", "unknown key 'rolle'", "role"},
    {"devises: #<\n  - serial: A\n", "unknown key 'devises'", "known keys: rig, devices"},
    {"devices:\n  - {serial: A}\ncamera:\n  depht_mode: NFOV_UNBINNED #<\n", "unknown key 'depht_mode'", "depth_mode"},
    {"devices:\n  - {serial: A}\ncamera:\n  fps: 25 #<\n", "'camera.fps' is '25'", "5, 15, 30"},
    {"devices:\n  - {serial: A}\ncamera:\n  fps: thirty #<\n", "camera.fps", "5, 15, 30"},
    {"devices:\n  - {serial: A}\ncamera:\n  depth_mode: NFOV #<\n", "'NFOV'", "NFOV_UNBINNED, WFOV_2X2BINNED"},
    {"devices:\n  - {serial: A}\ncamera:\n  color_resolution: 4K #<\n", "'4K'", "720P, 1080P"},
    {"devices:\n  - {serial: A}\ncamera:\n  color_format: DEPTH16 #<\n", "'DEPTH16'", "MJPG, NV12, YUY2, BGRA32"},
    {"devices:\n  - {serial: A}\ncamera:\n  imu: maybe #<\n", "camera.imu", "true or false"},
    {"devices:\n  - {serial: A, role: boss} #<\n", "'role' is 'boss'", "auto, master, subordinate, standalone"},
    {"devices:\n  - {serial: A, group: -1} #<\n", "'group' is -1", "between 0 and"},
    {"devices:\n  - {name: x} #<\n", "has no 'serial'", "serial number"},
    {"devices:\n  - {serial: ''} #<\n", "'serial' is empty", "give it a value"},
    {"devices:\n  - {serial: A, host: [a, b]} #<\n", "'host' must be a single value", "host"},
    {"devices:\n  serial: A #<\n", "'devices' must be a list", "- "},
    {"rig: x #<\n", "no 'devices' list", "devices:"},
    {"- a #<\n- b\n", "'the rig file' must be a mapping", "key: value"},
    {"devices:\n  - {serial: A, name: a}\n  - {serial: B, name: b}\nchain: [a, c] #<\n", "device 'c'", "a, b"},
    {"devices:\n  - {serial: A, name: a}\nchain: [a] #<\n", "'chain' lists 1 device", "subordinate"},
    {"devices:\n  - {serial: A, name: a}\nchain: a #<\n", "'chain' must be a list", "chain: [master"},
    {"devices:\n  - {serial: A, name: a}\n  - {serial: B, name: b}\ncables:\n  - {from: a} #<\n", "needs 'from'",
     "Sync In"},
    {"devices:\n  - {serial: A, name: a}\n  - {serial: B, name: b}\ncables:\n  - {from: a, to: b, length_m: far} #<\n",
     "'length_m' must be a number", "far"},
    {"devices:\n  - {serial: A, name: a}\n  - {serial: B, name: b}\ncables:\n  - {from: a, to: b, splitter: 2} #<\n",
     "'splitter' must be true or false", "2"},
    {"devices:\n  - {serial: A, name: a}\n  - {serial: B, name: b}\ncables:\n  - {from: a, to: b, colour: red} #<\n",
     "unknown key 'colour' in cables[0]", "length_m, splitter"},
    {"devices:\n  - {serial: A, name: a}\nstar: {master: a} #<\n", "needs 'master: DEVICE'", "subordinates"},
    {"devices:\n  - {serial: A}\ntrigger: {frequency_hz: 30, pulse_width_us: 10, voltage_v: 5} #<\n",
     "has no 'drive_ma'", "milliamps"},
    {"devices:\n  - {serial: A}\ntrigger:\n  frequency_hz: -1 #<\n  pulse_width_us: 10\n  voltage_v: 5\n  drive_ma: 8\n",
     "'frequency_hz' is -1", "between 0"},
    {"devices:\n  - {serial: A}\nexposure: {mode: shutter} #<\n", "'exposure.mode' is 'shutter'", "manual, auto"},
    {"devices:\n  - {serial: A}\nexposure: {us: 8330, powerline: 55} #<\n", "'exposure.powerline' is '55'", "50, 60"},
    {"devices:\n  - {serial: A}\nexposure: {mode: manual} #<\n", "needs 'us", "table"},
    {"devices:\n  - {serial: A}\nexposure: {us: 0} #<\n", "'exposure.us' is 0", "between 1"},
    {"devices:\n  - {serial: A}\ntimestamps: center #<\n", "'timestamps' is 'center'", "seed"},
    {"devices:\n  - {serial: A}\nplan: {aim: fastest} #<\n", "'plan.aim' is 'fastest'", "simultaneous, interleaved"},
    {"devices:\n  - {serial: A}\nplan: {guard_us: 1e9} #<\n", "plan.guard_us", "whole number"},
    {"devices:\n  - {serial: A}\nplan: {aim: simultaneous, aim: interleaved} #<\n", "appears twice", "keep one"},
    {"devices:\n  - serial: A\n   name: b #<\n", "YAML syntax error", "indentation"},
    {"devices:\n  - {serial: A}\n--- #<\ndevices: []\n", "second YAML document", "---"},
};

static void parse_errors(void)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32], prefix[48];
        snprintf(name, sizeof name, "case%zu.yaml", i);
        ks_rig rig;
        ks_rig_init(&rig);
        snprintf(rig.name, sizeof rig.name, "untouched");
        ks_error e;
        ks_error_clear(&e);
        ks_status st = ks_rig_load_string(bad[i].text, strlen(bad[i].text), name, &rig, &e);
        KS_CHECK_MSG(st == KS_EPARSE, "%s: status %s", name, ks_status_name(st));
        snprintf(prefix, sizeof prefix, "%s:%d:", name, rigtest_marker_line(bad[i].text, "#<"));
        KS_CHECK_MSG(strncmp(e.message, prefix, strlen(prefix)) == 0, "%s: '%s' does not start with '%s'", name,
                     e.message, prefix);
        KS_CHECK_CONTAINS(e.message, bad[i].needle1);
        KS_CHECK_CONTAINS(e.message, bad[i].needle2);
        KS_CHECK_STR(rig.name, "untouched");
        KS_CHECK_INT(rig.device_count, 0);
    }
}

static void empty_and_odd_input(void)
{
    ks_rig rig;
    ks_error e;
    KS_CHECK_INT(ks_rig_load_string("", 0, "empty.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "empty.yaml: the file is empty");
    KS_CHECK_INT(ks_rig_load_string("# only a comment\n", 17, "c.yaml", &rig, &e), KS_EPARSE);
    const char nul[] = "devices:\n  - {serial: A}\0\n";
    KS_CHECK_INT(ks_rig_load_string(nul, sizeof nul - 1, "nul.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "NUL");
    KS_CHECK_INT(ks_rig_load_string("devices: []\n", 12, "none.yaml", &rig, &e), KS_OK);
    KS_CHECK_INT(rig.device_count, 0);
    KS_CHECK_STR(rig.name, "none"); /* default name from the name given */
    KS_CHECK_INT(ks_rig_load_string("devices: []\ncables:\n", 20, "c.yaml", &rig, &e), KS_OK);
    KS_CHECK_INT(rig.cable_count, 0);
    KS_CHECK_INT(ks_rig_load_string("devices: []\ncables: ''\n", 23, "c.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_INT(ks_rig_load(KS_TESTDATA "/rigs/does-not-exist.yaml", &rig, &e), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(e.message, "does-not-exist.yaml");
    KS_CHECK_INT(ks_rig_load(KS_TESTDATA "/rigs", &rig, &e), KS_EIO);
    KS_CHECK_INT(ks_rig_load(NULL, &rig, &e), KS_EINVAL);
    KS_CHECK_INT(ks_rig_load_string(NULL, 0, "x", &rig, &e), KS_EINVAL);

    /* 33 devices: more than the rig model holds */
    char text[4096] = "devices:\n";
    for (int i = 0; i < KS_RIG_MAX_DEVICES + 1; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "  - {serial: S%d}\n", i);
    }
    KS_CHECK_INT(ks_rig_load_string(text, strlen(text), "big.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "big.yaml:34:");
    KS_CHECK_CONTAINS(e.message, "at most 32");
}

/* Bad files on disk: the message names the path and the line. */
static void bad_files(void)
{
    struct {
        const char *file;
        int line;
        const char *needle;
    } files[] = {
        {"unknown-key.yaml", 5, "unknown key 'rolle' in devices[0]"},
        {"bad-indent.yaml", 4, "YAML syntax error"},
        {"unknown-device.yaml", 5, "device 'sbu'"},
        {"bad-fps.yaml", 6, "'camera.fps' is '25'"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512], prefix[560];
        snprintf(path, sizeof path, "%s/rigs/bad/%s", KS_TESTDATA, files[i].file);
        ks_rig rig;
        ks_error e;
        KS_CHECK_INT(ks_rig_load(path, &rig, &e), KS_EPARSE);
        snprintf(prefix, sizeof prefix, "%s:%d:", path, files[i].line);
        KS_CHECK_MSG(strncmp(e.message, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", e.message,
                     prefix);
        KS_CHECK_CONTAINS(e.message, files[i].needle);
    }
}

static void every_key(void)
{
    const char *text = "rig: full\n"
                       "devices:\n"
                       "  - serial: \"000123\"\n"
                       "    name: front\n"
                       "    host: cap1\n"
                       "    role: master\n"
                       "    firmware: 1.6.110079014\n"
                       "    usb_controller: \"0000:00:14.0\"\n"
                       "    group: 2\n"
                       "  - {serial: \"000124\", role: subordinate}\n"
                       "  - {serial: \"000125\", name: back, role: SUBORDINATE}\n"
                       "cables:\n"
                       "  - {from: front, to: \"000124\", length_m: 2.5, splitter: yes}\n"
                       "star: {master: front, subordinates: [back], length_m: 1}\n"
                       "trigger: {frequency_hz: 15, pulse_width_us: 12.5, voltage_v: 5, drive_ma: 20, to: front}\n"
                       "camera:\n"
                       "  color_resolution: 1536p\n"
                       "  color_format: bgra32\n"
                       "  depth_mode: wfov_unbinned\n"
                       "  fps: 15\n"
                       "  synchronized_images_only: true\n"
                       "  imu: on\n"
                       "exposure: {mode: manual, us: 20000, powerline: 50}\n"
                       "timestamps: mid-exposure\n"
                       "plan: {aim: interleaved, guard_us: 200}\n"
                       "simulation:\n"
                       "  anything: [goes, {here: 1}]\n";
    ks_rig rig;
    ks_error e;
    KS_CHECK_INT(ks_rig_load_string(text, strlen(text), "full.yaml", &rig, &e), KS_OK);
    KS_CHECK_STR(rig.name, "full");
    KS_CHECK_STR(rig.path, "");
    KS_CHECK_STR(rig.source, "full.yaml");
    KS_CHECK_INT(rig.device_count, 3);
    const ks_rig_device *d = &rig.devices[0];
    KS_CHECK_STR(d->serial, "000123");
    KS_CHECK_STR(d->name, "front");
    KS_CHECK_STR(d->host, "cap1");
    KS_CHECK_INT(d->role, KS_ROLE_MASTER);
    KS_CHECK_STR(d->firmware, "1.6.110079014");
    KS_CHECK_STR(d->usb_controller, "0000:00:14.0");
    KS_CHECK_INT(d->group, 2);
    KS_CHECK_INT(d->line, 3);
    KS_CHECK_STR(rig.devices[1].name, "000124"); /* name defaults to the serial */
    KS_CHECK_STR(rig.devices[1].host, "localhost");
    KS_CHECK_INT(rig.devices[1].line, 10);
    KS_CHECK_INT(rig.devices[2].role, KS_ROLE_SUBORDINATE);
    KS_CHECK_INT(rig.cable_count, 2);
    KS_CHECK_INT(rig.cables[0].from, 0);
    KS_CHECK_INT(rig.cables[0].to, 1);
    KS_CHECK_NEAR(rig.cables[0].length_m, 2.5, 0);
    KS_CHECK(rig.cables[0].splitter);
    KS_CHECK_INT(rig.cables[0].line, 13);
    KS_CHECK_INT(rig.cables[1].to, 2);
    KS_CHECK(rig.cables[1].splitter);
    KS_CHECK_INT(rig.cables[1].line, 14);
    KS_CHECK(rig.trigger.present);
    KS_CHECK_NEAR(rig.trigger.frequency_hz, 15, 0);
    KS_CHECK_NEAR(rig.trigger.pulse_width_us, 12.5, 0);
    KS_CHECK_NEAR(rig.trigger.voltage_v, 5, 0);
    KS_CHECK_NEAR(rig.trigger.drive_ma, 20, 0);
    KS_CHECK_INT(rig.trigger.to, 0);
    KS_CHECK_INT(rig.trigger.line, 15);
    KS_CHECK_INT(rig.camera.color_resolution, KS_COLOR_1536P);
    KS_CHECK_INT(rig.camera.color_format, KS_FORMAT_BGRA32);
    KS_CHECK_INT(rig.camera.depth_mode, KS_DEPTH_WFOV_UNBINNED);
    KS_CHECK_INT(rig.camera.fps, KS_FPS_15);
    KS_CHECK(rig.camera.synchronized_images_only);
    KS_CHECK(rig.camera.imu);
    KS_CHECK_INT(rig.camera.line, 16);
    KS_CHECK(rig.exposure.manual);
    KS_CHECK_INT(rig.exposure.exposure_us, 20000);
    KS_CHECK_INT(rig.exposure.powerline, KS_POWERLINE_50HZ);
    KS_CHECK_INT(rig.exposure.line, 23);
    KS_CHECK_INT(rig.ts_convention, KS_TS_MID_EXPOSURE);
    KS_CHECK_INT(rig.aim, KS_AIM_INTERLEAVED);
    KS_CHECK_INT(rig.guard_us, 200);
    KS_CHECK_INT(ks_rig_guard_us(&rig), 200);
    KS_CHECK_INT(rig.plan_line, 25);
    KS_CHECK(rig.has_simulation);
    KS_CHECK_INT(ks_rig_find_device(&rig, "back"), 2);
    KS_CHECK_INT(ks_rig_find_device(&rig, "000125"), 2);
    KS_CHECK_INT(ks_rig_find_device(&rig, "nobody"), -1);

    ks_findings f;
    ks_findings_init(&f);
    KS_CHECK_INT(ks_rig_validate(&rig, &f), KS_OK);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_STAR);
    KS_CHECK_INT(rig.master, 0);
    KS_CHECK_INT(rig.devices[2].derived_role, KS_ROLE_SUBORDINATE);
    if (ks_findings_count(&f, KS_SEV_ERROR))
        rigtest_dump(&f);
    ks_findings_free(&f);
}

static void defaults(void)
{
    ks_rig rig;
    ks_rig_init(&rig);
    KS_CHECK_INT(rig.camera.color_resolution, KS_COLOR_720P);
    KS_CHECK_INT(rig.camera.color_format, KS_FORMAT_MJPG);
    KS_CHECK_INT(rig.camera.depth_mode, KS_DEPTH_NFOV_UNBINNED);
    KS_CHECK_INT(rig.camera.fps, KS_FPS_30);
    KS_CHECK(rig.exposure.manual);
    KS_CHECK_INT(rig.exposure.exposure_us, 8330);
    KS_CHECK_INT(rig.exposure.powerline, KS_POWERLINE_60HZ);
    KS_CHECK_INT(rig.ts_convention, KS_TS_MID_EXPOSURE); /* the SDK header and its multi-device test */
    KS_CHECK_INT(rig.aim, KS_AIM_SIMULTANEOUS);
    KS_CHECK_INT(rig.master, -1);
    KS_CHECK_INT(rig.trigger.to, -1);
    KS_CHECK_INT(ks_rig_guard_us(&rig), ks_laser_default_guard_us(KS_DEPTH_NFOV_UNBINNED));

    /* a file's name gives the rig its default name */
    ks_error e;
    KS_CHECK_INT(ks_rig_load(KS_SOURCE_DIR "/tests/data/rigs/minimal.yaml", &rig, &e), KS_OK);
    KS_CHECK_STR(rig.name, "minimal");
    KS_CHECK_CONTAINS(rig.path, "tests/data/rigs/minimal.yaml");
    KS_CHECK_STR(rig.source, rig.path);
    KS_CHECK_INT(rig.device_count, 1);
    KS_CHECK(!rig.has_simulation);
    KS_CHECK(!rig.trigger.present);
    ks_findings f;
    ks_findings_init(&f);
    KS_CHECK_INT(ks_rig_validate(&rig, &f), KS_OK);
    KS_CHECK_INT(f.count, 0);
    KS_CHECK_INT(rig.topology, KS_TOPOLOGY_STANDALONE);
    KS_CHECK_INT(rig.devices[0].derived_role, KS_ROLE_STANDALONE);
    KS_CHECK_INT(rig.master, -1);
    ks_findings_free(&f);
}

static void exposure_default_follows_powerline(void)
{
    const char *text = "devices:\n  - {serial: A}\nexposure: {powerline: 50}\n";
    ks_rig rig;
    ks_error e;
    KS_CHECK_INT(ks_rig_load_string(text, strlen(text), "pl.yaml", &rig, &e), KS_OK);
    KS_CHECK_INT(rig.exposure.exposure_us, ks_exposure_round_up(KS_POWERLINE_50HZ, 8330));
    ks_findings f;
    ks_findings_init(&f);
    KS_CHECK_INT(ks_rig_validate(&rig, &f), KS_OK);
    KS_CHECK_INT(f.count, 0); /* no "rounded" warning for a value the file never asked for */
    ks_findings_free(&f);
}

static void names(void)
{
    for (int r = 0; r < KS_ROLE_COUNT; r++) {
        ks_role back;
        KS_CHECK(ks_role_parse(ks_role_name((ks_role)r), &back) && back == (ks_role)r);
    }
    for (int a = 0; a < KS_AIM_COUNT; a++) {
        ks_aim back;
        KS_CHECK(ks_aim_parse(ks_aim_name((ks_aim)a), &back) && back == (ks_aim)a);
    }
    ks_role r;
    KS_CHECK(!ks_role_parse("boss", &r));
    KS_CHECK(!ks_role_parse(NULL, &r));
    KS_CHECK_STR(ks_topology_name(KS_TOPOLOGY_DAISY_CHAIN), "daisy-chain");
    KS_CHECK_STR(ks_topology_name(KS_TOPOLOGY_STAR), "star");
    KS_CHECK_STR(ks_topology_name(KS_TOPOLOGY_STANDALONE), "standalone");
    KS_CHECK_STR(ks_topology_name((ks_topology)99), "invalid");
    KS_CHECK_STR(ks_severity_name(KS_SEV_WARNING), "warning");
    KS_CHECK_STR(ks_role_name((ks_role)-1), "invalid");
}

/* Hostile nesting (issue 20): 100,000 nested '[' (libyaml is quadratic in flow depth: this ran for
 * hours) is refused before parsing, naming the line; nesting within the bound and brackets inside
 * quoted scalars or comments are not refused. (No timing here: a regression hangs past ctest's
 * timeout.) */
static void deep_nesting(void)
{
    ks_rig rig;
    ks_error e;
    const size_t n = 100000;
    char *deep = malloc(n + 16);
    if (!deep)
        return;
    memcpy(deep, "devices: ", 9);
    memset(deep + 9, '[', n);
    KS_CHECK_INT(ks_rig_load_string(deep, n + 9, "deep.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "deep.yaml:1: brackets nested more than 64 levels");
    /* the same with mappings over several lines */
    for (size_t i = 0; i < n; i++)
        deep[i] = i % 2 ? '\n' : '{';
    KS_CHECK_INT(ks_rig_load_string(deep, n, "deep2.yaml", &rig, &e), KS_EPARSE);
    KS_CHECK_CONTAINS(e.message, "deep2.yaml:65: brackets nested more than 64 levels");
    free(deep);
    /* 20 levels: parsed (the rig then refuses the value, not the nesting) */
    char ok[256];
    snprintf(ok, sizeof ok, "devices: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]\n");
    KS_CHECK(ks_rig_load_string(ok, strlen(ok), "ok.yaml", &rig, &e) != KS_OK);
    KS_CHECK(strstr(e.message, "nested more than") == NULL);
    /* brackets in quoted scalars and comments do not count */
    char q[1024];
    int k = snprintf(q, sizeof q, "rig: '");
    for (int i = 0; i < 60; i++) /* a rig name has at most 63 characters */
        q[k++] = '[';
    k += snprintf(q + k, sizeof q - (size_t)k, "' # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
                                             "devices: []\n");
    KS_CHECK_INT(ks_rig_load_string(q, (size_t)k, "q.yaml", &rig, &e), KS_OK);
}

int main(void)
{
    KS_RUN(deep_nesting);
    KS_RUN(parse_errors);
    KS_RUN(empty_and_odd_input);
    KS_RUN(bad_files);
    KS_RUN(every_key);
    KS_RUN(defaults);
    KS_RUN(exposure_default_follows_powerline);
    KS_RUN(names);
    return KS_TEST_END();
}
