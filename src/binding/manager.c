/* manager.c - db_pool._native.Manager: pools created, reconfigured and
 * closed, statistics, metrics and events, and requests submitted to a pool
 * (the Request type is native.c's). */
#include <limits.h>
#include <string.h>

#include "binding.h"

static PyObject *manager_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    ManagerObject *self = (ManagerObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    dbp_error err;
    if (dbp_manager_new(&self->mgr, &err) != DBP_OK) {
        Py_DECREF(self);
        return raise_error(state_of_type(type), &err, NULL);
    }
    return (PyObject *)self;
}

/* Shuts the manager down within timeout_ms (< 0: the default); 0 when
 * something stuck had to be abandoned. */
static int manager_free_now(ManagerObject *self, int64_t timeout_ms)
{
    dbp_manager *mgr = self->mgr;
    self->mgr = NULL;
    self->closed = 1;
    if (!mgr)
        return 1;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_shutdown(mgr, timeout_ms);
    Py_END_ALLOW_THREADS
    return rc == DBP_OK;
}

static void manager_dealloc(ManagerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    manager_free_now(self, -1);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The manager for a call that lets the GIL go: the reference keeps its
 * memory valid should close() on another thread free it meanwhile (the
 * call then finds it closed). Pair with dbp_manager_unref. */
static dbp_manager *held(ManagerObject *self)
{
    dbp_manager_ref(self->mgr);
    return self->mgr;
}

static int manager_check(ManagerObject *self, module_state *st)
{
    if (self->closed || !self->mgr) {
        raise_simple(st, DBP_E_CLOSED, "the pool manager is closed");
        return -1;
    }
    return 0;
}

/* create_pool(pool_id, engine, settings: dict[str, str] | list[dict[str, str]],
 *             options: dict) */
static PyObject *manager_create_pool(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id, *engine;
    PyObject *settings, *opts;
    if (!PyArg_ParseTuple(args, "ssOO!", &pool_id, &engine, &settings, &PyDict_Type, &opts))
        return NULL;
    if (manager_check(self, st) < 0)
        return NULL;
    dbp_pool_options o;
    if (pool_options_of(st, opts, &o) < 0)
        return NULL;

    Py_ssize_t n;
    dbp_endpoint_config *eps = endpoints_of(settings, &n);
    if (!eps)
        return NULL;
    dbp_error err;
    int rc;
    dbp_manager *mgr = held(self);
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_create_pool_endpoints(mgr, pool_id, engine, eps, (size_t)n, &o, &err);
    dbp_manager_unref(mgr);
    Py_END_ALLOW_THREADS
    endpoints_free(eps, n);
    if (rc != DBP_OK) {
        PyObject *eng = PyUnicode_FromString(engine);
        raise_error(st, &err, eng);
        Py_XDECREF(eng);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* reconfigure_pool(pool_id, settings, options) -> dict: what changed
 * (dbp_manager_reconfigure_pool); on error nothing did. */
static PyObject *manager_reconfigure_pool(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    PyObject *settings, *opts;
    if (!PyArg_ParseTuple(args, "sOO!", &pool_id, &settings, &PyDict_Type, &opts) ||
        manager_check(self, st) < 0)
        return NULL;
    dbp_pool_options o;
    if (pool_options_of(st, opts, &o) < 0)
        return NULL;
    Py_ssize_t n;
    dbp_endpoint_config *eps = endpoints_of(settings, &n);
    if (!eps)
        return NULL;
    dbp_reconfigure_report r;
    dbp_error err;
    int rc;
    dbp_manager *mgr = held(self);
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_reconfigure_pool(mgr, pool_id, eps, (size_t)n, &o, &r, &err);
    dbp_manager_unref(mgr);
    Py_END_ALLOW_THREADS
    endpoints_free(eps, n);
    if (rc != DBP_OK)
        return raise_error(st, &err, NULL);
    return Py_BuildValue("{si,si,si,sO,si}", "endpoints_added", r.endpoints_added,
                         "endpoints_removed", r.endpoints_removed, "endpoints_changed",
                         r.endpoints_changed, "options_changed",
                         r.options_changed ? Py_True : Py_False, "connections_retired",
                         r.connections_retired);
}

/* probe_now(pool_id): every endpoint due for a role probe now
 * (dbp_manager_probe_now). */
static PyObject *manager_probe_now(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    if (!PyArg_ParseTuple(args, "s", &pool_id) || manager_check(self, st) < 0)
        return NULL;
    dbp_error err;
    int rc;
    dbp_manager *mgr = held(self);
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_probe_now(mgr, pool_id, &err);
    dbp_manager_unref(mgr);
    Py_END_ALLOW_THREADS
    if (rc != DBP_OK)
        return raise_error(st, &err, NULL);
    Py_RETURN_NONE;
}

/* A close timeout: None is the library's default. */
static int close_timeout(PyObject *timeout, int64_t *ms)
{
    *ms = -1;
    if (timeout == Py_None)
        return 0;
    *ms = seconds_to_ms(timeout, "timeout", 0);
    return *ms < 0 ? -1 : 0;
}

/* close_pool(pool_id, timeout=None) -> bool: False when statements still
 * stuck in the engine after the timeout were abandoned. */
static PyObject *manager_close_pool(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    PyObject *timeout = Py_None;
    int64_t timeout_ms;
    if (!PyArg_ParseTuple(args, "s|O", &pool_id, &timeout) || manager_check(self, st) < 0 ||
        close_timeout(timeout, &timeout_ms) < 0)
        return NULL;
    dbp_error err;
    int rc;
    dbp_manager *mgr = held(self);
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_close_pool(mgr, pool_id, timeout_ms, &err);
    dbp_manager_unref(mgr);
    Py_END_ALLOW_THREADS
    if (rc != DBP_OK && rc != DBP_E_TIMEOUT)
        return raise_error(st, &err, NULL);
    return PyBool_FromLong(rc == DBP_OK);
}

static PyObject *manager_list_pools(ManagerObject *self, PyObject *unused)
{
    (void)unused;
    module_state *st = state_of_type(Py_TYPE(self));
    if (manager_check(self, st) < 0)
        return NULL;
    char **names;
    dbp_error err;
    if (dbp_manager_list_pools(self->mgr, &names, &err) != DBP_OK)
        return raise_error(st, &err, NULL);
    PyObject *list = PyList_New(0);
    for (char **s = names; list && *s; s++) {
        PyObject *name = PyUnicode_FromString(*s);
        if (!name || PyList_Append(list, name) < 0)
            Py_CLEAR(list);
        Py_XDECREF(name);
    }
    dbp_free_strings(names);
    return list;
}

static const char *role_name(int role)
{
    return role == DBP_ROLE_PRIMARY ? "primary" : role == DBP_ROLE_REPLICA ? "replica" : "unknown";
}

static const char *health_name(int health)
{
    return health == DBP_HEALTH_DOWN ? "down" : health == DBP_HEALTH_SUSPECT ? "suspect" : "up";
}

static PyObject *endpoint_dict(const dbp_endpoint_stats *e)
{
    PyObject *lag = e->lag_seconds >= 0 ? PyFloat_FromDouble(e->lag_seconds) : Py_NewRef(Py_None);
    if (!lag)
        return NULL;
    PyObject *d = Py_BuildValue("{ss,ss,ss,sO,sO,si,sd,ss,sd,si,si,si,si,sK,sK,sO}", "endpoint",
                                e->label, "role", role_name(e->role), "health",
                                health_name(e->health), "is_primary",
                                e->is_primary ? Py_True : Py_False, "lag", lag, "failures",
                                e->failures, "retry_in", (double)e->retry_in_ms / 1000.0,
                                "last_error", e->last_error, "health_since", e->health_since,
                                "size", e->size, "idle", e->idle,
                                "in_use", e->in_use, "opening", e->opening, "acquired",
                                e->acquired_total, "failed", e->failed_total, "removed",
                                e->removed ? Py_True : Py_False);
    Py_DECREF(lag);
    return d;
}

static PyObject *manager_stats(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    if (!PyArg_ParseTuple(args, "s", &pool_id) || manager_check(self, st) < 0)
        return NULL;
    dbp_pool_stats s;
    char engine[32];
    dbp_error err;
    if (dbp_manager_pool_stats(self->mgr, pool_id, &s, engine, sizeof engine, &err) != DBP_OK)
        return raise_error(st, &err, NULL);
    PyObject *endpoints = PyList_New(0);
    for (int i = 0; endpoints && i < s.n_endpoints; i++) {
        dbp_endpoint_stats e;
        if (dbp_manager_endpoint_stats(self->mgr, pool_id, i, &e, &err) != DBP_OK)
            break; /* the pool was closed meanwhile: report what there is */
        PyObject *d = endpoint_dict(&e);
        if (!d || PyList_Append(endpoints, d) < 0)
            Py_CLEAR(endpoints);
        Py_XDECREF(d);
    }
    if (!endpoints)
        return NULL;
    return Py_BuildValue(
        "{ss,si,si,si,si,si,si,si,sK,sK,sK,sK,sK,sK,sK,sK,sK,sK,sd,sK,sK,sK,sK,sK,sN}", "engine",
        engine, "size", s.size, "idle", s.idle, "in_use", s.in_use, "opening", s.opening,
        "waiting", s.waiting, "min_size", s.min_size, "max_size", s.max_size, "acquired",
        s.acquired_total, "timeouts", s.timeouts_total, "rejected", s.rejected_total, "created",
        s.created_total, "closed", s.closed_total, "connect_failures", s.failed_total,
        "validation_failures", s.validations_failed_total, "requests", s.requests_total,
        "errors", s.errors_total, "cancelled", s.cancelled_total, "acquire_wait_ms_total",
        s.acquire_wait_ms_total, "topology_generation", s.topology_generation, "failovers",
        s.failovers_total, "retries", s.retries_total, "query_timeouts", s.query_timeouts_total,
        "abandoned", s.abandoned_total, "endpoints", endpoints);
}

static PyObject *manager_metrics(ManagerObject *self, PyObject *args)
{
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    if (!PyArg_ParseTuple(args, "s", &pool_id) || manager_check(self, st) < 0)
        return NULL;
    return pool_metrics(st, self->mgr, pool_id);
}

static const char *const event_kind_names[] = {
    [DBP_EVENT_UP] = "up",     [DBP_EVENT_SUSPECT] = "suspect", [DBP_EVENT_DOWN] = "down",
    [DBP_EVENT_ROLE] = "role", [DBP_EVENT_PRIMARY] = "primary",
};

/* wait_events(timeout: float) -> list[dict] | None: endpoint events, oldest
 * first, waiting up to `timeout` seconds for one; None once the manager is
 * closed. */
static PyObject *manager_wait_events(ManagerObject *self, PyObject *args)
{
    double timeout;
    if (!PyArg_ParseTuple(args, "d", &timeout))
        return NULL;
    if (self->closed || !self->mgr)
        Py_RETURN_NONE;
    dbp_manager *mgr = self->mgr;
    dbp_event events[32];
    size_t n = 0;
    int rc;
    dbp_manager_ref(mgr); /* close() may free it while we wait (see held()) */
    Py_BEGIN_ALLOW_THREADS
    rc = dbp_manager_wait_events(mgr, (int64_t)(timeout * 1000), events, 32, &n);
    dbp_manager_unref(mgr);
    Py_END_ALLOW_THREADS
    if (rc != DBP_OK)
        Py_RETURN_NONE;
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        const dbp_event *e = &events[i];
        PyObject *d = Py_BuildValue("{ss,sd,ss,ss,ss,ss,ss}", "kind", event_kind_names[e->kind],
                                    "time", e->unix_time, "pool_id", e->pool_id, "endpoint",
                                    e->endpoint, "role", role_name(e->role), "old_role",
                                    role_name(e->old_role), "message", e->message);
        if (!d || PyList_Append(list, d) < 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    return list;
}

/* submit(pool_id, op, sql=None, params=None, *, many=False, batch_rows=0,
 *        queue=None, future=None, engine=None) -> Request */
static PyObject *manager_submit(ManagerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"pool_id", "op",       "sql",     "params", "many",
                             "batch_rows", "copy",  "input",   "queue",  "future",
                             "engine",  "readonly", "timeout", NULL};
    module_state *st = state_of_type(Py_TYPE(self));
    const char *pool_id;
    int op, many = 0, copy_mode = DBP_COPY_AUTO, readonly = -1;
    PyObject *sql = Py_None, *params = Py_None, *queue_obj = Py_None, *future = Py_None,
             *engine = Py_None, *input = Py_None, *timeout = Py_None;
    Py_ssize_t batch_rows = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "si|OO$iniOOOOiO", kwlist, &pool_id, &op,
                                     &sql, &params, &many, &batch_rows, &copy_mode, &input,
                                     &queue_obj, &future, &engine, &readonly, &timeout))
        return NULL;
    QueueObject *queue;
    if (queue_arg(st, queue_obj, &queue) < 0 || manager_check(self, st) < 0)
        return NULL;
    RequestObject *req = request_create(st, (PyObject *)self, (dbp_op)op, sql, params, many,
                                        batch_rows, copy_mode, input, future, engine, timeout);
    if (!req)
        return NULL;
    dbp_request_set_readonly(req->req, readonly);
    dbp_error err;
    int rc;
    /* An in-process engine (SQLite) may run the request right here, without
     * the GIL, instead of on a worker: any statement for the sync API, which
     * waits anyway; a short read for the async one (the core hands anything
     * longer to a worker, so the event loop is held at most about 1 ms). */
    const char *name = engine != Py_None ? PyUnicode_AsUTF8(engine) : NULL;
    if (!name)
        PyErr_Clear();
    if (!queue || dbp_engine_runs_inline(name)) {
        dbp_request_set_inline(req->req, 1);
        dbp_manager *mgr = held(self);
        Py_BEGIN_ALLOW_THREADS
        rc = dbp_submit(mgr, pool_id, req->req, queue ? queue->cq : NULL, &err);
        dbp_manager_unref(mgr);
        Py_END_ALLOW_THREADS
    } else { /* a worker runs it: a quick hand-over, no need to let the GIL go */
        rc = dbp_submit(self->mgr, pool_id, req->req, queue->cq, &err);
    }
    return request_submitted(st, req, rc, &err, queue);
}

/* close(timeout=None) -> bool: False when something had to be abandoned. */
static PyObject *manager_close(ManagerObject *self, PyObject *args)
{
    PyObject *timeout = Py_None;
    int64_t timeout_ms;
    if (!PyArg_ParseTuple(args, "|O", &timeout) || close_timeout(timeout, &timeout_ms) < 0)
        return NULL;
    return PyBool_FromLong(manager_free_now(self, timeout_ms));
}

static PyObject *manager_closed(ManagerObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->closed);
}

