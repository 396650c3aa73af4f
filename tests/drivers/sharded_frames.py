"""Frames and a shard context for the sharded-replay tests (tests/drivers/test_sharded*.py)."""

from __future__ import annotations

import struct

import numpy as np

from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.drivers import sharded as sh
from fastvpc.examples import seed_vpc
from fastvpc.pcap import write_pcap


def frames(n: int, seed: int = 3) -> list[bytes]:
    """Every kind of frame a replay meets: inside the VPC, out of the gateways, router pings, ARP,
    broadcasts, frames from MACs no ENI has, IPv6, IPv4 with options, fragments, runts."""
    net = seed_vpc()
    f = net.find
    enis = [f(x) for x in ("web1", "web2", "app1", "app2", "db1", "db2")]
    rng = np.random.default_rng(seed)
    out = []
    dsts = [e.ip for e in enis] + ["8.8.8.8", "192.168.1.1", "10.0.1.255", "10.0.9.9", "10.0.1.1", "10.0.2.1"]
    for _ in range(n):
        s = enis[int(rng.integers(len(enis)))]
        d = dsts[int(rng.integers(len(dsts)))]
        gw = s.subnet.gateway_mac
        k = int(rng.integers(12))
        sport = int(rng.integers(1024, 65535))
        if k < 3:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.udp(s.ip, d, sport, 53))
        elif k < 5:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.tcp(s.ip, d, sport, 443))
        elif k == 5:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.icmp_echo(s.ip, d, ident=sport))
        elif k == 6:
            fr = pk.arp_request(s.mac, s.ip, d)
        elif k == 7:
            fr = pk.ethernet(gw, "02:99:00:00:00:01", pk.ETH_IPV4, pk.udp("10.0.1.99", d, 1, 2))
        elif k == 8:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV6, pk.ipv6_udp("fd00::1", "fd00::2"))
        elif k == 9:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.ipv4(s.ip, d, 17, struct.pack("!HHHH", sport, 53, 8, 0),
                                                            options=b"\x01\x01\x01\x00"))
        elif k == 10:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.ipv4(s.ip, d, 6, b"\0" * 24, flags_frag=0x2000 | 3))
        else:
            fr = pk.ethernet(gw, s.mac, pk.ETH_IPV4, pk.udp(s.ip, d, sport, 53))[: int(rng.integers(10, 40))]
        out.append(fr)
    return out


def write(path, frames, nanosecond=True):
    ts = 1_700_000_000 * 10**9 + np.arange(len(frames), dtype=np.int64) * 1000
    write_pcap(str(path), FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=nanosecond)



def ctx(net, n_shards=64):
    from fastvpc.dataplane.ports import PortMap

    lo, hi = sh._inside_intervals(net)
    names = {t.port: t.name for t in net.targets}
    is_eni = np.zeros(max(names) + 2, np.bool_)
    for e in net.enis:
        is_eni[e.port + 1] = True
    return sh._Context(PortMap.for_network(net), None, is_eni, lo, hi, n_shards, 4, 28, max(names), False, 1)


def private_nat_net():
    """Subnet a holds a private NAT gateway; subnet b's table sends subnet c (inside the VPC) to it:
    (net, a, b, c, nat)."""
    import fastvpc as fv

    net = fv.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    a, b, c = (vpc.add_subnet(f"10.0.{i}.0/24") for i in range(3))
    nat = a.add_nat_gateway(connectivity="private")
    rt = vpc.add_route_table()
    rt.add_route("10.0.2.0/24", nat)
    b.associate(rt)
    return net, a, b, c, nat
