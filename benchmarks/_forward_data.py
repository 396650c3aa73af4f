"""Large topology and mixed 64-byte frame batches for the forwarding benchmarks and the fuzz script.

Topology: 4 VPCs (10.k.0.0/16) peered in a ring, 250 subnets (/24) each = 1,000 subnets, each
subnet with its own route table of 50 routes (local, 0/0 -> igw, the two peers' CIDRs -> pcx,
the rest: random public prefixes /8-/28 to the VPC's igw / vgw / a NAT gateway / a middlebox
ENI / blackhole), and 100 ENIs per subnet = 100,000 ENIs.

Frames are built with numpy (no per-frame Python): Ethernet + IPv4 (valid checksum) + UDP +
payload, 64 bytes, or 60-byte padded ARP requests / ICMP echo requests.
"""

from __future__ import annotations

import ipaddress
import time

import numpy as np

import fastvpc.topology as T
from fastvpc.batch import FrameBatch

N_VPC, SUBNETS_PER_VPC, ENIS_PER_SUBNET, ROUTES_PER_TABLE = 4, 250, 100, 50


class Big:
    def __init__(self, n_vpc: int = N_VPC, subnets_per_vpc: int = SUBNETS_PER_VPC,
                 enis_per_subnet: int = ENIS_PER_SUBNET, routes_per_table: int = ROUTES_PER_TABLE,
                 seed: int = 7, filters: bool = False, edge: bool = True) -> None:
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        net = self.net = T.Network()
        self.vpcs = [net.add_vpc(f"10.{k}.0.0/16", name=f"vpc{k}") for k in range(n_vpc)]
        pcx = {}
        if n_vpc > 1:
            for k in range(n_vpc):
                a, b = k, (k + 1) % n_vpc
                if (b, a) not in pcx and a != b:
                    pcx[(a, b)] = pcx[(b, a)] = net.add_peering(self.vpcs[a], self.vpcs[b], name=f"pcx{a}-{b}")
        self.subnets: list[T.Subnet] = []
        self.enis: list[T.Eni] = []
        self.times: dict[str, float] = {}
        for k, vpc in enumerate(self.vpcs):
            igw = vpc.add_internet_gateway(name=f"igw{k}")
            vgw = vpc.add_vpn_gateway(name=f"vgw{k}")
            nat = vpc.add_nat_gateway(name=f"nat{k}")
            for j in range(subnets_per_vpc):
                s = vpc.add_subnet(f"10.{k}.{j}.0/24", name=f"s{k}-{j}")
                self.subnets.append(s)
        self.times["subnets"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for s in self.subnets:
            base = int(s.cidr.network_address)
            for h in range(enis_per_subnet):
                self.enis.append(s.add_eni(ipaddress.IPv4Address(base + 10 + h),
                                           source_dest_check=(h != 0)))
        self.times["enis"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        for k, vpc in enumerate(self.vpcs):
            igw, vgw, nat = vpc.internet_gateways[0], vpc.vpn_gateways[0], vpc.nat_gateways[0]
            mbox = vpc.subnets[0].enis[0]
            peers = [p for p in vpc.peerings]
            for s in vpc.subnets:
                rt = vpc.add_route_table(name=f"rt-{s.name}")
                rt.add_route("0.0.0.0/0", igw)
                for p in peers:
                    rt.add_route(p.peer_of(vpc).cidr, p)
                seen: set[tuple[int, int]] = set()
                while len(rt.routes) < routes_per_table:
                    ln = int(rng.integers(8, 29))
                    first = int(rng.integers(11, 224))
                    if first in (10, 127, 169, 172, 192):
                        continue
                    addr = (first << 24) | int(rng.integers(0, 1 << 24))
                    addr &= (0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF
                    if (addr, ln) in seen:
                        continue
                    seen.add((addr, ln))
                    tgt = [igw, vgw, nat, mbox, T.BLACKHOLE][int(rng.integers(5))]
                    rt.add_route(f"{ipaddress.IPv4Address(addr)}/{ln}", tgt)
                s.associate(rt)
        self.times["routes"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        # the forwarding benchmark measures the routing pass (compile(filters=False), as before issue 10);
        # benchmarks/test_bench_filters.py adds groups and NACLs and compiles with them
        self.dp = net.compile(filters=filters, edge=edge)
        self.times["compile"] = time.perf_counter() - t3
        self.times["total"] = time.perf_counter() - t0

        # per-ENI arrays for the frame builder
        self.eni_port = np.array([e.port for e in self.enis], dtype=np.int32)
        self.eni_ip = np.array([int(e.ip) for e in self.enis], dtype=np.uint32)
        self.eni_mac = np.array([int(e.mac.replace(":", ""), 16) for e in self.enis], dtype=np.uint64)
        sidx = {id(s): i for i, s in enumerate(self.subnets)}
        self.eni_sub = np.array([sidx[id(e.subnet)] for e in self.enis], dtype=np.int32)
        self.eni_vpc = np.array([int(e.ip) >> 16 & 0xFF for e in self.enis], dtype=np.int32)
        self.sub_gwmac = np.array([int(s.gateway_mac.replace(":", ""), 16) for s in self.subnets], dtype=np.uint64)
        self.sub_router = np.array([int(s.router_ip) for s in self.subnets], dtype=np.uint32)
        self.per_subnet = enis_per_subnet


def _put_mac(buf: np.ndarray, col: int, mac: np.ndarray) -> None:
    for b in range(6):
        buf[:, col + b] = (mac >> np.uint64(8 * (5 - b))) & np.uint64(0xFF)


def _put_u32(buf: np.ndarray, col: int, v: np.ndarray) -> None:
    v = v.astype(np.uint32)
    for b in range(4):
        buf[:, col + b] = (v >> np.uint32(8 * (3 - b))) & np.uint32(0xFF)


def _put_u16(buf: np.ndarray, col: int, v: np.ndarray) -> None:
    v = np.asarray(v).astype(np.uint32)
    buf[:, col] = (v >> 8) & 0xFF
    buf[:, col + 1] = v & 0xFF


def mixed_frames(big: Big, n: int, seed: int = 1) -> FrameBatch:
    """n 64-byte frames: 55% cross-subnet unicast, 10% same subnet, 15% to the internet, 5% peering,
    5% ARP requests, 5% ICMP echo to the router, 5% drops (blackhole/no such host/spoofed source)."""
    rng = np.random.default_rng(seed)
    n_eni = big.eni_port.size
    src = rng.integers(0, n_eni, size=n)
    kind = rng.choice(7, size=n, p=[0.55, 0.10, 0.15, 0.05, 0.05, 0.05, 0.05])
    # destination ENI: any ENI of the same VPC (cross-subnet), same subnet, or the peer VPC
    per_vpc = n_eni // N_VPC if n_eni >= N_VPC else n_eni
    vpc = big.eni_vpc[src]
    same_vpc_dst = vpc * per_vpc + rng.integers(0, per_vpc, size=n)
    same_sub_dst = (src // big.per_subnet) * big.per_subnet + rng.integers(0, big.per_subnet, size=n)
    peer_dst = ((vpc + 1) % N_VPC) * per_vpc + rng.integers(0, per_vpc, size=n)
    dst_ip = big.eni_ip[same_vpc_dst].copy()
    dst_ip[kind == 1] = big.eni_ip[same_sub_dst[kind == 1]]
    dst_ip[kind == 2] = rng.integers(0x0B000000, 0xDF000000, size=int(np.sum(kind == 2)), dtype=np.uint32)
    dst_ip[kind == 3] = big.eni_ip[peer_dst[kind == 3]]
    sub = big.eni_sub[src]
    dst_ip[kind == 5] = big.sub_router[sub[kind == 5]]
    dropk = kind == 6
    dst_ip[dropk] = (big.eni_ip[same_vpc_dst[dropk]] & 0xFFFFFF00) | 250  # unassigned host: NO_SUCH_HOST
    src_ip = big.eni_ip[src].copy()
    spoof = dropk & (rng.integers(0, 2, size=n) == 0)
    src_ip[spoof] ^= 0x00000005

    buf = np.zeros((n, 64), dtype=np.uint8)
    _put_mac(buf, 0, big.sub_gwmac[sub])
    _put_mac(buf, 6, big.eni_mac[src])
    buf[:, 12], buf[:, 13] = 0x08, 0x00
    buf[:, 14] = 0x45
    _put_u16(buf, 16, np.full(n, 50))
    buf[:, 22] = 64
    buf[:, 23] = np.where(kind == 5, 1, 17)
    _put_u32(buf, 26, src_ip)
    _put_u32(buf, 30, dst_ip)
    ip_sum = buf[:, 14:34].astype(np.uint32).reshape(n, 10, 2)
    s = (ip_sum[:, :, 0] << 8 | ip_sum[:, :, 1]).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    _put_u16(buf, 24, (~s) & 0xFFFF)
    # UDP ports / ICMP echo header
    _put_u16(buf, 34, rng.integers(1024, 65535, size=n))
    _put_u16(buf, 36, np.where(kind == 5, 0, 53))
    icmp = kind == 5
    buf[icmp, 34] = 8
    buf[icmp, 35] = 0
    # ARP requests (kind 4): for the router or an ENI of the VPC
    arp = np.flatnonzero(kind == 4)
    if arp.size:
        a = np.zeros((arp.size, 64), dtype=np.uint8)
        a[:, 0:6] = 0xFF
        _put_mac(a, 6, big.eni_mac[src[arp]])
        a[:, 12], a[:, 13] = 0x08, 0x06
        a[:, 15], a[:, 16], a[:, 18], a[:, 19], a[:, 21] = 1, 8, 6, 4, 1
        _put_mac(a, 22, big.eni_mac[src[arp]])
        _put_u32(a, 28, big.eni_ip[src[arp]])
        tpa = np.where(rng.integers(0, 2, size=arp.size) == 0, big.sub_router[sub[arp]], dst_ip[arp])
        _put_u32(a, 38, tpa)
        buf[arp] = a
    offsets = np.arange(n + 1, dtype=np.int64) * 64
    return FrameBatch(buf.reshape(-1), offsets, big.eni_port[src])
