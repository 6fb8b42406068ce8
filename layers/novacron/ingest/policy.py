"""A tenant's ingest policy: the labels every series carries, and how many series the tenant may have.

Stored in the tenant-settings table (``pk`` = tenant, ``sk`` = ``ingest-policy``) and versioned: every
change bumps ``version``, and a change made against an older version is refused (409), so two admins
editing at once cannot overwrite each other. See docs/ingest-policy.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novacron.ingest.pii import PiiRules
from novacron.ingest.validate import LABEL_NAME_RE, METRIC_NAME_RE, LabelFill, Limits

POLICY_KEY = "ingest-policy"
DEFAULT_REQUIRED_LABELS = ("source", "environment", "owner")
MAX_DEFAULT_LABELS = 16
# Fields an admin sets with PUT; the rest are kept by the server (approvals have their own routes).
READ_ONLY_FIELDS = ("approvals", "updated_by", "updated_at")


class LabelMode(StrEnum):
    """What happens to a series lacking a required label that no key label or default supplies."""

    DEFAULT = "default"  # the label is set to "unknown" (and counted)
    REJECT = "reject"  # the series is rejected with a 400 naming the label


class PolicyConflict(Exception):
    """The policy changed since the caller read it."""


def labels_problem(labels: Mapping[str, str], what: str) -> str | None:
    """Why a set of default labels (of a key or a policy) is unacceptable, or None."""
    if len(labels) > MAX_DEFAULT_LABELS:
        return f"{what}: at most {MAX_DEFAULT_LABELS} labels, got {len(labels)}"
    for name, value in labels.items():
        problem = label_name_problem(name)
        if problem is not None:
            return f"{what}: {problem}"
        if not isinstance(value, str) or not value:
            return f"{what}: label {name!r} needs a non-empty string value"
        if len(name.encode()) + 1 + len(value.encode()) > Limits().max_label_pair_bytes:
            return f"{what}: label {name!r} is longer than {Limits().max_label_pair_bytes} bytes with its value"
    return None


def label_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a label the platform adds to series, or None."""
    if not LABEL_NAME_RE.match(name) or len(name) > Limits().max_label_name_length:
        return f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]* (at most 256 characters)"
    if name.startswith("__"):
        return f"label name {name!r} is reserved (names starting with '__')"
    return None


