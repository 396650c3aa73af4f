"""A/B of two builds of the forwarding kernel in one process (BENCHMARKS.md "Staged kernel (issue 9)").

Both builds' ``forward`` extension modules are loaded side by side from ``.so`` files (copy the old
one to /tmp before rebuilding), each gets a ``Tables`` built from the same compiled arrays of one
benchmark ``Dataplane`` (benchmarks/_forward_data.py: 100,000 ENIs, 1,000 route tables), the
65,536 benchmark frames are restored untimed before every round, ``forward_batch(..., n_threads=1)``
is timed with ``perf_counter``, the builds alternate round by round (ABAB, then BABA), and the
outputs (verdicts and rewritten frames) are checked identical.

    python tools/ab_forward.py --prepare                      # build + pickle the benchmark once
    cp src/fastvpc/_kernels/forward.*.so /tmp/fwd_old.so      # before the change (then rebuild)
    python tools/ab_forward.py --old /tmp/fwd_old.so [--new /tmp/fwd_new.so] [--rounds 40]
    # instructions per frame (one build loaded, 3 passes):
    valgrind --tool=callgrind --toggle-collect='*forward_batch*' \\
        python tools/ab_forward.py --old /tmp/fwd_old.so --only old --rounds 3

``--new`` defaults to the installed ``fastvpc._kernels.forward``.  The old constructor (11
positional arguments, before the CompiledTables handover) is detected and fed from the same arrays.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from _ab import load_so, summary

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/tmp/fastvpc_ab/bench.pkl")
N = 65536


def prepare(path: Path = CACHE, edge: bool = False) -> None:
    """Build and pickle the benchmark.  ``edge=False`` (the default): the routing pass the fused kernel
    ran (its IGW and NAT routes are opaque exits), so old and new builds answer the same; with the edge
    the new kernel translates or drops those frames and the outputs differ from a pre-edge build's."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _forward_data import Big, mixed_frames

    big = Big(edge=edge)
    batch = mixed_frames(big, N, seed=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"dp": big.dp, "data": batch.data.copy(), "offsets": batch.offsets.copy(),
                     "port": batch.port.copy()}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"wrote {path} ({path.stat().st_size >> 20} MiB), build times {big.times}")


def make_tables(mod: ModuleType, dp: Any) -> Any:
    ct = dp._compiled
    try:
        return mod.Tables(ct)
    except TypeError:       # a build from before the CompiledTables handover: 11 positional arguments
        u8 = np.uint8
        return mod.Tables(ct.enis.view(u8), ct.subnets.view(u8), ct.route_targets.view(u8), ct.table_base,
                          ct.port_eni.view(u8), bool(ct.port_hashed), ct.eni_deliver.view(u8), ct.ip_hash,
                          ct.mac_hash, ct.lpm, ct.arp_mode == "single_mac")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare", action="store_true", help="build and pickle the benchmark Dataplane and frames")
    ap.add_argument("--old", help="the old build's forward .so")
    ap.add_argument("--new", help="the new build's forward .so (default: the installed module)")
    ap.add_argument("--only", choices=["old", "new"], help="time one build only (for callgrind)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--edge", action="store_true",
                    help="with --prepare: compile the benchmark with the edge stages (default: edge=False, "
                         "the routing pass, comparable with builds from before the edge)")
    a = ap.parse_args(argv)
    if a.prepare or not CACHE.exists():
        prepare(edge=a.edge)
        if a.prepare:
            return 0
    with open(CACHE, "rb") as fh:
        bench = pickle.load(fh)
    dp = bench["dp"]
    pristine, offsets, port = bench["data"], bench["offsets"], bench["port"]
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
    tables = {k: make_tables(m, dp) for k, m in builds.items()}
    work = {k: pristine.copy() for k in builds}
    outs = {k: (np.empty(N, np.uint8), np.empty(N, np.uint8), np.empty(N, np.int32), np.empty(N, np.int32))
            for k in builds}
    times: dict[str, list[float]] = {k: [] for k in builds}
    names = list(builds)
    gc.collect()
    gc.disable()
    try:
        for r in range(a.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for k in order:
                np.copyto(work[k], pristine)          # untimed restore (frames are rewritten in place)
                fb = builds[k].forward_batch
                t0 = time.perf_counter()
                fb(tables[k], work[k], offsets, port, *outs[k], 1)
                times[k].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    if len(builds) == 2:
        same = all(np.array_equal(x, y) for x, y in zip(outs["old"], outs["new"])) \
            and np.array_equal(work["old"], work["new"])
        print(f"outputs identical: {same}")
        if not same:
            return 1
    print("\n".join(summary(times, N)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
