/* calib_fixtures.h: reading a fixture from a test. KS_FIXTURES is tests/data (the real data from
 * outside the project is in tests/data/k4a, see its README.md), so a plain clone has them all. */
#ifndef KS_CALIB_FIXTURES_H
#define KS_CALIB_FIXTURES_H

#include <stddef.h>

/* Reads fixtures/<rel> (e.g. "k4a/real-device-calibration.json") into a malloc'd NUL-terminated
 * buffer; NULL when it cannot be read. */
char *ks_calib_test_read_fixture(const char *rel, size_t *len);

#endif
