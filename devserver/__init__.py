"""Local development server: the Lambda handlers behind an emulated API Gateway.

`python -m devserver` (`make serve`) runs the whole gateway on one machine: an HTTP front
end that emulates API Gateway's REST API proxy integration (devserver.apigw), an
embedded moto server standing in for DynamoDB, S3 and Secrets Manager (devserver.aws)
and, when no provider key is configured, the provider simulator (devserver.simulator).

Public API:
    start_gateway(port=0, *, master_key=None, provider_env=None,
                  simulator_phase_seconds=None, aws_endpoint_url=None) -> LocalGateway
    devserver.apigw.ApiGateway, devserver.apigw.invoke(route_name, event)
    devserver.events.proxy_event(...), devserver.events.lambda_context(...)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The Lambda code lives in functions/ (the Lambda task root), not in an installed package.
REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

if TYPE_CHECKING:
    from devserver.server import LocalGateway, start_gateway

__all__ = ["FUNCTIONS_DIR", "REPO_ROOT", "LocalGateway", "start_gateway"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing devserver.events or devserver.simulator stays cheap.
    if name in ("start_gateway", "LocalGateway"):
        from devserver import server

        return getattr(server, name)
    raise AttributeError(f"module 'devserver' has no attribute {name!r}")
