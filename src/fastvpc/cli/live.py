"""``fastvpc live TOPOLOGY --attach ENI=IFNAME ... [--attach igw=IFNAME] [--duration S] [--flow-log FILE]
[--flow-capacity N]``.

Attaches real interfaces to ports of a topology and runs the compiled data plane between
them until SIGINT/SIGTERM or ``--duration`` seconds, then prints the counters by action and
drop reason.  ``--flow-log FILE`` also writes the VPC Flow Log records of the run to FILE when it
ends (atomically: a complete file or none).  Needs CAP_NET_RAW (see ``docs/live.md``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


#: --batch-size and --snaplen: fastvpc.live.switch's BATCH_SIZE_MAX, SNAPLEN_MIN and SNAPLEN_MAX (not imported:
#: building the parser loads no compiled module)
BATCH_SIZES = (1, 65536)
SNAPLENS = (64, 262144)


def _attach_pair(text: str) -> tuple[str, str]:
    name, sep, ifname = text.partition("=")
    if not sep or not name or not ifname:
        raise argparse.ArgumentTypeError(f"--attach wants NAME=IFNAME (an ENI or gateway name, '=', an interface), "
                                         f"got {text!r}")
    return name, ifname


def add_parser(sub: Any) -> None:
    from fastvpc.cli import command
    from fastvpc.cli._common import add_flow_capacity_option, add_flow_log_options, int_in, output_path, positive_float

    p = sub.add_parser("live", help="run the data plane between real interfaces (AF_PACKET; needs CAP_NET_RAW)",
                       description="Attach Linux interfaces to ENIs and gateways of a topology and forward "
                                   "frames between them until SIGINT/SIGTERM or --duration.")
    p.add_argument("topology", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    p.add_argument("--attach", action="append", type=_attach_pair, default=[], metavar="NAME=IFNAME",
                   help="attach the ENI or gateway NAME (or port number) to interface IFNAME; repeat (not a NAT "
                        "gateway or a peering connection: their ports carry nothing)")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--arp-mode", choices=["target", "single_mac"], default="target")
    p.add_argument("--batch-size", type=int_in(*BATCH_SIZES), default=1024, metavar="N",
                   help=f"frames per round at most, {BATCH_SIZES[0]}..{BATCH_SIZES[1]} (default 1024)")
    p.add_argument("--snaplen", type=int_in(*SNAPLENS), default=2048, metavar="BYTES",
                   help=f"largest frame accepted, {SNAPLENS[0]}..{SNAPLENS[1]} bytes (default 2048)")
    add_flow_capacity_option(p)
    p.add_argument("--reference", action="store_true",
                   help="use the pure-Python reference forwarder instead of the compiled data plane (slow)")
    p.add_argument("--json", dest="json_path", type=output_path(".json"), metavar="FILE",
                   help="also write the counters as JSON to FILE ('-': stdout, the text then goes to stderr)")
    add_flow_log_options(p, "write VPC Flow Log records of the run to FILE when it ends: AWS's text format (.gz: "
                            "compressed), or Parquet for a name ending in .parquet (needs pyarrow)")
    p.set_defaults(func=command("live", run))


def _flow_log(args: argparse.Namespace) -> Any:
    """The FlowLog asked for by --flow-log*, its path checked before any interface is opened; or None."""
    from fastvpc.cli._common import UsageError, flow_log_from_args, same_file

    path = args.flow_log
    if path is None:
        if args.flow_log_format is not None:
            raise UsageError("--flow-log-format needs --flow-log FILE")
        return None
    if args.reference:
        raise UsageError("--flow-log needs the compiled data plane: it cannot be used with --reference")
    if args.json_path not in (None, "-") and same_file(path, args.json_path):
        raise UsageError(f"--flow-log {path!r} is also the --json file")
    return flow_log_from_args(args)


def run(args: argparse.Namespace) -> int:
    from fastvpc.cli._common import check_writable, human_stream, load_topology, write_json
    from fastvpc.live import LiveError, LivePermissionError, Switch

    if not args.attach:
        print("fastvpc live: error: nothing attached; give --attach NAME=IFNAME at least once", file=sys.stderr)
        return 2
    if args.json_path is not None:
        check_writable(args.json_path, "--json")
    flow_log = _flow_log(args)
    net = load_topology(args)
    attach: dict[Any, str] = {}
    for name, ifname in args.attach:
        key: Any = int(name) if name.isdigit() else name
        if key in attach:
            print(f"fastvpc live: error: {name} is attached twice", file=sys.stderr)
            return 2
        attach[key] = ifname
    if args.reference:
        from fastvpc.reference import ReferenceForwarder

        dp: Any = ReferenceForwarder(net, arp_mode=args.arp_mode)
    else:
        dp = net.compile(arp_mode=args.arp_mode)
    try:
        switch = Switch(dp, attach, network=net, batch_size=args.batch_size, snaplen=args.snaplen,
                        flow_log=flow_log, flow_capacity=args.flow_capacity)
        switch.open()
    except LivePermissionError as exc:
        print(f"fastvpc live: not permitted: {exc}", file=sys.stderr)
        return 77
    except LiveError as exc:
        print(f"fastvpc live: error: {exc}", file=sys.stderr)
        return 2
    with switch:
        att = ", ".join(f"{switch.labels[p]}={i}" for p, i in switch.attachments.items())
        until = f"for {args.duration:g} s" if args.duration is not None else "until Ctrl-C / SIGTERM"
        print(f"fastvpc live: forwarding {att} {until}", file=sys.stderr, flush=True)
        try:
            counters = switch.run(args.duration)
        finally:
            if flow_log is not None:
                # on every way out (the duration, a signal, an error): what was seen, as one whole file
                flow_log.write(args.flow_log)
    print(switch.format_counters(), file=human_stream(args.json_path), flush=True)
    if flow_log is not None:
        print(f"flow log: {len(flow_log):,} records -> {args.flow_log}", file=human_stream(args.json_path), flush=True)
    if args.json_path:
        write_json(args.json_path, counters)
    return 0
