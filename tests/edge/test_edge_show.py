"""``fastvpc show`` lists the edge: public IPs of ENIs, Elastic IPs and what they are associated
with, NAT gateways (connectivity, private IP, Elastic IP), gateway MACs and gateway route tables;
as text and as JSON (the topology document, which ``show`` reads back)."""

from __future__ import annotations

import json
import re

import fastvpc as fv
from fastvpc import files
from fastvpc.cli import main
from fastvpc.cli.show import render


def _net() -> fv.Network:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    igw = vpc.add_internet_gateway("igw")
    vpc.add_vpn_gateway("vgw")
    fw = app.add_eni("10.0.2.5", name="fw", source_dest_check=False)
    web.add_eni("10.0.1.10", name="web1", public_ip=net.allocate_address("203.0.113.10", name="eip-web"))
    web.add_eni("10.0.1.11", name="web2")
    web.add_nat_gateway(name="nat", address=net.allocate_address("198.51.100.20", name="eip-nat"))
    app.add_nat_gateway(name="natp", connectivity="private", ip="10.0.2.100")
    net.allocate_address("192.0.2.1", name="spare")
    rt = vpc.add_route_table("rt-edge")
    rt.associate_gateway(igw)
    rt.add_route("10.0.1.0/24", fw)
    return net


def _row(text: str, first: str) -> list[str]:
    hits = [ln for ln in text.splitlines() if ln.split()[:1] == [first]]
    assert hits, f"no row starting with {first!r}"
    return hits


def test_text_lists_the_edge():
    net = _net()
    text = render(net)
    web1 = _row(text, "web1")[0]
    assert "203.0.113.10 (eip-web)" in web1
    web2 = _row(text, "web2")[0]
    assert "203.0.113" not in web2
    nat = net.find("nat")
    row = _row(text, "nat")[0]
    for part in ("NAT gateway", str(nat.port), nat.mac, "public", f"private IP {nat.ip}", "eip-nat", "198.51.100.20"):
        assert part in row, (part, row)
    row = _row(text, "natp")[0]
    assert "private" in row and "10.0.2.100" in row and "Elastic IP" not in row
    igw = _row(text, "igw")[0]
    assert net.find("igw").mac in igw and "gateway route table rt-edge" in igw
    assert "ingress: local" in _row(text, "vgw")[0]
    assert re.search(r"rt-edge\s+subnets none\s+gateways igw \(gateway route table\)", text)
    # the Elastic IPs table: every address, its association and private IP
    i = text.splitlines().index("Elastic IPs")
    table = text.splitlines()[i + 3:i + 6]
    assert [ln.split() for ln in table] == [["eip-web", "203.0.113.10", "ENI", "web1", "10.0.1.10"],
                                            ["eip-nat", "198.51.100.20", "NAT", "gateway", "nat", str(nat.ip)],
                                            ["spare", "192.0.2.1", "-", "-"]]
    assert not any(ln != ln.rstrip() for ln in text.splitlines())


def test_text_follows_changes():
    net = _net()
    net.find("web1").disassociate_address()
    net.find("rt-edge").disassociate_gateway()
    text = render(net)
    assert "203.0.113.10 (eip-web)" not in text and "gateways igw" not in text
    assert "ingress: local" in _row(text, "igw")[0]


def test_json_is_the_topology_document(tmp_path, capsys):
    net = _net()
    topo = tmp_path / "t.yaml"
    net.save(topo)
    assert main(["show", str(topo), "--format", "json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc == files.network_to_dict(net)
    assert {a["name"]: a["public_ip"] for a in doc["addresses"]} == {
        "eip-web": "203.0.113.10", "eip-nat": "198.51.100.20", "spare": "192.0.2.1"}
    v = doc["vpcs"][0]
    assert next(e for s in v["subnets"] for e in s["enis"] if e["name"] == "web1")["address"] == "eip-web"
    assert [(n["name"], n.get("connectivity", "public"), n.get("address")) for n in v["nat_gateways"]] == [
        ("nat", "public", "eip-nat"), ("natp", "private", None)]
    assert next(t for t in v["route_tables"] if t["name"] == "rt-edge")["gateways"] == ["igw"]
    # what it writes, show reads back
    (tmp_path / "again.json").write_text(out)
    assert main(["show", str(tmp_path / "again.json"), "--format", "json", "-o", str(tmp_path / "b.json")]) == 0
    assert (tmp_path / "b.json").read_text() == out
