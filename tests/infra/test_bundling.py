"""The code assets: functions/ once for every function, and the pip-built dependency layer, both
with byte code for the runtime's Python version (no compilation at a cold start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundling import (
    BUILD_PYTHON_ENV,
    LAYER_SOURCES_TARGET_BYTES,
    LAYER_TARGET_BYTES,
    BuildPythonMissing,
    FunctionCodeBundling,
    PipLayerBundling,
    build_python,
    cache_tag,
    compile_byte_code,
    pip_arguments,
)
from infra.config import DEFAULT_PYTHON_VERSION
from tests.infra.conftest import Synth
from tests.infra.template_tools import resources_of


def asset_dir(synth: Synth, s3_key: str) -> Path:
    manifest = json.loads((synth.outdir / "OpenAIGatewayApi.assets.json").read_text())
    for asset in manifest["files"].values():
        for destination in asset["destinations"].values():
            if destination["objectKey"] == s3_key:
                return synth.outdir / asset["source"]["path"]
    raise AssertionError(f"no asset for {s3_key}")


def tree_size(path: Path, *, byte_code: bool = True) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and (byte_code or f.suffix != ".pyc"))


@pytest.fixture(scope="module")
def layer_dir(synth: Synth) -> Path:
    (layer,) = resources_of(synth.api_json, "AWS::Lambda::LayerVersion").values()
    return asset_dir(synth, layer["Properties"]["Content"]["S3Key"])


@pytest.fixture(scope="module")
def code_dir(synth: Synth) -> Path:
    function = next(iter(resources_of(synth.api_json, "AWS::Lambda::Function").values()))
    return asset_dir(synth, function["Properties"]["Code"]["S3Key"])


def runtime_tag(synth: Synth) -> str:
    return cache_tag(synth.gateway.config.python_version)


def missing_byte_code(root: Path, tag: str) -> list[str]:
    """Every .py under root without its unchecked-hash .pyc for `tag` in __pycache__."""
    missing = []
    for source in root.rglob("*.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not pyc.is_file() or int.from_bytes(pyc.read_bytes()[4:8], "little") != 0b01:
            missing.append(str(source.relative_to(root)))
    return missing


def test_functions_run_on_the_configured_python(synth: Synth) -> None:
    runtime = f"python{synth.gateway.config.python_version}"
    functions = resources_of(synth.api_json, "AWS::Lambda::Function").values()
    assert {function["Properties"]["Runtime"] for function in functions} == {runtime}
    (layer,) = resources_of(synth.api_json, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]


def test_layer_holds_linux_arm64_wheels_for_the_runtime(synth: Synth, layer_dir: Path) -> None:
    site = layer_dir / "python"
    for package in ("aws_lambda_powertools", "httpx", "pydantic", "pydantic_core"):
        assert (site / package).is_dir(), package
    abi = runtime_tag(synth).replace("cpython-", "")
    assert list(site.glob(f"pydantic_core/_pydantic_core.cpython-{abi}-aarch64-linux-gnu.so"))


def test_layer_does_not_bundle_boto3_and_is_stripped(layer_dir: Path) -> None:
    site = layer_dir / "python"
    assert not (site / "boto3").exists() and not (site / "botocore").exists()  # the runtime provides them
    assert not (site / "bin").exists()
    assert tree_size(site, byte_code=False) <= LAYER_SOURCES_TARGET_BYTES
    assert tree_size(site) <= LAYER_TARGET_BYTES


def test_every_layer_module_has_the_runtimes_byte_code(synth: Synth, layer_dir: Path) -> None:
    site = layer_dir / "python"
    assert len(list(site.rglob("*.py"))) > 100
    assert missing_byte_code(site, runtime_tag(synth)) == []
    other_tags = [p for p in site.rglob("*.pyc") if f".{runtime_tag(synth)}.pyc" not in p.name]
    assert other_tags == []  # nothing compiled by the build machine's own Python


def test_every_function_module_has_the_runtimes_byte_code(synth: Synth, code_dir: Path) -> None:
    assert (code_dir / "gateway" / "routes.py").is_file()
    assert (code_dir / "handlers").is_dir()
    assert missing_byte_code(code_dir, runtime_tag(synth)) == []
    assert {p.name for p in code_dir.rglob("*.pyc")} == {
        f"{p.stem}.{runtime_tag(synth)}.pyc" for p in code_dir.rglob("*.py")
    }
    assert not (code_dir / "requirements.txt").exists()
    assert not list(code_dir.rglob("tests"))


def test_missing_byte_code_is_found(tmp_path: Path) -> None:
    """The check above can fail: a source without .pyc, or with a timestamp-based one."""
    (tmp_path / "compiled.py").write_text("A = 1\n")
    compile_byte_code(tmp_path, sys.executable)
    (tmp_path / "added_later.py").write_text("B = 2\n")
    tag = sys.implementation.cache_tag
    assert missing_byte_code(tmp_path, tag) == ["added_later.py"]
    import py_compile

    py_compile.compile(str(tmp_path / "added_later.py"))  # timestamp-based: checked against mtimes
    assert missing_byte_code(tmp_path, tag) == ["added_later.py"]


def test_layer_hash_follows_the_requirements_only(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx==0.28.1\n")
    first = PipLayerBundling(requirements, cache_dir=tmp_path).fingerprint
    assert PipLayerBundling(requirements, cache_dir=tmp_path / "other").fingerprint == first
    requirements.write_text("httpx==0.28.0\n")
    assert PipLayerBundling(requirements, cache_dir=tmp_path).fingerprint != first


def test_layer_hash_and_wheels_follow_the_architecture(tmp_path: Path) -> None:
    """architecture in cdk.json: arm64 (the default) or x86_64 wheels, each its own cached layer."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx==0.28.1\n")
    arm = PipLayerBundling(requirements, cache_dir=tmp_path)
    x86 = PipLayerBundling(requirements, cache_dir=tmp_path, architecture="x86_64")
    assert (arm.platform, x86.platform) == ("manylinux2014_aarch64", "manylinux2014_x86_64")
    assert arm.fingerprint != x86.fingerprint
    arguments = pip_arguments(requirements, tmp_path / "python", "3.12", x86.platform)
    assert arguments[arguments.index("--platform") + 1] == "manylinux2014_x86_64"


