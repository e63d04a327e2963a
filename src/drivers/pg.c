/* pg.c - the PostgreSQL engine over libpq.
 *
 * Settings are libpq connection keywords (host, port, dbname, user,
 * password, sslmode, sslrootcert, connect_timeout, application_name,
 * options, ...; "database" is accepted for dbname and "dsn" for a
 * postgresql:// URI), plus our own: statement_cache_size (prepared
 * statements kept per connection, LRU; 0 = unnamed statements only, for
 * PgBouncer in transaction mode).
 *
 * Statements run through libpq's asynchronous calls while the worker waits
 * in poll() on the server socket and an eventfd; interrupt() writes the
 * eventfd, and the worker itself then sends the cancel request, so the
 * thread that cancels never blocks on the network.
 *
 * Rows arrive in the binary format and are decoded by pg_types.c: through
 * COPY (<query>) TO STDOUT (FORMAT binary) for parameterless reads (the
 * fastest path the server offers), or through the extended protocol with
 * binary results otherwise. Column types come from describing the prepared
 * statement, which the statement cache keeps. */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "arrow_input.h"
#include "driver.h"
#include "error.h"
#include "pg_copy.h"
#include "pg_types.h"
#include "textbuf.h"
#include "textparse.h"

/* ---- configuration ------------------------------------------------------ */

typedef struct pg_config {
    char **keys;   /* libpq keywords, NULL-terminated */
    char **values;
    int cache_size;
} pg_config;

static void free_config(void *p)
{
    pg_config *cfg = p;
    if (!cfg)
        return;
    for (size_t i = 0; cfg->keys && cfg->keys[i]; i++) {
        dbp_free(cfg->keys[i]);
        dbp_free(cfg->values[i]);
    }
    dbp_free(cfg->keys);
    dbp_free(cfg->values);
    dbp_free(cfg);
}

static int is_libpq_keyword(const char *key)
{
    PQconninfoOption *opts = PQconndefaults();
    int found = 0;
    for (PQconninfoOption *o = opts; o && o->keyword && !found; o++)
        found = strcmp(o->keyword, key) == 0;
    PQconninfoFree(opts);
    return found;
}

static int parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    pg_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->cache_size = 100;
    /* +4: connect_timeout, client_encoding, fallback_application_name, the
     * terminator */
    cfg->keys = dbp_calloc(n + 4, sizeof *cfg->keys);
    cfg->values = dbp_calloc(n + 4, sizeof *cfg->values);
    if (!cfg->keys || !cfg->values) {
        free_config(cfg);
        return dbp_error_nomem(err);
    }
    /* First, so that a connect_timeout the user gives (or a URL carries)
     * overrides it: without one libpq waits forever on a silent server. */
    cfg->keys[0] = dbp_strdup("connect_timeout");
    cfg->values[0] = dbp_strdup("10");
    size_t k = 1;
    int rc = cfg->keys[0] && cfg->values[0] ? DBP_OK : dbp_error_nomem(err);
    for (size_t i = 0; i < n && rc == DBP_OK; i++) {
        const char *key = settings[i].key, *value = settings[i].value;
        if (strcmp(key, "statement_cache_size") == 0) {
            long v = 0;
            rc = dbp_parse_setting_int("postgresql", key, value, 0, 100000, &v, err);
            cfg->cache_size = (int)v;
            continue;
        }
        if (strcmp(key, "database") == 0) {
            key = "dbname";
        } else if (strcmp(key, "dsn") == 0 || strcmp(key, "url") == 0) {
            key = "dbname"; /* libpq expands a URI given as dbname */
            char *why = NULL;
            PQconninfoOption *parsed = PQconninfoParse(value, &why);
            if (!parsed) {
                /* libpq quotes a badly percent-encoded part, which may be
                 * the password: name the problem, not the text. */
                int quoted = why && strstr(why, "percent");
                rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "invalid PostgreSQL URL: %s",
                                   quoted ? "invalid percent-encoding (the part is not shown)"
                                   : why  ? why
                                          : "out of memory");
                PQfreemem(why);
                continue;
            }
            PQconninfoFree(parsed);
        }
        if (strcmp(key, "client_encoding") == 0) {
            rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                               "client_encoding is always UTF8: results are Arrow UTF-8");
        } else if (!is_libpq_keyword(key)) {
            rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                               "unknown postgresql setting '%s' (not a libpq connection keyword)",
                               key);
        } else {
            cfg->keys[k] = dbp_strdup(key);
            cfg->values[k] = dbp_strdup(value);
            if (!cfg->keys[k] || !cfg->values[k])
                rc = dbp_error_nomem(err);
            k++;
        }
    }
    if (rc == DBP_OK) {
        cfg->keys[k] = dbp_strdup("client_encoding");
        cfg->values[k] = dbp_strdup("UTF8");
        k++;
        cfg->keys[k] = dbp_strdup("fallback_application_name");
        cfg->values[k] = dbp_strdup("db-pool");
        if (!cfg->keys[k - 1] || !cfg->values[k - 1] || !cfg->keys[k] || !cfg->values[k])
            rc = dbp_error_nomem(err);
    }
    if (rc != DBP_OK) {
        free_config(cfg);
        return rc;
    }
    *out = cfg;
    return DBP_OK;
}

/* ---- connections -------------------------------------------------------------- */

typedef struct pg_statement {
    char *sql;
    size_t sql_len;
    char name[24]; /* "" for the unnamed statement */
    int n_params;
    Oid *param_types;
    int n_fields;
    char **field_names;
    pg_column_plan *plans;
    uint64_t last_used;
} pg_statement;

typedef enum cursor_kind { CURSOR_NONE, CURSOR_COPY, CURSOR_ROWS } cursor_kind;

typedef struct pg_cursor {
    cursor_kind kind;
    pg_statement *stmt;  /* its columns; owned here when uncached */
    int owns_stmt;
    PGresult *rows;      /* CURSOR_ROWS: current result (single-row or whole) */
    int row;             /* next row of `rows` */
    int single_row;      /* rows arrive one PGresult per row */
    char *copy_buf;      /* CURSOR_COPY: bytes not parsed yet */
    size_t copy_len, copy_cap;
    int header_done;
    int finished;
    int64_t rows_read;
} pg_cursor;

typedef struct pg_conn {
    PGconn *pg;
    PGcancel *cancel;
    int cancel_fd;       /* eventfd written by interrupt() */
    int cancel_sent;
    const pg_config *cfg;
    pg_statement **cache;
    int n_cached;
    uint64_t tick, next_name;
    pg_cursor cur;
    const dbp_exec_ctx *ctx; /* of the running call, for notices */
} pg_conn;

static void statement_free(pg_statement *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_fields; i++) {
        if (st->field_names)
            dbp_free(st->field_names[i]);
        if (st->plans)
            pg_plan_free(&st->plans[i]);
    }
    dbp_free(st->field_names);
    dbp_free(st->plans);
    dbp_free(st->param_types);
    dbp_free(st->sql);
    dbp_free(st);
}

