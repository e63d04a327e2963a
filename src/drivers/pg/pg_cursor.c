/* pg_cursor.c - PostgreSQL query results, batch by batch: through
 * COPY (<query>) TO STDOUT (FORMAT binary) for parameterless reads, else
 * the extended protocol with binary results (row by row for streams). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "pg_copy.h"
#include "pg_internal.h"
#include "textbuf.h"

/* Whether `sql` is a plain read that COPY (...) TO STDOUT accepts: one
 * statement starting SELECT, WITH, VALUES or TABLE. A semicolon anywhere
 * but at the end (a second statement, a comment after `;`, or one inside
 * a literal we do not parse) sends it the regular way. */
static int is_plain_read(const char *sql, size_t len)
{
    while (len && (isspace((unsigned char)sql[len - 1]) || sql[len - 1] == ';'))
        len--;
    if (memchr(sql, ';', len))
        return 0;
    size_t i = 0;
    while (i < len && (isspace((unsigned char)sql[i]) || sql[i] == '('))
        i++;
    static const char *const starts[] = {"select", "with", "values", "table"};
    for (size_t k = 0; k < sizeof starts / sizeof *starts; k++) {
        size_t n = strlen(starts[k]);
        if (len - i > n && strncasecmp(sql + i, starts[k], n) == 0 &&
            !isalnum((unsigned char)sql[i + n]) && sql[i + n] != '_')
            return 1;
    }
    return 0;
}

static void close_cursor(pg_conn *c);

/* Starts COPY (<query>) TO STDOUT (FORMAT binary). The columns come from a
 * fresh unnamed describe, never the cache: the COPY plans the query anew,
 * so a cached description could be stale after DDL. */
static int open_copy(pg_conn *c, const char *sql, size_t len, dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    int rc = pg_statement_fresh(c, sql, len, &cur->stmt, err);
    if (rc != DBP_OK)
        return rc;
    cur->owns_stmt = 1;
    cur->kind = CURSOR_COPY;
    /* Trailing semicolons would end the inner query early; the newline ends
     * a trailing -- comment before the closing parenthesis. */
    while (len && (isspace((unsigned char)sql[len - 1]) || sql[len - 1] == ';'))
        len--;
    dbp_textbuf copy_sql = {0};
    dbp_textbuf_printf(&copy_sql, "COPY (%.*s\n) TO STDOUT (FORMAT binary)", (int)len, sql);
    if (copy_sql.failed)
        return dbp_error_nomem(err);
    rc = PQsendQuery(c->pg, copy_sql.data) ? DBP_OK : pg_error(c, NULL, err);
    dbp_textbuf_free(&copy_sql);
    PGresult *res = NULL;
    if (rc == DBP_OK)
        rc = pg_next_result(c, &res, err);
    if (rc == DBP_OK && PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = pg_error(c, res, err);
        PQclear(res);
        res = NULL;
        pg_drain(c, NULL, NULL);
    }
    PQclear(res);
    return rc;
}

/* Runs the prepared statement and waits for its first result, so that a
 * cached statement the server no longer accepts can be prepared again. */
static int open_rows(pg_conn *c, const dbp_params *params, const dbp_exec_ctx *ctx,
                     dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    int rc = pg_send_bound(c, cur->stmt, params, 0, err);
    if (rc != DBP_OK)
        return rc;
    cur->kind = CURSOR_ROWS;
    /* A stream takes rows as they come; a query takes them at once. */
    cur->single_row = !ctx->read_all && PQsetSingleRowMode(c->pg);
    PGresult *first;
    rc = pg_next_result(c, &first, err);
    if (rc != DBP_OK)
        return rc;
    if (PQresultStatus(first) == PGRES_FATAL_ERROR) {
        rc = pg_error(c, first, err);
        PQclear(first);
        pg_drain(c, NULL, NULL);
        cur->finished = 1;
        return rc;
    }
    cur->rows = first;
    return DBP_OK;
}

