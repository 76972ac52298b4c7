"""The S3 client for the gateway's bucket (upload parts, cached file content)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config


@lru_cache(maxsize=1)
def s3_client() -> Any:
    # SigV4 so that presigned URLs work in every region and against LocalStack and moto.
    return boto3.client("s3", config=Config(signature_version="s3v4"))
