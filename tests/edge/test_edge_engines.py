"""The edge stages on both engines (docs/edge.md; DESIGN §6; rows #17, #30, #33-#35, #40-#42): every
frame is pushed through the compiled Dataplane and the reference forwarder, which must agree on the
verdict and on every output byte; the rewritten frames are judged by scapy's own checksum computation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastvpc as fv
from frames import assert_checksums
from fastvpc.reference import ReferenceFlowTable, ReferenceForwarder
from fastvpc.verdicts import Action, DropReason

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

OUTSIDE_MAC = "02:99:00:00:00:01"
NS = 1_000_000_000


def world(*, sg_open: bool = False):
    """web (10.0.1.0/24: w1 with an Elastic IP, w2 without, fw an appliance with its check off), app
    (10.0.2.0/24: a1 with an Elastic IP), an internet gateway, a VPN gateway; routes 0/0 -> igw."""
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="v")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    igw = vpc.add_internet_gateway(name="igw")
    vgw = vpc.add_vpn_gateway(name="vgw")
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    w2 = web.add_eni("10.0.1.11", name="w2")
    fw = web.add_eni("10.0.1.5", name="fw", source_dest_check=False)
    a1 = app.add_eni("10.0.2.10", name="a1", public_ip="203.0.113.20")
    w1.add_secondary_ip("10.0.1.12")
    net.allocate_address("198.51.100.7", name="spare")   # allocated, associated with nothing
    if sg_open:
        for g in vpc.security_groups:
            g.authorize_ingress("-1", None, "0.0.0.0/0")
    return net, vpc, web, app, igw, vgw, w1, w2, fw, a1


def both(net, items, *, filters=True, edge=True, state=False, now=NS):
    """The kernel's verdicts, after asserting the reference's are identical (bytes included)."""
    dp = net.compile(filters=filters, edge=edge)
    ref = ReferenceForwarder(net, filters=filters, edge=edge)
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    if state:
        rk = dp.process(batch, copy=True, state=fv.FlowTable(1000), now=now)
        rr = ref.process(batch, copy=True, state=ReferenceFlowTable(1000), now=now)
    else:
        rk, rr = dp.process(batch, copy=True), ref.process(batch, copy=True)
    out = []
    for i in range(len(items)):
        k = (Action(int(rk.action[i])), DropReason(int(rk.reason[i])), int(rk.egress[i]), int(rk.route[i]))
        r = (Action(int(rr.action[i])), DropReason(int(rr.reason[i])), int(rr.egress[i]), int(rr.route[i]))
        assert k == r, f"frame {i}: kernel {k}, reference {r}"
        kb, rb = bytes(rk.frames.frame(i)), bytes(rr.frames.frame(i))
        assert kb == rb, f"frame {i}: the output bytes differ"
        out.append((*k, kb))
    return out


def one(net, frame, port, **kw):
    return both(net, [(frame, port)], **kw)[0]


def from_eni(eni, dst, l4, **ip_kw):
    return raw(Ether(src=eni.mac, dst=eni.subnet.gateway_mac) / IP(src=str(eni.ip), dst=dst, **ip_kw) / l4)


def from_outside(gw, src, dst, l4, mac=None, **ip_kw):
    return raw(Ether(src=OUTSIDE_MAC, dst=mac or gw.mac) / IP(src=src, dst=dst, **ip_kw) / l4)


# --------------------------------------------------------------------------- #30 out through the IGW

@pytest.mark.parametrize("l4", [TCP(sport=40000, dport=443, flags="S") / b"hello",
                                UDP(sport=40000, dport=53) / b"query", ICMP(id=7, seq=1) / b"ping"],
                         ids=["tcp", "udp", "icmp"])
def test_out_through_the_igw_is_translated_1_to_1_with_valid_checksums(l4):
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    a, r, e, route, out = one(net, from_eni(w1, "8.8.8.8", l4), w1.port)
    assert (a, r, e) == (Action.FORWARD, DropReason.NONE, igw.port)
    pkt = assert_checksums(out)
    assert (pkt[IP].src, pkt[IP].dst) == ("203.0.113.10", "8.8.8.8")
    if pkt.haslayer(TCP):
        assert (pkt[TCP].sport, pkt[TCP].dport) == (40000, 443)   # 1:1: ports untouched
    assert net.routes()[route].target is igw


def test_a_udp_checksum_of_zero_stays_zero():
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    frame = bytearray(from_eni(w1, "8.8.8.8", UDP(sport=1, dport=2) / b"x"))
    frame[14 + 20 + 6:14 + 20 + 8] = b"\0\0"
    a, r, e, _, out = one(net, bytes(frame), w1.port)
    assert a == Action.FORWARD and Ether(out)[UDP].chksum == 0


def test_fragments_get_only_the_ip_checksum_updated():
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    frame = from_eni(w1, "8.8.8.8", raw(UDP(sport=1, dport=2) / (b"x" * 40))[8:], proto=17, frag=3)
    a, r, e, _, out = one(net, frame, w1.port)
    assert a == Action.FORWARD
    pkt = assert_checksums(out)
    assert pkt[IP].src == "203.0.113.10" and out[34:] == frame[34:]


@pytest.mark.parametrize("who", ["no public IP", "secondary IP"])
def test_without_a_public_ip_the_igw_drops(who):
    net, vpc, web, app, igw, vgw, w1, w2, *_ = world()
    if who == "no public IP":
        frame, port = from_eni(w2, "8.8.8.8", TCP(dport=443)), w2.port
    else:
        frame = raw(Ether(src=w1.mac, dst=web.gateway_mac) / IP(src="10.0.1.12", dst="8.8.8.8") / TCP(dport=443))
        port = w1.port
    a, r, e, route, out = one(net, frame, port)
    assert (a, r, e) == (Action.DROP, DropReason.NO_PUBLIC_IP, -1)
    assert net.routes()[route].target is igw and out == frame


def test_edge_false_is_the_routing_view():
    net, vpc, web, app, igw, vgw, w1, w2, *_ = world()
    frames = [(from_eni(w2, "8.8.8.8", TCP(dport=443)), w2.port),
              (from_eni(w1, "8.8.8.8", TCP(dport=443)), w1.port),
              (from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(sport=443, dport=40000)), igw.port),
              (raw(Ether(src=OUTSIDE_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="8.8.8.8", pdst="203.0.113.10")),
               igw.port)]
    for filters in (True, False):
        got = both(net, frames, filters=filters, edge=False)
        assert [(a, e, out) for a, _, e, _, out in got[:2]] == [(Action.FORWARD, igw.port, frames[0][0]),
                                                                  (Action.FORWARD, igw.port, frames[1][0])]
        assert [r for _, r, *_ in got[2:]] == [DropReason.UNKNOWN_PORT] * 2


def test_a_vm_never_sends_from_its_public_ip():   # #17
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    frame = raw(Ether(src=w1.mac, dst=web.gateway_mac) / IP(src="203.0.113.10", dst="8.8.8.8") / TCP())
    assert one(net, frame, w1.port)[1] == DropReason.SRC_DST_CHECK


def test_a_middlebox_forwarding_web1s_packet_gets_web1s_public_ip():
    net, vpc, web, app, igw, vgw, w1, w2, fw, a1 = world()
    frame = raw(Ether(src=fw.mac, dst=web.gateway_mac) / IP(src="10.0.1.10", dst="8.8.8.8") / TCP(dport=80))
    a, r, e, _, out = one(net, frame, fw.port)
    assert (a, e) == (Action.FORWARD, igw.port) and Ether(out)[IP].src == "203.0.113.10"


# --------------------------------------------------------------------------- #40/#41 in from a gateway

def test_in_from_the_igw_is_translated_and_delivered():
    net, vpc, web, app, igw, vgw, w1, *_ = world(sg_open=True)
    frame = from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(sport=443, dport=40000, flags="SA") / b"data")
    a, r, e, route, out = one(net, frame, igw.port)
    assert (a, e, route) == (Action.DELIVER, w1.port, -1)
    pkt = assert_checksums(out)
    assert (pkt[IP].src, pkt[IP].dst, pkt.dst, pkt.src) == ("8.8.8.8", "10.0.1.10", w1.mac, web.gateway_mac)


@pytest.mark.parametrize("dst", ["10.0.1.10", "198.51.100.7", "203.0.113.99"],
                         ids=["private address", "unassociated EIP", "not allocated"])
def test_in_from_the_igw_to_no_public_ip_of_the_vpc(dst):
    net, vpc, web, app, igw, *_ = world(sg_open=True)
    frame = from_outside(igw, "8.8.8.8", dst, TCP(dport=22))
    a, r, e, _, out = one(net, frame, igw.port)
    assert (a, r) == (Action.DROP, DropReason.NO_SUCH_PUBLIC_IP) and out == frame


def test_an_eip_of_another_vpc_is_not_reachable_through_this_igw():
    net, vpc, web, app, igw, vgw, w1, *_ = world(sg_open=True)
    v2 = net.add_vpc("10.9.0.0/16", name="v2")
    s2 = v2.add_subnet("10.9.1.0/24", name="s2")
    igw2 = v2.add_internet_gateway(name="igw2")
    s2.add_eni("10.9.1.10", name="x", public_ip="203.0.113.50")
    for g in v2.security_groups:
        g.authorize_ingress("-1", None, "0.0.0.0/0")
    assert one(net, from_outside(igw, "8.8.8.8", "203.0.113.50", TCP()), igw.port)[1] == DropReason.NO_SUCH_PUBLIC_IP
    assert one(net, from_outside(igw2, "8.8.8.8", "203.0.113.50", TCP()), igw2.port)[0] == Action.DELIVER


def test_arp_on_a_gateway_port_is_answered_with_the_gateways_mac():
    net, vpc, web, app, igw, vgw, *_ = world()
    for gw, tpa in ((igw, "203.0.113.10"), (igw, "1.2.3.4"), (vgw, "10.0.1.10")):
        req = raw(Ether(src=OUTSIDE_MAC, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=OUTSIDE_MAC, psrc="192.0.2.1", pdst=tpa))
        a, r, e, _, out = one(net, req, gw.port)
        assert (a, e) == (Action.REPLY, gw.port)
        rep = Ether(out)
        assert (rep.dst, rep.src, rep[ARP].op, rep[ARP].hwsrc, rep[ARP].psrc, rep[ARP].pdst) == \
            (OUTSIDE_MAC, gw.mac, 2, gw.mac, tpa, "192.0.2.1")
    probe = raw(Ether(src=OUTSIDE_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="0.0.0.0", pdst="192.0.2.1"))
    reply = raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / ARP(op=2, psrc="192.0.2.1", pdst="203.0.113.10"))
    assert [v[1] for v in both(net, [(probe, igw.port), (reply, igw.port)])] == [DropReason.ARP_IGNORED] * 2


def test_outside_frames_must_be_addressed_to_the_gateway():
    net, vpc, web, app, igw, vgw, w1, *_ = world(sg_open=True)
    cases = [(from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(), mac=w1.mac), DropReason.UNKNOWN_MAC),
             (from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(), mac="ff:ff:ff:ff:ff:ff"), DropReason.L2_BROADCAST),
             (from_outside(igw, "8.8.8.8", "255.255.255.255", TCP()), DropReason.BROADCAST),
             (from_outside(igw, "8.8.8.8", "224.0.0.5", TCP()), DropReason.MULTICAST),
             (raw(Ether(src=OUTSIDE_MAC, dst=igw.mac, type=0x86DD) / (b"\0" * 40)), DropReason.NON_IPV4),
             (b"\x01\x02", DropReason.MALFORMED)]
    got = both(net, [(f, igw.port) for f, _ in cases])
    assert [v[1] for v in got] == [r for _, r in cases]


def test_the_igw_route_table_sends_inbound_traffic_through_the_appliance():   # #40, #41
    net, vpc, web, app, igw, vgw, w1, w2, fw, a1 = world(sg_open=True)
    rt = vpc.add_route_table(name="edge")
    rt.associate_gateway(igw)
    rt.add_route("10.0.2.0/24", fw)
    to_app = from_outside(igw, "8.8.8.8", "203.0.113.20", TCP(dport=80))
    to_web = from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(dport=80))
    (a, r, e, route, out), (a2, _, e2, route2, _) = both(net, [(to_app, igw.port), (to_web, igw.port)])
    assert (a, e) == (Action.DELIVER, fw.port) and net.routes()[route].target is fw
    assert Ether(out)[IP].dst == "10.0.2.10" and Ether(out).dst == fw.mac
    assert (a2, e2) == (Action.DELIVER, w1.port) and net.routes()[route2].target is fv.LOCAL
    fw.source_dest_check = True
    assert one(net, to_app, igw.port)[1] == DropReason.SRC_DST_CHECK
    rt.replace_route("10.0.2.0/24", vpc.add_endpoint(name="gwlbe", endpoint_type="gatewayloadbalancer"))
    a, r, e, _, out = one(net, to_app, igw.port)
    assert (a, e) == (Action.FORWARD, net.find("gwlbe").port)
    assert assert_checksums(out)[IP].dst == "10.0.2.10"


def test_the_receivers_nacl_and_security_groups_filter_outside_frames():
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    frame = from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(sport=5555, dport=22, flags="S"))
    assert one(net, frame, igw.port)[1] == DropReason.SG_INGRESS          # the default group admits no outside
    assert one(net, frame, igw.port, filters=False)[0] == Action.DELIVER
    acl = vpc.add_network_acl(name="acl-web")
    acl.add_entry(100, "egress", "allow", "-1", None, "0.0.0.0/0")
    web.associate_network_acl(acl)                                        # no ingress entry: implicit deny
    assert one(net, frame, igw.port)[1] == DropReason.NACL_INGRESS


def test_a_reply_from_the_internet_is_admitted_by_the_tracked_flow():
    net, vpc, web, app, igw, vgw, w1, *_ = world()
    out = (from_eni(w1, "8.8.8.8", TCP(sport=40000, dport=443, flags="S")), w1.port)
    back = (from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(sport=443, dport=40000, flags="SA")), igw.port)
    unsolicited = (from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(sport=443, dport=40001, flags="S")), igw.port)
    got = both(net, [out, back, unsolicited], state=True)
    assert [(a, r) for a, r, *_ in got] == [(Action.FORWARD, DropReason.NONE), (Action.DELIVER, DropReason.NONE),
                                             (Action.DROP, DropReason.SG_INGRESS)]
    got = both(net, [back], state=True)                                   # a fresh table: nothing tracked
    assert got[0][1] == DropReason.SG_INGRESS


def test_in_through_a_vpn_gateway_without_translation():
    net, vpc, web, app, igw, vgw, w1, w2, *_ = world(sg_open=True)
    cases = [(from_outside(vgw, "192.168.0.1", "10.0.1.11", UDP(dport=53)), (Action.DELIVER, DropReason.NONE)),
             (from_outside(vgw, "192.168.0.1", "10.7.0.1", UDP(dport=53)), (Action.DROP, DropReason.NO_ROUTE)),
             (from_outside(vgw, "192.168.0.1", "10.0.1.255", UDP(dport=53)), (Action.DROP, DropReason.BROADCAST)),
             (from_outside(vgw, "192.168.0.1", "10.0.1.99", UDP(dport=53)), (Action.DROP, DropReason.NO_SUCH_HOST)),
             (from_outside(vgw, "192.168.0.1", "203.0.113.10", UDP(dport=53)), (Action.DROP, DropReason.NO_ROUTE))]
    got = both(net, [(f, vgw.port) for f, _ in cases])
    assert [(a, r) for a, r, *_ in got] == [v for _, v in cases]
    assert Ether(got[0][4])[IP].dst == "10.0.1.11" and got[0][2] == w2.port


def test_in_through_a_transit_gateway_enters_the_first_attached_vpc_holding_the_destination():
    net, vpc, web, app, igw, vgw, w1, w2, *_ = world(sg_open=True)
    v2 = net.add_vpc("10.0.0.0/16", name="v2")          # overlapping: the first attachment wins
    s2 = v2.add_subnet("10.0.1.0/24", name="s2")
    s2.add_eni("10.0.1.11", name="other")
    tgw = net.add_transit_gateway(name="tgw")
    tgw.attach(vpc)
    tgw.attach(v2)
    a, r, e, *_ = one(net, from_outside(tgw, "192.168.0.1", "10.0.1.11", UDP(dport=53)), tgw.port)
    assert (a, e) == (Action.DELIVER, w2.port)


# --------------------------------------------------------------------------- #33 NAT gateways

def test_nat_gateway_frames_get_the_same_verdict_in_both_engines():
    """Both engines model the NAT gateway (docs/edge.md §4): without state NAT_NEEDS_STATE; with state the
    frame leaves through the IGW with the NAT gateway's Elastic IP; nat=False keeps the old opaque view."""
    net, vpc, web, app, igw, vgw, w1, w2, fw, a1 = world()
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.30"))
    rt = vpc.add_route_table(name="private")
    rt.add_route("0.0.0.0/0", nat)
    app.associate(rt)
    frame = from_eni(a1, "8.8.8.8", TCP(sport=40000, dport=443, flags="S"))
    a, r, e, *_ = one(net, frame, a1.port)
    assert (a, r) == (Action.DROP, DropReason.NAT_NEEDS_STATE)
    [(a, r, e, _, out)] = both(net, [(frame, a1.port)], state=True)
    assert (a, e) == (Action.FORWARD, igw.port) and Ether(out)[IP].src == "203.0.113.30"
    for filters in (True, False):
        [(a, r, e, _, out)] = both(net, [(frame, a1.port)], state=True, filters=filters)
        assert (a, e) == (Action.FORWARD, igw.port)
    opaque = ReferenceForwarder(net, nat=False).forward(frame, a1.port)
    assert (opaque.action, opaque.egress) == (Action.FORWARD, nat.port)