int pg_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err)
{
    pg_conn *c = conn;
    if (dbp_params_width(params) > PG_MAX_PARAMS)
        return pg_too_many_params(dbp_params_width(params), err);
    pg_call_begin(c, ctx);
    close_cursor(c);
    pg_cursor *cur = &c->cur;
    size_t n_params = dbp_params_width(params);
    int copy = ctx->copy_mode == DBP_COPY_ALWAYS ||
               (ctx->copy_mode == DBP_COPY_AUTO && n_params == 0 && is_plain_read(sql, len));
    int rc;
    if (copy && n_params) {
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "COPY cannot take parameters; use copy=False for this query");
    } else if (copy) {
        rc = open_copy(c, sql, len, err);
    } else {
        for (int attempt = 0;; attempt++) {
            rc = pg_statement_for(c, sql, len, params, &cur->stmt, &cur->owns_stmt, err);
            if (rc == DBP_OK && cur->stmt->n_fields > 0)
                rc = open_rows(c, params, ctx, err);
            if (rc == DBP_OK || attempt > 0 || cur->owns_stmt || !pg_forget_if_stale(c, err))
                break;
            if (cur->owns_stmt) /* dropped from the cache: ours to free */
                pg_statement_free(cur->stmt);
            cur->stmt = NULL;
            cur->owns_stmt = 0;
            cur->finished = 0;
        }
    }
    if (cur->stmt)
        c->session_changes |= cur->stmt->session_changes;
    if (rc == DBP_OK && cur->stmt->n_fields == 0)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the statement returns no columns; use execute() for it");
    if (rc != DBP_OK)
        close_cursor(c);
    pg_call_end(c);
    return rc;
}

static int new_result(pg_cursor *cur, dbp_result **out, dbp_error *err)
{
    const pg_statement *st = cur->stmt;
    int rc = dbp_result_new(out, (size_t)st->n_fields, (const char *const *)st->field_names, err);
    for (int i = 0; rc == DBP_OK && i < st->n_fields; i++)
        rc = dbp_column_set_type(dbp_result_column(*out, (size_t)i), st->plans[i].type);
    if (rc != DBP_OK) {
        dbp_result_free(*out);
        *out = NULL;
        return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
    }
    return DBP_OK;
}

/* Removes the COPY header (signature, flags, extension area) once. */
static int skip_header(pg_cursor *cur, dbp_error *err)
{
    long used = pg_copy_header_length(cur->copy_buf, cur->copy_len, err);
    if (used <= 0)
        return (int)used;
    memmove(cur->copy_buf, cur->copy_buf + used, cur->copy_len - (size_t)used);
    cur->copy_len -= (size_t)used;
    cur->header_done = 1;
    return 1;
}

static int fetch_copy(pg_conn *c, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                      dbp_result *res, int *done, dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    int64_t rows = 0;
    size_t parsed = 0;
    int trailer = 0;
    for (;;) {
        /* Decode the complete tuples buffered so far. */
        while (cur->header_done && !trailer) {
            if (limits->max_rows >= 0 && rows >= limits->max_rows)
                break;
            if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled))
                return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014", "statement cancelled");
            long used = pg_copy_tuple(cur->copy_buf + parsed, cur->copy_len - parsed,
                                      cur->stmt->plans, cur->stmt->field_names,
                                      cur->stmt->n_fields, res, &trailer, err);
            if (used < 0)
                return err ? err->category : DBP_E_PROTOCOL;
            if (used == 0)
                break;
            parsed += (size_t)used;
            if (!trailer) {
                rows++;
                cur->rows_read++;
                if (dbp_fetch_batch_full(res, limits)) {
                    int rc = dbp_result_finish_batch(res, err);
                    if (rc != DBP_OK)
                        return rc;
                }
            }
        }
        memmove(cur->copy_buf, cur->copy_buf + parsed, cur->copy_len - parsed);
        cur->copy_len -= parsed;
        parsed = 0;
        if (trailer || (limits->max_rows >= 0 && rows >= limits->max_rows))
            break;
        /* Need more bytes. */
        char *chunk;
        int n = PQgetCopyData(c->pg, &chunk, 1);
        if (n == 0) {
            int rc = pg_wait(c, 0, err);
            if (rc != DBP_OK)
                return rc;
            continue;
        }
        if (n == -1) { /* the COPY ended without a trailer: its status says why */
            break;
        }
        if (n < -1)
            return pg_error(c, NULL, err);
        if (cur->copy_len + (size_t)n > cur->copy_cap) {
            size_t cap = cur->copy_cap ? cur->copy_cap : 65536;
            while (cap < cur->copy_len + (size_t)n)
                cap *= 2;
            char *grown = dbp_realloc(cur->copy_buf, cap);
            if (!grown) {
                PQfreemem(chunk);
                return dbp_error_nomem(err);
            }
            cur->copy_buf = grown;
            cur->copy_cap = cap;
        }
        memcpy(cur->copy_buf + cur->copy_len, chunk, (size_t)n);
        cur->copy_len += (size_t)n;
        PQfreemem(chunk);
        if (!cur->header_done && skip_header(cur, err) < 0)
            return err ? err->category : DBP_E_PROTOCOL;
    }
    if (trailer || !(limits->max_rows >= 0 && rows >= limits->max_rows)) {
        /* The end: the trailer, then the COPY's own status. */
        int rc = pg_skip_copy_out(c, err);
        if (rc == DBP_OK)
            rc = pg_drain(c, NULL, err);
        cur->finished = 1; /* the server ended the statement, or the link is gone */
        if (rc != DBP_OK)
            return rc;
        *done = 1;
    }
    return DBP_OK;
}

