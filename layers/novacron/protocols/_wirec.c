/*
 * Optional native decoder of Prometheus remote-write protobuf (see wire.py, which is the reference
 * implementation and the fallback when this module is not built).
 *
 * Written from the protobuf wire-format specification. It reads a WriteRequest (or a list of
 * TimeSeries encodings) with the same acceptance rules as the protobuf runtime (upb) applies to
 * the RawWriteRequest / RawTimeSeries / Sample messages of remote_write_pb.py:
 *   - tags are varints of at most 5 bytes and at most UINT32_MAX; field number 0 and wire types
 *     6 and 7 are errors;
 *   - lengths are varints of at most 5 bytes, below 2^31 and within the enclosing message;
 *   - other varints are at most 10 bytes (bits past 64 are dropped, as upb does);
 *   - a field whose wire type does not match its declaration is an unknown field and is skipped;
 *   - unknown groups are skipped (matching end tag required) with upb's nesting limit (100).
 * Only the CPython C API is used (no numpy): columns are returned as bytearrays of little-endian
 * int64 / float64 that Python wraps with numpy.frombuffer.
 *
 * Every read is bounds-checked against the end of the enclosing message. Errors raise ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 100 /* upb's default recursion budget for one top-level message */
#define ERR_LEN 200

typedef struct {
    int64_t *ts;
    double *vals;
    Py_ssize_t n, cap;
    char err[ERR_LEN]; /* set (non-empty) when a read fails */
} Columns;

typedef struct {
    size_t prefix_end; /* end of the leading run of canonical label fields */
    int prefix_ok;     /* every label field is in that run */
    size_t canonical;  /* size of the canonical re-encoding of all label fields */
    int histograms;
} SeriesInfo;

static int
fail(Columns *c, const char *what, size_t at)
{
    if (!c->err[0]) {
        PyOS_snprintf(c->err, ERR_LEN, "%s at byte %zu", what, at);
    }
    return -1;
}

static int
push_sample(Columns *c, int64_t ts, double val)
{
    if (c->n == c->cap) {
        Py_ssize_t cap = c->cap ? c->cap * 2 : 1024;
        int64_t *ts_new = PyMem_Realloc(c->ts, (size_t)cap * sizeof(int64_t));
        if (!ts_new) {
            PyErr_NoMemory();
            return -2;
        }
        c->ts = ts_new;
        double *vals_new = PyMem_Realloc(c->vals, (size_t)cap * sizeof(double));
        if (!vals_new) {
            PyErr_NoMemory();
            return -2;
        }
        c->vals = vals_new;
        c->cap = cap;
    }
    c->ts[c->n] = ts;
    c->vals[c->n] = val;
    c->n++;
    return 0;
}

/* A varint of at most max_bytes bytes at buf[*pos], before end. */
static inline int
read_varint(Columns *c, const uint8_t *buf, size_t end, size_t *pos, int max_bytes, uint64_t *out)
{
    size_t p = *pos;
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= end) {
            return fail(c, "truncated varint", *pos);
        }
        uint8_t b = buf[p++];
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            *pos = p;
            return 0;
        }
    }
    return fail(c, max_bytes == 10 ? "varint longer than 10 bytes" : "tag or length varint longer than 5 bytes",
                *pos);
}

static inline int
read_tag(Columns *c, const uint8_t *buf, size_t end, size_t *pos, uint32_t *field, int *wire_type)
{
    size_t at = *pos;
    uint64_t tag;
    if (at < end && buf[at] < 0x80) { /* the common one-byte tag */
        tag = buf[at];
        *pos = at + 1;
    }
    else {
        if (read_varint(c, buf, end, pos, 5, &tag) < 0) {
            return -1;
        }
        if (tag > UINT32_MAX) {
            return fail(c, "tag larger than 32 bits", at);
        }
    }
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    if (*field == 0) {
        return fail(c, "field number 0", at);
    }
    return 0;
}

