/* kinsync doctor: checks this host against what the rig needs (docs/doctor.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/devices_backend.h"
#include "kinsync/doctor.h"
#include "kinsync/k4a.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync doctor [RIG.yaml] [--json] [--sysfs DIR] [--proc DIR] [--commands DIR]\n"
            "                      [--hostname NAME] [--no-devices]\n"
            "\n"
            "Checks this host for running the rig (or, without a rig file, the devices attached):\n"
            "  usbfs-memory           usbcore.usbfs_memory_mb against the devices on this host\n"
            "  usb-device, usb-speed  each Azure Kinect / Orbbec Femto, its USB controller and speed\n"
            "  usb-controller-shared  two devices on one USB controller\n"
            "  usb-devices, usb-device-missing, usb-controller-mismatch  the rig against what is attached\n"
            "  libk4a, depthengine    libk4a 1.4 and libdepthengine.so.2.0 present\n"
            "  firmware, firmware-mismatch  the same firmware on every device (opened through libk4a)\n"
            "  sync-jacks             the rig's cables against each device's Sync In / Sync Out\n"
            "  clock-sync, clock-offset  chrony / PTP status when the rig spans several hosts\n"
            "Every finding says what to do (docs/doctor.md explains each).\n"
            "\n"
            "  --json            machine-readable findings\n"
            "  --sysfs DIR       read DIR instead of /sys (tests use fake trees)\n"
            "  --proc DIR        read DIR instead of /proc\n"
            "  --commands DIR    read captured outputs DIR/chronyc-tracking and DIR/pmc-time-status instead\n"
            "                    of running chronyc / pmc (they only run when --sysfs/--proc are not given)\n"
            "  --hostname NAME   this host's name in the rig (default: the system host name)\n"
            "  --no-devices      do not open devices through libk4a (skips the firmware comparison)\n"
            "\n"
            "Exit status: 0 no errors (warnings allowed); 1 at least one error finding; 2 usage error or\n"
            "unreadable rig file.\n");
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"sysfs", required_argument, NULL, 's'},
                                         {"proc", required_argument, NULL, 'p'},
                                         {"commands", required_argument, NULL, 'c'},
                                         {"hostname", required_argument, NULL, 'H'},
                                         {"no-devices", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool as_json = false, open_devices = true;
    ks_doctor_options o;
    ks_doctor_options_init(&o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "js:p:c:H:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 's': o.sysfs_root = optarg; break;
        case 'p': o.proc_root = optarg; break;
        case 'c': o.commands_dir = optarg; break;
        case 'H': o.hostname = optarg; break;
        case 'n': open_devices = false; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("doctor", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    const char *rig_path = NULL;
    if (optind < argc)
        rig_path = argv[optind++];
    if (optind < argc)
        return ks_cli_usage_error("doctor", "unexpected argument '%s' (one rig file at most)", argv[optind]);

    static ks_rig rig;
    ks_error err;
    ks_error_clear(&err);
    if (rig_path) {
        if (ks_cli_load_rig(rig_path, &rig, &err) != KS_EXIT_OK) {
            ks_cli_print_error("doctor", &err);
            return KS_EXIT_USAGE;
        }
        o.rig = &rig;
    }

    /* Open the real devices for the firmware comparison. */
    ks_device_info infos[KS_RIG_MAX_DEVICES];
    ks_jack_state jacks[KS_RIG_MAX_DEVICES];
    int ninfo = 0;
    char note[KS_ERROR_MESSAGE_MAX + 64] = "";
    if (open_devices) {
        ks_backend *b = NULL;
        ks_error e;
        ks_error_clear(&e);
        if (ks_backend_open_k4a(&b, &e) == KS_OK) {
            int n = ks_backend_device_count(b);
            if (n == 0)
                snprintf(note, sizeof note, "libk4a finds no device");
            for (int i = 0; i < n && ninfo < KS_RIG_MAX_DEVICES; i++) {
                ks_device *d = NULL;
                if (ks_device_open(b, i, &d, &e) == KS_OK) {
                    memset(&jacks[ninfo], 0, sizeof jacks[ninfo]);
                    (void)ks_device_get_jacks(d, &jacks[ninfo], &e);
                    infos[ninfo++] = *ks_device_info_get(d);
                    ks_device_close(d);
                } else {
                    snprintf(note, sizeof note, "%s", e.message);
                }
            }
            ks_backend_free(b);
        } else {
            snprintf(note, sizeof note, "libk4a is not installed");
        }
    } else {
        snprintf(note, sizeof note, "--no-devices given");
    }
    o.devices = infos;
    o.device_count = ninfo;
    o.jacks = jacks;
    o.devices_note = note;

    ks_doctor_report rep;
    ks_doctor_report_init(&rep);
    if (ks_doctor_run(&o, &rep, &err) != KS_OK) {
        ks_cli_print_error("doctor", &err);
        ks_doctor_report_free(&rep);
        return KS_EXIT_FAIL;
    }
    int errors = ks_doctor_report_count(&rep, KS_SEV_ERROR);
    int warnings = ks_doctor_report_count(&rep, KS_SEV_WARNING);
    if (as_json) {
        json_t *root = json_object();
        json_object_set_new(root, "rig", rig_path ? json_string(rig_path) : json_null());
        json_t *arr = json_array();
        for (int i = 0; i < rep.count; i++) {
            const ks_doctor_finding *f = &rep.items[i];
            json_t *j = json_object();
            json_object_set_new(j, "id", json_string(f->id));
            json_object_set_new(j, "severity", json_string(ks_doctor_severity_name(f->severity)));
            json_object_set_new(j, "subject", json_string(f->subject));
            json_object_set_new(j, "message", json_string(f->message));
            json_object_set_new(j, "fix", f->fix[0] ? json_string(f->fix) : json_null());
            json_array_append_new(arr, j);
        }
        json_object_set_new(root, "findings", arr);
        json_object_set_new(root, "errors", json_integer(errors));
        json_object_set_new(root, "warnings", json_integer(warnings));
        json_object_set_new(root, "ok", json_boolean(errors == 0));
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(root);
    } else {
        printf("kinsync doctor%s%s\n", rig_path ? ": rig " : "", rig_path ? rig_path : "");
        for (int i = 0; i < rep.count; i++) {
            const ks_doctor_finding *f = &rep.items[i];
            const char *sev = f->severity == KS_SEV_ERROR ? "ERROR" : f->severity == KS_SEV_WARNING ? "warning" : "ok";
            printf("  %-8s %-24s %s\n", sev, f->id, f->message);
            if (f->fix[0] && f->severity != KS_SEV_INFO)
                printf("  %-8s %-24s fix: %s\n", "", "", f->fix);
        }
        printf("%d error%s, %d warning%s\n", errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    }
    ks_doctor_report_free(&rep);
    return errors ? KS_EXIT_FAIL : KS_EXIT_OK;
}
