/* manager.c - the registry of named pools, submission by pool id, the
 * janitor thread, and tearing everything down. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

void dbp_pool_options_init(dbp_pool_options *opts)
{
    opts->min_size = 1;
    opts->max_size = 10;
    opts->max_waiting = 10000;
    opts->acquire_timeout_ms = 30000;
    opts->idle_timeout_ms = 600000;
    opts->max_lifetime_ms = 3600000;
    opts->lifetime_jitter = 0.1;
    opts->validate_after_ms = 5000;
    opts->read_from = DBP_READ_PRIMARY;
    opts->balance = DBP_BALANCE_ROUND_ROBIN;
    opts->failover_timeout_ms = 30000;
    opts->probe_interval_ms = 1000;
    opts->max_replica_lag_ms = 0;
    opts->query_timeout_ms = 0;
    opts->connect_timeout_ms = 10000;
    opts->cancel_grace_ms = 2000;
    opts->init_sql = NULL;
    opts->reset_on_release = DBP_RESET_AUTO;
}

/* Bumped in every child process a fork makes: a manager made before the
 * fork sees another count (no getpid() system call per request). */
static atomic_uint fork_count;
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    atomic_fetch_add(&fork_count, 1);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, count_fork);
}

static void *janitor_main(void *arg);

int dbp_manager_new(dbp_manager **out, dbp_error *err)
{
    dbp_manager *mgr = dbp_calloc(1, sizeof *mgr);
    if (!mgr)
        return dbp_error_nomem(err);
    mgr->refs = 1;
    pthread_once(&fork_watch, watch_forks);
    mgr->fork_count = atomic_load(&fork_count);
    pthread_mutex_init(&mgr->mu, NULL);
    pthread_cond_init(&mgr->work_cv, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&mgr->janitor_cv, &attr);
    pthread_cond_init(&mgr->events_cv, &attr);
    pthread_cond_init(&mgr->ended_cv, &attr);
    pthread_condattr_destroy(&attr);
    mgr->janitor_next_ns = INT64_MAX;
    if (pthread_create(&mgr->janitor, NULL, janitor_main, mgr) != 0) {
        pthread_cond_destroy(&mgr->ended_cv);
        pthread_cond_destroy(&mgr->events_cv);
        pthread_cond_destroy(&mgr->janitor_cv);
        pthread_cond_destroy(&mgr->work_cv);
        pthread_mutex_destroy(&mgr->mu);
        dbp_free(mgr);
        return dbp_error_set(err, DBP_E_NOMEM, 0, NULL, "cannot start the janitor thread");
    }
    *out = mgr;
    return DBP_OK;
}

void dbp_janitor_wake_locked(dbp_manager *mgr) { pthread_cond_signal(&mgr->janitor_cv); }

void dbp_janitor_wake_by_locked(dbp_manager *mgr, int64_t when)
{
    if (when < mgr->janitor_next_ns)
        pthread_cond_signal(&mgr->janitor_cv);
}

int dbp_manager_forked(const dbp_manager *mgr)
{
    return atomic_load_explicit(&fork_count, memory_order_relaxed) != mgr->fork_count;
}

int dbp_manager_forked_error(dbp_error *err)
{
    return dbp_error_set(err, DBP_E_CLOSED, 0, NULL,
                         "this pool manager belongs to the parent process (the process has "
                         "forked since): create a new one in the child");
}

size_t dbp_manager_find_pool_locked(const dbp_manager *mgr, const char *id)
{
    for (size_t i = 0; i < mgr->n_pools; i++)
        if (strcmp(mgr->pools[i]->id, id) == 0)
            return i;
    return SIZE_MAX;
}

void dbp_requests_finish(request_list *reqs)
{
    dbp_request *req;
    while ((req = dbp_request_list_pop(reqs)))
        dbp_request_finish(req, NULL);
}

