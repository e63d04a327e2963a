/* column.c - Arrow column builders (see column.h).
 *
 * Every append first reserves all the room it needs (validity, values,
 * variadic data) and only then writes, so an allocation failure leaves the
 * logical content of the builder exactly as it was. */
#include "column.h"

#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#define VIEW_SIZE 16
#define VIEW_INLINE_MAX 12
#define VIEW_PREFIX_SIZE 4
/* Long string values are packed into data buffers of at most this size. */
#define DATA_BUFFER_LIMIT ((size_t)8 << 20)
#define DATA_BUFFER_INITIAL ((size_t)4096)
#define BUFFER_INITIAL ((size_t)64)

/* Stands in for buffers of zero length: consumers may dereference buffer
 * pointers, so an empty array still gets a valid, aligned address. */
static alignas(64) const uint8_t empty_buffer[64];

/* ---- types ----------------------------------------------------------------- */

void dbp_type_format(dbp_type type, char *buf, size_t size)
{
    const char *format = "n";
    switch (type.id) {
    case DBP_T_NULL: format = "n"; break;
    case DBP_T_BOOL: format = "b"; break;
    case DBP_T_INT8: format = "c"; break;
    case DBP_T_INT16: format = "s"; break;
    case DBP_T_INT32: format = "i"; break;
    case DBP_T_INT64: format = "l"; break;
    case DBP_T_UINT8: format = "C"; break;
    case DBP_T_FLOAT32: format = "f"; break;
    case DBP_T_FLOAT64: format = "g"; break;
    case DBP_T_DECIMAL128:
        snprintf(buf, size, "d:%d,%d", type.precision, type.scale);
        return;
    case DBP_T_DATE32: format = "tdD"; break;
    case DBP_T_TIME64_US: format = "ttu"; break;
    case DBP_T_TIMESTAMP_US: format = "tsu:"; break;
    case DBP_T_TIMESTAMP_UTC: format = "tsu:UTC"; break;
    case DBP_T_DURATION_US: format = "tDu"; break;
    case DBP_T_STRING: format = "vu"; break;
    case DBP_T_BINARY: format = "vz"; break;
    }
    snprintf(buf, size, "%s", format);
}

size_t dbp_type_width(dbp_type_id id)
{
    switch (id) {
    case DBP_T_INT8:
    case DBP_T_UINT8:
        return 1;
    case DBP_T_INT16:
        return 2;
    case DBP_T_INT32:
    case DBP_T_FLOAT32:
    case DBP_T_DATE32:
        return 4;
    case DBP_T_INT64:
    case DBP_T_FLOAT64:
    case DBP_T_TIME64_US:
    case DBP_T_TIMESTAMP_US:
    case DBP_T_TIMESTAMP_UTC:
    case DBP_T_DURATION_US:
        return 8;
    case DBP_T_DECIMAL128:
        return 16;
    case DBP_T_NULL:
    case DBP_T_BOOL:
    case DBP_T_STRING:
    case DBP_T_BINARY:
        return 0;
    }
    return 0;
}

static int is_view_type(dbp_type_id id)
{
    return id == DBP_T_STRING || id == DBP_T_BINARY;
}

static int is_integer_backed(dbp_type_id id)
{
    switch (id) {
    case DBP_T_INT8:
    case DBP_T_INT16:
    case DBP_T_INT32:
    case DBP_T_INT64:
    case DBP_T_UINT8:
    case DBP_T_DATE32:
    case DBP_T_TIME64_US:
    case DBP_T_TIMESTAMP_US:
    case DBP_T_TIMESTAMP_UTC:
    case DBP_T_DURATION_US:
        return 1;
    default:
        return 0;
    }
}

/* ---- growable buffers ------------------------------------------------------- */

static void buffer_free(dbp_buffer *buf)
{
    dbp_free(buf->data);
    buf->data = NULL;
    buf->size = 0;
    buf->capacity = 0;
}

/* Makes room for `extra` more bytes, growing geometrically up to `limit`
 * (or to exactly what is needed when that is more). Contents are kept. */