/* Fills `err` from a failed result (or the connection's message). A broken
 * connection is DBP_E_NETWORK so the pool discards it. */
static int result_error(pg_conn *c, const PGresult *res, dbp_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *message = primary ? primary : PQerrorMessage(c->pg);
    int category = DBP_E_SERVER;
    if (PQstatus(c->pg) == CONNECTION_BAD || !state)
        category = DBP_E_NETWORK;
    else if (strcmp(state, "57014") == 0)
        category = DBP_E_CANCELLED;
    else if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
             strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        category = DBP_E_NETWORK;
    else if (strncmp(state, "28", 2) == 0)
        category = DBP_E_AUTH;
    /* libpq's own messages end in a newline */
    size_t len = strlen(message);
    while (len && (message[len - 1] == '\n' || message[len - 1] == ' '))
        len--;
    dbp_error_set(err, category, 0, state, "%.*s", (int)len, message);
    if (err && res) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        snprintf(err->detail, sizeof err->detail, "%s", detail ? detail : "");
        snprintf(err->hint, sizeof err->hint, "%s", hint ? hint : "");
    }
    return category;
}

static void on_notice(void *arg, const PGresult *res)
{
    pg_conn *c = arg;
    if (!c->ctx || !c->ctx->notice)
        return;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    c->ctx->notice(c->ctx->notice_arg, severity ? severity : "NOTICE", text ? text : "");
}

static void disconnect(void *conn)
{
    pg_conn *c = conn;
    if (!c)
        return;
    PQclear(c->cur.rows);
    dbp_free(c->cur.copy_buf);
    if (c->cur.owns_stmt)
        statement_free(c->cur.stmt);
    for (int i = 0; i < c->n_cached; i++)
        statement_free(c->cache[i]);
    dbp_free(c->cache);
    if (c->cancel)
        PQfreeCancel(c->cancel);
    if (c->cancel_fd >= 0)
        close(c->cancel_fd);
    PQfinish(c->pg);
    dbp_free(c);
}

/* The connect_timeout libpq resolved (from the settings or a URL), in ms;
 * PQconnectPoll leaves enforcing it to the caller. */
static int connect_timeout_ms(PGconn *pg)
{
    long seconds = 0;
    PQconninfoOption *opts = PQconninfo(pg);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val)
            seconds = strtol(o->val, NULL, 10);
    PQconninfoFree(opts);
    return seconds > 0 ? (int)(seconds < 2 ? 2 : seconds) * 1000 : -1; /* libpq's minimum is 2 s */
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives a connection started with PQconnectStartParams to its end, in
 * short waits so that a cancel (a caller that gave up, a pool closing) stops
 * it. connect_timeout applies to each host, as in PQconnectdb. Returns
 * DBP_E_CANCELLED or DBP_E_TIMEOUT; else DBP_OK, and the connection's
 * status says how it ended. */
static int connect_wait(PGconn *pg, const atomic_int *cancelled)
{
    int timeout_ms = connect_timeout_ms(pg);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int sock = -1;
    int64_t deadline = 0;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (cancelled && atomic_load(cancelled))
            return DBP_E_CANCELLED;
        int64_t now = monotonic_ms();
        if (PQsocket(pg) != sock) { /* libpq moved on to the next host */
            sock = PQsocket(pg);
            deadline = timeout_ms > 0 ? now + timeout_ms : INT64_MAX;
        }
        if (now >= deadline)
            return DBP_E_TIMEOUT;
        struct pollfd p = {.fd = sock, .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int slice = deadline - now < 50 ? (int)(deadline - now) : 50;
        int ready = poll(&p, 1, slice);
        if (ready > 0 || (ready < 0 && errno != EINTR))
            st = PQconnectPoll(pg);
    }
    return DBP_OK;
}

static int connect(const void *config, const atomic_int *cancelled, void **out, dbp_error *err)
{
    const pg_config *cfg = config;
    pg_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    c->cfg = cfg;
    c->cancel_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->pg = PQconnectStartParams((const char *const *)cfg->keys,
                                 (const char *const *)cfg->values, 1);
    int waited = c->pg && PQstatus(c->pg) != CONNECTION_BAD ? connect_wait(c->pg, cancelled)
                                                             : DBP_OK;
    if (waited != DBP_OK) {
        int rc = waited == DBP_E_CANCELLED
                     ? dbp_error_set(err, waited, 0, "57014",
                                     "cancelled while connecting to PostgreSQL")
                     : dbp_error_set(err, DBP_E_NETWORK, 0, "08001",
                                     "cannot connect to PostgreSQL: no answer within "
                                     "connect_timeout");
        disconnect(c);
        return rc;
    }
    if (c->cancel_fd < 0 || !c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            len--;
        int category = strstr(msg, "authentication failed") || strstr(msg, "password")
                           ? DBP_E_AUTH
                           : DBP_E_NETWORK;
        dbp_error_set(err, category, 0, category == DBP_E_AUTH ? "28000" : "08001",
                      "cannot connect to PostgreSQL: %.*s", (int)len, msg);
        disconnect(c);
        return category;
    }
    c->cancel = PQgetCancel(c->pg);
    if (cfg->cache_size > 0)
        c->cache = dbp_calloc((size_t)cfg->cache_size, sizeof *c->cache);
    if (!c->cancel || (cfg->cache_size > 0 && !c->cache)) {
        disconnect(c);
        return dbp_error_nomem(err);
    }
    PQsetNoticeReceiver(c->pg, on_notice, c);
    *out = c;
    return DBP_OK;
}

/* A server that restarted or ended the session has sent its goodbye (or
 * closed the socket) to this idle connection: reading it shows that now,
 * instead of failing the caller's statement. */
static int is_usable(void *conn)
{
    pg_conn *c = conn;
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
    if (PQstatus(c->pg) != CONNECTION_OK || p.fd < 0)
        return 0;
    if (poll(&p, 1, 0) > 0 && !PQconsumeInput(c->pg))
        return 0;
    return PQstatus(c->pg) == CONNECTION_OK;
}

static void interrupt(void *conn)
{
    uint64_t one = 1;
    ssize_t n = write(((pg_conn *)conn)->cancel_fd, &one, sizeof one);
    (void)n; /* a full counter still means "cancel" */
}

static int in_transaction(void *conn)
{
    return PQtransactionStatus(((pg_conn *)conn)->pg) != PQTRANS_IDLE;
}

/* ---- waiting ------------------------------------------------------------------ */

/* Sends the cancel request once, from the worker (it may block briefly). */
static void send_cancel(pg_conn *c)
{
    uint64_t count;
    ssize_t n = read(c->cancel_fd, &count, sizeof count);
    (void)n;
    if (c->cancel_sent)
        return;
    char buf[256];
    PQcancel(c->cancel, buf, sizeof buf);
    c->cancel_sent = 1;
}

/* Every call starts here: a cancel left in the eventfd belongs to a request
 * that already ended (the current one's cancel shows in ctx->cancelled). */
