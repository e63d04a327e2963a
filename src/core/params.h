/* params.h - read access to a dbp_params list for drivers. */
#ifndef DBP_PARAMS_H
#define DBP_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "db_pool.h"

typedef struct dbp_value {
    dbp_value_kind kind;
    int64_t i;     /* BOOL, INT64, temporal kinds; ARRAY: the element kind */
    double d;      /* DOUBLE */
    size_t offset; /* TEXT, BLOB, DECIMAL: bytes in the params' arena */
    size_t length;
    size_t name_offset; /* name in the arena, valid when has_name */
    int has_name;
} dbp_value;

/* A value with its bytes in place: what drivers bind, whether it came from
 * parameters or from a frame (arrow_input.h). */
typedef struct dbp_cell {
    dbp_value_kind kind;
    int64_t i;        /* BOOL, INT64, DATE (days), TIME (us), TIMESTAMP[_TZ] (us),
                         INTERVAL (us); ARRAY: the element kind */
    double d;         /* DOUBLE */
    const char *data; /* kinds with bytes (below): not NUL-terminated */
    size_t len;
    char text[48];    /* backing store for a frame's DECIMAL digits */
} dbp_cell;

/* Whether values of `kind` carry bytes (text, blob, decimal digits, ...). */
int dbp_value_kind_has_bytes(dbp_value_kind kind);

/* For messages of engines without a type for `kind`: what the value is
 * ("a duration (timedelta)") and what to pass instead. */
const char *dbp_value_kind_name(dbp_value_kind kind);
const char *dbp_value_kind_hint(dbp_value_kind kind);

/* The cell of a parameter value (its bytes stay in the params' arena). */
void dbp_params_cell(const dbp_params *p, const dbp_value *v, dbp_cell *out);

/* Rows of values: 1 when dbp_params_end_row was never called (and there are
 * values), else the number of ended rows. */
size_t dbp_params_rows(const dbp_params *p);
/* Values per row. */
size_t dbp_params_width(const dbp_params *p);
const dbp_value *dbp_params_get(const dbp_params *p, size_t row, size_t i);
/* The bytes of a TEXT, BLOB or DECIMAL value (not NUL-terminated). */
const char *dbp_params_bytes(const dbp_params *p, const dbp_value *v);
/* The value's name without prefix, NUL-terminated, or NULL if positional. */
const char *dbp_params_name(const dbp_params *p, const dbp_value *v);

#endif
