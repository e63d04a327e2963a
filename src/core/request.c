/* request.c - a unit of work: its lifecycle, waiting, cancellation and
 * outcome. A request is referenced by its creator and, while submitted, by
 * the library (that reference moves into the completion queue if any). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

int dbp_request_new(dbp_request **out, dbp_op op, const char *sql, size_t sql_len,
                    dbp_params *params, dbp_error *err)
{
    *out = NULL;
    if (op < DBP_OP_QUERY || op > DBP_OP_COMMAND) {
        dbp_params_free(params);
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "unknown operation %d", (int)op);
    }
    if (sql && memchr(sql, '\0', sql_len)) {
        dbp_params_free(params);
        return dbp_error_set(err, DBP_E_MISUSE, 0, "42601",
                             "the SQL text (or table name) contains a NUL byte at offset %zu; no "
                             "engine can run it",
                             (size_t)((const char *)memchr(sql, '\0', sql_len) - sql));
    }
    dbp_request *req = dbp_calloc(1, sizeof *req);
    char *copy = sql ? dbp_strndup(sql, sql_len) : NULL;
    if (!req || (sql && !copy)) {
        dbp_free(req);
        dbp_free(copy);
        dbp_params_free(params);
        return dbp_error_nomem(err);
    }
    atomic_init(&req->refs, 1);
    atomic_init(&req->cancelled, 0);
    req->op = op;
    req->sql = copy;
    req->sql_len = sql ? sql_len : 0;
    req->params = params;
    req->batch_rows = 65536;
    req->readonly = -1;
    req->call_deadline_ns = req->answer_by_ns = INT64_MAX;
    pthread_mutex_init(&req->done_mu, NULL);
    pthread_cond_init(&req->done_cv, NULL);
    *out = req;
    return DBP_OK;
}

dbp_request *dbp_request_new_internal(int op, dbp_manager *mgr)
{
    dbp_request *req = dbp_calloc(1, sizeof *req);
    if (!req)
        return NULL;
    atomic_init(&req->refs, 1);
    atomic_init(&req->cancelled, 0);
    req->op = op;
    req->mgr = mgr;
    req->call_deadline_ns = req->answer_by_ns = INT64_MAX;
    pthread_mutex_init(&req->done_mu, NULL);
    pthread_cond_init(&req->done_cv, NULL);
    return req;
}

void dbp_request_ref(dbp_request *req) { atomic_fetch_add(&req->refs, 1); }

void dbp_request_bind_locked(dbp_request *req, dbp_manager *mgr, dbp_completion_queue *cq)
{
    dbp_request_ref(req); /* the in-flight reference */
    req->mgr = mgr;
    req->cq = cq;
    /* Held until the request is freed, not just until it finishes:
     * dbp_request_cancel takes mgr->mu from any thread, and the request can
     * finish at that moment, its pool go and with it the manager's last
     * other holder. */
    mgr->refs++;
}

void dbp_request_unbind_locked(dbp_request *req)
{
    req->mgr->refs--; /* never the last: the caller is inside dbp_submit */
    req->mgr = NULL;
    req->cq = NULL;
    atomic_fetch_sub(&req->refs, 1); /* the caller still holds its own */
}

