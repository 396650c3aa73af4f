"""Malformed input never crashes the forwarding kernel nor reads past a frame.

Random bytes, truncations, lying lengths, IHL < 5, options, fragments and zero-length frames
get a consistent verdict.  Frames are also laid out right before a PROT_NONE guard page, so
that any read or write past a frame's end faults.
"""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

import fastvpc.topology as T
from fastvpc.batch import FrameBatch
from fastvpc.dataplane.classify import classify
from fastvpc.verdicts import Action as A
from fastvpc.verdicts import DropReason as R


def build() -> tuple[T.Network, list[T.Eni]]:
    net = T.Network()
    vpc = net.add_vpc("10.0.0.0/16")
    a = vpc.add_subnet("10.0.1.0/24")
    b = vpc.add_subnet("10.0.2.0/24")
    igw = vpc.add_internet_gateway()
    vpc.main_route_table.add_route("0.0.0.0/0", igw)
    vpc.main_route_table.add_route("10.9.0.0/16", T.BLACKHOLE)
    e1 = a.add_eni("10.0.1.10")
    e2 = b.add_eni("10.0.2.10", source_dest_check=False)
    return net, [e1, e2]


def templates(enis: list[T.Eni]) -> list[bytes]:
    out = []
    for e in enis:
        gw = e.subnet.gateway_mac
        src = str(e.ip)
        out += [bytes(p) for p in [
            Ether(src=e.mac, dst=gw) / IP(src=src, dst="10.0.2.10") / UDP() / b"data",
            Ether(src=e.mac, dst=gw) / IP(src=src, dst="8.8.8.8") / TCP() / b"data",
            Ether(src=e.mac, dst=gw) / IP(src=src, dst=str(e.subnet.router_ip)) / ICMP() / b"pingpong",
            Ether(src=e.mac, dst=gw) / IP(src=src, dst=str(e.subnet.router_ip), options=[b"\x01" * 8]) / ICMP(),
            Ether(src=e.mac, dst=gw) / IP(src=src, dst="10.0.1.10", flags="MF") / b"frag",
            Ether(src=e.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=e.mac, psrc=src, pdst="10.0.1.1"),
            Ether(src=e.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=e.mac, psrc=src, pdst="10.0.2.10"),
        ]]
    return out


def fuzz_frames(tmpl: list[bytes], n: int, rng: np.random.Generator) -> list[bytes]:
    frames = []
    for _ in range(n):
        k = rng.integers(6)
        f = bytearray(tmpl[rng.integers(len(tmpl))])
        if k == 0:  # random bytes, ethertype forced half the time
            f = bytearray(rng.integers(0, 256, size=int(rng.integers(0, 80)), dtype=np.uint8).tobytes())
            if len(f) >= 14 and rng.integers(2):
                f[12:14] = b"\x08\x00" if rng.integers(2) else b"\x08\x06"
        elif k == 1:  # truncation
            f = f[:int(rng.integers(len(f) + 1))]
        elif k == 2:  # lying total length
            f[16:18] = int(rng.integers(0, 65536)).to_bytes(2, "big")
        elif k == 3:  # IHL (and version) mangled
            f[14] = int(rng.integers(256)) if rng.integers(2) else 0x40 | int(rng.integers(16))
        elif k == 4:  # random byte flips in the headers
            for _ in range(int(rng.integers(1, 5))):
                f[int(rng.integers(min(len(f), 64)))] = int(rng.integers(256))
        frames.append(bytes(f))
    return frames


