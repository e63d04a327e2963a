/* worker.c - the threads that run requests. A request reaches a worker with
 * its connection already assigned; the worker connects or validates the
 * connection if needed, runs the operation through the driver, resets the
 * connection and hands it back. The GIL is never involved here. */
#include <stdint.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

#define MS_TO_NS(ms) ((int64_t)(ms) * 1000000)
/* A result batch is cut at this many bytes even below batch_rows. */
#define BATCH_BYTES ((size_t)64 << 20)
#define QUERY_BATCH_ROWS ((int64_t)1 << 20)

void dbp_worker_enqueue_locked(dbp_manager *mgr, dbp_request *req)
{
    req->state = REQ_QUEUED;
    dbp_request_list_push(&mgr->work, req);
    if (mgr->idle_workers > 0)
        pthread_cond_signal(&mgr->work_cv);
    dbp_worker_spawn_locked(mgr);
}

static void *worker_main(void *arg);

void dbp_worker_spawn_locked(dbp_manager *mgr)
{
    while (mgr->work.count > mgr->idle_workers && !mgr->closing) {
        if (mgr->n_workers == mgr->workers_capacity) {
            int cap = mgr->workers_capacity ? mgr->workers_capacity * 2 : 8;
            pthread_t *grown = dbp_realloc(mgr->workers, (size_t)cap * sizeof *grown);
            if (!grown)
                return; /* the janitor tries again */
            mgr->workers = grown;
            mgr->workers_capacity = cap;
        }
        if (pthread_create(&mgr->workers[mgr->n_workers], NULL, worker_main, mgr) != 0)
            return;
        mgr->n_workers++;
        mgr->idle_workers++; /* it counts as idle until it takes a request */
    }
}

/* Opens the connection of a fresh slot, or replaces a retired or dead one. */
static int open_conn(dbp_pool *pool, dbp_conn *conn, dbp_error *err)
{
    dbp_manager *mgr = pool->mgr;
    void *handle = NULL;
    int rc = pool->driver->connect(conn->endpoint->config, &conn->running->cancelled, &handle, err);
    pthread_mutex_lock(&mgr->mu);
    if (rc == DBP_OK) {
        dbp_pool_conn_opened_locked(pool, conn, handle, dbp_now_ns());
    } else {
        pool->stats.failed_total++;
        conn->broken = 1;
    }
    pthread_mutex_unlock(&mgr->mu);
    return rc;
}

/* Drops the connection's handle, keeping its slot, before reopening it. */
static void close_handle(dbp_pool *pool, dbp_conn *conn)
{
    pthread_mutex_lock(&pool->mgr->mu);
    void *handle = conn->handle;
    conn->handle = NULL;
    pool->stats.closed_total++;
    pthread_mutex_unlock(&pool->mgr->mu);
    pool->driver->disconnect(handle);
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
        close_handle(pool, conn);
        return open_conn(pool, conn, err);
    }
    int64_t validate_after = pool->opts.validate_after_ms;
    int usable = !pool->driver->is_usable || pool->driver->is_usable(conn->handle);
    int stale = ping_if_idle && validate_after >= 0 &&
                now - conn->last_used_ns >= MS_TO_NS(validate_after);
    if (!usable || stale) {
        dbp_error ping_err;
        if (!usable || pool->driver->ping(conn->handle, &ping_err) != DBP_OK) {
            pthread_mutex_lock(&pool->mgr->mu);
            pool->stats.validations_failed_total++;
            pthread_mutex_unlock(&pool->mgr->mu);
            close_handle(pool, conn);
            return open_conn(pool, conn, err);
        }
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
    rc = pool->driver->probe_role(conn->handle, &probe->role, &probe->lag_s, &req->error);
    if (rc != DBP_OK && !opened) {
        close_handle(pool, conn);
        rc = open_conn(pool, conn, &req->error);
        if (rc == DBP_OK)
            rc = pool->driver->probe_role(conn->handle, &probe->role, &probe->lag_s, &req->error);
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
    drv->cursor_close(h);
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
            drv->cursor_close(conn->handle);
            conn->has_cursor = 0;
        }
        return rc;
    }
    default: /* DBP_OP_CURSOR_CLOSE */
        if (conn->has_cursor)
            drv->cursor_close(conn->handle);
        conn->has_cursor = 0;
        return DBP_OK;
    }
}

