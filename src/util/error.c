/* Error records: see kinsync/error.h. Messages are truncated, never overflowed. */
#include "kinsync/error.h"

#include <stdio.h>
#include <string.h>

static const char *const names[KS_ESTATUS_COUNT] = {
    "OK", "EINVAL", "ENOMEM", "EIO", "EPARSE", "ENOTFOUND", "ETIMEOUT",
    "EUNSUPPORTED", "ESTATE", "ENODEV", "ESYNC", "EEOF", "EAUTH",
};

static const char *const strings[KS_ESTATUS_COUNT] = {
    "success",
    "invalid argument or configuration",
    "out of memory",
    "input/output error",
    "malformed input",
    "not found",
    "timed out",
    "not supported by this backend or device",
    "not valid in the current state",
    "device disconnected",
    "sync wiring or signal problem",
    "end of stream",
    "authentication failed",
};

const char *ks_status_name(ks_status code)
{
    return (code >= 0 && code < KS_ESTATUS_COUNT) ? names[code] : "EUNKNOWN";
}

const char *ks_status_string(ks_status code)
{
    return (code >= 0 && code < KS_ESTATUS_COUNT) ? strings[code] : "unknown status";
}

ks_status ks_error_setv(ks_error *err, ks_status code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return code;
}

ks_status ks_error_set(ks_error *err, ks_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ks_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

ks_status ks_error_prefix(ks_error *err, ks_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prefix[KS_ERROR_MESSAGE_MAX], old[KS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
    err->code = code;
    return code;
}

void ks_error_clear(ks_error *err)
{
    if (err) {
        err->code = KS_OK;
        err->message[0] = '\0';
    }
}
