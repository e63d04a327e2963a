/* pool.c - a logical pool's FIFO wait queue, handing its endpoints'
 * connections to waiters, returning them, and keeping each endpoint within
 * its size, idle and lifetime limits. Which endpoint serves a request is
 * route.c's decision; health and roles are endpoint.c's. Every function here
 * runs under mgr->mu; connecting and closing happen on workers or after
 * unlocking. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "error.h"


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

static void free_configs(const dbp_driver *driver, void **configs, int n)
{
    for (int i = 0; i < n; i++)
        if (configs[i])
            driver->free_config(configs[i]);
}

dbp_endpoint *dbp_endpoint_new(dbp_pool *pool, int index, void *config)
{
    dbp_endpoint *ep = dbp_calloc(1, sizeof *ep);
    if (ep && dbp_endpoint_counters_init(&ep->m) < 0) {
        dbp_free(ep);
        return NULL;
    }
    if (!ep)
        return NULL;
    ep->pool = pool;
    ep->index = index;
    ep->config = config;
    ep->lag_s = -1;
    if (pool->driver->describe)
        pool->driver->describe(config, ep->label, sizeof ep->label);
    if (!ep->label[0])
        snprintf(ep->label, sizeof ep->label, "endpoint %d", index + 1);
    return ep;
}

void dbp_endpoint_free(dbp_endpoint *ep)
{
    ep->pool->driver->free_config(ep->config);
    dbp_endpoint_counters_free(&ep->m);
    dbp_free(ep);
}

int dbp_pool_new(dbp_manager *mgr, const char *id, const dbp_driver *driver, void **configs,
                 int n_endpoints, const dbp_pool_options *opts, dbp_pool **out, dbp_error *err)
{
    dbp_pool *pool = dbp_calloc(1, sizeof *pool);
    if (pool) {
        pool->driver = driver;
        pool->endpoints = dbp_calloc((size_t)n_endpoints, sizeof *pool->endpoints);
        pool->id = dbp_strdup(id);
        atomic_init(&pool->live_opts, dbp_pool_options_copy(opts));
    }
    int ok = pool && pool->endpoints && pool->id && dbp_pool_opts(pool);
    for (int i = 0; ok && i < n_endpoints; i++) {
        dbp_endpoint *ep = dbp_endpoint_new(pool, i, configs[i]);
        if (!(ok = ep != NULL))
            break;
        configs[i] = NULL; /* the endpoint owns it now */
        pool->endpoints[i] = ep;
        pool->n_endpoints++;
    }
    if (!ok) {
        free_configs(driver, configs, n_endpoints);
        dbp_pool_destroy_unregistered(pool);
        return dbp_error_nomem(err);
    }
    pool->mgr = mgr;
    pthread_mutex_lock(&mgr->mu);
    mgr->refs++;
    pthread_mutex_unlock(&mgr->mu);
    pool->refs = 1;
    pool->rng = (unsigned)(uintptr_t)pool ^ (unsigned)dbp_now_ns();
    dbp_pool_counters_init(&pool->m);
    pool->topology = n_endpoints > 1;
    if (n_endpoints == 1)
        pool->primary = pool->endpoints[0];
    *out = pool;
    return DBP_OK;
}

dbp_pool *dbp_pool_unref_locked(dbp_pool *pool)
{
    return --pool->refs == 0 ? pool : NULL;
}

/* Frees the pool's memory; it holds no manager reference yet when mgr is NULL. */
void dbp_pool_destroy_unregistered(dbp_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->n_endpoints; i++)
        dbp_endpoint_free(pool->endpoints[i]);
    dbp_free(pool->endpoints);
    dbp_pool_options *opts = atomic_load(&pool->live_opts);
    if (opts)
        dbp_free((char *)opts->init_sql);
    dbp_free(opts);
    dbp_retired_free(pool);
    dbp_free(pool->id);
    dbp_free(pool);
}

void dbp_pool_destroy(dbp_pool *pool)
{
    if (!pool)
        return;
    dbp_manager *mgr = pool->mgr;
    dbp_pool_destroy_unregistered(pool);
    dbp_manager_unref(mgr);
}

void dbp_conns_destroy(dbp_conn *chain)
{
    while (chain) {
        dbp_conn *next = chain->next;
        if (chain->handle)
            chain->driver->disconnect(chain->handle);
        dbp_conn_closed(chain);
        dbp_free(chain);
        chain = next;
    }
}

int dbp_endpoint_size(const dbp_endpoint *ep)
{
    return ep->idle.count + ep->busy.count;
}

