"""The ``fastvpc`` command."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastvpc")
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    if args.version:
        import fastvpc
        print(fastvpc.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
