/* mysql_bulk.c - write_frame for MySQL / MariaDB: the rows go as one LOAD
 * DATA LOCAL INFILE statement inside a transaction (all rows or none), fed
 * through the connector's local-infile handler: each time the connector
 * asks for the next packet of the "file", the next rows of the frame are
 * formatted into it, so the client formats while the server parses the
 * packet before (no file is read or written, no copy of the frame is made).
 *
 * Only our own statement may read "local files": the connection's handler
 * refuses every request otherwise (a user's LOAD DATA LOCAL, or a server
 * asking for a file it was not given), and during our statement it serves
 * only the frame's rows. LOAD DATA LOCAL turns data errors into
 * warnings, so any warning fails the load (and rolls it back) with the
 * server's first warning: nothing is truncated or converted silently.
 * Values are written in their exact text forms (decimals as digits,
 * doubles as their shortest exact digits, times in UTC, the session's zone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arrow_input.h"
#include "error.h"
#include "mysql_internal.h"
#include "textbuf.h"
#include "textparse.h"

typedef struct bulk bulk;

/* What the local-infile handler serves: write_frame's rows, or nothing. */
typedef struct infile {
    bulk *b; /* NULL: refuse */
} infile;

static int infile_read(void *ptr, char *buf, unsigned int size);
static int infile_error(void *ptr, char *buf, unsigned int size);

static int infile_init(void **ptr, const char *filename, void *userdata)
{
    (void)filename;
    *ptr = userdata;
    return ((infile *)userdata)->b ? 0 : 1;
}

static void infile_end(void *ptr)
{
    (void)ptr;
}

/* The connection's handler: refuses until a bulk load serves its rows. */
static infile refuse_all;

void my_infile_guard(MYSQL *db)
{
    mysql_set_local_infile_handler(db, infile_init, infile_read, infile_end, infile_error,
                                   &refuse_all);
}

struct bulk {
    my_conn *c;
    const char *table;
    const atomic_int *cancelled;
    dbp_textbuf statement; /* LOAD DATA ... (columns) */
    dbp_arrow_rows *rows;
    const char *const *names;
    dbp_textbuf line;      /* the text of rows formatted, not yet handed over */
    size_t line_pos;
    int ended;             /* every row was formatted */
    int64_t fed;
    int failed;            /* formatting failed: `error` says why */
    dbp_error error;
};

/* ---- the text form of each cell -------------------------------------------------- */

/* LOAD DATA's escapes (ESCAPED BY '\\'): what would end a field or a line,
 * the escape itself and NUL. */
static void add_escaped(dbp_textbuf *t, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\t' ? "\\t" : s[i] == '\n' ? "\\n" : s[i] == '\\' ? "\\\\"
                          : s[i] == '\0'                       ? "\\0"
                                                               : NULL;
        if (!esc)
            continue;
        dbp_textbuf_add(t, s + start, i - start);
        dbp_textbuf_str(t, esc);
        start = i + 1;
    }
    dbp_textbuf_add(t, s + start, n - start);
}

/* Decimal digits of an integer, without printf (a million rows of them). */
static void add_integer(dbp_textbuf *t, int64_t v)
{
    char digits[24];
    char *p = digits + sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    dbp_textbuf_add(t, p, (size_t)(digits + sizeof digits - p));
}

static int add_cell(bulk *b, const dbp_cell *cell, size_t column, dbp_error *err)
{
    dbp_textbuf *t = &b->line;
    char buf[48];
    int len;
    switch (cell->kind) {
    case DBP_V_NULL:
        dbp_textbuf_str(t, "\\N");
        return DBP_OK;
    case DBP_V_BOOL:
        dbp_textbuf_str(t, cell->i ? "1" : "0");
        return DBP_OK;
    case DBP_V_INT64:
        add_integer(t, cell->i);
        return DBP_OK;
    case DBP_V_DOUBLE:
        if (cell->d != cell->d || cell->d - cell->d != 0)
            return dbp_error_set(err, DBP_E_DATA, 0, "22003",
                                 "column '%s': MySQL has no NaN or infinity", b->names[column]);
        /* 17 significant digits always read back as the same double: one
         * snprintf, not the shortest form's search */
        len = snprintf(buf, sizeof buf, "%.17g", cell->d);
        dbp_textbuf_add(t, buf, (size_t)len);
        return DBP_OK;
    case DBP_V_DATE:
        len = dbp_format_date(cell->i, buf, sizeof buf);
        dbp_textbuf_add(t, buf, (size_t)len);
        return DBP_OK;
    case DBP_V_TIME:
        len = dbp_format_time(cell->i, buf, sizeof buf);
        dbp_textbuf_add(t, buf, (size_t)len);
        return DBP_OK;
    case DBP_V_INTERVAL: { /* a duration as TIME: [-]H:MM:SS.ffffff, up to 838 hours */
        uint64_t mag = cell->i < 0 ? (uint64_t)0 - (uint64_t)cell->i : (uint64_t)cell->i;
        dbp_textbuf_printf(t, "%s%llu:%02llu:%02llu.%06llu", cell->i < 0 ? "-" : "",
                           (unsigned long long)(mag / 3600000000ULL),
                           (unsigned long long)(mag / 60000000ULL % 60),
                           (unsigned long long)(mag / 1000000ULL % 60),
                           (unsigned long long)(mag % 1000000ULL));
        return DBP_OK;
    }
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ: /* UTC: the session's time zone */
        len = dbp_format_timestamp(cell->i, buf, sizeof buf);
        dbp_textbuf_add(t, buf, (size_t)len);
        return DBP_OK;
    default: /* text, decimal digits, bytes */
        add_escaped(t, cell->data, cell->len);
        return DBP_OK;
    }
}

