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
 *
 * The other readers (number_points, summary_points: OTLP points; v2_series: remote write 2.0 series
 * as 1.0 encodings; append_samples) have Python references in otlp_wire.py, samples.py and
 * remote_write_v2.py. They return None, never an error, for input they leave to those paths.
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

/* --- OTLP number data points (see otlp_wire.py, the reference) ------------------------------ */

static uint64_t
load_le64(const uint8_t *p)
{
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--) {
        bits = (bits << 8) | p[k];
    }
    return bits;
}

/* Skip a field that is neither a group nor malformed; -1 for what the Python reader refuses too. */
static int
skip_plain_field(Columns *c, const uint8_t *buf, size_t end, size_t *pos, uint32_t field, int wire_type)
{
    if (wire_type == 3 || wire_type == 4) {
        return -1; /* groups: left to the protobuf runtime */
    }
    return skip_field(c, buf, end, pos, field, wire_type, 0);
}

/* One TimeSeries.samples field as protobuf writes it (zero fields left out); returns its size. */
static size_t
encode_sample(uint8_t *out, double value, int64_t stamp_ms)
{
    uint8_t body[20];
    size_t n = 0;
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    if (bits) {
        body[n++] = 0x09;
        for (int k = 0; k < 8; k++) {
            body[n++] = (uint8_t)(bits >> (8 * k));
        }
    }
    if (stamp_ms) {
        uint64_t v = (uint64_t)stamp_ms;
        body[n++] = 0x10;
        while (v >= 0x80) {
            body[n++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        body[n++] = (uint8_t)v;
    }
    out[0] = 0x12;
    out[1] = (uint8_t)n; /* at most 20: a one-byte length */
    memcpy(out + 2, body, n);
    return n + 2;
}

typedef struct {
    PyObject *attributes, *stamps, *samples; /* lists, one entry per point */
    uint8_t *scratch;                        /* the attribute fields of the point being read */
    size_t scratch_cap;
} PointLists;

#define STALE_NAN_BITS 0x7FF0000000000002ULL
#define NO_RECORDED_VALUE 1

/* Append one entry to each list (stealing the references); -2 on a Python error. */
static int
append_point(PointLists *out, PyObject *attributes, PyObject *stamp, PyObject *sample)
{
    int rc = (attributes && stamp && sample) ? 0 : -2;
    if (rc == 0 && (PyList_Append(out->attributes, attributes) < 0 || PyList_Append(out->stamps, stamp) < 0 ||
                    PyList_Append(out->samples, sample) < 0)) {
        rc = -2;
    }
    Py_XDECREF(attributes);
    Py_XDECREF(stamp);
    Py_XDECREF(sample);
    return rc;
}

/* One NumberDataPoint in buf[start:end]: -1 when it is not read here, -2 on a Python error. */
static int
number_point(Columns *c, const uint8_t *buf, size_t start, size_t end, PointLists *out)
{
    size_t pos = start, used = 0;
    uint64_t time_ns = 0, flags = 0, bits;
    int has_value = 0;
    double value = 0.0;
    while (pos < end) {
        size_t field_start = pos;
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 7 && wire_type == 2) {
            size_t len;
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            pos += len;
            size_t size = pos - field_start;
            if (used + size > out->scratch_cap) {
                size_t cap = (used + size) * 2;
                uint8_t *grown = PyMem_Realloc(out->scratch, cap);
                if (!grown) {
                    PyErr_NoMemory();
                    return -2;
                }
                out->scratch = grown;
                out->scratch_cap = cap;
            }
            memcpy(out->scratch + used, buf + field_start, size);
            used += size;
        }
        else if ((field == 3 || field == 4 || field == 6) && wire_type == 1) {
            if (end - pos < 8) {
                return -1;
            }
            bits = load_le64(buf + pos);
            pos += 8;
            if (field == 3) {
                time_ns = bits;
            }
            else if (field == 4) {
                memcpy(&value, &bits, sizeof value);
                has_value = 1;
            }
            else {
                value = (double)(int64_t)bits;
                has_value = 1;
            }
        }
        else if (field == 8 && wire_type == 0) {
            if (read_varint(c, buf, end, &pos, 10, &flags) < 0) {
                return -1;
            }
            flags &= 0xFFFFFFFFULL;
        }
        else if (skip_plain_field(c, buf, end, &pos, field, wire_type) < 0) {
            return -1;
        }
    }
    PyObject *attributes = PyBytes_FromStringAndSize(used ? (const char *)out->scratch : "", (Py_ssize_t)used);
    if (time_ns == 0) {
        return append_point(out, attributes, PyLong_FromLong(-1), Py_NewRef(Py_None));
    }
    int64_t stamp_ms = (int64_t)(time_ns / 1000000);
    PyObject *sample;
    if (flags & NO_RECORDED_VALUE || has_value) {
        uint8_t encoded[22];
        if (flags & NO_RECORDED_VALUE) {
            bits = STALE_NAN_BITS;
            memcpy(&value, &bits, sizeof value);
        }
        size_t size = encode_sample(encoded, value, stamp_ms);
        sample = PyBytes_FromStringAndSize((const char *)encoded, (Py_ssize_t)size);
    }
    else {
        sample = Py_NewRef(Py_None);
    }
    return append_point(out, attributes, PyLong_FromLongLong(stamp_ms), sample);
}

PyDoc_STRVAR(number_points_doc,
             "number_points(data) -> (attributes, stamps, samples) | None\n\n"
             "The points of a serialized OTLP Gauge or Sum as three lists: each point's attribute\n"
             "fields (bytes), its time in ms (-1 when time_unix_nano is 0) and its TimeSeries.samples\n"
             "field (None without a value). None when the data holds groups or is not valid protobuf.");

static PyObject *
number_points(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const uint8_t *buf = view.buf;
    size_t end = (size_t)view.len, pos = 0;
    Columns c = {0};
    PointLists out = {PyList_New(0), PyList_New(0), PyList_New(0), NULL, 0};
    PyObject *result = NULL;
    int rc = (out.attributes && out.stamps && out.samples) ? 0 : -2;
    while (rc == 0 && pos < end) {
        uint32_t field;
        int wire_type;
        size_t len;
        if (read_tag(&c, buf, end, &pos, &field, &wire_type) < 0) {
            rc = -1;
        }
        else if (field != 1 || wire_type != 2) {
            rc = skip_plain_field(&c, buf, end, &pos, field, wire_type) < 0 ? -1 : 0;
        }
        else if (read_length(&c, buf, end, &pos, &len) < 0) {
            rc = -1;
        }
        else {
            rc = number_point(&c, buf, pos, pos + len, &out);
            pos += len;
        }
    }
    if (rc == 0) {
        result = PyTuple_Pack(3, out.attributes, out.stamps, out.samples);
    }
    else if (rc == -1) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(out.attributes);
    Py_XDECREF(out.stamps);
    Py_XDECREF(out.samples);
    PyMem_Free(out.scratch);
    PyBuffer_Release(&view);
    return result;
}

/* --- OTLP summary data points (CloudWatch metric streams; see otlp_wire.py, the reference) ------ */

typedef struct {
    PyObject *keys, *stamps, *values; /* lists, one entry per point */
    uint8_t *resource;                /* the current resource's payloads, concatenated */
    size_t resource_len, resource_cap;
    uint8_t *attributes; /* the current point's attribute fields */
    size_t attributes_cap;
} SummaryLists;

static int
grow_copy(uint8_t **buf, size_t *cap, size_t used, const uint8_t *src, size_t size)
{
    if (used + size > *cap) {
        size_t want = (used + size) * 2;
        uint8_t *grown = PyMem_Realloc(*buf, want ? want : 1);
        if (!grown) {
            PyErr_NoMemory();
            return -2;
        }
        *buf = grown;
        *cap = want;
    }
    if (size && src) {
        memcpy(*buf + used, src, size);
    }
    return 0;
}

#define MAX_QUANTILES 64

/* One SummaryDataPoint: appends (key, stamp, values); -1 when not read here, -2 on a Python error. */
static int
summary_point(Columns *c, const uint8_t *buf, size_t start, size_t end, PyObject *unit, SummaryLists *out)
{
    size_t pos = start, used = 0;
    uint64_t start_ns = 0, time_ns = 0, count = 0, bits;
    double sum = 0.0, quantiles[MAX_QUANTILES], qvalues[MAX_QUANTILES];
    int n = 0;
    while (pos < end) {
        size_t field_start = pos, len;
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 7 && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            pos += len;
            if (grow_copy(&out->attributes, &out->attributes_cap, used, buf + field_start, pos - field_start) < 0) {
                return -2;
            }
            used += pos - field_start;
        }
        else if (field >= 2 && field <= 5 && wire_type == 1) {
            if (end - pos < 8) {
                return -1;
            }
            bits = load_le64(buf + pos);
            pos += 8;
            if (field == 2) {
                start_ns = bits;
            }
            else if (field == 3) {
                time_ns = bits;
            }
            else if (field == 4) {
                count = bits;
            }
            else {
                memcpy(&sum, &bits, sizeof sum);
            }
        }
        else if (field == 6 && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0 || n == MAX_QUANTILES) {
                return -1;
            }
            size_t q_end = pos + len;
            double q = 0.0, v = 0.0;
            while (pos < q_end) {
                uint32_t q_field;
                int q_type;
                if (read_tag(c, buf, q_end, &pos, &q_field, &q_type) < 0) {
                    return -1;
                }
                if ((q_field == 1 || q_field == 2) && q_type == 1) {
                    if (q_end - pos < 8) {
                        return -1;
                    }
                    bits = load_le64(buf + pos);
                    pos += 8;
                    memcpy(q_field == 1 ? &q : &v, &bits, sizeof q);
                }
                else if (skip_plain_field(c, buf, q_end, &pos, q_field, q_type) < 0) {
                    return -1;
                }
            }
            quantiles[n] = q;
            qvalues[n] = v;
            n++;
        }
        else if (skip_plain_field(c, buf, end, &pos, field, wire_type) < 0) {
            return -1;
        }
    }
    uint64_t stamp_ns = start_ns ? start_ns : time_ns;
    PyObject *resource = PyBytes_FromStringAndSize((const char *)out->resource, (Py_ssize_t)out->resource_len);
    PyObject *attributes = PyBytes_FromStringAndSize((const char *)out->attributes, (Py_ssize_t)used);
    PyObject *names = PyTuple_New(n);
    PyObject *values = PyList_New(2 + n);
    PyObject *key = NULL;
    PyObject *stamp = PyLong_FromLongLong(stamp_ns ? (long long)(stamp_ns / 1000000) : -1);
    int rc = -2;
    if (resource && attributes && names && values && stamp) {
        PyList_SET_ITEM(values, 0, PyFloat_FromDouble(sum));
        PyList_SET_ITEM(values, 1, PyFloat_FromDouble((double)count));
        for (int k = 0; k < n; k++) {
            PyTuple_SET_ITEM(names, k, PyFloat_FromDouble(quantiles[k]));
            PyList_SET_ITEM(values, 2 + k, PyFloat_FromDouble(qvalues[k]));
        }
        rc = PyErr_Occurred() ? -2 : 0;
        if (rc == 0) {
            key = PyTuple_Pack(4, resource, unit, attributes, names);
        }
        if (!key || PyList_Append(out->keys, key) < 0 || PyList_Append(out->stamps, stamp) < 0 ||
            PyList_Append(out->values, values) < 0) {
            rc = -2;
        }
    }
    Py_XDECREF(resource);
    Py_XDECREF(attributes);
    Py_XDECREF(names);
    Py_XDECREF(values);
    Py_XDECREF(key);
    Py_XDECREF(stamp);
    return rc;
}

