/* kinsync plan RIG.yaml: validate a rig and print how to configure and start every device, the
 * proof that the lasers never interfere, and the k4arecorder command lines (docs/plan.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kinsync/plan.h"
#include "kinsync/rig.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: kinsync plan [OPTIONS] RIG.yaml\n"
            "\n"
            "Validates the rig file and computes, for every device, the wired sync mode, the subordinate\n"
            "delay, the depth delay and the start order, so that depth lasers of one interference group\n"
            "never fire within the guard of each other (aim simultaneous: all color captures together;\n"
            "aim interleaved: captures spread over the frame period for N x fps). Prints a table per\n"
            "device, the start order, the proof (smallest separation between two devices' laser pulses\n"
            "over a whole frame period, after the firmware's %d Hz delay rounding), the validation\n"
            "findings, one start order across all hosts (step 1, 2, ... with the host), and the\n"
            "k4arecorder command line for every device grouped by host. An infeasible rig gets the\n"
            "reason and the alternatives that would work.\n"
            "\n"
            "Options:\n"
            "  --json          print the plan as a JSON document (schema kinsync.plan/1, docs/plan.md)\n"
            "  --svg FILE      also draw one frame period as SVG: color exposure and laser pulses per\n"
            "                  device, an inset on the first idle gap, guard gaps marked\n"
            "  --guard US      required separation between two devices' pulse starts (default: the rig's\n"
            "                  plan.guard_us, else pulse width + clock margin = %d us)\n"
            "  --aim AIM       simultaneous or interleaved, overriding the rig's plan.aim\n"
            "  -h, --help      this text\n"
            "\n"
            "Delays given in the rig file (subordinate_delay_us, depth_delay_us or a k4arecorder\n"
            "command line under recorder:) are audited first: applied delays, laser separation, color\n"
            "alignment and a verdict, then the corrected plan.\n"
            "\n"
            "Exit status: 0 the rig is valid, the plan feasible and given delays (if any) pass the\n"
            "audit; 1 invalid rig, infeasible plan, failed audit or the SVG could not be written;\n"
            "2 usage error (unknown option, missing or unreadable file, bad YAML or unknown key).\n",
            ks_delay_ticks_hz(), ks_laser_default_guard_us(KS_DEPTH_NFOV_UNBINNED));
}

static const char *role_label(const ks_plan_device *d)
{
    return d->sync_mode == KS_SYNC_MASTER ? "master" : d->sync_mode == KS_SYNC_SUBORDINATE ? "subordinate"
                                                                                          : "standalone";
}

static void print_text(const ks_rig *rig, const ks_plan *plan, const ks_findings *f, bool valid)
{
    char line[1024], color[48], topology[64];
    if (rig->camera.color_resolution == KS_COLOR_OFF)
        snprintf(color, sizeof color, "color off");
    else
        snprintf(color, sizeof color, "color %s %s", ks_color_resolution_name(rig->camera.color_resolution),
                 ks_image_format_name(rig->camera.color_format));
    /* the topology is derived by validation: an invalid rig has none to show */
    if (!valid || rig->topology == KS_TOPOLOGY_UNKNOWN)
        snprintf(topology, sizeof topology, "wiring not derived (invalid rig)");
    else
        snprintf(topology, sizeof topology, "%s%s", ks_topology_name(rig->topology),
                 rig->trigger.present ? " driven by an external trigger" : "");
    printf("rig %s: %d device%s, %s, %s, %d fps, %s, depth %s\n", rig->name, rig->device_count,
           rig->device_count == 1 ? "" : "s", topology, ks_aim_name(plan->aim), ks_fps_hz(rig->camera.fps), color,
           ks_depth_mode_name(rig->camera.depth_mode));
    if (f->count) {
        printf("\nfindings:\n");
        for (int i = 0; i < f->count; i++) {
            ks_finding_format(rig, &f->items[i], line, sizeof line);
            printf("  %s\n", line);
        }
    }
    if (!valid) {
        printf("\nthe rig is invalid (%d error%s): fix the errors above, then plan again.\n",
               ks_findings_count(f, KS_SEV_ERROR), ks_findings_count(f, KS_SEV_ERROR) == 1 ? "" : "s");
        return;
    }
    const ks_plan_audit *au = &plan->audit;
    if (au->present) {
        printf("\naudit of the delays given in the rig file (requested -> applied after the 90 kHz tick "
               "truncation):\n");
        printf("%-12s %-11s %22s %22s %13s\n", "device", "role", "sub delay us", "depth delay us", "laser at us");
        for (int i = 0; i < plan->device_count; i++) {
            const ks_plan_audit_device *ad = &au->devices[i];
            char sub[40], dep[40], laser[32] = "-";
            snprintf(sub, sizeof sub, "%lld -> %.1f", ad->subordinate_delay_usec, ad->subordinate_delay_effective_us);
            snprintf(dep, sizeof dep, "%lld -> %.1f", ad->depth_delay_usec, ad->depth_delay_effective_us);
            if (plan->devices[i].laser)
                snprintf(laser, sizeof laser, "%.1f", ad->laser_start_us);
            printf("%-12s %-11s %22s %22s %13s%s\n", rig->devices[i].name, role_label(&plan->devices[i]), sub, dep,
                   laser, ad->given ? "" : "   (not given: 0)");
        }
        printf("audit: %s\n", au->verdict);
        printf("\n%s plan kinsync computes for this rig:\n", au->pass ? "for comparison, the" : "the corrected");
    }
    printf("\n%-12s %-14s %-12s %-11s %5s %12s %14s %16s %13s %14s %5s\n", "device", "serial", "host", "role",
           "group", "sub delay", "depth delay", "(effective us)", "laser at us", "depth-color ms", "start");
    for (int i = 0; i < plan->device_count; i++) {
        const ks_plan_device *d = &plan->devices[i];
        char sub[32], laser[32];
        if (d->sync_mode == KS_SYNC_SUBORDINATE)
            snprintf(sub, sizeof sub, "%u (%.1f)", d->subordinate_delay_usec, d->subordinate_delay_effective_us);
        else
            snprintf(sub, sizeof sub, "-");
        if (d->laser)
            snprintf(laser, sizeof laser, "%.1f", d->laser_start_us);
        else
            snprintf(laser, sizeof laser, "-");
        printf("%-12s %-14s %-12s %-11s %5d %12s %14d %16.1f %13s %14.1f %5d\n", rig->devices[i].name,
               rig->devices[i].serial, rig->devices[i].host, role_label(d), d->group, sub, (int)d->depth_delay_usec,
               d->depth_delay_effective_us, laser, d->depth_delay_effective_us / 1000.0, d->start_position);
    }
    printf("\nstart order:");
    for (int k = 0; k < plan->device_count; k++)
        printf("%s %s", k ? "," : "", rig->devices[plan->start_order[k]].name);
    printf("  (%s)\n", plan->trigger ? "every device is a subordinate of the trigger: deepest first, then switch "
                                       "the trigger on"
                                     : "subordinates first, the master last");
    /* one order across every host: a step starts only when the previous one runs */
    for (int k = 0; k < plan->device_count; k++) {
        int i = plan->start_order[k];
        printf("  step %d: host %s: start %s (%s)%s\n", k + 1, rig->devices[i].host, rig->devices[i].name,
               role_label(&plan->devices[i]),
               plan->devices[i].sync_mode == KS_SYNC_MASTER ? ", last: its pulses start every device"
               : plan->devices[i].trigger_head             ? ", fed by the trigger"
                                                           : "");
    }
    if (plan->trigger)
        printf("  step %d: switch the trigger on (every device waits for its pulses)\n", plan->device_count + 1);
    char notes[4][320];
    int nn = ks_plan_cost_notes(rig, plan, notes, 4);
    for (int k = 0; k < nn; k++)
        printf("cost: %s\n", notes[k]);
    if (plan->aim == KS_AIM_INTERLEAVED)
        printf("interleaved: effective %.0f fps, largest spacing error %.1f us\n", plan->effective_fps,
               plan->spacing_error_us);
    else if (plan->proof.color_ok && rig->master >= 0)
        printf("color: all captures within %.1f us of the master (target %d us)\n", plan->proof.color_spread_us,
               ks_color_alignment_target_us());
    const ks_plan_proof *p = &plan->proof;
    if (!plan->lasers)
        printf("proof: depth mode %s fires no laser: there is no laser interference to plan\n",
               ks_depth_mode_name(rig->camera.depth_mode));
    else if (p->device_a < 0)
        printf("proof: no two laser devices share an interference group (nothing can interfere)\n");
    else
        printf("proof: smallest laser separation %.1f us between %s and %s %s guard %d us "
               "(%d device pair%s, %ld pulse pairs, one frame period of %.1f us%s)\n",
               p->min_separation_us, rig->devices[p->device_a].name, rig->devices[p->device_b].name,
               p->lasers_ok ? ">=" : "<", plan->guard_us, p->pairs_checked, p->pairs_checked == 1 ? "" : "s",
               p->pulse_pairs_checked, plan->period_us,
               p->unsynced_pairs ? "; a standalone device shares the group: no common clock, counted as 0" : "");
    if (!plan->feasible) {
        printf("\nINFEASIBLE: %s\n", plan->reason);
        if (plan->alternative_count) {
            printf("alternatives:\n");
            for (int k = 0; k < plan->alternative_count; k++)
                printf("  - %s: %s\n", plan->alternatives[k].kind, plan->alternatives[k].text);
        }
        return;
    }
    printf("\nk4arecorder commands by host (run each at its step above):\n");
    for (int k = 0; k < plan->device_count; k++) {
        int i = plan->start_order[k];
        const char *host = rig->devices[i].host;
        bool seen = false;
        for (int q = 0; q < k; q++)
            seen |= strcmp(rig->devices[plan->start_order[q]].host, host) == 0;
        if (seen)
            continue;
        printf("  host %s:\n", host);
        for (int q = k; q < plan->device_count; q++) {
            int j = plan->start_order[q];
            if (strcmp(rig->devices[j].host, host) != 0)
                continue;
            char cmd[512], comment[512];
            ks_plan_recorder_command(rig, plan, j, cmd, sizeof cmd);
            ks_plan_recorder_comment(rig, plan, j, comment, sizeof comment);
            printf("    [step %d] %s   # %s\n", q + 1, cmd, comment);
        }
    }
}

