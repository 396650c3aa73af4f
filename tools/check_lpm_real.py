"""Check fastvpc.lpm against pytricia on the real BGP tables in /work/shared/data.

    python tools/check_lpm_real.py [--n 1000000]

For each table (RouteViews 2014, CAIDA pfx2as 2016): build (timed), then compare every answer
with pytricia for n uniformly random and n in-table addresses, with 1 and 2 threads, and after a
pickle round trip.  Exit status 1 on any mismatch, 0 when all agree (tables absent: skipped).
"""

from __future__ import annotations

import argparse
import ipaddress
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _lpm_data as D  # noqa: E402

from fastvpc.lpm import MISS, LpmTable, kernel_variant  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    import pytricia

    bad = 0
    print(f"kernel variant: {kernel_variant()}")
    for path in (D.ROUTEVIEWS_2014, D.CAIDA_2016):
        if not path.exists():
            print(f"{path.name}: absent, skipped")
            continue
        p, ln, v, stats = D.read_table(path)
        t0 = time.perf_counter()
        t = LpmTable.from_arrays(p, ln, v)
        build = time.perf_counter() - t0
        print(f"{path.name}: {p.size} prefixes ({stats}); build {build:.3f} s, {t.kind}, "
              f"lookup structure {t.lookup_nbytes / 2**20:.2f} MiB, with route list {t.nbytes / 2**20:.2f} MiB")
        # the route list kept for routes()/lookup_exact gives back exactly the input
        order = np.lexsort((ln, p))
        rp, rl, rv = t.routes()
        diff = int((rp != p[order]).sum() + (rl != ln[order]).sum() + (rv != v[order]).sum())
        rng = np.random.default_rng(7)
        for i in rng.integers(0, p.size, 2000).tolist():
            diff += t.lookup_exact((int(p[i]), int(ln[i]))) != int(v[i])
        bad += diff
        print(f"  routes() and 2000 lookup_exact against the input: {diff} mismatches")
        pt = pytricia.PyTricia(32)
        for pp, ll, vv in zip(p.tolist(), ln.tolist(), v.tolist()):
            pt.insert(f"{ipaddress.IPv4Address(pp)}/{ll}", vv)
        rng = np.random.default_rng(42)
        sets = {
            "random": rng.integers(0, 1 << 32, args.n, dtype=np.uint64).astype(np.uint32),
            "in-table": D.in_table_addrs(p, ln, args.n, seed=43),
        }
        t2 = pickle.loads(pickle.dumps(t))
        for name, a in sets.items():
            ref = np.fromiter((pt.get(x, MISS) for x in a.tolist()), dtype=np.uint32, count=a.size)
            for label, got in (("1 thread", t.lookup(a, n_threads=1)), ("2 threads", t.lookup(a, n_threads=2)),
                               ("unpickled", t2.lookup(a))):
                diff = int((got != ref).sum())
                bad += diff
                hit = float((ref != MISS).mean())
                print(f"  {name:8s} {a.size} addresses ({hit:.1%} matched), {label}: {diff} mismatches")
                if diff:
                    i = int(np.flatnonzero(got != ref)[0])
                    print(f"    first: {ipaddress.IPv4Address(int(a[i]))} fastvpc={got[i]} pytricia={ref[i]}")
    print("OK" if bad == 0 else f"FAILED: {bad} mismatches")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
