"""``fastvpc replay TOPOLOGY IN.pcap -o OUT.pcap [--drops DROPS.pcap] [--json SUMMARY]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("replay", help="push a pcap/pcapng capture through a topology; write what comes out")
    p.add_argument("topology", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    p.add_argument("input", help="capture to replay (pcap or pcapng, Ethernet)")
    p.add_argument("-o", "--output", help="pcap of the frames the data plane emits (rewritten)")
    p.add_argument("--drops", help="pcap of the dropped frames, as they came")
    p.add_argument("--json", dest="json_path", help="write the counts as JSON here")
    p.add_argument("--port-by", choices=["src-mac", "src-ip"], default="src-mac",
                   help="how a frame is mapped to its sending ENI (default: source MAC)")
    p.add_argument("--arp-mode", choices=["target", "single_mac"], default="target")
    p.add_argument("--batch-size", type=int, default=65536)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastvpc.cli._common import load_topology
    from fastvpc.drivers.replay import replay, write_json

    net = load_topology(args)
    summary = replay(net, args.input, args.output, drops_path=args.drops, port_by=args.port_by,
                     batch_size=args.batch_size, arp_mode=args.arp_mode,
                     progress=not args.no_progress and sys.stderr.isatty())
    print(summary)
    if args.json_path:
        write_json(summary, args.json_path)
    return 0
