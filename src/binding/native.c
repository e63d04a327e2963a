/* native.c - db_pool._native, the CPython binding of libdbpool.
 *
 * It only translates: Python arguments to C parameters, C errors to the
 * exception classes of db_pool.errors (one table, below), Arrow streams to
 * PyCapsules. Blocking calls release the GIL. Multi-phase init with module
 * state and heap types, as CPython's own _sqlite does. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <structmember.h>

#include "arrow_abi.h"
#include "binding.h"
#include "column.h"
#include "textparse.h"

/* ---- module state ------------------------------------------------------------ */

static module_state *state_of_module(PyObject *module)
{
    return (module_state *)PyModule_GetState(module);
}

static struct PyModuleDef native_module;

module_state *state_of_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &native_module);
    return module ? state_of_module(module) : NULL;
}

/* ---- errors: the one table from C categories to Python classes ----------- */

static const char *const category_class[] = {
    [DBP_E_TIMEOUT] = "PoolTimeout",
    [DBP_E_AUTH] = "AuthenticationError",
    [DBP_E_NETWORK] = "OperationalError",
    [DBP_E_SERVER] = "OperationalError", /* refined by SQLSTATE class below */
    [DBP_E_PROTOCOL] = "InterfaceError",
    [DBP_E_NOMEM] = NULL,                /* MemoryError */
    [DBP_E_MISUSE] = "ProgrammingError",
    [DBP_E_CLOSED] = "PoolClosed",
    [DBP_E_NOT_FOUND] = "PoolNotFound",
    [DBP_E_EXISTS] = "PoolExists",
    [DBP_E_POOL_FULL] = "PoolFull",
    [DBP_E_CANCELLED] = "QueryCancelled",
    [DBP_E_DATA] = "DataError",
    [DBP_E_CONFIG] = "ConfigurationError",
    [DBP_E_UNAVAILABLE] = "NoEndpointAvailable",
    [DBP_E_OUTCOME_UNKNOWN] = "OutcomeUnknown",
    [DBP_E_QUERY_TIMEOUT] = "QueryTimeout", /* TimeoutOutcomeUnknown with 08007 */
};

static const struct {
    const char *sqlstate_class;
    const char *name;
} sqlstate_class[] = {
    {"23", "IntegrityError"}, {"42", "ProgrammingError"}, {"22", "DataError"},
    {"0A", "NotSupportedError"}, {"XX", "InternalError"},
};

static const char *error_class_name(const dbp_error *err)
{
    if (err->category == DBP_E_QUERY_TIMEOUT && strcmp(err->sqlstate, "08007") == 0)
        return "TimeoutOutcomeUnknown";
    if (err->category == DBP_E_SERVER || err->category == DBP_E_DATA ||
        err->category == DBP_E_MISUSE)
        for (size_t i = 0; i < sizeof sqlstate_class / sizeof *sqlstate_class; i++)
            if (strncmp(err->sqlstate, sqlstate_class[i].sqlstate_class, 2) == 0)
                return sqlstate_class[i].name;
    if (err->category <= 0 || (size_t)err->category >= sizeof category_class / sizeof *category_class)
        return "DatabaseError";
    return category_class[err->category];
}

/* An engine's text as str: bytes that are not UTF-8 become U+FFFD rather
 * than a UnicodeDecodeError hiding the error. */
static PyObject *lenient_text(const char *text)
{
    return PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
}

