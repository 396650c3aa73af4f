"""Helpers shared by the subcommands: the parser, option types, topology loading, outputs.

Every bad option value is refused by argparse, before any work, with one line naming the
option and the value (``fastvpc replay: error: argument --batch-size: '0' is not a positive
whole number``) and exit status 2: the option types below raise ``ArgumentTypeError`` with the
value in the message, and :class:`CliParser` prints one line instead of the usage block.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from fastvpc.topology import Network

#: Exit status of a usage error or a bad input (argparse's own, and every refused value).
EXIT_USAGE = 2


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``PROG: error: MESSAGE (see PROG --help)``, and
    which takes options only by their full names: argparse's prefix matching read ``trace --src web1``
    as ``--src-ip web1`` (a confusing error about an address), and would read a future option's
    prefix as today's option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A bad combination of arguments found after parsing: one line, exit 2."""


# --------------------------------------------------------------------------- option types

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def int_in(lo: int, hi: int) -> Any:
    """A whole number in ``lo..hi``, as an option type (its range is in the message of a refusal)."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number in {lo}..{hi}")
        return value
    check.__name__ = "whole number"
    return check


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number of seconds")
    return value


def ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address (like 10.0.1.10)") from None


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def protocol(text: str) -> str:
    t = text.strip().lower()
    if t in ("icmp", "tcp", "udp"):
        return t
    try:
        n = int(t)
    except ValueError:
        n = -1
    if not 0 <= n <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not icmp, tcp, udp or an IP protocol number 0-255")
    return str(n)


def output_path(*extensions: str) -> Any:
    """An output file name whose extension is one of ``extensions``, or ``-`` (stdout)."""
    def check(text: str) -> str:
        if text == "-":
            return text
        if not text or not text.lower().endswith(extensions):
            raise argparse.ArgumentTypeError(f"{text!r} has an unknown extension: use "
                                             + ", ".join(extensions))
        return text
    check.__name__ = "output path"
    return check


# --------------------------------------------------------------------------- topology

SEED_NAMES = ("seed",)


def load_topology(args: argparse.Namespace) -> Network:
    """The network named by ``args.topology``: a JSON/YAML file, or ``seed`` for the built-in
    example (only when asked for: a missing argument is a usage error, never a silent fallback)."""
    from fastvpc.examples import seed_vpc
    from fastvpc.files import load

    name = getattr(args, "topology", None)
    if getattr(args, "example", False) and name is None:
        return seed_vpc()
    if name is None:
        raise UsageError("a topology file is needed (JSON or YAML; 'seed' for the built-in example)")
    if name in SEED_NAMES and not os.path.exists(name):
        return seed_vpc()
    return load(name)


def close_names(word: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``names`` that look like ``word`` (for "did you mean" hints)."""
    pool = list(dict.fromkeys(names))
    got = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    low = word.lower()
    for cand in pool:   # prefixes and different case count too ("web" -> web1, web2)
        if len(got) >= n:
            break
        if cand not in got and (cand.lower().startswith(low) or cand.lower() == low) and low:
            got.append(cand)
    return got


# --------------------------------------------------------------------------- outputs

def human_stream(json_dest: str | None) -> Any:
    """Where human-readable text goes: stderr when the JSON goes to stdout (``-``)."""
    return sys.stderr if json_dest == "-" else sys.stdout


def write_json(dest: str, data: Any) -> None:
    """``data`` as indented JSON to ``dest`` (a path, or ``-`` for stdout)."""
    text = json.dumps(data, indent=2, sort_keys=True)
    if dest == "-":
        print(text, flush=True)
    else:
        with open(dest, "w") as fh:
            fh.write(text + "\n")