/* Leaves a connection that goes back to the pool as a new one would be. */
static void reset_conn(const dbp_driver *drv, dbp_conn *conn)
{
    if (conn->has_cursor) {
        drv->cursor_close(conn->handle);
        conn->has_cursor = 0;
    }
    if (drv->in_transaction(conn->handle)) {
        dbp_error ignored;
        if (drv->rollback(conn->handle, &ignored) != DBP_OK)
            conn->broken = 1;
    }
}

static int run_op(dbp_pool *pool, dbp_request *req)
{
    const dbp_driver *drv = pool->driver;
    void *h = req->conn->handle;
    dbp_exec_ctx ctx = {.cancelled = &req->cancelled,
                        .copy_mode = req->copy_mode,
                        .notice = dbp_request_add_notice,
                        .notice_arg = req};
    dbp_error *err = &req->error;
    const char *sql = req->sql ? req->sql : "";
    switch ((int)req->op) {
    case DBP_OP_WARM_UP:
    case DBP_OP_PROBE:
        return DBP_OK;
    case DBP_OP_RESET_LEASE:
        reset_conn(drv, req->conn);
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
        return drv->bulk_load(h, sql, &req->input, &ctx, &req->rows_affected, err);
    case DBP_OP_BEGIN:
        return drv->begin(h, sql, err);
    case DBP_OP_COMMIT:
        return drv->commit(h, err);
    case DBP_OP_ROLLBACK:
        return drv->rollback(h, err);
    default:
        return run_cursor_op(drv, req, &ctx);
    }
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
        rc = dbp_error_set(&req->error, DBP_E_CANCELLED, 0, NULL, "cancelled");
    if (rc == DBP_OK) {
        rc = run_op(pool, req);
        if (rc == DBP_E_NETWORK && topology && dbp_failover_after_broken_conn(pool, req))
            return; /* a read, back in the wait queue */
        if (rc == DBP_E_NETWORK)
            rc = dbp_failover_classify_lost(req);
    }
    req->status = rc;
    if (rc != DBP_OK && req->lease_out) {
        dbp_free(req->lease_out);
        req->lease_out = NULL;
    }
    if (rc == DBP_E_NETWORK || rc == DBP_E_OUTCOME_UNKNOWN)
        conn->broken = 1;

    int keeps_conn = lease || (req->op == DBP_OP_LEASE && rc == DBP_OK);
    if (!keeps_conn && conn->handle && !conn->broken)
        reset_conn(pool->driver, conn);

    dbp_conn *to_close = NULL;
    int release_lease = 0;
    dbp_manager *mgr = pool->mgr;
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
    pthread_mutex_unlock(&mgr->mu);
    dbp_request_complete(req, to_close, dead);
    if (release_lease)
        dbp_lease_return(lease);
}

static void *worker_main(void *arg)
{
    dbp_manager *mgr = arg;
    pthread_mutex_lock(&mgr->mu);
    for (;;) {
        while (!mgr->work.head && !mgr->closing)
            pthread_cond_wait(&mgr->work_cv, &mgr->mu);
        dbp_request *req = dbp_request_list_pop(&mgr->work);
        if (!req)
            break; /* closing and nothing left to run */
        mgr->idle_workers--;
        req->state = REQ_RUNNING;
        req->conn->running = req;
        pthread_mutex_unlock(&mgr->mu);
        run_request(req);
        pthread_mutex_lock(&mgr->mu);
        mgr->idle_workers++;
    }
    pthread_mutex_unlock(&mgr->mu);
    return NULL;
}
