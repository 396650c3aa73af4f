"""Differential tests: the compiled kernel against the reference forwarder.

Hypothesis builds random networks (several VPCs, secondary CIDRs, /16../28 subnets, ENIs with
secondary IPs and source/dest check on or off, gateways, custom route tables with random
prefixes from /0 to /32, more-specific-than-local subnet routes, peerings with routes on
both sides, a transit gateway, main-table swaps, deleted targets that leave blackholes)
and batches of random frames aimed at interesting places (ENI IPs, routers, broadcast and
reserved addresses, other VPCs, outside, multicast, link-local services; gateway MACs, ENI
MACs, group MACs) plus mutated, truncated and random bytes.  Kernel and reference must agree
on action, reason, egress, route and every output byte.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import frames as F  # noqa: E402

import fastvpc.topology as topo  # noqa: E402
from fastvpc.errors import TopologyError  # noqa: E402
from fastvpc.reference import ReferenceForwarder  # noqa: E402
from fastvpc.verdicts import Action, DropReason  # noqa: E402

N_EXAMPLES = int(os.environ.get("FASTVPC_DIFF_EXAMPLES", "200"))
# the slow variant runs in the README's test command; CI's second and third runs pass -m "not slow"
N_EXAMPLES_SLOW = int(os.environ.get("FASTVPC_DIFF_EXAMPLES_SLOW", "1000"))

IP = ipaddress.IPv4Address


# =========================================================================== random topologies

def _try(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a control-plane call; an invalid one (TopologyError) is simply not applied."""
    try:
        return fn(*args, **kw)
    except TopologyError:
        return None


@st.composite
def networks(draw: st.DrawFn) -> topo.Network:
    net = topo.Network()
    n_vpcs = draw(st.integers(1, 3))
    vpcs: list[topo.Vpc] = []
    for i in range(n_vpcs):
        vpc = net.add_vpc(f"10.{i}.0.0/16", name=f"v{i}")
        if draw(st.booleans()):
            vpc.add_cidr(draw(st.sampled_from([f"10.{100 + i}.0.0/16", f"172.{16 + i}.0.0/20",
                                               f"192.168.{i * 16}.0/28"])))
        vpcs.append(vpc)
        # subnets: aligned blocks so that most draws are valid; some /28s to reach broadcast/reserved
        for cidr in vpc.cidrs:
            for _ in range(draw(st.integers(0 if cidr != vpc.cidr else 1, 3))):
                plen = draw(st.sampled_from([cidr.prefixlen, 20, 24, 24, 26, 28]))
                plen = max(plen, cidr.prefixlen)
                n_blocks = 2 ** (plen - cidr.prefixlen)
                k = draw(st.integers(0, min(n_blocks - 1, 40)))
                block = ipaddress.IPv4Network((int(cidr.network_address) + k * 2 ** (32 - plen), plen))
                _try(vpc.add_subnet, block)
        for subnet in list(vpc.subnets):
            hosts = subnet.cidr.num_addresses
            for _ in range(draw(st.sampled_from([0, 1, 2, 2, 3]))):
                off = draw(st.integers(4, min(hosts - 2, 300)))
                secs = [subnet.cidr.network_address + draw(st.integers(4, min(hosts - 2, 300)))
                        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2])))]
                port = draw(st.sampled_from([None, None, None, None, 70_000 + off, 50_000_000 + off]))
                eni = _try(subnet.add_eni, subnet.cidr.network_address + off,
                           source_dest_check=draw(st.booleans()), port=port)
                if eni is not None:
                    for s in secs:
                        _try(eni.add_secondary_ip, s)
        if draw(st.booleans()):
            vpc.add_internet_gateway()
        if draw(st.booleans()):
            vpc.add_vpn_gateway()
        for _ in range(draw(st.integers(0, 2))):
            vpc.add_nat_gateway(subnet=draw(st.sampled_from(vpc.subnets)) if vpc.subnets else None)
        if draw(st.booleans()):
            vpc.add_endpoint(endpoint_type=draw(st.sampled_from(list(topo.Endpoint.KINDS))))
    # peerings (only between non-overlapping VPCs: all are)
    for i in range(n_vpcs):
        for j in range(i + 1, n_vpcs):
            if draw(st.booleans()):
                net.add_peering(vpcs[i], vpcs[j])
    if n_vpcs > 1 and draw(st.booleans()):
        tgw = net.add_transit_gateway()
        for v in vpcs:
            if draw(st.booleans()):
                tgw.attach(v)
    # route tables and routes
    for vpc in vpcs:
        tables = [vpc.main_route_table] + [vpc.add_route_table() for _ in range(draw(st.integers(0, 2)))]
        targets: list[Any] = [*vpc.gateways, *vpc.enis, *vpc.peerings, topo.BLACKHOLE]
        for rt in tables:
            for _ in range(draw(st.integers(0, 5))):
                dest = draw(_destinations(net, vpc))
                tgt = draw(st.sampled_from(targets))
                _try(rt.add_route, dest, tgt)
            # peering routes towards the peer's CIDRs, both sides (when a peering exists)
            for p in vpc.peerings:
                if draw(st.booleans()):
                    for c in p.peer_of(vpc).cidrs:
                        _try(rt.add_route, c, p)
            if vpc.enis and draw(st.integers(0, 5)) == 0:
                _try(rt.replace_route, vpc.cidr, draw(st.sampled_from(vpc.enis)))  # #21
        for s in vpc.subnets:
            if draw(st.booleans()):
                s.associate(draw(st.sampled_from(tables)))
        if len(tables) > 1 and draw(st.booleans()):
            vpc.set_main_route_table(draw(st.sampled_from(tables)))
    # deletions: routes to a deleted target turn into blackholes; a deleted ENI's port is unknown
    for _ in range(draw(st.integers(0, 2))):
        cands = [t for t in net.targets]
        if cands:
            _try(draw(st.sampled_from(cands)).delete)
    return net


