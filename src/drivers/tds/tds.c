/* tds.c - the Microsoft SQL Server engine over FreeTDS db-lib (TDS 7.4).
 *
 * Settings (tds_settings.c): host (default localhost), port (1433) or
 * instance, database, user, password, app_name, login_timeout (seconds,
 * 15), packet_size, encrypt (strict / require / off), ca_file, crl_file,
 * check_hostname (on/off). They become one section of the driver's private
 * freetds.conf (tds_conf.h says why); user, password, database, charset
 * (always UTF-8) and TDS version (always 7.4) go in the login record.
 *
 * Statements: without parameters the SQL goes as a batch (scripts of many
 * statements, no GO); with parameters as an RPC to sp_executesql, the SQL
 * naming them @P1, @P2, ... (or @name for a dict), each declared with the
 * type its Python value has (tds_types.c). Values are never pasted into
 * the SQL text (db-lib sends '' as NULL: an empty value is set by a
 * constant SET @Pn=N''; of the driver's). write_frame is bulk copy
 * (tds_bulk.c).
 *
 * db-lib's error and message handlers are process-wide: each DBPROCESS
 * carries its connection in dbsetuserdata(), and the handlers file the
 * server's number, state, class and text into that connection's slot (a
 * thread-local pointer covers the login, before a DBPROCESS exists).
 *
 * Cancel: interrupt() only sets a flag. Every connection has a one-second
 * db-lib query timeout; when it fires while the worker waits for the
 * server, the error handler answers INT_TIMEOUT if a cancel is pending
 * (db-lib then sends the attention from the worker thread and keeps the
 * connection) and INT_CONTINUE otherwise. Between rows the worker checks
 * the flag itself and calls dbcancel().
 *
 * Transactions: db-lib does not expose the server's transaction ENVCHANGEs,
 * so the driver keeps @@TRANCOUNT: BEGIN/COMMIT/ROLLBACK read it back in the
 * same batch, and it is read again after any statement that mentions
 * transactions, after a failure inside a transaction, and after every
 * statement once a session has turned on implicit transactions. The pool
 * rolls back what is open when a connection comes back; db-lib has no
 * sp_reset_connection for the rest of the session state. */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sybfront.h>
#include <sybdb.h>

#include "alloc.h"
#include "driver.h"
#include "error.h"
#include "tds_bulk.h"
#include "tds_conf.h"
#include "tds_internal.h"
#include "tds_types.h"
#include "textbuf.h"
#include "tcp.h"
#include "textparse.h"

/* Seconds db-lib waits between calls of the error handler while the server
 * is silent; also the cancel latency. */
#define POLL_SECONDS "1"

/* ---- parameters -------------------------------------------------------------------- */

static int name_ok(const char *name)
{
    if (!name || !(isalpha((unsigned char)*name) || *name == '_'))
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return strlen(name) <= 120;
}

/* Sends row `row` of `params` as sp_executesql(@stmt, @params, values).
 * `null_binary[i]`: NULLs in position i go as varbinary. */
/* Whether the statement mentions the parameter `name` (@P3 and not only
 * @P30). sp_executesql ignores a declared parameter the text never uses,
 * so a value given too many would otherwise vanish without a word. */
static int uses_name(const char *sql, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(sql + i, name, n) == 0 &&
            (i + n == len || !(isalnum((unsigned char)sql[i + n]) || sql[i + n] == '_')))
            return 1;
    return 0;
}