/* A Metric: its summary's points, or -1 unless summary is the (single) kind of data it carries. */
static int
summary_metric(Columns *c, const uint8_t *buf, size_t start, size_t end, SummaryLists *out)
{
    size_t pos = start, len, unit_at = 0, unit_len = 0, summary_at = 0, summary_len = 0;
    int last_data = 0, summaries = 0;
    while (pos < end) {
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        int data = wire_type == 2 && (field == 5 || field == 7 || field == 9 || field == 10 || field == 11);
        if (wire_type == 2 && (field == 3 || data)) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            if (field == 3) {
                unit_at = pos;
                unit_len = len;
            }
            else {
                last_data = (int)field;
                if (field == 11) {
                    summaries++;
                    summary_at = pos;
                    summary_len = len;
                }
            }
            pos += len;
        }
        else if (skip_plain_field(c, buf, end, &pos, field, wire_type) < 0) {
            return -1;
        }
    }
    if (last_data != 11 || summaries != 1) {
        return -1; /* another kind of point (an error to name), or a summary sent in parts (merged) */
    }
    PyObject *unit = PyUnicode_DecodeUTF8((const char *)buf + unit_at, (Py_ssize_t)unit_len, "strict");
    if (!unit) {
        PyErr_Clear();
        return -1;
    }
    int rc = 0;
    pos = summary_at;
    size_t summary_end = summary_at + summary_len;
    while (rc == 0 && pos < summary_end) {
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, summary_end, &pos, &field, &wire_type) < 0) {
            rc = -1;
        }
        else if (field == 1 && wire_type == 2) {
            if (read_length(c, buf, summary_end, &pos, &len) < 0) {
                rc = -1;
            }
            else {
                rc = summary_point(c, buf, pos, pos + len, unit, out);
                pos += len;
            }
        }
        else if (skip_plain_field(c, buf, summary_end, &pos, field, wire_type) < 0) {
            rc = -1;
        }
    }
    Py_DECREF(unit);
    return rc;
}

