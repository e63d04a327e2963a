/* column.h - Arrow column builders.
 *
 * A dbp_column accumulates the values of one result column for one batch and
 * turns them into an Arrow array (C Data interface). Strings and binaries are
 * built as views (Utf8View "vu", BinaryView "vz") so Polars takes them
 * without conversion. Appends return DBP_OK, DBP_E_NOMEM, DBP_E_MISUSE (a
 * value of the wrong kind for the column) or DBP_E_DATA (a string longer than
 * 2 GiB); on failure the builder is unchanged and can still be freed. */
#ifndef DBP_COLUMN_H
#define DBP_COLUMN_H

#include <stddef.h>
#include <stdint.h>

#include "arrow_abi.h"
#include "db_pool.h"

typedef enum dbp_type_id {
    DBP_T_NULL = 0,      /* "n"   every value NULL, type not known yet */
    DBP_T_BOOL,          /* "b"   bit-packed */
    DBP_T_INT8,          /* "c" */
    DBP_T_INT16,         /* "s" */
    DBP_T_INT32,         /* "i" */
    DBP_T_INT64,         /* "l" */
    DBP_T_UINT8,         /* "C" */
    DBP_T_FLOAT32,       /* "f" */
    DBP_T_FLOAT64,       /* "g" */
    DBP_T_DECIMAL128,    /* "d:precision,scale" */
    DBP_T_DATE32,        /* "tdD" days since epoch */
    DBP_T_TIME64_US,     /* "ttu" microseconds since midnight */
    DBP_T_TIMESTAMP_US,  /* "tsu:"    naive */
    DBP_T_TIMESTAMP_UTC, /* "tsu:UTC" */
    DBP_T_DURATION_US,   /* "tDu" */
    DBP_T_STRING,        /* "vu" Utf8View */
    DBP_T_BINARY,        /* "vz" BinaryView */
    DBP_T_UINT32,        /* "I" */
    DBP_T_LIST,          /* "+l"  int32 offsets into one child column */
    DBP_T_UINT16,        /* "S" */
    DBP_T_UINT64,        /* "L"   appended as the int64 of the same bits */
} dbp_type_id;

typedef struct dbp_type {
    dbp_type_id id;
    int precision; /* DECIMAL128 only */
    int scale;     /* DECIMAL128 only */
    /* LIST only: the element type, which is never LIST itself. Read (copied)
     * when a column takes the type; in a column's own type it points at the
     * child's type, so it stays valid as long as the column. */
    const struct dbp_type *element;
} dbp_type;

/* A growable byte buffer (plain heap alignment; Arrow only requires 8). */
typedef struct dbp_buffer {
    uint8_t *data;
    size_t size;
    size_t capacity;
} dbp_buffer;

typedef struct dbp_column {
    char *name;
    dbp_type type;
    int64_t length;
    int64_t null_count;
    dbp_buffer validity; /* bit per row; materialised lazily at the first NULL */
    dbp_buffer values;   /* fixed-width values, bits for BOOL, 16-byte views,
                          * LIST offsets (empty until the first row) */
    /* view types: variadic data buffers holding values longer than 12 bytes */
    dbp_buffer *data_buffers;
    size_t n_data_buffers;
    size_t data_buffers_capacity;
    struct dbp_column *child; /* LIST: the elements, named "item" (owned) */
} dbp_column;

/* Arrow format string of a type into buf (at least 32 bytes). */
void dbp_type_format(dbp_type type, char *buf, size_t size);
/* Bytes per value of a fixed-width type; 0 for BOOL, NULL, view types and
 * LIST. */
size_t dbp_type_width(dbp_type_id id);
/* 1 when both types are the same, LIST elements compared too. */
int dbp_type_equal(dbp_type a, dbp_type b);

/* Initialises an empty column; `name` is copied. A LIST type also creates
 * the child column; DBP_E_MISUSE if its element is missing or a LIST. */
int dbp_column_init(dbp_column *col, const char *name, dbp_type type);
/* Frees everything the column holds; safe on a zeroed or cleared column. */
void dbp_column_free(dbp_column *col);

/* Changes the type of a column that holds only NULLs so far (DBP_T_NULL
 * columns learning their type from the first value). A LIST type gets a
 * fresh child column. */
int dbp_column_set_type(dbp_column *col, dbp_type type);
/* Rewrites an INT64 column as FLOAT64 in place. Returns DBP_E_DATA if a value
 * is not exactly representable as a double (|v| > 2^53). */
int dbp_column_promote_int64_to_float64(dbp_column *col);

int dbp_column_append_null(dbp_column *col);
/* Any integer-backed type: INT8..INT64, UINT8, DATE32, TIME64, TIMESTAMP,
 * DURATION. The value is stored at the column's width (callers range-check). */
int dbp_column_append_int(dbp_column *col, int64_t v);
int dbp_column_append_double(dbp_column *col, double v); /* FLOAT32/FLOAT64 */
int dbp_column_append_bool(dbp_column *col, int v);
int dbp_column_append_decimal(dbp_column *col, __int128 v); /* unscaled */
int dbp_column_append_bytes(dbp_column *col, const void *data, size_t len); /* STRING/BINARY */

/* LIST columns: elements are appended to the child, then append_list closes
 * one list value holding every child row since the previous list value (so
 * the offset is the child's length). append_null adds a NULL list and leaves
 * the child alone. DBP_E_DATA once the child passes INT32_MAX rows. */
dbp_column *dbp_column_list_child(dbp_column *col); /* NULL unless LIST */
int dbp_column_append_list(dbp_column *col);

/* Drops the rows from `length` on (a LIST also drops the elements of those
 * rows), e.g. to take back a value that failed half-way. Never allocates;
 * long string bytes stay in the data buffers unused until the batch ends. */
int dbp_column_truncate(dbp_column *col, int64_t length);

/* DECIMAL128 columns: raises the scale to `new_scale`, multiplying every
 * value by 10^(new_scale - scale) in place. DBP_E_DATA (nothing changed) if
 * a value would need more digits than the precision or new_scale exceeds
 * the precision; DBP_E_MISUSE for a lower scale or another type. */
int dbp_column_rescale_decimal(dbp_column *col, int new_scale);

/* The same check and multiplication on `n` raw 16-byte decimals (NULL slots
 * hold 0): DBP_E_DATA when one would not fit in `precision` digits, else the
 * values are multiplied when `apply` is set. */
int dbp_decimal_rescale(void *values, int64_t n, int precision, int shift, int apply);

/* Bytes currently held by the builder (to cut batches by size). */
size_t dbp_column_memory(const dbp_column *col);

/* Moves the built values into `out` (a released-on-free ArrowArray) and
 * resets the column to empty with the same name and type; a LIST exports its
 * child as children[0]. On failure the column keeps its values and `out` is
 * untouched. */
int dbp_column_finish(dbp_column *col, struct ArrowArray *out);

/* Fills `out` with a schema for this column (format, name, nullable flag;
 * a LIST has one child schema "item" of its element type). It reads only
 * the name and the type. The caller releases it. */
int dbp_column_schema(const dbp_column *col, struct ArrowSchema *out);

#endif
