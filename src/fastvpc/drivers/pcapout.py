"""Capture writers for replay: classic pcap and pcapng, fed a processed batch and a mask.

Both write only the frames a boolean mask selects, without building a selected batch first:

* :class:`PcapOut` writes records made by ``drivers.replay.process_chunk`` (one ``write()`` per
  chunk), or the records of the selected frames (action DROP, or not DROP) with one compiled pass
  (``_replayops.pack_selected``) into a buffer it reuses;
* :class:`PcapngOut` writes a pcapng section with one Interface Description Block per port
  (named after the ENI or gateway, written before its first packet) and one Enhanced Packet
  Block per frame, whose ``opt_comment`` is the verdict (``DELIVER``, ``DROP NO_ROUTE``...);
  blocks are assembled with numpy over 32-bit words (pcapng blocks are 4-byte aligned).

Both write to ``path + ".partial"`` and rename it into place on :meth:`commit`; :meth:`discard`
removes the partial file, so an interrupted replay never leaves a truncated capture under the
name asked for.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from fastvpc._batchops import gather_spans
from fastvpc.drivers._replayops import pack_selected
from fastvpc.batch import FrameBatch

__all__ = ["CaptureOut", "PcapOut", "PcapngOut", "open_capture", "pcap_file_header"]

_SNAPLEN = 262144
_MAGIC_NSEC = 0xA1B23C4D


class CaptureOut:
    """Common part: the partial file, frame count, commit/discard."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.partial = self.path + ".partial"
        self.frames_written = 0
        self._f: BinaryIO = open(self.partial, "wb")
        self._done = False

    def commit(self) -> None:
        """Close the file and give it its name."""
        if self._done:
            return
        self._done = True
        self._f.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Close and remove the partial file."""
        if self._done:
            return
        self._done = True
        self._f.close()
        try:
            os.unlink(self.partial)
        except OSError:
            pass

    def write(self, batch: FrameBatch, mask: npt.NDArray[np.bool_] | None, n_selected: int,
              port: npt.NDArray[np.int32], code: npt.NDArray[np.int64]) -> None:
        raise NotImplementedError


def pcap_file_header() -> bytes:
    """The 24-byte file header of the pcap files written here: little-endian, ns, snaplen 262144, Ethernet."""
    return struct.pack("<IHHiIII", _MAGIC_NSEC, 2, 4, 0, 0, _SNAPLEN, 1)


class PcapOut(CaptureOut):
    """Classic pcap, little-endian, nanosecond timestamps."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._f.write(pcap_file_header())
        self._packed = np.zeros(0, np.uint8)

    def write_records(self, records: memoryview | bytes, n_frames: int) -> None:
        """Append ready records (``drivers.replay.process_chunk``'s ``emitted`` / ``dropped``) of
        ``n_frames`` frames: one ``write()``."""
        if len(records):
            self._f.write(records)
            self.frames_written += n_frames

    def write_by_action(self, batch: FrameBatch, action: npt.NDArray[np.uint8], drops: bool) -> None:
        """Append the frames of ``batch`` whose action is DROP (``drops``) or is not: one compiled
        pass writes their records into a buffer reused from batch to batch."""
        n = len(batch)
        data, offsets = batch.data, batch.offsets
        size = 16 * n + int(offsets[-1] - offsets[0])
        if self._packed.size < size:
            self._packed = np.empty(max(size, 2 * self._packed.size), np.uint8)
        ts = batch.timestamp if batch.timestamp is not None else np.zeros(0, np.int64)
        r, written = pack_selected(data, offsets, ts, action, drops, self._packed, _SNAPLEN)
        if r != -1:
            from fastvpc.errors import PcapError

            t = int(ts[r]) if r >= 0 and ts.size else None
            raise PcapError(f"{self.path}: frame {self.frames_written + r} cannot be written: timestamp {t} ns "
                            "is past the 32-bit seconds field of pcap (2106-02-07)", path=self.path)
        if written:
            self._f.write(self._packed[:written].data)
            self.frames_written += int(np.count_nonzero(action[:n] == 0) if drops else
                                       n - np.count_nonzero(action[:n] == 0))

    def write(self, batch: FrameBatch, mask: npt.NDArray[np.bool_] | None, n_selected: int,
              port: npt.NDArray[np.int32], code: npt.NDArray[np.int64]) -> None:
        """Append the frames of ``batch`` where ``mask`` (None: all)."""
        keep = np.ones(len(batch), np.uint8) if mask is None else mask.astype(np.uint8)
        self.write_by_action(batch, keep, False)


