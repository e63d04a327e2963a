/* endpoint.c - the health, circuit breaker and role of each endpoint of a
 * pool with several endpoints, and the probes that keep them current. A
 * single-endpoint pool tracks health too (for stats: down while connecting
 * fails, up again on the next connection), but never routes by it.
 *
 * Health: up -> suspect when a connection to it breaks in use (a probe
 * follows at once); -> down when connecting or probing fails. A down
 * endpoint gets no new connections until its backoff (exponential, with
 * jitter) expires; then one probe tries it, and success brings it back up.
 *
 * Roles come from the driver's probe_role. When an endpoint's role changes,
 * its generation is bumped: idle connections close now, in-use ones when
 * they come back. Writes go to pool->primary, which moves to another
 * endpoint only when that one reports itself primary while the current one
 * is down or no longer primary, so a restarted old primary never takes
 * writes back from the node that was promoted in its place.
 * dbp_manager_probe_now brings every probe forward for a caller that heard
 * of a failover first (Redis Sentinel). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "error.h"

#define BACKOFF_BASE_NS MS_TO_NS(100)
#define BACKOFF_MAX_NS MS_TO_NS(5000)
/* While requests wait for a role no endpoint has, probe this often. */
#define STARVED_PROBE_NS MS_TO_NS(100)

int dbp_pool_has_topology(const dbp_pool *pool)
{
    return pool->topology;
}

static void set_health(dbp_endpoint *ep, dbp_health health, dbp_event_kind event)
{
    ep->health = health;
    ep->health_since_ns = dbp_now_ns();
    dbp_event_push_locked(ep->pool->mgr, event, ep, ep->role,
                          health == DBP_HEALTH_UP ? "" : ep->last_error);
}

void dbp_endpoint_connected_locked(dbp_endpoint *ep)
{
    if (dbp_pool_has_topology(ep->pool) || ep->health == DBP_HEALTH_UP)
        return; /* pools of several endpoints learn it from the probe */
    ep->failures = 0;
    ep->last_error[0] = '\0';
    set_health(ep, DBP_HEALTH_UP, DBP_EVENT_UP);
}

void dbp_endpoint_broke_locked(dbp_endpoint *ep, const dbp_error *err)
{
    ep->break_ns = dbp_now_ns();
    dbp_endpoint_suspect_locked(ep, err);
}

/* Backoff before retrying after `failures` consecutive failures. */
static int64_t backoff_ns(dbp_pool *pool, int failures)
{
    int64_t delay = BACKOFF_BASE_NS;
    for (int i = 1; i < failures && delay < BACKOFF_MAX_NS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_NS)
        delay = BACKOFF_MAX_NS;
    /* full jitter over the upper half, so endpoints that failed together
     * are not retried together */
    pool->rng = pool->rng * 1103515245u + 12345u;
    double r = (double)((pool->rng >> 8) & 0xffff) / 65536.0;
    return delay / 2 + (int64_t)((double)(delay / 2) * r);
}

void dbp_endpoint_failed_locked(dbp_endpoint *ep, const dbp_error *err, dbp_conn **to_close)
{
    dbp_pool *pool = ep->pool;
    int64_t now = dbp_now_ns();
    ep->failures++;
    ep->failed_total++;
    ep->reprobe = 0; /* down now: the backoff decides when to try again */
    ep->retry_ns = now + backoff_ns(pool, ep->failures);
    snprintf(ep->last_error, sizeof ep->last_error, "%.*s", (int)sizeof ep->last_error - 1,
             err->message);
    ep->break_ns = now;
    if (ep->health != DBP_HEALTH_DOWN)
        set_health(ep, DBP_HEALTH_DOWN, DBP_EVENT_DOWN);
    dbp_endpoint_close_idle_locked(ep, to_close, DBP_CLOSE_ENDPOINT_DOWN); /* gone too */
    dbp_janitor_wake_locked(pool->mgr);
}

void dbp_endpoint_suspect_locked(dbp_endpoint *ep, const dbp_error *err)
{
    snprintf(ep->last_error, sizeof ep->last_error, "%.*s", (int)sizeof ep->last_error - 1,
             err->message);
    if (ep->health != DBP_HEALTH_UP)
        return;
    ep->next_probe_ns = dbp_now_ns();
    set_health(ep, DBP_HEALTH_SUSPECT, DBP_EVENT_SUSPECT);
    dbp_janitor_wake_locked(ep->pool->mgr);
}

static void set_primary(dbp_pool *pool, dbp_endpoint *ep)
{
    if (ep && pool->last_primary && pool->last_primary != ep)
        dbp_counter_inc(&pool->m.failovers);
    pool->primary = ep;
    if (ep) {
        pool->last_primary = ep;
        dbp_event_push_locked(pool->mgr, DBP_EVENT_PRIMARY, ep, ep->role, "");
    }
}

