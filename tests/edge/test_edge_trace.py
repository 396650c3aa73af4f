"""``trace`` with the edge (docs/edge.md; DESIGN §6): the hops say what the internet gateway did, and
the text and the JSON say what fastvpc does not model (transit gateway
route tables, endpoint services, IPv6) instead of implying reachability; a NAT gateway is crossed (ENI -> NAT
gateway -> IGW) with both engines agreeing."""

from __future__ import annotations

import json

from fastvpc.trace import trace_packet
from nat_net import nat_network


def _net():
    w = nat_network()
    w.web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    w.web.add_eni("10.0.1.11", name="w2")
    w.app.add_eni("10.0.2.10", name="a1")
    return w.net


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


def test_the_trace_crosses_the_nat_gateway_and_says_tgw_route_tables_are_not_modelled():
    net = _net()
    t = trace_packet(net, "a1", "8.8.8.8", proto="tcp", port=443, edge=True)
    # ENI -> NAT gateway -> IGW in one trace, both engines agreeing (fresh tables: the first packet of its flow)
    assert (t.verdict, t.egress_name, t.agrees) == ("FORWARD", "igw", True)
    kinds = [h.kind for h in t.hops]
    assert kinds.index("eni") < kinds.index("nat") < kinds.index("igw")
    nat_hops = [h.detail for h in t.hops if h.kind == "nat"]
    assert any("10.0.2.10" in d and "translated to 10.0.1." in d for d in nat_hops), nat_hops
    assert any("203.0.113.30" in h.detail for h in t.hops if h.kind == "igw")
    assert net.routes()[t.route].route_table is net.find("web").route_table   # the NAT subnet's route decided
    assert not any("NAT gateway" in x for x in t.to_dict()["not_evaluated"])
    d = json.loads(json.dumps(t.to_dict()))
    assert d["agrees"] and any(h["kind"] == "nat" for h in d["hops"])
    tgw = net.add_transit_gateway(name="tgw")
    tgw.attach(net.vpcs[0])
    net.find("private").replace_route("0.0.0.0/0", tgw)
    t = trace_packet(net, "a1", "8.8.8.8", edge=True)
    assert t.egress_name == "tgw" and any("transit gateway route tables are not modelled" in x
                                          for x in t.to_dict()["not_evaluated"])
