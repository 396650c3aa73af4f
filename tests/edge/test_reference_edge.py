"""The reference's edge building blocks (fastvpc.reference_edge; docs/edge.md): RFC 1624 checksum
updates judged by scapy's full recomputation, the internet gateway's 1:1 map, NAT bindings
(allocation, the 55,000 limit, 350 s idle), and the RST a NAT gateway answers with."""

from __future__ import annotations

import ipaddress
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastvpc as fv
from fastvpc import reference_edge as re_

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import checksum

SRC_MAC, DST_MAC = "02:00:0a:00:01:0a", "06:00:0a:00:01:00"


def frame(l4, src="10.0.1.10", dst="8.8.8.8", **ip_kw) -> bytearray:
    return bytearray(raw(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=src, dst=dst, **ip_kw) / l4))


def recomputed(buf: bytes) -> Ether:
    """scapy's own parse with every checksum recomputed from scratch (the oracle)."""
    pkt = Ether(bytes(buf))
    del pkt[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if pkt.haslayer(layer) and not (layer is UDP and pkt[UDP].chksum == 0):
            del pkt[layer].chksum
    return Ether(raw(pkt))


def assert_checksums_valid(buf: bytes) -> None:
    got, want = Ether(bytes(buf)), recomputed(buf)
    assert got[IP].chksum == want[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if got.haslayer(layer) and not got[IP].frag and not got[IP].flags.MF:
            assert got[layer].chksum == want[layer].chksum, layer.__name__


# --------------------------------------------------------------------------- RFC 1624

def test_checksum_adjust_matches_recomputation_on_known_values():
    data = bytearray(b"\x45\x00\x00\x54\x12\x34\x40\x00\x40\x01\x00\x00\x0a\x00\x01\x0a\x08\x08\x08\x08")
    c = re_.internet_checksum(data)
    data[10:12] = c.to_bytes(2, "big")
    assert re_.internet_checksum(data) == 0
    old = [0x0A00, 0x010A]
    new = [0xCB00, 0x710A]  # 10.0.1.10 -> 203.0.113.10
    data[12:16] = bytes([203, 0, 113, 10])
    adjusted = re_.checksum_adjust(c, old, new)
    data[10:12] = b"\0\0"
    assert adjusted == re_.internet_checksum(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=2, max_size=40).filter(lambda b: len(b) % 2 == 0), st.data())
def test_checksum_adjust_equals_full_recomputation(data, draw):
    buf = bytearray(data)
    c = re_.internet_checksum(buf)
    k = draw.draw(st.integers(0, len(buf) // 2 - 1))
    new_word = draw.draw(st.integers(0, 0xFFFF))
    old_word = int.from_bytes(buf[2 * k:2 * k + 2], "big")
    buf[2 * k:2 * k + 2] = new_word.to_bytes(2, "big")
    want = re_.internet_checksum(buf)
    got = re_.checksum_adjust(c, [old_word], [new_word])
    # one's complement has two zeros: the sums agree modulo 0x0000/0xFFFF
    assert got == want or {got, want} == {0, 0xFFFF}


# --------------------------------------------------------------------------- translations

L4S = {
    "tcp": lambda: TCP(sport=40000, dport=443, flags="S", seq=1000) / Raw(b"hello"),
    "udp": lambda: UDP(sport=5353, dport=53) / Raw(b"q" * 13),
    "icmp": lambda: ICMP(type=8, id=0x1234, seq=7) / Raw(b"ping"),
}


@pytest.mark.parametrize("proto", sorted(L4S))
def test_source_translation_1to1(proto):
    buf = frame(L4S[proto]())
    before = Ether(bytes(buf))
    t = re_.translate_source(buf, "203.0.113.10")
    after = Ether(bytes(buf))
    assert after[IP].src == "203.0.113.10" and after[IP].dst == "8.8.8.8"
    assert t.old_ip == ipaddress.IPv4Address("10.0.1.10") and t.l4_updated
    assert after[Raw].load == before[Raw].load  # only headers change
    assert after[IP].payload.fields.get("sport", after[IP].payload.fields.get("id")) == \
        before[IP].payload.fields.get("sport", before[IP].payload.fields.get("id"))  # 1:1: no port change
    assert_checksums_valid(buf)
    assert len(buf) == len(raw(before))


@pytest.mark.parametrize("proto", sorted(L4S))
def test_nat_translation_with_port_both_ways(proto):
    buf = frame(L4S[proto]())
    re_.translate_source(buf, "10.0.1.254", 1024)
    p = Ether(bytes(buf))
    assert p[IP].src == "10.0.1.254"
    if proto == "icmp":
        assert p[ICMP].id == 1024
    else:
        assert p[TCP if proto == "tcp" else UDP].sport == 1024
    assert_checksums_valid(buf)
    # and back (the reply translation on the same fields, as a test of symmetry)
    re_.translate_source(buf, "10.0.1.10", 0x1234 if proto == "icmp" else (40000 if proto == "tcp" else 5353))
    assert bytes(buf) == bytes(frame(L4S[proto]()))


def test_destination_translation():
    reply = frame(TCP(sport=443, dport=1024, flags="SA", seq=5, ack=1001), src="8.8.8.8", dst="203.0.113.20")
    re_.translate_destination(reply, "10.0.1.254")
    re_.translate_destination(reply, "10.0.2.10", 40000)
    p = Ether(bytes(reply))
    assert (p[IP].dst, p[TCP].dport, p[TCP].sport) == ("10.0.2.10", 40000, 443)
    assert_checksums_valid(reply)
    echo = frame(ICMP(type=0, id=1024, seq=1), src="8.8.8.8", dst="10.0.1.254")
    re_.translate_destination(echo, "10.0.2.10", 0x4242)
    assert Ether(bytes(echo))[ICMP].id == 0x4242
    assert_checksums_valid(echo)


def test_udp_without_checksum_stays_without():
    buf = frame(UDP(sport=1, dport=2, chksum=0) / Raw(b"x"))
    re_.translate_source(buf, "203.0.113.10", 5000)
    p = Ether(bytes(buf))
    assert p[UDP].chksum == 0 and p[UDP].sport == 5000
    assert checksum(bytes(p[IP])[:20]) == 0


def test_fragments_only_get_the_ip_header():
    first = frame(UDP(sport=5353, dport=53) / Raw(b"a" * 32), flags="MF", id=77)
    later = frame(Raw(b"b" * 24), proto=17, frag=5, id=77)
    tail = bytes(later)[34:]
    re_.translate_source(first, "203.0.113.10", 2000)
    t = re_.translate_source(later, "203.0.113.10")
    assert Ether(bytes(first))[UDP].sport == 2000 and not t.l4_updated
    assert bytes(later)[34:] == tail  # no byte of the payload touched
    assert checksum(bytes(later)[14:34]) == 0
    with pytest.raises(ValueError, match="port"):
        re_.translate_source(later, "203.0.113.10", 2000)
    assert re_.is_fragment(first) and re_.is_fragment(later)
    assert not re_.is_fragment(frame(L4S["udp"]()))


def test_truncated_l4_header_translates_only_the_address():
    buf = frame(Raw(b"\x9c\x40\x01\xbb\x00\x00"), proto=6)  # 6 bytes of a TCP header
    snapshot = bytes(buf)
    with pytest.raises(ValueError):
        re_.translate_source(buf, "203.0.113.10", 1024)
    assert bytes(buf) == snapshot  # refused before anything was written
    t = re_.translate_source(buf, "203.0.113.10")
    assert not t.l4_updated and bytes(buf)[34:] == snapshot[34:]
    assert checksum(bytes(buf)[14:34]) == 0


@pytest.mark.parametrize("bad", [b"", b"\x00" * 13, bytes(14) + b"\x45", bytes(12) + b"\x86\xdd" + bytes(40)])
def test_hostile_frames_raise_and_are_untouched(bad):
    buf = bytearray(bad)
    with pytest.raises(ValueError):
        re_.translate_source(buf, "203.0.113.10")
    assert bytes(buf) == bad


def test_total_length_past_the_frame_is_refused():
    buf = frame(L4S["udp"]())
    buf[16:18] = (len(buf)).to_bytes(2, "big")  # claims more than the frame holds
    snapshot = bytes(buf)
    with pytest.raises(ValueError, match="past the frame"):
        re_.translate_destination(buf, "10.0.0.1")
    assert bytes(buf) == snapshot


@settings(max_examples=200, deadline=None)
@given(proto=st.sampled_from(sorted(L4S)), src=st.integers(1, 2**32 - 2), dst=st.integers(1, 2**32 - 2),
       new=st.integers(0, 2**32 - 1), port=st.one_of(st.none(), st.integers(0, 65535)),
       payload=st.binary(max_size=30), which=st.sampled_from(["src", "dst"]))
def test_random_translations_keep_every_checksum_valid(proto, src, dst, new, port, payload, which):
    l4 = {"tcp": TCP(sport=1234, dport=80, flags="PA", seq=9), "udp": UDP(sport=1234, dport=80),
          "icmp": ICMP(type=8, id=99)}[proto] / Raw(payload)
    buf = frame(l4, src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)))
    n = len(buf)
    (re_.translate_source if which == "src" else re_.translate_destination)(buf, new, port)
    assert len(buf) == n
    p = Ether(bytes(buf))
    assert getattr(p[IP], which) == str(ipaddress.IPv4Address(new))
    assert_checksums_valid(buf)


def test_l4_ports():
    assert re_.l4_ports(frame(L4S["tcp"]())) == (6, 40000, 443, 0x02)
    assert re_.l4_ports(frame(L4S["udp"]())) == (17, 5353, 53, None)
    assert re_.l4_ports(frame(L4S["icmp"]())) == (1, 0x1234, 0x1234, None)
    assert re_.l4_ports(frame(Raw(b"x" * 8), proto=47)) == (47, None, None, None)


# --------------------------------------------------------------------------- the IGW's map

def test_public_ip_map_follows_the_control_plane():
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    w1 = web.add_eni("10.0.1.10", name="w1", public_ip="203.0.113.10")
    web.add_eni("10.0.1.11", name="w2")
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.20"))
    web.add_nat_gateway(name="natp", connectivity="private")
    net.allocate_address("203.0.113.99")  # unassociated: maps nothing
    m = re_.PublicIpMap(net)
    assert len(m) == 2
    assert m.public_ip_of("prod", "10.0.1.10") == ipaddress.IPv4Address("203.0.113.10")
    assert m.public_ip_of(vpc, nat.ip) == ipaddress.IPv4Address("203.0.113.20")
    assert m.public_ip_of(vpc, "10.0.1.11") is None  # NO_PUBLIC_IP
    assert m.private_ip_of(vpc, "203.0.113.10") == (w1, w1.ip)
    assert m.private_ip_of(vpc, "203.0.113.99") is None  # NO_SUCH_PUBLIC_IP
    assert m.private_ip_of(vpc, "10.0.1.10") is None
    assert m.private_ip_of("other", "203.0.113.10") is None


# --------------------------------------------------------------------------- NAT bindings

S = 1_000_000_000
SYN, ACK = re_.TCP_SYN, re_.TCP_ACK


def test_binding_keeps_the_port_and_translates_replies():
    t = re_.NatTable()
    d = t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, now=0, tcp_flags=SYN)
    assert d.status == "ok" and d.binding.nat_port == 40000
    again = t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, now=S, tcp_flags=ACK)
    assert again.binding is d.binding and len(t) == 1
    back = t.inbound("nat", "10.0.1.254", 6, "8.8.8.8", 443, 40000, now=2 * S)
    assert back is d.binding and back.inside_ip == int(ipaddress.IPv4Address("10.0.2.10"))
    assert t.inbound("nat", "10.0.1.254", 6, "8.8.4.4", 443, 40000, now=2 * S) is None  # other remote
    assert t.inbound("nat", "10.0.1.254", 17, "8.8.8.8", 443, 40000, now=2 * S) is None  # other protocol


