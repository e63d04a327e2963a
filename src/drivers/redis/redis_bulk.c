/* redis_bulk.c - write_frame on Redis: each row becomes a key (the table
 * name is the key prefix, the key column's value follows it) holding a
 * hash of the other columns (HSET; NULL fields are deleted with HDEL, other
 * fields of an existing hash are kept) or a string of the one other column
 * (SET). Options, from the binding: the key column, "hash" or "string",
 * and a TTL in seconds (0: none). Rows go in pipelined batches; every reply
 * is checked. Redis cannot undo writes, so an error stops the load after
 * the rows already written, and the message says how many. On a cluster
 * each command of a batch goes to its key's master (rd_batch). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "arrow_input.h"
#include "error.h"
#include "params.h"
#include "redis_internal.h"
#include "textparse.h"

#define BATCH_ROWS 2000
#define BATCH_BYTES (4u << 20)

typedef struct loader {
    rd_conn *c;
    const char *prefix;
    size_t prefix_len;
    const char *key_name;
    int as_string;
    int64_t ttl;
    size_t key_col;
    size_t n_cols;
    const char *const *names;
    size_t batch_rows, batch_commands;
    int64_t written;
    char *key; /* prefix + key text */
    size_t key_len, key_cap;
    rd_batch batch; /* cluster: the slot of each command */
    int nomem;      /* a batch mark failed */
} loader;

/* A cell's bytes as Redis stores them; *len 0 with NULL data for NULL. */
static int cell_text(const dbp_cell *cell, char *buf, size_t size, const char **data,
                     size_t *len)
{
    int n = 0;
    switch (cell->kind) {
    case DBP_V_NULL:
        *data = NULL;
        *len = 0;
        return DBP_OK;
    case DBP_V_BOOL:
        n = snprintf(buf, size, "%d", cell->i ? 1 : 0);
        break;
    case DBP_V_INT64:
        n = (int)rd_format_int(buf, cell->i); /* buf holds 48 bytes */
        break;
    case DBP_V_DOUBLE:
        n = isnan(cell->d)   ? snprintf(buf, size, "nan")
            : isinf(cell->d) ? snprintf(buf, size, "%sinf", cell->d < 0 ? "-" : "")
                             : dbp_format_double(cell->d, buf, size);
        break;
    case DBP_V_DATE:
        n = dbp_format_date(cell->i, buf, size);
        break;
    case DBP_V_TIME:
        n = dbp_format_time(cell->i, buf, size);
        break;
    case DBP_V_TIMESTAMP:
    case DBP_V_TIMESTAMP_TZ:
        n = dbp_format_timestamp(cell->i, buf, size);
        if (cell->kind == DBP_V_TIMESTAMP_TZ && n > 0 && (size_t)n + 1 < size)
            buf[n++] = 'Z', buf[n] = '\0';
        break;
    case DBP_V_INTERVAL:
        return DBP_E_DATA;
    default: /* text, bytes, decimal digits, UUID, JSON, ... */
        *data = cell->data;
        *len = cell->len;
        return DBP_OK;
    }
    *data = buf;
    *len = n > 0 ? (size_t)n : 0;
    return DBP_OK;
}

static int columns(void *arg, size_t n, const char *const *names, const dbp_value_kind *kinds,
                   dbp_error *err)
{
    loader *l = arg;
    (void)kinds;
    l->n_cols = n;
    l->names = names;
    l->key_col = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], l->key_name) == 0)
            l->key_col = i;
    if (l->key_col == SIZE_MAX)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42703",
                             "write_frame: the frame has no key column '%s'", l->key_name);
    if (n < 2 || (l->as_string && n != 2))
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "write_frame: kind='%s' needs the key column and %s",
                             l->as_string ? "string" : "hash",
                             l->as_string ? "exactly one value column" : "at least one field");
    return DBP_OK;
}

