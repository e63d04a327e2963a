/* test_reconfigure.c - dbp_manager_reconfigure_pool: new settings retire
 * connections without cutting statements short, removed endpoints drain,
 * added ones are probed before they take reads, options apply in place,
 * a failed reconfigure changes nothing, and reconfigures racing a workload
 * lose no request and leak no connection. Servers are named endpoints of
 * the "fault" engine (fault_driver.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "db_pool.h"
#include "fault_driver.h"
#include "pool_harness.h"

enum { MAX_EPS = 4 };

static dbp_pool_options options(void)
{
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = 1;
    o.max_size = 4;
    o.acquire_timeout_ms = 5000;
    o.idle_timeout_ms = 0;
    o.max_lifetime_ms = 0;
    o.validate_after_ms = -1;
    o.probe_interval_ms = 20;
    o.failover_timeout_ms = 5000;
    return o;
}

/* Endpoints named `names`, each with the setting label=`label` (a stand-in
 * for a password: it changes the settings, not the address). */
typedef struct endpoints {
    dbp_setting settings[MAX_EPS][2];
    dbp_endpoint_config eps[MAX_EPS];
    size_t n;
} endpoints;

static void endpoints_of(endpoints *e, const char *const *names, int n, const char *label)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i < n; i++) {
        e->settings[i][0] = (dbp_setting){"name", names[i]};
        e->settings[i][1] = (dbp_setting){"label", label};
        e->eps[i] = (dbp_endpoint_config){e->settings[i], 2};
    }
    e->n = (size_t)n;
}

static void create(dbp_manager *mgr, const char *id, const char *const *names, int n,
                   const dbp_pool_options *o)
{
    endpoints e;
    endpoints_of(&e, names, n, "v1");
    dbp_error err = {0};
    int rc = dbp_manager_create_pool_endpoints(mgr, id, "fault", e.eps, e.n, o, &err);
    if (rc != DBP_OK)
        fprintf(stderr, "create: %s\n", err.message);
    CHECK_EQ_INT(rc, DBP_OK);
}

static int reconfigure(dbp_manager *mgr, const char *id, const char *const *names, int n,
                       const char *label, const dbp_pool_options *o, dbp_reconfigure_report *r,
                       dbp_error *err)
{
    endpoints e;
    endpoints_of(&e, names, n, label);
    return dbp_manager_reconfigure_pool(mgr, id, e.eps, e.n, o, r, err);
}

static dbp_request *submit_ro(dbp_manager *mgr, const char *pool, const char *sql, int readonly)
{
    dbp_request *req = new_request(DBP_OP_QUERY, sql, NULL);
    if (readonly >= 0)
        dbp_request_set_readonly(req, readonly);
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_submit(mgr, pool, req, NULL, &err), DBP_OK);
    return req;
}

static int run_ro(dbp_manager *mgr, const char *pool, const char *sql, int readonly)
{
    dbp_request *req = submit_ro(mgr, pool, sql, readonly);
    dbp_error err = {0};
    int rc = outcome(req, &err);
    if (rc != DBP_OK)
        fprintf(stderr, "run: %s\n", err.message);
    dbp_request_unref(req);
    return rc;
}

static dbp_endpoint_stats ep_stats(dbp_manager *mgr, const char *pool, int index)
{
    dbp_endpoint_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(dbp_manager_endpoint_stats(mgr, pool, index, &s, NULL), DBP_OK);
    return s;
}

