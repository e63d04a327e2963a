/* pool.c - one endpoint's connections: the FIFO wait queue, handing
 * connections to waiters, returning them, and keeping the pool within its
 * size, idle and lifetime limits. Every function here runs under mgr->mu;
 * connecting and closing happen on workers or after unlocking. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

#define MS_TO_NS(ms) ((int64_t)(ms) * 1000000)

/* ---- intrusive lists ---------------------------------------------------- */

void dbp_request_list_push(request_list *l, dbp_request *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->count++;
}

void dbp_request_list_remove(request_list *l, dbp_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->count--;
}

dbp_request *dbp_request_list_pop(request_list *l)
{
    dbp_request *r = l->head;
    if (r)
        dbp_request_list_remove(l, r);
    return r;
}

void dbp_conn_list_push_front(conn_list *l, dbp_conn *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head)
        l->head->prev = c;
    else
        l->tail = c;
    l->head = c;
    l->count++;
}

void dbp_conn_list_remove(conn_list *l, dbp_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->count--;
}

/* ---- lifecycle ------------------------------------------------------------ */

int dbp_pool_new(dbp_manager *mgr, const char *id, const dbp_driver *driver, void *config,
                 const dbp_pool_options *opts, dbp_pool **out, dbp_error *err)
{
    dbp_pool *pool = dbp_calloc(1, sizeof *pool);
    if (!pool)
        return dbp_error_nomem(err);
    pool->id = dbp_strdup(id);
    if (!pool->id) {
        dbp_free(pool);
        return dbp_error_nomem(err);
    }
    pool->mgr = mgr;
    pthread_mutex_lock(&mgr->mu);
    mgr->refs++;
    pthread_mutex_unlock(&mgr->mu);
    pool->refs = 1;
    pool->driver = driver;
    pool->config = config;
    pool->opts = *opts;
    pool->rng = (unsigned)(uintptr_t)pool ^ (unsigned)dbp_now_ns();
    *out = pool;
    return DBP_OK;
}

dbp_pool *dbp_pool_unref_locked(dbp_pool *pool)
{
    return --pool->refs == 0 ? pool : NULL;
}

void dbp_pool_destroy(dbp_pool *pool)
{
    if (!pool)
        return;
    dbp_manager *mgr = pool->mgr;
    pool->driver->free_config(pool->config);
    dbp_free(pool->id);
    dbp_free(pool);
    dbp_manager_unref(mgr);
}

void dbp_conns_destroy(dbp_conn *chain)
{
    while (chain) {
        dbp_conn *next = chain->next;
        if (chain->handle)
            chain->driver->disconnect(chain->handle);
        dbp_free(chain);
        chain = next;
    }
}

static int pool_size(const dbp_pool *pool)
{
    return pool->idle.count + pool->busy.count;
}

/* A random retirement time in [lifetime * (1 - jitter), lifetime] from now,
 * so connections opened together do not all close together. */
static int64_t retire_time(dbp_pool *pool, int64_t now)
{
    if (pool->opts.max_lifetime_ms <= 0)
        return INT64_MAX;
    int64_t lifetime = MS_TO_NS(pool->opts.max_lifetime_ms);
    double jitter = pool->opts.lifetime_jitter;
    if (jitter > 0) {
        pool->rng = pool->rng * 1103515245u + 12345u;
        double r = (double)((pool->rng >> 8) & 0xffff) / 65536.0;
        lifetime -= (int64_t)((double)lifetime * jitter * r);
    }
    return now + lifetime;
}

/* A new, not yet connected slot counted in the pool's size. */
static dbp_conn *conn_slot_new(dbp_pool *pool)
{
    dbp_conn *conn = dbp_calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->pool = pool;
    conn->driver = pool->driver;
    conn->state = CONN_OPENING;
    conn->retire_ns = INT64_MAX;
    dbp_conn_list_push_front(&pool->busy, conn);
    pool->opening++;
    return conn;
}

void dbp_pool_conn_opened_locked(dbp_pool *pool, dbp_conn *conn, void *handle, int64_t now)
{
    conn->handle = handle;
    conn->created_ns = now;
    conn->retire_ns = retire_time(pool, now);
    conn->last_used_ns = now;
    if (conn->state == CONN_OPENING) {
        conn->state = CONN_BUSY;
        pool->opening--;
    }
    pool->stats.created_total++;
}

/* ---- waiting and dispatch ------------------------------------------------ */

int dbp_pool_submit_locked(dbp_pool *pool, dbp_request *req, dbp_error *err)
{
    if (pool->closed)
        return dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "pool '%s' is closed", pool->id);
    if (pool->opts.max_waiting > 0 && pool->waiting.count >= pool->opts.max_waiting) {
        pool->stats.rejected_total++;
        return dbp_error_set(err, DBP_E_POOL_FULL, 0, NULL,
                             "pool '%s' has %d callers waiting for a connection, the limit "
                             "(max_waiting); retry later or raise max_waiting",
                             pool->id, pool->waiting.count);
    }
    int64_t now = dbp_now_ns();
    req->pool = pool;
    pool->refs++;
    req->state = REQ_WAITING;
    req->enqueued_ns = now;
    req->deadline_ns = pool->opts.acquire_timeout_ms > 0
                           ? now + MS_TO_NS(pool->opts.acquire_timeout_ms)
                           : INT64_MAX;
    int was_empty = pool->waiting.count == 0;
    dbp_request_list_push(&pool->waiting, req);
    dbp_pool_dispatch_locked(pool);
    if (was_empty && req->state == REQ_WAITING)
        dbp_janitor_wake_locked(pool->mgr); /* a new earliest deadline */
    return DBP_OK;
}

