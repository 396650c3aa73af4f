"""A NAT gateway's ``network_interface_id`` (the ``eni-…`` AWS gave it; ``NetworkInterfaceId`` of its
primary address in ``describe-nat-gateways``) is the ``interface-id`` of its flow log records, as in
AWS's flow logs, while its name (``nat-…``) stays what routes and traces use.  It round-trips through
topology files, is validated, and cannot be confused with another interface."""

from __future__ import annotations

import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane.flowlogs import FlowLog
from fastvpc.errors import TopologyError, TopologyFileError

NS = 10**9
T0 = 1_700_000_400
OUTSIDE_MAC = "02:aa:00:00:00:01"
NAT_IF = "eni-1235b8ca123456789"


def _net(network_interface_id: str | None = NAT_IF) -> tuple[fv.Network, fv.NatGateway, fv.Eni]:
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="vpc-1")
    pub = vpc.add_subnet("10.0.0.0/24", name="subnet-public")
    priv = vpc.add_subnet("10.0.1.0/24", name="subnet-private")
    igw = vpc.add_internet_gateway(name="igw-1")
    nat = pub.add_nat_gateway(name="nat-08d48af2a8e83edfd", address=net.allocate_address("198.51.100.7"),
                              ip="10.0.0.220", network_interface_id=network_interface_id)
    h = priv.add_eni("10.0.1.5", name="eni-1111aaaa2222bbbb3")
    priv.associate(vpc.add_route_table(name="rt-private", routes=[("0.0.0.0/0", nat)]))
    pub.associate(vpc.add_route_table(name="rt-public", routes=[("0.0.0.0/0", igw)]))
    return net, nat, h


def _records(net: fv.Network, h: fv.Eni, **kw) -> list[list[str]]:
    dp = net.compile()
    log = FlowLog(window=60, fields="${interface-id} ${srcaddr} ${dstaddr} ${flow-direction}", **kw)
    frame = pk.ethernet(h.subnet.gateway_mac, h.mac, pk.ETH_IPV4, pk.tcp(h.ip, "203.0.113.5", 40000, 443))
    res = dp.process(fv.FrameBatch.from_frames([frame], port=[h.port]), state=fv.FlowTable(), now=T0 * NS, log=log)
    assert res.action[0] == fv.Action.FORWARD
    return [ln.split() for ln in log.text().splitlines()[1:]]


def test_the_nat_gateways_records_carry_its_interface_id():
    net, nat, h = _net()
    got = _records(net, h)
    on_nat = [r for r in got if r[0] == NAT_IF]
    # AWS's example lines on the NAT gateway's interface: in addressed to its private IP, out from it
    assert on_nat == [[NAT_IF, "10.0.1.5", "10.0.0.220", "ingress"], [NAT_IF, "10.0.0.220", "203.0.113.5", "egress"]]
    assert not any(r[0] == nat.name for r in got)
    # a log of that one interface: by its id or by the NAT gateway's name
    for cover in ([NAT_IF], [nat.name], [nat]):
        assert [r[0] for r in _records(net, h, enis=cover)] == [NAT_IF, NAT_IF], cover
    # without an interface id the records name the NAT gateway
    net2, nat2, h2 = _net(None)
    assert {r[0] for r in _records(net2, h2)} == {nat2.name, h2.name}


def test_the_interface_id_round_trips_through_topology_files():
    net, nat, _ = _net()
    for fmt in ("json", "yaml"):
        back = fv.files.loads(fv.files.dumps(net, fmt), fmt)
        assert back.find(nat.name).network_interface_id == NAT_IF
        assert back == net
    net2, nat2, _ = _net(None)
    assert "network_interface_id" not in fv.files.dumps(net2, "json")


@pytest.mark.parametrize("bad", ["", "eni 12", 17, "x" * 256])
def test_a_bad_interface_id_is_refused_by_value(bad):
    with pytest.raises(TopologyError, match="network_interface_id") as exc:
        _net(bad)
    assert exc.value.value == bad


def test_an_interface_id_cannot_be_another_objects_name():
    net, nat, h = _net()
    # already a name in the network
    with pytest.raises(TopologyError, match="already a name"):
        nat.subnet.add_nat_gateway(name="nat-2", address=net.allocate_address("198.51.100.8"),
                                   network_interface_id=h.name)
    # already another NAT gateway's interface
    with pytest.raises(TopologyError, match=f"the interface of NAT gateway {nat.name}"):
        nat.subnet.add_nat_gateway(name="nat-3", address=net.allocate_address("198.51.100.9"),
                                   network_interface_id=NAT_IF)
    # and an object added later cannot take it as its name
    with pytest.raises(TopologyError, match="network interface id of a NAT gateway"):
        h.subnet.add_eni("10.0.1.9", name=NAT_IF)


def test_a_file_with_a_bad_interface_id_names_the_place():
    net, nat, _ = _net()
    text = fv.files.dumps(net, "json").replace(f'"{NAT_IF}"', '"eni bad"')
    with pytest.raises(TopologyFileError, match="network_interface_id"):
        fv.files.loads(text, "json")