static void begin_call(pg_conn *c, const dbp_exec_ctx *ctx)
{
    uint64_t stale;
    ssize_t n = read(c->cancel_fd, &stale, sizeof stale);
    (void)n;
    c->cancel_sent = 0;
    c->ctx = ctx;
}

static void end_call(pg_conn *c) { c->ctx = NULL; }

/* Waits until libpq can return a result (or copy data) without blocking.
 * timeout_ms < 0 waits as long as it takes. */
static int pump(pg_conn *c, const dbp_exec_ctx *ctx, int timeout_ms, dbp_error *err)
{
    if (PQflush(c->pg) < 0)
        return result_error(c, NULL, err);
    while (PQisBusy(c->pg)) {
        if (ctx && ctx->cancelled && atomic_load(ctx->cancelled))
            send_cancel(c);
        struct pollfd fds[2] = {{.fd = PQsocket(c->pg), .events = POLLIN},
                                {.fd = c->cancel_fd, .events = POLLIN}};
        int r = poll(fds, 2, timeout_ms);
        if (r == 0)
            return dbp_error_set(err, DBP_E_NETWORK, 0, "08006",
                                 "no answer from the server within %d ms", timeout_ms);
        if (r < 0 && errno != EINTR)
            return dbp_error_set(err, DBP_E_NETWORK, errno, NULL, "poll failed");
        if (fds[1].revents & POLLIN)
            send_cancel(c);
        if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
            return result_error(c, NULL, err);
    }
    return DBP_OK;
}

/* Waits until the socket has data (or a cancel arrives) and takes it in;
 * for COPY, where PQgetCopyData says "nothing yet". */
static int pump_readable(pg_conn *c, const dbp_exec_ctx *ctx, dbp_error *err)
{
    if (ctx && ctx->cancelled && atomic_load(ctx->cancelled))
        send_cancel(c);
    struct pollfd fds[2] = {{.fd = PQsocket(c->pg), .events = POLLIN},
                            {.fd = c->cancel_fd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR)
        return dbp_error_set(err, DBP_E_NETWORK, errno, NULL, "poll failed");
    if (fds[1].revents & POLLIN)
        send_cancel(c);
    if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
        return result_error(c, NULL, err);
    return DBP_OK;
}

/* Waits for and returns the next result (NULL at the end of a query). */
static int next_result(pg_conn *c, const dbp_exec_ctx *ctx, PGresult **out, dbp_error *err)
{
    int rc = pump(c, ctx, -1, err);
    *out = rc == DBP_OK ? PQgetResult(c->pg) : NULL;
    return rc;
}

/* Reads every remaining result of the current query, keeping the first
 * error. Leaves the connection ready for the next query. */
static int drain(pg_conn *c, const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    int rc = DBP_OK;
    PGresult *res;
    for (;;) {
        int prc = next_result(c, ctx, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK)
            return rc == DBP_OK ? prc : rc;
        if (!res)
            break;
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK) {
            rc = result_error(c, res, err);
        } else if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN ||
                   status == PGRES_COPY_BOTH) {
            /* A COPY nobody reads: end it so the connection stays usable. */
            if (status == PGRES_COPY_IN)
                PQputCopyEnd(c->pg, "not supported here");
            else {
                char *buf;
                int n;
                while ((n = PQgetCopyData(c->pg, &buf, 0)) > 0)
                    PQfreemem(buf);
            }
            if (rc == DBP_OK)
                rc = dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                                   "COPY FROM/TO STDIN/STDOUT is not supported through execute()");
        } else if (affected && rc == DBP_OK) {
            const char *n = PQcmdTuples(res);
            if (*n)
                *affected += strtoll(n, NULL, 10);
        }
        PQclear(res);
    }
    c->cancel_sent = 0;
    return rc;
}

static int exec_simple(pg_conn *c, const char *sql, dbp_error *err)
{
    if (!PQsendQuery(c->pg, sql))
        return result_error(c, NULL, err);
    return drain(c, NULL, NULL, err);
}

static int ping(void *conn, dbp_error *err)
{
    pg_conn *c = conn;
    begin_call(c, NULL);
    if (!PQsendQuery(c->pg, ""))
        return result_error(c, NULL, err);
    int rc = pump(c, NULL, 10000, err);
    return rc == DBP_OK ? drain(c, NULL, NULL, err) : rc;
}

/* The role, and for a standby how far its replay trails: 0 when it has
 * replayed everything it received, else the age of the last replayed
 * transaction (which also grows while the primary is idle, erring on the
 * side of skipping the replica). */
static const char PROBE_SQL[] =
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END";

