/* tds_cursor.c - MSSQL result sets for query() and stream(): columns
 * planned from db-lib's description, rows read into Arrow builders batch by
 * batch, and stopping a result set early with an attention. */
#include <stdio.h>
#include <string.h>
#include <sybfront.h>
#include <sybdb.h>

#include "alloc.h"
#include "error.h"
#include "tds_internal.h"
#include "tds_types.h"

void tds_cursor_reset(tds_cursor *cur)
{
    for (int i = 0; cur->names && i < cur->n_cols; i++)
        dbp_free(cur->names[i]);
    dbp_free(cur->names);
    dbp_free(cur->plans);
    memset(cur, 0, sizeof *cur);
}

/* Stops a result set that has not ended (an attention) under `ctx`, or
 * just forgets it when ctx is NULL (the connection is going away). */
static void close_cursor(tds_conn *c, const dbp_exec_ctx *ctx)
{
    tds_cursor *cur = &c->cur;
    if (ctx && cur->active && !cur->finished && !c->dead) {
        tds_call_begin(c, ctx);
        tds_cancel_results(c);
        tds_after_statement(c, cur->touches);
        tds_call_end(c);
    }
    tds_cursor_reset(cur);
}

void tds_cursor_close(void *conn, const dbp_exec_ctx *ctx) { close_cursor(conn, ctx); }

/* Plans the columns of the current result set. */
static int plan_columns(tds_conn *c, dbp_error *err)
{
    tds_cursor *cur = &c->cur;
    int n = dbnumcols(c->proc);
    cur->plans = dbp_calloc((size_t)n, sizeof *cur->plans);
    cur->names = dbp_calloc((size_t)n, sizeof *cur->names);
    if (!cur->plans || !cur->names)
        return dbp_error_nomem(err);
    cur->n_cols = n;
    for (int i = 0; i < n; i++) {
        const char *name = dbcolname(c->proc, i + 1);
        char generated[32];
        if (!name || !*name) { /* SELECT 1: SQL Server leaves it unnamed */
            snprintf(generated, sizeof generated, "column%d", i + 1);
            name = generated;
        }
        if (!(cur->names[i] = dbp_strdup(name)))
            return dbp_error_nomem(err);
        int rc = tds_plan_column(dbcoltype(c->proc, i + 1), dbcoltypeinfo(c->proc, i + 1),
                                 cur->names[i], &cur->plans[i], err);
        if (rc != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

int tds_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err)
{
    tds_conn *c = conn;
    close_cursor(c, ctx);
    tds_call_begin(c, ctx);
    tds_cursor *cur = &c->cur;
    cur->touches = tds_touches_transactions(c, sql, len);
    c->session_changed |= tds_session_changes(sql, len);
    if (params && dbp_params_rows(params) > 1) {
        tds_call_end(c);
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "a query takes one row of parameters");
    }
    int rc = tds_send_statement(c, sql, len, params, 0, NULL, err);
    /* Skip to the first result set with columns (row counts come first
     * for statements before it). */
    int found = 0, fails = 0;
    while (rc == DBP_OK && !found && !c->dead && !c->attention_sent) {
        RETCODE r = dbresults(c->proc);
        if (r == NO_MORE_RESULTS)
            break;
        if (r == FAIL) {
            if (DBDEAD(c->proc) || ++fails > 1000)
                break;
            continue;
        }
        found = dbnumcols(c->proc) > 0;
    }
    if (rc == DBP_OK && tds_failed(c)) { /* a statement before the rows failed */
        if (found)
            tds_cancel_results(c);
        rc = tds_call_error(c, err);
    } else if (rc == DBP_OK && !found) {
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the statement returns no columns; use execute() for it");
    }
    if (rc == DBP_OK) {
        rc = plan_columns(c, err);
        if (rc != DBP_OK)
            tds_cancel_results(c);
    }
    if (rc == DBP_OK) {
        cur->active = 1;
    } else {
        tds_after_statement(c, cur->touches);
        tds_cursor_reset(cur);
    }
    tds_call_end(c);
    return rc;
}

static int new_result(tds_cursor *cur, dbp_result **out, dbp_error *err)
{
    int rc = dbp_result_new(out, (size_t)cur->n_cols, (const char *const *)cur->names, err);
    for (int i = 0; rc == DBP_OK && i < cur->n_cols; i++)
        rc = dbp_column_set_type(dbp_result_column(*out, (size_t)i), cur->plans[i].type);
    if (rc != DBP_OK) {
        dbp_result_free(*out);
        *out = NULL;
        return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
    }
    return DBP_OK;
}

/* The end of the rows: the rest of the command is read (its errors
 * count), then the transaction count if needed. */
static int finish_cursor(tds_conn *c, dbp_error *err)
{
    tds_cursor *cur = &c->cur;
    tds_drain(c, NULL);
    cur->finished = 1;
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    tds_after_statement(c, cur->touches);
    return rc;
}

static int fetch_rows(tds_conn *c, const dbp_fetch_limits *limits, dbp_result *res, int *done,
                      dbp_error *err)
{
    tds_cursor *cur = &c->cur;
    DBPROCESS *proc = c->proc;
    int64_t rows = 0;
    while (limits->max_rows < 0 || rows < limits->max_rows) {
        if ((rows & 255) == 255 && tds_cancel_requested(c)) {
            tds_cancel_results(c);
            cur->finished = 1;
            tds_after_statement(c, cur->touches);
            return tds_call_error(c, err);
        }
        STATUS r = dbnextrow(proc);
        if (r == NO_MORE_ROWS) {
            *done = 1;
            return finish_cursor(c, err);
        }
        if (r == FAIL) {
            cur->finished = 1;
            if (!c->dead && !DBDEAD(proc))
                tds_cancel_results(c);
            tds_after_statement(c, cur->touches);
            return tds_call_error(c, err);
        }
        if (r != REG_ROW)
            continue; /* COMPUTE rows: not part of the result */
        for (int i = 0; i < cur->n_cols; i++) {
            int rc = tds_decode_value(proc, &cur->plans[i], dbdata(proc, i + 1),
                                      dbdatlen(proc, i + 1), dbp_result_column(res, (size_t)i),
                                      cur->names[i], err);
            if (rc != DBP_OK) {
                if (rc == DBP_E_NOMEM)
                    dbp_error_nomem(err);
                tds_cancel_results(c);
                cur->finished = 1;
                c->attention_sent = 0; /* our own stop, not the caller's cancel */
                tds_after_statement(c, cur->touches);
                return rc;
            }
        }
        if (c->fail.conversion) {
            tds_cancel_results(c);
            cur->finished = 1;
            c->attention_sent = 0;
            return tds_call_error(c, err);
        }
        rows++;
        cur->rows_read++;
        if (dbp_fetch_batch_full(res, limits)) {
            int rc = dbp_result_finish_batch(res, err);
            if (rc != DBP_OK) {
                tds_cancel_results(c);
                cur->finished = 1;
                c->attention_sent = 0;
                return rc;
            }
        }
    }
    return DBP_OK;
}

int tds_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err)
{
    tds_conn *c = conn;
    tds_cursor *cur = &c->cur;
    *done = 0;
    if (!cur->active)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "no cursor is open");
    dbp_result *res;
    int rc = new_result(cur, &res, err);
    if (rc != DBP_OK)
        return rc;
    if (cur->finished) {
        *done = 1;
        *out = res;
        return DBP_OK;
    }
    tds_call_begin(c, ctx);
    rc = fetch_rows(c, limits, res, done, err);
    tds_call_end(c);
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    *out = res;
    return DBP_OK;
}