/* Walk the repeated message field `field` of buf[start:end], calling `each` on every occurrence. */
static int
each_field(Columns *c, const uint8_t *buf, size_t start, size_t end, uint32_t wanted, SummaryLists *out,
           int (*each)(Columns *, const uint8_t *, size_t, size_t, SummaryLists *))
{
    size_t pos = start, len;
    while (pos < end) {
        uint32_t field;
        int wire_type, rc;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == wanted && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            if (each && (rc = each(c, buf, pos, pos + len, out)) < 0) {
                return rc;
            }
            pos += len;
        }
        else if (skip_plain_field(c, buf, end, &pos, field, wire_type) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
summary_scope(Columns *c, const uint8_t *buf, size_t start, size_t end, SummaryLists *out)
{
    return each_field(c, buf, start, end, 2, out, summary_metric);
}

static int
collect_resource(Columns *c, const uint8_t *buf, size_t start, size_t end, SummaryLists *out)
{
    int rc = grow_copy(&out->resource, &out->resource_cap, out->resource_len, buf + start, end - start);
    out->resource_len += end - start;
    return rc;
}

static int
summary_resource(Columns *c, const uint8_t *buf, size_t start, size_t end, SummaryLists *out)
{
    /* The resource (every occurrence: protobuf merges them) may come after the scopes. */
    out->resource_len = 0;
    int rc = each_field(c, buf, start, end, 1, out, collect_resource);
    return rc < 0 ? rc : each_field(c, buf, start, end, 2, out, summary_scope);
}

PyDoc_STRVAR(summary_points_doc,
             "summary_points(data) -> (keys, stamps, values) | None\n\n"
             "The summary points of a serialized ExportMetricsServiceRequest as three lists: per point\n"
             "(resource payloads, metric unit, attribute fields, quantiles), its start time (or time) in\n"
             "ms (-1 without one) and [sum, count, quantile values...]. None when a metric carries other\n"
             "data, a summary in parts, groups, or the data is not valid protobuf.");

static PyObject *
summary_points(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Columns c = {0};
    SummaryLists out = {PyList_New(0), PyList_New(0), PyList_New(0), NULL, 0, 0, NULL, 0};
    PyObject *result = NULL;
    int rc = (out.keys && out.stamps && out.values) ? 0 : -2;
    if (rc == 0) {
        rc = each_field(&c, view.buf, 0, (size_t)view.len, 1, &out, summary_resource);
    }
    if (rc == 0) {
        result = PyTuple_Pack(3, out.keys, out.stamps, out.values);
    }
    else if (rc == -1) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(out.keys);
    Py_XDECREF(out.stamps);
    Py_XDECREF(out.values);
    PyMem_Free(out.resource);
    PyMem_Free(out.attributes);
    PyBuffer_Release(&view);
    return result;
}

/* --- remote write 2.0 series rewritten as 1.0 (see remote_write_v2.py, the reference) ----------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} Buffer;

static int
buffer_put(Buffer *b, const void *src, size_t size)
{
    return grow_copy(&b->data, &b->cap, (b->len += size) - size, src, size);
}

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

typedef struct {
    size_t at, len;
} Span;

typedef struct {
    Span *items;
    size_t n, cap;
} Spans;

static int
spans_push(Spans *s, size_t at, size_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        Span *grown = PyMem_Realloc(s->items, cap * sizeof(Span));
        if (!grown) {
            PyErr_NoMemory();
            return -2;
        }
        s->items = grown;
        s->cap = cap;
    }
    s->items[s->n].at = at;
    s->items[s->n].len = len;
    s->n++;
    return 0;
}

#define METRIC_TYPE_COUNTER 1

static int
ends_with(const uint8_t *text, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(text + len - n, suffix, n) == 0;
}

static int
v2_is_counter(const uint8_t *name, size_t name_len, int32_t type)
{
    if (type == METRIC_TYPE_COUNTER) {
        return 1;
    }
    if (type == 2 || type == 4 || type == 6 || type == 7) { /* GAUGE, GAUGEHISTOGRAM, INFO, STATESET */
        return 0;
    }
    return ends_with(name, name_len, "_total") || ends_with(name, name_len, "_count") ||
           ends_with(name, name_len, "_sum") || ends_with(name, name_len, "_bucket");
}

