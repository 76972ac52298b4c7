"""Synth time and Lambda asset sizes.

    .venv/bin/python bench/asset_sizes.py              # synthesize into a temporary folder, timed
    .venv/bin/python bench/asset_sizes.py cdk.out      # read an existing cloud assembly (make synth)

Prints the function code asset (functions/, shared by every function) and the dependency
layer, unzipped and zipped (deflate, as the CDK uploads them), against the Lambda limits:
250 MB unzipped for a function and its layers, and this project's targets for the layer (its
sources, and with their byte code: `infra.bundling`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from infra import API_STACK_NAME  # noqa: E402
from infra.bundling import LAYER_SOURCES_TARGET_BYTES, LAYER_TARGET_BYTES  # noqa: E402

MB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * MB  # function code and layers together


def synthesize(outdir: Path) -> float:
    import aws_cdk as cdk

    from infra.stack import build

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    started = time.perf_counter()
    app = cdk.App(outdir=str(outdir), context=context)
    build(app, nag=True)
    app.synth()
    return time.perf_counter() - started


def asset_paths(assembly: Path) -> dict[str, Path]:
    """'code' and 'layer' -> the asset folders the API stack's template points at."""
    template = json.loads((assembly / f"{API_STACK_NAME}.template.json").read_text())
    manifest = json.loads((assembly / f"{API_STACK_NAME}.assets.json").read_text())
    by_key = {
        destination["objectKey"]: assembly / asset["source"]["path"]
        for asset in manifest["files"].values()
        for destination in asset["destinations"].values()
    }
    found: dict[str, Path] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            found["code"] = by_key[resource["Properties"]["Code"]["S3Key"]]
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            found["layer"] = by_key[resource["Properties"]["Content"]["S3Key"]]
    return found


def measure(folder: Path) -> dict[str, Any]:
    files = [path for path in folder.rglob("*") if path.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return {
        "files": len(files),
        "unzipped_bytes": sum(path.stat().st_size for path in files),
        "source_bytes": sum(path.stat().st_size for path in files if path.suffix != ".pyc"),
        "zipped_bytes": buffer.tell(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "assembly", nargs="?", type=Path, help="existing cloud assembly (default: synthesize)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_report_only_flag(parser)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cdk.out.") as scratch:
        assembly = args.assembly
        if assembly is None:
            assembly = Path(scratch)
            result["synth_seconds"] = round(synthesize(assembly), 2)
        for name, folder in asset_paths(assembly).items():
            result[name] = measure(folder)

    if args.json:
        print(json.dumps(result))
        return verdict(goals(result), report_only=args.report_only, out=sys.stderr)
    if "synth_seconds" in result:
        print(f"synth (both stacks, cdk-nag): {result['synth_seconds']:.1f} s")
    for name, label in (("code", "function code (functions/)"), ("layer", "dependency layer")):
        size = result[name]
        print(
            f"{label}: {size['files']} files, {size['unzipped_bytes'] / MB:.2f} MB unzipped, "
            f"{size['zipped_bytes'] / MB:.2f} MB zipped"
        )
    return verdict(goals(result), report_only=args.report_only)


def goals(result: dict[str, Any]) -> list[Goal]:
    """The layer within this project's target, code and layer within Lambda's limit."""
    total = result["code"]["unzipped_bytes"] + result["layer"]["unzipped_bytes"]
    return [
        Goal(
            "dependency layer sources",
            result["layer"]["source_bytes"] / MB,
            LAYER_SOURCES_TARGET_BYTES / MB,
            "MB",
        ),
        Goal(
            "dependency layer unzipped", result["layer"]["unzipped_bytes"] / MB, LAYER_TARGET_BYTES / MB, "MB"
        ),
        Goal("function + layer unzipped", total / MB, LAMBDA_UNZIPPED_LIMIT_BYTES / MB, "MB"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