/* Raises the Python exception for `err`; returns NULL for convenience. */
PyObject *raise_error(module_state *st, const dbp_error *err, PyObject *engine)
{
    const char *name = error_class_name(err);
    if (!name)
        return PyErr_NoMemory();
    PyObject *cls = PyObject_GetAttrString(st->errors, name);
    if (!cls)
        return NULL;
    PyObject *message = lenient_text(err->message);
    PyObject *exc = message ? PyObject_CallOneArg(cls, message) : NULL;
    Py_XDECREF(message);
    Py_DECREF(cls);
    if (!exc)
        return NULL;
    PyObject *code = err->native_code ? PyLong_FromLong(err->native_code) : Py_NewRef(Py_None);
    PyObject *sqlstate = err->sqlstate[0] ? PyUnicode_FromString(err->sqlstate)
                                          : Py_NewRef(Py_None);
    PyObject *category = PyUnicode_FromString(dbp_category_name(err->category));
    PyObject *detail = err->detail[0] ? lenient_text(err->detail) : Py_NewRef(Py_None);
    PyObject *hint = err->hint[0] ? lenient_text(err->hint) : Py_NewRef(Py_None);
    if (code && sqlstate && category && detail && hint &&
        PyObject_SetAttrString(exc, "code", code) == 0 &&
        PyObject_SetAttrString(exc, "sqlstate", sqlstate) == 0 &&
        PyObject_SetAttrString(exc, "category", category) == 0 &&
        PyObject_SetAttrString(exc, "detail", detail) == 0 &&
        PyObject_SetAttrString(exc, "hint", hint) == 0 &&
        PyObject_SetAttrString(exc, "engine", engine ? engine : Py_None) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(code);
    Py_XDECREF(sqlstate);
    Py_XDECREF(category);
    Py_XDECREF(detail);
    Py_XDECREF(hint);
    Py_DECREF(exc);
    return NULL;
}

PyObject *raise_simple(module_state *st, int category, const char *message)
{
    dbp_error err = {.category = category};
    snprintf(err.message, sizeof err.message, "%s", message);
    return raise_error(st, &err, NULL);
}

/* Sets `engine` on the pending exception when it is one of ours. */
static void tag_engine(module_state *st, PyObject *engine)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb); /* Python 3.10 has no GetRaisedException */
    PyErr_NormalizeException(&type, &exc, &tb);
    PyObject *base = PyObject_GetAttrString(st->errors, "Error");
    if (base && exc && engine != Py_None && PyObject_IsInstance(exc, base) == 1)
        PyObject_SetAttrString(exc, "engine", engine);
    PyErr_Clear();
    Py_XDECREF(base);
    PyErr_Restore(type, exc, tb);
}

/* ---- ResultStream: an Arrow C stream handed to Polars once ----------------- */

typedef struct {
    PyObject_HEAD
    struct ArrowArrayStream stream;
} StreamObject;

static void stream_dealloc(StreamObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->stream.release)
        self->stream.release(&self->stream);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static void stream_capsule_destructor(PyObject *capsule)
{
    struct ArrowArrayStream *s = PyCapsule_GetPointer(capsule, "arrow_array_stream");
    if (!s)
        return;
    if (s->release)
        s->release(s);
    PyMem_Free(s);
}

/* __arrow_c_stream__(requested_schema=None): moves the stream into a capsule. */
static PyObject *stream_arrow_c_stream(StreamObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"requested_schema", NULL};
    PyObject *requested = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", kwlist, &requested))
        return NULL;
    if (requested != Py_None) {
        PyErr_SetString(PyExc_NotImplementedError, "schema requests are not supported");
        return NULL;
    }
    if (!self->stream.release) {
        PyErr_SetString(PyExc_RuntimeError, "the result stream was consumed already");
        return NULL;
    }
    struct ArrowArrayStream *moved = PyMem_Malloc(sizeof *moved);
    if (!moved)
        return PyErr_NoMemory();
    *moved = self->stream;
    self->stream.release = NULL;
    PyObject *capsule = PyCapsule_New(moved, "arrow_array_stream", stream_capsule_destructor);
    if (!capsule) {
        moved->release(moved);
        PyMem_Free(moved);
    }
    return capsule;
}

static PyMethodDef stream_methods[] = {
    {"__arrow_c_stream__", (PyCFunction)(void (*)(void))stream_arrow_c_stream,
     METH_VARARGS | METH_KEYWORDS, "Export the rows through the Arrow C stream interface."},
    {NULL},
};

static PyType_Slot stream_slots[] = {
    {Py_tp_dealloc, stream_dealloc},
    {Py_tp_methods, stream_methods},
    {Py_tp_doc, "Query rows as an Arrow C stream (consumed by the first reader)."},
    {0, NULL},
};

static PyType_Spec stream_spec = {
    .name = "db_pool._native.ResultStream",
    .basicsize = sizeof(StreamObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = stream_slots,
};

/* ---- Request ------------------------------------------------------------------- */

static int request_traverse(RequestObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->manager);
    Py_VISIT(self->future);
    Py_VISIT(self->queue);
    return 0;
}

