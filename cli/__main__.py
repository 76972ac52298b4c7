"""`python -m cli keys <command> ...`: the same as `python -m cli.keys <command> ...`."""

from __future__ import annotations

import sys

from cli import keys

_TOOLS = {"keys": keys.main}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in _TOOLS:
        print(f"usage: python -m cli {{{','.join(_TOOLS)}}} ...", file=sys.stderr)
        return 2
    return _TOOLS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
