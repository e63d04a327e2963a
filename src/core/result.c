/* result.c - a query result built batch by batch and exported as an Arrow C
 * stream (see result.h).
 *
 * The schema is kept as the established column types plus the column names;
 * every get_schema call builds a fresh, independently releasable copy. List
 * element types are copied too, so the schema never points into a column.
 *
 * Decimal columns whose scale grows from one batch to the next (PostgreSQL's
 * unconstrained numeric takes the scale of the values seen) are reconciled
 * by raising the lower scale, rescaling finished batches in place: they are
 * still ours until the stream hands them out. */
#include "result.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

struct dbp_result {
    size_t n_columns;
    dbp_column *columns;
    dbp_type *schema_types; /* valid once has_schema is set */
    dbp_type *schema_elements; /* LIST element types, pointed to by schema_types */
    int has_schema;
    /* A batch failed half-way (some columns moved out): the rows are lost,
     * so exporting must fail rather than return a result missing them. */
    int broken;

    struct ArrowArray *batches; /* finished struct arrays, in order */
    size_t n_batches;
    size_t batches_capacity;
    size_t next_batch; /* stream position */
    int64_t finished_rows;
    size_t finished_bytes;

    char last_error[128]; /* for the stream's get_last_error */
};

/* ---- lifetime ---------------------------------------------------------------- */

/* Whether `name` is taken: one of the engine's names, or given already to
 * one of the first `made` columns. */
