"""Topology files: JSON/YAML round trips, located errors for malformed files, ``fastvpc show``."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastvpc import files
from fastvpc.cli import show
from fastvpc.errors import TopologyError, TopologyFileError
from fastvpc.examples import seed_vpc
from fastvpc.topology import BLACKHOLE, LOCAL, Network

import yaml  # noqa: E402  (a test dependency: the YAML round trips must run, never skip)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "topology-files.md"


# --------------------------------------------------------------------------- an independent oracle

def fingerprint(net: Network) -> dict:
    """Everything observable through the public topology API (not through files.network_to_dict)."""
    out: dict = {"vpcs": [], "peerings": [], "tgws": [], "targets": []}
    for v in net.vpcs:
        out["vpcs"].append({
            "name": v.name,
            "cidrs": [str(c) for c in v.cidrs],
            "main": v.main_route_table.name,
            "subnets": [(s.name, str(s.cidr), s.gateway_mac, str(s.router_ip), s.route_table.name,
                         s.explicit_route_table.name if s.explicit_route_table else None,
                         [(e.name, e.port, str(e.ip), e.mac, [str(a) for a in e.secondary_ips],
                           e.source_dest_check, [g.name for g in e.security_groups],
                           sorted(vars(e.tracking).items()), str(e.public_ip),
                           e.address.name if e.address else None) for e in s.enis],
                         [n.name for n in s.nat_gateways], s.network_acl.name) for s in v.subnets],
            "groups": [(g.name, g.group_name, g.description, g.is_default,
                        [[(r.protocol, r.ports, r.icmp, _peer_fp(r.peer)) for r in g.rules(d)]
                         for d in ("ingress", "egress")]) for g in v.security_groups],
            "acls": [(a.name, a.is_default, [(e.number, e.direction, e.action, e.protocol, e.ports, e.icmp,
                                              str(e.cidr)) for e in a.entries]) for a in v.network_acls],
            "defaults": (v.default_security_group.name, v.default_network_acl.name),
            "tables": [(rt.name, rt.is_main, [g.name for g in rt.gateways],
                        [(str(r.destination), r.target.name, r.origin, r.state, r.prefix_list, r.deleted_target,
                          r.target is LOCAL, r.target is BLACKHOLE) for r in rt.routes])
                       for rt in v.route_tables],
            "igw": [(g.name, g.port, g.mac, g.route_table.name if g.route_table else None)
                    for g in v.internet_gateways],
            "vgw": [(g.name, g.port, g.mac, g.route_table.name if g.route_table else None) for g in v.vpn_gateways],
            "nat": [(g.name, g.port, g.subnet.name if g.subnet else None, g.mac, str(g.ip), g.connectivity,
                     g.address.name if g.address else None, str(g.public_ip)) for g in v.nat_gateways],
            "vpce": [(g.name, g.port, g.endpoint_type, g.service, g.mac) for g in v.endpoints],
        })
    out["peerings"] = [(p.name, p.port, p.requester.name, p.accepter.name, p.mac) for p in net.peerings]
    out["tgws"] = [(t.name, t.port, [v.name for v in t.attachments], t.mac) for t in net.transit_gateways]
    out["addresses"] = [(a.name, str(a.public_ip), a.association.name if a.association else None)
                        for a in net.addresses]
    out["targets"] = [(t.port, t.name, type(t).__name__) for t in net.targets]
    out["routes"] = [(r.route_table.name, str(r.destination), r.target.name) for r in net.routes()]
    out["prefix_lists"] = [(p.name, [str(c) for c in p.cidrs], p.max_entries) for p in net.prefix_lists]
    return out


def _peer_fp(peer):
    if isinstance(peer, tuple):
        return ("cidrs", [str(c) for c in peer])
    if hasattr(peer, "kind"):
        return (peer.kind, peer.name)
    return ("cidr", str(peer))


# --------------------------------------------------------------------------- random valid networks

NAMES = st.one_of(
    st.none(),
    st.text(alphabet="abcxyz-_0123456789 .:éü#", min_size=1, max_size=10),
    st.sampled_from(["yes", "no", "null", "on", "123", "1:20", "true", "~", "- x", "[a]", "{b}", "'q'", '"d"']),
)


@st.composite
def networks(draw) -> Network:
    net = Network()

    def attempt(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except TopologyError:
            return None

    def named(fn, *args, **kw):
        obj = attempt(fn, *args, name=draw(NAMES), **kw)
        if obj is None and "port" in kw:  # the drawn name or port may be taken: fall back to automatic ones
            kw["port"] = None
        return obj if obj is not None else attempt(fn, *args, name=None, **kw)

    def port():
        return draw(st.one_of(st.none(), st.integers(0, 5000)))

    eips = [named(net.allocate_address, f"{draw(st.sampled_from([203, 198, 8, 52]))}.0.113.{k}")
            for k in range(draw(st.integers(0, 4)))]
    eips = [e for e in eips if e is not None]

    def eip():
        free = [e for e in eips if e.association is None]
        return draw(st.sampled_from([None, *free]))

    n_vpcs = draw(st.integers(1, 3))
    for i in range(n_vpcs):
        first = ipaddress.ip_network(f"10.{draw(st.integers(0, 3)) * 16}.0.0/{draw(st.sampled_from([16, 20, 24]))}")
        vpc = named(net.add_vpc, first, main_route_table=draw(st.sampled_from([None, f"main{i}"])))
        if vpc is None:
            continue
        for _ in range(draw(st.integers(0, 2))):
            attempt(vpc.add_cidr, f"{draw(st.sampled_from([172, 100, 192]))}.{draw(st.integers(16, 31))}.0.0/16")
        for _ in range(draw(st.integers(0, 4))):
            block = draw(st.sampled_from(vpc.cidrs))
            plen = draw(st.integers(block.prefixlen, 28))
            n_sub = 2 ** (plen - block.prefixlen)
            sub = list(block.subnets(new_prefix=plen))[draw(st.integers(0, min(n_sub, 64) - 1))] \
                if n_sub <= 64 else next(block.subnets(new_prefix=plen))
            gw_mac = draw(st.one_of(st.none(), st.integers(0, 2**40 - 1).map(lambda x: (0x12 << 40) | x)))
            s = named(vpc.add_subnet, sub, gateway_mac=None if gw_mac is None else gw_mac.to_bytes(6, "big"))
            if s is None:
                continue
            for _ in range(draw(st.integers(0, 3))):
                hosts = s.cidr.num_addresses
                ip = s.cidr.network_address + draw(st.integers(0, hosts - 1))
                secs = [s.cidr.network_address + draw(st.integers(4, hosts - 2))
                        for _ in range(draw(st.integers(0, 2)))]
                mac = draw(st.one_of(st.none(), st.integers(0, 2**40 - 1).map(
                    lambda x: ":".join(f"{b:02x}" for b in ((0x2a << 40) | x).to_bytes(6, "big")))))
                named(s.add_eni, ip, mac=mac, secondary_ips=secs, source_dest_check=draw(st.booleans()),
                      port=port(), public_ip=eip())
        gw_mac = st.one_of(st.none(), st.integers(0, 2**40 - 1).map(
            lambda x: ":".join(f"{b:02x}" for b in ((0x3e << 40) | x).to_bytes(6, "big"))))
        if draw(st.booleans()):
            named(vpc.add_internet_gateway, port=port(), mac=draw(gw_mac))
        if draw(st.booleans()):
            named(vpc.add_vpn_gateway, port=port())
        for _ in range(draw(st.integers(0, 2))):
            sub = draw(st.sampled_from([None, *vpc.subnets]))
            conn = draw(st.sampled_from([None, "public", "private"]))
            named(vpc.add_nat_gateway, subnet=sub, port=port(), connectivity=conn,
                  address=eip() if conn != "private" else None, mac=draw(gw_mac))
        for _ in range(draw(st.integers(0, 2))):
            named(vpc.add_endpoint, endpoint_type=draw(st.sampled_from(["gateway", "gatewayloadbalancer",
                                                                        "interface"])),
                  service=draw(st.sampled_from([None, "com.amazonaws.eu-west-1.s3"])), port=port())
        for _ in range(draw(st.integers(0, 3))):
            named(vpc.add_route_table)
    for _ in range(draw(st.integers(0, 2))):
        if len(net.vpcs) >= 2:
            a, b = draw(st.permutations(net.vpcs))[:2]
            named(net.add_peering, a, b, port=port())
    for _ in range(draw(st.integers(0, 2))):
        tgw = named(net.add_transit_gateway, port=port())
        for v in net.vpcs if tgw is not None else ():
            if draw(st.booleans()):
                tgw.attach(v)
    # routes, local replacements, associations, main swaps
    for vpc in net.vpcs:
        targets = [*vpc.gateways, *vpc.enis, *vpc.peerings, BLACKHOLE, "blackhole"]
        middle = [*vpc.enis, *vpc.nat_gateways, *[e for e in vpc.endpoints
                                                  if e.endpoint_type == "gatewayloadbalancer"]]
        for rt in vpc.route_tables:
            for _ in range(draw(st.integers(0, 4))):
                kind = draw(st.integers(0, 2))
                origin = draw(st.sampled_from(["static", "static", "propagated", "prefix-list"]))
                plist = draw(st.sampled_from([None, "pl-123"])) if origin == "prefix-list" else None
                if kind == 0 and vpc.subnets and middle:
                    attempt(rt.add_route, draw(st.sampled_from(vpc.subnets)).cidr, draw(st.sampled_from(middle)),
                            origin=origin, prefix_list=plist)
                else:
                    addr = draw(st.integers(0, 2**32 - 1))
                    plen = draw(st.integers(0, 32))
                    dest = ipaddress.ip_network((addr >> (32 - plen) << (32 - plen) if plen else 0, plen))
                    attempt(rt.add_route, dest, draw(st.sampled_from(targets)), origin=origin, prefix_list=plist)
            if draw(st.integers(0, 3)) == 0:
                repl = [*vpc.enis, *vpc.endpoints]
                if repl:
                    attempt(rt.replace_route, draw(st.sampled_from(vpc.cidrs)), draw(st.sampled_from(repl)))
        for s in vpc.subnets:
            if draw(st.booleans()):
                s.associate(draw(st.sampled_from(vpc.route_tables)))
        if draw(st.integers(0, 2)) == 0:
            vpc.set_main_route_table(draw(st.sampled_from(vpc.route_tables)))
        for gw in (*vpc.internet_gateways, *vpc.vpn_gateways):  # edge associations (refused unless #41 holds)
            if draw(st.booleans()):
                attempt(draw(st.sampled_from(vpc.route_tables)).associate_gateway, gw)
    # deletions: routes to deleted targets become blackholes (deleted_target kept)
    for t in list(net.targets):
        if draw(st.integers(0, 5)) == 0:
            t.delete()
    for e in list(net.addresses):
        if e.association is None and draw(st.integers(0, 3)) == 0:
            e.release()
    _draw_filters(draw, net, named, attempt, port)
    return net


def _draw_filters(draw, net, named, attempt, port):
    """Random prefix lists, groups with rules (references across peerings), NACLs, ENI groups."""
    pls = []
    for _ in range(draw(st.integers(0, 2))):
        cidrs = [f"{draw(st.integers(1, 223))}.{draw(st.integers(0, 255))}.0.0/{draw(st.integers(8, 16))}"
                 for _ in range(draw(st.integers(0, 3)))]
        pl = named(net.add_prefix_list, cidrs, max_entries=draw(st.sampled_from([None, 5])))
        if pl is not None:
            pls.append(pl)
    protos = st.sampled_from(["tcp", "udp", "icmp", "all", 47, 132, "-1", 6])

    def ports_for(proto):
        if proto in ("tcp", "udp", 6):
            return draw(st.one_of(st.none(), st.integers(0, 65535),
                                  st.tuples(st.integers(0, 30000), st.integers(30000, 65535))))
        if proto == "icmp":
            return draw(st.one_of(st.none(), st.integers(-1, 255), st.tuples(st.integers(0, 255),
                                                                             st.integers(-1, 255))))
        return None

    for vpc in net.vpcs:
        for _ in range(draw(st.integers(0, 2))):
            named(vpc.add_security_group, group_name=draw(st.sampled_from([None, "web", "app"])),
                  description=draw(st.sampled_from(["", "a group", "é #:"])))
        for _ in range(draw(st.integers(0, 2))):
            named(vpc.add_network_acl)
        for acl in vpc.network_acls:
            for _ in range(draw(st.integers(0, 3))):
                proto = draw(protos)
                attempt(acl.add_entry, draw(st.integers(1, 32766)), draw(st.sampled_from(["ingress", "egress"])),
                        draw(st.sampled_from(["allow", "deny"])), proto, ports_for(proto),
                        f"{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.0.0/{draw(st.integers(0, 32))}")
            if draw(st.integers(0, 4)) == 0 and acl.entries:
                e = draw(st.sampled_from(acl.entries))
                acl.remove_entry(e.number, e.direction)
        for s in vpc.subnets:
            if draw(st.booleans()):
                s.associate_network_acl(draw(st.sampled_from(vpc.network_acls)))
        for e in vpc.enis:
            if draw(st.booleans()):
                k = draw(st.integers(1, min(5, len(vpc.security_groups))))
                e.security_groups = draw(st.permutations(vpc.security_groups))[:k]
            if draw(st.integers(0, 3)) == 0:
                e.tracking = fv_tracking(draw)
    for vpc in net.vpcs:
        reachable = [g for v in net.vpcs if v is vpc or any(v in p.vpcs for p in vpc.peerings)
                     for g in v.security_groups]
        for g in vpc.security_groups:
            for _ in range(draw(st.integers(0, 3))):
                proto = draw(protos)
                kind = draw(st.integers(0, 3))
                if kind == 0:
                    peer = f"{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.1.0/{draw(st.integers(0, 32))}"
                elif kind == 1:
                    peer = draw(st.sampled_from(reachable))
                elif kind == 2 and pls:
                    peer = draw(st.sampled_from(pls))
                else:
                    peer = [f"10.{draw(st.integers(0, 255))}.0.0/16" for _ in range(draw(st.integers(1, 3)))]
                attempt(g.authorize, draw(st.sampled_from(["ingress", "egress"])), proto, ports_for(proto), peer)
            if draw(st.integers(0, 4)) == 0 and g.egress:
                r = g.egress[0]
                g.revoke_egress(r.protocol, r.ports if r.icmp is None else r.icmp, r.peer)
    # deleting a peering leaves stale references, which files keep
    for p in list(net.peerings):
        if draw(st.integers(0, 6)) == 0:
            p.delete()


def fv_tracking(draw):
    from fastvpc import Tracking

    return Tracking(tcp_established=draw(st.sampled_from([60, 350, 432000])), udp=draw(st.sampled_from([30, 60])),
                    udp_stream=draw(st.sampled_from([60, 180])), other=draw(st.sampled_from([600, 1])))


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(networks())
def test_round_trip_random_networks_json_and_yaml(net):
    want = fingerprint(net)
    for fmt in ("json", "yaml"):
        text = files.dumps(net, fmt)
        back = files.loads(text, fmt)
        assert back == net
        assert fingerprint(back) == want
        assert files.dumps(back, fmt) == text  # canonical: same bytes again
        assert "&id" not in text  # no YAML anchors/aliases: every value is written out
    assert files.network_from_dict(json.loads(json.dumps(files.network_to_dict(net)))) == net


@SETTINGS
@given(networks())
def test_network_to_dict_is_plain_data(net):
    d = files.network_to_dict(net)

    def walk(x):
        if isinstance(x, dict):
            assert all(isinstance(k, str) for k in x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        else:
            assert x is None or isinstance(x, (str, int, bool)), repr(x)

    walk(d)
    assert d["fastvpc"] == 1


def test_seed_round_trip_through_files(tmp_path):
    net = seed_vpc()
    for ext in ("json", "yaml", "yml"):
        p1, p2 = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
        net.save(p1)
        back = files.load(p1)
        assert back == net and fingerprint(back) == fingerprint(net)
        files.save(back, str(p2))
        assert p1.read_bytes() == p2.read_bytes()
    assert (tmp_path / "a.json").read_text().lstrip().startswith("{")
    assert yaml.safe_load((tmp_path / "a.yaml").read_text())["fastvpc"] == 1


# --------------------------------------------------------------------------- tracking identities

def _clashing() -> Network:
    """e73069 added first, then e26151: the same plain identity, so e26151 is salted (and a NAT
    gateway whose plain identity is that of ENI e75024, added before it: e75024 is salted too)."""
    net = seed_vpc()
    web = net.find("web")
    web.add_eni("10.0.1.40", name="e73069")
    web.add_eni("10.0.1.41", name="e26151")
    web.add_nat_gateway(name="nat40362", address=net.allocate_address("203.0.113.40"))
    web.add_eni("10.0.1.42", name="e75024")
    return net


def _idents(net: Network) -> dict[str, int]:
    dp = net.compile()
    return {v: k for k, v in dp.tracking_identities().items()}


def test_salted_tracking_identities_round_trip(tmp_path):
    net = _clashing()
    want = _idents(net)
    doc = files.network_to_dict(net)
    written = {e["name"]: e["tracking_id"] for v in doc["vpcs"] for s in v["subnets"] for e in s["enis"]
               if "tracking_id" in e}
    assert written == {"e26151": want["e26151"], "e75024": want["e75024"]}   # only the salted ones
    assert all("tracking_id" not in n for v in doc["vpcs"] for n in v["nat_gateways"])
    for ext in ("json", "yaml"):
        p = tmp_path / f"t.{ext}"
        net.save(p)
        back = files.load(p)
        assert back == net and _idents(back) == want
        back.find("app").add_eni("10.0.2.77", name="newcomer")
        assert {k: v for k, v in _idents(back).items() if k != "newcomer"} == want
    assert _idents(net.compile().network) == want                           # Dataplane.network too


def test_files_without_a_clash_are_unchanged():
    net = seed_vpc()
    assert "tracking_id" not in files.dumps(net) and "tracking_id" not in files.dumps(net, "yaml")


def test_a_salted_nat_gateway_identity_round_trips():
    net = seed_vpc()
    web = net.find("web")
    web.add_eni("10.0.1.42", name="e75024")                 # first: the NAT gateway is salted
    nat = web.add_nat_gateway(name="nat40362", address=net.allocate_address("203.0.113.40"))
    want = _idents(net)
    doc = files.network_to_dict(net)
    (nd,) = [n for v in doc["vpcs"] for n in v["nat_gateways"] if n["name"] == nat.name]
    assert nd["tracking_id"] == want[nat.name]
    assert _idents(files.network_from_dict(doc)) == want


def _eni_doc(doc: dict, name: str) -> dict:
    return next(e for v in doc["vpcs"] for s in v["subnets"] for e in s["enis"] if e["name"] == name)


@pytest.mark.parametrize("edit, match", [
    (lambda d: _eni_doc(d, "e26151").update(tracking_id="x"), r"e26151: tracking_id must be an integer .*'x'"),
    (lambda d: _eni_doc(d, "e26151").update(tracking_id=True), r"e26151: tracking_id must be an integer"),
    (lambda d: _eni_doc(d, "e26151").update(tracking_id=-1), r"e26151: tracking_id must be an integer in 0\.\.4294967295"),
    (lambda d: _eni_doc(d, "e26151").update(tracking_id=1 << 32), r"e26151: tracking_id must be an integer"),
    (lambda d: _eni_doc(d, "e26151").update(tracking_id=_eni_doc(d, "e75024")["tracking_id"]),
     r"tracking_id \d+ is also the tracking_id of ENI e"),
    (lambda d: _eni_doc(d, "e26151").update(tracking_id=_idents(seed_vpc())["web1"]),
     r"ENI e26151: tracking_id \d+ is the tracking identity of ENI web1"),
    (lambda d: _eni_doc(d, "web1").update(tracking_id=_eni_doc(d, "e26151")["tracking_id"]),
     r"tracking_id \d+ is also the tracking_id of ENI"),
    (lambda d: _eni_doc(d, "e26151").pop("name"), r"ENI with a tracking_id needs its name"),
])
def test_a_tampered_tracking_id_is_refused(edit, match):
    doc = files.network_to_dict(_clashing())
    edit(doc)
    with pytest.raises(TopologyFileError, match=match) as exc:
        files.network_from_dict(doc, source="t.json")
    assert "tracking_id" in str(exc.value) and "t.json" in str(exc.value)


def test_equality_sees_every_detail():
    base = seed_vpc()
    variants = []
    n = seed_vpc(); n.find("web1").source_dest_check = False; variants.append(n)
    n = seed_vpc(); n.find("rt-web").add_route("8.8.0.0/16", BLACKHOLE); variants.append(n)
    n = seed_vpc(); n.find("prod").set_main_route_table(n.find("rt-db")); variants.append(n)
    n = seed_vpc(); n.find("web").disassociate(); variants.append(n)
    n = seed_vpc(); n.find("db2").delete(); variants.append(n)
    n = seed_vpc(); n.find("prod").main_route_table.replace_route("10.0.0.0/16", n.find("app1")); variants.append(n)
    n = seed_vpc(); n.find("igw").delete(); variants.append(n)
    for v in variants:
        assert v != base
        assert files.loads(files.dumps(v, "yaml"), "yaml") == v


def test_special_routes_round_trip():
    net = seed_vpc()
    vpc = net.find("prod")
    vpc.add_cidr("10.1.0.0/16")
    fw = net.find("app1")
    rt = net.find("rt-web")
    rt.replace_route("10.1.0.0/16", fw)                   # replaced local target (#21)
    rt.add_route("10.0.3.0/24", fw)                       # more specific than local (#23)
    rt.add_route("192.168.0.0/16", "vgw", origin="propagated")
    rt.add_route("172.16.0.0/12", "vgw", origin="prefix-list", prefix_list="pl-0abc")
    rt.add_route("10.9.0.0/16", BLACKHOLE)                # explicit blackhole
    net.find("vgw").delete()                              # -> blackholes that remember 'vgw'
    d = files.network_to_dict(net)
    routes = d["vpcs"][0]["route_tables"][1]["routes"]
    assert {"destination": "10.1.0.0/16", "target": "app1", "origin": "local"} in routes
    assert all(r["destination"] != "10.0.0.0/16" for r in routes)  # unchanged local routes are implicit
    assert {"destination": "192.168.0.0/16", "target": "blackhole", "origin": "propagated",
            "deleted_target": "vgw"} in routes
    assert {"destination": "172.16.0.0/12", "target": "blackhole", "origin": "prefix-list",
            "prefix_list": "pl-0abc", "deleted_target": "vgw"} in routes
    assert {"destination": "10.9.0.0/16", "target": "blackhole", "origin": "static"} in routes
    for fmt in ("json", "yaml"):
        back = files.loads(files.dumps(net, fmt), fmt)
        assert back == net and fingerprint(back) == fingerprint(net)
        assert back.find("rt-web").route("10.1.0.0/16").target is back.find("app1")
        assert back.find("rt-web").route("192.168.0.0/16").deleted_target == "vgw"


def test_round_trip_after_deleting_a_subnet_with_a_middlebox_route():
    """Fails on a topology.py bug: deleting a subnet keeps the route to its CIDR (more specific
    than local), which add_route refuses, so the saved file cannot be loaded back.
    See tests/test_topology.py::test_23_removing_a_subnet_leaves_no_route_more_specific_than_local."""
    net = seed_vpc()
    prod = net.find("prod")
    spare = prod.add_subnet("10.0.9.0/24", name="spare")
    net.find("rt-web").add_route("10.0.9.0/24", net.find("app1"))
    try:
        spare.delete()
    except TopologyError:
        pass
    assert files.loads(files.dumps(net, "json"), "json") == net


def test_hand_written_minimal_yaml():
    text = """
