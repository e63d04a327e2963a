/* redis.c - the Redis engine: settings, login, roles, session reset and
 * the driver's vtable (redis_internal.h lists the other files).
 *
 * Settings: host, port, unix_socket, username (ACL user), password,
 * database (the SELECT index), client_name (CLIENT SETNAME) and the TLS
 * keys tls, ca_file, cert_file, key_file, key_password (redis_tls.c). The login
 * (AUTH, SELECT, CLIENT SETNAME) goes out as one pipeline, again after
 * each RESET. Replies are RESP2: Debian 12's hiredis 0.14 parses no RESP3
 * (docs/redis.md). With cluster=1, `host` lists seed nodes
 * ("h1:7000,h2:7001") and each connection is a cluster client
 * (redis_cluster.c). */
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "redis_internal.h"
#include "textparse.h"

/* ---- configuration ------------------------------------------------------ */

static void free_config(void *p)
{
    rd_config *cfg = p;
    if (!cfg)
        return;
    dbp_free(cfg->host);
    dbp_free(cfg->unix_socket);
    dbp_free(cfg->user);
    dbp_free_secret(cfg->password);
    dbp_free(cfg->client_name);
    for (size_t i = 0; i < cfg->n_seeds; i++)
        dbp_free(cfg->seed_hosts[i]);
    dbp_free(cfg->seed_hosts);
    dbp_free(cfg->seed_ports);
    dbp_free(cfg->ca_file);
    dbp_free(cfg->cert_file);
    dbp_free(cfg->key_file);
    dbp_free_secret(cfg->key_password);
    SSL_CTX_free(cfg->tls_ctx);
    dbp_free(cfg);
}

static int set_text(char **slot, const char *value, dbp_error *err)
{
    dbp_free(*slot);
    *slot = dbp_strdup(value);
    return *slot ? DBP_OK : dbp_error_nomem(err);
}

/* The uniform modes; "prefer" has no meaning here: a Redis port speaks TLS
 * or it does not, and nothing in the protocol negotiates it. */
static int tls_mode(rd_config *cfg, const char *value, dbp_error *err)
{
    static const char *const modes[] = {"disable", "require", "verify-ca", "verify-full"};
    for (int i = 0; i < 4; i++)
        if (strcmp(value, modes[i]) == 0) {
            cfg->tls = i; /* RD_TLS_OFF .. RD_TLS_VERIFY_FULL, in this order */
            return DBP_OK;
        }
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                         "redis setting tls must be disable, require, verify-ca or "
                         "verify-full, not '%s'", value);
}

static int one_setting(rd_config *cfg, const char *key, const char *value, dbp_error *err)
{
    long n;
    if (strcmp(key, "host") == 0)
        return set_text(&cfg->host, value, err);
    if (strcmp(key, "unix_socket") == 0)
        return set_text(&cfg->unix_socket, value, err);
    if (strcmp(key, "user") == 0 || strcmp(key, "username") == 0)
        return set_text(&cfg->user, value, err);
    if (strcmp(key, "password") == 0 || strcmp(key, "key_password") == 0) {
        char **slot = key[0] == 'p' ? &cfg->password : &cfg->key_password;
        dbp_free_secret(*slot);
        *slot = NULL;
        return set_text(slot, value, err);
    }
    if (strcmp(key, "ca_file") == 0)
        return set_text(&cfg->ca_file, value, err);
    if (strcmp(key, "cert_file") == 0)
        return set_text(&cfg->cert_file, value, err);
    if (strcmp(key, "key_file") == 0)
        return set_text(&cfg->key_file, value, err);
    if (strcmp(key, "tls") == 0)
        return tls_mode(cfg, value, err);
    if (strcmp(key, "client_name") == 0) {
        if (strpbrk(value, " \n\r\t"))
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "redis setting client_name cannot contain blanks: '%s'", value);
        return set_text(&cfg->client_name, value, err);
    }
    if (strcmp(key, "port") == 0) {
        int rc = dbp_parse_setting_int("redis", key, value, 1, 65535, &n, err);
        cfg->port = (unsigned)n;
        return rc;
    }
    if (strcmp(key, "cluster") == 0) {
        cfg->cluster = strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
                       strcmp(value, "on") == 0;
        if (!cfg->cluster && strcmp(value, "0") && strcmp(value, "false") && strcmp(value, "off"))
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "redis setting cluster must be 1 or 0, not '%s'", value);
        return DBP_OK;
    }
    if (strcmp(key, "database") == 0 || strcmp(key, "db") == 0) {
        int rc = dbp_parse_setting_int("redis", key, value, 0, 1000000, &n, err);
        cfg->database = n;
        return rc;
    }
    return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unknown redis setting '%s'", key);
}

