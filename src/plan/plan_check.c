/* The independent proof of a plan (ks_plan_check_lasers) and the k4arecorder command lines.
 *
 * The check shares no code with the planner: it starts from the requested delays in each device
 * configuration, converts them with the firmware's tick truncation, and compares every pulse of
 * one device with every pulse of every other device of the same interference group, cyclically
 * over one frame period. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kinsync/plan.h"

double ks_plan_cyclic_distance(double a_us, double b_us, double period_us)
{
    if (!(period_us > 0))
        return fabs(a_us - b_us);
    double r = fmod(a_us - b_us, period_us);
    if (r < 0)
        r += period_us;
    double s = period_us - r;
    return r < s ? r : s;
}

/* First laser pulse start of a configuration, relative to the master's color capture. */
static double first_pulse_us(const ks_device_config *c)
{
    double color = c->wired_sync_mode == KS_SYNC_SUBORDINATE
                       ? ks_delay_effective_us((int64_t)c->subordinate_delay_off_master_usec)
                       : 0.0;
    return color + ks_delay_effective_us((int64_t)c->depth_delay_off_color_usec);
}

void ks_plan_check_lasers(const ks_rig *rig, const ks_plan *plan, int guard_us, ks_plan_proof *out)
{
    memset(out, 0, sizeof *out);
    out->min_separation_us = -1;
    out->device_a = out->device_b = -1;
    out->guard_us = guard_us;
    out->lasers_ok = true;
    out->color_ok = true;
    if (!rig || !plan)
        return;
    int n = plan->device_count < rig->device_count ? plan->device_count : rig->device_count;
    for (int i = 0; i < n; i++) {
        const ks_device_config *ci = &plan->devices[i].config;
        const ks_depth_mode_info *mi = ks_depth_mode_get(ci->depth_mode);
        if (!mi || mi->laser_pulses == 0)
            continue;
        double period = ks_frame_period_exact_us(ci->camera_fps);
        double pitch = mi->pulse_width_us + mi->idle_time_us;
        double si = first_pulse_us(ci);
        for (int j = i + 1; j < n; j++) {
            if (rig->devices[i].group != rig->devices[j].group)
                continue;
            const ks_device_config *cj = &plan->devices[j].config;
            const ks_depth_mode_info *mj = ks_depth_mode_get(cj->depth_mode);
            if (!mj || mj->laser_pulses == 0)
                continue;
            double pitch_j = mj->pulse_width_us + mj->idle_time_us;
            double sj = first_pulse_us(cj);
            out->pairs_checked++;
            if (ci->wired_sync_mode == KS_SYNC_STANDALONE || cj->wired_sync_mode == KS_SYNC_STANDALONE) {
                /* no common clock: the pulses can meet anywhere */
                out->unsynced_pairs++;
                if (out->min_separation_us != 0 || out->device_a < 0) {
                    out->min_separation_us = 0;
                    out->device_a = i;
                    out->device_b = j;
                }
                continue;
            }
            for (int k = 0; k < mi->laser_pulses; k++)
                for (int l = 0; l < mj->laser_pulses; l++) {
                    double d = ks_plan_cyclic_distance(si + k * pitch, sj + l * pitch_j, period);
                    out->pulse_pairs_checked++;
                    if (out->min_separation_us < 0 || (d < out->min_separation_us && out->unsynced_pairs == 0)) {
                        out->min_separation_us = d;
                        out->device_a = i;
                        out->device_b = j;
                    }
                }
        }
    }
    if (out->min_separation_us >= 0 && out->min_separation_us < guard_us - 1e-6)
        out->lasers_ok = false;

    /* color spread of synchronized devices (simultaneous aim only) */
    for (int i = 0; i < n; i++) {
        const ks_device_config *c = &plan->devices[i].config;
        if (c->wired_sync_mode != KS_SYNC_SUBORDINATE)
            continue;
        double off = ks_delay_effective_us((int64_t)c->subordinate_delay_off_master_usec);
        if (off > out->color_spread_us)
            out->color_spread_us = off;
    }
    if (plan->aim == KS_AIM_SIMULTANEOUS)
        out->color_ok = out->color_spread_us <= ks_color_alignment_target_us();
}

