"""Every path docs/ARCHITECTURE.md names exists, so the map stays true when code moves.

A backticked name with a slash (`infra/api.py`, `providers/anthropic/`) must exist below the
repository or one of the roots the document writes paths from (`functions/gateway/` in the code
map, `functions/gateway/providers/` in the providers section, ...); a bare file name
(`client.py`) must exist somewhere in the repository. S3 keys and templates (`<...>`, `{...}`,
`…`) and URL paths (`/v1`) are not files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "ARCHITECTURE.md"
BASES = (
    ROOT,
    ROOT / "functions",
    ROOT / "functions" / "gateway",
    ROOT / "functions" / "gateway" / "providers",
    ROOT / "functions" / "gateway" / "service",
    ROOT / "functions" / "gateway" / "service" / "plan",
)
_FILE_SUFFIXES = (".py", ".md", ".json", ".toml", ".sh", ".txt")
_NOT_FILES = re.compile(r"[<>{}…*=#\s]|^/|^\.")
_SKIPPED_DIRS = {".git", ".venv", "node_modules", "cdk.out", "__pycache__"}


def named_paths(text: str) -> list[str]:
    """What the document names as a file or directory: backticked, with a slash or a file suffix."""
    names = []
    for span in re.findall(r"`([^`\n]+)`", text):
        if _NOT_FILES.search(span):
            continue
        if "/" in span or span.endswith(_FILE_SUFFIXES):
            names.append(span)
    return names


def exists(name: str, files: set[str]) -> bool:
    if "/" not in name.rstrip("/"):
        return name.rstrip("/") in files
    return any((base / name).exists() for base in BASES)


def test_every_path_named_in_the_architecture_document_exists() -> None:
    files: set[str] = set()
    for _directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in _SKIPPED_DIRS]
        files.update(names, subdirectories)
    names = named_paths(DOCUMENT.read_text())
    assert len(names) > 50, names  # the check reads the document's paths, not nothing
    missing = sorted({name for name in names if not exists(name, files)})
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_a_moved_or_misspelled_path_is_found() -> None:
    files = {"client.py"}
    assert named_paths("`providers/anthropic_client.py` and `kept-files/<deployment>/` and `/v1`") == [
        "providers/anthropic_client.py"
    ]
    assert not exists("providers/anthropic_client.py", files)
    assert exists("providers/anthropic/client.py", files)
    assert not exists("no_such_module.py", files)
    assert exists("client.py", files)
