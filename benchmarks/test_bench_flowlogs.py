"""Flow log benchmark (issue 12): what ``FlowLog.observe`` adds to a pass, against the pass alone and a
naive Python-dict aggregation, timed in the same run; and writing the records (text, Parquet) against
pandas' ``to_csv`` / ``to_parquet`` of the same table.

Run:  python -m pytest benchmarks/test_bench_flowlogs.py --benchmark-only -q -p no:cacheprovider
Each result's extra_info holds ``Mfps`` (million frames per second, from the median) and ``frames``.

The batch: 1,048,576 mixed 64-byte frames over the forwarding benchmark's topology (100,000 ENIs,
``_forward_data.mixed_frames``: 55% cross-subnet, 10% same subnet, 15% internet, 5% peering, 5% ARP,
5% echo to the router, 5% drops), every frame at its own nanosecond in one 600-s window.

Groups:
  pass       ``dp.process`` alone, one thread (the cost the flow log is compared with)
  observe    ``FlowLog.observe`` of the processed batch:
             * ``fresh``  into an empty log: ~1.5M records made (almost every frame is its own flow),
               the table grown from 1,024 slots along the way
             * ``warm``   into a log that has seen the batch once: every frame updates existing records
             * ``flows10k``  a batch of 10,000 flows repeated to 1M frames, into an empty log
  dict       a Python dict aggregation of the same records (struct parse, sender/receiver, key, counters)
             on a 100k-frame sample (peer)
  write      1M+ records: ``FlowLog.write`` text and Parquet vs pandas ``to_csv`` / ``to_parquet`` (peers)
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from _forward_data import Big, mixed_frames  # loaded by benchmarks/conftest.py

from fastvpc.batch import FrameBatch
from fastvpc.dataplane import Result
from fastvpc.dataplane.flowlogs import FlowLog

N = 1 << 20
N_SLOW = 100_000
T0 = 1_700_000_400 * 10**9           # a 600-s window boundary


def _rate(benchmark: Any, n: int) -> None:
    med = benchmark.stats.stats.median
    benchmark.extra_info["frames"] = n
    benchmark.extra_info["Mfps"] = round(n / med / 1e6, 2)


@pytest.fixture(scope="module")
def world(big: Big) -> dict[str, Any]:
    batch = mixed_frames(big, N, seed=3)
    batch = FrameBatch(batch.data, batch.offsets, batch.port, T0 + np.arange(N, dtype=np.int64))
    pristine = batch.data.copy()
    res = big.dp.process(batch, n_threads=1)
    small = mixed_frames(big, 10_000, seed=4)
    reps = N // 10_000 + 1
    data = np.tile(small.data, reps)[:N * 64]
    rep = FrameBatch(data, np.arange(N + 1, dtype=np.int64) * 64, np.tile(small.port, reps)[:N],
                     T0 + np.arange(N, dtype=np.int64))
    rep_res = big.dp.process(rep, n_threads=1)
    return {"batch": batch, "res": res, "pristine": pristine, "rep": rep, "rep_res": rep_res}


def test_pass_1_thread(benchmark: Any, big: Big, world: dict[str, Any]) -> None:
    work = world["batch"].copy()
    out = Result(N)

    def restore() -> None:
        np.copyto(work.data, world["pristine"])

    benchmark.pedantic(lambda: big.dp.process(work, out=out, n_threads=1), setup=restore, rounds=15,
                       iterations=1, warmup_rounds=1)
    _rate(benchmark, N)


def test_observe_fresh(benchmark: Any, big: Big, world: dict[str, Any]) -> None:
    logs: list[FlowLog] = []

    def setup() -> None:
        logs[:] = [FlowLog(window=600)]

    benchmark.pedantic(lambda: logs[0].observe(big.dp, world["batch"], world["res"]), setup=setup,
                       rounds=15, iterations=1, warmup_rounds=1)
    benchmark.extra_info["records"] = len(logs[0])
    _rate(benchmark, N)


def test_observe_warm(benchmark: Any, big: Big, world: dict[str, Any]) -> None:
    log = FlowLog(window=600)
    log.observe(big.dp, world["batch"], world["res"])
    n_rec = len(log)
    benchmark.pedantic(lambda: log.observe(big.dp, world["batch"], world["res"]), rounds=15, iterations=1,
                       warmup_rounds=1)
    assert len(log) == n_rec
    benchmark.extra_info["records"] = n_rec
    _rate(benchmark, N)


def test_observe_flows10k(benchmark: Any, big: Big, world: dict[str, Any]) -> None:
    logs: list[FlowLog] = []

    def setup() -> None:
        logs[:] = [FlowLog(window=600)]

    benchmark.pedantic(lambda: logs[0].observe(big.dp, world["rep"], world["rep_res"]), setup=setup,
                       rounds=15, iterations=1, warmup_rounds=1)
    benchmark.extra_info["records"] = len(logs[0])
    _rate(benchmark, N)


def _dict_aggregate(big: Big, batch: FrameBatch, res: Result, n: int, window: int = 600) -> dict[tuple, list]:
    """The naive peer: one Python step per frame, the same rules as the compiled pass (no DNS /
    link-local / DHCP exclusions beyond the verdicts, which this batch does not need)."""
    port_eni = {int(p): i for i, p in enumerate(big.eni_port)}
    data, off = batch.data, batch.offsets
    recs: dict[tuple, list] = {}
    unpack = struct.unpack_from
    buf = data.tobytes()
    for i in range(n):
        a = int(res.action[i])
        if a not in (1, 2) and not (a == 0 and int(res.reason[i]) in (11, 12, 13)):
            continue
        o = int(off[i])
        if buf[o + 12:o + 14] != b"\x08\x00":
            continue
        ihl = (buf[o + 14] & 15) * 4
        tl, = unpack("!H", buf, o + 16)
        proto = buf[o + 23]
        src, dst = unpack("!II", buf, o + 26)
        sport = dport = flags = 0
        if proto in (6, 17):
            sport, dport = unpack("!HH", buf, o + 14 + ihl)
        t = int(batch.timestamp[i]) // 10**9 if batch.timestamp is not None else 0
        w = t - t % window
        legs = []
        s = port_eni.get(int(batch.port[i]))
        if s is not None:
            legs.append((s, 1))
        if a == 1:
            r = port_eni.get(int(res.egress[i]))
            if r is not None:
                legs.append((r, 0))
        for eni, dirn in legs:
            key = (eni, src, dst, sport, dport, proto, dirn, 0, w)
            rec = recs.get(key)
            if rec is None:
                recs[key] = [1, tl, t, t, flags]
            else:
                rec[0] += 1
                rec[1] += tl
                rec[3] = t
                rec[4] |= flags
    return recs


def test_peer_dict_aggregation(benchmark: Any, big: Big, world: dict[str, Any]) -> None:
    out: list[dict] = []
    benchmark.pedantic(lambda: out.append(_dict_aggregate(big, world["batch"], world["res"], N_SLOW)),
                       rounds=5, iterations=1, warmup_rounds=0)
    log = FlowLog(window=600)
    sample = world["batch"].select(np.arange(N_SLOW))
    res = Result(N_SLOW)
    for name in ("action", "reason", "egress", "route"):
        getattr(res, name)[:] = getattr(world["res"], name)[:N_SLOW]
    log.observe(big.dp, sample, res)
    assert len(out[-1]) == len(log)           # the peer counts the same records
    _rate(benchmark, N_SLOW)


@pytest.fixture(scope="module")
def full_log(big: Big, world: dict[str, Any]) -> FlowLog:
    log = FlowLog(window=600)
    log.observe(big.dp, world["batch"], world["res"])
    return log


def test_write_text(benchmark: Any, full_log: FlowLog, tmp_path: Any) -> None:
    path = tmp_path / "flows.log"
    benchmark.pedantic(lambda: full_log.write(path), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["records"] = len(full_log)
    benchmark.extra_info["MB"] = round(path.stat().st_size / 1e6, 1)


def test_write_parquet(benchmark: Any, full_log: FlowLog, tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    benchmark.pedantic(lambda: full_log.write(tmp_path / "flows.parquet"), rounds=5, iterations=1,
                       warmup_rounds=1)
    benchmark.extra_info["records"] = len(full_log)


@pytest.fixture(scope="module")
def frame_of_records(full_log: FlowLog) -> Any:
    pd = pytest.importorskip("pandas")
    rec = full_log.records()
    return pd.DataFrame({name: rec[name] for name in rec.dtype.names})


def test_peer_pandas_to_csv(benchmark: Any, frame_of_records: Any, tmp_path: Any) -> None:
    path = tmp_path / "flows.csv"
    benchmark.pedantic(lambda: frame_of_records.to_csv(path, sep=" ", index=False), rounds=3, iterations=1,
                       warmup_rounds=0)
    benchmark.extra_info["records"] = len(frame_of_records)


def test_peer_pandas_to_parquet(benchmark: Any, frame_of_records: Any, tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    benchmark.pedantic(lambda: frame_of_records.to_parquet(tmp_path / "flows.parquet", index=False), rounds=3,
                       iterations=1, warmup_rounds=0)
    benchmark.extra_info["records"] = len(frame_of_records)


def test_records_numpy(benchmark: Any, full_log: FlowLog) -> None:
    """records(): the numpy structured array (strings made for the address columns)."""
    benchmark.pedantic(full_log.records, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["records"] = len(full_log)


# --------------------------------------------------------------------------- issue 12's target: the stateful pass

@pytest.fixture(scope="module")
def filt(big: Big) -> Any:
    """The filters benchmark's network (benchmarks/test_bench_filters.py: 3 groups of 20 rules per
    ENI, 20-entry NACLs, a FlowTable warmed with 1M entries, 80% tracked frames, 65,536 UDP frames a
    batch, 20% new flows each round)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "_bench_filters_for_flowlogs"     # --import-mode=importlib puts no test folder on sys.path
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "test_bench_filters.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod.Filtered(big)


