/* k4a_devices: list the Azure Kinect devices attached to this host (through libk4a) with their
 * firmware and sync jacks. Uses the core library only: it links with
 *   cc k4a_devices.c $(pkg-config --cflags --libs kinsync)
 * and needs none of the simulator's libraries (libapriltag, libturbojpeg, ...). */
#include <kinsync/device.h>
#include <kinsync/k4a.h>
#include <kinsync/version.h>
#include <stdio.h>

int main(void)
{
    ks_error err;
    ks_backend *b;
    if (ks_backend_open_k4a(&b, &err) != KS_OK) {
        fprintf(stderr, "k4a_devices: %s\n", err.message);
        return 1;
    }
    int n = ks_backend_device_count(b);
    printf("kinsync %s, libk4a %s: %d devices\n", ks_version_string(), ks_k4a_backend_library(b), n);
    for (int i = 0; i < n; i++) {
        ks_device *d;
        if (ks_device_open(b, i, &d, &err) != KS_OK) {
            fprintf(stderr, "k4a_devices: device %d: %s\n", i, err.message);
            continue;
        }
        const ks_device_info *info = ks_device_info_get(d);
        char fw[32];
        ks_version_format(&info->depth, fw, sizeof fw);
        ks_jack_state j = {0};
        ks_device_get_jacks(d, &j, NULL);
        printf("%s depth firmware %s sync in %s, sync out %s\n", info->serial, fw, j.sync_in ? "connected" : "-",
               j.sync_out ? "connected" : "-");
        ks_device_close(d);
    }
    ks_backend_free(b);
    return 0;
}
