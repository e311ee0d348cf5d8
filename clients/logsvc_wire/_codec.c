/*
 * The record codec of proto/logsvc/v1/logsvc.proto (RECORD BATCH ENCODING) as one CPython
 * extension: the hot loops of the producer, the broker and the consumer, each one pass over the
 * records in C. The pure-Python logsvc_wire modules do the same work when this was not built, and
 * the tests run both over the same cases (byte-identical encodings, equal decodings, the same
 * verdict and message for every malformed payload).
 *
 * - check():   the broker's per-record check of a produced payload (walks the bytes once and
 *              allocates no Python object per record; one str when refused). For payloads of
 *              64 KiB or more it releases the GIL while walking; a small batch is walked in less
 *              time than a GIL handoff costs, so it keeps it.
 * - decode():  the consumer's decoding: the same walk as check() (so the same verdicts), then one
 *              pass that builds the application's Record tuples straight from the bytes, with no
 *              intermediate row tuples, sharing one int object between records of one timestamp.
 * - encode_bulk(), append_record(), payload(): the producer's encoding. Records are encoded into
 *              their partition's msgpack buffer as they are queued (no tuple per record, nothing
 *              left to encode when the batch is sent); encode_bulk() also partitions a whole
 *              send_many call by Kafka's murmur2, keeping the GIL throughout.
 * - murmur2_positive(), murmur2(): Kafka's key hash, keeping the GIL (the murmurhash2 package
 *              releases it on every call, and in a producer whose sender thread is runnable each
 *              release costs a GIL handoff: tens of microseconds instead of a tenth of one).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stddef.h>

/* 9999-12-31T23:59:59.999Z in ms since the Unix epoch: the greatest timestamp a record may have. */
#define MAX_TIMESTAMP_MS 253402300799999LL
#ifndef RELEASE_GIL_BYTES
#define RELEASE_GIL_BYTES 65536
#endif
#define MSG_SIZE 256

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    char *msg; /* the verdict when refused, else msg[0] == 0 */
    long long first_ts;
    long long max_ts;
} walk;

static const char *type_name(uint8_t b) {
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) return "int";
    if (b <= 0x8f || b == 0xde || b == 0xdf) return "map";
    if (b <= 0x9f || b == 0xdc || b == 0xdd) return "array";
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) return "str";
    switch (b) {
        case 0xc0: return "nil";
        case 0xc1: return "never-used byte";
        case 0xc2: case 0xc3: return "bool";
        case 0xc4: case 0xc5: case 0xc6: return "bin";
        case 0xca: return "float32";
        case 0xcb: return "float64";
        default: return "ext"; /* 0xc7-0xc9, 0xd4-0xd8 */
    }
}

static uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* The width of a msgpack bin header (0xc4, 0xc5, 0xc6: 2, 3, 5 bytes) by its first byte; 0: not a bin. */
static int bin_width(uint8_t b) { return b == 0xc4 ? 2 : b == 0xc5 ? 3 : b == 0xc6 ? 5 : 0; }

/* The width of a msgpack str header (fixstr: 1; 0xd9, 0xda, 0xdb: 2, 3, 5) by its first byte; 0: not a str. */
static int str_width(uint8_t b) {
    return (b >= 0xa0 && b <= 0xbf) ? 1 : b == 0xd9 ? 2 : b == 0xda ? 3 : b == 0xdb ? 5 : 0;
}

/* The length the bin or str header of that width at p says. */
static Py_ssize_t sized_length(const uint8_t *p, int width) {
    switch (width) {
        case 1: return p[0] & 0x1f;
        case 2: return p[1];
        case 3: return be16(p + 1);
        default: return be32(p + 1);
    }
}

/* Array header at w->p: 1 and its length in *n, 0 when not an array, -1 when cut off. */
static int array_header(walk *w, uint32_t *n) {
    uint8_t b = *w->p;
    Py_ssize_t left = w->end - w->p;
    if (b >= 0x90 && b <= 0x9f) { *n = b & 0x0f; w->p += 1; return 1; }
    if (b == 0xdc) { if (left < 3) return -1; *n = be16(w->p + 1); w->p += 3; return 1; }
    if (b == 0xdd) { if (left < 5) return -1; *n = be32(w->p + 1); w->p += 5; return 1; }
    return 0;
}

static int cut_off(walk *w, Py_ssize_t i) {
    snprintf(w->msg, MSG_SIZE, "record %zd: payload ends inside the record", i);
    return -1;
}

/* bin or nil at w->p (which is < end): the key or value (j < 0) or the value of header j. */
static int bin_or_nil(walk *w, Py_ssize_t i, long j, const char *field, const char *plural) {
    uint8_t b = *w->p;
    Py_ssize_t left = w->end - w->p;
    if (b == 0xc0) { w->p += 1; return 0; }
    int hdr = bin_width(b);
    if (hdr == 0) {
        int is_str = str_width(b) != 0;
        char header[32] = "";
        if (j >= 0) snprintf(header, sizeof header, "header %ld ", j);
        snprintf(w->msg, MSG_SIZE, "record %zd: %s%s is msgpack %s (0x%02x); %s must be bin or nil%s", i, header,
                 field, type_name(b), b, plural, is_str ? " (send text as bin: encode it to bytes)" : "");
        return -1;
    }
    if (left < hdr) return cut_off(w, i);
    Py_ssize_t size = sized_length(w->p, hdr);
    if (left - hdr < size) return cut_off(w, i);
    w->p += hdr + size;
    return 0;
}

/* Strict UTF-8, as Python's bytes.decode("utf-8"): no overlong forms, no surrogates, <= U+10FFFF. */
static int valid_utf8(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        int more;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) more = 1;
        else if (c == 0xe0) { more = 2; lo = 0xa0; }
        else if (c == 0xed) { more = 2; hi = 0x9f; }
        else if (c >= 0xe1 && c <= 0xef) more = 2;
        else if (c == 0xf0) { more = 3; lo = 0x90; }
        else if (c == 0xf4) { more = 3; hi = 0x8f; }
        else if (c >= 0xf1 && c <= 0xf3) more = 3;
        else return 0;
        if (n - i <= more) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (int k = 2; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        }
        i += more + 1;
    }
    return 1;
}

