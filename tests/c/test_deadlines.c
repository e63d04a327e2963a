/* test_deadlines.c - every wait has a bound: per-call timeouts and the
 * pool's query_timeout, cancels, closing a pool and shutting the manager
 * down, each with an engine that stops when interrupted ("BLOCK") and with
 * one that never does ("HANG", a client library that cannot be stopped).
 * Each test asserts how long the caller waited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "db_pool.h"
#include "fault_driver.h"
#include "pool_harness.h"

static dbp_pool_options options(int max_size)
{
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = 0;
    o.max_size = max_size;
    o.acquire_timeout_ms = 5000;
    o.validate_after_ms = -1;
    o.cancel_grace_ms = 1000;
    return o;
}

static dbp_manager *manager_with_pool(const dbp_pool_options *o)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_error err = {0};
    int rc = dbp_manager_create_pool(mgr, "p", "fault", NULL, 0, o, &err);
    if (rc != DBP_OK)
        fprintf(stderr, "create_pool: %s\n", err.message);
    CHECK_EQ_INT(rc, DBP_OK);
    return mgr;
}

/* Submits `sql` with a timeout (0: none of its own); the caller unrefs. */
static dbp_request *submit_timed(dbp_manager *mgr, dbp_op op, const char *sql, int64_t timeout_ms)
{
    dbp_request *req = new_request(op, sql, NULL);
    dbp_request_set_timeout(req, timeout_ms);
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_submit(mgr, "p", req, NULL, &err), DBP_OK);
    return req;
}

/* Runs `sql` with a timeout; returns the status and how long the caller
 * waited in *ms. */
static int run_timed(dbp_manager *mgr, const char *sql, int64_t timeout_ms, dbp_error *err,
                     int64_t *ms)
{
    int64_t start = now_ms();
    dbp_request *req = submit_timed(mgr, DBP_OP_EXECUTE, sql, timeout_ms);
    int rc = outcome(req, err);
    *ms = now_ms() - start;
    dbp_request_unref(req);
    return rc;
}

static void check_pool_whole(dbp_manager *mgr)
{
    CHECK(EVENTUALLY(stats(mgr, "p").in_use == 0, WAIT_MS));
    CHECK_EQ_INT(stats(mgr, "p").waiting, 0);
}

/* A statement past its timeout is interrupted and fails with
 * DBP_E_QUERY_TIMEOUT about when the timeout says; its connection, stopped
 * cleanly, serves the next call. */
static void test_timeout_stops_statement(void)
{
    dbp_pool_options o = options(1);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_error err = {0};
    int64_t ms;
    CHECK_EQ_INT(run_timed(mgr, "BLOCK", 200, &err, &ms), DBP_E_QUERY_TIMEOUT);
    CHECK(ms >= 190 && ms < 1000);
    CHECK(strstr(err.message, "timeout=200 ms") != NULL);
    CHECK(strcmp(err.sqlstate, "57014") == 0);
    CHECK_EQ_INT(FAULT_GET(interrupts), 1);
    check_pool_whole(mgr);
    CHECK_EQ_INT(run_timed(mgr, "MARK 1", 200, &err, &ms), DBP_OK);
    CHECK_EQ_INT(FAULT_GET(connects), 1); /* the same connection */
    dbp_pool_stats s = stats(mgr, "p");
    CHECK_EQ_INT(s.query_timeouts_total, 1);
    CHECK_EQ_INT(s.abandoned_total, 0);
    dbp_manager_free(mgr);
}

/* query_timeout is every call's deadline unless the call sets its own. */
static void test_query_timeout_is_the_default(void)
{
    dbp_pool_options o = options(1);
    o.query_timeout_ms = 150;
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_error err = {0};
    int64_t ms;
    CHECK_EQ_INT(run_timed(mgr, "BLOCK", 0, &err, &ms), DBP_E_QUERY_TIMEOUT);
    CHECK(ms >= 140 && ms < 1000);
    CHECK(strstr(err.message, "query_timeout=150 ms") != NULL);
    CHECK_EQ_INT(run_timed(mgr, "BLOCK", 400, &err, &ms), DBP_E_QUERY_TIMEOUT);
    CHECK(ms >= 390 && ms < 1200);
    dbp_manager_free(mgr);
}

/* An engine call that ignores the interrupt does not hold the caller: it is
 * answered half a second after its deadline, the request counts as
 * abandoned, and the connection comes back when the engine returns. */
