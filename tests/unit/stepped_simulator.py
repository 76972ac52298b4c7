"""The simulator on a SteppedClock, for the tests that drive a batch's time themselves.

A test module takes the fixtures as names of its own (`clock, sim = stepped_simulator.clock,
stepped_simulator.sim`), which also win over a `sim` of a conftest; `batch_phase` (10
seconds, tests/unit/conftest.py) is the time a batch spends in each state, and a module
overrides it to step otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devserver.simulator import Simulator, SimulatorConfig, SteppedClock


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def sim(clock: SteppedClock, batch_phase: float) -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(port=0, batch_phase_seconds=batch_phase, clock=clock)) as running:
        yield running
