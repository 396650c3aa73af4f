"""pcap reading/writing throughput: fastvpc beside dpkt and scapy, same files, same run.

Files live in a temporary directory (so in the page cache after the first read):
N frames of 64 bytes, as classic pcap (us) and as pcapng (EPB, ns resolution).
Run: python -m pytest benchmarks/test_bench_pcap.py --benchmark-only -q -p no:cacheprovider
Each benchmark records frames/s in extra_info; compare medians as ratios.
"""

from __future__ import annotations

import struct

import dpkt
import numpy as np
import pytest

from fastvpc.batch import FrameBatch
from fastvpc.pcap import iter_pcap, read_pcap, write_pcap

N = 300_000
FRAME = 64


def _frames() -> FrameBatch:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, N * FRAME, dtype=np.uint8)
    offsets = np.arange(N + 1, dtype=np.int64) * FRAME
    ts = 1_700_000_000 * 10**9 + np.arange(N, dtype=np.int64) * 1000
    return FrameBatch(data, offsets, np.full(N, -1, np.int32), ts)


def _pcapng_bytes(batch: FrameBatch) -> bytes:
    """SHB + IDB(ns) + N EPBs, built with numpy (no per-packet Python)."""
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb_body = struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    idb = struct.pack("<II", 1, 12 + len(idb_body)) + idb_body + struct.pack("<I", 12 + len(idb_body))
    blen = 32 + FRAME
    rec = np.zeros((N, blen), np.uint8)
    ts = batch.timestamp.astype(np.uint64)
    hdr = np.zeros((N, 7), np.uint32)
    hdr[:, 0] = 6
    hdr[:, 1] = blen
    hdr[:, 2] = 0
    hdr[:, 3] = (ts >> np.uint64(32)).astype(np.uint32)
    hdr[:, 4] = (ts & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hdr[:, 5] = FRAME
    hdr[:, 6] = FRAME
    rec[:, :28] = hdr.astype("<u4").view(np.uint8).reshape(N, 28)
    rec[:, 28:28 + FRAME] = batch.data.reshape(N, FRAME)
    rec[:, -4:] = np.array([blen], "<u4").view(np.uint8)
    return shb + idb + rec.tobytes()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pcapbench")
    batch = _frames()
    classic = d / "f64.pcap"
    write_pcap(classic, batch)
    ng = d / "f64.pcapng"
    ng.write_bytes(_pcapng_bytes(batch))
    # sanity: every reader sees the same N frames
    assert len(read_pcap(classic)) == N and read_pcap(ng).data.size == N * FRAME
    return {"pcap": classic, "pcapng": ng, "batch": batch, "dir": d}


def _rate(benchmark, n=N):
    benchmark.extra_info["frames"] = n
    benchmark.extra_info["frame_bytes"] = FRAME


@pytest.mark.benchmark(group="pcap-read")
def test_read_fastvpc_pcap(benchmark, files):
    _rate(benchmark)
    b = benchmark.pedantic(read_pcap, args=(files["pcap"],), rounds=15, warmup_rounds=2)
    assert len(b) == N


@pytest.mark.benchmark(group="pcap-read")
def test_read_fastvpc_pcapng(benchmark, files):
    _rate(benchmark)
    b = benchmark.pedantic(read_pcap, args=(files["pcapng"],), rounds=15, warmup_rounds=2)
    assert len(b) == N


@pytest.mark.benchmark(group="pcap-read")
def test_read_fastvpc_iter_pcap_64k(benchmark, files):
    _rate(benchmark)

    def run():
        return sum(len(c) for c in iter_pcap(files["pcap"], 65536))

    assert benchmark.pedantic(run, rounds=15, warmup_rounds=2) == N


@pytest.mark.benchmark(group="pcap-read")
def test_read_dpkt_pcap_reader(benchmark, files):
    _rate(benchmark)

    def run():
        with open(files["pcap"], "rb") as f:
            return [(ts, buf) for ts, buf in dpkt.pcap.Reader(f)]

    assert len(benchmark.pedantic(run, rounds=5, warmup_rounds=1)) == N


@pytest.mark.benchmark(group="pcap-read")
def test_read_dpkt_pcapng_reader(benchmark, files):
    _rate(benchmark)

    def run():
        with open(files["pcapng"], "rb") as f:
            return [(ts, buf) for ts, buf in dpkt.pcapng.Reader(f)]

    assert len(benchmark.pedantic(run, rounds=3, warmup_rounds=1)) == N


@pytest.mark.benchmark(group="pcap-read")
def test_read_scapy_rawpcapreader(benchmark, files):
    from scapy.utils import RawPcapReader
    _rate(benchmark)

    def run():
        with RawPcapReader(str(files["pcap"])) as r:
            return list(r)

    assert len(benchmark.pedantic(run, rounds=3, warmup_rounds=1)) == N


@pytest.mark.benchmark(group="pcap-write")
def test_write_fastvpc(benchmark, files):
    _rate(benchmark)
    out = files["dir"] / "w_fastvpc.pcap"
    benchmark.pedantic(write_pcap, args=(out, files["batch"]), rounds=15, warmup_rounds=2)
    assert out.stat().st_size == 24 + N * (16 + FRAME)


@pytest.mark.benchmark(group="pcap-write")
def test_write_dpkt(benchmark, files):
    _rate(benchmark)
    out = files["dir"] / "w_dpkt.pcap"
    frames = list(files["batch"])
    ts = (files["batch"].timestamp / 1e9).tolist()

    def run():
        with open(out, "wb") as f:
            w = dpkt.pcap.Writer(f, snaplen=262144)
            for buf, t in zip(frames, ts):
                w.writepkt(buf, ts=t)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert out.stat().st_size == 24 + N * (16 + FRAME)
