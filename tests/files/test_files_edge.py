"""Topology files hold the edge (DESIGN §6): Elastic IPs and their associations, NAT gateways
(connectivity, private IP, MAC, address), gateway route tables and gateway MACs; they round-trip
exactly, and every mistake names the file, the place and the value."""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest
import yaml

from fastvpc import files
from fastvpc.errors import TopologyFileError
from fastvpc.topology import Network

DOC = """
fastvpc: 1
addresses:
  - {name: eip-web, public_ip: 203.0.113.10}
  - {name: eip-nat, public_ip: 198.51.100.20}
  - {name: spare, public_ip: 192.0.2.99}
vpcs:
  - name: prod
    cidrs: [10.0.0.0/16]
    subnets:
      - name: web
        cidr: 10.0.1.0/24
        route_table: rt-web
        enis:
          - {name: web1, ip: 10.0.1.10, address: eip-web}
          - {name: web2, ip: 10.0.1.11}
      - name: fw
        cidr: 10.0.4.0/24
        enis:
          - {name: fw1, ip: 10.0.4.10, source_dest_check: false}
      - name: app
        cidr: 10.0.2.0/24
        route_table: rt-app
    route_tables:
      - name: rt-main
      - name: rt-web
        routes: [{destination: 0.0.0.0/0, target: fw1}]
      - name: rt-app
        routes: [{destination: 0.0.0.0/0, target: nat}]
      - name: rt-edge
        gateways: [igw]
        routes: [{destination: 10.0.1.0/24, target: fw1}]
    internet_gateways: [{name: igw, mac: 0e:00:00:00:00:01}]
    vpn_gateways: [{name: vgw}]
    nat_gateways:
      - {name: nat, subnet: web, address: eip-nat}
      - {name: natp, subnet: app, connectivity: private, ip: 10.0.2.100, mac: 0e:00:00:00:00:02}
"""


def test_hand_written_document_builds_what_it_says():
    net = files.loads(DOC, "yaml")
    web1, web2, igw = net.find("web1"), net.find("web2"), net.find("igw")
    nat, natp = net.find("nat"), net.find("natp")
    assert web1.public_ip == ipaddress.IPv4Address("203.0.113.10") and web2.public_ip is None
    assert [a.name for a in net.addresses] == ["eip-web", "eip-nat", "spare"]
    assert net.find("spare").association is None
    assert nat.connectivity == "public" and nat.address is net.find("eip-nat") and nat.ip in net.find("web").cidr
    assert natp.connectivity == "private" and natp.address is None
    assert natp.ip == ipaddress.IPv4Address("10.0.2.100") and natp.mac == "0e:00:00:00:00:02"
    assert igw.mac == "0e:00:00:00:00:01" and igw.route_table is net.find("rt-edge")
    assert net.find("rt-edge").gateways == [igw] and net.find("vgw").route_table is None
    assert net.find("rt-app").route("0.0.0.0/0").target is nat


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_round_trip_is_exact(fmt, tmp_path):
    net = files.loads(DOC, "yaml")
    text = files.dumps(net, fmt)
    back = files.loads(text, fmt)
    assert back == net and files.dumps(back, fmt) == text
    # every generated value (the NAT gateway's IP, each gateway's MAC) is written, so it survives
    for a, b in zip(net.targets, back.targets):
        assert (a.name, a.port, getattr(a, "mac", None), getattr(a, "ip", None)) == \
            (b.name, b.port, getattr(b, "mac", None), getattr(b, "ip", None))
    p = tmp_path / f"n.{fmt}"
    back.save(p)
    assert files.load(p) == net


