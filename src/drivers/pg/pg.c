/* pg.c - the PostgreSQL engine over libpq: settings, connecting, role
 * probes, transactions and the driver's vtable (pg_internal.h lists the
 * other files).
 *
 * Settings are libpq connection keywords (host, port, dbname, user,
 * password, sslmode, sslrootcert, connect_timeout, keepalives,
 * tcp_user_timeout, application_name, options, ...; "database" is accepted
 * for dbname and "dsn" for a postgresql:// URI), plus our own:
 * statement_cache_size (prepared statements kept per connection, LRU; 0 =
 * unnamed statements only, for PgBouncer in transaction mode).
 *
 * Connections run in libpq's non-blocking mode and every wait is bounded
 * (pg_wait.c). Rows arrive in the binary format and are decoded by
 * pg_types.c: through COPY (<query>) TO STDOUT (FORMAT binary) for
 * parameterless reads (the fastest path the server offers), or through the
 * extended protocol with binary results otherwise. Column types come from
 * describing the prepared statement, which the statement cache keeps. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"
#include "textparse.h"

/* ---- configuration ------------------------------------------------------ */

static void free_config(void *p)
{
    pg_config *cfg = p;
    if (!cfg)
        return;
    for (size_t i = 0; cfg->keys && cfg->values && cfg->keys[i]; i++) {
        dbp_free(cfg->keys[i]);
        dbp_free_secret(cfg->values[i]); /* a password, or a URL holding one */
    }
    dbp_free(cfg->keys);
    dbp_free(cfg->values);
    dbp_free(cfg);
}

void pg_conninfo_free(PQconninfoOption *opts)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val) /* the password among them */
            dbp_wipe(o->val, strlen(o->val));
    PQconninfoFree(opts);
}

static int is_libpq_keyword(const char *key)
{
    PQconninfoOption *opts = PQconndefaults();
    int found = 0;
    for (PQconninfoOption *o = opts; o && o->keyword && !found; o++)
        found = strcmp(o->keyword, key) == 0;
    pg_conninfo_free(opts); /* holds $PGPASSWORD if set */
    return found;
}

/* libpq's complaint about a connection string quotes the part it could not
 * read, which may be (a piece of) the password: quoted text is kept only
 * when it has the shape of a parameter name (lowercase letters, digits,
 * '_'), so "invalid URI query parameter" still names the parameter. */
static void redact_quoted(const char *why, char *out, size_t size)
{
    size_t n = 0;
    while (*why && n + 1 < size) {
        const char *end = *why == '"' ? strchr(why + 1, '"') : NULL;
        if (!end) {
            out[n++] = *why++;
            continue;
        }
        char word[64];
        size_t len = (size_t)(end - why - 1);
        snprintf(word, sizeof word, "%.*s", (int)len, why + 1);
        int named = len && len < sizeof word &&
                    strspn(word, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
        const char *shown = named ? word : "(not shown)";
        int w = snprintf(out + n, size - n, "\"%s\"", shown);
        n = w < 0 || (size_t)w >= size - n ? size - 1 : n + (size_t)w;
        why = end + 1;
    }
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
}

/* A URL whose credentials hold an unencoded '/' or '@' is read by libpq
 * with a piece of the password as host, port or database, which then shows
 * up in messages: such a URL is refused (the Python package encodes them
 * before they get here). */
static int uri_is_ambiguous(const char *uri)
{
    const char *p = strstr(uri, "://");
    if (!p || (strncmp(uri, "postgresql://", 13) != 0 && strncmp(uri, "postgres://", 11) != 0))
        return 0;
    p += 3;
    size_t head = strcspn(p, "?");
    const char *at = memchr(p, '@', head);
    if (!at)
        return 0;
    size_t before = (size_t)(at - p);
    return memchr(at + 1, '@', head - before - 1) || memchr(p, '/', before);
}

/* Set before the user's settings, so that theirs (or a URL's) win. Without
 * connect_timeout libpq waits forever on a silent server; keepalives and
 * TCP_USER_TIMEOUT end a connection whose peer vanished (docs/timeouts.md). */
static const char *const defaults[][2] = {
    {"connect_timeout", "10"}, {"keepalives", "1"},       {"keepalives_idle", "10"},
    {"keepalives_interval", "5"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
};
/* Set after them: never the user's choice. */
static const char *const fixed[][2] = {
    {"client_encoding", "UTF8"},
    {"fallback_application_name", "db-pool"},
};
#define N_DEFAULTS (sizeof defaults / sizeof *defaults)
#define N_FIXED (sizeof fixed / sizeof *fixed)

static int add_keyword(pg_config *cfg, size_t *k, const char *key, const char *value,
                       dbp_error *err)
{
    cfg->keys[*k] = dbp_strdup(key);
    cfg->values[*k] = dbp_strdup(value);
    if (!cfg->keys[*k] || !cfg->values[*k])
        return dbp_error_nomem(err);
    (*k)++;
    return DBP_OK;
}

/* A setting the user gave: checked, renamed to libpq's keyword. */
static int user_setting(pg_config *cfg, size_t *k, const char *key, const char *value,
                        dbp_error *err)
{
    if (strcmp(key, "statement_cache_size") == 0) {
        long v = 0;
        int rc = dbp_parse_setting_int("postgresql", key, value, 0, 100000, &v, err);
        cfg->cache_size = (int)v;
        return rc;
    }
    if (strcmp(key, "database") == 0) {
        key = "dbname";
    } else if (strcmp(key, "dsn") == 0 || strcmp(key, "url") == 0) {
        key = "dbname"; /* libpq expands a URI given as dbname */
        if (uri_is_ambiguous(value))
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "invalid PostgreSQL URL: percent-encode '/' and '@' in its user "
                                 "name and password (%%2F, %%40), and '@' in its database name "
                                 "(the URL is not shown)");
        char *why = NULL;
        PQconninfoOption *parsed = PQconninfoParse(value, &why);
        if (!parsed) {
            char shown[DBP_ERROR_MESSAGE_SIZE / 2];
            redact_quoted(why ? why : "out of memory", shown, sizeof shown);
            PQfreemem(why);
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "invalid PostgreSQL URL: %s", shown);
        }
        pg_conninfo_free(parsed);
    }
    if (strcmp(key, "client_encoding") == 0)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "client_encoding is always UTF8: results are Arrow UTF-8");
    if (!is_libpq_keyword(key))
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "unknown postgresql setting '%s' (not a libpq connection keyword)",
                             key);
    return add_keyword(cfg, k, key, value, err);
}

