"""Write the GraphQL SDL to ``schema.graphql`` at the repository root: ``python -m gateway.web.schema_export``.

``--check`` only compares and exits 1 when the file is stale (for CI); the test suite does the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.web.app import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def sdl() -> str:
    return build_schema().as_str().rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.web.schema_export", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if schema.graphql is stale, write nothing"
    )
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    text = sdl()
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run python -m gateway.web.schema_export", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
