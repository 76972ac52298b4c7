# CDK targets: included from the Makefile, which defines BIN and the venv target.
# The CDK CLI and cdklocal come from package.json (pinned, installed into ./node_modules).
NODE_BIN := node_modules/.bin
CDK := $(NODE_BIN)/cdk
CDKLOCAL := $(NODE_BIN)/cdklocal
CDK_STAMP := node_modules/.installed
DATA_STACK := OpenAIGatewayData
API_STACK := OpenAIGatewayApi
# Extra CDK CLI arguments, e.g. CDK_FLAGS="--profile prod -c log_level=DEBUG".
CDK_FLAGS ?=

.PHONY: cdk-cli bootstrap put-provider-keys e2e-deployed localstack-e2e

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

# LocalStack on localhost:4566 (AWS_ENDPOINT_URL to change it) must be running. cdklocal
# uploads the assets through AWS_ENDPOINT_URL_S3 (CDK >= 2.177 reads it): LocalStack's S3
# host name on the same port, unless set.
LOCALSTACK_URL = $(or $(AWS_ENDPOINT_URL),http://localhost:4566)
LOCALSTACK_PORT = $(lastword $(subst :, ,$(LOCALSTACK_URL)))
localstack-deploy localstack-e2e: export AWS_ENDPOINT_URL ?= http://localhost:4566
localstack-deploy: export AWS_ENDPOINT_URL_S3 ?= http://s3.localhost.localstack.cloud:$(LOCALSTACK_PORT)
localstack-deploy localstack-e2e: export AWS_DEFAULT_REGION ?= us-east-1
localstack-deploy localstack-e2e: export AWS_ACCESS_KEY_ID ?= test
localstack-deploy localstack-e2e: export AWS_SECRET_ACCESS_KEY ?= test
localstack-deploy: venv $(CDK_STAMP)
	@echo "LocalStack: AWS_ENDPOINT_URL=$$AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3=$$AWS_ENDPOINT_URL_S3" \
		"AWS_DEFAULT_REGION=$$AWS_DEFAULT_REGION (set them to change)"
	$(CDKLOCAL) bootstrap $(CDK_FLAGS)
	$(CDKLOCAL) deploy --all --require-approval never $(CDK_FLAGS)

# The end-to-end suite against the deployed stack: its ApiUrl output and master key. Stops
# with infra.stack_outputs' message (and status 1) when either cannot be read.
e2e-deployed: venv
	@url="$$($(BIN)/python -m infra.stack_outputs api-url)" \
		&& key="$$($(BIN)/python -m infra.stack_outputs master-key)" \
		&& echo "e2e against $$url" \
		&& $(MAKE) --no-print-directory e2e BASE_URL="$$url" API_KEY="$$key"

# The same against LocalStack (after make localstack-deploy and make put-provider-keys with
# AWS_ENDPOINT_URL set the same way).
localstack-e2e: venv
	@$(MAKE) --no-print-directory e2e-deployed

# PROVIDER_KEYS_FILE=keys.json, or the JSON on standard input; see infra/provider_keys.py.
put-provider-keys: venv
	$(BIN)/python -m infra.provider_keys $(if $(PROVIDER_KEYS_FILE),--file $(PROVIDER_KEYS_FILE))
