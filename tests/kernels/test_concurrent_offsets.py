"""Issue 15: another thread rewriting a batch's offsets while process() runs never makes a kernel
read or write outside the batch's buffer (verdicts of such a batch are meaningless; memory is safe).

The kernels read each frame's start and end once and check that span against the buffer inside the
nogil pass; the offsets check before the pass cannot see a writer that starts after it.  The frames
sit right before a PROT_NONE guard page, so a read or write past the buffer faults (the test process
dies) instead of passing silently.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading
import time

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import packets as pk
from fastvpc.dataplane.classify import classify
from fastvpc.errors import FrameBatchError

PAGE = mmap.PAGESIZE


def _guarded(n_bytes: int) -> tuple[mmap.mmap, np.ndarray]:
    """A writeable uint8 array of n_bytes that ends exactly at a PROT_NONE page."""
    pages = (n_bytes + PAGE - 1) // PAGE + 1
    mm = mmap.mmap(-1, pages * PAGE)
    raw = np.frombuffer(mm, dtype=np.uint8)
    guard = raw.ctypes.data + (pages - 1) * PAGE
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        assert libc.mprotect(ctypes.c_void_p(guard), PAGE, 0) == 0
    start = (pages - 1) * PAGE - n_bytes
    return mm, raw[start:start + n_bytes]


def _batch() -> tuple[fv.Dataplane, fv.FrameBatch, mmap.mmap]:
    net = fv.examples.seed_vpc()
    w1, a1, web = net.find("web1"), net.find("app1"), net.find("web")
    g = web.gateway_mac
    frames = [pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.udp(w1.ip, a1.ip, 5, 53)),
              pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.icmp_echo(w1.ip, web.router_ip)),
              pk.arp_request(w1.mac, w1.ip, web.router_ip),
              pk.ethernet(g, w1.mac, pk.ETH_IPV4, pk.tcp(w1.ip, "8.8.8.8", 1, 443))] * 512
    src = fv.FrameBatch.from_frames(frames, port=w1.port)
    mm, data = _guarded(src.data.shape[0])
    data[:] = src.data
    return net.compile(), fv.FrameBatch(data, src.offsets.copy(), src.port.copy()), mm


def _scribble(offsets: np.ndarray, nd: int, stop: threading.Event) -> None:
    rng = np.random.default_rng(15)
    good = offsets.copy()
    while not stop.is_set():
        k = int(rng.integers(1, 64))
        idx = rng.integers(0, offsets.shape[0], size=k)
        offsets[idx] = rng.choice([-(1 << 40), -1, 0, nd - 1, nd, nd + 1, 1 << 40, 1 << 62], size=k) \
            + rng.integers(-3, 4, size=k)
        if rng.integers(4) == 0:
            offsets[:] = good      # and back, so some passes start from offsets that pass the check
            time.sleep(0.0005)     # a window in which a pass can get past the check (then it is scribbled on)
        time.sleep(0)


@pytest.mark.parametrize("kernel", ["forward", "classify"])
def test_offsets_rewritten_during_the_pass_never_leave_the_buffer(kernel: str) -> None:
    dp, batch, _mm = _batch()
    stop = threading.Event()
    writer = threading.Thread(target=_scribble, args=(batch.offsets, batch.data.shape[0], stop), daemon=True)
    writer.start()
    passes = errors = 0
    start = time.perf_counter()
    try:
        # at least 1.5 s of racing and at least 5 passes past the check (the writer's timing varies
        # with the machine's load), but never more than 30 s
        while (time.perf_counter() - start < 1.5 or passes < 5) and time.perf_counter() - start < 30:
            try:
                if kernel == "forward":
                    res = dp.process(batch, n_threads=1)
                    assert len(res) == len(batch)
                else:
                    classify(batch, n_threads=1)
                passes += 1
            except FrameBatchError:
                errors += 1     # the check before the pass saw the writer: a typed error, never a crash
    finally:
        stop.set()
        writer.join()
    assert passes + errors > 10
    assert passes > 0, "no pass ran past the offsets check"
