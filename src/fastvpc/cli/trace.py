"""``fastvpc trace`` and ``fastvpc import-aws``.

::

    fastvpc trace (TOPOLOGY | --aws FOLDER) --from ENI-or-IP --to IP [--proto icmp|tcp|udp] [--port N] [--json]
    fastvpc import-aws FOLDER [-o topology.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("trace", help="explain, hop by hop, what the VPC does with one packet",
                       description="Build the packet a VM would send and explain its path: ingress ENI, subnet, "
                                   "route table, matched route, target, verdict (from the compiled data plane).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("topology", nargs="?", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    src.add_argument("--aws", metavar="FOLDER", help="import this folder of aws ec2 describe-* JSON instead")
    p.add_argument("--from", dest="src", required=True, metavar="ENI-OR-IP",
                   help="sending ENI (name or AWS id), instance id (with --aws), or an IP owned by one ENI")
    p.add_argument("--to", dest="dst", required=True, metavar="IP", help="destination IPv4 address")
    p.add_argument("--proto", default="icmp", help="icmp (echo request, default), tcp (SYN), udp, or a number")
    p.add_argument("--port", type=int, default=None, help="destination port for tcp/udp (default 80 / 53)")
    p.add_argument("--src-ip", default=None, help="source IP to put in the packet (default: the ENI's primary IP)")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    p.set_defaults(func=run, _fastvpc_cmd="trace")

    p = sub.add_parser("import-aws", help="import aws ec2 describe-* JSON; print the import report",
                       description="Read a folder of describe-* JSON (a region folder, region folders, "
                                   "accounts/ID/REGION/, or a Batfish snapshot with aws_configs/).")
    p.add_argument("folder", help="folder of describe-* JSON files")
    p.add_argument("-o", "--output", help="write the imported network as a topology file (JSON or YAML)")
    p.add_argument("--service-enis", choices=["eni", "skip"], default="eni",
                   help="import service-managed ENIs (NAT/TGW/endpoint...) as ENIs (default) or leave them out")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run, _fastvpc_cmd="import-aws")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_fastvpc_cmd", "trace") == "import-aws":
        return _import_aws(args)
    return _trace(args)


def _trace(args: argparse.Namespace) -> int:
    from fastvpc.trace import trace_packet

    aliases = None
    if args.aws:
        from fastvpc.aws import import_aws

        imp = import_aws(args.aws)
        net = imp.network
        aliases = imp.instances
        if len(imp.report):
            print(imp.report.summary() + " (fastvpc import-aws shows the details)", file=sys.stderr)
    else:
        from fastvpc.cli._common import load_topology

        net = load_topology(args)
    try:
        t = trace_packet(net, args.src, args.dst, proto=args.proto, port=args.port, src_ip=args.src_ip,
                         aliases=aliases)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"fastvpc trace: error: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(t.to_dict(), indent=2))
    else:
        print(t)
    return 0


def _import_aws(args: argparse.Namespace) -> int:
    from fastvpc.aws import import_aws

    imp = import_aws(args.folder, service_enis=args.service_enis)
    if args.json:
        print(json.dumps(imp.report.to_dict(), indent=2))
    else:
        print(imp.report)
    if args.output:
        imp.network.save(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