static int probe_role(void *conn, dbp_role *role, double *lag_s, dbp_error *err)
{
    pg_conn *c = conn;
    begin_call(c, NULL);
    if (!PQsendQuery(c->pg, PROBE_SQL))
        return result_error(c, NULL, err);
    int rc = pump(c, NULL, 5000, err);
    PGresult *res = rc == DBP_OK ? PQgetResult(c->pg) : NULL;
    if (rc == DBP_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = result_error(c, res, err);
    else if (rc == DBP_OK && (PQntuples(res) != 1 || PQnfields(res) != 2))
        rc = dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected answer to the role probe");
    if (rc == DBP_OK) {
        int standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        *role = standby ? DBP_ROLE_REPLICA : DBP_ROLE_PRIMARY;
        *lag_s = PQgetisnull(res, 0, 1) ? (standby ? -1 : 0) : strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    return rc == DBP_OK ? drain(c, NULL, NULL, err) : rc;
}

/* Sets *host, *port or *db from one libpq keyword, if it is one of them. */
static void note_address(const char *key, const char *value, char *host, char *port, char *db,
                         size_t size)
{
    if (strcmp(key, "host") == 0 || (strcmp(key, "hostaddr") == 0 && !*host))
        snprintf(host, size, "%s", value);
    else if (strcmp(key, "port") == 0)
        snprintf(port, size, "%s", value);
    else if (strcmp(key, "dbname") == 0)
        snprintf(db, size, "%s", value);
}

/* "host:port/dbname" from the settings, a URL among them expanded as libpq
 * does; never the password. */
static void describe(const void *config, char *buf, size_t size)
{
    const pg_config *cfg = config;
    char host[64] = "", port[64] = "", db[64] = "";
    for (size_t i = 0; cfg->keys[i]; i++) {
        const char *value = cfg->values[i];
        int is_dsn = strcmp(cfg->keys[i], "dbname") == 0 &&
                     (strstr(value, "://") || strchr(value, '='));
        PQconninfoOption *parsed = is_dsn ? PQconninfoParse(value, NULL) : NULL;
        for (PQconninfoOption *o = parsed; o && o->keyword; o++)
            if (o->val)
                note_address(o->keyword, o->val, host, port, db, sizeof db);
        PQconninfoFree(parsed);
        if (!is_dsn)
            note_address(cfg->keys[i], value, host, port, db, sizeof db);
    }
    snprintf(buf, size, "%s:%s/%s", *host ? host : "localhost", *port ? port : "5432", db);
}

/* ---- parameters ---------------------------------------------------------------- */

/* Text forms of one row of parameters; blobs go as binary. The engine
 * parses each according to the parameter's type, exactly. */
typedef struct bound_params {
    const char **values;
    int *lengths;
    int *formats;
    char *text; /* the text forms, back to back */
} bound_params;

static void bound_free(bound_params *b)
{
    dbp_free(b->values);
    dbp_free(b->lengths);
    dbp_free(b->formats);
    dbp_free(b->text);
}

/* The text form PostgreSQL parses exactly, for values without bytes of
 * their own (booleans, numbers, dates and times); `t` holds 48 bytes. */
static int scalar_text(const dbp_cell *v, char *t)
{
    switch (v->kind) {
    case DBP_V_BOOL:
        return snprintf(t, 48, "%s", v->i ? "t" : "f");
    case DBP_V_INT64:
        return snprintf(t, 48, "%lld", (long long)v->i);
    case DBP_V_DOUBLE:
        if (isnan(v->d))
            return snprintf(t, 48, "NaN");
        if (isinf(v->d))
            return snprintf(t, 48, "%sInfinity", v->d < 0 ? "-" : "");
        return dbp_format_double(v->d, t, 48); /* shortest text that reads back exactly */
    case DBP_V_DATE:
        return dbp_format_date(v->i, t, 48);
    case DBP_V_TIME:
        return dbp_format_time(v->i, t, 48);
    case DBP_V_TIMESTAMP:
        return dbp_format_timestamp(v->i, t, 48);
    case DBP_V_TIMESTAMP_TZ: {
        int n = dbp_format_timestamp(v->i, t, 48);
        return n + snprintf(t + n, (size_t)(48 - n), "+00");
    }
    default:
        return 0;
    }
}

static int bind_row(const pg_statement *st, const dbp_params *params, size_t row,
                    bound_params *b, dbp_error *err)
{
    memset(b, 0, sizeof *b);
    size_t given = dbp_params_width(params);
    if ((size_t)st->n_params != given)
        return dbp_error_set(err, DBP_E_MISUSE, 0, "07001",
                             "the statement has %d parameter(s) but %zu were given",
                             st->n_params, given);
    if (given == 0)
        return DBP_OK;
    if (dbp_params_get(params, row, 0)->has_name)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "PostgreSQL parameters are positional ($1, $2, ...): pass a "
                             "sequence, not a dict");
    b->values = dbp_calloc(given, sizeof *b->values);
    b->lengths = dbp_calloc(given, sizeof *b->lengths);
    b->formats = dbp_calloc(given, sizeof *b->formats);
    b->text = dbp_malloc(given * 48);
    if (!b->values || !b->lengths || !b->formats || !b->text) {
        bound_free(b);
        return dbp_error_nomem(err);
    }
    for (size_t i = 0; i < given; i++) {
        dbp_cell v;
        dbp_params_cell(params, dbp_params_get(params, row, i), &v);
        if (v.kind == DBP_V_NULL)
            continue; /* values[i] stays NULL */
        if (v.data) { /* text, decimal digits, bytes (sent binary) */
            if (v.len > INT32_MAX) {
                bound_free(b);
                return dbp_error_set(err, DBP_E_DATA, 0, "22000",
                                     "parameter %zu is larger than 2 GiB", i + 1);
            }
            /* Text goes in the text format, which ends at a NUL byte. */
            if (v.kind != DBP_V_BLOB && memchr(v.data, '\0', v.len)) {
                bound_free(b);
                return dbp_error_set(err, DBP_E_DATA, 0, "22021",
                                     "parameter %zu contains a NUL byte, which PostgreSQL text "
                                     "cannot hold; pass bytes for bytea",
                                     i + 1);
            }
            b->values[i] = v.data;
            b->lengths[i] = (int)v.len;
            b->formats[i] = v.kind == DBP_V_BLOB;
            continue;
        }
        b->values[i] = b->text + i * 48;
        b->lengths[i] = scalar_text(&v, b->text + i * 48);
    }
    return DBP_OK;
}

/* ---- the statement cache ----------------------------------------------------- */

/* OIDs from here on are user-defined types (FirstNormalObjectId). */
#define FIRST_USER_OID 16384

/* What the catalog says about a user-defined type; 0 if it cannot say
 * (e.g. in a failed transaction: the raw bytes are decoded then). */
static int type_info(pg_conn *c, Oid oid, char *typtype, char *category, Oid *base, Oid *elem)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT typtype, typcategory, typbasetype, typelem FROM pg_catalog.pg_type "
             "WHERE oid = %u",
             oid);
    PGresult *res = PQexec(c->pg, sql);
    int found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (found) {
        *typtype = PQgetvalue(res, 0, 0)[0];
        *category = PQgetvalue(res, 0, 1)[0];
        *base = (Oid)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
        *elem = (Oid)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    }
    PQclear(res);
    return found;
}

/* Whether a type is read as its text: enums (binary form = the label) and
 * string-category types such as citext. */
static int is_text_like(pg_conn *c, Oid oid)
{
    char typtype, category;
    Oid base, elem;
    return oid >= FIRST_USER_OID && type_info(c, oid, &typtype, &category, &base, &elem) &&
           (typtype == 'e' || category == 'S');
}

/* Plans a column. User-defined types are looked up: enums and string types
 * read as text, domains as their base type, arrays of them as lists. */
static int plan_field(pg_conn *c, Oid oid, int typmod, pg_column_plan *plan, dbp_error *err)
{
    char typtype, category;
    Oid base, elem;
    if (oid >= FIRST_USER_OID && type_info(c, oid, &typtype, &category, &base, &elem)) {
        if (typtype == 'd' && base)
            return plan_field(c, base, typmod, plan, err);
        if (category == 'A' && elem)
            return pg_plan_array_column(oid, elem, typmod, is_text_like(c, elem), plan, err);
        return pg_plan_column(oid, typmod, typtype == 'e' || category == 'S', plan, err);
    }
    return pg_plan_column(oid, typmod, 0, plan, err);
}

/* Parse and Describe in one pipeline with one Sync: one round trip, and
 * behind PgBouncer in transaction mode both reach the same server. */
static int prepare_and_describe(pg_conn *c, const char *name, const char *sql,
                                PGresult **described, dbp_error *err)
{
    *described = NULL;
    if (!PQenterPipelineMode(c->pg))
        return result_error(c, NULL, err);
    int rc = DBP_OK;
    if (!PQsendPrepare(c->pg, name, sql, 0, NULL) || !PQsendDescribePrepared(c->pg, name) ||
        !PQpipelineSync(c->pg))
        rc = result_error(c, NULL, err);
    for (int answers = 0;;) {
        PGresult *res;
        int prc = next_result(c, NULL, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK) {
            rc = rc == DBP_OK ? prc : rc;
            break;
        }
        if (!res)
            continue;
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        answers++;
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK)
            rc = result_error(c, res, err);
        if (status == PGRES_COMMAND_OK && answers == 2 && rc == DBP_OK) {
            *described = res;
            continue;
        }
        PQclear(res);
    }
    PQexitPipelineMode(c->pg);
    if (rc != DBP_OK) {
        PQclear(*described);
        *described = NULL;
    }
    return rc;
}

