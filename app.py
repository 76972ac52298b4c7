#!/usr/bin/env python3
"""CDK app: `OpenAIGatewayData` (stateful, retained) and `OpenAIGatewayApi` (API + functions).

Run through the CDK CLI (`make synth`, `make deploy`); settings come from cdk.json's context.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.config import ConfigError
from infra.stack import build

app = cdk.App()
try:
    build(app, nag=True)
except ConfigError as error:
    sys.exit(f"\nThe deployment settings in cdk.json are not usable yet: {error}\n")
app.synth()
