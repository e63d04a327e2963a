/* fault_driver.h - "fault", a fake database engine for testing the pool core.
 *
 * It implements the driver interface (driver.h) without any database behind
 * it, so the tests decide what the "server" does: connects and pings can be
 * made to fail with a chosen category, statements can block until the test
 * opens a gate (or the pool interrupts them), and everything the pool asks of
 * the engine is counted. Header-only: include it in one test program and call
 * fault_register() once.
 *
 * Statements are a tiny command language, one command per statement:
 *   ""            do nothing
 *   MARK n        append n to the mark log (shows the order statements ran);
 *                 as a query: one row, v = n
 *   ROWS n        as a query or cursor: n rows, v = 0 .. n-1
 *   BLOCK         wait until fault_open_gate(), an interrupt or the request's
 *                 cancel flag; interrupted -> DBP_E_CANCELLED
 *   HANG          wait until fault_open_gate() only, deaf to interrupts and
 *                 cancels: a client library that cannot be stopped
 *   FAIL c        fail with category c (a dbp_category number)
 *   BEGIN / COMMIT / ROLLBACK   track a transaction flag
 * Anything else fails with DBP_E_SERVER, sqlstate 42000.
 *
 * Knobs (FAULT_SET): disconnect_delay_ms makes every disconnect that slow,
 * so whatever the pool does after closing a connection happens late.
 *
 * Settings: "connect_error" = a category number makes every connect of that
 * pool fail with it; "label" is accepted and ignored; "name" makes the
 * endpoint a named one (below). Other keys are rejected with DBP_E_CONFIG,
 * as a real engine does.
 *
 * Named endpoints, for pools with several endpoints: every endpoint whose
 * settings say "name" = N shares the state of the server N in a small table
 * (one entry per name, created on first use, cleared by fault_reset) that a
 * test steers at any time: its role and replica lag, which probe_role
 * reports, and whether it is down. A down server refuses connects, probes
 * and pings with DBP_E_NETWORK, and statements on connections already open
 * to it fail with DBP_E_NETWORK, a BLOCKed one at once, as if the server
 * died under them. Each named server counts its connects, disconnects,
 * open connections (and of those, how many were opened before the test
 * last changed its role: open_stale), probes, statements and statements
 * blocked right now; read them with FAULT_EP_GET. describe() labels the
 * endpoint with its name. Endpoints without a name probe as a primary with
 * no lag. */
#ifndef FAULT_DRIVER_H
#define FAULT_DRIVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "driver.h"
#include "error.h"
#include "result.h"

#define FAULT_MAX_MARKS 4096
#define FAULT_MAX_ENDPOINTS 16
#define FAULT_NAME_SIZE 64

typedef struct fault_config {
    int connect_error;
    int endpoint;               /* index in fault.endpoints; -1 when unnamed */
    char name[FAULT_NAME_SIZE]; /* "" when unnamed */
} fault_config;

/* One named server (see the top of the file); guarded by fault.mu. */
typedef struct fault_endpoint {
    char name[FAULT_NAME_SIZE];
    /* knobs */
    int role;     /* dbp_role probe_role reports (default DBP_ROLE_PRIMARY) */
    double lag_s; /* replay lag probe_role reports; < 0 unknown (default 0) */
    int down;     /* 1: unreachable, and open connections are dead */
    /* counters */
    int connects, connect_attempts, disconnects, open, probes, statements;
    int blocked; /* statements waiting at BLOCK on it right now */
    int epoch;      /* bumped when a test changes its role */
    int open_stale; /* connections open now that were opened before that */
} fault_endpoint;

typedef struct fault_conn {
    int id;
    int endpoint; /* index in fault.endpoints; -1 when unnamed */
    int epoch;    /* the endpoint's epoch when connected */
    int in_tx;
    int interrupted; /* set by interrupt(), consumed by a blocking statement */
    int64_t opened_ns;
    /* the open cursor */
    int cursor_open;
    int64_t cursor_rows, cursor_pos;
    int64_t cursor_value; /* MARK n: the one row's value */
} fault_conn;

