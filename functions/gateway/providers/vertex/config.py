"""A Vertex AI deployment's own settings: its project, location and Cloud Storage bucket.

A `vertex` deployment names the Google Cloud project and location its batch prediction jobs run
in, and the bucket (and an optional prefix) the gateway writes their input records to and the
jobs write their predictions under. Its key in the provider-keys secret is a service account's
JSON key (`google_token`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.providers.config import ProviderDeployment

DEFAULT_GCS_API_BASE = "https://storage.googleapis.com"
# https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# https://cloud.google.com/vertex-ai/docs/general/locations (regions such as us-central1)
_LOCATION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
# https://cloud.google.com/storage/docs/buckets#naming (names without dots: at most 63)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
# https://cloud.google.com/storage/docs/objects#naming: at most 1,024 bytes, no CR or LF
_MAX_OBJECT_NAME_BYTES = 1024
_MAX_PREFIX_BYTES = 512  # leaves room for the gateway's own names under it


def vertex_api_base(location: str) -> str:
    """The regional endpoint of the Vertex AI API
    (https://cloud.google.com/vertex-ai/docs/reference/rest#service-endpoint)."""
    return f"https://{location}-aiplatform.googleapis.com"


def with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    location = spec.get("location")
    if isinstance(location, str) and location and not spec.get("api_base"):
        spec["api_base"] = vertex_api_base(location)
    if not spec.get("gcs_api_base"):
        spec["gcs_api_base"] = DEFAULT_GCS_API_BASE
    prefix = spec.get("gcs_prefix")
    if isinstance(prefix, str) and prefix and not prefix.endswith("/"):
        spec["gcs_prefix"] = prefix + "/"
    return spec


def check_deployment(deployment: ProviderDeployment) -> None:
    """ValueError naming the first setting a Vertex deployment gets wrong."""
    if not deployment.project or not _PROJECT.match(deployment.project):
        raise ValueError(
            "a vertex deployment needs `project`: a Google Cloud project id (6 to 30 lowercase "
            "letters, digits or hyphens, starting with a letter)"
        )
    if not deployment.location or not _LOCATION.match(deployment.location):
        raise ValueError("a vertex deployment needs `location`: a Vertex AI region such as us-central1")
    bucket = deployment.gcs_bucket or ""
    if not _BUCKET.match(bucket) or bucket.startswith("goog") or "google" in bucket:
        raise ValueError(
            "a vertex deployment needs `gcs_bucket`: a Cloud Storage bucket name (3 to 63 lowercase "
            "letters, digits, hyphens or underscores, starting and ending with a letter or digit)"
        )
    prefix = deployment.gcs_prefix
    if prefix.startswith("/") or "\r" in prefix or "\n" in prefix or "//" in prefix:
        raise ValueError("gcs_prefix: an object name prefix such as `openai-gateway/` (no leading `/`)")
    if len(prefix.encode()) > _MAX_PREFIX_BYTES:
        raise ValueError(f"gcs_prefix: at most {_MAX_PREFIX_BYTES} bytes")
    if not deployment.api_base or not deployment.gcs_api_base:
        raise ValueError("a vertex deployment needs `api_base` and `gcs_api_base` (set from its location)")


def object_name_ok(name: str) -> bool:
    return 0 < len(name.encode()) <= _MAX_OBJECT_NAME_BYTES and "\r" not in name and "\n" not in name
