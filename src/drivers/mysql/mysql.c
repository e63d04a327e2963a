/* mysql.c - the MySQL / MariaDB engine over MariaDB Connector/C: settings,
 * connecting, roles, transactions, session reset and the driver's vtable
 * (mysql_internal.h lists the other files).
 *
 * Settings: host, port, user, password, database, unix_socket,
 * connect_timeout (seconds, the engine's own bound on a login), ssl_mode
 * (disabled, preferred, required, verify_ca, verify_identity), ssl_ca,
 * ssl_cert, ssl_key, and our own zero_dates ("error" or "null": what a
 * 0000-00-00 date becomes) and tinyint1_bool (1: TINYINT(1) columns are
 * Boolean). The session always uses utf8mb4 and time_zone '+00:00', so
 * TIMESTAMP values arrive as UTC (docs/mysql.md). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "mysql_internal.h"
#include "tcp.h"
#include "textparse.h"

/* The session every connection starts with, again after each reset. */
static const char SESSION_SETUP[] = "SET time_zone = '+00:00'";

/* ---- configuration ------------------------------------------------------ */

static void free_config(void *p)
{
    my_config *cfg = p;
    if (!cfg)
        return;
    my_login_free(&cfg->login);
    dbp_free(cfg);
}

static const char *const ssl_modes[] = {"disabled", "preferred", "required", "verify_ca",
                                        "verify_identity", NULL};

static int set_text(char **slot, const char *value, dbp_error *err)
{
    dbp_free(*slot);
    *slot = dbp_strdup(value);
    return *slot ? DBP_OK : dbp_error_nomem(err);
}

static int parse_flag(const char *key, const char *value, int *out, dbp_error *err)
{
    if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "on") == 0)
        *out = 1;
    else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "off") == 0)
        *out = 0;
    else
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "mysql setting %s must be 1 or 0, not '%s'", key, value);
    return DBP_OK;
}

static int one_setting(my_config *cfg, const char *key, const char *value, dbp_error *err)
{
    my_login *l = &cfg->login;
    long n;
    if (strcmp(key, "host") == 0)
        return set_text(&l->host, value, err);
    if (strcmp(key, "user") == 0 || strcmp(key, "username") == 0)
        return set_text(&l->user, value, err);
    if (strcmp(key, "password") == 0) {
        dbp_free_secret(l->password);
        l->password = NULL;
        return set_text(&l->password, value, err);
    }
    if (strcmp(key, "database") == 0 || strcmp(key, "dbname") == 0)
        return set_text(&l->database, value, err);
    if (strcmp(key, "unix_socket") == 0)
        return set_text(&l->unix_socket, value, err);
    if (strcmp(key, "ssl_ca") == 0)
        return set_text(&l->ssl_ca, value, err);
    if (strcmp(key, "ssl_cert") == 0)
        return set_text(&l->ssl_cert, value, err);
    if (strcmp(key, "ssl_key") == 0)
        return set_text(&l->ssl_key, value, err);
    if (strcmp(key, "port") == 0) {
        int rc = dbp_parse_setting_int("mysql", key, value, 1, 65535, &n, err);
        l->port = (unsigned)n;
        return rc;
    }
    if (strcmp(key, "connect_timeout") == 0) {
        int rc = dbp_parse_setting_int("mysql", key, value, 1, 3600, &n, err);
        cfg->connect_timeout_ms = n * 1000;
        return rc;
    }
    if (strcmp(key, "ssl_mode") == 0) {
        for (int i = 0; ssl_modes[i]; i++)
            if (strcmp(value, ssl_modes[i]) == 0) {
                l->ssl_mode = i;
                return DBP_OK;
            }
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "mysql setting ssl_mode must be disabled, preferred, required, "
                             "verify_ca or verify_identity, not '%s'",
                             value);
    }
    if (strcmp(key, "zero_dates") == 0) {
        if (strcmp(value, "null") != 0 && strcmp(value, "error") != 0)
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "mysql setting zero_dates must be 'error' or 'null', not '%s'",
                                 value);
        cfg->zero_dates_null = strcmp(value, "null") == 0;
        return DBP_OK;
    }
    if (strcmp(key, "tinyint1_bool") == 0)
        return parse_flag(key, value, &cfg->tinyint1_bool, err);
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unknown mysql setting '%s'", key);
}

