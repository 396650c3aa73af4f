"""LPM benchmark: fastvpc.lpm against pytricia, py-radix, SubnetTree, numpy searchsorted and a
numpy DIR-24-8, all timed in the same run.

Run:  python -m pytest benchmarks/test_bench_lpm.py --benchmark-only -q -p no:cacheprovider
Each benchmark records ``lookups`` per call and ``Mlookups_s`` (from the median) in extra_info
(see ``--benchmark-json``).  The real-table group needs /work/shared/data (skipped without it);
the VPC groups generate their tables.  Slow pure-Python peers are timed on 100k addresses.
"""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest

import _lpm_data as D  # loaded by benchmarks/conftest.py

from fastvpc.lpm import MISS, LpmTable, RouteTables, _build

N = 1_000_000
N_SLOW = 100_000


def _rate(benchmark, n: int) -> None:
    benchmark.extra_info["lookups"] = n
    benchmark.extra_info["Mlookups_s"] = round(n / benchmark.stats.stats.median / 1e6, 2)


# ---------------------------------------------------------------- peers written here

def dir24_8_build(p: np.ndarray, ln: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DPDK-style DIR-24-8 in numpy: 2**24 first-level entries (64 MiB) + 256-entry /24 groups.

    Entry: bit 31 set -> group index of a /24 with longer prefixes, else the value
    (0x7FFFFFFF = no route; values >= 0x7FFFFFFE are stored as 0x7FFFFFFE, so the check
    below skips those few routes)."""
    v = np.minimum(v, 0x7FFFFFFE).astype(np.uint32)
    tbl24 = np.full(1 << 24, 0x7FFFFFFF, np.uint32)
    order = np.argsort(ln, kind="stable")
    short = order[ln[order] <= 24]
    for s, n, val in zip((p[short] >> 8).tolist(), (1 << (24 - ln[short].astype(np.int64))).tolist(),
                         v[short].tolist()):
        tbl24[s:s + n] = val
    long_ = order[ln[order] > 24]
    blocks = np.unique(p[long_] >> 8)
    tbl8 = np.repeat(tbl24[blocks], 256)
    g = np.searchsorted(blocks, p[long_] >> 8)
    for s, n, val in zip((g * 256 + (p[long_] & 255)).tolist(), (1 << (32 - ln[long_].astype(np.int64))).tolist(),
                         v[long_].tolist()):
        tbl8[s:s + n] = val
    tbl24[blocks] = 0x80000000 | np.arange(blocks.size, dtype=np.uint32)
    return tbl24, tbl8


def dir24_8_lookup(tbl24: np.ndarray, tbl8: np.ndarray, a: np.ndarray) -> np.ndarray:
    e = tbl24[a >> 8]
    ext = e >= 0x80000000
    e[ext] = tbl8[((e[ext] & 0x7FFFFFFF).astype(np.int64) << 8) | (a[ext] & 255)]
    return e


def intervals_of(p: np.ndarray, ln: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ln, p))
    return _build.intervals(np.ascontiguousarray(p[order]), np.ascontiguousarray(ln[order]),
                            np.ascontiguousarray(v[order]))


# ---------------------------------------------------------------- real table (CAIDA 2016, 616k)

@pytest.fixture(scope="module")
def real():
    if not D.CAIDA_2016.exists():
        pytest.skip(f"{D.CAIDA_2016} not present")
    p, ln, v, _ = D.read_table(D.CAIDA_2016)
    a = np.random.default_rng(0).integers(0, 1 << 32, N, dtype=np.uint64).astype(np.uint32)
    t = LpmTable.from_arrays(p, ln, v)
    return {"p": p, "ln": ln, "v": v, "a": a, "t": t, "want": t.lookup(a)}


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fastvpc_real(benchmark, real, n_threads):
    out = np.empty(N, np.uint32)
    benchmark(real["t"].lookup, real["a"], out=out, n_threads=n_threads)
    _rate(benchmark, N)
    benchmark.extra_info["nbytes"] = real["t"].nbytes
    benchmark.extra_info["lookup_nbytes"] = real["t"].lookup_nbytes
    np.testing.assert_array_equal(out, real["want"])


@pytest.mark.benchmark(group="real-616k: build")
def test_fastvpc_real_build(benchmark, real):
    t = benchmark.pedantic(LpmTable.from_arrays, (real["p"], real["ln"], real["v"]), rounds=3, iterations=1)
    assert t.nbytes == real["t"].nbytes


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
def test_numpy_dir24_8_real(benchmark, real):
    tbl24, tbl8 = dir24_8_build(real["p"], real["ln"], real["v"])
    got = benchmark(dir24_8_lookup, tbl24, tbl8, real["a"])
    _rate(benchmark, N)
    benchmark.extra_info["nbytes"] = tbl24.nbytes + tbl8.nbytes
    want = real["want"]
    ok = want < 0x7FFFFFFE
    np.testing.assert_array_equal(np.where(got == 0x7FFFFFFF, MISS, got)[ok], want[ok])


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
def test_numpy_searchsorted_real(benchmark, real):
    starts, vals = intervals_of(real["p"], real["ln"], real["v"])
    got = benchmark(lambda: vals[np.searchsorted(starts, real["a"], side="right") - 1])
    _rate(benchmark, N)
    np.testing.assert_array_equal(got, real["want"])


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
def test_pytricia_real(benchmark, real):
    import pytricia  # peers come with the bench extra: measured in the same run, never skipped

    pt = pytricia.PyTricia(32)
    for p, ln, v in zip(real["p"].tolist(), real["ln"].tolist(), real["v"].tolist()):
        pt.insert(f"{ipaddress.IPv4Address(p)}/{ln}", v)
    keys = real["a"][:N_SLOW].tolist()
    got = benchmark(lambda: [pt.get(k, MISS) for k in keys])
    _rate(benchmark, N_SLOW)
    assert got == real["want"][:N_SLOW].tolist()


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
def test_pyradix_real(benchmark, real):
    import radix

    rt = radix.Radix()
    for p, ln, v in zip(real["p"].tolist(), real["ln"].tolist(), real["v"].tolist()):
        rt.add(network=str(ipaddress.IPv4Address(p)), masklen=ln).data["v"] = v
    keys = [struct.pack("!I", k) for k in real["a"][:N_SLOW].tolist()]

    def run():
        out = []
        for k in keys:
            node = rt.search_best(packed=k)
            out.append(MISS if node is None else node.data["v"])
        return out

    got = benchmark(run)
    _rate(benchmark, N_SLOW)
    assert got == real["want"][:N_SLOW].tolist()


@pytest.mark.benchmark(group="real-616k: 1M uniform random addresses")
def test_subnettree_real(benchmark, real):
    import SubnetTree

    st = SubnetTree.SubnetTree()
    for p, ln, v in zip(real["p"].tolist(), real["ln"].tolist(), real["v"].tolist()):
        st[f"{ipaddress.IPv4Address(p)}/{ln}"] = v
    st.set_binary_lookup_mode(True)
    keys = [struct.pack("!I", k) for k in real["a"][:N_SLOW].tolist()]

    def run():
        out = []
        for k in keys:
            try:
                out.append(st[k])
            except KeyError:
                out.append(MISS)
        return out

    got = benchmark(run)
    _rate(benchmark, N_SLOW)
    assert got == real["want"][:N_SLOW].tolist()


# ---------------------------------------------------------------- many VPC tables

@pytest.fixture(scope="module")
def vpc10k():
    tid, p, ln, v = D.vpc_tables(10_000)
    qt, qa = D.vpc_queries(tid, p, ln, 10_000, N)
    rts = RouteTables.from_arrays(tid, p, ln, v)
    return {"tid": tid, "p": p, "ln": ln, "v": v, "qt": qt, "qa": qa, "rts": rts, "want": rts.lookup(qt, qa)}


@pytest.mark.benchmark(group="vpc: 10,000 tables x 50 routes, 1M random (table, address) pairs")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fastvpc_vpc10k(benchmark, vpc10k, n_threads):
    out = np.empty(N, np.uint32)
    benchmark(vpc10k["rts"].lookup, vpc10k["qt"], vpc10k["qa"], out=out, n_threads=n_threads)
    _rate(benchmark, N)
    benchmark.extra_info["bytes_per_route"] = round(vpc10k["rts"].nbytes / vpc10k["rts"].n_routes, 1)
    np.testing.assert_array_equal(out, vpc10k["want"])


@pytest.mark.benchmark(group="vpc: 10,000 tables x 50 routes, 1M random (table, address) pairs")
def test_numpy_searchsorted_vpc10k(benchmark, vpc10k):
    tid, p, ln, v = vpc10k["tid"], vpc10k["p"], vpc10k["ln"], vpc10k["v"]
    keys, vals = [], []
    starts = np.searchsorted(tid, np.arange(10_001))
    for t in range(10_000):
        s, e = starts[t], starts[t + 1]
        iv, ivv = intervals_of(p[s:e], ln[s:e], v[s:e])
        keys.append((np.uint64(t) << np.uint64(32)) | iv.astype(np.uint64))
        vals.append(ivv)
    k, vv = np.concatenate(keys), np.concatenate(vals)
    q = (vpc10k["qt"].astype(np.uint64) << np.uint64(32)) | vpc10k["qa"].astype(np.uint64)
    got = benchmark(lambda: vv[np.searchsorted(k, q, side="right") - 1])
    _rate(benchmark, N)
    np.testing.assert_array_equal(got, vpc10k["want"])


@pytest.mark.benchmark(group="vpc: replace one 50-route table among 10,000")
@pytest.mark.parametrize("how", ["replace", "replaced"])
def test_fastvpc_replace(benchmark, vpc10k, how):
    rts = RouteTables.from_arrays(vpc10k["tid"], vpc10k["p"], vpc10k["ln"], vpc10k["v"])
    sel = vpc10k["tid"] == 123
    p, ln, v = vpc10k["p"][sel], vpc10k["ln"][sel], vpc10k["v"][sel]
    counter = iter(range(10**9))
    fn = rts.replace if how == "replace" else rts.replaced
    benchmark(lambda: fn(next(counter) % 10_000, p, ln, v))
    benchmark.extra_info["ms_median"] = round(benchmark.stats.stats.median * 1e3, 4)


@pytest.mark.benchmark(group="vpc: 100,000 tables x 50 routes (build; bytes per route)")
def test_fastvpc_vpc100k_build(benchmark):
    tid, p, ln, v = D.vpc_tables(100_000)
    rts = benchmark.pedantic(RouteTables.from_arrays, (tid, p, ln, v), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_route"] = round(rts.nbytes / rts.n_routes, 1)
    benchmark.extra_info["lookup_bytes_per_route"] = round(rts.lookup_nbytes / rts.n_routes, 1)
    assert rts.nbytes / rts.n_routes <= 64