static int buffer_reserve_limited(dbp_buffer *buf, size_t extra, size_t initial, size_t limit)
{
    if (extra > SIZE_MAX - buf->size)
        return DBP_E_NOMEM;
    size_t needed = buf->size + extra;
    if (needed <= buf->capacity)
        return DBP_OK;
    size_t capacity = buf->capacity ? buf->capacity : initial;
    while (capacity < needed && capacity <= SIZE_MAX / 2)
        capacity *= 2;
    if (capacity > limit)
        capacity = limit;
    if (capacity < needed)
        capacity = needed;
    uint8_t *data = dbp_realloc(buf->data, capacity);
    if (!data)
        return DBP_E_NOMEM;
    buf->data = data;
    buf->capacity = capacity;
    return DBP_OK;
}

static int buffer_reserve(dbp_buffer *buf, size_t extra)
{
    return buffer_reserve_limited(buf, extra, BUFFER_INITIAL, SIZE_MAX);
}

static size_t bitmap_bytes(int64_t n_bits)
{
    return (size_t)((n_bits + 7) / 8);
}

/* Room for bit number `n_bits - 1`; the buffer's size counts bytes in use. */
static int bitmap_reserve(dbp_buffer *buf, int64_t n_bits)
{
    size_t needed = bitmap_bytes(n_bits);
    return needed > buf->size ? buffer_reserve(buf, needed - buf->size) : DBP_OK;
}

/* Sets bit `i` (LSB order); the room must have been reserved. */
static void bitmap_set(dbp_buffer *buf, int64_t i, int value)
{
    size_t byte = (size_t)(i / 8);
    if (byte >= buf->size) {
        buf->data[byte] = 0;
        buf->size = byte + 1;
    }
    uint8_t mask = (uint8_t)(1u << (i % 8));
    if (value)
        buf->data[byte] |= mask;
    else
        buf->data[byte] &= (uint8_t)~mask;
}

/* ---- lifetime ---------------------------------------------------------------- */

int dbp_column_init(dbp_column *col, const char *name, dbp_type type)
{
    memset(col, 0, sizeof *col);
    col->name = dbp_strdup(name ? name : "");
    if (!col->name)
        return DBP_E_NOMEM;
    col->type = type;
    return DBP_OK;
}

static void free_data_buffers(dbp_buffer *buffers, size_t count)
{
    for (size_t i = 0; i < count; i++)
        buffer_free(&buffers[i]);
    dbp_free(buffers);
}

/* Drops the values, keeping name and type. */
static void column_clear_values(dbp_column *col)
{
    buffer_free(&col->validity);
    buffer_free(&col->values);
    free_data_buffers(col->data_buffers, col->n_data_buffers);
    col->data_buffers = NULL;
    col->n_data_buffers = 0;
    col->data_buffers_capacity = 0;
    col->length = 0;
    col->null_count = 0;
}

void dbp_column_free(dbp_column *col)
{
    if (!col)
        return;
    column_clear_values(col);
    dbp_free(col->name);
    memset(col, 0, sizeof *col);
}

/* ---- type changes ---------------------------------------------------------- */

/* Bytes the values buffer needs for `rows` rows of `type`, 0 when it has no
 * values buffer. Sets *overflow when that does not fit in size_t. */
static size_t values_bytes(dbp_type_id id, int64_t rows, int *overflow)
{
    size_t width = is_view_type(id) ? VIEW_SIZE : dbp_type_width(id);
    *overflow = 0;
    if (id == DBP_T_BOOL)
        return bitmap_bytes(rows);
    if (width && (uint64_t)rows > SIZE_MAX / width) {
        *overflow = 1;
        return 0;
    }
    return width * (size_t)rows;
}

int dbp_column_set_type(dbp_column *col, dbp_type type)
{
    if (col->null_count != col->length)
        return DBP_E_MISUSE;
    dbp_buffer validity = {0}, values = {0};
    if (type.id != DBP_T_NULL && col->length > 0) {
        /* All rows are NULL: a zeroed bitmap and zeroed values (or views) are
         * exactly what appending those NULLs would have produced. */
        int overflow;
        size_t bytes = values_bytes(type.id, col->length, &overflow);
        if (overflow)
            return DBP_E_NOMEM;
        validity.size = validity.capacity = bitmap_bytes(col->length);
        validity.data = dbp_calloc(validity.size, 1);
        if (!validity.data)
            return DBP_E_NOMEM;
        if (bytes) {
            values.size = values.capacity = bytes;
            values.data = dbp_calloc(bytes, 1);
            if (!values.data) {
                buffer_free(&validity);
                return DBP_E_NOMEM;
            }
        }
    }
    int64_t length = col->length;
    column_clear_values(col);
    col->validity = validity;
    col->values = values;
    col->length = length;
    col->null_count = length;
    col->type = type;
    return DBP_OK;
}

