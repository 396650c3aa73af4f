"""Switch options checked when the switch is made (no interface opened, no root needed)."""

from __future__ import annotations

import pytest

from fastvpc.errors import LiveError
from fastvpc.examples import seed_vpc
from fastvpc.live import Switch
from fastvpc.reference import ReferenceForwarder
from fastvpc.topology import Network


def _edge_net() -> Network:
    net = seed_vpc()
    vpc = net.vpcs[0]
    net.find("web").add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30", name="eip-nat"))
    other = net.add_vpc("10.9.0.0/16", name="other")
    other.add_subnet("10.9.1.0/24", name="far").add_eni("10.9.1.10", name="far1")
    net.add_peering(vpc, other, name="pcx")
    return net


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