static int name_taken(const dbp_result *res, size_t made, const char *const *names, size_t n,
                      const char *name)
{
    for (size_t i = 0; i < made; i++)
        if (strcmp(res->columns[i].name, name) == 0)
            return 1;
    for (size_t i = 0; names && i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* A column name that repeats an earlier one (SELECT a.id, b.id ...) gets
 * the first free suffix: id, id_1, id_2 (DataFrames need unique names). */
static const char *unique_name(const dbp_result *res, size_t made, const char *const *names,
                               size_t n, const char *name, char *buf, size_t size)
{
    int repeated = 0;
    for (size_t i = 0; i < made && !repeated; i++)
        repeated = strcmp(res->columns[i].name, name) == 0;
    if (!repeated)
        return name;
    for (unsigned k = 1;; k++) {
        snprintf(buf, size, "%.400s_%u", name, k); /* the suffix always fits */
        if (!name_taken(res, made, names, n, buf))
            return buf;
    }
}

int dbp_result_new(dbp_result **out, size_t n_columns, const char *const *names,
                   dbp_error *err)
{
    *out = NULL;
    dbp_result *res = dbp_calloc(1, sizeof *res);
    if (!res)
        return dbp_error_nomem(err);
    res->columns = dbp_calloc(n_columns, sizeof *res->columns);
    res->schema_types = dbp_calloc(n_columns, sizeof *res->schema_types);
    res->schema_elements = dbp_calloc(n_columns, sizeof *res->schema_elements);
    if (!res->columns || !res->schema_types || !res->schema_elements) {
        dbp_result_free(res);
        return dbp_error_nomem(err);
    }
    /* Counted as it goes, so a failure frees only the columns made. */
    for (size_t i = 0; i < n_columns; i++) {
        char renamed[512];
        const char *name = unique_name(res, i, names, n_columns, names && names[i] ? names[i] : "",
                                       renamed, sizeof renamed);
        if (dbp_column_init(&res->columns[i], name, (dbp_type){.id = DBP_T_NULL}) != DBP_OK) {
            dbp_result_free(res);
            return dbp_error_nomem(err);
        }
        res->n_columns++;
    }
    *out = res;
    return DBP_OK;
}

void dbp_result_free(dbp_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_batches; i++) {
        if (res->batches[i].release)
            res->batches[i].release(&res->batches[i]);
    }
    dbp_free(res->batches);
    for (size_t i = 0; i < res->n_columns; i++)
        dbp_column_free(&res->columns[i]);
    dbp_free(res->columns);
    dbp_free(res->schema_types);
    dbp_free(res->schema_elements);
    dbp_free(res);
}

/* ---- accessors ---------------------------------------------------------------- */

size_t dbp_result_n_columns(const dbp_result *res)
{
    return res->n_columns;
}

dbp_column *dbp_result_column(dbp_result *res, size_t i)
{
    return i < res->n_columns ? &res->columns[i] : NULL;
}

int64_t dbp_result_pending_rows(const dbp_result *res)
{
    return res->n_columns ? res->columns[0].length : 0;
}

size_t dbp_result_pending_memory(const dbp_result *res)
{
    size_t total = 0;
    for (size_t i = 0; i < res->n_columns; i++)
        total += dbp_column_memory(&res->columns[i]);
    return total;
}

int64_t dbp_result_total_rows(const dbp_result *res)
{
    return res->finished_rows + dbp_result_pending_rows(res);
}

size_t dbp_result_total_memory(const dbp_result *res)
{
    return res->finished_bytes + dbp_result_pending_memory(res);
}

/* ---- batches ---------------------------------------------------------------- */

/* The Arrow format, with a list's element format in brackets. */
static void describe_type(dbp_type type, char *buf, size_t size)
{
    char outer[40], inner[40] = "";
    dbp_type_format(type, outer, sizeof outer);
    if (type.id == DBP_T_LIST)
        dbp_type_format(*type.element, inner, sizeof inner);
    snprintf(buf, size, type.id == DBP_T_LIST ? "%s[%s]" : "%s%s", outer, inner);
}

/* Establishes the schema from the columns' current types. */
static void remember_types(dbp_result *res)
{
    for (size_t i = 0; i < res->n_columns; i++) {
        res->schema_types[i] = res->columns[i].type;
        if (res->schema_types[i].id == DBP_T_LIST) {
            res->schema_elements[i] = *res->columns[i].type.element;
            res->schema_types[i].element = &res->schema_elements[i];
        }
    }
    res->has_schema = 1;
}

/* 1 when two types are decimals (or lists of decimals) that differ at most
 * in scale. */
static int decimal_scale_may_differ(dbp_type a, dbp_type b)
{
    if (a.id == DBP_T_LIST && b.id == DBP_T_LIST) {
        a = *a.element;
        b = *b.element;
    }
    return a.id == DBP_T_DECIMAL128 && b.id == DBP_T_DECIMAL128 && a.precision == b.precision;
}

/* Brings column `i` and the finished batches to the larger of their two
 * decimal scales. With `apply` unset it only checks that every value fits,
 * so that the changes, made afterwards, cannot fail half-way. */
static int reconcile_scale(dbp_result *res, size_t i, int apply, dbp_error *err)
{
    dbp_column *col = &res->columns[i];
    dbp_column *leaf = col->type.id == DBP_T_LIST ? col->child : col;
    dbp_type *established =
        res->schema_types[i].id == DBP_T_LIST ? &res->schema_elements[i] : &res->schema_types[i];
    int target = leaf->type.scale > established->scale ? leaf->type.scale : established->scale;
    int precision = established->precision;
    int rc = DBP_OK;
    if (leaf->type.scale < target) {
        rc = apply ? dbp_column_rescale_decimal(leaf, target)
                   : dbp_decimal_rescale(leaf->values.data, leaf->length, precision,
                                         target - leaf->type.scale, 0);
    }
    for (size_t b = 0; rc == DBP_OK && established->scale < target && b < res->n_batches; b++) {
        struct ArrowArray *array = res->batches[b].children[i];
        if (array->n_children == 1)
            array = array->children[0];
        /* The buffer is one we allocated; const only in the ABI's view. */
        rc = dbp_decimal_rescale((void *)array->buffers[1], array->length, precision,
                                 target - established->scale, apply);
    }
    if (rc != DBP_OK)
        return dbp_error_set(err, DBP_E_DATA, 0, NULL,
                             "column \"%s\": its decimal values do not fit in %d digits "
                             "with %d fraction digits (the scale grew between batches); "
                             "cast the column to a numeric(p,s) that fits, float8 or text",
                             col->name, precision, target);
    if (apply)
        established->scale = target;
    return DBP_OK;
}

/* What a struct batch owns besides its children's own buffers. */
typedef struct exported_batch {
    const void *buffers[1]; /* the struct layout's (absent) validity */
    size_t n_children;
    struct ArrowArray **child_pointers;
    struct ArrowArray children[];
} exported_batch;

static void release_batch(struct ArrowArray *array)
{
    exported_batch *owned = array->private_data;
    if (owned) {
        /* A consumer may have moved a child out, leaving its release NULL. */
        for (size_t i = 0; i < owned->n_children; i++) {
            if (owned->children[i].release)
                owned->children[i].release(&owned->children[i]);
        }
        dbp_free(owned->child_pointers);
        dbp_free(owned);
    }
    array->private_data = NULL;
    array->release = NULL;
}

static exported_batch *batch_alloc(size_t n_columns)
{
    exported_batch *owned = dbp_calloc(1, sizeof *owned + n_columns * sizeof owned->children[0]);
    if (!owned)
        return NULL;
    owned->child_pointers = dbp_calloc(n_columns, sizeof *owned->child_pointers);
    if (!owned->child_pointers) {
        dbp_free(owned);
        return NULL;
    }
    for (size_t i = 0; i < n_columns; i++)
        owned->child_pointers[i] = &owned->children[i];
    return owned;
}

static int reserve_batch_slot(dbp_result *res)
{
    if (res->n_batches < res->batches_capacity)
        return DBP_OK;
    size_t capacity = res->batches_capacity ? res->batches_capacity * 2 : 8;
    struct ArrowArray *grown = dbp_realloc(res->batches, capacity * sizeof *grown);
    if (!grown)
        return DBP_E_NOMEM;
    res->batches = grown;
    res->batches_capacity = capacity;
    return DBP_OK;
}

int dbp_result_finish_batch(dbp_result *res, dbp_error *err)
{
    if (res->broken)
        return dbp_error_set(err, DBP_E_NOMEM, 0, NULL,
                             "an earlier batch was lost to an allocation failure");
    int64_t rows = dbp_result_pending_rows(res);
    if (rows == 0)
        return DBP_OK;
    size_t bytes = dbp_result_pending_memory(res);
    for (size_t i = 0; i < res->n_columns; i++) {
        if (res->columns[i].length != rows)
            return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                 "column \"%s\" has %lld rows, expected %lld",
                                 res->columns[i].name, (long long)res->columns[i].length,
                                 (long long)rows);
    }
    /* Check every column before changing any, so a type clash leaves the
     * pending batch intact. */
    int rescale = 0;
    if (res->has_schema) {
        for (size_t i = 0; i < res->n_columns; i++) {
            dbp_column *col = &res->columns[i];
            if (col->type.id == DBP_T_NULL || dbp_type_equal(col->type, res->schema_types[i]))
                continue;
            if (decimal_scale_may_differ(col->type, res->schema_types[i])) {
                int rc = reconcile_scale(res, i, 0, err);
                if (rc != DBP_OK)
                    return rc;
                rescale = 1;
                continue;
            }
            char had[80], got[80];
            describe_type(res->schema_types[i], had, sizeof had);
            describe_type(col->type, got, sizeof got);
            return dbp_error_set(err, DBP_E_DATA, 0, NULL,
                                 "column \"%s\" changed type between batches (%s, then %s)",
                                 col->name, had, got);
        }
    }
    /* Checked above, so this changes values without losing any. */
    for (size_t i = 0; rescale && i < res->n_columns; i++) {
        dbp_column *col = &res->columns[i];
        if (col->type.id != DBP_T_NULL && !dbp_type_equal(col->type, res->schema_types[i]))
            reconcile_scale(res, i, 1, err);
    }
    if (reserve_batch_slot(res) != DBP_OK)
        return dbp_error_nomem(err);
    if (res->has_schema) {
        /* All-NULL columns take the established type; a failure here leaves
         * them all-NULL, just typed, so a retry still works. */
        for (size_t i = 0; i < res->n_columns; i++) {
            dbp_column *col = &res->columns[i];
            if (!dbp_type_equal(col->type, res->schema_types[i]) &&
                dbp_column_set_type(col, res->schema_types[i]) != DBP_OK)
                return dbp_error_nomem(err);
        }
    }
    exported_batch *owned = batch_alloc(res->n_columns);
    if (!owned)
        return dbp_error_nomem(err);

    for (size_t i = 0; i < res->n_columns; i++) {
        if (dbp_column_finish(&res->columns[i], &owned->children[i]) != DBP_OK) {
            /* Earlier columns already gave up their rows, so the batch cannot
             * be put back together: drop it and refuse to export. */
            res->broken = 1;
            struct ArrowArray dropped = {.private_data = owned};
            release_batch(&dropped);
            return dbp_error_nomem(err);
        }
        owned->n_children = i + 1;
    }

    if (!res->has_schema)
        remember_types(res);
    struct ArrowArray *batch = &res->batches[res->n_batches++];
    memset(batch, 0, sizeof *batch);
    batch->length = rows;
    batch->null_count = 0;
    batch->offset = 0;
    batch->n_buffers = 1;
    batch->n_children = (int64_t)res->n_columns;
    batch->buffers = owned->buffers;
    batch->children = owned->child_pointers;
    batch->dictionary = NULL;
    batch->release = release_batch;
    batch->private_data = owned;
    res->finished_rows += rows;
    res->finished_bytes += bytes;
    return DBP_OK;
}

