/* reconfigure.c - applying a new configuration to a running pool as a
 * diff, without cutting any work short (dbp_manager_reconfigure_pool).
 *
 * Endpoints are matched by address (the driver's label). A matched endpoint
 * whose settings differ (a rotated password, say) gets the new settings:
 * new connections use them, idle ones close now and in-use ones when they
 * come back. An endpoint no longer listed is flagged removed: it takes no
 * new work and its connections close as they come back; listed again, it is
 * revived. Options are replaced whole. Workers read settings and options
 * without the lock, so what is replaced is kept (pool->retired) until the
 * pool is freed: a few hundred bytes per reconfigure. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "error.h"

/* Endpoints a pool may have had over its life (removed ones included). */
#define MAX_ENDPOINT_SLOTS 128

typedef struct dbp_retired {
    struct dbp_retired *next;
    void *config;          /* the driver's settings, or NULL */
    dbp_pool_options *opts; /* or NULL */
} dbp_retired;

dbp_pool_options *dbp_pool_options_copy(const dbp_pool_options *opts)
{
    dbp_pool_options *copy = dbp_malloc(sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *opts;
    copy->init_sql = NULL;
    if (opts->init_sql && !(copy->init_sql = dbp_strdup(opts->init_sql))) {
        dbp_free(copy);
        return NULL;
    }
    return copy;
}

static void options_free(dbp_pool_options *opts)
{
    if (opts)
        dbp_free((char *)opts->init_sql);
    dbp_free(opts);
}

void dbp_retired_free(dbp_pool *pool)
{
    while (pool->retired) {
        dbp_retired *r = pool->retired;
        pool->retired = r->next;
        if (r->config)
            pool->driver->free_config(r->config);
        options_free(r->opts);
        dbp_free(r);
    }
}

uint64_t dbp_settings_hash(const dbp_setting *settings, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 14695981039346656037u; /* FNV-1a of "key\0value" */
        for (int part = 0; part < 2; part++) {
            const unsigned char *p = (const unsigned char *)(part ? settings[i].value
                                                                  : settings[i].key);
            do {
                h = (h ^ *p) * 1099511628211u;
            } while (*p++);
        }
        sum += h; /* a sum does not depend on the order of the settings */
    }
    return sum;
}

/* Field by field (the struct has padding, which memcmp would read); a new
 * option of dbp_pool_options must be added here. */
static int same_options(const dbp_pool_options *a, const dbp_pool_options *b)
{
    const char *sa = a->init_sql ? a->init_sql : "", *sb = b->init_sql ? b->init_sql : "";
    return a->min_size == b->min_size && a->max_size == b->max_size &&
           a->max_waiting == b->max_waiting && a->acquire_timeout_ms == b->acquire_timeout_ms &&
           a->idle_timeout_ms == b->idle_timeout_ms && a->max_lifetime_ms == b->max_lifetime_ms &&
           a->lifetime_jitter == b->lifetime_jitter &&
           a->validate_after_ms == b->validate_after_ms && a->read_from == b->read_from &&
           a->balance == b->balance && a->failover_timeout_ms == b->failover_timeout_ms &&
           a->probe_interval_ms == b->probe_interval_ms &&
           a->max_replica_lag_ms == b->max_replica_lag_ms &&
           a->query_timeout_ms == b->query_timeout_ms &&
           a->connect_timeout_ms == b->connect_timeout_ms &&
           a->cancel_grace_ms == b->cancel_grace_ms &&
           a->reset_on_release == b->reset_on_release && strcmp(sa, sb) == 0;
}

/* What one call prepares before it changes anything, so that it either
 * applies whole or not at all. */
typedef struct plan {
    size_t n;
    void **configs;        /* parsed settings of the new endpoints */
    uint64_t *hashes;
    int *match;            /* index of the existing endpoint at the same address, or -1 */
    dbp_endpoint **fresh;  /* new endpoints for the unmatched ones */
    dbp_retired **nodes;   /* n + 1 nodes to keep what is replaced */
    dbp_pool_options *opts;
} plan;

static void plan_free(plan *p, const dbp_driver *driver)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->configs && p->configs[i])
            driver->free_config(p->configs[i]);
        if (p->fresh && p->fresh[i]) {
            p->fresh[i]->config = NULL;
            dbp_endpoint_counters_free(&p->fresh[i]->m);
            dbp_free(p->fresh[i]);
        }
    }
    for (size_t i = 0; p->nodes && i <= p->n; i++)
        dbp_free(p->nodes[i]);
    dbp_free(p->configs);
    dbp_free(p->hashes);
    dbp_free(p->match);
    dbp_free(p->fresh);
    dbp_free(p->nodes);
    options_free(p->opts);
}

static void close_idle(dbp_endpoint *ep, dbp_conn **to_close)
{
    dbp_endpoint_close_idle_locked(ep, to_close, DBP_CLOSE_RECONFIGURED);
}

/* Matches the new endpoints to the pool's by address and allocates what
 * the change needs (the pool itself is not touched). */