static void assign(dbp_pool *pool, dbp_request *req, dbp_conn *conn, int64_t now)
{
    dbp_request_list_remove(&pool->waiting, req);
    if (conn->state == CONN_IDLE) {
        dbp_conn_list_remove(&pool->idle, conn);
        dbp_conn_list_push_front(&pool->busy, conn);
        conn->state = CONN_BUSY;
    }
    req->conn = conn;
    if (req->op != DBP_OP_WARM_UP) {
        pool->stats.acquired_total++;
        pool->stats.acquire_wait_ms_total += (double)(now - req->enqueued_ns) / 1e6;
    }
    dbp_worker_enqueue_locked(pool->mgr, req);
}

void dbp_pool_dispatch_locked(dbp_pool *pool)
{
    int64_t now = dbp_now_ns();
    while (pool->waiting.head) {
        dbp_request *req = pool->waiting.head;
        if (pool->idle.head) {
            assign(pool, req, pool->idle.head, now);
        } else if (pool_size(pool) < pool->opts.max_size) {
            dbp_conn *slot = conn_slot_new(pool);
            if (!slot)
                return; /* out of memory: the janitor retries or the wait times out */
            assign(pool, req, slot, now);
        } else {
            return;
        }
    }
}

/* ---- returning --------------------------------------------------------- */

static void conn_forget(dbp_pool *pool, dbp_conn *conn)
{
    if (conn->state == CONN_IDLE) {
        dbp_conn_list_remove(&pool->idle, conn);
    } else {
        if (conn->state == CONN_OPENING)
            pool->opening--;
        dbp_conn_list_remove(&pool->busy, conn);
    }
    if (conn->handle)
        pool->stats.closed_total++;
}

dbp_conn *dbp_pool_return_conn_locked(dbp_pool *pool, dbp_conn *conn)
{
    int64_t now = dbp_now_ns();
    dbp_conn *to_close = NULL;
    conn->running = NULL;
    if (pool->closed || conn->broken || !conn->handle || now >= conn->retire_ns) {
        conn_forget(pool, conn);
        conn->next = NULL;
        to_close = conn;
    } else {
        dbp_conn_list_remove(&pool->busy, conn);
        conn->state = CONN_IDLE;
        conn->last_used_ns = now;
        dbp_conn_list_push_front(&pool->idle, conn);
    }
    dbp_pool_dispatch_locked(pool);
    return to_close;
}

/* ---- maintenance -------------------------------------------------------- */

/* Queues warm-up requests until min_size connections exist or are opening. */
static void keep_min_size(dbp_pool *pool)
{
    while (!pool->closed && pool_size(pool) < pool->opts.min_size &&
           pool->waiting.count == 0) {
        dbp_request *warm = dbp_request_new_internal(DBP_OP_WARM_UP, pool->mgr);
        if (!warm)
            return;
        warm->pool = pool;
        pool->refs++;
        warm->state = REQ_WAITING;
        warm->enqueued_ns = dbp_now_ns();
        warm->deadline_ns = INT64_MAX;
        dbp_request_list_push(&pool->waiting, warm);
        dbp_pool_dispatch_locked(pool);
    }
}

int64_t dbp_pool_maintain_locked(dbp_pool *pool, int64_t now, request_list *expired,
                                 dbp_conn **to_close)
{
    while (pool->waiting.head && pool->waiting.head->deadline_ns <= now) {
        dbp_request *req = pool->waiting.head;
        dbp_request_list_remove(&pool->waiting, req);
        req->status = dbp_error_set(
            &req->error, DBP_E_TIMEOUT, 0, NULL,
            "timed out after %lld ms waiting for a connection from pool '%s' "
            "(size %d of max_size %d, %d in use, %d waiting)",
            (long long)pool->opts.acquire_timeout_ms, pool->id, pool_size(pool),
            pool->opts.max_size, pool->busy.count, pool->waiting.count);
        pool->stats.timeouts_total++;
        req->state = REQ_FINISHING;
        dbp_request_list_push(expired, req);
    }

    /* Retire idle connections past their lifetime, or idle too long while
     * the pool is above min_size; the least recently used go first. */
    dbp_conn *conn = pool->idle.tail;
    while (conn) {
        dbp_conn *prev = conn->prev;
        int too_old = now >= conn->retire_ns;
        int idle_too_long = pool->opts.idle_timeout_ms > 0 &&
                            now - conn->last_used_ns >= MS_TO_NS(pool->opts.idle_timeout_ms) &&
                            pool_size(pool) > pool->opts.min_size;
        if (too_old || idle_too_long) {
            conn_forget(pool, conn);
            conn->next = *to_close;
            *to_close = conn;
        }
        conn = prev;
    }
    dbp_pool_dispatch_locked(pool); /* retries after an allocation failure */
    keep_min_size(pool);

    int64_t next = now + MS_TO_NS(1000);
    if (pool->waiting.head && pool->waiting.head->deadline_ns < next)
        next = pool->waiting.head->deadline_ns;
    return next;
}

void dbp_pool_close_locked(dbp_pool *pool, request_list *failed, dbp_conn **to_close)
{
    pool->closed = 1;
    dbp_request *req;
    while ((req = dbp_request_list_pop(&pool->waiting))) {
        req->status = dbp_error_set(&req->error, DBP_E_CLOSED, 0, NULL,
                                    "pool '%s' was closed while waiting for a connection",
                                    pool->id);
        req->state = REQ_FINISHING;
        dbp_request_list_push(failed, req);
    }
    dbp_conn *conn;
    while ((conn = pool->idle.head)) {
        conn_forget(pool, conn);
        conn->next = *to_close;
        *to_close = conn;
    }
}
