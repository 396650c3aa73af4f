"""``fastvpc show TOPOLOGY [--format text|mermaid|dot|svg|png] [-o FILE]``: a network as tables or
as a picture, like the VPC console's resource map.

The picture has, per VPC, a box holding its subnets and route tables; gateways (internet, VPN,
NAT, endpoints) beside them; peerings and transit gateways between the VPCs.  Edges: subnet ->
its route table (``main`` or ``explicit`` association), route table -> each target of its
routes (labelled with the destinations; blackholes go to a blackhole node), NAT gateway ->
the subnet it lives in, peering/transit gateway -> the VPCs it joins, internet/VPN gateway ->
its gateway route table (``ingress``: the table that routes traffic entering there), Elastic IP
-> the ENI or NAT gateway it is associated with (an ENI with a public IP is drawn for it).

:func:`graph` builds that as plain data (:class:`Graph`: nodes and edges keyed by
``"kind:name"``); :func:`to_dot` and :func:`to_mermaid` write it as Graphviz or Mermaid text
(Mermaid always works: GitHub and many editors render it); SVG and PNG go through Graphviz's
``dot`` program when it is installed, else a clear error says to install it (or to use
``--format mermaid``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from fastvpc.cli._common import UsageError
from fastvpc.topology import BLACKHOLE, Eni, Network

__all__ = ["Edge", "Graph", "Node", "add_parser", "graph", "render_svg", "to_dot", "to_mermaid"]

FORMATS = ("text", "json", "mermaid", "dot", "svg", "png")


@dataclass(frozen=True)
class Node:
    id: str          # "kind:name", unique
    kind: str        # vpc, subnet, route-table, igw, vgw, nat, endpoint, peering, tgw, blackhole, eni, eip
    name: str
    label: str
    cluster: str | None = None   # the VPC node id it is drawn inside


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str        # association, route, located-in, peering, attachment, gateway-association, address
    label: str = ""


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, n: Node) -> str:
        if not any(m.id == n.id for m in self.nodes):
            self.nodes.append(n)
        return n.id


_GATEWAY_KINDS = (("internet_gateways", "igw", "internet gateway"), ("vpn_gateways", "vgw", "VPN gateway"),
                  ("nat_gateways", "nat", "NAT gateway"), ("endpoints", "endpoint", "endpoint"))


def _target_id(t: Any) -> str:
    kinds = {"InternetGateway": "igw", "VpnGateway": "vgw", "NatGateway": "nat", "Endpoint": "endpoint",
             "PeeringConnection": "peering", "TransitGateway": "tgw", "Eni": "eni"}
    return f"{kinds.get(type(t).__name__, 'target')}:{t.name}"


def graph(net: Network) -> Graph:
    """The resource map of ``net`` as nodes and edges."""
    g = Graph()
    for vpc in net.vpcs:
        vid = g.node(Node(f"vpc:{vpc.name}", "vpc", vpc.name,
                          f"VPC {vpc.name}\n" + ", ".join(str(c) for c in vpc.cidrs)))
        for rt in vpc.route_tables:
            main = " (main)" if rt is vpc.main_route_table else ""
            g.node(Node(f"route-table:{rt.name}", "route-table", rt.name, f"route table {rt.name}{main}", vid))
        for s in vpc.subnets:
            sid = g.node(Node(f"subnet:{s.name}", "subnet", s.name, f"subnet {s.name}\n{s.cidr}", vid))
            how = "explicit" if s.explicit_route_table is not None else "main"
            g.edges.append(Edge(sid, f"route-table:{s.route_table.name}", "association", how))
        for attr, kind, what in _GATEWAY_KINDS:
            for gw in getattr(vpc, attr):
                label = f"{what} {gw.name}"
                if kind == "nat":
                    label += f"\n{gw.connectivity}" + (f" {gw.ip}" if gw.ip is not None else "")
                gid = g.node(Node(f"{kind}:{gw.name}", kind, gw.name, label, vid))
                if kind == "nat" and gw.subnet is not None:
                    g.edges.append(Edge(gid, f"subnet:{gw.subnet.name}", "located-in", "in"))
                if kind in ("igw", "vgw") and gw.route_table is not None:
                    g.edges.append(Edge(gid, f"route-table:{gw.route_table.name}", "gateway-association", "ingress"))
    for a in net.addresses:
        owner = a.association
        cluster = f"vpc:{owner.vpc.name}" if owner is not None else None
        aid = g.node(Node(f"eip:{a.name}", "eip", a.name, f"Elastic IP {a.name}\n{a.public_ip}", cluster))
        if isinstance(owner, Eni):
            oid = g.node(Node(f"eni:{owner.name}", "eni", owner.name, f"ENI {owner.name}", cluster))
            g.edges.append(Edge(aid, oid, "address", f"1:1 {owner.ip}"))
        elif owner is not None:
            g.edges.append(Edge(aid, f"nat:{owner.name}", "address", "address"))
    for p in net.peerings:
        pid = g.node(Node(f"peering:{p.name}", "peering", p.name, f"peering {p.name}"))
        g.edges.append(Edge(pid, f"vpc:{p.requester.name}", "peering", "requester"))
        g.edges.append(Edge(pid, f"vpc:{p.accepter.name}", "peering", "accepter"))
    for t in net.transit_gateways:
        tid = g.node(Node(f"tgw:{t.name}", "tgw", t.name, f"transit gateway {t.name}"))
        for v in t.attachments:
            g.edges.append(Edge(tid, f"vpc:{v.name}", "attachment", "attached"))
    for vpc in net.vpcs:
        for rt in vpc.route_tables:
            by_target: dict[str, list[str]] = {}
            for r in rt.routes:
                if r.is_local:
                    continue
                if r.target is BLACKHOLE:
                    tid = g.node(Node("blackhole:blackhole", "blackhole", "blackhole", "blackhole"))
                elif isinstance(r.target, Eni):
                    tid = g.node(Node(f"eni:{r.target.name}", "eni", r.target.name, f"ENI {r.target.name}",
                                      f"vpc:{r.target.vpc.name}"))
                else:
                    tid = _target_id(r.target)
                by_target.setdefault(tid, []).append(str(r.destination))
            for tid, dests in by_target.items():
                g.edges.append(Edge(f"route-table:{rt.name}", tid, "route", ", ".join(dests)))
    return g


# --------------------------------------------------------------------------- Graphviz

_SHAPES = {"subnet": ("box", "#e8f4e8"), "route-table": ("note", "#fff6d8"), "igw": ("cds", "#dde8ff"),
           "vgw": ("cds", "#e6ddff"), "nat": ("box3d", "#ffe6d8"), "endpoint": ("component", "#eeeeee"),
           "peering": ("hexagon", "#f0e0f0"), "tgw": ("doubleoctagon", "#e0f0f0"),
           "blackhole": ("octagon", "#444444"), "eni": ("ellipse", "#ffffff"), "eip": ("oval", "#e6ffe6")}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g: Graph) -> str:
    """Graphviz text: one ``cluster_`` subgraph per VPC; node ids are ``"kind:name"``."""
    out = ["digraph fastvpc {", "  rankdir=LR;", '  node [fontname="Helvetica" fontsize=10 style=filled];',
           '  edge [fontname="Helvetica" fontsize=9];']
    for k, vpc in enumerate(n for n in g.nodes if n.kind == "vpc"):
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f"    label={_q(vpc.label)}; style=rounded; color=\"#888888\";")
        for n in g.nodes:
            if n.cluster == vpc.id:
                out.append("    " + _dot_node(n))
        out.append("  }")
    for n in g.nodes:
        if n.cluster is None and n.kind != "vpc":
            out.append("  " + _dot_node(n))
    for n in g.nodes:   # a VPC is drawn as a cluster and as a node of its own, for peering/TGW edges
        if n.kind == "vpc":
            out.append(f"  {_q(n.id)} [label={_q(n.name)} shape=box style=\"rounded,dashed\"];")
    for e in g.edges:
        style = {"association": "dashed", "located-in": "dotted", "gateway-association": "dashed",
                 "address": "dotted"}.get(e.kind, "solid")
        out.append(f"  {_q(e.src)} -> {_q(e.dst)} [label={_q(e.label)} style={style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_node(n: Node) -> str:
    shape, fill = _SHAPES.get(n.kind, ("box", "#ffffff"))
    font = ' fontcolor="white"' if n.kind == "blackhole" else ""
    return f"{_q(n.id)} [label={_q(n.label)} shape={shape} fillcolor=\"{fill}\"{font}];"


class GraphvizMissing(UsageError):
    """Graphviz's ``dot`` is not installed."""


