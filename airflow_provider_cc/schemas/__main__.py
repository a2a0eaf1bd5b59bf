"""``python -m airflow_provider_cc.schemas --check | --write [--directory DIR]``.

``--check`` compares the shipped JSON Schemas with the ones generated from the catalogue (exit 1 when
stale); ``--write`` regenerates them, which is meant for a checkout, not an installed package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airflow_provider_cc.schemas import DIRECTORY, stale, write_all


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_cc.schemas",
                                     description="Check or regenerate the JSON Schemas of the output records.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 when a schema file differs from the catalogue")
    action.add_argument("--write", action="store_true", help="regenerate the schema files from the catalogue")
    parser.add_argument("--directory", type=Path, default=DIRECTORY, help=f"schema folder (default: {DIRECTORY})")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_all(args.directory):
            print(path)
        return 0
    outdated = stale(args.directory)
    for path in outdated:
        print(f"stale: {path}", file=sys.stderr)
    if outdated:
        print("regenerate with: python -m airflow_provider_cc.schemas --write", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