/* Runs a prepared statement with bound parameters, binary results. The
 * unnamed statement is sent whole (parse, bind, execute in one Sync), since
 * another Sync may find another server behind a transaction-mode pooler. */
static int send_statement(pg_conn *c, const pg_statement *st, const bound_params *b)
{
    if (st->name[0])
        return PQsendQueryPrepared(c->pg, st->name, st->n_params, b->values, b->lengths,
                                   b->formats, 1);
    return PQsendQueryParams(c->pg, st->sql, st->n_params, st->param_types, b->values,
                             b->lengths, b->formats, 1);
}

/* Prepares and describes `sql` under `name`. */
static int prepare_statement(pg_conn *c, const char *sql, size_t len, const char *name,
                             pg_statement **out, dbp_error *err)
{
    pg_statement *st = dbp_calloc(1, sizeof *st);
    if (!st || !(st->sql = dbp_strndup(sql, len))) {
        dbp_free(st);
        return dbp_error_nomem(err);
    }
    st->sql_len = len;
    snprintf(st->name, sizeof st->name, "%s", name);
    PGresult *res = NULL;
    int rc = prepare_and_describe(c, name, st->sql, &res, err);
    if (rc == DBP_OK) {
        st->n_params = PQnparams(res);
        st->n_fields = PQnfields(res);
        st->param_types = dbp_calloc((size_t)st->n_params, sizeof *st->param_types);
        st->field_names = dbp_calloc((size_t)st->n_fields, sizeof *st->field_names);
        st->plans = dbp_calloc((size_t)st->n_fields, sizeof *st->plans);
        if (!st->param_types || !st->field_names || !st->plans)
            rc = dbp_error_nomem(err);
        for (int i = 0; rc == DBP_OK && i < st->n_params; i++)
            st->param_types[i] = PQparamtype(res, i);
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++) {
            if (!(st->field_names[i] = dbp_strdup(PQfname(res, i))))
                rc = dbp_error_nomem(err);
        }
        /* Planning may ask the catalog, so the describe result goes first. */
        Oid *oids = rc == DBP_OK ? dbp_calloc((size_t)st->n_fields + 1, sizeof *oids) : NULL;
        int *mods = rc == DBP_OK ? dbp_calloc((size_t)st->n_fields + 1, sizeof *mods) : NULL;
        if (rc == DBP_OK && (!oids || !mods))
            rc = dbp_error_nomem(err);
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++) {
            oids[i] = PQftype(res, i);
            mods[i] = PQfmod(res, i);
        }
        PQclear(res);
        res = NULL;
        for (int i = 0; rc == DBP_OK && i < st->n_fields; i++)
            rc = plan_field(c, oids[i], mods[i], &st->plans[i], err);
        dbp_free(oids);
        dbp_free(mods);
    }
    PQclear(res);
    if (rc != DBP_OK) {
        statement_free(st);
        return rc;
    }
    *out = st;
    return DBP_OK;
}

/* The prepared statement for `sql`, from the cache or newly prepared (named
 * and cached, or unnamed when the cache is off; *owned says the caller must
 * free it). */
static int statement_for(pg_conn *c, const char *sql, size_t len, pg_statement **out,
                         int *owned, dbp_error *err)
{
    *owned = 0;
    for (int i = 0; i < c->n_cached; i++) {
        pg_statement *st = c->cache[i];
        if (st->sql_len == len && memcmp(st->sql, sql, len) == 0) {
            st->last_used = ++c->tick;
            *out = st;
            return DBP_OK;
        }
    }
    if (c->cfg->cache_size == 0) {
        *owned = 1;
        return prepare_statement(c, sql, len, "", out, err);
    }
    int slot = c->n_cached;
    if (slot == c->cfg->cache_size) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n_cached; i++)
            if (c->cache[i]->last_used < c->cache[slot]->last_used)
                slot = i;
        if (c->cur.stmt == c->cache[slot]) {
            *owned = 1; /* the open cursor uses the victim: do not cache */
            return prepare_statement(c, sql, len, "", out, err);
        }
        char dealloc[64];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", c->cache[slot]->name);
        int rc = exec_simple(c, dealloc, err);
        if (rc != DBP_OK)
            return rc;
        statement_free(c->cache[slot]);
        c->cache[slot] = c->cache[--c->n_cached];
        slot = c->n_cached;
    }
    char name[24];
    snprintf(name, sizeof name, "dbp_%llu", (unsigned long long)++c->next_name);
    pg_statement *st;
    int rc = prepare_statement(c, sql, len, name, &st, err);
    if (rc != DBP_OK)
        return rc;
    st->last_used = ++c->tick;
    c->cache[slot] = st;
    c->n_cached++;
    *out = st;
    return DBP_OK;
}

/* Drops every cached statement without DEALLOCATE (the server dropped
 * them: DISCARD ALL, DEALLOCATE ALL, or a new session behind a pooler). */
static void forget_statements(pg_conn *c)
{
    for (int i = 0; i < c->n_cached; i++)
        if (c->cache[i] != c->cur.stmt)
            statement_free(c->cache[i]);
        else
            c->cur.owns_stmt = 1; /* the open cursor frees it */
    c->n_cached = 0;
}

/* After a failure: when the server no longer knows a cached statement
 * (26000) or refuses it because DDL changed its result (0A000 "cached
 * plan"), forgets the cache and returns 1 so the caller retries once. */
static int forget_if_stale(pg_conn *c, const dbp_error *err)
{
    if (!err || (strcmp(err->sqlstate, "26000") != 0 &&
                 !(strcmp(err->sqlstate, "0A000") == 0 && strstr(err->message, "cached plan"))))
        return 0;
    if (in_transaction(c) && PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return 0; /* the failed statement aborted the caller's transaction */
    if (err->sqlstate[0] == '0') {
        dbp_error ignored;
        exec_simple(c, "DEALLOCATE ALL", &ignored);
    }
    forget_statements(c);
    return 1;
}

/* ---- execute -------------------------------------------------------------------- */

static int execute_rows(pg_conn *c, const pg_statement *st, const dbp_params *params,
                        size_t rows, const dbp_exec_ctx *ctx, int64_t *affected,
                        dbp_error *err);

/* Whether a script may have dropped the server's prepared statements. */
static int may_drop_statements(const char *sql, size_t len)
{
    for (size_t i = 0; i + 7 <= len; i++)
        if (strncasecmp(sql + i, "discard", 7) == 0 || strncasecmp(sql + i, "dealloca", 8) == 0)
            return 1;
    return 0;
}

static int execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                   const dbp_exec_ctx *ctx, int64_t *affected, dbp_error *err)
{
    pg_conn *c = conn;
    begin_call(c, ctx);
    *affected = 0;
    int rc;
    if (!params) { /* the simple protocol runs scripts of several statements */
        char *text = dbp_strndup(sql, len);
        rc = !text                   ? dbp_error_nomem(err)
             : PQsendQuery(c->pg, text) ? drain(c, ctx, affected, err)
                                        : result_error(c, NULL, err);
        dbp_free(text);
        if (may_drop_statements(sql, len))
            forget_statements(c); /* DISCARD ALL / DEALLOCATE: prepare anew */
    } else {
        for (int attempt = 0;; attempt++) {
            pg_statement *st;
            int owned;
            rc = statement_for(c, sql, len, &st, &owned, err);
            if (rc == DBP_OK) {
                rc = execute_rows(c, st, params, dbp_params_rows(params), ctx, affected, err);
                if (owned)
                    statement_free(st);
            }
            if (rc == DBP_OK || attempt > 0 || owned || !forget_if_stale(c, err))
                break;
            *affected = 0;
        }
    }
    end_call(c);
    return rc;
}

