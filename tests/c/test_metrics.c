/* test_metrics.c - histogram bucketing, counters bumped from several
 * threads at once, and a pool's metrics after known work on the real
 * SQLite engine. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "db_pool.h"
#include "metrics.h"

/* the clock pool_harness.h wants (fault_driver.h has it, with much more) */
static inline int64_t fault_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#include "pool_harness.h"

static int bucket_of(dbp_histogram *h)
{
    dbp_histogram_snapshot s;
    dbp_histogram_read(h, &s);
    for (int i = 0; i < DBP_HIST_BUCKETS; i++)
        if (s.buckets[i])
            return i;
    return -1;
}

/* A value lands in the first bucket whose upper bound is >= it ("le"). */
static int one(int kind, int64_t value)
{
    dbp_histogram h;
    memset(&h, 0, sizeof h);
    dbp_histogram_init(&h, kind);
    dbp_histogram_observe(&h, value);
    return bucket_of(&h);
}

static void test_bucketing(void)
{
    int n;
    const double *b = dbp_histogram_bounds(DBP_HIST_SECONDS, &n);
    CHECK_EQ_INT(n, 21);
    CHECK(b[0] == 1e-5 && b[n - 1] == 60);
    for (int i = 1; i < n; i++)
        CHECK(b[i] > b[i - 1]);
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 0), 0);
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, -5), 0);       /* a clock step back counts as 0 */
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 10000), 0);    /* exactly 10 us: le="1e-05" */
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 10001), 1);
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 1000000), 6);  /* 1 ms */
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 60000000000), 20);
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, 60000000001), 21); /* +Inf */
    CHECK_EQ_INT(one(DBP_HIST_SECONDS, INT64_MAX), 21);
    /* every bound is its own bucket's upper edge */
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(one(DBP_HIST_SECONDS, (int64_t)(b[i] * 1e9 + 0.5)), i);

    b = dbp_histogram_bounds(DBP_HIST_ROWS, &n);
    CHECK_EQ_INT(n, 10);
    CHECK_EQ_INT(one(DBP_HIST_ROWS, 0), 0);
    CHECK_EQ_INT(one(DBP_HIST_ROWS, 1), 1);
    CHECK_EQ_INT(one(DBP_HIST_ROWS, 2), 2);
    CHECK_EQ_INT(one(DBP_HIST_ROWS, 100000000), 9);
    CHECK_EQ_INT(one(DBP_HIST_ROWS, 100000001), 10);
    CHECK(dbp_histogram_bounds(7, &n) == NULL && n == 0);

    dbp_histogram h;
    memset(&h, 0, sizeof h);
    dbp_histogram_init(&h, DBP_HIST_SECONDS);
    dbp_histogram_observe(&h, 1500000000); /* 1.5 s */
    dbp_histogram_observe(&h, 500000000);
    dbp_histogram_snapshot s;
    dbp_histogram_read(&h, &s);
    CHECK_EQ_INT(s.count, 2);
    CHECK(s.sum == 2.0);
    CHECK_EQ_INT(s.buckets[14], 1); /* le=0.5 */
    CHECK_EQ_INT(s.buckets[16], 1); /* le=2.5 */
    CHECK(strcmp(dbp_close_reason_name(DBP_CLOSE_TOPOLOGY), "topology_change") == 0);
    CHECK(strcmp(dbp_close_reason_name(99), "unknown") == 0);
}

#define THREADS 8
#define PER_THREAD 200000

static dbp_histogram shared_hist;
static dbp_counter shared_counter;

static void *hammer(void *arg)
{
    int64_t value = (int64_t)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        dbp_histogram_observe(&shared_hist, value);
        dbp_counter_inc(&shared_counter);
    }
    return NULL;
}

