"""mypy follows only the aws_cdk modules the stack's code imports (pyproject.toml): one it
imports but mypy skips would be Any there, its calls unchecked."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_SOURCES = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "infra").rglob("*.py"))]


def _cdk_modules_imported(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names if alias.name.split(".")[0] == "aws_cdk"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aws_cdk":
            if node.module == "aws_cdk":  # from aws_cdk import aws_lambda as lambda_
                modules |= {f"aws_cdk.{alias.name}" for alias in node.names if alias.name.startswith("aws_")}
                modules.add("aws_cdk")
            else:
                modules.add(node.module)
    return modules


def _followed_cdk_modules() -> set[str]:
    overrides = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    followed: set[str] = set()
    for override in overrides:
        if override.get("follow_imports") == "normal":
            followed |= {name for name in override["module"] if name.split(".")[0] == "aws_cdk"}
    return followed


def test_every_aws_cdk_module_the_stack_imports_is_followed_by_mypy() -> None:
    imported: set[str] = set()
    for path in CDK_SOURCES:
        imported |= _cdk_modules_imported(path.read_text())
    assert "aws_cdk.aws_lambda" in imported  # the scan reads the stack's imports
    assert imported - _followed_cdk_modules() == set()


def test_the_scan_reads_both_import_forms() -> None:
    source = "import aws_cdk as cdk\nfrom aws_cdk import aws_sqs as sqs, Duration\nimport aws_cdk.aws_kms\n"
    assert _cdk_modules_imported(source) == {"aws_cdk", "aws_cdk.aws_sqs", "aws_cdk.aws_kms"}
