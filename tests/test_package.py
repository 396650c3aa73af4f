"""The installed package: public names, n_threads resolution, stubs and typing marker."""

from __future__ import annotations

import importlib
import importlib.resources
import pathlib

import pytest

import fastvpc
from fastvpc import _threads
from fastvpc._kernels import _omp


def test_n_threads_resolves_like_scikit_learn(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = _threads.usable_cpus()
    if not _omp.openmp_enabled():
        assert _threads.resolve_n_threads(None) == 1
        return
    assert _threads.resolve_n_threads(None) == cpus
    assert _threads.resolve_n_threads(3) == 3
    assert _threads.resolve_n_threads(-1) == cpus
    assert _threads.resolve_n_threads(-cpus - 5) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.resolve_n_threads(None) == 1


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_n_threads_rejects_nonsense(bad):
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        _threads.resolve_n_threads(bad)


def test_every_compiled_module_has_a_stub_and_py_typed_ships():
    root = pathlib.Path(fastvpc.__file__).parent
    assert (root / "py.typed").exists()
    compiled = [p for p in root.rglob("*.so")]
    assert compiled, "no compiled modules installed"
    for so in compiled:
        stub = so.parent / (so.name.split(".")[0] + ".pyi")
        assert stub.exists(), f"{so.name} has no .pyi stub"


def test_public_names_exist():
    for name in fastvpc.__all__:
        assert hasattr(fastvpc, name), name


# Every import path named in DESIGN.md and the README (and kept as a face after the packages
# moved by layer) must keep working from an installed package.
PUBLIC_PATHS = [
    "fastvpc", "fastvpc.topology", "fastvpc.files", "fastvpc.aws", "fastvpc.compiler",
    "fastvpc.dataplane", "fastvpc.dataplane.classify", "fastvpc.classification", "fastvpc.batch",
    "fastvpc.pcap", "fastvpc.packets", "fastvpc.reference", "fastvpc.trace", "fastvpc.replay",
    "fastvpc.drivers.replay", "fastvpc.lpm", "fastvpc.live", "fastvpc.live.netns", "fastvpc.cli",
    "fastvpc.verdicts", "fastvpc.errors", "fastvpc.examples",
]


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_import_path_works(path):
    mod = importlib.import_module(path)
    assert mod.__name__ == path


def test_moved_paths_are_the_same_objects():
    from fastvpc import classification, replay
    from fastvpc.dataplane import classify as dclassify
    from fastvpc.drivers import replay as dreplay

    assert classification.classify is dclassify.classify is fastvpc.classify
    assert replay.replay is dreplay.replay
    assert fastvpc.aws.from_aws is fastvpc.from_aws


def test_python_dash_m_fastvpc_runs_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fastvpc", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith("fastvpc ")
