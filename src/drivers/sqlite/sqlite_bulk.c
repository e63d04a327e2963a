/* sqlite_bulk.c - write_frame on SQLite: one prepared INSERT per row inside
 * a savepoint, so all rows are written or none. SQLite stores any value in
 * any column, so each value is first checked against the column's declared
 * type the way the read path will read it back (sqlite_read.c): exact
 * conversions are made (a whole float into INTEGER), anything the read path
 * would refuse is refused here, naming the column, before it is written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sqlite_internal.h"
#include "textbuf.h"
#include "textparse.h"

/* ---- bulk load ------------------------------------------------------------------------ */

typedef struct bulk_insert {
    sqlite_conn *c;
    const char *table;
    const char *const *names; /* the frame's columns, for messages */
    column_plan *plans;       /* how each target column reads back */
    size_t n_plans;
    sqlite3_stmt *stmt;
} bulk_insert;

/* Each target column's declared type, from a SELECT of the same columns
 * (sqlite3_column_decltype: no metadata build option needed). A table
 * that does not exist leaves every plan open; the INSERT then says so. */
static int plan_targets(bulk_insert *b, size_t n, const char *const *names, dbp_error *err)
{
    b->plans = dbp_calloc(n, sizeof *b->plans);
    if (!b->plans)
        return dbp_error_nomem(err);
    b->n_plans = n;
    dbp_textbuf sql = {0};
    dbp_textbuf_select_columns(&sql, b->table, names, n, '"', '"');
    if (sql.failed) {
        dbp_textbuf_free(&sql);
        return dbp_error_nomem(err);
    }
    sqlite3_stmt *stmt = NULL;
    int rc = DBP_OK;
    if (sqlite3_prepare_v2(b->c->db, sql.data, (int)sql.len, &stmt, NULL) == SQLITE_OK) {
        for (size_t i = 0; rc == DBP_OK && i < n; i++) {
            const char *declared = sqlite3_column_decltype(stmt, (int)i);
            b->plans[i] = sqlite_plan_column(declared);
            if (declared && !(b->plans[i].declared = dbp_strdup(declared)))
                rc = dbp_error_nomem(err);
        }
    }
    sqlite3_finalize(stmt);
    dbp_textbuf_free(&sql);
    return rc;
}

/* Whether decimal text is a whole number in the 64-bit range (*out). */
static int whole_int64(const char *s, size_t n, int64_t *out)
{
    __int128 v;
    if (dbp_parse_decimal(s, n, 38, 0, &v) != DBP_OK || v < INT64_MIN || v > INT64_MAX)
        return 0;
    *out = (int64_t)v;
    return 1;
}

/* A value for a DECIMAL(p,s) column, which SQLite stores as INTEGER or
 * REAL (NUMERIC affinity): it must fit p and s, and is bound as the integer
 * or the double that reads back as exactly it. Decimal text is not bound as
 * text: SQLite's own conversion to REAL is not correctly rounded. */
static const char *fit_decimal(const column_plan *plan, dbp_cell *v)
{
    char text[48];
    size_t len;
    if (v->kind == DBP_V_INT64 || v->kind == DBP_V_DOUBLE) {
        if (v->kind == DBP_V_DOUBLE && !isfinite(v->d))
            return "is not a finite number";
        len = (size_t)(v->kind == DBP_V_INT64 ? snprintf(text, sizeof text, "%lld", (long long)v->i)
                                             : dbp_format_double(v->d, text, sizeof text));
    } else if (v->kind == DBP_V_DECIMAL || v->kind == DBP_V_TEXT) {
        len = v->len < sizeof text ? v->len : sizeof text - 1;
        memcpy(text, v->data, len);
    } else {
        return "is not a number";
    }
    text[len] = '\0';
    __int128 want, back;
    int p = plan->type.precision, s = plan->type.scale;
    if (dbp_parse_decimal(text, len, p, s, &want) != DBP_OK)
        return "does not fit the declared precision and scale without rounding";
    if (v->kind == DBP_V_INT64 || v->kind == DBP_V_DOUBLE)
        return NULL;
    int64_t i;
    if (whole_int64(text, len, &i)) {
        *v = (dbp_cell){.kind = DBP_V_INT64, .i = i};
        return NULL;
    }
    double d = strtod(text, NULL);
    char shortest[48];
    int n = dbp_format_double(d, shortest, sizeof shortest);
    if (dbp_parse_decimal(shortest, (size_t)n, 38, s, &back) != DBP_OK || back != want)
        return "has more significant digits than SQLite keeps in a DECIMAL column, which it "
               "stores as REAL (about 15): declare the column TEXT to keep it exactly";
    *v = (dbp_cell){.kind = DBP_V_DOUBLE, .d = d};
    return NULL;
}

/* Converts the value to what column `plan` reads back where that is exact;
 * returns NULL when the value fits, else why the read path would refuse it. */
