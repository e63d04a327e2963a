/* redis_command.c - DBP_OP_COMMAND (db_pool.h): the commands of a request
 * go out in one write (a pipeline), optionally inside MULTI/EXEC, and
 * their replies come back as one array. Also execute(): one command
 * written as text, for init_sql and simple statements. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "params.h"
#include "redis_internal.h"
#include "textparse.h"

/* Commands after which the session differs from a fresh one (reset). A
 * caller's RESET logs the connection out, so it needs the login again. */
static const char *const session_commands[] = {
    "SELECT", "CLIENT", "WATCH", "MULTI", "READONLY", "READWRITE", "HELLO", "AUTH", "ASKING",
    "RESET", NULL};
/* Commands that turn the connection into a stream of pushes: not served. */
static const char *const push_commands[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR",
                                            "SYNC", "PSYNC", NULL};

static int name_in(const char *name, size_t len, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && strncasecmp(name, list[i], len) == 0)
            return 1;
    return 0;
}

void rd_note_command(rd_conn *c, const char *name, size_t len)
{
    if (name_in(name, len, session_commands))
        c->session_changed = 1;
}

/* Argument k of a command (starting at index i of `p`) equals `word`,
 * ignoring case. */
static int arg_is(const dbp_params *p, size_t i, size_t k, const char *word)
{
    const dbp_value *v = dbp_params_get(p, 0, i + k);
    return (v->kind == DBP_V_TEXT || v->kind == DBP_V_BLOB) &&
           name_in(dbp_params_bytes(p, v), v->length, (const char *const[]){word, NULL});
}

/* Commands after which replies no longer come one per command: CLIENT
 * REPLY OFF/SKIP would leave the call waiting for a reply that never
 * comes, HELLO 3 switches to RESP3, which this hiredis cannot parse. */
static const char *unserved_form(const dbp_params *p, size_t i, size_t argc)
{
    if (argc >= 3 && arg_is(p, i, 0, "CLIENT") && arg_is(p, i, 1, "REPLY") &&
        (arg_is(p, i, 2, "OFF") || arg_is(p, i, 2, "SKIP")))
        return "CLIENT REPLY OFF/SKIP is not served: every command here waits for its reply";
    if (argc >= 2 && arg_is(p, i, 0, "HELLO") && !arg_is(p, i, 1, "2"))
        return "HELLO with a protocol other than 2 is not served: replies are RESP2 "
               "(docs/redis.md)";
    return NULL;
}

int rd_arg_bytes(const dbp_params *p, const dbp_value *v, char *buf, size_t size,
                 const char **data, size_t *len, dbp_error *err)
{
    int n;
    switch (v->kind) {
    case DBP_V_TEXT:
    case DBP_V_BLOB:
    case DBP_V_DECIMAL:
        *data = dbp_params_bytes(p, v);
        *len = v->length;
        return DBP_OK;
    case DBP_V_INT64:
        n = (int)rd_format_int(buf, v->i);
        break;
    case DBP_V_BOOL:
        n = snprintf(buf, size, "%d", v->i ? 1 : 0);
        break;
    case DBP_V_DOUBLE:
        if (isnan(v->d))
            return dbp_error_set(err, DBP_E_MISUSE, 0, "22023",
                                 "redis takes no NaN as an argument");
        n = isinf(v->d) ? snprintf(buf, size, "%sinf", v->d < 0 ? "-" : "")
                        : dbp_format_double(v->d, buf, size);
        break;
    default:
        return dbp_error_set(err, DBP_E_MISUSE, 0, "22023",
                             "a redis argument must be str, bytes, int, float or bool, not %s",
                             dbp_value_kind_name(v->kind));
    }
    *data = buf;
    *len = n > 0 ? (size_t)n : 0;
    return DBP_OK;
}

int rd_put_value(rd_buf *b, const dbp_params *p, const dbp_value *v, dbp_error *err)
{
    char text[48];
    const char *data = NULL;
    size_t len = 0;
    int rc = rd_arg_bytes(p, v, text, sizeof text, &data, &len, err);
    if (rc == DBP_OK && rd_cmd_arg(b, data, len) != DBP_OK)
        rc = dbp_error_nomem(err);
    return rc;
}

/* Encodes the commands of `p` (count, then arguments) into c->out; *n_out
 * is how many. */