/* Sends the batch and checks its replies. */
static int flush(loader *l, dbp_error *err)
{
    if (l->batch_commands == 0)
        return DBP_OK;
    rd_conn *c = l->c;
    int rc = l->nomem ? dbp_error_nomem(err) : c->cluster ? rd_batch_run(c, &l->batch, err)
                                                          : rd_send(c, err);
    int io = rc;
    dbp_error io_err; /* a broken connection after an error reply: the first error stays */
    /* every reply of the batch is read, an error reply or not, so that the
     * connection stays in step; only a broken connection stops the loop (a
     * cluster batch has read them all already) */
    for (size_t i = 0; i < l->batch_commands && io == DBP_OK; i++) {
        dbp_reply *r = NULL;
        if (c->cluster) {
            r = l->batch.replies[i];
            l->batch.replies[i] = NULL;
        } else {
            io = rd_read_reply(c, &r, rc == DBP_OK ? err : &io_err);
        }
        if (io != DBP_OK && rc == DBP_OK)
            rc = io;
        if (io == DBP_OK && r->type == DBP_REPLY_ERROR && rc == DBP_OK)
            rc = dbp_error_set(err, DBP_E_SERVER, 0, NULL,
                               "write_frame stopped after %lld rows (the next %zu were sent, "
                               "and those whose commands succeeded are written): %.*s",
                               (long long)l->written, l->batch_rows,
                               (int)(r->len > 800 ? 800 : r->len), r->str);
        dbp_reply_free(r);
    }
    if (rc == DBP_OK)
        l->written += (int64_t)l->batch_rows;
    l->batch_rows = l->batch_commands = 0;
    rd_batch_clear(&l->batch);
    c->out.len = 0;
    return rc;
}

/* l->key = prefix + the key cell's text. */
static int make_key(loader *l, const dbp_cell *cell, int64_t row_no, dbp_error *err)
{
    char buf[48];
    const char *data = NULL;
    size_t len = 0;
    if (cell_text(cell, buf, sizeof buf, &data, &len) != DBP_OK || !data)
        return dbp_error_set(err, DBP_E_DATA, 0, "23502",
                             "write_frame stopped after %lld rows: row %lld has %s key",
                             (long long)l->written, (long long)row_no,
                             data ? "an unusable" : "a null");
    if (l->prefix_len + len > l->key_cap) {
        char *grown = dbp_realloc(l->key, l->prefix_len + len);
        if (!grown)
            return dbp_error_nomem(err);
        l->key = grown;
        l->key_cap = l->prefix_len + len;
    }
    memcpy(l->key, l->prefix, l->prefix_len);
    if (len)
        memcpy(l->key + l->prefix_len, data, len);
    l->key_len = l->prefix_len + len;
    return DBP_OK;
}

/* A command `name key` with `extra` arguments to follow. */
static int begin_keyed(loader *l, const char *name, size_t extra)
{
    rd_buf *b = &l->c->out;
    dbp_error ignored = {0};
    l->batch_commands++;
    if (l->c->cluster &&
        rd_batch_mark(&l->batch, (int)rd_keyslot(l->key, l->key_len), &ignored) != DBP_OK)
        l->nomem = 1;
    return rd_cmd_begin(b, 2 + extra) | rd_cmd_arg(b, name, strlen(name)) |
           rd_cmd_arg(b, l->key, l->key_len);
}