fastvpc: 1
vpcs:
  - name: prod
    cidr: 10.0.0.0/16
    subnets:
      - {name: web, cidr: 10.0.1.0/24, route_table: rt-web, enis: [{name: w1, ip: 10.0.1.10}]}
      - {cidr: 10.0.2.0/24}
    route_tables:
      - name: rt-main
      - name: rt-web
        routes:
          - {destination: 0.0.0.0/0, target: igw}
    internet_gateways: [{name: igw}]
"""
    net = files.loads(text, "yaml", source="mini.yaml")
    vpc = net.find("prod")
    assert vpc.main_route_table.name == "rt-main"
    assert net.find("web").route_table.name == "rt-web"
    assert vpc.subnets[1].route_table is vpc.main_route_table
    assert net.find("rt-web").route("0.0.0.0/0").target is net.find("igw")
    assert net.find("rt-web").route("0.0.0.0/0").origin == "static"
    w1 = net.find("w1")
    assert w1.source_dest_check is True and w1.mac.startswith("02:")
    assert files.loads(files.dumps(net, "yaml"), "yaml") == net


def test_generated_ports_avoid_ports_written_later_in_the_file():
    text = """
fastvpc: 1
vpcs:
  - name: v
    cidrs: [10.0.0.0/16]
    internet_gateways: [{name: igw}]
    subnets:
      - cidr: 10.0.1.0/24
        enis: [{name: a, ip: 10.0.1.10, port: 0}, {name: b, ip: 10.0.1.11, port: 1}, {name: c, ip: 10.0.1.12}]