void dbp_request_unref(dbp_request *req)
{
    if (!req || atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    dbp_free(req->sql);
    dbp_free(req->notices);
    if (req->input.release)
        req->input.release(&req->input);
    dbp_params_free(req->params);
    dbp_result_free(req->result);
    dbp_reply_free(req->reply);
    if (req->lease_out)
        dbp_lease_release(req->lease_out);
    /* the manager reference of dbp_request_bind_locked; internal requests
     * hold none, and a forked child leaves the parent's manager alone */
    if (req->mgr && !DBP_OP_IS_INTERNAL(req->op) && !dbp_manager_forked(req->mgr))
        dbp_manager_unref(req->mgr);
    pthread_mutex_destroy(&req->done_mu);
    pthread_cond_destroy(&req->done_cv);
    dbp_free(req);
}

void dbp_request_set_timeout(dbp_request *req, int64_t timeout_ms)
{
    req->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void dbp_request_set_batch_rows(dbp_request *req, int64_t rows)
{
    req->batch_rows = rows > 0 ? rows : 1;
}

void dbp_request_set_input(dbp_request *req, struct ArrowArrayStream *in)
{
    if (req->input.release)
        req->input.release(&req->input);
    req->input = *in;
    in->release = NULL;
}

void dbp_request_set_copy_mode(dbp_request *req, dbp_copy_mode mode) { req->copy_mode = mode; }

const char *dbp_request_notices(const dbp_request *req)
{
    return req->notices && !req->answered ? req->notices : "";
}

void dbp_request_add_notice(void *arg, const char *severity, const char *text)
{
    dbp_request *req = arg;
    size_t add = strlen(severity) + strlen(text) + 3;
    if (req->notices_len + add > 65536)
        return; /* a flood of notices is cut, not the statement */
    char *grown = dbp_realloc(req->notices, req->notices_len + add + 1);
    if (!grown)
        return;
    req->notices = grown;
    req->notices_len += (size_t)snprintf(grown + req->notices_len, add + 1, "%s: %s\n", severity,
                                         text);
}

void dbp_request_set_user_data(dbp_request *req, void *user_data) { req->user_data = user_data; }
void dbp_request_set_readonly(dbp_request *req, int readonly)
{
    req->readonly = readonly > 0 ? 1 : readonly == 0 ? 0 : -1;
}
void dbp_request_set_inline(dbp_request *req, int allowed) { req->inline_allowed = allowed != 0; }
void *dbp_request_user_data(const dbp_request *req) { return req->user_data; }

void dbp_request_count_locked(dbp_pool *pool, const dbp_request *req, int status)
{
#ifdef DBP_NO_METRICS /* nothing to count (metrics.h): skip the row totals too */
    (void)pool;
    (void)req;
    (void)status;
    return;
#endif
    if (DBP_OP_IS_INTERNAL(req->op))
        return;
    dbp_counter_inc(&pool->m.requests[status >= 0 && status < DBP_CATEGORY_SLOTS ? status
                                                                                 : DBP_E_PROTOCOL]);
    if (status != DBP_OK || req->answered)
        return;
    if (req->op == DBP_OP_QUERY && req->result) {
        dbp_histogram_observe(&pool->m.result_rows, dbp_result_total_rows(req->result));
        dbp_histogram_observe(&pool->m.result_bytes, (int64_t)dbp_result_total_memory(req->result));
    } else if (req->op == DBP_OP_CURSOR_FETCH && req->result) {
        dbp_counter_add(&pool->m.bulk_rows_out, (uint64_t)dbp_result_total_rows(req->result));
        dbp_counter_add(&pool->m.bulk_bytes_out, (uint64_t)dbp_result_total_memory(req->result));
    }
    else if (req->op == DBP_OP_WRITE_FRAME && req->rows_affected > 0)
        dbp_counter_add(&pool->m.bulk_rows_in, (uint64_t)req->rows_affected);
}

dbp_pool *dbp_request_detach_locked(dbp_request *req)
{
    dbp_pool *dead = NULL;
    dbp_pool *pool = req->pool;
    if (pool) {
        if (!req->answered) /* else counted when its caller was answered */
            dbp_request_count_locked(pool, req, req->status);
        req->pool = NULL;
        dead = dbp_pool_unref_locked(pool);
    }
    req->state = REQ_DONE;
    req->conn = NULL;
    return dead;
}

void dbp_request_finish(dbp_request *req, dbp_conn *to_close)
{
    dbp_manager *mgr = req->mgr;
    pthread_mutex_lock(&mgr->mu);
    dbp_pool *dead = dbp_request_detach_locked(req);
    pthread_mutex_unlock(&mgr->mu);
    dbp_request_complete(req, to_close, dead);
}

/* Marks the request done for its caller and, when it has a completion
 * queue, pushes it there with a reference of the queue's own. The push
 * happens under done_mu, before anyone can see `done`: a caller who saw its
 * requests done (dbp_request_wait, dbp_request_is_done) finds each of them on
 * its queue already and may drain and free the queue. (Pushing after
 * publishing `done` let such a caller free the queue under the push.) The
 * caller of this function holds a reference across it: a drain may drop the
 * queue's reference at once. */
static void signal_done(dbp_request *req)
{
    pthread_mutex_lock(&req->done_mu);
    req->done = 1;
    if (req->cq) {
        dbp_request_ref(req);
        dbp_completion_queue_push(req->cq, req);
    }
    pthread_cond_broadcast(&req->done_cv);
    pthread_mutex_unlock(&req->done_mu);
}

void dbp_request_answer_locked(dbp_request *req) { signal_done(req); }

void dbp_request_complete(dbp_request *req, dbp_conn *to_close, dbp_pool *dead)
{
    dbp_conns_destroy(to_close);
    dbp_pool_destroy(dead);
    if (!req->answered) /* else its caller was answered already */
        signal_done(req);
    dbp_request_unref(req); /* the in-flight reference */
}

int dbp_request_wait(dbp_request *req, int64_t timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    int rc = DBP_OK;
    pthread_mutex_lock(&req->done_mu);
    while (!req->done) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&req->done_cv, &req->done_mu);
        } else if (pthread_cond_timedwait(&req->done_cv, &req->done_mu, &deadline) ==
                   ETIMEDOUT) {
            rc = req->done ? DBP_OK : DBP_E_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&req->done_mu);
    return rc;
}

