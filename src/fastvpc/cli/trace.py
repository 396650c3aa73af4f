"""``fastvpc trace`` and ``fastvpc import-aws``.

::

    fastvpc trace (TOPOLOGY | --aws FOLDER) --from ENI-or-IP --to IP [--proto icmp|tcp|udp] [--port N] [--reply]
                  [--no-filters] [--json [FILE|-]]
    fastvpc import-aws FOLDER [-o topology.json] [--json [FILE|-]]

Exit status of ``trace`` (like ``diff`` or ``grep``, so scripts can test it): 0 when the packet
is delivered, answered (ARP/echo reply) or leaves the VPC toward its destination (``FORWARD``
to a gateway or peering), 1 when it is dropped, 2 for a usage error or a bad input.
``import-aws`` exits 1 when a describe file could not be parsed (the report is still printed
and the topology still written from what could be read), else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from fastvpc.cli._common import (UsageError, close_names, distinct_outputs, human_stream, ipv4, output_path,
                                 port_number, protocol, write_json)

EXIT_DROPPED = 1
EXIT_UNREADABLE = 1


def add_parser(sub: Any) -> None:
    from fastvpc.cli import command

    p = sub.add_parser("trace", help="explain, hop by hop, what the VPC does with one packet",
                       description="Build the packet a VM would send and explain its path: ingress ENI, subnet, "
                                   "route table, matched route, target, verdict (from the compiled data plane). "
                                   "Exit status: 0 delivered, answered or forwarded out of the VPC toward its "
                                   "destination; 1 dropped; 2 usage error or bad input.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("topology", nargs="?", help="topology file (JSON/YAML), or 'seed' for the built-in example")
    src.add_argument("--aws", metavar="FOLDER", help="import this folder of aws ec2 describe-* JSON instead")
    p.add_argument("--from", dest="src", required=True, metavar="ENI-OR-IP",
                   help="sending ENI (name or AWS id), instance id or Name tag (from an AWS import), "
                        "an IP owned by one ENI, or an internet, VPN or transit gateway: the packet then "
                        "enters from an outside host (source 198.51.100.10 unless --src-ip)")
    p.add_argument("--to", dest="dst", required=True, metavar="IP", help="destination IPv4 address")
    # --proto is checked in run(), before any work, so callers of run() get exit 2 too
    p.add_argument("--proto", default="icmp", help="icmp (echo request, default), tcp (SYN), udp, or a number")
    p.add_argument("--port", type=port_number, default=None, help="destination port for tcp/udp (default 80 / 53)")
    p.add_argument("--src-ip", type=ipv4, default=None,
                   help="source IP to put in the packet (default: the ENI's primary IP; from a gateway "
                        "198.51.100.10)")
    p.add_argument("--json", dest="json_path", nargs="?", const="-", default=None, metavar="FILE",
                   type=output_path(".json"),
                   help="write the trace as JSON to FILE ('-' or nothing: stdout, the text then goes to stderr)")
    p.add_argument("--reply", action="store_true",
                   help="trace the return packet (SYN-ACK, UDP response, echo reply) with the forward flow tracked "
                        "by connection tracking: the forward packet runs first through the same flow table")
    p.add_argument("--no-filters", dest="filters", action="store_false",
                   help="compile without security groups and network ACLs (the routing view)")
    detail = p.add_mutually_exclusive_group()
    detail.add_argument("--summary", action="store_true", help="print only the verdict line")
    detail.add_argument("--detailed", action="store_true",
                        help="also list every route of the deciding route table, numbered within it, "
                             "and a hint when no route matched")
    p.add_argument("--format", dest="trace_format", default="text",
                   choices=("text", "json", "mermaid", "dot", "svg"),
                   help="what to print: text (default), json (as --json -), or the path drawn as mermaid, "
                        "dot or svg (svg needs Graphviz's dot program) with the deciding hop marked")
    p.set_defaults(func=command("trace", _trace))

    p = sub.add_parser("import-aws", help="import aws ec2 describe-* JSON; print the import report",
                       description="Read a folder of describe-* JSON (a region folder, region folders, "
                                   "accounts/ID/REGION/, or a Batfish snapshot with aws_configs/). "
                                   "Exit status 1 when a file could not be parsed (the report says which).")
    p.add_argument("folder", help="folder of describe-* JSON files")
    p.add_argument("-o", "--output", type=output_path(".json", ".yaml", ".yml"),
                   help="write the imported network as a topology file (.json, .yaml or .yml)")
    p.add_argument("--service-enis", choices=["eni", "skip"], default="eni",
                   help="import service-managed ENIs (NAT/TGW/endpoint...) as ENIs (default) or leave them out")
    p.add_argument("--json", dest="json_path", nargs="?", const="-", default=None, metavar="FILE",
                   type=output_path(".json"),
                   help="write the report as JSON to FILE ('-' or nothing: stdout, the text then goes to stderr)")
    p.set_defaults(func=command("import-aws", _import_aws))


def run(args: argparse.Namespace) -> int:
    """Kept for callers of the previous layout: dispatch on the subcommand."""
    return int(args.func(args))


# --------------------------------------------------------------------------- AWS folders

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")


def snapshots_in(folder: str | os.PathLike[str]) -> list[str]:
    """The separate snapshots a folder seems to hold: folders with their own ``aws_configs/``,
    or folders of describe-* JSON that are neither regions nor ``accounts/ID`` levels.  One
    import merges them all into one network, which is rarely what was meant."""
    root = Path(folder)
    if (root / "aws_configs").is_dir() or not root.is_dir():
        return []
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        rel = here.relative_to(root)
        if "aws_configs" in dirnames:
            found.append(str(rel))
            dirnames[:] = []   # its contents belong to it
            continue
        if here == root or not any(f.lower().endswith(".json") for f in filenames):
            continue
        parts = rel.parts
        if _REGION.match(here.name) or (len(parts) >= 2 and parts[-2] == "accounts"):
            continue
        found.append(str(rel))
        dirnames[:] = []
    return found if len(found) > 1 else []


def _warn_snapshots(folder: str) -> None:
    snaps = snapshots_in(folder)
    if snaps:
        print(f"warning: {folder} holds {len(snaps)} snapshots ({', '.join(snaps[:4])}"
              f"{', ...' if len(snaps) > 4 else ''}): they are imported together as one network; "
              "give one of them to import it alone", file=sys.stderr)


def unreadable_files(report: Any) -> list[str]:
    """Files of an import report that could not be parsed (not JSON, or not a describe-* object)."""
    return [e.file for e in report if e.status == "skipped" and e.element.lower().endswith(".json")
            and os.path.basename(e.file) == e.element]


def _aws_import(folder: str, **kw: Any) -> Any:
    from fastvpc.aws import import_aws

    if not os.path.exists(folder):
        raise UsageError(f"AWS folder {folder!r} does not exist")
    _warn_snapshots(folder)
    imp = import_aws(folder, **kw)
    _keep_aliases(imp)
    return imp


def _keep_aliases(imp: Any) -> None:
    """Instance ids and Name tags as aliases of the network, so a written topology keeps them."""
    net = imp.network
    aliases: dict[str, list[str]] = dict(getattr(net, "aliases", {}) or {})
    for iid, names in imp.instances.items():
        aliases.setdefault(iid, list(names))
    by_tag: dict[str, list[list[str]]] = {}
    for obj_id, tag in getattr(imp, "names", {}).items():
        target = imp.instances.get(obj_id) or ([obj_id] if _exists(net, obj_id) else [])
        if target and not _exists(net, tag):
            by_tag.setdefault(tag, []).append(list(target))
    for tag, targets in sorted(by_tag.items()):
        if tag in aliases:
            continue
        if len(targets) > 1:   # the same Name on several objects: naming it would pick one silently
            print(f"note: Name tag {tag!r} is on {len(targets)} objects; use their ids", file=sys.stderr)
            continue
        aliases[tag] = targets[0]
    net.aliases = aliases


def _exists(net: Any, name: str) -> bool:
    try:
        net.find(name)
    except KeyError:
        return False
    return True


# --------------------------------------------------------------------------- trace

def _check_source(net: Any, src: str, aliases: dict[str, list[str]], report: Any = None) -> None:
    """An unknown --from name is a usage error with the close names offered (ENIs, the instance ids and Name
    tags of ENIs, gateways), and, for an AWS folder, what its import report says of that name; what may
    start a trace is trace.resolve_source's rule (one place), its refusal is the message."""
    from ipaddress import IPv4Address

    from fastvpc.trace import resolve_source

    text = src.strip()
    if text in aliases:
        return
    try:
        IPv4Address(text)
        return          # an address: trace_packet names the ENI that owns it, or says none does
    except ValueError:
        pass
    try:
        resolve_source(net, text)
        return
    except ValueError as exc:
        raise UsageError(f"--from: {exc}") from None
    except KeyError:
        pass
    eni_names = {e.name for e in net.enis}
    enis = [e.name for e in net.enis] + [a for a, names in aliases.items()     # an SG's or NACL's Name tag
                                         if names and all(n in eni_names for n in names)]   # starts no trace
    gateways = [g.name for g in _gateways(net)]
    hint = close_names(text, enis + gateways)
    said = [f"the import report: {e.status} {e.why}" for e in (report.about(text) if report is not None else [])]
    listing = f"ENIs: {', '.join(enis[:8])}{', ...' if len(enis) > 8 else ''}" if enis else "no ENIs"
    if gateways:
        listing += f"; gateways: {', '.join(gateways[:4])}{', ...' if len(gateways) > 4 else ''}"
    raise UsageError(f"--from {text!r} is neither an ENI, an instance, a Name tag nor an IPv4 address of this "
                     "network" + (f"; {'; '.join(said[:2])}" if said else "")
                     + (f"; did you mean {', '.join(hint)}?" if hint else f" ({listing})"))


