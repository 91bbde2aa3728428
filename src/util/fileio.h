/* util/fileio.h: whole files in and out. Reading loads a file into one NUL-terminated buffer with
 * a size limit; writing goes through a temporary file in the same directory that is renamed over
 * the target only when everything was written, so a reader never sees a half-written file and a
 * failed write leaves the old file (or none) in place. Internal to the library and the command. */
#ifndef KS_UTIL_FILEIO_H
#define KS_UTIL_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kinsync/error.h"

/* Reads the whole file into *data (malloc'ed, NUL-terminated; *len excludes the NUL). A file of
 * more than max bytes is refused with KS_EINVAL; KS_ENOTFOUND if it does not exist, KS_EIO for
 * other failures (a directory, a read error). Messages name the file. Nothing is returned on
 * failure (*data = NULL). */
ks_status ks_file_read_all(const char *path, size_t max, char **data, size_t *len, ks_error *err);

/* The same for an open stream (a pipe, stdin); `name` is used in messages. */
ks_status ks_stream_read_all(FILE *f, const char *name, size_t max, char **data, size_t *len, ks_error *err);

/* A file being replaced: write to f, then ks_atomic_commit or ks_atomic_abort (exactly one). */
typedef struct ks_atomic_file {
    FILE *f;
    char *path;   /* the target */
    char *tmp;    /* PATH.tmp.PID */
} ks_atomic_file;

/* Opens PATH.tmp.PID for writing ("wb"). KS_EIO naming the directory when it cannot be created. */
ks_status ks_atomic_open(ks_atomic_file *af, const char *path, ks_error *err);

/* Flushes, checks the stream for write errors, closes and renames the temporary over the target.
 * ok = false (the caller's own writing failed) makes it fail too. On any failure the temporary is
 * removed, the target is untouched, and the status is KS_EIO with a message naming the target. */
ks_status ks_atomic_commit(ks_atomic_file *af, bool ok, ks_error *err);

/* Closes and removes the temporary; the target is untouched. */
void ks_atomic_abort(ks_atomic_file *af);

/* Writes n bytes to path through a temporary file (see above). */
ks_status ks_file_write_atomic(const char *path, const void *data, size_t n, ks_error *err);

/* Writes a jansson value (json_dumpf with flags, as json_dump_file writes it) through a temporary file. */
struct json_t;
ks_status ks_json_write_atomic(const struct json_t *root, const char *path, size_t flags, ks_error *err);

#endif
