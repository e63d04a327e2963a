/* worker.c - the threads that run requests. A request reaches a worker with
 * its connection already assigned; the worker connects or validates the
 * connection if needed, runs the operation through the driver, resets the
 * connection and hands it back. The GIL is never involved here. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

/* A result batch is cut at this many bytes even below batch_rows. */
#define BATCH_BYTES ((size_t)64 << 20)
#define QUERY_BATCH_ROWS ((int64_t)1 << 20)
/* How long a query may hold an event loop's thread (dbp_exec_ctx.inline_budget_ns). */
#define INLINE_BUDGET_NS ((int64_t)1000000)

void dbp_worker_enqueue_locked(dbp_manager *mgr, dbp_request *req)
{
    req->state = REQ_QUEUED;
    req->conn->running = req; /* from now on a stop or a deadline can reach it */
    dbp_request_list_push(&mgr->work, req);
    if (mgr->idle_workers > 0)
        pthread_cond_signal(&mgr->work_cv);
    dbp_worker_spawn_locked(mgr);
}

static void *worker_main(void *arg);

void dbp_worker_spawn_locked(dbp_manager *mgr)
{
    while (mgr->work.count > mgr->idle_workers && !mgr->closing) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, mgr) != 0)
            return; /* the janitor tries again */
        /* Detached: a worker stuck in an engine call must not hold up the
         * manager's shutdown. Its manager reference keeps the lock alive. */
        pthread_detach(thread);
        mgr->refs++;
        mgr->n_workers++;
        mgr->idle_workers++; /* it counts as idle until it takes a request */
    }
}

/* A context for the library's own round trips (pings, probes, rollbacks on
 * release): bounded by connect_timeout, never cancelled by a caller. */
static void housekeeping_ctx(const dbp_pool *pool, const atomic_int *never, dbp_exec_ctx *ctx)
{
    *ctx = (dbp_exec_ctx){.cancelled = never,
                          .deadline_ns = dbp_now_ns() + MS_TO_NS(dbp_pool_opts(pool)->connect_timeout_ms),
                          .cancel_grace_ns = MS_TO_NS(dbp_pool_opts(pool)->cancel_grace_ms)};
}

/* Opens the connection of a fresh slot, or replaces a retired or dead one,
 * within connect_timeout (or the call's own deadline, when sooner). */
static int open_conn(dbp_pool *pool, dbp_conn *conn, dbp_error *err)
{
    dbp_manager *mgr = pool->mgr;
    dbp_request *req = conn->running;
    int64_t started = dbp_now_ns();
    int64_t deadline = started + MS_TO_NS(dbp_pool_opts(pool)->connect_timeout_ms);
    dbp_exec_ctx ctx = {.cancelled = &req->cancelled,
                        .deadline_ns = req->call_deadline_ns < deadline ? req->call_deadline_ns
                                                                        : deadline,
                        .cancel_grace_ns = MS_TO_NS(dbp_pool_opts(pool)->cancel_grace_ms)};
    /* the settings may be replaced by a reconfigure meanwhile; the old ones
     * stay valid until the pool is freed */
    pthread_mutex_lock(&mgr->mu);
    const void *config = conn->endpoint->config;
    conn->settings_gen = conn->endpoint->settings_gen;
    pthread_mutex_unlock(&mgr->mu);
    void *handle = NULL;
    int rc = pool->driver->connect(config, &ctx, &handle, err);
    if (rc == DBP_OK && (rc = dbp_conn_init(pool, handle, &ctx, err)) != DBP_OK) {
        pool->driver->disconnect(handle);
        handle = NULL;
    }
    dbp_conn *to_close = NULL;
    pthread_mutex_lock(&mgr->mu);
    if (rc == DBP_OK) {
        int64_t now = dbp_now_ns();
        conn->connect_ns = now - started;
        dbp_pool_conn_opened_locked(pool, conn, handle, now);
        dbp_endpoint_connected_locked(conn->endpoint);
    } else {
        dbp_counter_inc(&conn->endpoint->m.connect_failures);
        conn->broken = 1;
        /* pools of several endpoints record it after the connect (failover.c) */
        if (!dbp_pool_has_topology(pool) && rc != DBP_E_CANCELLED && rc != DBP_E_NOMEM)
            dbp_endpoint_failed_locked(conn->endpoint, err, &to_close);
    }
    pthread_mutex_unlock(&mgr->mu);
    dbp_conns_destroy(to_close);
    return rc;
}