def test_port_collisions_and_low_ports():
    t = re_.NatTable()
    a = t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 5000, "8.8.8.8", 53, now=0)
    b = t.outbound("nat", "10.0.1.254", 17, "10.0.2.11", 5000, "8.8.8.8", 53, now=0)
    assert (a.binding.nat_port, b.binding.nat_port) == (5000, 5001)
    c = t.outbound("nat", "10.0.1.254", 17, "10.0.2.11", 5000, "1.1.1.1", 53, now=0)
    assert c.binding.nat_port == 5000  # other destination: the port is reused
    low = t.outbound("nat", "10.0.1.254", 17, "10.0.2.12", 53, "8.8.8.8", 53, now=0)
    assert low.binding.nat_port == 1024
    top = t.outbound("nat", "10.0.1.254", 17, "10.0.2.13", 65535, "9.9.9.9", 53, now=0)
    top2 = t.outbound("nat", "10.0.1.254", 17, "10.0.2.14", 65535, "9.9.9.9", 53, now=0)
    assert (top.binding.nat_port, top2.binding.nat_port) == (65535, 1024)  # wraps


def test_tcp_needs_a_syn_else_rst():
    t = re_.NatTable()
    for flags in (ACK, SYN | ACK, re_.TCP_FIN | ACK, 0):
        assert t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, 0,
                          tcp_flags=flags).status == "rst"
    for flags in (re_.TCP_RST, re_.TCP_RST | ACK, SYN | re_.TCP_RST):
        assert t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, 0,
                          tcp_flags=flags).status == "no_binding"
    assert len(t) == 0