static int header(walk *w, Py_ssize_t i, uint32_t j) {
    uint32_t n;
    int r;
    if (w->p >= w->end) return cut_off(w, i);
    uint8_t b = *w->p;
    if ((r = array_header(w, &n)) < 0) return cut_off(w, i);
    if (r == 0) {
        snprintf(w->msg, MSG_SIZE, "record %zd: header %u is msgpack %s (0x%02x), not an array of 2 [name, value]",
                 i, j, type_name(b), b);
        return -1;
    }
    if (n != 2) {
        snprintf(w->msg, MSG_SIZE, "record %zd: header %u is an array of %u elements, not 2 [name, value]", i, j,
                 n);
        return -1;
    }
    if (w->p >= w->end) return cut_off(w, i);
    b = *w->p;
    Py_ssize_t left = w->end - w->p;
    int hdr = str_width(b);
    if (hdr == 0) {
        snprintf(w->msg, MSG_SIZE, "record %zd: header %u name is msgpack %s (0x%02x); header names must be str",
                 i, j, type_name(b), b);
        return -1;
    }
    if (left < hdr) return cut_off(w, i);
    Py_ssize_t size = sized_length(w->p, hdr);
    if (left - hdr < size) return cut_off(w, i);
    if (!valid_utf8(w->p + hdr, size)) {
        snprintf(w->msg, MSG_SIZE, "record %zd: header %u name is not valid UTF-8", i, j);
        return -1;
    }
    w->p += hdr + size;
    if (w->p >= w->end) return cut_off(w, i);
    return bin_or_nil(w, i, (long)j, "value", "header values");
}

static int record(walk *w, Py_ssize_t i) {
    uint32_t n;
    int r;
    uint8_t b = *w->p;
    if (b == 0x94) {
        w->p += 1;
    } else {
        if ((r = array_header(w, &n)) < 0) return cut_off(w, i);
        if (r == 0) {
            snprintf(w->msg, MSG_SIZE,
                     "record %zd: is msgpack %s (0x%02x), not an array of 4 [timestamp, key, value, headers]", i,
                     type_name(b), b);
            return -1;
        }
        if (n != 4) { /* an array of 4 in a longer form than 0x94 is still one */
            snprintf(w->msg, MSG_SIZE,
                     "record %zd: is an array of %u elements, not 4 [timestamp, key, value, headers]", i, n);
            return -1;
        }
    }
    /* timestamp */
    if (w->p >= w->end) return cut_off(w, i);
    b = *w->p;
    Py_ssize_t left = w->end - w->p;
    long long ts;
    if (b <= 0x7f) { ts = b; w->p += 1; }
    else if (b >= 0xe0) { ts = (int8_t)b; w->p += 1; }
    else if (b == 0xcc) { if (left < 2) return cut_off(w, i); ts = w->p[1]; w->p += 2; }
    else if (b == 0xcd) { if (left < 3) return cut_off(w, i); ts = be16(w->p + 1); w->p += 3; }
    else if (b == 0xce) { if (left < 5) return cut_off(w, i); ts = be32(w->p + 1); w->p += 5; }
    else if (b == 0xcf) {
        if (left < 9) return cut_off(w, i);
        uint64_t u = be64(w->p + 1);
        if (u > (uint64_t)MAX_TIMESTAMP_MS) {
            snprintf(w->msg, MSG_SIZE, "record %zd: timestamp %llu is out of range: 0 to %lld ms", i,
                     (unsigned long long)u, MAX_TIMESTAMP_MS);
            return -1;
        }
        ts = (long long)u;
        w->p += 9;
    }
    else if (b == 0xd0) { if (left < 2) return cut_off(w, i); ts = (int8_t)w->p[1]; w->p += 2; }
    else if (b == 0xd1) { if (left < 3) return cut_off(w, i); ts = (int16_t)be16(w->p + 1); w->p += 3; }
    else if (b == 0xd2) { if (left < 5) return cut_off(w, i); ts = (int32_t)be32(w->p + 1); w->p += 5; }
    else if (b == 0xd3) { if (left < 9) return cut_off(w, i); ts = (long long)(int64_t)be64(w->p + 1); w->p += 9; }
    else {
        snprintf(w->msg, MSG_SIZE, "record %zd: timestamp is msgpack %s (0x%02x); timestamps must be int", i,
                 type_name(b), b);
        return -1;
    }
    if (ts < 0 || ts > MAX_TIMESTAMP_MS) {
        snprintf(w->msg, MSG_SIZE, "record %zd: timestamp %lld is out of range: 0 to %lld ms", i, ts,
                 MAX_TIMESTAMP_MS);
        return -1;
    }
    if (i == 0) w->first_ts = ts;
    if (ts > w->max_ts) w->max_ts = ts;
    /* key, value */
    if (w->p >= w->end) return cut_off(w, i);
    if (bin_or_nil(w, i, -1, "key", "keys") < 0) return -1;
    if (w->p >= w->end) return cut_off(w, i);
    if (bin_or_nil(w, i, -1, "value", "values") < 0) return -1;
    /* headers */
    if (w->p >= w->end) return cut_off(w, i);
    b = *w->p;
    if (b == 0xc0) { w->p += 1; return 0; }
    if ((r = array_header(w, &n)) < 0) return cut_off(w, i);
    if (r == 0) {
        snprintf(w->msg, MSG_SIZE,
                 "record %zd: headers is msgpack %s (0x%02x); headers must be nil or an array of [name, value] "
                 "pairs", i, type_name(b), b);
        return -1;
    }
    for (uint32_t j = 0; j < n; j++) {
        if (header(w, i, j) < 0) return -1;
    }
    return 0;
}

static void check_payload(walk *w, uint32_t count) {
    uint32_t n;
    int r;
    if (w->p >= w->end) {
        snprintf(w->msg, MSG_SIZE, "payload is empty");
        return;
    }
    uint8_t b = *w->p;
    if ((r = array_header(w, &n)) < 0) {
        snprintf(w->msg, MSG_SIZE, "payload ends inside its array header");
        return;
    }
    if (r == 0) {
        snprintf(w->msg, MSG_SIZE, "payload is msgpack %s (0x%02x), not an array of records", type_name(b), b);
        return;
    }
    if (n != count) {
        snprintf(w->msg, MSG_SIZE, "header says %u records, payload holds %u", count, n);
        return;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)n; i++) {
        if (w->p >= w->end) {
            cut_off(w, i);
            return;
        }
        if (record(w, i) < 0) return;
    }
    if (w->p != w->end) {
        snprintf(w->msg, MSG_SIZE, "payload has %zd bytes after its last record", (Py_ssize_t)(w->end - w->p));
    }
}

/*
 * check(payload, record_count, first_timestamp_ms, max_timestamp_ms, timestamps) -> str | None
 *
 * None when the payload is exactly an array of record_count records of the specified types (and,
 * when timestamps is true, the header's first and max timestamps are what the records hold);
 * otherwise the message saying what is wrong and where.
 */