static int send_rpc(tds_conn *c, const char *sql, size_t len, const dbp_params *params, size_t row,
                    const unsigned char *null_binary, dbp_error *err)
{
    size_t width = dbp_params_width(params);
    tds_param *vals = width ? dbp_calloc(width, sizeof *vals) : NULL;
    char (*names)[128] = width ? dbp_calloc(width, sizeof *names) : NULL;
    dbp_textbuf stmt = {0}, decl = {0};
    int rc = DBP_OK;
    if (width && (!vals || !names))
        rc = dbp_error_nomem(err);
    int named = width && dbp_params_get(params, row, 0)->has_name;
    for (size_t i = 0; i < width && rc == DBP_OK; i++) {
        const dbp_value *v = dbp_params_get(params, row, i);
        if (named) {
            const char *name = v->has_name ? dbp_params_name(params, v) : NULL;
            if (!name_ok(name)) {
                rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                   "parameter name '%s' is not a plain T-SQL identifier "
                                   "(letters, digits, _)",
                                   name ? name : "(positional)");
                break;
            }
            snprintf(names[i], sizeof names[i], "@%s", name);
        } else {
            snprintf(names[i], sizeof names[i], "@P%zu", i + 1);
        }
        if (!uses_name(sql, len, names[i])) {
            rc = dbp_error_set(err, DBP_E_MISUSE, 0, "07001",
                               "%zu parameter value(s) were given but the statement never uses "
                               "%s (MSSQL placeholders are @P1, @P2, ... or @name for a dict)",
                               width, names[i]);
            break;
        }
        dbp_cell cell;
        dbp_params_cell(params, v, &cell);
        rc = tds_param_bind(c->proc, &cell, null_binary && null_binary[i], i + 1, &vals[i], err);
        if (rc != DBP_OK)
            break;
        if (i)
            dbp_textbuf_str(&decl, ",");
        dbp_textbuf_str(&decl, names[i]);
        dbp_textbuf_str(&decl, " ");
        dbp_textbuf_str(&decl, vals[i].decl);
        if (vals[i].empty_literal) { /* db-lib sends '' as NULL: set it here */
            dbp_textbuf_str(&stmt, "SET ");
            dbp_textbuf_str(&stmt, names[i]);
            dbp_textbuf_str(&stmt, "=");
            dbp_textbuf_str(&stmt, vals[i].empty_literal);
            dbp_textbuf_str(&stmt, ";");
        }
    }
    dbp_textbuf_add(&stmt, sql, len);
    if (rc == DBP_OK && (stmt.failed || decl.failed || !stmt.data))
        rc = dbp_error_nomem(err);
    if (rc == DBP_OK && stmt.len > INT32_MAX)
        rc = dbp_error_set(err, DBP_E_DATA, 0, NULL, "the statement is larger than 2 GiB");
    if (rc == DBP_OK && tds_cancel_requested(c)) {
        c->attention_sent = 1;
        rc = tds_call_error(c, err);
    }
    if (rc == DBP_OK) {
        DBPROCESS *proc = c->proc;
        int ok = dbrpcinit(proc, "sp_executesql", 0) == SUCCEED &&
                 dbrpcparam(proc, "@stmt", 0, SYBNTEXT, -1, (DBINT)stmt.len,
                            (BYTE *)stmt.data) == SUCCEED;
        if (ok && width) /* SYBNTEXT: nvarchar(max); SYBVARCHAR would stop at 4000 */
            ok = dbrpcparam(proc, "@params", 0, SYBNTEXT, -1, (DBINT)decl.len,
                            (BYTE *)decl.data) == SUCCEED;
        for (size_t i = 0; ok && i < width; i++)
            ok = dbrpcparam(proc, names[i], 0, vals[i].type, -1, vals[i].datalen,
                            (BYTE *)vals[i].value) == SUCCEED;
        if (ok)
            ok = dbrpcsend(proc) == SUCCEED;
        else
            dbrpcinit(proc, "", DBRPCRESET);
        if (ok)
            dbsqlok(proc); /* FAIL: the statement failed; its messages are filed */
        else
            rc = tds_call_error(c, err);
    }
    dbp_textbuf_free(&stmt);
    dbp_textbuf_free(&decl);
    dbp_free(vals);
    dbp_free(names);
    return rc;
}