/* Drops the connection's handle, keeping its slot, before reopening it. */
static void close_handle(dbp_pool *pool, dbp_conn *conn, int why)
{
    pthread_mutex_lock(&pool->mgr->mu);
    void *handle = conn->handle;
    conn->handle = NULL;
    dbp_conn_count_close_locked(conn, why);
    pthread_mutex_unlock(&pool->mgr->mu);
    pool->driver->disconnect(handle);
    dbp_conn_closed(conn); /* the request running on it keeps its pool alive */
}

/* Makes sure the connection is open, young enough and, after a long idle
 * spell (when ping_if_idle), still alive; *opened says whether it is new. */
static int prepare_conn(dbp_pool *pool, dbp_conn *conn, int ping_if_idle, int *opened,
                        dbp_error *err)
{
    *opened = 1;
    if (!conn->handle)
        return open_conn(pool, conn, err);
    int64_t now = dbp_now_ns();
    if (now >= conn->retire_ns) {
        close_handle(pool, conn, DBP_CLOSE_LIFETIME);
        return open_conn(pool, conn, err);
    }
    int64_t validate_after = dbp_pool_opts(pool)->validate_after_ms;
    int usable = !pool->driver->is_usable || pool->driver->is_usable(conn->handle);
    int stale = ping_if_idle && ((validate_after >= 0 &&
                                  now - conn->last_used_ns >= MS_TO_NS(validate_after)) ||
                                 conn->must_validate);
    if (!usable || stale) {
        dbp_error ping_err = {0};
        atomic_int never = 0;
        dbp_exec_ctx ctx;
        housekeeping_ctx(pool, &never, &ctx);
        if (!usable || pool->driver->ping(conn->handle, &ctx, &ping_err) != DBP_OK) {
            pthread_mutex_lock(&pool->mgr->mu);
            dbp_counter_inc(&conn->endpoint->m.validations_failed);
            if (!ping_err.message[0])
                snprintf(ping_err.message, sizeof ping_err.message,
                         "an idle connection was found closed by the server");
            dbp_endpoint_broke_locked(conn->endpoint, &ping_err); /* check its siblings */
            pthread_mutex_unlock(&pool->mgr->mu);
            close_handle(pool, conn, DBP_CLOSE_VALIDATION);
            return open_conn(pool, conn, err);
        }
        conn->validated_ns = dbp_now_ns();
    }
    *opened = 0;
    return DBP_OK;
}

/* Pools with several endpoints ask each new connection its endpoint's role
 * before using it; a PROBE asks over whatever connection it got (the probe
 * is its ping) and, if that fails on a reused connection, once more on a
 * new one, so one dead idle connection does not mark its endpoint down. */
static int prepare_and_probe(dbp_pool *pool, dbp_request *req, dbp_probe_result *probe)
{
    dbp_conn *conn = req->conn;
    int is_probe = (int)req->op == DBP_OP_PROBE;
    int opened;
    probe->ok = 0;
    int rc = prepare_conn(pool, conn, !is_probe, &opened, &req->error);
    if (rc != DBP_OK || !dbp_pool_has_topology(pool) || !(opened || is_probe))
        return rc;
    dbp_exec_ctx ctx;
    housekeeping_ctx(pool, &req->cancelled, &ctx);
    rc = pool->driver->probe_role(conn->handle, &ctx, &probe->role, &probe->lag_s, &req->error);
    if (rc != DBP_OK && !opened) {
        close_handle(pool, conn, DBP_CLOSE_VALIDATION);
        rc = open_conn(pool, conn, &req->error);
        housekeeping_ctx(pool, &req->cancelled, &ctx);
        if (rc == DBP_OK)
            rc = pool->driver->probe_role(conn->handle, &ctx, &probe->role, &probe->lag_s,
                                          &req->error);
    }
    probe->ok = rc == DBP_OK;
    return rc;
}