def test_idle_timeout_is_350_seconds():
    t = re_.NatTable()
    t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, now=0, tcp_flags=SYN)
    assert t.inbound("nat", "10.0.1.254", 6, "8.8.8.8", 443, 40000, now=349 * S) is not None
    # the reply at 349 s reset the idle clock
    assert t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, 698 * S,
                      tcp_flags=ACK).status == "ok"
    assert t.outbound("nat", "10.0.1.254", 6, "10.0.2.10", 40000, "8.8.8.8", 443, 1048 * S,
                      tcp_flags=ACK).status == "rst"  # 350 s idle: gone, and a non-SYN gets the RST
    assert len(t) == 0
    u = t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 5000, "8.8.8.8", 53, now=0)
    assert t.inbound("nat", "10.0.1.254", 17, "8.8.8.8", 53, 5000, now=350 * S) is None
    assert u.status == "ok" and t.expire(10**15) == 0


def test_55000_flows_per_destination():
    t = re_.NatTable(max_per_destination=3)
    ports = [t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 6000 + k, "8.8.8.8", 53, now=0) for k in range(4)]
    assert [d.status for d in ports] == ["ok", "ok", "ok", "exhausted"]
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 6003, "8.8.4.4", 53, now=0).status == "ok"
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 6003, "8.8.8.8", 54, now=0).status == "ok"
    assert re_.NatTable().max_per_destination == 55_000
    # expired bindings free their ports
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 6003, "8.8.8.8", 53, now=400 * S).status == "ok"


