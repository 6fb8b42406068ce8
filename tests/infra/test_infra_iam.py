"""Each function's role grants exactly the wiring's Access on the wiring's resources, nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from infra.permissions import Kind, actions_for
from novacron.wiring import WIRING, Access

pytestmark = pytest.mark.infra


def _statements(synthesized, function: str) -> list[dict[str, Any]]:
    """All statements of the function's role (inline default policy + any other attached policy)."""
    role = synthesized.stack.functions.by_name[function].role
    role_id = synthesized.logical_id(role)
    role_props = synthesized.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role_props, "no AWS managed policies on function roles"
    assert "Policies" not in role_props
    statements = []
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _resources(statement: dict[str, Any]) -> list[Any]:
    res = statement["Resource"]
    return res if isinstance(res, list) else [res]


def _actions(statement: dict[str, Any]) -> list[str]:
    act = statement["Action"]
    return act if isinstance(act, list) else [act]


def _granted(synthesized, function: str) -> dict[str, set[str]]:
    """Actions granted per logical id (or literal resource) referenced by the role's statements."""
    granted: dict[str, set[str]] = {}
    for statement in _statements(synthesized, function):
        assert statement["Effect"] == "Allow"
        for resource in _resources(statement):
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                key = resource["Fn::GetAtt"][0]
            elif isinstance(resource, dict) and "Ref" in resource:  # a secret's ARN
                key = resource["Ref"]
            elif isinstance(resource, dict) and "Fn::Join" in resource:
                key = resource["Fn::Join"][1][0]["Fn::GetAtt"][0] + resource["Fn::Join"][1][1]
            else:
                key = str(resource)
            granted.setdefault(key, set()).update(_actions(statement))
    return granted


def _logical(synthesized, name: str) -> str:
    res = synthesized.stack.resources
    for group in (res.streams, res.tables, res.buckets, res.queues, res.secrets, res.buses, res.topics):
        if name in group:
            return synthesized.logical_id(group[name])
    raise KeyError(name)


@pytest.mark.parametrize("function", [fn.name for fn in WIRING.functions])
def test_role_grants_exactly_the_declared_access(synthesized, function):
    decl = WIRING.function(function)
    granted = _granted(synthesized, function)
    stack = synthesized.stack
    expected: dict[str, set[str]] = {}
    for grant in decl.grants:
        kind = stack.resources.kind(grant.resource)
        actions = set(actions_for(kind, grant.access))
        logical_id = _logical(synthesized, grant.resource)
        if kind is Kind.BUCKET:
            for pattern in [f"{p}*" for p in grant.prefixes] or ["*"]:
                if actions - {"s3:ListBucket"}:
                    expected.setdefault(f"{logical_id}/{pattern}", set()).update(actions - {"s3:ListBucket"})
            if "s3:ListBucket" in actions:
                expected[logical_id] = {"s3:ListBucket"}
        else:
            expected[logical_id] = actions
    key_id = synthesized.logical_id(stack.resources.key)
    log_group_id = synthesized.logical_id(stack.functions.log_groups[function])
    assert granted.pop(log_group_id) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted.pop("*") == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    key_actions = granted.pop(key_id, set())
    assert key_actions <= {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"}
    assert bool(key_actions) == bool(decl.grants)
    assert granted == expected


def test_no_wildcard_actions(synthesized):
    for decl in WIRING.functions:
        for statement in _statements(synthesized, decl.name):
            assert not [a for a in _actions(statement) if "*" in a], statement


def _actions_on(synthesized, function: str, name: str) -> set[str]:
    granted = _granted(synthesized, function)
    logical_id = _logical(synthesized, name)
    # Object-level grants are on ``<bucket>/*`` or, for grants limited to key prefixes, ``<bucket>/<prefix>*``.
    return set().union(*(actions for key, actions in granted.items() if key.split("/", 1)[0] == logical_id))


def test_query_cannot_write_to_streams(synthesized):
    all_actions = {a for s in _statements(synthesized, "query") for a in _actions(s)}
    assert not {a for a in all_actions if a.startswith("kinesis:Put")}
    assert not {a for a in all_actions if a.startswith("kinesis:")}


def test_ingest_has_no_access_to_the_blocks_table(synthesized):
    assert _actions_on(synthesized, "ingest", "blocks") == set()
    assert not any(
        "dynamodb:" in a
        for s in _statements(synthesized, "ingest")
        for a in _actions(s)
        if _logical(synthesized, "blocks") in str(s["Resource"])
    )


def test_read_grants_are_read_only(synthesized):
    write_actions = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    for decl in WIRING.functions:
        for grant in decl.grants:
            if grant.access is Access.READ:
                assert not _actions_on(synthesized, decl.name, grant.resource) & write_actions, grant


def test_bucket_write_grants_only_put_objects(synthesized):
    res = synthesized.stack.resources
    for decl in WIRING.functions:
        for grant in decl.grants:
            if grant.access is Access.WRITE and grant.resource in res.buckets:
                granted = _actions_on(synthesized, decl.name, grant.resource)
                read = (
                    {"s3:GetObject", "s3:ListBucket"}
                    if any(g.resource == grant.resource and g.access is Access.READ for g in decl.grants)
                    else set()
                )
                assert granted - read == {
                    "s3:PutObject",
                    "s3:PutObjectTagging",  # the retention-class tag goes with the object
                    "s3:AbortMultipartUpload",
                }