static int pool_size(const dbp_pool *pool)
{
    int size = 0;
    for (int i = 0; i < pool->n_endpoints; i++)
        size += dbp_endpoint_size(pool->endpoints[i]);
    return size;
}

/* A random retirement time in [lifetime * (1 - jitter), lifetime] from now,
 * so connections opened together do not all close together. */
static int64_t retire_time(dbp_pool *pool, int64_t now)
{
    if (dbp_pool_opts(pool)->max_lifetime_ms <= 0)
        return INT64_MAX;
    int64_t lifetime = MS_TO_NS(dbp_pool_opts(pool)->max_lifetime_ms);
    double jitter = dbp_pool_opts(pool)->lifetime_jitter;
    if (jitter > 0) {
        pool->rng = pool->rng * 1103515245u + 12345u;
        double r = (double)((pool->rng >> 8) & 0xffff) / 65536.0;
        lifetime -= (int64_t)((double)lifetime * jitter * r);
    }
    return now + lifetime;
}

static dbp_conn *conn_slot_new(dbp_endpoint *ep)
{
    dbp_conn *conn = dbp_calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->pool = ep->pool;
    conn->endpoint = ep;
    conn->driver = ep->pool->driver;
    conn->state = CONN_OPENING;
    conn->retire_ns = INT64_MAX;
    dbp_conn_list_push_front(&ep->busy, conn);
    ep->opening++;
    return conn;
}

void dbp_pool_conn_opened_locked(dbp_pool *pool, dbp_conn *conn, void *handle, int64_t now)
{
    dbp_endpoint *ep = conn->endpoint;
    conn->handle = handle;
    conn->created_ns = now;
    conn->retire_ns = retire_time(pool, now);
    conn->last_used_ns = now;
    conn->validated_ns = now;
    conn->reused = 0;
    conn->generation = ep->generation;
    if (conn->state == CONN_OPENING) {
        conn->state = CONN_BUSY;
        ep->opening--;
    }
    dbp_counter_inc(&ep->m.opened);
    dbp_histogram_observe(&ep->m.create_time, conn->connect_ns);
}

/* ---- waiting and dispatch ------------------------------------------------ */

int dbp_pool_submit_locked(dbp_pool *pool, dbp_request *req, dbp_error *err)
{
    if (pool->closed)
        return dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "pool '%s' is closed", pool->id);
    if (dbp_pool_opts(pool)->max_waiting > 0 && pool->waiting.count >= dbp_pool_opts(pool)->max_waiting) {
        dbp_counter_inc(&pool->m.rejected);
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
    req->deadline_ns = dbp_pool_opts(pool)->acquire_timeout_ms > 0
                           ? now + MS_TO_NS(dbp_pool_opts(pool)->acquire_timeout_ms)
                           : INT64_MAX;
    dbp_deadline_start_locked(pool, req, now);
    int was_empty = pool->waiting.count == 0;
    dbp_request_list_push(&pool->waiting, req);
    /* A blocking caller may run any statement itself; an event loop (a
     * completion queue) only a query, within INLINE_BUDGET_NS (worker.c). */
    if (req->inline_allowed && (pool->driver->caps & DBP_CAP_INLINE) &&
        (req->op == DBP_OP_QUERY ||
         (!req->cq && (req->op == DBP_OP_EXECUTE || req->op == DBP_OP_EXECUTE_MANY))))
        pool->submitting = req;
    dbp_pool_dispatch_locked(pool);
    pool->submitting = NULL;
    if (was_empty && req->state == REQ_WAITING)
        dbp_janitor_wake_locked(pool->mgr); /* a new earliest deadline */
    return DBP_OK;
}

void dbp_pool_requeue_locked(dbp_pool *pool, dbp_request *req)
{
    dbp_request *after = pool->waiting.tail;
    while (after && after->enqueued_ns > req->enqueued_ns)
        after = after->prev;
    req->state = REQ_WAITING;
    req->conn = NULL;
    req->attempts++;
    dbp_counter_inc(&pool->m.retries);
    /* insert after `after` (at the head when NULL) */
    request_list *l = &pool->waiting;
    req->prev = after;
    req->next = after ? after->next : l->head;
    if (req->next)
        req->next->prev = req;
    else
        l->tail = req;
    if (after)
        after->next = req;
    else
        l->head = req;
    l->count++;
    dbp_pool_dispatch_locked(pool);
    dbp_janitor_wake_locked(pool->mgr);
}

