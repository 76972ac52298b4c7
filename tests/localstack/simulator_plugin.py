"""pytest plugin of `make localstack-test`: the provider simulator, in the pytest process, for the session.

The deployment's providers point at LOCALSTACK_TEST_HOST:LOCALSTACK_SIM_PORT (chosen before the
synth: loopback, or Docker's bridge address with LocalStack's Docker executor), where the functions
in LocalStack reach it; being in this process lets a test step its clock.
Loaded with `-p tests.localstack.simulator_plugin`; without LOCALSTACK_SIM_PORT it does nothing.
"""

from __future__ import annotations

import os

import pytest

from devserver.simulator import Simulator, SimulatorConfig
from tests.localstack.run import SIM_KEYS

# Each OpenAI/Azure batch phase, in real time: long enough that the e2e suite cancels a batch
# before it ends, even through LocalStack (a batch ends in about 9 s).
BATCH_PHASE_SECONDS = 3.0

running: Simulator | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global running
    port = os.environ.get("LOCALSTACK_SIM_PORT")
    if not port:
        return
    running = Simulator(
        SimulatorConfig(
            port=int(port),
            host=os.environ.get("LOCALSTACK_TEST_HOST") or "127.0.0.1",
            openai_key=SIM_KEYS["openai"],
            azure_key=SIM_KEYS["azure"],
            anthropic_key=SIM_KEYS["anthropic"],
            batch_phase_seconds=BATCH_PHASE_SECONDS,
            storage_dir=os.environ.get("LOCALSTACK_SIM_DIR"),
        )
    ).start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global running
    if running is not None:
        running.stop()
        running = None
