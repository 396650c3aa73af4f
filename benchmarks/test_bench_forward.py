"""Forwarding throughput: Dataplane.process vs the peers, in one run.

Topology (benchmarks/_forward_data.py): 4 peered VPCs, 1,000 subnets each with its own route
table of 50 routes, 100,000 ENIs.  Batches of 65,536 mixed 64-byte frames (unicast across
subnets, same subnet, to the internet, over peerings, ARP, ICMP echo to the router, drops).
Frames are restored from a pristine copy before every round (``pedantic`` setup, not timed),
since processing rewrites them in place.

Peers: a dpkt per-frame parse loop (Ethernet + IP dissection only, no decisions) and the
pure-Python reference forwarder, both on a sample; compare frames/s (``extra_info["frames"]``).

    python -m pytest benchmarks/test_bench_forward.py --benchmark-only -q -p no:cacheprovider

(``--no-compare-peers`` leaves the peers out; benchmarks/conftest.py.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _forward_data import Big  # loaded by benchmarks/conftest.py, which also gives the big / batch fixtures

from fastvpc.batch import FrameBatch
from fastvpc.classification import classify
from fastvpc.dataplane import Result

N = 65536
SAMPLE = 4096


def _process(benchmark: Any, big: Big, batch: FrameBatch, n_threads: int) -> None:
    work = batch.copy()
    out = Result(N)

    def restore() -> None:
        np.copyto(work.data, batch.data)

    def run() -> None:
        big.dp.process(work, out=out, n_threads=n_threads)

    benchmark.extra_info["frames"] = N
    benchmark.pedantic(run, setup=restore, rounds=60, iterations=1, warmup_rounds=3)
    assert np.count_nonzero(out.action == 1) > N // 2  # mostly delivered


def test_forward_1_thread(benchmark: Any, big: Big, batch: FrameBatch) -> None:
    _process(benchmark, big, batch, 1)


def test_forward_2_threads(benchmark: Any, big: Big, batch: FrameBatch) -> None:
    _process(benchmark, big, batch, 2)


def test_classify_1_thread(benchmark: Any, batch: FrameBatch) -> None:
    out = classify(batch)
    benchmark.extra_info["frames"] = N
    benchmark.pedantic(lambda: classify(batch, out=out, n_threads=1), rounds=100, iterations=1, warmup_rounds=3)


def test_peer_dpkt_parse(benchmark: Any, batch: FrameBatch) -> None:
    import dpkt  # a peer from the bench extra: it must be measured, not skipped

    frames = [batch.frame(i) for i in range(SAMPLE)]

    def parse() -> int:
        n = 0
        for f in frames:
            eth = dpkt.ethernet.Ethernet(f)
            if isinstance(eth.data, dpkt.ip.IP):
                n += eth.data.ttl
        return n

    benchmark.extra_info["frames"] = SAMPLE
    benchmark.pedantic(parse, rounds=10, iterations=1, warmup_rounds=1)


def test_peer_reference_forwarder(benchmark: Any, big: Big, batch: FrameBatch) -> None:
    import fastvpc.reference as ref_mod

    fwd = ref_mod.ReferenceForwarder(big.net)
    k = SAMPLE // 4
    frames = [batch.frame(i) for i in range(k)]
    ports = [int(p) for p in batch.port[:k]]

    def run() -> None:
        for f, p in zip(frames, ports):
            fwd.forward(bytearray(f), p)

    benchmark.extra_info["frames"] = k
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