static void test_stuck_engine_is_abandoned_not_the_caller(void)
{
    dbp_pool_options o = options(1);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_error err = {0};
    int64_t ms;
    CHECK_EQ_INT(run_timed(mgr, "HANG", 200, &err, &ms), DBP_E_QUERY_TIMEOUT);
    CHECK(ms >= 190 && ms < 200 + 500 + 400);
    /* an execute may have written: the caller is told so */
    CHECK(strcmp(err.sqlstate, "08007") == 0);
    CHECK(strstr(err.message, "may or may not take effect") != NULL);
    dbp_pool_stats s = stats(mgr, "p");
    CHECK_EQ_INT(s.abandoned_total, 1);
    CHECK_EQ_INT(s.in_use, 1); /* the worker still holds it */
    fault_open_gate();
    check_pool_whole(mgr);
    CHECK_EQ_INT(run_timed(mgr, "MARK 1", 0, &err, &ms), DBP_OK);
    dbp_manager_free(mgr);
}

/* A cancel reaches a stuck engine call's caller within the grace too. */
static void test_cancel_of_stuck_call_returns_within_grace(void)
{
    dbp_pool_options o = options(1);
    o.cancel_grace_ms = 300;
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_request *req = submit_timed(mgr, DBP_OP_QUERY, "HANG", 0);
    CHECK(EVENTUALLY(FAULT_GET(blocked) == 1, WAIT_MS));
    int64_t start = now_ms();
    dbp_request_cancel(req);
    dbp_error err = {0};
    CHECK_EQ_INT(outcome(req, &err), DBP_E_CANCELLED);
    CHECK(now_ms() - start < 300 + 300);
    struct ArrowArrayStream none;
    CHECK_EQ_INT(dbp_request_take_result(req, &none), DBP_E_MISUSE);
    CHECK_EQ_INT(dbp_request_rows_affected(req), 0);
    dbp_request_unref(req);
    fault_open_gate();
    check_pool_whole(mgr);
    dbp_manager_free(mgr);
}

/* The call's deadline also ends its wait for a connection, before anything
 * was sent. */
static void test_timeout_while_waiting_for_a_connection(void)
{
    dbp_pool_options o = options(1);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_request *busy = submit_timed(mgr, DBP_OP_EXECUTE, "BLOCK", 0);
    CHECK(EVENTUALLY(FAULT_GET(blocked) == 1, WAIT_MS));
    dbp_error err = {0};
    int64_t ms;
    CHECK_EQ_INT(run_timed(mgr, "MARK 1", 150, &err, &ms), DBP_E_QUERY_TIMEOUT);
    CHECK(ms >= 140 && ms < 1000);
    CHECK(strstr(err.message, "waited for a connection") != NULL);
    CHECK(strstr(err.message, "nothing was sent") != NULL);
    CHECK_EQ_INT(stats(mgr, "p").timeouts_total, 0); /* not an acquire_timeout */
    fault_open_gate();
    CHECK_EQ_INT(outcome(busy, NULL), DBP_OK);
    dbp_request_unref(busy);
    CHECK_EQ_INT(FAULT_GET(n_marks), 0);
    dbp_manager_free(mgr);
}

/* A statement in a transaction that had to be abandoned takes the
 * transaction with it: later statements on the lease fail at once, ROLLBACK
 * and closing the cursor succeed (the discarded connection takes both
 * along), and the connection is closed when released. */
static void test_abandoned_statement_loses_its_transaction(void)
{
    dbp_pool_options o = options(1);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_request *lreq = submit_timed(mgr, DBP_OP_LEASE, NULL, 0);
    CHECK_EQ_INT(outcome(lreq, NULL), DBP_OK);
    dbp_lease *lease = dbp_request_take_lease(lreq);
    dbp_request_unref(lreq);
    dbp_error err = {0};
    dbp_request *stuck = new_request(DBP_OP_EXECUTE, "HANG", NULL);
    dbp_request_set_timeout(stuck, 100);
    CHECK_EQ_INT(dbp_submit_on_lease(lease, stuck, NULL, &err), DBP_OK);
    CHECK_EQ_INT(outcome(stuck, &err), DBP_E_QUERY_TIMEOUT);
    dbp_request_unref(stuck);

    dbp_request *next = new_request(DBP_OP_EXECUTE, "MARK 1", NULL);
    CHECK_EQ_INT(dbp_submit_on_lease(lease, next, NULL, &err), DBP_E_NETWORK);
    CHECK(strstr(err.message, "given up") != NULL);
    dbp_request_unref(next);
    dbp_request *close = new_request(DBP_OP_CURSOR_CLOSE, NULL, NULL);
    CHECK_EQ_INT(dbp_submit_on_lease(lease, close, NULL, &err), DBP_OK);
    CHECK_EQ_INT(outcome(close, NULL), DBP_OK);
    dbp_request_unref(close);
    dbp_request *rollback = new_request(DBP_OP_ROLLBACK, NULL, NULL);
    CHECK_EQ_INT(dbp_submit_on_lease(lease, rollback, NULL, &err), DBP_OK);
    CHECK_EQ_INT(outcome(rollback, NULL), DBP_OK);
    dbp_request_unref(rollback);
    dbp_lease_release(lease); /* returned when the stuck call ends */
    fault_open_gate();
    CHECK(EVENTUALLY(FAULT_GET(open) == 0, WAIT_MS));
    check_pool_whole(mgr);
    CHECK_EQ_INT(FAULT_GET(n_marks), 0);
    dbp_manager_free(mgr);
}

