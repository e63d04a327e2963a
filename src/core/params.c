/* params.c - parameter lists. Values live in one array; text, blobs and
 * names are copied into one arena addressed by offsets, so growing it never
 * invalidates a value. */
#include "params.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

struct dbp_params {
    dbp_value *values;
    size_t n_values;
    size_t capacity;
    char *arena;
    size_t arena_size;
    size_t arena_capacity;
    size_t width;   /* values per row, fixed by the first ended row */
    size_t n_rows;  /* ended rows */
};

int dbp_params_new(dbp_params **out, dbp_error *err)
{
    *out = dbp_calloc(1, sizeof **out);
    return *out ? DBP_OK : dbp_error_nomem(err);
}

void dbp_params_free(dbp_params *p)
{
    if (!p)
        return;
    dbp_free(p->values);
    dbp_free(p->arena);
    dbp_free(p);
}

static int arena_append(dbp_params *p, const void *data, size_t len, size_t *offset)
{
    if (len > SIZE_MAX - p->arena_size - 1)
        return DBP_E_NOMEM;
    size_t need = p->arena_size + len + 1;
    if (need > p->arena_capacity) {
        size_t cap = p->arena_capacity ? p->arena_capacity : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *grown = dbp_realloc(p->arena, cap);
        if (!grown)
            return DBP_E_NOMEM;
        p->arena = grown;
        p->arena_capacity = cap;
    }
    if (len)
        memcpy(p->arena + p->arena_size, data, len);
    p->arena[p->arena_size + len] = '\0'; /* names are read as C strings */
    *offset = p->arena_size;
    p->arena_size += len + 1;
    return DBP_OK;
}

/* Appends a value of `kind`, copying `name` (if any) into the arena. */
static dbp_value *push(dbp_params *p, const char *name, dbp_value_kind kind)
{
    if (p->n_values == p->capacity) {
        size_t cap = p->capacity ? p->capacity * 2 : 8;
        dbp_value *grown = dbp_realloc(p->values, cap * sizeof *grown);
        if (!grown)
            return NULL;
        p->values = grown;
        p->capacity = cap;
    }
    dbp_value v = {.kind = kind};
    if (name) {
        if (arena_append(p, name, strlen(name), &v.name_offset) != DBP_OK)
            return NULL;
        v.has_name = 1;
    }
    p->values[p->n_values] = v;
    return &p->values[p->n_values++];
}

int dbp_params_add_null(dbp_params *p, const char *name)
{
    return push(p, name, DBP_V_NULL) ? DBP_OK : DBP_E_NOMEM;
}

int dbp_params_add_bool(dbp_params *p, const char *name, int v)
{
    dbp_value *val = push(p, name, DBP_V_BOOL);
    if (!val)
        return DBP_E_NOMEM;
    val->i = v != 0;
    return DBP_OK;
}

int dbp_params_add_int64(dbp_params *p, const char *name, int64_t v)
{
    dbp_value *val = push(p, name, DBP_V_INT64);
    if (!val)
        return DBP_E_NOMEM;
    val->i = v;
    return DBP_OK;
}

int dbp_params_add_double(dbp_params *p, const char *name, double v)
{
    dbp_value *val = push(p, name, DBP_V_DOUBLE);
    if (!val)
        return DBP_E_NOMEM;
    val->d = v;
    return DBP_OK;
}

static int add_bytes(dbp_params *p, const char *name, dbp_value_kind kind, const void *data,
                     size_t len)
{
    size_t offset;
    if (arena_append(p, data, len, &offset) != DBP_OK)
        return DBP_E_NOMEM;
    dbp_value *val = push(p, name, kind);
    if (!val)
        return DBP_E_NOMEM;
    val->offset = offset;
    val->length = len;
    return DBP_OK;
}

int dbp_params_add_text(dbp_params *p, const char *name, const char *s, size_t len)
{
    return add_bytes(p, name, DBP_V_TEXT, s, len);
}

int dbp_params_add_blob(dbp_params *p, const char *name, const void *b, size_t len)
{
    return add_bytes(p, name, DBP_V_BLOB, b, len);
}

