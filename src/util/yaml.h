/* util/yaml.h: a thin, strict reader over libyaml's document API for the files people write
 * (rig, board, simulation). Every error names FILE:LINE, the key, what was expected and the fix.
 * Internal to the library. */
#ifndef KS_UTIL_YAML_H
#define KS_UTIL_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "kinsync/error.h"

typedef struct ks_yaml {
    yaml_document_t doc;
    bool loaded;
    char name[256];   /* file name used in messages */
} ks_yaml;

/* Loads the first document. An empty file gives a root of NULL (not an error). Multi-document
 * files, aliases beyond the limit and files over 4 MiB are refused. */
ks_status ks_yaml_load_file(const char *path, ks_yaml *y, ks_error *err);
ks_status ks_yaml_load_string(const char *text, size_t len, const char *name, ks_yaml *y, ks_error *err);
void ks_yaml_free(ks_yaml *y);

yaml_node_t *ks_yaml_root(ks_yaml *y);
int ks_yaml_line(const yaml_node_t *n);                 /* 1-based */
bool ks_yaml_is_map(const yaml_node_t *n);
bool ks_yaml_is_seq(const yaml_node_t *n);
bool ks_yaml_is_scalar(const yaml_node_t *n);
const char *ks_yaml_scalar(const yaml_node_t *n);      /* NUL-terminated value, NULL if not a scalar */

/* Mapping access. Keys must be scalars. */
int ks_yaml_map_size(const yaml_node_t *map);
const char *ks_yaml_map_key(ks_yaml *y, const yaml_node_t *map, int i);
yaml_node_t *ks_yaml_map_value(ks_yaml *y, const yaml_node_t *map, int i);
yaml_node_t *ks_yaml_map_get(ks_yaml *y, const yaml_node_t *map, const char *key);
/* Fails naming the first key not in `allowed` (NULL-terminated), or a duplicate key. `where`
 * describes the map in messages ("device 3", "camera"). */
ks_status ks_yaml_check_keys(ks_yaml *y, const yaml_node_t *map, const char *const *allowed, const char *where,
                             ks_error *err);

/* Sequence access. */
int ks_yaml_seq_len(const yaml_node_t *seq);
yaml_node_t *ks_yaml_seq_item(ks_yaml *y, const yaml_node_t *seq, int i);

/* Typed scalars: fail with "FILE:LINE: `what` must be ..." when the node has another type. */
ks_status ks_yaml_expect_map(ks_yaml *y, const yaml_node_t *n, const char *what, ks_error *err);
ks_status ks_yaml_expect_seq(ks_yaml *y, const yaml_node_t *n, const char *what, ks_error *err);
ks_status ks_yaml_get_string(ks_yaml *y, const yaml_node_t *n, const char *what, char *buf, size_t size,
                             ks_error *err);
ks_status ks_yaml_get_int(ks_yaml *y, const yaml_node_t *n, const char *what, long long min, long long max,
                          long long *out, ks_error *err);
ks_status ks_yaml_get_double(ks_yaml *y, const yaml_node_t *n, const char *what, double min, double max,
                             double *out, ks_error *err);
ks_status ks_yaml_get_bool(ks_yaml *y, const yaml_node_t *n, const char *what, bool *out, ks_error *err);

/* Error at a node: "FILE:LINE: message". Returns code. */
ks_status ks_yaml_error(ks_yaml *y, const yaml_node_t *n, ks_error *err, ks_status code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
