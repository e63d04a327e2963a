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
#include "column_internal.h"

#define VIEW_SIZE 16
#define VIEW_INLINE_MAX 12
#define VIEW_PREFIX_SIZE 4
/* Long string values are packed into data buffers of at most this size. */
#define DATA_BUFFER_LIMIT ((size_t)8 << 20)
#define DATA_BUFFER_INITIAL ((size_t)4096)
#define BUFFER_INITIAL ((size_t)64)

/* Stands in for buffers of zero length: consumers may dereference buffer
 * pointers, so an empty array still gets a valid, aligned address. */
alignas(64) const uint8_t col_empty_buffer[64];

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
    case DBP_T_UINT32: format = "I"; break;
    case DBP_T_LIST: format = "+l"; break;
    case DBP_T_UINT16: format = "S"; break;
    case DBP_T_UINT64: format = "L"; break;
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
    case DBP_T_UINT16:
        return 2;
    case DBP_T_INT32:
    case DBP_T_UINT32:
    case DBP_T_FLOAT32:
    case DBP_T_DATE32:
        return 4;
    case DBP_T_INT64:
    case DBP_T_UINT64:
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
    case DBP_T_LIST:
        return 0;
    }
    return 0;
}

int dbp_type_equal(dbp_type a, dbp_type b)
{
    if (a.id != b.id)
        return 0;
    if (a.id == DBP_T_DECIMAL128)
        return a.precision == b.precision && a.scale == b.scale;
    if (a.id == DBP_T_LIST)
        return a.element && b.element && dbp_type_equal(*a.element, *b.element);
    return 1;
}

/* A LIST needs an element type, and lists do not nest. */
int col_valid_type(dbp_type type)
{
    return type.id != DBP_T_LIST || (type.element && type.element->id != DBP_T_LIST);
}

int col_is_view_type(dbp_type_id id)
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
    case DBP_T_UINT16:
    case DBP_T_UINT32:
    case DBP_T_UINT64:
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

void col_buffer_free(dbp_buffer *buf)
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

/* A new, empty child column for a LIST of `element`. */
static int new_child(const dbp_type *element, dbp_column **out)
{
    dbp_column *child = dbp_malloc(sizeof *child);
    if (!child)
        return DBP_E_NOMEM;
    dbp_type type = *element;
    type.element = NULL;
    if (dbp_column_init(child, "item", type) != DBP_OK) {
        dbp_free(child);
        return DBP_E_NOMEM;
    }
    *out = child;
    return DBP_OK;
}

static void free_child(dbp_column *child)
{
    dbp_column_free(child);
    dbp_free(child);
}

/* Installs `type` (with `child` for a LIST), pointing the element at the
 * child's own type so nothing outside the column is referenced. */
static void install_type(dbp_column *col, dbp_type type, dbp_column *child)
{
    if (col->child)
        free_child(col->child);
    col->child = child;
    col->type = type;
    col->type.element = child ? &child->type : NULL;
}

int dbp_column_init(dbp_column *col, const char *name, dbp_type type)
{
    memset(col, 0, sizeof *col);
    if (!col_valid_type(type))
        return DBP_E_MISUSE;
    dbp_column *child = NULL;
    if (type.id == DBP_T_LIST && new_child(type.element, &child) != DBP_OK)
        return DBP_E_NOMEM;
    col->name = dbp_strdup(name ? name : "");
    if (!col->name) {
        if (child)
            free_child(child);
        return DBP_E_NOMEM;
    }
    install_type(col, type, child);
    return DBP_OK;
}

void col_free_data_buffers(dbp_buffer *buffers, size_t count)
{
    for (size_t i = 0; i < count; i++)
        col_buffer_free(&buffers[i]);
    dbp_free(buffers);
}

/* Drops the values, keeping name and type. */
void col_clear_values(dbp_column *col)
{
    col_buffer_free(&col->validity);
    col_buffer_free(&col->values);
    col_free_data_buffers(col->data_buffers, col->n_data_buffers);
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
    col_clear_values(col);
    if (col->child)
        free_child(col->child);
    dbp_free(col->name);
    memset(col, 0, sizeof *col);
}