/* Sends the statement: a batch without parameters, sp_executesql with. */
int tds_send_statement(tds_conn *c, const char *sql, size_t len, const dbp_params *params,
                          size_t row, const unsigned char *null_binary, dbp_error *err)
{
    if (len == 0)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "the SQL text is empty");
    if (params)
        return send_rpc(c, sql, len, params, row, null_binary, err);
    char *text = dbp_strndup(sql, len);
    if (!text)
        return dbp_error_nomem(err);
    tds_send_batch(c, text);
    dbp_free(text);
    return DBP_OK;
}

/* ---- connections -------------------------------------------------------------------- */

static void disconnect(void *conn)
{
    tds_conn *c = conn;
    if (!c)
        return;
    tds_cursor_reset(&c->cur);
    if (c->proc) {
        dbsetuserdata(c->proc, NULL);
        tds_conn *saved = tds_set_current(c); /* messages while closing find a home */
        dbclose(c->proc);
        tds_set_current(saved);
    }
    dbp_free(c);
}

static int login_error(tds_conn *c, const tds_config *cfg, dbp_error *err)
{
    tds_failure *f = &c->fail;
    if (f->server) {
        dbp_error server;
        int rc = tds_server_error(f, 1, &server);
        dbp_error_set(err, rc, server.native_code, server.sqlstate,
                      "cannot log in to SQL Server %s as '%s': %s", cfg->where, cfg->user,
                      server.message);
        if (err)
            memcpy(err->detail, server.detail, sizeof err->detail);
        return rc;
    }
    /* db-lib says only "connection failed" when its PRELOGIN step refused a
     * server without TLS: ask the server, to say so. */
    int64_t left_ms = c->ctx ? (c->ctx->deadline_ns - dbp_now_ns()) / 1000000 : 1000;
    if (cfg->encrypt_required && cfg->port && left_ms > 0 &&
        tds_server_offers_tls(cfg->host, cfg->port, left_ms < 2000 ? (int)left_ms : 2000) == 0)
        return dbp_error_set(err, DBP_E_NETWORK, f->client, "08001",
                             "cannot connect to SQL Server %s: the server does not offer "
                             "encryption, and encrypt=%s refuses to log in without it",
                             cfg->where, cfg->encryption);
    /* FreeTDS names our freetds.conf section in its text: say host:port */
    char text[sizeof f->client_text];
    snprintf(text, sizeof text, "%s", f->client_text[0] ? f->client_text : "dbopen failed");
    char *section = strstr(text, cfg->server);
    if (section && section > text + 1 && section[-1] == '(' && section[-2] == ' ')
        section[-2] = '\0';
    dbp_error_set(err, DBP_E_NETWORK, f->client, "08001", "cannot connect to SQL Server %s: %s",
                  cfg->where, text);
    if (err && cfg->encryption[0])
        snprintf(err->hint, sizeof err->hint,
                 "encrypt=%s: the server must offer TLS and, with ca_file (or strict), "
                 "present a certificate those CAs trust (and whose name matches the host "
                 "unless check_hostname=off)",
                 cfg->encryption);
    return DBP_E_NETWORK;
}

/* Session options of an ODBC connection (db-lib's own defaults are the old
 * Sybase ones: no ANSI warnings, so no truncation errors), and no (max)
 * truncation. */
static const char session_setup[] =
    "SET TEXTSIZE 2147483647; SET ANSI_NULLS ON; SET ANSI_PADDING ON; "
    "SET ANSI_WARNINGS ON; SET ANSI_NULL_DFLT_ON ON; SET CONCAT_NULL_YIELDS_NULL ON; "
    "SET QUOTED_IDENTIFIER ON; SELECT @@TRANCOUNT";


/* db-lib's dbopen cannot be interrupted: login_timeout bounds it, and the
 * pool answers a caller whose connect_timeout passes first (docs/mssql.md). */
