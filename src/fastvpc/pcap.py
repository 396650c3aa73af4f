"""Read pcap / pcapng files into FrameBatches and write FrameBatches as pcap.

Reading
-------
:func:`read_pcap` (also ``FrameBatch.from_pcap``) and the streaming :func:`iter_pcap`
accept

* classic pcap in either byte order, with microsecond (``0xa1b2c3d4``) or nanosecond
  (``0xa1b23c4d``) timestamps;
* pcapng: any number of sections in either byte order; Interface Description Blocks
  (linktype, snaplen, ``if_tsresol`` both decimal and power-of-two, ``if_tsoffset``);
  Enhanced Packet Blocks, Simple Packet Blocks and the obsolete Packet Block; every other
  block type is skipped by its length.

Timestamps become ``int64`` nanoseconds since the epoch.  A Simple Packet Block carries
no timestamp: its frame gets ``-1``.  Power-of-two resolutions finer than 2^-33 s lose
their lowest bits.  A pcap has no ingress port: every frame gets ``port`` (default -1;
mapping frames to ENIs is the replay code's job).

The file is read with ``pread`` through an 8 MiB window (never memory-mapped: a capture that
another program truncates while it is read then ends in :class:`PcapError`, not SIGBUS) and
each window's records are indexed by a compiled pass (:mod:`fastvpc._pcapindex`) that writes
offsets, lengths and timestamps into numpy arrays; the frames are then copied into the batch's
buffer with one compiled gather.  No Python code runs per packet.  ``iter_pcap(reuse=True)``
(replay's reader) goes further for a classic pcap: one reused 1 MiB window whose records are
indexed and compacted in place in one compiled pass (:func:`fastvpc._pcapindex.compact_pcap`),
each batch a view of that window.

Only Ethernet (``LINKTYPE_ETHERNET`` = 1, without FCS) frames are accepted.  A file or
interface with another linktype raises :class:`PcapError` naming it, whatever
``on_error`` says (it is an unsupported file, not a damaged one), unless
``skip_other_linktypes=True``: then those packets are skipped, counted, and one
:class:`PcapSkippedWarning` gives the count.

Damaged files — bad magic, truncated header or record, caplen larger than the snaplen or
than the bytes left, zero-length records, pcapng block lengths that are not a multiple
of 4 or disagree with the trailing copy, options running past their block, unknown
interface ids, garbage — raise :class:`PcapError` (a ``ValueError``) whose message and
``.offset`` give the byte offset of the bad header/record/block.  With
``on_error="stop"`` the frames read before the damage are returned instead and a
:class:`PcapTruncatedWarning` names the offset.

Chunks: scan once, resume anywhere
----------------------------------
For readers that split a capture between processes or machines (the sharded replay,
``fastvpc.drivers.sharded``): :func:`check_pcap` refuses a file that is no capture from its header
alone; :func:`scan_pcap` indexes a named file once, copying no frame, into :class:`PcapChunk` s of
``chunk_frames`` records (where each starts and the reader's state there, pcapng interfaces
included; small to pickle), with damage raised or, with ``on_error="stop"``, the chunks cut where it
starts and the warning's text returned in :class:`PcapScan`; :func:`iter_pcap_chunk` reads one
chunk's frames again, in any process, exactly as :func:`iter_pcap` reads them there (``reuse=True``:
through the same reused window).

Writing
-------
:func:`write_pcap` (also ``batch.to_pcap``) and :class:`PcapWriter` write classic pcap,
little-endian by default (``byteorder="big"`` for the other), microsecond or nanosecond
magic.  Frames longer than ``snaplen`` are cut to it (the record's original length keeps
the frame's length).  Timestamps: a batch without them, or a negative timestamp (-1,
unknown), is written as 0; microsecond files truncate the nanoseconds; a timestamp past
2106-02-07 (the 32-bit seconds field) raises :class:`PcapError`.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, cast

import numpy as np
import numpy.typing as npt

from fastvpc import _pcapindex as _k
from fastvpc._batchops import gather_spans
from fastvpc.batch import FrameBatch
from fastvpc.errors import PcapError

__all__ = [
    "PcapError",
    "PcapSkippedWarning",
    "PcapTruncatedWarning",
    "PcapChunk",
    "PcapScan",
    "PcapWriter",
    "check_pcap",
    "iter_pcap",
    "iter_pcap_chunk",
    "read_pcap",
    "scan_pcap",
    "write_pcap",
    "LINKTYPE_ETHERNET",
]

OnError = Literal["raise", "stop"]

LINKTYPE_ETHERNET = 1
MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A

_LINKTYPE_NAMES = {0: "NULL", 1: "ETHERNET", 101: "RAW", 105: "IEEE802_11", 113: "LINUX_SLL",
                   127: "IEEE802_11_RADIOTAP", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}


class PcapTruncatedWarning(UserWarning):
    """A damaged pcap was read up to the damage (``on_error="stop"``); names the byte offset."""


class PcapSkippedWarning(UserWarning):
    """Packets on non-Ethernet links were skipped (``skip_other_linktypes=True``)."""


def _linktype_name(lt: int) -> str:
    return f"{lt} (LINKTYPE_{_LINKTYPE_NAMES[lt]})" if lt in _LINKTYPE_NAMES else str(lt)


# --------------------------------------------------------------------------- the source

#: Bytes read from a file at a time.  The file is read with pread into this private window, never
#: memory-mapped: a capture truncated by another program while it is read would turn every later
#: access to a mapped page into SIGBUS; with a window it becomes a short read and a PcapError.
_WINDOW = 8 << 20
#: A window read into a batch's own buffer (no second copy) must hold at least this much, else the
#: private window is used: many tiny reads at the end of each batch would cost more than the copy.
_MIN_SINK_READ = 256 << 10


def _pread_into(fd: int, view: memoryview, pos: int) -> int:
    """Read into ``view`` from file offset ``pos``; returns the bytes read (0 at the end of the file)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], pos)
    chunk = os.pread(fd, len(view), pos)  # pragma: no cover - platforms without preadv
    view[:len(chunk)] = chunk
    return len(chunk)


