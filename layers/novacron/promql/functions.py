"""Functions over instant vectors and scalars (``abs``, ``clamp``, ``label_replace``, dates…)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from novacron.promql.errors import ExecutionError
from novacron.promql.labels import drop, group_ids, with_label
from novacron.promql.values import F64, I64, Mask, Scalar, String, Value, Vector, drop_name
from novacron.series import Labels

# Arguments arrive evaluated; ``steps`` are the evaluation timestamps in milliseconds.
InstantFn = Callable[[list[Value], I64], Value]


def _vec(v: Value) -> Vector:
    if not isinstance(v, Vector):
        raise ExecutionError("expected an instant vector argument")
    return v


def _scalar(v: Value) -> F64:
    if not isinstance(v, Scalar):
        raise ExecutionError("expected a scalar argument")
    return v.values


def _str(v: Value) -> str:
    if not isinstance(v, String):
        raise ExecutionError("expected a string argument")
    return v.value


def _map(fn: Callable[[F64], F64]) -> InstantFn:
    """An element-wise function that drops the metric name."""

    def call(args: list[Value], steps: I64) -> Value:
        vec = _vec(args[0])
        return Vector([drop_name(lb) for lb in vec.labels], fn(vec.values), vec.present)

    return call


def _clamp(args: list[Value], steps: I64) -> Value:
    vec, lo, hi = _vec(args[0]), _scalar(args[1]), _scalar(args[2])
    # Prometheus returns nothing at steps where min > max.
    ok = ~(lo > hi)
    values = np.fmax(lo, np.fmin(hi, vec.values))
    values = np.where(np.isnan(vec.values), np.nan, values)
    return Vector([drop_name(lb) for lb in vec.labels], values, vec.present & ok[None, :])


def _clamp_one(upper: bool) -> InstantFn:
    def call(args: list[Value], steps: I64) -> Value:
        vec, bound = _vec(args[0]), _scalar(args[1])[None, :]
        values = np.fmin(bound, vec.values) if upper else np.fmax(bound, vec.values)
        values = np.where(np.isnan(vec.values), np.nan, values)
        return Vector([drop_name(lb) for lb in vec.labels], values, vec.present)

    return call


def _round(args: list[Value], steps: I64) -> Value:
    vec = _vec(args[0])
    to_nearest = _scalar(args[1]) if len(args) > 1 else np.ones(len(steps))
    inverse = (1.0 / to_nearest)[None, :]
    # Prometheus rounds half up (toward +Inf), not half to even.
    values = np.floor(vec.values * inverse + 0.5) / inverse
    return Vector([drop_name(lb) for lb in vec.labels], values, vec.present)


def _time(args: list[Value], steps: I64) -> Value:
    return Scalar(steps / 1000.0)


def _pi(args: list[Value], steps: I64) -> Value:
    return Scalar(np.full(len(steps), np.pi))


def _vector(args: list[Value], steps: I64) -> Value:
    values = _scalar(args[0])
    return Vector([()], values[None, :].copy(), np.ones((1, len(steps)), dtype=bool))


def _scalar_fn(args: list[Value], steps: I64) -> Value:
    vec = _vec(args[0])
    count = vec.present.sum(axis=0)
    # Exactly one sample gives its value; none or several give NaN.
    picked = np.where(vec.present, vec.values, 0.0).sum(axis=0) if len(vec) else np.zeros(len(steps))
    return Scalar(np.where(count == 1, picked, np.nan))


def _timestamp(args: list[Value], steps: I64) -> Value:
    vec = _vec(args[0])
    ts = vec.sample_ts if vec.sample_ts is not None else np.broadcast_to(steps, vec.values.shape)
    return Vector([drop_name(lb) for lb in vec.labels], ts / 1000.0, vec.present)


def _date(part: str) -> InstantFn:
    def call(args: list[Value], steps: I64) -> Value:
        if args:
            vec = _vec(args[0])
            labels, raw, present = [drop_name(lb) for lb in vec.labels], vec.values, vec.present
        else:
            labels, raw = [()], (steps / 1000.0)[None, :]
            present = np.ones(raw.shape, dtype=bool)
        finite = np.isfinite(raw)
        secs = np.where(finite, np.trunc(np.where(finite, raw, 0)), 0).astype(np.int64)
        out = _date_part(part, secs).astype(np.float64)
        return Vector(labels, np.where(finite, out, np.nan), present)

    return call


def _date_part(part: str, secs: I64) -> I64:
    t = secs.astype("datetime64[s]")
    day = t.astype("datetime64[D]")
    month = t.astype("datetime64[M]")
    year = t.astype("datetime64[Y]")
    if part == "year":
        return np.asarray(year.astype(np.int64) + 1970, dtype=np.int64)
    if part == "month":
        return np.asarray(month.astype(np.int64) % 12 + 1, dtype=np.int64)
    if part == "day_of_month":
        return np.asarray((day - month.astype("datetime64[D]")).astype(np.int64) + 1, dtype=np.int64)
    if part == "day_of_year":
        return np.asarray((day - year.astype("datetime64[D]")).astype(np.int64) + 1, dtype=np.int64)
    if part == "day_of_week":
        return np.asarray((day.astype(np.int64) + 4) % 7, dtype=np.int64)  # 1970-01-01 was a Thursday; Sunday is 0
    if part == "days_in_month":
        return np.asarray(
            ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64), dtype=np.int64
        )
    if part == "hour":
        return np.asarray((t - day).astype(np.int64) // 3600, dtype=np.int64)
    return np.asarray((t - day).astype(np.int64) % 3600 // 60, dtype=np.int64)  # minute


def _sort(descending: bool) -> InstantFn:
    def call(args: list[Value], steps: I64) -> Value:
        # Only instant queries expose the order; sort by the first step, NaN last either way.
        vec = _vec(args[0])
        v = vec.values[:, 0] if vec.values.shape[1] else np.zeros(len(vec))
        key = np.where(np.isnan(v), 0.0, -v if descending else v)
        order = np.lexsort((key, np.isnan(v)))
        return vec.take(order)

    return call


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p]


def _sort_by_label(descending: bool) -> InstantFn:
    def call(args: list[Value], steps: I64) -> Value:
        vec = _vec(args[0])
        names = [_str(a) for a in args[1:]]
        keyed = sorted(
            range(len(vec)),
            key=lambda i: ([_natural_key(dict(vec.labels[i]).get(n, "")) for n in names], vec.labels[i]),
            reverse=descending,
        )
        return vec.take(keyed)

    return call


_GO_GROUP = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+))")


def expand_template(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; unknown → empty."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        ref = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            value = match.group(int(ref)) if ref.isdigit() else match.group(ref)
        except IndexError:  # unknown group: Go expands it to nothing
            return ""
        return value or ""

    return _GO_GROUP.sub(sub, template)


def _label_replace(args: list[Value], steps: I64) -> Value:
    vec = _vec(args[0])
    dst, repl, src, pattern = (_str(a) for a in args[1:5])
    try:
        regex = re.compile(f"^(?:{pattern})$", re.DOTALL)
    except re.error as exc:
        raise ExecutionError(f"invalid regular expression in label_replace(): {pattern}") from exc
    if dst == "":
        raise ExecutionError(f"invalid destination label name in label_replace(): {dst}")
    out: list[Labels] = []
    for lb in vec.labels:
        m = regex.match(dict(lb).get(src, ""))
        out.append(with_label(lb, dst, expand_template(repl, m)) if m else lb)
    return Vector(out, vec.values, vec.present, vec.sample_ts)


def _label_join(args: list[Value], steps: I64) -> Value:
    vec = _vec(args[0])
    dst, sep = _str(args[1]), _str(args[2])
    srcs = [_str(a) for a in args[3:]]
    if dst == "":
        raise ExecutionError(f"invalid destination label name in label_join(): {dst}")
    out = [with_label(lb, dst, sep.join(dict(lb).get(s, "") for s in srcs)) for lb in vec.labels]
    return Vector(out, vec.values, vec.present, vec.sample_ts)


def _parse_le(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _almost_equal(a: F64, b: F64, eps: float) -> Mask:
    min_normal = 2.2250738585072014e-308
    abs_sum = np.abs(a) + np.abs(b)
    diff = np.abs(a - b)
    tiny = (a == 0) | (b == 0) | (abs_sum < min_normal)
    with np.errstate(all="ignore"):
        rel = diff / np.minimum(abs_sum, np.finfo(np.float64).max)
    return np.asarray((a == b) | np.where(tiny, diff < eps * min_normal, rel < eps), dtype=bool)


def bucket_quantile(q: F64, upper: F64, counts: F64) -> F64:
    """Prometheus's classic-histogram quantile for buckets sorted by ``upper`` (rows) per step (cols)."""
    cols = counts.shape[1]
    nb = len(upper)
    if nb == 0 or not np.isposinf(upper[-1]) or nb < 2:
        result: F64 = np.full(cols, np.nan)
    else:
        c = counts.copy()
        prev = c[0].copy()
        for i in range(1, nb):
            # Force monotonic counts and ignore tiny float deltas, as Prometheus does.
            cur = c[i]
            fix = ~(cur == prev) & (_almost_equal(prev, cur, 1e-12) | (cur < prev))
            c[i] = np.where(fix, prev, cur)
            prev = np.where((cur == prev) | fix, prev, cur)
        observations = c[-1]
        rank = q * observations
        ge = c[: nb - 1] >= rank[None, :]
        b = np.where(ge.any(axis=0), ge.argmax(axis=0), nb - 1)
        idx = np.arange(cols)
        below = np.where(b > 0, c[np.maximum(b - 1, 0), idx], 0.0)
        start = np.where(b > 0, upper[np.maximum(b - 1, 0)], 0.0)
        end = upper[np.minimum(b, nb - 1)]
        value = start + (end - start) * ((rank - below) / (c[b, idx] - below))
        value = np.where(b == nb - 1, upper[nb - 2], value)
        value = np.where((b == 0) & (upper[0] <= 0), upper[0], value)
        result = np.where(observations == 0, np.nan, value)
    result = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    return np.asarray(np.where(np.isnan(q), np.nan, result), dtype=np.float64)


