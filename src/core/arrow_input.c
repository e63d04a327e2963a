/* arrow_input.c - see arrow_input.h. */
#include "arrow_input.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

static int unsupported(const char *name, const char *format, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_DATA, 0, "0A000",
                         "column '%s' has Arrow type '%s', which cannot be written; cast it "
                         "(e.g. to a string) first",
                         name, format);
}

/* An input array that breaks the Arrow format's rules. */
static int bad_array(const dbp_arrow_reader *r, const char *what, dbp_error *err)
{
    return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "column '%s' is not valid Arrow: %s",
                         r->name, what);
}

static int64_t time_unit_ns(char unit)
{
    switch (unit) {
    case 's':
        return 1000000000;
    case 'm':
        return 1000000;
    case 'u':
        return 1000;
    case 'n':
        return 1;
    default:
        return 0;
    }
}

/* Plans reading a non-dictionary array of `format`. */
static int init_plain(dbp_arrow_reader *r, const char *format, dbp_error *err)
{
    static const struct {
        const char *format;
        arrow_reader_kind kind;
        int width;
        int binary;
    } simple[] = {
        {"n", AR_NULL, 0, 0},   {"b", AR_BOOL, 0, 0},   {"c", AR_INT, 1, 0},
        {"s", AR_INT, 2, 0},    {"i", AR_INT, 4, 0},    {"l", AR_INT, 8, 0},
        {"C", AR_UINT, 1, 0},   {"S", AR_UINT, 2, 0},   {"I", AR_UINT, 4, 0},
        {"L", AR_UINT, 8, 0},   {"f", AR_FLOAT, 4, 0},  {"g", AR_FLOAT, 8, 0},
        {"u", AR_STRING, 4, 0}, {"U", AR_STRING, 8, 0}, {"z", AR_STRING, 4, 1},
        {"Z", AR_STRING, 8, 1}, {"vu", AR_VIEW, 0, 0},  {"vz", AR_VIEW, 0, 1},
        {"tdD", AR_DATE32, 0, 0}, {"tdm", AR_DATE64, 0, 0},
    };
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++) {
        if (strcmp(format, simple[i].format) == 0) {
            r->kind = simple[i].kind;
            r->width = simple[i].width;
            r->binary = simple[i].binary;
            return DBP_OK;
        }
    }
    if (format[0] == 't' && format[1] == 't' && (r->unit_ns = time_unit_ns(format[2])) &&
        format[3] == '\0') {
        r->kind = AR_TIME;
        r->width = format[2] == 's' || format[2] == 'm' ? 4 : 8;
        return DBP_OK;
    }
    if (format[0] == 't' && format[1] == 'D' && (r->unit_ns = time_unit_ns(format[2])) &&
        format[3] == '\0') {
        r->kind = AR_DURATION;
        return DBP_OK;
    }
    if (format[0] == 't' && format[1] == 's' && (r->unit_ns = time_unit_ns(format[2])) &&
        format[3] == ':') {
        r->kind = AR_TIMESTAMP;
        r->has_tz = format[4] != '\0';
        return DBP_OK;
    }
    int precision, scale, bits = 128;
    if (sscanf(format, "d:%d,%d,%d", &precision, &scale, &bits) >= 2 && bits == 128 &&
        scale >= 0 && scale <= 38) {
        r->kind = AR_DECIMAL;
        r->scale = scale;
        return DBP_OK;
    }
    return unsupported(r->name, format, err);
}

/* The reads rely on the buffers the format's layout has: the validity
 * bitmap, then the values (offsets or views), then a string's data (a
 * view's data buffers and their sizes). Extra ones are never read. */
static int check_layout(const dbp_arrow_reader *r, dbp_error *err)
{
    const struct ArrowArray *a = r->array;
    int64_t needed = r->kind == AR_NULL                          ? 0
                     : r->kind == AR_STRING || r->kind == AR_VIEW ? 3
                                                                  : 2;
    if (a->n_buffers < needed || (needed && !a->buffers))
        return bad_array(r, "it has fewer buffers than its type's layout", err);
    /* A buffer may be NULL only where it holds no bytes: the values (offsets,
     * views) of an empty array, a view's sizes when it has no data buffer. */
    if ((needed && a->length > 0 && !a->buffers[1]) ||
        (r->kind == AR_VIEW && a->n_buffers > 3 && !a->buffers[a->n_buffers - 1]))
        return bad_array(r, "a buffer it reads is NULL", err);
    if (a->offset < 0 || a->length < 0) /* a dictionary's too */
        return bad_array(r, "it has a negative offset or length", err);
    return DBP_OK;
}

