"""Virtual keys from the command line: the gateway's /key/* endpoints, called with the master key.

    python -m cli.keys generate --alias team-a [--duration 30d] [--providers openai,azure]
                                [--metadata '{"team": "a"}'] [--batch-retry '{"expired": true}']
    python -m cli.keys info KEY            # a plain key or a key id (key_...)
    python -m cli.keys list [--alias A] [--ids-only]
    python -m cli.keys update KEY [--providers ...] [--duration ...] [--alias ...] [--metadata ...]
                                  [--batch-retry ...]
                                           # KEY: a plain key, a key id (key_...) or an alias
    python -m cli.keys delete (--key K | --alias A)...

The gateway is --base-url or $GATEWAY_URL (default http://127.0.0.1:4000); the master key is
--master-key or $GATEWAY_MASTER_KEY, which defaults to the local server's sk-1234 only when
the URL is local. `make keys` sets $GATEWAY_URL to `make serve`'s http://127.0.0.1:$PORT unless
it is set. Standard output carries only the JSON result (pipe it to jq); a failed call prints the
gateway's error message on standard error and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

DEFAULT_URL = "http://127.0.0.1:4000"
LOCAL_MASTER_KEY = "sk-1234"  # what `make serve` uses unless GATEWAY_MASTER_KEY is set
URL_ENV = "GATEWAY_URL"
MASTER_KEY_ENV = "GATEWAY_MASTER_KEY"
LIST_PAGE_SIZE = 100
TIMEOUT_SECONDS = 30.0
KEY_ID_PREFIX = "key_"
PLAIN_KEY_PREFIX = "sk-"  # the gateway's keys are sk-gw-...
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class CliError(Exception):
    """A failure to report on standard error (exit status 1)."""


@dataclass(frozen=True)
class Target:
    base_url: str
    master_key: str


def is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.endswith(".localhost")


def resolve_target(base_url: str | None, master_key: str | None, env: dict[str, str] | None = None) -> Target:
    env = dict(os.environ) if env is None else env
    url = (base_url or env.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https"):
        raise CliError(f"The gateway URL must start with http:// or https://, got {url!r}.")
    key = master_key or env.get(MASTER_KEY_ENV)
    if not key:
        if not is_local(url):
            raise CliError(
                f"The master key is required for {url}: pass --master-key or set ${MASTER_KEY_ENV}."
            )
        key = LOCAL_MASTER_KEY
    return Target(url, key)


class KeysApi:
    """The /key/* endpoints; every method returns the decoded JSON response."""

    def __init__(self, target: Target, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=target.base_url,
            headers={"Authorization": f"Bearer {target.master_key}"},
            timeout=TIMEOUT_SECONDS,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"Cannot reach the gateway at {self._http.base_url}: {exc}") from exc
        if response.is_success:
            return response.json()
        raise CliError(error_message(response))

    def generate(self, body: dict[str, Any]) -> Any:
        return self._call("POST", "/key/generate", json=body)

    def info(self, key: str) -> Any:
        return self._call("GET", "/key/info", params={"key": key})

    def list_keys(self, *, alias: str | None = None, full: bool = True) -> dict[str, Any]:
        keys: list[Any] = []
        page = 1
        while True:
            params: dict[str, Any] = {
                "page": page,
                "size": LIST_PAGE_SIZE,
                "return_full_object": "true" if full else "false",
            }
            if alias is not None:
                params["key_alias"] = alias
            result = self._call("GET", "/key/list", params=params)
            keys.extend(result["keys"])
            if page >= int(result["total_pages"]):
                return {"keys": keys, "total_count": int(result["total_count"])}
            page += 1

    def update(self, body: dict[str, Any]) -> Any:
        return self._call("POST", "/key/update", json=body)

    def resolve(self, key_id_or_alias: str) -> str:
        """A plain key or key id as given; anything else is an alias, looked up as its key id."""
        if key_id_or_alias.startswith((KEY_ID_PREFIX, PLAIN_KEY_PREFIX)):
            return key_id_or_alias
        found = self.list_keys(alias=key_id_or_alias, full=False)["keys"]
        if not found:
            raise CliError(f"No key with alias '{key_id_or_alias}'.")
        return str(found[0])

    def delete(self, *, keys: list[str], aliases: list[str]) -> Any:
        return self._call("POST", "/key/delete", json={"keys": keys, "key_aliases": aliases})


def error_message(response: httpx.Response) -> str:
    """The OpenAI envelope's message, or the status line when the body is not an envelope."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    prefix = f"HTTP {response.status_code}"
    return f"{prefix}: {message}" if message else f"{prefix}: {response.reason_phrase or 'error'}"


# Arguments -------------------------------------------------------------------------------


def _providers(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one provider, e.g. openai,azure")
    return names


def _metadata(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return parsed


_BATCH_RETRY_HELP = "the key's default retry of its batches' lines, e.g. '{\"expired\": true}'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cli.keys", description="Manage the gateway's virtual keys (master key only)."
    )
    parser.add_argument("--base-url", help=f"gateway URL (${URL_ENV}, default {DEFAULT_URL})")
    parser.add_argument("--master-key", help=f"master key (${MASTER_KEY_ENV})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="create a key; the key is printed once")
    generate.add_argument("--alias", help="a unique name for the key")
    generate.add_argument("--duration", help="lifetime such as 30s, 10m, 12h, 30d, 2w (default: none)")
    generate.add_argument("--providers", type=_providers, help="allowed providers, e.g. openai,azure")
    generate.add_argument("--metadata", type=_metadata, help='a JSON object, e.g. \'{"team": "x"}\'')
    generate.add_argument("--batch-retry", type=_metadata, help=_BATCH_RETRY_HELP)

    info = commands.add_parser("info", help="one key's settings (never the key itself)")
    info.add_argument("key", help="the plain key or its key id")

    listing = commands.add_parser("list", help="every key")
    listing.add_argument("--alias", help="only the key with this alias")
    listing.add_argument("--ids-only", action="store_true", help="key ids instead of full objects")

    update = commands.add_parser("update", help="change a key's alias, providers, duration or metadata")
    update.add_argument("key", help="the plain key, its key id or its alias")
    update.add_argument("--alias")
    update.add_argument("--duration", help="a new lifetime, counted from now")
    update.add_argument("--providers", type=_providers)
    update.add_argument("--metadata", type=_metadata)
    update.add_argument("--batch-retry", type=_metadata, help=_BATCH_RETRY_HELP + " ('{}' removes it)")

    delete = commands.add_parser("delete", help="delete keys by key (or key id) and/or alias")
    delete.add_argument("--key", dest="keys", action="append", default=[], help="repeatable")
    delete.add_argument("--alias", dest="aliases", action="append", default=[], help="repeatable")
    return parser


def _settings_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for attribute, field in (
        ("alias", "key_alias"),
        ("duration", "duration"),
        ("providers", "providers"),
        ("metadata", "metadata"),
        ("batch_retry", "batch_retry"),
    ):
        value = getattr(args, attribute)
        if value is not None:
            body[field] = value
    return body


def _run(api: KeysApi, args: argparse.Namespace) -> Any:
    commands: dict[str, Callable[[], Any]] = {
        "generate": lambda: api.generate(_settings_body(args)),
        "info": lambda: api.info(args.key),
        "list": lambda: api.list_keys(alias=args.alias, full=not args.ids_only),
        "update": lambda: api.update({"key": api.resolve(args.key), **_settings_body(args)}),
        "delete": lambda: api.delete(keys=args.keys, aliases=args.aliases),
    }
    return commands[args.command]()


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "delete" and not (args.keys or args.aliases):
        parser.error("delete needs at least one --key or --alias")
    if args.command == "update" and not _settings_body(args):
        parser.error(
            "update needs at least one of --alias, --duration, --providers, --metadata, --batch-retry"
        )
    try:
        api = KeysApi(resolve_target(args.base_url, args.master_key), transport=transport)
        try:
            result = _run(api, args)
        finally:
            api.close()
    except CliError as exc:
        print(f"error: {exc}", file=stderr)
        return 1
    print(json.dumps(result, indent=2), file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