/* The length of a length-delimited field; on success *pos is at its first byte. */
static inline int
read_length(Columns *c, const uint8_t *buf, size_t end, size_t *pos, size_t *len)
{
    size_t at = *pos;
    uint64_t v;
    if (at < end && buf[at] < 0x80) {
        v = buf[at];
        *pos = at + 1;
    }
    else if (read_varint(c, buf, end, pos, 5, &v) < 0) {
        return -1;
    }
    if (v > 0x7FFFFFFF) {
        return fail(c, "length of 2 GiB or more", at);
    }
    if (v > end - *pos) {
        if (!c->err[0]) {
            PyOS_snprintf(c->err, ERR_LEN, "length %llu at byte %zu runs past the end (%zu bytes left)",
                          (unsigned long long)v, at, end - *pos);
        }
        return -1;
    }
    *len = (size_t)v;
    return 0;
}

/* Skip the value of a field whose tag was just read; depth is the group nesting budget left. */
static int
skip_field(Columns *c, const uint8_t *buf, size_t end, size_t *pos, uint32_t field, int wire_type, int depth)
{
    size_t at = *pos;
    uint64_t ignored;
    size_t len;
    switch (wire_type) {
    case 0:
        return read_varint(c, buf, end, pos, 10, &ignored);
    case 1:
        if (end - at < 8) {
            return fail(c, "truncated fixed64", at);
        }
        *pos = at + 8;
        return 0;
    case 2:
        if (read_length(c, buf, end, pos, &len) < 0) {
            return -1;
        }
        *pos += len;
        return 0;
    case 3:
        if (depth <= 0) {
            return fail(c, "groups nested too deeply", at);
        }
        for (;;) {
            uint32_t inner;
            int inner_type;
            if (*pos >= end) {
                return fail(c, "unterminated group", at);
            }
            if (read_tag(c, buf, end, pos, &inner, &inner_type) < 0) {
                return -1;
            }
            if (inner_type == 4) {
                if (inner != field) {
                    return fail(c, "end-group tag does not match its start", *pos);
                }
                return 0;
            }
            if (skip_field(c, buf, end, pos, inner, inner_type, depth - 1) < 0) {
                return -1;
            }
        }
    case 4:
        return fail(c, "end-group tag without a group", at);
    case 5:
        if (end - at < 4) {
            return fail(c, "truncated fixed32", at);
        }
        *pos = at + 4;
        return 0;
    default:
        return fail(c, "invalid wire type", at);
    }
}

/* One Sample message in buf[start:end]. */
static int
decode_sample(Columns *c, const uint8_t *buf, size_t start, size_t end)
{
    size_t pos = start;
    double value = 0.0;
    int64_t stamp = 0;
    if (end - start >= 11 && buf[start] == 0x09 && buf[start + 9] == 0x10) {
        /* The layout Prometheus clients write: value (tag 0x09), then timestamp (tag 0x10). */
        uint64_t bits = 0;
        for (int k = 8; k >= 1; k--) {
            bits = (bits << 8) | buf[start + (size_t)k];
        }
        memcpy(&value, &bits, sizeof value);
        pos = start + 10;
        uint64_t v;
        if (read_varint(c, buf, end, &pos, 10, &v) < 0) {
            return -1;
        }
        stamp = (int64_t)v;
    }
    while (pos < end) {
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 1 && wire_type == 1) {
            if (end - pos < 8) {
                return fail(c, "truncated sample value", pos);
            }
            uint64_t bits = 0;
            for (int k = 7; k >= 0; k--) {
                bits = (bits << 8) | buf[pos + (size_t)k];
            }
            memcpy(&value, &bits, sizeof value);
            pos += 8;
        }
        else if (field == 2 && wire_type == 0) {
            uint64_t v;
            if (read_varint(c, buf, end, &pos, 10, &v) < 0) {
                return -1;
            }
            stamp = (int64_t)v;
        }
        else if (skip_field(c, buf, end, &pos, field, wire_type, MAX_DEPTH - 1) < 0) {
            return -1;
        }
    }
    return push_sample(c, stamp, value);
}

