"""An Isolation Forest (Liu, Ting and Zhou, 2008) in pure numpy: fit, score, explain, serialise.

Each tree is grown on a random subsample (``sample_size`` rows, without replacement) to a height
limit of ``ceil(log2(sample_size))``: a node splits on a random feature -- among the features that are
not constant in the node -- at a threshold drawn uniformly between that feature's minimum and maximum
in the node. A row's path length in a tree is the depth of the leaf it reaches plus ``c(size)``, the
average path length of an unsuccessful search among the ``size`` training rows left in that leaf. The
score is ``s(x, n) = 2 ** (-E[h(x)] / c(n))``: about 0.5 for ordinary rows, near 1 for rows that are
isolated in a few splits.

One deliberate refinement, for rows outside the range of the training data: plain isolation trees send
such a row down the extreme branch and score it like the most extreme training row, however far out it
is. Here each node also keeps the range ``[lo, hi]`` of its sample along its split feature; a row
``d`` beyond that range would have been cut off by that split with probability ``d / (d + hi - lo)``
had it been in the sample (the threshold is uniform over the widened range), so its expected path
length ends at that node with that probability. Inside the range nothing changes: training rows score
exactly as in Liu et al.

Trees are stored together as flat arrays (``feature``, ``threshold``, ``left``, ``right``, ``size``,
``lo``, ``hi`` per node; a leaf has ``feature == -1`` and points to itself), in pre-order per tree, so
scoring many rows walks all rows through all trees one depth level at a time.

``contributions`` explains a score per feature: how much replacing that feature's value by the
training median lowers the score, clipped at 0 and normalised to sum 1 (when no single replacement
lowers it -- the row is only odd as a whole -- the features split on along its paths in the trees,
weighted by 1/depth, are used instead). It reads as "had the request rate been usual, this would
not have been odd".

Serialised with numpy's ``.npy`` format for arrays (never pickle) inside a zlib-compressed container:
thresholds and ranges as float32 (the model is fit with them rounded so that a round-trip scores
identically), tree links rebuilt from the pre-order layout.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

EULER_GAMMA = 0.5772156649015329
MAGIC = b"NCIF"
FORMAT_VERSION = 1


def average_path_length(n: npt.ArrayLike) -> Floats:
    """``c(n)``: the average path length of an unsuccessful binary-search-tree search among ``n`` rows."""
    size = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(size)
    out[size == 2] = 1.0
    big = size > 2
    out[big] = 2.0 * (np.log(size[big] - 1.0) + EULER_GAMMA) - 2.0 * (size[big] - 1.0) / size[big]
    return out


class _Builder:
    """Grows the trees of one forest into growing Python lists (pre-order per tree)."""

    def __init__(self, rng: np.random.Generator, height_limit: int) -> None:
        self.rng = rng
        self.height_limit = height_limit
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.right: list[int] = []
        self.size: list[int] = []

    def grow(self, rows: Floats, depth: int) -> int:
        """Append the subtree of ``rows`` in pre-order; its root's index."""
        index = len(self.feature)
        self.feature.append(-1)
        self.threshold.append(0.0)
        self.lo.append(0.0)
        self.hi.append(0.0)
        self.right.append(index)
        self.size.append(len(rows))
        if depth >= self.height_limit or len(rows) <= 1:
            return index
        mins, maxs = rows.min(axis=0), rows.max(axis=0)
        # Rounded as they will be stored, so that a serialised forest splits exactly the same way.
        mins32, maxs32 = mins.astype(np.float32), maxs.astype(np.float32)
        varying = np.flatnonzero(mins32 < maxs32)
        if varying.size == 0:
            return index
        f = int(varying[self.rng.integers(varying.size)])
        lo, hi = float(mins32[f]), float(maxs32[f])
        threshold = float(np.float32(self.rng.uniform(lo, hi)))
        if not lo < threshold <= hi:
            threshold = hi
        goes_left = rows[:, f] < threshold
        self.feature[index] = f
        self.threshold[index] = threshold
        self.lo[index] = lo
        self.hi[index] = hi
        self.grow(rows[goes_left], depth + 1)
        self.right[index] = self.grow(rows[~goes_left], depth + 1)
        return index