dbp_conn *dbp_endpoint_take_conn_locked(dbp_endpoint *ep)
{
    dbp_conn *conn = ep->idle.head;
    if (!conn)
        return dbp_endpoint_size(ep) < dbp_pool_opts(ep->pool)->max_size ? conn_slot_new(ep) : NULL;
    dbp_conn_list_remove(&ep->idle, conn);
    dbp_conn_list_push_front(&ep->busy, conn);
    conn->state = CONN_BUSY;
    conn->reused = 1;
    /* its endpoint broke since it was last known alive: it may be stale */
    conn->must_validate = conn->validated_ns < ep->break_ns;
    return conn;
}

static void assign(dbp_pool *pool, dbp_request *req, dbp_conn *conn, int64_t now)
{
    dbp_endpoint *ep = conn->endpoint;
    dbp_request_list_remove(&pool->waiting, req);
    req->conn = conn;
    conn->checkout_ns = 0;
    if (!DBP_OP_IS_INTERNAL(req->op)) {
        conn->checkout_ns = now;
        dbp_counter_inc(&ep->m.acquired);
        dbp_histogram_observe(&pool->m.wait_time, now - req->enqueued_ns);
    }
    if (req == pool->submitting) { /* its caller runs it: no thread hand-off */
        req->state = REQ_RUNNING;
        conn->running = req;
        req->run_inline = 1;
        req->inline_budget = req->cq != NULL;
        return;
    }
    dbp_worker_enqueue_locked(pool->mgr, req);
}

static int has_room(const dbp_pool *pool)
{
    for (int i = 0; i < pool->n_endpoints; i++) {
        const dbp_endpoint *ep = pool->endpoints[i];
        if (!ep->removed && (ep->idle.head || dbp_endpoint_size(ep) < dbp_pool_opts(pool)->max_size))
            return 1;
    }
    return 0;
}

/* Requests are served in arrival order, except that one no endpoint can
 * serve now (its role is down, or its endpoints are full) does not hold up
 * those behind it that other endpoints can. */
void dbp_pool_dispatch_locked(dbp_pool *pool)
{
    int64_t now = dbp_now_ns();
    int was_starved = pool->starved;
    dbp_endpoint *cands[pool->n_endpoints];
    pool->starved = 0;
    dbp_request *next;
    for (dbp_request *req = pool->waiting.head; req && has_room(pool); req = next) {
        next = req->next;
        int n = dbp_route_candidates(pool, req, cands);
        if (n == 0) {
            pool->starved |= !req->target;
            continue;
        }
        dbp_endpoint *ep = dbp_route_choose(pool, cands, n);
        if (!ep)
            continue;
        /* a warm-up is there to open a connection, not to borrow one */
        int warm_up = (int)req->op == DBP_OP_WARM_UP;
        dbp_conn *conn = !warm_up ? dbp_endpoint_take_conn_locked(ep)
                         : dbp_endpoint_size(ep) < dbp_pool_opts(pool)->max_size ? conn_slot_new(ep)
                                                                         : NULL;
        if (!conn && warm_up)
            continue; /* the endpoint is full: the janitor drops it */
        if (!conn)
            return; /* out of memory: the janitor retries or the wait times out */
        assign(pool, req, conn, now);
    }
    if (pool->starved && !was_starved)
        dbp_janitor_wake_locked(pool->mgr); /* probe fast until a fitting endpoint appears */
}

/* ---- returning --------------------------------------------------------- */

static void conn_forget(dbp_pool *pool, dbp_conn *conn, int why)
{
    (void)pool;
    dbp_endpoint *ep = conn->endpoint;
    if (conn->state == CONN_IDLE) {
        dbp_conn_list_remove(&ep->idle, conn);
    } else {
        if (conn->state == CONN_OPENING)
            ep->opening--;
        dbp_conn_list_remove(&ep->busy, conn);
    }
    if (conn->handle)
        dbp_conn_count_close_locked(conn, why);
}

void dbp_conn_count_close_locked(dbp_conn *conn, int why)
{
    dbp_endpoint *ep = conn->endpoint;
    dbp_counter_inc(&ep->m.closed[why]);
    if (!conn->closing) {
        conn->closing = dbp_gauge_cell_ref(ep->m.closing);
        atomic_fetch_add_explicit(&conn->closing->value, 1, memory_order_relaxed);
    }
}

void dbp_conn_closed(dbp_conn *conn)
{
    dbp_gauge_cell *cell = conn->closing;
    if (cell) {
        conn->closing = NULL;
        atomic_fetch_sub_explicit(&cell->value, 1, memory_order_relaxed);
        dbp_gauge_cell_unref(cell);
    }
}