static const char *recorder_sync_name(ks_wired_sync_mode m)
{
    return m == KS_SYNC_MASTER ? "Master" : m == KS_SYNC_SUBORDINATE ? "Subordinate" : "Standalone";
}

/* k4arecorder -c spelling: "720p" (MJPG), "720p_NV12", "720p_YUY2"; other formats record as MJPG. */
static void recorder_color(const ks_rig *rig, char *buf, size_t size, bool *unsupported)
{
    const ks_color_resolution_info *ci = ks_color_resolution_get(rig->camera.color_resolution);
    *unsupported = false;
    if (!ci || rig->camera.color_resolution == KS_COLOR_OFF) {
        snprintf(buf, size, "OFF");
        return;
    }
    if (rig->camera.color_format == KS_FORMAT_NV12 || rig->camera.color_format == KS_FORMAT_YUY2)
        snprintf(buf, size, "%s_%s", ci->recorder_name, ks_image_format_name(rig->camera.color_format));
    else {
        snprintf(buf, size, "%s", ci->recorder_name);
        *unsupported = rig->camera.color_format != KS_FORMAT_MJPG;
    }
}

static int host_index(const ks_rig *rig, int i)
{
    int k = 0;
    for (int j = 0; j < i; j++)
        k += strcmp(rig->devices[j].host, rig->devices[i].host) == 0;
    return k;
}

int ks_plan_recorder_command(const ks_rig *rig, const ks_plan *plan, int i, char *buf, size_t size)
{
    if (!rig || !plan || i < 0 || i >= plan->device_count)
        return snprintf(buf, size, "%s", "");
    const ks_plan_device *d = &plan->devices[i];
    char color[32], sync[48] = "", exposure[32] = "";
    bool unsupported;
    recorder_color(rig, color, sizeof color, &unsupported);
    if (d->sync_mode == KS_SYNC_SUBORDINATE)
        snprintf(sync, sizeof sync, " --sync-delay %u", d->subordinate_delay_usec);
    if (d->exposure_us > 0)
        snprintf(exposure, sizeof exposure, " -e %d", d->exposure_us);
    return snprintf(buf, size, "k4arecorder --device %d --external-sync %s%s --depth-delay %d%s -r %d -c %s -d %s "
                               "--imu %s %s.mkv",
                    host_index(rig, i), recorder_sync_name(d->sync_mode), sync, (int)d->depth_delay_usec, exposure,
                    ks_fps_hz(rig->camera.fps), color, ks_depth_mode_name(rig->camera.depth_mode),
                    rig->camera.imu ? "ON" : "OFF", rig->devices[i].name);
}

int ks_plan_recorder_comment(const ks_rig *rig, const ks_plan *plan, int i, char *buf, size_t size)
{
    if (!rig || !plan || i < 0 || i >= plan->device_count)
        return snprintf(buf, size, "%s", "");
    const ks_plan_device *d = &plan->devices[i];
    char color[32];
    bool unsupported;
    recorder_color(rig, color, sizeof color, &unsupported);
    bool color_on = rig->camera.color_resolution != KS_COLOR_OFF;
    return snprintf(buf, size, "serial %s, start %d of %d%s%s%s", rig->devices[i].serial, d->start_position,
                    plan->device_count,
                    d->sync_mode == KS_SYNC_MASTER ? " (after every subordinate waits)"
                    : d->trigger_head              ? " (fed by the trigger; switch the trigger on after this)"
                                                   : "",
                    d->exposure_us > 0 || !color_on ? "" : "; auto exposure: set a manual -e for sync",
                    unsupported ? "; k4arecorder records color as MJPG (it has no BGRA32 option)" : "");
}