static void *janitor_main(void *arg)
{
    dbp_manager *mgr = arg;
    pthread_mutex_lock(&mgr->mu);
    while (!mgr->closing) {
        int64_t now = dbp_now_ns();
        int64_t next = now + 1000000000;
        request_list expired = {0};
        dbp_conn *to_close = NULL;
        for (size_t i = 0; i < mgr->n_pools; i++) {
            int64_t t = dbp_pool_maintain_locked(mgr->pools[i], now, &expired, &to_close);
            int64_t r = dbp_pool_watch_running_locked(mgr->pools[i], now, 0);
            next = t < next ? t : next;
            next = r < next ? r : next;
        }
        dbp_worker_spawn_locked(mgr);
        if (expired.head || to_close) {
            pthread_mutex_unlock(&mgr->mu);
            dbp_requests_finish(&expired);
            dbp_conns_destroy(to_close);
            pthread_mutex_lock(&mgr->mu);
            continue;
        }
        struct timespec deadline = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
        mgr->janitor_next_ns = next;
        pthread_cond_timedwait(&mgr->janitor_cv, &mgr->mu, &deadline);
        mgr->janitor_next_ns = INT64_MIN; /* awake: a new deadline needs no signal */
    }
    pthread_mutex_unlock(&mgr->mu);
    return NULL;
}

int dbp_pool_options_validate(const dbp_pool_options *o, dbp_error *err)
{
    const char *bad = NULL;
    if (o->max_size < 1)
        bad = "max_size must be at least 1";
    else if (o->min_size < 0 || o->min_size > o->max_size)
        bad = "min_size must be between 0 and max_size";
    else if (o->max_waiting < 0)
        bad = "max_waiting must be 0 (unbounded) or positive";
    else if (o->acquire_timeout_ms < 0 || o->idle_timeout_ms < 0 || o->max_lifetime_ms < 0 ||
             o->query_timeout_ms < 0)
        bad = "timeouts must not be negative";
    else if (o->connect_timeout_ms < 1 || o->cancel_grace_ms < 1)
        bad = "connect_timeout and cancel_grace must be positive";
    else if (o->acquire_timeout_ms > DBP_MAX_TIME_MS || o->idle_timeout_ms > DBP_MAX_TIME_MS ||
             o->max_lifetime_ms > DBP_MAX_TIME_MS || o->validate_after_ms > DBP_MAX_TIME_MS ||
             o->failover_timeout_ms > DBP_MAX_TIME_MS || o->probe_interval_ms > DBP_MAX_TIME_MS ||
             o->max_replica_lag_ms > DBP_MAX_TIME_MS || o->query_timeout_ms > DBP_MAX_TIME_MS ||
             o->connect_timeout_ms > DBP_MAX_TIME_MS || o->cancel_grace_ms > DBP_MAX_TIME_MS)
        bad = "times must be at most ten years";
    else if (!(o->lifetime_jitter >= 0 && o->lifetime_jitter < 1))
        bad = "lifetime_jitter must be in [0, 1)";
    else if (o->read_from < DBP_READ_PRIMARY || o->read_from > DBP_READ_ANY)
        bad = "read_from must be primary, replicas or any";
    else if (o->balance < DBP_BALANCE_ROUND_ROBIN || o->balance > DBP_BALANCE_LEAST_BUSY)
        bad = "balance must be round_robin or least_busy";
    else if (o->failover_timeout_ms < 0 || o->max_replica_lag_ms < 0)
        bad = "failover_timeout and max_replica_lag must not be negative";
    else if (o->probe_interval_ms < 10)
        bad = "probe_interval must be at least 10 ms";
    else if (o->reset_on_release < DBP_RESET_AUTO || o->reset_on_release > DBP_RESET_NEVER)
        bad = "reset_on_release must be auto, always or never";
    else if (o->init_sql && !*o->init_sql)
        bad = "init_sql is empty";
    return bad ? dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "%s", bad) : DBP_OK;
}

/* The context of create_pool's own connects and probes, on the caller's
 * thread: connect_timeout bounds them. */