int dbp_column_promote_int64_to_float64(dbp_column *col)
{
    if (col->type.id != DBP_T_INT64)
        return DBP_E_MISUSE;
    const int64_t exact_limit = (int64_t)1 << 53;
    for (int64_t i = 0; i < col->length; i++) {
        int64_t v;
        memcpy(&v, col->values.data + i * 8, sizeof v);
        if (v > exact_limit || v < -exact_limit)
            return DBP_E_DATA;
    }
    /* Same width, so the rewrite happens in place; NULL rows hold 0. */
    for (int64_t i = 0; i < col->length; i++) {
        int64_t v;
        memcpy(&v, col->values.data + i * 8, sizeof v);
        double d = (double)v;
        memcpy(col->values.data + i * 8, &d, sizeof d);
    }
    col->type.id = DBP_T_FLOAT64;
    return DBP_OK;
}

/* ---- appends ---------------------------------------------------------------- */

/* Reserves the validity and values room of one more row. */
static int reserve_row(dbp_column *col)
{
    if (col->validity.data && bitmap_reserve(&col->validity, col->length + 1) != DBP_OK)
        return DBP_E_NOMEM;
    if (col->type.id == DBP_T_BOOL)
        return bitmap_reserve(&col->values, col->length + 1);
    if (is_view_type(col->type.id))
        return buffer_reserve(&col->values, VIEW_SIZE);
    return buffer_reserve(&col->values, dbp_type_width(col->type.id));
}

static void push_value(dbp_column *col, const void *value, size_t width)
{
    memcpy(col->values.data + col->values.size, value, width);
    col->values.size += width;
}

/* Ends a non-NULL append whose room was reserved. */
static void commit_valid_row(dbp_column *col)
{
    if (col->validity.data)
        bitmap_set(&col->validity, col->length, 1);
    col->length++;
}

/* The bitmap appears at the first NULL, with every earlier row valid. */
static int materialise_validity(dbp_column *col)
{
    dbp_buffer validity = {0};
    if (buffer_reserve(&validity, bitmap_bytes(col->length + 1)) != DBP_OK)
        return DBP_E_NOMEM;
    size_t full_bytes = (size_t)(col->length / 8);
    memset(validity.data, 0xff, full_bytes);
    validity.size = full_bytes;
    int partial_bits = (int)(col->length % 8);
    if (partial_bits) {
        validity.data[full_bytes] = (uint8_t)((1u << partial_bits) - 1);
        validity.size++;
    }
    col->validity = validity;
    return DBP_OK;
}

int dbp_column_append_null(dbp_column *col)
{
    if (col->type.id == DBP_T_NULL) {
        col->length++;
        col->null_count++;
        return DBP_OK;
    }
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    if (!col->validity.data && materialise_validity(col) != DBP_OK)
        return DBP_E_NOMEM;
    if (col->type.id == DBP_T_BOOL) {
        bitmap_set(&col->values, col->length, 0);
    } else {
        size_t width = is_view_type(col->type.id) ? VIEW_SIZE : dbp_type_width(col->type.id);
        memset(col->values.data + col->values.size, 0, width);
        col->values.size += width;
    }
    bitmap_set(&col->validity, col->length, 0);
    col->length++;
    col->null_count++;
    return DBP_OK;
}

int dbp_column_append_int(dbp_column *col, int64_t v)
{
    if (!is_integer_backed(col->type.id))
        return DBP_E_MISUSE;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    switch (dbp_type_width(col->type.id)) {
    case 1: {
        /* UINT8 and INT8 share the low byte of the two's complement value. */
        uint8_t narrow = (uint8_t)v;
        push_value(col, &narrow, 1);
        break;
    }
    case 2: {
        int16_t narrow = (int16_t)v;
        push_value(col, &narrow, 2);
        break;
    }
    case 4: {
        int32_t narrow = (int32_t)v;
        push_value(col, &narrow, 4);
        break;
    }
    default:
        push_value(col, &v, 8);
        break;
    }
    commit_valid_row(col);
    return DBP_OK;
}