static uint64_t closed_reconfigured(dbp_manager *mgr, const char *pool)
{
    dbp_pool_metrics m;
    dbp_endpoint_metrics eps[8];
    CHECK_EQ_INT(dbp_manager_pool_metrics(mgr, pool, &m, eps, 8, NULL, 0, NULL), DBP_OK);
    uint64_t n = 0;
    for (int i = 0; i < m.n_endpoints && i < 8; i++)
        n += eps[i].closed[DBP_CLOSE_RECONFIGURED];
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_new_settings_retire_connections_without_cutting_statements(void)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    o.min_size = 2;
    const char *alpha[] = {"alpha"};
    create(mgr, "p", alpha, 1, &o);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 2, WAIT_MS));
    dbp_request *running = submit_ro(mgr, "p", "BLOCK", -1);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", blocked) == 1, WAIT_MS));
    int connects = FAULT_EP_GET("alpha", connects);

    dbp_reconfigure_report r;
    dbp_error err = {0};
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v2", &o, &r, &err), DBP_OK);
    CHECK_EQ_INT(r.endpoints_changed, 1);
    CHECK_EQ_INT(r.endpoints_added + r.endpoints_removed + r.options_changed, 0);
    CHECK_EQ_INT(r.connections_retired, 1); /* the idle one; the busy one runs on */
    CHECK_EQ_INT(FAULT_EP_GET("alpha", blocked), 1);

    /* the new settings open new connections while the statement runs */
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", connects) > connects, WAIT_MS));
    CHECK_EQ_INT(run_ro(mgr, "p", "MARK 1", -1), DBP_OK);
    fault_open_gate();
    CHECK_EQ_INT(outcome(running, NULL), DBP_OK); /* finished, not cut */
    dbp_request_unref(running);
    /* ...and its connection closed when it came back */
    CHECK(EVENTUALLY(closed_reconfigured(mgr, "p") == 2, WAIT_MS));
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == stats(mgr, "p").size, WAIT_MS));
    dbp_manager_free(mgr);
}

static void test_failed_reconfigure_changes_nothing(void)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    const char *alpha[] = {"alpha"};
    create(mgr, "p", alpha, 1, &o);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 1, WAIT_MS));

    dbp_setting bad[] = {{"name", "alpha"}, {"no_such_key", "1"}};
    dbp_endpoint_config ep = {bad, 2};
    dbp_pool_options bigger = o;
    bigger.max_size = 9;
    dbp_error err = {0};
    dbp_reconfigure_report r;
    CHECK_EQ_INT(dbp_manager_reconfigure_pool(mgr, "p", &ep, 1, &bigger, &r, &err), DBP_E_CONFIG);
    CHECK(strstr(err.message, "no_such_key") != NULL);
    CHECK_EQ_INT(stats(mgr, "p").max_size, 4);

    dbp_pool_options wrong = o;
    wrong.min_size = 5; /* above max_size */
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &wrong, &r, &err), DBP_E_CONFIG);
    CHECK_EQ_INT(reconfigure(mgr, "nope", alpha, 1, "v1", &o, &r, &err), DBP_E_NOT_FOUND);
    CHECK_EQ_INT(dbp_manager_reconfigure_pool(mgr, "p", &ep, 0, &o, &r, &err), DBP_E_CONFIG);
    CHECK_EQ_INT(FAULT_EP_GET("alpha", disconnects), 0);
    CHECK_EQ_INT(closed_reconfigured(mgr, "p"), 0);

    /* the same configuration again: nothing to do */
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &o, &r, &err), DBP_OK);
    CHECK_EQ_INT(r.endpoints_added + r.endpoints_removed + r.endpoints_changed, 0);
    CHECK_EQ_INT(r.options_changed + r.connections_retired, 0);

    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "p", 1000, &err), DBP_OK);
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &o, &r, &err), DBP_E_NOT_FOUND);
    dbp_manager_free(mgr);
}

static void test_options_apply_in_place(void)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    o.min_size = 3;
    const char *alpha[] = {"alpha"};
    create(mgr, "p", alpha, 1, &o);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 3, WAIT_MS));

    dbp_pool_options smaller = o;
    smaller.min_size = 1;
    smaller.max_size = 1;
    smaller.acquire_timeout_ms = 100;
    dbp_reconfigure_report r;
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &smaller, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.options_changed, 1);
    CHECK_EQ_INT(r.connections_retired, 2);
    dbp_pool_stats s = stats(mgr, "p");
    CHECK_EQ_INT(s.max_size, 1);
    CHECK_EQ_INT(s.size, 1);

    /* the new acquire_timeout bounds the next wait */
    dbp_request *holder = submit_ro(mgr, "p", "BLOCK", -1);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", blocked) == 1, WAIT_MS));
    int64_t t0 = now_ms();
    dbp_request *waiter = submit_ro(mgr, "p", "MARK 1", -1);
    CHECK_EQ_INT(outcome(waiter, NULL), DBP_E_TIMEOUT);
    CHECK(now_ms() - t0 < 2000);
    dbp_request_unref(waiter);
    fault_open_gate();
    CHECK_EQ_INT(outcome(holder, NULL), DBP_OK);
    dbp_request_unref(holder);

    /* a raised min_size is filled by the janitor */
    dbp_pool_options bigger = o;
    bigger.min_size = 3;
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &bigger, &r, NULL), DBP_OK);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 3, WAIT_MS));

    /* a changed init_sql retires every session */
    dbp_pool_options init = bigger;
    init.init_sql = "MARK 7";
    CHECK_EQ_INT(reconfigure(mgr, "p", alpha, 1, "v1", &init, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.connections_retired, 3);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 3, WAIT_MS));
    dbp_manager_free(mgr);
}

