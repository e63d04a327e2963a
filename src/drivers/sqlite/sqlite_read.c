/* sqlite_read.c - SQLite results: each column's type from its declared type
 * (docs/sqlite.md), values that disagree with it, and cursors that fetch
 * Arrow batches. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sqlite_internal.h"
#include "textparse.h"

/* ---- result types ---------------------------------------------------------- */

static int contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* The declared type decides the column's kind; the order of these tests
 * follows SQLite's affinity rules, after the types SQLite has no affinity
 * for (booleans, dates, decimals). */
column_plan sqlite_plan_column(const char *declared)
{
    column_plan plan = {.kind = K_INFER, .type = {DBP_T_NULL, 0, 0}, .declared = NULL};
    if (!declared || !*declared)
        return plan;
    char up[64];
    size_t n = 0;
    for (; declared[n] && n < sizeof up - 1; n++)
        up[n] = (char)toupper((unsigned char)declared[n]);
    up[n] = '\0';
    int p = 0, s = 0;
    if (contains(up, "BOOL")) {
        plan.kind = K_BOOL;
        plan.type.id = DBP_T_BOOL;
    } else if (contains(up, "DATETIME") || contains(up, "TIMESTAMP")) {
        plan.kind = K_DATETIME; /* "TIMESTAMPTZ", "... WITH TIME ZONE": in UTC */
        plan.type.id = contains(up, "TZ") || contains(up, "TIME ZONE") ? DBP_T_TIMESTAMP_UTC
                                                                       : DBP_T_TIMESTAMP_US;
    } else if (strncmp(up, "DATE", 4) == 0) {
        plan.kind = K_DATE;
        plan.type.id = DBP_T_DATE32;
    } else if (strncmp(up, "TIME", 4) == 0) {
        plan.kind = K_TIME;
        plan.type.id = DBP_T_TIME64_US;
    } else if ((strncmp(up, "DECIMAL", 7) == 0 || strncmp(up, "NUMERIC", 7) == 0) &&
               (sscanf(up + 7, " ( %d , %d )", &p, &s) == 2 ||
                (s = 0, sscanf(up + 7, " ( %d )", &p) == 1)) &&
               p >= 1 && p <= 38 && s >= 0 && s <= p) {
        plan.kind = K_DECIMAL;
        plan.type = (dbp_type){DBP_T_DECIMAL128, p, s};
    } else if (contains(up, "INT")) {
        plan.kind = K_INT;
        plan.type.id = DBP_T_INT64;
    } else if (contains(up, "CHAR") || contains(up, "CLOB") || contains(up, "TEXT")) {
        plan.kind = K_TEXT;
        plan.type.id = DBP_T_STRING;
    } else if (contains(up, "BLOB")) {
        plan.kind = K_BLOB;
        plan.type.id = DBP_T_BINARY;
    } else if (contains(up, "REAL") || contains(up, "FLOA") || contains(up, "DOUB")) {
        plan.kind = K_FLOAT;
        plan.type.id = DBP_T_FLOAT64;
    }
    return plan;
}

static const char *storage_name(int storage)
{
    switch (storage) {
    case SQLITE_INTEGER:
        return "INTEGER";
    case SQLITE_FLOAT:
        return "REAL";
    case SQLITE_TEXT:
        return "TEXT";
    default:
        return "BLOB";
    }
}

static int mismatch(const cursor *cur, int col, int storage, const char *why, dbp_error *err)
{
    const char *name = sqlite3_column_name(cur->stmt, col);
    const char *declared = cur->plans[col].declared;
    return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                         "column '%s' (declared %s) holds a %s value at row %lld that %s; "
                         "convert it in the SQL, e.g. CAST(%s AS TEXT)",
                         name ? name : "?", declared && *declared ? declared : "without a type",
                         storage_name(storage), (long long)cur->rows_read + 1, why,
                         name ? name : "column");
}

#define EXACT_DOUBLE_LIMIT ((sqlite3_int64)1 << 53) /* larger integers may round */

static int append_decimal_text(cursor *cur, int col, int storage, const char *s, size_t n,
                               dbp_column *out, dbp_error *err)
{
    __int128 dec;
    if (dbp_parse_decimal(s, n, out->type.precision, out->type.scale, &dec) != DBP_OK)
        return mismatch(cur, col, storage,
                        "does not fit the declared precision and scale without rounding", err);
    return dbp_column_append_decimal(out, dec);
}

