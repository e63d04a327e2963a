/* metrics.c - histogram bucketing and the metrics snapshot of a pool.
 *
 * The counters themselves are bumped where things happen (pool.c,
 * worker.c, request.c, endpoint.c, ...); this file only knows how to bucket
 * a value and how to read everything a pool counts in one go. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "error.h"
#include "metrics.h"

/* Log-spaced 1-2.5-5 from 10 us (an in-process SQLite statement) to 60 s
 * (past the default acquire and statement timeouts would matter). */
static const double seconds_bounds[] = {1e-5,  2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                        2.5e-3, 5e-3,  0.01, 0.025, 0.05,  0.1,  0.25,
                                        0.5,   1,      2.5,  5,    10,     25,   60};
static const int64_t seconds_bounds_ns[] = {
    10000,     25000,     50000,      100000,     250000,     500000,      1000000,
    2500000,   5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000, 25000000000, 60000000000};
static const double rows_bounds[] = {0, 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
static const double bytes_bounds[] = {0, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
static const int64_t bytes_bounds_int[] = {0, 100, 1000, 10000, 100000, 1000000, 10000000,
                                           100000000, 1000000000, 10000000000};
static const int64_t rows_bounds_int[] = {0, 1, 10, 100, 1000, 10000, 100000, 1000000,
                                          10000000, 100000000};

#define N_SECONDS ((int)(sizeof seconds_bounds / sizeof *seconds_bounds))
#define N_ROWS ((int)(sizeof rows_bounds / sizeof *rows_bounds))
#define N_BYTES ((int)(sizeof bytes_bounds / sizeof *bytes_bounds))
_Static_assert(N_SECONDS + 1 <= DBP_HIST_BUCKETS, "seconds buckets fit");
_Static_assert(N_ROWS + 1 <= DBP_HIST_BUCKETS, "rows buckets fit");
_Static_assert(sizeof seconds_bounds / sizeof *seconds_bounds ==
                   sizeof seconds_bounds_ns / sizeof *seconds_bounds_ns,
               "one ns bound per bound");
_Static_assert(sizeof rows_bounds / sizeof *rows_bounds ==
                   sizeof rows_bounds_int / sizeof *rows_bounds_int,
               "one integer bound per bound");
_Static_assert(N_BYTES + 1 <= DBP_HIST_BUCKETS, "bytes buckets fit");
_Static_assert(sizeof bytes_bounds / sizeof *bytes_bounds ==
                   sizeof bytes_bounds_int / sizeof *bytes_bounds_int,
               "one integer bound per bound");
_Static_assert(DBP_E_QUERY_TIMEOUT < DBP_CATEGORY_SLOTS, "categories fit");

const double *dbp_histogram_bounds(int kind, int *n)
{
    if (kind == DBP_HIST_SECONDS) {
        *n = N_SECONDS;
        return seconds_bounds;
    }
    if (kind == DBP_HIST_ROWS) {
        *n = N_ROWS;
        return rows_bounds;
    }
    if (kind == DBP_HIST_BYTES) {
        *n = N_BYTES;
        return bytes_bounds;
    }
    *n = 0;
    return NULL;
}

static const char *const close_reason_names[] = {
    [DBP_CLOSE_IDLE] = "idle",
    [DBP_CLOSE_LIFETIME] = "lifetime",
    [DBP_CLOSE_BROKEN] = "broken",
    [DBP_CLOSE_RESET_FAILED] = "reset_failed",
    [DBP_CLOSE_VALIDATION] = "validation_failed",
    [DBP_CLOSE_TOPOLOGY] = "topology_change",
    [DBP_CLOSE_ENDPOINT_DOWN] = "endpoint_down",
    [DBP_CLOSE_POOL_CLOSED] = "pool_closed",
    [DBP_CLOSE_RECONFIGURED] = "reconfigured",
};
_Static_assert(sizeof close_reason_names / sizeof *close_reason_names <= DBP_CLOSE_REASON_SLOTS,
               "close reasons fit");

const char *dbp_close_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= sizeof close_reason_names / sizeof *close_reason_names)
        return "unknown";
    return close_reason_names[reason];
}

void dbp_histogram_init(dbp_histogram *h, int kind) { h->kind = kind; }

#ifndef DBP_NO_METRICS
void dbp_histogram_observe(dbp_histogram *h, int64_t value)
{
    if (value < 0)
        value = 0;
    const int64_t *bounds = h->kind == DBP_HIST_ROWS    ? rows_bounds_int
                            : h->kind == DBP_HIST_BYTES ? bytes_bounds_int
                                                        : seconds_bounds_ns;
    int n = h->kind == DBP_HIST_ROWS ? N_ROWS : h->kind == DBP_HIST_BYTES ? N_BYTES : N_SECONDS;
    /* most values are small: a scan from the bottom stops early */
    int i = 0;
    while (i < n && value > bounds[i])
        i++;
    dbp_counter_inc(&h->buckets[i]);
    dbp_counter_inc(&h->count);
    dbp_counter_add(&h->sum, (uint64_t)value);
}
#endif

void dbp_histogram_read(const dbp_histogram *h, dbp_histogram_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->kind = h->kind;
    for (int i = 0; i < DBP_HIST_BUCKETS; i++)
        out->buckets[i] = dbp_counter_get(&h->buckets[i]);
    out->count = dbp_counter_get(&h->count);
    uint64_t sum = dbp_counter_get(&h->sum);
    out->sum = h->kind == DBP_HIST_SECONDS ? (double)sum / 1e9 : (double)sum;
}