static PyObject *check(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "check() takes 5 arguments");
        return NULL;
    }
    Py_buffer view;
    unsigned long count = PyLong_AsUnsignedLong(args[1]);
    if (count == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    if (count > 0xffffffffUL) {
        PyErr_SetString(PyExc_OverflowError, "record_count is a u32");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[2]);
    if (first == -1 && PyErr_Occurred()) return NULL;
    long long max = PyLong_AsLongLong(args[3]);
    if (max == -1 && PyErr_Occurred()) return NULL;
    int timestamps = PyObject_IsTrue(args[4]);
    if (timestamps < 0) return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    char msg[MSG_SIZE];
    msg[0] = 0;
    walk w = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len, msg, -1, -1};
    if (view.len >= RELEASE_GIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        check_payload(&w, (uint32_t)count);
        Py_END_ALLOW_THREADS
    } else {
        check_payload(&w, (uint32_t)count);
    }
    PyBuffer_Release(&view);
    if (!msg[0] && timestamps) {
        if (first != w.first_ts) {
            snprintf(msg, MSG_SIZE, "header first_timestamp_ms %lld is not the first record's timestamp %lld", first,
                     w.first_ts);
        } else if (max != w.max_ts) {
            snprintf(msg, MSG_SIZE, "header max_timestamp_ms %lld is not the greatest record timestamp %lld", max,
                     w.max_ts);
        }
    }
    if (!msg[0]) Py_RETURN_NONE;
    return PyUnicode_FromString(msg);
}


/* ---- Kafka's murmur2 ------------------------------------------------------------------- */

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


/* ---- decode ----------------------------------------------------------------------------- */

/* The msgpack item at *pp, which check_payload() already walked: only the forms it accepts occur. */
static long long read_int(const uint8_t **pp) {
    const uint8_t *p = *pp;
    uint8_t b = *p;
    if (b <= 0x7f) { *pp = p + 1; return b; }
    if (b >= 0xe0) { *pp = p + 1; return (int8_t)b; }
    switch (b) {
        case 0xcc: *pp = p + 2; return p[1];
        case 0xcd: *pp = p + 3; return be16(p + 1);
        case 0xce: *pp = p + 5; return be32(p + 1);
        case 0xcf: *pp = p + 9; return (long long)be64(p + 1);
        case 0xd0: *pp = p + 2; return (int8_t)p[1];
        case 0xd1: *pp = p + 3; return (int16_t)be16(p + 1);
        case 0xd2: *pp = p + 5; return (int32_t)be32(p + 1);
        default: *pp = p + 9; return (long long)(int64_t)be64(p + 1); /* 0xd3 */
    }
}

static uint32_t read_array(const uint8_t **pp) {
    const uint8_t *p = *pp;
    if (*p == 0xdc) { *pp = p + 3; return be16(p + 1); }
    if (*p == 0xdd) { *pp = p + 5; return be32(p + 1); }
    *pp = p + 1;
    return *p & 0x0f;
}

/* bin or nil as bytes or None (a new reference; NULL on memory error). */
static PyObject *read_bin(const uint8_t **pp) {
    const uint8_t *p = *pp;
    if (*p == 0xc0) { *pp = p + 1; Py_RETURN_NONE; }
    int hdr = bin_width(*p);
    Py_ssize_t size = sized_length(p, hdr);
    *pp = p + hdr + size;
    return PyBytes_FromStringAndSize((const char *)p + hdr, size);
}

static PyObject *read_headers(const uint8_t **pp) {
    if (**pp == 0xc0) { *pp += 1; Py_RETURN_NONE; }
    uint32_t n = read_array(pp);
    PyObject *headers = PyTuple_New(n);
    if (headers == NULL) return NULL;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *p = *pp;
        read_array(&p); /* the pair's [name, value] (check_payload() accepts any array form of 2) */
        int hdr = str_width(*p);
        Py_ssize_t size = sized_length(p, hdr);
        PyObject *name = PyUnicode_DecodeUTF8((const char *)p + hdr, size, NULL);
        if (name == NULL) { Py_DECREF(headers); return NULL; }
        p += hdr + size;
        PyObject *value = read_bin(&p);
        if (value == NULL) { Py_DECREF(name); Py_DECREF(headers); return NULL; }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) { Py_DECREF(name); Py_DECREF(value); Py_DECREF(headers); return NULL; }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyTuple_SET_ITEM(headers, j, pair);
        *pp = p;
    }
    return headers;
}

/* Skip one record that check_payload() accepted. */
static void skip_record(const uint8_t **pp) {
    read_array(pp);
    read_int(pp);
    PyObject *dummy;
    for (int k = 0; k < 2; k++) { /* key and value */
        const uint8_t *p = *pp;
        int hdr = bin_width(*p); /* 0: nil */
        *pp = hdr ? p + hdr + sized_length(p, hdr) : p + 1;
    }
    if (**pp == 0xc0) { *pp += 1; return; }
    dummy = read_headers(pp); /* rare (a fetch starting inside a batch with headers); exact */
    Py_XDECREF(dummy);
}

/* How many items decode() gives a record_type tuple: 7, or its number of NamedTuple fields when it
 * has more (those after the seventh are None); -1 with an exception set. */
static Py_ssize_t record_width(PyObject *type) {
    PyObject *fields = PyObject_GetAttrString(type, "_fields");
    if (fields == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear();
        return 7;
    }
    Py_ssize_t n = PyTuple_Check(fields) ? PyTuple_GET_SIZE(fields) : 7;
    Py_DECREF(fields);
    return n > 7 ? n : 7;
}

/*
 * decode(payload, record_count, record_type, topic, partition, base_offset, skip, append_time_ms)
 *   -> list[record_type] | str
 *
 * The records of a stored payload as record_type(topic, partition, offset, timestamp_ms, key,
 * value, headers) tuples (record_type is a tuple subclass whose first seven fields are those of
 * logsvc_wire.types.Record; a NamedTuple of more fields gets None in the others, so a wider record
 * type, such as a sink's that carries the decoded value too, is built in the same pass), from the
 * skip-th record on (offsets base_offset + skip, ...). append_time_ms >= 0 stands for
 * every record's timestamp (a LogAppendTime batch). A payload that is not exactly record_count
 * records of the specified types gives check()'s message instead (the header's timestamps are
 * not compared: LogAppendTime rewrites them).
 */
