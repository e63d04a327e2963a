/* mysql_cursor.c - query results of the MySQL/MariaDB driver: a prepared
 * statement (binary protocol, with or without parameters) whose rows are
 * streamed unbuffered (nothing is stored whole by the connector) straight
 * into Arrow builders, batch by batch. Stopping a result early sends KILL
 * QUERY and reads the end of the result within the cancel grace, or gives
 * the connection up. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "mysql_internal.h"
#include "textparse.h"

/* Initial buffer of a variable-length column; grown to the longest value. */
#define INITIAL_VALUE_BYTES 256

struct my_cursor {
    MYSQL_STMT *stmt;
    char *sql;    /* its key in the statement cache */
    size_t sql_len;
    int n_cols;
    char **names;
    my_column_plan *plans;
    MYSQL_BIND *binds;
    unsigned long *lengths;
    my_bool *nulls, *truncated;
    void **buffers;
    unsigned long *capacities;
    int finished; /* every row was read */
};

static void cursor_free(my_conn *c, my_cursor *cur)
{
    if (!cur)
        return;
    my_stmt_give_back(c, cur->sql, cur->sql_len, cur->stmt, cur->finished);
    dbp_free(cur->sql);
    for (int i = 0; i < cur->n_cols; i++) {
        if (cur->names)
            dbp_free(cur->names[i]);
        if (cur->buffers)
            dbp_free(cur->buffers[i]);
    }
    dbp_free(cur->names);
    dbp_free(cur->plans);
    dbp_free(cur->binds);
    dbp_free(cur->lengths);
    dbp_free(cur->nulls);
    dbp_free(cur->truncated);
    dbp_free(cur->buffers);
    dbp_free(cur->capacities);
    dbp_free(cur);
}

/* Plans every column and binds a buffer to it. */
static int bind_columns(my_conn *c, my_cursor *cur, dbp_error *err)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(cur->stmt);
    if (!meta)
        return mysql_stmt_errno(cur->stmt)
                   ? my_error(c, cur->stmt, err)
                   : dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                   "the statement returns no columns; use execute() for it");
    int n = (int)mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    size_t un = (size_t)n;
    cur->n_cols = n;
    cur->names = dbp_calloc(un, sizeof *cur->names);
    cur->plans = dbp_calloc(un, sizeof *cur->plans);
    cur->binds = dbp_calloc(un, sizeof *cur->binds);
    cur->lengths = dbp_calloc(un, sizeof *cur->lengths);
    cur->nulls = dbp_calloc(un, sizeof *cur->nulls);
    cur->truncated = dbp_calloc(un, sizeof *cur->truncated);
    cur->buffers = dbp_calloc(un, sizeof *cur->buffers);
    cur->capacities = dbp_calloc(un, sizeof *cur->capacities);
    int rc = cur->names && cur->plans && cur->binds && cur->lengths && cur->nulls &&
                     cur->truncated && cur->buffers && cur->capacities
                 ? DBP_OK
                 : dbp_error_nomem(err);
    for (int i = 0; i < n && rc == DBP_OK; i++) {
        rc = my_plan_column(&fields[i], c->cfg, &cur->plans[i], err);
        if (rc != DBP_OK)
            break;
        cur->names[i] = dbp_strdup(fields[i].name);
        unsigned long size = cur->plans[i].fixed_size ? cur->plans[i].fixed_size
                                                      : INITIAL_VALUE_BYTES;
        cur->buffers[i] = dbp_calloc(1, size);
        if (!cur->names[i] || !cur->buffers[i]) {
            rc = dbp_error_nomem(err);
            break;
        }
        cur->capacities[i] = size;
        MYSQL_BIND *b = &cur->binds[i];
        b->buffer_type = cur->plans[i].field;
        b->buffer = cur->buffers[i];
        b->buffer_length = size;
        b->length = &cur->lengths[i];
        b->is_null = &cur->nulls[i];
        b->error = &cur->truncated[i];
        b->is_unsigned = cur->plans[i].decoder == MYD_UINT;
    }
    mysql_free_result(meta);
    if (rc == DBP_OK && mysql_stmt_bind_result(cur->stmt, cur->binds))
        rc = my_error(c, cur->stmt, err);
    return rc;
}

static void stop_result(my_conn *c, my_cursor *cur);

int my_cursor_open(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, dbp_error *err)
{
    my_conn *c = conn;
    if (c->cursor)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "a cursor is open already");
    my_cursor *cur = dbp_calloc(1, sizeof *cur);
    if (!cur)
        return dbp_error_nomem(err);
    my_call_begin(c, ctx);
    void *storage = NULL;
    cur->sql = dbp_malloc(sql_len + 1);
    int rc = cur->sql ? my_stmt_take(c, sql, sql_len, &cur->stmt, err) : dbp_error_nomem(err);
    if (cur->sql) {
        memcpy(cur->sql, sql, sql_len);
        cur->sql_len = sql_len;
    }
    if (rc == DBP_OK)
        rc = my_stmt_bind_row(c, cur->stmt, params, 0, &storage, err);
    if (rc == DBP_OK)
        rc = my_stmt_execute(c, cur->stmt, err);
    dbp_free(storage); /* the values went out with the execute */
    int executed = rc == DBP_OK;
    if (rc == DBP_OK)
        rc = bind_columns(c, cur, err);
    rc = my_read_outcome(c, rc, err);
    if (rc != DBP_OK) {
        if (executed && mysql_stmt_field_count(cur->stmt) > 0 && !c->dead)
            stop_result(c, cur); /* a column we cannot read: its rows are on their way */
        cursor_free(c, cur);
        my_call_end(c);
        return rc;
    }
    c->cursor = cur;
    my_call_end(c);
    return DBP_OK;
}