static int open_connection(const void *config, const dbp_exec_ctx *ctx, void **out,
                           dbp_error *err)
{
    const tds_config *cfg = config;
    tds_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    tds_call_begin(c, ctx);
    c->connecting = 1;
    LOGINREC *login = dblogin();
    int ok = login && DBSETLUSER(login, cfg->user) == SUCCEED &&
             DBSETLPWD(login, cfg->password ? cfg->password : "") == SUCCEED &&
             DBSETLAPP(login, cfg->app_name) == SUCCEED &&
             DBSETLCHARSET(login, "UTF-8") == SUCCEED &&
             dbsetlversion(login, DBVERSION_74) == SUCCEED &&
             (!cfg->database || DBSETLDBNAME(login, cfg->database) == SUCCEED) &&
             (!cfg->packet_size || DBSETLPACKET(login, cfg->packet_size) == SUCCEED) &&
             BCP_SETL(login, TRUE) == SUCCEED; /* write_frame's bulk copy needs it */
    int rc = DBP_OK;
    if (!ok) {
        rc = login ? dbp_error_set(err, DBP_E_CONFIG, c->fail.client, NULL,
                                   "FreeTDS refused a login setting (user, password, database "
                                   "or app_name too long?): %s",
                                   c->fail.client_text)
                   : dbp_error_nomem(err);
    } else {
        tds_conf_open_begin();
        c->proc = dbopen(login, cfg->server);
        tds_conf_open_end();
        if (!c->proc)
            rc = login_error(c, cfg, err);
    }
    dbloginfree(login);
    if (rc == DBP_OK) {
        dbsetuserdata(c->proc, (BYTE *)c);
        c->connecting = 0;
        dbp_tcp_keepalive(DBIORDESC(c->proc)); /* db-lib has no setting for it */
        if (dbsetopt(c->proc, DBSETTIME, POLL_SECONDS, 0) == FAIL)
            rc = dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "db-lib refused DBSETTIME");
    }
    if (rc == DBP_OK) {
        tds_run_own(c, session_setup, &c->trancount);
        if (tds_failed(c))
            rc = tds_call_error(c, err);
    }
    tds_call_end(c);
    if (rc != DBP_OK) {
        disconnect(c);
        return rc;
    }
    *out = c;
    return DBP_OK;
}

static int ping(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    tds_conn *c = conn;
    tds_call_begin(c, ctx);
    tds_run_own(c, "SELECT 1", NULL);
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    tds_call_end(c);
    return rc;
}

/* A database that is not updateable (an Always On readable secondary, or
 * one set READ_ONLY) is a replica. SQL Server reports no replay lag here. */
static int probe_role(void *conn, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                      dbp_error *err)
{
    tds_conn *c = conn;
    int read_only = -1;
    tds_call_begin(c, ctx);
    tds_run_own(c,
                "SELECT CAST(CASE WHEN DATABASEPROPERTYEX(DB_NAME(), 'Updateability') = "
                "'READ_WRITE' THEN 0 ELSE 1 END AS int)",
                &read_only);
    int rc = tds_failed(c) ? tds_call_error(c, err)
             : read_only < 0
                 ? dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "no answer to the role probe")
                 : DBP_OK;
    tds_call_end(c);
    *role = read_only == 0 ? DBP_ROLE_PRIMARY : DBP_ROLE_REPLICA;
    *lag_s = -1;
    return rc;
}

static void interrupt(void *conn) { atomic_store(&((tds_conn *)conn)->interrupted, 1); }

/* Without a round trip: an idle connection is owed nothing, so a readable
 * socket means the server closed it (or sent its goodbye). */
