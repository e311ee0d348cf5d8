/*
 * The PostgreSQL sink's commonest batch as binary COPY data in one C pass (see copy_stream.py,
 * whose pure-Python jsonb_copy_py gives the same bytes, or None, for the same records; the tests
 * run both over the same batches).
 *
 * jsonb_copy(records, topic, needs_key) -> bytes | None
 *
 * records are SinkRecord tuples (topic, partition, offset, timestamp_ms, key, value, headers, doc).
 * When every one is of ``topic`` (ASCII), has no headers and no decoded doc, a value that starts
 * with "{" and holds no "\u0000", a key when needs_key, a partition that fits an int4 and a
 * timestamp in timestamptz's range: the COPY data (signature, one tuple per record, trailer) of
 * the rows (topic, partition, offset, key, jsonb value, NULL, timestamp, NULL). Else None: the
 * caller builds rows another way. One pass checks and sizes, a second writes into the bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* 2000-01-01T00:00:00Z in Unix ms, and timestamptz's range in Unix ms (as rows.py) */
#define PG_EPOCH_MS 946684800000LL
#define MIN_TIMESTAMP_MS (-210866803200000LL)
#define END_TIMESTAMP_MS 9224318016000000LL
#define FIELDS 8

static const char SIGNATURE[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"; /* 11 + flags + extension */
#define SIGNATURE_SIZE 19
static const char NUL_ESCAPE[] = "\\u0000";

static char *put16(char *p, uint16_t v) {
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *put32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static char *put64(char *p, uint64_t v) {
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

/* v as a C long long when it is an int in [lo, hi); 0 with *ok = 0 otherwise (no exception set) */
static long long int_in(PyObject *v, long long lo, long long hi, int *ok) {
    if (!PyLong_CheckExact(v)) { *ok = 0; return 0; }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred()) || x < lo || x >= hi) {
        PyErr_Clear();
        *ok = 0;
        return 0;
    }
    return x;
}

static PyObject *jsonb_copy(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "jsonb_copy() takes 3 arguments");
        return NULL;
    }
    PyObject *records = args[0], *topic = args[1];
    int needs_key = PyObject_IsTrue(args[2]);
    if (needs_key < 0) return NULL;
    if (!PyList_Check(records) || !PyUnicode_Check(topic)) {
        PyErr_SetString(PyExc_TypeError, "jsonb_copy(records: list, topic: str, needs_key)");
        return NULL;
    }
    if (PyUnicode_READY(topic) < 0) return NULL;
    if (!PyUnicode_IS_ASCII(topic)) Py_RETURN_NONE;
    Py_ssize_t topic_len = PyUnicode_GET_LENGTH(topic);
    const char *topic_bytes = (const char *)PyUnicode_1BYTE_DATA(topic);
    Py_ssize_t n = PyList_GET_SIZE(records);
    if (n == 0) Py_RETURN_NONE;

    /* pass 1: check every record and size the data */
    Py_ssize_t fixed = 2 + (4 + topic_len) + (4 + 4) + (4 + 8) + 4 + (4 + 1) + 4 + (4 + 8) + 4;
    Py_ssize_t size = SIGNATURE_SIZE + 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(records, i);
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != FIELDS) Py_RETURN_NONE;
        PyObject *t = PyTuple_GET_ITEM(r, 0);
        if (t != topic) {
            if (!PyUnicode_Check(t)) Py_RETURN_NONE;
            int eq = PyUnicode_Compare(t, topic);
            if (eq == -1 && PyErr_Occurred()) return NULL;
            if (eq != 0) Py_RETURN_NONE;
        }
        int ok = 1;
        int_in(PyTuple_GET_ITEM(r, 1), INT32_MIN, (long long)INT32_MAX + 1, &ok);
        int_in(PyTuple_GET_ITEM(r, 2), INT64_MIN, INT64_MAX, &ok);
        int_in(PyTuple_GET_ITEM(r, 3), MIN_TIMESTAMP_MS, END_TIMESTAMP_MS, &ok);
        if (!ok) Py_RETURN_NONE;
        PyObject *key = PyTuple_GET_ITEM(r, 4), *value = PyTuple_GET_ITEM(r, 5);
        if (PyTuple_GET_ITEM(r, 6) != Py_None || PyTuple_GET_ITEM(r, 7) != Py_None) Py_RETURN_NONE;
        if (key == Py_None) {
            if (needs_key) Py_RETURN_NONE;
        } else if (!PyBytes_CheckExact(key)) {
            Py_RETURN_NONE;
        } else {
            size += PyBytes_GET_SIZE(key);
        }
        if (!PyBytes_CheckExact(value)) Py_RETURN_NONE;
        Py_ssize_t len = PyBytes_GET_SIZE(value);
        const char *v = PyBytes_AS_STRING(value);
        if (len == 0 || v[0] != '{' || len >= INT32_MAX) Py_RETURN_NONE;
        if (len >= 6) {
            /* "\u0000" (which jsonb cannot hold, escaped or not: rows.py decides which) */
            const char *at = v;
            Py_ssize_t left = len;
            while (left >= 6) {
                const char *hit = memchr(at, '\\', (size_t)(left - 5));
                if (hit == NULL) break;
                if (memcmp(hit, NUL_ESCAPE, 6) == 0) Py_RETURN_NONE;
                left -= hit + 1 - at;
                at = hit + 1;
            }
        }
        size += fixed + len;
    }

    /* pass 2: write */
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) return NULL;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, SIGNATURE, SIGNATURE_SIZE);
    p += SIGNATURE_SIZE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(records, i);
        PyObject *key = PyTuple_GET_ITEM(r, 4), *value = PyTuple_GET_ITEM(r, 5);
        int ok = 1;
        long long partition = int_in(PyTuple_GET_ITEM(r, 1), INT32_MIN, (long long)INT32_MAX + 1, &ok);
        long long offset = int_in(PyTuple_GET_ITEM(r, 2), INT64_MIN, INT64_MAX, &ok);
        long long ts = int_in(PyTuple_GET_ITEM(r, 3), MIN_TIMESTAMP_MS, END_TIMESTAMP_MS, &ok);
        p = put16(p, FIELDS);
        p = put32(p, (uint32_t)topic_len);
        memcpy(p, topic_bytes, (size_t)topic_len);
        p += topic_len;
        p = put32(p, 4);
        p = put32(p, (uint32_t)(int32_t)partition);
        p = put32(p, 8);
        p = put64(p, (uint64_t)offset);
        if (key == Py_None) {
            p = put32(p, 0xFFFFFFFFu);
        } else {
            Py_ssize_t klen = PyBytes_GET_SIZE(key);
            p = put32(p, (uint32_t)klen);
            memcpy(p, PyBytes_AS_STRING(key), (size_t)klen);
            p += klen;
        }
        Py_ssize_t vlen = PyBytes_GET_SIZE(value);
        p = put32(p, (uint32_t)(vlen + 1));
        *p++ = 1; /* jsonb's binary format version */
        memcpy(p, PyBytes_AS_STRING(value), (size_t)vlen);
        p += vlen;
        p = put32(p, 0xFFFFFFFFu); /* value_bytes NULL */
        p = put32(p, 8);
        p = put64(p, (uint64_t)((ts - PG_EPOCH_MS) * 1000));
        p = put32(p, 0xFFFFFFFFu); /* headers NULL */
    }
    p = put16(p, 0xFFFF); /* trailer */
    if (p != PyBytes_AS_STRING(out) + size) { /* the records changed between the passes */
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "jsonb_copy(): records changed while being encoded");
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"jsonb_copy", (PyCFunction)(void (*)(void))jsonb_copy, METH_FASTCALL,
     "jsonb_copy(records, topic, needs_key) -> the binary COPY data of plain jsonb rows, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_copy", "Plain jsonb rows as binary COPY data (see copy_stream.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__copy(void) { return PyModule_Create(&module); }
