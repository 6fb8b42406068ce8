"""Inhibition: a firing *source* alert mutes the *target* alerts that agree with it on the ``equal`` labels.

Alertmanager's semantics (``inhibit/inhibit.go``):

- a target alert is muted by a rule when the rule's target matchers accept it and some *firing* alert
  accepted by the source matchers has the same value (absent reads as ``""``) for every ``equal`` label;
- an alert that matches both sides cannot be inhibited by an alert that also matches both sides, so a
  rule never lets an alert (or its peers of the same kind) inhibit itself;
- resolved alerts never inhibit; silenced or inhibited alerts still do (Alertmanager takes the
  sources from every alert it holds, whatever their own state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from novacron.alert.matchers import AlertMatcher, matches_labels


@dataclass(frozen=True)
class InhibitRule:
    """One ``inhibit_rules`` entry, the legacy ``source_match``/``_re`` forms already turned into matchers."""

    source_matchers: tuple[AlertMatcher, ...]
    target_matchers: tuple[AlertMatcher, ...]
    equal: tuple[str, ...] = ()

    def inhibitor_of(self, labels: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> Mapping[str, str] | None:
        """The labels of a firing alert that inhibits ``labels`` under this rule, or ``None``."""
        if not matches_labels(self.target_matchers, labels):
            return None
        # Alertmanager's "exclude two-sided match": a target that is itself a source is only inhibited
        # by sources that are not targets, so that such alerts do not inhibit each other.
        two_sided = matches_labels(self.source_matchers, labels)
        for source in firing:
            if not matches_labels(self.source_matchers, source):
                continue
            if any(source.get(name, "") != labels.get(name, "") for name in self.equal):
                continue
            if two_sided and matches_labels(self.target_matchers, source):
                continue
            return source
        return None


def inhibited(
    labels: Mapping[str, str], rules: Iterable[InhibitRule], firing: Iterable[Mapping[str, str]]
) -> Mapping[str, str] | None:
    """The labels of the firing alert that inhibits ``labels`` under any rule, or ``None``.

    ``firing`` are the label sets of every alert firing now (resolved ones must be left out).
    """
    sources = list(firing)
    for rule in rules:
        found = rule.inhibitor_of(labels, sources)
        if found is not None:
            return found
    return None