static size_t
varint_size(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* One TimeSeries message in buf[0:end]: samples go to c, the label layout to info. */
static int
decode_series(Columns *c, const uint8_t *buf, size_t end, SeriesInfo *info)
{
    size_t pos = 0;
    int in_prefix = 1;
    info->prefix_end = 0;
    info->prefix_ok = 1;
    info->canonical = 0;
    info->histograms = 0;
    /* The common layout first: label fields with one-byte tags and lengths, in a leading run. */
    while (end - pos >= 2 && buf[pos] == 0x0A && buf[pos + 1] < 0x80 && buf[pos + 1] <= end - pos - 2) {
        pos += 2 + (size_t)buf[pos + 1];
    }
    info->prefix_end = pos;
    info->canonical = pos;
    while (pos < end) {
        size_t at = pos;
        uint32_t field;
        int wire_type;
        size_t len;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 1 && wire_type == 2) {
            size_t len_at = pos;
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            info->canonical += 1 + varint_size(len) + len;
            if (in_prefix && len_at == at + 1 && pos - len_at == varint_size(len)) {
                info->prefix_end = pos + len;
            }
            else {
                in_prefix = 0;
                info->prefix_ok = 0;
            }
            pos += len;
            continue;
        }
        in_prefix = 0;
        if (field == 2 && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            int rc = decode_sample(c, buf, pos, pos + len);
            if (rc < 0) {
                return rc;
            }
            pos += len;
        }
        else {
            if (field == 4 && wire_type == 2) {
                info->histograms = 1;
            }
            if (skip_field(c, buf, end, &pos, field, wire_type, MAX_DEPTH) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * Label sets repeat from one body to the next (the same series are scraped every interval), and
 * their bytes are dictionary keys downstream (the validator's verdict cache). A bounded table of
 * the label-bytes objects already made lets a repeated label set reuse its object: no allocation,
 * no copy, and Python's hash of it is already cached. Entries are verified byte for byte, so the
 * table never changes a result; it only saves work. The hash is seeded per process and probes are
 * bounded, so crafted label sets cannot make lookups slow (they just stop being shared).
 */
#define INTERN_MAX_ENTRIES ((size_t)1 << 19)
#define INTERN_MAX_PROBE 32

typedef struct {
    uint64_t hash;
    PyObject *obj; /* a bytes object (strong reference), or NULL for an empty slot */
} Slot;

static Slot *intern_slots = NULL;
static size_t intern_cap = 0; /* a power of two, or 0 */
static size_t intern_count = 0;
static uint64_t intern_seed = 0x243F6A8885A308D3ULL;

static uint64_t
hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = intern_seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h = (h ^ tail) * 0x94D049BB133111EBULL;
    return h ^ (h >> 29);
}

static void
intern_clear(void)
{
    Slot *slots = intern_slots;
    size_t cap = intern_cap;
    intern_slots = NULL;
    intern_cap = 0;
    intern_count = 0;
    for (size_t i = 0; i < cap; i++) {
        Py_XDECREF(slots[i].obj);
    }
    PyMem_Free(slots);
}

/* Put obj (a new strong reference is taken) in the first free slot of its probe run, if any. */
static void
intern_place(Slot *slots, size_t cap, uint64_t hash, PyObject *obj)
{
    size_t i = (size_t)hash & (cap - 1);
    for (int probe = 0; probe < INTERN_MAX_PROBE; probe++, i = (i + 1) & (cap - 1)) {
        if (slots[i].obj == NULL) {
            Py_INCREF(obj);
            slots[i].hash = hash;
            slots[i].obj = obj;
            intern_count++;
            return;
        }
    }
}

/* Best effort: a failure to grow the table only means obj is not shared. */
static void
intern_add(uint64_t hash, PyObject *obj)
{
    if (intern_count >= INTERN_MAX_ENTRIES) {
        intern_clear();
    }
    if ((intern_count + 1) * 2 > intern_cap) {
        size_t cap = intern_cap ? intern_cap * 2 : 4096;
        Slot *slots = PyMem_Calloc(cap, sizeof(Slot));
        if (slots == NULL) {
            return;
        }
        Slot *old = intern_slots;
        size_t old_cap = intern_cap;
        intern_count = 0;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].obj != NULL) {
                intern_place(slots, cap, old[i].hash, old[i].obj);
                Py_DECREF(old[i].obj); /* intern_place took its own reference */
            }
        }
        PyMem_Free(old);
        intern_slots = slots;
        intern_cap = cap;
    }
    intern_place(intern_slots, intern_cap, hash, obj);
}

/* bytes(p[:n]), shared with earlier calls when the same bytes were seen before. */
static PyObject *
interned_bytes(const uint8_t *p, size_t n)
{
    if (n == 0) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    uint64_t hash = hash_bytes(p, n);
    if (intern_cap) {
        size_t i = (size_t)hash & (intern_cap - 1);
        for (int probe = 0; probe < INTERN_MAX_PROBE; probe++, i = (i + 1) & (intern_cap - 1)) {
            PyObject *obj = intern_slots[i].obj;
            if (obj == NULL) {
                break;
            }
            if (intern_slots[i].hash == hash && (size_t)PyBytes_GET_SIZE(obj) == n &&
                memcmp(PyBytes_AS_STRING(obj), p, n) == 0) {
                Py_INCREF(obj);
                return obj;
            }
        }
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (out != NULL) {
        intern_add(hash, out);
    }
    return out;
}

/* The label bytes of a decoded series: a slice of it, or the canonical re-encoding of its labels. */
static PyObject *
label_bytes(PyObject *whole, const uint8_t *buf, size_t end, const SeriesInfo *info)
{
    if (info->prefix_ok) {
        if (whole != NULL && info->prefix_end == end) {
            Py_INCREF(whole);
            return whole;
        }
        return interned_bytes(buf, info->prefix_end);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)info->canonical);
    if (!out) {
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    size_t w = 0, pos = 0;
    Columns scratch = {0};
    /* The series was validated by decode_series: these reads cannot fail. */
    while (pos < end) {
        uint32_t field;
        int wire_type;
        size_t len;
        if (read_tag(&scratch, buf, end, &pos, &field, &wire_type) < 0) {
            break;
        }
        if (field == 1 && wire_type == 2) {
            if (read_length(&scratch, buf, end, &pos, &len) < 0) {
                break;
            }
            if (w + 1 + varint_size(len) + len > info->canonical) {
                break;
            }
            dst[w++] = 0x0A;
            size_t v = len;
            while (v >= 0x80) {
                dst[w++] = (uint8_t)(v | 0x80);
                v >>= 7;
            }
            dst[w++] = (uint8_t)v;
            memcpy(dst + w, buf + pos, len);
            w += len;
            pos += len;
        }
        else if (skip_field(&scratch, buf, end, &pos, field, wire_type, MAX_DEPTH) < 0) {
            break;
        }
    }
    if (w != info->canonical) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_SystemError, "_wirec: label re-encoding disagrees with the first pass");
        return NULL;
    }
    return out;
}