static int run_query(const dbp_driver *drv, dbp_request *req, const dbp_exec_ctx *stream_ctx)
{
    void *h = req->conn->handle;
    dbp_exec_ctx ctx_all = *stream_ctx;
    ctx_all.read_all = 1;
    const dbp_exec_ctx *ctx = &ctx_all;
    int rc = drv->cursor_open(h, req->sql, req->sql_len, req->params, ctx, &req->error);
    if (rc != DBP_OK)
        return rc;
    dbp_fetch_limits all = {.max_rows = -1, .batch_rows = QUERY_BATCH_ROWS,
                            .batch_bytes = BATCH_BYTES};
    int done = 0;
    rc = drv->cursor_fetch(h, &all, ctx, &req->result, &done, &req->error);
    drv->cursor_close(h, ctx);
    return rc;
}

static int run_cursor_op(const dbp_driver *drv, dbp_request *req, const dbp_exec_ctx *ctx)
{
    dbp_conn *conn = req->conn;
    switch (req->op) {
    case DBP_OP_CURSOR_OPEN: {
        if (conn->has_cursor)
            return dbp_error_set(&req->error, DBP_E_MISUSE, 0, NULL,
                                 "a cursor is already open on this connection");
        int rc = drv->cursor_open(conn->handle, req->sql, req->sql_len, req->params, ctx,
                                  &req->error);
        conn->has_cursor = rc == DBP_OK;
        return rc;
    }
    case DBP_OP_CURSOR_FETCH: {
        if (!conn->has_cursor)
            return dbp_error_set(&req->error, DBP_E_MISUSE, 0, NULL, "no cursor is open");
        dbp_fetch_limits limits = {.max_rows = req->batch_rows, .batch_rows = req->batch_rows,
                                   .batch_bytes = BATCH_BYTES};
        int rc = drv->cursor_fetch(conn->handle, &limits, ctx, &req->result, &req->cursor_done,
                                   &req->error);
        if (rc != DBP_OK || req->cursor_done) {
            drv->cursor_close(conn->handle, ctx);
            conn->has_cursor = 0;
        }
        return rc;
    }
    default: /* DBP_OP_CURSOR_CLOSE */
        if (conn->has_cursor)
            drv->cursor_close(conn->handle, ctx);
        conn->has_cursor = 0;
        return DBP_OK;
    }
}

int dbp_conn_init(const dbp_pool *pool, void *handle, const dbp_exec_ctx *ctx, dbp_error *err)
{
    const char *sql = dbp_pool_opts(pool)->init_sql;
    if (!sql)
        return DBP_OK;
    int64_t affected = 0;
    dbp_exec_ctx setup = *ctx;
    setup.session_setup = 1;
    int rc = pool->driver->execute(handle, sql, strlen(sql), NULL, &setup, &affected, err);
    if (rc != DBP_OK && err) {
        char cause[DBP_ERROR_MESSAGE_SIZE];
        snprintf(cause, sizeof cause, "%s", err->message);
        snprintf(err->message, sizeof err->message, "init_sql failed: %.1000s", cause);
    }
    return rc;
}

void dbp_conn_reset(dbp_conn *conn)
{
    const dbp_driver *drv = conn->driver;
    const dbp_pool_options *opts = dbp_pool_opts(conn->pool);
    if (!conn->handle || conn->broken)
        return;
    atomic_int never = 0;
    dbp_exec_ctx ctx;
    housekeeping_ctx(conn->pool, &never, &ctx);
    int talked = conn->has_cursor; /* sent anything to the engine */
    if (conn->has_cursor) {
        drv->cursor_close(conn->handle, &ctx);
        conn->has_cursor = 0;
    }
    dbp_error ignored;
    if (drv->in_transaction(conn->handle)) {
        talked = 1;
        if (drv->rollback(conn->handle, &ctx, &ignored) != DBP_OK)
            conn->broken = 1;
    }
    int did_reset = 0;
    if (!conn->broken && drv->reset && opts->reset_on_release != DBP_RESET_NEVER &&
        (drv->reset(conn->handle, opts->reset_on_release == DBP_RESET_ALWAYS, &ctx, &did_reset,
                    &ignored) != DBP_OK ||
         (did_reset && dbp_conn_init(conn->pool, conn->handle, &ctx, &ignored) != DBP_OK)))
        conn->broken = 1;
    /* a driver that could not stop a cursor or reset cleanly says so here */
    if ((talked || did_reset) && drv->is_usable && !drv->is_usable(conn->handle))
        conn->broken = 1;
    if (conn->broken) /* it was not on entry */
        conn->close_why = DBP_CLOSE_RESET_FAILED;
}

