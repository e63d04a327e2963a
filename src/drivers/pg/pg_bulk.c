/* pg_bulk.c - write_frame for PostgreSQL: the rows of an Arrow stream
 * through COPY ... FROM STDIN. */
#include <string.h>

#include "arrow_input.h"
#include "error.h"
#include "pg_internal.h"
#include "textbuf.h"

/* COPY "table" ("a", "b") FROM STDIN in the text format: exact for every
 * value (numbers as their shortest exact digits, bytea as hex) and atomic
 * on the server's side. */
typedef struct copy_in {
    pg_conn *c;
    const char *table;
    dbp_textbuf data;
    int started;
} copy_in;

#define COPY_CHUNK (1 << 20)

static int copy_columns(void *arg, size_t n, const char *const *names, dbp_error *err)
{
    copy_in *ci = arg;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "COPY ");
    dbp_textbuf_table_columns(&sql, ci->table, names, n, '"', '"');
    dbp_textbuf_str(&sql, " FROM STDIN");
    int rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
    PGresult *res = NULL;
    if (rc == DBP_OK)
        rc = PQsendQuery(ci->c->pg, sql.data) ? pg_next_result(ci->c, &res, err)
                                              : pg_error(ci->c, NULL, err);
    dbp_textbuf_free(&sql);
    if (rc == DBP_OK && PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_error(ci->c, res, err);
        PQclear(res);
        pg_drain(ci->c, NULL, NULL);
        return rc;
    }
    PQclear(res);
    ci->started = rc == DBP_OK;
    return rc;
}

static void copy_escape(dbp_textbuf *t, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\"
                          : s[i] == '\t' ? "\\t"
                          : s[i] == '\n' ? "\\n"
                          : s[i] == '\r' ? "\\r"
                                         : NULL;
        if (!esc)
            continue;
        dbp_textbuf_add(t, s + run, i - run);
        dbp_textbuf_str(t, esc);
        run = i + 1;
    }
    dbp_textbuf_add(t, s + run, n - run);
}

static int copy_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    copy_in *ci = arg;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        const dbp_cell *v = &cells[i];
        if (i)
            dbp_textbuf_add(&ci->data, "\t", 1);
        if (v->kind == DBP_V_NULL) {
            dbp_textbuf_str(&ci->data, "\\N");
        } else if (v->kind == DBP_V_BLOB) {
            dbp_textbuf_str(&ci->data, "\\\\x"); /* bytea hex input, its backslash escaped */
            for (size_t k = 0; k < v->len; k++) {
                unsigned char b = (unsigned char)v->data[k];
                char pair[2] = {hex[b >> 4], hex[b & 15]};
                dbp_textbuf_add(&ci->data, pair, 2);
            }
        } else if (v->data) {
            copy_escape(&ci->data, v->data, v->len);
        } else {
            char text[48];
            dbp_textbuf_add(&ci->data, text, (size_t)pg_scalar_text(v, text));
        }
    }
    dbp_textbuf_add(&ci->data, "\n", 1);
    if (ci->data.failed)
        return dbp_error_nomem(err);
    if (ci->data.len >= COPY_CHUNK) {
        int rc = pg_put_copy(ci->c, ci->data.data, ci->data.len, err);
        dbp_textbuf_clear(&ci->data);
        return rc;
    }
    return DBP_OK;
}

int pg_bulk_load(void *conn, const char *table, struct ArrowArrayStream *rows,
                 const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err)
{
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    copy_in ci = {.c = c, .table = table};
    dbp_frame_sink sink = {.columns = copy_columns, .row = copy_row, .arg = &ci};
    int64_t fed = 0;
    int rc = dbp_arrow_walk(rows, &sink, ctx->cancelled, &fed, err);
    if (ci.started) {
        if (rc == DBP_OK && ci.data.len)
            rc = pg_put_copy(c, ci.data.data, ci.data.len, err);
        /* An error message makes the server abort the whole COPY. */
        int end = pg_end_copy(c, rc == DBP_OK ? NULL : "write_frame failed on the client side",
                              rc == DBP_OK ? err : NULL);
        int64_t copied = 0;
        if (end == DBP_OK)
            end = pg_drain(c, &copied, rc == DBP_OK ? err : NULL);
        if (rc == DBP_OK)
            rc = end;
        *loaded = rc == DBP_OK ? copied : 0;
    }
    dbp_textbuf_free(&ci.data);
    pg_call_end(c);
    return rc;
}
