"""The ``fastvpc`` command: demo, show, trace, replay, live, import-aws.

Each subcommand's module is imported only when it runs, so ``fastvpc --help`` and
``fastvpc demo`` start fast and do not need optional packages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fastvpc.cli._common import load_topology
from fastvpc.errors import FastVpcError

# subcommand -> module providing add_parser(subparsers) and run(args) -> int
_PLUGGED: dict[str, str] = {
    "trace": "fastvpc.cli.trace",
    "import-aws": "fastvpc.cli.trace",
    "replay": "fastvpc.cli.replay",
    "live": "fastvpc.cli.live",
}




def _cmd_demo(args: argparse.Namespace) -> int:
    from fastvpc.cli.demo import run_demo

    return run_demo(n_frames=args.frames, n_threads=args.threads)


def _cmd_show(args: argparse.Namespace) -> int:
    from fastvpc.cli.show import render

    print(render(load_topology(args)))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    import fastvpc

    parser = argparse.ArgumentParser(
        prog="fastvpc", description="A compiled model of the Amazon VPC data plane.")
    parser.add_argument("--version", action="version", version=f"fastvpc {fastvpc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="push a mixed batch through the built-in seed VPC and time it")
    p.add_argument("--frames", type=_positive_int, default=1_000_000, help="frames in the throughput batch (default 1M)")
    p.add_argument("--threads", type=int, default=None, help="n_threads for the throughput run (default: all)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("show", help="print a topology's VPCs, subnets, route tables and ENIs")
    p.add_argument("topology", nargs="?", help="topology file (JSON or YAML); 'seed' for the built-in example")
    p.add_argument("--example", action="store_true", help="show the built-in seed VPC")
    p.set_defaults(func=_cmd_show)

    seen: set[str] = set()
    for module in _PLUGGED.values():
        if module in seen:
            continue
        seen.add(module)
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FastVpcError as exc:
        print(f"fastvpc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"fastvpc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `fastvpc trace ... --json | head`: the reader left; not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
