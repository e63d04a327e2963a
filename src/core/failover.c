/* failover.c - what happens to a request when its endpoint fails. The
 * rule: a request runs again only when that cannot repeat a write. It was
 * never sent (connecting failed, or the endpoint turned out to have the
 * wrong role), or it is a query that cannot have written (marked read-only,
 * run on a replica, or failed on a stale idle connection before the server
 * answered anything). A write whose connection broke after it was sent
 * fails with DBP_E_OUTCOME_UNKNOWN and is never retried. */
#include <stdio.h>

#include "core.h"
#include "error.h"

/* A read whose connection broke runs again at most this many times. */
#define MAX_READ_RETRIES 3

static int is_reachability_error(int rc)
{
    return rc == DBP_E_NETWORK || rc == DBP_E_TIMEOUT;
}

/* A read runs again elsewhere when that cannot repeat a write: marked
 * read-only or run on a replica (pools of several endpoints). Any pool runs
 * a read once more when its connection came from idle and broke before the
 * server answered anything: the server had closed it (a restart). */
static int may_retry_read(const dbp_request *req, const dbp_endpoint *ep)
{
    if (req->op != DBP_OP_QUERY || req->on_lease || req->attempts >= MAX_READ_RETRIES)
        return 0;
    if (dbp_pool_has_topology(ep->pool) && (req->readonly == 1 || ep->role == DBP_ROLE_REPLICA))
        return 1;
    return req->readonly != 0 && req->attempts == 0 && req->replied == 0 && req->conn->reused;
}

int dbp_request_may_have_written(const dbp_request *req)
{
    if (req->on_lease) /* a transaction that breaks before COMMIT is rolled back */
        return req->op == DBP_OP_COMMIT || (req->op == DBP_OP_COMMAND && req->readonly != 1);
    return (req->op == DBP_OP_COMMAND && req->readonly != 1) || req->op == DBP_OP_EXECUTE || req->op == DBP_OP_EXECUTE_MANY ||
           req->op == DBP_OP_WRITE_FRAME || (req->op == DBP_OP_QUERY && req->readonly == 0);
}

static int route_fits(const dbp_pool *pool, const dbp_request *req, const dbp_endpoint *ep)
{
    dbp_endpoint *cands[pool->n_endpoints];
    int n = dbp_route_candidates(pool, req, cands);
    for (int i = 0; i < n; i++)
        if (cands[i] == ep)
            return 1;
    return 0;
}

/* Gives the connection back and puts the request back in the wait queue;
 * not when it was cancelled meanwhile (it then finishes as usual). */
static int requeue_locked(dbp_pool *pool, dbp_request *req, dbp_conn **to_close)
{
    if (atomic_load(&req->cancelled))
        return 0;
    dbp_conn *closed = dbp_pool_return_conn_locked(pool, req->conn);
    if (closed) {
        closed->next = *to_close;
        *to_close = closed;
    }
    dbp_pool_requeue_locked(pool, req);
    return 1;
}

int dbp_failover_after_connect(dbp_pool *pool, dbp_request *req, int rc,
                               const dbp_probe_result *probe)
{
    dbp_conn *conn = req->conn;
    dbp_endpoint *ep = conn->endpoint;
    dbp_conn *to_close = NULL;
    int requeued = 0;
    pthread_mutex_lock(&pool->mgr->mu);
    if ((int)req->op == DBP_OP_PROBE) {
        ep->probing = 0;
        dbp_janitor_wake_locked(pool->mgr); /* it skipped `ep` while probing: reschedule */
    }
    if (rc != DBP_OK)
        conn->broken = 1;
    if (probe->ok)
        dbp_endpoint_probed_locked(ep, conn, probe->role, probe->lag_s, &to_close);
    else if (rc != DBP_OK && rc != DBP_E_CANCELLED && rc != DBP_E_NOMEM)
        dbp_endpoint_failed_locked(ep, &req->error, &to_close);
    int wrong_place = rc == DBP_OK ? !route_fits(pool, req, ep) : is_reachability_error(rc);
    if (!DBP_OP_IS_INTERNAL(req->op) && wrong_place)
        requeued = requeue_locked(pool, req, &to_close);
    pthread_mutex_unlock(&pool->mgr->mu);
    dbp_conns_destroy(to_close);
    return requeued;
}

int dbp_failover_after_broken_conn(dbp_pool *pool, dbp_request *req)
{
    dbp_conn *conn = req->conn;
    dbp_endpoint *ep = conn->endpoint;
    dbp_conn *to_close = NULL;
    int requeued = 0;
    pthread_mutex_lock(&pool->mgr->mu);
    dbp_endpoint_broke_locked(ep, &req->error);
    if (may_retry_read(req, ep)) {
        conn->broken = 1;
        requeued = requeue_locked(pool, req, &to_close);
    }
    pthread_mutex_unlock(&pool->mgr->mu);
    dbp_conns_destroy(to_close);
    return requeued;
}

int dbp_failover_after_wrong_role(dbp_pool *pool, dbp_request *req)
{
    dbp_conn *conn = req->conn;
    dbp_conn *to_close = NULL;
    int requeued = 0;
    pthread_mutex_lock(&pool->mgr->mu);
    if (dbp_pool_has_topology(pool) && !req->on_lease && req->replied == 0 &&
        req->attempts < MAX_READ_RETRIES) {
        /* the server said what it is: a replica, from now on (a probe confirms it) */
        dbp_endpoint_probed_locked(conn->endpoint, NULL, DBP_ROLE_REPLICA, -1, &to_close);
        conn->endpoint->next_probe_ns = dbp_now_ns();
        dbp_janitor_wake_locked(pool->mgr);
        requeued = requeue_locked(pool, req, &to_close);
    }
    pthread_mutex_unlock(&pool->mgr->mu);
    dbp_conns_destroy(to_close);
    return requeued;
}

int dbp_failover_classify_lost(dbp_request *req)
{
    if (!dbp_request_may_have_written(req))
        return DBP_E_NETWORK;
    char cause[DBP_ERROR_MESSAGE_SIZE];
    snprintf(cause, sizeof cause, "%s", req->error.message);
    /* 08007: transaction resolution unknown */
    return dbp_error_set(&req->error, DBP_E_OUTCOME_UNKNOWN, req->error.native_code, "08007",
                         "the connection to %s broke after the statement was sent, so it may "
                         "or may not have taken effect; it was not retried (%.700s)",
                         req->conn->endpoint->label, cause);
}