static PyMethodDef manager_methods[] = {
    {"create_pool", (PyCFunction)manager_create_pool, METH_VARARGS,
     "create_pool(pool_id, engine, settings, options): open a pool."},
    {"reconfigure_pool", (PyCFunction)manager_reconfigure_pool, METH_VARARGS,
     "reconfigure_pool(pool_id, settings, options) -> dict: apply a new configuration."},
    {"probe_now", (PyCFunction)manager_probe_now, METH_VARARGS,
     "probe_now(pool_id): probe every endpoint's role now (a failover heard of elsewhere)."},
    {"close_pool", (PyCFunction)manager_close_pool, METH_VARARGS, "Close one pool."},
    {"list_pools", (PyCFunction)manager_list_pools, METH_NOARGS, "Names of the open pools."},
    {"stats", (PyCFunction)manager_stats, METH_VARARGS, "A pool's counters and gauges."},
    {"metrics", (PyCFunction)manager_metrics, METH_VARARGS,
     "metrics(pool_id): a pool's counters, gauges and histograms (db_pool/_metrics.py)."},
    {"wait_events", (PyCFunction)manager_wait_events, METH_VARARGS,
     "wait_events(timeout): endpoint events, or None once closed."},
    {"submit", (PyCFunction)(void (*)(void))manager_submit, METH_VARARGS | METH_KEYWORDS,
     "Submit a request to a pool."},
    {"close", (PyCFunction)manager_close, METH_VARARGS,
     "close(timeout=None) -> bool: close every pool (running statements are cancelled), "
     "stop the threads; False when something stuck had to be abandoned."},
    {NULL},
};

static PyGetSetDef manager_getset[] = {
    {"closed", (getter)manager_closed, NULL, "Whether close() was called.", NULL},
    {NULL},
};

static PyType_Slot manager_slots[] = {
    {Py_tp_new, manager_new},
    {Py_tp_dealloc, manager_dealloc},
    {Py_tp_methods, manager_methods},
    {Py_tp_getset, manager_getset},
    {Py_tp_doc, "The native pool manager."},
    {0, NULL},
};

PyType_Spec manager_spec = {
    .name = "db_pool._native.Manager",
    .basicsize = sizeof(ManagerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = manager_slots,
};