static int row(void *arg, const dbp_cell *cells, size_t n, dbp_error *err)
{
    loader *l = arg;
    rd_buf *b = &l->c->out;
    int rc = make_key(l, &cells[l->key_col], l->written + (int64_t)l->batch_rows, err);
    if (rc != DBP_OK)
        return rc;
    const char *data[n];
    size_t lens[n], set = 0;
    char bufs[n][48];
    for (size_t i = 0; i < n; i++) {
        data[i] = NULL;
        if (i == l->key_col)
            continue;
        if (cell_text(&cells[i], bufs[i], sizeof bufs[i], &data[i], &lens[i]) != DBP_OK)
            return dbp_error_set(err, DBP_E_DATA, 0, "22023",
                                 "write_frame: column '%s' holds durations, which Redis has "
                                 "no form for; cast them to integers first",
                                 l->names[i]);
        set += data[i] != NULL;
    }
    size_t unset = n - 1 - set;
    if (set == 0) { /* nothing to store: the key goes, as Redis has no empty hash */
        rc = begin_keyed(l, "DEL", 0);
    } else if (l->as_string) {
        size_t v = l->key_col == 0 ? 1 : 0;
        rc = begin_keyed(l, "SET", l->ttl ? 3 : 1) | rd_cmd_arg(b, data[v], lens[v]);
        if (l->ttl)
            rc |= rd_cmd_arg(b, "EX", 2) | rd_cmd_arg_int(b, l->ttl);
    } else {
        rc = begin_keyed(l, "HSET", 2 * set);
        for (size_t i = 0; i < n; i++)
            if (data[i])
                rc |= rd_cmd_arg(b, l->names[i], strlen(l->names[i])) |
                      rd_cmd_arg(b, data[i], lens[i]);
        if (unset) {
            rc |= begin_keyed(l, "HDEL", unset);
            for (size_t i = 0; i < n; i++)
                if (i != l->key_col && !data[i])
                    rc |= rd_cmd_arg(b, l->names[i], strlen(l->names[i]));
        }
        if (l->ttl)
            rc |= begin_keyed(l, "EXPIRE", 1) | rd_cmd_arg_int(b, l->ttl);
    }
    if (rc != DBP_OK)
        return dbp_error_nomem(err);
    l->batch_rows++;
    return l->batch_rows >= BATCH_ROWS || b->len >= BATCH_BYTES ? flush(l, err) : DBP_OK;
}

static int read_options(loader *l, const dbp_params *p, dbp_error *err)
{
    const dbp_value *key = NULL, *kind = NULL, *ttl = NULL;
    if (dbp_params_rows(p) == 1 && dbp_params_width(p) == 3) {
        key = dbp_params_get(p, 0, 0);
        kind = dbp_params_get(p, 0, 1);
        ttl = dbp_params_get(p, 0, 2);
    }
    if (!key || key->kind != DBP_V_TEXT || kind->kind != DBP_V_TEXT ||
        ttl->kind != DBP_V_INT64 || ttl->i < 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "redis write_frame takes (key column, kind, ttl) options");
    const char *k = dbp_params_bytes(p, kind);
    if (kind->length == 6 && memcmp(k, "string", 6) == 0)
        l->as_string = 1;
    else if (!(kind->length == 4 && memcmp(k, "hash", 4) == 0))
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "redis write_frame kind must be 'hash' or 'string', not '%.*s'",
                             (int)kind->length, k);
    l->ttl = ttl->i;
    return DBP_OK;
}

int rd_bulk_load(void *conn, const char *prefix, const dbp_params *options,
                 struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx, int64_t *loaded,
                 dbp_error *err)
{
    rd_conn *c = conn;
    *loaded = 0;
    loader l = {.c = c, .prefix = prefix, .prefix_len = strlen(prefix), .batch = {.src = &c->out}};
    int rc = read_options(&l, options, err);
    char *key_name = NULL;
    if (rc == DBP_OK) {
        const dbp_value *key = dbp_params_get(options, 0, 0);
        key_name = dbp_strndup(dbp_params_bytes(options, key), key->length);
        rc = key_name ? DBP_OK : dbp_error_nomem(err);
        l.key_name = key_name;
    }
    c->ctx = ctx;
    c->out.len = 0;
    int64_t fed = 0;
    dbp_frame_sink sink = {.columns = columns, .row = row, .arg = &l};
    if (rc == DBP_OK)
        rc = dbp_arrow_walk(rows, &sink, ctx->cancelled, &fed, err);
    if (rc == DBP_OK)
        rc = flush(&l, err);
    c->out.len = 0;
    c->ctx = NULL;
    dbp_free(l.key);
    dbp_free(key_name);
    rd_batch_free(&l.batch);
    *loaded = l.written;
    return rc;
}