/* No increment is lost when threads count at once without a lock. */
static void test_threads(void)
{
    dbp_histogram_init(&shared_hist, DBP_HIST_SECONDS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)(i % 2 ? 1000 : 2000000)),
                     0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    dbp_histogram_snapshot s;
    dbp_histogram_read(&shared_hist, &s);
    CHECK_EQ_INT(dbp_counter_get(&shared_counter), (int64_t)THREADS * PER_THREAD);
    CHECK_EQ_INT(s.count, (int64_t)THREADS * PER_THREAD);
    CHECK_EQ_INT(s.buckets[0], (int64_t)THREADS / 2 * PER_THREAD);      /* 1 us */
    CHECK_EQ_INT(s.buckets[7], (int64_t)THREADS / 2 * PER_THREAD);      /* 2 ms: le=0.0025 */
    CHECK_EQ_INT(dbp_counter_get(&shared_hist.sum),
                 (int64_t)THREADS / 2 * PER_THREAD * (1000 + 2000000));
}

static const dbp_setting memory_db[] = {{"database", ":memory:"}};

static int run(dbp_manager *mgr, dbp_op op, const char *sql)
{
    dbp_request *req = new_request(op, sql, NULL);
    dbp_error err;
    int rc = dbp_submit(mgr, "m", req, NULL, &err);
    if (rc == DBP_OK)
        rc = outcome(req, NULL);
    dbp_request_unref(req);
    return rc;
}

/* Known work on SQLite: every counter and histogram count is exact. */
static void test_pool_metrics(void)
{
    dbp_manager *mgr = new_manager();
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = 1;
    o.max_size = 2;
    dbp_error err;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "m", "sqlite", memory_db, 1, &o, &err), DBP_OK);
    CHECK_EQ_INT(run(mgr, DBP_OP_EXECUTE, "CREATE TABLE t(x)"), DBP_OK);
    CHECK_EQ_INT(run(mgr, DBP_OP_EXECUTE, "INSERT INTO t VALUES (1), (2), (3)"), DBP_OK);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(run(mgr, DBP_OP_QUERY, "SELECT x FROM t"), DBP_OK);
    CHECK_EQ_INT(run(mgr, DBP_OP_QUERY, "SELECT x FROM t WHERE x > 5"), DBP_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(run(mgr, DBP_OP_QUERY, "SELECT nope FROM t"), DBP_E_SERVER);

    dbp_pool_metrics pm;
    dbp_endpoint_metrics em[2];
    char engine[16];
    CHECK_EQ_INT(dbp_manager_pool_metrics(mgr, "m", &pm, em, 2, engine, sizeof engine, &err),
                 DBP_OK);
    CHECK(strcmp(engine, "sqlite") == 0);
    CHECK_EQ_INT(pm.n_endpoints, 1);
    CHECK_EQ_INT(pm.requests[DBP_OK], 8);
    CHECK_EQ_INT(pm.requests[DBP_E_SERVER], 3);
    CHECK_EQ_INT(pm.wait_time.count, 11);
    CHECK_EQ_INT(pm.result_rows.count, 6);     /* the failed queries have no result */
    CHECK_EQ_INT(pm.result_rows.buckets[0], 1); /* 0 rows */
    CHECK_EQ_INT(pm.result_rows.buckets[2], 5); /* 3 rows: le=10 */
    CHECK(pm.result_rows.sum == 15.0);
    CHECK_EQ_INT(em[0].acquired, 11);
    CHECK_EQ_INT(em[0].use_time.count, 11);
    CHECK_EQ_INT(em[0].opened, 1);
    CHECK_EQ_INT(em[0].create_time.count, 1);
    CHECK_EQ_INT(em[0].idle, 1);
    CHECK_EQ_INT(em[0].in_use + em[0].opening + em[0].closing, 0);
    CHECK_EQ_INT(em[0].max_size, 2);

    /* stats() is computed from the same counters */
    dbp_pool_stats st = stats(mgr, "m");
    CHECK_EQ_INT(st.requests_total, 11);
    CHECK_EQ_INT(st.errors_total, 3);
    CHECK_EQ_INT(st.acquired_total, 11);
    CHECK_EQ_INT(st.created_total, 1);
    CHECK(st.acquire_wait_ms_total * 1e6 >= pm.wait_time.sum * 1e9 - 1);

    CHECK_EQ_INT(dbp_manager_pool_metrics(mgr, "none", &pm, em, 2, NULL, 0, &err),
                 DBP_E_NOT_FOUND);
    dbp_manager_free(mgr);
}

int main(void)
{
    RUN(test_bucketing);
    RUN(test_threads);
    RUN(test_pool_metrics);
    return check_exit();
}