def _gateways(net: Any) -> list[Any]:
    """The gateways a trace can enter through, for the close names of an unknown --from."""
    from fastvpc.trace import SOURCE_GATEWAYS

    return [t for t in net.targets if isinstance(t, SOURCE_GATEWAYS)]


def exit_status(action: Any) -> int:
    """0 delivered / answered / forwarded toward the destination, 1 dropped."""
    from fastvpc.verdicts import Action

    return EXIT_DROPPED if int(action) == int(Action.DROP) else 0


def _trace(args: argparse.Namespace) -> int:
    from fastvpc.trace import trace_packet

    try:
        proto = protocol(args.proto)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument --proto: {exc}") from None
    try:
        dst = ipv4(args.dst)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument --to: {exc}") from None
    if args.port is not None and proto not in ("tcp", "udp", "6", "17"):
        raise UsageError(f"argument --port: {args.port} given, but --proto {args.proto} has no ports")
    json_path = getattr(args, "json_path", None)
    if json_path is True:   # older callers: --json as a flag
        json_path = "-"
    fmt = getattr(args, "trace_format", "text")
    if fmt not in ("text", "json") and json_path == "-":
        raise UsageError(f"--format {fmt} and --json - would both write to stdout: give --json a FILE")
    if fmt == "svg" and shutil.which("dot") is None:
        from fastvpc.cli.pictures import render_svg

        render_svg("", "svg")   # raises GraphvizMissing: one line naming `dot`, exit 2, before any work
    if json_path is not None:
        distinct_outputs([], [("--json", json_path)])
    if args.aws:
        imp = _aws_import(args.aws)
        net = imp.network
        if len(imp.report):
            print(imp.report.summary() + " (fastvpc import-aws shows the details)", file=sys.stderr)
    else:
        from fastvpc.cli._common import load_topology

        net = load_topology(args)
    aliases = dict(getattr(net, "aliases", {}) or {})
    _check_source(net, args.src, aliases, imp.report if args.aws else None)
    want_reply = getattr(args, "reply", False)
    no_reply = None     # why --reply traced no return packet (the forward packet was dropped, answered...)

    def run_trace(reply: bool) -> Any:
        try:
            return trace_packet(net, args.src, dst, proto=proto if not proto.isdigit() else int(proto), port=args.port,
                                src_ip=args.src_ip, aliases=aliases or None, filters=getattr(args, "filters", True),
                                reply=reply)
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise UsageError(str(msg)) from None

    try:
        t = run_trace(want_reply)
    except UsageError as exc:
        if not want_reply:
            raise
        # the input is good (the forward packet traces) when only its return packet cannot be traced: the
        # forward trace is the answer, with why there is no reply; the exit status is the forward packet's
        t = run_trace(False)
        no_reply = str(exc)
    if fmt in ("mermaid", "dot", "svg"):
        from fastvpc.cli.pictures import render_trace_picture

        sys.stdout.write(render_trace_picture(t, fmt))
        sys.stdout.flush()
    elif fmt != "json":
        print(render_trace(t, net, summary=getattr(args, "summary", False),
                           detailed=getattr(args, "detailed", False)), file=human_stream(json_path), flush=True)
    if no_reply is not None:
        print(f"--reply: {no_reply}", file=human_stream(json_path) if fmt == "text" else sys.stderr, flush=True)
    for dest in dict.fromkeys([json_path, "-" if fmt == "json" else None]):   # --format json: stdout too
        if dest is None:
            continue
        d = t.to_dict()
        if no_reply is not None:
            d["no_reply"] = no_reply
        if getattr(args, "detailed", False):
            d["route_table_routes"] = _table_routes(t, net)
        write_json(dest, d)
    return exit_status(t.action)


