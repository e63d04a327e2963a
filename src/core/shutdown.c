/* shutdown.c - closing a pool, or the whole manager, within a time bound.
 *
 * Closing answers every caller: queued requests fail with DBP_E_CLOSED at
 * once, running statements are stopped (deadline.c) and their callers
 * answered within the grace, and the closer waits, up to its timeout, for
 * the engine calls to return so their connections close cleanly. A call
 * still stuck in its engine after that is abandoned: its worker ends, and
 * frees what it holds, whenever the engine returns. */
#include <time.h>

#include "core.h"
#include "error.h"

#define DEFAULT_CLOSE_TIMEOUT_MS 10000

static int64_t close_deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
    if (timeout_ms > DBP_MAX_TIME_MS)
        timeout_ms = DBP_MAX_TIME_MS;
    return dbp_now_ns() + MS_TO_NS(timeout_ms);
}

static void wait_until(dbp_manager *mgr, int64_t when)
{
    struct timespec ts = {.tv_sec = when / 1000000000, .tv_nsec = when % 1000000000};
    pthread_cond_timedwait(&mgr->ended_cv, &mgr->mu, &ts);
}

/* Waits (releasing the lock meanwhile) until nothing of `pool`, closed
 * already, runs on a worker, answering stopped callers as their grace runs
 * out; at `deadline` answers the rest. DBP_E_TIMEOUT when something was left
 * running. The caller holds a pool reference. */
static int drain_pool_locked(dbp_manager *mgr, dbp_pool *pool, int64_t deadline)
{
    while (dbp_pool_has_running_locked(pool)) {
        int64_t now = dbp_now_ns();
        if (now >= deadline) {
            dbp_pool_watch_running_locked(pool, now, 1);
            return DBP_E_TIMEOUT;
        }
        int64_t next = dbp_pool_watch_running_locked(pool, now, 0);
        wait_until(mgr, next < deadline ? next : deadline);
    }
    return DBP_OK;
}

/* Unregisters pool `i` and closes it, keeping the registry's reference for
 * the caller; waiters go to `failed`, idle connections to `to_close`. */
static dbp_pool *unregister_locked(dbp_manager *mgr, size_t i, request_list *failed,
                                   dbp_conn **to_close)
{
    dbp_pool *pool = mgr->pools[i];
    mgr->pools[i] = mgr->pools[--mgr->n_pools];
    dbp_pool_close_locked(pool, failed, to_close);
    return pool;
}

/* Answers `failed` and closes `to_close` without the lock, then takes it
 * again. */
static void finish_unlocked(dbp_manager *mgr, request_list *failed, dbp_conn *to_close)
{
    pthread_mutex_unlock(&mgr->mu);
    dbp_requests_finish(failed);
    dbp_conns_destroy(to_close);
    pthread_mutex_lock(&mgr->mu);
}

int dbp_manager_close_pool(dbp_manager *mgr, const char *pool_id, int64_t timeout_ms,
                           dbp_error *err)
{
    int64_t deadline = close_deadline(timeout_ms);
    request_list failed = {0};
    dbp_conn *to_close = NULL;
    pthread_mutex_lock(&mgr->mu);
    size_t i = dbp_manager_find_pool_locked(mgr, pool_id);
    if (i == SIZE_MAX) {
        pthread_mutex_unlock(&mgr->mu);
        return dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'", pool_id);
    }
    dbp_pool *pool = unregister_locked(mgr, i, &failed, &to_close);
    finish_unlocked(mgr, &failed, to_close);
    int rc = drain_pool_locked(mgr, pool, deadline);
    dbp_pool *dead = dbp_pool_unref_locked(pool);
    pthread_mutex_unlock(&mgr->mu);
    dbp_pool_destroy(dead);
    if (rc != DBP_OK)
        return dbp_error_set(err, rc, 0, NULL,
                             "pool '%s' is closed, but some statements were still running in "
                             "the engine after the close timeout; their callers were answered "
                             "and their connections close when the engine returns",
                             pool_id);
    return DBP_OK;
}

int dbp_manager_shutdown(dbp_manager *mgr, int64_t timeout_ms)
{
    /* In a forked child the workers do not exist and the connections are
     * the parent's: closing them would end the parent's sessions. The
     * child leaves everything alone. */
    if (!mgr || dbp_manager_forked(mgr))
        return DBP_OK;
    int64_t deadline = close_deadline(timeout_ms);
    request_list failed = {0};
    dbp_conn *to_close = NULL;
    dbp_pool *closing = NULL;
    /* Everything closes in one locked step, so no work can be queued after
     * the workers decide to exit. */
    pthread_mutex_lock(&mgr->mu);
    mgr->closing = 1;
    while (mgr->n_pools) {
        dbp_pool *pool = unregister_locked(mgr, mgr->n_pools - 1, &failed, &to_close);
        pool->next_dead = closing;
        closing = pool;
    }
    pthread_cond_broadcast(&mgr->work_cv);
    pthread_cond_signal(&mgr->janitor_cv);
    pthread_cond_broadcast(&mgr->events_cv);
    finish_unlocked(mgr, &failed, to_close);

    int rc = DBP_OK;
    dbp_pool *dead = NULL;
    while (closing) {
        dbp_pool *pool = closing;
        closing = pool->next_dead;
        if (drain_pool_locked(mgr, pool, deadline) != DBP_OK)
            rc = DBP_E_TIMEOUT;
        if (dbp_pool_unref_locked(pool)) {
            pool->next_dead = dead;
            dead = pool;
        }
    }
    /* Workers finish what is queued, then exit; one stuck in its engine is
     * left behind (it holds its own manager reference). */
    while (mgr->n_workers > 0 && dbp_now_ns() < deadline)
        wait_until(mgr, deadline);
    if (mgr->n_workers > 0)
        rc = DBP_E_TIMEOUT;
    pthread_mutex_unlock(&mgr->mu);

    pthread_join(mgr->janitor, NULL); /* it never waits on an engine */
    while (dead) {
        dbp_pool *next = dead->next_dead;
        dbp_pool_destroy(dead);
        dead = next;
    }
    dbp_manager_unref(mgr);
    return rc;
}

void dbp_manager_free(dbp_manager *mgr) { dbp_manager_shutdown(mgr, -1); }
