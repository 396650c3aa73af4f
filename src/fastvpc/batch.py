"""FrameBatch: many Ethernet frames in one contiguous buffer (Arrow-style offsets).

A batch of ``n`` frames is four numpy arrays:

* ``data``: ``uint8``, every frame's bytes back to back;
* ``offsets``: ``int64``, ``n + 1`` entries, frame ``i`` is ``data[offsets[i]:offsets[i+1]]``
  (``offsets[0]`` may be past 0, and ``offsets[-1]`` short of ``len(data)``);
* ``port``: ``int32``, ``n`` entries, the ingress port of each frame (-1: unknown, as for
  frames read from a pcap);
* ``timestamp``: ``int64`` nanoseconds since the epoch, ``n`` entries, or ``None``
  (-1 marks a frame without a timestamp, e.g. a pcapng Simple Packet Block).

The constructor wraps arrays that already have the right dtype and are C-contiguous
without copying them (so ``Dataplane.process`` can rewrite a caller's buffer in place),
converts other integer arrays with a copy only when the conversion is lossless, and
checks every invariant (in compiled code, no temporaries) before accepting them.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from fastvpc._batchops import check_offsets, gather_spans
from fastvpc.errors import FrameBatchError

if TYPE_CHECKING:
    from fastvpc.pcap import OnError

__all__ = ["FrameBatch"]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def _as_array(name: str, value: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """``value`` as a 1-D C-contiguous array of ``dtype``; no copy when it already is one."""
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (bytes, bytearray, memoryview)) and dtype is np.uint8:
        if isinstance(value, memoryview) and not value.c_contiguous:
            raise FrameBatchError(f"{name}: the memoryview is not C-contiguous (strides {value.strides}): "
                                  "frames are read and rewritten in one contiguous buffer; pass bytes(...) "
                                  "or a contiguous array")
        try:
            arr = np.frombuffer(value, dtype=np.uint8)
        except (ValueError, TypeError, BufferError) as exc:
            raise FrameBatchError(f"{name}: cannot view {type(value).__name__} as bytes: {exc}") from None
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, BufferError, NotImplementedError) as exc:
            raise FrameBatchError(f"{name}: cannot make an array of {type(value).__name__} (not a contiguous "
                                  f"buffer or a sequence of integers?): {exc}") from None
    if arr.ndim != 1:
        raise FrameBatchError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == dtype:
        return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    if arr.size == 0 and arr.dtype.kind in "fiub":
        return np.zeros(0, dtype=dtype)
    if arr.dtype.kind not in "iub":
        raise FrameBatchError(f"{name} must hold integers ({np.dtype(dtype).name}), got dtype {arr.dtype}")
    info = np.iinfo(dtype)  # type: ignore[type-var]
    lo, hi = arr.min(), arr.max()
    if lo < info.min or hi > info.max:
        bad = int(np.flatnonzero((arr < info.min) | (arr > info.max))[0])
        raise FrameBatchError(
            f"{name}[{bad}] = {arr[bad]} does not fit {np.dtype(dtype).name} "
            f"(dtype {arr.dtype} cannot be converted losslessly)")
    return arr.astype(dtype)


class FrameBatch:
    """``n`` Ethernet frames in one ``uint8`` buffer, with ports and optional timestamps.

    ``FrameBatch(data, offsets, port, timestamp=None)`` wraps the arrays (no copy when
    they are C-contiguous with the right dtype) after checking them; a violated
    invariant raises :class:`fastvpc.FrameBatchError` naming the index and value.
    """

    __slots__ = ("_data", "_offsets", "_port", "_timestamp", "__weakref__")

    def __init__(self, data: Any, offsets: Any, port: Any, timestamp: Any = None) -> None:
        if isinstance(data, np.ndarray):
            # frames are rewritten in place in this very buffer: a silent converting copy would
            # leave the caller's array untouched, so only byte arrays are taken
            if data.dtype == np.int8:
                data = data.view(np.uint8)
            if data.dtype != np.uint8:
                raise FrameBatchError(f"data must be a uint8 (or int8) byte buffer, got dtype {data.dtype}")
            if data.ndim == 1 and not data.flags.c_contiguous:
                raise FrameBatchError("data must be C-contiguous: frames are rewritten in place "
                                      "(pass np.ascontiguousarray(data))")
        d = _as_array("data", data, np.uint8)
        off = _as_array("offsets", offsets, np.int64)
        if off.size == 0:
            raise FrameBatchError("offsets must have n+1 >= 1 entries (Arrow-style), got an empty array")
        bad = check_offsets(off, d.size)
        if bad >= 0:
            if bad == 0 and off[0] < 0:
                raise FrameBatchError(f"offsets[0] = {off[0]} is negative")
            if bad > 0 and off[bad] < off[bad - 1]:
                raise FrameBatchError(
                    f"offsets[{bad}] = {off[bad]} is smaller than offsets[{bad - 1}] = {off[bad - 1]}")
            raise FrameBatchError(f"offsets[{bad}] = {off[bad]} is past the end of data (len {d.size})")
        n = off.size - 1
        p = _as_array("port", port, np.int32)
        if p.size != n:
            raise FrameBatchError(f"port has {p.size} entries, offsets describe {n} frames")
        ts = None
        if timestamp is not None:
            ts = _as_array("timestamp", timestamp, np.int64)
            if ts.size != n:
                raise FrameBatchError(f"timestamp has {ts.size} entries, offsets describe {n} frames")
        self._data = d
        self._offsets = off
        self._port = p
        self._timestamp = ts

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frames(cls, frames: Iterable[Any], port: int | Sequence[int] | npt.ArrayLike,
                    timestamp: Sequence[int] | npt.ArrayLike | None = None) -> FrameBatch:
        """A batch holding a copy of ``frames`` (bytes-like objects), in order.

        ``port`` is one int for every frame or one per frame; ``timestamp`` (ns) is
        optional, one per frame.  The data buffer is fresh and writeable.
        """
        items = list(frames)
        lengths = np.empty(len(items), dtype=np.int64)
        for i, f in enumerate(items):
            if type(f) is bytes or type(f) is bytearray:
                lengths[i] = len(f)
                continue
            if isinstance(f, str):
                raise FrameBatchError(f"frames[{i}] is a str, not a bytes-like object")
            try:
                with memoryview(f) as mv:
                    if not mv.c_contiguous:
                        raise FrameBatchError(f"frames[{i}] is not a contiguous buffer")
                    lengths[i] = mv.nbytes
            except TypeError:
                raise FrameBatchError(f"frames[{i}] is a {type(f).__name__}, not a bytes-like object") from None
        data = np.frombuffer(bytearray().join(items), dtype=np.uint8) if items else np.zeros(0, np.uint8)
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ports = cls._port_array(port, len(items))
        return cls(data, offsets, ports, timestamp)

    @staticmethod
    def _port_array(port: Any, n: int) -> npt.NDArray[np.int32]:
        if isinstance(port, (int, np.integer)) and not isinstance(port, bool):
            if not _INT32_MIN <= int(port) <= _INT32_MAX:
                raise FrameBatchError(f"port {port} does not fit int32")
            return np.full(n, int(port), dtype=np.int32)
        arr = _as_array("port", port, np.int32)
        if arr.size != n:
            raise FrameBatchError(f"port has {arr.size} entries for {n} frames")
        return arr

    @classmethod
    def empty(cls) -> FrameBatch:
        """A batch of no frames."""
        return cls(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int32))

    @classmethod
    def from_pcap(cls, path: str | os.PathLike[str] | BinaryIO, *, on_error: OnError = "raise",
                  port: int = -1, skip_other_linktypes: bool = False) -> FrameBatch:
        """Read a pcap or pcapng file; see :func:`fastvpc.pcap.read_pcap`."""
        from fastvpc.pcap import read_pcap
        return read_pcap(path, on_error=on_error, port=port, skip_other_linktypes=skip_other_linktypes)

    def to_pcap(self, path: str | os.PathLike[str] | BinaryIO, *, nanosecond: bool = False,
                linktype: int = 1, snaplen: int = 262144, byteorder: str = "little") -> None:
        """Write a classic pcap file; see :func:`fastvpc.pcap.write_pcap`."""
        from fastvpc.pcap import write_pcap
        write_pcap(path, self, nanosecond=nanosecond, linktype=linktype, snaplen=snaplen, byteorder=byteorder)

    # ------------------------------------------------------------------ accessors
    @property
    def data(self) -> npt.NDArray[np.uint8]:
        """The shared byte buffer (frames may not cover all of it)."""
        return self._data

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        """``n + 1`` offsets into :attr:`data`."""
        return self._offsets

    @property
    def port(self) -> npt.NDArray[np.int32]:
        """Ingress port of every frame (-1: unknown)."""
        return self._port

    @property
    def timestamp(self) -> npt.NDArray[np.int64] | None:
        """Timestamps in ns since the epoch, or None."""
        return self._timestamp

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Length of every frame (a new int64 array)."""
        return np.diff(self._offsets)

    @property
    def writeable(self) -> bool:
        """Whether :attr:`data` may be rewritten in place (False for a read-only buffer)."""
        return bool(self._data.flags.writeable)

    @property
    def nbytes(self) -> int:
        """Bytes of frame data (``offsets[-1] - offsets[0]``)."""
        return int(self._offsets[-1] - self._offsets[0])

    def __len__(self) -> int:
        return self._offsets.size - 1

    def frame(self, i: int) -> bytes:
        """Frame ``i`` (0 <= i < n) as bytes; IndexError naming ``i`` otherwise."""
        i = operator.index(i)
        n = len(self)
        if not 0 <= i < n:
            raise IndexError(f"frame index {i} out of range for a batch of {n} frames")
        return self._data[self._offsets[i]:self._offsets[i + 1]].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        mv = memoryview(self._data)  # type: ignore[arg-type]
        offs = self._offsets.tolist()
        for a, b in zip(offs, offs[1:]):
            yield bytes(mv[a:b])

    # ------------------------------------------------------------------ new batches
    def copy(self) -> FrameBatch:
        """A deep copy (same layout, fresh writeable arrays)."""
        ts = None if self._timestamp is None else self._timestamp.copy()
        return FrameBatch(self._data.copy(), self._offsets.copy(), self._port.copy(), ts)

    def select(self, which: Any) -> FrameBatch:
        """A new batch of the frames picked by ``which``.

        ``which`` is a boolean mask of length ``n`` or integer indices in ``[0, n)``
        (order and repeats kept).  Frames are gathered into a fresh compact buffer in
        compiled code.
        """
        n = len(self)
        sel = np.asarray(which)
        if sel.ndim != 1:
            raise FrameBatchError(f"select needs a 1-D mask or index array, got shape {sel.shape}")
        if sel.dtype == np.bool_:
            if sel.size != n:
                raise FrameBatchError(f"select mask has {sel.size} entries for a batch of {n} frames")
            idx = np.flatnonzero(sel)
        elif sel.dtype.kind in "iu" or sel.size == 0:
            idx = sel.astype(np.int64, copy=False) if sel.size else np.zeros(0, np.int64)
            if idx.size:
                bad = np.flatnonzero((idx < 0) | (idx >= n))
                if bad.size:
                    raise IndexError(f"select index {int(idx[bad[0]])} (position {int(bad[0])}) "
                                     f"out of range for a batch of {n} frames")
        else:
            raise FrameBatchError(f"select needs a bool mask or integer indices, got dtype {sel.dtype}")
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        start = self._offsets[idx]
        length = self._offsets[idx + 1] - start
        offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        data = np.empty(int(offsets[-1]), dtype=np.uint8)
        r = gather_spans(self._data, start, length, data, offsets)
        if r != -1:  # pragma: no cover - offsets were validated at construction
            raise FrameBatchError(f"gather failed at frame {r}")
        ts = None if self._timestamp is None else self._timestamp[idx]
        return FrameBatch(data, offsets, self._port[idx], ts)

    @classmethod
    def concat(cls, batches: Iterable[FrameBatch]) -> FrameBatch:
        """One batch holding every frame of ``batches`` in order (a fresh buffer).

        The result has timestamps when any input has them; frames from inputs without
        timestamps get -1.
        """
        items = list(batches)
        for i, b in enumerate(items):
            if not isinstance(b, FrameBatch):
                raise FrameBatchError(f"concat: item {i} is a {type(b).__name__}, not a FrameBatch")
        if not items:
            return cls.empty()
        datas, offs, base = [], [np.zeros(1, np.int64)], 0
        for b in items:
            a, e = int(b._offsets[0]), int(b._offsets[-1])
            datas.append(b._data[a:e])
            offs.append(b._offsets[1:] - a + base)
            base += e - a
        data = np.concatenate(datas) if datas else np.zeros(0, np.uint8)
        offsets = np.concatenate(offs)
        port = np.concatenate([b._port for b in items])
        ts = None
        if any(b._timestamp is not None for b in items):
            ts = np.concatenate([b._timestamp if b._timestamp is not None else np.full(len(b), -1, np.int64)
                                 for b in items])
        return cls(data, offsets, port, ts)

    # ------------------------------------------------------------------ protocol
    def _contents(self) -> npt.NDArray[np.uint8]:
        return self._data[self._offsets[0]:self._offsets[-1]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameBatch):
            return NotImplemented
        if len(self) != len(other):
            return False
        if (self._timestamp is None) != (other._timestamp is None):
            return False
        if not np.array_equal(self._port, other._port):
            return False
        if (self._timestamp is not None and other._timestamp is not None
                and not np.array_equal(self._timestamp, other._timestamp)):
            return False
        if not np.array_equal(self._offsets - self._offsets[0], other._offsets - other._offsets[0]):
            return False
        return bool(np.array_equal(self._contents(), other._contents()))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        n = len(self)
        if n:
            ports = np.unique(self._port)
            port_s = ", ".join(str(p) for p in ports[:4]) + (", ..." if ports.size > 4 else "")
            port_s = f"{{{port_s}}}"
        else:
            port_s = "{}"
        ts = "yes" if self._timestamp is not None else "no"
        ro = "" if self.writeable else ", read-only"
        return f"<FrameBatch n={n} bytes={self.nbytes} ports={port_s} timestamp={ts}{ro}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrameBatch, (self._data, self._offsets, self._port, self._timestamp))
