/* test_column.c - column builders, their Arrow export, and results exported
 * as Arrow streams, including every allocation failure along the way. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "column.h"
#include "result.h"

#define MIB ((size_t)1 << 20)

static dbp_type type_of(dbp_type_id id)
{
    return (dbp_type){.id = id};
}

static int bit_at(const void *bits, int64_t i)
{
    return (((const uint8_t *)bits)[i / 8] >> (i % 8)) & 1;
}

static int64_t int64_at(const struct ArrowArray *a, int64_t i)
{
    int64_t v;
    memcpy(&v, (const uint8_t *)a->buffers[1] + i * 8, 8);
    return v;
}

/* A decoded 16-byte view. */
typedef struct view {
    int32_t length;
    uint8_t inline_bytes[12];
    int32_t buffer_index;
    int32_t offset;
} view;

static view view_at(const struct ArrowArray *a, int64_t i)
{
    const uint8_t *raw = (const uint8_t *)a->buffers[1] + i * 16;
    view v;
    memcpy(&v.length, raw, 4);
    memcpy(v.inline_bytes, raw + 4, 12);
    memcpy(&v.buffer_index, raw + 8, 4);
    memcpy(&v.offset, raw + 12, 4);
    return v;
}

/* The bytes of value `i` of a view array, wherever they live. */
static const uint8_t *view_bytes(const struct ArrowArray *a, int64_t i)
{
    const uint8_t *raw = (const uint8_t *)a->buffers[1] + i * 16;
    view v = view_at(a, i);
    if (v.length <= 12)
        return raw + 4;
    return (const uint8_t *)a->buffers[2 + v.buffer_index] + v.offset;
}

static int64_t data_buffer_size(const struct ArrowArray *a, int64_t k)
{
    const int64_t *sizes = a->buffers[a->n_buffers - 1];
    return sizes[k];
}

static char *format_of(const dbp_column *col, char *buf)
{
    dbp_type_format(col->type, buf, 32);
    return buf;
}

/* ---- types ----------------------------------------------------------------- */

static void test_type_formats(void)
{
    char buf[32];
    static const struct {
        dbp_type_id id;
        const char *format;
        size_t width;
    } expected[] = {
        {DBP_T_NULL, "n", 0},        {DBP_T_BOOL, "b", 0},
        {DBP_T_INT8, "c", 1},        {DBP_T_INT16, "s", 2},
        {DBP_T_INT32, "i", 4},       {DBP_T_INT64, "l", 8},
        {DBP_T_UINT8, "C", 1},       {DBP_T_FLOAT32, "f", 4},
        {DBP_T_FLOAT64, "g", 8},     {DBP_T_DATE32, "tdD", 4},
        {DBP_T_TIME64_US, "ttu", 8}, {DBP_T_TIMESTAMP_US, "tsu:", 8},
        {DBP_T_TIMESTAMP_UTC, "tsu:UTC", 8}, {DBP_T_DURATION_US, "tDu", 8},
        {DBP_T_STRING, "vu", 0},     {DBP_T_BINARY, "vz", 0},
        {DBP_T_DECIMAL128, NULL, 16},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        CHECK_EQ_INT(dbp_type_width(expected[i].id), expected[i].width);
        if (!expected[i].format)
            continue;
        dbp_type_format(type_of(expected[i].id), buf, sizeof buf);
        CHECK(strcmp(buf, expected[i].format) == 0);
    }
    dbp_type_format((dbp_type){.id = DBP_T_DECIMAL128, .precision = 38, .scale = 10}, buf,
                    sizeof buf);
    CHECK(strcmp(buf, "d:38,10") == 0);
}

/* ---- fixed-width types ------------------------------------------------------ */

/* Appends 10, NULL, -3, NULL, 127 and checks the exported buffers at `width`. */
static void check_integer_type(dbp_type_id id, size_t width)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "n", type_of(id)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, 10), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, -3), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, 127), DBP_OK);
    CHECK_EQ_INT(dbp_column_memory(&col), 1 + 5 * width);

    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 5);
    CHECK_EQ_INT(a.null_count, 2);
    CHECK_EQ_INT(a.offset, 0);
    CHECK_EQ_INT(a.n_buffers, 2);
    CHECK_EQ_INT(a.n_children, 0);
    CHECK(a.buffers[0] != NULL);
    CHECK_EQ_INT(((const uint8_t *)a.buffers[0])[0] & 0x1f, 0x15); /* 1,0,1,0,1 */
    const int64_t expected[] = {10, 0, -3, 0, 127};
    for (int i = 0; i < 5; i++) {
        const uint8_t *p = (const uint8_t *)a.buffers[1] + i * width;
        int64_t got = 0;
        if (width == 1 && id == DBP_T_UINT8) {
            got = *p;
            CHECK_EQ_INT(got, (uint8_t)expected[i]);
            continue;
        }
        if (width == 1) {
            got = (int8_t)*p;
        } else if (width == 2) {
            int16_t v;
            memcpy(&v, p, 2);
            got = v;
        } else if (width == 4) {
            int32_t v;
            memcpy(&v, p, 4);
            got = v;
        } else {
            memcpy(&got, p, 8);
        }
        CHECK_EQ_INT(got, expected[i]);
    }
    a.release(&a);
    CHECK(a.release == NULL);
    /* The builder is empty again but keeps its name and type. */
    CHECK_EQ_INT(col.length, 0);
    CHECK_EQ_INT(col.null_count, 0);
    CHECK_EQ_INT(col.type.id, id);
    CHECK(strcmp(col.name, "n") == 0);
    dbp_column_free(&col);
}

static void test_integer_types(void)
{
    check_integer_type(DBP_T_INT8, 1);
    check_integer_type(DBP_T_UINT8, 1);
    check_integer_type(DBP_T_INT16, 2);
    check_integer_type(DBP_T_INT32, 4);
    check_integer_type(DBP_T_DATE32, 4);
    check_integer_type(DBP_T_INT64, 8);
    check_integer_type(DBP_T_TIME64_US, 8);
    check_integer_type(DBP_T_TIMESTAMP_US, 8);
    check_integer_type(DBP_T_TIMESTAMP_UTC, 8);
    check_integer_type(DBP_T_DURATION_US, 8);
}