class PcapngOut(CaptureOut):
    """pcapng: one interface per port, the verdict as each packet's comment.

    ``port_name(port)`` names an interface; ``comments[code]`` is the comment of a packet whose
    verdict code (``action * 256 + reason``) is ``code``.
    """

    def __init__(self, path: str | os.PathLike[str], port_name: Callable[[int], str],
                 comment: Callable[[int], str]) -> None:
        super().__init__(path)
        self._port_name = port_name
        self._comment = comment
        self._ifid: dict[int, int] = {}
        self._copt: dict[int, npt.NDArray[np.uint32]] = {}
        shb_opts = _option(4, b"fastvpc replay") + _END   # shb_userappl
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts
        self._f.write(_block(0x0A0D0D0A, body))

    def _interfaces(self, ports: npt.NDArray[np.int32]) -> None:
        for p in np.unique(ports).tolist():
            if p in self._ifid:
                continue
            self._ifid[p] = len(self._ifid)
            name = self._port_name(int(p)).encode()
            opts = _option(2, name) + _option(9, b"\x09") + _END   # if_name; if_tsresol 10^-9
            self._f.write(_block(1, struct.pack("<HHI", 1, 0, _SNAPLEN) + opts))

    def _comment_words(self, code: int) -> npt.NDArray[np.uint32]:
        w = self._copt.get(code)
        if w is None:
            w = np.frombuffer(_option(1, self._comment(code).encode()) + _END, np.uint32).copy()
            self._copt[code] = w
        return w

    def write(self, batch: FrameBatch, mask: npt.NDArray[np.bool_] | None, n_selected: int,
              port: npt.NDArray[np.int32], code: npt.NDArray[np.int64]) -> None:
        if n_selected == 0:
            return
        idx = np.arange(len(batch)) if mask is None else np.flatnonzero(mask)
        port = port[idx]
        code = code[idx]
        self._interfaces(port)
        ifmap_keys = np.array(sorted(self._ifid), np.int64)
        ifmap_vals = np.array([self._ifid[k] for k in sorted(self._ifid)], np.uint32)
        ifid = ifmap_vals[np.searchsorted(ifmap_keys, port)]
        offsets = batch.offsets
        flen = (offsets[idx + 1] - offsets[idx]).astype(np.int64)
        padded = (flen + 3) & ~3
        codes, inverse = np.unique(code, return_inverse=True)
        cwords = [self._comment_words(int(c)) for c in codes]
        clen = np.array([4 * w.size for w in cwords], np.int64)[inverse]
        total = 28 + padded + clen + 4          # header words, data, options, trailing length
        start = np.zeros(idx.size + 1, np.int64)
        np.cumsum(total, out=start[1:])
        out = np.zeros(int(start[-1]), np.uint8)
        w32 = out.view(np.uint32)
        s4 = start[:-1] // 4
        ts = batch.timestamp[idx] if batch.timestamp is not None else np.zeros(idx.size, np.int64)
        ts = np.where(ts < 0, 0, ts).astype(np.uint64)
        w32[s4] = 6                               # Enhanced Packet Block
        w32[s4 + 1] = total.astype(np.uint32)
        w32[s4 + 2] = ifid
        w32[s4 + 3] = (ts >> np.uint64(32)).astype(np.uint32)
        w32[s4 + 4] = (ts & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        w32[s4 + 5] = flen.astype(np.uint32)
        w32[s4 + 6] = flen.astype(np.uint32)
        w32[(start[1:] // 4) - 1] = total.astype(np.uint32)
        gather_spans(batch.data, offsets[idx], flen, out, start[:-1] + 28)
        opt_at = start[:-1] + 28 + padded
        for k, w in enumerate(cwords):
            at = (opt_at[inverse == k] // 4)[:, None] + np.arange(w.size)
            w32[at] = w
        self._f.write(out.data)
        self.frames_written += int(idx.size)


_END = b"\0\0\0\0"


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def open_capture(path: str | os.PathLike[str], port_name: Callable[[int], str],
                 comment: Callable[[int], str]) -> CaptureOut:
    """A writer chosen by the extension: ``.pcapng`` -> :class:`PcapngOut`, else :class:`PcapOut`."""
    if os.fspath(path).lower().endswith(".pcapng"):
        return PcapngOut(path, port_name, comment)
    return PcapOut(path)

