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