static void test_no_nulls_has_no_validity(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "x", type_of(DBP_T_INT64)), DBP_OK);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(dbp_column_append_int(&col, INT64_MIN + i), DBP_OK);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.null_count, 0);
    CHECK(a.buffers[0] == NULL);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(int64_at(&a, i), INT64_MIN + i);
    a.release(&a);

    /* An empty column still exports a readable (empty) values buffer. */
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 0);
    CHECK(a.buffers[0] == NULL);
    CHECK(a.buffers[1] != NULL);
    a.release(&a);
    dbp_column_free(&col);
}

static void test_validity_after_many_values(void)
{
    /* The first NULL arrives late and mid-byte: earlier bits must all be 1. */
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "x", type_of(DBP_T_INT32)), DBP_OK);
    for (int i = 0; i < 21; i++)
        CHECK_EQ_INT(dbp_column_append_int(&col, i), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    for (int i = 22; i < 40; i++)
        CHECK_EQ_INT(i % 5 ? dbp_column_append_int(&col, i) : dbp_column_append_null(&col),
                     DBP_OK);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    int64_t nulls = 0;
    for (int i = 0; i < 40; i++) {
        int valid = i < 21 || (i > 21 && i % 5 != 0);
        nulls += !valid;
        CHECK_EQ_INT(bit_at(a.buffers[0], i), valid);
        if (valid) {
            int32_t v;
            memcpy(&v, (const uint8_t *)a.buffers[1] + i * 4, 4);
            CHECK_EQ_INT(v, i);
        }
    }
    CHECK_EQ_INT(a.null_count, nulls);
    a.release(&a);
    dbp_column_free(&col);
}

static void test_floats(void)
{
    dbp_column f32, f64;
    CHECK_EQ_INT(dbp_column_init(&f32, "f", type_of(DBP_T_FLOAT32)), DBP_OK);
    CHECK_EQ_INT(dbp_column_init(&f64, "g", type_of(DBP_T_FLOAT64)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_double(&f32, 1.5), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&f32), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_double(&f32, -0.25), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_double(&f64, 0.1), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&f64), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_double(&f64, -1e300), DBP_OK);
    /* Wrong kind of value for the column type. */
    CHECK_EQ_INT(dbp_column_append_int(&f64, 1), DBP_E_MISUSE);
    CHECK_EQ_INT(dbp_column_append_bool(&f64, 1), DBP_E_MISUSE);
    CHECK_EQ_INT(f64.length, 3);

    struct ArrowArray a, b;
    CHECK_EQ_INT(dbp_column_finish(&f32, &a), DBP_OK);
    CHECK_EQ_INT(dbp_column_finish(&f64, &b), DBP_OK);
    const float *fv = a.buffers[1];
    const double *dv = b.buffers[1];
    CHECK(fv[0] == 1.5f && fv[1] == 0.0f && fv[2] == -0.25f);
    CHECK(dv[0] == 0.1 && dv[1] == 0.0 && dv[2] == -1e300);
    CHECK_EQ_INT(a.null_count, 1);
    CHECK_EQ_INT(bit_at(a.buffers[0], 1), 0);
    CHECK_EQ_INT(bit_at(b.buffers[0], 2), 1);
    a.release(&a);
    b.release(&b);
    dbp_column_free(&f32);
    dbp_column_free(&f64);
}

static void test_bool(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "b", type_of(DBP_T_BOOL)), DBP_OK);
    /* pattern over 19 rows: true, false, NULL repeating */
    for (int i = 0; i < 19; i++) {
        int rc = i % 3 == 2 ? dbp_column_append_null(&col) : dbp_column_append_bool(&col, i % 3 == 0 ? 7 : 0);
        CHECK_EQ_INT(rc, DBP_OK);
    }
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 19);
    CHECK_EQ_INT(a.null_count, 6);
    CHECK_EQ_INT(a.n_buffers, 2);
    for (int i = 0; i < 19; i++) {
        CHECK_EQ_INT(bit_at(a.buffers[0], i), i % 3 != 2);
        CHECK_EQ_INT(bit_at(a.buffers[1], i), i % 3 == 0);
    }
    CHECK_EQ_INT(((const uint8_t *)a.buffers[1])[0], 0x49); /* LSB first: rows 0, 3, 6 */
    a.release(&a);
    dbp_column_free(&col);
}

static void test_decimal(void)
{
    dbp_column col;
    dbp_type type = {.id = DBP_T_DECIMAL128, .precision = 38, .scale = 4};
    CHECK_EQ_INT(dbp_column_init(&col, "d", type), DBP_OK);
    __int128 big = (__int128)1 << 100;
    CHECK_EQ_INT(dbp_column_append_decimal(&col, -12345), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_decimal(&col, big + 1), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, 1), DBP_E_MISUSE);

    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    const uint8_t *v = a.buffers[1];
    /* -12345 little-endian: 0xC7 0xCF then all 0xFF */
    CHECK_EQ_INT(v[0], 0xc7);
    CHECK_EQ_INT(v[1], 0xcf);
    for (int i = 2; i < 16; i++)
        CHECK_EQ_INT(v[i], 0xff);
    for (int i = 16; i < 32; i++)
        CHECK_EQ_INT(v[i], 0);
    /* 2^100 + 1: byte 0 = 1, bit 100 = byte 12 bit 4 */
    CHECK_EQ_INT(v[32], 1);
    CHECK_EQ_INT(v[32 + 12], 0x10);
    CHECK_EQ_INT(v[32 + 15], 0);
    CHECK_EQ_INT(a.null_count, 1);

    struct ArrowSchema s;
    CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_OK);
    CHECK(strcmp(s.format, "d:38,4") == 0);
    s.release(&s);
    a.release(&a);
    dbp_column_free(&col);
}

/* ---- view types --------------------------------------------------------------- */

