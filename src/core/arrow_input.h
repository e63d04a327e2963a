/* arrow_input.h - reading values out of Arrow arrays someone else built
 * (a Polars DataFrame handed to write_frame), one cell at a time, for the
 * drivers' bulk loaders. Every format is checked once at init; reads never
 * go past the buffers the array declares. */
#ifndef DBP_ARROW_INPUT_H
#define DBP_ARROW_INPUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arrow_abi.h"
#include "db_pool.h"
#include "params.h"

typedef enum arrow_reader_kind {
    AR_NULL,
    AR_BOOL,
    AR_INT,    /* signed, `width` bytes */
    AR_UINT,   /* unsigned, `width` bytes */
    AR_FLOAT,  /* 4 or 8 bytes */
    AR_DECIMAL,
    AR_STRING, /* 32- or 64-bit offsets */
    AR_VIEW,   /* Utf8View / BinaryView */
    AR_DATE32,
    AR_DATE64,
    AR_TIME,   /* `unit_ns` nanoseconds per tick */
    AR_TIMESTAMP,
    AR_DURATION,  /* microseconds out, as DBP_V_INTERVAL */
    AR_DICTIONARY,
} arrow_reader_kind;

typedef struct dbp_arrow_reader {
    arrow_reader_kind kind;
    const struct ArrowArray *array;
    int width;          /* bytes per value (ints, floats) */
    int binary;         /* bytes rather than UTF-8 text */
    int64_t unit_ns;    /* TIME, TIMESTAMP */
    int has_tz;         /* TIMESTAMP with a time zone: UTC instants */
    int scale;          /* DECIMAL */
    int index_signed;   /* DICTIONARY: signed index type */
    struct dbp_arrow_reader *values; /* DICTIONARY: the dictionary's reader (owned) */
    const char *name;   /* the field name, for messages */
} dbp_arrow_reader;

/* Prepares to read `array` whose type `schema` describes. Unsupported
 * formats (lists, structs, ...) fail with DBP_E_DATA naming the
 * field. Free with dbp_arrow_reader_free. */
int dbp_arrow_reader_init(dbp_arrow_reader *r, const struct ArrowSchema *schema,
                          const struct ArrowArray *array, dbp_error *err);
void dbp_arrow_reader_free(dbp_arrow_reader *r);

/* Reads row `row` (0 <= row < array->length). A value with no exact form
 * (a nanosecond timestamp with a sub-microsecond part, a uint64 above
 * INT64_MAX) is DBP_E_DATA. */
int dbp_arrow_reader_get(const dbp_arrow_reader *r, int64_t row, dbp_cell *out, dbp_error *err);

/* The rows of a frame pulled one at a time (for a loader that sends rows
 * as its engine asks for them). open reads the schema (a struct of
 * columns); next gives the next row's cells, valid until the next call:
 * 1, or 0 at the end, or minus a dbp_category with `err` filled. Close
 * whatever open gave, even on failure; the stream stays the caller's. */
typedef struct dbp_arrow_rows dbp_arrow_rows;
int dbp_arrow_rows_open(struct ArrowArrayStream *in, dbp_arrow_rows **out, dbp_error *err);
size_t dbp_arrow_rows_width(const dbp_arrow_rows *r);
const char *const *dbp_arrow_rows_names(const dbp_arrow_rows *r);
const dbp_value_kind *dbp_arrow_rows_kinds(const dbp_arrow_rows *r);
int dbp_arrow_rows_next(dbp_arrow_rows *r, const dbp_cell **cells, dbp_error *err);
void dbp_arrow_rows_close(dbp_arrow_rows *r);

/* What a bulk loader does with a frame: learn its columns once, then take
 * each row's cells. A callback's error stops the walk. The column names
 * stay valid until the walk ends. */
typedef struct dbp_frame_sink {
    /* `kinds`: the kind of every non-NULL cell each column will give
     * (DBP_V_NULL for a column of nulls or of a type that cannot be read). */
    int (*columns)(void *arg, size_t n, const char *const *names, const dbp_value_kind *kinds,
                   dbp_error *err);
    int (*row)(void *arg, const dbp_cell *cells, size_t n, dbp_error *err);
    void *arg;
} dbp_frame_sink;

/* Feeds every row of `in` (struct batches) to `sink`, checking `cancelled`
 * every 1024 rows; *rows counts the rows fed. The stream stays the
 * caller's. */
int dbp_arrow_walk(struct ArrowArrayStream *in, const dbp_frame_sink *sink,
                   const atomic_int *cancelled, int64_t *rows, dbp_error *err);

#endif
