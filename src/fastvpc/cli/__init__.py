"""The ``fastvpc`` command: demo, show, trace, replay, live, lab, import-aws.

Each subcommand's module is imported only when it runs (or when the parser is built), so
``fastvpc --help`` and ``fastvpc demo`` start fast and do not need optional packages.

No traceback is reachable: a bad option value is one argparse line and exit 2 (see
:mod:`fastvpc.cli._common`); every error while running is one ``fastvpc CMD: error: ...``
line.  ``FASTVPC_TRACEBACK=1`` shows the traceback of an unexpected internal error.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from fastvpc.cli._common import EXIT_USAGE, CliParser, UsageError, load_topology, outputs_clear_of_inputs, positive_int

__all__ = ["build_parser", "command", "main"]

# subcommand modules providing add_parser(subparsers)
_PLUGGED = ("fastvpc.cli.demo", "fastvpc.cli.pictures", "fastvpc.cli.trace", "fastvpc.cli.replay",
            "fastvpc.cli.live", "fastvpc.cli.lab")

#: Exit status of an unexpected internal error (EX_SOFTWARE).
EXIT_INTERNAL = 70


def command(name: str, fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``fn`` with every error turned into one line on stderr and an exit status."""
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from fastvpc.errors import FastVpcError

        try:
            outputs_clear_of_inputs(args)
            return int(fn(args) or 0)
        except UsageError as exc:
            _say(name, str(exc))
            return EXIT_USAGE
        except FastVpcError as exc:
            _say(name, str(exc))
            return EXIT_USAGE
        except (KeyError, ValueError) as exc:
            # typed errors of the library name the bad value; KeyError keeps its message in args[0]
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            _say(name, str(msg))
            return EXIT_USAGE
        except ImportError as exc:
            _say(name, f"{exc} (an optional package is missing: pip install it)")
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
        except BrokenPipeError:  # `fastvpc trace ... --json | head`: the reader left; not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            _say(name, f"{where}{exc.strerror or exc}")
            return EXIT_USAGE
        except Exception as exc:  # a bug: still one line, with a way to see more
            if os.environ.get("FASTVPC_TRACEBACK"):
                raise
            _say(name, f"internal error {type(exc).__name__}: {exc} (please report it; "
                       "FASTVPC_TRACEBACK=1 shows the traceback)")
            return EXIT_INTERNAL
    return run


def _say(name: str, msg: str) -> None:
    try:
        print(f"fastvpc {name}: error: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def build_parser() -> argparse.ArgumentParser:
    import fastvpc

    parser = CliParser(prog="fastvpc", description="A compiled model of the Amazon VPC data plane.")
    parser.add_argument("--version", action="version", version=f"fastvpc {fastvpc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    sub.required = True
    for module in _PLUGGED:
        importlib.import_module(module).add_parser(sub)
    return parser


def _command_parser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of subcommand ``command`` (``parser`` itself when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]   # typed Any by older typeshed
            return found
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:   # what parse_args says, but from the subcommand's parser: its name, its --help
            _command_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:   # argparse: --help, --version, or a one-line usage error
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    return int(args.func(args))


# names kept for callers of the previous layout
_positive_int = positive_int
__all__ += ["load_topology"]

if __name__ == "__main__":
    sys.exit(main())