static uint8_t *
write_varint(uint8_t *out, uint64_t v)
{
    while (v >= 0x80) {
        *out++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *out++ = (uint8_t)v;
    return out;
}

/* A label field of the 1.0 encoding (empty name or value left out, as protobuf writes them). */
static int
put_label(Buffer *b, const uint8_t *buf, Span name, Span value)
{
    size_t inner = (name.len ? 1 + varint_len(name.len) + name.len : 0) +
                   (value.len ? 1 + varint_len(value.len) + value.len : 0);
    size_t size = 1 + varint_len(inner) + inner;
    if (b->len + size > b->cap && grow_copy(&b->data, &b->cap, b->len, NULL, size) < 0) {
        return -2;
    }
    uint8_t *out = b->data + b->len;
    *out++ = 0x0A;
    out = write_varint(out, inner);
    if (name.len) {
        *out++ = 0x0A;
        out = write_varint(out, name.len);
        memcpy(out, buf + name.at, name.len);
        out += name.len;
    }
    if (value.len) {
        *out++ = 0x12;
        out = write_varint(out, value.len);
        memcpy(out, buf + value.at, value.len);
    }
    b->len += size;
    return 0;
}

/* The timestamp of a Sample message, as upb reads it (last one wins); -1 when it is not valid. */
static int
sample_timestamp(Columns *c, const uint8_t *buf, size_t pos, size_t end, int64_t *stamp)
{
    *stamp = 0;
    while (pos < end) {
        uint32_t field;
        int wire_type;
        uint64_t v;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 2 && wire_type == 0) {
            if (read_varint(c, buf, end, &pos, 10, &v) < 0) {
                return -1;
            }
            *stamp = (int64_t)v;
        }
        else if (skip_field(c, buf, end, &pos, field, wire_type, MAX_DEPTH - 1) < 0) {
            return -1;
        }
    }
    return 0;
}