static int request_clear(RequestObject *self)
{
    Py_CLEAR(self->future);
    return 0;
}

static void request_dealloc(RequestObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    request_clear(self);
    if (self->req) {
        /* An abandoned in-flight request keeps running; make it stop. */
        if (self->submitted)
            dbp_request_cancel(self->req);
        dbp_request_unref(self->req);
    }
    Py_XDECREF(self->engine);
    Py_XDECREF(self->manager);
    Py_XDECREF(self->queue);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* Moves the Arrow stream of `input` (anything with __arrow_c_stream__, such
 * as a polars.DataFrame) into the request. */
static int take_input(dbp_request *req, PyObject *input)
{
    PyObject *capsule = PyObject_CallMethod(input, "__arrow_c_stream__", NULL);
    if (!capsule)
        return -1;
    struct ArrowArrayStream *stream = PyCapsule_GetPointer(capsule, "arrow_array_stream");
    if (stream)
        dbp_request_set_input(req, stream); /* leaves the capsule's copy released */
    Py_DECREF(capsule);
    return stream ? 0 : -1;
}

RequestObject *request_create(module_state *st, PyObject *manager, dbp_op op, PyObject *sql,
                              PyObject *params, int many, Py_ssize_t batch_rows, int copy_mode,
                              PyObject *input, PyObject *future, PyObject *engine,
                              PyObject *timeout)
{
    int64_t timeout_ms = 0;
    if (timeout != Py_None && (timeout_ms = seconds_to_ms(timeout, "timeout", 0)) <= 0) {
        if (timeout_ms == 0)
            PyErr_SetString(PyExc_ValueError, "timeout must be more than 0 seconds");
        return NULL;
    }
    const char *text = NULL;
    Py_ssize_t len = 0;
    if (sql != Py_None) {
        text = PyUnicode_AsUTF8AndSize(sql, &len);
        if (!text)
            return NULL;
    }
    dbp_params *p;
    if (build_params(st, params, many, &p) < 0) {
        tag_engine(st, engine);
        return NULL;
    }
    RequestObject *self = PyObject_GC_New(RequestObject, st->request_type);
    if (!self) {
        dbp_params_free(p);
        return NULL;
    }
    self->req = NULL;
    self->manager = Py_NewRef(manager);
    self->future = Py_NewRef(future);
    self->engine = Py_NewRef(engine);
    self->queue = NULL;
    self->submitted = 0;
    PyObject_GC_Track(self);
    dbp_error err;
    if (dbp_request_new(&self->req, op, text, (size_t)len, p, &err) != DBP_OK) {
        Py_DECREF(self);
        return (RequestObject *)raise_error(st, &err, engine);
    }
    if (batch_rows > 0)
        dbp_request_set_batch_rows(self->req, batch_rows);
    dbp_request_set_copy_mode(self->req, (dbp_copy_mode)copy_mode);
    if (input != Py_None && take_input(self->req, input) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    dbp_request_set_timeout(self->req, timeout_ms);
    dbp_request_set_user_data(self->req, self);
    return self;
}

/* Completes submission: on success, the queue (if any) holds a reference to
 * the Python object until it is drained. */
PyObject *request_submitted(module_state *st, RequestObject *self, int rc, const dbp_error *err,
                            QueueObject *queue)
{
    if (rc != DBP_OK) {
        raise_error(st, err, self->engine);
        Py_DECREF(self);
        return NULL;
    }
    self->submitted = 1;
    if (queue) {
        Py_INCREF(self); /* owned by the completion queue entry */
        self->queue = Py_NewRef((PyObject *)queue);
        queue->pending++;
    }
    return (PyObject *)self;
}

/* How long Ctrl-C waits for the cancelled request: the core answers a
 * cancelled request within its cancel grace (at most half a second). */
#define INTERRUPT_WAIT_MS 2000

/* wait(timeout=None): blocks with the GIL released, waking every 200 ms for
 * signals. Ctrl-C cancels the request, waits (bounded) for it to stop, and
 * raises KeyboardInterrupt. */
static PyObject *request_wait(RequestObject *self, PyObject *args)
{
    double timeout = -1;
    if (!PyArg_ParseTuple(args, "|d", &timeout))
        return NULL;
    if (isnan(timeout) || timeout > 315360000.0)
        timeout = -1; /* no bound of the caller's: the request's own deadlines apply */
    int64_t deadline_ms = timeout < 0 ? -1 : (int64_t)(timeout * 1000);
    for (;;) {
        int64_t slice = deadline_ms < 0 || deadline_ms > 200 ? 200 : deadline_ms;
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = dbp_request_wait(self->req, slice);
        Py_END_ALLOW_THREADS
        if (rc == DBP_OK)
            Py_RETURN_TRUE;
        if (deadline_ms >= 0 && (deadline_ms -= slice) <= 0)
            Py_RETURN_FALSE;
        if (PyErr_CheckSignals() < 0) {
            dbp_request_cancel(self->req);
            Py_BEGIN_ALLOW_THREADS
            dbp_request_wait(self->req, INTERRUPT_WAIT_MS);
            Py_END_ALLOW_THREADS
            return NULL;
        }
    }
}

static PyObject *request_cancel(RequestObject *self, PyObject *unused)
{
    (void)unused;
    dbp_request_cancel(self->req);
    Py_RETURN_NONE;
}

static PyObject *request_done(RequestObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(dbp_request_is_done(self->req));
}

/* Raises the request's error, if it failed; returns 0 when it succeeded. */
static int request_check(RequestObject *self)
{
    module_state *st = state_of_type(Py_TYPE(self));
    dbp_error err;
    if (dbp_request_status(self->req, &err) == DBP_OK)
        return 0;
    raise_error(st, &err, self->engine);
    return -1;
}

static PyObject *request_check_method(RequestObject *self, PyObject *unused)
{
    (void)unused;
    if (request_check(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* result(): the rows as a ResultStream, or the request's exception. */
static PyObject *request_result(RequestObject *self, PyObject *unused)
{
    (void)unused;
    if (request_check(self) < 0)
        return NULL;
    module_state *st = state_of_type(Py_TYPE(self));
    StreamObject *out = PyObject_New(StreamObject, st->stream_type);
    if (!out)
        return NULL;
    out->stream.release = NULL;
    if (dbp_request_take_result(self->req, &out->stream) != DBP_OK) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "the request holds no rows (taken already?)");
        return NULL;
    }
    return (PyObject *)out;
}

/* reply(): a COMMAND's replies as a list of Python values (None when a
 * MULTI/EXEC was aborted by a WATCHed key), or the request's exception. */
static PyObject *request_reply(RequestObject *self, PyObject *unused)
{
    (void)unused;
    if (request_check(self) < 0)
        return NULL;
    dbp_reply *reply = dbp_request_take_reply(self->req);
    if (!reply) {
        PyErr_SetString(PyExc_RuntimeError, "the request holds no reply (taken already?)");
        return NULL;
    }
    PyObject *out = reply_to_python(state_of_type(Py_TYPE(self)), reply);
    dbp_reply_free(reply);
    return out;
}

static PyObject *request_rows_affected(RequestObject *self, PyObject *unused)
{
    (void)unused;
    if (request_check(self) < 0)
        return NULL;
    return PyLong_FromLongLong(dbp_request_rows_affected(self->req));
}

/* notices() -> list[str]: "SEVERITY: text" messages the engine sent. */
static PyObject *request_notices(RequestObject *self, PyObject *unused)
{
    (void)unused;
    const char *text = dbp_request_notices(self->req);
    if (!*text)
        return PyList_New(0);
    PyObject *all = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text) - 1, "replace");
    if (!all)
        return NULL;
    PyObject *lines = PyUnicode_Splitlines(all, 0);
    Py_DECREF(all);
    return lines;
}

static PyObject *request_cursor_done(RequestObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(dbp_request_cursor_done(self->req));
}

static PyObject *request_take_lease(RequestObject *self, PyObject *unused)
{
    (void)unused;
    if (request_check(self) < 0)
        return NULL;
    module_state *st = state_of_type(Py_TYPE(self));
    dbp_lease *lease = dbp_request_take_lease(self->req);
    if (!lease) {
        PyErr_SetString(PyExc_RuntimeError, "the request holds no lease (taken already?)");
        return NULL;
    }
    LeaseObject *out = PyObject_GC_New(LeaseObject, st->lease_type);
    if (!out) {
        dbp_lease_release(lease);
        return NULL;
    }
    out->lease = lease;
    out->manager = Py_NewRef(self->manager);
    out->engine = Py_NewRef(self->engine);
    PyObject_GC_Track(out);
    return (PyObject *)out;
}

static PyObject *request_get_future(RequestObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->future);
}