int dbp_params_add_decimal(dbp_params *p, const char *name, const char *text, size_t len)
{
    return add_bytes(p, name, DBP_V_DECIMAL, text, len);
}

int dbp_params_add_typed_text(dbp_params *p, const char *name, dbp_value_kind kind,
                              const char *text, size_t len)
{
    if (!dbp_value_kind_has_bytes(kind) || kind == DBP_V_BLOB || kind == DBP_V_ARRAY)
        return DBP_E_MISUSE;
    return add_bytes(p, name, kind, text, len);
}

int dbp_params_add_array(dbp_params *p, const char *name, dbp_value_kind element,
                         const char *literal, size_t len)
{
    int rc = add_bytes(p, name, DBP_V_ARRAY, literal, len);
    if (rc == DBP_OK)
        p->values[p->n_values - 1].i = element;
    return rc;
}

int dbp_params_add_temporal(dbp_params *p, const char *name, dbp_value_kind kind, int64_t v)
{
    if (kind != DBP_V_DATE && kind != DBP_V_TIME && kind != DBP_V_TIMESTAMP &&
        kind != DBP_V_TIMESTAMP_TZ && kind != DBP_V_INTERVAL)
        return DBP_E_MISUSE;
    dbp_value *val = push(p, name, kind);
    if (!val)
        return DBP_E_NOMEM;
    val->i = v;
    return DBP_OK;
}

int dbp_value_kind_has_bytes(dbp_value_kind kind)
{
    return kind == DBP_V_TEXT || kind == DBP_V_BLOB || kind == DBP_V_DECIMAL ||
           kind == DBP_V_UUID || kind == DBP_V_JSON || kind == DBP_V_INET || kind == DBP_V_ARRAY;
}

const char *dbp_value_kind_name(dbp_value_kind kind)
{
    switch (kind) {
    case DBP_V_INTERVAL:
        return "a duration (timedelta)";
    case DBP_V_ARRAY:
        return "an array (list or tuple)";
    case DBP_V_UUID:
        return "a UUID";
    case DBP_V_JSON:
        return "a JSON document (dict)";
    case DBP_V_INET:
        return "an IP address";
    default:
        return "this value";
    }
}

const char *dbp_value_kind_hint(dbp_value_kind kind)
{
    switch (kind) {
    case DBP_V_INTERVAL:
        return "pass a number, e.g. td.total_seconds() or td // timedelta(microseconds=1)";
    case DBP_V_ARRAY:
        return "pass json.dumps(values) to store it as JSON text, or one row per element";
    default:
        return "pass str(value)";
    }
}

int dbp_params_end_row(dbp_params *p)
{
    size_t in_row = p->n_values - p->width * p->n_rows;
    if (p->n_rows == 0)
        p->width = in_row;
    else if (in_row != p->width)
        return DBP_E_MISUSE;
    p->n_rows++;
    return DBP_OK;
}

size_t dbp_params_rows(const dbp_params *p)
{
    if (!p)
        return 0;
    return p->n_rows ? p->n_rows : (p->n_values ? 1 : 0);
}

size_t dbp_params_width(const dbp_params *p)
{
    if (!p)
        return 0;
    return p->n_rows ? p->width : p->n_values;
}

const dbp_value *dbp_params_get(const dbp_params *p, size_t row, size_t i)
{
    return &p->values[row * dbp_params_width(p) + i];
}

const char *dbp_params_bytes(const dbp_params *p, const dbp_value *v)
{
    return p->arena + v->offset;
}

const char *dbp_params_name(const dbp_params *p, const dbp_value *v)
{
    return v->has_name ? p->arena + v->name_offset : NULL;
}

void dbp_params_cell(const dbp_params *p, const dbp_value *v, dbp_cell *out)
{
    out->kind = v->kind;
    out->i = v->i;
    out->d = v->d;
    out->data = dbp_value_kind_has_bytes(v->kind) ? p->arena + v->offset : NULL;
    out->len = v->length;
}
