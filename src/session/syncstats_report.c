/* JSON and HTML output of the sync statistics (kinsync/syncstats.h). The HTML is one file with
 * inline SVG: a skew histogram per device per time slice (a heat strip), the skew timeline, and the
 * measured frame period timeline (colour exposure start and laser windows per device). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/syncstats.h"
#include "session/syncstats_internal.h"
#include "util/fileio.h"

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *ks_syncstats_to_json(const ks_syncstats *s)
{
    const ks_sync_setup *su = ks_syncstats_setup_get(s);
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("kinsync.verify/1"));
    json_object_set_new(root, "passed", json_boolean(ks_syncstats_passed(s)));
    json_object_set_new(root, "result", json_string(ks_syncstats_passed(s) ? "PASS" : "FAIL"));
    json_t *ts = json_object();
    json_object_set_new(ts, "rig", json_string(ks_ts_convention_name(su->match.convention)));
    json_object_set_new(ts, "measured", ks_syncstats_timestamps(s) == KS_TS_AUTO
                                            ? json_null()
                                            : json_string(ks_ts_convention_name(ks_syncstats_timestamps(s))));
    json_object_set_new(ts, "used", json_string(ks_ts_convention_name(ks_syncstats_timestamps_used(s))));
    json_object_set_new(root, "timestamps", ts);
    json_object_set_new(root, "sets", json_integer((json_int_t)ks_syncstats_sets(s)));
    json_object_set_new(root, "reference", json_string(su->names[su->match.reference]));
    json_object_set_new(root, "target_us", json_integer(ks_color_alignment_target_us()));
    json_t *devs = json_array();
    for (int d = 0; d < su->device_count; d++) {
        const ks_sync_device *o = ks_syncstats_device(s, d);
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(su->names[d]));
        json_object_set_new(j, "frames", json_integer((json_int_t)o->frames));
        json_object_set_new(j, "missing", json_integer((json_int_t)o->missing));
        json_object_set_new(j, "gaps", json_integer((json_int_t)o->gaps));
        json_object_set_new(j, "skew_mean_us", num(o->skew_mean_us));
        json_object_set_new(j, "skew_p99_abs_us", num(o->skew_p99_abs_us));
        json_object_set_new(j, "skew_max_abs_us", num(o->skew_max_abs_us));
        json_object_set_new(j, "skew_first_us", num(o->skew_first_us));
        json_object_set_new(j, "skew_last_us", num(o->skew_last_us));
        json_object_set_new(j, "depth_offset_mean_us", num(o->depth_offset_mean_us));
        json_object_set_new(j, "depth_delay_planned_us", num(su->match.devices[d].depth_delay_us));
        json_object_set_new(j, "depth_offset_err_max_us", num(o->depth_offset_err_max_us));
        json_object_set_new(j, "drift_vs_reference_ppm", num(o->drift_vs_ref_ppm));
        json_object_set_new(j, "frame_offset", json_integer(o->frame_offset));
        json_object_set_new(j, "period_ppm", num(o->period_ppm));
        json_object_set_new(j, "laser_start_us", num(o->laser_start_us));
        json_object_set_new(j, "exposure_changes", json_integer(o->exposure_changes));
        json_object_set_new(j, "exposure_min_us", json_integer((json_int_t)o->exposure_min_us));
        json_object_set_new(j, "exposure_max_us", json_integer((json_int_t)o->exposure_max_us));
        json_object_set_new(j, "invalid_fraction_mean", num(o->invalid_fraction_mean));
        json_object_set_new(j, "ts_residual_us", num(o->ts_residual_us));
        json_object_set_new(j, "ts_seed_residual_us", num(o->ts_seed_residual_us));
        json_object_set_new(j, "depth_offset_jump_us", num(o->depth_offset_jump_us));
        json_object_set_new(j, "longest_outage_sets", json_integer((json_int_t)o->longest_outage));
        json_object_set_new(j, "bad_content_frames", json_integer((json_int_t)o->bad_content));
        json_t *fit = json_object();
        json_object_set_new(fit, "ok", json_boolean(o->host_fit_ok));
        json_object_set_new(fit, "offset_ns", num(o->host_offset_ns));
        json_object_set_new(fit, "rate_ns_per_us", num(o->host_rate));
        json_object_set_new(fit, "residual_mad_us", num(o->host_fit_mad_us));
        json_object_set_new(j, "host_clock_fit", fit);
        json_array_append_new(devs, j);
    }
    json_object_set_new(root, "devices", devs);
    json_t *checks = json_array();
    for (int i = 0; i < ks_syncstats_check_count(s); i++) {
        const ks_sync_check *c = ks_syncstats_check(s, i);
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(c->id));
        json_object_set_new(j, "status", json_string(ks_check_status_name(c->status)));
        json_object_set_new(j, "device", c->device >= 0 ? json_string(su->names[c->device]) : json_null());
        json_object_set_new(j, "other", c->other >= 0 ? json_string(su->names[c->other]) : json_null());
        json_object_set_new(j, "value", num(c->value));
        json_object_set_new(j, "unit", json_string(c->unit));
        json_object_set_new(j, "message", json_string(c->message));
        json_array_append_new(checks, j);
    }
    json_object_set_new(root, "checks", checks);
    char *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return out;
}

static void html_escape(FILE *f, const char *t)
{
    for (; *t; t++) {
        if (*t == '<')
            fputs("&lt;", f);
        else if (*t == '>')
            fputs("&gt;", f);
        else if (*t == '&')
            fputs("&amp;", f);
        else
            fputc(*t, f);
    }
}

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

/* Histogram of skew over time per device: columns = time slices, rows = skew bins, darkness = count. */
static void svg_heat(FILE *f, const ks_syncstats *s, int d)
{
    const double *x, *y;
    int n = ks_syncstats_series(s, d, 0, &x, &y);
    const int W = 640, H = 120, cols = 40, rows = 24;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-size='10'>", W + 70, H + 30);
    if (n < 1) {
        fprintf(f, "<text x='10' y='20'>no skew samples</text></svg>\n");
        return;
    }
    double lo = y[0], hi = y[0];
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, y[i]);
        hi = fmax(hi, y[i]);
    }
    double tgt = ks_color_alignment_target_us();
    lo = fmin(lo, -tgt);
    hi = fmax(hi, tgt);
    double x0 = x[0], x1 = x[n - 1] > x0 ? x[n - 1] : x0 + 1;
    int cnt[40][24] = {{0}}; /* per call: two threads may write reports at once */
    int mx = 1;
    for (int i = 0; i < n; i++) {
        int c = (int)((x[i] - x0) / (x1 - x0) * (cols - 1e-9));
        int r = (int)((y[i] - lo) / (hi - lo) * (rows - 1e-9));
        if (c >= 0 && c < cols && r >= 0 && r < rows && ++cnt[c][r] > mx)
            mx = cnt[c][r];
    }
    double cw = (double)W / cols, rh = (double)H / rows;
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++)
            if (cnt[c][r])
                fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s' fill-opacity='%.2f'/>",
                        60 + c * cw, H - (r + 1) * rh + 5, cw, rh, palette[d % 10], 0.15 + 0.85 * cnt[c][r] / mx);
    for (int k = -1; k <= 1; k += 2) {
        double yy = H - (k * tgt - lo) / (hi - lo) * H + 5;
        fprintf(f, "<line x1='60' x2='%d' y1='%.1f' y2='%.1f' stroke='#999' stroke-dasharray='4 3'/>", 60 + W, yy, yy);
    }
    fprintf(f, "<rect x='60' y='5' width='%d' height='%d' fill='none' stroke='#333'/>", W, H);
    fprintf(f, "<text x='2' y='12'>%.0f us</text><text x='2' y='%d'>%.0f us</text>", hi, H + 5, lo);
    fprintf(f, "<text x='60' y='%d'>0 s</text><text x='%d' y='%d' text-anchor='end'>%.1f s</text>", H + 20, 60 + W,
            H + 20, (x1 - x0) / 1e6);
    fprintf(f, "</svg>\n");
}

