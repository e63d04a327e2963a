/* waiting.h - what the pool tests share for waiting on threads: a bound on
 * every wait, a clock, and EVENTUALLY for conditions another thread makes
 * true. Needs check.h and fault_driver.h (for fault_now_ns) first. */
#ifndef DBP_TEST_WAITING_H
#define DBP_TEST_WAITING_H

#include <stdint.h>
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

#endif