/* Converts a value through its text form (SQLite renders numbers as text on
 * request), for text, blob, temporal and decimal columns. */
static int append_text_as(cursor *cur, int col, int storage, dbp_column *out, dbp_error *err)
{
    sqlite3_stmt *st = cur->stmt;
    const char *s = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    int32_t days;
    int64_t us;
    switch (cur->plans[col].kind) {
    case K_TEXT:
    case K_INFER:
        if (!dbp_utf8_valid((const unsigned char *)s, n))
            return mismatch(cur, col, storage, "is not valid UTF-8", err);
        return dbp_column_append_bytes(out, s, n);
    case K_BLOB:
        return dbp_column_append_bytes(out, s, n);
    case K_DATE:
        if (dbp_parse_date(s, n, &days) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT, "is not a date 'YYYY-MM-DD'", err);
        return dbp_column_append_int(out, days);
    case K_TIME:
        if (dbp_parse_time(s, n, &us) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT,
                            "is not a time 'HH:MM[:SS[.ffffff]]' with at most microseconds",
                            err);
        return dbp_column_append_int(out, us);
    case K_DATETIME:
        if (dbp_parse_timestamp(s, n, &us) != DBP_OK)
            return mismatch(cur, col, SQLITE_TEXT,
                            "is not a timestamp 'YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][+HH:MM]' "
                            "with at most microseconds",
                            err);
        return dbp_column_append_int(out, us);
    case K_DECIMAL:
        return append_decimal_text(cur, col, storage, s, n, out, err);
    default:
        return mismatch(cur, col, SQLITE_TEXT, "cannot be converted exactly", err);
    }
}

/* The type a K_INFER column takes from its first value. */
static dbp_type inferred_type(int storage)
{
    switch (storage) {
    case SQLITE_INTEGER:
        return (dbp_type){DBP_T_INT64, 0, 0};
    case SQLITE_FLOAT:
        return (dbp_type){DBP_T_FLOAT64, 0, 0};
    case SQLITE_TEXT:
        return (dbp_type){DBP_T_STRING, 0, 0};
    default:
        return (dbp_type){DBP_T_BINARY, 0, 0};
    }
}

