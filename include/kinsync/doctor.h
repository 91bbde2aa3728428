/* kinsync/doctor.h: checks this host against what a rig needs (docs/doctor.md).
 *
 * ks_doctor_run() inspects the USB devices and controllers (sysfs), the usbfs memory limit, the
 * libk4a and depth engine libraries, the firmware of the opened devices and, when the rig spans
 * several hosts, the host clock synchronization (chrony / PTP). Every check adds findings: a
 * stable id, a severity (info when the check passed or is for information), what was found
 * (naming the device, controller or file) and the fix. The filesystem roots are options so tests
 * run the checks against fake trees. */
#ifndef KINSYNC_DOCTOR_H
#define KINSYNC_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/rig.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_doctor_finding {
    char id[48];            /* stable id, e.g. "usbfs-memory" (docs/doctor.md lists them) */
    ks_severity severity;   /* KS_SEV_INFO: passed / information; WARNING; ERROR */
    char subject[96];       /* device serial, controller, library or host concerned; "" for the host */
    char message[512];      /* what was found */
    char fix[1024];         /* what to do; "" when nothing */
} ks_doctor_finding;

typedef struct ks_doctor_report {
    int count, capacity;
    ks_doctor_finding *items; /* heap; free with ks_doctor_report_free */
} ks_doctor_report;

/* A USB camera found in sysfs. */
typedef struct ks_doctor_usb_device {
    char kind[32];           /* "Azure Kinect", "Orbbec Femto Bolt", "Orbbec Femto Mega" */
    char serial[64];         /* sysfs serial attribute ("" if none) */
    char sysfs_name[64];     /* e.g. "2-1.2" */
    char controller[128];    /* PCI address of the host controller, e.g. "0000:00:14.0" */
    int busnum;
    int speed_mbps;          /* 480 USB 2, 5000 USB 3 gen 1, ... ; 0 unknown */
} ks_doctor_usb_device;

typedef struct ks_doctor_options {
    const char *sysfs_root;    /* default "/sys" */
    const char *proc_root;     /* default "/proc" */
    const char *commands_dir;  /* captured outputs: files "chronyc-tracking" and "pmc-time-status";
                                  NULL: run chronyc / pmc, but only when neither root was overridden */
    const char *hostname;      /* this host's name; NULL: gethostname() */
    const ks_rig *rig;         /* NULL: check the host alone */
    bool check_libraries;      /* look for libk4a and the depth engine */
    /* Devices opened through a backend (for the firmware check); NULL/0 when none could be. */
    const ks_device_info *devices;
    int device_count;
    const char *devices_note;  /* why no device could be opened (e.g. libk4a missing), may be NULL */
    const ks_jack_state *jacks; /* NULL, or the sync jack state of each of `devices` (compared with the
                                   rig's cables) */
} ks_doctor_options;

void ks_doctor_options_init(ks_doctor_options *o);

/* Runs every check; appends findings to *out (initialize it with ks_doctor_report_init). Returns
 * KS_OK when the checks ran (whatever they found), KS_ENOMEM on allocation failure. */
ks_status ks_doctor_run(const ks_doctor_options *o, ks_doctor_report *out, ks_error *err);

void ks_doctor_report_init(ks_doctor_report *r);
void ks_doctor_report_free(ks_doctor_report *r);
int ks_doctor_report_count(const ks_doctor_report *r, ks_severity sev);
/* First finding with this id (and subject, if subject is not NULL); NULL if none. */
const ks_doctor_finding *ks_doctor_report_find(const ks_doctor_report *r, const char *id, const char *subject);
const char *ks_doctor_severity_name(ks_severity s); /* "ok", "warning", "error" */

/* Lists the Azure Kinect / Orbbec Femto cameras under sysfs_root/bus/usb/devices (one entry per
 * camera: the Azure Kinect depth function 045e:097c, Femto 2bc5:066b / 2bc5:0669). Writes up to
 * max entries; returns how many were found (may exceed max). */
int ks_doctor_scan_usb(const char *sysfs_root, ks_doctor_usb_device *out, int max);

#ifdef __cplusplus
}
#endif
#endif
