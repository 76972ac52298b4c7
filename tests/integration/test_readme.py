"""Every ```bash, ```sh and ```python block of README.md runs, as written, against `make serve`.

One `python -m devserver` (what `make serve` runs) is started for the module on free ports,
with the simulator and an empty data directory. The blocks run in README order, from the
repository root, as a reader would paste them: bash blocks with `bash -euo pipefail`, python
blocks with this interpreter (.venv's) and PYTHONPATH=functions, as the README says.

Filled in by the test: `make serve`'s default addresses are rewritten to the test server's
(127.0.0.1:4000 or localhost:4000 -> its PORT, :4001 -> its simulator), and PORT is set, so that
`make keys` finds it as it finds `make serve` on PORT.

Not run: a block directly preceded by `<!-- readme-test: skip (reason) -->` (deploy commands,
`make serve` itself, which blocks, `make test`). A block that fails is a failing test whose
message names its line in README.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devserver import REPO_ROOT
from tests.integration.devserver_process import ServerProcess, devserver_env, running_devserver

README = REPO_ROOT / "README.md"
RUNNABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
SKIP_MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*\S[^)]*)\)\s*-->$")
ANY_MARKER = re.compile(r"^<!--\s*readme-test:")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+)\s*(?P<lang>[\w+-]*)")
BLOCK_TIMEOUT_SECONDS = 180
# Commands that must never run from here: they block, recurse into this suite, or deploy.
NEVER_RUN = re.compile(r"\bmake\s+(serve|test|deploy|bootstrap|destroy|localstack-\S+|e2e-deployed)\b")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip_reason: str | None

    @property
    def label(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def parse_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the skip marker right above each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        fence = opening.group("fence")
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"README.md:{start + 1}: the code block is never closed")
        index += 1
        previous = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        if ANY_MARKER.match(previous) and not SKIP_MARKER.match(previous):
            raise AssertionError(
                f"README.md:{start}: malformed marker {previous!r}; "
                "write <!-- readme-test: skip (the reason) -->"
            )
        skip = SKIP_MARKER.match(previous)
        blocks.append(
            Block(
                line=start + 1,
                lang=opening.group("lang").lower(),
                code="\n".join(body) + "\n",
                skip_reason=skip.group("reason").strip() if skip else None,
            )
        )
    return blocks


BLOCKS = [block for block in parse_blocks(README.read_text()) if block.lang in RUNNABLE]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("readme")
    with running_devserver(devserver_env(workdir / "data"), workdir / "devserver.log") as process:
        yield process


def _filled_in(code: str, server: ServerProcess) -> str:
    simulator = server.simulator_url.removeprefix("http://")
    for host in ("127.0.0.1", "localhost"):
        code = code.replace(f"{host}:4000", f"127.0.0.1:{server.port}").replace(f"{host}:4001", simulator)
    return code


def _environment(server: ServerProcess) -> dict[str, str]:
    # Not the parent make's MAKEFLAGS/MAKELEVEL (make test): a reader runs `make keys` at the top.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
        and not name.startswith(("OPENAI_", "AZURE_", "GATEWAY_", "AWS_ENDPOINT"))
    }
    env["PORT"] = str(server.port)
    env["PYTHONPATH"] = "functions"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[block.label for block in BLOCKS])
def test_readme_block_runs(block: Block, server: ServerProcess, tmp_path: Path) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"{block.label}: {block.skip_reason}")
    forbidden = NEVER_RUN.search(block.code)
    assert forbidden is None, f"{block.label}: `{forbidden.group(0)}` needs a readme-test skip marker"
    code = _filled_in(block.code, server)
    if RUNNABLE[block.lang] == "bash":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = tmp_path / f"readme_line_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, str(script)]
    try:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=_environment(server),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.label}: still running after {BLOCK_TIMEOUT_SECONDS}s\n{block.code}\n{exc}")
    assert result.returncode == 0, (
        f"{block.label} failed (exit status {result.returncode}):\n{block.code}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def test_every_language_the_readme_uses_is_exercised() -> None:
    """The parser finds the blocks: if it broke, the suite above would silently run nothing."""
    run = [block for block in BLOCKS if block.skip_reason is None]
    assert {RUNNABLE[block.lang] for block in run} == {"bash", "python"}
    assert len(run) >= 5


def test_the_parser_reads_fences_markers_and_line_numbers() -> None:
    text = "\n".join(
        [
            "# Title",  # 1
            "```bash",  # 2
            "echo one",  # 3
            "```",  # 4
            "<!-- readme-test: skip (blocks forever) -->",  # 5
            "",  # 6
            "```sh",  # 7
            "make serve",  # 8
            "```",  # 9
            "```text",  # 10
            "output",  # 11
            "```",  # 12
        ]
    )
    blocks = parse_blocks(text)
    assert [(b.line, b.lang, b.code, b.skip_reason) for b in blocks] == [
        (2, "bash", "echo one\n", None),
        (7, "sh", "make serve\n", "blocks forever"),
        (10, "text", "output\n", None),
    ]
    with pytest.raises(AssertionError, match="malformed marker"):
        parse_blocks("<!-- readme-test: skip -->\n```bash\necho\n```\n")