typedef struct {
    const uint8_t *buf;
    Spans *symbols;
    int64_t low, high;
    Buffer out;   /* the series' 1.0 encoding */
    Spans refs;   /* labels_refs, as (ref, 0) */
    Spans samples;
    long long samples_received, histograms_received, exemplars_received;
} V2;

/* One TimeSeries: 1 with its 1.0 encoding in v->out and *created set; 0 for the Python path; -1 bad. */
static int
v2_series_one(Columns *c, V2 *v, size_t pos, size_t end, int *created)
{
    const uint8_t *buf = v->buf;
    size_t n_symbols = v->symbols->n, len;
    uint64_t help_ref = 0, unit_ref = 0, x;
    int32_t type = 0;
    int64_t created_ts = 0;
    long long histograms = 0, exemplars = 0;
    v->refs.n = 0;
    v->samples.n = 0;
    v->out.len = 0;
    *created = 0;
    while (pos < end) {
        uint32_t field;
        int wire_type;
        if (read_tag(c, buf, end, &pos, &field, &wire_type) < 0) {
            return -1;
        }
        if (field == 1 && wire_type == 0) {
            if (read_varint(c, buf, end, &pos, 10, &x) < 0 || spans_push(&v->refs, (uint32_t)x, 0) < 0) {
                return PyErr_Occurred() ? -2 : -1;
            }
        }
        else if (field == 1 && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            size_t packed_end = pos + len;
            while (pos < packed_end) {
                if (read_varint(c, buf, packed_end, &pos, 10, &x) < 0) {
                    return -1;
                }
                if (spans_push(&v->refs, (uint32_t)x, 0) < 0) {
                    return -2;
                }
            }
        }
        else if (field >= 2 && field <= 5 && wire_type == 2) {
            if (read_length(c, buf, end, &pos, &len) < 0) {
                return -1;
            }
            if (field == 2) {
                if (spans_push(&v->samples, pos, len) < 0) {
                    return -2;
                }
            }
            else if (field == 3) {
                histograms++;
            }
            else if (field == 4) {
                exemplars++;
            }
            else { /* metadata: occurrences merge, later scalars win */
                size_t m = pos, m_end = pos + len;
                while (m < m_end) {
                    uint32_t m_field;
                    int m_type;
                    if (read_tag(c, buf, m_end, &m, &m_field, &m_type) < 0) {
                        return -1;
                    }
                    if ((m_field == 1 || m_field == 3 || m_field == 4) && m_type == 0) {
                        if (read_varint(c, buf, m_end, &m, 10, &x) < 0) {
                            return -1;
                        }
                        if (m_field == 1) {
                            type = (int32_t)(uint32_t)x;
                        }
                        else if (m_field == 3) {
                            help_ref = (uint32_t)x;
                        }
                        else {
                            unit_ref = (uint32_t)x;
                        }
                    }
                    else if (skip_field(c, buf, m_end, &m, m_field, m_type, MAX_DEPTH - 1) < 0) {
                        return -1;
                    }
                }
            }
            pos += len;
        }
        else if (field == 6 && wire_type == 0) {
            if (read_varint(c, buf, end, &pos, 10, &x) < 0) {
                return -1;
            }
            created_ts = (int64_t)x;
        }
        else if (skip_field(c, buf, end, &pos, field, wire_type, MAX_DEPTH - 1) < 0) {
            return -1;
        }
    }
    /* Reference problems and histograms: the Python path names them (and counts what they carry). */
    if (histograms || v->refs.n % 2 || help_ref >= n_symbols || unit_ref >= n_symbols) {
        return 0;
    }
    for (size_t k = 0; k < v->refs.n; k++) {
        if (v->refs.items[k].at >= n_symbols) {
            return 0;
        }
    }
    const uint8_t *name = (const uint8_t *)"";
    size_t name_len = 0;
    for (size_t k = 0; k < v->refs.n; k += 2) {
        Span key = v->symbols->items[v->refs.items[k].at], value = v->symbols->items[v->refs.items[k + 1].at];
        if (put_label(&v->out, buf, key, value) < 0) {
            return -2;
        }
        if (key.len == 8 && memcmp(buf + key.at, "__name__", 8) == 0) {
            name = buf + value.at;
            name_len = value.len;
        }
    }
    if (created_ts > 0 && v->low <= created_ts && created_ts <= v->high && v->samples.n &&
        v2_is_counter(name, name_len, type)) {
        int64_t first;
        if (sample_timestamp(c, buf, v->samples.items[0].at, v->samples.items[0].at + v->samples.items[0].len,
                             &first) < 0) {
            return 0; /* the Python path says the sample is not valid */
        }
        if (created_ts < first) {
            uint8_t zero[13] = {0x12, (uint8_t)(1 + varint_len((uint64_t)created_ts)), 0x10};
            size_t n = 3;
            uint64_t t = (uint64_t)created_ts;
            while (t >= 0x80) {
                zero[n++] = (uint8_t)(t | 0x80);
                t >>= 7;
            }
            zero[n++] = (uint8_t)t;
            if (buffer_put(&v->out, zero, n) < 0) {
                return -2;
            }
            *created = 1;
        }
    }
    for (size_t k = 0; k < v->samples.n; k++) {
        Span sample = v->samples.items[k];
        size_t size = 1 + varint_len(sample.len) + sample.len;
        if (v->out.len + size > v->out.cap && grow_copy(&v->out.data, &v->out.cap, v->out.len, NULL, size) < 0) {
            return -2;
        }
        uint8_t *out = v->out.data + v->out.len;
        *out++ = 0x12;
        out = write_varint(out, sample.len);
        memcpy(out, buf + sample.at, sample.len);
        v->out.len += size;
    }
    v->samples_received += (long long)v->samples.n;
    v->exemplars_received += exemplars;
    return 1;
}

