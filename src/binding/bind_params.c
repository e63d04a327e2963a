/* bind_params.c - Python values to a dbp_params list.
 *
 * The common types are read here directly (the fast path of executemany);
 * any other value goes once through db_pool._adapt.adapt, which turns it into
 * one of them or tags it with a kind the engines bind to a type of their own
 * (uuid, json, inet, interval, array). Every refusal is a ProgrammingError or
 * DataError naming the parameter, never a bare TypeError. */
#include "binding.h"

#include <datetime.h>
#include <string.h>

#include "textparse.h"

int bind_params_init(void)
{
    PyDateTime_IMPORT; /* the C API pointer is per file */
    return PyDateTimeAPI ? 0 : -1;
}

static int64_t time_of_day_us(int h, int m, int s, int us)
{
    return (((int64_t)h * 60 + m) * 60 + s) * 1000000 + us;
}

/* Microseconds of a timedelta (utcoffset()). */
static int64_t timedelta_us(PyObject *td)
{
    return ((int64_t)PyDateTime_DELTA_GET_DAYS(td) * 86400 + PyDateTime_DELTA_GET_SECONDS(td)) *
               1000000 +
           PyDateTime_DELTA_GET_MICROSECONDS(td);
}

/* Raises `category` with "<where>: <message>"; returns -1. */
static int refuse(module_state *st, int category, const char *where, const char *message)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s", where, message);
    raise_simple(st, category, msg);
    return -1;
}

/* Replaces a pending Python exception (TypeError, UnicodeEncodeError, ...)
 * by a ProgrammingError that names the parameter and keeps the original
 * as its __cause__. */
static int refuse_pending(module_state *st, const char *where)
{
    PyObject *type, *cause, *tb;
    PyErr_Fetch(&type, &cause, &tb);
    PyErr_NormalizeException(&type, &cause, &tb);
    PyObject *text = cause ? PyObject_Str(cause) : NULL;
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    PyErr_Clear();
    refuse(st, DBP_E_MISUSE, where, s ? s : "the value cannot be converted");
    Py_XDECREF(text);
    if (cause) {
        PyObject *t2, *exc, *tb2;
        PyErr_Fetch(&t2, &exc, &tb2);
        PyErr_NormalizeException(&t2, &exc, &tb2);
        PyException_SetCause(exc, cause); /* steals the reference */
        PyErr_Restore(t2, exc, tb2);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return -1;
}

static int64_t datetime_us(PyObject *v)
{
    return dbp_days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                               PyDateTime_GET_DAY(v)) *
               86400000000LL +
           time_of_day_us(PyDateTime_DATE_GET_HOUR(v), PyDateTime_DATE_GET_MINUTE(v),
                          PyDateTime_DATE_GET_SECOND(v), PyDateTime_DATE_GET_MICROSECOND(v));
}

static int add_datetime(dbp_params *p, const char *name, PyObject *v)
{
    int64_t us = datetime_us(v);
    dbp_value_kind kind = DBP_V_TIMESTAMP;
    if (PyDateTime_DATE_GET_TZINFO(v) != Py_None) {
        PyObject *offset = PyObject_CallMethod(v, "utcoffset", NULL);
        if (!offset)
            return -1;
        if (PyDelta_Check(offset)) {
            us -= timedelta_us(offset);
            kind = DBP_V_TIMESTAMP_TZ;
        }
        Py_DECREF(offset);
    }
    return dbp_params_add_temporal(p, name, kind, us);
}

static int add_decimal(module_state *st, dbp_params *p, const char *name, PyObject *v,
                       const char *where)
{
    PyObject *finite = PyObject_CallMethod(v, "is_finite", NULL);
    if (!finite)
        return -1;
    int ok = finite == Py_True;
    Py_DECREF(finite);
    if (!ok)
        return refuse(st, DBP_E_DATA, where, "Decimal NaN and Infinity cannot be stored exactly");
    PyObject *text = PyObject_Format(v, NULL);
    if (!text)
        return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = s ? dbp_params_add_decimal(p, name, s, (size_t)n) : -1;
    Py_DECREF(text);
    return rc;
}

