/* fuzz_arrow_input.c - libFuzzer harness for the checks arrow_input.c does
 * on a caller's Arrow arrays (write_frame) before and while reading them.
 *
 * The input describes a table of one to three columns and one batch of
 * it: each column's format (from the formats the reader knows, a few it
 * refuses, or a raw string), a dictionary, length, offset, null count,
 * buffer count, and every byte of every buffer. The table goes through
 * dbp_arrow_walk as a stream, and the sink reads every byte of every cell
 * it is handed. Findings: a sanitizer report (a read outside a buffer) or
 * a result other than OK, DATA, PROTOCOL or MISUSE.
 *
 * What the reader can promise, and so what the harness holds fixed: the
 * Arrow C ABI carries no buffer sizes, so each buffer is exactly as large
 * as the array's declared length and offset make it under the format's
 * layout (validity and booleans a bit per slot, fixed widths, offsets
 * length + 1, a string's data buffer as large as its last offset says, a
 * view's data buffers as large as its sizes buffer says). Everything else
 * comes from the input: offsets and views (going backwards, past the end,
 * negative), dictionary indices, null counts, buffer counts, NULL buffers,
 * a dictionary whose values name themselves as their dictionary, negative
 * offsets, batch offsets and lengths of any size. Lengths and offsets of
 * the columns stay small, since their buffers are allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow_input.h"
#include "error.h"

/* ---- reading the input ------------------------------------------------------- */

typedef struct input {
    const uint8_t *p;
    size_t left;
} input;