static int run_op(dbp_pool *pool, dbp_request *req, int *over_budget)
{
    const dbp_driver *drv = pool->driver;
    void *h = req->conn->handle;
    req->replied = -1; /* the driver says whether the server answered at all */
    dbp_exec_ctx ctx = {.cancelled = &req->cancelled,
                        .replied = &req->replied,
                        .deadline_ns = req->call_deadline_ns,
                        .cancel_grace_ns = MS_TO_NS(dbp_pool_opts(pool)->cancel_grace_ms),
                        .copy_mode = req->copy_mode,
                        .inline_budget_ns = req->inline_budget ? INLINE_BUDGET_NS : 0,
                        .over_budget = over_budget,
                        .notice = dbp_request_add_notice,
                        .notice_arg = req};
    dbp_error *err = &req->error;
    const char *sql = req->sql ? req->sql : "";
    switch ((int)req->op) {
    case DBP_OP_WARM_UP:
    case DBP_OP_PROBE:
        return DBP_OK;
    case DBP_OP_RESET_LEASE:
        dbp_conn_reset(req->conn);
        return DBP_OK;
    case DBP_OP_QUERY:
        return run_query(drv, req, &ctx);
    case DBP_OP_EXECUTE_MANY:
        if (dbp_params_rows(req->params) == 0)
            return DBP_OK; /* no rows: nothing to run, 0 rows affected */
        /* fall through */
    case DBP_OP_EXECUTE:
        return drv->execute(h, sql, req->sql_len, req->params, &ctx, &req->rows_affected, err);
    case DBP_OP_LEASE:
        req->lease_out = dbp_calloc(1, sizeof *req->lease_out);
        return req->lease_out ? DBP_OK : dbp_error_nomem(err);
    case DBP_OP_WRITE_FRAME:
        if (!drv->bulk_load)
            return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                                 "the %s engine cannot bulk-load frames yet", drv->name);
        if (!req->input.release)
            return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "write_frame needs rows");
        return drv->bulk_load(h, sql, req->params, &req->input, &ctx, &req->rows_affected, err);
    case DBP_OP_COMMAND:
        if (!drv->command)
            return dbp_error_set(err, DBP_E_MISUSE, 0, "0A000",
                                 "the %s engine runs SQL, not commands", drv->name);
        return drv->command(h, sql, req->params, &ctx, &req->reply, err);
    case DBP_OP_BEGIN:
        return drv->begin(h, sql, &ctx, err);
    case DBP_OP_COMMIT:
        return drv->commit(h, &ctx, err);
    case DBP_OP_ROLLBACK:
        return drv->rollback(h, &ctx, err);
    default:
        return run_cursor_op(drv, req, &ctx);
    }
}

/* A query the driver would not finish within its inline budget: it runs
 * again, from the start, on a worker (the driver changed nothing). 0 when
 * the request was stopped meanwhile, to be answered as it is. */
static int hand_to_worker(dbp_request *req)
{
    dbp_manager *mgr = req->pool->mgr;
    pthread_mutex_lock(&mgr->mu);
    int go = !atomic_load(&req->cancelled);
    if (go) {
        req->inline_budget = 0;
        req->run_inline = 0;
        memset(&req->error, 0, sizeof req->error);
        dbp_worker_enqueue_locked(mgr, req);
    }
    pthread_mutex_unlock(&mgr->mu);
    return go;
}