/* The UTF-8 of a str; a string that has none (a lone surrogate) is refused. */
static const char *utf8_of(module_state *st, PyObject *s, Py_ssize_t *n, const char *where)
{
    const char *text = PyUnicode_AsUTF8AndSize(s, n);
    if (!text)
        refuse_pending(st, where);
    return text;
}

static const struct {
    const char *name;
    dbp_value_kind kind;
} kind_names[] = {
    {"bool", DBP_V_BOOL},        {"int", DBP_V_INT64},      {"float", DBP_V_DOUBLE},
    {"decimal", DBP_V_DECIMAL},  {"text", DBP_V_TEXT},      {"bytes", DBP_V_BLOB},
    {"date", DBP_V_DATE},        {"time", DBP_V_TIME},      {"timestamp", DBP_V_TIMESTAMP},
    {"timestamptz", DBP_V_TIMESTAMP_TZ}, {"uuid", DBP_V_UUID}, {"json", DBP_V_JSON},
    {"inet", DBP_V_INET},        {"interval", DBP_V_INTERVAL}, {"array", DBP_V_ARRAY},
};

static dbp_value_kind kind_named(PyObject *name)
{
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    for (size_t i = 0; s && i < sizeof kind_names / sizeof *kind_names; i++)
        if (strcmp(s, kind_names[i].name) == 0)
            return kind_names[i].kind;
    PyErr_Clear();
    return DBP_V_NULL;
}

static int add_param(module_state *st, dbp_params *p, const char *name, PyObject *v,
                     const char *where, int depth);

/* A value of a type the fast path does not know, through _adapt.adapt. */
static int add_adapted(module_state *st, dbp_params *p, const char *name, PyObject *v,
                       const char *where, int depth)
{
    PyObject *adapted = PyObject_CallOneArg(st->adapt, v);
    if (!adapted)
        return refuse_pending(st, where);
    if (adapted == Py_None || depth > 8) {
        Py_DECREF(adapted);
        char msg[300];
        snprintf(msg, sizeof msg,
                 "values of type '%.100s' cannot be bound; see the parameter types in the docs",
                 Py_TYPE(v)->tp_name);
        return refuse(st, DBP_E_MISUSE, where, msg);
    }
    PyObject *tag = PyTuple_GET_ITEM(adapted, 0), *payload = PyTuple_GET_ITEM(adapted, 1);
    int rc;
    if (PyUnicode_CompareWithASCIIString(tag, "value") == 0) {
        rc = add_param(st, p, name, payload, where, depth + 1);
    } else if (PyUnicode_CompareWithASCIIString(tag, "interval") == 0) {
        int overflow;
        long long us = PyLong_AsLongLongAndOverflow(payload, &overflow);
        rc = overflow ? refuse(st, DBP_E_DATA, where, "duration out of the 64-bit microsecond range")
             : PyErr_Occurred() ? -1
                                : dbp_params_add_temporal(p, name, DBP_V_INTERVAL, us);
    } else {
        dbp_value_kind kind = kind_named(tag), element = DBP_V_NULL;
        PyObject *text = payload;
        if (kind == DBP_V_ARRAY) { /* (literal, element kind or None) */
            text = PyTuple_GET_ITEM(payload, 0);
            element = kind_named(PyTuple_GET_ITEM(payload, 1));
        }
        Py_ssize_t n;
        const char *s = utf8_of(st, text, &n, where);
        rc = !s                     ? -1
             : kind == DBP_V_ARRAY ? dbp_params_add_array(p, name, element, s, (size_t)n)
                                   : dbp_params_add_typed_text(p, name, kind, s, (size_t)n);
    }
    Py_DECREF(adapted);
    if (rc > 0) { /* a dbp code: only running out of memory is left */
        PyErr_NoMemory();
        return -1;
    }
    return rc;
}

