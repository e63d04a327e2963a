/* sqlite_stmt.c - SQLite statements: the per-connection statement cache,
 * parameters bound by position or name, and execute (scripts and
 * execute_many). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sqlite_internal.h"
#include "textparse.h"

/* ---- statements ------------------------------------------------------------ */

#define US_PER_DAY 86400000000LL
#define DAYS_0000_01_01 (-719528LL)
#define DAYS_10000_01_01 2932897LL

/* Whether the text after a statement holds another statement. */
static int has_more_sql(const char *tail, const char *end)
{
    for (; tail < end; tail++)
        if (!isspace((unsigned char)*tail) && *tail != ';')
            return 1;
    return 0;
}

/* Compiles `sql` (exactly one statement), reusing a cached statement when the
 * same text ran before on this connection. */
int sqlite_prepare(sqlite_conn *c, const char *sql, size_t len, sqlite3_stmt **out, int *cached,
                   dbp_error *err)
{
    *cached = 0;
    for (int i = 0; i < c->n_cached; i++) {
        cached_stmt *e = &c->cache[i];
        if (e->len == len && memcmp(e->sql, sql, len) == 0 && e->stmt != c->cur.stmt) {
            e->last_used = ++c->tick;
            *out = e->stmt;
            *cached = 1;
            return DBP_OK;
        }
    }
    const char *tail;
    sqlite3_stmt *stmt = NULL;
    int keep = c->cfg->cache_size > 0;
    int rc = sqlite3_prepare_v3(c->db, sql, (int)len, keep ? SQLITE_PREPARE_PERSISTENT : 0, &stmt,
                                &tail);
    if (rc != SQLITE_OK)
        return sqlite_fail(c->db, rc, 1, err);
    if (!stmt)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42000", "the SQL text holds no statement");
    if (has_more_sql(tail, sql + len)) {
        sqlite3_finalize(stmt);
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42000",
                             "the SQL text holds more than one statement; this call runs "
                             "one (execute() without parameters runs a script)");
    }
    *out = stmt;
    if (!keep)
        return DBP_OK;
    int slot = c->n_cached;
    if (slot == c->cfg->cache_size) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n_cached; i++)
            if (c->cache[i].last_used < c->cache[slot].last_used)
                slot = i;
        if (c->cache[slot].stmt == c->cur.stmt)
            return DBP_OK; /* in use by the cursor: leave this one uncached */
        sqlite3_finalize(c->cache[slot].stmt);
        dbp_free(c->cache[slot].sql);
        c->cache[slot].stmt = NULL;
    }
    char *copy = dbp_strndup(sql, len);
    if (!copy) {
        if (slot != c->n_cached) { /* close the emptied slot's gap */
            c->cache[slot] = c->cache[--c->n_cached];
        }
        return DBP_OK; /* still usable, just not cached */
    }
    c->cache[slot] = (cached_stmt){copy, len, stmt, ++c->tick};
    if (slot == c->n_cached)
        c->n_cached++;
    *cached = 1;
    return DBP_OK;
}

void sqlite_release_stmt(sqlite3_stmt *stmt, int cached)
{
    if (cached) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    } else {
        sqlite3_finalize(stmt);
    }
}

/* What messages call value `index`: "parameter 2", "parameter ':id'",
 * "column 'price'" (`name` NULL when positional). */
static const char *value_label(char *buf, size_t size, const char *what, const char *name,
                               int index)
{
    if (name)
        snprintf(buf, size, "%s '%.100s'", what, name);
    else
        snprintf(buf, size, "%s %d", what, index);
    return buf;
}

