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
