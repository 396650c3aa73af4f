"""iter_pcap(reuse=True): batches over one reused window (the replay reader) give exactly the frames,
timestamps, errors and warnings of the allocating reader, whatever the window and batch sizes.

The oracle for every case is ``iter_pcap`` without ``reuse`` (and ``read_pcap``) on the same file;
the windows are made tiny so that records are cut by a window's end at every possible place."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from fastvpc import _pcapindex as k
from fastvpc import pcap
from fastvpc.batch import FrameBatch
from fastvpc.errors import PcapError
from fastvpc.pcap import PcapTruncatedWarning, iter_pcap, read_pcap, write_pcap


def _frames(n: int, seed: int, big: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 200, n)
    if big:
        lens[rng.integers(0, n, big)] = rng.integers(3000, 9000, big)
    return [bytes(rng.integers(0, 256, int(ln), dtype=np.uint8)) for ln in lens]


def _write(path, frames, *, nanosecond=True, byteorder="little"):
    ts = 1_700_000_000 * 10**9 + np.arange(len(frames), dtype=np.int64) * 1_000_001
    write_pcap(path, FrameBatch.from_frames(frames, port=-1, timestamp=ts), nanosecond=nanosecond,
               byteorder=byteorder)


def _collect(path, reuse, batch_size=65536, on_error="raise"):
    """Frames, timestamps, batch count and warnings of one iteration (copies: batches are reused)."""
    frames, ts, sizes = [], [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for b in iter_pcap(path, batch_size, on_error=on_error, port=7, reuse=reuse):
            assert len(b) <= batch_size and np.all(b.port == 7)
            frames.extend(bytes(f) for f in b)
            ts.extend(b.timestamp.tolist())
            sizes.append(len(b))
    return frames, ts, sizes, [str(w.message) for w in caught]


@pytest.fixture(params=[64, 300, 1 << 20], ids=["window64", "window300", "window1M"])
def window(request, monkeypatch):
    monkeypatch.setattr(pcap, "_REUSE_WINDOW", request.param)
    monkeypatch.setattr(pcap, "_REUSE_WINDOW_MAX", max(request.param, 4096))
    return request.param


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("nanosecond", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_reused_batches_are_the_frames_read_pcap_reads(tmp_path, window, byteorder, nanosecond, batch_size):
    frames = _frames(400, 1, big=3)
    p = tmp_path / "a.pcap"
    _write(p, frames, nanosecond=nanosecond, byteorder=byteorder)
    whole = read_pcap(p)
    got, ts, sizes, warned = _collect(p, True, batch_size)
    assert got == frames and ts == whole.timestamp.tolist() and not warned
    assert sum(sizes) == len(frames)


def test_reused_batches_share_one_buffer(tmp_path):
    p = tmp_path / "a.pcap"
    _write(p, _frames(3000, 2))
    datas = {id(b.data.base if b.data.base is not None else b.data) for b in iter_pcap(p, 500, reuse=True)}
    assert len(datas) == 1


@pytest.mark.parametrize("on_error", ["raise", "stop"])
def test_truncations_and_damage_are_reported_as_without_reuse(tmp_path, window, on_error):
    frames = _frames(60, 3)
    good = tmp_path / "good.pcap"
    _write(good, frames)
    raw = good.read_bytes()
    cases = {f"cut{c}": raw[:c] for c in (24 + 5, 24 + 16 + 3, len(raw) // 2, len(raw) - 1)}
    zero = bytearray(raw)
    struct.pack_into("<I", zero, 24 + 16 + len(frames[0]) + 8, 0)       # second record: caplen 0
    cases["zero"] = bytes(zero)
    huge = bytearray(raw)
    struct.pack_into("<I", huge, 24 + 8, 300000)                        # first record: caplen > snaplen
    cases["snaplen"] = bytes(huge)
    for name, data in cases.items():
        p = tmp_path / f"{name}.pcap"
        p.write_bytes(data)
        results = []
        for reuse in (False, True):
            try:
                got, ts, _sizes, warned = _collect(p, reuse, 7, on_error)   # batch sizes may differ
                results.append(("ok", (got, ts, warned)))
            except PcapError as exc:
                results.append(("error", (str(exc), exc.offset)))
        assert results[0] == results[1], name
        if on_error == "stop":
            assert results[1][0] == "ok" and any("byte offset" in w for w in results[1][1][2]), name
        else:
            assert results[1][0] == "error", name


def test_a_file_that_shrinks_while_read_is_a_pcap_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pcap, "_REUSE_WINDOW", 4096)
    p = tmp_path / "a.pcap"
    _write(p, _frames(2000, 4))
    it = iter_pcap(p, 100, reuse=True)
    next(it)
    with open(p, "r+b") as fh:
        fh.truncate(10000)
    with pytest.raises(PcapError, match="shrank"):
        for _ in it:
            pass


def test_pcapng_and_file_objects_are_read_as_without_reuse(tmp_path):
    frames = _frames(50, 5)
    p = tmp_path / "a.pcap"
    _write(p, frames)
    with open(p, "rb") as fh:
        got = [bytes(f) for b in iter_pcap(fh, 7, reuse=True) for f in b]
    assert got == frames
    # pcapng: one section, one interface, EPBs (ns)
    def block(kind, body):
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, 9) + b"\0" * 4)
    for i, f in enumerate(frames):
        pad = f + b"\0" * (-len(f) % 4)
        out += block(6, struct.pack("<IIIII", 0, 0, i, len(f), len(f)) + pad)
    q = tmp_path / "a.pcapng"
    q.write_bytes(out)
    assert [bytes(f) for b in iter_pcap(q, 7, reuse=True) for f in b] == frames


def test_compact_kernel_refuses_bad_arguments_without_touching_memory():
    buf = np.zeros(64, np.uint8)
    st = np.zeros(k.N_STATE, np.int64)
    offsets = np.zeros(5, np.int64)
    ts = np.zeros(4, np.int64)
    assert k.compact_pcap(buf, 65, offsets, ts, st, False, True, 0) == 0      # end past the buffer
    assert st[k.S_ERR] != k.ERR_NONE
    st[k.S_POS] = 8
    offsets[0] = 9                                                           # destination after the source
    assert k.compact_pcap(buf, 64, offsets, ts, st, False, True, 0) == 0 and st[k.S_ERR] != k.ERR_NONE
    with pytest.raises(ValueError):
        k.compact_pcap(buf, 64, np.zeros(0, np.int64), ts, st, False, True, 0)
    with pytest.raises(ValueError):
        k.compact_pcap(buf, 64, offsets, ts, np.zeros(2, np.int64), False, True, 0)


def test_compact_kernel_moves_frames_over_their_headers():
    frames = [b"A" * 5, b"B" * 17, b"C" * 1, b"D" * 300]
    raw = b"".join(struct.pack("<IIII", 10 + i, 20 + i, len(f), len(f)) + f for i, f in enumerate(frames))
    buf = np.frombuffer(raw + b"\xee" * 10, np.uint8).copy()
    st = np.zeros(k.N_STATE, np.int64)
    offsets = np.zeros(5, np.int64)
    ts = np.zeros(4, np.int64)
    n = k.compact_pcap(buf, len(raw), offsets, ts, st, False, True, 0)
    assert n == 4 and st[k.S_ERR] == k.ERR_NONE and st[k.S_POS] == len(raw)
    assert bytes(buf[:offsets[4]]) == b"".join(frames)
    assert offsets.tolist() == [0, 5, 22, 23, 323]
    assert ts.tolist() == [(10 + i) * 10**9 + 20 + i for i in range(4)]
    assert bytes(buf[len(raw):]) == b"\xee" * 10                              # nothing past `end` touched


def test_a_lying_caplen_is_a_truncation_not_a_huge_buffer(tmp_path, monkeypatch):
    """snaplen 0 (no limit) and a record claiming 4 GB: the same error as without reuse, and the
    window is never sized from the claim."""
    monkeypatch.setattr(pcap, "_REUSE_WINDOW", 256)
    frames = _frames(20, 6)
    good = tmp_path / "good.pcap"
    _write(good, frames)
    raw = bytearray(good.read_bytes())
    struct.pack_into("<I", raw, 16, 0)                                   # header snaplen 0: no limit
    for k in (12, 0):          # after frames were read from its window, and as the window's first record
        _lying(tmp_path, frames, raw, k)


def _lying(tmp_path, frames, raw, k):
    import tracemalloc

    raw = bytearray(raw)
    at = 24 + sum(16 + len(f) for f in frames[:k])
    struct.pack_into("<I", raw, at + 8, 0xFFFFFF00)                      # record k: caplen ~4 GB
    p = tmp_path / "lying.pcap"
    p.write_bytes(bytes(raw))
    with pytest.raises(PcapError) as plain:
        list(iter_pcap(p, 5))
    tracemalloc.start()
    try:
        with pytest.raises(PcapError) as reused:
            for _ in iter_pcap(p, 5, reuse=True):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(reused.value) == str(plain.value) and reused.value.offset == at
    assert "truncated record" in str(reused.value)
    assert peak < 10 << 20
