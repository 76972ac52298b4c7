"""Builds the two code assets without Docker, both with byte code for the Lambda runtime.

Lambda's file systems are read-only: byte code Python cannot write there is compiled again at
every cold start (seconds for the layer: `bench/coldstart.py --no-pyc`). So both assets ship
unchecked-hash `.pyc` files (valid whatever the zip's timestamps) in `__pycache__`, compiled by
an interpreter of the runtime's version, `python_version` in cdk.json (see README, "Python
version of the functions"). `build_python` finds one: $GATEWAY_BUILD_PYTHON, the interpreter
running the CDK app, `pythonX.Y` on PATH, a pyenv or uv installation. Without one the synth
fails and says how to get one: it never ships sources silently.

- The dependency layer: `pip` downloads the Linux wheels of `functions/requirements.txt` for
  `architecture` in cdk.json (arm64 by default) and that CPython version
  (`--only-binary=:all:`, so nothing is compiled for the build machine) into `<output>/python`,
  the directory Lambda puts on `sys.path` for layers. Its asset hash is the hash of the
  requirements and of the pip target, so the CDK skips bundling when `cdk.out/asset.<hash>`
  exists; a second cache under `.build/` also serves synths into other output directories.
- The function code: `functions/` (gateway/ and handlers/) without tests, caches and the
  requirements file; its hash is that of the copied sources and the Python version.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import BUILD_DIR, FUNCTIONS_DIR, REQUIREMENTS_FILE
from infra.config import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, SUPPORTED_PYTHON_VERSIONS

# pip's platform tag of the wheels for each Lambda architecture.
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
PLATFORM = PLATFORMS[DEFAULT_ARCHITECTURE]
BUILD_PYTHON_ENV = "GATEWAY_BUILD_PYTHON"
# Bumped when the bundling steps change, so old cached layers are not reused.
BUNDLER_VERSION = "3"
# Removed from the layer: byte code for the build machine's Python and test suites.
STRIP_DIRS = frozenset({"__pycache__", "tests"})
# What the Lambda Python runtime ships (boto3 and what it needs), removed from the layer when a
# requirement pulls it in (aws-xray-sdk, for Powertools' Tracer, requires botocore): the
# runtime's copy serves, as it does the gateway's own boto3 calls.
RUNTIME_PROVIDED = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "urllib3": "urllib3",
    "dateutil": "python_dateutil",
    "six.py": "six",
}
# Not copied into the function code asset.
CODE_EXCLUDED_DIRS = frozenset({"__pycache__", "tests"})
CODE_EXCLUDED_FILES = frozenset({"requirements.txt"})
# The layer's targets (this project's, far under Lambda's 250 MB): its sources 16 MiB (15 until
# google-auth with pyasn1-modules and cachetools took it to 15.7 for Vertex AI tokens), and with
# their compiled byte code 25 MiB (a few MB more to download, against seconds of compiling at
# every cold start). tests/infra/test_bundling.py and bench/asset_sizes.py check both.
LAYER_SOURCES_TARGET_BYTES = 16 * 1024 * 1024
LAYER_TARGET_BYTES = 25 * 1024 * 1024


class BuildPythonMissing(RuntimeError):
    """No interpreter of the runtime's Python version on the build machine."""


def fallback_image(python_version: str) -> str:
    """Used only if local bundling is impossible; it never is when pip runs."""
    return f"public.ecr.aws/sam/build-python{python_version}"


def cache_tag(python_version: str) -> str:
    """The `sys.implementation.cache_tag` of CPython `python_version`: `cpython-312` for 3.12."""
    return "cpython-" + python_version.replace(".", "")


def _candidates(python_version: str) -> Iterator[str]:
    explicit = os.environ.get(BUILD_PYTHON_ENV)
    if explicit:
        yield explicit
        return
    yield sys.executable
    on_path = shutil.which(f"python{python_version}")
    if on_path:
        yield on_path
    # pyenv's shims fail for a version that is installed but not selected: ask pyenv's folders.
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    yield from sorted(glob.glob(f"{pyenv_root}/versions/{python_version}.*/bin/python{python_version}"))[::-1]
    uv = shutil.which("uv")
    if uv:
        found = subprocess.run(
            [uv, "python", "find", python_version], capture_output=True, text=True, check=False, timeout=60
        )
        if found.returncode == 0 and found.stdout.strip():
            yield found.stdout.strip()


