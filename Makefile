# NovaCron developer commands. `make demo` and `make test` bootstrap .venv on their own.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 9090
API_KEY ?= local-demo-admin-key

.PHONY: demo local test unit lint format bench synth clean

$(STAMP): pyproject.toml setup.py layers/novacron/protocols/_wirec.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## demo: the local stack + a simulated microservice estate + a live terminal summary
demo: $(STAMP)
	$(BIN)/novacron demo --port $(PORT) --api-key $(API_KEY)

## local: the local stack alone
local: $(STAMP)
	$(BIN)/novacron local --port $(PORT) --api-key $(API_KEY)

## test: lint, type-check and the whole test suite (unit, integration, end-to-end, infra)
test: $(STAMP) lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers functions infra bench

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: every benchmark in bench/, printing its figures
bench: $(STAMP)
	@for b in ingest protocols agent writer compression freshness promql_windows query cost detect_eval detect_latency forecast_eval service_eval noise; do echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

synth: $(STAMP)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/python -m infra.app

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
