"""Starting and stopping one Lambda execution environment as a local process (no LocalStack import).

The LocalStack plugin (tests/localstack/localstack_plugin.py) asks this for each environment
LocalStack creates; the process itself runs tests/localstack/lambda_runtime.py.

Which interpreter runs a runtime, and where its boto3 comes from, is the JSON in
`LAMBDA_PROCESS_RUNTIMES`, set by `make localstack-test`:
`{"python3.12": {"python": "/path/to/python3.12", "runtime_dir": ".localstack/runtime/python3.12"}}`.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

RUNTIMES_ENV = "LAMBDA_PROCESS_RUNTIMES"
RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
# What a process inherits from LocalStack's own environment; the rest is the function's.
INHERITED = ("PATH", "LANG", "LC_ALL", "HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


class RuntimeNotConfigured(LookupError):
    """No interpreter is configured for a function's runtime."""


@dataclass(frozen=True)
class RuntimeInstall:
    python: str  # the interpreter of the runtime's version
    runtime_dir: str | None  # what the Lambda runtime itself provides (boto3), last on sys.path


def configured_runtimes(environ: Mapping[str, str] = os.environ) -> dict[str, RuntimeInstall]:
    raw = json.loads(environ.get(RUNTIMES_ENV) or "{}")
    return {
        name: RuntimeInstall(python=str(entry["python"]), runtime_dir=entry.get("runtime_dir"))
        for name, entry in raw.items()
    }


def runtime_install(runtime: str, environ: Mapping[str, str] = os.environ) -> RuntimeInstall:
    runtimes = configured_runtimes(environ)
    if runtime not in runtimes:
        raise RuntimeNotConfigured(
            f"no local interpreter for the Lambda runtime {runtime!r}: "
            f"{RUNTIMES_ENV} names {sorted(runtimes)}"
        )
    return runtimes[runtime]


def find_python(version: str) -> str | None:
    """`pythonX.Y` on PATH that runs, else pyenv's installation of it (pyenv's shim fails for a
    version installed but not selected); None when there is none."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0
        ):
            return candidate
    return None


def python_version(runtime: str) -> str:
    """`python3.12` -> `3.12`."""
    return runtime.removeprefix("python")


@dataclass(frozen=True)
class ProcessSpec:
    runtime: str  # e.g. python3.12
    install: RuntimeInstall
    code_dir: Path
    layer_dirs: Sequence[Path]
    function_env: Mapping[str, str]  # what LocalStack computed for the environment
    port: int
    log_file: Path

    def sys_path(self) -> list[str]:
        """Lambda's order: the code, each layer's python/lib/pythonX.Y/site-packages and python/,
        then what the runtime provides."""
        paths = [str(self.code_dir)]
        version = python_version(self.runtime)
        for layer in self.layer_dirs:
            site_packages = layer / "python" / "lib" / f"python{version}" / "site-packages"
            paths += [str(site_packages), str(layer / "python")]
        if self.install.runtime_dir:
            paths.append(str(Path(self.install.runtime_dir).resolve()))
        return paths

    def environment(self, parent: Mapping[str, str] = os.environ) -> dict[str, str]:
        env = {name: parent[name] for name in INHERITED if name in parent}
        env.update({name: str(value) for name, value in self.function_env.items()})
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "LAMBDA_RUNTIME_PORT": str(self.port),
                "LAMBDA_RUNTIME_SYS_PATH": os.pathsep.join(self.sys_path()),
                "PYTHONUNBUFFERED": "1",
                # Lambda's file systems are read-only: no byte code written next to the code.
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    def command(self) -> list[str]:
        # -I: neither the working directory nor PYTHON* variables add to sys.path, as in Lambda.
        return [self.install.python, "-I", str(RUNTIME_SCRIPT)]


class LambdaProcess:
    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.spec.log_file.open("ab")
        # Same process group as LocalStack: stopping LocalStack's group stops every environment.
        self._process = subprocess.Popen(
            self.spec.command(),
            env=self.spec.environment(),
            cwd=self.spec.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, grace_seconds: float = 2) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_exit(self, timeout_seconds: float) -> int | None:
        """The exit status once the process has ended by itself (None if never started)."""
        return None if self._process is None else self._process.wait(timeout_seconds)

    def logs(self) -> str:
        try:
            return self.spec.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
