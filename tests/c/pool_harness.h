/* pool_harness.h - what the pool and topology tests share: a bound on every
 * wait, a clock, EVENTUALLY for conditions another thread makes true, and
 * making, awaiting and inspecting requests. Needs check.h and
 * fault_driver.h (for fault_now_ns) first. */
#ifndef DBP_TEST_POOL_HARNESS_H
#define DBP_TEST_POOL_HARNESS_H

#include <stdint.h>
#include <string.h>
#include <time.h>

/* Upper bound for any wait that should end: a bug fails a check instead of
 * hanging the suite. */
#define WAIT_MS 10000

static inline int64_t now_ms(void) { return fault_now_ns() / 1000000; }

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls `cond` every millisecond until it holds or `ms` pass; yields whether
 * it held. */
#define EVENTUALLY(cond, ms)                                                              \
    ({                                                                                    \
        int64_t eventually_deadline_ = now_ms() + (ms);                                   \
        int eventually_ok_;                                                               \
        while (!(eventually_ok_ = !!(cond)) && now_ms() < eventually_deadline_)           \
            sleep_ms(1);                                                                  \
        eventually_ok_;                                                                   \
    })

/* A new manager; the check fails the test if it cannot be made. */
static inline dbp_manager *new_manager(void)
{
    dbp_manager *mgr = NULL;
    dbp_error err;
    CHECK_EQ_INT(dbp_manager_new(&mgr, &err), DBP_OK);
    return mgr;
}

/* A new request (params may be NULL and are taken over). */
static inline dbp_request *new_request(dbp_op op, const char *sql, dbp_params *params)
{
    dbp_request *req = NULL;
    dbp_error err;
    CHECK_EQ_INT(dbp_request_new(&req, op, sql, sql ? strlen(sql) : 0, params, &err), DBP_OK);
    return req;
}

/* Waits (bounded) for a request and returns its status, or -1 if it never
 * completed. */
static inline int outcome(dbp_request *req, dbp_error *err)
{
    int waited = dbp_request_wait(req, WAIT_MS);
    CHECK_EQ_INT(waited, DBP_OK);
    if (waited != DBP_OK)
        return -1;
    dbp_error local;
    return dbp_request_status(req, err ? err : &local);
}

static inline dbp_pool_stats stats(dbp_manager *mgr, const char *pool)
{
    dbp_pool_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ_INT(dbp_manager_pool_stats(mgr, pool, &s, NULL, 0, NULL), DBP_OK);
    return s;
}

#endif