/* ---- type changes ---------------------------------------------------------- */

/* Bytes the values buffer needs for `rows` rows of `type`, 0 when it has no
 * values buffer. Sets *overflow when that does not fit in size_t. */
static size_t values_bytes(dbp_type_id id, int64_t rows, int *overflow)
{
    size_t width = col_is_view_type(id) ? VIEW_SIZE : dbp_type_width(id);
    *overflow = 0;
    if (id == DBP_T_BOOL)
        return bitmap_bytes(rows);
    if (id == DBP_T_LIST) {
        /* rows + 1 offsets, all 0: every row is an empty (NULL) list */
        if ((uint64_t)rows >= SIZE_MAX / 4) {
            *overflow = 1;
            return 0;
        }
        return 4 * ((size_t)rows + 1);
    }
    if (width && (uint64_t)rows > SIZE_MAX / width) {
        *overflow = 1;
        return 0;
    }
    return width * (size_t)rows;
}

int dbp_column_set_type(dbp_column *col, dbp_type type)
{
    if (col->null_count != col->length || !col_valid_type(type))
        return DBP_E_MISUSE;
    dbp_column *child = NULL;
    if (type.id == DBP_T_LIST && new_child(type.element, &child) != DBP_OK)
        return DBP_E_NOMEM;
    dbp_buffer validity = {0}, values = {0};
    if (type.id != DBP_T_NULL && col->length > 0) {
        /* All rows are NULL: a zeroed bitmap and zeroed values (or views) are
         * exactly what appending those NULLs would have produced. */
        int overflow;
        size_t bytes = values_bytes(type.id, col->length, &overflow);
        validity.size = validity.capacity = bitmap_bytes(col->length);
        validity.data = overflow ? NULL : dbp_calloc(validity.size, 1);
        if (bytes && validity.data) {
            values.size = values.capacity = bytes;
            values.data = dbp_calloc(bytes, 1);
        }
        if (!validity.data || (bytes && !values.data)) {
            col_buffer_free(&validity);
            col_buffer_free(&values);
            if (child)
                free_child(child);
            return DBP_E_NOMEM;
        }
    }
    int64_t length = col->length;
    col_clear_values(col);
    col->validity = validity;
    col->values = values;
    col->length = length;
    col->null_count = length;
    install_type(col, type, child);
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
    if (col_is_view_type(col->type.id))
        return buffer_reserve(&col->values, VIEW_SIZE);
    if (col->type.id == DBP_T_LIST) /* the leading 0 offset comes with the first row */
        return buffer_reserve(&col->values, col->values.size ? 4 : 8);
    return buffer_reserve(&col->values, dbp_type_width(col->type.id));
}

static void push_value(dbp_column *col, const void *value, size_t width)
{
    memcpy(col->values.data + col->values.size, value, width);
    col->values.size += width;
}

/* Where the last list value ends in the child (0 before the first row). */
static int32_t last_offset(const dbp_column *col)
{
    int32_t offset = 0;
    if (col->values.size)
        memcpy(&offset, col->values.data + col->values.size - 4, 4);
    return offset;
}