static int new_result(my_cursor *cur, dbp_result **out, dbp_error *err)
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

/* A value longer than its column's buffer: the buffer grows to it and the
 * connector copies it again from the row it holds (no I/O). */
static int refetch_long(my_conn *c, my_cursor *cur, int i, dbp_error *err)
{
    unsigned long need = cur->lengths[i];
    void *grown = dbp_realloc(cur->buffers[i], need);
    if (!grown)
        return dbp_error_nomem(err);
    cur->buffers[i] = grown;
    cur->capacities[i] = need;
    MYSQL_BIND b = cur->binds[i];
    b.buffer = grown;
    b.buffer_length = need;
    if (mysql_stmt_fetch_column(cur->stmt, &b, (unsigned)i, 0))
        return my_error(c, cur->stmt, err);
    cur->binds[i].buffer = grown;
    cur->binds[i].buffer_length = need;
    return DBP_OK;
}

static int decode_row(my_conn *c, my_cursor *cur, dbp_result *res, dbp_error *err)
{
    for (int i = 0; i < cur->n_cols; i++) {
        dbp_column *col = dbp_result_column(res, (size_t)i);
        int rc = DBP_OK;
        if (cur->nulls[i]) {
            rc = dbp_column_append_null(col) == DBP_OK ? DBP_OK : dbp_error_nomem(err);
        } else {
            if (cur->truncated[i] && !cur->plans[i].fixed_size)
                rc = refetch_long(c, cur, i, err);
            if (rc == DBP_OK)
                rc = my_decode_value(&cur->plans[i], c->cfg, cur->buffers[i], cur->lengths[i],
                                     col, cur->names[i], err);
        }
        if (rc != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

/* Re-binds the grown buffers once a fetch is done with them. */
static int rebind(my_conn *c, my_cursor *cur, dbp_error *err)
{
    if (mysql_stmt_bind_result(cur->stmt, cur->binds))
        return my_error(c, cur->stmt, err);
    return DBP_OK;
}

static int fetch_rows(my_conn *c, my_cursor *cur, const dbp_fetch_limits *limits,
                      dbp_result *res, int *done, dbp_error *err)
{
    int64_t rows = 0;
    while (limits->max_rows < 0 || rows < limits->max_rows) {
        int rc = DBP_OK, status, ret = 0;
        MY_RUN(c, status, mysql_stmt_fetch_start(&ret, cur->stmt),
               mysql_stmt_fetch_cont(&ret, cur->stmt, status), rc, err);
        if (rc != DBP_OK)
            return rc;
        if (ret == MYSQL_NO_DATA) {
            cur->finished = 1;
            *done = 1;
            return DBP_OK;
        }
        if (ret == 1)
            return my_error(c, cur->stmt, err);
        int grew = ret == MYSQL_DATA_TRUNCATED;
        rc = decode_row(c, cur, res, err);
        if (rc == DBP_OK && grew)
            rc = rebind(c, cur, err);
        if (rc != DBP_OK)
            return rc;
        rows++;
        if (dbp_fetch_batch_full(res, limits) && (rc = dbp_result_finish_batch(res, err)) != DBP_OK)
            return rc;
    }
    return DBP_OK;
}

int my_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                    dbp_result **out, int *done, dbp_error *err)
{
    my_conn *c = conn;
    my_cursor *cur = c->cursor;
    *done = 0;
    if (!cur)
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
    my_call_begin(c, ctx);
    rc = my_read_outcome(c, fetch_rows(c, cur, limits, res, done, err), err);
    my_call_end(c);
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    *out = res;
    return DBP_OK;
}

/* Rows still coming: KILL QUERY, then read to the end within the grace. */
static void stop_result(my_conn *c, my_cursor *cur)
{
    my_cancel(c);
    for (;;) {
        int rc = DBP_OK, status, ret = 0;
        dbp_error ignored;
        MY_RUN(c, status, mysql_stmt_fetch_start(&ret, cur->stmt),
               mysql_stmt_fetch_cont(&ret, cur->stmt, status), rc, &ignored);
        if (rc != DBP_OK || ret == MYSQL_NO_DATA || ret == 1)
            return;
    }
}

void my_cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    my_conn *c = conn;
    my_cursor *cur = c->cursor;
    if (!cur)
        return;
    c->cursor = NULL;
    my_call_begin(c, ctx);
    if (!cur->finished && !c->dead)
        stop_result(c, cur);
    cursor_free(c, cur);
    my_call_end(c);
}
