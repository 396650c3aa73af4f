"""FlowTable benchmark: the compiled connection tracking table against a Python-dict conntrack loop,
timed in the same run (issue 10: a table warmed with 1M flows, batches where 80% of packets belong
to tracked flows; <= 64 bytes per tracked flow).

Run:  python -m pytest benchmarks/test_bench_flowtable.py --benchmark-only -q -p no:cacheprovider
Each result's extra_info holds ``Mpps`` and ``ns_per_packet`` (from the median) and, for the table
sizes, ``bytes_per_flow``.  The dict peer runs on a 100k-packet sample of the same batch.

Groups:
  hits80   1M packets, 80% on tracked flows (random direction), 20% on unknown flows the rules deny
           (a full miss probe each, nothing inserted, so every round sees the same table):
           * ``core``  the validation-free batch entry (key making + ft_track_batch: what a stage runs)
           * ``track`` FlowTable.track() with its input validation
           * ``dict``  a Python dict conntrack loop (normalised key, expiry check, counters, TCP state)
  insert   1M new flows (SYN) into an empty 1M-capacity table: new connections per second
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from fastvpc.dataplane.state import FlowTable, TrackCode, timeouts_record

N_FLOWS = 1_000_000
N_PKT = 1_000_000
N_SLOW = 100_000
NOW = 1_000 * 1_000_000_000
ACK, SYN = 0x10, 0x02


def _rate(benchmark, n: int) -> None:
    med = benchmark.stats.stats.median
    benchmark.extra_info["packets"] = n
    benchmark.extra_info["Mpps"] = round(n / med / 1e6, 2)
    benchmark.extra_info["ns_per_packet"] = round(med / n * 1e9, 1)


def _flows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "eni": rng.integers(0, 100_000, n, dtype=np.uint32) * np.uint32(2654435761),
        "src": (np.uint32(0x0A000000) | rng.integers(0, 1 << 24, n, dtype=np.uint32)),
        "dst": (np.uint32(0x0A000000) | rng.integers(0, 1 << 24, n, dtype=np.uint32)),
        "sport": rng.integers(1024, 65536, n, dtype=np.uint32).astype(np.uint16),
        "dport": rng.choice(np.array([80, 443, 5432, 8080], dtype=np.uint16), n),
    }


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(2026)
    fl = _flows(rng, N_FLOWS)
    ft = FlowTable(N_FLOWS)
    r = ft.track(fl["eni"], 6, fl["src"], fl["dst"], fl["sport"], fl["dport"], ACK, 64, NOW, 1)
    warmed = int((r.code == TrackCode.NEW).sum())
    # the batch: 80% packets of tracked flows, half of them in the reply direction; 20% unknown flows
    hit = rng.random(N_PKT) < 0.8
    idx = rng.integers(0, N_FLOWS, N_PKT)
    rev = rng.random(N_PKT) < 0.5
    new = _flows(rng, N_PKT)
    pk = {}
    for k in ("eni", "src", "dst", "sport", "dport"):
        pk[k] = np.where(hit, fl[k][idx], new[k])
    s, d = pk["src"].copy(), pk["dst"].copy()
    sp, dp = pk["sport"].copy(), pk["dport"].copy()
    swap = hit & rev
    pk["src"], pk["dst"] = np.where(swap, d, s), np.where(swap, s, d)
    pk["sport"], pk["dport"] = np.where(swap, dp, sp), np.where(swap, sp, dp)
    n = N_PKT
    arrays = dict(
        eni=np.ascontiguousarray(pk["eni"], np.uint32), zone=np.zeros(n, np.uint8), proto=np.full(n, 6, np.uint8),
        src=np.ascontiguousarray(pk["src"], np.uint32), dst=np.ascontiguousarray(pk["dst"], np.uint32),
        sport=np.ascontiguousarray(pk["sport"], np.uint16), dport=np.ascontiguousarray(pk["dport"], np.uint16),
        flags=np.full(n, ACK, np.uint8), length=np.full(n, 64, np.uint32), now=np.full(n, NOW, np.int64),
        admitted=np.zeros(n, np.uint8),
    )
    return {"ft": ft, "flows": fl, "pk": arrays, "hit": hit, "warmed": warmed}


def _core_args(ft: FlowTable, a: dict, n: int) -> tuple:
    rec = np.ascontiguousarray(timeouts_record().reshape(1)).view(np.uint8).reshape(-1)
    out = [np.zeros(n, np.uint8) for _ in range(3)]
    return (a["eni"][:n], a["zone"][:n], a["proto"][:n], a["src"][:n], a["dst"][:n], a["sport"][:n],
            a["dport"][:n], a["flags"][:n], a["length"][:n], a["now"][:n], a["admitted"][:n], rec,
            np.empty(0, np.uint32), *out)


@pytest.mark.benchmark(group="flowtable-hits80")
def test_flowtable_core(benchmark, world):
    ft, a = world["ft"], world["pk"]
    args = _core_args(ft, a, N_PKT)
    ft.acquire()
    try:
        benchmark(ft._track, *args)
    finally:
        ft.release()
    code = args[-3]
    assert world["warmed"] == len(ft) == N_FLOWS
    assert (code == TrackCode.HIT).sum() == world["hit"].sum()
    _rate(benchmark, N_PKT)
    benchmark.extra_info["bytes_per_flow"] = round(ft.nbytes / ft.capacity, 2)
    benchmark.extra_info["load"] = round(len(ft) / ft.n_slots, 3)


@pytest.mark.benchmark(group="flowtable-hits80")
def test_flowtable_track(benchmark, world):
    ft, a = world["ft"], world["pk"]
    r = benchmark(ft.track, a["eni"], a["proto"], a["src"], a["dst"], a["sport"], a["dport"], a["flags"],
                  a["length"], a["now"], a["admitted"], zone=a["zone"])
    assert (r.code == TrackCode.HIT).sum() == world["hit"].sum()
    _rate(benchmark, N_PKT)


def _dict_conntrack(d: dict, eni, src, dst, sport, dport, flags, length, now, admitted, n) -> int:
    """The naive peer: a dict keyed by the normalised flow, value [orig_is_lo, state, first, last,
    packets, bytes, timeout_ns]; a hit updates the state (established stays established here),
    counters and timeout; a miss inserts when admitted."""
    hits = 0
    tmo = 432_000 * 1_000_000_000
    for i in range(n):
        s, t, sp, dp = src[i], dst[i], sport[i], dport[i]
        if (s, sp) <= (t, dp):
            key = (eni[i], 0, 6, s, t, sp, dp)
            lo = True
        else:
            key = (eni[i], 0, 6, t, s, dp, sp)
            lo = False
        e = d.get(key)
        ts = now[i]
        if e is not None and ts <= e[3] + e[6]:
            e[3] = ts
            e[4] += 1
            e[5] += length[i]
            if flags[i] & 0x04:
                e[1] = 8
            hits += 1
        elif admitted[i]:
            d[key] = [lo, 3, ts, ts, 1, length[i], tmo]
    return hits


@pytest.fixture(scope="module")
def dict_world(world):
    fl = world["flows"]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    d: dict = {}
    lists = [fl[k].tolist() for k in ("eni", "src", "dst", "sport", "dport")]
    n = N_FLOWS
    _dict_conntrack(d, *lists, [ACK] * n, [64] * n, [NOW] * n, [1] * n, n)
    size = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del lists
    a = world["pk"]
    sample = [a[k][:N_SLOW].tolist() for k in ("eni", "src", "dst", "sport", "dport", "flags", "length", "now",
                                                "admitted")]
    # the integers in the key lists are shared with the dict's keys; count the dict, its keys and values
    return {"d": d, "bytes_per_flow": size / len(d), "sample": sample}


@pytest.mark.benchmark(group="flowtable-hits80")
def test_dict_conntrack_peer(benchmark, world, dict_world):
    d = dict_world["d"]
    hits = benchmark(_dict_conntrack, d, *dict_world["sample"], N_SLOW)
    assert hits == world["hit"][:N_SLOW].sum()
    _rate(benchmark, N_SLOW)
    benchmark.extra_info["bytes_per_flow"] = round(dict_world["bytes_per_flow"], 1)


@pytest.mark.benchmark(group="flowtable-insert")
def test_flowtable_insert_1m_new_flows(benchmark):
    rng = np.random.default_rng(5)
    fl = _flows(rng, N_FLOWS)
    ft = FlowTable(N_FLOWS)
    n = N_FLOWS
    a = dict(eni=fl["eni"], zone=np.zeros(n, np.uint8), proto=np.full(n, 6, np.uint8), src=fl["src"],
             dst=fl["dst"], sport=fl["sport"], dport=fl["dport"], flags=np.full(n, SYN, np.uint8),
             length=np.full(n, 64, np.uint32), now=np.full(n, NOW, np.int64), admitted=np.ones(n, np.uint8))
    args = _core_args(ft, a, n)

    def setup():
        ft.clear()          # also touches every page, so page faults stay out of the timing
        return (), {}

    def run():
        ft.acquire()
        try:
            ft._track(*args)
        finally:
            ft.release()

    benchmark.pedantic(run, setup=setup, rounds=7, iterations=1)
    assert len(ft) == N_FLOWS - int((args[-3] != TrackCode.NEW).sum())
    _rate(benchmark, n)