int dbp_column_append_double(dbp_column *col, double v)
{
    if (col->type.id != DBP_T_FLOAT32 && col->type.id != DBP_T_FLOAT64)
        return DBP_E_MISUSE;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    if (col->type.id == DBP_T_FLOAT32) {
        float narrow = (float)v;
        push_value(col, &narrow, sizeof narrow);
    } else {
        push_value(col, &v, sizeof v);
    }
    commit_valid_row(col);
    return DBP_OK;
}

int dbp_column_append_bool(dbp_column *col, int v)
{
    if (col->type.id != DBP_T_BOOL)
        return DBP_E_MISUSE;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    bitmap_set(&col->values, col->length, v != 0);
    commit_valid_row(col);
    return DBP_OK;
}

int dbp_column_append_decimal(dbp_column *col, __int128 v)
{
    if (col->type.id != DBP_T_DECIMAL128)
        return DBP_E_MISUSE;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    /* Arrow's decimal128 is the native 16-byte integer (little-endian on
     * every platform we build for). */
    push_value(col, &v, sizeof v);
    commit_valid_row(col);
    return DBP_OK;
}

/* Finds room for `len` bytes of long values: the last data buffer when it
 * stays within the limit, else a new buffer. Nothing visible changes. */
static int reserve_data(dbp_column *col, size_t len, size_t *buffer_index)
{
    if (col->n_data_buffers) {
        dbp_buffer *last = &col->data_buffers[col->n_data_buffers - 1];
        if (last->size + len <= DATA_BUFFER_LIMIT) {
            if (buffer_reserve_limited(last, len, DATA_BUFFER_INITIAL, DATA_BUFFER_LIMIT) != DBP_OK)
                return DBP_E_NOMEM;
            *buffer_index = col->n_data_buffers - 1;
            return DBP_OK;
        }
    }
    if (col->n_data_buffers == col->data_buffers_capacity) {
        size_t capacity = col->data_buffers_capacity ? col->data_buffers_capacity * 2 : 4;
        dbp_buffer *grown = dbp_realloc(col->data_buffers, capacity * sizeof *grown);
        if (!grown)
            return DBP_E_NOMEM;
        col->data_buffers = grown;
        col->data_buffers_capacity = capacity;
    }
    dbp_buffer fresh = {0};
    if (buffer_reserve_limited(&fresh, len, DATA_BUFFER_INITIAL, DATA_BUFFER_LIMIT) != DBP_OK)
        return DBP_E_NOMEM;
    col->data_buffers[col->n_data_buffers++] = fresh;
    *buffer_index = col->n_data_buffers - 1;
    return DBP_OK;
}

int dbp_column_append_bytes(dbp_column *col, const void *data, size_t len)
{
    if (!is_view_type(col->type.id))
        return DBP_E_MISUSE;
    if (len > INT32_MAX)
        return DBP_E_DATA;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    uint8_t view[VIEW_SIZE] = {0};
    int32_t length = (int32_t)len;
    memcpy(view, &length, 4);
    if (len <= VIEW_INLINE_MAX) {
        if (len)
            memcpy(view + 4, data, len);
    } else {
        size_t index;
        if (reserve_data(col, len, &index) != DBP_OK)
            return DBP_E_NOMEM;
        dbp_buffer *target = &col->data_buffers[index];
        int32_t buffer_index = (int32_t)index;
        int32_t offset = (int32_t)target->size;
        memcpy(view + 4, data, VIEW_PREFIX_SIZE);
        memcpy(view + 8, &buffer_index, 4);
        memcpy(view + 12, &offset, 4);
        memcpy(target->data + target->size, data, len);
        target->size += len;
    }
    push_value(col, view, VIEW_SIZE);
    commit_valid_row(col);
    return DBP_OK;
}

size_t dbp_column_memory(const dbp_column *col)
{
    /* Bytes written, not capacity, so batch cuts do not depend on how the
     * buffers happened to grow. */
    size_t total = col->validity.size + col->values.size;
    for (size_t i = 0; i < col->n_data_buffers; i++)
        total += col->data_buffers[i].size;
    return total;
}

/* ---- export ---------------------------------------------------------------- */