static PyObject *
bytearray_of(const void *data, Py_ssize_t size)
{
    return PyByteArray_FromStringAndSize(size ? (const char *)data : NULL, size);
}

/* What both entry points build: per-series lists and the columns. */
typedef struct {
    Columns cols;
    PyObject *contents; /* list, or NULL when the caller already has it */
    PyObject *labels;
    PyObject *histograms;
    int64_t *offsets;
    int64_t *lengths;
    Py_ssize_t n_series, cap_series;
} Output;

static void
output_free(Output *o)
{
    PyMem_Free(o->cols.ts);
    PyMem_Free(o->cols.vals);
    PyMem_Free(o->offsets);
    PyMem_Free(o->lengths);
    Py_XDECREF(o->contents);
    Py_XDECREF(o->labels);
    Py_XDECREF(o->histograms);
}

static int
output_init(Output *o, int with_contents, Py_ssize_t series_hint, Py_ssize_t sample_hint)
{
    memset(o, 0, sizeof *o);
    o->labels = PyList_New(0);
    o->histograms = PyList_New(0);
    o->contents = with_contents ? PyList_New(0) : NULL;
    o->cap_series = series_hint > 16 ? series_hint : 16;
    o->offsets = PyMem_Malloc((size_t)(o->cap_series + 1) * sizeof(int64_t));
    o->lengths = PyMem_Malloc((size_t)o->cap_series * sizeof(int64_t));
    if (sample_hint > 0) {
        o->cols.cap = sample_hint;
        o->cols.ts = PyMem_Malloc((size_t)sample_hint * sizeof(int64_t));
        o->cols.vals = PyMem_Malloc((size_t)sample_hint * sizeof(double));
    }
    if (!o->labels || !o->histograms || (with_contents && !o->contents) || !o->offsets || !o->lengths ||
        (sample_hint > 0 && (!o->cols.ts || !o->cols.vals))) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    o->offsets[0] = 0;
    return 0;
}