static int is_usable(void *conn)
{
    tds_conn *c = conn;
    if (c->dead || !c->proc || DBDEAD(c->proc))
        return 0;
    struct pollfd p = {.fd = DBIORDESC(c->proc), .events = POLLIN};
    return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

static int in_transaction(void *conn) { return ((tds_conn *)conn)->trancount > 0; }

/* ---- execute ---------------------------------------------------------------------------- */

/* Positions where some row binds bytes, so NULLs there go as varbinary. */
static unsigned char *binary_positions(const dbp_params *params, size_t rows)
{
    size_t width = dbp_params_width(params);
    unsigned char *flags = width ? dbp_calloc(width, 1) : NULL;
    for (size_t r = 0; flags && r < rows; r++)
        for (size_t i = 0; i < width; i++)
            if (dbp_params_get(params, r, i)->kind == DBP_V_BLOB)
                flags[i] = 1;
    return flags;
}

static int execute_many(tds_conn *c, const char *sql, size_t len, const dbp_params *params,
                        size_t rows, int64_t *affected, dbp_error *err)
{
    unsigned char *null_binary = binary_positions(params, rows);
    if (!null_binary)
        return dbp_error_nomem(err);
    /* All or nothing: a transaction of our own, or a savepoint in the
     * caller's (SQL Server needs no release). */
    int nested = c->trancount > 0;
    tds_run_own(c, nested ? "SAVE TRANSACTION dbp_execute_many" : "BEGIN TRANSACTION", NULL);
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    if (rc == DBP_OK && !nested)
        c->trancount = 1;
    size_t row = 0;
    for (; row < rows && rc == DBP_OK; row++) {
        if (tds_cancel_requested(c)) {
            c->attention_sent = 1;
            rc = tds_call_error(c, err);
            break;
        }
        int64_t n = 0;
        rc = tds_send_statement(c, sql, len, params, row, null_binary, err);
        if (rc == DBP_OK) {
            tds_drain(c, &n);
            if (tds_failed(c))
                rc = tds_call_error(c, err);
        }
        if (rc == DBP_OK)
            *affected += n;
    }
    dbp_free(null_binary);
    if (rc == DBP_OK) {
        if (!nested) {
            tds_run_own(c, "COMMIT TRANSACTION; SELECT @@TRANCOUNT", &c->trancount);
            if (tds_failed(c))
                rc = tds_call_error(c, err);
        }
    } else if (!c->dead) {
        tds_failure saved = c->fail;
        int attention = c->attention_sent;
        const atomic_int *cancelled = c->cancelled;
        c->cancelled = NULL;
        atomic_store(&c->interrupted, 0);
        if (attention && !DBDEAD(c->proc))
            dbcancel(c->proc); /* the attention's acknowledgement first */
        c->attention_sent = 0;
        tds_run_own(c,
                    nested ? "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION dbp_execute_many"
                           : "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION",
                    NULL);
        c->fail = saved;
        c->attention_sent = attention;
        c->cancelled = cancelled;
        if (err && row > 0 && rc != DBP_E_CANCELLED && rc != DBP_E_NETWORK) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used,
                     " (parameter row %zu; no row was written)", row - 1);
        }
    }
    if (rc != DBP_OK) {
        *affected = 0;
        tds_refresh_trancount(c);
    }
    return rc;
}

static int execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    tds_conn *c = conn;
    tds_call_begin(c, ctx);
    *affected = 0;
    int touches = tds_touches_transactions(c, sql, len);
    if (!ctx->session_setup)
        c->session_changed |= tds_session_changes(sql, len);
    size_t rows = params ? dbp_params_rows(params) : 0;
    int rc;
    if (rows > 1) {
        rc = execute_many(c, sql, len, params, rows, affected, err);
        if (rc == DBP_OK && touches)
            tds_refresh_trancount(c);
    } else {
        rc = tds_send_statement(c, sql, len, params, 0, NULL, err);
        if (rc == DBP_OK) {
            tds_drain(c, affected);
            if (tds_failed(c))
                rc = tds_call_error(c, err);
        }
        tds_after_statement(c, touches);
        if (rc != DBP_OK)
            *affected = 0;
    }
    tds_call_end(c);
    return rc;
}

/* ---- transactions --------------------------------------------------------------------------- */