def test_capacity_gives_full():
    t = re_.NatTable(capacity=2)
    for k in range(2):
        assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 7000 + k, "8.8.8.8", 53, now=0).status == "ok"
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 7002, "8.8.8.8", 53, now=S).status == "full"
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 7002, "8.8.8.8", 53, now=351 * S).status == "ok"
    with pytest.raises(ValueError):
        re_.NatTable(capacity=0)


def test_all_ports_of_one_destination_in_use():
    t = re_.NatTable(max_per_destination=10**6)
    used = t._used.setdefault(("nat", int(ipaddress.IPv4Address("10.0.1.254")),
                                int(ipaddress.IPv4Address("8.8.8.8")), 53, 17), set())
    used.update(range(re_.NAT_PORT_MIN, re_.NAT_PORT_MAX + 1))
    assert t.outbound("nat", "10.0.1.254", 17, "10.0.2.10", 5000, "8.8.8.8", 53, now=0).status == "exhausted"


# --------------------------------------------------------------------------- the RST

def test_rst_for_an_ack():
    buf = frame(TCP(sport=40000, dport=443, flags="PA", seq=5000, ack=9000) / Raw(b"data"), src="10.0.2.10")
    gw = bytes.fromhex("06000a000200")
    re_.tcp_rst_for(buf, gw)
    p = Ether(bytes(buf))
    assert (p.src, p.dst) == ("06:00:0a:00:02:00", SRC_MAC)
    assert (p[IP].src, p[IP].dst, p[IP].len, p[IP].ttl) == ("8.8.8.8", "10.0.2.10", 40, 64)
    assert (p[TCP].sport, p[TCP].dport, p[TCP].seq, p[TCP].flags) == (443, 40000, 9000, "R")
    assert_checksums_valid(bytes(buf)[:54])


def test_rst_for_a_segment_without_ack():
    buf = frame(TCP(sport=40000, dport=443, flags="F", seq=100) / Raw(b"abc"), src="10.0.2.10")
    re_.tcp_rst_for(buf, bytes(6))
    p = Ether(bytes(buf)[:54])
    assert (p[TCP].seq, p[TCP].ack, p[TCP].flags) == (0, 104, "RA")  # 3 bytes + FIN
    assert_checksums_valid(bytes(buf)[:54])
    with pytest.raises(ValueError):
        re_.tcp_rst_for(frame(L4S["udp"]()), bytes(6))
    with pytest.raises(ValueError):
        re_.tcp_rst_for(frame(L4S["tcp"]()), b"\x00")