def check_invariants(batch_in: FrameBatch, res, ports: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    act, why, eg, rt = res.action, res.reason, res.egress, res.route
    assert set(np.unique(act)) <= {int(a) for a in A}
    assert set(np.unique(why)) <= {int(r) for r in R}
    drop = act == A.DROP
    assert np.array_equal(drop, eg == -1)
    assert np.array_equal(drop, why != R.NONE)
    assert np.all(eg[act == A.REPLY] == ports[act == A.REPLY])
    assert np.all(rt[act == A.REPLY] == -1)
    assert np.all(rt >= -1)
    for i in range(len(batch_in)):
        a, b = batch_in.frame(i), res.frames.frame(i)
        assert len(a) == len(b)
        if act[i] in (A.DROP, A.FORWARD):
            assert a == b
        elif act[i] == A.DELIVER:
            assert a[12:] == b[12:]


def test_fuzz_process() -> None:
    net, enis = build()
    dp = net.compile()
    rng = np.random.default_rng(2024)
    tmpl = templates(enis)
    ports_choice = np.array([e.port for e in enis] + [-1, 9999], dtype=np.int32)
    for _ in range(3):
        frames = fuzz_frames(tmpl, 4000, rng)
        ports = ports_choice[rng.integers(0, len(ports_choice), size=len(frames))]
        ports = np.where(rng.integers(0, 10, size=len(frames)) < 8, ports % 2, ports).astype(np.int32)
        ports = np.where(ports >= 0, np.array([e.port for e in enis])[np.abs(ports) % 2], ports).astype(np.int32)
        b = FrameBatch.from_frames(frames, port=ports)
        res = dp.process(b, copy=True, n_threads=2)
        check_invariants(b, res, ports)
        c = classify(b)
        assert len(c.flags) == len(frames)


def test_zero_length_and_tiny_frames() -> None:
    net, enis = build()
    dp = net.compile()
    frames = [b""] * 5 + [b"\x08"] * 3 + [bytes(13), bytes(14)]
    b = FrameBatch.from_frames(frames, port=enis[0].port)
    res = dp.process(b)
    assert np.all(res.action == A.DROP)
    assert list(res.reason[:-1]) == [R.MALFORMED] * 9
    assert res.reason[-1] == R.NON_IPV4  # ethertype 0x0000


class Guarded:
    """Frames each followed by a PROT_NONE page: frame i ends at a page boundary."""

    def __init__(self, frames: list[bytes], ports: list[int]) -> None:
        page = mmap.PAGESIZE
        assert all(len(f) <= page for f in frames)
        n = len(frames)
        self.mm = mmap.mmap(-1, 2 * n * page + page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        buf = np.frombuffer(self.mm, dtype=np.uint8)
        base = buf.ctypes.data
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        offs, prt = [0], []
        for i, f in enumerate(frames):
            end = (2 * i + 1) * page
            start = end - len(f)
            buf[start:end] = np.frombuffer(f, dtype=np.uint8)
            if start > offs[-1]:  # gap frame from the previous end to this start, on an unknown port
                offs.append(start)
                prt.append(-1)
            offs.append(end)
            prt.append(ports[i])
            assert libc.mprotect(base + end, page, 0) == 0  # PROT_NONE
        # the gap frames (port -1) span guard pages: never read, since the port check comes first
        self.batch = FrameBatch(buf, np.array(offs, dtype=np.int64), np.array(prt, dtype=np.int32))
        self.real = np.array(prt) != -1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect guard pages via libc: Linux only")
@pytest.mark.parametrize("seed", [1, 2])
def test_guard_pages(seed: int) -> None:
    net, enis = build()
    dp = net.compile()
    rng = np.random.default_rng(seed)
    frames = fuzz_frames(templates(enis), 600, rng)
    # every prefix length of every template too: reads stop exactly at the frame's end
    for t in templates(enis):
        frames += [t[:k] for k in range(0, len(t) + 1, 3)]
    ports = [enis[int(rng.integers(2))].port for _ in frames]
    g = Guarded(frames, ports)
    res = dp.process(g.batch, n_threads=1)
    assert np.all(res.reason[~g.real] == R.UNKNOWN_PORT)
    assert np.count_nonzero(g.real) == len(frames)
    g2 = Guarded(frames, ports)
    res2 = dp.process(g2.batch, n_threads=2)
    assert np.array_equal(res.action, res2.action) and np.array_equal(res.reason, res2.reason)
