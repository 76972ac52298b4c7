"""Resources per synthesized template against CloudFormation's limit: `python -m infra.resource_count
[cdk.out]` prints one line per template (the stacks and their nested stacks) and exits 1 when one
holds more than RESOURCE_BUDGET (`make synth` runs it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# CloudFormation refuses a template of more than 500 resources.
CLOUDFORMATION_RESOURCE_LIMIT = 500
# Each template stays under 60 % of it: room for the routes and functions to come.
RESOURCE_BUDGET = CLOUDFORMATION_RESOURCE_LIMIT * 60 // 100
TEMPLATE_SUFFIX = ".template.json"


def template_counts(outdir: Path) -> dict[str, int]:
    """Template file name -> its resource count, for every template of a cloud assembly."""
    return {
        path.name: len(json.loads(path.read_text()).get("Resources", {}))
        for path in sorted(outdir.glob(f"*{TEMPLATE_SUFFIX}"))
    }


def over_budget(counts: dict[str, int], budget: int = RESOURCE_BUDGET) -> dict[str, int]:
    return {name: count for name, count in counts.items() if count > budget}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)
    counts = template_counts(args.outdir)
    if not counts:
        raise SystemExit(f"no templates in {args.outdir}: run `cdk synth` first")
    width = max(len(name) for name in counts)
    print(
        f"Resources per template (budget {RESOURCE_BUDGET}, "
        f"CloudFormation's limit {CLOUDFORMATION_RESOURCE_LIMIT}):"
    )
    for name, count in counts.items():
        print(f"  {name:<{width}}  {count:>3}")
    over = over_budget(counts)
    if over:
        print(f"Over the budget of {RESOURCE_BUDGET}: {', '.join(sorted(over))}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