/* Everything the tests steer or read; guarded by `mu`. */
static struct fault_engine {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* knobs */
    int connect_error;         /* category failing connects use */
    int connect_failures_left; /* connects still to fail; -1 = all */
    int connects_before_failures; /* connects that still succeed before those */
    int ping_failures_left;    /* pings still to fail */
    int disconnect_delay_ms;   /* each disconnect takes this long (a slow TLS close) */
    unsigned gate;             /* bumped by fault_open_gate() */
    /* counters */
    int connects, connect_attempts, disconnects, pings, interrupts, rollbacks, commits;
    int statements;
    int blocked;          /* statements waiting at BLOCK right now */
    int open, max_open;   /* connections open now / at most */
    int next_id;
    int64_t min_life_ns, max_life_ns; /* lifetimes of closed connections */
    pthread_t rollback_thread;        /* thread of the last rollback */
    int marks[FAULT_MAX_MARKS];
    int n_marks;
    int probes; /* probe_role calls, named or not */
    fault_endpoint endpoints[FAULT_MAX_ENDPOINTS];
    int n_endpoints;
} fault = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int64_t fault_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Forgets knobs and counters (call with no pool of this engine open). */
static void fault_reset(void)
{
    pthread_mutex_lock(&fault.mu);
    fault.connect_error = 0;
    fault.connect_failures_left = 0;
    fault.connects_before_failures = 0;
    fault.ping_failures_left = 0;
    fault.disconnect_delay_ms = 0;
    fault.connects = fault.connect_attempts = fault.disconnects = fault.pings = 0;
    fault.interrupts = fault.rollbacks = fault.commits = fault.statements = 0;
    fault.blocked = 0;
    fault.open = fault.max_open = 0;
    fault.min_life_ns = INT64_MAX;
    fault.max_life_ns = 0;
    fault.n_marks = 0;
    fault.rollback_thread = (pthread_t)0;
    fault.probes = 0;
    memset(fault.endpoints, 0, sizeof fault.endpoints);
    fault.n_endpoints = 0;
    pthread_mutex_unlock(&fault.mu);
}

/* Reads one counter (or any int field) under the lock. */
#define FAULT_GET(field)                                                                  \
    ({                                                                                    \
        pthread_mutex_lock(&fault.mu);                                                    \
        __typeof__(fault.field) fault_v_ = fault.field;                                   \
        pthread_mutex_unlock(&fault.mu);                                                  \
        fault_v_;                                                                         \
    })

#define FAULT_SET(field, value)                                                           \
    do {                                                                                  \
        pthread_mutex_lock(&fault.mu);                                                    \
        fault.field = (value);                                                            \
        pthread_mutex_unlock(&fault.mu);                                                  \
    } while (0)

/* The named server `name`, added (up, primary, no lag) if new; NULL when
 * the table is full. Call with fault.mu held. */
static fault_endpoint *fault_endpoint_locked(const char *name)
{
    for (int i = 0; i < fault.n_endpoints; i++)
        if (strcmp(fault.endpoints[i].name, name) == 0)
            return &fault.endpoints[i];
    if (fault.n_endpoints == FAULT_MAX_ENDPOINTS || strlen(name) >= FAULT_NAME_SIZE)
        return NULL;
    fault_endpoint *ep = &fault.endpoints[fault.n_endpoints++];
    memset(ep, 0, sizeof *ep);
    snprintf(ep->name, sizeof ep->name, "%s", name);
    ep->role = DBP_ROLE_PRIMARY;
    return ep;
}

/* The server a connection or config belongs to, or NULL (fault.mu held). */
static fault_endpoint *fault_endpoint_at_locked(int index)
{
    return index >= 0 && index < fault.n_endpoints ? &fault.endpoints[index] : NULL;
}

/* Reads one counter or knob of the named server `ep_name` under the lock
 * (0 when there is no such server). */
#define FAULT_EP_GET(ep_name, field)                                                      \
    ({                                                                                    \
        pthread_mutex_lock(&fault.mu);                                                    \
        fault_endpoint *fault_ep_ = NULL;                                                 \
        for (int fault_i_ = 0; fault_i_ < fault.n_endpoints; fault_i_++)                  \
            if (strcmp(fault.endpoints[fault_i_].name, (ep_name)) == 0)                   \
                fault_ep_ = &fault.endpoints[fault_i_];                                   \
        __typeof__(fault.endpoints[0].field) fault_v_ = fault_ep_ ? fault_ep_->field : 0; \
        pthread_mutex_unlock(&fault.mu);                                                  \
        fault_v_;                                                                         \
    })

