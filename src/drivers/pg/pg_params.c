/* pg_params.c - PostgreSQL parameters: each value goes in the text form the
 * server parses exactly (bytes in binary), and a parameter the server would
 * read as text (a bare `SELECT $1`) is declared with the type of its value,
 * so an int comes back as an int and a list as an array. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"
#include "textparse.h"

/* ---- the type a value declares --------------------------------------------- */

#define TEXT_OID 25
#define UNKNOWN_OID 705
#define TEXT_ARRAY_OID 1009

static const struct {
    dbp_value_kind kind;
    Oid scalar, array;
} natural_types[] = {
    {DBP_V_BOOL, 16, 1000},         {DBP_V_INT64, 20, 1016},     {DBP_V_DOUBLE, 701, 1022},
    {DBP_V_DECIMAL, 1700, 1231},    {DBP_V_BLOB, 17, 1001},      {DBP_V_DATE, 1082, 1182},
    {DBP_V_TIME, 1083, 1183},       {DBP_V_TIMESTAMP, 1114, 1115},
    {DBP_V_TIMESTAMP_TZ, 1184, 1185}, {DBP_V_UUID, 2950, 2951},  {DBP_V_JSON, 3802, 3807},
    {DBP_V_INET, 869, 1041},        {DBP_V_INTERVAL, 1186, 1187},
};

/* The type a value of `kind` stands for; 0 for text and NULL, which take the
 * type the server infers. */
static Oid natural_type(const dbp_value *v)
{
    dbp_value_kind kind = v->kind == DBP_V_ARRAY ? (dbp_value_kind)v->i : v->kind;
    for (size_t i = 0; i < sizeof natural_types / sizeof *natural_types; i++)
        if (natural_types[i].kind == kind)
            return v->kind == DBP_V_ARRAY ? natural_types[i].array : natural_types[i].scalar;
    return v->kind == DBP_V_ARRAY ? TEXT_ARRAY_OID : 0;
}

/* The first non-NULL value of parameter `i` over all rows (NULL if none). */
static const dbp_value *first_value(const dbp_params *params, int i)
{
    const dbp_value *v = NULL;
    for (size_t row = 0, rows = dbp_params_rows(params); row < rows; row++) {
        v = dbp_params_get(params, row, (size_t)i);
        if (v->kind != DBP_V_NULL)
            break;
    }
    return v;
}

/* The type to declare for parameter `i`, whose type the server inferred as
 * `inferred`: the value's own when the server would read it as text. */
static Oid wanted_type(Oid inferred, const dbp_params *params, int i)
{
    if (inferred != TEXT_OID && inferred != UNKNOWN_OID)
        return 0;
    const dbp_value *v = first_value(params, i);
    return v ? natural_type(v) : 0;
}

int pg_statement_fits(const pg_statement *st, const dbp_params *params)
{
    if (dbp_params_width(params) != (size_t)st->n_params)
        return 1; /* bind_row says what is wrong */
    for (int i = 0; i < st->n_params; i++) {
        if (!st->declared || !st->declared[i]) {
            if (wanted_type(st->param_types[i], params, i))
                return 0;
        } else {
            const dbp_value *v = first_value(params, i);
            if (v && v->kind != DBP_V_NULL && natural_type(v) != st->declared[i])
                return 0;
        }
    }
    return 1;
}

Oid *pg_declared_types(const pg_statement *untyped, const dbp_params *params)
{
    Oid *declared = dbp_calloc((size_t)untyped->n_params + 1, sizeof *declared);
    for (int i = 0; declared && i < untyped->n_params; i++)
        declared[i] = wanted_type(untyped->param_types[i], params, i);
    return declared;
}

/* ---- binding ------------------------------------------------------------------ */

/* Text forms of one row of parameters; blobs go as binary. The engine
 * parses each according to the parameter's type, exactly. */
typedef struct bound_params {
    const char **values;
    int *lengths;
    int *formats;
    char *text; /* the text forms, back to back */
} bound_params;

static void bound_free(bound_params *b)
{
    dbp_free(b->values);
    dbp_free(b->lengths);
    dbp_free(b->formats);
    dbp_free(b->text);
}

/* Dates before 0001-01-01 in PostgreSQL's own form, "0044-03-15 BC" (its
 * input takes no year 0 and no negative years): the date part of `text`,
 * as dbp_format_* wrote it, with the year replaced. Returns the length. */
static int with_era(int64_t days, char *t)
{
    int64_t y;
    unsigned m, d;
    dbp_civil_from_days(days, &y, &m, &d);
    const char *rest = strchr(t + 1, ' '); /* the time of day, if any */
    char tail[40];
    snprintf(tail, sizeof tail, "%s", rest ? rest : "");
    return snprintf(t, 48, "%04lld-%02u-%02u%s BC", (long long)(1 - y), m, d, tail);
}

#define DAYS_TO_YEAR_1 (-719162) /* 0001-01-01 */

/* The text form PostgreSQL parses exactly, for values without bytes of
 * their own (booleans, numbers, dates, times, durations); `t` holds 48
 * bytes. */