static int fetch_rows(pg_conn *c, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                      dbp_result *res, int *done, dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    const pg_statement *st = cur->stmt;
    int64_t rows = 0;
    while (!(limits->max_rows >= 0 && rows >= limits->max_rows)) {
        if (!cur->rows || cur->row >= PQntuples(cur->rows)) {
            PQclear(cur->rows);
            cur->rows = NULL;
            cur->row = 0;
            PGresult *r;
            int rc = pg_next_result(c, &r, err);
            if (rc != DBP_OK)
                return rc;
            if (!r) {
                cur->finished = 1;
                *done = 1;
                break;
            }
            ExecStatusType status = PQresultStatus(r);
            if (status == PGRES_FATAL_ERROR) {
                rc = pg_error(c, r, err);
                PQclear(r);
                pg_drain(c, NULL, NULL);
                cur->finished = 1;
                return rc;
            }
            if (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK)
                cur->rows = r;
            else
                PQclear(r);
            continue;
        }
        if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled))
            return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014", "statement cancelled");
        for (int i = 0; i < st->n_fields; i++) {
            int32_t len = PQgetisnull(cur->rows, cur->row, i)
                              ? -1
                              : PQgetlength(cur->rows, cur->row, i);
            int rc = pg_decode_value(&st->plans[i], PQgetvalue(cur->rows, cur->row, i), len,
                                     dbp_result_column(res, (size_t)i), st->field_names[i],
                                     err);
            if (rc != DBP_OK)
                return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
        }
        cur->row++;
        cur->rows_read++;
        rows++;
        if (dbp_fetch_batch_full(res, limits)) {
            int rc = dbp_result_finish_batch(res, err);
            if (rc != DBP_OK)
                return rc;
        }
    }
    return DBP_OK;
}

int pg_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err)
{
    pg_conn *c = conn;
    pg_cursor *cur = &c->cur;
    *done = 0;
    if (cur->finished) {
        *done = 1;
        return new_result(cur, out, err);
    }
    dbp_result *res;
    int rc = new_result(cur, &res, err);
    if (rc != DBP_OK)
        return rc;
    pg_call_begin(c, ctx);
    rc = cur->kind == CURSOR_COPY ? fetch_copy(c, limits, ctx, res, done, err)
                                  : fetch_rows(c, limits, ctx, res, done, err);
    pg_call_end(c);
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    *out = res;
    return DBP_OK;
}

void pg_cursor_free(pg_cursor *cur)
{
    PQclear(cur->rows);
    dbp_free(cur->copy_buf);
    if (cur->owns_stmt)
        pg_statement_free(cur->stmt);
    memset(cur, 0, sizeof *cur);
}

/* Stops a cursor that has not reached its end: the server is asked to
 * cancel, and what it already sent is read and dropped, within the call's
 * cancel grace (else the connection is given up). */
static void close_cursor(pg_conn *c)
{
    pg_cursor *cur = &c->cur;
    if (cur->kind != CURSOR_NONE && !cur->finished && !c->dead &&
        PQstatus(c->pg) == CONNECTION_OK) {
        pg_cancel(c);
        PQclear(cur->rows);
        cur->rows = NULL;
        if (cur->kind != CURSOR_COPY || pg_skip_copy_out(c, NULL) == DBP_OK)
            pg_drain(c, NULL, NULL);
    }
    pg_cursor_free(cur);
}

void pg_cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    close_cursor(c);
    pg_call_end(c);
}
