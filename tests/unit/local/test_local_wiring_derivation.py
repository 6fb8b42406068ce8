"""Names, environments, handler loading and schedule events derived from the wiring."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from novacron.local.handlers import LocalFunction, handler_path, load_handler, make_context, repo_root
from novacron.local.resources import (
    function_environment,
    physical_name,
    runtime_environment,
    wiring_environment,
)
from novacron.local.scheduler import scheduled_event
from novacron.wiring import WIRING, Function, Schedule, Wiring


def _wiring(*functions: Function) -> Wiring:
    return Wiring(streams=(), tables=(), buckets=(), queues=(), functions=functions, consumers=(), routes=())


def test_physical_names_are_prefixed():
    assert physical_name("metrics") == "novacron-metrics"
    assert physical_name("metrics", "dev") == "dev-metrics"


def test_function_environment_maps_variables_to_local_names():
    # Given the declared ingest function / When its environment is derived for prefix "t"
    env = function_environment(WIRING.function("ingest"), "t")
    # Then each variable names the local physical resource
    assert env == {
        "NOVACRON_KEYS_TABLE": "t-api-keys",
        "NOVACRON_METRICS_STREAM": "t-metrics",
        "NOVACRON_SETTINGS_TABLE": "t-tenant-settings",
        "NOVACRON_INDEX_TABLE": "t-series-index",
        "NOVACRON_PII_SECRET": "t-pii-key",
    }


def test_union_of_the_declared_environments_is_consistent():
    # Given the real wiring / Then one process can serve every function
    env = wiring_environment(WIRING)
    assert env["NOVACRON_BLOCKS_TABLE"] == "novacron-blocks"
    assert env["NOVACRON_KEYS_TABLE"] == "novacron-api-keys"


def test_conflicting_environments_are_refused():
    # Given two functions that give one variable two meanings
    wiring = _wiring(
        Function("a", code="x", handler="h.f", environment={"TABLE": "one"}),
        Function("b", code="x", handler="h.f", environment={"TABLE": "two"}),
    )
    # Then deriving the shared environment fails loudly
    with pytest.raises(ValueError, match="TABLE"):
        wiring_environment(wiring)


def test_runtime_environment_points_at_moto_and_silences_emf():
    env = runtime_environment("http://127.0.0.1:1234")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "NovaCron"
    assert "POWERTOOLS_DEV" not in env


def test_repo_root_holds_the_layers_folder():
    assert (repo_root() / "layers" / "novacron" / "wiring.py").is_file()


@pytest.fixture
def two_handler_modules(tmp_path: Path) -> tuple[Function, Function]:
    # Two functions whose modules are both called handler.py, like the real ones
    for name in ("alpha", "beta"):
        folder = tmp_path / "functions" / name
        folder.mkdir(parents=True)
        (folder / "handler.py").write_text(
            f"def lambda_handler(event, context):\n    return {{'from': {name!r}, 'fn': context.function_name}}\n"
        )
    return (
        Function("alpha", code="functions/alpha", handler="handler.lambda_handler", timeout_s=3),
        Function("beta", code="functions/beta", handler="handler.lambda_handler"),
    )


def test_same_named_modules_load_separately(tmp_path, two_handler_modules):
    # Given two functions with a handler.py each / When both are loaded by path
    alpha, beta = two_handler_modules
    first, second = load_handler(alpha, tmp_path), load_handler(beta, tmp_path)
    # Then each call reaches its own module, registered under a unique name
    assert first({}, make_context(alpha))["from"] == "alpha"
    assert second({}, make_context(beta))["from"] == "beta"
    assert first.__module__ != second.__module__
    assert first.__module__ in sys.modules


def test_local_function_passes_a_lambda_like_context(tmp_path, two_handler_modules):
    alpha, _ = two_handler_modules
    assert LocalFunction.load(alpha, tmp_path, prefix="p").invoke({}) == {"from": "alpha", "fn": "p-alpha"}


def test_context_counts_down_from_the_declared_timeout(two_handler_modules):
    # Given a function with a 3 s timeout / When a context is made
    alpha, _ = two_handler_modules
    context = make_context(alpha)
    # Then it carries Lambda's attributes and the remaining time shrinks from 3000 ms
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:novacron-alpha"
    assert context.memory_limit_in_mb == alpha.memory_mb
    assert context.function_version == "$LATEST"
    assert context.log_group_name == "/aws/lambda/novacron-alpha"
    assert len(context.aws_request_id) == 36
    first = context.get_remaining_time_in_millis()
    assert 2900 < first <= 3000
    time.sleep(0.02)
    assert context.get_remaining_time_in_millis() < first
    assert make_context(alpha).aws_request_id != context.aws_request_id


def test_missing_handler_is_reported_with_its_path(tmp_path):
    fn = Function("ghost", code="functions/ghost", handler="handler.lambda_handler")
    assert handler_path(fn, tmp_path) == tmp_path / "functions/ghost/handler.py"
    with pytest.raises(FileNotFoundError, match="ghost"):
        load_handler(fn, tmp_path)


def test_scheduled_event_names_its_schedule():
    event = scheduled_event(Schedule("rollup", "writer", every_s=60), prefix="t")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.scheduler"
    assert event["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/t-rollup"]
    assert event["detail"] == {}