/* `where` names the parameter in messages ("parameter 2", "parameter 'id'"). */
static int add_param(module_state *st, dbp_params *p, const char *name, PyObject *v,
                     const char *where, int depth)
{
    int rc;
    if (v == Py_None) {
        rc = dbp_params_add_null(p, name);
    } else if (PyBool_Check(v)) {
        rc = dbp_params_add_bool(p, name, v == Py_True);
    } else if (PyLong_Check(v)) {
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow)
            return refuse(st, DBP_E_DATA, where, "integer out of the 64-bit range");
        if (i == -1 && PyErr_Occurred())
            return -1;
        rc = dbp_params_add_int64(p, name, i);
    } else if (PyFloat_Check(v)) {
        rc = dbp_params_add_double(p, name, PyFloat_AS_DOUBLE(v));
    } else if (PyUnicode_Check(v)) {
        Py_ssize_t n;
        const char *s = utf8_of(st, v, &n, where);
        if (!s)
            return -1;
        rc = dbp_params_add_text(p, name, s, (size_t)n);
    } else if (PyBytes_Check(v)) {
        rc = dbp_params_add_blob(p, name, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
    } else if (PyByteArray_Check(v) || PyMemoryView_Check(v)) {
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_CONTIG_RO) < 0)
            return refuse_pending(st, where);
        rc = dbp_params_add_blob(p, name, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
    } else if (PyDateTime_Check(v)) {
        rc = add_datetime(p, name, v);
        if (rc < 0 && PyErr_Occurred())
            return -1;
    } else if (PyDate_Check(v)) {
        rc = dbp_params_add_temporal(
            p, name, DBP_V_DATE,
            dbp_days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)));
    } else if (PyTime_Check(v)) {
        if (PyDateTime_TIME_GET_TZINFO(v) != Py_None)
            return refuse(st, DBP_E_MISUSE, where, "time values with a time zone are not supported");
        rc = dbp_params_add_temporal(
            p, name, DBP_V_TIME,
            time_of_day_us(PyDateTime_TIME_GET_HOUR(v), PyDateTime_TIME_GET_MINUTE(v),
                           PyDateTime_TIME_GET_SECOND(v), PyDateTime_TIME_GET_MICROSECOND(v)));
    } else if (PyObject_TypeCheck(v, (PyTypeObject *)st->decimal_type)) {
        rc = add_decimal(st, p, name, v, where);
        if (rc < 0 && PyErr_Occurred())
            return -1;
    } else {
        return add_adapted(st, p, name, v, where, depth);
    }
    if (rc != DBP_OK) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* "parameter <n>" into buf (at least 32 bytes), without snprintf: it is
 * written for every positional parameter in case it is refused, and
 * snprintf there cost a 100-command Redis pipeline a tenth of its time. */
static void where_index(char *buf, Py_ssize_t n)
{
    static const char head[] = "parameter ";
    char digits[24];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    memcpy(buf, head, sizeof head - 1);
    char *out = buf + sizeof head - 1;
    while (k > 0)
        *out++ = digits[--k];
    *out = '\0';
}

