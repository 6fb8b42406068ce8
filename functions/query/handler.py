"""Query function: the Prometheus HTTP API over the hot tier."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.auth import Role
from novacron.config import QueryConfig
from novacron.http import json_response, principal_of, request_params, require_role
from novacron.query import prom_api, status
from novacron.storage.reader import HotTierReader

config = QueryConfig.from_env()
logger = Logger(service="novacron-query")
tracer = Tracer()
app = APIGatewayHttpResolver()
keys = DynamoKeyStore(config.keys_table, config.key_cache_ttl_s)
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
app.use([require_role(keys, lambda _m, _p: Role.READ)])


def _reader() -> HotTierReader:
    return HotTierReader(principal_of(app).tenant, blocks, index)


def _answer(result: tuple[int, dict[str, Any]]) -> Response[str]:
    return json_response(*result)


@app.route("/api/v1/query", method=["GET", "POST"])
def query() -> Response[str]:
    return _answer(prom_api.query(_reader(), request_params(app)))


@app.route("/api/v1/query_range", method=["GET", "POST"])
def query_range() -> Response[str]:
    return _answer(prom_api.query_range(_reader(), request_params(app)))


@app.route("/api/v1/series", method=["GET", "POST"])
def series() -> Response[str]:
    return _answer(prom_api.series(_reader(), request_params(app)))


@app.route("/api/v1/labels", method=["GET", "POST"])
def labels() -> Response[str]:
    return _answer(prom_api.labels(_reader(), request_params(app)))


@app.get("/api/v1/label/<name>/values")
def label_values(name: str) -> Response[str]:
    return _answer(prom_api.label_values(_reader(), name, request_params(app)))


@app.get("/api/v1/status/buildinfo")
def buildinfo() -> Response[str]:
    return _answer(prom_api.buildinfo())


@app.get("/api/v1/status/tsdb")
def tsdb_status() -> Response[str]:
    return _answer(status.tsdb_status(_reader(), request_params(app), int(time.time() * 1000)))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