/* Position on the drawn period, which starts a tenth of a period before the master's colour start. */
static double wrap(double t, double P)
{
    return fmod(fmod(t + 0.1 * P, P) + P, P);
}

static void svg_timeline(FILE *f, const ks_syncstats *s)
{
    const ks_sync_setup *su = ks_syncstats_setup_get(s);
    const double P = su->match.period_us;
    const int W = 720, row = 26;
    int n = su->device_count;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-size='10'>", W + 110,
            n * row + 30);
    const ks_depth_mode_info *mi = ks_depth_mode_get(su->depth_mode);
    for (int d = 0; d < n; d++) {
        const ks_sync_device *o = ks_syncstats_device(s, d);
        double y0 = d * row + 5;
        fprintf(f, "<text x='2' y='%.0f'>", y0 + 14);
        html_escape(f, su->names[d]);
        fprintf(f, "</text>");
        double cstart = o->skew_mean_us + su->match.devices[d].color_offset_us;
        double exp = (double)(o->exposure_max_us ? o->exposure_max_us : 0);
        double xs = 100 + wrap(cstart, P) / P * W;
        fprintf(f, "<rect x='%.1f' y='%.0f' width='%.1f' height='8' fill='%s' fill-opacity='0.5'/>", xs, y0,
                fmax(1, exp / P * W), palette[d % 10]);
        if (mi && mi->laser_pulses && isfinite(o->laser_start_us)) {
            int pitch = ks_depth_pulse_pitch_us(su->depth_mode);
            for (int k = 0; k < mi->laser_pulses; k++) {
                double t = wrap(o->laser_start_us + k * pitch, P);
                fprintf(f, "<rect x='%.1f' y='%.0f' width='%.1f' height='8' fill='%s'/>", 100 + t / P * W, y0 + 10,
                        fmax(1, mi->pulse_width_us / P * W), palette[d % 10]);
            }
        }
    }
    fprintf(f, "<line x1='%.1f' x2='%.1f' y1='0' y2='%d' stroke='#999' stroke-dasharray='3 3'/>", 100 + 0.1 * W,
            100 + 0.1 * W, n * row + 8);
    fprintf(f, "<text x='%.1f' y='%d'>0 = master colour start</text><text x='%d' y='%d' text-anchor='end'>one frame "
               "period, %.0f us (upper bar: colour exposure, lower: laser pulses)</text></svg>\n",
            100 + 0.1 * W, n * row + 20, 100 + W, n * row + 20, P);
}

