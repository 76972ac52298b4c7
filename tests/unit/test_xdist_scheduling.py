"""The work units pytest-xdist hands to `make test`'s workers (tests/xdist_scheduling.py)."""

from __future__ import annotations

from tests.xdist_scheduling import module_runs


def test_a_module_split_by_the_local_gateway_makes_two_units_in_collection_order() -> None:
    collection = [
        "tests/unit/test_a.py::test_one",
        "tests/unit/test_a.py::test_two[x]",
        "tests/infra/test_b.py::test_synth_only",
        "tests/infra/test_b.py::test_on_the_gateway",
        "tests/integration/test_c.py::test_one",
        "tests/infra/test_b.py::Suite::test_after_another_module",
    ]
    scopes = module_runs(collection)
    assert scopes == {
        "tests/unit/test_a.py::test_one": "tests/unit/test_a.py#0",
        "tests/unit/test_a.py::test_two[x]": "tests/unit/test_a.py#0",
        "tests/infra/test_b.py::test_synth_only": "tests/infra/test_b.py#0",
        "tests/infra/test_b.py::test_on_the_gateway": "tests/infra/test_b.py#0",
        "tests/integration/test_c.py::test_one": "tests/integration/test_c.py#0",
        "tests/infra/test_b.py::Suite::test_after_another_module": "tests/infra/test_b.py#1",
    }
    # units in the order of their first test, the order the scheduler hands them out in: a
    # worker runs its tests in collection order
    assert list(dict.fromkeys(scopes.values())) == [
        "tests/unit/test_a.py#0",
        "tests/infra/test_b.py#0",
        "tests/integration/test_c.py#0",
        "tests/infra/test_b.py#1",
    ]
