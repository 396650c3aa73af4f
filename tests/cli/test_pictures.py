"""fastvpc show --format mermaid|dot|svg|png: the drawn graph is the topology.

The expected nodes and edges are computed here from the topology objects (not from the
graph builder); dot text, Graphviz's SVG (rendered by `dot`) and Mermaid text are parsed and
compared with them."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

import fastvpc as fv
from conftest import require_tool
from fastvpc.cli import main
from fastvpc.cli.pictures import graph, render_svg, to_dot, to_mermaid


def _network() -> fv.Network:
    net = fv.Network()
    prod = net.add_vpc("10.0.0.0/16", name="prod")
    web = prod.add_subnet("10.0.1.0/24", name="web")
    app = prod.add_subnet("10.0.2.0/24", name="app")
    db = prod.add_subnet("10.0.3.0/24", name="db")
    igw = prod.add_internet_gateway(name="igw")
    vgw = prod.add_vpn_gateway(name="vgw")
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.20", name="eip-nat"))
    web.add_nat_gateway(name="natp", connectivity="private")
    s3 = prod.add_endpoint(name="vpce-s3", endpoint_type="gateway", service="com.amazonaws.s3")
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    ps = peer.add_subnet("10.1.1.0/24", name="peer-a")
    pcx = net.add_peering(prod, peer, name="pcx")
    tgw = net.add_transit_gateway(name="tgw")
    tgw.attach(prod)
    tgw.attach(peer)
    fw = app.add_eni("10.0.2.50", name="fw", source_dest_check=False)
    web.add_eni("10.0.1.10", name="web1",                               # drawn only through its address
                public_ip=net.allocate_address("203.0.113.10", name="eip-web"))
    net.allocate_address("198.51.100.1", name="eip-spare")              # unassociated: a node outside the VPCs
    edge = prod.add_route_table(name="rt-edge")
    edge.associate_gateway(igw)
    edge.add_route("10.0.1.0/24", fw)
    web.associate(prod.add_route_table(name="rt-web", routes=[("0.0.0.0/0", igw), ("10.1.0.0/16", pcx),
                                                              ("192.168.0.0/16", fw)]))
    rt_app = prod.add_route_table(name="rt-app", routes=[("0.0.0.0/0", nat), ("172.16.0.0/12", tgw),
                                                         ("172.31.0.0/16", tgw)])
    rt_app.add_route("10.9.0.0/16", fv.BLACKHOLE)
    rt_app.add_route("52.0.0.0/8", s3)
    app.associate(rt_app)
    db.associate(prod.add_route_table(name="rt-db", routes=[("0.0.0.0/0", vgw)]))
    ps.associate(peer.add_route_table(name="rt-peer", routes=[("10.0.0.0/16", pcx)]))
    return net


def _kind(t) -> str:
    return {"InternetGateway": "igw", "VpnGateway": "vgw", "NatGateway": "nat", "Endpoint": "endpoint",
            "PeeringConnection": "peering", "TransitGateway": "tgw", "Eni": "eni"}[type(t).__name__]


def expected(net: fv.Network) -> tuple[set[str], set[tuple[str, str]]]:
    nodes, edges = set(), set()
    for v in net.vpcs:
        nodes.add(f"vpc:{v.name}")
        for s in v.subnets:
            nodes.add(f"subnet:{s.name}")
            edges.add((f"subnet:{s.name}", f"route-table:{s.route_table.name}"))
        for rt in v.route_tables:
            nodes.add(f"route-table:{rt.name}")
            for r in rt.routes:
                if r.is_local:
                    continue
                dst = "blackhole:blackhole" if r.target is fv.BLACKHOLE else f"{_kind(r.target)}:{r.target.name}"
                nodes.add(dst)
                edges.add((f"route-table:{rt.name}", dst))
        for g in [*v.internet_gateways, *v.vpn_gateways, *v.nat_gateways, *v.endpoints]:
            nodes.add(f"{_kind(g)}:{g.name}")
        for n in v.nat_gateways:
            edges.add((f"nat:{n.name}", f"subnet:{n.subnet.name}"))
        for g in [*v.internet_gateways, *v.vpn_gateways]:
            if g.route_table is not None:
                edges.add((f"{_kind(g)}:{g.name}", f"route-table:{g.route_table.name}"))
    for a in net.addresses:
        nodes.add(f"eip:{a.name}")
        if a.association is not None:
            owner = f"{_kind(a.association)}:{a.association.name}"
            nodes.add(owner)
            edges.add((f"eip:{a.name}", owner))
    for p in net.peerings:
        nodes.add(f"peering:{p.name}")
        edges |= {(f"peering:{p.name}", f"vpc:{p.requester.name}"), (f"peering:{p.name}", f"vpc:{p.accepter.name}")}
    for t in net.transit_gateways:
        nodes.add(f"tgw:{t.name}")
        edges |= {(f"tgw:{t.name}", f"vpc:{v.name}") for v in t.attachments}
    return nodes, edges


def parse_dot(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    q = r'"((?:[^"\\]|\\.)*)"'
    edges = set(re.findall(rf"^\s*{q} -> {q}\s+\[", text, re.M))
    nodes = {m for m in re.findall(rf"^\s*{q}\s+\[", text, re.M)}
    return nodes, edges


def parse_svg(svg: bytes) -> tuple[set[str], set[tuple[str, str]], int]:
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes, edges, clusters = set(), set(), 0
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        title = g.find("s:title", ns)
        if title is None:
            continue
        cls = g.get("class")
        if cls == "node":
            nodes.add(title.text)
        elif cls == "edge":
            a, b = title.text.split("->")
            edges.add((a, b))
        elif cls == "cluster":
            clusters += 1
    return nodes, edges, clusters


def parse_mermaid(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    ids = dict(re.findall(r"^\s*%% (n\d+): (.+)$", text, re.M))
    edges = {(ids[a], ids[b]) for a, b in re.findall(r"^\s*(n\d+) -[-.]+>(?:\|[^|]*\|)? (n\d+)$", text, re.M)}
    declared = set(re.findall(r"^\s*(n\d+)[\[\(\{]", text, re.M)) | set(
        re.findall(r"^\s*subgraph (n\d+)\[", text, re.M))
    return {ids[i] for i in declared}, edges


@pytest.mark.parametrize("make", [_network, lambda: __import__("fastvpc.examples").examples.seed_vpc()],
                         ids=["mixed", "seed"])
def test_dot_text_has_the_topology(make):
    net = make()
    nodes, edges = parse_dot(to_dot(graph(net)))
    want_nodes, want_edges = expected(net)
    assert nodes == want_nodes
    assert edges == want_edges


def test_mermaid_has_the_topology():
    net = _network()
    nodes, edges = parse_mermaid(to_mermaid(graph(net)))
    assert (nodes, edges) == expected(net)


def test_svg_rendered_by_graphviz_has_the_topology():
    require_tool("dot")
    net = _network()
    nodes, edges, clusters = parse_svg(render_svg(to_dot(graph(net)), "svg"))
    want_nodes, want_edges = expected(net)
    assert nodes == want_nodes and edges == want_edges
    assert clusters == len(net.vpcs)


def test_route_labels_name_the_destinations():
    net = _network()
    labels = {(e.src, e.dst): e.label for e in graph(net).edges}
    assert labels[("route-table:rt-app", "tgw:tgw")] == "172.16.0.0/12, 172.31.0.0/16"
    assert labels[("subnet:web", "route-table:rt-web")] == "explicit"


def test_edge_is_drawn():
    net = _network()
    g = graph(net)
    by_id = {n.id: n for n in g.nodes}
    kinds = {(e.src, e.dst): e.kind for e in g.edges}
    assert kinds[("igw:igw", "route-table:rt-edge")] == "gateway-association"
    assert kinds[("eip:eip-nat", "nat:nat")] == "address"
    assert kinds[("eip:eip-web", "eni:web1")] == "address"
    assert by_id["eip:eip-web"].cluster == "vpc:prod" and by_id["eip:eip-spare"].cluster is None
    assert "203.0.113.10" in by_id["eip:eip-web"].label
    assert "public" in by_id["nat:nat"].label and str(net.find("nat").ip) in by_id["nat:nat"].label
    assert "private" in by_id["nat:natp"].label
    # removing the association removes the edge (the graph follows the topology, not a cache)
    net.find("rt-edge").disassociate_gateway()
    net.find("web1").disassociate_address()
    kinds = {(e.src, e.dst) for e in graph(net).edges}
    assert ("igw:igw", "route-table:rt-edge") not in kinds and ("eip:eip-web", "eni:web1") not in kinds
    assert parse_dot(to_dot(graph(net))) == expected(net)


def test_show_command_formats(tmp_path, capsys):
    net = _network()
    topo = tmp_path / "t.yaml"
    net.save(topo)
    assert main(["show", str(topo), "--format", "mermaid"]) == 0
    assert parse_mermaid(capsys.readouterr().out) == expected(net)
    assert main(["show", str(topo), "--format", "dot", "-o", str(tmp_path / "m.dot")]) == 0
    assert parse_dot((tmp_path / "m.dot").read_text()) == expected(net)
    require_tool("dot")
    assert main(["show", str(topo), "--format", "svg", "-o", str(tmp_path / "m.svg")]) == 0
    assert parse_svg((tmp_path / "m.svg").read_bytes())[:2] == expected(net)
    assert main(["show", str(topo), "--format", "png", "-o", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Graphviz reads our dot text as the same graph (its canonical re-writing keeps every edge)
    res = subprocess.run(["dot", "-Tcanon"], input=(tmp_path / "m.dot").read_text(), capture_output=True,
                         text=True, check=True)
    assert parse_dot(res.stdout)[1] == expected(net)[1]


def test_without_graphviz_svg_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))        # no dot on PATH
    assert main(["show", "seed", "--format", "svg", "-o", str(tmp_path / "m.svg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "graphviz" in err[0].lower() and "--format mermaid" in err[0]
    assert not (tmp_path / "m.svg").exists()
    assert main(["show", "seed", "--format", "mermaid"]) == 0     # mermaid always works
