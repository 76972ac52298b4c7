"""cfn-lint on the session's synthesized templates: no error and no warning that .cfnlintrc
does not acknowledge (with its reason)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from infra import API_STACK_NAME, DATA_STACK_NAME, REPO_ROOT
from tests.infra.conftest import Synth

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CONFIG = REPO_ROOT / ".cfnlintrc"


def test_templates_pass_cfn_lint(synth: Synth) -> None:
    templates = [str(synth.outdir / name) for name in synth.templates]  # nested stacks' too
    assert {f"{name}.template.json" for name in (DATA_STACK_NAME, API_STACK_NAME)} < set(synth.templates)
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", "--", *templates],
        cwd=REPO_ROOT,  # where cfn-lint finds .cfnlintrc
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


def test_every_ignored_check_says_why() -> None:
    lines = CONFIG.read_text().splitlines()
    ignored = [i for i, line in enumerate(lines) if re.match(r"\s*-\s*[EWI]\d{4}\b", line)]
    assert ignored, "expected the acknowledged warnings in .cfnlintrc"
    for index in ignored:
        assert lines[index - 1].lstrip().startswith("#"), f"no reason above {lines[index].strip()}"
