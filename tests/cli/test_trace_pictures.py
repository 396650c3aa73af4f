"""fastvpc trace --format mermaid|dot|svg|json: the drawn path is the trace's hops.

Each picture is parsed (Mermaid text, dot text, and the SVG that Graphviz's `dot` renders) and its
nodes, edges and marked node are compared with the trace itself: one node per hop, an edge from each
hop to the next, and the deciding hop marked.  The deciding hop is found here from the verdict, not
from the drawing code: for a drop the hop recorded just before the verdict; for a routed packet the
route hop naming the route the data plane reported (``Network.routes()[t.route]``); for an answer
of the router its ``arp``/``router`` hop; for a delivery inside the subnet its ``subnet`` hop."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

import fastvpc as fv
from conftest import require_tool
from fastvpc.cli import main
from fastvpc.cli.pictures import render_svg, trace_to_dot, trace_to_mermaid
from fastvpc.examples import seed_vpc
from fastvpc.trace import trace_packet


def _mixed() -> fv.Network:
    net = fv.Network()
    prod = net.add_vpc("10.0.0.0/16", name="prod")
    web = prod.add_subnet("10.0.1.0/24", name="web")
    app = prod.add_subnet("10.0.2.0/24", name="app")
    web.add_eni("10.0.1.10", name="w1")
    web.add_eni("10.0.1.11", name="w2")
    fw = app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
    igw = prod.add_internet_gateway(name="igw")
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    peer.add_subnet("10.1.1.0/24", name="peer-a").add_eni("10.1.1.10", name="p1")
    pcx = net.add_peering(prod, peer, name="pcx")
    rt = prod.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw), ("10.1.0.0/16", pcx),
                                                     ("192.168.0.0/16", fw)])
    rt.add_route("10.9.0.0/16", fv.BLACKHOLE)
    web.associate(rt)
    return net


CASES = [
    (seed_vpc, "web1", "8.8.8.8"),        # FORWARD to the internet gateway
    (seed_vpc, "db1", "8.8.8.8"),         # FORWARD to the VPN gateway
    (seed_vpc, "web1", "10.0.2.10"),      # DELIVER through the local route
    (seed_vpc, "web1", "10.0.1.1"),       # REPLY: the router answers the echo
    (seed_vpc, "web1", "10.0.1.255"),     # DROP BROADCAST
    (seed_vpc, "web1", "10.0.1.77"),      # DROP NO_SUCH_HOST
    (_mixed, "w1", "10.0.1.11"),          # DELIVER inside the subnet
    (_mixed, "w1", "10.1.1.10"),          # DELIVER over the peering
    (_mixed, "w1", "10.9.0.1"),           # DROP at the blackhole route
    (_mixed, "w1", "192.168.3.4"),        # FORWARD to a middlebox ENI
]
IDS = [f"{make.__name__}-{src}-{dst}" for make, src, dst in CASES]


def _expected(net, t) -> tuple[set[str], set[tuple[str, str]], str]:
    n = len(t.hops)
    nodes = {f"hop:{i}" for i in range(1, n + 1)}
    edges = {(f"hop:{i}", f"hop:{i + 1}") for i in range(1, n)}
    kinds = [h.kind for h in t.hops]
    if t.action == fv.Action.DROP:
        k = max(i for i, h in enumerate(t.hops) if h.kind not in ("verdict", "warning"))
    elif t.route >= 0:
        r = net.routes()[t.route]
        k = max(i for i, h in enumerate(t.hops) if h.kind == "route" and h.name.startswith(f"{r.destination} ->"))
    elif t.action == fv.Action.REPLY:
        k = max(i for i, kind in enumerate(kinds) if kind in ("arp", "router"))
    else:
        k = max(i for i, kind in enumerate(kinds) if kind == "subnet")
    return nodes, edges, f"hop:{k + 1}"


def parse_mermaid(text: str) -> tuple[set[str], set[tuple[str, str]], str]:
    ids = dict(re.findall(r"^\s*%% (h\d+): (hop:\d+)$", text, re.M))
    nodes = {ids[i] for i in re.findall(r"^\s*(h\d+)\[", text, re.M)}
    edges = {(ids[a], ids[b]) for a, b in re.findall(r"^\s*(h\d+) -->(?:\|[^|]*\|)? (h\d+)$", text, re.M)}
    marked = re.findall(r"^\s*class (h\d+) deciding$", text, re.M)
    assert len(marked) == 1
    return nodes, edges, ids[marked[0]]


def parse_dot(text: str) -> tuple[set[str], set[tuple[str, str]], str]:
    q = r'"((?:[^"\\]|\\.)*)"'
    nodes = set(re.findall(rf"^\s*{q}\s+\[", text, re.M))
    edges = set(re.findall(rf"^\s*{q} -> {q}\s+\[", text, re.M))
    marked = re.findall(rf'^\s*{q}\s+\[.*class="deciding"', text, re.M)
    assert len(marked) == 1
    return nodes, edges, marked[0]


def parse_svg(svg: bytes | str) -> tuple[set[str], set[tuple[str, str]], str]:
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes, edges, marked = set(), set(), []
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        title = g.find("s:title", ns)
        cls = (g.get("class") or "").split()
        if title is None or not cls:
            continue
        if "node" in cls:
            nodes.add(title.text)
            if "deciding" in cls:
                marked.append(title.text)
        elif "edge" in cls:
            a, b = title.text.split("->")
            edges.add((a, b))
    assert len(marked) == 1
    return nodes, edges, marked[0]


@pytest.mark.parametrize("make,src,dst", CASES, ids=IDS)
def test_mermaid_and_dot_draw_the_hops_and_mark_the_deciding_one(make, src, dst):
    net = make()
    t = trace_packet(net, src, dst)
    assert t.agrees
    want = _expected(net, t)
    assert parse_mermaid(trace_to_mermaid(t)) == want
    assert parse_dot(trace_to_dot(t)) == want


@pytest.mark.parametrize("make,src,dst", CASES, ids=IDS)
def test_svg_rendered_by_graphviz_draws_the_hops(make, src, dst):
    require_tool("dot")
    net = make()
    t = trace_packet(net, src, dst)
    assert parse_svg(render_svg(trace_to_dot(t), "svg")) == _expected(net, t)


def test_labels_carry_each_hop_and_the_title_the_verdict():
    net = _mixed()
    t = trace_packet(net, "w1", "10.9.0.1")
    text = trace_to_mermaid(t)
    for i, h in enumerate(t.hops, 1):
        assert re.search(rf'^\s*h{i}\["{i}\. {re.escape(h.kind)} {re.escape(h.name)}<br/>', text, re.M)
    assert "DROP BLACKHOLE" in trace_to_dot(t).split("\n")[2]


def _cli(capsys, *argv):
    code = main(["trace", "seed", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_cli_draws_and_keeps_the_exit_status(capsys, fmt):
    if fmt == "svg":
        require_tool("dot")
    parse = {"mermaid": parse_mermaid, "dot": parse_dot, "svg": parse_svg}[fmt]
    net = seed_vpc()
    for dst, status in (("8.8.8.8", 0), ("10.0.1.255", 1)):
        code, out, _ = _cli(capsys, "--from", "web1", "--to", dst, "--format", fmt)
        assert code == status
        assert parse(out) == _expected(net, trace_packet(net, "web1", dst))


def test_cli_json_format_is_the_trace_as_json(capsys, tmp_path):
    code, out, err = _cli(capsys, "--from", "web1", "--to", "10.0.1.255", "--format", "json")
    assert code == 1
    assert json.loads(out) == trace_packet(seed_vpc(), "web1", "10.0.1.255").to_dict()
    # with --json FILE too: both get it
    f = tmp_path / "t.json"
    code, out, _ = _cli(capsys, "--from", "web1", "--to", "8.8.8.8", "--format", "json", "--json", str(f))
    assert code == 0 and json.loads(out) == json.loads(f.read_text())


def test_cli_text_is_still_the_default(capsys):
    code, out, _ = _cli(capsys, "--from", "web1", "--to", "8.8.8.8")
    assert code == 0 and out.startswith("trace 10.0.1.10 (web1) -> 8.8.8.8 icmp: FORWARD")


def test_cli_svg_without_graphviz_is_one_line_naming_dot(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))        # no dot on PATH
    code, out, err = _cli(capsys, "--from", "web1", "--to", "8.8.8.8", "--format", "svg")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "`dot`" in lines[0] and "graphviz" in lines[0].lower() and "mermaid" in lines[0]
    code, out, _ = _cli(capsys, "--from", "web1", "--to", "8.8.8.8", "--format", "mermaid")   # needs nothing
    assert code == 0 and out.startswith("flowchart TD")


def test_cli_a_picture_and_json_on_stdout_together_is_a_usage_error(capsys):
    code, out, err = _cli(capsys, "--from", "web1", "--to", "8.8.8.8", "--format", "mermaid", "--json", "-")
    assert code == 2 and out == "" and "--json" in err