static void test_string_views(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "s", type_of(DBP_T_STRING)), DBP_OK);
    const char *long1 = "this string is longer than twelve bytes";
    const char *long2 = "exactly13byte";
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "short", 5), DBP_OK);        /* 0 inline */
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);                     /* 1 */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, long1, strlen(long1)), DBP_OK); /* 2 */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "", 0), DBP_OK);             /* 3 empty */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "twelve bytes", 12), DBP_OK); /* 4 inline max */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, long2, 13), DBP_OK);        /* 5 shortest long */
    CHECK_EQ_INT(dbp_column_append_int(&col, 1), DBP_E_MISUSE);
    CHECK_EQ_INT(dbp_column_memory(&col), 1 + 6 * 16 + strlen(long1) + 13);

    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 6);
    CHECK_EQ_INT(a.null_count, 1);
    CHECK_EQ_INT(a.n_buffers, 4); /* validity, views, one data buffer, sizes */
    CHECK_EQ_INT(data_buffer_size(&a, 0), strlen(long1) + 13);

    view v = view_at(&a, 0);
    CHECK_EQ_INT(v.length, 5);
    CHECK(memcmp(v.inline_bytes, "short\0\0\0\0\0\0\0", 12) == 0);
    v = view_at(&a, 1);
    CHECK_EQ_INT(v.length, 0);
    CHECK(memcmp(v.inline_bytes, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0);
    CHECK_EQ_INT(bit_at(a.buffers[0], 1), 0);
    v = view_at(&a, 2);
    CHECK_EQ_INT(v.length, strlen(long1));
    CHECK(memcmp(v.inline_bytes, "this", 4) == 0); /* prefix */
    CHECK_EQ_INT(v.buffer_index, 0);
    CHECK_EQ_INT(v.offset, 0);
    CHECK(memcmp(view_bytes(&a, 2), long1, strlen(long1)) == 0);
    v = view_at(&a, 3);
    CHECK_EQ_INT(v.length, 0);
    CHECK(memcmp(v.inline_bytes, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0);
    v = view_at(&a, 4);
    CHECK_EQ_INT(v.length, 12);
    CHECK(memcmp(v.inline_bytes, "twelve bytes", 12) == 0);
    v = view_at(&a, 5);
    CHECK_EQ_INT(v.length, 13);
    CHECK(memcmp(v.inline_bytes, "exac", 4) == 0);
    CHECK_EQ_INT(v.buffer_index, 0);
    CHECK_EQ_INT(v.offset, strlen(long1));
    CHECK(memcmp(view_bytes(&a, 5), long2, 13) == 0);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(bit_at(a.buffers[0], i), i != 1);
    a.release(&a);

    /* Only inline values: no data buffers, just the (empty) sizes buffer. */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "a", 1), DBP_OK);
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.n_buffers, 3);
    CHECK(a.buffers[0] == NULL);
    CHECK(a.buffers[2] != NULL);
    a.release(&a);
    dbp_column_free(&col);
}

static void test_binary_views(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "bin", type_of(DBP_T_BINARY)), DBP_OK);
    uint8_t bytes[40];
    for (int i = 0; i < 40; i++)
        bytes[i] = (uint8_t)(i * 7);
    bytes[1] = 0; /* embedded zero bytes are data, not terminators */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, bytes, 3), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bytes(&col, bytes, 40), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bytes(&col, bytes + 5, 20), DBP_OK);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.n_buffers, 4);
    CHECK(a.buffers[0] == NULL);
    CHECK(memcmp(view_bytes(&a, 0), bytes, 3) == 0);
    CHECK(memcmp(view_bytes(&a, 1), bytes, 40) == 0);
    CHECK(memcmp(view_bytes(&a, 2), bytes + 5, 20) == 0);
    CHECK_EQ_INT(view_at(&a, 2).offset, 40);
    CHECK(memcmp(view_at(&a, 2).inline_bytes, bytes + 5, 4) == 0);
    CHECK_EQ_INT(data_buffer_size(&a, 0), 60);

    struct ArrowSchema s;
    CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_OK);
    CHECK(strcmp(s.format, "vz") == 0);
    s.release(&s);
    a.release(&a);
    dbp_column_free(&col);
}

static void test_multiple_data_buffers(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "big", type_of(DBP_T_STRING)), DBP_OK);
    enum { VALUE_LEN = 1000 };
    char value[VALUE_LEN];
    /* 9000 values of 1000 bytes: 8388 fit in the first 8 MiB buffer. */
    const int n_small = 9000;
    for (int i = 0; i < n_small; i++) {
        memset(value, 'a' + i % 26, sizeof value);
        memcpy(value, &i, sizeof i);
        CHECK_EQ_INT(dbp_column_append_bytes(&col, value, sizeof value), DBP_OK);
    }
    /* A value larger than the limit gets a buffer of its own. */
    size_t huge_len = 9 * MIB;
    char *huge = malloc(huge_len);
    CHECK(huge != NULL);
    memset(huge, 'z', huge_len);
    CHECK_EQ_INT(dbp_column_append_bytes(&col, huge, huge_len), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bytes(&col, value, sizeof value), DBP_OK);
    CHECK_EQ_INT(col.n_data_buffers, 4);

    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, n_small + 2);
    CHECK_EQ_INT(a.n_buffers, 2 + 4 + 1);
    const int64_t per_buffer = (int64_t)(8 * MIB / VALUE_LEN);
    CHECK_EQ_INT(data_buffer_size(&a, 0), per_buffer * VALUE_LEN);
    CHECK_EQ_INT(data_buffer_size(&a, 1), (n_small - per_buffer) * VALUE_LEN);
    CHECK_EQ_INT(data_buffer_size(&a, 2), huge_len);
    CHECK_EQ_INT(data_buffer_size(&a, 3), VALUE_LEN);
    for (int i = 0; i < n_small; i++) {
        view v = view_at(&a, i);
        CHECK_EQ_INT(v.length, VALUE_LEN);
        CHECK_EQ_INT(v.buffer_index, i < per_buffer ? 0 : 1);
        CHECK_EQ_INT(v.offset, (i < per_buffer ? i : i - per_buffer) * VALUE_LEN);
        int stored;
        memcpy(&stored, view_bytes(&a, i), sizeof stored);
        CHECK_EQ_INT(stored, i);
        CHECK(memcmp(v.inline_bytes, &i, 4) == 0);
        CHECK_EQ_INT(view_bytes(&a, i)[VALUE_LEN - 1], 'a' + i % 26);
    }
    view v = view_at(&a, n_small);
    CHECK_EQ_INT(v.buffer_index, 2);
    CHECK_EQ_INT(v.offset, 0);
    CHECK(memcmp(view_bytes(&a, n_small), huge, huge_len) == 0);
    v = view_at(&a, n_small + 1);
    CHECK_EQ_INT(v.buffer_index, 3);
    CHECK_EQ_INT(v.offset, 0);
    a.release(&a);
    free(huge);
    dbp_column_free(&col);
}

