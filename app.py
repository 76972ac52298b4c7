#!/usr/bin/env python3
"""CDK app: `OpenAIGatewayData` (stateful, retained) and `OpenAIGatewayApi` (API + functions).

Run through the CDK CLI (`make synth`, `make deploy`); settings come from cdk.json's context.
"""

from __future__ import annotations

import aws_cdk as cdk

from infra.stack import build

app = cdk.App()
build(app, nag=True)
app.synth()
