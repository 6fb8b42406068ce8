"""The service call graph: declared, from RPC metrics, and the relations correlation uses."""

from __future__ import annotations

from novacron.alert.topology import Topology
from novacron.simulate import Estate


def test_relations_follow_call_edges_either_way_but_not_between_siblings() -> None:
    # Given frontend → checkout → {payment, catalog → postgres}
    graph = Topology.declared({"frontend": ["checkout"], "checkout": ["payment", "catalog"], "catalog": ["postgres"]})

    # Then distances run along the edges in either direction
    assert graph.distance("frontend", "postgres") == 3
    assert graph.distance("postgres", "checkout") == 2
    assert graph.distance("payment", "payment") == 0
    # and services that only share a caller are unrelated
    assert graph.distance("payment", "catalog") is None
    assert graph.dependants("postgres") == {"catalog", "checkout", "frontend"}
    assert graph.dependencies("checkout") == {"payment", "catalog", "postgres"}


def test_services_sharing_a_dependency_are_related_through_it() -> None:
    # Given two services that both call the database (and nothing else in common)
    graph = Topology.declared({"inventory": ["postgres"], "user": ["postgres", "redis"], "cart": ["redis"]})

    # Then each is two hops from the other (one down to the database, one back up), and the redis
    # and database sides meet through user only (which is one hop above each)
    assert graph.distance("inventory", "user") == 2
    assert graph.distance("user", "cart") == 2
    assert graph.distance("inventory", "cart") is None
    assert graph.distance("user", "redis") == 1


def test_the_graph_from_rpc_client_series_is_the_simulated_estates_own() -> None:
    # Given the series the simulated shop exports
    estate = Estate(seed=1)
    series = [
        (("__name__", "rpc_client_requests_total"), ("service", caller), ("target", callee))
        for caller, callee in estate.edges()
    ]
    series.append((("__name__", "up"), ("service", "frontend")))  # no callee: no edge

    # When the graph is built from them
    graph = Topology.from_call_series(series)

    # Then it has exactly the estate's edges, and who feels a fault matches the simulator's view
    assert graph.edges() == sorted(estate.edges())
    assert graph.dependants("postgres") == estate.upstream("postgres")


def test_declared_and_discovered_edges_merge_and_self_calls_are_dropped() -> None:
    # Given a declared graph and a discovered one with an extra edge and a self-call
    declared = Topology.declared({"a": ["b"]})
    discovered = Topology.from_edges([("b", "c"), ("c", "c")])

    # When merged
    graph = declared.merged(discovered)

    # Then both edges are there, the self-call is not
    assert graph.edges() == [("a", "b"), ("b", "c")]
    assert graph.services() == {"a", "b", "c"}