static int
append_new(PyObject *list, PyObject *item)
{
    if (!item) {
        return -1;
    }
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/*
 * Decode one series (buf[0:len]) and record it. whole is the series' own bytes object, if any.
 * Returns 0, -1 on a wire-format error (o->cols.err set), -2 with a Python exception set.
 */
static int
output_series(Output *o, PyObject *whole, const uint8_t *buf, size_t len)
{
    SeriesInfo info;
    int rc = decode_series(&o->cols, buf, len, &info);
    if (rc < 0) {
        return PyErr_Occurred() ? -2 : -1;
    }
    if (o->n_series == o->cap_series) {
        Py_ssize_t cap = o->cap_series * 2;
        int64_t *offsets = PyMem_Realloc(o->offsets, (size_t)(cap + 1) * sizeof(int64_t));
        if (!offsets) {
            PyErr_NoMemory();
            return -2;
        }
        o->offsets = offsets;
        int64_t *lengths = PyMem_Realloc(o->lengths, (size_t)cap * sizeof(int64_t));
        if (!lengths) {
            PyErr_NoMemory();
            return -2;
        }
        o->lengths = lengths;
        o->cap_series = cap;
    }
    Py_ssize_t i = o->n_series;
    PyObject *labels = label_bytes(whole, buf, len, &info);
    if (append_new(o->labels, labels) < 0) {
        return -2;
    }
    if (o->contents && append_new(o->contents, PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)len)) < 0) {
        return -2;
    }
    if (info.histograms && append_new(o->histograms, PyLong_FromSsize_t(i)) < 0) {
        return -2;
    }
    o->lengths[i] = (int64_t)len;
    o->offsets[i + 1] = (int64_t)o->cols.n;
    o->n_series = i + 1;
    return 0;
}

/* (contents?, labels, lengths, offsets, timestamps, values, histograms) */
static PyObject *
output_result(Output *o)
{
    PyObject *lengths = bytearray_of(o->lengths, o->n_series * (Py_ssize_t)sizeof(int64_t));
    PyObject *offsets = bytearray_of(o->offsets, (o->n_series + 1) * (Py_ssize_t)sizeof(int64_t));
    PyObject *ts = bytearray_of(o->cols.ts, o->cols.n * (Py_ssize_t)sizeof(int64_t));
    PyObject *vals = bytearray_of(o->cols.vals, o->cols.n * (Py_ssize_t)sizeof(double));
    PyObject *result = NULL;
    if (lengths && offsets && ts && vals) {
        if (o->contents) {
            result = PyTuple_Pack(7, o->contents, o->labels, lengths, offsets, ts, vals, o->histograms);
        }
        else {
            result = PyTuple_Pack(6, o->labels, lengths, offsets, ts, vals, o->histograms);
        }
    }
    Py_XDECREF(lengths);
    Py_XDECREF(offsets);
    Py_XDECREF(ts);
    Py_XDECREF(vals);
    return result;
}

PyDoc_STRVAR(split_write_request_doc,
             "split_write_request(buf) -> (contents, labels, lengths, offsets, timestamps, values, histograms)\n\n"
             "Decode a (decompressed) remote-write WriteRequest. contents and labels are lists of bytes\n"
             "(each series' encoding and its label fields); lengths, offsets, timestamps are int64 and\n"
             "values float64 little-endian bytearrays; histograms lists the indexes of series carrying\n"
             "native histograms. Raises ValueError when the buffer is not a valid WriteRequest.");