class _Source:
    """The file's bytes, seen through a window (``buf`` = file bytes ``[base, base + buf.size)``).

    A named file is read window by window with ``pread`` and is taken as it was when opened (its size
    then is ``size``); if it shrinks while it is read, :meth:`fill` raises PcapError.  A binary file
    object is read whole into one window.
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, window: int | None = None) -> None:
        self._fd: int | None = None
        self.base = 0
        #: when set (read_pcap), windows are read straight into this buffer at ``sink.used``, where the
        #: window's frames are then compacted in place: one copy per byte, like gathering from a mapping
        self.sink: _Gather | None = None
        self.buf: npt.NDArray[np.uint8]
        if isinstance(path, (str, os.PathLike)):
            self.name = os.fspath(path)
            self._fd = os.open(self.name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                st = os.fstat(self._fd)
                if not stat.S_ISREG(st.st_mode):  # a pipe or a device (/dev/stdin): read it whole, once
                    chunks = []
                    while chunk := os.read(self._fd, 1 << 20):
                        chunks.append(chunk)
                    os.close(self._fd)
                    self._fd = None
                    self.buf = np.frombuffer(b"".join(chunks), dtype=np.uint8)
                    self.size = int(self.buf.size)
                    return
                self.size = st.st_size
                self._win = np.empty(max(1, min(window or _WINDOW, self.size)), np.uint8)
                self.buf = self._win[:0]
                self.fill(0, 64)  # the file header is read from the first window
            except BaseException:
                self.close()
                raise
        else:
            self.name = str(getattr(path, "name", "<stream>"))
            if isinstance(path, io.TextIOBase):  # refused before anything is read from it
                raise PcapError(f"{self.name}: the file object must be opened in binary mode ('rb'), "
                                "not text mode", path=self.name)
            raw = path.read()
            if not isinstance(raw, (bytes, bytearray, memoryview)):
                raise PcapError(f"{self.name}: the file object must be opened in binary mode ('rb'): its "
                                f"read() gave {type(raw).__name__}, not bytes", path=self.name)
            self.buf = np.frombuffer(raw, dtype=np.uint8)
            self.size = int(self.buf.size)

    @property
    def named(self) -> bool:
        """Whether this is a named regular file (read window by window with pread)."""
        return self._fd is not None

    @property
    def end(self) -> int:
        """File offset just past the window."""
        return self.base + int(self.buf.size)

    def fill(self, pos: int, need: int = 0) -> None:
        """Move the window to start at file offset ``pos`` with at least ``need`` bytes (as many as the
        file has).  Refuses with PcapError when the file has shrunk since it was opened."""
        if self._fd is None:  # a file object: the window is the whole content
            return
        want = min(max(self._win.size, need), max(self.size - pos, 0))
        sink = self.sink
        room = sink.data.size - sink.used if sink is not None and sink.data is not None else 0
        if sink is not None and sink.data is not None and want and (room >= want or room >= max(need, _MIN_SINK_READ)):
            # straight into the batch's buffer, after the frames gathered so far (which are fewer bytes
            # than the records they came from, so the in-place gather only ever moves frames down)
            want = min(want, room)
            win = sink.data[sink.used:sink.used + want]
        else:
            if want > self._win.size:
                self._win = np.empty(want, np.uint8)
            win = self._win
        self.read_exact(win[:want], pos)
        self.base = pos
        self.buf = win[:want]

    def read_exact(self, into: npt.NDArray[np.uint8], pos: int) -> None:
        """Fill ``into`` with the file's bytes from offset ``pos`` (a named file only).  Refuses with
        PcapError when the file has shrunk since it was opened."""
        assert self._fd is not None
        want = int(into.size)
        got = 0
        view = memoryview(into)  # type: ignore[arg-type]
        while got < want:
            n = _pread_into(self._fd, view[got:want], pos + got)
            if n <= 0:
                now = os.fstat(self._fd).st_size
                raise PcapError(f"{self.name}: the file shrank from {self.size} to {now} bytes while it was "
                                f"being read (truncated at byte offset {pos + got} by another program?)",
                                offset=pos + got, path=self.name)
            got += n

    def close(self) -> None:
        self.buf = np.zeros(0, np.uint8)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------- the indexer

class _Index:
    """Walks a source window by window with the compiled indexers; keeps format state.

    The kernels see the window; ``state[S_POS]`` and every offset they report are relative to it
    (``src.base`` away from the file's).  A record cut by the window's end is read again at the start
    of the next window; one cut by the file's end is the truncation it looks like.
    """

    def __init__(self, src: _Source, skip_other: bool) -> None:
        self.src = src
        self.size = int(src.size)
        self.skip_other = skip_other
        self.state = np.zeros(_k.N_STATE, dtype=np.int64)
        self.ifaces = np.zeros((8, _k.N_IFCOL), dtype=np.int64)
        self.error: PcapError | None = None
        self.linktype_error = False
        self.done = False
        self.kind = ""
        self.big_endian = False
        self.nanosecond = False
        self.snaplen = 0
        self._header()

    @property
    def buf(self) -> npt.NDArray[np.uint8]:
        return self.src.buf

    def _fail(self, msg: str, offset: int, *, linktype: bool = False) -> None:
        self.error = PcapError(f"{self.src.name}: {msg}", offset=offset, path=self.src.name)
        self.linktype_error = linktype
        self.done = True

    def _header(self) -> None:
        b = self.buf
        if self.size < 4:
            self._fail(f"truncated file header at byte offset 0: {self.size} bytes, "
                       "not a pcap or pcapng file", 0)
            return
        head = bytes(b[:4])
        if int.from_bytes(head, "little") == PCAPNG_SHB:
            self.kind = "pcapng"
            return
        le, be = int.from_bytes(head, "little"), int.from_bytes(head, "big")
        if le in (MAGIC_USEC, MAGIC_NSEC):
            self.big_endian, magic = False, le
        elif be in (MAGIC_USEC, MAGIC_NSEC):
            self.big_endian, magic = True, be
        else:
            self._fail(f"bad magic 0x{head.hex()} at byte offset 0: not a pcap or pcapng file", 0)
            return
        self.kind = "pcap"
        self.nanosecond = magic == MAGIC_NSEC
        if self.size < 24:
            self._fail(f"truncated pcap file header at byte offset 0: {self.size} bytes of 24", 0)
            return
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(
            (">" if self.big_endian else "<") + "HHiIII", bytes(b[4:24]))
        if major != 2:
            self._fail(f"unsupported pcap version {major}.{_minor} at byte offset 4", 4)
            return
        self.snaplen = snaplen
        linktype = network & 0xFFFF
        if (network >> 28) & 1:
            self._fail(f"link-layer header at byte offset 20 says frames carry an FCS (0x{network:08x}); "
                       "only Ethernet frames without FCS are supported", 20, linktype=True)
            return
        if linktype != LINKTYPE_ETHERNET:
            if self.skip_other:
                warnings.warn(PcapSkippedWarning(
                    f"{self.src.name}: every packet skipped: linktype {_linktype_name(linktype)} "
                    "is not LINKTYPE_ETHERNET (1)"), stacklevel=4)
                self.done = True
                return
            self._fail(f"unsupported linktype {_linktype_name(linktype)} at byte offset 20: "
                       "only LINKTYPE_ETHERNET (1) is supported", 20, linktype=True)
            return
        self.state[_k.S_POS] = 24

    @property
    def position(self) -> int:
        """File offset of the next record to index."""
        return self.src.base + int(self.state[_k.S_POS])

    def _run(self, off: npt.NDArray[np.int64], ln: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> int:
        """One kernel pass over the current window (growing the interface table as needed)."""
        st = self.state
        while True:
            if self.kind == "pcap":
                n = int(_k.index_pcap(self.buf, off, ln, ts, st, self.big_endian, self.nanosecond, self.snaplen))
            else:
                n = int(_k.index_pcapng(self.buf, off, ln, ts, self.ifaces, st, self.skip_other))
            if st[_k.S_ERR] == _k.ERR_IFACE_FULL and n == 0:
                grown = np.zeros((2 * self.ifaces.shape[0], _k.N_IFCOL), np.int64)
                grown[: self.ifaces.shape[0]] = self.ifaces
                self.ifaces = grown
                continue
            return n

    def next(self, cap: int, emit: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Index up to ``cap`` more records; for each run of them found in one window, calls
        ``emit(window, offsets, lengths)`` (offsets into ``window``, valid only during the call).
        Returns the records' (lengths, timestamps).  Sets ``done`` at the end of the file and
        ``error`` when it met damage."""
        total = 0
        off = np.empty(cap, np.int64)
        ln = np.empty(cap, np.int64)
        ts = np.empty(cap, np.int64)
        src, st = self.src, self.state
        while not self.done and total < cap:
            n = self._run(off[total:], ln[total:], ts[total:])
            if n:
                emit(self.buf, off[total:total + n], ln[total:total + n])
                total += n
            err = int(st[_k.S_ERR])
            pos = src.base + int(st[_k.S_POS])  # file offset where the kernel stopped
            if err == _k.ERR_IFACE_FULL:  # records were emitted first: call again with a bigger table
                continue
            cut = err in (_k.ERR_TRUNC_HEADER, _k.ERR_TRUNC_DATA) and src.end < self.size
            if cut or (err == _k.ERR_NONE and st[_k.S_POS] >= self.buf.size and src.end < self.size):
                # the window ended, not the file: read on from the record it stopped at
                need = 16 if err != _k.ERR_TRUNC_DATA else int(st[_k.S_ERRVAL]) + (16 if self.kind == "pcap" else 0)
                src.fill(pos, need + 16)
                st[_k.S_POS] = 0
                continue
            if err != _k.ERR_NONE:
                epos = src.base + int(st[_k.S_ERRPOS])
                self._kernel_error(err, epos, int(st[_k.S_ERRVAL]))
            elif pos >= self.size:
                self.done = True
            else:
                break  # output full
        if 2 * total < cap:  # do not keep a mostly empty index alive
            return ln[:total].copy(), ts[:total].copy()
        return ln[:total], ts[:total]

    def _kernel_error(self, code: int, pos: int, val: int) -> None:
        left = self.size - pos
        ng = self.kind == "pcapng"
        what = "block" if ng else "record"
        if code == _k.ERR_TRUNC_HEADER:
            msg = (f"truncated {what} header at byte offset {pos}: {left} bytes left, "
                   f"{12 if ng else 16} needed")
        elif code == _k.ERR_TRUNC_DATA:
            if ng:
                msg = f"truncated block at byte offset {pos}: total length {val} but only {left} bytes left"
            else:
                msg = (f"truncated record at byte offset {pos}: caplen {val} but only "
                       f"{max(left - 16, 0)} bytes left")
        elif code == _k.ERR_CAPLEN_SNAPLEN:
            if ng:   # the packet's interface's snaplen (each Interface Description Block has its own)
                msg = (f"{what} at byte offset {pos}: caplen {val} is larger than snaplen (that of its interface, "
                       "in the Interface Description Block)")
            else:
                msg = f"{what} at byte offset {pos}: caplen {val} is larger than snaplen {self.snaplen}"
        elif code == _k.ERR_ZERO_LEN:
            msg = f"zero-length {what} at byte offset {pos}"
        elif code == _k.ERR_BLOCK_LEN:
            msg = (f"block at byte offset {pos}: bad total length {val} (must be a multiple of 4 "
                   "and at least the block type's minimum)")
        elif code == _k.ERR_TRAILER:
            msg = f"block at byte offset {pos}: trailing total length {val} differs from the leading one"
        elif code == _k.ERR_BOM:
            msg = (f"section header at byte offset {pos}: bad byte-order magic bytes "
                   f"{(val & 0xFFFFFFFF).to_bytes(4, 'little').hex()} (want 1a2b3c4d or 4d3c2b1a)")
        elif code == _k.ERR_LINKTYPE:
            self.done = True
            if self.error is None:
                self._fail(f"packet block at byte offset {pos} is on an interface with linktype "
                           f"{_linktype_name(val)}: only LINKTYPE_ETHERNET (1) is supported "
                           "(skip_other_linktypes=True skips such packets)", pos, linktype=True)
            return
        elif code == _k.ERR_IFACE:
            msg = f"packet block at byte offset {pos} names interface {val}, which no IDB described"
        elif code == _k.ERR_OPTION:
            msg = f"option at byte offset {pos} runs past the end of its block (option length {val})"
        elif code == _k.ERR_VERSION:
            msg = f"section header at byte offset {pos}: unsupported major version {val}"
        elif code == _k.ERR_TSRESOL:
            msg = f"option at byte offset {pos}: unsupported if_tsresol 0x{val:02x}"
        elif code == _k.ERR_NO_SECTION:
            msg = f"block at byte offset {pos} comes before any section header block"
        elif code == _k.ERR_CAPLEN_BLOCK:
            msg = f"packet block at byte offset {pos}: caplen {val} is larger than the block"
        else:  # pragma: no cover - every kernel code is handled above
            msg = f"error {code} at byte offset {pos} (value {val})"
        self._fail(msg, pos)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "stop"):
        raise ValueError(f"on_error must be 'raise' or 'stop', got {on_error!r}")