static const char *fit_value(const column_plan *plan, dbp_cell *v)
{
    int64_t i;
    switch (plan->kind) {
    case K_INT:
        if (v->kind == DBP_V_DOUBLE) {
            if (!(isfinite(v->d) && v->d == floor(v->d) && fabs(v->d) < 9.2233720368547758e18))
                return "is not a whole number in the INTEGER range";
            v->kind = DBP_V_INT64;
            v->i = (int64_t)v->d;
        } else if (v->kind == DBP_V_DECIMAL || v->kind == DBP_V_TEXT) {
            if (!whole_int64(v->data, v->len, &i))
                return "is not a whole number in the INTEGER range";
            *v = (dbp_cell){.kind = DBP_V_INT64, .i = i};
        } else if (v->kind != DBP_V_INT64 && v->kind != DBP_V_BOOL) {
            return "is not an integer";
        }
        return NULL;
    case K_FLOAT:
        if (v->kind == DBP_V_INT64 && (v->i > (1LL << 53) || v->i < -(1LL << 53)))
            return "is an integer beyond 2^53, which REAL cannot hold exactly";
        if (v->kind != DBP_V_DOUBLE && v->kind != DBP_V_INT64 && v->kind != DBP_V_BOOL &&
            v->kind != DBP_V_DECIMAL)
            return "is not a number";
        return NULL;
    case K_DECIMAL:
        return fit_decimal(plan, v);
    case K_BOOL:
        return (v->kind == DBP_V_BOOL || (v->kind == DBP_V_INT64 && (v->i == 0 || v->i == 1)))
                   ? NULL
                   : "is not a boolean (or 0 or 1)";
    case K_DATE:
        return v->kind == DBP_V_DATE ? NULL : "is not a date";
    case K_TIME:
        return v->kind == DBP_V_TIME ? NULL : "is not a time of day";
    case K_DATETIME:
        if (v->kind == DBP_V_TIMESTAMP_TZ && plan->type.id == DBP_T_TIMESTAMP_US)
            return "has a time zone, which a column without one would lose: declare the column "
                   "TIMESTAMPTZ (read back in UTC), or drop the zone with "
                   "dt.replace_time_zone(None)";
        if (v->kind == DBP_V_TIMESTAMP && plan->type.id == DBP_T_TIMESTAMP_UTC)
            return "has no time zone, but the column is in UTC: give the values one with "
                   "dt.replace_time_zone(\"UTC\")";
        return v->kind == DBP_V_TIMESTAMP || v->kind == DBP_V_TIMESTAMP_TZ || v->kind == DBP_V_DATE
                   ? NULL
                   : "is not a timestamp";
    case K_TEXT:
        return v->kind == DBP_V_BLOB ? "is binary, not text" : NULL;
    case K_BLOB:
        return v->kind == DBP_V_BLOB || v->kind == DBP_V_TEXT ? NULL : "is not binary or text";
    default:
        return NULL;
    }
}

/* INSERT INTO "table" ("a", "b") VALUES (?, ?) for the frame's columns. */
static int bulk_columns(void *arg, size_t n, const char *const *names,
                        const dbp_value_kind *kinds, dbp_error *err)
{
    (void)kinds;
    bulk_insert *b = arg;
    b->names = names;
    int rc = plan_targets(b, n, names, err);
    if (rc != DBP_OK)
        return rc;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "INSERT INTO ");
    dbp_textbuf_table_columns(&sql, b->table, names, n, '"', '"');
    dbp_textbuf_str(&sql, " VALUES (");
    for (size_t i = 0; i < n; i++)
        dbp_textbuf_str(&sql, i ? ", ?" : "?");
    dbp_textbuf_str(&sql, ")");
    rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
    if (rc == DBP_OK) {
        int prc = sqlite3_prepare_v2(b->c->db, sql.data, (int)sql.len, &b->stmt, NULL);
        if (prc != SQLITE_OK)
            rc = sqlite_fail(b->c->db, prc, 1, err);
    }
    dbp_textbuf_free(&sql);
    return rc;
}

static int bulk_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    bulk_insert *b = arg;
    int rc = DBP_OK;
    for (size_t i = 0; rc == DBP_OK && i < n; i++) {
        dbp_cell v = cells[i];
        const char *why = v.kind == DBP_V_NULL ? NULL : fit_value(&b->plans[i], &v);
        if (why)
            return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                                 "column '%.100s' (declared %.40s): a value %s", b->names[i],
                                 b->plans[i].declared ? b->plans[i].declared : "", why);
        rc = sqlite_bind_value(b->c, b->stmt, (int)i + 1, &v, "column", b->names[i], 0, err);
    }
    if (rc == DBP_OK) {
        int step = sqlite3_step(b->stmt);
        if (step != SQLITE_DONE)
            rc = sqlite_fail(b->c->db, step, 0, err);
    }
    sqlite3_reset(b->stmt);
    return rc;
}

/* One prepared INSERT per row inside a savepoint: all rows or none. */
int sqlite_bulk_load(void *conn, const char *table, const dbp_params *options,
                     struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                     int64_t *loaded, dbp_error *err)
{
    (void)options; /* no options */
    sqlite_conn *c = conn;
    int rc = sqlite_exec_simple(c, "SAVEPOINT dbp_write_frame", err);
    if (rc != DBP_OK)
        return rc;
    c->cancelled = ctx->cancelled;
    bulk_insert b = {.c = c, .table = table};
    dbp_frame_sink sink = {.columns = bulk_columns, .row = bulk_row, .arg = &b};
    rc = sqlite_stopped(c, dbp_arrow_walk(rows, &sink, ctx->cancelled, loaded, err), err);
    if (rc != DBP_OK && err)
        snprintf(err->message + strlen(err->message), sizeof err->message - strlen(err->message),
                 " (frame row %lld; no row was written)", (long long)*loaded);
    sqlite3_finalize(b.stmt);
    for (size_t i = 0; i < b.n_plans; i++)
        dbp_free(b.plans[i].declared);
    dbp_free(b.plans);
    c->cancelled = NULL;
    dbp_error ignored;
    if (rc != DBP_OK) {
        sqlite_exec_simple(c, "ROLLBACK TO dbp_write_frame", &ignored);
        *loaded = 0;
    }
    int end = sqlite_exec_simple(c, "RELEASE dbp_write_frame", rc == DBP_OK ? err : &ignored);
    return rc == DBP_OK ? end : rc;
}