def check_writable(path: str, what: str) -> None:
    """Refuse, before any work, an output path that cannot be written (missing folder, a folder)."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{what} {path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{what} {path!r} is not writable")


def same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def distinct_outputs(inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str, str | None]]) -> None:
    """Refuse an output equal to an input or to another output: (label, path) pairs."""
    seen: list[tuple[str, str]] = []
    for label, path in outputs:
        if path is None or path == "-":
            continue
        for ilabel, ipath in inputs:
            if same_file(path, ipath):
                raise UsageError(f"{label} {path!r} is the {ilabel}: it would be overwritten while being read")
        for olabel, opath in seen:
            if same_file(path, opath):
                raise UsageError(f"{label} {path!r} is also given as {olabel}")
        check_writable(path, label)
        seen.append((label, path))


#: (label, attribute) of the files and folders a subcommand reads, and of the files it writes
_READS = (("the topology", "topology"), ("the input capture", "input"), ("the AWS folder", "aws"), ("the AWS folder", "folder"))
_WRITES = (("-o/--output", "output"), ("--drops", "drops"), ("--json", "json_path"), ("--flow-log", "flow_log"))


def outputs_clear_of_inputs(args: Any) -> None:
    """Refuse, before any work, an output that is one of the command's inputs (the topology file,
    the capture) or lies inside the AWS folder it reads: every subcommand, whatever its own checks."""
    reads = [(label, path) for label, attr in _READS
             if isinstance(path := getattr(args, attr, None), str) and path != "-" and os.path.exists(path)]
    if not reads:
        return
    for olabel, attr in _WRITES:
        out = getattr(args, attr, None)
        if not isinstance(out, str) or out == "-":
            continue
        for ilabel, path in reads:
            if os.path.isdir(path):
                folder = os.path.realpath(path)
                if os.path.commonpath([folder, os.path.realpath(out)]) == folder:
                    raise UsageError(f"{olabel} {out!r} is inside {ilabel} {path!r}: it could overwrite a file "
                                     "there, and the next run would read it")
            elif same_file(out, path):
                raise UsageError(f"{olabel} {out!r} is {ilabel}: it would be overwritten")


#: --flow-capacity of live and lab up: the range, and the default (fastvpc.live.switch.LIVE_FLOW_CAPACITY; not
#: imported: building the parser loads no compiled module).  At the top the table is about 1 GB (63 bytes a flow)
FLOW_CAPACITIES = (1, 16_777_216)
DEFAULT_FLOW_CAPACITY = 262_144


def add_flow_capacity_option(p: Any) -> None:
    """``--flow-capacity N``: the switch's connection-tracking table, one for all ENIs (live and lab up)."""
    p.add_argument("--flow-capacity", type=int_in(*FLOW_CAPACITIES), default=DEFAULT_FLOW_CAPACITY, metavar="N",
                   help="flows the switch's connection-tracking table holds, one table for all ENIs: when one VM "
                        "fills it, new flows of every VM are dropped (FLOW_TABLE_FULL) until entries expire; "
                        f"{FLOW_CAPACITIES[0]}..{FLOW_CAPACITIES[1]} (default {DEFAULT_FLOW_CAPACITY}, about 16.6 MB: "
                        "63 bytes a flow)")


def add_flow_log_options(p: Any, help_file: str) -> None:
    """``--flow-log FILE``, ``--flow-log-window``, ``--flow-log-format`` (replay and live)."""
    p.add_argument("--flow-log", metavar="FILE", help=help_file)
    p.add_argument("--flow-log-window", type=int, choices=[60, 600], default=600,
                   help="flow log aggregation interval in seconds (default 600, AWS's default)")
    p.add_argument("--flow-log-format", metavar="FORMAT", default=None,
                   help="flow log fields in AWS's syntax, e.g. '${version} ${interface-id} ${srcaddr} ...' "
                        "(default: version 2's 14 fields)")


def flow_log_from_args(args: Any) -> Any:
    """The FlowLog asked for by the --flow-log* options, its path checked writable (and pyarrow there
    for .parquet); None without --flow-log.  The command checks its own path clashes first."""
    from fastvpc.dataplane.flowlogs import FlowLog, FlowLogError, _pyarrow

    path = args.flow_log
    check_writable(path, "--flow-log")
    try:
        log = FlowLog(window=args.flow_log_window, fields=args.flow_log_format)
        if path.lower().endswith(".parquet"):
            _pyarrow()
    except FlowLogError as exc:
        raise UsageError(str(exc)) from None
    return log
