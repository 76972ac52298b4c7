"""CDK infrastructure for the gateway, generated from the route table.

The route table (`functions/gateway/routes.py`) and the resource names
(`functions/gateway/runtime/resources.py`) are plain-data modules with no third-party imports; this
package puts `functions/` on `sys.path` so that `from gateway import routes` works from
`app.py`, the tests and the bench scripts alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
REQUIREMENTS_FILE = FUNCTIONS_DIR / "requirements.txt"
BUILD_DIR = REPO_ROOT / ".build"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

DATA_STACK_NAME = "OpenAIGatewayData"
API_STACK_NAME = "OpenAIGatewayApi"
