/* mysql_stmt.c - statements of the MySQL/MariaDB driver: parameters go as
 * server-side prepared statements (the binary protocol, so no value is
 * ever spliced into SQL text); a statement without parameters runs in the
 * text protocol, which also takes scripts of several statements. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "mysql_internal.h"
#include "textparse.h"

/* Statements that may leave state in the session for the next caller
 * (reset_on_release="auto" resets after them). */
static void note_session_change(my_conn *c, const char *sql, size_t len)
{
    static const char *const words[] = {"set",   "temporary", "lock", "use",
                                        "prepare", "handler",  "@",    NULL};
    for (int i = 0; words[i] && !c->session_changed; i++)
        c->session_changed = dbp_text_mentions(sql, len, words[i]);
}

int my_stmt_prepare(my_conn *c, const char *sql, size_t len, MYSQL_STMT **out, dbp_error *err)
{
    *out = mysql_stmt_init(c->db);
    if (!*out)
        return dbp_error_nomem(err);
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_stmt_prepare_start(&ret, *out, sql, (unsigned long)len),
           mysql_stmt_prepare_cont(&ret, *out, status), rc, err);
    if (rc == DBP_OK && ret)
        rc = my_error(c, *out, err);
    if (rc != DBP_OK) {
        my_stmt_close(c, *out);
        *out = NULL;
    }
    return rc;
}

void my_stmt_close(my_conn *c, MYSQL_STMT *stmt)
{
    if (!stmt)
        return;
    if (c->dead) { /* no round trip on a connection given up */
        mysql_stmt_close(stmt);
        return;
    }
    my_bool ret = 0;
    int rc = DBP_OK, status;
    dbp_error ignored;
    MY_RUN(c, status, mysql_stmt_close_start(&ret, stmt), mysql_stmt_close_cont(&ret, stmt, status),
           rc, &ignored);
    if (rc != DBP_OK) /* it stays half-closed in the connector: the connection goes */
        c->dead = 1;
}

int my_stmt_take(my_conn *c, const char *sql, size_t len, MYSQL_STMT **out, dbp_error *err)
{
    for (int i = 0; i < c->n_cached; i++) {
        my_cached *e = &c->cache[i];
        if (e->len == len && memcmp(e->sql, sql, len) == 0) {
            *out = e->stmt;
            dbp_free(e->sql);
            *e = c->cache[--c->n_cached];
            return DBP_OK;
        }
    }
    return my_stmt_prepare(c, sql, len, out, err);
}

void my_stmt_give_back(my_conn *c, const char *sql, size_t len, MYSQL_STMT *stmt, int reusable)
{
    if (!stmt)
        return;
    char *copy = reusable && !c->dead ? dbp_malloc(len + 1) : NULL;
    if (!copy) {
        my_stmt_close(c, stmt);
        return;
    }
    memcpy(copy, sql, len);
    copy[len] = '\0';
    if (c->n_cached == MY_STMT_CACHE) { /* the least recently used goes */
        int old = 0;
        for (int i = 1; i < c->n_cached; i++)
            if (c->cache[i].used < c->cache[old].used)
                old = i;
        my_stmt_close(c, c->cache[old].stmt);
        dbp_free(c->cache[old].sql);
        c->cache[old] = c->cache[--c->n_cached];
    }
    c->cache[c->n_cached++] = (my_cached){copy, len, stmt, ++c->tick};
}

void my_stmt_cache_clear(my_conn *c)
{
    while (c->n_cached > 0) {
        my_cached *e = &c->cache[--c->n_cached];
        my_stmt_close(c, e->stmt);
        dbp_free(e->sql);
    }
}

int my_stmt_bind_row(my_conn *c, MYSQL_STMT *stmt, const dbp_params *params, size_t row,
                     void **storage, dbp_error *err)
{
    size_t width = params ? dbp_params_width(params) : 0;
    unsigned long wanted = mysql_stmt_param_count(stmt);
    if (width != wanted)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "07001",
                             "the statement has %lu placeholder(s) (?) but %zu parameter(s) "
                             "were given",
                             wanted, width);
    if (width == 0)
        return DBP_OK;
    if (!*storage) {
        *storage = dbp_calloc(width, sizeof(MYSQL_BIND) + sizeof(my_param));
        if (!*storage)
            return dbp_error_nomem(err);
    }
    MYSQL_BIND *binds = *storage;
    my_param *store = (my_param *)(binds + width);
    size_t total = 0;
    for (size_t i = 0; i < width; i++) {
        const dbp_value *v = dbp_params_get(params, row, i);
        if (dbp_params_name(params, v))
            return dbp_error_set(err, DBP_E_MISUSE, 0, "07001",
                                 "mysql takes positional parameters (?), not named ones");
        dbp_cell cell;
        dbp_params_cell(params, v, &cell);
        int rc = my_param_bind(&cell, i + 1, &store[i], &binds[i], err);
        if (rc != DBP_OK)
            return rc;
        total += dbp_value_kind_has_bytes(cell.kind) ? cell.len : 8;
    }
    /* the server would drop the connection on a bigger packet: refuse it
     * while nothing is sent */
    if (c->max_packet && total + 1024 > c->max_packet)
        return dbp_error_set(err, DBP_E_DATA, 1153, "08S01",
                             "the parameters take %zu bytes, more than the server's "
                             "max_allowed_packet (%lu); nothing was sent",
                             total, c->max_packet);
    if (mysql_stmt_bind_param(stmt, binds))
        return my_error(c, stmt, err);
    return DBP_OK;
}