def test_written_document_shape():
    d = files.network_to_dict(files.loads(DOC, "yaml"))
    assert d["addresses"] == [{"name": "eip-web", "public_ip": "203.0.113.10"},
                              {"name": "eip-nat", "public_ip": "198.51.100.20"},
                              {"name": "spare", "public_ip": "192.0.2.99"}]
    v = d["vpcs"][0]
    assert v["subnets"][0]["enis"][0]["address"] == "eip-web" and "address" not in v["subnets"][0]["enis"][1]
    nat, natp = v["nat_gateways"]
    assert nat["address"] == "eip-nat" and "connectivity" not in nat and nat["ip"] == "10.0.1.254"
    assert natp["connectivity"] == "private" and "address" not in natp and natp["mac"] == "0e:00:00:00:00:02"
    edge = next(t for t in v["route_tables"] if t["name"] == "rt-edge")
    assert edge["gateways"] == ["igw"]
    assert all("gateways" not in t for t in v["route_tables"] if t["name"] != "rt-edge")
    assert v["internet_gateways"] == [{"name": "igw", "port": v["internet_gateways"][0]["port"],
                                       "mac": "0e:00:00:00:00:01"}]
    assert all("mac" in g for g in v["vpn_gateways"])


def test_equality_sees_edge_details():
    base = files.loads(DOC, "yaml")
    variants = []
    n = files.loads(DOC, "yaml"); n.find("web1").disassociate_address(); variants.append(n)
    n = files.loads(DOC, "yaml"); n.find("web2").associate_address("spare"); variants.append(n)
    n = files.loads(DOC, "yaml"); n.find("spare").release(); variants.append(n)
    n = files.loads(DOC, "yaml"); n.find("rt-edge").disassociate_gateway(); variants.append(n)
    n = files.loads(DOC, "yaml"); n.find("igw").mac = "0e:00:00:00:00:09"; variants.append(n)
    n = files.loads(DOC, "yaml"); n.find("nat").delete(); variants.append(n)
    for v in variants:
        assert v != base
        assert files.loads(files.dumps(v, "yaml"), "yaml") == v


def test_pre_edge_document_still_loads():
    """A file written before the edge existed (no MACs, no addresses) loads; NAT gateways get an IP."""
    old = {"fastvpc": 1, "vpcs": [{"name": "p", "cidrs": ["10.0.0.0/16"],
                                   "subnets": [{"name": "s", "cidr": "10.0.1.0/24"}],
                                   "internet_gateways": [{"name": "igw", "port": 0}],
                                   "nat_gateways": [{"name": "nat", "port": 1, "subnet": "s"}]}]}
    net = files.network_from_dict(old)
    nat = net.find("nat")
    assert nat.connectivity == "public" and nat.address is None and nat.ip is not None
    assert files.network_from_dict(files.network_to_dict(net)) == net


# --------------------------------------------------------------------------- located errors

def _doc():
    return yaml.safe_load(DOC)


def _vpc(d):
    return d["vpcs"][0]