"""
    net = files.loads(text, "yaml")
    ports = {t.name: t.port for t in net.targets}
    assert ports["a"] == 0 and ports["b"] == 1
    assert ports["igw"] not in (0, 1) and ports["c"] not in (0, 1, ports["igw"])


def test_docs_example_loads():
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks, "docs/topology-files.md has no yaml example"
    net = files.loads(blocks[0], "yaml", source="docs")
    assert len(net.vpcs) >= 1 and net.enis
    assert files.loads(files.dumps(net, "yaml"), "yaml") == net


def test_load_sniffs_format_without_extension(tmp_path):
    net = seed_vpc()
    (tmp_path / "topo").write_text(files.dumps(net, "json"))
    (tmp_path / "topo2").write_text(files.dumps(net, "yaml"))
    assert files.load(tmp_path / "topo") == net
    assert files.load(tmp_path / "topo2") == net
    assert files.load(tmp_path / "topo2", format="yaml") == net


def test_save_needs_a_known_format(tmp_path):
    with pytest.raises(ValueError, match="topo.txt"):
        seed_vpc().save(tmp_path / "topo.txt")
    seed_vpc().save(tmp_path / "topo.txt", format="YAML")
    assert files.load(tmp_path / "topo.txt", format="yaml") == seed_vpc()
    with pytest.raises(ValueError, match="toml"):
        files.dumps(seed_vpc(), "toml")


def test_yaml_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError) as info:
        files.dumps(seed_vpc(), "yaml")
    assert "pyyaml" in str(info.value) and "fastvpc[yaml]" in str(info.value)
    with pytest.raises(ImportError, match=r"fastvpc\[yaml\]"):
        files.loads("fastvpc: 1\n", "yaml")
    # JSON needs nothing
    assert files.loads(files.dumps(seed_vpc(), "json"), "json") == seed_vpc()


# --------------------------------------------------------------------------- malformed files

def seed_doc() -> dict:
    return files.network_to_dict(seed_vpc())


def mutate(fn):
    d = seed_doc()
    fn(d)
    return d


def vpc0(d):
    return d["vpcs"][0]


# (id, mutation of the seed document, expected place, text that must name the bad value)
CASES = [
    ("top-not-mapping", lambda d: None, None, None),  # replaced below
    ("no-version", lambda d: d.pop("fastvpc"), "(document)", "'fastvpc'"),
    ("bad-version", lambda d: d.update(fastvpc=2), "fastvpc", "2"),
    ("bool-version", lambda d: d.update(fastvpc=True), "fastvpc", "True"),
    ("unknown-top-key", lambda d: d.update(vpc=[]), "vpc", "'vpc'"),
    ("vpcs-not-list", lambda d: d.update(vpcs={"a": 1}), "vpcs", "{'a': 1}"),
    ("vpc-not-mapping", lambda d: d["vpcs"].append("prod2"), "vpcs[1]", "'prod2'"),
    ("vpc-missing-name", lambda d: vpc0(d).pop("name"), "vpcs[0]", "'name'"),
    ("vpc-missing-cidrs", lambda d: vpc0(d).pop("cidrs"), "vpcs[0]", "'cidrs'"),
    ("vpc-both-cidr-keys", lambda d: vpc0(d).update(cidr="10.0.0.0/16"), "vpcs[0].cidr", "10.0.0.0/16"),
    ("vpc-cidrs-string", lambda d: vpc0(d).update(cidrs="10.0.0.0/16"), "vpcs[0].cidrs", "10.0.0.0/16"),
    ("vpc-cidr-too-big", lambda d: vpc0(d).update(cidrs=["10.0.0.0/8"]), "vpcs[0]", "10.0.0.0/8"),
    ("vpc-cidr-int", lambda d: vpc0(d).update(cidrs=[167772160]), "vpcs[0].cidrs[0]", "167772160"),
    ("secondary-cidr-overlap", lambda d: vpc0(d)["cidrs"].append("10.0.128.0/17"), "vpcs[0].cidrs[1]",
     "10.0.128.0/17"),
    ("main-table-unknown", lambda d: vpc0(d).update(main_route_table="rt-nope"), "vpcs[0].main_route_table",
     "rt-nope"),
    ("subnet-typo-key", lambda d: vpc0(d)["subnets"][0].update(cidr_block="x"), "vpcs[0].subnets[0].cidr_block",
     "'cidr_block'"),
    ("subnet-missing-cidr", lambda d: vpc0(d)["subnets"][1].pop("cidr"), "vpcs[0].subnets[1]", "'cidr'"),
    ("subnet-too-small", lambda d: vpc0(d)["subnets"][2].update(cidr="10.0.3.0/29"), "vpcs[0].subnets[2]",
     "10.0.3.0/29"),
    ("subnet-overlap", lambda d: vpc0(d)["subnets"][2].update(cidr="10.0.1.0/25"), "vpcs[0].subnets[2]",
     "10.0.1.0/25"),
    ("subnet-bad-cidr-text", lambda d: vpc0(d)["subnets"][1].update(cidr="10.0.2.0/2x"), "vpcs[0].subnets[1]",
     "10.0.2.0/2x"),
    ("subnet-unknown-table", lambda d: vpc0(d)["subnets"][0].update(route_table="rt-nope"),
     "vpcs[0].subnets[0].route_table", "rt-nope"),
    ("gateway-mac-bad", lambda d: vpc0(d)["subnets"][0].update(gateway_mac="01:00:5e:00:00:01"),
     "vpcs[0].subnets[0]", "01:00:5e:00:00:01"),
    ("eni-reserved-ip", lambda d: vpc0(d)["subnets"][0]["enis"][0].update(ip="10.0.1.1"),
     "vpcs[0].subnets[0].enis[0]", "10.0.1.1"),
    ("eni-dup-ip", lambda d: vpc0(d)["subnets"][0]["enis"][1].update(ip="10.0.1.10"),
     "vpcs[0].subnets[0].enis[1]", "10.0.1.10"),
    ("eni-dup-mac", lambda d: vpc0(d)["subnets"][1]["enis"][0].update(mac="02:00:0a:00:01:0a"),
     "vpcs[0].subnets[1].enis[0]", "02:00:0a:00:01:0a"),
    ("eni-dup-name", lambda d: vpc0(d)["subnets"][1]["enis"][0].update(name="web1"),
     "vpcs[0].subnets[1].enis[0]", "web1"),
    ("eni-dup-port", lambda d: vpc0(d)["subnets"][1]["enis"][0].update(port=2),
     "vpcs[0].subnets[1].enis[0]", "2"),
    ("eni-port-string", lambda d: vpc0(d)["subnets"][0]["enis"][0].update(port="7"),
     "vpcs[0].subnets[0].enis[0].port", "'7'"),
    ("eni-port-bool", lambda d: vpc0(d)["subnets"][0]["enis"][0].update(port=True),
     "vpcs[0].subnets[0].enis[0].port", "True"),
    ("eni-sdc-string", lambda d: vpc0(d)["subnets"][0]["enis"][0].update(source_dest_check="no"),
     "vpcs[0].subnets[0].enis[0].source_dest_check", "'no'"),
    ("eni-secondary-not-list", lambda d: vpc0(d)["subnets"][2]["enis"][0].update(secondary_ips="10.0.3.11"),
     "vpcs[0].subnets[2].enis[0].secondary_ips", "10.0.3.11"),
    ("eni-secondary-int", lambda d: vpc0(d)["subnets"][2]["enis"][0].update(secondary_ips=[5]),
     "vpcs[0].subnets[2].enis[0].secondary_ips[0]", "5"),
    ("eni-missing-ip", lambda d: vpc0(d)["subnets"][0]["enis"][0].pop("ip"), "vpcs[0].subnets[0].enis[0]", "'ip'"),
    ("eni-ip-null", lambda d: vpc0(d)["subnets"][0]["enis"][0].update(ip=None), "vpcs[0].subnets[0].enis[0].ip",
     "None"),
    ("route-unknown-target", lambda d: vpc0(d)["route_tables"][1]["routes"][0].update(target="igw-typo"),
     "vpcs[0].route_tables[1].routes[0].target", "igw-typo"),
    ("route-target-is-subnet", lambda d: vpc0(d)["route_tables"][1]["routes"][0].update(target="app"),
     "vpcs[0].route_tables[1].routes[0].target", "app"),
    ("route-into-service-range", lambda d: vpc0(d)["route_tables"][1]["routes"].append(
        {"destination": "169.254.169.0/24", "target": "igw"}), "vpcs[0].route_tables[1].routes[1]",
     "169.254.169.0/24"),
    ("route-partial-subnet", lambda d: vpc0(d)["route_tables"][1]["routes"].append(
        {"destination": "10.0.2.128/25", "target": "app1"}), "vpcs[0].route_tables[1].routes[1]", "10.0.2.128/25"),
    ("route-duplicate", lambda d: vpc0(d)["route_tables"][1]["routes"].append(
        {"destination": "0.0.0.0/0", "target": "vgw"}), "vpcs[0].route_tables[1].routes[1]", "0.0.0.0/0"),
    ("route-bad-origin", lambda d: vpc0(d)["route_tables"][1]["routes"][0].update(origin="manual"),
     "vpcs[0].route_tables[1].routes[0].origin", "manual"),
    ("route-local-not-cidr", lambda d: vpc0(d)["route_tables"][1]["routes"].append(
        {"destination": "10.0.1.0/24", "target": "web1", "origin": "local"}),
     "vpcs[0].route_tables[1].routes[1].destination", "10.0.1.0/24"),
    ("route-local-to-igw", lambda d: vpc0(d)["route_tables"][1]["routes"].append(
        {"destination": "10.0.0.0/16", "target": "igw", "origin": "local"}),
     "vpcs[0].route_tables[1].routes[1]", "igw"),
    ("route-deleted-target-not-blackhole", lambda d: vpc0(d)["route_tables"][1]["routes"][0].update(
        deleted_target="old"), "vpcs[0].route_tables[1].routes[0].deleted_target", "old"),
    ("route-missing-target", lambda d: vpc0(d)["route_tables"][1]["routes"][0].pop("target"),
     "vpcs[0].route_tables[1].routes[0]", "'target'"),
    ("route-dest-host-bits", lambda d: vpc0(d)["route_tables"][1]["routes"][0].update(destination="0.0.0.1/0"),
     "vpcs[0].route_tables[1].routes[0]", "0.0.0.1/0"),
    ("table-not-mapping", lambda d: vpc0(d)["route_tables"].append(["rt-x"]), "vpcs[0].route_tables[3]",
     "['rt-x']"),
    ("table-dup-name", lambda d: vpc0(d)["route_tables"][2].update(name="rt-web"), "vpcs[0].route_tables[2]",
     "rt-web"),
    ("second-igw", lambda d: vpc0(d)["internet_gateways"].append({"name": "igw2"}), "vpcs[0].internet_gateways[1]",
     "igw"),
    ("endpoint-bad-type", lambda d: vpc0(d)["endpoints"].append({"name": "ep", "type": "magic"}),
     "vpcs[0].endpoints[0]", "magic"),
    ("nat-unknown-subnet", lambda d: vpc0(d)["nat_gateways"].append({"name": "nat", "subnet": "nope"}),
     "vpcs[0].nat_gateways[0].subnet", "nope"),
    ("peering-unknown-vpc", lambda d: d["peerings"].append({"name": "pcx", "vpcs": ["prod", "ghost"]}),
     "peerings[0].vpcs[1]", "ghost"),
    ("peering-self", lambda d: d["peerings"].append({"name": "pcx", "vpcs": ["prod", "prod"]}), "peerings[0]",
     "prod"),
    ("peering-three-vpcs", lambda d: d["peerings"].append({"vpcs": ["prod", "prod", "prod"]}), "peerings[0].vpcs",
     "'prod'"),
    ("tgw-unknown-attachment", lambda d: d["transit_gateways"].append({"name": "tgw", "attachments": ["x"]}),
     "transit_gateways[0].attachments[0]", "'x'"),
    # transit gateways are built before a VPC's gateways: the clash is found on the igw, naming both
    ("tgw-port-taken", lambda d: d["transit_gateways"].append({"name": "tgw", "port": 0}),
     "vpcs[0].internet_gateways[0]", "port 0 is already used by tgw"),
]
CASES[0] = ("top-not-mapping", None, "(document)", "[1, 2]")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_document_names_file_place_and_value(tmp_path, case, fmt):
    cid, fn, where, value = case
    doc = [1, 2] if fn is None else mutate(fn)
    path = tmp_path / f"bad.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(doc, indent=2))
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(TopologyFileError) as info:
        files.load(path)
    err = info.value
    msg = str(err)
    assert isinstance(err, TopologyError)
    assert err.path == str(path) and msg.startswith(str(path))
    assert err.where == where, msg
    assert f"at {where}:" in msg
    assert value in msg, msg
    if fmt == "yaml":
        assert re.search(r"line \d+", msg), msg  # YAML gives a line for every place


@pytest.mark.parametrize("text, line", [
    ('{\n  "fastvpc": 1,\n  "vpcs": [\n    {"name": "a" "cidrs": []}\n  ]\n}\n', 4),
    ('{"fastvpc": 1,\n "vpcs": [}', 2),
    ('', 1),
])
def test_json_syntax_error_gives_line(tmp_path, text, line):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(TopologyFileError) as info:
        files.load(p)
    msg = str(info.value)
    assert str(p) in msg and "invalid JSON" in msg
    assert info.value.where.startswith(f"line {line}, column"), msg
    assert info.value.line == line


@pytest.mark.parametrize("text, line, near", [
    ("fastvpc: 1\nvpcs:\n  - name: a\n    cidrs: [10.0.0.0/16\n  - name: b\n", 5, ""),
    ("fastvpc: 1\nvpcs:\n  - name: a\n   bad: indent\n", 4, "bad: indent"),
    ("fastvpc: 1\nvpcs: [\n", 3, ""),
    ("fastvpc: 1\n\tvpcs: []\n", 2, "vpcs"),
])
def test_yaml_syntax_error_gives_line(tmp_path, text, line, near):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(TopologyFileError) as info:
        files.load(p)
    msg = str(info.value)
    assert str(p) in msg and "invalid YAML" in msg
    assert info.value.line == line, msg
    assert info.value.where == f"line {line}, column {info.value.where.split('column ')[1]}"
    assert near in msg


def test_yaml_structural_error_points_at_the_right_line(tmp_path):
    text = files.dumps(seed_vpc(), "yaml").replace("cidr: 10.0.2.0/24", "cidr: 10.0.2.0/29")
    want = text.splitlines().index("    cidr: 10.0.2.0/29") + 1
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(TopologyFileError) as info:
        files.load(p)
    assert info.value.where == "vpcs[0].subnets[1]"
    # the element's line (its first key), or the line of the bad key itself
    assert info.value.line in (want - 1, want), str(info.value)
    assert f"line {info.value.line}:" in str(info.value)


def test_yaml_unquoted_mac_read_as_number(tmp_path):
    text = files.dumps(seed_vpc(), "yaml").replace("mac: 02:00:0a:00:01:0a", "mac: 12:34:56:10:20:30")
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(TopologyFileError) as info:
        files.load(p)
    msg = str(info.value)
    assert info.value.where == "vpcs[0].subnets[0].enis[0].mac"
    assert "must be a string" in msg and "quote" in msg


@pytest.mark.parametrize("fmt, text, key", [
    ("json", '{"fastvpc": 1, "vpcs": [], "vpcs": []}', "vpcs"),
    ("yaml", "fastvpc: 1\nvpcs:\n  - name: a\n    cidrs: [10.0.0.0/16]\n    name: b\n", "name"),
])
def test_duplicate_keys_refused(fmt, text, key):
    with pytest.raises(TopologyFileError) as info:
        files.loads(text, fmt, source="dup")
    assert f"{key!r} appears twice" in str(info.value) and str(info.value).startswith("dup:")


def test_unknown_key_suggests_the_right_one():
    d = seed_doc()
    vpc0(d)["subnets"][0]["enis"][0]["secondary_ip"] = []
    with pytest.raises(TopologyFileError) as info:
        files.network_from_dict(d, source="mem")
    msg = str(info.value)
    assert msg.startswith("mem: at vpcs[0].subnets[0].enis[0].secondary_ip:")
    assert "did you mean 'secondary_ips'" in msg


def test_topology_error_is_wrapped_with_its_message():
    d = seed_doc()
    vpc0(d)["subnets"][0]["enis"][0]["ip"] = "10.0.1.255"
    with pytest.raises(TopologyFileError) as info:
        files.network_from_dict(d, source="mem")
    err = info.value
    assert "ENI web1: IP 10.0.1.255 is reserved in subnet web (broadcast address)" in str(err)
    assert err.value == "10.0.1.255"
    assert isinstance(err.__cause__, TopologyError) and not isinstance(err.__cause__, TopologyFileError)


def test_unreadable_files(tmp_path):
    with pytest.raises(TopologyFileError, match="missing.json"):
        files.load(tmp_path / "missing.json")
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"fastvpc: 1\nvpcs:\n  - name: caf\xe9\n")
    with pytest.raises(TopologyFileError, match="UTF-8"):
        files.load(p)
    p = tmp_path / "empty.yaml"
    p.write_text("")
    with pytest.raises(TopologyFileError, match="mapping"):
        files.load(p)


def test_hostile_documents_fail_fast():
    # YAML alias bomb: 9**10 leaves if expanded
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 11):
        p, q = chr(96 + i), chr(97 + i)
        levels.append(f"{q}: &{q} [" + ", ".join([f"*{p}"] * 9) + "]")
    bomb = "fastvpc: 1\nvpcs:\n  - name: v\n    cidrs: [10.0.0.0/16]\n    route_tables:\n" \
        + "      - " + "\n        ".join(levels) + "\n"
    # refused while the document is read, before any value is built: the aliases' expansion is bounded
    with pytest.raises(TopologyFileError, match=r"vpcs\[0\]\.route_tables\[0\]\.f\[0\]: line 11: YAML aliases"):
        files.loads(bomb, "yaml")
    bomb2 = "fastvpc: 1\n" + "\n".join(levels) + "\n"
    with pytest.raises(TopologyFileError, match="line 7: YAML aliases expand"):
        files.loads(bomb2, "yaml")
    # a document that contains itself
    d: dict = {"fastvpc": 1, "vpcs": [{"name": "v", "cidrs": ["10.0.0.0/16"], "subnets": []}]}
    d["vpcs"][0]["subnets"].append(d)
    with pytest.raises(TopologyFileError):
        files.network_from_dict(d)
    # very deep nesting
    with pytest.raises(TopologyFileError):
        files.loads('{"fastvpc": 1, "vpcs": ' + "[" * 100000 + "]" * 100000 + "}", "json")
    with pytest.raises(TopologyFileError):
        files.loads("fastvpc: 1\nvpcs: " + "[" * 1500 + "]" * 1500 + "\n", "yaml")


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 70000), st.text(max_size=12), st.floats(allow_nan=False),
                 st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                 st.sampled_from(["10.0.1.0/24", "10.0.1.10", "igw", "blackhole", "local", "prod", "rt-web",
                                  "02:00:00:00:00:01", "0.0.0.0/0"]))


def _places(x, here=()):
    yield here
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _places(v, here + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _places(v, here + (i,))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_corruption_only_raises_topology_file_error(data):
    net = seed_vpc()
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    net.add_peering(net.find("prod"), peer, name="pcx")
    net.find("prod").add_transit_gateway("tgw")
    net.find("prod").add_nat_gateway("nat", subnet=net.find("web"))
    net.find("prod").add_endpoint("ep", endpoint_type="gatewayloadbalancer")
    d = files.network_to_dict(net)
    places = [p for p in _places(d) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        place = data.draw(st.sampled_from(places))
        parent = d
        try:
            for k in place[:-1]:
                parent = parent[k]
            action = data.draw(st.sampled_from(["replace", "delete"]))
            if action == "delete":
                del parent[place[-1]]
            else:
                parent[place[-1]] = data.draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier corruption removed or replaced this place
    try:
        back = files.network_from_dict(copy.deepcopy(d), source="fuzz")
    except TopologyFileError as exc:
        assert str(exc).startswith("fuzz: at ")
        return
    assume(True)
    # if it loaded, it is a valid network that round-trips
    assert files.loads(files.dumps(back, "json"), "json") == back


# --------------------------------------------------------------------------- fastvpc show

def test_show_seed_vpc_key_facts():
    net = seed_vpc()
    text = show.render(net)
    lines = text.splitlines()
    assert "prod" in text and "10.0.0.0/16" in text

    def line_with(*words):
        hits = [ln for ln in lines if all(w in ln.split() or w in ln for w in words)]
        assert hits, f"no line with {words}"
        return hits

    for s in net.subnets:
        explicit = "explicit" if s.explicit_route_table is not None else "main"
        line_with(s.name, str(s.cidr), str(s.router_ip), s.gateway_mac, f"{s.route_table.name} ({explicit})")
    for e in net.enis:
        line_with(e.name, str(e.port), str(e.ip), e.mac, e.subnet.name, "on")
    line_with("db1", "10.0.3.11")
    line_with("igw", "internet gateway", str(net.find("igw").port))
    line_with("vgw", "VPN gateway", str(net.find("vgw").port))
    line_with("0.0.0.0/0", "igw", "static", "active")
    line_with("0.0.0.0/0", "vgw", "static", "active")
    assert len(line_with("10.0.0.0/16", "local", "local", "active")) == 3  # one local route per table
    line_with("rt-main", "(main)", "app")
    line_with("rt-web", "web")
    assert text.endswith("\n") and not any(ln != ln.rstrip() for ln in lines)


def test_show_columns_are_aligned():
    text = show.render(seed_vpc())
    lines = text.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.split()[:2] == ["NAME", "PORT"])
    header, rule = lines[i], lines[i + 1]
    col = header.index("IP")
    assert rule[col - 2:col] == "  " and rule[col] == "-"
    for ln in lines[i + 2:i + 8]:
        assert re.match(r"\d+\.\d+\.\d+\.\d+", ln[col:]), ln


def test_show_blackholes_peerings_and_tgws():
    net = seed_vpc()
    prod = net.find("prod")
    peer = net.add_vpc("10.1.0.0/16", name="peer")
    pcx = net.add_peering(prod, peer, name="pcx-1")
    tgw = prod.add_transit_gateway("tgw-1")
    net.find("rt-web").add_route("10.1.0.0/16", pcx)
    net.find("rt-db").add_route("172.16.0.0/12", tgw)
    net.find("app1").source_dest_check = False
    net.find("vgw").delete()
    text = show.render(net)
    assert re.search(r"0\.0\.0\.0/0\s+blackhole \(was vgw\)\s+static\s+blackhole", text)
    assert re.search(rf"pcx-1\s+{pcx.port}\s+prod\s+peer", text)
    assert re.search(rf"tgw-1\s+{tgw.port}\s+prod", text)
    assert re.search(r"app1 .* off", text)
    assert show.render(files.loads(files.dumps(net, "yaml"), "yaml")) == text


@pytest.mark.parametrize("doc", ["fastvpc: !!float s\n", "fastvpc: 1\nvpcs: [{name: !!int x1}]\n",
                                 "fastvpc: !!timestamp 2020-99-99\n"])
def test_yaml_tag_that_does_not_fit_its_value_is_a_topology_file_error(doc):
    """fuzz finding F1: PyYAML's own ValueError for a tagged value escaped loads()."""
    with pytest.raises(TopologyFileError, match="invalid YAML value"):
        files.loads(doc, format="yaml")


