"""`make e2e-deployed` stops with a clear message, never testing something else, when it cannot
find the deployed stack: no credentials, or an AWS endpoint that does not answer."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from infra import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _clean_aws_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "E2E_"))}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        MAKEFLAGS="",
    )
    env.update(extra)
    return env


def _make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_credentials_it_fails_and_says_why() -> None:
    result = _make("e2e-deployed", _clean_aws_env())
    assert result.returncode != 0
    assert "Unable to locate credentials" in result.stderr and "make deploy" in result.stderr
    assert "Traceback" not in result.stderr
    assert "passed" not in result.stdout  # the suite never ran against the local simulator


def test_an_unreachable_endpoint_fails_and_names_it() -> None:
    env = _clean_aws_env(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_ENDPOINT_URL="http://127.0.0.1:9"
    )
    result = _make("localstack-e2e", env)
    assert result.returncode != 0
    assert "http://127.0.0.1:9" in result.stderr and "Traceback" not in result.stderr
    assert "passed" not in result.stdout