static PyObject *
split_write_request(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const uint8_t *buf = view.buf;
    size_t end = (size_t)view.len;
    Output o;
    PyObject *result = NULL;
    /* A sample takes at least 2 bytes on the wire, a series at least 2: hints, not limits. */
    if (output_init(&o, 1, (Py_ssize_t)(end / 64), (Py_ssize_t)(end / 32)) < 0) {
        goto done;
    }
    size_t pos = 0;
    while (pos < end) {
        size_t at = pos;
        uint32_t field;
        int wire_type;
        if (read_tag(&o.cols, buf, end, &pos, &field, &wire_type) < 0) {
            goto bad_request;
        }
        if (field == 1 && wire_type == 2) {
            size_t len;
            if (read_length(&o.cols, buf, end, &pos, &len) < 0) {
                goto bad_request;
            }
            int rc = output_series(&o, NULL, buf + pos, len);
            if (rc == -2) {
                goto done;
            }
            if (rc == -1) {
                PyErr_Format(PyExc_ValueError,
                             "series %zd (at byte %zu of the WriteRequest) is not a valid TimeSeries message: %s",
                             o.n_series, at, o.cols.err);
                goto done;
            }
            pos += len;
        }
        else if (skip_field(&o.cols, buf, end, &pos, field, wire_type, MAX_DEPTH) < 0) {
            goto bad_request;
        }
    }
    result = output_result(&o);
    goto done;
bad_request:
    PyErr_Format(PyExc_ValueError, "body is not a valid remote write WriteRequest protobuf: %s", o.cols.err);
done:
    output_free(&o);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(decode_series_list_doc,
             "decode_series_list(contents) -> (labels, lengths, offsets, timestamps, values, histograms)\n\n"
             "Decode a list of TimeSeries encodings (bytes-like objects); the same columns as\n"
             "split_write_request, without the contents. Raises ValueError for an invalid series.");

static PyObject *
decode_series_list(PyObject *module, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "decode_series_list expects a list of bytes");
    if (!seq) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Output o;
    PyObject *result = NULL;
    if (output_init(&o, 0, n, n) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        int rc;
        if (PyBytes_CheckExact(item)) {
            rc = output_series(&o, item, (const uint8_t *)PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
        }
        else {
            Py_buffer view;
            if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) {
                goto done;
            }
            rc = output_series(&o, NULL, view.buf, (size_t)view.len);
            PyBuffer_Release(&view);
        }
        if (rc == -2) {
            goto done;
        }
        if (rc == -1) {
            PyErr_Format(PyExc_ValueError, "series %zd is not a valid TimeSeries message: %s", i, o.cols.err);
            goto done;
        }
    }
    result = output_result(&o);
done:
    output_free(&o);
    Py_DECREF(seq);
    return result;
}

static PyObject *
clear_label_cache(PyObject *module, PyObject *unused)
{
    intern_clear();
    Py_RETURN_NONE;
}

static PyObject *
label_cache_size(PyObject *module, PyObject *unused)
{
    return PyLong_FromSize_t(intern_count);
}

static PyMethodDef methods[] = {
    {"clear_label_cache", clear_label_cache, METH_NOARGS, "Forget the label bytes kept for reuse."},
    {"label_cache_size", label_cache_size, METH_NOARGS, "How many label-bytes objects are kept for reuse."},
    {"split_write_request", split_write_request, METH_O, split_write_request_doc},
    {"decode_series_list", decode_series_list, METH_O, decode_series_list_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_wirec",
    .m_doc = "Native remote-write protobuf decoder (optional; see wire.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__wirec(void)
{
    /* A per-process seed for the label table's hash (see interned_bytes). */
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return NULL;
    }
    PyObject *seed = PyObject_CallMethod(os, "urandom", "i", 8);
    Py_DECREF(os);
    if (seed == NULL) {
        return NULL;
    }
    if (PyBytes_Check(seed) && PyBytes_GET_SIZE(seed) == 8) {
        memcpy(&intern_seed, PyBytes_AS_STRING(seed), 8);
    }
    Py_DECREF(seed);
    return PyModule_Create(&module_def);
}