static void creation_ctx(const dbp_pool *pool, const atomic_int *never, dbp_exec_ctx *ctx)
{
    *ctx = (dbp_exec_ctx){.cancelled = never,
                          .deadline_ns = dbp_now_ns() + MS_TO_NS(dbp_pool_opts(pool)->connect_timeout_ms),
                          .cancel_grace_ns = MS_TO_NS(dbp_pool_opts(pool)->cancel_grace_ms)};
}

static dbp_conn *conn_new_open(dbp_endpoint *ep, dbp_error *err, int *rc)
{
    dbp_conn *conn = dbp_calloc(1, sizeof *conn);
    if (!conn) {
        *rc = dbp_error_nomem(err);
        return NULL;
    }
    conn->pool = ep->pool;
    conn->endpoint = ep;
    conn->driver = ep->pool->driver;
    atomic_int never = 0;
    dbp_exec_ctx ctx;
    creation_ctx(ep->pool, &never, &ctx);
    int64_t started = dbp_now_ns();
    *rc = conn->driver->connect(ep->config, &ctx, &conn->handle, err);
    if (*rc == DBP_OK)
        *rc = dbp_conn_init(ep->pool, conn->handle, &ctx, err);
    conn->connect_ns = dbp_now_ns() - started;
    if (*rc != DBP_OK) {
        if (conn->handle)
            conn->driver->disconnect(conn->handle);
        dbp_free(conn);
        return NULL;
    }
    return conn;
}

/* Opens min_size connections on the caller's thread so that bad settings
 * surface from create_pool itself. */
static int open_single(dbp_pool *pool, dbp_conn **opened, dbp_error *err)
{
    for (int i = 0; i < dbp_pool_opts(pool)->min_size; i++) {
        int rc;
        dbp_conn *conn = conn_new_open(pool->endpoints[0], err, &rc);
        if (!conn)
            return rc;
        conn->next = *opened;
        *opened = conn;
    }
    return DBP_OK;
}

/* A connection failure that says the endpoint is unreachable, not that the
 * settings are wrong. */
static int is_reachability_error(int category)
{
    return category == DBP_E_NETWORK || category == DBP_E_TIMEOUT;
}

/* Connects to each endpoint once and asks its role, on the caller's thread
 * and without the lock (the pool is not registered yet). Unreachable
 * endpoints start down; any other failure fails the creation. */
static int open_topology(dbp_pool *pool, dbp_conn **opened, dbp_error *err)
{
    int n = pool->n_endpoints;
    dbp_error errs[n];
    dbp_role roles[n];
    double lags[n];
    dbp_conn *conns[n];
    int reachable = 0;
    for (int i = 0; i < n; i++) {
        int rc;
        roles[i] = DBP_ROLE_UNKNOWN;
        lags[i] = -1;
        conns[i] = conn_new_open(pool->endpoints[i], &errs[i], &rc);
        if (conns[i]) {
            atomic_int never = 0;
            dbp_exec_ctx ctx;
            creation_ctx(pool, &never, &ctx);
            rc = pool->driver->probe_role(conns[i]->handle, &ctx, &roles[i], &lags[i], &errs[i]);
            if (rc != DBP_OK) {
                dbp_conns_destroy(conns[i]);
                conns[i] = NULL;
            }
        }
        if (rc != DBP_OK && !is_reachability_error(rc)) {
            *err = errs[i];
            for (int j = 0; j < i; j++)
                dbp_conns_destroy(conns[j]);
            return rc;
        }
        reachable += conns[i] != NULL;
    }
    if (reachable == 0) {
        *err = errs[0];
        snprintf(err->message, sizeof err->message,
                 "none of the %d endpoints of pool '%.128s' is reachable; the first said: %.800s", n,
                 pool->id, errs[0].message);
        return err->category;
    }
    pthread_mutex_lock(&pool->mgr->mu); /* the endpoint helpers push events */
    for (int i = 0; i < n; i++) {
        dbp_conn *none = NULL;
        if (!conns[i]) {
            dbp_endpoint_failed_locked(pool->endpoints[i], &errs[i], &none);
            continue;
        }
        dbp_endpoint_probed_locked(pool->endpoints[i], conns[i], roles[i], lags[i], &none);
        conns[i]->next = *opened;
        *opened = conns[i];
    }
    pthread_mutex_unlock(&pool->mgr->mu);
    return DBP_OK;
}