static int request_set_future(RequestObject *self, PyObject *value, void *closure)
{
    (void)closure;
    Py_XSETREF(self->future, Py_NewRef(value ? value : Py_None));
    return 0;
}

static PyMethodDef request_methods[] = {
    {"wait", (PyCFunction)request_wait, METH_VARARGS,
     "wait(timeout=None) -> bool: block until done (GIL released)."},
    {"cancel", (PyCFunction)request_cancel, METH_NOARGS, "Cancel: dequeue or interrupt."},
    {"done", (PyCFunction)request_done, METH_NOARGS, "Whether the request has completed."},
    {"check", (PyCFunction)request_check_method, METH_NOARGS, "Raise the request's error, if any."},
    {"result", (PyCFunction)request_result, METH_NOARGS, "The rows as an Arrow stream object."},
    {"rows_affected", (PyCFunction)request_rows_affected, METH_NOARGS, "Rows changed."},
    {"reply", (PyCFunction)request_reply, METH_NOARGS, "A command's replies as Python values."},
    {"take_lease", (PyCFunction)request_take_lease, METH_NOARGS, "The leased connection."},
    {"notices", (PyCFunction)request_notices, METH_NOARGS, "Messages the engine sent."},
    {NULL},
};

static PyGetSetDef request_getset[] = {
    {"future", (getter)request_get_future, (setter)request_set_future,
     "Object resolved by the event loop on completion.", NULL},
    {"cursor_done", (getter)request_cursor_done, NULL, "The cursor has no more rows.", NULL},
    {NULL},
};