/* cluster: `host` as seeds "h1[:p1],[v6]:p2,..." (the port setting by default). */
static int parse_seeds(rd_config *cfg, dbp_error *err)
{
    size_t n = 1;
    for (const char *p = cfg->host; *p; p++)
        n += *p == ',';
    cfg->seed_hosts = dbp_calloc(n, sizeof *cfg->seed_hosts);
    cfg->seed_ports = dbp_calloc(n, sizeof *cfg->seed_ports);
    if (!cfg->seed_hosts || !cfg->seed_ports)
        return dbp_error_nomem(err);
    for (const char *p = cfg->host; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *h = p, *colon = NULL;
        size_t hlen = len;
        if (len && *p == '[') { /* [IPv6]:port */
            const char *close = memchr(p, ']', len);
            if (close) {
                h = p + 1;
                hlen = (size_t)(close - h);
                colon = close + 1 < p + len && close[1] == ':' ? close + 1 : NULL;
            }
        } else {
            colon = memchr(p, ':', len);
            hlen = colon ? (size_t)(colon - p) : len;
        }
        long port = cfg->port;
        if (colon) {
            char text[16];
            size_t plen = (size_t)(p + len - colon - 1);
            if (plen == 0 || plen >= sizeof text)
                return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "bad redis cluster seed port");
            memcpy(text, colon + 1, plen);
            text[plen] = '\0';
            if (dbp_parse_setting_int("redis", "port", text, 1, 65535, &port, err) != DBP_OK)
                return DBP_E_CONFIG;
        }
        if (hlen == 0)
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "a redis cluster seed has no host");
        if (!(cfg->seed_hosts[cfg->n_seeds] = dbp_strndup(h, hlen)))
            return dbp_error_nomem(err);
        cfg->seed_ports[cfg->n_seeds++] = (unsigned)port;
        p += len + (end != NULL);
    }
    return DBP_OK;
}

static int parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    rd_config *cfg = dbp_calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->port = 6379;
    int rc = DBP_OK;
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        rc = one_setting(cfg, settings[i].key, settings[i].value, err);
    if (rc == DBP_OK && !cfg->host && !cfg->unix_socket)
        rc = set_text(&cfg->host, "localhost", err);
    if (rc == DBP_OK && cfg->user && !cfg->password)
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                           "redis username '%s' needs a password", cfg->user);
    if (rc == DBP_OK && !cfg->cluster && cfg->host && strchr(cfg->host, ','))
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                           "several redis hosts need cluster=1 (redis+cluster://h1,h2); for "
                           "a primary and replicas give endpoints");
    if (rc == DBP_OK && cfg->cluster && (cfg->unix_socket || cfg->database))
        rc = dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                           "a redis cluster has only database 0 and is reached over TCP");
    if (rc == DBP_OK && cfg->cluster)
        rc = parse_seeds(cfg, err);
    if (rc == DBP_OK)
        rc = rd_tls_context(cfg, err);
    if (rc != DBP_OK) {
        free_config(cfg);
        return rc;
    }
    *out = cfg;
    return DBP_OK;
}

static void describe(const void *config, char *buf, size_t size)
{
    const rd_config *cfg = config;
    if (cfg->cluster)
        snprintf(buf, size, "cluster %s", cfg->host);
    else if (cfg->unix_socket)
        snprintf(buf, size, "%s/%ld", cfg->unix_socket, cfg->database);
    else
        snprintf(buf, size, "%s:%u/%ld", cfg->host, cfg->port, cfg->database);
}

/* ---- connections ------------------------------------------------------------ */

static void disconnect(void *conn)
{
    rd_conn *c = conn;
    if (!c)
        return;
    rd_cursor_close(c, NULL);
    rd_cluster_free(c);
    rd_node_close(&c->single);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    rd_buf_free(&c->out);
    rd_buf_free(&c->login);
    SSL_CTX_free(c->tls_ctx);
    dbp_free(c);
}

/* The commands every session starts with. */
static int build_login(rd_conn *c, const rd_config *cfg)
{
    int rc = DBP_OK;
    if (cfg->password) {
        rc = cfg->user ? rd_cmd(&c->login, "AUTH", cfg->user, cfg->password, (char *)NULL)
                       : rd_cmd(&c->login, "AUTH", cfg->password, (char *)NULL);
        c->login_n++;
    }
    if (rc == DBP_OK && cfg->database) {
        char db[24];
        snprintf(db, sizeof db, "%ld", cfg->database);
        rc = rd_cmd(&c->login, "SELECT", db, (char *)NULL);
        c->login_n++;
    }
    if (rc == DBP_OK && cfg->client_name) {
        rc = rd_cmd(&c->login, "CLIENT", "SETNAME", cfg->client_name, (char *)NULL);
        c->login_n++;
    }
    return rc;
}