def _destinations(net: topo.Network, vpc: topo.Vpc) -> st.SearchStrategy[ipaddress.IPv4Network]:
    """Route destinations: /0, /32s of interesting hosts, subnet CIDRs (more specific than local),
    other VPCs' CIDRs, and random prefixes of any length."""
    hosts = [e_ip for e in net.enis for e_ip in e.ips] + [s.router_ip for s in net.subnets] + [IP("8.8.8.8")]
    subnets = [s.cidr for s in net.subnets]
    cidrs = [c for v in net.vpcs for c in v.cidrs]
    random_net = st.builds(lambda a, n: ipaddress.IPv4Network((a, n), strict=False),
                           st.integers(0, 2**32 - 1), st.integers(0, 32))
    around = st.builds(lambda h, n: ipaddress.IPv4Network((int(h), n), strict=False),
                       st.sampled_from(hosts), st.integers(8, 32))
    return st.one_of(st.just(ipaddress.IPv4Network("0.0.0.0/0")),
                     st.sampled_from(hosts).map(lambda h: ipaddress.IPv4Network((int(h), 32))),
                     st.sampled_from(subnets) if subnets else st.nothing(),
                     st.sampled_from(cidrs), random_net, around)


# =========================================================================== random frames

def _interesting_ips(net: topo.Network) -> list[IP]:
    ips: list[IP] = [IP("8.8.8.8"), IP("1.1.1.1"), IP("255.255.255.255"), IP("224.0.0.5"), IP("239.255.0.1"),
                     IP("169.254.169.254"), IP("169.254.169.253"), IP("169.254.170.2"), IP("169.254.1.1"),
                     IP("0.0.0.0"), IP("127.0.0.1"), IP("192.168.50.5")]
    for s in net.subnets:
        ips += list(s.reserved_ips) + [s.cidr.network_address + 77]
    for v in net.vpcs:
        for c in v.cidrs:
            ips += [c.network_address + 1, c.broadcast_address, c.network_address + 300 % c.num_addresses]
    for e in net.enis:
        ips += list(e.ips)
    return ips


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
    ips = _interesting_ips(net)
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

def run_kernel(net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str) -> Any:
    from fastvpc.batch import FrameBatch

    dp = net.compile(arp_mode=arp_mode)
    return dp.process(FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]))


def run_reference(net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str) -> Any:
    from fastvpc.batch import FrameBatch

    return ReferenceForwarder(net, arp_mode=arp_mode).process(
        FrameBatch.from_frames([f for f, _ in items], port=[p for _, p in items]))


def _describe(res: Any, i: int) -> str:
    return (f"{Action(int(res.action[i])).name}/{DropReason(int(res.reason[i])).name} "
            f"egress={int(res.egress[i])} route={int(res.route[i])} frame={res.frames.frame(i).hex()}")


def compare(net: topo.Network, items: list[tuple[bytes, int]], arp_mode: str) -> None:
    ref = run_reference(net, items, arp_mode)
    ker = run_kernel(net, items, arp_mode)
    assert len(ker.action) == len(items)
    for name in ("action", "reason", "egress", "route"):
        assert np.asarray(getattr(ker, name)).shape == (len(items),), name
    for i, (frame, port) in enumerate(items):
        same = (int(ker.action[i]) == int(ref.action[i]) and int(ker.reason[i]) == int(ref.reason[i])
                and int(ker.egress[i]) == int(ref.egress[i]) and int(ker.route[i]) == int(ref.route[i])
                and ker.frames.frame(i) == ref.frames.frame(i))
        assert same, (f"frame {i} on port {port} (arp_mode={arp_mode}): {frame.hex()}\n"
                      f"  reference: {_describe(ref, i)}\n  kernel:    {_describe(ker, i)}\n"
                      f"  routes: {net.routes()}")


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
