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
