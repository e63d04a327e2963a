/* test_arrow_input.c - arrays that break the Arrow format's rules are
 * refused by dbp_arrow_walk before any of their cells is read outside a
 * buffer (each case was found by tests/fuzz/fuzz_arrow_input.c). Buffers
 * are exactly as large as the arrays' lengths make them, so a read past
 * one is an ASan report in `make c-test`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrow_input.h"
#include "check.h"
#include "error.h"

/* ---- a one-column table of one batch, as a stream ------------------------ */

typedef struct table {
    struct ArrowSchema column_schema, schema;
    struct ArrowSchema *schema_children[1];
    struct ArrowArray column, batch;
    struct ArrowArray *children[1];
    int sent;
} table;

static void release_schema(struct ArrowSchema *s) { s->release = NULL; }
static void release_array(struct ArrowArray *a) { a->release = NULL; }

static int get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out)
{
    *out = ((table *)s->private_data)->schema;
    out->release = release_schema;
    return 0;
}

static int get_next(struct ArrowArrayStream *s, struct ArrowArray *out)
{
    table *t = s->private_data;
    memset(out, 0, sizeof *out);
    if (!t->sent++) {
        *out = t->batch;
        out->release = release_array;
    }
    return 0;
}

static int on_columns(void *arg, size_t n, const char *const *names,
                      const dbp_value_kind *kinds, dbp_error *err)
{
    (void)arg, (void)n, (void)names, (void)kinds, (void)err;
    return DBP_OK;
}

/* Reads every byte of every cell, as a bulk loader would. */
static int on_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    (void)err;
    for (size_t c = 0; c < n; c++)
        if (cells[c].kind == DBP_V_TEXT || cells[c].kind == DBP_V_BLOB)
            for (size_t i = 0; i < cells[c].len; i++)
                *(unsigned *)arg += (unsigned char)cells[c].data[i];
    return DBP_OK;
}

/* A table whose one column `a` of `format` is `column`; the batch has the
 * column's length. */
static void table_init(table *t, const char *format, struct ArrowArray column)
{
    memset(t, 0, sizeof *t);
    t->column_schema.format = format;
    t->column_schema.name = "a";
    t->schema_children[0] = &t->column_schema;
    t->schema.format = "+s";
    t->schema.n_children = 1;
    t->schema.children = t->schema_children;
    t->column = column;
    t->children[0] = &t->column;
    t->batch.length = column.length;
    t->batch.n_children = 1;
    t->batch.children = t->children;
}

/* Walks the table; *rows gets the rows fed to the sink. */
static int walk(table *t, int64_t *rows, dbp_error *err)
{
    struct ArrowArrayStream stream = {get_schema, get_next, NULL, NULL, t};
    unsigned sum = 0;
    dbp_frame_sink sink = {on_columns, on_row, &sum};
    return dbp_arrow_walk(&stream, &sink, NULL, rows, err);
}

/* Checks that walking the table fails as invalid Arrow with `what` in the
 * message, before any row is fed. */
static void check_refused(table *t, const char *what)
{
    int64_t rows = -1;
    dbp_error err;
    CHECK_EQ_INT(walk(t, &rows, &err), DBP_E_PROTOCOL);
    CHECK_EQ_INT(rows, 0);
    if (!strstr(err.message, what))
        fprintf(stderr, "  message: %s\n", err.message);
    CHECK(strstr(err.message, what) != NULL);
}

/* A heap copy of exactly `size` bytes, so a read past them is an ASan report. */
static void *exact(const void *bytes, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (size)
        memcpy(p, bytes, size);
    return p;
}

/* ---- the cases ----------------------------------------------------------------- */

/* Well-formed arrays of the layouts below are read whole. */
static void test_valid_arrays_are_read(void)
{
    int32_t *offsets = exact((int32_t[]){0, 2, 5}, 12);
    char *data = exact("abcde", 5);
    table t;
    table_init(&t, "u", (struct ArrowArray){.length = 2, .n_buffers = 3,
                                            .buffers = (const void *[]){NULL, offsets, data}});
    int64_t rows = 0;
    dbp_error err;
    CHECK_EQ_INT(walk(&t, &rows, &err), DBP_OK);
    CHECK_EQ_INT(rows, 2);

    /* a view inline and one in data buffer 0 */
    uint8_t views[32] = {0};
    int32_t inline_len = 3, long_len = 20, buffer = 0, offset = 10;
    memcpy(views, &inline_len, 4);
    memcpy(views + 4, "xyz", 3);
    memcpy(views + 16, &long_len, 4);
    memcpy(views + 24, &buffer, 4);
    memcpy(views + 28, &offset, 4);
    char *long_data = exact("0123456789abcdefghijklmnopqrst", 30);
    int64_t *sizes = exact((int64_t[]){30}, 8);
    uint8_t *views_copy = exact(views, sizeof views);
    table_init(&t, "vu", (struct ArrowArray){.length = 2, .n_buffers = 4,
                                             .buffers = (const void *[]){NULL, views_copy,
                                                                         long_data, sizes}});
    CHECK_EQ_INT(walk(&t, &rows, &err), DBP_OK);
    CHECK_EQ_INT(rows, 2);
    free(offsets);
    free(data);
    free(long_data);
    free(sizes);
    free(views_copy);
}