static int parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    pg_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->cache_size = 100;
    cfg->keys = dbp_calloc(N_DEFAULTS + n + N_FIXED + 1, sizeof *cfg->keys);
    cfg->values = dbp_calloc(N_DEFAULTS + n + N_FIXED + 1, sizeof *cfg->values);
    int rc = cfg->keys && cfg->values ? DBP_OK : dbp_error_nomem(err);
    size_t k = 0;
    for (size_t i = 0; i < N_DEFAULTS && rc == DBP_OK; i++)
        rc = add_keyword(cfg, &k, defaults[i][0], defaults[i][1], err);
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        rc = user_setting(cfg, &k, settings[i].key, settings[i].value, err);
    for (size_t i = 0; i < N_FIXED && rc == DBP_OK; i++)
        rc = add_keyword(cfg, &k, fixed[i][0], fixed[i][1], err);
    if (rc != DBP_OK) {
        free_config(cfg);
        return rc;
    }
    *out = cfg;
    return DBP_OK;
}

/* ---- connections -------------------------------------------------------------- */

static void disconnect(void *conn)
{
    pg_conn *c = conn;
    if (!c)
        return;
    pg_cursor_free(&c->cur);
    for (int i = 0; i < c->n_cached; i++)
        pg_statement_free(c->cache[i]);
    dbp_free(c->cache);
    if (c->cancel_fd >= 0)
        close(c->cancel_fd);
    PQfinish(c->pg); /* non-blocking: a dead peer cannot hold it up */
    dbp_free(c);
}

/* The connect_timeout libpq resolved (from the settings or a URL), in ns;
 * PQconnectPoll leaves enforcing it to the caller. libpq's minimum is 2 s. */
static int64_t host_timeout_ns(PGconn *pg)
{
    long seconds = 0;
    PQconninfoOption *opts = PQconninfo(pg);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val)
            seconds = strtol(o->val, NULL, 10);
    pg_conninfo_free(opts);
    return seconds > 0 ? (int64_t)(seconds < 2 ? 2 : seconds) * 1000000000 : INT64_MAX;
}

/* Drives a connection started with PQconnectStartParams to its end, in
 * short waits so that a cancel (a caller that gave up, a pool closing) stops
 * it. libpq's connect_timeout applies to each host, the pool's
 * connect_timeout (ctx->deadline_ns) to the whole. Returns DBP_E_CANCELLED
 * or DBP_E_TIMEOUT; else DBP_OK, and the connection's status says how it
 * ended. */