class Approval(BaseModel):
    """A metric allowed more series than ``max_series_per_metric``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(gt=0, le=100_000_000)
    reason: str = Field(min_length=1, max_length=500)
    approved_by: str = ""
    approved_at: int = 0


class IngestPolicy(BaseModel):
    """Label enrichment and cardinality limits of one tenant (the defaults apply until one is stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=0, ge=0)
    required_labels: tuple[str, ...] = DEFAULT_REQUIRED_LABELS
    mode: LabelMode = LabelMode.DEFAULT
    label_modes: dict[str, LabelMode] = Field(default_factory=dict)  # per required label, over ``mode``
    defaults: dict[str, str] = Field(default_factory=dict)  # added to series lacking them (key labels win)
    max_series_per_tenant: int = Field(default=1_000_000, gt=0, le=1_000_000_000)
    max_series_per_metric: int = Field(default=50_000, gt=0, le=100_000_000)
    approvals: dict[str, Approval] = Field(default_factory=dict)
    # PII scrubbing of metric label values and span attributes (docs/pii.md): on by default.
    pii: PiiRules = Field(default_factory=PiiRules)
    updated_by: str = ""  # key id of the last change
    updated_at: int = 0  # epoch seconds

    @field_validator("required_labels")
    @classmethod
    def _required_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(names) > MAX_DEFAULT_LABELS:
            raise ValueError(f"at most {MAX_DEFAULT_LABELS} required labels")
        if len(set(names)) != len(names):
            raise ValueError("required labels must be distinct")
        for name in names:
            problem = label_name_problem(name)
            if problem is not None:
                raise ValueError(problem)
        return names

    @field_validator("defaults")
    @classmethod
    def _default_labels(cls, defaults: dict[str, str]) -> dict[str, str]:
        problem = labels_problem(defaults, "defaults")
        if problem is not None:
            raise ValueError(problem)
        return defaults

    @field_validator("approvals")
    @classmethod
    def _approved_metrics(cls, approvals: dict[str, Approval]) -> dict[str, Approval]:
        for metric in approvals:
            if not METRIC_NAME_RE.match(metric):
                raise ValueError(f"invalid metric name {metric!r}")
        return approvals

    @model_validator(mode="after")
    def _modes_of_required_labels(self) -> IngestPolicy:
        unknown = sorted(set(self.label_modes) - set(self.required_labels))
        if unknown:
            raise ValueError(f"label_modes names labels that are not required: {', '.join(unknown)}")
        return self

    def mode_of(self, label: str) -> LabelMode:
        """The mode of one required label."""
        return self.label_modes.get(label, self.mode)

    def metric_limit(self, metric: str) -> int:
        """Series a metric may have per day: its approved limit, else ``max_series_per_metric``."""
        approval = self.approvals.get(metric)
        return approval.limit if approval is not None else self.max_series_per_metric

    def label_fill(self, key_labels: Mapping[str, str]) -> LabelFill:
        """How this policy completes the series of a key with ``key_labels`` (they win over ``defaults``)."""
        add = {**self.defaults, **key_labels}
        missing = [name for name in self.required_labels if name not in add]
        return LabelFill(
            add=tuple(sorted(add.items())),
            unknown=tuple(n for n in missing if self.mode_of(n) is LabelMode.DEFAULT),
            reject=tuple(n for n in missing if self.mode_of(n) is LabelMode.REJECT),
        )

    def document(self) -> dict[str, Any]:
        """The JSON form the API answers with and the table stores."""
        return self.model_dump(mode="json")


def field_errors(exc: ValidationError) -> list[str]:
    """Readable ``field: message`` lines of a pydantic error, for 400 answers."""
    out = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        out.append(f"{where}: {error['msg']}")
    return out


def check_based_on(body: Any, current_version: int, what: str) -> dict[str, Any]:
    """``body`` if it is a JSON object based on ``current_version`` (versioned settings' PUT bodies).

    Raises ValueError for a body that is not an object or lacks ``version``, PolicyConflict when
    ``version`` is not the current one.
    """
    if not isinstance(body, dict):
        raise ValueError(f"body must be a JSON object (the {what}, as GET returns it)")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError("version: required, the version you read (GET), so that concurrent edits are detected")
    if version != current_version:
        raise PolicyConflict(
            f"the {what} is at version {current_version}, the change was made to version {version}; "
            "read it again (GET) and reapply the change"
        )
    return body


def updated_policy(current: IngestPolicy, body: Any, by: str, now: int) -> IngestPolicy:
    """The policy an admin's PUT body makes of ``current``.

    The body holds the editable fields (omitted ones take their defaults) and the ``version`` it was
    based on; ``approvals`` and the ``updated_*`` fields are the server's and are kept. Raises
    ValueError for a body that is not an object or lacks ``version``, PolicyConflict when
    ``version`` is not the current one, and pydantic's ValidationError for invalid fields.
    """
    check_based_on(body, current.version, "policy")
    editable = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}
    return IngestPolicy.model_validate(
        {
            **editable,
            "version": current.version + 1,
            "approvals": current.document()["approvals"],
            "updated_by": by,
            "updated_at": now,
        }
    )


def with_approval(current: IngestPolicy, metric: str, approval: Approval | None, by: str, now: int) -> IngestPolicy:
    """``current`` with ``metric``'s approval set (or removed when None), as a new version."""
    approvals = dict(current.approvals)
    if approval is None:
        approvals.pop(metric, None)
    else:
        approvals[metric] = approval
    return current.model_copy(
        update={"approvals": approvals, "version": current.version + 1, "updated_by": by, "updated_at": now}
    )
