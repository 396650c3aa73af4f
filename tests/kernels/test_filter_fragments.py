"""Fragmented datagrams through the security groups and a NAT gateway, in both engines
(docs/forwarding-model.md §3b, docs/edge.md §4.2): a later fragment carries no L4 header, so the groups
judge its datagram by the first fragment and pass the rest (no table step), the NACLs judge every
fragment, and a NAT gateway translates a reply's later UDP fragments by the binding its first one found.
Found with Linux hosts in namespaces: a 3,000-byte UDP answer and `ping -s 3000` to the internet lost all
but their first fragment."""

from __future__ import annotations

import struct

import pytest
from nat_net import EIP, NS, OUTSIDE_MAC, nat_network

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.reference import ReferenceForwarder
from fastvpc.testing import assert_same_verdicts, fresh_states
from fastvpc.verdicts import Action, DropReason

A, R = Action, DropReason
MTU_PAYLOAD = 1480      # IP payload per fragment at a 1500-byte MTU (a multiple of 8)


def fragments(src: str, dst: str, proto: int, l4: bytes, ident: int) -> list[bytes]:
    """IPv4 packets carrying ``l4`` (a whole UDP datagram or ICMP message) cut as Linux cuts them."""
    out = []
    for off in range(0, len(l4), MTU_PAYLOAD):
        more = off + MTU_PAYLOAD < len(l4)
        out.append(pk.ipv4(src, dst, proto, l4[off:off + MTU_PAYLOAD], ident=ident,
                           flags_frag=(0x2000 if more else 0) | off // 8))
    return out


def udp_datagram(src: str, dst: str, sport: int, dport: int, size: int) -> bytes:
    return pk.udp(src, dst, sport, dport, bytes(i % 251 for i in range(size)))[20:]   # the UDP header + data


def two_subnets() -> tuple[fv.Network, fv.Eni, fv.Eni, fv.SecurityGroup]:
    """web1 in a group with no ingress rule; app1's group admits UDP 5353 and ICMP echo from the web subnet."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    web, app = vpc.add_subnet("10.0.1.0/24"), vpc.add_subnet("10.0.2.0/24")
    sg_web, sg_app = vpc.add_security_group(name="sg-web"), vpc.add_security_group(name="sg-app")
    sg_app.authorize_ingress("udp", 5353, "10.0.1.0/24")
    sg_app.authorize_ingress("icmp", (8, -1), "10.0.1.0/24")
    return net, web.add_eni("10.0.1.10", security_groups=[sg_web]), app.add_eni("10.0.2.10",
                                                                                    security_groups=[sg_app]), sg_app


def eth(e: fv.Eni, packet: bytes) -> bytes:
    return pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4, packet)


def run_both(net, items, state, now, n_threads=1):
    dp = net.compile()
    assert_same_verdicts(dp, ReferenceForwarder(net), items, state=state, now=now)
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    return dp.process(batch, copy=True, state=fv.FlowTable(1000), now=now, n_threads=n_threads), dp


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_tracked_flows_fragmented_reply_arrives_whole(n_threads: int) -> None:
    net, web1, app1, _ = two_subnets()
    request = eth(web1, pk.udp(web1.ip, app1.ip, 40000, 5353, b"query"))
    reply = [eth(app1, p) for p in fragments(str(app1.ip), str(web1.ip), 17,
                                              udp_datagram(str(app1.ip), str(web1.ip), 5353, 40000, 3000), 0x1234)]
    assert len(reply) == 3
    items = [(request, web1.port)] + [(f, app1.port) for f in reply]
    st = fresh_states(1000)
    res, _ = run_both(net, items, st, NS, n_threads)
    assert [(A(int(a)), R(int(r))) for a, r in zip(res.action, res.reason)] == [(A.DELIVER, R.NONE)] * 4
    assert [int(e) for e in res.egress] == [app1.port] + [web1.port] * 3
    # the request opened one entry at each ENI; the reply's first fragment is counted in them, the later ones
    # made no entry of their own
    rows = st.kernel.flows()
    assert len(rows) == 2 and sorted(int(n) for n in rows["packets"]) == [2, 2]


def test_a_fragmented_request_the_group_admits_arrives_whole_and_one_it_denies_loses_its_first_fragment() -> None:
    net, web1, app1, _ = two_subnets()
    allowed = [eth(web1, p) for p in fragments(str(web1.ip), str(app1.ip), 17,
                                                udp_datagram(str(web1.ip), str(app1.ip), 40000, 5353, 2000), 7)]
    denied = [eth(web1, p) for p in fragments(str(web1.ip), str(app1.ip), 17,
                                               udp_datagram(str(web1.ip), str(app1.ip), 40000, 9999, 2000), 8)]
    echo = pk.icmp_echo(web1.ip, app1.ip, ident=9, payload=b"p" * 3000)
    ping = [eth(web1, p) for p in fragments(str(web1.ip), str(app1.ip), 1, echo[20:], 9)]
    items = [(f, web1.port) for f in allowed + denied + ping]
    for state in (fresh_states(1000), None):          # with and without connection tracking
        if state is None:
            assert_same_verdicts(net.compile(), ReferenceForwarder(net), items)
            res = net.compile().process(fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]),
                                        copy=True)
        else:
            res, _ = run_both(net, items, state, NS)
        got = [R(int(r)) for r in res.reason]
        assert got == [R.NONE, R.NONE] + [R.SG_INGRESS, R.NONE] + [R.NONE, R.NONE, R.NONE]


def test_the_nacls_still_judge_every_fragment() -> None:
    net, web1, app1, _ = two_subnets()
    acl = app1.vpc.add_network_acl(name="acl-app")
    acl.add_entry(100, "ingress", "allow", "udp", 5353, "10.0.1.0/24")      # a port entry: a later fragment
    acl.add_entry(100, "egress", "allow", "all", None, "0.0.0.0/0")          # has no port, so it cannot match
    app1.subnet.associate_network_acl(acl)
    frags = [eth(web1, p) for p in fragments(str(web1.ip), str(app1.ip), 17,
                                              udp_datagram(str(web1.ip), str(app1.ip), 40000, 5353, 2000), 7)]
    res, _ = run_both(net, [(f, web1.port) for f in frags], fresh_states(1000), NS)
    assert [R(int(r)) for r in res.reason] == [R.NONE, R.NACL_INGRESS]


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_nat_gateway_translates_a_replys_later_udp_fragments(n_threads: int) -> None:
    """app1 (behind the NAT gateway) asks an internet host; the 3,000-byte answer comes back to the Elastic IP
    in three fragments: all reach app1, the destination translated in each (the IP checksum valid), the
    port only in the first (the later ones carry no UDP header).  A later fragment no first one announced
    is NAT_NO_BINDING."""
    n = nat_network()
    for g in n.vpc.security_groups:
        g.authorize_ingress("all", None, "0.0.0.0/0")
    app1 = n.app.add_eni("10.0.2.10")
    st = fresh_states(1000)
    pair_dp = n.net.compile()
    ref = ReferenceForwarder(n.net)
    out = eth(app1, pk.udp(app1.ip, "198.51.100.7", 40000, 5000, b"query"))
    assert_same_verdicts(pair_dp, ref, [(out, app1.port)], state=st, now=NS)
    left = pair_dp.process(fv.FrameBatch.from_frames([out], port=[app1.port]), copy=True,
                           state=fresh_states(1000).kernel, now=NS).frames.frame(0)
    nat_port = struct.unpack("!H", left[34:36])[0]
    assert left[26:30] == bytes(map(int, EIP.split(".")))
    answer = fragments("198.51.100.7", EIP, 17, udp_datagram("198.51.100.7", EIP, 5000, nat_port, 3000), 0x4321)
    orphan = pk.ipv4("198.51.100.7", EIP, 17, b"x" * 16, ident=0x4322, flags_frag=200)
    items = [(pk.ethernet(n.igw.mac, OUTSIDE_MAC, pk.ETH_IPV4, p), n.igw.port) for p in [*answer, orphan]]
    assert_same_verdicts(pair_dp, ref, items, state=st, now=2 * NS)
    kst = fresh_states(1000).kernel
    pair_dp.process(fv.FrameBatch.from_frames([out], port=[app1.port]), state=kst, now=NS, n_threads=n_threads)
    res = pair_dp.process(fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]), copy=True,
                          state=kst, now=2 * NS, n_threads=n_threads)
    assert [(A(int(a)), R(int(r))) for a, r in zip(res.action, res.reason)] == \
        [(A.DELIVER, R.NONE)] * 3 + [(A.DROP, R.NAT_NO_BINDING)]
    for i in range(3):
        f = res.frames.frame(i)
        assert f[30:34] == bytes([10, 0, 2, 10])                     # to app1
        assert pk.checksum(f[14:34]) == 0                            # the IP header checksum, updated
    assert struct.unpack("!H", res.frames.frame(0)[36:38])[0] == 40000  # the port: in the first fragment only
    assert [int(g) for g in res.nat_gw[:3]] == [n.nat.port] * 3


def test_a_later_reply_fragment_follows_the_live_binding_of_its_first_fragments_outside_key() -> None:
    """The first fragment of an answer to a's flow is remembered; a's binding idles out (350 s) and b's flow gets
    the same NAT port to the same remote; a late fragment of the old answer then takes the live binding of
    that outside key (b's) in both engines, as the compiled stage looks it up (found by a fuzz campaign:
    the reference kept a's expired binding)."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    pub, priv = vpc.add_subnet("10.0.0.0/24"), vpc.add_subnet("10.0.1.0/24")
    igw = vpc.add_internet_gateway()
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    nat = pub.add_nat_gateway(address=net.allocate_address("203.0.113.5"))
    priv.associate(vpc.add_route_table(routes=[("0.0.0.0/0", nat)]))
    a, b = priv.add_eni("10.0.1.10"), priv.add_eni("10.0.1.11")
    for g in vpc.security_groups:
        g.authorize_ingress("all", None, "0.0.0.0/0")

    def out(e):
        return pk.ethernet(priv.gateway_mac, e.mac, pk.ETH_IPV4, pk.udp(e.ip, "8.8.8.8", 5000, 53, b"q")), e.port

    def answer(flags_frag, payload):
        return pk.ethernet(igw.mac, OUTSIDE_MAC, pk.ETH_IPV4, pk.ipv4("8.8.8.8", "203.0.113.5", 17, payload, ident=77,
                                                                       flags_frag=flags_frag), pad_to=60), igw.port

    first = answer(0x2000, struct.pack("!HHHH", 53, 5000, 8 + 24, 0) + b"A" * 16)
    later = answer(3, b"B" * 8)
    dp, ref, st = net.compile(), ReferenceForwarder(net), fresh_states(1000)
    for t, items in ((0, [out(a)]), (1, [first]), (400, [out(b)]), (401, [later])):
        assert_same_verdicts(dp, ref, items, state=st, now=t * NS)
    res = dp.process(fv.FrameBatch.from_frames([later[0]], port=[igw.port]), copy=True,
                     state=fresh_states(1000).kernel, now=401 * NS)
    assert R(int(res.reason[0])) == R.NAT_NO_BINDING          # no first fragment seen by this table: an orphan