int dbp_arrow_reader_init(dbp_arrow_reader *r, const struct ArrowSchema *schema,
                          const struct ArrowArray *array, dbp_error *err)
{
    memset(r, 0, sizeof *r);
    r->array = array;
    r->name = schema->name ? schema->name : "?";
    int rc = init_plain(r, schema->format, err);
    if (rc == DBP_OK)
        rc = check_layout(r, err);
    if (rc != DBP_OK || !schema->dictionary)
        return rc;
    /* Categorical / enum columns: integer indices into a dictionary of
     * plain values (values encoded again, or naming themselves, are not). */
    if (r->kind != AR_INT && r->kind != AR_UINT)
        return unsupported(r->name, schema->format, err);
    if (schema->dictionary->dictionary)
        return unsupported(r->name, "dictionary of a dictionary", err);
    if (!array->dictionary)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                             "column '%s' is dictionary-encoded but has no dictionary", r->name);
    r->values = dbp_calloc(1, sizeof *r->values);
    if (!r->values)
        return dbp_error_nomem(err);
    rc = dbp_arrow_reader_init(r->values, schema->dictionary, array->dictionary, err);
    r->values->name = r->name;
    if (rc == DBP_OK) {
        r->index_signed = r->kind == AR_INT;
        r->kind = AR_DICTIONARY;
    }
    return rc;
}

void dbp_arrow_reader_free(dbp_arrow_reader *r)
{
    if (!r)
        return;
    if (r->values) {
        dbp_arrow_reader_free(r->values);
        dbp_free(r->values);
    }
    r->values = NULL;
}

static int is_null(const struct ArrowArray *a, int64_t i)
{
    const uint8_t *validity = a->buffers[0];
    return a->null_count != 0 && validity && !((validity[i >> 3] >> (i & 7)) & 1);
}

static int64_t read_int(const void *buf, int width, int is_signed, int64_t i, uint64_t *u)
{
    const uint8_t *p = (const uint8_t *)buf + i * width;
    switch (width) {
    case 1:
        *u = p[0];
        return is_signed ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        *u = v;
        return is_signed ? (int64_t)(int16_t)v : (int64_t)v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        *u = v;
        return is_signed ? (int64_t)(int32_t)v : (int64_t)v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        *u = v;
        return (int64_t)v;
    }
    }
}

/* Exact decimal text of an unscaled 128-bit value. */
static void decimal_text(__int128 v, int scale, dbp_cell *out)
{
    char digits[48];
    int n = 0, negative = v < 0;
    unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (n <= scale)
        digits[n++] = '0';
    size_t k = 0;
    if (negative)
        out->text[k++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        out->text[k++] = digits[i];
        if (i == scale && scale > 0)
            out->text[k++] = '.';
    }
    out->data = out->text;
    out->len = k;
}

