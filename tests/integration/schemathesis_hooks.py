"""schemathesis hooks for values the OpenAPI document cannot pin down.

Provider names are the deployment's configuration (an unknown one is a 400 naming it), and a
key alias is unique across keys (a taken one is a 400): schema-valid bodies get a configured
provider and a fresh alias, so that a 400 for them would be a real mismatch.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

PROVIDER = "openai"
# Where schema-valid webhook endpoints point: a loopback URL, the only kind the local server takes
# over plain http (which addresses the gateway accepts depends on DNS and policy, not the schema).
WEBHOOK_URL = "http://127.0.0.1:9/hook"


def _is_plain(value: Any, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase (coverage, fuzzing, stateful) passes here; negative cases stay as generated."""
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return
    case.body = configured(case.body)


def configured(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    mapped = dict(body)
    if _is_plain(mapped.get("custom_llm_provider"), 64):
        mapped["custom_llm_provider"] = PROVIDER
    providers = mapped.get("providers")
    if isinstance(providers, list) and providers and all(_is_plain(p, 64) for p in providers):
        mapped["providers"] = [PROVIDER]
    if _is_plain(mapped.get("url"), 2048):  # a webhook's destination: what local mode allows
        mapped["url"] = WEBHOOK_URL
    if _is_plain(mapped.get("key_alias"), 128):
        mapped["key_alias"] = f"{mapped['key_alias'][:100]}-{uuid.uuid4().hex[:12]}"
    return mapped