static PyType_Slot request_slots[] = {
    {Py_tp_dealloc, request_dealloc},
    {Py_tp_traverse, request_traverse},
    {Py_tp_clear, request_clear},
    {Py_tp_methods, request_methods},
    {Py_tp_getset, request_getset},
    {Py_tp_doc, "A submitted unit of work."},
    {0, NULL},
};

static PyType_Spec request_spec = {
    .name = "db_pool._native.Request",
    .basicsize = sizeof(RequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = request_slots,
};

/* ---- module ---------------------------------------------------------------------------- */

static PyObject *module_engines(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *list = PyList_New(0);
    for (const char *const *e = dbp_engines(); list && *e; e++) {
        PyObject *name = PyUnicode_FromString(*e);
        if (!name || PyList_Append(list, name) < 0)
            Py_CLEAR(list);
        Py_XDECREF(name);
    }
    return list;
}

static PyMethodDef module_methods[] = {
    {"engines", module_engines, METH_NOARGS, "Engines compiled into this build."},
    {NULL},
};

static int add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    return *slot ? PyModule_AddType(module, *slot) : -1;
}

/* TYPE_IDS: the column types (column.h) a key-value engine's tabular read
 * is asked for, by name. */
static int add_type_ids(PyObject *module)
{
    static const struct {
        const char *name;
        int id;
    } ids[] = {
        {"BOOL", DBP_T_BOOL},       {"INT8", DBP_T_INT8},       {"INT16", DBP_T_INT16},
        {"INT32", DBP_T_INT32},     {"INT64", DBP_T_INT64},     {"UINT8", DBP_T_UINT8},
        {"UINT16", DBP_T_UINT16},   {"UINT32", DBP_T_UINT32},   {"UINT64", DBP_T_UINT64},
        {"FLOAT32", DBP_T_FLOAT32}, {"FLOAT64", DBP_T_FLOAT64}, {"DATE32", DBP_T_DATE32},
        {"TIMESTAMP_US", DBP_T_TIMESTAMP_US}, {"TIMESTAMP_UTC", DBP_T_TIMESTAMP_UTC},
        {"STRING", DBP_T_STRING},   {"BINARY", DBP_T_BINARY},
    };
    PyObject *dict = PyDict_New();
    for (size_t i = 0; dict && i < sizeof ids / sizeof *ids; i++) {
        PyObject *v = PyLong_FromLong(ids[i].id);
        if (!v || PyDict_SetItemString(dict, ids[i].name, v) < 0)
            Py_CLEAR(dict);
        Py_XDECREF(v);
    }
    int rc = dict ? PyModule_AddObjectRef(module, "TYPE_IDS", dict) : -1;
    Py_XDECREF(dict);
    return rc;
}

