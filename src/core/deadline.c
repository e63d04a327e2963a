/* deadline.c - stopping running requests and answering their callers on
 * time.
 *
 * A request's deadline (its own timeout or the pool's query_timeout, from
 * submission) covers its wait for a connection, where pool.c expires it,
 * and its engine call. When the deadline passes during the call, or the
 * caller cancels, or the pool closes, the request is stopped: the driver is
 * interrupted (it asks the server to cancel and gives it cancel_grace to
 * confirm), and if the driver call has not returned within ANSWER_SLACK the
 * caller is answered anyway. The worker keeps the connection until the
 * driver returns; the connection goes back to the pool only if the driver
 * left it clean. So no engine, however stuck, holds a caller past its
 * deadline by more than ANSWER_SLACK. Everything here runs under mgr->mu. */
#include <stdio.h>

#include "core.h"
#include "error.h"

/* How long a stopped request's driver call may take before its caller is
 * answered without it (capped by the pool's cancel_grace). */
#define ANSWER_SLACK_NS MS_TO_NS(500)

void dbp_deadline_start_locked(dbp_pool *pool, dbp_request *req, int64_t now)
{
    int64_t ms = req->timeout_ms > 0 ? req->timeout_ms : dbp_pool_opts(pool)->query_timeout_ms;
    if (DBP_OP_IS_INTERNAL(req->op))
        ms = 0; /* the library's own work is bounded by connect_timeout */
    req->call_deadline_ns = ms > 0 ? now + MS_TO_NS(ms) : INT64_MAX;
    req->answer_by_ns = INT64_MAX;
    if (req->call_deadline_ns != INT64_MAX)
        dbp_janitor_wake_by_locked(pool->mgr, req->call_deadline_ns);
}

void dbp_request_stop_locked(dbp_request *req, stop_reason why, int64_t now)
{
    dbp_pool *pool = req->pool;
    if (req->stop != STOP_NONE || !pool)
        return;
    req->stop = why;
    atomic_store(&req->cancelled, 1);
    int64_t grace = MS_TO_NS(dbp_pool_opts(pool)->cancel_grace_ms);
    req->answer_by_ns = now + (grace < ANSWER_SLACK_NS ? grace : ANSWER_SLACK_NS);
    dbp_conn *conn = req->conn;
    if (req->state == REQ_RUNNING && conn && conn->running == req && conn->handle)
        pool->driver->interrupt(conn->handle);
    dbp_janitor_wake_by_locked(pool->mgr, req->answer_by_ns);
}

/* The outcome a stopped request's caller gets. */
static int stopped_error(dbp_request *req, int early, dbp_error *err)
{
    const char *pending = early ? "; the engine has not confirmed the cancel yet, so its "
                                  "connection will be discarded"
                                : "";
    switch (req->stop) {
    case STOP_DEADLINE: {
        long long ms = req->timeout_ms > 0 ? req->timeout_ms : dbp_pool_opts(req->pool)->query_timeout_ms;
        const char *which = req->timeout_ms > 0 ? "timeout" : "query_timeout";
        if (early && dbp_request_may_have_written(req))
            return dbp_error_set(err, DBP_E_QUERY_TIMEOUT, 0, "08007",
                                 "the statement did not finish within %s=%lld ms; it was "
                                 "cancelled but the server has not confirmed it, so it may or "
                                 "may not take effect",
                                 which, ms);
        return dbp_error_set(err, DBP_E_QUERY_TIMEOUT, 0, "57014",
                             "the statement did not finish within %s=%lld ms and was "
                             "cancelled%s",
                             which, ms, pending);
    }
    case STOP_CLOSE:
        return dbp_error_set(err, DBP_E_CLOSED, 0, NULL,
                             "pool '%s' was closed while the statement ran; it was "
                             "cancelled%s",
                             req->pool->id, pending);
    default:
        return dbp_error_set(err, DBP_E_CANCELLED, 0, "57014", "cancelled%s", pending);
    }
}

int dbp_request_stopped_status(dbp_request *req, int rc)
{
    if (req->stop == STOP_NONE || (rc != DBP_E_CANCELLED && rc != DBP_E_QUERY_TIMEOUT))
        return rc;
    return stopped_error(req, 0, &req->error);
}

/* Answers the caller of a stopped request whose driver call has not
 * returned; the worker finishes it silently later. */
static void answer_early_locked(dbp_request *req)
{
    dbp_pool *pool = req->pool;
    req->early_status = stopped_error(req, 1, &req->early_error);
    req->answered = 1;
    if (req->on_lease)
        req->on_lease->lost = 1;
    if (!DBP_OP_IS_INTERNAL(req->op))
        dbp_counter_inc(&pool->m.abandoned);
    dbp_request_count_locked(pool, req, req->early_status);
    dbp_request_answer_locked(req);
}

int64_t dbp_pool_watch_running_locked(dbp_pool *pool, int64_t now, int force)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < pool->n_endpoints; i++) {
        for (dbp_conn *conn = pool->endpoints[i]->busy.head; conn; conn = conn->next) {
            dbp_request *req = conn->running;
            if (!req || req->answered)
                continue;
            if (req->stop == STOP_NONE && now >= req->call_deadline_ns)
                dbp_request_stop_locked(req, STOP_DEADLINE, now);
            if (force || now >= req->answer_by_ns) {
                answer_early_locked(req);
                continue;
            }
            int64_t due = req->stop != STOP_NONE ? req->answer_by_ns : req->call_deadline_ns;
            if (due < next)
                next = due;
        }
    }
    return next;
}

int dbp_pool_has_running_locked(const dbp_pool *pool)
{
    for (int i = 0; i < pool->n_endpoints; i++)
        for (const dbp_conn *conn = pool->endpoints[i]->busy.head; conn; conn = conn->next)
            if (conn->running)
                return 1;
    return 0;
}