/* One row: a plain round trip. Several: libpq pipeline mode sends them all
 * before reading any answer, all or nothing: inside BEGIN ... COMMIT sent in
 * the same pipeline (ROLLBACK instead when a row cannot even be sent), or,
 * inside the caller's transaction, a savepoint. */
static int execute_rows(pg_conn *c, const pg_statement *st, const dbp_params *params,
                        size_t rows, const dbp_exec_ctx *ctx, int64_t *affected,
                        dbp_error *err)
{
    bound_params b;
    if (rows <= 1) {
        int rc = bind_row(st, params, 0, &b, err);
        if (rc != DBP_OK)
            return rc;
        int sent = send_statement(c, st, &b);
        bound_free(&b);
        return sent ? drain(c, ctx, affected, err) : result_error(c, NULL, err);
    }
    int savepoint = in_transaction(c);
    if (savepoint) {
        int rc = exec_simple(c, "SAVEPOINT dbp_execute_many", err);
        if (rc != DBP_OK)
            return rc;
    }
    if (!PQenterPipelineMode(c->pg))
        return result_error(c, NULL, err);
    int rc = DBP_OK;
    if (!savepoint && !PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        rc = result_error(c, NULL, err);
    for (size_t row = 0; row < rows && rc == DBP_OK; row++) {
        rc = bind_row(st, params, row, &b, err);
        if (rc != DBP_OK)
            break;
        if (!send_statement(c, st, &b))
            rc = result_error(c, NULL, err);
        bound_free(&b);
        /* Read what has arrived so neither side's buffers fill up. */
        if (rc == DBP_OK && (row & 255) == 255 && !PQconsumeInput(c->pg))
            rc = result_error(c, NULL, err);
    }
    if (!savepoint)
        PQsendQueryParams(c->pg, rc == DBP_OK ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL,
                          NULL, 0);
    if (!PQpipelineSync(c->pg) && rc == DBP_OK)
        rc = result_error(c, NULL, err);
    /* Read every answer up to the sync; BEGIN's answer comes first. */
    int answer = savepoint ? 0 : -1;
    int failed_row = -1;
    for (;;) {
        PGresult *res;
        int prc = next_result(c, ctx, &res, rc == DBP_OK ? err : NULL);
        if (prc != DBP_OK) {
            rc = rc == DBP_OK ? prc : rc;
            break;
        }
        if (!res)
            continue; /* the end of one query's results */
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (status == PGRES_FATAL_ERROR && rc == DBP_OK) {
            rc = result_error(c, res, err);
            failed_row = answer < (int)rows ? answer : -1;
        } else if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            const char *n = PQcmdTuples(res);
            if (*n && answer >= 0 && answer < (int)rows)
                *affected += strtoll(n, NULL, 10);
        }
        answer++;
        PQclear(res);
    }
    PQexitPipelineMode(c->pg);
    c->cancel_sent = 0;
    if (!savepoint && in_transaction(c)) { /* an error left BEGIN's block open */
        dbp_error ignored;
        exec_simple(c, "ROLLBACK", &ignored);
    }
    if (rc != DBP_OK) {
        *affected = 0;
        if (err && failed_row >= 0)
            snprintf(err->message + strlen(err->message),
                     sizeof err->message - strlen(err->message),
                     " (parameter row %d; no row was written)", failed_row);
    }
    if (savepoint) {
        dbp_error ignored;
        if (rc != DBP_OK)
            exec_simple(c, "ROLLBACK TO SAVEPOINT dbp_execute_many", &ignored);
        int end = exec_simple(c, "RELEASE SAVEPOINT dbp_execute_many", rc == DBP_OK ? err : &ignored);
        if (rc == DBP_OK)
            rc = end;
    }
    return rc;
}

/* ---- cursors ------------------------------------------------------------------------ */

/* Whether `sql` is a plain read that COPY (...) TO STDOUT accepts. */
static int is_plain_read(const char *sql, size_t len)
{
    size_t i = 0;
    while (i < len && (isspace((unsigned char)sql[i]) || sql[i] == '('))
        i++;
    static const char *const starts[] = {"select", "with", "values", "table"};
    for (size_t k = 0; k < sizeof starts / sizeof *starts; k++) {
        size_t n = strlen(starts[k]);
        if (len - i > n && strncasecmp(sql + i, starts[k], n) == 0 &&
            !isalnum((unsigned char)sql[i + n]) && sql[i + n] != '_')
            return 1;
    }
    return 0;
}

static void cursor_close(void *conn);

/* Starts COPY (<query>) TO STDOUT (FORMAT binary). The columns come from a
 * fresh unnamed describe, never the cache: the COPY plans the query anew,
 * so a cached description could be stale after DDL. */
static int open_copy(pg_conn *c, const char *sql, size_t len, const dbp_exec_ctx *ctx,
                     dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    int rc = prepare_statement(c, sql, len, "", &cur->stmt, err);
    if (rc != DBP_OK)
        return rc;
    cur->owns_stmt = 1;
    cur->kind = CURSOR_COPY;
    /* Trailing semicolons would end the inner query early; the newline ends
     * a trailing -- comment before the closing parenthesis. */
    while (len && (isspace((unsigned char)sql[len - 1]) || sql[len - 1] == ';'))
        len--;
    dbp_textbuf copy_sql = {0};
    dbp_textbuf_printf(&copy_sql, "COPY (%.*s\n) TO STDOUT (FORMAT binary)", (int)len, sql);
    if (copy_sql.failed)
        return dbp_error_nomem(err);
    rc = PQsendQuery(c->pg, copy_sql.data) ? DBP_OK : result_error(c, NULL, err);
    dbp_textbuf_free(&copy_sql);
    PGresult *res = NULL;
    if (rc == DBP_OK)
        rc = next_result(c, ctx, &res, err);
    if (rc == DBP_OK && PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = result_error(c, res, err);
        PQclear(res);
        res = NULL;
        drain(c, ctx, NULL, NULL);
    }
    PQclear(res);
    return rc;
}

/* Runs the prepared statement and waits for its first result, so that a
 * cached statement the server no longer accepts can be prepared again. */
