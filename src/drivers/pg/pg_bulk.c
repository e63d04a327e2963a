/* pg_bulk.c - write_frame for PostgreSQL: the rows of an Arrow stream
 * through COPY ... FROM STDIN, atomic on the server's side. The binary
 * format (pg_copy_binary.c) when every frame column has an exact binary
 * form for its table column's type, else the text format: exact for every
 * value too (numbers as their shortest exact digits, bytea as hex), but
 * the server has to parse it. */
#include <string.h>

#include "alloc.h"
#include "arrow_input.h"
#include "error.h"
#include "pg_internal.h"
#include "textbuf.h"

typedef struct copy_in {
    pg_conn *c;
    const char *table;
    const char *const *names;
    pg_binary_encoder *binary; /* one per column; NULL: the text format */
    dbp_textbuf data;
    int started;
} copy_in;

#define COPY_CHUNK (1 << 20) /* bytes sent at a time */

/* Describes the target columns and sets ci->binary to their binary
 * encoders, or leaves it NULL when one has none. A table or column that does
 * not exist is the server's error here, as the COPY would give it (a failed
 * describe would abort the caller's transaction anyway). */
static int plan_binary(copy_in *ci, size_t n, const char *const *names,
                       const dbp_value_kind *kinds, dbp_error *err)
{
    dbp_textbuf sql = {0};
    dbp_textbuf_select_columns(&sql, ci->table, names, n, '"', '"');
    pg_statement *st = NULL;
    dbp_error why;
    int rc = sql.failed ? dbp_error_nomem(err) : pg_statement_fresh(ci->c, sql.data, sql.len, &st, &why);
    dbp_textbuf_free(&sql);
    if (rc == DBP_E_DATA) /* a column our reader could not plan (numeric(50)): text */
        return DBP_OK;
    if (rc != DBP_OK) {
        if (err && rc != DBP_E_NOMEM)
            *err = why;
        return rc;
    }
    if (st->n_fields == (int)n && (ci->binary = dbp_calloc(n, sizeof *ci->binary))) {
        for (size_t i = 0; i < n; i++) {
            ci->binary[i] = pg_binary_encoder_for(kinds[i], st->plans[i].oid);
            if (ci->binary[i] == PGB_NONE) {
                dbp_free(ci->binary);
                ci->binary = NULL;
                break;
            }
        }
    }
    pg_statement_free(st);
    return DBP_OK;
}

static int copy_columns(void *arg, size_t n, const char *const *names,
                        const dbp_value_kind *kinds, dbp_error *err)
{
    copy_in *ci = arg;
    ci->names = names;
    int rc = plan_binary(ci, n, names, kinds, err);
    if (rc != DBP_OK)
        return rc;
    dbp_textbuf sql = {0};
    dbp_textbuf_str(&sql, "COPY ");
    dbp_textbuf_table_columns(&sql, ci->table, names, n, '"', '"');
    dbp_textbuf_str(&sql, ci->binary ? " FROM STDIN (FORMAT binary)" : " FROM STDIN");
    rc = sql.failed ? dbp_error_nomem(err) : DBP_OK;
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
    if (ci->binary)
        pg_binary_header(&ci->data);
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

/* Sends what is buffered once it is a chunk. */
static int flush_chunk(copy_in *ci, dbp_error *err)
{
    if (ci->data.failed)
        return dbp_error_nomem(err);
    if (ci->data.len < COPY_CHUNK)
        return DBP_OK;
    int rc = pg_put_copy(ci->c, ci->data.data, ci->data.len, err);
    dbp_textbuf_clear(&ci->data);
    return rc;
}

static int copy_row_binary(copy_in *ci, const dbp_cell *cells, size_t n, dbp_error *err)
{
    pg_binary_row_start(&ci->data, n);
    for (size_t i = 0; i < n; i++) {
        int rc = pg_binary_put(&ci->data, ci->binary[i], &cells[i], ci->names[i], err);
        if (rc != DBP_OK)
            return rc;
    }
    return flush_chunk(ci, err);
}

static int copy_row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    copy_in *ci = arg;
    if (ci->binary)
        return copy_row_binary(ci, cells, n, err);
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
    return flush_chunk(ci, err);
}

int pg_bulk_load(void *conn, const char *table, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                 int64_t *loaded, dbp_error *err)
{
    (void)options; /* no options */
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    copy_in ci = {.c = c, .table = table};
    dbp_frame_sink sink = {.columns = copy_columns, .row = copy_row, .arg = &ci};
    int64_t fed = 0;
    int rc = dbp_arrow_walk(rows, &sink, ctx->cancelled, &fed, err);
    if (ci.started) {
        if (rc == DBP_OK && ci.binary)
            pg_binary_trailer(&ci.data);
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
    dbp_free(ci.binary);
    pg_call_end(c);
    return rc;
}
