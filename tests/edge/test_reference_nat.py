"""NAT gateways in the reference forwarder (``ReferenceForwarder(net, edge=True)`` models them by default;
docs/edge.md §4, row #33): the oracle for the compiled nat stage (test_kernel_nat.py holds the two engines
equal on the same frames and state).  One ``process()`` carries a frame ENI -> NAT gateway -> IGW."""

from __future__ import annotations

import warnings

from frames import assert_checksums
from nat_net import nat_network
from fastvpc.reference import ReferenceFlowTable, ReferenceForwarder
from fastvpc.verdicts import Action, DropReason

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether

OUTSIDE_MAC = "02:99:00:00:00:01"


NS = 1_000_000_000


def world():
    w = nat_network()
    a1 = w.app.add_eni("10.0.2.10", name="a1")
    return w.net, w.igw, w.nat, a1


def fwd(net, frame, port, state, now):
    ref = ReferenceForwarder(net, edge=True, nat=True)
    return ref.forward(frame, port, state=state, now=now)


def out_frame(a1, l4, dst="8.8.8.8"):
    return raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst=dst) / l4)


def in_frame(igw, l4, dst="203.0.113.30", src="8.8.8.8"):
    return raw(Ether(src=OUTSIDE_MAC, dst=igw.mac) / IP(src=src, dst=dst) / l4)


def test_out_through_the_nat_gateway_and_the_igw_and_the_reply_back():
    net, igw, nat, a1 = world()
    state = ReferenceFlowTable(1000)
    ref = ReferenceForwarder(net, edge=True, nat=True)
    v = ref.forward(out_frame(a1, TCP(sport=40000, dport=443, flags="S")), a1.port, state=state, now=NS)
    assert (v.action, v.egress) == (Action.FORWARD, igw.port)
    pkt = assert_checksums(v.frame)
    assert (pkt[IP].src, pkt[TCP].sport, pkt[IP].dst) == ("203.0.113.30", 40000, "8.8.8.8")
    assert net.routes()[v.route].route_table is nat.subnet.route_table    # the NAT's subnet's route decided
    back = ref.forward(in_frame(igw, TCP(sport=443, dport=40000, flags="SA")), igw.port, state=state, now=2 * NS)
    assert (back.action, back.egress) == (Action.DELIVER, a1.port)
    pkt = assert_checksums(back.frame)
    assert (pkt[IP].dst, pkt[TCP].dport, pkt.dst, pkt.src) == ("10.0.2.10", 40000, a1.mac, a1.subnet.gateway_mac)


def test_icmp_echo_and_udp_are_translated_other_protocols_are_not():
    net, igw, nat, a1 = world()
    state = ReferenceFlowTable(1000)
    v = fwd(net, out_frame(a1, ICMP(id=7)), a1.port, state, NS)
    assert v.action == Action.FORWARD and assert_checksums(v.frame)[IP].src == "203.0.113.30"
    v = fwd(net, out_frame(a1, UDP(sport=5000, dport=53) / b"q"), a1.port, state, NS)
    assert v.action == Action.FORWARD and assert_checksums(v.frame)[UDP].sport == 5000
    gre = raw(Ether(src=a1.mac, dst=a1.subnet.gateway_mac) / IP(src=str(a1.ip), dst="8.8.8.8", proto=47) / (b"x" * 8))
    assert fwd(net, gre, a1.port, state, NS).reason == DropReason.NAT_UNSUPPORTED
    frag = out_frame(a1, TCP(sport=1, dport=2), dst="8.8.8.8")
    frag = frag[:20] + b"\x20\x00" + frag[22:]                     # MF on a TCP packet
    v = fwd(net, frag, a1.port, state, NS)
    assert v.reason in (DropReason.NAT_UNSUPPORTED, DropReason.MALFORMED)


def test_unsolicited_inbound_and_no_state():
    net, igw, nat, a1 = world()
    state = ReferenceFlowTable(1000)
    assert fwd(net, in_frame(igw, TCP(sport=443, dport=40000, flags="S")), igw.port, state, NS).reason == \
        DropReason.NAT_NO_BINDING
    ref = ReferenceForwarder(net, edge=True, nat=True)
    assert ref.forward(out_frame(a1, TCP(flags="S")), a1.port).reason == DropReason.NAT_NEEDS_STATE


def test_a_stale_tcp_segment_is_answered_with_a_rst_after_350_s_idle():
    net, igw, nat, a1 = world()
    state = ReferenceFlowTable(1000)
    syn = out_frame(a1, TCP(sport=40000, dport=443, flags="S", seq=100))
    assert fwd(net, syn, a1.port, state, NS).action == Action.FORWARD
    ack = out_frame(a1, TCP(sport=40000, dport=443, flags="A", seq=101, ack=5000))
    assert fwd(net, ack, a1.port, state, 300 * NS).action == Action.FORWARD
    v = fwd(net, ack, a1.port, state, 300 * NS + 351 * NS)
    assert (v.action, v.egress) == (Action.REPLY, a1.port)
    rst = assert_checksums(v.frame)
    assert (rst[IP].src, rst[IP].dst, rst[TCP].sport, rst[TCP].dport, rst[TCP].flags, rst[TCP].seq) == \
        ("8.8.8.8", "10.0.2.10", 443, 40000, "R", 5000)
    assert (rst.dst, rst.src) == (a1.mac, a1.subnet.gateway_mac)