static int parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    my_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->connect_timeout_ms = 10000;
    cfg->tinyint1_bool = 1;
    cfg->login.ssl_mode = MY_SSL_PREFERRED;
    int rc = DBP_OK;
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        rc = one_setting(cfg, settings[i].key, settings[i].value, err);
    if (rc == DBP_OK && !cfg->login.host && !cfg->login.unix_socket)
        rc = set_text(&cfg->login.host, "localhost", err);
    if (rc == DBP_OK && !cfg->login.user)
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "mysql needs a user");
    if (rc == DBP_OK && cfg->login.ssl_mode >= MY_SSL_VERIFY_CA && !cfg->login.ssl_ca)
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                           "mysql ssl_mode %s needs ssl_ca (the CA to verify the server with)",
                           ssl_modes[cfg->login.ssl_mode]);
    if (rc != DBP_OK) {
        free_config(cfg);
        return rc;
    }
    *out = cfg;
    return DBP_OK;
}

static void describe(const void *config, char *buf, size_t size)
{
    const my_login *l = &((const my_config *)config)->login;
    if (l->unix_socket && !l->host)
        snprintf(buf, size, "%s/%s", l->unix_socket, l->database ? l->database : "");
    else
        snprintf(buf, size, "%s:%u/%s", l->host, l->port ? l->port : 3306,
                 l->database ? l->database : "");
}

static int first_row(my_conn *c, const char *sql, MYSQL_RES **res, MYSQL_ROW *row,
                     dbp_error *err);

/* ---- connections ------------------------------------------------------ */

static void my_disconnect(void *p)
{
    my_conn *c = p;
    if (!c)
        return;
    if (c->db) {
        /* COM_QUIT to a server that stopped reading must not block: a
         * connection in an unknown state is shut first */
        if (c->dead && mysql_get_socket(c->db) >= 0)
            shutdown(mysql_get_socket(c->db), SHUT_RDWR);
        mysql_close(c->db);
        c->dead = 1;
        my_stmt_cache_clear(c); /* their memory only: mysql_close detached them */
    }
    if (c->cancel_fd >= 0)
        close(c->cancel_fd);
    dbp_free(c);
}

static int my_open(const void *config, const dbp_exec_ctx *ctx, void **out, dbp_error *err)
{
    const my_config *cfg = config;
    my_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    c->cfg = cfg;
    c->cancel_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->db = c->cancel_fd >= 0 ? mysql_init(NULL) : NULL;
    if (!c->db) {
        c->dead = 1;
        my_disconnect(c);
        return dbp_error_nomem(err);
    }
    my_call_begin(c, ctx);
    int rc = my_connect(c->db, &cfg->login, cfg->connect_timeout_ms, c, err);
    if (rc == DBP_OK) {
        dbp_tcp_keepalive(mysql_get_socket(c->db)); /* the connector sets none */
        rc = my_query(c, SESSION_SETUP, sizeof SESSION_SETUP - 1, NULL, err);
    }
    if (rc == DBP_OK) { /* so that an oversized value is refused before it is sent */
        MYSQL_RES *res;
        MYSQL_ROW row;
        rc = first_row(c, "SELECT @@max_allowed_packet", &res, &row, err);
        c->max_packet = row && row[0] ? strtoul(row[0], NULL, 10) : 0;
        mysql_free_result(res);
    }
    my_call_end(c);
    if (rc != DBP_OK) {
        c->dead = 1;
        my_disconnect(c);
        return rc;
    }
    *out = c;
    return DBP_OK;
}

