/* pg_types.h - PostgreSQL binary wire format -> Arrow builders.
 *
 * The pg driver plans each result column once from its type OID and typmod
 * (as the server describes the statement), then decodes every value of that
 * column from PostgreSQL's binary format (the same bytes in the extended
 * query protocol and in COPY ... (FORMAT binary)). Decoders never trust the
 * input: every length is checked, and malformed bytes give DBP_E_PROTOCOL,
 * values Arrow cannot hold exactly give DBP_E_DATA; neither crashes. */
#ifndef DBP_PG_TYPES_H
#define DBP_PG_TYPES_H

#include <stdint.h>

#include "column.h"
#include "db_pool.h"

typedef enum pg_decoder {
    PGD_RAW = 0, /* no decoder: the binary bytes as Binary */
    PGD_BOOL,
    PGD_INT2,
    PGD_INT4,
    PGD_INT8,
    PGD_OID,
    PGD_FLOAT4,
    PGD_FLOAT8,
    PGD_NUMERIC,
    PGD_TEXT,    /* text, varchar, bpchar, name, json, xml, citext, enums: UTF-8 bytes */
    PGD_JSONB,   /* version byte 1, then text */
    PGD_CHAR,    /* "char": one byte, as PostgreSQL prints it (\ooo above 127) */
    PGD_BYTEA,
    PGD_DATE,
    PGD_TIME,
    PGD_TIMETZ,
    PGD_TIMESTAMP,
    PGD_TIMESTAMPTZ,
    PGD_INTERVAL,
    PGD_UUID,
    PGD_INET,    /* inet and cidr */
    PGD_MACADDR,
    PGD_MACADDR8,
    PGD_MONEY,
    PGD_ARRAY,
} pg_decoder;

typedef struct pg_column_plan {
    uint32_t oid;
    int32_t typmod;
    pg_decoder decoder;
    /* The Arrow type it builds: give it to dbp_column_init/set_type. For an
     * unconstrained numeric (typmod < 0) it is Decimal128(38, 0) and the
     * decoder raises the column's scale as values need it (the column's type
     * then differs from this one in scale only). For PGD_ARRAY it is a LIST
     * whose element points into `element`. */
    dbp_type type;
    struct pg_column_plan *element;  /* PGD_ARRAY: the element's plan (owned) */
} pg_column_plan;

/* Plans a column. `is_text_like` is 1 when the driver learned from the
 * catalog that an OID unknown here is an enum (its binary form is its label)
 * or a domain/text type; unknown OIDs otherwise get PGD_RAW. Array OIDs of
 * the built-in types are known; the element gets the same typmod (as in
 * PostgreSQL, where an array column's typmod is its element's). Fills `out`
 * (zeroed on failure); free with pg_plan_free. DBP_E_DATA for types Arrow
 * cannot hold (numeric precision above 38), DBP_E_NOMEM. */
int pg_plan_column(uint32_t oid, int32_t typmod, int is_text_like, pg_column_plan *out,
                   dbp_error *err);
/* Plans an array column whose array OID is not built in (e.g. an enum's
 * array, from pg_type.typelem): `element_oid` is planned as pg_plan_column
 * would with `element_is_text_like`. DBP_E_MISUSE when the element is itself
 * an array. */
int pg_plan_array_column(uint32_t array_oid, uint32_t element_oid, int32_t typmod,
                         int element_is_text_like, pg_column_plan *out, dbp_error *err);
void pg_plan_free(pg_column_plan *plan);

/* OID of the element type for a known array type OID, 0 if not an array. */
uint32_t pg_array_element_oid(uint32_t array_oid);

/* Appends one value: `len` < 0 means NULL. `column` names the column in
 * error messages. `out` must have the plan's type (DBP_E_MISUSE otherwise).
 * Returns DBP_OK; DBP_E_PROTOCOL for malformed bytes; DBP_E_DATA for values
 * Arrow cannot hold exactly (NaN numerics, infinite dates, intervals with
 * months, multi-dimensional arrays, invalid UTF-8, ...), with a message
 * naming the column and suggesting a cast; DBP_E_NOMEM. On failure `out`
 * holds the same values as before (its decimal scale may have grown). */
int pg_decode_value(const pg_column_plan *plan, const char *data, int32_t len, dbp_column *out,
                    const char *column, dbp_error *err);

#endif