# --------------------------------------------------------------------------- bad input

@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=120), gw=st.sampled_from(["igw", "vgw"]))
def test_any_bytes_on_a_gateway_port_get_the_same_verdict(data, gw):
    net, vpc, web, app, igw, vgw, *_ = world(sg_open=True)
    g = igw if gw == "igw" else vgw
    both(net, [(data, g.port), (raw(Ether(dst=g.mac, src=OUTSIDE_MAC)) + data, g.port)])


def test_stateful_edge_frames_are_exact_for_every_n_threads():
    """A FlowTable pass over several chunks: replies from the IGW wait for their receiver's table step
    (no sender step) in frame order, whatever the thread count, as the reference one frame at a time."""
    net, vpc, web, app, igw, vgw, w1, w2, fw, a1 = world()
    items = []
    for k in range(300):
        sport = 40000 + k
        items.append((from_eni(w1 if k % 2 else a1, "8.8.8.8", TCP(sport=sport, dport=443, flags="S")),
                      (w1 if k % 2 else a1).port))
        items.append((from_outside(igw, "8.8.8.8", "203.0.113.10" if k % 2 else "203.0.113.20",
                                   TCP(sport=443, dport=sport + (k % 3 == 0), flags="SA")), igw.port))
        if k % 7 == 0:
            items.append((from_eni(w2, "8.8.8.8", UDP(dport=53)), w2.port))
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    dp = net.compile(edge=True)
    ref = ReferenceForwarder(net, edge=True).process(batch, copy=True, state=ReferenceFlowTable(5000), now=NS)
    for n_threads in (1, 2):
        res = dp.process(batch, copy=True, state=fv.FlowTable(5000), now=NS, n_threads=n_threads)
        assert list(res.action) == list(ref.action) and list(res.reason) == list(ref.reason)
        assert list(res.egress) == list(ref.egress) and list(res.route) == list(ref.route)
        assert all(bytes(res.frames.frame(i)) == bytes(ref.frames.frame(i)) for i in range(len(items)))
    assert {int(r) for r in ref.reason} == {0, int(DropReason.SG_INGRESS), int(DropReason.NO_PUBLIC_IP)}