/* Sends the login after the `prefix` commands already in c->out (a RESET),
 * with a PING so there is always a reply, and checks every reply. */
int rd_run_login(rd_conn *c, size_t prefix, dbp_error *err)
{
    size_t n = prefix + c->login_n + 1;
    if (rd_buf_reserve(&c->out, c->login.len) != DBP_OK)
        return dbp_error_nomem(err);
    if (c->login.len)
        memcpy(c->out.data + c->out.len, c->login.data, c->login.len);
    c->out.len += c->login.len;
    if (rd_cmd(&c->out, "PING", (char *)NULL) != DBP_OK)
        return dbp_error_nomem(err);
    dbp_reply *replies[8] = {0};
    int rc = rd_roundtrip(c, n, replies, err);
    for (size_t i = 0; i < n && rc == DBP_OK; i++)
        if (replies[i]->type == DBP_REPLY_ERROR)
            rc = rd_reply_error(replies[i], i < prefix ? "resetting the session" : "login", err);
    for (size_t i = 0; i < n; i++)
        dbp_reply_free(replies[i]);
    dbp_wipe(c->out.data, c->out.cap); /* it held the password */
    c->out.len = 0;
    return rc;
}

static int connect_redis(const void *config, const dbp_exec_ctx *ctx, void **out, dbp_error *err)
{
    const rd_config *cfg = config;
    rd_conn *c = dbp_calloc(1, sizeof *c);
    if (!c)
        return dbp_error_nomem(err);
    c->single.fd = -1;
    c->node = &c->single;
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->has_reset = -1;
    c->database = cfg->database;
    describe(cfg, c->single.label, sizeof c->single.label);
    int rc = c->wake_fd < 0 ? dbp_error_nomem(err) : DBP_OK;
    if (rc == DBP_OK && cfg->tls_ctx) { /* never plain text when TLS was asked for */
        if (SSL_CTX_up_ref(cfg->tls_ctx) != 1)
            rc = dbp_error_nomem(err);
        else
            c->tls_ctx = cfg->tls_ctx;
        c->tls_mode = cfg->tls;
    }
    if (rc == DBP_OK)
        rc = build_login(c, cfg) == DBP_OK ? DBP_OK : dbp_error_nomem(err);
    c->ctx = ctx;
    if (rc == DBP_OK && cfg->cluster) {
        rc = rd_cluster_connect(c, cfg, err);
    } else if (rc == DBP_OK) {
        rc = rd_connect_socket(c, c->node, cfg->host, cfg->port, cfg->unix_socket, err);
        if (rc == DBP_OK)
            rc = rd_run_login(c, 0, err);
    }
    c->ctx = NULL;
    if (rc != DBP_OK) {
        disconnect(c);
        return rc;
    }
    *out = c;
    return DBP_OK;
}

static int is_usable(void *conn)
{
    rd_conn *c = conn;
    if (c->broken)
        return 0;
    /* an idle connection has nothing to read: readable means closed or junk */
    rd_node *nodes[64];
    size_t n = c->cluster ? rd_cluster_open_nodes(c, nodes, 64) : 1;
    if (!c->cluster)
        nodes[0] = c->node;
    for (size_t i = 0; i < n; i++) {
        struct pollfd p = {.fd = nodes[i]->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) != 0 &&
            !(nodes[i]->ssl && p.revents == POLLIN && rd_tls_idle_ok(nodes[i])))
            return 0;
    }
    return 1;
}

static void interrupt(void *conn)
{
    rd_conn *c = conn;
    uint64_t one = 1;
    if (write(c->wake_fd, &one, sizeof one) < 0) {
        /* the counter is full: a wake-up is pending anyway */
    }
}

/* The command in c->out with the call's context, its single reply in *out. */
static int simple(rd_conn *c, const dbp_exec_ctx *ctx, dbp_reply **out, dbp_error *err)
{
    c->ctx = ctx;
    return rd_roundtrip(c, 1, out, err);
}

static int ping(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    rd_conn *c = conn;
    rd_node *first = NULL;
    if (c->cluster && rd_cluster_open_nodes(c, &first, 1) != 1)
        return dbp_error_set(err, DBP_E_NETWORK, 0, "08006", "no cluster node is open");
    if (c->cluster)
        c->node = first; /* a cluster's pings go to one master it uses */
    if (rd_cmd(&c->out, "PING", (char *)NULL) != DBP_OK)
        return dbp_error_nomem(err);
    dbp_reply *r = NULL;
    int rc = simple(c, ctx, &r, err);
    if (rc == DBP_OK && r->type == DBP_REPLY_ERROR)
        rc = rd_reply_error(r, "PING", err);
    dbp_reply_free(r);
    c->ctx = NULL;
    return rc;
}

