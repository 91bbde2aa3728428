/* libFuzzer target: the doctor's parsers of `chronyc tracking` and `pmc ... TIME_STATUS_NP`
 * output (src/doctor/clock_parse.c) on arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/clock_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    ks_clock_status a = ks_parse_chronyc_tracking(text);
    ks_clock_status b = ks_parse_pmc_time_status(text);
    volatile double sink = a.offset_us + b.offset_us;
    (void)sink;
    free(text);
    return 0;
}
