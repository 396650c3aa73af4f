"""Replay on Dask (``fastvpc replay --workers 2``) vs the serial replay, on a 20M-frame capture.

The capture (``_shard_data.write_capture``): 20,000,000 frames of 64 bytes, 4096 distinct frames of
the seed VPC's VMs (many flows: inside the VPC, out of both gateways, broadcasts, router pings)
tiled, classic nanosecond pcap (1.6 GB) in a temporary folder; FASTVPC_BENCH_SHARD_FRAMES overrides
the count.  Every round runs, one after the other (the machine is shared: alternate, trust the
ratios of one run):

* ``serial``: ``fastvpc.drivers.replay.replay(net, in, out)`` with its defaults (what
  ``fastvpc replay`` does: connection tracking, every usable core for ``process()``);
* ``workers2``: ``replay_sharded(net, in, out, workers=2)``: what ``fastvpc replay --workers 2``
  does, a LocalCluster of 2 worker processes started and stopped inside the timing;
* ``warm``: the same on a LocalCluster started once (a long-running service, or a cluster that
  already runs): the flow path (scan, one flow-shard task per worker, merges).

Every output is checked identical to the serial one, and the CPU time of the client and of the
workers is measured per round (``getrusage``).  Then the model's inputs, measured in this process
without Dask (``model``): the client's scan, the flow shards and the merges, per frame.  Run:
``python -m pytest benchmarks/bench_sharded.py --benchmark-only -q -p no:cacheprovider -s``
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from fastvpc.drivers import sharded as sh  # noqa: E402
from fastvpc.drivers.replay import replay  # noqa: E402
from fastvpc.examples import seed_vpc  # noqa: E402

N = int(os.environ.get("FASTVPC_BENCH_SHARD_FRAMES", 20_000_000))
ROUNDS = 3


def _data():
    name = "_shard_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharded")
    path = d / "in.pcap"
    _data().write_capture(str(path), N)
    return d, path


def _fresh(*paths):
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def test_sharded_vs_serial(benchmark, capture):
    d, path = capture
    net = seed_vpc()
    import dask

    with dask.config.set(sh._QUIET_WORKERS):   # as replay_sharded's own cluster
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    times: dict[str, list[float]] = {"serial": [], "workers2": [], "warm": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    loads = []
    outs = {k: str(d / f"out-{k}.pcap") for k in times}

    def cpu_seconds() -> float:   # local: pickled by value to the workers (this module is not importable there)
        import resource as r

        u = r.getrusage(r.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    def used() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)   # the workers2 cluster's, once it exits
        workers = sum(client.run(cpu_seconds).values())
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + workers

    def run(kind: str) -> None:
        _fresh(outs[kind])
        c0 = used()
        t0 = time.perf_counter()
        if kind == "serial":
            replay(net, path, outs[kind])
        elif kind == "workers2":
            sh.replay_sharded(net, path, outs[kind], workers=2)
        else:
            sh.replay_sharded(net, path, outs[kind], workers=2, client=client)
        times[kind].append(time.perf_counter() - t0)
        cpu[kind].append(used() - c0)

    def one_round() -> None:
        loads.append(os.getloadavg()[0])
        for kind in times:
            run(kind)

    try:
        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
        for kind in ("workers2", "warm"):
            assert filecmp.cmp(outs["serial"], outs[kind], shallow=False), kind
    finally:
        client.close()
        cluster.close()
        _fresh(*outs.values())
    med = {k: statistics.median(v) for k, v in times.items()}
    info = {"frames": N, "load_1min_at_rounds": loads}
    for k, v in med.items():
        info[f"{k}_cpu_s"] = statistics.median(cpu[k])
        info[f"{k}_s"] = v
        info[f"{k}_frames_per_s"] = N / v
        if k != "serial":
            info[f"{k}_speedup"] = med["serial"] / v
            info[f"{k}_round_speedups"] = [round(s / w, 2) for s, w in zip(times["serial"], v and times[k])]
    benchmark.extra_info.update(info)
    print("\nsharded replay, %d frames, load %s:" % (N, [round(x, 1) for x in loads]))
    for k, v in med.items():
        extra = "" if k == "serial" else f"  speedup {med['serial'] / v:.2f}x  rounds {info[k + '_round_speedups']}"
        print(f"  {k:<9} {v:7.2f} s  {N / v / 1e6:5.2f} M frames/s  cpu {statistics.median(cpu[k]):6.2f} s{extra}")


def test_model_inputs(benchmark, capture):
    """Per-frame CPU costs of each stage of the flow path, in one process, for docs/scale-out.md's model."""
    d, path = capture
    path = str(path)
    net = seed_vpc()
    dp = net.compile()
    from fastvpc.dataplane.ports import PortMap

    res: dict[str, float] = {}

    def stages() -> None:
        t = time.process_time()
        chunks, _ = sh.scan_capture(path, 1 << 20, "raise")
        res["scan"] = time.process_time() - t
        lo, hi = sh._inside_intervals(net)
        names = {tg.port: tg.name for tg in net.targets}
        is_eni = np.zeros(max(names) + 2, np.bool_)
        for e in net.enis:
            is_eni[e.port + 1] = True
        ctx = sh._Context(PortMap.for_network(net), None, is_eni, lo, hi, 2, 4, 28, max(names), True, 1_000_000)
        folder = str(d / "scratch")
        os.makedirs(folder, exist_ok=True)
        t = time.process_time()
        results = [sh._flow_task(path, chunks, k, dp, ctx, folder, True, False) for k in range(2)]
        res["shards"] = time.process_time() - t
        nbytes = np.array([r.out_bytes for r in results])
        nrec = np.array([r.out_frames for r in results])
        per = nbytes.sum(axis=0)
        starts = 24 + np.concatenate([[0], np.cumsum(per)[:-1]])
        rb = np.concatenate([np.zeros((2, 1), np.int64), np.cumsum(nbytes, axis=1)[:, :-1]], axis=1)
        ri = np.concatenate([np.zeros((2, 1), np.int64), np.cumsum(nrec, axis=1)[:, :-1]], axis=1)
        final = sh._new_partial(str(d / "merged.pcap"), int(per.sum()))
        t = time.process_time()
        for c in chunks:
            sh._merge_task(c, folder, "out", final, int(starts[c.index]),
                           [(int(rb[k, c.index]), int(nbytes[k, c.index]), int(ri[k, c.index]), int(nrec[k, c.index]))
                            for k in range(2)])
        res["merge"] = time.process_time() - t
        _fresh(final)
        t = time.process_time()
        replay(net, path, str(d / "serial1.pcap"), n_threads=1)
        res["serial_1_thread"] = time.process_time() - t
        _fresh(str(d / "serial1.pcap"))
        import shutil

        shutil.rmtree(folder, ignore_errors=True)

    benchmark.pedantic(stages, rounds=1, iterations=1)
    ns = {k: v / N * 1e9 for k, v in res.items()}
    ns["flow_total"] = ns["scan"] + ns["shards"] + ns["merge"]
    benchmark.extra_info.update({f"{k}_cpu_ns_per_frame": round(v, 1) for k, v in ns.items()})
    benchmark.extra_info["load_1min"] = os.getloadavg()[0]
    print("\nper-frame CPU costs, one process (ns/frame): " + ", ".join(f"{k} {v:.0f}" for k, v in ns.items()))
