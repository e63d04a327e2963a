/* reply.c - a key-value engine's reply tree (dbp_reply) as Python values:
 * bulk strings as bytes, status replies as str, integers as int, nil as
 * None, arrays as lists, and error replies as db_pool.errors.ResponseError
 * instances (their class chosen by the error's first word). */
#include "binding.h"

static PyObject *response_error(module_state *st, const dbp_reply *r)
{
    PyObject *text = PyUnicode_DecodeUTF8(r->str, (Py_ssize_t)r->len, "replace");
    if (!text)
        return NULL;
    PyObject *exc = PyObject_CallMethod(st->errors, "_response_error", "O", text);
    Py_DECREF(text);
    return exc;
}

PyObject *reply_to_python(module_state *st, const dbp_reply *r)
{
    switch (r->type) {
    case DBP_REPLY_STRING:
        return PyBytes_FromStringAndSize(r->str, (Py_ssize_t)r->len);
    case DBP_REPLY_STATUS:
        return PyUnicode_DecodeUTF8(r->str, (Py_ssize_t)r->len, "replace");
    case DBP_REPLY_INTEGER:
        return PyLong_FromLongLong(r->integer);
    case DBP_REPLY_NIL:
        Py_RETURN_NONE;
    case DBP_REPLY_ERROR:
        return response_error(st, r);
    case DBP_REPLY_ARRAY: {
        PyObject *list = PyList_New((Py_ssize_t)r->n);
        for (size_t i = 0; list && i < r->n; i++) {
            PyObject *item = reply_to_python(st, r->element[i]);
            if (!item) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, item);
        }
        return list;
    }
    default:
        PyErr_Format(PyExc_RuntimeError, "unknown reply type %d", r->type);
        return NULL;
    }
}