static PyObject *decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "decode() takes 8 arguments");
        return NULL;
    }
    unsigned long count = PyLong_AsUnsignedLong(args[1]);
    if (count == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    if (count > 0xffffffffUL) {
        PyErr_SetString(PyExc_OverflowError, "record_count is a u32");
        return NULL;
    }
    if (!PyType_Check(args[2]) || !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "record_type must be a tuple subclass");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[2];
    Py_ssize_t width = record_width(args[2]);
    if (width < 0) return NULL;
    PyObject *topic = args[3], *partition = args[4];
    long long base = PyLong_AsLongLong(args[5]);
    if (base == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t skip = PyLong_AsSsize_t(args[6]);
    if (skip == -1 && PyErr_Occurred()) return NULL;
    long long append_ts = PyLong_AsLongLong(args[7]);
    if (append_ts == -1 && PyErr_Occurred()) return NULL;

    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    char msg[MSG_SIZE];
    msg[0] = 0;
    walk w = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len, msg, -1, -1};
    check_payload(&w, (uint32_t)count);
    if (msg[0]) {
        PyBuffer_Release(&view);
        return PyUnicode_FromString(msg);
    }
    PyObject *ts_obj = NULL; /* shared between records of one timestamp */
    long long last_ts = -1;
    if (skip < 0) skip = 0;
    if ((unsigned long)skip > count) skip = (Py_ssize_t)count;
    PyObject *out = PyList_New((Py_ssize_t)count - skip);
    if (out == NULL) goto fail;
    const uint8_t *p = (const uint8_t *)view.buf;
    read_array(&p);
    for (Py_ssize_t i = 0; i < skip; i++) skip_record(&p);
    if (append_ts >= 0) {
        ts_obj = PyLong_FromLongLong(append_ts);
        if (ts_obj == NULL) goto fail;
        last_ts = append_ts;
    }
    for (Py_ssize_t i = skip; i < (Py_ssize_t)count; i++) {
        read_array(&p);
        long long ts = read_int(&p);
        if (append_ts >= 0) ts = append_ts;
        if (ts != last_ts || ts_obj == NULL) {
            Py_XDECREF(ts_obj);
            ts_obj = PyLong_FromLongLong(ts);
            if (ts_obj == NULL) goto fail;
            last_ts = ts;
        }
        PyObject *key = read_bin(&p);
        if (key == NULL) goto fail;
        PyObject *value = read_bin(&p);
        if (value == NULL) { Py_DECREF(key); goto fail; }
        PyObject *headers = read_headers(&p);
        if (headers == NULL) { Py_DECREF(key); Py_DECREF(value); goto fail; }
        PyObject *offset = PyLong_FromLongLong(base + i);
        if (offset == NULL) { Py_DECREF(key); Py_DECREF(value); Py_DECREF(headers); goto fail; }
        PyObject *rec = type->tp_alloc(type, width);
        if (rec == NULL) {
            Py_DECREF(key); Py_DECREF(value); Py_DECREF(headers); Py_DECREF(offset);
            goto fail;
        }
        Py_INCREF(topic);
        PyTuple_SET_ITEM(rec, 0, topic);
        Py_INCREF(partition);
        PyTuple_SET_ITEM(rec, 1, partition);
        PyTuple_SET_ITEM(rec, 2, offset);
        Py_INCREF(ts_obj);
        PyTuple_SET_ITEM(rec, 3, ts_obj);
        PyTuple_SET_ITEM(rec, 4, key);
        PyTuple_SET_ITEM(rec, 5, value);
        PyTuple_SET_ITEM(rec, 6, headers);
        for (Py_ssize_t k = 7; k < width; k++) {
            Py_INCREF(Py_None);
            PyTuple_SET_ITEM(rec, k, Py_None);
        }
        /* Without headers a record holds only str, int, bytes and None, so it can be part of no
         * reference cycle: untracked now, the garbage collector never scans it (it would untrack
         * such a tuple itself, at its first collection, after scanning it once). */
        if (headers == Py_None) PyObject_GC_UnTrack(rec);
        PyList_SET_ITEM(out, i - skip, rec);
    }
    Py_XDECREF(ts_obj);
    PyBuffer_Release(&view);
    return out;
fail:
    Py_XDECREF(ts_obj);
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

/* ---- encode ----------------------------------------------------------------------------- */

/* A growable byte buffer for encode_bulk's per-partition chunks. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} chunk;

static int reserve(chunk *c, Py_ssize_t more) {
    if (c->len + more <= c->cap) return 0;
    Py_ssize_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + more) cap *= 2;
    char *data = PyMem_Realloc(c->data, cap);
    if (data == NULL) { PyErr_NoMemory(); return -1; }
    c->data = data;
    c->cap = cap;
    return 0;
}

/* msgpack's shortest form of a non-negative int, as msgpack-python's Packer writes it. */
static Py_ssize_t put_uint(uint8_t *o, unsigned long long v) {
    if (v < 0x80) { o[0] = (uint8_t)v; return 1; }
    if (v < 0x100) { o[0] = 0xcc; o[1] = (uint8_t)v; return 2; }
    if (v < 0x10000) { o[0] = 0xcd; o[1] = (uint8_t)(v >> 8); o[2] = (uint8_t)v; return 3; }
    if (v < 0x100000000ULL) {
        o[0] = 0xce;
        for (int k = 0; k < 4; k++) o[1 + k] = (uint8_t)(v >> (24 - 8 * k));
        return 5;
    }
    o[0] = 0xcf;
    for (int k = 0; k < 8; k++) o[1 + k] = (uint8_t)(v >> (56 - 8 * k));
    return 9;
}

/* bin header (or nil when data is NULL) of msgpack-python's Packer(use_bin_type=True). */
static Py_ssize_t put_bin_header(uint8_t *o, const char *data, Py_ssize_t n) {
    if (data == NULL) { o[0] = 0xc0; return 1; }
    if (n < 0x100) { o[0] = 0xc4; o[1] = (uint8_t)n; return 2; }
    if (n < 0x10000) { o[0] = 0xc5; o[1] = (uint8_t)(n >> 8); o[2] = (uint8_t)n; return 3; }
    o[0] = 0xc6;
    for (int k = 0; k < 4; k++) o[1 + k] = (uint8_t)((size_t)n >> (24 - 8 * k));
    return 5;
}

/* key or value: exact bytes -> 1 (data, n set), None -> 1 (data NULL), anything else -> 0. */
static int bytes_or_none(PyObject *o, const char **data, Py_ssize_t *n) {
    if (o == Py_None) { *data = NULL; *n = 0; return 1; }
    if (PyBytes_CheckExact(o)) { *data = PyBytes_AS_STRING(o); *n = PyBytes_GET_SIZE(o); return 1; }
    return 0;
}

/* The most bytes one record takes beside its key, value and packed headers:
 * fixarray (1) + uint64 timestamp (9) + two bin32 headers (5 + 5). */
#define RECORD_FRAME 20

static void put_record(uint8_t *o, Py_ssize_t *len, unsigned long long ts, const char *k, Py_ssize_t kn,
                       const char *v, Py_ssize_t vn, const char *h, Py_ssize_t hn) {
    Py_ssize_t at = *len;
    o[at++] = 0x94;
    at += put_uint(o + at, ts);
    at += put_bin_header(o + at, k, kn);
    if (k != NULL) { memcpy(o + at, k, kn); at += kn; }
    at += put_bin_header(o + at, v, vn);
    if (v != NULL) { memcpy(o + at, v, vn); at += vn; }
    memcpy(o + at, h, hn);
    at += hn;
    *len = at;
}

static int timestamp_arg(PyObject *o, unsigned long long *ts) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v > MAX_TIMESTAMP_MS) {
        PyErr_Format(PyExc_ValueError, "timestamp %lld is out of range: 0 to %lld ms", v, MAX_TIMESTAMP_MS);
        return -1;
    }
    *ts = (unsigned long long)v;
    return 0;
}

