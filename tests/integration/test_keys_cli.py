"""The operator CLI (cli.keys) against the local server: in-process, and once as a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import openai
import pytest

from cli import keys as keys_cli
from devserver import REPO_ROOT
from devserver.server import LocalGateway
from tests.integration.tenancy import sdk, unique, upload_input


def run(gateway: LocalGateway, *argv: str, master_key: str | None = None) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    key = master_key or gateway.master_key
    code = keys_cli.main(["--base-url", gateway.url, "--master-key", key, *argv], stdout=out, stderr=err)
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def test_generate_info_list_update_delete(local_gateway: LocalGateway) -> None:
    alias = unique("cli")
    code, generated, _ = run(
        local_gateway,
        "generate",
        "--alias",
        alias,
        "--duration",
        "30d",
        "--providers",
        "openai",
        "--metadata",
        '{"team": "cli"}',
    )
    assert code == 0
    key, key_id = generated["key"], generated["key_id"]
    assert generated["providers"] == ["openai"] and generated["metadata"] == {"team": "cli"}
    assert generated["expires_at"] - generated["created_at"] == 30 * 86400

    code, info, _ = run(local_gateway, "info", key)
    assert code == 0 and info["info"]["key_alias"] == alias and key not in json.dumps(info)

    code, listed, _ = run(local_gateway, "list")
    assert code == 0 and key_id in {k["key_id"] for k in listed["keys"]}
    assert listed["total_count"] == len(listed["keys"])
    code, by_alias, _ = run(local_gateway, "list", "--alias", alias, "--ids-only")
    assert code == 0 and by_alias == {"keys": [key_id], "total_count": 1}

    with pytest.raises(openai.PermissionDeniedError):
        upload_input(sdk(local_gateway, key, provider="azure"))
    code, updated, _ = run(
        local_gateway, "update", key_id, "--providers", "openai,azure", "--alias", alias + "-x"
    )
    assert code == 0 and updated["providers"] == ["azure", "openai"] and updated["key_alias"] == alias + "-x"
    assert upload_input(sdk(local_gateway, key, provider="azure")).id

    code, deleted, _ = run(local_gateway, "delete", "--alias", alias + "-x")
    assert code == 0 and deleted == {"deleted_keys": [key_id]}
    with pytest.raises(openai.AuthenticationError):
        sdk(local_gateway, key).files.list()


def test_delete_several_by_key_and_alias(local_gateway: LocalGateway) -> None:
    first = run(local_gateway, "generate", "--alias", unique("cli-many"))[1]
    second_alias = unique("cli-many")
    second = run(local_gateway, "generate", "--alias", second_alias)[1]
    code, deleted, _ = run(local_gateway, "delete", "--key", first["key"], "--alias", second_alias)
    assert code == 0 and sorted(deleted["deleted_keys"]) == sorted([first["key_id"], second["key_id"]])


def test_errors_print_the_envelope_message_and_exit_1(local_gateway: LocalGateway) -> None:
    code, out, err = run(local_gateway, "info", "key_doesnotexist")
    assert (code, out) == (1, None) and err.strip() == "error: HTTP 404: No such key."

    code, out, err = run(local_gateway, "generate", "--duration", "soon")
    assert code == 1 and "Invalid duration 'soon'" in err

    code, out, err = run(local_gateway, "list", master_key="sk-not-the-master")
    assert code == 1 and "HTTP 401" in err


def test_bad_arguments_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["delete"],
        ["update", "key_x"],
        ["generate", "--metadata", "[1]"],
        ["generate", "--providers", ","],
    ):
        with pytest.raises(SystemExit) as exited:
            keys_cli.main(["--base-url", "http://127.0.0.1:9", *argv])
        assert exited.value.code == 2
    capsys.readouterr()


def test_remote_urls_need_an_explicit_master_key() -> None:
    err = io.StringIO()
    env_saved = os.environ.pop(keys_cli.MASTER_KEY_ENV, None)
    try:
        code = keys_cli.main(["--base-url", "https://gateway.example.com", "list"], stderr=err)
    finally:
        if env_saved is not None:
            os.environ[keys_cli.MASTER_KEY_ENV] = env_saved
    assert code == 1 and "--master-key" in err.getvalue()
    assert keys_cli.resolve_target(None, None, {}).master_key == keys_cli.LOCAL_MASTER_KEY
    assert keys_cli.resolve_target(None, None, {}).base_url == keys_cli.DEFAULT_URL


def test_module_entry_point_as_a_subprocess(local_gateway: LocalGateway) -> None:
    env = {
        **os.environ,
        keys_cli.URL_ENV: local_gateway.url,
        keys_cli.MASTER_KEY_ENV: local_gateway.master_key,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.keys", "list", "--ids-only"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert set(listed) == {"keys", "total_count"} and listed["total_count"] == len(listed["keys"])


def test_update_takes_an_alias_as_delete_does(local_gateway: LocalGateway) -> None:
    alias = unique("cli-alias")
    generated = run(local_gateway, "generate", "--alias", alias, "--providers", "openai")[1]
    code, updated, _ = run(local_gateway, "update", alias, "--providers", "openai,azure")
    assert code == 0 and updated["key_id"] == generated["key_id"]
    assert updated["providers"] == ["azure", "openai"]

    code, out, err = run(local_gateway, "update", unique("no-such-alias"), "--providers", "openai")
    assert (code, out) == (1, None) and "No key with alias" in err


def test_a_keys_batch_retry_is_set_changed_and_removed(local_gateway: LocalGateway) -> None:
    code, generated, _ = run(
        local_gateway, "generate", "--alias", unique("cli-retry"), "--batch-retry", '{"expired": true}'
    )
    assert code == 0 and generated["batch_retry"] == {"expired": True, "failed_codes": []}
    key_id = generated["key_id"]
    code, updated, _ = run(
        local_gateway, "update", key_id, "--batch-retry", '{"failed_codes": ["server_error"]}'
    )
    assert code == 0 and updated["batch_retry"] == {"expired": False, "failed_codes": ["server_error"]}
    code, removed, _ = run(local_gateway, "update", key_id, "--batch-retry", "{}")
    assert code == 0 and removed["batch_retry"] is None
    code, _, error = run(local_gateway, "update", key_id, "--batch-retry", '{"expired": "often"}')
    assert code == 1 and "batch_retry" in error