int dbp_manager_create_pool(dbp_manager *mgr, const char *pool_id, const char *engine,
                            const dbp_setting *settings, size_t n_settings,
                            const dbp_pool_options *opts, dbp_error *err)
{
    dbp_endpoint_config one = {settings, n_settings};
    return dbp_manager_create_pool_endpoints(mgr, pool_id, engine, &one, 1, opts, err);
}

static int register_pool(dbp_manager *mgr, dbp_pool *pool, dbp_conn *opened, dbp_error *err);

static const dbp_driver *find_driver(const char *engine, dbp_error *err)
{
    const dbp_driver *driver = dbp_driver_find(engine ? engine : "");
    if (driver)
        return driver;
    char known[256] = "";
    for (const char *const *e = dbp_engines(); *e; e++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", *known ? ", " : "",
                 *e);
    dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "unknown engine '%s'; this build supports: %s",
                  engine ? engine : "", known);
    return NULL;
}

int dbp_parse_endpoint_configs(const dbp_driver *driver, const dbp_endpoint_config *endpoints,
                               size_t n, void **configs, dbp_error *err)
{
    int rc = DBP_OK;
    for (size_t i = 0; i < n && rc == DBP_OK; i++) {
        rc = driver->parse_config(endpoints[i].settings, endpoints[i].n_settings, &configs[i],
                                  err);
        if (rc != DBP_OK && n > 1) {
            char msg[DBP_ERROR_MESSAGE_SIZE];
            snprintf(msg, sizeof msg, "%s", err->message);
            snprintf(err->message, sizeof err->message, "endpoint %zu: %.990s", i + 1, msg);
        }
    }
    if (rc != DBP_OK)
        for (size_t i = 0; i < n; i++)
            if (configs[i]) {
                driver->free_config(configs[i]);
                configs[i] = NULL;
            }
    return rc;
}

/* Parses each endpoint's settings and builds the (unregistered) pool. */
static int build_pool(dbp_manager *mgr, const char *pool_id, const dbp_driver *driver,
                      const dbp_endpoint_config *endpoints, size_t n,
                      const dbp_pool_options *opts, dbp_pool **out, dbp_error *err)
{
    void **configs = dbp_calloc(n, sizeof *configs);
    if (!configs)
        return dbp_error_nomem(err);
    int rc = dbp_parse_endpoint_configs(driver, endpoints, n, configs, err);
    if (rc == DBP_OK &&
        (rc = dbp_pool_new(mgr, pool_id, driver, configs, (int)n, opts, out, err)) == DBP_OK)
        for (size_t i = 0; i < n; i++)
            (*out)->endpoints[i]->settings_hash =
                dbp_settings_hash(endpoints[i].settings, endpoints[i].n_settings);
    dbp_free(configs);
    return rc;
}

