"""The README's setup: tool requirements skip (or fail in CI), PyYAML is there, python -m fastvpc."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import require_tool


def test_missing_tool_skips_naming_it(monkeypatch):
    monkeypatch.delenv("FASTVPC_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="fastvpc-no-such-tool"):
        require_tool("fastvpc-no-such-tool")


def test_missing_tool_fails_under_require_all(monkeypatch):
    monkeypatch.setenv("FASTVPC_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="fastvpc-no-such-tool"):
        require_tool("fastvpc-no-such-tool")


def test_present_tool_gives_its_path():
    assert require_tool("sh").endswith("/sh")


def test_yaml_is_a_dependency(tmp_path):
    import yaml  # noqa: F401  (a runtime dependency since the README's first command)

    from fastvpc.examples import seed_vpc
    from fastvpc.files import load

    seed_vpc().save(tmp_path / "t.yaml")
    assert {s.name for s in load(tmp_path / "t.yaml").subnets} == {"web", "app", "db"}


def test_python_dash_m_fastvpc():
    res = subprocess.run([sys.executable, "-m", "fastvpc", "show", "seed"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "web" in res.stdout and "rt-web" in res.stdout
