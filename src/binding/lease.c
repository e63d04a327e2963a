/* lease.c - db_pool._native.Lease: a connection checked out of its pool
 * (transactions, streams), with the requests it runs and its release. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "binding.h"

static int lease_traverse(LeaseObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->manager);
    return 0;
}

static void lease_release_now(LeaseObject *self)
{
    dbp_lease *lease = self->lease;
    self->lease = NULL;
    if (!lease)
        return;
    Py_BEGIN_ALLOW_THREADS
    dbp_lease_release(lease);
    Py_END_ALLOW_THREADS
}

static void lease_dealloc(LeaseObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    lease_release_now(self);
    Py_XDECREF(self->engine);
    Py_XDECREF(self->manager);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *lease_release(LeaseObject *self, PyObject *unused)
{
    (void)unused;
    lease_release_now(self);
    Py_RETURN_NONE;
}

static PyObject *lease_in_transaction(LeaseObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->lease && dbp_lease_in_transaction(self->lease));
}

static PyObject *lease_endpoint(LeaseObject *self, void *closure)
{
    (void)closure;
    if (!self->lease)
        Py_RETURN_NONE;
    const char *label = dbp_lease_endpoint(self->lease);
    return PyUnicode_DecodeUTF8(label, (Py_ssize_t)strlen(label), "replace");
}

/* submit(op, sql=None, params=None, *, many=False, batch_rows=0, queue=None,
 *        future=None) -> Request */
static PyObject *lease_submit(LeaseObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"op",   "sql",   "params", "many",   "batch_rows",
                             "copy", "input", "queue",  "future", "timeout", NULL};
    module_state *st = state_of_type(Py_TYPE(self));
    int op, many = 0, copy_mode = DBP_COPY_AUTO;
    PyObject *sql = Py_None, *params = Py_None, *queue_obj = Py_None, *future = Py_None,
             *input = Py_None, *timeout = Py_None;
    Py_ssize_t batch_rows = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|OO$iniOOOO", kwlist, &op, &sql, &params,
                                     &many, &batch_rows, &copy_mode, &input, &queue_obj,
                                     &future, &timeout))
        return NULL;
    QueueObject *queue;
    if (queue_arg(st, queue_obj, &queue) < 0)
        return NULL;
    if (!self->lease)
        return raise_simple(st, DBP_E_CLOSED, "the connection was released already");
    RequestObject *req = request_create(st, self->manager, (dbp_op)op, sql, params, many,
                                        batch_rows, copy_mode, input, future, self->engine,
                                        timeout);
    if (!req)
        return NULL;
    dbp_error err;
    int rc = dbp_submit_on_lease(self->lease, req->req, queue ? queue->cq : NULL, &err);
    return request_submitted(st, req, rc, &err, queue);
}

static PyMethodDef lease_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))lease_submit, METH_VARARGS | METH_KEYWORDS,
     "Run a request on this connection."},
    {"release", (PyCFunction)lease_release, METH_NOARGS,
     "Return the connection (rolled back if a transaction is open)."},
    {NULL},
};

static PyGetSetDef lease_getset[] = {
    {"in_transaction", (getter)lease_in_transaction, NULL, "A transaction is open.", NULL},
    {"endpoint", (getter)lease_endpoint, NULL, "Its connection's endpoint (no password).", NULL},
    {NULL},
};

static PyType_Slot lease_slots[] = {
    {Py_tp_dealloc, lease_dealloc},
    {Py_tp_traverse, lease_traverse},
    {Py_tp_methods, lease_methods},
    {Py_tp_getset, lease_getset},
    {Py_tp_doc, "A connection checked out of its pool."},
    {0, NULL},
};

PyType_Spec lease_spec = {
    .name = "db_pool._native.Lease",
    .basicsize = sizeof(LeaseObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = lease_slots,
};