int dbp_manager_create_pool_endpoints(dbp_manager *mgr, const char *pool_id, const char *engine,
                                      const dbp_endpoint_config *endpoints, size_t n_endpoints,
                                      const dbp_pool_options *opts, dbp_error *err)
{
    dbp_pool_options defaults;
    if (!opts) {
        dbp_pool_options_init(&defaults);
        opts = &defaults;
    }
    if (dbp_manager_forked(mgr))
        return dbp_manager_forked_error(err);
    if (!pool_id || !*pool_id)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL, "pool_id must be a non-empty string");
    if (n_endpoints < 1 || n_endpoints > 64)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "a pool needs between 1 and 64 endpoints, not %zu", n_endpoints);
    const dbp_driver *driver = find_driver(engine, err);
    if (!driver)
        return DBP_E_CONFIG;
    if (n_endpoints > 1 && !driver->probe_role)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "the %s engine has no primary or replica roles, so a pool of it "
                             "takes one endpoint",
                             driver->name);
    int rc = dbp_pool_options_validate(opts, err);
    if (rc != DBP_OK)
        return rc;

    pthread_mutex_lock(&mgr->mu);
    rc = mgr->closing                                                ? DBP_E_CLOSED
         : dbp_manager_find_pool_locked(mgr, pool_id) != SIZE_MAX ? DBP_E_EXISTS
                                                                  : 0;
    pthread_mutex_unlock(&mgr->mu);
    if (rc == DBP_E_CLOSED)
        return dbp_error_set(err, rc, 0, NULL, "the pool manager is closed");
    if (rc == DBP_E_EXISTS)
        return dbp_error_set(err, rc, 0, NULL, "a pool named '%s' exists already", pool_id);

    dbp_pool *pool;
    rc = build_pool(mgr, pool_id, driver, endpoints, n_endpoints, opts, &pool, err);
    if (rc != DBP_OK)
        return rc;
    dbp_conn *opened = NULL;
    rc = dbp_pool_has_topology(pool) ? open_topology(pool, &opened, err)
                                     : open_single(pool, &opened, err);
    if (rc != DBP_OK) {
        dbp_conns_destroy(opened);
        dbp_pool_destroy(pool);
        return rc;
    }
    return register_pool(mgr, pool, opened, err);
}

/* Adds a new pool to the registry with its first connections idle. */
static int register_pool(dbp_manager *mgr, dbp_pool *pool, dbp_conn *opened, dbp_error *err)
{
    const char *pool_id = pool->id;
    int rc = DBP_OK;
    pthread_mutex_lock(&mgr->mu);
    if (mgr->closing || dbp_manager_find_pool_locked(mgr, pool_id) != SIZE_MAX) {
        rc = mgr->closing ? dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "the pool manager is closed")
                          : dbp_error_set(err, DBP_E_EXISTS, 0, NULL,
                                          "a pool named '%s' exists already", pool_id);
    } else if (mgr->n_pools == mgr->pools_capacity) {
        size_t cap = mgr->pools_capacity ? mgr->pools_capacity * 2 : 4;
        dbp_pool **grown = dbp_realloc(mgr->pools, cap * sizeof *grown);
        if (grown) {
            mgr->pools = grown;
            mgr->pools_capacity = cap;
        } else {
            rc = dbp_error_nomem(err);
        }
    }
    if (rc == DBP_OK) {
        int64_t now = dbp_now_ns();
        while (opened) {
            dbp_conn *conn = opened;
            opened = conn->next;
            conn->state = CONN_BUSY;
            dbp_conn_list_push_front(&conn->endpoint->busy, conn);
            dbp_pool_conn_opened_locked(pool, conn, conn->handle, now);
            dbp_conn *none = dbp_pool_return_conn_locked(pool, conn); /* to idle */
            (void)none;
        }
        mgr->pools[mgr->n_pools++] = pool;
        dbp_janitor_wake_locked(mgr); /* schedules probes and warm-ups */
    }
    pthread_mutex_unlock(&mgr->mu);
    if (rc != DBP_OK) {
        dbp_conns_destroy(opened);
        dbp_pool_destroy(pool);
    }
    return rc;
}

void dbp_manager_ref(dbp_manager *mgr)
{
    pthread_mutex_lock(&mgr->mu);
    mgr->refs++;
    pthread_mutex_unlock(&mgr->mu);
}