/* ---- schema ------------------------------------------------------------------ */

typedef struct exported_struct_schema {
    size_t n_children;
    struct ArrowSchema **child_pointers;
    struct ArrowSchema children[];
} exported_struct_schema;

static void release_struct_schema(struct ArrowSchema *schema)
{
    exported_struct_schema *owned = schema->private_data;
    if (owned) {
        for (size_t i = 0; i < owned->n_children; i++) {
            if (owned->children[i].release)
                owned->children[i].release(&owned->children[i]);
        }
        dbp_free(owned->child_pointers);
        dbp_free(owned);
    }
    schema->private_data = NULL;
    schema->release = NULL;
}

/* A fresh "+s" schema of the established types under the column names. */
static int build_schema(const dbp_result *res, struct ArrowSchema *out)
{
    size_t n = res->n_columns;
    exported_struct_schema *owned = dbp_calloc(1, sizeof *owned + n * sizeof owned->children[0]);
    if (!owned)
        return DBP_E_NOMEM;
    owned->child_pointers = dbp_calloc(n, sizeof *owned->child_pointers);
    struct ArrowSchema whole = {.private_data = owned};
    if (!owned->child_pointers) {
        release_struct_schema(&whole);
        return DBP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* dbp_column_schema only reads the name and type. */
        dbp_column shape = {.name = res->columns[i].name, .type = res->schema_types[i]};
        if (dbp_column_schema(&shape, &owned->children[i]) != DBP_OK) {
            release_struct_schema(&whole);
            return DBP_E_NOMEM;
        }
        owned->child_pointers[i] = &owned->children[i];
        owned->n_children = i + 1;
    }
    memset(out, 0, sizeof *out);
    out->format = "+s";
    out->name = "";
    out->metadata = NULL;
    out->flags = 0;
    out->n_children = (int64_t)n;
    out->children = owned->child_pointers;
    out->dictionary = NULL;
    out->release = release_struct_schema;
    out->private_data = owned;
    return DBP_OK;
}