ks_status ks_syncstats_write_html(const ks_syncstats *s, const char *title, const char *path, ks_error *err)
{
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st != KS_OK)
        return st;
    FILE *f = af.f;
    const ks_sync_setup *su = ks_syncstats_setup_get(s);
    fprintf(f, "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kinsync verify: ");
    html_escape(f, title);
    fprintf(f, "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
               ".PASS{color:#2a2}.FAIL{color:#c22}.WARN{color:#c80}</style></head><body>\n");
    fprintf(f, "<h1>kinsync verify: ");
    html_escape(f, title);
    fprintf(f, " &mdash; <span class='%s'>%s</span></h1>\n", ks_syncstats_passed(s) ? "PASS" : "FAIL",
            ks_syncstats_passed(s) ? "PASS" : "FAIL");
    fprintf(f, "<p>%llu frame sets, reference (master) ", (unsigned long long)ks_syncstats_sets(s));
    html_escape(f, su->names[su->match.reference]);
    fprintf(f, ", colour alignment target %d us.</p>\n<h2>Checks</h2><table>", ks_color_alignment_target_us());
    for (int i = 0; i < ks_syncstats_check_count(s); i++) {
        const ks_sync_check *c = ks_syncstats_check(s, i);
        fprintf(f, "<tr><td class='%s'>%s</td><td>%s</td><td>", ks_check_status_name(c->status),
                ks_check_status_name(c->status), c->id);
        html_escape(f, c->message);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n<h2>Devices</h2><table><tr><th>device</th><th>frames</th><th>missing</th><th>skew mean</th>"
               "<th>skew p99</th><th>depth offset</th><th>drift</th><th>exposure</th></tr>\n");
    for (int d = 0; d < su->device_count; d++) {
        const ks_sync_device *o = ks_syncstats_device(s, d);
        fprintf(f, "<tr><td>");
        html_escape(f, su->names[d]);
        fprintf(f, "</td><td>%llu</td><td>%llu</td><td>%.1f us</td><td>%.1f us</td><td>%.1f us</td><td>%.2f ppm</td>"
                   "<td>%llu..%llu us</td></tr>\n",
                (unsigned long long)o->frames, (unsigned long long)o->missing, o->skew_mean_us, o->skew_p99_abs_us,
                o->depth_offset_mean_us, o->drift_vs_ref_ppm, (unsigned long long)o->exposure_min_us,
                (unsigned long long)o->exposure_max_us);
    }
    fprintf(f, "</table>\n<h2>Colour skew against the master over time</h2>\n");
    for (int d = 0; d < su->device_count; d++) {
        if (d == su->match.reference)
            continue;
        fprintf(f, "<h3>");
        html_escape(f, su->names[d]);
        fprintf(f, "</h3>\n");
        svg_heat(f, s, d);
    }
    fprintf(f, "<h2>Measured timeline of one frame period</h2>\n");
    svg_timeline(f, s);
    fprintf(f, "</body></html>\n");
    return ks_atomic_commit(&af, true, err);
}