/* Appends the end offset of a list row; the room was reserved. */
static void push_offset(dbp_column *col, int32_t offset)
{
    if (!col->values.size) {
        int32_t zero = 0;
        push_value(col, &zero, 4);
    }
    push_value(col, &offset, 4);
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
    } else if (col->type.id == DBP_T_LIST) {
        push_offset(col, last_offset(col)); /* an empty slot in the child */
    } else {
        size_t width = col_is_view_type(col->type.id) ? VIEW_SIZE : dbp_type_width(col->type.id);
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
        uint16_t narrow = (uint16_t)v; /* INT16 and UINT16 share the low bytes */
        push_value(col, &narrow, 2);
        break;
    }
    case 4: {
        /* unsigned, so UINT32 values above INT32_MAX convert exactly */
        uint32_t narrow = (uint32_t)v;
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
    if (!col_is_view_type(col->type.id))
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

/* ---- lists ---------------------------------------------------------------- */

dbp_column *dbp_column_list_child(dbp_column *col)
{
    return col->type.id == DBP_T_LIST ? col->child : NULL;
}

int dbp_column_append_list(dbp_column *col)
{
    if (col->type.id != DBP_T_LIST)
        return DBP_E_MISUSE;
    if (col->child->length > INT32_MAX)
        return DBP_E_DATA;
    if (reserve_row(col) != DBP_OK)
        return DBP_E_NOMEM;
    push_offset(col, (int32_t)col->child->length);
    commit_valid_row(col);
    return DBP_OK;
}

/* ---- truncation ------------------------------------------------------------ */

int dbp_column_truncate(dbp_column *col, int64_t length)
{
    if (length < 0 || length > col->length)
        return DBP_E_MISUSE;
    if (length == col->length)
        return DBP_OK;
    if (col->type.id == DBP_T_NULL) {
        col->null_count -= col->length - length;
        col->length = length;
        return DBP_OK;
    }
    int64_t dropped_nulls = 0;
    if (col->validity.data) {
        for (int64_t i = length; i < col->length; i++)
            dropped_nulls += !((col->validity.data[i / 8] >> (i % 8)) & 1);
        /* Bits past the end are rewritten by the next appends. */
        col->validity.size = bitmap_bytes(length);
    }
    if (col->type.id == DBP_T_BOOL) {
        col->values.size = bitmap_bytes(length);
    } else if (col->type.id == DBP_T_LIST) {
        int32_t end = 0;
        if (length > 0)
            memcpy(&end, col->values.data + 4 * (size_t)length, 4);
        int rc = dbp_column_truncate(col->child, end);
        if (rc != DBP_OK)
            return rc;
        col->values.size = length > 0 ? 4 * ((size_t)length + 1) : 0;
    } else {
        size_t width = col_is_view_type(col->type.id) ? VIEW_SIZE : dbp_type_width(col->type.id);
        col->values.size = width * (size_t)length;
    }
    col->length = length;
    col->null_count -= dropped_nulls;
    return DBP_OK;
}

/* ---- decimal scale --------------------------------------------------------- */

int dbp_decimal_rescale(void *values, int64_t n, int precision, int shift, int apply)
{
    if (shift < 0 || precision < 1 || precision > 38)
        return DBP_E_MISUSE;
    __int128 limit = 1; /* 10^precision: magnitudes must stay below it */
    for (int i = 0; i < precision; i++)
        limit *= 10;
    __int128 factor = 1;
    for (int i = 0; i < shift && factor < limit; i++)
        factor *= 10;
    __int128 bound = limit / factor; /* |v| < bound  <=>  |v * factor| < limit */
    uint8_t *bytes = values;
    for (int64_t i = 0; i < n; i++) {
        __int128 v;
        memcpy(&v, bytes + 16 * i, 16);
        if (v >= bound || v <= -bound)
            return DBP_E_DATA;
    }
    if (!apply)
        return DBP_OK;
    for (int64_t i = 0; i < n; i++) {
        __int128 v;
        memcpy(&v, bytes + 16 * i, 16);
        v *= factor;
        memcpy(bytes + 16 * i, &v, 16);
    }
    return DBP_OK;
}

int dbp_column_rescale_decimal(dbp_column *col, int new_scale)
{
    if (col->type.id != DBP_T_DECIMAL128 || new_scale < col->type.scale)
        return DBP_E_MISUSE;
    if (new_scale == col->type.scale)
        return DBP_OK;
    if (new_scale > col->type.precision)
        return DBP_E_DATA;
    int rc = dbp_decimal_rescale(col->values.data, col->length, col->type.precision,
                                 new_scale - col->type.scale, 1);
    if (rc != DBP_OK)
        return rc;
    col->type.scale = new_scale;
    return DBP_OK;
}

size_t dbp_column_memory(const dbp_column *col)
{
    /* Bytes written, not capacity, so batch cuts do not depend on how the
     * buffers happened to grow. */
    size_t total = col->validity.size + col->values.size;
    for (size_t i = 0; i < col->n_data_buffers; i++)
        total += col->data_buffers[i].size;
    if (col->child)
        total += dbp_column_memory(col->child);
    return total;
}