static int open_rows(pg_conn *c, const dbp_params *params, const dbp_exec_ctx *ctx,
                     dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    bound_params b;
    int rc = bind_row(cur->stmt, params, 0, &b, err);
    if (rc != DBP_OK)
        return rc;
    int sent = send_statement(c, cur->stmt, &b);
    bound_free(&b);
    if (!sent)
        return result_error(c, NULL, err);
    cur->kind = CURSOR_ROWS;
    /* A stream takes rows as they come; a query takes them at once. */
    cur->single_row = !ctx->read_all && PQsetSingleRowMode(c->pg);
    PGresult *first;
    rc = next_result(c, ctx, &first, err);
    if (rc != DBP_OK)
        return rc;
    if (PQresultStatus(first) == PGRES_FATAL_ERROR) {
        rc = result_error(c, first, err);
        PQclear(first);
        drain(c, ctx, NULL, NULL);
        cur->finished = 1;
        return rc;
    }
    cur->rows = first;
    return DBP_OK;
}

static int cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                       const dbp_exec_ctx *ctx, dbp_error *err)
{
    pg_conn *c = conn;
    cursor_close(c);
    begin_call(c, ctx);
    pg_cursor *cur = &c->cur;
    size_t n_params = dbp_params_width(params);
    int copy = ctx->copy_mode == DBP_COPY_ALWAYS ||
               (ctx->copy_mode == DBP_COPY_AUTO && n_params == 0 && is_plain_read(sql, len));
    int rc;
    if (copy && n_params) {
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "COPY cannot take parameters; use copy=False for this query");
    } else if (copy) {
        rc = open_copy(c, sql, len, ctx, err);
    } else {
        for (int attempt = 0;; attempt++) {
            rc = statement_for(c, sql, len, &cur->stmt, &cur->owns_stmt, err);
            if (rc == DBP_OK && cur->stmt->n_fields > 0)
                rc = open_rows(c, params, ctx, err);
            if (rc == DBP_OK || attempt > 0 || cur->owns_stmt || !forget_if_stale(c, err))
                break;
            if (cur->owns_stmt) /* dropped from the cache: ours to free */
                statement_free(cur->stmt);
            cur->stmt = NULL;
            cur->owns_stmt = 0;
            cur->finished = 0;
        }
    }
    if (rc == DBP_OK && cur->stmt->n_fields == 0)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the statement returns no columns; use execute() for it");
    end_call(c);
    if (rc != DBP_OK)
        cursor_close(c);
    return rc;
}

static int new_result(pg_cursor *cur, dbp_result **out, dbp_error *err)
{
    const pg_statement *st = cur->stmt;
    int rc = dbp_result_new(out, (size_t)st->n_fields, (const char *const *)st->field_names, err);
    for (int i = 0; rc == DBP_OK && i < st->n_fields; i++)
        rc = dbp_column_set_type(dbp_result_column(*out, (size_t)i), st->plans[i].type);
    if (rc != DBP_OK) {
        dbp_result_free(*out);
        *out = NULL;
        return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
    }
    return DBP_OK;
}

/* Removes the COPY header (signature, flags, extension area) once. */
static int skip_header(pg_cursor *cur, dbp_error *err)
{
    long used = pg_copy_header_length(cur->copy_buf, cur->copy_len, err);
    if (used <= 0)
        return (int)used;
    memmove(cur->copy_buf, cur->copy_buf + used, cur->copy_len - (size_t)used);
    cur->copy_len -= (size_t)used;
    cur->header_done = 1;
    return 1;
}

static int fetch_copy(pg_conn *c, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                      dbp_result *res, int *done, dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    int64_t rows = 0;
    size_t parsed = 0;
    int trailer = 0;
    for (;;) {
        /* Decode the complete tuples buffered so far. */
        while (cur->header_done && !trailer) {
            if (limits->max_rows >= 0 && rows >= limits->max_rows)
                break;
            if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled))
                return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014", "statement cancelled");
            long used = pg_copy_tuple(cur->copy_buf + parsed, cur->copy_len - parsed,
                                      cur->stmt->plans, cur->stmt->field_names,
                                      cur->stmt->n_fields, res, &trailer, err);
            if (used < 0)
                return err ? err->category : DBP_E_PROTOCOL;
            if (used == 0)
                break;
            parsed += (size_t)used;
            if (!trailer) {
                rows++;
                cur->rows_read++;
                if ((dbp_result_pending_rows(res) >= limits->batch_rows ||
                     dbp_result_pending_memory(res) >= limits->batch_bytes)) {
                    int rc = dbp_result_finish_batch(res, err);
                    if (rc != DBP_OK)
                        return rc;
                }
            }
        }
        memmove(cur->copy_buf, cur->copy_buf + parsed, cur->copy_len - parsed);
        cur->copy_len -= parsed;
        parsed = 0;
        if (trailer || (limits->max_rows >= 0 && rows >= limits->max_rows))
            break;
        /* Need more bytes. */
        char *chunk;
        int n = PQgetCopyData(c->pg, &chunk, 1);
        if (n == 0) {
            int rc = pump_readable(c, ctx, err);
            if (rc != DBP_OK)
                return rc;
            continue;
        }
        if (n == -1) { /* the COPY ended without a trailer: its status says why */
            break;
        }
        if (n < -1)
            return result_error(c, NULL, err);
        if (cur->copy_len + (size_t)n > cur->copy_cap) {
            size_t cap = cur->copy_cap ? cur->copy_cap : 65536;
            while (cap < cur->copy_len + (size_t)n)
                cap *= 2;
            char *grown = dbp_realloc(cur->copy_buf, cap);
            if (!grown) {
                PQfreemem(chunk);
                return dbp_error_nomem(err);
            }
            cur->copy_buf = grown;
            cur->copy_cap = cap;
        }
        memcpy(cur->copy_buf + cur->copy_len, chunk, (size_t)n);
        cur->copy_len += (size_t)n;
        PQfreemem(chunk);
        if (!cur->header_done && skip_header(cur, err) < 0)
            return err ? err->category : DBP_E_PROTOCOL;
    }
    if (trailer || !(limits->max_rows >= 0 && rows >= limits->max_rows)) {
        /* The end: the trailer, then the COPY's own status. */
        char *chunk;
        int n;
        while ((n = PQgetCopyData(c->pg, &chunk, 0)) > 0)
            PQfreemem(chunk);
        int rc = drain(c, ctx, NULL, err);
        if (rc != DBP_OK)
            return rc;
        cur->finished = 1;
        *done = 1;
    }
    return DBP_OK;
}

