"""Fixtures shared by the integration and end-to-end suites.

`local_gateway` starts the whole gateway in this process once per test session: the HTTP
front end with the API Gateway emulation, the real handlers, an embedded moto server and
the provider simulator (OpenAI and Azure forms). Only one gateway runs per process, so
every suite that needs a server asks for this fixture instead of starting its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devserver.server import LocalGateway

LOCAL_MASTER_KEY = "sk-integration-master"
# Short enough that a test waits a few seconds for a batch, long enough to observe each phase.
SIMULATOR_PHASE_SECONDS = 0.3
# The upstream timeout the functions use under test, so a slow-provider fault turns into 504 fast.
UPSTREAM_TIMEOUT_SECONDS = "2"
# Webhook retries a few tenths of a second apart instead of minutes.
WEBHOOK_RETRY_SCHEDULE = "0.2"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own choice from --dist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With pytest-xdist, whatever --dist says: runs of a module's tests in collection order."""
    from tests.xdist_scheduling import ModuleRunScheduling

    return ModuleRunScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the local gateway run after all others, in their order: moto's `mock_aws()`
    (unit tests, tests/infra/test_stack_outputs.py) resets the in-process backends that the
    gateway's embedded moto server serves, which would wipe its table under later tests. With
    pytest-xdist each worker keeps this order (tests/xdist_scheduling.py)."""
    items.sort(key=lambda item: "local_gateway" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def local_gateway() -> Iterator[LocalGateway]:
    # The openai SDK peeks at sys.modules["httpx"]; the server threads import httpx on the first
    # provider call, and a client in this same process could see it half initialized.
    import httpx  # noqa: F401

    from devserver import start_gateway

    saved = os.environ.get("GATEWAY_UPSTREAM_TIMEOUT_SECONDS")
    os.environ["GATEWAY_UPSTREAM_TIMEOUT_SECONDS"] = UPSTREAM_TIMEOUT_SECONDS
    os.environ["GATEWAY_WEBHOOK_RETRY_SCHEDULE"] = WEBHOOK_RETRY_SCHEDULE
    # provider_env={} : never pick up a developer's real provider keys in tests.
    gateway = start_gateway(
        master_key=LOCAL_MASTER_KEY,
        provider_env={},
        simulator_phase_seconds=SIMULATOR_PHASE_SECONDS,
        aws_endpoint_url=None,
        # no background watcher pass racing the other suites' requests: the tests that need
        # it start it (tests/integration/test_batch_events.py), or run a pass themselves
        watch_interval_seconds=0,
    )
    try:
        yield gateway
    finally:
        gateway.stop()
        if saved is None:
            os.environ.pop("GATEWAY_UPSTREAM_TIMEOUT_SECONDS", None)
        else:
            os.environ["GATEWAY_UPSTREAM_TIMEOUT_SECONDS"] = saved
