/* route.c - which endpoint of a logical pool serves a request: writes go to
 * the primary, reads follow the pool's read_from, and among the endpoints
 * that fit, the balance policy picks one with a connection to spare. */
#include <stdio.h>
#include <string.h>

#include "core.h"

int dbp_route_is_read(const dbp_request *req)
{
    return req->readonly > 0 || (req->readonly < 0 && req->op == DBP_OP_QUERY);
}

static int is_up(const dbp_endpoint *ep)
{
    return ep->health != DBP_HEALTH_DOWN;
}

static int primary_fits(const dbp_pool *pool, const dbp_endpoint *ep)
{
    return ep == pool->primary && is_up(ep);
}

static int replica_fits(const dbp_pool *pool, const dbp_endpoint *ep)
{
    if (ep->role != DBP_ROLE_REPLICA || !is_up(ep) || ep->removed)
        return 0;
    int64_t max_lag_ms = dbp_pool_opts(pool)->max_replica_lag_ms;
    return max_lag_ms <= 0 || (ep->lag_s >= 0 && ep->lag_s * 1000.0 <= (double)max_lag_ms);
}

int dbp_route_candidates(const dbp_pool *pool, const dbp_request *req, dbp_endpoint **out)
{
    if (req->target) {
        /* probes go even to a down endpoint, and so do a single endpoint's
         * warm-ups: that is how it comes back */
        *out = req->target;
        return !req->target->removed && (req->op == DBP_OP_PROBE || is_up(req->target) ||
                                         !dbp_pool_has_topology(pool));
    }
    if (!dbp_pool_has_topology(pool)) {
        *out = pool->primary; /* its one endpoint */
        return 1;
    }
    int read_from = dbp_route_is_read(req) ? dbp_pool_opts(pool)->read_from : DBP_READ_PRIMARY;
    int n = 0;
    if (read_from != DBP_READ_PRIMARY)
        for (int i = 0; i < pool->n_endpoints; i++)
            if (replica_fits(pool, pool->endpoints[i]))
                out[n++] = pool->endpoints[i];
    if (read_from == DBP_READ_ANY || n == 0)
        if (pool->primary && primary_fits(pool, pool->primary))
            out[n++] = pool->primary;
    return n;
}

static int has_spare(const dbp_pool *pool, const dbp_endpoint *ep)
{
    return ep->idle.head || dbp_endpoint_size(ep) < dbp_pool_opts(pool)->max_size;
}

dbp_endpoint *dbp_route_choose(dbp_pool *pool, dbp_endpoint **cands, int n)
{
    if (n == 1)
        return has_spare(pool, cands[0]) ? cands[0] : NULL;
    unsigned start = pool->next_rr++;
    dbp_endpoint *best = NULL;
    for (int k = 0; k < n; k++) {
        dbp_endpoint *ep = cands[(start + (unsigned)k) % (unsigned)n];
        if (!has_spare(pool, ep))
            continue;
        if (dbp_pool_opts(pool)->balance != DBP_BALANCE_LEAST_BUSY)
            return ep;
        int in_use = ep->busy.count;
        if (!best || in_use < best->busy.count)
            best = ep;
    }
    return best;
}

static const char *role_name(dbp_role role)
{
    return role == DBP_ROLE_PRIMARY ? "primary" : role == DBP_ROLE_REPLICA ? "replica" : "unknown";
}

void dbp_route_describe(const dbp_pool *pool, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < pool->n_endpoints && len < size; i++) {
        const dbp_endpoint *ep = pool->endpoints[i];
        int w;
        if (ep->health == DBP_HEALTH_DOWN)
            w = snprintf(buf + len, size - len, "%s%s down (%s)", i ? "; " : "", ep->label,
                         ep->last_error[0] ? ep->last_error : "unreachable");
        else
            w = snprintf(buf + len, size - len, "%s%s %s%s", i ? "; " : "", ep->label,
                         role_name(ep->role),
                         ep->role == DBP_ROLE_PRIMARY && ep != pool->primary ? " (not in use)" : "");
        if (w < 0)
            break;
        len += (size_t)w;
    }
}
