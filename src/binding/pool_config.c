/* pool_config.c - pool options and endpoint settings from Python dicts, for
 * create_pool and reconfigure_pool. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "binding.h"

int64_t seconds_to_ms(PyObject *v, const char *what, double lo_s)
{
    double seconds = PyFloat_AsDouble(v);
    if (seconds == -1 && PyErr_Occurred())
        return -1;
    if (!isfinite(seconds) || seconds < lo_s || seconds > 315360000.0) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a number of seconds from %g to 315360000, not %R", what, lo_s, v);
        return -1;
    }
    return (int64_t)ceil(seconds * 1000);
}

/* A time option in seconds; validate_after alone may be negative (never). */
static int option_ms(PyObject *opts, const char *key, int64_t *out)
{
    PyObject *v = PyDict_GetItemString(opts, key);
    if (!v)
        return 0;
    int negative_ok = strcmp(key, "validate_after") == 0;
    double seconds = PyFloat_AsDouble(v);
    if (seconds == -1 && PyErr_Occurred())
        return -1;
    if (negative_ok && seconds < 0) {
        *out = -1;
        return 0;
    }
    int64_t ms = seconds_to_ms(v, key, 0);
    if (ms < 0)
        return -1;
    *out = ms;
    return 0;
}

static int option_int(module_state *st, PyObject *opts, const char *key, int *out)
{
    PyObject *v = PyDict_GetItemString(opts, key);
    if (!v)
        return 0;
    long i = PyLong_AsLong(v);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < INT_MIN || i > INT_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s=%ld is out of range", key, i);
        raise_simple(st, DBP_E_CONFIG, msg);
        return -1;
    }
    *out = (int)i;
    return 0;
}

/* A text option, borrowed from the dict (which outlives the call); NUL
 * bytes are refused. */
static int option_text(PyObject *opts, const char *key, const char **out)
{
    PyObject *v = PyDict_GetItemString(opts, key);
    if (!v)
        return 0;
    Py_ssize_t len;
    const char *text = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &len) : NULL;
    if (!text) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s must be a str", key);
        return -1;
    }
    if ((size_t)len != strlen(text)) {
        PyErr_Format(PyExc_ValueError, "%s contains a NUL byte", key);
        return -1;
    }
    *out = text;
    return 0;
}

/* Borrows the UTF-8 of a dict[str, str] into a new array of settings
 * (PyMem_Free it); NULL with an exception on error. */
static dbp_setting *settings_of(PyObject *settings, Py_ssize_t *n)
{
    if (!PyDict_Check(settings)) {
        PyErr_SetString(PyExc_TypeError, "settings must be a dict (or a list of dicts)");
        return NULL;
    }
    *n = PyDict_Size(settings);
    Py_ssize_t pos = 0, i = 0;
    dbp_setting *items = PyMem_Calloc((size_t)*n + 1, sizeof *items);
    if (!items)
        return (dbp_setting *)PyErr_NoMemory();
    PyObject *key, *value;
    while (PyDict_Next(settings, &pos, &key, &value)) {
        Py_ssize_t key_len = 0, value_len = 0;
        items[i].key = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &key_len) : NULL;
        items[i].value = PyUnicode_Check(value) ? PyUnicode_AsUTF8AndSize(value, &value_len) : NULL;
        if (!items[i].key || !items[i].value) {
            PyMem_Free(items);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "settings must map str to str");
            return NULL;
        }
        /* C strings end at a NUL byte: refused, never cut short silently */
        if (strlen(items[i].key) != (size_t)key_len ||
            strlen(items[i].value) != (size_t)value_len) {
            PyErr_Format(PyExc_ValueError, "setting %R contains a NUL byte", key);
            PyMem_Free(items);
            return NULL;
        }
        i++;
    }
    return items;
}

void endpoints_free(dbp_endpoint_config *eps, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        PyMem_Free((void *)eps[i].settings);
    PyMem_Free(eps);
}

/* One endpoint per dict of `settings` (a dict, or a list of dicts). */
dbp_endpoint_config *endpoints_of(PyObject *settings, Py_ssize_t *n)
{
    PyObject *list = PyDict_Check(settings) ? PyTuple_Pack(1, settings)
                                            : PySequence_Tuple(settings);
    if (!list)
        return NULL;
    *n = PyTuple_GET_SIZE(list);
    dbp_endpoint_config *eps = PyMem_Calloc((size_t)*n + 1, sizeof *eps);
    if (!eps) {
        Py_DECREF(list);
        return (dbp_endpoint_config *)PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        Py_ssize_t count = 0;
        /* the strings stay alive: the dicts are owned by the caller's args */
        eps[i].settings = settings_of(PyTuple_GET_ITEM(list, i), &count);
        eps[i].n_settings = (size_t)count;
        if (!eps[i].settings) {
            endpoints_free(eps, i);
            Py_DECREF(list);
            return NULL;
        }
    }
    Py_DECREF(list);
    return eps;
}

/* The pool options of a dict (db_pool._common.pool_arguments makes it);
 * missing keys keep their defaults. Text is borrowed from the dict. */
int pool_options_of(module_state *st, PyObject *opts, dbp_pool_options *o)
{
    dbp_pool_options_init(o);
    PyObject *jitter = PyDict_GetItemString(opts, "lifetime_jitter");
    if (option_int(st, opts, "min_size", &o->min_size) < 0 ||
        option_int(st, opts, "max_size", &o->max_size) < 0 ||
        option_int(st, opts, "max_waiting", &o->max_waiting) < 0 ||
        option_ms(opts, "acquire_timeout", &o->acquire_timeout_ms) < 0 ||
        option_ms(opts, "idle_timeout", &o->idle_timeout_ms) < 0 ||
        option_ms(opts, "max_lifetime", &o->max_lifetime_ms) < 0 ||
        option_ms(opts, "validate_after", &o->validate_after_ms) < 0 ||
        option_int(st, opts, "read_from", &o->read_from) < 0 ||
        option_int(st, opts, "balance", &o->balance) < 0 ||
        option_ms(opts, "failover_timeout", &o->failover_timeout_ms) < 0 ||
        option_ms(opts, "probe_interval", &o->probe_interval_ms) < 0 ||
        option_ms(opts, "max_replica_lag", &o->max_replica_lag_ms) < 0 ||
        option_ms(opts, "query_timeout", &o->query_timeout_ms) < 0 ||
        option_ms(opts, "connect_timeout", &o->connect_timeout_ms) < 0 ||
        option_ms(opts, "cancel_grace", &o->cancel_grace_ms) < 0 ||
        option_int(st, opts, "reset_on_release", &o->reset_on_release) < 0 ||
        option_text(opts, "init_sql", &o->init_sql) < 0 ||
        (jitter && (o->lifetime_jitter = PyFloat_AsDouble(jitter)) == -1 && PyErr_Occurred()))
        return -1;
    return 0;
}