static void test_too_long_value(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "s", type_of(DBP_T_BINARY)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "abc", 3), DBP_OK);
    /* The length is refused before any byte is read. */
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "x", (size_t)INT32_MAX + 1), DBP_E_DATA);
    CHECK_EQ_INT(col.length, 1);
    CHECK_EQ_INT(col.n_data_buffers, 0);
    dbp_column_free(&col);
}

/* ---- builder reuse, NULL type, set_type ------------------------------------------ */

static void test_finish_twice(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "s", type_of(DBP_T_STRING)), DBP_OK);
    struct ArrowArray first, second;
    CHECK_EQ_INT(dbp_column_append_bytes(&col, "a value that is out of line", 27), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_finish(&col, &first), DBP_OK);
    CHECK_EQ_INT(col.length, 0);
    CHECK_EQ_INT(col.n_data_buffers, 0);
    CHECK_EQ_INT(dbp_column_memory(&col), 0);

    CHECK_EQ_INT(dbp_column_append_bytes(&col, "second batch, also long", 23), DBP_OK);
    CHECK_EQ_INT(dbp_column_finish(&col, &second), DBP_OK);
    /* Both arrays are independent: the first still reads correctly. */
    CHECK_EQ_INT(first.length, 2);
    CHECK_EQ_INT(first.null_count, 1);
    CHECK(memcmp(view_bytes(&first, 0), "a value that is out of line", 27) == 0);
    CHECK_EQ_INT(second.length, 1);
    CHECK_EQ_INT(second.null_count, 0);
    CHECK(second.buffers[0] == NULL);
    CHECK_EQ_INT(view_at(&second, 0).buffer_index, 0);
    CHECK(memcmp(view_bytes(&second, 0), "second batch, also long", 23) == 0);
    second.release(&second);
    first.release(&first);
    dbp_column_free(&col);
    dbp_column_free(&col); /* freeing a freed (zeroed) column is harmless */
}

static void test_null_column(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "nothing", type_of(DBP_T_NULL)), DBP_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, 1), DBP_E_MISUSE);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 3);
    CHECK_EQ_INT(a.null_count, 3);
    CHECK_EQ_INT(a.n_buffers, 0);
    a.release(&a);
    struct ArrowSchema s;
    CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_OK);
    CHECK(strcmp(s.format, "n") == 0);
    CHECK(strcmp(s.name, "nothing") == 0);
    CHECK_EQ_INT(s.flags, ARROW_FLAG_NULLABLE);
    CHECK_EQ_INT(s.n_children, 0);
    s.release(&s);
    CHECK(s.release == NULL);
    dbp_column_free(&col);
}

static void test_set_type(void)
{
    char fmt[32];
    /* NULL -> INT32: the earlier NULL rows get zeroed slots and cleared bits. */
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(DBP_T_NULL)), DBP_OK);
    for (int i = 0; i < 9; i++)
        CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(&col, type_of(DBP_T_INT32)), DBP_OK);
    CHECK(strcmp(format_of(&col, fmt), "i") == 0);
    CHECK_EQ_INT(dbp_column_append_int(&col, 42), DBP_OK);
    /* a value now: set_type is no longer allowed */
    CHECK_EQ_INT(dbp_column_set_type(&col, type_of(DBP_T_INT64)), DBP_E_MISUSE);
    CHECK_EQ_INT(col.type.id, DBP_T_INT32);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.length, 10);
    CHECK_EQ_INT(a.null_count, 9);
    CHECK_EQ_INT(a.n_buffers, 2);
    for (int i = 0; i < 10; i++) {
        int32_t v;
        memcpy(&v, (const uint8_t *)a.buffers[1] + i * 4, 4);
        CHECK_EQ_INT(v, i == 9 ? 42 : 0);
        CHECK_EQ_INT(bit_at(a.buffers[0], i), i == 9);
    }
    a.release(&a);
    dbp_column_free(&col);

    /* NULL -> BOOL and NULL -> STRING, then a value. */
    static const dbp_type_id targets[] = {DBP_T_BOOL, DBP_T_STRING, DBP_T_DECIMAL128};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(DBP_T_NULL)), DBP_OK);
        for (int i = 0; i < 4; i++)
            CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
        dbp_type target = {.id = targets[t], .precision = 10, .scale = 2};
        CHECK_EQ_INT(dbp_column_set_type(&col, target), DBP_OK);
        if (targets[t] == DBP_T_BOOL)
            CHECK_EQ_INT(dbp_column_append_bool(&col, 1), DBP_OK);
        else if (targets[t] == DBP_T_STRING)
            CHECK_EQ_INT(dbp_column_append_bytes(&col, "a long value, out of line", 25), DBP_OK);
        else
            CHECK_EQ_INT(dbp_column_append_decimal(&col, 1234), DBP_OK);
        CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
        CHECK_EQ_INT(a.length, 5);
        CHECK_EQ_INT(a.null_count, 4);
        CHECK_EQ_INT(((const uint8_t *)a.buffers[0])[0] & 0x1f, 0x10);
        if (targets[t] == DBP_T_BOOL) {
            CHECK_EQ_INT(((const uint8_t *)a.buffers[1])[0] & 0x1f, 0x10);
        } else if (targets[t] == DBP_T_STRING) {
            CHECK_EQ_INT(a.n_buffers, 4);
            for (int i = 0; i < 4; i++)
                CHECK_EQ_INT(view_at(&a, i).length, 0);
            CHECK_EQ_INT(view_at(&a, 4).buffer_index, 0);
            CHECK(memcmp(view_bytes(&a, 4), "a long value, out of line", 25) == 0);
        } else {
            const uint8_t *v = a.buffers[1];
            for (int i = 0; i < 64; i++)
                CHECK_EQ_INT(v[i], 0);
            CHECK_EQ_INT(v[64], 1234 & 0xff);
        }
        a.release(&a);
        dbp_column_free(&col);
    }

    /* An all-NULL column of a real type may change type too, back to NULL
     * included, and an empty column trivially. */
    CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(DBP_T_INT64)), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(&col, type_of(DBP_T_FLOAT32)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(&col, type_of(DBP_T_BINARY)), DBP_OK);
    CHECK_EQ_INT(col.values.size, 32);
    CHECK_EQ_INT(dbp_column_set_type(&col, type_of(DBP_T_NULL)), DBP_OK);
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    CHECK_EQ_INT(a.n_buffers, 0);
    CHECK_EQ_INT(a.null_count, 2);
    a.release(&a);
    dbp_column_free(&col);
}

