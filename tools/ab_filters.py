"""A/B of two builds of the forwarding kernel on the filters benchmark (benchmarks/test_bench_filters.py), in
one process, the way tools/ab_forward.py does it for the unfiltered pass.

Both builds' ``forward`` extensions are loaded side by side (copy the old ``.so`` to /tmp before
rebuilding); each gets its own ``Tables`` from the same compiled arrays and, for the stateful pass, its
own ``FlowTable`` warmed alike (1M entries); per round the 65,536 benchmark frames are restored untimed
(the 20% new flows get new source ports, as in the benchmark), the builds alternate (ABAB, then BABA),
``forward_batch(..., n_threads)`` is timed with ``perf_counter``, and every round's verdicts, egress,
route and rewritten frames are compared equal.  Both builds use the installed ``_flowtable`` module
(``--flowtable`` loads another); each warms its own table with its own pass.

Load both builds the same way: with ``--new`` omitted the new build is the installed module and the
old one a copy loaded from /tmp, and two identical builds measured anywhere from 0.94 to 1.04
(new/old) on the stateful pass (2026-12-02, load 1.5-2.5); ``--old /tmp/a.so --new /tmp/b.so`` (copies
of both) measured 0.98-1.02 for identical code.  Below ~5% a ratio is not a result on this machine.

    cp src/fastvpc/_kernels/forward.*.so /tmp/fwd_old.so         # before the change (then rebuild)
    python tools/ab_filters.py --old /tmp/fwd_old.so --mode state --rounds 30 [--threads 1]
    python tools/ab_filters.py --old /tmp/fwd_old.so --mode rules          # filters, no FlowTable
    python tools/ab_filters.py --old /tmp/fwd_old.so --mode plain          # compile(filters=False)
    # instructions a frame (one build, a few rounds; instrumentation from the first timed round):
    valgrind --tool=callgrind --instr-atstart=no --toggle-collect='*forward_batch*' \\
        python tools/ab_filters.py --only new --mode state --rounds 2 --settle 20 &
    # when it prints "timing in 20 s": callgrind_control -i on   (the warm-up pass is not counted)
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/tmp/fastvpc_ab/filters.pkl")
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tools"))

from _ab import load_extension, load_so, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="the old build's forward .so")
    ap.add_argument("--new", help="the new build's forward .so (default: the installed module)")
    ap.add_argument("--only", choices=["old", "new"], help="time one build only (for callgrind)")
    ap.add_argument("--mode", choices=["state", "rules", "plain"], default="state")
    ap.add_argument("--modes", help="several modes, comma-separated (one topology build)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--flowtable", help="load this _flowtable .so as fastvpc.dataplane._flowtable (both builds "
                    "use it: an old forward that imports key making from it needs the old one)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait before the timed rounds (for `callgrind_control -i on`)")
    ap.add_argument("--fresh", action="store_true", help=f"rebuild the workload (else read {CACHE} if there)")
    a = ap.parse_args(argv)
    if a.flowtable:
        load_extension(a.flowtable, "fastvpc.dataplane._flowtable", register=True)
    import fastvpc as fv
    from test_bench_filters import T0

    t0 = time.perf_counter()
    if a.fresh or not CACHE.exists():
        from _forward_data import Big
        from test_bench_filters import Filtered

        filt = Filtered(Big())
        batch, new = filt.batch()
        wb = filt.frames(filt.f_src, filt.f_dst, filt.f_sport, filt.f_dport)
        work_load = {"dp": filt.dp, "plain": filt.plain, "batch": (batch.data, batch.offsets, batch.port), "new": new,
                     "warm": (wb.data, wb.offsets, wb.port)}
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        with open(CACHE, "wb") as fh:
            pickle.dump(work_load, fh, protocol=pickle.HIGHEST_PROTOCOL)
    with open(CACHE, "rb") as fh:
        work_load = pickle.load(fh)
    print(f"setup {time.perf_counter() - t0:.0f} s", flush=True)

    def warm(k: str) -> Any:
        # each build warms its own table with its own pass: a build whose key making (inline in forward)
        # places entries differently must not probe a table another build filled
        flows = fv.FlowTable(capacity=2_500_000)
        data, offsets, port = (x.copy() for x in work_load["warm"])
        n = offsets.size - 1
        outs = (np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.int32), np.empty(n, np.int32))
        builds[k].forward_batch(tables[k], data, offsets, port, *outs, 1, flows, np.array([T0], dtype=np.int64))
        return flows
    builds: dict[str, Any] = {}
    if a.only != "new":
        if not a.old:
            ap.error("--old is required unless --only new")
        builds["old"] = load_so(a.old, "fvabf_old")
    if a.only != "old":
        if a.new:
            builds["new"] = load_so(a.new, "fvabf_new")
        else:
            from fastvpc._kernels import forward

            builds["new"] = forward
    rc = 0
    for mode in (a.modes.split(",") if a.modes else [a.mode]):
        dp = work_load["plain"] if mode == "plain" else work_load["dp"]
        pristine, offsets, port = work_load["batch"]
        new = work_load["new"]
        n = offsets.size - 1
        tables = {k: m.Tables(dp._compiled) for k, m in builds.items()}
        flows = {k: (warm(k) if mode == "state" else None) for k in builds}
        work = {k: pristine.copy() for k in builds}
        outs = {k: (np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.int32), np.empty(n, np.int32))
                for k in builds}
        times: dict[str, list[float]] = {k: [] for k in builds}
        names = list(builds)
        same = True
        if a.settle:
            print(f"mode {mode}: timing in {a.settle} s", flush=True)
            time.sleep(a.settle)
        gc.collect()
        gc.disable()
        try:
            for r in range(a.rounds):
                sp = (1024 + ((r + 1) * 7919 + np.arange(new.size) * 13) % 8000).astype(np.uint16)
                now = np.array([T0 + (r + 1) * 10**6], dtype=np.int64)
                order = names if r % 2 == 0 else names[::-1]
                for k in order:
                    np.copyto(work[k], pristine)          # untimed restore, new flows' source ports
                    rows = work[k].reshape(-1, 64)
                    rows[new, 34] = sp >> 8
                    rows[new, 35] = sp & 0xFF
                    fb = builds[k].forward_batch
                    t1 = time.perf_counter()
                    if mode == "state":
                        fb(tables[k], work[k], offsets, port, *outs[k], a.threads, flows[k], now)
                    else:
                        fb(tables[k], work[k], offsets, port, *outs[k], a.threads)
                    times[k].append(time.perf_counter() - t1)
                if len(builds) == 2:
                    same = same and all(np.array_equal(x, y) for x, y in zip(outs["old"], outs["new"])) \
                        and np.array_equal(work["old"], work["new"])
        finally:
            gc.enable()
        print(f"mode {mode}, {a.threads} thread(s), {a.rounds} rounds:")
        if len(builds) == 2:
            print(f"  outputs identical every round: {same}")
            if mode == "state":
                fo, fn = flows["old"].flows(), flows["new"].flows()
                eq = len(fo) == len(fn) and np.array_equal(np.sort(fo, order=list(fo.dtype.names or ())),
                                                           np.sort(fn, order=list(fn.dtype.names or ())))
                print(f"  flow tables equal (every entry): {eq}")
                rc |= not eq
            rc |= not same
        print("\n".join(summary(times, n, indent="  ")), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
