/* metrics.h - the always-on counters and histograms of pools and endpoints.
 *
 * Every counter is a relaxed atomic: most are bumped where mgr->mu is held
 * anyway, but none needs it, so code outside the lock may count too and no
 * metric adds a lock to the query path. A snapshot (metrics.c) reads them
 * under mgr->mu, which also makes the gauges (list lengths) agree. */
#ifndef DBP_METRICS_H
#define DBP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "db_pool.h"

typedef _Atomic uint64_t dbp_counter;

/* -DDBP_NO_METRICS (meson -Dmetrics=false) makes every update a no-op, so
 * the overhead benchmark can set the pool against itself without metrics;
 * snapshots then report zeros. */
#ifdef DBP_NO_METRICS
static inline void dbp_counter_add(dbp_counter *c, uint64_t n)
{
    (void)c;
    (void)n;
}
#else
static inline void dbp_counter_add(dbp_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
#endif

static inline void dbp_counter_inc(dbp_counter *c) { dbp_counter_add(c, 1); }

static inline uint64_t dbp_counter_get(const dbp_counter *c)
{
    return atomic_load_explicit((dbp_counter *)c, memory_order_relaxed);
}

/* Buckets are not cumulative here; the sum is kept in integer units (ns or
 * rows) so that it is one atomic add too. */
typedef struct dbp_histogram {
    int kind; /* dbp_hist_kind */
    dbp_counter buckets[DBP_HIST_BUCKETS];
    dbp_counter count;
    dbp_counter sum;
} dbp_histogram;

/* Sets the kind of a zeroed histogram. */
void dbp_histogram_init(dbp_histogram *h, int kind);
/* Counts one value: nanoseconds for DBP_HIST_SECONDS, rows for DBP_HIST_ROWS;
 * a negative value counts as 0. */
#ifdef DBP_NO_METRICS
static inline void dbp_histogram_observe(dbp_histogram *h, int64_t value)
{
    (void)h;
    (void)value;
}
#else
void dbp_histogram_observe(dbp_histogram *h, int64_t value);
#endif
void dbp_histogram_read(const dbp_histogram *h, dbp_histogram_snapshot *out);

/* Counted per pool (dbp_pool.m). */
typedef struct dbp_pool_counters {
    dbp_counter requests[DBP_CATEGORY_SLOTS];
    dbp_counter acquire_timeouts, rejected, retries, abandoned, failovers, topology_generation;
    dbp_counter bulk_rows_in, bulk_rows_out, bulk_bytes_out;
    dbp_histogram wait_time, result_rows, result_bytes;
} dbp_pool_counters;

/* Counted per endpoint (dbp_endpoint.m). */
typedef struct dbp_endpoint_counters {
    dbp_counter acquired, opened, connect_failures, validations_failed, role_changes;
    dbp_counter closed[DBP_CLOSE_REASON_SLOTS];
    /* a gauge: connections taken off the pool's lists and not yet
     * disconnected. Their close runs outside the lock, sometimes after the
     * pool is freed (a worker abandoned at shutdown), so the gauge is a
     * cell of its own that each closing connection holds a reference to. */
    struct dbp_gauge_cell *closing;
    dbp_histogram create_time, use_time;
} dbp_endpoint_counters;

typedef struct dbp_gauge_cell {
    _Atomic int64_t value;
    _Atomic int refs;
} dbp_gauge_cell;
/* A cell with value 0 and one reference; NULL when out of memory. */
dbp_gauge_cell *dbp_gauge_cell_new(void);
dbp_gauge_cell *dbp_gauge_cell_ref(dbp_gauge_cell *cell);
/* Drops a reference (NULL is fine); the last frees the cell. */
void dbp_gauge_cell_unref(dbp_gauge_cell *cell);

void dbp_pool_counters_init(dbp_pool_counters *m);
/* -1 when out of memory. */
int dbp_endpoint_counters_init(dbp_endpoint_counters *m);
void dbp_endpoint_counters_free(dbp_endpoint_counters *m);

#endif
