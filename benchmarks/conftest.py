"""Shared fixtures and options of the benchmarks (pytest-benchmark).

Run, from the repository root:

    python -m pytest benchmarks/test_bench_forward.py --benchmark-only -q -p no:cacheprovider
    python -m pytest benchmarks --benchmark-only -q -p no:cacheprovider --no-compare-peers   # fastvpc only

``--compare-peers`` (the default) also runs the peer implementations (pytricia, py-radix,
SubnetTree, numpy searchsorted / DIR-24-8, dpkt, scapy, the reference forwarder) in the same run,
so that BENCHMARKS.md can report ratios from one run, as the project requires; ``--no-compare-peers``
deselects them (not skipped: they are not collected into the run) for a quick A/B of fastvpc alone.
A peer is a benchmark whose name starts with one of ``PEER_PREFIXES``.

The data builders ``_forward_data.py`` and ``_lpm_data.py`` (also used by tools/) are loaded here by
path and registered under their own names, so the benchmark modules import them plainly: the suite
runs with ``--import-mode=importlib``, which puts no test directory on ``sys.path``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).parent
PEER_PREFIXES = ("test_peer_", "test_numpy_", "test_pytricia_", "test_pyradix_", "test_subnettree_",
                 "test_read_dpkt_", "test_read_scapy_", "test_write_dpkt")


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


forward_data = _load("_forward_data")
lpm_data = _load("_lpm_data")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--compare-peers", action=argparse.BooleanOptionalAction, default=True,
                     help="also run the peer implementations in the same run (default: yes)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--compare-peers"):
        return
    keep, peers = [], []
    for item in items:
        (peers if item.name.startswith(PEER_PREFIXES) else keep).append(item)
    if peers:
        config.hook.pytest_deselected(items=peers)
        items[:] = keep


@pytest.fixture(scope="session")
def big() -> Any:
    """The forwarding benchmark topology (4 VPCs, 1,000 subnets/route tables, 100,000 ENIs), built once."""
    b = forward_data.Big()
    print(f"\nbuild times (s): {b.times}")
    gc.collect()
    gc.freeze()  # the 100k-ENI topology is millions of objects: keep full collections out of the timings
    return b


@pytest.fixture(scope="session")
def batch(big: Any) -> Any:
    """65,536 mixed 64-byte frames over ``big`` (see _forward_data.mixed_frames)."""
    return forward_data.mixed_frames(big, 65536, seed=1)
