"""Switch options checked when the switch is made (no interface opened, no root needed)."""

from __future__ import annotations

import pytest

from fastvpc.errors import LiveError
from fastvpc.examples import seed_vpc
from fastvpc.live import Switch
from fastvpc.reference import ReferenceForwarder
from fastvpc.topology import Network


def _edge_net() -> Network:
    from nat_net import seed_with_nat_and_peering

    return seed_with_nat_and_peering()


def test_nat_gateway_and_peering_ports_are_refused_where_they_carry_nothing() -> None:
    net = _edge_net()
    nat, pcx = net.find("nat"), net.find("pcx")
    for dp in (net.compile(), ReferenceForwarder(net)):
        for key in ("nat", nat, nat.port):
            with pytest.raises(LiveError, match=r"cannot attach nat: it is a NAT gateway, whose port has no wire"):
                Switch(dp, {"web1": "x0", key: "x1"}, network=net)
        for key in ("pcx", pcx, pcx.port):
            with pytest.raises(LiveError, match=r"cannot attach pcx: it is a peering connection, whose port has no"):
                Switch(dp, {key: "x1"}, network=net)
    # without the edge a NAT gateway is an opaque exit: frames routed to it are FORWARDed out of its port
    routing = net.compile(edge=False)
    assert Switch(routing, {"nat": "x1"}, network=net).attachments == {nat.port: "x1"}
    with pytest.raises(LiveError, match="peering connection"):
        Switch(routing, {"pcx": "x1"}, network=net)
    # the gateways whose ports are wires
    vpc = net.vpcs[0]
    vpc.add_transit_gateway(name="tgw")
    vpc.add_endpoint(name="vpce", endpoint_type="gateway")
    dp = net.compile()
    sw = Switch(dp, {"igw": "x0", "vgw": "x1", "tgw": "x2", "vpce": "x3"}, network=net)
    assert sorted(sw.labels.values()) == ["igw", "tgw", "vgw", "vpce"]


def test_flow_capacity_sizes_the_one_table_of_the_switch() -> None:
    from fastvpc.dataplane.state import FlowTable
    from fastvpc.live.switch import LIVE_FLOW_CAPACITY

    net = seed_vpc()
    dp = net.compile()
    assert LIVE_FLOW_CAPACITY == 262_144
    assert Switch(dp, {"web1": "x0", "app1": "x1"}, network=net).state.capacity == LIVE_FLOW_CAPACITY
    assert FlowTable(LIVE_FLOW_CAPACITY).nbytes < 17_000_000       # the memory docs/live.md states
    sw = Switch(dp, {"web1": "x0", "app1": "x1"}, network=net, flow_capacity=1000)
    assert sw.state.capacity == 1000                                 # one table for both ENIs
    assert Switch(ReferenceForwarder(net), {"web1": "x0"}, network=net, flow_capacity=7).state.capacity == 7
    for bad in (0, -1, True, 1.5, "10"):
        with pytest.raises(LiveError, match="flow_capacity .* must be a positive whole number"):
            Switch(dp, {"web1": "x0"}, network=net, flow_capacity=bad)
    with pytest.raises(LiveError, match="give it or state=, not both"):
        Switch(dp, {"web1": "x0"}, network=net, state=None, flow_capacity=10)
