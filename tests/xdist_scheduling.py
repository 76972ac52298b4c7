"""How pytest-xdist hands the suite to its workers (`make test`: `pytest -n auto`).

A work unit is a run of consecutive tests of one module in the collection order, handed out in
that order. The collection puts every test on the local gateway after all others
(tests/conftest.py), so a module with tests on both sides makes two units, and each worker runs
its tests on its own gateway after all its others: moto's `mock_aws()` resets the in-process
backends that gateway's embedded moto server serves. A module-scoped fixture is built once per
unit, on one worker.

(xdist's own `--dist loadgroup` cannot express this here: pytest 9 no longer lets it rename
the items to carry their group.)"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from xdist.scheduler import LoadScopeScheduling


def module_runs(collection: Sequence[str]) -> dict[str, str]:
    """Each node id's work unit: its module and the number of the module's run it belongs to."""
    scopes: dict[str, str] = {}
    run_of_module: dict[str, int] = {}
    for module, run in itertools.groupby(collection, key=lambda nodeid: nodeid.split("::", 1)[0]):
        number = run_of_module[module] = run_of_module.get(module, -1) + 1
        for nodeid in run:
            scopes[nodeid] = f"{module}#{number}"
    return scopes


class ModuleRunScheduling(LoadScopeScheduling):
    """`LoadScopeScheduling` with `module_runs` as the scopes, never reordered by size."""

    _scopes: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None and self.registered_collections:
            self.config.option.loadscopereorder = False
            self._scopes = module_runs(next(iter(self.registered_collections.values())))
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        return self._scopes.get(nodeid, nodeid)