def _stateful_rounds(filt: Any, log: FlowLog | None, rounds: int, flows: Any, state: dict[str, Any]) -> list[float]:
    """``rounds`` timed stateful passes (``process(..., state=, now=, log=)``), each on the batch with this
    round's new flows; returns the seconds of each."""
    import time as _time

    batch, new, work, out = state["batch"], state["new"], state["work"], state["out"]
    times = []
    for _ in range(rounds):
        np.copyto(work.data, batch.data)
        state["round"] += 1
        sp = (1024 + (state["round"] * 7919 + np.arange(new.size) * 13) % 8000).astype(np.uint16)
        rows = work.data.reshape(-1, 64)
        rows[new, 34] = sp >> 8
        rows[new, 35] = sp & 0xFF
        state["now"] += 10**6
        t = _time.perf_counter()
        filt.dp.process(work, out=out, n_threads=1, state=flows, now=state["now"], log=log)
        times.append(_time.perf_counter() - t)
    return times


def test_stateful_pass_with_and_without_flow_log(benchmark: Any, filt: Any) -> None:
    """Issue 12's target, one run, alternating A/B: the stateful pass with filters
    (``process(batch, state=flows, now=...)``, one thread) with ``log=FlowLog(window=600)`` and without,
    7 rounds of each in turn, 3 times; the ratio of the medians is recorded (``ratio`` = with / without
    throughput; the target is >= 0.8).  The log is kept across rounds, as a replay or a switch keeps
    it: the tracked flows' records exist after the first round, the new flows make new ones."""
    from fastvpc.dataplane import Result

    batch, new = filt.batch()
    flows = filt.warm()
    state = {"batch": batch, "new": new, "work": batch.copy(), "out": Result(batch.port.size), "round": 0,
             "now": 10**9}     # the warm flows were made at 1 s (test_bench_filters.T0)
    log = FlowLog(window=600)
    _stateful_rounds(filt, log, 2, flows, state)           # warm-up of both paths
    _stateful_rounds(filt, None, 2, flows, state)
    with_log: list[float] = []
    without: list[float] = []
    # 2 + 42 + 5 rounds of 13k new flows (26k entries each) fit the warm table's 1.5M free entries
    for _ in range(3):
        without += _stateful_rounds(filt, None, 7, flows, state)
        with_log += _stateful_rounds(filt, log, 7, flows, state)
    n = batch.port.size
    m_with, m_without = float(np.median(with_log)), float(np.median(without))
    benchmark.extra_info["frames"] = n
    benchmark.extra_info["Mfps_without_log"] = round(n / m_without / 1e6, 3)
    benchmark.extra_info["Mfps_with_log"] = round(n / m_with / 1e6, 3)
    benchmark.extra_info["ratio"] = round(m_without / m_with, 3)
    benchmark.extra_info["records"] = len(log)
    assert np.count_nonzero(state["out"].action == 1) > 0.95 * n
    # the pytest-benchmark row itself: one more with-log pass per round
    benchmark.pedantic(lambda: _stateful_rounds(filt, log, 1, flows, state), rounds=5, iterations=1)