int sqlite_bind_value(sqlite_conn *c, sqlite3_stmt *stmt, int index, const dbp_cell *v,
                      const char *what, const char *name, int copy, dbp_error *err)
{
    sqlite3_destructor_type keep = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
    char label[128];
    char text[48];
    int n, rc;
    switch (v->kind) {
    case DBP_V_NULL:
        rc = sqlite3_bind_null(stmt, index);
        break;
    case DBP_V_BOOL:
    case DBP_V_INT64:
        rc = sqlite3_bind_int64(stmt, index, v->i);
        break;
    case DBP_V_DOUBLE:
        if (isnan(v->d)) /* SQLite would store it as NULL without a word */
            return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                                 "%s: SQLite stores NaN as NULL, so NaN is refused; pass None "
                                 "for NULL",
                                 value_label(label, sizeof label, what, name, index));
        rc = sqlite3_bind_double(stmt, index, v->d);
        break;
    case DBP_V_TEXT:
    case DBP_V_DECIMAL: /* exact: kept as text */
    case DBP_V_UUID:
    case DBP_V_JSON: /* SQLite's JSON functions read text */
    case DBP_V_INET:
        rc = sqlite3_bind_text64(stmt, index, v->data, v->len, keep, SQLITE_UTF8);
        break;
    case DBP_V_BLOB:
        rc = sqlite3_bind_blob64(stmt, index, v->data, v->len, keep);
        break;
    case DBP_V_DATE:
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
        /* Dates are text of four-digit years, which the read path parses. */
        if (v->i < (v->kind == DBP_V_DATE ? DAYS_0000_01_01 : DAYS_0000_01_01 * US_PER_DAY) ||
            v->i >= (v->kind == DBP_V_DATE ? DAYS_10000_01_01 : DAYS_10000_01_01 * US_PER_DAY))
            return dbp_error_set(err, DBP_E_DATA, 0, "22008",
                                 "%s: a date outside the years 0000 to 9999, which SQLite's "
                                 "date text cannot hold",
                                 value_label(label, sizeof label, what, name, index));
        n = v->kind == DBP_V_DATE ? dbp_format_date(v->i, text, sizeof text)
                                  : dbp_format_timestamp(v->i, text, sizeof text);
        if (v->kind == DBP_V_TIMESTAMP_TZ)
            n += snprintf(text + n, sizeof text - (size_t)n, "+00:00");
        rc = sqlite3_bind_text(stmt, index, text, n, SQLITE_TRANSIENT);
        break;
    case DBP_V_TIME:
        n = dbp_format_time(v->i, text, sizeof text);
        rc = sqlite3_bind_text(stmt, index, text, n, SQLITE_TRANSIENT);
        break;
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "%s: SQLite has no type for %s; %s",
                             value_label(label, sizeof label, what, name, index),
                             dbp_value_kind_name(v->kind), dbp_value_kind_hint(v->kind));
    }
    return rc == SQLITE_OK ? DBP_OK : sqlite_fail(c->db, rc, 0, err);
}

/* Binds one row of parameters, by position or by name. */
int sqlite_bind_row(sqlite_conn *c, sqlite3_stmt *stmt, const dbp_params *params, size_t row,
                    int copy, dbp_error *err)
{
    int expected = sqlite3_bind_parameter_count(stmt);
    size_t given = dbp_params_width(params);
    if ((size_t)expected != given)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "the statement has %d parameter(s) but %zu were given", expected,
                             given);
    if (given == 0)
        return DBP_OK;
    int named = dbp_params_get(params, row, 0)->has_name;
    for (int i = 1; i <= expected; i++) {
        const dbp_value *v = NULL;
        if (!named) {
            v = dbp_params_get(params, row, (size_t)i - 1);
        } else {
            const char *placeholder = sqlite3_bind_parameter_name(stmt, i);
            if (!placeholder || placeholder[0] == '?')
                return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                     "parameters were given by name but placeholder %d is "
                                     "positional ('?'); pass a sequence instead",
                                     i);
            for (size_t k = 0; k < given && !v; k++) {
                const dbp_value *cand = dbp_params_get(params, row, k);
                if (strcmp(dbp_params_name(params, cand), placeholder + 1) == 0)
                    v = cand;
            }
            if (!v)
                return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                     "no value was given for parameter '%s'", placeholder);
        }
        dbp_cell cell;
        dbp_params_cell(params, v, &cell);
        int rc = sqlite_bind_value(c, stmt, i, &cell, "parameter",
                                   named ? sqlite3_bind_parameter_name(stmt, i) : NULL, copy,
                                   err);
        if (rc != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

/* Steps a statement to its end; rows it returns are skipped. */
static int step_to_end(sqlite_conn *c, sqlite3_stmt *stmt, const dbp_exec_ctx *ctx,
                       dbp_error *err)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (atomic_load(ctx->cancelled))
            return dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "statement cancelled");
    return rc == SQLITE_DONE ? DBP_OK : sqlite_fail(c->db, rc, 0, err);
}

