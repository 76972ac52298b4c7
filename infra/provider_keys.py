"""Store the upstream provider API keys in the provider-keys secret (`make put-provider-keys`).

Input: a JSON object {"<provider deployment name>": "<api key>", ...}, read from --file or
standard input (never from the command line, so keys stay out of shell history). The whole
secret value is replaced. Nothing of a key is printed.

    make put-provider-keys PROVIDER_KEYS_FILE=keys.json
    make put-provider-keys < keys.json

The secret is found through the data stack's `ProviderKeysSecretName` output; AWS_PROFILE,
AWS_REGION and AWS_ENDPOINT_URL (LocalStack) apply as usual.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra import DATA_STACK_NAME, REPO_ROOT
from infra.config import GatewayConfig
from infra.stack_outputs import stack_output

OUTPUT_KEY = "ProviderKeysSecretName"


def parse_keys(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"provider keys are not valid JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(value, dict) or not value:
        raise SystemExit('provider keys must be a non-empty JSON object {"<deployment>": "<api key>"}')
    for name, key in value.items():
        if isinstance(key, dict) and key.get("type") == "service_account":
            # a Vertex AI deployment's key: the service account's JSON key, kept as its text
            value[name] = key = json.dumps(key)
        if not isinstance(key, str) or not key.strip():
            raise SystemExit(f"the key of provider {name!r} must be a non-empty string")
    return value


def configured_providers() -> set[str]:
    context = json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})
    return set(GatewayConfig.from_mapping(context).providers)


def secret_name_from_stack(client: Any, stack_name: str) -> str:
    return stack_output(client, stack_name, OUTPUT_KEY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, help="JSON file with the keys (default: standard input)")
    parser.add_argument("--stack", default=DATA_STACK_NAME, help="data stack name (default: %(default)s)")
    parser.add_argument("--secret-id", help="secret name or ARN (default: the stack's output)")
    args = parser.parse_args(argv)

    text = args.file.read_text() if args.file else sys.stdin.read()
    keys = parse_keys(text)
    unknown = sorted(set(keys) - configured_providers())
    if unknown:
        print(
            f"warning: not in cdk.json's providers, unused until configured: {', '.join(unknown)}",
            file=sys.stderr,
        )

    import boto3  # deferred: only this command needs AWS credentials
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.session.Session()
        secret_id = args.secret_id or secret_name_from_stack(session.client("cloudformation"), args.stack)
        response = session.client("secretsmanager").put_secret_value(
            SecretId=secret_id, SecretString=json.dumps(keys)
        )
    except (BotoCoreError, ClientError) as error:  # their messages never include the request body
        raise SystemExit(f"could not store the provider keys: {error}") from None
    print(f"stored keys for {', '.join(sorted(keys))} in {secret_id} (version {response['VersionId']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
