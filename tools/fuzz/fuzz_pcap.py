"""Fuzz target ``pcap``: pcap/pcapng reading (``fastvpc.pcap``, ``FrameBatch.from_pcap``).

The input is the file.  It is read from a file object and from a real file (the memory-mapped
path), whole (``read_pcap``, ``FrameBatch.from_pcap``) and streamed (``iter_pcap`` with a small
batch size), with ``on_error="raise"`` and ``"stop"``, with and without
``skip_other_linktypes``.  Allowed: a batch, or :class:`fastvpc.PcapError` whose ``offset`` lies
inside the file.  Checked: every reader returns the same frames; ``"stop"`` returns a prefix of
them and raises only for an unsupported linktype; every frame is non-empty and occurs in the
file; writing what was read with ``write_pcap`` and reading it back gives the same frames and
timestamps (microseconds kept for a microsecond write).  Any other exception, a crash (ASan) or
a hang (``-timeout``) is a finding.

    python tools/fuzz/fuzz_pcap.py [libFuzzer options] [corpus dirs]
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Finding, instrumented_import, main  # noqa: E402

fv = instrumented_import()

from fastvpc import pcap  # noqa: E402
from fastvpc.errors import PcapError  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="fastvpc-fuzz-pcap-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
FILE = TMP / "in.pcap"


def _read(fn, *a, **kw):  # type: ignore[no-untyped-def]
    """(frames list, timestamps list) or the PcapError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pcap.PcapTruncatedWarning)
        warnings.simplefilter("ignore", pcap.PcapSkippedWarning)
        try:
            b = fn(*a, **kw)
        except PcapError as exc:
            return exc
    return b


def _frames(b) -> tuple[list[bytes], list[int]]:  # type: ignore[no-untyped-def]
    ts = [] if b.timestamp is None else [int(t) for t in b.timestamp]
    return list(b), ts


def _check_error(exc: PcapError, n: int, what: str) -> None:
    if exc.offset is not None and not 0 <= exc.offset <= n:
        raise Finding(f"{what}: PcapError offset {exc.offset} outside the {n}-byte file: {exc}")


def one_input(data: bytes) -> None:
    FILE.write_bytes(data)
    for skip in (False, True):
        whole = _read(pcap.read_pcap, io.BytesIO(data), skip_other_linktypes=skip)
        mapped = _read(fv.FrameBatch.from_pcap, FILE, skip_other_linktypes=skip)
        stopped = _read(pcap.read_pcap, FILE, on_error="stop", skip_other_linktypes=skip)
        if isinstance(whole, PcapError):
            _check_error(whole, len(data), "read_pcap")
            if not isinstance(mapped, PcapError):
                raise Finding(f"file object raised {whole!r} but the mapped file read {len(mapped)} frames")
            if mapped.offset != whole.offset:
                raise Finding(f"file object and mapped file fail at different offsets: {whole!r} / {mapped!r}")
        else:
            if isinstance(mapped, PcapError):
                raise Finding(f"file object read {len(whole)} frames but the mapped file raised {mapped!r}")
            if _frames(whole) != _frames(mapped):
                raise Finding("file object and mapped file read different frames")
        if isinstance(stopped, PcapError):
            msg = str(stopped)
            if "linktype" not in msg and "FCS" not in msg:
                raise Finding(f"on_error='stop' raised for damage: {stopped!r}")
            _check_error(stopped, len(data), "read_pcap(stop)")
            continue
        sf, sts = _frames(stopped)
        for f in sf:
            if not f or f not in data:
                raise Finding(f"frame {f[:32].hex()}... (len {len(f)}) is empty or not in the file")
        if not isinstance(whole, PcapError):
            if _frames(whole) != (sf, sts):
                raise Finding("on_error='stop' read other frames than a successful read")
        # streaming: concatenated chunks == the whole read (or a prefix when it raises)
        got: list[bytes] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pcap.PcapSkippedWarning)
                for chunk in pcap.iter_pcap(FILE, 3, skip_other_linktypes=skip):
                    got += list(chunk)
        except PcapError as exc:
            _check_error(exc, len(data), "iter_pcap")
            if not isinstance(whole, PcapError):
                raise Finding(f"iter_pcap raised {exc!r} on a file read_pcap reads") from exc
        if got != sf[:len(got)] or (not isinstance(whole, PcapError) and got != sf):
            raise Finding("iter_pcap's chunks are not the frames read_pcap reads")
        # round trip through the writer
        if sf:
            for nsec in (False, True):
                buf = io.BytesIO()
                try:
                    pcap.write_pcap(buf, stopped, nanosecond=nsec)
                except PcapError as exc:
                    if "2106" in str(exc):  # documented: the 32-bit seconds field ends in 2106
                        continue
                    raise
                back = pcap.read_pcap(io.BytesIO(buf.getvalue()))
                bf, bts = _frames(back)
                want_ts = [0 if t < 0 else (t if nsec else t // 1000 * 1000) for t in sts]
                if bf != sf or (sts and bts != want_ts):
                    raise Finding(f"write_pcap(nanosecond={nsec}) then read_pcap changed frames or timestamps")


if __name__ == "__main__":
    main(one_input, [])