/* What the server `name` reports as its role (a dbp_role) from now on. */
static inline void fault_ep_set_role(const char *name, int role)
{
    pthread_mutex_lock(&fault.mu);
    fault_endpoint *ep = fault_endpoint_locked(name);
    if (ep && ep->role != role) {
        ep->role = role;
        ep->epoch++;
        ep->open_stale = ep->open; /* every connection open now predates it */
    }
    pthread_mutex_unlock(&fault.mu);
}

/* The replay lag the server `name` reports from now on (< 0: unknown). */
static inline void fault_ep_set_lag(const char *name, double lag_s)
{
    pthread_mutex_lock(&fault.mu);
    fault_endpoint *ep = fault_endpoint_locked(name);
    if (ep)
        ep->lag_s = lag_s;
    pthread_mutex_unlock(&fault.mu);
}

/* Takes the server `name` down (1) or back up (0). Going down also fails the
 * statements blocked on it. */
static inline void fault_ep_set_down(const char *name, int down)
{
    pthread_mutex_lock(&fault.mu);
    fault_endpoint *ep = fault_endpoint_locked(name);
    if (ep)
        ep->down = down;
    pthread_cond_broadcast(&fault.cv);
    pthread_mutex_unlock(&fault.mu);
}

/* Lets every statement now waiting at BLOCK finish successfully. */
static inline void fault_open_gate(void)
{
    pthread_mutex_lock(&fault.mu);
    fault.gate++;
    pthread_cond_broadcast(&fault.cv);
    pthread_mutex_unlock(&fault.mu);
}

/* After `ok` more successful connects, makes the next `n` fail with
 * `category` (n = -1: all of them). */
static inline void fault_fail_connects(int category, int ok, int n)
{
    pthread_mutex_lock(&fault.mu);
    fault.connect_error = category;
    fault.connects_before_failures = ok;
    fault.connect_failures_left = n;
    pthread_mutex_unlock(&fault.mu);
}

/* ---- the driver ---------------------------------------------------------- */

static int fault_parse_config(const dbp_setting *settings, size_t n, void **out, dbp_error *err)
{
    fault_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return dbp_error_nomem(err);
    cfg->endpoint = -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(settings[i].key, "connect_error") == 0) {
            cfg->connect_error = atoi(settings[i].value);
        } else if (strcmp(settings[i].key, "name") == 0) {
            pthread_mutex_lock(&fault.mu);
            fault_endpoint *ep = fault_endpoint_locked(settings[i].value);
            cfg->endpoint = ep ? (int)(ep - fault.endpoints) : -1;
            pthread_mutex_unlock(&fault.mu);
            if (!ep) {
                free(cfg);
                return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                     "fault: no room for endpoint '%s' (at most %d, names "
                                     "shorter than %d)",
                                     settings[i].value, FAULT_MAX_ENDPOINTS, FAULT_NAME_SIZE);
            }
            snprintf(cfg->name, sizeof cfg->name, "%s", settings[i].value);
        } else if (strcmp(settings[i].key, "label") != 0) {
            free(cfg);
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unknown fault setting '%s'",
                                 settings[i].key);
        }
    }
    *out = cfg;
    return DBP_OK;
}

static void fault_free_config(void *config) { free(config); }