static int module_exec(PyObject *module)
{
    module_state *st = state_of_module(module);
    if (bind_params_init() < 0)
        return -1;
    st->errors = PyImport_ImportModule("db_pool.errors");
    if (!st->errors)
        return -1;
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (!decimal)
        return -1;
    st->decimal_type = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (!st->decimal_type)
        return -1;
    PyObject *adapt = PyImport_ImportModule("db_pool._adapt");
    if (!adapt)
        return -1;
    st->adapt = PyObject_GetAttrString(adapt, "adapt");
    Py_DECREF(adapt);
    if (!st->adapt)
        return -1;
    if (add_type(module, &manager_spec, &st->manager_type) < 0 ||
        add_type(module, &request_spec, &st->request_type) < 0 ||
        add_type(module, &lease_spec, &st->lease_type) < 0 ||
        add_type(module, &queue_spec, &st->queue_type) < 0 ||
        add_type(module, &stream_spec, &st->stream_type) < 0)
        return -1;
    static const struct {
        const char *name;
        int value;
    } ops[] = {
        {"OP_QUERY", DBP_OP_QUERY},       {"OP_EXECUTE", DBP_OP_EXECUTE},
        {"OP_EXECUTE_MANY", DBP_OP_EXECUTE_MANY}, {"OP_LEASE", DBP_OP_LEASE},
        {"OP_BEGIN", DBP_OP_BEGIN},       {"OP_COMMIT", DBP_OP_COMMIT},
        {"OP_ROLLBACK", DBP_OP_ROLLBACK}, {"OP_CURSOR_OPEN", DBP_OP_CURSOR_OPEN},
        {"OP_CURSOR_FETCH", DBP_OP_CURSOR_FETCH}, {"OP_CURSOR_CLOSE", DBP_OP_CURSOR_CLOSE},
        {"OP_WRITE_FRAME", DBP_OP_WRITE_FRAME}, {"OP_COMMAND", DBP_OP_COMMAND},
        {"COPY_AUTO", DBP_COPY_AUTO},     {"COPY_ALWAYS", DBP_COPY_ALWAYS},
        {"COPY_NEVER", DBP_COPY_NEVER},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (PyModule_AddIntConstant(module, ops[i].name, ops[i].value) < 0)
            return -1;
    return add_type_ids(module);
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *st = state_of_module(module);
    Py_VISIT(st->manager_type);
    Py_VISIT(st->request_type);
    Py_VISIT(st->lease_type);
    Py_VISIT(st->queue_type);
    Py_VISIT(st->stream_type);
    Py_VISIT(st->errors);
    Py_VISIT(st->decimal_type);
    Py_VISIT(st->adapt);
    return 0;
}

static int module_clear(PyObject *module)
{
    module_state *st = state_of_module(module);
    Py_CLEAR(st->manager_type);
    Py_CLEAR(st->request_type);
    Py_CLEAR(st->lease_type);
    Py_CLEAR(st->queue_type);
    Py_CLEAR(st->stream_type);
    Py_CLEAR(st->errors);
    Py_CLEAR(st->decimal_type);
    Py_CLEAR(st->adapt);
    return 0;
}

static void module_free(void *module) { module_clear((PyObject *)module); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "db_pool._native",
    .m_doc = "CPython binding of libdbpool (internal; use the db_pool package).",
    .m_size = sizeof(module_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void) { return PyModuleDef_Init(&native_module); }
