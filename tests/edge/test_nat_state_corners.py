"""NAT gateway corner cases where the compiled pass and the reference forwarder once disagreed (found by a
differential fuzz campaign): a frame to the Amazon DNS address that a route sends to a NAT gateway, the
route a translated frame keeps when it dies in the NAT gateway's subnet, and the FlowTable clock a frame
that meets only a NAT gateway moves."""

from __future__ import annotations

import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, fresh_states
from fastvpc.verdicts import Action, DropReason

NS = 1_000_000_000


def whole_subnet_route_to_nat() -> tuple[fv.Network, fv.Subnet, fv.NatGateway, fv.Eni]:
    """Subnet a (10.0.0.0/24: the VPC's Amazon DNS address 10.0.0.2 is in it) holds a private NAT gateway;
    subnet b's table sends 10.0.0.0/24 to it (#23: a route more specific than local, to a NAT gateway)."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    a = vpc.add_subnet("10.0.0.0/24")
    b = vpc.add_subnet("10.0.1.0/24")
    nat = a.add_nat_gateway(connectivity="private")
    rt = vpc.add_route_table()
    rt.add_route("10.0.0.0/24", nat)
    b.associate(rt)
    a.add_eni("10.0.0.20")
    return net, a, nat, b.add_eni("10.0.1.10")


def frame_to(e: fv.Eni, dst: str, proto: str) -> bytes:
    if proto == "udp":
        payload = pk.udp(e.ip, dst, 40000, 53, b"q")
    else:
        payload = pk.ipv4(e.ip, dst, 47, b"\0\0\x08\0gre!")
    return pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4, payload)


@pytest.mark.parametrize("filters", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_frame_to_the_dns_address_routed_to_a_nat_gateway_meets_the_nat_step(filters: bool, n_threads: int) -> None:
    """The resolver's address is not filtered (#50), but with state= a route to a NAT gateway still takes it
    through the gateway: UDP is translated (then NO_SUCH_HOST in the gateway's subnet: no ENI owns .2), GRE is
    NAT_UNSUPPORTED -- never NAT_NEEDS_STATE, which is only for a pass without state= (docs/edge.md §4)."""
    net, _, nat, e = whole_subnet_route_to_nat()
    dp = net.compile(filters=filters)
    ref = ReferenceForwarder(net, filters=filters)
    items = [(frame_to(e, "10.0.0.2", "udp"), e.port), (frame_to(e, "10.0.0.2", "gre"), e.port),
             (frame_to(e, "10.0.0.20", "udp"), e.port)] * 3
    st = fresh_states(100)
    assert_same_verdicts(dp, ref, items, state=st, now=NS)
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    res = dp.process(batch, copy=True, state=fv.FlowTable(100), now=NS, n_threads=n_threads)
    assert [DropReason(int(r)) for r in res.reason[:2]] == [DropReason.NO_SUCH_HOST, DropReason.NAT_UNSUPPORTED]
    # the ENI behind the gateway: reached from the NAT gateway's address, which its default group does not admit
    assert (Action(int(res.action[2])), DropReason(int(res.reason[2]))) == \
        ((Action.DROP, DropReason.SG_INGRESS) if filters else (Action.DELIVER, DropReason.NONE))
    assert [int(g) for g in res.nat_gw[:3]] == [nat.port] * 3      # each met the NAT gateway
    # without state= it is the placeholder verdict, as for any frame to a NAT gateway
    plain = dp.process(batch, copy=True)
    assert DropReason(int(plain.reason[0])) == DropReason.NAT_NEEDS_STATE


@pytest.mark.parametrize("filters", [True, False])
def test_a_translated_frame_dropped_in_the_nat_subnet_keeps_the_route_to_the_nat_gateway(filters: bool) -> None:
    """DESIGN §6: `route` keeps the last route that decided -- after the NAT hop the `local` step decides
    NO_SUCH_HOST without a lookup, so it is still the route to the NAT gateway, in both engines."""
    net, _, nat, e = whole_subnet_route_to_nat()
    dp = net.compile(filters=filters)
    to_nat = next(i for i, r in enumerate(net.routes()) if r.target is nat)
    items = [(frame_to(e, "10.0.0.50", "udp"), e.port), (frame_to(e, "10.0.0.20", "udp"), e.port)]
    assert_same_verdicts(dp, ReferenceForwarder(net, filters=filters), items, state=fresh_states(100), now=NS)
    res = dp.process(fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]),
                     copy=True, state=fv.FlowTable(100), now=NS)
    assert DropReason(int(res.reason[0])) == DropReason.NO_SUCH_HOST
    assert [int(r) for r in res.route] == [to_nat, to_nat]


@pytest.mark.parametrize("filters", [True, False])
def test_a_frame_that_meets_only_a_nat_gateway_moves_the_clock_of_both_tables(filters: bool) -> None:
    """The bindings live in the FlowTable (DESIGN §6) and its times never go backwards: an unsolicited SYN to the
    NAT gateway's Elastic IP at 100 s moves the clock of the kernel's table and of the reference's alike, so a
    batch at 50 s afterwards is a ValueError for both."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    pub = vpc.add_subnet("10.0.0.0/24")
    priv = vpc.add_subnet("10.0.1.0/24")
    igw = vpc.add_internet_gateway()
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    nat = pub.add_nat_gateway(address=net.allocate_address("203.0.113.5"))
    priv.associate(vpc.add_route_table(routes=[("0.0.0.0/0", nat)]))
    a = priv.add_eni("10.0.1.10")
    inbound = pk.ethernet(igw.mac, "02:99:00:00:00:01", pk.ETH_IPV4,
                          pk.tcp("8.8.8.8", "203.0.113.5", 443, 1024, flags="S"))
    outbound = pk.ethernet(priv.gateway_mac, a.mac, pk.ETH_IPV4, pk.udp(a.ip, "8.8.8.8", 40000, 53, b"q"))
    st = fresh_states(100)
    dp, ref = net.compile(filters=filters), ReferenceForwarder(net, filters=filters)
    assert_same_verdicts(dp, ref, [(inbound, igw.port)], state=st, now=100 * NS)
    assert st.kernel.clock == st.reference.clock == 100 * NS
    later = fv.FrameBatch.from_frames([outbound], port=[a.port])
    for engine, table in ((dp, st.kernel), (ref, st.reference)):
        with pytest.raises(ValueError, match="backwards"):
            engine.process(later, copy=True, state=table, now=50 * NS)