static void test_promote(void)
{
    const int64_t limit = (int64_t)1 << 53;
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "p", type_of(DBP_T_INT64)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, limit), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, -limit), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(&col, 7), DBP_OK);
    CHECK_EQ_INT(dbp_column_promote_int64_to_float64(&col), DBP_OK);
    CHECK_EQ_INT(col.type.id, DBP_T_FLOAT64);
    CHECK_EQ_INT(dbp_column_append_double(&col, 0.5), DBP_OK);
    /* already FLOAT64 */
    CHECK_EQ_INT(dbp_column_promote_int64_to_float64(&col), DBP_E_MISUSE);
    struct ArrowArray a;
    CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
    const double *v = a.buffers[1];
    CHECK(v[0] == 9007199254740992.0);
    CHECK(v[1] == 0.0);
    CHECK(v[2] == -9007199254740992.0);
    CHECK(v[3] == 7.0);
    CHECK(v[4] == 0.5);
    CHECK_EQ_INT(a.null_count, 1);
    CHECK_EQ_INT(bit_at(a.buffers[0], 1), 0);
    a.release(&a);
    dbp_column_free(&col);

    /* 2^53 + 1 (either sign) has no exact double: the column stays as it was. */
    const int64_t too_big[] = {limit + 1, -limit - 1, INT64_MIN, INT64_MAX};
    for (size_t t = 0; t < sizeof too_big / sizeof too_big[0]; t++) {
        CHECK_EQ_INT(dbp_column_init(&col, "p", type_of(DBP_T_INT64)), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_int(&col, 1), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_int(&col, too_big[t]), DBP_OK);
        CHECK_EQ_INT(dbp_column_promote_int64_to_float64(&col), DBP_E_DATA);
        CHECK_EQ_INT(col.type.id, DBP_T_INT64);
        CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
        CHECK_EQ_INT(int64_at(&a, 0), 1);
        CHECK_EQ_INT(int64_at(&a, 1), too_big[t]);
        a.release(&a);
        dbp_column_free(&col);
    }
}

static void test_schema(void)
{
    dbp_column col;
    CHECK_EQ_INT(dbp_column_init(&col, "created_at", type_of(DBP_T_TIMESTAMP_UTC)), DBP_OK);
    struct ArrowSchema s;
    CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_OK);
    /* The schema owns a copy of the name. */
    col.name[0] = 'X';
    CHECK(strcmp(s.name, "created_at") == 0);
    CHECK(strcmp(s.format, "tsu:UTC") == 0);
    CHECK_EQ_INT(s.flags, ARROW_FLAG_NULLABLE);
    CHECK(s.metadata == NULL);
    CHECK(s.dictionary == NULL);
    CHECK(s.children == NULL);
    s.release(&s);
    CHECK(s.release == NULL);
    dbp_column_free(&col);

    CHECK_EQ_INT(dbp_column_init(&col, "naive", type_of(DBP_T_TIMESTAMP_US)), DBP_OK);
    CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_OK);
    CHECK(strcmp(s.format, "tsu:") == 0);
    s.release(&s);
    dbp_column_free(&col);
}

/* ---- results and streams ------------------------------------------------------ */

static void check_result_schema(struct ArrowSchema *s)
{
    CHECK(strcmp(s->format, "+s") == 0);
    CHECK_EQ_INT(s->n_children, 3);
    CHECK(strcmp(s->children[0]->name, "id") == 0);
    CHECK(strcmp(s->children[0]->format, "l") == 0);
    CHECK(strcmp(s->children[1]->name, "label") == 0);
    CHECK(strcmp(s->children[1]->format, "vu") == 0);
    CHECK(strcmp(s->children[2]->name, "maybe") == 0);
    CHECK(strcmp(s->children[2]->format, "g") == 0);
    CHECK_EQ_INT(s->children[2]->flags, ARROW_FLAG_NULLABLE);
}

