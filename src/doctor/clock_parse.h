/* doctor/clock_parse.h: parsers of the clock daemons' status output the doctor reads
 * (internal; fuzzed by fuzz/fuzz_doctor_clock.c). Both accept any text and never read past its
 * terminating NUL. */
#ifndef KS_DOCTOR_CLOCK_PARSE_H
#define KS_DOCTOR_CLOCK_PARSE_H

#include <stdbool.h>

typedef struct ks_clock_status {
    bool have_offset;     /* an offset was found */
    double offset_us;     /* this host's clock minus its reference, microseconds */
    bool unsynchronised;  /* chrony: "Leap status : Not synchronised"; pmc: gmPresent false */
} ks_clock_status;

/* `chronyc tracking` output: "System time : N seconds fast|slow of NTP time", "Leap status". */
ks_clock_status ks_parse_chronyc_tracking(const char *text);
/* `pmc -u -b 0 'GET TIME_STATUS_NP'` output: master_offset (ns), gmPresent. */
ks_clock_status ks_parse_pmc_time_status(const char *text);

#endif
