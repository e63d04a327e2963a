/* result.c - a query result built batch by batch and exported as an Arrow C
 * stream (see result.h).
 *
 * The schema is kept as the established column types plus the column names;
 * every get_schema call builds a fresh, independently releasable copy. */
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
    int has_schema;
    /* A batch failed half-way (some columns moved out): the rows are lost,
     * so exporting must fail rather than return a result missing them. */
    int broken;

    struct ArrowArray *batches; /* finished struct arrays, in order */
    size_t n_batches;
    size_t batches_capacity;
    size_t next_batch; /* stream position */
    int64_t finished_rows;

    char last_error[128]; /* for the stream's get_last_error */
};

/* ---- lifetime ---------------------------------------------------------------- */

int dbp_result_new(dbp_result **out, size_t n_columns, const char *const *names,
                   dbp_error *err)
{
    *out = NULL;
    dbp_result *res = dbp_calloc(1, sizeof *res);
    if (!res)
        return dbp_error_nomem(err);
    res->columns = dbp_calloc(n_columns, sizeof *res->columns);
    res->schema_types = dbp_calloc(n_columns, sizeof *res->schema_types);
    if (!res->columns || !res->schema_types) {
        dbp_result_free(res);
        return dbp_error_nomem(err);
    }
    /* Counted as it goes, so a failure frees only the columns made. */
    for (size_t i = 0; i < n_columns; i++) {
        const char *name = names && names[i] ? names[i] : "";
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

/* ---- batches ---------------------------------------------------------------- */

static int same_type(dbp_type a, dbp_type b)
{
    if (a.id != b.id)
        return 0;
    return a.id != DBP_T_DECIMAL128 || (a.precision == b.precision && a.scale == b.scale);
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
    for (size_t i = 0; i < res->n_columns; i++) {
        if (res->columns[i].length != rows)
            return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                 "column \"%s\" has %lld rows, expected %lld",
                                 res->columns[i].name, (long long)res->columns[i].length,
                                 (long long)rows);
    }
    /* Check every column before changing any, so a type clash leaves the
     * pending batch intact. */
    if (res->has_schema) {
        for (size_t i = 0; i < res->n_columns; i++) {
            dbp_column *col = &res->columns[i];
            if (col->type.id == DBP_T_NULL || same_type(col->type, res->schema_types[i]))
                continue;
            char had[40], got[40];
            dbp_type_format(res->schema_types[i], had, sizeof had);
            dbp_type_format(col->type, got, sizeof got);
            return dbp_error_set(err, DBP_E_DATA, 0, NULL,
                                 "column \"%s\" changed type between batches (%s, then %s)",
                                 col->name, had, got);
        }
    }
    if (reserve_batch_slot(res) != DBP_OK)
        return dbp_error_nomem(err);
    if (res->has_schema) {
        /* All-NULL columns take the established type; a failure here leaves
         * them all-NULL, just typed, so a retry still works. */
        for (size_t i = 0; i < res->n_columns; i++) {
            dbp_column *col = &res->columns[i];
            if (!same_type(col->type, res->schema_types[i]) &&
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

    if (!res->has_schema) {
        for (size_t i = 0; i < res->n_columns; i++)
            res->schema_types[i] = res->columns[i].type;
        res->has_schema = 1;
    }
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
    if (!res->has_schema) {
        /* No rows at all: the schema is whatever the columns say now. */
        for (size_t i = 0; i < res->n_columns; i++)
            res->schema_types[i] = res->columns[i].type;
        res->has_schema = 1;
    }
    out->get_schema = stream_get_schema;
    out->get_next = stream_get_next;
    out->get_last_error = stream_get_last_error;
    out->release = stream_release;
    out->private_data = res;
    return DBP_OK;
}
