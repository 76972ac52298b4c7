"""The deployed-stack tests use the end-to-end suite's `target` (E2E_BASE_URL and E2E_API_KEY)."""

from tests.e2e.conftest import target

__all__ = ["target"]