static int begin(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
{
    tds_conn *c = conn;
    /* "ISOLATION LEVEL SNAPSHOT" and the like: keywords only. */
    size_t n = strlen(options);
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)options[i]) && options[i] != ' ')
            n = 0, options = NULL;
    if (!options || (n && strncasecmp(options, "ISOLATION LEVEL ", 16) != 0))
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "mssql transactions take '' or 'ISOLATION LEVEL <level>' "
                             "(READ UNCOMMITTED, READ COMMITTED, REPEATABLE READ, SNAPSHOT, "
                             "SERIALIZABLE)");
    char sql[160];
    if (n)
        snprintf(sql, sizeof sql, "SET TRANSACTION %s; BEGIN TRANSACTION; SELECT @@TRANCOUNT",
                 options);
    else
        snprintf(sql, sizeof sql, "BEGIN TRANSACTION; SELECT @@TRANCOUNT");
    tds_call_begin(c, ctx);
    tds_run_own(c, sql, &c->trancount);
    if (n)
        c->isolation_changed = 1;
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    if (rc != DBP_OK)
        tds_refresh_trancount(c);
    tds_call_end(c);
    return rc;
}

/* COMMIT or ROLLBACK, then the isolation level back to the default, and the
 * count read back in the same batch. */
static int end_transaction(tds_conn *c, const char *verb, const dbp_exec_ctx *ctx,
                           dbp_error *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "%s; %sSELECT @@TRANCOUNT", verb,
             c->isolation_changed ? "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; " : "");
    tds_call_begin(c, ctx);
    int before = c->trancount;
    c->trancount = -1; /* unknown until read back */
    tds_run_own(c, sql, &c->trancount);
    int rc = tds_failed(c) ? tds_call_error(c, err) : DBP_OK;
    if (c->trancount < 0) {
        c->trancount = before;
        tds_refresh_trancount(c);
    }
    if (c->trancount == 0)
        c->isolation_changed = 0;
    tds_call_end(c);
    return rc;
}

/* With @@TRANCOUNT already 0 there is nothing to commit: the SQL run in the
 * transaction ended it, or the server rolled it back after an error. That
 * must not look like a successful commit. */
static int commit(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    tds_conn *c = conn;
    if (c->trancount == 0 && !c->dead)
        return dbp_error_set(err, DBP_E_SERVER, 3902, "25000",
                             "no transaction is open to commit: the statements run in it "
                             "already committed or rolled it back, or the server rolled it "
                             "back after an error");
    return end_transaction(c, "COMMIT TRANSACTION", ctx, err);
}

static int rollback(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    return end_transaction(conn, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION", ctx, err);
}

/* ---- bulk load ------------------------------------------------------------------------------ */

static int bulk_load(void *conn, const char *table, const dbp_params *options,
              struct ArrowArrayStream *rows, const dbp_exec_ctx *ctx,
              int64_t *loaded, dbp_error *err)
{
    (void)options; /* no options */
    tds_conn *c = conn;
    tds_call_begin(c, ctx);
    int rc = tds_bulk_load(c, table, rows, ctx, loaded, err);
    tds_call_end(c);
    return rc;
}

const dbp_driver dbp_mssql_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_CANCEL | DBP_CAP_DEADLINES | DBP_CAP_ROLES | DBP_CAP_BULK_LOAD |
            DBP_CAP_RESET,
    .name = "mssql",
    .parse_config = tds_parse_config,
    .free_config = tds_free_config,
    .connect = open_connection,
    .disconnect = disconnect,
    .ping = ping,
    .interrupt = interrupt,
    .is_usable = is_usable,
    .reset = tds_reset,
    .session_changed = tds_session_changed,
    .in_transaction = in_transaction,
    .execute = execute,
    .cursor_open = tds_cursor_open,
    .cursor_fetch = tds_cursor_fetch,
    .cursor_close = tds_cursor_close,
    .bulk_load = bulk_load,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .probe_role = probe_role,
    .describe = tds_describe,
};