/* close_pool with a stuck statement returns within its timeout, having
 * answered the statement's caller; the engine call ends later. */
static void test_close_pool_is_bounded(void)
{
    dbp_pool_options o = options(2);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_request *stuck = submit_timed(mgr, DBP_OP_EXECUTE, "HANG", 0);
    dbp_request *stoppable = submit_timed(mgr, DBP_OP_EXECUTE, "BLOCK", 0);
    CHECK(EVENTUALLY(FAULT_GET(blocked) == 2, WAIT_MS));
    int64_t start = now_ms();
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "p", 300, &err), DBP_E_TIMEOUT);
    int64_t ms = now_ms() - start;
    CHECK(ms >= 290 && ms < 800);
    CHECK(strstr(err.message, "still running") != NULL);
    CHECK_EQ_INT(dbp_request_is_done(stuck), 1);
    CHECK_EQ_INT(dbp_request_status(stuck, &err), DBP_E_CLOSED);
    CHECK_EQ_INT(outcome(stoppable, NULL), DBP_E_CLOSED);
    dbp_request_unref(stuck);
    dbp_request_unref(stoppable);
    fault_open_gate();
    CHECK(EVENTUALLY(FAULT_GET(open) == 0, WAIT_MS));
    dbp_manager_free(mgr);
}

/* Shutting the manager down with a stuck statement is bounded as well; the
 * abandoned worker frees what it holds when the engine returns. */
static void test_shutdown_is_bounded(void)
{
    dbp_pool_options o = options(1);
    dbp_manager *mgr = manager_with_pool(&o);
    dbp_request *stuck = submit_timed(mgr, DBP_OP_EXECUTE, "HANG", 0);
    CHECK(EVENTUALLY(FAULT_GET(blocked) == 1, WAIT_MS));
    int64_t start = now_ms();
    CHECK_EQ_INT(dbp_manager_shutdown(mgr, 300), DBP_E_TIMEOUT);
    CHECK(now_ms() - start < 800);
    CHECK_EQ_INT(dbp_request_status(stuck, NULL), DBP_E_CLOSED);
    dbp_request_unref(stuck);
    fault_open_gate();
    CHECK(EVENTUALLY(FAULT_GET(open) == 0, WAIT_MS));
}

/* Time options out of range are refused, never undefined behaviour. */
static void test_time_options_are_validated(void)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_error err = {0};
    dbp_pool_options o = options(1);
    o.query_timeout_ms = -1;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "p", "fault", NULL, 0, &o, &err), DBP_E_CONFIG);
    o = options(1);
    o.cancel_grace_ms = 0;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "p", "fault", NULL, 0, &o, &err), DBP_E_CONFIG);
    o = options(1);
    o.connect_timeout_ms = 0;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "p", "fault", NULL, 0, &o, &err), DBP_E_CONFIG);
    o = options(1);
    o.acquire_timeout_ms = INT64_MAX;
    CHECK_EQ_INT(dbp_manager_create_pool(mgr, "p", "fault", NULL, 0, &o, &err), DBP_E_CONFIG);
    CHECK(strstr(err.message, "ten years") != NULL);
    dbp_manager_free(mgr);
}

int main(void)
{
    CHECK_EQ_INT(fault_register(), DBP_OK);
    RUN(test_timeout_stops_statement);
    RUN(test_query_timeout_is_the_default);
    RUN(test_stuck_engine_is_abandoned_not_the_caller);
    RUN(test_cancel_of_stuck_call_returns_within_grace);
    RUN(test_timeout_while_waiting_for_a_connection);
    RUN(test_abandoned_statement_loses_its_transaction);
    RUN(test_close_pool_is_bounded);
    RUN(test_shutdown_is_bounded);
    RUN(test_time_options_are_validated);
    return check_exit();
}
