"""fastvpc.packets builds what scapy (an independent implementation) dissects as intended."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from fastvpc import packets as pk

ips = st.integers(0, 2**32 - 1).map(lambda n: f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}")
ports = st.integers(0, 65535)


def _checksums_ok(frame: bytes) -> None:
    """Re-dissect with checksums cleared: scapy recomputes them; they must equal ours."""
    pkt = Ether(frame)
    again = pkt.copy()
    for layer in (IP, ICMP, UDP, TCP):
        if layer in again:
            del again[layer].chksum
    rebuilt = Ether(bytes(again))
    for layer in (IP, ICMP, UDP, TCP):
        if layer in pkt:
            assert pkt[layer].chksum == rebuilt[layer].chksum, layer.__name__


@given(ips, ips, ports, ports, st.binary(max_size=64), st.integers(1, 255))
@settings(max_examples=60, deadline=None)
def test_udp_and_tcp_match_scapy(src, dst, sport, dport, payload, ttl):
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4, pk.udp(src, dst, sport, dport, payload, ttl=ttl))
    p = Ether(f)
    assert (p[IP].src, p[IP].dst, p[IP].ttl, p[UDP].sport, p[UDP].dport) == (src, dst, ttl, sport, dport)
    assert bytes(p[UDP].payload) == payload
    _checksums_ok(f)
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4, pk.tcp(src, dst, sport, dport, payload))
    p = Ether(f)
    assert (p[TCP].sport, p[TCP].dport, p[TCP].flags) == (sport, dport, "S")
    _checksums_ok(f)


@given(ips, ips, st.integers(0, 65535), st.integers(0, 65535), st.binary(max_size=41))
@settings(max_examples=60, deadline=None)
def test_icmp_echo_odd_and_even_payloads(src, dst, ident, seq, payload):
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4,
                    pk.icmp_echo(src, dst, ident=ident, seq=seq, payload=payload))
    p = Ether(f)
    assert (p[ICMP].type, p[ICMP].id, p[ICMP].seq, bytes(p[ICMP].payload)) == (8, ident, seq, payload)
    _checksums_ok(f)


def test_arp_request_is_broadcast_who_has_padded_to_60():
    f = pk.arp_request("02:00:0a:00:01:0a", "10.0.1.10", "10.0.1.1")
    assert len(f) == 60
    p = Ether(f)
    assert p.dst == "ff:ff:ff:ff:ff:ff" and p[ARP].op == 1
    assert (p[ARP].hwsrc, p[ARP].psrc, p[ARP].pdst) == ("02:00:0a:00:01:0a", "10.0.1.10", "10.0.1.1")


def test_ip_options_lengthen_the_header():
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4,
                    pk.ipv4("10.0.0.1", "10.0.0.2", 253, b"x" * 8, options=b"\x01\x01\x01\x00"))
    p = Ether(f)
    assert p[IP].ihl == 6
    _checksums_ok(f)
    with pytest.raises(ValueError, match="multiple of 4"):
        pk.ipv4("10.0.0.1", "10.0.0.2", 17, b"", options=b"\x01")


def test_ipv6_frame_dissects():
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV6, pk.ipv6_udp("fe80::1", "ff02::1"))
    assert Ether(f)[IPv6].dst == "ff02::1"


@pytest.mark.parametrize("bad", ["02:00:00:00:00", "zz:00:00:00:00:01", "2:0:0:0:0:1", b"\x01\x02"])
def test_bad_mac_names_the_value(bad):
    with pytest.raises(ValueError, match="MAC"):
        pk.mac_bytes(bad)


@pytest.mark.parametrize("letters, bits", [("S", 0x02), ("SA", 0x12), ("pa", 0x18), ("FA", 0x11), ("R", 0x04),
                                           ("", 0), ("FSRPAUEC", 0xFF)])
def test_tcp_flags_as_letters_are_scapys(letters, bits):
    """``flags="SA"`` as scapy takes it: the segment scapy dissects carries those flags."""
    f = pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4,
                    pk.tcp("10.0.0.1", "10.0.0.2", 40000, 443, flags=letters))
    assert int(Ether(f)[TCP].flags) == bits == pk.tcp_flags(letters)
    _checksums_ok(f)


@pytest.mark.parametrize("call, match", [
    (lambda: pk.tcp("10.0.0.1", "10.0.0.2", 70000, 80), "sport = 70000"),
    (lambda: pk.udp("10.0.0.1", "10.0.0.2", 5, -1), "dport = -1"),
    (lambda: pk.tcp("10.0.0.1", "10.0.0.2", 1, 2, flags="SX"), "'X'"),
    (lambda: pk.tcp("10.0.0.1", "10.0.0.2", 1, 2, flags=256), "TCP flags = 256"),
    (lambda: pk.tcp("10.0.0.1", "10.0.0.2", 1, 2, seq=1 << 32), "seq = 4294967296"),
    (lambda: pk.udp("10.0.0.1", "10.0.0.2", 1.5, 2), "sport must be an int, got 1.5"),
])
def test_bad_header_fields_name_the_value(call, match):
    """A port, flag or sequence number that does not fit its field was a bare struct.error."""
    with pytest.raises((ValueError, TypeError), match=match):
        call()