def _reports_cache_tag(interpreter: str, expected: str) -> bool:
    if interpreter == sys.executable:
        return bool(sys.implementation.cache_tag == expected)
    try:
        result = subprocess.run(
            [interpreter, "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == expected


def build_python(python_version: str) -> str:
    """An interpreter of the runtime's version (it alone writes the runtime's .pyc), or a clear error."""
    expected = cache_tag(python_version)
    for candidate in _candidates(python_version):
        if _reports_cache_tag(candidate, expected):
            return candidate
    where = (
        f"${BUILD_PYTHON_ENV}={os.environ[BUILD_PYTHON_ENV]}"
        if os.environ.get(BUILD_PYTHON_ENV)
        else (f"python{python_version} on PATH, pyenv or uv")
    )
    raise BuildPythonMissing(
        f"The functions run on the python{python_version} Lambda runtime, and their byte code must be "
        f"compiled by CPython {python_version}: none found ({where}). Install it (e.g. "
        f"`uv python install {python_version}`, `pyenv install {python_version}`, your package "
        f"manager's python{python_version}), or point {BUILD_PYTHON_ENV} at one, or set the CDK "
        f"context python_version to your interpreter's version (one of "
        f"{', '.join(SUPPORTED_PYTHON_VERSIONS)}; SnapStart needs 3.12 or later)."
    )


def compile_byte_code(root: Path, interpreter: str, python_version: str | None = None) -> None:
    """Unchecked-hash .pyc next to every .py under `root`, by `interpreter` (checked to be
    CPython `python_version` when given, so a wrong interpreter cannot write the wrong tag)."""
    if python_version is not None and not _reports_cache_tag(interpreter, cache_tag(python_version)):
        raise BuildPythonMissing(f"{interpreter} is not CPython {python_version}")
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "-j0",
        "--invalidation-mode",
        "unchecked-hash",
        str(root),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"precompiling {root} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")


def pip_arguments(
    requirements: Path, target: Path, python_version: str, platform: str = PLATFORM
) -> list[str]:
    return [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
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
        python_version: str = DEFAULT_PYTHON_VERSION,
        architecture: str = DEFAULT_ARCHITECTURE,
    ) -> None:
        self.requirements = requirements
        self.cache_dir = cache_dir if cache_dir is not None else BUILD_DIR / "layer-cache"
        self.python_version = python_version
        self.platform = PLATFORMS[architecture]

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.requirements.read_bytes())
        digest.update(" ".join([BUNDLER_VERSION, self.python_version, self.platform, "pyc"]).encode())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        cached = self.cache_dir / self.fingerprint
        if not (cached / "python").is_dir():
            self._build_into_cache(cached)
        shutil.copytree(cached / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True

    def _build_into_cache(self, cached: Path) -> None:
        interpreter = build_python(self.python_version)  # before pip: fail fast, and clearly
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".building-"))
        try:
            target = staging / "python"
            arguments = pip_arguments(self.requirements, target, self.python_version, self.platform)
            command = [sys.executable, "-m", "pip", *arguments]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the dependency layer failed: {' '.join(command)}\n{result.stderr[-4000:]}"
                )
            strip(target)
            compile_byte_code(target, interpreter, self.python_version)
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
    for module, distribution in RUNTIME_PROVIDED.items():
        for path in [site_packages / module, *site_packages.glob(f"{distribution}-*.dist-info")]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    for path in sorted(site_packages.rglob("*"), reverse=True):  # children before their parents
        if path.is_dir() and path.name in STRIP_DIRS:
            shutil.rmtree(path)


def function_sources(root: Path = FUNCTIONS_DIR) -> list[Path]:
    """The files of the function code asset, relative to `root`, sorted."""
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or any(
            part in CODE_EXCLUDED_DIRS or part.startswith(".") for part in relative.parts
        ):
            continue
        if relative.name in CODE_EXCLUDED_FILES or relative.suffix == ".pyc":
            continue
        files.append(relative)
    return sorted(files)


@jsii.implements(cdk.ILocalBundling)
class FunctionCodeBundling:
    """`ILocalBundling` that copies the function sources and compiles them for the runtime."""

    def __init__(self, root: Path = FUNCTIONS_DIR, python_version: str = DEFAULT_PYTHON_VERSION) -> None:
        self.root = root
        self.python_version = python_version

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(" ".join([BUNDLER_VERSION, self.python_version, "pyc"]).encode())
        for relative in function_sources(self.root):
            digest.update(relative.as_posix().encode() + b"\0")
            digest.update(hashlib.sha256((self.root / relative).read_bytes()).digest())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        interpreter = build_python(self.python_version)
        output = Path(output_dir)
        for relative in function_sources(self.root):
            (output / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / relative, output / relative)
        compile_byte_code(output, interpreter, self.python_version)
        return True


def dependency_layer_code(
    python_version: str = DEFAULT_PYTHON_VERSION, architecture: str = DEFAULT_ARCHITECTURE
) -> lambda_.Code:
    """The layer code asset: hashed on the requirements and the platform, bundled locally by pip."""
    bundler = PipLayerBundling(python_version=python_version, architecture=architecture)
    target = Path("/asset-output/python")
    docker_command = " ".join(
        [
            "pip",
            *pip_arguments(Path("requirements.txt"), target, python_version, bundler.platform),
            f"&& python -m compileall -q --invalidation-mode unchecked-hash {target}",
        ]
    )
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint,
        bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry(fallback_image(python_version)),
            local=bundler,
            command=["bash", "-c", docker_command],
        ),
    )


def function_code(python_version: str = DEFAULT_PYTHON_VERSION) -> lambda_.Code:
    """The functions' own code (`gateway/` and `handlers/`), one asset shared by every function."""
    bundler = FunctionCodeBundling(python_version=python_version)
    docker_command = (
        "cp -r /asset-input/gateway /asset-input/handlers /asset-output/ && "
        "python -m compileall -q --invalidation-mode unchecked-hash /asset-output"
    )
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint,
        bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry(fallback_image(python_version)),
            local=bundler,
            command=["bash", "-c", docker_command],
        ),
    )