def _finish(ix: _Index, on_error: str, n_read: int) -> None:
    """Raise or warn for what the index met, once its frames have been delivered."""
    if ix.skip_other and ix.state[_k.S_SKIPPED]:
        warnings.warn(PcapSkippedWarning(
            f"{ix.src.name}: skipped {int(ix.state[_k.S_SKIPPED])} packets on non-Ethernet interfaces"),
            stacklevel=3)
    err = ix.error
    if err is None:
        return
    if on_error == "raise" or ix.linktype_error:
        raise err
    warnings.warn(PcapTruncatedWarning(
        f"{err.args[0]}; stopped there, returning the {n_read} frames read before byte offset {err.offset}"),
        stacklevel=3)


class _Gather:
    """Copies the runs of frames ``_Index.next`` emits out of the window, in order, into one buffer.

    With a ``capacity`` (read_pcap: the file's size, an upper bound of its frames' bytes) that buffer
    is allocated once and its unused tail is never touched (so never committed by the OS); the source
    then reads its windows into it too, and the frames are compacted in place.  With ``records``
    (iter_pcap: the batch size) it is sized from the first run's mean frame length, at most ``limit``
    bytes.  A run that does not fit goes into an array of its own; the parts are concatenated once."""

    def __init__(self, capacity: int = 0, records: int = 0, limit: int = 0) -> None:
        self.data = np.empty(capacity, np.uint8) if capacity > 0 else None
        self.records = records
        self.limit = limit
        self.used = 0
        self.parts: list[npt.NDArray[np.uint8]] = []

    def __call__(self, window: npt.NDArray[np.uint8], off: npt.NDArray[np.int64],
                 ln: npt.NDArray[np.int64]) -> None:
        dst = np.empty(off.size, np.int64)
        dst[0] = 0
        np.cumsum(ln[:-1], out=dst[1:])
        nbytes = int(dst[-1] + ln[-1])
        if self.data is None and self.records and not self.parts:  # size the batch's buffer once
            guess = int(nbytes / off.size * self.records * 1.0625) + 4096
            self.data = np.empty(max(nbytes, min(guess, max(self.limit, nbytes))), np.uint8)
        if self.data is not None and self.used + nbytes <= self.data.size:
            out = self.data
            dst += self.used
        else:  # does not fit: a part of its own (and what was gathered so far becomes a part too)
            out = np.empty(nbytes, np.uint8)
            if self.data is not None:
                self.parts.append(self.data[:self.used])
                self.data, self.used = None, 0
        r = gather_spans(window, off, ln, out, dst)
        if r != -1:  # pragma: no cover - the indexer only emits in-bounds spans
            raise PcapError(f"internal error: record {r} out of bounds")
        if out is self.data:
            self.used += nbytes
        else:
            self.parts.append(out)

    def batch(self, ln: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], port: int) -> FrameBatch:
        offsets = np.zeros(ln.size + 1, np.int64)
        np.cumsum(ln, out=offsets[1:])
        parts = self.parts + ([self.data[:self.used]] if self.data is not None else [])
        if not parts:
            data = np.zeros(0, np.uint8)
        elif len(parts) == 1:
            data = parts[0]
        else:
            data = np.concatenate(parts)
        return FrameBatch(data, offsets, FrameBatch._port_array(port, ln.size), ts)


