# CDK targets: included from the Makefile, which defines BIN and the venv target.
# The CDK CLI comes from package.json (pinned, installed into ./node_modules).
NODE_BIN := node_modules/.bin
CDK := $(NODE_BIN)/cdk
CDK_STAMP := node_modules/.installed
DATA_STACK := OpenAIGatewayData
API_STACK := OpenAIGatewayApi
# Extra CDK CLI arguments, e.g. CDK_FLAGS="--profile prod -c log_level=DEBUG".
CDK_FLAGS ?=

.PHONY: cdk-cli bootstrap put-provider-keys e2e-deployed localstack-e2e localstack-test localstack-start \
	localstack-stop

$(CDK_STAMP): package.json package-lock.json
	@echo "Installing the pinned CDK CLI into node_modules (first run: about a minute)..."
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(CDK_STAMP)

# Writes cdk.out/; fails on any unacknowledged cdk-nag (AwsSolutions) error, or on a template
# over the resource budget (infra/resource_count.py prints the count per template).
synth: venv $(CDK_STAMP)
	$(CDK) synth --quiet $(CDK_FLAGS)
	$(BIN)/python -m infra.resource_count cdk.out

# Once per account and region, before the first deploy.
bootstrap: venv $(CDK_STAMP)
	$(CDK) bootstrap $(CDK_FLAGS)

# Both stacks, the data stack first.
deploy: venv $(CDK_STAMP)
	$(CDK) deploy --all $(CDK_FLAGS)

# The API stack only: the data stack (table, secrets, bucket) is kept, and its resources are
# RETAINed even if that stack is deleted by hand.
destroy: venv $(CDK_STAMP)
	$(CDK) destroy $(API_STACK) $(CDK_FLAGS)

# LocalStack (README, "LocalStack"): its core in its own Python 3.13 venv (.localstack/venv,
# tests/localstack/setup.sh), in host mode on 127.0.0.1; Lambda through LocalStack's Docker
# executor where Docker answers, else as local python3.12 processes (tests/localstack/).
# localstack-test: both stacks deployed into a LocalStack of its own (free ports, its own
# directory and CDK_HOME, so it can run beside the pytest suite), tests/e2e and
# tests/localstack/test_deployed.py against it, LocalStack stopped. About 6 minutes.
LOCALSTACK_RUN := $(BIN)/python -m tests.localstack.run
localstack-test: venv $(CDK_STAMP)
	$(LOCALSTACK_RUN) test $(PYTEST_ARGS)

# A LocalStack left running on 127.0.0.1:$(LOCALSTACK_PORT) for localstack-deploy/-e2e.
LOCALSTACK_PORT ?= 4566
localstack-start: venv
	LOCALSTACK_PORT=$(LOCALSTACK_PORT) $(LOCALSTACK_RUN) start

localstack-stop: venv
	$(LOCALSTACK_RUN) stop

# Both stacks, as cdk.json configures them, into the LocalStack at AWS_ENDPOINT_URL (default
# 127.0.0.1:4566: make localstack-start, or `localstack start` with Docker), synthesized for
# this machine's architecture; assets uploaded path-style to the same address.
localstack-deploy: venv $(CDK_STAMP)
	$(LOCALSTACK_RUN) deploy

# The end-to-end suite against the deployed stack: its ApiUrl output and master key. Stops
# with infra.stack_outputs' message (and status 1) when either cannot be read.
e2e-deployed: venv
	@url="$$($(BIN)/python -m infra.stack_outputs api-url)" \
		&& key="$$($(BIN)/python -m infra.stack_outputs master-key)" \
		&& echo "e2e against $$url" \
		&& $(MAKE) --no-print-directory e2e BASE_URL="$$url" API_KEY="$$key"

# The end-to-end suite against the API deployed by localstack-deploy, through LocalStack's
# path-style execute-api URL (after make put-provider-keys with AWS_ENDPOINT_URL set).
localstack-e2e: venv
	$(LOCALSTACK_RUN) e2e $(PYTEST_ARGS)

# PROVIDER_KEYS_FILE=keys.json, or the JSON on standard input; see infra/provider_keys.py.
put-provider-keys: venv
	$(BIN)/python -m infra.provider_keys $(if $(PROVIDER_KEYS_FILE),--file $(PROVIDER_KEYS_FILE))
