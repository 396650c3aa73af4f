"""The numbers compiled into the kernels (types.pxd) match fastvpc.verdicts and compiler.py."""

from __future__ import annotations

import re

import numpy as np

from fastvpc import compiler
from fastvpc._kernels import classify as kc
from fastvpc._kernels import forward as kf
from fastvpc.verdicts import Action, DropReason




def test_actions_match() -> None:
    c = kc._constants()
    compiled = {k[4:]: v for k, v in c.items() if k.startswith("ACT_")}
    assert compiled == {a.name: a.value for a in Action}


def test_reasons_match() -> None:
    c = kc._constants()
    compiled = {k[2:]: v for k, v in c.items() if re.match(r"R_[A-Z]", k)}
    assert compiled == {r.name: r.value for r in DropReason}


def test_route_kinds_and_records_match_compiler() -> None:
    c = kc._constants()
    assert [c[f"RK_{n.upper()}"] for n in compiler.ROUTE_KIND_NAMES] == [
        compiler.ROUTE_LOCAL, compiler.ROUTE_ENI, compiler.ROUTE_PEERING, compiler.ROUTE_FORWARD,
        compiler.ROUTE_BLACKHOLE]
    assert kf.record_sizes() == (compiler.ENI_DTYPE.itemsize, compiler.SUBNET_DTYPE.itemsize,
                                 compiler.ROUTE_DTYPE.itemsize)
    assert (c["HK_IP"], c["HK_MAC"], c["HK_PORT"]) == (compiler._HK_IP, compiler._HK_MAC, compiler._HK_PORT)
    assert (c["HV_ENI"], c["HV_ROUTER"], c["HV_BCAST"], c["HV_GWMAC"]) == (
        compiler._HV_ENI, compiler._HV_ROUTER, compiler._HV_BCAST, compiler._HV_GWMAC)


def test_build_hash() -> None:
    rng = np.random.default_rng(3)
    keys = np.unique(rng.integers(0, 2**62, size=5000, dtype=np.uint64))
    vals = rng.integers(0, 2**30, size=keys.size, dtype=np.uint32)
    ht = kf.build_hash(keys, vals)
    assert isinstance(ht, np.ndarray) and ht.size >= 4 * keys.size
    assert (ht.size // 2) & (ht.size // 2 - 1) == 0
    stored = {int(ht[2 * i]): int(ht[2 * i + 1]) for i in range(ht.size // 2) if ht[2 * i] != 2**64 - 1}
    assert stored == dict(zip(keys.tolist(), vals.tolist()))
    dup = kf.build_hash(np.array([5, 7, 5], np.uint64), np.array([1, 2, 3], np.uint32))
    assert dup == 2
    empty = kf.build_hash(np.zeros(0, np.uint64), np.zeros(0, np.uint32))
    assert isinstance(empty, np.ndarray) and empty.size == 4