void dbp_manager_unref(dbp_manager *mgr)
{
    pthread_mutex_lock(&mgr->mu);
    int last = --mgr->refs == 0;
    pthread_mutex_unlock(&mgr->mu);
    if (!last)
        return;
    dbp_free(mgr->pools);
    dbp_free(mgr->events);
    pthread_cond_destroy(&mgr->ended_cv);
    pthread_cond_destroy(&mgr->events_cv);
    pthread_cond_destroy(&mgr->janitor_cv);
    pthread_cond_destroy(&mgr->work_cv);
    pthread_mutex_destroy(&mgr->mu);
    dbp_free(mgr);
}

int dbp_submit(dbp_manager *mgr, const char *pool_id, dbp_request *req,
               dbp_completion_queue *cq, dbp_error *err)
{
    if (req->op != DBP_OP_QUERY && req->op != DBP_OP_EXECUTE && req->op != DBP_OP_EXECUTE_MANY &&
        req->op != DBP_OP_LEASE && req->op != DBP_OP_WRITE_FRAME && req->op != DBP_OP_COMMAND)
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL,
                             "transaction and cursor operations run on a lease");
    pthread_mutex_lock(&mgr->mu);
    int rc;
    size_t i = SIZE_MAX;
    if (req->state != REQ_NEW) {
        rc = dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "the request was submitted already");
    } else if (dbp_manager_forked(mgr)) {
        rc = dbp_manager_forked_error(err);
    } else if (mgr->closing) {
        rc = dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "the pool manager is closed");
    } else if ((i = dbp_manager_find_pool_locked(mgr, pool_id)) == SIZE_MAX) {
        rc = dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'", pool_id);
    } else {
        dbp_request_bind_locked(req, mgr, cq); /* first: the pool looks at req->cq */
        if ((rc = dbp_pool_submit_locked(mgr->pools[i], req, err)) != DBP_OK)
            dbp_request_unbind_locked(req);
    }
    int run_inline = rc == DBP_OK && req->run_inline;
    pthread_mutex_unlock(&mgr->mu);
    if (run_inline)
        dbp_worker_run(req);
    return rc;
}

int dbp_manager_list_pools(dbp_manager *mgr, char ***out, dbp_error *err)
{
    pthread_mutex_lock(&mgr->mu);
    char **names = dbp_calloc(mgr->n_pools + 1, sizeof *names);
    int rc = names ? DBP_OK : DBP_E_NOMEM;
    for (size_t i = 0; rc == DBP_OK && i < mgr->n_pools; i++)
        if (!(names[i] = dbp_strdup(mgr->pools[i]->id)))
            rc = DBP_E_NOMEM;
    pthread_mutex_unlock(&mgr->mu);
    if (rc != DBP_OK) {
        dbp_free_strings(names);
        return dbp_error_nomem(err);
    }
    *out = names;
    return DBP_OK;
}

void dbp_free_strings(char **strings)
{
    if (!strings)
        return;
    for (char **s = strings; *s; s++)
        dbp_free(*s);
    dbp_free(strings);
}

/* stats() keeps its older, coarser shape, computed from the metrics
 * (metrics.h) so that each thing is counted once. */
static void stats_from_metrics_locked(const dbp_pool *pool, dbp_pool_stats *out)
{
    const dbp_pool_counters *m = &pool->m;
    memset(out, 0, sizeof *out);
    for (int c = 0; c < DBP_CATEGORY_SLOTS; c++) {
        uint64_t n = dbp_counter_get(&m->requests[c]);
        out->requests_total += n;
        if (c != DBP_OK && c != DBP_E_CANCELLED)
            out->errors_total += n;
    }
    out->cancelled_total = dbp_counter_get(&m->requests[DBP_E_CANCELLED]);
    out->query_timeouts_total = dbp_counter_get(&m->requests[DBP_E_QUERY_TIMEOUT]);
    out->timeouts_total = dbp_counter_get(&m->acquire_timeouts);
    out->rejected_total = dbp_counter_get(&m->rejected);
    out->retries_total = dbp_counter_get(&m->retries);
    out->abandoned_total = dbp_counter_get(&m->abandoned);
    out->failovers_total = dbp_counter_get(&m->failovers);
    out->topology_generation = dbp_counter_get(&m->topology_generation);
    out->acquire_wait_ms_total = (double)dbp_counter_get(&m->wait_time.sum) / 1e6;
    for (int e = 0; e < pool->n_endpoints; e++) {
        const dbp_endpoint *ep = pool->endpoints[e];
        const dbp_endpoint_counters *em = &ep->m;
        out->idle += ep->idle.count;
        out->in_use += ep->busy.count - ep->opening;
        out->opening += ep->opening;
        out->acquired_total += dbp_counter_get(&em->acquired);
        out->created_total += dbp_counter_get(&em->opened);
        out->failed_total += dbp_counter_get(&em->connect_failures);
        out->validations_failed_total += dbp_counter_get(&em->validations_failed);
        for (int r = 0; r < DBP_CLOSE_REASON_SLOTS; r++)
            out->closed_total += dbp_counter_get(&em->closed[r]);
    }
}

