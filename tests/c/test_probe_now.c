/* test_probe_now.c - dbp_manager_probe_now: a caller that heard of a
 * failover elsewhere (Redis Sentinel) makes the pool re-probe every
 * endpoint's role at once instead of after probe_interval_ms. Servers are
 * named endpoints of the "fault" engine (fault_driver.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "db_pool.h"
#include "fault_driver.h"
#include "pool_harness.h"

static const char *const names[] = {"alpha", "bravo", "charlie"};

/* Probes far apart, so that only probe_now can explain a prompt one. */
static dbp_pool_options slow_probe_options(void)
{
    dbp_pool_options o;
    dbp_pool_options_init(&o);
    o.min_size = 1;
    o.max_size = 2;
    o.idle_timeout_ms = 0;
    o.max_lifetime_ms = 0;
    o.validate_after_ms = -1;
    o.probe_interval_ms = 60000;
    o.failover_timeout_ms = 10000;
    return o;
}

static void create(dbp_manager *mgr, const char *id, int n)
{
    dbp_setting settings[3][1];
    dbp_endpoint_config eps[3];
    for (int i = 0; i < n; i++) {
        settings[i][0] = (dbp_setting){"name", names[i]};
        eps[i] = (dbp_endpoint_config){settings[i], 1};
    }
    dbp_pool_options o = slow_probe_options();
    dbp_error err = {0};
    int rc = dbp_manager_create_pool_endpoints(mgr, id, "fault", eps, (size_t)n, &o, &err);
    if (rc != DBP_OK)
        fprintf(stderr, "create_pool_endpoints: %s\n", err.message);
    CHECK_EQ_INT(rc, DBP_OK);
}

static int is_primary(dbp_manager *mgr, const char *pool, int i)
{
    dbp_endpoint_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(dbp_manager_endpoint_stats(mgr, pool, i, &s, NULL), DBP_OK);
    return s.is_primary;
}

static int write_once(dbp_manager *mgr, const char *pool)
{
    dbp_request *req = new_request(DBP_OP_EXECUTE, "MARK 1", NULL);
    CHECK_EQ_INT(dbp_submit(mgr, pool, req, NULL, NULL), DBP_OK);
    int rc = outcome(req, NULL);
    dbp_request_unref(req);
    return rc;
}

/* Both servers claim to be the primary (a promoted replica while the old
 * primary still runs): the pool keeps writing to the one it had. Once the
 * old one is demoted, only a probe tells the pool; probe_now brings it at
 * once, and writes move. */
static void test_probe_now_moves_writes_at_once(void)
{
    fault_reset();
    fault_ep_set_role("alpha", DBP_ROLE_PRIMARY);
    fault_ep_set_role("bravo", DBP_ROLE_REPLICA);
    fault_ep_set_role("charlie", DBP_ROLE_REPLICA);
    dbp_manager *mgr = new_manager();
    create(mgr, "p", 3);
    CHECK_EQ_INT(is_primary(mgr, "p", 0), 1);
    int probes = FAULT_EP_GET("bravo", probes);

    fault_ep_set_role("bravo", DBP_ROLE_PRIMARY);
    fault_ep_set_role("alpha", DBP_ROLE_REPLICA);
    sleep_ms(300);
    CHECK_EQ_INT(FAULT_EP_GET("bravo", probes), probes); /* probe_interval_ms is a minute */
    CHECK_EQ_INT(is_primary(mgr, "p", 0), 1);

    int64_t t0 = now_ms();
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "p", NULL), DBP_OK);
    CHECK(EVENTUALLY(is_primary(mgr, "p", 1), 2000));
    int64_t took = now_ms() - t0;
    if (took > 500)
        fprintf(stderr, "probe_now took %lld ms to move the primary\n", (long long)took);
    CHECK(took <= 1000);
    CHECK_EQ_INT(is_primary(mgr, "p", 0), 0);
    /* every endpoint, not just the primaries (charlie's probe may end after bravo's) */
    CHECK(EVENTUALLY(FAULT_EP_GET("charlie", probes) >= 2, 2000));
    int before = FAULT_EP_GET("bravo", statements);
    CHECK_EQ_INT(write_once(mgr, "p"), DBP_OK);
    CHECK_EQ_INT(FAULT_EP_GET("bravo", statements), before + 1);
    dbp_manager_free(mgr);
}

/* A down endpoint is retried at once too, past its backoff. */
static void test_probe_now_retries_a_down_endpoint(void)
{
    fault_reset();
    fault_ep_set_role("alpha", DBP_ROLE_PRIMARY);
    fault_ep_set_role("bravo", DBP_ROLE_REPLICA);
    dbp_manager *mgr = new_manager();
    create(mgr, "p", 2);
    fault_ep_set_down("bravo", 1);
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "p", NULL), DBP_OK);
    dbp_endpoint_stats s;
    CHECK(EVENTUALLY((dbp_manager_endpoint_stats(mgr, "p", 1, &s, NULL) == DBP_OK &&
                      s.health == DBP_HEALTH_DOWN),
                     2000));
    fault_ep_set_down("bravo", 0);
    int64_t t0 = now_ms();
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "p", NULL), DBP_OK);
    CHECK(EVENTUALLY((dbp_manager_endpoint_stats(mgr, "p", 1, &s, NULL) == DBP_OK &&
                      s.health == DBP_HEALTH_UP),
                     2000));
    CHECK(now_ms() - t0 <= 1000);
    dbp_manager_free(mgr);
}

/* An unknown pool is an error; a pool of one endpoint never probes. */
static void test_probe_now_errors_and_single_endpoint(void)
{
    fault_reset();
    fault_ep_set_role("alpha", DBP_ROLE_PRIMARY);
    dbp_manager *mgr = new_manager();
    dbp_error err = {0};
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "nope", &err), DBP_E_NOT_FOUND);
    CHECK(strstr(err.message, "nope") != NULL);
    create(mgr, "one", 1);
    int probes = FAULT_EP_GET("alpha", probes);
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "one", NULL), DBP_OK);
    sleep_ms(100);
    CHECK_EQ_INT(FAULT_EP_GET("alpha", probes), probes);
    CHECK_EQ_INT(dbp_manager_close_pool(mgr, "one", -1, NULL), DBP_OK);
    CHECK_EQ_INT(dbp_manager_probe_now(mgr, "one", NULL), DBP_E_NOT_FOUND);
    dbp_manager_free(mgr);
}

int main(void)
{
    CHECK_EQ_INT(fault_register(), DBP_OK);
    RUN(test_probe_now_moves_writes_at_once);
    RUN(test_probe_now_retries_a_down_endpoint);
    RUN(test_probe_now_errors_and_single_endpoint);
    return check_exit();
}
