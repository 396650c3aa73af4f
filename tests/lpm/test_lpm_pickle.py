"""Packed LPM tables survive pickling and multiprocessing in every shape.

Regression: ``_check_poptrie`` parsed ``o_dp + 4 << 18`` as ``(o_dp + 4) << 18``, so any poptrie
table not at the very start of the pool was refused on unpickle ("arrays out of order"), and a
Dataplane holding one could not be sent to a worker process.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest

import fastvpc as fv
from fastvpc.lpm import LpmTable, RouteTables
from fastvpc.errors import LpmError


def _routes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ln = rng.integers(8, 33, n).astype(np.uint8)
    p = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    p &= ((0xFFFFFFFF << (32 - ln.astype(np.uint64))) & 0xFFFFFFFF).astype(np.uint32)
    key = p.astype(np.uint64) << np.uint64(8) | ln
    _, keep = np.unique(key, return_index=True)
    return p[keep], ln[keep], np.arange(keep.size, dtype=np.uint32)


def _tables(shape: str) -> RouteTables:
    rng = np.random.default_rng(7)
    kinds = {"btree": ["btree"] * 3, "poptrie": ["poptrie"], "mixed": ["btree", "poptrie", "btree", "poptrie"],
             "many-poptries": ["poptrie"] * 6, "empty-first": ["empty", "poptrie", "btree"]}[shape]
    tid, pfx, ln, val, structure = [], [], [], [], []
    for t, kind in enumerate(kinds):
        if kind == "empty":
            continue
        p, n, v = _routes(rng, 300)
        tid.append(np.full(p.size, t, np.uint32))
        pfx.append(p)
        ln.append(n)
        val.append(v)
        structure.append(kind)
    rts = RouteTables.from_arrays(np.concatenate(tid), np.concatenate(pfx), np.concatenate(ln),
                                  np.concatenate(val), n_tables=len(kinds), structure="btree")
    for t, kind in enumerate(kinds):  # rebuild the poptrie ones in place: they land after the others
        if kind == "poptrie":
            p, n, v = rts.routes(t)
            rts.replace(t, p, n, v, structure="poptrie")
    for t, kind in enumerate(kinds):
        assert rts.table_kind(t) == kind
    return rts


def _queries(rts: RouteTables) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    n = 20000
    return (rng.integers(0, len(rts) + 1, n).astype(np.uint32),
            rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32))


SHAPES = ["btree", "poptrie", "mixed", "many-poptries", "empty-first"]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_table_shape_round_trips_through_pickle_and_npz(shape, tmp_path):
    rts = _tables(shape)
    qt, qa = _queries(rts)
    want = rts.lookup(qt, qa)
    for copy in (pickle.loads(pickle.dumps(rts)), RouteTables.from_packed(**rts.arrays()),
                 pickle.loads(pickle.dumps(rts.frozen()))):
        np.testing.assert_array_equal(copy.lookup(qt, qa), want)
        assert [copy.table_kind(t) for t in range(len(rts))] == [rts.table_kind(t) for t in range(len(rts))]
    rts.save(tmp_path / "t.npz")
    np.testing.assert_array_equal(RouteTables.load(tmp_path / "t.npz").lookup(qt, qa), want)


def test_a_poptrie_lpmtable_after_another_region_round_trips():
    rts = _tables("mixed")
    p, n, v = rts.routes(1)
    t = LpmTable.from_arrays(p, n, v, structure="poptrie")
    a = t.arrays()
    # move the table's region away from offset 0, as a shared pool places it
    data = np.concatenate([np.zeros(128, np.uint8), a["data"]])
    meta = a["meta"].copy()
    meta[0, 0] += 128
    meta[0, 3] += 128
    header = a["header"].copy()
    header[0, 1:5] += 2
    moved = LpmTable.from_packed(header, meta, data)
    addrs = _queries(rts)[1]
    np.testing.assert_array_equal(moved.lookup(addrs), t.lookup(addrs))


def _worker_lookup(obj, qt, qa):
    if isinstance(obj, RouteTables):
        return obj.lookup(qt, qa)
    batch = qt
    res = obj.process(batch, copy=True)
    return np.stack([res.action.astype(np.int64), res.reason, res.egress, res.route])


def _poptrie_dataplane() -> tuple[fv.Dataplane, fv.FrameBatch]:
    from fastvpc import packets as pk

    net = fv.examples.seed_vpc()
    dp0 = net.compile()
    lpm = dp0.lpm
    for t in range(len(lpm)):
        lpm = lpm.replaced(t, *lpm.routes(t), structure="poptrie")
    state = dp0.__reduce__()[1][0]
    state = {k: v for k, v in state.items() if k != "digest"}
    state["lpm"] = lpm.frozen()
    from fastvpc.dataplane import _rebuild

    dp = _rebuild(state)
    assert all(dp.lpm.table_kind(t) == "poptrie" for t in range(len(dp.lpm)))
    w1, web = net.find("web1"), net.find("web")
    frames = [pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, dst, 1, 443))
              for dst in ("8.8.8.8", "10.0.2.10", "10.0.1.99", "172.16.0.1")]
    return dp, fv.FrameBatch.from_frames(frames * 8, port=w1.port)


@pytest.mark.parametrize("what", ["route-tables", "dataplane"])
def test_poptrie_tables_reach_a_multiprocessing_worker(what):
    if what == "route-tables":
        obj = _tables("many-poptries")
        qt, qa = _queries(obj)
        want = obj.lookup(qt, qa)
        args = (obj, qt, qa)
    else:
        obj, batch = _poptrie_dataplane()
        want = _worker_lookup(obj, batch, None)
        args = (obj, batch, None)
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_worker_lookup, args).get(timeout=120)
    np.testing.assert_array_equal(got, want)


def test_route_count_that_wraps_the_size_check_is_refused():
    """fuzz finding P1: a route count near 2**61 made ``4 * n`` wrap in int64, so the damaged
    list passed the region check and the load failed later with a bare IndexError."""
    rng = np.random.default_rng(3)
    pfx = np.unique(rng.integers(0, 1 << 24, 400, dtype=np.uint64).astype(np.uint32) << np.uint32(8))
    t = LpmTable.from_arrays(pfx, np.full(pfx.size, 24, np.uint8), np.arange(pfx.size, dtype=np.uint32),
                             structure="poptrie")
    a = {k: np.array(v) for k, v in t.arrays().items()}
    a["meta"][0, 2] += np.int64(0x1817161400000000)
    with pytest.raises(LpmError, match="route count"):
        LpmTable.from_packed(a["header"], a["meta"], a["data"])