int dbp_arrow_reader_get(const dbp_arrow_reader *r, int64_t row, dbp_cell *out, dbp_error *err)
{
    const struct ArrowArray *a = r->array;
    int64_t i = a->offset + row;
    memset(out, 0, offsetof(dbp_cell, text));
    if (r->kind == AR_NULL || is_null(a, i)) {
        out->kind = DBP_V_NULL;
        return DBP_OK;
    }
    uint64_t u;
    switch (r->kind) {
    case AR_BOOL: {
        const uint8_t *bits = a->buffers[1];
        out->kind = DBP_V_BOOL;
        out->i = (bits[i >> 3] >> (i & 7)) & 1;
        return DBP_OK;
    }
    case AR_INT:
        out->kind = DBP_V_INT64;
        out->i = read_int(a->buffers[1], r->width, 1, i, &u);
        return DBP_OK;
    case AR_UINT:
        out->kind = DBP_V_INT64;
        out->i = read_int(a->buffers[1], r->width, 0, i, &u);
        if (u > INT64_MAX)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "column '%s' row %lld: %llu does not fit a 64-bit signed integer",
                                 r->name, (long long)row, (unsigned long long)u);
        return DBP_OK;
    case AR_FLOAT:
        out->kind = DBP_V_DOUBLE;
        if (r->width == 4) {
            float f;
            memcpy(&f, (const char *)a->buffers[1] + i * 4, 4);
            out->d = f;
        } else {
            memcpy(&out->d, (const char *)a->buffers[1] + i * 8, 8);
        }
        return DBP_OK;
    case AR_DECIMAL: {
        __int128 v;
        memcpy(&v, (const char *)a->buffers[1] + i * 16, 16);
        out->kind = DBP_V_DECIMAL;
        decimal_text(v, r->scale, out);
        return DBP_OK;
    }
    case AR_STRING: {
        /* The last offset is the data buffer's size: an earlier one past it
         * (the offsets going backwards later on) would read outside it. */
        int64_t start, end, last, n = a->offset + a->length;
        if (r->width == 4) {
            const int32_t *offsets = a->buffers[1];
            start = offsets[i];
            end = offsets[i + 1];
            last = offsets[n];
        } else {
            const int64_t *offsets = a->buffers[1];
            start = offsets[i];
            end = offsets[i + 1];
            last = offsets[n];
        }
        if (start < 0 || end < start || end > last)
            return bad_array(r, "its offsets go backwards", err);
        const char *data = a->buffers[2]; /* NULL when every value is empty */
        if (!data && end > start)
            return bad_array(r, "a buffer it reads is NULL", err);
        out->kind = r->binary ? DBP_V_BLOB : DBP_V_TEXT;
        out->data = data ? data + start : "";
        out->len = (size_t)(end - start);
        return DBP_OK;
    }
    case AR_VIEW: {
        const uint8_t *view = (const uint8_t *)a->buffers[1] + i * 16;
        int32_t len, buffer, offset;
        memcpy(&len, view, 4);
        if (len < 0)
            return bad_array(r, "a string view has a negative length", err);
        out->kind = r->binary ? DBP_V_BLOB : DBP_V_TEXT;
        out->len = (size_t)len;
        if (len <= 12) {
            out->data = (const char *)view + 4;
            return DBP_OK;
        }
        memcpy(&buffer, view + 8, 4);
        memcpy(&offset, view + 12, 4);
        /* buffers: validity, views, the data buffers, then their sizes */
        if (buffer < 0 || buffer >= a->n_buffers - 3)
            return bad_array(r, "a string view names a missing buffer", err);
        int64_t size;
        memcpy(&size, (const char *)a->buffers[a->n_buffers - 1] + (size_t)buffer * 8, 8);
        if (offset < 0 || (int64_t)offset + len > size)
            return bad_array(r, "a string view points outside its buffer", err);
        if (!a->buffers[2 + buffer])
            return bad_array(r, "a buffer it reads is NULL", err);
        out->data = (const char *)a->buffers[2 + buffer] + offset;
        return DBP_OK;
    }
    case AR_DATE32: {
        int32_t days;
        memcpy(&days, (const char *)a->buffers[1] + i * 4, 4);
        out->kind = DBP_V_DATE;
        out->i = days;
        return DBP_OK;
    }
    case AR_DATE64: {
        int64_t ms;
        memcpy(&ms, (const char *)a->buffers[1] + i * 8, 8);
        if (ms % 86400000 != 0) /* a date64 is whole days; a time of day would be lost */
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "column '%s' row %lld: a date64 value with a time of day",
                                 r->name, (long long)row);
        out->kind = DBP_V_DATE;
        out->i = ms / 86400000;
        return DBP_OK;
    }
    case AR_TIME:
    case AR_TIMESTAMP:
    case AR_DURATION: {
        int64_t ticks = r->kind == AR_TIME ? read_int(a->buffers[1], r->width, 1, i, &u)
                                           : read_int(a->buffers[1], 8, 1, i, &u);
        if (r->unit_ns == 1 && ticks % 1000 != 0)
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "column '%s' row %lld has nanoseconds, which would be lost; "
                                 "round it to microseconds first",
                                 r->name, (long long)row);
        int64_t us = ticks / 1000;
        if (r->unit_ns > 1 && __builtin_mul_overflow(ticks, r->unit_ns / 1000, &us))
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "column '%s' row %lld: the value is out of range in microseconds",
                                 r->name, (long long)row);
        if (r->kind == AR_TIME && (us < 0 || us >= (int64_t)86400 * 1000000))
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "column '%s' row %lld: a time of day outside 00:00 to 24:00",
                                 r->name, (long long)row);
        out->kind = r->kind == AR_TIME       ? DBP_V_TIME
                    : r->kind == AR_DURATION ? DBP_V_INTERVAL
                    : r->has_tz              ? DBP_V_TIMESTAMP_TZ
                                             : DBP_V_TIMESTAMP;
        out->i = us;
        return DBP_OK;
    }
    case AR_DICTIONARY: {
        int64_t index = read_int(a->buffers[1], r->width, r->index_signed, i, &u);
        if (index < 0 || index >= r->values->array->length)
            return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                 "column '%s': dictionary index out of range", r->name);
        return dbp_arrow_reader_get(r->values, index, out, err);
    }
    default:
        return unsupported(r->name, "?", err);
    }
}