def _histogram_quantile(args: list[Value], steps: I64) -> Value:
    q, vec = _scalar(args[0]), _vec(args[1])
    parsed = [(i, _parse_le(dict(lb).get("le", ""))) for i, lb in enumerate(vec.labels)]
    rows = [(i, le) for i, le in parsed if le is not None and not np.isnan(le)]
    ids, keys = group_ids([drop(vec.labels[i], ["le"]) for i, _ in rows])
    cols = vec.values.shape[1]
    values = np.full((len(keys), cols), np.nan)
    present = np.zeros((len(keys), cols), dtype=bool)
    for gid in range(len(keys)):
        members = [rows[k] for k in np.nonzero(ids == gid)[0]]
        uppers = np.array(sorted({le for _, le in members}))
        counts = np.zeros((len(uppers), cols))
        have = np.zeros((len(uppers), cols), dtype=bool)
        for i, le in members:
            u = int(np.searchsorted(uppers, le))
            counts[u] += np.where(vec.present[i], vec.values[i], 0.0)  # coalesces equal bounds
            have[u] |= vec.present[i]
        any_bucket = have.any(axis=0)
        # Each step uses the buckets present at it: steps sharing a set of buckets (usually all of
        # them, or a few sets while a bucket appears or goes) are evaluated together.
        used = np.nonzero(any_bucket)[0]
        patterns, which = np.unique(have[:, used], axis=1, return_inverse=True)
        for k in range(patterns.shape[1]):
            m, at = patterns[:, k], used[which.reshape(-1) == k]
            values[gid, at] = bucket_quantile(q[at], uppers[m], counts[np.ix_(m, at)])
        present[gid] = any_bucket
    return Vector(keys, values, present)