static int connect_wait(PGconn *pg, const dbp_exec_ctx *ctx)
{
    int64_t per_host = host_timeout_ns(pg);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int sock = -1;
    int64_t host_deadline = INT64_MAX;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (atomic_load(ctx->cancelled))
            return DBP_E_CANCELLED;
        int64_t now = dbp_now_ns();
        if (PQsocket(pg) != sock) { /* libpq moved on to the next host */
            sock = PQsocket(pg);
            host_deadline = per_host == INT64_MAX ? INT64_MAX : now + per_host;
        }
        int64_t deadline = host_deadline < ctx->deadline_ns ? host_deadline : ctx->deadline_ns;
        if (now >= deadline)
            return DBP_E_TIMEOUT;
        struct pollfd p = {.fd = sock, .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int64_t slice_ms = (deadline - now + 999999) / 1000000;
        int ready = poll(&p, 1, slice_ms < 50 ? (int)slice_ms : 50);
        if (ready > 0 || (ready < 0 && errno != EINTR))
            st = PQconnectPoll(pg);
    }
    return DBP_OK;
}

/* Takes the server's SQLSTATE out of a connection failure written
 * verbosely ("FATAL:  3D000: database ... does not exist", then a LOCATION
 * line): into `state`, and out of `msg` with the LOCATION lines, so the
 * text reads as libpq's usual one. 0 when the server sent no error. */