static int ping(void *p, const dbp_exec_ctx *ctx, dbp_error *err)
{
    my_conn *c = p;
    my_call_begin(c, ctx);
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_ping_start(&ret, c->db), mysql_ping_cont(&ret, c->db, status), rc,
           err);
    if (rc == DBP_OK && ret)
        rc = my_error(c, NULL, err);
    my_call_end(c);
    return rc;
}

/* Without a round trip: a server that closed the session while it sat idle
 * left the socket readable (EOF or an error packet). */
static int is_usable(void *p)
{
    my_conn *c = p;
    if (c->dead)
        return 0;
    char byte;
    ssize_t n = recv(mysql_get_socket(c->db), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0; /* nothing to read (EAGAIN) is the healthy case */
}

static void interrupt(void *p)
{
    my_conn *c = p;
    atomic_fetch_add(&c->interrupts, 1);
    uint64_t one = 1;
    ssize_t n = write(c->cancel_fd, &one, sizeof one);
    (void)n;
}

static int in_transaction(void *p)
{
    my_conn *c = p;
    unsigned int status = 0;
    if (mariadb_get_infov(c->db, MARIADB_CONNECTION_SERVER_STATUS, &status) != 0)
        return c->in_tx;
    return (status & SERVER_STATUS_IN_TRANS) != 0;
}

/* ---- transactions ------------------------------------------------------------ */

static int run(void *p, const dbp_exec_ctx *ctx, const char *sql, dbp_error *err)
{
    my_conn *c = p;
    my_call_begin(c, ctx);
    int rc = my_query(c, sql, strlen(sql), NULL, err);
    my_call_end(c);
    return rc;
}

/* `options`: what transaction() makes of isolation= and readonly=
 * ("ISOLATION LEVEL <level>[, READ ONLY]" or "READ ONLY"), or the caller's
 * own START TRANSACTION options. MySQL sets the isolation level of the next
 * transaction with a statement of its own. */
static int begin(void *p, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
{
    my_conn *c = p;
    char sql[512];
    const char *rest = options ? options : "";
    if (strncmp(rest, "ISOLATION LEVEL ", 16) == 0) {
        size_t level = strcspn(rest, ",");
        snprintf(sql, sizeof sql, "SET TRANSACTION %.*s", (int)level, rest);
        int rc = run(c, ctx, sql, err);
        if (rc != DBP_OK)
            return rc;
        rest += level;
        while (*rest == ',' || *rest == ' ')
            rest++;
    }
    if (strlen(rest) > 400)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "transaction options are too long");
    snprintf(sql, sizeof sql, "START TRANSACTION%s%s", *rest ? " " : "", rest);
    int rc = run(c, ctx, sql, err);
    c->in_tx = rc == DBP_OK;
    return rc;
}

static int commit(void *p, const dbp_exec_ctx *ctx, dbp_error *err)
{
    my_conn *c = p;
    c->in_tx = 0;
    return run(c, ctx, "COMMIT", err);
}

static int rollback(void *p, const dbp_exec_ctx *ctx, dbp_error *err)
{
    my_conn *c = p;
    c->in_tx = 0;
    return run(c, ctx, "ROLLBACK", err);
}

/* ---- roles and reset ------------------------------------------------------------- */

/* The first row of a small result, stored whole; NULL when none. */
static int first_row(my_conn *c, const char *sql, MYSQL_RES **res, MYSQL_ROW *row,
                     dbp_error *err)
{
    *res = NULL;
    *row = NULL;
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_real_query_start(&ret, c->db, sql, (unsigned long)strlen(sql)),
           mysql_real_query_cont(&ret, c->db, status), rc, err);
    if (rc == DBP_OK && ret)
        rc = my_error(c, NULL, err);
    if (rc != DBP_OK)
        return rc;
    MY_RUN(c, status, mysql_store_result_start(res, c->db),
           mysql_store_result_cont(res, c->db, status), rc, err);
    if (rc == DBP_OK && !*res && mysql_errno(c->db))
        rc = my_error(c, NULL, err);
    if (rc == DBP_OK && *res)
        *row = mysql_fetch_row(*res); /* stored: no I/O */
    return rc;
}