/* Appends one value, converting only where the conversion is exact. */
static int append_value(cursor *cur, int col, dbp_column *out, dbp_error *err)
{
    sqlite3_stmt *st = cur->stmt;
    int storage = sqlite3_column_type(st, col);
    if (storage == SQLITE_NULL)
        return dbp_column_append_null(out);
    column_plan *plan = &cur->plans[col];
    if (plan->kind == K_INFER) {
        if (out->type.id == DBP_T_NULL) {
            int rc = dbp_column_set_type(out, inferred_type(storage));
            if (rc != DBP_OK)
                return rc;
        } else if (out->type.id == DBP_T_INT64 && storage == SQLITE_FLOAT) {
            /* INTEGER then REAL in one untyped column: all become doubles when
             * that is exact, within the first batch only (types are fixed
             * after it). */
            if (cur->fetched_once || dbp_column_promote_int64_to_float64(out) != DBP_OK)
                return mismatch(cur, col, storage,
                                "mixes with INTEGER values that doubles cannot hold exactly",
                                err);
        }
    }
    switch (out->type.id) {
    case DBP_T_INT64:
        if (storage == SQLITE_INTEGER)
            return dbp_column_append_int(out, sqlite3_column_int64(st, col));
        if (storage == SQLITE_FLOAT) {
            double d = sqlite3_column_double(st, col);
            if (d == floor(d) && fabs(d) < 9.2e18)
                return dbp_column_append_int(out, (int64_t)d);
        }
        return mismatch(cur, col, storage, "is not a whole number in the INTEGER range", err);
    case DBP_T_FLOAT64:
        if (storage == SQLITE_FLOAT)
            return dbp_column_append_double(out, sqlite3_column_double(st, col));
        if (storage == SQLITE_INTEGER) {
            sqlite3_int64 v = sqlite3_column_int64(st, col);
            if (v >= -EXACT_DOUBLE_LIMIT && v <= EXACT_DOUBLE_LIMIT)
                return dbp_column_append_double(out, (double)v);
        }
        return mismatch(cur, col, storage, "is not a number a double holds exactly", err);
    case DBP_T_BOOL:
        if (storage == SQLITE_INTEGER) {
            sqlite3_int64 v = sqlite3_column_int64(st, col);
            if (v == 0 || v == 1)
                return dbp_column_append_bool(out, (int)v);
        }
        return mismatch(cur, col, storage, "is not 0 or 1", err);
    case DBP_T_DECIMAL128:
        if (storage == SQLITE_FLOAT) {
            /* SQLite's own text of a REAL keeps 15 digits; use all it has. */
            char text[32];
            size_t n = (size_t)dbp_format_double(sqlite3_column_double(st, col), text, sizeof text);
            return append_decimal_text(cur, col, storage, text, n, out, err);
        }
        if (storage == SQLITE_INTEGER || storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not a number", err);
    case DBP_T_STRING:
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        if (storage == SQLITE_INTEGER) { /* decimal digits are exact */
            char digits[24];
            int n = snprintf(digits, sizeof digits, "%lld", (long long)sqlite3_column_int64(st, col));
            return dbp_column_append_bytes(out, digits, (size_t)n);
        }
        return mismatch(cur, col, storage, "has no exact text form", err);
    case DBP_T_BINARY:
        if (storage == SQLITE_BLOB)
            return dbp_column_append_bytes(out, sqlite3_column_blob(st, col),
                                           (size_t)sqlite3_column_bytes(st, col));
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not bytes", err);
    default: /* dates and times arrive as text */
        if (storage == SQLITE_TEXT)
            return append_text_as(cur, col, storage, out, err);
        return mismatch(cur, col, storage, "is not an ISO 8601 text value", err);
    }
}

/* ---- cursors ----------------------------------------------------------------- */

void sqlite_cursor_reset(sqlite_conn *c)
{
    cursor *cur = &c->cur;
    if (cur->stmt)
        sqlite_release_stmt(cur->stmt, cur->cached);
    for (int i = 0; cur->plans && i < cur->n_cols; i++)
        dbp_free(cur->plans[i].declared);
    dbp_free(cur->plans);
    memset(cur, 0, sizeof *cur);
}

void sqlite_cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    (void)ctx; /* finalizing a statement never waits */
    sqlite_cursor_reset(conn);
}

int sqlite_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err)
{
    sqlite_conn *c = conn;
    sqlite_cursor_reset(c);
    sqlite_budget_begin(c, ctx);
    cursor *cur = &c->cur;
    int rc = sqlite_prepare(c, sql, len, &cur->stmt, &cur->cached, err);
    if (rc != DBP_OK) {
        cur->stmt = NULL;
        return sqlite_budget_end(c, ctx, rc, err);
    }
    if (c->budget_end_ns && !sqlite3_stmt_readonly(cur->stmt)) {
        c->over_budget = 1; /* a write may wait for a lock: not on an event loop */
        sqlite_cursor_reset(c);
        return sqlite_budget_end(c, ctx, DBP_E_CANCELLED, err);
    }
    rc = sqlite_bind_row(c, cur->stmt, params, 0, 1, err); /* stream(): fetched later */
    if (rc == DBP_OK && sqlite3_column_count(cur->stmt) == 0)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the statement returns no columns; use execute() for it");
    if (rc != DBP_OK) {
        sqlite_cursor_reset(c);
        return sqlite_budget_end(c, ctx, rc, err);
    }
    return rc; /* the budget runs on into the fetch */
}

/* Steps to the first row, then plans the columns: a cached statement is
 * re-prepared by that step if the schema changed, and only then do its
 * declared types describe the rows. */
static int plan_columns(sqlite_conn *c, dbp_error *err)
{
    cursor *cur = &c->cur;
    int step = sqlite3_step(cur->stmt);
    if (step == SQLITE_ROW)
        cur->row_pending = 1;
    else if (step == SQLITE_DONE)
        cur->finished = 1;
    else
        return sqlite_fail(c->db, step, 0, err);
    int n = sqlite3_column_count(cur->stmt);
    column_plan *plans = dbp_calloc((size_t)n, sizeof *plans);
    if (!plans)
        return dbp_error_nomem(err);
    cur->plans = plans;
    cur->n_cols = n;
    for (int i = 0; i < n; i++) {
        const char *declared = sqlite3_column_decltype(cur->stmt, i);
        plans[i] = sqlite_plan_column(declared);
        plans[i].declared = declared ? dbp_strdup(declared) : NULL;
        if (declared && !plans[i].declared)
            return dbp_error_nomem(err);
    }
    return DBP_OK;
}

