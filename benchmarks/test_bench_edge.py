"""The edge (issue 11): frames out through an internet gateway with the 1:1 source translation
(``compile(edge=True)``) against the same frames with ``edge=False`` (gateways opaque exits, frames
untouched), and frames in from the internet gateway (public -> private, gateway route table,
delivery), in one run.

Topology: one VPC (10.0.0.0/16), 64 subnets of 256 addresses, 10,000 ENIs, each with an Elastic IP
(11.0.x.y: public by DESIGN §6), an internet gateway, 0.0.0.0/0 -> igw in the main table; the
internet gateway has a gateway route table (its VPC's local route).  ``filters=False`` for every
peer, so that the difference is the edge alone.

Traffic: 65,536 64-byte TCP frames per batch, from random ENIs to random internet addresses
(``out``), or from random internet addresses on the internet gateway's port to random Elastic IPs
(``in``).  Frames are restored from a pristine copy before every round (untimed): the pass
rewrites them in place.

    python -m pytest benchmarks/test_bench_edge.py --benchmark-only -q -p no:cacheprovider
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.dataplane import Result

N = 65536
N_ENI = 10_000


class Edge:
    def __init__(self) -> None:
        net = fv.Network()
        vpc = net.add_vpc("10.0.0.0/16", name="v")
        self.igw = igw = vpc.add_internet_gateway(name="igw")
        vpc.main_route_table.add_route("0.0.0.0/0", igw)
        rt = vpc.add_route_table(name="edge")
        rt.associate_gateway(igw)
        subnets = [vpc.add_subnet(f"10.0.{k}.0/24") for k in range(64)]
        self.enis = []
        for i in range(N_ENI):
            s = subnets[i % 64]
            self.enis.append(s.add_eni(s.cidr.network_address + 4 + i // 64,
                                       public_ip=ipaddress.IPv4Address("11.0.0.0") + i))
        self.net = net
        self.dp_edge = net.compile(filters=False, edge=True)
        self.dp_plain = net.compile(filters=False, edge=False)
        rng = np.random.default_rng(11)
        who = rng.integers(0, N_ENI, N)
        outside = rng.integers(0x08000000, 0x09000000, N)
        out_frames, in_frames = [], []
        for k in range(N):
            e = self.enis[int(who[k])]
            dst = ipaddress.IPv4Address(int(outside[k]))
            out_frames.append(pk.ethernet(e.subnet.gateway_mac, e.mac, pk.ETH_IPV4,
                                          pk.tcp(e.ip, dst, 40000 + k % 20000, 443), pad_to=64))
            in_frames.append(pk.ethernet(igw.mac, "02:99:00:00:00:01", pk.ETH_IPV4,
                                         pk.tcp(dst, e.public_ip, 443, 40000 + k % 20000), pad_to=64))
        self.out_batch = FrameBatch.from_frames(out_frames, port=[self.enis[int(w)].port for w in who])
        self.in_batch = FrameBatch.from_frames(in_frames, port=igw.port)


@pytest.fixture(scope="module")
def edge() -> Edge:
    return Edge()


def _run(benchmark: Any, dp: Any, batch: FrameBatch, want: int) -> None:
    work = batch.copy()
    out = Result(N)

    def restore() -> None:
        np.copyto(work.data, batch.data)

    benchmark.extra_info["frames"] = N
    benchmark.pedantic(lambda: dp.process(work, out=out, n_threads=1), setup=restore, rounds=60, iterations=1,
                       warmup_rounds=3)
    assert np.count_nonzero(out.action == want) == N


def test_edge_out_through_igw_translated(benchmark: Any, edge: Edge) -> None:
    _run(benchmark, edge.dp_edge, edge.out_batch, int(fv.Action.FORWARD))


def test_edge_out_through_igw_edge_false(benchmark: Any, edge: Edge) -> None:
    _run(benchmark, edge.dp_plain, edge.out_batch, int(fv.Action.FORWARD))


def test_edge_in_from_igw_translated_delivered(benchmark: Any, edge: Edge) -> None:
    _run(benchmark, edge.dp_edge, edge.in_batch, int(fv.Action.DELIVER))


# --------------------------------------------------------------------------- NAT gateways (docs/edge.md §4)
#
# Topology: one VPC (10.0.0.0/16): a public subnet 10.0.0.0/20 (0.0.0.0/0 -> igw) with the NAT gateway
# (Elastic IP 11.255.0.1) and 4,000 ENIs with Elastic IPs; 16 private subnets 10.0.16.0/20 ... (0.0.0.0/0 -> nat)
# with 9,000 ENIs.  The FlowTable holds 1,000,000 NAT bindings (9,000 private ENIs x 112 source ports, each to
# its own remote address, port 53), made by one untimed pass before the rounds.
#
# The mixed batch (65,536 64-byte UDP frames, checksum 0): 30% from private ENIs on existing bindings (through
# the NAT gateway, its subnet's route, the IGW's translation to the Elastic IP), 30% from public ENIs out
# through the IGW (1:1), 40% between ENIs of the VPC (local route, DELIVER).  ``filters=False``, as above: the
# difference is the edge.  The same batch with ``edge=False`` (NAT gateway and IGW opaque exits) is the peer.

N_PRIV, N_PUB, PORTS = 9_000, 4_000, 112
NAT_NOW = 10 * 1_000_000_000


def _udp_frames(src_mac: np.ndarray, dst_mac: int, src: np.ndarray, dst: np.ndarray, sport: np.ndarray,
                dport: np.ndarray) -> np.ndarray:
    """(n, 64) uint8: Ethernet + IPv4 (checksum computed) + UDP (checksum 0), vectorised."""
    n = src.size
    tmpl = np.frombuffer(pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4,
                                     pk.udp("10.0.0.1", "10.0.0.2", 1, 2, b"x" * 10), pad_to=64), dtype=np.uint8)
    f = np.tile(tmpl, (n, 1))
    for k in range(6):
        f[:, k] = (dst_mac >> (8 * (5 - k))) & 0xFF
        f[:, 6 + k] = (src_mac >> np.uint64(8 * (5 - k))) & np.uint64(0xFF)
    for off, v in ((26, src), (30, dst)):
        for k in range(4):
            f[:, off + k] = (v >> (8 * (3 - k))) & 0xFF
    for off, v in ((34, sport), (36, dport)):
        f[:, off] = v >> 8
        f[:, off + 1] = v & 0xFF
    f[:, 40:42] = 0
    f[:, 24:26] = 0
    words = f[:, 14:34].astype(np.uint32).reshape(n, 10, 2)
    s = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    while (s >> 16).any():
        s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    f[:, 24] = c >> 8
    f[:, 25] = c & 0xFF
    return f


class NatEdge:
    def __init__(self) -> None:
        from fastvpc.topology import mac_to_int

        net = fv.Network()
        vpc = net.add_vpc("10.0.0.0/16", name="v")
        igw = vpc.add_internet_gateway(name="igw")
        vpc.main_route_table.add_route("0.0.0.0/0", igw)
        pub = vpc.add_subnet("10.0.0.0/20", name="pub")
        self.nat = nat = pub.add_nat_gateway(name="nat", address=net.allocate_address("11.255.0.1"))
        rt = vpc.add_route_table(name="private")
        rt.add_route("0.0.0.0/0", nat)
        privs = [vpc.add_subnet(f"10.0.{16 * (k + 1)}.0/20") for k in range(15)]
        for s in privs:
            s.associate(rt)
        pubs = [pub.add_eni(pub.cidr.network_address + 16 + i, public_ip=ipaddress.IPv4Address("11.0.0.0") + i)
                for i in range(N_PUB)]
        priv = [privs[i % 15].add_eni(privs[i % 15].cidr.network_address + 16 + i // 15) for i in range(N_PRIV)]
        self.dp_edge = net.compile(filters=False, edge=True)
        self.dp_plain = net.compile(filters=False, edge=False)
        p_ip = np.array([int(e.ip) for e in priv], dtype=np.int64)
        p_mac = np.array([mac_to_int(e.mac) for e in priv], dtype=np.uint64)
        p_port = np.array([e.port for e in priv], dtype=np.int32)
        p_gw = np.array([mac_to_int(e.subnet.gateway_mac) for e in priv], dtype=np.uint64)
        u_ip = np.array([int(e.ip) for e in pubs], dtype=np.int64)
        u_mac = np.array([mac_to_int(e.mac) for e in pubs], dtype=np.uint64)
        u_port = np.array([e.port for e in pubs], dtype=np.int32)
        gw_pub = mac_to_int(pub.gateway_mac)
        # 1M bindings: private ENI i, source port 20000 + j, remote 8.0.0.0 + i * PORTS + j, port 53
        who = np.repeat(np.arange(N_PRIV), PORTS)
        sp = np.tile(np.arange(PORTS) + 20000, N_PRIV)
        remote = 0x08000000 + np.arange(N_PRIV * PORTS)
        self.n_bindings = who.size
        self.ft = fv.FlowTable(1_100_000)
        step = 1 << 17
        for lo in range(0, who.size, step):
            sl = slice(lo, lo + step)
            rows = []
            for g in np.unique(p_gw[who[sl]]):
                m = p_gw[who[sl]] == g
                rows.append((np.flatnonzero(m) + lo, _udp_frames(p_mac[who[sl]][m], int(g), p_ip[who[sl]][m],
                                                                 remote[sl][m], sp[sl][m], np.full(m.sum(), 53))))
            order = np.concatenate([r[0] for r in rows])
            data = np.concatenate([r[1] for r in rows])
            inv = np.argsort(order)
            b = FrameBatch(data[inv].reshape(-1).copy(), np.arange(inv.size + 1, dtype=np.int64) * 64,
                           port=p_port[who[order[inv]]])
            res = self.dp_edge.process(b, state=self.ft, now=NAT_NOW)
            assert np.all(res.action == int(fv.Action.FORWARD)), "the setup pass makes every binding"
        assert len(self.ft.nat_bindings()) == self.n_bindings
        # the mixed batch
        rng = np.random.default_rng(33)
        kind = rng.choice(3, N, p=[0.3, 0.3, 0.4])
        frames = np.zeros((N, 64), dtype=np.uint8)
        ports = np.zeros(N, dtype=np.int32)
        m = kind == 0                                   # NAT: an existing binding
        k = rng.integers(0, self.n_bindings, int(m.sum()))
        for g in np.unique(p_gw[who[k]]):
            mm = p_gw[who[k]] == g
            idx = np.flatnonzero(m)[mm]
            frames[idx] = _udp_frames(p_mac[who[k]][mm], int(g), p_ip[who[k]][mm], remote[k][mm], sp[k][mm],
                                      np.full(mm.sum(), 53))
            ports[idx] = p_port[who[k]][mm]
        m = kind == 1                                   # IGW 1:1
        u = rng.integers(0, N_PUB, int(m.sum()))
        frames[m] = _udp_frames(u_mac[u], gw_pub, u_ip[u], rng.integers(0x08000000, 0x09000000, u.size),
                                np.full(u.size, 40000), np.full(u.size, 443))
        ports[m] = u_port[u]
        m = kind == 2                                   # inside the VPC: private ENI -> public ENI
        a, c = rng.integers(0, N_PRIV, int(m.sum())), rng.integers(0, N_PUB, int(m.sum()))
        for g in np.unique(p_gw[a]):
            mm = p_gw[a] == g
            idx = np.flatnonzero(m)[mm]
            frames[idx] = _udp_frames(p_mac[a][mm], int(g), p_ip[a][mm], u_ip[c][mm], np.full(mm.sum(), 5000),
                                      np.full(mm.sum(), 80))
            ports[idx] = p_port[a][mm]
        self.kind = kind
        self.batch = FrameBatch(frames.reshape(-1).copy(), np.arange(N + 1, dtype=np.int64) * 64, port=ports)


@pytest.fixture(scope="module")
def natedge() -> NatEdge:
    return NatEdge()


def _run_state(benchmark: Any, dp: Any, batch: FrameBatch, state: Any, want: np.ndarray) -> None:
    work = batch.copy()
    out = Result(N)

    def restore() -> None:
        np.copyto(work.data, batch.data)

    benchmark.extra_info["frames"] = N
    benchmark.pedantic(lambda: dp.process(work, out=out, n_threads=1, state=state, now=NAT_NOW), setup=restore,
                       rounds=40, iterations=1, warmup_rounds=3)
    assert np.array_equal(out.action, want)


def test_edge_nat_mixed_batch_1m_bindings(benchmark: Any, natedge: NatEdge) -> None:
    want = np.where(natedge.kind == 2, int(fv.Action.DELIVER), int(fv.Action.FORWARD)).astype(np.uint8)
    _run_state(benchmark, natedge.dp_edge, natedge.batch, natedge.ft, want)
    assert len(natedge.ft.nat_bindings()) == natedge.n_bindings       # every NAT frame found its binding


def test_edge_nat_mixed_batch_edge_false(benchmark: Any, natedge: NatEdge) -> None:
    want = np.where(natedge.kind == 2, int(fv.Action.DELIVER), int(fv.Action.FORWARD)).astype(np.uint8)
    _run_state(benchmark, natedge.dp_plain, natedge.batch, natedge.ft, want)
