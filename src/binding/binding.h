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

/* ---- parameters (bind_params.c) ---- */

/* Imports what the parameter code needs (the datetime C API). */
int bind_params_init(void);
/* Builds a parameter list from a sequence or dict (`many`: an iterable of
 * them). *out stays NULL for params=None. Returns -1 with an exception set. */
int build_params(module_state *st, PyObject *params, int many, dbp_params **out);

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
