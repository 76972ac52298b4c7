"""Logger set up once for every function. Never log a key or a secret."""

from aws_lambda_powertools import Logger

logger = Logger(service="openai-gateway")
