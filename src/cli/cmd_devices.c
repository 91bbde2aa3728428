/* kinsync devices: list the attached devices with serial, firmware and sync jack state
 * (docs/devices.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/devices_backend.h"
#include "kinsync/device.h"
#include "kinsync/k4a.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync devices [--backend auto|k4a|sim] [--rig RIG.yaml] [--hostname NAME] [--json]\n"
            "\n"
            "Lists the attached devices: serial number, firmware versions (color, depth, audio, depth\n"
            "sensor) and whether a cable is plugged into Sync In / Sync Out.\n"
            "\n"
            "  --backend NAME  k4a: real devices through libk4a 1.4 (Azure Kinect, or Orbbec Femto through\n"
            "                  the Orbbec K4A wrapper); sim: the simulated devices of --rig; auto (default):\n"
            "                  k4a when libk4a is installed and finds a device, else sim when --rig is given\n"
            "  --rig FILE      rig file: names the devices, lists rig devices that are missing, and is\n"
            "                  what the simulator simulates\n"
            "  --hostname NAME this host's name in the rig: rig devices of other hosts are not expected\n"
            "                  here (default: the system host name)\n"
            "  --json          machine-readable output\n"
            "\n"
            "libk4a is looked up at run time (libk4a.so.1.4, libk4a.so.1.4.1, libk4a.so);\n"
            "KINSYNC_K4A_LIBRARY=/path/to/libk4a.so.1.4 picks a specific one.\n"
            "\n"
            "Exit status: 0 at least one device listed; 1 no device found, or libk4a missing (the message\n"
            "says how to install it); 2 usage error or unreadable rig file.\n");
}

static json_t *version_json(const ks_version *v)
{
    char buf[48];
    ks_version_format(v, buf, sizeof buf);
    return json_string(buf);
}

typedef struct listed {
    int index;
    bool opened;
    ks_device_info info;
    ks_jack_state jacks;
    bool jacks_ok;
    char error[KS_ERROR_MESSAGE_MAX];
    char rig_name[64];
} listed;

typedef char missing_name[KS_NAME_MAX + KS_SERIAL_MAX + 4];

static bool is_k4a(ks_backend *b)
{
    return b && ks_k4a_backend_library(b)[0];
}

/* Devices of the rig expected on this host (`hostname`, or this machine's name) that are not
 * attached: real devices only, the simulator has every rig device. */
static int find_missing(const ks_cli_backend *cb, const listed *items, int n, const char *hostname,
                        missing_name *missing_names)
{
    int missing_count = 0;
    if (!cb->have_rig || !is_k4a(cb->backend))
        return 0;
    char host[256] = "localhost";
    if (hostname)
        snprintf(host, sizeof host, "%s", hostname);
    else if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (int r = 0; r < cb->rig.device_count; r++) {
        const char *h = cb->rig.devices[r].host;
        if (h[0] && strcmp(h, "localhost") && strcmp(h, host))
            continue; /* expected on another host */
        bool found = false;
        for (int i = 0; i < n; i++)
            found |= items[i].opened && !strcmp(items[i].info.serial, cb->rig.devices[r].serial);
        if (!found)
            snprintf(missing_names[missing_count++], sizeof missing_names[0], "%s (%s)", cb->rig.devices[r].name,
                     cb->rig.devices[r].serial);
    }
    return missing_count;
}

static void print_json(ks_cli_backend *cb, const listed *items, int n, const missing_name *missing_names,
                       int missing_count, const char *advice)
{
    json_t *root = json_object();
    json_object_set_new(root, "backend", cb->backend ? json_string(ks_backend_name(cb->backend)) : json_null());
    if (is_k4a(cb->backend)) {
        json_object_set_new(root, "library", json_string(ks_k4a_backend_library(cb->backend)));
        json_object_set_new(root, "orbbec_wrapper", json_boolean(ks_k4a_backend_is_orbbec(cb->backend)));
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const listed *it = &items[i];
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(it->index));
        if (it->opened) {
            json_object_set_new(o, "serial", json_string(it->info.serial));
            if (it->rig_name[0])
                json_object_set_new(o, "name", json_string(it->rig_name));
            json_t *fw = json_object();
            json_object_set_new(fw, "color", version_json(&it->info.rgb));
            json_object_set_new(fw, "depth", version_json(&it->info.depth));
            json_object_set_new(fw, "audio", version_json(&it->info.audio));
            json_object_set_new(fw, "depth_sensor", version_json(&it->info.depth_sensor));
            json_object_set_new(o, "firmware", fw);
            json_t *j = json_object();
            bool sup = it->jacks_ok && it->jacks.supported;
            json_object_set_new(j, "supported", json_boolean(sup));
            json_object_set_new(j, "sync_in", sup ? json_boolean(it->jacks.sync_in) : json_null());
            json_object_set_new(j, "sync_out", sup ? json_boolean(it->jacks.sync_out) : json_null());
            json_object_set_new(o, "jacks", j);
        } else {
            json_object_set_new(o, "error", json_string(it->error));
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "devices", arr);
    json_t *missing = json_array();
    for (int i = 0; i < missing_count; i++)
        json_array_append_new(missing, json_string(missing_names[i]));
    json_object_set_new(root, "rig_missing", missing);
    if (advice[0])
        json_object_set_new(root, "message", json_string(advice));
    if (cb->note[0])
        json_object_set_new(root, "note", json_string(cb->note));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(root);
}

