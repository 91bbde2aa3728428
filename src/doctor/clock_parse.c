/* Parsers of chronyc / pmc status output (doctor/clock_parse.h). */
#include "doctor/clock_parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Value after "key" at the start of a line or after blanks, skipping blanks and one ':'. */
static const char *find_field(const char *text, const char *key)
{
    const char *p = text;
    size_t kl = strlen(key);
    while ((p = strstr(p, key)) != NULL) {
        if (p == text || p[-1] == '\n' || p[-1] == '\t' || p[-1] == ' ') {
            const char *q = p + kl;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == ':')
                q++;
            while (*q == ' ' || *q == '\t')
                q++;
            return q;
        }
        p += kl;
    }
    return NULL;
}

static size_t line_len(const char *p)
{
    return strcspn(p, "\n");
}

ks_clock_status ks_parse_chronyc_tracking(const char *text)
{
    ks_clock_status cs = {0};
    if (!text)
        return cs;
    const char *leap = find_field(text, "Leap status");
    if (leap && !strncmp(leap, "Not synchronised", 16))
        cs.unsynchronised = true;
    const char *sys = find_field(text, "System time");
    if (sys) {
        char *end = NULL;
        double secs = strtod(sys, &end);
        if (end != sys && isfinite(secs)) {
            size_t n = line_len(sys);
            const char *slow = strstr(sys, "slow");
            if (slow && (size_t)(slow - sys) < n)
                secs = -secs; /* "N seconds slow of NTP time": this clock is behind */
            cs.have_offset = true;
            cs.offset_us = secs * 1e6;
        }
    }
    return cs;
}

ks_clock_status ks_parse_pmc_time_status(const char *text)
{
    ks_clock_status cs = {0};
    if (!text)
        return cs;
    const char *gm = find_field(text, "gmPresent");
    if (gm && !strncmp(gm, "false", 5))
        cs.unsynchronised = true;
    const char *off = find_field(text, "master_offset");
    if (off) {
        char *end = NULL;
        double ns = strtod(off, &end);
        if (end != off && isfinite(ns)) {
            cs.have_offset = true;
            cs.offset_us = ns / 1000.0;
        }
    }
    return cs;
}
