/* queue.c - db_pool._native.CompletionQueue: the requests an event loop
 * submitted, handed back once done through an eventfd the loop watches. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "binding.h"

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    QueueObject *self = (QueueObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    dbp_error err;
    if (dbp_completion_queue_new(&self->cq, &err) != DBP_OK) {
        Py_DECREF(self);
        return raise_error(state_of_type(type), &err, NULL);
    }
    return (PyObject *)self;
}

/* A request the queue handed back: drops the queue's C reference and the
 * request's hold on the queue; returns the entry's reference to the Python
 * object. */
static PyObject *queue_entry_take(dbp_request *req)
{
    RequestObject *obj = dbp_request_user_data(req);
    dbp_request_unref(req);
    ((QueueObject *)obj->queue)->pending--;
    Py_CLEAR(obj->queue); /* not the last reference: the caller holds the queue */
    return (PyObject *)obj;
}

/* Drops the Python references of requests still queued. */
static void queue_discard(QueueObject *self)
{
    dbp_request *reqs[64];
    size_t n;
    while ((n = dbp_completion_queue_drain(self->cq, reqs, 64)) > 0)
        for (size_t i = 0; i < n; i++)
            Py_DECREF(queue_entry_take(reqs[i]));
}

static void queue_dealloc(QueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->cq) {
        queue_discard(self);
        dbp_completion_queue_free(self->cq);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *queue_fileno(QueueObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(dbp_completion_queue_fd(self->cq));
}

/* drain() -> list[Request]: every finished request, in completion order. */
static PyObject *queue_drain(QueueObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    dbp_request *reqs[256];
    size_t n;
    while ((n = dbp_completion_queue_drain(self->cq, reqs, 256)) > 0) {
        for (size_t i = 0; i < n; i++) {
            PyObject *obj = queue_entry_take(reqs[i]);
            if (PyList_Append(list, obj) < 0) {
                Py_DECREF(obj);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(obj);
        }
    }
    return list;
}

static PyMethodDef queue_methods[] = {
    {"fileno", (PyCFunction)queue_fileno, METH_NOARGS, "The eventfd to watch for reading."},
    {"drain", (PyCFunction)queue_drain, METH_NOARGS, "All finished requests."},
    {NULL},
};

static PyObject *queue_pending(QueueObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->pending);
}

static PyGetSetDef queue_getset[] = {
    {"pending", (getter)queue_pending, NULL,
     "Requests submitted with this queue that drain() has not returned yet.", NULL},
    {NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_new, queue_new},
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_tp_doc, "Finished requests, signalled through one file descriptor."},
    {0, NULL},
};

PyType_Spec queue_spec = {
    .name = "db_pool._native.CompletionQueue",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = queue_slots,
};

int queue_arg(module_state *st, PyObject *obj, QueueObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!PyObject_TypeCheck(obj, st->queue_type)) {
        PyErr_SetString(PyExc_TypeError, "queue must be a CompletionQueue or None");
        return -1;
    }
    *out = (QueueObject *)obj;
    return 0;
}
