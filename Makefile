# Every target sets itself up: a fresh clone needs only python3 (3.11+) and, for the CDK
# targets, Node.js with npm.
SHELL := /bin/bash
# No "Entering directory" lines from sub-makes: make keys output stays pure JSON.
MAKEFLAGS += --no-print-directory
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 4000
# jsii only stays quiet about an end-of-life Node when told which major version to accept.
NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := $(NODE_MAJOR)

.PHONY: venv serve test lint typecheck unit integration infra-tests e2e synth deploy destroy metric-table \
	localstack-deploy bench keys openapi mutate clean clean-local soak pytest-suites console-browser

venv: $(STAMP)

$(STAMP): requirements.txt functions/requirements.txt
	@echo "Installing the Python dependencies into $(VENV) (first run, or requirements changed):"
	@echo "about 1-3 minutes, mostly aws-cdk-lib and moto. Later runs start at once."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)
	@echo "Dependencies installed."

# Data is kept in $(LOCAL_DATA) across restarts; FRESH=1 (or make clean-local) starts empty.
LOCAL_DATA ?= .local
serve: venv
	PORT=$(PORT) DEVSERVER_DATA_DIR=$(LOCAL_DATA) $(if $(filter 1 yes true,$(FRESH)),DEVSERVER_FRESH=1) $(BIN)/python -m devserver

clean-local:
	rm -rf $(LOCAL_DATA)

LINT_PATHS := functions devserver infra tests bench cli app.py

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q tests/integration tests/e2e

# The end-to-end suite against a deployed gateway: make e2e BASE_URL=https://… API_KEY=sk-…
# Without BASE_URL it runs against an in-process local server with the simulator.
e2e: venv
	@E2E_BASE_URL="$(BASE_URL)" E2E_API_KEY="$(API_KEY)" $(BIN)/pytest -q -p no:cacheprovider tests/e2e

infra-tests: venv
	$(BIN)/pytest -q tests/infra

# make test runs pytest on TEST_WORKERS pytest-xdist workers (auto: one per core, at most
# TEST_MAX_WORKERS; 0: in this process). A worker takes a module's tests at a time, those on the
# local gateway after all its others (tests/xdist_scheduling.py).
TEST_WORKERS ?= auto
TEST_MAX_WORKERS ?= 4
PYTEST_PARALLEL := -n $(TEST_WORKERS) --maxprocesses $(TEST_MAX_WORKERS)
# Other make targets that make test runs alongside pytest, each a suite that fails the build when
# it fails (e.g. TEST_ALONGSIDE=localstack-test); then each one's output is printed when it ends.
# make test runs localstack-test beside pytest (its own ports, directory and CDK_HOME).
TEST_ALONGSIDE ?= localstack-test

test: lint typecheck
	@$(MAKE) $(if $(TEST_ALONGSIDE),-j$(words pytest-suites $(TEST_ALONGSIDE)) --output-sync=target) \
		pytest-suites $(TEST_ALONGSIDE)

pytest-suites: venv console-browser
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) tests/unit tests/infra tests/integration tests/e2e

# The model-based test of the books (tests/unit/test_model_based.py) run long: raise
# MODEL_EXAMPLES / MODEL_STEPS for a longer soak. A failure is shrunk to its shortest sequence.
MODEL_EXAMPLES ?= 300
MODEL_STEPS ?= 60
soak: venv
	MODEL_EXAMPLES=$(MODEL_EXAMPLES) MODEL_STEPS=$(MODEL_STEPS) MODEL_SHRINK=1 $(BIN)/pytest -q -p no:cacheprovider tests/unit/test_model_based.py

include infra.mk

# The console's browser tests (tests/integration/test_console.py): Debian's headless Chromium
# and its driver (apt, when missing; sudo unless root), and axe-core (package.json, with the CDK CLI).
CHROMEDRIVER := /usr/bin/chromedriver
console-browser: $(CHROMEDRIVER) $(CDK_STAMP)

$(CHROMEDRIVER):
	@echo "Installing Chromium and chromium-driver for the console's browser tests (apt: a minute or two)..."
	@$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	@$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium chromium-driver

# Every benchmark (about 12 minutes; see bench/README.md). coldstart.py compares with litellm
# when LITELLM_PYTHON names an interpreter that has it.
bench: venv
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/moto_table_size.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/coldstart.py $(if $(LITELLM_PYTHON),--litellm-python $(LITELLM_PYTHON))
	$(BIN)/python bench/large_file.py
	$(BIN)/python bench/asset_sizes.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/split.py
	$(BIN)/python bench/settle.py
	$(BIN)/python bench/watcher.py
	$(BIN)/python bench/watcher_history.py
	$(BIN)/python bench/restart.py

# docs/openapi.json from the handlers' own schemas (tests/unit/test_openapi.py fails when it is stale)
openapi: venv
	$(BIN)/python -m infra.openapi --output docs/openapi.json

# README.md's metric table from functions/gateway/observability/metric_names.py
# (tests/unit/test_metric_table.py fails when it is stale)
metric-table: venv
	PYTHONPATH=functions $(BIN)/python -m gateway.observability.metric_table README.md

# Virtual keys: make keys ARGS="generate --alias team-a --duration 30d --providers openai"
# GATEWAY_URL / GATEWAY_MASTER_KEY point it at a deployed stack (default: make serve's, on
# $(PORT)). Prints only the JSON result, so `make -s keys ARGS=list | jq` works.
keys: venv
	@GATEWAY_URL="$${GATEWAY_URL:-http://127.0.0.1:$(PORT)}" $(BIN)/python -m cli.keys $(ARGS)

# Mutation testing of the security- and data-critical modules (about 25 minutes on 2 cores;
# not part of make test). Config and test selection: [tool.mutmut] in pyproject.toml; the score
# and the survivors are in bench/README.md. It runs in .mutate/, where functions/'s packages
# sit at the top, because mutmut names mutants after file paths and the tests import gateway.….
MUTATE_DIR := .mutate
mutate: venv
	rm -rf $(MUTATE_DIR) && mkdir -p $(MUTATE_DIR)
	cp -r functions/gateway functions/handlers devserver tests pyproject.toml $(MUTATE_DIR)/
	cd $(MUTATE_DIR) && nice -n 10 ../$(BIN)/mutmut run --max-children 2; \
		status=$$?; ../$(BIN)/mutmut results; exit $$status

clean:
	rm -rf $(MUTATE_DIR) $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .localstack