static void print_text(ks_cli_backend *cb, const listed *items, int n, const missing_name *missing_names,
                       int missing_count, const char *advice, int listed_ok)
{
    if (cb->note[0])
        printf("%s\n", cb->note);
    if (cb->backend && n > 0) {
        if (is_k4a(cb->backend))
            printf("%d device%s on the k4a backend (libk4a: %s%s)\n", n, n == 1 ? "" : "s",
                   ks_k4a_backend_library(cb->backend),
                   ks_k4a_backend_is_orbbec(cb->backend) ? ", Orbbec K4A wrapper: jack states unknown" : "");
        else
            printf("%d device%s on the %s backend\n", n, n == 1 ? "" : "s", ks_backend_name(cb->backend));
        printf("  %-3s %-16s %-12s %-14s %-14s %-12s %-14s %-8s %-8s\n", "#", "serial", "name", "color fw",
               "depth fw", "audio fw", "depth sensor", "sync in", "sync out");
        for (int i = 0; i < n; i++) {
            const listed *it = &items[i];
            if (!it->opened) {
                printf("  %-3d (cannot open: %s)\n", i, it->error);
                continue;
            }
            char v[4][48];
            ks_version_format(&it->info.rgb, v[0], sizeof v[0]);
            ks_version_format(&it->info.depth, v[1], sizeof v[1]);
            ks_version_format(&it->info.audio, v[2], sizeof v[2]);
            ks_version_format(&it->info.depth_sensor, v[3], sizeof v[3]);
            bool sup = it->jacks_ok && it->jacks.supported;
            printf("  %-3d %-16s %-12s %-14s %-14s %-12s %-14s %-8s %-8s\n", i, it->info.serial,
                   it->rig_name[0] ? it->rig_name : "-", v[0], v[1], v[2], v[3],
                   sup ? (it->jacks.sync_in ? "cable" : "empty") : "unknown",
                   sup ? (it->jacks.sync_out ? "cable" : "empty") : "unknown");
        }
    }
    for (int i = 0; i < missing_count; i++)
        printf("missing: rig device %s is not attached\n", missing_names[i]);
    if (advice[0])
        fprintf(listed_ok ? stdout : stderr, "%s\n", advice);
}

int cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {{"backend", required_argument, NULL, 'b'},
                                         {"rig", required_argument, NULL, 'r'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"hostname", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *backend_name = "auto", *rig_path = NULL, *hostname = NULL;
    bool as_json = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+b:r:jH:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': backend_name = optarg; break;
        case 'r': rig_path = optarg; break;
        case 'j': as_json = true; break;
        case 'H': hostname = optarg; break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default: return ks_cli_usage_error("devices", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return ks_cli_usage_error("devices", "unexpected argument '%s'", argv[optind]);
    if (strcmp(backend_name, "auto") && strcmp(backend_name, "k4a") && strcmp(backend_name, "sim"))
        return ks_cli_usage_error("devices", "unknown backend '%s'; use auto, k4a or sim", backend_name);

    ks_cli_backend cb;
    ks_error err;
    ks_error_clear(&err);
    int rc = ks_cli_backend_open(backend_name, rig_path, &cb, &err);
    if (rc == KS_EXIT_USAGE) {
        ks_cli_print_error("devices", &err);
        return KS_EXIT_USAGE;
    }
    int n = cb.backend ? ks_backend_device_count(cb.backend) : 0;
    listed *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    if (!items) {
        ks_cli_backend_close(&cb);
        fprintf(stderr, "kinsync devices: out of memory\n");
        return KS_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++) {
        listed *it = &items[i];
        it->index = i;
        ks_device *d = NULL;
        ks_error e;
        ks_error_clear(&e);
        if (ks_device_open(cb.backend, i, &d, &e) != KS_OK) {
            snprintf(it->error, sizeof it->error, "%s", e.message);
            continue;
        }
        it->opened = true;
        it->info = *ks_device_info_get(d);
        it->jacks_ok = ks_device_get_jacks(d, &it->jacks, &e) == KS_OK;
        ks_cli_backend_device_name(&cb, it->info.serial, it->rig_name, sizeof it->rig_name);
        ks_device_close(d);
    }

    /* What to tell when nothing is listed. */
    char advice[1200] = "";
    static const char sim_hint[] =
        " Without hardware, `kinsync devices --rig RIG.yaml` shows the simulated devices of a rig.";
    if (!cb.backend)
        snprintf(advice, sizeof advice, "%s.%s", err.message, cb.have_rig ? "" : sim_hint);
    else if (n == 0 && is_k4a(cb.backend))
        snprintf(advice, sizeof advice,
                 "No Azure Kinect device found (libk4a: %s). Check that each device has its power supply "
                 "plugged in (the LED on the front lights up), that its USB cable goes to a USB 3 port of this "
                 "computer (`lsusb -d 045e:097c` lists one line per device; Orbbec Femto: `lsusb -d 2bc5:`), and "
                 "that no other program holds it; `kinsync doctor` checks the USB controllers, usbfs memory and "
                 "udev permissions.%s",
                 ks_k4a_backend_library(cb.backend), cb.have_rig ? "" : sim_hint);
    else if (n == 0)
        snprintf(advice, sizeof advice, "The %s backend has no devices.", ks_backend_name(cb.backend));

    missing_name missing_names[KS_RIG_MAX_DEVICES];
    int missing_count = find_missing(&cb, items, n, hostname, missing_names);

    int listed_ok = 0;
    for (int i = 0; i < n; i++)
        listed_ok += items[i].opened;

    if (as_json)
        print_json(&cb, items, n, missing_names, missing_count, advice);
    else
        print_text(&cb, items, n, missing_names, missing_count, advice, listed_ok);
    free(items);
    ks_cli_backend_close(&cb);
    return listed_ok > 0 ? KS_EXIT_OK : KS_EXIT_FAIL;
}