/* Keeps pool->primary pointing at an endpoint that is up and primary. */
static void update_primary(dbp_pool *pool, dbp_endpoint *ep)
{
    dbp_endpoint *cur = pool->primary;
    if (ep->removed)
        return; /* a probe sent before a reconfigure removed it */
    if (ep->role == DBP_ROLE_PRIMARY) {
        if (cur != ep && (!cur || cur->health == DBP_HEALTH_DOWN || cur->role != DBP_ROLE_PRIMARY))
            set_primary(pool, ep);
        return;
    }
    if (cur != ep)
        return;
    pool->primary = NULL; /* demoted: another endpoint may have taken over already */
    for (int i = 0; i < pool->n_endpoints; i++) {
        dbp_endpoint *other = pool->endpoints[i];
        if (other != ep && other->role == DBP_ROLE_PRIMARY && other->health != DBP_HEALTH_DOWN &&
            !other->removed) {
            set_primary(pool, other);
            return;
        }
    }
}

void dbp_endpoint_probed_locked(dbp_endpoint *ep, dbp_conn *conn, dbp_role role, double lag_s,
                                dbp_conn **to_close)
{
    dbp_pool *pool = ep->pool;
    int64_t now = dbp_now_ns();
    ep->lag_s = lag_s;
    ep->probed_ns = now;
    ep->next_probe_ns = now + MS_TO_NS(dbp_pool_opts(pool)->probe_interval_ms);
    if (ep->reprobe) /* asked for while this probe ran: its answer may predate the ask */
        ep->next_probe_ns = now;
    ep->reprobe = 0;
    ep->failures = 0;
    if (ep->health != DBP_HEALTH_UP) {
        ep->last_error[0] = '\0';
        set_health(ep, DBP_HEALTH_UP, DBP_EVENT_UP);
    }
    if (role != ep->role) {
        dbp_role old = ep->role;
        ep->role = role;
        if (old != DBP_ROLE_UNKNOWN) {
            /* connections opened under the old role retire */
            ep->generation++;
            dbp_counter_inc(&pool->m.topology_generation);
            dbp_counter_inc(&ep->m.role_changes);
            dbp_endpoint_close_idle_locked(ep, to_close, DBP_CLOSE_TOPOLOGY);
        }
        if (conn) /* the probe's own connection has seen the new role: it stays */
            conn->generation = ep->generation;
        dbp_event_push_locked(pool->mgr, DBP_EVENT_ROLE, ep, old, "");
    }
    update_primary(pool, ep);
}

/* Sends a probe over a connection of `ep`: an idle one, or a new one when
 * the endpoint has room. Returns 0 when every connection is busy (which
 * shows the endpoint works) or memory ran out. */
static int start_probe(dbp_pool *pool, dbp_endpoint *ep)
{
    dbp_request *probe = dbp_request_new_internal(DBP_OP_PROBE, pool->mgr);
    if (!probe)
        return 0;
    dbp_conn *conn = dbp_endpoint_take_conn_locked(ep);
    if (!conn) {
        dbp_request_unref(probe);
        return 0;
    }
    probe->pool = pool;
    pool->refs++;
    probe->target = ep;
    probe->conn = conn;
    probe->enqueued_ns = dbp_now_ns();
    ep->probing = 1;
    dbp_worker_enqueue_locked(pool->mgr, probe);
    return 1;
}

int64_t dbp_pool_schedule_probes_locked(dbp_pool *pool, int64_t now)
{
    int64_t next = INT64_MAX;
    if (!dbp_pool_has_topology(pool) || pool->closed)
        return next;
    for (int i = 0; i < pool->n_endpoints; i++) {
        dbp_endpoint *ep = pool->endpoints[i];
        if (ep->probing || ep->removed)
            continue;
        int64_t due = ep->health == DBP_HEALTH_DOWN ? ep->retry_ns : ep->next_probe_ns;
        if (pool->starved && ep->health != DBP_HEALTH_DOWN && ep->probed_ns + STARVED_PROBE_NS < due)
            due = ep->probed_ns + STARVED_PROBE_NS;
        if (due <= now) {
            if (start_probe(pool, ep))
                continue;
            due = now + MS_TO_NS(dbp_pool_opts(pool)->probe_interval_ms);
            ep->next_probe_ns = due;
        }
        if (due < next)
            next = due;
    }
    return next;
}

int dbp_manager_probe_now(dbp_manager *mgr, const char *pool_id, dbp_error *err)
{
    if (dbp_manager_forked(mgr))
        return dbp_manager_forked_error(err);
    pthread_mutex_lock(&mgr->mu);
    size_t at = pool_id && !mgr->closing ? dbp_manager_find_pool_locked(mgr, pool_id) : SIZE_MAX;
    dbp_pool *pool = at != SIZE_MAX ? mgr->pools[at] : NULL;
    if (!pool || pool->closed) {
        int closing = mgr->closing;
        pthread_mutex_unlock(&mgr->mu);
        if (closing)
            return dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "the pool manager is closed");
        return dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'",
                             pool_id ? pool_id : "");
    }
    int64_t now = dbp_now_ns();
    for (int i = 0; dbp_pool_has_topology(pool) && i < pool->n_endpoints; i++) {
        dbp_endpoint *ep = pool->endpoints[i];
        if (ep->removed)
            continue;
        ep->next_probe_ns = now;
        if (ep->health == DBP_HEALTH_DOWN)
            ep->retry_ns = now;
        if (ep->probing)
            ep->reprobe = 1;
    }
    dbp_janitor_wake_locked(mgr);
    pthread_mutex_unlock(&mgr->mu);
    return DBP_OK;
}
