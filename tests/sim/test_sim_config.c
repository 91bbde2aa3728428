/* The `simulation:` section of a rig file: every key, device references by name, errors with
 * FILE:LINE and the fix; the example rig loads and runs. */
#include <stdlib.h>

#include "ks_test.h"
#include "support/sim_rigs.h"

static const char *RIG =
    "rig: simtest\n"
    "devices:\n"
    "  - {serial: \"000000000001\", name: front}\n"
    "  - {serial: \"000000000002\", name: left, host: hostb}\n"
    "cables:\n"
    "  - {from: front, to: left, length_m: 3}\n"
    "simulation:\n"
    "  seed: 1234\n"
    "  mode: paced\n"
    "  clock: {offset_us: 10, drift_ppm: 30, jitter_us: 2}\n"
    "  devices:\n"
    "    - device: left\n"
    "      clock: {drift_ppm: -7.5, jitter_us: 0.5}\n"
    "      pose: {position: [1000, 2000, 1500], look_at: [0, 0, 500], roll_deg: 5}\n"
    "  propagation_ns_per_m: 4.5\n"
    "  hop_delay_ns: 80\n"
    "  default_cable_m: 1.5\n"
    "  usb: {latency_us: 2500, jitter_us: 100}\n"
    "  start_latency_ms: 250\n"
    "  queue_frames: 3\n"
    "  device_buffer_frames: 1\n"
    "  usbfs_mb: 16\n"
    "  host_drift_ppm: 2\n"
    "  trigger_frequency_error_ppm: 50\n"
    "  brightness_variation: 0.4\n"
    "  scene:\n"
    "    name: empty\n"
    "    ring_radius_mm: 3000\n"
    "    ring_height_mm: 1200\n"
    "    objects:\n"
    "      - {box: {min: [0, 0, 0], max: [100, 200, 300]}, albedo: 0.3, color: [10, 20, 30]}\n"
    "      - {sphere: {center: [1, 2, 3], radius: 40}}\n"
    "  board:\n"
    "    present: true\n"
    "    width_mm: 800\n"
    "    height_mm: 500\n"
    "    motion:\n"
    "      - {t_ms: 0, position: [0, 0, 1000]}\n"
    "      - {t_ms: 5000, position: [500, 0, 1000], rotation_deg: [0, 90, 0]}\n"
    "  faults:\n"
    "    - {kind: unplug, at_ms: 1000, to: left, duration_ms: 200}\n"
    "    - {kind: disconnect, at_ms: 2000, device: front}\n"
    "    - {kind: drop, at_ms: 3000, device: 1, count: 4}\n"
    "    - {kind: stall, at_ms: 4000, host: hostb, duration_ms: 50}\n"
    "  render: {color: false, depth: true, depth_noise_mm: 1.5}\n"
    "  lockstep: false\n"
    "  startup_drop_max: 0\n";