void dbp_pool_counters_init(dbp_pool_counters *m)
{
    dbp_histogram_init(&m->wait_time, DBP_HIST_SECONDS);
    dbp_histogram_init(&m->result_rows, DBP_HIST_ROWS);
    dbp_histogram_init(&m->result_bytes, DBP_HIST_BYTES);
}

dbp_gauge_cell *dbp_gauge_cell_new(void)
{
    dbp_gauge_cell *cell = dbp_calloc(1, sizeof *cell);
    if (cell)
        atomic_init(&cell->refs, 1);
    return cell;
}

dbp_gauge_cell *dbp_gauge_cell_ref(dbp_gauge_cell *cell)
{
    atomic_fetch_add_explicit(&cell->refs, 1, memory_order_relaxed);
    return cell;
}

void dbp_gauge_cell_unref(dbp_gauge_cell *cell)
{
    if (cell && atomic_fetch_sub_explicit(&cell->refs, 1, memory_order_acq_rel) == 1)
        dbp_free(cell);
}

int dbp_endpoint_counters_init(dbp_endpoint_counters *m)
{
    dbp_histogram_init(&m->create_time, DBP_HIST_SECONDS);
    dbp_histogram_init(&m->use_time, DBP_HIST_SECONDS);
    m->closing = dbp_gauge_cell_new();
    return m->closing ? 0 : -1;
}

void dbp_endpoint_counters_free(dbp_endpoint_counters *m)
{
    dbp_gauge_cell_unref(m->closing);
    m->closing = NULL;
}

static void read_endpoint_locked(const dbp_pool *pool, const dbp_endpoint *ep,
                                 dbp_endpoint_metrics *out)
{
    const dbp_endpoint_counters *m = &ep->m;
    memset(out, 0, sizeof *out);
    snprintf(out->label, sizeof out->label, "%s", ep->label);
    out->role = ep->role;
    out->health = ep->health;
    out->is_primary = ep == pool->primary && dbp_pool_has_topology(pool);
    out->lag_seconds = ep->lag_s;
    out->failures = ep->failures;
    out->idle = ep->idle.count;
    out->opening = ep->opening;
    out->in_use = ep->busy.count - ep->opening;
    out->closing = (int)atomic_load_explicit(&m->closing->value, memory_order_relaxed);
    out->max_size = dbp_pool_opts(pool)->max_size;
    out->min_size = dbp_pool_opts(pool)->min_size;
    out->acquired = dbp_counter_get(&m->acquired);
    out->opened = dbp_counter_get(&m->opened);
    out->connect_failures = dbp_counter_get(&m->connect_failures);
    out->validations_failed = dbp_counter_get(&m->validations_failed);
    out->role_changes = dbp_counter_get(&m->role_changes);
    for (int r = 0; r < DBP_CLOSE_REASON_SLOTS; r++)
        out->closed[r] = dbp_counter_get(&m->closed[r]);
    dbp_histogram_read(&m->create_time, &out->create_time);
    dbp_histogram_read(&m->use_time, &out->use_time);
}

static void read_pool_locked(const dbp_pool *pool, dbp_pool_metrics *out)
{
    const dbp_pool_counters *m = &pool->m;
    memset(out, 0, sizeof *out);
    out->waiting = pool->waiting.count;
    out->n_endpoints = pool->n_endpoints;
    for (int c = 0; c < DBP_CATEGORY_SLOTS; c++)
        out->requests[c] = dbp_counter_get(&m->requests[c]);
    out->acquire_timeouts = dbp_counter_get(&m->acquire_timeouts);
    out->rejected = dbp_counter_get(&m->rejected);
    out->retries = dbp_counter_get(&m->retries);
    out->abandoned = dbp_counter_get(&m->abandoned);
    out->failovers = dbp_counter_get(&m->failovers);
    out->topology_generation = dbp_counter_get(&m->topology_generation);
    out->bulk_rows_in = dbp_counter_get(&m->bulk_rows_in);
    out->bulk_rows_out = dbp_counter_get(&m->bulk_rows_out);
    out->bulk_bytes_out = dbp_counter_get(&m->bulk_bytes_out);
    dbp_histogram_read(&m->wait_time, &out->wait_time);
    dbp_histogram_read(&m->result_rows, &out->result_rows);
    dbp_histogram_read(&m->result_bytes, &out->result_bytes);
}

int dbp_manager_pool_metrics(dbp_manager *mgr, const char *pool_id, dbp_pool_metrics *out,
                             dbp_endpoint_metrics *eps, int max_eps, char *engine_out,
                             size_t engine_out_size, dbp_error *err)
{
    if (!mgr || !pool_id || !out || (max_eps > 0 && !eps))
        return dbp_error_set(err, DBP_E_MISUSE, 0, NULL, "dbp_manager_pool_metrics: NULL argument");
    pthread_mutex_lock(&mgr->mu);
    size_t i = dbp_manager_find_pool_locked(mgr, pool_id);
    if (i != SIZE_MAX) {
        const dbp_pool *pool = mgr->pools[i];
        read_pool_locked(pool, out);
        for (int e = 0; e < pool->n_endpoints && e < max_eps; e++)
            read_endpoint_locked(pool, pool->endpoints[e], &eps[e]);
        if (engine_out && engine_out_size)
            snprintf(engine_out, engine_out_size, "%s", pool->driver->name);
    }
    pthread_mutex_unlock(&mgr->mu);
    if (i == SIZE_MAX)
        return dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'", pool_id);
    return DBP_OK;
}
