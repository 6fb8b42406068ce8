"""Per label set on the wire: whether a sender's series is admitted, in which form, to which bucket.

One Admission serves one (tenant, policy version, key labels): its answers are remembered by label
bytes, so a warm function decides each series once and the ingest hot path stays a dict lookup per
series. An answer is a small integer code (see below) so that the per-request work on it is numpy.
Cardinality decisions that may change (a series refused or awaiting the existence check) are not
remembered here: the gate keeps them until its next refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from novacron.ingest.cardinality import Candidate, CardinalityGate, Decision, Refusal
from novacron.ingest.policy import IngestPolicy
from novacron.ingest.validate import RejectReason, SeriesValidator, Verdict
from novacron.protocols import wire
from novacron.protocols.remote_write_pb import RawTimeSeries
from novacron.series import PARTITION_BUCKETS, metric_name

LabelScrub: TypeAlias = Callable[[Sequence[tuple[str, str]]], Sequence[tuple[str, str]]]

# Codes: the partition bucket of a series admitted (0..63), with flags above it; negative codes for
# series not admitted. PARTITION_BUCKETS is a power of two, so a mask recovers the bucket.
BUCKET_MASK = PARTITION_BUCKETS - 1
REWRITE = PARTITION_BUCKETS  # admitted with labels added: its encoding is rewritten
FILLED_UNKNOWN = 2 * PARTITION_BUCKETS  # a required label was set to "unknown"
INVALID = -1  # invalid, or missing a required label (mode "reject")
CHECK = -2  # over a cardinality limit: admitted if the index has it (see CardinalityGate)
REFUSED = -3  # over a cardinality limit and new


class _Codes(dict[bytes, int]):
    """A bounded memo of final codes; transient ones (CHECK, REFUSED) are computed every time."""

    def __init__(self, compute: Callable[[bytes], int], max_size: int) -> None:
        super().__init__()
        self._compute = compute
        self._max_size = max_size

    def __missing__(self, key: bytes) -> int:
        code = self._compute(key)
        if code >= INVALID:
            if len(self) >= self._max_size:
                self.clear()
            self[key] = code
        return code


class Admission:
    """Validation, label completion and the cardinality gate of one sender, remembered by label bytes."""

    def __init__(
        self,
        policy: IngestPolicy,
        key_labels: tuple[tuple[str, str], ...],
        gate: CardinalityGate | None,
        cache_size: int = 1_000_000,
        scrub: LabelScrub | None = None,
    ) -> None:
        self.policy = policy
        self.gate = gate
        self.validator = SeriesValidator(cache_size=cache_size, fill=policy.label_fill(dict(key_labels)), scrub=scrub)
        self._codes = _Codes(self._decide, cache_size)
        # A dict lookup on a hit: ``map(admission.code_of, label_bytes)`` runs at C speed when warm.
        self.code_of: Callable[[bytes], int] = self._codes.__getitem__

    def _decide(self, label_bytes: bytes) -> int:
        verdict = self.validator.check(label_bytes)
        if not verdict.valid:
            return INVALID
        code = _admitted_code(verdict)
        if self.gate is None:
            return code
        decision = self.gate.admit(self.policy, metric_name(verdict.labels), verdict.series_u64)
        if decision is Decision.ADMITTED:
            return code
        return CHECK if decision is Decision.CHECK else REFUSED

    def settle(self, label_bytes: Sequence[bytes]) -> list[int]:
        """Final codes of series that got CHECK: admitted (and remembered) if they exist, else REFUSED."""
        if self.gate is None:
            raise RuntimeError("no cardinality gate to settle with")
        verdicts = [self.validator.check(lb) for lb in label_bytes]
        candidates = [Candidate(metric_name(v.labels), v.series_id, v.series_u64) for v in verdicts]
        admitted = self.gate.settle(candidates)
        codes = []
        for lb, verdict in zip(label_bytes, verdicts, strict=True):
            if verdict.series_u64 in admitted:
                codes.append(self._codes.setdefault(lb, _admitted_code(verdict)))
            else:
                codes.append(REFUSED)
        return codes

    def refusal(self, label_bytes: bytes) -> Refusal:
        """Why a series coded REFUSED is over a limit."""
        verdict = self.validator.check(label_bytes)
        found = self.gate.refusal(self.policy, metric_name(verdict.labels)) if self.gate is not None else None
        if found is None:  # the counts moved under it; the refusal still stands until the next refresh
            found = Refusal(RejectReason.CARDINALITY_METRIC, "over a cardinality limit")
        return found

    def rewrite_all(self, contents: Sequence[bytes], label_bytes: Sequence[bytes]) -> list[bytes]:
        """``rewrite`` of many series coded REWRITE (a prefix swap each, in the usual case)."""
        prefixes = list(map(self.validator.rewritten_of, label_bytes))
        swapped = swap_prefixes(list(contents), list(label_bytes), prefixes)
        if swapped is not None:
            return swapped
        return list(map(self.rewrite, contents, label_bytes))

    def rewrite(self, content: bytes, label_bytes: bytes) -> bytes:
        """The encoding of a series coded REWRITE, with its completed labels and the same samples."""
        rewritten = self.validator.rewritten_of(label_bytes)
        if content.startswith(label_bytes):
            # Labels first, as every client writes them: swap that prefix.
            return rewritten + content[len(label_bytes) :]
        # Label fields elsewhere in the message: drop them all and put the new ones first.
        series = RawTimeSeries.FromString(content)
        del series.labels[:]
        rest: bytes = series.SerializeToString()
        return rewritten + rest


def swap_prefixes(contents: list[bytes], old: list[bytes], new: list[bytes]) -> list[bytes] | None:
    """``new[i] + contents[i][len(old[i]):]`` for every series, or None if one does not start with ``old[i]``.

    Runs in the C extension when it is in use (one allocation per series, no intermediate slice).
    """
    native = wire.native_module()
    if native is not None:
        swapped: list[bytes] | None = native.swap_prefixes(contents, old, new)
        return swapped
    return swap_prefixes_python(contents, old, new)


def swap_prefixes_python(contents: list[bytes], old: list[bytes], new: list[bytes]) -> list[bytes] | None:
    """The reference of the C extension's ``swap_prefixes``."""
    if not all(map(bytes.startswith, contents, old)):
        return None
    return [w + c[len(o) :] for c, o, w in zip(contents, old, new, strict=True)]


def _admitted_code(verdict: Verdict) -> int:
    code = verdict.bucket
    if verdict.rewritten:
        code |= REWRITE
    if verdict.filled_unknown:
        code |= FILLED_UNKNOWN
    return code


class AdmissionCache:
    """A small LRU of Admissions by (tenant, policy version, key labels)."""

    def __init__(self, max_entries: int = 8, cache_size: int = 1_000_000) -> None:
        self._entries: dict[tuple[str, int, tuple[tuple[str, str], ...]], Admission] = {}
        self._max_entries = max_entries
        self._cache_size = cache_size

    def get(
        self,
        tenant: str,
        policy: IngestPolicy,
        key_labels: tuple[tuple[str, str], ...],
        gate: CardinalityGate | None,
        scrub: LabelScrub | None = None,
    ) -> Admission:
        """The Admission of a sender, made on first use (``scrub`` is the tenant's PII scrubbing of labels)."""
        key = (tenant, policy.version, key_labels)
        found = self._entries.pop(key, None)
        if found is None or (found.policy is not policy and found.policy != policy):
            found = Admission(policy, key_labels, gate, self._cache_size, scrub)
        self._entries[key] = found  # most recently used last
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]
        return found