def _table_routes(t: Any, net: Any) -> list[dict[str, Any]]:
    """The routes of the route table the trace consulted, numbered within that table (1 = first)."""
    names = [h.name for h in t.hops if h.kind == "route-table"]
    if not names:
        return []
    try:
        rt = net.find(names[-1])
    except KeyError:
        return []
    out = []
    for i, r in enumerate(sorted(rt.routes, key=lambda r: (-r.destination.prefixlen, int(r.destination.network_address))),
                          1):
        out.append({"table": rt.name, "number": i, "destination": str(r.destination),
                    "target": getattr(r.target, "name", str(r.target)), "origin": r.origin,
                    "covers_destination": IPv4Address(t.dst) in r.destination})
    return out


def render_trace(t: Any, net: Any, *, summary: bool = False, detailed: bool = False) -> str:
    """The trace as text: the verdict line only (``summary``), the hops (default), or the hops
    plus the consulted table's routes, longest prefix first and numbered within the table, and
    a hint when the packet was dropped for want of a route (``detailed``)."""
    text = str(t)
    if summary:
        return text.splitlines()[0]
    if not detailed:
        return text
    lines = [text]
    routes = _table_routes(t, net)
    if routes:
        lines.append(f"  routes of {routes[0]['table']} (longest prefix first; * covers {t.dst}):")
        for r in routes:
            mark = "*" if r["covers_destination"] else " "
            lines.append(f"   {mark}{r['number']:>3}. {r['destination']:<18} -> {r['target']:<20} {r['origin']}")
    if getattr(t.reason, "name", "") == "NO_ROUTE":
        table = routes[0]["table"] if routes else "the subnet's route table"
        lines.append(f"  hint: no route of {table} covers {t.dst}; add one toward a gateway, peering or ENI "
                     f"(e.g. 0.0.0.0/0 -> an internet gateway) or associate the subnet with a table that has it")
    return "\n".join(lines)


# --------------------------------------------------------------------------- import-aws

def _import_aws(args: argparse.Namespace) -> int:
    json_path = getattr(args, "json_path", None)
    if json_path is True:
        json_path = "-"
    # an output inside the folder is refused for every command (cli._common.outputs_clear_of_inputs)
    distinct_outputs([("AWS folder", args.folder)], [("--output", args.output), ("--json", json_path)])
    imp = _aws_import(args.folder, service_enis=args.service_enis)
    print(imp.report, file=human_stream(json_path), flush=True)
    if json_path is not None:
        write_json(json_path, imp.report.to_dict())
    if args.output:
        imp.network.save(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    bad = unreadable_files(imp.report)
    if bad:
        print(f"fastvpc import-aws: error: {len(bad)} file(s) could not be parsed: {', '.join(bad[:5])}"
              f"{', ...' if len(bad) > 5 else ''} (see the report)", file=sys.stderr)
        return EXIT_UNREADABLE
    return 0