/* One row: a dict binds by name, any other sequence by position. */
static int add_row(module_state *st, dbp_params *p, PyObject *row)
{
    char where[160];
    if (PyDict_Check(row)) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(row, &pos, &key, &value)) {
            const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
            if (!name) {
                PyErr_Clear();
                raise_simple(st, DBP_E_MISUSE, "parameter names must be strings");
                return -1;
            }
            snprintf(where, sizeof where, "parameter '%.100s'", name);
            if (add_param(st, p, name, value, where, 0) < 0)
                return -1;
        }
        return 0;
    }
    if (PyUnicode_Check(row) || PyBytes_Check(row) || !PySequence_Check(row)) {
        raise_simple(st, DBP_E_MISUSE,
                     "parameters must be a sequence (list or tuple) or a dict of names");
        return -1;
    }
    PyObject *seq = PySequence_Fast(row, "parameters must be a sequence or a dict");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        where_index(where, i + 1);
        if (add_param(st, p, NULL, PySequence_Fast_GET_ITEM(seq, i), where, 0) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* One argument of a key-value command: str, bytes, int (one past 64 bits
 * as its digits: the server reads numbers from text), float or bool. */
static int add_command_arg(module_state *st, dbp_params *p, PyObject *v, const char *where)
{
    if (PyLong_Check(v) && !PyBool_Check(v)) {
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow)
            return i == -1 && PyErr_Occurred() ? -1 : dbp_params_add_int64(p, NULL, i) ? -1 : 0;
        PyObject *digits = PyObject_Str(v);
        Py_ssize_t n;
        const char *s = digits ? PyUnicode_AsUTF8AndSize(digits, &n) : NULL;
        int rc = s ? dbp_params_add_decimal(p, NULL, s, (size_t)n) : -1;
        Py_XDECREF(digits);
        return rc ? -1 : 0;
    }
    if (PyUnicode_Check(v) || PyBytes_Check(v) || PyFloat_Check(v) || PyBool_Check(v) ||
        PyByteArray_Check(v) || PyMemoryView_Check(v))
        return add_param(st, p, NULL, v, where, 0);
    char msg[160];
    snprintf(msg, sizeof msg, "a redis argument is str, bytes, int or float, not %.60s",
             Py_TYPE(v)->tp_name);
    return refuse(st, DBP_E_MISUSE, where, msg);
}

/* Key-value commands, each a tuple or list of arguments: its argument
 * count, then the arguments (DBP_OP_COMMAND, db_pool.h). */
static int add_commands(module_state *st, dbp_params *p, PyObject *commands)
{
    PyObject *seq = PySequence_Fast(commands, "commands must be a list of tuples");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int rc = n ? 0 : refuse(st, DBP_E_MISUSE, "commands", "no command to send");
    char where[48];
    for (Py_ssize_t k = 0; k < n && rc == 0; k++) {
        PyObject *cmd = PySequence_Fast_GET_ITEM(seq, k);
        if ((!PyTuple_Check(cmd) && !PyList_Check(cmd)) || PySequence_Fast_GET_SIZE(cmd) == 0) {
            rc = refuse(st, DBP_E_MISUSE, "each command",
                        "is a non-empty tuple or list such as ('SET', 'k', 'v')");
            break;
        }
        Py_ssize_t argc = PySequence_Fast_GET_SIZE(cmd);
        rc = dbp_params_add_int64(p, NULL, argc) ? -1 : 0;
        for (Py_ssize_t i = 0; i < argc && rc == 0; i++) {
            where_index(where, i + 1);
            rc = add_command_arg(st, p, PySequence_Fast_GET_ITEM(cmd, i), where);
        }
        if (rc != 0 && !PyErr_Occurred())
            PyErr_NoMemory();
    }
    Py_DECREF(seq);
    return rc;
}

int build_params(module_state *st, PyObject *params, int many, dbp_params **out)
{
    *out = NULL;
    if (params == Py_None)
        return 0;
    dbp_error err;
    if (dbp_params_new(out, &err) != DBP_OK) {
        PyErr_NoMemory();
        return -1;
    }
    if (many == BIND_COMMANDS) {
        if (add_commands(st, *out, params) == 0)
            return 0;
    } else if (!many) {
        if (add_row(st, *out, params) == 0)
            return 0;
    } else {
        PyObject *it = PyObject_GetIter(params);
        PyObject *row;
        int failed = !it;
        Py_ssize_t index = 0;
        while (!failed && (row = PyIter_Next(it))) {
            failed = add_row(st, *out, row) < 0;
            Py_DECREF(row);
            if (!failed && dbp_params_end_row(*out) != DBP_OK) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "parameter row %zd has a different number of values than row 0", index);
                raise_simple(st, DBP_E_MISUSE, msg);
                failed = 1;
            }
            index++;
        }
        Py_XDECREF(it);
        if (!failed && !PyErr_Occurred())
            return 0;
    }
    dbp_params_free(*out);
    *out = NULL;
    return -1;
}
