/* Whole-file reading and atomic replacement (util/fileio.h). */
#include "util/fileio.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ks_status ks_stream_read_all(FILE *f, const char *name, size_t max, char **data, size_t *len, ks_error *err)
{
    *data = NULL;
    if (len)
        *len = 0;
    size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory reading it", name);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            free(buf);
            return ks_error_set(err, KS_EINVAL, "%s is larger than %zu bytes; is it the right file?", name, max);
        }
        if (got == 0 || n < cap) {
            if (ferror(f)) {
                free(buf);
                return ks_error_set(err, KS_EIO, "%s: read error (%s); is it a directory?", name, strerror(errno));
            }
            if (feof(f))
                break;
            continue;
        }
        size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
        char *nb = realloc(buf, ncap + 1);
        if (!nb) {
            free(buf);
            return ks_error_set(err, KS_ENOMEM, "%s: out of memory reading it", name);
        }
        buf = nb;
        cap = ncap;
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return KS_OK;
}

ks_status ks_file_read_all(const char *path, size_t max, char **data, size_t *len, ks_error *err)
{
    *data = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ks_error_set(err, errno == ENOENT ? KS_ENOTFOUND : KS_EIO, "%s: cannot open: %s", path,
                            strerror(errno));
    ks_status st = ks_stream_read_all(f, path, max, data, len, err);
    fclose(f);
    return st;
}

ks_status ks_atomic_open(ks_atomic_file *af, const char *path, ks_error *err)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return ks_error_set(err, KS_ENOMEM, "out of memory writing %s", path);
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        ks_status st = ks_error_set(err, KS_EIO, "%s: cannot write (%s); check the directory exists and is writable",
                                    path, strerror(errno));
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return st;
    }
    return KS_OK;
}

static void atomic_free(ks_atomic_file *af)
{
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

ks_status ks_atomic_commit(ks_atomic_file *af, bool ok, ks_error *err)
{
    if (!af->f)
        return ks_error_set(err, KS_ESTATE, "ks_atomic_commit: the file is not open");
    int e = 0;
    if (fflush(af->f) != 0 || ferror(af->f))
        ok = false, e = errno;
    if (fclose(af->f) != 0 && ok)
        ok = false, e = errno;
    af->f = NULL;
    if (ok && rename(af->tmp, af->path) != 0)
        ok = false, e = errno;
    if (!ok) {
        unlink(af->tmp);
        ks_status st = ks_error_set(err, KS_EIO, "%s: write failed (%s); check free space and permissions",
                                    af->path, e ? strerror(e) : "incomplete data");
        atomic_free(af);
        return st;
    }
    atomic_free(af);
    return KS_OK;
}

void ks_atomic_abort(ks_atomic_file *af)
{
    if (af->f) {
        fclose(af->f);
        unlink(af->tmp);
    }
    atomic_free(af);
}

ks_status ks_file_write_atomic(const char *path, const void *data, size_t n, ks_error *err)
{
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st != KS_OK)
        return st;
    bool ok = n == 0 || fwrite(data, 1, n, af.f) == n;
    return ks_atomic_commit(&af, ok, err);
}

ks_status ks_json_write_atomic(const json_t *root, const char *path, size_t flags, ks_error *err)
{
    if (!root)
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory building the JSON", path);
    ks_atomic_file af;
    ks_status st = ks_atomic_open(&af, path, err);
    if (st != KS_OK)
        return st;
    bool ok = json_dumpf(root, af.f, flags) == 0;
    return ks_atomic_commit(&af, ok, err);
}