int my_stmt_execute(my_conn *c, MYSQL_STMT *stmt, dbp_error *err)
{
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_stmt_execute_start(&ret, stmt),
           mysql_stmt_execute_cont(&ret, stmt, status), rc, err);
    if (rc == DBP_OK && c->ctx->replied)
        *c->ctx->replied = 1;
    if (rc == DBP_OK && ret)
        rc = my_error(c, stmt, err);
    return rc;
}

/* A result set execute() does not want: read to its end, then dropped. */
static int skip_result(my_conn *c, MYSQL_STMT *stmt, dbp_error *err)
{
    if (mysql_stmt_field_count(stmt) == 0)
        return DBP_OK;
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_stmt_store_result_start(&ret, stmt),
           mysql_stmt_store_result_cont(&ret, stmt, status), rc, err);
    if (rc == DBP_OK && ret)
        rc = my_error(c, stmt, err);
    my_bool freed = 0;
    if (rc == DBP_OK)
        MY_RUN(c, status, mysql_stmt_free_result_start(&freed, stmt),
               mysql_stmt_free_result_cont(&freed, stmt, status), rc, err);
    return rc;
}

int my_own_tx_begin(my_conn *c, int *own, dbp_error *err)
{
    *own = !c->in_tx;
    return *own ? my_query(c, "START TRANSACTION", 17, NULL, err) : DBP_OK;
}

int my_own_tx_end(my_conn *c, int own, int rc, dbp_error *err)
{
    if (!own || c->dead)
        return rc;
    dbp_error ignored;
    int end = my_query(c, rc == DBP_OK ? "COMMIT" : "ROLLBACK", rc == DBP_OK ? 6 : 8, NULL,
                       rc == DBP_OK ? err : &ignored);
    return rc == DBP_OK ? end : rc;
}

/* Every row of parameters, all or nothing: inside the caller's transaction,
 * or one of its own. */
static int execute_rows(my_conn *c, MYSQL_STMT *stmt, const dbp_params *params, int64_t *affected,
                        dbp_error *err)
{
    size_t rows = dbp_params_rows(params);
    int own = 0;
    int rc = rows > 1 ? my_own_tx_begin(c, &own, err) : DBP_OK;
    void *storage = NULL;
    for (size_t r = 0; r < rows && rc == DBP_OK; r++) {
        rc = my_stmt_bind_row(c, stmt, params, r, &storage, err);
        if (rc == DBP_OK)
            rc = my_stmt_execute(c, stmt, err);
        if (rc == DBP_OK) {
            my_ulonglong n = mysql_stmt_affected_rows(stmt);
            if (n != (my_ulonglong)-1)
                *affected += (int64_t)n;
            rc = skip_result(c, stmt, err);
        }
    }
    dbp_free(storage);
    return my_own_tx_end(c, own, rc, err);
}

int my_execute(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err)
{
    my_conn *c = conn;
    my_call_begin(c, ctx);
    if (!ctx->session_setup)
        note_session_change(c, sql, sql_len);
    *rows_affected = 0;
    int rc;
    if (!params || dbp_params_width(params) == 0) {
        rc = my_query(c, sql, sql_len, rows_affected, err);
    } else {
        MYSQL_STMT *stmt;
        rc = my_stmt_take(c, sql, sql_len, &stmt, err);
        if (rc == DBP_OK) {
            rc = execute_rows(c, stmt, params, rows_affected, err);
            /* a server's error (a duplicate key) leaves the statement usable */
            my_stmt_give_back(c, sql, sql_len, stmt, rc == DBP_OK || rc == DBP_E_SERVER);
        }
    }
    my_call_end(c);
    return rc;
}