@pytest.mark.parametrize("doc, line, value", [
    ("fastvpc: 1\nvpcs: !!int _\n", 2, "_"),                  # PyYAML: IndexError
    ("fastvpc: 1\nvpcs:\n  - name: !!float ''\n", 3, ""),    # IndexError
    ("fastvpc: !!int +\n", 1, "+"),                           # IndexError
    ("fastvpc: 1\nx: !!bool ''\n", 2, ""),                    # KeyError
    ("fastvpc: 1\nx: !!timestamp x\n", 2, "x"),               # AttributeError
    ("fastvpc: 1\nx: 2001-13-45\n", 2, "2001-13-45"),         # ValueError from an implicit timestamp
])
def test_yaml_scalar_pyyaml_cannot_construct_is_named_with_its_line(doc, line, value):
    """CI fuzz finding (files target, 2026-12-02): ``!!int _`` made PyYAML's int constructor index an
    empty string, and the IndexError escaped loads(); other tags fail with KeyError/AttributeError.
    Each is a TopologyFileError naming the scalar's line, its tag and its text."""
    with pytest.raises(TopologyFileError, match="invalid YAML value") as info:
        files.loads(doc, format="yaml")
    assert info.value.line == line
    assert info.value.value == value
    assert f"line {line}, column" in str(info.value)