static void test_every_key(void)
{
    ks_rig rig;
    ks_error err;
    KS_CHECK(ks_rig_load_string(RIG, strlen(RIG), "sim.yaml", &rig, &err) == KS_OK);
    KS_CHECK(rig.has_simulation);
    ks_sim_config c;
    KS_CHECK(ks_sim_config_load_string(RIG, strlen(RIG), "sim.yaml", &rig, &c, &err) == KS_OK);
    KS_CHECK_INT(c.seed, 1234);
    KS_CHECK_INT(c.mode, KS_SIM_PACED);
    KS_CHECK_NEAR(c.clock_default.drift_ppm, 30, 0);
    KS_CHECK_NEAR(c.clock_default.offset_us, 10, 0);
    KS_CHECK(!c.clocks[0].set && c.clocks[1].set);
    KS_CHECK_NEAR(c.clocks[1].drift_ppm, -7.5, 0);
    KS_CHECK_NEAR(c.clocks[1].jitter_us, 0.5, 0);
    KS_CHECK(c.poses[1].set && c.poses[1].position[1] == 2000 && c.poses[1].look_at[2] == 500);
    KS_CHECK_NEAR(c.poses[1].roll_deg, 5, 0);
    KS_CHECK_NEAR(c.propagation_ns_per_m, 4.5, 0);
    KS_CHECK_NEAR(c.hop_delay_ns, 80, 0);
    KS_CHECK_NEAR(c.default_cable_m, 1.5, 0);
    KS_CHECK_NEAR(c.usb_latency_us, 2500, 0);
    KS_CHECK_NEAR(c.usb_jitter_us, 100, 0);
    KS_CHECK_NEAR(c.start_latency_ms, 250, 0);
    KS_CHECK_INT(c.queue_frames, 3);
    KS_CHECK_INT(c.device_buffer_frames, 1);
    KS_CHECK_INT(c.usbfs_mb, 16);
    KS_CHECK_NEAR(c.host_drift_ppm, 2, 0);
    KS_CHECK_NEAR(c.trigger_frequency_error_ppm, 50, 0);
    KS_CHECK_NEAR(c.brightness_variation, 0.4, 1e-12);
    KS_CHECK_STR(c.scene, "empty");
    KS_CHECK_NEAR(c.ring_radius_mm, 3000, 0);
    KS_CHECK_NEAR(c.ring_height_mm, 1200, 0);
    KS_CHECK_INT(c.object_count, 2);
    KS_CHECK_INT(c.objects[0].kind, KS_SIM_BOX);
    KS_CHECK_INT(c.objects[0].rgb[2], 30);
    KS_CHECK_INT(c.objects[1].kind, KS_SIM_SPHERE);
    KS_CHECK_NEAR(c.objects[1].b[0], 40, 0);
    KS_CHECK(c.board);
    KS_CHECK_NEAR(c.board_width_mm, 800, 0);
    KS_CHECK_INT(c.board_key_count, 2);
    KS_CHECK_NEAR(c.board_keys[1].rotvec[1], 3.141592653589793 / 2, 1e-12);
    KS_CHECK_INT(c.fault_count, 4);
    KS_CHECK_INT(c.faults[0].kind, KS_SIM_FAULT_UNPLUG);
    KS_CHECK_INT(c.faults[0].cable, 0);
    KS_CHECK_INT(c.faults[1].device, 0);
    KS_CHECK_INT(c.faults[2].device, 1);
    KS_CHECK_INT(c.faults[2].count, 4);
    KS_CHECK_STR(c.faults[3].host, "hostb");
    KS_CHECK(!c.render_color && c.render_depth);
    KS_CHECK_NEAR(c.depth_noise_mm, 1.5, 0);
    KS_CHECK(!c.lockstep);
    KS_CHECK_INT(c.startup_drop_max, 0);
}

static void test_no_section_gives_defaults(void)
{
    const char *txt = "rig: x\ndevices:\n  - {serial: \"1\"}\n";
    ks_sim_config c, d;
    ks_sim_config_init(&d);
    KS_CHECK(ks_sim_config_load_string(txt, strlen(txt), "x.yaml", NULL, &c, NULL) == KS_OK);
    KS_CHECK(memcmp(&c, &d, sizeof c) == 0);
}