int dbp_manager_pool_stats(dbp_manager *mgr, const char *pool_id, dbp_pool_stats *out,
                           char *engine_out, size_t engine_out_size, dbp_error *err)
{
    pthread_mutex_lock(&mgr->mu);
    size_t i = dbp_manager_find_pool_locked(mgr, pool_id);
    if (i != SIZE_MAX) {
        const dbp_pool *pool = mgr->pools[i];
        stats_from_metrics_locked(pool, out);
        out->size = out->idle + out->in_use + out->opening;
        out->waiting = pool->waiting.count;
        out->max_size = dbp_pool_opts(pool)->max_size;
        out->min_size = dbp_pool_opts(pool)->min_size;
        out->n_endpoints = pool->n_endpoints;
        if (engine_out && engine_out_size)
            snprintf(engine_out, engine_out_size, "%s", pool->driver->name);
    }
    pthread_mutex_unlock(&mgr->mu);
    if (i == SIZE_MAX)
        return dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'", pool_id);
    return DBP_OK;
}

int dbp_manager_endpoint_stats(dbp_manager *mgr, const char *pool_id, int index,
                               dbp_endpoint_stats *out, dbp_error *err)
{
    int rc = DBP_OK;
    pthread_mutex_lock(&mgr->mu);
    size_t i = dbp_manager_find_pool_locked(mgr, pool_id);
    if (i == SIZE_MAX) {
        rc = dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'", pool_id);
    } else if (index < 0 || index >= mgr->pools[i]->n_endpoints) {
        rc = dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "pool '%s' has no endpoint %d",
                           pool_id, index);
    } else {
        const dbp_pool *pool = mgr->pools[i];
        const dbp_endpoint *ep = pool->endpoints[index];
        memset(out, 0, sizeof *out);
        snprintf(out->label, sizeof out->label, "%s", ep->label);
        out->role = ep->role;
        out->health = ep->health;
        out->is_primary = ep == pool->primary && dbp_pool_has_topology(pool);
        out->lag_seconds = ep->lag_s;
        out->failures = ep->failures;
        int64_t wait = ep->retry_ns - dbp_now_ns();
        out->retry_in_ms = ep->health == DBP_HEALTH_DOWN && wait > 0 ? wait / 1000000 : 0;
        snprintf(out->last_error, sizeof out->last_error, "%s", ep->last_error);
        if (ep->health_since_ns) {
            struct timespec real;
            clock_gettime(CLOCK_REALTIME, &real);
            out->health_since = (double)real.tv_sec + (double)real.tv_nsec / 1e9 -
                                (double)(dbp_now_ns() - ep->health_since_ns) / 1e9;
        }
        out->idle = ep->idle.count;
        out->opening = ep->opening;
        out->in_use = ep->busy.count - ep->opening;
        out->size = out->idle + out->in_use + out->opening;
        out->acquired_total = dbp_counter_get(&ep->m.acquired);
        out->failed_total = ep->failed_total;
        out->removed = ep->removed;
    }
    pthread_mutex_unlock(&mgr->mu);
    return rc;
}
