"""Fixtures shared by the whole suite.

``frames.py`` beside this file (scapy frame builders) is importable as ``frames`` through the
``pythonpath`` setting in pyproject.toml; the fixtures below give every test the built-in seed
network and its compiled snapshot without rebuilding them per test.
"""

from __future__ import annotations

import pytest

import fastvpc as fv
from fastvpc.examples import seed_vpc


@pytest.fixture
def seed_net() -> fv.Network:
    """A fresh copy of the built-in seed network (tests may change it)."""
    return seed_vpc()


@pytest.fixture(scope="session")
def seed_dp() -> fv.Dataplane:
    """The seed network compiled once (a Dataplane is immutable, so sharing it is safe)."""
    return seed_vpc().compile()
