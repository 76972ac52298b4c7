"""Where the end-to-end suite runs: a deployed gateway, or the local server.

`make e2e BASE_URL=https://… API_KEY=…` sets E2E_BASE_URL and E2E_API_KEY and the suite
drives that deployment (AWS, LocalStack, or a `make serve` running elsewhere). Without them,
as in `make test`, it starts the local server with the provider simulator in-process.

Other knobs, for real providers where a batch can take hours:
  E2E_PROVIDERS        comma-separated provider names to exercise (default "openai,azure")
  E2E_MODEL            the model (Azure: the deployment name) in the batch lines (default gpt-4o-mini)
  E2E_WAIT_SECONDS     how long to wait for a batch to complete (default 60; 0 skips waiting)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Target:
    url: str  # the API root: {url}/v1/files, {url}/{provider}/v1/files
    api_key: str
    providers: tuple[str, ...]
    model: str
    wait_seconds: float
    local: bool


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    common = {
        "providers": tuple(
            p.strip() for p in _setting("E2E_PROVIDERS", "openai,azure").split(",") if p.strip()
        ),
        "model": _setting("E2E_MODEL", "gpt-4o-mini"),
        "wait_seconds": float(_setting("E2E_WAIT_SECONDS", "60")),
    }
    base_url = os.environ.get("E2E_BASE_URL")
    if base_url:
        api_key = os.environ.get("E2E_API_KEY")
        if not api_key:
            pytest.exit("E2E_BASE_URL is set but E2E_API_KEY is not (make e2e BASE_URL=… API_KEY=…)", 2)
        url = base_url.rstrip("/").removesuffix("/v1")
        return Target(url=url, api_key=api_key, local=False, **common)  # type: ignore[arg-type]
    gateway = request.getfixturevalue("local_gateway")
    return Target(url=gateway.url, api_key=gateway.master_key, local=True, **common)  # type: ignore[arg-type]