/*
 * append_record(buffer: bytearray, timestamp_ms, key, value, packed_headers) -> bool
 *
 * Append [timestamp_ms, key, value, headers] to buffer as msgpack, packed_headers being the
 * headers already packed (b"\xc0" for none). False, and nothing appended, when key or value is
 * neither bytes nor None (the caller converts it and calls again).
 */
static PyObject *append_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "append_record() takes 5 arguments");
        return NULL;
    }
    PyObject *buffer = args[0];
    if (!PyByteArray_CheckExact(buffer)) {
        PyErr_SetString(PyExc_TypeError, "append_record() needs a bytearray");
        return NULL;
    }
    unsigned long long ts;
    if (timestamp_arg(args[1], &ts) < 0) return NULL;
    const char *k, *v;
    Py_ssize_t kn, vn;
    if (!bytes_or_none(args[2], &k, &kn) || !bytes_or_none(args[3], &v, &vn)) Py_RETURN_FALSE;
    if (!PyBytes_CheckExact(args[4])) {
        PyErr_SetString(PyExc_TypeError, "packed_headers must be bytes");
        return NULL;
    }
    const char *h = PyBytes_AS_STRING(args[4]);
    Py_ssize_t hn = PyBytes_GET_SIZE(args[4]);
    Py_ssize_t len = PyByteArray_GET_SIZE(buffer);
    if (PyByteArray_Resize(buffer, len + RECORD_FRAME + kn + vn + hn) < 0) return NULL;
    Py_ssize_t end = len;
    put_record((uint8_t *)PyByteArray_AS_STRING(buffer), &end, ts, k, kn, v, vn, h, hn);
    if (PyByteArray_Resize(buffer, end) < 0) return NULL; /* shrinking never fails or moves */
    Py_RETURN_TRUE;
}

/*
 * encode_bulk(keys | None, values, timestamp_ms, packed_headers, overhead, partitions, partition)
 *   -> tuple | None
 *
 * One send_many call's records, encoded and partitioned in one pass. Record i is
 * [timestamp_ms, keys[i], values[i], headers] (keys None: no keys); it goes to ``partition`` when
 * that is >= 0, else to murmur2(key) % partitions, else (no key) to the sticky slot, numbered
 * ``partitions``. Returns (chunks, ends, bounds, slots, ranks):
 *   chunks[s]  bytes: the msgpack of slot s's records, one after another (None: no record);
 *   ends[s]    bytes of native uint32: where each of those records ends in chunks[s];
 *   bounds[s]  bytes of native uint64: the running sum of the records' size bounds, each
 *              overhead + len(key) + len(value) (the bound send() counts per record);
 *   slots      bytes of native uint32: each record's slot, in call order;
 *   ranks      bytes of native uint32: each record's index among its slot's records.
 * None when some key or value is neither bytes nor None (the caller converts and calls again).
 */
static PyObject *encode_bulk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "encode_bulk() takes 7 arguments");
        return NULL;
    }
    PyObject *keys = args[0], *values = args[1];
    unsigned long long ts;
    if (timestamp_arg(args[2], &ts) < 0) return NULL;
    if (!PyBytes_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "packed_headers must be bytes");
        return NULL;
    }
    const char *h = PyBytes_AS_STRING(args[3]);
    Py_ssize_t hn = PyBytes_GET_SIZE(args[3]);
    Py_ssize_t overhead = PyLong_AsSsize_t(args[4]);
    if (overhead == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t nparts = PyLong_AsSsize_t(args[5]);
    if (nparts == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t fixed = PyLong_AsSsize_t(args[6]);
    if (fixed == -1 && PyErr_Occurred()) return NULL;
    if (nparts < 1 || nparts > 0xfffffff || fixed >= nparts) {
        PyErr_Format(PyExc_ValueError, "encode_bulk(): partition %zd of %zd partitions", fixed, nparts);
        return NULL;
    }
    /* every pointer freed at the end starts NULL, so each failure can jump there */
    PyObject *result = NULL, *kseq = NULL, *slots_b = NULL, *ranks_b = NULL;
    Py_ssize_t *bytes_of = NULL, *count_of = NULL;
    chunk *chunks = NULL;
    uint32_t **ends = NULL;
    uint64_t **bounds = NULL, *bound_of = NULL;
    Py_ssize_t nslots = nparts + 1;
    PyObject *vseq = PySequence_Fast(values, "values must be a sequence");
    if (vseq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(vseq);
    if (keys != Py_None) {
        kseq = PySequence_Fast(keys, "keys must be a sequence");
        if (kseq == NULL) goto done;
        if (PySequence_Fast_GET_SIZE(kseq) != n) {
            PyErr_SetString(PyExc_ValueError, "encode_bulk(): as many keys as values");
            goto done;
        }
    }
    if (n > 0xffffffffLL) {
        PyErr_SetString(PyExc_OverflowError, "encode_bulk(): too many records");
        goto done;
    }
    PyObject **vitems = PySequence_Fast_ITEMS(vseq);
    PyObject **kitems = kseq ? PySequence_Fast_ITEMS(kseq) : NULL;
    /* first pass: types, slots and sizes, so each chunk is allocated once */
    slots_b = PyBytes_FromStringAndSize(NULL, n * 4);
    ranks_b = PyBytes_FromStringAndSize(NULL, n * 4);
    bytes_of = PyMem_Calloc(nslots, sizeof(Py_ssize_t));
    count_of = PyMem_Calloc(nslots, sizeof(Py_ssize_t));
    chunks = PyMem_Calloc(nslots, sizeof(chunk));
    ends = PyMem_Calloc(nslots, sizeof(uint32_t *));
    bounds = PyMem_Calloc(nslots, sizeof(uint64_t *));
    bound_of = PyMem_Calloc(nslots, sizeof(uint64_t));
    if (!slots_b || !ranks_b || !bytes_of || !count_of || !chunks || !ends || !bounds || !bound_of) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    uint32_t *slots = (uint32_t *)PyBytes_AS_STRING(slots_b);
    uint32_t *ranks = (uint32_t *)PyBytes_AS_STRING(ranks_b);
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *k, *v;
        Py_ssize_t kn, vn;
        if (!bytes_or_none(vitems[i], &v, &vn) || (kitems && !bytes_or_none(kitems[i], &k, &kn))) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        if (!kitems) { k = NULL; kn = 0; }
        Py_ssize_t s;
        if (fixed >= 0) s = fixed;
        else if (k != NULL) s = (Py_ssize_t)((kafka_murmur2((const unsigned char *)k, kn) & 0x7fffffffU) % nparts);
        else s = nparts;
        slots[i] = (uint32_t)s;
        ranks[i] = (uint32_t)count_of[s]++;
        bytes_of[s] += RECORD_FRAME + kn + vn + hn;
    }
    for (Py_ssize_t s = 0; s < nslots; s++) {
        if (!count_of[s]) continue;
        if (reserve(&chunks[s], bytes_of[s]) < 0) goto done;
        ends[s] = PyMem_Malloc(count_of[s] * sizeof(uint32_t));
        bounds[s] = PyMem_Malloc(count_of[s] * sizeof(uint64_t));
        if (ends[s] == NULL || bounds[s] == NULL) { PyErr_NoMemory(); goto done; }
        count_of[s] = 0;
    }
    /* second pass: encode */
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *k = NULL, *v;
        Py_ssize_t kn = 0, vn;
        bytes_or_none(vitems[i], &v, &vn);
        if (kitems) bytes_or_none(kitems[i], &k, &kn);
        chunk *c = &chunks[slots[i]];
        put_record((uint8_t *)c->data, &c->len, ts, k, kn, v, vn, h, hn);
        if (c->len > 0xffffffffLL) {
            PyErr_SetString(PyExc_OverflowError, "encode_bulk(): more than 4 GiB of records for one partition");
            goto done;
        }
        uint32_t s = slots[i];
        bound_of[s] += (uint64_t)(overhead + kn + vn);
        bounds[s][count_of[s]] = bound_of[s];
        ends[s][count_of[s]++] = (uint32_t)c->len;
    }
    PyObject *chunk_list = PyList_New(nslots), *end_list = PyList_New(nslots), *bound_list = PyList_New(nslots);
    if (!chunk_list || !end_list || !bound_list) goto lists_done;
    for (Py_ssize_t s = 0; s < nslots; s++) {
        PyObject *c = Py_None, *e = Py_None, *b = Py_None;
        if (count_of[s]) {
            c = PyBytes_FromStringAndSize(chunks[s].data, chunks[s].len);
            e = PyBytes_FromStringAndSize((const char *)ends[s], count_of[s] * sizeof(uint32_t));
            b = PyBytes_FromStringAndSize((const char *)bounds[s], count_of[s] * sizeof(uint64_t));
            if (!c || !e || !b) {
                Py_XDECREF(c); Py_XDECREF(e); Py_XDECREF(b);
                goto lists_done;
            }
        } else {
            Py_INCREF(c);
            Py_INCREF(e);
            Py_INCREF(b);
        }
        PyList_SET_ITEM(chunk_list, s, c);
        PyList_SET_ITEM(end_list, s, e);
        PyList_SET_ITEM(bound_list, s, b);
    }
    result = PyTuple_Pack(5, chunk_list, end_list, bound_list, slots_b, ranks_b);
lists_done:
    Py_XDECREF(chunk_list);
    Py_XDECREF(end_list);
    Py_XDECREF(bound_list);
done:
    if (chunks) for (Py_ssize_t s = 0; s < nslots; s++) PyMem_Free(chunks[s].data);
    if (ends) for (Py_ssize_t s = 0; s < nslots; s++) PyMem_Free(ends[s]);
    if (bounds) for (Py_ssize_t s = 0; s < nslots; s++) PyMem_Free(bounds[s]);
    PyMem_Free(chunks);
    PyMem_Free(ends);
    PyMem_Free(bounds);
    PyMem_Free(bound_of);
    PyMem_Free(bytes_of);
    PyMem_Free(count_of);
    Py_XDECREF(slots_b);
    Py_XDECREF(ranks_b);
    Py_XDECREF(kseq);
    Py_DECREF(vseq);
    return result;
}