static void test_endpoints_added_and_removed(void)
{
    fault_reset();
    fault_ep_set_role("alpha", DBP_ROLE_PRIMARY);
    fault_ep_set_role("bravo", DBP_ROLE_REPLICA);
    fault_ep_set_role("charlie", DBP_ROLE_REPLICA);
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    o.read_from = DBP_READ_REPLICAS;
    /* one endpoint first: it gains replicas and tracks roles from then on */
    const char *alpha[] = {"alpha"};
    create(mgr, "p", alpha, 1, &o);

    const char *two[] = {"alpha", "bravo"};
    dbp_reconfigure_report r;
    CHECK_EQ_INT(reconfigure(mgr, "p", two, 2, "v1", &o, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.endpoints_added, 1);
    CHECK(EVENTUALLY(ep_stats(mgr, "p", 1).role == DBP_ROLE_REPLICA, WAIT_MS));
    CHECK(EVENTUALLY(ep_stats(mgr, "p", 0).is_primary, WAIT_MS));
    int before = FAULT_EP_GET("bravo", statements);
    CHECK_EQ_INT(run_ro(mgr, "p", "MARK 1", 1), DBP_OK);
    CHECK_EQ_INT(FAULT_EP_GET("bravo", statements), before + 1);

    /* bravo leaves while a read runs on it: the read finishes, then its
     * connection closes; reads go to charlie once it is probed */
    dbp_request *running = submit_ro(mgr, "p", "BLOCK", 1);
    CHECK(EVENTUALLY(FAULT_EP_GET("bravo", blocked) == 1, WAIT_MS));
    const char *swap[] = {"alpha", "charlie"};
    CHECK_EQ_INT(reconfigure(mgr, "p", swap, 2, "v1", &o, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.endpoints_added, 1);
    CHECK_EQ_INT(r.endpoints_removed, 1);
    CHECK(ep_stats(mgr, "p", 1).removed);
    CHECK(EVENTUALLY(ep_stats(mgr, "p", 2).role == DBP_ROLE_REPLICA, WAIT_MS));
    int on_bravo = FAULT_EP_GET("bravo", statements);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(run_ro(mgr, "p", "MARK 1", 1), DBP_OK);
    CHECK_EQ_INT(FAULT_EP_GET("bravo", statements), on_bravo);
    fault_open_gate();
    CHECK_EQ_INT(outcome(running, NULL), DBP_OK);
    dbp_request_unref(running);
    CHECK(EVENTUALLY(FAULT_EP_GET("bravo", open) == 0 && ep_stats(mgr, "p", 1).size == 0,
                     WAIT_MS));

    /* the primary leaves too: writes wait for a probe to find one */
    fault_ep_set_role("charlie", DBP_ROLE_PRIMARY);
    const char *only[] = {"charlie"};
    CHECK_EQ_INT(reconfigure(mgr, "p", only, 1, "v1", &o, &r, NULL), DBP_OK);
    CHECK_EQ_INT(run_ro(mgr, "p", "MARK 2", 0), DBP_OK);
    CHECK(ep_stats(mgr, "p", 2).is_primary);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 0, WAIT_MS));
    CHECK_EQ_INT(stats(mgr, "p").failovers_total, 0); /* configured, not a failover */

    /* bravo comes back: the same slot, its counters kept */
    const char *back[] = {"charlie", "bravo"};
    fault_ep_set_role("bravo", DBP_ROLE_REPLICA);
    CHECK_EQ_INT(reconfigure(mgr, "p", back, 2, "v1", &o, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.endpoints_added, 1);
    CHECK(!ep_stats(mgr, "p", 1).removed);
    CHECK_EQ_INT(stats(mgr, "p").n_endpoints, 3);
    CHECK(EVENTUALLY(ep_stats(mgr, "p", 1).role == DBP_ROLE_REPLICA, WAIT_MS));
    dbp_manager_free(mgr);
}

static void test_single_endpoint_moves_to_another_address(void)
{
    fault_reset();
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    const char *alpha[] = {"alpha"}, *bravo[] = {"bravo"};
    create(mgr, "p", alpha, 1, &o);
    dbp_reconfigure_report r;
    CHECK_EQ_INT(reconfigure(mgr, "p", bravo, 1, "v1", &o, &r, NULL), DBP_OK);
    CHECK_EQ_INT(r.endpoints_added, 1);
    CHECK_EQ_INT(r.endpoints_removed, 1);
    int before = FAULT_EP_GET("bravo", statements);
    CHECK_EQ_INT(run_ro(mgr, "p", "MARK 1", -1), DBP_OK);
    CHECK_EQ_INT(FAULT_EP_GET("bravo", statements), before + 1);
    CHECK(EVENTUALLY(FAULT_EP_GET("alpha", open) == 0, WAIT_MS));
    dbp_manager_free(mgr);
}

/* ---- racing a workload -------------------------------------------------------- */

typedef struct worker_arg {
    dbp_manager *mgr;
    atomic_int *stop;
    int failed, ran;
} worker_arg;

static void *workload(void *p)
{
    worker_arg *a = p;
    while (!atomic_load(a->stop)) {
        dbp_request *req = new_request(DBP_OP_QUERY, "MARK 1", NULL);
        dbp_error err = {0};
        int rc = dbp_submit(a->mgr, "p", req, NULL, &err);
        if (rc == DBP_OK)
            rc = outcome(req, &err);
        if (rc != DBP_OK) {
            fprintf(stderr, "workload: %s\n", err.message);
            a->failed++;
        }
        a->ran++;
        dbp_request_unref(req);
    }
    return NULL;
}

static void test_reconfigures_racing_a_workload_lose_nothing(void)
{
    fault_reset();
    fault_ep_set_role("alpha", DBP_ROLE_PRIMARY);
    fault_ep_set_role("bravo", DBP_ROLE_REPLICA);
    dbp_manager *mgr = new_manager();
    dbp_pool_options o = options();
    const char *two[] = {"alpha", "bravo"}, *one[] = {"alpha"};
    create(mgr, "p", two, 2, &o);
    atomic_int stop = 0;
    worker_arg args[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){mgr, &stop, 0, 0};
        CHECK_EQ_INT(pthread_create(&threads[i], NULL, workload, &args[i]), 0);
    }
    for (int round = 0; round < 40; round++) {
        dbp_pool_options next = o;
        next.max_size = 1 + round % 4;
        next.min_size = round % 2;
        char label[16];
        snprintf(label, sizeof label, "v%d", round / 3);
        int two_eps = round % 5 != 4;
        dbp_error err = {0};
        int rc = reconfigure(mgr, "p", two_eps ? two : one, two_eps ? 2 : 1, label, &next, NULL,
                             &err);
        if (rc != DBP_OK)
            fprintf(stderr, "reconfigure: %s\n", err.message);
        CHECK_EQ_INT(rc, DBP_OK);
        sleep_ms(5);
    }
    atomic_store(&stop, 1);
    int ran = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ran += args[i].ran;
        failed += args[i].failed;
    }
    CHECK(ran > 40);
    CHECK_EQ_INT(failed, 0);
    dbp_pool_stats s = stats(mgr, "p");
    CHECK_EQ_INT(s.in_use, 0);
    CHECK(EVENTUALLY(FAULT_GET(open) == stats(mgr, "p").size, WAIT_MS));
    dbp_manager_free(mgr);
    CHECK_EQ_INT(FAULT_GET(open), 0);
}

int main(void)
{
    CHECK_EQ_INT(fault_register(), DBP_OK);
    RUN(test_new_settings_retire_connections_without_cutting_statements);
    RUN(test_failed_reconfigure_changes_nothing);
    RUN(test_options_apply_in_place);
    RUN(test_endpoints_added_and_removed);
    RUN(test_single_endpoint_moves_to_another_address);
    RUN(test_reconfigures_racing_a_workload_lose_nothing);
    return check_exit();
}
