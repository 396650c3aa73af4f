"""Differential tests: the compiled kernel against the reference forwarder.

Hypothesis builds random networks (several VPCs, secondary CIDRs, /16../28 subnets, ENIs with
secondary IPs and source/dest check on or off, gateways, custom route tables with random
prefixes from /0 to /32, more-specific-than-local subnet routes, peerings with routes on
both sides, a transit gateway, main-table swaps, deleted targets that leave blackholes)
and batches of random frames aimed at interesting places (ENI IPs, routers, broadcast and
reserved addresses, other VPCs, outside, multicast, link-local services; gateway MACs, ENI
MACs, group MACs) plus mutated, truncated and random bytes.  Kernel and reference must agree
on action, reason, egress, route and every output byte.

The networks come from ``fastvpc.testing.networks()``; the frames are built here with scapy
(tests/frames.py), a builder independent of fastvpc (``fastvpc.testing.frames()`` is the library's own
version, exercised in tests/testing); the comparison is ``fastvpc.testing.assert_same_verdicts``.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frames as F  # noqa: E402

import fastvpc.topology as topo  # noqa: E402
from fastvpc.testing import assert_same_verdicts, interesting_ips, networks  # noqa: E402

N_EXAMPLES = int(os.environ.get("FASTVPC_DIFF_EXAMPLES", "200"))
# the slow variant runs in the README's test command; CI's second and third runs pass -m "not slow"
N_EXAMPLES_SLOW = int(os.environ.get("FASTVPC_DIFF_EXAMPLES_SLOW", "1000"))

IP = ipaddress.IPv4Address


# =========================================================================== random topologies
# fastvpc.testing.networks(): several VPCs, secondary CIDRs, /16../28 subnets, ENIs, gateways, random
# routes, peerings, a transit gateway, main-table swaps, deletions (see its docstring).

# =========================================================================== random frames

def _macs(net: topo.Network) -> list[str]:
    return ([s.gateway_mac for s in net.subnets] + [e.mac for e in net.enis] +
            [F.BROADCAST_MAC, "01:00:5e:00:00:05", "02:00:00:00:00:99", "00:00:00:00:00:00"])


@st.composite
def valid_frame(draw: st.DrawFn, net: topo.Network) -> tuple[bytes, int]:
    enis = net.enis
    ports = ([e.port for e in enis] + [t.port for t in net.targets if not isinstance(t, topo.Eni)]
             + [-1, 99999, 2**31 - 1, -(2**31)])
    sender = draw(st.sampled_from(enis)) if enis and draw(st.integers(0, 9)) else None
    port = sender.port if sender is not None else draw(st.sampled_from(ports))
    src_mac = sender.mac if sender is not None else "02:aa:bb:cc:dd:ee"
    ips = interesting_ips(net)
    eni_ips = [ip for e in enis for ip in e.ips] or ips
    routers = [s.router_ip for s in net.subnets] or ips
    dst_ip = draw(st.one_of(st.sampled_from(eni_ips), st.sampled_from(eni_ips), st.sampled_from(ips),
                            st.sampled_from(routers), st.integers(0, 2**32 - 1).map(IP)))
    if sender is not None and draw(st.integers(0, 9)):
        src_ip = draw(st.sampled_from(sender.ips))
    else:
        src_ip = draw(st.one_of(st.sampled_from(ips), st.integers(0, 2**32 - 1).map(IP)))
    kind = draw(st.sampled_from(["arp", "arp", "icmp", "icmp", "udp", "tcp", "raw"]))
    if kind == "arp":
        op = draw(st.sampled_from([1, 1, 1, 1, 2, 3]))
        sip = draw(st.sampled_from([src_ip, src_ip, src_ip, src_ip, IP("0.0.0.0"), dst_ip]))
        frame = F.arp_frame(src_mac, sip, dst_ip, op=op,
                            eth_dst=draw(st.sampled_from([F.BROADCAST_MAC, *_macs(net)[:4]])))
    else:
        if sender is not None and draw(st.integers(0, 7)):
            dst_mac = draw(st.sampled_from([sender.subnet.gateway_mac] + [e.mac for e in sender.subnet.enis]))
        else:
            dst_mac = draw(st.sampled_from(_macs(net)))
        if sender is not None and draw(st.integers(0, 6)) == 0:
            dst_ip = sender.subnet.router_ip  # the own router (#57, #59)
        payload = draw(st.binary(max_size=40))
        kw: dict[str, Any] = dict(src_ip=src_ip, src_mac=src_mac, ttl=draw(st.sampled_from([0, 1, 64, 255])))
        if draw(st.integers(0, 6)) == 0:
            kw["options"] = [F.IPOption_NOP()] * draw(st.sampled_from([4, 8]))
        if draw(st.integers(0, 8)) == 0:
            kw["flags"] = "MF"
        elif draw(st.integers(0, 8)) == 0:
            kw["frag"] = draw(st.integers(1, 100))
        if kind == "icmp":
            frame = F.icmp_echo(src_mac, dst_ip, dst_mac, ident=draw(st.integers(0, 65535)),
                                seq=draw(st.integers(0, 65535)), payload=payload,
                                icmp_type=draw(st.sampled_from([8, 8, 8, 0, 3, 13])),
                                code=draw(st.sampled_from([0, 0, 0, 1])), **kw)
        elif kind == "udp":
            frame = F.udp_frame(src_mac, dst_ip, dst_mac, dport=draw(st.integers(0, 65535)), payload=payload, **kw)
        elif kind == "tcp":
            frame = F.tcp_frame(src_mac, dst_ip, dst_mac, dport=draw(st.integers(0, 65535)), payload=payload, **kw)
        else:
            frame = F.ipv4_frame(src_mac, dst_ip, dst_mac, payload, proto=draw(st.integers(0, 255)), **kw)
    if draw(st.integers(0, 4)) == 0:
        frame = frame + draw(st.binary(min_size=1, max_size=30))  # Ethernet padding
    return frame, port


def _fix_ip_checksum(frame: bytearray) -> None:
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        ihl = (frame[14] & 15) * 4
        if ihl >= 20 and 14 + ihl <= len(frame):
            frame[24:26] = b"\x00\x00"
            total = sum(struct.unpack(f"!{ihl // 2}H", bytes(frame[14:14 + ihl])))
            while total > 0xFFFF:
                total = (total & 0xFFFF) + (total >> 16)
            frame[24:26] = ((~total) & 0xFFFF).to_bytes(2, "big")


@st.composite
def mutated_frame(draw: st.DrawFn, net: topo.Network) -> tuple[bytes, int]:
    frame, port = draw(valid_frame(net))
    buf = bytearray(frame)
    how = draw(st.sampled_from(["flip", "truncate", "field", "field", "ethertype", "random"]))
    if how == "flip" and buf:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        if draw(st.booleans()):
            _fix_ip_checksum(buf)  # get past the checksum to reach later checks
    elif how == "truncate":
        buf = buf[:draw(st.integers(0, len(buf)))]
    elif how == "field" and len(buf) >= 42:
        # lying length / header fields at the offsets the spec reads
        at = draw(st.sampled_from([14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 34, 35, 0]))
        buf[at] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            _fix_ip_checksum(buf)
    elif how == "ethertype" and len(buf) >= 14:
        buf[12:14] = draw(st.sampled_from([b"\x86\xdd", b"\x81\x00", b"\x88\xcc", b"\x08\x06", b"\x08\x00"]))
    else:
        buf = bytearray(draw(st.binary(max_size=80)))
    return bytes(buf), port


def frame_lists(net: topo.Network) -> st.SearchStrategy[list[tuple[bytes, int]]]:
    one = st.one_of(valid_frame(net), valid_frame(net), valid_frame(net), mutated_frame(net))
    return st.lists(one, min_size=4, max_size=32)


# =========================================================================== the comparison

def compare(net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str) -> None:
    """Kernel (net.compile) against the reference forwarder: fastvpc.testing.assert_same_verdicts checks
    the array shapes, then action, reason, egress, route and every output byte, frame by frame."""
    assert_same_verdicts(net.compile(arp_mode=arp_mode), net, items, arp_mode=arp_mode)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[topo.Network, list[tuple[bytes, int]], str]:
    net = draw(networks())
    items = draw(frame_lists(net))
    return net, items, draw(st.sampled_from(["target", "target", "target", "single_mac"]))


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=N_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
@given(scenarios())
def test_kernel_agrees_with_reference(scenario: tuple[topo.Network, list[tuple[bytes, int]], str]) -> None:
    compare(*scenario)


@pytest.mark.slow
@settings(max_examples=N_EXAMPLES_SLOW, **_SETTINGS)  # type: ignore[arg-type]
@given(scenarios())
def test_kernel_agrees_with_reference_many(scenario: tuple[topo.Network, list[tuple[bytes, int]], str]) -> None:
    compare(*scenario)


@settings(max_examples=max(10, N_EXAMPLES // 3), **_SETTINGS)  # type: ignore[arg-type]
@given(networks(), st.lists(st.tuples(st.binary(max_size=120),
                                      st.one_of(st.integers(-3, 40), st.integers(-(2**31), 2**31 - 1))),
                            min_size=1, max_size=40))
def test_kernel_agrees_on_garbage(net: topo.Network, items: list[tuple[bytes, int]]) -> None:
    """Random bytes on random ports (most of them malformed or unknown)."""
    compare(net, items, "target")