static void test_errors_name_line_and_fix(void)
{
    struct {
        const char *text;
        const char *needles[2];
    } bad[] = {
        {"simulation:\n  sed: 1\n", {"x.yaml:2", "sed"}},
        {"simulation:\n  mode: slow\n", {"x.yaml:2", "fast or paced"}},
        {"simulation:\n  queue_frames: 0\n", {"x.yaml:2", "queue_frames"}},
        {"simulation:\n  faults:\n    - {kind: explode, at_ms: 1}\n", {"x.yaml:3", "trigger-stop"}},
        {"simulation:\n  faults:\n    - {kind: drop, device: nobody, at_ms: 1}\n", {"x.yaml:3", "nobody"}},
        {"simulation:\n  faults:\n    - {kind: stall, at_ms: 1}\n", {"x.yaml:3", "duration_ms"}},
        {"simulation:\n  scene:\n    objects:\n      - {box: {min: [0, 0, 0], max: [0, 1, 1]}}\n", {"x.yaml:4", "min"}},
        {"simulation:\n  devices:\n    - {device: 0, pose: {look_at: [0, 0, 0]}}\n", {"x.yaml:3", "position"}},
        {"simulation:\n  board:\n    motion:\n      - {t_ms: 5, position: [0, 0, 0]}\n      - {t_ms: 1, position: [0, 0, 0]}\n",
         {"x.yaml:5", "increasing"}},
        {"simulation: [1, 2]\n", {"x.yaml:1", "simulation"}},
        {"simulation:\n  startup_drop_max: -1\n", {"x.yaml:2", "startup_drop_max"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ks_sim_config c;
        ks_error err = {0};
        ks_status st = ks_sim_config_load_string(bad[i].text, strlen(bad[i].text), "x.yaml", NULL, &c, &err);
        KS_CHECK_MSG(st != KS_OK, "case %zu accepted", i);
        for (int k = 0; k < 2; k++)
            KS_CHECK_CONTAINS(err.message, bad[i].needles[k]);
    }
    /* hostile nesting (issue 20): 100,000 nested '[' are refused before libyaml parses them (it is
     * quadratic in flow depth: hours), here as in every YAML reader (test_rig_parse, test_board) */
    const size_t n = 100000;
    char *deep = malloc(n + 32);
    if (deep) {
        const char *head = "simulation:\n  faults: ";
        size_t h = strlen(head);
        memcpy(deep, head, h);
        memset(deep + h, '[', n);
        ks_sim_config c;
        ks_error err = {0};
        KS_CHECK_INT(ks_sim_config_load_string(deep, n + h, "deep.yaml", NULL, &c, &err), KS_EPARSE);
        KS_CHECK_CONTAINS(err.message, "deep.yaml:2: brackets nested more than 64 levels");
        free(deep);
    }
}

static void test_example_rig_runs(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/rigs/simulated-studio.yaml", KS_SOURCE_DIR);
    ks_rig rig;
    ks_error err;
    KS_CHECK_MSG(ks_rig_load(path, &rig, &err) == KS_OK, "%s", err.message);
    ks_findings f;
    ks_findings_init(&f);
    KS_CHECK(ks_rig_validate(&rig, &f) == KS_OK);
    ks_findings_free(&f);
    ks_sim_config c;
    KS_CHECK_MSG(ks_sim_config_load(path, &rig, &c, &err) == KS_OK, "%s", err.message);
    c.mode = KS_SIM_FAST;
    c.render_color = c.render_depth = false;
    simt_run r;
    KS_CHECK(simt_open(&r, &rig, &c));
    KS_CHECK(simt_start_all(&r, &rig));
    for (int i = 0; i < r.n; i++) {
        ks_capture *cap = NULL;
        KS_CHECK(ks_device_get_capture(r.dev[i], &cap, 1000, &err) == KS_OK);
        ks_capture_release(cap);
    }
    simt_close(&r);
}

static void test_open_from_file(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/rigs/simulated-studio.yaml", KS_SOURCE_DIR);
    ks_backend *b = NULL;
    ks_rig rig;
    ks_error err;
    KS_CHECK_MSG(ks_backend_open_sim_file(path, KS_SIM_FAST, &b, &rig, &err) == KS_OK, "%s", err.message);
    KS_CHECK_INT(ks_backend_device_count(b), 3);
    KS_CHECK_STR(rig.devices[1].name, "left");
    ks_backend_free(b);
    KS_CHECK_INT(ks_backend_open_sim_file("/nonexistent/rig.yaml", -1, &b, NULL, &err), KS_ENOTFOUND);
    KS_CHECK_CONTAINS(err.message, "/nonexistent/rig.yaml");
}

static void test_open_refuses_bad_configs(void)
{
    ks_rig rig;
    simt_rig(&rig, 1, SIMT_STANDALONE, 0);
    ks_sim_config c;
    ks_backend *b = NULL;
    ks_error err;
    ks_sim_config_init(&c);
    c.object_count = KS_SIM_MAX_OBJECTS + 1;
    KS_CHECK_INT(ks_backend_open_sim(&rig, &c, &b, &err), KS_EINVAL);
    ks_sim_config_init(&c);
    c.poses[0] = (ks_sim_pose){.set = true, .position = {1, 2, 3}, .look_at = {1, 2, 3}};
    KS_CHECK_INT(ks_backend_open_sim(&rig, &c, &b, &err), KS_EINVAL);
    KS_CHECK_CONTAINS(err.message, "look_at");
    rig.device_count = 0;
    KS_CHECK_INT(ks_backend_open_sim(&rig, NULL, &b, &err), KS_EINVAL);
    KS_CHECK(b == NULL);
}

int main(void)
{
    KS_RUN(test_open_refuses_bad_configs);
    KS_RUN(test_open_from_file);
    KS_RUN(test_every_key);
    KS_RUN(test_no_section_gives_defaults);
    KS_RUN(test_errors_name_line_and_fix);
    KS_RUN(test_example_rig_runs);
    return KS_TEST_END();
}