static uint64_t take(input *in, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && in->left; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static void take_bytes(input *in, void *out, size_t n)
{
    size_t have = n < in->left ? n : in->left;
    memcpy(out, in->p, have);
    memset((char *)out + have, 0, n - have);
    in->p += have;
    in->left -= have;
}

/* ---- everything allocated for one input, freed together -------------------- */

/* An input allocates at most about 70 blocks (3 columns, each with a
 * dictionary, each of those with up to 10 buffers and headers). */
#define MAX_ALLOCS 256
static void *allocs[MAX_ALLOCS];
static size_t n_allocs;

/* Exactly `size` zeroed bytes, so ASan reports a read past them. */
static void *alloc(size_t size)
{
    void *p = n_allocs < MAX_ALLOCS ? calloc(1, size) : NULL;
    if (!p)
        abort(); /* the harness's own limit, not a finding */
    allocs[n_allocs++] = p;
    return p;
}

static void *alloc_filled(input *in, size_t size)
{
    void *p = alloc(size);
    take_bytes(in, p, size);
    return p;
}

static void free_all(void)
{
    while (n_allocs)
        free(allocs[--n_allocs]);
}

/* ---- building one column ----------------------------------------------------- */

static const char *const formats[] = {
    "n",    "b",     "c",     "s",     "i",      "l",        "C",       "S",
    "I",    "L",     "f",     "g",     "u",      "U",        "z",       "Z",
    "vu",   "vz",    "tdD",   "tdm",   "tts",    "ttm",      "ttu",     "ttn",
    "tss:", "tsm:",  "tsu:",  "tsn:",  "tsu:UTC", "d:38,10", "d:5,2",   "d:10,0,128",
    "d:38,38", "d:9,2,256", "tDs", "tDm", "tDu",  "tDn",     "+l",      "w:4",
    "+s",
};
#define N_FORMATS (sizeof formats / sizeof formats[0])
/* dictionary index types */
static const char *const index_formats[] = {"c", "s", "i", "l", "C", "S", "I", "L"};

/* Bytes of one value slot of a fixed-width format; 0 for other layouts. */
static size_t slot_width(const char *f)
{
    if (strchr("cC", f[0]) && !f[1])
        return 1;
    if (strchr("sS", f[0]) && !f[1])
        return 2;
    if (strchr("iIf", f[0]) && !f[1])
        return 4;
    if (strchr("lLg", f[0]) && !f[1])
        return 8;
    if (strcmp(f, "tdD") == 0 || strcmp(f, "tts") == 0 || strcmp(f, "ttm") == 0)
        return 4;
    if (strcmp(f, "tdm") == 0 || strcmp(f, "ttu") == 0 || strcmp(f, "ttn") == 0 ||
        strncmp(f, "ts", 2) == 0 || strncmp(f, "tD", 2) == 0)
        return 8;
    if (f[0] == 'd' && f[1] == ':')
        return 16;
    return 0;
}

/* The buffer count the format's layout has. */
static int64_t layout_buffers(const char *f)
{
    if (strcmp(f, "n") == 0)
        return 0;
    if (strchr("uUzZ", f[0]) && !f[1])
        return 3;
    if (f[0] == 'v' && (f[1] == 'u' || f[1] == 'z') && !f[2])
        return 3; /* plus the data buffers */
    return 2;
}

/* Fills a string array's offsets buffer (`wide`: 64-bit offsets); returns
 * the size of its data buffer, which the last offset declares. */
static size_t fill_offsets(input *in, void *buf, int64_t slots, int wide)
{
    /* Most offsets are small numbers; a flag makes them any value. */
    int wild = (int)take(in, 1) & 1;
    int64_t last = (int16_t)take(in, 2) % 4097;
    for (int64_t i = 0; i <= slots; i++) {
        int64_t v = i == slots ? last
                    : wild     ? (int64_t)take(in, wide ? 8 : 4)
                               : (int16_t)take(in, 2);
        if (wide)
            ((int64_t *)buf)[i] = v;
        else
            ((int32_t *)buf)[i] = (int32_t)v;
    }
    return last > 0 ? (size_t)last : 0;
}

static struct ArrowSchema *new_schema(const char *format, const char *name)
{
    struct ArrowSchema *s = alloc(sizeof *s);
    s->format = format;
    s->name = name;
    return s;
}

/* Builds one column (depth 1: a dictionary's values). */
static void build_column(input *in, int depth, struct ArrowSchema **schema_out,
                        struct ArrowArray **array_out)
{
    uint8_t pick = (uint8_t)take(in, 1), flags = (uint8_t)take(in, 1);
    const char *format;
    if (pick == 0xff) { /* a raw format string of up to 11 characters */
        char *raw = alloc(12);
        take_bytes(in, raw, 11);
        raw[11] = '\0';
        format = raw;
    } else {
        format = formats[pick % N_FORMATS];
    }
    int dictionary = depth == 0 && (flags & 1);
    if (dictionary)
        format = index_formats[(pick >> 3) % 8];
    struct ArrowSchema *schema = new_schema(format, depth ? "values" : "col");
    struct ArrowArray *a = alloc(sizeof *a);
    a->length = (int64_t)take(in, 1) % 48;
    a->offset = (int8_t)take(in, 1) % 16; /* negative ones must be refused */
    int64_t slots = a->length + (a->offset > 0 ? a->offset : 0);
    a->null_count = flags & 2 ? -1 : flags & 4 ? (int64_t)take(in, 1) : 0;
    a->n_buffers = flags & 8 ? (int64_t)take(in, 1) % 6 : layout_buffers(format);
    int is_view = format[0] == 'v' && (format[1] == 'u' || format[1] == 'z') && !format[2];
    size_t n_data = 0;
    if (is_view && !(flags & 8)) /* data buffers between the views and their sizes */
        a->n_buffers += (n_data = (size_t)take(in, 1) % 3);
    else if (is_view && a->n_buffers > 3)
        n_data = (size_t)a->n_buffers - 3;
    const void **buffers = alloc(sizeof *buffers * (size_t)a->n_buffers);
    a->buffers = buffers;
    size_t bits = (size_t)(slots + 7) / 8;
    if (a->n_buffers > 0)
        buffers[0] = flags & 16 ? alloc_filled(in, bits) : NULL;
    if (a->n_buffers > 1) {
        size_t width = slot_width(format);
        if (strcmp(format, "b") == 0) {
            buffers[1] = alloc_filled(in, bits);
        } else if (width) {
            buffers[1] = alloc_filled(in, (size_t)slots * width);
        } else if (is_view) {
            buffers[1] = alloc_filled(in, (size_t)slots * 16);
        } else if (strchr("uUzZ", format[0]) && !format[1]) {
            int wide = format[0] == 'U' || format[0] == 'Z';
            void *offsets = alloc((size_t)(slots + 1) * (wide ? 8 : 4));
            size_t data_size = fill_offsets(in, offsets, slots, wide);
            buffers[1] = offsets;
            if (a->n_buffers > 2)
                buffers[2] = alloc_filled(in, data_size);
        }
    }
    if (is_view && a->n_buffers >= 3) {
        int64_t *sizes = alloc(n_data * 8);
        for (size_t b = 0; b < n_data; b++) {
            sizes[b] = (int64_t)(take(in, 2) % 4097);
            buffers[2 + b] = alloc_filled(in, (size_t)sizes[b]);
        }
        buffers[a->n_buffers - 1] = sizes;
    }
    if ((flags & 32) && a->n_buffers > 1) /* a NULL buffer: allowed where its size is 0 */
        buffers[1 + (size_t)take(in, 1) % (size_t)(a->n_buffers - 1)] = NULL;
    if (dictionary)
        build_column(in, 1, &schema->dictionary, &a->dictionary);
    if (depth == 1 && (flags & 64)) { /* a broken producer's dictionary of itself */
        schema->dictionary = schema;
        a->dictionary = a;
    }
    *schema_out = schema;
    *array_out = a;
}

/* ---- the stream ------------------------------------------------------------------ */

typedef struct table {
    struct ArrowSchema schema;
    struct ArrowArray batch;
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

static const char *last_error(struct ArrowArrayStream *s)
{
    (void)s;
    return "fuzz";
}

/* ---- the sink: touches every byte it is handed -------------------------------- */

static volatile uint8_t sink_sum;

static int on_columns(void *arg, size_t n, const char *const *names,
                      const dbp_value_kind *kinds, dbp_error *err)
{
    (void)arg, (void)kinds, (void)err;
    for (size_t i = 0; i < n; i++)
        sink_sum += (uint8_t)strlen(names[i]);
    return DBP_OK;
}

static int on_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    (void)arg, (void)err;
    for (size_t c = 0; c < n; c++) {
        const dbp_cell *cell = &cells[c];
        if (cell->kind == DBP_V_TEXT || cell->kind == DBP_V_BLOB || cell->kind == DBP_V_DECIMAL)
            for (size_t i = 0; i < cell->len; i++)
                sink_sum += (uint8_t)cell->data[i];
    }
    return DBP_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    uint8_t head = (uint8_t)take(&in, 1);
    int64_t n_cols = 1 + head % 3;
    struct ArrowSchema **schema_children = alloc(sizeof(void *) * 3);
    struct ArrowArray **children = alloc(sizeof(void *) * 4); /* one spare, NULL */
    for (int64_t c = 0; c < n_cols; c++)
        build_column(&in, 0, &schema_children[c], &children[c]);
    table t = {.schema = {.format = "+s", .n_children = n_cols, .children = schema_children}};
    /* maybe a batch with a column fewer or more than its schema */
    t.batch.n_children = n_cols + (head & 8 ? ((head & 16) ? 1 : -1) : 0);
    t.batch.children = children;
    if (head & 32) { /* any offset and length */
        t.batch.offset = (int64_t)take(&in, 8);
        t.batch.length = (int64_t)take(&in, 8);
    } else {
        t.batch.offset = (int64_t)take(&in, 1) % 8;
        t.batch.length = (int64_t)take(&in, 1) % 48;
    }
    struct ArrowArrayStream stream = {get_schema, get_next, last_error, NULL, &t};
    dbp_frame_sink sink = {on_columns, on_row, NULL};
    int64_t rows = 0;
    dbp_error err;
    int rc = dbp_arrow_walk(&stream, &sink, NULL, &rows, &err);
    if (rc != DBP_OK && rc != DBP_E_DATA && rc != DBP_E_PROTOCOL && rc != DBP_E_MISUSE)
        abort();
    free_all();
    return 0;
}