PyDoc_STRVAR(v2_series_doc,
             "v2_series(raw, low, high) -> (contents, created, slow, samples, histograms, exemplars) | None\n\n"
             "Rewrite the series of a remote write 2.0 Request as 1.0 TimeSeries encodings: per series its\n"
             "encoding (None for those left to the Python path: histograms, bad references, a first\n"
             "sample that is not valid), created (bytes, 1 where a created-timestamp zero was added), the\n"
             "indexes of the series left to Python, and the counts of samples, histograms and exemplars\n"
             "of the others. low and high bound the created timestamps kept. None if not valid protobuf.");

static PyObject *
v2_series(PyObject *module, PyObject *args)
{
    Py_buffer view;
    long long low, high;
    if (!PyArg_ParseTuple(args, "y*LL:v2_series", &view, &low, &high)) {
        return NULL;
    }
    const uint8_t *buf = view.buf;
    size_t end = (size_t)view.len, pos = 0, len;
    Columns c = {0};
    Spans symbols = {0}, series = {0};
    V2 v = {buf, &symbols, low, high, {0}, {0}, {0}, 0, 0, 0};
    PyObject *contents = NULL, *created = NULL, *slow = NULL, *result = NULL;
    int rc = 0;
    while (rc == 0 && pos < end) {
        uint32_t field;
        int wire_type;
        if (read_tag(&c, buf, end, &pos, &field, &wire_type) < 0) {
            rc = -1;
        }
        else if ((field == 4 || field == 5) && wire_type == 2) {
            if (read_length(&c, buf, end, &pos, &len) < 0) {
                rc = -1;
            }
            else {
                rc = spans_push(field == 4 ? &symbols : &series, pos, len);
                pos += len;
            }
        }
        else if (skip_field(&c, buf, end, &pos, field, wire_type, MAX_DEPTH - 1) < 0) {
            rc = -1;
        }
    }
    if (rc == 0) {
        contents = PyList_New((Py_ssize_t)series.n);
        created = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)series.n);
        slow = PyList_New(0);
        rc = (contents && created && slow) ? 0 : -2;
    }
    for (size_t i = 0; rc == 0 && i < series.n; i++) {
        int added;
        int done = v2_series_one(&c, &v, series.items[i].at, series.items[i].at + series.items[i].len, &added);
        PyBytes_AS_STRING(created)[i] = (char)added;
        if (done < 0) {
            rc = done;
        }
        else if (done == 0) {
            PyList_SET_ITEM(contents, (Py_ssize_t)i, Py_NewRef(Py_None));
            PyObject *index = PyLong_FromSize_t(i);
            if (!index || PyList_Append(slow, index) < 0) {
                rc = -2;
            }
            Py_XDECREF(index);
        }
        else {
            PyObject *encoded = PyBytes_FromStringAndSize((const char *)v.out.data, (Py_ssize_t)v.out.len);
            if (!encoded) {
                rc = -2;
            }
            else {
                PyList_SET_ITEM(contents, (Py_ssize_t)i, encoded);
            }
        }
    }
    if (rc == 0) {
        result = Py_BuildValue("(OOOLLL)", contents, created, slow, v.samples_received, v.histograms_received,
                               v.exemplars_received);
    }
    else if (rc == -1) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(contents);
    Py_XDECREF(created);
    Py_XDECREF(slow);
    PyMem_Free(symbols.items);
    PyMem_Free(series.items);
    PyMem_Free(v.refs.items);
    PyMem_Free(v.samples.items);
    PyMem_Free(v.out.data);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(append_samples_doc,
             "append_samples(prefixes, values, stamps) -> list[bytes]\n\n"
             "Each prefix (bytes: a series' label fields) followed by one TimeSeries.samples field of\n"
             "values[i] (float) at stamps[i] (int ms), encoded as protobuf writes it.");