static int fault_connect(const void *config, const dbp_exec_ctx *ctx, void **out,
                         dbp_error *err)
{
    (void)ctx;
    const fault_config *cfg = config;
    pthread_mutex_lock(&fault.mu);
    fault.connect_attempts++;
    fault_endpoint *ep = fault_endpoint_at_locked(cfg->endpoint);
    if (ep)
        ep->connect_attempts++;
    if (ep && ep->down) {
        int attempt = fault.connect_attempts;
        pthread_mutex_unlock(&fault.mu);
        return dbp_error_set(err, DBP_E_NETWORK, 4242, "08001",
                             "fault: endpoint '%s' is down: connection refused (attempt %d)",
                             cfg->name, attempt);
    }
    int category = cfg->connect_error;
    if (!category && fault.connects_before_failures > 0) {
        fault.connects_before_failures--;
    } else if (!category && fault.connect_failures_left != 0) {
        category = fault.connect_error;
        if (fault.connect_failures_left > 0)
            fault.connect_failures_left--;
    }
    if (category) {
        int attempt = fault.connect_attempts;
        pthread_mutex_unlock(&fault.mu);
        return dbp_error_set(err, category, 4242, NULL,
                             "fault: connection refused (attempt %d)", attempt);
    }
    fault_conn *c = calloc(1, sizeof *c);
    if (!c) {
        pthread_mutex_unlock(&fault.mu);
        return dbp_error_nomem(err);
    }
    c->id = ++fault.next_id;
    c->endpoint = cfg->endpoint;
    c->opened_ns = fault_now_ns();
    fault.connects++;
    if (++fault.open > fault.max_open)
        fault.max_open = fault.open;
    if (ep) {
        ep->connects++;
        ep->open++;
        c->epoch = ep->epoch;
    }
    pthread_mutex_unlock(&fault.mu);
    *out = c;
    return DBP_OK;
}

static void fault_disconnect(void *conn)
{
    fault_conn *c = conn;
    int64_t life = fault_now_ns() - c->opened_ns;
    pthread_mutex_lock(&fault.mu);
    int delay_ms = fault.disconnect_delay_ms;
    pthread_mutex_unlock(&fault.mu);
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&fault.mu);
    fault.disconnects++;
    fault.open--;
    fault_endpoint *ep = fault_endpoint_at_locked(c->endpoint);
    if (ep) {
        ep->disconnects++;
        ep->open--;
        if (c->epoch != ep->epoch)
            ep->open_stale--;
    }
    if (life < fault.min_life_ns)
        fault.min_life_ns = life;
    if (life > fault.max_life_ns)
        fault.max_life_ns = life;
    pthread_mutex_unlock(&fault.mu);
    free(c);
}

static int fault_ping(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)ctx;
    fault_conn *c = conn;
    pthread_mutex_lock(&fault.mu);
    fault.pings++;
    int fail = fault.ping_failures_left > 0;
    if (fail)
        fault.ping_failures_left--;
    fault_endpoint *ep = fault_endpoint_at_locked(c->endpoint);
    if (ep && ep->down)
        fail = 1;
    pthread_mutex_unlock(&fault.mu);
    return fail ? dbp_error_set(err, DBP_E_NETWORK, 0, NULL, "fault: ping lost") : DBP_OK;
}

static void fault_interrupt(void *conn)
{
    fault_conn *c = conn;
    pthread_mutex_lock(&fault.mu);
    fault.interrupts++;
    c->interrupted = 1;
    pthread_cond_broadcast(&fault.cv);
    pthread_mutex_unlock(&fault.mu);
}

static int fault_in_transaction(void *conn)
{
    fault_conn *c = conn;
    pthread_mutex_lock(&fault.mu);
    int in_tx = c->in_tx;
    pthread_mutex_unlock(&fault.mu);
    return in_tx;
}