/*
 * payload(records: bytes-like, record_count) -> (payload: bytes, first_timestamp_ms, max_timestamp_ms)
 *
 * A batch's msgpack payload from its records as append_record/encode_bulk wrote them one after
 * another: the array header of record_count in msgpack's shortest form, then the records; with
 * the first record's and the greatest timestamp (for the batch header).
 */
static PyObject *payload(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "payload() takes 2 arguments");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[1]);
    if (count == -1 && PyErr_Occurred()) return NULL;
    if (count < 1 || count > 0xffffffffLL) {
        PyErr_Format(PyExc_ValueError, "payload(): record_count %zd", count);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    uint8_t hdr[5];
    Py_ssize_t hn;
    if (count < 16) { hdr[0] = 0x90 | (uint8_t)count; hn = 1; }
    else if (count < 0x10000) { hdr[0] = 0xdc; hdr[1] = (uint8_t)(count >> 8); hdr[2] = (uint8_t)count; hn = 3; }
    else {
        hdr[0] = 0xdd;
        for (int k = 0; k < 4; k++) hdr[1 + k] = (uint8_t)((size_t)count >> (24 - 8 * k));
        hn = 5;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, hn + view.len);
    if (out == NULL) { PyBuffer_Release(&view); return NULL; }
    char *o = PyBytes_AS_STRING(out);
    memcpy(o, hdr, hn);
    memcpy(o + hn, view.buf, view.len);
    PyBuffer_Release(&view);
    /* the timestamps: each record starts 0x94 <timestamp>; walk the records we wrote */
    char msg[MSG_SIZE];
    msg[0] = 0;
    walk w = {(const uint8_t *)o, (const uint8_t *)o + hn + view.len, msg, -1, -1};
    check_payload(&w, (uint32_t)count);
    if (msg[0]) {
        Py_DECREF(out);
        PyErr_Format(PyExc_ValueError, "payload(): the records are not the specified ones: %s", msg);
        return NULL;
    }
    PyObject *result = Py_BuildValue("(NLL)", out, w.first_ts, w.max_ts);
    return result;
}

/* ---- the producer's send() ------------------------------------------------------------ */

/* Where the named attributes of a __slots__ class live in its instances, so the fast lane reads
 * and writes them as the slot descriptors would, without a lookup per access. */
#define SLOT(o, offset) (*(PyObject **)((char *)(o) + (offset)))
#define MAX_SLOTS 4
typedef struct {
    PyTypeObject *type; /* a strong reference once resolved; NULL before */
    Py_ssize_t offset[MAX_SLOTS];
} slots;

/* 1 when every name is a writable object slot of type (offsets filled), 0 when one is not. */
static int resolve_slots(slots *c, PyTypeObject *type, PyObject *const *names, int n) {
    if (c->type == type) return 1;
    for (int i = 0; i < n; i++) {
        PyObject *d = _PyType_Lookup(type, names[i]); /* borrowed */
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) return 0;
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return 0;
        c->offset[i] = m->offset;
    }
    Py_INCREF(type);
    Py_XSETREF(c->type, type);
    return 1;
}

