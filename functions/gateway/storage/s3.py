"""The S3 client for the gateway's bucket (upload parts, cached file content)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# botocore reads these itself; the service-specific one wins.
ENDPOINT_OVERRIDE_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


# What S3 (and moto, LocalStack) answer for an object that is not there.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code"))


def is_missing(exc: ClientError) -> bool:
    """The error says the object (or key) is not there."""
    return error_code(exc) in MISSING_CODES


def endpoint_override() -> str | None:
    """The S3 endpoint set in the environment (moto, LocalStack), or None for AWS's own."""
    return next((value for name in ENDPOINT_OVERRIDE_ENV if (value := os.environ.get(name))), None)


def addressing_style() -> str:
    """Path-style against an endpoint override (a bucket subdomain of 127.0.0.1 does not resolve),
    virtual-hosted against AWS (the only style for new buckets, and what presigned URLs should carry)."""
    return "path" if endpoint_override() else "virtual"


@lru_cache(maxsize=1)
def s3_client() -> Any:
    # SigV4 so that presigned URLs work in every region and against LocalStack and moto.
    # Checksums only where S3 requires them: the transfer verifies bytes and md5 itself, TLS
    # guards the wire, and a CRC32 of every multi-megabyte part is CPU a Lambda pays for. For
    # the same reason the payload is not signed: without a checksum header botocore would
    # otherwise SHA-256 every body it sends (each upload part, each cached part), https or not.
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": addressing_style(), "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint_override(), config=config)


PART_UPLOAD_THREADS = 4  # for every multipart writer of the process


@lru_cache(maxsize=1)
def part_uploads() -> ThreadPoolExecutor:
    """The threads multipart writers send their parts on (a plan's index files, kept files): a
    few long-lived ones, not one per writer (each thread would keep its own malloc arena, and
    peak memory would grow with the objects written). A task never waits on another. (Imported
    here, not at the module's top: most functions never write a part.)"""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(PART_UPLOAD_THREADS, thread_name_prefix="s3-part-upload")
