"""Adding a stage means adding a file and two lines (docs/architecture.md, "Adding a stage").

Builds a copy of the installed driver (``forward.pyx``) with one extra stage from a temporary
directory, inserted on the edge local -> route exactly as the docs say (one cimport line and one
call line), and checks that it runs inside the pass: UDP to port 7 is dropped by it, every other
frame's verdict and bytes are those of the installed pass.  Compiling takes a minute or two, so
the test is marked slow (``-m slow``); it needs the repository's sources and Cython.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc._kernels import forward as kf
from fastvpc.verdicts import Action, DropReason

pytestmark = pytest.mark.slow

# the repository's sources (the tests run from a clone, also against an installed wheel), else the
# installed package's directory (an editable install)
SRC = Path(__file__).resolve().parents[2] / "src"
if not (SRC / "fastvpc" / "_kernels" / "forward.pyx").exists():  # pragma: no cover
    SRC = Path(kf.__file__).parent.parent.parent
KERNELS = SRC / "fastvpc" / "_kernels"

STAGE = '''\
# A toy stage for tests/kernels/test_add_stage.py: drops UDP to port 7, passes the rest on.
from fastvpc._kernels.verdicts cimport *
from fastvpc._kernels.headers cimport *
from fastvpc._kernels.tables cimport *
from fastvpc._kernels.pkt cimport *


cdef inline int stage_drop_echo_port(const FwdTables* t, Pkt* p) noexcept nogil:
    if (p.h.proto == IPPROTO_UDP and not (p.h.flags & CF_FRAGMENT) and parse_l4(p.f, &p.h)
            and p.h.dport == 7):
        return drop(p, R_BLACKHOLE)
    return goto(p, NEXT_ROUTE)
'''

BUILD = '''\
import sys
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
ext = Extension("forward", ["forward.pyx"], include_dirs=[np.get_include(), {kernels!r}],
                extra_compile_args=["-O1", "-fno-strict-aliasing"])
setup(ext_modules=cythonize([ext], include_path=[{src!r}, "."], quiet=True,
                            compiler_directives={{"language_level": 3, "boundscheck": False,
                                                 "wraparound": False, "cdivision": True}}),
      script_args=["build_ext", "--inplace", "-q"])
'''


def _with_stage(driver: str) -> str:
    """The driver with the stage added: one cimport line and one call line, nothing else."""
    cimport = "from fastvpc._kernels.stages.rewrite cimport stage_rewrite\n"
    call = "        # branch-free appends: the slot past the end is overwritten later\n"   # loop 1's end: the
    assert driver.count(cimport) == 1 and driver.count(call) == 1, "the driver's stage lines moved: update docs"
    driver = driver.replace(cimport, cimport + "from drop_echo_port cimport stage_drop_echo_port\n")
    # edge to the batch LPM, for every variant (plain, filtered, stateful) and every ingress kind
    return driver.replace(call, "        if nx == NEXT_ROUTE:\n            nx = stage_drop_echo_port(t, p)\n" + call)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory):
    src = KERNELS / "forward.pyx"
    if not src.exists():  # pragma: no cover
        pytest.skip("needs fastvpc's source tree (forward.pyx)")
    pytest.importorskip("Cython", reason="compiling the probe driver needs Cython (a build dependency)")
    d = tmp_path_factory.mktemp("addstage")
    (d / "forward.pyx").write_text(_with_stage(src.read_text()))
    (d / "drop_echo_port.pxd").write_text(STAGE)
    (d / "build.py").write_text(BUILD.format(kernels=str(KERNELS), src=str(SRC)))
    res = subprocess.run([sys.executable, "build.py"], cwd=d, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 0, res.stderr[-4000:]
    so = next(d.glob("forward*.so"))
    name = "addstage_probe.forward"
    loader = importlib.machinery.ExtensionFileLoader(name, str(so))
    spec = importlib.util.spec_from_file_location(name, str(so), loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_a_stage_added_in_its_own_file_runs_in_the_pass(staged) -> None:
    net = fv.examples.seed_vpc()
    w1, w2, a1, web = net.find("web1"), net.find("web2"), net.find("app1"), net.find("web")
    g = web.gateway_mac
    frames = [
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 5, 7)),        # routed, port 7: dropped
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, "8.8.8.8", 5, 7)),    # routed, port 7: dropped
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 5, 53)),       # routed: unchanged
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 1, 7)),    # TCP: unchanged
        pk.ethernet(w2.mac, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, w2.ip, 5, 7)),   # same subnet: no route, unchanged
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, web.router_ip)),
        pk.arp_request(w1.mac, w1.ip, web.router_ip),
        pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp("10.0.1.99", a1.ip, 5, 7)),  # spoofed: ingress drops first
    ]
    batch = fv.FrameBatch.from_frames(frames * 300, port=w1.port)
    dp = net.compile()
    want = dp.process(batch, copy=True)
    out = [np.empty(len(batch), t) for t in (np.uint8, np.uint8, np.int32, np.int32)]
    work = batch.copy()
    staged.forward_batch(staged.Tables(dp._compiled), work.data, work.offsets, work.port, *out, 1)
    port7 = np.tile(np.array([1, 1, 0, 0, 0, 0, 0, 0], bool), 300)
    assert np.all(out[0][port7] == Action.DROP) and np.all(out[1][port7] == DropReason.BLACKHOLE)
    assert np.all(out[2][port7] == -1)
    assert np.all(want.action[port7] != Action.DROP)       # the installed pass delivers/forwards them
    for got, exp in zip(out, (want.action, want.reason, want.egress, want.route)):
        assert np.array_equal(got[~port7], exp[~port7])
    for i in np.flatnonzero(~port7)[:64]:
        assert work.frame(int(i)) == want.frames.frame(int(i))
    for i in np.flatnonzero(port7)[:8]:
        assert work.frame(int(i)) == batch.frame(int(i))    # dropped: untouched
    assert staged.stage_names() == kf.stage_names()          # the STAGES entry is the one edit left