/* Runs one command of the language above; *value gets MARK's or ROWS' n. */
static int fault_run(fault_conn *c, const char *sql, size_t len, const dbp_exec_ctx *ctx,
                     int64_t *value, dbp_error *err)
{
    char cmd[64];
    size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
    memcpy(cmd, sql, n);
    cmd[n] = '\0';
    long arg = 0;
    *value = 0;

    pthread_mutex_lock(&fault.mu);
    fault.statements++;
    c->interrupted = 0; /* an interrupt only stops the statement it hit */
    int rc = DBP_OK;
    fault_endpoint *ep = fault_endpoint_at_locked(c->endpoint);
    if (ep)
        ep->statements++;
    if (ep && ep->down) {
        rc = dbp_error_set(err, DBP_E_NETWORK, 0, "08006",
                           "fault: server '%s' closed the connection unexpectedly", ep->name);
    } else if (cmd[0] == '\0') {
        /* nothing */
    } else if (sscanf(cmd, "MARK %ld", &arg) == 1) {
        if (fault.n_marks < FAULT_MAX_MARKS)
            fault.marks[fault.n_marks++] = (int)arg;
        *value = arg;
    } else if (sscanf(cmd, "ROWS %ld", &arg) == 1) {
        *value = arg;
    } else if (strcmp(cmd, "BLOCK") == 0) {
        unsigned gate = fault.gate;
        fault.blocked++;
        if (ep)
            ep->blocked++;
        while (fault.gate == gate && !c->interrupted && !(ep && ep->down) &&
               !(ctx && ctx->cancelled && atomic_load(ctx->cancelled)))
            pthread_cond_wait(&fault.cv, &fault.mu);
        fault.blocked--;
        if (ep)
            ep->blocked--;
        if (fault.gate == gate && ep && ep->down)
            rc = dbp_error_set(err, DBP_E_NETWORK, 0, "08006",
                               "fault: server '%s' closed the connection unexpectedly",
                               ep->name);
        else if (fault.gate == gate)
            rc = dbp_error_set(err, DBP_E_CANCELLED, 0, NULL, "fault: statement interrupted");
    } else if (strcmp(cmd, "HANG") == 0) {
        unsigned gate = fault.gate;
        fault.blocked++;
        while (fault.gate == gate)
            pthread_cond_wait(&fault.cv, &fault.mu);
        fault.blocked--;
    } else if (sscanf(cmd, "FAIL %ld", &arg) == 1) {
        rc = dbp_error_set(err, (int)arg, 99, arg == DBP_E_SERVER ? "HY000" : NULL,
                           "fault: injected %s error", dbp_category_name((int)arg));
    } else if (strcmp(cmd, "BEGIN") == 0) {
        c->in_tx = 1;
    } else if (strcmp(cmd, "COMMIT") == 0) {
        c->in_tx = 0;
        fault.commits++;
    } else if (strcmp(cmd, "ROLLBACK") == 0) {
        c->in_tx = 0;
        fault.rollbacks++;
        fault.rollback_thread = pthread_self();
    } else {
        rc = dbp_error_set(err, DBP_E_SERVER, 1, "42000", "fault: unknown command '%s'", cmd);
    }
    pthread_mutex_unlock(&fault.mu);
    return rc;
}

static int fault_execute(void *conn, const char *sql, size_t len, const dbp_params *params,
                         const dbp_exec_ctx *ctx, int64_t *rows_affected, dbp_error *err)
{
    (void)params;
    int64_t value;
    int rc = fault_run(conn, sql, len, ctx, &value, err);
    *rows_affected = rc == DBP_OK ? 1 : 0;
    return rc;
}

static int fault_cursor_open(void *conn, const char *sql, size_t len, const dbp_params *params,
                             const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)params;
    fault_conn *c = conn;
    int64_t value;
    int rc = fault_run(c, sql, len, ctx, &value, err);
    if (rc != DBP_OK)
        return rc;
    int rows = strncmp(sql, "ROWS", 4) == 0;
    c->cursor_open = 1;
    c->cursor_pos = 0;
    c->cursor_rows = rows ? value : 1;
    c->cursor_value = rows ? -1 : value;
    return DBP_OK;
}

static int fault_cursor_fetch(void *conn, const dbp_fetch_limits *limits, const dbp_exec_ctx *ctx,
                              dbp_result **out, int *done, dbp_error *err)
{
    (void)ctx;
    fault_conn *c = conn;
    if (!c->cursor_open)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "fault: no cursor");
    static const char *const names[] = {"v"};
    dbp_result *res;
    int rc = dbp_result_new(&res, 1, names, err);
    if (rc != DBP_OK)
        return rc;
    dbp_column *col = dbp_result_column(res, 0);
    rc = dbp_column_set_type(col, (dbp_type){.id = DBP_T_INT64});
    int64_t n = 0;
    while (rc == DBP_OK && c->cursor_pos < c->cursor_rows &&
           (limits->max_rows < 0 || n < limits->max_rows)) {
        int64_t v = c->cursor_value >= 0 ? c->cursor_value : c->cursor_pos;
        rc = dbp_column_append_int(col, v);
        c->cursor_pos++;
        n++;
    }
    if (rc != DBP_OK) {
        dbp_result_free(res);
        return dbp_error_nomem(err);
    }
    *done = c->cursor_pos >= c->cursor_rows;
    *out = res;
    return DBP_OK;
}