static int take_sqlstate(char *msg, char state[6])
{
    int found = 0;
    for (char *p = strstr(msg, ":  "); p; p = strstr(p + 1, ":  ")) {
        char *code = p + 3;
        if (strspn(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 && code[5] == ':' &&
            code[6] == ' ') {
            if (!found++)
                snprintf(state, 6, "%.5s", code);
            memmove(code, code + 7, strlen(code + 7) + 1);
        }
    }
    for (char *line = strstr(msg, "LOCATION:  "); line; line = strstr(line, "LOCATION:  ")) {
        char *end = strchr(line, '\n');
        memmove(line, end ? end + 1 : line + strlen(line), strlen(end ? end + 1 : "") + 1);
    }
    return found;
}

/* A failed connect by what the server said: SQLSTATE class 28 (wrong
 * password, no such role, refused by pg_hba.conf) is an authentication
 * error, 3D000 (no such database) a server error; a failure without the
 * server's word (refused, unreachable, silent) or any other one (starting
 * up, too many connections) says the endpoint cannot serve now. */
static int connect_error(pg_conn *c, dbp_error *err)
{
    char msg[DBP_ERROR_MESSAGE_SIZE], state[6] = "";
    snprintf(msg, sizeof msg, "%s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
    int from_server = take_sqlstate(msg, state);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    int category = DBP_E_NETWORK;
    if (from_server && strncmp(state, "28", 2) == 0)
        category = DBP_E_AUTH;
    else if (from_server && strcmp(state, "3D000") == 0)
        category = DBP_E_SERVER;
    else if (!from_server && strstr(msg, "password")) /* "fe_sendauth: no password supplied" */
        category = DBP_E_AUTH, snprintf(state, sizeof state, "28000");
    else if (!from_server)
        snprintf(state, sizeof state, "08001");
    return dbp_error_set(err, category, 0, state, "cannot connect to PostgreSQL: %s", msg);
}

static int connect(const void *config, const dbp_exec_ctx *ctx, void **out, dbp_error *err)
{
    const pg_config *cfg = config;
    pg_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    c->cfg = cfg;
    c->cancel_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->pg = PQconnectStartParams((const char *const *)cfg->keys,
                                 (const char *const *)cfg->values, 1);
    if (c->pg) /* the server's SQLSTATE in the message: connect_error() reads it */
        PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
    int waited = c->pg && PQstatus(c->pg) != CONNECTION_BAD ? connect_wait(c->pg, ctx) : DBP_OK;
    int rc = DBP_OK;
    if (waited == DBP_E_CANCELLED)
        rc = dbp_error_set(err, waited, 0, "57014", "cancelled while connecting to PostgreSQL");
    else if (waited != DBP_OK)
        rc = dbp_error_set(err, DBP_E_NETWORK, 0, "08001",
                           "cannot connect to PostgreSQL: no answer within connect_timeout");
    else if (c->cancel_fd < 0 || !c->pg || PQstatus(c->pg) != CONNECTION_OK)
        rc = connect_error(c, err);
    else if (PQsetnonblocking(c->pg, 1) != 0)
        rc = connect_error(c, err);
    if (rc == DBP_OK && cfg->cache_size > 0 &&
        !(c->cache = dbp_calloc((size_t)cfg->cache_size, sizeof *c->cache)))
        rc = dbp_error_nomem(err);
    if (rc != DBP_OK) {
        disconnect(c);
        return rc;
    }
    PQsetErrorVerbosity(c->pg, PQERRORS_DEFAULT);
    PQsetNoticeReceiver(c->pg, pg_on_notice, c);
    *out = c;
    return DBP_OK;
}

/* A server that restarted or ended the session has sent its goodbye (a
 * FATAL message, then end of file) to this idle connection: reading it
 * shows that now, without a round trip, instead of failing the caller's
 * statement. An idle connection is owed nothing, so whatever arrived is
 * taken in and parsed, and the socket read again for the end of file that
 * follows a goodbye. */
static int is_usable(void *conn)
{
    pg_conn *c = conn;
    if (c->dead || PQstatus(c->pg) != CONNECTION_OK || PQsocket(c->pg) < 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(c->pg))
            return 0;
        PQisBusy(c->pg); /* parses it: a FATAL marks the connection dead */
        if (c->dead || PQstatus(c->pg) != CONNECTION_OK)
            return 0;
    }
    return !c->dead && PQstatus(c->pg) == CONNECTION_OK;
}

static void interrupt(void *conn)
{
    pg_conn *c = conn;
    atomic_fetch_add(&c->interrupts, 1);
    uint64_t one = 1;
    ssize_t n = write(c->cancel_fd, &one, sizeof one);
    (void)n; /* a full counter still means "cancel" */
}

static int in_transaction(void *conn)
{
    return PQtransactionStatus(((pg_conn *)conn)->pg) != PQTRANS_IDLE;
}

static int ping(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    int rc = pg_exec(c, "", err);
    pg_call_end(c);
    return rc;
}

/* The role, and for a standby how far its replay trails: 0 when it has
 * replayed everything it received, else the age of the last replayed
 * transaction (which also grows while the primary is idle, erring on the
 * side of skipping the replica). */
static const char PROBE_SQL[] =
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END";

static int probe_role(void *conn, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                      dbp_error *err)
{
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    PGresult *res;
    int rc = pg_query(c, PROBE_SQL, &res, err);
    if (rc == DBP_OK && (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
                         PQnfields(res) != 2))
        rc = dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected answer to the role probe");
    if (rc == DBP_OK) {
        int standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        *role = standby ? DBP_ROLE_REPLICA : DBP_ROLE_PRIMARY;
        *lag_s = PQgetisnull(res, 0, 1) ? (standby ? -1 : 0) : strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    pg_call_end(c);
    return rc;
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
        pg_conninfo_free(parsed);
        if (!is_dsn)
            note_address(cfg->keys[i], value, host, port, db, sizeof db);
    }
    snprintf(buf, size, "%s:%s/%s", *host ? host : "localhost", *port ? port : "5432", db);
}


/* ---- transactions -------------------------------------------------------------------- */

static int begin(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
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
    pg_call_begin(conn, ctx);
    int rc = pg_exec(conn, sql, err);
    pg_call_end(conn);
    return rc;
}

/* PostgreSQL answers COMMIT of a failed transaction with a rollback and no
 * error; that must not look like success. */
static int commit(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    pg_conn *c = conn;
    pg_call_begin(c, ctx);
    PGresult *res;
    int rc = pg_query(c, "COMMIT", &res, err);
    if (rc == DBP_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        rc = dbp_error_set(err, DBP_E_SERVER, 0, "40000",
                           "the transaction was rolled back, not committed: an earlier "
                           "statement in it failed");
    PQclear(res);
    pg_call_end(c);
    return rc;
}

static int rollback(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    pg_call_begin(conn, ctx);
    int rc = pg_exec(conn, "ROLLBACK", err);
    pg_call_end(conn);
    return rc;
}

const dbp_driver dbp_pg_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_CANCEL | DBP_CAP_DEADLINES | DBP_CAP_ROLES | DBP_CAP_BULK_LOAD |
            DBP_CAP_RESET,
    .name = "postgresql",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = connect,
    .disconnect = disconnect,
    .ping = ping,
    .is_usable = is_usable,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = pg_execute,
    .cursor_open = pg_cursor_open,
    .cursor_fetch = pg_cursor_fetch,
    .cursor_close = pg_cursor_close,
    .bulk_load = pg_bulk_load,
    .reset = pg_reset,
    .session_changed = pg_session_changed,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .probe_role = probe_role,
    .describe = describe,
};