/* An int64 column with only its validity buffer: buffers[1] does not exist. */
static void test_fewer_buffers_than_the_layout(void)
{
    const void **buffers = exact((const void *[]){NULL}, sizeof(void *));
    table t;
    table_init(&t, "l", (struct ArrowArray){.length = 2, .n_buffers = 1, .buffers = buffers});
    check_refused(&t, "fewer buffers");
    free(buffers);
}

/* The batch's offset moves every column's rows: negative, or so large that
 * offset + length overflows, it must be refused, not read. */
static void test_batch_offset_negative_or_overflowing(void)
{
    int64_t *values = exact((int64_t[]){1, 2}, 16);
    table t;
    table_init(&t, "l", (struct ArrowArray){.length = 2, .n_buffers = 2,
                                            .buffers = (const void *[]){NULL, values}});
    t.batch.offset = -1;
    check_refused(&t, "a batch has offset -1");
    table_init(&t, "l", (struct ArrowArray){.length = 2, .n_buffers = 2,
                                            .buffers = (const void *[]){NULL, values}});
    t.batch.offset = INT64_MAX;
    check_refused(&t, "a batch has offset");
    free(values);
}

/* A dictionary whose own offset is negative: index 0 would read before its
 * values. */
static void test_dictionary_negative_offset(void)
{
    int8_t *indices = exact((int8_t[]){0, 1}, 2);
    int64_t *values = exact((int64_t[]){10, 20}, 16);
    struct ArrowArray dictionary = {.length = 2, .offset = -1, .n_buffers = 2,
                                    .buffers = (const void *[]){NULL, values}};
    struct ArrowSchema dictionary_schema = {.format = "l", .name = "values"};
    table t;
    table_init(&t, "c", (struct ArrowArray){.length = 2, .n_buffers = 2,
                                            .buffers = (const void *[]){NULL, indices},
                                            .dictionary = &dictionary});
    t.column_schema.dictionary = &dictionary_schema;
    check_refused(&t, "negative offset");
    free(indices);
    free(values);
}

/* Offsets 0, 100, 5: the data buffer holds 5 bytes (the last offset), so
 * row 0's 100 bytes must be refused before it is handed over, not only
 * row 1 whose offsets go backwards. */
static void test_string_offset_past_the_last(void)
{
    int32_t *offsets = exact((int32_t[]){0, 100, 5}, 12);
    char *data = exact("abcde", 5);
    table t;
    table_init(&t, "u", (struct ArrowArray){.length = 2, .n_buffers = 3,
                                            .buffers = (const void *[]){NULL, offsets, data}});
    check_refused(&t, "offsets go backwards");
    int64_t *wide = exact((int64_t[]){0, 100, 5}, 24);
    table_init(&t, "U", (struct ArrowArray){.length = 2, .n_buffers = 3,
                                            .buffers = (const void *[]){NULL, wide, data}});
    check_refused(&t, "offsets go backwards");
    free(offsets);
    free(wide);
    free(data);
}

/* A string view of length -1 is not an inline string of 2^64 - 1 bytes. */
static void test_view_negative_length(void)
{
    uint8_t view[16] = {0};
    int32_t len = -1;
    memcpy(view, &len, 4);
    uint8_t *views = exact(view, sizeof view);
    int64_t *sizes = exact(NULL, 0);
    table t;
    table_init(&t, "vu", (struct ArrowArray){.length = 1, .n_buffers = 3,
                                             .buffers = (const void *[]){NULL, views, sizes}});
    check_refused(&t, "negative length");
    free(views);
    free(sizes);
}

/* With one data buffer (n_buffers 4), buffer index 1 names the sizes
 * buffer itself, whose one entry has no index 1. */