class IsolationForest:
    """A fitted forest: flat node arrays of all trees, the roots, and the training medians."""

    def __init__(
        self,
        feature: npt.NDArray[np.int64],
        threshold: Floats,
        lo: Floats,
        hi: Floats,
        right: npt.NDArray[np.int64],
        size: npt.NDArray[np.int64],
        roots: npt.NDArray[np.int64],
        sample_size: int,
        median: Floats,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.lo = lo
        self.hi = hi
        self.right = right
        self.size = size
        self.roots = roots
        self.sample_size = sample_size
        self.median = median
        # Pre-order: an internal node's left child follows it; a leaf points to itself.
        nodes = np.arange(feature.size, dtype=np.int64)
        leaf = feature < 0
        self.left = np.where(leaf, nodes, nodes + 1)
        self.right = np.where(leaf, nodes, right)
        self.leaf_adjustment = np.where(leaf, average_path_length(size), 0.0)
        self.width = np.where(leaf, 0.0, hi - lo)
        self.normaliser = float(average_path_length(sample_size))
        self.height_limit = max(1, math.ceil(math.log2(max(sample_size, 2))))

    @property
    def n_features(self) -> int:
        """How many columns the forest was fit on."""
        return int(self.median.size)

    @property
    def n_trees(self) -> int:
        """How many trees the forest holds."""
        return int(self.roots.size)

    @classmethod
    def fit(
        cls,
        X: Floats,  # noqa: N803 - the usual name of a data matrix
        n_trees: int = 100,
        sample_size: int = 256,
        seed: int = 0,
    ) -> IsolationForest:
        """Fit ``n_trees`` trees on subsamples of the rows of ``X`` (finite values, rows x features).

        Deterministic for a given ``seed`` and ``X``.
        """
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 1:
            raise ValueError(f"fit needs a 2-D array of at least 2 rows and 1 column, got shape {data.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError("fit needs finite values; impute missing values first")
        if n_trees < 1 or sample_size < 2:
            raise ValueError("n_trees must be >= 1 and sample_size >= 2")
        rng = np.random.default_rng(seed)
        psi = min(sample_size, data.shape[0])
        builder = _Builder(rng, max(1, math.ceil(math.log2(psi))))
        roots = []
        for _ in range(n_trees):
            rows = rng.choice(data.shape[0], size=psi, replace=False)
            roots.append(builder.grow(data[rows], 0))
        return cls(
            feature=np.asarray(builder.feature, dtype=np.int64),
            threshold=np.asarray(builder.threshold, dtype=np.float64),
            lo=np.asarray(builder.lo, dtype=np.float64),
            hi=np.asarray(builder.hi, dtype=np.float64),
            right=np.asarray(builder.right, dtype=np.int64),
            size=np.asarray(builder.size, dtype=np.int64),
            roots=np.asarray(roots, dtype=np.int64),
            sample_size=psi,
            median=np.median(data, axis=0),
        )

    def _check(self, rows: Floats) -> Floats:
        data = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if data.ndim != 2 or data.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {np.shape(rows)}")
        if not np.all(np.isfinite(data)):
            raise ValueError("rows must be finite; impute missing values first")
        return data

    def _walk(self, data: Floats) -> tuple[Floats, npt.NDArray[np.int64], Floats]:
        """Expected path length per (row, tree), the leaf reached, and the chance of reaching it."""
        rows = np.arange(data.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (data.shape[0], self.n_trees)).copy()
        expected = np.zeros(node.shape)
        survive = np.ones(node.shape)
        for depth in range(self.height_limit):
            feature = self.feature[node]
            internal = feature >= 0
            if not internal.any():
                break
            value = data[rows, np.maximum(feature, 0)]
            outside = np.maximum(self.lo[node] - value, 0.0) + np.maximum(value - self.hi[node], 0.0)
            cut = np.where(internal & (outside > 0), outside / (outside + self.width[node] + 1e-12), 0.0)
            expected += survive * cut * (depth + 1)  # cut off by this split: a path of depth + 1
            survive *= 1.0 - cut
            node = np.where(value < self.threshold[node], self.left[node], self.right[node])
        depth_reached = self._depths[node]
        expected += survive * (depth_reached + self.leaf_adjustment[node])
        return expected, node, survive

    @property
    def _depths(self) -> npt.NDArray[np.float64]:
        """The depth of every node (computed once)."""
        cached: npt.NDArray[np.float64] | None = getattr(self, "_depth_cache", None)
        if cached is None:
            depth = np.zeros(self.feature.size)
            for index in range(self.feature.size):  # pre-order: parents come before children
                if self.feature[index] >= 0:
                    depth[self.left[index]] = depth[index] + 1
                    depth[self.right[index]] = depth[index] + 1
            self._depth_cache = depth
            cached = depth
        return cached

    def path_lengths(self, X: Floats) -> Floats:  # noqa: N803
        """The mean (over trees) expected path length of each row, leaf adjustment ``c(size)`` included."""
        expected, _, _ = self._walk(self._check(X))
        mean: Floats = expected.mean(axis=1)
        return mean

    def score(self, X: Floats) -> Floats:  # noqa: N803
        """Liu et al.'s anomaly score ``2 ** (-E[h(x)] / c(n))`` of each row, in (0, 1]."""
        scores: Floats = np.exp2(-self.path_lengths(X) / self.normaliser)
        return scores

    def contributions(self, x: Floats) -> Floats:
        """Each feature's share of one row's score: non-negative, summing to 1 (see the module docstring)."""
        row = self._check(x)[0]
        variants = np.repeat(row[None, :], self.n_features + 1, axis=0)
        columns = np.arange(self.n_features)
        variants[columns + 1, columns] = self.median
        scores = self.score(variants)
        drops = np.clip(scores[0] - scores[1:], 0.0, None)
        if drops.sum() > 0:
            share: Floats = drops / drops.sum()
            return share
        return self._split_shares(row)

    def _split_shares(self, row: Floats) -> Floats:
        """Splits on each feature along the row's paths, weighted by 1/depth, normalised."""
        weights = np.zeros(self.n_features)
        node = self.roots.copy()
        for depth in range(self.height_limit):
            feature = self.feature[node]
            internal = feature >= 0
            np.add.at(weights, feature[internal], 1.0 / (depth + 1))
            value = row[np.maximum(feature, 0)]
            node = np.where(value < self.threshold[node], self.left[node], self.right[node])
        total = weights.sum()
        result: Floats = weights / total if total > 0 else np.full(self.n_features, 1.0 / self.n_features)
        return result

    def to_bytes(self) -> bytes:
        """The forest as compact bytes: a magic, a version and zlib-compressed ``.npy`` arrays (no pickle)."""
        internal = self.feature >= 0
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "feature": self.feature.astype(np.int16),
            "threshold": self.threshold[internal].astype(np.float32),
            "lo": self.lo[internal].astype(np.float32),
            "hi": self.hi[internal].astype(np.float32),
            "size": self.size[~internal].astype(np.uint32),
            "roots": self.roots.astype(np.uint32),
            "median": self.median.astype(np.float64),
        }
        meta: dict[str, object] = {"sample_size": self.sample_size, "arrays": list(arrays)}
        return MAGIC + struct.pack("<B", FORMAT_VERSION) + zlib.compress(pack_arrays(meta, arrays), 9)

    @classmethod
    def from_bytes(cls, data: bytes) -> IsolationForest:
        """The inverse of :meth:`to_bytes`; ``ValueError`` on anything else."""
        if data[:4] != MAGIC or len(data) < 5:
            raise ValueError("not a serialised IsolationForest")
        if data[4] != FORMAT_VERSION:
            raise ValueError(f"unsupported IsolationForest format version {data[4]}")
        meta, arrays = unpack_arrays(zlib.decompress(data[5:]))
        feature = arrays["feature"].astype(np.int64)
        internal = feature >= 0
        full = {name: np.zeros(feature.size) for name in ("threshold", "lo", "hi")}
        for name, values in full.items():
            values[internal] = arrays[name].astype(np.float64)
        size = np.zeros(feature.size, dtype=np.int64)
        size[~internal] = arrays["size"]
        return cls(
            feature=feature,
            threshold=full["threshold"],
            lo=full["lo"],
            hi=full["hi"],
            right=_right_children(feature),
            size=size,
            roots=arrays["roots"].astype(np.int64),
            sample_size=int(str(meta["sample_size"])),
            median=arrays["median"].astype(np.float64),
        )


def _right_children(feature: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Rebuild each internal node's right child from the pre-order layout (leaves point to themselves)."""
    right = np.arange(feature.size, dtype=np.int64)
    pending: list[int] = []  # internal nodes whose left subtree is still being read
    for index in range(feature.size):
        if feature[index] >= 0:
            pending.append(index)
            continue
        # A leaf closes subtrees: the next node is the right child of the innermost open node.
        if pending and index + 1 < feature.size:
            right[pending.pop()] = index + 1
    return right


def pack_arrays(meta: dict[str, object], arrays: dict[str, npt.NDArray[np.generic]]) -> bytes:
    """A JSON header (length-prefixed) followed by each array in ``.npy`` format (pickle disabled)."""
    out = io.BytesIO()
    header = json.dumps(meta, sort_keys=True).encode()
    out.write(struct.pack("<I", len(header)))
    out.write(header)
    for values in arrays.values():
        np.save(out, np.ascontiguousarray(values), allow_pickle=False)
    return out.getvalue()


def unpack_arrays(data: bytes) -> tuple[dict[str, object], dict[str, npt.NDArray[np.generic]]]:
    """The inverse of :func:`pack_arrays` (the header's ``arrays`` names the arrays in order)."""
    (length,) = struct.unpack_from("<I", data)
    meta = json.loads(data[4 : 4 + length])
    stream = io.BytesIO(data[4 + length :])
    arrays = {name: np.load(stream, allow_pickle=False) for name in meta["arrays"]}
    return meta, arrays