def _sgn(v: F64) -> F64:
    return np.where(np.isnan(v), np.nan, np.sign(v))


MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": _sgn,
    "acos": np.arccos,
    "acosh": np.arccosh,
    "asin": np.arcsin,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "cos": np.cos,
    "cosh": np.cosh,
    "sin": np.sin,
    "sinh": np.sinh,
    "tan": np.tan,
    "tanh": np.tanh,
    "deg": np.degrees,
    "rad": np.radians,
}

INSTANT_FUNCTIONS: dict[str, InstantFn] = {
    **{name: _map(fn) for name, fn in MATH.items()},
    "clamp": _clamp,
    "clamp_min": _clamp_one(upper=False),
    "clamp_max": _clamp_one(upper=True),
    "round": _round,
    "time": _time,
    "pi": _pi,
    "vector": _vector,
    "scalar": _scalar_fn,
    "timestamp": _timestamp,
    "sort": _sort(descending=False),
    "sort_desc": _sort(descending=True),
    "sort_by_label": _sort_by_label(descending=False),
    "sort_by_label_desc": _sort_by_label(descending=True),
    "label_replace": _label_replace,
    "label_join": _label_join,
    "histogram_quantile": _histogram_quantile,
    **{
        name: _date(name)
        for name in (
            "year",
            "month",
            "day_of_month",
            "day_of_year",
            "day_of_week",
            "days_in_month",
            "hour",
            "minute",
        )
    },
}

# These return their input's order; an instant query must not re-sort their result.
ORDERING_FUNCTIONS = frozenset({"sort", "sort_desc", "sort_by_label", "sort_by_label_desc"})
