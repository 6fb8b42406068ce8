"""The service dependency graph that incidents are correlated over.

Edges point from a caller to the service it calls (``checkout → payment``). A fault travels against
the edges: when ``payment`` fails, ``checkout`` and everything that calls ``checkout`` feel it. The
graph is *declared* per tenant (a mapping of each service to the services it calls), and can be
completed from the metrics services already export about their calls: every series of an RPC client
metric that carries both the calling service and the callee (``rpc_client_requests_total{service,
target}`` in the simulated estate) is an edge. The graph from traces comes later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from novacron.series import Labels

# Label pairs that name a call's two ends, in the order they are tried.
CALL_LABELS = (("service", "target"), ("service", "peer_service"), ("job", "target"))


@dataclass(frozen=True)
class Topology:
    """A directed call graph: ``calls[a]`` are the services ``a`` calls."""

    calls: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def declared(cls, calls: Mapping[str, Iterable[str]]) -> Topology:
        """The graph of a declared mapping ``{service: [services it calls]}``."""
        return cls.from_edges((caller, callee) for caller, callees in calls.items() for callee in callees)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str]]) -> Topology:
        """The graph of (caller, callee) pairs; self-calls are dropped."""
        calls: dict[str, set[str]] = {}
        for caller, callee in edges:
            if caller and callee and caller != callee:
                calls.setdefault(caller, set()).add(callee)
        return cls({caller: frozenset(callees) for caller, callees in calls.items()})

    @classmethod
    def from_call_series(cls, series: Iterable[Labels]) -> Topology:
        """The edges named by RPC client series (a caller label and a callee label on one series)."""
        edges = []
        for labels in series:
            named = dict(labels)
            for caller_label, callee_label in CALL_LABELS:
                if caller_label in named and callee_label in named:
                    edges.append((named[caller_label], named[callee_label]))
                    break
        return cls.from_edges(edges)

    def merged(self, other: Topology) -> Topology:
        """The union of both graphs' edges."""
        return Topology.from_edges([*self.edges(), *other.edges()])

    def edges(self) -> list[tuple[str, str]]:
        """Every (caller, callee) pair, sorted."""
        return sorted((caller, callee) for caller, callees in self.calls.items() for callee in callees)

    def services(self) -> set[str]:
        """Every service named by an edge."""
        return {s for edge in self.edges() for s in edge}

    def dependencies(self, service: str) -> set[str]:
        """The services ``service`` calls, directly or through others."""
        return set(self._depths(service))

    def dependants(self, service: str) -> set[str]:
        """The services that call ``service``, directly or through others: who feels its faults."""
        callers: dict[str, set[str]] = {}
        for caller, callee in self.edges():
            callers.setdefault(callee, set()).add(caller)
        return self._reach(service, callers)

    def distance(self, a: str, b: str) -> int | None:
        """How closely a fault connects ``a`` and ``b``, in hops, or None when it does not.

        Along the call edges either way (one calls the other, directly or not), or through a shared
        dependency (both call ``c``: a fault on ``c`` shows on both), whichever is shorter. Two services
        that merely share a *caller* are not related: their faults are independent.
        """
        if a == b:
            return 0
        reach_a, reach_b = self._depths(a), self._depths(b)
        found = [d for d in (reach_a.get(b), reach_b.get(a)) if d is not None]
        found += [reach_a[c] + reach_b[c] for c in reach_a.keys() & reach_b.keys()]
        return min(found) if found else None

    def _depths(self, start: str) -> dict[str, int]:
        """Hops from ``start`` to every service it calls, directly or not (breadth first)."""
        depths: dict[str, int] = {}
        frontier, hops = {start}, 0
        while frontier:
            hops += 1
            frontier = {n for s in frontier for n in self.calls.get(s, ()) if n not in depths and n != start}
            for n in frontier:
                depths[n] = hops
        return depths

    @staticmethod
    def _reach(start: str, adjacency: Mapping[str, Iterable[str]]) -> set[str]:
        found: set[str] = set()
        todo = [start]
        while todo:
            for n in adjacency.get(todo.pop(), ()):
                if n not in found and n != start:
                    found.add(n)
                    todo.append(n)
        return found
