"""The installed package: public names, n_threads resolution, stubs and typing marker."""

from __future__ import annotations

import importlib
import importlib.resources
import pathlib
import sys

import numpy as np
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
    assert _threads.resolve_n_threads(1) == 1
    assert _threads.resolve_n_threads(3) == min(3, cpus)
    assert _threads.resolve_n_threads(-1) == cpus
    assert _threads.resolve_n_threads(-cpus - 5) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.resolve_n_threads(None) == 1


def test_n_threads_is_capped_at_the_cores_and_the_chunks(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = _threads.usable_cpus()
    want = cpus if _omp.openmp_enabled() else 1
    for asked in (cpus + 1, 1000, _threads.MAX_N_THREADS, np.int64(5000)):
        assert _threads.resolve_n_threads(asked) == want, asked
    assert _threads.resolve_n_threads(1000, chunks=1) == 1
    assert _threads.resolve_n_threads(None, chunks=0) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")
    assert _threads.resolve_n_threads(None) == want


@pytest.mark.parametrize("bad", [0, 1.5, "2", True, 2**31, -(2**31), 2**63, 10**30, _threads.MAX_N_THREADS + 1])
def test_n_threads_rejects_nonsense(bad):
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        _threads.resolve_n_threads(bad)


_HUGE_THREADS = """
import sys
import numpy as np
import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.examples import seed_vpc

net = seed_vpc()
dp = net.compile()
w1, web = net.find("web1"), net.find("web")
frame = pk.ethernet(web.gateway_mac, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 1, 443))
batch = fv.FrameBatch.from_frames([frame] * 20000, port=w1.port)
from fastvpc.lpm import LpmTable
t = LpmTable.from_cidrs([("10.0.0.0/8", 1), ("0.0.0.0/0", 2)])
rts = t.route_tables
addrs = np.arange(0, 2**32, 2**32 // 50000, dtype=np.uint64).astype(np.uint32)
calls = {
    "process": lambda n: dp.process(batch, copy=True, n_threads=n).action,
    "classify": lambda n: fv.classify(batch, n_threads=n).ip_dst,
    "LpmTable.lookup": lambda n: t.lookup(addrs, n_threads=n),
    "RouteTables.lookup": lambda n: rts.lookup(np.zeros(addrs.size, np.uint32), addrs, n_threads=n),
}
for name, call in calls.items():
    want = call(1)
    for n in (100000 // 8, 4096, -1):  # far more threads than cores: capped, same answer
        assert np.array_equal(call(n), want), (name, n)
    for n in (2**31, 2**40, -(2**31)):  # absurd: a ValueError naming n_threads, never an abort
        try:
            call(n)
        except ValueError as exc:
            assert "n_threads" in str(exc), (name, n, exc)
        else:
            raise AssertionError(f"{name}: n_threads={n} was accepted")
print("ok")
"""


def test_huge_n_threads_never_kill_the_process():
    """Regression: n_threads=10**5 aborted in libgomp (or SIGSEGV); 2**31 was an OverflowError."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _HUGE_THREADS], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])


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


def _import_in_child(env_extra: dict[str, str]) -> tuple[str, str]:
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    env.update(env_extra, OMP_DISPLAY_ENV="true")
    code = "import os, fastvpc; print(os.environ.get('OMP_WAIT_POLICY'))"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip(), p.stderr


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    """Importing fastvpc sets OMP_WAIT_POLICY=PASSIVE before the OpenMP runtime loads (a spinning
    thread took the core its partner needed on a busy machine); libgomp itself must report it."""
    value, stderr = _import_in_child({})
    assert value == "PASSIVE"
    if _omp.openmp_enabled():
        assert "OMP_WAIT_POLICY = 'PASSIVE'" in stderr, stderr
    value, stderr = _import_in_child({"OMP_WAIT_POLICY": "active"})
    assert value == "active"
    if _omp.openmp_enabled():
        assert "OMP_WAIT_POLICY = 'ACTIVE'" in stderr, stderr
    value, _ = _import_in_child({"GOMP_SPINCOUNT": "1000"})
    assert value == "None"
