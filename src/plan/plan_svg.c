/* The timeline picture of a plan (ks_plan_write_svg): one frame period, a row per device with its
 * color exposure bar and its laser pulses, a shared time axis, and an inset that zooms into the
 * first idle gap where the staggered pulses and the guard between them are visible. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/plan.h"
#include "util/fileio.h"

enum { W = 1200, LEFT = 150, RIGHT = 30, TOP = 60, ROW = 26 };

static double wrap(double t, double period)
{
    double r = fmod(t, period);
    return r < 0 ? r + period : r;
}

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* a bar [t, t+len) on a circle of `period`, drawn in [x0, x0+w) scaled to [lo, lo+span) */
static void bar(FILE *out, double t, double len, double lo, double span, double x0, double w, double y, double h,
                const char *cls)
{
    double a = t - lo, b = a + len;
    if (b <= 0 || a >= span)
        return;
    if (a < 0)
        a = 0;
    if (b > span)
        b = span;
    double xa = x0 + a / span * w, xb = x0 + b / span * w;
    if (xb - xa < 0.8)
        xb = xa + 0.8;
    fprintf(out, "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", cls, xa, y, xb - xa, h);
}

static void timeline_row(FILE *out, const ks_plan *plan, const ks_plan_device *d, double lo, double span, double x0,
                         double w, double y, bool exposure)
{
    double P = plan->period_us;
    /* exposure bars first, pulses on top; every copy of the periodic pattern meeting the span */
    for (int rep = -2; rep <= 2; rep++) {
        /* the color exposure is drawn centred on the depth window's centre at depth delay 0 (both
         * timestamps name the middle of the exposure); only this picture depends on that choice */
        if (exposure && d->exposure_us > 0)
            bar(out, wrap(d->color_offset_us + (plan->window_us - d->exposure_us) / 2.0, P) + rep * P,
                d->exposure_us, lo, span, x0, w, y + 3, ROW - 14, "exposure");
    }
    for (int rep = -2; rep <= 2; rep++)
        if (d->laser)
            for (int k = 0; k < plan->pulses; k++)
                bar(out, wrap(d->laser_start_us, P) + k * plan->pitch_us + rep * P, plan->pulse_width_us, lo, span,
                    x0, w, y + 2, ROW - 6, "pulse");
}

/* The busy part of the frame period: color exposures and laser windows of every device, as an arc
 * [*lo, *lo + *span) that leaves out the longest stretch where nothing happens (when that stretch
 * is more than a tenth of the period; else the whole period from 0). */
static void busy_arc(const ks_plan *plan, double *lo, double *span)
{
    enum { BINS = 2000 };
    double P = plan->period_us;
    unsigned char busy[BINS];
    memset(busy, 0, sizeof busy);
    for (int i = 0; i < plan->device_count; i++) {
        const ks_plan_device *d = &plan->devices[i];
        double from[2], len[2];
        int k = 0;
        if (d->exposure_us > 0) {
            from[k] = d->color_offset_us + (plan->window_us - d->exposure_us) / 2.0;
            len[k++] = d->exposure_us;
        }
        if (d->laser) {
            from[k] = d->laser_start_us;
            len[k++] = (plan->pulses - 1) * plan->pitch_us + plan->pulse_width_us;
        }
        for (int q = 0; q < k; q++) {
            int a = (int)floor(wrap(from[q], P) / P * BINS), nb = (int)ceil(len[q] / P * BINS) + 1;
            for (int b = 0; b < nb && b < BINS; b++)
                busy[(a + b) % BINS] = 1;
        }
    }
    int best = 0, best_end = 0;
    for (int start = 0; start < BINS; start++) {
        if (busy[start] || !busy[(start + BINS - 1) % BINS])
            continue; /* runs start right after a busy bin */
        int len = 0;
        while (len < BINS && !busy[(start + len) % BINS])
            len++;
        if (len > best) {
            best = len;
            best_end = (start + len) % BINS;
        }
    }
    if (best * 10 < BINS) {
        *lo = 0;
        *span = P;
        return;
    }
    double margin = P / 40;
    *lo = best_end * P / BINS - margin;
    if (*lo > P / 2)
        *lo -= P; /* e.g. -2 .. 14 ms rather than 31 .. 47 ms */
    *span = (BINS - best) * P / BINS + 2 * margin;
}