/* ---- the load ---------------------------------------------------------------- */

/* Which target columns are BIT: LOAD DATA reads a field into one as the
 * bits of its characters, so their numbers go through a variable and a
 * CAST. A table that does not exist is the server's error here. */
static int find_bit_columns(bulk *b, size_t n, const char *const *names, char *is_bit,
                            dbp_error *err)
{
    dbp_textbuf sql = {0};
    dbp_textbuf_select_columns(&sql, b->table, names, n, '`', '`');
    MYSQL_STMT *stmt = NULL;
    int rc = sql.failed ? dbp_error_nomem(err) : my_stmt_prepare(b->c, sql.data, sql.len, &stmt, err);
    dbp_textbuf_free(&sql);
    MYSQL_RES *meta = rc == DBP_OK ? mysql_stmt_result_metadata(stmt) : NULL;
    MYSQL_FIELD *fields = meta ? mysql_fetch_fields(meta) : NULL;
    for (size_t i = 0; fields && i < n && i < mysql_num_fields(meta); i++)
        is_bit[i] = fields[i].type == MYSQL_TYPE_BIT;
    mysql_free_result(meta);
    my_stmt_close(b->c, stmt);
    return rc;
}

static int bulk_columns(bulk *b, size_t n, const char *const *names, dbp_error *err)
{
    b->names = names;
    char *is_bit = dbp_calloc(n ? n : 1, 1);
    if (!is_bit)
        return dbp_error_nomem(err);
    int rc = find_bit_columns(b, n, names, is_bit, err);
    dbp_textbuf *s = &b->statement;
    dbp_textbuf_str(s, "LOAD DATA LOCAL INFILE 'db-pool-write-frame' INTO TABLE ");
    dbp_textbuf_identifier(s, b->table, '`', '`', 1);
    dbp_textbuf_str(s, " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                       "LINES TERMINATED BY '\\n' (");
    for (size_t i = 0; i < n; i++) {
        if (i)
            dbp_textbuf_str(s, ", ");
        if (is_bit[i])
            dbp_textbuf_printf(s, "@bit%zu", i);
        else
            dbp_textbuf_identifier(s, names[i], '`', '`', 0);
    }
    dbp_textbuf_str(s, ")");
    const char *sep = " SET ";
    for (size_t i = 0; i < n; i++) {
        if (!is_bit[i])
            continue;
        dbp_textbuf_str(s, sep);
        dbp_textbuf_identifier(s, names[i], '`', '`', 0);
        dbp_textbuf_printf(s, " = CAST(@bit%zu AS UNSIGNED)", i);
        sep = ", ";
    }
    dbp_free(is_bit);
    return rc != DBP_OK ? rc : s->failed ? dbp_error_nomem(err) : DBP_OK;
}

/* The server's first warning, as the load's error. */
static int first_warning(my_conn *c, dbp_error *err)
{
    dbp_error ignored;
    MYSQL_RES *res = NULL;
    int rc = DBP_OK, status, ret = 0;
    static const char sql[] = "SHOW WARNINGS LIMIT 1";
    MY_RUN(c, status, mysql_real_query_start(&ret, c->db, sql, sizeof sql - 1),
           mysql_real_query_cont(&ret, c->db, status), rc, &ignored);
    if (rc == DBP_OK && !ret)
        MY_RUN(c, status, mysql_store_result_start(&res, c->db),
               mysql_store_result_cont(&res, c->db, status), rc, &ignored);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int code = row && row[1] ? atoi(row[1]) : 0;
    dbp_error_set(err, DBP_E_DATA, code, "22000",
                  "write_frame: the server changed or dropped a value (%s), so nothing was "
                  "written: %s",
                  row && row[0] ? row[0] : "Warning", row && row[2] ? row[2] : "(not shown)");
    mysql_free_result(res);
    return DBP_E_DATA;
}

/* Formats the next rows into b->line (about one packet's worth). */
static int format_rows(bulk *b, size_t want)
{
    dbp_textbuf_clear(&b->line);
    b->line_pos = 0;
    size_t n = dbp_arrow_rows_width(b->rows);
    while (!b->ended && b->line.len < want) {
        if ((b->fed & 1023) == 1023 && atomic_load(b->cancelled))
            return dbp_error_set(&b->error, DBP_E_CANCELLED, 0, NULL, "cancelled");
        const dbp_cell *cells;
        int got = dbp_arrow_rows_next(b->rows, &cells, &b->error);
        if (got < 0)
            return -got;
        if (got == 0) {
            b->ended = 1;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (i)
                dbp_textbuf_add(&b->line, "\t", 1);
            int rc = add_cell(b, &cells[i], i, &b->error);
            if (rc != DBP_OK)
                return rc;
        }
        dbp_textbuf_add(&b->line, "\n", 1);
        b->fed++;
    }
    return b->line.failed ? dbp_error_nomem(&b->error) : DBP_OK;
}

static int infile_read(void *ptr, char *buf, unsigned int size)
{
    bulk *b = ((infile *)ptr)->b;
    if (!b || b->failed)
        return -1;
    if (b->line_pos == b->line.len && (b->failed = format_rows(b, size)) != DBP_OK)
        return -1; /* the statement fails with infile_error's text; b->error is the real one */
    size_t left = b->line.len - b->line_pos;
    size_t n = left < size ? left : size;
    memcpy(buf, b->line.data + b->line_pos, n);
    b->line_pos += n;
    return (int)n;
}

static int infile_error(void *ptr, char *buf, unsigned int size)
{
    infile *f = ptr;
    snprintf(buf, size, "%s",
             f && f->b ? "write_frame stopped sending its rows"
                       : "db-pool does not send local files (LOAD DATA LOCAL is for "
                         "write_frame only)");
    return 1148; /* ER_NOT_ALLOWED_COMMAND: the statement fails, the session stays */
}

/* One LOAD DATA statement whose "file" the rows are. */
static int load(bulk *b, int64_t *loaded, dbp_error *err)
{
    my_conn *c = b->c;
    infile serve = {.b = b};
    mysql_set_local_infile_handler(c->db, infile_init, infile_read, infile_end, infile_error,
                                   &serve);
    int rc = my_query(c, b->statement.data, b->statement.len, loaded, err);
    my_infile_guard(c->db);
    if (b->failed) { /* our own error, not the connector's stand-in */
        *err = b->error;
        return b->failed;
    }
    if (rc == DBP_OK && mysql_warning_count(c->db) > 0)
        rc = first_warning(c, err);
    return rc;
}

int my_bulk_load(void *conn, const char *table, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
                 int64_t *loaded, dbp_error *err)
{
    (void)options; /* no options */
    my_conn *c = conn;
    my_call_begin(c, ctx);
    bulk b = {.c = c, .table = table, .cancelled = ctx->cancelled};
    int own_tx;
    int64_t taken = 0;
    int rc = my_own_tx_begin(c, &own_tx, err);
    if (rc == DBP_OK)
        rc = dbp_arrow_rows_open(rows, &b.rows, err);
    if (rc == DBP_OK)
        rc = bulk_columns(&b, dbp_arrow_rows_width(b.rows), dbp_arrow_rows_names(b.rows), err);
    if (rc == DBP_OK)
        rc = load(&b, &taken, err);
    if (rc == DBP_OK && taken != b.fed)
        rc = dbp_error_set(err, DBP_E_DATA, 0, "22000",
                           "write_frame: the server took %lld of %lld rows, so nothing was "
                           "written",
                           (long long)taken, (long long)b.fed);
    rc = my_own_tx_end(c, own_tx, rc, err);
    *loaded = rc == DBP_OK ? taken : 0;
    dbp_arrow_rows_close(b.rows);
    dbp_textbuf_free(&b.statement);
    dbp_textbuf_free(&b.line);
    my_call_end(c);
    return rc;
}