CASES = [
    ("address-private", lambda d: d["addresses"][0].update(public_ip="10.9.9.9"), "addresses[0]", "10.9.9.9"),
    ("address-multicast", lambda d: d["addresses"][0].update(public_ip="224.0.0.5"), "addresses[0]", "224.0.0.5"),
    ("address-garbage", lambda d: d["addresses"][0].update(public_ip="203.0.113.999"), "addresses[0]",
     "203.0.113.999"),
    ("address-number", lambda d: d["addresses"][0].update(public_ip=5), "addresses[0].public_ip", "5"),
    ("address-twice", lambda d: d["addresses"][1].update(public_ip="203.0.113.10"), "addresses[1]",
     "203.0.113.10"),
    ("address-dup-name", lambda d: d["addresses"][1].update(name="eip-web"), "addresses[1]", "eip-web"),
    ("address-missing-ip", lambda d: d["addresses"][0].pop("public_ip"), "addresses[0]", "'public_ip'"),
    ("address-unknown-key", lambda d: d["addresses"][0].update(allocation="x"), "addresses[0].allocation",
     "allocation"),
    ("eni-unknown-address", lambda d: _vpc(d)["subnets"][0]["enis"][1].update(address="ghost"),
     "vpcs[0].subnets[0].enis[1].address", "ghost"),
    ("eni-address-twice", lambda d: _vpc(d)["subnets"][0]["enis"][1].update(address="eip-web"),
     "vpcs[0].subnets[0].enis[1].address", "web1"),
    ("eni-address-not-eip", lambda d: _vpc(d)["subnets"][0]["enis"][1].update(address="igw"),
     "vpcs[0].subnets[0].enis[1].address", "igw"),
    ("nat-address-taken", lambda d: _vpc(d)["nat_gateways"][0].update(address="eip-web"),
     "vpcs[0].nat_gateways[0].address", "eip-web"),
    ("nat-private-with-address", lambda d: _vpc(d)["nat_gateways"][1].update(address="spare"),
     "vpcs[0].nat_gateways[1]", "spare"),
    ("nat-public-without-address", lambda d: _vpc(d)["nat_gateways"][0].update(connectivity="public") or
     _vpc(d)["nat_gateways"][0].pop("address"), "vpcs[0].nat_gateways[0]", "needs an Elastic IP"),
    ("nat-bad-connectivity", lambda d: _vpc(d)["nat_gateways"][1].update(connectivity="sideways"),
     "vpcs[0].nat_gateways[1]", "sideways"),
    ("nat-ip-taken", lambda d: _vpc(d)["nat_gateways"][1].update(ip="10.0.2.100", subnet="web") or
     _vpc(d)["nat_gateways"][1].update(ip="10.0.1.10"), "vpcs[0].nat_gateways[1]", "10.0.1.10"),
    ("nat-ip-outside", lambda d: _vpc(d)["nat_gateways"][1].update(ip="10.0.9.1"), "vpcs[0].nat_gateways[1]",
     "10.0.9.1"),
    ("nat-ip-number", lambda d: _vpc(d)["nat_gateways"][1].update(ip=7), "vpcs[0].nat_gateways[1].ip", "7"),
    ("nat-mac-taken", lambda d: _vpc(d)["nat_gateways"][1].update(mac="0e:00:00:00:00:01"),
     "vpcs[0].nat_gateways[1]", "0e:00:00:00:00:01"),
    ("igw-bad-mac", lambda d: _vpc(d)["internet_gateways"][0].update(mac="01:02:03:04:05:06"),
     "vpcs[0].internet_gateways[0]", "01:02:03:04:05:06"),
    ("gateways-unknown", lambda d: _vpc(d)["route_tables"][3].update(gateways=["igw-typo"]),
     "vpcs[0].route_tables[3].gateways[0]", "igw-typo"),
    ("gateways-not-gateway", lambda d: _vpc(d)["route_tables"][3].update(gateways=["nat"]),
     "vpcs[0].route_tables[3].gateways[0]", "nat"),
    ("gateways-not-list", lambda d: _vpc(d)["route_tables"][3].update(gateways="igw"),
     "vpcs[0].route_tables[3].gateways", "igw"),
    ("gateway-table-bad-route", lambda d: _vpc(d)["route_tables"][3]["routes"].append(
        {"destination": "0.0.0.0/0", "target": "fw1"}), "vpcs[0].route_tables[3].gateways[0]", "0.0.0.0/0"),
    ("gateway-table-nat-target", lambda d: _vpc(d)["route_tables"][3]["routes"][0].update(target="nat"),
     "vpcs[0].route_tables[3].gateways[0]", "nat"),
    ("gateway-table-is-main", lambda d: _vpc(d).update(main_route_table="rt-edge"),
     "vpcs[0].route_tables[3].gateways[0]", "main"),
    ("igw-twice", lambda d: _vpc(d)["route_tables"][2].update(gateways=["igw"]) or
     _vpc(d)["route_tables"][2].update(routes=[]), "vpcs[0].route_tables[3].gateways[0]", "rt-app"),
]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_edge_document_names_file_place_and_value(tmp_path, case, fmt):
    _cid, fn, where, value = case
    d = _doc()
    fn(d)
    path = tmp_path / f"bad.{fmt}"
    path.write_text(json.dumps(d, indent=2) if fmt == "json" else yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(TopologyFileError) as info:
        files.load(path)
    err = info.value
    msg = str(err)
    assert err.path == str(path) and err.where == where, msg
    assert value in msg, msg


def test_documents_unchanged_by_a_failed_load():
    d = _doc()
    keep = copy.deepcopy(d)
    _vpc(d)["nat_gateways"][0]["address"] = "ghost"
    with pytest.raises(TopologyFileError):
        files.network_from_dict(d)
    _vpc(d)["nat_gateways"][0]["address"] = "eip-nat"
    assert d == keep
    assert isinstance(files.network_from_dict(d), Network)