/* The kind of value a column of this type gives (DBP_V_NULL: nulls only,
 * or a type the reader refuses, which the walk reports when it reads). */
static dbp_value_kind column_kind(const struct ArrowSchema *schema)
{
    if (schema->dictionary) /* one level: the reader refuses more */
        schema = schema->dictionary;
    dbp_arrow_reader r = {.name = ""};
    if (init_plain(&r, schema->format, NULL) != DBP_OK)
        return DBP_V_NULL;
    switch (r.kind) {
    case AR_BOOL:
        return DBP_V_BOOL;
    case AR_INT:
    case AR_UINT:
        return DBP_V_INT64;
    case AR_FLOAT:
        return DBP_V_DOUBLE;
    case AR_DECIMAL:
        return DBP_V_DECIMAL;
    case AR_STRING:
    case AR_VIEW:
        return r.binary ? DBP_V_BLOB : DBP_V_TEXT;
    case AR_DATE32:
    case AR_DATE64:
        return DBP_V_DATE;
    case AR_TIME:
        return DBP_V_TIME;
    case AR_TIMESTAMP:
        return r.has_tz ? DBP_V_TIMESTAMP_TZ : DBP_V_TIMESTAMP;
    case AR_DURATION:
        return DBP_V_INTERVAL;
    default:
        return DBP_V_NULL;
    }
}

static int stream_error(struct ArrowArrayStream *in, int code, dbp_error *err)
{
    const char *why = in->get_last_error ? in->get_last_error(in) : NULL;
    return dbp_error_set(err, DBP_E_DATA, code, NULL, "reading the frame failed: %s",
                         why ? why : "no reason given");
}

struct dbp_arrow_rows {
    struct ArrowArrayStream *in;
    struct ArrowSchema schema;
    size_t n;
    const char **names;
    dbp_value_kind *kinds;
    struct ArrowArray batch;  /* the batch being read; release NULL when none */
    dbp_arrow_reader *readers;
    size_t ready;             /* readers initialised for this batch */
    int64_t row;              /* the next row of the batch */
    dbp_cell *cells;
};

static void drop_batch(dbp_arrow_rows *r)
{
    for (size_t c = 0; c < r->ready; c++)
        dbp_arrow_reader_free(&r->readers[c]);
    r->ready = 0;
    if (r->batch.release)
        r->batch.release(&r->batch);
    memset(&r->batch, 0, sizeof r->batch);
}

/* Takes the stream's next struct batch and prepares a reader per column;
 * *end = 1 when there is none. */