# --------------------------------------------------------------------------- public API

def read_pcap(path: str | os.PathLike[str] | BinaryIO, *, on_error: OnError = "raise", port: int = -1,
              skip_other_linktypes: bool = False) -> FrameBatch:
    """Every Ethernet frame of a pcap/pcapng file, as one FrameBatch with timestamps.

    ``path`` is a file name or a binary file object.  See the module doc for formats,
    ``on_error`` ("raise" or "stop") and ``skip_other_linktypes``.
    """
    _check_on_error(on_error)
    src = _Source(path)
    try:
        ix = _Index(src, skip_other_linktypes)
        # the frames are at most the file's bytes; untouched capacity is never committed by the OS
        out = _Gather(max(ix.size, 1))
        src.sink = out
        parts = []
        # ~64-byte frames need one call; bigger ones over-allocate index space modestly
        cap = max(16, ix.size // 64 + 16)
        while not ix.done:
            parts.append(ix.next(cap, out))
            cap *= 2
        if len(parts) == 1:
            ln, ts = parts[0]
        elif parts:
            ln, ts = (np.concatenate([p[i] for p in parts]) for i in range(2))
        else:
            ln = ts = np.zeros(0, np.int64)
        del parts
        batch = out.batch(ln, ts, port)
        del out, ln
    finally:
        src.close()
    _finish(ix, on_error, len(batch))
    return batch


def iter_pcap(path: str | os.PathLike[str] | BinaryIO, batch_size: int = 65536, *,
              on_error: OnError = "raise", port: int = -1,
              skip_other_linktypes: bool = False, reuse: bool = False,
              window: int | None = None) -> Iterator[FrameBatch]:
    """Stream a pcap/pcapng file as FrameBatches of at most ``batch_size`` frames.

    The file is read window by window (8 MiB), not into memory; each chunk's frames are copied
    into the chunk's own buffer.  With ``on_error="raise"`` the chunks before the damage are
    yielded before :class:`PcapError` is raised.

    ``reuse=True`` (for a loop that is done with each batch before it asks for the next, as
    replay is): the batches are views of buffers reused from one batch to the next, so a batch
    is valid only until the next one is asked for (copy it to keep it).  A classic pcap named
    by its path is then read through one 1 MiB window: one compiled pass indexes its records
    and moves their frames down over their headers, and the batch is that window; nothing is
    allocated per batch, and a batch may hold fewer than ``batch_size`` frames (a window's
    worth; ``window`` bytes instead of 1 MiB when given, e.g. more for a multi-threaded consumer
    whose parallel regions need more frames each).  Other inputs (pcapng, file objects, pipes) are
    read as without ``reuse``.
    """
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 64):
        raise ValueError(f"window must be an int of at least 64 bytes, got {window!r}")
    _check_on_error(on_error)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    src = _Source(path, window=_HEAD_WINDOW if reuse else None)
    try:
        ix = _Index(src, skip_other_linktypes)
        if reuse and ix.kind == "pcap" and src.named and not ix.done:
            yield from _iter_reused(src, ix, batch_size, port, on_error, window)
            return
        if reuse and src.named and src._win.size < min(_WINDOW, src.size):   # read as without reuse
            src._win = np.empty(min(_WINDOW, src.size), np.uint8)
        total = 0
        while not ix.done:
            out = _Gather(records=batch_size, limit=ix.size - ix.position)
            src.sink = out  # later windows of this batch are read into its buffer (once it is sized)
            ln, ts = ix.next(batch_size, out)
            if ln.size:
                b = out.batch(ln, ts, port)
                total += len(b)
                yield b
        _finish(ix, on_error, total)
    finally:
        src.close()


