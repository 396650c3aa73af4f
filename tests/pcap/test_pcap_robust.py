"""Reading pcaps never dies on a signal and names bad arguments.

Regressions: ``from_pcap``/``read_pcap``/``iter_pcap`` on a text-mode file raised a bare TypeError
(after consuming the stream); a capture truncated by another program while it was being read
(mmapped) killed the reader with SIGBUS.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastvpc as fv
from fastvpc import pcap
from fastvpc.errors import PcapError


def _batch(n=64, size=200):
    frames = [bytes([i % 256]) * size for i in range(n)]
    return fv.FrameBatch.from_frames(frames, port=0)


@pytest.mark.parametrize("reader", ["from_pcap", "read_pcap", "iter_pcap"])
def test_a_text_mode_file_is_refused_naming_it(tmp_path, reader):
    p = tmp_path / "x.pcap"
    _batch(4).to_pcap(p)
    calls = {"from_pcap": fv.FrameBatch.from_pcap, "read_pcap": pcap.read_pcap,
             "iter_pcap": lambda f: list(pcap.iter_pcap(f))}
    for f in (open(p, encoding="latin-1"), io.StringIO("not a capture")):
        with f:
            with pytest.raises(PcapError, match="binary mode") as info:
                calls[reader](f)
            assert isinstance(info.value, ValueError)
            if isinstance(f, io.TextIOWrapper):
                assert str(p) in str(info.value)
                assert f.tell() == 0  # refused before anything was read


SHRINK = textwrap.dedent("""
    import os, sys
    import fastvpc as fv
    from fastvpc import pcap

    path, mode, cut = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pcap._WINDOW = 1 << 16  # read in small windows, so that the file is not read whole at the first step
    full = os.path.getsize(path)

    def shrink():
        os.truncate(path, cut)

    try:
        if mode == "iter":
            n = 0
            for i, b in enumerate(pcap.iter_pcap(path, batch_size=1000)):
                n += len(b)
                if i == 0:
                    shrink()  # another program truncates the capture while it is being read
        else:
            import fastvpc._pcapindex as k
            real = k.index_pcap
            def index_then_shrink(*a, **kw):  # truncate between indexing and the gather
                r = real(*a, **kw)
                shrink()
                return r
            k.index_pcap = index_then_shrink
            pcap.read_pcap(path)
    except pcap.PcapError as exc:
        print("PcapError", exc)
    else:
        print("finished")
""")


@pytest.mark.parametrize("mode", ["iter", "read"])
@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_a_capture_truncated_while_it_is_read_is_a_pcap_error_not_sigbus(tmp_path, mode, keep):
    p = tmp_path / "big.pcap"
    n = 60000
    frames = np.arange(n * 100, dtype=np.uint64).astype(np.uint8)
    fv.FrameBatch(frames, np.arange(0, n * 100 + 1, 100), np.zeros(n, np.int32)).to_pcap(p)
    size = os.path.getsize(p)
    cut = int(size * keep) // 4096 * 4096
    proc = subprocess.run([sys.executable, "-c", SHRINK, str(p), mode, str(cut)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = proc.stdout.strip()
    # what was already read may be delivered, but the damage must be reported, not a signal
    assert out.startswith("PcapError"), out
    assert "truncat" in out or "changed" in out or "shrank" in out, out


def _cases_module():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).with_name("test_pcap.py")
    spec = importlib.util.spec_from_file_location("_pcap_cases", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _outcome(read):
    import warnings

    try:
        b = read("raise")
        got = ("ok", [bytes(f) for f in b], None if b.timestamp is None else b.timestamp.tolist())
    except PcapError as exc:
        got = ("error", str(exc).split(": ", 1)[1], exc.offset)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            s = read("stop")
            stop = [bytes(f) for f in s]
        except PcapError as exc:
            stop = str(exc).split(": ", 1)[1]
    return got, stop


@pytest.mark.parametrize("window", [1, 5, 16, 64, 100, 4096])
def test_reading_through_small_windows_gives_the_same_frames_and_errors(tmp_path, monkeypatch, window):
    """Records and blocks cut by a window's end are read again from the next window: frames, timestamps,
    error messages and offsets are exactly those of reading the whole content at once."""
    m = _cases_module()
    contents = [c[1] for c in m._classic_cases()] + [c[1] for c in m._ng_cases()] + m._valid_files()
    big = fv.FrameBatch.from_frames([bytes([i]) * (50 + i) for i in range(200)], port=0)
    buf = io.BytesIO()
    big.to_pcap(buf)
    contents.append(buf.getvalue())
    for i, content in enumerate(contents):
        p = tmp_path / f"c{i}.{'pcapng' if content[:4] == bytes.fromhex('0a0d0d0a') else 'pcap'}"
        p.write_bytes(content)
        want = _outcome(lambda e: pcap.read_pcap(io.BytesIO(content), on_error=e))
        monkeypatch.setattr(pcap, "_WINDOW", window)
        got = _outcome(lambda e: pcap.read_pcap(p, on_error=e))
        assert got == want, (i, window)
        for bs in (1, 3, 1000):
            chunks = []
            try:
                for b in pcap.iter_pcap(p, batch_size=bs):
                    assert len(b) <= bs
                    chunks.extend(bytes(f) for f in b)
            except PcapError:
                pass
            assert chunks == (want[0][1] if want[0][0] == "ok" else want[1] if isinstance(want[1], list)
                              else chunks), (i, window, bs)
        monkeypatch.setattr(pcap, "_WINDOW", 8 << 20)


def test_a_record_bigger_than_the_window_is_read_whole(tmp_path, monkeypatch):
    frames = [b"\x01" * 9000, b"\x02" * 60, b"\x03" * 70000]
    b = fv.FrameBatch.from_frames(frames, port=0)
    p = tmp_path / "jumbo.pcap"
    b.to_pcap(p)
    monkeypatch.setattr(pcap, "_WINDOW", 256)
    assert [bytes(f) for f in pcap.read_pcap(p)] == frames
    assert [bytes(f) for c in pcap.iter_pcap(p, batch_size=2) for f in c] == frames


def test_a_named_pipe_is_read_whole(tmp_path):
    import threading

    frames = [bytes([i]) * 70 for i in range(50)]
    buf = io.BytesIO()
    fv.FrameBatch.from_frames(frames, port=0).to_pcap(buf)
    fifo = tmp_path / "cap.pcap"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(buf.getvalue()))
    writer.start()
    try:
        got = [bytes(f) for f in pcap.read_pcap(fifo)]
    finally:
        writer.join(timeout=30)
    assert got == frames