static int next_batch(dbp_arrow_rows *r, int *end, dbp_error *err)
{
    drop_batch(r);
    int code = r->in->get_next(r->in, &r->batch);
    if (code != 0)
        return stream_error(r->in, code, err);
    *end = r->batch.release == NULL;
    if (*end)
        return DBP_OK;
    const struct ArrowArray *b = &r->batch;
    r->row = 0;
    if (b->n_children != r->schema.n_children)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                             "a batch has %lld columns, its schema %zu",
                             (long long)b->n_children, r->n);
    if (b->offset < 0 || b->length < 0 || b->offset > INT64_MAX - b->length)
        return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                             "a batch has offset %lld and length %lld (not valid Arrow)",
                             (long long)b->offset, (long long)b->length);
    while (r->ready < r->n) {
        const struct ArrowArray *col = b->children[r->ready];
        if (!col || col->length < b->offset + b->length)
            return dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL,
                                 "column %zu is shorter than its batch (not valid Arrow)",
                                 r->ready + 1);
        int rc = dbp_arrow_reader_init(&r->readers[r->ready], r->schema.children[r->ready], col,
                                       err);
        r->ready++; /* a reader that failed half-way is freed with the others */
        if (rc != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

int dbp_arrow_rows_open(struct ArrowArrayStream *in, dbp_arrow_rows **out, dbp_error *err)
{
    dbp_arrow_rows *r = dbp_calloc(1, sizeof *r);
    if (!(*out = r))
        return dbp_error_nomem(err);
    r->in = in;
    int code = in->get_schema(in, &r->schema);
    if (code != 0)
        return stream_error(in, code, err);
    if (strcmp(r->schema.format, "+s") != 0 || r->schema.n_children == 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "write_frame takes a table of columns (a DataFrame)");
    r->n = (size_t)r->schema.n_children;
    r->names = dbp_calloc(r->n, sizeof *r->names);
    r->kinds = dbp_calloc(r->n, sizeof *r->kinds);
    r->readers = dbp_calloc(r->n, sizeof *r->readers);
    r->cells = dbp_calloc(r->n, sizeof *r->cells);
    if (!r->names || !r->kinds || !r->readers || !r->cells)
        return dbp_error_nomem(err);
    for (size_t c = 0; c < r->n; c++) {
        r->names[c] = r->schema.children[c]->name ? r->schema.children[c]->name : "";
        r->kinds[c] = column_kind(r->schema.children[c]);
    }
    return DBP_OK;
}

size_t dbp_arrow_rows_width(const dbp_arrow_rows *r)
{
    return r->n;
}

const char *const *dbp_arrow_rows_names(const dbp_arrow_rows *r)
{
    return r->names;
}

const dbp_value_kind *dbp_arrow_rows_kinds(const dbp_arrow_rows *r)
{
    return r->kinds;
}

int dbp_arrow_rows_next(dbp_arrow_rows *r, const dbp_cell **cells, dbp_error *err)
{
    while (!r->batch.release || r->row >= r->batch.length) {
        int end = 0, rc = next_batch(r, &end, err);
        if (rc != DBP_OK)
            return -rc;
        if (end)
            return 0;
    }
    for (size_t c = 0; c < r->n; c++) {
        int rc = dbp_arrow_reader_get(&r->readers[c], r->batch.offset + r->row, &r->cells[c], err);
        if (rc != DBP_OK)
            return -rc;
    }
    r->row++;
    *cells = r->cells;
    return 1;
}

void dbp_arrow_rows_close(dbp_arrow_rows *r)
{
    if (!r)
        return;
    drop_batch(r);
    if (r->schema.release)
        r->schema.release(&r->schema);
    dbp_free(r->names);
    dbp_free(r->kinds);
    dbp_free(r->readers);
    dbp_free(r->cells);
    dbp_free(r);
}

int dbp_arrow_walk(struct ArrowArrayStream *in, const dbp_frame_sink *sink,
                   const atomic_int *cancelled, int64_t *rows, dbp_error *err)
{
    *rows = 0;
    dbp_arrow_rows *r;
    int rc = dbp_arrow_rows_open(in, &r, err);
    if (rc == DBP_OK)
        rc = sink->columns(sink->arg, r->n, r->names, r->kinds, err);
    while (rc == DBP_OK) {
        if ((*rows & 1023) == 1023 && cancelled && atomic_load(cancelled)) {
            rc = dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "cancelled");
            break;
        }
        const dbp_cell *cells;
        int got = dbp_arrow_rows_next(r, &cells, err);
        if (got <= 0) {
            rc = -got;
            break;
        }
        rc = sink->row(sink->arg, cells, r->n, err);
        if (rc == DBP_OK)
            (*rows)++;
    }
    dbp_arrow_rows_close(r);
    return rc;
}
