"""LocalStack service provider `dynamodb:moto`: DynamoDB answered by moto, inside LocalStack.

LocalStack's own DynamoDB providers run DynamoDB Local, which downloads a JDK and a jar at
first use: nothing this machine (nor CI, offline) can fetch. moto's DynamoDB, which LocalStack
already carries (moto-ext), serves every call the gateway and CloudFormation make.
Selected with PROVIDER_OVERRIDE_DYNAMODB=moto (make localstack-test registers the entry point).
"""

from __future__ import annotations

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.moto import MotoFallbackDispatcher
from localstack.services.plugins import Service, aws_provider


class MotoDynamoDBProvider(DynamodbApi):
    """No operation of its own: the dispatcher sends every one to moto."""


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher)