static PyObject *
append_samples(PyObject *module, PyObject *args)
{
    PyObject *prefixes, *values, *stamps;
    if (!PyArg_ParseTuple(args, "O!O!O!:append_samples", &PyList_Type, &prefixes, &PyList_Type, &values, &PyList_Type,
                          &stamps)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(prefixes);
    if (PyList_GET_SIZE(values) != n || PyList_GET_SIZE(stamps) != n) {
        PyErr_SetString(PyExc_ValueError, "append_samples: prefixes, values and stamps differ in length");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (!out) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *prefix = PyList_GET_ITEM(prefixes, i);
        if (!PyBytes_Check(prefix)) {
            PyErr_SetString(PyExc_TypeError, "append_samples: prefixes must be bytes");
            goto fail;
        }
        double value = PyFloat_AsDouble(PyList_GET_ITEM(values, i));
        if (value == -1.0 && PyErr_Occurred()) {
            goto fail;
        }
        long long stamp = PyLong_AsLongLong(PyList_GET_ITEM(stamps, i));
        if (stamp == -1 && PyErr_Occurred()) {
            goto fail;
        }
        uint8_t sample[22];
        size_t size = encode_sample(sample, value, (int64_t)stamp);
        Py_ssize_t prefix_size = PyBytes_GET_SIZE(prefix);
        PyObject *joined = PyBytes_FromStringAndSize(NULL, prefix_size + (Py_ssize_t)size);
        if (!joined) {
            goto fail;
        }
        memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(prefix), (size_t)prefix_size);
        memcpy(PyBytes_AS_STRING(joined) + prefix_size, sample, size);
        PyList_SET_ITEM(out, i, joined);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(swap_prefixes_doc,
"swap_prefixes(contents, old, new, /) -> list[bytes] | None\n\n"
"new[i] + contents[i][len(old[i]):] for every i, or None when some contents[i] does not start with old[i].");

static PyObject *
swap_prefixes(PyObject *module, PyObject *args)
{
    PyObject *contents, *old, *new_prefixes;
    if (!PyArg_ParseTuple(args, "O!O!O!:swap_prefixes", &PyList_Type, &contents, &PyList_Type, &old, &PyList_Type,
                          &new_prefixes)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(contents);
    if (PyList_GET_SIZE(old) != n || PyList_GET_SIZE(new_prefixes) != n) {
        PyErr_SetString(PyExc_ValueError, "swap_prefixes: contents, old and new differ in length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(contents, i), *o = PyList_GET_ITEM(old, i), *w = PyList_GET_ITEM(new_prefixes, i);
        if (!PyBytes_Check(c) || !PyBytes_Check(o) || !PyBytes_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "swap_prefixes: every item must be bytes");
            return NULL;
        }
        Py_ssize_t old_size = PyBytes_GET_SIZE(o);
        if (PyBytes_GET_SIZE(c) < old_size || memcmp(PyBytes_AS_STRING(c), PyBytes_AS_STRING(o), (size_t)old_size)) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyList_New(n);
    if (!out) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(contents, i), *o = PyList_GET_ITEM(old, i), *w = PyList_GET_ITEM(new_prefixes, i);
        Py_ssize_t rest = PyBytes_GET_SIZE(c) - PyBytes_GET_SIZE(o), head = PyBytes_GET_SIZE(w);
        PyObject *joined = PyBytes_FromStringAndSize(NULL, head + rest);
        if (!joined) {
            Py_DECREF(out);
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(w), (size_t)head);
        memcpy(PyBytes_AS_STRING(joined) + head, PyBytes_AS_STRING(c) + PyBytes_GET_SIZE(o), (size_t)rest);
        PyList_SET_ITEM(out, i, joined);
    }
    return out;
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
    {"number_points", number_points, METH_O, number_points_doc},
    {"append_samples", append_samples, METH_VARARGS, append_samples_doc},
    {"swap_prefixes", swap_prefixes, METH_VARARGS, swap_prefixes_doc},
    {"summary_points", summary_points, METH_O, summary_points_doc},
    {"v2_series", v2_series, METH_VARARGS, v2_series_doc},
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
