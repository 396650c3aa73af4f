"""Replay end to end, pcap -> pcap: fastvpc beside a dpkt and a scapy read+write loop, same run.

The capture: N frames of 64 bytes sent by the seed VPC's VMs (same subnet, across subnets, to
the internet and VPN gateways, and one in five to a subnet broadcast, dropped), classic pcap
with nanosecond timestamps, in a temporary directory (page cache after the first read).

* ``fastvpc stateless``: ``fastvpc.replay.replay(net, in, out, n_threads=1, stateful=False)``
  (``fastvpc replay --stateless --threads 1``): compile, map every frame to its ENI by source MAC,
  process (security groups, network ACLs and the edge on, as the seed compiles by default; no
  connection tracking), count per ENI/action/reason, write the emitted frames.  The issue's target
  (>= 20 M frames/s) is measured on this one: the issue predates the filters and the flow table,
  and this is the configuration of ``replay`` closest to what it then did.
* ``fastvpc stateful``: the same with replay's default ``stateful=True`` (one FlowTable across the
  capture, its clock the frames' timestamps): what ``fastvpc replay --threads 1`` does today.
* ``dpkt``: ``dpkt.pcap.Reader`` -> ``dpkt.pcap.Writer`` of every frame (no processing at all).
* ``scapy``: ``PcapReader`` -> ``PcapWriter`` of every frame (no processing at all), on N/20
  frames (scapy parses every packet; the rate is per frame).
* ``floor``: the capture read with ``pread`` through one reused 1 MiB buffer and as many bytes as
  fastvpc writes written with one ``write()`` per MiB into a new file: what the page cache alone
  costs any pcap -> pcap tool (no indexing, no processing).
* ``forward only``: ``PortMap.ports_for`` + ``Dataplane.process`` (1 thread) over the same frames
  already in memory, in 65,536-frame batches restored before each round: the data plane's share
  (stateless; ``forward only stateful``: with a fresh FlowTable each round and the frames'
  timestamps, the stateful replay's share).

Each benchmark removes its output before a round (outside the timing) and records frames/s in
``extra_info``.  Run:
``python -m pytest benchmarks/test_bench_replay.py --benchmark-only -q -p no:cacheprovider``
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastvpc import packets as pk
from fastvpc.batch import FrameBatch
from fastvpc.examples import seed_vpc
from fastvpc.pcap import write_pcap
from fastvpc.replay import replay

N = 1_000_000
N_SCAPY = N // 20


def _mix() -> list[bytes]:
    net = seed_vpc()
    f = net.find
    w1, w2, a1, d1, web, db = f("web1"), f("web2"), f("app1"), f("db1"), f("web"), f("db")
    frames = [
        pk.ethernet(w2.mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, w2.ip, 4000, 53)),
        pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 4000, 53)),
        pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 4000, 443)),
        pk.ethernet(db.gateway_mac, d1.mac, pk.ETH_IPV4, pk.tcp(d1.ip, "192.168.1.1", 4000, 443)),
        pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, "10.0.1.255", 4000, 53)),
    ]
    return [fr + b"\0" * (64 - len(fr)) for fr in frames]


def _capture(path: str, n: int) -> None:
    mix = _mix()
    reps = n // len(mix)
    ts = 1_700_000_000 * 10**9 + np.arange(reps * len(mix), dtype=np.int64) * 1000
    write_pcap(path, FrameBatch.from_frames(mix * reps, port=-1, timestamp=ts), nanosecond=True)


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("replaybench")
    big, small = str(d / "in.pcap"), str(d / "in-small.pcap")
    _capture(big, N)
    _capture(small, N_SCAPY)
    return d, big, small


def _fresh(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_replay_fastvpc(benchmark, captures, stateful):
    d, big, _ = captures
    out = str(d / "out-fastvpc.pcap")
    net = seed_vpc()
    s = benchmark.pedantic(lambda: replay(net, big, out, n_threads=1, stateful=stateful),
                           setup=lambda: _fresh(out), rounds=7, iterations=1, warmup_rounds=1)
    assert s.frames == N and s.by_action["DROP"] == N // 5
    assert os.path.getsize(out) == 24 + (N - N // 5) * (16 + 64)
    benchmark.extra_info["frames"] = N
    benchmark.extra_info["frames_per_s"] = N / benchmark.stats["median"]


def test_replay_dpkt_read_write(benchmark, captures):
    import dpkt

    d, big, _ = captures
    out = str(d / "out-dpkt.pcap")

    def loop() -> int:
        n = 0
        with open(big, "rb") as fi, open(out, "wb") as fo:
            w = dpkt.pcap.Writer(fo, nano=True)
            for ts, buf in dpkt.pcap.Reader(fi):
                w.writepkt(buf, ts)
                n += 1
        return n

    n = benchmark.pedantic(loop, setup=lambda: _fresh(out), rounds=3, iterations=1)
    assert n == N
    benchmark.extra_info["frames"] = N
    benchmark.extra_info["frames_per_s"] = N / benchmark.stats["median"]


def test_replay_scapy_read_write(benchmark, captures):
    from scapy.utils import PcapReader, PcapWriter

    d, _, small = captures
    out = str(d / "out-scapy.pcap")

    def loop() -> int:
        n = 0
        with PcapReader(small) as r, PcapWriter(out, nano=True) as w:
            for pkt in r:
                w.write(pkt)
                n += 1
        return n

    n = benchmark.pedantic(loop, setup=lambda: _fresh(out), rounds=3, iterations=1)
    assert n == N_SCAPY
    benchmark.extra_info["frames"] = N_SCAPY
    benchmark.extra_info["frames_per_s"] = N_SCAPY / benchmark.stats["median"]


def test_replay_floor_copy_and_write(benchmark, captures):
    """The floor under any pcap -> pcap tool: read the capture's bytes (pread into one reused 1 MiB
    buffer) and write as many bytes as fastvpc writes (the emitted 4/5 of the records) into a new
    file, one write() per MiB."""
    d, big, _ = captures
    out = str(d / "out-floor.pcap")
    size = 24 + (N - N // 5) * (16 + 64)

    def copy() -> int:
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        fd = os.open(big, os.O_RDONLY)
        fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            pos, left = 0, size
            while (n := os.preadv(fd, [mv], pos)) > 0:
                pos += n
                if left > 0:
                    left -= os.write(fo, mv[:min(n, left)])
        finally:
            os.close(fd)
            os.close(fo)
        return N

    benchmark.pedantic(copy, setup=lambda: _fresh(out), rounds=7, iterations=1, warmup_rounds=1)
    benchmark.extra_info["frames"] = N
    benchmark.extra_info["frames_per_s"] = N / benchmark.stats["median"]


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_replay_forward_only(benchmark, captures, stateful):
    """The data plane's share: the port map and process() over the capture's frames already in memory
    (with a fresh FlowTable each round and the frames' timestamps when stateful)."""
    from fastvpc.dataplane.ports import PortMap
    from fastvpc.dataplane.state import FlowTable
    from fastvpc.pcap import read_pcap

    _, big, _ = captures
    net = seed_vpc()
    dp, pmap = net.compile(), PortMap.for_network(net)
    whole = read_pcap(big)
    batches = [whole.select(np.arange(a, min(a + 65536, N))) for a in range(0, N, 65536)]
    originals = [b.data.copy() for b in batches]

    table: list = [None]

    def restore() -> None:
        for b, o in zip(batches, originals):
            b.data[:] = o
        table[0] = FlowTable(capacity=1_000_000) if stateful else None

    def run() -> int:
        res = None
        for b in batches:
            pmap.ports_for(b, out=b.port)
            res = dp.process(b, out=res, n_threads=1, state=table[0])
        return N

    benchmark.pedantic(run, setup=restore, rounds=7, iterations=1, warmup_rounds=1)
    benchmark.extra_info["frames"] = N
    benchmark.extra_info["frames_per_s"] = N / benchmark.stats["median"]