int cmd_plan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},  {"svg", required_argument, NULL, 's'},
        {"guard", required_argument, NULL, 'g'}, {"aim", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},  {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char *svg = NULL;
    ks_plan_options opt;
    ks_plan_options_init(&opt);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 's': svg = optarg; break;
        case 'g': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || v <= 0 || v > 100000)
                return ks_cli_usage_error("plan", "--guard needs a positive whole number of microseconds, got '%s'",
                                          optarg);
            opt.guard_us = (int)v;
            break;
        }
        case 'a':
            if (!ks_aim_parse(optarg, &opt.aim))
                return ks_cli_usage_error("plan", "--aim must be simultaneous or interleaved, got '%s'", optarg);
            opt.override_aim = true;
            break;
        case 'h': usage(stdout); return KS_EXIT_OK;
        default:
            return ks_cli_usage_error("plan", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return ks_cli_usage_error("plan", optind >= argc ? "no rig file given" : "give exactly one rig file");

    ks_rig *rig = malloc(sizeof *rig);
    ks_plan *plan = malloc(sizeof *plan);
    if (!rig || !plan) {
        free(rig);
        free(plan);
        fprintf(stderr, "kinsync plan: out of memory\n");
        return KS_EXIT_FAIL;
    }
    int rc = KS_EXIT_OK;
    ks_error err;
    ks_error_clear(&err);
    ks_findings f;
    ks_findings_init(&f);
    if (ks_rig_load(argv[optind], rig, &err) != KS_OK) {
        ks_cli_print_error("plan", &err);
        rc = KS_EXIT_USAGE;
        goto done;
    }
    if (opt.guard_us > 0) {
        rig->guard_us = opt.guard_us; /* so validation judges the guard actually used */
        snprintf(rig->guard_option, sizeof rig->guard_option, "--guard");
    }
    if (opt.override_aim)
        rig->aim = opt.aim;
    bool valid = ks_rig_validate(rig, &f) == KS_OK;
    if (valid) {
        ks_plan_make(rig, &opt, plan, NULL);
    } else {
        memset(plan, 0, sizeof *plan);
        plan->aim = rig->aim;
        plan->fps = rig->camera.fps;
        snprintf(plan->reason, sizeof plan->reason, "the rig is invalid: %d validation error(s)",
                 ks_findings_count(&f, KS_SEV_ERROR));
    }
    if (json) {
        char *s = ks_plan_to_json(rig, plan, &f);
        if (!s) {
            fprintf(stderr, "kinsync plan: out of memory\n");
            rc = KS_EXIT_FAIL;
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        print_text(rig, plan, &f, valid);
    }
    if (svg && valid) {
        if (ks_plan_write_svg(rig, plan, svg, &err) != KS_OK) {
            ks_cli_print_error("plan", &err);
            rc = KS_EXIT_FAIL;
            goto done;
        }
        if (!json)
            printf("\ntimeline written to %s\n", svg);
    } else if (svg) {
        fprintf(stderr, "kinsync plan: no timeline written: the rig is invalid\n");
    }
    /* delays given in the rig file that fail the audit are a rig that would not work as configured */
    rc = valid && plan->feasible && (!plan->audit.present || plan->audit.pass) ? KS_EXIT_OK : KS_EXIT_FAIL;
done:
    ks_findings_free(&f);
    free(rig);
    free(plan);
    return rc;
}
