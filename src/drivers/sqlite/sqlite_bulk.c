/* sqlite_bulk.c - write_frame on SQLite: one prepared INSERT per row inside
 * a savepoint, so all rows are written or none. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "sqlite_internal.h"
#include "textbuf.h"

/* ---- bulk load ------------------------------------------------------------------------ */

typedef struct bulk_insert {
    sqlite_conn *c;
    const char *table;
    const char *const *names; /* the frame's columns, for messages */
    sqlite3_stmt *stmt;
} bulk_insert;

/* INSERT INTO "table" ("a", "b") VALUES (?, ?) for the frame's columns. */
static int bulk_columns(void *arg, size_t n, const char *const *names, dbp_error *err)
{
    bulk_insert *b = arg;
    b->names = names;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "INSERT INTO ");
    dbp_textbuf_table_columns(&sql, b->table, names, n, '"', '"');
    dbp_textbuf_str(&sql, " VALUES (");
    for (size_t i = 0; i < n; i++)
        dbp_textbuf_str(&sql, i ? ", ?" : "?");
    dbp_textbuf_str(&sql, ")");
    int rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
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
    for (size_t i = 0; rc == DBP_OK && i < n; i++)
        rc = sqlite_bind_value(b->c, b->stmt, (int)i + 1, &cells[i], "column", b->names[i], err);
    if (rc == DBP_OK) {
        int step = sqlite3_step(b->stmt);
        if (step != SQLITE_DONE)
            rc = sqlite_fail(b->c->db, step, 0, err);
    }
    sqlite3_reset(b->stmt);
    return rc;
}

/* One prepared INSERT per row inside a savepoint: all rows or none. */
int sqlite_bulk_load(void *conn, const char *table, struct ArrowArrayStream *rows,
                     const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err)
{
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
    c->cancelled = NULL;
    dbp_error ignored;
    if (rc != DBP_OK) {
        sqlite_exec_simple(c, "ROLLBACK TO dbp_write_frame", &ignored);
        *loaded = 0;
    }
    int end = sqlite_exec_simple(c, "RELEASE dbp_write_frame", rc == DBP_OK ? err : &ignored);
    return rc == DBP_OK ? end : rc;
}