static void test_result_batches(void)
{
    static const char *const names[] = {"id", "label", "maybe"};
    dbp_result *res;
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_result_new(&res, 3, names, &err), DBP_OK);
    CHECK_EQ_INT(dbp_result_n_columns(res), 3);
    CHECK(dbp_result_column(res, 3) == NULL);
    dbp_column *id = dbp_result_column(res, 0);
    dbp_column *label = dbp_result_column(res, 1);
    dbp_column *maybe = dbp_result_column(res, 2);
    CHECK_EQ_INT(id->type.id, DBP_T_NULL);
    CHECK_EQ_INT(dbp_column_set_type(id, type_of(DBP_T_INT64)), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(label, type_of(DBP_T_STRING)), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(maybe, type_of(DBP_T_FLOAT64)), DBP_OK);

    /* Finishing with no rows keeps nothing. */
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_OK);
    CHECK_EQ_INT(dbp_result_total_rows(res), 0);

    /* batch 1: 3 rows, all typed */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dbp_column_append_int(id, i), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_bytes(label, "row label long enough", 21), DBP_OK);
        CHECK_EQ_INT(i == 1 ? dbp_column_append_null(maybe) : dbp_column_append_double(maybe, i),
                     DBP_OK);
    }
    CHECK_EQ_INT(dbp_result_pending_rows(res), 3);
    CHECK(dbp_result_pending_memory(res) > 0);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_OK);
    CHECK_EQ_INT(dbp_result_pending_rows(res), 0);
    CHECK_EQ_INT(dbp_result_pending_memory(res), 0);
    CHECK_EQ_INT(dbp_result_total_rows(res), 3);

    /* batch 2: "maybe" is a fresh all-NULL column; it takes type FLOAT64. */
    CHECK_EQ_INT(dbp_column_set_type(maybe, type_of(DBP_T_NULL)), DBP_OK);
    for (int i = 3; i < 5; i++) {
        CHECK_EQ_INT(dbp_column_append_int(id, i), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_bytes(label, "x", 1), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_null(maybe), DBP_OK);
    }
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_OK);
    CHECK_EQ_INT(maybe->type.id, DBP_T_FLOAT64);

    /* batch 3 stays pending and is finished by the export. */
    CHECK_EQ_INT(dbp_column_append_int(id, 5), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_null(label), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_double(maybe, 2.5), DBP_OK);
    CHECK_EQ_INT(dbp_result_total_rows(res), 6);

    struct ArrowArrayStream stream;
    CHECK_EQ_INT(dbp_result_export(res, &stream, &err), DBP_OK);

    /* Two get_schema calls give independent copies. */
    struct ArrowSchema s1, s2;
    CHECK_EQ_INT(stream.get_schema(&stream, &s1), 0);
    CHECK_EQ_INT(stream.get_schema(&stream, &s2), 0);
    check_result_schema(&s1);
    s1.release(&s1);
    CHECK(s1.release == NULL);
    check_result_schema(&s2);

    static const int64_t batch_rows[] = {3, 2, 1};
    int64_t next_id = 0;
    for (int b = 0; b < 3; b++) {
        struct ArrowArray batch;
        CHECK_EQ_INT(stream.get_next(&stream, &batch), 0);
        CHECK(batch.release != NULL);
        CHECK_EQ_INT(batch.length, batch_rows[b]);
        CHECK_EQ_INT(batch.null_count, 0);
        CHECK_EQ_INT(batch.n_buffers, 1);
        CHECK(batch.buffers[0] == NULL);
        CHECK_EQ_INT(batch.n_children, 3);
        struct ArrowArray *ids = batch.children[0];
        struct ArrowArray *labels = batch.children[1];
        struct ArrowArray *maybes = batch.children[2];
        for (int64_t i = 0; i < batch.length; i++)
            CHECK_EQ_INT(int64_at(ids, i), next_id++);
        CHECK_EQ_INT(labels->length, batch_rows[b]);
        CHECK_EQ_INT(maybes->n_buffers, 2); /* FLOAT64 layout even for all-NULL */
        if (b == 0) {
            CHECK(memcmp(view_bytes(labels, 2), "row label long enough", 21) == 0);
            CHECK_EQ_INT(maybes->null_count, 1);
        } else if (b == 1) {
            CHECK_EQ_INT(maybes->null_count, 2);
            CHECK_EQ_INT(bit_at(maybes->buffers[0], 0), 0);
            CHECK_EQ_INT(labels->n_buffers, 3);
        } else {
            CHECK_EQ_INT(labels->null_count, 1);
            CHECK(((const double *)maybes->buffers[1])[0] == 2.5);
        }
        /* A consumer may move a child out and release it on its own. */
        if (b == 2) {
            struct ArrowArray moved = *batch.children[1];
            batch.children[1]->release = NULL;
            moved.release(&moved);
        }
        batch.release(&batch);
        CHECK(batch.release == NULL);
    }
    struct ArrowArray end;
    CHECK_EQ_INT(stream.get_next(&stream, &end), 0);
    CHECK(end.release == NULL);
    CHECK_EQ_INT(stream.get_next(&stream, &end), 0);
    CHECK(end.release == NULL);
    CHECK(stream.get_last_error(&stream) == NULL);
    stream.release(&stream);
    CHECK(stream.release == NULL);
    /* The schema copy outlives the stream. */
    check_result_schema(&s2);
    s2.release(&s2);
}

static void test_result_unread_batches_freed(void)
{
    static const char *const names[] = {"v"};
    dbp_result *res;
    CHECK_EQ_INT(dbp_result_new(&res, 1, names, NULL), DBP_OK);
    dbp_column *v = dbp_result_column(res, 0);
    CHECK_EQ_INT(dbp_column_set_type(v, type_of(DBP_T_BINARY)), DBP_OK);
    for (int b = 0; b < 20; b++) {
        CHECK_EQ_INT(dbp_column_append_bytes(v, "some bytes over twelve", 22), DBP_OK);
        CHECK_EQ_INT(dbp_result_finish_batch(res, NULL), DBP_OK);
    }
    struct ArrowArrayStream stream;
    CHECK_EQ_INT(dbp_result_export(res, &stream, NULL), DBP_OK);
    struct ArrowArray batch;
    CHECK_EQ_INT(stream.get_next(&stream, &batch), 0);
    batch.release(&batch);
    stream.release(&stream); /* 19 batches never read: freed here */

    /* and a result freed without exporting */
    CHECK_EQ_INT(dbp_result_new(&res, 1, names, NULL), DBP_OK);
    v = dbp_result_column(res, 0);
    CHECK_EQ_INT(dbp_column_set_type(v, type_of(DBP_T_BOOL)), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bool(v, 1), DBP_OK);
    CHECK_EQ_INT(dbp_result_finish_batch(res, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_bool(v, 0), DBP_OK);
    dbp_result_free(res);
    dbp_result_free(NULL);
}

static void test_result_type_clash(void)
{
    static const char *const names[] = {"a", "amount"};
    dbp_result *res;
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_result_new(&res, 2, names, &err), DBP_OK);
    dbp_column *a = dbp_result_column(res, 0);
    dbp_column *amount = dbp_result_column(res, 1);
    CHECK_EQ_INT(dbp_column_set_type(a, type_of(DBP_T_INT32)), DBP_OK);
    dbp_type dec = {.id = DBP_T_DECIMAL128, .precision = 10, .scale = 2};
    CHECK_EQ_INT(dbp_column_set_type(amount, dec), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_int(a, 1), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_decimal(amount, 100), DBP_OK);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_OK);

    /* A decimal of another scale is another type. */
    CHECK_EQ_INT(dbp_column_append_int(a, 2), DBP_OK);
    dec.scale = 3;
    CHECK_EQ_INT(dbp_column_set_type(amount, dec), DBP_OK);
    CHECK_EQ_INT(dbp_column_append_decimal(amount, 100), DBP_OK);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_E_DATA);
    CHECK_EQ_INT(err.category, DBP_E_DATA);
    CHECK(strstr(err.message, "\"amount\"") != NULL);
    /* the pending batch is intact after the refusal */
    CHECK_EQ_INT(dbp_result_pending_rows(res), 1);
    CHECK_EQ_INT(a->length, 1);

    /* Columns of unequal length are a caller error. */
    CHECK_EQ_INT(dbp_column_append_int(a, 3), DBP_OK);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_E_MISUSE);

    /* Export fails the same way and still consumes the result. */
    struct ArrowArrayStream stream;
    CHECK_EQ_INT(dbp_result_export(res, &stream, &err), DBP_E_MISUSE);
    CHECK(stream.release == NULL);
}

