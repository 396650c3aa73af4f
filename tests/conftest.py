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


# --------------------------------------------------------------------------- system tools
#
# Tests that need a program outside Python (tcpdump, tshark, ethtool, ping, arping, dot) or root
# with network namespaces *skip* on a machine without it, naming what is missing, so the README's
# `pip install ".[test]" && python -m pytest` passes with only Python and a compiler.  CI
# (`.ci/run`) installs everything and sets FASTVPC_REQUIRE_ALL=1: then each such skip is a
# failure, so no test is ever silently left out there.
#
#   @pytest.mark.requires_tool("tshark", "tcpdump")   on a test or module (pytestmark; markers in pyproject.toml)
#   require_tool("tshark") -> path                     inside a test or fixture
#   require_root_namespaces()                          root or unprivileged user namespaces

import os  # noqa: E402
import shutil  # noqa: E402

#: Debian/Ubuntu package of each tool, for the skip message.
TOOL_PACKAGES = {"tcpdump": "tcpdump", "tshark": "tshark", "ethtool": "ethtool", "ping": "iputils-ping",
                 "arping": "iputils-arping", "ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux",
                 "setpriv": "util-linux", "dot": "graphviz"}


def require_all() -> bool:
    """Whether FASTVPC_REQUIRE_ALL is set (CI): a missing tool fails instead of skipping."""
    return os.environ.get("FASTVPC_REQUIRE_ALL", "").strip() not in ("", "0")


def missing(what: str) -> None:
    """Skip (or, under FASTVPC_REQUIRE_ALL, fail) saying ``what`` is missing."""
    if require_all():
        pytest.fail(f"FASTVPC_REQUIRE_ALL is set but {what}", pytrace=False)
    pytest.skip(what)


def require_tool(*tools: str) -> str:
    """The path of the first tool; skips/fails naming every one that is not on PATH."""
    absent = [t for t in tools if shutil.which(t) is None]
    if absent:
        pkgs = sorted({TOOL_PACKAGES.get(t, t) for t in absent})
        missing(f"needs {', '.join(absent)} on PATH (Debian/Ubuntu: apt-get install {' '.join(pkgs)})")
    return str(shutil.which(tools[0])) if tools else ""


def require_root_namespaces() -> str:
    """``"netns"`` (root) or ``"userns"``-capable; skips/fails naming what is missing otherwise."""
    from fastvpc.live.netns import LabUnavailable, lab_mode, userns_argv

    mode = lab_mode()
    if mode != "none":
        return mode
    try:
        userns_argv(["true"])
    except LabUnavailable as exc:
        missing(f"needs root or unprivileged user namespaces: {exc}")
    return "userns-available"


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_tool"):
        require_tool(*mark.args)
    if item.get_closest_marker("requires_root") is not None:
        require_root_namespaces()


# --------------------------------------------------------------------------- both engines
#
#   def test_x(any_engine):                       # runs once per engine (fastvpc.testing.ENGINE_NAMES)
#       flows = any_engine.state(capacity=100)     # that engine's kind of table (FlowTable / ReferenceFlowTable)
#       v = any_engine.one(net, frame, eni.port, state=flows, now=t)   # net compiled afresh for the kernel

from fastvpc.testing import ENGINE_NAMES, engine as _engine, run as _run, state_for  # noqa: E402


class EngineRunner:
    """One engine by name, run on a network as it is now (the kernel compiles it at every call, so a
    test may change the topology between calls; a state carries over, as a FlowTable survives a
    recompile)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<engine {self.name}>"

    def forwarder(self, net: fv.Network, arp_mode: str = "target", filters: bool = True) -> object:
        return _engine(net, self.name, arp_mode, filters)

    def state(self, capacity: int = 1_000_000) -> object:
        return state_for(self.name, capacity)

    def run(self, net: fv.Network, items: list[tuple[bytes, int]], *, filters: bool = True, state: object = None,
            now: int | None = None, arp_mode: str = "target") -> list:
        return _run(self.forwarder(net, arp_mode, filters), items, state=state, now=now)  # type: ignore[arg-type]

    def one(self, net: fv.Network, frame: bytes, port: int, **kw: object) -> object:
        return self.run(net, [(frame, port)], **kw)[0]  # type: ignore[arg-type]


@pytest.fixture(params=ENGINE_NAMES)
def any_engine(request: pytest.FixtureRequest) -> EngineRunner:
    """Each engine in turn (the reference forwarder and the compiled kernel)."""
    return EngineRunner(request.param)