/* The int in slot offset of o; -1 when unset or not a non-negative int (no error set). */
static long long slot_int(PyObject *o, Py_ssize_t offset) {
    PyObject *v = SLOT(o, offset);
    if (v == NULL || !PyLong_CheckExact(v)) return -1;
    long long r = PyLong_AsLongLong(v);
    if (r == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    return r;
}

/* Set slot offset of o to value (a new reference, stolen). */
static void set_slot(PyObject *o, Py_ssize_t offset, PyObject *value) {
    PyObject *old = SLOT(o, offset);
    SLOT(o, offset) = value;
    Py_XDECREF(old);
}

/*
 * FastAppend(accumulator, future_type, overhead): a callable standing for accumulator.append (Producer.send)
 * that queues the common record — send(topic, value[, key]) with bytes or None, no partition,
 * headers or timestamp, for a topic already known, fitting the open batch of its partition and
 * the buffer — in one C call, doing exactly what Accumulator.append does for it under the
 * accumulator's lock. Every other call, or a record that needs a new batch, buffer space or a
 * conversion, goes to accumulator.append itself (the same arguments), so there is one definition
 * of the rules and this is only its fast lane; overhead is the size bound Accumulator.append counts
 * for a record beside its key and value (RECORD_OVERHEAD). It touches the accumulator only through what
 * Accumulator.append uses: _topics, lock, buffered, max_buffer_bytes and _batch_limit (both read
 * once: they are set in __init__ only); the topic's partitions, sticky and open slots; the
 * batch's buffer, count and nbytes slots; and it makes the future as future_type(batch, index)
 * would (its two slots, _batch and _index). Slots are read and written as their descriptors do,
 * at offsets looked up once per class.
 */
enum { T_PARTITIONS, T_STICKY, T_OPEN };
enum { B_BUFFER, B_COUNT, B_NBYTES };
enum { F_BATCH, F_INDEX };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *acc;
    PyObject *fallback;    /* acc.append */
    PyObject *future_type;
    PyObject *acquire;     /* acc.lock.acquire */
    PyObject *release;     /* acc.lock.release */
    PyObject *topics;      /* acc._topics (a dict, kept for the accumulator's life) */
    long long max_buffer;  /* acc.max_buffer_bytes */
    long long limit;       /* acc._batch_limit */
    long long overhead;    /* a record's size bound beside its key and value (RECORD_OVERHEAD) */
    slots topic_slots, batch_slots, future_slots;
} FastAppend;

static PyObject *s_partitions, *s_sticky, *s_open, *s_buffered, *s_nbytes, *s_count, *s_buffer, *s_batch,
    *s_index;

/* 1: queued (*future set); 0: not the fast lane's record (nothing changed); -1: error. */
static int fast_append(FastAppend *self, PyObject *topic, PyObject *value, PyObject *key, PyObject **future) {
    const char *k, *v;
    Py_ssize_t kn, vn;
    if (!bytes_or_none(value, &v, &vn) || !bytes_or_none(key, &k, &kn)) return 0;
    PyObject *t = PyDict_GetItemWithError(self->topics, topic); /* borrowed */
    if (t == NULL) return PyErr_Occurred() ? -1 : 0;
    PyObject *const topic_names[] = {s_partitions, s_sticky, s_open};
    if (!resolve_slots(&self->topic_slots, Py_TYPE(t), topic_names, 3)) return 0;
    Py_ssize_t *to = self->topic_slots.offset;
    long long partitions = slot_int(t, to[T_PARTITIONS]);
    if (partitions < 1) return 0;
    long long partition;
    if (k != NULL) {
        partition = (long long)((kafka_murmur2((const unsigned char *)k, kn) & 0x7fffffffU) % (uint64_t)partitions);
    } else {
        partition = slot_int(t, to[T_STICKY]);
        if (partition < 0) return 0;
    }
    long long size = vn + kn + self->overhead; /* as Accumulator.append counts a record */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long long ts = (unsigned long long)now.tv_sec * 1000ULL + (unsigned long long)now.tv_nsec / 1000000ULL;

    Py_INCREF(t);
    int result = 0;
    PyObject *held = NULL; /* the batch, held while it is written */
    PyObject *locked = PyObject_CallNoArgs(self->acquire);
    if (locked == NULL) { Py_DECREF(t); return -1; }
    Py_DECREF(locked);
    /* under the lock from here until the release below: nothing here calls Python code */
    PyObject *open = SLOT(t, to[T_OPEN]); /* read under the lock, as append does (abort replaces it) */
    if (open == NULL || !PyList_CheckExact(open) || partition >= PyList_GET_SIZE(open)) goto unlock;
    PyObject *bufferedobj = PyObject_GetAttr(self->acc, s_buffered);
    if (bufferedobj == NULL) { result = -1; goto unlock; }
    long long buffered = PyLong_AsLongLong(bufferedobj);
    Py_DECREF(bufferedobj);
    if (buffered == -1 && PyErr_Occurred()) { result = -1; goto unlock; }
    if (buffered + size > self->max_buffer) goto unlock; /* append waits for space */
    PyObject *b = PyList_GET_ITEM(open, partition);      /* borrowed: the list keeps it */
    if (b == Py_None) goto unlock;                       /* append opens a batch */
    Py_INCREF(b);
    held = b; /* the allocations below may run the garbage collector */
    PyObject *const batch_names[] = {s_buffer, s_count, s_nbytes};
    if (!resolve_slots(&self->batch_slots, Py_TYPE(b), batch_names, 3)) goto unlock;
    Py_ssize_t *bo = self->batch_slots.offset;
    long long nbytes = slot_int(b, bo[B_NBYTES]);
    long long count = slot_int(b, bo[B_COUNT]);
    PyObject *buffer = SLOT(b, bo[B_BUFFER]);
    if (nbytes < 0 || count < 0 || buffer == NULL || !PyByteArray_CheckExact(buffer)) goto unlock;
    if (nbytes + size > self->limit) goto unlock; /* append rolls the batch */
    PyTypeObject *ft = (PyTypeObject *)self->future_type;
    PyObject *const future_names[] = {s_batch, s_index};
    if (!resolve_slots(&self->future_slots, ft, future_names, 2)) goto unlock;
    /* everything checked: the appends below only fail when memory runs out */
    PyObject *index = PyLong_FromLongLong(count);
    PyObject *new_count = PyLong_FromLongLong(count + 1);
    PyObject *new_nbytes = PyLong_FromLongLong(nbytes + size);
    PyObject *new_buffered = PyLong_FromLongLong(buffered + size);
    PyObject *f = ft->tp_alloc(ft, 0);
    Py_ssize_t len = PyByteArray_GET_SIZE(buffer);
    if (!index || !new_count || !new_nbytes || !new_buffered || !f ||
        PyByteArray_Resize(buffer, len + RECORD_FRAME + kn + vn + 1) < 0) {
        Py_XDECREF(index); Py_XDECREF(new_count); Py_XDECREF(new_nbytes); Py_XDECREF(new_buffered); Py_XDECREF(f);
        result = -1;
        goto unlock;
    }
    Py_ssize_t end = len;
    put_record((uint8_t *)PyByteArray_AS_STRING(buffer), &end, ts, k, kn, v, vn, "\xc0", 1);
    PyByteArray_Resize(buffer, end); /* shrinking: never fails */
    set_slot(b, bo[B_COUNT], new_count);
    set_slot(b, bo[B_NBYTES], new_nbytes);
    if (PyObject_SetAttr(self->acc, s_buffered, new_buffered) < 0) { /* not expected: an instance attribute */
        Py_DECREF(new_buffered); Py_DECREF(index); Py_DECREF(f);
        result = -1;
        goto unlock;
    }
    Py_DECREF(new_buffered);
    Py_INCREF(b);
    set_slot(f, self->future_slots.offset[F_BATCH], b);
    set_slot(f, self->future_slots.offset[F_INDEX], index);
    *future = f;
    result = 1;
unlock:;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *released = PyObject_CallNoArgs(self->release);
    if (released == NULL) {
        Py_XDECREF(exc_type); Py_XDECREF(exc_value); Py_XDECREF(exc_tb);
        Py_CLEAR(*future);
        result = -1;
    } else {
        Py_DECREF(released);
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    Py_XDECREF(held);
    Py_DECREF(t);
    return result;
}

static PyObject *fast_append_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    FastAppend *self = (FastAppend *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && (nargs == 2 || nargs == 3)) {
        PyObject *future = NULL;
        int r = fast_append(self, args[0], args[1], nargs == 3 ? args[2] : Py_None, &future);
        if (r < 0) return NULL;
        if (r > 0) return future;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *fast_append_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *acc, *future_type;
    long long overhead;
    if (!PyArg_ParseTuple(args, "OO!L:FastAppend", &acc, &PyType_Type, &future_type, &overhead)) return NULL;
    FastAppend *self = (FastAppend *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = fast_append_call;
    self->overhead = overhead;
    Py_INCREF(acc);
    self->acc = acc;
    Py_INCREF(future_type);
    self->future_type = future_type;
    PyObject *lock = PyObject_GetAttrString(acc, "lock");
    self->fallback = PyObject_GetAttrString(acc, "append");
    self->topics = PyObject_GetAttrString(acc, "_topics");
    if (lock == NULL || self->fallback == NULL || self->topics == NULL) goto fail;
    if (!PyDict_CheckExact(self->topics)) {
        PyErr_SetString(PyExc_TypeError, "FastAppend: accumulator._topics must be a dict");
        goto fail;
    }
    self->acquire = PyObject_GetAttrString(lock, "acquire");
    self->release = PyObject_GetAttrString(lock, "release");
    Py_DECREF(lock);
    lock = NULL;
    if (self->acquire == NULL || self->release == NULL) goto fail;
    PyObject *max_buffer = PyObject_GetAttrString(acc, "max_buffer_bytes");
    PyObject *limit = PyObject_GetAttrString(acc, "_batch_limit");
    self->max_buffer = max_buffer ? PyLong_AsLongLong(max_buffer) : -1;
    self->limit = limit ? PyLong_AsLongLong(limit) : -1;
    Py_XDECREF(max_buffer);
    Py_XDECREF(limit);
    if (PyErr_Occurred()) goto fail;
    return (PyObject *)self;
fail:
    Py_XDECREF(lock);
    Py_DECREF(self);
    return NULL;
}

static int fast_append_traverse(FastAppend *self, visitproc visit, void *arg) {
    Py_VISIT(self->acc);
    Py_VISIT(self->fallback);
    Py_VISIT(self->future_type);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->topics);
    Py_VISIT(self->topic_slots.type);
    Py_VISIT(self->batch_slots.type);
    Py_VISIT(self->future_slots.type);
    return 0;
}

static int fast_append_clear(FastAppend *self) {
    Py_CLEAR(self->acc);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->future_type);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->topics);
    Py_CLEAR(self->topic_slots.type);
    Py_CLEAR(self->batch_slots.type);
    Py_CLEAR(self->future_slots.type);
    return 0;
}