static int new_result(cursor *cur, dbp_result **out, dbp_error *err)
{
    const char **names = dbp_calloc((size_t)cur->n_cols, sizeof *names);
    if (!names)
        return dbp_error_nomem(err);
    for (int i = 0; i < cur->n_cols; i++) {
        const char *name = sqlite3_column_name(cur->stmt, i);
        names[i] = name ? name : "";
    }
    int rc = dbp_result_new(out, (size_t)cur->n_cols, names, err);
    dbp_free(names);
    for (int i = 0; rc == DBP_OK && i < cur->n_cols; i++)
        if (cur->plans[i].type.id != DBP_T_NULL)
            rc = dbp_column_set_type(dbp_result_column(*out, (size_t)i), cur->plans[i].type);
    if (rc != DBP_OK) {
        dbp_result_free(*out);
        *out = NULL;
        return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
    }
    return DBP_OK;
}

/* Whether a column still waits for a non-NULL value to learn its type. A
 * full read (query) keeps its batch open until then, so that all of its
 * batches share one schema. */
static int has_untyped_column(const cursor *cur, dbp_result *res)
{
    for (int i = 0; i < cur->n_cols; i++)
        if (dbp_result_column(res, (size_t)i)->type.id == DBP_T_NULL)
            return 1;
    return 0;
}

static int fetch_watched(sqlite_conn *c, const dbp_fetch_limits *limits,
                         const dbp_exec_ctx *ctx, dbp_result **out, int *done, dbp_error *err);

int sqlite_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err)
{
    sqlite_conn *c = conn;
    c->cancelled = ctx->cancelled;
    int rc = c->cur.plans ? DBP_OK : plan_columns(c, err);
    if (rc == DBP_OK)
        rc = fetch_watched(c, limits, ctx, out, done, err);
    rc = sqlite_budget_end(c, ctx, sqlite_stopped(c, rc, err), err);
    c->cancelled = NULL;
    return rc;
}

static int fetch_watched(sqlite_conn *c, const dbp_fetch_limits *limits,
                         const dbp_exec_ctx *ctx, dbp_result **out, int *done, dbp_error *err)
{
    cursor *cur = &c->cur;
    dbp_result *res;
    int rc = new_result(cur, &res, err);
    if (rc != DBP_OK)
        return rc;
    int64_t rows = 0;
    *done = 0;
    while (rc == DBP_OK) {
        if (!cur->row_pending) {
            if (cur->finished) {
                *done = 1;
                break;
            }
            int step = sqlite3_step(cur->stmt);
            if (step == SQLITE_DONE) {
                cur->finished = 1;
                continue;
            }
            if (step != SQLITE_ROW) {
                rc = sqlite_fail(c->db, step, 0, err);
                break;
            }
            cur->row_pending = 1;
        }
        if (limits->max_rows >= 0 && rows >= limits->max_rows)
            break; /* the pending row starts the next fetch */
        if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled)) {
            rc = dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "statement cancelled");
            break;
        }
        for (int i = 0; i < cur->n_cols && rc == DBP_OK; i++) {
            rc = append_value(cur, i, dbp_result_column(res, (size_t)i), err);
            if (rc == DBP_E_NOMEM)
                rc = dbp_error_nomem(err);
        }
        if (rc != DBP_OK)
            break;
        cur->row_pending = 0;
        cur->rows_read++;
        rows++;
        if (dbp_fetch_batch_full(res, limits) &&
            (limits->max_rows >= 0 || !has_untyped_column(cur, res)))
            rc = dbp_result_finish_batch(res, err);
    }
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    /* Later fetches keep the types this one settled on. */
    for (int i = 0; i < cur->n_cols; i++)
        cur->plans[i].type = dbp_result_column(res, (size_t)i)->type;
    cur->fetched_once = 1;
    *out = res;
    return DBP_OK;
}