static void test_view_buffer_index_one_past(void)
{
    uint8_t view[16] = {0};
    int32_t len = 20, buffer = 1, offset = 0;
    memcpy(view, &len, 4);
    memcpy(view + 8, &buffer, 4);
    memcpy(view + 12, &offset, 4);
    uint8_t *views = exact(view, sizeof view);
    char *data = exact("0123456789abcdefghijklmnopqrst", 30);
    int64_t *sizes = exact((int64_t[]){30}, 8);
    table t;
    table_init(&t, "vu", (struct ArrowArray){.length = 1, .n_buffers = 4,
                                             .buffers = (const void *[]){NULL, views, data,
                                                                         sizes}});
    check_refused(&t, "missing buffer");
    free(views);
    free(data);
    free(sizes);
}

/* A buffer may be NULL only where it holds no bytes: a NULL values buffer
 * of a non-empty array, a NULL string data buffer under non-empty strings,
 * a NULL view data buffer or sizes buffer are refused, not dereferenced;
 * empty strings over a NULL data buffer are read as empty. */
static void test_null_buffers(void)
{
    table t;
    table_init(&t, "l", (struct ArrowArray){.length = 2, .n_buffers = 2,
                                            .buffers = (const void *[]){NULL, NULL}});
    check_refused(&t, "is NULL");

    int32_t *offsets = exact((int32_t[]){0, 3, 3}, 12);
    table_init(&t, "u", (struct ArrowArray){.length = 2, .n_buffers = 3,
                                            .buffers = (const void *[]){NULL, offsets, NULL}});
    check_refused(&t, "is NULL");
    int32_t *empty = exact((int32_t[]){0, 0, 0}, 12);
    table_init(&t, "u", (struct ArrowArray){.length = 2, .n_buffers = 3,
                                            .buffers = (const void *[]){NULL, empty, NULL}});
    int64_t rows = 0;
    dbp_error err;
    CHECK_EQ_INT(walk(&t, &rows, &err), DBP_OK);
    CHECK_EQ_INT(rows, 2);

    uint8_t view[16] = {0};
    int32_t len = 20, buffer = 0, offset = 0;
    memcpy(view, &len, 4);
    memcpy(view + 8, &buffer, 4);
    memcpy(view + 12, &offset, 4);
    uint8_t *views = exact(view, sizeof view);
    int64_t *sizes = exact((int64_t[]){30}, 8);
    table_init(&t, "vu", (struct ArrowArray){.length = 1, .n_buffers = 4,
                                             .buffers = (const void *[]){NULL, views, NULL,
                                                                         sizes}});
    check_refused(&t, "is NULL");
    char *data = exact("0123456789abcdefghijklmnopqrst", 30);
    table_init(&t, "vu", (struct ArrowArray){.length = 1, .n_buffers = 4,
                                             .buffers = (const void *[]){NULL, views, data,
                                                                         NULL}});
    check_refused(&t, "is NULL");
    free(offsets);
    free(empty);
    free(views);
    free(sizes);
    free(data);
}

/* A dictionary whose values name themselves as their dictionary (a broken
 * producer) is refused, not followed until the stack runs out. */
static void test_dictionary_of_itself(void)
{
    int8_t *indices = exact((int8_t[]){0}, 1);
    int64_t *values = exact((int64_t[]){10}, 8);
    struct ArrowSchema dictionary_schema = {.format = "c", .name = "values"};
    dictionary_schema.dictionary = &dictionary_schema;
    struct ArrowArray dictionary = {.length = 1, .n_buffers = 2,
                                    .buffers = (const void *[]){NULL, values}};
    dictionary.dictionary = &dictionary;
    table t;
    table_init(&t, "c", (struct ArrowArray){.length = 1, .n_buffers = 2,
                                            .buffers = (const void *[]){NULL, indices},
                                            .dictionary = &dictionary});
    t.column_schema.dictionary = &dictionary_schema;
    int64_t rows = -1;
    dbp_error err;
    CHECK_EQ_INT(walk(&t, &rows, &err), DBP_E_DATA);
    CHECK_EQ_INT(rows, 0);
    CHECK(strstr(err.message, "dictionary of a dictionary") != NULL);
    free(indices);
    free(values);
}

int main(void)
{
    RUN(test_valid_arrays_are_read);
    RUN(test_fewer_buffers_than_the_layout);
    RUN(test_batch_offset_negative_or_overflowing);
    RUN(test_dictionary_negative_offset);
    RUN(test_string_offset_past_the_last);
    RUN(test_view_negative_length);
    RUN(test_view_buffer_index_one_past);
    RUN(test_null_buffers);
    RUN(test_dictionary_of_itself);
    return check_exit();
}