# --------------------------------------------------------------------------- the stages' functions, end to end

from fastvpc.verdicts import DropReason as R  # noqa: E402


@pytest.fixture
def edge_net():
    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16", name="prod")
    web = vpc.add_subnet("10.0.1.0/24", name="web")
    app = vpc.add_subnet("10.0.2.0/24", name="app")
    web.add_eni("10.0.1.10", name="web1", public_ip="203.0.113.10")
    app.add_eni("10.0.2.10", name="app1")
    nat = web.add_nat_gateway(name="nat", address=net.allocate_address("203.0.113.20"))
    natp = app.add_nat_gateway(name="natp", connectivity="private")
    return net, vpc, nat, natp


GW = bytes.fromhex("06000a000200")


def test_private_subnet_to_the_internet_and_back(edge_net):
    net, vpc, nat, _ = edge_net
    pmap, table = re_.PublicIpMap(net), re_.NatTable()
    syn = frame(TCP(sport=40000, dport=443, flags="S", seq=1), src="10.0.2.10")
    out = re_.nat_outbound(syn, nat, table, now=0, gateway_mac=GW)
    assert out.reason is None and not out.reply
    p = Ether(bytes(syn))
    assert (p[IP].src, p[TCP].sport) == (str(nat.ip), 40000)
    assert re_.igw_egress(syn, pmap, vpc).reason is None
    p = Ether(bytes(syn))
    assert (p[IP].src, p[IP].dst, p[TCP].sport) == ("203.0.113.20", "8.8.8.8", 40000)  # the internet sees the EIP
    assert_checksums_valid(syn)
    # the reply: IGW maps the EIP to the NAT gateway, the NAT gateway to the host
    synack = frame(TCP(sport=443, dport=40000, flags="SA", seq=7, ack=2), src="8.8.8.8", dst="203.0.113.20")
    got = re_.igw_ingress(synack, pmap, vpc)
    assert got.reason is None and got.owner is nat and Ether(bytes(synack))[IP].dst == str(nat.ip)
    back = re_.nat_inbound(synack, nat, table, now=S)
    assert back.reason is None
    p = Ether(bytes(synack))
    assert (p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport) == ("8.8.8.8", "10.0.2.10", 443, 40000)
    assert_checksums_valid(synack)


def test_unsolicited_unsupported_and_stateless(edge_net):
    net, vpc, nat, natp = edge_net
    pmap, table = re_.PublicIpMap(net), re_.NatTable()
    syn_in = frame(TCP(sport=5555, dport=22, flags="S"), src="8.8.8.8", dst="203.0.113.20")
    assert re_.igw_ingress(syn_in, pmap, vpc).owner is nat
    assert re_.nat_inbound(syn_in, nat, table, now=0).reason == R.NAT_NO_BINDING
    ping_nat = frame(ICMP(type=8, id=5), src="10.0.2.10", dst=str(nat.ip))
    assert re_.nat_inbound(ping_nat, nat, table, now=0).reason == R.NAT_NO_BINDING  # it answers no ping
    gre = frame(Raw(b"\0" * 20), proto=47, src="10.0.2.10")
    assert re_.nat_outbound(gre, nat, table, 0, GW).reason == R.NAT_UNSUPPORTED
    tcp_frag = frame(TCP(sport=40000, dport=443, flags="S") / Raw(b"x" * 40), src="10.0.2.10", flags="MF")
    assert re_.nat_outbound(tcp_frag, nat, table, 0, GW).reason == R.NAT_UNSUPPORTED
    icmp_frag = frame(ICMP(type=8, id=1) / Raw(b"x" * 40), src="10.0.2.10", flags="MF")
    assert re_.nat_outbound(icmp_frag, nat, table, 0, GW).reason == R.NAT_UNSUPPORTED
    unreachable = frame(ICMP(type=3, code=1), src="10.0.2.10")
    assert re_.nat_outbound(unreachable, nat, table, 0, GW).reason == R.NAT_UNSUPPORTED
    snapshot = bytes(gre)
    assert re_.nat_outbound(gre, nat, None, 0, GW).reason == R.NAT_NEEDS_STATE and bytes(gre) == snapshot
    assert re_.nat_inbound(syn_in, nat, None, 0).reason == R.NAT_NEEDS_STATE
    assert len(table) == 0


