"""Read what a deployed gateway's clients need: `python -m infra.stack_outputs api-url|master-key`.

`api-url` prints the API stack's ApiUrl output; `master-key` prints the master key from
Secrets Manager (the secret's name is a data stack output), for `make e2e-deployed` and
`make localstack-e2e`. AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL (LocalStack) apply.

Any failure (no credentials, no region, no such stack, an unreachable endpoint) ends with one
line on standard error and exit status 1, so that the make target stops instead of testing
something else.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from infra import API_STACK_NAME, DATA_STACK_NAME

API_URL_OUTPUT = "ApiUrl"
MASTER_KEY_SECRET_OUTPUT = "MasterKeySecretName"


def stack_output(client: Any, stack_name: str, output_key: str) -> str:
    """One output of a deployed stack; exits with a hint when the stack or output is missing."""
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == output_key:
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack_name} has no output {output_key}: deploy it first (make deploy)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["api-url", "master-key"])
    args = parser.parse_args(argv)

    import boto3  # deferred: only this command needs AWS credentials
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # Fail fast on an unreachable endpoint: this is a lookup, not a long-running call.
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
    session = boto3.session.Session()
    try:
        cloudformation = session.client("cloudformation", config=config)
        if args.what == "api-url":
            print(stack_output(cloudformation, API_STACK_NAME, API_URL_OUTPUT).rstrip("/"))
        else:
            secret_id = stack_output(cloudformation, DATA_STACK_NAME, MASTER_KEY_SECRET_OUTPUT)
            secrets = session.client("secretsmanager", config=config)
            print(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    except (BotoCoreError, ClientError) as error:
        where = session.region_name or "no region set (AWS_REGION)"
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        raise SystemExit(
            f"Cannot read the deployed gateway's outputs ({where}"
            f"{', endpoint ' + endpoint if endpoint else ''}): {error}. "
            "Check AWS credentials and region, and that the stacks are deployed (make deploy)."
        ) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
