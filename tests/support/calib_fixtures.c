/* calib_fixtures.c: see calib_fixtures.h. */
#include "calib_fixtures.h"

#include <stdio.h>
#include <stdlib.h>

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return NULL;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    fclose(f);
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

char *ks_calib_test_read_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", KS_FIXTURES, rel);
    char *b = read_all(path, len);
    if (!b)
        fprintf(stderr, "cannot read the fixture %s (tests/data/k4a/README.md lists them)\n", path);
    return b;
}
