"""The route tree: which routes (receiver, grouping, timers) an alert's labels go to.

Alertmanager's semantics (``dispatch/route.go``):

- a node matches when all its matchers accept the labels; its children are tried in order, depth first;
  the first matching child stops the search unless it has ``continue: true``;
- a matching node none of whose children match is itself a result (so the root catches everything);
- options inherit from the parent: receiver, ``group_by`` (``['...']`` groups by every label),
  ``group_wait`` (30s), ``group_interval`` (5m), ``repeat_interval`` (4h); the time intervals do not;
- a route's key is its parent's key, ``/``, and its sorted matchers (``{}/{severity="page"}``): the
  prefix of every group key, exactly as Alertmanager builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from novacron.alert.amconfig import RouteConfig
from novacron.alert.matchers import AlertMatcher, matchers_string, matches_labels, sorted_matchers

DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0


@dataclass(frozen=True)
class RouteOpts:
    """What a matching route decides for an alert."""

    receiver: str
    group_by: frozenset[str] = frozenset()
    group_by_all: bool = False
    group_wait: float = DEFAULT_GROUP_WAIT_S
    group_interval: float = DEFAULT_GROUP_INTERVAL_S
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL_S
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels an alert is grouped by on this route."""
        if self.group_by_all:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.group_by}


@dataclass(frozen=True)
class Route:
    """One node of the built tree, options resolved against its ancestors."""

    opts: RouteOpts
    matchers: tuple[AlertMatcher, ...]
    continue_: bool
    key: str
    id: str
    routes: tuple[Route, ...] = field(default=())

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes the labels go to, in Alertmanager's order (empty when this node does not match)."""
        if not matches_labels(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found += matched
            if matched and not child.continue_:
                break
        return found or [self]

    def walk(self) -> list[Route]:
        """Every node, depth first, this one first."""
        out = [self]
        for child in self.routes:
            out += child.walk()
        return out


def build_routes(config: RouteConfig) -> Route:
    """The tree of a (validated) root route configuration."""
    return _build(config, None, None, 0)


def _build(cr: RouteConfig, parent_opts: RouteOpts | None, parent_key: str | None, position: int) -> Route:
    base = parent_opts or RouteOpts(receiver="")
    group_by, group_by_all = base.group_by, base.group_by_all
    if cr.group_by is not None:
        group_by, group_by_all = frozenset(cr.group_by), cr.group_by_all
    opts = RouteOpts(
        receiver=cr.receiver or base.receiver,
        group_by=group_by,
        group_by_all=group_by_all,
        group_wait=base.group_wait if cr.group_wait is None else cr.group_wait,
        group_interval=base.group_interval if cr.group_interval is None else cr.group_interval,
        repeat_interval=base.repeat_interval if cr.repeat_interval is None else cr.repeat_interval,
        mute_time_intervals=cr.mute_time_intervals,
        active_time_intervals=cr.active_time_intervals,
    )
    matchers = tuple(sorted_matchers(cr.matchers))
    own = matchers_string(matchers)
    key = own if parent_key is None else f"{parent_key}/{own}"
    route_id = key if parent_key is None else f"{key}/{position}"
    children = tuple(_build(child, opts, key, i) for i, child in enumerate(cr.routes))
    return Route(opts, matchers, cr.continue_, key, route_id, children)


def receivers_for(root: Route, labels: Mapping[str, str]) -> list[str]:
    """The receivers of the routes the labels go to, in order (``amtool config routes test``'s answer)."""
    return [route.opts.receiver for route in root.match(labels)]
