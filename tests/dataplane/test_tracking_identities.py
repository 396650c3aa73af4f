"""``Dataplane.tracking_identities()`` names the owners of a FlowTable's entries: the ENI of each
tracked flow and the NAT gateway of each binding, the same for every snapshot of one network."""

from __future__ import annotations

import pickle

import fastvpc as fv
from fastvpc import packets as pk
from nat_net import nat_network


def _net() -> fv.Network:
    w = nat_network()
    w.web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    w.app.add_eni("10.0.2.10", name="a1")
    return w.net


def test_flows_and_bindings_map_back_to_their_owners():
    net = _net()
    dp = net.compile()
    w1, a1 = net.find("w1"), net.find("a1")
    frames = [pk.ethernet(w1.subnet.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 40000, 443)),
              pk.ethernet(a1.subnet.gateway_mac, a1.mac, pk.ETH_IPV4, pk.tcp(a1.ip, "8.8.8.8", 40001, 443))]
    table = fv.FlowTable(1000)
    res = dp.process(fv.FrameBatch.from_frames(frames, port=[w1.port, a1.port]), state=table, now=10**9)
    assert [fv.Action(a) for a in res.action] == [fv.Action.FORWARD, fv.Action.FORWARD]
    names = dp.tracking_identities()
    owners = {names[int(e)] for e in table.flows()["eni"]}
    assert owners == {"w1", "a1"}
    assert {names[int(n)] for n in table.nat_bindings()["nat"]} == {"nat"}
    # names only: a recompile, a pickle and a changed network keep every identity
    again = pickle.loads(pickle.dumps(net.compile(filters=False)))
    assert again.tracking_identities() == names
    net.find("app").add_eni("10.0.2.20", name="a2")
    grown = net.compile().tracking_identities()
    assert {k: v for k, v in grown.items() if v != "a2"} == names and "a2" in grown.values()
    assert "nat" not in net.compile(edge=False).tracking_identities().values()   # no NAT bindings without the edge