static void fast_append_dealloc(FastAppend *self) {
    PyObject_GC_UnTrack(self);
    fast_append_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject FastAppendType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logsvc_wire._codec.FastAppend",
    .tp_basicsize = sizeof(FastAppend),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "FastAppend(accumulator, future_type, overhead): accumulator.append with the common record in C.",
    .tp_new = fast_append_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(FastAppend, vectorcall),
    .tp_traverse = (traverseproc)fast_append_traverse,
    .tp_clear = (inquiry)fast_append_clear,
    .tp_dealloc = (destructor)fast_append_dealloc,
};

static PyMethodDef methods[] = {
    {"check", (PyCFunction)(void (*)(void))check, METH_FASTCALL,
     "check(payload, record_count, first_timestamp_ms, max_timestamp_ms, timestamps) -> None, or what is wrong."},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(payload, record_count, record_type, topic, partition, base_offset, skip, append_time_ms)"
     " -> list of records, or what is wrong."},
    {"append_record", (PyCFunction)(void (*)(void))append_record, METH_FASTCALL,
     "append_record(buffer, timestamp_ms, key, value, packed_headers) -> False when key or value is not bytes/None."},
    {"encode_bulk", (PyCFunction)(void (*)(void))encode_bulk, METH_FASTCALL,
     "encode_bulk(keys, values, timestamp_ms, packed_headers, overhead, partitions, partition)"
     " -> (chunks, ends, bounds, slots, ranks) or None."},
    {"payload", (PyCFunction)(void (*)(void))payload, METH_FASTCALL,
     "payload(records, record_count) -> (payload, first_timestamp_ms, max_timestamp_ms)."},
    {"murmur2_positive", murmur2_positive, METH_O, "murmur2(key) & 0x7fffffff (Kafka's partitioner hash)."},
    {"murmur2", murmur2_signed, METH_O, "Kafka's signed 32-bit murmur2 of key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_codec", NULL, -1, methods};

PyMODINIT_FUNC PyInit__codec(void) {
    struct { PyObject **slot; const char *name; } names[] = {
        {&s_partitions, "partitions"}, {&s_sticky, "sticky"}, {&s_open, "open"}, {&s_buffered, "buffered"},
        {&s_nbytes, "nbytes"}, {&s_count, "count"}, {&s_buffer, "buffer"}, {&s_batch, "_batch"},
        {&s_index, "_index"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL) return NULL;
    }
    if (PyType_Ready(&FastAppendType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&FastAppendType);
    if (PyModule_AddObject(m, "FastAppend", (PyObject *)&FastAppendType) < 0) {
        Py_DECREF(&FastAppendType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