/* A replica is a server with read_only on; its lag is Seconds_Behind_Master
 * of SHOW SLAVE STATUS when the login may read it (else unknown). */
static int probe_role(void *p, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                      dbp_error *err)
{
    my_conn *c = p;
    my_call_begin(c, ctx);
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc = first_row(c, "SELECT @@global.read_only, @@global.innodb_read_only", &res, &row, err);
    int read_only = rc == DBP_OK && row && ((row[0] && atoi(row[0])) || (row[1] && atoi(row[1])));
    if (rc == DBP_OK && !row)
        rc = dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "the role probe returned no row");
    mysql_free_result(res);
    *role = read_only ? DBP_ROLE_REPLICA : DBP_ROLE_PRIMARY;
    *lag_s = read_only ? -1 : 0;
    if (rc == DBP_OK && read_only) {
        dbp_error ignored;
        if (first_row(c, "SHOW SLAVE STATUS", &res, &row, &ignored) == DBP_OK && row) {
            unsigned n = mysql_num_fields(res);
            MYSQL_FIELD *fields = mysql_fetch_fields(res);
            for (unsigned i = 0; i < n; i++)
                if (strcmp(fields[i].name, "Seconds_Behind_Master") == 0 && row[i])
                    *lag_s = strtod(row[i], NULL);
        }
        mysql_free_result(res);
        if (c->dead)
            rc = dbp_error_set(err, DBP_E_NETWORK, 0, NULL,
                               "the connection broke while reading the replica's lag");
    }
    my_call_end(c);
    return rc;
}

/* COM_RESET_CONNECTION: variables, temporary tables, locks and prepared
 * statements of the session are gone, the login stays. */
static int reset(void *p, int always, const dbp_exec_ctx *ctx, int *did_reset, dbp_error *err)
{
    my_conn *c = p;
    *did_reset = 0;
    if (!always && !c->session_changed)
        return DBP_OK;
    my_call_begin(c, ctx);
    my_stmt_cache_clear(c); /* the reset drops them on the server; their ids get reused */
    int rc = DBP_OK, status, ret = 0;
    MY_RUN(c, status, mysql_reset_connection_start(&ret, c->db),
           mysql_reset_connection_cont(&ret, c->db, status), rc, err);
    if (rc == DBP_OK && ret)
        rc = my_error(c, NULL, err);
    if (rc == DBP_OK)
        rc = my_query(c, SESSION_SETUP, sizeof SESSION_SETUP - 1, NULL, err);
    my_call_end(c);
    if (rc == DBP_OK) {
        *did_reset = 1;
        c->session_changed = 0;
        c->in_tx = 0;
    }
    return rc;
}

static int session_changed(void *p)
{
    return ((my_conn *)p)->session_changed;
}

const dbp_driver dbp_mysql_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_CANCEL | DBP_CAP_DEADLINES | DBP_CAP_ROLES | DBP_CAP_RESET |
            DBP_CAP_BULK_LOAD,
    .name = "mysql",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = my_open,
    .disconnect = my_disconnect,
    .ping = ping,
    .is_usable = is_usable,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = my_execute,
    .cursor_open = my_cursor_open,
    .cursor_fetch = my_cursor_fetch,
    .cursor_close = my_cursor_close,
    .bulk_load = my_bulk_load,
    .reset = reset,
    .session_changed = session_changed,
    .begin = begin,
    .commit = commit,
    .rollback = rollback,
    .probe_role = probe_role,
    .describe = describe,
};
