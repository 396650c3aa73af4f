"""``trace`` with the edge (docs/edge.md; DESIGN §6): the hops say what the internet gateway did, and
the text and the JSON say what fastvpc does not model (NAT gateways in the kernel, transit gateway
route tables, endpoint services, IPv6) instead of implying reachability."""

from __future__ import annotations

import json

import fastvpc as fv
from fastvpc.trace import trace_packet


def _net():
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    igw = vpc.add_internet_gateway(name="igw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    web.add_eni("10.0.1.11", name="w2")
    app.add_eni("10.0.2.10", name="a1")
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30"))
    rt = vpc.add_route_table(name="private")
    rt.add_route("0.0.0.0/0", nat)
    app.associate(rt)
    return net


def test_the_trace_shows_the_igw_translation_and_agrees():
    t = trace_packet(_net(), "w1", "8.8.8.8", proto="tcp", port=443, edge=True)
    assert t.verdict == "FORWARD" and t.agrees and t.egress_name == "igw"
    igw_hops = [h for h in t.hops if h.kind == "igw"]
    assert any("203.0.113.10" in h.detail and "1:1" in h.detail for h in igw_hops), igw_hops
    assert any("IPv6" in x for x in t.not_evaluated)
    assert "IPv6" in str(t) and any("IPv6" in x for x in json.loads(json.dumps(t.to_dict()))["not_evaluated"])


def test_no_public_ip_is_a_drop_in_the_trace():
    t = trace_packet(_net(), "w2", "8.8.8.8", edge=True)
    assert (t.verdict, t.ra_code, t.agrees) == ("DROP NO_PUBLIC_IP", "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS", True)
    assert trace_packet(_net(), "w2", "8.8.8.8").verdict == "DROP NO_PUBLIC_IP"     # the edge is the default
    t = trace_packet(_net(), "w2", "8.8.8.8", edge=False)   # the routing view, and it says so
    assert t.verdict == "FORWARD" and any("edge=False" in x for x in t.not_evaluated)


def test_the_trace_says_the_nat_gateway_and_tgw_route_tables_are_not_modelled():
    net = _net()
    t = trace_packet(net, "a1", "8.8.8.8", edge=True)
    assert t.verdict == "FORWARD" and t.egress_name == "nat"
    assert any("NAT gateway is not modelled" in x for x in t.to_dict()["not_evaluated"])
    assert "NAT gateway is not modelled" in str(t)
    tgw = net.add_transit_gateway(name="tgw")
    tgw.attach(net.vpcs[0])
    net.find("private").replace_route("0.0.0.0/0", tgw)
    t = trace_packet(net, "a1", "8.8.8.8", edge=True)
    assert t.egress_name == "tgw" and any("transit gateway route tables are not modelled" in x
                                          for x in t.to_dict()["not_evaluated"])