static int encode_commands(rd_conn *c, const dbp_params *p, size_t *n_out, dbp_error *err)
{
    size_t total = dbp_params_width(p) * dbp_params_rows(p), i = 0;
    *n_out = 0;
    if (total == 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "no command to send");
    while (i < total) {
        const dbp_value *count = dbp_params_get(p, 0, i++);
        if (count->kind != DBP_V_INT64 || count->i < 1 || (size_t)count->i > total - i)
            return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                 "command %zu: bad argument count", *n_out + 1);
        size_t argc = (size_t)count->i;
        const dbp_value *name = dbp_params_get(p, 0, i);
        if (name->kind == DBP_V_TEXT || name->kind == DBP_V_BLOB) {
            const char *s = dbp_params_bytes(p, name);
            if (name_in(s, name->length, push_commands))
                return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                                     "%.*s is not served: pub/sub and MONITOR need a "
                                     "connection of their own (docs/redis.md)",
                                     (int)name->length, s);
            rd_note_command(c, s, name->length);
        }
        const char *why = unserved_form(p, i, argc);
        if (why)
            return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000", "%s", why);
        if (rd_cmd_begin(&c->out, argc) != DBP_OK)
            return dbp_error_nomem(err);
        for (size_t k = 0; k < argc; k++) {
            int rc = rd_put_value(&c->out, p, dbp_params_get(p, 0, i++), err);
            if (rc != DBP_OK)
                return rc;
        }
        (*n_out)++;
    }
    return DBP_OK;
}

static int is_readonly_error(const dbp_reply *r)
{
    return r->type == DBP_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "READONLY", 8) == 0;
}

/* Every reply a READONLY error: the server is a replica and ran nothing, so
 * the core may send the request to the primary instead. */
static int refused_for_role(rd_conn *c, dbp_reply *const *replies, size_t n, dbp_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!is_readonly_error(replies[i]))
            return DBP_OK;
    if (c->ctx->replied)
        *c->ctx->replied = 0;
    return dbp_error_set(err, DBP_E_UNAVAILABLE, 0, "25006", "%s is a replica: %.*s", c->node->label,
                         (int)(replies[0]->len > 300 ? 300 : replies[0]->len), replies[0]->str);
}

static dbp_reply *new_array(dbp_reply **elements, size_t n)
{
    dbp_reply *r = dbp_calloc(1, sizeof *r);
    if (r) {
        r->type = DBP_REPLY_ARRAY;
        r->element = elements;
        r->n = n;
    }
    return r;
}

/* MULTI's replies: OK, QUEUED per command, then EXEC's answer, which is the
 * request's. A command refused while queueing aborts the transaction (on a
 * replica every write is refused so: the primary may take it instead). */
int rd_exec_answer(rd_conn *c, dbp_reply **replies, size_t n, dbp_reply **out,
                   dbp_error *err)
{
    for (size_t i = 1; i <= n; i++) {
        if (is_readonly_error(replies[i]))
            return refused_for_role(c, &replies[i], 1, err);
        if (replies[i]->type == DBP_REPLY_ERROR)
            return dbp_error_set(err, DBP_E_SERVER, 0, NULL,
                                 "the transaction was not run: command %zu: %.*s", i,
                                 (int)(replies[i]->len > 800 ? 800 : replies[i]->len),
                                 replies[i]->str);
    }
    if (replies[0]->type == DBP_REPLY_ERROR)
        return rd_reply_error(replies[0], "MULTI", err);
    if (replies[n + 1]->type == DBP_REPLY_ERROR)
        return rd_reply_error(replies[n + 1], "EXEC", err);
    *out = replies[n + 1];
    replies[n + 1] = NULL;
    return DBP_OK;
}

int rd_command(void *conn, const char *mode, const dbp_params *cmds, const dbp_exec_ctx *ctx,
               dbp_reply **out, dbp_error *err)
{
    rd_conn *c = conn;
    *out = NULL;
    int multi = mode && strcasecmp(mode, "MULTI") == 0;
    if (mode && *mode && !multi)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "unknown command mode '%s'", mode);
    if (c->cluster) {
        c->ctx = ctx;
        size_t n_cmds = 0;
        int rc = encode_commands(c, cmds, &n_cmds, err); /* checks them all first */
        c->out.len = 0;
        if (rc == DBP_OK)
            rc = rd_cluster_command(c, multi, cmds, out, err);
        c->ctx = NULL;
        return rc;
    }
    c->out.len = 0;
    size_t n = 0;
    int rc = multi && rd_cmd(&c->out, "MULTI", (char *)NULL) != DBP_OK ? dbp_error_nomem(err)
                                                                         : DBP_OK;
    if (rc == DBP_OK)
        rc = encode_commands(c, cmds, &n, err);
    if (rc == DBP_OK && multi && rd_cmd(&c->out, "EXEC", (char *)NULL) != DBP_OK)
        rc = dbp_error_nomem(err);
    size_t n_replies = multi ? n + 2 : n;
    dbp_reply **replies = rc == DBP_OK ? dbp_calloc(n_replies, sizeof *replies) : NULL;
    if (rc == DBP_OK && !replies)
        rc = dbp_error_nomem(err);
    if (rc != DBP_OK) {
        c->out.len = 0;
        return rc;
    }
    c->ctx = ctx;
    rc = rd_roundtrip(c, n_replies, replies, err);
    if (rc == DBP_OK && multi) {
        rc = rd_exec_answer(c, replies, n, out, err);
    } else if (rc == DBP_OK && (rc = refused_for_role(c, replies, n, err)) == DBP_OK) {
        *out = new_array(replies, n);
        rc = *out ? DBP_OK : dbp_error_nomem(err);
        if (*out)
            replies = NULL; /* the array owns them now */
    }
    /* what is left (all of it after a failed round trip, MULTI included) */
    for (size_t i = 0; replies && i < n_replies; i++)
        dbp_reply_free(replies[i]);
    dbp_free(replies);
    c->ctx = NULL;
    return rc;
}