static ks_status write_svg(FILE *out, const ks_rig *rig, const ks_plan *plan)
{
    int n = plan->device_count;
    double P = plan->period_us;
    int main_h = TOP + n * ROW + 40;
    int inset_top = main_h + 40;
    int h = inset_top + (plan->lasers ? n * ROW + 50 : 0) + 10;
    double w = W - LEFT - RIGHT;
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<style>.exposure{fill:#8fbce6;} .pulse{fill:#d9412b;} .axis{stroke:#333;stroke-width:1;} "
            ".grid{stroke:#ccc;stroke-width:0.5;} .guard{stroke:#2a8c2a;stroke-width:1.2;fill:none;} "
            ".zoom{fill:#f3f3f3;stroke:#999;stroke-dasharray:4 3;} text.small{font-size:10px;}</style>\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            W, h, W, h, W, h);
    fprintf(out, "<text x=\"10\" y=\"20\" font-size=\"15\">");
    xml_text(out, rig->name);
    double view_lo, view_span;
    busy_arc(plan, &view_lo, &view_span);
    if (view_span < P - 1e-6)
        fprintf(out, ": %.1f .. %.1f ms of the %.1f ms frame period at %d fps (nothing happens in the rest), "
                     "aim %s, %s</text>\n",
                view_lo / 1000, (view_lo + view_span) / 1000, P / 1000, ks_fps_hz(plan->fps),
            ks_aim_name(plan->aim), plan->feasible ? "feasible" : "NOT feasible");
    else
        fprintf(out, ": one frame period (%.1f ms at %d fps), aim %s, %s</text>\n", P / 1000, ks_fps_hz(plan->fps),
                ks_aim_name(plan->aim), plan->feasible ? "feasible" : "NOT feasible");
    if (plan->lasers && plan->proof.device_a >= 0)
        fprintf(out, "<text x=\"10\" y=\"38\">smallest laser separation %.1f us between %s and %s, guard %d us; "
                     "blue: color exposure, red: laser pulses</text>\n",
                plan->proof.min_separation_us, rig->devices[plan->proof.device_a].name,
                rig->devices[plan->proof.device_b].name, plan->guard_us);
    else
        fprintf(out, "<text x=\"10\" y=\"38\">%s; blue: color exposure</text>\n",
                plan->lasers ? "no two laser devices share an interference group" : "depth mode fires no laser");

    /* main axis: ticks every 5 ms at 30/15 fps, 20 ms at 5 fps */
    double step = view_span > 100000 ? 20000 : view_span > 20000 ? 5000 : 1000;
    double yaxis = TOP + n * ROW + 5;
    fprintf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", LEFT, yaxis, LEFT + w, yaxis);
    for (double t = ceil(view_lo / step) * step; t <= view_lo + view_span + 1e-6; t += step) {
        double x = LEFT + (t - view_lo) / view_span * w;
        fprintf(out, "<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.1f\"/>\n", x, TOP, x, yaxis + 4);
        fprintf(out, "<text class=\"small\" x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%.0f ms</text>\n", x,
                yaxis + 16, fabs(t) < 1e-6 ? 0.0 : t / 1000);
    }
    fprintf(out, "<text class=\"small\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">time from the master's color "
                 "capture (ms, modulo the frame period)</text>\n",
            LEFT + w, yaxis + 30);
    for (int i = 0; i < n; i++) {
        const ks_plan_device *d = &plan->devices[i];
        double y = TOP + i * ROW;
        fprintf(out, "<text x=\"10\" y=\"%.1f\">", y + ROW / 2.0 + 4);
        xml_text(out, rig->devices[i].name);
        fprintf(out, " (g%d)</text>\n", d->group);
        timeline_row(out, plan, d, view_lo, view_span, LEFT, w, y, true);
    }

    if (plan->lasers) {
        /* inset: one pitch plus a pulse, starting a pulse width before the closest two pulses of the
         * proof (else at the earliest pulse): one idle gap, where every device of a group in the
         * same window shows one pulse */
        double lo = 1e300;
        for (int i = 0; i < n; i++)
            if (wrap(plan->devices[i].laser_start_us, P) < lo)
                lo = wrap(plan->devices[i].laser_start_us, P);
        int pa = plan->proof.device_a, pb = plan->proof.device_b;
        if (pa >= 0 && pb >= 0 && pa < n && pb < n) {
            double best = 1e300;
            for (int k = 0; k < plan->pulses; k++)
                for (int l = 0; l < plan->pulses; l++) {
                    double ta = wrap(plan->devices[pa].laser_start_us + k * plan->pitch_us, P);
                    double tb = wrap(plan->devices[pb].laser_start_us + l * plan->pitch_us, P);
                    double dist = ks_plan_cyclic_distance(ta, tb, P);
                    if (dist < best - 1e-9) {
                        best = dist;
                        /* the earlier of the two on the circle */
                        lo = wrap(tb - ta, P) <= P / 2 ? ta : tb;
                    }
                }
            lo = wrap(lo - plan->pulse_width_us, P);
        }
        double span = plan->pitch_us + plan->pulse_width_us;
        if (lo > P - span)
            lo -= P; /* show e.g. -125 .. 1575 rather than a span across the frame end */
        double ix0 = LEFT, iw = w;
        /* mark the zoomed span on the main axis (its copy inside the shown part of the period) */
        double zoom_at = lo;
        while (zoom_at < view_lo)
            zoom_at += P;
        while (zoom_at > view_lo + view_span)
            zoom_at -= P;
        fprintf(out, "<rect class=\"zoom\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill-opacity=\"0.3\"/>\n",
                LEFT + (zoom_at - view_lo) / view_span * w, TOP - 4, fmax(span / view_span * w, 2), n * ROW + 8);
        fprintf(out, "<text x=\"10\" y=\"%d\" font-size=\"14\">inset: %.1f .. %.1f us (one idle gap, at the closest "
                     "pulses), separations between successive pulse starts in green</text>\n",
                inset_top - 12, lo, lo + span);
        fprintf(out, "<rect class=\"zoom\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>\n", ix0, inset_top, iw,
                n * ROW + 8);
        double starts[KS_RIG_MAX_DEVICES * 4];
        int groups[KS_RIG_MAX_DEVICES * 4], rows[KS_RIG_MAX_DEVICES * 4], ns = 0;
        for (int i = 0; i < n; i++) {
            const ks_plan_device *d = &plan->devices[i];
            double y = inset_top + 4 + i * ROW;
            fprintf(out, "<text x=\"10\" y=\"%.1f\">", y + ROW / 2.0 + 4);
            xml_text(out, rig->devices[i].name);
            fprintf(out, "</text>\n");
            timeline_row(out, plan, d, lo, span, ix0, iw, y, false);
            for (int rep = -1; rep <= 1; rep++)
                for (int k = 0; k < plan->pulses; k++) {
                    double t = wrap(d->laser_start_us, P) + k * plan->pitch_us + rep * P;
                    if (t >= lo - 1e-6 && t < lo + span && ns < KS_RIG_MAX_DEVICES * 4) {
                        starts[ns] = t;
                        groups[ns] = d->group;
                        rows[ns++] = i;
                    }
                }
        }
        /* guard gaps: successive pulse starts of one group inside the inset */
        for (int a = 0; a < ns; a++) {
            int best = -1;
            for (int b = 0; b < ns; b++)
                if (b != a && groups[b] == groups[a] && starts[b] > starts[a] - 1e-9 && rows[b] != rows[a] &&
                    (best < 0 || starts[b] < starts[best]))
                    best = b;
            if (best < 0)
                continue;
            double xa = ix0 + (starts[a] - lo) / span * iw, xb = ix0 + (starts[best] - lo) / span * iw;
            double ya = inset_top + 4 + rows[a] * ROW + ROW - 3, yb = inset_top + 4 + rows[best] * ROW + 2;
            double gap = starts[best] - starts[a];
            fprintf(out, "<path class=\"guard\" d=\"M%.2f %.2f L%.2f %.2f L%.2f %.2f\"/>\n", xa, ya, xb, ya, xb, yb);
            fprintf(out, "<text class=\"small\" x=\"%.2f\" y=\"%.2f\" fill=\"%s\">%.1f</text>\n", (xa + xb) / 2 - 10,
                    ya + 10, gap + 1e-6 < plan->guard_us ? "#c00" : "#2a8c2a", gap);
        }
        double iy = inset_top + n * ROW + 12;
        fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ix0, iy, ix0 + iw, iy);
        for (double t = ceil(lo / 250) * 250 - lo; t <= span + 1e-6; t += 250) {
            double x = ix0 + t / span * iw;
            fprintf(out, "<line class=\"grid\" x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>\n", x, iy - 4, x,
                    iy + 4);
            fprintf(out, "<text class=\"small\" x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%.0f us</text>\n", x,
                    iy + 16, lo + t);
        }
    }
    fprintf(out, "</svg>\n");
    return ferror(out) ? KS_EIO : KS_OK;
}

ks_status ks_plan_write_svg(const ks_rig *rig, const ks_plan *plan, const char *path, ks_error *err)
{
    if (!rig || !plan || !path || !path[0])
        return ks_error_set(err, KS_EINVAL, "ks_plan_write_svg needs a rig, a plan and a file name");
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st != KS_OK)
        return st;
    return ks_atomic_commit(&af, write_svg(af.f, rig, plan) == KS_OK, err);
}