static void run_request(dbp_request *req)
{
    dbp_pool *pool = req->pool;
    dbp_conn *conn = req->conn;
    dbp_lease *lease = req->on_lease;
    int topology = dbp_pool_has_topology(pool);
    int rc;
    if (lease) {
        /* A leased connection is never replaced underneath its holder: that
         * would lose an open transaction. It is retired when it comes back. */
        rc = conn->handle && !conn->broken
                 ? DBP_OK
                 : dbp_error_set(&req->error, DBP_E_NETWORK, 0, NULL,
                                 "the connection was lost; the transaction did not complete");
    } else {
        dbp_probe_result probe = {.role = DBP_ROLE_UNKNOWN, .lag_s = -1};
        rc = prepare_and_probe(pool, req, &probe);
        if (topology && dbp_failover_after_connect(pool, req, rc, &probe))
            return; /* back in the wait queue */
    }
    if (rc == DBP_OK && atomic_load(&req->cancelled))
        rc = dbp_error_set(&req->error, DBP_E_CANCELLED, 0, NULL, "cancelled before it started");
    if (rc == DBP_OK) {
        int over_budget = 0;
        rc = run_op(pool, req, &over_budget);
        if (over_budget && hand_to_worker(req))
            return;
        /* a driver that could not stop the statement cleanly says so here */
        if (rc != DBP_OK && conn->handle && pool->driver->is_usable &&
            !pool->driver->is_usable(conn->handle))
            conn->broken = 1;
        if (rc == DBP_E_NETWORK && dbp_failover_after_broken_conn(pool, req))
            return; /* a read, back in the wait queue */
        if (rc == DBP_E_UNAVAILABLE && dbp_failover_after_wrong_role(pool, req))
            return; /* back in the wait queue for the endpoint in the right role */
        if (rc == DBP_E_NETWORK)
            rc = dbp_failover_classify_lost(req);
    }
    dbp_manager *mgr = pool->mgr;
    pthread_mutex_lock(&mgr->mu);
    rc = dbp_request_stopped_status(req, rc); /* a cancel for a deadline or a close says so */
    int answered = req->answered;
    pthread_mutex_unlock(&mgr->mu);
    req->status = rc;
    if (rc == DBP_E_NETWORK || rc == DBP_E_OUTCOME_UNKNOWN)
        conn->broken = 1;
    /* a lease nobody will take (its caller was answered) goes back at once */
    int keeps_conn = lease || (req->op == DBP_OP_LEASE && rc == DBP_OK && !answered);
    if ((rc != DBP_OK || answered) && req->lease_out) {
        dbp_free(req->lease_out);
        req->lease_out = NULL;
    }
    if (!keeps_conn)
        dbp_conn_reset(conn);

    dbp_conn *to_close = NULL;
    int release_lease = 0;
    pthread_mutex_lock(&mgr->mu);
    conn->running = NULL;
    req->conn = NULL; /* a late cancel must not interrupt the next user */
    if (lease) {
        lease->busy = 0;
        release_lease = lease->release_pending;
    } else if (keeps_conn) {
        req->lease_out->pool = pool;
        req->lease_out->conn = conn;
        pool->refs++;
    } else {
        to_close = dbp_pool_return_conn_locked(pool, conn);
    }
    /* counted with the connection's return, so stats never show a
     * connection back before the request that used it */
    dbp_pool *dead = dbp_request_detach_locked(req);
    pthread_cond_broadcast(&mgr->ended_cv);
    pthread_mutex_unlock(&mgr->mu);
    dbp_request_complete(req, to_close, dead);
    if (release_lease)
        dbp_lease_return(lease);
}

void dbp_worker_run(dbp_request *req) { run_request(req); }

static void *worker_main(void *arg)
{
    dbp_manager *mgr = arg;
    pthread_mutex_lock(&mgr->mu);
    for (;;) {
        while (!mgr->work.head && !mgr->closing)
            pthread_cond_wait(&mgr->work_cv, &mgr->mu); /* woken by work or shutdown */
        dbp_request *req = dbp_request_list_pop(&mgr->work);
        if (!req)
            break; /* closing and nothing left to run */
        mgr->idle_workers--;
        req->state = REQ_RUNNING;
        pthread_mutex_unlock(&mgr->mu);
        run_request(req);
        pthread_mutex_lock(&mgr->mu);
        mgr->idle_workers++;
    }
    mgr->idle_workers--;
    mgr->n_workers--;
    pthread_cond_broadcast(&mgr->ended_cv);
    pthread_mutex_unlock(&mgr->mu);
    dbp_manager_unref(mgr);
    return NULL;
}
