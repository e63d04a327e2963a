/* lease.c - a connection checked out of its pool across several requests,
 * for transactions and cursors. */
#include "alloc.h"
#include "core.h"
#include "error.h"

void dbp_lease_enqueue_locked(dbp_lease *lease, dbp_request *req)
{
    lease->busy = 1;
    req->pool = lease->pool;
    lease->pool->refs++;
    req->on_lease = lease;
    req->conn = lease->conn;
    dbp_worker_enqueue_locked(lease->pool->mgr, req);
}

int dbp_submit_on_lease(dbp_lease *lease, dbp_request *req, dbp_completion_queue *cq,
                        dbp_error *err)
{
    if (req->op == DBP_OP_LEASE)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "cannot lease from a lease");
    dbp_manager *mgr = lease->pool->mgr;
    pthread_mutex_lock(&mgr->mu);
    int rc = DBP_OK, done_now = 0;
    if (req->state != REQ_NEW)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "the request was submitted already");
    else if (lease->lost && (req->op == DBP_OP_ROLLBACK || req->op == DBP_OP_CURSOR_CLOSE))
        done_now = 1; /* the discarded connection takes the transaction and cursor along */
    else if (lease->lost)
        rc = dbp_error_set(err, DBP_E_NETWORK, 0, "08003",
                           "this connection was given up: an earlier statement on it did not "
                           "stop in time after a timeout or cancel, so the transaction is "
                           "rolled back");
    else if (lease->busy || lease->release_pending)
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                           "the connection is busy with another request; await it first");
    else if (mgr->closing || dbp_manager_forked(mgr))
        rc = dbp_error_set(err, DBP_E_CLOSED, 0, NULL,
                           "the pool manager is closed (or belongs to the parent process)");
    else if (lease->pool->closed)
        rc = dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "pool '%s' is closed", lease->pool->id);
    if (rc == DBP_OK)
        dbp_request_bind_locked(req, mgr, cq);
    if (rc == DBP_OK && done_now) {
        req->state = REQ_DONE;
    } else if (rc == DBP_OK) {
        req->pool = lease->pool; /* for the deadline's query_timeout */
        dbp_deadline_start_locked(lease->pool, req, dbp_now_ns());
        dbp_lease_enqueue_locked(lease, req);
    }
    pthread_mutex_unlock(&mgr->mu);
    if (rc == DBP_OK && done_now)
        dbp_request_complete(req, NULL, NULL);
    return rc;
}

int dbp_lease_in_transaction(const dbp_lease *lease)
{
    const dbp_conn *conn = lease->conn;
    return conn->handle && conn->pool->driver->in_transaction(conn->handle);
}

const char *dbp_lease_endpoint(const dbp_lease *lease)
{
    /* the label is written once when the endpoint is made: no lock needed */
    return lease->conn->endpoint->label;
}

void dbp_lease_return(dbp_lease *lease)
{
    dbp_pool *pool = lease->pool;
    dbp_conn *conn = lease->conn;
    if (lease->lost)
        conn->broken = 1;
    dbp_conn_reset(conn);
    pthread_mutex_lock(&pool->mgr->mu);
    dbp_conn *to_close = dbp_pool_return_conn_locked(pool, conn);
    dbp_pool *dead = dbp_pool_unref_locked(pool);
    pthread_mutex_unlock(&pool->mgr->mu);
    dbp_conns_destroy(to_close);
    dbp_pool_destroy(dead);
    dbp_free(lease);
}

/* Whether returning the connection needs the engine (a rollback, closing
 * a cursor, resetting the session), which waits on the network: then a
 * worker returns it, never the caller's thread (an event loop). */
static int needs_reset(const dbp_lease *lease)
{
    const dbp_conn *conn = lease->conn;
    const dbp_driver *drv = conn->driver;
    int mode = dbp_pool_opts(conn->pool)->reset_on_release;
    if (!conn->handle || conn->broken || lease->lost)
        return 0;
    return conn->has_cursor || drv->in_transaction(conn->handle) ||
           (drv->reset && (mode == DBP_RESET_ALWAYS ||
                           (mode == DBP_RESET_AUTO && drv->session_changed(conn->handle))));
}

void dbp_lease_release(dbp_lease *lease)
{
    if (!lease || dbp_manager_forked(lease->pool->mgr))
        return; /* a forked child must not touch the parent's connection */
    dbp_manager *mgr = lease->pool->mgr;
    pthread_mutex_lock(&mgr->mu);
    int on_worker = lease->busy; /* the running request's worker returns it */
    if (!on_worker && (mgr->closing || lease->pool->closed)) {
        lease->conn->broken = 1; /* closed, not reset: the server rolls back */
        lease->conn->close_why = DBP_CLOSE_POOL_CLOSED;
    } else if (!on_worker && needs_reset(lease)) {
        dbp_request *reset = dbp_request_new_internal(DBP_OP_RESET_LEASE, mgr);
        if (reset) { /* else: reset here, on the caller's thread */
            dbp_lease_enqueue_locked(lease, reset);
            on_worker = 1;
        }
    }
    if (on_worker)
        lease->release_pending = 1;
    pthread_mutex_unlock(&mgr->mu);
    if (!on_worker)
        dbp_lease_return(lease);
}
