/* metrics.c - Manager.metrics(pool_id): one pool's metrics snapshot
 * (dbp_manager_pool_metrics) as plain dicts, tuples and numbers; the
 * Python side (db_pool/_metrics.py) names and renders them. */
#include "binding.h"

#include <string.h>

/* ((le, cumulative count), ..., (inf, count)), sum, count */
static PyObject *histogram(const dbp_histogram_snapshot *h)
{
    int n;
    const double *bounds = dbp_histogram_bounds(h->kind, &n);
    PyObject *buckets = PyTuple_New(n + 1);
    if (!buckets)
        return NULL;
    uint64_t cumulative = 0;
    for (int i = 0; i <= n; i++) {
        cumulative += h->buckets[i];
        PyObject *pair = Py_BuildValue("(dK)", i < n ? bounds[i] : Py_HUGE_VAL,
                                       (unsigned long long)cumulative);
        if (!pair) {
            Py_DECREF(buckets);
            return NULL;
        }
        PyTuple_SET_ITEM(buckets, i, pair);
    }
    return Py_BuildValue("(NdK)", buckets, h->sum, (unsigned long long)h->count);
}

static const char *role_text(int role)
{
    return role == DBP_ROLE_PRIMARY ? "primary" : role == DBP_ROLE_REPLICA ? "replica" : "unknown";
}

static const char *health_text(int health)
{
    return health == DBP_HEALTH_DOWN ? "down" : health == DBP_HEALTH_SUSPECT ? "suspect" : "up";
}

/* Every known name of `name_of` below `slots` -> its count. */
static PyObject *by_name(const uint64_t *counts, int slots, const char *(*name_of)(int))
{
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < slots; i++) {
        const char *name = name_of(i);
        if (strcmp(name, "unknown") == 0)
            continue;
        PyObject *v = PyLong_FromUnsignedLongLong(counts[i]);
        if (!v || PyDict_SetItemString(d, name, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *endpoint(const dbp_endpoint_metrics *e)
{
    PyObject *lag = e->lag_seconds >= 0 ? PyFloat_FromDouble(e->lag_seconds) : Py_NewRef(Py_None);
    PyObject *closed = by_name(e->closed, DBP_CLOSE_REASON_SLOTS, dbp_close_reason_name);
    PyObject *create = histogram(&e->create_time);
    PyObject *use = histogram(&e->use_time);
    PyObject *d = NULL;
    if (lag && closed && create && use)
        d = Py_BuildValue(
            "{ss,ss,ss,sO,sO,si,si,si,si,si,si,si,sK,sK,sK,sK,sK,sO,sO,sO}", "endpoint", e->label,
            "role", role_text(e->role), "health", health_text(e->health), "is_primary",
            e->is_primary ? Py_True : Py_False, "lag", lag, "failures", e->failures, "idle",
            e->idle, "in_use", e->in_use, "opening", e->opening, "closing", e->closing,
            "max_size", e->max_size, "min_size", e->min_size, "acquired",
            (unsigned long long)e->acquired, "opened", (unsigned long long)e->opened,
            "connect_failures", (unsigned long long)e->connect_failures, "validations_failed",
            (unsigned long long)e->validations_failed, "role_changes",
            (unsigned long long)e->role_changes, "closed", closed, "create_time", create,
            "use_time", use);
    Py_XDECREF(lag);
    Py_XDECREF(closed);
    Py_XDECREF(create);
    Py_XDECREF(use);
    return d;
}

PyObject *pool_metrics(module_state *st, dbp_manager *mgr, const char *pool_id)
{
    dbp_pool_metrics pm;
    dbp_endpoint_metrics *eps = NULL;
    int room = 0;
    char engine[32];
    dbp_error err;
    /* the endpoint count is known only once read: read again with room */
    for (;;) {
        int rc = dbp_manager_pool_metrics(mgr, pool_id, &pm, eps, room, engine, sizeof engine,
                                          &err);
        if (rc != DBP_OK) {
            PyMem_Free(eps);
            return raise_simple(st, err.category, err.message);
        }
        if (pm.n_endpoints <= room)
            break;
        PyMem_Free(eps);
        room = pm.n_endpoints;
        eps = PyMem_Calloc((size_t)room, sizeof *eps);
        if (!eps)
            return PyErr_NoMemory();
    }
    PyObject *endpoints = PyList_New(0);
    for (int i = 0; endpoints && i < pm.n_endpoints; i++) {
        PyObject *d = endpoint(&eps[i]);
        if (!d || PyList_Append(endpoints, d) < 0)
            Py_CLEAR(endpoints);
        Py_XDECREF(d);
    }
    PyMem_Free(eps);
    PyObject *requests = by_name(pm.requests, DBP_CATEGORY_SLOTS, dbp_category_name);
    PyObject *wait = histogram(&pm.wait_time);
    PyObject *rows = histogram(&pm.result_rows);
    PyObject *bytes = histogram(&pm.result_bytes);
    PyObject *out = NULL;
    if (endpoints && requests && wait && rows && bytes)
        out = Py_BuildValue(
            "{ss,si,sO,sK,sK,sK,sK,sK,sK,sK,sK,sK,sO,sO,sO,sO}", "engine", engine, "waiting",
            pm.waiting, "requests", requests, "acquire_timeouts",
            (unsigned long long)pm.acquire_timeouts, "rejected", (unsigned long long)pm.rejected,
            "retries", (unsigned long long)pm.retries, "abandoned",
            (unsigned long long)pm.abandoned, "failovers", (unsigned long long)pm.failovers,
            "topology_generation", (unsigned long long)pm.topology_generation, "bulk_rows_in",
            (unsigned long long)pm.bulk_rows_in, "bulk_rows_out",
            (unsigned long long)pm.bulk_rows_out, "bulk_bytes_out",
            (unsigned long long)pm.bulk_bytes_out, "wait_time", wait, "result_rows", rows,
            "result_bytes", bytes, "endpoints", endpoints);
    Py_XDECREF(endpoints);
    Py_XDECREF(requests);
    Py_XDECREF(wait);
    Py_XDECREF(rows);
    Py_XDECREF(bytes);
    return out;
}