static void fault_cursor_close(void *conn, const dbp_exec_ctx *ctx)
{
    (void)ctx;
    ((fault_conn *)conn)->cursor_open = 0;
}

static int fault_begin(void *conn, const char *options, const dbp_exec_ctx *ctx, dbp_error *err)
{
    (void)options;
    int64_t v;
    return fault_run(conn, "BEGIN", 5, ctx, &v, err);
}

static int fault_commit(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    int64_t v;
    return fault_run(conn, "COMMIT", 6, ctx, &v, err);
}

static int fault_rollback(void *conn, const dbp_exec_ctx *ctx, dbp_error *err)
{
    int64_t v;
    return fault_run(conn, "ROLLBACK", 8, ctx, &v, err);
}

/* A key-value command: a replica refuses it for its role before running
 * anything (as Redis answers READONLY); a primary answers an empty array. */
static int fault_command(void *conn, const char *mode, const dbp_params *cmds,
                         const dbp_exec_ctx *ctx, dbp_reply **out, dbp_error *err)
{
    (void)mode, (void)cmds;
    fault_conn *c = conn;
    pthread_mutex_lock(&fault.mu);
    fault.statements++;
    fault_endpoint *ep = fault_endpoint_at_locked(c->endpoint);
    if (ep)
        ep->statements++;
    int replica = ep && ep->role == DBP_ROLE_REPLICA;
    pthread_mutex_unlock(&fault.mu);
    if (replica) {
        if (ctx->replied)
            *ctx->replied = 0;
        return dbp_error_set(err, DBP_E_UNAVAILABLE, 0, "25006",
                             "fault: READONLY You can't write against a read only replica.");
    }
    *out = dbp_calloc(1, sizeof **out);
    if (!*out)
        return dbp_error_nomem(err);
    (*out)->type = DBP_REPLY_ARRAY;
    return DBP_OK;
}

/* The role and lag the named server reports; unnamed ones are primaries. */
static int fault_probe_role(void *conn, const dbp_exec_ctx *ctx, dbp_role *role, double *lag_s,
                            dbp_error *err)
{
    (void)ctx;
    fault_conn *c = conn;
    pthread_mutex_lock(&fault.mu);
    fault.probes++;
    fault_endpoint *ep = fault_endpoint_at_locked(c->endpoint);
    int rc = DBP_OK;
    if (ep)
        ep->probes++;
    if (ep && ep->down) {
        rc = dbp_error_set(err, DBP_E_NETWORK, 0, "08006",
                           "fault: server '%s' closed the connection unexpectedly", ep->name);
    } else {
        *role = ep ? (dbp_role)ep->role : DBP_ROLE_PRIMARY;
        *lag_s = ep ? ep->lag_s : 0;
    }
    pthread_mutex_unlock(&fault.mu);
    return rc;
}

static void fault_describe(const void *config, char *buf, size_t size)
{
    const fault_config *cfg = config;
    snprintf(buf, size, "%s", cfg->name);
}

static const dbp_driver fault_driver = {
    .abi_version = DBP_DRIVER_ABI_VERSION,
    .caps = DBP_CAP_CANCEL | DBP_CAP_ROLES,
    .name = "fault",
    .parse_config = fault_parse_config,
    .free_config = fault_free_config,
    .connect = fault_connect,
    .disconnect = fault_disconnect,
    .ping = fault_ping,
    .interrupt = fault_interrupt,
    .in_transaction = fault_in_transaction,
    .execute = fault_execute,
    .cursor_open = fault_cursor_open,
    .cursor_fetch = fault_cursor_fetch,
    .cursor_close = fault_cursor_close,
    .probe_role = fault_probe_role,
    .describe = fault_describe,
    .begin = fault_begin,
    .commit = fault_commit,
    .rollback = fault_rollback,
    .command = fault_command,
};

static int fault_register(void)
{
    fault_reset();
    return dbp_driver_register(&fault_driver);
}

#endif