#: ``iter_pcap(reuse=True)``: the first read only needs the file header (then the loop's own window)
_HEAD_WINDOW = 4096
#: ``iter_pcap(reuse=True)``: bytes of a classic pcap read and compacted at a time (kept in the CPU's
#: caches while the batch over it is processed and written); grown for frames that need more
_REUSE_WINDOW = 1 << 20
#: ... up to this, when the frames are large (so that a window still holds thousands of them)
_REUSE_WINDOW_MAX = 16 << 20


def _iter_reused(src: _Source, ix: _Index, batch_size: int, port: int, on_error: str,
                 window: int | None = None) -> Iterator[FrameBatch]:
    """``iter_pcap(reuse=True)`` of a named classic pcap: batches over one reused window.

    The window holds file bytes ``[base, base + want)``; each :func:`_pcapindex.compact_pcap` call
    takes the records from ``pos`` on and moves their frames down to the window's start (frame bytes
    are always fewer than their records, so a later record is never overwritten before it is read),
    and the batch is ``window[:offsets[n]]``.  The next call starts at the first record not taken;
    when the window is used up (or ends inside a record) the next window is read from that record.
    Errors and truncations are reported exactly as by the windowed indexer (``_Index``)."""
    st = ix.state
    size = ix.size
    base = ix.position
    first = window or _REUSE_WINDOW
    top = max(first, _REUSE_WINDOW_MAX)
    buf = np.empty(max(64, min(first, size - base)), np.uint8)
    cap = max(1, min(batch_size, first // 17 + 1))
    offsets = np.zeros(cap + 1, np.int64)
    ts = np.empty(cap, np.int64)
    ports = np.empty(cap, np.int32)
    total = 0
    want = min(buf.size, size - base)
    src.read_exact(buf[:want], base)
    pos = 0
    while True:
        st[_k.S_POS] = pos
        offsets[0] = 0
        n = int(_k.compact_pcap(buf, want, offsets[:cap + 1], ts[:cap], st, ix.big_endian, ix.nanosecond,
                                ix.snaplen))
        err = int(st[_k.S_ERR])
        pos = int(st[_k.S_POS])
        if n:
            ports[:n] = port
            yield FrameBatch(buf, offsets[:n + 1], ports[:n], ts[:n])
            total += n
        if err == _k.ERR_NONE and pos < want:
            continue   # the batch is full: the window holds more records
        end_of_file = base + want >= size
        if err == _k.ERR_NONE and end_of_file:
            break
        if err in (_k.ERR_NONE, _k.ERR_TRUNC_HEADER, _k.ERR_TRUNC_DATA) and not end_of_file:
            # the window ended, not the file: read the next one from the first record not taken
            need = 16 + (int(st[_k.S_ERRVAL]) if err == _k.ERR_TRUNC_DATA else 0)
            if err != _k.ERR_NONE and base + pos + need > size:
                # the record claims more bytes than the file has left: the truncation it looks like
                # (reported now, so that a lying caplen never sizes a buffer past the file)
                ix._kernel_error(err, base + int(st[_k.S_ERRPOS]), int(st[_k.S_ERRVAL]))
                break
            grow = need if need > buf.size else 0
            if n and pos and buf.size < top and pos // n * 8192 > buf.size:
                grow = min(top, pos // n * 8192)   # large frames: a window of ~8k of them
            base += pos
            if grow > buf.size:
                buf = np.empty(min(grow, size - base), np.uint8)   # >= need: the record is in the file
                cap = max(1, min(batch_size, buf.size // 17 + 1))
                if cap + 1 > offsets.size:
                    offsets, ts, ports = np.zeros(cap + 1, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int32)
            want = min(buf.size, size - base)
            src.read_exact(buf[:want], base)
            pos = 0
            continue
        ix._kernel_error(err, base + int(st[_k.S_ERRPOS]), int(st[_k.S_ERRVAL]))
        break
    ix.done = True
    _finish(ix, on_error, total)


# --------------------------------------------------------------------------- chunks: scan once, resume anywhere

@dataclass(frozen=True)
class PcapChunk:
    """``frames`` consecutive records of a capture as :func:`scan_pcap` found them: where they start
    and the reader's state there, so that :func:`iter_pcap_chunk` reads them again (in another
    process, on another machine) without the records before them.  It pickles small."""

    index: int          #: its place in :attr:`PcapScan.chunks`
    offset: int         #: file offset of its first record
    frames: int         #: records in it
    first: int          #: capture position (0-based) of its first frame
    nbytes: int         #: bytes of its frames (the batches' ``data``)
    #: the indexer's format state at ``offset`` (opaque; pcapng: the section's byte order too)
    state: npt.NDArray[np.int64] = field(repr=False, compare=False)
    #: pcapng: the section's interface table at ``offset`` (opaque)
    ifaces: npt.NDArray[np.int64] = field(repr=False, compare=False)


@dataclass
class PcapScan:
    """What :func:`scan_pcap` found: the chunks in capture order, their totals, and with
    ``on_error="stop"`` the :class:`PcapTruncatedWarning` text of where the damage cut the capture."""

    path: str
    chunks: list[PcapChunk]
    frames: int
    nbytes: int
    warnings: list[str]


def check_pcap(path: str | os.PathLike[str], *, on_error: OnError = "raise") -> None:
    """Refuse a file that is no pcap/pcapng capture -- bad magic, a truncated or unsupported file
    header, a non-Ethernet linktype -- with the :class:`PcapError` :func:`iter_pcap` would raise, reading
    only the file header (the records are not looked at: :func:`scan_pcap` does that).  With
    ``on_error="stop"`` only what :func:`iter_pcap` refuses then too (an unsupported linktype) is
    raised: a damaged header is left to :func:`scan_pcap`'s warning."""
    _check_on_error(on_error)
    src = _Source(path, window=_HEAD_WINDOW)
    try:
        ix = _Index(src, False)
    finally:
        src.close()
    if ix.error is not None and (on_error == "raise" or ix.linktype_error):
        raise ix.error


def _noop_emit(window: Any, off: Any, ln: Any) -> None:
    return None


def scan_pcap(path: str | os.PathLike[str], chunk_frames: int = 1 << 20, *,
              on_error: OnError = "raise") -> PcapScan:
    """Index a named pcap/pcapng file once, copying no frame, and cut it into chunks of
    ``chunk_frames`` records (the last one shorter), each readable on its own with
    :func:`iter_pcap_chunk`.  Damage raises :class:`PcapError` naming the byte offset, as
    :func:`iter_pcap` does; with ``on_error="stop"`` the chunks end where the damage starts and
    ``warnings`` holds the :class:`PcapTruncatedWarning` text instead (nothing is warned).
    """
    _check_on_error(on_error)
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise ValueError(f"chunk_frames must be a positive int, got {chunk_frames!r}")
    name = os.fspath(path)
    chunks: list[PcapChunk] = []
    notes: list[str] = []
    src = _Source(name)
    try:
        if not src.named:
            raise PcapError(f"{name}: scan_pcap needs a regular file (it is read again by offset)", path=name)
        ix = _Index(src, False)
        first = 0
        nbytes_all = 0
        step = min(chunk_frames, 65536)   # small index arrays: reused by the allocator, no page faults
        while not ix.done:
            pos, state, ifaces = ix.position, ix.state.copy(), ix.ifaces.copy()
            state[_k.S_POS] = 0
            frames = nbytes = 0
            while frames < chunk_frames and not ix.done:
                ln, _ts = ix.next(min(step, chunk_frames - frames), _noop_emit)
                frames += int(ln.size)
                nbytes += int(ln.sum())
            if frames:
                chunks.append(PcapChunk(len(chunks), pos, frames, first, nbytes, state, ifaces))
                first += frames
                nbytes_all += nbytes
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PcapTruncatedWarning)
            _finish(ix, on_error, first)
        for wm in caught:
            if issubclass(wm.category, PcapTruncatedWarning):
                notes.append(str(wm.message))
            else:  # pragma: no cover - _finish warns nothing else without skip_other_linktypes
                warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
    finally:
        src.close()
    return PcapScan(name, chunks, first, nbytes_all, notes)


def iter_pcap_chunk(path: str | os.PathLike[str], chunk: PcapChunk, batch_size: int = 65536, *,
                    reuse: bool = False, port: int = -1) -> Iterator[FrameBatch]:
    """The frames of ``chunk`` (from :func:`scan_pcap` on the same file) as FrameBatches of at most
    ``batch_size`` frames with timestamps, exactly as :func:`iter_pcap` reads them there.

    ``reuse=True``: as :func:`iter_pcap`'s (each batch a view of a reused window, valid until the next
    one; a classic pcap is read through one 1 MiB window, and at most one window past the chunk's end
    is read).  A file that no longer holds the chunk's records (changed since the scan) raises
    :class:`fastvpc.PcapError` naming the chunk.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(chunk, PcapChunk):
        raise TypeError(f"chunk must be a PcapChunk from scan_pcap, not {type(chunk).__name__}")
    name = os.fspath(path)
    src = _Source(name, window=_HEAD_WINDOW)
    left = chunk.frames
    try:
        ix = _Index(src, False)
        if ix.error is not None:
            raise ix.error
        ix.state[:] = chunk.state
        ix.ifaces = chunk.ifaces.copy()
        if chunk.offset >= ix.size:   # the file is shorter now than where the chunk starts
            ix.done = True
        elif reuse and ix.kind == "pcap" and src.named:
            ix.state[_k.S_POS] = chunk.offset     # the window is the file header: base 0
            reader = cast("Generator[FrameBatch, None, None]", _iter_reused(src, ix, batch_size, port, "raise"))
            try:
                for b in reader:
                    n = len(b)
                    if n >= left:
                        if n > left:
                            b = FrameBatch(b.data, b.offsets[:left + 1], b.port[:left],
                                           b.timestamp[:left] if b.timestamp is not None else None)
                        left = 0
                        yield b
                        break
                    left -= n
                    yield b
            finally:
                reader.close()
        else:
            if src._win.size < min(_WINDOW, src.size):
                src._win = np.empty(min(_WINDOW, src.size), np.uint8)
            src.fill(chunk.offset, 64)
            ix.state[_k.S_POS] = 0
            while left and not ix.done:
                out = _Gather(records=min(batch_size, left), limit=ix.size - ix.position)
                src.sink = out
                ln, ts = ix.next(min(batch_size, left), out)
                if ln.size == 0:
                    break
                left -= int(ln.size)
                yield out.batch(ln, ts, port)
    finally:
        src.close()
    if left:
        raise PcapError(f"{name}: chunk {chunk.index} at byte offset {chunk.offset} holds "
                        f"{chunk.frames - left} frames now, {chunk.frames} when it was scanned "
                        "(the capture changed?)", offset=chunk.offset, path=name)


# --------------------------------------------------------------------------- writing

_WRITE_CHUNK = 65536


class PcapWriter:
    """Write FrameBatches to a classic pcap file, batch after batch.

    ``PcapWriter(path, nanosecond=False, linktype=1, snaplen=262144, byteorder="little")``
    writes the file header at once; :meth:`write` appends a batch's frames; use it as a
    context manager (or call :meth:`close`).  A file object passed in is not closed.
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, *, nanosecond: bool = False,
                 linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144, byteorder: str = "little") -> None:
        if byteorder not in ("little", "big"):
            raise ValueError(f"byteorder must be 'little' or 'big', got {byteorder!r}")
        if isinstance(snaplen, bool) or not isinstance(snaplen, int) or not 1 <= snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen must be an int in [1, 2**32), got {snaplen!r}")
        if isinstance(linktype, bool) or not isinstance(linktype, int) or not 0 <= linktype <= 0xFFFFFFFF:
            raise ValueError(f"linktype must be an int in [0, 2**32), got {linktype!r}")
        self.nanosecond = bool(nanosecond)
        self.snaplen = snaplen
        self.big_endian = byteorder == "big"
        self.frames_written = 0
        if isinstance(path, (str, os.PathLike)):
            self.name = os.fspath(path)
            self._f: BinaryIO = open(path, "wb")
            self._own = True
        else:
            self.name = str(getattr(path, "name", "<stream>"))
            self._f = path
            self._own = False
        magic = MAGIC_NSEC if self.nanosecond else MAGIC_USEC
        self._f.write(struct.pack((">" if self.big_endian else "<") + "IHHiIII",
                                  magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, batch: FrameBatch) -> None:
        """Append every frame of ``batch``."""
        if not isinstance(batch, FrameBatch):
            raise TypeError(f"write needs a FrameBatch, got {type(batch).__name__}")
        n = len(batch)
        data, offsets = batch.data, batch.offsets
        ts_all = batch.timestamp
        for a in range(0, n, _WRITE_CHUNK):
            b = min(n, a + _WRITE_CHUNK)
            offs = offsets[a:b + 1]
            caplen = np.minimum(np.diff(offs), self.snaplen)
            out = np.empty(16 * (b - a) + int(caplen.sum()), np.uint8)
            ts = ts_all[a:b] if ts_all is not None else np.zeros(0, np.int64)
            r = _k.pack_pcap(data, offs, ts, out, self.big_endian, self.nanosecond, self.snaplen)
            if r != -1:
                i = a + r
                t = int(ts_all[i]) if ts_all is not None and r >= 0 else None
                raise PcapError(f"{self.name}: frame {i} cannot be written: timestamp {t} ns is past "
                                "the 32-bit seconds field of pcap (2106-02-07)", path=self.name)
            self._f.write(out.data)
            self.frames_written += b - a

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_pcap(path: str | os.PathLike[str] | BinaryIO, batch: FrameBatch, *, nanosecond: bool = False,
               linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144, byteorder: str = "little") -> None:
    """Write ``batch`` as a classic pcap file (see the module doc for the details)."""
    if not isinstance(batch, FrameBatch):
        raise TypeError(f"write_pcap needs a FrameBatch, got {type(batch).__name__}")
    with PcapWriter(path, nanosecond=nanosecond, linktype=linktype, snaplen=snaplen, byteorder=byteorder) as w:
        w.write(batch)