def test_an_edge_dataplane_pickles_and_a_damaged_edge_table_is_refused():
    import pickle

    net, vpc, web, app, igw, vgw, w1, *_ = world(sg_open=True)
    dp = net.compile(edge=True)
    again = pickle.loads(pickle.dumps(dp))
    assert again.edge and net.compile().edge and not net.compile(edge=False).edge
    items = [(from_eni(w1, "8.8.8.8", TCP(dport=443)), w1.port),
             (from_outside(igw, "8.8.8.8", "203.0.113.10", TCP(dport=22)), igw.port)]
    batch = fv.FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items])
    a, b = dp.process(batch, copy=True), again.process(batch, copy=True)
    assert list(a.action) == list(b.action) == [int(Action.FORWARD), int(Action.DELIVER)]
    assert bytes(a.frames.data) == bytes(b.frames.data)
    from fastvpc.dataplane import _validate

    state = _validate._decode(dp.__reduce__()[1][0])
    state["edge_hash"] = np.zeros(8, np.uint64)           # no empty slot: a lookup would never end
    state["digest"] = _validate.digest(state)             # a consistent pickle of a bad table
    with pytest.raises(fv.SnapshotError, match="edge_hash"):
        _validate.validate_state(state)


def test_bad_edge_arguments_are_refused_by_name():
    net = world()[0]
    with pytest.raises(fv.TopologyError, match="edge"):
        net.compile(edge="yes")
    with pytest.raises(TypeError, match="edge"):
        ReferenceForwarder(net, edge=1)
    with pytest.raises(ValueError, match="nat=True needs edge=True"):
        ReferenceForwarder(net, edge=False, nat=True)
