/* kinsync/error.h: one status type for every call, and an error record that says what to do.
 *
 * Every fallible function returns a ks_status and takes an optional `ks_error *err` (may be NULL).
 * On failure the record holds the code and one or two sentences: what went wrong, naming the
 * file/device/key concerned, and the fix. On success the record is left untouched. The returned
 * status never depends on whether err was given: a failure is a failure with err == NULL too. */
#ifndef KINSYNC_ERROR_H
#define KINSYNC_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ks_status {
    KS_OK = 0,
    KS_EINVAL,       /* invalid argument or configuration */
    KS_ENOMEM,       /* out of memory */
    KS_EIO,          /* file or device I/O failed */
    KS_EPARSE,       /* malformed input file or message */
    KS_ENOTFOUND,    /* no such device, file, key or library */
    KS_ETIMEOUT,     /* nothing arrived in time */
    KS_EUNSUPPORTED, /* the backend or device cannot do this */
    KS_ESTATE,       /* call not valid in the current state (e.g. not started) */
    KS_ENODEV,       /* device disconnected or gone */
    KS_ESYNC,        /* sync wiring or signal problem */
    KS_EEOF,         /* end of stream / recording */
    KS_EAUTH,        /* authentication failed (multi-host) */
    KS_ESTATUS_COUNT
} ks_status;

#define KS_ERROR_MESSAGE_MAX 512

typedef struct ks_error {
    ks_status code;
    char message[KS_ERROR_MESSAGE_MAX];
} ks_error;

/* Short stable name of a status, e.g. "EINVAL"; never NULL. */
const char *ks_status_name(ks_status code);

/* Sentence describing a status in general terms; never NULL. */
const char *ks_status_string(ks_status code);

/* Fills *err (if not NULL) with code and a printf-formatted message; returns code. */
ks_status ks_error_set(ks_error *err, ks_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ks_status ks_error_setv(ks_error *err, ks_status code, const char *fmt, va_list ap);

/* Adds context to a failure passed up from a callee: prepends "context: " to err's message (if err is
 * not NULL) and returns `code`, the callee's status. The status is passed in, not read back from err,
 * so a failure stays a failure when the caller gave no error record (err == NULL). */
ks_status ks_error_prefix(ks_error *err, ks_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the record to KS_OK and an empty message. */
void ks_error_clear(ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