static int plan_locked(dbp_pool *pool, plan *p, dbp_error *err)
{
    char label[sizeof pool->endpoints[0]->label];
    int added = 0;
    for (size_t i = 0; i < p->n; i++) {
        label[0] = '\0';
        if (pool->driver->describe)
            pool->driver->describe(p->configs[i], label, sizeof label);
        p->match[i] = -1;
        for (int e = 0; e < pool->n_endpoints && p->match[i] < 0; e++) {
            int taken = 0;
            for (size_t j = 0; j < i; j++)
                taken |= p->match[j] == e;
            if (!taken && label[0] && strcmp(pool->endpoints[e]->label, label) == 0)
                p->match[i] = e;
        }
        if (p->match[i] >= 0)
            continue;
        if (pool->n_endpoints + added >= MAX_ENDPOINT_SLOTS)
            return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                                 "pool '%s' has had %d different endpoints, the most one pool "
                                 "keeps track of; close it and create it again",
                                 pool->id, MAX_ENDPOINT_SLOTS);
        p->fresh[i] = dbp_endpoint_new(pool, pool->n_endpoints + added, p->configs[i]);
        if (!p->fresh[i])
            return dbp_error_nomem(err);
        added++;
    }
    for (size_t i = 0; i <= p->n; i++)
        if (!(p->nodes[i] = dbp_calloc(1, sizeof *p->nodes[i])))
            return dbp_error_nomem(err);
    dbp_endpoint **grown = dbp_realloc(pool->endpoints,
                                       (size_t)(pool->n_endpoints + added) * sizeof *grown);
    if (!grown)
        return dbp_error_nomem(err);
    pool->endpoints = grown; /* room only: the endpoints are still the same */
    return DBP_OK;
}

static void retire(dbp_pool *pool, plan *p, size_t node, void *config, dbp_pool_options *opts)
{
    dbp_retired *r = p->nodes[node];
    p->nodes[node] = NULL;
    r->config = config;
    r->opts = opts;
    r->next = pool->retired;
    pool->retired = r;
}

/* The endpoint leaves: no new work, its connections close as they come
 * back; writes wait for a probe to find the primary elsewhere. */
static void remove_endpoint(dbp_pool *pool, dbp_endpoint *ep, dbp_conn **to_close)
{
    ep->removed = 1;
    close_idle(ep, to_close);
    if (pool->primary == ep)
        pool->primary = NULL;
    if (pool->last_primary == ep)
        pool->last_primary = NULL; /* a configured change, not a failover */
}

