/* Strict YAML access for hand-written files (util/yaml.h). libyaml builds the node graph; this file
 * only adds typed access and messages that point at FILE:LINE with a fix. */
#include "util/yaml.h"
#include "util/fileio.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KS_YAML_MAX_BYTES (4u << 20)
#define KS_YAML_MAX_FLOW_DEPTH 64

ks_status ks_yaml_error(ks_yaml *y, const yaml_node_t *n, ks_error *err, ks_status code, const char *fmt, ...)
{
    char msg[KS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        return ks_error_set(err, code, "%s:%d: %s", y->name, ks_yaml_line(n), msg);
    return ks_error_set(err, code, "%s: %s", y->name, msg);
}

static ks_status load(yaml_parser_t *p, ks_yaml *y, ks_error *err)
{
    if (!yaml_parser_load(p, &y->doc)) {
        ks_status st = ks_error_set(err, KS_EPARSE, "%s:%zu:%zu: YAML syntax error: %s%s%s; fix the indentation "
                                    "or quoting there",
                                    y->name, p->problem_mark.line + 1, p->problem_mark.column + 1,
                                    p->problem ? p->problem : "unknown problem", p->context ? " " : "",
                                    p->context ? p->context : "");
        yaml_parser_delete(p);
        return st;
    }
    y->loaded = true;
    /* refuse a second document: a rig is one document */
    yaml_document_t extra;
    if (yaml_parser_load(p, &extra)) {
        bool more = yaml_document_get_root_node(&extra) != NULL;
        int line = more ? (int)extra.start_mark.line + 1 : 0;
        yaml_document_delete(&extra);
        if (more) {
            yaml_parser_delete(p);
            ks_yaml_free(y);
            return ks_error_set(err, KS_EPARSE, "%s:%d: a second YAML document starts here; a file holds one "
                                "document, remove the '---' separator and what follows", y->name, line);
        }
    }
    yaml_parser_delete(p);
    return KS_OK;
}

/* libyaml's scanner is quadratic in the flow nesting depth ([[[[... of 100,000 levels in a 200 KB
 * file ran for hours): the depth is bounded on the text before libyaml sees it. Brackets inside
 * quoted scalars and comments do not count; '[' or '{' inside a plain scalar may (a hand-written
 * file never comes near the limit either way). Returns the line of the first bracket past the
 * limit, 0 when within. */
static int flow_too_deep(const char *t, size_t n)
{
    int depth = 0, line = 1;
    char quote = 0, last = '\n'; /* last: the last non-blank character of the line ('\n' at its start) */
    bool comment = false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '\n') {
            line++;
            comment = false;
            if (quote == 0) {
                last = '\n';
                continue;
            }
        }
        if (comment)
            continue;
        if (quote) {
            if (c == '\\' && quote == '"' && i + 1 < n)
                i++;
            else if (c == quote) {
                quote = 0;
                last = c;
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r')
            continue;
        /* a quote opens a scalar only where a scalar starts (not the apostrophe in "rock 'n roll") */
        if (c == '#' && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\t' || t[i - 1] == '\n'))
            comment = true;
        else if ((c == '"' || c == '\'') && strchr("\n:-[{,?", last))
            quote = c;
        else if (c == '[' || c == '{') {
            if (++depth > KS_YAML_MAX_FLOW_DEPTH)
                return line;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
        last = c;
    }
    return 0;
}

ks_status ks_yaml_load_string(const char *text, size_t len, const char *name, ks_yaml *y, ks_error *err)
{
    memset(y, 0, sizeof *y);
    snprintf(y->name, sizeof y->name, "%s", name ? name : "<string>");
    if (len > KS_YAML_MAX_BYTES)
        return ks_error_set(err, KS_EPARSE, "%s: file is %zu bytes, more than the 4 MiB a hand-written file "
                            "may have", y->name, len);
    if (memchr(text, '\0', len))
        return ks_error_set(err, KS_EPARSE, "%s: file contains a NUL byte; it is not a text file", y->name);
    int deep = flow_too_deep(text, len);
    if (deep)
        return ks_error_set(err, KS_EPARSE, "%s:%d: brackets nested more than %d levels deep; a hand-written file "
                            "nests a few levels: close the [ and { brackets", y->name, deep, KS_YAML_MAX_FLOW_DEPTH);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return ks_error_set(err, KS_ENOMEM, "%s: out of memory starting the YAML parser", y->name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    return load(&p, y, err);
}

ks_status ks_yaml_load_file(const char *path, ks_yaml *y, ks_error *err)
{
    memset(y, 0, sizeof *y);
    char *buf;
    size_t n;
    ks_status st = ks_file_read_all(path, KS_YAML_MAX_BYTES, &buf, &n, err);
    if (st == KS_EINVAL)
        return ks_error_set(err, KS_EPARSE, "%s: file is more than the 4 MiB a hand-written file may have", path);
    if (st != KS_OK)
        return st;
    st = ks_yaml_load_string(buf, n, path, y, err);
    free(buf);
    return st;
}

void ks_yaml_free(ks_yaml *y)
{
    if (y && y->loaded) {
        yaml_document_delete(&y->doc);
        y->loaded = false;
    }
}

yaml_node_t *ks_yaml_root(ks_yaml *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

int ks_yaml_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

bool ks_yaml_is_map(const yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }
bool ks_yaml_is_seq(const yaml_node_t *n) { return n && n->type == YAML_SEQUENCE_NODE; }
bool ks_yaml_is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }

const char *ks_yaml_scalar(const yaml_node_t *n)
{
    return ks_yaml_is_scalar(n) ? (const char *)n->data.scalar.value : NULL;
}

int ks_yaml_map_size(const yaml_node_t *map)
{
    if (!ks_yaml_is_map(map))
        return 0;
    return (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

const char *ks_yaml_map_key(ks_yaml *y, const yaml_node_t *map, int i)
{
    if (i < 0 || i >= ks_yaml_map_size(map))
        return NULL;
    yaml_node_t *k = yaml_document_get_node(&y->doc, map->data.mapping.pairs.start[i].key);
    return ks_yaml_scalar(k);
}

yaml_node_t *ks_yaml_map_value(ks_yaml *y, const yaml_node_t *map, int i)
{
    if (i < 0 || i >= ks_yaml_map_size(map))
        return NULL;
    return yaml_document_get_node(&y->doc, map->data.mapping.pairs.start[i].value);
}

yaml_node_t *ks_yaml_map_get(ks_yaml *y, const yaml_node_t *map, const char *key)
{
    int n = ks_yaml_map_size(map);
    for (int i = 0; i < n; i++) {
        const char *k = ks_yaml_map_key(y, map, i);
        if (k && strcmp(k, key) == 0)
            return ks_yaml_map_value(y, map, i);
    }
    return NULL;
}

ks_status ks_yaml_check_keys(ks_yaml *y, const yaml_node_t *map, const char *const *allowed, const char *where,
                             ks_error *err)
{
    int n = ks_yaml_map_size(map);
    for (int i = 0; i < n; i++) {
        yaml_node_t *kn = yaml_document_get_node(&y->doc, map->data.mapping.pairs.start[i].key);
        const char *k = ks_yaml_scalar(kn);
        if (!k)
            return ks_yaml_error(y, kn, err, KS_EPARSE, "in %s: a key must be a plain word", where);
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            char known[384] = "";
            size_t used = 0;
            for (const char *const *a = allowed; *a && used < sizeof known - 1; a++)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", *a);
            return ks_yaml_error(y, kn, err, KS_EPARSE, "unknown key '%s' in %s; known keys: %s", k, where, known);
        }
        for (int j = 0; j < i; j++) {
            const char *prev = ks_yaml_map_key(y, map, j);
            if (prev && strcmp(prev, k) == 0)
                return ks_yaml_error(y, kn, err, KS_EPARSE, "key '%s' appears twice in %s; keep one", k, where);
        }
    }
    return KS_OK;
}

int ks_yaml_seq_len(const yaml_node_t *seq)
{
    if (!ks_yaml_is_seq(seq))
        return 0;
    return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *ks_yaml_seq_item(ks_yaml *y, const yaml_node_t *seq, int i)
{
    if (i < 0 || i >= ks_yaml_seq_len(seq))
        return NULL;
    return yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
}

ks_status ks_yaml_expect_map(ks_yaml *y, const yaml_node_t *n, const char *what, ks_error *err)
{
    if (ks_yaml_is_map(n))
        return KS_OK;
    return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a mapping of 'key: value' lines", what);
}

ks_status ks_yaml_expect_seq(ks_yaml *y, const yaml_node_t *n, const char *what, ks_error *err)
{
    if (ks_yaml_is_seq(n))
        return KS_OK;
    return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a list (lines starting with '- ')", what);
}

ks_status ks_yaml_get_string(ks_yaml *y, const yaml_node_t *n, const char *what, char *buf, size_t size,
                             ks_error *err)
{
    const char *s = ks_yaml_scalar(n);
    if (!s)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a single value, not a list or mapping", what);
    size_t len = n->data.scalar.length;
    if (len >= size)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' is %zu characters long; at most %zu are allowed", what,
                             len, size - 1);
    if (strlen(s) != len)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' contains a NUL character", what);
    memcpy(buf, s, len + 1);
    return KS_OK;
}

ks_status ks_yaml_get_int(ks_yaml *y, const yaml_node_t *n, const char *what, long long min, long long max,
                          long long *out, ks_error *err)
{
    const char *s = ks_yaml_scalar(n);
    if (!s)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a whole number", what);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a whole number, got '%s'", what, s);
    if (v < min || v > max)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' is %lld; it must be between %lld and %lld", what, v, min,
                             max);
    *out = v;
    return KS_OK;
}

ks_status ks_yaml_get_double(ks_yaml *y, const yaml_node_t *n, const char *what, double min, double max,
                             double *out, ks_error *err)
{
    const char *s = ks_yaml_scalar(n);
    if (!s)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a number", what);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno || !isfinite(v))
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be a number, got '%s'", what, s);
    if (v < min || v > max)
        return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' is %g; it must be between %g and %g", what, v, min, max);
    *out = v;
    return KS_OK;
}

ks_status ks_yaml_get_bool(ks_yaml *y, const yaml_node_t *n, const char *what, bool *out, ks_error *err)
{
    const char *s = ks_yaml_scalar(n);
    if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))) {
        *out = true;
        return KS_OK;
    }
    if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))) {
        *out = false;
        return KS_OK;
    }
    return ks_yaml_error(y, n, err, KS_EPARSE, "'%s' must be true or false, got '%s'", what, s ? s : "a list");
}