def test_igw_drops(edge_net):
    net, vpc, nat, natp = edge_net
    pmap = re_.PublicIpMap(net)
    f = frame(UDP(sport=1, dport=2), src="10.0.2.10")
    assert re_.igw_egress(f, pmap, vpc).reason == R.NO_PUBLIC_IP  # app1 has no public IP
    f = frame(UDP(sport=1, dport=2), src=str(natp.ip))
    assert re_.igw_egress(f, pmap, vpc).reason == R.NO_PUBLIC_IP  # a private NAT gateway through the IGW
    f = frame(UDP(sport=1, dport=2), src="10.0.1.10")
    assert re_.igw_egress(f, pmap, vpc).reason is None and Ether(bytes(f))[IP].src == "203.0.113.10"
    for dst in ("10.0.1.10", "203.0.113.99", "198.51.100.1"):
        f = frame(UDP(sport=1, dport=2), src="8.8.8.8", dst=dst)
        snap = bytes(f)
        assert re_.igw_ingress(f, pmap, vpc).reason == R.NO_SUCH_PUBLIC_IP and bytes(f) == snap


def test_private_nat_gateway_translates_to_its_private_ip(edge_net):
    net, vpc, nat, natp = edge_net
    f = frame(UDP(sport=3000, dport=53), src="10.0.2.10", dst="172.16.0.2")
    assert re_.nat_outbound(f, natp, re_.NatTable(), 0, GW).reason is None
    assert Ether(bytes(f))[IP].src == str(natp.ip)


def test_ping_through_the_nat_gateway(edge_net):
    net, vpc, nat, _ = edge_net
    table = re_.NatTable()
    req = frame(ICMP(type=8, id=77, seq=1) / Raw(b"abc"), src="10.0.2.10")
    assert re_.nat_outbound(req, nat, table, 0, GW).reason is None
    nat_id = Ether(bytes(req))[ICMP].id
    assert nat_id == 1024  # 77 is below 1024: the lowest free id
    rep = frame(ICMP(type=0, id=nat_id, seq=1) / Raw(b"abc"), src="8.8.8.8", dst=str(nat.ip))
    assert re_.nat_inbound(rep, nat, table, S).reason is None
    p = Ether(bytes(rep))
    assert (p[IP].dst, p[ICMP].id) == ("10.0.2.10", 77)
    assert_checksums_valid(rep)


def test_idle_connection_gets_a_rst(edge_net):
    net, vpc, nat, _ = edge_net
    table = re_.NatTable()
    syn = frame(TCP(sport=40000, dport=443, flags="S", seq=1), src="10.0.2.10")
    re_.nat_outbound(syn, nat, table, 0, GW)
    late = frame(TCP(sport=40000, dport=443, flags="A", seq=2, ack=99) / Raw(b"hi"), src="10.0.2.10")
    n = len(late)
    out = re_.nat_outbound(late, nat, table, 351 * S, GW)
    assert out.reply and out.reason is None and len(late) == n
    p = Ether(bytes(late)[:54])
    assert (p.dst, p.src) == (SRC_MAC, "06:00:0a:00:02:00")
    assert (p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport, p[TCP].flags, p[TCP].seq) == \
        ("8.8.8.8", "10.0.2.10", 443, 40000, "R", 99)
    rst = frame(TCP(sport=40000, dport=443, flags="R", seq=2), src="10.0.2.10")
    assert re_.nat_outbound(rst, nat, table, 352 * S, GW).reason == R.NAT_NO_BINDING  # never RST a RST


def test_udp_fragments(edge_net):
    net, vpc, nat, _ = edge_net
    table, frags = re_.NatTable(), re_.FragmentTable()
    first = frame(UDP(sport=5000, dport=53) / Raw(b"a" * 32), src="10.0.2.10", flags="MF", id=9)
    later = frame(Raw(b"b" * 16), proto=17, src="10.0.2.10", frag=5, id=9)
    orphan = frame(Raw(b"c" * 16), proto=17, src="10.0.2.10", frag=5, id=10)
    assert re_.nat_outbound(first, nat, table, 0, GW, frags).reason is None and len(frags) == 1
    assert re_.nat_outbound(later, nat, table, 0, GW, frags).reason is None
    assert Ether(bytes(later))[IP].src == str(nat.ip) and checksum(bytes(later)[14:34]) == 0
    assert re_.nat_outbound(orphan, nat, table, 0, GW, frags).reason == R.NAT_NO_BINDING