/* ROLE: ["master", offset, replicas] or ["slave", host, port, state, offset]. */
static int probe_role(void *conn, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                      dbp_error *err)
{
    rd_conn *c = conn;
    *lag_s = -1;
    if (c->cluster) { /* the pool's one endpoint is the cluster, writable as a whole */
        *role = DBP_ROLE_PRIMARY;
        return ping(conn, ctx, err);
    }
    if (rd_cmd(&c->out, "ROLE", (char *)NULL) != DBP_OK)
        return dbp_error_nomem(err);
    dbp_reply *r = NULL;
    int rc = simple(c, ctx, &r, err);
    c->ctx = NULL;
    if (rc != DBP_OK)
        return rc;
    if (r->type == DBP_REPLY_ERROR)
        rc = rd_reply_error(r, "ROLE", err);
    else if (r->type != DBP_REPLY_ARRAY || r->n < 1 || r->element[0]->type != DBP_REPLY_STRING)
        rc = dbp_error_set(err, DBP_E_PROTOCOL, 0, NULL, "unexpected ROLE reply from %s",
                           c->node->label);
    else if (strcmp(r->element[0]->str, "master") == 0)
        *role = DBP_ROLE_PRIMARY;
    else
        *role = DBP_ROLE_REPLICA; /* "slave", or "sentinel" which takes no work */
    dbp_reply_free(r);
    return rc;
}

static int in_transaction(void *conn)
{
    (void)conn;
    return 0; /* MULTI never outlives one command request */
}

static int no_transactions(void *conn, const char *options, const dbp_exec_ctx *ctx,
                           dbp_error *err)
{
    (void)conn, (void)options, (void)ctx;
    return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                         "redis has no SQL transactions: use pipeline(..., transaction=True), "
                         "which runs the commands in MULTI/EXEC");
}

static int no_commit(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    return no_transactions(conn, NULL, ctx, err);
}

static int rollback(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)conn, (void)ctx, (void)err;
    return DBP_OK; /* nothing is ever open */
}

static int session_changed(void *conn) { return ((rd_conn *)conn)->session_changed; }

/* RESET (Redis 6.2+) undoes every session setting in one command but also
 * logs out and selects database 0, so the login follows in the same round
 * trip. Older servers get UNWATCH and the login (SELECT included). */
static int reset(void *conn, int always, const dbp_exec_ctx *ctx, int *did_reset,
                 dbp_error *err)
{
    rd_conn *c = conn;
    *did_reset = 0;
    if (!always && !c->session_changed)
        return DBP_OK;
    c->ctx = ctx;
    rd_node *nodes[64];
    size_t n_nodes = c->cluster ? rd_cluster_open_nodes(c, nodes, 64) : 1;
    if (!c->cluster)
        nodes[0] = c->node;
    int rc = DBP_OK;
    for (size_t i = 0; i < n_nodes && rc == DBP_OK; i++) {
        c->node = nodes[i];
        rc = rd_cmd(&c->out, c->has_reset != 0 ? "RESET" : "UNWATCH", (char *)NULL) == DBP_OK
                 ? rd_run_login(c, 1, err)
                 : dbp_error_nomem(err);
    }
    if (rc == DBP_E_SERVER && c->has_reset == -1 && !c->broken) {
        c->has_reset = 0; /* an older server: try again without RESET */
        rc = reset(conn, always, ctx, did_reset, err);
    } else if (rc == DBP_OK && c->has_reset == -1) {
        c->has_reset = 1;
    }
    c->ctx = NULL;
    if (rc == DBP_OK)
        c->session_changed = 0;
    return rc;
}

const dbp_driver dbp_redis_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_DEADLINES | DBP_CAP_ROLES | DBP_CAP_BULK_LOAD | DBP_CAP_RESET,
    .name = "redis",
    .parse_config = parse_config,
    .free_config = free_config,
    .connect = connect_redis,
    .disconnect = disconnect,
    .ping = ping,
    .is_usable = is_usable,
    .interrupt = interrupt,
    .in_transaction = in_transaction,
    .execute = rd_execute,
    .cursor_open = rd_cursor_open,
    .cursor_fetch = rd_cursor_fetch,
    .cursor_close = rd_cursor_close,
    .bulk_load = rd_bulk_load,
    .probe_role = probe_role,
    .describe = describe,
    .reset = reset,
    .session_changed = session_changed,
    .begin = no_transactions,
    .commit = no_commit,
    .rollback = rollback,
    .command = rd_command,
};