static void test_empty_result(void)
{
    static const char *const names[] = {"when", "what"};
    dbp_result *res;
    CHECK_EQ_INT(dbp_result_new(&res, 2, names, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_column_set_type(dbp_result_column(res, 0), type_of(DBP_T_DATE32)), DBP_OK);
    struct ArrowArrayStream stream;
    CHECK_EQ_INT(dbp_result_export(res, &stream, NULL), DBP_OK);
    struct ArrowSchema s;
    CHECK_EQ_INT(stream.get_schema(&stream, &s), 0);
    CHECK_EQ_INT(s.n_children, 2);
    CHECK(strcmp(s.children[0]->format, "tdD") == 0);
    CHECK(strcmp(s.children[1]->format, "n") == 0); /* never typed */
    CHECK(strcmp(s.children[1]->name, "what") == 0);
    s.release(&s);
    struct ArrowArray end;
    CHECK_EQ_INT(stream.get_next(&stream, &end), 0);
    CHECK(end.release == NULL);
    stream.release(&stream);

    /* No columns at all. */
    CHECK_EQ_INT(dbp_result_new(&res, 0, NULL, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_result_export(res, &stream, NULL), DBP_OK);
    CHECK_EQ_INT(stream.get_schema(&stream, &s), 0);
    CHECK_EQ_INT(s.n_children, 0);
    s.release(&s);
    stream.release(&stream);
}

/* ---- allocation failures -------------------------------------------------------- */

/* A full build + export + read of a result with every kind of column. Returns
 * DBP_OK or the first failure; everything is freed either way. */
static int build_and_read_everything(int64_t *rows_read)
{
    static const char *const names[] = {"i", "s", "b", "d", "n", "t"};
    static char long_value[3000];
    memset(long_value, 'q', sizeof long_value);
    *rows_read = 0;

    dbp_result *res;
    dbp_error err;
    int rc = dbp_result_new(&res, 6, names, &err);
    if (rc != DBP_OK)
        return rc;
    dbp_column *cols[6];
    for (int c = 0; c < 6; c++)
        cols[c] = dbp_result_column(res, c);
    const dbp_type types[6] = {
        type_of(DBP_T_INT64), type_of(DBP_T_STRING), type_of(DBP_T_BOOL),
        {.id = DBP_T_DECIMAL128, .precision = 20, .scale = 2}, type_of(DBP_T_NULL),
        type_of(DBP_T_TIMESTAMP_UTC),
    };
    for (int c = 0; c < 6; c++) {
        if ((rc = dbp_column_set_type(cols[c], types[c])) != DBP_OK)
            goto fail;
    }
    for (int batch = 0; batch < 3; batch++) {
        for (int row = 0; row < 100; row++) {
            int null = row % 7 == 3;
            if ((rc = null ? dbp_column_append_null(cols[0]) : dbp_column_append_int(cols[0], row)))
                goto fail;
            rc = null ? dbp_column_append_null(cols[1])
                      : dbp_column_append_bytes(cols[1], long_value, row % 2 ? 5 : sizeof long_value);
            if (rc)
                goto fail;
            if ((rc = null ? dbp_column_append_null(cols[2]) : dbp_column_append_bool(cols[2], row & 1)))
                goto fail;
            if ((rc = null ? dbp_column_append_null(cols[3]) : dbp_column_append_decimal(cols[3], row)))
                goto fail;
            if ((rc = dbp_column_append_null(cols[4])))
                goto fail;
            if ((rc = dbp_column_append_int(cols[5], row * 1000000LL)))
                goto fail;
        }
        if ((rc = dbp_result_finish_batch(res, &err)) != DBP_OK)
            goto fail;
    }
    /* one pending row, left for the export */
    if ((rc = dbp_column_append_int(cols[0], 1)) || (rc = dbp_column_append_null(cols[1])) ||
        (rc = dbp_column_append_bool(cols[2], 1)) || (rc = dbp_column_append_decimal(cols[3], 1)) ||
        (rc = dbp_column_append_null(cols[4])) || (rc = dbp_column_append_int(cols[5], 1)))
        goto fail;

    struct ArrowArrayStream stream;
    rc = dbp_result_export(res, &stream, &err);
    res = NULL; /* consumed */
    if (rc != DBP_OK) {
        CHECK(stream.release == NULL);
        return rc;
    }
    struct ArrowSchema schema;
    if (stream.get_schema(&stream, &schema) != 0) {
        CHECK(stream.get_last_error(&stream) != NULL);
        stream.release(&stream);
        return DBP_E_NOMEM;
    }
    schema.release(&schema);
    for (;;) {
        struct ArrowArray batch;
        CHECK_EQ_INT(stream.get_next(&stream, &batch), 0);
        if (!batch.release)
            break;
        *rows_read += batch.length;
        batch.release(&batch);
    }
    stream.release(&stream);
    return DBP_OK;

fail:
    dbp_result_free(res);
    return rc;
}

static void test_alloc_failures_result(void)
{
    int64_t rows = 0;
    int succeeded = 0;
    long n;
    for (n = 1; n < 10000 && !succeeded; n++) {
        dbp_alloc_fail_after(n);
        int rc = build_and_read_everything(&rows);
        dbp_alloc_fail_reset();
        if (rc == DBP_OK)
            succeeded = 1;
        else
            CHECK_EQ_INT(rc, DBP_E_NOMEM);
    }
    CHECK(succeeded);
    CHECK(n > 20); /* the sequence does allocate a fair amount */
    CHECK_EQ_INT(rows, 301);
}

/* Each single append under a failing allocator leaves the column as it was:
 * the exported result equals one built without failures. */
static void test_alloc_failures_column(void)
{
    static const dbp_type_id ids[] = {DBP_T_INT16, DBP_T_BOOL, DBP_T_STRING, DBP_T_DECIMAL128,
                                      DBP_T_FLOAT32};
    char long_value[100];
    memset(long_value, 'L', sizeof long_value);
    for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++) {
        dbp_column col;
        CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(ids[t])), DBP_OK);
        int failures = 0;
        for (int row = 0; row < 300; row++) {
            int rc;
            /* fail the 1st, then the 2nd, ... allocation until the append gets through */
            for (long n = 1;; n++) {
                dbp_alloc_fail_after(n);
                int null = row % 5 == 4;
                if (null)
                    rc = dbp_column_append_null(&col);
                else if (ids[t] == DBP_T_BOOL)
                    rc = dbp_column_append_bool(&col, row % 2);
                else if (ids[t] == DBP_T_STRING)
                    rc = dbp_column_append_bytes(&col, long_value, 13 + row % 80);
                else if (ids[t] == DBP_T_DECIMAL128)
                    rc = dbp_column_append_decimal(&col, row);
                else if (ids[t] == DBP_T_FLOAT32)
                    rc = dbp_column_append_double(&col, row);
                else
                    rc = dbp_column_append_int(&col, row);
                dbp_alloc_fail_reset();
                if (rc == DBP_OK)
                    break;
                CHECK_EQ_INT(rc, DBP_E_NOMEM);
                CHECK_EQ_INT(col.length, row);
                failures++;
            }
        }
        CHECK(failures > 0);
        struct ArrowArray a;
        dbp_alloc_fail_after(1);
        CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_E_NOMEM);
        dbp_alloc_fail_reset();
        CHECK_EQ_INT(col.length, 300);
        CHECK_EQ_INT(dbp_column_finish(&col, &a), DBP_OK);
        CHECK_EQ_INT(a.length, 300);
        CHECK_EQ_INT(a.null_count, 60);
        for (int row = 0; row < 300; row++) {
            int valid = row % 5 != 4;
            CHECK_EQ_INT(bit_at(a.buffers[0], row), valid);
            if (!valid)
                continue;
            if (ids[t] == DBP_T_BOOL) {
                CHECK_EQ_INT(bit_at(a.buffers[1], row), row % 2);
            } else if (ids[t] == DBP_T_STRING) {
                CHECK_EQ_INT(view_at(&a, row).length, 13 + row % 80);
                CHECK(memcmp(view_bytes(&a, row), long_value, 13 + row % 80) == 0);
            } else if (ids[t] == DBP_T_DECIMAL128) {
                __int128 v;
                memcpy(&v, (const uint8_t *)a.buffers[1] + row * 16, 16);
                CHECK(v == row);
            } else if (ids[t] == DBP_T_FLOAT32) {
                CHECK(((const float *)a.buffers[1])[row] == (float)row);
            } else {
                CHECK_EQ_INT(((const int16_t *)a.buffers[1])[row], row);
            }
        }
        a.release(&a);

        /* schema, init and set_type fail cleanly too */
        struct ArrowSchema s;
        dbp_alloc_fail_after(1);
        CHECK_EQ_INT(dbp_column_schema(&col, &s), DBP_E_NOMEM);
        dbp_alloc_fail_reset();
        dbp_column_free(&col);

        dbp_alloc_fail_after(1);
        CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(DBP_T_NULL)), DBP_E_NOMEM);
        dbp_alloc_fail_reset();
        dbp_column_free(&col);
        CHECK_EQ_INT(dbp_column_init(&col, "c", type_of(DBP_T_NULL)), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_null(&col), DBP_OK);
        dbp_alloc_fail_after(1);
        CHECK_EQ_INT(dbp_column_set_type(&col, type_of(ids[t])), DBP_E_NOMEM);
        dbp_alloc_fail_reset();
        CHECK_EQ_INT(col.type.id, DBP_T_NULL);
        CHECK_EQ_INT(col.length, 1);
        dbp_column_free(&col);
    }
}

