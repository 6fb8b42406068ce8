"""Feedback on anomaly episodes through the real admin and query handlers against moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from novacron.auth import key_id_of
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.wiring import ANOMALIES_TABLE, DETECT, WIRING
from tests.builders import NOW
from tests.integration.handlers.conftest import Stack, body_json, kinesis_record
from tests.integration.handlers.test_detect import STEP_MS, T0, spiky_record
from tests.integration.handlers.test_retention import admin

WINDOW = urlencode({"start": (T0 - STEP_MS) / 1000, "end": NOW / 1000})


def feedback_path(anomaly_id: str) -> str:
    return f"/api/v1/anomalies/{anomaly_id}/feedback"


def listed(stack: Stack, key: str) -> list[dict[str, Any]]:
    answer = stack.http(stack.query, "GET", "/api/v1/anomalies", key=key, query=WINDOW)
    assert answer["statusCode"] == 200, body_json(answer)
    data: list[dict[str, Any]] = body_json(answer)["data"]
    return data


@pytest.fixture
def episode(stack: Stack) -> str:
    """The id of acme's one anomaly episode, found by the detect function."""
    detect = load_handler(WIRING.function(DETECT))
    detect({"Records": [kinesis_record(spiky_record(), "1")]}, make_context(WIRING.function(DETECT)))
    [anomaly] = listed(stack, stack.keys["acme-read"])
    assert anomaly["feedback"] is None
    anomaly_id: str = anomaly["id"]
    return anomaly_id


def test_feedback_is_stored_and_the_list_shows_the_latest(stack: Stack, episode: str) -> None:
    key = stack.keys["acme-admin"]
    # When an admin marks the episode a false positive, then changes their mind
    first = admin(stack, "POST", feedback_path(episode), key, {"verdict": "false_positive", "comment": "deploy"})
    assert first["statusCode"] == 200, body_json(first)
    assert body_json(first)["data"]["verdict"] == "false_positive"
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(physical_name(ANOMALIES_TABLE))
    [item] = [i for i in table.scan()["Items"] if i["sk"].startswith("feedback#")]
    # Then it is a separate item of the tenant, keyed by the episode and the time, with who (the key id) and when
    assert item["pk"] == "acme"
    assert item["sk"].startswith(f"feedback#{episode}#")
    stored = json.loads(item["feedback"])
    assert (stored["by"], stored["verdict"], stored["comment"]) == (key_id_of(key), "false_positive", "deploy")
    assert key not in item["feedback"]
    # And the list shows the episode's feedback to readers
    [anomaly] = listed(stack, stack.keys["acme-read"])
    assert anomaly["feedback"]["verdict"] == "false_positive"
    # When an older verdict is also stored (given before this one), the list still shows the latest
    older = {**stored, "verdict": "true_positive", "at": 1}
    table.put_item(Item={**item, "sk": f"feedback#{episode}#{1:010d}", "feedback": json.dumps(older)})
    assert listed(stack, stack.keys["acme-read"])[0]["feedback"]["verdict"] == "false_positive"


def test_an_unknown_episode_is_a_404_and_a_bad_body_a_400_naming_the_field(stack: Stack, episode: str) -> None:
    key = stack.keys["acme-admin"]
    unknown = admin(stack, "POST", feedback_path("0123456789abcdef01234567"), key, {"verdict": "true_positive"})
    assert unknown["statusCode"] == 404
    assert "no anomaly" in body_json(unknown)["error"]
    assert admin(stack, "POST", feedback_path("not-an-id"), key, {"verdict": "true_positive"})["statusCode"] == 404
    # Another tenant's admin cannot see acme's episode as its own
    other = admin(stack, "POST", feedback_path(episode), stack.keys["globex-admin"], {"verdict": "true_positive"})
    assert other["statusCode"] == 404
    for body, field in (
        ({"verdict": "maybe"}, "verdict"),
        ({}, "verdict"),
        ({"verdict": "true_positive", "comment": 3}, "comment"),
        ({"verdict": "true_positive", "score": 1}, "unknown fields: score"),
    ):
        answer = admin(stack, "POST", feedback_path(episode), key, body)
        assert answer["statusCode"] == 400, body
        assert field in body_json(answer)["error"]
    raw = stack.http(stack.admin, "POST", feedback_path(episode), key=key, body=b"{", headers={})
    assert raw["statusCode"] == 400
    # And nothing was stored
    assert listed(stack, stack.keys["acme-read"])[0]["feedback"] is None


def test_feedback_needs_an_admin_key_of_the_tenant(stack: Stack, episode: str) -> None:
    body = {"verdict": "true_positive"}
    assert admin(stack, "POST", feedback_path(episode), None, body)["statusCode"] == 401
    assert admin(stack, "POST", feedback_path(episode), stack.keys["acme-read"], body)["statusCode"] == 403
    assert admin(stack, "POST", feedback_path(episode), stack.keys["acme-ingest"], body)["statusCode"] == 403
    cross = admin(stack, "POST", feedback_path(episode), stack.keys["globex-admin"], body, query="tenant=acme")
    assert cross["statusCode"] == 403
