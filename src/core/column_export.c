/* column_export.c - a finished column as an Arrow array and its schema
 * (the Arrow C data interface): the buffers move out of the builder into
 * the exported array, whose release frees them. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "column.h"
#include "column_internal.h"

/* What an exported array owns; its release frees it all. */
typedef struct exported_column {
    dbp_buffer validity;
    dbp_buffer values;
    dbp_buffer *data_buffers;
    size_t n_data_buffers;
    int64_t *data_sizes; /* view types: the trailing buffer of data sizes */
    struct ArrowArray child; /* LIST: the elements */
    struct ArrowArray *child_pointers[1];
    const void *buffers[];
} exported_column;

static void release_column_array(struct ArrowArray *array)
{
    exported_column *owned = array->private_data;
    if (owned) {
        col_buffer_free(&owned->validity);
        col_buffer_free(&owned->values);
        col_free_data_buffers(owned->data_buffers, owned->n_data_buffers);
        dbp_free(owned->data_sizes);
        /* A consumer may have moved the child out, leaving its release NULL. */
        if (owned->child.release)
            owned->child.release(&owned->child);
        dbp_free(owned);
    }
    array->private_data = NULL;
    array->release = NULL;
}

static const void *buffer_or_empty(const dbp_buffer *buf)
{
    return buf->data ? buf->data : col_empty_buffer;
}

int dbp_column_finish(dbp_column *col, struct ArrowArray *out)
{
    int views = col_is_view_type(col->type.id);
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
    /* The child goes last: it is the only step that moves values, and it
     * leaves them in place when it fails. */
    if (col->type.id == DBP_T_LIST && dbp_column_finish(col->child, &owned->child) != DBP_OK) {
        dbp_free(owned);
        return DBP_E_NOMEM;
    }

    /* Nothing can fail from here on: move the buffers over. */
    if (col->type.id != DBP_T_NULL) {
        if (col->null_count > 0)
            owned->validity = col->validity;
        else
            col_buffer_free(&col->validity);
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
    if (col->type.id == DBP_T_LIST) {
        owned->child_pointers[0] = &owned->child;
        out->n_children = 1;
        out->children = owned->child_pointers;
    }
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
    col_clear_values(col);
    return DBP_OK;
}

/* ---- schema ---------------------------------------------------------------- */

typedef struct exported_schema {
    char format[40];
    struct ArrowSchema child; /* LIST: the element's schema */
    struct ArrowSchema *child_pointers[1];
    char name[]; /* copied column name */
} exported_schema;

static void release_column_schema(struct ArrowSchema *schema)
{
    exported_schema *owned = schema->private_data;
    if (owned && owned->child.release)
        owned->child.release(&owned->child);
    dbp_free(owned);
    schema->private_data = NULL;
    schema->release = NULL;
}

int dbp_column_schema(const dbp_column *col, struct ArrowSchema *out)
{
    const char *name = col->name ? col->name : "";
    size_t name_len = strlen(name);
    if (!col_valid_type(col->type))
        return DBP_E_MISUSE;
    exported_schema *owned = dbp_calloc(1, sizeof *owned + name_len + 1);
    if (!owned)
        return DBP_E_NOMEM;
    dbp_type_format(col->type, owned->format, sizeof owned->format);
    memcpy(owned->name, name, name_len + 1);
    if (col->type.id == DBP_T_LIST) {
        static char item_name[] = "item";
        dbp_column item = {.name = item_name, .type = *col->type.element};
        if (dbp_column_schema(&item, &owned->child) != DBP_OK) {
            dbp_free(owned);
            return DBP_E_NOMEM;
        }
        owned->child_pointers[0] = &owned->child;
    }

    memset(out, 0, sizeof *out);
    out->format = owned->format;
    out->name = owned->name;
    out->metadata = NULL;
    out->flags = ARROW_FLAG_NULLABLE;
    out->n_children = 0;
    out->children = NULL;
    if (col->type.id == DBP_T_LIST) {
        out->n_children = 1;
        out->children = owned->child_pointers;
    }
    out->dictionary = NULL;
    out->release = release_column_schema;
    out->private_data = owned;
    return DBP_OK;
}