/* What an exported array owns; its release frees it all. */
typedef struct exported_column {
    dbp_buffer validity;
    dbp_buffer values;
    dbp_buffer *data_buffers;
    size_t n_data_buffers;
    int64_t *data_sizes; /* view types: the trailing buffer of data sizes */
    const void *buffers[];
} exported_column;

static void release_column_array(struct ArrowArray *array)
{
    exported_column *owned = array->private_data;
    if (owned) {
        buffer_free(&owned->validity);
        buffer_free(&owned->values);
        free_data_buffers(owned->data_buffers, owned->n_data_buffers);
        dbp_free(owned->data_sizes);
        dbp_free(owned);
    }
    array->private_data = NULL;
    array->release = NULL;
}

static const void *buffer_or_empty(const dbp_buffer *buf)
{
    return buf->data ? buf->data : empty_buffer;
}

int dbp_column_finish(dbp_column *col, struct ArrowArray *out)
{
    int views = is_view_type(col->type.id);
    int64_t n_buffers;
    if (col->type.id == DBP_T_NULL)
        n_buffers = 0; /* the null layout has no buffers at all */
    else if (views)
        n_buffers = 2 + (int64_t)col->n_data_buffers + 1;
    else
        n_buffers = 2;

    exported_column *owned =
        dbp_calloc(1, sizeof *owned + (size_t)n_buffers * sizeof owned->buffers[0]);
    if (!owned)
        return DBP_E_NOMEM;
    if (views) {
        owned->data_sizes = dbp_calloc(col->n_data_buffers, sizeof *owned->data_sizes);
        if (!owned->data_sizes) {
            dbp_free(owned);
            return DBP_E_NOMEM;
        }
    }

    /* Nothing can fail from here on: move the buffers over. */
    if (col->type.id != DBP_T_NULL) {
        if (col->null_count > 0)
            owned->validity = col->validity;
        else
            buffer_free(&col->validity);
        owned->values = col->values;
        owned->buffers[0] = owned->validity.data; /* NULL when there are no nulls */
        owned->buffers[1] = buffer_or_empty(&owned->values);
    }
    if (views) {
        owned->data_buffers = col->data_buffers;
        owned->n_data_buffers = col->n_data_buffers;
        for (size_t i = 0; i < col->n_data_buffers; i++) {
            owned->buffers[2 + i] = buffer_or_empty(&col->data_buffers[i]);
            owned->data_sizes[i] = (int64_t)col->data_buffers[i].size;
        }
        owned->buffers[n_buffers - 1] = owned->data_sizes;
    }

    memset(out, 0, sizeof *out);
    out->length = col->length;
    out->null_count = col->null_count;
    out->offset = 0;
    out->n_buffers = n_buffers;
    out->n_children = 0;
    out->buffers = owned->buffers;
    out->children = NULL;
    out->dictionary = NULL;
    out->release = release_column_array;
    out->private_data = owned;

    /* The builder forgets the moved buffers (they now belong to `out`). */
    memset(&col->validity, 0, sizeof col->validity);
    memset(&col->values, 0, sizeof col->values);
    if (views) {
        col->data_buffers = NULL;
        col->n_data_buffers = 0;
        col->data_buffers_capacity = 0;
    }
    column_clear_values(col);
    return DBP_OK;
}

/* ---- schema ---------------------------------------------------------------- */

typedef struct exported_schema {
    char format[40];
    char name[]; /* copied column name */
} exported_schema;

static void release_column_schema(struct ArrowSchema *schema)
{
    dbp_free(schema->private_data);
    schema->private_data = NULL;
    schema->release = NULL;
}

int dbp_column_schema(const dbp_column *col, struct ArrowSchema *out)
{
    const char *name = col->name ? col->name : "";
    size_t name_len = strlen(name);
    exported_schema *owned = dbp_malloc(sizeof *owned + name_len + 1);
    if (!owned)
        return DBP_E_NOMEM;
    dbp_type_format(col->type, owned->format, sizeof owned->format);
    memcpy(owned->name, name, name_len + 1);

    memset(out, 0, sizeof *out);
    out->format = owned->format;
    out->name = owned->name;
    out->metadata = NULL;
    out->flags = ARROW_FLAG_NULLABLE;
    out->n_children = 0;
    out->children = NULL;
    out->dictionary = NULL;
    out->release = release_column_schema;
    out->private_data = owned;
    return DBP_OK;
}
