"""Injecting one failure at a write step of a provider adapter (a method of the adapter or of
what it writes through), and the batch the step tests create, shared by the adapters' tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.api import ProviderApi


class Injected(Exception):
    pass


def fail_once(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    *,
    provider: str,
    after: bool = False,
    when: Callable[..., bool] | None = None,
) -> list[bool]:
    """`owner.name` fails on its first matching call (before it runs, or after: the work done,
    `provider`'s answer lost); the list holds True once it fired."""
    real = getattr(owner, name)
    fired: list[bool] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if fired or (when is not None and not when(*args, **kwargs)):
            return real(self, *args, **kwargs)
        fired.append(True)
        if not after:
            raise Injected(name)
        real(self, *args, **kwargs)
        raise UpstreamTimeoutError(f"provider '{provider}' did not answer in time")

    monkeypatch.setattr(owner, name, wrapper)
    return fired


def fail_at(monkeypatch: pytest.MonkeyPatch, step: dict[str, Any], *, provider: str) -> list[bool]:
    """`fail_once` at a step of a test's table: `owner` and `name`, optionally `after`, `when`
    (which calls count) or `second` (the second call only)."""
    when = on_second_call() if step.get("second") else step.get("when")
    return fail_once(
        monkeypatch, step["owner"], step["name"], provider=provider, after=step.get("after", False), when=when
    )


def on_second_call() -> Callable[..., bool]:
    """A `when` that matches the second call only (the error file, after the output file)."""
    calls: list[bool] = []

    def second(*args: Any, **kwargs: Any) -> bool:
        calls.append(True)
        return len(calls) == 2

    return second


def create_batch(
    client: ProviderApi, *, model: str, custom_ids: list[str], gateway_id: str
) -> dict[str, Any]:
    """Creates the batch of one chat line per custom_id, its input file uploaded once."""
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": cid}]},
        }
        for cid in custom_ids
    ]
    content = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
    if not client.list_files()["data"]:
        client.create_file(filename="in.jsonl", content=content, purpose="batch")
    input_file = client.list_files()["data"][0]["id"]
    body = {
        "input_file_id": input_file,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": gateway_id},
    }
    return client.create_batch(body, gateway_id=gateway_id)


def custom_ids_in(client: ProviderApi, file_id: str) -> list[str]:
    """The custom_ids of the lines of a batch's output or error file, in order."""
    return [json.loads(line)["custom_id"] for line in client.file_content(file_id).splitlines()]