def render_svg(dot_text: str, fmt: str = "svg") -> bytes:
    """``dot_text`` rendered by Graphviz's ``dot`` (``fmt`` svg or png)."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(f"--format {fmt} needs Graphviz's `dot` program, which is not installed "
                              "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz); "
                              "--format mermaid or dot needs nothing")
    res = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=120,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed (exit {res.returncode}): {res.stderr.decode(errors='replace')}")
    return res.stdout


# --------------------------------------------------------------------------- Mermaid

def _mq(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(g: Graph) -> str:
    """Mermaid ``flowchart`` text: a ``subgraph`` per VPC; ids ``n0, n1, ...`` with the names
    in the labels (Mermaid ids cannot hold ``:`` or spaces); ``%% id: kind:name`` lines map them."""
    ids = {n.id: f"n{i}" for i, n in enumerate(g.nodes)}
    out = ["flowchart LR"]
    for n in g.nodes:
        out.append(f"  %% {ids[n.id]}: {n.id}")
    shapes = {"subnet": ("[", "]"), "route-table": ("[/", "/]"), "igw": ("([", "])"), "vgw": ("([", "])"),
              "nat": ("[[", "]]"), "endpoint": ("[(", ")]"), "peering": ("{{", "}}"), "tgw": ("{{", "}}"),
              "blackhole": ("((", "))"), "eni": ("(", ")"), "eip": ("[\\", "\\]")}
    for vpc in (n for n in g.nodes if n.kind == "vpc"):
        out.append(f"  subgraph {ids[vpc.id]}[{_mq(vpc.label)}]")
        for n in g.nodes:
            if n.cluster == vpc.id:
                a, b = shapes.get(n.kind, ("[", "]"))
                out.append(f"    {ids[n.id]}{a}{_mq(n.label)}{b}")
        out.append("  end")
    for n in g.nodes:
        if n.cluster is None and n.kind != "vpc":
            a, b = shapes.get(n.kind, ("[", "]"))
            out.append(f"  {ids[n.id]}{a}{_mq(n.label)}{b}")
    for e in g.edges:
        arrow = {"association": "-.->", "located-in": "-.->", "gateway-association": "-.->",
                 "address": "-.->"}.get(e.kind, "-->")
        lab = f"|{_mq(e.label)}|" if e.label else ""
        out.append(f"  {ids[e.src]} {arrow}{lab} {ids[e.dst]}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the command

def add_parser(sub: Any) -> None:
    from fastvpc.cli import command
    from fastvpc.cli._common import output_path

    p = sub.add_parser("show", help="print a topology's VPCs, subnets, route tables, ENIs and gateways, "
                                    "as tables or as a picture",
                       description="Tables (default), the topology document as JSON, or a resource map as "
                                   "Mermaid, Graphviz dot, SVG or PNG "
                                   "(SVG/PNG need Graphviz's dot program).")
    p.add_argument("topology", nargs="?", help="topology file (JSON or YAML); 'seed' for the built-in example")
    p.add_argument("--example", action="store_true", help="show the built-in seed VPC (same as 'seed')")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text tables (the default, or what -o FILE's extension names), json (the topology "
                        "document), mermaid, dot, svg, png")
    p.add_argument("-o", "--output", type=output_path(".txt", ".md", ".json", ".mmd", ".dot", ".gv", ".svg", ".png"),
                   help="write to FILE instead of stdout")
    p.set_defaults(func=command("show", run))


#: the file extensions each ``show --format`` may be written to; the first format listing an extension
#: is what ``-o FILE`` alone chooses
_SHOW_EXTENSIONS = {"text": (".txt", ".md"), "json": (".json",), "mermaid": (".mmd", ".md", ".txt"),
                    "dot": (".dot", ".gv", ".txt"), "svg": (".svg",), "png": (".png",)}


def _show_format(fmt: str | None, out: str | None) -> str:
    """``--format``, else the one ``-o FILE``'s extension names (else text); a format and an extension
    that disagree (``--format svg -o map.png``) are refused rather than writing one into the other."""
    ext = os.path.splitext(out)[1].lower() if out not in (None, "-") else ""
    if fmt is None:
        return next((f for f, exts in _SHOW_EXTENSIONS.items() if ext in exts), "text")
    if ext and ext not in _SHOW_EXTENSIONS[fmt]:
        raise UsageError(f"-o {out!r} is a {ext} file but --format is {fmt} (a {fmt} file ends in "
                         f"{' or '.join(_SHOW_EXTENSIONS[fmt])}; or leave --format out)")
    return fmt


def run(args: argparse.Namespace) -> int:
    from fastvpc.cli._common import check_writable, load_topology

    out = getattr(args, "output", None)
    fmt = _show_format(getattr(args, "format", None), out)
    if out is not None:
        check_writable(out, "--output")
    elif fmt == "png" and sys.stdout.isatty():
        raise UsageError("--format png writes binary data: give -o FILE.png (or redirect stdout)")
    if fmt in ("svg", "png") and shutil.which("dot") is None:
        render_svg("", fmt)   # raises GraphvizMissing with the message, before any work
    net = load_topology(args)
    if fmt == "text":
        from fastvpc.cli.show import render

        data: bytes | str = render(net)
    elif fmt == "json":
        from fastvpc.files import dumps

        data = dumps(net, "json")  # the canonical topology document: `fastvpc show` reads it back
    elif fmt == "mermaid":
        data = to_mermaid(graph(net))
    elif fmt == "dot":
        data = to_dot(graph(net))
    else:
        data = render_svg(to_dot(graph(net)), fmt)
    if out is None or out == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
    else:
        with open(out, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode())
        print(f"wrote {out}", file=sys.stderr)
    return 0



# --------------------------------------------------------------------------- trace pictures

#: ``fastvpc trace --format``: text (default), json, and the path drawn as mermaid, dot or svg
TRACE_FORMATS = ("text", "json", "mermaid", "dot", "svg")

#: the stage kinds of a hop that decides a verdict without a route (see :func:`deciding_hop`)
_LOCAL_DECIDERS = {"REPLY": ("arp", "router"), "DELIVER": ("subnet",)}


def deciding_hop(t: Any) -> int:
    """Index in ``t.hops`` of the hop that decided the trace's verdict (-1 when none did).

    * dropped: the hop recorded just before the verdict (the stage that dropped notes why, then
      drops), leaving out ``warning`` hops;
    * decided by a route (``t.route >= 0``): the last ``route`` hop (the matched route);
    * answered by the router (REPLY): its last ``arp`` or ``router`` hop; delivered within the
      subnet without a route: its last ``subnet`` hop;
    * otherwise the last hop before the verdict.
    """
    hops = list(t.hops)
    body = [i for i, h in enumerate(hops) if h.kind not in ("verdict", "warning")]
    if not body:
        return -1
    action = getattr(t.action, "name", str(t.action))
    if action != "DROP":
        kinds: tuple[str, ...] = ("route",) if t.route >= 0 else _LOCAL_DECIDERS.get(action, ())
        for i in reversed(body):
            if hops[i].kind in kinds:
                return i
    return body[-1]


def trace_graph(t: Any) -> tuple[Graph, str]:
    """The path of a trace as a :class:`Graph`, and the id of its deciding node.

    One node per hop, in order (ids ``hop:1``, ``hop:2``, ..., the number of the hop in the
    text trace; ``kind`` the hop's kind, so subnets, route tables and gateways get the shapes
    of ``show``), an edge from each hop to the next labelled with the next hop's stage, and
    the deciding hop (:func:`deciding_hop`) as the returned id.  ``warning`` hops (a
    disagreement of the reference forwarder) are drawn too, as they are printed."""
    g = Graph()
    prev = None
    for i, h in enumerate(t.hops, 1):
        detail = h.detail if len(h.detail) <= 90 else h.detail[:87] + "..."
        nid = g.node(Node(f"hop:{i}", h.kind, h.name, f"{i}. {h.kind} {h.name}\n{detail}"))
        if prev is not None:
            g.edges.append(Edge(prev, nid, "hop", h.stage))
        prev = nid
    k = deciding_hop(t)
    return g, (f"hop:{k + 1}" if k >= 0 else "")


def _trace_title(t: Any) -> str:
    what = t.proto + (f" port {t.port}" if t.port is not None else "")
    return f"trace {t.src_ip} ({t.ingress}) -> {t.dst} {what}: {t.verdict}"


def trace_to_dot(t: Any) -> str:
    """Graphviz text of the trace's path, top to bottom; the deciding hop is drawn with a thick red
    border and ``deciding`` in its tooltip/class, the verdict node green (delivered, answered,
    forwarded) or red (dropped)."""
    g, deciding = trace_graph(t)
    dropped = getattr(t.action, "name", "") == "DROP"
    out = ["digraph trace {", "  rankdir=TB;", f"  label={_q(_trace_title(t))}; labelloc=t;",
           '  node [fontname="Helvetica" fontsize=10 style=filled];', '  edge [fontname="Helvetica" fontsize=9];']
    for n in g.nodes:
        shape, fill = _SHAPES.get(n.kind, ("box", "#ffffff"))
        extra = ""
        if n.kind == "verdict":
            shape, fill = "box", ("#f8d0d0" if dropped else "#d0f0d0")
        elif n.kind == "warning":
            shape, fill = "box", "#ffe0a0"
        if n.kind == "blackhole":
            extra += ' fontcolor="white"'
        if n.id == deciding:
            extra += ' color="#cc0000" penwidth=3 class="deciding" tooltip="the hop that decided the verdict"'
        out.append(f"  {_q(n.id)} [label={_q(n.label)} shape={shape} fillcolor=\"{fill}\"{extra}];")
    for e in g.edges:
        out.append(f"  {_q(e.src)} -> {_q(e.dst)} [label={_q(e.label)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def trace_to_mermaid(t: Any) -> str:
    """Mermaid ``flowchart TD`` of the trace's path: ids ``h1, h2, ...`` (``%% h1: hop:1`` lines map
    them to the graph's ids), the deciding hop in class ``deciding`` (thick red border)."""
    g, deciding = trace_graph(t)
    ids = {n.id: "h" + n.id.split(":", 1)[1] for n in g.nodes}
    out = ["flowchart TD", f"  %% {_trace_title(t)}"]
    for n in g.nodes:
        out.append(f"  %% {ids[n.id]}: {n.id}")
    for n in g.nodes:
        out.append(f"  {ids[n.id]}[{_mq(n.label)}]")
    for e in g.edges:
        lab = f"|{_mq(e.label)}|" if e.label else ""
        out.append(f"  {ids[e.src]} -->{lab} {ids[e.dst]}")
    out.append("  classDef deciding stroke:#cc0000,stroke-width:4px")
    dropped = getattr(t.action, "name", "") == "DROP"
    out.append("  classDef verdict fill:" + ("#f8d0d0" if dropped else "#d0f0d0"))
    verdicts = [ids[n.id] for n in g.nodes if n.kind == "verdict"]
    if verdicts:
        out.append(f"  class {','.join(verdicts)} verdict")
    if deciding:
        out.append(f"  class {ids[deciding]} deciding")
    return "\n".join(out) + "\n"


def render_trace_picture(t: Any, fmt: str) -> str:
    """``fmt`` mermaid, dot or svg: the trace's path as that text (svg through Graphviz's ``dot``,
    :class:`GraphvizMissing` when it is not installed)."""
    if fmt == "mermaid":
        return trace_to_mermaid(t)
    if fmt == "dot":
        return trace_to_dot(t)
    if fmt == "svg":
        return render_svg(trace_to_dot(t), "svg").decode()
    raise UsageError(f"--format {fmt!r}: a trace is drawn as mermaid, dot or svg")