/* ---- stream ---------------------------------------------------------------- */

static int stream_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out)
{
    dbp_result *res = stream->private_data;
    if (build_schema(res, out) != DBP_OK) {
        snprintf(res->last_error, sizeof res->last_error, "out of memory building the schema");
        return ENOMEM;
    }
    return 0;
}

static int stream_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out)
{
    dbp_result *res = stream->private_data;
    if (res->next_batch >= res->n_batches) {
        /* End of stream: a released array. */
        memset(out, 0, sizeof *out);
        return 0;
    }
    struct ArrowArray *batch = &res->batches[res->next_batch++];
    *out = *batch;
    batch->release = NULL; /* ownership moved to the consumer */
    batch->private_data = NULL;
    return 0;
}

static const char *stream_get_last_error(struct ArrowArrayStream *stream)
{
    dbp_result *res = stream->private_data;
    return res->last_error[0] ? res->last_error : NULL;
}

static void stream_release(struct ArrowArrayStream *stream)
{
    dbp_result_free(stream->private_data);
    stream->private_data = NULL;
    stream->release = NULL;
}

int dbp_result_export(dbp_result *res, struct ArrowArrayStream *out, dbp_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!res || !out) {
        dbp_result_free(res);
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "dbp_result_export: NULL argument");
    }
    int rc = dbp_result_finish_batch(res, err);
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    if (!res->has_schema)
        remember_types(res); /* no rows at all: whatever the columns say now */
    out->get_schema = stream_get_schema;
    out->get_next = stream_get_next;
    out->get_last_error = stream_get_last_error;
    out->release = stream_release;
    out->private_data = res;
    return DBP_OK;
}
