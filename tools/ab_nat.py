"""A/B of two builds of the forwarding kernel on the NAT gateway batch, in one process (BENCHMARKS.md, Edge).

The benchmark of ``benchmarks/test_bench_edge.py`` (``NatEdge``: one VPC, a NAT gateway with an Elastic IP,
13,000 ENIs, a FlowTable holding 1,000,000 NAT bindings; a batch of 65,536 64-byte UDP frames, 30% through
the NAT gateway on existing bindings, 30% out through the internet gateway 1:1, 40% inside the VPC;
``filters=False``), run through two builds' ``forward_batch`` loaded side by side from ``.so`` files (copy
the old one to /tmp before rebuilding): each gets a ``Tables`` built from the same compiled arrays, the
frames are restored untimed before every round, one thread, ``now`` fixed (the NAT frames refresh their
bindings' idle time to the same instant, so every round does the same work), the builds alternate round
by round (ABAB, then BABA), and the verdicts and rewritten frames are checked identical.  A build whose
``forward_batch`` takes the NAT arrays (``nat_gw=`` ...) gets them, as ``Dataplane.process`` passes them.

    cp src/fastvpc/_kernels/forward.*.so /tmp/fwd_old.so      # before the change (then rebuild)
    python tools/ab_nat.py --old /tmp/fwd_old.so [--new /tmp/fwd_new.so] [--rounds 30]
    python tools/ab_nat.py --only new --rounds 3              # one build (for perf / callgrind)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _ab import load_so, summary  # noqa: E402


def takes_nat_arrays(mod: ModuleType, tables: object) -> bool:
    """Whether this build's forward_batch has the nat_* keyword arguments."""
    z8, z32 = np.zeros(0, np.uint8), np.zeros(0, np.int32)
    try:
        mod.forward_batch(tables, z8, np.zeros(1, np.int64), z32, z8, z8, z32, z32, 1,
                          nat_gw=z32, nat_dir=z8, nat_ip=np.zeros(0, np.uint32), nat_l4=np.zeros(0, np.uint16))
    except TypeError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="the old build's forward .so")
    ap.add_argument("--new", help="the new build's forward .so (default: the installed module)")
    ap.add_argument("--only", choices=["old", "new"], help="time one build only (for profilers)")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args(argv)
    from test_bench_edge import N, NAT_NOW, NatEdge

    t0 = time.perf_counter()
    bench = NatEdge()
    print(f"setup {time.perf_counter() - t0:.1f} s: {bench.n_bindings} bindings", flush=True)
    dp, ft, batch = bench.dp_edge, bench.ft, bench.batch
    builds: dict[str, ModuleType] = {}
    if a.only != "new":
        if not a.old:
            ap.error("--old is required unless --only new")
        builds["old"] = load_so(a.old, "fvab_old")
    if a.only != "old":
        if a.new:
            builds["new"] = load_so(a.new, "fvab_new")
        else:
            from fastvpc._kernels import forward

            builds["new"] = forward
    tables = {k: m.Tables(dp._compiled) for k, m in builds.items()}
    nat = {k: takes_nat_arrays(m, tables[k]) for k, m in builds.items()}
    work = {k: batch.data.copy() for k in builds}
    outs = {k: (np.empty(N, np.uint8), np.empty(N, np.uint8), np.empty(N, np.int32), np.empty(N, np.int32))
            for k in builds}
    nat_out = {k: dict(nat_gw=np.empty(N, np.int32), nat_dir=np.empty(N, np.uint8), nat_ip=np.empty(N, np.uint32),
                       nat_l4=np.empty(N, np.uint16)) if nat[k] else {} for k in builds}
    now = np.array([NAT_NOW], np.int64)
    times: dict[str, list[float]] = {k: [] for k in builds}
    names = list(builds)
    gc.collect()
    gc.disable()
    try:
        for r in range(a.rounds):
            for k in (names if r % 2 == 0 else names[::-1]):
                np.copyto(work[k], batch.data)          # untimed restore (frames are rewritten in place)
                fb = builds[k].forward_batch
                ft.acquire()
                try:
                    t = time.perf_counter()
                    fb(tables[k], work[k], batch.offsets, batch.port, *outs[k], 1, ft, now, **nat_out[k])
                    times[k].append(time.perf_counter() - t)
                finally:
                    ft.release()
    finally:
        gc.enable()
    want = np.where(bench.kind == 2, 1, 2).astype(np.uint8)     # DELIVER inside the VPC, else FORWARD
    for k in builds:
        if not np.array_equal(outs[k][0], want):
            print(f"{k}: unexpected verdicts ({int(np.count_nonzero(outs[k][0] != want))} frames)")
            return 1
        if nat[k]:
            d = nat_out[k]["nat_dir"]
            print(f"{k}: NAT arrays: {int(np.count_nonzero(d == 1))} frames source-translated "
                  f"(of {int(np.count_nonzero(bench.kind == 0))} NAT frames)")
    if len(builds) == 2:
        same = all(np.array_equal(x, y) for x, y in zip(outs["old"], outs["new"])) \
            and np.array_equal(work["old"], work["new"])
        print(f"outputs identical: {same}")
        if not same:
            return 1
    print("\n".join(summary(times, N, extra={k: f"NAT arrays: {nat[k]}" for k in builds})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
