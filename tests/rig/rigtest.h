/* Shared helpers of the rig tests: load a rig from a string, validate it, look for a finding. */
#ifndef KS_TESTS_RIGTEST_H
#define KS_TESTS_RIGTEST_H

#include <stdio.h>
#include <string.h>

#include "kinsync/rig.h"

static inline void rigtest_dump(const ks_findings *f)
{
    for (int i = 0; i < f->count; i++)
        fprintf(stderr, "    %s %s device=%d line=%d: %s; fix: %s\n", ks_severity_name(f->items[i].severity),
                f->items[i].rule, f->items[i].device, f->items[i].line, f->items[i].message, f->items[i].fix);
}

/* 1-based line of the first line containing `marker`, 0 if none. */
static inline int rigtest_marker_line(const char *text, const char *marker)
{
    const char *hit = strstr(text, marker);
    if (!hit)
        return 0;
    int line = 1;
    for (const char *p = text; p < hit; p++)
        line += *p == '\n';
    return line;
}

static inline const ks_finding *rigtest_find(const ks_findings *f, const char *rule)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->items[i].rule, rule) == 0)
            return &f->items[i];
    return NULL;
}

#endif