int pg_scalar_text(const dbp_cell *v, char *t)
{
    int n;
    int64_t days = v->kind == DBP_V_DATE ? v->i : v->i / 86400000000LL - (v->i % 86400000000LL < 0);
    switch (v->kind) {
    case DBP_V_BOOL:
        return snprintf(t, 48, "%s", v->i ? "t" : "f");
    case DBP_V_INT64:
        return snprintf(t, 48, "%lld", (long long)v->i);
    case DBP_V_DOUBLE:
        if (isnan(v->d))
            return snprintf(t, 48, "NaN");
        if (isinf(v->d))
            return snprintf(t, 48, "%sInfinity", v->d < 0 ? "-" : "");
        return dbp_format_double(v->d, t, 48); /* shortest text that reads back exactly */
    case DBP_V_DATE:
        n = dbp_format_date(v->i, t, 48);
        return days < DAYS_TO_YEAR_1 ? with_era(days, t) : n;
    case DBP_V_TIME:
        return dbp_format_time(v->i, t, 48);
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
        n = dbp_format_timestamp(v->i, t, 40);
        if (v->kind == DBP_V_TIMESTAMP_TZ)
            n += snprintf(t + n, (size_t)(48 - n), "+00");
        return days < DAYS_TO_YEAR_1 ? with_era(days, t) : n;
    case DBP_V_INTERVAL:
        return snprintf(t, 48, "%lld microseconds", (long long)v->i);
    default:
        return 0;
    }
}

/* Big-endian bytes of the low `n` bytes of `x`. */
static int put_be(uint64_t x, int n, char *t)
{
    for (int k = n - 1; k >= 0; k--, x >>= 8)
        t[k] = (char)(x & 0xff);
    return n;
}

/* The binary form of a value whose parameter type is exactly its own (an
 * integer for int2/int4/int8 within range, a float for float8, a bool for
 * bool), which spares the server parsing its text; 0 when there is none:
 * the text form goes, and the server reports an out-of-range value itself. */
static int binary_scalar(const dbp_cell *v, Oid type, char *t)
{
    uint64_t bits;
    switch (v->kind) {
    case DBP_V_BOOL:
        return type == 16 ? put_be(v->i != 0, 1, t) : 0;
    case DBP_V_INT64:
        if (type == 20)
            return put_be((uint64_t)v->i, 8, t);
        if (type == 23 && v->i >= INT32_MIN && v->i <= INT32_MAX)
            return put_be((uint64_t)v->i, 4, t);
        if (type == 21 && v->i >= INT16_MIN && v->i <= INT16_MAX)
            return put_be((uint64_t)v->i, 2, t);
        return 0;
    case DBP_V_DOUBLE:
        if (type != 701)
            return 0;
        memcpy(&bits, &v->d, sizeof bits);
        return put_be(bits, 8, t);
    default:
        return 0;
    }
}

static int bind_row(const pg_statement *st, const dbp_params *params, size_t row,
                    bound_params *b, dbp_error *err)
{
    memset(b, 0, sizeof *b);
    size_t given = dbp_params_width(params);
    if ((size_t)st->n_params != given)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "07001",
                             "the statement has %d parameter(s) but %zu were given",
                             st->n_params, given);
    if (given == 0)
        return DBP_OK;
    if (dbp_params_get(params, row, 0)->has_name)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "PostgreSQL parameters are positional ($1, $2, ...): pass a "
                             "sequence, not a dict");
    b->values = dbp_calloc(given, sizeof *b->values);
    b->lengths = dbp_calloc(given, sizeof *b->lengths);
    b->formats = dbp_calloc(given, sizeof *b->formats);
    b->text = dbp_malloc(given * 48);
    if (!b->values || !b->lengths || !b->formats || !b->text) {
        bound_free(b);
        return dbp_error_nomem(err);
    }
    for (size_t i = 0; i < given; i++) {
        dbp_cell v;
        dbp_params_cell(params, dbp_params_get(params, row, i), &v);
        if (v.kind == DBP_V_NULL)
            continue; /* values[i] stays NULL */
        if (v.data) { /* text, decimal digits, bytes (sent binary) */
            if (v.len > INT32_MAX) {
                bound_free(b);
                return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                                     "parameter %zu is larger than 2 GiB", i + 1);
            }
            /* Text goes in the text format, which ends at a NUL byte. */
            if (v.kind != DBP_V_BLOB && memchr(v.data, '\0', v.len)) {
                bound_free(b);
                return dbp_error_set(err, DBP_E_DATA, 0, "22021",
                                     "parameter %zu contains a NUL byte, which PostgreSQL text "
                                     "cannot hold; pass bytes for bytea",
                                     i + 1);
            }
            b->values[i] = v.data;
            b->lengths[i] = (int)v.len;
            b->formats[i] = v.kind == DBP_V_BLOB;
            continue;
        }
        char *t = b->text + i * 48;
        b->values[i] = t;
        int n = st->param_types ? binary_scalar(&v, st->param_types[i], t) : 0;
        b->formats[i] = n > 0;
        b->lengths[i] = n > 0 ? n : pg_scalar_text(&v, t);
    }
    return DBP_OK;
}

/* Runs a prepared statement with bound parameters, binary results. The
 * unnamed statement is sent whole (parse, bind, execute in one Sync), since
 * another Sync may find another server behind a transaction-mode pooler. */
int pg_send_bound(pg_conn *c, const pg_statement *st, const dbp_params *params, size_t row,
                  dbp_error *err)
{
    bound_params b;
    int rc = bind_row(st, params, row, &b, err);
    if (rc != DBP_OK)
        return rc;
    int sent = st->name[0] ? PQsendQueryPrepared(c->pg, st->name, st->n_params, b.values,
                                                 b.lengths, b.formats, 1)
                           : PQsendQueryParams(c->pg, st->sql, st->n_params, st->param_types,
                                               b.values, b.lengths, b.formats, 1);
    bound_free(&b);
    return sent ? DBP_OK : pg_error(c, NULL, err);
}

