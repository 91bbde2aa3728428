/* calib_fixtures.h: locating the shared fixtures from a test. KS_FIXTURES is the main checkout's
 * ../shared/fixtures; in a helper worktree (/work/wt/NAME) that path does not exist, so the
 * environment variable KS_FIXTURES and then KS_SOURCE_DIR/../../shared/fixtures are tried too. */
#ifndef KS_CALIB_FIXTURES_H
#define KS_CALIB_FIXTURES_H

#include <stddef.h>

/* Reads fixtures/<rel> (e.g. "k4a/real-device-calibration.json") into a malloc'd NUL-terminated
 * buffer; NULL when no candidate directory has it. */
char *ks_calib_test_read_fixture(const char *rel, size_t *len);

#endif
