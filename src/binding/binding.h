/* binding.h - what the files of the CPython binding share. */
#ifndef DBP_BINDING_H
#define DBP_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "db_pool.h"

typedef struct module_state {
    PyTypeObject *manager_type;
    PyTypeObject *request_type;
    PyTypeObject *lease_type;
    PyTypeObject *queue_type;
    PyTypeObject *stream_type;
    PyObject *errors;        /* the db_pool.errors module */
    PyObject *decimal_type;  /* decimal.Decimal */
    PyObject *adapt;         /* db_pool._adapt.adapt: values beyond the fast path */
} module_state;

/* Raises the db_pool.errors class of `category` with `message`; returns NULL. */
PyObject *raise_simple(module_state *st, int category, const char *message);

/* ---- the module's objects (native.c; Manager in manager.c) ---- */

typedef struct {
    PyObject_HEAD
    dbp_request *req;
    PyObject *manager; /* keeps the manager alive while the request exists */
    PyObject *future;  /* whatever the caller attached; resolved by the event loop */
    PyObject *engine;
    PyObject *queue;   /* the completion queue it will be pushed onto, kept alive until
                          that queue hands it back (a worker may push long after the
                          event loop, and the queue's last other owner, went away) */
    int submitted;
} RequestObject;

typedef struct {
    PyObject_HEAD
    dbp_manager *mgr;
    int closed;
} ManagerObject;

typedef struct {
    PyObject_HEAD
    dbp_lease *lease;
    PyObject *manager;
    PyObject *engine;
} LeaseObject;

typedef struct {
    PyObject_HEAD
    dbp_completion_queue *cq;
    Py_ssize_t pending; /* requests submitted with it and not handed back yet */
} QueueObject;

/* The module state of one of the module's types. */
module_state *state_of_type(PyTypeObject *type);
/* Raises the db_pool.errors class for `err` (tagged with `engine` when not
 * NULL); returns NULL. */
PyObject *raise_error(module_state *st, const dbp_error *err, PyObject *engine);
/* A new Request of `op` (sql and params as the caller gave them); NULL with
 * an exception set. */
RequestObject *request_create(module_state *st, PyObject *manager, dbp_op op, PyObject *sql,
                              PyObject *params, int many, Py_ssize_t batch_rows, int copy_mode,
                              PyObject *input, PyObject *future, PyObject *engine,
                              PyObject *timeout);
/* What a submit returns: the request, or the error of a refused submit. */
PyObject *request_submitted(module_state *st, RequestObject *self, int rc, const dbp_error *err,
                            QueueObject *queue);
/* The optional completion queue argument; -1 with an exception set. */
int queue_arg(module_state *st, PyObject *obj, QueueObject **out);

/* The types' specs (queue.c, lease.c), added by the module's init. */
extern PyType_Spec queue_spec;
extern PyType_Spec lease_spec;
extern PyType_Spec manager_spec;

/* ---- parameters (bind_params.c) ---- */

/* Imports what the parameter code needs (the datetime C API). */
int bind_params_init(void);
/* Builds a parameter list from a sequence or dict (`many`: an iterable of
 * them; BIND_COMMANDS: a list of key-value commands, each a tuple of
 * arguments). *out stays NULL for params=None. Returns -1 with an exception
 * set. */
#define BIND_COMMANDS 2
int build_params(module_state *st, PyObject *params, int many, dbp_params **out);

/* ---- replies of key-value engines (reply.c) ---- */

/* A reply tree as Python values; NULL with an exception set. */
PyObject *reply_to_python(module_state *st, const dbp_reply *r);

/* ---- pool configuration (pool_config.c) ---- */

/* A time in seconds as whole milliseconds (a fraction of one rounds up, so
 * a tiny positive time never becomes 0, which means "none"); -1 with
 * ValueError naming `what` unless it is a finite number in [lo_s, ten years]. */
int64_t seconds_to_ms(PyObject *v, const char *what, double lo_s);
/* The pool options of a dict; -1 with an exception set. */
int pool_options_of(module_state *st, PyObject *opts, dbp_pool_options *o);
/* One endpoint per dict of `settings` (a dict, or a list of dicts), the
 * strings borrowed from them; free with endpoints_free. NULL with an
 * exception set. */
dbp_endpoint_config *endpoints_of(PyObject *settings, Py_ssize_t *n);
void endpoints_free(dbp_endpoint_config *eps, Py_ssize_t n);

/* ---- metrics (metrics.c) ---- */

/* One pool's metrics as a dict (see db_pool/_metrics.py); NULL with an
 * exception set. */
PyObject *pool_metrics(module_state *st, dbp_manager *mgr, const char *pool_id);

#endif