void dbp_endpoint_close_idle_locked(dbp_endpoint *ep, dbp_conn **to_close, int why)
{
    dbp_conn *conn;
    while ((conn = ep->idle.head)) {
        conn_forget(ep->pool, conn, why);
        conn->next = *to_close;
        *to_close = conn;
    }
}

dbp_conn *dbp_pool_return_conn_locked(dbp_pool *pool, dbp_conn *conn)
{
    int64_t now = dbp_now_ns();
    dbp_endpoint *ep = conn->endpoint;
    dbp_conn *to_close = NULL;
    conn->running = NULL;
    if (conn->checkout_ns) { /* a caller's checkout ends here (lease or request) */
        dbp_histogram_observe(&ep->m.use_time, now - conn->checkout_ns);
        conn->checkout_ns = 0;
    }
    /* a connection opened before its endpoint's role changed retires, and
     * so does one opened with settings or options a reconfigure replaced */
    int why = pool->closed                              ? DBP_CLOSE_POOL_CLOSED
              : conn->broken                            ? (conn->close_why ? conn->close_why
                                                                           : DBP_CLOSE_BROKEN)
              : conn->generation != ep->generation      ? DBP_CLOSE_TOPOLOGY
              : ep->removed                             ? DBP_CLOSE_RECONFIGURED
              : conn->settings_gen != ep->settings_gen  ? DBP_CLOSE_RECONFIGURED
              : dbp_endpoint_size(ep) > dbp_pool_opts(pool)->max_size ? DBP_CLOSE_RECONFIGURED
              : ep->health == DBP_HEALTH_DOWN           ? DBP_CLOSE_ENDPOINT_DOWN
              : now >= conn->retire_ns                  ? DBP_CLOSE_LIFETIME
                                                        : -1;
    if (why >= 0 || !conn->handle) {
        conn_forget(pool, conn, why >= 0 ? why : DBP_CLOSE_BROKEN);
        conn->next = NULL;
        to_close = conn;
    } else {
        dbp_conn_list_remove(&ep->busy, conn);
        conn->state = CONN_IDLE;
        conn->last_used_ns = now;
        dbp_conn_list_push_front(&ep->idle, conn);
    }
    dbp_pool_dispatch_locked(pool);
    return to_close;
}

/* ---- maintenance -------------------------------------------------------- */

/* Queues warm-up requests until each endpoint that is up has min_size
 * connections open or opening. A single endpoint that is down is tried
 * again after its backoff: that is what brings it back up (pools of
 * several endpoints probe instead). */
static void keep_min_size(dbp_pool *pool, int64_t now)
{
    for (int i = 0; i < pool->n_endpoints && !pool->closed && pool->waiting.count == 0; i++) {
        dbp_endpoint *ep = pool->endpoints[i];
        if (ep->removed ||
            (ep->health == DBP_HEALTH_DOWN && (dbp_pool_has_topology(pool) || now < ep->retry_ns)))
            continue;
        while (dbp_endpoint_size(ep) < dbp_pool_opts(pool)->min_size && pool->waiting.count == 0) {
            dbp_request *warm = dbp_request_new_internal(DBP_OP_WARM_UP, pool->mgr);
            if (!warm)
                return;
            warm->pool = pool;
            warm->target = ep;
            pool->refs++;
            warm->state = REQ_WAITING;
            warm->enqueued_ns = dbp_now_ns();
            warm->deadline_ns = INT64_MAX;
            dbp_request_list_push(&pool->waiting, warm);
            dbp_pool_dispatch_locked(pool);
        }
    }
}

/* A request waits acquire_timeout for a connection; while no endpoint in
 * the role it needs is up, it waits failover_timeout instead (db_pool.h).
 * Its own deadline, when earlier, ends the wait too. */
static int64_t wait_deadline(const dbp_pool *pool, const dbp_request *req, int routable)
{
    if (routable || dbp_pool_opts(pool)->failover_timeout_ms <= 0)
        return req->deadline_ns;
    return req->enqueued_ns + MS_TO_NS(dbp_pool_opts(pool)->failover_timeout_ms);
}

static int64_t deadline_of(const dbp_pool *pool, const dbp_request *req, int routable)
{
    int64_t wait = wait_deadline(pool, req, routable);
    return req->call_deadline_ns < wait ? req->call_deadline_ns : wait;
}

