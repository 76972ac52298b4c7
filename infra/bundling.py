"""Builds the dependency layer without Docker.

`pip` downloads the Linux arm64 / CPython 3.14 wheels of `functions/requirements.txt`
(`--only-binary=:all:`, so nothing is compiled for the build machine) into
`<output>/python`, the directory Lambda puts on `sys.path` for layers.

Lambda's file systems are read-only, so byte code Python cannot write there is compiled again
at every cold start. When an interpreter of the runtime's version (`python3.14`) is on the
build machine's PATH, the layer is precompiled with it (`compileall`, unchecked-hash .pyc, so
the zip's timestamps do not matter); without one it ships sources only, as before.

The asset hash is the hash of the requirements file and of the pip target, so the CDK skips
bundling when `cdk.out/asset.<hash>` already exists; a second cache under `.build/` also
serves synths into other output directories (the tests).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import BUILD_DIR, FUNCTIONS_DIR, REQUIREMENTS_FILE

PYTHON_VERSION = "3.14"
PLATFORM = "manylinux2014_aarch64"
# Used only if local bundling is impossible; it never is when pip runs.
FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.14"
# Bumped when the bundling steps change, so old cached layers are not reused.
BUNDLER_VERSION = "1"
# Removed from the layer: byte code for the build machine's Python and test suites.
STRIP_DIRS = frozenset({"__pycache__", "tests"})


def runtime_interpreter() -> str | None:
    """An interpreter of the runtime's Python version on PATH (it alone can write its .pyc)."""
    return shutil.which(f"python{PYTHON_VERSION}")


def compile_byte_code(site_packages: Path, interpreter: str) -> None:
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "-j0",
        "--invalidation-mode",
        "unchecked-hash",
        str(site_packages),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"precompiling the dependency layer failed: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def pip_arguments(requirements: Path, target: Path) -> list[str]:
    return [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundling:
    """`ILocalBundling` that installs the requirements with the current interpreter's pip."""

    def __init__(
        self,
        requirements: Path = REQUIREMENTS_FILE,
        cache_dir: Path | None = None,
        interpreter: str | None = None,
    ) -> None:
        self.requirements = requirements
        self.cache_dir = cache_dir if cache_dir is not None else BUILD_DIR / "layer-cache"
        self.interpreter = interpreter if interpreter is not None else runtime_interpreter()

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.requirements.read_bytes())
        byte_code = "pyc" if self.interpreter else "source"
        digest.update(" ".join([BUNDLER_VERSION, PYTHON_VERSION, PLATFORM, byte_code]).encode())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        cached = self.cache_dir / self.fingerprint
        if not (cached / "python").is_dir():
            self._build_into_cache(cached)
        shutil.copytree(cached / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True

    def _build_into_cache(self, cached: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".building-"))
        try:
            target = staging / "python"
            command = [sys.executable, "-m", "pip", *pip_arguments(self.requirements, target)]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the dependency layer failed: {' '.join(command)}\n{result.stderr[-4000:]}"
                )
            strip(target)
            if self.interpreter:
                compile_byte_code(target, self.interpreter)
            try:
                os.replace(staging, cached)
            except OSError:
                if not (cached / "python").is_dir():  # else another process finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def strip(site_packages: Path) -> None:
    """Drop what the layer never needs, keeping the `*.dist-info` metadata (importlib.metadata)."""
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for path in sorted(site_packages.rglob("*"), reverse=True):  # children before their parents
        if path.is_dir() and path.name in STRIP_DIRS:
            shutil.rmtree(path)


def dependency_layer_code() -> lambda_.Code:
    """The layer code asset: hashed on the requirements, bundled locally by pip."""
    bundler = PipLayerBundling()
    docker_command = " ".join(["pip", *pip_arguments(Path("requirements.txt"), Path("/asset-output/python"))])
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint,
        bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry(FALLBACK_IMAGE),
            local=bundler,
            command=["bash", "-c", docker_command],
        ),
    )


def function_code() -> lambda_.Code:
    """The functions' own code (`gateway/` and `handlers/`), one asset shared by every function."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=["**/__pycache__", "**/*.pyc", "**/tests", "requirements.txt", ".*"],
    )