/* Rows the last statement changed; 0 for statements that change none
 * (sqlite3_changes alone would repeat the previous DML's count). */
static int64_t changes_since(sqlite_conn *c, int64_t total_before)
{
    return sqlite3_total_changes64(c->db) == total_before ? 0 : sqlite3_changes64(c->db);
}

/* Runs every statement of a parameterless script. */
static int execute_script(sqlite_conn *c, const char *sql, size_t len, const dbp_exec_ctx *ctx,
                          int64_t *affected, dbp_error *err)
{
    const char *p = sql, *end = sql + len;
    *affected = 0;
    while (p < end) {
        sqlite3_stmt *stmt;
        const char *tail;
        int rc = sqlite3_prepare_v2(c->db, p, (int)(end - p), &stmt, &tail);
        if (rc != SQLITE_OK)
            return sqlite_fail(c->db, rc, 1, err);
        p = tail;
        if (!stmt)
            continue; /* whitespace or a comment */
        int64_t before = sqlite3_total_changes64(c->db);
        rc = step_to_end(c, stmt, ctx, err);
        sqlite3_finalize(stmt);
        if (rc != DBP_OK)
            return rc;
        *affected += changes_since(c, before);
    }
    return DBP_OK;
}

static int execute_watched(sqlite_conn *c, const char *sql, size_t len,
                           const dbp_params *params, const dbp_exec_ctx *ctx, int64_t *affected,
                           dbp_error *err);

int sqlite_execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    sqlite_conn *c = conn;
    c->cancelled = ctx->cancelled;
    int rc = sqlite_stopped(c, execute_watched(c, sql, len, params, ctx, affected, err), err);
    c->cancelled = NULL;
    return rc;
}

static int execute_watched(sqlite_conn *c, const char *sql, size_t len,
                           const dbp_params *params, const dbp_exec_ctx *ctx, int64_t *affected,
                           dbp_error *err)
{
    size_t rows = dbp_params_rows(params);
    if (rows == 0 && !params)
        return execute_script(c, sql, len, ctx, affected, err);

    sqlite3_stmt *stmt;
    int cached;
    int rc = sqlite_prepare(c, sql, len, &stmt, &cached, err);
    if (rc != DBP_OK)
        return rc;
    /* Several rows run all or nothing: in a savepoint, which nests inside a
     * caller's transaction and acts as one when there is none. */
    int many = rows > 1;
    if (many && (rc = sqlite_exec_simple(c, "SAVEPOINT dbp_execute_many", err)) != DBP_OK) {
        sqlite_release_stmt(stmt, cached);
        return rc;
    }
    *affected = 0;
    for (size_t row = 0; row < (rows ? rows : 1) && rc == DBP_OK; row++) {
        int64_t before = sqlite3_total_changes64(c->db);
        rc = sqlite_bind_row(c, stmt, params, row, 0, err);
        if (rc == DBP_OK)
            rc = step_to_end(c, stmt, ctx, err);
        if (rc == DBP_OK)
            *affected += changes_since(c, before);
        else if (many && err)
            snprintf(err->message + strlen(err->message),
                     sizeof err->message - strlen(err->message),
                     " (parameter row %zu; no row was written)", row);
        sqlite3_reset(stmt);
    }
    sqlite_release_stmt(stmt, cached);
    if (many) {
        dbp_error ignored;
        if (rc != DBP_OK)
            sqlite_exec_simple(c, "ROLLBACK TO dbp_execute_many", &ignored);
        int end_rc = sqlite_exec_simple(c, "RELEASE dbp_execute_many", rc == DBP_OK ? err : &ignored);
        if (rc == DBP_OK)
            rc = end_rc;
    }
    return rc;
}