int rd_execute(void *conn, const char *sql, size_t sql_len, const dbp_params *params,
               const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err)
{
    rd_conn *c = conn;
    *rows_affected = 0;
    if (dbp_params_rows(params) > 1)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "redis runs one command per execute; use pipeline() for many");
    size_t words = 0, first = SIZE_MAX, first_len = 0;
    for (size_t i = 0; i < sql_len;) {
        while (i < sql_len && isspace((unsigned char)sql[i]))
            i++;
        size_t start = i;
        while (i < sql_len && !isspace((unsigned char)sql[i]))
            i++;
        if (i > start && words++ == 0) {
            first = start;
            first_len = i - start;
        }
    }
    if (words == 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "no command to run");
    if (name_in(sql + first, first_len, push_commands))
        return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000", "%.*s is not served",
                             (int)first_len, sql + first);
    if (!ctx->session_setup)
        rd_note_command(c, sql + first, first_len);
    size_t width = dbp_params_width(params);
    c->out.len = 0;
    c->ctx = ctx;
    rd_batch batch = {.src = &c->out};
    int rc = DBP_OK;
    if (c->cluster) { /* the key is the second word, or the first parameter */
        int target = RD_ANY_NODE;
        size_t i = first + first_len;
        while (i < sql_len && isspace((unsigned char)sql[i]))
            i++;
        size_t start = i;
        while (i < sql_len && !isspace((unsigned char)sql[i]))
            i++;
        char num[48];
        const char *key = sql + start;
        size_t key_len = i - start;
        if (key_len == 0 && width > 0)
            rc = rd_arg_bytes(params, dbp_params_get(params, 0, 0), num, sizeof num, &key,
                              &key_len, err);
        if (rc == DBP_OK && (key_len > 0 || width > 0) && !rd_keyless(sql + first, first_len))
            target = (int)rd_keyslot(key, key_len);
        if (rc == DBP_OK)
            rc = rd_batch_mark(&batch, target, err);
    }
    if (rc == DBP_OK)
        rc = rd_cmd_begin(&c->out, words + width) == DBP_OK ? DBP_OK : dbp_error_nomem(err);
    for (size_t i = 0; i < sql_len && rc == DBP_OK;) {
        while (i < sql_len && isspace((unsigned char)sql[i]))
            i++;
        size_t start = i;
        while (i < sql_len && !isspace((unsigned char)sql[i]))
            i++;
        if (i > start && rd_cmd_arg(&c->out, sql + start, i - start) != DBP_OK)
            rc = dbp_error_nomem(err);
    }
    for (size_t k = 0; k < width && rc == DBP_OK; k++)
        rc = rd_put_value(&c->out, params, dbp_params_get(params, 0, k), err);
    dbp_reply *r = NULL;
    if (rc == DBP_OK && c->cluster && (rc = rd_batch_run(c, &batch, err)) == DBP_OK) {
        r = batch.replies[0];
        batch.replies[0] = NULL;
    } else if (rc == DBP_OK) {
        rc = rd_roundtrip(c, 1, &r, err);
    }
    rd_batch_free(&batch);
    c->out.len = 0;
    if (rc == DBP_OK && (rc = refused_for_role(c, &r, 1, err)) == DBP_OK &&
        r->type == DBP_REPLY_ERROR)
        rc = rd_reply_error(r, "redis", err);
    if (rc == DBP_OK && r->type == DBP_REPLY_INTEGER)
        *rows_affected = r->integer;
    dbp_reply_free(r);
    c->ctx = NULL;
    return rc;
}
