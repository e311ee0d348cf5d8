/*
 * Kafka's murmur2 partitioner hash, as a CPython extension that keeps the GIL.
 *
 * The murmurhash2 package computes the same hash but releases the GIL on every call; in a
 * producer whose sender and gRPC threads are runnable, each release hands the GIL away and a
 * 0.1 us hash turns into tens of microseconds (measured: 43 us per call beside one busy
 * thread). Hashing a short key takes far less time than a GIL handoff, so this one never
 * releases it. Same algorithm as Kafka's Utils.murmur2 (seed 0x9747b28c); the tests check
 * Kafka's vectors against both implementations.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t kafka_murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t seed = 0x9747b28cU;
    const uint32_t m = 0x5bd1e995U;
    const int r = 24;
    uint32_t h = seed ^ (uint32_t)length;
    Py_ssize_t length4 = length / 4;
    for (Py_ssize_t i = 0; i < length4; i++) {
        const Py_ssize_t i4 = i * 4;
        uint32_t k = (uint32_t)data[i4] | ((uint32_t)data[i4 + 1] << 8) |
                     ((uint32_t)data[i4 + 2] << 16) | ((uint32_t)data[i4 + 3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length % 4) {
        case 3: h ^= (uint32_t)data[(length & ~3) + 2] << 16; /* fall through */
        case 2: h ^= (uint32_t)data[(length & ~3) + 1] << 8;  /* fall through */
        case 1: h ^= (uint32_t)data[length & ~3];
                h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* murmur2_positive(key: bytes) -> int: murmur2(key) & 0x7fffffff, what the partitioner uses. */
static PyObject *murmur2_positive(PyObject *self, PyObject *key) {
    char *data;
    Py_ssize_t length;
    if (PyBytes_AsStringAndSize(key, &data, &length) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLong(kafka_murmur2((const unsigned char *)data, length) & 0x7fffffffU);
}

/* murmur2(key: bytes) -> int: Kafka's signed 32-bit murmur2. */
static PyObject *murmur2_signed(PyObject *self, PyObject *key) {
    char *data;
    Py_ssize_t length;
    if (PyBytes_AsStringAndSize(key, &data, &length) < 0) {
        return NULL;
    }
    return PyLong_FromLong((long)(int32_t)kafka_murmur2((const unsigned char *)data, length));
}

static PyMethodDef methods[] = {
    {"murmur2_positive", murmur2_positive, METH_O, "murmur2(key) & 0x7fffffff (Kafka's partitioner hash)."},
    {"murmur2", murmur2_signed, METH_O, "Kafka's signed 32-bit murmur2 of key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_murmur2", NULL, -1, methods};

PyMODINIT_FUNC PyInit__murmur2(void) { return PyModule_Create(&module); }