static void apply_endpoints_locked(dbp_pool *pool, plan *p, dbp_reconfigure_report *report,
                                   dbp_conn **to_close)
{
    int64_t now = dbp_now_ns();
    for (int e = 0; e < pool->n_endpoints; e++) {
        int kept = 0;
        for (size_t i = 0; i < p->n; i++)
            kept |= p->match[i] == e;
        if (!kept && !pool->endpoints[e]->removed) {
            remove_endpoint(pool, pool->endpoints[e], to_close);
            report->endpoints_removed++;
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        dbp_endpoint *ep;
        if (p->match[i] < 0) {
            ep = p->fresh[i];
            p->fresh[i] = NULL;
            pool->endpoints[pool->n_endpoints++] = ep;
            report->endpoints_added++;
        } else {
            ep = pool->endpoints[p->match[i]];
            int revived = ep->removed, changed = ep->settings_hash != p->hashes[i];
            if (revived) { /* what it was before it left is not trusted */
                ep->removed = 0;
                ep->role = DBP_ROLE_UNKNOWN;
                report->endpoints_added++;
            } else if (changed) {
                report->endpoints_changed++;
            }
            if (revived || changed) {
                ep->settings_gen++;
                close_idle(ep, to_close);
            }
            if (changed) {
                retire(pool, p, i, ep->config, NULL);
                ep->config = p->configs[i];
            } else {
                pool->driver->free_config(p->configs[i]);
            }
        }
        p->configs[i] = NULL;
        ep->settings_hash = p->hashes[i];
        ep->next_probe_ns = now; /* learn its role before it takes work */
        if (p->n == 1 && !pool->topology)
            pool->primary = ep;
    }
    if (p->n > 1 && !pool->topology)
        pool->topology = 1; /* roles are tracked from now on, even with one endpoint left */
}

/* Connections follow the new limits: retirement is brought forward to the
 * new max_lifetime, and idle ones above a lowered max_size close now (in-use
 * ones when they come back, pool.c). */
static void apply_limits_locked(dbp_pool *pool, const dbp_pool_options *opts, dbp_conn **to_close)
{
    int64_t lifetime = opts->max_lifetime_ms > 0 ? MS_TO_NS(opts->max_lifetime_ms) : INT64_MAX;
    for (int e = 0; e < pool->n_endpoints; e++) {
        dbp_endpoint *ep = pool->endpoints[e];
        conn_list *lists[2] = {&ep->idle, &ep->busy};
        for (int l = 0; l < 2; l++)
            for (dbp_conn *c = lists[l]->head; c; c = c->next)
                if (c->handle && lifetime != INT64_MAX && c->created_ns + lifetime < c->retire_ns)
                    c->retire_ns = c->created_ns + lifetime;
        while (ep->idle.tail && dbp_endpoint_size(ep) > opts->max_size) {
            dbp_conn *conn = ep->idle.tail;
            dbp_conn_list_remove(&ep->idle, conn);
            dbp_conn_count_close_locked(conn, DBP_CLOSE_RECONFIGURED);
            conn->next = *to_close;
            *to_close = conn;
        }
    }
}

static void apply_options_locked(dbp_pool *pool, plan *p, dbp_reconfigure_report *report,
                                 dbp_conn **to_close)
{
    dbp_pool_options *old = atomic_load_explicit(&pool->live_opts, memory_order_relaxed);
    if (same_options(old, p->opts))
        return;
    report->options_changed = 1;
    const char *a = old->init_sql ? old->init_sql : "", *b = p->opts->init_sql ? p->opts->init_sql : "";
    if (strcmp(a, b) != 0) /* sessions set up the old way retire */
        for (int e = 0; e < pool->n_endpoints; e++) {
            pool->endpoints[e]->settings_gen++;
            close_idle(pool->endpoints[e], to_close);
        }
    atomic_store_explicit(&pool->live_opts, p->opts, memory_order_release);
    apply_limits_locked(pool, p->opts, to_close);
    p->opts = NULL;
    retire(pool, p, p->n, NULL, old);
}

static int count_chain(const dbp_conn *c)
{
    int n = 0;
    for (; c; c = c->next)
        n++;
    return n;
}

int dbp_manager_reconfigure_pool(dbp_manager *mgr, const char *pool_id,
                                 const dbp_endpoint_config *endpoints, size_t n_endpoints,
                                 const dbp_pool_options *opts, dbp_reconfigure_report *report,
                                 dbp_error *err)
{
    dbp_reconfigure_report ignored;
    report = report ? report : &ignored;
    memset(report, 0, sizeof *report);
    if (dbp_manager_forked(mgr))
        return dbp_manager_forked_error(err);
    if (n_endpoints < 1 || n_endpoints > 64)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "a pool needs between 1 and 64 endpoints, not %zu", n_endpoints);
    int rc = dbp_pool_options_validate(opts, err);
    if (rc != DBP_OK)
        return rc;
    pthread_mutex_lock(&mgr->mu);
    int closing = mgr->closing;
    size_t at = pool_id && !closing ? dbp_manager_find_pool_locked(mgr, pool_id) : SIZE_MAX;
    const dbp_driver *driver = at != SIZE_MAX ? mgr->pools[at]->driver : NULL;
    pthread_mutex_unlock(&mgr->mu);
    if (closing)
        return dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "the pool manager is closed");
    if (!driver)
        return dbp_error_set(err, DBP_E_NOT_FOUND, 0, NULL, "no pool named '%s'",
                             pool_id ? pool_id : "");
    if (n_endpoints > 1 && !driver->probe_role)
        return dbp_error_set(err, DBP_E_CONFIG, 0, NULL,
                             "the %s engine has no primary or replica roles, so a pool of it "
                             "takes one endpoint",
                             driver->name);

    plan p = {.n = n_endpoints};
    p.configs = dbp_calloc(n_endpoints, sizeof *p.configs);
    p.hashes = dbp_calloc(n_endpoints, sizeof *p.hashes);
    p.match = dbp_calloc(n_endpoints, sizeof *p.match);
    p.fresh = dbp_calloc(n_endpoints, sizeof *p.fresh);
    p.nodes = dbp_calloc(n_endpoints + 1, sizeof *p.nodes);
    p.opts = dbp_pool_options_copy(opts);
    if (!p.configs || !p.hashes || !p.match || !p.fresh || !p.nodes || !p.opts) {
        plan_free(&p, driver);
        return dbp_error_nomem(err);
    }
    rc = dbp_parse_endpoint_configs(driver, endpoints, n_endpoints, p.configs, err);
    for (size_t i = 0; i < n_endpoints; i++)
        p.hashes[i] = dbp_settings_hash(endpoints[i].settings, endpoints[i].n_settings);

    dbp_conn *to_close = NULL;
    pthread_mutex_lock(&mgr->mu);
    at = rc == DBP_OK ? dbp_manager_find_pool_locked(mgr, pool_id) : SIZE_MAX;
    dbp_pool *pool = at != SIZE_MAX ? mgr->pools[at] : NULL;
    if (rc == DBP_OK && (!pool || pool->closed || pool->driver != driver))
        rc = dbp_error_set(err, DBP_E_CLOSED, 0, NULL, "pool '%s' was closed", pool_id);
    if (rc == DBP_OK)
        rc = plan_locked(pool, &p, err);
    if (rc == DBP_OK) {
        apply_endpoints_locked(pool, &p, report, &to_close);
        apply_options_locked(pool, &p, report, &to_close);
        report->connections_retired = count_chain(to_close);
        dbp_pool_dispatch_locked(pool);
        dbp_janitor_wake_locked(mgr); /* probes, warm-ups, expired warm-ups */
    }
    pthread_mutex_unlock(&mgr->mu);
    plan_free(&p, driver);
    dbp_conns_destroy(to_close);
    return rc;
}