int dbp_request_is_done(const dbp_request *req)
{
    dbp_request *r = (dbp_request *)req; /* the lock is not part of the value */
    pthread_mutex_lock(&r->done_mu);
    int done = r->done;
    pthread_mutex_unlock(&r->done_mu);
    return done;
}

void dbp_request_cancel(dbp_request *req)
{
    dbp_manager *mgr = req->mgr; /* alive: the request holds a reference */
    if (!mgr || dbp_request_is_done(req)) {
        atomic_store(&req->cancelled, 1); /* not submitted yet, or finished: harmless */
        return;
    }
    int dequeued = 0;
    dbp_pool *dead = NULL;
    pthread_mutex_lock(&mgr->mu);
    if (req->state == REQ_WAITING) {
        dbp_request_list_remove(&req->pool->waiting, req);
        req->status = dbp_error_set(&req->error, DBP_E_CANCELLED, 0, NULL,
                                    "cancelled while waiting for a connection");
        dead = dbp_request_detach_locked(req); /* counted as it leaves the queue */
        dequeued = 1;
    } else if (req->state == REQ_QUEUED || req->state == REQ_RUNNING) {
        dbp_request_stop_locked(req, STOP_CANCEL, dbp_now_ns());
    }
    pthread_mutex_unlock(&mgr->mu);
    if (dequeued)
        dbp_request_complete(req, NULL, dead);
}


/* Once a request is done its caller reads the outcome. A request answered
 * early has its worker still writing the other fields, so its caller reads
 * only early_status and early_error. */
int dbp_request_status(const dbp_request *req, dbp_error *err)
{
    if (!dbp_request_is_done(req))
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "the request has not completed");
    if (err)
        *err = req->answered ? req->early_error : req->error;
    return req->answered ? req->early_status : req->status;
}

int64_t dbp_request_rows_affected(const dbp_request *req)
{
    return req->answered ? 0 : req->rows_affected;
}
int dbp_request_cursor_done(const dbp_request *req) { return req->answered || req->cursor_done; }

int dbp_request_take_result(dbp_request *req, struct ArrowArrayStream *out)
{
    if (!dbp_request_is_done(req) || req->answered || !req->result)
        return DBP_E_MISUSE;
    dbp_result *res = req->result;
    req->result = NULL;
    return dbp_result_export(res, out, NULL);
}

dbp_reply *dbp_request_take_reply(dbp_request *req)
{
    if (!dbp_request_is_done(req) || req->answered)
        return NULL;
    dbp_reply *reply = req->reply;
    req->reply = NULL;
    return reply;
}

dbp_lease *dbp_request_take_lease(dbp_request *req)
{
    if (!dbp_request_is_done(req) || req->answered)
        return NULL;
    dbp_lease *lease = req->lease_out;
    req->lease_out = NULL;
    return lease;
}