/* A column that cannot finish half-way through a batch makes the result
 * refuse to export rather than hand out a batch with missing rows. */
static void test_alloc_failure_mid_batch(void)
{
    static const char *const names[] = {"a", "b"};
    dbp_result *res;
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_result_new(&res, 2, names, &err), DBP_OK);
    for (int c = 0; c < 2; c++) {
        dbp_column *col = dbp_result_column(res, c);
        CHECK_EQ_INT(dbp_column_set_type(col, type_of(DBP_T_INT64)), DBP_OK);
        CHECK_EQ_INT(dbp_column_append_int(col, c), DBP_OK);
    }
    /* allocations: batch slot, batch private, child pointers, column a, column b */
    dbp_alloc_fail_after(5);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_E_NOMEM);
    dbp_alloc_fail_reset();
    CHECK_EQ_INT(err.category, DBP_E_NOMEM);
    CHECK_EQ_INT(dbp_result_finish_batch(res, &err), DBP_E_NOMEM);
    struct ArrowArrayStream stream;
    CHECK_EQ_INT(dbp_result_export(res, &stream, &err), DBP_E_NOMEM);
    CHECK(stream.release == NULL);
}

int main(void)
{
    RUN(test_type_formats);
    RUN(test_integer_types);
    RUN(test_no_nulls_has_no_validity);
    RUN(test_validity_after_many_values);
    RUN(test_floats);
    RUN(test_bool);
    RUN(test_decimal);
    RUN(test_string_views);
    RUN(test_binary_views);
    RUN(test_multiple_data_buffers);
    RUN(test_too_long_value);
    RUN(test_finish_twice);
    RUN(test_null_column);
    RUN(test_set_type);
    RUN(test_promote);
    RUN(test_schema);
    RUN(test_result_batches);
    RUN(test_result_unread_batches_freed);
    RUN(test_result_type_clash);
    RUN(test_empty_result);
    RUN(test_alloc_failures_result);
    RUN(test_alloc_failures_column);
    RUN(test_alloc_failure_mid_batch);
    return check_exit();
}