def test_layer_hash_follows_the_python_version(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("httpx==0.28.1\n")
    fingerprints = {
        PipLayerBundling(requirements, cache_dir=tmp_path, python_version=version).fingerprint
        for version in ("3.12", "3.13")
    }
    assert len(fingerprints) == 2


def test_function_code_hash_follows_the_sources_and_the_python_version(tmp_path: Path) -> None:
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "module.py").write_text("A = 1\n")
    first = FunctionCodeBundling(tmp_path, "3.12").fingerprint
    (tmp_path / "gateway" / "__pycache__").mkdir()
    (tmp_path / "gateway" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"local byte code")
    (tmp_path / "requirements.txt").write_text("httpx\n")
    assert FunctionCodeBundling(tmp_path, "3.12").fingerprint == first  # neither is in the asset
    assert FunctionCodeBundling(tmp_path, "3.13").fingerprint != first
    (tmp_path / "gateway" / "module.py").write_text("A = 2\n")
    assert FunctionCodeBundling(tmp_path, "3.12").fingerprint != first


def test_function_code_is_copied_and_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src"
    (source / "handlers" / "tests").mkdir(parents=True)
    (source / "handlers" / "ping.py").write_text("PONG = 1\n")
    (source / "handlers" / "tests" / "test_ping.py").write_text("")
    (source / "requirements.txt").write_text("httpx\n")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.delenv(BUILD_PYTHON_ENV, raising=False)
    FunctionCodeBundling(source, version).try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]
    files = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert files == {"handlers/ping.py", f"handlers/__pycache__/ping.{sys.implementation.cache_tag}.pyc"}


def test_build_python_is_an_interpreter_of_that_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUILD_PYTHON_ENV, raising=False)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert build_python(version) == sys.executable  # the CDK app's own interpreter, when it matches
    found = build_python(DEFAULT_PYTHON_VERSION)  # this machine and CI have it (README)
    result = subprocess.run(
        [found, "-c", "import sys; print(sys.implementation.cache_tag)"], capture_output=True, text=True
    )
    assert result.stdout.strip() == cache_tag(DEFAULT_PYTHON_VERSION)


def test_no_build_python_fails_and_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUILD_PYTHON_ENV, sys.executable)  # the only candidate, and the wrong version
    with pytest.raises(BuildPythonMissing, match=r"python2\.7.*uv python install 2\.7.*python_version"):
        build_python("2.7")


def test_compiling_with_an_interpreter_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("A = 1\n")
    with pytest.raises(BuildPythonMissing):
        compile_byte_code(tmp_path, sys.executable, "2.7")
    assert not list(tmp_path.rglob("*.pyc"))


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
