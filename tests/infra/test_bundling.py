"""The code assets: functions/ once for every function, and the pip-built dependency layer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra.bundling import PYTHON_VERSION, PipLayerBundling, compile_byte_code, runtime_interpreter
from tests.infra.conftest import Synth
from tests.infra.template_tools import resources_of

LAYER_LIMIT_BYTES = 15 * 1024 * 1024


def asset_dir(synth: Synth, s3_key: str) -> Path:
    manifest = json.loads((synth.outdir / "OpenAIGatewayApi.assets.json").read_text())
    for asset in manifest["files"].values():
        for destination in asset["destinations"].values():
            if destination["objectKey"] == s3_key:
                return synth.outdir / asset["source"]["path"]
    raise AssertionError(f"no asset for {s3_key}")


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def layer_dir(synth: Synth) -> Path:
    (layer,) = resources_of(synth.api_json, "AWS::Lambda::LayerVersion").values()
    return asset_dir(synth, layer["Properties"]["Content"]["S3Key"])


@pytest.fixture(scope="module")
def code_dir(synth: Synth) -> Path:
    function = next(iter(resources_of(synth.api_json, "AWS::Lambda::Function").values()))
    return asset_dir(synth, function["Properties"]["Code"]["S3Key"])


def test_layer_holds_linux_arm64_cpython_314_wheels(layer_dir: Path) -> None:
    site = layer_dir / "python"
    for package in ("aws_lambda_powertools", "httpx", "pydantic", "pydantic_core"):
        assert (site / package).is_dir(), package
    assert list(site.glob("pydantic_core/_pydantic_core.cpython-314-aarch64-linux-gnu.so"))


def test_layer_does_not_bundle_boto3_and_is_stripped(layer_dir: Path) -> None:
    site = layer_dir / "python"
    assert not (site / "boto3").exists() and not (site / "botocore").exists()  # the runtime provides them
    byte_code = list(site.rglob("*.pyc"))
    if runtime_interpreter() is None:  # sources only: no byte code of the build machine's Python
        assert not byte_code
    else:
        tag = "cpython-" + PYTHON_VERSION.replace(".", "")
        assert byte_code and all(tag in path.name for path in byte_code)
    assert not (site / "bin").exists()
    assert tree_size(site) <= LAYER_LIMIT_BYTES


def test_function_code_is_the_functions_folder(code_dir: Path) -> None:
    assert (code_dir / "gateway" / "routes.py").is_file()
    assert (code_dir / "handlers").is_dir()
    assert not list(code_dir.rglob("__pycache__"))
    assert not (code_dir / "requirements.txt").exists()


def test_layer_hash_follows_the_requirements_only(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx==0.28.1\n")
    first = PipLayerBundling(requirements, cache_dir=tmp_path).fingerprint
    assert PipLayerBundling(requirements, cache_dir=tmp_path / "other").fingerprint == first
    requirements.write_text("httpx==0.28.0\n")
    assert PipLayerBundling(requirements, cache_dir=tmp_path).fingerprint != first


def test_layer_hash_says_whether_it_holds_byte_code(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx==0.28.1\n")
    sources = PipLayerBundling(requirements, cache_dir=tmp_path, interpreter="").fingerprint
    compiled = PipLayerBundling(requirements, cache_dir=tmp_path, interpreter=sys.executable).fingerprint
    assert sources != compiled


def test_byte_code_is_unchecked_hash_based(tmp_path: Path) -> None:
    """Valid whatever the zip's timestamps: Python never compares them with the source."""
    (tmp_path / "module.py").write_text("VALUE = 1\n")
    compile_byte_code(tmp_path, sys.executable)
    (pyc,) = (tmp_path / "__pycache__").glob("module.*.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked


def test_cached_layer_is_reused_without_pip(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-package-anywhere==0\n")  # pip would fail on it
    bundler = PipLayerBundling(requirements, cache_dir=tmp_path / "cache")
    cached = tmp_path / "cache" / bundler.fingerprint / "python" / "marker"
    cached.parent.mkdir(parents=True)
    cached.write_text("cached")
    output = tmp_path / "out"
    assert bundler.try_bundle(str(output), image=None) is True  # type: ignore[arg-type]
    assert (output / "python" / "marker").read_text() == "cached"


def test_pip_failure_is_reported(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-such-pip-option\n")
    bundler = PipLayerBundling(requirements, cache_dir=tmp_path / "cache")
    with pytest.raises(RuntimeError, match="building the dependency layer failed"):
        bundler.try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]
    assert not list((tmp_path / "cache").glob(".building-*"))