static void expire(dbp_pool *pool, dbp_request *req, int routable, int64_t now)
{
    dbp_request_list_remove(&pool->waiting, req);
    int own_deadline = req->call_deadline_ns < wait_deadline(pool, req, routable);
    if (now >= req->call_deadline_ns && own_deadline) {
        long long ms = req->timeout_ms > 0 ? req->timeout_ms : dbp_pool_opts(pool)->query_timeout_ms;
        req->status = dbp_error_set(
            &req->error, DBP_E_QUERY_TIMEOUT, 0, "57014",
            "the call's %s of %lld ms passed while it waited for a connection from pool '%s' "
            "(size %d of max_size %d per endpoint, %d waiting); nothing was sent",
            req->timeout_ms > 0 ? "timeout" : "query_timeout", ms, pool->id, pool_size(pool),
            dbp_pool_opts(pool)->max_size, pool->waiting.count);
    } else if (routable) {
        req->status = dbp_error_set(
            &req->error, DBP_E_TIMEOUT, 0, NULL,
            "timed out after %lld ms waiting for a connection from pool '%s' "
            "(size %d of max_size %d per endpoint, %d waiting)",
            (long long)dbp_pool_opts(pool)->acquire_timeout_ms, pool->id, pool_size(pool),
            dbp_pool_opts(pool)->max_size, pool->waiting.count);
        if (!DBP_OP_IS_INTERNAL(req->op))
            dbp_counter_inc(&pool->m.acquire_timeouts);
    } else {
        char states[512];
        dbp_route_describe(pool, states, sizeof states);
        req->status = dbp_error_set(
            &req->error, DBP_E_UNAVAILABLE, 0, NULL,
            "pool '%s' has no %s endpoint up after waiting %lld ms: %s", pool->id,
            dbp_route_is_read(req) && dbp_pool_opts(pool)->read_from != DBP_READ_PRIMARY ? "readable"
                                                                               : "primary",
            (long long)((dbp_now_ns() - req->enqueued_ns) / 1000000), states);
    }
    req->state = REQ_FINISHING;
}

int64_t dbp_pool_maintain_locked(dbp_pool *pool, int64_t now, request_list *expired,
                                 dbp_conn **to_close)
{
    int64_t next = now + MS_TO_NS(1000);
    dbp_endpoint *cands[pool->n_endpoints];
    dbp_request *after;
    for (dbp_request *req = pool->waiting.head; req; req = after) {
        after = req->next;
        int routable = dbp_route_candidates(pool, req, cands) > 0;
        /* a warm-up for an endpoint that went down or has enough
         * connections by now is dropped */
        int needless = req->target && (!routable || dbp_endpoint_size(req->target) >=
                                                        dbp_pool_opts(pool)->min_size);
        int64_t deadline = needless ? now : deadline_of(pool, req, routable);
        if (deadline <= now) {
            expire(pool, req, routable, now);
            dbp_request_list_push(expired, req);
        } else if (deadline < next) {
            next = deadline;
        }
    }

    /* Retire idle connections past their lifetime, or idle too long while
     * the endpoint is above min_size; the least recently used go first. */
    for (int i = 0; i < pool->n_endpoints; i++) {
        dbp_endpoint *ep = pool->endpoints[i];
        dbp_conn *conn = ep->idle.tail;
        while (conn) {
            dbp_conn *prev = conn->prev;
            int too_old = now >= conn->retire_ns;
            int idle_too_long = dbp_pool_opts(pool)->idle_timeout_ms > 0 &&
                                now - conn->last_used_ns >= MS_TO_NS(dbp_pool_opts(pool)->idle_timeout_ms) &&
                                dbp_endpoint_size(ep) > dbp_pool_opts(pool)->min_size;
            if (too_old || idle_too_long) {
                conn_forget(pool, conn, too_old ? DBP_CLOSE_LIFETIME : DBP_CLOSE_IDLE);
                conn->next = *to_close;
                *to_close = conn;
            }
            conn = prev;
        }
    }
    dbp_pool_dispatch_locked(pool); /* retries after an allocation failure */
    keep_min_size(pool, now);
    int64_t probe = dbp_pool_schedule_probes_locked(pool, now);
    return probe < next ? probe : next;
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
    int64_t now = dbp_now_ns();
    for (int i = 0; i < pool->n_endpoints; i++) {
        dbp_endpoint *ep = pool->endpoints[i];
        dbp_endpoint_close_idle_locked(ep, to_close, DBP_CLOSE_POOL_CLOSED);
        /* statements and connection attempts under way are stopped */
        for (dbp_conn *conn = ep->busy.head; conn; conn = conn->next)
            if (conn->running)
                dbp_request_stop_locked(conn->running, STOP_CLOSE, now);
    }
}