static int fetch_rows(pg_conn *c, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                      dbp_result *res, int *done, dbp_error *err)
{
    pg_cursor *cur = &c->cur;
    const pg_statement *st = cur->stmt;
    int64_t rows = 0;
    while (!(limits->max_rows >= 0 && rows >= limits->max_rows)) {
        if (!cur->rows || cur->row >= PQntuples(cur->rows)) {
            PQclear(cur->rows);
            cur->rows = NULL;
            cur->row = 0;
            PGresult *r;
            int rc = next_result(c, ctx, &r, err);
            if (rc != DBP_OK)
                return rc;
            if (!r) {
                cur->finished = 1;
                c->cancel_sent = 0;
                *done = 1;
                break;
            }
            ExecStatusType status = PQresultStatus(r);
            if (status == PGRES_FATAL_ERROR) {
                rc = result_error(c, r, err);
                PQclear(r);
                drain(c, ctx, NULL, NULL);
                cur->finished = 1;
                return rc;
            }
            if (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK)
                cur->rows = r;
            else
                PQclear(r);
            continue;
        }
        if ((rows & 1023) == 1023 && atomic_load(ctx->cancelled))
            return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014", "statement cancelled");
        for (int i = 0; i < st->n_fields; i++) {
            int32_t len = PQgetisnull(cur->rows, cur->row, i)
                              ? -1
                              : PQgetlength(cur->rows, cur->row, i);
            int rc = pg_decode_value(&st->plans[i], PQgetvalue(cur->rows, cur->row, i), len,
                                     dbp_result_column(res, (size_t)i), st->field_names[i],
                                     err);
            if (rc != DBP_OK)
                return rc == DBP_E_NOMEM ? dbp_error_nomem(err) : rc;
        }
        cur->row++;
        cur->rows_read++;
        rows++;
        if (dbp_result_pending_rows(res) >= limits->batch_rows ||
            dbp_result_pending_memory(res) >= limits->batch_bytes) {
            int rc = dbp_result_finish_batch(res, err);
            if (rc != DBP_OK)
                return rc;
        }
    }
    return DBP_OK;
}

static int cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                        dbp_result **out, int *done, dbp_error *err)
{
    pg_conn *c = conn;
    pg_cursor *cur = &c->cur;
    *done = 0;
    if (cur->finished) {
        *done = 1;
        return new_result(cur, out, err);
    }
    dbp_result *res;
    int rc = new_result(cur, &res, err);
    if (rc != DBP_OK)
        return rc;
    begin_call(c, ctx);
    rc = cur->kind == CURSOR_COPY ? fetch_copy(c, limits, ctx, res, done, err)
                                  : fetch_rows(c, limits, ctx, res, done, err);
    end_call(c);
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return rc;
    }
    *out = res;
    return DBP_OK;
}

/* Stops a cursor that has not reached its end: the server is asked to
 * cancel, and what it already sent is read and dropped. */
static void cursor_close(void *conn)
{
    pg_conn *c = conn;
    pg_cursor *cur = &c->cur;
    if (cur->kind != CURSOR_NONE && !cur->finished && PQstatus(c->pg) == CONNECTION_OK) {
        send_cancel(c);
        if (cur->kind == CURSOR_COPY) {
            char *chunk;
            int n;
            while ((n = PQgetCopyData(c->pg, &chunk, 0)) > 0)
                PQfreemem(chunk);
        }
        PQclear(cur->rows);
        cur->rows = NULL;
        drain(c, NULL, NULL, NULL);
    }
    PQclear(cur->rows);
    dbp_free(cur->copy_buf);
    if (cur->owns_stmt)
        statement_free(cur->stmt);
    memset(cur, 0, sizeof *cur);
}

/* ---- bulk load ------------------------------------------------------------------------ */

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
        rc = PQsendQuery(ci->c->pg, sql.data) ? next_result(ci->c, NULL, &res, err)
                                              : result_error(ci->c, NULL, err);
    dbp_textbuf_free(&sql);
    if (rc == DBP_OK && PQresultStatus(res) != PGRES_COPY_IN) {
        rc = result_error(ci->c, res, err);
        PQclear(res);
        drain(ci->c, NULL, NULL, NULL);
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
            dbp_textbuf_add(&ci->data, text, (size_t)scalar_text(v, text));
        }
    }
    dbp_textbuf_add(&ci->data, "\n", 1);
    if (ci->data.failed)
        return dbp_error_nomem(err);
    if (ci->data.len >= COPY_CHUNK) {
        if (PQputCopyData(ci->c->pg, ci->data.data, (int)ci->data.len) != 1)
            return result_error(ci->c, NULL, err);
        dbp_textbuf_clear(&ci->data);
    }
    return DBP_OK;
}

static int bulk_load(void *conn, const char *table, struct ArrowArrayStream *rows,
                     const dbp_exec_ctx *ctx, int64_t *loaded, dbp_error *err)
{
    pg_conn *c = conn;
    begin_call(c, ctx);
    copy_in ci = {.c = c, .table = table};
    dbp_frame_sink sink = {.columns = copy_columns, .row = copy_row, .arg = &ci};
    int64_t fed = 0;
    int rc = dbp_arrow_walk(rows, &sink, ctx->cancelled, &fed, err);
    if (ci.started) {
        if (rc == DBP_OK && ci.data.len &&
            PQputCopyData(c->pg, ci.data.data, (int)ci.data.len) != 1)
            rc = result_error(c, NULL, err);
        /* An error message makes the server abort the whole COPY. */
        PQputCopyEnd(c->pg, rc == DBP_OK ? NULL : "write_frame failed on the client side");
        int64_t copied = 0;
        int end = drain(c, ctx, &copied, rc == DBP_OK ? err : NULL);
        if (rc == DBP_OK)
            rc = end;
        *loaded = rc == DBP_OK ? copied : 0;
    }
    dbp_textbuf_free(&ci.data);
    end_call(c);
    return rc;
}

/* ---- transactions -------------------------------------------------------------------- */

static int begin(void *conn, const char *options, dbp_error *err)
{
    /* Options are keywords ("ISOLATION LEVEL SERIALIZABLE, READ ONLY"):
     * letters, spaces and commas only, so nothing else can ride along. */
    for (const char *p = options; *p; p++)
        if (!isalpha((unsigned char)*p) && *p != ' ' && *p != ',')
            return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                                 "transaction options are keywords such as 'ISOLATION LEVEL "
                                 "SERIALIZABLE, READ ONLY', not '%s'",
                                 options);
    char sql[256];
    snprintf(sql, sizeof sql, "BEGIN %s", options);
    begin_call(conn, NULL);
    return exec_simple(conn, sql, err);
}

/* PostgreSQL answers COMMIT of a failed transaction with a rollback and no
 * error; that must not look like success. */
static int commit(void *conn, dbp_error *err)
{
    pg_conn *c = conn;
    begin_call(c, NULL);
    PGresult *res = PQexec(c->pg, "COMMIT");
    int rc = DBP_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = result_error(c, res, err);
    else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        rc = dbp_error_set(err, DBP_E_SERVER, 0, "40000",
                           "the transaction was rolled back, not committed: an earlier "
                           "statement in it failed");
    PQclear(res);
    return rc;
}

static int rollback(void *conn, dbp_error *err)
{
    begin_call(conn, NULL);
    return exec_simple(conn, "ROLLBACK", err);
}

const dbp_driver dbp_pg_driver = {
    .name = "postgresql",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = connect,
    .disconnect = disconnect,
    .ping = ping,
    .is_usable = is_usable,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = execute,
    .cursor_open = cursor_open,
    .cursor_fetch = cursor_fetch,
    .cursor_close = cursor_close,
    .bulk_load = bulk_load,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .probe_role = probe_role,
    .describe = describe,
};
